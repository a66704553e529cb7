/*
 * cidr - network blocks and matching (see cidr.h)
 *
 * Addresses are parsed with inet_pton(3), which is strict (no octal, no
 * short forms like "10.1"); the prefix with str_to_uint().  Matching
 * compares whole bytes, then the remaining bits under a mask.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cidr.h"
#include "mem.h"
#include "strnum.h"

#define CIDR_TEXT_MAX	64

static const uint8_t cidr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* cidr_host_bits_clear - 1 if every bit after prefix is zero */
static int
cidr_host_bits_clear(const uint8_t *addr, unsigned width, unsigned prefix)
{
	unsigned i;

	for (i = prefix; i < width; i++)
		if (addr[i / 8] & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

int
cidr_parse(const char *text, struct cidr *c_r)
{
	char host[CIDR_TEXT_MAX];
	const char *slash, *end;
	unsigned long long prefix;
	struct cidr c;
	size_t hlen;
	unsigned width;

	memset(&c, 0, sizeof(c));
	slash = strchr(text, '/');
	end = slash != NULL ? slash : text + strlen(text);
	if (*text == '[') {
		/* "[v6]" or "[v6]/n" */
		if (end == text + 1 || end[-1] != ']')
			return -1;
		text++;
		end--;
		hlen = (size_t)(end - text);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, c.addr) != 1)
			return -1;
		c.family = AF_INET6;
	} else {
		hlen = (size_t)(end - text);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, c.addr) == 1)
			c.family = AF_INET;
		else if (inet_pton(AF_INET6, host, c.addr) == 1)
			c.family = AF_INET6;
		else
			return -1;
	}
	width = c.family == AF_INET ? 32 : 128;
	if (slash == NULL)
		prefix = width;
	else if (slash[1] == '0' && slash[2] != '\0')
		return -1;	/* "/024": leading zero */
	else if (str_to_uint(slash + 1, 0, width, &prefix) < 0)
		return -1;
	c.prefix = (unsigned)prefix;
	if (!cidr_host_bits_clear(c.addr, width, c.prefix))
		return -1;
	*c_r = c;
	return 0;
}

int
cidr_match(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned full, rest;
	uint8_t mask;

	if (family == AF_INET6 && c->family == AF_INET &&
	    memcmp(addr, cidr_v4mapped, sizeof(cidr_v4mapped)) == 0) {
		family = AF_INET;
		addr += sizeof(cidr_v4mapped);
	}
	if (family != c->family)
		return 0;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(addr, c->addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff00 >> rest);
	return (addr[full] & mask) == c->addr[full];
}

void
cidr_format(const struct cidr *c, char *out, size_t outsz)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		(void)snprintf(a, sizeof(a), "?");
	(void)snprintf(out, outsz, "%s/%u", a, c->prefix);
}

void
cidr_list_init(struct cidr_list *l)
{
	memset(l, 0, sizeof(*l));
}

void
cidr_list_deinit(struct cidr_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int
cidr_list_parse(struct cidr_list *l, const char *name, const char *text,
    struct buf *errs)
{
	char item[CIDR_TEXT_MAX];
	const char *pos = text;
	struct cidr c;
	size_t n;
	int r, rc = 0;

	for (;;) {
		r = cfg_list_next(&pos, item, sizeof(item));
		if (r == 0)
			break;
		if (r < 0) {
			/* too long to be an address: skip the item */
			while (*pos == ',' || *pos == ' ' || *pos == '\t' ||
			    *pos == '\r' || *pos == '\n')
				pos++;
			n = strcspn(pos, ", \t\r\n");
			(void)buf_printf(errs, "%s: bad network block "
			    "\"%.*s...\"\n", name, 20, pos);
			pos += n;
			rc = -1;
			continue;
		}
		if (cidr_parse(item, &c) < 0) {
			(void)buf_printf(errs, "%s: bad network block "
			    "\"%s\"\n", name, item);
			rc = -1;
			continue;
		}
		if (l->n == CIDR_LIST_MAX) {
			(void)buf_printf(errs, "%s: more than %d network "
			    "blocks\n", name, CIDR_LIST_MAX);
			return -1;
		}
		if (l->n == l->cap) {
			l->cap = l->cap == 0 ? 8 : l->cap * 2;
			l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		}
		l->v[l->n++] = c;
	}
	return rc;
}

int
cidr_list_match(const struct cidr_list *l, int family, const uint8_t *addr)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], family, addr))
			return 1;
	return 0;
}

int
cidr_list_match_sa(const struct cidr_list *l, const struct sockaddr *sa)
{
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	switch (sa->sa_family) {
	case AF_INET:
		s4 = (const struct sockaddr_in *)(const void *)sa;
		return cidr_list_match(l, AF_INET,
		    (const uint8_t *)&s4->sin_addr);
	case AF_INET6:
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return cidr_list_match(l, AF_INET6, s6->sin6_addr.s6_addr);
	default:
		return 0;
	}
}
