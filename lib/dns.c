/*
 * dns - DNS lookups through libunbound (see dns.h for the contract)
 *
 * One ub_ctx per process, in thread mode (ub_ctx_async(ctx, 1)): the
 * resolver and its cache live in a thread inside libunbound and answers
 * come back through one pipe, ub_fd().  With an ev loop that fd is
 * watched while async queries are pending and ub_process() runs the
 * answers; without one, dns_lookup() polls it itself until the answer
 * or the deadline.  Every query has our own deadline (dns_timeout):
 * libunbound's retries can take much longer.
 *
 * answer_packet is parsed here with glibc's ns_* functions: every count,
 * length and name in it is checked, and a record that does not fit its
 * type's rules (address length, name syntax) is dropped.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "dns.h"
#include "log.h"
#include "mem.h"
#include "strnum.h"

#define DNS_CLASS_IN	1
#define DNS_PTR_NAMES	4	/* PTR names tried by dns_client_name */
#define DNS_SERVERS_MAX	16

struct dns {
	struct ub_ctx	*ctx;
	struct ev	*ev;
	int		 timeout_s;
	int		 fd;		/* ub_fd() */
	bool		 watching;	/* fd on the loop */
	int		 n_async;	/* async ub queries outstanding */
	int		 in_lookup;	/* inside dns_lookup()'s ub_process */
	bool		 in_process;	/* inside dns_on_fd()'s ub_process */
	bool		 dying;		/* dns_free() called from a callback */
	struct dns_query *queries;	/* every live handle */
	struct dns_cent	*cache;		/* DNS_CACHE_SLOTS answers */
};

/*
 * The answer cache in front of libunbound: libunbound caches too, but
 * each of its answers costs a round trip through its resolver thread;
 * a client name (PTR, then A) per SMTP connection made that a visible
 * part of smtpd's time.  Direct-mapped by (name, type), DNS_CACHE_SLOTS
 * slots; an answer is kept for its TTL (at most DNS_CACHE_TTL_MAX
 * seconds) and never when the TTL is 0 or the status is a failure of
 * the moment (DNS_TEMPFAIL) or a bad query (DNS_PERMFAIL).
 */
#define DNS_CACHE_SLOTS		512
#define DNS_CACHE_TTL_MAX	86400

struct dns_cent {
	int64_t		 expires;	/* ms, ev_clock_ms() */
	struct dns_answer *ans;		/* NULL: empty */
};

static void	dns_cache_clear(struct dns *);

/* an answer and the text its why points to, freed as one block */
struct dns_answer_blk {
	struct dns_answer a;
	char	 why[96];
};

struct dns_query {
	struct dns	*dns;
	struct dns_query *next, *prev;
	char		 name[DNS_NAME_MAX + 1];
	int		 type;
	int		 ub_id;
	bool		 ub_pending;
	struct ev_timer	*timer;		/* deadline, or delivery of ready */
	struct dns_answer *ready;	/* answer waiting for its timer */
	dns_cb		*cb;
	void		*arg;

	/* dns_client_name */
	bool		 is_client;
	dns_name_cb	*ncb;
	struct dns_query *sub;		/* our PTR or A/AAAA lookup */
	struct dns_query *parent;	/* of a sub */
	int		 family;
	unsigned char	 addr[16];
	char		 names[DNS_PTR_NAMES][DNS_NAME_MAX + 1];
	int		 nnames, idx, fail;
};

/* ---- names and answers ---- */

