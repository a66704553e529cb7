/*
 * data - DATA and BDAT: the message content into the queue file
 *
 * The content goes through lib/smtp_data (end marker only at
 * <CRLF>.<CRLF>, dot-unstuffing, bare CR / LF detection) straight into
 * the queue writer, preceded by our Received: header (RFC 5321 4.4).
 * message_size_limit is checked on the unstuffed bytes as they arrive:
 * past it nothing more is written, the rest is read and dropped, and
 * the answer is 552 5.3.4 (for BDAT, the chunk size is checked before
 * its bytes come).  A message with a bare CR or LF is refused after the
 * data with 550 5.5.2 unless smtpd_reject_bare_lf = no.  Any refusal
 * frees the writer, which unlinks the unfinished file; so does a client
 * that goes away mid-message.
 *
 * BDAT (RFC 3030): every chunk's bytes are read, even when the command
 * is refused, so the session stays in step; after a refused chunk the
 * rest of the transaction's chunks get the same refusal until LAST or
 * RSET.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "smtpd.h"

#define DATA_CHUNK	16384

static void
data_received(struct smtpd_session *s, struct buf *b)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	(void)localtime_r(&now, &tm);
	if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z",
	    &tm) == 0)
		date[0] = '\0';
	if (s->is_local)
		(void)buf_printf(b, "Received: from local (uid %ld)\r\n",
		    (long)(int)s->uid);
	else
		(void)buf_printf(b, "Received: from %s (%s [%s])\r\n",
		    s->helo, s->client_name, s->client_addr);
	if (s->is_tls) {
		(void)buf_printf(b, "\t(using %s with cipher %s (%d/%d bits))"
		    "\r\n", s->tls.version, s->tls.cipher, s->tls.bits,
		    s->tls.bits);
		if (s->tls.has_peer_cert)
			(void)buf_printf(b, "\t(Client CN \"%s\", %s)\r\n",
			    s->tls.peer_cn, s->tls.is_peer_verified ?
			    "verified OK" : "not verified");
	}
	if (s->auth_user != NULL)
		(void)buf_printf(b, "\t(Authenticated sender: %s)\r\n",
		    s->auth_user);
	(void)buf_printf(b, "\tby %s (posta) with %s id %s", smtpd.myhostname,
	    smtpd_proto(s), s->env->id);
	if (s->env->nrcpt == 1)
		(void)buf_printf(b, "\r\n\tfor <%s>; %s\r\n",
		    s->env->rcpt[0].addr, date);
	else
		(void)buf_printf(b, "; %s\r\n", date);
}

/* data_open - the queue file with its Received: header; 0 or -1 (r) */
static int
data_open(struct smtpd_session *s, struct reply *r)
{
	struct buf b;
	int rc = 0;

	if (smtpd_queue_start(s, r) < 0)
		return -1;
	buf_init(&b, 8192);
	data_received(s, &b);
	if (queue_writer_write(s->qw, buf_cstr(&b), buf_len(&b)) < 0) {
		reply_set(r, 451, "4.3.0", "Error: queue file write error");
		queue_writer_free(&s->qw);
		rc = -1;
	}
	buf_deinit(&b);
	s->msg_size = 0;
	s->data_too_big = false;
	s->data_io_failed = false;
	return rc;
}

