/*
 * sched - which job runs next: concurrency per transport and per
 * destination
 *
 * Jobs wait in one FIFO list.  A run walks it once and starts every
 * job whose transport is below its concurrency limit and whose
 * destination ("transport/destination") is below the destination
 * limit; a blocked destination does not hold up the jobs behind it.
 * The limits come from <transport>_transport_concurrency_limit,
 * <transport>_destination_concurrency_limit,
 * <transport>_destination_recipient_limit and
 * <transport>_destination_rate_delay when such a setting exists, else
 * from the default_* ones: a new transport needs no code here.  A value
 * set in the transport's own file (smtp.conf for smtp) wins over
 * qmgr.conf and posta.conf.
 *
 * A rate delay makes a destination take one delivery at a time, each
 * started at least the delay after the one before (Postfix's
 * default_destination_rate_delay); a destination so held is kept in the
 * hash after its last job until the delay has passed, and one timer
 * wakes the scheduler at the earliest such time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "qmgr.h"

#define SCHED_DHSIZE	1024

static long long
sched_setting(size_t tpi, const char *what, const char *def)
{
	struct cfg *own = qm.tp_cfg != NULL ? qm.tp_cfg[tpi] : NULL;
	char name[128];

	(void)snprintf(name, sizeof(name), "%s_%s", qtransports[tpi].name,
	    what);
	if (own != NULL && cfg_is_defined(own, name) &&
	    cfg_origin(own, name) != NULL)
		return cfg_int(own, name);
	if (cfg_is_defined(qm.cfg, name))
		return cfg_int(qm.cfg, name);
	return cfg_int(qm.cfg, def);
}

void
sched_init(void)
{
	size_t i;

	TAILQ_INIT(&qm.waiting);
	TAILQ_INIT(&qm.running);
	qm.dhsize = SCHED_DHSIZE;
	qm.dhash = xcalloc(qm.dhsize, sizeof(*qm.dhash));
	qm.tp_busy = xcalloc(qtransports_n, sizeof(*qm.tp_busy));
	qm.tp_limit = xcalloc(qtransports_n, sizeof(*qm.tp_limit));
	qm.tp_dest_limit = xcalloc(qtransports_n, sizeof(*qm.tp_dest_limit));
	qm.tp_rcpt_limit = xcalloc(qtransports_n, sizeof(*qm.tp_rcpt_limit));
	qm.tp_rate_delay = xcalloc(qtransports_n, sizeof(*qm.tp_rate_delay));
	for (i = 0; i < qtransports_n; i++) {
		qm.tp_limit[i] = (unsigned)sched_setting(i,
		    "transport_concurrency_limit",
		    "default_transport_concurrency_limit");
		qm.tp_dest_limit[i] = (unsigned)sched_setting(i,
		    "destination_concurrency_limit",
		    "default_destination_concurrency_limit");
		qm.tp_rcpt_limit[i] = (unsigned)sched_setting(i,
		    "destination_recipient_limit",
		    "default_destination_recipient_limit");
		qm.tp_rate_delay[i] = 1000 * sched_setting(i,
		    "destination_rate_delay",
		    "default_destination_rate_delay");
		if (qm.tp_rate_delay[i] > 0)
			qm.tp_dest_limit[i] = 1;
		log_debug("transport %s: %u at once, %u per destination, "
		    "%u recipients per request, rate delay %lldms",
		    qtransports[i].name, qm.tp_limit[i], qm.tp_dest_limit[i],
		    qm.tp_rcpt_limit[i], (long long)qm.tp_rate_delay[i]);
	}
}

static size_t
sched_hash(const char *s)
{
	size_t h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h & (qm.dhsize - 1);
}

static struct qdest *
sched_dest(const struct qjob *job)
{
	char key[RESOLVE_TRANSPORT_MAX + RESOLVE_NEXTHOP_MAX + 2];
	struct qdest *d;
	size_t h;

	(void)snprintf(key, sizeof(key), "%s/%s", job->tp->name, job->dest);
	h = sched_hash(key);
	for (d = qm.dhash[h]; d != NULL; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->key = xstrdup(key);
	d->hnext = qm.dhash[h];
	qm.dhash[h] = d;
	return d;
}

static void
sched_dest_unhash(struct qdest *d)
{
	struct qdest **pp;

	for (pp = &qm.dhash[sched_hash(d->key)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	free(d->key);
	free(d);
}

static void
sched_dest_release(struct qdest *d)
{
	if (--d->busy > 0)
		return;
	/* held by a rate delay: kept until then (sched_sweep) */
	if (d->next_ok > ev_now(qm.ev))
		return;
	sched_dest_unhash(d);
}

