/*
 * scan - qmgr's view of the queue directories
 *
 * scan_all() reads incoming/, active/ and deferred/: files qmgr does
 * not know yet join the ready list (active/ first: mail that was in
 * flight when qmgr stopped, then incoming/ in ID order, which is
 * arrival order), deferred/ files are (re)indexed with their mtime as
 * the next try time and entries whose file is gone are dropped.
 *
 * incoming/ID.tmp files: one that no writer holds locked and that holds
 * a whole, sealed message with a good check sum is queued under its
 * name ID (queue_tmp_recover(): smtpd said 250 for it, and a crash lost
 * the rename that followed); the others are unfinished, and go when
 * they are a day old and unlocked (a writer that died before its 250).
 *
 * The deferred timer fires at the earliest next try (not more often
 * than QMGR_DEFER_TICK_MIN) and moves every due entry to the ready list.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "qmgr.h"

struct scan_names {
	char	(*id)[QUEUE_ID_LEN + 1];
	size_t	 n, cap;
};

static int
scan_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
scan_names_add(struct scan_names *sn, const char *id)
{
	if (sn->n == sn->cap) {
		sn->cap = sn->cap ? sn->cap * 2 : 64;
		sn->id = xreallocarray(sn->id, sn->cap, sizeof(*sn->id));
	}
	memcpy(sn->id[sn->n++], id, QUEUE_ID_LEN + 1);
}

/* scan_dir - the queue IDs in dir, sorted; stale .tmp removed */
static void
scan_dir(enum queue_dir d, struct scan_names *sn, int64_t now)
{
	const char *dn = queue_dir_name(d);
	char id[QUEUE_ID_LEN + 1];
	struct dirent *de;
	struct stat st;
	const char *why;
	bool busy;
	DIR *dir;
	int dfd, rc;

	sn->n = 0;
	if ((dir = opendir(dn)) == NULL) {
		log_warn("cannot open %s/: %s", dn, strerror(errno));
		return;
	}
	dfd = dirfd(dir);
	while ((de = readdir(dir)) != NULL) {
		if (queue_id_ok(de->d_name)) {
			scan_names_add(sn, de->d_name);
			continue;
		}
		if (d != QUEUE_INCOMING || !queue_tmp_id(de->d_name, id))
			continue;
		rc = queue_tmp_recover(dfd, de->d_name, &why, &busy);
		if (rc > 0) {
			log_info("%s: recovered incoming/%s: a whole "
			    "message, sealed, check sum good", id, de->d_name);
			scan_names_add(sn, id);
		} else if (rc < 0) {
			log_warn("%s: incoming/%s: %s", id, de->d_name,
			    strerror(errno));
		} else if (!busy && fstatat(dfd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 &&
		    now - (int64_t)st.st_mtime > QMGR_TMP_MAX_AGE) {
			if (unlinkat(dfd, de->d_name, 0) == 0)
				log_info("%s: removed stale temporary "
				    "file incoming/%s (%s)", id, de->d_name,
				    why);
		}
	}
	(void)closedir(dir);
	if (sn->n > 1)
		qsort(sn->id, sn->n, sizeof(*sn->id), scan_cmp);
}

static void
scan_unmark(struct qent *e, void *arg)
{
	(void)arg;
	e->seen = false;
}

static void
scan_drop_unseen(struct qent *e, void *arg)
{
	(void)arg;
	if (e->state == QE_DEFERRED && !e->seen)
		index_del(e);
}

void
scan_all(bool at_start)
{
	struct scan_names sn = { NULL, 0, 0 };
	int64_t now = (int64_t)time(NULL);
	struct qent *e;
	struct stat st;
	char path[64];
	size_t i, nnew = 0;

	index_foreach(scan_unmark, NULL);

	/* active/: in flight when qmgr stopped (or put there by hand) */
	scan_dir(QUEUE_ACTIVE, &sn, now);
	for (i = sn.n; i-- > 0; ) {
		if (index_get(sn.id[i]) != NULL)
			continue;
		e = index_add(sn.id[i], QE_ACTIVE, QUEUE_ACTIVE);
		index_set_ready(e, QUEUE_ACTIVE, true);
		nnew++;
	}

	scan_dir(QUEUE_INCOMING, &sn, now);
	for (i = 0; i < sn.n; i++) {
		if ((e = index_get(sn.id[i])) != NULL) {
			e->seen = true;
			continue;
		}
		(void)index_add(sn.id[i], QE_READY, QUEUE_INCOMING);
		nnew++;
	}

	scan_dir(QUEUE_DEFERRED, &sn, now);
	for (i = 0; i < sn.n; i++) {
		(void)snprintf(path, sizeof(path), "deferred/%s", sn.id[i]);
		if (stat(path, &st) < 0)
			continue;
		if ((e = index_get(sn.id[i])) == NULL) {
			e = index_add(sn.id[i], QE_DEFERRED, QUEUE_DEFERRED);
			nnew++;
		}
		e->seen = true;
		if (e->state == QE_DEFERRED) {
			e->next_try = (int64_t)st.st_mtime;
			scan_defer_arm(e->next_try);
		}
	}
	index_foreach(scan_drop_unseen, NULL);
	free(sn.id);
	if (at_start || nnew > 0)
		log_info("queue scan: %zu new, %zu ready, %zu active, "
		    "%zu deferred", nnew, qm.nready, qm.nactive,
		    qm.ndeferred);
	qmgr_pump();
}

static void
scan_on_timer(struct ev *ev, void *arg)
{
	(void)ev;
	(void)arg;
	qm.scan_timer = NULL;
	scan_all(false);
	scan_schedule();
}

void
scan_schedule(void)
{
	ev_timer_cancel(qm.ev, &qm.scan_timer);
	if (qm.stopping)
		return;
	qm.scan_timer = ev_timer_add(qm.ev, qm.conf.queue_run_delay * 1000,
	    scan_on_timer, NULL);
}

struct defer_walk {
	int64_t	 now;
	int64_t	 earliest;
};

static void
scan_defer_due(struct qent *e, void *arg)
{
	struct defer_walk *w = arg;

	if (e->state != QE_DEFERRED)
		return;
	if (e->next_try <= w->now) {
		index_set_ready(e, QUEUE_DEFERRED, false);
		return;
	}
	if (w->earliest == 0 || e->next_try < w->earliest)
		w->earliest = e->next_try;
}

static void
scan_on_defer(struct ev *ev, void *arg)
{
	struct defer_walk w;

	(void)ev;
	(void)arg;
	qm.defer_timer = NULL;
	qm.defer_timer_at = 0;
	w.now = (int64_t)time(NULL);
	w.earliest = 0;
	index_foreach(scan_defer_due, &w);
	if (w.earliest != 0)
		scan_defer_arm(w.earliest);
}

void
scan_defer_arm(int64_t next_try)
{
	int64_t now = (int64_t)time(NULL), ms;

	if (qm.stopping)
		return;
	if (qm.defer_timer != NULL && qm.defer_timer_at <= next_try)
		return;
	ev_timer_cancel(qm.ev, &qm.defer_timer);
	ms = next_try > now ? (next_try - now) * 1000 : 0;
	if (ms < QMGR_DEFER_TICK_MIN)
		ms = QMGR_DEFER_TICK_MIN;
	qm.defer_timer_at = next_try;
	qm.defer_timer = ev_timer_add(qm.ev, ms, scan_on_defer, NULL);
}
