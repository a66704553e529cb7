/*
 * mastercf - the master.conf service table
 *
 * One service per logical line, fields separated by white space:
 *
 *	# service    type  listen            procs  command  [arguments]
 *	smtp         inet  127.0.0.1:2525    2      smtpd
 *	submission   inet  127.0.0.1:2587    2      smtpd  -o smtpd_tls_required=yes
 *	qmgr         unix  private/qmgr      1      qmgr
 *	pickup       none  -                 1      pickup
 *
 * Blank lines and lines whose first non-blank character is '#' are
 * ignored; a line that starts with white space continues the previous
 * one (comments may sit between continued lines).  A CR before the LF is
 * dropped; other control characters and NUL are errors.
 *
 *   service   [a-z0-9_-]+ (at most MASTERCF_NAME_MAX bytes), unique
 *   type      inet (TCP), unix (stream socket) or none (no socket)
 *   listen    inet: host:port, [ipv6]:port, *:port or port;
 *             unix: a path, relative to queue_directory unless absolute,
 *             without ".." components; none: "-"
 *   procs     1..MASTERCF_PROCS_MAX, or "-" for 1
 *   command   a program name (looked up in daemon_directory) or an
 *             absolute path
 *   arguments "-o name=value" pairs are setting overrides, checked
 *             against the settings of the command (its basename's scope
 *             plus SCOPE_POSTA, see settings.h); anything else is passed
 *             to the program verbatim.
 *
 * mastercf_parse() and mastercf_load() read the whole table, append one
 * "ORIGIN:LINE: message\n" per error to errs and go on, so one run lists
 * every error; they return 0 and store the table in *cf_r, or -1 with
 * *cf_r set to NULL when there was any error.  The caller frees the table
 * with mastercf_free(), which sets the pointer to NULL.
 *
 * Limits: MASTERCF_FILE_MAX bytes per file, MASTERCF_LINE_MAX bytes per
 * logical line, MASTERCF_SERVICES_MAX services, MASTERCF_ARGS_MAX
 * arguments per service.  Out of memory is fatal.
 */
#ifndef POSTA_MASTERCF_H
#define POSTA_MASTERCF_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define MASTERCF_FILE_MAX	(1024 * 1024)
#define MASTERCF_LINE_MAX	8192
#define MASTERCF_NAME_MAX	64
#define MASTERCF_SERVICES_MAX	1000
#define MASTERCF_ARGS_MAX	256
#define MASTERCF_PROCS_MAX	1000
#define MASTERCF_HOST_MAX	256
#define MASTERCF_PATH_MAX	100	/* fits sun_path with room to spare */

enum mastercf_type {
	MASTERCF_INET,
	MASTERCF_UNIX,
	MASTERCF_NONE,
};

struct mastercf_service {
	char	*name;
	enum mastercf_type type;
	char	*listen;
	unsigned procs;
	char	*command;
	char	**args;		/* everything after command, in order */
	size_t	 nargs;
	char	**overrides;	/* the "name=value" of each -o */
	size_t	 noverrides;
	char	*origin;	/* "path:line" */
};

struct mastercf {
	struct mastercf_service *svc;
	size_t	 n;
};

int	mastercf_load(const char *path, struct mastercf **cf_r,
	    struct buf *errs);
int	mastercf_parse(const char *text, size_t len, const char *origin,
	    struct mastercf **cf_r, struct buf *errs);
void	mastercf_free(struct mastercf **);

/* mastercf_type_name - "inet", "unix" or "none" */
const char *mastercf_type_name(enum mastercf_type);

/* mastercf_lookup - the service called name, or NULL */
const struct mastercf_service *mastercf_lookup(const struct mastercf *,
	    const char *name);

/*
 * mastercf_inet_split - split an inet listen field into host (empty for
 * "*" or a bare port; brackets removed from an IPv6 address) and port
 * (1..65535).  0, or -1 with host and *port_r untouched when the field is
 * malformed or the host does not fit hostsz.
 */
int	mastercf_inet_split(const char *listen, char *host, size_t hostsz,
	    unsigned *port_r);

/* mastercf_unix_mode - 0666 for a socket under public/, else 0600 */
mode_t	mastercf_unix_mode(const char *listen);

/*
 * mastercf_service_equal - 1 if a and b would run the same processes
 * (type, listen, procs, command and arguments; origin ignored), else 0
 */
int	mastercf_service_equal(const struct mastercf_service *,
	    const struct mastercf_service *);

#endif
