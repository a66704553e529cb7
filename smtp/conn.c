/*
 * conn - one SMTP client connection on the event loop
 *
 * A connection is a state machine:
 *
 *	CONNECTING -> GREETING -> EHLO [-> HELO] [-> STARTTLS -> HANDSHAKE
 *	-> EHLO] -> TXN (MAIL, RCPT..., DATA) -> BODY -> DOT -> RSET -> IDLE
 *
 * Nothing blocks: the connect is non-blocking, every state that waits
 * for the server has a timer (the smtp_*_timeout settings), and the
 * message body is pumped from the queue file in chunks while the socket
 * takes it.  Replies are read with lib/stream (lines of at most
 * SMTP_REPLY_LINE_MAX bytes) and parsed by smtp_reply.c.
 *
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
 * write and the replies are matched in order; without it each command
 * waits for the reply to the one before.  The replies decide per
 * recipient; a failure before the transaction (connect, greeting, EHLO,
 * STARTTLS, TLS policy, a 4xx to MAIL) goes back to the job, which
 * tries its next address.
 *
 * After a transaction the connection is reset (RSET) and kept in the
 * cache, keyed by the destination, for smtp_connection_cache_time and
 * at most smtp_connection_reuse_limit messages; a job for the same
 * destination takes it (after checking that the server has not closed
 * it or sent something unasked, e.g. a 421 on its own timeout).  A
 * connection that is closed gets a QUIT when it is still in step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "content.h"
#include "log.h"
#include "mem.h"
#include "smtp_reply.h"
#include "smtp.h"
#include "smtp_cmd.h"
#include "strnum.h"
#include "stream.h"
#include "tls.h"

#define CONN_LINES_PER_WAKEUP	256

#define EXT_PIPELINING	0x01
#define EXT_SIZE	0x02
#define EXT_8BITMIME	0x04
#define EXT_SMTPUTF8	0x08
#define EXT_DSN		0x10
#define EXT_STARTTLS	0x20

enum conn_state {
	C_CONNECTING,
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_HANDSHAKE,
	C_TXN,
	C_BODY,
	C_DOT,
	C_RSET,
	C_IDLE,
	C_DEAD,
};

struct smtp_conn {
	TAILQ_ENTRY(smtp_conn) link;	/* in the cache */
	struct smtp_job *job;
	int	 fd;
	struct stream *st;
	enum conn_state state;
	struct smtp_reply rp;
	struct smtp_addr addr;
	char	 dest[SMTP_HOST_MAX + 8];
	char	 name[SMTP_RELAY_MAX + 1];	/* host[ip] */
	char	 relay[SMTP_RELAY_MAX + 1];	/* host[ip]:port */
	struct ev_timer *timer;
	const char *stage;		/* "sending RCPT TO" */
	bool	 no_tls;		/* retry of a failed handshake */
	bool	 is_tls;
	bool	 in_cache;
	bool	 is_later;		/* ev_later pending */
	unsigned ext;
	uint64_t size_max;
	char	 tls[128];
	unsigned nmsgs;

	/* the transaction */
	size_t	*tx;			/* rr index of each RCPT sent */
	size_t	 ntx;
	size_t	 nsent, nreplies;	/* commands: MAIL, RCPTs, DATA */
	size_t	 naccepted;
	bool	 mail_ok, mail_temp;
	char	 mail_dsn[12];
	char	 mail_text[SMTP_REPLY_TEXT_MAX + 1];
	uint64_t off;			/* content bytes read */
	bool	 body_done;
	struct smtp_content enc;
	struct buf out;
};

static TAILQ_HEAD(, smtp_conn) cache = TAILQ_HEAD_INITIALIZER(cache);
static size_t nconns;

static void	conn_on_io(struct ev *, int, int, void *);
static void	conn_arm(struct smtp_conn *);
static void	conn_input(struct smtp_conn *);
static void	conn_ready(struct smtp_conn *);
static void	conn_txn_start(struct smtp_conn *);

size_t
smtp_conn_count(void)
{
	return nconns;
}

static void
conn_free_later(struct ev *ev, void *arg)
{
	struct smtp_conn *c = arg;

	(void)ev;
	smtp_reply_deinit(&c->rp);
	buf_deinit(&c->out);
	free(c->tx);
	free(c);
	nconns--;
	smtp_stopping_check();
}

static void
conn_timer(struct smtp_conn *c, int ms, const char *stage);

/* conn_close - end c; QUIT first when the dialogue is in step */
static void
conn_close(struct smtp_conn *c, bool quit)
{
	if (c->state == C_DEAD)
		return;
	ev_timer_cancel(smtp_g.ev, &c->timer);
	if (c->in_cache) {
		TAILQ_REMOVE(&cache, c, link);
		c->in_cache = false;
	}
	if (c->fd >= 0)
		ev_fd_clear(smtp_g.ev, c->fd);
	if (c->st != NULL) {
		if (quit && stream_puts(c->st, "QUIT\r\n") == 0)
			(void)stream_flush(c->st);
		stream_free(&c->st);
	} else if (c->fd >= 0)
		(void)close(c->fd);
	c->fd = -1;
	c->state = C_DEAD;
	if (c->job != NULL && c->job->conn == c)
		c->job->conn = NULL;
	c->job = NULL;
	ev_later(smtp_g.ev, conn_free_later, c);
}

