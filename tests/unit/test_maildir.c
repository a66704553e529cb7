/*
 * test_maildir - Maildir++ delivery and quota: hostile folder names and
 * maildirsize files first, then creation on first delivery and modes,
 * sub-folders, unique names, sizes in names, CRLF to LF (also across
 * buffer boundaries), binary content, 5 MB, truncated queue files,
 * quota limits and maildirsize upkeep, ENOTDIR and a real ENOSPC on a
 * small tmpfs (mounted in a private mount namespace).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "maildir.h"

static char root[64];
static char box[160];

static int
setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/test_maildir.XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(box, sizeof(box), "%s/example.test/demo/Maildir", root);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* src_new - a "queue file": 37 bytes of envelope, then the content */
static int
src_new(const void *content, size_t len, uint64_t *off_r)
{
	char p[128];
	static const char env[] = "v=1\nid=ABCDEFGHJKMN\nsender=x@y.test\n\n";
	int fd;

	snprintf(p, sizeof(p), "%s/src.XXXXXX", root);
	fd = mkstemp(p);
	assert_true(fd >= 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(write(fd, env, sizeof(env) - 1),
	    (ssize_t)sizeof(env) - 1);
	if (len > 0)
		assert_int_equal(write(fd, content, len), (ssize_t)len);
	*off_r = sizeof(env) - 1;
	return fd;
}

static int
deliver(const char *path, const char *folder, const char *prefix,
    const void *content, size_t len, const struct maildir_quota *q,
    struct maildir_result *res, struct reply *r)
{
	struct maildir_msg m;
	int fd, rc;

	memset(&m, 0, sizeof(m));
	m.log_id = "ABCDEFGHJKMN";
	m.prefix = prefix;
	m.prefix_len = prefix != NULL ? strlen(prefix) : 0;
	fd = src_new(content, len, &m.offset);
	m.fd = fd;
	m.size = len;
	rc = maildir_deliver(path, folder, &m, q, res, r);
	close(fd);
	return rc;
}

static char *
slurp(const char *path, size_t *len_r)
{
	struct stat st;
	char *data;
	int fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	assert_int_equal(read(fd, data, (size_t)st.st_size + 1),
	    (ssize_t)st.st_size);
	data[st.st_size] = '\0';
	close(fd);
	*len_r = (size_t)st.st_size;
	return data;
}

static void
spew(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)),
	    (ssize_t)strlen(text));
	close(fd);
}

static int
count_files(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
count_in(const char *dir, const char *sub)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	return count_files(p);
}

static void
assert_dir_0700(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void
assert_content(const struct maildir_result *res, const void *want,
    size_t wantlen)
{
	size_t len;
	char *got = slurp(res->path, &len);

	assert_int_equal(len, wantlen);
	assert_memory_equal(got, want, wantlen);
	assert_int_equal(res->size, wantlen);
	free(got);
}

/* ---- hostile input first ---- */

static void
test_bad_folder_names(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", ".Sent", "Sent.", "a..b", "a/b", "../x",
		"/etc", "x\n", "x\001y", "tab\there", "del\177",
	};
	char longname[300];
	struct maildir_result res;
	struct reply r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(maildir_folder_ok(bad[i]), 0);
		assert_int_equal(deliver(box, bad[i], NULL, "x\r\n", 3, NULL,
		    &res, &r), -1);
		assert_int_equal(r.code, 451);
		assert_string_equal(r.dsn, "4.3.0");
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(maildir_folder_ok(longname), 0);
	longname[MAILDIR_FOLDER_MAX] = '\0';
	assert_int_equal(maildir_folder_ok(longname), 1);
	assert_int_equal(maildir_folder_ok(NULL), 0);
	assert_int_equal(maildir_folder_ok("Lists.posta"), 1);
	assert_int_equal(maildir_folder_ok("Caf\xc3\xa9 &AOk-"), 1);
	/* nothing was created for the refused ones */
	assert_int_equal(count_files(root), 0);
}

