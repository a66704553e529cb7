/*
 * ipc - request/response over Unix-domain sockets (see ipc.h)
 *
 * Client: a blocking socket used with poll(2) and an absolute deadline;
 * bytes that arrive after one response (pipelining) stay in its input
 * buffer for the next ipc_recv().
 *
 * Server: one struct ipc_conn per accepted socket, non-blocking, driven
 * by lib/ev.  Input is read in bounded chunks into a buffer no larger
 * than one request, attr_decode() takes complete requests off its
 * front, the handler's answer goes to an output buffer that is written
 * when the socket is writable.  What the connection waits for is
 * recomputed by conn_update() after every change, so the rules (no
 * reading while a request is deferred, while output piles up, or after
 * a protocol error) live in one place.  A connection is freed by
 * conn_close(), only at the tail of its own callbacks: nothing touches
 * it afterwards.  The one exception, ipc_server_drain() closing idle
 * connections, skips the connection whose handler is running (srv->
 * in_handler): that one closes itself once its response is out.
 *
 * Draining reuses the protocol-error path: every connection is marked
 * is_closing, which stops reading and closes it once nothing is
 * deferred and its output is written.  The drained callback runs from
 * a zero-delay timer so that it never runs inside conn_close().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "mem.h"

#define IPC_READ_CHUNK		16384
#define IPC_ACCEPT_PER_WAKEUP	16
#define IPC_ACCEPT_PAUSE_MS	1000
#define IPC_REASON_MAX		256

static const struct ipc_limits ipc_limits_default = {
	IPC_MSG_MAX_DEFAULT,
	IPC_ATTRS_MAX_DEFAULT,
	IPC_CONNS_MAX_DEFAULT,
	IPC_IDLE_MS_DEFAULT,
	0,
};

/* ---- shared ---- */

static void
ipc_attr_limits(const struct ipc_limits *lim, struct attr_limits *al)
{
	al->max_size = lim->max_msg;
	al->max_count = lim->max_attrs;
	al->max_name = IPC_NAME_MAX;
	al->max_value = lim->max_value != 0 ? lim->max_value : lim->max_msg;
}

/* ipc_wait - poll fd for events until deadline (-1: none); 0 or -1 */
static int
ipc_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = -1;
		if (deadline >= 0) {
			left = deadline - ev_clock_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int64_t
ipc_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : ev_clock_ms() + timeout_ms;
}

/* ---- client ---- */

struct ipc_client {
	int	 fd;
	int	 is_broken;
	struct buf in;
	struct attr_limits lim;
	struct attr_rec *scratch;	/* to check outgoing requests */
};

struct ipc_client *
ipc_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sun;
	struct ipc_client *cl;
	int64_t deadline = ipc_deadline(timeout_ms);
	socklen_t elen = sizeof(int);
	int fd, err = 0, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* backlog full: a Unix socket gives no completion */
			if (deadline >= 0 && ev_clock_ms() >= deadline) {
				errno = ETIMEDOUT;
				goto fail;
			}
			(void)poll(NULL, 0, 10);
			continue;
		}
		if (errno != EINPROGRESS)
			goto fail;
		if (ipc_wait(fd, POLLOUT, deadline) < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
		break;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->fd = fd;
	buf_init(&cl->in, IPC_MSG_MAX_DEFAULT);
	ipc_attr_limits(&ipc_limits_default, &cl->lim);
	cl->scratch = attr_rec_new();
	return cl;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return NULL;
}

void
ipc_client_free(struct ipc_client **clp)
{
	struct ipc_client *cl = *clp;

	if (cl == NULL)
		return;
	(void)close(cl->fd);
	buf_deinit(&cl->in);
	attr_rec_free(&cl->scratch);
	free(cl);
	*clp = NULL;
}

int
ipc_request(struct buf *b, const char *name)
{
	buf_reset(b);
	return attr_put_str(b, "request", name);
}

