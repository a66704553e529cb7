/*
 * check - "posta check [-v]": validate the whole configuration
 *
 * Reads posta.conf, each program's own file (smtpd.conf, ...: optional),
 * master.conf with its -o overrides, every lookup table named in a
 * setting whose name ends in "_maps" and the user_database, wherever
 * that setting is given (posta.conf, a program's file, or a service's
 * -o).  Then looks at
 * what must exist on this machine: the parent of queue_directory,
 * daemon_directory, mail_owner, the programs master.conf runs.
 *
 * Every problem is one line on standard error, "file:line: message"
 * (settings at their default name the file without a line); warnings
 * say "warning:" and do not make the check fail.  Nothing is printed
 * when all is well, unless -v.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "map.h"
#include "mastercf.h"
#include "mem.h"
#include "posta.h"
#include "settings.h"
#include "userdb.h"

#define CHECK_ERRS_MAX	(4 * 1024 * 1024)
#define CHECK_ITEM_MAX	4096

struct check {
	const char *dir;
	char	 posta_path[4096];
	int	 nerr;
	int	 nwarn;
	size_t	 nfiles;
	char	**specs;	/* tables checked already */
	size_t	 nspecs;
};

/*
 * check_report - print the messages of a load that failed (rc < 0) or
 * succeeded, counting each line as one error
 */
static void
check_report(struct check *ck, int rc, struct buf *errs)
{
	const char *p;
	int lines = 0;

	for (p = buf_cstr(errs); *p != '\0'; p++)
		lines += *p == '\n';
	if (rc < 0 && lines == 0)
		lines = 1;
	ck->nerr += lines;
	fputs(buf_cstr(errs), stderr);
	buf_reset(errs);
}

static void __attribute__((format(printf, 4, 5)))
check_msg(struct check *ck, int is_error, const char *origin,
    const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s", origin, is_error ? "" : "warning: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (is_error)
		ck->nerr++;
	else
		ck->nwarn++;
}

/* check_origin - where the value of name comes from, for messages */
static const char *
check_origin(struct check *ck, struct cfg *c, const char *name)
{
	const char *o = cfg_origin(c, name);

	return o != NULL ? o : ck->posta_path;
}

/* check_prog_cfg - posta.conf (quietly unless report) and prog's own file */
static struct cfg *
check_prog_cfg(struct check *ck, const char *prog, bool report,
    struct buf *errs)
{
	unsigned scope = settings_scope(prog);
	struct cfg *c = cfg_new(posta_settings, SCOPE_POSTA | scope);
	struct buf quiet;
	char path[4096];
	int rc;

	buf_init(&quiet, CHECK_ERRS_MAX);
	(void)cfg_load_file(c, ck->posta_path, SCOPE_POSTA, false, &quiet);
	(void)cfg_set(c, "config_directory", ck->dir, "command line", &quiet);
	buf_deinit(&quiet);
	if (scope == 0)
		return c;
	(void)snprintf(path, sizeof(path), "%s/%s.conf", ck->dir, prog);
	if (report && access(path, F_OK) == 0)
		ck->nfiles++;
	rc = cfg_load_file(c, path, SCOPE_POSTA | scope, true, errs);
	if (report)
		check_report(ck, rc, errs);
	else
		buf_reset(errs);
	return c;
}

enum check_want {
	CHECK_DIR,		/* an existing directory */
	CHECK_NEW_DIR,		/* a directory, or its parent exists */
	CHECK_NEW_FILE,		/* a file, or its parent exists */
};

/*
 * check_path - the path in setting name must be absolute and be what
 * want says; a problem is an error or (is_error 0) a warning
 */
static void
check_path(struct check *ck, struct cfg *c, const char *name,
    enum check_want want, int is_error)
{
	const char *path = cfg_str(c, name), *origin;
	char parent[4096], *slash;
	struct stat st;