static void
conn_on_timeout(struct ev *ev, void *arg);

static void
conn_timer(struct smtp_conn *c, int ms, const char *stage)
{
	ev_timer_cancel(smtp_g.ev, &c->timer);
	c->stage = stage;
	c->timer = ev_timer_add(smtp_g.ev, ms, conn_on_timeout, c);
}

/*
 * conn_fail - the address failed before a transaction: close c and let
 * the job try its next address
 */
static void
conn_fail(struct smtp_conn *c, const char *dsn, bool quit, bool retry_plain,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
conn_fail(struct smtp_conn *c, const char *dsn, bool quit, bool retry_plain,
    const char *fmt, ...)
{
	struct smtp_job *job = c->job;
	struct smtp_addr addr = c->addr;
	char text[SMTP_REASON_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_close(c, quit);
	if (job != NULL)
		smtp_job_addr_failed(job, dsn, retry_plain, &addr, "%s", text);
}

/* conn_txn_end - the transaction is over; keep c for reuse if in step */
static void
conn_txn_end(struct smtp_conn *c, bool in_step)
{
	struct smtp_job *job = c->job;

	c->job = NULL;
	if (job != NULL)
		job->conn = NULL;
	c->nmsgs++;
	if (in_step && !smtp_g.is_stopping && smtp_conf.cache_ms > 0 &&
	    c->nmsgs < smtp_conf.reuse_limit &&
	    stream_puts(c->st, "RSET\r\n") == 0 && stream_flush(c->st) >= 0) {
		c->state = C_RSET;
		conn_timer(c, smtp_conf.rset_ms, "sending RSET");
		TAILQ_INSERT_TAIL(&cache, c, link);
		c->in_cache = true;
		conn_arm(c);
	} else
		conn_close(c, in_step);
	if (job != NULL)
		smtp_job_finished(job);
}

/*
 * conn_txn_fail - the transaction broke (lost connection, timeout, bad
 * reply): every recipient without a result is deferred
 */
static void
conn_txn_fail(struct smtp_conn *c, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conn_txn_fail(struct smtp_conn *c, const char *dsn, const char *fmt, ...)
{
	struct smtp_job *job = c->job;
	char text[SMTP_REASON_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (job != NULL)
		smtp_job_rest(job, SMTP_R_DEFERRED, dsn, "%s", text);
	c->job = NULL;
	conn_close(c, false);
	if (job != NULL) {
		job->conn = NULL;
		smtp_job_finished(job);
	}
}

/* conn_in_txn - 1 once the server has accepted MAIL for a job */
static int
conn_in_txn(const struct smtp_conn *c)
{
	return c->job != NULL && (c->state == C_BODY || c->state == C_DOT ||
	    (c->state == C_TXN && c->mail_ok));
}

/*
 * conn_broken_how - lost connection, timeout or a bad reply: "WHAT NAME
 * HOW while STAGE" (Postfix's words: "conversation with NAME timed out
 * while sending end of data", "lost connection with NAME while ...")
 */
static void
conn_broken_how(struct smtp_conn *c, const char *what, const char *how)
{
	if (c->state == C_IDLE || c->state == C_RSET) {
		struct smtp_job *job = c->job;

		/* a cached connection: the waiting job starts over */
		c->job = NULL;
		conn_close(c, false);
		if (job != NULL)
			smtp_job_addr_failed(job, "4.4.2", false, NULL,
			    "cached connection lost");
		return;
	}
	if (conn_in_txn(c))
		conn_txn_fail(c, "4.4.2", "%s %s%s while %s", what, c->name,
		    how, c->stage);
	else if (c->state == C_CONNECTING)
		conn_fail(c, "4.4.1", false, false, "connect to %s: %s",
		    c->relay, what);
	else
		conn_fail(c, "4.4.2", false, false, "%s %s%s while %s", what,
		    c->name, how, c->stage);
}

static void
conn_broken(struct smtp_conn *c, const char *what)
{
	conn_broken_how(c, what, "");
}

static void
conn_on_timeout(struct ev *ev, void *arg)
{
	struct smtp_conn *c = arg;

	(void)ev;
	c->timer = NULL;
	if (c->state == C_IDLE && c->job == NULL) {
		conn_close(c, true);
		return;
	}
	if (c->state == C_CONNECTING) {
		conn_broken(c, "Connection timed out");
		return;
	}
	conn_broken_how(c, "conversation with", " timed out");
}

/* ---- output ------------------------------------------------------------ */

static int
conn_send(struct smtp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
conn_send(struct smtp_conn *c, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		log_panic("smtp: command too long");
	log_debug("> %s: %s", c->name, line);
	memcpy(line + n, "\r\n", 3);
	return stream_write(c->st, line, (size_t)n + 2);
}

/* ---- connecting -------------------------------------------------------- */

static int
conn_sockaddr(const struct smtp_addr *a, struct sockaddr_storage *ss,
    socklen_t *len_r)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)a->port);
		memcpy(&sin->sin_addr, a->ip, 4);
		*len_r = sizeof(*sin);
		return 0;
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)a->port);
		memcpy(&sin6->sin6_addr, a->ip, 16);
		*len_r = sizeof(*sin6);
		return 0;
	}
	return -1;
}

