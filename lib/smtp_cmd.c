/*
 * smtp_cmd - parse one SMTP command line (see smtp_cmd.h)
 *
 * The verb selects a small per-verb argument parser; MAIL and RCPT share
 * the path parser and the ESMTP parameter loop.  Every write into the
 * fixed-size fields of struct smtp_cmd is bounded by the RFC 5321 limits,
 * checked before copying.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

const struct smtp_limits smtp_limits_default = {
	.line_max = 2048,
	.strict = false,
};

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_HELO }, { "EHLO", SMTP_EHLO },
	{ "MAIL", SMTP_MAIL }, { "RCPT", SMTP_RCPT },
	{ "DATA", SMTP_DATA }, { "BDAT", SMTP_BDAT },
	{ "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP },
	{ "QUIT", SMTP_QUIT }, { "VRFY", SMTP_VRFY },
	{ "EXPN", SMTP_EXPN }, { "HELP", SMTP_HELP },
	{ "STARTTLS", SMTP_STARTTLS }, { "AUTH", SMTP_AUTH },
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (smtp_verbs[i].verb == v)
			return smtp_verbs[i].name;
	return "UNKNOWN";
}

int
smtp_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	unsigned cp;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			n = 1;
			cp = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			cp = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			cp = p[i] & 0x07;
		} else
			return 0;
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

/* RFC 5322 atext, plus octets >= 0x80 (RFC 6531 UTF8-non-ascii) */
static int
smtp_is_atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
	    c >= 0x80;
}

/* smtp_local_len - length of a valid Local-part at s, or 0 */
static size_t
smtp_local_len(const char *s, size_t len)
{
	size_t i = 0;

	if (len > 0 && s[0] == '"') {
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '"')
				return i + 1;
			if (c == '\\') {
				if (i + 1 >= len ||
				    (unsigned char)s[i + 1] < 32 ||
				    (unsigned char)s[i + 1] > 126)
					return 0;
				i++;
			} else if (c < 32 || c == 127)
				return 0;
		}
		return 0;
	}
	/* Dot-string: atoms separated by single dots */
	for (;;) {
		size_t start = i;

		while (i < len && smtp_is_atext((unsigned char)s[i]))
			i++;
		if (i == start)
			return 0;
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

/* smtp_domain_ok - Domain / address-literal (RFC 5321 4.1.2, 4.1.3) */
static int
smtp_domain_ok(const char *s, size_t len)
{
	char lit[SMTP_DOMAIN_MAX + 1];
	unsigned char addr[16];
	size_t i, lab;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return 0;
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return 0;
		memcpy(lit, s + 1, len - 2);
		lit[len - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, addr) == 1;
		if (isdigit((unsigned char)lit[0]) && strchr(lit, ':') == NULL)
			return inet_pton(AF_INET, lit, addr) == 1;
		/* General-address-literal: tag ":" 1*dcontent */
		for (i = 0; i < len - 2 && (isalnum((unsigned char)lit[i]) ||
		    lit[i] == '-'); i++)
			;
		if (i == 0 || lit[i] != ':' || lit[i + 1] == '\0')
			return 0;
		for (i++; lit[i] != '\0'; i++)
			if ((unsigned char)lit[i] < 33 ||
			    (unsigned char)lit[i] > 126 || lit[i] == '[' ||
			    lit[i] == '\\' || lit[i] == ']')
				return 0;
		return 1;
	}
	/* sub-domain *("." sub-domain); Let-dig [Ldh-str], U-labels too */
	lab = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!(isalnum(c) || c >= 0x80 || (c == '-' && lab > 0)))
			return 0;
		if (++lab > 63)
			return 0;
	}
	return lab > 0 && s[len - 1] != '-';
}

/* smtp_mailbox_ok - Local-part "@" Domain, within the size limits */
static int
smtp_mailbox_ok(const char *s, size_t len)
{
	size_t l = smtp_local_len(s, len);

	if (l == 0 || l > SMTP_LOCAL_MAX || l >= len || s[l] != '@')
		return 0;
	return smtp_domain_ok(s + l + 1, len - l - 1);
}

