/*
 * test_server - the child skeleton and the privilege drop: usage and
 * config errors, -o overrides, the per-process client limit, SIGTERM,
 * priv_lookup refusing root and unknown users, priv_drop that cannot be
 * undone.  Each server runs in a forked child, like under master.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"
#include "server.h"

static char tmpdir[] = "/tmp/test_server.XXXXXX";
static int client_fds[8];
static unsigned nclient_fds;

/* the tiny server under test: greets, and ends a client on EOF */
static void
t_on_read(struct ev *ev, int fd, int events, void *arg)
{
	char b[64];
	ssize_t n = read(fd, b, sizeof(b));

	(void)events;
	(void)arg;
	if (n > 0)
		return;
	ev_fd_clear(ev, fd);
	(void)close(fd);
	server_client_done();
}

static void
t_accept(struct ev *ev, int fd, const struct server_peer *peer)
{
	char line[128];
	int n;

	n = snprintf(line, sizeof(line), "hi %s %s %s uid=%ld\n",
	    server_service(), peer->text,
	    cfg_bool(server_cfg(), "debug") ? "debug" : "nodebug",
	    (long)getuid());
	if (write(fd, line, (size_t)n) != n)
		log_warn("short write");
	(void)ev_fd_set(ev, fd, EV_READ, t_on_read, NULL);
	if (nclient_fds < 8)
		client_fds[nclient_fds++] = fd;
}

static const struct server_ops t_ops = {
	.name = "testserver",
	.client_limit = 2,
	.accept = t_accept,
};

/* start_server - fork a server with a listening socket as fd 3 */
static pid_t
start_server(char **argv, int argc, int lfd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (lfd >= 0) {
			if (dup2(lfd, 3) < 0)
				_exit(99);
			setenv("POSTA_LISTEN_FDS", "1", 1);
		}
		setenv("POSTA_LOG_FILE", "/dev/null", 1);
		exit(server_main(argc, argv, &t_ops));
	}
	return pid;
}

static int
wait_status(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int
listener(unsigned short *port_r)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

static int
connect_to(unsigned short port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* read_line - what arrives within ms milliseconds ("" if nothing) */
static void
read_line(int fd, int ms, char *out, size_t sz)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	out[0] = '\0';
	if (poll(&p, 1, ms) != 1)
		return;
	n = read(fd, out, sz - 1);
	out[n > 0 ? n : 0] = '\0';
}

static uid_t
posta_uid(void)
{
	struct buf errs;
	uid_t uid = 0;
	gid_t gid;

	buf_init(&errs, 0);
	assert_int_equal(priv_lookup("posta", &uid, &gid, &errs), 0);
	buf_deinit(&errs);
	return uid;
}

static int
setup(void **state)
{
	char path[256];
	FILE *f;

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	/* the dropped child must reach its queue_directory */
	(void)chmod(tmpdir, 0755);
	(void)snprintf(path, sizeof(path), "%s/posta.conf", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "queue_directory = %s\n", tmpdir);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	char path[256];

	(void)state;
	(void)snprintf(path, sizeof(path), "%s/posta.conf", tmpdir);
	(void)unlink(path);
	(void)rmdir(tmpdir);
	return 0;
}

static void
test_usage_errors(void **state)
{
	char *a1[] = { "t", "-c", tmpdir, "-z", NULL };
	char *a2[] = { "t", "-c", tmpdir, "extra", NULL };
	char *a3[] = { "t", "-c", tmpdir, "-n", NULL };

	(void)state;
	assert_int_equal(wait_status(start_server(a1, 4, -1)), 2);
	assert_int_equal(wait_status(start_server(a2, 4, -1)), 2);
	assert_int_equal(wait_status(start_server(a3, 4, -1)), 2);
}

static void
test_config_errors(void **state)
{
	char *a1[] = { "t", "-c", "/nonexistent/dir", NULL };
	char *a2[] = { "t", "-c", tmpdir, "-o", "nosuch=1", NULL };
	char *a3[] = { "t", "-c", tmpdir, "-o", "debug=maybe", NULL };
	char *a4[] = { "t", "-c", tmpdir, "-o", "queue_directory=/nonexistent/q",
	    NULL };

	(void)state;
	assert_int_equal(wait_status(start_server(a1, 3, -1)), 1);
	assert_int_equal(wait_status(start_server(a2, 5, -1)), 1);
	assert_int_equal(wait_status(start_server(a3, 5, -1)), 1);
	/* chdir into a missing queue_directory is fatal too */
	assert_int_equal(wait_status(start_server(a4, 5, -1)), 1);
}

static void
test_bad_listen_fds(void **state)
{
	char *a[] = { "t", "-c", tmpdir, NULL };
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("POSTA_LOG_FILE", "/dev/null", 1);
		setenv("POSTA_LISTEN_FDS", "99999999999999999999", 1);
		exit(server_main(3, a, &t_ops));
	}
	assert_int_equal(wait_status(pid), 1);
	pid = fork();
	if (pid == 0) {
		(void)close(3);
		setenv("POSTA_LOG_FILE", "/dev/null", 1);
		setenv("POSTA_LISTEN_FDS", "1", 1);	/* fd 3 is closed */
		exit(server_main(3, a, &t_ops));
	}
	assert_int_equal(wait_status(pid), 1);
}

