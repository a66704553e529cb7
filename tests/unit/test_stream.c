/*
 * test_stream - buffered streams over a socketpair: line limits (exact,
 * +1, split CR, 1 MB with no LF), bare LF, NUL bytes, EOF mid-line, raw
 * reads, read and write deadlines, the output limit, peer gone
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ev.h"
#include "stream.h"

struct fixture {
	int		 peer;		/* the raw other end */
	int		 fd;
	struct stream	*s;
};

static struct stream *
mk(int sv[2], size_t line_max, int rt, int wt, size_t out_max)
{
	struct stream_limits lim = { line_max, rt, wt, out_max };
	struct stream *s;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s = stream_new(sv[0], &lim, 0);
	assert_non_null(s);
	return s;
}

static void
put(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void
puts_(int fd, const char *str)
{
	put(fd, str, strlen(str));
}

/* expect_line - the next line (blocking) is want, with flags */
static void
expect_line(struct stream *s, const char *want, size_t wantlen, int flags)
{
	const char *line;
	size_t len;
	int f = -1;

	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), 1);
	assert_int_equal(len, wantlen);
	assert_memory_equal(line, want, wantlen);
	assert_int_equal(line[len], '\0');
	assert_int_equal(f, flags);
}

static void
expect_too_long(struct stream *s)
{
	const char *line;
	size_t len;
	int f;

	errno = 0;
	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_string_equal(stream_error(s), "line too long");
}

static void
expect_eof(struct stream *s)
{
	const char *line;
	size_t len;
	int f;

	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), 0);
	assert_true(stream_is_eof(s));
}

/* ---- hostile lines first ---------------------------------------------- */

static void
test_line_limit_plus_one(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 10, 2000, 2000, 0);

	(void)state;
	/* 11 bytes with CR LF, 11 with bare LF, then good lines */
	puts_(sv[1], "01234567890\r\n0123456789X\nok\r\n");
	expect_too_long(s);
	expect_too_long(s);
	expect_line(s, "ok", 2, STREAM_LINE_CRLF);
	close(sv[1]);
	expect_eof(s);
	stream_free(&s);
	assert_null(s);
}

static void
test_line_exact_limit(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 10, 2000, 2000, 0);

	(void)state;
	puts_(sv[1], "0123456789\r\n0123456789\n\r\n");
	expect_line(s, "0123456789", 10, STREAM_LINE_CRLF);
	expect_line(s, "0123456789", 10, 0);
	expect_line(s, "", 0, STREAM_LINE_CRLF);
	stream_free(&s);
	close(sv[1]);
}

/*
 * line_max bytes and a CR may still be a good line: the verdict waits
 * for the next byte; line_max + 1 bytes without CR are refused at once,
 * before any LF arrives, and the rest of that line is skipped later.
 */
static void
test_line_limit_split(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 10, 2000, 2000, 0);
	const char *line;
	size_t len;
	int f;

	(void)state;
	puts_(sv[1], "0123456789\r");
	assert_int_equal(stream_fill(s), 11);
	assert_int_equal(stream_getline(s, &line, &len, &f), 0);
	puts_(sv[1], "\n");
	assert_int_equal(stream_fill(s), 1);
	assert_int_equal(stream_getline(s, &line, &len, &f), 1);
	assert_int_equal(len, 10);
	assert_int_equal(f, STREAM_LINE_CRLF);

	puts_(sv[1], "0123456789A");
	assert_int_equal(stream_fill(s), 11);
	errno = 0;
	assert_int_equal(stream_getline(s, &line, &len, &f), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(stream_in_len(s), 0);
	assert_int_equal(stream_getline(s, &line, &len, &f), 0);
	puts_(sv[1], "BCDEF");		/* still the same long line */
	assert_int_equal(stream_fill(s), 5);
	assert_int_equal(stream_getline(s, &line, &len, &f), 0);
	puts_(sv[1], "GH\r\nnext\r\n");
	expect_line(s, "next", 4, STREAM_LINE_CRLF);

	/* 11 bytes whose last is a CR, then no LF: too long as well */
	puts_(sv[1], "0123456789\rX\r\nafter\n");
	expect_too_long(s);
	expect_line(s, "after", 5, 0);
	stream_free(&s);
	close(sv[1]);
}

