/*
 * qlist - the queue listing shared by mailq(1) and "posta queue list"
 * (see qlist.h).
 *
 * The directories are read first (names only, sorted by ID); each file
 * is then opened and read with queue_read() one at a time, so memory
 * stays at one envelope plus 16 bytes per message however long the
 * queue.  Nothing here writes to the queue.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "qlist.h"
#include "queue.h"

/* the directories listed, in the order a moved file is looked for */
static const enum queue_dir qlist_dirs[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
};
#define QLIST_NDIRS	(sizeof(qlist_dirs) / sizeof(qlist_dirs[0]))

#define QLIST_REASON_INDENT	12
#define QLIST_RCPT_INDENT	43

struct qlist_ent {
	char	 id[QUEUE_ID_LEN + 1];
	enum queue_dir dir;
};

struct qlist_vec {
	struct qlist_ent *v;
	size_t	 n, cap;
};

/* utf8_len - bytes of a well-formed sequence at p (a printable code
 * point: not C1, not a surrogate, not overlong), or 0 */
static size_t
utf8_len(const unsigned char *p, size_t len)
{
	uint32_t cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp < 0xa0))
		return 0;
	return n;
}

void
qlist_put_safe(FILE *out, const void *p, size_t len, int flags)
{
	const unsigned char *s = p;
	size_t i = 0, n;

	while (i < len) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			(void)putc(s[i++], out);
			continue;
		}
		if ((flags & QLIST_SAFE_TEXT) && (s[i] == '\t' ||
		    s[i] == '\n')) {
			(void)putc(s[i++], out);
			continue;
		}
		if (s[i] >= 0x80 && (n = utf8_len(s + i, len - i)) > 0) {
			(void)fwrite(s + i, 1, n, out);
			i += n;
			continue;
		}
		(void)putc('?', out);
		i++;
	}
}

static void
qlist_puts_safe(FILE *out, const char *s)
{
	qlist_put_safe(out, s, strlen(s), 0);
}

static int
qlist_ent_cmp(const void *a, const void *b)
{
	const struct qlist_ent *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	if (c != 0)
		return c;
	return (int)x->dir - (int)y->dir;
}

/* qlist_scan - append the message names of one directory to vec */
static int
qlist_scan(const char *qdir, enum queue_dir d, struct qlist_vec *vec,
    const char *prog)
{
	char path[4096];
	struct dirent *de;
	DIR *dp;

	if (queue_path(path, sizeof(path), qdir, d, NULL) < 0) {
		fprintf(stderr, "%s: %s: path too long\n", prog, qdir);
		return -1;
	}
	if ((dp = opendir(path)) == NULL) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, path,
		    strerror(errno));
		return -1;
	}
	errno = 0;
	while ((de = readdir(dp)) != NULL) {
		if (!queue_id_ok(de->d_name))
			continue;	/* ., .., ID.tmp being written */
		if (vec->n == vec->cap) {
			vec->cap = vec->cap ? vec->cap * 2 : 64;
			vec->v = xreallocarray(vec->v, vec->cap,
			    sizeof(*vec->v));
		}
		memcpy(vec->v[vec->n].id, de->d_name, QUEUE_ID_LEN + 1);
		vec->v[vec->n].dir = d;
		vec->n++;
		errno = 0;
	}
	if (errno != 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", prog, path,
		    strerror(errno));
		(void)closedir(dp);
		return -1;
	}
	(void)closedir(dp);
	return 0;
}

/* qlist_open - open id in *dirp, or where it moved to; fd or -1 */
static int
qlist_open(const char *qdir, const char *id, enum queue_dir *dirp)
{
	char path[4096];
	size_t i;
	int fd;

	if (queue_path(path, sizeof(path), qdir, *dirp, id) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NOFOLLOW)) >= 0 || errno != ENOENT)
		return fd;
	/* moved by qmgr meanwhile: look once in the others */
	for (i = 0; i < QLIST_NDIRS; i++) {
		if (qlist_dirs[i] == *dirp)
			continue;
		if (queue_path(path, sizeof(path), qdir, qlist_dirs[i],
		    id) < 0)
			return -1;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
		    O_NOFOLLOW)) >= 0) {
			*dirp = qlist_dirs[i];
			return fd;
		}
	}
	return -1;
}

static bool
qlist_rcpt_is_listed(const struct queue_rcpt *r)
{
	return r->status == QUEUE_R_PENDING || r->status == QUEUE_R_DEFERRED;
}

/* reason of a listed recipient: NULL when it has none (not tried yet) */
static const char *
qlist_reason(const struct queue_rcpt *r)
{
	if (r->status != QUEUE_R_DEFERRED || r->reason == NULL ||
	    r->reason[0] == '\0')
		return NULL;
	return r->reason;
}

