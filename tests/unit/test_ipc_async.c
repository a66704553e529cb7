/*
 * test_ipc_async - the non-blocking ipc client on the event loop
 *
 * One process, one loop: a real lib/ipc server and raw sockets that
 * misbehave (never answer, hang up, send garbage, a response without
 * status first, an oversize one).  Checked: the callback runs exactly
 * once and never inside ipc_async_call(), the status and response, the
 * error texts, the deadline, cancel.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attr.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_async.h"
#include "log.h"

static char dir[64], path_ok[128], path_raw[128], path_none[128];

struct result {
	int	 calls;
	int	 status;
	char	 err[200];
	char	 echo[64];
	int	 in_call;
};

static int in_call;

static void
on_done(void *arg, int status, const struct attr_rec *resp, const char *err)
{
	struct result *r = arg;
	const char *v;

	r->calls++;
	r->status = status;
	r->in_call = in_call;
	if (err != NULL)
		(void)snprintf(r->err, sizeof(r->err), "%s", err);
	if (resp != NULL && (v = attr_get_str(resp, "echo")) != NULL)
		(void)snprintf(r->echo, sizeof(r->echo), "%s", v);
}

static int
h_echo(struct ipc_req *req, void *arg)
{
	const char *v = attr_get_str(ipc_req_attrs(req), "x");

	(void)arg;
	(void)attr_put_str(ipc_req_out(req), "echo", v != NULL ? v : "");
	return IPC_OK;
}

static int
h_fail(struct ipc_req *req, void *arg)
{
	(void)arg;
	ipc_req_reason(req, "nope");
	return IPC_PERMFAIL;
}

static const struct ipc_handler handlers[] = {
	{ "echo", h_echo },
	{ "fail", h_fail },
	{ NULL, NULL },
};

/* the raw server: what it does with each connection */
enum raw_mode { RAW_SILENT, RAW_HANGUP, RAW_GARBAGE, RAW_NOSTATUS,
	RAW_HUGE, RAW_ONCE };
static enum raw_mode raw_mode;
static int raw_conn = -1;
static int raw_accepts;

/* RAW_ONCE: answer the first request of a connection, then hang up on
 * the next one without an answer (a server that went away between two
 * requests of a kept connection, as the client sees it) */
static void
on_raw_once(struct ev *e, int fd, int events, void *arg)
{
	static const char ok[] = "8:status=0,0:,";
	char buf[4096];
	int *answered = arg;

	(void)events;
	if (read(fd, buf, sizeof(buf)) <= 0 || *answered) {
		ev_fd_clear(e, fd);
		(void)close(fd);
		free(answered);
		return;
	}
	*answered = 1;
	if (write(fd, ok, sizeof(ok) - 1) < 0)
		return;
}

static void
put(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) < 0)
		return;		/* the peer may have gone: that is fine */
}

static void
on_raw_accept(struct ev *ev, int lfd, int events, void *arg)
{
	static const char nostatus[] = "5:echo=,8:status=0,0:,";
	char big[8192];
	int fd;
	size_t i;

	(void)events;
	(void)arg;
	if ((fd = accept(lfd, NULL, NULL)) < 0)
		return;
	raw_accepts++;
	switch (raw_mode) {
	case RAW_ONCE:
		(void)ev_fd_set(ev, fd, EV_READ, on_raw_once,
		    calloc(1, sizeof(int)));
		return;
	case RAW_SILENT:
		if (raw_conn >= 0)
			(void)close(raw_conn);
		raw_conn = fd;		/* keep it open, say nothing */
		return;
	case RAW_HANGUP:
		break;
	case RAW_GARBAGE:
		put(fd, "xx:garbage", 10);
		break;
	case RAW_NOSTATUS:
		put(fd, nostatus, sizeof(nostatus) - 1);
		break;
	case RAW_HUGE:
		/* announce one attribute larger than any response may be */
		put(fd, "99999999:status=", 16);
		memset(big, 'a', sizeof(big));
		for (i = 0; i < 4; i++)
			put(fd, big, sizeof(big));
		break;
	}
	(void)close(fd);
	(void)ev;
}

