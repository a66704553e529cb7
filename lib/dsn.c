/*
 * dsn - build delivery status notifications (see dsn.h)
 *
 * The three parts of the multipart/report are built into buffers of
 * their own first; only then is a boundary chosen, random and checked
 * against all three, so that nothing a client or a remote server put in
 * the message, a reason or an address can end a part early.  Every text
 * that did not come from us goes through dsn_clean() before it is
 * written, and every field goes through dsn_fold().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "log.h"
#include "mem.h"
#include "smtp_cmd.h"

#define DSN_FOLD_COL	78		/* RFC 5322 2.1.1 SHOULD */
#define DSN_READ_CHUNK	(16 * 1024)
#define DSN_BOUNDARY_TRIES 64
#define DSN_OTYPE_MAX	32		/* ORCPT address type */

/* kind-dependent words */
static const struct {
	const char *name;
	const char *subject;
	const char *action;
	char	 dsn_class;		/* accepted status class ... */
	char	 dsn_class2;		/* ... or this one */
	const char *dsn_default;
	const char *no_reason;
	const char *descr;		/* Content-Description of part 3 */
} dsn_kinds[] = {
	[DSN_FAILURE] = { "failure", "Undelivered Mail Returned to Sender",
	    "failed", '5', '4', "5.0.0", "delivery failed",
	    "Undelivered Message" },
	[DSN_DELAY] = { "delay", "Delayed Mail (still being retried)",
	    "delayed", '4', '4', "4.0.0", "delivery temporarily failed",
	    "Delayed Message" },
	[DSN_SUCCESS] = { "success", "Successful Mail Delivery Report",
	    "delivered", '2', '2', "2.0.0", "delivered",
	    "Delivered Message" },
};

const char *
dsn_kind_name(enum dsn_kind kind)
{
	return (unsigned)kind <= DSN_SUCCESS ? dsn_kinds[kind].name : "?";
}

