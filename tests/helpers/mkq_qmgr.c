/*
 * mkq_qmgr - write a queue file for the qmgr tests
 *
 *	mkq_qmgr [-t ARRIVAL] [-N NOTIFY] [-R RET] [-d DIR] QUEUE_DIR SENDER
 *	    RCPT... < message
 *
 * Like mkqueue, plus what the qmgr tests need: -t sets the arrival time
 * (seconds since the epoch: mail that is already old), -N the NOTIFY
 * bits of every recipient (SMTP_NOTIFY_*: 1 never, 2 success, 4
 * failure, 8 delay), -R the RET value (1 full, 2 headers), -d moves the
 * finished file from incoming/ into that queue sub-directory (active,
 * deferred, hold).  LF without CR becomes CRLF.  Prints the queue ID;
 * exit 0, 1 on failure, 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "queue.h"
#include "strnum.h"

static int
usage(void)
{
	fprintf(stderr, "usage: mkq_qmgr [-t arrival] [-N notify] [-R ret] "
	    "[-d dir] QUEUE_DIR SENDER RCPT...\n");
	return 2;
}

int
main(int argc, char **argv)
{
	unsigned long long arrival = 0, notify = 0, ret = 0;
	const char *dir = NULL;
	struct queue_env *env;
	struct queue_writer *w;
	struct reply r;
	struct buf b;
	char from[4096], to[4096];
	int c, prev = 0, i;

	log_init("mkq_qmgr", LOG_TO_STDERR);
	reply_set(&r, 451, "4.3.0", "write error");
	while ((c = getopt(argc, argv, "t:N:R:d:")) != -1) {
		switch (c) {
		case 't':
			if (str_to_uint(optarg, 1, INT64_MAX, &arrival) < 0)
				return usage();
			break;
		case 'N':
			if (str_to_uint(optarg, 1, 15, &notify) < 0)
				return usage();
			break;
		case 'R':
			if (str_to_uint(optarg, 1, 2, &ret) < 0)
				return usage();
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind < 3)
		return usage();
	env = queue_env_new();
	env->arrival = (int64_t)arrival;
	env->ret = (int)ret;
	queue_env_set(&env->sender, argv[optind + 1]);
	for (i = optind + 2; i < argc; i++)
		(void)queue_env_add_rcpt(env, argv[i], NULL, (unsigned)notify);
	buf_init(&b, 0);
	while ((c = getchar()) != EOF) {
		if (c == '\n' && prev != '\r')
			(void)buf_putc(&b, '\r');
		(void)buf_putc(&b, c);
		prev = c;
	}
	if ((w = queue_writer_new(argv[optind], env, &r)) == NULL ||
	    queue_writer_write(w, b.data != NULL ? b.data : "", b.len) < 0 ||
	    queue_writer_seal(w, &r) < 0 || queue_writer_sync(w) < 0 ||
	    queue_writer_commit(w, &r) < 0) {
		fprintf(stderr, "mkq_qmgr: cannot write: %s\n", r.text);
		return 1;
	}
	if (dir != NULL) {
		if (queue_path(from, sizeof(from), argv[optind],
		    QUEUE_INCOMING, env->id) < 0 ||
		    snprintf(to, sizeof(to), "%s/%s/%s", argv[optind], dir,
		    env->id) >= (int)sizeof(to) || rename(from, to) < 0) {
			perror("mkq_qmgr: rename");
			return 1;
		}
	}
	printf("%s\n", env->id);
	queue_writer_free(&w);
	queue_env_free(&env);
	buf_deinit(&b);
	return 0;
}