static void
test_limit_and_term(void **state)
{
	char *a[] = { "t", "-c", tmpdir, "-n", "svc1", "-o", "debug=yes",
	    NULL };
	unsigned short port;
	char line[256], want[128];
	int lfd = listener(&port), c1, c2, c3;
	pid_t pid;

	(void)state;
	pid = start_server(a, 7, lfd);
	(void)close(lfd);	/* the child holds it now */
	c1 = connect_to(port);
	read_line(c1, 3000, line, sizeof(line));
	(void)snprintf(want, sizeof(want), "hi svc1 127.0.0.1 debug uid=%ld\n",
	    geteuid() == 0 ? (long)posta_uid() : (long)getuid());
	assert_string_equal(line, want);
	c2 = connect_to(port);
	read_line(c2, 3000, line, sizeof(line));
	assert_true(strncmp(line, "hi svc1", 7) == 0);
	/* the limit is 2: the third waits in the backlog */
	c3 = connect_to(port);
	read_line(c3, 300, line, sizeof(line));
	assert_string_equal(line, "");
	/* one leaves: the third is served */
	(void)close(c1);
	read_line(c3, 3000, line, sizeof(line));
	assert_true(strncmp(line, "hi svc1", 7) == 0);
	/* SIGTERM: orderly exit 0, listening socket closed */
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_status(pid), 0);
	(void)close(c2);
	(void)close(c3);
}

static void
test_priv_lookup(void **state)
{
	struct buf errs;
	uid_t uid = 7;
	gid_t gid = 7;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(priv_lookup("root", &uid, &gid, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "refusing to run as root"));
	assert_int_equal(uid, 7);
	buf_reset(&errs);
	assert_int_equal(priv_lookup("no-such-user-xyz", &uid, &gid, &errs),
	    -1);
	assert_non_null(strstr(buf_cstr(&errs), "unknown user"));
	buf_reset(&errs);
	assert_int_equal(priv_lookup("", &uid, &gid, &errs), -1);
	assert_int_equal(priv_lookup("posta", &uid, &gid, &errs), 0);
	assert_true(uid != 0 && gid != 0);
	buf_deinit(&errs);
}

static void
test_priv_drop(void **state)
{
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		/* not root: nothing to drop, and nothing changes */
		struct buf errs;
		uid_t u = getuid();

		buf_init(&errs, 0);
		assert_int_equal(priv_drop("posta", &errs), 0);
		assert_int_equal(getuid(), u);
		buf_deinit(&errs);
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct buf errs;
		uid_t u = posta_uid(), r, e, s;
		gid_t g;

		buf_init(&errs, 0);
		if (priv_drop("root", &errs) != -1)
			_exit(10);	/* refused before anything changed */
		if (getuid() != 0)
			_exit(11);
		if (priv_drop("posta", &errs) != 0)
			_exit(12);
		if (getresuid(&r, &e, &s) < 0 || r != u || e != u || s != u)
			_exit(13);
		if (setuid(0) == 0 || seteuid(0) == 0)
			_exit(14);
		if (getgroups(0, NULL) > 8)
			_exit(15);	/* root's groups were dropped */
		g = getgid();
		if (g == 0 || setgid(0) == 0)
			_exit(16);
		/* not root any more: a second call is a no-op */
		if (priv_drop("posta", &errs) != 0)
			_exit(17);
		_exit(0);
	}
	assert_int_equal(wait_status(pid), 0);
	pid = fork();
	if (pid == 0) {
		struct buf errs;

		buf_init(&errs, 0);
		_exit(priv_drop("no-such-user-xyz", &errs) == -1 &&
		    getuid() == 0 ? 0 : 1);
	}
	assert_int_equal(wait_status(pid), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_bad_listen_fds),
		cmocka_unit_test(test_limit_and_term),
		cmocka_unit_test(test_priv_lookup),
		cmocka_unit_test(test_priv_drop),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
