/*
 * test_cfg - the configuration parser: good input, malformed input,
 * types and ranges, continuation lines, expansion, file:line messages
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

#define S1	0x1
#define S2	0x2

static const struct cfg_def defs[] = {
	{ "name", CFG_STR, "default", 0, 0, NULL, S1, NULL },
	{ "greeting", CFG_STR, "$name says hi", 0, 0, NULL, S1, NULL },
	{ "count", CFG_INT, "10", 1, 100, NULL, S1, NULL },
	{ "flag", CFG_BOOL, "no", 0, 0, NULL, S1, NULL },
	{ "timeout", CFG_TIME, "5m", 1, 3600, NULL, S1, NULL },
	{ "limit", CFG_SIZE, "10m", 0, 1LL << 30, NULL, S1, NULL },
	{ "mode", CFG_ENUM, "may", 0, 0, "none|may|encrypt", S1, NULL },
	{ "other", CFG_STR, "", 0, 0, NULL, S2, NULL },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

static int
parse(struct cfg *c, const char *text, struct buf *errs)
{
	return cfg_parse(c, text, strlen(text), "t.conf", S1, errs);
}

static void
test_defaults(void **state)
{
	struct cfg *c = cfg_new(defs, S1);

	(void)state;
	assert_string_equal(cfg_str(c, "name"), "default");
	assert_string_equal(cfg_str(c, "greeting"), "default says hi");
	assert_int_equal(cfg_int(c, "count"), 10);
	assert_false(cfg_bool(c, "flag"));
	assert_int_equal(cfg_int(c, "timeout"), 300);
	assert_int_equal(cfg_int(c, "limit"), 10 * 1024 * 1024);
	assert_string_equal(cfg_str(c, "mode"), "may");
	assert_null(cfg_origin(c, "name"));
	assert_false(cfg_is_defined(c, "other"));
	cfg_free(&c);
	assert_null(c);
}

static void
test_good_file(void **state)
{
	struct cfg *c = cfg_new(defs, S1);
	struct buf errs;
	const char *text =
	    "# comment\n"
	    "\n"
	    "name = alpha\n"
	    "count=42\r\n"
	    "   # indented comment inside nothing\n"
	    "flag = yes\n"
	    "greeting = hello,\n"
	    "   # a comment inside a continued setting\n"
	    "    ${name}   \n"
	    "timeout = 1h\n"
	    "limit = 1k\n"
	    "mode = encrypt\n"
	    "count = 43\n";

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(parse(c, text, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	assert_string_equal(cfg_str(c, "name"), "alpha");
	assert_int_equal(cfg_int(c, "count"), 43);
	assert_true(cfg_bool(c, "flag"));
	assert_string_equal(cfg_str(c, "greeting"), "hello, alpha");
	assert_int_equal(cfg_int(c, "timeout"), 3600);
	assert_int_equal(cfg_int(c, "limit"), 1024);
	assert_string_equal(cfg_str(c, "mode"), "encrypt");
	assert_string_equal(cfg_origin(c, "count"), "t.conf:13");
	assert_string_equal(cfg_origin(c, "greeting"), "t.conf:7");
	/* expansion follows a later change */
	assert_int_equal(cfg_set(c, "name", "beta", "cmd", &errs), 0);
	assert_string_equal(cfg_str(c, "greeting"), "hello, beta");
	buf_deinit(&errs);
	cfg_free(&c);
}

struct bad_case {
	const char *text;
	const char *want;	/* substring of the error */
};

static void
test_bad_input(void **state)
{
	static const struct bad_case cases[] = {
		{ "nosuch = 1\n", "t.conf:1: unknown setting \"nosuch\"" },
		{ "\n\ncount = 101\n", "t.conf:3: bad value \"101\" for count" },
		{ "count = -1\n", "t.conf:1: bad value" },
		{ "count = 99999999999999999999999\n", "t.conf:1: bad value" },
		{ "count = 12abc\n", "t.conf:1: bad value" },
		{ "count =\n", "t.conf:1: bad value" },
		{ "flag = maybe\n", "expected yes or no" },
		{ "timeout = 5x\n", "t.conf:1: bad value" },
		{ "timeout = 2d\n", "range 1..3600" },
		{ "limit = 2g\n", "t.conf:1: bad value" },
		{ "mode = verify\n", "expected one of none,may,encrypt" },
		{ "just words\n", "t.conf:1: missing '='" },
		{ "  name = x\n", "t.conf:1: continuation line without" },
		{ "Bad-Name = x\n", "t.conf:1: bad setting name" },
		{ "= x\n", "t.conf:1: bad setting name" },
		{ "other = x\n", "does not belong in this file" },
		{ "name = a\0b\n", "NUL byte" },
	};
	struct buf errs;
	struct cfg *c;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = cfg_new(defs, S1 | S2);
		buf_init(&errs, 0);
		len = strlen(cases[i].text);
		if (i == sizeof(cases) / sizeof(cases[0]) - 1)
			len = 11;	/* through the NUL */
		assert_int_equal(cfg_parse(c, cases[i].text, len, "t.conf",
		    S1, &errs), -1);
		if (strstr(buf_cstr(&errs), cases[i].want) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i,
			    buf_cstr(&errs), cases[i].want);
		buf_deinit(&errs);
		cfg_free(&c);
	}
}

