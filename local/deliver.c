/*
 * deliver - one deliver request: the queue file, then each recipient
 *
 * Runs in a worker thread.  The queue file is opened read-only (local
 * never writes it: qmgr records the outcome), its envelope read with
 * queue_read() and its header scanned once for Delivered-To: lines.
 * Each recipient is then checked for a forwarding loop, expanded
 * through the aliases, and each target delivered into its Maildir or
 * forwarded in a new queue message; the recipient's result sums up its
 * targets:
 *
 *   any target deferred         deferred (nothing forwarded this time:
 *                               the retry forwards, so no duplicate)
 *   else any target delivered   sent
 *   else                        failed, with the first target's reason
 *
 * One log line per target, Postfix-like, with orig_to= when it differs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cfg.h"
#include "ipc.h"
#include "local.h"
#include "log.h"
#include "map.h"
#include "mem.h"
#include "userdb.h"

static const char *const local_status_name[] = {
	[LOCAL_SENT] = "sent",
	[LOCAL_DEFERRED] = "deferred",
	[LOCAL_FAILED] = "bounced",
};

static void
local_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void
local_maps_close(struct map ***maps, size_t *n)
{
	size_t i;

	for (i = 0; i < *n; i++)
		map_close(&(*maps)[i]);
	free(*maps);
	*maps = NULL;
	*n = 0;
}

/* local_maps_open - the tables of a list; plain names are skipped */
static int
local_maps_open(const char *setting, const char *list, char *const *items,
    size_t nitems, struct map ***maps, size_t *n, struct buf *errs)
{
	const char *pos = list;
	char spec[4096];
	struct map *m;
	size_t i;
	int rc = 1;

	/* list != NULL: a setting's text; else items[nitems] (may be none) */
	for (i = 0; list == NULL ? i < nitems :
	    (rc = cfg_list_next(&pos, spec, sizeof(spec))) > 0; i++) {
		if (list == NULL) {
			if (strchr(items[i], ':') == NULL)
				continue;
			(void)snprintf(spec, sizeof(spec), "%s", items[i]);
		}
		if ((m = map_open(spec, errs)) == NULL)
			return -1;
		*maps = xreallocarray(*maps, *n + 1, sizeof(**maps));
		(*maps)[(*n)++] = m;
	}
	if (rc < 0) {
		(void)buf_printf(errs, "%s: a table name is too long",
		    setting);
		return -1;
	}
	return 0;
}

void
local_ctx_close(struct local_ctx *ctx)
{
	local_maps_close(&ctx->maps, &ctx->nmaps);
	local_maps_close(&ctx->dmaps, &ctx->ndmaps);
	local_maps_close(&ctx->vmaps, &ctx->nvmaps);
	userdb_close(&ctx->udb);
	ctx->is_open = false;
}

/*
 * local_ctx_open - open this worker's tables the first time (and again
 * after a failure): a table that cannot be opened defers the mail.
 */
int
local_ctx_open(struct local_ctx *ctx, struct reply *r)
{
	struct buf errs;

	if (ctx->is_open)
		return 0;
	buf_init(&errs, 64 * 1024);
	if (local_maps_open("alias_maps", local_conf.alias_maps, NULL, 0,
	    &ctx->maps, &ctx->nmaps, &errs) < 0 ||
	    local_maps_open("mydestination", NULL, local_conf.mydest,
	    local_conf.nmydest, &ctx->dmaps, &ctx->ndmaps, &errs) < 0 ||
	    local_maps_open("virtual_mailbox_domains", NULL, local_conf.virt,
	    local_conf.nvirt, &ctx->vmaps, &ctx->nvmaps, &errs) < 0 ||
	    (ctx->udb = userdb_open(local_conf.user_database, &errs)) ==
	    NULL) {
		log_err("cannot open the tables: %s", buf_cstr(&errs));
		buf_deinit(&errs);
		local_ctx_close(ctx);
		reply_set(r, 451, "4.3.0", "Temporary lookup failure");
		return -1;
	}
	buf_deinit(&errs);
	ctx->is_open = true;
	return 0;
}

