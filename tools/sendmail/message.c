/*
 * message - standard input into the spool file that sendmail sends.
 *
 * The whole message is read before the SMTP session starts, into an
 * unlinked temporary file: so a slow producer (a cron job) cannot run
 * into smtpd's timeouts, recipients from headers (-t) are known before
 * RCPT, SIZE= can be declared, and input that ends in the middle does
 * not leave half a message queued.
 *
 * Input is split into lines at LF, CR LF or a bare CR (each becomes CR
 * LF: smtpd refuses bare CR and LF, and a progress bar in cron output
 * should not cost the mail).  Without -i a line holding only "." ends
 * the input (the rest is not read).  Lines longer than SM_LINE_SEG are
 * handled in pieces.  The spool holds the content dot-stuffed, ready for
 * DATA; msg->size counts the content without the stuffing dots.
 *
 * Headers: the header block (up to the first empty line, or the first
 * line that is not a header field; a leading mbox "From " line is
 * dropped) is held in memory, at most SM_HEADER_MAX bytes; a longer
 * one ends at that point.  Bcc: and Resent-Bcc: are removed.  From:
 * (with the -F full name), Date: and Message-ID: are added when missing,
 * as Postfix's cleanup does for local submissions.  With -t the
 * recipients come from To:, Cc: and Bcc: (or Resent-To:, Resent-Cc:,
 * Resent-Bcc: when the message has any of those).  An empty line
 * separates headers and body when the input had none.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mem.h"
#include "sendmail.h"

#define MSG_READ_CHUNK	65536
#define MSG_EW_BYTES	45	/* raw bytes per RFC 2047 encoded word */

struct msg_hdr {
	char	*text;		/* "Name: value", folded with CR LF */
	size_t	 len;
};

struct msg_state {
	const struct sm_conf *conf;
	struct sm_msg *msg;
	/* input lines */
	struct buf line;
	bool	 cr;		/* a CR waits for its LF */
	bool	 line_cont;	/* pieces of this line went out already */
	bool	 done;		/* the lone "." was seen */
	/* the header block */
	bool	 in_header;
	bool	 first_line;
	struct msg_hdr *hdrs;
	size_t	 nhdr, caphdr, hdr_bytes;
	int	 err;		/* EX_* once something failed */
};

/* msg_put - content into the spool: dot-stuffing, size, 8-bit */
static void
msg_put(struct msg_state *s, const char *p, size_t n, bool is_cont,
    bool ends)
{
	struct sm_msg *m = s->msg;
	size_t i;

	if (s->err != 0)
		return;
	/* RFC 5321 4.5.2: a line that starts with "." gets one more */
	if (!is_cont && n > 0 && p[0] == '.')
		(void)putc('.', m->spool);
	if (n > 0)
		(void)fwrite(p, 1, n, m->spool);
	if (ends)
		(void)fwrite("\r\n", 1, 2, m->spool);
	m->size += n + (ends ? 2 : 0);
	for (i = 0; i < n && !m->is_8bit; i++)
		if ((unsigned char)p[i] >= 0x80)
			m->is_8bit = true;
	if (ferror(m->spool)) {
		sm_err(s->conf, "cannot write the temporary file: %s",
		    strerror(errno));
		s->err = EX_TEMPFAIL;
	} else if (m->size > s->conf->size_limit) {
		sm_err(s->conf, "message too large (message_size_limit is "
		    "%llu bytes)", (unsigned long long)s->conf->size_limit);
		s->err = EX_DATAERR;
	}
}

/* msg_put_field - a header field, line by line (it may be folded) */
static void
msg_put_field(struct msg_state *s, const char *text, size_t len)
{
	const char *end = text + len, *nl;

	while (text < end) {
		nl = memmem(text, (size_t)(end - text), "\r\n", 2);
		if (nl == NULL)
			nl = end;
		msg_put(s, text, (size_t)(nl - text), false, true);
		text = nl < end ? nl + 2 : end;
	}
}

