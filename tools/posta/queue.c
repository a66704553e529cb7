/*
 * queue - "posta queue": look at the mail queue and act on it
 *
 *	posta queue list			(the listing of mailq)
 *	posta queue show ID			(envelope and message)
 *	posta queue flush [ID ...]		(retry deferred mail now)
 *	posta queue delete ID ... | ALL
 *	posta queue hold ID ...
 *	posta queue release ID ...
 *	posta queue requeue [ID ... | ALL]	(deferred -> incoming)
 *
 * list and show read the queue files themselves (lib/qlist, queue_read).
 * The others are requests to qmgr on private/qmgr (request=flush,
 * delete, hold, release, requeue with id=ID or id=ALL), so that a
 * message qmgr is working on is changed by qmgr alone.  When qmgr is not
 * running (its socket is missing or refuses connections) they act on the
 * files directly, and never on active/ (files there belong to the next
 * qmgr): delete unlinks, hold records held=1 and renames into hold/,
 * release records held=0 (qmgr puts a message recorded as held back on
 * hold) and renames hold/ into incoming/, requeue renames deferred/ into
 * incoming/, flush makes deferred files due (their mtime is the next try
 * time).  Renames never
 * replace a file and the directories are fsynced after, so a message is
 * in one directory, durably.
 *
 * A queue ID is checked with queue_id_ok() before it is used in a path
 * or a request.  Unknown IDs: "posta queue: ID: no such message", exit 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "posta.h"
#include "qlist.h"
#include "queue.h"
#include "smtp_cmd.h"

#define QCMD_IPC_TIMEOUT	30000	/* ms for one request to qmgr */
#define QCMD_CONNECT_TIMEOUT	5000
#define QCMD_CHUNK		65536

enum qop {
	QOP_FLUSH,
	QOP_DELETE,
	QOP_HOLD,
	QOP_RELEASE,
	QOP_REQUEUE,
};

static const struct {
	const char *name;	/* sub-command and request name */
	const char *done;	/* "ID: deleted" */
	bool	 all_ok;	/* takes ALL */
	bool	 none_ok;	/* without an ID means ALL */
} qops[] = {
	[QOP_FLUSH] = { "flush", "scheduled for delivery", true, true },
	[QOP_DELETE] = { "delete", "deleted", true, false },
	[QOP_HOLD] = { "hold", "placed on hold", false, false },
	[QOP_RELEASE] = { "release", "released from hold", false, false },
	[QOP_REQUEUE] = { "requeue", "requeued", true, true },
};

/* qcmd_put_arg - an argument from the command line, made safe to show */
static void
qcmd_put_arg(const char *s)
{
	size_t len = strlen(s);

	qlist_put_safe(stderr, s, len > 100 ? 100 : len, 0);
}

static void
qcmd_err(const char *id, const char *what)
{
	fputs("posta queue: ", stderr);
	if (id != NULL) {
		qcmd_put_arg(id);
		fputs(": ", stderr);
	}
	qlist_put_safe(stderr, what, strlen(what), 0);
	putc('\n', stderr);
}

/* qcmd_qdir - queue_directory from posta.conf into qdir; 0 or -1 */
static int
qcmd_qdir(const char *dir, char *qdir, size_t size)
{
	struct cfg *c;
	int n;

	if ((c = posta_conf_load(dir)) == NULL)
		return -1;
	n = snprintf(qdir, size, "%s", cfg_str(c, "queue_directory"));
	cfg_free(&c);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "posta queue: queue_directory too long\n");
		return -1;
	}
	return 0;
}

static void
qcmd_time(char *out, size_t size, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%a %b %e %H:%M:%S %Y", &tm) == 0)
		(void)snprintf(out, size, "%" PRId64, when);
}

/* qcmd_field - "name: value" when value is set, made safe */
static void
qcmd_field(const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	printf("%s: ", name);
	qlist_put_safe(stdout, value, strlen(value), 0);
	putchar('\n');
}