void
local_log(const struct local_msg *msg, const char *to, const char *orig_to,
    const char *dsn, enum local_result res, const char *text)
{
	struct timeval tv;
	double delay;

	(void)gettimeofday(&tv, NULL);
	delay = (double)tv.tv_sec + (double)tv.tv_usec / 1e6 - msg->arrival;
	if (delay < 0)
		delay = 0;
	if (orig_to != NULL && strcasecmp(orig_to, to) != 0)
		log_info("%s: to=<%s>, orig_to=<%s>, relay=local, "
		    "delay=%.2f, dsn=%s, status=%s (%s)", msg->env->id, to,
		    orig_to, delay, dsn, local_status_name[res], text);
	else
		log_info("%s: to=<%s>, relay=local, delay=%.2f, dsn=%s, "
		    "status=%s (%s)", msg->env->id, to, delay, dsn,
		    local_status_name[res], text);
}

bool
local_dt_has(const struct local_msg *msg, const char *key)
{
	size_t i;

	for (i = 0; i < msg->ndt; i++)
		if (strcmp(msg->dt[i], key) == 0)
			return true;
	return false;
}

/* local_dt_add - one Delivered-To: value (after the colon) */
static void
local_dt_add(struct local_msg *msg, const char *v, size_t len)
{
	char *s;

	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
		v++;
		len -= 2;
	}
	if (len == 0 || msg->ndt >= LOCAL_DT_MAX)
		return;
	s = xstrndup(v, len);
	local_lower(s);
	msg->dt = xreallocarray(msg->dt, msg->ndt + 1, sizeof(*msg->dt));
	msg->dt[msg->ndt++] = s;
}

/* local_header_end - length of the header in data (up to the empty line) */
static size_t
local_header_end(const char *data, size_t len, bool *is_done_r)
{
	const char *p = data, *end = data + len, *nl;

	*is_done_r = false;
	if (len > 0 && (data[0] == '\n' || (len > 1 && data[0] == '\r' &&
	    data[1] == '\n'))) {
		*is_done_r = true;
		return 0;
	}
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = nl + 1;
		if (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end &&
		    p[1] == '\n'))) {
			*is_done_r = true;
			return (size_t)(p - data);
		}
	}
	return len;
}

/*
 * local_scan_header - collect the Delivered-To: values of the message
 * header, read in chunks up to the first empty line (at most
 * LOCAL_HEADER_MAX bytes).  0, or -1 on a read error.
 */
static int
local_scan_header(struct local_msg *msg)
{
	uint64_t size = msg->env->content_size;
	size_t cap = size < LOCAL_HEADER_MAX ? (size_t)size : LOCAL_HEADER_MAX;
	size_t got = 0, hlen = 0, want, n;
	char *data = xmalloc(cap + 1), *p, *end, *eol;
	bool is_done = false;
	ssize_t rd;

	while (got < cap && !is_done) {
		want = cap - got < 16384 ? cap - got : 16384;
		rd = pread(msg->fd, data + got, want,
		    (off_t)(msg->env->content_offset + got));
		if (rd < 0 && errno == EINTR)
			continue;
		if (rd <= 0) {
			free(data);
			return -1;
		}
		got += (size_t)rd;
		hlen = local_header_end(data, got, &is_done);
	}
	data[hlen] = '\0';
	for (p = data, end = data + hlen; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		n = (size_t)(eol - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 13 && strncasecmp(p, "Delivered-To:", 13) == 0)
			local_dt_add(msg, p + 13, n - 13);
	}
	free(data);
	return 0;
}

static void
local_rres_set(struct local_rres *rr, enum local_result res, const char *dsn,
    const char *text)
{
	rr->result = res;
	(void)snprintf(rr->dsn, sizeof(rr->dsn), "%s", dsn);
	(void)snprintf(rr->reason, sizeof(rr->reason), "%.*s",
	    (int)sizeof(rr->reason) - 1, text);
}

