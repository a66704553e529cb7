/*
 * reply - a failure (or answer) a peer will hear
 *
 * The producer fills in an SMTP-style code, an RFC 3463 enhanced status
 * code and a text that is safe to show to the client; internal detail
 * goes to the log.  smtpd turns it into an SMTP line, imapd into NO/BAD,
 * qmgr into a DSN: the producer never knows which.
 */
#ifndef POSTA_REPLY_H
#define POSTA_REPLY_H

#include <stdio.h>

struct reply {
	int	code;		/* 250, 451, 550 ... */
	char	dsn[12];	/* "5.1.1" */
	char	text[256];	/* shown to the client */
};

/* reply_set - fill r; text is cut to fit */
#define reply_set(r, c, d, ...) do {					\
	(r)->code = (c);						\
	(void)snprintf((r)->dsn, sizeof((r)->dsn), "%s", (d));		\
	(void)snprintf((r)->text, sizeof((r)->text), __VA_ARGS__);	\
} while (0)

#endif