static void
test_quota_parse_hostile(void **state)
{
	static const struct {
		const char *text;
		size_t len;	/* 0 = strlen */
	} bad[] = {
		{ "", 0 },
		{ "1000S", 0 },			/* no LF at all */
		{ "1000S\n12 1", 0 },		/* torn last line */
		{ "1000X\n", 0 },
		{ "S\n", 0 },
		{ "S1000\n", 0 },
		{ "1000S,\n", 0 },
		{ ",1000S\n", 0 },
		{ "-5S\n", 0 },
		{ "1000S,,5C\n", 0 },
		{ "99999999999999999999S\n", 0 },	/* > INT64_MAX */
		{ "1000S\n\n", 0 },		/* empty change line */
		{ "1000S\n12\n", 0 },		/* one field */
		{ "1000S\n12 1 1\n", 0 },	/* three fields */
		{ "1000S\n+12 1\n", 0 },
		{ "1000S\n12 x\n", 0 },
		{ "1000S\n0x10 1\n", 0 },
		{ "1000S\n1- 1\n", 0 },
		{ "1000S\n- 1\n", 0 },
		{ "1000S\n12\0 1\n", 13 },	/* NUL inside a number */
		{ "1000S\n12 1\r\n", 0 },
		{ "1000S\n-5 -1\n", 0 },		/* negative total */
		{ "1000S\n10 1\n-11 -1\n", 0 },
		{ "1000S\n9223372036854775807 1\n1 1\n", 0 },	/* overflow */
		{ "1000S\n-9223372036854775808 1\n-1 1\n", 0 },
		{ "1000S\n123456789012345678901234567890 1\n", 0 },
	};
	struct maildir_quota_usage u;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].text);
		u.limit_bytes = 777;
		if (maildir_quota_parse(bad[i].text, len, &u) != -1)
			fail_msg("accepted bad maildirsize #%zu", i);
		assert_int_equal(u.limit_bytes, 777);	/* untouched */
	}
}

static void
test_quota_parse_good(void **state)
{
	struct maildir_quota_usage u;
	const char *t;

	(void)state;
	t = "1000000S,500C\n";
	assert_int_equal(maildir_quota_parse(t, strlen(t), &u), 0);
	assert_int_equal(u.limit_bytes, 1000000);
	assert_int_equal(u.limit_count, 500);
	assert_int_equal(u.bytes, 0);
	assert_int_equal(u.nlines, 0);

	/* Courier pads its lines; Dovecot does not; deletions are negative */
	t = "500C,2000S\n    1234      3\n100 1\n\t-34 -1 \n";
	assert_int_equal(maildir_quota_parse(t, strlen(t), &u), 0);
	assert_int_equal(u.limit_bytes, 2000);
	assert_int_equal(u.limit_count, 500);
	assert_int_equal(u.bytes, 1300);
	assert_int_equal(u.count, 3);
	assert_int_equal(u.nlines, 3);

	t = "\n5 1\n";	/* no limits at all */
	assert_int_equal(maildir_quota_parse(t, strlen(t), &u), 0);
	assert_int_equal(u.limit_bytes, 0);
	assert_int_equal(u.limit_count, 0);
	assert_int_equal(u.bytes, 5);

	t = "7C\n9223372036854775807 0\n";
	assert_int_equal(maildir_quota_parse(t, strlen(t), &u), 0);
	assert_int_equal(u.limit_count, 7);
	assert_true(u.bytes == INT64_MAX);
}

static void
test_enotdir(void **state)
{
	char file[128], path[192];
	struct maildir_result res;
	struct reply r;

	(void)state;
	snprintf(file, sizeof(file), "%s/plainfile", root);
	spew(file, "not a directory\n");
	snprintf(path, sizeof(path), "%s/domain/user/Maildir", file);
	assert_int_equal(deliver(path, NULL, NULL, "x\r\n", 3, NULL, &res,
	    &r), -1);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	/* the file is only a mail root: the text shows no path */
	assert_null(strstr(r.text, root));
	snprintf(path, sizeof(path), "%s/Maildir", file);
	assert_int_equal(deliver(path, "Sent", NULL, "x\r\n", 3, NULL, &res,
	    &r), -1);
	assert_int_equal(r.code, 451);
}

