/*
 * sendmail - the Sendmail-compatible injector: shared declarations
 *
 * sendmail(1) reads a message on standard input and submits it by
 * speaking SMTP to the smtpd "submit" service on the Unix socket
 * $queue_directory/public/submit, so every check smtpd makes applies
 * and nothing here needs privileges beyond access to that socket.
 * Files by job:
 *
 *	main.c		options, posta.conf, the sender, the exit status;
 *			-bp (and the name mailq) lists the queue
 *	addr.c		address lists (RFC 5322 3.4) from the command line
 *			and from To:/Cc:/Bcc: headers, address checks
 *	message.c	standard input into a private spool file: line ends
 *			made CR LF, the lone "." rule, dot-stuffing, header
 *			work (Bcc: removed, From:/Date:/Message-ID: added,
 *			recipients for -t), size limit
 *	smtp.c		the SMTP client dialogue over lib/stream
 *	relay.c		-bs: SMTP between standard input/output and the
 *			socket
 *
 * Exit status follows sysexits.h: EX_USAGE for bad options or
 * addresses, EX_NOUSER for a refused recipient, EX_TEMPFAIL for a 4xx
 * reply or an unreachable socket, EX_DATAERR for refused content,
 * EX_NOPERM for a refused sender or a socket we may not use, EX_CONFIG
 * for a bad posta.conf, EX_IOERR / EX_OSERR for local failures.  Every
 * failure prints one "sendmail: ..." line on standard error.
 */
#ifndef POSTA_SENDMAIL_H
#define POSTA_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"

#define SM_ADDR_MAX		254	/* RFC 5321 4.5.3.1.3, path less <> */
#define SM_RCPT_MAX		10000	/* = QUEUE_RCPT_MAX */
#define SM_HEADER_MAX		(1024 * 1024)	/* header block held */
#define SM_LINE_SEG		(64 * 1024)	/* longer lines are cut */
#define SM_FULLNAME_MAX		200
#define SM_TIMEOUT_MS		300000	/* per SMTP reply, RFC 5321 4.5.3.2 */

/* a list of addresses (owned strings) */
struct sm_addrs {
	char	**v;
	size_t	 n, cap;
};

/* what the command line and posta.conf say */
struct sm_conf {
	const char *prog;		/* "sendmail" or "mailq" for messages */
	char	*qdir;			/* queue_directory */
	char	*mydomain;		/* for addresses without a domain */
	char	*myhostname;		/* EHLO, Message-ID */
	uint64_t size_limit;		/* message_size_limit */
	char	*sender;		/* envelope sender, "" = null */
	char	*fullname;		/* -F or $NAME, or NULL */
	bool	 extract;		/* -t */
	bool	 ignore_dot;		/* -i, -oi */
	bool	 verbose;		/* -v */
	const char *body;		/* -B: "7BIT", "8BITMIME" or NULL */
	const char *notify;		/* -N: NOTIFY= value or NULL */
	const char *ret;		/* -R: "FULL", "HDRS" or NULL */
	char	*envid;			/* -V: ENVID= (xtext) or NULL */
};

/* the message spooled from standard input */
struct sm_msg {
	FILE	*spool;			/* dot-stuffed, CR LF, no final "." */
	uint64_t size;			/* content bytes, stuffing not counted */
	bool	 is_8bit;		/* a byte >= 0x80 somewhere */
	struct sm_addrs rcpts;		/* from headers (-t) */
};

/* addr.c */
void	sm_addrs_add(struct sm_addrs *, const char *addr);
void	sm_addrs_free(struct sm_addrs *);
/*
 * sm_addr_list - parse an address list (a header value or a command
 * line argument; CR LF inside is folding) and append each address,
 * completed with @mydomain when it has no domain, to out.  Group names,
 * display names, comments and source routes are dropped.  0, or -1 with
 * a message printed (bad or too long address, too many).
 */
int	sm_addr_list(const struct sm_conf *, const char *text, size_t len,
	    struct sm_addrs *out, const char *where);
/* sm_addr_ok - 1 if addr is safe to send in MAIL/RCPT, else 0 */
int	sm_addr_ok(const char *addr);
/* sm_addr_is_8bit - 1 if addr has a byte >= 0x80 */
int	sm_addr_is_8bit(const char *addr);

/* message.c */
/* sm_msg_read - standard input into msg; 0, or an EX_* code (printed) */
int	sm_msg_read(const struct sm_conf *, int fd, struct sm_msg *msg);
void	sm_msg_free(struct sm_msg *);

/* smtp.c */
/* sm_submit - the whole SMTP dialogue; 0 or an EX_* code (printed) */
int	sm_submit(const struct sm_conf *, struct sm_msg *,
	    const struct sm_addrs *rcpts);
/* sm_connect - a connected socket to public/submit, or an EX_* code
 * as a negative number (printed) */
int	sm_connect(const struct sm_conf *);

/* relay.c */
/* sm_relay - -bs: copy both ways until the server closes; EX_* code */
int	sm_relay(const struct sm_conf *);

/* main.c */
/* sm_err - "prog: " + message on standard error, control bytes as '?' */
void	sm_err(const struct sm_conf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
