/*
 * map - "posta map build FILE": compile the text table FILE into
 * FILE.db for bdb:FILE (see posta-tables(5)); quiet on success, the
 * table's "file:line: message" errors and exit 1 on failure.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "map.h"
#include "posta.h"

int
cmd_map(const char *dir, int argc, char **argv)
{
	struct buf errs;
	int rc;

	(void)dir;
	if (argc != 3 || strcmp(argv[1], "build") != 0) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	buf_init(&errs, 4 * 1024 * 1024);
	rc = map_bdb_build(argv[2], &errs);
	fputs(buf_cstr(&errs), stderr);
	if (rc < 0 && buf_len(&errs) == 0)
		fprintf(stderr, "posta: %s: table not built\n", argv[2]);
	buf_deinit(&errs);
	return rc < 0 ? POSTA_EXIT_FAIL : POSTA_EXIT_OK;
}
