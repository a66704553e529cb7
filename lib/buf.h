/*
 * buf - growable byte buffer with a hard size limit
 *
 * buf_new(max) makes an empty buffer that never holds more than max bytes
 * (0 means BUF_MAX_DEFAULT).  buf_append(), buf_putc(), buf_printf()
 * return 0, or -1 with errno EMSGSIZE and the buffer unchanged when the
 * result would exceed the limit.  The data is always NUL-terminated, so
 * buf_cstr() is a C string valid until the next change.  buf_consume()
 * drops bytes from the front.  Out of memory is fatal.  Whoever calls
 * buf_new() calls buf_free(&b), which sets b to NULL.
 *
 * struct buf may also be embedded: buf_init(&b, max) / buf_deinit(&b).
 */
#ifndef POSTA_BUF_H
#define POSTA_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define BUF_MAX_DEFAULT	(64U * 1024 * 1024)

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

struct buf *buf_new(size_t max);
void	buf_free(struct buf **);
void	buf_init(struct buf *, size_t max);
void	buf_deinit(struct buf *);

/* buf_append - add n bytes; 0 or -1 (EMSGSIZE, buffer unchanged) */
int	buf_append(struct buf *, const void *, size_t n);
int	buf_puts(struct buf *, const char *);
int	buf_putc(struct buf *, int c);
int	buf_printf(struct buf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	buf_vprintf(struct buf *, const char *fmt, va_list);

/* buf_reset - empty the buffer, keep its memory */
void	buf_reset(struct buf *);
/* buf_truncate - shorten to len bytes (len <= current length) */
void	buf_truncate(struct buf *, size_t len);
/* buf_consume - drop the first n bytes (n <= length) */
void	buf_consume(struct buf *, size_t n);
/* buf_reserve - make room for n more bytes; 0 or -1 (EMSGSIZE) */
int	buf_reserve(struct buf *, size_t n);

static inline const char *
buf_cstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

static inline size_t
buf_len(const struct buf *b)
{
	return b->len;
}

/* buf_steal - return the data (NUL-terminated, caller frees), empty b */
char	*buf_steal(struct buf *);

#endif
