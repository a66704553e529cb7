/*
 * map_ldap - "ldap:/path/ldap-x.conf" tables over OpenLDAP (see map.h)
 *
 * The config file uses the cfg syntax ("name = value"); its settings and
 * defaults are in map_ldap_defs below and in man/posta-tables.5.  The
 * key goes into query_filter through ldap_bv2escaped_filter_value()
 * (RFC 4515), so "*)(uid=*" is a literal string that matches nothing.
 *
 * One connection per table is opened at the first lookup and kept.  A
 * lookup that finds it dead (the server restarted) opens a new one and
 * tries once more; a timeout drops the connection and is a temporary
 * failure.  User passwords (userdb) are checked by a simple bind as the
 * user on a second connection, so the search connection keeps its
 * identity.  Calls block for at most "timeout" seconds each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <lber.h>
#include <ldap.h>

#include "cfg.h"
#include "log.h"
#include "map.h"
#include "map_private.h"
#include "mem.h"

#define ML_SCOPE	0x1
#define ML_FILTER_MAX	1024	/* bytes of query_filter as written */
#define ML_ATTRS_MAX	32
#define ML_ATTR_LEN	128

static const struct cfg_def map_ldap_defs[] = {
	{ "server_host", CFG_STR, "ldap://localhost/", 0, 0, NULL, ML_SCOPE,
	    "LDAP URIs, separated by spaces or commas, tried in order" },
	{ "search_base", CFG_STR, "", 0, 0, NULL, ML_SCOPE,
	    "base DN of the search (required)" },
	{ "scope", CFG_ENUM, "sub", 0, 0, "sub|one|base", ML_SCOPE,
	    "search scope" },
	{ "query_filter", CFG_STR, "(mail=%s)", 0, 0, NULL, ML_SCOPE,
	    "filter; %s key, %u local part, %d domain, %% a percent sign" },
	{ "result_attribute", CFG_STR, "mail", 0, 0, NULL, ML_SCOPE,
	    "attributes whose values are the result, comma separated" },
	{ "bind", CFG_BOOL, "no", 0, 0, NULL, ML_SCOPE,
	    "bind with bind_dn and bind_pw (no: anonymous)" },
	{ "bind_dn", CFG_STR, "", 0, 0, NULL, ML_SCOPE,
	    "DN to bind as when bind = yes" },
	{ "bind_pw", CFG_STR, "", 0, 0, NULL, ML_SCOPE,
	    "password for bind_dn (write $$ for a $)" },
	{ "timeout", CFG_TIME, "10s", 1, 3600, NULL, ML_SCOPE,
	    "limit for connecting and for each operation" },
	{ "size_limit", CFG_INT, "100", 1, 100000, NULL, ML_SCOPE,
	    "more matching entries than this is a temporary failure" },
	{ "quota_attribute", CFG_STR, "mailQuota", 0, 0, NULL, ML_SCOPE,
	    "user database: attribute with the quota in bytes (empty: none)" },
	{ "home_attribute", CFG_STR, "", 0, 0, NULL, ML_SCOPE,
	    "user database: attribute with the home directory (empty: none)" },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

struct map_ldap {
	char	*path;
	struct cfg *cfg;
	char	*attrs[ML_ATTRS_MAX + 1];
	int	 scope;
	struct timeval tv;
	int	 size_limit;
	LDAP	*ld;		/* searches */
	int	 ld_used;	/* ld has answered once: worth a retry */
	LDAP	*auth_ld;	/* user binds */
	int	 auth_used;
};

/* map_ldap_filter_check - only %s %u %d %%, balanced parentheses */
static int
map_ldap_filter_check(const char *f, const char *path, struct buf *errs)
{
	int depth = 0;
	const char *p;

	if (strlen(f) > ML_FILTER_MAX || f[0] != '(') {
		(void)buf_printf(errs, "%s: query_filter must be an LDAP "
		    "filter in parentheses of at most %d bytes\n", path,
		    ML_FILTER_MAX);
		return -1;
	}
	for (p = f; *p != '\0'; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && --depth < 0)
			break;
		else if (*p == '%') {
			if (p[1] != 's' && p[1] != 'u' && p[1] != 'd' &&
			    p[1] != '%') {
				(void)buf_printf(errs, "%s: query_filter: "
				    "unknown %%%c (expected %%s, %%u, %%d or "
				    "%%%%)\n", path, p[1] ? p[1] : ' ');
				return -1;
			}
			p++;
		}
	}
	if (depth != 0) {
		(void)buf_printf(errs, "%s: query_filter: unbalanced "
		    "parentheses\n", path);
		return -1;
	}
	return 0;
}

static void
map_ldap_attrs_free(struct map_ldap *ml)
{
	size_t i;

	for (i = 0; ml->attrs[i] != NULL; i++)
		xfree(&ml->attrs[i]);
}