static void
test_truncated_source(void **state)
{
	struct maildir_msg m;
	struct maildir_result res;
	struct reply r;
	int fd;

	(void)state;
	memset(&m, 0, sizeof(m));
	fd = src_new("Subject: x\r\n\r\nshort\r\n", 21, &m.offset);
	m.fd = fd;
	m.size = 1000;		/* the envelope promises more */
	assert_int_equal(maildir_deliver(box, NULL, &m, NULL, &res, &r), -1);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_int_equal(count_in(box, "tmp"), 0);
	assert_int_equal(count_in(box, "new"), 0);
	/* a bad fd too */
	m.fd = -1;
	assert_int_equal(maildir_deliver(box, NULL, &m, NULL, &res, &r), -1);
	assert_int_equal(r.code, 451);
	assert_int_equal(count_in(box, "tmp"), 0);
	close(fd);
}

/* ---- delivery ---- */

static void
test_first_delivery(void **state)
{
	static const char prefix[] =
	    "Return-Path: <x@y.test>\r\nDelivered-To: demo@example.test\r\n";
	static const char body[] = "Subject: hi\r\n\r\nhello\r\n";
	static const char want[] =
	    "Return-Path: <x@y.test>\nDelivered-To: demo@example.test\n"
	    "Subject: hi\n\nhello\n";
	struct maildir_result res;
	struct reply r;
	struct stat st;
	regex_t re;
	regmatch_t m[2];
	char p[256], pid[32];

	(void)state;
	assert_int_equal(deliver(box, NULL, prefix, body, strlen(body), NULL,
	    &res, &r), 0);
	assert_dir_0700(box);
	snprintf(p, sizeof(p), "%s/example.test/demo", root);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/tmp", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/new", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/cur", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/maildirfolder", box);
	assert_int_equal(access(p, F_OK), -1);	/* INBOX is no folder */
	snprintf(p, sizeof(p), "%s/maildirsize", box);
	assert_int_equal(access(p, F_OK), -1);	/* no quota, no file */

	assert_int_equal(count_in(box, "tmp"), 0);
	assert_int_equal(count_in(box, "new"), 1);
	assert_int_equal(count_in(box, "cur"), 0);
	snprintf(p, sizeof(p), "%s/new/%s", box, res.name);
	assert_string_equal(p, res.path);
	assert_int_equal(stat(res.path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 1);	/* tmp/ link is gone */
	assert_content(&res, want, strlen(want));
	assert_int_equal(res.vsize, strlen(want) + 5);

	assert_int_equal(regcomp(&re, "^[0-9]+\\.M[0-9]+P([0-9]+)Q[0-9]+\\."
	    "[^/:]+,S=[0-9]+,W=[0-9]+$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, res.name, 2, m, 0), 0);
	regfree(&re);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	assert_int_equal(m[1].rm_eo - m[1].rm_so, strlen(pid));
	assert_memory_equal(res.name + m[1].rm_so, pid, strlen(pid));

	/* the second delivery finds the box in place */
	assert_int_equal(deliver(box, NULL, NULL, body, strlen(body), NULL,
	    &res, &r), 0);
	assert_int_equal(count_in(box, "new"), 2);
}

static void
test_subfolder(void **state)
{
	struct maildir_result res;
	struct reply r;
	struct stat st;
	char p[256];

	(void)state;
	assert_int_equal(deliver(box, "Lists.posta", NULL, "a\r\n", 3, NULL,
	    &res, &r), 0);
	/* the INBOX is made first: a folder lives inside a Maildir */
	snprintf(p, sizeof(p), "%s/new", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/.Lists.posta", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/.Lists.posta/tmp", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/.Lists.posta/new", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/.Lists.posta/cur", box);
	assert_dir_0700(p);
	snprintf(p, sizeof(p), "%s/.Lists.posta/maildirfolder", box);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(count_in(box, "new"), 0);
	assert_int_equal(count_in(box, ".Lists.posta/new"), 1);
	assert_non_null(strstr(res.path, "/.Lists.posta/new/"));
	assert_content(&res, "a\n", 2);

	/* a second folder in an existing Maildir */
	assert_int_equal(deliver(box, "Sent", NULL, "b\r\n", 3, NULL, &res,
	    &r), 0);
	assert_int_equal(count_in(box, ".Sent/new"), 1);
	snprintf(p, sizeof(p), "%s/.Sent/maildirfolder", box);
	assert_int_equal(access(p, F_OK), 0);
	/* and the INBOX still works */
	assert_int_equal(deliver(box, NULL, NULL, "c\r\n", 3, NULL, &res,
	    &r), 0);
	assert_int_equal(count_in(box, "new"), 1);
}

static void
test_unique_names(void **state)
{
	struct maildir_result res;
	struct reply r;
	char p[256];
	pid_t kids[4];
	int i, k, st;

	(void)state;
	for (i = 0; i < 1000; i++)
		assert_int_equal(deliver(box, NULL, NULL, "x\r\n", 3, NULL,
		    &res, &r), 0);
	assert_int_equal(count_in(box, "new"), 1000);
	assert_int_equal(count_in(box, "tmp"), 0);

	/* concurrent processes share the counter's value, not the pid */
	snprintf(p, sizeof(p), "%s/other/Maildir", root);
	for (k = 0; k < 4; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			for (i = 0; i < 100; i++)
				if (deliver(p, NULL, NULL, "y\r\n", 3, NULL,
				    &res, &r) < 0)
					_exit(1);
			_exit(0);
		}
	}
	for (k = 0; k < 4; k++) {
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(count_in(p, "new"), 400);
}

static void
test_hostname_escaped(void **state)
{
	struct maildir_result res;
	struct reply r;

	(void)state;
	maildir_set_hostname("mx/1:2.example");
	assert_int_equal(deliver(box, NULL, NULL, "x\r\n", 3, NULL, &res,
	    &r), 0);
	maildir_set_hostname(NULL);
	assert_non_null(strstr(res.name, ".mx\\0571\\0722.example,S=2,W=3"));
	assert_null(strchr(res.name, ':'));
	assert_int_equal(access(res.path, F_OK), 0);

	assert_int_equal(deliver(box, NULL, NULL, "x\r\n", 3, NULL, &res,
	    &r), 0);
	assert_null(strstr(res.name, "mx\\057"));
}

static void
test_size_in_name(void **state)
{
	static const char body[] = "A: b\r\n\r\nline\r\nbare\nlf\r\n";
	struct maildir_result res;
	struct reply r;
	struct stat st;
	char want[64], *data;
	size_t len, i, nlf = 0;

	(void)state;
	assert_int_equal(deliver(box, NULL, "X-P: 1\r\n", body, strlen(body),
	    NULL, &res, &r), 0);
	assert_int_equal(stat(res.path, &st), 0);
	assert_int_equal(res.size, (uint64_t)st.st_size);
	data = slurp(res.path, &len);
	for (i = 0; i < len; i++)
		nlf += data[i] == '\n';
	free(data);
	assert_int_equal(nlf, 6);
	assert_int_equal(res.vsize, res.size + nlf);
	snprintf(want, sizeof(want), ",S=%lld,W=%llu", (long long)st.st_size,
	    (unsigned long long)(st.st_size + nlf));
	assert_int_equal(strlen(res.name) - strlen(want),
	    strstr(res.name, want) - res.name);
}

static void
test_crlf(void **state)
{
	static const struct {
		const char *prefix, *in, *out;
	} t[] = {
		{ NULL, "a\r\nb\r\n", "a\nb\n" },
		{ NULL, "lone\rcr", "lone\rcr" },
		{ NULL, "lone\nlf", "lone\nlf" },
		{ NULL, "cr cr lf\r\r\n", "cr cr lf\r\n" },
		{ NULL, "lf cr\n\r", "lf cr\n\r" },
		{ NULL, "end\r", "end\r" },
		{ NULL, "\r", "\r" },
		{ NULL, "\r\n", "\n" },
		{ NULL, "\n\r\r\r\n\n", "\n\r\r\n\n" },
		{ NULL, "", "" },
		{ "P: 1\r\n", "", "P: 1\n" },
		{ "P: lf\n", "b\r\n", "P: lf\nb\n" },
		/* a CRLF split between our header lines and the content */
		{ "P: split\r", "\nb\r\n", "P: split\nb\n" },
		{ "P: cr\r", "b", "P: cr\rb" },
	};
	struct maildir_result res;
	struct reply r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(deliver(box, NULL, t[i].prefix, t[i].in,
		    strlen(t[i].in), NULL, &res, &r), 0);
		assert_content(&res, t[i].out, strlen(t[i].out));
	}
}

static void
test_crlf_across_buffers(void **state)
{
	const size_t n = 3 * 64 * 1024 + 7;
	struct maildir_result res;
	struct reply r;
	char *in = malloc(n), *want = malloc(n);
	size_t i, w = 0;

	(void)state;
	/* CRLF on every 64 KiB boundary of the reads, bare CRs next to them */
	memset(in, 'x', n);
	for (i = 64 * 1024; i < n; i += 64 * 1024) {
		in[i - 1] = '\r';
		in[i] = '\n';
		in[i + 2] = '\r';
	}
	in[n - 1] = '\r';
	for (i = 0; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
			continue;
		want[w++] = in[i];
	}
	assert_int_equal(deliver(box, NULL, NULL, in, n, NULL, &res, &r), 0);
	assert_content(&res, want, w);
	assert_int_equal(res.vsize, w + 3);
	free(in);
	free(want);
}

static void
test_binary(void **state)
{
	struct maildir_result res;
	struct reply r;
	char in[4 * 256];
	size_t i, n = 0;

	(void)state;
	/* every byte value but CR, NUL and 8-bit among them, exactly kept */
	for (i = 0; i < sizeof(in); i++)
		if ((i & 0xff) != '\r')
			in[n++] = (char)(i & 0xff);
	assert_int_equal(deliver(box, NULL, NULL, in, n, NULL, &res, &r), 0);
	assert_content(&res, in, n);
}

static void
test_large(void **state)
{
	const size_t n = 5 * 1024 * 1024;
	struct maildir_result res;
	struct reply r;
	char *in = malloc(n), *want = malloc(n);
	size_t i, w = 0, lines = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		if (i % 78 == 76)
			in[i] = '\r';
		else if (i % 78 == 77)
			in[i] = '\n';
		else
			in[i] = (char)('A' + (i * 7) % 57);
	}
	for (i = 0; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
			continue;
		lines += in[i] == '\n';
		want[w++] = in[i];
	}
	assert_int_equal(deliver(box, NULL, NULL, in, n, NULL, &res, &r), 0);
	assert_content(&res, want, w);
	assert_int_equal(res.vsize, w + lines);
	assert_int_equal(res.vsize, n);		/* every LF was a CRLF */
	free(in);
	free(want);
}

