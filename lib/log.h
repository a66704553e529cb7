/*
 * log - logging for every posta program
 *
 * Lines look like Postfix's so admins can grep them the same way:
 *
 *	posta/smtpd[4121]: 9C31F20A4D: client=mx.example.org[192.0.2.7]
 *
 * The queue ID, where there is one, is the caller's first "%s: ".
 * log_init(prog, flags) names the program ("smtpd" logs as
 * "posta/smtpd") and picks the sinks: syslog (facility mail, with the
 * PID), standard error (LOG_TO_STDERR: foreground mode; the line then
 * carries the "posta/prog[pid]: " prefix itself) and/or a file
 * (log_open_file(): one write(2) per line with O_APPEND, so several
 * processes may share it).  The environment variable POSTA_LOG_STDERR=1
 * turns on LOG_TO_STDERR and POSTA_LOG_FILE=path opens a file: master
 * uses them to pass its foreground mode on to its children.
 *
 * log_fatal() logs and exits with status 1 (cannot continue: bad config,
 * out of memory); log_panic() logs and aborts (a bug).  Lines are cut at
 * LOG_LINE_MAX bytes; control characters from the caller's data are
 * shown as '?', so a peer cannot forge log lines.
 */
#ifndef POSTA_LOG_H
#define POSTA_LOG_H

#include <stdarg.h>

#define LOG_LINE_MAX	2048

#define LOG_TO_SYSLOG	0x01
#define LOG_TO_STDERR	0x02

enum log_level {
	LOG_L_DEBUG,
	LOG_L_INFO,
	LOG_L_WARN,
	LOG_L_ERR,
	LOG_L_FATAL,
	LOG_L_PANIC,
};

void	log_init(const char *prog, int flags);
/* log_open_file - also append every line to path; 0 or -1 (errno) */
int	log_open_file(const char *path);
void	log_set_debug(int on);
const char *log_prog(void);

void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_vmsg(enum log_level, const char *fmt, va_list);

#define log_debug(...)	log_msg(LOG_L_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_L_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_L_WARN, __VA_ARGS__)
#define log_err(...)	log_msg(LOG_L_ERR, __VA_ARGS__)

/*
 * log_lines - log each non-empty line of text (as a struct buf of
 * "file:line: message\n" errors holds them) as its own line
 */
void	log_lines(enum log_level, const char *text);

void	log_fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	log_panic(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
