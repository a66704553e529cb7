/*
 * test_dns - lib/dns against a real dnsmasq on 127.0.0.1 (a free port),
 * and dns_parse on packets built here, hostile ones first
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../fixtures/dns/dnsmasq_fixture.h"
#include "buf.h"
#include "cfg.h"
#include "dns.h"
#include "ev.h"
#include "settings.h"

static struct dnsmasq_fixture dm;

#define RECORDS \
	"mx-host=two.test,mx1.two.test,10\n" \
	"mx-host=two.test,mx2.two.test,20\n" \
	"mx-host=two.test,mx1b.two.test,10\n" \
	"dns-rr=nullmx.test,15,000000\n" \
	"host-record=aonly.test,192.0.2.5\n" \
	"host-record=mx1.two.test,192.0.2.11\n" \
	"host-record=v6.test,2001:db8::5\n" \
	"txt-record=multi.test,\"v=spf1 \",\"ip4:192.0.2.0/24\",\" -all\"\n" \
	"host-record=good.test,198.51.100.7\n" \
	"ptr-record=8.100.51.198.in-addr.arpa,liar.test\n" \
	"host-record=liar.test,198.51.100.99\n" \
	"ptr-record=9.100.51.198.in-addr.arpa,ghost.test\n" \
	"host-record=multi.good.test,198.51.100.20\n" \
	"ptr-record=20.100.51.198.in-addr.arpa,liar.test\n" \
	"ptr-record=20.100.51.198.in-addr.arpa,multi.good.test\n" \
	"host-record=good6.test,2001:db8::7\n" \
	"cname=alias.test,aonly.test\n" \
	"host-record=mx.lab.test,10.0.2.1\n"

/* ---- helpers ---- */

static struct dns *
make_dns(const char *servers, const char *timeout, struct ev *ev)
{
	struct cfg *c = cfg_new(posta_settings, SCOPE_POSTA);
	struct buf *errs = buf_new(0);
	struct dns *d;

	assert_int_equal(cfg_set(c, "dns_servers", servers, "test", errs),
	    0);
	if (timeout != NULL)
		assert_int_equal(cfg_set(c, "dns_timeout", timeout, "test",
		    errs), 0);
	d = dns_new(c, ev, errs);
	if (d == NULL)
		fprintf(stderr, "%s", buf_cstr(errs));
	assert_non_null(d);
	buf_free(&errs);
	cfg_free(&c);
	return d;
}

/* lookup - a synchronous lookup against the fixture */
static struct dns_answer *
lookup(const char *name, int type)
{
	struct dns *d = make_dns(dm.server, NULL, NULL);
	struct dns_answer *a = NULL;

	assert_int_equal(dns_lookup(d, name, type, &a), 0);
	assert_non_null(a);
	dns_free(&d);
	return a;
}

struct got {
	int	 calls;
	struct dns_answer *ans;
	char	 name[DNS_NAME_MAX + 1];
	int	 status;
	int	 name_null;
};

static void
got_answer(void *arg, struct dns_answer *a)
{
	struct got *g = arg;

	g->calls++;
	dns_answer_free(&g->ans);
	g->ans = a;
}

static void
got_name(void *arg, const char *name, int status)
{
	struct got *g = arg;

	g->calls++;
	g->status = status;
	g->name_null = name == NULL;
	(void)snprintf(g->name, sizeof(g->name), "%s",
	    name != NULL ? name : "");
}

/* ---- names, reverse names, settings ---- */

/* mkname - a valid name of len characters: labels of 60, ".test" */
static void
mkname(char *out, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = i % 61 == 60 ? '.' : 'a';
	if (out[len - 1] == '.' || out[len - 2] == '.')
		out[len - 3] = '.';
	out[len] = '\0';
}

