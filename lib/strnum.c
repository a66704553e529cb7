/*
 * strnum - strict number parsing (see strnum.h)
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strnum.h"

int
str_to_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *val_r)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*val_r = v;
	return 0;
}

int
str_to_int(const char *s, long long min, long long max, long long *val_r)
{
	long long v;
	char *end;
	const char *d = s[0] == '-' ? s + 1 : s;

	if (!isdigit((unsigned char)d[0]))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*val_r = v;
	return 0;
}

/* str_to_scaled - digits, then one optional suffix from units[] */
static int
str_to_scaled(const char *s, const char *units, const long long *mult,
    long long min, long long max, long long *val_r)
{
	char num[32];
	size_t len = strlen(s);
	long long scale = 1, v;
	const char *u;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	if (!isdigit((unsigned char)num[len - 1])) {
		u = strchr(units, tolower((unsigned char)num[len - 1]));
		if (u == NULL || *u == '\0')
			return -1;
		scale = mult[u - units];
		num[--len] = '\0';
	}
	if (str_to_int(num, 0, INT64_MAX, &v) < 0 || v > INT64_MAX / scale)
		return -1;
	v *= scale;
	if (v < min || v > max)
		return -1;
	*val_r = v;
	return 0;
}

int
str_to_time(const char *s, long long min, long long max, long long *val_r)
{
	static const long long mult[] = { 1, 60, 3600, 86400, 604800 };

	return str_to_scaled(s, "smhdw", mult, min, max, val_r);
}

int
str_to_size(const char *s, long long min, long long max, long long *val_r)
{
	static const long long mult[] = { 1024, 1024 * 1024,
	    1024 * 1024 * 1024 };

	return str_to_scaled(s, "kmg", mult, min, max, val_r);
}

int
str_to_bool(const char *s, bool *val_r)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*val_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*val_r = false;
			return 0;
		}
	}
	return -1;
}
