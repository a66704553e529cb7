/*
 * content - the message as it goes out after DATA (RFC 5321 4.5.2)
 *
 * A pure encoder over the queue file's content, fed in chunks of any
 * size: lines end in CR LF on the wire (a bare LF becomes CR LF, a bare
 * CR is kept as a byte), a line that starts with '.' gets another '.'
 * (dot stuffing), and a line longer than limit bytes (0: no limit) is
 * broken with CR LF, followed by a space while still inside the message
 * header, so the rest becomes a continuation line, as Postfix does with
 * smtp_line_length_limit.  The stuffed dot counts towards the limit.
 * smtp_content_end() ends an unterminated last line with CR LF and
 * appends the terminating ".\r\n".
 *
 * Output goes to a struct buf; a buf at its limit is a caller bug
 * (log_panic): give it room for 5 * n + 8 bytes per call.
 */
#ifndef POSTA_SMTP_CONTENT_H
#define POSTA_SMTP_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct smtp_content {
	size_t	 limit;
	size_t	 line_len;		/* bytes of the current output line */
	bool	 is_bol;		/* at the start of a line */
	bool	 in_header;
	bool	 has_cr;		/* a CR waits for the next byte */
	unsigned long long nbreaks;	/* lines broken, for the log */
};

void	smtp_content_init(struct smtp_content *, size_t limit);
void	smtp_content_run(struct smtp_content *, const char *in, size_t n,
	    struct buf *out);
void	smtp_content_end(struct smtp_content *, struct buf *out);

#endif