static void
test_bad_names(void **state)
{
	static const char *bad[] = { "", ".", "..", "a..b", ".a", "a b",
	    "a/b", "a\\.b", "ex\xc3\xa4mple.test", "a.b..", "a;b", NULL };
	char label[80], name[300];
	struct dns *d = make_dns(dm.server, NULL, NULL);
	struct dns_answer *a;
	int i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		assert_int_equal(dns_lookup(d, bad[i], DNS_A, &a), 0);
		assert_int_equal(a->status, DNS_PERMFAIL);
		dns_answer_free(&a);
	}
	/* a label of 64 */
	memset(label, 'a', 64);
	label[64] = '\0';
	(void)snprintf(name, sizeof(name), "%s.test", label);
	assert_int_equal(dns_lookup(d, name, DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_PERMFAIL);
	dns_answer_free(&a);
	/* 254 characters, then 253 (asked: unknown to dnsmasq) */
	mkname(name, 254);
	assert_int_equal(dns_lookup(d, name, DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_PERMFAIL);
	dns_answer_free(&a);
	mkname(name, 253);
	assert_int_equal(dns_lookup(d, name, DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	dns_answer_free(&a);
	/* with the trailing dot, 253 is still fine */
	name[253] = '.';
	name[254] = '\0';
	assert_int_equal(dns_lookup(d, name, DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	dns_answer_free(&a);
	/* a type we do not know */
	assert_int_equal(dns_lookup(d, "aonly.test", 255, &a), 0);
	assert_int_equal(a->status, DNS_PERMFAIL);
	dns_answer_free(&a);
	dns_free(&d);
	assert_null(d);
}

static void
test_bad_servers(void **state)
{
	static const char *bad[] = { "1.2.3", "1.2.3.4:0", "1.2.3.4:65536",
	    "1.2.3.4:", "[::1", "[::1]x", "[::1]:99999", "dns.example.test",
	    "1.2.3.4:53:53", "[]:53", "1.2.3.4:-1",
	    "127.0.0.1, 300.1.1.1", NULL };
	struct cfg *c;
	struct buf *errs;
	struct dns *d;
	char longitem[200];
	int i;

	(void)state;
	memset(longitem, '1', sizeof(longitem) - 1);
	longitem[sizeof(longitem) - 1] = '\0';
	for (i = 0; i == 0 || bad[i - 1] != NULL; i++) {
		c = cfg_new(posta_settings, SCOPE_POSTA);
		errs = buf_new(0);
		assert_int_equal(cfg_set(c, "dns_servers",
		    bad[i] != NULL ? bad[i] : longitem, "test", errs), 0);
		d = dns_new(c, NULL, errs);
		assert_null(d);
		assert_non_null(strstr(buf_cstr(errs), "dns: dns_servers"));
		buf_free(&errs);
		cfg_free(&c);
	}
	/* the forms that are fine */
	d = make_dns("127.0.0.1, 127.0.0.1:5353 [::1]:53,::1", NULL, NULL);
	dns_free(&d);
	/* the timeout's range is the setting's */
	c = cfg_new(posta_settings, SCOPE_POSTA);
	errs = buf_new(0);
	assert_int_equal(cfg_set(c, "dns_timeout", "0s", "test", errs), -1);
	assert_int_equal(cfg_set(c, "dns_timeout", "301s", "test", errs),
	    -1);
	assert_int_equal(cfg_int(c, "dns_timeout"), 10);
	assert_string_equal(cfg_str(c, "dns_servers"), "");
	buf_free(&errs);
	cfg_free(&c);
}

static void
test_reverse_name(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sa;
	char out[80];

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr), 1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "1.2.0.192.in-addr.arpa");
	/* too short: 22 characters and the NUL need 23 */
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, out, 22),
	    -1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, out, 23),
	    0);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::567:89ab",
	    &sin6.sin6_addr), 1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, out, 72),
	    -1);
	/* a v4-mapped address is the IPv4 one */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.1",
	    &sin6.sin6_addr), 1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "1.2.0.192.in-addr.arpa");
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_int_equal(dns_reverse_name(&sa, out, sizeof(out)), -1);
}

/* ---- lookups against dnsmasq ---- */

