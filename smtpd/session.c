/*
 * session - the SMTP session: state machine, I/O, replies, commands
 *
 * smtpd_session_step() is the one place that moves a session: it runs
 * after every event and works until it must wait.  In the reading
 * states it handles every complete command already buffered (at most
 * SMTPD_CMDS_PER_WAKEUP, then it yields through ev_later), so pipelined
 * commands are answered in order; only when no complete command is left
 * does it flush the replies and read again (RFC 2920: flush when the
 * input buffer is empty).  A client that does not read its replies is
 * not read from once SMTPD_OUT_HIGH bytes of them wait.
 *
 * Replies go through smtpd_reply(): every reply of 400 or more (but 421)
 * is an error; from smtpd_soft_error_limit on, each error reply is held
 * back for smtpd_error_sleep_time (the session then reads nothing), and
 * at smtpd_hard_error_limit the session ends with 421 4.7.0.  The idle
 * timer restarts only on progress (a whole command, content bytes), so
 * a client that trickles a line a byte at a time is still cut off.
 *
 * The small commands are here too; DATA/BDAT, AUTH and STARTTLS have
 * their own files.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "smtpd.h"

struct smtpd_conf smtpd;

static struct smtpd_session *sessions;
static unsigned nsessions;

#define CLIENT_HASH		256
#define AUTH_FAILURE_FORGET_MS	(15 * 60 * 1000)

static struct smtpd_client *clients[CLIENT_HASH];

/* command flags */
#define CF_PRE_TLS	0x01	/* allowed before STARTTLS when TLS is due */
#define CF_NO_HELO	0x02	/* allowed before HELO/EHLO */

typedef void smtpd_cmd_fn(struct smtpd_session *, struct smtp_cmd *);

static smtpd_cmd_fn cmd_helo, cmd_ehlo, cmd_mail, cmd_rcpt, cmd_rset,
    cmd_noop, cmd_quit, cmd_vrfy, cmd_expn, cmd_help;

static const struct smtpd_cmd_def {
	enum smtp_verb	 verb;
	smtpd_cmd_fn	*fn;
	unsigned	 flags;
} smtpd_cmds[] = {
	{ SMTP_EHLO,	 cmd_ehlo,		CF_PRE_TLS | CF_NO_HELO },
	{ SMTP_HELO,	 cmd_helo,		CF_PRE_TLS | CF_NO_HELO },
	{ SMTP_MAIL,	 cmd_mail,		0 },
	{ SMTP_RCPT,	 cmd_rcpt,		0 },
	{ SMTP_DATA,	 smtpd_cmd_data,	0 },
	{ SMTP_BDAT,	 smtpd_cmd_bdat,	0 },
	{ SMTP_RSET,	 cmd_rset,		CF_PRE_TLS | CF_NO_HELO },
	{ SMTP_NOOP,	 cmd_noop,		CF_PRE_TLS | CF_NO_HELO },
	{ SMTP_QUIT,	 cmd_quit,		CF_PRE_TLS | CF_NO_HELO },
	{ SMTP_VRFY,	 cmd_vrfy,		CF_NO_HELO },
	{ SMTP_EXPN,	 cmd_expn,		CF_NO_HELO },
	{ SMTP_HELP,	 cmd_help,		CF_PRE_TLS | CF_NO_HELO },
	{ SMTP_STARTTLS, smtpd_cmd_starttls,	CF_PRE_TLS },
	{ SMTP_AUTH,	 smtpd_cmd_auth,	0 },
};

static void session_on_io(struct ev *, int, int, void *);
static void session_on_timeout(struct ev *, void *);
static void session_on_sleep(struct ev *, void *);
static void session_on_name(void *, const char *, int);
static void session_greet(struct smtpd_session *);

/* ---- per-client records -------------------------------------------------- */

static unsigned
client_hash(const char *addr)
{
	unsigned h = 5381;

	while (*addr != '\0')
		h = h * 33 + (unsigned char)*addr++;
	return h % CLIENT_HASH;
}