static void sched_on_rate(struct ev *, void *);

/* sched_rate_wake - make the scheduler run again at time at (ms) */
static void
sched_rate_wake(int64_t at)
{
	if (qm.rate_timer != NULL && qm.rate_timer_at <= at)
		return;
	ev_timer_cancel(qm.ev, &qm.rate_timer);
	qm.rate_timer_at = at;
	qm.rate_timer = ev_timer_add(qm.ev, at - ev_now(qm.ev) > 0 ?
	    at - ev_now(qm.ev) : 0, sched_on_rate, NULL);
}

/* sched_sweep - drop idle destinations whose rate delay has passed */
static void
sched_sweep(void)
{
	struct qdest *d, *next;
	int64_t now = ev_now(qm.ev);
	size_t i;

	for (i = 0; i < qm.dhsize; i++)
		for (d = qm.dhash[i]; d != NULL; d = next) {
			next = d->hnext;
			if (d->busy == 0 && d->next_ok <= now)
				sched_dest_unhash(d);
		}
}

static void
sched_run(struct ev *ev, void *arg)
{
	struct qjob *job, *next;
	struct qdest *d;
	int64_t now = ev_now(ev), wake = 0;

	(void)arg;
	qm.sched_pending = false;
	if (qm.stopping)
		return;
	for (job = TAILQ_FIRST(&qm.waiting); job != NULL; job = next) {
		next = TAILQ_NEXT(job, link);
		if (qm.tp_busy[job->tpi] >= qm.tp_limit[job->tpi])
			continue;
		d = sched_dest(job);
		if (d->busy >= qm.tp_dest_limit[job->tpi])
			continue;	/* d->busy > 0: it was there before */
		if (d->next_ok > now) {
			/* rate delay: d stays hashed until then */
			if (wake == 0 || d->next_ok < wake)
				wake = d->next_ok;
			continue;
		}
		TAILQ_REMOVE(&qm.waiting, job, link);
		TAILQ_INSERT_TAIL(&qm.running, job, link);
		qm.tp_busy[job->tpi]++;
		d->busy++;
		if (qm.tp_rate_delay[job->tpi] > 0)
			d->next_ok = now + qm.tp_rate_delay[job->tpi];
		job->qd = d;
		deliver_start(job);
	}
	if (wake != 0)
		sched_rate_wake(wake);
}

static void
sched_on_rate(struct ev *ev, void *arg)
{
	(void)arg;
	qm.rate_timer = NULL;
	sched_sweep();
	sched_run(ev, NULL);
}

void
sched_kick(void)
{
	if (qm.sched_pending || qm.stopping)
		return;
	qm.sched_pending = true;
	ev_later(qm.ev, sched_run, NULL);
}

void
sched_add(struct qjob *job)
{
	TAILQ_INSERT_TAIL(&qm.waiting, job, link);
	sched_kick();
}

void
sched_done(struct qjob *job)
{
	TAILQ_REMOVE(&qm.running, job, link);
	qm.tp_busy[job->tpi]--;
	sched_dest_release(job->qd);
	job->qd = NULL;
	sched_kick();
}

void
qjob_free(struct qjob **jp)
{
	if (*jp == NULL)
		return;
	ipc_async_cancel(&(*jp)->call);
	free((*jp)->idx);
	free(*jp);
	*jp = NULL;
}

void
sched_cancel_all(void)
{
	struct qjob *job;
	size_t i;

	while ((job = TAILQ_FIRST(&qm.running)) != NULL) {
		TAILQ_REMOVE(&qm.running, job, link);
		qjob_free(&job);
	}
	while ((job = TAILQ_FIRST(&qm.waiting)) != NULL) {
		TAILQ_REMOVE(&qm.waiting, job, link);
		qjob_free(&job);
	}
	for (i = 0; i < qm.dhsize; i++)
		while (qm.dhash[i] != NULL) {
			struct qdest *d = qm.dhash[i];

			qm.dhash[i] = d->hnext;
			free(d->key);
			free(d);
		}
}