static void
test_mx_sorted(void **state)
{
	struct dns_answer *a;
	int i, first_b = 0;

	(void)state;
	for (i = 0; i < 40; i++) {
		a = lookup(i % 2 ? "two.test" : "TWO.Test.", DNS_MX);
		assert_int_equal(a->status, DNS_OK);
		assert_string_equal(a->why, "");
		assert_string_equal(a->qname, "two.test");
		assert_int_equal(a->qtype, DNS_MX);
		assert_int_equal(a->n, 3);
		assert_int_equal(a->rr[0].pref, 10);
		assert_int_equal(a->rr[1].pref, 10);
		assert_int_equal(a->rr[2].pref, 20);
		assert_string_equal(a->rr[2].name, "mx2.two.test");
		assert_true(strcmp(a->rr[0].name, "mx1.two.test") == 0 ||
		    strcmp(a->rr[0].name, "mx1b.two.test") == 0);
		assert_string_not_equal(a->rr[0].name, a->rr[1].name);
		first_b += strcmp(a->rr[0].name, "mx1b.two.test") == 0;
		assert_int_equal(dns_null_mx(a), 0);
		dns_answer_free(&a);
		assert_null(a);
	}
	/* equal preferences in random order: both orders seen */
	assert_true(first_b > 0 && first_b < 40);
}

static void
test_null_mx(void **state)
{
	struct dns_answer *a = lookup("nullmx.test", DNS_MX);

	(void)state;
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->rr[0].pref, 0);
	assert_string_equal(a->rr[0].name, "");
	assert_int_equal(dns_null_mx(a), 1);
	dns_answer_free(&a);
	assert_int_equal(dns_null_mx(NULL), 0);
}

static void
test_nodata_nxdomain(void **state)
{
	struct dns_answer *a;

	(void)state;
	a = lookup("aonly.test", DNS_MX);
	assert_int_equal(a->status, DNS_NODATA);
	assert_int_equal(a->n, 0);
	assert_int_equal(dns_null_mx(a), 0);
	dns_answer_free(&a);
	a = lookup("aonly.test", DNS_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->rr[0].family, AF_INET);
	assert_memory_equal(a->rr[0].addr, "\xc0\x00\x02\x05", 4);
	assert_string_equal(a->rr[0].text, "192.0.2.5");
	dns_answer_free(&a);
	a = lookup("nothere.test", DNS_MX);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	assert_string_equal(a->why, "Host not found");
	assert_string_equal(a->qname, "nothere.test");
	dns_answer_free(&a);
	/* a CNAME is followed: the A records of its target */
	a = lookup("alias.test", DNS_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->rr[0].text, "192.0.2.5");
	assert_string_equal(a->qname, "alias.test");
	dns_answer_free(&a);
}

static void
test_aaaa_txt_ptr(void **state)
{
	struct dns_answer *a;
	static const char spf[] = "v=spf1 ip4:192.0.2.0/24 -all";

	(void)state;
	a = lookup("v6.test", DNS_AAAA);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->rr[0].family, AF_INET6);
	assert_string_equal(a->rr[0].text, "2001:db8::5");
	assert_int_equal(a->rr[0].addr[0], 0x20);
	assert_int_equal(a->rr[0].addr[15], 5);
	dns_answer_free(&a);
	a = lookup("v6.test", DNS_A);
	assert_int_equal(a->status, DNS_NODATA);
	dns_answer_free(&a);
	a = lookup("multi.test", DNS_TXT);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->rr[0].text_len, strlen(spf));
	assert_string_equal(a->rr[0].text, spf);
	dns_answer_free(&a);
	a = lookup("7.100.51.198.in-addr.arpa", DNS_PTR);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->rr[0].name, "good.test");
	dns_answer_free(&a);
}

/* ---- asynchronous ---- */

