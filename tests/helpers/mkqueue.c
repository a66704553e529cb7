/*
 * mkqueue - write a queue file the way smtpd does, for tests
 *
 *	mkqueue [-a] QUEUE_DIR SENDER RCPT... < message
 *
 * Reads the message from standard input, turns each LF not after a CR
 * into CRLF (queue content has CRLF line ends), writes it with the
 * lib/queue writer into incoming/ durably and prints the queue ID.
 * With -a the file is then renamed into active/, as qmgr does when it
 * takes a message.  An empty SENDER is the null sender.  Exit 0, or 1
 * with the reason on standard error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "queue.h"

int
main(int argc, char **argv)
{
	struct queue_env *env;
	struct queue_writer *w;
	struct reply r;
	struct buf b;
	char from[4096], to[4096];
	int c, prev = 0, to_active = 0, i;

	log_init("mkqueue", LOG_TO_STDERR);
	reply_set(&r, 451, "4.3.0", "write error");
	while ((c = getopt(argc, argv, "a")) != -1) {
		if (c != 'a')
			goto usage;
		to_active = 1;
	}
	if (argc - optind < 3)
		goto usage;
	env = queue_env_new();
	queue_env_set(&env->sender, argv[optind + 1]);
	for (i = optind + 2; i < argc; i++)
		(void)queue_env_add_rcpt(env, argv[i], NULL, 0);
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
	    queue_writer_commit(w, &r) < 0 ||
	    queue_dir_sync(argv[optind], QUEUE_INCOMING) < 0) {
		fprintf(stderr, "mkqueue: cannot write the queue file: %s\n",
		    r.text);
		return 1;
	}
	if (to_active) {
		if (queue_path(from, sizeof(from), argv[optind],
		    QUEUE_INCOMING, env->id) < 0 ||
		    queue_path(to, sizeof(to), argv[optind], QUEUE_ACTIVE,
		    env->id) < 0 || rename(from, to) < 0) {
			perror("mkqueue: rename into active/");
			return 1;
		}
	}
	printf("%s\n", env->id);
	queue_writer_free(&w);
	queue_env_free(&env);
	buf_deinit(&b);
	return 0;
usage:
	fprintf(stderr, "usage: mkqueue [-a] QUEUE_DIR SENDER RCPT...\n");
	return 2;
}