/* ---- quota ---- */

static void
quota_file(const char *text, time_t age)
{
	struct timeval tv[2];
	char p[256];

	snprintf(p, sizeof(p), "%s/maildirsize", box);
	spew(p, text);
	if (age > 0) {
		gettimeofday(&tv[0], NULL);
		tv[0].tv_sec -= age;
		tv[1] = tv[0];
		assert_int_equal(utimes(p, tv), 0);
	}
}

static void
quota_read(struct maildir_quota_usage *u)
{
	char p[256], *data;
	size_t len;

	snprintf(p, sizeof(p), "%s/maildirsize", box);
	data = slurp(p, &len);
	assert_int_equal(maildir_quota_parse(data, len, u), 0);
	free(data);
}

static void
make_box(void)
{
	struct maildir_result res;
	struct reply r;
	char p[256];

	assert_int_equal(deliver(box, NULL, NULL, "", 0, NULL, &res, &r), 0);
	assert_int_equal(unlink(res.path), 0);
	snprintf(p, sizeof(p), "%s/maildirsize", box);
	assert_int_equal(access(p, F_OK), -1);
}

static void
test_quota_boundary(void **state)
{
	struct maildir_quota_usage u;
	struct reply r;

	(void)state;
	make_box();
	quota_file("1000S\n900 9\n", 0);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 99, &r), 1);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 100, &r), 1);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 101, &r), 0);
	assert_int_equal(r.code, 452);
	assert_string_equal(r.dsn, "4.2.2");
	assert_string_equal(r.text, "Mailbox full");
	/* a huge message must not wrap around */
	assert_int_equal(maildir_quota_check(box, 1000, 0, UINT64_MAX, &r),
	    0);
	/* already over */
	quota_file("1000S\n1001 9\n", 0);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 0, &r), 0);
	/* no limit: never over, file untouched */
	assert_int_equal(maildir_quota_check(box, 0, 0, UINT64_MAX, &r), 1);
	quota_read(&u);
	assert_int_equal(u.bytes, 1001);
}

