/*
 * map_bdb - "bdb:/path" Berkeley DB 5.3 hash tables (see map.h)
 *
 * The table is /path.db, built from the text table /path by
 * map_bdb_build().  Keys are stored in lower case without a NUL, values
 * without a NUL.  A lookup that misses retries with a trailing NUL on
 * the key, as Postfix's postmap stores them, so a hash:.db made by
 * Postfix is read too.
 *
 * Readers open the file DB_RDONLY without an environment: that is safe
 * because nobody writes the file in place; a build writes a new file and
 * rename()s it over the old one (deps.md section 6).  Each lookup
 * stat()s the .db and reopens it when it was replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <db.h>

#include "file.h"
#include "log.h"
#include "map.h"
#include "map_private.h"
#include "mem.h"

struct map_bdb {
	DB	*db;
	char	*dbpath;
	struct file_stamp stamp; /* the open file, or the failed one */
};

/* map_bdb_errcall - Berkeley DB's own messages: detail for the log */
static void
map_bdb_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	log_debug("berkeley db: %s", msg);
}

/* map_bdb_dbopen - open path read-only; 0, or -1 with errs */
static int
map_bdb_dbopen(const char *path, DB **db_r, struct stat *st_r,
    struct buf *errs)
{
	DB *db;
	int rc;

	if (stat(path, st_r) < 0) {
		(void)buf_printf(errs, "%s: %s%s\n", path, strerror(errno),
		    errno == ENOENT ? " (build it with: posta map build "
		    "SOURCE)" : "");
		return -1;
	}
	if ((rc = db_create(&db, NULL, 0)) != 0) {
		(void)buf_printf(errs, "%s: %s\n", path, db_strerror(rc));
		return -1;
	}
	db->set_errcall(db, map_bdb_errcall);
	if ((rc = db->open(db, NULL, path, NULL, DB_HASH, DB_RDONLY, 0)) !=
	    0) {
		(void)buf_printf(errs, "%s: cannot open as a Berkeley DB hash "
		    "file: %s\n", path, db_strerror(rc));
		(void)db->close(db, 0);
		return -1;
	}
	*db_r = db;
	return 0;
}

static char *
map_bdb_dbpath(const char *where)
{
	size_t n = strlen(where) + 4;
	char *p = xmalloc(n);

	(void)snprintf(p, n, "%s.db", where);
	return p;
}

static int
map_bdb_open(struct map *m, struct buf *errs)
{
	struct map_bdb *b = xcalloc(1, sizeof(*b));

	b->dbpath = map_bdb_dbpath(m->where);
	if (map_bdb_dbopen(b->dbpath, &b->db, &b->stamp.st, errs) < 0) {
		free(b->dbpath);
		free(b);
		return -1;
	}
	m->priv = b;
	return 0;
}

/* map_bdb_refresh - reopen when the .db was replaced; 0 or -1 (logged) */
static int
map_bdb_refresh(struct map *m)
{
	struct map_bdb *b = m->priv;
	struct stat st;
	struct buf errs;
	DB *db;
	int rc;

	if ((rc = file_stamp_check(&b->stamp, b->dbpath, &st)) <= 0) {
		if (rc < 0 && errno != 0)
			log_err("table %s: %s: %s", m->spec, b->dbpath,
			    strerror(errno));
		return rc;
	}
	buf_init(&errs, 4096);
	if (map_bdb_dbopen(b->dbpath, &db, &st, &errs) < 0) {
		log_err("table %s: %.*s", m->spec,
		    (int)strcspn(buf_cstr(&errs), "\n"), buf_cstr(&errs));
		buf_deinit(&errs);
		file_stamp_failed(&b->stamp, &st);
		return -1;
	}
	buf_deinit(&errs);
	if (b->db != NULL)
		(void)b->db->close(b->db, 0);
	b->db = db;
	if (file_stamp_loaded(&b->stamp, &st))
		log_info("table %s: opened again", m->spec);
	return 0;
}

static int
map_bdb_lookup(struct map *m, const char *key, char **value_r)
{
	struct map_bdb *b = m->priv;
	char lkey[MAP_KEY_MAX + 2];
	size_t n = strlen(key);
	DBT k, v;
	int rc, try;

	if (map_bdb_refresh(m) < 0)
		return -1;
	if (n == 0 || n > MAP_KEY_MAX)
		return 0;
	memcpy(lkey, key, n + 1);
	map_lower(lkey);
	for (try = 0; try < 2; try++) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = lkey;
		/* the second try includes the NUL */
		k.size = (u_int32_t)(n + (size_t)try);
		v.flags = DB_DBT_MALLOC;
		rc = b->db->get(b->db, NULL, &k, &v, 0);
		if (rc == DB_NOTFOUND)
			continue;
		if (rc != 0) {
			log_err("table %s: lookup: %s", m->spec,
			    db_strerror(rc));
			/* reopen at the next lookup */
			file_stamp_forget(&b->stamp);
			return -1;
		}
		*value_r = xstrndup(v.data, v.size);
		free(v.data);
		return 1;
	}
	return 0;
}

static void
map_bdb_close(struct map *m)
{
	struct map_bdb *b = m->priv;

	if (b == NULL)
		return;
	if (b->db != NULL)
		(void)b->db->close(b->db, 0);
	free(b->dbpath);
	free(b);
	m->priv = NULL;
}

static int
map_bdb_nocheck(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	return 0;
}

