/*
 * service - spawn, reap, restart and throttle the children
 *
 * Each live service keeps a fixed pool of procs processes (never more).
 * When one dies, master waits and starts another: the wait begins at
 * master_restart_delay and doubles with each restart up to
 * master_restart_max_delay; it goes back to the start once a process
 * has lived longer than master_throttle_window.  A process that dies
 * sooner than that is a fast failure; after master_throttle_count of
 * them in a row the service is throttled: nothing is started for
 * master_throttle_time, and one more fast failure after that throttles
 * it again at once.  Each decision gets one log line.
 *
 * A child is started as DAEMON_DIRECTORY/COMMAND -c CONFIG_DIR -n NAME
 * ARGS, with its sockets moved to fd 3 onward and POSTA_LISTEN_FDS set
 * (see server.h); the signal mask and handlers master changed are reset
 * first, in that order, so a SIGTERM sent in between is not lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "mem.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

static void svc_on_timer(struct ev *, void *);

struct master_svc *
master_svc_new(struct master *m, const struct mastercf_service *conf)
{
	struct master_svc *svc = xcalloc(1, sizeof(*svc)), **pp;

	svc->m = m;
	svc->name = xstrdup(conf->name);
	svc->conf = conf;
	svc->delay = cfg_int(m->cfg, "master_restart_delay") * 1000;
	for (pp = &m->svcs; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = svc;
	return svc;
}

int
master_svc_listen(struct master_svc *svc, struct buf *errs)
{
	if (svc->nfds > 0 || svc->conf->type == MASTERCF_NONE)
		return 0;
	return master_listen_open(svc->conf, svc->m->cfg, svc->fds,
	    &svc->nfds, errs);
}

/* svc_child - in the forked child: set up fds and environment, exec */
static void __attribute__((noreturn))
svc_child(struct master_svc *svc, const char *path, char **argv)
{
	static const int sigs[] = { SIGPIPE, SIGCHLD, SIGHUP, SIGTERM,
	    SIGINT };
	sigset_t none;
	int tmp[SERVER_LISTEN_MAX];
	unsigned i, n = svc->nfds;
	char count[16];

	/* handlers first, then the mask: a pending SIGTERM then kills */
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/* move the sockets to 3.. via copies above the target range */
	for (i = 0; i < n; i++)
		if ((tmp[i] = fcntl(svc->fds[i], F_DUPFD, 3 + (int)n)) < 0) {
			log_err("service %s: dup: %s", svc->name,
			    strerror(errno));
			_exit(127);
		}
	for (i = 0; i < n; i++) {
		if (dup2(tmp[i], 3 + (int)i) < 0) {
			log_err("service %s: dup2: %s", svc->name,
			    strerror(errno));
			_exit(127);
		}
		(void)close(tmp[i]);
	}
	/* nothing else of master's may leak into the child */
	(void)close_range(3 + n, ~0U, CLOSE_RANGE_CLOEXEC);

	(void)snprintf(count, sizeof(count), "%u", n);
	(void)setenv("POSTA_LISTEN_FDS", count, 1);
	(void)unsetenv("NOTIFY_SOCKET");
	execv(path, argv);
	log_err("service %s: cannot execute %s: %s", svc->name, path,
	    strerror(errno));
	_exit(127);
}

/* svc_spawn - start one process; 0, or -1 if fork failed */
static int
svc_spawn(struct master_svc *svc)
{
	const struct mastercf_service *c = svc->conf;
	struct master_proc *p;
	char path[4096], **argv;
	size_t i, n = 0;
	pid_t pid;

	if (c->command[0] == '/')
		(void)snprintf(path, sizeof(path), "%s", c->command);
	else
		(void)snprintf(path, sizeof(path), "%s/%s",
		    cfg_str(svc->m->cfg, "daemon_directory"), c->command);
	argv = xcalloc(c->nargs + 6, sizeof(*argv));
	argv[n++] = path;
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)svc->m->config_dir;
	argv[n++] = (char *)"-n";
	argv[n++] = c->name;
	for (i = 0; i < c->nargs; i++)
		argv[n++] = c->args[i];
	argv[n] = NULL;

	if ((pid = fork()) < 0) {
		log_err("service %s: fork: %s", svc->name, strerror(errno));
		free(argv);
		return -1;
	}
	if (pid == 0)
		svc_child(svc, path, argv);
	free(argv);
	p = xcalloc(1, sizeof(*p));
	p->pid = pid;
	p->started = ev_clock_ms();
	p->next = svc->procs;
	svc->procs = p;
	svc->nprocs++;
	log_debug("service %s: started process %ld", svc->name, (long)pid);
	return 0;
}

