/*
 * message - one message's round through qmgr
 *
 * Activation takes a file from the ready list: rename to active/ (the
 * mark that qmgr owns it; after a crash active/ is picked up first),
 * queue_read(); a corrupt file goes to corrupt/ with a log line and the
 * queue goes on.  Every recipient not final yet is resolved to a
 * transport; the built-in ones (discard, error, unavailable) are
 * answered at once, the others are grouped into jobs, one per
 * transport, destination and at most the transport's recipient limit,
 * and handed to the scheduler.  When the last job is done the round
 * ends: all final -> notices, then unlink; else deferred/ with the
 * next try as mtime (or hold/, or incoming/ on request).
 *
 * Every outcome is appended to the file with queue_status_append()
 * (fdatasync) before anything depends on it (invariant 2).  Should
 * that fail, the message is deferred as it is: a delivery may repeat,
 * nothing is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "mem.h"
#include "qmgr.h"

static void	msg_finish(struct qmsg *);

int
msg_move(const char *id, enum queue_dir from, enum queue_dir to)
{
	char a[64], b[64];

	(void)snprintf(a, sizeof(a), "%s/%.12s", queue_dir_name(from), id);
	(void)snprintf(b, sizeof(b), "%s/%.12s", queue_dir_name(to), id);
	return rename(a, b);
}

static double
msg_delay(const struct queue_env *env)
{
	struct timespec ts;
	double d;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	d = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 -
	    (double)env->arrival;
	return d < 0 ? 0 : d;
}

void
msg_log_rcpt(const struct queue_env *env, size_t idx, const char *relay,
    const char *status, const char *dsn, const char *reason)
{
	double d = msg_delay(env);

	log_info("%s: to=<%s>, relay=%s, delay=%.*f, dsn=%s, status=%s (%s)",
	    env->id, env->rcpt[idx].addr, relay, d < 10 ? 2 : 0, d, dsn,
	    status, reason != NULL ? reason : "");
}

int
msg_record(struct qmsg *m, size_t idx, enum queue_rstatus st,
    const char *dsn, const char *reason, const char *relay, bool do_log)
{
	struct queue_env *env = m->env;
	int64_t now = (int64_t)time(NULL), next = 0, life;
	char dsn5[12];

	if (st == QUEUE_R_DEFERRED) {
		life = env->sender[0] == '\0' ? qm.conf.bounce_lifetime :
		    qm.conf.queue_lifetime;
		if (backoff_is_expired(env->arrival, now, life)) {
			/* too old: the last temporary reason becomes final */
			(void)snprintf(dsn5, sizeof(dsn5), "%s", dsn);
			if (dsn5[0] == '4')
				dsn5[0] = '5';
			else if (dsn5[0] != '5')
				(void)snprintf(dsn5, sizeof(dsn5), "5.4.7");
			if (queue_status_append(m->fd, env, idx,
			    QUEUE_R_FAILED, dsn5, reason, 0) < 0)
				goto fail;
			log_info("%s: to=<%s>, relay=%s, delay=%.0f, dsn=%s, "
			    "status=expired, returned to sender (%s)",
			    env->id, env->rcpt[idx].addr, relay,
			    msg_delay(env), dsn5, reason);
			return 0;
		}
		next = now + backoff_delay(env->arrival, now,
		    qm.conf.min_backoff, qm.conf.max_backoff);
	}
	if (st == QUEUE_R_SENT) {
		/*
		 * The delivery itself is durable already (the agent fsynced
		 * the mailbox before it answered), so "sent" is written to
		 * the queue file only if the file stays (msg_flush_sent):
		 * a message whose recipients are all delivered is simply
		 * unlinked.  A crash before that unlink repeats a delivery,
		 * which invariant 1 allows, and saves an fdatasync on the
		 * loop per message.
		 */
		if (m->sent_unrecorded == NULL)
			m->sent_unrecorded = xcalloc(env->nrcpt,
			    sizeof(*m->sent_unrecorded));
		if (env->rcpt[idx].status != QUEUE_R_SENT &&
		    env->rcpt[idx].status != QUEUE_R_FAILED) {
			env->rcpt[idx].status = QUEUE_R_SENT;
			(void)snprintf(env->rcpt[idx].dsn,
			    sizeof(env->rcpt[idx].dsn), "%s", dsn);
			queue_env_set(&env->rcpt[idx].reason, reason);
			env->rcpt[idx].time = now;
			m->sent_unrecorded[idx] = true;
		}
	} else if (queue_status_append(m->fd, env, idx, st, dsn, reason,
	    next) < 0)
		goto fail;
	if (do_log)
		msg_log_rcpt(env, idx, relay, st == QUEUE_R_SENT ? "sent" :
		    st == QUEUE_R_FAILED ? "bounced" : "deferred", dsn,
		    reason);
	return 0;
