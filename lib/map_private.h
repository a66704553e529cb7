/*
 * map_private - what the map backends and userdb share (not for callers)
 *
 * A backend is a struct map_ops.  open() fills m->priv from m->where or
 * appends "where: message\n" lines to errs and returns -1; lookup()
 * returns 1/0/-1 like map_lookup() and logs the detail of a -1 itself;
 * check() validates a where without keeping anything open.
 *
 * map_ldap_* is the LDAP client both ldap: maps and the LDAP userdb use:
 * a config file (see man/posta-tables.5) and one lazily opened
 * connection, reconnected once per call when it is found dead.
 * map_ldap_search() returns 1 with the result in *res_r (free with
 * ldap_msgfree) when at least one entry matched, 0 for none, -1 on a
 * temporary failure (logged).  map_ldap_user_bind() checks a password
 * by a simple bind as dn on a second connection: 1 good, 0 bad, -1
 * temporary; empty passwords are refused before any bind.
 */
#ifndef POSTA_MAP_PRIVATE_H
#define POSTA_MAP_PRIVATE_H

#include <ldap.h>

#include "buf.h"
#include "map.h"

struct map;

struct map_ops {
	const char *type;
	int	(*open)(struct map *, struct buf *errs);
	int	(*lookup)(struct map *, const char *key, char **value_r);
	void	(*close)(struct map *);
	int	(*check)(const char *where, struct buf *errs);
};

struct map {
	const struct map_ops *ops;
	char	*spec;
	char	*where;
	void	*priv;
};

extern const struct map_ops map_file_ops;
extern const struct map_ops map_bdb_ops;
extern const struct map_ops map_ldap_ops;

/* map_lower - ASCII lower case in place */
void	map_lower(char *);

struct map_ldap;

struct map_ldap *map_ldap_new(const char *conf_path, struct buf *errs);
void	map_ldap_free(struct map_ldap **);
int	map_ldap_search(struct map_ldap *, const char *key,
	    char *const *attrs, LDAPMessage **res_r);
LDAP	*map_ldap_handle(struct map_ldap *);
int	map_ldap_user_bind(struct map_ldap *, const char *dn,
	    const char *password);
/* map_ldap_cfg - a setting of the LDAP config (borrowed) */
const char *map_ldap_cfg(struct map_ldap *, const char *name);
/* map_ldap_attrs - result_attribute as a NULL-terminated array */
char *const *map_ldap_attrs(struct map_ldap *);
const char *map_ldap_path(const struct map_ldap *);

#endif
