/*
 * test_map_ldap - ldap: tables against a real slapd started by the test:
 * config errors, lookups, %s/%u/%d, filter injection, scope, bind,
 * size limit, reconnect after a slapd restart, timeout
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <unistd.h>

#include "map.h"
#include "../fixtures/ldap/slapd_fixture.h"

static struct slapd_fixture slapd;

static int
group_setup(void **state)
{
	return slapd_start(&slapd);
}

static int
group_teardown(void **state)
{
	slapd_cleanup(&slapd);
	return 0;
}

/* open_conf - a map over a config file with text; NULL + errs */
static struct map *
open_conf(const char *text, struct buf *errs)
{
	const char *path = slapd_write_conf(&slapd, "ldap-t.conf", text);
	char spec[200];

	assert_non_null(path);
	(void)snprintf(spec, sizeof(spec), "ldap:%s", path);
	return map_open(spec, errs);
}

/* want - lookup key gives rc and (for 1) value */
static void
want(struct map *m, const char *key, int rc, const char *value)
{
	struct reply r;
	char *v = NULL;
	int got;

	memset(&r, 0, sizeof(r));
	got = map_lookup(m, key, &v, &r);
	if (got != rc)
		fail_msg("key \"%s\": got %d, want %d", key, got, rc);
	if (rc == 1)
		assert_string_equal(v, value);
	else
		assert_null(v);
	if (rc < 0) {
		assert_int_equal(r.code, 451);
		assert_string_equal(r.dsn, "4.3.0");
	}
	free(v);
}

static void
test_config_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "query_filter = (mail=%s)\n", "search_base must be set" },
		{ "search_base = dc=example,dc=test\nquery_filter = "
		    "(mail=%x)\n", "query_filter: unknown %x" },
		{ "search_base = dc=example,dc=test\nquery_filter = "
		    "(mail=%s))(\n", "unbalanced parentheses" },
		{ "search_base = dc=example,dc=test\nquery_filter = "
		    "mail=%s\n", "query_filter must be an LDAP filter" },
		{ "search_base = dc=example,dc=test\nquery_filter = "
		    "(mail=%s\n", "unbalanced parentheses" },
		{ "search_base = dc=example,dc=test\nbind = yes\n",
		    "bind = yes needs bind_dn" },
		{ "search_base = dc=example,dc=test\nscope = subtree\n",
		    "ldap-t.conf:3: bad value \"subtree\" for scope" },
		{ "search_base = dc=example,dc=test\nserver = x\n",
		    "ldap-t.conf:3: unknown setting \"server\"" },
		{ "search_base = dc=example,dc=test\nresult_attribute = ,\n",
		    "result_attribute must name at least one" },
		{ "search_base = dc=example,dc=test\ntimeout = 0\n",
		    "ldap-t.conf:3: bad value \"0\" for timeout" },
		{ "search_base = dc=example,dc=test\nsize_limit = "
		    "99999999999999999999\n", "bad value" },
		{ "search_base = x\nserver_host = http://example.test/\n",
		    "server_host \"http://example.test/\"" },
	};
	char spec[PATH_MAX + 8], path[PATH_MAX];
	struct buf errs;
	size_t i;

	(void)state;
	buf_init(&errs, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&errs);
		assert_null(open_conf(cases[i].text, &errs));
		if (strstr(buf_cstr(&errs), cases[i].want) == NULL)
			fail_msg("case %zu: want \"%s\", got \"%s\"", i,
			    cases[i].want, buf_cstr(&errs));
		(void)snprintf(spec, sizeof(spec), "ldap:%s/ldap-t.conf",
		    slapd.dir);
		assert_int_equal(map_check(spec, &errs), -1);
	}
	buf_reset(&errs);
	(void)snprintf(spec, sizeof(spec), "ldap:%s/nothere.conf", slapd.dir);
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "nothere.conf"));
	/* a good config checks without connecting */
	(void)slapd_write_conf(&slapd, "ldap-t.conf",
	    "search_base = dc=example,dc=test\n");
	(void)snprintf(spec, sizeof(spec), "ldap:%s/ldap-t.conf", slapd.dir);
	buf_reset(&errs);
	assert_int_equal(map_check(spec, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	/* the shipped example is valid */
	assert_non_null(realpath("conf/ldap-users.conf.example", path));
	(void)snprintf(spec, sizeof(spec), "ldap:%s", path);
	assert_int_equal(map_check(spec, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	buf_deinit(&errs);
}

static void
test_lookup(void **state)
{
	struct buf errs;
	struct map *m;

	(void)state;
	buf_init(&errs, 0);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (|(mail=%s)(mailAlternateAddress=%s))\n"
	    "result_attribute = mailHost\n", &errs);
	assert_non_null(m);
	assert_string_equal(buf_cstr(&errs), "");
	want(m, "demo@example.test", 1, "imap1.example.test");
	want(m, "DEMO@Example.Test", 1, "imap1.example.test");
	want(m, "demo.alias@example.test", 1, "imap1.example.test");
	want(m, "nobody@example.test", 0, NULL);
	want(m, "", 0, NULL);
	/* two entries: values joined with ", " */
	want(m, "team@example.test", 1,
	    "imap2.example.test, imap1.example.test");
	/* filter injection matches nothing (it would match everyone) */
	want(m, "*", 0, NULL);
	want(m, "*)(uid=*", 0, NULL);
	want(m, "*)(|(mail=*", 0, NULL);
	want(m, "demo@example.test)(mail=*", 0, NULL);
	want(m, "\\2a", 0, NULL);
	want(m, "demo@example.test\\29", 0, NULL);
	/* special characters in a real value are found exactly */
	want(m, "odd*(x)\\@example.test", 1, "imap3.example.test");
	want(m, "odd?(x)\\@example.test", 0, NULL);
	map_close(&m);

	/* several result attributes */
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\n"
	    "result_attribute = mail, mailAlternateAddress\n", &errs);
	assert_non_null(m);
	want(m, "alice@example.test", 1,
	    "alice@example.test, a@example.test, team@example.test");
	/* an entry without the attribute is "not found" */
	want(m, "odd*(x)\\@example.test", 1, "odd*(x)\\@example.test");
	map_close(&m);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\nresult_attribute = mailQuota\n",
	    &errs);
	assert_non_null(m);
	want(m, "demo@example.test", 1, "104857600");
	want(m, "alice@example.test", 0, NULL);
	map_close(&m);
	buf_deinit(&errs);
}

