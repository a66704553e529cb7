/*
 * queue - hand a received message to the queue, durably (invariant 1)
 *
 * The order is the one lib/queue.h fixes.  At DATA the writer takes a
 * file as incoming/ID.tmp (a rename) and locks it; at the final dot it
 * seals the file (content_size and the check sum) and fsyncs it, then
 * renames it to incoming/ID; "250 2.0.0 Ok: queued as ID" comes only
 * when both the file's fsync and an fsync of incoming/ that started
 * after the ID.tmp rename are done.  The name ID.tmp is thus durable
 * before the 250, and so is the content; the rename to ID need not be:
 * should it be lost in a crash, qmgr finds ID.tmp unlocked, sealed and
 * with a good check sum, and queues it (lib/queue.h, qmgr(8)).
 *
 * The loop never waits for the disk:
 *
 *   - each message's fsync runs in a lib/fsyncq worker, so the
 *     fsyncs of many sessions are in flight together;
 *   - the directory fsync is shared (group commit) and starts as soon
 *     as a file is taken, at DATA, so it runs while the client sends
 *     the message: by the final dot it is mostly done.  Files taken
 *     while a directory fsync runs wait for the next one (the running
 *     one may have started before their rename): generations count
 *     the directory fsyncs started and done, and a session remembers
 *     the first one that covers its file.
 * No fsync is ever skipped: every 250 comes after its file's own fsync
 * and after a directory fsync that started after its file got its name.
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
	uint64_t dir_started;			/* directory fsyncs started */
	uint64_t dir_done;			/* the last one finished */
	uint64_t dir_wanted;			/* the one the newest file needs */
	bool	 dir_busy;
	struct smtpd_session *waiting;		/* file synced, need dir_done */
	struct smtpd_session **waiting_tail;
	unsigned pending;			/* sessions in SS_QUEUE */
	struct trigger *qmgr;			/* "new id=" to qmgr */
} q = { .dirfd = -1 };

static void queue_dir_kick(void);

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
	/* ID.tmp has its name: the next directory fsync to start covers it */
	s->dir_gen = q.dir_started + 1;
	q.dir_wanted = s->dir_gen;
	queue_dir_kick();
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

/* queue_dir_kick - start a directory fsync if a taken file needs one */
static void
queue_dir_kick(void)
{
	if (q.dir_busy || q.dir_wanted <= q.dir_done)
		return;
	q.dir_busy = true;
	q.dir_started++;
	fsyncq_submit(q.fsq, q.dirfd, false, queue_on_dir_synced, NULL);
}

static void
queue_on_dir_synced(void *arg, int err)
{
	struct smtpd_session *s, *next;
	struct reply r;
	unsigned count = 0;

	(void)arg;
	q.dir_busy = false;
	if (err != 0) {
		log_err("fsync incoming/: %s", strerror(err));
		reply_set(&r, 451, "4.3.0", "Error: queue file write error");
	} else
		q.dir_done = q.dir_started;
	/* the sessions this one covers (all of them when it failed) */
	s = q.waiting;
	q.waiting = NULL;
	q.waiting_tail = &q.waiting;
	if (err == 0)
		queue_dir_kick();	/* the next batch starts at once */
	for (; s != NULL; s = next) {
		next = s->gc_next;
		s->gc_next = NULL;
		if (err == 0 && s->dir_gen > q.dir_done) {
			*q.waiting_tail = s;	/* needs a later one */
			q.waiting_tail = &s->gc_next;
			continue;
		}
		count++;
		queue_finish(s, err != 0 ? &r : NULL);
	}
	if (count > 0)
		log_debug("group commit: one fsync of incoming/ for %u "
		    "messages", count);
	/* after a failure, the next try waits for the next message */
	if (q.waiting != NULL)
		queue_dir_kick();
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
	/* durable content under a durable name: ID.tmp becomes ID */
	if (queue_writer_commit(s->qw, &r) < 0) {
		queue_finish(s, &r);
		return;
	}
	if (s->dir_gen <= q.dir_done) {
		queue_finish(s, NULL);
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
	/*
	 * fdatasync: the content and what it takes to read it back (size,
	 * block map), not the times; the name is the directory's business
	 */
	fsyncq_submit(q.fsq, queue_writer_fd(s->qw), true,
	    queue_on_file_synced, s);
}
