/*
 * qdump - print a queue file's envelope and content, for tests
 *
 *	qdump FILE
 *
 * Reads FILE with lib/queue's reader and prints one "name=value" line
 * per envelope field (sender, body, smtputf8, ret, envid, client_name,
 * client_addr, helo, proto, auth), one "rcpt=ADDR" line per recipient
 * (followed by "orcpt=" and "notify=" lines when set), then
 * "content_size=N", a line "--" and the content bytes exactly as
 * stored.  Exit 0, or 1 with the reason on standard error (2 for a
 * usage error).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"

static void
field(const char *name, const char *v)
{
	if (v != NULL)
		printf("%s=%s\n", name, v);
}

int
main(int argc, char **argv)
{
	struct queue_env *env;
	const char *why;
	bool corrupt;
	char buf[65536];
	uint64_t left;
	ssize_t n;
	size_t i;
	int fd;

	log_init("qdump", LOG_TO_STDERR);
	if (argc != 2) {
		fprintf(stderr, "usage: qdump FILE\n");
		return 2;
	}
	if ((fd = open(argv[1], O_RDONLY)) < 0) {
		fprintf(stderr, "qdump: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	env = queue_env_new();
	if (queue_read(fd, env, &why, &corrupt) < 0) {
		fprintf(stderr, "qdump: %s: %s%s\n", argv[1],
		    corrupt ? "corrupt: " : "", why);
		return 1;
	}
	field("id", env->id);
	field("sender", env->sender);
	printf("body=%d\nsmtputf8=%d\nret=%d\n", env->body,
	    (int)env->smtputf8, env->ret);
	field("envid", env->envid);
	field("client_name", env->client_name);
	field("client_addr", env->client_addr);
	field("helo", env->helo);
	field("proto", env->proto);
	field("auth", env->auth);
	for (i = 0; i < env->nrcpt; i++) {
		field("rcpt", env->rcpt[i].addr);
		field("orcpt", env->rcpt[i].orcpt);
		if (env->rcpt[i].notify != 0)
			printf("notify=%u\n", env->rcpt[i].notify);
	}
	printf("content_size=%llu\n--\n",
	    (unsigned long long)env->content_size);
	fflush(stdout);
	if (lseek(fd, (off_t)env->content_offset, SEEK_SET) < 0) {
		fprintf(stderr, "qdump: seek: %s\n", strerror(errno));
		return 1;
	}
	for (left = env->content_size; left > 0; left -= (uint64_t)n) {
		n = read(fd, buf, left < sizeof(buf) ? (size_t)left :
		    sizeof(buf));
		if (n <= 0) {
			fprintf(stderr, "qdump: short content\n");
			return 1;
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
	}
	queue_env_free(&env);
	(void)close(fd);
	return fflush(stdout) == 0 ? 0 : 1;
}
