/*
 * server - the child skeleton (see server.h)
 *
 * Postfix's single_server idea on an event loop: one process serves many
 * clients.  The state below is per process (one server_main() per
 * process), kept in one static struct so the callbacks need no context.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "priv.h"
#include "server.h"
#include "settings.h"
#include "strnum.h"

struct server_state {
	const struct server_ops *ops;
	struct ev *ev;
	struct cfg *cfg;
	const char *service;
	const char *config_dir;
	int	 lfd[SERVER_LISTEN_MAX];
	unsigned nlfd;
	unsigned clients;
	unsigned limit;
	int	 paused;	/* listeners not watched (limit or EMFILE) */
	int	 stopping;
	struct ev_timer *resume;
};

static struct server_state srv = { .service = "" };

static void server_on_listen(struct ev *, int, int, void *);

static void __attribute__((noreturn))
server_usage(const char *prog, const struct server_ops *ops)
{
	fprintf(stderr, "usage: %s [-c config_dir] [-n service] "
	    "[-o name=value]%s%s\n", prog,
	    ops->opts != NULL && *ops->opts != '\0' ? " [own options: " : "",
	    ops->opts != NULL && *ops->opts != '\0' ? "see the manual]" : "");
	exit(2);
}

/* server_watch - (re)arm or pause every listening socket */
static void
server_watch(int on)
{
	unsigned i;

	for (i = 0; i < srv.nlfd; i++)
		if (srv.lfd[i] >= 0 && ev_fd_set(srv.ev, srv.lfd[i],
		    on ? EV_READ : 0, server_on_listen,
		    (void *)(uintptr_t)i) < 0)
			log_fatal("cannot watch listening socket %d: %s",
			    srv.lfd[i], strerror(errno));
	srv.paused = !on;
}

int
server_take_listener(unsigned i)
{
	int fd;

	if (i >= srv.nlfd || srv.lfd[i] < 0)
		return -1;
	fd = srv.lfd[i];
	srv.lfd[i] = -1;
	if (srv.ev != NULL)
		ev_fd_clear(srv.ev, fd);
	return fd;
}

unsigned
server_listeners(void)
{
	return srv.nlfd;
}

static void
server_on_resume(struct ev *ev, void *arg)
{
	(void)ev;
	(void)arg;
	srv.resume = NULL;
	if (!srv.stopping && srv.clients < srv.limit)
		server_watch(1);
}

static void
server_peer_text(struct server_peer *p)
{
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	switch (p->addr.ss_family) {
	case AF_INET:
		s4 = (const struct sockaddr_in *)&p->addr;
		(void)inet_ntop(AF_INET, &s4->sin_addr, p->text,
		    sizeof(p->text));
		break;
	case AF_INET6:
		s6 = (const struct sockaddr_in6 *)&p->addr;
		(void)inet_ntop(AF_INET6, &s6->sin6_addr, p->text,
		    sizeof(p->text));
		break;
	case AF_UNIX:
		(void)snprintf(p->text, sizeof(p->text), "unix");
		break;
	default:
		(void)snprintf(p->text, sizeof(p->text), "unknown");
		break;
	}
}

static void
server_on_listen(struct ev *ev, int fd, int events, void *arg)
{
	struct server_peer peer;
	int cfd, n;

	(void)events;
	for (n = 0; n < SERVER_ACCEPT_BURST; n++) {
		if (srv.stopping || srv.paused)
			return;
		memset(&peer, 0, sizeof(peer));
		peer.addrlen = sizeof(peer.addr);
		cfd = accept4(fd, (struct sockaddr *)&peer.addr,
		    &peer.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;	/* another process took it */
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* do not spin on a full table: wait a bit */
				log_warn("accept: %s: pausing for 1s",
				    strerror(errno));
				server_watch(0);
				if (srv.resume == NULL)
					srv.resume = ev_timer_add(ev, 1000,
					    server_on_resume, NULL);
				return;
			default:
				log_err("accept: %s", strerror(errno));
				return;
			}
		}
		peer.listen_fd = fd;
		peer.listen_index = (unsigned)(uintptr_t)arg;
		server_peer_text(&peer);
		srv.clients++;
		if (srv.clients >= srv.limit) {
			log_warn("client limit %u reached: not accepting "
			    "for now", srv.limit);
			server_watch(0);
		}
		srv.ops->accept(ev, cfd, &peer);
	}
}

