/*
 * smtpd - the SMTP server: what the files of smtpd/ share
 *
 * One process serves many sessions on the lib/ev loop (lib/server
 * skeleton).  Each file holds one job:
 *
 *	main.c		settings into struct smtpd_conf, server_main()
 *	session.c	the session state machine, I/O, replies, error
 *			limits, timeouts, the command table, and the small
 *			commands (HELO EHLO MAIL RCPT RSET NOOP QUIT VRFY HELP)
 *	policy.c	who may send, to whom: local and virtual domains,
 *			users, aliases, relay domains, mynetworks, client
 *			certificates, restriction lists
 *	data.c		DATA and BDAT: content through lib/smtp_data into
 *			the queue writer, size limit while streaming, the
 *			Received: header
 *	auth.c		AUTH PLAIN and LOGIN against user_database, with
 *			failure delays and per-client counts
 *	tls.c		STARTTLS and implicit TLS (wrapper mode)
 *	queue.c		queue hand-off: fsync through lib/fsyncq, rename,
 *			directory fsync shared by every message completed
 *			at the same time (group commit), qmgr notification
 *
 * A session is freed only through smtpd_session_close(), which stops
 * its I/O at once and frees it after the current callbacks (ev_later).
 * Every reply goes through smtpd_reply(), which counts errors, delays
 * replies past the soft error limit and ends the session at the hard
 * one.
 */
#ifndef POSTA_SMTPD_H
#define POSTA_SMTPD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "cfg.h"
#include "dns.h"
#include "ev.h"
#include "queue.h"
#include "reply.h"
#include "server.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "stream.h"
#include "tls.h"
#include "userdb.h"

#define SMTPD_CMDS_PER_WAKEUP	64	/* then let other sessions run */
#define SMTPD_OUT_HIGH		(64 * 1024)	/* stop reading above */
#define SMTPD_CLOSE_GRACE_MS	5000	/* last reply flush */
#define SMTPD_HELO_MAX		255	/* kept for Received: and logs */
#define SMTPD_CLIENT_MAX	(DNS_NAME_MAX + 80)	/* "name[addr]" */

enum smtpd_tls_level {
	SMTPD_TLS_NONE,
	SMTPD_TLS_MAY,
	SMTPD_TLS_ENCRYPT,
};

/* what main.c read from the settings, for every session */
struct smtpd_conf {
	struct ev *ev;
	struct cfg *cfg;
	const char *myhostname;
	const char *banner;
	int	 timeout_ms;
	unsigned rcpt_limit;
	unsigned soft_error_limit, hard_error_limit;
	int	 error_sleep_ms;
	int	 auth_delay_ms;
	unsigned auth_limit;
	unsigned conn_limit;
	uint64_t size_limit;
	size_t	 line_max;
	bool	 local_submit;
	bool	 reject_bare_lf;
	bool	 sasl;
	bool	 tls_auth_only;
	bool	 wrappermode;
	enum smtpd_tls_level tls_level;
	SSL_CTX	*tls_ctx;		/* NULL: no TLS here */
	struct smtp_limits cmd_limits;
	struct userdb *users;		/* user_database */
	struct dns *dns;		/* NULL: no peer name lookup */
	bool	 stopping;
};

extern struct smtpd_conf smtpd;

enum smtpd_state {
	SS_CMD,		/* reading commands */
	SS_LOOKUP,	/* finding the client's name before the greeting */
	SS_AUTH,	/* reading an AUTH continuation line */
	SS_DATA,	/* reading DATA content */
	SS_BDAT,	/* reading the bytes of a BDAT chunk */
	SS_QUEUE,	/* waiting until the queue file is durable */
	SS_SLEEP,	/* holding back a reply (error or AUTH delay) */
	SS_TLS_FLUSH,	/* sending "220 Ready to start TLS" */
	SS_HANDSHAKE,	/* TLS handshake */
	SS_CLOSE,	/* sending the last reply, then close */
	SS_DEAD,	/* closed; freed after the current callbacks */
};

enum smtpd_auth_mech {
	SMTPD_AUTH_NONE,
	SMTPD_AUTH_PLAIN,
	SMTPD_AUTH_LOGIN,
};

/* per client address, in this process: connections and AUTH failures */
struct smtpd_client {
	char	 addr[64];
	unsigned nconn;
	unsigned auth_failures;
	int64_t	 last_failure;		/* ev_now() ms */
	struct smtpd_client *next;
};

struct smtpd_session {
	struct stream *st;
	enum smtpd_state state;
	struct ev_timer *timer;		/* idle timeout */
	struct ev_timer *sleep;		/* delayed reply */
	struct smtpd_session *prev, *next;	/* all sessions */

	/* the client */
	char	 client_name[DNS_NAME_MAX + 1];	/* verified, or "unknown" */
	struct dns_query *dnsq;		/* SS_LOOKUP */
	char	 client_addr[64];	/* "192.0.2.7", "uid=1000" */
	char	 client[SMTPD_CLIENT_MAX];	/* "name[addr]" for logs */
	struct sockaddr_storage sa;
	bool	 is_local;		/* the submit service: trusted */
	uid_t	 uid;			/* its peer uid when is_local */
	bool	 is_mynetworks;
	bool	 is_restricted;		/* in smtpd_restricted_networks */
	struct smtpd_client *cl;	/* NULL for local clients */