static void
test_async_and_cancel(void **state)
{
	struct ev *ev = ev_new();
	struct dns *d = make_dns(dm.server, NULL, ev);
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 }, g4 = { 0 };
	struct got g5 = { 0 };
	struct dns_query *q1, *q2, *q3, *q4, *q5;

	(void)state;
	q1 = dns_query(d, "two.test", DNS_MX, got_answer, &g1);
	q2 = dns_query(d, "aonly.test", DNS_A, got_answer, &g2);
	q3 = dns_query(d, "nothere.test", DNS_A, got_answer, &g3);
	q4 = dns_query(d, "bad..name", DNS_A, got_answer, &g4);
	q5 = dns_query(d, "bad..name", DNS_A, got_answer, &g5);
	assert_non_null(q1);
	assert_non_null(q4);
	/* never from inside dns_query, not even for a bad name */
	assert_int_equal(g1.calls + g2.calls + g3.calls + g4.calls, 0);
	dns_cancel(&q2);
	assert_null(q2);
	dns_cancel(&q5);
	dns_cancel(&q5);	/* NULL: nothing */
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g2.calls, 0);
	assert_int_equal(g3.calls, 1);
	assert_int_equal(g4.calls, 1);
	assert_int_equal(g5.calls, 0);
	assert_int_equal(g1.ans->status, DNS_OK);
	assert_int_equal(g1.ans->n, 3);
	assert_int_equal(g3.ans->status, DNS_NXDOMAIN);
	assert_int_equal(g4.ans->status, DNS_PERMFAIL);
	dns_answer_free(&g1.ans);
	dns_answer_free(&g3.ans);
	dns_answer_free(&g4.ans);
	(void)q3;

	/* many at once */
	{
		struct got many[30];
		int i;

		memset(many, 0, sizeof(many));
		for (i = 0; i < 30; i++)
			(void)dns_query(d, i % 3 ? "aonly.test" :
			    "multi.test", i % 3 ? DNS_A : DNS_TXT,
			    got_answer, &many[i]);
		assert_int_equal(ev_run(ev), 0);
		for (i = 0; i < 30; i++) {
			assert_int_equal(many[i].calls, 1);
			assert_int_equal(many[i].ans->status, DNS_OK);
			dns_answer_free(&many[i].ans);
		}
	}
	/* dns_free with queries pending: no callback, nothing leaks */
	(void)dns_query(d, "two.test", DNS_MX, got_answer, &g1);
	(void)dns_query(d, "x..y", DNS_MX, got_answer, &g1);
	(void)dns_client_name(d, NULL, got_name, &g1);
	dns_free(&d);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(g1.calls, 1);
	ev_free(&ev);
}

/* the sync call inside a loop does not run other queries' callbacks */
static void
test_lookup_with_loop(void **state)
{
	struct ev *ev = ev_new();
	struct dns *d = make_dns(dm.server, NULL, ev);
	struct got g = { 0 };
	struct dns_answer *a;

	(void)state;
	(void)dns_query(d, "aonly.test", DNS_A, got_answer, &g);
	usleep(100 * 1000);	/* its answer is in the pipe by now */
	assert_int_equal(dns_lookup(d, "two.test", DNS_MX, &a), 0);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(g.calls, 0);
	dns_answer_free(&a);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.ans->status, DNS_OK);
	dns_answer_free(&g.ans);
	dns_free(&d);
	ev_free(&ev);
}

/* a callback may free the resolver, with other answers still coming */
static struct dns *free_me;

static void
free_in_cb(void *arg, struct dns_answer *a)
{
	got_answer(arg, a);
	dns_free(&free_me);
}

static void
test_free_from_callback(void **state)
{
	struct ev *ev = ev_new();
	struct got g[5];
	int i, calls = 0;

	(void)state;
	memset(g, 0, sizeof(g));
	free_me = make_dns(dm.server, NULL, ev);
	for (i = 0; i < 5; i++)
		(void)dns_query(free_me, "aonly.test", DNS_A, free_in_cb,
		    &g[i]);
	usleep(100 * 1000);	/* all answers in the pipe together */
	assert_int_equal(ev_run(ev), 0);
	assert_null(free_me);
	for (i = 0; i < 5; i++) {
		calls += g[i].calls;
		dns_answer_free(&g[i].ans);
	}
	assert_int_equal(calls, 1);
	ev_free(&ev);
}

