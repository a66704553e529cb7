/*
 * forward - queue a new message for alias targets outside our domains
 *
 * The new message has the same content with "Delivered-To: RCPT" in
 * front (so a message that comes back is caught as a loop), the given
 * sender, and the targets as recipients, each with the original
 * recipient as ORCPT and its NOTIFY.  It is written like smtpd writes
 * one: incoming/ID.tmp, fsync, rename, fsync of incoming/ (invariant
 * 1), and only then counts as done.  qmgr is told with request=new, at
 * best effort: without the notice it finds the file at its next scan.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ipc.h"
#include "dsn.h"
#include "local.h"
#include "log.h"
#include "mem.h"

#define FORWARD_CHUNK	(64 * 1024)

/* queue_writer_new() picks IDs with a process-wide counter: one at a time */

/* forward_xtext - "rfc822;" + addr in RFC 3461 xtext */
static char *
forward_orcpt(const char *addr)
{
	struct buf b;
	const unsigned char *p;

	buf_init(&b, 0);
	(void)buf_puts(&b, "rfc822;");
	for (p = (const unsigned char *)addr; *p != '\0'; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			(void)buf_printf(&b, "+%02X", *p);
		else
			(void)buf_putc(&b, *p);
	}
	return buf_steal(&b);
}

/* forward_copy - the content of the queue file into the writer */
static int
forward_copy(struct queue_writer *w, const struct local_msg *msg)
{
	uint64_t off = msg->env->content_offset, left = msg->env->content_size;
	char *chunk = xmalloc(FORWARD_CHUNK);
	ssize_t n;
	int rc = 0;

	while (left > 0) {
		n = pread(msg->fd, chunk, left < FORWARD_CHUNK ? (size_t)left :
		    FORWARD_CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_err("%s: read of the queue file: %s", msg->env->id,
			    n < 0 ? strerror(errno) : "truncated");
			rc = -1;
			break;
		}
		if (queue_writer_write(w, chunk, (size_t)n) < 0) {
			rc = -1;
			break;
		}
		off += (uint64_t)n;
		left -= (uint64_t)n;
	}
	free(chunk);
	return rc;
}

/* forward_notify - tell qmgr of the new message; failures only logged */
static void
forward_notify(const char *id)
{
	char path[4096];
	struct ipc_client *cl;
	struct attr_rec *resp;
	struct buf req;

	if ((size_t)snprintf(path, sizeof(path), "%s/private/qmgr",
	    local_conf.queue_dir) >= sizeof(path))
		return;
	if ((cl = ipc_connect(path, LOCAL_QMGR_TIMEOUT_MS)) == NULL) {
		log_debug("%s: cannot tell qmgr: %s", id, strerror(errno));
		return;
	}
	buf_init(&req, 4096);
	resp = attr_rec_new();
	if (ipc_request(&req, "new") < 0 || attr_put_str(&req, "id", id) < 0 ||
	    attr_end(&req) < 0 ||
	    ipc_call(cl, &req, resp, LOCAL_QMGR_TIMEOUT_MS) < 0)
		log_debug("%s: qmgr did not answer: %s", id, strerror(errno));
	attr_rec_free(&resp);
	buf_deinit(&req);
	ipc_client_free(&cl);
}

int
local_forward(const struct local_msg *msg, size_t idx, const char *sender,
    const struct alias_target *const *t, size_t n, char *newid,
    struct reply *r)
{
	const struct queue_env *env = msg->env;
	const struct queue_rcpt *orig = &env->rcpt[idx];
	struct queue_env *fenv;
	struct queue_writer *w;
	struct buf dt;
	char *orcpt, *s;
	size_t i;
	int rc = -1;

	fenv = queue_env_new();
	queue_env_set(&fenv->sender, sender);
	fenv->body = env->body;
	fenv->smtputf8 = env->smtputf8;
	fenv->ret = env->ret;
	queue_env_set(&fenv->envid, env->envid);
	queue_env_set(&fenv->proto, "local");
	orcpt = orig->orcpt != NULL ? xstrdup(orig->orcpt) :
	    forward_orcpt(orig->addr);
	for (i = 0; i < n; i++)
		(void)queue_env_add_rcpt(fenv, t[i]->addr, orcpt,
		    orig->notify);
	free(orcpt);

