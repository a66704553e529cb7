/*
 * fsyncq - run fsync(2) in worker threads so the event loop never waits
 *
 * An event-driven daemon serving many sessions cannot block its loop
 * on the disk.  fsyncq_new(ev, n) starts n worker threads;
 * fsyncq_submit(q, fd, is_data_only, done, arg) queues an fsync (or
 * fdatasync) of fd and returns at once; when the disk is done, done(arg,
 * err) runs ON THE LOOP THREAD (err 0 or an errno).  Several sessions'
 * fsyncs then run concurrently, which the ext4 journal commits together
 * (group commit) instead of one after another.  The fd must stay open
 * until done runs.  Jobs are started in the order submitted; completions
 * come back in the order they finish.
 *
 * fsyncq_free() waits for queued jobs to finish (their callbacks are not
 * called) and stops the threads.  Out of memory is fatal.
 */
#ifndef POSTA_FSYNCQ_H
#define POSTA_FSYNCQ_H

#include <stdbool.h>

struct ev;
struct fsyncq;

typedef void fsyncq_done_cb(void *arg, int err);

struct fsyncq *fsyncq_new(struct ev *, int nthreads);
void	fsyncq_submit(struct fsyncq *, int fd, bool is_data_only,
	    fsyncq_done_cb *, void *arg);
/* fsyncq_pending - jobs submitted whose callback has not run yet */
unsigned fsyncq_pending(const struct fsyncq *);
void	fsyncq_free(struct fsyncq **);

#endif
