/*
 * fuzz_stream_line - arbitrary bytes through a socketpair into
 * stream_getline(), checked against a plain reference splitter
 *
 * Input: byte 0 picks line_max (1..64), byte 1 the size of the pieces
 * the bytes are written in (1..32), the rest is what the peer sends.
 * The reference cuts the input at each LF: a piece longer than line_max
 * once a final CR is dropped must give exactly one "too long", any other
 * a line with the same bytes and flags; an unterminated tail gives
 * nothing, unless it is already too long.  Any difference aborts.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct ref {
	const uint8_t	*p;
	size_t		 pos, len, line_max;
};

enum { REF_END, REF_LINE, REF_LONG };

/* ref_next - the next event the stream must give */
static int
ref_next(struct ref *r, const uint8_t **line, size_t *len, int *flags)
{
	const uint8_t *lf;
	size_t n;

	if (r->pos >= r->len)
		return REF_END;
	*line = r->p + r->pos;
	lf = memchr(*line, '\n', r->len - r->pos);
	if (lf == NULL) {
		n = r->len - r->pos;
		r->pos = r->len;
		if (n > r->line_max + 1 ||
		    (n == r->line_max + 1 && (*line)[n - 1] != '\r'))
			return REF_LONG;
		return REF_END;
	}
	n = (size_t)(lf - *line);
	r->pos += n + 1;
	*flags = 0;
	if (n > 0 && (*line)[n - 1] == '\r') {
		n--;
		*flags |= STREAM_LINE_CRLF;
	}
	if (n > r->line_max)
		return REF_LONG;
	if (memchr(*line, '\0', n) != NULL)
		*flags |= STREAM_LINE_NUL;
	*len = n;
	return REF_LINE;
}

/* drain - take every line the stream has; check each against ref */
static void
drain(struct stream *s, struct ref *r)
{
	const uint8_t *want;
	const char *line;
	size_t len, wantlen = 0;
	int flags, wantflags = 0, g;

	for (;;) {
		g = stream_getline(s, &line, &len, &flags);
		if (g == 0) {
			if (stream_fill(s) <= 0)
				return;
			continue;
		}
		switch (ref_next(r, &want, &wantlen, &wantflags)) {
		case REF_LINE:
			if (g != 1 || len != wantlen || flags != wantflags ||
			    memcmp(line, want, len) != 0 || line[len] != '\0' ||
			    len > r->line_max)
				abort();
			break;
		case REF_LONG:
			if (g != -1 || errno != EMSGSIZE)
				abort();
			break;
		default:
			abort();	/* the stream saw more than there is */
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream_limits lim = { 0, 1000, 1000, 0 };
	struct ref r;
	struct stream *s;
	size_t chunk, off, n;
	const uint8_t *want;
	size_t wantlen;
	int sv[2], wantflags;

	if (size < 2)
		return 0;
	lim.line_max = 1 + data[0] % 64;
	chunk = 1 + data[1] % 32;
	data += 2;
	size -= 2;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if ((s = stream_new(sv[0], &lim, 0)) == NULL)
		abort();
	r.p = data;
	r.pos = 0;
	r.len = size;
	r.line_max = lim.line_max;
	for (off = 0; off < size; off += n) {
		n = size - off < chunk ? size - off : chunk;
		if (write(sv[1], data + off, n) != (ssize_t)n)
			abort();
		drain(s, &r);
	}
	close(sv[1]);
	drain(s, &r);
	if (!stream_is_eof(s))
		abort();
	/* whatever is left must be an unterminated, not too long, tail */
	if (ref_next(&r, &want, &wantlen, &wantflags) != REF_END)
		abort();
	stream_free(&s);
	return 0;
}