struct smtpd_client *
smtpd_client_get(const char *addr)
{
	struct smtpd_client *c;
	unsigned h = client_hash(addr);

	for (c = clients[h]; c != NULL; c = c->next)
		if (strcmp(c->addr, addr) == 0)
			break;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		(void)snprintf(c->addr, sizeof(c->addr), "%s", addr);
		c->next = clients[h];
		clients[h] = c;
	}
	/* AUTH failures are forgotten after a quiet while */
	if (c->auth_failures > 0 &&
	    ev_now(smtpd.ev) - c->last_failure > AUTH_FAILURE_FORGET_MS)
		c->auth_failures = 0;
	c->nconn++;
	return c;
}

void
smtpd_client_put(struct smtpd_client **cp)
{
	struct smtpd_client *c = *cp, **pp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (--c->nconn > 0 || c->auth_failures > 0)
		return;
	for (pp = &clients[client_hash(c->addr)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
}

/* ---- replies ------------------------------------------------------------- */

static void
session_write(struct smtpd_session *s, const char *line, size_t len)
{
	if (s->sleep_ms > 0) {
		if (buf_append(&s->delayed, line, len) < 0)
			s->must_close = true;
		return;
	}
	/* a client that never reads fills the buffer: end it */
	if (stream_write(s->st, line, len) < 0)
		s->must_close = true;
}

static void
session_reply_line(struct smtpd_session *s, int code, const char *text)
{
	char line[600];
	int n;

	n = snprintf(line, sizeof(line), "%s\r\n", text);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 2] = '\r';
		line[n - 1] = '\n';
	}
	if (s->cur_verb >= 0 && code >= 200 && code < 300)
		s->cnt_ok[s->cur_verb]++;
	if (code != 334 && code != 354)
		s->cur_verb = -1;
	if (code >= 400 && code != 421) {
		s->errors++;
		if (s->errors >= smtpd.soft_error_limit &&
		    smtpd.error_sleep_ms > s->sleep_ms)
			s->sleep_ms = smtpd.error_sleep_ms;
	}
	session_write(s, line, (size_t)n);
	if (code >= 400 && code != 421 && !s->must_close &&
	    s->errors >= smtpd.hard_error_limit) {
		log_info("too many errors after %s from %s",
		    smtp_verb_name(s->last_verb), s->client);
		n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: too "
		    "many errors\r\n", smtpd.myhostname);
		session_write(s, line, (size_t)n);
		s->must_close = true;
	}
}

void
smtpd_reply(struct smtpd_session *s, int code, const char *dsn,
    const char *fmt, ...)
{
	char text[512];
	int n;
	va_list ap;

	n = snprintf(text, sizeof(text), "%d %s ", code, dsn);
	va_start(ap, fmt);
	(void)vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	va_end(ap);
	session_reply_line(s, code, text);
}

void
smtpd_reply_r(struct smtpd_session *s, const struct reply *r)
{
	smtpd_reply(s, r->code, r->dsn, "%s", r->text);
}

void
smtpd_reply_raw(struct smtpd_session *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	session_reply_line(s, (int)strtol(text, NULL, 10), text);
}

void
smtpd_banner(struct smtpd_session *s)
{
	char line[600];
	int n;

	n = snprintf(line, sizeof(line), "220 %s\r\n", smtpd.banner);
	if (n > 0 && (size_t)n < sizeof(line))
		session_write(s, line, (size_t)n);
}

void
smtpd_log_reject(struct smtpd_session *s, const char *verb,
    const struct reply *r, const char *rcpt)
{
	char to[SMTP_PATH_MAX + 8] = "";

	if (rcpt != NULL)
		(void)snprintf(to, sizeof(to), " to=<%s>", rcpt);
	log_info("%s: reject: %s from %s: %d %s %s; from=<%s>%s proto=%s "
	    "helo=<%s>", s->qw != NULL ? s->env->id : "NOQUEUE", verb,
	    s->client, r->code, r->dsn, r->text,
	    s->env != NULL ? s->env->sender : "", to, smtpd_proto(s),
	    s->helo);
}