/*
 * smtp_path - parse a Reverse-path or Forward-path at *pp (len bytes
 * left); store the mailbox in cmd->addr and move *pp past the path.
 */
static int
smtp_path(const char **pp, size_t len, const struct smtp_limits *lim,
    struct smtp_cmd *cmd, struct reply *r)
{
	const char *p = *pp, *end = p + len, *mb, *mbend;
	int inq = 0, bracketed;

	if (p < end && *p == ' ' && !lim->strict)
		while (p < end && *p == ' ')
			p++;
	bracketed = p < end && *p == '<';
	if (!bracketed && lim->strict)
		goto bad;
	if (bracketed) {
		mb = ++p;
		/* find the closing '>' outside a quoted local part */
		for (; p < end; p++) {
			if (inq && *p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				inq = !inq;
			else if (!inq && *p == '>')
				break;
		}
		if (p >= end)
			goto bad;
		mbend = p++;
	} else {
		mb = p;
		for (; p < end && *p != ' '; p++) {
			if (*p == '"') {
				for (p++; p < end && *p != '"'; p++)
					if (*p == '\\' && p + 1 < end)
						p++;
				if (p >= end)
					goto bad;
			}
		}
		mbend = p;
	}
	if ((size_t)(mbend - mb) > SMTP_PATH_MAX) {
		reply_set(r, 501, "5.1.3", "Error: address too long");
		return -1;
	}
	/* A-d-l ":" (a source route): accepted and ignored, 4.1.1.3 */
	if (mb < mbend && *mb == '@') {
		const char *colon = memchr(mb, ':', (size_t)(mbend - mb));
		const char *q;

		if (colon == NULL)
			goto bad;
		for (q = mb; q < colon; ) {
			const char *e = memchr(q, ',', (size_t)(colon - q));

			if (e == NULL)
				e = colon;
			if (*q != '@' || !smtp_domain_ok(q + 1,
			    (size_t)(e - q - 1)))
				goto bad;
			q = e + (e < colon);
		}
		mb = colon + 1;
	}
	if (mbend > mb && !smtp_mailbox_ok(mb, (size_t)(mbend - mb))) {
		/* RCPT TO:<Postmaster> needs no domain (4.1.1.3) */
		if (!(cmd->verb == SMTP_RCPT && mbend - mb == 10 &&
		    strncasecmp(mb, "postmaster", 10) == 0))
			goto bad;
	}
	if (!smtp_utf8_valid(mb, (size_t)(mbend - mb))) {
		reply_set(r, 501, "5.6.7", "Error: bad UTF-8 in address");
		return -1;
	}
	memcpy(cmd->addr, mb, (size_t)(mbend - mb));
	cmd->addr[mbend - mb] = '\0';
	for (const char *q = mb; q < mbend; q++)
		if ((unsigned char)*q >= 0x80)
			cmd->addr_utf8 = true;
	*pp = p;
	return 0;
bad:
	reply_set(r, 501, "5.1.3", "Error: bad address syntax");
	return -1;
}

static int
smtp_xtext_ok(const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '+') {
			if (!isxdigit((unsigned char)v[1]) ||
			    !isxdigit((unsigned char)v[2]))
				return 0;
			v += 2;
		} else if ((unsigned char)*v < 33 || (unsigned char)*v > 126 ||
		    *v == '=')
			return 0;
	}
	return 1;
}

int
smtp_xtext_decode(const char *in, char *out, size_t outsz)
{
	size_t n = 0;
	unsigned v;

	if (!smtp_xtext_ok(in))
		return -1;
	for (; *in != '\0'; in++) {
		if (n + 1 >= outsz)
			return -1;
		if (*in == '+') {
			v = (unsigned)(isdigit((unsigned char)in[1]) ?
			    in[1] - '0' : (tolower((unsigned char)in[1]) -
			    'a' + 10)) << 4;
			v |= (unsigned)(isdigit((unsigned char)in[2]) ?
			    in[2] - '0' : (tolower((unsigned char)in[2]) -
			    'a' + 10));
			out[n++] = (char)v;
			in += 2;
		} else
			out[n++] = *in;
	}
	out[n] = '\0';
	return 0;
}