static void
test_quota_deliver(void **state)
{
	struct maildir_quota q = { 0, 0 };
	struct maildir_quota_usage u;
	struct maildir_result res;
	struct reply r;
	char body[200];
	uint64_t first;

	(void)state;
	memset(body, 'b', sizeof(body));
	body[sizeof(body) - 2] = '\r';
	body[sizeof(body) - 1] = '\n';
	/* 199 bytes on disk per message: the limit fits exactly three */
	q.bytes = 3 * 199;
	assert_int_equal(deliver(box, NULL, NULL, body, sizeof(body), &q,
	    &res, &r), 0);
	first = res.size;
	assert_int_equal(first, 199);
	/* created by the check, then the delivery was appended */
	quota_read(&u);
	assert_int_equal(u.limit_bytes, 3 * 199);
	assert_int_equal(u.limit_count, 0);
	assert_int_equal(u.bytes, 199);
	assert_int_equal(u.count, 1);
	assert_int_equal(u.nlines, 2);
	assert_int_equal(deliver(box, NULL, NULL, body, sizeof(body), &q,
	    &res, &r), 0);
	assert_int_equal(deliver(box, NULL, NULL, body, sizeof(body), &q,
	    &res, &r), 0);
	quota_read(&u);
	assert_int_equal(u.bytes, 3 * 199);
	assert_int_equal(u.count, 3);

	/* exactly full: the next byte is too much, and nothing is left */
	assert_int_equal(deliver(box, NULL, NULL, "x", 1, &q, &res, &r), -1);
	assert_int_equal(r.code, 452);
	assert_string_equal(r.dsn, "4.2.2");
	assert_int_equal(count_in(box, "new"), 3);
	assert_int_equal(count_in(box, "tmp"), 0);
	quota_read(&u);
	assert_int_equal(u.bytes, 3 * 199);

	/* a sub-folder counts against the same quota */
	assert_int_equal(deliver(box, "Sent", NULL, "x", 1, &q, &res, &r),
	    -1);
	assert_int_equal(r.code, 452);
	assert_int_equal(count_in(box, ".Sent/new"), 0);
	assert_int_equal(count_in(box, ".Sent/tmp"), 0);

	/* expunge one (as imapd would) and it fits again */
	assert_int_equal(unlink(res.path), 0);
	assert_int_equal(maildir_quota_add(box, -199, -1), 0);
	assert_int_equal(deliver(box, "Sent", NULL, body, sizeof(body), &q,
	    &res, &r), 0);
	quota_read(&u);
	assert_int_equal(u.bytes, 3 * 199);
	assert_int_equal(u.count, 3);
}

