/*
 * start - "posta start": check the configuration, then run
 * daemon_directory/master -c DIR, which daemonizes and returns once it
 * holds its lock (see master(8)).  Refuses when a master already runs
 * or the configuration has errors, like "postfix start".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posta.h"

int
cmd_start(const char *dir, int argc, char **argv)
{
	struct cfg *c;
	char master[4096];
	const char *qdir;
	pid_t pid, child;
	int nerr, status, rc = POSTA_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if ((nerr = check_config(dir, NULL)) > 0) {
		fprintf(stderr, "posta: not starting: %d error%s in the "
		    "configuration\n", nerr, nerr == 1 ? "" : "s");
		return POSTA_EXIT_FAIL;
	}
	if ((c = posta_conf_load(dir)) == NULL)
		return POSTA_EXIT_FAIL;
	qdir = cfg_str(c, "queue_directory");
	switch (master_probe(qdir, &pid)) {
	case 1:
		fprintf(stderr, "posta: posta is already running (pid %ld)\n",
		    (long)pid);
		goto out;
	case -1:
		goto out;
	}
	if (snprintf(master, sizeof(master), "%s/master",
	    cfg_str(c, "daemon_directory")) >= (int)sizeof(master)) {
		fprintf(stderr, "posta: daemon_directory too long\n");
		goto out;
	}
	if (access(master, X_OK) < 0) {
		fprintf(stderr, "posta: cannot run %s: %s\n", master,
		    strerror(errno));
		goto out;
	}
	(void)fflush(NULL);
	if ((child = fork()) < 0) {
		fprintf(stderr, "posta: fork: %s\n", strerror(errno));
		goto out;
	}
	if (child == 0) {
		execl(master, "master", "-c", dir, (char *)NULL);
		fprintf(stderr, "posta: cannot run %s: %s\n", master,
		    strerror(errno));
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "posta: waitpid: %s\n",
			    strerror(errno));
			goto out;
		}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "posta: not started: master killed by signal "
		    "%d\n", WTERMSIG(status));
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		fprintf(stderr, "posta: not started: master exited with "
		    "status %d (see its messages above or the log)\n",
		    WEXITSTATUS(status));
		goto out;
	}
	if (master_probe(qdir, &pid) != 1) {
		fprintf(stderr, "posta: master exited at once: see the log\n");
		goto out;
	}
	printf("posta started (pid %ld)\n", (long)pid);
	rc = POSTA_EXIT_OK;
out:
	cfg_free(&c);
	return rc;
}
