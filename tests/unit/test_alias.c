/*
 * test_alias - alias expansion: hostile addresses and values, loops,
 * limits, temporary failures, then keys, lists, owners and extensions
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "buf.h"
#include "mem.h"

struct fake {
	const char *const *kv;		/* key, value, ..., NULL */
	unsigned lookups;
	int	 domain_fails;
};

static int
fake_lookup(void *arg, const char *key, char **value_r, struct reply *r)
{
	struct fake *f = arg;
	size_t i;

	f->lookups++;
	if (strcmp(key, "tempfail@example.test") == 0 ||
	    strcmp(key, "tempfail") == 0) {
		reply_set(r, 451, "4.3.0", "Temporary lookup failure");
		return -1;
	}
	for (i = 0; f->kv[i] != NULL; i += 2)
		if (strcmp(f->kv[i], key) == 0) {
			*value_r = xstrdup(f->kv[i + 1]);
			return 1;
		}
	return 0;
}

static int
fake_domain(void *arg, const char *domain, enum alias_domain *class_r,
    struct reply *r)
{
	struct fake *f = arg;

	if (f->domain_fails) {
		reply_set(r, 451, "4.3.0", "Temporary lookup failure");
		return -1;
	}
	if (strcmp(domain, "example.test") == 0 ||
	    strcmp(domain, "localhost") == 0)
		*class_r = ALIAS_D_LOCAL;
	else if (strcmp(domain, "virt.test") == 0)
		*class_r = ALIAS_D_VIRTUAL;
	else
		*class_r = ALIAS_D_REMOTE;
	return 0;
}

static const struct alias_ops ops = {
	.lookup = fake_lookup,
	.domain = fake_domain,
	.delimiters = "+-",
};

/* expand rcpt; on success the targets as "addr[>owner][!]" joined by ' ' */
static int
expand(const char *const *kv, const char *rcpt,
    const struct alias_limits *lim, char *out, size_t outsz,
    struct reply *r, unsigned *lookups_r)
{
	struct fake f = { kv, 0, 0 };
	struct alias_result res;
	struct buf b;
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = alias_expand(rcpt, &ops, &f, lim, &res, r);
	if (lookups_r != NULL)
		*lookups_r = f.lookups;
	buf_init(&b, 0);
	for (i = 0; i < res.n; i++) {
		(void)buf_printf(&b, "%s%s", i > 0 ? " " : "", res.t[i].addr);
		if (res.t[i].owner != NULL)
			(void)buf_printf(&b, ">%s", res.t[i].owner);
		if (res.t[i].is_remote)
			(void)buf_putc(&b, '!');
	}
	(void)snprintf(out, outsz, "%s", buf_cstr(&b));
	buf_deinit(&b);
	if (rc == 0)
		assert_int_equal(res.n > 0, 1);
	else
		assert_int_equal(res.n, 0);
	alias_result_free(&res);
	return rc;
}

static const char *const none[] = { NULL };

static void
want_fail(const char *const *kv, const char *rcpt, const char *dsn)
{
	char out[4096];
	struct reply r;

	assert_int_equal(expand(kv, rcpt, NULL, out, sizeof(out), &r, NULL),
	    -1);
	assert_string_equal(r.dsn, dsn);
	assert_string_equal(out, "");
}

static void
want(const char *const *kv, const char *rcpt, const char *targets)
{
	char out[8192];
	struct reply r;

	assert_int_equal(expand(kv, rcpt, NULL, out, sizeof(out), &r, NULL),
	    0);
	assert_string_equal(out, targets);
}

static void
test_bad_recipients(void **state)
{
	char longaddr[ALIAS_ADDR_MAX + 20];

	(void)state;
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	memcpy(longaddr + sizeof(longaddr) - 14, "@example.test", 13);
	want_fail(none, longaddr, "5.1.3");
	want_fail(none, "", "5.1.3");
	want_fail(none, "noat", "5.1.3");
	want_fail(none, "@example.test", "5.1.3");
	want_fail(none, "user@", "5.1.3");
	want_fail(none, "a@b@example.test", "5.1.3");
	want_fail(none, "a b@example.test", "5.1.3");
	want_fail(none, "a\r\nb@example.test", "5.1.3");
	want_fail(none, "\"a\"@example.test", "5.1.3");
	want_fail(none, "a\x7f@example.test", "5.1.3");
}

