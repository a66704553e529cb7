/*
 * queue - queue IDs, the queue file format and durable writes (see
 * queue.h for the format and the order of the durable steps)
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "smtp_cmd.h"
#include "strnum.h"

#define QUEUE_WBUF		(64 * 1024)
#define QUEUE_HEAD_GUESS	(16 * 1024)	/* first read of an envelope */
#define QUEUE_SIZE_DIGITS	13
/*
 * The envelope ends in "14:check=HHHHHHHH,26:content_size=DDDDDDDDDDDDD,"
 * then the end marker "0:,": from the end of the record, the digits of
 * content_size start 17 bytes back and the check sum 42 bytes back.
 */
#define QUEUE_SIZE_BACK		17
#define QUEUE_CHECK_BACK	42
#define QUEUE_SEAL_LEN		(QUEUE_CHECK_BACK - 4)	/* to the ",0:," */
#define QUEUE_REASON_MAX	1000

static const char queue_b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static const char *const queue_dirs[QUEUE_NDIRS] = {
	"incoming", "active", "deferred", "hold", "corrupt",
};

static const struct attr_limits queue_head_limits = {
	.max_size = QUEUE_HEAD_MAX,
	.max_count = 3 * QUEUE_RCPT_MAX + 64,
	.max_name = 32,
	.max_value = 64 * 1024,
};

static const struct attr_limits queue_tail_limits = {
	.max_size = 8 * 1024,
	.max_count = 16,
	.max_name = 32,
	.max_value = 4 * 1024,
};

const char *
queue_dir_name(enum queue_dir d)
{
	return (unsigned)d < QUEUE_NDIRS ? queue_dirs[d] : "?";
}

int
queue_id_ok(const char *s)
{
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (s[i] == '\0' || strchr(queue_b32, s[i]) == NULL)
			return 0;
	return s[i] == '\0';
}

int
queue_path(char *out, size_t outsz, const char *qdir, enum queue_dir d,
    const char *id)
{
	int n;

	if (id != NULL)
		n = snprintf(out, outsz, "%s/%s/%s", qdir, queue_dir_name(d),
		    id);
	else
		n = snprintf(out, outsz, "%s/%s", qdir, queue_dir_name(d));
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int
queue_dir_sync(const char *qdir, enum queue_dir d)
{
	char path[4096];

	if (queue_path(path, sizeof(path), qdir, d, NULL) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return file_sync_dir(path);
}

/* queue_id_make - ID from a time in microseconds and a suffix 0..31 */
static void
queue_id_make(char *id, uint64_t usec, unsigned suffix)
{
	int i;

	for (i = QUEUE_ID_LEN - 2; i >= 0; i--) {
		id[i] = queue_b32[usec & 31];
		usec >>= 5;
	}
	id[QUEUE_ID_LEN - 1] = queue_b32[suffix & 31];
	id[QUEUE_ID_LEN] = '\0';
}

struct queue_env *
queue_env_new(void)
{
	struct queue_env *env = xcalloc(1, sizeof(*env));

	env->sender = xstrdup("");
	return env;
}

void
queue_env_set(char **field, const char *s)
{
	free(*field);
	*field = s != NULL ? xstrdup(s) : NULL;
}

void
queue_env_free(struct queue_env **envp)
{
	struct queue_env *env = *envp;
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; i < env->nrcpt; i++) {
		free(env->rcpt[i].addr);
		free(env->rcpt[i].orcpt);
		free(env->rcpt[i].reason);
	}
	free(env->rcpt);
	free(env->sender);
	free(env->envid);
	free(env->client_name);
	free(env->client_addr);
	free(env->helo);
	free(env->proto);
	free(env->auth);
	free(env);
	*envp = NULL;
}

struct queue_rcpt *
queue_env_add_rcpt(struct queue_env *env, const char *addr,
    const char *orcpt, unsigned notify)
{
	struct queue_rcpt *rc;

	if (env->nrcpt == env->caprcpt) {
		env->caprcpt = env->caprcpt ? env->caprcpt * 2 : 8;
		env->rcpt = xreallocarray(env->rcpt, env->caprcpt,
		    sizeof(*env->rcpt));
	}
	rc = &env->rcpt[env->nrcpt++];
	memset(rc, 0, sizeof(*rc));
	rc->addr = xstrdup(addr);
	rc->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	rc->notify = notify;
	rc->status = QUEUE_R_PENDING;
	return rc;
}

const char *
queue_rstatus_name(enum queue_rstatus s)
{
	switch (s) {
	case QUEUE_R_PENDING:
		return "pending";
	case QUEUE_R_DEFERRED:
		return "deferred";
	case QUEUE_R_SENT:
		return "sent";
	case QUEUE_R_FAILED:
		return "failed";
	}
	return "?";
}

static int
queue_rstatus_parse(const char *s, enum queue_rstatus *st_r)
{
	if (strcmp(s, "sent") == 0)
		*st_r = QUEUE_R_SENT;
	else if (strcmp(s, "failed") == 0)
		*st_r = QUEUE_R_FAILED;
	else if (strcmp(s, "deferred") == 0)
		*st_r = QUEUE_R_DEFERRED;
	else
		return -1;
	return 0;
}

/* ---- writing ---- */

struct queue_writer {
	struct queue_env *env;
	char	 tmp[4096];
	char	 final[4096];
	int	 fd;
	struct buf out;
	uint64_t size;
	off_t	 size_off;	/* where the 13 digits of content_size are */
	uint32_t crc;		/* CRC-32C so far (envelope, content) */
	uint64_t flushed;	/* bytes written to fd so far */
	int	 err;		/* first write errno, 0 if none */
	bool	 sealed, committed;
	bool	 recycled;	/* a file from free/, written over */
};

static void
queue_io_reply(struct reply *r, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		reply_set(r, 452, "4.3.1", "Insufficient system storage");
	else
		reply_set(r, 451, "4.3.0", "Error: queue file write error");
}

static int
queue_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
queue_put_opt(struct buf *b, const char *name, const char *v)
{
	if (v != NULL)
		(void)attr_put_str(b, name, v);
}

/* queue_encode_env - the envelope record, content_size as 13 zeros */
static int
queue_encode_env(struct buf *b, const struct queue_env *env,
    size_t *size_off_r)
{
	size_t i;
	int rc = 0;

	rc |= attr_put_str(b, "v", "1");
	rc |= attr_put_str(b, "id", env->id);
	rc |= attr_put_uint(b, "arrival", (unsigned long long)env->arrival);
	rc |= attr_put_str(b, "sender", env->sender);
	if (env->body != SMTP_BODY_NONE)
		rc |= attr_put_uint(b, "body", (unsigned long long)env->body);
	if (env->smtputf8)
		rc |= attr_put_str(b, "smtputf8", "1");
	if (env->ret != SMTP_RET_NONE)
		rc |= attr_put_uint(b, "ret", (unsigned long long)env->ret);
	queue_put_opt(b, "envid", env->envid);
	queue_put_opt(b, "client_name", env->client_name);
	queue_put_opt(b, "client_addr", env->client_addr);
	queue_put_opt(b, "helo", env->helo);
	queue_put_opt(b, "proto", env->proto);
	queue_put_opt(b, "auth", env->auth);
	for (i = 0; i < env->nrcpt; i++) {
		rc |= attr_put_str(b, "rcpt", env->rcpt[i].addr);
		if (env->rcpt[i].orcpt != NULL)
			rc |= attr_put_str(b, "orcpt", env->rcpt[i].orcpt);
		if (env->rcpt[i].notify != 0)
			rc |= attr_put_uint(b, "notify", env->rcpt[i].notify);
	}
	/* both filled in place by the seal (see QUEUE_*_BACK) */
	rc |= attr_put(b, "check", "00000000", CRC32C_HEX);
	rc |= attr_put(b, "content_size", "0000000000000", QUEUE_SIZE_DIGITS);
	*size_off_r = b->len - 1 - QUEUE_SIZE_DIGITS;
	rc |= attr_end(b);
	return rc != 0 ? -1 : 0;
}

/*
 * Spent queue files are recycled (queue.h): qmgr renames a finished
 * file into free/ instead of unlinking it (cut to QUEUE_RECYCLE_KEEP
 * bytes), and a writer takes one from there and writes over it,
 * instead of creating a new inode; its blocks are reused too.  The cache of names
 * is per process, guarded by a mutex (local writes from threads).
 */
/* guards the cache below and ID creation: writers may be threads */
static pthread_mutex_t queue_new_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	char	 names[QUEUE_FREE_BATCH][QUEUE_ID_LEN + 1];
	int	 n;
	int64_t	 next_scan;	/* ms: do not rescan an empty free/ often */
} qfree;

