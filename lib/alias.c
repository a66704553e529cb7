/*
 * alias - recursive alias expansion with loop detection (see alias.h)
 *
 * A depth-first walk: the aliases on the way down from the recipient
 * form the path (a loop is an alias met again on it); every alias
 * expanded so far is in the expanded set, so a list reached twice is
 * expanded once and a table shaped like a wide tree costs lookups in
 * proportion to its size, not to the number of paths through it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "mem.h"

const struct alias_limits alias_limits_default = {
	ALIAS_DEPTH_DEFAULT, ALIAS_TARGETS_DEFAULT, ALIAS_LOOKUPS_DEFAULT,
};

struct alias_walk {
	const struct alias_ops *ops;
	void	*arg;
	const struct alias_limits *lim;
	struct alias_result *res;
	struct reply *r;
	char	**path;			/* aliases on the way down */
	size_t	 npath;
	char	**seen;			/* aliases expanded */
	size_t	 nseen, capseen;
};

static int	alias_walk(struct alias_walk *, const char *addr,
		    unsigned depth, const char *owner);

static void
alias_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

int
alias_split(const char *addr, char *local, size_t localsz, char *domain,
    size_t domainsz)
{
	const char *at = strrchr(addr, '@');
	size_t n;

	if (at == NULL)
		return 0;
	n = (size_t)(at - addr);
	if (n >= localsz || strlen(at + 1) >= domainsz)
		return 0;
	memcpy(local, addr, n);
	local[n] = '\0';
	memcpy(domain, at + 1, strlen(at + 1) + 1);
	return 1;
}

int
alias_strip_ext(const char *local, const char *delims, char *out,
    size_t outsz)
{
	size_t n = strlen(local), cut = n;

	if (delims != NULL && *delims != '\0') {
		cut = strcspn(local, delims);
		if (cut == 0)
			cut = n;	/* "+foo": no user part, no extension */
	}
	if (cut >= outsz)
		return -1;
	memcpy(out, local, cut);
	out[cut] = '\0';
	return cut < n ? 1 : 0;
}

/* alias_syntax_ok - 1 if addr is an address we can handle safely */
static int
alias_syntax_ok(const char *addr)
{
	const unsigned char *p;
	const char *at;
	size_t n = strlen(addr);

	if (n == 0 || n > ALIAS_ADDR_MAX)
		return 0;
	for (p = (const unsigned char *)addr; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f || strchr("\"<>(),;\\", *p) !=
		    NULL)
			return 0;
	if ((at = strchr(addr, '@')) != NULL &&
	    (at == addr || at[1] == '\0' || strchr(at + 1, '@') != NULL))
		return 0;
	return 1;
}

static int
alias_fail(struct alias_walk *w, int code, const char *dsn, const char *text)
{
	reply_set(w->r, code, dsn, "%s", text);
	return -1;
}

static int
alias_in(char *const *set, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(set[i], key) == 0)
			return 1;
	return 0;
}

static int
alias_add_target(struct alias_walk *w, const char *addr, const char *owner,
    bool is_remote)
{
	struct alias_result *res = w->res;
	struct alias_target *t;
	char *key = xstrdup(addr);
	size_t i;

	alias_lower(key);
	for (i = 0; i < res->n; i++)
		if (strcmp(res->t[i].key, key) == 0) {
			free(key);
			return 0;
		}
	if (res->n >= w->lim->max_targets) {
		free(key);
		return alias_fail(w, 550, "5.3.0", "alias expansion too large");
	}
	if (res->n == res->cap) {
		res->cap = res->cap == 0 ? 4 : res->cap * 2;
		res->t = xreallocarray(res->t, res->cap, sizeof(*res->t));
	}
	t = &res->t[res->n++];
	t->addr = xstrdup(addr);
	t->key = key;
	t->owner = owner != NULL ? xstrdup(owner) : NULL;
	t->is_remote = is_remote;
	return 0;
}

static int
alias_lookup(struct alias_walk *w, const char *key, char **value_r)
{
	int rc;

	if (++w->res->lookups > w->lim->max_lookups)
		return alias_fail(w, 550, "5.3.0", "alias expansion too large");
	*value_r = NULL;
	rc = w->ops->lookup(w->arg, key, value_r, w->r);
	if (rc < 0) {
		free(*value_r);
		*value_r = NULL;
	}
	return rc;
}

