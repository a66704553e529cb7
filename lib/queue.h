/*
 * queue - queue IDs, the queue file format, and durable writes
 *
 * The queue lives in queue_directory with one sub-directory per state:
 * incoming/ (written by smtpd and the injector, complete once renamed
 * from ID.tmp to ID), active/ (taken by qmgr), deferred/ (waiting for a
 * retry), hold/ (held by the admin), corrupt/ (could not be parsed).
 * A message is one file, named by its queue ID, in exactly one of them.
 *
 * Queue ID: QUEUE_ID_LEN characters from [0-9A-Z]: eleven of the
 * arrival time in microseconds (base 32, so IDs sort by arrival) and a
 * suffix.  The time comes from one counter that every writing process
 * shares through incoming/.idseq (mapped; never remove it while posta
 * runs), so IDs strictly increase across processes and are unique;
 * files are still created with O_EXCL.  queue_id_new(qdir, id,
 * &arrival) hands out the next ID without a file (arrival NULL or the
 * seconds of its time); 0.
 *
 * Queue file: a sequence of attr records (attr.h), read by that one
 * decoder:
 *
 *   1. envelope   v=1 id= arrival= sender= [body= smtputf8= ret= envid=
 *                 client_name= client_addr= helo= proto= auth=], then for
 *                 each recipient rcpt=ADDR, optionally followed by
 *                 orcpt= and notify= which belong to the rcpt before
 *                 them; then check= as exactly 8 lower-case hex digits
 *                 and content_size= as exactly 13 digits, the last two
 *                 (the writer fills both in place, with one write, once
 *                 the message is whole: the seal).  check is the
 *                 CRC-32C (crc32c.h) of the file from its first byte to
 *                 the end of the content, taken while both fields were
 *                 still all zeros.  Files written before check sums
 *                 have no check= and are read as they are.
 *   2. content    content_size raw bytes: the message as received, dot
 *                 stuffing removed, lines ending in CRLF.
 *   3. status     zero or more records appended later, one per event:
 *                 rcpt_index=N status=sent|failed|deferred dsn=X.Y.Z
 *                 reason= time= [next_try=] [relay=relayed|passed, for
 *                 sent: QUEUE_RELAY_*]; or held=1|0; or rcpt_index=N
 *                 notified=1 (its failure was reported).  The last one
 *                 for a recipient wins.  Each is appended with one
 *                 write(2) and fdatasync()ed before the event counts
 *                 (invariant 2).
 *
 * A torn last status record (crash during the append) is ignored; any
 * other damage makes the file corrupt.
 *
 * Writing (smtpd, sendmail): queue_writer_new() creates incoming/ID.tmp,
 * takes an exclusive flock(2) on it, held until the writer is freed,
 * and writes the envelope; queue_writer_write() appends content
 * (buffered); queue_writer_seal() flushes and fills in check and
 * content_size; queue_writer_sync() fsyncs the file (may run in another
 * thread); queue_writer_commit() renames it to incoming/ID.  Before
 * "250 queued as ID" (invariant 1) the caller waits for the file's
 * fsync and for an fsync of incoming/ (queue_dir_sync()) that started
 * after queue_writer_new() gave the file its name ID.tmp — one for a
 * whole batch of messages (group commit).  smtpd starts that directory
 * fsync at once, while the message is still coming in, and so does not
 * wait for the rename to ID to be durable: if a crash loses it, the
 * file is still there as ID.tmp, whole, and queue_tmp_recover() (qmgr's
 * scan) queues it.  Other writers sync the directory after the commit.
 * queue_writer_free() of a writer not committed unlinks the temporary
 * file: a client gone mid-DATA leaves nothing behind.
 *
 * Recovery: an incoming/ID.tmp that nobody holds locked, whose envelope
 * says id=ID, sealed, with a check sum that matches, is a whole message
 * whose writer finished (queue_tmp_recover() renames it to ID).  Any
 * other ID.tmp is unfinished: its writer is at work (locked), or died
 * before the 250 (the client was never told it was queued); qmgr
 * removes those a day later.  The check sum matters after a power
 * failure only: a file whose fsync did not finish may hold any mix of
 * old and new blocks.
 *
 * Recycling: a finished queue file is not unlinked but renamed into
 * free/ (queue_recycle(), at most QUEUE_FREE_MAX files, each cut to
 * QUEUE_RECYCLE_KEEP bytes), and queue_writer_new() takes one from there
 * (renameat2 RENAME_NOREPLACE to incoming/ID.tmp) before it creates a
 * new file, writes the new message over the old bytes and, when sealing,
 * cuts the file at the new end.  Reusing inodes and their blocks spares
 * the file system an inode and block allocation and release per message
 * (costly on ext4, especially without a journal); it changes nothing in
 * the durable order above.  free/ holds spent files (old content, as
 * private as the rest of the queue); anything in it may go.
 * queue_writer_new() is thread-safe.
 *
 * Errors that a client will hear come back in a struct reply (451 4.3.0,
 * 452 4.3.1 for a full disk); the detail goes to the log with the ID.
 */