/* qcmd_content - copy the message text; CR LF becomes LF */
static int
qcmd_content(int fd, const struct queue_env *env, bool is_safe)
{
	char *buf = xmalloc(QCMD_CHUNK);
	uint64_t left = env->content_size;
	off_t off = (off_t)env->content_offset;
	size_t have = 0, i, start, want;
	ssize_t n;
	bool is_end;
	int rc = 0;

	for (;;) {
		want = QCMD_CHUNK - have;
		if (want > left)
			want = (size_t)left;
		n = want > 0 ? pread(fd, buf + have, want, off) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && left > 0)) {
			rc = -1;
			break;
		}
		have += (size_t)n;
		off += n;
		left -= (uint64_t)n;
		is_end = left == 0;
		/* whole lines only, unless the buffer is full or at the end */
		start = 0;
		for (i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			want = i - start;
			if (want > 0 && buf[i - 1] == '\r')
				want--;
			if (is_safe)
				qlist_put_safe(stdout, buf + start, want,
				    QLIST_SAFE_TEXT);
			else
				(void)fwrite(buf + start, 1, want, stdout);
			putchar('\n');
			start = i + 1;
		}
		if (start == 0 && (have == QCMD_CHUNK || is_end) && have > 0) {
			if (is_safe)
				qlist_put_safe(stdout, buf, have,
				    QLIST_SAFE_TEXT);
			else
				(void)fwrite(buf, 1, have, stdout);
			if (is_end)
				putchar('\n');
			start = have;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (is_end && have == 0)
			break;
	}
	free(buf);
	return rc;
}