fail:
	log_err("%s: cannot record the status of <%s>: %s", env->id,
	    env->rcpt[idx].addr, strerror(errno));
	m->want_retry = true;
	return -1;
}

/* ---- activation ---- */

static void
msg_free(struct qmsg **mp)
{
	struct qmsg *m = *mp;

	if (m->fd >= 0)
		(void)close(m->fd);
	queue_env_free(&m->env);
	free(m->sent_unrecorded);
	TAILQ_REMOVE(&qm.active, m, link);
	qm.nactive--;
	free(m);
	*mp = NULL;
	qmgr_pump();
}

struct split_item {
	size_t	 idx;
	size_t	 tpi;
	char	 dest[RESOLVE_NEXTHOP_MAX + 1];
	char	 nexthop[RESOLVE_NEXTHOP_MAX + 1];
};

static int
split_cmp(const void *a, const void *b)
{
	const struct split_item *x = a, *y = b;
	int c;

	if (x->tpi != y->tpi)
		return x->tpi < y->tpi ? -1 : 1;
	if ((c = strcmp(x->dest, y->dest)) != 0)
		return c;
	if ((c = strcmp(x->nexthop, y->nexthop)) != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* split_error_text - the error transport's "X.Y.Z text" or text */
static void
split_error(struct qmsg *m, size_t idx, const char *nexthop)
{
	char dsn[12] = "5.0.0";
	const char *text = nexthop;
	size_t n = strspn(nexthop, "0123456789.");

	if (n >= 5 && n < sizeof(dsn) && nexthop[0] == '5' &&
	    nexthop[1] == '.' && (nexthop[n] == ' ' || nexthop[n] == '\0')) {
		memcpy(dsn, nexthop, n);
		dsn[n] = '\0';
		text = nexthop + n;
		while (*text == ' ')
			text++;
	}
	if (*text == '\0')
		text = "delivery refused by the error transport";
	(void)msg_record(m, idx, QUEUE_R_FAILED, dsn, text, "none", true);
}

/* msg_split - resolve each recipient; answer built-ins; make jobs */
static void
msg_split(struct qmsg *m)
{
	struct queue_env *env = m->env;
	struct split_item *it = xcalloc(env->nrcpt, sizeof(*it));
	struct resolve_result rr;
	const struct qtransport *tp;
	struct qjob *job = NULL;
	struct reply r;
	char text[RESOLVE_TRANSPORT_MAX + 64];
	size_t i, n = 0, tpi;

	for (i = 0; i < env->nrcpt; i++) {
		if (env->rcpt[i].status == QUEUE_R_SENT ||
		    env->rcpt[i].status == QUEUE_R_FAILED)
			continue;
		if (resolve_addr(qm.res, env->rcpt[i].addr, &rr, &r) < 0) {
			(void)msg_record(m, i, r.code >= 500 ?
			    QUEUE_R_FAILED : QUEUE_R_DEFERRED, r.dsn, r.text,
			    "none", true);
			continue;
		}
		if ((tp = deliver_find(rr.transport, &tpi)) == NULL) {
			(void)snprintf(text, sizeof(text), "mail transport "
			    "unavailable: unknown transport %s",
			    rr.transport);
			(void)msg_record(m, i, QUEUE_R_DEFERRED, "4.3.5", text,
			    "none", true);
			continue;
		}
		switch (tp->kind) {
		case QT_DISCARD:
			(void)msg_record(m, i, QUEUE_R_SENT, "2.0.0",
			    rr.nexthop[0] != '\0' ? rr.nexthop : "discarded",
			    "none", true);
			continue;
		case QT_ERROR:
			split_error(m, i, rr.nexthop);
			continue;
		case QT_SERVICE:
			break;
		}
		it[n].idx = i;
		it[n].tpi = tpi;
		(void)snprintf(it[n].dest, sizeof(it[n].dest), "%s", rr.dest);
		(void)snprintf(it[n].nexthop, sizeof(it[n].nexthop), "%s",
		    rr.nexthop);
		n++;
	}
	if (n > 1)
		qsort(it, n, sizeof(*it), split_cmp);
	for (i = 0; i < n; i++) {
		if (job == NULL || job->tpi != it[i].tpi ||
		    strcmp(job->dest, it[i].dest) != 0 ||
		    strcmp(job->nexthop, it[i].nexthop) != 0 ||
		    job->nidx >= qm.tp_rcpt_limit[it[i].tpi]) {
			if (job != NULL)
				sched_add(job);
			job = xcalloc(1, sizeof(*job));
			job->msg = m;
			job->tpi = it[i].tpi;
			job->tp = &qtransports[it[i].tpi];
			memcpy(job->dest, it[i].dest, sizeof(job->dest));
			memcpy(job->nexthop, it[i].nexthop,
			    sizeof(job->nexthop));
			m->jobs_left++;
		}
		if (job->nidx == job->capidx) {
			job->capidx = job->capidx ? job->capidx * 2 : 8;
			job->idx = xreallocarray(job->idx, job->capidx,
			    sizeof(*job->idx));
		}
		job->idx[job->nidx++] = it[i].idx;
	}
	if (job != NULL)
		sched_add(job);
	free(it);
}

static void
msg_activate(struct qent *e)
{
	struct qmsg *m;
	const char *why;
	char path[64];
	bool is_corrupt;
	size_t i;
	int rc;

	if (e->dir != QUEUE_ACTIVE &&
	    msg_move(e->id, e->dir, QUEUE_ACTIVE) < 0) {
		if (errno != ENOENT)
			log_warn("%s: cannot move %s/%s to active/: %s",
			    e->id, queue_dir_name(e->dir), e->id,
			    strerror(errno));
		index_del(e);	/* gone, or a later scan finds it again */
		return;
	}
	e->dir = QUEUE_ACTIVE;
	m = xcalloc(1, sizeof(*m));
	m->qe = e;
	(void)snprintf(path, sizeof(path), "active/%s", e->id);
	m->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	m->env = queue_env_new();
	TAILQ_INSERT_TAIL(&qm.active, m, link);
	qm.nactive++;
	if (m->fd < 0) {
		log_warn("%s: cannot open %s: %s", e->id, path,
		    strerror(errno));
		index_del(e);
		msg_free(&m);
		return;
	}
	rc = queue_read(m->fd, m->env, &why, &is_corrupt);
	if (rc == 0 && strcmp(m->env->id, e->id) != 0) {
		rc = -1;
		why = "queue ID does not match the file name";
		is_corrupt = true;
	}
	if (rc < 0 && is_corrupt) {
		log_warn("%s: corrupt queue file: %s: moved to corrupt/",
		    e->id, why);
		if (msg_move(e->id, QUEUE_ACTIVE, QUEUE_CORRUPT) < 0)
			log_err("%s: cannot move to corrupt/: %s", e->id,
			    strerror(errno));
		index_del(e);
		msg_free(&m);
		return;
	}
	if (rc < 0) {
		/* an I/O error: leave it in active/ for a later scan */
		log_warn("%s: cannot read queue file: %s", e->id, why);
		index_del(e);
		msg_free(&m);
		return;
	}
	if (m->env->held) {
		if (msg_move(e->id, QUEUE_ACTIVE, QUEUE_HOLD) == 0)
			log_info("%s: placed on hold", e->id);
		index_del(e);
		msg_free(&m);
		return;
	}
	index_set_active(e, m);
	for (i = 0; i < m->env->nrcpt; i++)
		if (m->env->rcpt[i].time > m->last_attempt)
			m->last_attempt = m->env->rcpt[i].time;
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)",
	    e->id, m->env->sender, (unsigned long long)m->env->content_size,
	    m->env->nrcpt);
	m->jobs_left = 1;	/* held while splitting */
	msg_split(m);
	if (--m->jobs_left == 0)
		msg_finish(m);
}

