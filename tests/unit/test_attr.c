/*
 * test_attr - the internal record codec: hostile input first (limits,
 * malformed framing, bad names), then encoding, incremental decoding,
 * pipelining and the accessors
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"

static const struct attr_limits small = { 100, 4, 8, 32 };

struct bad_case {
	const char *data;
	size_t	 len;		/* 0: strlen */
	const char *reason;	/* substring */
};

static void
test_bad_input(void **state)
{
	static const struct bad_case cases[] = {
		{ "015:request=ping,0:,", 0, "leading zero" },
		{ "00:,", 0, "leading zero" },
		{ "99999999999999999999999999999:x=y,", 0, "too long" },
		{ "42:", 0, "too long" },	/* over name 8 + 1 + value 32 */
		{ ":a=1,0:,", 0, "expected a length" },
		{ "-3:a=1,0:,", 0, "expected a length" },
		{ " 3:a=1,0:,", 0, "expected a length" },
		{ "3;a=1,0:,", 0, "expected ':'" },
		{ "3:a=1;0:,", 0, "expected ','" },
		{ "3:a=1,0:x", 0, "expected ','" },
		{ "3:A=1,0:,", 0, "bad character" },
		{ "3:a-1,0:,", 0, "bad character" },
		{ "3:a\0=,0:,", 9, "bad character" },
		{ "3:=ab,0:,", 0, "empty attribute name" },
		{ "3:abc,0:,", 0, "expected '='" },
		{ "10:abcdefghi=,0:,", 0, "name too long" },
		{ "35:a=", 0, "value too long" },
		{ "3:a=1,3:b=2,3:c=3,3:d=4,3:e=5,0:,", 0, "too many" },
	};
	struct attr_rec *rec = attr_rec_new();
	const char *reason;
	size_t i, len, used = 12345;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].data);
		reason = NULL;
		if (attr_decode(cases[i].data, len, &small, rec, &used,
		    &reason) != -1)
			fail_msg("case %zu (%s) not refused", i,
			    cases[i].data);
		if (reason == NULL || strstr(reason, cases[i].reason) == NULL)
			fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i,
			    reason ? reason : "(null)", cases[i].reason);
		assert_int_equal(used, 12345);
		assert_int_equal(attr_count(rec), 0);	/* untouched */
	}
	attr_rec_free(&rec);
	assert_null(rec);
}

static void
test_record_too_large(void **state)
{
	struct attr_rec *rec = attr_rec_new();
	char value[33];
	struct buf b;
	const char *reason;
	size_t used;

	(void)state;
	memset(value, 'v', 32);
	value[32] = '\0';
	buf_init(&b, 0);
	/* each attribute is at the limit (41 + 4 framing): the third is over */
	assert_int_equal(attr_put_str(&b, "aaaaaaaa", value), 0);
	assert_int_equal(attr_put_str(&b, "bbbbbbbb", value), 0);
	assert_int_equal(buf_len(&b), 90);
	assert_int_equal(attr_put_str(&b, "c", ""), 0);
	assert_int_equal(attr_end(&b), 0);
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), &small, rec,
	    &used, &reason), 1);
	buf_truncate(&b, 90);
	assert_int_equal(attr_put_str(&b, "c", "xxx"), 0);	/* 101 */
	/* refused from the header alone, before its data came */
	assert_int_equal(attr_decode(buf_cstr(&b), 92, &small, rec, &used,
	    &reason), -1);
	assert_string_equal(reason, "record too large");
	buf_deinit(&b);
	attr_rec_free(&rec);
}