/* hdr_name_len - length of the field name if line is "Name:", else 0 */
static size_t
hdr_name_len(const char *p, size_t n)
{
	size_t i, j;

	for (i = 0; i < n && (unsigned char)p[i] > 32 &&
	    (unsigned char)p[i] < 127 && p[i] != ':'; i++)
		;
	if (i == 0)
		return 0;
	/* obsolete syntax allows blanks before the colon */
	for (j = i; j < n && (p[j] == ' ' || p[j] == '\t'); j++)
		;
	return j < n && p[j] == ':' ? i : 0;
}

static bool
hdr_is(const struct msg_hdr *h, const char *name)
{
	size_t n = hdr_name_len(h->text, h->len);

	return n == strlen(name) && strncasecmp(h->text, name, n) == 0;
}

/* hdr_value - the text after the colon */
static const char *
hdr_value(const struct msg_hdr *h, size_t *len_r)
{
	const char *colon = memchr(h->text, ':', h->len);

	*len_r = h->len - (size_t)(colon + 1 - h->text);
	return colon + 1;
}

/* msg_phrase - the full name as an RFC 5322 phrase (2047 if not ASCII) */
static void
msg_phrase(struct buf *b, const char *name)
{
	unsigned char raw[SM_FULLNAME_MAX + 1], enc[4 * MSG_EW_BYTES];
	size_t n = 0, i, start, k;
	bool is_ascii = true, need_quote = false;

	/* control characters would end the header or fake another one */
	for (i = 0; name[i] != '\0' && n < SM_FULLNAME_MAX; i++) {
		unsigned char c = (unsigned char)name[i];

		raw[n++] = c < 0x20 || c == 0x7f ? ' ' : c;
	}
	while (n > 0 && raw[n - 1] == ' ')
		n--;
	for (start = 0; start < n && raw[start] == ' '; start++)
		;
	for (i = start; i < n; i++) {
		if (raw[i] >= 0x80)
			is_ascii = false;
		else if (strchr("()<>[]:;@\\,.\"", raw[i]) != NULL)
			need_quote = true;
	}
	if (start == n)
		return;
	if (is_ascii && !need_quote) {
		(void)buf_append(b, raw + start, n - start);
		return;
	}
	if (is_ascii) {
		(void)buf_putc(b, '"');
		for (i = start; i < n; i++) {
			if (raw[i] == '"' || raw[i] == '\\')
				(void)buf_putc(b, '\\');
			(void)buf_putc(b, raw[i]);
		}
		(void)buf_putc(b, '"');
		return;
	}
	/* encoded words, cut between characters, folded between words */
	for (i = start; i < n; i = k) {
		k = i + MSG_EW_BYTES < n ? i + MSG_EW_BYTES : n;
		while (k < n && k > i + 1 && (raw[k] & 0xc0) == 0x80)
			k--;
		(void)EVP_EncodeBlock(enc, raw + i, (int)(k - i));
		(void)buf_printf(b, "%s=?UTF-8?B?%s?=", i > start ? "\r\n " :
		    "", (const char *)enc);
	}
}

/* msg_add_headers - From:, Date:, Message-ID: where missing */
static void
msg_add_headers(struct msg_state *s, bool has_from, bool has_date,
    bool has_msgid)
{
	const struct sm_conf *c = s->conf;
	char when[64], stamp[32];
	unsigned char rnd[8];
	time_t now = time(NULL);
	struct tm tm;
	struct buf b;

	buf_init(&b, 8192);
	(void)localtime_r(&now, &tm);
	if (!has_from && c->sender[0] != '\0') {
		(void)buf_puts(&b, "From: ");
		if (c->fullname != NULL) {
			msg_phrase(&b, c->fullname);
			if (buf_len(&b) > 6)
				(void)buf_putc(&b, ' ');
		}
		(void)buf_printf(&b, "<%s>", c->sender);
		msg_put_field(s, buf_cstr(&b), buf_len(&b));
	}
	if (!has_date) {
		(void)strftime(when, sizeof(when),
		    "%a, %d %b %Y %H:%M:%S %z", &tm);
		buf_reset(&b);
		(void)buf_printf(&b, "Date: %s", when);
		msg_put_field(s, buf_cstr(&b), buf_len(&b));
	}
	if (!has_msgid) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			memset(rnd, 0, sizeof(rnd));
		(void)strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		buf_reset(&b);
		(void)buf_printf(&b, "Message-ID: <%s.%ld.%02x%02x%02x%02x"
		    "%02x%02x%02x%02x@%s>", stamp, (long)getpid(), rnd[0],
		    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
		    c->myhostname);
		msg_put_field(s, buf_cstr(&b), buf_len(&b));
	}
	buf_deinit(&b);
}

