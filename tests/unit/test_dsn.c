/*
 * test_dsn - delivery status notifications: who gets one, the MIME
 * structure, the status fields, what of the original is returned,
 * hostile reasons, addresses and ENVIDs, and a parse by Python's email
 * package (a parser we did not write)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "dsn.h"
#include "mem.h"
#include "queue.h"
#include "smtp_cmd.h"

#define PREFIX	"v=1 this stands for the envelope records\r\n"
#define TRAILER	"rcpt_index=0 status=failed TRAILER-NOT-CONTENT"

static const char *const sample =
    "Received: from client.example.org by mx.example.test\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.test\r\n"
    "Subject: lunch\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "\r\n"
    "Shall we have lunch?\r\n"
    "BODY-MARKER\r\n";

struct span {
	const char *p;
	size_t	 len;
};

struct msg {
	char	*text;
	size_t	 len;
	struct span head;		/* top header, through its CRLF */
	char	 boundary[128];
	struct span part_head[8], part_body[8];
	size_t	 nparts;
};

static struct queue_env *
mkenv(const char *sender)
{
	struct queue_env *env = queue_env_new();

	(void)snprintf(env->id, sizeof(env->id), "0A1B2C3D4E5F");
	env->arrival = 1700000000;
	queue_env_set(&env->sender, sender);
	return env;
}

static struct queue_rcpt *
addrc(struct queue_env *env, const char *addr, const char *orcpt,
    unsigned notify, enum queue_rstatus st, const char *dsn,
    const char *reason)
{
	struct queue_rcpt *rc = queue_env_add_rcpt(env, addr, orcpt, notify);

	rc->status = st;
	(void)snprintf(rc->dsn, sizeof(rc->dsn), "%s", dsn);
	queue_env_set(&rc->reason, reason);
	rc->time = 1700003600;
	return rc;
}

/* put the content in a file between other bytes, as a queue file has */
static int
content_file(struct queue_env *env, const char *content, size_t len)
{
	char path[] = "/tmp/test_dsn.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	(void)unlink(path);
	assert_int_equal(write(fd, PREFIX, strlen(PREFIX)),
	    (ssize_t)strlen(PREFIX));
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(write(fd, TRAILER, strlen(TRAILER)),
	    (ssize_t)strlen(TRAILER));
	env->content_offset = strlen(PREFIX);
	env->content_size = len;
	return fd;
}

static const struct dsn_info info_default = {
	.myhostname = "mx.example.test",
	.now = 1700007200,
	.queue_lifetime = 5 * 86400,
	.size_limit = 0,
};

/* build with content (len bytes, NULL: no content part) */
static int
build_n(struct queue_env *env, const char *content, size_t len,
    enum dsn_kind kind, const struct dsn_info *info, char **out_r,
    struct dsn_result *res)
{
	struct buf out;
	int fd = -1, rc;

	if (content != NULL)
		fd = content_file(env, content, len);
	buf_init(&out, 0);
	rc = dsn_build(info != NULL ? info : &info_default, env, fd, kind,
	    &out, res);
	if (rc <= 0)
		assert_int_equal(buf_len(&out), 0);
	*out_r = buf_steal(&out);
	if (fd >= 0)
		(void)close(fd);
	return rc;
}

static int
build(struct queue_env *env, const char *content, enum dsn_kind kind,
    char **out_r)
{
	return build_n(env, content, content != NULL ? strlen(content) : 0,
	    kind, NULL, out_r, NULL);
}

static const char *
find(const char *p, size_t len, const char *needle)
{
	return memmem(p, len, needle, strlen(needle));
}

static size_t
count(const char *p, size_t len, const char *needle)
{
	size_t n = 0, k = strlen(needle);
	const char *q;

	while ((q = memmem(p, len, needle, k)) != NULL) {
		n++;
		len -= (size_t)(q - p) + k;
		p = q + k;
	}
	return n;
}

/*
 * field - the unfolded value of the first "name:" field in a header
 * block, leading white space removed; caller frees; NULL if none
 */
static char *
field(struct span blk, const char *name)
{
	const char *p = blk.p, *end = blk.p + blk.len, *eol;
	size_t nlen = strlen(name);
	struct buf v;

	while (p < end) {
		eol = find(p, (size_t)(end - p), "\r\n");
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			buf_init(&v, 0);
			p += nlen + 1;
			while (p < eol && (*p == ' ' || *p == '\t'))
				p++;
			assert_int_equal(buf_append(&v, p, (size_t)(eol - p)),
			    0);
			/* RFC 5322 2.2.3: unfolding removes only the CRLF */
			while (eol + 2 < end && (eol[2] == ' ' ||
			    eol[2] == '\t')) {
				p = eol + 2;
				eol = find(p, (size_t)(end - p), "\r\n");
				if (eol == NULL)
					eol = end;
				assert_int_equal(buf_append(&v, p,
				    (size_t)(eol - p)), 0);
			}
			return buf_steal(&v);
		}
		p = eol + 2;
	}
	return NULL;
}

/* has_text - needle is in the span once lines are joined with a space */
static bool
has_text(struct span s, const char *needle)
{
	struct buf b;
	size_t i;
	bool found;

	buf_init(&b, 0);
	for (i = 0; i < s.len; i++) {
		if (s.p[i] == '\r' && i + 1 < s.len && s.p[i + 1] == '\n') {
			assert_int_equal(buf_putc(&b, ' '), 0);
			i++;
		} else
			assert_int_equal(buf_putc(&b, s.p[i]), 0);
	}
	found = strstr(buf_cstr(&b), needle) != NULL;
	buf_deinit(&b);
	return found;
}

static void
assert_field(struct span blk, const char *name, const char *want)
{
	char *v = field(blk, name);

	if (v == NULL)
		fail_msg("no %s field in: %.*s", name, (int)blk.len, blk.p);
	assert_string_equal(v, want);
	free(v);
}

static void
assert_no_field(struct span blk, const char *name)
{
	char *v = field(blk, name);

	if (v != NULL)
		fail_msg("unexpected %s: %s", name, v);
}

/* check line ends and lengths: CRLF only, header lines <= 78 */
static void
check_lines(const char *p, size_t len, size_t max)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n') {
			assert_true(i > 0 && p[i - 1] == '\r');
			col = 0;
			continue;
		}
		if (p[i] == '\r')
			assert_true(i + 1 < len && p[i + 1] == '\n');
		else if (++col > max)
			fail_msg("line longer than %zu: %.60s", max,
			    p + i - col + 1);
	}
}