/* map_ldap_setup - check the settings and fill ml; 0 or -1 */
static int
map_ldap_setup(struct map_ldap *ml, struct buf *errs)
{
	const char *path = ml->path, *pos, *scope;
	char item[ML_ATTR_LEN + 1];
	size_t n = 0;
	LDAP *ld;
	int rc = 0, r;

	if (*cfg_str(ml->cfg, "search_base") == '\0') {
		(void)buf_printf(errs, "%s: search_base must be set\n", path);
		rc = -1;
	}
	if (map_ldap_filter_check(cfg_str(ml->cfg, "query_filter"), path,
	    errs) < 0)
		rc = -1;
	if (cfg_bool(ml->cfg, "bind") &&
	    *cfg_str(ml->cfg, "bind_dn") == '\0') {
		(void)buf_printf(errs, "%s: bind = yes needs bind_dn\n", path);
		rc = -1;
	}
	pos = cfg_str(ml->cfg, "result_attribute");
	while ((r = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		if (r < 0 || n == ML_ATTRS_MAX) {
			(void)buf_printf(errs, "%s: result_attribute: too "
			    "many or too long names\n", path);
			rc = -1;
			break;
		}
		ml->attrs[n++] = xstrdup(item);
	}
	if (n == 0 && rc == 0) {
		(void)buf_printf(errs, "%s: result_attribute must name at "
		    "least one attribute\n", path);
		rc = -1;
	}
	/* ldap_initialize parses the URIs without connecting */
	if ((r = ldap_initialize(&ld, cfg_str(ml->cfg, "server_host"))) !=
	    LDAP_SUCCESS) {
		(void)buf_printf(errs, "%s: server_host \"%.200s\": %s\n",
		    path, cfg_str(ml->cfg, "server_host"), ldap_err2string(r));
		rc = -1;
	} else
		(void)ldap_unbind_ext(ld, NULL, NULL);
	scope = cfg_str(ml->cfg, "scope");
	ml->scope = strcmp(scope, "base") == 0 ? LDAP_SCOPE_BASE :
	    strcmp(scope, "one") == 0 ? LDAP_SCOPE_ONELEVEL :
	    LDAP_SCOPE_SUBTREE;
	ml->tv.tv_sec = (time_t)cfg_int(ml->cfg, "timeout");
	ml->tv.tv_usec = 0;
	ml->size_limit = (int)cfg_int(ml->cfg, "size_limit");
	return rc;
}

struct map_ldap *
map_ldap_new(const char *path, struct buf *errs)
{
	struct map_ldap *ml = xcalloc(1, sizeof(*ml));

	ml->path = xstrdup(path);
	ml->cfg = cfg_new(map_ldap_defs, ML_SCOPE);
	if (cfg_load_file(ml->cfg, path, ML_SCOPE, false, errs) < 0 ||
	    map_ldap_setup(ml, errs) < 0) {
		map_ldap_free(&ml);
		return NULL;
	}
	return ml;
}

static void
map_ldap_drop(LDAP **ldp, int *used)
{
	if (*ldp != NULL)
		(void)ldap_unbind_ext(*ldp, NULL, NULL);
	*ldp = NULL;
	*used = 0;
}

void
map_ldap_free(struct map_ldap **mlp)
{
	struct map_ldap *ml = *mlp;

	if (ml == NULL)
		return;
	map_ldap_drop(&ml->ld, &ml->ld_used);
	map_ldap_drop(&ml->auth_ld, &ml->auth_used);
	map_ldap_attrs_free(ml);
	cfg_free(&ml->cfg);
	free(ml->path);
	free(ml);
	*mlp = NULL;
}

const char *
map_ldap_cfg(struct map_ldap *ml, const char *name)
{
	return cfg_str(ml->cfg, name);
}

char *const *
map_ldap_attrs(struct map_ldap *ml)
{
	return ml->attrs;
}

const char *
map_ldap_path(const struct map_ldap *ml)
{
	return ml->path;
}

LDAP *
map_ldap_handle(struct map_ldap *ml)
{
	return ml->ld;
}

/* map_ldap_is_down - the connection is gone: reconnect may help */
static int
map_ldap_is_down(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_UNAVAILABLE;
}

/* map_ldap_connect - a new handle with options set; NULL (logged) */
static LDAP *
map_ldap_connect(struct map_ldap *ml)
{
	int v = LDAP_VERSION3, rc;
	LDAP *ld;

	if ((rc = ldap_initialize(&ld, cfg_str(ml->cfg, "server_host"))) !=
	    LDAP_SUCCESS) {
		log_err("ldap %s: %s", ml->path, ldap_err2string(rc));
		return NULL;
	}
	(void)ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v);
	(void)ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	(void)ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &ml->tv);
	(void)ldap_set_option(ld, LDAP_OPT_TIMEOUT, &ml->tv);
	return ld;
}