static void
test_limit_exact(void **state)
{
	struct attr_limits lim = { 0, 2, 4, 5 };
	struct attr_rec *rec = attr_rec_new();
	struct buf b;
	const char *reason;
	size_t used;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(attr_put(&b, "abcd", "12345", 5), 0);
	assert_int_equal(attr_put(&b, "x", "", 0), 0);
	assert_int_equal(attr_end(&b), 0);
	/* exactly at every limit is fine, one byte less is not */
	lim.max_size = buf_len(&b);
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), &lim, rec,
	    &used, &reason), 1);
	assert_int_equal(used, buf_len(&b));
	lim.max_size--;
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), &lim, rec,
	    &used, &reason), -1);
	/* the limit is seen from the second header, before the rest */
	assert_int_equal(attr_decode(buf_cstr(&b), 15, &lim, rec,
	    &used, &reason), 0);
	assert_int_equal(attr_decode(buf_cstr(&b), 16, &lim, rec,
	    &used, &reason), -1);
	lim.max_size++;
	lim.max_count = 1;
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), &lim, rec,
	    &used, &reason), -1);
	lim.max_count = 2;
	lim.max_name = 3;
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), &lim, rec,
	    &used, &reason), -1);
	lim.max_name = 4;
	lim.max_value = 4;
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), &lim, rec,
	    &used, &reason), -1);
	assert_non_null(strstr(reason, "too long"));
	buf_deinit(&b);
	attr_rec_free(&rec);
}

static void
test_encode(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(attr_put_str(&b, "request", "ping"), 0);
	assert_int_equal(attr_put_uint(&b, "id", 18446744073709551615ULL), 0);
	assert_int_equal(attr_put(&b, "data", "a\0,\n", 4), 0);
	assert_int_equal(attr_put_str(&b, "e", ""), 0);
	assert_int_equal(attr_end(&b), 0);
	assert_int_equal(buf_len(&b), 63);
	assert_memory_equal(buf_cstr(&b), "12:request=ping,23:id=18446744073709551615,"
	    "9:data=a\0,\n,2:e=,0:,", 63);
	buf_deinit(&b);
}

static void
test_encode_limit(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 20);
	assert_int_equal(attr_put_str(&b, "a", "12345"), 0);	/* 10 */
	errno = 0;
	assert_int_equal(attr_put_str(&b, "b", "1234567"), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(buf_len(&b), 10);	/* nothing half-written */
	assert_string_equal(buf_cstr(&b), "7:a=12345,");
	assert_int_equal(attr_put_str(&b, "b", "123"), 0);	/* 18 */
	assert_int_equal(attr_end(&b), -1);
	assert_int_equal(buf_len(&b), 18);
	buf_deinit(&b);
}

static void
test_incremental(void **state)
{
	struct attr_rec *rec = attr_rec_new();
	struct buf b;
	const char *reason;
	size_t i, used;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(attr_put_str(&b, "request", "deliver"), 0);
	assert_int_equal(attr_put(&b, "body", "x\0y=,0:,", 8), 0);
	assert_int_equal(attr_end(&b), 0);
	/* every proper prefix: need more, never a record, never an error */
	for (i = 0; i < buf_len(&b); i++)
		if (attr_decode(buf_cstr(&b), i, NULL, rec, &used,
		    &reason) != 0)
			fail_msg("prefix of %zu bytes not 'need more'", i);
	assert_int_equal(attr_count(rec), 0);
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), NULL, rec,
	    &used, &reason), 1);
	assert_int_equal(used, buf_len(&b));
	assert_int_equal(attr_count(rec), 2);
	assert_string_equal(attr_at(rec, 0)->name, "request");
	assert_string_equal(attr_at(rec, 0)->value, "deliver");
	assert_int_equal(attr_at(rec, 1)->value_len, 8);
	assert_memory_equal(attr_at(rec, 1)->value, "x\0y=,0:,", 9);
	assert_null(attr_at(rec, 2));
	buf_deinit(&b);
	attr_rec_free(&rec);
}