struct smtp_conn *
smtp_conn_open(struct smtp_job *job, const struct smtp_addr *a, bool no_tls)
{
	struct smtp_conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t len;

	nconns++;
	c->fd = -1;
	c->addr = *a;
	c->no_tls = no_tls;
	c->job = job;
	job->conn = c;
	smtp_reply_init(&c->rp);
	buf_init(&c->out, 0);
	(void)snprintf(c->dest, sizeof(c->dest), "%s", job->dest);
	(void)snprintf(c->name, sizeof(c->name), "%s[%s]", a->host, a->text);
	(void)snprintf(c->relay, sizeof(c->relay), "%s[%s]:%u", a->host,
	    a->text, a->port);
	c->state = C_CONNECTING;
	c->stage = "connecting";
	if (conn_sockaddr(a, &ss, &len) < 0 ||
	    (c->fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0) {
		c->state = C_CONNECTING;
		conn_timer(c, 0, "connecting");	/* fails from the loop */
		return c;
	}
	if (smtp_conf.bind_len > 0 &&
	    smtp_conf.bind_addr.ss_family == a->family &&
	    bind(c->fd, (struct sockaddr *)&smtp_conf.bind_addr,
	    smtp_conf.bind_len) < 0)
		log_warn("smtp_bind_address: bind: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&ss, len) < 0 &&
	    errno != EINPROGRESS && errno != EINTR) {
		/* report from the loop, never inside the caller */
		(void)close(c->fd);
		c->fd = -1;
	}
	conn_timer(c, c->fd < 0 ? 0 : smtp_conf.connect_ms, "connecting");
	if (c->fd >= 0 && ev_fd_set(smtp_g.ev, c->fd, EV_WRITE, conn_on_io,
	    c) < 0)
		log_fatal("ev_fd_set: %s", strerror(errno));
	return c;
}

static void
conn_connected(struct smtp_conn *c)
{
	struct stream_limits lim;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		conn_broken(c, strerror(err));
		return;
	}
	memset(&lim, 0, sizeof(lim));
	lim.line_max = SMTP_REPLY_LINE_MAX;
	lim.read_timeout = smtp_conf.helo_ms;
	lim.write_timeout = smtp_conf.data_xfer_ms;
	lim.out_max = SMTP_OUT_HIGH + 6 * SMTP_CHUNK;
	if ((c->st = stream_new(c->fd, &lim, 0)) == NULL) {
		conn_broken(c, strerror(errno));
		return;
	}
	c->state = C_GREETING;
	(void)snprintf(c->tls, sizeof(c->tls), "none");
	smtp_job_conn(c->job);
	conn_timer(c, smtp_conf.helo_ms,
	    "receiving the initial server greeting");
	conn_arm(c);
}

/* ---- the dialogue before MAIL --------------------------------------- */

/* conn_loops - 1 if the first word of the reply names this host */
static int
conn_loops(const struct smtp_conn *c)
{
	const char *l = smtp_reply_line(&c->rp, 0);
	size_t n = strcspn(l, " \t");
	size_t mlen = strlen(smtp_conf.myhostname);

	return n == mlen && mlen > 0 &&
	    strncasecmp(l, smtp_conf.myhostname, n) == 0;
}

static void
conn_loop_fail(struct smtp_conn *c)
{
	struct smtp_job *job = c->job;

	if (job != NULL)
		smtp_job_rest(job, SMTP_R_FAILED, "5.4.6", "mail for %s loops "
		    "back to myself", job->host);
	c->job = NULL;
	conn_close(c, true);
	if (job != NULL) {
		job->conn = NULL;
		smtp_job_finished(job);
	}
}

static void
conn_ehlo_parse(struct smtp_conn *c)
{
	unsigned long long v;
	const char *l;
	char kw[32];
	size_t i, n;

	c->ext = 0;
	c->size_max = 0;
	for (i = 1; i < c->rp.nlines; i++) {
		l = smtp_reply_line(&c->rp, i);
		n = strcspn(l, " =");
		if (n == 0 || n >= sizeof(kw))
			continue;
		memcpy(kw, l, n);
		kw[n] = '\0';
		if (strcasecmp(kw, "PIPELINING") == 0)
			c->ext |= EXT_PIPELINING;
		else if (strcasecmp(kw, "8BITMIME") == 0)
			c->ext |= EXT_8BITMIME;
		else if (strcasecmp(kw, "SMTPUTF8") == 0)
			c->ext |= EXT_SMTPUTF8;
		else if (strcasecmp(kw, "DSN") == 0)
			c->ext |= EXT_DSN;
		else if (strcasecmp(kw, "STARTTLS") == 0)
			c->ext |= EXT_STARTTLS;
		else if (strcasecmp(kw, "SIZE") == 0) {
			c->ext |= EXT_SIZE;
			if (l[n] == ' ' && str_to_uint(l + n + 1, 0,
			    UINT64_MAX, &v) == 0)
				c->size_max = v;
		}
	}
}

