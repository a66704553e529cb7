/*
 * local - the local delivery agent: shared declarations
 *
 * main.c sets up (lib/server) and serves private/local with lib/ipc's
 * server; request.c holds its handlers (deliver is answered later, when
 * the worker is done); pool.c runs deliveries in worker threads, each
 * with its own tables (a map is not thread-safe); deliver.c handles one
 * deliver request; expand.c glues lib/alias to alias_maps and the domain
 * lists; mailbox.c finds the user and writes the Maildir; forward.c
 * queues a new message for targets outside our domains.
 *
 * Everything in struct local_conf is read once at start, before the
 * threads exist, and never changes: the threads only read it.
 */
#ifndef POSTA_LOCAL_H
#define POSTA_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alias.h"
#include "ev.h"
#include "ipc.h"
#include "queue.h"
#include "reply.h"

#define LOCAL_RCPTS_MAX		1000	/* rcpt_index= per request */
#define LOCAL_REASON_MAX	200	/* reason= per recipient */
#define LOCAL_HEADER_MAX	(1024 * 1024)	/* scanned for Delivered-To */
#define LOCAL_DT_MAX		1000	/* Delivered-To headers kept */
#define LOCAL_QMGR_TIMEOUT_MS	1000	/* best-effort "new" to qmgr */
/* requests from qmgr (lib/ipc limits of private/local) */
#define LOCAL_MSG_MAX		(1024 * 1024)	/* bytes of a request */
#define LOCAL_ATTRS_MAX		(LOCAL_RCPTS_MAX + 16)
#define LOCAL_VALUE_MAX		4096	/* bytes of one value */

struct local_conf {
	char	*queue_dir;
	char	*mail_root;
	char	*delimiters;
	char	*alias_maps;
	char	*user_database;
	char	*myhostname;
	char	**mydest;		/* lower case, or a table */
	size_t	 nmydest;
	char	**virt;			/* lower case, or a table */
	size_t	 nvirt;
	uint64_t quota_default;		/* 0: none */
	unsigned workers;
};

extern struct local_conf local_conf;

/* the tables of one worker thread */
struct local_ctx {
	struct map **maps;		/* alias_maps */
	size_t	 nmaps;
	struct map **dmaps;		/* tables in mydestination */
	size_t	 ndmaps;
	struct map **vmaps;		/* in virtual_mailbox_domains */
	size_t	 nvmaps;
	struct userdb *udb;
	bool	 is_open;
};

enum local_result {
	LOCAL_SENT,
	LOCAL_DEFERRED,
	LOCAL_FAILED,
};

struct local_rres {
	size_t	 idx;
	enum local_result result;
	char	 dsn[12];
	char	 reason[LOCAL_REASON_MAX + 1];
};

/* one deliver request, from the loop to a worker and back */
struct local_job {
	struct local_job *next;
	struct ipc_req *req;		/* deferred; the loop's, not a worker's */
	char	 id[QUEUE_ID_LEN + 1];
	char	 path[64];
	struct local_rres *rr;		/* one per rcpt_index=, in order */
	size_t	 nrr;
	int	 status;		/* IPC_OK ... */
	char	 reason[256];		/* when status != IPC_OK */
};

/* the message being delivered, as the per-recipient code sees it */
struct local_msg {
	struct queue_env *env;
	int	 fd;			/* the queue file */
	char	**dt;			/* Delivered-To: values, lower case */
	size_t	 ndt;
	double	 arrival;		/* seconds, with microseconds */
};

/* main.c */
/* local_stopping_check - after SIGTERM, end once no job is left */
void	local_stopping_check(void);

/* request.c */
extern const struct ipc_handler local_handlers[];
/* local_request_done - on the loop: answer j's request, free j */
void	local_request_done(struct local_job *);

/* pool.c */
void	local_pool_start(struct ev *, unsigned nthreads);
void	local_pool_submit(struct local_job *);
/* local_pool_busy - jobs submitted and not yet handed back */
unsigned local_pool_busy(void);
void	local_pool_stop(void);
void	local_job_free(struct local_job **);

/* deliver.c */
void	local_deliver(struct local_ctx *, struct local_job *);
int	local_ctx_open(struct local_ctx *, struct reply *);
void	local_ctx_close(struct local_ctx *);
void	local_log(const struct local_msg *, const char *to,
	    const char *orig_to, const char *dsn, enum local_result,
	    const char *text);
bool	local_dt_has(const struct local_msg *, const char *key);

/* expand.c */
int	local_expand(struct local_ctx *, const char *rcpt,
	    struct alias_result *res, struct reply *r);
/* local_domain_class - ALIAS_D_LOCAL, _VIRTUAL or _REMOTE; 0 or -1 */
int	local_domain_class(struct local_ctx *, const char *domain,
	    enum alias_domain *class_r, struct reply *r);

/* mailbox.c */
enum local_result local_mailbox(struct local_ctx *, const struct local_msg *,
	    const struct alias_target *, struct reply *r);

/* forward.c */
int	local_forward(const struct local_msg *, size_t idx, const char *sender,
	    const struct alias_target *const *, size_t n, char *newid,
	    struct reply *r);
/*
 * local_bounce_members - some targets of recipient idx (a list) failed
 * while others were delivered: tell the list owner, or else the sender,
 * in an RFC 3464 notice naming the failed members (never the null
 * sender; NOTIFY honoured).  Failures are logged.
 */
void	local_bounce_members(const struct local_msg *, size_t idx,
	    const struct alias_target *const *t, const struct reply *why,
	    size_t n);

#endif
