/*
 * content - dot stuffing and line breaking for DATA (see content.h)
 */
#include "content.h"
#include "log.h"

void
smtp_content_init(struct smtp_content *c, size_t limit)
{
	c->limit = limit;
	c->line_len = 0;
	c->is_bol = true;
	c->in_header = true;
	c->has_cr = false;
	c->nbreaks = 0;
}

static void
content_put(struct buf *out, const char *s, size_t n)
{
	if (buf_append(out, s, n) < 0)
		log_panic("smtp content: output buffer full");
}

static void
content_eol(struct smtp_content *c, struct buf *out)
{
	content_put(out, "\r\n", 2);
	/* the first empty line ends the header */
	if (c->line_len == 0)
		c->in_header = false;
	c->line_len = 0;
	c->is_bol = true;
}

/* content_byte - one byte of line text */
static void
content_byte(struct smtp_content *c, char ch, struct buf *out)
{
	if (c->limit > 0 && c->line_len >= c->limit) {
		c->nbreaks++;
		content_put(out, "\r\n", 2);
		if (c->in_header) {
			content_put(out, " ", 1);
			c->line_len = 1;
			c->is_bol = false;
		} else {
			c->line_len = 0;
			c->is_bol = true;
		}
	}
	if (c->is_bol && ch == '.') {
		content_put(out, ".", 1);
		c->line_len++;
	}
	content_put(out, &ch, 1);
	c->line_len++;
	c->is_bol = false;
}

void
smtp_content_run(struct smtp_content *c, const char *in, size_t n,
    struct buf *out)
{
	size_t i;

	if (buf_reserve(out, 5 * n + 8) < 0)
		log_panic("smtp content: output buffer too small");
	for (i = 0; i < n; i++) {
		if (c->has_cr) {
			c->has_cr = false;
			if (in[i] == '\n') {
				content_eol(c, out);
				continue;
			}
			content_byte(c, '\r', out);
		}
		if (in[i] == '\r')
			c->has_cr = true;
		else if (in[i] == '\n')
			content_eol(c, out);
		else
			content_byte(c, in[i], out);
	}
}

void
smtp_content_end(struct smtp_content *c, struct buf *out)
{
	if (buf_reserve(out, 8) < 0)
		log_panic("smtp content: output buffer too small");
	if (c->has_cr) {
		c->has_cr = false;
		content_byte(c, '\r', out);
	}
	if (!c->is_bol)
		content_eol(c, out);
	content_put(out, ".\r\n", 3);
}
