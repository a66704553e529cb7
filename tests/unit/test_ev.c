/*
 * test_ev - the event loop: fd callbacks over a socketpair, timer order
 * and cancellation, signals through the signalfd, ev_later after the
 * dispatch, and no dispatch to an fd cleared in the same iteration
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev.h"

struct rec {
	char	 order[64];
	size_t	 n;
	int	 events;
	int	 calls;
	struct ev_timer *victim;
	int	 fds[2];
	int	 later_seen_in_cb;
};

static void
rec_add(struct rec *r, char c)
{
	if (r->n < sizeof(r->order) - 1)
		r->order[r->n++] = c;
}

static void
on_timeout(struct ev *ev, void *arg)
{
	int *timed_out = arg;

	*timed_out = 1;
	ev_stop(ev);
}

/* ---- file descriptors ---- */

static void
on_readable(struct ev *ev, int fd, int events, void *arg)
{
	struct rec *r = arg;
	char buf[16];
	ssize_t n;

	r->events = events;
	r->calls++;
	n = read(fd, buf, sizeof(buf));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	ev_fd_clear(ev, fd);
}

static void
test_fd_read(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	int sv[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ev_fd_set(ev, sv[0], EV_READ, on_readable, &r), 0);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	/* watched for nothing, then not at all: no effect on the run */
	assert_int_equal(ev_fd_set(ev, sv[1], 0, on_readable, &r), 0);
	ev_fd_clear(ev, sv[1]);
	ev_fd_clear(ev, sv[1]);
	/* runs until the fd is cleared, then returns: nothing left */
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.events & EV_READ, EV_READ);
	assert_int_equal(r.events & EV_WRITE, 0);
	close(sv[0]);
	close(sv[1]);
	ev_free(&ev);
	assert_null(ev);
}

static void
on_writable(struct ev *ev, int fd, int events, void *arg)
{
	struct rec *r = arg;

	r->events = events;
	if (++r->calls == 1) {
		/* switch to reading: the next call must be for input */
		assert_int_equal(ev_fd_set(ev, fd, EV_READ, on_writable, r),
		    0);
		assert_int_equal(write(r->fds[1], "x", 1), 1);
		return;
	}
	ev_fd_clear(ev, fd);
}