static int
qcmd_show(const char *qdir, const char *id)
{
	static const char *bodies[] = { NULL, "7BIT", "8BITMIME",
	    "BINARYMIME" };
	static const char *rets[] = { NULL, "FULL", "HDRS" };
	char path[4096], when[64], next[64], client[300];
	struct queue_env *env;
	const struct queue_rcpt *r;
	enum queue_dir d;
	const char *why;
	bool is_corrupt;
	size_t i;
	int fd, rc;

	if (!queue_id_ok(id)) {
		qcmd_err(id, "bad queue ID");
		return POSTA_EXIT_FAIL;
	}
	if ((rc = qlist_locate(qdir, id, &d)) <= 0) {
		qcmd_err(id, rc == 0 ? "no such message" : strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	if (queue_path(path, sizeof(path), qdir, d, id) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY)) < 0) {
		qcmd_err(id, errno == ENOENT ? "no such message" :
		    strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	env = queue_env_new();
	if (queue_read(fd, env, &why, &is_corrupt) < 0) {
		fprintf(stderr, "posta queue: %s: %s%s: %s\n", id,
		    is_corrupt ? "corrupt queue file in " : "cannot read ",
		    queue_dir_name(d), why);
		queue_env_free(&env);
		(void)close(fd);
		return POSTA_EXIT_FAIL;
	}
	printf("*** ENVELOPE %s/%s ***\n", queue_dir_name(d), id);
	printf("queue_id: %s\n", id);
	qcmd_time(when, sizeof(when), env->arrival);
	printf("arrival_time: %s\n", when);
	printf("message_size: %" PRIu64 "\n", env->content_size);
	printf("sender: ");
	qlist_put_safe(stdout, env->sender, strlen(env->sender), 0);
	printf("%s\n", env->sender[0] == '\0' ? "<>" : "");
	if (env->client_addr != NULL) {
		(void)snprintf(client, sizeof(client), "%s[%s]",
		    env->client_name ? env->client_name : "unknown",
		    env->client_addr);
		qcmd_field("client", client);
	}
	qcmd_field("helo", env->helo);
	qcmd_field("protocol", env->proto);
	qcmd_field("auth", env->auth);
	if (env->body > 0 && (size_t)env->body < sizeof(bodies) /
	    sizeof(bodies[0]))
		qcmd_field("body", bodies[env->body]);
	if (env->smtputf8)
		qcmd_field("smtputf8", "yes");
	if (env->ret > 0 && (size_t)env->ret < sizeof(rets) / sizeof(rets[0]))
		qcmd_field("ret", rets[env->ret]);
	qcmd_field("envid", env->envid);
	if (env->held)
		qcmd_field("held", "yes");
	for (i = 0; i < env->nrcpt; i++) {
		r = &env->rcpt[i];
		qcmd_field("recipient", r->addr);
		qcmd_field("  orcpt", r->orcpt);
		if (r->status == QUEUE_R_PENDING) {
			printf("  status: pending\n");
			continue;
		}
		qcmd_time(when, sizeof(when), r->time);
		printf("  status: %s", queue_rstatus_name(r->status));
		if (r->dsn[0] != '\0') {
			putchar(' ');
			qlist_put_safe(stdout, r->dsn, strlen(r->dsn), 0);
		}
		printf(" at %s", when);
		if (r->status == QUEUE_R_DEFERRED && r->next_try > 0) {
			qcmd_time(next, sizeof(next), r->next_try);
			printf(", next try %s", next);
		}
		putchar('\n');
		qcmd_field("  reason", r->reason);
	}
	printf("*** MESSAGE CONTENTS %s/%s ***\n", queue_dir_name(d), id);
	rc = qcmd_content(fd, env, isatty(STDOUT_FILENO) == 1);
	printf("*** END OF MESSAGE %s/%s ***\n", queue_dir_name(d), id);
	queue_env_free(&env);
	(void)close(fd);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "posta queue: write error: %s\n",
		    strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	if (rc < 0) {
		fprintf(stderr, "posta queue: %s: read error\n", id);
		return POSTA_EXIT_FAIL;
	}
	return POSTA_EXIT_OK;
}

/* ---- through qmgr ---- */

/*
 * qcmd_ipc - one request to qmgr.  1 done, 0 refused (message printed),
 * -1 failed talking to it (printed).
 */
static int
qcmd_ipc(struct ipc_client *cl, enum qop op, const char *id)
{
	struct attr_rec *resp = attr_rec_new();
	unsigned long long count;
	const char *reason;
	struct buf req;
	int st;

	buf_init(&req, 4096);
	if (ipc_request(&req, qops[op].name) < 0 ||
	    (id != NULL && attr_put_str(&req, "id", id) < 0) ||
	    attr_end(&req) < 0)
		log_panic("posta queue: request too long");
	st = ipc_call(cl, &req, resp, QCMD_IPC_TIMEOUT);
	buf_deinit(&req);
	if (st < 0) {
		fprintf(stderr, "posta queue: qmgr: %s\n", strerror(errno));
		attr_rec_free(&resp);
		return -1;
	}
	reason = attr_get_str(resp, "reason");
	if (st != IPC_OK) {
		qcmd_err(id, reason != NULL ? reason : "refused by qmgr");
		attr_rec_free(&resp);
		return 0;
	}
	if (attr_get_uint(resp, "count", 0, UINT64_MAX, &count) == 1)
		printf("posta queue: %s: %llu message%s\n", qops[op].done,
		    count, count == 1 ? "" : "s");
	else if (id != NULL && strcmp(id, "ALL") != 0)
		printf("posta queue: %s: %s\n", id, qops[op].done);
	else
		printf("posta queue: %s\n", qops[op].done);
	attr_rec_free(&resp);
	return 1;
}

/* ---- on the files, when qmgr is not running ---- */

/* qcmd_rename - from/ID to to/ID, never replacing; 0 or -1 (errno) */
static int
qcmd_rename(const char *qdir, const char *id, enum queue_dir from,
    enum queue_dir to)
{
	char src[4096], dst[4096];
	int rc;

	if (queue_path(src, sizeof(src), qdir, from, id) < 0 ||
	    queue_path(dst, sizeof(dst), qdir, to, id) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	rc = renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE);
	if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
		/* no RENAME_NOREPLACE here: link(2) never replaces either */
		if ((rc = link(src, dst)) == 0)
			rc = unlink(src);
	}
	if (rc < 0)
		return -1;
	if (queue_dir_sync(qdir, to) < 0 || queue_dir_sync(qdir, from) < 0)
		return -1;
	return 0;
}

/*
 * qcmd_set_held - record held=1|0 in the file, as qmgr does: qmgr puts
 * a message whose last held record says 1 back on hold when it takes
 * it, so a release must record 0.  0 (also when already so) or -1.
 */
static int
qcmd_set_held(const char *qdir, enum queue_dir d, const char *id, bool held)
{
	struct queue_env *env;
	char path[4096];
	const char *why;
	bool is_corrupt;
	int fd, rc = -1;

	if (queue_path(path, sizeof(path), qdir, d, id) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY)) < 0)
		return -1;
	env = queue_env_new();
	if (queue_read(fd, env, &why, &is_corrupt) == 0)
		rc = env->held == held ? 0 : queue_hold_append(fd, env, held);
	else
		errno = is_corrupt ? EINVAL : EIO;
	queue_env_free(&env);
	(void)close(fd);
	return rc;
}

