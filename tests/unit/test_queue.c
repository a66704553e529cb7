/*
 * test_queue - queue IDs, writing a queue file durably, reading it back,
 * status records (and a torn last one), corrupt files, aborted writes,
 * the check sum, and recovery of an ID.tmp whose writer is gone
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "queue.h"
#include "smtp_cmd.h"

static char qdir[64];

static int
setup(void **state)
{
	char p[128];
	int i;

	(void)state;
	snprintf(qdir, sizeof(qdir), "/tmp/test_queue.XXXXXX");
	if (mkdtemp(qdir) == NULL)
		return -1;
	for (i = 0; i < QUEUE_NDIRS; i++) {
		snprintf(p, sizeof(p), "%s/%s", qdir, queue_dir_name(i));
		if (mkdir(p, 0700) < 0)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
count_files(enum queue_dir d)
{
	char p[128];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", qdir, queue_dir_name(d));
	dir = opendir(p);
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

static struct queue_env *
sample_env(void)
{
	struct queue_env *env = queue_env_new();

	queue_env_set(&env->sender, "sender@example.org");
	queue_env_set(&env->client_name, "mx.example.org");
	queue_env_set(&env->client_addr, "192.0.2.7");
	queue_env_set(&env->helo, "mx.example.org");
	queue_env_set(&env->proto, "ESMTPS");
	queue_env_set(&env->envid, "QQ+2B1");
	env->body = SMTP_BODY_8BITMIME;
	env->ret = SMTP_RET_HDRS;
	(void)queue_env_add_rcpt(env, "demo@example.test", "rfc822;demo+40x",
	    SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	(void)queue_env_add_rcpt(env, "other@example.test", NULL, 0);
	return env;
}

static const char body[] = "Subject: hi\r\n\r\nline one\r\n.dot\r\n";

/* write_message - a committed queue file; returns its path in path */
static void
write_message(struct queue_env *env, char *path, size_t pathsz)
{
	struct queue_writer *w;
	struct reply r;

	w = queue_writer_new(qdir, env, &r);
	assert_non_null(w);
	assert_true(queue_id_ok(env->id));
	assert_int_equal(queue_writer_write(w, body, 15), 0);
	assert_int_equal(queue_writer_write(w, body + 15,
	    sizeof(body) - 1 - 15), 0);
	assert_int_equal(queue_writer_size(w), sizeof(body) - 1);
	assert_int_equal(queue_writer_seal(w, &r), 0);
	assert_int_equal(queue_writer_sync(w), 0);
	assert_int_equal(queue_writer_commit(w, &r), 0);
	queue_writer_free(&w);
	assert_int_equal(queue_dir_sync(qdir, QUEUE_INCOMING), 0);
	assert_int_equal(queue_path(path, pathsz, qdir, QUEUE_INCOMING,
	    env->id), 0);
}

static void
test_ids(void **state)
{
	char prev[QUEUE_ID_LEN + 1] = "";
	struct queue_env *env;
	struct queue_writer *w;
	struct reply r;
	int i;

	(void)state;
	assert_false(queue_id_ok(""));
	assert_false(queue_id_ok("../../etc/pw"));
	assert_false(queue_id_ok("0123456789AB0"));
	assert_false(queue_id_ok("0123456789aB"));
	assert_false(queue_id_ok("0123456789AI"));	/* no I in base 32 */
	assert_true(queue_id_ok("0123456789AB"));
	/* 200 files at once: unique IDs, increasing with time */
	for (i = 0; i < 200; i++) {
		env = sample_env();
		w = queue_writer_new(qdir, env, &r);
		assert_non_null(w);
		assert_true(strcmp(env->id, prev) != 0);
		if (prev[0] != '\0')
			assert_true(strncmp(env->id, prev, 11) >= 0);
		memcpy(prev, env->id, sizeof(prev));
		queue_writer_free(&w);	/* not committed: removed */
		queue_env_free(&env);
	}
	assert_int_equal(count_files(QUEUE_INCOMING), 0);
}

