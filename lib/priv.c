/*
 * priv - dropping root privileges for good (see priv.h)
 *
 * The order matters: groups first, while we still may change them, then
 * the gid, then the uid (after which nothing else can be changed).  The
 * saved set-user-ID is set too, so the drop cannot be undone, and the
 * result is checked rather than trusted, as OpenBSD daemons do.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "priv.h"

int
priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, struct buf *errs)
{
	struct passwd *pw;

	errno = 0;
	if (user == NULL || *user == '\0') {
		(void)buf_printf(errs, "no user name given\n");
		return -1;
	}
	if ((pw = getpwnam(user)) == NULL) {
		(void)buf_printf(errs, "unknown user \"%.100s\"%s%s\n", user,
		    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		(void)buf_printf(errs, "user \"%.100s\" has uid or gid 0: "
		    "refusing to run as root\n", user);
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 0;
}

int
priv_drop(const char *user, struct buf *errs)
{
	uid_t uid, ru, eu, su;
	gid_t gid, rg, eg, sg;

	if (geteuid() != 0)
		return 0;
	if (priv_lookup(user, &uid, &gid, errs) < 0)
		return -1;
	if (initgroups(user, gid) < 0) {
		(void)buf_printf(errs, "initgroups %s: %s\n", user,
		    strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		(void)buf_printf(errs, "setresgid %lu: %s\n",
		    (unsigned long)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		(void)buf_printf(errs, "setresuid %lu: %s\n",
		    (unsigned long)uid, strerror(errno));
		return -1;
	}
	/* verify: a drop that silently failed would leave us root */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != uid || eu != uid || su != uid ||
	    rg != gid || eg != gid || sg != gid) {
		(void)buf_printf(errs, "privilege drop to %s did not take "
		    "effect\n", user);
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		(void)buf_printf(errs, "privilege drop to %s can be undone: "
		    "root regained\n", user);
		return -1;
	}
	return 0;
}