static int64_t
queue_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * queue_free_shuffle - every writer process reads free/ in the same
 * order: without a shuffle they would all go for the same names, and
 * half the renames would fail (ENOENT: taken by another process)
 */
static void
queue_free_shuffle(void)
{
	static uint64_t x;
	char t[QUEUE_ID_LEN + 1];
	int i, j;

	if (x == 0)
		x = ((uint64_t)getpid() << 32) ^ (uint64_t)queue_now_ms() ^
		    0x9e3779b97f4a7c15ULL;
	for (i = qfree.n - 1; i > 0; i--) {
		x ^= x << 13;	/* xorshift64: enough to spread the picks */
		x ^= x >> 7;
		x ^= x << 17;
		j = (int)(x % (uint64_t)(i + 1));
		memcpy(t, qfree.names[i], sizeof(t));
		memcpy(qfree.names[i], qfree.names[j], sizeof(t));
		memcpy(qfree.names[j], t, sizeof(t));
	}
}

static void
queue_free_scan(const char *qdir)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	qfree.next_scan = queue_now_ms() + 50;
	if (snprintf(path, sizeof(path), "%s/%s", qdir, QUEUE_FREE_DIR) >=
	    (int)sizeof(path) || (d = opendir(path)) == NULL)
		return;
	while (qfree.n < QUEUE_FREE_BATCH && (de = readdir(d)) != NULL)
		if (queue_id_ok(de->d_name))
			memcpy(qfree.names[qfree.n++], de->d_name,
			    QUEUE_ID_LEN + 1);
	(void)closedir(d);
	queue_free_shuffle();
	if (qfree.n > 0)
		qfree.next_scan = 0;
}