/* dns_name_norm - check name, write it lower case without the dot */
static int
dns_name_norm(const char *name, char *out)
{
	size_t len, i, label = 0;
	unsigned char c;

	if (name == NULL)
		return -1;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isascii(c) && (isalnum(c) || c == '-' ||
		    c == '_')) {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

static bool
dns_type_ok(int type)
{
	return type == DNS_A || type == DNS_AAAA || type == DNS_MX ||
	    type == DNS_TXT || type == DNS_PTR;
}

static struct dns_answer *
dns_answer_new(const char *qname, int type, int status, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static struct dns_answer *
dns_answer_new(const char *qname, int type, int status, const char *fmt,
    ...)
{
	struct dns_answer_blk *b = xcalloc(1, sizeof(*b));
	va_list ap;

	b->a.status = status;
	b->a.qtype = type;
	if (qname != NULL)
		(void)snprintf(b->a.qname, sizeof(b->a.qname), "%s", qname);
	va_start(ap, fmt);
	(void)vsnprintf(b->why, sizeof(b->why), fmt, ap);
	va_end(ap);
	b->a.why = b->why;
	return &b->a;
}

static void
dns_answer_set_why(struct dns_answer *a, int status, const char *why)
{
	struct dns_answer_blk *b = (struct dns_answer_blk *)a;

	a->status = status;
	(void)snprintf(b->why, sizeof(b->why), "%s", why);
	a->why = b->why;
}

void
dns_answer_free(struct dns_answer **ap)
{
	struct dns_answer *a = *ap;
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++) {
		free(a->rr[i].name);
		free(a->rr[i].text);
	}
	free(a->rr);
	free(a);	/* the dns_answer_blk: a is its first member */
	*ap = NULL;
}

static struct dns_answer *
dns_answer_dup(const struct dns_answer *a)
{
	const struct dns_answer_blk *from = (const struct dns_answer_blk *)a;
	struct dns_answer_blk *b = xcalloc(1, sizeof(*b));
	size_t i;

	*b = *from;
	b->a.why = b->why;
	b->a.rr = NULL;
	if (a->n > 0) {
		b->a.rr = xcalloc(a->n, sizeof(*b->a.rr));
		for (i = 0; i < a->n; i++) {
			b->a.rr[i] = a->rr[i];
			if (a->rr[i].name != NULL)
				b->a.rr[i].name = xstrdup(a->rr[i].name);
			if (a->rr[i].text != NULL) {
				b->a.rr[i].text = xmalloc(a->rr[i].text_len +
				    1);
				memcpy(b->a.rr[i].text, a->rr[i].text,
				    a->rr[i].text_len + 1);
			}
		}
	}
	return &b->a;
}

/* ---- the packet parser ---- */

/* dns_rdata_name - expand a name at p (inside rdata end); 0 or -1 */
static int
dns_rdata_name(ns_msg *m, const unsigned char *p, const unsigned char *end,
    char *out, size_t outsz)
{
	char tmp[NS_MAXDNAME + 1];
	int n;
	size_t len;

	if (p >= end)
		return -1;
	n = ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m), p, tmp,
	    sizeof(tmp));
	if (n < 0 || n > end - p)
		return -1;
	len = strlen(tmp);
	if (len == 1 && tmp[0] == '.') {	/* the root: null MX */
		out[0] = '\0';
		return 0;
	}
	if (len + 1 > outsz)
		return -1;
	return dns_name_norm(tmp, out);
}

struct dns_mx_sort {
	struct dns_rr	rr;
	unsigned	key;
};

static int
dns_mx_cmp(const void *x, const void *y)
{
	const struct dns_mx_sort *a = x, *b = y;

	if (a->rr.pref != b->rr.pref)
		return a->rr.pref < b->rr.pref ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return 0;
}

/* dns_mx_order - sort by preference, equal ones in random order */
static void
dns_mx_order(struct dns_answer *a)
{
	struct dns_mx_sort *s;
	size_t i;

	if (a->n < 2)
		return;
	s = xcalloc(a->n, sizeof(*s));
	for (i = 0; i < a->n; i++) {
		s[i].rr = a->rr[i];
		s[i].key = arc4random();
	}
	qsort(s, a->n, sizeof(*s), dns_mx_cmp);
	for (i = 0; i < a->n; i++)
		a->rr[i] = s[i].rr;
	free(s);
}

