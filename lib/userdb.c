/*
 * userdb - the user database and password checks (see userdb.h)
 *
 * file: databases are parsed whole into an array sorted by name and
 * reloaded when the file changes, like map_file.  ldap: databases use
 * the LDAP client of map_ldap: a search for the user, then a simple
 * bind as the user's DN on a second connection to check the password.
 * Hash checks go through libxcrypt (crypt_rn) and compare in constant
 * time; an unknown user in a file still costs one hash, so response
 * time does not tell which users exist.
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "file.h"
#include "log.h"
#include "map.h"
#include "map_private.h"
#include "mem.h"
#include "strnum.h"
#include "userdb.h"

#define USERDB_NAME_MAX		MAP_KEY_MAX
#define USERDB_QUOTA_MAX	(1LL << 60)
/* (uid_t)-1 means "none" to chown and setresuid */
#define USERDB_ID_MAX		4294967294ULL

struct userdb_ent {
	char	*name;
	char	*pass;
	char	*home;
	unsigned long long quota;
	long long uid, gid;
	size_t	 line;
};

struct userdb_tab {
	struct userdb_ent *ent;
	size_t	 n, cap;
};

struct userdb {
	char	*spec;
	char	*where;
	int	 is_ldap;
	/* file: */
	struct userdb_tab tab;
	struct file_stamp stamp;
	/* ldap: */
	struct map_ldap *ml;
};

/* ---- the passwd-like file --------------------------------------------- */

static void
userdb_tab_free(struct userdb_tab *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->ent[i].name);
		if (t->ent[i].pass != NULL) {
			explicit_bzero(t->ent[i].pass,
			    strlen(t->ent[i].pass));
			free(t->ent[i].pass);
		}
		free(t->ent[i].home);
	}
	free(t->ent);
	memset(t, 0, sizeof(*t));
}

