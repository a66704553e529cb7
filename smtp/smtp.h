/*
 * smtp - the smtp delivery agent: shared declarations
 *
 * main.c sets up (lib/server), reads smtp_conf and serves private/smtp
 * with lib/ipc; job.c handles one deliver request: the queue file, the
 * destination and its addresses (lib/dns, asynchronous), the results,
 * the answer and the log lines; conn.c is one SMTP connection, a state
 * machine on the event loop that runs the ESMTP dialogue and the mail
 * transaction for a job, and the cache of idle connections; tls.c is
 * the TLS policy; smtp_reply.c parses server replies; content.c encodes
 * the message for DATA.
 *
 * A job's recipients get their results from the server's replies (RCPT,
 * then the end of DATA).  Failures before a transaction starts
 * (connect, greeting, EHLO, STARTTLS, MAIL 4xx) are per address: the
 * job tries its next address, and when none is left the last failure
 * decides for every recipient still without a result.
 */
#ifndef POSTA_SMTP_H
#define POSTA_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "dns.h"
#include "ev.h"
#include "ipc.h"
#include "map.h"
#include "queue.h"

#define SMTP_RCPTS_MAX		1000	/* rcpt_index= per request */
#define SMTP_REASON_MAX		900	/* reason= per recipient */
#define SMTP_HOST_MAX		255
#define SMTP_HOSTS_MAX		50	/* MX hosts kept */
#define SMTP_ADDRS_MAX		100	/* addresses kept */
#define SMTP_MATCH_MAX		8	/* names in match= */
#define SMTP_FP_MAX		8	/* fingerprint= of one policy */
#define SMTP_CHUNK		(64 * 1024)	/* content read at once */
#define SMTP_OUT_HIGH		(256 * 1024)	/* stop encoding above */
#define SMTP_RELAY_MAX		(SMTP_HOST_MAX + 96)

enum smtp_tls_level {
	SMTP_TLS_NONE,
	SMTP_TLS_MAY,
	SMTP_TLS_ENCRYPT,
	SMTP_TLS_VERIFY,
};

struct smtp_conf {
	int	 connect_ms, helo_ms, mail_ms, rcpt_ms, rset_ms;
	int	 data_init_ms, data_xfer_ms, data_done_ms;
	int	 cache_ms;
	char	*helo_name;
	char	*myhostname;
	unsigned mx_address_limit;
	unsigned reuse_limit;
	unsigned max_sessions;
	size_t	 line_limit;
	enum smtp_tls_level tls_level;
	struct map **policy_maps;
	size_t	 npolicy_maps;
	SSL_CTX	*tls_ctx;
	struct sockaddr_storage bind_addr;
	socklen_t bind_len;		/* 0: no smtp_bind_address */
};

struct smtp_g {
	struct ev *ev;
	struct dns *dns;
	struct ipc_server *ipc;
	unsigned nactive;		/* jobs holding a session slot */
	unsigned njobs;			/* all jobs */
	bool	 is_stopping;
	bool	 is_drained;		/* the ipc server has no connection */
};

extern struct smtp_conf smtp_conf;
extern struct smtp_g smtp_g;

struct smtp_policy {
	enum smtp_tls_level level;
	char	 match[SMTP_MATCH_MAX][SMTP_HOST_MAX + 1];
	size_t	 nmatch;
	char	 fp[SMTP_FP_MAX][65];	/* upper-case hex, no colons */
	size_t	 nfp;
};

struct smtp_addr {
	int	 family;
	unsigned char ip[16];
	char	 text[64];		/* "192.0.2.1" */
	char	 host[SMTP_HOST_MAX + 1];	/* the name it came from */
	unsigned port;
};

enum smtp_result {
	SMTP_R_PENDING,
	SMTP_R_SENT,
	SMTP_R_DEFERRED,
	SMTP_R_FAILED,
};

struct smtp_rres {
	size_t	 idx;
	enum smtp_result result;
	bool	 is_accepted;		/* RCPT got 2xx in this transaction */
	bool	 dsn_passed;		/* sent to a server with DSN */
	char	 dsn[12];
	char	 reason[SMTP_REASON_MAX + 1];
	char	 relay[SMTP_RELAY_MAX + 1];
	char	 tls[128];
	double	 t_ready, t_done;	/* for delays= */
};

struct smtp_conn;

