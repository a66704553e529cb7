/*
 * expand - lib/alias over this worker's alias_maps and our domain lists
 *
 * The tables of alias_maps are searched in order, the first that has
 * the key wins; a temporary failure of any of them defers.  Domains in
 * mydestination take local-part keys ("postmaster"), domains in
 * virtual_mailbox_domains only full addresses; every other domain is
 * remote, and its addresses are forwarded.  An item of those lists
 * with a ':' is a table ("file:/etc/posta/domains", as qmgr reads
 * them): a domain is in it when it is a key.  The recipient's own
 * domain counts as local (virtual) in any case: qmgr chose local for
 * it, so local never forwards a recipient back as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "local.h"
#include "map.h"

/* expand_in - domain in a list of names and tables: 1, 0, -1 (r set) */
static int
expand_in(char *const *items, size_t n, struct map *const *maps,
    size_t nmaps, const char *domain, struct reply *r)
{
	char *v = NULL;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (strchr(items[i], ':') == NULL &&
		    strcmp(items[i], domain) == 0)
			return 1;
	if (strlen(domain) > MAP_KEY_MAX)
		return 0;
	for (i = 0; i < nmaps; i++) {
		rc = map_lookup(maps[i], domain, &v, r);
		free(v);
		v = NULL;
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
local_domain_class(struct local_ctx *ctx, const char *domain,
    enum alias_domain *class_r, struct reply *r)
{
	int rc;

	*class_r = ALIAS_D_REMOTE;
	rc = expand_in(local_conf.mydest, local_conf.nmydest, ctx->dmaps,
	    ctx->ndmaps, domain, r);
	if (rc != 0) {
		*class_r = ALIAS_D_LOCAL;
		return rc < 0 ? -1 : 0;
	}
	rc = expand_in(local_conf.virt, local_conf.nvirt, ctx->vmaps,
	    ctx->nvmaps, domain, r);
	if (rc != 0)
		*class_r = ALIAS_D_VIRTUAL;
	return rc < 0 ? -1 : 0;
}

struct expand_arg {
	struct local_ctx *ctx;
	const char *rcpt_domain;	/* lower case */
};

/*
 * expand_domain - the class of a domain; the recipient's own domain is
 * at least virtual: qmgr sent it here (transport_maps may send any
 * domain to local), so it is not forwarded back.
 */
static int
expand_domain(void *arg, const char *domain, enum alias_domain *class_r,
    struct reply *r)
{
	struct expand_arg *ea = arg;

	if (local_domain_class(ea->ctx, domain, class_r, r) < 0)
		return -1;
	if (*class_r == ALIAS_D_REMOTE && strcmp(domain, ea->rcpt_domain) == 0)
		*class_r = ALIAS_D_VIRTUAL;
	return 0;
}

static int
expand_lookup(void *arg, const char *key, char **value_r, struct reply *r)
{
	struct local_ctx *ctx = ((struct expand_arg *)arg)->ctx;
	size_t i;
	int rc;

	if (strlen(key) > MAP_KEY_MAX)
		return 0;
	for (i = 0; i < ctx->nmaps; i++)
		if ((rc = map_lookup(ctx->maps[i], key, value_r, r)) != 0)
			return rc;
	return 0;
}

int
local_expand(struct local_ctx *ctx, const char *rcpt,
    struct alias_result *res, struct reply *r)
{
	struct alias_ops ops = {
		.lookup = expand_lookup,
		.domain = expand_domain,
		.delimiters = local_conf.delimiters,
	};
	struct expand_arg ea;
	const char *at = strrchr(rcpt, '@');
	char dom[ALIAS_ADDR_MAX + 1], *s;
	size_t n;

	(void)snprintf(dom, sizeof(dom), "%s", at != NULL ? at + 1 : "");
	for (s = dom; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	if ((n = strlen(dom)) > 1 && dom[n - 1] == '.')
		dom[n - 1] = '\0';
	ea.ctx = ctx;
	ea.rcpt_domain = dom;
	return alias_expand(rcpt, &ops, &ea, &alias_limits_default, res, r);
}
