/*
 * queue - hand a received message to the queue, durably (invariant 1)
 *
 * The order is the one lib/queue.h fixes: seal the file, fsync it,
 * rename incoming/ID.tmp to incoming/ID, fsync incoming/, and only then
 * "250 2.0.0 Ok: queued as ID".  The loop never waits for the disk:
 *
 *   - each message's fsync runs in a lib/fsyncq worker, so the
 *     fsyncs of many sessions are in flight together and the ext4
 *     journal commits them at once;
 *   - the directory fsync is shared (group commit): messages renamed
 *     while no directory fsync runs start one at once; messages renamed
 *     while one runs wait for it to finish and then share the next one
 *     (the running fsync may have started before their rename).  One
 *     fsync of incoming/ thus covers every message completed meanwhile.
 * No fsync is ever skipped: every 250 comes after its file's own fsync
 * and after a directory fsync that started after its rename.
 *
 * After the 250, qmgr is told best effort with "request=new id=ID" over
 * one kept, pipelined connection to private/qmgr (lib/trigger.h); when
 * qmgr is down the message waits in incoming/ for its scan at start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attr.h"
#include "fsyncq.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "smtpd.h"
#include "trigger.h"

#define QMGR_SOCKET		"private/qmgr"

static struct {
	struct fsyncq *fsq;
	int	 dirfd;
	struct smtpd_session *waiting;		/* renamed, need a dir fsync */
	struct smtpd_session **waiting_tail;
	struct smtpd_session *syncing;		/* covered by the one running */
	bool	 dir_busy;
	unsigned pending;			/* sessions in SS_QUEUE */
	struct trigger *qmgr;			/* "new id=" to qmgr */
} q = { .dirfd = -1 };


void
smtpd_queue_init(struct ev *ev, int nthreads)
{
	char path[64];

	if (queue_path(path, sizeof(path), ".", QUEUE_INCOMING, NULL) < 0)
		log_panic("queue path");
	q.dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q.dirfd < 0)
		log_fatal("open %s: %s", path, strerror(errno));
	q.fsq = fsyncq_new(ev, nthreads);
	q.waiting_tail = &q.waiting;
	q.qmgr = trigger_new(ev, QMGR_SOCKET);
}

void
smtpd_queue_done(void)
{
	fsyncq_free(&q.fsq);
	trigger_free(&q.qmgr);
	if (q.dirfd >= 0)
		(void)close(q.dirfd);
	q.dirfd = -1;
}

unsigned
smtpd_queue_pending(void)
{
	return q.pending;
}

int
smtpd_queue_start(struct smtpd_session *s, struct reply *r)
{
	struct queue_env *env = s->env;

	queue_env_set(&env->client_name, s->client_name);
	queue_env_set(&env->client_addr, s->client_addr);
	queue_env_set(&env->helo, s->helo[0] != '\0' ? s->helo : NULL);
	queue_env_set(&env->proto, smtpd_proto(s));
	queue_env_set(&env->auth, s->auth_user);
	if ((s->qw = queue_writer_new(".", env, r)) == NULL)
		return -1;
	if (s->auth_user != NULL)
		log_info("%s: client=%s, sasl_method=%s, sasl_username=%s",
		    env->id, s->client, s->auth_method, s->auth_user);
	else
		log_info("%s: client=%s", env->id, s->client);
	return 0;
}

/* ---- durable commit ----------------------------------------------------- */

static void
queue_finish(struct smtpd_session *s, const struct reply *fail)
{
	char id[QUEUE_ID_LEN + 1];
	unsigned long long size;
	size_t nrcpt;
	char *sender;

	q.pending--;
	if (fail != NULL) {
		smtpd_log_reject(s, s->bdat_used ? "BDAT" : "DATA", fail,
		    NULL);
		smtpd_transaction_reset(s);	/* unlinks if not renamed */
		smtpd_reply_r(s, fail);
	} else {
		(void)snprintf(id, sizeof(id), "%s", s->env->id);
		size = queue_writer_size(s->qw);
		nrcpt = s->env->nrcpt;
		sender = xstrdup(s->env->sender);
		smtpd_transaction_reset(s);
		smtpd_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		log_info("%s: from=<%s>, size=%llu, nrcpt=%zu", id, sender,
		    size, nrcpt);
		free(sender);
		trigger_send(q.qmgr, "new", id);
	}
	if (smtpd.stopping)
		s->must_close = true;
	smtpd_session_resume(s);
}

static void queue_on_dir_synced(void *, int);

/* queue_dir_kick - start a directory fsync for the waiting messages */
static void
queue_dir_kick(void)
{
	if (q.dir_busy || q.waiting == NULL)
		return;
	q.syncing = q.waiting;
	q.waiting = NULL;
	q.waiting_tail = &q.waiting;
	q.dir_busy = true;
	fsyncq_submit(q.fsq, q.dirfd, false, queue_on_dir_synced, NULL);
}

static void
queue_on_dir_synced(void *arg, int err)
{
	struct smtpd_session *s, *next;
	struct reply r;
	unsigned count = 0;

	(void)arg;
	s = q.syncing;
	for (next = s; next != NULL; next = next->gc_next)
		count++;
	log_debug("group commit: one fsync of incoming/ for %u messages",
	    count);
	q.syncing = NULL;
	q.dir_busy = false;
	queue_dir_kick();	/* the next batch starts at once */
	if (err != 0) {
		log_err("fsync incoming/: %s", strerror(err));
		reply_set(&r, 451, "4.3.0", "Error: queue file write error");
	}
	for (; s != NULL; s = next) {
		next = s->gc_next;
		s->gc_next = NULL;
		queue_finish(s, err != 0 ? &r : NULL);
	}
}

static void
queue_on_file_synced(void *arg, int err)
{
	struct smtpd_session *s = arg;
	struct reply r;

	if (err != 0) {
		log_err("%s: fsync: %s", s->env->id, strerror(err));
		reply_set(&r, 451, "4.3.0", "Error: queue file write error");
		queue_finish(s, &r);
		return;
	}
	if (queue_writer_commit(s->qw, &r) < 0) {
		queue_finish(s, &r);
		return;
	}
	s->gc_next = NULL;
	*q.waiting_tail = s;
	q.waiting_tail = &s->gc_next;
	queue_dir_kick();
}

void
smtpd_queue_commit(struct smtpd_session *s)
{
	struct reply r;

	s->state = SS_QUEUE;
	q.pending++;
	if (queue_writer_seal(s->qw, &r) < 0) {
		queue_finish(s, &r);
		return;
	}
	/* the writer's fd stays open until commit: the session waits */
	fsyncq_submit(q.fsq, queue_writer_fd(s->qw), false,
	    queue_on_file_synced, s);
}
