/*
 * smtp_data - DATA/BDAT content state machine (see smtp_data.h)
 *
 * States, with what is held back (not yet written to out):
 *	BOL	at the start of a line that began after CR LF
 *	DOT	BOL, then "." (the dot is held)
 *	DOTCR	BOL, then ".\r" (both held): "\n" now is the end
 *	TEXT	inside a line, or at a line start after a bare LF
 *	CR	"\r" seen (held): "\n" ends the line, anything else makes
 *		it a bare CR
 * Like qmail's DATA reader, one byte at a time: the work per byte is a
 * switch, and no input can make it loop or grow.
 */
#include <string.h>

#include "smtp_data.h"

enum {
	SD_BOL,
	SD_DOT,
	SD_DOTCR,
	SD_TEXT,
	SD_CR,
};

void
smtp_data_init(struct smtp_data *st, unsigned opts)
{
	memset(st, 0, sizeof(*st));
	st->opts = opts;
	st->state = SD_BOL;
}

size_t
smtp_data_push(struct smtp_data *st, const char *in, size_t len, char *out,
    size_t *out_len_r)
{
	size_t i = 0, o = 0;
	char c;

	if (st->is_done) {
		*out_len_r = 0;
		return 0;
	}
	while (i < len) {
		c = in[i];
		switch (st->state) {
		case SD_BOL:
			/* raw (BDAT) content has no dot rules */
			if (c == '.' && !(st->opts & SMTP_DATA_RAW)) {
				st->state = SD_DOT;
				i++;
				continue;
			}
			st->state = SD_TEXT;
			continue;	/* same byte, as text */
		case SD_DOT:
			if (c == '\r') {
				st->state = SD_DOTCR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* ".<LF>": not the end; keep the dot */
				st->flags |= SMTP_DATA_BARE_LF;
				out[o++] = '.';
				out[o++] = '\r';
				out[o++] = '\n';
				st->lines++;
				st->state = SD_TEXT;
				i++;
				continue;
			}
			/* a stuffing dot: dropped */
			st->state = SD_TEXT;
			continue;
		case SD_DOTCR:
			if (c == '\n') {
				st->is_done = true;
				i++;
				goto out;
			}
			/* ".<CR>x": the dot was stuffing, the CR is bare */
			st->flags |= SMTP_DATA_BARE_CR;
			out[o++] = '\r';
			st->state = SD_TEXT;
			continue;
		case SD_TEXT:
			if (c != '\r' && c != '\n') {
				/*
				 * Fast path: copy the run up to the next CR or
				 * LF at once (memchr, not a byte per turn of
				 * this loop); most of a message is such runs.
				 */
				const char *lf = memchr(in + i, '\n', len - i);
				const char *end = lf != NULL ? lf : in + len;
				const char *cr = memchr(in + i, '\r',
				    (size_t)(end - (in + i)));
				size_t n;

				if (cr != NULL)
					end = cr;
				n = (size_t)(end - (in + i));
				memcpy(out + o, in + i, n);
				o += n;
				i += n;
				continue;
			}
			if (c == '\r') {
				st->state = SD_CR;
			} else if (c == '\n') {
				st->flags |= SMTP_DATA_BARE_LF;
				out[o++] = '\r';
				out[o++] = '\n';
				st->lines++;
				/* a line start for BDAT's end check only */
				if (st->opts & SMTP_DATA_RAW)
					st->state = SD_BOL;
			} else {
				out[o++] = c;
			}
			i++;
			continue;
		case SD_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				st->lines++;
				st->state = SD_BOL;
				i++;
				continue;
			}
			st->flags |= SMTP_DATA_BARE_CR;
			out[o++] = '\r';
			st->state = SD_TEXT;
			continue;	/* same byte, as text */
		}
	}
out:
	st->size += o;
	*out_len_r = o;
	return i;
}

size_t
smtp_data_finish(struct smtp_data *st, char *out)
{
	size_t o = 0;
	bool at_bol = st->state == SD_BOL;

	switch (st->state) {
	case SD_CR:
		/* a CR at the very end is bare: no LF can follow now */
		st->flags |= SMTP_DATA_BARE_CR;
		out[o++] = '\r';
		break;
	case SD_DOT:
		out[o++] = '.';
		break;
	case SD_DOTCR:
		st->flags |= SMTP_DATA_BARE_CR;
		out[o++] = '.';
		out[o++] = '\r';
		break;
	default:
		break;
	}
	/* stored content ends with CR LF (raw: unless it is empty) */
	if ((st->opts & SMTP_DATA_RAW) && !at_bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	st->state = SD_BOL;
	st->size += o;
	return o;
}
