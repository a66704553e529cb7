/*
 * deliver - the transport table and one delivery request
 *
 * A transport is one line of qtransports[]: a delivery agent reached
 * over ipc (local, smtp), or built in (discard, error).
 *
 * The request to an agent (issue 4 contract):
 *	request=deliver, id=ID, path=active/ID, rcpt_index=N ...
 * its answer: status=0, then per recipient in the same order
 *	rcpt_index=N, result=sent|deferred|failed, dsn=X.Y.Z, reason=TEXT
 *	[relay=relayed|passed]	(smtp, for sent: the next hop lacks DSN /
 *				has DSN and took over the notices)
 * The agent logs its own to=... lines.  A status other than 0, no
 * answer at all (agent down, timeout) or a recipient missing from the
 * answer defers the recipients concerned; qmgr logs those.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "strnum.h"

const struct qtransport qtransports[] = {
	{ "local", QT_SERVICE, "private/local" },
	{ "smtp", QT_SERVICE, "private/smtp" },
	{ "discard", QT_DISCARD, NULL },
	{ "error", QT_ERROR, NULL },
};
const size_t qtransports_n = sizeof(qtransports) / sizeof(qtransports[0]);

const struct qtransport *
deliver_find(const char *name, size_t *index_r)
{
	size_t i;

	for (i = 0; i < qtransports_n; i++)
		if (strcmp(qtransports[i].name, name) == 0) {
			*index_r = i;
			return &qtransports[i];
		}
	return NULL;
}

/* deliver_dsn_ok - "C.N.N" with C the class of result, at most 11 bytes */
static int
deliver_dsn_ok(const char *dsn, char cls)
{
	size_t i, dots = 0, digits = 0;

	if (dsn == NULL || dsn[0] != cls || strlen(dsn) > 11)
		return 0;
	for (i = 1; dsn[i] != '\0'; i++) {
		if (dsn[i] == '.') {
			if (digits == 0 && i > 1)
				return 0;
			dots++;
			digits = 0;
		} else if (isdigit((unsigned char)dsn[i])) {
			digits++;
		} else {
			return 0;
		}
	}
	return dots == 2 && digits > 0 && dsn[1] == '.';
}

/* deliver_defer_all - every recipient of the job not answered yet */
static void
deliver_defer_rest(struct qjob *job, const bool *answered,
    const char *reason)
{
	size_t i;

	for (i = 0; i < job->nidx; i++)
		if (answered == NULL || !answered[i])
			(void)msg_record(job->msg, job->idx[i],
			    QUEUE_R_DEFERRED, "4.3.0", reason, job->tp->name,
			    true);
}

/* deliver_apply - one result group of the agent's answer */
static void
deliver_apply(struct qjob *job, bool *answered, size_t *cursor,
    unsigned long long idx, const char *result, const char *dsn,
    const char *reason, const char *relay)
{
	enum queue_rstatus st;
	const char *d;
	size_t i, k;

	/* answers come in request order: look from the cursor on */
	for (k = 0; k < job->nidx; k++) {
		i = (*cursor + k) % job->nidx;
		if (job->idx[i] == idx && !answered[i])
			break;
	}
	if (k == job->nidx) {
		log_warn("%s: %s answered for recipient %llu it was not "
		    "asked about", job->msg->env->id, job->tp->name, idx);
		return;
	}
	*cursor = i + 1;
	answered[i] = true;
	if (result != NULL && strcmp(result, "sent") == 0) {
		st = QUEUE_R_SENT;
		d = deliver_dsn_ok(dsn, '2') ? dsn : "2.0.0";
		/* smtp: who sends the success notice (queue.h) */
		if (relay != NULL && strcmp(relay, "passed") == 0)
			job->msg->env->rcpt[idx].relay = QUEUE_RELAY_PASSED;
		else if (relay != NULL && strcmp(relay, "relayed") == 0)
			job->msg->env->rcpt[idx].relay = QUEUE_RELAY_RELAYED;
	} else if (result != NULL && strcmp(result, "failed") == 0) {
		st = QUEUE_R_FAILED;
		d = deliver_dsn_ok(dsn, '5') ? dsn : "5.0.0";
	} else if (result != NULL && strcmp(result, "deferred") == 0) {
		st = QUEUE_R_DEFERRED;
		d = deliver_dsn_ok(dsn, '4') ? dsn : "4.0.0";
	} else {
		(void)msg_record(job->msg, idx, QUEUE_R_DEFERRED, "4.3.0",
		    "bad result from the delivery agent", job->tp->name,
		    true);
		return;
	}
	if (reason == NULL || *reason == '\0')
		reason = st == QUEUE_R_SENT ? "delivered" : "no reason given";
	/* the agent logged this one itself */
	(void)msg_record(job->msg, idx, st, d, reason, job->tp->name, false);
}

