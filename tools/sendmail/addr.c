/*
 * addr - address lists for sendmail: the recipients on the command line
 * and, with -t, in To:, Cc: and Bcc: headers.
 *
 * A small tokenizer for RFC 5322 3.4 address lists: quoted strings,
 * comments (nested), domain literals, angle addresses with an obsolete
 * source route, groups ("name: a, b;").  What is kept of each mailbox
 * is its address; display names, comments and group names are dropped.
 * A mailbox without an angle address whose words are separated by
 * blanks ("John Doe") is not an address: it is reported and skipped.
 * Every address is then checked with sm_addr_ok() so that nothing that
 * could change the meaning of an SMTP command (CR, LF, '<', '>', a blank
 * outside quotes, a leading '-') reaches smtpd.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "sendmail.h"

#define ADDR_TOKEN_MAX	4096	/* text gathered for one mailbox */

struct addr_state {
	struct buf cur;		/* outside <>: the addr-spec or phrase */
	struct buf angle;	/* inside <> */
	bool	 in_angle;
	bool	 has_angle;	/* an angle address was seen */
	bool	 is_multiword;	/* blanks between words outside <> */
	bool	 space;		/* a blank since the last token */
	int	 last;		/* last character appended to cur */
	bool	 too_long;
};

void
sm_addrs_add(struct sm_addrs *a, const char *addr)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = xstrdup(addr);
}

void
sm_addrs_free(struct sm_addrs *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

int
sm_addr_is_8bit(const char *addr)
{
	for (; *addr != '\0'; addr++)
		if ((unsigned char)*addr >= 0x80)
			return 1;
	return 0;
}

int
sm_addr_ok(const char *addr)
{
	const unsigned char *p = (const unsigned char *)addr;
	bool quoted = false;
	size_t len = strlen(addr);

	if (len == 0 || len > SM_ADDR_MAX || addr[0] == '-')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return 0;
		if (quoted && *p == '\\') {
			if (p[1] < 0x20 || p[1] == 0x7f)
				return 0;
			p++;
		} else if (*p == '"')
			quoted = !quoted;
		else if (*p == ' ' && !quoted)
			return 0;
	}
	return !quoted;
}

/* addr_has_domain - 1 if addr has an '@' outside quotes */
static int
addr_has_domain(const char *addr)
{
	bool quoted = false;

	for (; *addr != '\0'; addr++) {
		if (quoted && *addr == '\\' && addr[1] != '\0')
			addr++;
		else if (*addr == '"')
			quoted = !quoted;
		else if (*addr == '@' && !quoted)
			return 1;
	}
	return 0;
}

/* addr_finish - the mailbox gathered so far: checked, completed, added */
static int
addr_finish(const struct sm_conf *conf, struct addr_state *s,
    struct sm_addrs *out, const char *where)
{
	struct buf full;
	const char *a;
	int rc = 0;

	if (s->too_long) {
		sm_err(conf, "%s: address too long", where);
		return -1;
	}
	if (s->has_angle) {
		a = buf_cstr(&s->angle);
		/* obsolete source route "@a,@b:user@domain" (RFC 5322 4.4) */
		if (a[0] == '@' && strchr(a, ':') != NULL)
			a = strchr(a, ':') + 1;
	} else {
		a = buf_cstr(&s->cur);
		if (s->is_multiword && a[0] != '\0') {
			sm_err(conf, "%s: ignoring \"%s\": not an address",
			    where, a);
			a = "";
		}
	}
	if (a[0] != '\0') {
		buf_init(&full, SM_ADDR_MAX + 1);
		if (buf_puts(&full, a) < 0 || (!addr_has_domain(a) &&
		    buf_printf(&full, "@%s", conf->mydomain) < 0)) {
			sm_err(conf, "%s: address too long", where);
			rc = -1;
		} else if (!sm_addr_ok(buf_cstr(&full))) {
			sm_err(conf, "%s: bad address \"%s\"", where,
			    buf_cstr(&full));
			rc = -1;
		} else if (out->n >= SM_RCPT_MAX) {
			sm_err(conf, "%s: too many recipients", where);
			rc = -1;
		} else
			sm_addrs_add(out, buf_cstr(&full));
		buf_deinit(&full);
	}
	buf_reset(&s->cur);
	buf_reset(&s->angle);
	s->has_angle = s->is_multiword = s->space = false;
	s->last = 0;
	return rc;
}

