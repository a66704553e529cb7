/*
 * test_ipc - the internal request/response protocol, end to end
 *
 * A forked child runs a server on the event loop (small limits, short
 * idle timeout); the test process is the client, through lib/ipc and
 * through raw sockets for what a well-behaved client would never send:
 * garbage, a record without request=, an oversize record, a truncated
 * record.  Also pipelining, deferred answers, ipc_call timeouts, idle
 * disconnects, and ipc_listen's handling of stale and live sockets.
 *
 * Draining (ipc_server_drain) gets a server child of its own per test,
 * drained by SIGUSR1 or by a "drain" request; it exits 0 only after
 * ipc_server_on_drained's callback ran, so waitpid() tells when.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "ev.h"
#include "ipc.h"
#include "log.h"

#define MAX_MSG		4096
#define IDLE_MS		600
#define MAX_CONNS	6

static char dir[64], sock[128];
static pid_t server_pid = -1;

/* ---- the server, in the child ---- */

#define MAX_DEFERRED	16

struct deferred {
	struct ipc_req *req;
	struct ev_timer *t;
};

static struct deferred deferred[MAX_DEFERRED];

static int
h_ping(struct ipc_req *req, void *arg)
{
	(void)attr_put_str(ipc_req_out(req), "pong", "1");
	return IPC_OK;
}

static int
h_echo(struct ipc_req *req, void *arg)
{
	const struct attr_rec *rec = ipc_req_attrs(req);
	const struct attr_field *f;
	size_t i;

	for (i = 1; (f = attr_at(rec, i)) != NULL; i++)
		if (attr_put(ipc_req_out(req), f->name, f->value,
		    f->value_len) < 0) {
			ipc_req_reason(req, "response too large");
			buf_reset(ipc_req_out(req));
			return IPC_TEMPFAIL;
		}
	return IPC_OK;
}

static int
h_fail(struct ipc_req *req, void *arg)
{
	ipc_req_reason(req, "no %s today", "luck");
	return IPC_PERMFAIL;
}

static int
h_whoami(struct ipc_req *req, void *arg)
{
	uid_t uid;
	pid_t pid;

	ipc_req_peer(req, &uid, &pid);
	(void)attr_put_uint(ipc_req_out(req), "uid", uid);
	(void)attr_put_uint(ipc_req_out(req), "pid", (unsigned long long)pid);
	return IPC_OK;
}

static void
on_deferred(struct ev *ev, void *arg)
{
	struct deferred *d = arg;

	d->t = NULL;
	if (!ipc_req_is_orphan(d->req))
		(void)attr_put_str(ipc_req_out(d->req), "slept", "yes");
	ipc_req_done(&d->req, IPC_OK);
}

/* sleep ms=N: answer after N ms; hang: never answer */
static int
h_sleep(struct ipc_req *req, void *arg)
{
	struct ev *ev = arg;
	unsigned long long ms = 0;
	size_t i;

	if (attr_get_uint(ipc_req_attrs(req), "ms", 0, 10000, &ms) < 0) {
		ipc_req_reason(req, "bad ms");
		return IPC_PERMFAIL;
	}
	for (i = 0; i < MAX_DEFERRED && deferred[i].req != NULL; i++)
		;
	if (i == MAX_DEFERRED) {
		ipc_req_reason(req, "busy");
		return IPC_TEMPFAIL;
	}
	deferred[i].req = req;
	if (strcmp(ipc_req_name(req), "sleep") == 0)
		deferred[i].t = ev_timer_add(ev, (int64_t)ms, on_deferred,
		    &deferred[i]);
	return IPC_DEFER;
}

static void
on_term(struct ev *ev, int signo, void *arg)
{
	ev_stop(ev);
}

/* the drain tests' server */
static struct ipc_server *drain_srv;
static int drain_called;

static int
h_drain(struct ipc_req *req, void *arg)
{
	ipc_server_drain(drain_srv);
	ipc_server_drain(drain_srv);		/* twice is harmless */
	(void)attr_put_str(ipc_req_out(req), "draining", "1");
	return IPC_OK;
}

static const struct ipc_handler handlers[] = {
	{ "ping", h_ping },
	{ "echo", h_echo },
	{ "fail", h_fail },
	{ "whoami", h_whoami },
	{ "sleep", h_sleep },
	{ "hang", h_sleep },
	{ "drain", h_drain },
	{ NULL, NULL },
};

/*
 * deferred_drop - after the server is freed: deferred requests of closed
 * connections are orphans that their owner frees (exit 4 if one is not)
 */
static void
deferred_drop(struct ev *ev)
{
	size_t i;

	for (i = 0; i < MAX_DEFERRED; i++) {
		ev_timer_cancel(ev, &deferred[i].t);
		if (deferred[i].req != NULL && !ipc_req_is_orphan(deferred[i].req))
			_exit(4);
		ipc_req_done(&deferred[i].req, IPC_OK);
	}
}

