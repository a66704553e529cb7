/*
 * map - lookup tables named "type:where", as Postfix admins know them
 *
 *	file:/etc/posta/aliases		text table, read into memory
 *	bdb:/etc/posta/virtual		Berkeley DB hash virtual.db,
 *					built by "posta map build"
 *	ldap:/etc/posta/ldap-x.conf	OpenLDAP client, set up by a file
 *
 * Text syntax (file: tables and the source of bdb: tables), one entry per
 * logical line:
 *	# comment (first non-blank character is '#')
 *	key	value that runs to the end of the line,
 *	    continued on lines that start with white space
 *	key: value			(aliases style: the ':' is dropped)
 * The key is the first word; the value is the rest of the logical line,
 * trimmed, with each continuation joined by one space.  Keys are
 * case-insensitive: stored and looked up in lower case (ASCII).  A key
 * without a value, a continuation line without a key before it, a NUL
 * byte, an over-long line, key or value, too many entries and a
 * duplicate key are errors, reported as "file:line: message\n".
 *
 * map_open() opens a table, or returns NULL with "where: message\n" (or
 * "file:line: message\n") lines appended to errs.  Paths must be
 * absolute.  map_lookup() returns 1 with a copy of the value in *value_r
 * (caller frees), 0 when the key is not there, or -1 on a temporary
 * failure: r then holds 451 4.3.0 and the log has the detail.  A file:
 * table is read again when its file changes (inode, size or mtime); a
 * bdb: table reopens its .db when that changes.  A table whose file has
 * become unreadable or invalid fails lookups temporarily until it is
 * fixed: a broken table defers mail, it never guesses.  An ldap: table
 * reconnects once within a lookup when it finds its connection dead; a
 * timeout is a temporary failure.  Callers ignore SIGPIPE (every posta
 * program does) because a dead LDAP connection may raise it.
 *
 * map_check() validates a spec the way "posta check" needs: text syntax,
 * a .db present and not older than its source, an LDAP config that
 * parses; 0 or -1 with messages in errs.  It does not connect anywhere.
 *
 * map_bdb_build(src) reads the text table src and writes src.db: a new
 * temporary file, synced, then renamed into place, so readers see the
 * old table or the new one, never half of one.  0, or -1 with messages.
 *
 * map_text_parse() is the text parser by itself (no I/O), for map_file,
 * map_bdb_build and the fuzzer: it calls entry(arg, key, value, line,
 * why_r) for every entry, key in lower case, line its first line;
 * entry returns 0, or -1 with a reason in *why_r, which becomes
 * "origin:line: reason \"key\"".  Parsing goes on after an error so
 * that one run reports them all (but stops at entries_max); the result
 * is 0 or -1.
 *
 * A map is not thread-safe; use one per thread.
 */
#ifndef POSTA_MAP_H
#define POSTA_MAP_H

#include <stddef.h>

#include "buf.h"
#include "reply.h"

#define MAP_LINE_MAX	8192		/* bytes per physical line */
#define MAP_KEY_MAX	1024		/* bytes per key */
#define MAP_VALUE_MAX	65536		/* bytes per value, joined */
#define MAP_ENTRIES_MAX	2000000		/* entries per table */
#define MAP_FILE_MAX	(512LL * 1024 * 1024)	/* bytes per file */

struct map_text_limits {
	size_t	line_max;
	size_t	key_max;
	size_t	value_max;
	size_t	entries_max;
};

extern const struct map_text_limits map_text_limits_default;

struct map;

struct map *map_open(const char *spec, struct buf *errs);
int	map_lookup(struct map *, const char *key, char **value_r,
	    struct reply *r);
void	map_close(struct map **);
/* map_spec - the spec the map was opened with (borrowed) */
const char *map_spec(const struct map *);

int	map_check(const char *spec, struct buf *errs);
int	map_bdb_build(const char *src_path, struct buf *errs);

typedef int map_text_entry_fn(void *arg, const char *key, const char *value,
	    size_t line, const char **why_r);
int	map_text_parse(const char *text, size_t len, const char *origin,
	    const struct map_text_limits *, map_text_entry_fn *entry,
	    void *arg, struct buf *errs);

#endif
