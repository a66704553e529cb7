/*
 * cfg - configuration files (see cfg.h)
 *
 * A cfg is an array of entries, one per definition in scope, each holding
 * its current raw value, where it came from, and a cache of the expanded
 * string.  Files are read whole (bounded), split into physical lines,
 * joined into logical lines, and each "name = value" goes through
 * cfg_set(), the one place where values are checked.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "strnum.h"

struct cfg_entry {
	const struct cfg_def *def;
	char	*value;		/* raw, as set; NULL = default */
	char	*origin;	/* "file:line", NULL = default */
	char	*expanded;	/* cache for cfg_str() */
	long long num;		/* parsed INT TIME SIZE BOOL */
};

struct cfg {
	struct cfg_entry *ent;
	size_t	 n;
};

static int cfg_check(const struct cfg_def *, const char *, long long *,
	    struct buf *, const char *);

const struct cfg_def *
cfg_def_lookup(const struct cfg_def *defs, const char *name)
{
	for (; defs->name != NULL; defs++)
		if (strcmp(defs->name, name) == 0)
			return defs;
	return NULL;
}

static struct cfg_entry *
cfg_entry(const struct cfg *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->ent[i].def->name, name) == 0)
			return &c->ent[i];
	return NULL;
}

struct cfg *
cfg_new(const struct cfg_def *defs, unsigned mask)
{
	struct cfg *c = xcalloc(1, sizeof(*c));
	const struct cfg_def *d;
	struct buf err;

	buf_init(&err, 4096);
	for (d = defs; d->name != NULL; d++)
		if (d->scope & mask)
			c->n++;
	c->ent = xcalloc(c->n, sizeof(*c->ent));
	c->n = 0;
	for (d = defs; d->name != NULL; d++) {
		if (!(d->scope & mask))
			continue;
		c->ent[c->n].def = d;
		if (cfg_check(d, d->def, &c->ent[c->n].num, &err,
		    "default") < 0)
			log_panic("bad default: %s", buf_cstr(&err));
		c->n++;
	}
	buf_deinit(&err);
	return c;
}

void
cfg_free(struct cfg **cp)
{
	struct cfg *c = *cp;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->ent[i].value);
		free(c->ent[i].origin);
		free(c->ent[i].expanded);
	}
	free(c->ent);
	free(c);
	*cp = NULL;
}

int
cfg_is_defined(const struct cfg *c, const char *name)
{
	return cfg_entry(c, name) != NULL;
}

/* cfg_check - is value good for d?  Numbers are stored in *num_r. */
static int
cfg_check(const struct cfg_def *d, const char *value, long long *num_r,
    struct buf *errs, const char *origin)
{
	const char *what = NULL, *p;
	long long v = 0;
	bool b = false;
	size_t len;
	char item[256];

	switch (d->type) {
	case CFG_STR:
		return 0;
	case CFG_INT:
		if (str_to_int(value, d->min, d->max, &v) < 0)
			what = "an integer";
		break;
	case CFG_TIME:
		if (str_to_time(value, d->min, d->max, &v) < 0)
			what = "a time (seconds, or with unit s, m, h, d, w)";
		break;
	case CFG_SIZE:
		if (str_to_size(value, d->min, d->max, &v) < 0)
			what = "a size (bytes, or with unit k, m, g)";
		break;
	case CFG_BOOL:
		if (str_to_bool(value, &b) < 0)
			what = "yes or no";
		v = b;
		break;
	case CFG_ENUM:
		len = strlen(value);
		for (p = d->choices; *p != '\0'; p += strcspn(p, "|"),
		    p += *p == '|') {
			if (strcspn(p, "|") == len &&
			    strncmp(p, value, len) == 0 && len > 0)
				break;
		}
		if (*p == '\0') {
			(void)snprintf(item, sizeof(item), "one of %s",
			    d->choices);
			for (char *q = item; *q != '\0'; q++)
				if (*q == '|')
					*q = ',';
			(void)buf_printf(errs, "%s: bad value \"%.100s\" "
			    "for %s: expected %s\n", origin, value, d->name,
			    item);
			return -1;
		}
		return 0;
	}
	if (what != NULL) {
		if (d->type != CFG_BOOL)
			(void)buf_printf(errs, "%s: bad value \"%.100s\" for "
			    "%s: expected %s in range %lld..%lld\n", origin,
			    value, d->name, what, d->min, d->max);
		else
			(void)buf_printf(errs, "%s: bad value \"%.100s\" for "
			    "%s: expected %s\n", origin, value, d->name, what);
		return -1;
	}
	*num_r = v;
	return 0;
}