static int
ipc_send_until(struct ipc_client *cl, const struct buf *req,
    int64_t deadline)
{
	const char *reason;
	size_t used, off = 0;
	ssize_t n;

	if (cl->is_broken) {
		errno = EPIPE;
		return -1;
	}
	/* one whole, well-formed record: anything else is a caller bug */
	if (attr_decode(buf_cstr(req), buf_len(req), &cl->lim, cl->scratch,
	    &used, &reason) != 1 || used != buf_len(req)) {
		errno = EINVAL;
		return -1;
	}
	while (off < buf_len(req)) {
		n = send(cl->fd, buf_cstr(req) + off, buf_len(req) - off,
		    MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN &&
		    ipc_wait(cl->fd, POLLOUT, deadline) == 0)
			continue;
		if (n < 0 && errno == EPIPE)
			errno = ECONNRESET;
		cl->is_broken = 1;
		return -1;
	}
	return 0;
}

static int
ipc_recv_until(struct ipc_client *cl, struct attr_rec *resp,
    int64_t deadline)
{
	unsigned long long status;
	const struct attr_field *f;
	const char *reason;
	size_t used, room;
	ssize_t n;
	int r;

	if (cl->is_broken) {
		errno = EPIPE;
		return -1;
	}
	for (;;) {
		r = attr_decode(buf_cstr(&cl->in), buf_len(&cl->in), &cl->lim,
		    resp, &used, &reason);
		if (r == 1)
			break;
		if (r < 0) {
			log_warn("ipc: bad response: %s", reason);
			errno = EPROTO;
			goto fail;
		}
		room = cl->in.max - buf_len(&cl->in);
		if (room > IPC_READ_CHUNK)
			room = IPC_READ_CHUNK;
		if (buf_reserve(&cl->in, room) < 0 || room == 0) {
			errno = EMSGSIZE;
			goto fail;
		}
		n = read(cl->fd, cl->in.data + cl->in.len, room);
		if (n > 0) {
			cl->in.len += (size_t)n;
			cl->in.data[cl->in.len] = '\0';
			continue;
		}
		if (n == 0) {
			errno = buf_len(&cl->in) > 0 ? EPROTO : ECONNRESET;
			goto fail;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || ipc_wait(cl->fd, POLLIN, deadline) < 0)
			goto fail;
	}
	buf_consume(&cl->in, used);
	f = attr_at(resp, 0);
	if (f == NULL || strcmp(f->name, "status") != 0 ||
	    attr_get_uint(resp, "status", 0, 255, &status) != 1) {
		log_warn("ipc: response without a good status first");
		errno = EPROTO;
		goto fail;
	}
	return (int)status;
fail:
	cl->is_broken = 1;
	return -1;
}

int
ipc_send(struct ipc_client *cl, const struct buf *req, int timeout_ms)
{
	return ipc_send_until(cl, req, ipc_deadline(timeout_ms));
}

int
ipc_recv(struct ipc_client *cl, struct attr_rec *resp, int timeout_ms)
{
	return ipc_recv_until(cl, resp, ipc_deadline(timeout_ms));
}

int
ipc_call(struct ipc_client *cl, const struct buf *req, struct attr_rec *resp,
    int timeout_ms)
{
	int64_t deadline = ipc_deadline(timeout_ms);

	if (ipc_send_until(cl, req, deadline) < 0)
		return -1;
	return ipc_recv_until(cl, resp, deadline);
}

/* ---- server ---- */

struct ipc_req {
	struct ipc_conn *conn;		/* NULL: orphan */
	struct attr_rec *rec;
	struct buf out;
	char	 reason[IPC_REASON_MAX];
};

struct ipc_conn {
	struct ipc_server *srv;
	struct ipc_conn *prev, *next;
	int	 fd;
	uid_t	 uid;
	pid_t	 pid;
	struct buf in, out;
	struct ipc_req *req;		/* for the next request */
	struct ipc_req *pending;	/* deferred, not answered yet */
	struct ev_timer *idle, *more;
	int64_t	 last;			/* last traffic, ev_now() */
	int	 is_closing;		/* protocol error: flush, close */
	int	 is_eof;		/* the peer sends no more */
};

