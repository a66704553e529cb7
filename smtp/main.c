/*
 * smtp - the smtp delivery agent (see smtp(8))
 *
 * Run by master as "smtp -c CONFIG_DIR -n SERVICE" on the unix socket
 * private/smtp.  This file only sets up: the settings into smtp_conf,
 * the TLS client context (before privileges drop: a client key may be
 * root's), the resolver and the ipc server; job.c and conn.c do the
 * work, all of it on the one event loop.
 *
 * Run by hand (no socket passed) it makes private/smtp itself with
 * ipc_listen(), as qmgr does.  SIGTERM: no new request is taken, jobs
 * that wait for a session are answered "deferred", the deliveries
 * under way finish, cached connections get their QUIT, then the loop
 * ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cfg.h"
#include "log.h"
#include "mem.h"
#include "server.h"
#include "smtp.h"

#define SMTP_SOCKET	"private/smtp"

struct smtp_conf smtp_conf;
struct smtp_g smtp_g;

double
smtp_now(void)
{
	struct timeval tv;

	(void)gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int
smtp_ms(struct cfg *cfg, const char *name)
{
	long long s = cfg_int(cfg, name);

	return s > 86400 ? 86400 * 1000 : (int)(s * 1000);
}

static int
smtp_bind_parse(const char *s)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&smtp_conf.bind_addr;
	struct sockaddr_in6 *sin6 =
	    (struct sockaddr_in6 *)&smtp_conf.bind_addr;

	memset(&smtp_conf.bind_addr, 0, sizeof(smtp_conf.bind_addr));
	smtp_conf.bind_len = 0;
	if (*s == '\0')
		return 0;
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		smtp_conf.bind_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		smtp_conf.bind_len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static int
smtp_conf_load(struct cfg *cfg)
{
	struct smtp_conf *c = &smtp_conf;
	const char *pos = cfg_str(cfg, "smtp_tls_policy_maps");
	char spec[4096];
	struct buf errs;
	struct map *m;
	int rc;

	c->connect_ms = smtp_ms(cfg, "smtp_connect_timeout");
	c->helo_ms = smtp_ms(cfg, "smtp_helo_timeout");
	c->mail_ms = smtp_ms(cfg, "smtp_mail_timeout");
	c->rcpt_ms = smtp_ms(cfg, "smtp_rcpt_timeout");
	c->rset_ms = smtp_ms(cfg, "smtp_rset_timeout");
	c->data_init_ms = smtp_ms(cfg, "smtp_data_init_timeout");
	c->data_xfer_ms = smtp_ms(cfg, "smtp_data_xfer_timeout");
	c->data_done_ms = smtp_ms(cfg, "smtp_data_done_timeout");
	c->cache_ms = smtp_ms(cfg, "smtp_connection_cache_time");
	c->helo_name = xstrdup(cfg_str(cfg, "smtp_helo_name"));
	c->myhostname = xstrdup(cfg_str(cfg, "myhostname"));
	c->mx_address_limit = (unsigned)cfg_int(cfg, "smtp_mx_address_limit");
	c->reuse_limit = (unsigned)cfg_int(cfg, "smtp_connection_reuse_limit");
	c->max_sessions = (unsigned)cfg_int(cfg, "smtp_max_sessions");
	c->line_limit = (size_t)cfg_int(cfg, "smtp_line_length_limit");
	if (*c->helo_name == '\0') {
		free(c->helo_name);
		c->helo_name = xstrdup(c->myhostname);
	}
	if (smtp_tls_level_parse(cfg_str(cfg, "smtp_tls_security_level"),
	    &c->tls_level) < 0) {
		log_err("smtp_tls_security_level: not none|may|encrypt|verify");
		return -1;
	}
	if (smtp_bind_parse(cfg_str(cfg, "smtp_bind_address")) < 0) {
		log_err("smtp_bind_address: not an IP address: %s",
		    cfg_str(cfg, "smtp_bind_address"));
		return -1;
	}
	buf_init(&errs, 64 * 1024);
	while ((rc = cfg_list_next(&pos, spec, sizeof(spec))) > 0) {
		if ((m = map_open(spec, &errs)) == NULL) {
			log_lines(LOG_L_ERR, buf_cstr(&errs));
			buf_deinit(&errs);
			return -1;
		}
		c->policy_maps = xreallocarray(c->policy_maps,
		    c->npolicy_maps + 1, sizeof(*c->policy_maps));
		c->policy_maps[c->npolicy_maps++] = m;
	}
	buf_deinit(&errs);
	if (rc < 0) {
		log_err("smtp_tls_policy_maps: a table name is too long");
		return -1;
	}
	return 0;
}

static void
smtp_conf_free(void)
{
	struct smtp_conf *c = &smtp_conf;
	size_t i;

	free(c->helo_name);
	free(c->myhostname);
	for (i = 0; i < c->npolicy_maps; i++)
		map_close(&c->policy_maps[i]);
	free(c->policy_maps);
	if (c->tls_ctx != NULL)
		SSL_CTX_free(c->tls_ctx);
	memset(c, 0, sizeof(*c));
}

static int
smtp_pre_drop(struct cfg *cfg)
{
	return smtp_tls_pre_drop(cfg);
}

static const struct ipc_handler smtp_handlers[] = {
	{ "deliver", smtp_job_deliver },
	{ NULL, NULL },
};

static int
smtp_init(struct ev *ev, struct cfg *cfg)
{
	struct buf errs;
	int lfd;

	smtp_g.ev = ev;
	log_set_debug(cfg_bool(cfg, "debug"));
	if (smtp_conf_load(cfg) < 0)
		return -1;
	buf_init(&errs, 0);
	if ((smtp_g.dns = dns_new(cfg, ev, &errs)) == NULL) {
		log_lines(LOG_L_ERR, buf_cstr(&errs));
		buf_deinit(&errs);
		return -1;
	}
	buf_deinit(&errs);
	if (server_listeners() > 0)
		lfd = server_take_listener(0);
	else if ((lfd = ipc_listen(SMTP_SOCKET, 0600)) < 0)
		log_err("cannot listen on %s: %s", SMTP_SOCKET,
		    strerror(errno));
	if (lfd < 0)
		return -1;
	smtp_g.ipc = ipc_server_new(ev, lfd, smtp_handlers, NULL, NULL);
	log_info("started: tls %s, max %u sessions, connection cache %ds",
	    smtp_tls_level_name(smtp_conf.tls_level), smtp_conf.max_sessions,
	    smtp_conf.cache_ms / 1000);
	return 0;
}

static void
smtp_on_drained(void *arg)
{
	(void)arg;
	smtp_g.is_drained = true;
	smtp_stopping_check();
}

static void
smtp_stop(struct ev *ev)
{
	(void)ev;
	smtp_g.is_stopping = true;
	ipc_server_on_drained(smtp_g.ipc, smtp_on_drained, NULL);
	ipc_server_drain(smtp_g.ipc);
	smtp_job_abort_waiting();
	smtp_conn_cache_close_all();
	smtp_stopping_check();
}

/* smtp_final - from the loop: nothing left, free what needs the loop */
static void
smtp_final(struct ev *ev, void *arg)
{
	(void)arg;
	ipc_server_free(&smtp_g.ipc);
	dns_free(&smtp_g.dns);
	ev_stop(ev);
}

void
smtp_stopping_check(void)
{
	static bool is_scheduled;

	if (!smtp_g.is_stopping || !smtp_g.is_drained || smtp_g.njobs > 0 ||
	    smtp_conn_count() > 0 || smtp_g.ev == NULL || is_scheduled)
		return;
	is_scheduled = true;
	ev_later(smtp_g.ev, smtp_final, NULL);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "smtp",
		.pre_drop = smtp_pre_drop,
		.init = smtp_init,
		.stop = smtp_stop,
	};
	int rc;

	rc = server_main(argc, argv, &ops);
	smtp_conf_free();
	if (rc == 0)
		log_info("stopped");
	return rc;
}
