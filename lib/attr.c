/*
 * attr - the codec for internal records (see attr.h)
 *
 * attr_decode() walks the attribute headers once, checking every limit
 * with only the bytes it has; values are skipped by their length, never
 * scanned.  When the end marker is reached the record's bytes are copied
 * once into the attr_rec, the '=' and ',' separators of the copy are
 * turned into NULs, and a second walk (over data now known to be good)
 * fills in the field table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "log.h"
#include "mem.h"
#include "strnum.h"

#define ATTR_END	"0:,"
#define ATTR_END_LEN	3

const struct attr_limits attr_limits_default = {
	ATTR_SIZE_MAX_DEFAULT,
	ATTR_COUNT_MAX_DEFAULT,
	ATTR_NAME_MAX_DEFAULT,
	ATTR_VALUE_MAX_DEFAULT,
};

struct attr_rec {
	char	*data;		/* copy of the record, separators NULed */
	size_t	 cap;
	struct attr_field *f;
	size_t	 n, capf;
};

static int
attr_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int
attr_name_ok(const char *name, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!attr_name_char((unsigned char)name[i]))
			return 0;
	return 1;
}

int
attr_put(struct buf *b, const char *name, const void *value, size_t len)
{
	char hdr[32];
	size_t nlen = strlen(name);
	int h;

	if (!attr_name_ok(name, nlen))
		log_panic("attr_put: bad attribute name \"%.64s\"", name);
	if (len > (size_t)-1 / 2) {
		errno = EMSGSIZE;
		return -1;
	}
	h = snprintf(hdr, sizeof(hdr), "%zu:", nlen + 1 + len);
	/* reserve the whole attribute first: all of it or nothing */
	if (buf_reserve(b, (size_t)h + nlen + 1 + len + 1) < 0)
		return -1;
	(void)buf_append(b, hdr, (size_t)h);
	(void)buf_append(b, name, nlen);
	(void)buf_putc(b, '=');
	(void)buf_append(b, value, len);
	(void)buf_putc(b, ',');
	return 0;
}

int
attr_put_str(struct buf *b, const char *name, const char *value)
{
	return attr_put(b, name, value, strlen(value));
}

int
attr_put_uint(struct buf *b, const char *name, unsigned long long v)
{
	char num[32];
	int n;

	n = snprintf(num, sizeof(num), "%llu", v);
	return attr_put(b, name, num, (size_t)n);
}

int
attr_end(struct buf *b)
{
	return buf_append(b, ATTR_END, ATTR_END_LEN);
}

struct attr_rec *
attr_rec_new(void)
{
	return xcalloc(1, sizeof(struct attr_rec));
}

void
attr_rec_free(struct attr_rec **rp)
{
	struct attr_rec *r = *rp;

	if (r == NULL)
		return;
	free(r->data);
	free(r->f);
	free(r);
	*rp = NULL;
}

/*
 * attr_scan_len - the decimal length at d[0..len): 1 and *n_r, *hdr_r
 * (digits plus ':'), 0 need more, -1 bad.  max bounds the number.
 */
static int
attr_scan_len(const unsigned char *d, size_t len, size_t max, size_t *n_r,
    size_t *hdr_r, const char **reason_r)
{
	size_t i, n = 0, digit;

	for (i = 0; i < len && d[i] >= '0' && d[i] <= '9'; i++) {
		if (i == 1 && d[0] == '0') {
			*reason_r = "length with a leading zero";
			return -1;
		}
		digit = (size_t)(d[i] - '0');
		if (digit > max || n > (max - digit) / 10) {
			*reason_r = "attribute too long";
			return -1;
		}
		n = n * 10 + digit;
	}
	if (i == len)
		return 0;
	if (i == 0) {
		*reason_r = "expected a length";
		return -1;
	}
	if (d[i] != ':') {
		*reason_r = "expected ':' after the length";
		return -1;
	}
	*n_r = n;
	*hdr_r = i + 1;
	return 1;
}

