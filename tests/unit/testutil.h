/*
 * testutil - a temporary directory for a cmocka test group
 *
 * Include after <cmocka.h>.  tmpdir_make(tag) makes /tmp/posta-TAG-XXXXXX
 * (0, or -1 for a group setup to fail), tmpdir_remove() removes it with
 * everything in it; tmpdir_path(name) is tmpdir/name in a static buffer
 * (one at a time); tmpdir_put(name, data, len) writes a file there
 * through a rename (so readers never see half of it) and returns its
 * path.
 */
#ifndef POSTA_TESTUTIL_H
#define POSTA_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char tmpdir[64];

static inline int
tmpdir_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static inline int
tmpdir_make(const char *tag)
{
	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/posta-%s-XXXXXX", tag);
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static inline int
tmpdir_remove(void)
{
	return nftw(tmpdir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const char *
tmpdir_path(const char *name)
{
	static char path[256];

	(void)snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static inline const char *
tmpdir_put(const char *name, const void *data, size_t len)
{
	char tmp[300];
	const char *path = tmpdir_path(name);
	FILE *fp;

	(void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
	return path;
}

#endif
