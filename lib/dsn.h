/*
 * dsn - delivery status notifications (RFC 3464 multipart/report)
 *
 * qmgr uses this module to tell a message's envelope sender what became
 * of its recipients: a bounce (DSN_FAILURE), a delay warning (DSN_DELAY)
 * or, for recipients that asked with NOTIFY=SUCCESS, a delivery report
 * (DSN_SUCCESS).  The module builds the text; queueing it (from the null
 * sender, to env->sender) is the caller's job.
 *
 * dsn_wanted(env, i, kind) says whether recipient i belongs in a notice
 * of that kind.  Pure, no I/O.  Rules (RFC 3461 4.1):
 *   - never for the null sender (a notice about a notice would loop);
 *   - never for NOTIFY=NEVER;
 *   - DSN_FAILURE: status failed, and NOTIFY absent or containing FAILURE;
 *   - DSN_DELAY: status deferred, and NOTIFY absent or containing DELAY
 *     (with NOTIFY absent a delay warning is the MTA's choice: whether
 *     to send them at all, and when, is qmgr's configuration);
 *   - DSN_SUCCESS: status sent and NOTIFY containing SUCCESS.
 * Returns 1 (include it) or 0.  It does not know which notices were
 * already sent: qmgr keeps track of that.
 *
 * dsn_build(info, env, content_fd, kind, out, res_r) appends to out one
 * complete message (header and body, CRLF line ends) listing every
 * recipient dsn_wanted() picks, and returns 1; or returns 0 with out
 * unchanged when no recipient is wanted (null sender, NOTIFY=NEVER, ...);
 * or -1 with errno set (EIO: the queue file is shorter than the envelope
 * says; EMSGSIZE: out's limit is too small; other errors of pread(2)),
 * out then unchanged.  The message is:
 *
 *   From: MAILER-DAEMON@myhostname (Mail Delivery System), To: <sender>,
 *   a Subject saying what happened, Date, Message-ID, Auto-Submitted:
 *   auto-replied (RFC 3834), MIME-Version and a multipart/report;
 *   report-type=delivery-status with a boundary that occurs nowhere in
 *   the parts (it has a random part and is checked against them), and
 *   1. text/plain: what happened, one paragraph per recipient with the
 *      reason (remote reply) given;
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id
 *      (ENVID, xtext-decoded), Arrival-Date; per recipient Original-
 *      Recipient (ORCPT, decoded), Final-Recipient, Action (failed,
 *      delayed, delivered), Status (the recipient's if its class fits
 *      the kind, else 5.0.0, 4.0.0, 2.0.0), Diagnostic-Code (when there
 *      is a reason: "smtp;" and the reply when the reason starts with an
 *      SMTP reply or has one after "said: ", else "X-Posta;" and the
 *      reason),
 *      Last-Attempt-Date, and Will-Retry-Until for delays;
 *   3. the original: in a failure notice message/rfc822 (RET=FULL or
 *      no RET), else only its header as text/rfc822-headers: for RET=
 *      HDRS, for a message larger than info->size_limit (as Postfix's
 *      bounce_size_limit), and always in delay and success notices (RET
 *      is about failures, RFC 3461 4.3).  A header longer than the limit
 *      is cut at a line end.  The bytes are carried unchanged, 8-bit ones
 *      too (the part then says Content-Transfer-Encoding: 8bit; with
 *      SMTPUTF8 and a UTF-8 header it is message/global[-headers], RFC
 *      6532 3.7).  content_fd < 0 leaves this part out (RFC 3462 allows
 *      it).  content_fd is read with pread(2) at env->content_offset;
 *      its file offset is not changed.
 *
 * Hostile data: reasons come from remote servers and addresses, ENVID
 * and ORCPT from clients.  Every such text is sanitized before use: CR,
 * LF and other control characters become spaces (so a reply cannot add
 * a header field or a MIME part), reasons keep only printable ASCII and
 * are cut to DSN_REASON_MAX, other texts to DSN_TEXT_MAX.  Header and
 * status fields are folded at white space to 78 columns where possible,
 * and never exceed 998 (RFC 5322 2.1.1).
 *
 * res_r (may be NULL) tells the caller how to queue the notice: the
 * number of recipients listed, whether the body has 8-bit octets (queue
 * it with BODY=8BITMIME) and whether an address is UTF-8 (queue it with
 * SMTPUTF8; the status part is then message/global-delivery-status with
 * "utf-8" address types, RFC 6533).
 */
#ifndef POSTA_DSN_H
#define POSTA_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"

#define DSN_SIZE_LIMIT_DEFAULT	50000	/* bounce_size_limit */
#define DSN_REASON_MAX		512	/* of one sanitized reason */
#define DSN_TEXT_MAX		512	/* address, ENVID, ORCPT, hostname */

enum dsn_kind {
	DSN_FAILURE,
	DSN_DELAY,
	DSN_SUCCESS,
};

struct dsn_info {
	const char *myhostname;	/* Reporting-MTA, From:, Message-ID */
	int64_t	 now;		/* Date:; 0 = time(NULL) */
	int64_t	 queue_lifetime;	/* delays: Will-Retry-Until is
				   arrival + this; 0 = no such field */
	uint64_t size_limit;	/* bigger originals: header only;
				   0 = DSN_SIZE_LIMIT_DEFAULT */
	const char *boundary;	/* first boundary to try, for tests;
				   NULL: random (the normal case) */
};

struct dsn_result {
	size_t	 nrcpt;		/* recipients listed */
	bool	 is_8bit;	/* queue with BODY=8BITMIME */
	bool	 smtputf8;	/* queue with SMTPUTF8 */
};

/*
 * dsn_queue - dsn_build() a notice about env and queue it durably as a
 * new message from the null sender to rcpt, in qdir's incoming/ (the
 * order of lib/queue.h: file fsync, rename, directory fsync).  Returns 1
 * queued (its ID in id_r, QUEUE_ID_LEN + 1 bytes), 0 when no recipient
 * wanted a notice, -1 on error (logged with env's ID).  Thread-safe.
 */
int	dsn_queue(const struct dsn_info *, const struct queue_env *env,
	    int content_fd, enum dsn_kind, const char *rcpt, const char *qdir,
	    char *id_r);

/* dsn_wanted - 1 if recipient idx goes into a notice of kind, else 0 */
int	dsn_wanted(const struct queue_env *env, size_t idx, enum dsn_kind);

/* dsn_build - append the notice to out; 1 built, 0 none wanted, -1 */
int	dsn_build(const struct dsn_info *info, const struct queue_env *env,
	    int content_fd, enum dsn_kind kind, struct buf *out,
	    struct dsn_result *res_r);

/* dsn_kind_name - "failure", "delay", "success" (for logs) */
const char *dsn_kind_name(enum dsn_kind);

#endif