static void
test_all_errors_reported(void **state)
{
	struct cfg *c = cfg_new(defs, S1);
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(parse(c, "a = 1\ncount = 5\nb = 2\ncount = 0\n",
	    &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "t.conf:1:"));
	assert_non_null(strstr(buf_cstr(&errs), "t.conf:3:"));
	assert_non_null(strstr(buf_cstr(&errs), "t.conf:4:"));
	/* the good line in between still took effect */
	assert_int_equal(cfg_int(c, "count"), 5);
	buf_deinit(&errs);
	cfg_free(&c);
}

static void
test_long_line(void **state)
{
	struct cfg *c = cfg_new(defs, S1);
	struct buf errs;
	size_t n = CFG_LINE_MAX + 100;
	char *text = malloc(n + 1);

	(void)state;
	memset(text, 'x', n);
	memcpy(text, "name = ", 7);
	text[n - 1] = '\n';
	text[n] = '\0';
	buf_init(&errs, 0);
	assert_int_equal(parse(c, text, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "t.conf:1: line too long"));
	assert_string_equal(cfg_str(c, "name"), "default");
	free(text);
	buf_deinit(&errs);
	cfg_free(&c);
}

static void
test_expansion_loop(void **state)
{
	struct cfg *c = cfg_new(defs, S1);
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	/* a self-reference must end, not recurse forever */
	assert_int_equal(parse(c, "name = $name$name\n", &errs), 0);
	assert_true(strlen(cfg_str(c, "name")) < 100000);
	assert_int_equal(cfg_set(c, "name", "$$ and $nosuch", "x", &errs), 0);
	assert_string_equal(cfg_str(c, "name"), "$ and ${nosuch}");
	buf_deinit(&errs);
	cfg_free(&c);
}

static void
test_files(void **state)
{
	char dir[] = "/tmp/test_cfg.XXXXXX", path[256];
	struct cfg *c = cfg_new(defs, S1);
	struct buf errs;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.conf", dir);
	buf_init(&errs, 0);
	assert_int_equal(cfg_load_file(c, path, S1, true, &errs), 0);
	assert_int_equal(cfg_load_file(c, path, S1, false, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "cannot open"));
	buf_reset(&errs);
	fp = fopen(path, "w");
	fputs("count = 7\nflag = on\ncount = 1000\n", fp);
	fclose(fp);
	assert_int_equal(cfg_load_file(c, path, S1, false, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), ":3: bad value \"1000\""));
	assert_int_equal(cfg_int(c, "count"), 7);
	unlink(path);
	rmdir(dir);
	buf_deinit(&errs);
	cfg_free(&c);
}

static void
test_assignment_and_list(void **state)
{
	struct cfg *c = cfg_new(defs, S1);
	struct buf errs;
	const char *pos = " a, b  c,,d ";
	char item[8];
	int n = 0;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(cfg_set_assignment(c, "count = 9", "-o", &errs), 0);
	assert_int_equal(cfg_int(c, "count"), 9);
	assert_int_equal(cfg_set_assignment(c, "count", "-o", &errs), -1);
	assert_int_equal(cfg_set_assignment(c, "=3", "-o", &errs), -1);
	while (cfg_list_next(&pos, item, sizeof(item)) == 1)
		n++;
	assert_int_equal(n, 4);
	pos = "short waytoolongitem";
	assert_int_equal(cfg_list_next(&pos, item, sizeof(item)), 1);
	assert_string_equal(item, "short");
	assert_int_equal(cfg_list_next(&pos, item, sizeof(item)), -1);
	buf_deinit(&errs);
	cfg_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_expansion_loop),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_assignment_and_list),
	};

	return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
