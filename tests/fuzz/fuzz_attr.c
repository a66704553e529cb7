/*
 * fuzz_attr - the attr record decoder on arbitrary bytes
 *
 * Decodes records one after another (as a pipelining peer sends them)
 * under tight limits and under the defaults.  For each record that
 * decodes, checks the properties the codec promises: the re-encoding
 * is byte for byte the input (the format is canonical), every proper
 * prefix is "need more" rather than a record or an error, the limits
 * hold, and the accessors agree with the fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "buf.h"

static const struct attr_limits tight = { 200, 8, 16, 64 };

static void
check_record(const uint8_t *data, size_t used, const struct attr_limits *lim,
    struct attr_rec *rec)
{
	const struct attr_field *f;
	struct attr_rec *tmp;
	struct buf b;
	const char *v, *reason;
	size_t i, len, u2;
	unsigned long long num;

	if (used > lim->max_size || attr_count(rec) > lim->max_count)
		abort();
	buf_init(&b, 0);
	for (i = 0; i < attr_count(rec); i++) {
		f = attr_at(rec, i);
		if (strlen(f->name) > lim->max_name ||
		    f->value_len > lim->max_value ||
		    !attr_name_ok(f->name, strlen(f->name)) ||
		    f->value[f->value_len] != '\0')
			abort();
		if (attr_put(&b, f->name, f->value, f->value_len) < 0)
			abort();
		/* the first of a name is what attr_get finds */
		if (attr_get(rec, f->name, &v, &len) != 1)
			abort();
		(void)attr_get_str(rec, f->name);
		(void)attr_get_uint(rec, f->name, 0, 1000, &num);
	}
	if (attr_at(rec, attr_count(rec)) != NULL)
		abort();
	if (attr_end(&b) < 0 || buf_len(&b) != used ||
	    memcmp(buf_cstr(&b), data, used) != 0)
		abort();
	buf_deinit(&b);
	/* a proper prefix is never complete and never wrong */
	tmp = attr_rec_new();
	if (attr_decode(data, used - 1, lim, tmp, &u2, &reason) != 0 ||
	    attr_decode(data, used / 2, lim, tmp, &u2, &reason) != 0)
		abort();
	attr_rec_free(&tmp);
}

static void
run(const uint8_t *data, size_t size, const struct attr_limits *lim)
{
	struct attr_rec *rec = attr_rec_new();
	const char *reason;
	size_t used;
	int n = 0;

	while (n++ < 64 && attr_decode(data, size, lim, rec, &used,
	    &reason) == 1) {
		if (used == 0 || used > size)
			abort();
		check_record(data, used, lim, rec);
		data += used;
		size -= used;
	}
	attr_rec_free(&rec);
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, &tight);
	run(data, size, &attr_limits_default);
	return 0;
}
