/*
 * master - the posta supervisor
 *
 *	master [-c config_dir] [-d] [-f] [-t]
 *
 * Reads posta.conf and master.conf, makes the queue directory, takes the
 * pid-file lock, opens every listening socket and starts the services;
 * then supervises them on the event loop until SIGTERM or SIGINT.
 * SIGHUP reloads.  See master(8).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "settings.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: master [-c config_dir] [-d] [-f] [-t]\n");
	exit(2);
}

static void
on_term(struct ev *ev, int signo, void *arg)
{
	(void)ev;
	log_info("signal %d: stopping", signo);
	master_stop(arg);
}

static void
on_keepalive(struct ev *ev, void *arg)
{
	struct master *m = arg;

	/* the loop ends when nothing is pending: keep one timer */
	m->keepalive = ev_timer_add(ev, 3600 * 1000, on_keepalive, m);
}

/* master_test - -t: exit 0 if a master runs on the queue, else 1 */
static int
master_test(const char *dir)
{
	struct buf errs;
	struct cfg *cfg;
	long pid;
	int rc;

	buf_init(&errs, 0);
	if ((cfg = settings_open("master", dir, &errs)) == NULL) {
		master_log_errors(&errs);
		exit(1);
	}
	rc = master_pid_test(cfg_str(cfg, "queue_directory"), &pid);
	if (rc == 1)
		printf("master is running (pid %ld)\n", pid);
	else
		printf("master is not running\n");
	cfg_free(&cfg);
	buf_deinit(&errs);
	return rc == 1 ? 0 : 1;
}

static void __attribute__((noreturn))
fatal_errs(const struct buf *errs, const char *what)
{
	master_log_errors(errs);
	log_fatal("%s", what);
}

int
main(int argc, char **argv)
{
	struct master m;
	struct master_svc *svc;
	struct buf errs;
	char dir[PATH_MAX];
	const char *cdir = NULL;
	int c, do_test = 0, ready_fd = -1;
	size_t i;

	memset(&m, 0, sizeof(m));
	m.pidfd = -1;
	while ((c = getopt(argc, argv, "c:dft")) != -1) {
		switch (c) {
		case 'c':
			cdir = optarg;
			break;
		case 'd':
			m.is_debug = 1;
			break;
		case 'f':
			m.is_foreground = 1;
			break;
		case 't':
			do_test = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	(void)unsetenv("POSTA_LOG_FILE");
	(void)unsetenv("POSTA_LOG_STDERR");
	log_init("master", LOG_TO_STDERR);
	if (cdir == NULL)
		cdir = settings_config_dir();
	/* absolute: reloads and children must find it after chdir */
	if (realpath(cdir, dir) == NULL) {
		log_err("configuration directory %s: %s", cdir,
		    strerror(errno));
		return 1;
	}
	m.config_dir = dir;
	if (do_test)
		return master_test(dir);

	buf_init(&errs, 0);
	if (master_config_load(dir, &m.cfg, &m.mcf, &errs) < 0)
		fatal_errs(&errs, "configuration errors: not started");
	(void)master_log_setup(&m);
	if (master_queue_setup(m.cfg, &errs) < 0)
		fatal_errs(&errs, "cannot set up the queue directory");
	if (master_pid_lock(cfg_str(m.cfg, "queue_directory"), &m.pidfd,
	    &errs) < 0)
		fatal_errs(&errs, "not started");
	if (!m.is_foreground && master_daemonize(&ready_fd) < 0)
		log_fatal("cannot detach");
	if (master_pid_write(m.pidfd) < 0)
		log_fatal("cannot write the pid file: %s", strerror(errno));

	(void)signal(SIGPIPE, SIG_IGN);
	m.ev = ev_new();
	if (ev_signal(m.ev, SIGCHLD, master_on_child, &m) < 0 ||
	    ev_signal(m.ev, SIGHUP, master_on_hup, &m) < 0 ||
	    ev_signal(m.ev, SIGTERM, on_term, &m) < 0 ||
	    ev_signal(m.ev, SIGINT, on_term, &m) < 0)
		log_fatal("ev_signal: %s", strerror(errno));
	on_keepalive(m.ev, &m);

	/* every socket first: a port that cannot be had stops the start */
	for (i = 0; i < m.mcf->n; i++) {
		svc = master_svc_new(&m, &m.mcf->svc[i]);
		if (master_svc_listen(svc, &errs) < 0)
			fatal_errs(&errs, "cannot open the listening sockets");
	}
	for (svc = m.svcs; svc != NULL; svc = svc->next)
		master_svc_fill(svc);
	log_info("started: %zu services, queue_directory %s", m.mcf->n,
	    cfg_str(m.cfg, "queue_directory"));
	master_notify("READY=1");
	master_daemon_ready(ready_fd);

	if (ev_run(m.ev) < 0)
		log_err("event loop failed");

	/* stopped: every child is gone */
	for (svc = m.svcs; svc != NULL; svc = svc->next) {
		svc->conf = NULL;
		svc->nprocs = 0;
	}
	master_svc_gc(&m);
	ev_timer_cancel(m.ev, &m.keepalive);
	ev_timer_cancel(m.ev, &m.stop_timer);
	master_pid_clear(m.pidfd);
	log_info("stopped");
	ev_free(&m.ev);
	mastercf_free(&m.mcf);
	cfg_free(&m.cfg);
	buf_deinit(&errs);
	return 0;
}
