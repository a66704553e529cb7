/*
 * auth - AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) against user_database
 *
 * Offered when smtpd_sasl_auth_enable = yes, and with
 * smtpd_tls_auth_only = yes (the default) only once TLS is up; AUTH
 * before that gets 538 5.7.11.  An initial response may come with the
 * command ("=" is an empty one); otherwise the server asks with 334.
 * "*" cancels (501 5.7.0).  Responses are strict base64.
 *
 * A failed attempt is answered 535 5.7.8 only after
 * smtpd_auth_failure_delay times the client's failures so far (at most
 * 30 s), and counted per client address in this process (forgotten
 * after 15 quiet minutes); at smtpd_auth_failure_limit the client gets
 * 421 4.7.0 and is disconnected, and later sessions from it are cut
 * off at their first AUTH.  Passwords are wiped from memory after the
 * check and never logged.
 *
 * userdb_auth() is a blocking call (file: databases answer from memory;
 * ldap: binds, which blocks the loop for that time).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"
#include "smtpd.h"

#define AUTH_DELAY_MAX_MS	30000
#define AUTH_USER_MAX		255
#define AUTH_DECODED_MAX	2048

static const char auth_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* auth_b64_decode - strict base64 (padding required); length or -1 */
static long
auth_b64_decode(const char *in, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0, pad = 0;
	unsigned v = 0;
	const char *p;
	int k;

	if (len % 4 != 0 || len / 4 * 3 > outsz)
		return -1;
	for (i = 0; i < len; i++) {
		if (in[i] == '=') {
			/* only at the end, at most two */
			if (i < len - 2 || (i == len - 2 && in[len - 1] != '='))
				return -1;
			pad++;
			k = 0;
		} else if (in[i] == '\0' ||
		    (p = strchr(auth_b64, in[i])) == NULL)
			return -1;
		else
			k = (int)(p - auth_b64);
		v = (v << 6) | (unsigned)k;
		if (i % 4 == 3) {
			out[o++] = (char)(v >> 16);
			out[o++] = (char)(v >> 8);
			out[o++] = (char)v;
			v = 0;
		}
	}
	return (long)(o - pad);
}

int
smtpd_auth_offered(const struct smtpd_session *s)
{
	return smtpd.sasl && smtpd.users != NULL &&
	    (s->is_tls || !smtpd.tls_auth_only);
}

void
smtpd_auth_reset(struct smtpd_session *s)
{
	if (s->auth_login_user != NULL) {
		explicit_bzero(s->auth_login_user,
		    strlen(s->auth_login_user));
		xfree(&s->auth_login_user);
	}
	s->auth_mech = SMTPD_AUTH_NONE;
	s->auth_step = 0;
}

static unsigned *
auth_counter(struct smtpd_session *s)
{
	return s->cl != NULL ? &s->cl->auth_failures : &s->auth_failures;
}

static void
auth_too_many(struct smtpd_session *s)
{
	log_warn("%s: too many failed AUTH attempts", s->client);
	smtpd_reply(s, 421, "4.7.0", "%s Error: too many authentication "
	    "failures", smtpd.myhostname);
	s->must_close = true;
}

/* auth_check - user and password: answer 235, 535 (delayed) or 454 */
static void
auth_check(struct smtpd_session *s, const char *user, const char *pass)
{
	const char *mech = s->auth_mech == SMTPD_AUTH_PLAIN ? "PLAIN" :
	    "LOGIN";
	struct reply r;
	unsigned *fails = auth_counter(s);
	char name[AUTH_USER_MAX + 1];
	size_t i, n = strlen(user);
	long long delay;
	int rc;

	rc = 0;
	reply_set(&r, 535, "5.7.8", "Error: authentication failed");
	i = 0;
	if (n > 0 && n <= AUTH_USER_MAX)
		for (; i < n; i++) {
			if ((unsigned char)user[i] <= ' ' || user[i] == 0x7f)
				break;
			name[i] = (char)tolower((unsigned char)user[i]);
		}
	name[i] = '\0';
	/* user may be s->auth_login_user, which the reset wipes */
	smtpd_auth_reset(s);
	s->state = SS_CMD;
	if (i > 0 && i == n)
		rc = userdb_auth(smtpd.users, name, pass, &r);
	else
		name[0] = '\0';
	if (rc > 0) {
		*fails = 0;
		s->auth_user = xstrdup(name);
		s->auth_method = mech;
		smtpd_reply(s, 235, "2.7.0", "Authentication successful");
		return;
	}
	if (rc < 0) {
		smtpd_reply_r(s, &r);
		return;
	}
	(*fails)++;
	if (s->cl != NULL)
		s->cl->last_failure = ev_now(smtpd.ev);
	log_warn("%s: SASL %s authentication failed: authentication "
	    "failure, sasl_username=%s", s->client, mech,
	    name[0] != '\0' ? name : "?");
	delay = (long long)smtpd.auth_delay_ms * *fails;
	if (delay > AUTH_DELAY_MAX_MS)
		delay = AUTH_DELAY_MAX_MS;
	if (delay > s->sleep_ms)
		s->sleep_ms = (int)delay;
	smtpd_reply(s, 535, "5.7.8", "Error: authentication failed");
	if (*fails >= smtpd.auth_limit && !s->must_close)
		auth_too_many(s);
}