/* map_ldap_service_bind - bind ld as bind_dn if configured; rc */
static int
map_ldap_service_bind(struct map_ldap *ml, LDAP *ld)
{
	struct berval cred;
	const char *pw;

	if (!cfg_bool(ml->cfg, "bind"))
		return LDAP_SUCCESS;
	pw = cfg_str(ml->cfg, "bind_pw");
	cred.bv_val = (char *)(uintptr_t)pw;
	cred.bv_len = strlen(pw);
	return ldap_sasl_bind_s(ld, cfg_str(ml->cfg, "bind_dn"),
	    LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/*
 * map_ldap_expand - query_filter with the key's parts escaped into out:
 * 1, 0 when the filter needs a part the key lacks, -1 when too long
 */
static int
map_ldap_expand(const char *tmpl, const char *key, struct buf *out)
{
	const char *at = strrchr(key, '@'), *p;
	struct berval in, esc;
	size_t n;
	int rc;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '%' || p[1] == '%') {
			if (buf_putc(out, *p) < 0)
				return -1;
			p += *p == '%';
			continue;
		}
		p++;
		if (*p == 'd' && at == NULL)
			return 0;
		in.bv_val = (char *)(uintptr_t)key;
		in.bv_len = strlen(key);
		if (*p == 'u' && at != NULL)
			in.bv_len = (size_t)(at - key);
		else if (*p == 'd') {
			in.bv_val = (char *)(uintptr_t)(at + 1);
			in.bv_len = strlen(at + 1);
		}
		if (in.bv_len == 0)
			return 0;
		if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
			log_fatal("out of memory escaping an LDAP filter");
		n = esc.bv_len;
		rc = buf_append(out, esc.bv_val, n);
		ber_memfree(esc.bv_val);
		if (rc < 0)
			return -1;
	}
	return 1;
}

int
map_ldap_search(struct map_ldap *ml, const char *key, char *const *attrs,
    LDAPMessage **res_r)
{
	struct buf filter;
	LDAPMessage *res;
	int attempt, rc, n;

	*res_r = NULL;
	if (*key == '\0' || strlen(key) > MAP_KEY_MAX)
		return 0;
	buf_init(&filter, ML_FILTER_MAX * 2 + MAP_KEY_MAX * 3 * 8);
	if ((rc = map_ldap_expand(cfg_str(ml->cfg, "query_filter"), key,
	    &filter)) <= 0) {
		if (rc < 0)
			log_err("ldap %s: filter for a key of %zu bytes is too "
			    "long", ml->path, strlen(key));
		buf_deinit(&filter);
		return rc;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if (ml->ld == NULL) {
			if ((ml->ld = map_ldap_connect(ml)) == NULL)
				break;
			rc = map_ldap_service_bind(ml, ml->ld);
			if (rc != LDAP_SUCCESS) {
				log_err("ldap %s: bind as %s: %s", ml->path,
				    cfg_str(ml->cfg, "bind_dn"),
				    ldap_err2string(rc));
				map_ldap_drop(&ml->ld, &ml->ld_used);
				break;
			}
		}
		res = NULL;
		rc = ldap_search_ext_s(ml->ld,
		    cfg_str(ml->cfg, "search_base"), ml->scope,
		    buf_cstr(&filter), (char **)(uintptr_t)attrs, 0, NULL,
		    NULL, &ml->tv, ml->size_limit, &res);
		if (rc == LDAP_SUCCESS) {
			ml->ld_used = 1;
			buf_deinit(&filter);
			n = ldap_count_entries(ml->ld, res);
			if (n <= 0) {
				ldap_msgfree(res);
				return 0;
			}
			*res_r = res;
			return 1;
		}
		if (res != NULL)
			ldap_msgfree(res);
		if (map_ldap_is_down(rc) && ml->ld_used) {
			/* the server went away since: reconnect once */
			log_info("ldap %s: %s, reconnecting", ml->path,
			    ldap_err2string(rc));
			map_ldap_drop(&ml->ld, &ml->ld_used);
			continue;
		}
		if (rc == LDAP_SIZELIMIT_EXCEEDED)
			log_err("ldap %s: more than %d entries match %s",
			    ml->path, ml->size_limit, buf_cstr(&filter));
		else
			log_err("ldap %s: search %s: %s", ml->path,
			    buf_cstr(&filter), ldap_err2string(rc));
		if (rc == LDAP_TIMEOUT || rc == LDAP_TIMELIMIT_EXCEEDED ||
		    map_ldap_is_down(rc))
			map_ldap_drop(&ml->ld, &ml->ld_used);
		break;
	}
	buf_deinit(&filter);
	return -1;
}