/* a 1 MB line with no LF: refused once, memory stays bounded */
static void
test_line_huge(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 1000, 5000, 2000, 0);
	const char *line;
	size_t len, maxbuf = 0;
	int f, r, too_long = 0, st;
	ssize_t n;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static char big[1024 * 1024];

		close(sv[0]);
		memset(big, 'x', sizeof(big));
		put(sv[1], big, sizeof(big));
		puts_(sv[1], "\r\nNEXT\r\n");
		_exit(0);
	}
	close(sv[1]);
	for (;;) {
		r = stream_getline(s, &line, &len, &f);
		if (r == 1)
			break;
		if (r == -1) {
			assert_int_equal(errno, EMSGSIZE);
			too_long++;
			continue;
		}
		if (stream_in_len(s) > maxbuf)
			maxbuf = stream_in_len(s);
		n = stream_fill(s);
		if (n == STREAM_AGAIN) {
			struct pollfd p = { stream_fd(s), POLLIN, 0 };

			assert_true(poll(&p, 1, 5000) == 1);
			continue;
		}
		assert_true(n > 0);
	}
	assert_int_equal(too_long, 1);
	assert_int_equal(len, 4);
	assert_string_equal(line, "NEXT");
	assert_true(maxbuf <= 16384);
	expect_eof(s);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	stream_free(&s);
}

static void
test_bare_lf_crlf(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);

	(void)state;
	puts_(sv[1], "a\nb\r\nc\r\r\n\r\n\n\rd\n");
	expect_line(s, "a", 1, 0);
	expect_line(s, "b", 1, STREAM_LINE_CRLF);
	expect_line(s, "c\r", 2, STREAM_LINE_CRLF);
	expect_line(s, "", 0, STREAM_LINE_CRLF);
	expect_line(s, "", 0, 0);
	expect_line(s, "\rd", 2, 0);
	stream_free(&s);
	close(sv[1]);
}

static void
test_nul_inside(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);

	(void)state;
	put(sv[1], "a\0b\r\n\0\n" "abc\r\n", 12);
	expect_line(s, "a\0b", 3, STREAM_LINE_CRLF | STREAM_LINE_NUL);
	expect_line(s, "\0", 1, STREAM_LINE_NUL);
	expect_line(s, "abc", 3, STREAM_LINE_CRLF);
	stream_free(&s);
	close(sv[1]);
}

static void
test_eof_mid_line(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);
	const char *line, *data;
	size_t len;
	int f;

	(void)state;
	puts_(sv[1], "one\r\nabc");
	close(sv[1]);
	expect_line(s, "one", 3, STREAM_LINE_CRLF);
	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), 0);
	assert_true(stream_is_eof(s));
	assert_int_equal(stream_in_len(s), 3);
	assert_int_equal(stream_peek(s, &data), 3);
	assert_memory_equal(data, "abc", 3);
	/* and it stays so, without I/O */
	assert_int_equal(stream_fill(s), 0);
	assert_int_equal(stream_getline(s, &line, &len, &f), 0);
	stream_free(&s);
}

/* ---- deadlines -------------------------------------------------------- */