/* parse - split a message into its header and MIME parts */
static void
parse(char *text, struct msg *m)
{
	const char *hend, *p, *q, *end;
	char *ct, *b, *e, delim[160];

	memset(m, 0, sizeof(*m));
	m->text = text;
	m->len = strlen(text);
	hend = find(text, m->len, "\r\n\r\n");
	assert_non_null(hend);
	m->head.p = text;
	m->head.len = (size_t)(hend - text) + 2;
	ct = field(m->head, "Content-Type");
	assert_non_null(ct);
	assert_non_null(strstr(ct, "multipart/report;"));
	assert_non_null(strstr(ct, "report-type=delivery-status"));
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += strlen("boundary=\"");
	e = strchr(b, '"');
	assert_non_null(e);
	assert_true(e - b > 0 && e - b <= 70);	/* RFC 2046 5.1.1 */
	(void)snprintf(m->boundary, sizeof(m->boundary), "%.*s",
	    (int)(e - b), b);
	free(ct);

	(void)snprintf(delim, sizeof(delim), "\r\n--%s", m->boundary);
	end = text + m->len;
	p = find(hend, (size_t)(end - hend), delim);
	assert_non_null(p);
	for (;;) {
		p += strlen(delim);
		if (end - p >= 4 && memcmp(p, "--\r\n", 4) == 0) {
			assert_true(p + 4 == end);	/* nothing after */
			break;
		}
		assert_true(end - p >= 2 && memcmp(p, "\r\n", 2) == 0);
		p += 2;
		q = find(p, (size_t)(end - p), delim);
		assert_non_null(q);
		assert_true(m->nparts < 8);
		hend = find(p, (size_t)(q - p), "\r\n\r\n");
		assert_non_null(hend);
		m->part_head[m->nparts].p = p;
		m->part_head[m->nparts].len = (size_t)(hend - p) + 2;
		m->part_body[m->nparts].p = hend + 4;
		m->part_body[m->nparts].len = (size_t)(q - hend - 4);
		m->nparts++;
		p = q;
	}
	/* the boundary is nowhere else: header, parts, close */
	assert_int_equal(count(text, m->len, m->boundary), m->nparts + 2);
}

/* ds_block - block k of the delivery-status part (0: per message) */
static struct span
ds_block(const struct msg *m, size_t k)
{
	struct span body = m->part_body[1], s;
	const char *p = body.p, *end = body.p + body.len, *q;

	for (;;) {
		q = find(p, (size_t)(end - p), "\r\n\r\n");
		if (k == 0) {
			s.p = p;
			s.len = q != NULL ? (size_t)(q - p) + 2 :
			    (size_t)(end - p);
			return s;
		}
		if (q == NULL)
			fail_msg("no delivery-status block %zu", k);
		p = q + 4;
		k--;
	}
}

static size_t
ds_nblocks(const struct msg *m)
{
	return count(m->part_body[1].p, m->part_body[1].len, "\r\n\r\n") + 1;
}

static void
assert_part_type(const struct msg *m, size_t i, const char *want)
{
	char *ct = field(m->part_head[i], "Content-Type");

	assert_non_null(ct);
	if (strncmp(ct, want, strlen(want)) != 0)
		fail_msg("part %zu is %s, want %s", i, ct, want);
	free(ct);
}

/* ---- who gets a notice ---------------------------------------------- */

static void
test_wanted_table(void **state)
{
	static const struct {
		unsigned notify;
		enum queue_rstatus st;
		enum dsn_kind kind;
		int want;
	} t[] = {
		{ 0, QUEUE_R_FAILED, DSN_FAILURE, 1 },
		{ 0, QUEUE_R_DEFERRED, DSN_DELAY, 1 },
		{ 0, QUEUE_R_SENT, DSN_SUCCESS, 0 },
		{ 0, QUEUE_R_PENDING, DSN_FAILURE, 0 },
		{ 0, QUEUE_R_SENT, DSN_FAILURE, 0 },
		{ 0, QUEUE_R_DEFERRED, DSN_FAILURE, 0 },
		{ 0, QUEUE_R_FAILED, DSN_DELAY, 0 },
		{ SMTP_NOTIFY_NEVER, QUEUE_R_FAILED, DSN_FAILURE, 0 },
		{ SMTP_NOTIFY_NEVER, QUEUE_R_DEFERRED, DSN_DELAY, 0 },
		{ SMTP_NOTIFY_NEVER, QUEUE_R_SENT, DSN_SUCCESS, 0 },
		/* NEVER with anything else is a syntax error upstream;
		 * if it gets here, NEVER wins */
		{ SMTP_NOTIFY_NEVER | SMTP_NOTIFY_FAILURE, QUEUE_R_FAILED,
		    DSN_FAILURE, 0 },
		{ SMTP_NOTIFY_SUCCESS, QUEUE_R_SENT, DSN_SUCCESS, 1 },
		{ SMTP_NOTIFY_SUCCESS, QUEUE_R_FAILED, DSN_FAILURE, 0 },
		{ SMTP_NOTIFY_SUCCESS, QUEUE_R_DEFERRED, DSN_DELAY, 0 },
		{ SMTP_NOTIFY_FAILURE, QUEUE_R_FAILED, DSN_FAILURE, 1 },
		{ SMTP_NOTIFY_FAILURE, QUEUE_R_DEFERRED, DSN_DELAY, 0 },
		{ SMTP_NOTIFY_DELAY, QUEUE_R_DEFERRED, DSN_DELAY, 1 },
		{ SMTP_NOTIFY_DELAY, QUEUE_R_FAILED, DSN_FAILURE, 0 },
		{ SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
		    SMTP_NOTIFY_DELAY, QUEUE_R_SENT, DSN_SUCCESS, 1 },
	};
	struct queue_env *env = mkenv("alice@example.org");
	struct queue_env *null_env = mkenv("");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		addrc(env, "r@example.test", NULL, t[i].notify, t[i].st,
		    "5.0.0", NULL);
		addrc(null_env, "r@example.test", NULL, t[i].notify,
		    t[i].st, "5.0.0", NULL);
		if (dsn_wanted(env, i, t[i].kind) != t[i].want)
			fail_msg("case %zu", i);
		/* never to the null sender, whatever was asked */
		assert_int_equal(dsn_wanted(null_env, i, t[i].kind), 0);
	}
	/* RFC 3461 4: a next hop with DSN took over: no success report
	 * from us; without DSN it is one ("relayed") */
	addrc(env, "r@example.test", NULL, SMTP_NOTIFY_SUCCESS, QUEUE_R_SENT,
	    "2.0.0", NULL);
	env->rcpt[env->nrcpt - 1].relay = QUEUE_RELAY_PASSED;
	assert_int_equal(dsn_wanted(env, env->nrcpt - 1, DSN_SUCCESS), 0);
	env->rcpt[env->nrcpt - 1].relay = QUEUE_RELAY_RELAYED;
	assert_int_equal(dsn_wanted(env, env->nrcpt - 1, DSN_SUCCESS), 1);
	/* out of range */
	assert_int_equal(dsn_wanted(env, env->nrcpt, DSN_FAILURE), 0);
	assert_int_equal(dsn_wanted(env, (size_t)-1, DSN_FAILURE), 0);
	queue_env_free(&env);
	queue_env_free(&null_env);
}

