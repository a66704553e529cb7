/*
 * file - whole files read with a bound, reload checks, directory fsync
 *
 * file_read_all(path, max, flags, out, errs) reads the file at path into
 * out (emptied first; NUL-terminated, as every buf).  It returns 1 when
 * the file was read, 0 when it does not exist and flags hold
 * FILE_MISSING_OK (nothing is said in errs then, out stays empty), or -1
 * with one line appended to errs:
 *	"path: cannot open: <strerror>\n"
 *	"path: read error: <strerror>\n"
 *	"path: file too large (over <max> bytes)\n"
 * It opens whatever path names (a directory fails with a read error) and
 * reads to end of file: the reader of configuration files.
 *
 * file_read_stable(path, max, out, st_r, errs) is the stricter reader of
 * tables: path must be a regular file (a FIFO or device is refused, and
 * opening it never blocks), at most max bytes, and the same file, size
 * and mtime after the read as before it, so a table half rewritten in
 * place is never taken for a whole one.  0 with the file's fstat() in
 * *st_r, or -1 with out empty, *st_r untouched and one line in errs:
 *	"path: <strerror>\n"
 *	"path: not a regular file\n"
 *	"path: file too large (over <max> bytes)\n"
 *	"path: file changed while it was read (replace tables atomically:
 *	    write a copy, then rename it)\n"	(one line)
 *
 * Both also stop at out's own limit (buf_init's max), reported as too
 * large with the max given here; errs may be NULL for both.  Out of
 * memory is fatal.
 *
 * file_stat_changed(a, b) is 1 when two stat results name different
 * contents (device, inode, size or mtime differ), else 0.
 *
 * struct file_stamp is what a process that keeps a file loaded (a table,
 * a user database) remembers about it: the identity of what it last
 * loaded, or tried to, and whether that load failed.  Zero it (or
 * embed it in calloc'd memory) before the first use; after a first load
 * set .st from the reader's *st_r.  Before each use of the data:
 *
 *	file_stamp_check(fs, path, st_r)
 *	    1	path changed since the stamp: load it again, then call
 *		file_stamp_loaded(fs, st_r) or file_stamp_failed(fs, st_r);
 *	    0	unchanged since a good load: use what you hold;
 *	   -1	do not use the data.  errno != 0: stat() failed just now
 *		while the stamp was good (say so once; the stamp is now
 *		broken and forgotten, so the file's return is a change).
 *		errno == 0: unchanged since a failed load, or still
 *		unreadable (already said).
 *
 * file_stamp_loaded() records a good load and returns 1 when the stamp
 * was broken before (the caller may say "loaded again"), else 0.
 * file_stamp_failed() records a failed load of the file st describes:
 * the data held stays unused until that file changes.
 * file_stamp_forget() makes the next check see a change, keeping the
 * broken state (to reopen after an error of the loaded data itself).
 *
 * file_sync_dir(path) fsyncs a directory (rename() and link() are not
 * durable without it): 0, or -1 with errno kept from the failed call.
 */
#ifndef POSTA_FILE_H
#define POSTA_FILE_H

#include <sys/stat.h>

#include <stddef.h>

#include "buf.h"

#define FILE_MISSING_OK	0x1	/* file_read_all: ENOENT returns 0 */

int	file_read_all(const char *path, size_t max, int flags,
	    struct buf *out, struct buf *errs);
int	file_read_stable(const char *path, long long max, struct buf *out,
	    struct stat *st_r, struct buf *errs);
int	file_stat_changed(const struct stat *, const struct stat *);

struct file_stamp {
	struct stat st;		/* what was loaded, or failed to load */
	int	 is_broken;	/* the last load or stat() failed */
};

int	file_stamp_check(struct file_stamp *, const char *path,
	    struct stat *st_r);
int	file_stamp_loaded(struct file_stamp *, const struct stat *);
void	file_stamp_failed(struct file_stamp *, const struct stat *);
void	file_stamp_forget(struct file_stamp *);

int	file_sync_dir(const char *path);

#endif