/* msg_header_end - the header block is complete: act on it, write it */
static void
msg_header_end(struct msg_state *s, bool add_blank)
{
	static const char *const plain[] = { "To", "Cc", "Bcc" };
	static const char *const resent[] = { "Resent-To", "Resent-Cc",
	    "Resent-Bcc" };
	const char *const *names = plain;
	bool has_from = false, has_date = false, has_msgid = false;
	const struct msg_hdr *h;
	const char *v;
	size_t i, k, vlen;

	s->in_header = false;
	for (i = 0; i < s->nhdr; i++)
		for (k = 0; k < 3; k++)
			if (hdr_is(&s->hdrs[i], resent[k]))
				names = resent;
	for (i = 0; i < s->nhdr; i++) {
		h = &s->hdrs[i];
		if (s->conf->extract && s->err == 0) {
			for (k = 0; k < 3; k++) {
				if (!hdr_is(h, names[k]))
					continue;
				v = hdr_value(h, &vlen);
				if (sm_addr_list(s->conf, v, vlen,
				    &s->msg->rcpts, names[k]) < 0)
					s->err = EX_DATAERR;
			}
		}
		has_from |= hdr_is(h, "From");
		has_date |= hdr_is(h, "Date");
		has_msgid |= hdr_is(h, "Message-ID");
		/* blind copies stay blind (RFC 5322 3.6.3) */
		if (hdr_is(h, "Bcc") || hdr_is(h, "Resent-Bcc"))
			continue;
		msg_put_field(s, h->text, h->len);
	}
	msg_add_headers(s, has_from, has_date, has_msgid);
	if (add_blank)
		msg_put(s, "", 0, false, true);
	for (i = 0; i < s->nhdr; i++)
		free(s->hdrs[i].text);
	free(s->hdrs);
	s->hdrs = NULL;
	s->nhdr = s->caphdr = 0;
}

/* msg_line - one line (or a piece of a long one) of the input */
static void
msg_line(struct msg_state *s, const char *p, size_t n, bool is_cont,
    bool ends)
{
	struct msg_hdr *h;
	bool first = s->first_line;

	s->first_line = false;
	if (!s->in_header) {
		msg_put(s, p, n, is_cont, ends);
		return;
	}
	if (!ends || is_cont || s->hdr_bytes + n + 2 > SM_HEADER_MAX) {
		msg_header_end(s, true);
		msg_put(s, p, n, is_cont, ends);
		return;
	}
	if (first && n >= 5 && memcmp(p, "From ", 5) == 0)
		return;		/* an mbox envelope line, not a header */
	if (n == 0) {
		msg_header_end(s, false);
		msg_put(s, p, n, false, true);
		return;
	}
	if ((p[0] == ' ' || p[0] == '\t') && s->nhdr > 0) {
		h = &s->hdrs[s->nhdr - 1];
		h->text = xrealloc(h->text, h->len + 2 + n + 1);
		memcpy(h->text + h->len, "\r\n", 2);
		memcpy(h->text + h->len + 2, p, n);
		h->len += 2 + n;
		h->text[h->len] = '\0';
		s->hdr_bytes += n + 2;
		return;
	}
	if (hdr_name_len(p, n) == 0) {
		/* not a header field: the body starts here */
		msg_header_end(s, true);
		msg_put(s, p, n, false, true);
		return;
	}
	if (s->nhdr == s->caphdr) {
		s->caphdr = s->caphdr ? s->caphdr * 2 : 32;
		s->hdrs = xreallocarray(s->hdrs, s->caphdr, sizeof(*s->hdrs));
	}
	h = &s->hdrs[s->nhdr++];
	h->text = xstrndup(p, n);	/* no NUL inside: see msg_feed */
	h->len = strlen(h->text);
	s->hdr_bytes += n + 2;
}