struct smtp_job {
	TAILQ_ENTRY(smtp_job) link;	/* waiting for a session slot */
	struct ipc_req *req;
	char	 id[QUEUE_ID_LEN + 1];
	char	 path[64];
	char	 dest[SMTP_HOST_MAX + 8];	/* cache key, lower case */
	char	 host[SMTP_HOST_MAX + 1];	/* domain or host */
	unsigned port;
	bool	 is_bracket;		/* [host]: no MX lookup */
	struct queue_env *env;
	int	 fd;
	struct smtp_rres *rr;
	size_t	 nrr;
	double	 arrival, t_req, t_start, t_ready;
	struct smtp_policy policy;

	/* finding addresses */
	struct dns_query *dq;
	int	 dns_type;		/* DNS_A or DNS_AAAA being asked */
	char	 (*hosts)[SMTP_HOST_MAX + 1];
	size_t	 nhosts, next_host;
	struct smtp_addr *addrs;
	size_t	 naddrs, next_addr;
	unsigned ntried;
	bool	 any_temp;		/* some failure was temporary */

	struct smtp_conn *conn;
	bool	 is_cached_conn;	/* conn came from the cache */
	bool	 is_waiting;		/* in the wait queue */

	/* the last failure of an address, for when none is left */
	bool	 has_err;
	char	 err_dsn[12];
	char	 err_text[SMTP_REASON_MAX + 1];
	char	 relay[SMTP_RELAY_MAX + 1];	/* of the current conn */
	char	 tls[128];
};

/* main.c */
void	smtp_stopping_check(void);
/* smtp_now - wall clock, seconds with microseconds */
double	smtp_now(void);

/* job.c */
int	smtp_job_deliver(struct ipc_req *, void *arg);
/* smtp_job_addr_failed - a conn before its transaction failed */
void	smtp_job_addr_failed(struct smtp_job *, const char *dsn,
	    bool retry_plain, const struct smtp_addr *, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* smtp_job_ready - the conn can start a transaction */
void	smtp_job_ready(struct smtp_job *);
/* smtp_job_conn - note the relay and TLS of job->conn for the log */
void	smtp_job_conn(struct smtp_job *);
/* smtp_job_rcpt - the result of rr[i] */
void	smtp_job_rcpt(struct smtp_job *, size_t i, enum smtp_result,
	    const char *dsn, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* smtp_job_rest - every recipient still pending */
void	smtp_job_rest(struct smtp_job *, enum smtp_result, const char *dsn,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* smtp_job_finished - the conn is done with the job */
void	smtp_job_finished(struct smtp_job *);
/* smtp_job_dequeue - a session slot came free: start a waiting job */
void	smtp_job_dequeue(void);
void	smtp_job_abort_waiting(void);

/* conn.c */
struct smtp_conn *smtp_conn_open(struct smtp_job *, const struct smtp_addr *,
	    bool no_tls);
/* smtp_conn_take - a cached connection to dest for job, or NULL */
struct smtp_conn *smtp_conn_take(const char *dest, struct smtp_job *);
void	smtp_conn_cache_close_all(void);
size_t	smtp_conn_count(void);
/* smtp_conn_abort - the job gives up its conn (closed) */
void	smtp_conn_abort(struct smtp_conn *);
/* smtp_conn_resume - a job took a cached conn: run its transaction */
void	smtp_conn_resume(struct smtp_conn *);
/* host[ip]:port and the TLS outcome ("none", "verified TLSv1.3 ...") */
const char *smtp_conn_relay(const struct smtp_conn *);
const char *smtp_conn_tls(const struct smtp_conn *);

/* tls.c */
int	smtp_tls_pre_drop(struct cfg *);
int	smtp_tls_level_parse(const char *, enum smtp_tls_level *);
/*
 * smtp_tls_policy - the policy for job's destination: 0, or -1 when a
 * table lookup failed (r holds the reason)
 */
int	smtp_tls_policy(struct smtp_job *, struct reply *r);
/* smtp_tls_policy_parse - a table value into p; 0 or -1 (*why_r) */
int	smtp_tls_policy_parse(const char *value, struct smtp_policy *p,
	    const char **why_r);
/* smtp_tls_names - the names the certificate must match, for addr */
size_t	smtp_tls_names(const struct smtp_job *, const struct smtp_addr *,
	    const char **names, size_t max);
/* smtp_tls_fp_ok - 1 if fp ("AB:CD:..") is one of the policy's */
int	smtp_tls_fp_ok(const struct smtp_policy *, const char *fp);
const char *smtp_tls_level_name(enum smtp_tls_level);

#endif