/* queue_take_free - a recycled file renamed to tmp, opened, or -1 */
static int
queue_take_free(const char *qdir, const char *tmp)
{
	char path[4096];
	int fd;

	for (;;) {
		if (qfree.n == 0) {
			if (queue_now_ms() < qfree.next_scan)
				return -1;
			queue_free_scan(qdir);
			if (qfree.n == 0)
				return -1;
		}
		qfree.n--;
		if (snprintf(path, sizeof(path), "%s/%s/%s", qdir,
		    QUEUE_FREE_DIR, qfree.names[qfree.n]) >= (int)sizeof(path))
			return -1;
		/* NOREPLACE: never clobber another writer's ID.tmp */
		if (renameat2(AT_FDCWD, path, AT_FDCWD, tmp,
		    RENAME_NOREPLACE) < 0)
			continue;	/* taken by another process */
		fd = open(tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		(void)unlink(tmp);
	}
}

int
queue_recycle(const char *qdir, const char *path)
{
	static int64_t next_count;
	static unsigned count;
	char to[4096];
	const char *base = strrchr(path, '/');
	struct dirent *de;
	struct stat st;
	DIR *d;

	base = base != NULL ? base + 1 : path;
	/*
	 * Writers take files we do not see, so the count only grows between
	 * recounts: recount every second, and at once (at most every 50 ms)
	 * when it says free/ is full, else a busy queue that recycles more
	 * than QUEUE_FREE_MAX files a second would unlink the rest while
	 * free/ is nearly empty.
	 */
	if (queue_now_ms() >= next_count || (count >= QUEUE_FREE_MAX &&
	    queue_now_ms() >= next_count - 950)) {
		count = 0;
		if (snprintf(to, sizeof(to), "%s/%s", qdir, QUEUE_FREE_DIR) <
		    (int)sizeof(to) && (d = opendir(to)) != NULL) {
			while ((de = readdir(d)) != NULL)
				count += de->d_name[0] != '.';
			(void)closedir(d);
		}
		next_count = queue_now_ms() + 1000;
	}
	/*
	 * Kept with its blocks (the next message is written over them), cut
	 * to QUEUE_RECYCLE_KEEP bytes so that free/ never holds more than
	 * QUEUE_FREE_MAX times that.
	 */
	if (count < QUEUE_FREE_MAX && queue_id_ok(base) &&
	    snprintf(to, sizeof(to), "%s/%s/%s", qdir, QUEUE_FREE_DIR, base) <
	    (int)sizeof(to) && stat(path, &st) == 0 &&
	    (st.st_size <= QUEUE_RECYCLE_KEEP ||
	    truncate(path, QUEUE_RECYCLE_KEEP) == 0) &&
	    rename(path, to) == 0) {
		count++;
		return 0;
	}
	return unlink(path);
}

/*
 * Queue IDs are unique across every process that writes to the queue
 * (smtpd processes, qmgr and local queueing notices): their time part
 * comes from one counter shared through a small file mapped by every
 * writer, incoming/.idseq, which holds the last microsecond handed out.
 * Each new ID takes max(now, last + 1) with an atomic compare-and-swap,
 * so IDs strictly increase across processes and two writers never build
 * the same one, however long either is descheduled between building the
 * ID and creating its file.  (Per-process counters did not suffice: two
 * smtpd processes could build one ID in the same microsecond; when one
 * was preempted until the other had committed its file, O_EXCL on the
 * .tmp name no longer saw the clash and the second rename replaced the
 * first message.)  Without the file (it cannot be created or mapped)
 * the counter is per process and a warning is logged once.
 */
static struct {
	uint64_t *seq;		/* the mapped counter, or NULL */
	char	 qdir[1024];	/* the queue directory it belongs to */
	uint64_t local;		/* fallback: per process */
	bool	 warned;
} qseq;

static void
queue_seq_map(const char *qdir)
{
	char path[1100], dir[1100];
	struct stat st, dst;
	void *p;
	int fd;

	if (qseq.seq != NULL) {
		if (strcmp(qseq.qdir, qdir) == 0)
			return;
		(void)munmap(qseq.seq, sizeof(*qseq.seq));
		qseq.seq = NULL;
	}
	(void)snprintf(qseq.qdir, sizeof(qseq.qdir), "%s", qdir);
	if (snprintf(dir, sizeof(dir), "%s/%s", qdir,
	    queue_dirs[QUEUE_INCOMING]) >= (int)sizeof(dir) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, QUEUE_SEQ_FILE) >=
	    (int)sizeof(path))
		goto fail;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto fail;
	/* made by root (a tool): give it to the queue's owner */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (geteuid() == 0 && stat(dir, &dst) == 0 &&
	    (st.st_uid != dst.st_uid || st.st_gid != dst.st_gid) &&
	    fchown(fd, dst.st_uid, dst.st_gid) < 0) ||
	    (st.st_size < (off_t)sizeof(uint64_t) &&
	    ftruncate(fd, sizeof(uint64_t)) < 0)) {
		(void)close(fd);
		goto fail;
	}
	p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	(void)close(fd);
	if (p == MAP_FAILED)
		goto fail;
	qseq.seq = p;
	return;
fail:
	if (!qseq.warned)
		log_warn("cannot map %s/%s/%s (%s): queue IDs are unique "
		    "within this process only", qdir,
		    queue_dirs[QUEUE_INCOMING], QUEUE_SEQ_FILE,
		    strerror(errno));
	qseq.warned = true;
}