static void
test_null_sender_nothing(void **state)
{
	struct queue_env *env = mkenv("");
	struct buf out;
	char *text;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 unknown");
	addrc(env, "carol@example.test", NULL, SMTP_NOTIFY_FAILURE,
	    QUEUE_R_FAILED, "5.1.1", "550 5.1.1 unknown");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 0);
	assert_string_equal(text, "");
	free(text);
	/* out is left as it was */
	buf_init(&out, 0);
	assert_int_equal(buf_puts(&out, "before"), 0);
	assert_int_equal(dsn_build(&info_default, env, -1, DSN_FAILURE, &out,
	    NULL), 0);
	assert_string_equal(buf_cstr(&out), "before");
	buf_deinit(&out);
	/* a sender that is nothing but control characters is no sender */
	queue_env_set(&env->sender, "\r\n\t");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 0);
	free(text);
	queue_env_free(&env);
}

static void
test_notify_never_nothing(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct dsn_result res;
	struct msg m;
	char *text;

	(void)state;
	addrc(env, "bob@example.test", NULL, SMTP_NOTIFY_NEVER,
	    QUEUE_R_FAILED, "5.1.1", "550 5.1.1 unknown");
	addrc(env, "sent@example.test", NULL, 0, QUEUE_R_SENT, "2.0.0",
	    "250 ok");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 0);
	free(text);
	assert_int_equal(build(env, sample, DSN_SUCCESS, &text), 0);
	free(text);
	assert_int_equal(build(env, sample, DSN_DELAY, &text), 0);
	free(text);

	/* a second recipient without NEVER: only that one is listed */
	addrc(env, "carol@example.test", NULL, 0, QUEUE_R_FAILED, "5.2.2",
	    "552 5.2.2 mailbox full");
	assert_int_equal(build_n(env, sample, strlen(sample), DSN_FAILURE,
	    NULL, &text, &res), 1);
	assert_int_equal(res.nrcpt, 1);
	parse(text, &m);
	assert_null(find(m.part_body[0].p, m.part_body[0].len, "bob@"));
	assert_null(find(m.part_body[1].p, m.part_body[1].len, "bob@"));
	assert_null(find(text, m.len, "sent@example.test"));
	assert_int_equal(ds_nblocks(&m), 2);
	assert_field(ds_block(&m, 1), "Final-Recipient",
	    "rfc822; carol@example.test");
	free(text);
	queue_env_free(&env);
}

/* ---- structure and fields ------------------------------------------- */

static void
test_failure_structure(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct dsn_result res;
	struct msg m;
	struct span b;
	char *text, *v;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 <bob@example.test>: Recipient address rejected");
	addrc(env, "ok@example.test", NULL, 0, QUEUE_R_SENT, "2.0.0", NULL);
	addrc(env, "full@example.test", NULL, SMTP_NOTIFY_FAILURE |
	    SMTP_NOTIFY_DELAY, QUEUE_R_FAILED, "5.2.2", "mailbox full");
	addrc(env, "odd@example.test", NULL, 0, QUEUE_R_FAILED, "2.0.0",
	    NULL);
	assert_int_equal(build_n(env, sample, strlen(sample), DSN_FAILURE,
	    NULL, &text, &res), 1);
	assert_int_equal(res.nrcpt, 3);
	assert_false(res.is_8bit);
	assert_false(res.smtputf8);
	check_lines(text, strlen(text), 998);
	parse(text, &m);
	check_lines(m.head.p, m.head.len, 78);

	assert_field(m.head, "From",
	    "MAILER-DAEMON@mx.example.test (Mail Delivery System)");
	assert_field(m.head, "To", "<alice@example.org>");
	assert_field(m.head, "Subject", "Undelivered Mail Returned to Sender");
	assert_field(m.head, "Auto-Submitted", "auto-replied");
	assert_field(m.head, "MIME-Version", "1.0");
	assert_field(m.head, "Content-Transfer-Encoding", "7bit");
	v = field(m.head, "Date");
	assert_non_null(v);
	/* "Tue, 14 Nov 2023 23:13:20 +0100": day, date, time, zone */
	assert_true(strlen(v) >= 30 && v[3] == ',' && (v[strlen(v) - 5] ==
	    '+' || v[strlen(v) - 5] == '-'));
	assert_non_null(strstr(v, "2023"));
	free(v);
	v = field(m.head, "Message-ID");
	assert_non_null(v);
	assert_true(v[0] == '<' && v[strlen(v) - 1] == '>');
	assert_non_null(strstr(v, "@mx.example.test>"));
	assert_null(strchr(v, ' '));
	free(v);

	assert_int_equal(m.nparts, 3);
	assert_part_type(&m, 0, "text/plain");
	assert_part_type(&m, 1, "message/delivery-status");
	assert_part_type(&m, 2, "message/rfc822");

	/* part 1 names each recipient with its reason */
	b = m.part_body[0];
	assert_non_null(find(b.p, b.len, "mx.example.test"));
	assert_non_null(find(b.p, b.len, "<bob@example.test>:"));
	assert_non_null(find(b.p, b.len, "Recipient address rejected"));
	assert_non_null(find(b.p, b.len, "<full@example.test>:"));
	assert_non_null(find(b.p, b.len, "mailbox full"));
	assert_null(find(b.p, b.len, "ok@example.test"));
	check_lines(b.p, b.len, 78);

	/* part 2: per message, then one block per recipient */
	assert_int_equal(ds_nblocks(&m), 4);
	b = ds_block(&m, 0);
	assert_field(b, "Reporting-MTA", "dns; mx.example.test");
	assert_no_field(b, "Original-Envelope-Id");
	v = field(b, "Arrival-Date");
	assert_non_null(v);
	assert_non_null(strstr(v, "Nov 2023"));
	free(v);
	b = ds_block(&m, 1);
	assert_no_field(b, "Original-Recipient");
	assert_field(b, "Final-Recipient", "rfc822; bob@example.test");
	assert_field(b, "Action", "failed");
	assert_field(b, "Status", "5.1.1");
	assert_field(b, "Diagnostic-Code", "smtp; 550 5.1.1 "
	    "<bob@example.test>: Recipient address rejected");
	v = field(b, "Last-Attempt-Date");
	assert_non_null(v);
	free(v);
	assert_no_field(b, "Will-Retry-Until");
	b = ds_block(&m, 2);
	assert_field(b, "Final-Recipient", "rfc822; full@example.test");
	assert_field(b, "Status", "5.2.2");
	/* not an SMTP reply: our own diagnostic type */
	assert_field(b, "Diagnostic-Code", "X-Posta; mailbox full");
	b = ds_block(&m, 3);
	/* a status that does not fit a failure gets the generic one */
	assert_field(b, "Status", "5.0.0");
	assert_no_field(b, "Diagnostic-Code");
	check_lines(m.part_body[1].p, m.part_body[1].len, 78);

	/* part 3: the whole message as it was, nothing of the file around */
	assert_int_equal(m.part_body[2].len, strlen(sample));
	assert_memory_equal(m.part_body[2].p, sample, strlen(sample));
	assert_null(strstr(text, "TRAILER-NOT-CONTENT"));
	assert_null(strstr(text, "envelope records"));
	free(text);
	queue_env_free(&env);
}

