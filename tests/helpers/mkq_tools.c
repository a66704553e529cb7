/*
 * mkq_tools - write one queue file for the queue tools' tests
 *
 *	mkq_tools QDIR DIR [-a arrival] [-f sender] [-H]
 *	    [-d N:DSN:REASON] [-x N:DSN:REASON] [-s N] rcpt ... < content
 *
 * Writes the message (standard input, LF turned into CR LF) with lib/queue
 * into QDIR/incoming/ID, appends the status records asked for (-d
 * deferred, -x failed, -s sent, for recipient index N; -H held=1), then
 * renames it into QDIR/DIR/ (incoming, active, deferred, hold, corrupt)
 * and prints the ID.  -a sets the arrival time (seconds since the
 * epoch); -f the sender ("" is the null sender; default
 * sender@example.org).  Exits 1 with a message on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "reply.h"
#include "strnum.h"

#define MKQ_STATUS_MAX	64

struct mkq_status {
	enum queue_rstatus st;
	unsigned long long idx;
	char	*dsn, *reason;
};

static void
mkq_die(const char *what)
{
	fprintf(stderr, "mkq_tools: %s\n", what);
	exit(1);
}

/* mkq_status_parse - "N:DSN:REASON" (or just "N" for sent) */
static void
mkq_status_parse(char *arg, enum queue_rstatus st, struct mkq_status *s)
{
	char *p = strchr(arg, ':'), *q = NULL;

	if (p != NULL) {
		*p++ = '\0';
		if ((q = strchr(p, ':')) != NULL)
			*q++ = '\0';
	}
	if (str_to_uint(arg, 0, QUEUE_RCPT_MAX, &s->idx) < 0)
		mkq_die("bad recipient index");
	s->st = st;
	s->dsn = p != NULL ? p : (char *)(st == QUEUE_R_SENT ? "2.0.0" :
	    "4.0.0");
	s->reason = q != NULL ? q : (char *)"";
}

static enum queue_dir
mkq_dir(const char *name)
{
	int d;

	for (d = 0; d < QUEUE_NDIRS; d++)
		if (strcmp(name, queue_dir_name((enum queue_dir)d)) == 0)
			return (enum queue_dir)d;
	mkq_die("unknown queue directory");
	return QUEUE_INCOMING;
}

int
main(int argc, char **argv)
{
	struct mkq_status st[MKQ_STATUS_MAX];
	struct queue_writer *w;
	struct queue_env *env;
	struct reply r;
	unsigned long long arrival = 0;
	const char *sender = "sender@example.org", *qdir;
	char path[4096], dst[4096], in[8192];
	enum queue_dir d;
	size_t nst = 0, i, n;
	bool held = false, is_corrupt;
	const char *why;
	int ch, fd, last = 0;

	log_init("mkq_tools", LOG_TO_STDERR);
	if (argc < 3)
		mkq_die("usage: mkq_tools QDIR DIR [options] rcpt ...");
	qdir = argv[1];
	d = mkq_dir(argv[2]);
	optind = 3;
	while ((ch = getopt(argc, argv, "a:d:f:Hs:x:")) != -1) {
		if ((ch == 'd' || ch == 's' || ch == 'x') &&
		    nst == MKQ_STATUS_MAX)
			mkq_die("too many status records");
		switch (ch) {
		case 'a':
			if (str_to_uint(optarg, 1, 1ULL << 40, &arrival) < 0)
				mkq_die("bad arrival time");
			break;
		case 'd':
			mkq_status_parse(optarg, QUEUE_R_DEFERRED, &st[nst++]);
			break;
		case 'x':
			mkq_status_parse(optarg, QUEUE_R_FAILED, &st[nst++]);
			break;
		case 's':
			mkq_status_parse(optarg, QUEUE_R_SENT, &st[nst++]);
			break;
		case 'f':
			sender = optarg;
			break;
		case 'H':
			held = true;
			break;
		default:
			mkq_die("bad option");
		}
	}
	if (optind >= argc)
		mkq_die("no recipient");
	env = queue_env_new();
	queue_env_set(&env->sender, sender);
	env->arrival = (int64_t)arrival;
	queue_env_set(&env->client_name, "localhost");
	queue_env_set(&env->client_addr, "127.0.0.1");
	queue_env_set(&env->helo, "test.example");
	queue_env_set(&env->proto, "ESMTP");
	for (i = (size_t)optind; i < (size_t)argc; i++)
		(void)queue_env_add_rcpt(env, argv[i], NULL, 0);
	if ((w = queue_writer_new(qdir, env, &r)) == NULL)
		mkq_die(r.text);
	while ((n = fread(in, 1, sizeof(in), stdin)) > 0) {
		for (i = 0; i < n; i++) {
			if (in[i] == '\n' && last != '\r' &&
			    queue_writer_write(w, "\r", 1) < 0)
				mkq_die("write");
			if (queue_writer_write(w, &in[i], 1) < 0)
				mkq_die("write");
			last = (unsigned char)in[i];
		}
	}
	if (queue_writer_seal(w, &r) < 0 || queue_writer_sync(w) < 0 ||
	    queue_writer_commit(w, &r) < 0)
		mkq_die("cannot write the queue file");
	queue_writer_free(&w);
	if (queue_path(path, sizeof(path), qdir, QUEUE_INCOMING, env->id) < 0 ||
	    (fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		mkq_die("cannot reopen the queue file");
	/* read it back: status records go after what is on disk */
	queue_env_free(&env);
	env = queue_env_new();
	if (queue_read(fd, env, &why, &is_corrupt) < 0)
		mkq_die(why);
	for (i = 0; i < nst; i++) {
		if (st[i].idx >= env->nrcpt)
			mkq_die("recipient index out of range");
		if (queue_status_append(fd, env, (size_t)st[i].idx, st[i].st,
		    st[i].dsn, st[i].reason, st[i].st == QUEUE_R_DEFERRED ?
		    (int64_t)time(NULL) + 3600 : 0) < 0)
			mkq_die("cannot append a status record");
	}
	if (held && queue_hold_append(fd, env, true) < 0)
		mkq_die("cannot append the held record");
	(void)close(fd);
	if (d != QUEUE_INCOMING) {
		if (queue_path(dst, sizeof(dst), qdir, d, env->id) < 0 ||
		    rename(path, dst) < 0) {
			fprintf(stderr, "mkq_tools: rename: %s\n",
			    strerror(errno));
			return 1;
		}
	}
	printf("%s\n", env->id);
	queue_env_free(&env);
	return 0;
}