static void
conn_send_ehlo(struct smtp_conn *c)
{
	(void)conn_send(c, "EHLO %s", smtp_conf.helo_name);
	c->state = C_EHLO;
	conn_timer(c, smtp_conf.helo_ms, "performing the EHLO handshake");
}

/* conn_after_helo - STARTTLS as the policy says, or go on */
static void
conn_after_helo(struct smtp_conn *c)
{
	enum smtp_tls_level level = c->job->policy.level;

	if (!c->is_tls && level != SMTP_TLS_NONE && !c->no_tls &&
	    (c->ext & EXT_STARTTLS) != 0 && smtp_conf.tls_ctx != NULL) {
		(void)conn_send(c, "STARTTLS");
		c->state = C_STARTTLS;
		conn_timer(c, smtp_conf.helo_ms, "sending STARTTLS");
		return;
	}
	if (!c->is_tls && level >= SMTP_TLS_ENCRYPT) {
		conn_fail(c, "4.7.4", true, false, "TLS is required, but was "
		    "not offered by host %s", c->name);
		return;
	}
	conn_ready(c);
}

static void
conn_starttls(struct smtp_conn *c)
{
	const char *names[SMTP_MATCH_MAX];
	size_t n, i;
	int r;

	if (stream_starttls(c->st, smtp_conf.tls_ctx, false) < 0) {
		conn_fail(c, "4.7.5", false, false, "cannot start TLS with "
		    "%s: %s", c->name, stream_error(c->st));
		return;
	}
	n = smtp_tls_names(c->job, &c->addr, names, SMTP_MATCH_MAX);
	r = n > 0 ? stream_tls_set_host(c->st, names[0],
	    STREAM_TLS_VERIFY_HOST) : 0;
	for (i = 1; r == 0 && i < n; i++)
		if (SSL_add1_host(stream_ssl(c->st), names[i]) != 1)
			r = -1;
	if (r < 0) {
		conn_fail(c, "4.7.5", false, false, "cannot check the names "
		    "of %s: %s", c->name, stream_error(c->st));
		return;
	}
	c->state = C_HANDSHAKE;
	conn_timer(c, smtp_conf.helo_ms, "performing the TLS handshake");
}

/* conn_tls_done - judge the certificate by the policy */
static void
conn_tls_done(struct smtp_conn *c)
{
	const struct smtp_policy *p = &c->job->policy;
	struct tls_info ti;
	const char *cls;
	bool is_verified;

	if (tls_info_get(stream_ssl(c->st), &ti) < 0)
		memset(&ti, 0, sizeof(ti));
	if (p->nfp > 0)
		is_verified = ti.has_peer_cert &&
		    smtp_tls_fp_ok(p, ti.peer_fingerprint);
	else
		is_verified = ti.is_peer_verified;
	if (is_verified)
		cls = "verified";
	else if (!ti.has_peer_cert)
		cls = "anonymous";
	else if (p->nfp == 0 &&
	    (ti.verify_result == X509_V_ERR_HOSTNAME_MISMATCH ||
	    ti.verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH))
		cls = "trusted";
	else
		cls = "untrusted";
	(void)snprintf(c->tls, sizeof(c->tls), "%s %s %s", cls, ti.version,
	    ti.cipher);
	c->is_tls = true;
	log_info("%c%s TLS connection established to %s: %s with cipher %s "
	    "(%d/%d bits)%s%s", cls[0] - 'a' + 'A', cls + 1, c->relay,
	    ti.version, ti.cipher, ti.bits, ti.bits,
	    ti.has_peer_cert ? " fingerprint=" : "", ti.peer_fingerprint);
	if (p->level == SMTP_TLS_VERIFY && !is_verified) {
		log_info("server certificate of %s not verified: %s", c->relay,
		    p->nfp > 0 ? "fingerprint mismatch" : ti.has_peer_cert ?
		    X509_verify_cert_error_string(ti.verify_result) :
		    "no certificate");
		conn_fail(c, "4.7.5", true, false, "Server certificate not "
		    "verified");
		return;
	}
	/* RFC 3207 4.2: what the server said before TLS is forgotten */
	conn_send_ehlo(c);
	conn_arm(c);
}

static void
conn_handshake(struct smtp_conn *c)
{
	int r;

	r = stream_handshake(c->st);
	if (r == 0) {
		conn_arm(c);
		return;
	}
	if (r > 0) {
		conn_tls_done(c);
		return;
	}
	if (c->job->policy.level == SMTP_TLS_MAY) {
		log_info("TLS handshake failed with %s: %s; trying again "
		    "without TLS", c->relay, stream_error(c->st));
		conn_fail(c, "4.7.5", false, true, "TLS handshake failed with "
		    "%s: %s", c->name, stream_error(c->st));
		return;
	}
	conn_fail(c, "4.7.5", false, false, "TLS handshake failed with %s: %s",
	    c->name, stream_error(c->st));
}

static void
conn_ready(struct smtp_conn *c)
{
	if (!c->is_tls)
		(void)snprintf(c->tls, sizeof(c->tls), "none");
	smtp_job_ready(c->job);
	conn_txn_start(c);
}