int
cfg_set(struct cfg *c, const char *name, const char *value,
    const char *origin, struct buf *errs)
{
	struct cfg_entry *e = cfg_entry(c, name);
	long long num = 0;
	size_t i;

	if (e == NULL) {
		(void)buf_printf(errs, "%s: unknown setting \"%.100s\"\n",
		    origin, name);
		return -1;
	}
	if (strlen(value) > CFG_VALUE_MAX) {
		(void)buf_printf(errs, "%s: value of %s is too long\n",
		    origin, name);
		return -1;
	}
	if (cfg_check(e->def, value, &num, errs, origin) < 0)
		return -1;
	free(e->value);
	free(e->origin);
	e->value = xstrdup(value);
	e->origin = xstrdup(origin);
	e->num = num;
	/* any string may refer to this one: drop every expansion */
	for (i = 0; i < c->n; i++)
		xfree(&c->ent[i].expanded);
	return 0;
}

int
cfg_set_assignment(struct cfg *c, const char *assignment, const char *origin,
    struct buf *errs)
{
	const char *eq = strchr(assignment, '=');
	char name[128];
	size_t n;

	if (eq == NULL || eq == assignment) {
		(void)buf_printf(errs, "%s: expected name=value, got "
		    "\"%.100s\"\n", origin, assignment);
		return -1;
	}
	n = (size_t)(eq - assignment);
	while (n > 0 && isspace((unsigned char)assignment[n - 1]))
		n--;
	if (n >= sizeof(name)) {
		(void)buf_printf(errs, "%s: setting name too long\n", origin);
		return -1;
	}
	memcpy(name, assignment, n);
	name[n] = '\0';
	eq++;
	while (isspace((unsigned char)*eq))
		eq++;
	return cfg_set(c, name, eq, origin, errs);
}

static int
cfg_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= 128)
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

