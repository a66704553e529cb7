/*
 * userdb - the user database and password checks
 *
 * A user database is named like a table (see map.h):
 *
 *	file:/etc/posta/users		text, like Dovecot's passwd-file
 *	ldap:/etc/posta/ldap-users.conf	LDAP (see posta-tables(5))
 *
 * The file has one user per line, fields separated by ':':
 *	user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra
 * Only the user and the password field are required ("user:pass");
 * trailing fields may be left out.  uid and gid are numbers or empty;
 * home is an absolute path or empty; gecos and shell are ignored; extra
 * is a space-separated list of name=value, of which quota=SIZE (bytes,
 * or with k, m, g) and home=PATH are known (anything else is an error).
 * '#' starts a comment line.  Names are case-insensitive (lower case).
 * An empty password field makes a user that exists but cannot log in.
 * Errors are "file:line: message\n".  The file is read again when it
 * changes, like a file: table; while it fails to load, lookups fail
 * temporarily.
 *
 * Password schemes: {SHA512-CRYPT} $6$, {SHA256-CRYPT} $5$, {BLF-CRYPT}
 * $2y$/$2b$/$2a$, {CRYPT} any crypt(3) hash, a bare crypt(3) hash ($6$,
 * $5$, $y$ yescrypt, $2b$ ...), and {PLAIN} (clear text: for tests only).
 * Hashes are checked with libxcrypt's crypt_rn() and compared in constant
 * time; an unknown scheme or a broken hash fails the check and is
 * logged.  Empty passwords and passwords over USERDB_PASSWORD_MAX bytes
 * always fail.  In LDAP the user is found with query_filter and the
 * password is checked by a simple bind as the user's DN.
 *
 * userdb_open() returns the database or NULL with "where: message\n" in
 * errs.  userdb_lookup() returns 1 and fills *u_r (free it with
 * userdb_user_free()), 0 for an unknown user, -1 on a temporary failure
 * (r = 451 4.3.0, detail logged).  userdb_auth() returns 1 for the right
 * password, 0 for a wrong one or an unknown user (r = 535 5.7.8), -1 on
 * a temporary failure (r = 454 4.7.0).  Passwords are never logged.
 *
 * userdb_hash_password() appends "{SCHEME}hash" for password to out,
 * with a fresh random salt: schemes SHA512-CRYPT, SHA256-CRYPT,
 * BLF-CRYPT, CRYPT (libxcrypt's best, yescrypt) and PLAIN; 0 or -1
 * (unknown scheme, empty password, or PLAIN with ':' or a newline).
 */
#ifndef POSTA_USERDB_H
#define POSTA_USERDB_H

#include "buf.h"
#include "reply.h"

#define USERDB_PASSWORD_MAX	512	/* libxcrypt's limit too */
#define USERDB_LINE_MAX		8192

struct userdb_user {
	char	*name;		/* canonical name, lower case */
	char	*home;		/* NULL when not given */
	unsigned long long quota;	/* bytes; 0 when not given */
	long long uid;		/* -1 when not given */
	long long gid;		/* -1 when not given */
};

struct userdb;

struct userdb *userdb_open(const char *spec, struct buf *errs);
void	userdb_close(struct userdb **);
int	userdb_lookup(struct userdb *, const char *user,
	    struct userdb_user *u_r, struct reply *r);
void	userdb_user_free(struct userdb_user *);
int	userdb_auth(struct userdb *, const char *user, const char *password,
	    struct reply *r);
/* userdb_check - validate a spec (parse the file or the LDAP config) */
int	userdb_check(const char *spec, struct buf *errs);

int	userdb_hash_password(const char *scheme, const char *password,
	    struct buf *out);
/* userdb_password_verify - stored "{SCHEME}hash" vs password: 1 or 0 */
int	userdb_password_verify(const char *stored, const char *password,
	    const char *user);

#endif