	w = queue_writer_new(local_conf.queue_dir, fenv, r);
	if (w == NULL) {
		queue_env_free(&fenv);
		return -1;
	}
	buf_init(&dt, 0);
	(void)buf_puts(&dt, "Delivered-To: ");
	for (s = orig->addr; *s != '\0'; s++)
		(void)buf_putc(&dt, (unsigned char)*s < 0x20 || *s == 0x7f ?
		    '?' : *s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
	(void)buf_puts(&dt, "\r\n");
	if (queue_writer_write(w, buf_cstr(&dt), buf_len(&dt)) < 0 ||
	    forward_copy(w, msg) < 0) {
		reply_set(r, 451, "4.3.0", "Error: queue file write error");
		goto out;
	}
	if (queue_writer_seal(w, r) < 0)
		goto out;
	if (queue_writer_sync(w) < 0) {
		log_err("%s: fsync of the new queue file %s: %s", env->id,
		    fenv->id, strerror(errno));
		reply_set(r, 451, "4.3.0", "Error: queue file write error");
		goto out;
	}
	if (queue_writer_commit(w, r) < 0)
		goto out;
	if (queue_dir_sync(local_conf.queue_dir, QUEUE_INCOMING) < 0) {
		/* renamed but perhaps not durable: keep it, but defer ours */
		log_err("%s: fsync of incoming/: %s", env->id,
		    strerror(errno));
		reply_set(r, 451, "4.3.0", "Error: queue file write error");
		goto out;
	}
	(void)snprintf(newid, QUEUE_ID_LEN + 1, "%s", fenv->id);
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (forwarded from %s)",
	    fenv->id, sender, (unsigned long long)queue_writer_size(w), n,
	    env->id);
	rc = 0;
out:
	buf_deinit(&dt);
	queue_writer_free(&w);
	queue_env_free(&fenv);
	if (rc == 0)
		forward_notify(newid);
	return rc;
}

void
local_bounce_members(const struct local_msg *msg, size_t idx,
    const struct alias_target *const *t, const struct reply *why, size_t n)
{
	const struct queue_env *env = msg->env;
	const struct queue_rcpt *orig = &env->rcpt[idx];
	const char *to = t[0]->owner != NULL ? t[0]->owner : env->sender;
	struct queue_env *benv;
	struct queue_rcpt *rc;
	struct dsn_info info;
	char id[QUEUE_ID_LEN + 1], *orcpt;
	size_t i;

	if (*env->sender == '\0' || n == 0)
		return;		/* never a notice to the null sender */
	benv = queue_env_new();
	memcpy(benv->id, env->id, sizeof(benv->id));
	benv->arrival = env->arrival;
	queue_env_set(&benv->sender, env->sender);
	benv->body = env->body;
	benv->smtputf8 = env->smtputf8;
	benv->ret = env->ret;
	queue_env_set(&benv->envid, env->envid);
	benv->content_offset = env->content_offset;
	benv->content_size = env->content_size;
	orcpt = orig->orcpt != NULL ? xstrdup(orig->orcpt) :
	    forward_orcpt(orig->addr);
	for (i = 0; i < n; i++) {
		rc = queue_env_add_rcpt(benv, t[i]->addr, orcpt, orig->notify);
		rc->status = QUEUE_R_FAILED;
		(void)snprintf(rc->dsn, sizeof(rc->dsn), "%s", why[i].dsn);
		queue_env_set(&rc->reason, why[i].text);
		rc->time = (int64_t)time(NULL);
	}
	free(orcpt);
	memset(&info, 0, sizeof(info));
	info.myhostname = local_conf.myhostname;
	if (dsn_queue(&info, benv, msg->fd, DSN_FAILURE, to,
	    local_conf.queue_dir, id) == 1) {
		log_info("%s: list member non-delivery notification: %s",
		    env->id, id);
		forward_notify(id);
	}
	queue_env_free(&benv);
}