static void
test_parts_and_scope(void **state)
{
	struct buf errs;
	struct map *m;

	(void)state;
	buf_init(&errs, 0);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (&(uid=%u)(mail=%u@%d)(cn=*%%*))\n"
	    "result_attribute = uid\n", &errs);
	assert_non_null(m);
	/* %% is a literal %: nobody has one in cn */
	want(m, "demo@example.test", 0, NULL);
	map_close(&m);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (&(uid=%u)(mail=%u@%d))\n"
	    "result_attribute = uid\n", &errs);
	assert_non_null(m);
	want(m, "demo@example.test", 1, "demo");
	want(m, "bob@other.test", 1, "bob");
	want(m, "bob@example.test", 0, NULL);
	/* %d with no domain in the key: no query, not found */
	want(m, "demo", 0, NULL);
	want(m, "demo@", 0, NULL);
	want(m, "*@example.test", 0, NULL);
	want(m, "demo@*", 0, NULL);
	map_close(&m);
	m = open_conf("search_base = ou=people,dc=example,dc=test\n"
	    "scope = one\nquery_filter = (uid=%u)\n"
	    "result_attribute = mail\n", &errs);
	assert_non_null(m);
	want(m, "alice@anything.test", 1, "alice@example.test");
	want(m, "alice", 1, "alice@example.test");
	map_close(&m);
	m = open_conf("search_base = ou=people,dc=example,dc=test\n"
	    "scope = base\nquery_filter = (uid=%u)\n"
	    "result_attribute = mail\n", &errs);
	assert_non_null(m);
	want(m, "alice", 0, NULL);
	map_close(&m);
	/* a filter that would grow past its bound is refused, not cut */
	{
		char conf[1200], key[MAP_KEY_MAX + 1];
		size_t n;

		n = (size_t)snprintf(conf, sizeof(conf),
		    "search_base = dc=example,dc=test\n"
		    "result_attribute = mail\nquery_filter = (|");
		while (n < 900)
			n += (size_t)snprintf(conf + n, sizeof(conf) - n,
			    "(mail=%%s)");
		(void)snprintf(conf + n, sizeof(conf) - n, ")\n");
		m = open_conf(conf, &errs);
		assert_non_null(m);
		memset(key, '*', sizeof(key) - 1);
		key[sizeof(key) - 1] = '\0';
		want(m, key, -1, NULL);
		want(m, "demo@example.test", 1, "demo@example.test");
		map_close(&m);
	}
	/* a base that does not exist is a server-side problem: defer */
	m = open_conf("search_base = ou=nothere,dc=example,dc=test\n"
	    "query_filter = (uid=%s)\nresult_attribute = mail\n", &errs);
	assert_non_null(m);
	want(m, "alice", -1, NULL);
	map_close(&m);
	buf_deinit(&errs);
}

