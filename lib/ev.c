/*
 * ev - event loop over epoll, a timer heap and a signalfd (see ev.h)
 *
 * File descriptors index a growable table of watchers.  Timers live in a
 * binary min-heap ordered by (due time, sequence number), each timer
 * knowing its heap slot so cancellation is O(log n).  Signals are
 * blocked and read from one signalfd.  Deferred work is a FIFO run after
 * each dispatch, with a cap per iteration so a callback that queues
 * work forever cannot starve I/O.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "mem.h"

#define EV_MAX_EVENTS		64
#define EV_LATER_PER_LOOP	1024

struct ev_watch {
	ev_fd_cb *cb;
	void	*arg;
	int	 events;	/* EV_READ | EV_WRITE as registered */
	int	 active;
	uint64_t gen;		/* bumped on clear: stale events ignored */
};

struct ev_timer {
	int64_t	 due;
	uint64_t seq;
	size_t	 slot;
	ev_cb	*cb;
	void	*arg;
};

struct ev_later {
	ev_cb	*cb;
	void	*arg;
	struct ev_later *next;
};

struct ev_sig {
	ev_signal_cb *cb;
	void	*arg;
};

struct ev {
	int	 epfd;
	int64_t	 now;
	int	 stopped;
	size_t	 nactive;	/* watched fds (not counting signalfd) */

	struct ev_watch *w;
	size_t	 nw;

	struct ev_timer **heap;
	size_t	 nheap, capheap;
	uint64_t seq;

	struct ev_later *later_head, *later_tail;

	int	 sigfd;
	sigset_t sigmask;
	struct ev_sig sig[65];
};