static void
test_quota_count(void **state)
{
	struct maildir_quota q = { 0, 2 };
	struct maildir_quota_usage u;
	struct maildir_result res;
	struct reply r;

	(void)state;
	assert_int_equal(deliver(box, NULL, NULL, "a\r\n", 3, &q, &res, &r),
	    0);
	assert_int_equal(deliver(box, NULL, NULL, "b\r\n", 3, &q, &res, &r),
	    0);
	assert_int_equal(deliver(box, NULL, NULL, "c\r\n", 3, &q, &res, &r),
	    -1);
	assert_int_equal(r.code, 452);
	assert_string_equal(r.dsn, "4.2.2");
	quota_read(&u);
	assert_int_equal(u.limit_count, 2);
	assert_int_equal(u.limit_bytes, 0);
	assert_int_equal(u.count, 2);
	/* both limits at once: the file says so, in Courier's order */
	q.bytes = 100000;
	q.count = 3;
	assert_int_equal(deliver(box, NULL, NULL, "c\r\n", 3, &q, &res, &r),
	    0);
	quota_read(&u);
	assert_int_equal(u.limit_bytes, 100000);
	assert_int_equal(u.limit_count, 3);
	assert_int_equal(u.count, 3);
	assert_int_equal(u.bytes, 6);
}

