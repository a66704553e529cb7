/*
 * smtpd - the posta SMTP server (see smtpd(8))
 *
 * main only sets up: settings into struct smtpd_conf, the TLS context
 * before the privilege drop, tables, the user database and the queue
 * hand-off after it; lib/server runs the loop and hands each new
 * connection to session.c.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "server.h"
#include "smtpd.h"

static int
smtpd_pre_drop(struct cfg *c)
{
	const char *level = cfg_str(c, "smtpd_tls_security_level");

	smtpd.cfg = c;
	smtpd.myhostname = xstrdup(cfg_str(c, "myhostname"));
	smtpd.banner = xstrdup(cfg_str(c, "smtpd_banner"));
	smtpd.timeout_ms = (int)(cfg_int(c, "smtpd_timeout") * 1000);
	smtpd.rcpt_limit = (unsigned)cfg_int(c, "smtpd_recipient_limit");
	smtpd.soft_error_limit = (unsigned)cfg_int(c,
	    "smtpd_soft_error_limit");
	smtpd.hard_error_limit = (unsigned)cfg_int(c,
	    "smtpd_hard_error_limit");
	smtpd.error_sleep_ms = (int)(cfg_int(c, "smtpd_error_sleep_time") *
	    1000);
	smtpd.auth_delay_ms = (int)(cfg_int(c, "smtpd_auth_failure_delay") *
	    1000);
	smtpd.auth_limit = (unsigned)cfg_int(c, "smtpd_auth_failure_limit");
	smtpd.conn_limit = (unsigned)cfg_int(c,
	    "smtpd_client_connection_limit");
	smtpd.size_limit = (uint64_t)cfg_int(c, "message_size_limit");
	smtpd.line_max = (size_t)cfg_int(c, "smtpd_line_length_limit");
	smtpd.local_submit = cfg_bool(c, "smtpd_local_submit");
	smtpd.reject_bare_lf = cfg_bool(c, "smtpd_reject_bare_lf");
	smtpd.sasl = cfg_bool(c, "smtpd_sasl_auth_enable");
	smtpd.tls_auth_only = cfg_bool(c, "smtpd_tls_auth_only");
	smtpd.wrappermode = cfg_bool(c, "smtpd_tls_wrappermode");
	smtpd.tls_level = strcmp(level, "encrypt") == 0 ? SMTPD_TLS_ENCRYPT :
	    strcmp(level, "may") == 0 ? SMTPD_TLS_MAY : SMTPD_TLS_NONE;
	smtpd.cmd_limits = smtp_limits_default;
	smtpd.cmd_limits.line_max = smtpd.line_max;
	return smtpd_tls_pre_drop(c);
}

static void
smtpd_log_errs(struct buf *errs)
{
	log_lines(LOG_L_ERR, buf_cstr(errs));
}

static int
smtpd_init(struct ev *ev, struct cfg *c)
{
	struct buf errs;
	int rc = 0;

	smtpd.ev = ev;
	buf_init(&errs, 0);
	if (smtpd_policy_init(c, &errs) < 0)
		rc = -1;
	smtpd.users = userdb_open(cfg_str(c, "user_database"), &errs);
	if (smtpd.users == NULL)
		rc = -1;
	if (rc < 0) {
		smtpd_log_errs(&errs);
		buf_deinit(&errs);
		return -1;
	}
	if (cfg_bool(c, "smtpd_peername_lookup") &&
	    (smtpd.dns = dns_new(c, ev, &errs)) == NULL) {
		smtpd_log_errs(&errs);
		buf_deinit(&errs);
		return -1;
	}
	buf_deinit(&errs);
	smtpd_queue_init(ev, (int)cfg_int(c, "smtpd_fsync_threads"));
	log_info("%s: ready (TLS %s%s, AUTH %s)", *server_service() != '\0' ?
	    server_service() : "smtpd",
	    smtpd.tls_ctx == NULL ? "off" : smtpd.wrappermode ? "wrapper" :
	    smtpd.tls_level == SMTPD_TLS_ENCRYPT ? "required" : "offered",
	    smtpd.local_submit ? ", local submit" : "",
	    smtpd.sasl ? "on" : "off");
	return 0;
}

static void
smtpd_accept(struct ev *ev, int fd, const struct server_peer *peer)
{
	(void)ev;
	smtpd_session_new(fd, peer);
}

static void
smtpd_stop(struct ev *ev)
{
	(void)ev;
	smtpd_sessions_stop();
	/* no new lookups start now; the resolver goes with the process */
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "smtpd",
		.pre_drop = smtpd_pre_drop,
		.init = smtpd_init,
		.accept = smtpd_accept,
		.stop = smtpd_stop,
	};

	return server_main(argc, argv, &ops);
}