static void
test_roundtrip(void **state)
{
	struct queue_env *env = sample_env(), *back = queue_env_new();
	char path[256], content[128];
	const char *why = NULL;
	bool corrupt;
	int fd;

	(void)state;
	write_message(env, path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(queue_read(fd, back, &why, &corrupt), 0);
	assert_string_equal(back->id, env->id);
	assert_string_equal(back->sender, "sender@example.org");
	assert_string_equal(back->client_addr, "192.0.2.7");
	assert_string_equal(back->envid, "QQ+2B1");
	assert_int_equal(back->body, SMTP_BODY_8BITMIME);
	assert_int_equal(back->ret, SMTP_RET_HDRS);
	assert_int_equal(back->nrcpt, 2);
	assert_string_equal(back->rcpt[0].addr, "demo@example.test");
	assert_string_equal(back->rcpt[0].orcpt, "rfc822;demo+40x");
	assert_int_equal(back->rcpt[0].notify,
	    SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	assert_null(back->rcpt[1].orcpt);
	assert_int_equal(back->rcpt[1].status, QUEUE_R_PENDING);
	assert_int_equal(back->content_size, sizeof(body) - 1);
	assert_int_equal(pread(fd, content, back->content_size,
	    (off_t)back->content_offset), (ssize_t)sizeof(body) - 1);
	assert_memory_equal(content, body, sizeof(body) - 1);
	close(fd);
	unlink(path);
	queue_env_free(&env);
	queue_env_free(&back);
}

/* an envelope larger than the first read (16 KiB): read whole anyway */
static void
test_large_envelope(void **state)
{
	struct queue_env *env = sample_env(), *back = queue_env_new();
	char path[256], addr[128], content[128];
	const char *why = NULL;
	bool corrupt;
	int fd, i;

	(void)state;
	for (i = 0; i < 600; i++) {
		snprintf(addr, sizeof(addr), "recipient-number-%04d-with-a-"
		    "rather-long-local-part@example.test", i);
		(void)queue_env_add_rcpt(env, addr, NULL, 0);
	}
	write_message(env, path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(queue_read(fd, back, &why, &corrupt), 0);
	assert_true(back->content_offset > 16 * 1024);
	assert_int_equal(back->nrcpt, 602);
	assert_string_equal(back->rcpt[601].addr, "recipient-number-0599-with-"
	    "a-rather-long-local-part@example.test");
	assert_int_equal(pread(fd, content, back->content_size,
	    (off_t)back->content_offset), (ssize_t)sizeof(body) - 1);
	assert_memory_equal(content, body, sizeof(body) - 1);
	close(fd);
	unlink(path);
	queue_env_free(&env);
	queue_env_free(&back);
}

static void
test_status(void **state)
{
	struct queue_env *env = sample_env(), *back;
	char path[256];
	const char *why = NULL;
	bool corrupt;
	int fd;
	struct stat st;

	(void)state;
	write_message(env, path, sizeof(path));
	queue_env_free(&env);
	env = queue_env_new();
	fd = open(path, O_RDWR);
	assert_int_equal(queue_read(fd, env, &why, &corrupt), 0);
	assert_int_equal(queue_status_append(fd, env, 1, QUEUE_R_DEFERRED,
	    "4.2.2", "mailbox full", 12345), 0);
	env->rcpt[0].relay = QUEUE_RELAY_PASSED;	/* kept: relay=passed */
	assert_int_equal(queue_status_append(fd, env, 0, QUEUE_R_SENT,
	    "2.0.0", "delivered to maildir", 0), 0);
	/* a final status is not undone by a later record */
	assert_int_equal(queue_status_append(fd, env, 0, QUEUE_R_DEFERRED,
	    "4.0.0", "again", 0), 0);
	assert_int_equal(queue_hold_append(fd, env, true), 0);
	/* a torn append: half a record at the end */
	assert_true(lseek(fd, 0, SEEK_END) > 0);
	assert_int_equal(write(fd, "40:rcpt_index=1,6:sta", 21), 21);
	back = queue_env_new();
	if (queue_read(fd, back, &why, &corrupt) != 0)
		fail_msg("torn tail: %s", why);
	assert_int_equal(back->rcpt[0].status, QUEUE_R_SENT);
	assert_string_equal(back->rcpt[0].dsn, "2.0.0");
	assert_int_equal(back->rcpt[0].relay, QUEUE_RELAY_PASSED);
	assert_int_equal(back->rcpt[1].relay, QUEUE_RELAY_NONE);
	assert_int_equal(back->rcpt[1].status, QUEUE_R_DEFERRED);
	assert_string_equal(back->rcpt[1].reason, "mailbox full");
	assert_int_equal(back->rcpt[1].next_try, 12345);
	assert_true(back->held);
	/* the next append cuts the torn bytes off first */
	assert_int_equal(queue_status_append(fd, back, 1, QUEUE_R_FAILED,
	    "5.1.1", "no such user", 0), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, back->good_end);
	queue_env_free(&back);
	back = queue_env_new();
	assert_int_equal(queue_read(fd, back, &why, &corrupt), 0);
	assert_int_equal(back->rcpt[1].status, QUEUE_R_FAILED);
	close(fd);
	unlink(path);
	queue_env_free(&env);
	queue_env_free(&back);
}

static void
test_corrupt(void **state)
{
	struct queue_env *env = sample_env(), *back;
	char path[256], *data;
	const char *why;
	struct stat st;
	bool corrupt;
	int fd;
	size_t len, cut;
	static const char *bad[] = {
		"",
		"0:,",
		"3:v=2,0:,",
		"3:v=1,0:,",
		"3:v=1,15:id=0123456789AB,7:sender=,9:rcpt=a@b,"
		    "26:content_size=0000000000099,0:,short",
		"3:v=1,15:id=0123456789AB,7:sender=,"
		    "26:content_size=0000000000000,0:,",
		"3:v=1,15:id=0123456789AB,7:sender=,9:rcpt=a@b,"
		    "6:zzz=aa,26:content_size=0000000000000,0:,",
		"3:v=1,15:id=0123456789AB,7:sender=,9:rcpt=a@b,"
		    "26:content_size=0000000000000,0:,"
		    "12:rcpt_index=5,11:status=sent,0:,",
		"3:v=1,15:id=../../etc/pw,7:sender=,9:rcpt=a@b,"
		    "26:content_size=0000000000000,0:,",
		"999999999999999999999:v=1,",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		back = queue_env_new();
		why = NULL;
		if (queue_parse(bad[i], strlen(bad[i]), back, &why) != -1)
			fail_msg("case %zu parsed", i);
		assert_non_null(why);
		queue_env_free(&back);
	}
	/* every truncation of a real file is refused or parses whole */
	write_message(env, path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	len = (size_t)st.st_size;
	data = malloc(len);
	assert_int_equal(read(fd, data, len), (ssize_t)len);
	for (cut = 0; cut < len; cut++) {
		back = queue_env_new();
		assert_int_equal(queue_parse(data, cut, back, &why), -1);
		queue_env_free(&back);
	}
	back = queue_env_new();
	assert_int_equal(queue_read(fd, back, &why, &corrupt), 0);
	queue_env_free(&back);
	close(fd);
	/* a damaged file on disk is reported as corrupt */
	data[2] = 'X';
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	fd = open(path, O_RDONLY);
	back = queue_env_new();
	assert_int_equal(queue_read(fd, back, &why, &corrupt), -1);
	assert_true(corrupt);
	queue_env_free(&back);
	close(fd);
	free(data);
	unlink(path);
	queue_env_free(&env);
}

static void
test_large_content(void **state)
{
	struct queue_env *env = sample_env(), *back = queue_env_new();
	struct queue_writer *w;
	struct reply r;
	char path[256], chunk[1000];
	const char *why;
	bool corrupt;
	int fd, i;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	w = queue_writer_new(qdir, env, &r);
	for (i = 0; i < 300; i++)
		assert_int_equal(queue_writer_write(w, chunk, sizeof(chunk)),
		    0);
	assert_int_equal(queue_writer_write(w, NULL, 0), 0);
	assert_int_equal(queue_writer_seal(w, &r), 0);
	assert_int_equal(queue_writer_write(w, chunk, 1), -1);
	assert_int_equal(queue_writer_sync(w), 0);
	assert_int_equal(queue_writer_commit(w, &r), 0);
	queue_writer_free(&w);
	queue_path(path, sizeof(path), qdir, QUEUE_INCOMING, env->id);
	fd = open(path, O_RDONLY);
	assert_int_equal(queue_read(fd, back, &why, &corrupt), 0);
	assert_int_equal(back->content_size, 300000);
	close(fd);
	unlink(path);
	queue_env_free(&env);
	queue_env_free(&back);
}

static void
test_recycle(void **state)
{
	struct queue_env *env = sample_env(), *env2 = sample_env();
	struct queue_writer *w;
	struct reply r;
	struct stat st, st2;
	char path[256], freep[256], name[32];
	int i, fd;

	(void)state;
	snprintf(freep, sizeof(freep), "%s/%s", qdir, QUEUE_FREE_DIR);
	assert_int_equal(mkdir(freep, 0700), 0);
	write_message(env, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 0);
	/* with a status record at its end, as a delivered file has */
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	{
		const char *why;
		bool corrupt;

		assert_int_equal(queue_read(fd, env, &why, &corrupt), 0);
	}
	assert_int_equal(queue_status_append(fd, env, 0, QUEUE_R_SENT, "2.0.0",
	    "delivered", 0), 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	/* a finished file goes to free/ whole (it is small) */
	assert_int_equal(queue_recycle(qdir, path), 0);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(freep, sizeof(freep), "%s/%s/%s", qdir, QUEUE_FREE_DIR,
	    env->id);
	assert_int_equal(stat(freep, &st2), 0);
	assert_int_equal(st2.st_size, st.st_size);
	assert_int_equal(st2.st_ino, st.st_ino);
	/* the next writer reuses that inode (after the rescan pause) */
	usleep(1100 * 1000);
	w = queue_writer_new(qdir, env2, &r);
	assert_non_null(w);
	assert_int_equal(fstat(queue_writer_fd(w), &st2), 0);
	assert_int_equal(st2.st_ino, st.st_ino);
	assert_int_equal(access(freep, F_OK), -1);
	assert_int_equal(queue_writer_write(w, "x\r\n", 3), 0);
	assert_int_equal(queue_writer_seal(w, &r), 0);
	assert_int_equal(queue_writer_sync(w), 0);
	assert_int_equal(queue_writer_commit(w, &r), 0);
	queue_writer_free(&w);
	queue_path(path, sizeof(path), qdir, QUEUE_INCOMING, env2->id);
	fd = open(path, O_RDONLY);
	queue_env_free(&env2);
	env2 = queue_env_new();
	{
		const char *why;
		bool corrupt;

		assert_int_equal(queue_read(fd, env2, &why, &corrupt), 0);
	}
	assert_int_equal(env2->content_size, 3);
	/* written over and cut at its end: nothing of the old one left,
	 * its status record least of all */
	assert_int_equal(fstat(fd, &st2), 0);
	assert_int_equal((uint64_t)st2.st_size, env2->good_end);
	assert_int_equal(env2->rcpt[0].status, QUEUE_R_PENDING);
	close(fd);
	/* a big file is cut to QUEUE_RECYCLE_KEEP on its way to free/ */
	snprintf(freep, sizeof(freep), "%s/big", qdir);
	fd = open(freep, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3 * QUEUE_RECYCLE_KEEP), 0);
	close(fd);
	snprintf(name, sizeof(name), "%s", "0000000ZZZZZ");
	{
		char bigp[256], bigf[256];

		snprintf(bigp, sizeof(bigp), "%s/%s/%s", qdir,
		    queue_dir_name(QUEUE_ACTIVE), name);
		assert_int_equal(rename(freep, bigp), 0);
		assert_int_equal(queue_recycle(qdir, bigp), 0);
		snprintf(bigf, sizeof(bigf), "%s/%s/%s", qdir, QUEUE_FREE_DIR,
		    name);
		assert_int_equal(stat(bigf, &st2), 0);
		assert_int_equal(st2.st_size, QUEUE_RECYCLE_KEEP);
		assert_int_equal(unlink(bigf), 0);
	}
	/* free/ full: the file is unlinked instead */
	for (i = 0; i < QUEUE_FREE_MAX; i++) {
		snprintf(name, sizeof(name), "0000000%05u", (unsigned)i);
		snprintf(freep, sizeof(freep), "%s/%s/%s", qdir,
		    QUEUE_FREE_DIR, name);
		fd = open(freep, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	usleep(1100 * 1000);
	assert_int_equal(queue_recycle(qdir, path), 0);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(freep, sizeof(freep), "%s/%s/%s", qdir, QUEUE_FREE_DIR,
	    env2->id);
	assert_int_equal(access(freep, F_OK), -1);
	queue_env_free(&env);
	queue_env_free(&env2);
}

/*
 * IDs from several processes at once are unique and each process's
 * increase: they come from the counter shared through incoming/.idseq.
 * (Per-process counters made the same ID in two smtpd processes now and
 * then, and the later rename replaced the first message.)
 */
#define ID_PROCS	4
#define ID_EACH		40000

static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QUEUE_ID_LEN);
}

static void
test_ids_across_processes(void **state)
{
	char path[128], id[QUEUE_ID_LEN + 1], prev[QUEUE_ID_LEN + 1];
	char (*all)[QUEUE_ID_LEN];
	struct stat st;
	size_t n = 0, i;
	pid_t pid[ID_PROCS];
	int k, status, fd;
	FILE *f;

	(void)state;
	for (k = 0; k < ID_PROCS; k++) {
		pid[k] = fork();
		assert_true(pid[k] >= 0);
		if (pid[k] == 0) {
			snprintf(path, sizeof(path), "%s/ids.%d", qdir, k);
			if ((f = fopen(path, "w")) == NULL)
				_exit(2);
			prev[0] = '\0';
			for (i = 0; i < ID_EACH; i++) {
				(void)queue_id_new(qdir, id, NULL);
				if (!queue_id_ok(id) ||
				    strcmp(id, prev) <= 0)
					_exit(3);
				memcpy(prev, id, sizeof(prev));
				(void)fwrite(id, 1, QUEUE_ID_LEN, f);
			}
			_exit(fclose(f) == 0 ? 0 : 2);
		}
	}
	for (k = 0; k < ID_PROCS; k++) {
		assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	all = calloc(ID_PROCS * ID_EACH, sizeof(*all));
	assert_non_null(all);
	for (k = 0; k < ID_PROCS; k++) {
		snprintf(path, sizeof(path), "%s/ids.%d", qdir, k);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, all[n], ID_EACH * QUEUE_ID_LEN),
		    ID_EACH * QUEUE_ID_LEN);
		n += ID_EACH;
		(void)close(fd);
		(void)unlink(path);
	}
	qsort(all, n, sizeof(*all), id_cmp);
	for (i = 1; i < n; i++)
		assert_true(memcmp(all[i - 1], all[i], QUEUE_ID_LEN) != 0);
	free(all);
	/* the shared counter lives in incoming/, owned like the queue */
	snprintf(path, sizeof(path), "%s/%s/%s", qdir,
	    queue_dir_name(QUEUE_INCOMING), QUEUE_SEQ_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 8);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* the common part of a delivery request, hostile values first */
static int
req_check(const char *const *kv, size_t max, size_t *n_r, size_t **idx_r,
    const char **why_r)
{
	struct attr_rec *rec = attr_rec_new();
	const char *id, *path;
	struct buf b;
	size_t used, i;
	int rc;

	buf_init(&b, 0);
	for (i = 0; kv[i] != NULL; i += 2)
		assert_int_equal(attr_put(&b, kv[i], kv[i + 1],
		    strlen(kv[i + 1])), 0);
	assert_int_equal(attr_end(&b), 0);
	assert_int_equal(attr_decode(buf_cstr(&b), buf_len(&b), NULL, rec,
	    &used, why_r), 1);
	rc = queue_deliver_req(rec, max, &id, &path, idx_r, n_r, why_r);
	attr_rec_free(&rec);
	buf_deinit(&b);
	return rc;
}

static void
test_deliver_req(void **state)
{
	const char *no_id[] = { "path", "active/0123456789AB",
	    "rcpt_index", "0", NULL };
	const char *bad_path[] = { "id", "0123456789AB", "path",
	    "active/../../etc/passwd", "rcpt_index", "0", NULL };
	const char *other_id[] = { "id", "0123456789AB", "path",
	    "active/0123456789AC", "rcpt_index", "0", NULL };
	const char *corrupt[] = { "id", "0123456789AB", "path",
	    "corrupt/0123456789AB", "rcpt_index", "0", NULL };
	const char *no_rcpt[] = { "id", "0123456789AB", "path",
	    "active/0123456789AB", NULL };
	const char *big[] = { "id", "0123456789AB", "path",
	    "active/0123456789AB", "rcpt_index", "99999999999999999999",
	    NULL };
	const char *neg[] = { "id", "0123456789AB", "path",
	    "active/0123456789AB", "rcpt_index", "-1", NULL };
	const char *many[] = { "id", "0123456789AB", "path",
	    "active/0123456789AB", "rcpt_index", "0", "rcpt_index", "1",
	    "rcpt_index", "2", NULL };
	const char *good[] = { "id", "0123456789AB", "path",
	    "deferred/0123456789AB", "rcpt_index", "3", "rcpt_index", "0",
	    NULL };
	const char *why;
	size_t n, *idx;

	(void)state;
	assert_int_equal(req_check(no_id, 10, &n, &idx, &why), -1);
	assert_string_equal(why, "bad or missing id=");
	assert_int_equal(req_check(bad_path, 10, &n, &idx, &why), -1);
	assert_string_equal(why, "bad or missing path=");
	assert_int_equal(req_check(other_id, 10, &n, &idx, &why), -1);
	assert_int_equal(req_check(corrupt, 10, &n, &idx, &why), -1);
	assert_int_equal(req_check(no_rcpt, 10, &n, &idx, &why), -1);
	assert_string_equal(why, "no rcpt_index=");
	assert_int_equal(req_check(big, 10, &n, &idx, &why), -1);
	assert_string_equal(why, "bad rcpt_index=");
	assert_int_equal(req_check(neg, 10, &n, &idx, &why), -1);
	assert_int_equal(req_check(many, 2, &n, &idx, &why), -1);
	assert_string_equal(why, "too many rcpt_index=");
	assert_int_equal(req_check(good, 10, &n, &idx, &why), 0);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 3);
	assert_int_equal(idx[1], 0);
	free(idx);
}


/* flip - change one byte of a file at off */
static void
flip(const char *path, off_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* verify_path - queue_read + queue_verify of a file; 0, -1 (why) */
static int
verify_path(const char *path, const char **why_r, struct queue_env *back)
{
	bool corrupt;
	int fd, rc;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	rc = queue_read(fd, back, why_r, &corrupt);
	if (rc == 0)
		rc = queue_verify(fd, back, why_r);
	close(fd);
	return rc;
}

static void
test_check(void **state)
{
	struct queue_env *env = sample_env(), *back;
	char path[256];
	const char *why = NULL;
	int fd;

	(void)state;
	write_message(env, path, sizeof(path));
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), 0);
	assert_true(back->has_check);
	/* status records after the content are not part of the sum */
	fd = open(path, O_RDWR);
	assert_int_equal(queue_status_append(fd, back, 0, QUEUE_R_DEFERRED,
	    "4.2.0", "try later", 0), 0);
	close(fd);
	queue_env_free(&back);
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), 0);
	queue_env_free(&back);

	/* one changed bit of the content: a mismatch */
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), 0);
	flip(path, (off_t)back->content_offset + 20);
	queue_env_free(&back);
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), -1);
	assert_string_equal(why, "check sum mismatch");
	queue_env_free(&back);
	unlink(path);

	/* the envelope is in the sum too (a letter of the sender) */
	write_message(env, path, sizeof(path));
	{
		char head[512];

		fd = open(path, O_RDONLY);
		assert_true(read(fd, head, sizeof(head)) > 0);
		close(fd);
		flip(path, (off_t)(strstr(head, "sender@") - head));
	}
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), -1);
	assert_string_equal(why, "check sum mismatch");
	/* it parses (s became r), only the sum tells */
	assert_string_equal(back->sender, "render@example.org");
	queue_env_free(&back);
	unlink(path);
	queue_env_free(&env);
}

