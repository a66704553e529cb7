/*
 * ev - the event loop every posta daemon runs on
 *
 * One loop per process, epoll underneath.  An iteration reads top to
 * bottom: update the cached clock, run due timers, wait for file
 * descriptors (no longer than the next timer), dispatch them, then run
 * the work queued with ev_later().  Callbacks must not block.
 *
 * File descriptors: ev_fd_set(ev, fd, events, cb, arg) watches fd for
 * EV_READ and/or EV_WRITE (events 0 keeps the callback but waits for
 * nothing); calling it again changes the events or the callback.
 * ev_fd_clear() stops watching; do it before close(fd).  The callback
 * gets the events that are ready (EV_ERROR too for hang-up or error).
 * A callback for an fd cleared earlier in the same iteration is not
 * called.
 *
 * Timers: ev_timer_add() calls cb once after ms milliseconds and returns
 * a handle; ev_timer_cancel(ev, &t) cancels a pending timer and sets
 * t to NULL (a timer that has fired is gone: the callback must not
 * cancel its own handle).  Timers that fall due together run in the
 * order they were added.
 *
 * Signals: ev_signal(ev, signo, cb, arg) blocks signo and delivers it
 * through a signalfd as an ordinary callback.  ev_later(ev, cb, arg)
 * calls cb after the current dispatch: the place to free a session.
 *
 * ev_now() is the cached monotonic clock in milliseconds.  ev_run() runs
 * until ev_stop() or until nothing is watched; it returns 0, or -1 if
 * epoll failed.  Out of memory is fatal.
 */
#ifndef POSTA_EV_H
#define POSTA_EV_H

#include <stdint.h>

#define EV_READ		0x01
#define EV_WRITE	0x02
#define EV_ERROR	0x04

struct ev;
struct ev_timer;

typedef void ev_fd_cb(struct ev *, int fd, int events, void *arg);
typedef void ev_cb(struct ev *, void *arg);
typedef void ev_signal_cb(struct ev *, int signo, void *arg);

struct ev *ev_new(void);
void	ev_free(struct ev **);

int	ev_fd_set(struct ev *, int fd, int events, ev_fd_cb *, void *arg);
void	ev_fd_clear(struct ev *, int fd);

struct ev_timer *ev_timer_add(struct ev *, int64_t ms, ev_cb *, void *arg);
void	ev_timer_cancel(struct ev *, struct ev_timer **);

int	ev_signal(struct ev *, int signo, ev_signal_cb *, void *arg);
void	ev_later(struct ev *, ev_cb *, void *arg);

int64_t	ev_now(struct ev *);
/* ev_clock_ms - the monotonic clock now, not cached */
int64_t	ev_clock_ms(void);

int	ev_run(struct ev *);
void	ev_stop(struct ev *);

#endif