/* ---- the transaction ------------------------------------------------- */

/* conn_xtext_ok - safe to put on a command line as an xtext value */
static int
conn_xtext_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > SMTP_XTEXT_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == '=' ||
		    s[i] == '<' || s[i] == '>')
			return 0;
	return 1;
}

/* conn_addr_ok - an address from the queue file, safe in a command */
static int
conn_addr_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x21 || *s == '<' || *s == '>' ||
		    *s == 0x7f)
			return 0;
	return 1;
}

static void
conn_send_mail(struct smtp_conn *c)
{
	const struct queue_env *env = c->job->env;
	char params[1200];
	size_t n = 0;

	params[0] = '\0';
#define ADD(...) do {							\
	int k_ = snprintf(params + n, sizeof(params) - n, __VA_ARGS__);	\
	if (k_ > 0 && (size_t)k_ < sizeof(params) - n)			\
		n += (size_t)k_;					\
} while (0)
	if (c->ext & EXT_SIZE)
		ADD(" SIZE=%llu", (unsigned long long)env->content_size);
	if (env->body == SMTP_BODY_8BITMIME && (c->ext & EXT_8BITMIME))
		ADD(" BODY=8BITMIME");
	if (env->smtputf8 && (c->ext & EXT_SMTPUTF8))
		ADD(" SMTPUTF8");
	if (c->ext & EXT_DSN) {
		if (env->ret == SMTP_RET_FULL)
			ADD(" RET=FULL");
		else if (env->ret == SMTP_RET_HDRS)
			ADD(" RET=HDRS");
		if (env->envid != NULL && conn_xtext_ok(env->envid))
			ADD(" ENVID=%s", env->envid);
	}
	(void)conn_send(c, "MAIL FROM:<%s>%s", env->sender, params);
}

static void
conn_send_rcpt(struct smtp_conn *c, size_t k)
{
	const struct queue_rcpt *r =
	    &c->job->env->rcpt[c->job->rr[c->tx[k]].idx];
	char params[700];
	size_t n = 0;
	unsigned nt = r->notify;

	params[0] = '\0';
	if (c->ext & EXT_DSN) {
		if (nt & SMTP_NOTIFY_NEVER)
			ADD(" NOTIFY=NEVER");
		else if (nt != 0)
			ADD(" NOTIFY=%s%s%s%s%s",
			    nt & SMTP_NOTIFY_SUCCESS ? "SUCCESS" : "",
			    (nt & SMTP_NOTIFY_SUCCESS) &&
			    (nt & (SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)) ?
			    "," : "",
			    nt & SMTP_NOTIFY_FAILURE ? "FAILURE" : "",
			    (nt & SMTP_NOTIFY_FAILURE) &&
			    (nt & SMTP_NOTIFY_DELAY) ? "," : "",
			    nt & SMTP_NOTIFY_DELAY ? "DELAY" : "");
		if (r->orcpt != NULL && conn_xtext_ok(r->orcpt) &&
		    strchr(r->orcpt, ';') != NULL)
			ADD(" ORCPT=%s", r->orcpt);
	}
#undef ADD
	(void)conn_send(c, "RCPT TO:<%s>%s", r->addr, params);
}

static void
conn_txn_start(struct smtp_conn *c)
{
	struct smtp_job *job = c->job;
	const struct queue_env *env = job->env;
	size_t i;

	c->nsent = c->nreplies = c->naccepted = 0;
	c->mail_ok = c->mail_temp = false;
	c->body_done = false;
	c->off = 0;
	free(c->tx);
	c->tx = xcalloc(job->nrr, sizeof(*c->tx));
	c->ntx = 0;
	if (!conn_addr_ok(env->sender) && *env->sender != '\0') {
		smtp_job_rest(job, SMTP_R_FAILED, "5.1.7", "bad sender address "
		    "syntax in the queue file");
		conn_txn_end(c, true);
		return;
	}
	for (i = 0; i < job->nrr; i++) {
		if (job->rr[i].result != SMTP_R_PENDING)
			continue;
		if (!conn_addr_ok(env->rcpt[job->rr[i].idx].addr)) {
			smtp_job_rcpt(job, i, SMTP_R_FAILED, "5.1.3", "bad "
			    "recipient address syntax");
			continue;
		}
		job->rr[i].is_accepted = false;
		c->tx[c->ntx++] = i;
	}
	if (c->ntx == 0) {
		conn_txn_end(c, true);
		return;
	}
	if (env->smtputf8 && (c->ext & EXT_SMTPUTF8) == 0) {
		smtp_job_rest(job, SMTP_R_FAILED, "5.6.7", "SMTPUTF8 is "
		    "required, but was not offered by host %s", c->name);
		conn_txn_end(c, true);
		return;
	}
	if ((c->ext & EXT_SIZE) && c->size_max > 0 &&
	    env->content_size > c->size_max) {
		smtp_job_rest(job, SMTP_R_FAILED, "5.3.4", "message size %llu "
		    "exceeds size limit %llu of server %s",
		    (unsigned long long)env->content_size,
		    (unsigned long long)c->size_max, c->name);
		conn_txn_end(c, true);
		return;
	}
	c->state = C_TXN;
	conn_send_mail(c);
	c->nsent = 1;
	if (c->ext & EXT_PIPELINING) {
		for (i = 0; i < c->ntx; i++)
			conn_send_rcpt(c, i);
		(void)conn_send(c, "DATA");
		c->nsent = c->ntx + 2;
	}
	conn_timer(c, smtp_conf.mail_ms, "sending MAIL FROM");
	if (stream_flush(c->st) < 0) {
		conn_broken(c, "lost connection with");
		return;
	}
	conn_arm(c);
}

