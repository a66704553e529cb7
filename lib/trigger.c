/*
 * trigger - best-effort pipelined requests over one kept connection
 * (see trigger.h)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "ev.h"
#include "log.h"
#include "mem.h"
#include "trigger.h"

struct trigger {
	struct ev *ev;
	char	 path[108];
	int	 fd;
	struct buf out;
	size_t	*lens;		/* byte length of each waiting record: */
	size_t	 lhead, nlens, caplens;	/* lens[lhead .. nlens) */
	size_t	 head_sent;	/* bytes of the first record already sent */
	struct ev_timer *retry;
};

static void trigger_flush(struct trigger *);

/* trigger_sent - n bytes went out: move through the record lengths */
static void
trigger_sent(struct trigger *t, size_t n)
{
	buf_consume(&t->out, n);
	n += t->head_sent;
	while (t->lhead < t->nlens && n >= t->lens[t->lhead])
		n -= t->lens[t->lhead++];
	if (t->lhead == t->nlens)
		t->lhead = t->nlens = 0;
	t->head_sent = n;
}

static void
trigger_close(struct trigger *t)
{
	if (t->fd >= 0) {
		ev_fd_clear(t->ev, t->fd);
		(void)close(t->fd);
		t->fd = -1;
	}
	/* half a record cannot be finished on a new connection: drop it */
	if (t->head_sent > 0) {
		buf_consume(&t->out, t->lens[t->lhead] - t->head_sent);
		t->head_sent = 0;
		if (++t->lhead == t->nlens)
			t->lhead = t->nlens = 0;
	}
}

static void
trigger_on_retry(struct ev *ev, void *arg)
{
	struct trigger *t = arg;

	(void)ev;
	t->retry = NULL;
	trigger_flush(t);
}

static void
trigger_later(struct trigger *t)
{
	if (t->retry == NULL && buf_len(&t->out) > 0)
		t->retry = ev_timer_add(t->ev, TRIGGER_RETRY_MS,
		    trigger_on_retry, t);
}

static void
trigger_on_io(struct ev *ev, int fd, int events, void *arg)
{
	struct trigger *t = arg;
	char tmp[4096];
	ssize_t n;

	(void)ev;
	if (events & EV_READ) {
		/* the answers do not matter; read them so the peer goes on */
		while ((n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			trigger_close(t);
			trigger_later(t);
			return;
		}
	}
	if (events & (EV_WRITE | EV_ERROR))
		trigger_flush(t);
}

/* trigger_connect - 0 connected, -1 not now (retry later) */
static int
trigger_connect(struct trigger *t)
{
	struct sockaddr_un sun;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, t->path, sizeof(t->path));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
	    errno != EINPROGRESS) {
		log_debug("trigger %s: %s", t->path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	t->fd = fd;
	if (ev_fd_set(t->ev, fd, EV_READ, trigger_on_io, t) < 0) {
		(void)close(fd);
		t->fd = -1;
		return -1;
	}
	return 0;
}

static void
trigger_flush(struct trigger *t)
{
	ssize_t w;

	if (buf_len(&t->out) == 0)
		return;
	if (t->fd < 0 && trigger_connect(t) < 0) {
		trigger_later(t);
		return;
	}
	w = send(t->fd, t->out.data, t->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN) {
		trigger_close(t);
		trigger_later(t);
		return;
	}
	if (w > 0)
		trigger_sent(t, (size_t)w);
	(void)ev_fd_set(t->ev, t->fd, EV_READ |
	    (buf_len(&t->out) > 0 ? EV_WRITE : 0), trigger_on_io, t);
}

struct trigger *
trigger_new(struct ev *ev, const char *path)
{
	struct trigger *t = xcalloc(1, sizeof(*t));

	t->ev = ev;
	t->fd = -1;
	if (strlen(path) >= sizeof(t->path))
		log_fatal("trigger: socket path too long: %s", path);
	(void)snprintf(t->path, sizeof(t->path), "%s", path);
	buf_init(&t->out, TRIGGER_OUT_MAX);
	return t;
}

void
trigger_send(struct trigger *t, const char *request, const char *id)
{
	size_t mark = buf_len(&t->out);

	if (attr_put_str(&t->out, "request", request) < 0 ||
	    attr_put_str(&t->out, "id", id) < 0 || attr_end(&t->out) < 0) {
		/* full: drop this one whole; the peer's scan finds the work */
		buf_truncate(&t->out, mark);
		return;
	}
	if (t->nlens == t->caplens && t->lhead > 0) {
		/* reuse the consumed front of the array */
		memmove(t->lens, t->lens + t->lhead, (t->nlens - t->lhead) *
		    sizeof(*t->lens));
		t->nlens -= t->lhead;
		t->lhead = 0;
	}
	if (t->nlens == t->caplens) {
		t->caplens = t->caplens ? t->caplens * 2 : 64;
		t->lens = xreallocarray(t->lens, t->caplens, sizeof(*t->lens));
	}
	t->lens[t->nlens++] = buf_len(&t->out) - mark;
	trigger_flush(t);
}

size_t
trigger_pending(const struct trigger *t)
{
	return buf_len(&t->out);
}

void
trigger_free(struct trigger **tp)
{
	struct trigger *t = *tp;

	if (t == NULL)
		return;
	trigger_close(t);
	ev_timer_cancel(t->ev, &t->retry);
	buf_deinit(&t->out);
	free(t->lens);
	free(t);
	*tp = NULL;
}
