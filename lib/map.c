/*
 * map - lookup tables "type:where" (see map.h)
 *
 * This file holds what every backend shares: the spec parser that picks
 * a backend and the text-table parser (a pure function over a buffer,
 * also the fuzz target).  Files are read by lib/file.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "map_private.h"
#include "mem.h"

const struct map_text_limits map_text_limits_default = {
	MAP_LINE_MAX, MAP_KEY_MAX, MAP_VALUE_MAX, MAP_ENTRIES_MAX,
};

static const struct map_ops *const map_backends[] = {
	&map_file_ops,
	&map_bdb_ops,
	&map_ldap_ops,
	NULL,
};

void
map_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* map_backend - split spec into its backend and where; NULL + message */
static const struct map_ops *
map_backend(const char *spec, const char **where_r, struct buf *errs)
{
	const struct map_ops *const *o;
	const char *colon = strchr(spec, ':');
	size_t n;

	if (colon == NULL) {
		(void)buf_printf(errs, "%.200s: table must be written "
		    "type:where (file:, bdb: or ldap:)\n", spec);
		return NULL;
	}
	n = (size_t)(colon - spec);
	for (o = map_backends; *o != NULL; o++)
		if (strlen((*o)->type) == n &&
		    strncmp((*o)->type, spec, n) == 0)
			break;
	if (*o == NULL) {
		(void)buf_printf(errs, "%.200s: unknown table type \"%.*s\" "
		    "(expected file, bdb or ldap)\n", spec,
		    (int)(n > 40 ? 40 : n), spec);
		return NULL;
	}
	if (colon[1] != '/') {
		(void)buf_printf(errs, "%.200s: table path must be "
		    "absolute\n", spec);
		return NULL;
	}
	if (strlen(colon + 1) >= 4096) {
		(void)buf_printf(errs, "%.200s...: table path too long\n",
		    spec);
		return NULL;
	}
	*where_r = colon + 1;
	return *o;
}

struct map *
map_open(const char *spec, struct buf *errs)
{
	const struct map_ops *ops;
	const char *where;
	struct map *m;

	if ((ops = map_backend(spec, &where, errs)) == NULL)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->ops = ops;
	m->spec = xstrdup(spec);
	m->where = xstrdup(where);
	if (ops->open(m, errs) < 0) {
		free(m->spec);
		free(m->where);
		free(m);
		return NULL;
	}
	return m;
}

int
map_lookup(struct map *m, const char *key, char **value_r, struct reply *r)
{
	int rc;

	*value_r = NULL;
	rc = m->ops->lookup(m, key, value_r);
	if (rc < 0)
		reply_set(r, 451, "4.3.0", "Temporary lookup failure");
	return rc;
}

void
map_close(struct map **mp)
{
	struct map *m = *mp;

	if (m == NULL)
		return;
	m->ops->close(m);
	free(m->spec);
	free(m->where);
	free(m);
	*mp = NULL;
}

const char *
map_spec(const struct map *m)
{
	return m->spec;
}

int
map_check(const char *spec, struct buf *errs)
{
	const struct map_ops *ops;
	const char *where;

	if ((ops = map_backend(spec, &where, errs)) == NULL)
		return -1;
	return ops->check(where, errs);
}

/* ---- the text-table parser ------------------------------------------- */

struct map_parse {
	const char	*origin;
	const struct map_text_limits *lim;
	map_text_entry_fn *entry;
	void		*arg;
	struct buf	*errs;
	size_t		 entries;
	int		 rc;
	int		 full;		/* entries_max reached: stop */
};

