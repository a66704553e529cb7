/*
 * test_log - log lines as a file sink sees them: the Postfix-like
 * prefix, level tags, control characters replaced, long lines cut,
 * fatal and panic
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

static char dir[64];
static char path[128];

/* read_log - the whole file into buf (size n); its length */
static size_t
read_log(const char *p, char *buf, size_t n)
{
	ssize_t r;
	size_t got = 0;
	int fd = open(p, O_RDONLY);

	assert_true(fd >= 0);
	while (got < n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	return got;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_log.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/log", dir);
	unsetenv("POSTA_LOG_STDERR");
	unsetenv("POSTA_LOG_FILE");
	unsetenv("POSTA_DEBUG");
	log_init("testprog", 0);
	if (log_open_file(path) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char p2[160];

	(void)state;
	unlink(path);
	snprintf(p2, sizeof(p2), "%s/env.log", dir);
	unlink(p2);
	rmdir(dir);
	return 0;
}

static int
truncate_log(void **state)
{
	(void)state;
	return truncate(path, 0);
}

static void
test_format(void **state)
{
	char want[256], got[4096];

	(void)state;
	assert_string_equal(log_prog(), "posta/testprog");
	log_info("9C31F20A4D: to=<%s>, status=sent", "demo@example.test");
	log_warn("disk %d%% full", 91);
	log_err("cannot open %s", "x");
	snprintf(want, sizeof(want),
	    "posta/testprog[%ld]: 9C31F20A4D: to=<demo@example.test>, "
	    "status=sent\n"
	    "posta/testprog[%ld]: warning: disk 91%% full\n"
	    "posta/testprog[%ld]: error: cannot open x\n",
	    (long)getpid(), (long)getpid(), (long)getpid());
	read_log(path, got, sizeof(got));
	assert_string_equal(got, want);
}

static void
test_lines(void **state)
{
	char want[512], got[4096];
	long pid = (long)getpid();

	(void)state;
	/* empty lines dropped, a last line without '\n' kept whole */
	log_lines(LOG_L_ERR, "a.conf:1: bad\n\nb.conf:2: worse\nlast");
	log_lines(LOG_L_ERR, "");
	snprintf(want, sizeof(want),
	    "posta/testprog[%ld]: error: a.conf:1: bad\n"
	    "posta/testprog[%ld]: error: b.conf:2: worse\n"
	    "posta/testprog[%ld]: error: last\n", pid, pid, pid);
	read_log(path, got, sizeof(got));
	assert_string_equal(got, want);
}

static void
test_debug_switch(void **state)
{
	char got[4096];

	(void)state;
	log_debug("hidden");
	assert_int_equal(read_log(path, got, sizeof(got)), 0);
	log_set_debug(1);
	log_debug("shown %d", 1);
	log_set_debug(0);
	log_debug("hidden again");
	read_log(path, got, sizeof(got));
	assert_non_null(strstr(got, "]: debug: shown 1\n"));
	assert_null(strstr(got, "hidden"));
}

static void
test_control_chars(void **state)
{
	char got[4096];

	(void)state;
	/* a peer's CR LF must not start a forged line */
	log_info("client said: %s", "HELO x\r\nposta/smtpd[1]: fake\t\x01\x1b[1m\x7f");
	read_log(path, got, sizeof(got));
	assert_non_null(strstr(got,
	    "client said: HELO x??posta/smtpd[1]: fake???[1m?\n"));
	/* exactly one line */
	assert_ptr_equal(strchr(got, '\n'), got + strlen(got) - 1);
	/* bytes >= 0x80 (UTF-8) pass unchanged */
	assert_int_equal(truncate(path, 0), 0);
	log_info("caf\xc3\xa9");
	read_log(path, got, sizeof(got));
	assert_non_null(strstr(got, "caf\xc3\xa9\n"));
}

static void
test_long_line(void **state)
{
	char *big = malloc(10000), *got = malloc(20000);
	size_t n;

	(void)state;
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_info("%s", big);
	log_info("after");
	n = read_log(path, got, 20000);
	/* the cut line is LOG_LINE_MAX bytes with its newline, then the next */
	assert_ptr_not_equal(strchr(got, '\n'), NULL);
	assert_int_equal(strchr(got, '\n') - got + 1, LOG_LINE_MAX);
	assert_int_equal(got[LOG_LINE_MAX - 2], 'x');
	assert_non_null(strstr(got + LOG_LINE_MAX, "]: after\n"));
	assert_true(n < LOG_LINE_MAX + 100);
	free(big);
	free(got);
}

static void
test_errno_kept(void **state)
{
	(void)state;
	errno = ENOSPC;
	log_info("something");
	assert_int_equal(errno, ENOSPC);
}

static void
test_env_file(void **state)
{
	char p2[160], got[4096];
	pid_t pid;
	int st;

	(void)state;
	snprintf(p2, sizeof(p2), "%s/env.log", dir);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* master passes its sinks on like this */
		setenv("POSTA_LOG_FILE", p2, 1);
		log_init("child", 0);
		log_info("from the child");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	read_log(p2, got, sizeof(got));
	snprintf(p2, sizeof(p2), "posta/child[%ld]: from the child\n",
	    (long)pid);
	assert_string_equal(got, p2);
}

static void
test_fatal_panic(void **state)
{
	char got[4096];
	pid_t pid;
	int st;

	(void)state;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		log_fatal("bad config: %s", "x.conf:3");
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	pid = fork();
	if (pid == 0) {
		log_panic("broken invariant %d", 7);
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	read_log(path, got, sizeof(got));
	assert_non_null(strstr(got, "]: fatal: bad config: x.conf:3\n"));
	assert_non_null(strstr(got, "]: panic: broken invariant 7\n"));
}

static void
test_open_fails(void **state)
{
	char p2[160];

	(void)state;
	snprintf(p2, sizeof(p2), "%s/no/such/dir/log", dir);
	assert_int_equal(log_open_file(p2), -1);
	/* the old sink is kept */
	log_info("still here");
	{
		char got[512];

		read_log(path, got, sizeof(got));
		assert_non_null(strstr(got, "still here"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_format, truncate_log),
		cmocka_unit_test_setup(test_debug_switch, truncate_log),
		cmocka_unit_test_setup(test_control_chars, truncate_log),
		cmocka_unit_test_setup(test_long_line, truncate_log),
		cmocka_unit_test_setup(test_errno_kept, truncate_log),
		cmocka_unit_test_setup(test_env_file, truncate_log),
		cmocka_unit_test_setup(test_lines, truncate_log),
		cmocka_unit_test_setup(test_fatal_panic, truncate_log),
		cmocka_unit_test_setup(test_open_fails, truncate_log),
	};

	return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
