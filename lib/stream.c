/*
 * stream - buffered line and byte I/O over a socket, plain or TLS
 * (see stream.h)
 *
 * Input sits in one array [in_start, in_end) that grows up to in_max
 * (line_max + 2 for the CR LF, or more so raw reads are not tiny); a line
 * is returned in place and the array is compacted only when the next
 * read needs room, so the borrowed line stays valid until then.  A line
 * that cannot fit is reported once and then skipped as it arrives, so a
 * peer sending one endless line costs at most in_max bytes.
 *
 * Output is a struct buf limited to out_max pending bytes, written from
 * out_off; it is compacted only when an append needs the room.
 *
 * With TLS the socket is wrapped in a BIO whose writes use
 * send(MSG_NOSIGNAL), so a peer that vanished gives EPIPE, not SIGPIPE.
 * A retried SSL_write() must be given the same length again (OpenSSL's
 * rule for non-blocking writes): tls_wlen remembers it.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "ev.h"
#include "log.h"
#include "mem.h"
#include "stream.h"
#include "tls.h"

#define STREAM_IN_MIN		16384	/* in_max at least this */
#define STREAM_IN_FIRST		4096	/* first allocation */
#define STREAM_TLS_WRITE_MAX	16384	/* one TLS record of payload */

struct stream {
	int			 fd;
	int			 flags;
	struct stream_limits	 lim;
	bool			 is_socket;
	bool			 is_eof;
	bool			 is_skipping;	/* dropping an over-long line */
	bool			 in_handshake;
	int			 failed;	/* errno of a fatal error */

	char			*in;
	size_t			 in_start, in_end, in_cap, in_max;

	struct buf		 out;
	size_t			 out_off;	/* written bytes at the front */

	SSL			*ssl;
	int			 rd_want;	/* EV_* a blocked read needs */
	int			 wr_want;	/* EV_* a blocked write needs */
	int			 hs_want;	/* EV_* the handshake needs */
	size_t			 tls_wlen;	/* length to retry SSL_write */

	char			 err[256];
};

static void	stream_seterr(struct stream *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
stream_seterr(struct stream *s, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	errno = e;
}

/* stream_fail - a fatal error: every later call returns -1 with e */
static int
stream_fail(struct stream *s, int e)
{
	s->failed = e;
	errno = e;
	return -1;
}

static int
stream_check(struct stream *s)
{
	if (s->failed) {
		errno = s->failed;
		return -1;
	}
	return 0;
}

/* ---- a socket BIO that does not raise SIGPIPE ----------------------- */

static CRYPTO_ONCE stream_bio_once = CRYPTO_ONCE_STATIC_INIT;
static BIO_METHOD *stream_bio_method;

static int
stream_bio_write(BIO *b, const char *data, int len)
{
	int fd = -1;
	ssize_t n;

	(void)BIO_get_fd(b, &fd);
	BIO_clear_retry_flags(b);
	do
		n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)n;
}

static void
stream_bio_init(void)
{
	const BIO_METHOD *sock = BIO_s_socket();
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_TYPE_SOCKET, "posta socket");
	if (m == NULL ||
	    !BIO_meth_set_write(m, stream_bio_write) ||
	    !BIO_meth_set_read(m, BIO_meth_get_read(sock)) ||
	    !BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) ||
	    !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) ||
	    !BIO_meth_set_create(m, BIO_meth_get_create(sock)) ||
	    !BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)))
		return;
	stream_bio_method = m;
}

static BIO *
stream_bio_new(int fd)
{
	BIO *b;

	if (!CRYPTO_THREAD_run_once(&stream_bio_once, stream_bio_init) ||
	    stream_bio_method == NULL)
		log_fatal("stream: cannot make the socket BIO method");
	if ((b = BIO_new(stream_bio_method)) == NULL)
		return NULL;
	(void)BIO_set_fd(b, fd, BIO_NOCLOSE);
	return b;
}