static int
smtp_uint(const char *v, uint64_t *n_r)
{
	uint64_t n = 0;

	if (*v == '\0' || strlen(v) > 19)
		return -1;
	for (; *v != '\0'; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*n_r = n;
	return 0;
}

static int
smtp_copy_xtext(char *dst, size_t dstsz, const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n == 0 || n > max || n >= dstsz || !smtp_xtext_ok(v))
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

/* smtp_param - apply one "keyword[=value]" of MAIL or RCPT */
static int
smtp_param(struct smtp_cmd *cmd, char *kw, char *val, struct reply *r)
{
	char item[16];
	const char *p;
	size_t n;

	if (cmd->verb == SMTP_MAIL && strcasecmp(kw, "SIZE") == 0) {
		if (val == NULL || cmd->has_size ||
		    smtp_uint(val, &cmd->size) < 0)
			goto bad;
		cmd->has_size = true;
	} else if (cmd->verb == SMTP_MAIL && strcasecmp(kw, "BODY") == 0) {
		if (val == NULL || cmd->body != SMTP_BODY_NONE)
			goto bad;
		if (strcasecmp(val, "7BIT") == 0)
			cmd->body = SMTP_BODY_7BIT;
		else if (strcasecmp(val, "8BITMIME") == 0)
			cmd->body = SMTP_BODY_8BITMIME;
		else {
			reply_set(r, 504, "5.5.4",
			    "Error: BODY=%.20s not supported", val);
			return -1;
		}
	} else if (cmd->verb == SMTP_MAIL && strcasecmp(kw, "SMTPUTF8") == 0) {
		if (val != NULL || cmd->smtputf8)
			goto bad;
		cmd->smtputf8 = true;
	} else if (cmd->verb == SMTP_MAIL && strcasecmp(kw, "RET") == 0) {
		if (val == NULL || cmd->ret != SMTP_RET_NONE)
			goto bad;
		if (strcasecmp(val, "FULL") == 0)
			cmd->ret = SMTP_RET_FULL;
		else if (strcasecmp(val, "HDRS") == 0)
			cmd->ret = SMTP_RET_HDRS;
		else
			goto bad;
	} else if (cmd->verb == SMTP_MAIL && strcasecmp(kw, "ENVID") == 0) {
		/* RFC 3461 4.4: at most 100 characters */
		if (val == NULL || cmd->envid[0] != '\0' ||
		    smtp_copy_xtext(cmd->envid, sizeof(cmd->envid), val,
		    100) < 0)
			goto bad;
	} else if (cmd->verb == SMTP_MAIL && strcasecmp(kw, "AUTH") == 0) {
		if (val == NULL || cmd->auth[0] != '\0' ||
		    (strcmp(val, "<>") != 0 && smtp_copy_xtext(cmd->auth,
		    sizeof(cmd->auth), val, SMTP_XTEXT_MAX) < 0))
			goto bad;
		if (strcmp(val, "<>") == 0)
			memcpy(cmd->auth, "<>", 3);
	} else if (cmd->verb == SMTP_RCPT && strcasecmp(kw, "NOTIFY") == 0) {
		if (val == NULL || cmd->notify != 0)
			goto bad;
		for (p = val; *p != '\0'; p += *p == ',') {
			n = strcspn(p, ",");
			if (n == 0 || n >= sizeof(item))
				goto bad;
			memcpy(item, p, n);
			item[n] = '\0';
			p += n;
			if (strcasecmp(item, "NEVER") == 0)
				cmd->notify |= SMTP_NOTIFY_NEVER;
			else if (strcasecmp(item, "SUCCESS") == 0)
				cmd->notify |= SMTP_NOTIFY_SUCCESS;
			else if (strcasecmp(item, "FAILURE") == 0)
				cmd->notify |= SMTP_NOTIFY_FAILURE;
			else if (strcasecmp(item, "DELAY") == 0)
				cmd->notify |= SMTP_NOTIFY_DELAY;
			else
				goto bad;
			if (*p == ',' && p[1] == '\0')
				goto bad;
		}
		/* RFC 3461 4.1: NEVER stands alone */
		if ((cmd->notify & SMTP_NOTIFY_NEVER) &&
		    cmd->notify != SMTP_NOTIFY_NEVER)
			goto bad;
	} else if (cmd->verb == SMTP_RCPT && strcasecmp(kw, "ORCPT") == 0) {
		p = val != NULL ? strchr(val, ';') : NULL;
		if (p == NULL || p == val || cmd->orcpt[0] != '\0' ||
		    !smtp_xtext_ok(p + 1) || p[1] == '\0' ||
		    strlen(val) > SMTP_XTEXT_MAX)
			goto bad;
		for (const char *q = val; q < p; q++)
			if (!isalnum((unsigned char)*q) && *q != '-')
				goto bad;
		memcpy(cmd->orcpt, val, strlen(val) + 1);
	} else {
		/* RFC 5321 4.1.1.11: unrecognized parameter */
		reply_set(r, 555, "5.5.4", "Error: unsupported option %.30s",
		    kw);
		return -1;
	}
	return 0;
bad:
	reply_set(r, 501, "5.5.4", "Error: bad %.30s parameter", kw);
	return -1;
}

/* smtp_params - SP-separated esmtp-param list */
static int
smtp_params(const char *p, const char *end, struct smtp_cmd *cmd,
    struct reply *r)
{
	char tok[SMTP_XTEXT_MAX + 40], *val;
	const char *q;
	size_t n, i, count = 0;

	/* count first: a long list is refused before any of it is used */
	for (q = p; q < end; q++)
		if (*q != ' ' && (q == p || q[-1] == ' '))
			count++;
	if (count > SMTP_PARAMS_MAX) {
		reply_set(r, 501, "5.5.4", "Error: too many parameters");
		return -1;
	}
	for (;;) {
		if (p >= end)
			return 0;
		if (*p != ' ') {
			reply_set(r, 501, "5.5.4", "Error: bad parameter "
			    "syntax");
			return -1;
		}
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			return 0;
		n = 0;
		while (p + n < end && p[n] != ' ')
			n++;
		if (n >= sizeof(tok)) {
			reply_set(r, 501, "5.5.4", "Error: parameter too "
			    "long");
			return -1;
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		p += n;
		val = strchr(tok, '=');
		if (val != NULL)
			*val++ = '\0';
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		for (i = 0; tok[i] != '\0'; i++)
			if (!isalnum((unsigned char)tok[i]) &&
			    !(i > 0 && tok[i] == '-'))
				break;
		if (i == 0 || tok[i] != '\0' || (val != NULL &&
		    *val == '\0')) {
			reply_set(r, 501, "5.5.4", "Error: bad parameter "
			    "syntax");
			return -1;
		}
		/* esmtp-value = 1*(%d33-60 / %d62-126) */
		for (i = 0; val != NULL && val[i] != '\0'; i++)
			if ((unsigned char)val[i] < 33 ||
			    (unsigned char)val[i] > 126) {
				reply_set(r, 501, "5.5.4", "Error: bad "
				    "parameter syntax");
				return -1;
			}
		if (smtp_param(cmd, tok, val, r) < 0)
			return -1;
	}
}

static int
smtp_no_arg(const char *arg, size_t len, struct smtp_cmd *cmd,
    struct reply *r)
{
	(void)arg;
	if (len == 0)
		return 0;
	reply_set(r, 501, "5.5.4", "Syntax: %s", cmd->name);
	return -1;
}

int
smtp_cmd_parse(const char *line, size_t len, const struct smtp_limits *lim,
    struct smtp_cmd *cmd, struct reply *r)
{
	const char *arg, *end = line + len, *p;
	size_t vlen, alen, i;

	memset(cmd, 0, sizeof(*cmd));
	if (lim == NULL)
		lim = &smtp_limits_default;
	if (len > lim->line_max) {
		reply_set(r, 500, "5.5.2", "Error: line too long");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0' || c == '\r' || c == '\n') {
			reply_set(r, 500, "5.5.2", "Error: bad character in "
			    "command");
			return -1;
		}
	}
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	cmd->verb = SMTP_UNKNOWN;
	if (vlen < sizeof(cmd->name)) {
		for (i = 0; i < vlen; i++)
			cmd->name[i] = (char)toupper((unsigned char)line[i]);
		cmd->name[vlen] = '\0';
		for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]);
		    i++)
			if (strcmp(cmd->name, smtp_verbs[i].name) == 0)
				cmd->verb = smtp_verbs[i].verb;
	}
	if (cmd->verb == SMTP_UNKNOWN) {
		cmd->name[0] = '\0';
		reply_set(r, 500, "5.5.2", "Error: command not recognized");
		return -1;
	}
	arg = line + vlen;
	if (arg < end)
		arg++;		/* the one SP after the verb */
	alen = (size_t)(end - arg);

	switch (cmd->verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
	case SMTP_VRFY:
	case SMTP_EXPN:
	case SMTP_AUTH:
		while (alen > 0 && arg[alen - 1] == ' ')
			alen--;
		if (alen == 0) {
			reply_set(r, 501, "5.5.4", "Syntax: %s %s",
			    cmd->name, cmd->verb == SMTP_AUTH ? "mechanism" :
			    cmd->verb == SMTP_HELO || cmd->verb == SMTP_EHLO ?
			    "hostname" : "address");
			return -1;
		}
		/* FALLTHROUGH */
	case SMTP_NOOP:
	case SMTP_HELP:
		if (alen > SMTP_ARG_MAX) {
			reply_set(r, 501, "5.5.4", "Error: argument too long");
			return -1;
		}
		memcpy(cmd->arg, arg, alen);
		cmd->arg[alen] = '\0';
		return 0;
	case SMTP_DATA:
	case SMTP_RSET:
	case SMTP_QUIT:
	case SMTP_STARTTLS:
		return smtp_no_arg(arg, alen, cmd, r);
	case SMTP_BDAT:
		/* bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] */
		p = arg;
		for (i = 0; p + i < end && isdigit((unsigned char)p[i]); i++)
			;
		if (i == 0 || i > 19)
			goto bdat_bad;
		cmd->chunk_size = 0;
		for (size_t k = 0; k < i; k++)
			cmd->chunk_size = cmd->chunk_size * 10 +
			    (uint64_t)(p[k] - '0');
		p += i;
		if (p == end)
			return 0;
		if (end - p == 5 && strncasecmp(p, " LAST", 5) == 0) {
			cmd->last = true;
			return 0;
		}
bdat_bad:
		reply_set(r, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
		return -1;
	case SMTP_MAIL:
	case SMTP_RCPT:
		p = cmd->verb == SMTP_MAIL ? "FROM:" : "TO:";
		if (alen < strlen(p) || strncasecmp(arg, p, strlen(p)) != 0) {
			reply_set(r, 501, "5.5.4", "Syntax: %s",
			    cmd->verb == SMTP_MAIL ? "MAIL FROM:<address>" :
			    "RCPT TO:<address>");
			return -1;
		}
		p = arg + strlen(p);
		if (smtp_path(&p, (size_t)(end - p), lim, cmd, r) < 0)
			return -1;
		if (cmd->verb == SMTP_RCPT && cmd->addr[0] == '\0') {
			reply_set(r, 501, "5.1.3", "Error: empty recipient");
			return -1;
		}
		return smtp_params(p, end, cmd, r);
	case SMTP_UNKNOWN:
		break;
	}
	reply_set(r, 500, "5.5.2", "Error: command not recognized");
	return -1;
}