static struct ev *ev;
static struct ipc_server *srv;
static int raw_lfd = -1;

static int
raw_listen(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0)
		return -1;
	return fd;
}

static void
on_stop(struct ev *e, void *arg)
{
	*(struct ev_timer **)arg = NULL;	/* fired: gone */
	ev_stop(e);
}

/* run - run the loop until every result has its callback (or 5 s) */
static void
run(struct result *r, int n)
{
	struct ev_timer *t;
	int64_t end = ev_clock_ms() + 5000;
	int i, done;

	for (;;) {
		for (done = 0, i = 0; i < n; i++)
			done += r[i].calls > 0;
		if (done == n || ev_clock_ms() > end)
			return;
		t = ev_timer_add(ev, 20, on_stop, &t);
		(void)ev_run(ev);
		ev_timer_cancel(ev, &t);
	}
}

static struct ipc_async *
call(const char *path, const char *name, const char *x, int timeout,
    struct result *r)
{
	struct ipc_async *ia;
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(ipc_request(&b, name), 0);
	if (x != NULL)
		assert_int_equal(attr_put_str(&b, "x", x), 0);
	assert_int_equal(attr_end(&b), 0);
	memset(r, 0, sizeof(*r));
	in_call = 1;
	ia = ipc_async_call(ev, path, &b, timeout, on_done, r);
	in_call = 0;
	buf_deinit(&b);
	return ia;
}

static void
test_hostile_servers(void **state)
{
	struct result r;

	(void)state;
	raw_mode = RAW_GARBAGE;
	(void)call(path_raw, "echo", "1", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -1);
	assert_non_null(strstr(r.err, "bad response"));

	raw_mode = RAW_NOSTATUS;
	(void)call(path_raw, "echo", "1", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, -1);
	assert_non_null(strstr(r.err, "no status first"));

	raw_mode = RAW_HUGE;
	(void)call(path_raw, "echo", "1", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, -1);
	assert_non_null(strstr(r.err, "bad response"));

	raw_mode = RAW_HANGUP;
	(void)call(path_raw, "echo", "1", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, -1);
	assert_string_equal(r.err, "connection closed");

	raw_mode = RAW_SILENT;
	(void)call(path_raw, "echo", "1", 300, &r);
	run(&r, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -1);
	assert_string_equal(r.err, "timed out");
}

static void
test_no_server(void **state)
{
	struct result r;
	char longpath[200];

	(void)state;
	(void)call(path_none, "echo", "1", 2000, &r);
	assert_int_equal(r.calls, 0);	/* never inside the call */
	run(&r, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.in_call, 0);
	assert_int_equal(r.status, -1);
	assert_non_null(strstr(r.err, "connect"));
	assert_non_null(strstr(r.err, strerror(ENOENT)));

	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	(void)call(longpath, "echo", "1", 2000, &r);
	assert_int_equal(r.calls, 0);
	run(&r, 1);
	assert_int_equal(r.status, -1);
	assert_non_null(strstr(r.err, strerror(ENAMETOOLONG)));
}

static void
test_good_server(void **state)
{
	struct result r[20];
	char x[16];
	int i;

	(void)state;
	/* many at once, each gets its own answer */
	for (i = 0; i < 20; i++) {
		(void)snprintf(x, sizeof(x), "v%d", i);
		(void)call(path_ok, "echo", x, 2000, &r[i]);
		assert_int_equal(r[i].calls, 0);
	}
	run(r, 20);
	for (i = 0; i < 20; i++) {
		(void)snprintf(x, sizeof(x), "v%d", i);
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].in_call, 0);
		assert_int_equal(r[i].status, IPC_OK);
		assert_string_equal(r[i].echo, x);
	}
	(void)call(path_ok, "fail", NULL, 2000, &r[0]);
	run(r, 1);
	assert_int_equal(r[0].status, IPC_PERMFAIL);
	(void)call(path_ok, "unknown", NULL, 2000, &r[0]);
	run(r, 1);
	assert_int_equal(r[0].status, IPC_PERMFAIL);
}

