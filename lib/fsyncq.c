/*
 * fsyncq - fsync in worker threads, completions on the loop (fsyncq.h)
 *
 * Workers take jobs from a mutex-protected FIFO, run the sync, and put
 * the job on a done list; an eventfd wakes the loop, which runs the
 * callbacks.  Only the job lists are shared between threads; callbacks
 * and everything they touch stay on the loop thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ev.h"
#include "fsyncq.h"
#include "log.h"
#include "mem.h"

#define FSYNCQ_THREADS_MAX	64

struct fsyncq_job {
	int	 fd;
	bool	 data_only;
	int	 err;
	fsyncq_done_cb *done;
	void	*arg;
	struct fsyncq_job *next;
};

struct fsyncq {
	struct ev *ev;
	int	 efd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fsyncq_job *todo_head, *todo_tail;
	struct fsyncq_job *done_head, *done_tail;
	pthread_t th[FSYNCQ_THREADS_MAX];
	int	 nth;
	bool	 stopping;
	unsigned pending;
};

static void *
fsyncq_worker(void *arg)
{
	struct fsyncq *q = arg;
	struct fsyncq_job *j;
	uint64_t one = 1;

	(void)pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->todo_head == NULL && !q->stopping)
			(void)pthread_cond_wait(&q->cond, &q->lock);
		if (q->todo_head == NULL)
			break;
		j = q->todo_head;
		q->todo_head = j->next;
		if (q->todo_head == NULL)
			q->todo_tail = NULL;
		(void)pthread_mutex_unlock(&q->lock);

		j->err = (j->data_only ? fdatasync(j->fd) : fsync(j->fd)) < 0 ?
		    errno : 0;

		(void)pthread_mutex_lock(&q->lock);
		j->next = NULL;
		if (q->done_tail != NULL)
			q->done_tail->next = j;
		else
			q->done_head = j;
		q->done_tail = j;
		/* a full counter still wakes the loop: ignore EAGAIN */
		if (write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_err("fsyncq: eventfd write: %s", strerror(errno));
	}
	(void)pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void
fsyncq_on_done(struct ev *ev, int fd, int events, void *arg)
{
	struct fsyncq *q = arg;
	struct fsyncq_job *list, *j;
	uint64_t n;

	(void)ev;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("fsyncq: eventfd read: %s", strerror(errno));
	(void)pthread_mutex_lock(&q->lock);
	list = q->done_head;
	q->done_head = q->done_tail = NULL;
	(void)pthread_mutex_unlock(&q->lock);
	while ((j = list) != NULL) {
		list = j->next;
		q->pending--;
		j->done(j->arg, j->err);
		free(j);
	}
}

struct fsyncq *
fsyncq_new(struct ev *ev, int nthreads)
{
	struct fsyncq *q = xcalloc(1, sizeof(*q));
	int i;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > FSYNCQ_THREADS_MAX)
		nthreads = FSYNCQ_THREADS_MAX;
	q->ev = ev;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		log_fatal("eventfd: %s", strerror(errno));
	(void)pthread_mutex_init(&q->lock, NULL);
	(void)pthread_cond_init(&q->cond, NULL);
	if (ev_fd_set(ev, q->efd, EV_READ, fsyncq_on_done, q) < 0)
		log_fatal("fsyncq: ev_fd_set: %s", strerror(errno));
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&q->th[i], NULL, fsyncq_worker, q) != 0)
			log_fatal("fsyncq: cannot start a thread");
		q->nth++;
	}
	return q;
}

void
fsyncq_submit(struct fsyncq *q, int fd, bool is_data_only,
    fsyncq_done_cb *done, void *arg)
{
	struct fsyncq_job *j = xcalloc(1, sizeof(*j));

	j->fd = fd;
	j->data_only = is_data_only;
	j->done = done;
	j->arg = arg;
	q->pending++;
	(void)pthread_mutex_lock(&q->lock);
	if (q->todo_tail != NULL)
		q->todo_tail->next = j;
	else
		q->todo_head = j;
	q->todo_tail = j;
	(void)pthread_cond_signal(&q->cond);
	(void)pthread_mutex_unlock(&q->lock);
}

unsigned
fsyncq_pending(const struct fsyncq *q)
{
	return q->pending;
}

void
fsyncq_free(struct fsyncq **qp)
{
	struct fsyncq *q = *qp;
	struct fsyncq_job *j;
	int i;

	if (q == NULL)
		return;
	(void)pthread_mutex_lock(&q->lock);
	q->stopping = true;
	(void)pthread_cond_broadcast(&q->cond);
	(void)pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nth; i++)
		(void)pthread_join(q->th[i], NULL);
	while ((j = q->done_head) != NULL) {
		q->done_head = j->next;
		free(j);
	}
	ev_fd_clear(q->ev, q->efd);
	(void)close(q->efd);
	(void)pthread_mutex_destroy(&q->lock);
	(void)pthread_cond_destroy(&q->cond);
	free(q);
	*qp = NULL;
}
