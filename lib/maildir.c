/*
 * maildir - Maildir++ delivery and quota (see maildir.h for the
 * contract).  A delivery is: make a unique file in tmp/, copy the
 * message into it turning CRLF into LF, check the quota with its exact
 * size, fsync it, rename it into new/ under its final name with ,S= and
 * ,W=, fsync new/, then count it in maildirsize.  The Maildir is
 * created lazily: the first open(2) in tmp/ that fails with ENOENT
 * builds it, so a delivery to an existing mailbox costs no extra calls.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "maildir.h"
#include "strnum.h"

#define MD_IOBUF	(64 * 1024)
#define MD_NAME_TRIES	16
#define MD_HOST_MAX	256
#define MD_NUM_MAX	24	/* digits of a number in maildirsize */

static const char *const md_subdirs[] = { "tmp", "new", "cur" };

static atomic_ulong md_counter;
static char md_host[MD_HOST_MAX * 4 + 1];	/* escaped; "" = not yet */

/* ---- small helpers ---- */

/* md_path - snprintf into out; 0, or -1 with ENAMETOOLONG */
static int
md_path(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
md_path(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Group commit of new/ (DESIGN.md "Where speed comes from"): the worker
 * threads of one process that deliver into the same Maildir at once
 * share one fsync of its new/ instead of queueing behind each other.
 * Each caller takes a ticket after its rename; an fsync that STARTS
 * after ticket t covers t, so a caller returns once an fsync started at
 * or after its ticket has finished, running one itself when none does.
 * No rename is ever reported durable before a directory fsync that
 * began after it.
 */
#define MD_GROUP_DIRS	32

struct md_group {
	char	 path[MAILDIR_PATH_MAX];
	uint64_t requested;	/* last ticket handed out */
	uint64_t completed;	/* tickets covered by the last finished fsync */
	int	 err;		/* errno of that fsync, 0 if it worked */
	bool	 running;
	unsigned users;		/* callers inside md_sync_dir_grouped() */
};

static pthread_mutex_t md_group_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t md_group_cond = PTHREAD_COND_INITIALIZER;
static struct md_group md_groups[MD_GROUP_DIRS];

static struct md_group *
md_group_get(const char *path)
{
	struct md_group *free_g = NULL;
	size_t i;

	for (i = 0; i < MD_GROUP_DIRS; i++) {
		if (md_groups[i].users > 0 &&
		    strcmp(md_groups[i].path, path) == 0)
			return &md_groups[i];
		if (free_g == NULL && md_groups[i].users == 0)
			free_g = &md_groups[i];
	}
	if (free_g == NULL || strlen(path) >= sizeof(free_g->path))
		return NULL;
	memset(free_g, 0, sizeof(*free_g));
	memcpy(free_g->path, path, strlen(path) + 1);
	return free_g;
}

static int
md_sync_dir_grouped(const char *path)
{
	struct md_group *g;
	uint64_t ticket, start;
	int rc, err;

	(void)pthread_mutex_lock(&md_group_lock);
	if ((g = md_group_get(path)) == NULL) {
		(void)pthread_mutex_unlock(&md_group_lock);
		return file_sync_dir(path);
	}
	g->users++;
	ticket = ++g->requested;
	while (g->completed < ticket) {
		if (g->running) {
			(void)pthread_cond_wait(&md_group_cond,
			    &md_group_lock);
			continue;
		}
		g->running = true;
		start = g->requested;
		(void)pthread_mutex_unlock(&md_group_lock);
		rc = file_sync_dir(path);
		err = rc < 0 ? errno : 0;
		(void)pthread_mutex_lock(&md_group_lock);
		g->running = false;
		g->completed = start;
		g->err = err;
		(void)pthread_cond_broadcast(&md_group_cond);
	}
	err = g->err;
	g->users--;
	(void)pthread_mutex_unlock(&md_group_lock);
	errno = err;
	return err != 0 ? -1 : 0;
}

/* md_sync_parent - fsync the directory that holds path */
static int
md_sync_parent(const char *path)
{
	char parent[MAILDIR_PATH_MAX];
	char *slash;

	if (md_path(parent, sizeof(parent), "%s", path) < 0)
		return -1;
	if ((slash = strrchr(parent, '/')) == NULL)
		return file_sync_dir(".");
	if (slash == parent)
		slash++;
	*slash = '\0';
	return file_sync_dir(parent);
}

/* md_mkdir - mkdir 0700; 1 made (parent fsynced), 0 existed, -1 error */
static int
md_mkdir(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return md_sync_parent(path) < 0 ? -1 : 1;
	return errno == EEXIST ? 0 : -1;
}

/* md_mkdir_p - mkdir -p path (modified in place and restored) */
static int
md_mkdir_p(char *path)
{
	char *slash;
	int rc;

	if ((rc = md_mkdir(path)) >= 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	if ((slash = strrchr(path, '/')) == NULL || slash == path)
		return -1;
	*slash = '\0';
	rc = md_mkdir_p(path);
	*slash = '/';
	if (rc < 0)
		return -1;
	return md_mkdir(path) < 0 ? -1 : 0;
}

/* md_make_dirs - tmp/ new/ cur/ under dir */
static int
md_make_dirs(const char *dir)
{
	char p[MAILDIR_PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(md_subdirs) / sizeof(md_subdirs[0]); i++) {
		if (md_path(p, sizeof(p), "%s/%s", dir, md_subdirs[i]) < 0 ||
		    md_mkdir(p) < 0)
			return -1;
	}
	return 0;
}

/*
 * md_make - create the Maildir at root (parents too) and, when fdir is
 * not NULL, the folder at fdir with its maildirfolder marker.  On error
 * *what_r names the path that failed.
 */
static int
md_make(const char *root, const char *fdir, char *what, size_t whatsz)
{
	char p[MAILDIR_PATH_MAX];
	size_t len;
	int fd;

	if (md_path(p, sizeof(p), "%s", root) < 0)
		goto fail;
	len = strlen(p);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	if (md_mkdir_p(p) < 0 || md_make_dirs(p) < 0)
		goto fail;
	if (fdir == NULL)
		return 0;
	if (md_mkdir(fdir) < 0) {
		(void)md_path(p, sizeof(p), "%s", fdir);
		goto fail;
	}
	if (md_path(p, sizeof(p), "%s/maildirfolder", fdir) < 0)
		goto fail;
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	(void)close(fd);
	if (md_make_dirs(fdir) < 0 || file_sync_dir(fdir) < 0) {
		(void)md_path(p, sizeof(p), "%s", fdir);
		goto fail;
	}
	return 0;
fail:
	(void)snprintf(what, whatsz, "%s", p);
	return -1;
}

/* ---- names ---- */

void
maildir_set_hostname(const char *name)
{
	char raw[MD_HOST_MAX];
	size_t i, o = 0;

	if (name == NULL) {
		md_host[0] = '\0';
		return;
	}
	(void)snprintf(raw, sizeof(raw), "%s", name);
	for (i = 0; raw[i] != '\0'; i++) {
		if (raw[i] == '/') {
			memcpy(md_host + o, "\\057", 4);
			o += 4;
		} else if (raw[i] == ':') {
			memcpy(md_host + o, "\\072", 4);
			o += 4;
		} else
			md_host[o++] = raw[i];
	}
	md_host[o] = '\0';
	if (o == 0)
		memcpy(md_host, "localhost", sizeof("localhost"));
}

static const char *
md_hostname(void)
{
	char h[MD_HOST_MAX];

	if (md_host[0] == '\0') {
		if (gethostname(h, sizeof(h)) < 0)
			h[0] = '\0';
		h[sizeof(h) - 1] = '\0';
		maildir_set_hostname(h);
	}
	return md_host;
}

/* md_unique - SECONDS.M<usec>P<pid>Q<n>.HOST */
static int
md_unique(char *out, size_t outsz)
{
	struct timeval tv;
	unsigned long n = atomic_fetch_add(&md_counter, 1) + 1;

	(void)gettimeofday(&tv, NULL);
	return md_path(out, outsz, "%lld.M%ldP%ldQ%lu.%s",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), n,
	    md_hostname());
}

int
maildir_folder_ok(const char *name)
{
	size_t i, len;

	if (name == NULL || (len = strlen(name)) == 0 ||
	    len > MAILDIR_FOLDER_MAX)
		return 0;
	/* ".x" would make "..x"; "a..b" an empty level; "/" leaves the box */
	if (name[0] == '.' || name[len - 1] == '.' ||
	    strstr(name, "..") != NULL)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* ---- errors ---- */

static int
md_fail(struct reply *r, const struct maildir_msg *msg, const char *what,
    const char *path, int err)
{
	const char *id = msg != NULL && msg->log_id != NULL ? msg->log_id : "";

	log_err("%s%smaildir delivery failed: %s %s: %s", id,
	    *id != '\0' ? ": " : "", what, path, strerror(err));
	if (err == ENOSPC)
		reply_set(r, 452, "4.3.1", "Insufficient system storage");
	else if (err == EDQUOT)
		reply_set(r, 452, "4.2.2", "Mailbox full");
	else
		reply_set(r, 451, "4.3.0",
		    "Local delivery failed, try again later");
	return -1;
}

/* ---- copying ---- */

struct md_copy {
	int	 fd;
	bool	 pending_cr;	/* a CR ended the last chunk */
	uint64_t size;		/* bytes written */
	uint64_t nlf;		/* LFs written */
	char	 out[MD_IOBUF + 1];
};

static int
md_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t
md_count_lf(const char *p, size_t n)
{
	const char *e = p + n;
	size_t c = 0;

	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		c++;
		p++;
	}
	return c;
}

/* md_copy_chunk - convert n (<= MD_IOBUF) bytes and write them */
static int
md_copy_chunk(struct md_copy *c, const char *in, size_t n)
{
	const char *p = in, *e = in + n, *cr;
	size_t o = 0, span;

	if (n == 0)
		return 0;
	if (c->pending_cr) {
		c->pending_cr = false;
		if (*p == '\n') {
			c->out[o++] = '\n';
			p++;
		} else
			c->out[o++] = '\r';
	}
	while (p < e) {
		cr = memchr(p, '\r', (size_t)(e - p));
		span = (size_t)((cr != NULL ? cr : e) - p);
		memcpy(c->out + o, p, span);
		o += span;
		p += span;
		if (cr == NULL)
			break;
		/* CR: drop it before LF, keep it otherwise */
		if (cr + 1 == e) {
			c->pending_cr = true;
			p = e;
		} else if (cr[1] == '\n') {
			c->out[o++] = '\n';
			p = cr + 2;
		} else {
			c->out[o++] = '\r';
			p = cr + 1;
		}
	}
	c->nlf += md_count_lf(c->out, o);
	c->size += o;
	return md_write_all(c->fd, c->out, o);
}

static int
md_copy_mem(struct md_copy *c, const char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		k = n < MD_IOBUF ? n : MD_IOBUF;
		if (md_copy_chunk(c, p, k) < 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

/*
 * md_copy_fd - copy size bytes of fd from off.  -1 with *is_read_r
 * telling a read error (EIO, or ENODATA for a file shorter than the
 * envelope says) from a write error.
 */
static int
md_copy_fd(struct md_copy *c, int fd, uint64_t off, uint64_t size,
    bool *is_read_r)
{
	char *in = malloc(MD_IOBUF);
	ssize_t n;
	size_t want;
	int rc = -1;

	if (in == NULL)
		log_fatal("out of memory");
	*is_read_r = false;
	while (size > 0) {
		want = size < MD_IOBUF ? (size_t)size : MD_IOBUF;
		n = pread(fd, in, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENODATA;
			*is_read_r = true;
			goto out;
		}
		if (md_copy_chunk(c, in, (size_t)n) < 0)
			goto out;
		off += (uint64_t)n;
		size -= (uint64_t)n;
	}
	rc = 0;
out:
	free(in);
	return rc;
}

static int
md_copy_finish(struct md_copy *c)
{
	if (!c->pending_cr)
		return 0;
	c->pending_cr = false;
	c->size++;
	return md_write_all(c->fd, "\r", 1);
}

/* ---- quota ---- */

static int
md_is_digits(const char *p, size_t n, bool is_signed)
{
	size_t i = 0;

	if (is_signed && n > 0 && p[0] == '-')
		i++;
	if (i == n)
		return 0;
	for (; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

/* md_num - the signed number p[0..n); 0 or -1 */
static int
md_num(const char *p, size_t n, long long min, long long *v_r)
{
	char tmp[MD_NUM_MAX];

	if (n == 0 || n >= sizeof(tmp) || !md_is_digits(p, n, min < 0))
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return str_to_int(tmp, min, INT64_MAX, v_r);
}

/* md_parse_limits - "<bytes>S,<count>C", parts optional, any order */
static int
md_parse_limits(const char *p, const char *e,
    struct maildir_quota_usage *u)
{
	const char *comma;
	long long v;

	while (p < e) {
		comma = memchr(p, ',', (size_t)(e - p));
		if (comma == NULL)
			comma = e;
		if (comma - p < 2 || md_num(p, (size_t)(comma - p - 1), 0,
		    &v) < 0)
			return -1;
		switch (comma[-1]) {
		case 'S':
			u->limit_bytes = (uint64_t)v;
			break;
		case 'C':
			u->limit_count = (uint64_t)v;
			break;
		default:
			return -1;
		}
		p = comma < e ? comma + 1 : e;
		if (comma < e && p == e)
			return -1;	/* trailing comma */
	}
	return 0;
}

static bool
md_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* md_parse_change - "<bytes> <count>" with any blanks around */
static int
md_parse_change(const char *p, const char *e, long long *bytes_r,
    long long *count_r)
{
	const char *t;

	while (p < e && md_is_blank(*p))
		p++;
	for (t = p; t < e && !md_is_blank(*t); t++)
		;
	if (md_num(p, (size_t)(t - p), INT64_MIN, bytes_r) < 0)
		return -1;
	for (p = t; p < e && md_is_blank(*p); p++)
		;
	for (t = p; t < e && !md_is_blank(*t); t++)
		;
	if (md_num(p, (size_t)(t - p), INT64_MIN, count_r) < 0)
		return -1;
	while (t < e && md_is_blank(*t))
		t++;
	return t == e ? 0 : -1;
}

int
maildir_quota_parse(const void *data, size_t len,
    struct maildir_quota_usage *u_r)
{
	const char *p = data, *e = p + len, *nl;
	struct maildir_quota_usage u;
	long long b, c;

	memset(&u, 0, sizeof(u));
	if (len == 0 || (nl = memchr(p, '\n', len)) == NULL)
		return -1;
	if (md_parse_limits(p, nl, &u) < 0)
		return -1;
	for (p = nl + 1; p < e; p = nl + 1) {
		/* no LF: a torn append, the sum cannot be trusted */
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			return -1;
		if (md_parse_change(p, nl, &b, &c) < 0 ||
		    __builtin_add_overflow(u.bytes, b, &u.bytes) ||
		    __builtin_add_overflow(u.count, c, &u.count))
			return -1;
		u.nlines++;
	}
	if (u.bytes < 0 || u.count < 0)
		return -1;
	*u_r = u;
	return 0;
}

static bool
md_quota_fits(const struct maildir_quota_usage *u,
    const struct maildir_quota *q, uint64_t msg_size)
{
	uint64_t used = (uint64_t)u->bytes, n = (uint64_t)u->count;

	if (q->bytes != 0 && (used > q->bytes || msg_size > q->bytes - used))
		return false;
	if (q->count != 0 && n >= q->count)
		return false;
	return true;
}

/* md_file_size - size from ",S=<n>" in a Maildir file name, or stat */
static int
md_file_size(int dfd, const char *name, uint64_t *size_r)
{
	const char *s = strstr(name, ",S="), *colon = strchr(name, ':');
	unsigned long long v = 0;
	struct stat st;
	size_t i;

	if (s != NULL && (colon == NULL || s < colon)) {
		s += 3;
		for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 20; i++) {
			if (v > (UINT64_MAX - 9) / 10)
				break;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		if (i > 0 && (s[i] == '\0' || s[i] == ',' || s[i] == ':')) {
			*size_r = v;
			return 1;
		}
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;	/* expunged meanwhile */
	if (!S_ISREG(st.st_mode))
		return 0;
	*size_r = (uint64_t)st.st_size;
	return 1;
}

/* md_scan_dir - add up the messages of one cur/ or new/ */
static int
md_scan_dir(const char *dir, uint64_t *bytes, uint64_t *count)
{
	struct dirent *de;
	uint64_t sz;
	DIR *d;
	int rc;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((rc = md_file_size(dirfd(d), de->d_name, &sz)) < 0) {
			int saved = errno;

			(void)closedir(d);
			errno = saved;
			return -1;
		}
		if (rc > 0) {
			*bytes += sz;
			(*count)++;
		}
		errno = 0;
	}
	rc = errno != 0 ? -1 : 0;
	(void)closedir(d);
	return rc;
}

static int
md_scan_folder(const char *dir, uint64_t *bytes, uint64_t *count)
{
	char p[MAILDIR_PATH_MAX];

	if (md_path(p, sizeof(p), "%s/cur", dir) < 0 ||
	    md_scan_dir(p, bytes, count) < 0)
		return -1;
	if (md_path(p, sizeof(p), "%s/new", dir) < 0 ||
	    md_scan_dir(p, bytes, count) < 0)
		return -1;
	return 0;
}

static int
md_format_limits(char *out, size_t outsz, const struct maildir_quota *q)
{
	if (q->bytes != 0 && q->count == 0)
		return md_path(out, outsz, "%lluS",
		    (unsigned long long)q->bytes);
	if (q->bytes == 0 && q->count != 0)
		return md_path(out, outsz, "%lluC",
		    (unsigned long long)q->count);
	return md_path(out, outsz, "%lluS,%lluC",
	    (unsigned long long)q->bytes, (unsigned long long)q->count);
}

int
maildir_quota_recalc(const char *path, const struct maildir_quota *q,
    struct maildir_quota_usage *u_r)
{
	char p[MAILDIR_PATH_MAX], tmp[MAILDIR_PATH_MAX], name[512];
	char text[128], lim[64];
	uint64_t bytes = 0, count = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, n, saved;

	memset(u_r, 0, sizeof(*u_r));
	u_r->limit_bytes = q->bytes;
	u_r->limit_count = q->count;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;	/* nothing delivered */
	if (md_scan_folder(path, &bytes, &count) < 0)
		goto fail;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (md_path(p, sizeof(p), "%s/%s", path, de->d_name) < 0 ||
		    md_scan_folder(p, &bytes, &count) < 0)
			goto fail;
		errno = 0;
	}
	if (errno != 0)
		goto fail;
	(void)closedir(d);
	d = NULL;

	if (bytes > INT64_MAX || count > INT64_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if (md_format_limits(lim, sizeof(lim), q) < 0)
		return -1;
	n = snprintf(text, sizeof(text), "%s\n%llu %llu\n", lim,
	    (unsigned long long)bytes, (unsigned long long)count);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		errno = EOVERFLOW;
		return -1;
	}
	/* write beside the mail and rename: readers see old or new, whole */
	if (md_unique(name, sizeof(name)) < 0 ||
	    md_path(tmp, sizeof(tmp), "%s/tmp/%s", path, name) < 0 ||
	    md_path(p, sizeof(p), "%s/maildirsize", path) < 0)
		return -1;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	if (md_write_all(fd, text, (size_t)n) < 0 || close(fd) < 0) {
		saved = errno;
		(void)close(fd);
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	if (rename(tmp, p) < 0) {
		saved = errno;
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	u_r->bytes = (int64_t)bytes;
	u_r->count = (int64_t)count;
	u_r->nlines = 1;
	return 0;
fail:
	saved = errno;
	if (d != NULL)
		(void)closedir(d);
	errno = saved;
	return -1;
}

int
maildir_quota_get(const char *path, const struct maildir_quota *q,
    uint64_t msg_size, struct maildir_quota_usage *u_r)
{
	char p[MAILDIR_PATH_MAX], data[MAILDIR_SIZE_FILE_MAX + 1];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	if (md_path(p, sizeof(p), "%s/maildirsize", path) < 0)
		return -1;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return maildir_quota_recalc(path, q, u_r);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		int saved = errno;

		(void)close(fd);
		errno = saved;
		return -1;
	}
	while (got < sizeof(data)) {
		n = read(fd, data + got, sizeof(data) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			(void)close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	(void)close(fd);
	if (got > MAILDIR_SIZE_FILE_MAX ||
	    maildir_quota_parse(data, got, u_r) < 0 ||
	    u_r->limit_bytes != q->bytes || u_r->limit_count != q->count)
		return maildir_quota_recalc(path, q, u_r);
	/* an old file that says "full" may be wrong (Maildir++ rule) */
	if (!md_quota_fits(u_r, q, msg_size) &&
	    time(NULL) - st.st_mtime > MAILDIR_QUOTA_STALE)
		return maildir_quota_recalc(path, q, u_r);
	return 0;
}

static int
md_quota_check(const char *path, const struct maildir_quota *q,
    uint64_t msg_size, const char *log_id, struct reply *r)
{
	struct maildir_quota_usage u;
	const char *id = log_id != NULL ? log_id : "";

	if (q->bytes == 0 && q->count == 0)
		return 1;
	if (maildir_quota_get(path, q, msg_size, &u) < 0) {
		log_err("%s%smaildir quota %s: %s", id, *id ? ": " : "",
		    path, strerror(errno));
		reply_set(r, 451, "4.3.0",
		    "Local delivery failed, try again later");
		return -1;
	}
	if (md_quota_fits(&u, q, msg_size))
		return 1;
	reply_set(r, 452, "4.2.2", "Mailbox full");
	return 0;
}

int
maildir_quota_check(const char *path, uint64_t limit_bytes,
    uint64_t limit_count, uint64_t msg_size, struct reply *r)
{
	struct maildir_quota q = { limit_bytes, limit_count };

	return md_quota_check(path, &q, msg_size, NULL, r);
}

int
maildir_quota_add(const char *path, int64_t bytes, int64_t count)
{
	char p[MAILDIR_PATH_MAX], line[64];
	int fd, n, rc, saved;

	if (md_path(p, sizeof(p), "%s/maildirsize", path) < 0)
		return -1;
	if ((fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	n = snprintf(line, sizeof(line), "%lld %lld\n", (long long)bytes,
	    (long long)count);
	/* one write(2) with O_APPEND: concurrent appends do not mix */
	rc = write(fd, line, (size_t)n) == n ? 0 : -1;
	if (rc < 0 && errno == 0)
		errno = EIO;
	saved = errno;
	if (close(fd) < 0 && rc == 0)
		return -1;
	errno = saved;
	return rc;
}

/* ---- delivery ---- */

int
maildir_deliver(const char *path, const char *folder,
    const struct maildir_msg *msg, const struct maildir_quota *quota,
    struct maildir_result *res_r, struct reply *r)
{
	char dir[MAILDIR_PATH_MAX], tmp[MAILDIR_PATH_MAX];
	char newdir[MAILDIR_PATH_MAX], what[MAILDIR_PATH_MAX];
	char name[512];
	struct md_copy *c = NULL;
	bool is_read = false, made = false;
	int fd = -1, tries, err, rc;

	if (folder != NULL && !maildir_folder_ok(folder))
		return md_fail(r, msg, "folder name", folder, EINVAL);
	if ((folder != NULL ? md_path(dir, sizeof(dir), "%s/.%s", path,
	    folder) : md_path(dir, sizeof(dir), "%s", path)) < 0 ||
	    md_path(newdir, sizeof(newdir), "%s/new", dir) < 0)
		return md_fail(r, msg, "path", path, errno);

	for (tries = 0; fd < 0 && tries < MD_NAME_TRIES; tries++) {
		if (md_unique(name, sizeof(name)) < 0 ||
		    md_path(tmp, sizeof(tmp), "%s/tmp/%s", dir, name) < 0)
			return md_fail(r, msg, "path", dir, errno);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (fd >= 0)
			break;
		if (errno == ENOENT && !made) {
			if (md_make(path, folder != NULL ? dir : NULL, what,
			    sizeof(what)) < 0)
				return md_fail(r, msg, "create", what, errno);
			made = true;
		} else if (errno != EEXIST)
			return md_fail(r, msg, "create", tmp, errno);
	}
	if (fd < 0)
		return md_fail(r, msg, "create", tmp, EEXIST);

	c = malloc(sizeof(*c));
	if (c == NULL)
		log_fatal("out of memory");
	memset(c, 0, offsetof(struct md_copy, out));
	c->fd = fd;
	if ((msg->prefix_len > 0 &&
	    md_copy_mem(c, msg->prefix, msg->prefix_len) < 0) ||
	    md_copy_fd(c, msg->fd, msg->offset, msg->size, &is_read) < 0 ||
	    md_copy_finish(c) < 0) {
		err = errno;
		rc = md_fail(r, msg, is_read ? "read content for" : "write",
		    tmp, err);
		goto fail;
	}
	if (quota != NULL && (rc = md_quota_check(path, quota, c->size,
	    msg->log_id, r)) != 1) {
		rc = -1;
		goto fail;
	}
	if (fsync(fd) < 0) {
		rc = md_fail(r, msg, "fsync", tmp, errno);
		goto fail;
	}
	err = close(fd) < 0 ? errno : 0;
	fd = -1;
	if (err != 0) {
		rc = md_fail(r, msg, "close", tmp, err);
		goto fail;
	}

	res_r->size = c->size;
	res_r->vsize = c->size + c->nlf;
	if (md_path(res_r->path, sizeof(res_r->path), "%s/%s,S=%llu,W=%llu",
	    newdir, name, (unsigned long long)res_r->size,
	    (unsigned long long)res_r->vsize) < 0) {
		rc = md_fail(r, msg, "path", newdir, errno);
		goto fail;
	}
	res_r->name = res_r->path + strlen(newdir) + 1;
	/*
	 * rename, not link + unlink: the name is unique (time, microseconds,
	 * PID, counter, host), so link's refusal to replace buys nothing,
	 * and one directory operation less per message counts.
	 */
	rc = rename(tmp, res_r->path);
	if (rc < 0 && errno == ENOENT && !made) {
		/* new/ went away (or a half-made box): build and retry */
		if (md_make(path, folder != NULL ? dir : NULL, what,
		    sizeof(what)) < 0) {
			rc = md_fail(r, msg, "create", what, errno);
			goto fail;
		}
		rc = rename(tmp, res_r->path);
	}
	if (rc < 0) {
		rc = md_fail(r, msg, "rename into", newdir, errno);
		goto fail;
	}
	/* the rename alone is not durable: fsync new/ (invariant 2) */
	if (md_sync_dir_grouped(newdir) < 0) {
		err = errno;
		(void)unlink(res_r->path);
		rc = md_fail(r, msg, "fsync", newdir, err);
		goto out;
	}
	if (maildir_quota_add(path, (int64_t)res_r->size, 1) < 0)
		log_warn("%s%smaildir: maildirsize in %s: %s",
		    msg->log_id != NULL ? msg->log_id : "",
		    msg->log_id != NULL ? ": " : "", path, strerror(errno));
	rc = 0;
	goto out;
fail:
	if (fd >= 0)
		(void)close(fd);
	(void)unlink(tmp);
out:
	free(c);
	return rc;
}