static void
test_cancel(void **state)
{
	struct result r[2];
	struct ipc_async *ia;

	(void)state;
	ia = call(path_ok, "echo", "a", 2000, &r[0]);
	(void)call(path_ok, "echo", "b", 2000, &r[1]);
	ipc_async_cancel(&ia);
	assert_null(ia);
	ipc_async_cancel(&ia);		/* twice is harmless */
	run(&r[1], 1);
	run(&r[1], 1);
	assert_int_equal(r[0].calls, 0);
	assert_int_equal(r[1].calls, 1);
	assert_string_equal(r[1].echo, "b");

	raw_mode = RAW_SILENT;
	ia = call(path_raw, "echo", "c", 200, &r[0]);
	run(&r[1], 1);
	ipc_async_cancel(&ia);
	(void)call(path_none, "echo", "d", 100, &r[1]);
	run(&r[1], 1);
	assert_int_equal(r[0].calls, 0);
}

/* kept connections: reused, replaced when the server closed them */
static void
test_reuse(void **state)
{
	struct result r;
	int fd;

	(void)state;
	ipc_async_pool_close();
	(void)call(path_ok, "echo", "a", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, IPC_OK);
	(void)call(path_ok, "echo", "b", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, IPC_OK);
	assert_string_equal(r.echo, "b");
	/* one connection served both */
	assert_int_equal(ipc_server_conns(srv), 1);

	/* the server goes (its connections with it) and comes back */
	ipc_server_free(&srv);
	fd = ipc_listen(path_ok, 0600);
	assert_true(fd >= 0);
	srv = ipc_server_new(ev, fd, handlers, NULL, NULL);
	(void)call(path_ok, "echo", "c", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, IPC_OK);
	assert_string_equal(r.echo, "c");

	/* closed while the request was on its way: once more, anew */
	raw_mode = RAW_ONCE;
	raw_accepts = 0;
	(void)call(path_raw, "echo", "d", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.status, 0);
	(void)call(path_raw, "echo", "e", 2000, &r);
	run(&r, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_int_equal(raw_accepts, 2);
	ipc_async_pool_close();
	/* a turn of the loop: the raw server sees the close, frees */
	(void)call(path_none, "echo", "f", 100, &r);
	run(&r, 1);
}

static int
setup(void **state)
{
	int fd;

	(void)state;
	(void)snprintf(dir, sizeof(dir), "/tmp/test_ipc_async.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	(void)snprintf(path_ok, sizeof(path_ok), "%s/ok", dir);
	(void)snprintf(path_raw, sizeof(path_raw), "%s/raw", dir);
	(void)snprintf(path_none, sizeof(path_none), "%s/none", dir);
	ev = ev_new();
	if ((fd = ipc_listen(path_ok, 0600)) < 0)
		return -1;
	srv = ipc_server_new(ev, fd, handlers, NULL, NULL);
	if ((raw_lfd = raw_listen(path_raw)) < 0)
		return -1;
	return ev_fd_set(ev, raw_lfd, EV_READ, on_raw_accept, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	ipc_async_pool_close();
	ipc_server_free(&srv);
	ev_fd_clear(ev, raw_lfd);
	(void)close(raw_lfd);
	if (raw_conn >= 0)
		(void)close(raw_conn);
	ev_free(&ev);
	(void)unlink(path_ok);
	(void)unlink(path_raw);
	return rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_servers),
		cmocka_unit_test(test_no_server),
		cmocka_unit_test(test_good_server),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_reuse),
	};

	log_init("test_ipc_async", 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