void
smtpd_cmd_data(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	struct reply r;

	(void)cmd;
	if (s->env == NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->bdat_used) {
		smtpd_reply(s, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (s->env->nrcpt == 0) {
		smtpd_reply(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	if (data_open(s, &r) < 0) {
		smtpd_reply_r(s, &r);
		return;
	}
	smtp_data_init(&s->data, 0);
	smtpd_reply_raw(s, "354 End data with <CR><LF>.<CR><LF>");
	s->state = SS_DATA;
}

/* data_store - content out of the state machine into the file */
static void
data_store(struct smtpd_session *s, const char *p, size_t n)
{
	s->msg_size = s->data.size;
	if (s->data_too_big || s->data_io_failed || s->qw == NULL)
		return;
	if (s->data.size > smtpd.size_limit) {
		s->data_too_big = true;
		return;
	}
	if (n > 0 && queue_writer_write(s->qw, p, n) < 0) {
		s->data_io_failed = true;
		reply_set(&s->data_err, 451, "4.3.0", "Error: queue file "
		    "write error");
	}
}

/* data_end - the whole message is in: refuse it, or make it durable */
static void
data_end(struct smtpd_session *s, const char *verb)
{
	struct reply r;

	if (s->data_too_big)
		reply_set(&r, 552, "5.3.4", "Error: message file too big");
	else if (s->data_io_failed)
		r = s->data_err;
	else if (smtpd.reject_bare_lf && s->data.flags != 0)
		reply_set(&r, 550, "5.5.2", "Error: message contains a bare "
		    "%s (see RFC 5321 2.3.8)",
		    (s->data.flags & SMTP_DATA_BARE_LF) ? "<LF>" : "<CR>");
	else {
		s->state = SS_QUEUE;
		smtpd_queue_commit(s);
		return;
	}
	smtpd_log_reject(s, verb, &r, NULL);
	smtpd_transaction_reset(s);	/* unlinks the file */
	smtpd_reply_r(s, &r);
	s->state = SS_CMD;
}

/* bdat_chunk_end - a chunk's bytes are all read */
static void
bdat_chunk_end(struct smtpd_session *s)
{
	char out[8];
	size_t n;

	if (s->bdat_failed) {
		smtpd_reply_r(s, &s->bdat_err);
		/* no MAIL: no transaction to keep failing */
		if (s->bdat_last || s->env == NULL)
			smtpd_transaction_reset(s);
		s->state = SS_CMD;
		return;
	}
	if (!s->bdat_last) {
		smtpd_reply(s, 250, "2.0.0", "Ok: %llu bytes",
		    (unsigned long long)s->msg_size);
		s->state = SS_CMD;
		return;
	}
	n = smtp_data_finish(&s->data, out);
	data_store(s, out, n);
	data_end(s, "BDAT");
}

void
smtpd_cmd_bdat(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	struct reply r;

	s->bdat_left = cmd->chunk_size;
	s->bdat_last = cmd->last;
	if (!s->bdat_failed) {
		if (s->env == NULL) {
			reply_set(&r, 503, "5.5.1", "Error: need MAIL command");
			goto fail;
		}
		if (s->env->nrcpt == 0) {
			reply_set(&r, 554, "5.5.1", "Error: no valid "
			    "recipients");
			goto fail;
		}
		if (!s->bdat_used) {
			if (data_open(s, &r) < 0)
				goto fail;
			smtp_data_init(&s->data, SMTP_DATA_RAW);
			s->bdat_used = true;
		}
		if (cmd->chunk_size > smtpd.size_limit ||
		    s->msg_size + cmd->chunk_size > smtpd.size_limit) {
			reply_set(&r, 552, "5.3.4", "Error: message file too "
			    "big");
			smtpd_log_reject(s, "BDAT", &r, NULL);
			goto fail;
		}
	}
	s->state = SS_BDAT;
	if (s->bdat_left == 0)
		bdat_chunk_end(s);
	return;

fail:
	/* the chunk's bytes are on their way: read and drop them */
	queue_writer_free(&s->qw);
	s->bdat_failed = true;
	s->bdat_err = r;
	s->state = SS_BDAT;
	if (s->bdat_left == 0)
		bdat_chunk_end(s);
}

int
smtpd_data_input(struct smtpd_session *s)
{
	char out[SMTP_DATA_OUT_MAX(DATA_CHUNK)];
	const char *p;
	size_t len, used, olen;

	len = stream_peek(s->st, &p);
	if (len == 0)
		return 0;
	if (len > DATA_CHUNK)
		len = DATA_CHUNK;
	if (s->state == SS_BDAT) {
		if (len > s->bdat_left)
			len = (size_t)s->bdat_left;
		if (s->bdat_failed) {
			used = len;
			olen = 0;
		} else
			used = smtp_data_push(&s->data, p, len, out, &olen);
		stream_consume(s->st, used);
		if (!s->bdat_failed)
			data_store(s, out, olen);
		s->bdat_left -= used;
		smtpd_progress(s);
		if (s->bdat_left == 0)
			bdat_chunk_end(s);
		return 1;
	}
	used = smtp_data_push(&s->data, p, len, out, &olen);
	stream_consume(s->st, used);
	data_store(s, out, olen);
	smtpd_progress(s);
	if (s->data.is_done)
		data_end(s, "DATA");
	return 1;
}
