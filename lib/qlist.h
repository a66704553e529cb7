/*
 * qlist - the queue listing of mailq(1) and "posta queue list", and
 * what the queue tools share to find and show a message
 *
 * qlist_print(out, qdir, prog) reads the directories incoming/,
 * active/, deferred/ and hold/ of the queue directory qdir itself (the
 * caller must be root or mail_owner) and prints every message, sorted
 * by queue ID (that is, by arrival), in the shape of Postfix's mailq:
 *
 *   -Queue ID-   --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   1K13BJX62MTH!    1234 Wed Nov 25 14:50:01  sender@example.org
 *               (connect to mx.example.org[192.0.2.1]: Connection refused)
 *                                              demo@example.test
 *
 *   -- 1 Kbytes in 1 Request.
 *
 * The ID is followed by '*' for a message in active/, '!' for one in
 * hold/ (or recorded as held), else a space.  The size is the content's,
 * the sender MAILER-DAEMON for the null sender, and only recipients not
 * yet final are listed: those not tried yet first, then the deferred
 * ones under their last reason, in parentheses.  Each entry ends with
 * an empty line; the last line sums the sizes (in whole Kbytes) and
 * counts the messages.  An empty queue prints "Mail queue is empty".
 *
 * A file that vanishes during the listing (qmgr moved it) is looked for
 * in the other directories once, then skipped; a corrupt file gets a
 * warning "prog: ID: corrupt queue file: why" on standard error and is
 * skipped; corrupt/ is not listed.  Every byte of an address or reason
 * that could drive a terminal (control characters, DEL, malformed UTF-8,
 * C1 controls) is shown as '?'.  Returns 0, or -1 after a message on
 * standard error when a queue directory cannot be read (a missing
 * directory is an empty one).
 *
 * qlist_locate(qdir, id, dir_r) finds the directory holding the message
 * id (which must satisfy queue_id_ok()), searching incoming, active,
 * deferred, hold and corrupt: 1 and *dir_r, 0 not found, -1 error (errno).
 *
 * qlist_put_safe(out, p, len, flags) writes len bytes as described
 * above; with QLIST_SAFE_TEXT tab and newline pass too (message text).
 */
#ifndef POSTA_QLIST_H
#define POSTA_QLIST_H

#include <stddef.h>
#include <stdio.h>

#include "queue.h"

#define QLIST_SAFE_TEXT		0x01

int	qlist_print(FILE *out, const char *qdir, const char *prog);
int	qlist_locate(const char *qdir, const char *id, enum queue_dir *dir_r);
void	qlist_put_safe(FILE *out, const void *p, size_t len, int flags);

#endif