/* queue_seq_next - the next microsecond time for an ID (see above) */
static uint64_t
queue_seq_next(const char *qdir)
{
	struct timeval tv;
	uint64_t now, old, next;

	(void)gettimeofday(&tv, NULL);
	now = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	queue_seq_map(qdir);
	if (qseq.seq == NULL) {
		next = now > qseq.local ? now : qseq.local + 1;
		qseq.local = next;
		return next;
	}
	old = __atomic_load_n(qseq.seq, __ATOMIC_ACQUIRE);
	do
		next = now > old ? now : old + 1;
	while (!__atomic_compare_exchange_n(qseq.seq, &old, next, false,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	return next;
}

int
queue_id_new(const char *qdir, char *id, time_t *arrival_r)
{
	uint64_t usec;

	(void)pthread_mutex_lock(&queue_new_lock);
	usec = queue_seq_next(qdir);
	(void)pthread_mutex_unlock(&queue_new_lock);
	queue_id_make(id, usec, 0);
	if (arrival_r != NULL)
		*arrival_r = (time_t)(usec / 1000000);
	return 0;
}

struct queue_writer *
queue_writer_new(const char *qdir, struct queue_env *env, struct reply *r)
{
	struct queue_writer *w = xcalloc(1, sizeof(*w));
	static unsigned counter;	/* atomic: local writes from threads */
	struct timeval tv = { 0, 0 };
	uint64_t usec;
	size_t off;
	unsigned i;

	w->fd = -1;
	w->env = env;
	buf_init(&w->out, QUEUE_HEAD_MAX + QUEUE_WBUF);
	if (env->nrcpt == 0 || env->nrcpt > QUEUE_RCPT_MAX)
		log_panic("queue_writer_new: %zu recipients", env->nrcpt);
	(void)pthread_mutex_lock(&queue_new_lock);
	for (i = 0; i < 64 && w->fd < 0; i++) {
		usec = queue_seq_next(qdir);
		tv.tv_sec = (time_t)(usec / 1000000);
		/* the suffix only matters without the shared counter */
		queue_id_make(env->id, usec, qseq.seq != NULL ? 0 :
		    (unsigned)getpid() +
		    __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
		if (queue_path(w->final, sizeof(w->final), qdir,
		    QUEUE_INCOMING, env->id) < 0 ||
		    snprintf(w->tmp, sizeof(w->tmp), "%s.tmp", w->final) >=
		    (int)sizeof(w->tmp)) {
			log_err("queue directory name too long: %s", qdir);
			(void)pthread_mutex_unlock(&queue_new_lock);
			goto fail;
		}
		w->fd = queue_take_free(qdir, w->tmp);
		w->recycled = w->fd >= 0;
		if (w->fd < 0)
			w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL |
			    O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST) {
			log_err("%s: create %s: %s", env->id, w->tmp,
			    strerror(errno));
			queue_io_reply(r, errno);
			(void)pthread_mutex_unlock(&queue_new_lock);
			goto fail_quiet;
		}
	}
	(void)pthread_mutex_unlock(&queue_new_lock);
	if (w->fd < 0) {
		log_err("cannot find a free queue ID in %s", qdir);
		goto fail;
	}
	if (env->arrival == 0)
		env->arrival = tv.tv_sec;
	if (queue_encode_env(&w->out, env, &off) < 0) {
		log_err("%s: envelope too large", env->id);
		reply_set(r, 552, "5.3.4", "Error: envelope too large");
		goto fail_quiet;
	}
	w->size_off = (off_t)off;
	w->crc = crc32c_update(crc32c_init(), w->out.data, w->out.len);
	/*
	 * Held until the writer is done: qmgr's scan leaves a locked
	 * ID.tmp alone and may recover an unlocked, sealed one (queue.h).
	 * A scan holds it for a moment at most: wait for that.
	 */
	while (flock(w->fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			log_err("%s: lock %s: %s", env->id, w->tmp,
			    strerror(errno));
			goto fail;
		}
	}
	return w;
fail:
	reply_set(r, 451, "4.3.0", "Error: queue file write error");
fail_quiet:
	queue_writer_free(&w);
	return NULL;
}

static int
queue_writer_flush(struct queue_writer *w)
{
	if (w->err != 0)
		return -1;
	if (w->out.len > 0 && queue_write_all(w->fd, w->out.data,
	    w->out.len) < 0) {
		w->err = errno;
		log_err("%s: write %s: %s", w->env->id, w->tmp,
		    strerror(errno));
		return -1;
	}
	w->flushed += w->out.len;
	buf_reset(&w->out);
	return 0;
}

int
queue_writer_write(struct queue_writer *w, const void *p, size_t n)
{
	if (w->err != 0 || w->sealed)
		return -1;
	w->size += n;
	w->crc = crc32c_update(w->crc, p, n);
	if (w->out.len + n > QUEUE_WBUF) {
		if (queue_writer_flush(w) < 0)
			return -1;
		if (n >= QUEUE_WBUF) {
			if (queue_write_all(w->fd, p, n) < 0) {
				w->err = errno;
				log_err("%s: write %s: %s", w->env->id,
				    w->tmp, strerror(errno));
				return -1;
			}
			w->flushed += n;
			return 0;
		}
	}
	(void)buf_append(&w->out, p, n);
	return 0;
}

int
queue_writer_fd(const struct queue_writer *w)
{
	return w->fd;
}

uint64_t
queue_writer_size(const struct queue_writer *w)
{
	return w->size;
}

int
queue_writer_seal(struct queue_writer *w, struct reply *r)
{
	char seal[QUEUE_SEAL_LEN + 1];
	uint64_t at;
	bool in_buf;

	if (w->err != 0) {
		queue_io_reply(r, w->err);
		return -1;
	}
	/* "HHHHHHHH,26:content_size=DDDDDDDDDDDDD": one piece, in place */
	(void)snprintf(seal, sizeof(seal), "%08x,26:content_size=%0*llu",
	    (unsigned)crc32c_final(w->crc), QUEUE_SIZE_DIGITS,
	    (unsigned long long)w->size);
	at = (uint64_t)w->size_off - (QUEUE_CHECK_BACK - QUEUE_SIZE_BACK);
	/* still in the buffer (a small message): it goes out with the rest */
	in_buf = at >= w->flushed;
	if (in_buf)
		memcpy(w->out.data + (at - w->flushed), seal, QUEUE_SEAL_LEN);
	if (queue_writer_flush(w) < 0) {
		queue_io_reply(r, w->err);
		return -1;
	}
	if (!in_buf && pwrite(w->fd, seal, QUEUE_SEAL_LEN, (off_t)at) !=
	    QUEUE_SEAL_LEN) {
		w->err = errno ? errno : EIO;
		log_err("%s: write %s: %s", w->env->id, w->tmp,
		    strerror(w->err));
		queue_io_reply(r, w->err);
		return -1;
	}
	/* a recycled file: what the last message left beyond ours goes */
	if (w->recycled && ftruncate(w->fd, (off_t)w->flushed) < 0) {
		w->err = errno ? errno : EIO;
		log_err("%s: truncate %s: %s", w->env->id, w->tmp,
		    strerror(w->err));
		queue_io_reply(r, w->err);
		return -1;
	}
	w->sealed = true;
	return 0;
}

int
queue_writer_sync(struct queue_writer *w)
{
	if (!w->sealed || w->err != 0)
		return -1;
	if (fsync(w->fd) < 0) {
		w->err = errno;
		return -1;
	}
	return 0;
}

int
queue_writer_commit(struct queue_writer *w, struct reply *r)
{
	if (!w->sealed || w->err != 0) {
		if (w->err != 0)
			log_err("%s: fsync %s: %s", w->env->id, w->tmp,
			    strerror(w->err));
		queue_io_reply(r, w->err);
		return -1;
	}
	if (rename(w->tmp, w->final) < 0) {
		log_err("%s: rename %s: %s", w->env->id, w->tmp,
		    strerror(errno));
		queue_io_reply(r, errno);
		return -1;
	}
	w->committed = true;
	(void)close(w->fd);
	w->fd = -1;
	return 0;
}

void
queue_writer_free(struct queue_writer **wp)
{
	struct queue_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->fd >= 0) {
		(void)close(w->fd);
		if (!w->committed)
			(void)unlink(w->tmp);
	}
	buf_deinit(&w->out);
	free(w);
	*wp = NULL;
}

/* ---- reading ---- */

static int
queue_get_uint(const struct attr_field *f, unsigned long long max,
    unsigned long long *v_r)
{
	if (memchr(f->value, '\0', f->value_len) != NULL)
		return -1;
	return str_to_uint(f->value, 0, max, v_r);
}

/* queue_hex32 - exactly 8 lower-case hex digits */
static int
queue_hex32(const char *s, size_t len, uint32_t *v_r)
{
	uint32_t v = 0;
	size_t i;

	if (len != CRC32C_HEX)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			v = v << 4 | (uint32_t)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = v << 4 | (uint32_t)(s[i] - 'a' + 10);
		else
			return -1;
	}
	*v_r = v;
	return 0;
}

