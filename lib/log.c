/*
 * log - logging for every posta program (see log.h)
 *
 * Every line is formatted once into a fixed buffer, control characters
 * replaced, then written to each sink with a single write(2) (syslog(3)
 * for the syslog sink).  Nothing here allocates, so it is safe to call
 * from the out-of-memory path.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static char log_progname[64] = "posta";
static int log_flags = LOG_TO_STDERR;
static int log_fd = -1;
static int log_debug_on;

void
log_init(const char *prog, int flags)
{
	const char *e;

	(void)snprintf(log_progname, sizeof(log_progname), "posta/%s", prog);
	if ((e = getenv("POSTA_LOG_STDERR")) != NULL && strcmp(e, "1") == 0)
		flags |= LOG_TO_STDERR;
	if ((e = getenv("POSTA_LOG_FILE")) != NULL && *e != '\0')
		(void)log_open_file(e);
	if ((e = getenv("POSTA_DEBUG")) != NULL && strcmp(e, "1") == 0)
		log_debug_on = 1;
	log_flags = flags;
	if (flags & LOG_TO_SYSLOG)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int
log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	if (log_fd >= 0)
		(void)close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_set_debug(int on)
{
	log_debug_on = on;
}

const char *
log_prog(void)
{
	return log_progname;
}

static const char *const log_tag[] = {
	[LOG_L_DEBUG] = "debug: ",
	[LOG_L_INFO] = "",
	[LOG_L_WARN] = "warning: ",
	[LOG_L_ERR] = "error: ",
	[LOG_L_FATAL] = "fatal: ",
	[LOG_L_PANIC] = "panic: ",
};

static const int log_prio[] = {
	[LOG_L_DEBUG] = LOG_DEBUG,
	[LOG_L_INFO] = LOG_INFO,
	[LOG_L_WARN] = LOG_WARNING,
	[LOG_L_ERR] = LOG_ERR,
	[LOG_L_FATAL] = LOG_CRIT,
	[LOG_L_PANIC] = LOG_CRIT,
};

/*
 * The PID of every line, kept: getpid(2) is a system call (glibc no
 * longer caches it) and a busy daemon logs several lines per message.
 * A child of fork(2) asks again.
 */
static pid_t log_pid_cached;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

static void
log_pid_forget(void)
{
	log_pid_cached = 0;
}

static void
log_pid_setup(void)
{
	(void)pthread_atfork(NULL, NULL, log_pid_forget);
}

static long
log_pid(void)
{
	(void)pthread_once(&log_pid_once, log_pid_setup);
	if (log_pid_cached == 0)
		log_pid_cached = getpid();
	return (long)log_pid_cached;
}

static void
log_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX + 64], *msg;
	size_t pre, len, i;
	int n, saved = errno;

	if (lvl == LOG_L_DEBUG && !log_debug_on)
		return;
	n = snprintf(line, sizeof(line), "%s[%ld]: %s", log_progname,
	    log_pid(), log_tag[lvl]);
	pre = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	msg = line + pre;
	n = vsnprintf(msg, LOG_LINE_MAX - pre, fmt, ap);
	len = n < 0 ? 0 : (size_t)n >= LOG_LINE_MAX - pre ?
	    LOG_LINE_MAX - pre - 1 : (size_t)n;
	for (i = 0; i < len; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (log_flags & LOG_TO_SYSLOG) {
		syslog(log_prio[lvl], "%s%s", log_tag[lvl], msg);
	}
	msg[len] = '\n';
	if (log_flags & LOG_TO_STDERR)
		log_write_all(STDERR_FILENO, line, pre + len + 1);
	if (log_fd >= 0)
		log_write_all(log_fd, line, pre + len + 1);
	errno = saved;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void
log_lines(enum log_level lvl, const char *text)
{
	const char *p = text, *nl;

	while (*p != '\0') {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		if (nl > p)
			log_msg(lvl, "%.*s", (int)(nl - p), p);
		p = *nl != '\0' ? nl + 1 : nl;
	}
}

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_L_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_L_PANIC, fmt, ap);
	va_end(ap);
	abort();
}
