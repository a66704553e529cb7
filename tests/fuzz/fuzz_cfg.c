/*
 * fuzz_cfg - the configuration parser on arbitrary text
 *
 * Parses the input against a small table with one setting of each type,
 * then reads every setting back (which runs $name expansion) and dumps
 * the result, so values that got in are exercised too.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cfg.h"

#define S1	0x1
#define S2	0x2

static const struct cfg_def defs[] = {
	{ "name", CFG_STR, "default", 0, 0, NULL, S1, NULL },
	{ "greeting", CFG_STR, "$name says ${name}", 0, 0, NULL, S1, NULL },
	{ "count", CFG_INT, "10", -5, 100, NULL, S1, NULL },
	{ "flag", CFG_BOOL, "no", 0, 0, NULL, S1, NULL },
	{ "timeout", CFG_TIME, "5m", 1, 86400, NULL, S1, NULL },
	{ "limit", CFG_SIZE, "10m", 0, 1LL << 40, NULL, S1, NULL },
	{ "mode", CFG_ENUM, "may", 0, 0, "none|may|encrypt", S1, NULL },
	{ "other", CFG_STR, "", 0, 0, NULL, S2, NULL },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c = cfg_new(defs, S1 | S2);
	struct buf errs;
	const char *pos;
	char item[16];
	FILE *null;
	int n = 0;

	buf_init(&errs, 1024 * 1024);
	(void)cfg_parse(c, (const char *)data, size, "fuzz.conf", S1, &errs);
	(void)cfg_str(c, "name");
	pos = cfg_str(c, "greeting");
	while (n++ < 1000 && cfg_list_next(&pos, item, sizeof(item)) == 1)
		;
	(void)cfg_int(c, "count");
	(void)cfg_bool(c, "flag");
	(void)cfg_int(c, "timeout");
	(void)cfg_int(c, "limit");
	(void)cfg_str(c, "mode");
	(void)cfg_origin(c, "name");
	if ((null = fopen("/dev/null", "w")) != NULL) {
		cfg_dump(c, null, true);
		fclose(null);
	}
	buf_deinit(&errs);
	cfg_free(&c);
	return 0;
}