static void
conn_body_start(struct smtp_conn *c)
{
	smtp_content_init(&c->enc, smtp_conf.line_limit);
	c->state = C_BODY;
	conn_timer(c, smtp_conf.data_xfer_ms, "sending message body");
}

/* conn_pump - encode more of the body while the socket takes it */
static void
conn_pump(struct smtp_conn *c)
{
	const struct queue_env *env = c->job->env;
	char chunk[SMTP_CHUNK];
	uint64_t left;
	size_t want;
	ssize_t n;
	int r;

	for (;;) {
		r = stream_flush(c->st);
		if (r < 0) {
			conn_broken(c, "lost connection with");
			return;
		}
		if (stream_out_len(c->st) >= SMTP_OUT_HIGH)
			break;
		if (c->body_done) {
			if (r == 0)
				break;
			c->state = C_DOT;
			conn_timer(c, smtp_conf.data_done_ms, "sending end of "
			    "data -- message may be sent more than once");
			break;
		}
		left = env->content_size - c->off;
		if (left == 0) {
			buf_reset(&c->out);
			smtp_content_end(&c->enc, &c->out);
			c->body_done = true;
		} else {
			want = left < sizeof(chunk) ? (size_t)left :
			    sizeof(chunk);
			n = pread(c->job->fd, chunk, want,
			    (off_t)(env->content_offset + c->off));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				log_warn("%s: read %s: %s", c->job->id,
				    c->job->path, n < 0 ? strerror(errno) :
				    "file is shorter than its envelope says");
				conn_txn_fail(c, "4.3.0", "cannot read the "
				    "queue file");
				return;
			}
			c->off += (uint64_t)n;
			buf_reset(&c->out);
			smtp_content_run(&c->enc, chunk, (size_t)n, &c->out);
		}
		if (stream_write(c->st, buf_cstr(&c->out), buf_len(&c->out)) <
		    0)
			log_panic("smtp: stream output over its limit");
	}
	/* a peer that takes no data for data_xfer_timeout is given up */
	if (c->state == C_BODY)
		conn_timer(c, smtp_conf.data_xfer_ms, "sending message body");
	conn_arm(c);
}

/* conn_said - "host X[ip] said: REPLY (in reply to CMD command)" */
#define SAID_FMT	"host %s said: %s (in reply to %s command)"

static void
conn_txn_next(struct smtp_conn *c)
{
	/* without PIPELINING: the next command, or the end */
	if (c->nreplies < c->ntx + 1) {
		conn_send_rcpt(c, c->nreplies - 1);
		c->nsent++;
		conn_timer(c, smtp_conf.rcpt_ms, "sending RCPT TO");
		return;
	}
	if (c->naccepted > 0) {
		(void)conn_send(c, "DATA");
		c->nsent++;
		conn_timer(c, smtp_conf.data_init_ms, "sending DATA command");
		return;
	}
	conn_txn_end(c, true);
}

static void
conn_txn_reply(struct smtp_conn *c)
{
	struct smtp_job *job = c->job;
	const struct smtp_reply *rp = &c->rp;
	bool pipelined = (c->ext & EXT_PIPELINING) != 0;
	size_t k = c->nreplies++;
	size_t i;

	if (k >= c->nsent) {
		conn_txn_fail(c, "4.5.0", "host %s sent a reply nobody asked "
		    "for: %s", c->name, rp->text);
		return;
	}
	if (k == 0) {		/* MAIL */
		if (rp->code >= 200 && rp->code < 300)
			c->mail_ok = true;
		else if (rp->code < 500) {
			c->mail_temp = true;
			(void)snprintf(c->mail_dsn, sizeof(c->mail_dsn), "%s",
			    smtp_reply_dsn(rp));
			(void)snprintf(c->mail_text, sizeof(c->mail_text),
			    "%s", rp->text);
		} else
			smtp_job_rest(job, SMTP_R_FAILED, smtp_reply_dsn(rp),
			    SAID_FMT, c->name, rp->text, "MAIL FROM");
		if (pipelined) {
			conn_timer(c, smtp_conf.rcpt_ms, "sending RCPT TO");
			return;
		}
		if (c->mail_temp) {
			conn_fail(c, c->mail_dsn, true, false, SAID_FMT,
			    c->name, c->mail_text, "MAIL FROM");
			return;
		}
		if (!c->mail_ok) {
			conn_txn_end(c, true);
			return;
		}
		conn_txn_next(c);
		return;
	}
	if (k <= c->ntx) {	/* RCPT */
		i = c->tx[k - 1];
		if (c->mail_ok) {
			if (rp->code >= 200 && rp->code < 300) {
				job->rr[i].is_accepted = true;
				c->naccepted++;
			} else
				smtp_job_rcpt(job, i, rp->code < 500 ?
				    SMTP_R_DEFERRED : SMTP_R_FAILED,
				    smtp_reply_dsn(rp), SAID_FMT, c->name,
				    rp->text, "RCPT TO");
		}
		if (pipelined) {
			if (k == c->ntx)
				conn_timer(c, smtp_conf.data_init_ms,
				    "sending DATA command");
			return;
		}
		conn_txn_next(c);
		return;
	}
	/* DATA */
	if (rp->code == 354) {
		if (!c->mail_ok || c->naccepted == 0) {
			/* out of step: a message with no recipient */
			if (c->mail_temp) {
				conn_fail(c, c->mail_dsn, false, false,
				    SAID_FMT, c->name, c->mail_text,
				    "MAIL FROM");
				return;
			}
			c->job = NULL;
			job->conn = NULL;
			conn_close(c, false);
			smtp_job_finished(job);
			return;
		}
		conn_body_start(c);
		conn_pump(c);
		return;
	}
	if (c->mail_temp) {
		conn_fail(c, c->mail_dsn, true, false, SAID_FMT, c->name,
		    c->mail_text, "MAIL FROM");
		return;
	}
	for (i = 0; i < job->nrr; i++)
		if (job->rr[i].is_accepted &&
		    job->rr[i].result == SMTP_R_PENDING)
			smtp_job_rcpt(job, i, rp->code < 500 ?
			    SMTP_R_DEFERRED : SMTP_R_FAILED,
			    smtp_reply_dsn(rp), SAID_FMT, c->name, rp->text,
			    "DATA");
	conn_txn_end(c, true);
}