static int
map_bdb_check(const char *where, struct buf *errs)
{
	char *dbpath = map_bdb_dbpath(where);
	struct stat src_st, db_st;
	struct buf text;
	DB *db;
	int rc = 0;

	if (map_bdb_dbopen(dbpath, &db, &db_st, errs) < 0) {
		free(dbpath);
		return -1;
	}
	(void)db->close(db, 0);
	/* the source is optional (a site may ship only the .db) */
	if (stat(where, &src_st) == 0) {
		if (src_st.st_mtim.tv_sec > db_st.st_mtim.tv_sec ||
		    (src_st.st_mtim.tv_sec == db_st.st_mtim.tv_sec &&
		    src_st.st_mtim.tv_nsec > db_st.st_mtim.tv_nsec)) {
			(void)buf_printf(errs, "%s: older than its source %s "
			    "(run: posta map build %s)\n", dbpath, where,
			    where);
			rc = -1;
		}
		buf_init(&text, 0);
		if (file_read_stable(where, MAP_FILE_MAX, &text, &src_st,
		    errs) < 0 || map_text_parse(buf_cstr(&text),
		    buf_len(&text), where, &map_text_limits_default,
		    map_bdb_nocheck, NULL, errs) < 0)
			rc = -1;
		buf_deinit(&text);
	}
	free(dbpath);
	return rc;
}

const struct map_ops map_bdb_ops = {
	"bdb",
	map_bdb_open,
	map_bdb_lookup,
	map_bdb_close,
	map_bdb_check,
};

/* ---- posta map build ------------------------------------------------- */

struct map_bdb_build_ctx {
	DB	*db;
	int	 db_rc;
};

static int
map_bdb_put(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	struct map_bdb_build_ctx *c = arg;
	DBT k, v;
	int rc;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)strlen(key);
	v.data = (void *)(uintptr_t)value;
	v.size = (u_int32_t)strlen(value);
	rc = c->db->put(c->db, NULL, &k, &v, DB_NOOVERWRITE);
	if (rc == DB_KEYEXIST) {
		*why_r = "duplicate key";
		return -1;
	}
	if (rc != 0) {
		c->db_rc = rc;
		*why_r = "cannot store key";
		return -1;
	}
	return 0;
}

/* map_bdb_fsync_path - fsync a file or directory by name; 0 or -1 */
static int
map_bdb_fsync_path(const char *path, int flags)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | flags)) < 0)
		return -1;
	rc = fsync(fd);
	(void)close(fd);
	return rc;
}

int
map_bdb_build(const char *src, struct buf *errs)
{
	struct map_bdb_build_ctx c;
	struct stat st;
	struct buf text;
	char *dbpath, tmp[4200], dir[4200];
	int rc;

	if (strlen(src) >= 4096 || *src == '\0') {
		(void)buf_printf(errs, "%.100s: bad table path\n", src);
		return -1;
	}
	dbpath = map_bdb_dbpath(src);
	(void)snprintf(tmp, sizeof(tmp), "%s.db.tmp.%ld", src,
	    (long)getpid());
	buf_init(&text, 0);
	memset(&c, 0, sizeof(c));
	if (file_read_stable(src, MAP_FILE_MAX, &text, &st, errs) < 0)
		goto fail;
	if (unlink(tmp) < 0 && errno != ENOENT) {
		(void)buf_printf(errs, "%s: %s\n", tmp, strerror(errno));
		goto fail;
	}
	if ((rc = db_create(&c.db, NULL, 0)) != 0) {
		(void)buf_printf(errs, "%s: %s\n", tmp, db_strerror(rc));
		c.db = NULL;
		goto fail;
	}
	c.db->set_errcall(c.db, map_bdb_errcall);
	if ((rc = c.db->open(c.db, NULL, tmp, NULL, DB_HASH,
	    DB_CREATE | DB_EXCL, 0600)) != 0) {
		(void)buf_printf(errs, "%s: %s\n", tmp, db_strerror(rc));
		goto fail_unlink;
	}
	if (map_text_parse(buf_cstr(&text), buf_len(&text), src,
	    &map_text_limits_default, map_bdb_put, &c, errs) < 0) {
		if (c.db_rc != 0)
			(void)buf_printf(errs, "%s: %s\n", tmp,
			    db_strerror(c.db_rc));
		goto fail_unlink;
	}
	rc = c.db->close(c.db, 0);	/* also flushes the pages */
	c.db = NULL;
	if (rc != 0) {
		(void)buf_printf(errs, "%s: %s\n", tmp, db_strerror(rc));
		goto fail_unlink;
	}
	/* the table is as secret as its source, and owned like it */
	if (geteuid() == 0 && chown(tmp, st.st_uid, st.st_gid) < 0) {
		(void)buf_printf(errs, "%s: chown: %s\n", tmp,
		    strerror(errno));
		goto fail_unlink;
	}
	if (chmod(tmp, st.st_mode & 0666) < 0 ||
	    map_bdb_fsync_path(tmp, 0) < 0 || rename(tmp, dbpath) < 0) {
		(void)buf_printf(errs, "%s: %s\n", tmp, strerror(errno));
		goto fail_unlink;
	}
	/* fsync the directory: rename alone is not durable */
	(void)snprintf(dir, sizeof(dir), "%s", src);
	if (map_bdb_fsync_path(dirname(dir), O_DIRECTORY) < 0) {
		(void)buf_printf(errs, "%s: fsync: %s\n", dir,
		    strerror(errno));
		goto fail;
	}
	buf_deinit(&text);
	free(dbpath);
	return 0;

fail_unlink:
	if (c.db != NULL)
		(void)c.db->close(c.db, 0);
	(void)unlink(tmp);
fail:
	buf_deinit(&text);
	free(dbpath);
	return -1;
}