/* ---- life ----------------------------------------------------------- */

struct stream *
stream_new(int fd, const struct stream_limits *lim, int flags)
{
	struct stream *s;
	int fl, type;
	socklen_t len = sizeof(type);

	if (lim == NULL || lim->line_max > STREAM_LINE_MAX_LIMIT ||
	    lim->read_timeout < 0 || lim->write_timeout < 0)
		log_panic("stream_new: bad limits");
	if (fd < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
	    ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return NULL;

	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->flags = flags;
	s->lim = *lim;
	if (s->lim.line_max == 0)
		s->lim.line_max = STREAM_LINE_MAX_DEFAULT;
	if (s->lim.read_timeout == 0)
		s->lim.read_timeout = STREAM_TIMEOUT_DEFAULT;
	if (s->lim.write_timeout == 0)
		s->lim.write_timeout = STREAM_TIMEOUT_DEFAULT;
	if (s->lim.out_max == 0)
		s->lim.out_max = STREAM_OUT_MAX_DEFAULT;
	s->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	s->in_max = s->lim.line_max + 2;
	if (s->in_max < STREAM_IN_MIN)
		s->in_max = STREAM_IN_MIN;
	buf_init(&s->out, s->lim.out_max);
	return s;
}

void
stream_free(struct stream **sp)
{
	struct stream *s = *sp;

	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		/* one close_notify, best effort: never wait for the peer */
		ERR_clear_error();
		if (!s->in_handshake && !s->failed)
			(void)SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		ERR_clear_error();
	}
	if ((s->flags & STREAM_KEEP_FD) == 0)
		(void)close(s->fd);
	free(s->in);
	buf_deinit(&s->out);
	free(s);
	*sp = NULL;
}

int
stream_fd(const struct stream *s)
{
	return s->fd;
}

const struct stream_limits *
stream_limits(const struct stream *s)
{
	return &s->lim;
}

const char *
stream_error(const struct stream *s)
{
	return s->err;
}

int
stream_is_eof(const struct stream *s)
{
	return s->is_eof;
}

int
stream_is_tls(const struct stream *s)
{
	return s->ssl != NULL;
}

SSL *
stream_ssl(struct stream *s)
{
	return s->ssl;
}

/* ---- TLS errors ------------------------------------------------------- */

/*
 * stream_tls_error - turn a failed SSL call into STREAM_AGAIN (with the
 * direction to wait for in *want), 0 for a clean end, or -1
 */
static int
stream_tls_error(struct stream *s, int r, int *want, const char *what)
{
	int e = errno;
	long vr;

	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = EV_READ;
		return STREAM_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = EV_WRITE;
		return STREAM_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (r == 0 || e == 0)
				return 0;	/* EOF without close_notify */
			stream_seterr(s, e, "%s: %s", what, strerror(e));
			return stream_fail(s, e);
		}
		break;
	default:
		break;
	}
	tls_error_string(what, s->err, sizeof(s->err));
	vr = SSL_get_verify_result(s->ssl);
	if (vr != X509_V_OK) {
		size_t len = strlen(s->err);

		(void)snprintf(s->err + len, sizeof(s->err) - len,
		    " (certificate: %s)", X509_verify_cert_error_string(vr));
	}
	return stream_fail(s, EPROTO);
}

/* ---- reading ---------------------------------------------------------- */

/* stream_room - make room at the end of the input array; 0 or -1 */
static int
stream_room(struct stream *s)
{
	size_t cap;

	if (s->in_start == s->in_end)
		s->in_start = s->in_end = 0;
	if (s->in_end < s->in_cap)
		return 0;
	if (s->in_start > 0) {
		memmove(s->in, s->in + s->in_start, s->in_end - s->in_start);
		s->in_end -= s->in_start;
		s->in_start = 0;
		return 0;
	}
	if (s->in_cap >= s->in_max) {
		stream_seterr(s, ENOBUFS, "input buffer full");
		return -1;
	}
	cap = s->in_cap == 0 ? STREAM_IN_FIRST : s->in_cap * 2;
	if (cap > s->in_max)
		cap = s->in_max;
	s->in = xrealloc(s->in, cap);
	s->in_cap = cap;
	return 0;
}