static void
test_ret_hdrs(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct msg m;
	char *text, *v;
	const char *hdr_end;

	(void)state;
	env->ret = SMTP_RET_HDRS;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 unknown");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_int_equal(m.nparts, 3);
	assert_part_type(&m, 2, "text/rfc822-headers");
	hdr_end = strstr(sample, "\r\n\r\n") + 2;
	assert_int_equal(m.part_body[2].len, (size_t)(hdr_end - sample));
	assert_memory_equal(m.part_body[2].p, sample, m.part_body[2].len);
	assert_null(strstr(text, "BODY-MARKER"));
	assert_null(strstr(text, "Shall we"));
	v = field(m.part_head[2], "Content-Description");
	assert_non_null(v);
	free(v);
	free(text);

	/* RET=FULL returns it all */
	env->ret = SMTP_RET_FULL;
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "message/rfc822");
	assert_non_null(strstr(text, "BODY-MARKER"));
	free(text);
	queue_env_free(&env);
}

static void
test_oversize_headers_only(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct dsn_info info = info_default;
	struct buf big;
	struct msg m;
	char *text;
	size_t i;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 unknown");
	buf_init(&big, 0);
	assert_int_equal(buf_puts(&big, "Subject: big\r\nX-A: 1\r\n\r\n"),
	    0);
	for (i = 0; i < 200; i++)
		assert_int_equal(buf_puts(&big, "BODY-MARKER "
		    "0123456789012345678901234567890123456789\r\n"), 0);
	info.size_limit = 4096;
	assert_int_equal(build_n(env, big.data, big.len, DSN_FAILURE, &info,
	    &text, NULL), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "text/rfc822-headers");
	assert_int_equal(m.part_body[2].len, strlen("Subject: big\r\n"
	    "X-A: 1\r\n"));
	assert_null(strstr(text, "BODY-MARKER"));
	/* the reader is told why */
	assert_true(has_text(m.part_body[0], "passes the size limit"));
	free(text);

	/* exactly at the limit it is still returned whole */
	info.size_limit = big.len;
	assert_int_equal(build_n(env, big.data, big.len, DSN_FAILURE, &info,
	    &text, NULL), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "message/rfc822");
	assert_int_equal(m.part_body[2].len, big.len);
	free(text);

	/* the default limit is 50000 bytes */
	while (big.len <= DSN_SIZE_LIMIT_DEFAULT)
		assert_int_equal(buf_puts(&big, "BODY-MARKER more text\r\n"),
		    0);
	assert_int_equal(build_n(env, big.data, big.len, DSN_FAILURE, NULL,
	    &text, NULL), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "text/rfc822-headers");
	assert_null(strstr(text, "BODY-MARKER"));
	free(text);
	buf_deinit(&big);
	queue_env_free(&env);
}

