/*
 * fuzz_smtp_reply - libFuzzer target for the smtp client's reply parser
 * (smtp/smtp_reply.c) and its DATA encoder (smtp/content.c)
 *
 * Both live in the smtp program, not in libposta, so their sources are
 * compiled into this target.  The input is cut into lines at LF (a CR
 * before it dropped, as lib/stream does) and fed to one parser; every
 * complete reply must have a code in 200..599, a bounded text and as
 * many lines as it says.  The same bytes then go through the encoder,
 * in two chunks, whose output must never hold a line longer than the
 * limit plus the stuffed dot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtp/content.c"
#include "../../smtp/smtp_reply.c"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_encoder(const char *in, size_t n)
{
	struct smtp_content c;
	struct buf out;
	size_t half = n / 2, i, len = 0;

	buf_init(&out, 0);
	smtp_content_init(&c, 78);
	smtp_content_run(&c, in, half, &out);
	smtp_content_run(&c, in + half, n - half, &out);
	smtp_content_end(&c, &out);
	for (i = 0; i < buf_len(&out); i++) {
		if (out.data[i] == '\n') {
			len = 0;
			continue;
		}
		if (out.data[i] != '\r' && ++len > 80)
			abort();
	}
	if (buf_len(&out) < 3 || memcmp(out.data + buf_len(&out) - 3,
	    ".\r\n", 3) != 0)
		abort();
	buf_deinit(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl, *why;
	struct smtp_reply rp;
	size_t n, i;
	int r;

	smtp_reply_init(&rp);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		r = smtp_reply_feed(&rp, p, n, &why);
		if (r > 0) {
			if (rp.code < 200 || rp.code > 599 ||
			    strlen(rp.text) > SMTP_REPLY_TEXT_MAX ||
			    rp.nlines == 0 || rp.nlines > SMTP_REPLY_LINES_MAX)
				abort();
			for (i = 0; i < rp.nlines; i++)
				(void)smtp_reply_line(&rp, i);
			(void)smtp_reply_dsn(&rp);
		} else if (r < 0 && why == NULL)
			abort();
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	smtp_reply_deinit(&rp);
	fuzz_encoder((const char *)data, size);
	return 0;
}