/* attr_fill - index a record already checked by attr_decode() */
static void
attr_fill(struct attr_rec *rec, const unsigned char *d, size_t total,
    size_t count)
{
	size_t p = 0, n, hdr, nlen;
	const char *reason;
	char *eq;

	if (total + 1 > rec->cap) {
		free(rec->data);
		rec->data = xmalloc(total + 1);
		rec->cap = total + 1;
	}
	memcpy(rec->data, d, total);
	rec->data[total] = '\0';
	if (count > rec->capf) {
		free(rec->f);
		rec->f = xcalloc(count, sizeof(*rec->f));
		rec->capf = count;
	}
	rec->n = 0;
	while (rec->n < count) {
		if (attr_scan_len(d + p, total - p, total, &n, &hdr,
		    &reason) != 1)
			log_panic("attr_fill: record changed under us");
		p += hdr;
		eq = memchr(rec->data + p, '=', n);
		nlen = (size_t)(eq - (rec->data + p));
		*eq = '\0';
		rec->data[p + n] = '\0';	/* the ',' */
		rec->f[rec->n].name = rec->data + p;
		rec->f[rec->n].value = eq + 1;
		rec->f[rec->n].value_len = n - nlen - 1;
		rec->n++;
		p += n + 1;
	}
}

int
attr_decode(const void *data, size_t len, const struct attr_limits *lim,
    struct attr_rec *rec, size_t *used_r, const char **reason_r)
{
	const unsigned char *d = data;
	size_t p = 0, count = 0, n, hdr, maxattr, end, i, avail;
	int r;

	if (lim == NULL)
		lim = &attr_limits_default;
	maxattr = lim->max_name + 1 + lim->max_value;
	if (maxattr < lim->max_value)		/* wrapped */
		maxattr = (size_t)-1;
	for (;;) {
		if (p == len)
			return 0;
		if ((r = attr_scan_len(d + p, len - p, maxattr, &n, &hdr,
		    reason_r)) <= 0)
			return r;
		if (n == 0) {
			/* the end marker */
			end = p + hdr + 1;
			if (end > lim->max_size) {
				*reason_r = "record too large";
				return -1;
			}
			if (len < end)
				return 0;
			if (d[p + hdr] != ',') {
				*reason_r = "expected ',' after the end marker";
				return -1;
			}
			attr_fill(rec, d, end, count);
			*used_r = end;
			return 1;
		}
		if (count >= lim->max_count) {
			*reason_r = "too many attributes";
			return -1;
		}
		/* this attribute, its ',' and the end marker must fit */
		if (n > lim->max_size || p + hdr > lim->max_size - n ||
		    lim->max_size - n - (p + hdr) < 1 + ATTR_END_LEN) {
			*reason_r = "record too large";
			return -1;
		}
		p += hdr;
		end = p + n + 1;
		avail = len - p < n ? len - p : n;
		for (i = 0; i < avail && attr_name_char(d[p + i]); i++)
			if (i >= lim->max_name) {
				*reason_r = "attribute name too long";
				return -1;
			}
		if (i == avail && avail < n)
			return 0;
		if (i == n || d[p + i] != '=') {
			*reason_r = i == n ? "expected '=' after the name" :
			    "bad character in attribute name";
			return -1;
		}
		if (i == 0) {
			*reason_r = "empty attribute name";
			return -1;
		}
		if (n - i - 1 > lim->max_value) {
			*reason_r = "attribute value too long";
			return -1;
		}
		if (len < end)
			return 0;
		if (d[end - 1] != ',') {
			*reason_r = "expected ',' after the value";
			return -1;
		}
		count++;
		p = end;
	}
}

size_t
attr_count(const struct attr_rec *rec)
{
	return rec->n;
}

const struct attr_field *
attr_at(const struct attr_rec *rec, size_t i)
{
	return i < rec->n ? &rec->f[i] : NULL;
}

int
attr_get(const struct attr_rec *rec, const char *name, const char **value_r,
    size_t *len_r)
{
	size_t i;

	for (i = 0; i < rec->n; i++) {
		if (strcmp(rec->f[i].name, name) == 0) {
			*value_r = rec->f[i].value;
			*len_r = rec->f[i].value_len;
			return 1;
		}
	}
	return 0;
}

const char *
attr_get_str(const struct attr_rec *rec, const char *name)
{
	const char *v;
	size_t len;

	if (attr_get(rec, name, &v, &len) != 1 || memchr(v, '\0', len) != NULL)
		return NULL;
	return v;
}

int
attr_get_uint(const struct attr_rec *rec, const char *name,
    unsigned long long min, unsigned long long max,
    unsigned long long *val_r)
{
	const char *v;
	size_t len;

	if (attr_get(rec, name, &v, &len) != 1)
		return 0;
	/* the value is NUL-terminated; an inner NUL would cut it short */
	if (memchr(v, '\0', len) != NULL || str_to_uint(v, min, max, val_r) < 0)
		return -1;
	return 1;
}
