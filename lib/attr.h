/*
 * attr - the one codec for internal records (IPC messages, queue files)
 *
 * A record is a list of name=value attributes followed by an end marker.
 * Each attribute is written as
 *
 *	<length>:<name>=<value>,
 *
 * where <length> is the decimal byte count of "<name>=<value>" (no sign,
 * no leading zero), <name> is 1 or more of [a-z0-9_] and <value> is any
 * bytes at all, NUL and newlines included.  The end marker is the empty
 * attribute "0:," (a real attribute is at least 2 bytes long).  So a
 * record with request=ping and id=7 is
 *
 *	15:request=ping,4:id=7,0:,
 *
 * The encoding is canonical: one record has exactly one byte form.
 * Names may repeat (a list is a repeated name); attr_get() finds the
 * first.
 *
 * Encoding: attr_put() and friends append one attribute to a struct buf
 * and attr_end() appends the end marker.  Each returns 0, or -1 with
 * errno EMSGSIZE and the buffer unchanged when the buffer's limit would
 * be passed.  A bad name is a bug in the caller (log_panic).
 *
 * Decoding: attr_decode() is a pure function over bytes received so far
 * (no I/O, no state kept between calls).  It returns 1 with a complete
 * record in rec and its byte count in *used_r (the caller consumes that
 * many: pipelined records may follow), 0 when the bytes so far are a
 * good but incomplete record (read more; at end of input that means a
 * truncated record), or -1 with a static reason text when the data is
 * malformed or passes a limit.  Limits are checked as early as the bytes
 * allow: a length prefix that announces an attribute or record over the
 * limit fails before its data arrives, so the caller never buffers more
 * than lim->max_size bytes.  On 0 and -1 rec is untouched.  A call costs
 * time in proportion to the number of attributes and the name lengths,
 * not to the value bytes.
 *
 * A decoded record owns a copy of its bytes: names are C strings, each
 * value is followed by a NUL (it may hold NULs itself; use the length).
 * Pointers into a record are borrowed until the next attr_decode() into
 * it or attr_rec_free().  Out of memory is fatal.
 */
#ifndef POSTA_ATTR_H
#define POSTA_ATTR_H

#include <stddef.h>

#include "buf.h"

#define ATTR_NAME_MAX_DEFAULT	64
#define ATTR_VALUE_MAX_DEFAULT	(1024 * 1024)
#define ATTR_COUNT_MAX_DEFAULT	1024
#define ATTR_SIZE_MAX_DEFAULT	(2 * 1024 * 1024)

struct attr_limits {
	size_t	max_size;	/* whole record, framing included */
	size_t	max_count;	/* attributes, end marker not counted */
	size_t	max_name;	/* bytes of one name */
	size_t	max_value;	/* bytes of one value */
};

extern const struct attr_limits attr_limits_default;

struct attr_field {
	const char	*name;		/* NUL-terminated */
	const char	*value;		/* value_len bytes, then a NUL */
	size_t		 value_len;
};

struct attr_rec;

/* attr_name_ok - 1 if name (len bytes) is a good attribute name, else 0 */
int	attr_name_ok(const char *name, size_t len);

/* attr_put - append name=value (len bytes); 0 or -1 (EMSGSIZE) */
int	attr_put(struct buf *, const char *name, const void *value,
	    size_t len);
int	attr_put_str(struct buf *, const char *name, const char *value);
int	attr_put_uint(struct buf *, const char *name, unsigned long long);
/* attr_end - append the end marker; 0 or -1 (EMSGSIZE) */
int	attr_end(struct buf *);

struct attr_rec *attr_rec_new(void);
void	attr_rec_free(struct attr_rec **);

/*
 * attr_decode - one record from data (len bytes); lim NULL means
 * attr_limits_default.  1 (complete, *used_r set), 0 (need more) or
 * -1 (bad, *reason_r set to a static text).
 */
int	attr_decode(const void *data, size_t len,
	    const struct attr_limits *lim, struct attr_rec *rec,
	    size_t *used_r, const char **reason_r);

/* attr_count - attributes in the record */
size_t	attr_count(const struct attr_rec *);
/* attr_at - the i-th attribute (0 first), NULL when i >= attr_count() */
const struct attr_field *attr_at(const struct attr_rec *, size_t i);

/* attr_get - first attribute named name: 1 and value, length; else 0 */
int	attr_get(const struct attr_rec *, const char *name,
	    const char **value_r, size_t *len_r);
/* attr_get_str - the value as a C string, NULL if absent or it holds NUL */
const char *attr_get_str(const struct attr_rec *, const char *name);
/*
 * attr_get_uint - the value as a decimal number in [min, max]:
 * 1 (stored in *val_r), 0 absent, -1 not such a number (*val_r untouched)
 */
int	attr_get_uint(const struct attr_rec *, const char *name,
	    unsigned long long min, unsigned long long max,
	    unsigned long long *val_r);

#endif
