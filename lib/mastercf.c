/*
 * mastercf - the master.conf service table (see mastercf.h)
 *
 * The text is cut into physical lines, which are joined into logical
 * lines (a line starting with white space continues the previous one),
 * and each logical line is split into fields and checked field by field.
 * Every error is reported with the number of the line where its logical
 * line starts, and parsing goes on so that one run lists all of them.
 * Setting overrides are checked by setting them in a throw-away cfg made
 * for the command's scope: the same check the program itself will make.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "file.h"
#include "mastercf.h"
#include "mem.h"
#include "settings.h"
#include "strnum.h"

#define MASTERCF_FIELDS	5

struct mastercf_ctx {
	struct mastercf *cf;
	const char *origin;
	struct buf *errs;
	int	 nerr;
	int	 too_many;	/* "too many services" said once */
};

static void mastercf_error(struct mastercf_ctx *, unsigned long,
	    const char *, ...) __attribute__((format(printf, 3, 4)));

static void
mastercf_error(struct mastercf_ctx *x, unsigned long line, const char *fmt,
    ...)
{
	va_list ap;

	x->nerr++;
	(void)buf_printf(x->errs, "%s:%lu: ", x->origin, line);
	va_start(ap, fmt);
	(void)buf_vprintf(x->errs, fmt, ap);
	va_end(ap);
	(void)buf_putc(x->errs, '\n');
}

const char *
mastercf_type_name(enum mastercf_type t)
{
	switch (t) {
	case MASTERCF_INET:
		return "inet";
	case MASTERCF_UNIX:
		return "unix";
	case MASTERCF_NONE:
		return "none";
	}
	return "?";
}

static int
mastercf_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > MASTERCF_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int
mastercf_host_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= MASTERCF_HOST_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '.' ||
		    s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

/*
 * mastercf_inet_check - the work of mastercf_inet_split; on error *why_r
 * says what is wrong ("bad port" or "bad address")
 */
static int
mastercf_inet_check(const char *listen, char *host, size_t hostsz,
    unsigned *port_r, const char **why_r)
{
	unsigned char a6[16];
	char tmp[MASTERCF_HOST_MAX];
	const char *h, *colon, *portstr;
	unsigned long long port;
	size_t hn;

	if (listen[0] == '[') {
		h = listen + 1;
		if ((colon = strchr(h, ']')) == NULL || colon[1] != ':') {
			*why_r = "bad address: expected [ipv6]:port";
			return -1;
		}
		hn = (size_t)(colon - h);
		portstr = colon + 2;
		if (hn == 0 || hn >= sizeof(tmp)) {
			*why_r = "bad IPv6 address";
			return -1;
		}
		memcpy(tmp, h, hn);
		tmp[hn] = '\0';
		if (inet_pton(AF_INET6, tmp, a6) != 1) {
			*why_r = "bad IPv6 address";
			return -1;
		}
	} else if ((colon = strrchr(listen, ':')) != NULL) {
		h = listen;
		hn = (size_t)(colon - listen);
		portstr = colon + 1;
		if (memchr(h, ':', hn) != NULL) {
			*why_r = "bad address: write an IPv6 address as "
			    "[address]:port";
			return -1;
		}
		if (hn == 1 && h[0] == '*')
			hn = 0;
		else if (!mastercf_host_ok(h, hn)) {
			*why_r = "bad host name or address";
			return -1;
		}
	} else {
		h = listen;
		hn = 0;
		portstr = listen;
	}
	if (str_to_uint(portstr, 1, 65535, &port) < 0) {
		*why_r = "bad port (expected 1-65535)";
		return -1;
	}
	if (hn >= hostsz) {
		*why_r = "host name too long";
		return -1;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	*port_r = (unsigned)port;
	return 0;
}

int
mastercf_inet_split(const char *listen, char *host, size_t hostsz,
    unsigned *port_r)
{
	const char *why;

	return mastercf_inet_check(listen, host, hostsz, port_r, &why);
}

mode_t
mastercf_unix_mode(const char *listen)
{
	return strncmp(listen, "public/", 7) == 0 ? 0666 : 0600;
}

/* mastercf_unix_check - a usable socket path; NULL or what is wrong */
static const char *
mastercf_unix_check(const char *p)
{
	const char *s;
	size_t n = strlen(p);

	if (n == 0 || strcmp(p, "-") == 0)
		return "missing socket path";
	if (n > MASTERCF_PATH_MAX)
		return "socket path too long";
	if (p[n - 1] == '/')
		return "socket path ends in '/'";
	for (s = p; *s != '\0'; ) {
		if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || s[2] == '\0'))
			return "socket path contains \"..\"";
		if ((s = strchr(s, '/')) == NULL)
			break;
		s++;
	}
	return NULL;
}

static void
mastercf_service_deinit(struct mastercf_service *s)
{
	size_t i;

	free(s->name);
	free(s->listen);
	free(s->command);
	for (i = 0; i < s->nargs; i++)
		free(s->args[i]);
	free(s->args);
	for (i = 0; i < s->noverrides; i++)
		free(s->overrides[i]);
	free(s->overrides);
	free(s->origin);
}

