/*
 * job - one deliver request: queue file, destination, addresses, results
 *
 * The ipc handler checks the request, reads the queue file's envelope
 * (the content is read later, while it is sent) and answers IPC_DEFER;
 * the work starts from the loop, once one of smtp_max_sessions slots is
 * free.  Then:
 *
 *   1. the destination: the next hop when qmgr gives one, else the
 *      domain of the recipients (qmgr groups a request by destination).
 *      "domain[:port]" is looked up in DNS as MX, "[host][:port]" is
 *      not: its A/AAAA records, or the address itself;
 *   2. a cached connection to the same destination is taken if there is
 *      one; else
 *   3. MX records in preference order (a domain without MX: its own
 *      A/AAAA, RFC 5321 5.1; the null MX, RFC 7505: a bounce), each
 *      host's A then AAAA records, at most smtp_mx_address_limit
 *      addresses tried, one after another, until one of them gets as far
 *      as a mail transaction (conn.c);
 *   4. every recipient ends with a result; the job logs one line per
 *      recipient and answers qmgr: status=0, then per recipient
 *      rcpt_index, result, dsn, reason.
 *
 * When no address is left, the last failure decides for the recipients
 * still without a result, deferred when any failure on the way was
 * temporary (a dead first MX must not make a bounce of a DNS error at
 * the second).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "resolve.h"
#include "smtp.h"
#include "smtp_cmd.h"
#include "strnum.h"

static TAILQ_HEAD(, smtp_job) waiting = TAILQ_HEAD_INITIALIZER(waiting);

static void	job_next(struct smtp_job *);
static void	job_done(struct smtp_job *);

static const char *const result_log[] = {
	[SMTP_R_PENDING] = "deferred",
	[SMTP_R_SENT] = "sent",
	[SMTP_R_DEFERRED] = "deferred",
	[SMTP_R_FAILED] = "bounced",
};

static const char *const result_name[] = {
	[SMTP_R_PENDING] = "deferred",
	[SMTP_R_SENT] = "sent",
	[SMTP_R_DEFERRED] = "deferred",
	[SMTP_R_FAILED] = "failed",
};

static void
job_free(struct smtp_job **jp)
{
	struct smtp_job *job = *jp;

	if (job == NULL)
		return;
	dns_cancel(&job->dq);
	if (job->fd >= 0)
		(void)close(job->fd);
	queue_env_free(&job->env);
	free(job->rr);
	free(job->hosts);
	free(job->addrs);
	free(job);
	*jp = NULL;
}

/* ---- the request ------------------------------------------------------- */

static void	job_begin(struct ev *, void *);

