/*
 * test_map_file - text tables: the parser on hostile and good input,
 * file:line messages, file: maps, lookups and automatic reload
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "map.h"
#include "mem.h"


static int
group_setup(void **state)
{
	return tmpdir_make("mapf");
}

static int
group_teardown(void **state)
{
	return tmpdir_remove();
}

/* write_text - a text file in tmpdir, written through a rename */
static const char *
write_text(const char *name, const char *text)
{
	return tmpdir_put(name, text, strlen(text));
}

/* a collector for map_text_parse: "key=value;" for each entry */
static int
collect(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	struct buf *b = arg;

	(void)buf_printf(b, "%s=%s@%zu;", key, value, line);
	return 0;
}

static int
parse(const char *text, size_t len, const struct map_text_limits *lim,
    struct buf *out, struct buf *errs)
{
	return map_text_parse(text, len, "t", lim, collect, out, errs);
}

struct bad_case {
	const char	*text;
	size_t		 len;		/* 0: strlen */
	const char	*want;		/* substring of errs */
	const char	*entries;	/* what still got through */
};

static void
test_parse_hostile(void **state)
{
	static char longline[MAP_LINE_MAX + 16], longkey[MAP_KEY_MAX + 16];
	static const char nul[] = "a 1\nb x\0y\nc 3\n";
	struct map_text_limits small = { 64, 8, 10, 3 };
	struct bad_case cases[] = {
		{ longline, 0, "t:2: line too long (over 8192 bytes)",
		    "a=1@1;c=3@4;" },
		{ nul, sizeof(nul) - 1, "t:2: NUL byte in line",
		    "a=1@1;c=3@3;" },
		{ "  orphan value\na 1\n", 0,
		    "t:1: continuation line without a key before it",
		    "a=1@2;" },
		{ "# c\n\n\tafter comment\n", 0,
		    "t:3: continuation line without a key", "" },
		{ "lonely\nb 2\n", 0,
		    "t:1: missing value for key \"lonely\"", "b=2@2;" },
		{ "lonely:   \n", 0, "t:1: missing value for key \"lonely\"",
		    "" },
		{ ": value\n", 0, "t:1: empty key", "" },
		{ longkey, 0, "t:1: key too long (over 1024 bytes)", "" },
		{ "ctl\001key v\n", 0, "t:1: missing value for key", "" },
	};
	struct buf out, errs;
	size_t i;

	(void)state;
	memset(longline, 'x', sizeof(longline) - 1);
	memcpy(longline, "a 1\nk ", 6);
	(void)snprintf(longline + MAP_LINE_MAX + 6, 8, "\n\nc 3\n");
	memset(longkey, 'k', sizeof(longkey) - 1);
	memcpy(longkey + MAP_KEY_MAX + 1, " v\n", 4);
	cases[8].want = NULL;	/* control characters are allowed */
	cases[8].entries = "ctl\001key=v@1;";
	buf_init(&out, 0);
	buf_init(&errs, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		buf_reset(&errs);
		if (parse(cases[i].text, cases[i].len ? cases[i].len :
		    strlen(cases[i].text), &map_text_limits_default, &out,
		    &errs) != (cases[i].want != NULL ? -1 : 0))
			fail_msg("case %zu: wrong result; errors \"%s\"", i,
			    buf_cstr(&errs));
		if (cases[i].want != NULL &&
		    strstr(buf_cstr(&errs), cases[i].want) == NULL)
			fail_msg("case %zu: want \"%s\", got \"%s\"", i,
			    cases[i].want, buf_cstr(&errs));
		assert_string_equal(buf_cstr(&out), cases[i].entries);
	}

	/* small limits: value, joined value and entry count */
	buf_reset(&out);
	buf_reset(&errs);
	assert_int_equal(parse("k 12345678901\n", 14, &small, &out, &errs),
	    -1);
	assert_non_null(strstr(buf_cstr(&errs),
	    "t:1: value too long (over 10 bytes) for key \"k\""));
	buf_reset(&errs);
	assert_int_equal(parse("k 12345\n 67890\n", 15, &small, &out,
	    &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "t:1: value too long"));
	buf_reset(&errs);
	assert_int_equal(parse("k 1\n" "k2 x\n" "\t" "y\n" "long_key9 1\n",
	    24, &small, &out, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "t:4: key too long"));
	buf_reset(&out);
	buf_reset(&errs);
	assert_int_equal(parse("a 1\nb 2\nc 3\nd 4\ne 5\n", 20, &small, &out,
	    &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs),
	    "t:4: too many entries (limit 3)"));
	assert_string_equal(buf_cstr(&out), "a=1@1;b=2@2;c=3@3;");
	/* one error per entry: no cascade from the lines of a bad one */
	buf_reset(&out);
	buf_reset(&errs);
	assert_int_equal(parse("k 1234567890123\n" " more\n" " more\n"
	    "ok 1\n", 33, &small, &out, &errs), -1);
	assert_string_equal(buf_cstr(&errs), "t:1: value too long (over 10 "
	    "bytes) for key \"k\"\n");
	assert_string_equal(buf_cstr(&out), "ok=1@4;");
	buf_deinit(&out);
	buf_deinit(&errs);
}