void
server_client_done(void)
{
	if (srv.clients == 0)
		log_panic("server_client_done: no client open");
	srv.clients--;
	if (srv.paused && srv.resume == NULL && !srv.stopping &&
	    srv.clients < srv.limit)
		server_watch(1);
}

unsigned
server_clients(void)
{
	return srv.clients;
}

const char *
server_service(void)
{
	return srv.service;
}

const char *
server_config_dir(void)
{
	return srv.config_dir;
}

struct cfg *
server_cfg(void)
{
	return srv.cfg;
}

int
server_is_stopping(void)
{
	return srv.stopping;
}

static void
server_on_term(struct ev *ev, int signo, void *arg)
{
	unsigned i;

	(void)arg;
	if (srv.stopping)
		return;
	srv.stopping = 1;
	log_info("%s: stopping on signal %d", *srv.service != '\0' ?
	    srv.service : srv.ops->name, signo);
	ev_timer_cancel(ev, &srv.resume);
	for (i = 0; i < srv.nlfd; i++) {
		if (srv.lfd[i] < 0)
			continue;
		ev_fd_clear(ev, srv.lfd[i]);
		(void)close(srv.lfd[i]);
		srv.lfd[i] = -1;
	}
	if (srv.ops->stop != NULL)
		srv.ops->stop(ev);
	else
		ev_stop(ev);
}

/* server_take_fds - adopt the sockets master passed as fd 3, 4, ... */
static void
server_take_fds(void)
{
	const char *e = getenv("POSTA_LISTEN_FDS");
	unsigned long long n;
	unsigned i;
	int fd, fl;

	if (e == NULL || *e == '\0')
		return;
	if (str_to_uint(e, 0, SERVER_LISTEN_MAX, &n) < 0)
		log_fatal("bad POSTA_LISTEN_FDS \"%.20s\"", e);
	for (i = 0; i < n; i++) {
		fd = 3 + (int)i;
		if ((fl = fcntl(fd, F_GETFL)) < 0)
			log_fatal("listening socket %d: %s", fd,
			    strerror(errno));
		if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			log_fatal("listening socket %d: fcntl: %s", fd,
			    strerror(errno));
		srv.lfd[i] = fd;
	}
	srv.nlfd = (unsigned)n;
	(void)unsetenv("POSTA_LISTEN_FDS");
}

static void
server_fatal_errs(struct buf *errs)
{
	log_lines(LOG_L_ERR, buf_cstr(errs));
	log_fatal("cannot continue: configuration errors");
}