/* dns_parse_rr - one answer record of the type asked into rr; 0 or -1 */
static int
dns_parse_rr(ns_msg *m, ns_rr *r, struct dns_rr *rr)
{
	const unsigned char *p = ns_rr_rdata(*r);
	const unsigned char *end = p + ns_rr_rdlen(*r);
	char name[DNS_NAME_MAX + 1], text[INET6_ADDRSTRLEN];
	struct buf b;
	size_t n;

	memset(rr, 0, sizeof(*rr));
	rr->type = ns_rr_type(*r);
	rr->ttl = ns_rr_ttl(*r);
	switch (rr->type) {
	case DNS_A:
	case DNS_AAAA:
		n = rr->type == DNS_A ? 4 : 16;
		if (ns_rr_rdlen(*r) != n)
			return -1;
		rr->family = rr->type == DNS_A ? AF_INET : AF_INET6;
		memcpy(rr->addr, p, n);
		if (inet_ntop(rr->family, rr->addr, text, sizeof(text)) ==
		    NULL)
			return -1;
		rr->text = xstrdup(text);
		rr->text_len = strlen(text);
		return 0;
	case DNS_MX:
		if (end - p < 3)
			return -1;
		rr->pref = ns_get16(p);
		if (dns_rdata_name(m, p + 2, end, name, sizeof(name)) < 0)
			return -1;
		rr->name = xstrdup(name);
		return 0;
	case DNS_PTR:
		if (dns_rdata_name(m, p, end, name, sizeof(name)) < 0 ||
		    name[0] == '\0')
			return -1;
		rr->name = xstrdup(name);
		return 0;
	case DNS_TXT:
		/* <len><bytes>... filling rdata exactly (RFC 1035 3.3.14) */
		buf_init(&b, 65536);
		while (p < end) {
			n = *p++;
			if ((size_t)(end - p) < n) {
				buf_deinit(&b);
				return -1;
			}
			(void)buf_append(&b, p, n);
			p += n;
		}
		rr->text_len = buf_len(&b);
		rr->text = b.data != NULL ? buf_steal(&b) : xstrdup("");
		buf_deinit(&b);
		return 0;
	}
	return -1;
}

int
dns_parse(const unsigned char *pkt, size_t len, const char *name, int type,
    struct dns_answer **ans_r)
{
	char qname[DNS_NAME_MAX + 1];
	struct dns_answer *a;
	ns_msg m;
	ns_rr r;
	int rcode, count, i, seen = 0;
	size_t cap = 0;

	if (dns_name_norm(name, qname) < 0 || !dns_type_ok(type))
		return -1;
	if (pkt == NULL || len < NS_HFIXEDSZ || len > 65535 ||
	    ns_initparse(pkt, (int)len, &m) < 0) {
		*ans_r = dns_answer_new(qname, type, DNS_TEMPFAIL,
		    "malformed DNS answer");
		return 0;
	}
	rcode = ns_msg_getflag(m, ns_f_rcode);
	switch (rcode) {
	case ns_r_noerror:
		break;
	case ns_r_nxdomain:
		*ans_r = dns_answer_new(qname, type, DNS_NXDOMAIN,
		    "Host not found");
		return 0;
	case ns_r_servfail:
		*ans_r = dns_answer_new(qname, type, DNS_TEMPFAIL,
		    "SERVFAIL");
		return 0;
	case ns_r_refused:
		*ans_r = dns_answer_new(qname, type, DNS_PERMFAIL,
		    "REFUSED");
		return 0;
	default:
		*ans_r = dns_answer_new(qname, type, DNS_PERMFAIL,
		    "DNS error rcode %d", rcode);
		return 0;
	}
	a = dns_answer_new(qname, type, DNS_OK, "%s", "");
	count = ns_msg_count(m, ns_s_an);
	for (i = 0; i < count; i++) {
		if (ns_parserr(&m, ns_s_an, i, &r) < 0) {
			dns_answer_free(&a);
			*ans_r = dns_answer_new(qname, type, DNS_TEMPFAIL,
			    "malformed DNS answer");
			return 0;
		}
		if (ns_rr_class(r) != DNS_CLASS_IN || (int)ns_rr_type(r) != type)
			continue;	/* CNAMEs of the chain, and others */
		seen++;
		if (a->n >= DNS_RR_MAX)
			continue;
		if (a->n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			if (cap > DNS_RR_MAX)
				cap = DNS_RR_MAX;
			a->rr = xreallocarray(a->rr, cap, sizeof(*a->rr));
		}
		if (dns_parse_rr(&m, &r, &a->rr[a->n]) < 0) {
			free(a->rr[a->n].name);
			free(a->rr[a->n].text);
			continue;
		}
		if (a->n == 0 || a->rr[a->n].ttl < a->ttl)
			a->ttl = a->rr[a->n].ttl;
		a->n++;
	}
	if (a->n == 0 && seen > 0)
		dns_answer_set_why(a, DNS_TEMPFAIL,
		    "malformed records in DNS answer");
	else if (a->n == 0)
		dns_answer_set_why(a, DNS_NODATA,
		    "Host found but no data record of requested type");
	else if (type == DNS_MX)
		dns_mx_order(a);
	*ans_r = a;
	return 0;
}