/* addr_put - append token text to the current part of the mailbox */
static void
addr_put(struct addr_state *s, const char *p, size_t n)
{
	struct buf *b = s->in_angle ? &s->angle : &s->cur;

	if (!s->in_angle) {
		/* "john . doe @ x" is one address (obsolete CFWS), "a b" not */
		if (s->space && buf_len(b) > 0 && s->last != '.' &&
		    s->last != '@' && p[0] != '.' && p[0] != '@')
			s->is_multiword = true;
		s->last = (unsigned char)p[n - 1];
	}
	s->space = false;
	if (buf_append(b, p, n) < 0)
		s->too_long = true;
}

/* addr_skip_comment - past the comment at text[i] == '('; -1 if open */
static long
addr_skip_comment(const char *text, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (text[i] == '\\')
			i++;
		else if (text[i] == '(')
			depth++;
		else if (text[i] == ')' && --depth == 0)
			return (long)i + 1;
	}
	return -1;
}

/* addr_skip_until - past the close character of "..." or [...] */
static long
addr_skip_until(const char *text, size_t len, size_t i, char close)
{
	for (i++; i < len; i++) {
		if (text[i] == '\\')
			i++;
		else if (text[i] == close)
			return (long)i + 1;
	}
	return -1;
}

int
sm_addr_list(const struct sm_conf *conf, const char *text, size_t len,
    struct sm_addrs *out, const char *where)
{
	struct addr_state s;
	size_t i = 0, j;
	long end;
	int rc = 0;
	char c;

	if (memchr(text, '\0', len) != NULL) {
		sm_err(conf, "%s: NUL byte in address list", where);
		return -1;
	}
	memset(&s, 0, sizeof(s));
	buf_init(&s.cur, ADDR_TOKEN_MAX);
	buf_init(&s.angle, ADDR_TOKEN_MAX);
	while (i < len && rc == 0) {
		c = text[i];
		switch (c) {
		case ' ': case '\t': case '\r': case '\n':
			s.space = true;
			i++;
			break;
		case '(':
			if ((end = addr_skip_comment(text, len, i)) < 0)
				goto unbalanced;
			s.space = true;
			i = (size_t)end;
			break;
		case ')':
			goto unbalanced;
		case '"':
		case '[':
			end = addr_skip_until(text, len, i, c == '"' ? '"' :
			    ']');
			if (end < 0)
				goto unbalanced;
			addr_put(&s, text + i, (size_t)end - i);
			i = (size_t)end;
			break;
		case '<':
			if (s.in_angle || s.has_angle)
				goto unbalanced;
			s.in_angle = true;
			i++;
			break;
		case '>':
			if (!s.in_angle)
				goto unbalanced;
			s.in_angle = false;
			s.has_angle = true;
			i++;
			break;
		case ':':
			if (s.in_angle) {
				addr_put(&s, ":", 1);
			} else {
				/* a group's name: drop it */
				buf_reset(&s.cur);
				s.is_multiword = s.space = false;
				s.last = 0;
			}
			i++;
			break;
		case ',':
		case ';':
			if (s.in_angle)
				addr_put(&s, text + i, 1);
			else
				rc = addr_finish(conf, &s, out, where);
			i++;
			break;
		default:
			/* an atom, or '.' / '@' / anything else up to a special */
			for (j = i; j < len && strchr(" \t\r\n()\"[<>:,;",
			    text[j]) == NULL; j++)
				;
			addr_put(&s, text + i, j - i);
			i = j;
			break;
		}
	}
	if (rc == 0 && s.in_angle)
		goto unbalanced;
	if (rc == 0)
		rc = addr_finish(conf, &s, out, where);
	buf_deinit(&s.cur);
	buf_deinit(&s.angle);
	return rc;
unbalanced:
	sm_err(conf, "%s: bad address list (unbalanced quote, comment or "
	    "angle bracket)", where);
	buf_deinit(&s.cur);
	buf_deinit(&s.angle);
	return -1;
}
