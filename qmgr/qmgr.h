/*
 * qmgr - the queue manager's shared state (one process, one loop)
 *
 * Files by job:
 *   main.c      settings, the ipc server, start-up and stop
 *   index.c     the in-memory index of queue files: one struct qent per
 *               message qmgr knows of, by ID; the ready list (waiting to
 *               be activated) and the deferred set with next-try times
 *   scan.c      directory scans (incoming/, active/, deferred/), stale
 *               incoming/ID.tmp removal, the deferred timer
 *   message.c   activation (incoming|deferred -> active, queue_read,
 *               corrupt -> corrupt/), splitting recipients into jobs by
 *               transport and destination, the end of a message's round
 *   sched.c     the job scheduler: concurrency per transport and per
 *               destination
 *   deliver.c   the transport table and the delivery of one job: local
 *               (ipc to private/local), built-in discard and error,
 *               smtp (not there yet: deferred)
 *   bounce.c    notices: bounces, delay warnings, success reports, the
 *               double bounce to the postmaster
 *   request.c   the admin requests served on private/qmgr
 *
 * Message life: a file is in the ready list (state QE_READY, with the
 * directory it sits in), then active (QE_ACTIVE: in active/, a struct
 * qmsg holds its envelope and open fd), then either gone (every
 * recipient final), in deferred/ (QE_DEFERRED, its next try time is
 * the file's mtime, as Postfix does) or in hold/ (not indexed).
 */
#ifndef POSTA_QMGR_H
#define POSTA_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cfg.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_async.h"
#include "queue.h"
#include "resolve.h"

#define QMGR_ACTIVATE_BURST	64	/* activations per wake-up */
#define QMGR_TMP_MAX_AGE	86400	/* stale incoming/ID.tmp */
#define QMGR_DEFER_TICK_MIN	1000	/* ms between deferred timer runs */

enum qent_state {
	QE_READY,
	QE_ACTIVE,
	QE_DEFERRED,
};

struct qmsg;

struct qent {
	char	 id[QUEUE_ID_LEN + 1];
	enum qent_state state;
	enum queue_dir dir;		/* where the file is now */
	int64_t	 next_try;		/* QE_DEFERRED: wall seconds */
	bool	 seen;			/* marked by a scan */
	struct qmsg *msg;		/* QE_ACTIVE */
	struct qent *hnext;
	TAILQ_ENTRY(qent) ready;	/* QE_READY */
};
TAILQ_HEAD(qent_list, qent);

struct qjob;
TAILQ_HEAD(qjob_list, qjob);

struct qmsg {
	struct qent *qe;
	int	 fd;
	struct queue_env *env;
	int64_t	 last_attempt;		/* latest status time before now */
	unsigned jobs_left;
	bool	 want_delete, want_hold, want_requeue;
	bool	 want_retry;		/* a status could not be recorded */
	bool	*sent_unrecorded;	/* sent, not yet written (msg_record) */
	TAILQ_ENTRY(qmsg) link;
};
TAILQ_HEAD(qmsg_list, qmsg);

/* the transport table (deliver.c) */
enum qtransport_kind {
	QT_SERVICE,		/* ipc to a delivery agent */
	QT_DISCARD,
	QT_ERROR,
};

struct qtransport {
	const char *name;
	enum qtransport_kind kind;
	const char *service;	/* QT_SERVICE: socket, queue-relative */
};

struct qdest {
	char	*key;		/* "transport/destination" */
	unsigned busy;
	int64_t	 next_ok;	/* rate delay: no start before (ms, ev_now) */
	struct qdest *hnext;
};

struct qjob {
	struct qmsg *msg;
	const struct qtransport *tp;
	size_t	 tpi;		/* index in the transport table */
	char	 dest[RESOLVE_NEXTHOP_MAX + 1];
	char	 nexthop[RESOLVE_NEXTHOP_MAX + 1];
	size_t	*idx;		/* recipient indexes */
	size_t	 nidx, capidx;
	struct qdest *qd;	/* while running */
	struct ipc_async *call;
	TAILQ_ENTRY(qjob) link;
};