/* msg_line_end - the current line is complete */
static void
msg_line_end(struct msg_state *s)
{
	const char *p = buf_cstr(&s->line);
	size_t n = buf_len(&s->line);

	if (!s->line_cont && n == 1 && p[0] == '.' && !s->conf->ignore_dot) {
		s->done = true;
		return;
	}
	msg_line(s, p, n, s->line_cont, true);
	s->line_cont = false;
	buf_reset(&s->line);
}

/* msg_feed - bytes of input: split into lines */
static void
msg_feed(struct msg_state *s, const char *p, size_t n)
{
	size_t i = 0, j, room;

	while (i < n && !s->done && s->err == 0) {
		if (s->cr) {
			s->cr = false;
			msg_line_end(s);
			if (p[i] == '\n')
				i++;
			continue;
		}
		if (p[i] == '\r') {
			s->cr = true;
			i++;
			continue;
		}
		if (p[i] == '\n') {
			msg_line_end(s);
			i++;
			continue;
		}
		for (j = i; j < n && p[j] != '\r' && p[j] != '\n'; j++)
			;
		room = SM_LINE_SEG - buf_len(&s->line);
		if (j - i > room)
			j = i + room;
		(void)buf_append(&s->line, p + i, j - i);
		i = j;
		if (buf_len(&s->line) == SM_LINE_SEG ||
		    (s->in_header && memchr(buf_cstr(&s->line), '\0',
		    buf_len(&s->line)) != NULL)) {
			/* too long for one piece, or a NUL in a header line */
			msg_line(s, buf_cstr(&s->line), buf_len(&s->line),
			    s->line_cont, false);
			s->line_cont = true;
			buf_reset(&s->line);
		}
	}
}

/* msg_spool_open - an unlinked private temporary file */
static FILE *
msg_spool_open(const struct sm_conf *conf)
{
	const char *dirs[2] = { getenv("TMPDIR"), "/tmp" };
	char path[4096];
	size_t i;
	int fd = -1;
	FILE *fp;

	for (i = 0; i < 2 && fd < 0; i++) {
		if (dirs[i] == NULL || dirs[i][0] == '\0')
			continue;
		fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (snprintf(path, sizeof(path), "%s/sendmail.XXXXXX",
		    dirs[i]) >= (int)sizeof(path))
			continue;
		if ((fd = mkostemp(path, O_CLOEXEC)) >= 0)
			(void)unlink(path);
	}
	if (fd < 0) {
		sm_err(conf, "cannot create a temporary file: %s",
		    strerror(errno));
		return NULL;
	}
	if ((fp = fdopen(fd, "w+")) == NULL)
		(void)close(fd);
	return fp;
}

int
sm_msg_read(const struct sm_conf *conf, int fd, struct sm_msg *msg)
{
	struct msg_state s;
	char *in;
	ssize_t n;

	memset(msg, 0, sizeof(*msg));
	if ((msg->spool = msg_spool_open(conf)) == NULL)
		return EX_TEMPFAIL;
	memset(&s, 0, sizeof(s));
	s.conf = conf;
	s.msg = msg;
	s.in_header = true;
	s.first_line = true;
	buf_init(&s.line, SM_LINE_SEG + 1);
	in = xmalloc(MSG_READ_CHUNK);
	while (!s.done && s.err == 0) {
		n = read(fd, in, MSG_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sm_err(conf, "cannot read the message: %s",
			    strerror(errno));
			s.err = EX_IOERR;
			break;
		}
		if (n == 0) {
			/* end of input: an unterminated last line counts */
			if (s.cr) {
				s.cr = false;
				msg_line_end(&s);
			}
			if (!s.done && (buf_len(&s.line) > 0 || s.line_cont))
				msg_line_end(&s);
			break;
		}
		msg_feed(&s, in, (size_t)n);
	}
	free(in);
	if (s.in_header)
		msg_header_end(&s, false);
	buf_deinit(&s.line);
	if (s.err == 0 && (fflush(msg->spool) != 0 ||
	    fseeko(msg->spool, 0, SEEK_SET) != 0)) {
		sm_err(conf, "cannot write the temporary file: %s",
		    strerror(errno));
		s.err = EX_TEMPFAIL;
	}
	return s.err;
}

void
sm_msg_free(struct sm_msg *msg)
{
	if (msg->spool != NULL)
		(void)fclose(msg->spool);
	msg->spool = NULL;
	sm_addrs_free(&msg->rcpts);
}