static void
server_main(int lfd)
{
	const struct ipc_limits lim = { MAX_MSG, 16, MAX_CONNS, IDLE_MS, 0 };
	struct ipc_server *srv;
	struct ev *ev = ev_new();

	log_init("test_ipc", LOG_TO_STDERR);
	if (ev_signal(ev, SIGTERM, on_term, NULL) < 0)
		_exit(2);
	srv = ipc_server_new(ev, lfd, handlers, ev, &lim);
	if (ev_run(ev) < 0)
		_exit(3);
	ipc_server_free(&srv);
	deferred_drop(ev);
	ev_free(&ev);
	exit(0);
}

static void
on_usr1(struct ev *ev, int signo, void *arg)
{
	ipc_server_drain(drain_srv);
}

static void
on_drained(void *arg)
{
	struct ev *ev = arg;

	drain_called++;
	if (ipc_server_conns(drain_srv) != 0)
		_exit(6);
	/* the callback may free the server */
	ipc_server_free(&drain_srv);
	ev_stop(ev);
}

/*
 * drain_server_main - exit 0 once drained (SIGTERM instead: 5); max_value
 * 1000, the other limits as the main server's
 */
static void
drain_server_main(int lfd)
{
	const struct ipc_limits lim = { MAX_MSG, 16, MAX_CONNS, IDLE_MS,
	    1000 };
	struct ev *ev = ev_new();

	log_init("test_ipc", LOG_TO_STDERR);
	if (ev_signal(ev, SIGTERM, on_term, NULL) < 0 ||
	    ev_signal(ev, SIGUSR1, on_usr1, NULL) < 0)
		_exit(2);
	drain_srv = ipc_server_new(ev, lfd, handlers, ev, &lim);
	ipc_server_on_drained(drain_srv, on_drained, ev);
	if (ev_run(ev) < 0)
		_exit(3);
	ipc_server_free(&drain_srv);
	deferred_drop(ev);
	ev_free(&ev);
	exit(drain_called == 1 ? 0 : 5);
}

static int
group_setup(void **state)
{
	int lfd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_ipc.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	if ((lfd = ipc_listen(sock, 0660)) < 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	if ((server_pid = fork()) < 0)
		return -1;
	if (server_pid == 0)
		server_main(lfd);
	close(lfd);
	return 0;
}

static int
group_teardown(void **state)
{
	int st = 0;

	(void)state;
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		if (waitpid(server_pid, &st, 0) != server_pid ||
		    !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "server exited badly: 0x%x\n", st);
			return -1;
		}
	}
	unlink(sock);
	rmdir(dir);
	return 0;
}

/* ---- helpers for the client side ---- */

static struct ipc_client *
connect_ok(void)
{
	struct ipc_client *cl = ipc_connect(sock, 2000);

	if (cl == NULL)
		fail_msg("connect %s: %s", sock, strerror(errno));
	return cl;
}

