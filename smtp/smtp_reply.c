/*
 * smtp_reply - parse server replies line by line (see smtp_reply.h)
 *
 * Replies come from any host on the Internet: every line is bounded,
 * the number of lines is capped (a server that sends "250-" forever is
 * cut off at SMTP_REPLY_LINES_MAX), and the text kept for logs and
 * bounces is cut and cleaned of control bytes.
 */
#include <string.h>

#include "smtp_reply.h"

void
smtp_reply_init(struct smtp_reply *rp)
{
	memset(rp, 0, sizeof(*rp));
	buf_init(&rp->lines, (SMTP_REPLY_LINE_MAX + 1) *
	    SMTP_REPLY_LINES_MAX);
}

void
smtp_reply_deinit(struct smtp_reply *rp)
{
	buf_deinit(&rp->lines);
}

static void
reply_reset(struct smtp_reply *rp)
{
	rp->code = 0;
	rp->dsn[0] = '\0';
	rp->text[0] = '\0';
	rp->nlines = 0;
	rp->is_done = 0;
	buf_reset(&rp->lines);
}

/* reply_text_add - append bytes to the joined text, cleaned and cut */
static void
reply_text_add(struct smtp_reply *rp, const char *s, size_t n)
{
	size_t len = strlen(rp->text), i;
	unsigned char c;

	for (i = 0; i < n && len < SMTP_REPLY_TEXT_MAX; i++) {
		c = (unsigned char)s[i];
		rp->text[len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	rp->text[len] = '\0';
}

/* reply_dsn_parse - "C.N.N" (each N 1-3 digits) at s, C == cls */
static void
reply_dsn_parse(struct smtp_reply *rp, const char *s, size_t n, char cls)
{
	size_t i = 0, part, digits;

	if (n < 5 || s[0] != cls || s[1] != '.')
		return;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; i < n && s[i] >= '0' && s[i] <= '9' &&
		    digits < 4; i++)
			digits++;
		if (digits == 0 || digits > 3)
			return;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return;
	if (i >= sizeof(rp->dsn))
		return;
	memcpy(rp->dsn, s, i);
	rp->dsn[i] = '\0';
}

int
smtp_reply_feed(struct smtp_reply *rp, const char *line, size_t len,
    const char **why_r)
{
	int code, is_last;
	size_t i;

	if (rp->is_done)
		reply_reset(rp);
	if (len < 3 || len > SMTP_REPLY_LINE_MAX) {
		*why_r = len < 3 ? "reply line too short" :
		    "reply line too long";
		goto bad;
	}
	for (i = 0; i < 3; i++)
		if (line[i] < '0' || line[i] > '9') {
			*why_r = "reply code is not three digits";
			goto bad;
		}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599) {
		*why_r = "reply code out of range";
		goto bad;
	}
	if (len > 3 && line[3] != ' ' && line[3] != '-') {
		*why_r = "bad separator after the reply code";
		goto bad;
	}
	is_last = len == 3 || line[3] == ' ';
	if (rp->nlines == 0)
		rp->code = code;
	else if (code != rp->code) {
		*why_r = "reply code changes within a multiline reply";
		goto bad;
	}
	if (rp->nlines >= SMTP_REPLY_LINES_MAX) {
		*why_r = "too many lines in a reply";
		goto bad;
	}
	if (rp->nlines > 0)
		reply_text_add(rp, " ", 1);
	reply_text_add(rp, line, len);
	/* the text after "NNN-": NULs become '?' so lines stay C strings */
	for (i = len > 4 ? 4 : len; i < len; i++)
		(void)buf_putc(&rp->lines, line[i] == '\0' ? '?' : line[i]);
	(void)buf_putc(&rp->lines, '\0');
	if (rp->nlines == 0 && len > 4)
		reply_dsn_parse(rp, line + 4, len - 4, line[0]);
	rp->nlines++;
	if (!is_last)
		return 0;
	rp->is_done = 1;
	return 1;
bad:
	reply_reset(rp);
	return -1;
}

const char *
smtp_reply_line(const struct smtp_reply *rp, size_t i)
{
	const char *p = buf_cstr(&rp->lines), *end = p + buf_len(&rp->lines);

	if (i >= rp->nlines)
		return "";
	while (i-- > 0 && p < end)
		p += strlen(p) + 1;
	return p < end ? p : "";
}

const char *
smtp_reply_dsn(const struct smtp_reply *rp)
{
	static const char *const dflt[] = { "2.0.0", "4.0.0", "5.0.0" };

	if (rp->dsn[0] != '\0')
		return rp->dsn;
	if (rp->code >= 500)
		return dflt[2];
	if (rp->code >= 400)
		return dflt[1];
	return dflt[0];
}