ssize_t
stream_fill(struct stream *s)
{
	size_t room;
	ssize_t n;
	int r;

	if (stream_check(s) < 0)
		return -1;
	if (s->is_eof)
		return 0;
	if (s->in_handshake && (r = stream_handshake(s)) <= 0)
		return r == 0 ? STREAM_AGAIN : -1;
	if (stream_room(s) < 0)
		return -1;
	room = s->in_cap - s->in_end;
	if (room > INT_MAX)
		room = INT_MAX;
	if (s->ssl != NULL) {
		ERR_clear_error();
		r = SSL_read(s->ssl, s->in + s->in_end, (int)room);
		if (r > 0) {
			s->in_end += (size_t)r;
			s->rd_want = 0;
			return r;
		}
		r = stream_tls_error(s, r, &s->rd_want, "TLS read");
		if (r == 0)
			s->is_eof = true;
		return r;
	}
	do
		n = read(s->fd, s->in + s->in_end, room);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		s->in_end += (size_t)n;
		s->rd_want = 0;
		return n;
	}
	if (n == 0) {
		s->is_eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		s->rd_want = EV_READ;
		return STREAM_AGAIN;
	}
	stream_seterr(s, errno, "read: %s", strerror(errno));
	return stream_fail(s, errno);
}

int
stream_getline(struct stream *s, const char **line_r, size_t *len_r,
    int *flags_r)
{
	size_t avail, len;
	char *p, *lf;
	int flags;

	for (;;) {
		avail = s->in_end - s->in_start;
		if (avail == 0)
			return 0;
		p = s->in + s->in_start;
		lf = memchr(p, '\n', avail);
		if (s->is_skipping) {
			if (lf == NULL) {
				s->in_start = s->in_end = 0;
				return 0;
			}
			s->in_start += (size_t)(lf - p) + 1;
			s->is_skipping = false;
			continue;
		}
		if (lf == NULL) {
			/*
			 * Too long already, even if the next byte is the
			 * LF (or, after a final CR, the LF of a CR LF).
			 */
			if (avail > s->lim.line_max + 1 ||
			    (avail == s->lim.line_max + 1 &&
			    p[avail - 1] != '\r')) {
				s->in_start = s->in_end = 0;
				s->is_skipping = true;
				stream_seterr(s, EMSGSIZE, "line too long");
				return -1;
			}
			return 0;
		}
		len = (size_t)(lf - p);
		s->in_start += len + 1;
		flags = 0;
		if (len > 0 && p[len - 1] == '\r') {
			len--;
			flags |= STREAM_LINE_CRLF;
		}
		if (len > s->lim.line_max) {
			stream_seterr(s, EMSGSIZE, "line too long");
			return -1;
		}
		p[len] = '\0';
		if (memchr(p, '\0', len) != NULL)
			flags |= STREAM_LINE_NUL;
		*line_r = p;
		*len_r = len;
		if (flags_r != NULL)
			*flags_r = flags;
		return 1;
	}
}

size_t
stream_peek(const struct stream *s, const char **data_r)
{
	*data_r = s->in + s->in_start;
	return s->in_end - s->in_start;
}

void
stream_consume(struct stream *s, size_t n)
{
	if (n > s->in_end - s->in_start)
		log_panic("stream_consume: %zu > buffered %zu", n,
		    s->in_end - s->in_start);
	s->in_start += n;
}

size_t
stream_in_len(const struct stream *s)
{
	return s->in_end - s->in_start;
}

int
stream_has_input(const struct stream *s)
{
	if (s->in_end > s->in_start)
		return 1;
	return s->ssl != NULL && !s->in_handshake && SSL_pending(s->ssl) > 0;
}

