/*
 * conn - the lib/ipc wire protocol with qmgr, on the event loop
 *
 * lib/server hands us each accepted connection on private/local; the
 * records are lib/attr records read with attr_decode() under fixed
 * limits, exactly as lib/ipc frames them (see ipc.h):
 *
 *   request=deliver id=ID path=active/ID rcpt_index=N ...
 *   -> status=0 then, per rcpt_index in order,
 *      rcpt_index=N result=sent|deferred|failed dsn=X.Y.Z reason=TEXT
 *   request=ping -> status=0
 *
 * One request of a connection is worked on at a time (by a worker,
 * pool.c); requests pipelined behind it wait in the input buffer, so
 * answers keep their order.  A malformed record gets status=3 and the
 * connection is closed once the answer is out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "ipc.h"
#include "local.h"
#include "log.h"
#include "mem.h"
#include "server.h"
#include "strnum.h"

#define CONN_IN_MAX	(2 * 1024 * 1024)
#define CONN_OUT_MAX	(8 * 1024 * 1024)
#define CONN_READ_CHUNK	(64 * 1024)

struct local_conn {
	struct local_conn *prev, *next;
	struct ev *ev;
	int	 fd;
	struct buf in, out;
	struct attr_rec *rec;
	struct local_job *job;		/* in a worker's hands */
	bool	 is_closing;		/* answer out, then close */
	bool	 is_eof;
};

static struct local_conn *conns;
static size_t nconns;

static const struct attr_limits conn_limits = {
	.max_size = 1024 * 1024,
	.max_count = LOCAL_RCPTS_MAX + 16,
	.max_name = IPC_NAME_MAX,
	.max_value = 4096,
};

static void	conn_on_io(struct ev *, int, int, void *);

static void
conn_close(struct local_conn *c)
{
	if (c->ev != NULL)
		ev_fd_clear(c->ev, c->fd);
	(void)close(c->fd);
	if (c->job != NULL)
		c->job->conn = NULL;	/* the worker's answer goes nowhere */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	nconns--;
	buf_deinit(&c->in);
	buf_deinit(&c->out);
	attr_rec_free(&c->rec);
	if (c->ev != NULL) {		/* at exit the server is gone */
		server_client_done();
		free(c);
		local_stopping_check();
	} else
		free(c);
}