const char *
smtpd_proto(const struct smtpd_session *s)
{
	static const char *const names[2][2][2] = {
		/* [utf8][tls][auth] */
		{ { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
		{ { "UTF8SMTP", "UTF8SMTPA" },
		    { "UTF8SMTPS", "UTF8SMTPSA" } },
	};

	if (!s->is_esmtp)
		return "SMTP";
	return names[s->env != NULL && s->env->smtputf8][s->is_tls]
	    [s->auth_user != NULL];
}

/* ---- life cycle ---------------------------------------------------------- */

void
smtpd_progress(struct smtpd_session *s)
{
	ev_timer_cancel(smtpd.ev, &s->timer);
	s->timer = ev_timer_add(smtpd.ev, smtpd.timeout_ms,
	    session_on_timeout, s);
}

/* session_loop_end - stopping and idle: end the threads, then the loop */
static void
session_loop_end(void)
{
	smtpd_queue_done();
	ev_stop(smtpd.ev);
}

static void
session_destroy(struct ev *ev, void *arg)
{
	struct smtpd_session *s = arg;

	(void)ev;
	if (s->later_pending) {
		/* a continuation is still queued: free after it */
		ev_later(smtpd.ev, session_destroy, s);
		s->later_pending = false;
		return;
	}
	free(s);
	if (smtpd.stopping && nsessions == 0 && smtpd_queue_pending() == 0)
		session_loop_end();
}

static void
session_log_disconnect(struct smtpd_session *s)
{
	char line[512], name[16];
	size_t len = 0, i, k;
	unsigned all = 0, ok = 0;
	int n;
	static const enum smtp_verb order[] = {
		SMTP_HELO, SMTP_EHLO, SMTP_STARTTLS, SMTP_AUTH, SMTP_MAIL,
		SMTP_RCPT, SMTP_DATA, SMTP_BDAT, SMTP_RSET, SMTP_NOOP,
		SMTP_VRFY, SMTP_EXPN, SMTP_HELP, SMTP_QUIT, SMTP_UNKNOWN,
	};

	line[0] = '\0';
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum smtp_verb v = order[i];

		if (s->cnt_all[v] == 0)
			continue;
		all += s->cnt_all[v];
		ok += s->cnt_ok[v];
		(void)snprintf(name, sizeof(name), "%s", smtp_verb_name(v));
		for (k = 0; name[k] != '\0'; k++)
			name[k] = (char)tolower((unsigned char)name[k]);
		if (s->cnt_ok[v] == s->cnt_all[v])
			n = snprintf(line + len, sizeof(line) - len, " %s=%u",
			    name, s->cnt_all[v]);
		else
			n = snprintf(line + len, sizeof(line) - len,
			    " %s=%u/%u", name, s->cnt_ok[v], s->cnt_all[v]);
		if (n > 0 && (size_t)n < sizeof(line) - len)
			len += (size_t)n;
	}
	if (ok == all)
		(void)snprintf(line + len, sizeof(line) - len, " commands=%u",
		    all);
	else
		(void)snprintf(line + len, sizeof(line) - len,
		    " commands=%u/%u", ok, all);
	log_info("disconnect from %s%s", s->client, line);
}

void
smtpd_session_close(struct smtpd_session *s)
{
	if (s->state == SS_DEAD)
		return;
	if (s->state == SS_QUEUE)
		log_panic("smtpd_session_close: queue sync in flight");
	if (s->state == SS_LOOKUP)
		log_info("connect from %s", s->client);
	session_log_disconnect(s);
	dns_cancel(&s->dnsq);
	s->state = SS_DEAD;
	ev_timer_cancel(smtpd.ev, &s->timer);
	ev_timer_cancel(smtpd.ev, &s->sleep);
	ev_fd_clear(smtpd.ev, stream_fd(s->st));
	smtpd_transaction_reset(s);	/* unlinks an unfinished file */
	smtpd_auth_reset(s);
	free(s->auth_user);
	s->auth_user = NULL;
	stream_free(&s->st);
	buf_deinit(&s->delayed);
	smtpd_client_put(&s->cl);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	nsessions--;
	server_client_done();
	ev_later(smtpd.ev, session_destroy, s);
}

unsigned
smtpd_sessions_count(void)
{
	return nsessions;
}

/* session_lost - the client went away or the stream failed */
static void
session_lost(struct smtpd_session *s)
{
	const char *why = stream_error(s->st);

	if (s->state == SS_DATA || s->state == SS_BDAT)
		log_info("lost connection after %s (%llu bytes) from %s%s%s",
		    smtp_verb_name(s->last_verb),
		    (unsigned long long)s->msg_size, s->client,
		    *why != '\0' ? ": " : "", why);
	else
		log_info("lost connection after %s from %s%s%s",
		    s->cnt_all[s->last_verb] > 0 ?
		    smtp_verb_name(s->last_verb) : "CONNECT", s->client,
		    *why != '\0' ? ": " : "", why);
	smtpd_session_close(s);
}

static void
session_enter_close(struct smtpd_session *s)
{
	dns_cancel(&s->dnsq);
	s->state = SS_CLOSE;
	ev_timer_cancel(smtpd.ev, &s->timer);
	s->timer = ev_timer_add(smtpd.ev, SMTPD_CLOSE_GRACE_MS,
	    session_on_timeout, s);
}

static void
session_start_sleep(struct smtpd_session *s)
{
	s->state = SS_SLEEP;
	ev_timer_cancel(smtpd.ev, &s->sleep);
	s->sleep = ev_timer_add(smtpd.ev, s->sleep_ms, session_on_sleep, s);
}

void
smtpd_session_resume(struct smtpd_session *s)
{
	if (s->state == SS_QUEUE)
		s->state = SS_CMD;
	if (s->is_gone) {
		session_lost(s);
		return;
	}
	if (s->sleep_ms > 0)
		session_start_sleep(s);
	else if (s->must_close)
		session_enter_close(s);
	else {
		s->state = SS_CMD;
		smtpd_progress(s);
	}
	smtpd_session_step(s);
}

static void
session_on_sleep(struct ev *ev, void *arg)
{
	struct smtpd_session *s = arg;

	(void)ev;
	s->sleep = NULL;
	s->sleep_ms = 0;
	if (buf_len(&s->delayed) > 0 && stream_write(s->st,
	    buf_cstr(&s->delayed), buf_len(&s->delayed)) < 0)
		s->must_close = true;
	buf_reset(&s->delayed);
	smtpd_session_resume(s);
}

static void
session_on_timeout(struct ev *ev, void *arg)
{
	struct smtpd_session *s = arg;

	(void)ev;
	s->timer = NULL;
	switch (s->state) {
	case SS_QUEUE:
	case SS_SLEEP:
		/* our own wait, not the client's */
		smtpd_progress(s);
		return;
	case SS_CLOSE:
	case SS_TLS_FLUSH:
	case SS_HANDSHAKE:
		if (s->state != SS_CLOSE)
			log_info("timeout after STARTTLS from %s", s->client);
		smtpd_session_close(s);
		return;
	case SS_DEAD:
		return;
	default:
		break;
	}
	log_info("timeout after %s from %s", s->cnt_all[s->last_verb] > 0 ?
	    smtp_verb_name(s->last_verb) : "CONNECT", s->client);
	s->sleep_ms = 0;
	(void)stream_printf(s->st, "421 4.4.2 %s Error: timeout exceeded\r\n",
	    smtpd.myhostname);
	session_enter_close(s);
	smtpd_session_step(s);
}

static void
session_on_later(struct ev *ev, void *arg)
{
	struct smtpd_session *s = arg;

	(void)ev;
	s->later_pending = false;
	smtpd_session_step(s);
}

static void
session_on_io(struct ev *ev, int fd, int events, void *arg)
{
	struct smtpd_session *s = arg;

	(void)ev;
	/*
	 * epoll reports a hang-up even when we wait for nothing: while the
	 * session is not reading, stop watching (or the loop would spin)
	 */
	if ((events & EV_ERROR) && (s->state == SS_SLEEP ||
	    s->state == SS_QUEUE)) {
		if (s->state == SS_SLEEP) {
			session_lost(s);
			return;
		}
		ev_fd_clear(smtpd.ev, fd);
		s->is_gone = true;
		return;
	}
	smtpd_session_step(s);
}

void
smtpd_session_new(int fd, const struct server_peer *peer)
{
	struct smtpd_session *s;
	struct stream_limits lim;
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	memset(&lim, 0, sizeof(lim));
	lim.line_max = smtpd.line_max;
	lim.read_timeout = smtpd.timeout_ms;
	lim.write_timeout = smtpd.timeout_ms;
	s = xcalloc(1, sizeof(*s));
	if ((s->st = stream_new(fd, &lim, 0)) == NULL) {
		log_err("stream_new: %s", strerror(errno));
		(void)close(fd);
		free(s);
		server_client_done();
		return;
	}
	s->state = SS_CMD;
	s->cur_verb = -1;
	buf_init(&s->delayed, 64 * 1024);
	memcpy(&s->sa, &peer->addr, sizeof(s->sa));
	(void)snprintf(s->client_name, sizeof(s->client_name), "unknown");
	if (peer->addr.ss_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
			cred.uid = (uid_t)-1;
		s->uid = cred.uid;
		(void)snprintf(s->client_addr, sizeof(s->client_addr),
		    "uid=%ld", (long)(int)cred.uid);
		if (smtpd.local_submit) {
			s->is_local = true;
			(void)snprintf(s->client_name,
			    sizeof(s->client_name), "local");
		}
	} else {
		(void)snprintf(s->client_addr, sizeof(s->client_addr), "%s",
		    peer->text);
		s->is_mynetworks = smtpd_policy_is_mynetworks(
		    (const struct sockaddr *)&peer->addr) == 1;
		s->is_restricted = smtpd_policy_is_restricted(
		    (const struct sockaddr *)&peer->addr) == 1;
		s->cl = smtpd_client_get(s->client_addr);
	}
	(void)snprintf(s->client, sizeof(s->client), "%s[%s]",
	    s->client_name, s->client_addr);
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	nsessions++;
	smtpd_progress(s);
	if (smtpd.dns != NULL && !s->is_local &&
	    peer->addr.ss_family != AF_UNIX && !smtpd.stopping) {
		/* the name first, as Postfix does: logs and Received: */
		s->state = SS_LOOKUP;
		s->dnsq = dns_client_name(smtpd.dns,
		    (const struct sockaddr *)&s->sa, session_on_name, s);
		smtpd_session_step(s);
		return;
	}
	session_greet(s);
}

/* session_on_name - the client's verified name, or none: greet it */
static void
session_on_name(void *arg, const char *name, int status)
{
	struct smtpd_session *s = arg;

	s->dnsq = NULL;
	if (name != NULL) {
		(void)snprintf(s->client_name, sizeof(s->client_name), "%s",
		    name);
		(void)snprintf(s->client, sizeof(s->client), "%s[%s]",
		    s->client_name, s->client_addr);
	} else if (status == DNS_TEMPFAIL) {
		log_debug("%s: name lookup failed for now", s->client);
	}
	s->state = SS_CMD;
	session_greet(s);
}

/* session_greet - log the connection, then 220 (or 421, or TLS first) */
static void
session_greet(struct smtpd_session *s)
{
	log_info("connect from %s", s->client);
	if (s->cl != NULL && smtpd.conn_limit > 0 && !s->is_mynetworks &&
	    s->cl->nconn > smtpd.conn_limit) {
		log_warn("too many connections from %s (limit %u)",
		    s->client, smtpd.conn_limit);
		(void)stream_printf(s->st, "421 4.7.0 %s Error: too many "
		    "connections from %s\r\n", smtpd.myhostname,
		    s->client_addr);
		session_enter_close(s);
	} else if (smtpd.stopping) {
		(void)stream_printf(s->st, "421 4.3.2 %s Service shutting "
		    "down\r\n", smtpd.myhostname);
		session_enter_close(s);
	} else if (smtpd.wrappermode && !s->is_local) {
		s->is_wrapped = true;
		if (smtpd_tls_wrapper_start(s) < 0) {
			smtpd_session_close(s);
			return;
		}
	} else
		smtpd_banner(s);
	smtpd_session_step(s);
}

void
smtpd_sessions_stop(void)
{
	struct smtpd_session *s, *next;

	smtpd.stopping = true;
	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state == SS_QUEUE)
			continue;	/* ends when its file is durable */
		if (s->state != SS_HANDSHAKE && s->state != SS_TLS_FLUSH) {
			(void)stream_printf(s->st, "421 4.3.2 %s Service "
			    "shutting down\r\n", smtpd.myhostname);
			(void)stream_flush(s->st);
		}
		smtpd_session_close(s);
	}
	if (nsessions == 0 && smtpd_queue_pending() == 0)
		session_loop_end();
}