int64_t
ev_clock_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ev *
ev_new(void)
{
	struct ev *ev = xcalloc(1, sizeof(*ev));

	if ((ev->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		log_fatal("epoll_create1: %s", strerror(errno));
	ev->sigfd = -1;
	sigemptyset(&ev->sigmask);
	ev->now = ev_clock_ms();
	return ev;
}

void
ev_free(struct ev **evp)
{
	struct ev *ev = *evp;
	struct ev_later *l;
	size_t i;

	if (ev == NULL)
		return;
	(void)close(ev->epfd);
	if (ev->sigfd >= 0) {
		(void)close(ev->sigfd);
		(void)sigprocmask(SIG_UNBLOCK, &ev->sigmask, NULL);
	}
	for (i = 0; i < ev->nheap; i++)
		free(ev->heap[i]);
	free(ev->heap);
	while ((l = ev->later_head) != NULL) {
		ev->later_head = l->next;
		free(l);
	}
	free(ev->w);
	free(ev);
	*evp = NULL;
}

int64_t
ev_now(struct ev *ev)
{
	return ev->now;
}

static uint32_t
ev_epoll_events(int events)
{
	return (events & EV_READ ? EPOLLIN : 0) |
	    (events & EV_WRITE ? EPOLLOUT : 0);
}

int
ev_fd_set(struct ev *ev, int fd, int events, ev_fd_cb *cb, void *arg)
{
	struct epoll_event ee;
	struct ev_watch *w;
	size_t n;

	if (fd < 0)
		log_panic("ev_fd_set: bad fd %d", fd);
	if ((size_t)fd >= ev->nw) {
		n = ev->nw ? ev->nw : 64;
		while (n <= (size_t)fd)
			n *= 2;
		ev->w = xreallocarray(ev->w, n, sizeof(*ev->w));
		memset(ev->w + ev->nw, 0, (n - ev->nw) * sizeof(*ev->w));
		ev->nw = n;
	}
	w = &ev->w[fd];
	memset(&ee, 0, sizeof(ee));
	ee.events = ev_epoll_events(events);
	ee.data.fd = fd;
	if (!w->active) {
		if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
			return -1;
		w->active = 1;
		ev->nactive++;
	} else if (w->events != events &&
	    epoll_ctl(ev->epfd, EPOLL_CTL_MOD, fd, &ee) < 0)
		return -1;
	w->events = events;
	w->cb = cb;
	w->arg = arg;
	return 0;
}

void
ev_fd_clear(struct ev *ev, int fd)
{
	struct ev_watch *w;

	if (fd < 0 || (size_t)fd >= ev->nw || !ev->w[fd].active)
		return;
	w = &ev->w[fd];
	(void)epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->active = 0;
	w->cb = NULL;
	w->gen++;
	ev->nactive--;
}

/* ---- timer heap ---- */

static int
ev_timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
ev_heap_swap(struct ev *ev, size_t i, size_t j)
{
	struct ev_timer *t = ev->heap[i];

	ev->heap[i] = ev->heap[j];
	ev->heap[j] = t;
	ev->heap[i]->slot = i;
	ev->heap[j]->slot = j;
}

static void
ev_heap_up(struct ev *ev, size_t i)
{
	while (i > 0 && ev_timer_before(ev->heap[i], ev->heap[(i - 1) / 2])) {
		ev_heap_swap(ev, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
ev_heap_down(struct ev *ev, size_t i)
{
	size_t l, r, m;

	for (;;) {
		l = 2 * i + 1;
		r = l + 1;
		m = i;
		if (l < ev->nheap && ev_timer_before(ev->heap[l], ev->heap[m]))
			m = l;
		if (r < ev->nheap && ev_timer_before(ev->heap[r], ev->heap[m]))
			m = r;
		if (m == i)
			return;
		ev_heap_swap(ev, i, m);
		i = m;
	}
}

static void
ev_heap_remove(struct ev *ev, size_t i)
{
	ev->nheap--;
	if (i != ev->nheap) {
		ev_heap_swap(ev, i, ev->nheap);
		ev_heap_down(ev, i);
		ev_heap_up(ev, i);
	}
}

struct ev_timer *
ev_timer_add(struct ev *ev, int64_t ms, ev_cb *cb, void *arg)
{
	struct ev_timer *t = xmalloc(sizeof(*t));

	if (ms < 0)
		ms = 0;
	t->due = ev_clock_ms() + ms;
	t->seq = ev->seq++;
	t->cb = cb;
	t->arg = arg;
	if (ev->nheap == ev->capheap) {
		ev->capheap = ev->capheap ? ev->capheap * 2 : 16;
		ev->heap = xreallocarray(ev->heap, ev->capheap,
		    sizeof(*ev->heap));
	}
	t->slot = ev->nheap;
	ev->heap[ev->nheap++] = t;
	ev_heap_up(ev, t->slot);
	return t;
}

void
ev_timer_cancel(struct ev *ev, struct ev_timer **tp)
{
	struct ev_timer *t = *tp;

	if (t == NULL)
		return;
	if (t->slot >= ev->nheap || ev->heap[t->slot] != t)
		log_panic("ev_timer_cancel: timer not pending");
	ev_heap_remove(ev, t->slot);
	free(t);
	*tp = NULL;
}

static void
ev_run_timers(struct ev *ev)
{
	struct ev_timer *t;
	ev_cb *cb;
	void *arg;
	uint64_t limit = ev->seq;

	/* timers added by these callbacks wait for the next iteration */
	while (ev->nheap > 0 && ev->heap[0]->due <= ev->now &&
	    ev->heap[0]->seq < limit) {
		t = ev->heap[0];
		ev_heap_remove(ev, 0);
		cb = t->cb;
		arg = t->arg;
		free(t);
		cb(ev, arg);
	}
}

/* ---- signals ---- */

static void
ev_on_signal(struct ev *ev, int fd, int events, void *arg)
{
	struct signalfd_siginfo si;
	ssize_t n;

	(void)events;
	(void)arg;
	while ((n = read(fd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo < 65 && ev->sig[si.ssi_signo].cb != NULL)
			ev->sig[si.ssi_signo].cb(ev, (int)si.ssi_signo,
			    ev->sig[si.ssi_signo].arg);
	}
}

int
ev_signal(struct ev *ev, int signo, ev_signal_cb *cb, void *arg)
{
	int fd;

	if (signo <= 0 || signo >= 65)
		return -1;
	sigaddset(&ev->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &ev->sigmask, NULL) < 0)
		return -1;
	fd = signalfd(ev->sigfd, &ev->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	ev->sig[signo].cb = cb;
	ev->sig[signo].arg = arg;
	if (ev->sigfd < 0) {
		ev->sigfd = fd;
		if (ev_fd_set(ev, fd, EV_READ, ev_on_signal, NULL) < 0)
			return -1;
		ev->nactive--;	/* a signal alone does not keep ev_run going */
	}
	return 0;
}

/* ---- deferred work ---- */

void
ev_later(struct ev *ev, ev_cb *cb, void *arg)
{
	struct ev_later *l = xmalloc(sizeof(*l));

	l->cb = cb;
	l->arg = arg;
	l->next = NULL;
	if (ev->later_tail != NULL)
		ev->later_tail->next = l;
	else
		ev->later_head = l;
	ev->later_tail = l;
}

static void
ev_run_later(struct ev *ev)
{
	struct ev_later *l;
	int n = 0;

	while ((l = ev->later_head) != NULL && n++ < EV_LATER_PER_LOOP) {
		ev->later_head = l->next;
		if (ev->later_head == NULL)
			ev->later_tail = NULL;
		l->cb(ev, l->arg);
		free(l);
	}
}

/* ---- the loop ---- */

void
ev_stop(struct ev *ev)
{
	ev->stopped = 1;
}

int
ev_run(struct ev *ev)
{
	struct epoll_event ee[EV_MAX_EVENTS];
	uint64_t gens[EV_MAX_EVENTS];
	struct ev_watch *w;
	int64_t wait;
	int i, n, fd, got;

	ev->stopped = 0;
	while (!ev->stopped) {
		ev->now = ev_clock_ms();
		ev_run_timers(ev);
		ev_run_later(ev);
		if (ev->stopped)
			break;
		if (ev->nactive == 0 && ev->nheap == 0 &&
		    ev->later_head == NULL)
			break;
		if (ev->later_head != NULL)
			wait = 0;
		else if (ev->nheap > 0) {
			wait = ev->heap[0]->due - ev_clock_ms();
			if (wait < 0)
				wait = 0;
			if (wait > 60000)
				wait = 60000;
		} else
			wait = -1;
		n = epoll_wait(ev->epfd, ee, EV_MAX_EVENTS, (int)wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			return -1;
		}
		ev->now = ev_clock_ms();
		for (i = 0; i < n; i++)
			gens[i] = ev->w[ee[i].data.fd].gen;
		for (i = 0; i < n; i++) {
			fd = ee[i].data.fd;
			w = &ev->w[fd];
			if (!w->active || w->gen != gens[i] || w->cb == NULL)
				continue;
			got = (ee[i].events & EPOLLIN ? EV_READ : 0) |
			    (ee[i].events & EPOLLOUT ? EV_WRITE : 0) |
			    (ee[i].events & (EPOLLERR | EPOLLHUP) ?
			    EV_ERROR : 0);
			/* report hang-up as readable too: read() sees EOF */
			if ((got & EV_ERROR) && (w->events & EV_READ))
				got |= EV_READ;
			w->cb(ev, fd, got, w->arg);
		}
		ev_run_later(ev);
	}
	return 0;
}
