/*
 * cidr - IPv4 and IPv6 network blocks, as mynetworks lists them
 *
 * cidr_parse(text, c_r) takes one block: "192.0.2.0/24", "10.1.2.3"
 * (a host, /32), "2001:db8::/32", "[2001:db8::]/32" or "[::1]" (IPv6
 * may be in brackets, as Postfix writes it).  The prefix is a decimal
 * number within the family's width; bits set beyond the prefix are
 * refused ("192.0.2.1/24" is a typo for a host or a network, not
 * something to guess at), as are a sign, leading zeros in the prefix
 * and anything after it.  0 or -1, *c_r untouched on -1.
 *
 * cidr_match(c, family, addr) is 1 when the address (4 bytes for
 * AF_INET, 16 for AF_INET6) lies in the block, else 0.  An IPv4-mapped
 * IPv6 address (::ffff:192.0.2.7) matches IPv4 blocks as the IPv4
 * address it is: a dual-stack socket shows IPv4 clients that way.
 *
 * A cidr_list is an ordered array of blocks.  cidr_list_parse() reads a
 * list separated by commas and/or blanks (cfg_list_next) and appends
 * every block; bad items are reported as "name: bad network block
 * \"item\"\n" in errs and the result is -1, but the good ones are kept.
 * cidr_list_match_sa() tests a socket address (AF_INET, AF_INET6; any
 * other family never matches).  Out of memory is fatal.
 */
#ifndef POSTA_CIDR_H
#define POSTA_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"

#define CIDR_LIST_MAX	10000	/* blocks in one list */

struct cidr {
	int	 family;	/* AF_INET or AF_INET6 */
	uint8_t	 addr[16];	/* network, 4 or 16 bytes used */
	unsigned prefix;	/* 0..32 or 0..128 */
};

struct cidr_list {
	struct cidr *v;
	size_t	 n, cap;
};

int	cidr_parse(const char *text, struct cidr *c_r);
int	cidr_match(const struct cidr *, int family, const uint8_t *addr);
/* cidr_format - "192.0.2.0/24" or "2001:db8::/32" into out */
void	cidr_format(const struct cidr *, char *out, size_t outsz);

void	cidr_list_init(struct cidr_list *);
void	cidr_list_deinit(struct cidr_list *);
int	cidr_list_parse(struct cidr_list *, const char *name,
	    const char *text, struct buf *errs);
int	cidr_list_match(const struct cidr_list *, int family,
	    const uint8_t *addr);
int	cidr_list_match_sa(const struct cidr_list *, const struct sockaddr *);

#endif