/* the sum over a content larger than one read of the verifier */
static void
test_check_large(void **state)
{
	struct queue_env *env = sample_env(), *back = queue_env_new();
	struct queue_writer *w;
	struct reply r;
	char path[256], chunk[1000];
	const char *why = NULL;
	int i;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	w = queue_writer_new(qdir, env, &r);
	assert_non_null(w);
	for (i = 0; i < 300; i++) {
		chunk[0] = (char)('a' + i % 26);
		assert_int_equal(queue_writer_write(w, chunk, sizeof(chunk)),
		    0);
	}
	assert_int_equal(queue_writer_seal(w, &r), 0);
	assert_int_equal(queue_writer_commit(w, &r), 0);
	queue_writer_free(&w);
	assert_int_equal(queue_path(path, sizeof(path), qdir, QUEUE_INCOMING,
	    env->id), 0);
	assert_int_equal(verify_path(path, &why, back), 0);
	assert_int_equal(back->content_size, 300 * sizeof(chunk));
	flip(path, (off_t)back->content_offset + 250 * 1000 + 7);
	queue_env_free(&back);
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), -1);
	unlink(path);
	queue_env_free(&back);
	queue_env_free(&env);
}

/*
 * tmp_left - a child process writes a message as ID.tmp and dies
 * without committing (as after a crash): seal says how far it got.
 * Returns the ID.
 */