static int
raw_connect(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock, strlen(sock));
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
raw_write(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/*
 * raw_read_all - read until EOF or error (within ms) into b; 0 on EOF,
 * -1 on ECONNRESET (a server closing with unread input), -2 on timeout
 */
static int
raw_read_all(int fd, struct buf *b, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char chunk[4096];
	int64_t deadline = ev_clock_ms() + ms;
	ssize_t n;

	for (;;) {
		if (poll(&pfd, 1, (int)(deadline - ev_clock_ms())) <= 0)
			return -2;
		n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			return 0;
		if (n < 0)
			return errno == ECONNRESET ? -1 : -3;
		assert_int_equal(buf_append(b, chunk, (size_t)n), 0);
	}
}

/* decode_one - the first record of b */
static struct attr_rec *
decode_one(const struct buf *b, size_t *used_r)
{
	struct attr_rec *rec = attr_rec_new();
	const char *reason;

	if (attr_decode(buf_cstr(b), buf_len(b), NULL, rec, used_r,
	    &reason) != 1)
		fail_msg("no complete response in %zu bytes: \"%s\"",
		    buf_len(b), buf_cstr(b));
	return rec;
}

/*
 * expect_proto_error - send data raw, get one status=3 response whose
 * reason holds want, then the server closes
 */
static void
expect_proto_error(const void *data, size_t len, int shut, const char *want)
{
	struct attr_rec *rec;
	unsigned long long st;
	const char *reason;
	struct buf b;
	size_t used;
	int fd = raw_connect(), r;

	buf_init(&b, 0);
	raw_write(fd, data, len);
	if (shut)
		shutdown(fd, SHUT_WR);
	r = raw_read_all(fd, &b, 3000);
	assert_true(r == 0 || r == -1);		/* closed, not a timeout */
	rec = decode_one(&b, &used);
	assert_int_equal(used, buf_len(&b));	/* one response only */
	assert_string_equal(attr_at(rec, 0)->name, "status");
	assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
	assert_int_equal(st, IPC_PROTOERR);
	reason = attr_get_str(rec, "reason");
	assert_non_null(reason);
	if (strstr(reason, want) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", reason, want);
	attr_rec_free(&rec);
	buf_deinit(&b);
	close(fd);
}

/* ---- hostile input first ---- */

static void
test_garbage(void **state)
{
	(void)state;
	expect_proto_error("HELO example.com\r\n", 18, 0,
	    "expected a length");
	expect_proto_error("GET / HTTP/1.0\r\n\r\n", 18, 1,
	    "expected a length");
	expect_proto_error("12:request=ping;0:,", 19, 0, "expected ','");
	expect_proto_error("3:A=1,0:,", 9, 0, "bad character");
	expect_proto_error("\0\0\0\0", 4, 0, "expected a length");
}

static void
test_garbage_after_good(void **state)
{
	const char data[] = "12:request=ping,0:,junk";
	struct attr_rec *rec;
	unsigned long long st;
	struct buf b, rest;
	size_t used;
	int fd = raw_connect(), r;

	(void)state;
	/* the good request is answered, then the error, then close */
	buf_init(&b, 0);
	raw_write(fd, data, sizeof(data) - 1);
	r = raw_read_all(fd, &b, 3000);
	assert_true(r == 0 || r == -1);
	rec = decode_one(&b, &used);
	assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
	assert_int_equal(st, IPC_OK);
	assert_string_equal(attr_get_str(rec, "pong"), "1");
	attr_rec_free(&rec);
	buf_init(&rest, 0);
	buf_append(&rest, buf_cstr(&b) + used, buf_len(&b) - used);
	rec = decode_one(&rest, &used);
	assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
	assert_int_equal(st, IPC_PROTOERR);
	attr_rec_free(&rec);
	buf_deinit(&rest);
	buf_deinit(&b);
	close(fd);
}

static void
test_no_request_first(void **state)
{
	(void)state;
	expect_proto_error("3:a=1,12:request=ping,0:,", 25, 0,
	    "must start with request=");
	expect_proto_error("0:,", 3, 0, "must start with request=");
	expect_proto_error("13:request=pi\0ng,0:,", 20, 0,
	    "must start with request=");
}

static void
test_truncated(void **state)
{
	(void)state;
	/* the peer stops sending in the middle of a record */
	expect_proto_error("12:request=pi", 13, 1, "truncated");
	expect_proto_error("12:request=ping,", 16, 1, "truncated");
}

static void
test_oversize(void **state)
{
	struct ipc_client *cl;
	struct attr_rec *resp = attr_rec_new();
	struct buf req, big;
	char *value = malloc(MAX_MSG);
	char hdr[32];
	int n;

	(void)state;
	/* refused from the length prefix, before the data is sent */
	n = snprintf(hdr, sizeof(hdr), "12:request=echo,%d:", MAX_MSG);
	expect_proto_error(hdr, (size_t)n, 0, "too large");
	expect_proto_error("99999999999999999999:", 21, 0, "too long");
	/* too many attributes (limit 16) */
	buf_init(&big, 0);
	ipc_request(&big, "echo");
	for (n = 0; n < 16; n++)
		attr_put_str(&big, "a", "x");
	attr_end(&big);
	expect_proto_error(buf_cstr(&big), buf_len(&big), 0,
	    "too many attributes");
	buf_deinit(&big);

	/* through the client: the server answers status 3 and closes */
	memset(value, 'v', MAX_MSG);
	buf_init(&req, 0);
	ipc_request(&req, "echo");
	attr_put(&req, "data", value, MAX_MSG);
	attr_end(&req);
	cl = connect_ok();
	assert_int_equal(ipc_call(cl, &req, resp, 3000), IPC_PROTOERR);
	assert_non_null(strstr(attr_get_str(resp, "reason"), "too large"));
	/* the connection is gone */
	ipc_request(&req, "ping");
	attr_end(&req);
	assert_int_equal(ipc_call(cl, &req, resp, 3000), -1);
	ipc_client_free(&cl);
	assert_null(cl);

	/* just under the limit works; the echo is then too large to send */
	buf_init(&big, 0);
	ipc_request(&big, "echo");
	attr_put(&big, "data", value, MAX_MSG - 40);
	attr_end(&big);
	assert_true(buf_len(&big) <= MAX_MSG);
	cl = connect_ok();
	assert_int_equal(ipc_call(cl, &big, resp, 3000), IPC_TEMPFAIL);
	assert_string_equal(attr_get_str(resp, "reason"),
	    "response too large");
	assert_int_equal(attr_count(resp), 2);
	/* and the connection stays usable */
	assert_int_equal(ipc_call(cl, &req, resp, 3000), IPC_OK);
	ipc_client_free(&cl);
	buf_deinit(&big);
	buf_deinit(&req);
	attr_rec_free(&resp);
	free(value);
}

static void
test_client_refuses_bad_request(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	struct buf req;

	(void)state;
	buf_init(&req, 0);
	ipc_request(&req, "ping");		/* no end marker */
	errno = 0;
	assert_int_equal(ipc_call(cl, &req, resp, 1000), -1);
	assert_int_equal(errno, EINVAL);
	attr_end(&req);
	attr_end(&req);				/* two records */
	assert_int_equal(ipc_send(cl, &req, 1000), -1);
	assert_int_equal(errno, EINVAL);
	/* nothing was sent: the connection is fine */
	buf_truncate(&req, buf_len(&req) - 3);
	assert_int_equal(ipc_call(cl, &req, resp, 1000), IPC_OK);
	ipc_client_free(&cl);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

/* ---- normal use ---- */

static void
test_ping(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	unsigned long long uid, pid;
	struct buf req;

	(void)state;
	buf_init(&req, 0);
	assert_int_equal(ipc_request(&req, "ping"), 0);
	assert_int_equal(attr_end(&req), 0);
	assert_string_equal(buf_cstr(&req), "12:request=ping,0:,");
	assert_int_equal(ipc_call(cl, &req, resp, 2000), IPC_OK);
	assert_string_equal(attr_at(resp, 0)->name, "status");
	assert_string_equal(attr_get_str(resp, "pong"), "1");
	assert_null(attr_get_str(resp, "reason"));
	/* the server knows who we are */
	ipc_request(&req, "whoami");
	attr_end(&req);
	assert_int_equal(ipc_call(cl, &req, resp, 2000), IPC_OK);
	assert_int_equal(attr_get_uint(resp, "uid", 0, ~0ULL, &uid), 1);
	assert_int_equal(attr_get_uint(resp, "pid", 0, ~0ULL, &pid), 1);
	assert_int_equal(uid, getuid());
	assert_int_equal(pid, getpid());
	ipc_client_free(&cl);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

static void
test_failures(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	struct buf req;

	(void)state;
	buf_init(&req, 0);
	ipc_request(&req, "fail");
	attr_end(&req);
	assert_int_equal(ipc_call(cl, &req, resp, 2000), IPC_PERMFAIL);
	assert_string_equal(attr_get_str(resp, "reason"), "no luck today");
	assert_string_equal(attr_at(resp, 1)->name, "reason");
	/* an unknown request is refused, the connection stays */
	ipc_request(&req, "nosuch");
	attr_end(&req);
	assert_int_equal(ipc_call(cl, &req, resp, 2000), IPC_PERMFAIL);
	assert_non_null(strstr(attr_get_str(resp, "reason"),
	    "unknown request \"nosuch\""));
	ipc_request(&req, "ping");
	attr_end(&req);
	assert_int_equal(ipc_call(cl, &req, resp, 2000), IPC_OK);
	ipc_client_free(&cl);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

static void
test_pipelined(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	unsigned long long id;
	struct buf req, all;
	const char *v;
	size_t len;
	int i;

	(void)state;
	buf_init(&req, 0);
	buf_init(&all, 0);
	/* 100 requests (more than one wake-up's worth) in one write */
	for (i = 0; i < 100; i++) {
		ipc_request(&req, i % 10 == 3 ? "fail" : "echo");
		attr_put_uint(&req, "id", (unsigned long long)i);
		attr_put(&req, "bin", "a\0b\n", 4);
		attr_end(&req);
		buf_append(&all, buf_cstr(&req), buf_len(&req));
	}
	/* ipc_send takes one record: the first through the client */
	{
		struct attr_rec *tmp;
		struct buf one;
		size_t used;

		tmp = decode_one(&all, &used);
		attr_rec_free(&tmp);
		buf_init(&one, 0);
		buf_append(&one, buf_cstr(&all), used);
		assert_int_equal(ipc_send(cl, &one, 2000), 0);
		buf_consume(&all, used);
		buf_deinit(&one);
	}
	/* the other 99 in one go, through the raw fd of a second client */
	{
		int fd = raw_connect(), r;
		struct buf in;
		size_t used, off = 0;
		unsigned long long st;

		raw_write(fd, buf_cstr(&all), buf_len(&all));
		shutdown(fd, SHUT_WR);
		buf_init(&in, 0);
		r = raw_read_all(fd, &in, 5000);
		assert_int_equal(r, 0);		/* clean close after the last */
		for (i = 1; i < 100; i++) {
			struct buf tail;
			struct attr_rec *rec;

			buf_init(&tail, 0);
			buf_append(&tail, buf_cstr(&in) + off,
			    buf_len(&in) - off);
			rec = decode_one(&tail, &used);
			off += used;
			assert_int_equal(attr_get_uint(rec, "status", 0, 255,
			    &st), 1);
			if (i % 10 == 3) {
				assert_int_equal(st, IPC_PERMFAIL);
			} else {
				assert_int_equal(st, IPC_OK);
				assert_int_equal(attr_get_uint(rec, "id", 0,
				    1000, &id), 1);
				assert_int_equal(id, i);
				assert_int_equal(attr_get(rec, "bin", &v,
				    &len), 1);
				assert_int_equal(len, 4);
				assert_memory_equal(v, "a\0b\n", 4);
			}
			attr_rec_free(&rec);
			buf_deinit(&tail);
		}
		assert_int_equal(off, buf_len(&in));
		buf_deinit(&in);
		close(fd);
	}
	assert_int_equal(ipc_recv(cl, resp, 2000), IPC_OK);
	assert_int_equal(attr_get_uint(resp, "id", 0, 1000, &id), 1);
	assert_int_equal(id, 0);
	/* the client API pipelines too */
	for (i = 0; i < 20; i++) {
		ipc_request(&req, "echo");
		attr_put_uint(&req, "id", (unsigned long long)i);
		attr_end(&req);
		assert_int_equal(ipc_send(cl, &req, 2000), 0);
	}
	for (i = 0; i < 20; i++) {
		assert_int_equal(ipc_recv(cl, resp, 2000), IPC_OK);
		assert_int_equal(attr_get_uint(resp, "id", 0, 1000, &id), 1);
		assert_int_equal(id, i);
	}
	ipc_client_free(&cl);
	buf_deinit(&req);
	buf_deinit(&all);
	attr_rec_free(&resp);
}

static void
test_deferred_in_order(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	unsigned long long id;
	struct buf req;
	int64_t start;

	(void)state;
	buf_init(&req, 0);
	start = ev_clock_ms();
	ipc_request(&req, "sleep");
	attr_put_uint(&req, "ms", 150);
	attr_end(&req);
	assert_int_equal(ipc_send(cl, &req, 2000), 0);
	ipc_request(&req, "echo");
	attr_put_uint(&req, "id", 2);
	attr_end(&req);
	assert_int_equal(ipc_send(cl, &req, 2000), 0);
	/* the quick one waits behind the slow one: one answer each, in order */
	assert_int_equal(ipc_recv(cl, resp, 2000), IPC_OK);
	assert_string_equal(attr_get_str(resp, "slept"), "yes");
	assert_true(ev_clock_ms() - start >= 140);
	assert_int_equal(ipc_recv(cl, resp, 2000), IPC_OK);
	assert_int_equal(attr_get_uint(resp, "id", 0, 10, &id), 1);
	assert_int_equal(id, 2);
	/* other connections are served meanwhile */
	ipc_request(&req, "sleep");
	attr_put_uint(&req, "ms", 300);
	attr_end(&req);
	assert_int_equal(ipc_send(cl, &req, 2000), 0);
	{
		struct ipc_client *cl2 = connect_ok();
		struct buf ping;

		buf_init(&ping, 0);
		ipc_request(&ping, "ping");
		attr_end(&ping);
		start = ev_clock_ms();
		assert_int_equal(ipc_call(cl2, &ping, resp, 2000), IPC_OK);
		assert_true(ev_clock_ms() - start < 200);
		ipc_client_free(&cl2);
		buf_deinit(&ping);
	}
	assert_int_equal(ipc_recv(cl, resp, 2000), IPC_OK);
	ipc_client_free(&cl);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

static void
test_call_timeout(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	struct buf req;
	int64_t start, took;

	(void)state;
	buf_init(&req, 0);
	ipc_request(&req, "hang");
	attr_end(&req);
	start = ev_clock_ms();
	errno = 0;
	assert_int_equal(ipc_call(cl, &req, resp, 250), -1);
	took = ev_clock_ms() - start;
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(took >= 240);
	assert_true(took < 1500);
	/* the connection is out of step now: it refuses further use */
	ipc_request(&req, "ping");
	attr_end(&req);
	errno = 0;
	assert_int_equal(ipc_call(cl, &req, resp, 250), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(ipc_recv(cl, resp, 250), -1);
	assert_int_equal(errno, EPIPE);
	/* closing it orphans the server's deferred request */
	ipc_client_free(&cl);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

static void
test_idle_timeout(void **state)
{
	int fd = raw_connect(), r;
	struct buf b;
	int64_t start = ev_clock_ms(), took;

	(void)state;
	buf_init(&b, 0);
	r = raw_read_all(fd, &b, 5000);
	took = ev_clock_ms() - start;
	assert_int_equal(r, 0);			/* closed by the server */
	assert_int_equal(buf_len(&b), 0);
	assert_true(took >= IDLE_MS - 50);
	assert_true(took < IDLE_MS + 1500);
	buf_deinit(&b);
	close(fd);
}

static void
test_idle_reset_by_traffic(void **state)
{
	struct ipc_client *cl = connect_ok();
	struct attr_rec *resp = attr_rec_new();
	struct buf req;
	int i;

	(void)state;
	buf_init(&req, 0);
	ipc_request(&req, "ping");
	attr_end(&req);
	/* 4 x 250 ms > IDLE_MS, but never idle that long at once */
	for (i = 0; i < 4; i++) {
		usleep(250 * 1000);
		assert_int_equal(ipc_call(cl, &req, resp, 2000), IPC_OK);
	}
	ipc_client_free(&cl);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

static void
test_server_half_close(void **state)
{
	const char data[] = "12:request=ping,0:,";
	struct attr_rec *rec;
	struct buf b;
	size_t used;
	int fd = raw_connect();

	(void)state;
	/* sent, then shut for writing: the answer still comes, then EOF */
	raw_write(fd, data, sizeof(data) - 1);
	shutdown(fd, SHUT_WR);
	buf_init(&b, 0);
	assert_int_equal(raw_read_all(fd, &b, 3000), 0);
	rec = decode_one(&b, &used);
	assert_int_equal(used, buf_len(&b));
	assert_string_equal(attr_get_str(rec, "pong"), "1");
	attr_rec_free(&rec);
	buf_deinit(&b);
	close(fd);
}

static void
test_max_conns(void **state)
{
	struct ipc_client *cl[MAX_CONNS + 1];
	struct attr_rec *resp = attr_rec_new();
	struct buf req;
	int i;

	(void)state;
	usleep(100 * 1000);	/* the server sees earlier clients leave */
	buf_init(&req, 0);
	ipc_request(&req, "ping");
	attr_end(&req);
	for (i = 0; i < MAX_CONNS; i++) {
		cl[i] = connect_ok();
		assert_int_equal(ipc_call(cl[i], &req, resp, 2000), IPC_OK);
	}
	/* the next one waits in the backlog: not served */
	cl[MAX_CONNS] = connect_ok();
	assert_int_equal(ipc_call(cl[MAX_CONNS], &req, resp, 300), -1);
	assert_int_equal(errno, ETIMEDOUT);
	ipc_client_free(&cl[MAX_CONNS]);
	/* one leaves: a new one is served */
	ipc_client_free(&cl[0]);
	cl[0] = connect_ok();
	assert_int_equal(ipc_call(cl[0], &req, resp, 2000), IPC_OK);
	for (i = 0; i < MAX_CONNS; i++)
		ipc_client_free(&cl[i]);
	buf_deinit(&req);
	attr_rec_free(&resp);
}

static void
test_listen_and_connect(void **state)
{
	char path[160], longpath[200];
	struct stat st;
	int fd, fd2;

	(void)state;
	/* a live server's socket is not taken over */
	errno = 0;
	assert_int_equal(ipc_listen(sock, 0600), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	/* a stale one is replaced, with the new mode */
	snprintf(path, sizeof(path), "%s/stale", dir);
	fd = ipc_listen(path, 0600);
	assert_true(fd >= 0);
	close(fd);
	fd2 = ipc_listen(path, 0666);
	assert_true(fd2 >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0666);
	close(fd2);
	unlink(path);
	/* a file that is not a socket is left alone */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	errno = 0;
	assert_int_equal(ipc_listen(path, 0600), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* connecting to it, or to nothing, fails at once */
	assert_null(ipc_connect(path, 500));
	assert_int_equal(errno, ECONNREFUSED);
	unlink(path);
	assert_null(ipc_connect(path, 500));
	assert_int_equal(errno, ENOENT);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_null(ipc_connect(longpath, 500));
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(ipc_listen(longpath, 0600), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

/* ---- draining ---- */

static char dsock[sizeof(sock)];

/* drain_start - a server child of its own on dsock; its pid */
static pid_t
drain_start(void)
{
	static int n;
	pid_t pid;
	int lfd;

	snprintf(dsock, sizeof(dsock), "%s/drain%d", dir, n++);
	lfd = ipc_listen(dsock, 0600);
	assert_true(lfd >= 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		drain_server_main(lfd);
	close(lfd);
	return pid;
}

/* drain_wait - the child's exit status within ms, or -1 (then killed) */
static int
drain_wait(pid_t pid, int ms)
{
	int64_t deadline = ev_clock_ms() + ms;
	int st;

	while (ev_clock_ms() < deadline) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		usleep(5 * 1000);
	}
	kill(pid, SIGKILL);
	(void)waitpid(pid, &st, 0);
	return -1;
}

static int
dconnect(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, dsock, strlen(dsock));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* dcall - one request on fd, its status (ping: checked to answer) */
static int
dcall(int fd, const struct buf *req)
{
	struct attr_rec *rec;
	unsigned long long st;
	char chunk[4096];
	struct buf b;
	size_t used;
	const char *reason;
	ssize_t n;
	int r;

	raw_write(fd, buf_cstr(req), buf_len(req));
	buf_init(&b, 0);
	rec = attr_rec_new();
	while ((r = attr_decode(buf_cstr(&b), buf_len(&b), NULL, rec, &used,
	    &reason)) == 0) {
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			fail_msg("no answer");
		buf_append(&b, chunk, (size_t)n);
	}
	assert_int_equal(r, 1);
	assert_int_equal(used, buf_len(&b));
	assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
	attr_rec_free(&rec);
	buf_deinit(&b);
	return (int)st;
}

static void
mkreq(struct buf *b, const char *name, const char *attr, unsigned v)
{
	ipc_request(b, name);
	if (attr != NULL)
		attr_put_uint(b, attr, v);
	attr_end(b);
}

/* wait_server_ready - until a connection is served */
static void
drain_ready(void)
{
	struct buf req;
	int fd, i;

	buf_init(&req, 0);
	mkreq(&req, "ping", NULL, 0);
	for (i = 0; i < 200 && (fd = dconnect()) < 0; i++)
		usleep(10 * 1000);
	assert_true(fd >= 0);
	assert_int_equal(dcall(fd, &req), IPC_OK);
	close(fd);
	buf_deinit(&req);
}

static void
test_drain_value_limit(void **state)
{
	pid_t pid = drain_start();
	char value[1001];
	struct buf req;
	int fd;

	(void)state;
	drain_ready();
	/* max_value 1000: a value of 1000 bytes passes, 1001 is refused */
	memset(value, 'v', sizeof(value));
	buf_init(&req, 0);
	ipc_request(&req, "echo");
	attr_put(&req, "data", value, 1000);
	attr_end(&req);
	fd = dconnect();
	assert_int_equal(dcall(fd, &req), IPC_OK);
	close(fd);
	ipc_request(&req, "echo");
	attr_put(&req, "data", value, 1001);
	attr_end(&req);
	{
		char save[sizeof(sock)];

		/* expect_proto_error talks to sock: point it here */
		memcpy(save, sock, sizeof(sock));
		snprintf(sock, sizeof(sock), "%s", dsock);
		expect_proto_error(buf_cstr(&req), buf_len(&req), 0,
		    "too long");
		memcpy(sock, save, sizeof(sock));
	}
	buf_deinit(&req);
	kill(pid, SIGUSR1);
	assert_int_equal(drain_wait(pid, 3000), 0);
}

static void
test_drain_idle(void **state)
{
	pid_t pid = drain_start();
	struct buf req, b;
	int fd1, fd2, fd3, r;
	int64_t start;

	(void)state;
	drain_ready();
	buf_init(&req, 0);
	buf_init(&b, 0);
	mkreq(&req, "ping", NULL, 0);
	fd1 = dconnect();			/* never sent anything */
	fd2 = dconnect();			/* used, now idle */
	assert_true(fd1 >= 0 && fd2 >= 0);
	assert_int_equal(dcall(fd2, &req), IPC_OK);
	start = ev_clock_ms();
	kill(pid, SIGUSR1);
	/* both closed at once, long before the idle timeout */
	assert_int_equal(raw_read_all(fd1, &b, 2000), 0);
	assert_int_equal(raw_read_all(fd2, &b, 2000), 0);
	assert_int_equal(buf_len(&b), 0);
	assert_true(ev_clock_ms() - start < IDLE_MS / 2);
	/* drained: the callback ran and the server is gone */
	r = drain_wait(pid, 2000);
	assert_int_equal(r, 0);
	/* nobody accepts any more */
	fd3 = dconnect();
	assert_int_equal(fd3, -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd1);
	close(fd2);
	buf_deinit(&req);
	buf_deinit(&b);
}

static void
test_drain_deferred(void **state)
{
	pid_t pid = drain_start();
	struct buf req, two, b;
	struct attr_rec *rec;
	unsigned long long st;
	size_t used;
	int fd, idle, r;
	int64_t start;

	(void)state;
	drain_ready();
	buf_init(&req, 0);
	buf_init(&two, 0);
	buf_init(&b, 0);
	/* a slow request with a quick one pipelined behind it */
	mkreq(&req, "sleep", "ms", 400);
	buf_append(&two, buf_cstr(&req), buf_len(&req));
	mkreq(&req, "echo", "id", 7);
	buf_append(&two, buf_cstr(&req), buf_len(&req));
	fd = dconnect();
	idle = dconnect();
	assert_true(fd >= 0 && idle >= 0);
	start = ev_clock_ms();
	raw_write(fd, buf_cstr(&two), buf_len(&two));
	usleep(50 * 1000);			/* the server has it */
	kill(pid, SIGUSR1);
	/* the idle one goes at once */
	assert_int_equal(raw_read_all(idle, &b, 2000), 0);
	assert_true(ev_clock_ms() - start < 300);
	assert_int_equal(buf_len(&b), 0);
	/* the deferred request is answered, then the connection closes */
	r = raw_read_all(fd, &b, 3000);
	assert_true(r == 0 || r == -1);	/* -1: unread input was dropped */
	assert_true(ev_clock_ms() - start >= 390);
	rec = decode_one(&b, &used);
	assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
	assert_int_equal(st, IPC_OK);
	assert_string_equal(attr_get_str(rec, "slept"), "yes");
	/* the echo behind it was not started: no second answer */
	assert_int_equal(used, buf_len(&b));
	attr_rec_free(&rec);
	assert_int_equal(drain_wait(pid, 2000), 0);
	close(fd);
	close(idle);
	buf_deinit(&req);
	buf_deinit(&two);
	buf_deinit(&b);
}

static void
test_drain_peer_gone(void **state)
{
	pid_t pid = drain_start();
	struct buf req;
	int fd, fd2;
	int64_t start;

	(void)state;
	drain_ready();
	buf_init(&req, 0);
	mkreq(&req, "sleep", "ms", 1500);
	/* gone before the drain */
	fd = dconnect();
	raw_write(fd, buf_cstr(&req), buf_len(&req));
	/* gone after it */
	fd2 = dconnect();
	raw_write(fd2, buf_cstr(&req), buf_len(&req));
	usleep(50 * 1000);
	close(fd);
	usleep(50 * 1000);
	start = ev_clock_ms();
	kill(pid, SIGUSR1);
	usleep(50 * 1000);
	close(fd2);
	/*
	 * neither orphaned request holds the drain up: done long before
	 * the 1500 ms, and the child checked the orphans were freed
	 */
	assert_int_equal(drain_wait(pid, 1000), 0);
	assert_true(ev_clock_ms() - start < 800);
	buf_deinit(&req);
}

static void
test_drain_from_handler(void **state)
{
	pid_t pid = drain_start();
	struct attr_rec *rec;
	unsigned long long st;
	struct buf req, b;
	size_t used;
	int fd, idle, r;

	(void)state;
	drain_ready();
	buf_init(&req, 0);
	buf_init(&b, 0);
	idle = dconnect();
	fd = dconnect();
	assert_true(fd >= 0 && idle >= 0);
	/* a drain request, and a ping pipelined behind it */
	mkreq(&req, "drain", NULL, 0);
	raw_write(fd, buf_cstr(&req), buf_len(&req));
	mkreq(&req, "ping", NULL, 0);
	raw_write(fd, buf_cstr(&req), buf_len(&req));
	/* its own response still goes out, then the end */
	r = raw_read_all(fd, &b, 2000);
	assert_true(r == 0 || r == -1);
	rec = decode_one(&b, &used);
	assert_int_equal(used, buf_len(&b));
	assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
	assert_int_equal(st, IPC_OK);
	assert_string_equal(attr_get_str(rec, "draining"), "1");
	attr_rec_free(&rec);
	buf_reset(&b);
	assert_int_equal(raw_read_all(idle, &b, 2000), 0);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(drain_wait(pid, 2000), 0);
	close(fd);
	close(idle);
	buf_deinit(&req);
	buf_deinit(&b);
}

static void
test_drain_flushes_output(void **state)
{
	pid_t pid = drain_start();
	char value[900];
	struct buf req, all, b;
	unsigned long long st, id;
	size_t off = 0, used, sent = 0;
	ssize_t n;
	int fd, i, r, got;

	(void)state;
	drain_ready();
	memset(value, 'x', sizeof(value));
	buf_init(&req, 0);
	buf_init(&all, 0);
	buf_init(&b, 0);
	/* far more echo answers than the sockets buffer, and nobody reads */
	for (i = 0; i < 2000; i++) {
		ipc_request(&req, "echo");
		attr_put_uint(&req, "id", (unsigned long long)i);
		attr_put(&req, "data", value, sizeof(value));
		attr_end(&req);
		buf_append(&all, buf_cstr(&req), buf_len(&req));
	}
	fd = dconnect();
	assert_true(fd >= 0);
	for (;;) {
		n = send(fd, buf_cstr(&all) + sent, buf_len(&all) - sent,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
		if (sent == buf_len(&all))
			break;
		usleep(20 * 1000);		/* let the server fill up */
	}
	assert_true(sent < buf_len(&all));	/* the server stopped reading */
	kill(pid, SIGUSR1);
	usleep(50 * 1000);
	/* every answer made before the drain comes, whole, in order */
	r = raw_read_all(fd, &b, 3000);
	assert_true(r == 0 || r == -1);
	for (got = 0; off < buf_len(&b); got++) {
		struct buf tail;
		struct attr_rec *rec;

		buf_init(&tail, 0);
		buf_append(&tail, buf_cstr(&b) + off, buf_len(&b) - off);
		rec = decode_one(&tail, &used);
		off += used;
		assert_int_equal(attr_get_uint(rec, "status", 0, 255, &st), 1);
		assert_int_equal(st, IPC_OK);
		assert_int_equal(attr_get_uint(rec, "id", 0, 10000, &id), 1);
		assert_int_equal(id, got);
		attr_rec_free(&rec);
		buf_deinit(&tail);
	}
	assert_true(got > 10);
	assert_true(got < 2000);
	assert_int_equal(drain_wait(pid, 2000), 0);
	close(fd);
	buf_deinit(&req);
	buf_deinit(&all);
	buf_deinit(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_garbage_after_good),
		cmocka_unit_test(test_no_request_first),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_client_refuses_bad_request),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_deferred_in_order),
		cmocka_unit_test(test_call_timeout),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_idle_reset_by_traffic),
		cmocka_unit_test(test_server_half_close),
		cmocka_unit_test(test_max_conns),
		cmocka_unit_test(test_listen_and_connect),
		cmocka_unit_test(test_drain_value_limit),
		cmocka_unit_test(test_drain_idle),
		cmocka_unit_test(test_drain_deferred),
		cmocka_unit_test(test_drain_peer_gone),
		cmocka_unit_test(test_drain_from_handler),
		cmocka_unit_test(test_drain_flushes_output),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("ipc", tests, group_setup,
	    group_teardown);
}