/* no dns_servers: /etc/resolv.conf and /etc/hosts, nothing asked here */
static void
test_system_config(void **state)
{
	struct dns *d = make_dns("", "2s", NULL);
	struct dns_answer *a;

	(void)state;
	assert_int_equal(dns_lookup(d, "localhost", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_OK);
	assert_string_equal(a->rr[0].text, "127.0.0.1");
	dns_answer_free(&a);
	/* RFC 6761: without servers of our own "test." is not asked */
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	dns_answer_free(&a);
	dns_free(&d);
}

/* ---- forward-confirmed reverse DNS ---- */

static void
client(struct dns *d, struct ev *ev, const char *addr, struct got *g)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct dns_query *q;

	memset(&ss, 0, sizeof(ss));
	memset(g, 0, sizeof(*g));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, addr,
		    &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	q = dns_client_name(d, (struct sockaddr *)&ss, got_name, g);
	assert_non_null(q);
	assert_int_equal(g->calls, 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(g->calls, 1);
}

static void
test_client_name(void **state)
{
	struct ev *ev = ev_new();
	struct dns *d = make_dns(dm.server, NULL, ev);
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct dns_query *q;
	struct got g;

	(void)state;
	client(d, ev, "198.51.100.7", &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.name, "good.test");
	/* the PTR says liar.test, whose A is another address */
	client(d, ev, "198.51.100.8", &g);
	assert_int_not_equal(g.status, DNS_OK);
	assert_int_not_equal(g.status, DNS_TEMPFAIL);
	assert_true(g.name_null);
	/* the PTR name does not exist */
	client(d, ev, "198.51.100.9", &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_true(g.name_null);
	/* two PTR names, one confirms */
	client(d, ev, "198.51.100.20", &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.name, "multi.good.test");
	/* no PTR at all */
	client(d, ev, "198.51.100.77", &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_true(g.name_null);
	/* a private address: its reverse zone is asked of our server */
	client(d, ev, "10.0.2.1", &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.name, "mx.lab.test");
	client(d, ev, "2001:db8::7", &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.name, "good6.test");
	client(d, ev, "::ffff:198.51.100.7", &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.name, "good.test");
	/* another family */
	memset(&g, 0, sizeof(g));
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_non_null(dns_client_name(d, &sa, got_name, &g));
	assert_int_equal(g.calls, 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_PERMFAIL);
	assert_true(g.name_null);
	/* cancelled: never called */
	memset(&g, 0, sizeof(g));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr),
	    1);
	q = dns_client_name(d, (struct sockaddr *)&sin, got_name, &g);
	dns_cancel(&q);
	assert_null(q);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(g.calls, 0);
	dns_free(&d);
	ev_free(&ev);
}

/* cancel between the PTR answer and the forward lookup's */
static struct dns_query *mid_q;
static int mid_fired;

static void
mid_name(void *arg, const char *name, int status)
{
	mid_q = NULL;	/* the handle is gone */
	got_name(arg, name, status);
}

static void
mid_cancel(struct ev *ev, void *arg)
{
	(void)ev;
	(void)arg;
	mid_fired = 1;
	dns_cancel(&mid_q);
}

static void
test_client_name_cancel_midway(void **state)
{
	struct ev *ev = ev_new();
	struct dns *d = make_dns(dm.server, NULL, ev);
	struct sockaddr_in sin;
	struct got g;
	int delay;

	(void)state;
	/* cancel after several delays: each must be silent or complete */
	for (delay = 0; delay < 12; delay++) {
		memset(&g, 0, sizeof(g));
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, "198.51.100.20",
		    &sin.sin_addr), 1);
		mid_q = dns_client_name(d, (struct sockaddr *)&sin, mid_name,
		    &g);
		mid_fired = 0;
		(void)ev_timer_add(ev, delay / 3, mid_cancel, NULL);
		assert_int_equal(ev_run(ev), 0);
		assert_true(mid_fired);
		if (g.calls == 1)
			assert_int_equal(g.status, DNS_OK);
		else
			assert_int_equal(g.calls, 0);
	}
	dns_free(&d);
	ev_free(&ev);
}

/* ---- timeouts and the cache ---- */

static int
silent_socket(char *server, size_t sz)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	dnsmasq_loopback(&sin, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	(void)snprintf(server, sz, "127.0.0.1:%d", ntohs(sin.sin_port));
	return fd;
}