static void
deliver_parse(struct qjob *job, const struct attr_rec *resp)
{
	const struct attr_field *f;
	bool *answered = xcalloc(job->nidx, sizeof(*answered));
	const char *result = NULL, *dsn = NULL, *reason = NULL, *relay = NULL;
	unsigned long long idx = 0;
	bool in_group = false;
	size_t i, n = attr_count(resp), cursor = 0;

	for (i = 1; i <= n; i++) {
		f = i < n ? attr_at(resp, i) : NULL;
		if (f != NULL && strcmp(f->name, "rcpt_index") != 0) {
			if (!in_group || memchr(f->value, '\0',
			    f->value_len) != NULL)
				continue;
			if (strcmp(f->name, "result") == 0)
				result = f->value;
			else if (strcmp(f->name, "dsn") == 0)
				dsn = f->value;
			else if (strcmp(f->name, "reason") == 0)
				reason = f->value;
			else if (strcmp(f->name, "relay") == 0)
				relay = f->value;
			continue;
		}
		if (in_group)
			deliver_apply(job, answered, &cursor, idx, result, dsn,
			    reason, relay);
		in_group = false;
		if (f == NULL)
			break;
		if (memchr(f->value, '\0', f->value_len) != NULL ||
		    str_to_uint(f->value, 0, QUEUE_RCPT_MAX, &idx) < 0) {
			log_warn("%s: %s: bad rcpt_index in its answer",
			    job->msg->env->id, job->tp->name);
			continue;
		}
		in_group = true;
		result = dsn = reason = relay = NULL;
	}
	deliver_defer_rest(job, answered,
	    "delivery agent gave no result for this recipient");
	free(answered);
}

static void
deliver_done(void *arg, int status, const struct attr_rec *resp,
    const char *err)
{
	struct qjob *job = arg;
	const char *why;
	char reason[300];

	job->call = NULL;
	if (status < 0) {
		(void)snprintf(reason, sizeof(reason), "delivery temporarily "
		    "suspended: %s", err);
		log_warn("%s: transport %s: %s", job->msg->env->id,
		    job->tp->name, err);
		deliver_defer_rest(job, NULL, reason);
	} else if (status != IPC_OK) {
		why = attr_get_str(resp, "reason");
		(void)snprintf(reason, sizeof(reason), "delivery agent %s "
		    "failed: %s", job->tp->name, why != NULL ? why :
		    "no reason given");
		deliver_defer_rest(job, NULL, reason);
	} else {
		deliver_parse(job, resp);
	}
	sched_done(job);
	msg_job_done(job);
	qjob_free(&job);
}

void
deliver_start(struct qjob *job)
{
	struct buf req;
	char path[64];
	size_t i;
	int rc = 0;

	buf_init(&req, IPC_MSG_MAX_DEFAULT);
	(void)snprintf(path, sizeof(path), "active/%s", job->msg->env->id);
	rc |= ipc_request(&req, "deliver");
	rc |= attr_put_str(&req, "id", job->msg->env->id);
	rc |= attr_put_str(&req, "path", path);
	if (job->nexthop[0] != '\0')
		rc |= attr_put_str(&req, "nexthop", job->nexthop);
	for (i = 0; i < job->nidx; i++)
		rc |= attr_put_uint(&req, "rcpt_index", job->idx[i]);
	rc |= attr_end(&req);
	if (rc != 0)
		log_panic("%s: delivery request too large", job->msg->env->id);
	job->call = ipc_async_call(qm.ev, job->tp->service, &req,
	    (int)(qm.conf.ipc_timeout * 1000), deliver_done, job);
	buf_deinit(&req);
}