/* cfg_logical - handle one joined "name = value" line */
static int
cfg_logical(struct cfg *c, char *line, const char *file, size_t lineno,
    unsigned allowed, struct buf *errs)
{
	char origin[512], *eq, *val, *end;
	struct cfg_entry *e;
	size_t n;

	(void)snprintf(origin, sizeof(origin), "%s:%zu", file, lineno);
	if ((eq = strchr(line, '=')) == NULL) {
		(void)buf_printf(errs, "%s: missing '=' in \"%.60s\"\n",
		    origin, line);
		return -1;
	}
	n = (size_t)(eq - line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (!cfg_name_ok(line, n)) {
		(void)buf_printf(errs, "%s: bad setting name \"%.*s\"\n",
		    origin, (int)(n > 60 ? 60 : n), line);
		return -1;
	}
	line[n] = '\0';
	val = eq + 1;
	while (isspace((unsigned char)*val))
		val++;
	end = val + strlen(val);
	while (end > val && isspace((unsigned char)end[-1]))
		*--end = '\0';
	e = cfg_entry(c, line);
	if (e != NULL && !(e->def->scope & allowed)) {
		(void)buf_printf(errs, "%s: setting \"%s\" does not belong "
		    "in this file\n", origin, line);
		return -1;
	}
	return cfg_set(c, line, val, origin, errs);
}

int
cfg_parse(struct cfg *c, const char *text, size_t len, const char *origin,
    unsigned allowed, struct buf *errs)
{
	struct buf logical;
	const char *p = text, *end = text + len, *nl, *q;
	size_t lineno = 0, start_line = 0, plen;
	int rc = 0, bad_line;

	buf_init(&logical, CFG_VALUE_MAX + 256);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		plen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		bad_line = 0;
		if (plen > CFG_LINE_MAX) {
			(void)buf_printf(errs, "%s:%zu: line too long (over "
			    "%d bytes)\n", origin, lineno, CFG_LINE_MAX);
			rc = -1;
			bad_line = 1;
		} else if (memchr(p, '\0', plen) != NULL) {
			(void)buf_printf(errs, "%s:%zu: NUL byte in line\n",
			    origin, lineno);
			rc = -1;
			bad_line = 1;
		}
		if (plen > 0 && p[plen - 1] == '\r')
			plen--;
		for (q = p; q < p + plen && isspace((unsigned char)*q); q++)
			;
		if (bad_line || q == p + plen || *q == '#') {
			/* blank, comment or already reported */
		} else if (q != p) {
			/* continuation of the logical line */
			if (start_line == 0) {
				(void)buf_printf(errs, "%s:%zu: continuation "
				    "line without a setting before it\n",
				    origin, lineno);
				rc = -1;
			} else if (buf_putc(&logical, ' ') < 0 ||
			    buf_append(&logical, q, (size_t)(p + plen - q)) <
			    0) {
				(void)buf_printf(errs, "%s:%zu: setting too "
				    "long\n", origin, start_line);
				rc = -1;
				start_line = 0;
				buf_reset(&logical);
			}
		} else {
			if (start_line != 0 && cfg_logical(c,
			    logical.data, origin, start_line, allowed,
			    errs) < 0)
				rc = -1;
			buf_reset(&logical);
			(void)buf_append(&logical, p, plen);
			start_line = lineno;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (start_line != 0 && cfg_logical(c, logical.data, origin,
	    start_line, allowed, errs) < 0)
		rc = -1;
	buf_deinit(&logical);
	return rc;
}

int
cfg_load_file(struct cfg *c, const char *path, unsigned allowed,
    bool is_optional, struct buf *errs)
{
	struct buf text;
	int rc;

	buf_init(&text, CFG_FILE_MAX);
	if ((rc = file_read_all(path, CFG_FILE_MAX,
	    is_optional ? FILE_MISSING_OK : 0, &text, errs)) > 0)
		rc = cfg_parse(c, buf_cstr(&text), text.len, path, allowed,
		    errs);
	buf_deinit(&text);
	return rc;
}

static const char *
cfg_raw(const struct cfg_entry *e)
{
	return e->value != NULL ? e->value : e->def->def;
}

/* cfg_expand - append s to out with $name and ${name} replaced */
static void
cfg_expand(struct cfg *c, const char *s, struct buf *out, int depth)
{
	struct cfg_entry *e;
	const char *p, *nend;
	char name[128];
	size_t n;

	/* stop when out is (nearly) full: "$a$a$a..." grows as refs^depth */
	for (p = s; *p != '\0' && buf_len(out) + sizeof(name) + 3 < out->max;
	    p++) {
		if (*p != '$') {
			(void)buf_putc(out, *p);
			continue;
		}
		if (p[1] == '$') {
			(void)buf_putc(out, '$');
			p++;
			continue;
		}
		if (p[1] == '{') {
			nend = strchr(p + 2, '}');
			n = nend != NULL ? (size_t)(nend - p - 2) : 0;
			if (nend == NULL || !cfg_name_ok(p + 2, n)) {
				(void)buf_putc(out, *p);
				continue;
			}
			memcpy(name, p + 2, n);
			p = nend;
		} else {
			for (n = 0; cfg_name_ok(p + 1, n + 1); n++)
				;
			if (n == 0) {
				(void)buf_putc(out, *p);
				continue;
			}
			memcpy(name, p + 1, n);
			p += n;
		}
		name[n] = '\0';
		e = cfg_entry(c, name);
		if (e == NULL || depth >= CFG_EXPAND_DEPTH) {
			/* unknown stays as written: the admin sees it */
			(void)buf_printf(out, "${%s}", name);
			continue;
		}
		cfg_expand(c, cfg_raw(e), out, depth + 1);
	}
}

static struct cfg_entry *
cfg_get(const struct cfg *c, const char *name, int want)
{
	struct cfg_entry *e = cfg_entry(c, name);

	if (e == NULL)
		log_panic("cfg: no setting \"%s\"", name);
	if (want >= 0 && (int)e->def->type != want &&
	    !(want == CFG_INT && (e->def->type == CFG_TIME ||
	    e->def->type == CFG_SIZE)))
		log_panic("cfg: setting \"%s\" has another type", name);
	return e;
}

const char *
cfg_str(struct cfg *c, const char *name)
{
	struct cfg_entry *e = cfg_get(c, name, -1);
	struct buf out;

	if (e->def->type != CFG_STR)
		return cfg_raw(e);
	if (strchr(cfg_raw(e), '$') == NULL)
		return cfg_raw(e);
	if (e->expanded == NULL) {
		buf_init(&out, CFG_VALUE_MAX * 4);
		cfg_expand(c, cfg_raw(e), &out, 0);
		e->expanded = buf_steal(&out);
	}
	return e->expanded;
}

long long
cfg_int(struct cfg *c, const char *name)
{
	return cfg_get(c, name, CFG_INT)->num;
}

bool
cfg_bool(struct cfg *c, const char *name)
{
	return cfg_get(c, name, CFG_BOOL)->num != 0;
}

const char *
cfg_origin(const struct cfg *c, const char *name)
{
	return cfg_get(c, name, -1)->origin;
}

void
cfg_dump(const struct cfg *c, FILE *fp, bool only_changed)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (only_changed && (c->ent[i].value == NULL ||
		    strcmp(c->ent[i].value, c->ent[i].def->def) == 0))
			continue;
		fprintf(fp, "%s = %s\n", c->ent[i].def->name,
		    cfg_raw(&c->ent[i]));
	}
}

int
cfg_list_next(const char **pos, char *item, size_t itemsz)
{
	const char *p = *pos;
	size_t n;

	while (*p == ',' || isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		*pos = p;
		return 0;
	}
	n = strcspn(p, ", \t\r\n");
	if (n >= itemsz)
		return -1;
	memcpy(item, p, n);
	item[n] = '\0';
	*pos = p + n;
	return 1;
}
