/*
 * qmgr - the queue manager: schedules deliveries from the queue
 *
 * main.c only sets up: settings, the transport resolver, the ipc
 * server on private/qmgr, the first scan and the scan timer; see
 * qmgr.h for the files that do the work.
 *
 * The listening socket: master passes private/qmgr as fd 3; qmgr takes
 * it from the skeleton (server_take_listener) and serves it with
 * lib/ipc's server.  Run by hand (no socket passed) qmgr makes
 * private/qmgr itself with ipc_listen().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "server.h"
#include "settings.h"

#define QMGR_SOCKET	"private/qmgr"

struct qmgr qm;

static void
qmgr_conf_load(struct cfg *cfg)
{
	struct qmgr_conf *c = &qm.conf;

	c->queue_run_delay = cfg_int(cfg, "queue_run_delay");
	c->min_backoff = cfg_int(cfg, "minimal_backoff_time");
	c->max_backoff = cfg_int(cfg, "maximal_backoff_time");
	c->queue_lifetime = cfg_int(cfg, "maximal_queue_lifetime");
	c->bounce_lifetime = cfg_int(cfg, "bounce_queue_lifetime");
	c->delay_warning = cfg_int(cfg, "delay_warning_time");
	c->ipc_timeout = cfg_int(cfg, "qmgr_ipc_timeout");
	c->active_limit = (size_t)cfg_int(cfg, "qmgr_message_active_limit");
	c->bounce_size_limit = (uint64_t)cfg_int(cfg, "bounce_size_limit");
	c->myhostname = cfg_str(cfg, "myhostname");
	c->postmaster = cfg_str(cfg, "postmaster_address");
	c->bounce_notice = cfg_str(cfg, "bounce_notice_recipient");
}

/* qmgr_listen_fd - the listening socket to serve, or -1 */
static int
qmgr_listen_fd(void)
{
	int lfd;

	/* under master: private/qmgr is fd 3, served by lib/ipc */
	if (server_listeners() > 0)
		return server_take_listener(0);
	if ((lfd = ipc_listen(QMGR_SOCKET, 0600)) < 0)
		log_err("cannot listen on %s: %s", QMGR_SOCKET,
		    strerror(errno));
	return lfd;
}

/*
 * qmgr_pre_drop - read the transports' own files (smtp.conf...) while
 * still root: the scheduling limits of a transport may be set there
 */
static int
qmgr_pre_drop(struct cfg *cfg)
{
	struct buf errs;
	size_t i;

	(void)cfg;
	qm.tp_cfg = xcalloc(qtransports_n, sizeof(*qm.tp_cfg));
	buf_init(&errs, 0);
	for (i = 0; i < qtransports_n; i++) {
		if (settings_scope(qtransports[i].name) == 0)
			continue;
		buf_reset(&errs);
		qm.tp_cfg[i] = settings_open(qtransports[i].name,
		    server_config_dir(), &errs);
		if (qm.tp_cfg[i] == NULL) {
			log_lines(LOG_L_WARN, buf_cstr(&errs));
			log_warn("%s: its limits come from qmgr's settings",
			    qtransports[i].name);
		}
	}
	buf_deinit(&errs);
	return 0;
}

static int
qmgr_init(struct ev *ev, struct cfg *cfg)
{
	static const char *const dirs[] = { "incoming", "active",
	    "deferred", "hold", "corrupt", "private", QUEUE_FREE_DIR };
	struct buf errs;
	size_t i;
	int lfd;

	qm.ev = ev;
	qm.cfg = cfg;
	qmgr_conf_load(cfg);
	buf_init(&errs, 0);
	if ((qm.res = resolve_new(cfg, &errs)) == NULL) {
		log_lines(LOG_L_ERR, buf_cstr(&errs));
		buf_deinit(&errs);
		return -1;
	}
	buf_deinit(&errs);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST) {
			log_err("mkdir %s: %s", dirs[i], strerror(errno));
			return -1;
		}
	if ((lfd = qmgr_listen_fd()) < 0)
		return -1;
	TAILQ_INIT(&qm.active);
	index_init();
	sched_init();
	qm.ipc = ipc_server_new(ev, lfd, qmgr_handlers, NULL, NULL);
	log_info("started: queue_run_delay=%llds, backoff %llds..%llds, "
	    "active limit %zu", (long long)qm.conf.queue_run_delay,
	    (long long)qm.conf.min_backoff, (long long)qm.conf.max_backoff,
	    qm.conf.active_limit);
	scan_all(true);
	scan_schedule();
	return 0;
}

static void
qmgr_free_ent(struct qent *e, void *arg)
{
	(void)arg;
	index_del(e);
}

/* qmgr_stop - SIGTERM: mail in active/ stays there for the next start */
static void
qmgr_stop(struct ev *ev)
{
	struct qmsg *m;

	qm.stopping = true;
	ev_timer_cancel(ev, &qm.scan_timer);
	ev_timer_cancel(ev, &qm.defer_timer);
	sched_cancel_all();
	ipc_async_pool_close();
	ipc_server_free(&qm.ipc);
	while ((m = TAILQ_FIRST(&qm.active)) != NULL) {
		TAILQ_REMOVE(&qm.active, m, link);
		if (m->fd >= 0)
			(void)close(m->fd);
		queue_env_free(&m->env);
		free(m);
	}
	qm.nactive = 0;
	index_foreach(qmgr_free_ent, NULL);
	free(qm.hash);
	qm.hash = NULL;
	free(qm.dhash);
	free(qm.tp_busy);
	free(qm.tp_limit);
	free(qm.tp_dest_limit);
	free(qm.tp_rcpt_limit);
	free(qm.tp_rate_delay);
	ev_timer_cancel(ev, &qm.rate_timer);
	if (qm.tp_cfg != NULL)
		for (size_t i = 0; i < qtransports_n; i++)
			cfg_free(&qm.tp_cfg[i]);
	free(qm.tp_cfg);
	resolve_free(&qm.res);
	log_info("stopped");
	ev_stop(ev);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "qmgr",
		.pre_drop = qmgr_pre_drop,
		.init = qmgr_init,
		.stop = qmgr_stop,
	};

	return server_main(argc, argv, &ops);
}