static void
conn_dot_reply(struct smtp_conn *c)
{
	struct smtp_job *job = c->job;
	const struct smtp_reply *rp = &c->rp;
	size_t i;

	for (i = 0; i < job->nrr; i++) {
		if (!job->rr[i].is_accepted ||
		    job->rr[i].result != SMTP_R_PENDING)
			continue;
		if (rp->code >= 200 && rp->code < 300) {
			/* RFC 3461 4: with DSN the next hop sends the
			 * notices; without, a success notice says relayed */
			job->rr[i].dsn_passed = (c->ext & EXT_DSN) != 0;
			smtp_job_rcpt(job, i, SMTP_R_SENT, smtp_reply_dsn(rp),
			    "%s", rp->text);
		}
		else
			smtp_job_rcpt(job, i, rp->code < 500 ?
			    SMTP_R_DEFERRED : SMTP_R_FAILED,
			    smtp_reply_dsn(rp), SAID_FMT, c->name, rp->text,
			    "end of DATA");
	}
	conn_txn_end(c, true);
}

/* ---- replies ------------------------------------------------------------ */

static void
conn_reply(struct smtp_conn *c)
{
	const struct smtp_reply *rp = &c->rp;
	bool ok = rp->code >= 200 && rp->code < 300;

	log_debug("< %s: %s", c->name, rp->text);
	switch (c->state) {
	case C_GREETING:
		if (!ok) {
			conn_fail(c, smtp_reply_dsn(rp), true, false, "host %s "
			    "refused to talk to me: %s", c->name, rp->text);
			return;
		}
		if (conn_loops(c)) {
			conn_loop_fail(c);
			return;
		}
		conn_send_ehlo(c);
		return;
	case C_EHLO:
		if (ok) {
			if (conn_loops(c)) {
				conn_loop_fail(c);
				return;
			}
			conn_ehlo_parse(c);
			conn_after_helo(c);
			return;
		}
		if (rp->code >= 500 && !c->is_tls) {
			(void)conn_send(c, "HELO %s", smtp_conf.helo_name);
			c->state = C_HELO;
			conn_timer(c, smtp_conf.helo_ms,
			    "performing the HELO handshake");
			return;
		}
		conn_fail(c, smtp_reply_dsn(rp), true, false, SAID_FMT,
		    c->name, rp->text, "EHLO");
		return;
	case C_HELO:
		if (!ok) {
			conn_fail(c, smtp_reply_dsn(rp), true, false, SAID_FMT,
			    c->name, rp->text, "HELO");
			return;
		}
		c->ext = 0;
		conn_after_helo(c);
		return;
	case C_STARTTLS:
		if (rp->code == 220) {
			conn_starttls(c);
			return;
		}
		if (c->job->policy.level == SMTP_TLS_MAY) {
			log_info("%s refused STARTTLS: %s; going on without "
			    "TLS", c->relay, rp->text);
			conn_ready(c);
			return;
		}
		conn_fail(c, "4.7.4", true, false, "TLS is required, but host "
		    "%s refused to start TLS: %s", c->name, rp->text);
		return;
	case C_TXN:
		conn_txn_reply(c);
		return;
	case C_DOT:
		conn_dot_reply(c);
		return;
	case C_RSET:
		if (!ok) {
			conn_broken(c, "RSET refused by");
			return;
		}
		if (c->job != NULL) {
			/* a job was waiting for this connection */
			TAILQ_REMOVE(&cache, c, link);
			c->in_cache = false;
			ev_timer_cancel(smtp_g.ev, &c->timer);
			conn_ready(c);
			return;
		}
		c->state = C_IDLE;
		conn_timer(c, smtp_conf.cache_ms, "idle");
		return;
	case C_IDLE:
		/* nothing was asked: a 421 on its own timeout, or junk */
		log_debug("%s: unasked reply while idle: %s", c->relay,
		    rp->text);
		conn_close(c, false);
		return;
	default:
		log_panic("smtp: reply in state %d", (int)c->state);
	}
}

