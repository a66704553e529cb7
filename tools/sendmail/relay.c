/*
 * relay - "sendmail -bs": an SMTP session on standard input and output,
 * relayed to the submit service, as programs that speak SMTP to a
 * local sendmail expect.
 *
 * Bytes are copied both ways as they come; a LF on standard input not
 * preceded by CR becomes CR LF (a person typing, or a program writing
 * Unix lines: smtpd refuses bare LF).  End of standard input shuts down
 * our side of the socket; the session ends when the server closes its
 * side (after QUIT, or on a timeout).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail.h"

#define RELAY_CHUNK	16384

/* relay_write - all of p to fd; 0 or -1 */
static int
relay_write(int fd, const char *p, size_t n, bool is_sock)
{
	ssize_t w;

	while (n > 0) {
		w = is_sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sm_relay(const struct sm_conf *conf)
{
	char in[RELAY_CHUNK], out[2 * RELAY_CHUNK];
	struct pollfd pfd[2];
	bool in_open = true;
	int sock, prev = 0;
	size_t i, o;
	ssize_t n;

	if ((sock = sm_connect(conf)) < 0)
		return -sock;
	for (;;) {
		pfd[0].fd = in_open ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = sock;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			sm_err(conf, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0) {
			n = read(sock, in, sizeof(in));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				(void)close(sock);
				if (n < 0) {
					sm_err(conf, "lost the connection to "
					    "the mail system: %s",
					    strerror(errno));
					return EX_TEMPFAIL;
				}
				return EX_OK;
			}
			if (relay_write(STDOUT_FILENO, in, (size_t)n,
			    false) < 0) {
				sm_err(conf, "write error: %s",
				    strerror(errno));
				break;
			}
			continue;
		}
		if (pfd[0].revents == 0)
			continue;
		n = read(STDIN_FILENO, in, sizeof(in));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* let the server see the end; wait for its close */
			(void)shutdown(sock, SHUT_WR);
			in_open = false;
			continue;
		}
		for (i = o = 0; i < (size_t)n; i++) {
			if (in[i] == '\n' && prev != '\r')
				out[o++] = '\r';
			out[o++] = in[i];
			prev = (unsigned char)in[i];
		}
		if (relay_write(sock, out, o, true) < 0) {
			sm_err(conf, "lost the connection to the mail system: "
			    "%s", strerror(errno));
			(void)close(sock);
			return EX_TEMPFAIL;
		}
	}
	(void)close(sock);
	return EX_IOERR;
}
