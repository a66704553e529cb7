/*
 * test_smtp_data - the DATA/BDAT byte reader: smuggling attempts and
 * bare line ends first, then dot-unstuffing, size counting and split
 * input (every split point of each case gives the same result)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

struct dcase {
	const char *in;
	int	 done;		/* end marker expected */
	size_t	 used;		/* bytes consumed (when done) */
	const char *out;
	unsigned flags;
};

/* run - push in (len bytes) in two parts split at cut; returns used */
static size_t
run(const char *in, size_t len, size_t cut, unsigned opts, char *out,
    size_t *outlen, struct smtp_data *st)
{
	size_t used, o1, o2;

	smtp_data_init(st, opts);
	used = smtp_data_push(st, in, cut, out, &o1);
	if (!st->is_done) {
		used += smtp_data_push(st, in + cut, len - cut, out + o1,
		    &o2);
		o1 += o2;
	}
	*outlen = o1;
	return used;
}

static void
check_cases(const struct dcase *c, size_t n, unsigned opts)
{
	struct smtp_data st;
	char out[1024];
	size_t i, cut, len, used, olen;

	for (i = 0; i < n; i++) {
		len = strlen(c[i].in);
		for (cut = 0; cut <= len; cut++) {
			used = run(c[i].in, len, cut, opts, out, &olen, &st);
			if (opts & SMTP_DATA_RAW)
				olen += smtp_data_finish(&st, out + olen);
			if ((int)st.is_done != c[i].done)
				fail_msg("case %zu cut %zu: done %d", i, cut,
				    st.is_done);
			if (c[i].done && used != c[i].used)
				fail_msg("case %zu cut %zu: used %zu", i, cut,
				    used);
			if (!c[i].done && used != len)
				fail_msg("case %zu cut %zu: used %zu of %zu",
				    i, cut, used, len);
			if (olen != strlen(c[i].out) ||
			    memcmp(out, c[i].out, olen) != 0)
				fail_msg("case %zu cut %zu: out \"%.*s\"", i,
				    cut, (int)olen, out);
			if (st.flags != c[i].flags)
				fail_msg("case %zu cut %zu: flags %u", i, cut,
				    st.flags);
			if (st.size != olen)
				fail_msg("case %zu cut %zu: size %llu", i,
				    cut, (unsigned long long)st.size);
		}
	}
}

static void
test_smuggling(void **state)
{
	static const struct dcase c[] = {
		/* none of these is the end of the data */
		{ "a\n.\nb", 0, 0, "a\r\n.\r\nb", SMTP_DATA_BARE_LF },
		{ "a\r\n.\nb", 0, 0, "a\r\n.\r\nb", SMTP_DATA_BARE_LF },
		{ "a\n.\r\nb", 0, 0, "a\r\n.\r\nb", SMTP_DATA_BARE_LF },
		{ "a\r.\rb", 0, 0, "a\r.\rb", SMTP_DATA_BARE_CR },
		{ "a\r.\r\nb", 0, 0, "a\r.\r\nb", SMTP_DATA_BARE_CR },
		{ "a\r\n.\rb", 0, 0, "a\r\n\rb", SMTP_DATA_BARE_CR },
		{ "a\r\n..\r\nb", 0, 0, "a\r\n.\r\nb", 0 },
		{ "a\r\n. \r\nb", 0, 0, "a\r\n \r\nb", 0 },
		/* ...and the real end follows the fake ones */
		{ "x\n.\r\n\r\n.\r\nQUIT\r\n", 1, 10, "x\r\n.\r\n\r\n",
		    SMTP_DATA_BARE_LF },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]), 0);
}

static void
test_data(void **state)
{
	static const struct dcase c[] = {
		{ ".\r\n", 1, 3, "", 0 },
		{ ".\r\nMAIL FROM:<a@b>\r\n", 1, 3, "", 0 },
		{ "Subject: x\r\n\r\nbody\r\n.\r\n", 1, 23,
		    "Subject: x\r\n\r\nbody\r\n", 0 },
		{ "..a\r\n...\r\n.\r\n", 1, 13, ".a\r\n..\r\n", 0 },
		{ "a.\r\n.b\r\n.\r\n", 1, 11, "a.\r\nb\r\n", 0 },
		{ "a\r\n", 0, 0, "a\r\n", 0 },
		{ "a\rb\r\n.\r\n", 1, 8, "a\rb\r\n", SMTP_DATA_BARE_CR },
		{ "a\nb\r\n.\r\n", 1, 8, "a\r\nb\r\n", SMTP_DATA_BARE_LF },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]), 0);
}

static void
test_raw(void **state)
{
	static const struct dcase c[] = {
		{ "", 0, 0, "", 0 },
		{ "a\r\n", 0, 0, "a\r\n", 0 },
		{ ".\r\n", 0, 0, ".\r\n", 0 },
		{ "..x\r\n.\r\n", 0, 0, "..x\r\n.\r\n", 0 },
		{ "a", 0, 0, "a\r\n", 0 },
		{ "a\n", 0, 0, "a\r\n", SMTP_DATA_BARE_LF },
		{ "a\r", 0, 0, "a\r\r\n", SMTP_DATA_BARE_CR },
		{ "a\rb\r\n", 0, 0, "a\rb\r\n", SMTP_DATA_BARE_CR },
	};

	(void)state;
	check_cases(c, sizeof(c) / sizeof(c[0]), SMTP_DATA_RAW);
}

/* after the end, nothing more is consumed */
static void
test_done(void **state)
{
	struct smtp_data st;
	char out[64];
	size_t o;

	(void)state;
	smtp_data_init(&st, 0);
	assert_int_equal(smtp_data_push(&st, "x\r\n.\r\nNOOP\r\n", 12, out,
	    &o), 6);
	assert_true(st.is_done);
	assert_int_equal(o, 3);
	assert_int_equal(smtp_data_push(&st, "NOOP\r\n", 6, out, &o), 0);
	assert_int_equal(o, 0);
	assert_int_equal(st.lines, 1);
}

/* a large message byte by byte and in one go give the same output */
static void
test_big(void **state)
{
	struct smtp_data a, b;
	size_t n = 100000, i, o, oa = 0, ob;
	char *in = malloc(n + 5), *outa = malloc(SMTP_DATA_OUT_MAX(n + 5));
	char *outb = malloc(SMTP_DATA_OUT_MAX(n + 5));

	(void)state;
	srand(7);
	for (i = 0; i < n; i++) {
		static const char alpha[] = "ab.\r\n\r\n..x";

		in[i] = alpha[rand() % (int)(sizeof(alpha) - 1)];
	}
	memcpy(in + n, "\r\n.\r\n", 5);
	smtp_data_init(&a, 0);
	smtp_data_init(&b, 0);
	for (i = 0; i < n + 5 && !a.is_done; i++) {
		(void)smtp_data_push(&a, in + i, 1, outa + oa, &o);
		oa += o;
	}
	(void)smtp_data_push(&b, in, n + 5, outb, &ob);
	assert_true(a.is_done);
	assert_true(b.is_done);
	assert_int_equal(oa, ob);
	assert_memory_equal(outa, outb, oa);
	assert_int_equal(a.size, b.size);
	assert_true(ob <= SMTP_DATA_OUT_MAX(n + 5));
	free(in);
	free(outa);
	free(outb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_done),
		cmocka_unit_test(test_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
