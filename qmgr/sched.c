/*
 * sched - which job runs next: concurrency per transport and per
 * destination
 *
 * Jobs wait in one FIFO list.  A run walks it once and starts every
 * job whose transport is below its concurrency limit and whose
 * destination ("transport/destination") is below the destination
 * limit; a blocked destination does not hold up the jobs behind it.
 * The limits come from <transport>_transport_concurrency_limit,
 * <transport>_destination_concurrency_limit and
 * <transport>_destination_recipient_limit when such a setting exists,
 * else from the default_* ones: a new transport needs no code here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "qmgr.h"

#define SCHED_DHSIZE	1024

static unsigned
sched_limit(const char *tp, const char *what, const char *def)
{
	char name[128];

	(void)snprintf(name, sizeof(name), "%s_%s", tp, what);
	if (cfg_is_defined(qm.cfg, name))
		return (unsigned)cfg_int(qm.cfg, name);
	return (unsigned)cfg_int(qm.cfg, def);
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
	for (i = 0; i < qtransports_n; i++) {
		qm.tp_limit[i] = sched_limit(qtransports[i].name,
		    "transport_concurrency_limit",
		    "default_transport_concurrency_limit");
		qm.tp_dest_limit[i] = sched_limit(qtransports[i].name,
		    "destination_concurrency_limit",
		    "default_destination_concurrency_limit");
		qm.tp_rcpt_limit[i] = sched_limit(qtransports[i].name,
		    "destination_recipient_limit",
		    "default_destination_recipient_limit");
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
sched_dest_release(struct qdest *d)
{
	struct qdest **pp;

	if (--d->busy > 0)
		return;
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
sched_run(struct ev *ev, void *arg)
{
	struct qjob *job, *next;
	struct qdest *d;

	(void)ev;
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
		TAILQ_REMOVE(&qm.waiting, job, link);
		TAILQ_INSERT_TAIL(&qm.running, job, link);
		qm.tp_busy[job->tpi]++;
		d->busy++;
		job->qd = d;
		deliver_start(job);
	}
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