int
smtp_job_deliver(struct ipc_req *req, void *arg)
{
	const struct attr_rec *a = ipc_req_attrs(req);
	const char *nexthop = attr_get_str(a, "nexthop");
	const char *id, *path, *why;
	struct smtp_job *job;
	bool is_corrupt;
	size_t i, n, *idx;

	(void)arg;
	if (nexthop != NULL && (*nexthop == '\0' ||
	    strlen(nexthop) > SMTP_HOST_MAX)) {
		ipc_req_reason(req, "bad nexthop=");
		return IPC_PERMFAIL;
	}
	if (queue_deliver_req(a, SMTP_RCPTS_MAX, &id, &path, &idx, &n,
	    &why) < 0) {
		ipc_req_reason(req, "%s", why);
		return IPC_PERMFAIL;
	}
	if (smtp_g.is_stopping) {
		free(idx);
		ipc_req_reason(req, "delivery agent stopping");
		return IPC_TEMPFAIL;
	}
	job = xcalloc(1, sizeof(*job));
	job->fd = -1;
	job->t_req = smtp_now();
	(void)snprintf(job->id, sizeof(job->id), "%s", id);
	(void)snprintf(job->path, sizeof(job->path), "%s", path);
	job->rr = xcalloc(n, sizeof(*job->rr));
	for (i = 0; i < n; i++)
		job->rr[job->nrr++].idx = idx[i];
	free(idx);
	if ((job->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_warn("%s: open %s: %s", id, path, strerror(errno));
		ipc_req_reason(req, "cannot open the queue file: %s",
		    strerror(errno));
		job_free(&job);
		return IPC_TEMPFAIL;
	}
	job->env = queue_env_new();
	if (queue_read(job->fd, job->env, &why, &is_corrupt) < 0) {
		log_warn("%s: %s: %s", id, path, why);
		ipc_req_reason(req, "cannot read the queue file: %s", why);
		job_free(&job);
		return IPC_TEMPFAIL;
	}
	if (strcmp(job->env->id, id) != 0) {
		log_warn("%s: %s holds message %s", id, path, job->env->id);
		ipc_req_reason(req, "queue file holds another message");
		job_free(&job);
		return IPC_TEMPFAIL;
	}
	for (i = 0; i < job->nrr; i++)
		if (job->rr[i].idx >= job->env->nrcpt) {
			ipc_req_reason(req, "rcpt_index %zu out of range",
			    job->rr[i].idx);
			job_free(&job);
			return IPC_PERMFAIL;
		}
	if (nexthop != NULL)
		(void)snprintf(job->dest, sizeof(job->dest), "%s", nexthop);
	job->arrival = queue_arrival_precise(job->env);
	job->req = req;
	smtp_g.njobs++;
	if (smtp_g.nactive < smtp_conf.max_sessions) {
		smtp_g.nactive++;
		ev_later(smtp_g.ev, job_begin, job);
	} else {
		job->is_waiting = true;
		TAILQ_INSERT_TAIL(&waiting, job, link);
	}
	return IPC_DEFER;
}

void
smtp_job_dequeue(void)
{
	struct smtp_job *job;

	while (smtp_g.nactive < smtp_conf.max_sessions &&
	    (job = TAILQ_FIRST(&waiting)) != NULL) {
		TAILQ_REMOVE(&waiting, job, link);
		job->is_waiting = false;
		smtp_g.nactive++;
		ev_later(smtp_g.ev, job_begin, job);
	}
}

void
smtp_job_abort_waiting(void)
{
	struct smtp_job *job;

	while ((job = TAILQ_FIRST(&waiting)) != NULL) {
		TAILQ_REMOVE(&waiting, job, link);
		job->is_waiting = false;
		smtp_g.nactive++;	/* job_done gives it back */
		job->t_start = smtp_now();
		smtp_job_rest(job, SMTP_R_DEFERRED, "4.3.2",
		    "delivery agent stopping");
		job_done(job);
	}
}

/* ---- results ------------------------------------------------------------ */

static void
job_vrcpt(struct smtp_job *job, size_t i, enum smtp_result res,
    const char *dsn, const char *fmt, va_list ap)
{
	struct smtp_rres *rr = &job->rr[i];

	rr->result = res;
	(void)snprintf(rr->dsn, sizeof(rr->dsn), "%s", dsn);
	(void)vsnprintf(rr->reason, sizeof(rr->reason), fmt, ap);
	if (job->conn != NULL && job->relay[0] != '\0') {
		(void)snprintf(rr->relay, sizeof(rr->relay), "%s", job->relay);
		(void)snprintf(rr->tls, sizeof(rr->tls), "%s", job->tls);
		rr->t_ready = job->t_ready;
	} else {
		(void)snprintf(rr->relay, sizeof(rr->relay), "none");
		(void)snprintf(rr->tls, sizeof(rr->tls), "none");
		rr->t_ready = 0;
	}
	rr->t_done = smtp_now();
}

void
smtp_job_rcpt(struct smtp_job *job, size_t i, enum smtp_result res,
    const char *dsn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	job_vrcpt(job, i, res, dsn, fmt, ap);
	va_end(ap);
}

void
smtp_job_rest(struct smtp_job *job, enum smtp_result res, const char *dsn,
    const char *fmt, ...)
{
	va_list ap;
	size_t i;

	for (i = 0; i < job->nrr; i++) {
		if (job->rr[i].result != SMTP_R_PENDING)
			continue;
		va_start(ap, fmt);
		job_vrcpt(job, i, res, dsn, fmt, ap);
		va_end(ap);
	}
}

/* job_delay - Postfix-like: two significant digits, whole seconds >= 10 */
static void
job_delay(char *out, size_t outsz, double d)
{
	if (d < 0)
		d = 0;
	if (d >= 10)
		(void)snprintf(out, outsz, "%.0f", d);
	else if (d < 0.01)
		(void)snprintf(out, outsz, "0");
	else
		(void)snprintf(out, outsz, "%.2g", d);
}

static void
job_log(const struct smtp_job *job, const struct smtp_rres *rr)
{
	const struct queue_rcpt *qr = &job->env->rcpt[rr->idx];
	char orig[SMTP_XTEXT_MAX + 1], origpart[SMTP_XTEXT_MAX + 16];
	char a[16], b[16], c[16], d[16];
	double t_ready = rr->t_ready > 0 ? rr->t_ready : rr->t_done;
	const char *semi;

	origpart[0] = '\0';
	if (qr->orcpt != NULL && (semi = strchr(qr->orcpt, ';')) != NULL &&
	    smtp_xtext_decode(semi + 1, orig, sizeof(orig)) == 0 &&
	    strcasecmp(orig, qr->addr) != 0)
		(void)snprintf(origpart, sizeof(origpart), ", orig_to=<%s>",
		    orig);
	job_delay(a, sizeof(a), job->t_req - job->arrival);
	job_delay(b, sizeof(b), job->t_start - job->t_req);
	job_delay(c, sizeof(c), t_ready - job->t_start);
	job_delay(d, sizeof(d), rr->t_done - t_ready);
	log_info("%s: to=<%s>%s, relay=%s, delay=%.2f, delays=%s/%s/%s/%s, "
	    "dsn=%s, status=%s (%s), tls=%s", job->id, qr->addr, origpart,
	    rr->relay, rr->t_done - job->arrival < 0 ? 0 :
	    rr->t_done - job->arrival, a, b, c, d, rr->dsn,
	    result_log[rr->result], rr->reason, rr->tls);
}

static void
job_done(struct smtp_job *job)
{
	struct buf *out;
	size_t i;
	int rc = 0;

	if (job->conn != NULL)
		smtp_conn_abort(job->conn);
	job->conn = NULL;
	smtp_job_rest(job, SMTP_R_DEFERRED, "4.3.0", "delivery did not "
	    "finish");
	out = ipc_req_out(job->req);
	for (i = 0; i < job->nrr; i++) {
		job_log(job, &job->rr[i]);
		rc |= attr_put_uint(out, "rcpt_index", job->rr[i].idx);
		rc |= attr_put_str(out, "result",
		    result_name[job->rr[i].result]);
		rc |= attr_put_str(out, "dsn", job->rr[i].dsn);
		rc |= attr_put_str(out, "reason", job->rr[i].reason);
		if (job->rr[i].result == SMTP_R_SENT)
			rc |= attr_put_str(out, "relay", job->rr[i].dsn_passed ?
			    "passed" : "relayed");
	}
	if (rc != 0) {
		log_warn("%s: answer too large", job->id);
		ipc_req_reason(job->req, "answer too large");
		ipc_req_done(&job->req, IPC_TEMPFAIL);
	} else
		ipc_req_done(&job->req, IPC_OK);
	job_free(&job);
	smtp_g.nactive--;
	smtp_g.njobs--;
	smtp_job_dequeue();
	smtp_stopping_check();
}

void
smtp_job_finished(struct smtp_job *job)
{
	job->conn = NULL;
	job_done(job);
}

/* ---- the destination ----------------------------------------------------- */

static void
job_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * job_dest_parse - "domain", "domain:port", "[host]", "[host]:port",
 * "[ipv6:addr]" (lib/resolve's next-hop syntax); 0 or -1
 */
static int
job_dest_parse(struct smtp_job *job)
{
	if (resolve_nexthop_parse(job->dest, job->host, sizeof(job->host),
	    &job->port, &job->is_bracket) < 0)
		return -1;
	job_lower(job->host);
	job_lower(job->dest);
	return 0;
}

static void
job_add_addr(struct smtp_job *job, int family, const void *ip,
    const char *host)
{
	struct smtp_addr *a;
	size_t i, len = family == AF_INET ? 4 : 16;

	if (job->naddrs >= SMTP_ADDRS_MAX)
		return;
	for (i = 0; i < job->naddrs; i++)
		if (job->addrs[i].family == family &&
		    memcmp(job->addrs[i].ip, ip, len) == 0)
			return;
	job->addrs = xreallocarray(job->addrs, job->naddrs + 1,
	    sizeof(*job->addrs));
	a = &job->addrs[job->naddrs++];
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(a->ip, ip, len);
	if (inet_ntop(family, ip, a->text, sizeof(a->text)) == NULL)
		(void)snprintf(a->text, sizeof(a->text), "?");
	(void)snprintf(a->host, sizeof(a->host), "%s", host);
	a->port = job->port;
}

static void
job_add_host(struct smtp_job *job, const char *name)
{
	if (job->nhosts >= SMTP_HOSTS_MAX || *name == '\0')
		return;
	job->hosts = xreallocarray(job->hosts, job->nhosts + 1,
	    sizeof(*job->hosts));
	(void)snprintf(job->hosts[job->nhosts++], sizeof(job->hosts[0]),
	    "%s", name);
}

static void
job_err(struct smtp_job *job, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
job_err(struct smtp_job *job, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	job->has_err = true;
	if (dsn[0] == '4')
		job->any_temp = true;
	(void)snprintf(job->err_dsn, sizeof(job->err_dsn), "%s", dsn);
	va_start(ap, fmt);
	(void)vsnprintf(job->err_text, sizeof(job->err_text), fmt, ap);
	va_end(ap);
}

/* job_final - no address left: the last failure decides */
static void
job_final(struct smtp_job *job)
{
	char dsn[12];

	if (!job->has_err)
		job_err(job, "4.4.3", "no address found for %s", job->host);
	(void)snprintf(dsn, sizeof(dsn), "%s", job->err_dsn);
	if (job->any_temp && dsn[0] == '5')
		dsn[0] = '4';
	smtp_job_rest(job, dsn[0] == '5' ? SMTP_R_FAILED : SMTP_R_DEFERRED,
	    dsn, "%s", job->err_text);
	job_done(job);
}

static void
job_on_addr(void *arg, struct dns_answer *ans)
{
	struct smtp_job *job = arg;
	const char *host = job->hosts[job->next_host];
	size_t i;

	job->dq = NULL;
	if (ans->status == DNS_OK) {
		for (i = 0; i < ans->n; i++)
			if (ans->rr[i].family == AF_INET ||
			    ans->rr[i].family == AF_INET6)
				job_add_addr(job, ans->rr[i].family,
				    ans->rr[i].addr, host);
	} else if (ans->status != DNS_NODATA) {
		/* after the A query: keep its error unless AAAA finds one */
		if (ans->status == DNS_TEMPFAIL)
			job_err(job, "4.4.3", "Host or domain name not found. "
			    "Name service error for name=%s type=%s: %s",
			    host, job->dns_type == DNS_A ? "A" : "AAAA",
			    ans->why);
		else if (job->dns_type == DNS_A)
			job_err(job, "5.4.4", "Host or domain name not found. "
			    "Name service error for name=%s type=A: %s",
			    host, ans->why);
	}
	dns_answer_free(&ans);
	if (job->dns_type == DNS_A) {
		job->dns_type = DNS_AAAA;
		job->dq = dns_query(smtp_g.dns, host, DNS_AAAA, job_on_addr,
		    job);
		return;
	}
	job->next_host++;
	job_next(job);
}

/* job_next - connect to the next address, or find more, or give up */
static void
job_next(struct smtp_job *job)
{
	unsigned char ip[16];
	const char *host;

	for (;;) {
		if (smtp_g.is_stopping) {
			job_err(job, "4.3.2", "delivery agent stopping");
			break;
		}
		if (job->ntried >= smtp_conf.mx_address_limit)
			break;
		if (job->next_addr < job->naddrs) {
			job->ntried++;
			(void)smtp_conn_open(job, &job->addrs[job->next_addr++],
			    false);
			return;
		}
		if (job->next_host >= job->nhosts)
			break;
		host = job->hosts[job->next_host];
		if (inet_pton(AF_INET, host, ip) == 1)
			job_add_addr(job, AF_INET, ip, host);
		else if (inet_pton(AF_INET6, host, ip) == 1)
			job_add_addr(job, AF_INET6, ip, host);
		else {
			job->dns_type = DNS_A;
			job->dq = dns_query(smtp_g.dns, host, DNS_A,
			    job_on_addr, job);
			return;
		}
		job->next_host++;
	}
	job_final(job);
}

static void
job_on_mx(void *arg, struct dns_answer *ans)
{
	struct smtp_job *job = arg;
	size_t i;

	job->dq = NULL;
	switch (ans->status) {
	case DNS_OK:
		if (dns_null_mx(ans)) {
			smtp_job_rest(job, SMTP_R_FAILED, "5.1.10", "Domain %s "
			    "does not accept mail (nullMX)", job->host);
			dns_answer_free(&ans);
			job_done(job);
			return;
		}
		for (i = 0; i < ans->n; i++)
			if (ans->rr[i].name != NULL)
				job_add_host(job, ans->rr[i].name);
		break;
	case DNS_NODATA:
		/* RFC 5321 5.1: no MX, the domain itself is the host */
		job_add_host(job, job->host);
		break;
	case DNS_NXDOMAIN:
	case DNS_PERMFAIL:
		smtp_job_rest(job, SMTP_R_FAILED, "5.1.2", "Host or domain "
		    "name not found. Name service error for name=%s type=MX: "
		    "%s", job->host, ans->status == DNS_NXDOMAIN ?
		    "Host not found" : ans->why);
		dns_answer_free(&ans);
		job_done(job);
		return;
	default:
		smtp_job_rest(job, SMTP_R_DEFERRED, "4.4.3", "Host or domain "
		    "name not found. Name service error for name=%s type=MX: "
		    "Host not found, try again (%s)", job->host, ans->why);
		dns_answer_free(&ans);
		job_done(job);
		return;
	}
	dns_answer_free(&ans);
	if (job->nhosts == 0) {
		smtp_job_rest(job, SMTP_R_DEFERRED, "4.4.3", "MX records of "
		    "%s name no host", job->host);
		job_done(job);
		return;
	}
	job_next(job);
}

static void
job_resolve(struct smtp_job *job)
{
	if (job->is_bracket) {
		job_add_host(job, job->host);
		job_next(job);
		return;
	}
	job->dq = dns_query(smtp_g.dns, job->host, DNS_MX, job_on_mx, job);
}

static void
job_begin(struct ev *ev, void *arg)
{
	struct smtp_job *job = arg;
	const char *rcpt, *at;
	struct reply r;
	struct smtp_conn *c;

	(void)ev;
	job->t_start = smtp_now();
	if (job->dest[0] == '\0') {
		rcpt = job->env->rcpt[job->rr[0].idx].addr;
		if ((at = strrchr(rcpt, '@')) == NULL || at[1] == '\0') {
			smtp_job_rest(job, SMTP_R_FAILED, "5.1.3", "no domain "
			    "in the recipient address");
			job_done(job);
			return;
		}
		(void)snprintf(job->dest, sizeof(job->dest), "%s", at + 1);
	}
	if (job_dest_parse(job) < 0) {
		log_warn("%s: bad next hop \"%s\"", job->id, job->dest);
		smtp_job_rest(job, SMTP_R_DEFERRED, "4.3.5", "bad next hop "
		    "\"%s\"", job->dest);
		job_done(job);
		return;
	}
	if (smtp_tls_policy(job, &r) < 0) {
		smtp_job_rest(job, SMTP_R_DEFERRED, r.dsn, "%s", r.text);
		job_done(job);
		return;
	}
	if ((c = smtp_conn_take(job->dest, job)) != NULL) {
		job->is_cached_conn = true;
		smtp_conn_resume(c);
		return;		/* job may be gone */
	}
	job_resolve(job);
}

/* ---- what the connection reports --------------------------------------- */

void
smtp_job_ready(struct smtp_job *job)
{
	job->t_ready = smtp_now();
	smtp_job_conn(job);
}

void
smtp_job_conn(struct smtp_job *job)
{
	(void)snprintf(job->relay, sizeof(job->relay), "%s",
	    smtp_conn_relay(job->conn));
	(void)snprintf(job->tls, sizeof(job->tls), "%s",
	    smtp_conn_tls(job->conn));
}

void
smtp_job_addr_failed(struct smtp_job *job, const char *dsn, bool retry_plain,
    const struct smtp_addr *a, const char *fmt, ...)
{
	char text[SMTP_REASON_MAX + 1];
	va_list ap;

	job->conn = NULL;
	if (job->is_cached_conn) {
		/* the cached connection broke: start over the normal way */
		job->is_cached_conn = false;
		job->t_start = smtp_now();
		job_resolve(job);
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_info("%s: %s", job->id, text);
	job_err(job, dsn, "%s", text);
	if (retry_plain && a != NULL) {
		(void)smtp_conn_open(job, a, true);
		return;
	}
	job_next(job);
}
