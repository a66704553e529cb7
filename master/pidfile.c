/*
 * pidfile - one master per queue directory
 *
 * master opens $queue_directory/pid/master.pid, takes an exclusive
 * flock() without waiting and holds it for its whole life (the fd is
 * close-on-exec, so no child inherits the lock).  The kernel drops the
 * lock when master dies however it dies, so a stale file never blocks a
 * new master.  The file holds the pid as text; at stop master empties it
 * rather than removing it (removing would race with a new master that
 * already locked the same name).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "master.h"
#include "strnum.h"

static int
pid_path(const char *qdir, char *path, size_t sz)
{
	return snprintf(path, sz, "%s/pid/master.pid", qdir) >= (int)sz ?
	    -1 : 0;
}

/* pid_read - the pid written in the file, or 0 */
static long
pid_read(int fd)
{
	char text[32];
	unsigned long long v;
	ssize_t n;

	n = pread(fd, text, sizeof(text) - 1, 0);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	text[strcspn(text, "\n")] = '\0';
	if (str_to_uint(text, 1, 4194304, &v) < 0)
		return 0;
	return (long)v;
}

int
master_pid_lock(const char *qdir, int *fd_r, struct buf *errs)
{
	char path[4096];
	long pid;
	int fd;

	if (pid_path(qdir, path, sizeof(path)) < 0) {
		(void)buf_printf(errs, "%s: path too long\n", qdir);
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0644)) < 0) {
		(void)buf_printf(errs, "open %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			pid = pid_read(fd);
			if (pid > 0)
				(void)buf_printf(errs, "another master "
				    "(pid %ld) is already running on %s "
				    "(lock %s held)\n", pid, qdir, path);
			else
				(void)buf_printf(errs, "another master is "
				    "already running on %s (lock %s held)\n",
				    qdir, path);
		} else
			(void)buf_printf(errs, "lock %s: %s\n", path,
			    strerror(errno));
		(void)close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

/* master_pid_test - 1 and the pid if a master holds the lock, else 0 */
int
master_pid_test(const char *qdir, long *pid_r)
{
	char path[4096];
	int fd, rc = 0;

	*pid_r = 0;
	if (pid_path(qdir, path, sizeof(path)) < 0)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			rc = 1;
			*pid_r = pid_read(fd);
		}
	}
	(void)close(fd);
	return rc;
}

int
master_pid_write(int fd)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n ||
	    fsync(fd) < 0)
		return -1;
	return 0;
}

void
master_pid_clear(int fd)
{
	if (fd >= 0 && ftruncate(fd, 0) < 0)
		return;		/* nothing more to do about it */
}
