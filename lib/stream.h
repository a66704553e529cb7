/*
 * stream - buffered line and byte I/O over a socket, plain or TLS
 *
 * stream_new(fd, limits, flags) wraps a connected socket (or pipe) and
 * puts it in non-blocking mode; it returns NULL (errno set) only when fd
 * is not an open descriptor.  The stream owns the fd: stream_free()
 * sends a TLS close_notify (best effort, never waits), frees the SSL
 * and closes the fd, unless flags has STREAM_KEEP_FD.  Writes to a
 * socket never raise SIGPIPE, with TLS too (send with MSG_NOSIGNAL): a
 * vanished peer is EPIPE.  (A pipe still can: daemons ignore SIGPIPE.)
 *
 * Limits are fixed at creation (a zero field takes the default):
 *	line_max	longest line stream_getline() returns, without its
 *			CR LF (default STREAM_LINE_MAX_DEFAULT); input is
 *			buffered in at most max(line_max + 2, 16 KiB) bytes
 *	read_timeout	ms a blocking read call may wait, for the whole call
 *			(a peer sending one byte a minute does not extend it)
 *	write_timeout	ms stream_flush_wait() may wait, for the whole flush
 *	out_max		most bytes waiting for output; stream_write() and
 *			stream_printf() beyond it fail with EMSGSIZE and the
 *			buffer unchanged (default STREAM_OUT_MAX_DEFAULT)
 * In the event loop the caller arms its own timers; stream_limits()
 * gives the values.
 *
 * Results: 1 done / yes, 0 not yet (or EOF where said), -1 error with
 * errno set and a text for the log in stream_error(): ETIMEDOUT (a
 * deadline passed), EMSGSIZE (line too long, output full), EPIPE or
 * ECONNRESET (peer gone), EPROTO (TLS failure), ENOBUFS (input buffer
 * full: the caller must consume), EBUSY/EINVAL (wrong use).  Calls that
 * would block return STREAM_AGAIN (never -1/EAGAIN); then wait for
 * stream_events() and call again.
 *
 * Reading, non-blocking:
 *	stream_fill() reads once into the buffer: >0 bytes read, 0 end of
 *	file, -1 error, STREAM_AGAIN.
 *	stream_getline() takes one line from the buffer without I/O: 1 with
 *	*line_r (NUL-terminated, may contain NUL bytes: use *len_r) and
 *	*flags_r (STREAM_LINE_CRLF when it ended in CR LF, else it ended in
 *	a bare LF; STREAM_LINE_NUL when it holds a NUL byte); 0 when no
 *	complete line is buffered (fill and try again; at EOF an
 *	unterminated last line is never returned: stream_in_len() shows
 *	it); -1 with EMSGSIZE once per line longer than line_max, whose
 *	bytes are then dropped up to and including its LF, even as they
 *	arrive, so the caller answers "line too long" and reads on.
 *	The line is borrowed until the next call that reads or consumes.
 *	stream_peek() / stream_consume() and stream_read() give raw bytes
 *	(SMTP DATA and BDAT, IMAP literals), from the buffer first.
 *	Data may sit in the stream (or inside OpenSSL) without the fd being
 *	readable: before waiting for EV_READ, drain with stream_getline()
 *	/ stream_fill() until STREAM_AGAIN, or check stream_has_input().
 *
 * Writing: stream_write() / stream_printf() append to the output buffer
 * (0 or -1 EMSGSIZE); stream_flush() writes what it can: 1 all written,
 * 0 some still pending (wait for stream_events()), -1 error.
 *
 * stream_events(s, wanted) is what to wait for: pass EV_READ in wanted
 * when the caller wants input; EV_WRITE (or, with TLS, EV_READ) is added
 * while output is pending.  TLS may need to write to read and to read
 * to write; this accounts for it.  During a handshake it is what the
 * handshake needs; after a fatal error it is 0.
 *
 * Blocking helpers poll(2) with the deadlines: stream_read_line_wait()
 * (1 line, 0 EOF, -1 error: ETIMEDOUT, EMSGSIZE as for getline, ...),
 * stream_read_wait() (>0 bytes, 0 EOF, -1), stream_flush_wait() (0 all
 * written, -1) and stream_handshake_wait() (0, -1; read_timeout bounds
 * the whole handshake).
 *
 * TLS: stream_tls_accept() starts the server side (implicit TLS, port
 * 465/993), stream_tls_connect() the client side (both on a stream with
 * nothing buffered yet, else EBUSY), with SNI and, with
 * STREAM_TLS_VERIFY_HOST, a host name check that the SSL_CTX's verify
 * mode enforces or records (see tls.h).  stream_starttls() upgrades in
 * place after a plaintext phase: it DISCARDS every byte already buffered
 * from the peer (CVE-2011-0411: commands sent before the handshake must
 * not run as if they came over TLS) and returns how many it dropped,
 * so the caller can log it.  Output must be flushed before (EBUSY).
 * Then stream_handshake() steps the handshake (1 done, 0 wait for
 * stream_events(s, 0), -1 failed); stream_fill() and stream_flush()
 * step it too.  stream_ssl() gives the SSL for tls_info_get().
 *
 * Unflushed output is dropped by stream_free(): flush first.  Out of
 * memory is fatal.  Bad limits (no limits, a negative timeout, line_max
 * above STREAM_LINE_MAX_LIMIT) and consuming more than is buffered are
 * bugs: log_panic().
 */
