/*
 * ctl - what start, stop, reload and status share: reading posta.conf
 * and finding the running master.
 *
 * master holds an exclusive flock(2) on $queue_directory/pid/master.pid
 * for its whole life, so "is it running" is "can we not get a shared
 * lock on that file": a pid file left behind by a master that was
 * killed is not mistaken for a live one, and no pid is signalled on the
 * strength of a stale file.  The shared lock we take to probe is
 * released at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "posta.h"
#include "settings.h"
#include "strnum.h"

/* a master that has just taken its lock writes its pid right after */
#define PROBE_PID_TRIES	50

struct cfg *
posta_conf_load(const char *dir)
{
	struct cfg *c = cfg_new(posta_settings, SCOPE_POSTA);
	char path[4096];
	struct buf errs;
	int rc;

	if (snprintf(path, sizeof(path), "%s/posta.conf", dir) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "posta: %s: path too long\n", dir);
		cfg_free(&c);
		return NULL;
	}
	buf_init(&errs, 1024 * 1024);
	rc = cfg_load_file(c, path, SCOPE_POSTA, false, &errs);
	if (rc == 0)
		rc = cfg_set(c, "config_directory", dir, "command line",
		    &errs);
	if (rc < 0) {
		fputs(buf_cstr(&errs), stderr);
		cfg_free(&c);
	}
	buf_deinit(&errs);
	return c;
}

/* read_pid - the pid written in fd, or -1 if it holds none (yet) */
static pid_t
read_pid(int fd)
{
	char text[32];
	unsigned long long v;
	ssize_t n;

	n = pread(fd, text, sizeof(text) - 1, 0);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	if (str_to_uint(text, 1, 0x7fffffff, &v) < 0)
		return -1;
	return (pid_t)v;
}

/* pid_path - qdir/pid/master.pid into path; 0 or -1 (printed) */
static int
pid_path(const char *qdir, char *path, size_t size)
{
	if (snprintf(path, size, "%s/pid/master.pid", qdir) >= (int)size) {
		fprintf(stderr, "posta: %s: path too long\n", qdir);
		return -1;
	}
	return 0;
}

int
master_lock_held(const char *qdir)
{
	char path[4096];
	int fd, rc;

	if (pid_path(qdir, path, sizeof(path)) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void)flock(fd, LOCK_UN);
		rc = 0;
	} else
		rc = errno == EWOULDBLOCK ? 1 : -1;
	(void)close(fd);
	return rc;
}

int
master_probe(const char *qdir, pid_t *pid_r)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	char path[4096];
	pid_t pid = -1;
	int fd, i;

	if (pid_path(qdir, path, sizeof(path)) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "posta: cannot open %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		/* nobody holds it: stale or never used */
		(void)flock(fd, LOCK_UN);
		(void)close(fd);
		return 0;
	}
	if (errno != EWOULDBLOCK) {
		fprintf(stderr, "posta: cannot lock %s: %s\n", path,
		    strerror(errno));
		(void)close(fd);
		return -1;
	}
	/* locked: a master lives; between its lock and its write, wait */
	for (i = 0; i < PROBE_PID_TRIES; i++) {
		if ((pid = read_pid(fd)) > 0)
			break;
		(void)nanosleep(&pause, NULL);
	}
	(void)close(fd);
	if (pid <= 0) {
		fprintf(stderr, "posta: %s is locked by a running master but "
		    "holds no process id\n", path);
		return -1;
	}
	*pid_r = pid;
	return 1;
}
