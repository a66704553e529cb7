/*
 * smtp_data - the byte-level reader of SMTP message content
 *
 * A push parser with no I/O and no allocation: smtpd feeds it the bytes
 * of DATA (or of BDAT chunks) as they arrive, and it gives back the
 * content to store, with what it saw on the way.
 *
 * DATA mode (smtp_data_init(st, 0)), RFC 5321 4.1.1.4 and 4.5.2:
 *   - the content ends ONLY at <CRLF>.<CRLF>: the "." line must start
 *     right after a CR LF (the CR LF that ended the DATA command counts,
 *     so ".\r\n" at once is an empty message) and end with CR LF.  "\n.\n",
 *     "\r\n.\n", "\n.\r\n" and "\r.\r" are never the end (SMTP
 *     smuggling: a server that took them as the end would let a client
 *     slip a second message past the first one's checks);
 *   - a line that starts with "." has that dot removed (dot-stuffing);
 *     only lines that begin after a CR LF are unstuffed;
 *   - a LF not preceded by CR (bare LF) and a CR not followed by LF
 *     (bare CR) set SMTP_DATA_BARE_LF / SMTP_DATA_BARE_CR in st->flags.
 *     The output turns a bare LF into CR LF (so stored lines always end
 *     in CR LF) and keeps a bare CR as it is; smtpd refuses such a
 *     message by default, the flags say why.  A line after a bare LF is
 *     not a line start for dot handling.
 *
 * BDAT mode (SMTP_DATA_RAW, RFC 3030): no dot handling and no end
 * marker (the chunk sizes frame the message); bare LF / CR are flagged
 * and normalised the same way.  smtp_data_finish() ends the content: it
 * writes a CR held back at the end of the input and, in raw mode, adds
 * CR LF when the content does not end with one.
 *
 * smtp_data_push(st, in, len, out, out_len_r) reads from in until the
 * end marker or the end of in; it returns the number of bytes consumed
 * (less than len only when the end marker was reached: the rest belongs
 * to the next command) and stores in *out_len_r the bytes written to
 * out, which must have room for SMTP_DATA_OUT_MAX(len) bytes.  After the
 * end marker st->is_done is true and further pushes consume nothing.
 * st->size counts the content bytes produced (what the size limit
 * applies to: stuffing dots are not counted).  Never fails.
 */
#ifndef POSTA_SMTP_DATA_H
#define POSTA_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_DATA_RAW		0x01	/* smtp_data_init() option: BDAT */

#define SMTP_DATA_BARE_LF	0x01	/* st->flags */
#define SMTP_DATA_BARE_CR	0x02

/* room needed in out for a push of n bytes */
#define SMTP_DATA_OUT_MAX(n)	(2 * (size_t)(n) + 4)

struct smtp_data {
	int	 state;		/* private */
	unsigned opts;		/* SMTP_DATA_RAW */
	unsigned flags;		/* SMTP_DATA_BARE_* seen so far */
	uint64_t size;		/* content bytes produced */
	uint64_t lines;		/* lines ended so far */
	bool	 is_done;	/* end marker seen (DATA mode) */
};

void	smtp_data_init(struct smtp_data *, unsigned opts);
size_t	smtp_data_push(struct smtp_data *, const char *in, size_t len,
	    char *out, size_t *out_len_r);
/* smtp_data_finish - flush what is held back (room: 4 bytes) */
size_t	smtp_data_finish(struct smtp_data *, char *out);

#endif
