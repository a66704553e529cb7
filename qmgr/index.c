/*
 * index - qmgr's in-memory index of the queue files it knows of
 *
 * A chained hash table by queue ID (it grows with the queue: a flood of
 * incoming mail costs one small entry per file, never an envelope), the
 * ready list of files waiting to be activated, and a count of deferred
 * entries.  The files themselves stay the truth: a scan rebuilds all of
 * this after a restart.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "qmgr.h"

#define INDEX_HSIZE_MIN	1024

static size_t
index_hash(const char *id, size_t size)
{
	size_t h = 5381;

	while (*id != '\0')
		h = h * 33 + (unsigned char)*id++;
	return h & (size - 1);
}

void
index_init(void)
{
	qm.hsize = INDEX_HSIZE_MIN;
	qm.hash = xcalloc(qm.hsize, sizeof(*qm.hash));
	qm.count = 0;
	TAILQ_INIT(&qm.ready_list);
}

static void
index_grow(void)
{
	struct qent **nh, *e, *next;
	size_t nsize = qm.hsize * 2, i, h;

	nh = xcalloc(nsize, sizeof(*nh));
	for (i = 0; i < qm.hsize; i++)
		for (e = qm.hash[i]; e != NULL; e = next) {
			next = e->hnext;
			h = index_hash(e->id, nsize);
			e->hnext = nh[h];
			nh[h] = e;
		}
	free(qm.hash);
	qm.hash = nh;
	qm.hsize = nsize;
}

struct qent *
index_get(const char *id)
{
	struct qent *e;

	for (e = qm.hash[index_hash(id, qm.hsize)]; e != NULL; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

struct qent *
index_add(const char *id, enum qent_state st, enum queue_dir dir)
{
	struct qent *e;
	size_t h;

	if (!queue_id_ok(id) || index_get(id) != NULL)
		log_panic("index_add: bad or known ID %.20s", id);
	if (qm.count >= qm.hsize)
		index_grow();
	e = xcalloc(1, sizeof(*e));
	memcpy(e->id, id, QUEUE_ID_LEN + 1);
	e->state = QE_ACTIVE;	/* not in any list yet */
	e->dir = dir;
	h = index_hash(id, qm.hsize);
	e->hnext = qm.hash[h];
	qm.hash[h] = e;
	qm.count++;
	if (st == QE_READY)
		index_set_ready(e, dir, false);
	else if (st == QE_DEFERRED)
		index_set_deferred(e, 0);
	return e;
}

/* index_unlist - take e out of the list or count of its state */
static void
index_unlist(struct qent *e)
{
	if (e->state == QE_READY) {
		TAILQ_REMOVE(&qm.ready_list, e, ready);
		qm.nready--;
	} else if (e->state == QE_DEFERRED) {
		qm.ndeferred--;
	}
	e->state = QE_ACTIVE;
}

void
index_del(struct qent *e)
{
	struct qent **pp;

	index_unlist(e);
	for (pp = &qm.hash[index_hash(e->id, qm.hsize)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	qm.count--;
	free(e);
}

void
index_set_ready(struct qent *e, enum queue_dir dir, bool at_head)
{
	index_unlist(e);
	e->state = QE_READY;
	e->dir = dir;
	e->msg = NULL;
	if (at_head)
		TAILQ_INSERT_HEAD(&qm.ready_list, e, ready);
	else
		TAILQ_INSERT_TAIL(&qm.ready_list, e, ready);
	qm.nready++;
	qmgr_pump();
}

void
index_set_deferred(struct qent *e, int64_t next_try)
{
	index_unlist(e);
	e->state = QE_DEFERRED;
	e->dir = QUEUE_DEFERRED;
	e->next_try = next_try;
	e->msg = NULL;
	qm.ndeferred++;
	scan_defer_arm(next_try);
}

void
index_set_active(struct qent *e, struct qmsg *m)
{
	index_unlist(e);
	e->state = QE_ACTIVE;
	e->dir = QUEUE_ACTIVE;
	e->msg = m;
}

void
index_foreach(void (*fn)(struct qent *, void *), void *arg)
{
	struct qent *e, *next;
	size_t i;

	for (i = 0; i < qm.hsize; i++)
		for (e = qm.hash[i]; e != NULL; e = next) {
			next = e->hnext;
			fn(e, arg);
		}
}
