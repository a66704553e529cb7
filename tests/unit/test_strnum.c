/*
 * test_strnum - strict number parsing: hostile strings first (signs,
 * spaces, overflow, junk, empty), ranges, units; a failure leaves the
 * output untouched
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "strnum.h"

#define UNTOUCHED	0x5a5a

struct ucase {
	const char *s;
	unsigned long long min, max;
	int	 rc;
	unsigned long long want;
};

static void
test_uint(void **state)
{
	static const struct ucase cases[] = {
		{ "", 0, ULLONG_MAX, -1, 0 },
		{ " 1", 0, ULLONG_MAX, -1, 0 },
		{ "1 ", 0, ULLONG_MAX, -1, 0 },
		{ "\t1", 0, ULLONG_MAX, -1, 0 },
		{ "1\n", 0, ULLONG_MAX, -1, 0 },
		{ "+1", 0, ULLONG_MAX, -1, 0 },
		{ "-1", 0, ULLONG_MAX, -1, 0 },
		{ "-0", 0, ULLONG_MAX, -1, 0 },
		{ "0x10", 0, ULLONG_MAX, -1, 0 },
		{ "1e3", 0, ULLONG_MAX, -1, 0 },
		{ "12abc", 0, ULLONG_MAX, -1, 0 },
		{ "1.5", 0, ULLONG_MAX, -1, 0 },
		{ "18446744073709551616", 0, ULLONG_MAX, -1, 0 },
		{ "99999999999999999999999999", 0, ULLONG_MAX, -1, 0 },
		{ "11", 0, 10, -1, 0 },
		{ "4", 5, 10, -1, 0 },
		{ "0", 0, 0, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "5", 5, 10, 0, 5 },
		{ "007", 0, 10, 0, 7 },
		{ "18446744073709551615", 0, ULLONG_MAX, 0, ULLONG_MAX },
	};
	unsigned long long v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = UNTOUCHED;
		if (str_to_uint(cases[i].s, cases[i].min, cases[i].max, &v) !=
		    cases[i].rc)
			fail_msg("case %zu \"%s\": wrong result", i,
			    cases[i].s);
		if (v != (cases[i].rc == 0 ? cases[i].want : UNTOUCHED))
			fail_msg("case %zu \"%s\": value %llu", i, cases[i].s,
			    v);
	}
}

struct icase {
	const char *s;
	long long min, max;
	int	 rc;
	long long want;
};

static void
test_int(void **state)
{
	static const struct icase cases[] = {
		{ "", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "-", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "--1", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "+1", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ " -1", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "- 1", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "-1 ", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "1-", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "9223372036854775808", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "-9223372036854775809", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "-1", 0, 100, -1, 0 },
		{ "101", 0, 100, -1, 0 },
		{ "-5", -5, 5, 0, -5 },
		{ "-0", -5, 5, 0, 0 },
		{ "5", -5, 5, 0, 5 },
		{ "9223372036854775807", LLONG_MIN, LLONG_MAX, 0, LLONG_MAX },
		{ "-9223372036854775808", LLONG_MIN, LLONG_MAX, 0, LLONG_MIN },
	};
	long long v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = UNTOUCHED;
		if (str_to_int(cases[i].s, cases[i].min, cases[i].max, &v) !=
		    cases[i].rc)
			fail_msg("case %zu \"%s\": wrong result", i,
			    cases[i].s);
		if (v != (cases[i].rc == 0 ? cases[i].want : UNTOUCHED))
			fail_msg("case %zu \"%s\": value %lld", i, cases[i].s,
			    v);
	}
}

static void
test_time(void **state)
{
	static const struct icase cases[] = {
		{ "", 0, LLONG_MAX, -1, 0 },
		{ "s", 0, LLONG_MAX, -1, 0 },
		{ "m5", 0, LLONG_MAX, -1, 0 },
		{ "5x", 0, LLONG_MAX, -1, 0 },
		{ "5ms", 0, LLONG_MAX, -1, 0 },
		{ "5 m", 0, LLONG_MAX, -1, 0 },
		{ " 5m", 0, LLONG_MAX, -1, 0 },
		{ "-5m", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "+5m", 0, LLONG_MAX, -1, 0 },
		{ "2h", 0, 3600, -1, 0 },		/* range after the unit */
		{ "9223372036854775807w", 0, LLONG_MAX, -1, 0 },
		{ "15250284452472w", 0, LLONG_MAX, -1, 0 },
		{ "99999999999999999999", 0, LLONG_MAX, -1, 0 },
		{ "0", 0, 10, 0, 0 },
		{ "30", 0, LLONG_MAX, 0, 30 },
		{ "30s", 0, LLONG_MAX, 0, 30 },
		{ "5m", 0, LLONG_MAX, 0, 300 },
		{ "5M", 0, LLONG_MAX, 0, 300 },
		{ "2h", 0, LLONG_MAX, 0, 7200 },
		{ "1d", 0, LLONG_MAX, 0, 86400 },
		{ "2w", 0, LLONG_MAX, 0, 1209600 },
		{ "1h", 0, 3600, 0, 3600 },
		{ "15250284452471w", 0, LLONG_MAX, 0, 15250284452471LL * 604800 },
	};
	long long v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = UNTOUCHED;
		if (str_to_time(cases[i].s, cases[i].min, cases[i].max, &v) !=
		    cases[i].rc)
			fail_msg("case %zu \"%s\": wrong result", i,
			    cases[i].s);
		if (v != (cases[i].rc == 0 ? cases[i].want : UNTOUCHED))
			fail_msg("case %zu \"%s\": value %lld", i, cases[i].s,
			    v);
	}
}