#ifndef POSTA_QUEUE_H
#define POSTA_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attr.h"
#include "buf.h"
#include "reply.h"

#define QUEUE_ID_LEN		12
#define QUEUE_RCPT_MAX		10000
#define QUEUE_HEAD_MAX		(4 * 1024 * 1024)	/* envelope record */
#define QUEUE_TAIL_MAX		(16 * 1024 * 1024)	/* status records */
#define QUEUE_FREE_DIR		"free"	/* spent files kept for reuse */
#define QUEUE_FREE_MAX		1000	/* at most this many kept */
#define QUEUE_FREE_BATCH	64	/* names a writer caches */
#define QUEUE_RECYCLE_KEEP	(128 * 1024)	/* bytes a free/ file keeps */
#define QUEUE_SEQ_FILE		".idseq"	/* in incoming/: see below */

enum queue_dir {
	QUEUE_INCOMING,
	QUEUE_ACTIVE,
	QUEUE_DEFERRED,
	QUEUE_HOLD,
	QUEUE_CORRUPT,
};
#define QUEUE_NDIRS	5

enum queue_rstatus {
	QUEUE_R_PENDING,	/* not tried yet */
	QUEUE_R_DEFERRED,	/* temporary failure, try again */
	QUEUE_R_SENT,		/* delivered (final) */
	QUEUE_R_FAILED,		/* bounced (final) */
};

struct queue_rcpt {
	char	*addr;
	char	*orcpt;			/* "rfc822;xtext" or NULL */
	unsigned notify;		/* SMTP_NOTIFY_* bits, 0 = default */
	enum queue_rstatus status;
	char	 dsn[12];
	char	*reason;		/* last reply / reason, or NULL */
	int64_t	 time;			/* of the last status */
	int64_t	 next_try;		/* deferred: not before */
	int	 relay;			/* sent: QUEUE_RELAY_* */
	bool	 notified;		/* failed: its sender was told */
};

/*
 * How a sent recipient left (RFC 3461 section 4): delivered here (a
 * success notice says "delivered"), relayed to a next hop without DSN
 * ("relayed"), or passed to a next hop with DSN, which took over the
 * notices (none from us).  Written as relay=relayed|passed in the
 * status record.
 */
#define QUEUE_RELAY_NONE	0
#define QUEUE_RELAY_RELAYED	1
#define QUEUE_RELAY_PASSED	2

struct queue_env {
	char	 id[QUEUE_ID_LEN + 1];
	int64_t	 arrival;		/* seconds since the epoch */
	char	*sender;		/* "" = null sender */
	int	 body;			/* enum smtp_body */
	bool	 smtputf8;
	int	 ret;			/* enum smtp_ret */
	char	*envid;
	char	*client_name, *client_addr, *helo, *proto, *auth;
	struct queue_rcpt *rcpt;
	size_t	 nrcpt, caprcpt;
	bool	 held;
	uint64_t content_offset;	/* file offset of the message */
	uint64_t content_size;
	bool	 has_check;		/* check= was there (else older) */
	uint32_t check;			/* CRC-32C, see queue_verify() */
	uint64_t good_end;		/* end of the last whole record */
};

/* queue_dir_name - "incoming", "active", ... */
const char *queue_dir_name(enum queue_dir);
/* queue_id_ok - 1 if s is a well-formed queue ID (safe in a path) */
int	queue_id_ok(const char *s);
/* queue_path - "qdir/incoming/ID" into out; 0 or -1 (too long) */
int	queue_path(char *out, size_t outsz, const char *qdir,
	    enum queue_dir, const char *id);
/* queue_dir_sync - fsync a queue sub-directory; 0 or -1 (errno) */
int	queue_dir_sync(const char *qdir, enum queue_dir);

/* queue_env_new/free - an empty envelope, owned by the caller */
struct queue_env *queue_env_new(void);
void	queue_env_free(struct queue_env **);
/* queue_env_add_rcpt - append a recipient (copies); returns it */
struct queue_rcpt *queue_env_add_rcpt(struct queue_env *, const char *addr,
	    const char *orcpt, unsigned notify);
/* queue_env_set - replace *field with a copy of s (NULL clears) */
void	queue_env_set(char **field, const char *s);

struct queue_writer;

struct queue_writer *queue_writer_new(const char *qdir,
	    struct queue_env *env, struct reply *r);
