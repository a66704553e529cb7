/*
 * smtp - the SMTP client side of sendmail: one message to the submit
 * service on $queue_directory/public/submit.
 *
 * The dialogue is lock-step (no pipelining: it is a local socket):
 * greeting, EHLO (HELO if refused), MAIL FROM with SIZE=, BODY=,
 * SMTPUTF8, RET= and ENVID= as the server offers them, one RCPT TO per
 * recipient, DATA, the spooled content (already dot-stuffed), ".", QUIT.
 * A refused recipient is reported and the message goes on to the others;
 * when none is left the session ends there.  Replies are read with
 * lib/stream's blocking calls and their deadlines; a reply of more than
 * SMTP_REPLY_LINES lines or with a malformed code is a protocol error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail.h"
#include "stream.h"

#define SMTP_REPLY_LINES	100
#define SMTP_LINE_MAX		4096
#define SMTP_TEXT_MAX		2048	/* of a reply kept for messages */
#define SMTP_CHUNK		65536

#define EXT_SIZE		0x01
#define EXT_8BITMIME		0x02
#define EXT_SMTPUTF8		0x04
#define EXT_DSN			0x08

enum smtp_stage {
	ST_GREETING,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_END,
};

struct smtp {
	const struct sm_conf *conf;
	struct stream *st;
	int	 code;
	struct buf text;	/* the last reply, lines joined by a blank */
	unsigned ext;
};

int
sm_connect(const struct sm_conf *conf)
{
	struct sockaddr_un sun;
	int fd, n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/public/submit",
	    conf->qdir);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		sm_err(conf, "queue_directory %s: path too long for a socket",
		    conf->qdir);
		return -EX_CONFIG;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		sm_err(conf, "socket: %s", strerror(errno));
		return -EX_OSERR;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		n = errno;
		(void)close(fd);
		if (n == EACCES || n == EPERM) {
			sm_err(conf, "cannot connect to %s: %s (only members "
			    "of the submit group may send mail)", sun.sun_path,
			    strerror(n));
			return -EX_NOPERM;
		}
		sm_err(conf, "cannot connect to %s: %s (is posta running?)",
		    sun.sun_path, strerror(n));
		return -EX_TEMPFAIL;
	}
	return fd;
}

/* smtp_ext - note an EHLO keyword we use */
static void
smtp_ext(struct smtp *s, const char *kw)
{
	static const struct {
		const char *name;
		unsigned bit;
	} exts[] = {
		{ "SIZE", EXT_SIZE },
		{ "8BITMIME", EXT_8BITMIME },
		{ "SMTPUTF8", EXT_SMTPUTF8 },
		{ "DSN", EXT_DSN },
	};
	size_t i, n;

	for (n = 0; kw[n] != '\0' && kw[n] != ' '; n++)
		;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strlen(exts[i].name) == n &&
		    strncasecmp(kw, exts[i].name, n) == 0)
			s->ext |= exts[i].bit;
}

/*
 * smtp_reply - read one (multi-line) reply into s->code and s->text;
 * the code, or -1 after a message (I/O error, protocol error)
 */
static int
smtp_reply(struct smtp *s, bool is_ehlo)
{
	const char *line;
	size_t len, n;
	int flags, rc, code = -1;

	buf_reset(&s->text);
	for (n = 0; n < SMTP_REPLY_LINES; n++) {
		rc = stream_read_line_wait(s->st, &line, &len, &flags);
		if (rc <= 0) {
			sm_err(s->conf, "lost the connection to the mail "
			    "system: %s", rc == 0 ? "connection closed" :
			    stream_error(s->st));
			return -1;
		}
		if (s->conf->verbose)
			sm_err(s->conf, "<<< %.*s", (int)len, line);
		if (len < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (len > 3 && line[3] != ' ' &&
		    line[3] != '-') || (flags & STREAM_LINE_NUL)) {
			sm_err(s->conf, "malformed reply from the mail "
			    "system");
			return -1;
		}
		rc = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (code >= 0 && rc != code) {
			sm_err(s->conf, "malformed reply from the mail "
			    "system");
			return -1;
		}
		code = rc;
		if (is_ehlo && n > 0 && len > 4)
			smtp_ext(s, line + 4);
		if (buf_len(&s->text) > 0)
			(void)buf_putc(&s->text, ' ');
		if (n == 0)
			(void)buf_append(&s->text, line, len);
		else if (len > 4)
			(void)buf_append(&s->text, line + 4, len - 4);
		if (len == 3 || line[3] == ' ') {
			s->code = code;
			return code;
		}
	}
	sm_err(s->conf, "reply from the mail system too long");
	return -1;
}

