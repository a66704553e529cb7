/*
 * test_trigger - pipelined best-effort requests over one kept connection:
 * all arrive in order, a service that is down gets them when it comes
 * back, a broken connection is replaced, a full buffer drops whole
 * records only
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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
#include "trigger.h"

struct srv {
	int	 lfd;
	int	 cfd;
	struct buf in;
	int	 got;		/* records decoded */
	int	 want;
	int	 accepts;
	int	 close_after;	/* close the connection after this many */
	char	 last_id[32];
	int	 in_order;
};

static char path[108];

static int
srv_listen(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static void
srv_on_data(struct ev *ev, int fd, int events, void *arg)
{
	struct srv *s = arg;
	struct attr_rec *rec = attr_rec_new();
	const char *why, *id;
	char tmp[4096];
	size_t used;
	ssize_t n;

	(void)events;
	while ((n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0)
		(void)buf_append(&s->in, tmp, (size_t)n);
	while (attr_decode(s->in.data, s->in.len, NULL, rec, &used,
	    &why) == 1) {
		buf_consume(&s->in, used);
		id = attr_get_str(rec, "id");
		assert_non_null(id);
		assert_string_equal(attr_get_str(rec, "request"), "new");
		if (s->last_id[0] != '\0' && atoi(id) <= atoi(s->last_id))
			s->in_order = 0;
		snprintf(s->last_id, sizeof(s->last_id), "%s", id);
		s->got++;
		/* answer like an ipc server: status=0 */
		(void)send(fd, "8:status=0,0:,", 14, MSG_NOSIGNAL);
		if (s->close_after > 0 && s->got == s->close_after) {
			ev_fd_clear(ev, fd);
			close(fd);
			s->cfd = -1;
			buf_reset(&s->in);
			break;
		}
	}
	attr_rec_free(&rec);
	if (n == 0 && s->cfd == fd) {
		ev_fd_clear(ev, fd);
		close(fd);
		s->cfd = -1;
	}
	if (s->got >= s->want)
		ev_stop(ev);
}

static void
srv_on_accept(struct ev *ev, int fd, int events, void *arg)
{
	struct srv *s = arg;
	int c;

	(void)events;
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		s->accepts++;
		s->cfd = c;
		ev_fd_set(ev, c, EV_READ, srv_on_data, s);
	}
}

/* on_timeout - stop the loop; the fired timer's handle is cleared */
static void
on_timeout(struct ev *ev, void *arg)
{
	*(struct ev_timer **)arg = NULL;
	ev_stop(ev);
}

static void
srv_start(struct ev *ev, struct srv *s, int want)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->in, 0);
	s->cfd = -1;
	s->want = want;
	s->in_order = 1;
	s->lfd = srv_listen();
	ev_fd_set(ev, s->lfd, EV_READ, srv_on_accept, s);
}

static void
srv_stop(struct ev *ev, struct srv *s)
{
	if (s->cfd >= 0) {
		ev_fd_clear(ev, s->cfd);
		close(s->cfd);
	}
	ev_fd_clear(ev, s->lfd);
	close(s->lfd);
	buf_deinit(&s->in);
	unlink(path);
}

static void
send_many(struct trigger *t, int from, int n)
{
	char id[16];
	int i;

	for (i = from; i < from + n; i++) {
		snprintf(id, sizeof(id), "%d", i);
		trigger_send(t, "new", id);
	}
}

static void
test_many_in_order(void **state)
{
	struct ev *ev = ev_new();
	struct trigger *t;
	struct srv s;
	struct ev_timer *tm;

	(void)state;
	srv_start(ev, &s, 5000);
	t = trigger_new(ev, path);
	send_many(t, 1, 5000);
	tm = ev_timer_add(ev, 5000, on_timeout, &tm);
	ev_run(ev);
	ev_timer_cancel(ev, &tm);
	assert_int_equal(s.got, 5000);
	assert_true(s.in_order);
	assert_int_equal(s.accepts, 1);		/* one connection for all */
	assert_int_equal(trigger_pending(t), 0);
	trigger_free(&t);
	srv_stop(ev, &s);
	ev_free(&ev);
}

static void
test_service_down_then_up(void **state)
{
	struct ev *ev = ev_new();
	struct trigger *t;
	struct srv s;
	struct ev_timer *tm;

	(void)state;
	unlink(path);
	t = trigger_new(ev, path);
	send_many(t, 1, 10);		/* nobody listens */
	assert_true(trigger_pending(t) > 0);
	srv_start(ev, &s, 10);
	tm = ev_timer_add(ev, 3000, on_timeout, &tm);
	ev_run(ev);			/* the retry timer connects */
	ev_timer_cancel(ev, &tm);
	assert_int_equal(s.got, 10);
	assert_true(s.in_order);
	trigger_free(&t);
	srv_stop(ev, &s);
	ev_free(&ev);
}

static void
test_reconnect(void **state)
{
	struct ev *ev = ev_new();
	struct trigger *t;
	struct srv s;
	struct ev_timer *tm;

	(void)state;
	srv_start(ev, &s, 3);
	s.close_after = 3;
	t = trigger_new(ev, path);
	send_many(t, 1, 3);
	tm = ev_timer_add(ev, 3000, on_timeout, &tm);
	ev_run(ev);
	ev_timer_cancel(ev, &tm);
	assert_int_equal(s.got, 3);
	/* the server hung up; the next request needs a new connection */
	s.want = 6;
	s.close_after = 0;
	tm = ev_timer_add(ev, 100, on_timeout, &tm);
	ev_run(ev);		/* let the trigger see the hang-up */
	ev_timer_cancel(ev, &tm);
	send_many(t, 4, 3);
	tm = ev_timer_add(ev, 3000, on_timeout, &tm);
	ev_run(ev);
	ev_timer_cancel(ev, &tm);
	assert_int_equal(s.got, 6);
	assert_int_equal(s.accepts, 2);
	trigger_free(&t);
	srv_stop(ev, &s);
	ev_free(&ev);
}

static void
test_full_drops_whole_records(void **state)
{
	struct ev *ev = ev_new();
	struct trigger *t;
	size_t before;

	(void)state;
	unlink(path);
	t = trigger_new(ev, path);
	send_many(t, 1, 100000);	/* far more than TRIGGER_OUT_MAX */
	assert_true(trigger_pending(t) <= TRIGGER_OUT_MAX);
	before = trigger_pending(t);
	send_many(t, 100001, 1);
	assert_int_equal(trigger_pending(t), before);
	trigger_free(&t);
	assert_null(t);
	ev_free(&ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_in_order),
		cmocka_unit_test(test_service_down_then_up),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_full_drops_whole_records),
	};

	snprintf(path, sizeof(path), "/tmp/test_trigger.%d", (int)getpid());
	return cmocka_run_group_tests_name("trigger", tests, NULL, NULL);
}
