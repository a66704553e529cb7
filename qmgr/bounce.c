/*
 * bounce - delivery status notices from qmgr (lib/dsn builds the text)
 *
 * At the end of a round that leaves recipients deferred: one failure
 * notice for the recipients that failed in it (bounce_round), each then
 * recorded as notified.  Once every recipient of a message is final: one
 * failure notice (bounce) for the failed recipients that want one and
 * were not in an earlier notice, and one success report for
 * NOTIFY=SUCCESS recipients, each queued as a new message
 * from the null sender to the envelope sender.  Never to the null
 * sender: when mail from the null sender (a bounce) fails, one notice
 * goes to postmaster_address instead (a double bounce); when that one
 * fails too (its failed recipient is the postmaster) it is dropped with
 * a log line.  So no notice ever causes more than one further notice:
 * no loop.
 *
 * A delay warning (delay_warning_time) is sent when the round that
 * crosses arrival + delay_warning_time ends with recipients deferred
 * (backoff_warn_due: at most once, without a record of it).
 *
 * A notice is written with the queue writer (fsync, rename, directory
 * fsync) before the original goes: a crash in between repeats it at
 * worst.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"
#include "dsn.h"
#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "smtp_cmd.h"

/* bounce_queue - build and queue one notice about env to rcpt */
static int
bounce_queue(struct qmsg *m, const struct queue_env *env, int kind,
    const char *rcpt, const char *what)
{
	struct dsn_info info;
	char id[QUEUE_ID_LEN + 1];
	int rc;

	memset(&info, 0, sizeof(info));
	info.myhostname = qm.conf.myhostname;
	info.size_limit = qm.conf.bounce_size_limit;
	if (kind == DSN_DELAY)
		info.queue_lifetime = qm.conf.queue_lifetime;
	rc = dsn_queue(&info, env, m->fd, (enum dsn_kind)kind, rcpt, ".", id);
	if (rc == 1) {
		log_info("%s: %s: %s", env->id, what, id);
		if (index_get(id) == NULL)
			(void)index_add(id, QE_READY, QUEUE_INCOMING);
	}
	return rc;
}

/* bounce_double - a failed null-sender message: tell the postmaster */
static int
bounce_double(struct qmsg *m)
{
	const struct queue_env *env = m->env;
	struct queue_env copy;
	size_t i;
	int rc;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].status == QUEUE_R_FAILED &&
		    strcasecmp(env->rcpt[i].addr, qm.conf.postmaster) == 0) {
			log_warn("%s: undeliverable postmaster notification "
			    "discarded", env->id);
			return 0;
		}
	/* the same report, addressed to the postmaster, NOTIFY ignored */
	copy = *env;
	copy.sender = (char *)qm.conf.postmaster;
	copy.rcpt = xcalloc(env->nrcpt, sizeof(*copy.rcpt));
	memcpy(copy.rcpt, env->rcpt, env->nrcpt * sizeof(*copy.rcpt));
	for (i = 0; i < env->nrcpt; i++)
		copy.rcpt[i].notify = 0;
	rc = bounce_queue(m, &copy, DSN_FAILURE, qm.conf.postmaster,
	    "postmaster non-delivery notification");
	free(copy.rcpt);
	return rc < 0 ? -1 : 0;
}

/*
 * bounce_notice_copy - bounce_notice_recipient gets the report too, with
 * the original's headers only (its body is the sender's business)
 */
static int
bounce_notice_copy(struct qmsg *m)
{
	const struct queue_env *env = m->env;
	struct queue_env copy;
	size_t i;
	int rc;

	copy = *env;
	copy.ret = SMTP_RET_HDRS;
	copy.rcpt = xcalloc(env->nrcpt, sizeof(*copy.rcpt));
	memcpy(copy.rcpt, env->rcpt, env->nrcpt * sizeof(*copy.rcpt));
	for (i = 0; i < env->nrcpt; i++)
		copy.rcpt[i].notify = 0;	/* the admin's copy: always */
	rc = bounce_queue(m, &copy, DSN_FAILURE, qm.conf.bounce_notice,
	    "postmaster copy of the non-delivery notification");
	free(copy.rcpt);
	return rc < 0 ? -1 : 0;
}

/*
 * bounce_round - at the end of a round with recipients still deferred:
 * the ones that failed in it are reported now, as Postfix does, not
 * when the last deferred one is done (days later); each is recorded as
 * notified, so the final notice does not repeat it.  Mail from the null
 * sender waits for the end (one double bounce at most).  0, or -1 when
 * the notice could not be queued (tried again next round).
 */
/* bounce_unreported - 1 if a recipient failed and was not reported yet */
static int
bounce_unreported(const struct queue_env *env)
{
	size_t i;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].status == QUEUE_R_FAILED &&
		    !env->rcpt[i].notified)
			return 1;
	return 0;
}

int
bounce_round(struct qmsg *m)
{
	struct queue_env *env = m->env;
	size_t i;

	if (env->sender[0] == '\0' || !bounce_unreported(env))
		return 0;
	if (bounce_queue(m, env, DSN_FAILURE, env->sender,
	    "sender non-delivery notification") < 0)
		return -1;
	if (*qm.conf.bounce_notice != '\0' && bounce_notice_copy(m) < 0)
		return -1;
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].status == QUEUE_R_FAILED &&
		    !env->rcpt[i].notified &&
		    queue_notified_append(m->fd, env, i) < 0) {
			log_err("%s: cannot record the notice for <%s>: %s",
			    env->id, env->rcpt[i].addr, strerror(errno));
			return -1;	/* at worst repeated at the end */
		}
	return 0;
}

int
bounce_final(struct qmsg *m)
{
	const struct queue_env *env = m->env;
	bool has_failed = bounce_unreported(env);

	if (env->sender[0] == '\0')
		return has_failed ? bounce_double(m) : 0;
	if (has_failed && bounce_queue(m, env, DSN_FAILURE, env->sender,
	    "sender non-delivery notification") < 0)
		return -1;
	if (has_failed && *qm.conf.bounce_notice != '\0' &&
	    bounce_notice_copy(m) < 0)
		return -1;
	if (bounce_queue(m, env, DSN_SUCCESS, env->sender,
	    "sender delivery status notification") < 0)
		return -1;
	return 0;
}

void
bounce_delay(struct qmsg *m, int64_t now)
{
	const struct queue_env *env = m->env;

	if (env->sender[0] == '\0' || !backoff_warn_due(env->arrival,
	    m->last_attempt, now, qm.conf.delay_warning))
		return;
	(void)bounce_queue(m, env, DSN_DELAY, env->sender,
	    "sender delay notification");
}
