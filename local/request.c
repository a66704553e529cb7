/*
 * request - the lib/ipc handlers of private/local
 *
 * lib/ipc's server (set up in main.c) does the wire protocol: framing,
 * limits, pipelining, one answer per request in order, protocol errors.
 * Here are the two requests (see local(8)):
 *
 *   request=deliver id=ID path=active/ID rcpt_index=N ...
 *   -> status=0 then, per rcpt_index in order,
 *      rcpt_index=N result=sent|deferred|failed dsn=X.Y.Z reason=TEXT
 *   request=ping -> status=0
 *
 * "deliver" checks the request on the loop, hands a job to a worker
 * (pool.c) and returns IPC_DEFER: lib/ipc reads no further request of
 * that connection until local_request_done() answers it with
 * ipc_req_done(), back on the loop, when the worker's result comes in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "ipc.h"
#include "local.h"
#include "log.h"
#include "mem.h"
#include "strnum.h"

/* request_deliver - check a deliver request and give it to a worker */
static int
request_deliver(struct ipc_req *req, void *arg)
{
	const char *id, *path, *why;
	struct local_job *j;
	size_t i, n, *idx;

	(void)arg;
	if (queue_deliver_req(ipc_req_attrs(req), LOCAL_RCPTS_MAX, &id, &path,
	    &idx, &n, &why) < 0) {
		ipc_req_reason(req, "%s", why);
		return IPC_PERMFAIL;
	}
	j = xcalloc(1, sizeof(*j));
	j->rr = xcalloc(n, sizeof(*j->rr));
	for (i = 0; i < n; i++)
		j->rr[j->nrr++].idx = idx[i];
	free(idx);
	(void)snprintf(j->id, sizeof(j->id), "%s", id);
	(void)snprintf(j->path, sizeof(j->path), "%s", path);
	j->req = req;
	local_pool_submit(j);
	return IPC_DEFER;
}

static int
request_ping(struct ipc_req *req, void *arg)
{
	(void)req;
	(void)arg;
	return IPC_OK;
}

const struct ipc_handler local_handlers[] = {
	{ "deliver", request_deliver },
	{ "ping", request_ping },
	{ NULL, NULL },
};

/* request_results - the per-recipient part of the answer; 0 or -1 */
static int
request_results(struct buf *out, const struct local_job *j)
{
	static const char *const res[] = {
		[LOCAL_SENT] = "sent",
		[LOCAL_DEFERRED] = "deferred",
		[LOCAL_FAILED] = "failed",
	};
	size_t i;

	for (i = 0; i < j->nrr; i++)
		if (attr_put_uint(out, "rcpt_index", j->rr[i].idx) < 0 ||
		    attr_put_str(out, "result", res[j->rr[i].result]) < 0 ||
		    attr_put_str(out, "dsn", j->rr[i].dsn) < 0 ||
		    attr_put_str(out, "reason", j->rr[i].reason) < 0)
			return -1;
	return 0;
}

void
local_request_done(struct local_job *j)
{
	int status = j->status;

	if (ipc_req_is_orphan(j->req)) {
		log_info("%s: qmgr went away before the answer", j->id);
		ipc_req_done(&j->req, status);
		local_job_free(&j);
		return;
	}
	if (status != IPC_OK)
		ipc_req_reason(j->req, "%s", j->reason);
	else if (request_results(ipc_req_out(j->req), j) < 0) {
		/* cannot happen within lib/ipc's max_msg: limits in local.h */
		log_warn("%s: the answer is too long", j->id);
		buf_reset(ipc_req_out(j->req));
		ipc_req_reason(j->req, "answer too long");
		status = IPC_TEMPFAIL;
	}
	ipc_req_done(&j->req, status);
	local_job_free(&j);
}