static void
test_quota_recalc(void **state)
{
	struct maildir_quota q = { 100000, 0 };
	struct maildir_quota_usage u;
	struct maildir_result res;
	struct reply r;
	char p[256], big[6000];
	size_t off;

	(void)state;
	/* three without quota: no maildirsize yet */
	assert_int_equal(deliver(box, NULL, NULL, "aaaa\r\n", 6, NULL, &res,
	    &r), 0);
	assert_int_equal(deliver(box, "Sent", NULL, "bbbbbbbb\r\n", 10, NULL,
	    &res, &r), 0);
	assert_int_equal(deliver(box, "Lists.posta", NULL, "c", 1, NULL,
	    &res, &r), 0);
	/* a read message without ,S= (stat is used) and dot-files ignored */
	snprintf(p, sizeof(p), "%s/cur/1.M1P1Q1.h:2,S", box);
	spew(p, "0123456789");
	snprintf(p, sizeof(p), "%s/cur/.hidden", box);
	spew(p, "0123456789");
	/* tmp/ is not mail yet */
	snprintf(p, sizeof(p), "%s/tmp/1.M2P2Q2.h", box);
	spew(p, "0123456789");
	/* a name that lies about its size wins over stat, as in Courier */
	snprintf(p, sizeof(p), "%s/.Sent/cur/2.M1P1Q1.h,S=1000:2,S", box);
	spew(p, "0123456789");

	/* missing: built from the files */
	assert_int_equal(maildir_quota_check(box, q.bytes, 0, 1, &r), 1);
	quota_read(&u);
	assert_int_equal(u.limit_bytes, 100000);
	assert_int_equal(u.bytes, 5 + 9 + 1 + 10 + 1000);
	assert_int_equal(u.count, 5);

	/* a different limit configured: rebuilt with the new one */
	quota_file("5S,1C\n1 1\n", 0);
	assert_int_equal(maildir_quota_check(box, 200000, 0, 1, &r), 1);
	quota_read(&u);
	assert_int_equal(u.limit_bytes, 200000);
	assert_int_equal(u.limit_count, 0);
	assert_int_equal(u.bytes, 1025);
	assert_int_equal(u.nlines, 1);

	/* garbage: rebuilt */
	quota_file("200000S\nthis is not a number\n", 0);
	assert_int_equal(maildir_quota_check(box, 200000, 0, 1, &r), 1);
	quota_read(&u);
	assert_int_equal(u.bytes, 1025);

	/* too big (over 5120 bytes): rebuilt */
	off = (size_t)snprintf(big, sizeof(big), "200000S\n");
	while (off + 4 < sizeof(big) - 1)
		off += (size_t)snprintf(big + off, sizeof(big) - off,
		    "1 1\n");
	quota_file(big, 0);
	assert_int_equal(maildir_quota_check(box, 200000, 0, 1, &r), 1);
	quota_read(&u);
	assert_int_equal(u.bytes, 1025);
	assert_int_equal(u.nlines, 1);

	/* explicit rebuild */
	quota_file("200000S\n1 1\n", 0);
	assert_int_equal(maildir_quota_recalc(box, &q, &u), 0);
	assert_int_equal(u.bytes, 1025);
	quota_read(&u);
	assert_int_equal(u.bytes, 1025);
	assert_int_equal(u.limit_bytes, 100000);
	assert_int_equal(count_in(box, "tmp"), 1);	/* only our own file */
}