	origin = check_origin(ck, c, name);
	if (*path != '/') {
		check_msg(ck, 1, origin, "%s: \"%.200s\" is not an absolute "
		    "path", name, path);
		return;
	}
	if (stat(path, &st) == 0) {
		if (want != CHECK_NEW_FILE && !S_ISDIR(st.st_mode))
			check_msg(ck, is_error, origin, "%s: %.200s is not a "
			    "directory", name, path);
		else if (want == CHECK_NEW_FILE && S_ISDIR(st.st_mode))
			check_msg(ck, is_error, origin, "%s: %.200s is a "
			    "directory", name, path);
		return;
	}
	if (want == CHECK_DIR) {
		check_msg(ck, is_error, origin, "%s: directory %.200s does "
		    "not exist", name, path);
		return;
	}
	(void)snprintf(parent, sizeof(parent), "%s", path);
	while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0' &&
	    slash != parent)
		*slash = '\0';		/* trailing slashes */
	if ((slash = strrchr(parent, '/')) == parent)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode))
		check_msg(ck, is_error, origin, "%s: parent directory %.200s "
		    "of %.200s does not exist", name, parent, path);
}

static void
check_system(struct check *ck, struct cfg *pc)
{
	const char *owner = cfg_str(pc, "mail_owner");
	struct passwd *pw;

	check_path(ck, pc, "queue_directory", CHECK_NEW_DIR, 1);
	check_path(ck, pc, "daemon_directory", CHECK_DIR, 1);
	check_path(ck, pc, "mail_root", CHECK_NEW_DIR, 0);
	if (*cfg_str(pc, "maillog_file") != '\0')
		check_path(ck, pc, "maillog_file", CHECK_NEW_FILE, 1);
	errno = 0;
	if ((pw = getpwnam(owner)) == NULL)
		check_msg(ck, 1, check_origin(ck, pc, "mail_owner"),
		    "mail_owner: no such user \"%.100s\"", owner);
	else if (pw->pw_uid == 0)
		check_msg(ck, 1, check_origin(ck, pc, "mail_owner"),
		    "mail_owner: must not be root (\"%.100s\" has uid 0)",
		    owner);
}

/*
 * check_table_kind - how a setting's tables are checked: the lists of
 * *_maps settings through map_check(), user_database through
 * userdb_check() (a passwd-like file is not a key-value table); NULL
 * for other settings
 */
static int (*
check_table_kind(const char *name))(const char *, struct buf *)
{
	size_t len = strlen(name);

	if (len > 5 && strcmp(name + len - 5, "_maps") == 0)
		return map_check;
	if (strcmp(name, "user_database") == 0)
		return userdb_check;
	return NULL;
}

/* check_tables - every table named in a setting of c, each once */
static void
check_tables(struct check *ck, struct cfg *c, struct buf *errs)
{
	int (*checker)(const char *, struct buf *);
	const struct cfg_def *d;
	const char *pos, *origin, *line, *nl;
	char item[CHECK_ITEM_MAX], where[4352], key[CHECK_ITEM_MAX + 2];
	size_t i;
	int rc;

	for (d = posta_settings; d->name != NULL; d++) {
		if ((checker = check_table_kind(d->name)) == NULL ||
		    !cfg_is_defined(c, d->name))
			continue;
		if ((origin = cfg_origin(c, d->name)) != NULL)
			(void)snprintf(where, sizeof(where), "%s: %s", origin,
			    d->name);
		else
			(void)snprintf(where, sizeof(where), "%s: %s "
			    "(default)", ck->posta_path, d->name);
		pos = cfg_str(c, d->name);
		while ((rc = cfg_list_next(&pos, item, sizeof(item))) != 0) {
			if (rc < 0) {
				check_msg(ck, 1, where, "table name too long");
				break;
			}
			/* the same file may be a map and a user database */
			(void)snprintf(key, sizeof(key), "%c %s",
			    checker == map_check ? 'm' : 'u', item);
			for (i = 0; i < ck->nspecs; i++)
				if (strcmp(ck->specs[i], key) == 0)
					break;
			if (i < ck->nspecs)
				continue;
			ck->specs = xreallocarray(ck->specs, ck->nspecs + 1,
			    sizeof(*ck->specs));
			ck->specs[ck->nspecs++] = xstrdup(key);
			if (checker(item, errs) == 0) {
				buf_reset(errs);
				continue;
			}
			if (buf_len(errs) == 0)
				check_msg(ck, 1, where, "table %.200s is not "
				    "valid", item);
			for (line = buf_cstr(errs); *line != '\0'; line = nl) {
				nl = strchr(line, '\n');
				nl = nl != NULL ? nl + 1 : line + strlen(line);
				fprintf(stderr, "%s: %.*s%s", where,
				    (int)(nl - line), line,
				    nl[-1] == '\n' ? "" : "\n");
				ck->nerr++;
			}
			buf_reset(errs);
		}
	}
}