static void
test_parse_good(void **state)
{
	static const char text[] =
	    "# aliases\n"
	    "\n"
	    "postmaster: root\n"
	    "Root\t  demo@example.test ,  \r\n"
	    "   other@example.test\n"
	    "   # a comment inside a continued entry\n"
	    "\tthird@example.test   \n"
	    "MiXeD@Example.TEST  Value With Case\n"
	    "  \t  \n"
	    "ipv6:2001:db8::1 ok\n"
	    "last value-without-newline";
	struct buf out, errs;

	(void)state;
	buf_init(&out, 0);
	buf_init(&errs, 0);
	assert_int_equal(parse(text, sizeof(text) - 1,
	    &map_text_limits_default, &out, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	assert_string_equal(buf_cstr(&out),
	    "postmaster=root@3;"
	    "root=demo@example.test , other@example.test "
	    "third@example.test@4;"
	    "mixed@example.test=Value With Case@8;"
	    "ipv6:2001:db8::1=ok@10;"
	    "last=value-without-newline@11;");
	/* empty input is an empty table */
	buf_reset(&out);
	assert_int_equal(parse("", 0, &map_text_limits_default, &out, &errs),
	    0);
	assert_string_equal(buf_cstr(&out), "");
	buf_deinit(&out);
	buf_deinit(&errs);
}

static int
refuse_b(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	if (strcmp(key, "b") == 0) {
		*why_r = "refused";
		return -1;
	}
	return 0;
}

static void
test_parse_entry_error(void **state)
{
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(map_text_parse("a 1\nB 2\nc 3\n", 12, "x.txt",
	    &map_text_limits_default, refuse_b, NULL, &errs), -1);
	assert_string_equal(buf_cstr(&errs), "x.txt:2: refused \"B\"\n");
	buf_deinit(&errs);
}

static void
test_open_errors(void **state)
{
	struct buf errs;
	char spec[300];

	(void)state;
	buf_init(&errs, 0);
	assert_null(map_open("file/etc/aliases", &errs));
	assert_non_null(strstr(buf_cstr(&errs), "must be written type:"));
	buf_reset(&errs);
	assert_null(map_open("hash:/etc/aliases", &errs));
	assert_non_null(strstr(buf_cstr(&errs),
	    "hash:/etc/aliases: unknown table type \"hash\""));
	buf_reset(&errs);
	assert_null(map_open("file:etc/aliases", &errs));
	assert_non_null(strstr(buf_cstr(&errs), "must be absolute"));
	buf_reset(&errs);
	(void)snprintf(spec, sizeof(spec), "file:%s/nothere", tmpdir);
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs),
	    "/nothere: No such file or directory"));
	buf_reset(&errs);
	(void)snprintf(spec, sizeof(spec), "file:%s", tmpdir);
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "not a regular file"));
	buf_reset(&errs);
	(void)snprintf(spec, sizeof(spec), "file:%s", write_text("dup",
	    "a 1\nb 2\nA 3\n# x\nb 4\n"));
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs),
	    "/dup:3: duplicate key \"a\" (first at line 1)"));
	assert_non_null(strstr(buf_cstr(&errs),
	    "/dup:5: duplicate key \"b\" (first at line 2)"));
	assert_int_equal(map_check(spec, &errs), -1);
	/* several errors in one file are all reported, with their lines */
	buf_reset(&errs);
	(void)snprintf(spec, sizeof(spec), "file:%s", write_text("multi",
	    "ok 1\n bad: continuation is fine\nnovalue\n\n  \n\t\n"
	    "novalue2\n"));
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs),
	    "/multi:3: missing value for key \"novalue\" (expected: key "
	    "whitespace value)\n"));
	assert_non_null(strstr(buf_cstr(&errs),
	    "/multi:7: missing value for key \"novalue2\""));
	buf_deinit(&errs);
}