struct qmgr_conf {
	int64_t	 queue_run_delay;
	int64_t	 min_backoff, max_backoff;
	int64_t	 queue_lifetime, bounce_lifetime;
	int64_t	 delay_warning;
	int64_t	 ipc_timeout;
	size_t	 active_limit;
	uint64_t bounce_size_limit;
	const char *myhostname;
	const char *postmaster;
	const char *bounce_notice;	/* bounce_notice_recipient */
};

struct qmgr {
	struct ev *ev;
	struct cfg *cfg;
	struct qmgr_conf conf;
	struct resolve *res;
	struct ipc_server *ipc;
	/* index.c */
	struct qent **hash;
	size_t	 hsize, count;
	struct qent_list ready_list;
	size_t	 nready, ndeferred;
	/* active messages */
	struct qmsg_list active;
	size_t	 nactive;
	bool	 pump_pending;
	/* scan.c */
	struct ev_timer *scan_timer, *defer_timer;
	int64_t	 defer_timer_at;	/* wall seconds, 0 = not armed */
	/* sched.c */
	struct qjob_list waiting;
	struct qjob_list running;
	bool	 sched_pending;
	struct qdest **dhash;
	size_t	 dhsize;
	unsigned *tp_busy;
	unsigned *tp_limit, *tp_dest_limit, *tp_rcpt_limit;
	int64_t	*tp_rate_delay;		/* ms, 0 = none */
	struct cfg **tp_cfg;		/* the transport's own file, or NULL */
	struct ev_timer *rate_timer;
	int64_t	 rate_timer_at;
	bool	 stopping;
};

extern struct qmgr qm;

/* index.c */
void	index_init(void);
struct qent *index_get(const char *id);
struct qent *index_add(const char *id, enum qent_state, enum queue_dir);
void	index_del(struct qent *);
void	index_set_ready(struct qent *, enum queue_dir, bool at_head);
void	index_set_deferred(struct qent *, int64_t next_try);
void	index_set_active(struct qent *, struct qmsg *);
/* index_foreach - call fn on every entry (fn may delete its entry) */
void	index_foreach(void (*fn)(struct qent *, void *), void *arg);

/* scan.c */
void	scan_all(bool at_start);
void	scan_schedule(void);
void	scan_defer_arm(int64_t next_try);

/* message.c */
void	qmgr_pump(void);
void	msg_job_done(struct qjob *);
/* msg_move - rename the message's file between directories; 0 or -1 */
int	msg_move(const char *id, enum queue_dir from, enum queue_dir to);
/* msg_log_rcpt - "ID: to=<..>, relay=.., delay=.., dsn=.., status=.." */
void	msg_log_rcpt(const struct queue_env *, size_t idx, const char *relay,
	    const char *status, const char *dsn, const char *reason);
/* msg_record - append recipient idx's status durably, handling expiry
 * of temporary failures; logs when do_log; 0 or -1 */
int	msg_record(struct qmsg *, size_t idx, enum queue_rstatus,
	    const char *dsn, const char *reason, const char *relay,
	    bool do_log);

/* sched.c */
void	sched_init(void);
void	sched_add(struct qjob *);
void	sched_kick(void);
void	sched_done(struct qjob *);
void	qjob_free(struct qjob **);
void	sched_cancel_all(void);

/* deliver.c */
extern const struct qtransport qtransports[];
extern const size_t qtransports_n;
/* deliver_find - the table entry for a transport name, or NULL */
const struct qtransport *deliver_find(const char *name, size_t *index_r);
void	deliver_start(struct qjob *);

/* bounce.c */
/* bounce_final - notices for a message whose recipients are all final;
 * 0 done (or nothing to send), -1 could not queue a notice */
int	bounce_final(struct qmsg *);
/* bounce_round - a notice for recipients that failed in this round
 * while others stay deferred; 0 or -1 */
int	bounce_round(struct qmsg *);
/* bounce_delay - a delay warning if one is due now */
void	bounce_delay(struct qmsg *, int64_t now);

/* request.c */
extern const struct ipc_handler qmgr_handlers[];

#endif