static void
test_fd_write_then_read(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	int sv[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r.fds[0] = sv[0];
	r.fds[1] = sv[1];
	assert_int_equal(ev_fd_set(ev, sv[0], EV_WRITE, on_writable, &r), 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.events, EV_READ);
	close(sv[0]);
	close(sv[1]);
	ev_free(&ev);
}

static void
on_hangup(struct ev *ev, int fd, int events, void *arg)
{
	struct rec *r = arg;
	char c;

	r->events = events;
	r->calls++;
	assert_int_equal(read(fd, &c, 1), 0);	/* EOF */
	ev_fd_clear(ev, fd);
}

static void
test_fd_hangup(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	int sv[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(ev_fd_set(ev, sv[0], EV_READ, on_hangup, &r), 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.events & EV_READ);
	close(sv[0]);
	ev_free(&ev);
}

/* both fds are ready in the same iteration; the first clears both */
static void
on_clear_both(struct ev *ev, int fd, int events, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	rec_add(r, fd == r->fds[0] ? 'a' : 'b');
	ev_fd_clear(ev, r->fds[0]);
	ev_fd_clear(ev, r->fds[1]);
}

static void
test_fd_cleared_not_dispatched(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	int a[2], b[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	r.fds[0] = a[0];
	r.fds[1] = b[0];
	assert_int_equal(write(a[1], "1", 1), 1);
	assert_int_equal(write(b[1], "2", 1), 1);
	assert_int_equal(ev_fd_set(ev, a[0], EV_READ, on_clear_both, &r), 0);
	assert_int_equal(ev_fd_set(ev, b[0], EV_READ, on_clear_both, &r), 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(r.calls, 1);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	ev_free(&ev);
}

/*
 * the first callback clears the other fd, closes it and watches a new
 * fd that gets the same number: the stale event must not reach it
 */
static int reuse_new_calls;

static void
on_reused(struct ev *ev, int fd, int events, void *arg)
{
	reuse_new_calls++;
	ev_fd_clear(ev, fd);
}

static void
on_clear_reuse(struct ev *ev, int fd, int events, void *arg)
{
	struct rec *r = arg;
	int other = fd == r->fds[0] ? r->fds[1] : r->fds[0];
	int p[2];

	r->calls++;
	ev_fd_clear(ev, fd);
	ev_fd_clear(ev, other);
	close(other);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(p[0], other);		/* lowest free number */
	r->victim = NULL;
	r->fds[0] = p[0];
	r->fds[1] = p[1];
	assert_int_equal(ev_fd_set(ev, p[0], EV_READ, on_reused, r), 0);
	/* stop after this iteration */
	ev_stop(ev);
}

static void
test_fd_reused_number(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	int a[2], b[2], keep[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	reuse_new_calls = 0;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	r.fds[0] = a[0];
	r.fds[1] = b[0];
	keep[0] = a[0];
	keep[1] = b[0];
	assert_int_equal(write(a[1], "1", 1), 1);
	assert_int_equal(write(b[1], "2", 1), 1);
	assert_int_equal(ev_fd_set(ev, a[0], EV_READ, on_clear_reuse, &r), 0);
	assert_int_equal(ev_fd_set(ev, b[0], EV_READ, on_clear_reuse, &r), 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(reuse_new_calls, 0);
	/* the pipe is empty: its callback has nothing to say later either */
	ev_fd_clear(ev, r.fds[0]);
	close(r.fds[0]);
	close(r.fds[1]);
	close(keep[0] == r.fds[0] ? keep[1] : keep[0]);
	close(a[1]);
	close(b[1]);
	ev_free(&ev);
}

/* ---- timers ---- */

static struct rec *timer_rec;

static void on_t1(struct ev *ev, void *arg) { rec_add(timer_rec, '1'); }
static void on_t2(struct ev *ev, void *arg) { rec_add(timer_rec, '2'); }
static void on_t3(struct ev *ev, void *arg) { rec_add(timer_rec, '3'); }
static void on_tx(struct ev *ev, void *arg) { rec_add(timer_rec, 'X'); }

static void
on_t_cancel(struct ev *ev, void *arg)
{
	rec_add(timer_rec, 'c');
	ev_timer_cancel(ev, &timer_rec->victim);
	assert_null(timer_rec->victim);
}

static void
test_timers_order(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	struct ev_timer *t;
	int64_t start;

	(void)state;
	memset(&r, 0, sizeof(r));
	timer_rec = &r;
	start = ev_clock_ms();
	ev_timer_add(ev, 60, on_t3, NULL);
	ev_timer_add(ev, 20, on_t1, NULL);
	ev_timer_add(ev, 40, on_t2, NULL);
	/* due together: in the order they were added */
	ev_timer_add(ev, 0, on_t1, NULL);
	ev_timer_add(ev, 0, on_t2, NULL);
	ev_timer_add(ev, -5, on_t3, NULL);	/* negative: now */
	t = ev_timer_add(ev, 30, on_tx, NULL);
	ev_timer_cancel(ev, &t);
	assert_null(t);
	ev_timer_cancel(ev, &t);		/* NULL: nothing */
	/* a timer cancelled by an earlier one's callback */
	ev_timer_add(ev, 45, on_t_cancel, NULL);
	r.victim = ev_timer_add(ev, 50, on_tx, NULL);
	assert_int_equal(ev_run(ev), 0);	/* returns: nothing left */
	r.order[r.n] = '\0';
	assert_string_equal(r.order, "12312c3");
	assert_true(ev_clock_ms() - start >= 60);
	assert_true(ev_now(ev) >= start + 60);
	ev_free(&ev);
}

static void
on_t_readd(struct ev *ev, void *arg)
{
	int *count = arg;

	/* a 0 ms timer added by a timer runs in a later iteration */
	if (++*count < 5)
		ev_timer_add(ev, 0, on_t_readd, count);
}

static void
test_timer_from_timer(void **state)
{
	struct ev *ev = ev_new();
	int count = 0;

	(void)state;
	ev_timer_add(ev, 0, on_t_readd, &count);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(count, 5);
	ev_free(&ev);
}

static void
test_free_with_pending(void **state)
{
	struct ev *ev = ev_new();

	(void)state;
	/* pending timers and later work are freed with the loop */
	ev_timer_add(ev, 1000, on_t1, NULL);
	ev_later(ev, on_t1, NULL);
	ev_free(&ev);
	assert_null(ev);
	ev_free(&ev);
}

/* ---- signals ---- */

static void
on_signal(struct ev *ev, int signo, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	r->events = signo;
	ev_stop(ev);
}

static void
test_signal(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	struct ev_timer *t;
	int timed_out = 0;
	sigset_t cur;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(ev_signal(ev, 0, on_signal, &r), -1);
	assert_int_equal(ev_signal(ev, 65, on_signal, &r), -1);
	assert_int_equal(ev_signal(ev, SIGUSR1, on_signal, &r), 0);
	assert_int_equal(ev_signal(ev, SIGUSR2, on_signal, &r), 0);
	t = ev_timer_add(ev, 3000, on_timeout, &timed_out);
	assert_int_equal(kill(getpid(), SIGUSR2), 0);	/* blocked: queued */
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(timed_out, 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.events, SIGUSR2);
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.events, SIGUSR1);
	ev_timer_cancel(ev, &t);
	/* a signal alone does not keep the loop running */
	assert_int_equal(ev_run(ev), 0);
	ev_free(&ev);
	/* the loop unblocks what it blocked */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	assert_false(sigismember(&cur, SIGUSR1));
	assert_false(sigismember(&cur, SIGUSR2));
}

/* ---- ev_later ---- */

static void
on_later(struct ev *ev, void *arg)
{
	struct rec *r = arg;

	rec_add(r, 'L');
}

static void
on_read_then_stop(struct ev *ev, int fd, int events, void *arg)
{
	struct rec *r = arg;
	char c;

	while (read(fd, &c, 1) == 1)
		rec_add(r, c);
	ev_later(ev, on_later, r);
	/* not run inside the callback */
	r->later_seen_in_cb = r->order[r->n - 1] == 'L';
	ev_fd_clear(ev, fd);
}

static void
test_later_order(void **state)
{
	struct ev *ev = ev_new();
	struct rec r;
	int sv[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	assert_int_equal(write(sv[1], "xy", 2), 2);
	ev_later(ev, on_later, &r);
	assert_int_equal(ev_fd_set(ev, sv[0], EV_READ, on_read_then_stop, &r),
	    0);
	assert_int_equal(ev_run(ev), 0);
	r.order[r.n] = '\0';
	/* early later work, then the fd, then what the fd queued */
	assert_string_equal(r.order, "LxyL");
	assert_int_equal(r.later_seen_in_cb, 0);
	close(sv[0]);
	close(sv[1]);
	ev_free(&ev);
}

static void
test_clock(void **state)
{
	struct ev *ev = ev_new();
	int64_t a, b;

	(void)state;
	a = ev_clock_ms();
	usleep(20000);
	b = ev_clock_ms();
	assert_true(b - a >= 19);
	assert_true(b - a < 2000);
	/* ev_now is cached: it does not move on its own */
	a = ev_now(ev);
	usleep(15000);
	assert_int_equal(ev_now(ev), a);
	ev_free(&ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_read),
		cmocka_unit_test(test_fd_write_then_read),
		cmocka_unit_test(test_fd_hangup),
		cmocka_unit_test(test_fd_cleared_not_dispatched),
		cmocka_unit_test(test_fd_reused_number),
		cmocka_unit_test(test_timers_order),
		cmocka_unit_test(test_timer_from_timer),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_signal),
		cmocka_unit_test(test_later_order),
		cmocka_unit_test(test_clock),
	};

	return cmocka_run_group_tests_name("ev", tests, NULL, NULL);
}