/* map_safe - a copy of s for a message: printable ASCII, cut at max */
static void
map_safe(const char *s, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outsz; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* map_parse_entry - one logical line "key value" or "key: value" */
static void
map_parse_entry(struct map_parse *mp, char *line, size_t lineno)
{
	const struct map_text_limits *lim = mp->lim;
	const char *why = NULL;
	char *key = line, *val, *end, safe[101];
	size_t klen;

	klen = 0;
	while (key[klen] != '\0' && !isspace((unsigned char)key[klen]))
		klen++;
	val = key + klen;
	if (*val != '\0')
		*val++ = '\0';
	/* aliases(5) style "name: value" */
	if (klen > 0 && key[klen - 1] == ':')
		key[--klen] = '\0';
	while (isspace((unsigned char)*val))
		val++;
	end = val + strlen(val);
	while (end > val && isspace((unsigned char)end[-1]))
		*--end = '\0';
	map_safe(key, safe, sizeof(safe));
	if (klen == 0) {
		(void)buf_printf(mp->errs, "%s:%zu: empty key\n",
		    mp->origin, lineno);
		mp->rc = -1;
		return;
	}
	if (klen > lim->key_max) {
		(void)buf_printf(mp->errs, "%s:%zu: key too long (over %zu "
		    "bytes)\n", mp->origin, lineno, lim->key_max);
		mp->rc = -1;
		return;
	}
	if (*val == '\0') {
		(void)buf_printf(mp->errs, "%s:%zu: missing value for key "
		    "\"%s\" (expected: key whitespace value)\n", mp->origin,
		    lineno, safe);
		mp->rc = -1;
		return;
	}
	if ((size_t)(end - val) > lim->value_max) {
		(void)buf_printf(mp->errs, "%s:%zu: value too long (over %zu "
		    "bytes) for key \"%s\"\n", mp->origin, lineno,
		    lim->value_max, safe);
		mp->rc = -1;
		return;
	}
	if (mp->entries >= lim->entries_max) {
		(void)buf_printf(mp->errs, "%s:%zu: too many entries (limit "
		    "%zu)\n", mp->origin, lineno, lim->entries_max);
		mp->rc = -1;
		mp->full = 1;
		return;
	}
	mp->entries++;
	map_lower(key);
	if (mp->entry(mp->arg, key, val, lineno, &why) < 0) {
		(void)buf_printf(mp->errs, "%s:%zu: %s \"%s\"\n", mp->origin,
		    lineno, why != NULL ? why : "bad entry", safe);
		mp->rc = -1;
	}
}

int
map_text_parse(const char *text, size_t len, const char *origin,
    const struct map_text_limits *lim, map_text_entry_fn *entry, void *arg,
    struct buf *errs)
{
	struct map_parse mp;
	struct buf logical;
	const char *p = text, *end = text + len, *nl, *q, *e;
	size_t lineno = 0, start_line = 0, plen;
	int skipping = 0;

	memset(&mp, 0, sizeof(mp));
	mp.origin = origin;
	mp.lim = lim;
	mp.entry = entry;
	mp.arg = arg;
	mp.errs = errs;
	/* big enough for any good entry: longer ones are errors anyway */
	buf_init(&logical, lim->line_max + lim->value_max + 2);
	while (p < end && !mp.full) {
		nl = memchr(p, '\n', (size_t)(end - p));
		plen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		q = p;
		p = nl != NULL ? nl + 1 : end;
		if (plen > lim->line_max || memchr(q, '\0', plen) != NULL) {
			if (plen > lim->line_max)
				(void)buf_printf(errs, "%s:%zu: line too long "
				    "(over %zu bytes)\n", origin, lineno,
				    lim->line_max);
			else
				(void)buf_printf(errs, "%s:%zu: NUL byte in "
				    "line\n", origin, lineno);
			mp.rc = -1;
			/* drop the whole entry this line belongs to */
			if (plen == 0 || !isspace((unsigned char)*q)) {
				if (start_line != 0 && !skipping)
					map_parse_entry(&mp, logical.data,
					    start_line);
				start_line = 0;
				buf_reset(&logical);
			}
			skipping = 1;
			continue;
		}
		e = q + plen;
		while (e > q && isspace((unsigned char)e[-1]))
			e--;		/* also the \r of a CRLF line */
		if (e == q)
			continue;	/* blank */
		if (!isspace((unsigned char)*q)) {
			/* a new logical line: finish the one before */
			if (*q == '#')
				continue;
			if (start_line != 0 && !skipping)
				map_parse_entry(&mp, logical.data, start_line);
			buf_reset(&logical);
			(void)buf_append(&logical, q, (size_t)(e - q));
			start_line = lineno;
			skipping = 0;
			continue;
		}
		while (q < e && isspace((unsigned char)*q))
			q++;
		if (*q == '#')
			continue;	/* comment inside a continued entry */
		if (skipping)
			continue;	/* the entry was already reported */
		if (start_line == 0) {
			(void)buf_printf(errs, "%s:%zu: continuation line "
			    "without a key before it\n", origin, lineno);
			mp.rc = -1;
			continue;
		}
		if (buf_putc(&logical, ' ') < 0 ||
		    buf_append(&logical, q, (size_t)(e - q)) < 0) {
			(void)buf_printf(errs, "%s:%zu: value too long (over "
			    "%zu bytes)\n", origin, start_line,
			    lim->value_max);
			mp.rc = -1;
			skipping = 1;
		}
	}
	if (start_line != 0 && !skipping && !mp.full)
		map_parse_entry(&mp, logical.data, start_line);
	buf_deinit(&logical);
	return mp.rc;
}
