/*
 * test_file - whole-file readers (bounds, missing files, directories,
 * FIFOs, files that change while read), the reload stamp, dir fsync
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"


static int
group_setup(void **state)
{
	return tmpdir_make("file");
}

static int
group_teardown(void **state)
{
	return tmpdir_remove();
}

/* put_n - a file of n bytes 'x' */
static const char *
put_n(const char *name, size_t n)
{
	char *d = malloc(n + 1);
	const char *path;

	assert_non_null(d);
	memset(d, 'x', n);
	path = tmpdir_put(name, d, n);
	free(d);
	return path;
}

static void
expect_errs(struct buf *errs, const char *path, const char *msg)
{
	struct buf want;

	buf_init(&want, 0);
	assert_int_equal(buf_printf(&want, "%s: %s\n", path, msg), 0);
	assert_string_equal(buf_cstr(errs), buf_cstr(&want));
	buf_deinit(&want);
}

/* ---- hostile input first ------------------------------------------- */

static void
test_over_limit(void **state)
{
	struct buf out, errs;
	struct stat st, poison;
	const char *path = put_n("big", 1001);

	(void)state;
	memset(&poison, 0xa5, sizeof(poison));
	buf_init(&out, 0);
	buf_init(&errs, 0);
	assert_int_equal(file_read_all(path, 1000, 0, &out, &errs), -1);
	expect_errs(&errs, path, "file too large (over 1000 bytes)");
	assert_int_equal(buf_len(&out), 0);

	buf_reset(&errs);
	st = poison;
	assert_int_equal(file_read_stable(path, 1000, &out, &st, &errs), -1);
	expect_errs(&errs, path, "file too large (over 1000 bytes)");
	assert_int_equal(buf_len(&out), 0);
	assert_memory_equal(&st, &poison, sizeof(st));	/* untouched */

	/* the buffer's own limit counts too, reported with max */
	buf_deinit(&out);
	buf_init(&out, 500);
	buf_reset(&errs);
	assert_int_equal(file_read_all(path, 5000, 0, &out, &errs), -1);
	expect_errs(&errs, path, "file too large (over 5000 bytes)");
	buf_reset(&errs);
	assert_int_equal(file_read_stable(path, 5000, &out, &st, &errs), -1);
	expect_errs(&errs, path, "file too large (over 5000 bytes)");
	assert_int_equal(buf_len(&out), 0);

	/* exactly max is fine, over a chunk boundary too */
	buf_deinit(&out);
	buf_init(&out, 0);
	path = put_n("edge", 40000);
	buf_reset(&errs);
	assert_int_equal(file_read_all(path, 40000, 0, &out, &errs), 1);
	assert_int_equal(buf_len(&out), 40000);
	assert_int_equal(file_read_stable(path, 40000, &out, &st, &errs), 0);
	assert_int_equal(buf_len(&out), 40000);
	assert_int_equal(st.st_size, 40000);
	assert_int_equal(file_read_all(path, 39999, 0, &out, &errs), -1);
	assert_int_equal(buf_len(&out), 0);
	assert_int_equal(file_read_stable(path, 39999, &out, &st, &errs), -1);
	buf_deinit(&out);
	buf_deinit(&errs);
}