static void
test_timeout(void **state)
{
	char server[40];
	int fd = silent_socket(server, sizeof(server));
	struct dns *d = make_dns(server, "1s", NULL);
	struct dns_answer *a;
	struct ev *ev;
	struct got g = { 0 };
	int64_t t0, ms;

	(void)state;
	t0 = ev_clock_ms();
	assert_int_equal(dns_lookup(d, "two.test", DNS_MX, &a), 0);
	ms = ev_clock_ms() - t0;
	assert_int_equal(a->status, DNS_TEMPFAIL);
	assert_string_equal(a->why, "timed out after 1s");
	assert_true(ms >= 950 && ms < 2000);
	dns_answer_free(&a);
	dns_free(&d);

	ev = ev_new();
	d = make_dns(server, "1s", ev);
	t0 = ev_clock_ms();
	(void)dns_query(d, "aonly.test", DNS_A, got_answer, &g);
	assert_int_equal(ev_run(ev), 0);
	ms = ev_clock_ms() - t0;
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.ans->status, DNS_TEMPFAIL);
	assert_string_equal(g.ans->why, "timed out after 1s");
	assert_true(ms >= 950 && ms < 2000);
	dns_answer_free(&g.ans);
	dns_free(&d);
	ev_free(&ev);
	(void)close(fd);
}

static void
test_cache(void **state)
{
	struct dns *d;
	struct dns_answer *a;

	(void)state;
	/* TTL 60: still answered from the cache after dnsmasq is gone */
	assert_int_equal(dnsmasq_restart(&dm, RECORDS "local-ttl=60\n"), 0);
	d = make_dns(dm.server, "2s", NULL);
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->ttl, 60);
	assert_int_equal(a->rr[0].ttl, 60);
	dns_answer_free(&a);
	dnsmasq_stop(&dm);
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_OK);
	assert_string_equal(a->rr[0].text, "192.0.2.5");
	assert_true(a->ttl <= 60 && a->ttl >= 50);
	dns_answer_free(&a);
	/* another name was never asked: not in the cache */
	assert_int_equal(dns_lookup(d, "v6.test", DNS_AAAA, &a), 0);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	dns_free(&d);

	/* TTL 1: gone from the cache a second later */
	assert_int_equal(dnsmasq_restart(&dm, RECORDS "local-ttl=1\n"), 0);
	d = make_dns(dm.server, "1s", NULL);
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->ttl, 1);
	dns_answer_free(&a);
	dnsmasq_stop(&dm);
	(void)usleep(2500 * 1000);	/* libunbound counts in whole seconds */
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	dns_free(&d);

	/* TTL 0: not cached */
	assert_int_equal(dnsmasq_restart(&dm, RECORDS), 0);
	d = make_dns(dm.server, "2s", NULL);
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->ttl, 0);
	dns_answer_free(&a);
	dnsmasq_stop(&dm);
	assert_int_equal(dns_lookup(d, "aonly.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	dns_free(&d);
	assert_int_equal(dnsmasq_restart(&dm, RECORDS), 0);
}

/* ---- dns_parse on packets built here ---- */

struct pkt {
	unsigned char b[70000];
	size_t	n;
};

static void
put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, unsigned v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static void
putname(struct pkt *p, const char *name)
{
	const char *dot;
	size_t len;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot != NULL ? (size_t)(dot - name) : strlen(name);
		put8(p, (unsigned)len);
		memcpy(p->b + p->n, name, len);
		p->n += len;
		name += len;
		if (*name == '.')
			name++;
	}
	put8(p, 0);
}

/* header + question; ancount as given */
static void
start(struct pkt *p, unsigned rcode, unsigned an, const char *q, int type)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, an);
	put16(p, 0);
	put16(p, 0);
	putname(p, q);
	put16(p, (unsigned)type);
	put16(p, 1);
}

/* an RR owned by the question name (pointer to offset 12) */
static void
rr_head(struct pkt *p, int type, unsigned ttl, unsigned rdlen)
{
	put16(p, 0xc00c);
	put16(p, (unsigned)type);
	put16(p, 1);
	put32(p, ttl);
	put16(p, rdlen);
}

static void
rr_a(struct pkt *p, unsigned ttl, const char *addr4)
{
	rr_head(p, DNS_A, ttl, 4);
	assert_int_equal(inet_pton(AF_INET, addr4, p->b + p->n), 1);
	p->n += 4;
}

static struct dns_answer *
parse(struct pkt *p, const char *name, int type)
{
	struct dns_answer *a = NULL;

	assert_int_equal(dns_parse(p->b, p->n, name, type, &a), 0);
	assert_non_null(a);
	return a;
}