/* smtp_cmd - send one command line and read its reply; code or -1 */
static int
smtp_cmd(struct smtp *s, bool is_ehlo, const char *fmt, ...)
{
	va_list ap;
	struct buf b;
	int rc;

	buf_init(&b, SMTP_LINE_MAX);
	va_start(ap, fmt);
	rc = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		sm_err(s->conf, "command too long");
		buf_deinit(&b);
		return -1;
	}
	if (s->conf->verbose)
		sm_err(s->conf, ">>> %s", buf_cstr(&b));
	rc = buf_puts(&b, "\r\n");
	if (rc == 0)
		rc = stream_write(s->st, buf_cstr(&b), buf_len(&b));
	buf_deinit(&b);
	if (rc < 0 || stream_flush_wait(s->st) < 0) {
		sm_err(s->conf, "lost the connection to the mail system: %s",
		    stream_error(s->st));
		return -1;
	}
	return smtp_reply(s, is_ehlo);
}

/* smtp_exit - the exit status for a failure reply at a stage */
static int
smtp_exit(const struct smtp *s, enum smtp_stage stage)
{
	const char *t = buf_cstr(&s->text);
	const char *dsn = buf_len(&s->text) > 4 ? t + 4 : "";

	if (s->code < 500)
		return EX_TEMPFAIL;
	switch (stage) {
	case ST_GREETING:
	case ST_HELO:
		return EX_UNAVAILABLE;
	case ST_MAIL:
		return strncmp(dsn, "5.7.", 4) == 0 ? EX_NOPERM : EX_DATAERR;
	case ST_RCPT:
		if (strncmp(dsn, "5.7.", 4) == 0)
			return EX_NOPERM;
		if (strncmp(dsn, "5.1.", 4) == 0 || s->code == 550 ||
		    s->code == 551 || s->code == 553)
			return EX_NOUSER;
		return EX_UNAVAILABLE;
	case ST_DATA:
		return EX_UNAVAILABLE;
	case ST_END:
		return EX_DATAERR;
	}
	return EX_SOFTWARE;
}

/* smtp_xtext - RFC 3461 4: "+" and "=" and non-graphic bytes as +HH */
static void
smtp_xtext(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 33 || c > 126 || c == '+' || c == '=')
			(void)buf_printf(b, "+%02X", c);
		else
			(void)buf_putc(b, (char)c);
	}
}

/* smtp_send_content - the spool, then the end marker */
static int
smtp_send_content(struct smtp *s, struct sm_msg *msg)
{
	char *chunk = malloc(SMTP_CHUNK);
	size_t n;
	int rc = 0;

	if (chunk == NULL) {
		sm_err(s->conf, "out of memory");
		return -1;
	}
	while ((n = fread(chunk, 1, SMTP_CHUNK, msg->spool)) > 0) {
		if (stream_write(s->st, chunk, n) < 0 ||
		    stream_flush_wait(s->st) < 0) {
			rc = -1;
			break;
		}
	}
	free(chunk);
	if (rc == 0 && ferror(msg->spool)) {
		sm_err(s->conf, "cannot read the temporary file");
		return -2;
	}
	if (rc == 0 && (stream_puts(s->st, ".\r\n") < 0 ||
	    stream_flush_wait(s->st) < 0))
		rc = -1;
	if (rc < 0)
		sm_err(s->conf, "lost the connection to the mail system: %s",
		    stream_error(s->st));
	return rc;
}

static void
smtp_quit(struct smtp *s)
{
	(void)smtp_cmd(s, false, "QUIT");
}

/* smtp_fail - report a refusal and pick the exit status */
static int
smtp_fail(struct smtp *s, enum smtp_stage stage, const char *what)
{
	sm_err(s->conf, "%s: %s", what, buf_cstr(&s->text));
	return smtp_exit(s, stage);
}

