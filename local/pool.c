/*
 * pool - worker threads that run deliveries off the event loop
 *
 * A delivery blocks: table lookups (LDAP), Maildir writes and their
 * fsyncs.  The loop hands each deliver request to a queue served by
 * local_workers threads, so one process delivers that many messages at
 * once and their fsyncs reach the disk together.  Each thread owns its
 * tables (struct local_ctx).  A finished job goes on the done list and
 * an eventfd wakes the loop, which answers qmgr (local_request_done).
 * Workers block every signal: signals are the loop's (signalfd).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "mem.h"

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct local_job *todo, **todo_tail;
	struct local_job *done, **done_tail;
	pthread_t	*threads;
	unsigned	 nthreads;
	int		 efd;
	int		 quit;
	unsigned	 busy;		/* loop thread only */
	struct ev	*ev;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.efd = -1,
};

void
local_job_free(struct local_job **jp)
{
	if (*jp == NULL)
		return;
	free((*jp)->rr);
	free(*jp);
	*jp = NULL;
}

static void *
pool_worker(void *arg)
{
	struct local_ctx ctx;
	struct local_job *j;
	uint64_t one = 1;

	(void)arg;
	memset(&ctx, 0, sizeof(ctx));
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (pool.todo == NULL && !pool.quit)
			pthread_cond_wait(&pool.cond, &pool.lock);
		if (pool.quit) {
			pthread_mutex_unlock(&pool.lock);
			break;
		}
		j = pool.todo;
		pool.todo = j->next;
		if (pool.todo == NULL)
			pool.todo_tail = &pool.todo;
		pthread_mutex_unlock(&pool.lock);

		local_deliver(&ctx, j);

		pthread_mutex_lock(&pool.lock);
		j->next = NULL;
		*pool.done_tail = j;
		pool.done_tail = &j->next;
		pthread_mutex_unlock(&pool.lock);
		while (write(pool.efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	local_ctx_close(&ctx);
	return NULL;
}

static void
pool_on_done(struct ev *ev, int fd, int events, void *arg)
{
	struct local_job *list, *j;
	uint64_t n;

	(void)ev;
	(void)events;
	(void)arg;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&pool.lock);
	list = pool.done;
	pool.done = NULL;
	pool.done_tail = &pool.done;
	pthread_mutex_unlock(&pool.lock);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		pool.busy--;
		local_request_done(j);
	}
	local_stopping_check();
}

void
local_pool_start(struct ev *ev, unsigned nthreads)
{
	sigset_t all, old;
	unsigned i;
	int err;

	pool.ev = ev;
	pool.todo_tail = &pool.todo;
	pool.done_tail = &pool.done;
	pool.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool.efd < 0)
		log_fatal("eventfd: %s", strerror(errno));
	if (ev_fd_set(ev, pool.efd, EV_READ, pool_on_done, NULL) < 0)
		log_fatal("cannot watch the eventfd: %s", strerror(errno));
	pool.threads = xcalloc(nthreads, sizeof(*pool.threads));
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		err = pthread_create(&pool.threads[i], NULL, pool_worker, NULL);
		if (err != 0)
			log_fatal("pthread_create: %s", strerror(err));
		pool.nthreads++;
	}
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
local_pool_submit(struct local_job *j)
{
	j->next = NULL;
	pool.busy++;
	pthread_mutex_lock(&pool.lock);
	*pool.todo_tail = j;
	pool.todo_tail = &j->next;
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
}

unsigned
local_pool_busy(void)
{
	return pool.busy;
}

/* local_pool_stop - let the workers finish their job, then end them */
void
local_pool_stop(void)
{
	struct local_job *j;
	unsigned i;

	if (pool.threads == NULL)
		return;
	pthread_mutex_lock(&pool.lock);
	pool.quit = 1;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (i = 0; i < pool.nthreads; i++)
		(void)pthread_join(pool.threads[i], NULL);
	free(pool.threads);
	pool.threads = NULL;
	/*
	 * jobs not started or not answered (only when the loop ended
	 * abnormally): qmgr sees the connection end; their ipc requests
	 * went with the loop
	 */
	while ((j = pool.todo) != NULL) {
		pool.todo = j->next;
		local_job_free(&j);
	}
	while ((j = pool.done) != NULL) {
		pool.done = j->next;
		local_job_free(&j);
	}
	/* the loop is gone already (server_main freed it): just close */
	if (pool.efd >= 0) {
		(void)close(pool.efd);
		pool.efd = -1;
	}
}
