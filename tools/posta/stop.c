/*
 * stop - "posta stop": SIGTERM to the running master, then wait until
 * it has let go of its pid file lock and its process is gone (or only a
 * zombie waiting for its parent), at most master_stop_timeout plus a
 * margin: master itself waits that long for its children before it
 * kills them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "posta.h"

#define STOP_MARGIN	10	/* seconds beyond master_stop_timeout */

/* pid_gone - 1 if pid no longer runs (gone, or a zombie), else 0 */
static int
pid_gone(pid_t pid)
{
	char path[64], text[512], *p;
	FILE *fp;
	size_t n;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT;
	n = fread(text, 1, sizeof(text) - 1, fp);
	(void)fclose(fp);
	text[n] = '\0';
	/* the state follows the last ')': the name may hold anything */
	if ((p = strrchr(text, ')')) == NULL || p[1] != ' ')
		return 0;
	return p[2] == 'Z' || p[2] == 'X';
}

int
cmd_stop(const char *dir, int argc, char **argv)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 }, t0, now;
	struct cfg *c;
	char qdir[4096];
	long long timeout;
	pid_t pid;
	int rc;

	(void)argv;
	if (argc != 1) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if ((c = posta_conf_load(dir)) == NULL)
		return POSTA_EXIT_FAIL;
	(void)snprintf(qdir, sizeof(qdir), "%s", cfg_str(c,
	    "queue_directory"));
	timeout = cfg_int(c, "master_stop_timeout") + STOP_MARGIN;
	cfg_free(&c);
	if ((rc = master_probe(qdir, &pid)) == 0)
		fprintf(stderr, "posta: posta is not running\n");
	if (rc != 1)
		return POSTA_EXIT_FAIL;
	if (kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "posta: cannot signal master (pid %ld): %s\n",
		    (long)pid, strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (master_lock_held(qdir) == 0 && pid_gone(pid))
			break;
		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > timeout) {
			fprintf(stderr, "posta: master (pid %ld) has not "
			    "exited after %llds\n", (long)pid, timeout);
			return POSTA_EXIT_FAIL;
		}
		(void)nanosleep(&pause, NULL);
	}
	printf("posta stopped\n");
	return POSTA_EXIT_OK;
}