/*
 * alias_find - look addr up under its keys: 1 with the value and the
 * alias's identity (key@domain, lower case) and key, 0 when it is no
 * alias, -1 on failure.
 */
static int
alias_find(struct alias_walk *w, const char *local, const char *domain,
    enum alias_domain cls, char **value_r, char **id_r, char **key_r)
{
	char base[ALIAS_ADDR_MAX + 1], key[2 * ALIAS_ADDR_MAX + 2];
	const char *keys[4];
	size_t nkeys = 0, i;
	int has_ext, rc;

	has_ext = alias_strip_ext(local, w->ops->delimiters, base,
	    sizeof(base));
	if (has_ext < 0)
		return alias_fail(w, 550, "5.1.3", "bad address syntax");
	keys[nkeys++] = local;
	if (has_ext)
		keys[nkeys++] = base;
	if (cls == ALIAS_D_LOCAL) {
		keys[nkeys++] = local;
		if (has_ext)
			keys[nkeys++] = base;
	}
	for (i = 0; i < nkeys; i++) {
		/* the first half of keys are full addresses */
		if (i < (cls == ALIAS_D_LOCAL ? nkeys / 2 : nkeys))
			(void)snprintf(key, sizeof(key), "%s@%s", keys[i],
			    domain);
		else
			(void)snprintf(key, sizeof(key), "%s", keys[i]);
		alias_lower(key);
		if ((rc = alias_lookup(w, key, value_r)) != 0) {
			if (rc < 0)
				return -1;
			*key_r = xstrdup(key);
			if (strchr(key, '@') == NULL)
				(void)snprintf(key, sizeof(key), "%s@%s",
				    keys[i], domain);
			alias_lower(key);
			*id_r = xstrdup(key);
			return 1;
		}
	}
	return 0;
}

/* alias_owner - "owner-KEY" an alias too: 1 and its address; 0; -1 */
static int
alias_owner(struct alias_walk *w, const char *key, const char *domain,
    char **owner_r)
{
	char okey[2 * ALIAS_ADDR_MAX + 16], *v = NULL;
	size_t n;
	int rc;

	if (strncmp(key, "owner-", 6) == 0)
		return 0;
	n = (size_t)snprintf(okey, sizeof(okey), "owner-%s", key);
	if (n >= sizeof(okey))
		return 0;
	if ((rc = alias_lookup(w, okey, &v)) <= 0)
		return rc;
	free(v);
	if (strchr(okey, '@') == NULL) {
		if ((size_t)snprintf(okey + n, sizeof(okey) - n, "@%s",
		    domain) >= sizeof(okey) - n)
			return 0;
	}
	*owner_r = xstrdup(okey);
	return 1;
}

/* alias_item - one list item: check, qualify, then expand it */
static int
alias_item(struct alias_walk *w, const char *item, size_t len,
    const char *id, const char *domain, unsigned depth, const char *owner)
{
	char addr[ALIAS_ADDR_MAX * 2 + 2], lc[sizeof(addr)];

	if (len > 0 && item[0] == '<' && item[len - 1] == '>') {
		item++;
		len -= len >= 2 ? 2 : len;
	}
	if (len == 0)
		return 0;
	if (item[0] == '|' || item[0] == '/' ||
	    (len >= 9 && strncmp(item, ":include:", 9) == 0))
		return alias_fail(w, 550, "5.3.5",
		    "alias target not supported (command, file or include)");
	if (len > ALIAS_ADDR_MAX || memchr(item, '\0', len) != NULL)
		return alias_fail(w, 550, "5.1.3", "bad alias target syntax");
	memcpy(addr, item, len);
	addr[len] = '\0';
	if (!alias_syntax_ok(addr))
		return alias_fail(w, 550, "5.1.3", "bad alias target syntax");
	if (strchr(addr, '@') == NULL)
		(void)snprintf(addr + len, sizeof(addr) - len, "@%s", domain);
	if (strlen(addr) > ALIAS_ADDR_MAX)
		return alias_fail(w, 550, "5.1.3", "bad alias target syntax");
	memcpy(lc, addr, sizeof(addr));
	alias_lower(lc);
	if (strcmp(lc, id) == 0)	/* "root: root, backup": the user */
		return alias_add_target(w, addr, owner, false);
	return alias_walk(w, addr, depth + 1, owner);
}