void
msg_job_done(struct qjob *job)
{
	struct qmsg *m = job->msg;

	if (m->jobs_left == 0)
		log_panic("%s: job done with none left", m->env->id);
	if (--m->jobs_left == 0)
		msg_finish(m);
}

/* msg_next_try - the earliest next try of a deferred recipient */
static int64_t
msg_next_try(const struct qmsg *m, int64_t now)
{
	int64_t next = 0;
	size_t i;

	for (i = 0; i < m->env->nrcpt; i++)
		if (m->env->rcpt[i].status == QUEUE_R_DEFERRED &&
		    m->env->rcpt[i].next_try > 0 &&
		    (next == 0 || m->env->rcpt[i].next_try < next))
			next = m->env->rcpt[i].next_try;
	return next > 0 ? next : now + qm.conf.min_backoff;
}

/*
 * msg_flush_sent - write the "sent" statuses held back by msg_record()
 * before the file goes on living (deferred/, hold/, incoming/, or left
 * in active/ at a stop), so those recipients are not delivered again.
 */
static void
msg_flush_sent(struct qmsg *m)
{
	struct queue_env *env = m->env;
	struct queue_rcpt *rc;
	enum queue_rstatus saved;
	size_t i;

	if (m->sent_unrecorded == NULL)
		return;
	for (i = 0; i < env->nrcpt; i++) {
		if (!m->sent_unrecorded[i])
			continue;
		rc = &env->rcpt[i];
		/* let queue_status_append() see it as not yet final */
		saved = rc->status;
		rc->status = QUEUE_R_PENDING;
		if (queue_status_append(m->fd, env, i, QUEUE_R_SENT, rc->dsn,
		    rc->reason, 0) < 0) {
			rc->status = saved;
			log_err("%s: cannot record the status of <%s>: %s",
			    env->id, rc->addr, strerror(errno));
			m->want_retry = true;
			continue;
		}
		m->sent_unrecorded[i] = false;
	}
}

