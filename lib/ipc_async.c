/*
 * ipc_async - a non-blocking ipc client exchange on lib/ev (see
 * ipc_async.h)
 *
 * States: connecting (EINPROGRESS: wait for EV_WRITE; EAGAIN, a Unix
 * socket whose backlog is full, gives no completion event: retry on a
 * short timer), sending, receiving, done.  A failure before the loop
 * could run (socket(), a path too long, a refused connect) is reported
 * from a zero timer, so the callback never runs inside the call.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "ipc_async.h"
#include "log.h"
#include "mem.h"

#define IPC_ASYNC_RETRY_MS	10
#define IPC_ASYNC_CHUNK		16384
#define IPC_ASYNC_POOL_MAX	64	/* idle connections kept, all paths */
#define IPC_ASYNC_IDLE_MS	(60 * 1000)	/* kept this long at most */

enum ipc_async_state {
	IA_CONNECTING,
	IA_SENDING,
	IA_RECEIVING,
	IA_FAILED,
};

struct ipc_async {
	struct ev *ev;
	enum ipc_async_state state;
	int	 fd;
	struct sockaddr_un sun;
	struct buf out;
	size_t	 off;
	struct buf in;
	struct ev_timer *deadline, *retry;
	int64_t	 end;		/* ev_now() deadline */
	bool	 reused;	/* fd came from the pool */
	bool	 reusable;	/* exactly one response read: may go back */
	ipc_async_cb *cb;
	void	*arg;
	char	 err[160];
};

static void	ia_on_io(struct ev *, int, int, void *);
static void	ia_on_retry(struct ev *, void *);

/*
 * Idle connections: a connection whose exchange ended with exactly one
 * whole response is kept (per process, at most IPC_ASYNC_POOL_MAX, each
 * for IPC_ASYNC_IDLE_MS) and the next call to the same path takes it
 * instead of connecting: qmgr sends every delivery request this way.
 * A kept connection the server has closed meanwhile is noticed before
 * use (poll: readable or hung up) or, if it goes while the request is
 * sent, before any byte of the response came: the call then starts
 * over once on a new connection.  (A server only closes a connection
 * between requests, or when it dies: then the request is repeated, as
 * qmgr would repeat it later anyway.)
 */
static struct {
	char	 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int	 fd;
	int64_t	 since;
} pool[IPC_ASYNC_POOL_MAX];
static size_t npool;

static void
pool_drop(size_t i)
{
	(void)close(pool[i].fd);
	pool[i] = pool[--npool];
}

/* pool_get - a live idle connection to path, or -1 */
static int
pool_get(struct ev *ev, const char *path)
{
	struct pollfd pfd;
	size_t i = npool;
	int fd;

	while (i-- > 0) {
		if (ev_now(ev) - pool[i].since > IPC_ASYNC_IDLE_MS) {
			pool_drop(i);
			continue;
		}
		if (strcmp(pool[i].path, path) != 0)
			continue;
		fd = pool[i].fd;
		pool[i] = pool[--npool];
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) == 0)
			return fd;
		(void)close(fd);	/* closed by the server, or junk */
	}
	return -1;
}

static void
pool_put(struct ev *ev, const char *path, int fd)
{
	size_t i = npool;

	while (i-- > 0)
		if (ev_now(ev) - pool[i].since > IPC_ASYNC_IDLE_MS)
			pool_drop(i);
	if (npool == IPC_ASYNC_POOL_MAX) {
		(void)close(fd);
		return;
	}
	(void)snprintf(pool[npool].path, sizeof(pool[npool].path), "%s",
	    path);
	pool[npool].fd = fd;
	pool[npool].since = ev_now(ev);
	npool++;
}

void
ipc_async_pool_close(void)
{
	while (npool > 0)
		pool_drop(npool - 1);
}

static void
ia_free(struct ipc_async *ia)
{
	ev_timer_cancel(ia->ev, &ia->deadline);
	ev_timer_cancel(ia->ev, &ia->retry);
	if (ia->fd >= 0) {
		ev_fd_clear(ia->ev, ia->fd);
		(void)close(ia->fd);
	}
	buf_deinit(&ia->out);
	buf_deinit(&ia->in);
	free(ia);
}