int
dns_null_mx(const struct dns_answer *a)
{
	return a != NULL && a->status == DNS_OK && a->qtype == DNS_MX &&
	    a->n == 1 && a->rr[0].name != NULL && a->rr[0].name[0] == '\0';
}

int
dns_reverse_name(const struct sockaddr *sa, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	const struct sockaddr_in6 *s6;
	const unsigned char *p;
	struct buf b;
	int i, rc;

	if (sa == NULL || out == NULL || outsz == 0)
		return -1;
	buf_init(&b, 0);
	if (sa->sa_family == AF_INET) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		(void)buf_printf(&b, "%u.%u.%u.%u.in-addr.arpa", p[3], p[2],
		    p[1], p[0]);
	} else if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		p = s6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			(void)buf_printf(&b, "%u.%u.%u.%u.in-addr.arpa",
			    p[15], p[14], p[13], p[12]);
		else {
			for (i = 15; i >= 0; i--)
				(void)buf_printf(&b, "%c.%c.",
				    hex[p[i] & 0xf], hex[p[i] >> 4]);
			(void)buf_puts(&b, "ip6.arpa");
		}
	} else {
		buf_deinit(&b);
		return -1;
	}
	rc = buf_len(&b) < outsz ? 0 : -1;
	if (rc == 0)
		memcpy(out, buf_cstr(&b), buf_len(&b) + 1);
	buf_deinit(&b);
	return rc;
}

/* ---- the resolver ---- */

/* dns_server_fwd - "host", "host:port", "[v6]:port", "v6" -> "addr@port" */
static int
dns_server_fwd(const char *item, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	const char *port = NULL, *close;
	unsigned long long num;
	size_t hlen;
	int n;

	if (item[0] == '[') {
		if ((close = strchr(item, ']')) == NULL)
			return -1;
		hlen = (size_t)(close - item - 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
		item++;
	} else if ((close = strchr(item, ':')) != NULL &&
	    strchr(close + 1, ':') == NULL) {
		hlen = (size_t)(close - item);	/* a.b.c.d:port */
		port = close + 1;
	} else
		hlen = strlen(item);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, item, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, bin) != 1 &&
	    inet_pton(AF_INET6, host, bin) != 1)
		return -1;
	num = 53;
	if (port != NULL && str_to_uint(port, 1, 65535, &num) < 0)
		return -1;
	n = snprintf(out, outsz, "%s@%llu", host, num);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static int
dns_ub_opt(struct dns *d, const char *opt, const char *val, struct buf *errs)
{
	int err = ub_ctx_set_option(d->ctx, opt, val);

	if (err != 0) {
		(void)buf_printf(errs, "dns: unbound option %s %s: %s\n",
		    opt, val, ub_strerror(err));
		return -1;
	}
	return 0;
}