static void
test_missing(void **state)
{
	struct buf out, errs;
	struct stat st;
	char path[256], msg[256];

	(void)state;
	(void)snprintf(path, sizeof(path), "%s", tmpdir_path("nosuch"));
	buf_init(&out, 0);
	buf_init(&errs, 0);
	(void)buf_append(&out, "stale", 5);
	assert_int_equal(file_read_all(path, 100, 0, &out, &errs), -1);
	(void)snprintf(msg, sizeof(msg), "cannot open: %s", strerror(ENOENT));
	expect_errs(&errs, path, msg);
	assert_int_equal(buf_len(&out), 0);

	/* optional: 0, silent */
	buf_reset(&errs);
	assert_int_equal(file_read_all(path, 100, FILE_MISSING_OK, &out,
	    &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	assert_int_equal(buf_len(&out), 0);

	/* optional does not hide other errors */
	assert_int_equal(file_read_all(tmpdir_path("nosuchdir/x"), 100,
	    FILE_MISSING_OK, &out, &errs), 0);
	put_n("afile", 3);
	assert_int_equal(file_read_all(tmpdir_path("afile/x"), 100,
	    FILE_MISSING_OK, &out, &errs), -1);
	(void)snprintf(msg, sizeof(msg), "cannot open: %s", strerror(ENOTDIR));
	expect_errs(&errs, tmpdir_path("afile/x"), msg);

	buf_reset(&errs);
	assert_int_equal(file_read_stable(path, 100, &out, &st, &errs), -1);
	expect_errs(&errs, path, strerror(ENOENT));
	/* errs may be NULL */
	assert_int_equal(file_read_stable(path, 100, &out, &st, NULL), -1);
	assert_int_equal(file_read_all(path, 100, 0, &out, NULL), -1);
	buf_deinit(&out);
	buf_deinit(&errs);
}

static void
test_directory(void **state)
{
	struct buf out, errs;
	struct stat st;
	char msg[256];

	(void)state;
	buf_init(&out, 0);
	buf_init(&errs, 0);
	assert_int_equal(file_read_all(tmpdir, 100, 0, &out, &errs), -1);
	(void)snprintf(msg, sizeof(msg), "read error: %s", strerror(EISDIR));
	expect_errs(&errs, tmpdir, msg);

	buf_reset(&errs);
	assert_int_equal(file_read_stable(tmpdir, 100, &out, &st, &errs), -1);
	expect_errs(&errs, tmpdir, "not a regular file");
	buf_deinit(&out);
	buf_deinit(&errs);
}

static void
test_fifo(void **state)
{
	struct buf out, errs;
	struct stat st;
	const char *path = tmpdir_path("fifo");

	(void)state;
	buf_init(&out, 0);
	buf_init(&errs, 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* no writer: this would block without O_NONBLOCK */
	assert_int_equal(file_read_stable(path, 100, &out, &st, &errs), -1);
	expect_errs(&errs, path, "not a regular file");
	assert_int_equal(unlink(path), 0);
	buf_deinit(&out);
	buf_deinit(&errs);
}

#define CHANGED	"file changed while it was read (replace tables " \
		"atomically: write a copy, then rename it)"

static void
test_changes_while_read_proc(void **state)
{
	struct buf out, errs;
	struct stat st;

	(void)state;
	buf_init(&out, 0);
	buf_init(&errs, 0);
	/* a regular file whose size (0) is not what a read gives */
	assert_int_equal(file_read_stable("/proc/self/status", 1 << 20, &out,
	    &st, &errs), -1);
	expect_errs(&errs, "/proc/self/status", CHANGED);
	assert_int_equal(buf_len(&out), 0);
	/* the lenient reader takes it as it comes */
	assert_int_equal(file_read_all("/proc/self/status", 1 << 20, 0, &out,
	    &errs), 1);
	assert_true(buf_len(&out) > 0);
	buf_deinit(&out);
	buf_deinit(&errs);
}

struct grower {
	const char *path;
	atomic_int stop;
};

static void *
grow(void *arg)
{
	struct grower *g = arg;
	int fd = open(g->path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	while (!atomic_load(&g->stop))
		if (write(fd, "y", 1) != 1)
			break;
	(void)close(fd);
	return NULL;
}

static void
test_changes_while_read(void **state)
{
	struct buf out, errs;
	struct stat st;
	struct grower g;
	pthread_t t;
	int i, rc = 0;

	(void)state;
	buf_init(&out, 0);
	buf_init(&errs, 0);
	g.path = put_n("growing", 256 * 1024);
	atomic_init(&g.stop, 0);
	assert_int_equal(pthread_create(&t, NULL, grow, &g), 0);
	/* another process appends while we read: never a half table */
	for (i = 0; i < 2000; i++) {
		buf_reset(&errs);
		if ((rc = file_read_stable(g.path, 64 << 20, &out, &st,
		    &errs)) < 0)
			break;
		assert_int_equal(buf_len(&out), st.st_size);
	}
	atomic_store(&g.stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rc, -1);
	expect_errs(&errs, g.path, CHANGED);
	assert_int_equal(buf_len(&out), 0);
	buf_deinit(&out);
	buf_deinit(&errs);
}

/* ---- good input ------------------------------------------------------ */

static void
test_read_good(void **state)
{
	static const char data[] = "a\0b\nline two\n";
	struct buf out, errs;
	struct stat st, st2;
	const char *path = tmpdir_put("good", data, sizeof(data) - 1);

	(void)state;
	buf_init(&out, 0);
	buf_init(&errs, 0);
	(void)buf_append(&out, "old", 3);
	assert_int_equal(file_read_all(path, 100, 0, &out, &errs), 1);
	assert_int_equal(buf_len(&out), sizeof(data) - 1);
	assert_memory_equal(out.data, data, sizeof(data) - 1);
	assert_int_equal(out.data[buf_len(&out)], '\0');

	assert_int_equal(file_read_stable(path, 100, &out, &st, &errs), 0);
	assert_int_equal(buf_len(&out), sizeof(data) - 1);
	assert_memory_equal(out.data, data, sizeof(data) - 1);
	assert_int_equal(stat(path, &st2), 0);
	assert_false(file_stat_changed(&st, &st2));
	assert_string_equal(buf_cstr(&errs), "");

	/* empty file */
	path = tmpdir_put("empty", "", 0);
	assert_int_equal(file_read_all(path, 0, 0, &out, &errs), 1);
	assert_int_equal(buf_len(&out), 0);
	assert_int_equal(file_read_stable(path, 0, &out, &st, &errs), 0);
	assert_int_equal(st.st_size, 0);
	buf_deinit(&out);
	buf_deinit(&errs);
}

static void
test_stat_changed(void **state)
{
	struct stat a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.st_dev = 1;
	a.st_ino = 2;
	a.st_size = 3;
	a.st_mtim.tv_sec = 4;
	a.st_mtim.tv_nsec = 5;
	b = a;
	assert_int_equal(file_stat_changed(&a, &b), 0);
	b.st_mode = 0777;	/* not part of the identity */
	b.st_atim.tv_sec = 99;
	assert_int_equal(file_stat_changed(&a, &b), 0);
	b = a;
	b.st_dev++;
	assert_int_equal(file_stat_changed(&a, &b), 1);
	b = a;
	b.st_ino++;
	assert_int_equal(file_stat_changed(&a, &b), 1);
	b = a;
	b.st_size++;
	assert_int_equal(file_stat_changed(&a, &b), 1);
	b = a;
	b.st_mtim.tv_sec++;
	assert_int_equal(file_stat_changed(&a, &b), 1);
	b = a;
	b.st_mtim.tv_nsec++;
	assert_int_equal(file_stat_changed(&a, &b), 1);
}

/* ---- the reload stamp --------------------------------------------- */

static void
test_stamp(void **state)
{
	struct file_stamp fs;
	struct stat st;
	const char *path;

	(void)state;
	memset(&fs, 0, sizeof(fs));
	path = tmpdir_put("tab", "one\n", 4);
	/* never loaded: a change */
	assert_int_equal(file_stamp_check(&fs, path, &st), 1);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(file_stamp_loaded(&fs, &st), 0);
	assert_int_equal(file_stamp_check(&fs, path, &st), 0);
	assert_int_equal(file_stamp_check(&fs, path, &st), 0);

	/* replaced: a change; a failed load is not retried until the next */
	path = tmpdir_put("tab", "two!!\n", 6);
	assert_int_equal(file_stamp_check(&fs, path, &st), 1);
	file_stamp_failed(&fs, &st);
	errno = EINVAL;
	assert_int_equal(file_stamp_check(&fs, path, &st), -1);
	assert_int_equal(errno, 0);
	path = tmpdir_put("tab", "three\n", 6);
	assert_int_equal(file_stamp_check(&fs, path, &st), 1);
	assert_int_equal(file_stamp_loaded(&fs, &st), 1);	/* again */
	assert_int_equal(file_stamp_check(&fs, path, &st), 0);

	/* gone: news once (errno), then quiet; back: a change */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(file_stamp_check(&fs, path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(file_stamp_check(&fs, path, &st), -1);
	assert_int_equal(errno, 0);
	path = tmpdir_put("tab", "three\n", 6);
	assert_int_equal(file_stamp_check(&fs, path, &st), 1);
	assert_int_equal(file_stamp_loaded(&fs, &st), 1);

	/* forget: the same file counts as changed, broken state kept */
	file_stamp_forget(&fs);
	assert_int_equal(file_stamp_check(&fs, path, &st), 1);
	assert_int_equal(file_stamp_loaded(&fs, &st), 0);
	file_stamp_failed(&fs, &st);
	file_stamp_forget(&fs);
	assert_int_equal(file_stamp_check(&fs, path, &st), 1);
	assert_int_equal(file_stamp_loaded(&fs, &st), 1);
	assert_int_equal(file_stamp_check(&fs, path, &st), 0);
}

static void
test_sync_dir(void **state)
{
	(void)state;
	assert_int_equal(file_sync_dir(tmpdir), 0);
	put_n("plain", 1);
	errno = 0;
	assert_int_equal(file_sync_dir(tmpdir_path("plain")), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(file_sync_dir(tmpdir_path("nosuch")), -1);
	assert_int_equal(errno, ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_over_limit),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_changes_while_read_proc),
		cmocka_unit_test(test_changes_while_read),
		cmocka_unit_test(test_read_good),
		cmocka_unit_test(test_stat_changed),
		cmocka_unit_test(test_stamp),
		cmocka_unit_test(test_sync_dir),
	};

	return cmocka_run_group_tests_name("file", tests, group_setup,
	    group_teardown);
}