static void
test_lookup(void **state)
{
	struct buf errs;
	struct reply r;
	struct map *m;
	char spec[300], *v, key[MAP_KEY_MAX + 10];

	(void)state;
	buf_init(&errs, 0);
	(void)snprintf(spec, sizeof(spec), "file:%s", write_text("aliases",
	    "postmaster: root\nroot demo@example.test,\n  x@example.test\n"
	    "Demo@Example.Test demo\n"));
	assert_int_equal(map_check(spec, &errs), 0);
	m = map_open(spec, &errs);
	assert_non_null(m);
	assert_string_equal(map_spec(m), spec);
	assert_int_equal(map_lookup(m, "postmaster", &v, &r), 1);
	assert_string_equal(v, "root");
	free(v);
	assert_int_equal(map_lookup(m, "ROOT", &v, &r), 1);
	assert_string_equal(v, "demo@example.test, x@example.test");
	free(v);
	assert_int_equal(map_lookup(m, "demo@EXAMPLE.test", &v, &r), 1);
	assert_string_equal(v, "demo");
	free(v);
	assert_int_equal(map_lookup(m, "nobody", &v, &r), 0);
	assert_null(v);
	assert_int_equal(map_lookup(m, "", &v, &r), 0);
	assert_int_equal(map_lookup(m, "postmaster ", &v, &r), 0);
	memset(key, 'a', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(map_lookup(m, key, &v, &r), 0);
	map_close(&m);
	assert_null(m);
	map_close(&m);
	buf_deinit(&errs);
}

static void
test_reload(void **state)
{
	struct buf errs;
	struct reply r;
	struct map *m;
	char spec[300], *v;
	const char *path;

	(void)state;
	buf_init(&errs, 0);
	path = write_text("virtual", "a@example.test one\n");
	(void)snprintf(spec, sizeof(spec), "file:%s", path);
	m = map_open(spec, &errs);
	assert_non_null(m);
	assert_int_equal(map_lookup(m, "a@example.test", &v, &r), 1);
	assert_string_equal(v, "one");
	free(v);
	/* same size, replaced by rename: seen at the next lookup */
	(void)write_text("virtual", "a@example.test two\n");
	assert_int_equal(map_lookup(m, "a@example.test", &v, &r), 1);
	assert_string_equal(v, "two");
	free(v);
	/* a broken table defers: 451 4.3.0, never a guess */
	(void)write_text("virtual", "a@example.test two\n broken\n \t x\n"
	    "novalue\n");
	memset(&r, 0, sizeof(r));
	assert_int_equal(map_lookup(m, "a@example.test", &v, &r), -1);
	assert_null(v);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_int_equal(map_lookup(m, "a@example.test", &v, &r), -1);
	/* a removed file too */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(map_lookup(m, "a@example.test", &v, &r), -1);
	/* fixed: back in service */
	(void)write_text("virtual", "a@example.test three\nb@example.test "
	    "b\n");
	assert_int_equal(map_lookup(m, "b@example.test", &v, &r), 1);
	assert_string_equal(v, "b");
	free(v);
	assert_int_equal(map_lookup(m, "a@example.test", &v, &r), 1);
	assert_string_equal(v, "three");
	free(v);
	map_close(&m);
	buf_deinit(&errs);
}

static void
test_check(void **state)
{
	char spec[PATH_MAX + 8], path[PATH_MAX], *v;
	struct buf errs;
	struct reply r;
	struct map *m;

	(void)state;
	buf_init(&errs, 0);
	(void)snprintf(spec, sizeof(spec), "file:%s", write_text("chk",
	    "a 1\n\tb\n"));
	assert_int_equal(map_check(spec, &errs), 0);
	(void)write_text("chk", "a 1\nb\n");
	assert_int_equal(map_check(spec, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "/chk:2: missing value"));
	/* the shipped example is valid and answers */
	buf_reset(&errs);
	assert_non_null(realpath("conf/aliases", path));
	(void)snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(map_check(spec, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	m = map_open(spec, &errs);
	assert_non_null(m);
	assert_int_equal(map_lookup(m, "Postmaster", &v, &r), 1);
	assert_string_equal(v, "demo@example.test");
	free(v);
	assert_int_equal(map_lookup(m, "staff", &v, &r), 0);
	map_close(&m);
	buf_reset(&errs);
	assert_int_equal(map_check("nosuch:/x", &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "unknown table type"));
	buf_deinit(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_entry_error),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests_name("map_file", tests, group_setup,
	    group_teardown);
}