/* conn_flush - write what the socket takes now; -1 if c was closed */
static int
conn_flush(struct local_conn *c)
{
	ssize_t n;

	while (buf_len(&c->out) > 0) {
		n = send(c->fd, buf_cstr(&c->out), buf_len(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		conn_close(c);
		return -1;
	}
	return 0;
}

static void
conn_update(struct local_conn *c)
{
	int events = 0;

	if (!c->is_eof && !c->is_closing && buf_len(&c->in) < CONN_IN_MAX)
		events |= EV_READ;
	if (buf_len(&c->out) > 0)
		events |= EV_WRITE;
	if (ev_fd_set(c->ev, c->fd, events, conn_on_io, c) < 0)
		log_fatal("cannot watch a connection: %s", strerror(errno));
}

static void
conn_respond(struct local_conn *c, int status, const char *reason,
    const struct local_job *j)
{
	size_t i;
	int rc = 0;

	rc |= attr_put_uint(&c->out, "status", (unsigned)status);
	if (reason != NULL && *reason != '\0')
		rc |= attr_put_str(&c->out, "reason", reason);
	for (i = 0; j != NULL && i < j->nrr; i++) {
		static const char *const res[] = {
			[LOCAL_SENT] = "sent",
			[LOCAL_DEFERRED] = "deferred",
			[LOCAL_FAILED] = "failed",
		};
		rc |= attr_put_uint(&c->out, "rcpt_index", j->rr[i].idx);
		rc |= attr_put_str(&c->out, "result", res[j->rr[i].result]);
		rc |= attr_put_str(&c->out, "dsn", j->rr[i].dsn);
		rc |= attr_put_str(&c->out, "reason", j->rr[i].reason);
	}
	rc |= attr_end(&c->out);
	if (rc != 0)
		log_panic("local: answer does not fit the output buffer");
}

static void
conn_error(struct local_conn *c, const char *reason)
{
	log_warn("protocol error from qmgr: %s", reason);
	conn_respond(c, IPC_PROTOERR, reason, NULL);
	c->is_closing = true;
	buf_reset(&c->in);
}

/* conn_path_ok - "DIR/ID" with DIR a queue directory and ID the id */
static int
conn_path_ok(const char *path, const char *id)
{
	const char *slash = strchr(path, '/');
	int d;

	if (slash == NULL || strcmp(slash + 1, id) != 0)
		return 0;
	for (d = 0; d < QUEUE_NDIRS; d++)
		if (d != QUEUE_CORRUPT &&
		    strlen(queue_dir_name(d)) == (size_t)(slash - path) &&
		    strncmp(path, queue_dir_name(d), (size_t)(slash - path)) ==
		    0)
			return 1;
	return 0;
}

/* conn_deliver - check a deliver request and give it to a worker */
static void
conn_deliver(struct local_conn *c)
{
	const struct attr_field *f;
	const char *id = attr_get_str(c->rec, "id");
	const char *path = attr_get_str(c->rec, "path");
	unsigned long long v;
	struct local_job *j;
	size_t i, n = 0;

	if (id == NULL || !queue_id_ok(id)) {
		conn_respond(c, IPC_PERMFAIL, "bad or missing id=", NULL);
		return;
	}
	if (path == NULL || !conn_path_ok(path, id)) {
		conn_respond(c, IPC_PERMFAIL, "bad or missing path=", NULL);
		return;
	}
	for (i = 0; (f = attr_at(c->rec, i)) != NULL; i++)
		if (strcmp(f->name, "rcpt_index") == 0)
			n++;
	if (n == 0 || n > LOCAL_RCPTS_MAX) {
		conn_respond(c, IPC_PERMFAIL, n == 0 ? "no rcpt_index=" :
		    "too many rcpt_index=", NULL);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->rr = xcalloc(n, sizeof(*j->rr));
	for (i = 0; (f = attr_at(c->rec, i)) != NULL; i++) {
		if (strcmp(f->name, "rcpt_index") != 0)
			continue;
		if (strlen(f->value) != f->value_len ||
		    str_to_uint(f->value, 0, QUEUE_RCPT_MAX - 1, &v) < 0) {
			local_job_free(&j);
			conn_respond(c, IPC_PERMFAIL, "bad rcpt_index=", NULL);
			return;
		}
		j->rr[j->nrr++].idx = (size_t)v;
	}
	(void)snprintf(j->id, sizeof(j->id), "%s", id);
	(void)snprintf(j->path, sizeof(j->path), "%s", path);
	j->conn = c;
	c->job = j;
	local_pool_submit(j);
}

static void
conn_dispatch(struct local_conn *c)
{
	const struct attr_field *f = attr_at(c->rec, 0);

	if (f == NULL || strcmp(f->name, "request") != 0 ||
	    strlen(f->value) != f->value_len) {
		conn_error(c, "a request must start with request=");
		return;
	}
	if (strcmp(f->value, "deliver") == 0)
		conn_deliver(c);
	else if (strcmp(f->value, "ping") == 0)
		conn_respond(c, IPC_OK, NULL, NULL);
	else {
		char reason[128];

		(void)snprintf(reason, sizeof(reason),
		    "unknown request \"%.64s\"", f->value);
		conn_respond(c, IPC_PERMFAIL, reason, NULL);
	}
}

/* conn_process - handle buffered requests; -1 if c was closed */
static int
conn_process(struct local_conn *c)
{
	const char *reason;
	size_t used;
	int r;

	while (!c->is_closing && c->job == NULL && buf_len(&c->in) > 0 &&
	    buf_len(&c->out) < CONN_OUT_MAX / 2) {
		r = attr_decode(buf_cstr(&c->in), buf_len(&c->in),
		    &conn_limits, c->rec, &used, &reason);
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
	if (server_is_stopping() && c->job == NULL)
		c->is_closing = true;
	if (buf_len(&c->out) == 0 && c->job == NULL &&
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
	struct local_conn *c = arg;
	ssize_t n;

	(void)ev;
	if ((events & (EV_WRITE | EV_ERROR)) && conn_flush(c) < 0)
		return;
	if ((events & (EV_READ | EV_ERROR)) && !c->is_eof &&
	    buf_len(&c->in) < CONN_IN_MAX) {
		if (buf_reserve(&c->in, CONN_READ_CHUNK) < 0 &&
		    buf_reserve(&c->in, CONN_IN_MAX - buf_len(&c->in)) < 0)
			log_panic("local: input buffer");
		n = recv(fd, c->in.data + c->in.len,
		    c->in.cap - c->in.len - 1 < CONN_IN_MAX - c->in.len ?
		    c->in.cap - c->in.len - 1 : CONN_IN_MAX - c->in.len,
		    MSG_DONTWAIT);
		if (n > 0) {
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
		} else if (n == 0)
			c->is_eof = true;
		else if (errno != EAGAIN && errno != EINTR) {
			conn_close(c);
			return;
		}
	}
	(void)conn_process(c);
}

void
local_conn_new(struct ev *ev, int fd)
{
	struct local_conn *c = xcalloc(1, sizeof(*c));

	c->ev = ev;
	c->fd = fd;
	buf_init(&c->in, CONN_IN_MAX + 1);
	buf_init(&c->out, CONN_OUT_MAX);
	c->rec = attr_rec_new();
	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	nconns++;
	conn_update(c);
}

void
local_conn_job_done(struct local_job *j)
{
	struct local_conn *c = j->conn;

	if (c == NULL) {
		log_info("%s: qmgr went away before the answer", j->id);
		local_job_free(&j);
		return;
	}
	conn_respond(c, j->status, j->status != IPC_OK ? j->reason : NULL,
	    j->status == IPC_OK ? j : NULL);
	c->job = NULL;
	local_job_free(&j);
	if (conn_flush(c) < 0)
		return;
	(void)conn_process(c);
}

void
local_conn_close_idle(void)
{
	struct local_conn *c, *next;

	for (c = conns; c != NULL; c = next) {
		next = c->next;
		if (c->job == NULL && buf_len(&c->out) == 0)
			conn_close(c);
		else
			c->is_closing = true;
	}
}

size_t
local_conn_count(void)
{
	return nconns;
}

/* local_conn_free_all - at exit, after the loop is gone */
void
local_conn_free_all(void)
{
	while (conns != NULL) {
		conns->ev = NULL;
		conn_close(conns);
	}
}
