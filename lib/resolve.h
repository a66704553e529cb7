/*
 * resolve - which transport delivers a recipient, and to which next hop
 *
 * resolve_new(cfg, errs) reads the settings that decide it:
 *   mydestination, virtual_mailbox_domains   the local domains (lists;
 *       an item with a ':' is a table, "file:/etc/posta/domains", in
 *       which a domain is local when it is a key);
 *   local_transport (default "local"), default_transport ("smtp");
 *   transport_maps   tables of  key  transport[:nexthop]  tried in order.
 * It returns NULL with "where: message" lines in errs when a table
 * cannot be opened or a transport setting is not a transport name.
 *
 * resolve_addr(res, addr, res_r, r) fills res_r for one recipient:
 *   1. transport_maps, keys in this order: the whole address, its
 *      domain, each parent domain as ".parent.domain", then "*"; the
 *      first table with a match wins.  An entry's empty transport
 *      (":[mx.example]") keeps the default of step 2; its next hop
 *      replaces the domain as the destination.
 *   2. otherwise local_transport for an address without a domain or in
 *      a local domain, default_transport for anything else.
 * The domain is compared in lower case, without a trailing dot.  The
 * result: transport name, next hop ("" when none), the destination
 * (next hop, else the domain: concurrency is counted per destination)
 * and whether the domain is local.  resolve_addr returns 0, or -1 for a
 * temporary failure (a table lookup failed: r holds 451 4.3.0) or a
 * table entry that does not parse (r holds 451 4.3.5, logged).
 *
 * resolve_entry_parse(value, tr, trsz, nh, nhsz) is the pure parser of
 * a table value "transport[:nexthop]": the transport is empty or 1 to
 * RESOLVE_TRANSPORT_MAX of [a-z0-9_-]; everything after the first ':'
 * is the next hop (for the error transport: the text of the failure).
 * White space around each part is dropped.  0, or -1 on bad syntax or
 * a part that does not fit (outputs then undefined).
 *
 * relayhost (posta.conf): when set, the next hop of every recipient that
 * is neither local nor in relay_domains nor matched in transport_maps
 * (so: default_transport mail); "host", "[host]" (no MX lookup; an IP
 * address goes in brackets: "[192.0.2.1]", "[2001:db8::1]") or either
 * with ":port".  resolve_nexthop_parse(nh, host, hostsz, &port,
 * &bracket) reads that syntax (also "[ipv6:addr]"): the host (1 to
 * RESOLVE_DOMAIN_MAX of letters, digits, '.', '-', '_', and ':' inside
 * brackets), the port (25 when none) and whether it was in brackets (no
 * MX lookup); 0, or -1 for bad syntax.  resolve_nexthop_ok(s) is 0 when
 * s is empty or parses, else -1.  The smtp agent parses its next hops
 * with it too.
 *
 * resolve_domain_in_list(list, domain) is 1 if domain is an item of
 * the plain list (comma or space separated, case-insensitive), else 0.
 * Out of memory is fatal.
 */
#ifndef POSTA_RESOLVE_H
#define POSTA_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cfg.h"
#include "reply.h"

#define RESOLVE_TRANSPORT_MAX	32
#define RESOLVE_NEXTHOP_MAX	255
#define RESOLVE_DOMAIN_MAX	255
#define RESOLVE_TABLES_MAX	16

struct resolve;

struct resolve_result {
	char	 transport[RESOLVE_TRANSPORT_MAX + 1];
	char	 nexthop[RESOLVE_NEXTHOP_MAX + 1];	/* "" = none */
	char	 domain[RESOLVE_DOMAIN_MAX + 1];	/* lower case */
	char	 dest[RESOLVE_NEXTHOP_MAX + 1];	/* nexthop, else domain */
	bool	 is_local;
};

struct resolve *resolve_new(struct cfg *, struct buf *errs);
void	resolve_free(struct resolve **);

int	resolve_addr(struct resolve *, const char *addr,
	    struct resolve_result *res_r, struct reply *r);

int	resolve_entry_parse(const char *value, char *tr, size_t trsz,
	    char *nh, size_t nhsz);
int	resolve_domain_in_list(const char *list, const char *domain);
int	resolve_nexthop_ok(const char *nexthop);
int	resolve_nexthop_parse(const char *nexthop, char *host, size_t hostsz,
	    unsigned *port_r, bool *bracket_r);
/* resolve_transport_ok - 1 if s is a good transport name, else 0 */
int	resolve_transport_ok(const char *s);

#endif
