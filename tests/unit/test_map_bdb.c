/*
 * test_map_bdb - Berkeley DB tables: map_bdb_build (atomic, refuses bad
 * sources), bdb: lookups, reopen after a rebuild, missing, stale and
 * corrupt .db files, Postfix-style keys with a trailing NUL
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <db.h>

#include "map.h"


static int
group_setup(void **state)
{
	return tmpdir_make("mapb");
}

static int
group_teardown(void **state)
{
	return tmpdir_remove();
}

static const char *
write_text(const char *name, const char *text)
{
	const char *path = tmpdir_path(name);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* count_tmp - files in tmpdir whose name contains ".tmp." */
static int
count_tmp(void)
{
	struct dirent *de;
	DIR *d = opendir(tmpdir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_build_and_lookup(void **state)
{
	struct buf errs;
	struct reply r;
	struct map *m;
	struct stat st;
	char spec[300], *v, src[300];

	(void)state;
	buf_init(&errs, 0);
	(void)snprintf(src, sizeof(src), "%s", write_text("virtual",
	    "# virtual\nDemo@Example.Test demo\n"
	    "list@example.test a@example.test,\n  b@example.test\n"
	    "alias: target\n"));
	assert_int_equal(chmod(src, 0640), 0);
	assert_int_equal(map_bdb_build(src, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	assert_int_equal(stat(tmpdir_path("virtual.db"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(count_tmp(), 0);
	(void)snprintf(spec, sizeof(spec), "bdb:%s/virtual", tmpdir);
	assert_int_equal(map_check(spec, &errs), 0);
	m = map_open(spec, &errs);
	assert_non_null(m);
	assert_int_equal(map_lookup(m, "demo@example.test", &v, &r), 1);
	assert_string_equal(v, "demo");
	free(v);
	assert_int_equal(map_lookup(m, "LIST@example.test", &v, &r), 1);
	assert_string_equal(v, "a@example.test, b@example.test");
	free(v);
	assert_int_equal(map_lookup(m, "alias", &v, &r), 1);
	assert_string_equal(v, "target");
	free(v);
	assert_int_equal(map_lookup(m, "alias:", &v, &r), 0);
	assert_null(v);
	assert_int_equal(map_lookup(m, "", &v, &r), 0);

	/* a rebuild replaces the file: the open map sees the new table */
	(void)write_text("virtual", "demo@example.test changed\n");
	assert_int_equal(map_bdb_build(src, &errs), 0);
	assert_int_equal(map_lookup(m, "demo@example.test", &v, &r), 1);
	assert_string_equal(v, "changed");
	free(v);
	assert_int_equal(map_lookup(m, "alias", &v, &r), 0);

	/* removed: temporary failure; rebuilt: back */
	assert_int_equal(unlink(tmpdir_path("virtual.db")), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(map_lookup(m, "demo@example.test", &v, &r), -1);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_int_equal(map_bdb_build(src, &errs), 0);
	assert_int_equal(map_lookup(m, "demo@example.test", &v, &r), 1);
	free(v);

	/* replaced by garbage: temporary failure, not "not found" */
	(void)write_text("virtual.db", "this is not a database\n");
	assert_int_equal(map_lookup(m, "demo@example.test", &v, &r), -1);
	assert_int_equal(map_bdb_build(src, &errs), 0);
	assert_int_equal(map_lookup(m, "demo@example.test", &v, &r), 1);
	free(v);
	map_close(&m);
	assert_null(m);
	buf_deinit(&errs);
}

static void
test_build_refuses_bad_source(void **state)
{
	struct buf errs;
	char big[MAP_LINE_MAX + 20], src[300];
	struct stat st;

	(void)state;
	buf_init(&errs, 0);
	(void)snprintf(src, sizeof(src), "%s", write_text("bad",
	    "a 1\nA 2\n  \nnovalue\n"));
	assert_int_equal(map_bdb_build(src, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "/bad:2: duplicate key "
	    "\"A\""));
	assert_non_null(strstr(buf_cstr(&errs), "/bad:4: missing value for "
	    "key \"novalue\""));
	assert_int_equal(stat(tmpdir_path("bad.db"), &st), -1);
	assert_int_equal(count_tmp(), 0);

	/* an old good .db stays in place when the new source is bad */
	(void)write_text("bad", "a 1\n");
	assert_int_equal(map_bdb_build(src, &errs), 0);
	assert_int_equal(stat(tmpdir_path("bad.db"), &st), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)write_text("bad", big);
	buf_reset(&errs);
	assert_int_equal(map_bdb_build(src, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "/bad:1: line too long"));
	assert_int_equal(stat(tmpdir_path("bad.db"), &st), 0);
	assert_int_equal(count_tmp(), 0);

	buf_reset(&errs);
	assert_int_equal(map_bdb_build(tmpdir_path("nothere"), &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "No such file"));
	buf_reset(&errs);
	assert_int_equal(map_bdb_build(tmpdir, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "not a regular file"));
	buf_deinit(&errs);
}

static void
test_missing_stale_corrupt(void **state)
{
	struct timespec ts[2];
	struct buf errs;
	char spec[320], src[300];

	(void)state;
	buf_init(&errs, 0);
	(void)snprintf(src, sizeof(src), "%s", write_text("t", "k v\n"));
	(void)snprintf(spec, sizeof(spec), "bdb:%s", src);
	/* missing .db */
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "/t.db: No such file or "
	    "directory (build it with: posta map build SOURCE)"));
	buf_reset(&errs);
	assert_int_equal(map_check(spec, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "No such file"));

	/* stale: the source is newer than the .db */
	assert_int_equal(map_bdb_build(src, &errs), 0);
	buf_reset(&errs);
	assert_int_equal(map_check(spec, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts[0]), 0);
	ts[0].tv_sec += 5;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, src, ts, 0), 0);
	assert_int_equal(map_check(spec, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "/t.db: older than its "
	    "source"));
	assert_non_null(strstr(buf_cstr(&errs), "run: posta map build"));
	/* a source with errors next to a fresh .db is reported too */
	(void)write_text("t", "k v\nbroken\n");
	assert_int_equal(utimensat(AT_FDCWD, tmpdir_path("t.db"), ts, 0), 0);
	buf_reset(&errs);
	assert_int_equal(map_check(spec, &errs), -1);
	assert_null(strstr(buf_cstr(&errs), "older"));
	assert_non_null(strstr(buf_cstr(&errs), "/t:2: missing value"));

	/* corrupt .db */
	(void)write_text("t.db", "garbage garbage garbage garbage\n");
	buf_reset(&errs);
	assert_null(map_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "cannot open as a Berkeley "
	    "DB hash file"));
	buf_reset(&errs);
	assert_int_equal(map_check(spec, &errs), -1);
	/* empty .db file */
	(void)write_text("t.db", "");
	assert_null(map_open(spec, &errs));
	buf_deinit(&errs);
}

static void
test_postfix_nul_keys(void **state)
{
	struct buf errs;
	struct reply r;
	struct map *m;
	char spec[300], *v;
	DBT k, d;
	DB *db;

	(void)state;
	buf_init(&errs, 0);
	/* postmap stores "key\0" -> "value\0" */
	assert_int_equal(db_create(&db, NULL, 0), 0);
	assert_int_equal(db->open(db, NULL, tmpdir_path("pf.db"), NULL, DB_HASH,
	    DB_CREATE, 0644), 0);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = "user@example.test";
	k.size = sizeof("user@example.test");
	d.data = "mailbox";
	d.size = sizeof("mailbox");
	assert_int_equal(db->put(db, NULL, &k, &d, 0), 0);
	assert_int_equal(db->close(db, 0), 0);
	(void)snprintf(spec, sizeof(spec), "bdb:%s/pf", tmpdir);
	m = map_open(spec, &errs);
	assert_non_null(m);
	assert_int_equal(map_lookup(m, "User@example.test", &v, &r), 1);
	assert_string_equal(v, "mailbox");
	free(v);
	assert_int_equal(map_lookup(m, "user@example.tes", &v, &r), 0);
	map_close(&m);
	buf_deinit(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_refuses_bad_source),
		cmocka_unit_test(test_missing_stale_corrupt),
		cmocka_unit_test(test_build_and_lookup),
		cmocka_unit_test(test_postfix_nul_keys),
	};

	return cmocka_run_group_tests_name("map_bdb", tests, group_setup,
	    group_teardown);
}