static void
test_oversize_header_cut(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct dsn_info info = info_default;
	struct buf big;
	struct msg m;
	char *text;
	size_t i;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    NULL);
	/* a header alone far larger than the limit, and no body at all */
	buf_init(&big, 0);
	for (i = 0; i < 3000; i++)
		assert_int_equal(buf_printf(&big, "X-Filler-%zu: %s\r\n", i,
		    "abcdefghijklmnopqrstuvwxyz"), 0);
	info.size_limit = 2000;
	assert_int_equal(build_n(env, big.data, big.len, DSN_FAILURE, &info,
	    &text, NULL), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "text/rfc822-headers");
	assert_true(m.part_body[2].len > 1000);
	assert_true(m.part_body[2].len <= 2000);
	/* cut after a whole line */
	assert_memory_equal(m.part_body[2].p + m.part_body[2].len - 2, "\r\n",
	    2);
	assert_memory_equal(m.part_body[2].p, big.data, m.part_body[2].len);
	free(text);

	/* a header of one line longer than the limit: cut, CRLF added */
	buf_reset(&big);
	assert_int_equal(buf_puts(&big, "X-Long: "), 0);
	for (i = 0; i < 3000; i++)
		assert_int_equal(buf_putc(&big, 'a'), 0);
	assert_int_equal(buf_puts(&big, "\r\n\r\nbody\r\n"), 0);
	assert_int_equal(build_n(env, big.data, big.len, DSN_FAILURE, &info,
	    &text, NULL), 1);
	parse(text, &m);
	assert_int_equal(m.part_body[2].len, 2002);
	check_lines(text, strlen(text), 2000);
	free(text);

	/* an empty message, returned whole or as its (empty) header */
	env->ret = SMTP_RET_FULL;
	assert_int_equal(build(env, "", DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "message/rfc822");
	assert_int_equal(m.part_body[2].len, 0);
	free(text);
	assert_int_equal(build(env, "", DSN_DELAY, &text), 0);
	free(text);
	env->ret = SMTP_RET_HDRS;
	assert_int_equal(build(env, "", DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "text/rfc822-headers");
	assert_int_equal(m.part_body[2].len, 0);
	free(text);

	/* a message that is only a body (starts with the empty line) */
	env->ret = SMTP_RET_HDRS;
	assert_int_equal(build(env, "\r\nonly a body\r\n", DSN_FAILURE,
	    &text), 1);
	parse(text, &m);
	assert_int_equal(m.part_body[2].len, 0);
	assert_null(strstr(text, "only a body"));
	free(text);
	buf_deinit(&big);
	queue_env_free(&env);
}

static void
test_orcpt_envid_decoded(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct msg m;
	struct span b;
	char *text;

	(void)state;
	queue_env_set(&env->envid, "QQ+2B123+3Dabc");
	addrc(env, "bob@example.test", "rfc822;Bob+2Bsales@example.test", 0,
	    QUEUE_R_FAILED, "5.1.1", "550 5.1.1 unknown");
	/* malformed xtext: no Original-Recipient rather than garbage */
	addrc(env, "c@example.test", "rfc822;bad+zz@x", 0, QUEUE_R_FAILED,
	    "5.1.1", NULL);
	/* an encoded CRLF in ORCPT must not make a header */
	addrc(env, "d@example.test",
	    "rfc822;d@x+0D+0AX-Injected:+20yes+0D+0A", 0, QUEUE_R_FAILED,
	    "5.1.1", NULL);
	/* no type */
	addrc(env, "e@example.test", "e@example.test", 0, QUEUE_R_FAILED,
	    "5.1.1", NULL);
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	parse(text, &m);
	b = ds_block(&m, 0);
	assert_field(b, "Original-Envelope-Id", "QQ+123=abc");
	b = ds_block(&m, 1);
	assert_field(b, "Original-Recipient", "rfc822; Bob+sales@example.test");
	assert_field(b, "Final-Recipient", "rfc822; bob@example.test");
	/* the human part says which address it was sent to */
	assert_non_null(find(m.part_body[0].p, m.part_body[0].len,
	    "Bob+sales@example.test"));
	assert_no_field(ds_block(&m, 2), "Original-Recipient");
	b = ds_block(&m, 3);
	assert_field(b, "Original-Recipient",
	    "rfc822; d@x X-Injected: yes");
	assert_null(strstr(text, "\nX-Injected"));
	assert_no_field(ds_block(&m, 4), "Original-Recipient");
	free(text);

	/* an ENVID with an encoded CRLF stays on its field */
	queue_env_set(&env->envid, "a+0D+0ASubject:+20evil");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_field(ds_block(&m, 0), "Original-Envelope-Id",
	    "a Subject: evil");
	assert_null(strstr(text, "\nSubject: evil"));
	free(text);
	/* a malformed ENVID is left out */
	queue_env_set(&env->envid, "a=b");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_no_field(ds_block(&m, 0), "Original-Envelope-Id");
	free(text);
	queue_env_free(&env);
}

static void
test_reply_injection(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct buf evil;
	struct msg m;
	char *text, *v;
	size_t i;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 no such user\r\nX-Injected: yes\r\n\r\n"
	    "--fake-boundary\r\nContent-Type: text/html\r\n\r\n<b>\x01\x7f"
	    "\xe9t\xe9\tend\n.\r\nBcc: x@evil\rX-Bare-CR: 1");
	/* a reply far too long, with and without spaces */
	buf_init(&evil, 0);
	assert_int_equal(buf_puts(&evil, "554 5.7.1 "), 0);
	for (i = 0; i < 3000; i++)
		assert_int_equal(buf_puts(&evil, i % 7 == 6 ? "word " : "w"),
		    0);
	addrc(env, "c@example.test", NULL, 0, QUEUE_R_FAILED, "5.7.1",
	    evil.data);
	buf_reset(&evil);
	for (i = 0; i < 5000; i++)
		assert_int_equal(buf_putc(&evil, 'z'), 0);
	addrc(env, "d@example.test", NULL, 0, QUEUE_R_FAILED, "5.7.1",
	    evil.data);
	buf_deinit(&evil);

	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	check_lines(text, strlen(text), 998);
	parse(text, &m);
	assert_int_equal(m.nparts, 3);
	/* no line anywhere starts with the injected names */
	assert_null(strstr(text, "\nX-Injected"));
	assert_null(strstr(text, "\nBcc:"));
	assert_null(strstr(text, "\nX-Bare-CR"));
	assert_null(strstr(text, "\n--fake-boundary"));
	assert_null(strstr(text, "\ntext/html"));
	assert_null(strchr(text, '\x01'));
	assert_null(strchr(text, '\x7f'));
	assert_int_equal(ds_nblocks(&m), 4);
	v = field(ds_block(&m, 1), "Diagnostic-Code");
	assert_non_null(v);
	assert_string_equal(v, "smtp; 550 5.1.1 no such user X-Injected: yes "
	    "--fake-boundary Content-Type: text/html <b> ?t?"
	    " end . Bcc: x@evil X-Bare-CR: 1");
	free(v);
	/* capped, and folded where it had spaces */
	v = field(ds_block(&m, 2), "Diagnostic-Code");
	assert_non_null(v);
	assert_true(strlen(v) <= strlen("smtp; ") + DSN_REASON_MAX);
	assert_true(strlen(v) > 400);
	free(v);
	check_lines(ds_block(&m, 2).p, ds_block(&m, 2).len, 78);
	v = field(ds_block(&m, 3), "Diagnostic-Code");
	assert_non_null(v);
	assert_int_equal(strlen(v), strlen("X-Posta; ") + DSN_REASON_MAX);
	free(v);
	/* the recipients' blocks are what they should be */
	assert_field(ds_block(&m, 1), "Action", "failed");
	assert_field(ds_block(&m, 3), "Final-Recipient",
	    "rfc822; d@example.test");
	free(text);
	queue_env_free(&env);
}

