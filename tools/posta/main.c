/*
 * posta - the admin command
 *
 *	posta [-c config_dir] start | stop | reload | status
 *	posta [-c config_dir] check [-v]
 *	posta [-c config_dir] config [-n] [name ...]
 *	posta [-c config_dir] map build FILE
 *	posta [-c config_dir] queue list | show ID | flush [ID] |
 *	    delete ID|ALL | hold ID | release ID | requeue [ID|ALL]
 *
 * main() only finds the configuration directory (-c, else
 * $POSTA_CONFIG_DIR, else the compiled-in one), makes it absolute (master
 * chdirs, and reload must find it again) and hands the rest of the
 * command line to the sub-command, one file per job.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "posta.h"
#include "settings.h"

static const struct {
	const char *name;
	int (*fn)(const char *, int, char **);
} commands[] = {
	{ "start", cmd_start },
	{ "stop", cmd_stop },
	{ "reload", cmd_reload },
	{ "status", cmd_status },
	{ "check", cmd_check },
	{ "config", cmd_config },
	{ "map", cmd_map },
	{ "queue", cmd_queue },
};

void
usage(void)
{
	fprintf(stderr,
	    "usage: posta [-c config_dir] start | stop | reload | status\n"
	    "       posta [-c config_dir] check [-v]\n"
	    "       posta [-c config_dir] config [-n] [name ...]\n"
	    "       posta [-c config_dir] map build FILE\n"
	    "       posta [-c config_dir] queue list | show ID | flush [ID] |\n"
	    "           delete ID|ALL | hold ID | release ID | "
	    "requeue [ID|ALL]\n");
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	char absdir[PATH_MAX];
	size_t i;
	int ch;

	log_init("posta", LOG_TO_STDERR);
	/* '+': stop at the sub-command, whose options are its own */
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			dir = optarg;
			break;
		case 'h':
			usage();
			return POSTA_EXIT_OK;
		default:
			usage();
			return POSTA_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage();
		return POSTA_EXIT_USAGE;
	}
	if (dir == NULL)
		dir = settings_config_dir();
	if (realpath(dir, absdir) == NULL) {
		fprintf(stderr, "posta: configuration directory %s: %s\n",
		    dir, strerror(errno));
		return POSTA_EXIT_FAIL;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		/* the sub-command sees itself as argv[0]; 0 resets getopt */
		optind = 0;
		return commands[i].fn(absdir, argc, argv);
	}
	fprintf(stderr, "posta: unknown command \"%.100s\"\n", argv[0]);
	usage();
	return POSTA_EXIT_USAGE;
}
