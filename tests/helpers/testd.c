/*
 * testd - a tiny daemon on lib/server for the master tests
 *
 * Each connection gets "testd SERVICE pid=PID uid=UID\r\n", then every
 * line it sends comes back.  Options:
 *	-x N	exit with status N right after start (throttle test)
 *	-s	ignore SIGTERM (master must SIGKILL after master_stop_timeout)
 * A service of type none just sits in the loop until SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "server.h"
#include "strnum.h"

#define TESTD_BUF	4096

struct testd_conn {
	int	 fd;
	size_t	 len;
	char	 buf[TESTD_BUF];
};

static int testd_exit = -1;
static int testd_ignore_term;
static struct ev_timer *testd_idle;

static int
testd_option(int opt, const char *arg)
{
	unsigned long long n;

	switch (opt) {
	case 'x':
		if (str_to_uint(arg, 0, 255, &n) < 0)
			return -1;
		testd_exit = (int)n;
		return 0;
	case 's':
		testd_ignore_term = 1;
		return 0;
	}
	return -1;
}

static void
testd_close(struct ev *ev, struct testd_conn *c)
{
	ev_fd_clear(ev, c->fd);
	(void)close(c->fd);
	free(c);
	server_client_done();
}

/* testd_write - small test lines: a short blocking-ish write is fine */
static int
testd_write(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
testd_on_read(struct ev *ev, int fd, int events, void *arg)
{
	struct testd_conn *c = arg;
	ssize_t n;

	(void)events;
	n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		testd_close(ev, c);
		return;
	}
	/* echo at once, whole lines or not: the test reads what it sent */
	if (testd_write(fd, c->buf, (size_t)n) < 0)
		testd_close(ev, c);
}

static void
testd_accept(struct ev *ev, int fd, const struct server_peer *peer)
{
	struct testd_conn *c = xcalloc(1, sizeof(*c));
	char hello[256];
	int n;

	c->fd = fd;
	n = snprintf(hello, sizeof(hello), "testd %s pid=%ld uid=%ld\r\n",
	    server_service(), (long)getpid(), (long)getuid());
	log_debug("connection from %s", peer->text);
	if (testd_write(fd, hello, (size_t)n) < 0 ||
	    ev_fd_set(ev, fd, EV_READ, testd_on_read, c) < 0) {
		(void)close(fd);
		free(c);
		server_client_done();
	}
}

/* keeps a socket-less service (type none) in its loop */
static void
testd_on_idle(struct ev *ev, void *arg)
{
	(void)arg;
	testd_idle = ev_timer_add(ev, 3600 * 1000, testd_on_idle, NULL);
}

static int
testd_init(struct ev *ev, struct cfg *cfg)
{
	(void)cfg;
	if (testd_exit >= 0) {
		log_info("exiting with status %d as told", testd_exit);
		exit(testd_exit);
	}
	/*
	 * Linux queues a blocked signal even when ignored, so unblock it
	 * (lib/server blocked it for its signalfd) and then it is dropped.
	 */
	if (testd_ignore_term) {
		sigset_t term;

		(void)signal(SIGTERM, SIG_IGN);
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		(void)sigprocmask(SIG_UNBLOCK, &term, NULL);
	}
	testd_on_idle(ev, NULL);
	log_info("service %s ready", server_service());
	return 0;
}

static void
testd_stop(struct ev *ev)
{
	ev_timer_cancel(ev, &testd_idle);
	ev_stop(ev);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.name = "testd",
		.opts = "x:s",
		.option = testd_option,
		.init = testd_init,
		.accept = testd_accept,
		.stop = testd_stop,
	};

	return server_main(argc, argv, &ops);
}