static void
test_8bit_content_unchanged(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	static const char content[] =
	    "Subject: caf\xc3\xa9\r\n"
	    "Content-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "d\xe9j\xe0 vu \xff\xfe\x80\r\n"
	    "a line with a lone\rCR and\x01 control\r\n"
	    ".\r\n"
	    "--\r\n";
	struct dsn_result res;
	struct msg m;
	char *text;

	(void)state;
	env->body = SMTP_BODY_8BITMIME;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    NULL);
	assert_int_equal(build_n(env, content, sizeof(content) - 1,
	    DSN_FAILURE, NULL, &text, &res), 1);
	assert_true(res.is_8bit);
	assert_false(res.smtputf8);
	parse(text, &m);
	assert_part_type(&m, 2, "message/rfc822");
	assert_field(m.part_head[2], "Content-Transfer-Encoding", "8bit");
	assert_field(m.head, "Content-Transfer-Encoding", "8bit");
	assert_int_equal(m.part_body[2].len, sizeof(content) - 1);
	assert_memory_equal(m.part_body[2].p, content, sizeof(content) - 1);
	free(text);

	/* with SMTPUTF8 a UTF-8 header makes it message/global */
	env->smtputf8 = true;
	assert_int_equal(build(env, content, DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_part_type(&m, 2, "message/global");
	free(text);
	queue_env_free(&env);
}

static void
test_utf8_addresses(void **state)
{
	struct queue_env *env = mkenv("j\xc3\xb6rg@example.org");
	struct dsn_result res;
	struct msg m;
	char *text;

	(void)state;
	env->smtputf8 = true;
	addrc(env, "\xe7\x94\xb0\xe4\xb8\xad@example.test", NULL, 0,
	    QUEUE_R_FAILED, "5.1.1", "550 5.1.1 unknown \xe7\x94\xb0");
	/* broken UTF-8 in an address is shown as '?' */
	addrc(env, "bad\xff\xfe@example.test", NULL, 0, QUEUE_R_FAILED,
	    "5.1.1", NULL);
	assert_int_equal(build_n(env, sample, strlen(sample), DSN_FAILURE,
	    NULL, &text, &res), 1);
	assert_true(res.smtputf8);
	assert_true(res.is_8bit);
	parse(text, &m);
	assert_field(m.head, "To", "<j\xc3\xb6rg@example.org>");
	assert_part_type(&m, 0, "text/plain; charset=utf-8");
	assert_part_type(&m, 1, "message/global-delivery-status");
	assert_field(ds_block(&m, 1), "Final-Recipient",
	    "utf-8; \xe7\x94\xb0\xe4\xb8\xad@example.test");
	/* reasons are ASCII only */
	assert_field(ds_block(&m, 1), "Diagnostic-Code",
	    "smtp; 550 5.1.1 unknown ???");
	assert_field(ds_block(&m, 2), "Final-Recipient",
	    "rfc822; bad??@example.test");
	free(text);
	queue_env_free(&env);
}

static void
test_delay_notice(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct msg m;
	struct span b;
	char *text, *v;

	(void)state;
	addrc(env, "slow@example.net", NULL, 0, QUEUE_R_DEFERRED, "4.4.1",
	    "connect to mx.example.net[192.0.2.1]:25: Connection refused");
	addrc(env, "gone@example.net", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    NULL);
	addrc(env, "q@example.net", NULL, SMTP_NOTIFY_FAILURE,
	    QUEUE_R_DEFERRED, "4.4.1", NULL);
	addrc(env, "odd@example.net", NULL, SMTP_NOTIFY_DELAY,
	    QUEUE_R_DEFERRED, "5.1.1", "421 4.7.0 try later");
	addrc(env, "said@example.net", NULL, 0, QUEUE_R_DEFERRED, "4.3.0",
	    "host mx.example.net[192.0.2.1] said: 451 4.3.0 busy");
	assert_int_equal(build(env, sample, DSN_DELAY, &text), 1);
	parse(text, &m);
	assert_field(m.head, "Subject", "Delayed Mail (still being retried)");
	assert_int_equal(ds_nblocks(&m), 4);
	b = ds_block(&m, 1);
	assert_field(b, "Final-Recipient", "rfc822; slow@example.net");
	assert_field(b, "Action", "delayed");
	assert_field(b, "Status", "4.4.1");
	assert_field(b, "Diagnostic-Code", "X-Posta; connect to "
	    "mx.example.net[192.0.2.1]:25: Connection refused");
	v = field(b, "Will-Retry-Until");
	assert_non_null(v);
	/* arrival 2023-11-14 + 5 days */
	assert_true(strstr(v, "19 Nov 2023") != NULL ||
	    strstr(v, "20 Nov 2023") != NULL);
	free(v);
	b = ds_block(&m, 2);
	assert_field(b, "Final-Recipient", "rfc822; odd@example.net");
	assert_field(b, "Status", "4.0.0");
	assert_field(b, "Diagnostic-Code", "smtp; 421 4.7.0 try later");
	/* the remote reply is found after "said:" */
	assert_field(ds_block(&m, 3), "Diagnostic-Code",
	    "smtp; 451 4.3.0 busy");
	assert_true(has_text(m.part_body[0],
	    "host mx.example.net[192.0.2.1] said: 451 4.3.0 busy"));
	/* a delay notice returns the header only */
	assert_part_type(&m, 2, "text/rfc822-headers");
	assert_null(strstr(text, "BODY-MARKER"));
	assert_non_null(find(m.part_body[0].p, m.part_body[0].len,
	    "warning"));
	free(text);
	queue_env_free(&env);
}

static void
test_success_notice(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct msg m;
	char *text;

	(void)state;
	addrc(env, "plain@example.test", NULL, 0, QUEUE_R_SENT, "2.0.0",
	    NULL);
	addrc(env, "asked@example.test", "rfc822;asked@example.test",
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, QUEUE_R_SENT, "2.0.0",
	    "250 2.0.0 Ok: queued as XYZ");
	assert_int_equal(build(env, sample, DSN_SUCCESS, &text), 1);
	parse(text, &m);
	assert_field(m.head, "Subject", "Successful Mail Delivery Report");
	assert_int_equal(ds_nblocks(&m), 2);
	assert_field(ds_block(&m, 1), "Final-Recipient",
	    "rfc822; asked@example.test");
	assert_field(ds_block(&m, 1), "Action", "delivered");
	assert_field(ds_block(&m, 1), "Status", "2.0.0");
	assert_null(strstr(text, "plain@example.test"));
	assert_part_type(&m, 2, "text/rfc822-headers");
	/* same address in ORCPT: not repeated as "originally" */
	assert_null(find(m.part_body[0].p, m.part_body[0].len, "originally"));
	free(text);
	queue_env_free(&env);
}

static void
test_no_content_part(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct msg m;
	char *text;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    NULL);
	assert_int_equal(build(env, NULL, DSN_FAILURE, &text), 1);
	parse(text, &m);
	assert_int_equal(m.nparts, 2);
	assert_part_type(&m, 1, "message/delivery-status");
	free(text);
	queue_env_free(&env);
}