static enum local_result
local_reply_result(const struct reply *r)
{
	return r->code >= 400 && r->code < 500 ? LOCAL_DEFERRED : LOCAL_FAILED;
}

/* local_forward_all - queue the remote targets, one message per owner */
static int
local_forward_all(const struct local_msg *msg, size_t idx,
    const struct alias_result *res, struct buf *ids, struct reply *r)
{
	const struct alias_target **grp;
	const char *rcpt = msg->env->rcpt[idx].addr, *sender;
	char newid[QUEUE_ID_LEN + 1], text[64];
	bool *done;
	size_t i, k, n;
	int rc = 0;

	grp = xcalloc(res->n, sizeof(*grp));
	done = xcalloc(res->n, sizeof(*done));
	for (i = 0; i < res->n && rc == 0; i++) {
		if (!res->t[i].is_remote || done[i])
			continue;
		n = 0;
		for (k = i; k < res->n; k++) {
			const char *a = res->t[i].owner, *b = res->t[k].owner;

			if (!res->t[k].is_remote || done[k])
				continue;
			if ((a == NULL) != (b == NULL) ||
			    (a != NULL && strcmp(a, b) != 0))
				continue;
			grp[n++] = &res->t[k];
			done[k] = true;
		}
		/* the null sender stays null: no list owner gets bounces */
		sender = res->t[i].owner != NULL &&
		    *msg->env->sender != '\0' ? res->t[i].owner :
		    msg->env->sender;
		if (local_forward(msg, idx, sender, grp, n, newid, r) < 0) {
			rc = -1;
			break;
		}
		(void)buf_printf(ids, "%s%s", buf_len(ids) > 0 ? ", " : "",
		    newid);
		(void)snprintf(text, sizeof(text), "forwarded as %s", newid);
		local_log(msg, rcpt, NULL, "2.0.0", LOCAL_SENT, text);
	}
	free(grp);
	free(done);
	return rc;
}

static void
local_rcpt(struct local_ctx *ctx, struct local_msg *msg,
    struct local_rres *rr)
{
	const char *rcpt = msg->env->rcpt[rr->idx].addr;
	struct alias_result res;
	struct reply r, first_defer, first_fail;
	enum local_result tres;
	size_t i, nsent = 0, ndefer = 0, nfail = 0, nremote = 0;
	struct buf ids, why;
	const struct alias_target **failed_t;
	struct reply *failed_r;
	char *lc;