struct dns *
dns_new(struct cfg *cfg, struct ev *ev, struct buf *errs)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	const char *list = cfg_str(cfg, "dns_servers"), *pos;
	char item[128], fwd[128];
	int n = 0, rc, err, bad = 0;

	d->ev = ev;
	d->fd = -1;
	d->cache = xcalloc(DNS_CACHE_SLOTS, sizeof(*d->cache));
	d->timeout_s = (int)cfg_int(cfg, "dns_timeout");
	if ((d->ctx = ub_ctx_create()) == NULL) {
		(void)buf_puts(errs, "dns: cannot create a libunbound "
		    "context\n");
		free(d->cache);
		free(d);
		return NULL;
	}
	/* a thread, not a forked process; before the first query */
	if ((err = ub_ctx_async(d->ctx, 1)) != 0) {
		(void)buf_printf(errs, "dns: ub_ctx_async: %s\n",
		    ub_strerror(err));
		bad = 1;
	}
	pos = list;
	while ((rc = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		if (rc < 0 || dns_server_fwd(item, fwd, sizeof(fwd)) < 0) {
			(void)buf_printf(errs, "dns: dns_servers: bad server "
			    "\"%.64s\" (want address[:port] or "
			    "[address]:port)\n", rc < 0 ? "(too long)" :
			    item);
			bad = 1;
			if (rc < 0)
				break;
			continue;
		}
		if (++n > DNS_SERVERS_MAX) {
			(void)buf_printf(errs, "dns: dns_servers: more than "
			    "%d servers\n", DNS_SERVERS_MAX);
			bad = 1;
			break;
		}
		if ((err = ub_ctx_set_fwd(d->ctx, fwd)) != 0) {
			(void)buf_printf(errs, "dns: dns_servers: %s: %s\n",
			    item, ub_strerror(err));
			bad = 1;
		}
	}
	if (n > 0) {
		/*
		 * The servers we were given answer for everything:
		 * libunbound would answer the special-use "test." and
		 * the private reverse zones NXDOMAIN itself.
		 */
		if (dns_ub_opt(d, "local-zone:", "test. transparent",
		    errs) < 0 ||
		    dns_ub_opt(d, "unblock-lan-zones:", "yes", errs) < 0 ||
		    dns_ub_opt(d, "insecure-lan-zones:", "yes", errs) < 0)
			bad = 1;
	} else if (!bad) {
		if ((err = ub_ctx_resolvconf(d->ctx, NULL)) != 0)
			log_warn("dns: /etc/resolv.conf: %s: resolving "
			    "from the root servers", ub_strerror(err));
		if ((err = ub_ctx_hosts(d->ctx, NULL)) != 0)
			log_warn("dns: /etc/hosts: %s", ub_strerror(err));
	}
	if (!bad && (d->fd = ub_fd(d->ctx)) < 0) {
		(void)buf_puts(errs, "dns: libunbound has no result fd\n");
		bad = 1;
	}
	if (bad) {
		ub_ctx_delete(d->ctx);
		free(d->cache);
		free(d);
		return NULL;
	}
	return d;
}

static void dns_query_destroy(struct dns_query *);

static void
dns_destroy(struct dns *d)
{
	if (d->watching && d->ev != NULL)
		ev_fd_clear(d->ev, d->fd);
	ub_ctx_delete(d->ctx);
	dns_cache_clear(d);
	free(d->cache);
	free(d);
}

void
dns_free(struct dns **dp)
{
	struct dns *d = *dp;
	struct dns_query *q;

	if (d == NULL)
		return;
	*dp = NULL;
	while ((q = d->queries) != NULL)
		dns_query_destroy(q);
	/* from a callback inside ub_process(): free when it returns */
	if (d->in_process)
		d->dying = true;
	else
		dns_destroy(d);
}

/* ---- the answer cache ---- */

static void
dns_cache_clear(struct dns *d)
{
	size_t i;

	if (d->cache == NULL)
		return;
	for (i = 0; i < DNS_CACHE_SLOTS; i++)
		dns_answer_free(&d->cache[i].ans);
}

static struct dns_cent *
dns_cache_slot(struct dns *d, const char *qname, int type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (; *qname != '\0'; qname++)
		h = (h ^ (unsigned char)*qname) * 16777619u;
	return &d->cache[h % DNS_CACHE_SLOTS];
}

/* dns_cache_get - a copy of the fresh answer for qname/type, or NULL */
static struct dns_answer *
dns_cache_get(struct dns *d, const char *qname, int type)
{
	struct dns_cent *c = dns_cache_slot(d, qname, type);
	struct dns_answer *a;

	if (c->ans == NULL || c->ans->qtype != type ||
	    strcmp(c->ans->qname, qname) != 0)
		return NULL;
	if (ev_clock_ms() >= c->expires) {
		dns_answer_free(&c->ans);
		return NULL;
	}
	a = dns_answer_dup(c->ans);
	/* what is left of the TTL, rounded up */
	a->ttl = (unsigned)((c->expires - ev_clock_ms() + 999) / 1000);
	for (size_t i = 0; i < a->n; i++)
		if (a->rr[i].ttl > a->ttl)
			a->rr[i].ttl = a->ttl;
	if (type == DNS_MX)
		dns_mx_order(a);	/* equal preferences: a new draw */
	return a;
}