int
server_main(int argc, char **argv, const struct server_ops *ops)
{
	char optstr[128], origin[128];
	const char *overrides[SERVER_OVERRIDES_MAX];
	const char *config_dir = NULL, *qdir;
	struct buf errs;
	unsigned noverrides = 0, i;
	pid_t ppid = getppid();
	int c, from_master, log_flags;

	srv.ops = ops;
	if (snprintf(optstr, sizeof(optstr), "+c:n:o:%s",
	    ops->opts != NULL ? ops->opts : "") >= (int)sizeof(optstr))
		log_panic("server_main: option string too long");
	opterr = 1;
	while ((c = getopt(argc, argv, optstr)) != -1) {
		switch (c) {
		case 'c':
			config_dir = optarg;
			break;
		case 'n':
			srv.service = optarg;
			break;
		case 'o':
			if (noverrides == SERVER_OVERRIDES_MAX) {
				fprintf(stderr, "%s: too many -o options\n",
				    ops->name);
				exit(2);
			}
			overrides[noverrides++] = optarg;
			break;
		case '?':
		case ':':
			server_usage(ops->name, ops);
		default:
			if (ops->option == NULL || ops->option(c, optarg) < 0)
				server_usage(ops->name, ops);
			break;
		}
	}
	if (optind != argc)
		server_usage(ops->name, ops);
	if (config_dir == NULL)
		config_dir = settings_config_dir();
	srv.config_dir = config_dir;

	from_master = getenv("POSTA_LISTEN_FDS") != NULL;
	log_flags = getenv("POSTA_LOG_FILE") != NULL &&
	    *getenv("POSTA_LOG_FILE") != '\0' ? 0 : LOG_TO_SYSLOG;
	if (!from_master && isatty(STDERR_FILENO))
		log_flags |= LOG_TO_STDERR;
	log_init(ops->name, log_flags);

	buf_init(&errs, 0);
	if ((srv.cfg = settings_open(ops->name, config_dir, &errs)) == NULL)
		server_fatal_errs(&errs);
	(void)snprintf(origin, sizeof(origin), "service %s -o",
	    *srv.service != '\0' ? srv.service : ops->name);
	for (i = 0; i < noverrides; i++)
		if (cfg_set_assignment(srv.cfg, overrides[i], origin,
		    &errs) < 0)
			server_fatal_errs(&errs);
	if (getenv("POSTA_LOG_FILE") == NULL &&
	    *cfg_str(srv.cfg, "maillog_file") != '\0' &&
	    log_open_file(cfg_str(srv.cfg, "maillog_file")) < 0)
		log_warn("cannot open %s: %s", cfg_str(srv.cfg,
		    "maillog_file"), strerror(errno));
	if (cfg_bool(srv.cfg, "debug"))
		log_set_debug(1);

	server_take_fds();
	srv.limit = ops->client_limit != 0 ? ops->client_limit :
	    SERVER_CLIENT_LIMIT;

	if (ops->pre_drop != NULL && ops->pre_drop(srv.cfg) < 0)
		log_fatal("initialisation failed");
	if (priv_drop(cfg_str(srv.cfg, "mail_owner"), &errs) < 0) {
		buf_truncate(&errs, errs.len > 0 ? errs.len - 1 : 0);
		log_fatal("cannot drop privileges: %s", buf_cstr(&errs));
	}
	buf_deinit(&errs);

	if (from_master) {
		/* after the drop: a credential change clears the setting */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			log_fatal("prctl PR_SET_PDEATHSIG: %s",
			    strerror(errno));
		if (getppid() != ppid) {
			log_warn("master died while we started: exiting");
			exit(0);
		}
	}
	qdir = cfg_str(srv.cfg, "queue_directory");
	if (chdir(qdir) < 0)
		log_fatal("chdir %s: %s", qdir, strerror(errno));

	(void)signal(SIGPIPE, SIG_IGN);
	srv.ev = ev_new();
	if (ev_signal(srv.ev, SIGTERM, server_on_term, NULL) < 0 ||
	    ev_signal(srv.ev, SIGINT, server_on_term, NULL) < 0)
		log_fatal("ev_signal: %s", strerror(errno));
	if (ops->init != NULL && ops->init(srv.ev, srv.cfg) < 0)
		log_fatal("initialisation failed");
	for (i = 0; i < srv.nlfd; i++)
		if (srv.lfd[i] >= 0 && ops->accept == NULL)
			log_panic("server_main: no accept callback");
	server_watch(1);
	log_debug("%s: started with %u listening sockets", srv.service,
	    srv.nlfd);

	c = ev_run(srv.ev) < 0 ? 1 : 0;
	ev_timer_cancel(srv.ev, &srv.resume);
	for (i = 0; i < srv.nlfd; i++)
		if (srv.lfd[i] >= 0) {
			ev_fd_clear(srv.ev, srv.lfd[i]);
			(void)close(srv.lfd[i]);
			srv.lfd[i] = -1;
		}
	ev_free(&srv.ev);
	cfg_free(&srv.cfg);
	return c;
}