static void
test_parse_hostile(void **state)
{
	static struct pkt p;
	struct dns_answer *a;
	size_t at;
	int i;

	(void)state;
	/* bad name or type: -1 */
	start(&p, 0, 0, "a.test", DNS_A);
	assert_int_equal(dns_parse(p.b, p.n, "a..test", DNS_A, &a), -1);
	assert_int_equal(dns_parse(p.b, p.n, "a.test", 6, &a), -1);
	assert_int_equal(dns_parse(p.b, p.n, NULL, DNS_A, &a), -1);
	/* nothing, short header */
	a = NULL;
	assert_int_equal(dns_parse(NULL, 0, "a.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	a = NULL;
	assert_int_equal(dns_parse(p.b, 11, "a.test", DNS_A, &a), 0);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	assert_string_equal(a->why, "malformed DNS answer");
	dns_answer_free(&a);
	/* truncated inside a record */
	start(&p, 0, 1, "a.test", DNS_A);
	rr_a(&p, 300, "192.0.2.1");
	for (at = 12; at < p.n; at++) {
		a = NULL;
		assert_int_equal(dns_parse(p.b, at, "a.test", DNS_A, &a), 0);
		assert_int_equal(a->status, DNS_TEMPFAIL);
		dns_answer_free(&a);
	}
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->ttl, 300);
	dns_answer_free(&a);
	/* counts larger than the packet */
	start(&p, 0, 5, "a.test", DNS_A);
	rr_a(&p, 300, "192.0.2.1");
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	start(&p, 0, 65535, "a.test", DNS_A);
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* trailing garbage */
	start(&p, 0, 1, "a.test", DNS_A);
	rr_a(&p, 300, "192.0.2.1");
	put16(&p, 0xdead);
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* a compression loop in the MX exchange: pointer to itself */
	start(&p, 0, 1, "a.test", DNS_MX);
	rr_head(&p, DNS_MX, 300, 4);
	put16(&p, 10);
	put16(&p, 0xc000 | (unsigned)p.n);
	a = parse(&p, "a.test", DNS_MX);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	assert_int_equal(a->n, 0);
	dns_answer_free(&a);
	/* two pointers to each other */
	start(&p, 0, 1, "a.test", DNS_PTR);
	rr_head(&p, DNS_PTR, 300, 4);
	put16(&p, 0xc000 | (unsigned)(p.n + 2));
	put16(&p, 0xc000 | (unsigned)(p.n - 2));
	a = parse(&p, "a.test", DNS_PTR);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* a pointer past the end */
	start(&p, 0, 1, "a.test", DNS_PTR);
	rr_head(&p, DNS_PTR, 300, 2);
	put16(&p, 0xc000 | 0x3fff);
	a = parse(&p, "a.test", DNS_PTR);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* a name over 255 on the wire (five labels of 63) */
	start(&p, 0, 1, "a.test", DNS_PTR);
	rr_head(&p, DNS_PTR, 300, 5 * 64 + 1);
	for (i = 0; i < 5; i++) {
		put8(&p, 63);
		memset(p.b + p.n, 'x', 63);
		p.n += 63;
	}
	put8(&p, 0);
	a = parse(&p, "a.test", DNS_PTR);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* a name with bytes outside the rule (a dot inside a label, NUL) */
	start(&p, 0, 2, "a.test", DNS_PTR);
	rr_head(&p, DNS_PTR, 300, 6);
	put8(&p, 4);
	memcpy(p.b + p.n, "a.b\0", 4);
	p.n += 4;
	put8(&p, 0);
	rr_head(&p, DNS_PTR, 30, 9);
	putname(&p, "ok.test");
	a = parse(&p, "a.test", DNS_PTR);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->rr[0].name, "ok.test");
	assert_int_equal(a->ttl, 30);
	dns_answer_free(&a);
	/* a name running past its rdata into the next record */
	start(&p, 0, 2, "a.test", DNS_PTR);
	rr_head(&p, DNS_PTR, 300, 3);
	put8(&p, 2);
	put16(&p, 0x6f6b);
	rr_a(&p, 300, "192.0.2.1");
	a = parse(&p, "a.test", DNS_PTR);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* address records of the wrong length; MX too short */
	start(&p, 0, 3, "a.test", DNS_A);
	rr_head(&p, DNS_A, 300, 5);
	put32(&p, 0x01020304);
	put8(&p, 5);
	rr_head(&p, DNS_A, 300, 0);
	rr_a(&p, 300, "192.0.2.9");
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->rr[0].text, "192.0.2.9");
	dns_answer_free(&a);
	start(&p, 0, 1, "a.test", DNS_MX);
	rr_head(&p, DNS_MX, 300, 2);
	put16(&p, 10);
	a = parse(&p, "a.test", DNS_MX);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	dns_answer_free(&a);
	/* TXT: a string longer than its rdata; NUL bytes kept */
	start(&p, 0, 2, "a.test", DNS_TXT);
	rr_head(&p, DNS_TXT, 300, 3);
	put8(&p, 9);
	put16(&p, 0x4141);
	rr_head(&p, DNS_TXT, 300, 8);
	put8(&p, 3);
	memcpy(p.b + p.n, "a\0b", 3);
	p.n += 3;
	put8(&p, 0);
	put8(&p, 2);
	memcpy(p.b + p.n, "cd", 2);
	p.n += 2;
	a = parse(&p, "a.test", DNS_TXT);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->rr[0].text_len, 5);
	assert_memory_equal(a->rr[0].text, "a\0bcd", 6);
	dns_answer_free(&a);
	/* too many records: DNS_RR_MAX kept, smallest TTL of those */
	start(&p, 0, 150, "a.test", DNS_A);
	for (i = 0; i < 150; i++)
		rr_a(&p, (unsigned)(1000 - i), "192.0.2.1");
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, DNS_RR_MAX);
	assert_int_equal(a->ttl, 1000 - (DNS_RR_MAX - 1));
	dns_answer_free(&a);
	/* rcodes */
	start(&p, 2, 0, "a.test", DNS_A);
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	assert_string_equal(a->why, "SERVFAIL");
	dns_answer_free(&a);
	start(&p, 3, 0, "a.test", DNS_A);
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	dns_answer_free(&a);
	start(&p, 5, 0, "a.test", DNS_A);
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_PERMFAIL);
	assert_string_equal(a->why, "REFUSED");
	dns_answer_free(&a);
	start(&p, 4, 0, "a.test", DNS_A);
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_PERMFAIL);
	dns_answer_free(&a);
	/* other types and classes are skipped: a CNAME then the A */
	start(&p, 0, 3, "a.test", DNS_A);
	rr_head(&p, 5, 300, 8);
	putname(&p, "b.test");
	put16(&p, 0xc00c);
	put16(&p, DNS_A);
	put16(&p, 3);		/* class CH */
	put32(&p, 5);
	put16(&p, 4);
	put32(&p, 0x7f000001);
	rr_a(&p, 77, "192.0.2.3");
	a = parse(&p, "a.test", DNS_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->ttl, 77);
	dns_answer_free(&a);
	/* NODATA */
	start(&p, 0, 0, "a.test", DNS_MX);
	a = parse(&p, "A.TEST.", DNS_MX);
	assert_int_equal(a->status, DNS_NODATA);
	assert_string_equal(a->qname, "a.test");
	dns_answer_free(&a);
}

static int
group_setup(void **state)
{
	(void)state;
	return dnsmasq_start(&dm, RECORDS);
}

static int
group_teardown(void **state)
{
	(void)state;
	dnsmasq_cleanup(&dm);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_bad_servers),
		cmocka_unit_test(test_reverse_name),
		cmocka_unit_test(test_mx_sorted),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_nodata_nxdomain),
		cmocka_unit_test(test_aaaa_txt_ptr),
		cmocka_unit_test(test_async_and_cancel),
		cmocka_unit_test(test_lookup_with_loop),
		cmocka_unit_test(test_free_from_callback),
		cmocka_unit_test(test_system_config),
		cmocka_unit_test(test_client_name),
		cmocka_unit_test(test_client_name_cancel_midway),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cache),
	};

	return cmocka_run_group_tests_name("dns", tests, group_setup,
	    group_teardown);
}
