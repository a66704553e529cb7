/*
 * maildir - Maildir++ delivery and quota
 *
 * Delivery.  maildir_deliver(path, folder, msg, quota, res_r, r) writes
 * one message into the Maildir at path: INBOX when folder is NULL, else
 * the Maildir++ sub-folder path/.folder/ (folder is given already in
 * Maildir++ form, "Lists.posta" for .Lists.posta/; maildir_folder_ok()
 * says whether a name is acceptable).  The message is msg->prefix (the
 * header lines we add: Return-Path:, Delivered-To:) followed by
 * msg->size bytes read with pread(2) from msg->fd at msg->offset (the
 * content of a queue file: CRLF line ends, dot stuffing removed).  Both
 * parts are copied with CRLF turned into LF, since Maildir files use
 * LF; a lone CR and a lone LF are copied unchanged; every other byte
 * (NUL, 8-bit) is copied as it is.
 *
 * The Maildir (missing parents too, then tmp/ new/ cur/) and the folder
 * (tmp/ new/ cur/ and an empty maildirfolder file) are created with
 * mode 0700 on first delivery, and each new directory entry is made
 * durable by an fsync of its parent.  The file is created with O_EXCL,
 * mode 0600, in tmp/ under a unique name
 *
 *	SECONDS.M<usec>P<pid>Q<n>.HOST
 *
 * (n counts this process's deliveries; '/' and ':' in HOST are written
 * \057 and \072), fsynced, renamed into new/ as
 * NAME,S=<size>,W=<vsize> (the name is unique, so rename(2) is as safe
 * as link(2) and costs one directory operation less), and new/ is
 * fsynced — one fsync shared by the threads of the process delivering
 * into the same Maildir at that moment (group commit).  Only then does
 * maildir_deliver() return 0 (invariant 2); on any failure it leaves no
 * file behind in tmp/ or new/.  size is the number of bytes in the file;
 * vsize is size plus one per LF, the size with CRLF line ends that IMAP
 * reports.  res_r receives the final path, its base name and both sizes.
 *
 * Quota (Maildir++, the maildirsize file in the Maildir root, shared
 * with Courier and Dovecot).  The first line holds the limits,
 * "<bytes>S,<count>C" (either part may be missing; 0 or missing means no
 * limit); each further line "<bytes> <count>" (signed, padded with
 * spaces or not) is a change, and their sum is the usage.  The file is
 * rebuilt (written in tmp/, renamed over maildirsize) from the ,S= part
 * of each file name in cur/ and new/ of the INBOX and every .folder
 * (stat(2) when a name has none) when it is missing, larger than
 * MAILDIR_SIZE_FILE_MAX bytes, unparsable, its limits differ from the
 * configured ones, or the mailbox looks over quota and the file was
 * last changed more than MAILDIR_QUOTA_STALE seconds ago.  A message
 * fits when usage + size <= the byte limit and count + 1 <= the count
 * limit: a message that makes the mailbox exactly full is accepted.
 * After each delivery "<size> 1" is appended to maildirsize if it
 * exists.  Concurrent deliveries may overshoot the limit by a message:
 * Maildir++ quota is a soft limit by design.
 *
 * When maildir_deliver() is given a quota (not NULL, a limit not 0) it
 * checks it with the exact size of the written file, before the fsync,
 * and refuses an over-quota message.
 *
 * Errors come back as -1 with a struct reply the peer may hear (the
 * detail, with msg->log_id, goes to the log):
 *	452 4.2.2 Mailbox full		over quota, or EDQUOT
 *	452 4.3.1 Insufficient system storage	ENOSPC
 *	451 4.3.0 ...			anything else (I/O error, bad path,
 *					truncated queue file, bad folder)
 * All of them are temporary: over quota is retried by qmgr and bounced
 * when the queue lifetime ends.
 *
 * Not thread-safe except for the name counter, which is atomic.  Out of
 * memory is fatal.
 */
#ifndef POSTA_MAILDIR_H
#define POSTA_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"

#define MAILDIR_PATH_MAX	4096
#define MAILDIR_SIZE_FILE_MAX	5120	/* rebuild maildirsize above this */
#define MAILDIR_QUOTA_STALE	(15 * 60)	/* seconds */
#define MAILDIR_FOLDER_MAX	255

struct maildir_msg {
	const char *log_id;		/* queue ID for log lines, or NULL */
	const char *prefix;		/* our header lines, or NULL */
	size_t	 prefix_len;
	int	 fd;			/* content source (the queue file) */
	uint64_t offset;		/* content starts here in fd */
	uint64_t size;			/* content bytes (CRLF) */
};

/* limits; 0 = no limit */
struct maildir_quota {
	uint64_t bytes;
	uint64_t count;
};

struct maildir_result {
	char	 path[MAILDIR_PATH_MAX];	/* .../new/NAME,S=..,W=.. */
	const char *name;		/* base name, points into path */
	uint64_t size;			/* bytes in the file (,S=) */
	uint64_t vsize;			/* size with CRLF line ends (,W=) */
};

/* what maildirsize says */
struct maildir_quota_usage {
	uint64_t limit_bytes;		/* 0 = none */
	uint64_t limit_count;		/* 0 = none */
	int64_t	 bytes;			/* sum of the change lines */
	int64_t	 count;
	size_t	 nlines;		/* change lines */
};

/*
 * maildir_set_hostname - use name (not gethostname()) in file names;
 * NULL goes back to gethostname().  Copies it.
 */
void	maildir_set_hostname(const char *name);

/* maildir_folder_ok - 1 if name is a usable Maildir++ folder name, 0 if not */
int	maildir_folder_ok(const char *name);

/* maildir_deliver - see above; 0, or -1 with r filled in */
int	maildir_deliver(const char *path, const char *folder,
	    const struct maildir_msg *msg, const struct maildir_quota *quota,
	    struct maildir_result *res_r, struct reply *r);

/*
 * maildir_quota_parse - parse the len bytes of a maildirsize file
 * into u_r.  0, or -1 when the file must be rebuilt (bad syntax, a
 * torn last line, overflow, negative totals).  Pure; fuzzed.
 */
int	maildir_quota_parse(const void *data, size_t len,
	    struct maildir_quota_usage *u_r);

/*
 * maildir_quota_get - the usage of the Maildir at path under quota q,
 * from maildirsize, rebuilt by the rules above when needed (when it is
 * rebuilt because the mailbox looks full is decided with msg_size).
 * 0, or -1 with errno.
 */
int	maildir_quota_get(const char *path, const struct maildir_quota *q,
	    uint64_t msg_size, struct maildir_quota_usage *u_r);

/* maildir_quota_recalc - rebuild maildirsize now; 0, or -1 with errno */
int	maildir_quota_recalc(const char *path, const struct maildir_quota *q,
	    struct maildir_quota_usage *u_r);

/*
 * maildir_quota_check - does a message of msg_size bytes fit?  1 yes,
 * 0 no (r: 452 4.2.2 Mailbox full), -1 error (r: 451 4.3.0).  Limits of
 * 0 mean none; with no limit at all it returns 1 and touches nothing.
 */
int	maildir_quota_check(const char *path, uint64_t limit_bytes,
	    uint64_t limit_count, uint64_t msg_size, struct reply *r);

/*
 * maildir_quota_add - append "<bytes> <count>" to maildirsize if it
 * exists (imapd passes negative values on expunge).  0 (also when there
 * is no maildirsize), or -1 with errno.
 */
int	maildir_quota_add(const char *path, int64_t bytes, int64_t count);

#endif
