/*
 * dns - DNS lookups for every posta program, through libunbound
 *
 * dns_new(cfg, ev, errs) makes one resolver for the process from the
 * settings (posta.conf, see posta.conf(5)):
 *	dns_servers	empty (the default): the system's resolver
 *			configuration (/etc/resolv.conf, /etc/hosts);
 *			else a list, comma or space separated, of servers
 *			to forward every query to (recursion desired):
 *			"127.0.0.1:5353, 10.0.0.53, [::1]:53" (port 53
 *			when none is given).  With servers given, names
 *			under the special-use "test." (RFC 6761) are asked
 *			of them too instead of being answered NXDOMAIN
 *			locally.
 *	dns_timeout	how long one lookup may take, retries included
 *			(default 10s); then the answer is DNS_TEMPFAIL
 * It returns NULL with "dns: message" lines in errs when a setting is
 * bad or libunbound cannot be set up.  Answers are cached for their TTL
 * inside the resolver (a TTL of 0 is not cached).  With ev (the process's
 * loop) lookups are asynchronous: dns_query(); with ev NULL they are
 * synchronous: dns_lookup().  One resolver, one thread.
 *
 * dns_query(dns, name, type, cb, arg) starts a lookup and returns its
 * handle; cb(arg, ans) is called once, later, from the loop (never from
 * inside dns_query), with an answer the callback owns (free it with
 * dns_answer_free()).  dns_cancel(&q) before that: cb is never called;
 * q is set to NULL.  The handle is gone once cb has been called.
 *
 * dns_lookup(dns, name, type, &ans) waits for the answer (at most
 * dns_timeout) and returns 0 with *ans_r set (any status, caller frees).
 *
 * Types are the RR type numbers: DNS_A, DNS_AAAA, DNS_MX, DNS_TXT,
 * DNS_PTR.  Names are taken with or without the trailing dot; a name
 * that is not a valid domain (empty label, label over 63, name over
 * 253, bytes outside letters, digits, '-', '_' and '.') is answered
 * DNS_PERMFAIL without a query.
 *
 * An answer: status is
 *	DNS_OK		rr[0..n) hold the records of the type asked (n > 0)
 *	DNS_NXDOMAIN	no such name (permanent)
 *	DNS_NODATA	the name exists, without records of this type
 *	DNS_TEMPFAIL	SERVFAIL, timeout, no server reachable, an answer
 *			that does not parse: try again later
 *	DNS_PERMFAIL	a bad name, REFUSED or another error that will not
 *			go away by itself
 * why is a short text for logs and bounces ("Host not found",
 * "timed out after 10s", "SERVFAIL"...), "" for DNS_OK.  ttl is the
 * smallest TTL of the records.  CNAME chains are followed by the
 * resolver; qname is the name asked (lower case, no trailing dot).
 * Records (at most DNS_RR_MAX are kept, the rest dropped):
 *	A, AAAA	family (AF_INET or AF_INET6), addr (4 or 16 bytes),
 *		text ("192.0.2.1", "2001:db8::1")
 *	MX	pref, name: the exchange, lower case, no trailing dot; sorted
 *		by pref, equal preferences in random order.  The null MX
 *		(RFC 7505, "0 .") has name "": dns_null_mx(ans) is 1 when
 *		the answer is exactly one such record
 *	PTR	name
 *	TXT	text: the record's character-strings joined without
 *		separator (the SPF and DKIM rule), text_len bytes (the
 *		text is NUL-terminated but may contain NUL bytes)
 *
 * dns_reverse_name(sa, out, outsz) writes the PTR name of an IPv4 or
 * IPv6 address ("4.3.2.1.in-addr.arpa", nibbles under "ip6.arpa"); 0,
 * or -1 for another family or a short buffer.
 *
 * dns_client_name(dns, sa, cb, arg) finds the verified name of a
 * client (forward-confirmed reverse DNS, like Postfix): the PTR names
 * of the address, then the A/AAAA records of each (at most 4 names)
 * until one holds the address.  cb(arg, name, status): name (lower case,
 * no trailing dot) and DNS_OK when confirmed; else name NULL and the
 * status of the failure: DNS_TEMPFAIL when a lookup failed for now,
 * another status when the name is unknown for good.  Asynchronous only
 * (dns made with an ev); the handle cancels like dns_query's.
 *
 * dns_parse(pkt, len, name, type, &ans) turns one DNS response packet
 * (the answer_packet libunbound gives) into an answer for name/type;
 * dns_query() and dns_lookup() use it, and so does the fuzz target
 * tests/fuzz/fuzz_dns.c.  0 with *ans_r set (a packet that does not
 * parse gives DNS_TEMPFAIL), -1 only for a bad name or type.
 *
 * Out of memory is fatal.  Every field of an answer comes from the
 * network: lengths are checked, names are bounded, counts capped.
 */
#ifndef POSTA_DNS_H
#define POSTA_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "cfg.h"
#include "ev.h"

#define DNS_A		1
#define DNS_PTR		12
#define DNS_MX		15
#define DNS_TXT		16
#define DNS_AAAA	28

#define DNS_OK		0
#define DNS_NXDOMAIN	1
#define DNS_NODATA	2
#define DNS_TEMPFAIL	3
#define DNS_PERMFAIL	4

#define DNS_NAME_MAX	253	/* without the trailing dot */
#define DNS_RR_MAX	100	/* records kept of one answer */

struct dns_rr {
	int	 type;
	unsigned ttl;
	unsigned pref;			/* MX */
	char	*name;			/* MX exchange, PTR target */
	int	 family;		/* A, AAAA */
	unsigned char addr[16];
	char	*text;			/* A/AAAA printable, TXT joined */
	size_t	 text_len;
};

struct dns_answer {
	int	 status;
	const char *why;
	char	 qname[DNS_NAME_MAX + 1];
	int	 qtype;
	unsigned ttl;
	size_t	 n;
	struct dns_rr *rr;
};

struct dns;
struct dns_query;

typedef void dns_cb(void *arg, struct dns_answer *ans);
typedef void dns_name_cb(void *arg, const char *name, int status);

struct dns *dns_new(struct cfg *, struct ev *, struct buf *errs);
void	dns_free(struct dns **);

struct dns_query *dns_query(struct dns *, const char *name, int type,
	    dns_cb *cb, void *arg);
void	dns_cancel(struct dns_query **);
int	dns_lookup(struct dns *, const char *name, int type,
	    struct dns_answer **ans_r);
void	dns_answer_free(struct dns_answer **);
int	dns_parse(const unsigned char *pkt, size_t len, const char *name,
	    int type, struct dns_answer **ans_r);

int	dns_null_mx(const struct dns_answer *);
int	dns_reverse_name(const struct sockaddr *, char *out, size_t outsz);
struct dns_query *dns_client_name(struct dns *, const struct sockaddr *,
	    dns_name_cb *cb, void *arg);

#endif
