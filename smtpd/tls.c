/*
 * tls - STARTTLS (RFC 3207) and implicit TLS (smtpd_tls_wrappermode)
 *
 * The server context is made before privileges are dropped (the key is
 * root's).  smtpd_tls_security_level: none (no STARTTLS), may (offered),
 * encrypt (offered, and nothing but EHLO HELO STARTTLS NOOP RSET QUIT
 * HELP before it: 530 5.7.0).  With level may and no certificate
 * configured, STARTTLS is not offered and a warning is logged; with
 * encrypt or wrapper mode that is a fatal configuration error.
 *
 * After "220 2.0.0 Ready to start TLS" is flushed, stream_starttls()
 * drops every byte the client sent after STARTTLS in plaintext
 * (CVE-2011-0411 command injection): those commands never run, and the
 * count is logged.  A failed handshake ends the session without a
 * word.  A finished handshake resets the session (RFC 3207 4.2: the
 * client must say EHLO again), then the certificate fingerprint, if
 * any, is looked up in smtpd_tls_fingerprint_maps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "smtpd.h"

int
smtpd_tls_pre_drop(struct cfg *c)
{
	struct tls_conf tc;
	struct buf errs;
	int rc = 0;

	if (smtpd.tls_level == SMTPD_TLS_NONE && !smtpd.wrappermode)
		return 0;
	buf_init(&errs, 0);
	if (tls_conf_from_cfg(c, &tc, &errs) < 0)
		rc = -1;
	else if (tc.cert_file == NULL || *tc.cert_file == '\0') {
		if (smtpd.tls_level == SMTPD_TLS_MAY && !smtpd.wrappermode) {
			log_warn("smtpd_tls_security_level = may but no "
			    "tls_cert_file: STARTTLS is not offered");
			smtpd.tls_level = SMTPD_TLS_NONE;
		} else {
			log_err("TLS is required here (smtpd_tls_security_"
			    "level = encrypt or smtpd_tls_wrappermode) but "
			    "tls_cert_file is empty");
			rc = -1;
		}
	} else if ((smtpd.tls_ctx = tls_server_ctx(&tc, &errs)) == NULL)
		rc = -1;
	if (rc < 0 && buf_len(&errs) > 0)
		log_err("%.*s", (int)(buf_len(&errs) - 1), buf_cstr(&errs));
	buf_deinit(&errs);
	return rc;
}

int
smtpd_tls_offered(const struct smtpd_session *s)
{
	return smtpd.tls_ctx != NULL && smtpd.tls_level != SMTPD_TLS_NONE &&
	    !s->is_tls && !s->is_local;
}

void
smtpd_cmd_starttls(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->is_tls) {
		smtpd_reply(s, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (!smtpd_tls_offered(s)) {
		smtpd_reply(s, 502, "5.5.1", "Error: command not "
		    "implemented");
		return;
	}
	if (s->env != NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: MAIL transaction in "
		    "progress");
		return;
	}
	smtpd_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* nothing after this command is read before the handshake */
	s->state = SS_TLS_FLUSH;
}

int
smtpd_tls_wrapper_start(struct smtpd_session *s)
{
	if (smtpd.tls_ctx == NULL ||
	    stream_tls_accept(s->st, smtpd.tls_ctx) < 0) {
		log_err("%s: cannot start TLS: %s", s->client,
		    s->st != NULL ? stream_error(s->st) : "no context");
		return -1;
	}
	s->state = SS_HANDSHAKE;
	return 0;
}

static void
tls_established(struct smtpd_session *s)
{
	s->is_tls = true;
	if (tls_info_get(stream_ssl(s->st), &s->tls) < 0)
		memset(&s->tls, 0, sizeof(s->tls));
	s->is_cert_trusted = false;
	if (s->tls.has_peer_cert &&
	    smtpd_policy_cert(s->tls.peer_fingerprint) == 1)
		s->is_cert_trusted = true;
	log_info("%s TLS connection established from %s: %s with cipher %s "
	    "(%d/%d bits)%s%s", s->tls.has_peer_cert ? (s->is_cert_trusted ?
	    "Trusted" : "Untrusted") : "Anonymous", s->client,
	    s->tls.version, s->tls.cipher, s->tls.bits, s->tls.bits,
	    s->tls.has_peer_cert ? " fingerprint=" : "",
	    s->tls.peer_fingerprint);
	/* RFC 3207 4.2: forget what the client said before */
	s->has_helo = false;
	s->is_esmtp = false;
	s->helo[0] = '\0';
	smtpd_transaction_reset(s);
	s->state = SS_CMD;
	smtpd_progress(s);
	if (s->is_wrapped)
		smtpd_banner(s);
}

int
smtpd_tls_step(struct smtpd_session *s)
{
	ssize_t dropped;
	int r;

	if (s->state == SS_TLS_FLUSH) {
		r = stream_flush(s->st);
		if (r == 0)
			return 0;
		if (r < 0) {
			log_info("lost connection after STARTTLS from %s: %s",
			    s->client, stream_error(s->st));
			smtpd_session_close(s);
			return 0;
		}
		dropped = stream_starttls(s->st, smtpd.tls_ctx, true);
		if (dropped < 0) {
			log_err("%s: STARTTLS: %s", s->client,
			    stream_error(s->st));
			smtpd_session_close(s);
			return 0;
		}
		if (dropped > 0)
			log_warn("%s: improper command pipelining after "
			    "STARTTLS: %zd bytes discarded", s->client,
			    dropped);
		s->state = SS_HANDSHAKE;
	}
	r = stream_handshake(s->st);
	if (r == 0)
		return 0;
	if (r < 0) {
		log_info("SSL_accept error from %s: %s", s->client,
		    stream_error(s->st));
		smtpd_session_close(s);
		return 0;
	}
	tls_established(s);
	return 1;
}
