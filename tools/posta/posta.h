/*
 * posta - the admin command: shared declarations of its sub-commands
 *
 * main.c parses "posta [-c config_dir] COMMAND [args]" and calls one
 * cmd_*() below; each lives in its own file and returns the exit status
 * of the command (0 success, 1 failure, 2 usage error).  dir is the
 * absolute configuration directory.  Messages for the admin go to
 * standard error as "posta: ..."; problems found in files are printed
 * as "file:line: message".
 *
 * The helpers in ctl.c are shared by start, stop, reload and status:
 * they read posta.conf and find out, through the flock(2) master holds
 * on $queue_directory/pid/master.pid, whether a master is running.
 */
#ifndef POSTA_TOOL_H
#define POSTA_TOOL_H

#include <stdbool.h>
#include <sys/types.h>

#include "cfg.h"

#define POSTA_EXIT_OK		0
#define POSTA_EXIT_FAIL		1
#define POSTA_EXIT_USAGE	2

int	cmd_start(const char *dir, int argc, char **argv);
int	cmd_stop(const char *dir, int argc, char **argv);
int	cmd_reload(const char *dir, int argc, char **argv);
int	cmd_status(const char *dir, int argc, char **argv);
int	cmd_check(const char *dir, int argc, char **argv);
int	cmd_config(const char *dir, int argc, char **argv);
int	cmd_map(const char *dir, int argc, char **argv);
int	cmd_queue(const char *dir, int argc, char **argv);

/*
 * posta_conf_load - dir/posta.conf as a cfg of the posta.conf scope, or
 * NULL after printing the errors to standard error
 */
struct cfg *posta_conf_load(const char *dir);

/*
 * master_probe - is a master running on queue_directory qdir?  1 with
 * its pid in *pid_r, 0 when not (no pid file, or nobody holds its lock:
 * a stale file does not count), -1 with a message printed when the pid
 * file cannot be read or holds no pid while locked.
 */
int	master_probe(const char *qdir, pid_t *pid_r);
/* master_lock_held - 1 if the pid file is locked, 0 if not, -1 error */
int	master_lock_held(const char *qdir);

struct check_summary {
	size_t	 files;		/* configuration files read */
	size_t	 services;	/* in master.conf */
	size_t	 tables;	/* lookup tables checked */
	int	 warnings;
};

/*
 * check_config - the full "posta check" of dir: every problem is printed
 * to standard error; returns the number of errors (warnings not
 * counted).  sum_r, if not NULL, gets what was looked at.
 */
int	check_config(const char *dir, struct check_summary *sum_r);

/* usage - print the synopsis to standard error */
void	usage(void);

#endif