static int64_t
svc_next_delay(struct master_svc *svc)
{
	int64_t max = cfg_int(svc->m->cfg, "master_restart_max_delay") * 1000;
	int64_t d = svc->delay;

	svc->delay = d > 0 ? d * 2 : 100;
	if (svc->delay > max)
		svc->delay = max;
	return d;
}

/* master_svc_fill - start processes until the pool is full */
void
master_svc_fill(struct master_svc *svc)
{
	char t[32];
	int64_t d;

	if (svc->conf == NULL || svc->m->is_stopping || svc->timer != NULL)
		return;
	while (svc->nprocs < svc->conf->procs) {
		if (svc_spawn(svc) < 0) {
			d = svc_next_delay(svc);
			log_warn("service %s: retrying in %s", svc->name,
			    master_ms_text(d, t, sizeof(t)));
			svc->timer = ev_timer_add(svc->m->ev, d, svc_on_timer,
			    svc);
			return;
		}
	}
}

static void
svc_on_timer(struct ev *ev, void *arg)
{
	struct master_svc *svc = arg;

	(void)ev;
	svc->timer = NULL;
	if (svc->is_throttled) {
		svc->is_throttled = 0;
		/* one more fast failure throttles it again at once */
		svc->fails = (unsigned)cfg_int(svc->m->cfg,
		    "master_throttle_count") - 1;
		log_info("service %s: throttle time over, starting again",
		    svc->name);
	}
	master_svc_fill(svc);
}

static void
svc_on_kill(struct ev *ev, void *arg)
{
	struct master_svc *svc = arg;

	(void)ev;
	svc->timer = NULL;
	if (svc->nprocs == 0)
		return;
	log_warn("service %s: %u old processes still running after "
	    "SIGTERM: sending SIGKILL", svc->name, svc->nprocs);
	master_svc_signal(svc, SIGKILL);
}

void
master_svc_signal(struct master_svc *svc, int signo)
{
	struct master_proc *p;

	for (p = svc->procs; p != NULL; p = p->next)
		if (kill(p->pid, signo) < 0 && errno != ESRCH)
			log_warn("service %s: kill %ld: %s", svc->name,
			    (long)p->pid, strerror(errno));
}

/*
 * master_svc_retire - the service leaves the configuration: close its
 * sockets (those not handed on to a successor), stop its processes,
 * SIGKILL them after master_stop_timeout; it is freed when the last one
 * is reaped (master_svc_gc)
 */
void
master_svc_retire(struct master_svc *svc, int unlink_path)
{
	struct master *m = svc->m;

	svc->conf = NULL;
	svc->is_throttled = 0;
	ev_timer_cancel(m->ev, &svc->timer);
	master_listen_close(svc, unlink_path);
	if (svc->nprocs > 0) {
		master_svc_signal(svc, SIGTERM);
		svc->timer = ev_timer_add(m->ev,
		    cfg_int(m->cfg, "master_stop_timeout") * 1000,
		    svc_on_kill, svc);
	}
}

/* master_svc_gc - free retired services without processes */
void
master_svc_gc(struct master *m)
{
	struct master_svc **pp = &m->svcs, *svc;
	struct master_proc *p;

	while ((svc = *pp) != NULL) {
		if (svc->conf != NULL || svc->nprocs > 0) {
			pp = &svc->next;
			continue;
		}
		*pp = svc->next;
		while ((p = svc->procs) != NULL) {
			svc->procs = p->next;
			free(p);
		}
		ev_timer_cancel(m->ev, &svc->timer);
		master_listen_close(svc, 0);
		free(svc->name);
		free(svc);
	}
}

unsigned
master_nprocs(const struct master *m)
{
	const struct master_svc *svc;
	unsigned n = 0;

	for (svc = m->svcs; svc != NULL; svc = svc->next)
		n += svc->nprocs;
	return n;
}