struct ipc_server {
	struct ev *ev;
	int	 fd;
	const struct ipc_handler *handlers;
	void	*arg;
	struct ipc_limits lim;
	struct attr_limits alim;
	struct ipc_conn *conns;
	size_t	 nconns;
	int	 is_accepting;
	struct ev_timer *resume;
	struct ipc_conn *in_handler;	/* its handler is running */
	int	 is_draining;
	void	(*drained_fn)(void *);
	void	*drained_arg;
	struct ev_timer *drained;	/* drained_fn is due */
	int	 is_drained;		/* drained_fn was called */
};

static void	srv_on_accept(struct ev *, int, int, void *);
static void	srv_check_drained(struct ipc_server *);
static void	conn_on_io(struct ev *, int, int, void *);
static int	conn_process(struct ipc_conn *);

int
ipc_listen(const char *path, mode_t mode)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t omask;
	int fd, probe, r, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			return -1;
		}
		/* a server that still answers is not stale */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -1;
		r = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
		(void)close(probe);
		if (r == 0) {
			errno = EADDRINUSE;
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* nobody may connect before the mode is right */
	omask = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	(void)umask(omask);
	if (r < 0 || chmod(path, mode) < 0 || listen(fd, 128) < 0) {
		saved = errno;
		if (r == 0)
			(void)unlink(path);
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static struct ipc_req *
req_new(struct ipc_conn *c)
{
	struct ipc_req *req = xcalloc(1, sizeof(*req));

	req->conn = c;
	req->rec = attr_rec_new();
	buf_init(&req->out, c->srv->lim.max_msg - IPC_RESP_RESERVE);
	return req;
}

static void
req_free(struct ipc_req **reqp)
{
	struct ipc_req *req = *reqp;

	if (req == NULL)
		return;
	attr_rec_free(&req->rec);
	buf_deinit(&req->out);
	free(req);
	*reqp = NULL;
}

static void
srv_set_accepting(struct ipc_server *srv, int on)
{
	if (srv->is_accepting == on)
		return;
	if (ev_fd_set(srv->ev, srv->fd, on ? EV_READ : 0, srv_on_accept,
	    srv) < 0)
		log_fatal("ipc: cannot watch listening socket: %s",
		    strerror(errno));
	srv->is_accepting = on;
}

static void
conn_close(struct ipc_conn *c)
{
	struct ipc_server *srv = c->srv;

	ev_fd_clear(srv->ev, c->fd);
	(void)close(c->fd);
	ev_timer_cancel(srv->ev, &c->idle);
	ev_timer_cancel(srv->ev, &c->more);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	if (c->pending != NULL)
		c->pending->conn = NULL;	/* its owner frees it */
	req_free(&c->req);
	buf_deinit(&c->in);
	buf_deinit(&c->out);
	free(c);
	if (srv->is_draining)
		srv_check_drained(srv);
	else if (srv->resume == NULL && srv->nconns < srv->lim.max_conns)
		srv_set_accepting(srv, 1);
}

/* conn_update - watch for what the connection can do now */
static void
conn_update(struct ipc_conn *c)
{
	int events = 0;

	if (!c->is_closing && !c->is_eof && c->pending == NULL &&
	    buf_len(&c->out) < IPC_OUT_HIGH && buf_len(&c->in) < c->in.max)
		events |= EV_READ;
	if (buf_len(&c->out) > 0)
		events |= EV_WRITE;
	if (ev_fd_set(c->srv->ev, c->fd, events, conn_on_io, c) < 0)
		log_fatal("ipc: cannot watch connection: %s", strerror(errno));
}

/* conn_respond - queue status, reason and the handler's attributes */
static void
conn_respond(struct ipc_conn *c, struct ipc_req *req, int status)
{
	if (attr_put_uint(&c->out, "status", (unsigned)status) < 0 ||
	    (req->reason[0] != '\0' &&
	    attr_put_str(&c->out, "reason", req->reason) < 0) ||
	    buf_append(&c->out, buf_cstr(&req->out), buf_len(&req->out)) < 0 ||
	    attr_end(&c->out) < 0)
		log_panic("ipc: response does not fit the output buffer");
	buf_reset(&req->out);
	req->reason[0] = '\0';
}

static void
conn_error(struct ipc_conn *c, const char *reason)
{
	log_warn("ipc: protocol error from pid %ld: %s", (long)c->pid,
	    reason);
	buf_reset(&c->req->out);
	(void)snprintf(c->req->reason, sizeof(c->req->reason), "%s", reason);
	conn_respond(c, c->req, IPC_PROTOERR);
	c->is_closing = 1;
	buf_reset(&c->in);
}

/* conn_dispatch - hand one decoded request (in c->req) to its handler */
static void
conn_dispatch(struct ipc_conn *c)
{
	struct ipc_req *req = c->req;
	const struct ipc_handler *h;
	const struct attr_field *f = attr_at(req->rec, 0);
	int status;

	if (f == NULL || strcmp(f->name, "request") != 0 ||
	    memchr(f->value, '\0', f->value_len) != NULL) {
		conn_error(c, "a request must start with request=");
		return;
	}
	for (h = c->srv->handlers; h->name != NULL; h++)
		if (strcmp(h->name, f->value) == 0)
			break;
	if (h->name == NULL) {
		(void)snprintf(req->reason, sizeof(req->reason),
		    "unknown request \"%.64s\"", f->value);
		conn_respond(c, req, IPC_PERMFAIL);
		return;
	}
	c->srv->in_handler = c;
	status = h->fn(req, c->srv->arg);
	c->srv->in_handler = NULL;
	if (status == IPC_DEFER) {
		c->pending = req;
		c->req = req_new(c);
		return;
	}
	if (status < 0 || status > 255)
		log_panic("ipc: handler %s returned %d", h->name, status);
	conn_respond(c, req, status);
}

static void
conn_on_more(struct ev *ev, void *arg)
{
	struct ipc_conn *c = arg;

	c->more = NULL;
	(void)conn_process(c);
}

/*
 * conn_process - handle the requests buffered so far, at most
 * IPC_REQS_PER_WAKEUP of them; -1 if the connection was closed.
 */
static int
conn_process(struct ipc_conn *c)
{
	const char *reason;
	size_t used;
	int n = 0, r;

	while (!c->is_closing && c->pending == NULL &&
	    buf_len(&c->out) < IPC_OUT_HIGH && buf_len(&c->in) > 0) {
		if (n++ == IPC_REQS_PER_WAKEUP) {
			/* let the others run; go on in the next iteration */
			if (c->more == NULL)
				c->more = ev_timer_add(c->srv->ev, 0,
				    conn_on_more, c);
			break;
		}
		r = attr_decode(buf_cstr(&c->in), buf_len(&c->in),
		    &c->srv->alim, c->req->rec, &used, &reason);
		if (r == 0) {
			if (c->is_eof)
				conn_error(c, "truncated request");
			break;
		}
		if (r < 0) {
			conn_error(c, reason);
			break;
		}
		buf_consume(&c->in, used);
		conn_dispatch(c);
	}
	if (buf_len(&c->out) == 0 && c->pending == NULL &&
	    (c->is_closing || (c->is_eof && buf_len(&c->in) == 0))) {
		conn_close(c);
		return -1;
	}
	conn_update(c);
	return 0;
}

static void
conn_on_io(struct ev *ev, int fd, int events, void *arg)
{
	struct ipc_conn *c = arg;
	size_t room;
	ssize_t n;

	/*
	 * hang-up after end of input: the peer is gone, answers are moot;
	 * the same when closing (no reading) with nothing left to write
	 */
	if ((events & EV_ERROR) && (c->is_eof ||
	    (c->is_closing && buf_len(&c->out) == 0))) {
		conn_close(c);
		return;
	}
	if ((events & (EV_WRITE | EV_ERROR)) && buf_len(&c->out) > 0) {
		n = send(fd, buf_cstr(&c->out), buf_len(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			c->last = ev_now(ev);
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c);
			return;
		}
	}
	if ((events & (EV_READ | EV_ERROR)) && !c->is_closing && !c->is_eof) {
		room = c->in.max - buf_len(&c->in);
		if (room > IPC_READ_CHUNK)
			room = IPC_READ_CHUNK;
		if (room > 0 && buf_reserve(&c->in, room) == 0) {
			n = read(fd, c->in.data + c->in.len, room);
			if (n > 0) {
				c->in.len += (size_t)n;
				c->in.data[c->in.len] = '\0';
				c->last = ev_now(ev);
			} else if (n == 0)
				c->is_eof = 1;
			else if (errno != EAGAIN && errno != EINTR) {
				conn_close(c);
				return;
			}
		}
	}
	(void)conn_process(c);
}

static void
conn_on_idle(struct ev *ev, void *arg)
{
	struct ipc_conn *c = arg;
	int64_t left;

	c->idle = NULL;
	left = c->last + c->srv->lim.idle_ms - ev_now(ev);
	if (c->pending != NULL)
		left = c->srv->lim.idle_ms;	/* the peer waits for us */
	if (left > 0) {
		c->idle = ev_timer_add(ev, left, conn_on_idle, c);
		return;
	}
	log_info("ipc: idle timeout, pid %ld", (long)c->pid);
	conn_close(c);
}

static void
srv_on_resume(struct ev *ev, void *arg)
{
	struct ipc_server *srv = arg;

	srv->resume = NULL;
	if (!srv->is_draining && srv->nconns < srv->lim.max_conns)
		srv_set_accepting(srv, 1);
}

static void
srv_on_accept(struct ev *ev, int lfd, int events, void *arg)
{
	struct ipc_server *srv = arg;
	struct ucred cred;
	socklen_t clen;
	struct ipc_conn *c;
	int fd, i;

	for (i = 0; i < IPC_ACCEPT_PER_WAKEUP; i++) {
		if (srv->nconns >= srv->lim.max_conns) {
			srv_set_accepting(srv, 0);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			/* EMFILE and the like: back off, don't spin */
			log_warn("ipc: accept: %s", strerror(errno));
			srv_set_accepting(srv, 0);
			if (srv->resume == NULL)
				srv->resume = ev_timer_add(ev,
				    IPC_ACCEPT_PAUSE_MS, srv_on_resume, srv);
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->srv = srv;
		c->fd = fd;
		c->uid = (uid_t)-1;
		c->pid = -1;
		clen = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
			c->uid = cred.uid;
			c->pid = cred.pid;
		}
		buf_init(&c->in, srv->lim.max_msg);
		/* room for the high-water mark plus one whole response */
		buf_init(&c->out, IPC_OUT_HIGH + srv->lim.max_msg);
		c->req = req_new(c);
		c->last = ev_now(ev);
		c->idle = ev_timer_add(ev, srv->lim.idle_ms, conn_on_idle, c);
		c->next = srv->conns;
		if (c->next != NULL)
			c->next->prev = c;
		srv->conns = c;
		srv->nconns++;
		conn_update(c);
	}
}

struct ipc_server *
ipc_server_new(struct ev *ev, int listen_fd,
    const struct ipc_handler *handlers, void *arg,
    const struct ipc_limits *lim)
{
	struct ipc_server *srv = xcalloc(1, sizeof(*srv));

	srv->ev = ev;
	srv->fd = listen_fd;
	srv->handlers = handlers;
	srv->arg = arg;
	srv->lim = lim != NULL ? *lim : ipc_limits_default;
	if (srv->lim.max_msg < 2 * IPC_RESP_RESERVE)
		log_panic("ipc: max_msg %zu too small", srv->lim.max_msg);
	if (srv->lim.max_conns == 0 || srv->lim.idle_ms <= 0)
		log_panic("ipc: bad limits");
	ipc_attr_limits(&srv->lim, &srv->alim);
	(void)fcntl(listen_fd, F_SETFL,
	    fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	srv_set_accepting(srv, 1);
	return srv;
}

void
ipc_server_free(struct ipc_server **srvp)
{
	struct ipc_server *srv = *srvp;

	if (srv == NULL)
		return;
	ev_timer_cancel(srv->ev, &srv->resume);
	srv->lim.max_conns = 0;		/* conn_close must not resume */
	srv->drained_fn = NULL;		/* nor call back */
	while (srv->conns != NULL)
		conn_close(srv->conns);
	ev_timer_cancel(srv->ev, &srv->drained);
	if (srv->fd >= 0) {
		ev_fd_clear(srv->ev, srv->fd);
		(void)close(srv->fd);
	}
	free(srv);
	*srvp = NULL;
}

size_t
ipc_server_conns(const struct ipc_server *srv)
{
	return srv->nconns;
}

static void
srv_on_drained(struct ev *ev, void *arg)
{
	struct ipc_server *srv = arg;

	srv->drained = NULL;
	srv->is_drained = 1;
	srv->drained_fn(srv->drained_arg);	/* may free srv */
}

/* srv_check_drained - a draining server without connections: call back */
static void
srv_check_drained(struct ipc_server *srv)
{
	if (srv->is_draining && srv->nconns == 0 && srv->drained_fn != NULL &&
	    !srv->is_drained && srv->drained == NULL)
		srv->drained = ev_timer_add(srv->ev, 0, srv_on_drained, srv);
}

void
ipc_server_drain(struct ipc_server *srv)
{
	struct ipc_conn *c, *next;

	if (srv->is_draining)
		return;
	srv->is_draining = 1;
	ev_timer_cancel(srv->ev, &srv->resume);
	ev_fd_clear(srv->ev, srv->fd);
	(void)close(srv->fd);
	srv->fd = -1;
	srv->is_accepting = 0;
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		c->is_closing = 1;
		if (c->pending == NULL && buf_len(&c->out) == 0 &&
		    c != srv->in_handler)
			conn_close(c);
		else
			conn_update(c);
	}
	srv_check_drained(srv);
}

void
ipc_server_on_drained(struct ipc_server *srv, void (*fn)(void *), void *arg)
{
	srv->drained_fn = fn;
	srv->drained_arg = arg;
	srv_check_drained(srv);
}

const struct attr_rec *
ipc_req_attrs(const struct ipc_req *req)
{
	return req->rec;
}

const char *
ipc_req_name(const struct ipc_req *req)
{
	return attr_at(req->rec, 0)->value;
}

struct buf *
ipc_req_out(struct ipc_req *req)
{
	return &req->out;
}

void
ipc_req_reason(struct ipc_req *req, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(req->reason, sizeof(req->reason), fmt, ap);
	va_end(ap);
}

void
ipc_req_peer(const struct ipc_req *req, uid_t *uid_r, pid_t *pid_r)
{
	*uid_r = req->conn != NULL ? req->conn->uid : (uid_t)-1;
	*pid_r = req->conn != NULL ? req->conn->pid : -1;
}

int
ipc_req_is_orphan(const struct ipc_req *req)
{
	return req->conn == NULL;
}

void
ipc_req_done(struct ipc_req **reqp, int status)
{
	struct ipc_req *req = *reqp;
	struct ipc_conn *c;

	if (req == NULL)
		return;
	*reqp = NULL;
	if ((c = req->conn) == NULL) {
		req_free(&req);
		return;
	}
	if (c->pending != req || status < 0 || status > 255)
		log_panic("ipc_req_done: not a deferred request or bad "
		    "status %d", status);
	conn_respond(c, req, status);
	c->pending = NULL;
	req_free(&req);
	/* buffered requests go on from the loop, not from inside here */
	if (buf_len(&c->in) > 0 && c->more == NULL)
		c->more = ev_timer_add(c->srv->ev, 0, conn_on_more, c);
	conn_update(c);
}