ssize_t
stream_read(struct stream *s, void *dst, size_t n)
{
	size_t avail;
	ssize_t r;

	if (n == 0) {
		stream_seterr(s, EINVAL, "stream_read: zero length");
		return -1;
	}
	if (s->in_end == s->in_start) {
		if ((r = stream_fill(s)) <= 0)
			return r;
	}
	avail = s->in_end - s->in_start;
	if (n > avail)
		n = avail;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	memcpy(dst, s->in + s->in_start, n);
	s->in_start += n;
	return (ssize_t)n;
}

/* ---- writing ---------------------------------------------------------- */

size_t
stream_out_len(const struct stream *s)
{
	return s->out.len - s->out_off;
}

/* stream_out_room - 0 if n more bytes fit (compacting), or -1 */
static int
stream_out_room(struct stream *s, size_t n)
{
	size_t pending = s->out.len - s->out_off;

	if (n > s->lim.out_max - pending) {
		stream_seterr(s, EMSGSIZE, "output buffer full");
		return -1;
	}
	if (n > s->lim.out_max - s->out.len) {
		buf_consume(&s->out, s->out_off);
		s->out_off = 0;
	}
	return 0;
}

int
stream_write(struct stream *s, const void *data, size_t n)
{
	if (stream_check(s) < 0)
		return -1;
	if (stream_out_room(s, n) < 0)
		return -1;
	if (buf_append(&s->out, data, n) < 0)
		log_panic("stream_write: room was checked");
	return 0;
}

int
stream_puts(struct stream *s, const char *str)
{
	return stream_write(s, str, strlen(str));
}