static int
queue_apply_env(const struct attr_rec *rec, struct queue_env *env,
    const char **why_r)
{
	const struct attr_field *f;
	struct queue_rcpt *last = NULL;
	unsigned long long v;
	size_t i, n = attr_count(rec);
	bool have_sender = false, have_size = false;

	for (i = 0; i < n; i++) {
		f = attr_at(rec, i);
		if (memchr(f->value, '\0', f->value_len) != NULL) {
			*why_r = "NUL in envelope value";
			return -1;
		}
		if (i == 0) {
			if (strcmp(f->name, "v") != 0 ||
			    strcmp(f->value, "1") != 0) {
				*why_r = "unknown queue file version";
				return -1;
			}
		} else if (have_size) {
			*why_r = "attribute after content_size";
			return -1;
		} else if (strcmp(f->name, "id") == 0) {
			if (!queue_id_ok(f->value)) {
				*why_r = "bad queue ID";
				return -1;
			}
			memcpy(env->id, f->value, QUEUE_ID_LEN + 1);
		} else if (strcmp(f->name, "arrival") == 0) {
			if (queue_get_uint(f, INT64_MAX, &v) < 0)
				goto bad;
			env->arrival = (int64_t)v;
		} else if (strcmp(f->name, "sender") == 0) {
			queue_env_set(&env->sender, f->value);
			have_sender = true;
		} else if (strcmp(f->name, "body") == 0) {
			if (queue_get_uint(f, SMTP_BODY_BINARYMIME, &v) < 0)
				goto bad;
			env->body = (int)v;
		} else if (strcmp(f->name, "smtputf8") == 0) {
			env->smtputf8 = true;
		} else if (strcmp(f->name, "ret") == 0) {
			if (queue_get_uint(f, SMTP_RET_HDRS, &v) < 0)
				goto bad;
			env->ret = (int)v;
		} else if (strcmp(f->name, "envid") == 0) {
			queue_env_set(&env->envid, f->value);
		} else if (strcmp(f->name, "client_name") == 0) {
			queue_env_set(&env->client_name, f->value);
		} else if (strcmp(f->name, "client_addr") == 0) {
			queue_env_set(&env->client_addr, f->value);
		} else if (strcmp(f->name, "helo") == 0) {
			queue_env_set(&env->helo, f->value);
		} else if (strcmp(f->name, "proto") == 0) {
			queue_env_set(&env->proto, f->value);
		} else if (strcmp(f->name, "auth") == 0) {
			queue_env_set(&env->auth, f->value);
		} else if (strcmp(f->name, "rcpt") == 0) {
			if (env->nrcpt >= QUEUE_RCPT_MAX) {
				*why_r = "too many recipients";
				return -1;
			}
			last = queue_env_add_rcpt(env, f->value, NULL, 0);
		} else if (strcmp(f->name, "orcpt") == 0) {
			if (last == NULL || last->orcpt != NULL)
				goto bad;
			last->orcpt = xstrdup(f->value);
		} else if (strcmp(f->name, "notify") == 0) {
			if (last == NULL || last->notify != 0 ||
			    queue_get_uint(f, 15, &v) < 0 || v == 0)
				goto bad;
			last->notify = (unsigned)v;
		} else if (strcmp(f->name, "check") == 0) {
			/* fixed place: the seal writes it with content_size */
			if (env->has_check || i + 1 >= n ||
			    strcmp(attr_at(rec, i + 1)->name,
			    "content_size") != 0 ||
			    queue_hex32(f->value, f->value_len,
			    &env->check) < 0)
				goto bad;
			env->has_check = true;
		} else if (strcmp(f->name, "content_size") == 0) {
			if (f->value_len != QUEUE_SIZE_DIGITS ||
			    queue_get_uint(f, UINT64_MAX, &v) < 0)
				goto bad;
			env->content_size = v;
			have_size = true;
		} else {
			/* unknown names are an error: no silent data loss */
			*why_r = "unknown envelope attribute";
			return -1;
		}
	}
	if (env->id[0] == '\0' || !have_sender || !have_size ||
	    env->nrcpt == 0) {
		*why_r = "incomplete envelope";
		return -1;
	}
	return 0;
bad:
	*why_r = "bad envelope attribute";
	return -1;
}