static int
userdb_ent_cmp(const void *a, const void *b)
{
	const struct userdb_ent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int
userdb_ent_cmp_name(const void *a, const void *b)
{
	const struct userdb_ent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* userdb_id - an optional uid/gid field; 0 or -1 */
static int
userdb_id(const char *s, long long *id_r)
{
	unsigned long long v;

	if (*s == '\0') {
		*id_r = -1;
		return 0;
	}
	if (str_to_uint(s, 0, USERDB_ID_MAX, &v) < 0)
		return -1;
	*id_r = (long long)v;
	return 0;
}

/* userdb_extra - the extra fields "quota=1G home=/x"; NULL or why */
static const char *
userdb_extra(char *s, struct userdb_ent *e)
{
	char *item, *eq;
	long long q;

	while (*s != '\0') {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		item = s;
		s += strcspn(s, " \t");
		if (*s != '\0')
			*s++ = '\0';
		if ((eq = strchr(item, '=')) == NULL)
			return "extra field without '='";
		*eq++ = '\0';
		if (strcmp(item, "quota") == 0) {
			if (str_to_size(eq, 0, USERDB_QUOTA_MAX, &q) < 0)
				return "bad quota (bytes, or with k, m, g)";
			e->quota = (unsigned long long)q;
		} else if (strcmp(item, "home") == 0) {
			if (*eq != '/')
				return "home must be an absolute path";
			free(e->home);
			e->home = xstrdup(eq);
		} else
			return "unknown extra field (known: quota, home)";
	}
	return NULL;
}

/* userdb_parse_line - one "user:pass:uid:gid:gecos:home:shell:extra" */
static const char *
userdb_parse_line(char *line, struct userdb_ent *e)
{
	char *f[8];
	const char *why;
	size_t nf = 0, i;
	char *p = line;

	memset(e, 0, sizeof(*e));
	for (nf = 0; nf < 7; nf++) {
		f[nf] = p;
		if ((p = strchr(p, ':')) == NULL) {
			nf++;
			break;
		}
		*p++ = '\0';
	}
	if (p != NULL)
		f[nf++] = p;	/* extra: the rest, may hold ':' */
	if (nf < 2)
		return "expected user:password[:uid:gid:gecos:home:shell:"
		    "extra]";
	if (*f[0] == '\0')
		return "empty user name";
	if (strlen(f[0]) > USERDB_NAME_MAX)
		return "user name too long";
	for (i = 0; f[0][i] != '\0'; i++)
		if (isspace((unsigned char)f[0][i]) ||
		    (unsigned char)f[0][i] < 0x20)
			return "white space or control character in user "
			    "name";
	e->uid = e->gid = -1;
	if (nf > 2 && userdb_id(f[2], &e->uid) < 0)
		return "bad uid";
	if (nf > 3 && userdb_id(f[3], &e->gid) < 0)
		return "bad gid";
	if (nf > 5 && *f[5] != '\0') {
		if (*f[5] != '/')
			return "home must be an absolute path";
		e->home = xstrdup(f[5]);
	}
	if (nf > 7 && (why = userdb_extra(f[7], e)) != NULL) {
		xfree(&e->home);
		return why;
	}
	e->name = xstrdup(f[0]);
	map_lower(e->name);
	e->pass = xstrdup(f[1]);
	return NULL;
}

static int
userdb_file_parse(const char *text, size_t len, const char *origin,
    struct userdb_tab *t, struct buf *errs)
{
	const char *p = text, *end = text + len, *nl;
	struct userdb_ent e;
	size_t lineno = 0, plen, i;
	const char *why;
	char *line;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		plen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		line = NULL;
		why = NULL;
		if (plen > USERDB_LINE_MAX)
			why = "line too long";
		else if (memchr(p, '\0', plen) != NULL)
			why = "NUL byte in line";
		else {
			while (plen > 0 && isspace((unsigned char)p[plen - 1]))
				plen--;
			i = 0;
			while (i < plen && isspace((unsigned char)p[i]))
				i++;
			if (i < plen && p[i] != '#') {
				line = xstrndup(p + i, plen - i);
				if (t->n >= MAP_ENTRIES_MAX)
					why = "too many users";
				else if ((why = userdb_parse_line(line,
				    &e)) == NULL) {
					e.line = lineno;
					if (t->n == t->cap) {
						t->cap = t->cap ? t->cap * 2 :
						    32;
						t->ent = xreallocarray(t->ent,
						    t->cap, sizeof(*t->ent));
					}
					t->ent[t->n++] = e;
				}
				explicit_bzero(line, plen - i);
				free(line);
			}
		}
		if (why != NULL) {
			(void)buf_printf(errs, "%s:%zu: %s\n", origin, lineno,
			    why);
			rc = -1;
			if (t->n >= MAP_ENTRIES_MAX)
				break;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (t->n > 1)
		qsort(t->ent, t->n, sizeof(*t->ent), userdb_ent_cmp);
	for (i = 1; i < t->n; i++) {
		if (strcmp(t->ent[i - 1].name, t->ent[i].name) != 0)
			continue;
		(void)buf_printf(errs, "%s:%zu: duplicate user \"%.100s\" "
		    "(first at line %zu)\n", origin, t->ent[i].line,
		    t->ent[i].name, t->ent[i - 1].line);
		rc = -1;
	}
	if (rc < 0)
		userdb_tab_free(t);
	return rc;
}

static int
userdb_file_load(const char *path, struct userdb_tab *t, struct stat *st_r,
    struct buf *errs)
{
	struct buf text;
	int rc;

	memset(t, 0, sizeof(*t));
	buf_init(&text, 0);
	if (file_read_stable(path, MAP_FILE_MAX, &text, st_r, errs) < 0) {
		buf_deinit(&text);
		return -1;
	}
	rc = userdb_file_parse(buf_cstr(&text), buf_len(&text), path, t,
	    errs);
	if (text.data != NULL)
		explicit_bzero(text.data, text.len);
	buf_deinit(&text);
	return rc;
}

/* userdb_file_refresh - reload when changed; 0 or -1 (logged) */
static int
userdb_file_refresh(struct userdb *db)
{
	struct userdb_tab t;
	struct stat st;
	struct buf errs;
	int rc;

	if ((rc = file_stamp_check(&db->stamp, db->where, &st)) <= 0) {
		if (rc < 0 && errno != 0)
			log_err("userdb %s: %s", db->spec, strerror(errno));
		return rc;
	}
	buf_init(&errs, 16384);
	if (userdb_file_load(db->where, &t, &st, &errs) < 0) {
		log_err("userdb %s: %.*s", db->spec,
		    (int)strcspn(buf_cstr(&errs), "\n"), buf_cstr(&errs));
		buf_deinit(&errs);
		file_stamp_failed(&db->stamp, &st);
		return -1;
	}
	buf_deinit(&errs);
	userdb_tab_free(&db->tab);
	db->tab = t;
	if (file_stamp_loaded(&db->stamp, &st))
		log_info("userdb %s: loaded again, %zu users", db->spec, t.n);
	return 0;
}

/* userdb_file_find - the entry of user, NULL if none */
static const struct userdb_ent *
userdb_file_find(struct userdb *db, const char *user)
{
	char name[USERDB_NAME_MAX + 1];
	struct userdb_ent k;
	size_t n = strlen(user);

	if (n == 0 || n > USERDB_NAME_MAX || db->tab.n == 0)
		return NULL;
	memcpy(name, user, n + 1);
	map_lower(name);
	k.name = name;
	return bsearch(&k, db->tab.ent, db->tab.n, sizeof(*db->tab.ent),
	    userdb_ent_cmp_name);
}

/* ---- passwords ------------------------------------------------------ */

static const struct userdb_scheme {
	const char *name;
	const char *prefixes;	/* crypt prefixes allowed, '|'-separated */
	const char *gensalt;	/* crypt_gensalt prefix; NULL: best */
	unsigned long count;
} userdb_schemes[] = {
	{ "SHA512-CRYPT", "$6$", "$6$", 0 },
	{ "SHA256-CRYPT", "$5$", "$5$", 0 },
	{ "BLF-CRYPT", "$2y$|$2b$|$2a$", "$2y$", 10 },
	{ "CRYPT", "", NULL, 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct userdb_scheme *
userdb_scheme(const char *name, size_t n)
{
	const struct userdb_scheme *s;

	for (s = userdb_schemes; s->name != NULL; s++)
		if (strlen(s->name) == n && strncasecmp(s->name, name, n) == 0)
			return s;
	return NULL;
}

/* userdb_prefix_ok - does hash start with one of the '|' prefixes? */
static int
userdb_prefix_ok(const char *prefixes, const char *hash)
{
	const char *p = prefixes;
	size_t n;

	if (*p == '\0')
		return 1;
	for (; *p != '\0'; p += n + (p[n] == '|')) {
		n = strcspn(p, "|");
		if (strncmp(hash, p, n) == 0)
			return 1;
	}
	return 0;
}

/* userdb_crypt_verify - crypt(3) hash check; 1 or 0 */
static int
userdb_crypt_verify(const char *hash, const char *password, const char *user)
{
	struct crypt_data *cd;
	const char *out;
	size_t n;
	int ok = 0;

	if (*hash == '\0' || *hash == '*' || *hash == '!') {
		log_info("user=%s: password locked or not set", user);
		return 0;
	}
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
	if (out == NULL || *out == '*') {
		log_err("user=%s: stored password hash is not usable: %s",
		    user, strerror(errno));
	} else {
		n = strlen(out);
		ok = n == strlen(hash) && CRYPTO_memcmp(out, hash, n) == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* userdb_plain_verify - compare digests: constant time, any length */
static int
userdb_plain_verify(const char *stored, const char *password)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int na = 0, nb = 0;
	int ok;

	if (!EVP_Digest(stored, strlen(stored), a, &na, EVP_sha256(), NULL) ||
	    !EVP_Digest(password, strlen(password), b, &nb, EVP_sha256(),
	    NULL) || na != nb)
		log_fatal("SHA-256 failed");
	ok = CRYPTO_memcmp(a, b, na) == 0;
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
	return ok;
}

int
userdb_password_verify(const char *stored, const char *password,
    const char *user)
{
	const struct userdb_scheme *s;
	const char *end;
	size_t n;

	if (*password == '\0' || strlen(password) > USERDB_PASSWORD_MAX)
		return 0;
	if (*stored != '{')
		return userdb_crypt_verify(stored, password, user);
	if ((end = strchr(stored, '}')) == NULL) {
		log_err("user=%s: password scheme without '}'", user);
		return 0;
	}
	n = (size_t)(end - stored - 1);
	if ((n == 5 && strncasecmp(stored + 1, "PLAIN", 5) == 0) ||
	    (n == 9 && strncasecmp(stored + 1, "CLEARTEXT", 9) == 0))
		return userdb_plain_verify(end + 1, password);
	if ((s = userdb_scheme(stored + 1, n)) == NULL) {
		log_err("user=%s: unknown password scheme {%.*s}", user,
		    (int)(n > 32 ? 32 : n), stored + 1);
		return 0;
	}
	if (!userdb_prefix_ok(s->prefixes, end + 1)) {
		log_err("user=%s: hash does not match scheme {%s}", user,
		    s->name);
		return 0;
	}
	return userdb_crypt_verify(end + 1, password, user);
}

int
userdb_hash_password(const char *scheme, const char *password,
    struct buf *out)
{
	const struct userdb_scheme *s;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned char rnd[16];
	struct crypt_data *cd;
	const char *h;
	int rc = -1;

	if (*password == '\0' || strlen(password) > USERDB_PASSWORD_MAX)
		return -1;
	if (strcasecmp(scheme, "PLAIN") == 0) {
		if (strpbrk(password, ":\r\n") != NULL)
			return -1;
		return buf_printf(out, "{PLAIN}%s", password);
	}
	if ((s = userdb_scheme(scheme, strlen(scheme))) == NULL)
		return -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		log_fatal("RAND_bytes failed");
	if (crypt_gensalt_rn(s->gensalt, s->count, (const char *)rnd,
	    (int)sizeof(rnd), setting, (int)sizeof(setting)) == NULL)
		return -1;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, setting, cd, (int)sizeof(*cd));
	if (h != NULL && *h != '*')
		rc = buf_printf(out, "{%s}%s", s->name, h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* ---- the database ------------------------------------------------------- */

struct userdb *
userdb_open(const char *spec, struct buf *errs)
{
	struct userdb *db;
	const char *where;

	if (strncmp(spec, "file:", 5) == 0)
		where = spec + 5;
	else if (strncmp(spec, "ldap:", 5) == 0)
		where = spec + 5;
	else {
		(void)buf_printf(errs, "%.200s: user database must be "
		    "file:/path or ldap:/path\n", spec);
		return NULL;
	}
	if (*where != '/') {
		(void)buf_printf(errs, "%.200s: path must be absolute\n",
		    spec);
		return NULL;
	}
	db = xcalloc(1, sizeof(*db));
	db->spec = xstrdup(spec);
	db->where = xstrdup(where);
	db->is_ldap = spec[0] == 'l';
	if (db->is_ldap)
		db->ml = map_ldap_new(where, errs);
	if ((db->is_ldap && db->ml == NULL) || (!db->is_ldap &&
	    userdb_file_load(where, &db->tab, &db->stamp.st, errs) < 0)) {
		free(db->spec);
		free(db->where);
		free(db);
		return NULL;
	}
	return db;
}

void
userdb_close(struct userdb **dbp)
{
	struct userdb *db = *dbp;

	if (db == NULL)
		return;
	userdb_tab_free(&db->tab);
	map_ldap_free(&db->ml);
	free(db->spec);
	free(db->where);
	free(db);
	*dbp = NULL;
}

int
userdb_check(const char *spec, struct buf *errs)
{
	struct userdb *db;

	if ((db = userdb_open(spec, errs)) == NULL)
		return -1;
	userdb_close(&db);
	return 0;
}

void
userdb_user_free(struct userdb_user *u)
{
	xfree(&u->name);
	xfree(&u->home);
}

/* userdb_ldap_size - the first value as a size; 0 or -1 */
static int
userdb_ldap_size(struct berval **v, long long *q_r)
{
	char num[32];

	if (v[0] == NULL || v[0]->bv_len >= sizeof(num))
		return -1;
	memcpy(num, v[0]->bv_val, v[0]->bv_len);
	num[v[0]->bv_len] = '\0';
	return str_to_size(num, 0, USERDB_QUOTA_MAX, q_r);
}

/* userdb_ldap_lookup - search user; 1 with u_r/dn_r filled, 0, -1 */
static int
userdb_ldap_lookup(struct userdb *db, const char *user,
    struct userdb_user *u_r, char **dn_r)
{
	const char *qa = map_ldap_cfg(db->ml, "quota_attribute");
	const char *ha = map_ldap_cfg(db->ml, "home_attribute");
	char *attrs[3], *dn;
	struct berval **v;
	LDAPMessage *res, *e;
	LDAP *ld;
	long long q;
	size_t na = 0;
	int rc;

	if (u_r == NULL)
		attrs[na++] = (char *)(uintptr_t)LDAP_NO_ATTRS;
	else {
		if (*qa != '\0')
			attrs[na++] = (char *)(uintptr_t)qa;
		if (*ha != '\0')
			attrs[na++] = (char *)(uintptr_t)ha;
		if (na == 0)
			attrs[na++] = (char *)(uintptr_t)LDAP_NO_ATTRS;
	}
	attrs[na] = NULL;
	if ((rc = map_ldap_search(db->ml, user, attrs, &res)) <= 0)
		return rc;
	ld = map_ldap_handle(db->ml);
	if (ldap_count_entries(ld, res) != 1) {
		log_err("userdb %s: user=%s: %d entries match, expected one",
		    db->spec, user, ldap_count_entries(ld, res));
		ldap_msgfree(res);
		return -1;
	}
	e = ldap_first_entry(ld, res);
	if (dn_r != NULL) {
		if ((dn = ldap_get_dn(ld, e)) == NULL) {
			ldap_msgfree(res);
			return -1;
		}
		*dn_r = xstrdup(dn);
		ldap_memfree(dn);
	}
	rc = 1;
	if (u_r != NULL) {
		memset(u_r, 0, sizeof(*u_r));
		u_r->uid = u_r->gid = -1;
		u_r->name = xstrdup(user);
		map_lower(u_r->name);
		if (*qa != '\0' && (v = ldap_get_values_len(ld, e, qa)) !=
		    NULL) {
			if (userdb_ldap_size(v, &q) < 0) {
				log_err("userdb %s: user=%s: bad %s", db->spec,
				    user, qa);
				rc = -1;
			} else
				u_r->quota = (unsigned long long)q;
			ldap_value_free_len(v);
		}
		if (rc > 0 && *ha != '\0' &&
		    (v = ldap_get_values_len(ld, e, ha)) != NULL) {
			if (v[0] != NULL && v[0]->bv_len > 0 &&
			    v[0]->bv_val[0] == '/' && memchr(v[0]->bv_val,
			    '\0', v[0]->bv_len) == NULL)
				u_r->home = xstrndup(v[0]->bv_val,
				    v[0]->bv_len);
			else {
				log_err("userdb %s: user=%s: bad %s",
				    db->spec, user, ha);
				rc = -1;
			}
			ldap_value_free_len(v);
		}
		if (rc < 0)
			userdb_user_free(u_r);
	}
	ldap_msgfree(res);
	if (rc < 0 && dn_r != NULL)
		xfree(dn_r);
	return rc;
}

int
userdb_lookup(struct userdb *db, const char *user, struct userdb_user *u_r,
    struct reply *r)
{
	const struct userdb_ent *e;
	int rc;

	memset(u_r, 0, sizeof(*u_r));
	u_r->uid = u_r->gid = -1;
	if (db->is_ldap)
		rc = userdb_ldap_lookup(db, user, u_r, NULL);
	else if (userdb_file_refresh(db) < 0)
		rc = -1;
	else if ((e = userdb_file_find(db, user)) == NULL)
		rc = 0;
	else {
		u_r->name = xstrdup(e->name);
		u_r->home = e->home != NULL ? xstrdup(e->home) : NULL;
		u_r->quota = e->quota;
		u_r->uid = e->uid;
		u_r->gid = e->gid;
		rc = 1;
	}
	if (rc < 0)
		reply_set(r, 451, "4.3.0", "Temporary lookup failure");
	return rc;
}

int
userdb_auth(struct userdb *db, const char *user, const char *password,
    struct reply *r)
{
	const struct userdb_ent *e;
	char *dn = NULL;
	int rc;

	if (*password == '\0' || strlen(password) > USERDB_PASSWORD_MAX) {
		rc = 0;		/* before any lookup: never bind empty */
	} else if (db->is_ldap) {
		rc = userdb_ldap_lookup(db, user, NULL, &dn);
		if (rc > 0)
			rc = map_ldap_user_bind(db->ml, dn, password);
		free(dn);
	} else if (userdb_file_refresh(db) < 0) {
		rc = -1;
	} else if ((e = userdb_file_find(db, user)) == NULL) {
		/* spend the time of a hash check anyway */
		(void)userdb_crypt_verify("$6$posta.nouser$", password, "-");
		rc = 0;
	} else if (e->pass[0] == '\0') {
		rc = 0;
	} else
		rc = userdb_password_verify(e->pass, password, e->name);
	if (rc < 0)
		reply_set(r, 454, "4.7.0", "Temporary authentication failure");
	else if (rc == 0)
		reply_set(r, 535, "5.7.8", "Authentication credentials "
		    "invalid");
	return rc;
}