void
mastercf_free(struct mastercf **cfp)
{
	struct mastercf *cf = *cfp;
	size_t i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->n; i++)
		mastercf_service_deinit(&cf->svc[i]);
	free(cf->svc);
	free(cf);
	*cfp = NULL;
}

const struct mastercf_service *
mastercf_lookup(const struct mastercf *cf, const char *name)
{
	size_t i;

	for (i = 0; i < cf->n; i++)
		if (strcmp(cf->svc[i].name, name) == 0)
			return &cf->svc[i];
	return NULL;
}

int
mastercf_service_equal(const struct mastercf_service *a,
    const struct mastercf_service *b)
{
	size_t i;

	if (a->type != b->type || a->procs != b->procs ||
	    a->nargs != b->nargs || strcmp(a->name, b->name) != 0 ||
	    strcmp(a->listen, b->listen) != 0 ||
	    strcmp(a->command, b->command) != 0)
		return 0;
	for (i = 0; i < a->nargs; i++)
		if (strcmp(a->args[i], b->args[i]) != 0)
			return 0;
	return 1;
}

/* mastercf_line - check one logical line (fields in tok) and add it */
static void
mastercf_line(struct mastercf_ctx *x, unsigned long line, char **tok,
    size_t ntok)
{
	struct mastercf_service s;
	const struct mastercf_service *dup;
	struct cfg *c = NULL;
	unsigned long long procs;
	char origin[512], host[MASTERCF_HOST_MAX];
	const char *why, *base;
	unsigned port;
	size_t i;
	int bad = 0;

	if (ntok < MASTERCF_FIELDS) {
		mastercf_error(x, line, "missing fields: expected "
		    "\"service type listen procs command [arguments]\"");
		return;
	}
	(void)snprintf(origin, sizeof(origin), "%s:%lu", x->origin, line);
	memset(&s, 0, sizeof(s));

	if (!mastercf_name_ok(tok[0])) {
		mastercf_error(x, line, "bad service name \"%.100s\": "
		    "expected 1-%d of [a-z0-9_-]", tok[0], MASTERCF_NAME_MAX);
		bad = 1;
	} else if ((dup = mastercf_lookup(x->cf, tok[0])) != NULL) {
		mastercf_error(x, line, "duplicate service \"%s\" (first "
		    "defined at %s)", tok[0], dup->origin);
		bad = 1;
	}

	if (strcmp(tok[1], "inet") == 0)
		s.type = MASTERCF_INET;
	else if (strcmp(tok[1], "unix") == 0)
		s.type = MASTERCF_UNIX;
	else if (strcmp(tok[1], "none") == 0)
		s.type = MASTERCF_NONE;
	else {
		mastercf_error(x, line, "unknown service type \"%.100s\": "
		    "expected inet, unix or none", tok[1]);
		bad = 1;
		s.type = MASTERCF_NONE;
		goto procs;	/* listen cannot be checked */
	}

	switch (s.type) {
	case MASTERCF_INET:
		if (mastercf_inet_check(tok[2], host, sizeof(host), &port,
		    &why) < 0) {
			mastercf_error(x, line, "inet listen \"%.100s\": %s",
			    tok[2], why);
			bad = 1;
		}
		break;
	case MASTERCF_UNIX:
		if ((why = mastercf_unix_check(tok[2])) != NULL) {
			mastercf_error(x, line, "unix listen \"%.100s\": %s",
			    tok[2], why);
			bad = 1;
		}
		break;
	case MASTERCF_NONE:
		if (strcmp(tok[2], "-") != 0) {
			mastercf_error(x, line, "type none takes no listen "
			    "address: write \"-\", not \"%.100s\"", tok[2]);
			bad = 1;
		}
		break;
	}

procs:
	if (strcmp(tok[3], "-") == 0)
		s.procs = 1;
	else if (str_to_uint(tok[3], 1, MASTERCF_PROCS_MAX, &procs) == 0)
		s.procs = (unsigned)procs;
	else {
		mastercf_error(x, line, "bad procs \"%.100s\": expected "
		    "1-%d or \"-\"", tok[3], MASTERCF_PROCS_MAX);
		bad = 1;
	}

	if (strchr(tok[4], '/') != NULL && (tok[4][0] != '/' ||
	    tok[4][strlen(tok[4]) - 1] == '/')) {
		mastercf_error(x, line, "bad command \"%.100s\": expected a "
		    "program name or an absolute path", tok[4]);
		bad = 1;
	}
	base = strrchr(tok[4], '/');
	base = base != NULL ? base + 1 : tok[4];

	for (i = MASTERCF_FIELDS; i < ntok; i++) {
		if (strcmp(tok[i], "-o") != 0)
			continue;
		if (i + 1 == ntok) {
			mastercf_error(x, line, "-o without name=value");
			bad = 1;
			break;
		}
		i++;
		if (c == NULL)
			c = cfg_new(posta_settings,
			    SCOPE_POSTA | settings_scope(base));
		if (cfg_set_assignment(c, tok[i], origin, x->errs) < 0) {
			x->nerr++;
			bad = 1;
		}
	}
	cfg_free(&c);
	if (bad)
		return;

	if (x->cf->n >= MASTERCF_SERVICES_MAX) {
		if (!x->too_many)
			mastercf_error(x, line, "too many services (over %d)",
			    MASTERCF_SERVICES_MAX);
		x->too_many = 1;
		x->nerr++;
		return;
	}
	s.name = xstrdup(tok[0]);
	s.listen = xstrdup(tok[2]);
	s.command = xstrdup(tok[4]);
	s.origin = xstrdup(origin);
	s.nargs = ntok - MASTERCF_FIELDS;
	s.args = xcalloc(s.nargs + 1, sizeof(*s.args));
	s.overrides = xcalloc(s.nargs / 2 + 1, sizeof(*s.overrides));
	for (i = 0; i < s.nargs; i++)
		s.args[i] = xstrdup(tok[MASTERCF_FIELDS + i]);
	for (i = 0; i < s.nargs; i++) {
		if (strcmp(s.args[i], "-o") == 0 && i + 1 < s.nargs) {
			s.overrides[s.noverrides++] = xstrdup(s.args[i + 1]);
			i++;
		}
	}
	x->cf->svc = xreallocarray(x->cf->svc, x->cf->n + 1,
	    sizeof(*x->cf->svc));
	x->cf->svc[x->cf->n++] = s;
}