static void
test_read_timeout(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 200, 2000, 0);
	const char *line;
	size_t len;
	int64_t t0, dt;
	int f;

	(void)state;
	t0 = ev_clock_ms();
	errno = 0;
	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), -1);
	dt = ev_clock_ms() - t0;
	assert_int_equal(errno, ETIMEDOUT);
	assert_string_equal(stream_error(s), "read timeout");
	assert_true(dt >= 195 && dt < 1500);

	/* the stream is still usable after a timeout */
	puts_(sv[1], "late\r\n");
	expect_line(s, "late", 4, STREAM_LINE_CRLF);
	t0 = ev_clock_ms();
	{
		char c;

		assert_int_equal(stream_read_wait(s, &c, 1), -1);
		assert_int_equal(errno, ETIMEDOUT);
	}
	assert_true(ev_clock_ms() - t0 >= 195);
	stream_free(&s);
	close(sv[1]);
}

/* a byte every 50 ms does not extend a 300 ms deadline for one line */
static void
test_read_timeout_slow_peer(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 1000, 300, 2000, 0);
	const char *line;
	size_t len;
	int64_t t0, dt;
	int f, st;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int i;

		close(sv[0]);
		for (i = 0; i < 60; i++) {
			if (write(sv[1], "x", 1) != 1)
				_exit(0);
			usleep(50000);
		}
		_exit(0);
	}
	close(sv[1]);
	t0 = ev_clock_ms();
	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), -1);
	dt = ev_clock_ms() - t0;
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(dt >= 295 && dt < 1500);
	assert_true(stream_in_len(s) > 0);
	stream_free(&s);	/* closes sv[0]: the child's write fails */
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void
small_buffers(int a, int b)
{
	int sz = 4096;

	assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	assert_int_equal(setsockopt(b, SOL_SOCKET, SO_RCVBUF, &sz,
	    sizeof(sz)), 0);
}

static void
test_write_timeout(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 200, 4 * 1024 * 1024);
	static char big[1024 * 1024];
	int64_t t0, dt;

	(void)state;
	small_buffers(sv[0], sv[1]);
	memset(big, 'y', sizeof(big));
	assert_int_equal(stream_write(s, big, sizeof(big)), 0);
	t0 = ev_clock_ms();
	errno = 0;
	assert_int_equal(stream_flush_wait(s), -1);
	dt = ev_clock_ms() - t0;
	assert_int_equal(errno, ETIMEDOUT);
	assert_string_equal(stream_error(s), "write timeout");
	assert_true(dt >= 195 && dt < 1500);
	assert_true(stream_out_len(s) > 0);
	assert_true(stream_out_len(s) < sizeof(big));
	assert_int_equal(stream_flush(s), 0);
	assert_int_equal(stream_events(s, 0), EV_WRITE);
	assert_int_equal(stream_events(s, EV_READ), EV_READ | EV_WRITE);
	stream_free(&s);
	close(sv[1]);
}

/* ---- the output buffer -------------------------------------------------- */

static void
test_out_limit(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 100);
	char a[100], got[200];

	(void)state;
	memset(a, 'a', sizeof(a));
	assert_int_equal(stream_write(s, a, 60), 0);
	errno = 0;
	assert_int_equal(stream_write(s, a, 41), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(stream_out_len(s), 60);
	/* 41 bytes from a format: refused, nothing appended */
	assert_int_equal(stream_printf(s, "%s%s", "0123456789012345678901",
	    "234567890123456789X"), -1);
	assert_int_equal(stream_out_len(s), 60);
	assert_int_equal(stream_printf(s, "%d%s%s", 12, "3456789012345678901",
	    "2345678901234567890"), 0);
	assert_int_equal(stream_out_len(s), 100);
	assert_int_equal(stream_puts(s, "z"), -1);
	assert_int_equal(stream_write(s, "", 0), 0);
	assert_int_equal(stream_flush(s), 1);
	assert_int_equal(stream_out_len(s), 0);
	assert_int_equal(read(sv[1], got, sizeof(got)), 100);
	assert_memory_equal(got, a, 60);
	assert_memory_equal(got + 60, "1234567890", 10);
	/* the room is back */
	assert_int_equal(stream_write(s, a, 100), 0);
	stream_free(&s);
	close(sv[1]);
}