static void
test_size(void **state)
{
	static const struct icase cases[] = {
		{ "", 0, LLONG_MAX, -1, 0 },
		{ "k", 0, LLONG_MAX, -1, 0 },
		{ "1t", 0, LLONG_MAX, -1, 0 },
		{ "1kb", 0, LLONG_MAX, -1, 0 },
		{ "1b", 0, LLONG_MAX, -1, 0 },
		{ "1 k", 0, LLONG_MAX, -1, 0 },
		{ "-1k", LLONG_MIN, LLONG_MAX, -1, 0 },
		{ "2g", 0, 1LL << 30, -1, 0 },
		{ "8589934592g", 0, LLONG_MAX, -1, 0 },	/* 2^33 GiB */
		{ "0", 0, 10, 0, 0 },
		{ "100", 0, LLONG_MAX, 0, 100 },
		{ "1k", 0, LLONG_MAX, 0, 1024 },
		{ "1K", 0, LLONG_MAX, 0, 1024 },
		{ "10m", 0, LLONG_MAX, 0, 10 * 1024 * 1024 },
		{ "1g", 0, 1LL << 30, 0, 1LL << 30 },
		{ "8589934591g", 0, LLONG_MAX, 0, 8589934591LL << 30 },
	};
	long long v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = UNTOUCHED;
		if (str_to_size(cases[i].s, cases[i].min, cases[i].max, &v) !=
		    cases[i].rc)
			fail_msg("case %zu \"%s\": wrong result", i,
			    cases[i].s);
		if (v != (cases[i].rc == 0 ? cases[i].want : UNTOUCHED))
			fail_msg("case %zu \"%s\": value %lld", i, cases[i].s,
			    v);
	}
}

static void
test_bool(void **state)
{
	static const char *yes[] = { "yes", "YES", "True", "on", "1" };
	static const char *no[] = { "no", "No", "FALSE", "off", "0" };
	static const char *bad[] = { "", "y", "n", "yes ", " no", "2",
	    "enable", "01", "yess" };
	bool v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = false;
		assert_int_equal(str_to_bool(yes[i], &v), 0);
		assert_true(v);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = true;
		assert_int_equal(str_to_bool(no[i], &v), 0);
		assert_false(v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = true;
		if (str_to_bool(bad[i], &v) != -1 || !v)
			fail_msg("\"%s\" accepted or output changed", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_bool),
	};

	return cmocka_run_group_tests_name("strnum", tests, NULL, NULL);
}