/* msg_done - the message leaves qmgr's care (file unlinked or moved) */
static void
msg_done(struct qmsg *m)
{
	struct qent *e = m->qe;

	msg_free(&m);
	index_del(e);
}

static void
msg_unlink(struct qmsg *m)
{
	char path[64];

	(void)snprintf(path, sizeof(path), "active/%s", m->env->id);
	if (queue_recycle(".", path) < 0 && errno != ENOENT) {
		log_err("%s: cannot remove %s: %s", m->env->id, path,
		    strerror(errno));
		return;
	}
	log_info("%s: removed", m->env->id);
}

static void
msg_finish(struct qmsg *m)
{
	struct queue_env *env = m->env;
	struct qent *e = m->qe;
	struct timespec ts[2];
	int64_t now = (int64_t)time(NULL), next;
	bool all_final = true;
	size_t i;

	if (m->want_delete || qm.stopping) {
		if (m->want_delete)
			msg_unlink(m);
		else
			msg_flush_sent(m);
		msg_done(m);
		return;
	}
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].status != QUEUE_R_SENT &&
		    env->rcpt[i].status != QUEUE_R_FAILED)
			all_final = false;
	if (all_final && !m->want_retry) {
		if (bounce_final(m) == 0) {
			msg_unlink(m);
			msg_done(m);
			return;
		}
		next = now + qm.conf.min_backoff;	/* notice not queued */
	} else {
		if (bounce_round(m) < 0)
			m->want_retry = true;
		bounce_delay(m, now);
		next = m->want_retry ? now + qm.conf.min_backoff :
		    msg_next_try(m, now);
	}
	msg_flush_sent(m);
	if (m->want_hold) {
		if (queue_hold_append(m->fd, env, true) < 0)
			log_warn("%s: cannot record the hold: %s", env->id,
			    strerror(errno));
		if (msg_move(env->id, QUEUE_ACTIVE, QUEUE_HOLD) == 0) {
			log_info("%s: placed on hold", env->id);
			msg_done(m);
			return;
		}
		log_err("%s: cannot move to hold/: %s", env->id,
		    strerror(errno));
	}
	if (m->want_requeue &&
	    msg_move(env->id, QUEUE_ACTIVE, QUEUE_INCOMING) == 0) {
		msg_free(&m);
		index_set_ready(e, QUEUE_INCOMING, false);
		return;
	}
	/* the mtime of a deferred file is its next try (as in Postfix) */
	ts[0].tv_sec = (time_t)next;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (futimens(m->fd, ts) < 0)
		log_warn("%s: cannot set the next try time: %s", env->id,
		    strerror(errno));
	if (msg_move(env->id, QUEUE_ACTIVE, QUEUE_DEFERRED) < 0) {
		/* stays in active/: retried at the next scan or start */
		log_err("%s: cannot move to deferred/: %s", env->id,
		    strerror(errno));
		msg_done(m);
		return;
	}
	msg_free(&m);
	index_set_deferred(e, next);
}

/* ---- the activation pump ---- */

static void
pump_run(struct ev *ev, void *arg)
{
	struct qent *e;
	unsigned n = 0;

	(void)ev;
	(void)arg;
	qm.pump_pending = false;
	if (qm.stopping)
		return;
	while (qm.nactive < qm.conf.active_limit &&
	    (e = TAILQ_FIRST(&qm.ready_list)) != NULL) {
		if (n++ == QMGR_ACTIVATE_BURST) {
			qmgr_pump();	/* more next time round the loop */
			return;
		}
		msg_activate(e);
	}
}

void
qmgr_pump(void)
{
	if (qm.pump_pending || qm.stopping)
		return;
	qm.pump_pending = true;
	ev_later(qm.ev, pump_run, NULL);
}