/* ia_finish - run the callback once, then free */
static void
ia_finish(struct ipc_async *ia, int status, const struct attr_rec *resp)
{
	ipc_async_cb *cb = ia->cb;
	void *arg = ia->arg;
	char err[sizeof(ia->err)];

	(void)snprintf(err, sizeof(err), "%s", ia->err);
	if (ia->fd >= 0) {
		ev_fd_clear(ia->ev, ia->fd);
		if (status >= 0 && ia->reusable)
			pool_put(ia->ev, ia->sun.sun_path, ia->fd);
		else
			(void)close(ia->fd);
		ia->fd = -1;
	}
	ev_timer_cancel(ia->ev, &ia->deadline);
	ev_timer_cancel(ia->ev, &ia->retry);
	cb(arg, status, resp, status < 0 ? err : NULL);
	ia_free(ia);
}

static void
ia_fail(struct ipc_async *ia, const char *fmt, const char *detail)
{
	if (ia->reused && buf_len(&ia->in) == 0 && ia->fd >= 0 &&
	    ia->deadline != NULL) {
		/* a kept connection that was gone: once more, a new one */
		ev_fd_clear(ia->ev, ia->fd);
		(void)close(ia->fd);
		ia->reused = false;
		ia->off = 0;
		ia->state = IA_CONNECTING;
		ia->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (ia->fd >= 0) {
			ev_timer_cancel(ia->ev, &ia->retry);
			ia->retry = ev_timer_add(ia->ev, 0, ia_on_retry, ia);
			return;
		}
	}
	(void)snprintf(ia->err, sizeof(ia->err), fmt, detail);
	ia_finish(ia, -1, NULL);
}

static void
ia_on_deadline(struct ev *ev, void *arg)
{
	struct ipc_async *ia = arg;

	(void)ev;
	ia->deadline = NULL;
	ia_fail(ia, "%s", "timed out");
}

static void
ia_on_failed(struct ev *ev, void *arg)
{
	struct ipc_async *ia = arg;

	(void)ev;
	ia->retry = NULL;
	ia_finish(ia, -1, NULL);
}

/* ia_recv - read and try to decode the response */
static void
ia_recv(struct ipc_async *ia)
{
	static const struct attr_limits lim = {
		IPC_MSG_MAX_DEFAULT, IPC_ATTRS_MAX_DEFAULT, IPC_NAME_MAX,
		IPC_MSG_MAX_DEFAULT,
	};
	struct attr_rec *rec;
	const struct attr_field *f;
	unsigned long long status;
	const char *why;
	size_t used, room;
	ssize_t n;
	int rc;

	for (;;) {
		room = ia->in.max - buf_len(&ia->in);
		if (room > IPC_ASYNC_CHUNK)
			room = IPC_ASYNC_CHUNK;
		if (room == 0 || buf_reserve(&ia->in, room) < 0) {
			ia_fail(ia, "%s", "bad response: too long");
			return;
		}
		n = read(ia->fd, ia->in.data + ia->in.len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			ia_fail(ia, "%s", "connection closed");
			return;
		}
		if (n < 0) {
			ia_fail(ia, "read: %s", strerror(errno));
			return;
		}
		ia->in.len += (size_t)n;
		ia->in.data[ia->in.len] = '\0';
		rec = attr_rec_new();
		rc = attr_decode(ia->in.data, ia->in.len, &lim, rec, &used,
		    &why);
		if (rc < 0) {
			attr_rec_free(&rec);
			ia_fail(ia, "bad response: %s", why);
			return;
		}
		if (rc == 1) {
			f = attr_at(rec, 0);
			if (f == NULL || strcmp(f->name, "status") != 0 ||
			    attr_get_uint(rec, "status", 0, 255,
			    &status) != 1) {
				attr_rec_free(&rec);
				ia_fail(ia, "bad response: %s",
				    "no status first");
				return;
			}
			/* nothing after the response: the connection is
			 * in step and may serve the next call */
			ia->reusable = used == ia->in.len;
			ia_finish(ia, (int)status, rec);
			attr_rec_free(&rec);
			return;
		}
		attr_rec_free(&rec);
	}
}

static void
ia_send(struct ipc_async *ia)
{
	ssize_t n;

	while (ia->off < buf_len(&ia->out)) {
		n = send(ia->fd, ia->out.data + ia->off,
		    buf_len(&ia->out) - ia->off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			(void)ev_fd_set(ia->ev, ia->fd, EV_WRITE, ia_on_io,
			    ia);
			return;
		}
		if (n < 0) {
			ia_fail(ia, "send: %s", strerror(errno));
			return;
		}
		ia->off += (size_t)n;
	}
	ia->state = IA_RECEIVING;
	if (ev_fd_set(ia->ev, ia->fd, EV_READ, ia_on_io, ia) < 0)
		ia_fail(ia, "ev_fd_set: %s", strerror(errno));
}