#ifndef POSTA_STREAM_H
#define POSTA_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define STREAM_AGAIN		(-2)

#define STREAM_LINE_MAX_DEFAULT	4096
#define STREAM_LINE_MAX_LIMIT	(16U * 1024 * 1024)
#define STREAM_TIMEOUT_DEFAULT	300000		/* ms, RFC 5321 4.5.3.2 */
#define STREAM_OUT_MAX_DEFAULT	(1024U * 1024)

/* stream_new() flags */
#define STREAM_KEEP_FD		0x01	/* stream_free() leaves fd open */

/* stream_getline() *flags_r */
#define STREAM_LINE_CRLF	0x01	/* ended in CR LF, not a bare LF */
#define STREAM_LINE_NUL		0x02	/* holds a NUL byte */

/* stream_tls_connect() flags */
#define STREAM_TLS_VERIFY_HOST	0x01	/* check the certificate names host */

struct stream_limits {
	size_t	line_max;
	int	read_timeout;		/* ms */
	int	write_timeout;		/* ms */
	size_t	out_max;
};

struct stream;

struct stream *stream_new(int fd, const struct stream_limits *, int flags);
void	stream_free(struct stream **);

int	stream_fd(const struct stream *);
const struct stream_limits *stream_limits(const struct stream *);
/* stream_error - what went wrong last, for the log ("" if nothing) */
const char *stream_error(const struct stream *);
/* stream_is_eof - 1 once the peer has closed its side, else 0 */
int	stream_is_eof(const struct stream *);

/* reading */
ssize_t	stream_fill(struct stream *);
int	stream_getline(struct stream *, const char **line_r, size_t *len_r,
	    int *flags_r);
/* stream_peek - the buffered input (no I/O); returns its length */
size_t	stream_peek(const struct stream *, const char **data_r);
/* stream_consume - drop n (<= buffered) bytes of input */
void	stream_consume(struct stream *, size_t n);
/* stream_read - up to n > 0 bytes, buffered ones first, else one fill */
ssize_t	stream_read(struct stream *, void *dst, size_t n);
/* stream_in_len - bytes buffered in the stream */
size_t	stream_in_len(const struct stream *);
/* stream_has_input - 1 if input is buffered here or inside OpenSSL */
int	stream_has_input(const struct stream *);

/* writing */
int	stream_write(struct stream *, const void *, size_t n);
int	stream_puts(struct stream *, const char *);
int	stream_printf(struct stream *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	stream_flush(struct stream *);
/* stream_out_len - bytes waiting to be written */
size_t	stream_out_len(const struct stream *);

int	stream_events(const struct stream *, int wanted);

/* blocking, with the stream's deadlines */
int	stream_read_line_wait(struct stream *, const char **line_r,
	    size_t *len_r, int *flags_r);
ssize_t	stream_read_wait(struct stream *, void *dst, size_t n);
int	stream_flush_wait(struct stream *);
int	stream_handshake_wait(struct stream *);

/* TLS */
int	stream_tls_accept(struct stream *, SSL_CTX *);
int	stream_tls_connect(struct stream *, SSL_CTX *, const char *host,
	    int flags);
ssize_t	stream_starttls(struct stream *, SSL_CTX *, bool is_server);
/* stream_tls_set_host - SNI (and name check) before a client handshake */
int	stream_tls_set_host(struct stream *, const char *host, int flags);
int	stream_handshake(struct stream *);
/* stream_is_tls - 1 once TLS has started on the stream, else 0 */
int	stream_is_tls(const struct stream *);
SSL	*stream_ssl(struct stream *);

#endif