/* order: no reason first, then by reason text, then as received */
static int
qlist_rcpt_cmp(const void *a, const void *b, void *arg)
{
	const struct queue_env *env = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const char *ri = qlist_reason(&env->rcpt[i]);
	const char *rj = qlist_reason(&env->rcpt[j]);
	int c;

	if (ri == NULL && rj != NULL)
		return -1;
	if (ri != NULL && rj == NULL)
		return 1;
	if (ri != NULL && (c = strcmp(ri, rj)) != 0)
		return c;
	return i < j ? -1 : i > j;
}

/* qlist_entry - one message; adds its size to *total_r */
static void
qlist_entry(FILE *out, const struct queue_env *env, enum queue_dir d,
    uint64_t *total_r)
{
	char when[64];
	time_t t = (time_t)env->arrival;
	const char *reason, *last = NULL;
	struct tm tm;
	size_t *idx, n = 0, i;
	int mark = ' ';

	if (d == QUEUE_ACTIVE)
		mark = '*';
	else if (d == QUEUE_HOLD || env->held)
		mark = '!';
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
		(void)snprintf(when, sizeof(when), "%" PRId64, env->arrival);
	fprintf(out, "%s%c%8" PRIu64 " %-20.20s ", env->id, mark,
	    env->content_size, when);
	if (env->sender[0] == '\0')
		fputs("MAILER-DAEMON", out);
	else
		qlist_puts_safe(out, env->sender);
	putc('\n', out);

	idx = xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(*idx));
	for (i = 0; i < env->nrcpt; i++)
		if (qlist_rcpt_is_listed(&env->rcpt[i]))
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), qlist_rcpt_cmp, (void *)env);
	for (i = 0; i < n; i++) {
		reason = qlist_reason(&env->rcpt[idx[i]]);
		if (reason != NULL && (last == NULL ||
		    strcmp(reason, last) != 0)) {
			fprintf(out, "%*s(", QLIST_REASON_INDENT, "");
			qlist_puts_safe(out, reason);
			fputs(")\n", out);
		}
		last = reason;
		fprintf(out, "%*s", QLIST_RCPT_INDENT, "");
		qlist_puts_safe(out, env->rcpt[idx[i]].addr);
		putc('\n', out);
	}
	putc('\n', out);
	free(idx);
	*total_r += env->content_size;
}

int
qlist_print(FILE *out, const char *qdir, const char *prog)
{
	struct qlist_vec vec = { NULL, 0, 0 };
	struct queue_env *env;
	uint64_t total = 0;
	size_t i, count = 0;
	const char *why;
	bool is_corrupt;
	enum queue_dir d;
	int fd, rc = 0;

	for (i = 0; i < QLIST_NDIRS && rc == 0; i++)
		rc = qlist_scan(qdir, qlist_dirs[i], &vec, prog);
	if (rc < 0) {
		free(vec.v);
		return -1;
	}
	if (vec.n > 0)
		qsort(vec.v, vec.n, sizeof(*vec.v), qlist_ent_cmp);
	for (i = 0; i < vec.n; i++) {
		/* the same ID twice: it moved while we read the directories */
		if (i > 0 && strcmp(vec.v[i].id, vec.v[i - 1].id) == 0)
			continue;
		d = vec.v[i].dir;
		if ((fd = qlist_open(qdir, vec.v[i].id, &d)) < 0) {
			if (errno != ENOENT)
				fprintf(stderr, "%s: %s: cannot open: %s\n",
				    prog, vec.v[i].id, strerror(errno));
			continue;	/* delivered meanwhile */
		}
		env = queue_env_new();
		if (queue_read(fd, env, &why, &is_corrupt) < 0) {
			fprintf(stderr, "%s: %s: %s: %s\n", prog,
			    vec.v[i].id, is_corrupt ? "corrupt queue file" :
			    "cannot read", why);
		} else {
			if (count == 0)
				fputs("-Queue ID-   --Size-- "
				    "----Arrival Time---- "
				    "-Sender/Recipient-------\n", out);
			qlist_entry(out, env, d, &total);
			count++;
		}
		queue_env_free(&env);
		(void)close(fd);
	}
	free(vec.v);
	if (count == 0)
		fputs("Mail queue is empty\n", out);
	else
		fprintf(out, "-- %" PRIu64 " Kbytes in %zu Request%s.\n",
		    total / 1024, count, count == 1 ? "" : "s");
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(stderr, "%s: write error: %s\n", prog,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
qlist_locate(const char *qdir, const char *id, enum queue_dir *dir_r)
{
	static const enum queue_dir order[] = {
		QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
		QUEUE_CORRUPT,
	};
	char path[4096];
	struct stat st;
	size_t i;

	if (!queue_id_ok(id)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (queue_path(path, sizeof(path), qdir, order[i], id) < 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*dir_r = order[i];
			return 1;
		}
		if (errno != ENOENT)
			return -1;
	}
	return 0;
}