int
stream_printf(struct stream *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (stream_check(s) < 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_panic("stream_printf: bad format \"%s\"", fmt);
	if (stream_out_room(s, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	if (buf_vprintf(&s->out, fmt, ap) < 0)
		log_panic("stream_printf: room was checked");
	va_end(ap);
	return 0;
}

int
stream_flush(struct stream *s)
{
	const char *p;
	size_t n;
	ssize_t w;
	int r;

	if (stream_check(s) < 0)
		return -1;
	if (s->in_handshake && (r = stream_handshake(s)) <= 0)
		return r;
	while (s->out_off < s->out.len) {
		p = s->out.data + s->out_off;
		n = s->out.len - s->out_off;
		if (s->ssl != NULL) {
			if (s->tls_wlen > 0)
				n = s->tls_wlen;
			else if (n > STREAM_TLS_WRITE_MAX)
				n = STREAM_TLS_WRITE_MAX;
			ERR_clear_error();
			r = SSL_write(s->ssl, p, (int)n);
			if (r > 0) {
				s->out_off += (size_t)r;
				s->tls_wlen = 0;
				continue;
			}
			s->tls_wlen = n;
			r = stream_tls_error(s, r, &s->wr_want, "TLS write");
			if (r == STREAM_AGAIN)
				return 0;
			if (r == 0) {
				stream_seterr(s, EPIPE, "TLS write: closed");
				return stream_fail(s, EPIPE);
			}
			return -1;
		}
		do {
			if (s->is_socket)
				w = send(s->fd, p, n, MSG_NOSIGNAL);
			else
				w = write(s->fd, p, n);
		} while (w < 0 && errno == EINTR);
		if (w > 0) {
			s->out_off += (size_t)w;
			continue;
		}
		if (w == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
			s->wr_want = EV_WRITE;
			return 0;
		}
		stream_seterr(s, errno, "write: %s", strerror(errno));
		return stream_fail(s, errno);
	}
	buf_reset(&s->out);
	s->out_off = 0;
	s->wr_want = 0;
	return 1;
}

/* ---- what to wait for ------------------------------------------------- */

static int
stream_read_need(const struct stream *s)
{
	if (s->in_handshake)
		return s->hs_want;
	return s->rd_want ? s->rd_want : EV_READ;
}

static int
stream_write_need(const struct stream *s)
{
	if (s->in_handshake)
		return s->hs_want;
	return s->wr_want ? s->wr_want : EV_WRITE;
}

int
stream_events(const struct stream *s, int wanted)
{
	int ev = 0;

	if (s->failed)
		return 0;
	if (s->in_handshake)
		return s->hs_want;
	if ((wanted & EV_READ) && !s->is_eof)
		ev |= stream_read_need(s);
	if (s->out.len > s->out_off)
		ev |= stream_write_need(s);
	else if (wanted & EV_WRITE)
		ev |= EV_WRITE;
	return ev;
}

/* ---- blocking helpers ------------------------------------------------- */

/* stream_wait - poll for events until deadline; 0, or -1 (ETIMEDOUT) */
static int
stream_wait(struct stream *s, int events, int64_t deadline,
    const char *what)
{
	struct pollfd pfd;
	int64_t now, left;
	int r;

	for (;;) {
		now = ev_clock_ms();
		if (now >= deadline) {
			stream_seterr(s, ETIMEDOUT, "%s timeout", what);
			return -1;
		}
		left = deadline - now;
		pfd.fd = s->fd;
		pfd.events = ((events & EV_READ) ? POLLIN : 0) |
		    ((events & EV_WRITE) ? POLLOUT : 0);
		pfd.revents = 0;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			stream_seterr(s, errno, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

int
stream_read_line_wait(struct stream *s, const char **line_r,
    size_t *len_r, int *flags_r)
{
	int64_t deadline = ev_clock_ms() + s->lim.read_timeout;
	ssize_t n;
	int r;

	for (;;) {
		if ((r = stream_getline(s, line_r, len_r, flags_r)) != 0)
			return r;
		if ((n = stream_fill(s)) > 0)
			continue;
		if (n == 0 || n == -1)
			return (int)n;
		if (stream_wait(s, stream_read_need(s), deadline, "read") < 0)
			return -1;
	}
}

ssize_t
stream_read_wait(struct stream *s, void *dst, size_t n)
{
	int64_t deadline = ev_clock_ms() + s->lim.read_timeout;
	ssize_t r;

	while ((r = stream_read(s, dst, n)) == STREAM_AGAIN) {
		if (stream_wait(s, stream_read_need(s), deadline, "read") < 0)
			return -1;
	}
	return r;
}

int
stream_flush_wait(struct stream *s)
{
	int64_t deadline = ev_clock_ms() + s->lim.write_timeout;
	int r;

	while ((r = stream_flush(s)) == 0) {
		if (stream_wait(s, stream_write_need(s), deadline,
		    "write") < 0)
			return -1;
	}
	return r == 1 ? 0 : -1;
}

int
stream_handshake_wait(struct stream *s)
{
	int64_t deadline = ev_clock_ms() + s->lim.read_timeout;
	int r;

	while ((r = stream_handshake(s)) == 0) {
		if (stream_wait(s, s->hs_want, deadline, "TLS handshake") < 0)
			return -1;
	}
	return r == 1 ? 0 : -1;
}

/* ---- TLS -------------------------------------------------------------- */

static int
stream_tls_start(struct stream *s, SSL_CTX *ctx, bool is_server)
{
	BIO *bio;

	if (stream_check(s) < 0)
		return -1;
	if (s->ssl != NULL) {
		stream_seterr(s, EINVAL, "TLS already started");
		return -1;
	}
	if (s->out.len > s->out_off) {
		stream_seterr(s, EBUSY, "output pending before TLS");
		return -1;
	}
	ERR_clear_error();
	if ((s->ssl = SSL_new(ctx)) == NULL) {
		tls_error_string("SSL_new", s->err, sizeof(s->err));
		return stream_fail(s, EPROTO);
	}
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (s->is_socket) {
		if ((bio = stream_bio_new(s->fd)) == NULL) {
			tls_error_string("BIO_new", s->err, sizeof(s->err));
			return stream_fail(s, EPROTO);
		}
		SSL_set_bio(s->ssl, bio, bio);
	} else if (SSL_set_fd(s->ssl, s->fd) != 1) {
		tls_error_string("SSL_set_fd", s->err, sizeof(s->err));
		return stream_fail(s, EPROTO);
	}
	if (is_server)
		SSL_set_accept_state(s->ssl);
	else
		SSL_set_connect_state(s->ssl);
	s->in_handshake = true;
	s->hs_want = is_server ? EV_READ : EV_WRITE;
	s->rd_want = s->wr_want = 0;
	s->tls_wlen = 0;
	s->is_skipping = false;
	return 0;
}

int
stream_tls_accept(struct stream *s, SSL_CTX *ctx)
{
	if (s->in_end > s->in_start) {
		stream_seterr(s, EBUSY, "plaintext buffered before TLS");
		return -1;
	}
	return stream_tls_start(s, ctx, true);
}

int
stream_tls_connect(struct stream *s, SSL_CTX *ctx, const char *host,
    int flags)
{
	if (s->in_end > s->in_start) {
		stream_seterr(s, EBUSY, "plaintext buffered before TLS");
		return -1;
	}
	if (stream_tls_start(s, ctx, false) < 0)
		return -1;
	if (host != NULL && stream_tls_set_host(s, host, flags) < 0)
		return -1;
	return 0;
}

ssize_t
stream_starttls(struct stream *s, SSL_CTX *ctx, bool is_server)
{
	size_t dropped;

	if (stream_check(s) < 0)
		return -1;
	if (s->ssl != NULL) {
		stream_seterr(s, EINVAL, "TLS already started");
		return -1;
	}
	if (s->out.len > s->out_off) {
		stream_seterr(s, EBUSY, "output pending before TLS");
		return -1;
	}
	/* CVE-2011-0411: what came before the handshake is not trusted */
	dropped = s->in_end - s->in_start;
	s->in_start = s->in_end = 0;
	if (stream_tls_start(s, ctx, is_server) < 0)
		return -1;
	return dropped > SSIZE_MAX ? SSIZE_MAX : (ssize_t)dropped;
}

int
stream_tls_set_host(struct stream *s, const char *host, int flags)
{
	unsigned char addr[16];
	bool is_ip;

	if (s->ssl == NULL || !s->in_handshake || SSL_is_server(s->ssl)) {
		stream_seterr(s, EINVAL, "not a client before its handshake");
		return -1;
	}
	is_ip = inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
	ERR_clear_error();
	/* RFC 6066 3: SNI carries host names only, never addresses */
	if (!is_ip && SSL_set_tlsext_host_name(s->ssl, host) != 1) {
		tls_error_string("SNI", s->err, sizeof(s->err));
		errno = EINVAL;
		return -1;
	}
	if ((flags & STREAM_TLS_VERIFY_HOST) == 0)
		return 0;
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl),
		    host) != 1) {
			tls_error_string("host check", s->err, sizeof(s->err));
			errno = EINVAL;
			return -1;
		}
		return 0;
	}
	SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(s->ssl, host) != 1) {
		tls_error_string("host check", s->err, sizeof(s->err));
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
stream_handshake(struct stream *s)
{
	int r;

	if (stream_check(s) < 0)
		return -1;
	if (s->ssl == NULL) {
		stream_seterr(s, EINVAL, "no TLS on this stream");
		return -1;
	}
	if (!s->in_handshake)
		return 1;
	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->in_handshake = false;
		s->hs_want = 0;
		return 1;
	}
	r = stream_tls_error(s, r, &s->hs_want, "TLS handshake");
	if (r == STREAM_AGAIN)
		return 0;
	if (r == 0) {
		stream_seterr(s, ECONNRESET,
		    "TLS handshake: connection closed by peer");
		return stream_fail(s, ECONNRESET);
	}
	return -1;
}