static void
auth_plain(struct smtpd_session *s, char *msg, size_t len)
{
	char *authz = msg, *authc, *pass, *end = msg + len;

	/* authzid NUL authcid NUL passwd (RFC 4616 2) */
	authc = memchr(authz, '\0', len);
	pass = authc != NULL ? memchr(authc + 1, '\0',
	    (size_t)(end - authc - 1)) : NULL;
	if (authc == NULL || pass == NULL ||
	    memchr(pass + 1, '\0', (size_t)(end - pass - 1)) != NULL) {
		smtpd_auth_reset(s);
		s->state = SS_CMD;
		smtpd_reply(s, 501, "5.5.2", "Error: malformed PLAIN "
		    "response");
		return;
	}
	authc++;
	pass++;
	*end = '\0';
	/* acting for someone else (authzid) is not offered */
	if (*authz != '\0' && strcasecmp(authz, authc) != 0) {
		smtpd_auth_reset(s);
		s->state = SS_CMD;
		smtpd_reply(s, 535, "5.7.8", "Error: authorization identity "
		    "not allowed");
		return;
	}
	auth_check(s, authc, pass);
}

/* auth_response - one decoded client response */
static void
auth_response(struct smtpd_session *s, char *msg, size_t len)
{
	if (s->auth_mech == SMTPD_AUTH_PLAIN) {
		auth_plain(s, msg, len);
		return;
	}
	msg[len] = '\0';
	if (strlen(msg) != len) {
		smtpd_auth_reset(s);
		s->state = SS_CMD;
		smtpd_reply(s, 501, "5.5.2", "Error: malformed LOGIN "
		    "response");
		return;
	}
	if (s->auth_step == 0) {
		s->auth_login_user = xstrdup(msg);
		s->auth_step = 1;
		s->state = SS_AUTH;
		smtpd_reply_raw(s, "334 UGFzc3dvcmQ6");	/* Password: */
		return;
	}
	auth_check(s, s->auth_login_user, msg);
}

void
smtpd_auth_line(struct smtpd_session *s, const char *line, size_t len)
{
	char msg[AUTH_DECODED_MAX + 1];
	long n;

	if (len == 1 && line[0] == '*') {
		smtpd_auth_reset(s);
		s->state = SS_CMD;
		smtpd_reply(s, 501, "5.7.0", "Authentication aborted");
		return;
	}
	n = auth_b64_decode(line, len, msg, sizeof(msg) - 1);
	if (n < 0) {
		smtpd_auth_reset(s);
		s->state = SS_CMD;
		smtpd_reply(s, 501, "5.5.2", "Error: cannot decode "
		    "response");
		return;
	}
	auth_response(s, msg, (size_t)n);
	explicit_bzero(msg, sizeof(msg));
}

void
smtpd_cmd_auth(struct smtpd_session *s, struct smtp_cmd *cmd)
{
	char msg[AUTH_DECODED_MAX + 1];
	const char *mech = cmd->arg, *init;
	size_t mlen;
	long n;

	if (!smtpd.sasl || smtpd.users == NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: authentication not "
		    "enabled");
		return;
	}
	if (smtpd.tls_auth_only && !s->is_tls) {
		smtpd_reply(s, 538, "5.7.11", "Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (s->auth_user != NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->env != NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: MAIL transaction in "
		    "progress");
		return;
	}
	if (*auth_counter(s) >= smtpd.auth_limit) {
		auth_too_many(s);
		return;
	}
	mlen = strcspn(mech, " ");
	init = mech[mlen] == ' ' ? mech + mlen + 1 : NULL;
	if (mlen == 5 && strncasecmp(mech, "PLAIN", 5) == 0)
		s->auth_mech = SMTPD_AUTH_PLAIN;
	else if (mlen == 5 && strncasecmp(mech, "LOGIN", 5) == 0)
		s->auth_mech = SMTPD_AUTH_LOGIN;
	else {
		smtpd_reply(s, 504, "5.5.4", "Unsupported authentication "
		    "mechanism");
		return;
	}
	s->auth_step = 0;
	if (init == NULL) {
		s->state = SS_AUTH;
		smtpd_reply_raw(s, "%s", s->auth_mech == SMTPD_AUTH_PLAIN ?
		    "334 " : "334 VXNlcm5hbWU6");	/* Username: */
		return;
	}
	if (strcmp(init, "=") == 0)
		n = 0;
	else if ((n = auth_b64_decode(init, strlen(init), msg,
	    sizeof(msg) - 1)) < 0) {
		smtpd_auth_reset(s);
		smtpd_reply(s, 501, "5.5.2", "Error: cannot decode "
		    "response");
		return;
	}
	auth_response(s, msg, (size_t)n);
	explicit_bzero(msg, sizeof(msg));
}