static void
test_bad_values(void **state)
{
	static const char *const kv[] = {
		"pipe", "demo, |/bin/sh -c evil",
		"file", "/etc/passwd",
		"incl", ":include:/etc/posta/list",
		"quote", "\"x\"@example.test",
		"twoat", "a@b@c",
		"ctl", "a\x01@example.test",
		"paren", "a(comment)@example.test",
		NULL,
	};
	char longv[ALIAS_ADDR_MAX + 40];
	const char *kv2[] = { "long", longv, NULL };

	(void)state;
	want_fail(kv, "pipe@example.test", "5.3.5");
	want_fail(kv, "file@example.test", "5.3.5");
	want_fail(kv, "incl@example.test", "5.3.5");
	want_fail(kv, "quote@example.test", "5.1.3");
	want_fail(kv, "twoat@example.test", "5.1.3");
	want_fail(kv, "ctl@example.test", "5.1.3");
	want_fail(kv, "paren@example.test", "5.1.3");
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	want_fail(kv2, "long@example.test", "5.1.3");
	/* a name just short of the limit gets the domain and is too long */
	longv[ALIAS_ADDR_MAX - 2] = '\0';
	want_fail(kv2, "long@example.test", "5.1.3");
}

static void
test_loops(void **state)
{
	static const char *const kv[] = {
		"a", "b",
		"b", "c, d@example.test",
		"c", "a",
		"self@virt.test", "self@virt.test",
		"x", "y",
		"y", "x@example.test",
		"loopy", "ok, a",
		NULL,
	};

	(void)state;
	want_fail(kv, "a@example.test", "5.4.6");
	want_fail(kv, "B@EXAMPLE.test", "5.4.6");
	want_fail(kv, "x@example.test", "5.4.6");
	/* one bad branch fails all: nothing is delivered half-expanded */
	want_fail(kv, "loopy@example.test", "5.4.6");
	/* pointing to itself is not a loop: it is the user */
	want(kv, "self@virt.test", "self@virt.test");
}

static void
test_depth_and_size(void **state)
{
	static char keys[40][16], vals[40][16];
	const char *kv[2 * 40 + 1];
	struct alias_limits lim = { 5, 3, 100 };
	char out[4096];
	struct reply r;
	unsigned lookups;
	int i;
	static const char *const wide[] = {
		"w", "t1, t2, t3, t4",
		NULL,
	};
	static const char *const dag[] = {
		"d0", "d1, d1, d1, d1",
		"d1", "d2 d2,d2 , d2",
		"d2", "d3, d3, d3, d3",
		"d3", "d4, d4, d4, d4",
		"d4", "d5, d5, d5, d5",
		"d5", "d6, d6, d6, d6",
		"d6", "end",
		NULL,
	};

	(void)state;
	for (i = 0; i < 39; i++) {
		(void)snprintf(keys[i], sizeof(keys[i]), "c%d", i);
		(void)snprintf(vals[i], sizeof(vals[i]), "c%d", i + 1);
		kv[2 * i] = keys[i];
		kv[2 * i + 1] = vals[i];
	}
	kv[2 * 39] = NULL;
	/* a chain of 39 passes the default depth 20 */
	want_fail(kv, "c0@example.test", "5.4.6");
	/* and depth 5 is enough to stop a chain of 6 */
	assert_int_equal(expand(kv, "c33@example.test", &lim, out,
	    sizeof(out), &r, NULL), -1);
	assert_string_equal(r.dsn, "5.4.6");
	/* a chain of 4 fits in depth 5 */
	assert_int_equal(expand(kv, "c35@example.test", &lim, out,
	    sizeof(out), &r, NULL), 0);
	assert_string_equal(out, "c39@example.test");
	/* four targets, limit three */
	assert_int_equal(expand(wide, "w@example.test", &lim, out,
	    sizeof(out), &r, NULL), -1);
	assert_string_equal(r.dsn, "5.3.0");
	/* 4^7 paths, but each alias is expanded once */
	assert_int_equal(expand(dag, "d0@example.test", NULL, out,
	    sizeof(out), &r, &lookups), 0);
	assert_string_equal(out, "end@example.test");
	assert_true(lookups < 60);
	/* the lookup limit holds even so */
	lim.max_depth = 20;
	lim.max_targets = 100;
	lim.max_lookups = 10;
	assert_int_equal(expand(dag, "d0@example.test", &lim, out,
	    sizeof(out), &r, NULL), -1);
	assert_string_equal(r.dsn, "5.3.0");
}

