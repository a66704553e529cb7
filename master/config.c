/*
 * config - master's settings (posta.conf) and service table (master.conf)
 *
 * Both files are read together, at start and on every reload, and
 * either both are taken or neither: a reload with an error keeps the
 * running configuration.  Errors are "file:line: message" lines.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "priv.h"
#include "settings.h"

int
master_config_load(const char *dir, struct cfg **cfg_r,
    struct mastercf **mcf_r, struct buf *errs)
{
	struct cfg *cfg;
	struct mastercf *mcf = NULL;
	char path[4096];
	const char *qdir;
	uid_t uid;
	gid_t gid;
	int rc = 0;

	*cfg_r = NULL;
	*mcf_r = NULL;
	if ((cfg = settings_open("master", dir, errs)) == NULL)
		rc = -1;
	if (snprintf(path, sizeof(path), "%s/master.conf", dir) >=
	    (int)sizeof(path)) {
		(void)buf_printf(errs, "%s: configuration directory name "
		    "too long\n", dir);
		rc = -1;
	} else if (mastercf_load(path, &mcf, errs) < 0)
		rc = -1;
	if (cfg != NULL) {
		qdir = cfg_str(cfg, "queue_directory");
		if (*qdir != '/') {
			(void)buf_printf(errs, "%s: queue_directory must be "
			    "an absolute path, not \"%.100s\"\n",
			    cfg_origin(cfg, "queue_directory") != NULL ?
			    cfg_origin(cfg, "queue_directory") : "default",
			    qdir);
			rc = -1;
		}
		if (*cfg_str(cfg, "daemon_directory") != '/') {
			(void)buf_printf(errs, "%s: daemon_directory must be "
			    "an absolute path\n",
			    cfg_origin(cfg, "daemon_directory") != NULL ?
			    cfg_origin(cfg, "daemon_directory") : "default");
			rc = -1;
		}
		if (geteuid() == 0 && priv_lookup(cfg_str(cfg, "mail_owner"),
		    &uid, &gid, errs) < 0)
			rc = -1;
	}
	if (rc < 0) {
		cfg_free(&cfg);
		mastercf_free(&mcf);
		return -1;
	}
	*cfg_r = cfg;
	*mcf_r = mcf;
	return 0;
}

/* master_log_errors - one log line per line of errs */
void
master_log_errors(const struct buf *errs)
{
	log_lines(LOG_L_ERR, buf_cstr(errs));
}

/*
 * stderr_is_journal - systemd connected standard error to the journal
 * (JOURNAL_STREAM holds its "device:inode", systemd.exec(5))
 */
static bool
stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (e == NULL || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/*
 * master_log_setup - log to maillog_file (else syslog), to stderr too in
 * the foreground, and pass the same on to the children through the
 * environment (see log.h).  Under systemd without maillog_file, syslog
 * already ends in the journal that standard error goes to: one copy.
 */
int
master_log_setup(struct master *m)
{
	const char *file = cfg_str(m->cfg, "maillog_file");
	bool to_stderr = m->is_foreground &&
	    !(*file == '\0' && stderr_is_journal());
	int rc = 0;

	/* log_init() reads these: what we pass on, not what we were given */
	(void)unsetenv("POSTA_LOG_FILE");
	(void)unsetenv("POSTA_LOG_STDERR");
	log_init("master", (to_stderr ? LOG_TO_STDERR : 0) |
	    (*file != '\0' ? 0 : LOG_TO_SYSLOG));
	if (*file != '\0') {
		if (log_open_file(file) < 0) {
			log_err("cannot open maillog_file %s: %s", file,
			    strerror(errno));
			rc = -1;
		}
		(void)setenv("POSTA_LOG_FILE", file, 1);
	} else
		(void)unsetenv("POSTA_LOG_FILE");
	if (to_stderr)
		(void)setenv("POSTA_LOG_STDERR", "1", 1);
	else
		(void)unsetenv("POSTA_LOG_STDERR");
	if (m->is_debug || cfg_bool(m->cfg, "debug")) {
		log_set_debug(1);
		(void)setenv("POSTA_DEBUG", "1", 1);
	} else {
		log_set_debug(0);
		(void)unsetenv("POSTA_DEBUG");
	}
	return rc;
}

const char *
master_ms_text(int64_t ms, char *out, size_t outsz)
{
	if (ms % 1000 == 0)
		(void)snprintf(out, outsz, "%llds", (long long)(ms / 1000));
	else
		(void)snprintf(out, outsz, "%lldms", (long long)ms);
	return out;
}
