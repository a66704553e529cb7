/*
 * priv - dropping root privileges for good
 *
 * priv_lookup(user, ...) finds the uid and primary gid of a user; it
 * refuses a user whose uid or gid is 0, since running "unprivileged" as
 * root would be no drop at all.
 *
 * priv_drop(user, errs) makes the process run as user, irrevocably:
 * supplementary groups from the group database (initgroups), then
 * setresgid(), then setresuid(), and finally it verifies that root cannot
 * be regained (setuid(0) and setgid(0) must fail, every uid and gid must
 * be the user's).  It does nothing and returns 0 when the process is not
 * running as root (a test or "make run" under an ordinary user).  Returns
 * 0, or -1 with one line "message\n" appended to errs; after a failure
 * in the middle the process must exit (it may hold a mix of ids).
 *
 * Both are called before the first byte is read from the network.  They
 * may read /etc/passwd and /etc/group through NSS, so call them before
 * any chroot.
 */
#ifndef POSTA_PRIV_H
#define POSTA_PRIV_H

#include <sys/types.h>

#include "buf.h"

int	priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r,
	    struct buf *errs);
int	priv_drop(const char *user, struct buf *errs);

#endif