static int
queue_apply_status(const struct attr_rec *rec, struct queue_env *env,
    const char **why_r)
{
	const char *idx = attr_get_str(rec, "rcpt_index");
	const char *st = attr_get_str(rec, "status");
	const char *held = attr_get_str(rec, "held");
	const char *relay = attr_get_str(rec, "relay");
	const char *notified = attr_get_str(rec, "notified");
	unsigned long long i, t = 0, next = 0;
	enum queue_rstatus s;
	struct queue_rcpt *rc;
	const char *dsn, *reason;

	if (held != NULL && idx == NULL) {
		if (strcmp(held, "1") != 0 && strcmp(held, "0") != 0)
			goto bad;
		env->held = held[0] == '1';
		return 0;
	}
	if (notified != NULL && idx != NULL && st == NULL) {
		if (strcmp(notified, "1") != 0 ||
		    str_to_uint(idx, 0, env->nrcpt - 1, &i) < 0)
			goto bad;
		env->rcpt[i].notified = true;
		return 0;
	}
	if (idx == NULL || st == NULL ||
	    str_to_uint(idx, 0, env->nrcpt - 1, &i) < 0 ||
	    queue_rstatus_parse(st, &s) < 0 ||
	    attr_get_uint(rec, "time", 0, INT64_MAX, &t) < 0 ||
	    attr_get_uint(rec, "next_try", 0, INT64_MAX, &next) < 0 ||
	    (relay != NULL && strcmp(relay, "relayed") != 0 &&
	    strcmp(relay, "passed") != 0))
		goto bad;
	rc = &env->rcpt[i];
	/* a final status never goes back (a repeated delivery is fine) */
	if (rc->status == QUEUE_R_SENT || rc->status == QUEUE_R_FAILED)
		return 0;
	dsn = attr_get_str(rec, "dsn");
	reason = attr_get_str(rec, "reason");
	rc->status = s;
	(void)snprintf(rc->dsn, sizeof(rc->dsn), "%s", dsn ? dsn : "");
	queue_env_set(&rc->reason, reason);
	rc->time = (int64_t)t;
	rc->next_try = (int64_t)next;
	rc->relay = relay == NULL ? QUEUE_RELAY_NONE : relay[0] == 'p' ?
	    QUEUE_RELAY_PASSED : QUEUE_RELAY_RELAYED;
	return 0;
bad:
	*why_r = "bad status record";
	return -1;
}

/* queue_parse_head - the envelope record; *used_r = its length; 0, -1
 * bad, -2 cut short by len */
static int
queue_parse_head(const void *data, size_t len, struct queue_env *env,
    size_t *used_r, const char **why_r)
{
	struct attr_rec *rec = attr_rec_new();
	int rc;

	rc = attr_decode(data, len, &queue_head_limits, rec, used_r, why_r);
	if (rc == 0)
		*why_r = "truncated envelope";
	if (rc == 1)
		rc = queue_apply_env(rec, env, why_r) < 0 ? -1 : 1;
	attr_rec_free(&rec);
	/* -2: the record goes on past len (env untouched) */
	return rc == 1 ? 0 : rc == 0 ? -2 : -1;
}

/* queue_parse_tail - status records; env->good_end advanced by each */
static int
queue_parse_tail(const unsigned char *data, size_t len,
    struct queue_env *env, const char **why_r)
{
	struct attr_rec *rec = attr_rec_new();
	size_t off = 0, used;
	int rc = 0;

	while (off < len) {
		rc = attr_decode(data + off, len - off, &queue_tail_limits,
		    rec, &used, why_r);
		if (rc == 0)
			break;		/* torn last append: ignore it */
		if (rc < 0 || queue_apply_status(rec, env, why_r) < 0) {
			rc = -1;
			break;
		}
		off += used;
		env->good_end += used;
		rc = 0;
	}
	attr_rec_free(&rec);
	return rc;
}

int
queue_parse(const void *data, size_t len, struct queue_env *env,
    const char **why_r)
{
	size_t used;

	if (queue_parse_head(data, len, env, &used, why_r) < 0)
		return -1;
	env->content_offset = used;
	if (env->content_size > len - used) {
		*why_r = "truncated content";
		return -1;
	}
	env->good_end = used + env->content_size;
	return queue_parse_tail((const unsigned char *)data + env->good_end,
	    len - env->good_end, env, why_r);
}