/*
 * Partly flushed output makes room for exactly what was written, and the
 * bytes come out in order across the compaction.
 */
static void
test_out_partial(void **state)
{
	enum { MAX = 300000 };
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, MAX);
	static unsigned char src[2 * MAX], dst[2 * MAX];
	size_t i, want, got = 0, wrote, room;
	ssize_t n;
	int r;

	(void)state;
	small_buffers(sv[0], sv[1]);
	for (i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(stream_write(s, src, 250000), 0);
	assert_int_equal(stream_flush(s), 0);
	assert_true(stream_out_len(s) < 250000);
	room = MAX - stream_out_len(s);
	assert_int_equal(stream_write(s, src + 250000, room + 1), -1);
	assert_int_equal(stream_write(s, src + 250000, room), 0);
	assert_int_equal(stream_out_len(s), MAX);
	wrote = 250000 + room;
	want = wrote;
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	while (got < want) {
		r = stream_flush(s);
		assert_true(r >= 0);
		n = read(sv[1], dst + got, want - got);
		if (n > 0)
			got += (size_t)n;
		else
			assert_true(n < 0 && errno == EAGAIN);
	}
	assert_int_equal(stream_flush(s), 1);
	assert_memory_equal(dst, src, want);
	stream_free(&s);
	close(sv[1]);
}

/* ---- non-blocking use, raw bytes ------------------------------------- */

static void
test_nonblocking_events(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);
	const char *line;
	size_t len;
	int f, i;
	char text[64];

	(void)state;
	assert_int_equal(stream_fill(s), STREAM_AGAIN);
	assert_int_equal(stream_events(s, EV_READ), EV_READ);
	assert_int_equal(stream_events(s, 0), 0);
	assert_false(stream_has_input(s));
	assert_int_equal(stream_puts(s, "220 hi\r\n"), 0);
	assert_int_equal(stream_events(s, 0), EV_WRITE);
	assert_int_equal(stream_flush(s), 1);
	assert_int_equal(stream_events(s, 0), 0);
	assert_int_equal(read(sv[1], text, sizeof(text)), 8);

	/* pipelined: 100 commands in one write */
	{
		char many[100 * 16];
		size_t off = 0;

		for (i = 0; i < 100; i++)
			off += (size_t)snprintf(many + off, sizeof(many) - off,
			    "RCPT %d\r\n", i);
		put(sv[1], many, off);
	}
	assert_true(stream_fill(s) > 0);
	assert_true(stream_has_input(s));
	for (i = 0; i < 100; i++) {
		while (stream_getline(s, &line, &len, &f) == 0)
			assert_true(stream_fill(s) > 0);
		(void)snprintf(text, sizeof(text), "RCPT %d", i);
		assert_string_equal(line, text);
	}
	assert_int_equal(stream_getline(s, &line, &len, &f), 0);
	assert_int_equal(stream_fill(s), STREAM_AGAIN);
	stream_free(&s);
	close(sv[1]);
}