/* qcmd_file_op - op on one message file; 1 done, 0 refused (printed) */
static int
qcmd_file_op(const char *qdir, enum qop op, const char *id, bool is_all)
{
	char path[4096];
	enum queue_dir d;
	struct timespec now[2];
	int rc;

	if ((rc = qlist_locate(qdir, id, &d)) <= 0) {
		qcmd_err(id, rc == 0 ? "no such message" : strerror(errno));
		return 0;
	}
	if (d == QUEUE_ACTIVE) {
		/* the next qmgr finds it there and finishes the round */
		qcmd_err(id, "message is active; left to qmgr");
		return 0;
	}
	rc = -1;
	switch (op) {
	case QOP_DELETE:
		if (queue_path(path, sizeof(path), qdir, d, id) < 0) {
			errno = ENAMETOOLONG;
			break;
		}
		if ((rc = unlink(path)) == 0)
			rc = queue_dir_sync(qdir, d);
		break;
	case QOP_HOLD:
		if (d == QUEUE_HOLD) {
			qcmd_err(id, "already on hold");
			return 1;
		}
		if (d == QUEUE_CORRUPT) {
			qcmd_err(id, "corrupt queue file; not held");
			return 0;
		}
		/* recorded first: a crash before the rename still holds it */
		if (qcmd_set_held(qdir, d, id, true) < 0)
			qcmd_err(id, "warning: cannot record held=1");
		rc = qcmd_rename(qdir, id, d, QUEUE_HOLD);
		break;
	case QOP_RELEASE:
		if (d != QUEUE_HOLD) {
			qcmd_err(id, "not on hold");
			return 0;
		}
		if (qcmd_set_held(qdir, d, id, false) < 0) {
			qcmd_err(id, errno == EINVAL ? "corrupt queue file; "
			    "not released" : strerror(errno));
			return 0;
		}
		rc = qcmd_rename(qdir, id, d, QUEUE_INCOMING);
		break;
	case QOP_REQUEUE:
	case QOP_FLUSH:
		if (d == QUEUE_INCOMING) {
			if (!is_all)
				qcmd_err(id, "already waiting in incoming");
			return 1;
		}
		if (d != QUEUE_DEFERRED) {
			qcmd_err(id, d == QUEUE_HOLD ? "on hold; release it "
			    "first" : "corrupt queue file; not requeued");
			return 0;
		}
		if (op == QOP_REQUEUE) {
			rc = qcmd_rename(qdir, id, d, QUEUE_INCOMING);
			break;
		}
		/* qmgr takes a deferred file's mtime as its next try time */
		if (queue_path(path, sizeof(path), qdir, d, id) < 0) {
			errno = ENAMETOOLONG;
			break;
		}
		now[0].tv_nsec = UTIME_OMIT;
		now[1].tv_nsec = UTIME_NOW;
		now[0].tv_sec = now[1].tv_sec = 0;
		rc = utimensat(AT_FDCWD, path, now, AT_SYMLINK_NOFOLLOW);
		break;
	}
	if (rc < 0) {
		qcmd_err(id, errno == ENOENT ? "no such message" :
		    strerror(errno));
		return 0;
	}
	if (!is_all)
		printf("posta queue: %s: %s\n", id, qops[op].done);
	return 1;
}

/* qcmd_file_all - op on every message of the directories it applies to */
static int
qcmd_file_all(const char *qdir, enum qop op)
{
	static const enum queue_dir del_dirs[] = {
		QUEUE_INCOMING, QUEUE_DEFERRED, QUEUE_HOLD,
	};
	static const enum queue_dir defer_dirs[] = { QUEUE_DEFERRED };
	const enum queue_dir *dirs = op == QOP_DELETE ? del_dirs :
	    defer_dirs;
	size_t ndirs = op == QOP_DELETE ? 3 : 1, i, done = 0, failed = 0;
	char path[4096];
	struct dirent *de;
	DIR *dp;

	for (i = 0; i < ndirs; i++) {
		if (queue_path(path, sizeof(path), qdir, dirs[i], NULL) < 0 ||
		    (dp = opendir(path)) == NULL) {
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "posta queue: cannot open %s: %s\n",
			    path, strerror(errno));
			return POSTA_EXIT_FAIL;
		}
		/* unlink and rename during readdir: a name is seen once */
		while ((de = readdir(dp)) != NULL) {
			if (!queue_id_ok(de->d_name))
				continue;
			if (qcmd_file_op(qdir, op, de->d_name, true) == 1)
				done++;
			else
				failed++;
		}
		(void)closedir(dp);
	}
	printf("posta queue: %s: %zu message%s\n", qops[op].done, done,
	    done == 1 ? "" : "s");
	return failed > 0 ? POSTA_EXIT_FAIL : POSTA_EXIT_OK;
}