static void
ia_try_connect(struct ipc_async *ia)
{
	for (;;) {
		if (connect(ia->fd, (struct sockaddr *)&ia->sun,
		    sizeof(ia->sun)) == 0 || errno == EISCONN) {
			ia->state = IA_SENDING;
			ia_send(ia);
			return;
		}
		if (errno == EINTR)
			continue;
		break;
	}
	if (errno == EINPROGRESS || errno == EALREADY) {
		if (ev_fd_set(ia->ev, ia->fd, EV_WRITE, ia_on_io, ia) < 0)
			ia_fail(ia, "ev_fd_set: %s", strerror(errno));
		return;
	}
	if (errno == EAGAIN) {
		/* backlog full: a Unix socket gives no completion event */
		ia->retry = ev_timer_add(ia->ev, IPC_ASYNC_RETRY_MS,
		    ia_on_retry, ia);
		return;
	}
	(void)snprintf(ia->err, sizeof(ia->err), "connect %.100s: %s",
	    ia->sun.sun_path, strerror(errno));
	ia->state = IA_FAILED;
	ia->retry = ev_timer_add(ia->ev, 0, ia_on_failed, ia);
}

static void
ia_on_retry(struct ev *ev, void *arg)
{
	struct ipc_async *ia = arg;

	(void)ev;
	ia->retry = NULL;
	if (ia->state == IA_SENDING)
		ia_send(ia);	/* a kept connection: no connect(2) */
	else
		ia_try_connect(ia);
}

static void
ia_on_io(struct ev *ev, int fd, int events, void *arg)
{
	struct ipc_async *ia = arg;
	socklen_t elen = sizeof(int);
	int err = 0;

	(void)ev;
	(void)events;
	switch (ia->state) {
	case IA_CONNECTING:
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err != 0) {
			(void)snprintf(ia->err, sizeof(ia->err),
			    "connect %.100s: %s", ia->sun.sun_path,
			    strerror(err));
			ia_finish(ia, -1, NULL);
			return;
		}
		ia->state = IA_SENDING;
		ia_send(ia);
		break;
	case IA_SENDING:
		ia_send(ia);
		break;
	case IA_RECEIVING:
		ia_recv(ia);
		break;
	case IA_FAILED:
		break;
	}
}

struct ipc_async *
ipc_async_call(struct ev *ev, const char *path, const struct buf *req,
    int timeout_ms, ipc_async_cb *cb, void *arg)
{
	struct ipc_async *ia = xcalloc(1, sizeof(*ia));
	struct attr_rec *rec = attr_rec_new();
	const char *why;
	size_t used;

	if (attr_decode(buf_cstr(req), buf_len(req), NULL, rec, &used,
	    &why) != 1 || used != buf_len(req))
		log_panic("ipc_async_call: malformed request");
	attr_rec_free(&rec);
	ia->ev = ev;
	ia->cb = cb;
	ia->arg = arg;
	ia->fd = -1;
	ia->state = IA_CONNECTING;
	buf_init(&ia->out, 0);
	(void)buf_append(&ia->out, buf_cstr(req), buf_len(req));
	buf_init(&ia->in, IPC_MSG_MAX_DEFAULT);
	ia->deadline = ev_timer_add(ev, timeout_ms > 0 ? timeout_ms : 1,
	    ia_on_deadline, ia);
	ia->sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(ia->sun.sun_path)) {
		(void)snprintf(ia->err, sizeof(ia->err), "connect %.100s: %s",
		    path, strerror(ENAMETOOLONG));
		ia->state = IA_FAILED;
		ia->retry = ev_timer_add(ev, 0, ia_on_failed, ia);
		return ia;
	}
	memcpy(ia->sun.sun_path, path, strlen(path) + 1);
	if ((ia->fd = pool_get(ev, path)) >= 0) {
		ia->reused = true;
		ia->state = IA_SENDING;
		ia->retry = ev_timer_add(ev, 0, ia_on_retry, ia);
		return ia;
	}
	ia->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (ia->fd < 0) {
		(void)snprintf(ia->err, sizeof(ia->err), "socket: %s",
		    strerror(errno));
		ia->state = IA_FAILED;
		ia->retry = ev_timer_add(ev, 0, ia_on_failed, ia);
		return ia;
	}
	/* all I/O from the loop: the callback never runs inside the call */
	ia->retry = ev_timer_add(ev, 0, ia_on_retry, ia);
	return ia;
}

void
ipc_async_cancel(struct ipc_async **iap)
{
	if (*iap == NULL)
		return;
	ia_free(*iap);
	*iap = NULL;
}