static void
test_raw_read(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);
	const char *data;
	char chunk[16];
	size_t got = 0;
	ssize_t n;

	(void)state;
	puts_(sv[1], "BDAT 12\r\nhello\r\nworldQUIT\r\n");
	expect_line(s, "BDAT 12", 7, STREAM_LINE_CRLF);
	while (got < 7) {
		n = stream_read_wait(s, chunk + got, 7 - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(chunk, "hello\r\n", 7);
	assert_true(stream_peek(s, &data) >= 5);
	assert_memory_equal(data, "world", 5);
	stream_consume(s, 5);
	expect_line(s, "QUIT", 4, STREAM_LINE_CRLF);
	errno = 0;
	assert_int_equal(stream_read(s, chunk, 0), -1);
	assert_int_equal(errno, EINVAL);
	close(sv[1]);
	assert_int_equal(stream_read_wait(s, chunk, sizeof(chunk)), 0);
	stream_free(&s);
}

/* the peer is gone: EPIPE, not SIGPIPE (which would kill this test) */
static void
test_peer_gone(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);

	(void)state;
	close(sv[1]);
	assert_int_equal(stream_puts(s, "250 ok\r\n"), 0);
	errno = 0;
	assert_int_equal(stream_flush(s), -1);
	assert_int_equal(errno, EPIPE);
	/* a broken stream stays broken */
	assert_int_equal(stream_puts(s, "x"), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(stream_fill(s), -1);
	assert_int_equal(stream_events(s, EV_READ), 0);
	stream_free(&s);
}

static void
test_free_fd(void **state)
{
	struct stream_limits lim = { 0, 0, 0, 0 };
	struct stream *s;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s = stream_new(sv[0], &lim, STREAM_KEEP_FD);
	assert_non_null(s);
	assert_int_equal(stream_limits(s)->line_max, STREAM_LINE_MAX_DEFAULT);
	assert_int_equal(stream_limits(s)->read_timeout,
	    STREAM_TIMEOUT_DEFAULT);
	assert_int_equal(stream_limits(s)->out_max, STREAM_OUT_MAX_DEFAULT);
	assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	stream_free(&s);
	assert_true(fcntl(sv[0], F_GETFD) >= 0);	/* kept */
	s = stream_new(sv[0], &lim, 0);
	stream_free(&s);
	errno = 0;
	assert_int_equal(fcntl(sv[0], F_GETFD), -1);	/* closed */
	assert_int_equal(errno, EBADF);
	close(sv[1]);
	assert_null(stream_new(-1, &lim, 0));
	stream_free(&s);		/* NULL is fine */
}

/* STARTTLS on a plain stream: buffered plaintext is dropped and counted */
static void
test_starttls_discards(void **state)
{
	int sv[2];
	struct stream *s = mk(sv, 100, 2000, 2000, 0);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *line;
	size_t len;
	int f;

	(void)state;
	assert_non_null(ctx);
	puts_(sv[1], "STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
	expect_line(s, "STARTTLS", 8, STREAM_LINE_CRLF);
	assert_int_equal(stream_puts(s, "220 go\r\n"), 0);
	errno = 0;
	assert_int_equal(stream_starttls(s, ctx, true), -1);	/* unflushed */
	assert_int_equal(errno, EBUSY);
	assert_false(stream_is_tls(s));
	assert_int_equal(stream_flush(s), 1);
	assert_int_equal(stream_starttls(s, ctx, true),
	    strlen("MAIL FROM:<evil@example.org>\r\n"));
	assert_true(stream_is_tls(s));
	assert_int_equal(stream_in_len(s), 0);
	assert_int_equal(stream_getline(s, &line, &len, &f), 0);
	assert_int_equal(stream_events(s, EV_READ), EV_READ);
	assert_int_equal(stream_starttls(s, ctx, true), -1);	/* twice */
	assert_int_equal(errno, EINVAL);
	stream_free(&s);
	SSL_CTX_free(ctx);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_limit_plus_one),
		cmocka_unit_test(test_line_huge),
		cmocka_unit_test(test_line_limit_split),
		cmocka_unit_test(test_line_exact_limit),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_bare_lf_crlf),
		cmocka_unit_test(test_eof_mid_line),
		cmocka_unit_test(test_read_timeout),
		cmocka_unit_test(test_read_timeout_slow_peer),
		cmocka_unit_test(test_write_timeout),
		cmocka_unit_test(test_out_limit),
		cmocka_unit_test(test_out_partial),
		cmocka_unit_test(test_nonblocking_events),
		cmocka_unit_test(test_raw_read),
		cmocka_unit_test(test_peer_gone),
		cmocka_unit_test(test_free_fd),
		cmocka_unit_test(test_starttls_discards),
	};

	return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
