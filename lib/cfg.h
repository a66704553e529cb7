/*
 * cfg - configuration files: "name = value" with typed, checked settings
 *
 * Syntax (as admins know it from Postfix's main.cf):
 *	# a comment line (first non-blank character is '#')
 *	name = value
 *	long_name = first part,
 *	    continued on lines that start with white space
 * Blank and comment lines are ignored everywhere, also inside a continued
 * setting.  Names are [a-z0-9_]; the value is trimmed; a later line wins
 * over an earlier one.  "$name" or "${name}" in a string value expands to
 * another setting's value when read (depth limit CFG_EXPAND_DEPTH).
 *
 * A cfg is made from a table of definitions: each has a name, a type, a
 * default written as text (checked like any value), a range for numbers
 * and the scopes (files) where it may be set.  Every value is checked
 * when it is set, so the getters cannot fail: asking for a name that is
 * not defined, or with the wrong type, is a bug (log_panic).
 *
 * Errors are appended to the caller's buffer as "file:line: message\n";
 * loading goes on after an error so that one run reports all of them,
 * and returns -1 if there was any.  Limits: CFG_LINE_MAX bytes per
 * physical line, CFG_FILE_MAX bytes per file.
 */
#ifndef POSTA_CFG_H
#define POSTA_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"

#define CFG_LINE_MAX	8192
#define CFG_VALUE_MAX	65536
#define CFG_FILE_MAX	(4 * 1024 * 1024)
#define CFG_EXPAND_DEPTH 10

enum cfg_type {
	CFG_STR,	/* any text */
	CFG_INT,	/* integer in [min, max] */
	CFG_BOOL,	/* yes/no true/false on/off 1/0 */
	CFG_TIME,	/* seconds, suffix s m h d w, in [min, max] */
	CFG_SIZE,	/* bytes, suffix k m g, in [min, max] */
	CFG_ENUM,	/* one of choices, "a|b|c" */
};

struct cfg_def {
	const char	*name;
	enum cfg_type	 type;
	const char	*def;		/* default, as text */
	long long	 min, max;	/* CFG_INT, CFG_TIME, CFG_SIZE */
	const char	*choices;	/* CFG_ENUM */
	unsigned	 scope;		/* bit mask of files it may be set in */
	const char	*doc;		/* one line for posta config -d */
};

struct cfg;

/* cfg_new - settings from defs (ended by a NULL name) whose scope & mask */
struct cfg *cfg_new(const struct cfg_def *defs, unsigned mask);
void	cfg_free(struct cfg **);

/*
 * cfg_load_file - read path; settings must have scope & allowed.
 * A missing file is an error unless is_optional (then 0, nothing read).
 */
int	cfg_load_file(struct cfg *, const char *path, unsigned allowed,
	    bool is_optional, struct buf *errs);
/* cfg_parse - the same over text already in memory, named origin */
int	cfg_parse(struct cfg *, const char *text, size_t len,
	    const char *origin, unsigned allowed, struct buf *errs);
/* cfg_set - set one value (origin names where it came from); 0 or -1 */
int	cfg_set(struct cfg *, const char *name, const char *value,
	    const char *origin, struct buf *errs);
/* cfg_set_assignment - "name=value" as given to -o; 0 or -1 */
int	cfg_set_assignment(struct cfg *, const char *assignment,
	    const char *origin, struct buf *errs);

/* cfg_is_defined - 1 if name is a setting of this cfg, else 0 */
int	cfg_is_defined(const struct cfg *, const char *name);

/* Getters; the string is borrowed until the cfg changes or is freed. */
const char *cfg_str(struct cfg *, const char *name);
long long cfg_int(struct cfg *, const char *name);	/* INT TIME SIZE */
bool	cfg_bool(struct cfg *, const char *name);
/* cfg_origin - "file:line" of the value, or NULL for the default */
const char *cfg_origin(const struct cfg *, const char *name);

/*
 * cfg_dump - print "name = value" for each setting in definition order,
 * only those not at their default if only_changed.  Values are printed
 * unexpanded, as written.
 */
void	cfg_dump(const struct cfg *, FILE *, bool only_changed);

/* cfg_def_lookup - the definition of name in a table, or NULL */
const struct cfg_def *cfg_def_lookup(const struct cfg_def *defs,
	    const char *name);

/*
 * cfg_list_next - walk a list value ("a, b c"): *pos starts at the
 * string, each call stores the next item in item (size itemsz, cut items
 * are an error) and returns 1, 0 at the end, -1 if an item is too long.
 */
int	cfg_list_next(const char **pos, char *item, size_t itemsz);

#endif