static void
test_bind_and_limits(void **state)
{
	struct buf errs;
	struct map *m;

	(void)state;
	buf_init(&errs, 0);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\nresult_attribute = mailHost\n"
	    "bind = yes\nbind_dn = cn=posta,ou=services,dc=example,dc=test\n"
	    "bind_pw = service-pw\n", &errs);
	assert_non_null(m);
	want(m, "alice@example.test", 1, "imap2.example.test");
	map_close(&m);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\nresult_attribute = mailHost\n"
	    "bind = yes\nbind_dn = cn=posta,ou=services,dc=example,dc=test\n"
	    "bind_pw = wrong\n", &errs);
	assert_non_null(m);
	want(m, "alice@example.test", -1, NULL);
	want(m, "alice@example.test", -1, NULL);
	map_close(&m);
	/* nobody may read userPassword anonymously */
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\nresult_attribute = userPassword\n",
	    &errs);
	assert_non_null(m);
	want(m, "alice@example.test", 0, NULL);
	map_close(&m);
	/* more entries than size_limit: temporary failure */
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mailAlternateAddress=%s)\n"
	    "result_attribute = mailHost\nsize_limit = 1\n", &errs);
	assert_non_null(m);
	want(m, "a@example.test", 1, "imap2.example.test");
	want(m, "team@example.test", -1, NULL);
	map_close(&m);
	buf_deinit(&errs);
}

static void
test_restart_reconnects(void **state)
{
	struct buf errs;
	struct map *m;

	(void)state;
	buf_init(&errs, 0);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\nresult_attribute = mailHost\n"
	    "timeout = 5\n", &errs);
	assert_non_null(m);
	want(m, "demo@example.test", 1, "imap1.example.test");
	/* restart between two lookups: the dead connection is replaced */
	slapd_stop(&slapd);
	assert_int_equal(slapd_spawn(&slapd), 0);
	want(m, "demo@example.test", 1, "imap1.example.test");
	want(m, "alice@example.test", 1, "imap2.example.test");
	/* down: temporary failure, not "unknown user" */
	slapd_stop(&slapd);
	want(m, "demo@example.test", -1, NULL);
	want(m, "demo@example.test", -1, NULL);
	/* back: the next lookup connects again */
	assert_int_equal(slapd_spawn(&slapd), 0);
	want(m, "demo@example.test", 1, "imap1.example.test");
	map_close(&m);
	buf_deinit(&errs);
}

/*
 * stopped - 1 once every thread of pid is stopped (state T in
 * /proc/pid/task/N/stat): kill(SIGSTOP) returns before a busy thread
 * has stopped, and a search answered meanwhile is not a timeout
 */
static int
stopped(pid_t pid)
{
	char path[64], buf[512], *p;
	struct dirent *de;
	DIR *d;
	FILE *f;
	int all = 1;

	(void)snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/stat",
		    (long)pid, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f) != NULL ? strrchr(buf, ')') :
		    NULL;
		(void)fclose(f);
		if (p == NULL || p[1] != ' ' || (p[2] != 'T' && p[2] != 't'))
			all = 0;
	}
	(void)closedir(d);
	return all;
}

static void
test_timeout(void **state)
{
	struct timespec t0, t1;
	struct buf errs;
	struct map *m;
	double secs;

	(void)state;
	buf_init(&errs, 0);
	m = open_conf("search_base = dc=example,dc=test\n"
	    "query_filter = (mail=%s)\nresult_attribute = mailHost\n"
	    "timeout = 1\n", &errs);
	assert_non_null(m);
	want(m, "demo@example.test", 1, "imap1.example.test");
	/* a hung server: the kernel still accepts, nobody answers */
	assert_int_equal(kill(slapd.pid, SIGSTOP), 0);
	for (int i = 0; i < 200 && !stopped(slapd.pid); i++)
		(void)usleep(10 * 1000);
	assert_true(stopped(slapd.pid));
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	want(m, "demo@example.test", -1, NULL);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(kill(slapd.pid, SIGCONT), 0);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (secs < 0.9 || secs > 4.0)
		fail_msg("timeout took %.2f s, want about 1", secs);
	want(m, "demo@example.test", 1, "imap1.example.test");
	map_close(&m);
	buf_deinit(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_parts_and_scope),
		cmocka_unit_test(test_bind_and_limits),
		cmocka_unit_test(test_restart_reconnects),
		cmocka_unit_test(test_timeout),
	};

	return cmocka_run_group_tests_name("map_ldap", tests, group_setup,
	    group_teardown);
}