static void
test_pipelined(void **state)
{
	const char data[] = "12:request=ping,0:,0:,6:n=1234,3:n=5,0:,3:x";
	struct attr_rec *rec = attr_rec_new();
	const char *p = data, *reason, *v;
	size_t len = strlen(data), used, vlen;

	(void)state;
	assert_int_equal(attr_decode(p, len, NULL, rec, &used, &reason), 1);
	assert_int_equal(used, 19);
	assert_string_equal(attr_get_str(rec, "request"), "ping");
	p += used;
	len -= used;
	assert_int_equal(attr_decode(p, len, NULL, rec, &used, &reason), 1);
	assert_int_equal(used, 3);
	assert_int_equal(attr_count(rec), 0);
	assert_null(attr_get_str(rec, "request"));
	p += used;
	len -= used;
	assert_int_equal(attr_decode(p, len, NULL, rec, &used, &reason), 1);
	assert_int_equal(attr_count(rec), 2);
	/* a repeated name: attr_get finds the first */
	assert_int_equal(attr_get(rec, "n", &v, &vlen), 1);
	assert_int_equal(vlen, 4);
	assert_string_equal(v, "1234");
	assert_string_equal(attr_at(rec, 1)->value, "5");
	p += used;
	len -= used;
	assert_int_equal(attr_decode(p, len, NULL, rec, &used, &reason), 0);
	/* need more left the previous record alone */
	assert_int_equal(attr_count(rec), 2);
	attr_rec_free(&rec);
}

static void
test_accessors(void **state)
{
	struct attr_rec *rec = attr_rec_new();
	struct buf b;
	const char *reason, *v;
	size_t used, len;
	unsigned long long num = 77;

	(void)state;
	buf_init(&b, 0);
	attr_put_str(&b, "ok", "42");
	attr_put_str(&b, "big", "18446744073709551616");	/* 2^64 */
	attr_put_str(&b, "neg", "-1");
	attr_put_str(&b, "space", " 1");
	attr_put_str(&b, "empty", "");
	attr_put(&b, "nul", "4\0" "2", 3);
	attr_put_str(&b, "word", "12abc");
	attr_end(&b);
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), NULL, rec,
	    &used, &reason), 1);
	assert_int_equal(attr_get_uint(rec, "ok", 0, 100, &num), 1);
	assert_int_equal(num, 42);
	num = 77;
	assert_int_equal(attr_get_uint(rec, "ok", 0, 41, &num), -1);
	assert_int_equal(attr_get_uint(rec, "ok", 43, 100, &num), -1);
	assert_int_equal(attr_get_uint(rec, "big", 0, ~0ULL, &num), -1);
	assert_int_equal(attr_get_uint(rec, "neg", 0, ~0ULL, &num), -1);
	assert_int_equal(attr_get_uint(rec, "space", 0, ~0ULL, &num), -1);
	assert_int_equal(attr_get_uint(rec, "empty", 0, ~0ULL, &num), -1);
	assert_int_equal(attr_get_uint(rec, "nul", 0, ~0ULL, &num), -1);
	assert_int_equal(attr_get_uint(rec, "word", 0, ~0ULL, &num), -1);
	assert_int_equal(num, 77);		/* untouched */
	assert_int_equal(attr_get_uint(rec, "absent", 0, 1, &num), 0);
	assert_null(attr_get_str(rec, "nul"));	/* would be cut */
	assert_int_equal(attr_get(rec, "nul", &v, &len), 1);
	assert_int_equal(len, 3);
	assert_string_equal(attr_get_str(rec, "empty"), "");
	assert_int_equal(attr_get(rec, "absent", &v, &len), 0);
	assert_int_equal(attr_name_ok("a_1", 3), 1);
	assert_int_equal(attr_name_ok("", 0), 0);
	assert_int_equal(attr_name_ok("a.b", 3), 0);
	assert_int_equal(attr_name_ok("Ab", 2), 0);
	buf_deinit(&b);
	attr_rec_free(&rec);
}

static void
test_bad_name_panics(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	/* a bad name is a caller bug: log_panic aborts */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct buf b;

		buf_init(&b, 0);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(1);
		(void)attr_put_str(&b, "Bad Name", "x");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_record_too_large),
		cmocka_unit_test(test_limit_exact),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_encode_limit),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_bad_name_panics),
	};

	return cmocka_run_group_tests_name("attr", tests, NULL, NULL);
}