/* dns_cache_put - keep a copy of a for its TTL, when it may be kept */
static void
dns_cache_put(struct dns *d, const struct dns_answer *a)
{
	struct dns_cent *c;
	unsigned ttl = a->ttl;

	if (ttl == 0 || a->qname[0] == '\0' || (a->status != DNS_OK &&
	    a->status != DNS_NXDOMAIN && a->status != DNS_NODATA))
		return;
	if (ttl > DNS_CACHE_TTL_MAX)
		ttl = DNS_CACHE_TTL_MAX;
	c = dns_cache_slot(d, a->qname, a->qtype);
	dns_answer_free(&c->ans);
	c->ans = dns_answer_dup(a);
	c->expires = ev_clock_ms() + (int64_t)ttl * 1000;
}

/* ---- async queries ---- */

static void dns_on_fd(struct ev *, int, int, void *);

static void
dns_watch(struct dns *d)
{
	bool want = d->n_async > 0;

	if (d->ev == NULL || want == d->watching)
		return;
	if (want)
		(void)ev_fd_set(d->ev, d->fd, EV_READ, dns_on_fd, d);
	else
		ev_fd_clear(d->ev, d->fd);
	d->watching = want;
}

static struct dns_query *
dns_query_alloc(struct dns *d)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->dns = d;
	q->next = d->queries;
	if (d->queries != NULL)
		d->queries->prev = q;
	d->queries = q;
	return q;
}

/* dns_query_destroy - cancel whatever q waits for, unlink and free it */
static void
dns_query_destroy(struct dns_query *q)
{
	struct dns *d = q->dns;

	if (q->sub != NULL)
		dns_query_destroy(q->sub);
	if (q->parent != NULL && q->parent->sub == q)
		q->parent->sub = NULL;
	if (q->ub_pending) {
		(void)ub_cancel(d->ctx, q->ub_id);
		q->ub_pending = false;
		d->n_async--;
		dns_watch(d);
	}
	if (q->timer != NULL)
		ev_timer_cancel(d->ev, &q->timer);
	dns_answer_free(&q->ready);
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	free(q);
}

/* dns_deliver - free q, then give its callback the answer */
static void
dns_deliver(struct dns_query *q, struct dns_answer *a)
{
	dns_cb *cb = q->cb;
	void *arg = q->arg;

	dns_query_destroy(q);
	cb(arg, a);
}

static void
dns_on_ready(struct ev *ev, void *arg)
{
	struct dns_query *q = arg;
	struct dns_answer *a = q->ready;

	(void)ev;
	q->timer = NULL;	/* fired */
	q->ready = NULL;
	dns_deliver(q, a);
}

/* dns_later - deliver a from the loop, soon */
static void
dns_later(struct dns_query *q, struct dns_answer *a)
{
	if (q->timer != NULL)
		ev_timer_cancel(q->dns->ev, &q->timer);
	q->ready = a;
	q->timer = ev_timer_add(q->dns->ev, 0, dns_on_ready, q);
}

static void
dns_on_timeout(struct ev *ev, void *arg)
{
	struct dns_query *q = arg;

	(void)ev;
	q->timer = NULL;	/* fired */
	dns_deliver(q, dns_answer_new(q->name, q->type, DNS_TEMPFAIL,
	    "timed out after %ds", q->dns->timeout_s));
}

/* dns_result - a ub_result (or error) into an answer for name/type */
static struct dns_answer *
dns_result(const char *name, int type, int err, struct ub_result *res)
{
	struct dns_answer *a = NULL;

	if (err != 0)
		a = dns_answer_new(name, type, DNS_TEMPFAIL, "resolver "
		    "error: %s", ub_strerror(err));
	else if (res == NULL)
		a = dns_answer_new(name, type, DNS_TEMPFAIL, "resolver "
		    "error: no result");
	else if (res->answer_packet != NULL && res->answer_len > 0)
		(void)dns_parse(res->answer_packet, (size_t)res->answer_len,
		    name, type, &a);
	else if (res->nxdomain)
		a = dns_answer_new(name, type, DNS_NXDOMAIN,
		    "Host not found");
	else
		a = dns_answer_new(name, type, DNS_TEMPFAIL, "%s",
		    res->rcode == 2 ? "SERVFAIL" : "no answer");
	if (a == NULL)	/* name and type were checked before the query */
		a = dns_answer_new(name, type, DNS_PERMFAIL, "bad query");
	if (res != NULL)
		ub_resolve_free(res);
	return a;
}