int
map_ldap_user_bind(struct map_ldap *ml, const char *dn, const char *password)
{
	struct berval cred;
	int attempt, rc;

	/* an empty simple bind is an anonymous bind: it "succeeds" */
	if (password == NULL || *password == '\0' || *dn == '\0')
		return 0;
	cred.bv_val = (char *)(uintptr_t)password;
	cred.bv_len = strlen(password);
	for (attempt = 0; attempt < 2; attempt++) {
		if (ml->auth_ld == NULL &&
		    (ml->auth_ld = map_ldap_connect(ml)) == NULL)
			return -1;
		rc = ldap_sasl_bind_s(ml->auth_ld, dn, LDAP_SASL_SIMPLE,
		    &cred, NULL, NULL, NULL);
		switch (rc) {
		case LDAP_SUCCESS:
			ml->auth_used = 1;
			return 1;
		case LDAP_INVALID_CREDENTIALS:
		case LDAP_INAPPROPRIATE_AUTH:
		case LDAP_INVALID_DN_SYNTAX:
		case LDAP_NO_SUCH_OBJECT:
		case LDAP_UNWILLING_TO_PERFORM:
		case LDAP_CONSTRAINT_VIOLATION:
		case LDAP_INSUFFICIENT_ACCESS:
			ml->auth_used = 1;
			log_debug("ldap %s: bind as %s: %s", ml->path, dn,
			    ldap_err2string(rc));
			return 0;
		default:
			break;
		}
		if (map_ldap_is_down(rc) && ml->auth_used) {
			log_info("ldap %s: %s, reconnecting", ml->path,
			    ldap_err2string(rc));
			map_ldap_drop(&ml->auth_ld, &ml->auth_used);
			continue;
		}
		log_err("ldap %s: bind as %s: %s", ml->path, dn,
		    ldap_err2string(rc));
		map_ldap_drop(&ml->auth_ld, &ml->auth_used);
		return -1;
	}
	return -1;
}

/* ---- the ldap: map ---------------------------------------------------- */

/* map_ldap_join - the values of attrs in every entry, ", " between */
static int
map_ldap_join(struct map *m, struct map_ldap *ml, LDAPMessage *res,
    char **value_r)
{
	LDAPMessage *e;
	struct berval **vals;
	struct buf out;
	size_t i, j;
	int rc = 0;

	buf_init(&out, MAP_VALUE_MAX);
	for (e = ldap_first_entry(ml->ld, res); e != NULL && rc == 0;
	    e = ldap_next_entry(ml->ld, e)) {
		for (i = 0; ml->attrs[i] != NULL && rc == 0; i++) {
			vals = ldap_get_values_len(ml->ld, e, ml->attrs[i]);
			for (j = 0; vals != NULL && vals[j] != NULL; j++) {
				if (memchr(vals[j]->bv_val, '\0',
				    vals[j]->bv_len) != NULL) {
					log_warn("ldap %s: NUL byte in a value "
					    "of %s, ignored", ml->path,
					    ml->attrs[i]);
					continue;
				}
				if ((buf_len(&out) > 0 &&
				    buf_append(&out, ", ", 2) < 0) ||
				    buf_append(&out, vals[j]->bv_val,
				    vals[j]->bv_len) < 0) {
					log_err("table %s: result longer than "
					    "%d bytes", m->spec,
					    MAP_VALUE_MAX);
					rc = -1;
					break;
				}
			}
			if (vals != NULL)
				ldap_value_free_len(vals);
		}
	}
	if (rc == 0 && buf_len(&out) > 0) {
		*value_r = buf_steal(&out);
		rc = 1;
	}
	buf_deinit(&out);
	return rc;
}

static int
map_ldap_open(struct map *m, struct buf *errs)
{
	if ((m->priv = map_ldap_new(m->where, errs)) == NULL)
		return -1;
	return 0;
}

static int
map_ldap_lookup(struct map *m, const char *key, char **value_r)
{
	struct map_ldap *ml = m->priv;
	LDAPMessage *res;
	int rc;

	if ((rc = map_ldap_search(ml, key, ml->attrs, &res)) <= 0)
		return rc;
	rc = map_ldap_join(m, ml, res, value_r);
	ldap_msgfree(res);
	return rc;
}

static void
map_ldap_close(struct map *m)
{
	struct map_ldap *ml = m->priv;

	map_ldap_free(&ml);
	m->priv = NULL;
}

static int
map_ldap_check(const char *where, struct buf *errs)
{
	struct map_ldap *ml;

	if ((ml = map_ldap_new(where, errs)) == NULL)
		return -1;
	map_ldap_free(&ml);
	return 0;
}

const struct map_ops map_ldap_ops = {
	"ldap",
	map_ldap_open,
	map_ldap_lookup,
	map_ldap_close,
	map_ldap_check,
};