static void
test_tempfail(void **state)
{
	static const char *const kv[] = {
		"list", "demo, tempfail",
		NULL,
	};
	struct fake f = { kv, 0, 1 };
	struct alias_result res;
	struct reply r;

	(void)state;
	want_fail(kv, "tempfail@example.test", "4.3.0");
	/* deferred as a whole, even after a good first member */
	want_fail(kv, "list@example.test", "4.3.0");
	assert_int_equal(alias_expand("demo@example.test", &ops, &f, NULL,
	    &res, &r), -1);
	assert_string_equal(r.dsn, "4.3.0");
	assert_int_equal(res.n, 0);
}

static void
test_plain(void **state)
{
	static const char *const kv[] = {
		"postmaster", "demo@example.test",
		"abuse", "postmaster",
		"info@virt.test", "<demo@example.test>",
		NULL,
	};

	(void)state;
	want(kv, "demo@example.test", "demo@example.test");
	want(kv, "Demo@Example.Test", "Demo@Example.Test");
	want(kv, "someone@remote.test", "someone@remote.test!");
	want(kv, "postmaster@example.test", "demo@example.test");
	want(kv, "PostMaster@Example.TEST", "demo@example.test");
	want(kv, "abuse@localhost", "demo@example.test");
	want(kv, "info@virt.test", "demo@example.test");
	/* local-part keys are for mydestination only */
	want(kv, "postmaster@virt.test", "postmaster@virt.test");
	want(kv, "postmaster@example.test.", "demo@example.test");
}

static void
test_lists(void **state)
{
	static const char *const kv[] = {
		"all", "a, b,, a ,staff  c@remote.test,",
		"staff", "<a>,d@example.test",
		"root", "root, backup@remote.test",
		"list", "x, y@remote.test, sub",
		"owner-list", "admin",
		"sub", "z",
		"owner-sub", "subadmin",
		"ext+special", "special",
		"ext", "plain",
		NULL,
	};

	(void)state;
	want(kv, "all@example.test", "a@example.test b@example.test "
	    "d@example.test c@remote.test!");
	want(kv, "root@example.test", "root@example.test "
	    "backup@remote.test!");
	want(kv, "list@example.test",
	    "x@example.test>owner-list@example.test "
	    "y@remote.test>owner-list@example.test! "
	    "z@example.test>owner-sub@example.test");
	/* extensions: the full key first, then without the extension */
	want(kv, "ext+special@example.test", "special@example.test");
	want(kv, "ext+other@example.test", "plain@example.test");
	want(kv, "ext-other@example.test", "plain@example.test");
	want(kv, "+only@example.test", "+only@example.test");
}

static void
test_helpers(void **state)
{
	char l[16], d[16], o[8];

	(void)state;
	assert_int_equal(alias_split("a@b@c", l, sizeof(l), d, sizeof(d)), 1);
	assert_string_equal(l, "a@b");
	assert_string_equal(d, "c");
	assert_int_equal(alias_split("nodomain", l, sizeof(l), d, sizeof(d)),
	    0);
	assert_int_equal(alias_split("aaaaaaaaaaaaaaaaaaaa@b", l, sizeof(l), d,
	    sizeof(d)), 0);
	assert_int_equal(alias_strip_ext("user+ext", "+", o, sizeof(o)), 1);
	assert_string_equal(o, "user");
	assert_int_equal(alias_strip_ext("user", "+", o, sizeof(o)), 0);
	assert_string_equal(o, "user");
	assert_int_equal(alias_strip_ext("user+x", "", o, sizeof(o)), 0);
	assert_string_equal(o, "user+x");
	assert_int_equal(alias_strip_ext("user+x", NULL, o, sizeof(o)), 0);
	assert_int_equal(alias_strip_ext("+x", "+", o, sizeof(o)), 0);
	assert_string_equal(o, "+x");
	assert_int_equal(alias_strip_ext("verylonguser", "+", o, sizeof(o)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_recipients),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_depth_and_size),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
