/*
 * daemon - detach from the terminal, and tell systemd how we are
 *
 * master_daemonize() forks: the parent waits on a pipe until the child
 * reports that it holds the lock, listens and has started its services
 * (master_daemon_ready), then exits 0; if the child dies first, the
 * parent exits 1 (the child's error went to the terminal and the log).
 * The child starts a new session and keeps stderr until it is ready, so
 * a startup error still reaches whoever ran it.
 *
 * master_notify() sends a state ("READY=1", "RELOADING=1",
 * "STOPPING=1") to systemd when NOTIFY_SOCKET is set; otherwise it does
 * nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

int
master_daemonize(int *ready_fd_r)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_err("pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		log_err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		(void)close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && c == 'R' ? 0 : 1);
	}
	(void)close(p[0]);
	if (setsid() < 0)
		log_warn("setsid: %s", strerror(errno));
	if (chdir("/") < 0)
		log_warn("chdir /: %s", strerror(errno));
	*ready_fd_r = p[1];
	return 0;
}

/* master_daemon_ready - release the waiting parent, drop the terminal */
void
master_daemon_ready(int ready_fd)
{
	int fd;

	if (ready_fd < 0)
		return;
	if (write(ready_fd, "R", 1) != 1)
		log_warn("cannot tell the parent we are ready: %s",
		    strerror(errno));
	(void)close(ready_fd);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			(void)close(fd);
	}
}

void
master_notify(const char *state)
{
	int rc = sd_notify(0, state);

	if (rc < 0)
		log_debug("sd_notify %s: %s", state, strerror(-rc));
}