/* svc_exited - log how a process ended and decide what comes next */
static void
svc_exited(struct master_svc *svc, const struct master_proc *p, int status)
{
	struct master *m = svc->m;
	int64_t ran = ev_clock_ms() - p->started, d;
	int64_t window = cfg_int(m->cfg, "master_throttle_window") * 1000;
	unsigned count = (unsigned)cfg_int(m->cfg, "master_throttle_count");
	int expected = svc->conf == NULL || m->is_stopping;
	char t[32];

	if (WIFEXITED(status))
		log_msg(expected ? LOG_L_DEBUG : LOG_L_WARN, "service %s: "
		    "process %ld exited with status %d", svc->name,
		    (long)p->pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_msg(expected ? LOG_L_DEBUG : LOG_L_WARN, "service %s: "
		    "process %ld killed by signal %d", svc->name,
		    (long)p->pid, WTERMSIG(status));
	if (expected)
		return;

	if (ran < window)
		svc->fails++;
	else {
		svc->fails = 0;
		svc->delay = cfg_int(m->cfg, "master_restart_delay") * 1000;
	}
	if (svc->timer != NULL)
		return;		/* a restart is already due */
	if (svc->fails >= count) {
		svc->is_throttled = 1;
		log_warn("service %s: throttled for %s after %u failures in "
		    "a row", svc->name, master_ms_text(cfg_int(m->cfg,
		    "master_throttle_time") * 1000, t, sizeof(t)),
		    svc->fails);
		svc->timer = ev_timer_add(m->ev,
		    cfg_int(m->cfg, "master_throttle_time") * 1000,
		    svc_on_timer, svc);
		return;
	}
	d = svc_next_delay(svc);
	log_info("service %s: restarting in %s", svc->name,
	    master_ms_text(d, t, sizeof(t)));
	svc->timer = ev_timer_add(m->ev, d, svc_on_timer, svc);
}

/* master_on_child - SIGCHLD: reap every child that has ended */
void
master_on_child(struct ev *ev, int signo, void *arg)
{
	struct master *m = arg;
	struct master_svc *svc;
	struct master_proc **pp, *p;
	pid_t pid;
	int status;

	(void)signo;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		p = NULL;
		for (svc = m->svcs; svc != NULL && p == NULL;
		    svc = svc->next) {
			for (pp = &svc->procs; *pp != NULL;
			    pp = &(*pp)->next) {
				if ((*pp)->pid != pid)
					continue;
				p = *pp;
				*pp = p->next;
				svc->nprocs--;
				svc_exited(svc, p, status);
				free(p);
				break;
			}
		}
		if (p == NULL)
			log_debug("reaped unknown process %ld", (long)pid);
	}
	master_svc_gc(m);
	if (m->is_stopping && master_nprocs(m) == 0)
		ev_stop(ev);
}

static void
master_on_stop_timeout(struct ev *ev, void *arg)
{
	struct master *m = arg;
	struct master_svc *svc;

	(void)ev;
	m->stop_timer = NULL;
	log_warn("stopping: %u processes still running after %llds: "
	    "sending SIGKILL", master_nprocs(m),
	    (long long)cfg_int(m->cfg, "master_stop_timeout"));
	for (svc = m->svcs; svc != NULL; svc = svc->next)
		master_svc_signal(svc, SIGKILL);
}

/*
 * master_stop - SIGTERM to every child; SIGKILL after master_stop_timeout;
 * the loop ends when the last child is reaped
 */
void
master_stop(struct master *m)
{
	struct master_svc *svc;

	if (m->is_stopping)
		return;
	m->is_stopping = 1;
	master_notify("STOPPING=1");
	log_info("stopping: terminating %u processes", master_nprocs(m));
	for (svc = m->svcs; svc != NULL; svc = svc->next) {
		ev_timer_cancel(m->ev, &svc->timer);
		master_svc_signal(svc, SIGTERM);
	}
	if (master_nprocs(m) == 0) {
		ev_stop(m->ev);
		return;
	}
	m->stop_timer = ev_timer_add(m->ev,
	    cfg_int(m->cfg, "master_stop_timeout") * 1000,
	    master_on_stop_timeout, m);
}