int
sm_submit(const struct sm_conf *conf, struct sm_msg *msg,
    const struct sm_addrs *rcpts)
{
	struct stream_limits lim = {
		.line_max = SMTP_LINE_MAX,
		.read_timeout = SM_TIMEOUT_MS,
		.write_timeout = SM_TIMEOUT_MS,
		.out_max = 2 * SMTP_CHUNK,
	};
	struct smtp s;
	struct buf params;
	bool is_utf8 = sm_addr_is_8bit(conf->sender);
	size_t i, accepted = 0;
	int fd, rc, ret = 0;

	if ((fd = sm_connect(conf)) < 0)
		return -fd;
	memset(&s, 0, sizeof(s));
	s.conf = conf;
	if ((s.st = stream_new(fd, &lim, 0)) == NULL) {
		(void)close(fd);
		sm_err(conf, "stream: %s", strerror(errno));
		return EX_OSERR;
	}
	buf_init(&s.text, SMTP_TEXT_MAX);
	buf_init(&params, SMTP_LINE_MAX);

	if ((rc = smtp_reply(&s, false)) < 0) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	if (rc != 220) {
		ret = smtp_fail(&s, ST_GREETING, "the mail system refused "
		    "the connection");
		goto quit;
	}
	if ((rc = smtp_cmd(&s, true, "EHLO %s", conf->myhostname)) < 0) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	if (rc != 250) {
		s.ext = 0;
		if ((rc = smtp_cmd(&s, false, "HELO %s",
		    conf->myhostname)) < 0) {
			ret = EX_TEMPFAIL;
			goto out;
		}
		if (rc != 250) {
			ret = smtp_fail(&s, ST_HELO, "HELO");
			goto quit;
		}
	}

	for (i = 0; i < rcpts->n; i++)
		if (sm_addr_is_8bit(rcpts->v[i]))
			is_utf8 = true;
	if (s.ext & EXT_SIZE)
		(void)buf_printf(&params, " SIZE=%llu",
		    (unsigned long long)msg->size);
	if (conf->body != NULL)
		(void)buf_printf(&params, " BODY=%s", conf->body);
	else if (msg->is_8bit && (s.ext & EXT_8BITMIME))
		(void)buf_puts(&params, " BODY=8BITMIME");
	if (is_utf8 && (s.ext & EXT_SMTPUTF8))
		(void)buf_puts(&params, " SMTPUTF8");
	if ((s.ext & EXT_DSN) && conf->ret != NULL)
		(void)buf_printf(&params, " RET=%s", conf->ret);
	if ((s.ext & EXT_DSN) && conf->envid != NULL) {
		(void)buf_puts(&params, " ENVID=");
		smtp_xtext(&params, conf->envid);
	}
	if ((rc = smtp_cmd(&s, false, "MAIL FROM:<%s>%s", conf->sender,
	    buf_cstr(&params))) < 0) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	if (rc != 250) {
		ret = smtp_fail(&s, ST_MAIL, conf->sender[0] != '\0' ?
		    conf->sender : "<>");
		goto quit;
	}

	buf_reset(&params);
	if ((s.ext & EXT_DSN) && conf->notify != NULL)
		(void)buf_printf(&params, " NOTIFY=%s", conf->notify);
	for (i = 0; i < rcpts->n; i++) {
		if ((rc = smtp_cmd(&s, false, "RCPT TO:<%s>%s", rcpts->v[i],
		    buf_cstr(&params))) < 0) {
			ret = EX_TEMPFAIL;
			goto out;
		}
		if (rc == 250 || rc == 251) {
			accepted++;
			continue;
		}
		rc = smtp_fail(&s, ST_RCPT, rcpts->v[i]);
		if (ret == 0)
			ret = rc;
	}
	if (accepted == 0)
		goto quit;

	if ((rc = smtp_cmd(&s, false, "DATA")) < 0) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	if (rc != 354) {
		ret = smtp_fail(&s, ST_DATA, "DATA");
		goto quit;
	}
	if ((rc = smtp_send_content(&s, msg)) < 0) {
		ret = rc == -2 ? EX_IOERR : EX_TEMPFAIL;
		goto out;
	}
	if ((rc = smtp_reply(&s, false)) < 0) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	if (rc != 250) {
		ret = smtp_fail(&s, ST_END, "message refused");
		goto quit;
	}
quit:
	smtp_quit(&s);
out:
	buf_deinit(&params);
	buf_deinit(&s.text);
	stream_free(&s.st);
	return ret;
}