static void
test_errors_leave_out_unchanged(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct buf out;
	int fd;

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    NULL);
	/* the envelope claims more content than the file holds */
	fd = content_file(env, sample, strlen(sample));
	env->content_size = 100000;
	env->ret = SMTP_RET_FULL;
	buf_init(&out, 0);
	assert_int_equal(buf_puts(&out, "keep"), 0);
	errno = 0;
	assert_int_equal(dsn_build(&info_default, env, fd, DSN_FAILURE, &out,
	    NULL), -1);
	assert_int_equal(errno, EIO);
	assert_string_equal(buf_cstr(&out), "keep");
	/* and for a header-only read, with the offset past the end */
	env->content_size = 10;
	env->content_offset = 1000000;
	env->ret = SMTP_RET_HDRS;
	assert_int_equal(dsn_build(&info_default, env, fd, DSN_FAILURE, &out,
	    NULL), -1);
	assert_int_equal(errno, EIO);
	assert_string_equal(buf_cstr(&out), "keep");
	(void)close(fd);
	/* a bad descriptor */
	env->content_offset = 0;
	assert_int_equal(dsn_build(&info_default, env, 999, DSN_FAILURE, &out,
	    NULL), -1);
	assert_int_equal(errno, EBADF);
	buf_deinit(&out);

	/* out's limit too small: EMSGSIZE, nothing half-written */
	fd = content_file(env, sample, strlen(sample));
	buf_init(&out, 600);
	assert_int_equal(buf_puts(&out, "keep"), 0);
	assert_int_equal(dsn_build(&info_default, env, fd, DSN_FAILURE, &out,
	    NULL), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_deinit(&out);
	(void)close(fd);

	/* a bad kind */
	buf_init(&out, 0);
	assert_int_equal(dsn_build(&info_default, env, -1, (enum dsn_kind)7,
	    &out, NULL), -1);
	assert_int_equal(errno, EINVAL);
	buf_deinit(&out);
	queue_env_free(&env);
}

static void
test_boundary_and_hostile_host(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct dsn_info info = info_default;
	struct buf content;
	struct msg m;
	char *text, *t2, b1[128];

	(void)state;
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 --0A1B2C3D4E5F.");
	/* content full of things that look like our boundaries */
	buf_init(&content, 0);
	assert_int_equal(buf_puts(&content, "Subject: b\r\n\r\n"
	    "--0A1B2C3D4E5F.\r\n--0A1B2C3D4E5F.0000000000000000/posta-dsn\r\n"
	    "--0A1B2C3D4E5F.0000000000000000/posta-dsn--\r\n"), 0);
	assert_int_equal(build_n(env, content.data, content.len, DSN_FAILURE,
	    NULL, &text, NULL), 1);
	parse(text, &m);	/* checks the boundary occurs only as one */
	assert_int_equal(m.nparts, 3);
	assert_int_equal(m.part_body[2].len, content.len);
	(void)snprintf(b1, sizeof(b1), "%s", m.boundary);
	/* two notices do not share a boundary or a Message-ID */
	assert_int_equal(build_n(env, content.data, content.len, DSN_FAILURE,
	    NULL, &t2, NULL), 1);
	parse(t2, &m);
	assert_string_not_equal(b1, m.boundary);
	free(t2);
	free(text);

	/* a boundary that occurs in the content is never used */
	info.boundary = "0A1B2C3D4E5F.0000000000000000/posta-dsn";
	assert_int_equal(build_n(env, content.data, content.len, DSN_FAILURE,
	    &info, &text, NULL), 1);
	parse(text, &m);
	assert_string_not_equal(m.boundary, info.boundary);
	assert_int_equal(m.nparts, 3);
	assert_int_equal(m.part_body[2].len, content.len);
	free(text);
	/* nor one that a remote reply contains; a free one is used */
	info.boundary = "5.1.1";
	assert_int_equal(build_n(env, content.data, content.len, DSN_FAILURE,
	    &info, &text, NULL), 1);
	parse(text, &m);
	assert_string_not_equal(m.boundary, "5.1.1");
	free(text);
	info.boundary = "only-for-this-test";
	assert_int_equal(build_n(env, content.data, content.len, DSN_FAILURE,
	    &info, &text, NULL), 1);
	parse(text, &m);
	assert_string_equal(m.boundary, "only-for-this-test");
	free(text);
	info.boundary = NULL;
	buf_deinit(&content);

	/* a hostname with line breaks cannot add fields either */
	info.myhostname = "evil\r\nX-Injected: 1";
	assert_int_equal(build_n(env, sample, strlen(sample), DSN_FAILURE,
	    &info, &text, NULL), 1);
	assert_null(strstr(text, "\nX-Injected"));
	parse(text, &m);
	assert_field(ds_block(&m, 0), "Reporting-MTA",
	    "dns; evil-X-Injected:-1");
	free(text);
	info.myhostname = NULL;
	assert_int_equal(build_n(env, sample, strlen(sample), DSN_FAILURE,
	    &info, &text, NULL), 1);
	parse(text, &m);
	assert_field(ds_block(&m, 0), "Reporting-MTA", "dns; localhost");
	free(text);
	queue_env_free(&env);
}

static void
test_many_recipients(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	struct dsn_result res;
	char addr[64], *text;
	struct msg m;
	size_t i;

	(void)state;
	for (i = 0; i < 2000; i++) {
		(void)snprintf(addr, sizeof(addr), "user%zu@example.test", i);
		addrc(env, addr, NULL, 0, i % 2 ? QUEUE_R_FAILED :
		    QUEUE_R_SENT, "5.1.1", "550 5.1.1 unknown");
	}
	assert_int_equal(build_n(env, sample, strlen(sample), DSN_FAILURE,
	    NULL, &text, &res), 1);
	assert_int_equal(res.nrcpt, 1000);
	parse(text, &m);
	assert_int_equal(ds_nblocks(&m), 1001);
	assert_field(ds_block(&m, 1000), "Final-Recipient",
	    "rfc822; user1999@example.test");
	free(text);
	queue_env_free(&env);
}

/* ---- a parser we did not write -------------------------------------- */

