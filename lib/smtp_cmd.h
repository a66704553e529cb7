/*
 * smtp_cmd - parse one SMTP command line (RFC 5321, with the ESMTP
 * extensions posta offers: SIZE, 8BITMIME, SMTPUTF8, DSN, CHUNKING, AUTH)
 *
 * smtp_cmd_parse(line, len, lim, cmd_r, r) takes one command line
 * WITHOUT its CRLF and fills cmd_r, returning 0; or returns -1 with r
 * holding the reply the client must get (500/501/504 and an RFC 3463
 * code).  It is a pure function: no I/O, no allocation, no globals, so
 * the same code serves smtpd, the unit tests and the fuzzer.
 *
 * What is checked here is syntax: the verb, the path syntax of MAIL and
 * RCPT (RFC 5321 4.1.2, with UTF-8 in local part and domain accepted as
 * RFC 6531 allows; source routes are accepted and dropped, 4.1.1.3),
 * the form and number of ESMTP parameters (keyword[=value]), and the
 * values of the parameters posta knows (SIZE, BODY, SMTPUTF8, RET,
 * ENVID, NOTIFY, ORCPT, AUTH).  Whether a command is allowed now, and
 * policy, are smtpd's business.
 *
 * Limits (struct smtp_limits, smtp_limits_default): the line length
 * (RFC 5321 4.5.3.1.4: 512 octets, posta allows more by default, as
 * Postfix does), local part 64 and domain 255 octets (4.5.3.1.1-2),
 * path 256 (4.5.3.1.3), at most SMTP_PARAMS_MAX parameters.  With
 * lim->strict off, "MAIL FROM: <a@b>" (space after the colon) and a path
 * without angle brackets are tolerated, as Postfix does by default.
 */
#ifndef POSTA_SMTP_CMD_H
#define POSTA_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply.h"

#define SMTP_LOCAL_MAX	64
#define SMTP_DOMAIN_MAX	255
#define SMTP_PATH_MAX	256
#define SMTP_ARG_MAX	1024
#define SMTP_PARAMS_MAX	10
#define SMTP_XTEXT_MAX	500

enum smtp_verb {
	SMTP_UNKNOWN,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_STARTTLS,
	SMTP_AUTH,
};

/* what a client says in MAIL FROM parameters */
enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER	0x01
#define SMTP_NOTIFY_SUCCESS	0x02
#define SMTP_NOTIFY_FAILURE	0x04
#define SMTP_NOTIFY_DELAY	0x08

struct smtp_limits {
	size_t	line_max;	/* whole command line */
	bool	strict;		/* refuse "FROM: <x>" and bare addresses */
};

extern const struct smtp_limits smtp_limits_default;

struct smtp_cmd {
	enum smtp_verb verb;
	char	 name[16];		/* the verb as sent, for logs */
	char	 arg[SMTP_ARG_MAX + 1];	/* HELO/EHLO/VRFY/EXPN/HELP/AUTH */

	/* MAIL, RCPT: the mailbox without <>; "" is the null sender */
	char	 addr[SMTP_PATH_MAX + 1];
	bool	 addr_utf8;		/* has octets >= 0x80 */

	/* MAIL parameters */
	uint64_t size;			/* SIZE=, 0 if not given */
	bool	 has_size;
	enum smtp_body body;
	bool	 smtputf8;
	enum smtp_ret ret;
	char	 envid[SMTP_XTEXT_MAX + 1];	/* xtext, as sent */
	char	 auth[SMTP_XTEXT_MAX + 1];	/* AUTH=, as sent */

	/* RCPT parameters */
	unsigned notify;		/* SMTP_NOTIFY_*, 0 if not given */
	char	 orcpt[SMTP_XTEXT_MAX + 1];	/* "rfc822;xtext", as sent */

	/* BDAT */
	uint64_t chunk_size;
	bool	 last;
};

int	smtp_cmd_parse(const char *line, size_t len,
	    const struct smtp_limits *lim, struct smtp_cmd *cmd_r,
	    struct reply *r);

/* smtp_verb_name - upper-case name of a verb, "UNKNOWN" for none */
const char *smtp_verb_name(enum smtp_verb);

/*
 * smtp_xtext_decode - decode RFC 3461 xtext ("+2B" is '+') into out
 * (size outsz); 0, or -1 if malformed or too long
 */
int	smtp_xtext_decode(const char *in, char *out, size_t outsz);

/* smtp_utf8_valid - 1 if s[0..len) is well-formed UTF-8, else 0 */
int	smtp_utf8_valid(const char *s, size_t len);

#endif