static void
dns_ub_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	struct dns *d = q->dns;
	struct dns_answer *a;

	q->ub_pending = false;
	d->n_async--;
	dns_watch(d);
	a = dns_result(q->name, q->type, err, res);
	dns_cache_put(d, a);
	if (d->in_lookup)	/* not from inside dns_lookup() */
		dns_later(q, a);
	else {
		if (q->timer != NULL)
			ev_timer_cancel(d->ev, &q->timer);
		dns_deliver(q, a);
	}
}

static void
dns_on_fd(struct ev *ev, int fd, int events, void *arg)
{
	struct dns *d = arg;
	int err;

	(void)ev;
	(void)fd;
	(void)events;
	d->in_process = true;
	err = ub_process(d->ctx);
	d->in_process = false;
	if (d->dying) {
		dns_destroy(d);
		return;
	}
	if (err != 0)
		log_warn("dns: ub_process: %s", ub_strerror(err));
	dns_watch(d);
}

struct dns_query *
dns_query(struct dns *d, const char *name, int type, dns_cb *cb, void *arg)
{
	struct dns_answer *a;
	struct dns_query *q;
	int err;

	if (d->ev == NULL)
		log_panic("dns_query: resolver made without a loop");
	q = dns_query_alloc(d);
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	if (dns_name_norm(name, q->name) < 0 || !dns_type_ok(type)) {
		q->name[0] = '\0';
		dns_later(q, dns_answer_new(NULL, type, DNS_PERMFAIL,
		    "%s", dns_type_ok(type) ? "bad domain name" :
		    "bad query type"));
		return q;
	}
	if ((a = dns_cache_get(d, q->name, type)) != NULL) {
		dns_later(q, a);
		return q;
	}
	err = ub_resolve_async(d->ctx, q->name, type, DNS_CLASS_IN, q,
	    dns_ub_done, &q->ub_id);
	if (err != 0) {
		dns_later(q, dns_answer_new(q->name, type, DNS_TEMPFAIL,
		    "resolver error: %s", ub_strerror(err)));
		return q;
	}
	q->ub_pending = true;
	d->n_async++;
	dns_watch(d);
	q->timer = ev_timer_add(d->ev, (int64_t)d->timeout_s * 1000,
	    dns_on_timeout, q);
	return q;
}

void
dns_cancel(struct dns_query **qp)
{
	if (*qp == NULL)
		return;
	dns_query_destroy(*qp);
	*qp = NULL;
}

/* ---- synchronous lookups ---- */

struct dns_sync {
	const char	*name;
	int		 type;
	bool		 done;
	struct dns_answer *ans;
};

static void
dns_sync_done(void *arg, int err, struct ub_result *res)
{
	struct dns_sync *s = arg;

	s->ans = dns_result(s->name, s->type, err, res);
	s->done = true;
}

int
dns_lookup(struct dns *d, const char *name, int type,
    struct dns_answer **ans_r)
{
	char qname[DNS_NAME_MAX + 1];
	struct dns_sync s;
	struct pollfd pfd;
	int64_t deadline, left;
	int id, err;

	if (dns_name_norm(name, qname) < 0 || !dns_type_ok(type)) {
		*ans_r = dns_answer_new(NULL, type, DNS_PERMFAIL, "%s",
		    dns_type_ok(type) ? "bad domain name" : "bad query type");
		return 0;
	}
	if ((*ans_r = dns_cache_get(d, qname, type)) != NULL)
		return 0;
	memset(&s, 0, sizeof(s));
	s.name = qname;
	s.type = type;
	err = ub_resolve_async(d->ctx, qname, type, DNS_CLASS_IN, &s,
	    dns_sync_done, &id);
	if (err != 0) {
		*ans_r = dns_answer_new(qname, type, DNS_TEMPFAIL,
		    "resolver error: %s", ub_strerror(err));
		return 0;
	}
	deadline = ev_clock_ms() + (int64_t)d->timeout_s * 1000;
	while (!s.done) {
		if ((left = deadline - ev_clock_ms()) <= 0) {
			(void)ub_cancel(d->ctx, id);
			*ans_r = dns_answer_new(qname, type, DNS_TEMPFAIL,
			    "timed out after %ds", d->timeout_s);
			return 0;
		}
		pfd.fd = d->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			(void)ub_cancel(d->ctx, id);
			*ans_r = dns_answer_new(qname, type, DNS_TEMPFAIL,
			    "poll: %s", strerror(errno));
			return 0;
		}
		if (pfd.revents != 0) {
			d->in_lookup++;
			err = ub_process(d->ctx);
			d->in_lookup--;
			if (err != 0)
				log_warn("dns: ub_process: %s",
				    ub_strerror(err));
		}
	}
	dns_cache_put(d, s.ans);
	*ans_r = s.ans;
	return 0;
}