static const char py_script[] =
    "import email, sys\n"
    "m = email.message_from_bytes(sys.stdin.buffer.read())\n"
    "print('type', m.get_content_type())\n"
    "print('report-type', m.get_param('report-type'))\n"
    "print('to', m['To'])\n"
    "print('subject', m['Subject'])\n"
    "print('defects', len(m.defects))\n"
    "parts = m.get_payload()\n"
    "print('parts', len(parts))\n"
    "for p in parts:\n"
    "    print('part', p.get_content_type())\n"
    "ds = parts[1].get_payload()\n"
    "print('envid', ds[0]['Original-Envelope-Id'])\n"
    "print('mta', ds[0]['Reporting-MTA'])\n"
    "for r in ds[1:]:\n"
    "    print('rcpt', r['Final-Recipient'], '|', r['Action'], '|',\n"
    "        r['Status'], '|', r['X-Injected'])\n"
    "orig = parts[2].get_payload()\n"
    "if isinstance(orig, list):\n"
    "    print('orig-subject', orig[0]['Subject'])\n"
    "    print('orig-body', ' '.join(orig[0].get_payload().split()))\n"
    "else:\n"
    "    print('orig-text', len(orig))\n"
    "inj = [k for k in m.keys() if k.lower() == 'x-injected']\n"
    "for p in m.walk():\n"
    "    inj += [k for k in p.keys() if k.lower() == 'x-injected']\n"
    "print('injected', len(inj))\n";

/* run Python's email package on text; its output, caller frees */
static char *
python_parse(const char *text)
{
	char mpath[] = "/tmp/test_dsn_msg.XXXXXX";
	char spath[] = "/tmp/test_dsn_py.XXXXXX";
	char cmd[256], line[1024];
	struct buf res;
	FILE *fp;
	int fd;

	fd = mkstemp(mpath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	(void)close(fd);
	fd = mkstemp(spath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, py_script, sizeof(py_script) - 1),
	    (ssize_t)sizeof(py_script) - 1);
	(void)close(fd);
	(void)snprintf(cmd, sizeof(cmd), "python3 %s < %s 2>&1", spath,
	    mpath);
	fp = popen(cmd, "r");
	assert_non_null(fp);
	buf_init(&res, 0);
	while (fgets(line, sizeof(line), fp) != NULL)
		assert_int_equal(buf_puts(&res, line), 0);
	assert_int_equal(pclose(fp), 0);
	(void)unlink(mpath);
	(void)unlink(spath);
	return buf_steal(&res);
}

static void
assert_has_line(const char *out, const char *line)
{
	char all[8192], want[1024];

	/* a whole line: search "\nLINE\n" in "\n" + out */
	(void)snprintf(all, sizeof(all), "\n%s", out);
	(void)snprintf(want, sizeof(want), "\n%s\n", line);
	if (strstr(all, want) == NULL)
		fail_msg("python did not say \"%s\":\n%s", line, out);
}

static void
test_python_email_parses_it(void **state)
{
	struct queue_env *env = mkenv("alice@example.org");
	char *text, *out;

	(void)state;
	queue_env_set(&env->envid, "E+2B1");
	addrc(env, "bob@example.test", NULL, 0, QUEUE_R_FAILED, "5.1.1",
	    "550 5.1.1 unknown\r\nX-Injected: yes");
	addrc(env, "ok@example.test", NULL, 0, QUEUE_R_SENT, "2.0.0", NULL);
	addrc(env, "full@example.test", NULL, 0, QUEUE_R_FAILED, "5.2.2",
	    "552 5.2.2 over quota");
	assert_int_equal(build(env, sample, DSN_FAILURE, &text), 1);
	out = python_parse(text);
	assert_has_line(out, "type multipart/report");
	assert_has_line(out, "report-type delivery-status");
	assert_has_line(out, "to <alice@example.org>");
	assert_has_line(out, "subject Undelivered Mail Returned to Sender");
	assert_has_line(out, "defects 0");
	assert_has_line(out, "parts 3");
	assert_has_line(out, "part text/plain");
	assert_has_line(out, "part message/delivery-status");
	assert_has_line(out, "part message/rfc822");
	assert_has_line(out, "envid E+1");
	assert_has_line(out, "mta dns; mx.example.test");
	assert_has_line(out,
	    "rcpt rfc822; bob@example.test | failed | 5.1.1 | None");
	assert_has_line(out,
	    "rcpt rfc822; full@example.test | failed | 5.2.2 | None");
	assert_null(strstr(out, "ok@example.test"));
	assert_has_line(out, "orig-subject lunch");
	assert_has_line(out, "orig-body Shall we have lunch? BODY-MARKER");
	assert_has_line(out, "injected 0");
	free(out);
	free(text);

	/* a delay warning with the header only */
	env->rcpt[0].status = QUEUE_R_DEFERRED;
	(void)snprintf(env->rcpt[0].dsn, sizeof(env->rcpt[0].dsn), "4.4.1");
	assert_int_equal(build(env, sample, DSN_DELAY, &text), 1);
	out = python_parse(text);
	assert_has_line(out, "type multipart/report");
	assert_has_line(out, "defects 0");
	assert_has_line(out, "part text/rfc822-headers");
	assert_has_line(out,
	    "rcpt rfc822; bob@example.test | delayed | 4.4.1 | None");
	assert_null(strstr(out, "full@example.test"));
	free(out);
	free(text);
	queue_env_free(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted_table),
		cmocka_unit_test(test_null_sender_nothing),
		cmocka_unit_test(test_notify_never_nothing),
		cmocka_unit_test(test_reply_injection),
		cmocka_unit_test(test_orcpt_envid_decoded),
		cmocka_unit_test(test_errors_leave_out_unchanged),
		cmocka_unit_test(test_boundary_and_hostile_host),
		cmocka_unit_test(test_oversize_headers_only),
		cmocka_unit_test(test_oversize_header_cut),
		cmocka_unit_test(test_failure_structure),
		cmocka_unit_test(test_ret_hdrs),
		cmocka_unit_test(test_8bit_content_unchanged),
		cmocka_unit_test(test_utf8_addresses),
		cmocka_unit_test(test_delay_notice),
		cmocka_unit_test(test_success_notice),
		cmocka_unit_test(test_no_content_part),
		cmocka_unit_test(test_many_recipients),
		cmocka_unit_test(test_python_email_parses_it),
	};

	return cmocka_run_group_tests_name("dsn", tests, NULL, NULL);
}