/* check_service - the program a service runs, and its -o tables */
static void
check_service(struct check *ck, struct cfg *pc,
    const struct mastercf_service *svc, struct buf *errs)
{
	const char *base = strrchr(svc->command, '/');
	char path[4096];
	struct cfg *c;
	size_t i;

	base = base != NULL ? base + 1 : svc->command;
	if (svc->command[0] == '/')
		(void)snprintf(path, sizeof(path), "%s", svc->command);
	else
		(void)snprintf(path, sizeof(path), "%s/%s",
		    cfg_str(pc, "daemon_directory"), svc->command);
	if (access(path, X_OK) < 0)
		check_msg(ck, 0, svc->origin, "service %s: cannot run "
		    "%.200s: %s", svc->name, path, strerror(errno));
	if (svc->noverrides == 0)
		return;
	c = check_prog_cfg(ck, base, false, errs);
	for (i = 0; i < svc->noverrides; i++)
		(void)cfg_set_assignment(c, svc->overrides[i], svc->origin,
		    errs);
	buf_reset(errs);	/* mastercf reported bad overrides */
	check_tables(ck, c, errs);
	cfg_free(&c);
}

int
check_config(const char *dir, struct check_summary *sum_r)
{
	const char *const *progs = settings_programs();
	struct check ck;
	struct mastercf *mcf = NULL;
	struct cfg *pc, **pcfg;
	struct buf errs;
	char path[4096];
	size_t i, nprogs;
	int rc;

	memset(&ck, 0, sizeof(ck));
	ck.dir = dir;
	(void)snprintf(ck.posta_path, sizeof(ck.posta_path), "%s/posta.conf",
	    dir);
	buf_init(&errs, CHECK_ERRS_MAX);

	pc = cfg_new(posta_settings, SCOPE_POSTA);
	rc = cfg_load_file(pc, ck.posta_path, SCOPE_POSTA, false, &errs);
	check_report(&ck, rc, &errs);
	/* as settings_open() does: $config_directory is where we read */
	(void)cfg_set(pc, "config_directory", dir, "command line", &errs);
	buf_reset(&errs);
	ck.nfiles++;

	for (nprogs = 0; progs[nprogs] != NULL; nprogs++)
		;
	pcfg = xcalloc(nprogs + 1, sizeof(*pcfg));
	for (i = 0; i < nprogs; i++)
		pcfg[i] = check_prog_cfg(&ck, progs[i], true, &errs);

	(void)snprintf(path, sizeof(path), "%s/master.conf", dir);
	if ((rc = mastercf_load(path, &mcf, &errs)) == 0)
		ck.nfiles++;
	check_report(&ck, rc, &errs);

	check_system(&ck, pc);
	check_tables(&ck, pc, &errs);
	for (i = 0; i < nprogs; i++)
		check_tables(&ck, pcfg[i], &errs);
	for (i = 0; mcf != NULL && i < mcf->n; i++)
		check_service(&ck, pc, &mcf->svc[i], &errs);

	for (i = 0; i < nprogs; i++)
		cfg_free(&pcfg[i]);
	free(pcfg);
	for (i = 0; i < ck.nspecs; i++)
		free(ck.specs[i]);
	free(ck.specs);
	if (sum_r != NULL) {
		sum_r->files = ck.nfiles;
		sum_r->services = mcf != NULL ? mcf->n : 0;
		sum_r->tables = ck.nspecs;
		sum_r->warnings = ck.nwarn;
	}
	mastercf_free(&mcf);
	cfg_free(&pc);
	buf_deinit(&errs);
	return ck.nerr;
}

int
cmd_check(const char *dir, int argc, char **argv)
{
	struct check_summary sum;
	int ch, verbose = 0, nerr;

	while ((ch = getopt(argc, argv, "v")) != -1) {
		switch (ch) {
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
			return POSTA_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	nerr = check_config(dir, &sum);
	if (nerr > 0) {
		if (verbose)
			fprintf(stderr, "posta: %d error%s in %s\n", nerr,
			    nerr == 1 ? "" : "s", dir);
		return POSTA_EXIT_FAIL;
	}
	if (verbose)
		printf("posta: %s is valid: %zu files, %zu services, %zu "
		    "tables, %d warning%s\n", dir, sum.files, sum.services,
		    sum.tables, sum.warnings, sum.warnings == 1 ? "" : "s");
	return POSTA_EXIT_OK;
}