int
dsn_wanted(const struct queue_env *env, size_t idx, enum dsn_kind kind)
{
	const struct queue_rcpt *rc;

	/* RFC 3461 4.1 / RFC 5321 4.5.5: never answer the null sender */
	if (env->sender == NULL || env->sender[0] == '\0' ||
	    idx >= env->nrcpt)
		return 0;
	rc = &env->rcpt[idx];
	if (rc->notify & SMTP_NOTIFY_NEVER)
		return 0;
	switch (kind) {
	case DSN_FAILURE:
		/* once per recipient: notified ones were in an earlier one */
		return rc->status == QUEUE_R_FAILED && !rc->notified &&
		    (rc->notify == 0 || (rc->notify & SMTP_NOTIFY_FAILURE) != 0);
	case DSN_DELAY:
		return rc->status == QUEUE_R_DEFERRED && (rc->notify == 0 ||
		    (rc->notify & SMTP_NOTIFY_DELAY) != 0);
	case DSN_SUCCESS:
		/* a next hop with DSN took over the notices (RFC 3461 4) */
		return rc->status == QUEUE_R_SENT &&
		    rc->relay != QUEUE_RELAY_PASSED &&
		    (rc->notify & SMTP_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

/*
 * dsn_clean - copy in to out (at most max bytes + NUL; outsz > max):
 * control characters and runs of white space become one space, ends are
 * trimmed; with is_ascii every octet >= 0x80 becomes '?', else only
 * those that are not well-formed UTF-8 do.  Returns the length.
 */
static size_t
dsn_clean(const char *in, size_t max, bool is_ascii, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0, m, i;
	bool is_space = false;

	for (; *p != '\0' && n < max; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			is_space = n > 0;
			continue;
		}
		if (is_space) {
			if (n + 1 >= max)
				break;
			out[n++] = ' ';
			is_space = false;
		}
		out[n++] = (char)(is_ascii && *p >= 0x80 ? '?' : *p);
	}
	if (!is_ascii && !smtp_utf8_valid(out, n)) {
		/* the cut may have split the last character: drop it */
		m = n;
		while (m > 0 && n - m < 3 &&
		    ((unsigned char)out[m - 1] & 0xc0) == 0x80)
			m--;
		if (m > 0 && (unsigned char)out[m - 1] >= 0xc0)
			m--;
		if (m < n && smtp_utf8_valid(out, m))
			n = m;
		else
			for (i = 0; i < n; i++)
				if ((unsigned char)out[i] >= 0x80)
					out[i] = '?';
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

static bool
dsn_has_8bit(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * dsn_fold - append prefix and value (a dsn_clean()ed text: single
 * spaces, no controls) and CRLF, breaking the line before a space where
 * it would pass DSN_FOLD_COL; a continuation line starts with cont (" "
 * in a header, where the space it replaces keeps unfolding exact).
 * Words are at most DSN_REASON_MAX long, so no line reaches 998.
 */
static int
dsn_fold(struct buf *b, const char *prefix, const char *value,
    const char *cont)
{
	const char *p = value, *q;
	size_t col = strlen(prefix), wlen;
	bool is_first = true;
	int rc = 0;

	rc |= buf_puts(b, prefix);
	while (*p != '\0') {
		q = strchr(p, ' ');
		wlen = q != NULL ? (size_t)(q - p) : strlen(p);
		if (!is_first) {
			if (col + 1 + wlen > DSN_FOLD_COL) {
				rc |= buf_puts(b, "\r\n");
				rc |= buf_puts(b, cont);
				col = strlen(cont);
			} else {
				rc |= buf_putc(b, ' ');
				col++;
			}
		}
		rc |= buf_append(b, p, wlen);
		col += wlen;
		is_first = false;
		p += wlen;
		if (*p == ' ')
			p++;
	}
	rc |= buf_puts(b, "\r\n");
	return rc;
}

/* dsn_date - RFC 5322 3.3 date-time, local time with its offset */
static void
dsn_date(int64_t t, char *out, size_t outsz)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	time_t tt = (time_t)t;
	struct tm tm;
	long off;

	if (localtime_r(&tt, &tm) == NULL || tm.tm_year > 9999 - 1900 ||
	    tm.tm_year < 0) {
		tt = 0;
		(void)gmtime_r(&tt, &tm);
		tm.tm_gmtoff = 0;
	}
	off = tm.tm_gmtoff / 60;
	(void)snprintf(out, outsz, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

/* dsn_random_hex - 16 hex digits nobody outside can predict */
static void
dsn_random_hex(char out[17])
{
	static unsigned long counter;
	unsigned char r[8];
	uint64_t v;
	size_t i;

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* no entropy yet: still unique, only less unpredictable */
		v = (uint64_t)time(NULL) * 6364136223846793005ULL ^
		    (uint64_t)getpid() << 32 ^
		    ++counter * 1442695040888963407ULL;
		for (i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(v >> (8 * i));
	}
	for (i = 0; i < sizeof(r); i++)
		(void)snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* dsn_pread - exactly n bytes at off, or -1 (errno; EIO if short) */
static int
dsn_pread(int fd, char *p, size_t n, uint64_t off)
{
	ssize_t k;

	while (n > 0) {
		k = pread(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* dsn_header_end - length of the header in s[0..n) (through the CRLF
 * before the empty line), or -1 if no empty line is there */
static long
dsn_header_end(const char *s, size_t n, size_t from)
{
	size_t i, j;

	if (from == 0 && n >= 1 && (s[0] == '\n' ||
	    (s[0] == '\r' && n >= 2 && s[1] == '\n')))
		return 0;
	for (i = from; i < n; i++) {
		if (s[i] != '\n')
			continue;
		j = i + 1;
		if (j < n && s[j] == '\r')
			j++;
		if (j < n && s[j] == '\n')
			return (long)(i + 1);
	}
	return -1;
}

/*
 * dsn_original - put the original message, or only its header (at most
 * limit bytes, cut at a line end), into part.  *is_hdrs_r says which.
 */
static int
dsn_original(int fd, const struct queue_env *env, bool want_full,
    uint64_t limit, struct buf *part, bool *is_hdrs_r)
{
	uint64_t size = env->content_size, got = 0;
	size_t n, scan = 0;
	long end = -1;
	char *nl;

	if (want_full && size <= limit) {
		*is_hdrs_r = false;
		if (buf_reserve(part, (size_t)size) < 0)
			return -1;
		if (dsn_pread(fd, part->data, (size_t)size,
		    env->content_offset) < 0)
			return -1;
		part->len = (size_t)size;
		part->data[part->len] = '\0';
		return 0;
	}
	*is_hdrs_r = true;
	while (got < size && got < limit) {
		n = DSN_READ_CHUNK;
		if (n > size - got)
			n = (size_t)(size - got);
		if (n > limit - got)
			n = (size_t)(limit - got);
		if (buf_reserve(part, n) < 0)
			return -1;
		if (dsn_pread(fd, part->data + part->len, n,
		    env->content_offset + got) < 0)
			return -1;
		part->len += n;
		part->data[part->len] = '\0';
		got += n;
		if ((end = dsn_header_end(part->data, part->len, scan)) >= 0)
			break;
		scan = part->len > 2 ? part->len - 2 : 0;
	}
	if (end >= 0) {
		buf_truncate(part, (size_t)end);
	} else if (got < size) {
		/* the header alone passes the limit: keep whole lines */
		nl = memrchr(part->data, '\n', part->len);
		if (nl != NULL)
			buf_truncate(part, (size_t)(nl - part->data) + 1);
	}
	if (part->len > 0 && part->data[part->len - 1] != '\n')
		return buf_puts(part, "\r\n");
	return 0;
}

/* dsn_status - the recipient's X.Y.Z if it fits the kind, else default */
static const char *
dsn_status(const struct queue_rcpt *rc, enum dsn_kind kind)
{
	const char *s = rc->dsn;
	size_t i, digits;
	int dots = 0;

	if (s[0] != dsn_kinds[kind].dsn_class &&
	    s[0] != dsn_kinds[kind].dsn_class2)
		return dsn_kinds[kind].dsn_default;
	if (s[1] != '.')
		return dsn_kinds[kind].dsn_default;
	/* RFC 3463 2: class "." subject "." detail, 1-3 digits each */
	for (i = 2, digits = 0; s[i] != '\0' && i < sizeof(rc->dsn); i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if (++digits > 3)
				return dsn_kinds[kind].dsn_default;
		} else if (s[i] == '.' && digits > 0 && dots == 0) {
			dots++;
			digits = 0;
		} else
			return dsn_kinds[kind].dsn_default;
	}
	if (i >= sizeof(rc->dsn) || dots != 1 || digits == 0)
		return dsn_kinds[kind].dsn_default;
	return s;
}

/* dsn_is_smtp_reply - the reason starts like an SMTP reply: "550 ..." */
static bool
dsn_is_smtp_reply(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9' &&
	    (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

/*
 * dsn_orcpt - the ORCPT "type;xtext" as type and decoded address into
 * type_r (size DSN_OTYPE_MAX + 1) and addr_r (DSN_TEXT_MAX + 1); -1 if
 * malformed
 */
static int
dsn_orcpt(const char *orcpt, char *type_r, char *addr_r)
{
	char raw[SMTP_XTEXT_MAX + 1], dec[SMTP_XTEXT_MAX + 1];
	const char *semi;
	size_t tlen, i;

	if (orcpt == NULL || (semi = strchr(orcpt, ';')) == NULL)
		return -1;
	tlen = (size_t)(semi - orcpt);
	if (tlen == 0 || tlen > DSN_OTYPE_MAX ||
	    strlen(semi + 1) >= sizeof(raw))
		return -1;
	for (i = 0; i < tlen; i++)
		if (!((orcpt[i] >= 'a' && orcpt[i] <= 'z') ||
		    (orcpt[i] >= 'A' && orcpt[i] <= 'Z') ||
		    (orcpt[i] >= '0' && orcpt[i] <= '9') || orcpt[i] == '-'))
			return -1;
	memcpy(type_r, orcpt, tlen);
	type_r[tlen] = '\0';
	(void)snprintf(raw, sizeof(raw), "%s", semi + 1);
	if (smtp_xtext_decode(raw, dec, sizeof(dec)) < 0)
		return -1;
	if (dsn_clean(dec, DSN_TEXT_MAX, false, addr_r) == 0)
		return -1;
	return 0;
}

struct dsn_ctx {
	const struct dsn_info *info;
	const struct queue_env *env;
	enum dsn_kind kind;
	char	 host[DSN_TEXT_MAX + 1];
	char	 sender[DSN_TEXT_MAX + 1];
	bool	 smtputf8;
};

static int
dsn_part_text(struct dsn_ctx *c, const size_t *idx, size_t n,
    bool has_original, bool is_hdrs, bool is_cut, struct buf *p)
{
	const struct queue_env *env = c->env;
	char addr[DSN_TEXT_MAX + 1], reason[DSN_REASON_MAX + 1];
	char otype[DSN_OTYPE_MAX + 1], oaddr[DSN_TEXT_MAX + 1];
	char date[64], line[3 * DSN_TEXT_MAX];
	const struct queue_rcpt *rc;
	size_t i;
	int rc_ = 0;

	(void)snprintf(line, sizeof(line), "This is the mail system at "
	    "host %s.", c->host);
	rc_ |= dsn_fold(p, "", line, "");
	rc_ |= buf_puts(p, "\r\n");
	date[0] = '\0';
	if (c->kind == DSN_DELAY && c->info->queue_lifetime > 0)
		dsn_date(env->arrival + c->info->queue_lifetime, date,
		    sizeof(date));
	switch (c->kind) {
	case DSN_FAILURE:
		(void)snprintf(line, sizeof(line), "Your message could not be "
		    "delivered to one or more of its recipients; sending it "
		    "again unchanged will not help. The reasons are given "
		    "below.");
		break;
	case DSN_DELAY:
		(void)snprintf(line, sizeof(line), "This is a warning only: "
		    "you need not send your message again. It could not be "
		    "delivered yet to the recipients below; the mail system "
		    "is still trying%s%s.", date[0] != '\0' ?
		    " and will give up on " : "", date);
		break;
	case DSN_SUCCESS:
		(void)snprintf(line, sizeof(line), "Your message was "
		    "delivered to the recipients below, as you asked when you "
		    "sent it (\"relayed\": handed on to a mail system that "
		    "sends no such reports).");
		break;
	}
	rc_ |= dsn_fold(p, "", line, "");
	if (has_original) {
		(void)snprintf(line, sizeof(line), "%s is attached%s.",
		    is_hdrs ? "The header of your message" : "Your message",
		    is_cut ? " (the whole message passes the size limit for "
		    "returned mail)" : "");
		rc_ |= dsn_fold(p, "", line, "");
	}
	(void)snprintf(line, sizeof(line), "For help, write to the "
	    "postmaster of %s and include this report.", c->host);
	rc_ |= buf_puts(p, "\r\n");
	rc_ |= dsn_fold(p, "", line, "");
	for (i = 0; i < n; i++) {
		rc = &env->rcpt[idx[i]];
		(void)dsn_clean(rc->addr != NULL ? rc->addr : "",
		    DSN_TEXT_MAX, false, addr);
		if (rc->orcpt != NULL && dsn_orcpt(rc->orcpt, otype, oaddr) ==
		    0 && strcasecmp(oaddr, addr) != 0)
			(void)snprintf(line, sizeof(line),
			    "<%s> (originally %s):", addr, oaddr);
		else
			(void)snprintf(line, sizeof(line), "<%s>:", addr);
		/* folded: two addresses together may pass 998 octets */
		if (rc->reason == NULL || dsn_clean(rc->reason,
		    DSN_REASON_MAX, true, reason) == 0)
			(void)snprintf(reason, sizeof(reason), "%s",
			    dsn_kinds[c->kind].no_reason);
		rc_ |= buf_puts(p, "\r\n");
		rc_ |= dsn_fold(p, "", line, "    ");
		rc_ |= dsn_fold(p, "    ", reason, "    ");
	}
	return rc_;
}

static int
dsn_part_status(struct dsn_ctx *c, const size_t *idx, size_t n,
    struct buf *p)
{
	const struct queue_env *env = c->env;
	char text[DSN_TEXT_MAX + 1], reason[DSN_REASON_MAX + 1];
	char otype[DSN_OTYPE_MAX + 1], date[64];
	char envid[SMTP_XTEXT_MAX + 1], prefix[DSN_OTYPE_MAX + 32];
	const char *said;
	const struct queue_rcpt *rc;
	size_t i;
	int r = 0;

	r |= buf_printf(p, "Reporting-MTA: dns; %s\r\n", c->host);
	r |= buf_printf(p, "X-Posta-Queue-ID: %s\r\n", env->id);
	r |= dsn_fold(p, "X-Posta-Sender: rfc822; ", c->sender, " ");
	if (env->envid != NULL && env->envid[0] != '\0' &&
	    smtp_xtext_decode(env->envid, envid, sizeof(envid)) == 0 &&
	    dsn_clean(envid, DSN_TEXT_MAX, true, text) > 0)
		r |= dsn_fold(p, "Original-Envelope-Id: ", text, " ");
	dsn_date(env->arrival, date, sizeof(date));
	r |= buf_printf(p, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < n; i++) {
		rc = &env->rcpt[idx[i]];
		r |= buf_puts(p, "\r\n");
		if (rc->orcpt != NULL &&
		    dsn_orcpt(rc->orcpt, otype, text) == 0) {
			(void)snprintf(prefix, sizeof(prefix),
			    "Original-Recipient: %s; ", otype);
			r |= dsn_fold(p, prefix, text, " ");
		}
		(void)dsn_clean(rc->addr != NULL ? rc->addr : "",
		    DSN_TEXT_MAX, false, text);
		/* RFC 6533 3: a UTF-8 address has type utf-8 */
		r |= dsn_fold(p, dsn_has_8bit(text, strlen(text)) ?
		    "Final-Recipient: utf-8; " : "Final-Recipient: rfc822; ",
		    text, " ");
		r |= buf_printf(p, "Action: %s\r\n", c->kind ==
		    DSN_SUCCESS && rc->relay == QUEUE_RELAY_RELAYED ?
		    "relayed" : dsn_kinds[c->kind].action);
		r |= buf_printf(p, "Status: %s\r\n", dsn_status(rc, c->kind));
		if (rc->reason != NULL && dsn_clean(rc->reason,
		    DSN_REASON_MAX, true, reason) > 0) {
			/* "host X said: 550 ..." carries an SMTP reply */
			said = strstr(reason, " said: ");
			if (dsn_is_smtp_reply(reason))
				r |= dsn_fold(p, "Diagnostic-Code: smtp; ",
				    reason, " ");
			else if (said != NULL && dsn_is_smtp_reply(said + 7))
				r |= dsn_fold(p, "Diagnostic-Code: smtp; ",
				    said + 7, " ");
			else
				r |= dsn_fold(p, "Diagnostic-Code: X-Posta; ",
				    reason, " ");
		}
		if (rc->time > 0) {
			dsn_date(rc->time, date, sizeof(date));
			r |= buf_printf(p, "Last-Attempt-Date: %s\r\n", date);
		}
		if (c->kind == DSN_DELAY && c->info->queue_lifetime > 0) {
			dsn_date(env->arrival + c->info->queue_lifetime,
			    date, sizeof(date));
			r |= buf_printf(p, "Will-Retry-Until: %s\r\n", date);
		}
	}
	return r;
}

/* dsn_boundary_ok - 1-70 characters of RFC 2046 5.1.1 bcharsnospace */
static bool
dsn_boundary_ok(const char *b)
{
	size_t n;

	if (b == NULL || (n = strlen(b)) == 0 || n > 70)
		return false;
	return strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789'()+_,-./:=?") == n;
}

static bool
dsn_in(const struct buf *b, const char *needle)
{
	return b->len > 0 &&
	    memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

int
dsn_build(const struct dsn_info *info, const struct queue_env *env,
    int content_fd, enum dsn_kind kind, struct buf *out,
    struct dsn_result *res_r)
{
	struct dsn_ctx c;
	struct buf p1, p2, p3;
	size_t *idx = NULL, n = 0, i, start = out->len;
	uint64_t limit;
	bool is_hdrs = false, is_cut = false, is_8bit, is_utf8, want_full;
	bool is_global;
	char rnd[17], boundary[80], date[64], line[2 * DSN_TEXT_MAX];
	int r = 0, saved, tries;
	long hlen;

	if ((unsigned)kind > DSN_SUCCESS) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < env->nrcpt; i++)
		if (dsn_wanted(env, i, kind))
			n++;
	if (n == 0)
		return 0;
	idx = xcalloc(n, sizeof(*idx));
	for (i = 0, n = 0; i < env->nrcpt; i++)
		if (dsn_wanted(env, i, kind))
			idx[n++] = i;

	memset(&c, 0, sizeof(c));
	c.info = info;
	c.env = env;
	c.kind = kind;
	if (info->myhostname == NULL || dsn_clean(info->myhostname,
	    DSN_TEXT_MAX, true, c.host) == 0)
		(void)snprintf(c.host, sizeof(c.host), "localhost");
	for (i = 0; c.host[i] != '\0'; i++)
		if (c.host[i] == ' ')
			c.host[i] = '-';
	if (dsn_clean(env->sender, DSN_TEXT_MAX, false, c.sender) == 0) {
		free(idx);
		return 0;
	}
	limit = info->size_limit > 0 ? info->size_limit :
	    DSN_SIZE_LIMIT_DEFAULT;

	buf_init(&p1, 0);
	buf_init(&p2, 0);
	buf_init(&p3, 0);

	/* part 3 first: the text of part 1 says what is attached */
	want_full = kind == DSN_FAILURE && env->ret != SMTP_RET_HDRS;
	if (content_fd >= 0) {
		if (dsn_original(content_fd, env, want_full, limit, &p3,
		    &is_hdrs) < 0)
			goto fail;
		is_cut = want_full && is_hdrs;
	}
	if (dsn_part_text(&c, idx, n, content_fd >= 0, is_hdrs, is_cut,
	    &p1) < 0 || dsn_part_status(&c, idx, n, &p2) < 0)
		goto fail;

	is_utf8 = dsn_has_8bit(c.sender, strlen(c.sender)) ||
	    dsn_has_8bit(p2.data, p2.len);
	is_8bit = is_utf8 || dsn_has_8bit(p1.data, p1.len) ||
	    dsn_has_8bit(p3.data, p3.len);
	/* RFC 6532 3.7: a header in UTF-8 travels as message/global */
	hlen = is_hdrs ? -1 : dsn_header_end(p3.data, p3.len, 0);
	is_global = env->smtputf8 && dsn_has_8bit(p3.data,
	    hlen >= 0 ? (size_t)hlen : p3.len);

	for (tries = 0;; tries++) {
		if (tries == DSN_BOUNDARY_TRIES) {
			errno = EAGAIN;
			goto fail;
		}
		dsn_random_hex(rnd);
		if (tries == 0 && dsn_boundary_ok(info->boundary))
			(void)snprintf(boundary, sizeof(boundary), "%s",
			    info->boundary);
		else
			(void)snprintf(boundary, sizeof(boundary), "%s.%s/%s",
			    env->id, rnd, "posta-dsn");
		if (!dsn_in(&p1, boundary) && !dsn_in(&p2, boundary) &&
		    !dsn_in(&p3, boundary))
			break;
	}

	r |= buf_printf(out, "From: MAILER-DAEMON@%s (Mail Delivery System)"
	    "\r\n", c.host);
	(void)snprintf(line, sizeof(line), "<%s>", c.sender);
	r |= dsn_fold(out, "To: ", line, " ");
	r |= buf_printf(out, "Subject: %s\r\n", dsn_kinds[kind].subject);
	dsn_date(info->now > 0 ? info->now : (int64_t)time(NULL), date,
	    sizeof(date));
	r |= buf_printf(out, "Date: %s\r\n", date);
	dsn_random_hex(rnd);
	r |= buf_printf(out, "Message-ID: <%s.%s.%s@%s>\r\n", env->id,
	    dsn_kinds[kind].name, rnd, c.host);
	r |= buf_puts(out, "Auto-Submitted: auto-replied\r\n");
	r |= buf_puts(out, "MIME-Version: 1.0\r\n");
	r |= buf_printf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	r |= buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n",
	    is_8bit ? "8bit" : "7bit");
	r |= buf_puts(out, "This is a MIME-encapsulated message.\r\n\r\n");

	r |= buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=%s\r\n\r\n", boundary,
	    dsn_has_8bit(p1.data, p1.len) ? "utf-8" : "us-ascii");
	r |= buf_append(out, p1.data, p1.len);

	r |= buf_printf(out, "\r\n--%s\r\nContent-Description: Delivery "
	    "report\r\nContent-Type: message/%sdelivery-status\r\n\r\n",
	    boundary, is_utf8 ? "global-" : "");
	r |= buf_append(out, p2.data, p2.len);

	if (content_fd >= 0) {
		r |= buf_printf(out, "\r\n--%s\r\nContent-Description: %s%s"
		    "\r\nContent-Type: %s\r\n", boundary,
		    dsn_kinds[kind].descr, is_hdrs ? " Headers" : "",
		    is_hdrs ? (is_global ? "message/global-headers" :
		    "text/rfc822-headers") :
		    (is_global ? "message/global" : "message/rfc822"));
		if (dsn_has_8bit(p3.data, p3.len))
			r |= buf_puts(out,
			    "Content-Transfer-Encoding: 8bit\r\n");
		r |= buf_puts(out, "\r\n");
		if (p3.len > 0)
			r |= buf_append(out, p3.data, p3.len);
	}
	r |= buf_printf(out, "\r\n--%s--\r\n", boundary);
	if (r < 0) {
		errno = EMSGSIZE;
		goto fail;
	}
	if (res_r != NULL) {
		res_r->nrcpt = n;
		res_r->is_8bit = is_8bit;
		res_r->smtputf8 = is_utf8;
	}
	buf_deinit(&p1);
	buf_deinit(&p2);
	buf_deinit(&p3);
	free(idx);
	return 1;

fail:
	saved = errno;
	buf_truncate(out, start);
	buf_deinit(&p1);
	buf_deinit(&p2);
	buf_deinit(&p3);
	free(idx);
	errno = saved;
	return -1;
}

int
dsn_queue(const struct dsn_info *info, const struct queue_env *env,
    int content_fd, enum dsn_kind kind, const char *rcpt, const char *qdir,
    char *id_r)
{
	struct dsn_result res;
	struct queue_env *nenv;
	struct queue_writer *w = NULL;
	struct reply r;
	struct buf out;
	int rc;

	buf_init(&out, 0);
	rc = dsn_build(info, env, content_fd, kind, &out, &res);
	if (rc <= 0) {
		if (rc < 0)
			log_err("%s: cannot build the %s notice: %s", env->id,
			    dsn_kind_name(kind), strerror(errno));
		buf_deinit(&out);
		return rc;
	}
	nenv = queue_env_new();
	(void)queue_env_add_rcpt(nenv, rcpt, NULL, 0);
	nenv->body = res.is_8bit ? SMTP_BODY_8BITMIME : SMTP_BODY_NONE;
	nenv->smtputf8 = res.smtputf8;
	queue_env_set(&nenv->proto, "dsn");
	rc = -1;
	if ((w = queue_writer_new(qdir, nenv, &r)) != NULL &&
	    queue_writer_write(w, out.data, out.len) == 0 &&
	    queue_writer_seal(w, &r) == 0 && queue_writer_sync(w) == 0 &&
	    queue_writer_commit(w, &r) == 0) {
		if (queue_dir_sync(qdir, QUEUE_INCOMING) < 0)
			log_err("%s: fsync incoming/: %s", nenv->id,
			    strerror(errno));
		else
			rc = 1;
	}
	if (rc == 1)
		(void)snprintf(id_r, QUEUE_ID_LEN + 1, "%s", nenv->id);
	else
		log_err("%s: cannot queue the %s notice", env->id,
		    dsn_kind_name(kind));
	queue_writer_free(&w);
	queue_env_free(&nenv);
	buf_deinit(&out);
	return rc;
}