static int
alias_walk(struct alias_walk *w, const char *addr, unsigned depth,
    const char *owner)
{
	char local[ALIAS_ADDR_MAX + 1], domain[ALIAS_ADDR_MAX + 1];
	char dlc[sizeof(domain)], *value = NULL, *id = NULL, *key = NULL;
	char *nowner = NULL;
	const char *p, *e;
	enum alias_domain cls;
	int rc;

	if (!alias_syntax_ok(addr) ||
	    !alias_split(addr, local, sizeof(local), domain, sizeof(domain)))
		return alias_fail(w, 550, "5.1.3", "bad address syntax");
	memcpy(dlc, domain, sizeof(domain));
	alias_lower(dlc);
	if (strlen(dlc) > 1 && dlc[strlen(dlc) - 1] == '.')
		dlc[strlen(dlc) - 1] = '\0';	/* "example.test." */
	if (w->ops->domain(w->arg, dlc, &cls, w->r) < 0)
		return -1;
	if (cls == ALIAS_D_REMOTE)
		return alias_add_target(w, addr, owner, true);
	rc = alias_find(w, local, domain, cls, &value, &id, &key);
	if (rc <= 0)
		return rc < 0 ? -1 : alias_add_target(w, addr, owner, false);
	if (depth == 0)
		w->res->is_expanded = true;
	rc = -1;
	if (alias_in(w->path, w->npath, id)) {
		(void)alias_fail(w, 550, "5.4.6", "alias loop");
		goto out;
	}
	if (alias_in(w->seen, w->nseen, id)) {
		rc = 0;			/* expanded already, elsewhere */
		goto out;
	}
	if (depth >= w->lim->max_depth) {
		(void)alias_fail(w, 550, "5.4.6", "alias expansion too deep");
		goto out;
	}
	if (w->nseen == w->capseen) {
		w->capseen = w->capseen == 0 ? 8 : w->capseen * 2;
		w->seen = xreallocarray(w->seen, w->capseen,
		    sizeof(*w->seen));
	}
	w->seen[w->nseen++] = xstrdup(id);
	if (alias_owner(w, key, dlc, &nowner) < 0)
		goto out;
	if (nowner != NULL)
		owner = nowner;
	w->path[w->npath++] = id;
	rc = 0;
	for (p = value; rc == 0 && *p != '\0'; p = e) {
		p += strspn(p, ", \t");
		e = p + strcspn(p, ", \t");
		if (e > p)
			rc = alias_item(w, p, (size_t)(e - p), id, domain,
			    depth, owner);
	}
	w->npath--;
out:
	free(nowner);
	free(value);
	free(id);
	free(key);
	return rc;
}

int
alias_expand(const char *rcpt, const struct alias_ops *ops, void *arg,
    const struct alias_limits *lim, struct alias_result *res, struct reply *r)
{
	struct alias_walk w;
	size_t i;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.ops = ops;
	w.arg = arg;
	w.lim = lim != NULL ? lim : &alias_limits_default;
	w.res = res;
	w.r = r;
	w.path = xcalloc(w.lim->max_depth + 1, sizeof(*w.path));
	rc = alias_walk(&w, rcpt, 0, NULL);
	for (i = 0; i < w.nseen; i++)
		free(w.seen[i]);
	free(w.seen);
	free(w.path);
	if (rc < 0) {
		unsigned lookups = res->lookups;

		alias_result_free(res);
		res->lookups = lookups;
		return -1;
	}
	return 0;
}

void
alias_result_free(struct alias_result *res)
{
	size_t i;

	for (i = 0; i < res->n; i++) {
		free(res->t[i].addr);
		free(res->t[i].key);
		free(res->t[i].owner);
	}
	free(res->t);
	memset(res, 0, sizeof(*res));
}
