/*
 * buf - growable byte buffer with a hard size limit (see buf.h)
 *
 * The buffer grows by doubling, but never past its limit; every write
 * checks the limit first so a peer cannot make it grow without bound.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

struct buf *
buf_new(size_t max)
{
	struct buf *b = xmalloc(sizeof(*b));

	buf_init(b, max);
	return b;
}

void
buf_free(struct buf **bp)
{
	if (*bp == NULL)
		return;
	buf_deinit(*bp);
	free(*bp);
	*bp = NULL;
}

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max ? max : BUF_MAX_DEFAULT;
}

void
buf_deinit(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;

	if (n > b->max || b->len > b->max - n) {
		errno = EMSGSIZE;
		return -1;
	}
	need = b->len + n + 1;		/* room for the NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, int c)
{
	char ch = (char)c;

	return buf_append(b, &ch, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		log_panic("buf_vprintf: bad format \"%s\"", fmt);
	if (buf_reserve(b, (size_t)n) < 0)
		return -1;
	(void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len > b->len)
		log_panic("buf_truncate: %zu > length %zu", len, b->len);
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		log_panic("buf_consume: %zu > length %zu", n, b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data != NULL ? b->data : xstrdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