static int
queue_pread_all(int fd, void *p, size_t n, off_t off)
{
	ssize_t r;
	char *c = p;

	while (n > 0) {
		r = pread(fd, c, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

int
queue_read(int fd, struct queue_env *env, const char **why_r,
    bool *is_corrupt_r)
{
	struct stat st;
	size_t headlen, taillen, used;
	uint64_t tail_off;
	char *buf;
	int rc;

	*is_corrupt_r = false;
	if (fstat(fd, &st) < 0) {
		*why_r = strerror(errno);
		return -1;
	}
	/*
	 * The envelope is nearly always small: read QUEUE_HEAD_GUESS bytes
	 * first, not the whole content behind it (qmgr reads every file),
	 * and the most the envelope may take only when that was too short.
	 */
	headlen = (size_t)st.st_size < QUEUE_HEAD_GUESS ? (size_t)st.st_size :
	    QUEUE_HEAD_GUESS;
	for (;;) {
		buf = xmalloc(headlen + 1);
		if (queue_pread_all(fd, buf, headlen, 0) < 0) {
			*why_r = "read error";
			free(buf);
			return -1;
		}
		rc = queue_parse_head(buf, headlen, env, &used, why_r);
		free(buf);
		if (rc != -2 || headlen == QUEUE_HEAD_MAX ||
		    headlen == (size_t)st.st_size)
			break;
		headlen = (size_t)st.st_size < QUEUE_HEAD_MAX ?
		    (size_t)st.st_size : QUEUE_HEAD_MAX;
	}
	if (rc < 0) {
		*is_corrupt_r = true;
		return -1;
	}
	env->content_offset = used;
	if (env->content_size > (uint64_t)st.st_size - used) {
		*why_r = "truncated content";
		*is_corrupt_r = true;
		return -1;
	}
	tail_off = used + env->content_size;
	env->good_end = tail_off;
	taillen = (size_t)((uint64_t)st.st_size - tail_off);
	if (taillen > QUEUE_TAIL_MAX) {
		*why_r = "too many status records";
		*is_corrupt_r = true;
		return -1;
	}
	if (taillen == 0)
		return 0;
	buf = xmalloc(taillen);
	if (queue_pread_all(fd, buf, taillen, (off_t)tail_off) < 0) {
		*why_r = "read error";
		free(buf);
		return -1;
	}
	rc = queue_parse_tail((unsigned char *)buf, taillen, env, why_r);
	free(buf);
	if (rc < 0)
		*is_corrupt_r = true;
	return rc;
}

/* queue_zero_range - set buf's bytes of file range [from, to) to '0' */
static void
queue_zero_range(unsigned char *buf, uint64_t off, size_t n, uint64_t from,
    uint64_t to)
{
	uint64_t a = from > off ? from : off;
	uint64_t b = to < off + n ? to : off + n;

	if (a < b)
		memset(buf + (a - off), '0', (size_t)(b - a));
}

int
queue_verify(int fd, const struct queue_env *env, const char **why_r)
{
	uint64_t end = env->content_offset + env->content_size, off = 0;
	uint64_t check_at, size_at;
	unsigned char *buf;
	size_t n;
	uint32_t c = crc32c_init();

	if (!env->has_check)
		return 0;	/* written before check sums: nothing to see */
	if (env->content_offset < QUEUE_CHECK_BACK) {
		*why_r = "bad envelope";
		return -1;
	}
	/* the sum was taken with both fields still zeros */
	check_at = env->content_offset - QUEUE_CHECK_BACK;
	size_at = env->content_offset - QUEUE_SIZE_BACK;
	buf = xmalloc(QUEUE_WBUF);
	while (off < end) {
		n = end - off < QUEUE_WBUF ? (size_t)(end - off) : QUEUE_WBUF;
		if (queue_pread_all(fd, buf, n, (off_t)off) < 0) {
			free(buf);
			*why_r = "read error";
			return -1;
		}
		queue_zero_range(buf, off, n, check_at, check_at + CRC32C_HEX);
		queue_zero_range(buf, off, n, size_at,
		    size_at + QUEUE_SIZE_DIGITS);
		c = crc32c_update(c, buf, n);
		off += n;
	}
	free(buf);
	if (crc32c_final(c) != env->check) {
		*why_r = "check sum mismatch";
		return -1;
	}
	return 0;
}

int
queue_tmp_id(const char *name, char id[QUEUE_ID_LEN + 1])
{
	if (strlen(name) != QUEUE_ID_LEN + 4 ||
	    strcmp(name + QUEUE_ID_LEN, ".tmp") != 0)
		return 0;
	memcpy(id, name, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	return queue_id_ok(id);
}

int
queue_tmp_recover(int dirfd, const char *name, const char **why_r,
    bool *is_busy_r)
{
	char id[QUEUE_ID_LEN + 1];
	struct queue_env *env;
	bool corrupt;
	int fd, rc = 0, saved;

	*is_busy_r = false;
	if (!queue_tmp_id(name, id)) {
		*why_r = "not a temporary queue file name";
		return 0;
	}
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		saved = errno;
		(void)close(fd);
		if (saved == EWOULDBLOCK) {
			*is_busy_r = true;
			*why_r = "a writer holds it";
			return 0;
		}
		errno = saved;
		return -1;
	}
	env = queue_env_new();
	if (queue_read(fd, env, why_r, &corrupt) < 0)
		;	/* unsealed, or old bytes of a recycled file */
	else if (strcmp(env->id, id) != 0)
		*why_r = "the envelope is another message's";
	else if (!env->has_check)
		*why_r = "no check sum";
	else if (queue_verify(fd, env, why_r) == 0) {
		/* whole: it gets its name; NOREPLACE, as everywhere */
		if (renameat2(dirfd, name, dirfd, id, RENAME_NOREPLACE) < 0 ||
		    fsync(dirfd) < 0)
			rc = -1;
		else
			rc = 1;
	}
	saved = errno;
	queue_env_free(&env);
	(void)close(fd);	/* the lock goes with it */
	errno = saved;
	return rc;
}

/* queue_append - write rec at good_end (cutting a torn tail), fdatasync */
static int
queue_append(int fd, struct queue_env *env, const struct buf *rec)
{
	struct stat st;
	ssize_t w;
	size_t done = 0;

	if (fstat(fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size != env->good_end &&
	    ftruncate(fd, (off_t)env->good_end) < 0)
		return -1;
	while (done < rec->len) {
		w = pwrite(fd, rec->data + done, rec->len - done,
		    (off_t)(env->good_end + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	if (fdatasync(fd) < 0)
		return -1;
	env->good_end += rec->len;
	return 0;
}

int
queue_status_append(int fd, struct queue_env *env, size_t idx,
    enum queue_rstatus s, const char *dsn, const char *reason,
    int64_t next_try)
{
	struct queue_rcpt *rc;
	struct buf b;
	char cut[QUEUE_REASON_MAX + 1];
	int64_t now = (int64_t)time(NULL);
	int ret;

	if (idx >= env->nrcpt || s == QUEUE_R_PENDING)
		log_panic("queue_status_append: bad index or status");
	(void)snprintf(cut, sizeof(cut), "%s", reason != NULL ? reason : "");
	buf_init(&b, queue_tail_limits.max_size);
	(void)attr_put_uint(&b, "rcpt_index", idx);
	(void)attr_put_str(&b, "status", queue_rstatus_name(s));
	(void)attr_put_str(&b, "dsn", dsn != NULL ? dsn : "");
	(void)attr_put_str(&b, "reason", cut);
	(void)attr_put_uint(&b, "time", (unsigned long long)now);
	(void)attr_put_uint(&b, "next_try", (unsigned long long)
	    (next_try > 0 ? next_try : 0));
	if (s == QUEUE_R_SENT && env->rcpt[idx].relay != QUEUE_RELAY_NONE)
		(void)attr_put_str(&b, "relay", env->rcpt[idx].relay ==
		    QUEUE_RELAY_PASSED ? "passed" : "relayed");
	(void)attr_end(&b);
	ret = queue_append(fd, env, &b);
	buf_deinit(&b);
	if (ret < 0)
		return -1;
	rc = &env->rcpt[idx];
	if (rc->status != QUEUE_R_SENT && rc->status != QUEUE_R_FAILED) {
		rc->status = s;
		(void)snprintf(rc->dsn, sizeof(rc->dsn), "%s",
		    dsn != NULL ? dsn : "");
		queue_env_set(&rc->reason, cut);
		rc->time = now;
		rc->next_try = next_try > 0 ? next_try : 0;
	}
	return 0;
}

int
queue_hold_append(int fd, struct queue_env *env, bool held)
{
	struct buf b;
	int ret;

	buf_init(&b, 256);
	(void)attr_put_str(&b, "held", held ? "1" : "0");
	(void)attr_end(&b);
	ret = queue_append(fd, env, &b);
	buf_deinit(&b);
	if (ret == 0)
		env->held = held;
	return ret;
}

int
queue_notified_append(int fd, struct queue_env *env, size_t idx)
{
	struct buf b;
	int ret;

	if (idx >= env->nrcpt)
		log_panic("queue_notified_append: bad index");
	buf_init(&b, 256);
	(void)attr_put_uint(&b, "rcpt_index", idx);
	(void)attr_put_str(&b, "notified", "1");
	(void)attr_end(&b);
	ret = queue_append(fd, env, &b);
	buf_deinit(&b);
	if (ret == 0)
		env->rcpt[idx].notified = true;
	return ret;
}

int
queue_deliver_req(const struct attr_rec *rec, size_t max, const char **id_r,
    const char **path_r, size_t **idx_r, size_t *n_r, const char **why_r)
{
	const char *id = attr_get_str(rec, "id");
	const char *path = attr_get_str(rec, "path");
	const struct attr_field *f;
	unsigned long long v;
	size_t i, n = 0, *idx;

	if (id == NULL || !queue_id_ok(id)) {
		*why_r = "bad or missing id=";
		return -1;
	}
	if (path == NULL || !queue_rel_path_ok(path, id)) {
		*why_r = "bad or missing path=";
		return -1;
	}
	for (i = 0; (f = attr_at(rec, i)) != NULL; i++)
		n += strcmp(f->name, "rcpt_index") == 0;
	if (n == 0 || n > max) {
		*why_r = n == 0 ? "no rcpt_index=" : "too many rcpt_index=";
		return -1;
	}
	idx = xcalloc(n, sizeof(*idx));
	for (n = 0, i = 0; (f = attr_at(rec, i)) != NULL; i++) {
		if (strcmp(f->name, "rcpt_index") != 0)
			continue;
		if (memchr(f->value, '\0', f->value_len) != NULL ||
		    str_to_uint(f->value, 0, QUEUE_RCPT_MAX - 1, &v) < 0) {
			free(idx);
			*why_r = "bad rcpt_index=";
			return -1;
		}
		idx[n++] = (size_t)v;
	}
	*id_r = id;
	*path_r = path;
	*idx_r = idx;
	*n_r = n;
	return 0;
}

int
queue_rel_path_ok(const char *path, const char *id)
{
	const char *slash = strchr(path, '/');
	size_t dlen;
	int d;

	if (slash == NULL || !queue_id_ok(id) || strcmp(slash + 1, id) != 0)
		return 0;
	dlen = (size_t)(slash - path);
	for (d = 0; d < QUEUE_NDIRS; d++)
		if (d != QUEUE_CORRUPT && strlen(queue_dir_name(d)) == dlen &&
		    strncmp(path, queue_dir_name(d), dlen) == 0)
			return 1;
	return 0;
}

double
queue_arrival_precise(const struct queue_env *env)
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t usec = 0;
	const char *p;
	int i;

	for (i = 0; i < QUEUE_ID_LEN - 1; i++) {
		if ((p = strchr(b32, env->id[i])) == NULL || *p == '\0')
			return (double)env->arrival;
		usec = usec << 5 | (uint64_t)(p - b32);
	}
	if (usec / 1000000 + 1 < (uint64_t)env->arrival ||
	    usec / 1000000 > (uint64_t)env->arrival + 1)
		return (double)env->arrival;
	return (double)usec / 1e6;
}