int	queue_writer_write(struct queue_writer *, const void *, size_t);
int	queue_writer_seal(struct queue_writer *, struct reply *r);
int	queue_writer_sync(struct queue_writer *);
int	queue_writer_commit(struct queue_writer *, struct reply *r);
/*
 * queue_writer_fd - the open file, for an fsync run elsewhere (lib/fsyncq)
 * in place of queue_writer_sync(); valid until commit or free
 */
int	queue_writer_fd(const struct queue_writer *);
/* queue_writer_size - content bytes written so far */
uint64_t queue_writer_size(const struct queue_writer *);
void	queue_writer_free(struct queue_writer **);

/*
 * queue_parse - parse a whole queue file held in memory (len bytes)
 * into env (which must be empty).  0, or -1 with *why_r set (corrupt).
 * Pure: the same code reads real files and serves the fuzzer.
 */
int	queue_parse(const void *data, size_t len, struct queue_env *env,
	    const char **why_r);

/*
 * queue_read - read the envelope and status of an open queue file
 * (the content is not read, only located).  0, or -1 with why (errno
 * text for an I/O error, else the parse reason; *is_corrupt_r says which).
 */
int	queue_read(int fd, struct queue_env *env, const char **why_r,
	    bool *is_corrupt_r);

/*
 * queue_verify - read the file up to the end of its content and compare
 * the CRC-32C with env->check (env from queue_read() of the same fd);
 * 0 when it matches or env has no check sum, -1 with why otherwise
 */
int	queue_verify(int fd, const struct queue_env *env, const char **why_r);

/*
 * queue_tmp_id - 1 with the ID in id when name is "ID.tmp" (a writer's
 * temporary name in incoming/), else 0
 */
int	queue_tmp_id(const char *name, char id[QUEUE_ID_LEN + 1]);

/*
 * queue_tmp_recover - incoming/ID.tmp (name, in the directory dirfd)
 * left by a writer that is gone: 1 when it held a whole, sealed message
 * (id=ID, check sum good) and was renamed to ID and the directory
 * fsynced; 0 when it was left alone, with why (*is_busy_r: a writer
 * holds it locked); -1 on an I/O error (errno)
 */
int	queue_tmp_recover(int dirfd, const char *name, const char **why_r,
	    bool *is_busy_r);

/*
 * queue_status_append - append one status record for recipient idx to
 * an open queue file and fdatasync it; updates env.  0 or -1 (errno).
 */
int	queue_status_append(int fd, struct queue_env *env, size_t idx,
	    enum queue_rstatus, const char *dsn, const char *reason,
	    int64_t next_try);
/* queue_hold_append - record held=1/0 durably; 0 or -1 */
int	queue_hold_append(int fd, struct queue_env *env, bool held);
/*
 * queue_notified_append - record "rcpt_index=N notified=1" durably: the
 * failure of recipient idx was reported (a notice is queued), so a later
 * notice does not repeat it; 0 or -1
 */
int	queue_notified_append(int fd, struct queue_env *env, size_t idx);

/*
 * queue_recycle - a finished queue file (path) goes to free/ for reuse
 * by the next writer, or is unlinked when free/ holds QUEUE_FREE_MAX
 * files already; 0 or -1 (errno, as unlink(2))
 */
int	queue_recycle(const char *qdir, const char *path);
int	queue_id_new(const char *qdir, char *id, time_t *arrival_r);
/*
 * queue_rel_path_ok - 1 if path is "DIR/ID" with DIR a queue directory
 * other than corrupt/ and ID the queue ID id (a delivery request's
 * path= checked before it comes near open()), else 0
 */
int	queue_rel_path_ok(const char *path, const char *id);
/*
 * queue_deliver_req - the common part of a delivery request from qmgr
 * to an agent (request=deliver id= path= rcpt_index=...): checks id=
 * (a queue ID), path= (queue_rel_path_ok) and each rcpt_index= (1 to max
 * of them, each a number below QUEUE_RCPT_MAX).  0 with *id_r, *path_r
 * (borrowed from rec) and *idx_r (xcalloc'd, *n_r entries, caller
 * frees), or -1 with *why_r, a text for the reply (nothing to free).
 */
int	queue_deliver_req(const struct attr_rec *rec, size_t max,
	    const char **id_r, const char **path_r, size_t **idx_r,
	    size_t *n_r, const char **why_r);
/*
 * queue_arrival_precise - the arrival time with microseconds, from the
 * queue ID (which holds them), when it agrees with the envelope's
 * seconds; else the envelope's arrival
 */
double	queue_arrival_precise(const struct queue_env *);

/* queue_rstatus_name - "pending", "deferred", "sent", "failed" */
const char *queue_rstatus_name(enum queue_rstatus);

#endif
