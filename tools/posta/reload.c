/*
 * reload - "posta reload": check the configuration, then SIGHUP to the
 * running master, which re-reads posta.conf and master.conf.  A broken
 * configuration is refused here already, with file:line, rather than
 * only in master's log.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "posta.h"

int
cmd_reload(const char *dir, int argc, char **argv)
{
	struct cfg *c;
	pid_t pid;
	int nerr, rc;

	(void)argv;
	if (argc != 1) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if ((c = posta_conf_load(dir)) == NULL)
		return POSTA_EXIT_FAIL;
	rc = master_probe(cfg_str(c, "queue_directory"), &pid);
	cfg_free(&c);
	if (rc == 0)
		fprintf(stderr, "posta: posta is not running\n");
	if (rc != 1)
		return POSTA_EXIT_FAIL;
	if ((nerr = check_config(dir, NULL)) > 0) {
		fprintf(stderr, "posta: not reloading: %d error%s in the "
		    "configuration\n", nerr, nerr == 1 ? "" : "s");
		return POSTA_EXIT_FAIL;
	}
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "posta: cannot signal master (pid %ld): %s\n",
		    (long)pid, strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	printf("posta reloading (pid %ld)\n", (long)pid);
	return POSTA_EXIT_OK;
}
