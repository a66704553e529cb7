/*
 * test_resolve - transport resolution (lib/resolve) and the retry
 * arithmetic (lib/backoff): hostile table values first, then the
 * settings and transport_maps lookup order; back-off clamping, expiry
 * and the once-only delay warning, with overflowing times
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

#include "backoff.h"
#include "log.h"
#include "resolve.h"
#include "settings.h"

static char tdir[64];

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", tdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- resolve_entry_parse ---- */

static void
test_entry_hostile(void **state)
{
	char tr[RESOLVE_TRANSPORT_MAX + 1], nh[16];
	char longtr[64];

	(void)state;
	memset(longtr, 'a', 33);
	longtr[33] = '\0';
	assert_int_equal(resolve_entry_parse(longtr, tr, sizeof(tr), nh,
	    sizeof(nh)), -1);
	longtr[32] = '\0';
	assert_int_equal(resolve_entry_parse(longtr, tr, sizeof(tr), nh,
	    sizeof(nh)), 0);
	assert_int_equal(resolve_entry_parse("SMTP", tr, sizeof(tr), nh,
	    sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse("sm tp:x", tr, sizeof(tr), nh,
	    sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse("smtp:a\rb", tr, sizeof(tr),
	    nh, sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse("smtp:a\nX-Evil: 1", tr,
	    sizeof(tr), nh, sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse("", tr, sizeof(tr), nh,
	    sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse("   ", tr, sizeof(tr), nh,
	    sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse(":", tr, sizeof(tr), nh,
	    sizeof(nh)), -1);
	/* a next hop that does not fit the caller's buffer */
	assert_int_equal(resolve_entry_parse("smtp:[a.very.long.host]", tr,
	    sizeof(tr), nh, sizeof(nh)), -1);
	assert_int_equal(resolve_entry_parse("smtp:x", tr, 0, nh,
	    sizeof(nh)), -1);
}

static void
test_entry_good(void **state)
{
	char tr[RESOLVE_TRANSPORT_MAX + 1], nh[RESOLVE_NEXTHOP_MAX + 1];

	(void)state;
	assert_int_equal(resolve_entry_parse("local", tr, sizeof(tr), nh,
	    sizeof(nh)), 0);
	assert_string_equal(tr, "local");
	assert_string_equal(nh, "");
	assert_int_equal(resolve_entry_parse("smtp:[mx.example]:25", tr,
	    sizeof(tr), nh, sizeof(nh)), 0);
	assert_string_equal(tr, "smtp");
	assert_string_equal(nh, "[mx.example]:25");
	assert_int_equal(resolve_entry_parse(":[relay.example]", tr,
	    sizeof(tr), nh, sizeof(nh)), 0);
	assert_string_equal(tr, "");
	assert_string_equal(nh, "[relay.example]");
	assert_int_equal(resolve_entry_parse("  error : 5.1.1 go away  ",
	    tr, sizeof(tr), nh, sizeof(nh)), 0);
	assert_string_equal(tr, "error");
	assert_string_equal(nh, "5.1.1 go away");
	assert_int_equal(resolve_entry_parse("discard:", tr, sizeof(tr), nh,
	    sizeof(nh)), 0);
	assert_string_equal(tr, "discard");
	assert_string_equal(nh, "");
	assert_int_equal(resolve_entry_parse("my_tr-2", tr, sizeof(tr), nh,
	    sizeof(nh)), 0);
	assert_string_equal(tr, "my_tr-2");
}

static void
test_domain_list(void **state)
{
	char longitem[600];

	(void)state;
	assert_int_equal(resolve_domain_in_list("a.test, B.Test  c.test",
	    "b.test"), 1);
	assert_int_equal(resolve_domain_in_list("a.test,b.test", "c.test"),
	    0);
	assert_int_equal(resolve_domain_in_list("", "a.test"), 0);
	/* a table item is not a domain */
	assert_int_equal(resolve_domain_in_list("file:/x, a.test",
	    "file:/x"), 0);
	memset(longitem, 'x', sizeof(longitem) - 1);
	longitem[sizeof(longitem) - 1] = '\0';
	memcpy(longitem + 300, ", ok.test, ", 11);
	assert_int_equal(resolve_domain_in_list(longitem, "ok.test"), 1);
	assert_int_equal(resolve_domain_in_list(longitem, "xxxx"), 0);
}

/* ---- resolve_new / resolve_addr ---- */

static struct cfg *
mkcfg(const char *const *settings)
{
	struct cfg *c = cfg_new(posta_settings, SCOPE_POSTA | SCOPE_QMGR);
	struct buf errs;
	size_t i;

	buf_init(&errs, 0);
	for (i = 0; settings[i] != NULL; i++)
		assert_int_equal(cfg_set_assignment(c, settings[i], "test",
		    &errs), 0);
	buf_deinit(&errs);
	return c;
}

static void
test_relayhost(void **state)
{
	char tm[128];
	const char *set[] = { "mydomain = example.test",
	    "mydestination = $mydomain", "relay_domains = dept.test, other.test",
	    "relayhost = [smart.example.test]:587", tm, NULL };
	const char *bad[] = { "relayhost = [smart.test", NULL };
	const char *good[] = { "", "host.test", "host.test:25", "[host.test]",
	    "[192.0.2.1]:2525", "[2001:db8::1]", NULL };
	const char *hostile[] = { "[", "[]", ":25", "host:", "host:0",
	    "host:65536", "[host]x", "ho st", "host:25:26", "a\n",
	    "[host]:99999999999999999999", NULL };
	struct resolve_result rr;
	struct resolve *res;
	struct buf errs;
	struct reply r;
	struct cfg *c;
	char host[RESOLVE_DOMAIN_MAX + 1];
	unsigned port;
	bool bracket;
	size_t i;

	(void)state;
	for (i = 0; good[i] != NULL; i++)
		assert_int_equal(resolve_nexthop_ok(good[i]), 0);
	for (i = 0; hostile[i] != NULL; i++)
		assert_int_equal(resolve_nexthop_ok(hostile[i]), -1);
	/* the parts, as the smtp agent takes them */
	assert_int_equal(resolve_nexthop_parse("Mx.Example.test", host,
	    sizeof(host), &port, &bracket), 0);
	assert_string_equal(host, "Mx.Example.test");
	assert_int_equal(port, 25);
	assert_false(bracket);
	assert_int_equal(resolve_nexthop_parse("[192.0.2.1]:2525", host,
	    sizeof(host), &port, &bracket), 0);
	assert_string_equal(host, "192.0.2.1");
	assert_int_equal(port, 2525);
	assert_true(bracket);
	assert_int_equal(resolve_nexthop_parse("[IPv6:2001:db8::1]", host,
	    sizeof(host), &port, &bracket), 0);
	assert_string_equal(host, "2001:db8::1");
	assert_int_equal(resolve_nexthop_parse("", host, sizeof(host), &port,
	    &bracket), -1);
	assert_int_equal(resolve_nexthop_parse("toolong.test", host, 5, &port,
	    &bracket), -1);

	buf_init(&errs, 0);
	c = mkcfg(bad);
	assert_null(resolve_new(c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "relayhost"));
	cfg_free(&c);

	write_file("transport2", "routed.test smtp:[inside.routed.test]\n");
	(void)snprintf(tm, sizeof(tm), "transport_maps = file:%s/transport2",
	    tdir);
	c = mkcfg(set);
	res = resolve_new(c, &errs);
	assert_non_null(res);
	/* other domains go to the relay host */
	assert_int_equal(resolve_addr(res, "a@far.test", &rr, &r), 0);
	assert_string_equal(rr.transport, "smtp");
	assert_string_equal(rr.nexthop, "[smart.example.test]:587");
	assert_string_equal(rr.dest, "[smart.example.test]:587");
	/* local mail, relay_domains and transport_maps entries do not */
	assert_int_equal(resolve_addr(res, "a@example.test", &rr, &r), 0);
	assert_string_equal(rr.nexthop, "");
	assert_string_equal(rr.transport, "local");
	assert_int_equal(resolve_addr(res, "a@Dept.Test", &rr, &r), 0);
	assert_string_equal(rr.nexthop, "");
	assert_string_equal(rr.dest, "dept.test");
	assert_int_equal(resolve_addr(res, "a@routed.test", &rr, &r), 0);
	assert_string_equal(rr.nexthop, "[inside.routed.test]");
	resolve_free(&res);
	cfg_free(&c);
	buf_deinit(&errs);
}

static void
test_resolve_bad_settings(void **state)
{
	char tm[128];
	const char *bad_tr[] = { "local_transport = Local!", NULL };
	const char *bad_map[] = { NULL, NULL };
	struct cfg *c;
	struct buf errs;
	struct resolve *res;

	(void)state;
	buf_init(&errs, 0);
	c = mkcfg(bad_tr);
	res = resolve_new(c, &errs);
	assert_null(res);
	assert_non_null(strstr(buf_cstr(&errs), "local_transport"));
	cfg_free(&c);

	buf_reset(&errs);
	(void)snprintf(tm, sizeof(tm), "transport_maps = file:%s/missing",
	    tdir);
	bad_map[0] = tm;
	c = mkcfg(bad_map);
	assert_null(resolve_new(c, &errs));
	assert_true(buf_len(&errs) > 0);
	cfg_free(&c);
	buf_deinit(&errs);
}

static void
test_resolve_addr(void **state)
{
	char tm[128], md[160];
	const char *set[] = { "mydomain = example.test", md,
	    "virtual_mailbox_domains = virt.test", tm, NULL };
	struct resolve_result rr;
	struct resolve *res;
	struct buf errs;
	struct reply r;
	struct cfg *c;
	char big[400];

	(void)state;
	write_file("transport",
	    "special@remote.test  error:5.1.1 nope\n"
	    "relay.test           :[mx.relay.test]\n"
	    ".sub.test            discard:\n"
	    "virt.test            smtp:[store.virt.test]\n"
	    "bad.test             NOT A TRANSPORT\n");
	write_file("domains", "tabled.test yes\n");
	(void)snprintf(tm, sizeof(tm), "transport_maps = file:%s/transport",
	    tdir);
	(void)snprintf(md, sizeof(md), "mydestination = $mydomain, "
	    "localhost, file:%s/domains", tdir);
	c = mkcfg(set);
	buf_init(&errs, 0);
	res = resolve_new(c, &errs);
	assert_non_null(res);

	/* hostile: a domain over the limit, a table entry that is wrong */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '@';
	assert_int_equal(resolve_addr(res, big, &rr, &r), -1);
	assert_int_equal(r.code / 100, 5);
	assert_int_equal(resolve_addr(res, "x@bad.test", &rr, &r), -1);
	assert_string_equal(r.dsn, "4.3.5");

	/* local: case, trailing dot, no domain, localhost, a table */
	assert_int_equal(resolve_addr(res, "User@EXAMPLE.Test.", &rr, &r), 0);
	assert_true(rr.is_local);
	assert_string_equal(rr.transport, "local");
	assert_string_equal(rr.domain, "example.test");
	assert_string_equal(rr.dest, "example.test");
	assert_int_equal(resolve_addr(res, "postmaster", &rr, &r), 0);
	assert_true(rr.is_local);
	assert_string_equal(rr.transport, "local");
	assert_int_equal(resolve_addr(res, "root@localhost", &rr, &r), 0);
	assert_string_equal(rr.transport, "local");
	assert_int_equal(resolve_addr(res, "a@tabled.test", &rr, &r), 0);
	assert_true(rr.is_local);
	/* a quoted local part with an @ in it: the last @ counts */
	assert_int_equal(resolve_addr(res, "\"a@b\"@example.test", &rr, &r),
	    0);
	assert_string_equal(rr.domain, "example.test");

	/* remote: default_transport */
	assert_int_equal(resolve_addr(res, "a@remote.test", &rr, &r), 0);
	assert_false(rr.is_local);
	assert_string_equal(rr.transport, "smtp");
	assert_string_equal(rr.nexthop, "");
	assert_string_equal(rr.dest, "remote.test");

	/* transport_maps: address before domain, empty transport keeps
	 * the default, parent domains, a local domain overridden */
	assert_int_equal(resolve_addr(res, "Special@remote.test", &rr, &r),
	    0);
	assert_string_equal(rr.transport, "error");
	assert_string_equal(rr.nexthop, "5.1.1 nope");
	assert_int_equal(resolve_addr(res, "other@relay.test", &rr, &r), 0);
	assert_string_equal(rr.transport, "smtp");
	assert_string_equal(rr.nexthop, "[mx.relay.test]");
	assert_string_equal(rr.dest, "[mx.relay.test]");
	assert_int_equal(resolve_addr(res, "x@a.b.sub.test", &rr, &r), 0);
	assert_string_equal(rr.transport, "discard");
	assert_int_equal(resolve_addr(res, "x@sub.test", &rr, &r), 0);
	assert_string_equal(rr.transport, "smtp");	/* .sub.test only */
	assert_int_equal(resolve_addr(res, "x@virt.test", &rr, &r), 0);
	assert_true(rr.is_local);
	assert_string_equal(rr.transport, "smtp");
	assert_string_equal(rr.dest, "[store.virt.test]");
	resolve_free(&res);
	assert_null(res);
	cfg_free(&c);

	/* "*" catches what nothing else does */
	write_file("catchall", "* smtp:[smarthost.test]\n");
	(void)snprintf(tm, sizeof(tm), "transport_maps = file:%s/catchall",
	    tdir);
	c = mkcfg(set);
	res = resolve_new(c, &errs);
	assert_non_null(res);
	assert_int_equal(resolve_addr(res, "a@anywhere.test", &rr, &r), 0);
	assert_string_equal(rr.nexthop, "[smarthost.test]");
	assert_int_equal(resolve_addr(res, "a@example.test", &rr, &r), 0);
	assert_string_equal(rr.transport, "smtp");
	assert_true(rr.is_local);
	resolve_free(&res);
	cfg_free(&c);
	buf_deinit(&errs);
}

/* ---- backoff ---- */

static void
test_backoff_hostile(void **state)
{
	(void)state;
	/* overflowing ages are clamped, never wrapped */
	assert_int_equal(backoff_delay(INT64_MIN, INT64_MAX, 300, 4000), 4000);
	assert_int_equal(backoff_delay(INT64_MAX, INT64_MIN, 300, 4000), 300);
	/* arrival in the future (clock went back): the minimum */
	assert_int_equal(backoff_delay(2000, 1000, 300, 4000), 300);
	/* nonsense limits */
	assert_int_equal(backoff_delay(0, 100000, 4000, 300), 300);
	assert_int_equal(backoff_delay(0, 100000, -5, -1), 0);
	assert_int_equal(backoff_is_expired(INT64_MIN, INT64_MAX, 5), 1);
	assert_int_equal(backoff_is_expired(INT64_MAX, 0, 5), 0);
	assert_int_equal(backoff_warn_due(INT64_MAX - 1, 0, INT64_MAX, 10),
	    0);
	assert_int_equal(backoff_warn_due(0, 0, 100, -1), 0);
}

static void
test_backoff_schedule(void **state)
{
	int64_t t = 1000000, arrival = t, d, prev = 0;
	int i;

	(void)state;
	assert_int_equal(backoff_delay(arrival, t, 300, 4000), 300);
	assert_int_equal(backoff_delay(arrival, t + 1000, 300, 4000), 1000);
	assert_int_equal(backoff_delay(arrival, t + 86400, 300, 4000), 4000);
	/* retrying at each next try: waits double up to the maximum */
	for (i = 0; i < 10; i++) {
		d = backoff_delay(arrival, t, 300, 4000);
		assert_true(d >= prev);
		assert_true(d <= 4000);
		if (i > 1 && prev < 2000)
			assert_int_equal(d, 2 * prev);
		prev = d;
		t += d;
	}
	assert_int_equal(prev, 4000);
}

static void
test_backoff_expiry_and_warning(void **state)
{
	(void)state;
	assert_int_equal(backoff_is_expired(0, 432000, 432000), 1);
	assert_int_equal(backoff_is_expired(0, 431999, 432000), 0);
	assert_int_equal(backoff_is_expired(100, 100, 0), 1);
	/* warn = 4h: the attempt that crosses arrival + 4h warns, no other */
	assert_int_equal(backoff_warn_due(0, 0, 3600, 14400), 0);
	assert_int_equal(backoff_warn_due(0, 10000, 14400, 14400), 1);
	assert_int_equal(backoff_warn_due(0, 14000, 15000, 14400), 1);
	assert_int_equal(backoff_warn_due(0, 14400, 16000, 14400), 0);
	assert_int_equal(backoff_warn_due(0, 15000, 16000, 14400), 0);
	/* never tried before (last attempt 0), already late: warn now */
	assert_int_equal(backoff_warn_due(1000, 0, 90000, 14400), 1);
	assert_int_equal(backoff_warn_due(0, 0, 100000, 0), 0);
}

static int
setup(void **state)
{
	(void)state;
	(void)snprintf(tdir, sizeof(tdir), "/tmp/test_resolve.XXXXXX");
	return mkdtemp(tdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_hostile),
		cmocka_unit_test(test_entry_good),
		cmocka_unit_test(test_domain_list),
		cmocka_unit_test(test_resolve_bad_settings),
		cmocka_unit_test(test_resolve_addr),
		cmocka_unit_test(test_relayhost),
		cmocka_unit_test(test_backoff_hostile),
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_backoff_expiry_and_warning),
	};

	log_init("test_resolve", 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
