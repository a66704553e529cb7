/*
 * resolve - transport resolution from the settings and transport_maps
 * (see resolve.h)
 *
 * The local domains are kept as plain lower-case strings plus the
 * tables named among them; transport_maps is a list of open tables.
 * Nothing here does I/O but the table lookups.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "map.h"
#include "mem.h"
#include "resolve.h"
#include "strnum.h"

struct resolve {
	char	**domains;		/* plain local domains, lower case */
	size_t	 ndomains;
	struct map *domain_maps[RESOLVE_TABLES_MAX];
	size_t	 ndomain_maps;
	struct map *tmaps[RESOLVE_TABLES_MAX];
	size_t	 ntmaps;
	char	 local_tr[RESOLVE_TRANSPORT_MAX + 1];
	char	 default_tr[RESOLVE_TRANSPORT_MAX + 1];
	char	 relayhost[RESOLVE_NEXTHOP_MAX + 1];	/* "" = none */
	char	*relay_domains;			/* plain list */
};

int
resolve_transport_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!(islower((unsigned char)s[n]) ||
		    isdigit((unsigned char)s[n]) || s[n] == '_' ||
		    s[n] == '-'))
			return 0;
	return n >= 1 && n <= RESOLVE_TRANSPORT_MAX;
}

/* resolve_trim_copy - copy [p, p+n) without surrounding blanks; 0/-1 */
static int
resolve_trim_copy(const char *p, size_t n, char *out, size_t outsz)
{
	while (n > 0 && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n >= outsz)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int
resolve_entry_parse(const char *value, char *tr, size_t trsz, char *nh,
    size_t nhsz)
{
	const char *colon = strchr(value, ':');
	size_t trlen = colon != NULL ? (size_t)(colon - value) : strlen(value);
	size_t i;

	if (trsz == 0 || nhsz == 0)
		return -1;
	if (resolve_trim_copy(value, trlen, tr, trsz) < 0)
		return -1;
	if (tr[0] != '\0' && !resolve_transport_ok(tr))
		return -1;
	if (colon == NULL) {
		if (tr[0] == '\0')
			return -1;	/* an empty value says nothing */
		nh[0] = '\0';
		return 0;
	}
	if (resolve_trim_copy(colon + 1, strlen(colon + 1), nh, nhsz) < 0)
		return -1;
	for (i = 0; nh[i] != '\0'; i++)
		if (iscntrl((unsigned char)nh[i]))
			return -1;
	if (tr[0] == '\0' && nh[0] == '\0')
		return -1;
	return 0;
}

int
resolve_domain_in_list(const char *list, const char *domain)
{
	char item[RESOLVE_DOMAIN_MAX + 2];
	const char *pos = list;
	int rc;

	while ((rc = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		if (rc < 0) {
			/* an over-long item matches nothing; skip it */
			pos += strspn(pos, ", \t\r\n");
			pos += strcspn(pos, ", \t\r\n");
			continue;
		}
		if (strchr(item, ':') == NULL &&
		    strcasecmp(item, domain) == 0)
			return 1;
	}
	return 0;
}

int
resolve_nexthop_parse(const char *nh, char *host, size_t hostsz,
    unsigned *port_r, bool *bracket_r)
{
	const char *h = nh, *end, *port = NULL;
	unsigned long long v = 25;
	size_t n, i;

	*bracket_r = *nh == '[';
	if (*bracket_r) {
		h = nh + 1;
		if ((end = strchr(h, ']')) == NULL)
			return -1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
		if (strncasecmp(h, "ipv6:", 5) == 0)
			h += 5;
	} else {
		end = strchr(nh, ':');
		if (end != NULL)
			port = end + 1;
		else
			end = nh + strlen(nh);
	}
	n = (size_t)(end - h);
	if (n == 0 || n > RESOLVE_DOMAIN_MAX || n >= hostsz)
		return -1;
	for (i = 0; i < n; i++)
		if (!(isalnum((unsigned char)h[i]) || h[i] == '.' ||
		    h[i] == '-' || h[i] == '_' || (*bracket_r && h[i] == ':')))
			return -1;
	if (port != NULL && (str_to_uint(port, 1, 65535, &v) < 0))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port_r = (unsigned)v;
	return 0;
}

int
resolve_nexthop_ok(const char *nh)
{
	char host[RESOLVE_DOMAIN_MAX + 1];
	unsigned port;
	bool bracket;

	if (*nh == '\0')
		return 0;
	return resolve_nexthop_parse(nh, host, sizeof(host), &port,
	    &bracket);
}

/* resolve_add_list - the items of one list setting into res */
static int
resolve_add_list(struct resolve *res, const char *name, const char *list,
    struct buf *errs)
{
	char item[1024];
	const char *pos = list;
	struct map *m;
	size_t i;
	int rc, ret = 0;

	while ((rc = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		if (rc < 0) {
			(void)buf_printf(errs, "%s: item too long\n", name);
			return -1;
		}
		if (strchr(item, ':') != NULL) {
			if (res->ndomain_maps == RESOLVE_TABLES_MAX) {
				(void)buf_printf(errs, "%s: too many "
				    "tables\n", name);
				return -1;
			}
			if ((m = map_open(item, errs)) == NULL) {
				ret = -1;
				continue;
			}
			res->domain_maps[res->ndomain_maps++] = m;
			continue;
		}
		for (i = 0; item[i] != '\0'; i++)
			item[i] = (char)tolower((unsigned char)item[i]);
		if (i > 0 && item[i - 1] == '.')
			item[i - 1] = '\0';
		res->domains = xreallocarray(res->domains, res->ndomains + 1,
		    sizeof(*res->domains));
		res->domains[res->ndomains++] = xstrdup(item);
	}
	return ret;
}

static int
resolve_set_transport(char *dst, struct cfg *cfg, const char *name,
    struct buf *errs)
{
	const char *v = cfg_str(cfg, name);

	if (!resolve_transport_ok(v)) {
		(void)buf_printf(errs, "%s: bad transport name \"%.64s\"\n",
		    name, v);
		return -1;
	}
	(void)snprintf(dst, RESOLVE_TRANSPORT_MAX + 1, "%s", v);
	return 0;
}

struct resolve *
resolve_new(struct cfg *cfg, struct buf *errs)
{
	struct resolve *res = xcalloc(1, sizeof(*res));
	const char *pos;
	char item[1024];
	struct map *m;
	int rc, ret = 0;

	if (resolve_add_list(res, "mydestination",
	    cfg_str(cfg, "mydestination"), errs) < 0)
		ret = -1;
	if (resolve_add_list(res, "virtual_mailbox_domains",
	    cfg_str(cfg, "virtual_mailbox_domains"), errs) < 0)
		ret = -1;
	if (resolve_set_transport(res->local_tr, cfg, "local_transport",
	    errs) < 0)
		ret = -1;
	if (resolve_set_transport(res->default_tr, cfg, "default_transport",
	    errs) < 0)
		ret = -1;
	if (resolve_nexthop_ok(cfg_str(cfg, "relayhost")) < 0) {
		(void)buf_printf(errs, "relayhost: bad next hop \"%.64s\" "
		    "(host, [host] or either with :port)\n",
		    cfg_str(cfg, "relayhost"));
		ret = -1;
	} else {
		(void)snprintf(res->relayhost, sizeof(res->relayhost), "%s",
		    cfg_str(cfg, "relayhost"));
	}
	res->relay_domains = xstrdup(cfg_str(cfg, "relay_domains"));
	pos = cfg_str(cfg, "transport_maps");
	while ((rc = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		if (rc < 0 || res->ntmaps == RESOLVE_TABLES_MAX) {
			(void)buf_printf(errs, "transport_maps: %s\n",
			    rc < 0 ? "item too long" : "too many tables");
			ret = -1;
			break;
		}
		if ((m = map_open(item, errs)) == NULL) {
			ret = -1;
			continue;
		}
		res->tmaps[res->ntmaps++] = m;
	}
	if (ret < 0)
		resolve_free(&res);
	return res;
}

void
resolve_free(struct resolve **resp)
{
	struct resolve *res = *resp;
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < res->ndomains; i++)
		free(res->domains[i]);
	free(res->domains);
	for (i = 0; i < res->ndomain_maps; i++)
		map_close(&res->domain_maps[i]);
	for (i = 0; i < res->ntmaps; i++)
		map_close(&res->tmaps[i]);
	free(res->relay_domains);
	free(res);
	*resp = NULL;
}

/* resolve_is_local - 1 local, 0 not, -1 table failure (r set) */
static int
resolve_is_local(struct resolve *res, const char *domain, struct reply *r)
{
	char *v = NULL;
	size_t i;
	int rc;

	if (*domain == '\0')
		return 1;
	for (i = 0; i < res->ndomains; i++)
		if (strcmp(res->domains[i], domain) == 0)
			return 1;
	for (i = 0; i < res->ndomain_maps; i++) {
		rc = map_lookup(res->domain_maps[i], domain, &v, r);
		free(v);
		v = NULL;
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* resolve_lookup - first match of key in transport_maps: 1, 0, -1 */
static int
resolve_lookup(struct resolve *res, const char *key, char **value_r,
    struct reply *r)
{
	size_t i;
	int rc;

	for (i = 0; i < res->ntmaps; i++)
		if ((rc = map_lookup(res->tmaps[i], key, value_r, r)) != 0)
			return rc;
	return 0;
}

/* resolve_table - try each key of resolve.h step 1; 1, 0 or -1 */
static int
resolve_table(struct resolve *res, const char *addr, const char *domain,
    char **value_r, struct reply *r)
{
	const char *d;
	char key[RESOLVE_DOMAIN_MAX + 2];
	int rc;

	if (res->ntmaps == 0)
		return 0;
	if (strchr(addr, '@') != NULL &&
	    (rc = resolve_lookup(res, addr, value_r, r)) != 0)
		return rc;
	if (*domain != '\0') {
		if ((rc = resolve_lookup(res, domain, value_r, r)) != 0)
			return rc;
		for (d = strchr(domain, '.'); d != NULL;
		    d = strchr(d + 1, '.')) {
			(void)snprintf(key, sizeof(key), "%s", d);
			if ((rc = resolve_lookup(res, key, value_r, r)) != 0)
				return rc;
		}
	}
	return resolve_lookup(res, "*", value_r, r);
}

int
resolve_addr(struct resolve *res, const char *addr,
    struct resolve_result *res_r, struct reply *r)
{
	const char *at = strrchr(addr, '@');
	char tr[RESOLVE_TRANSPORT_MAX + 1], nh[RESOLVE_NEXTHOP_MAX + 1];
	char *value = NULL;
	size_t i, n;
	int rc;

	memset(res_r, 0, sizeof(*res_r));
	n = at != NULL ? strlen(at + 1) : 0;
	if (n > 0 && at[n] == '.')
		n--;
	if (n > RESOLVE_DOMAIN_MAX) {
		reply_set(r, 550, "5.1.2", "domain name too long");
		return -1;
	}
	for (i = 0; i < n; i++)
		res_r->domain[i] = (char)tolower((unsigned char)at[1 + i]);
	res_r->domain[n] = '\0';
	if ((rc = resolve_is_local(res, res_r->domain, r)) < 0)
		return -1;
	res_r->is_local = rc == 1;
	(void)snprintf(res_r->transport, sizeof(res_r->transport), "%s",
	    res_r->is_local ? res->local_tr : res->default_tr);
	if ((rc = resolve_table(res, addr, res_r->domain, &value, r)) < 0)
		return -1;
	if (rc == 1) {
		if (resolve_entry_parse(value, tr, sizeof(tr), nh,
		    sizeof(nh)) < 0) {
			log_warn("transport_maps: bad entry for %.200s: "
			    "\"%.200s\"", addr, value);
			free(value);
			reply_set(r, 451, "4.3.5",
			    "transport table configuration error");
			return -1;
		}
		free(value);
		if (tr[0] != '\0')
			(void)snprintf(res_r->transport,
			    sizeof(res_r->transport), "%s", tr);
		(void)snprintf(res_r->nexthop, sizeof(res_r->nexthop), "%s",
		    nh);
	} else if (!res_r->is_local && res->relayhost[0] != '\0' &&
	    !resolve_domain_in_list(res->relay_domains, res_r->domain)) {
		/* relayhost: other domains' mail, not relay_domains' */
		(void)snprintf(res_r->nexthop, sizeof(res_r->nexthop), "%s",
		    res->relayhost);
	}
	(void)snprintf(res_r->dest, sizeof(res_r->dest), "%s",
	    res_r->nexthop[0] != '\0' ? res_r->nexthop : res_r->domain);
	return 0;
}
