/*
 * test_buf - the bounded byte buffer: limits first (EMSGSIZE leaves the
 * buffer unchanged), then growth, printf, consume, truncate, steal
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

#include "buf.h"

static void
test_limit_append(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	errno = 0;
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(buf_len(&b), 10);
	assert_string_equal(buf_cstr(&b), "0123456789");
	errno = 0;
	assert_int_equal(buf_putc(&b, 'x'), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(buf_puts(&b, "y"), -1);
	/* empty appends still fit */
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_string_equal(buf_cstr(&b), "0123456789");
	buf_deinit(&b);
}

static void
test_limit_partial(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "abcde"), 0);
	/* 5 + 4 > 8: nothing of it goes in */
	assert_int_equal(buf_puts(&b, "fghi"), -1);
	assert_int_equal(buf_len(&b), 5);
	assert_string_equal(buf_cstr(&b), "abcde");
	/* a length that would wrap size_t */
	assert_int_equal(buf_append(&b, "z", SIZE_MAX), -1);
	assert_int_equal(buf_append(&b, "z", SIZE_MAX - 2), -1);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
	assert_int_equal(buf_len(&b), 5);
	assert_int_equal(buf_puts(&b, "fgh"), 0);
	assert_string_equal(buf_cstr(&b), "abcdefgh");
	buf_deinit(&b);
}

static void
test_limit_printf(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 12);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "ab"), 0);
	errno = 0;
	assert_int_equal(buf_printf(&b, "%s", "0123456789"), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_string_equal(buf_cstr(&b), "42-ab");
	assert_int_equal(buf_len(&b), 5);
	/* exactly to the limit */
	assert_int_equal(buf_printf(&b, "%07d", 7), 0);
	assert_string_equal(buf_cstr(&b), "42-ab0000007");
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(buf_printf(&b, "x"), -1);
	buf_deinit(&b);
}

static void
test_printf_growth(void **state)
{
	struct buf *b = buf_new(0);
	char want[32];
	size_t total = 0;
	int i, n;

	(void)state;
	assert_int_equal(b->max, BUF_MAX_DEFAULT);
	assert_string_equal(buf_cstr(b), "");
	for (i = 0; i < 2000; i++) {
		assert_int_equal(buf_printf(b, "%d,", i), 0);
		n = snprintf(want, sizeof(want), "%d,", i);
		total += (size_t)n;
	}
	assert_int_equal(buf_len(b), total);
	assert_int_equal(strlen(buf_cstr(b)), total);	/* NUL-terminated */
	assert_memory_equal(buf_cstr(b), "0,1,2,3,", 8);
	assert_non_null(strstr(buf_cstr(b), ",1998,1999,"));
	/* one printf much larger than the capacity so far */
	buf_reset(b);
	assert_int_equal(buf_printf(b, "%5000s|", "x"), 0);
	assert_int_equal(buf_len(b), 5001);
	assert_int_equal(buf_cstr(b)[4999], 'x');
	assert_int_equal(buf_cstr(b)[5000], '|');
	buf_free(&b);
	assert_null(b);
	buf_free(&b);	/* freeing NULL is fine */
}

static void
test_binary(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(buf_putc(&b, '\0'), 0);
	assert_int_equal(buf_len(&b), 4);
	assert_memory_equal(b.data, "a\0b\0", 5);
	buf_deinit(&b);
	assert_null(b.data);
	assert_int_equal(buf_len(&b), 0);
}

static void
test_consume_truncate(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	buf_puts(&b, "hello world");
	buf_consume(&b, 0);
	assert_string_equal(buf_cstr(&b), "hello world");
	buf_consume(&b, 6);
	assert_string_equal(buf_cstr(&b), "world");
	assert_int_equal(buf_len(&b), 5);
	buf_truncate(&b, 3);
	assert_string_equal(buf_cstr(&b), "wor");
	buf_truncate(&b, 3);
	assert_string_equal(buf_cstr(&b), "wor");
	buf_consume(&b, 3);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_len(&b), 0);
	/* the space freed at the front is usable again */
	buf_puts(&b, "again");
	assert_string_equal(buf_cstr(&b), "again");
	buf_reset(&b);
	assert_string_equal(buf_cstr(&b), "");
	buf_truncate(&b, 0);
	buf_deinit(&b);
	/* on a buffer that never held data */
	buf_init(&b, 0);
	buf_reset(&b);
	buf_truncate(&b, 0);
	buf_consume(&b, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_deinit(&b);
}

static void
test_consume_limit_counts_live_bytes(void **state)
{
	struct buf b;
	int i;

	(void)state;
	/* a buffer used as a queue stays within its limit forever */
	buf_init(&b, 16);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(buf_puts(&b, "0123456789"), 0);
		buf_consume(&b, 10);
	}
	assert_true(b.cap <= 17);
	buf_deinit(&b);
}

static void
test_steal(void **state)
{
	struct buf b;
	char *p;

	(void)state;
	buf_init(&b, 0);
	p = buf_steal(&b);
	assert_string_equal(p, "");
	free(p);
	buf_puts(&b, "mine");
	p = buf_steal(&b);
	assert_string_equal(p, "mine");
	assert_int_equal(buf_len(&b), 0);
	assert_string_equal(buf_cstr(&b), "");
	free(p);
	/* still usable after */
	assert_int_equal(buf_puts(&b, "x"), 0);
	assert_string_equal(buf_cstr(&b), "x");
	buf_deinit(&b);
}

static int
dies_with_abort(void (*fn)(void))
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(1);
		fn();
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void
over_consume(void)
{
	struct buf b;

	buf_init(&b, 0);
	buf_puts(&b, "abc");
	buf_consume(&b, 4);
}

static void
over_truncate(void)
{
	struct buf b;

	buf_init(&b, 0);
	buf_puts(&b, "abc");
	buf_truncate(&b, 4);
}

static void
test_misuse_panics(void **state)
{
	(void)state;
	assert_true(dies_with_abort(over_consume));
	assert_true(dies_with_abort(over_truncate));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_append),
		cmocka_unit_test(test_limit_partial),
		cmocka_unit_test(test_limit_printf),
		cmocka_unit_test(test_printf_growth),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_consume_truncate),
		cmocka_unit_test(test_consume_limit_counts_live_bytes),
		cmocka_unit_test(test_steal),
		cmocka_unit_test(test_misuse_panics),
	};

	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
