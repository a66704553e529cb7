/*
 * status - "posta status": 0 and "posta is running (pid N)" when a
 * master holds the lock of its pid file, else 1 and "posta is not
 * running" (a stale pid file does not count).
 */
#include <stdio.h>

#include "posta.h"

int
cmd_status(const char *dir, int argc, char **argv)
{
	struct cfg *c;
	pid_t pid;
	int rc;

	(void)argv;
	if (argc != 1) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if ((c = posta_conf_load(dir)) == NULL)
		return POSTA_EXIT_FAIL;
	rc = master_probe(cfg_str(c, "queue_directory"), &pid);
	cfg_free(&c);
	if (rc == 1) {
		printf("posta is running (pid %ld)\n", (long)pid);
		return POSTA_EXIT_OK;
	}
	if (rc == 0)
		printf("posta is not running\n");
	return POSTA_EXIT_FAIL;
}