static void
tmp_left(bool seal, char *id)
{
	struct queue_env *env = sample_env();
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct queue_writer *w;
		struct reply r;

		close(fds[0]);
		w = queue_writer_new(qdir, env, &r);
		if (w == NULL || queue_writer_write(w, body,
		    sizeof(body) - 1) < 0)
			_exit(1);
		if (seal && (queue_writer_seal(w, &r) < 0 ||
		    queue_writer_sync(w) < 0))
			_exit(1);
		if (write(fds[1], env->id, QUEUE_ID_LEN) != QUEUE_ID_LEN)
			_exit(1);
		_exit(0);	/* no commit, no free: the file stays */
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], id, QUEUE_ID_LEN), QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	queue_env_free(&env);
}

static int
incoming_fd(void)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", qdir, queue_dir_name(QUEUE_INCOMING));
	fd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	return fd;
}

static void
test_tmp_recover(void **state)
{
	struct queue_env *env = sample_env(), *back;
	struct queue_writer *w;
	struct reply r;
	char id[QUEUE_ID_LEN + 1], name[64], path[256], other[256];
	const char *why = NULL;
	bool busy;
	int dfd = incoming_fd();

	(void)state;
	/* a live writer holds its file: left alone, even when sealed */
	w = queue_writer_new(qdir, env, &r);
	assert_non_null(w);
	assert_int_equal(queue_writer_write(w, body, sizeof(body) - 1), 0);
	assert_int_equal(queue_writer_seal(w, &r), 0);
	snprintf(name, sizeof(name), "%s.tmp", env->id);
	assert_int_equal(queue_tmp_recover(dfd, name, &why, &busy), 0);
	assert_true(busy);
	queue_writer_free(&w);		/* not committed: removed */
	assert_int_equal(count_files(QUEUE_INCOMING), 0);

	/* sealed and synced, then the writer died: recovered as ID */
	tmp_left(true, id);
	snprintf(name, sizeof(name), "%s.tmp", id);
	assert_int_equal(queue_tmp_recover(dfd, name, &why, &busy), 1);
	assert_false(busy);
	assert_int_equal(queue_path(path, sizeof(path), qdir, QUEUE_INCOMING,
	    id), 0);
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), 0);
	assert_string_equal(back->id, id);
	assert_int_equal(back->content_size, sizeof(body) - 1);
	queue_env_free(&back);
	unlink(path);

	/* never sealed: left alone, not busy */
	tmp_left(false, id);
	snprintf(name, sizeof(name), "%s.tmp", id);
	assert_int_equal(queue_tmp_recover(dfd, name, &why, &busy), 0);
	assert_false(busy);
	snprintf(path, sizeof(path), "%s/incoming/%s", qdir, name);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	/* sealed, but a block never made it to the disk: left alone */
	tmp_left(true, id);
	snprintf(name, sizeof(name), "%s.tmp", id);
	snprintf(path, sizeof(path), "%s/incoming/%s", qdir, name);
	back = queue_env_new();
	assert_int_equal(verify_path(path, &why, back), 0);
	flip(path, (off_t)back->content_offset + 3);
	queue_env_free(&back);
	assert_int_equal(queue_tmp_recover(dfd, name, &why, &busy), 0);
	assert_string_equal(why, "check sum mismatch");
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	/* old bytes of another message (a recycled file): left alone */
	write_message(env, other, sizeof(other));
	snprintf(path, sizeof(path), "%s/incoming/0123456789AB.tmp", qdir);
	assert_int_equal(rename(other, path), 0);
	assert_int_equal(queue_tmp_recover(dfd, "0123456789AB.tmp", &why,
	    &busy), 0);
	assert_string_equal(why, "the envelope is another message's");
	unlink(path);

	/* not a temporary file's name */
	assert_int_equal(queue_tmp_recover(dfd, "../x.tmp", &why, &busy), 0);
	assert_int_equal(count_files(QUEUE_INCOMING), 0);
	close(dfd);
	queue_env_free(&env);
}