/* mastercf_flush - split a finished logical line and check it */
static void
mastercf_flush(struct mastercf_ctx *x, struct buf *lbuf, unsigned long line)
{
	char *tok[MASTERCF_FIELDS + MASTERCF_ARGS_MAX + 1];
	char *p = lbuf->data, *end;
	size_t ntok = 0;

	if (lbuf->len == 0)
		return;
	end = p + lbuf->len;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			*p++ = '\0';
		if (p == end)
			break;
		if (ntok == MASTERCF_FIELDS + MASTERCF_ARGS_MAX) {
			mastercf_error(x, line, "too many arguments (over %d)",
			    MASTERCF_ARGS_MAX);
			buf_reset(lbuf);
			return;
		}
		tok[ntok++] = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
	}
	mastercf_line(x, line, tok, ntok);
	buf_reset(lbuf);
}

int
mastercf_parse(const char *text, size_t len, const char *origin,
    struct mastercf **cf_r, struct buf *errs)
{
	struct mastercf_ctx x;
	struct buf lbuf;
	const char *p = text, *end = text + len, *nl, *q;
	unsigned long lineno = 0, start = 0;
	size_t n, i;
	int in_line = 0, skip = 0;

	memset(&x, 0, sizeof(x));
	x.cf = xcalloc(1, sizeof(*x.cf));
	x.origin = origin;
	x.errs = errs;
	buf_init(&lbuf, MASTERCF_LINE_MAX);

	if (len > MASTERCF_FILE_MAX) {
		mastercf_error(&x, 1, "file too large (over %d bytes)",
		    MASTERCF_FILE_MAX);
		goto done;
	}
	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		q = p;
		p = nl != NULL ? nl + 1 : end;
		if (n > 0 && q[n - 1] == '\r')
			n--;

		for (i = 0; i < n && (q[i] == ' ' || q[i] == '\t'); i++)
			;
		if (i == n || q[i] == '#')
			continue;	/* blank or comment */
		if (i == 0) {
			/* a new service line ends the one before */
			if (in_line && !skip)
				mastercf_flush(&x, &lbuf, start);
			buf_reset(&lbuf);
			in_line = 1;
			skip = 0;
			start = lineno;
		} else if (!in_line) {
			mastercf_error(&x, lineno, "continuation line "
			    "without a service line before it");
			continue;
		}
		if (skip)
			continue;
		for (i = 0; i < n; i++)
			if (((unsigned char)q[i] < 0x20 && q[i] != '\t') ||
			    q[i] == 0x7f)
				break;
		if (i < n) {
			mastercf_error(&x, lineno, "%s character in line",
			    q[i] == '\0' ? "NUL" : "control");
			skip = 1;
			continue;
		}
		if ((lbuf.len > 0 && buf_putc(&lbuf, ' ') < 0) ||
		    buf_append(&lbuf, q, n) < 0) {
			mastercf_error(&x, start, "line too long (over %d "
			    "bytes)", MASTERCF_LINE_MAX);
			skip = 1;
		}
	}
	if (in_line && !skip)
		mastercf_flush(&x, &lbuf, start);
done:
	buf_deinit(&lbuf);
	if (x.nerr > 0) {
		mastercf_free(&x.cf);
		*cf_r = NULL;
		return -1;
	}
	*cf_r = x.cf;
	return 0;
}

int
mastercf_load(const char *path, struct mastercf **cf_r, struct buf *errs)
{
	struct buf text;
	int rc;

	*cf_r = NULL;
	buf_init(&text, MASTERCF_FILE_MAX);
	if ((rc = file_read_all(path, MASTERCF_FILE_MAX, 0, &text,
	    errs)) > 0)
		rc = mastercf_parse(buf_cstr(&text), text.len, path, cf_r,
		    errs);
	buf_deinit(&text);
	return rc;
}
