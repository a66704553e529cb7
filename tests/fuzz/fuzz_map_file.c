/*
 * fuzz_map_file - the text-table parser (map_text_parse) on any bytes
 *
 * Besides "no crash, no leak", the entry callback checks what the
 * parser promises: keys non-empty, lower case, without white space, and
 * within the limits; values non-empty, trimmed, within the limits.
 * Small limits make the limit paths reachable by short inputs.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "map.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct map_text_limits lim = { 256, 32, 128, 64 };

static int
check_entry(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	size_t *count = arg, i, klen = strlen(key), vlen = strlen(value);

	if (klen == 0 || klen > lim.key_max || vlen == 0 ||
	    vlen > lim.value_max || line == 0)
		abort();
	for (i = 0; i < klen; i++)
		if (isspace((unsigned char)key[i]) ||
		    (key[i] >= 'A' && key[i] <= 'Z'))
			abort();
	if (isspace((unsigned char)value[0]) ||
	    isspace((unsigned char)value[vlen - 1]))
		abort();
	if (++*count > lim.entries_max)
		abort();
	if (key[0] == 'x') {
		*why_r = "refused";	/* exercise the error path */
		return -1;
	}
	return 0;
}

static int
check_default(void *arg, const char *key, const char *value, size_t line,
    const char **why_r)
{
	if (*key == '\0' || strlen(key) > MAP_KEY_MAX || *value == '\0' ||
	    strlen(value) > MAP_VALUE_MAX)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf errs;
	size_t count = 0;

	buf_init(&errs, 64 * 1024);
	(void)map_text_parse((const char *)data, size, "fuzz", &lim,
	    check_entry, &count, &errs);
	(void)map_text_parse((const char *)data, size, "fuzz",
	    &map_text_limits_default, check_default, NULL, &errs);
	buf_deinit(&errs);
	return 0;
}
