/*
 * listen - open a service's listening sockets, as root, before any child
 *
 * inet: every address the host resolves to (all of them, IPv4 and IPv6,
 * for "*:port" or a bare port), SO_REUSEADDR so a restart does not wait
 * for TIME_WAIT, IPV6_V6ONLY so the two wildcard sockets do not collide.
 * unix: path relative to queue_directory unless absolute; a stale socket
 * is removed first (only a socket: any other file is an error), the mode
 * is 0600 under private/ and 0666 under public/ (mastercf_unix_mode),
 * the owner mail_owner when we are root, so the unprivileged children
 * can reach each other.  The umask is tightened around bind() so the
 * socket never exists with a looser mode.  Every fd is close-on-exec:
 * spawning moves a service's own sockets to fd 3 onward for its child.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "priv.h"

static int
listen_inet(const struct mastercf_service *s, int *fds, unsigned *nfds_r,
    struct buf *errs)
{
	struct addrinfo hints, *res, *ai;
	char host[MASTERCF_HOST_MAX], port[16], addr[NI_MAXHOST];
	unsigned p, n = 0;
	int fd, one = 1, rc;

	if (mastercf_inet_split(s->listen, host, sizeof(host), &p) < 0) {
		(void)buf_printf(errs, "%s: bad listen address %s\n",
		    s->origin, s->listen);
		return -1;
	}
	(void)snprintf(port, sizeof(port), "%u", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(*host != '\0' ? host : NULL, port, &hints,
	    &res)) != 0) {
		(void)buf_printf(errs, "%s: service %s: %s: %s\n", s->origin,
		    s->name, s->listen, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (n == SERVER_LISTEN_MAX)
			break;
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr,
		    sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0)
			(void)snprintf(addr, sizeof(addr), "?");
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			/* a wildcard on a host without IPv6 */
			if (*host == '\0' && errno == EAFNOSUPPORT)
				continue;
			(void)buf_printf(errs, "service %s: socket: %s\n",
			    s->name, strerror(errno));
			goto fail;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (ai->ai_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
			if (*host == '\0' && ai->ai_family == AF_INET6 &&
			    errno == EADDRNOTAVAIL) {
				(void)close(fd);
				continue;
			}
			(void)buf_printf(errs, "service %s: bind %s port %s: "
			    "%s\n", s->name, addr, port, strerror(errno));
			(void)close(fd);
			goto fail;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	if (n == 0) {
		(void)buf_printf(errs, "service %s: %s: no address to listen "
		    "on\n", s->name, s->listen);
		return -1;
	}
	*nfds_r = n;
	return 0;
fail:
	freeaddrinfo(res);
	while (n > 0)
		(void)close(fds[--n]);
	return -1;
}

/* listen_unix_path - the socket's full path; 0 or -1 (too long) */
static int
listen_unix_path(const struct mastercf_service *s, struct cfg *cfg,
    char *path, size_t sz)
{
	int n;

	if (s->listen[0] == '/')
		n = snprintf(path, sz, "%s", s->listen);
	else
		n = snprintf(path, sz, "%s/%s",
		    cfg_str(cfg, "queue_directory"), s->listen);
	return n < 0 || (size_t)n >= sz ? -1 : 0;
}

static int
listen_unix(const struct mastercf_service *s, struct cfg *cfg, int *fds,
    unsigned *nfds_r, struct buf *errs)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t mode = mastercf_unix_mode(s->listen), old;
	uid_t uid;
	gid_t gid;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (listen_unix_path(s, cfg, sun.sun_path, sizeof(sun.sun_path)) < 0) {
		(void)buf_printf(errs, "service %s: socket path %s is too "
		    "long (at most %zu bytes with queue_directory)\n",
		    s->name, s->listen, sizeof(sun.sun_path) - 1);
		return -1;
	}
	if (lstat(sun.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			(void)buf_printf(errs, "service %s: %s exists and is "
			    "not a socket\n", s->name, sun.sun_path);
			return -1;
		}
		(void)unlink(sun.sun_path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		(void)buf_printf(errs, "service %s: socket: %s\n", s->name,
		    strerror(errno));
		return -1;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		(void)umask(old);
		(void)buf_printf(errs, "service %s: bind %s: %s\n", s->name,
		    sun.sun_path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	(void)umask(old);
	if (geteuid() == 0) {
		if (priv_lookup(cfg_str(cfg, "mail_owner"), &uid, &gid,
		    errs) < 0)
			goto fail;
		if (chown(sun.sun_path, uid, gid) < 0) {
			(void)buf_printf(errs, "chown %s: %s\n", sun.sun_path,
			    strerror(errno));
			goto fail;
		}
	}
	if (chmod(sun.sun_path, mode) < 0 ||
	    listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		(void)buf_printf(errs, "service %s: %s: %s\n", s->name,
		    sun.sun_path, strerror(errno));
		goto fail;
	}
	fds[0] = fd;
	*nfds_r = 1;
	return 0;
fail:
	(void)unlink(sun.sun_path);
	(void)close(fd);
	return -1;
}

int
master_listen_open(const struct mastercf_service *s, struct cfg *cfg,
    int *fds, unsigned *nfds_r, struct buf *errs)
{
	*nfds_r = 0;
	switch (s->type) {
	case MASTERCF_INET:
		return listen_inet(s, fds, nfds_r, errs);
	case MASTERCF_UNIX:
		return listen_unix(s, cfg, fds, nfds_r, errs);
	case MASTERCF_NONE:
		return 0;
	}
	return -1;
}

/*
 * master_listen_close - close the service's sockets; with unlink_path,
 * also remove its unix socket (a service removed by a reload)
 */
void
master_listen_close(struct master_svc *svc, int unlink_path)
{
	struct sockaddr_un sun;
	socklen_t len;
	unsigned i;

	for (i = 0; i < svc->nfds; i++) {
		memset(&sun, 0, sizeof(sun));
		len = sizeof(sun);
		if (unlink_path && getsockname(svc->fds[i],
		    (struct sockaddr *)&sun, &len) == 0 &&
		    sun.sun_family == AF_UNIX && sun.sun_path[0] == '/')
			(void)unlink(sun.sun_path);
		(void)close(svc->fds[i]);
		svc->fds[i] = -1;
	}
	svc->nfds = 0;
}