/* ---- the driver ---------------------------------------------------------- */

static void
session_dispatch(struct smtpd_session *s, const char *line, size_t len)
{
	const struct smtpd_cmd_def *def = NULL;
	struct reply r;
	size_t i;

	if (smtp_cmd_parse(line, len, &smtpd.cmd_limits, &s->cmd, &r) < 0) {
		s->cnt_all[s->cmd.verb]++;
		s->cur_verb = (int)s->cmd.verb;
		s->last_verb = s->cmd.verb;
		smtpd_reply_r(s, &r);
		return;
	}
	for (i = 0; i < sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]); i++)
		if (smtpd_cmds[i].verb == s->cmd.verb)
			def = &smtpd_cmds[i];
	s->cnt_all[s->cmd.verb]++;
	s->cur_verb = (int)s->cmd.verb;
	s->last_verb = s->cmd.verb;
	if (def == NULL) {
		smtpd_reply(s, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	if (!(def->flags & CF_PRE_TLS) && smtpd.tls_level ==
	    SMTPD_TLS_ENCRYPT && !s->is_tls && !s->is_local) {
		smtpd_reply(s, 530, "5.7.0", "Must issue a STARTTLS command "
		    "first");
		return;
	}
	if (!(def->flags & CF_NO_HELO) && !s->has_helo) {
		smtpd_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	def->fn(s, &s->cmd);
}

/* session_input - handle buffered input: 1 did something, 0 need more */
static int
session_input(struct smtpd_session *s)
{
	const char *line;
	size_t len;
	int flags, r;

	if (s->state == SS_DATA || s->state == SS_BDAT)
		return smtpd_data_input(s);
	r = stream_getline(s->st, &line, &len, &flags);
	if (r == 0)
		return 0;
	if (r < 0) {
		if (s->state == SS_AUTH) {
			smtpd_auth_reset(s);
			s->state = SS_CMD;
		}
		smtpd_reply(s, 500, "5.5.2", "Error: line too long");
		return 1;
	}
	smtpd_progress(s);
	if (s->state == SS_AUTH)
		smtpd_auth_line(s, line, len);
	else
		session_dispatch(s, line, len);
	return 1;
}

static int
session_reading(const struct smtpd_session *s)
{
	return s->state == SS_CMD || s->state == SS_AUTH ||
	    s->state == SS_DATA || s->state == SS_BDAT;
}

void
smtpd_session_step(struct smtpd_session *s)
{
	int budget = SMTPD_CMDS_PER_WAKEUP, r, want;
	ssize_t n;

	for (;;) {
		switch (s->state) {
		case SS_DEAD:
			return;
		case SS_TLS_FLUSH:
		case SS_HANDSHAKE:
			r = smtpd_tls_step(s);
			if (s->state == SS_DEAD)
				return;
			if (r > 0)
				continue;
			goto arm;
		case SS_CLOSE:
			if (stream_flush(s->st) != 0) {
				smtpd_session_close(s);
				return;
			}
			goto arm;
		case SS_LOOKUP:
			goto arm;	/* session_on_name() goes on */
		case SS_QUEUE:
		case SS_SLEEP:
			if (stream_out_len(s->st) > 0 &&
			    stream_flush(s->st) < 0) {
				if (s->state == SS_SLEEP) {
					session_lost(s);
					return;
				}
				/* SS_QUEUE: noticed when the reply fails */
			}
			goto arm;
		default:
			break;
		}
		if (budget-- == 0) {
			/* let other sessions run; come back after them */
			if (!s->later_pending) {
				s->later_pending = true;
				ev_later(smtpd.ev, session_on_later, s);
			}
			goto arm;
		}
		if (stream_out_len(s->st) > SMTPD_OUT_HIGH) {
			r = stream_flush(s->st);
			if (r < 0) {
				session_lost(s);
				return;
			}
			if (r == 0)
				goto arm;
		}
		r = session_input(s);
		if (s->state == SS_DEAD)
			return;
		if (r > 0) {
			if (s->sleep_ms > 0 && s->state != SS_QUEUE)
				session_start_sleep(s);
			else if (s->must_close && s->state != SS_QUEUE)
				session_enter_close(s);
			continue;
		}
		/* no complete command left: the replies go out now */
		if (stream_out_len(s->st) > 0 && stream_flush(s->st) < 0) {
			session_lost(s);
			return;
		}
		n = stream_fill(s->st);
		if (n > 0)
			continue;
		if (n == STREAM_AGAIN)
			goto arm;
		session_lost(s);
		return;
	}
arm:
	if (s->is_gone)
		return;
	want = session_reading(s) && !s->later_pending &&
	    stream_out_len(s->st) <= SMTPD_OUT_HIGH ? EV_READ : 0;
	if (ev_fd_set(smtpd.ev, stream_fd(s->st), stream_events(s->st, want),
	    session_on_io, s) < 0) {
		log_err("%s: ev_fd_set: %s", s->client, strerror(errno));
		if (s->state != SS_QUEUE)
			smtpd_session_close(s);
	}
}

/* ---- the transaction ----------------------------------------------------- */

void
smtpd_transaction_reset(struct smtpd_session *s)
{
	queue_writer_free(&s->qw);
	queue_env_free(&s->env);
	s->msg_size = 0;
	s->data_too_big = false;
	s->data_io_failed = false;
	s->bdat_left = 0;
	s->bdat_last = false;
	s->bdat_used = false;
	s->bdat_failed = false;
}

/* ---- the small commands -------------------------------------------------- */

/* helo_store - keep the client's name, printable ASCII only */
static void
helo_store(struct smtpd_session *s, const char *arg)
{
	size_t i;

	for (i = 0; arg[i] != '\0' && i < SMTPD_HELO_MAX; i++)
		s->helo[i] = arg[i] > ' ' && arg[i] < 0x7f ? arg[i] : '?';
	s->helo[i] = '\0';
}

static void
cmd_helo(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	smtpd_transaction_reset(s);
	helo_store(s, cmd->arg);
	s->has_helo = true;
	s->is_esmtp = false;
	smtpd_reply(s, 250, "2.0.0", "%s", smtpd.myhostname);
}

static void
cmd_ehlo(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	char line[1024];
	int n;

	smtpd_transaction_reset(s);
	helo_store(s, cmd->arg);
	s->has_helo = true;
	s->is_esmtp = true;
	/* RFC 2034 3: no enhanced codes in the EHLO response */
	n = snprintf(line, sizeof(line),
	    "250-%s\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE %llu\r\n"
	    "%s%s"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n"
	    "250-DSN\r\n"
	    "250-SMTPUTF8\r\n"
	    "250 CHUNKING\r\n",
	    smtpd.myhostname, (unsigned long long)smtpd.size_limit,
	    smtpd_tls_offered(s) ? "250-STARTTLS\r\n" : "",
	    smtpd_auth_offered(s) ? "250-AUTH PLAIN LOGIN\r\n" : "");
	if (s->cur_verb >= 0)
		s->cnt_ok[s->cur_verb]++;
	s->cur_verb = -1;
	session_write(s, line, (size_t)n);
}

static void
cmd_mail(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	struct reply r;

	if (s->env != NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (!s->is_esmtp && (cmd->has_size || cmd->body != SMTP_BODY_NONE ||
	    cmd->smtputf8 || cmd->ret != SMTP_RET_NONE ||
	    cmd->envid[0] != '\0' || cmd->auth[0] != '\0')) {
		smtpd_reply(s, 555, "5.5.4", "Error: parameters need EHLO");
		return;
	}
	if (cmd->body == SMTP_BODY_BINARYMIME) {
		smtpd_reply(s, 555, "5.5.4", "Error: BODY=BINARYMIME is not "
		    "supported");
		return;
	}
	if (cmd->addr_utf8 && !cmd->smtputf8) {
		smtpd_reply(s, 553, "5.6.7", "<%.180s>: Sender address needs "
		    "SMTPUTF8", cmd->addr);
		return;
	}
	if (smtpd_policy_client(s, &r) == 0) {
		smtpd_log_reject(s, "MAIL", &r, NULL);
		smtpd_reply_r(s, &r);
		return;
	}
	if (cmd->has_size && cmd->size > smtpd.size_limit) {
		reply_set(&r, 552, "5.3.4", "Message size exceeds fixed "
		    "limit");
		smtpd_log_reject(s, "MAIL", &r, NULL);
		smtpd_reply_r(s, &r);
		return;
	}
	s->env = queue_env_new();
	queue_env_set(&s->env->sender, cmd->addr);
	s->env->body = (int)cmd->body;
	s->env->smtputf8 = cmd->smtputf8;
	s->env->ret = (int)cmd->ret;
	if (cmd->envid[0] != '\0')
		queue_env_set(&s->env->envid, cmd->envid);
	smtpd_reply(s, 250, "2.1.0", "Ok");
}

static void
cmd_rcpt(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	struct reply r;
	size_t i;
	int rc;

	if (s->env == NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->qw != NULL || s->bdat_used) {
		smtpd_reply(s, 503, "5.5.1", "Error: RCPT after BDAT");
		return;
	}
	if (s->env->nrcpt >= smtpd.rcpt_limit) {
		smtpd_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	if (cmd->addr_utf8 && !s->env->smtputf8) {
		reply_set(&r, 553, "5.6.7", "<%.180s>: Recipient address needs "
		    "SMTPUTF8", cmd->addr);
		smtpd_log_reject(s, "RCPT", &r, cmd->addr);
		smtpd_reply_r(s, &r);
		return;
	}
	rc = smtpd_policy_rcpt(s, cmd->addr, &r);
	if (rc <= 0) {
		smtpd_log_reject(s, "RCPT", &r, cmd->addr);
		smtpd_reply_r(s, &r);
		return;
	}
	/* the same recipient twice is delivered once */
	for (i = 0; i < s->env->nrcpt; i++)
		if (strcasecmp(s->env->rcpt[i].addr, cmd->addr) == 0)
			break;
	if (i == s->env->nrcpt)
		(void)queue_env_add_rcpt(s->env, cmd->addr,
		    cmd->orcpt[0] != '\0' ? cmd->orcpt : NULL, cmd->notify);
	smtpd_reply(s, 250, "2.1.5", "Ok");
}

static void
cmd_rset(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	smtpd_transaction_reset(s);
	smtpd_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_noop(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	smtpd_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	smtpd_reply(s, 221, "2.0.0", "Bye");
	s->must_close = true;
}

static void
cmd_vrfy(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	/* no user enumeration (RFC 5321 3.5.3 allows 252) */
	smtpd_reply(s, 252, "2.0.0", "Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
cmd_expn(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	smtpd_reply(s, 502, "5.5.1", "Error: EXPN is disabled");
}

static void
cmd_help(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	smtpd_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA "
	    "BDAT RSET NOOP QUIT VRFY HELP%s%s",
	    smtpd_tls_offered(s) ? " STARTTLS" : "",
	    smtpd_auth_offered(s) ? " AUTH" : "");
}