static int
qcmd_change(const char *qdir, enum qop op, int argc, char **argv)
{
	struct ipc_client *cl;
	char sock[4096];
	bool is_all = false;
	int i, rc = POSTA_EXIT_OK, r;

	if (argc == 0 && !qops[op].none_ok) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if (argc == 0)
		is_all = true;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "ALL") == 0) {
			if (!qops[op].all_ok || argc != 1) {
				usage();
				return POSTA_EXIT_USAGE;
			}
			is_all = true;
		} else if (!queue_id_ok(argv[i])) {
			qcmd_err(argv[i], "bad queue ID");
			return POSTA_EXIT_FAIL;
		}
	}
	if (snprintf(sock, sizeof(sock), "%s/private/qmgr", qdir) >=
	    (int)sizeof(sock)) {
		fprintf(stderr, "posta queue: queue_directory too long\n");
		return POSTA_EXIT_FAIL;
	}
	cl = ipc_connect(sock, QCMD_CONNECT_TIMEOUT);
	if (cl != NULL) {
		if (is_all && argc == 0 && op == QOP_FLUSH)
			r = qcmd_ipc(cl, op, NULL);
		else if (is_all)
			r = qcmd_ipc(cl, op, "ALL");
		else
			for (i = 0, r = 1; i < argc && r >= 0; i++)
				if ((r = qcmd_ipc(cl, op, argv[i])) != 1)
					rc = POSTA_EXIT_FAIL;
		ipc_client_free(&cl);
		return r == 1 && rc == POSTA_EXIT_OK ? POSTA_EXIT_OK :
		    POSTA_EXIT_FAIL;
	}
	if (errno != ENOENT && errno != ECONNREFUSED) {
		fprintf(stderr, "posta queue: cannot reach qmgr at %s: %s\n",
		    sock, strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	fprintf(stderr, "posta queue: qmgr is not running; acting on the "
	    "queue files\n");
	if (is_all)
		return qcmd_file_all(qdir, op);
	for (i = 0; i < argc; i++)
		if (qcmd_file_op(qdir, op, argv[i], false) != 1)
			rc = POSTA_EXIT_FAIL;
	return rc;
}

int
cmd_queue(const char *dir, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum qop op;
	} changes[] = {
		{ "flush", QOP_FLUSH },
		{ "delete", QOP_DELETE },
		{ "hold", QOP_HOLD },
		{ "release", QOP_RELEASE },
		{ "requeue", QOP_REQUEUE },
	};
	char qdir[4096];
	size_t i;

	if (argc < 2) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if (strcmp(argv[1], "list") == 0 && argc == 2) {
		if (qcmd_qdir(dir, qdir, sizeof(qdir)) < 0)
			return POSTA_EXIT_FAIL;
		return qlist_print(stdout, qdir, "posta queue") < 0 ?
		    POSTA_EXIT_FAIL : POSTA_EXIT_OK;
	}
	if (strcmp(argv[1], "show") == 0 && argc == 3) {
		if (qcmd_qdir(dir, qdir, sizeof(qdir)) < 0)
			return POSTA_EXIT_FAIL;
		return qcmd_show(qdir, argv[2]);
	}
	for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		if (strcmp(argv[1], changes[i].name) != 0)
			continue;
		if (qcmd_qdir(dir, qdir, sizeof(qdir)) < 0)
			return POSTA_EXIT_FAIL;
		return qcmd_change(qdir, changes[i].op, argc - 2, argv + 2);
	}
	usage();
	return POSTA_EXIT_USAGE;
}
