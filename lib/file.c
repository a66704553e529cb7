/*
 * file - whole files read with a bound, reload checks, directory fsync
 * (see file.h)
 *
 * Two readers share one bounded read loop: file_read_all() for
 * configuration files, as lenient as open() and read() are, and
 * file_read_stable() for tables, which must be regular files that do not
 * change while they are read.  They differ on purpose and in their
 * messages, which callers and tests know by heart.  file_stamp holds the
 * reload state machine of map_file, map_bdb and userdb; the messages
 * about it stay with them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "file.h"

static void file_say(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* file_say - append a message to errs unless it is NULL */
static void
file_say(struct buf *errs, const char *fmt, ...)
{
	va_list ap;

	if (errs == NULL)
		return;
	va_start(ap, fmt);
	(void)buf_vprintf(errs, fmt, ap);
	va_end(ap);
}

/*
 * file_read_fd - append fd up to end of file to out, at most max bytes in
 * out; 0, or -1 with errno (EMSGSIZE: over max or over out's own limit)
 */
static int
file_read_fd(int fd, long long max, struct buf *out)
{
	char chunk[16384];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if ((long long)(buf_len(out) + (size_t)n) > max) {
			errno = EMSGSIZE;
			return -1;
		}
		if (buf_append(out, chunk, (size_t)n) < 0)
			return -1;	/* EMSGSIZE */
	}
}

int
file_read_all(const char *path, size_t max, int flags, struct buf *out,
    struct buf *errs)
{
	int fd;

	buf_reset(out);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT && (flags & FILE_MISSING_OK))
			return 0;
		file_say(errs, "%s: cannot open: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (file_read_fd(fd, (long long)max, out) < 0) {
		if (errno == EMSGSIZE)
			file_say(errs, "%s: file too large (over %zu bytes)\n",
			    path, max);
		else
			file_say(errs, "%s: read error: %s\n", path,
			    strerror(errno));
		(void)close(fd);
		buf_reset(out);
		return -1;
	}
	(void)close(fd);
	return 1;
}

int
file_stat_changed(const struct stat *a, const struct stat *b)
{
	return a->st_dev != b->st_dev || a->st_ino != b->st_ino ||
	    a->st_size != b->st_size ||
	    a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	    a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

int
file_read_stable(const char *path, long long max, struct buf *out,
    struct stat *st_r, struct buf *errs)
{
	struct stat st, st2;
	int fd;

	buf_reset(out);
	/* O_NONBLOCK: a FIFO put in a table's place must not hang us */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0) {
		file_say(errs, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode)) {
		file_say(errs, "%s: not a regular file\n", path);
		goto fail;
	}
	if (st.st_size > max)
		goto too_large;
	if (file_read_fd(fd, max, out) < 0) {
		if (errno == EMSGSIZE)
			goto too_large;
		goto fail_errno;
	}
	if (fstat(fd, &st2) < 0)
		goto fail_errno;
	if (file_stat_changed(&st, &st2) ||
	    (long long)buf_len(out) != (long long)st2.st_size) {
		file_say(errs, "%s: file changed while it was read (replace "
		    "tables atomically: write a copy, then rename it)\n",
		    path);
		goto fail;
	}
	(void)close(fd);
	*st_r = st;
	return 0;

too_large:
	file_say(errs, "%s: file too large (over %lld bytes)\n", path, max);
	goto fail;
fail_errno:
	file_say(errs, "%s: %s\n", path, strerror(errno));
fail:
	(void)close(fd);
	buf_reset(out);
	return -1;
}

int
file_stamp_check(struct file_stamp *fs, const char *path, struct stat *st_r)
{
	int was_broken = fs->is_broken, saved;

	if (stat(path, st_r) < 0) {
		saved = errno;
		fs->is_broken = 1;
		memset(&fs->st, 0, sizeof(fs->st));
		errno = was_broken ? 0 : saved;
		return -1;
	}
	if (file_stat_changed(st_r, &fs->st))
		return 1;
	if (fs->is_broken) {
		errno = 0;
		return -1;
	}
	return 0;
}

int
file_stamp_loaded(struct file_stamp *fs, const struct stat *st)
{
	int was_broken = fs->is_broken;

	fs->st = *st;
	fs->is_broken = 0;
	return was_broken;
}

void
file_stamp_failed(struct file_stamp *fs, const struct stat *st)
{
	fs->st = *st;
	fs->is_broken = 1;
}

void
file_stamp_forget(struct file_stamp *fs)
{
	memset(&fs->st, 0, sizeof(fs->st));
}

int
file_sync_dir(const char *path)
{
	int fd, rc, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	(void)close(fd);
	errno = saved;
	return rc;
}