	lc = xstrdup(rcpt);
	local_lower(lc);
	if (local_dt_has(msg, lc)) {
		free(lc);
		local_rres_set(rr, LOCAL_FAILED, "5.4.6",
		    "mail forwarding loop");
		local_log(msg, rcpt, NULL, rr->dsn, rr->result, rr->reason);
		return;
	}
	free(lc);
	if (local_expand(ctx, rcpt, &res, &r) < 0) {
		local_rres_set(rr, local_reply_result(&r), r.dsn, r.text);
		local_log(msg, rcpt, NULL, rr->dsn, rr->result, rr->reason);
		return;
	}
	memset(&first_defer, 0, sizeof(first_defer));
	memset(&first_fail, 0, sizeof(first_fail));
	failed_t = xcalloc(res.n, sizeof(*failed_t));
	failed_r = xcalloc(res.n, sizeof(*failed_r));
	for (i = 0; i < res.n; i++) {
		if (res.t[i].is_remote) {
			nremote++;
			continue;
		}
		tres = local_mailbox(ctx, msg, &res.t[i], &r);
		if (tres == LOCAL_SENT) {
			nsent++;
			local_log(msg, res.t[i].addr, rcpt, "2.0.0", tres,
			    "delivered to maildir");
			continue;
		}
		if (tres == LOCAL_DEFERRED && ndefer++ == 0)
			first_defer = r;
		if (tres == LOCAL_FAILED) {
			if (nfail == 0)
				first_fail = r;
			failed_t[nfail] = &res.t[i];
			failed_r[nfail++] = r;
		}
		local_log(msg, res.t[i].addr, rcpt, r.dsn, tres, r.text);
	}
	buf_init(&ids, 4096);
	if (ndefer == 0 && nremote > 0) {
		if (local_forward_all(msg, rr->idx, &res, &ids, &r) < 0) {
			ndefer++;
			first_defer = r;
			local_log(msg, rcpt, NULL, r.dsn, LOCAL_DEFERRED,
			    r.text);
		}
	}
	if (ndefer > 0)
		local_rres_set(rr, LOCAL_DEFERRED, first_defer.dsn,
		    first_defer.text);
	else if (nsent > 0 || buf_len(&ids) > 0) {
		buf_init(&why, LOCAL_REASON_MAX);
		if (nsent > 0)
			(void)buf_puts(&why, "delivered to maildir");
		if (buf_len(&ids) > 0)
			(void)buf_printf(&why, "%sforwarded as %s",
			    nsent > 0 ? ", " : "", buf_cstr(&ids));
		local_rres_set(rr, LOCAL_SENT, "2.0.0", buf_cstr(&why));
		buf_deinit(&why);
		/* the members that failed are not lost silently */
		if (nfail > 0)
			local_bounce_members(msg, rr->idx, failed_t, failed_r,
			    nfail);
	} else
		local_rres_set(rr, LOCAL_FAILED, first_fail.dsn,
		    first_fail.text);
	buf_deinit(&ids);
	free(failed_t);
	free(failed_r);
	alias_result_free(&res);
}

void
local_deliver(struct local_ctx *ctx, struct local_job *j)
{
	struct local_msg msg;
	struct reply r;
	const char *why;
	bool is_corrupt;
	size_t i;

	memset(&msg, 0, sizeof(msg));
	msg.fd = -1;
	j->status = IPC_TEMPFAIL;
	if (local_ctx_open(ctx, &r) < 0) {
		(void)snprintf(j->reason, sizeof(j->reason),
		    "%s: cannot open alias_maps or user_database", j->id);
		return;
	}
	if ((msg.fd = open(j->path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_warn("%s: open %s: %s", j->id, j->path, strerror(errno));
		(void)snprintf(j->reason, sizeof(j->reason),
		    "cannot open the queue file: %s", strerror(errno));
		return;
	}
	msg.env = queue_env_new();
	if (queue_read(msg.fd, msg.env, &why, &is_corrupt) < 0) {
		log_warn("%s: %s: %s", j->id, j->path, why);
		(void)snprintf(j->reason, sizeof(j->reason),
		    "cannot read the queue file: %s", why);
		goto out;
	}
	if (strcmp(msg.env->id, j->id) != 0) {
		log_warn("%s: %s holds message %s", j->id, j->path,
		    msg.env->id);
		(void)snprintf(j->reason, sizeof(j->reason),
		    "queue file holds another message");
		goto out;
	}
	for (i = 0; i < j->nrr; i++)
		if (j->rr[i].idx >= msg.env->nrcpt) {
			j->status = IPC_PERMFAIL;
			(void)snprintf(j->reason, sizeof(j->reason),
			    "rcpt_index %zu out of range", j->rr[i].idx);
			goto out;
		}
	if (local_scan_header(&msg) < 0) {
		log_warn("%s: read %s: %s", j->id, j->path, errno != 0 ?
		    strerror(errno) : "truncated");
		(void)snprintf(j->reason, sizeof(j->reason),
		    "cannot read the queue file");
		goto out;
	}
	msg.arrival = queue_arrival_precise(msg.env);
	for (i = 0; i < j->nrr; i++)
		local_rcpt(ctx, &msg, &j->rr[i]);
	j->status = IPC_OK;
	j->reason[0] = '\0';
out:
	for (i = 0; i < msg.ndt; i++)
		free(msg.dt[i]);
	free(msg.dt);
	queue_env_free(&msg.env);
	(void)close(msg.fd);
}
