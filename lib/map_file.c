/*
 * map_file - "file:/path" text tables held in memory (see map.h)
 *
 * The whole file is parsed into an array sorted by key and searched with
 * bsearch().  Every lookup stat()s the file (one system call) and, when
 * its identity changed, parses it again; a table that fails to load
 * makes lookups fail temporarily until the file changes again, and the
 * errors are logged once per change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "log.h"
#include "map.h"
#include "map_private.h"
#include "mem.h"

struct map_file_ent {
	char	*key;
	char	*value;
	size_t	 line;
};

struct map_file_tab {
	struct map_file_ent *ent;
	size_t	 n, cap;
};

struct map_file {
	struct map_file_tab tab;
	struct file_stamp stamp; /* what tab holds, or what failed */
};

static int
map_file_add(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	struct map_file_tab *t = arg;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->ent = xreallocarray(t->ent, t->cap, sizeof(*t->ent));
	}
	t->ent[t->n].key = xstrdup(key);
	t->ent[t->n].value = xstrdup(value);
	t->ent[t->n].line = line;
	t->n++;
	return 0;
}

static int
map_file_cmp(const void *a, const void *b)
{
	const struct map_file_ent *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int
map_file_cmp_key(const void *a, const void *b)
{
	const struct map_file_ent *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static void
map_file_tab_free(struct map_file_tab *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->ent[i].key);
		free(t->ent[i].value);
	}
	free(t->ent);
	memset(t, 0, sizeof(*t));
}

/* map_file_load - parse path into t; 0, or -1 with messages in errs */
static int
map_file_load(const char *path, struct map_file_tab *t, struct stat *st_r,
    struct buf *errs)
{
	struct buf text;
	size_t i;
	int rc;

	memset(t, 0, sizeof(*t));
	buf_init(&text, 0);
	if (file_read_stable(path, MAP_FILE_MAX, &text, st_r, errs) < 0) {
		buf_deinit(&text);
		return -1;
	}
	rc = map_text_parse(buf_cstr(&text), buf_len(&text), path,
	    &map_text_limits_default, map_file_add, t, errs);
	buf_deinit(&text);
	if (t->n > 1)
		qsort(t->ent, t->n, sizeof(*t->ent), map_file_cmp);
	for (i = 1; i < t->n; i++) {
		if (strcmp(t->ent[i - 1].key, t->ent[i].key) != 0)
			continue;
		(void)buf_printf(errs, "%s:%zu: duplicate key \"%.100s\" "
		    "(first at line %zu)\n", path, t->ent[i].line,
		    t->ent[i].key, t->ent[i - 1].line);
		rc = -1;
	}
	if (rc < 0)
		map_file_tab_free(t);
	return rc;
}

static int
map_file_open(struct map *m, struct buf *errs)
{
	struct map_file *f = xcalloc(1, sizeof(*f));

	if (map_file_load(m->where, &f->tab, &f->stamp.st, errs) < 0) {
		free(f);
		return -1;
	}
	m->priv = f;
	return 0;
}

/* map_file_log_errors - log each line of errs (a failed reload) */
static void
map_file_log_errors(const char *spec, struct buf *errs)
{
	const char *p = buf_cstr(errs), *nl;
	int n = 0;

	while (*p != '\0' && n++ < 20) {
		nl = strchr(p, '\n');
		log_err("table %s: %.*s", spec,
		    (int)(nl != NULL ? nl - p : (long)strlen(p)), p);
		p = nl != NULL ? nl + 1 : p + strlen(p);
	}
}

/* map_file_refresh - reload when the file changed; 0 or -1 (logged) */
static int
map_file_refresh(struct map *m)
{
	struct map_file *f = m->priv;
	struct map_file_tab t;
	struct stat st;
	struct buf errs;
	int rc;

	if ((rc = file_stamp_check(&f->stamp, m->where, &st)) <= 0) {
		if (rc < 0 && errno != 0)
			log_err("table %s: %s", m->spec, strerror(errno));
		return rc;
	}
	buf_init(&errs, 16384);
	if (map_file_load(m->where, &t, &st, &errs) < 0) {
		map_file_log_errors(m->spec, &errs);
		buf_deinit(&errs);
		file_stamp_failed(&f->stamp, &st);
		return -1;
	}
	buf_deinit(&errs);
	map_file_tab_free(&f->tab);
	f->tab = t;
	if (file_stamp_loaded(&f->stamp, &st))
		log_info("table %s: loaded again, %zu entries", m->spec,
		    t.n);
	return 0;
}

static int
map_file_lookup(struct map *m, const char *key, char **value_r)
{
	struct map_file *f = m->priv;
	struct map_file_ent k, *e;
	char lkey[MAP_KEY_MAX + 1];
	size_t n = strlen(key);

	if (map_file_refresh(m) < 0)
		return -1;
	if (n == 0 || n > MAP_KEY_MAX)
		return 0;
	memcpy(lkey, key, n + 1);
	map_lower(lkey);
	k.key = lkey;
	e = f->tab.n == 0 ? NULL : bsearch(&k, f->tab.ent, f->tab.n,
	    sizeof(*f->tab.ent), map_file_cmp_key);
	if (e == NULL)
		return 0;
	*value_r = xstrdup(e->value);
	return 1;
}

static void
map_file_close(struct map *m)
{
	struct map_file *f = m->priv;

	if (f == NULL)
		return;
	map_file_tab_free(&f->tab);
	free(f);
	m->priv = NULL;
}

static int
map_file_check(const char *where, struct buf *errs)
{
	struct map_file_tab t;
	struct stat st;

	if (map_file_load(where, &t, &st, errs) < 0)
		return -1;
	map_file_tab_free(&t);
	return 0;
}

const struct map_ops map_file_ops = {
	"file",
	map_file_open,
	map_file_lookup,
	map_file_close,
	map_file_check,
};