/* a file written before check sums: read as it is, nothing to verify */
static void
test_no_check(void **state)
{
	struct queue_env *back = queue_env_new();
	struct buf b;
	char path[256];
	const char *why = NULL;
	bool busy;
	int fd, dfd;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(attr_put_str(&b, "v", "1"), 0);
	assert_int_equal(attr_put_str(&b, "id", "0123456789AC"), 0);
	assert_int_equal(attr_put_uint(&b, "arrival", 1700000000), 0);
	assert_int_equal(attr_put_str(&b, "sender", "a@example.org"), 0);
	assert_int_equal(attr_put_str(&b, "rcpt", "b@example.test"), 0);
	assert_int_equal(attr_put(&b, "content_size", "0000000000005", 13), 0);
	assert_int_equal(attr_end(&b), 0);
	assert_int_equal(buf_append(&b, "hi\r\n\n", 5), 0);
	snprintf(path, sizeof(path), "%s/incoming/0123456789AC.tmp", qdir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	close(fd);
	assert_int_equal(verify_path(path, &why, back), 0);
	assert_false(back->has_check);
	assert_int_equal(back->content_size, 5);
	/* as an ID.tmp it proves nothing: not recovered */
	dfd = incoming_fd();
	assert_int_equal(queue_tmp_recover(dfd, "0123456789AC.tmp", &why,
	    &busy), 0);
	assert_string_equal(why, "no check sum");
	close(dfd);
	unlink(path);
	buf_deinit(&b);
	queue_env_free(&back);
}

static void
test_write_error(void **state)
{
	struct queue_env *env = sample_env();
	struct queue_writer *w;
	struct reply r;
	char bad[128];

	(void)state;
	/* no incoming/ directory: a 451 for the client, nothing left */
	snprintf(bad, sizeof(bad), "%s/nonexistent", qdir);
	w = queue_writer_new(bad, env, &r);
	assert_null(w);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	queue_env_free(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_ids_across_processes),
		cmocka_unit_test(test_deliver_req),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_large_envelope),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_large_content),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_recycle),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_large),
		cmocka_unit_test(test_tmp_recover),
		cmocka_unit_test(test_no_check),
	};

	return cmocka_run_group_tests_name("queue", tests, setup, teardown);
}