static void
test_quota_stale(void **state)
{
	struct maildir_quota_usage u;
	struct reply r;

	(void)state;
	make_box();
	/* a fresh file that says "full" is believed ... */
	quota_file("1000S\n1000 10\n", 0);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 1, &r), 0);
	quota_read(&u);
	assert_int_equal(u.bytes, 1000);
	/* ... an old one is checked against the mailbox (which is empty) */
	quota_file("1000S\n1000 10\n", MAILDIR_QUOTA_STALE + 60);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 1, &r), 1);
	quota_read(&u);
	assert_int_equal(u.bytes, 0);
	assert_int_equal(u.count, 0);
	/* an old file with room is simply used */
	quota_file("1000S\n10 1\n", MAILDIR_QUOTA_STALE + 60);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 1, &r), 1);
	quota_read(&u);
	assert_int_equal(u.bytes, 10);
}

static void
test_quota_no_box(void **state)
{
	struct maildir_quota q = { 10, 0 };
	struct maildir_quota_usage u;
	struct reply r;

	(void)state;
	/* nothing delivered yet: empty, and nothing is created */
	assert_int_equal(maildir_quota_check(box, 10, 0, 10, &r), 1);
	assert_int_equal(maildir_quota_check(box, 10, 0, 11, &r), 0);
	assert_int_equal(maildir_quota_get(box, &q, 0, &u), 0);
	assert_int_equal(u.bytes, 0);
	assert_int_equal(maildir_quota_add(box, 5, 1), 0);
	assert_int_equal(count_files(root), 0);
}

static void
test_quota_unreadable(void **state)
{
	struct reply r;
	char p[256];

	(void)state;
	make_box();
	/* maildirsize is a directory: an I/O error, not "fits" */
	snprintf(p, sizeof(p), "%s/maildirsize", box);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(maildir_quota_check(box, 1000, 0, 1, &r), -1);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_int_equal(maildir_quota_add(box, 1, 1), -1);
}

/* ---- a full disk ---- */

static void
test_enospc(void **state)
{
	struct maildir_result res;
	struct reply r;
	char mnt[128], path[192];
	const size_t n = 200 * 1024;
	char *big = malloc(n);

	(void)state;
	/* mounting needs root; the suite runs as root (issue 3) */
	if (geteuid() != 0)
		fail_msg("test_enospc must run as root to mount a tmpfs");
	/* a private mount namespace: nothing leaks, even on a crash */
	assert_int_equal(unshare(CLONE_NEWNS), 0);
	assert_int_equal(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL),
	    0);
	snprintf(mnt, sizeof(mnt), "%s/small", root);
	assert_int_equal(mkdir(mnt, 0700), 0);
	assert_int_equal(mount("tmpfs", mnt, "tmpfs", 0, "size=64k"), 0);
	snprintf(path, sizeof(path), "%s/d/u/Maildir", mnt);

	memset(big, 'z', n);
	assert_int_equal(deliver(path, NULL, NULL, big, n, NULL, &res, &r),
	    -1);
	assert_int_equal(r.code, 452);
	assert_string_equal(r.dsn, "4.3.1");
	assert_int_equal(count_in(path, "tmp"), 0);
	assert_int_equal(count_in(path, "new"), 0);
	/* the space was given back: a small one still goes in */
	assert_int_equal(deliver(path, NULL, NULL, big, 1000, NULL, &res, &r),
	    0);
	assert_int_equal(count_in(path, "new"), 1);
	assert_int_equal(umount(mnt), 0);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_folder_names, setup,
		    teardown),
		cmocka_unit_test(test_quota_parse_hostile),
		cmocka_unit_test(test_quota_parse_good),
		cmocka_unit_test_setup_teardown(test_enotdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_source, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_first_delivery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subfolder, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unique_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hostname_escaped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_size_in_name, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crlf_across_buffers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_boundary, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quota_deliver, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quota_count, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quota_recalc, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quota_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quota_no_box, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quota_unreadable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