/* ---- forward-confirmed reverse DNS ---- */

static void dns_client_next(struct dns_query *);

static void
dns_client_finish(struct dns_query *q, const char *name, int status)
{
	dns_name_cb *cb = q->ncb;
	void *arg = q->arg;
	char copy[DNS_NAME_MAX + 1];

	if (name != NULL)
		(void)snprintf(copy, sizeof(copy), "%s", name);
	dns_query_destroy(q);
	cb(arg, name != NULL ? copy : NULL, status);
}

/* dns_client_fail - fold a failure: TEMPFAIL wins, then the first */
static void
dns_client_fail(struct dns_query *q, int status)
{
	if (q->fail == DNS_OK || status == DNS_TEMPFAIL)
		q->fail = status;
}

static void
dns_client_fwd(void *arg, struct dns_answer *a)
{
	struct dns_query *q = arg;
	size_t i, n = q->family == AF_INET ? 4 : 16;

	q->sub = NULL;
	if (a->status == DNS_OK) {
		for (i = 0; i < a->n; i++)
			if (a->rr[i].family == q->family &&
			    memcmp(a->rr[i].addr, q->addr, n) == 0) {
				dns_answer_free(&a);
				dns_client_finish(q, q->names[q->idx],
				    DNS_OK);
				return;
			}
		/* the name does not point back */
		dns_client_fail(q, DNS_NODATA);
	} else
		dns_client_fail(q, a->status);
	dns_answer_free(&a);
	q->idx++;
	dns_client_next(q);
}

static void
dns_client_next(struct dns_query *q)
{
	if (q->idx >= q->nnames) {
		dns_client_finish(q, NULL, q->fail == DNS_OK ? DNS_NODATA :
		    q->fail);
		return;
	}
	q->sub = dns_query(q->dns, q->names[q->idx],
	    q->family == AF_INET ? DNS_A : DNS_AAAA, dns_client_fwd, q);
	q->sub->parent = q;
}

static void
dns_client_ptr(void *arg, struct dns_answer *a)
{
	struct dns_query *q = arg;
	size_t i;

	q->sub = NULL;
	if (a->status != DNS_OK) {
		q->fail = a->status;
		dns_answer_free(&a);
		dns_client_finish(q, NULL, q->fail);
		return;
	}
	for (i = 0; i < a->n && q->nnames < DNS_PTR_NAMES; i++)
		(void)snprintf(q->names[q->nnames++], sizeof(q->names[0]),
		    "%s", a->rr[i].name);
	dns_answer_free(&a);
	q->idx = 0;
	q->fail = DNS_OK;
	dns_client_next(q);
}

static void
dns_client_bad(void *arg, struct dns_answer *a)
{
	struct dns_query *q = arg;

	q->sub = NULL;
	dns_answer_free(&a);
	dns_client_finish(q, NULL, DNS_PERMFAIL);
}

struct dns_query *
dns_client_name(struct dns *d, const struct sockaddr *sa, dns_name_cb *cb,
    void *arg)
{
	struct dns_query *q;
	const struct sockaddr_in6 *s6;
	char rev[80];

	if (d->ev == NULL)
		log_panic("dns_client_name: resolver made without a loop");
	q = dns_query_alloc(d);
	q->is_client = true;
	q->ncb = cb;
	q->arg = arg;
	if (sa != NULL && sa->sa_family == AF_INET) {
		q->family = AF_INET;
		memcpy(q->addr, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			q->family = AF_INET;
			memcpy(q->addr, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			q->family = AF_INET6;
			memcpy(q->addr, s6->sin6_addr.s6_addr, 16);
		}
	}
	if (q->family == 0 || dns_reverse_name(sa, rev, sizeof(rev)) < 0) {
		/* an empty name: answered PERMFAIL from the loop */
		q->sub = dns_query(d, "", DNS_PTR, dns_client_bad, q);
	} else
		q->sub = dns_query(d, rev, DNS_PTR, dns_client_ptr, q);
	q->sub->parent = q;
	return q;
}
