/*
 * smtp_reply - the smtp client's reader of server replies (RFC 5321 4.2)
 *
 * A push parser with no I/O: smtp_reply_feed(rp, line, len, &why) takes
 * one line as the server sent it, without its CR LF, and returns 1 when
 * the line completes a reply (the reply is then in rp until the next
 * feed), 0 when more lines of a multiline reply must follow, or -1 with
 * a static reason in *why when the reply is malformed: a line shorter
 * than three bytes or longer than SMTP_REPLY_LINE_MAX, a code that is
 * not three digits from 200 to 599, a fourth byte other than ' ' or
 * '-', a continuation line whose code differs from the first, or more
 * than SMTP_REPLY_LINES_MAX lines.  After -1 the parser is reset; the
 * caller should drop the connection (it is out of step).
 *
 * A complete reply has:
 *	code	the reply code (220, 250, 550...)
 *	dsn	the RFC 3463 enhanced status code of the first line when it
 *		has one whose class matches the code ("5.1.1"), else ""
 *	text	the whole reply for logs and bounces: the lines with their
 *		codes, joined by one space, as Postfix shows them ("550-5.1.1
 *		no such user 550 5.1.1 try again"), cut at SMTP_REPLY_TEXT_MAX
 *		bytes; control bytes and NUL are shown as '?'
 *	lines	each line's text after the code and separator, NUL
 *		separated (nlines of them), for the EHLO keywords
 * smtp_reply_line(rp, i) gives line i (0 first) of a complete reply.
 *
 * smtp_reply_init() before the first feed, smtp_reply_deinit() at the
 * end; out of memory is fatal.
 */
#ifndef POSTA_SMTP_REPLY_H
#define POSTA_SMTP_REPLY_H

#include <stddef.h>

#include "buf.h"

#define SMTP_REPLY_LINE_MAX	2048	/* bytes per line, CR LF excluded */
#define SMTP_REPLY_LINES_MAX	100	/* lines per reply */
#define SMTP_REPLY_TEXT_MAX	1000	/* bytes of the joined text */

struct smtp_reply {
	int	 code;
	char	 dsn[12];
	char	 text[SMTP_REPLY_TEXT_MAX + 1];
	size_t	 nlines;
	struct buf lines;		/* nlines NUL-terminated texts */
	int	 is_done;		/* the last feed completed it */
};

void	smtp_reply_init(struct smtp_reply *);
void	smtp_reply_deinit(struct smtp_reply *);
int	smtp_reply_feed(struct smtp_reply *, const char *line, size_t len,
	    const char **why_r);
const char *smtp_reply_line(const struct smtp_reply *, size_t i);

/*
 * smtp_reply_dsn - the enhanced status code to record for a reply:
 * its own when it has one, else "C.0.0" with C its class
 */
const char *smtp_reply_dsn(const struct smtp_reply *);

#endif