static void
conn_on_later(struct ev *ev, void *arg)
{
	struct smtp_conn *c = arg;

	(void)ev;
	c->is_later = false;
	if (c->state != C_DEAD)
		conn_input(c);
}

/* conn_input - read and handle replies while there are any */
static void
conn_input(struct smtp_conn *c)
{
	const char *line, *why;
	size_t len;
	int flags, r, budget = CONN_LINES_PER_WAKEUP;
	ssize_t n;

	for (;;) {
		if (c->state == C_DEAD)
			return;
		if (c->state == C_HANDSHAKE) {
			conn_handshake(c);
			return;
		}
		if (c->state == C_BODY) {
			conn_pump(c);
			return;
		}
		if (stream_out_len(c->st) > 0 && stream_flush(c->st) < 0) {
			conn_broken(c, "lost connection with");
			return;
		}
		if (budget-- == 0) {
			if (!c->is_later) {
				c->is_later = true;
				ev_later(smtp_g.ev, conn_on_later, c);
			}
			break;
		}
		r = stream_getline(c->st, &line, &len, &flags);
		if (r > 0) {
			r = smtp_reply_feed(&c->rp, line, len, &why);
			if (r < 0) {
				log_info("%s: malformed reply: %s", c->relay,
				    why);
				conn_broken(c, "malformed reply from");
				return;
			}
			if (r > 0)
				conn_reply(c);
			continue;
		}
		if (r < 0) {
			log_info("%s: malformed reply: line too long",
			    c->relay);
			conn_broken(c, "malformed reply from");
			return;
		}
		n = stream_fill(c->st);
		if (n > 0)
			continue;
		if (n == STREAM_AGAIN)
			break;
		if (c->state == C_IDLE) {
			conn_close(c, false);
			return;
		}
		conn_broken(c, "lost connection with");
		return;
	}
	conn_arm(c);
}

static void
conn_arm(struct smtp_conn *c)
{
	int want;

	if (c->state == C_DEAD || c->st == NULL)
		return;
	want = stream_events(c->st, c->state == C_BODY || c->is_later ? 0 :
	    EV_READ);
	/* C_BODY: conn_pump left output pending (or will find more) */
	if (c->state == C_BODY && want == 0)
		want = EV_WRITE;
	if (ev_fd_set(smtp_g.ev, c->fd, want, conn_on_io, c) < 0)
		log_fatal("ev_fd_set: %s", strerror(errno));
}

static void
conn_on_io(struct ev *ev, int fd, int events, void *arg)
{
	struct smtp_conn *c = arg;

	(void)ev;
	(void)fd;
	(void)events;
	if (c->state == C_CONNECTING) {
		conn_connected(c);
		return;
	}
	conn_input(c);
}

/* ---- the cache ------------------------------------------------------- */

/* conn_alive - 1 if an idle connection shows neither input nor EOF */
static int
conn_alive(struct smtp_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	if (stream_has_input(c->st))
		return 0;
	return poll(&pfd, 1, 0) == 0;
}

struct smtp_conn *
smtp_conn_take(const char *dest, struct smtp_job *job)
{
	struct smtp_conn *c, *next;

	for (c = TAILQ_FIRST(&cache); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->job != NULL || strcmp(c->dest, dest) != 0)
			continue;
		if (c->state == C_IDLE && !conn_alive(c)) {
			log_debug("%s: cached connection gone", c->relay);
			conn_close(c, false);
			continue;
		}
		c->job = job;
		job->conn = c;
		if (c->state == C_IDLE) {
			TAILQ_REMOVE(&cache, c, link);
			c->in_cache = false;
			ev_timer_cancel(smtp_g.ev, &c->timer);
			/* started from the loop by the job */
		}
		return c;
	}
	return NULL;
}

void
smtp_conn_resume(struct smtp_conn *c)
{
	if (c->state == C_IDLE)
		conn_ready(c);
	/* C_RSET: conn_reply starts it when the 250 comes */
}

const char *
smtp_conn_relay(const struct smtp_conn *c)
{
	return c->relay;
}

const char *
smtp_conn_tls(const struct smtp_conn *c)
{
	return c->tls;
}

void
smtp_conn_cache_close_all(void)
{
	struct smtp_conn *c;

	while ((c = TAILQ_FIRST(&cache)) != NULL) {
		struct smtp_job *job = c->job;

		c->job = NULL;
		conn_close(c, c->state == C_IDLE);
		if (job != NULL)
			smtp_job_addr_failed(job, "4.3.2", false, NULL,
			    "delivery agent stopping");
	}
}

void
smtp_conn_abort(struct smtp_conn *c)
{
	conn_close(c, false);
}
