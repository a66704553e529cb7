/*
 * test_fsyncq - fsyncs run in workers and complete on the loop thread
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ev.h"
#include "fsyncq.h"

#define NFILES	40

struct job {
	int	fd;
	int	err;
	int	called;
	pthread_t thread;
	struct ev *ev;
	int	*left;
};

static void
on_done(void *arg, int err)
{
	struct job *j = arg;

	j->err = err;
	j->called++;
	j->thread = pthread_self();
	if (--*j->left == 0)
		ev_stop(j->ev);
}

static void
test_many(void **state)
{
	struct ev *ev = ev_new();
	struct fsyncq *q = fsyncq_new(ev, 4);
	struct job jobs[NFILES + 1];
	char dir[] = "/tmp/test_fsyncq.XXXXXX", path[64];
	int i, left = NFILES + 1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%d", dir, i);
		jobs[i].fd = open(path, O_WRONLY | O_CREAT, 0600);
		assert_true(jobs[i].fd >= 0);
		assert_int_equal(write(jobs[i].fd, "data", 4), 4);
	}
	/* a bad descriptor reports its errno, on the loop as well */
	jobs[NFILES].fd = 999;
	for (i = 0; i <= NFILES; i++) {
		jobs[i].called = 0;
		jobs[i].err = -1;
		jobs[i].ev = ev;
		jobs[i].left = &left;
		fsyncq_submit(q, jobs[i].fd, i % 2 == 0, on_done, &jobs[i]);
	}
	assert_int_equal(fsyncq_pending(q), NFILES + 1);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(left, 0);
	assert_int_equal(fsyncq_pending(q), 0);
	for (i = 0; i < NFILES; i++) {
		assert_int_equal(jobs[i].called, 1);
		assert_int_equal(jobs[i].err, 0);
		assert_true(pthread_equal(jobs[i].thread, pthread_self()));
		close(jobs[i].fd);
		snprintf(path, sizeof(path), "%s/%d", dir, i);
		unlink(path);
	}
	assert_int_equal(jobs[NFILES].called, 1);
	assert_int_equal(jobs[NFILES].err, EBADF);
	rmdir(dir);
	fsyncq_free(&q);
	assert_null(q);
	ev_free(&ev);
}

static void
test_free_with_work(void **state)
{
	struct ev *ev = ev_new();
	struct fsyncq *q = fsyncq_new(ev, 1);
	struct job j = { .fd = 1 };
	int left = 1;

	(void)state;
	j.ev = ev;
	j.left = &left;
	/* freed before the loop ran: the callback is never called */
	fsyncq_submit(q, open("/dev/null", O_WRONLY), false, on_done, &j);
	fsyncq_free(&q);
	assert_int_equal(j.called, 0);
	ev_free(&ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_free_with_work),
	};

	return cmocka_run_group_tests_name("fsyncq", tests, NULL, NULL);
}