	/* the session */
	char	 helo[SMTPD_HELO_MAX + 1];
	bool	 has_helo, is_esmtp;
	bool	 is_tls;
	struct tls_info tls;
	bool	 is_cert_trusted;	/* fingerprint in the table */
	char	*auth_user;		/* authenticated as, or NULL */
	const char *auth_method;	/* "PLAIN", "LOGIN" */
	unsigned errors;
	bool	 must_close;		/* after the replies are out */
	int	 sleep_ms;		/* hold the next reply this long */
	struct buf delayed;		/* replies held back */
	struct smtp_cmd cmd;		/* the command being handled */
	int	 cur_verb;		/* waiting for its final reply; -1 */
	enum smtp_verb last_verb;	/* for "timeout after X" */
	bool	 is_wrapped;		/* implicit TLS: banner after it */
	bool	 later_pending;		/* an ev_later continuation queued */
	bool	 is_gone;		/* hang-up seen while not reading */

	/* AUTH exchange */
	enum smtpd_auth_mech auth_mech;
	int	 auth_step;
	unsigned auth_failures;		/* this session's (local clients) */
	char	*auth_login_user;

	/* the mail transaction */
	struct queue_env *env;		/* NULL: no MAIL yet */
	struct queue_writer *qw;	/* from DATA / first BDAT */
	struct smtp_data data;
	uint64_t msg_size;		/* client content bytes */
	bool	 data_too_big;
	bool	 data_io_failed;
	struct reply data_err;		/* queue write error */
	uint64_t bdat_left;		/* bytes of the chunk to read */
	bool	 bdat_last;
	bool	 bdat_used;		/* transaction uses BDAT */
	bool	 bdat_failed;		/* refuse the rest of the chunks */
	struct reply bdat_err;
	struct smtpd_session *gc_next;	/* group commit list */
	uint64_t dir_gen;		/* incoming/ fsync that covers qw */

	/* counts for the disconnect line */
	unsigned cnt_all[SMTP_AUTH + 1], cnt_ok[SMTP_AUTH + 1];
};

/* session.c */
void	smtpd_session_new(int fd, const struct server_peer *);
void	smtpd_session_close(struct smtpd_session *);
void	smtpd_session_step(struct smtpd_session *);
void	smtpd_sessions_stop(void);
unsigned smtpd_sessions_count(void);
void	smtpd_reply(struct smtpd_session *, int code, const char *dsn,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	smtpd_reply_r(struct smtpd_session *, const struct reply *);
/* smtpd_reply_raw - a line without an enhanced code (220, 334, 354) */
void	smtpd_reply_raw(struct smtpd_session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	smtpd_transaction_reset(struct smtpd_session *);
/* smtpd_session_resume - back to reading commands (or closing) */
void	smtpd_session_resume(struct smtpd_session *);
/* smtpd_banner - send the 220 greeting */
void	smtpd_banner(struct smtpd_session *);
/* smtpd_progress - the client did something: restart the idle timer */
void	smtpd_progress(struct smtpd_session *);
/* smtpd_log_reject - "NOQUEUE: reject: VERB from client: reply; ..." */
void	smtpd_log_reject(struct smtpd_session *, const char *verb,
	    const struct reply *, const char *rcpt);
/* smtpd_proto - "ESMTPSA" and friends (RFC 3848) */
const char *smtpd_proto(const struct smtpd_session *);
struct smtpd_client *smtpd_client_get(const char *addr);
void	smtpd_client_put(struct smtpd_client **);

/* policy.c */
int	smtpd_policy_init(struct cfg *, struct buf *errs);
int	smtpd_policy_is_mynetworks(const struct sockaddr *);
int	smtpd_policy_is_restricted(const struct sockaddr *);
/* smtpd_policy_client - MAIL: 1 may send, 0 refused (r) */
int	smtpd_policy_client(struct smtpd_session *, struct reply *r);
/* smtpd_policy_rcpt - 1 accepted, 0 refused (r), -1 temporary (r) */
int	smtpd_policy_rcpt(struct smtpd_session *, const char *addr,
	    struct reply *r);
/* smtpd_policy_cert - 1 if fingerprint is in the table, 0, -1 temp */
int	smtpd_policy_cert(const char *fingerprint);

/* data.c */
void	smtpd_cmd_data(struct smtpd_session *, struct smtp_cmd *);
void	smtpd_cmd_bdat(struct smtpd_session *, struct smtp_cmd *);
/* smtpd_data_input - SS_DATA/SS_BDAT: 1 progress, 0 need input */
int	smtpd_data_input(struct smtpd_session *);

/* auth.c */
void	smtpd_cmd_auth(struct smtpd_session *, struct smtp_cmd *);
void	smtpd_auth_line(struct smtpd_session *, const char *, size_t);
int	smtpd_auth_init(struct cfg *, struct buf *errs);
/* smtpd_auth_offered - 1 if AUTH is offered to this session now */
int	smtpd_auth_offered(const struct smtpd_session *);
void	smtpd_auth_reset(struct smtpd_session *);

/* tls.c */
int	smtpd_tls_pre_drop(struct cfg *);
void	smtpd_cmd_starttls(struct smtpd_session *, struct smtp_cmd *);
/* smtpd_tls_step - SS_TLS_FLUSH/SS_HANDSHAKE: 1 progress, 0 wait */
int	smtpd_tls_step(struct smtpd_session *);
/* smtpd_tls_wrapper_start - implicit TLS at connect; 0 or -1 */
int	smtpd_tls_wrapper_start(struct smtpd_session *);
/* smtpd_tls_offered - 1 if STARTTLS is offered to this session now */
int	smtpd_tls_offered(const struct smtpd_session *);

/* queue.c */
void	smtpd_queue_init(struct ev *, int nthreads);
void	smtpd_queue_done(void);
/* smtpd_queue_start - the writer for s->env; 0, or -1 (r) */
int	smtpd_queue_start(struct smtpd_session *, struct reply *r);
/* smtpd_queue_commit - seal, fsync, rename, dir fsync, then reply */
void	smtpd_queue_commit(struct smtpd_session *);
unsigned smtpd_queue_pending(void);

#endif
