/*
 * sendmail - the Sendmail-compatible mail injector of posta
 *
 *	sendmail [-t] [-f sender] [-F fullname] [-i] [-oi] [-bm] [-v]
 *	    [-B type] [-N dsn] [-R ret] [-V envid] [-C config_dir]
 *	    [--] [recipient ...]
 *	sendmail -bs		SMTP on standard input and output
 *	sendmail -bp, mailq	list the queue
 *
 * main() parses the options (the unknown -o and other options that
 * Sendmail and Postfix accept are ignored, as Postfix does), reads
 * posta.conf, works out the sender and the recipients, and hands over to
 * the job.  Options stop at the first argument that is not one (so an
 * address that looks like an option cannot be smuggled in after the
 * recipients), and no recipient may start with '-'.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "mem.h"
#include "qlist.h"
#include "sendmail.h"
#include "settings.h"

#define SM_ENVID_MAX	100	/* RFC 3461 4.4 */

enum sm_mode {
	SM_SEND,
	SM_RELAY,
	SM_LIST,
	SM_NEWALIASES,
};

void
sm_err(const struct sm_conf *conf, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "%s: ", conf->prog);
	qlist_put_safe(stderr, text, strlen(text), 0);
	putc('\n', stderr);
}

static void
sm_usage(const struct sm_conf *conf)
{
	fprintf(stderr,
	    "usage: %s [-t] [-i] [-f sender] [-F fullname] [-v] [-B type] "
	    "[-N dsn]\n"
	    "           [-R ret] [-V envid] [-C config_dir] [--] "
	    "[recipient ...]\n"
	    "       %s -bs | -bp\n", conf->prog, conf->prog);
}

/* sm_notify - -N: "never" or a list of success, failure, delay */
static const char *
sm_notify(const char *arg)
{
	static char out[64];
	char item[32];
	const char *p = arg;
	size_t len = 0;
	int rc, n = 0;

	if (strcasecmp(arg, "never") == 0)
		return "NEVER";
	out[0] = '\0';
	while ((rc = cfg_list_next(&p, item, sizeof(item))) == 1) {
		if (strcasecmp(item, "success") != 0 &&
		    strcasecmp(item, "failure") != 0 &&
		    strcasecmp(item, "delay") != 0)
			return NULL;
		if (strlen(item) + 1 + len >= sizeof(out) || n++ >= 3)
			return NULL;
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s",
		    len > 0 ? "," : "", item);
	}
	if (rc < 0 || n == 0)
		return NULL;
	for (len = 0; out[len] != '\0'; len++)
		if (out[len] >= 'a' && out[len] <= 'z')
			out[len] = (char)(out[len] - 'a' + 'A');
	return out;
}

/* sm_envid_ok - printable ASCII of a sane length */
static int
sm_envid_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] >= 0x7f)
			return 0;
	return n > 0 && n <= SM_ENVID_MAX;
}

/* sm_sender - the envelope sender from -f, or the invoking user's */
static int
sm_sender(struct sm_conf *conf, const char *arg)
{
	struct passwd *pw;
	const char *login;
	struct buf b;
	size_t n;
	int rc = 0;

	buf_init(&b, SM_ADDR_MAX + 1);
	if (arg != NULL) {
		n = strlen(arg);
		/* "<addr>" as well as "addr"; "" and "<>" are the null sender */
		if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
			arg++;
			n -= 2;
		}
		if (buf_append(&b, arg, n) < 0)
			rc = -1;
	} else {
		if ((pw = getpwuid(getuid())) != NULL)
			login = pw->pw_name;
		else if ((login = getenv("LOGNAME")) == NULL &&
		    (login = getenv("USER")) == NULL) {
			sm_err(conf, "no login name for user ID %lu",
			    (unsigned long)getuid());
			buf_deinit(&b);
			return EX_NOUSER;
		}
		if (buf_puts(&b, login) < 0)
			rc = -1;
	}
	if (rc == 0 && buf_len(&b) > 0 && strchr(buf_cstr(&b), '@') == NULL &&
	    buf_printf(&b, "@%s", conf->mydomain) < 0)
		rc = -1;
	if (rc < 0 || (buf_len(&b) > 0 && !sm_addr_ok(buf_cstr(&b)))) {
		sm_err(conf, "bad sender address \"%s\"", arg != NULL ? arg :
		    buf_cstr(&b));
		buf_deinit(&b);
		return EX_USAGE;
	}
	conf->sender = buf_steal(&b);
	buf_deinit(&b);
	return 0;
}

/* sm_config - the settings sendmail needs from posta.conf */
static int
sm_config(struct sm_conf *conf, const char *dir)
{
	struct buf errs;
	struct cfg *c;

	buf_init(&errs, 1024 * 1024);
	if ((c = settings_open("sendmail", dir, &errs)) == NULL) {
		fputs(buf_cstr(&errs), stderr);
		sm_err(conf, "cannot read the configuration in %s", dir);
		buf_deinit(&errs);
		return EX_CONFIG;
	}
	buf_deinit(&errs);
	conf->qdir = xstrdup(cfg_str(c, "queue_directory"));
	conf->mydomain = xstrdup(cfg_str(c, "mydomain"));
	conf->myhostname = xstrdup(cfg_str(c, "myhostname"));
	conf->size_limit = (uint64_t)cfg_int(c, "message_size_limit");
	cfg_free(&c);
	return 0;
}

/* sm_dedup - drop repeated recipients, keeping the first of each */
static void
sm_dedup(struct sm_addrs *a)
{
	size_t i, j, k = 0;

	for (i = 0; i < a->n; i++) {
		for (j = 0; j < k; j++)
			if (strcasecmp(a->v[i], a->v[j]) == 0)
				break;
		if (j < k) {
			free(a->v[i]);
			continue;
		}
		a->v[k++] = a->v[i];
	}
	a->n = k;
}

int
main(int argc, char **argv)
{
	struct sm_conf conf;
	struct sm_addrs rcpts = { NULL, 0, 0 };
	struct sm_msg msg;
	enum sm_mode mode = SM_SEND;
	const char *base, *dir = NULL, *sender = NULL, *fullname = NULL;
	size_t i;
	int ch, rc;

	memset(&conf, 0, sizeof(conf));
	base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	conf.prog = "sendmail";
	if (strcmp(base, "mailq") == 0) {
		conf.prog = "mailq";
		mode = SM_LIST;
	} else if (strcmp(base, "newaliases") == 0)
		mode = SM_NEWALIASES;
	log_init(conf.prog, LOG_TO_STDERR);

	while ((ch = getopt(argc, argv,
	    "+A:B:b:C:F:f:Gh:iL:N:no:O:p:q:R:r:tUV:vX:")) != -1) {
		switch (ch) {
		case 'B':
			if (strcasecmp(optarg, "8BITMIME") == 0)
				conf.body = "8BITMIME";
			else if (strcasecmp(optarg, "7BIT") == 0)
				conf.body = "7BIT";
			else {
				sm_err(&conf, "-B: 7BIT or 8BITMIME");
				return EX_USAGE;
			}
			break;
		case 'b':
			if (strcmp(optarg, "m") == 0)
				mode = SM_SEND;
			else if (strcmp(optarg, "s") == 0)
				mode = SM_RELAY;
			else if (strcmp(optarg, "p") == 0)
				mode = SM_LIST;
			else if (strcmp(optarg, "i") == 0)
				mode = SM_NEWALIASES;
			else {
				sm_err(&conf, "-b%s is not supported", optarg);
				return EX_USAGE;
			}
			break;
		case 'C':
			dir = optarg;
			break;
		case 'F':
			fullname = optarg;
			break;
		case 'f':
		case 'r':
			sender = optarg;
			break;
		case 'i':
			conf.ignore_dot = true;
			break;
		case 'N':
			if ((conf.notify = sm_notify(optarg)) == NULL) {
				sm_err(&conf, "-N: never, or a list of "
				    "success, failure, delay");
				return EX_USAGE;
			}
			break;
		case 'o':
			/* -oi; other -oX of Sendmail mean nothing here */
			if (strcmp(optarg, "i") == 0)
				conf.ignore_dot = true;
			break;
		case 'q':
			sm_err(&conf, "-q is not supported: use "
			    "\"posta queue flush\"");
			return EX_USAGE;
		case 'R':
			if (strcasecmp(optarg, "full") == 0)
				conf.ret = "FULL";
			else if (strcasecmp(optarg, "hdrs") == 0)
				conf.ret = "HDRS";
			else {
				sm_err(&conf, "-R: full or hdrs");
				return EX_USAGE;
			}
			break;
		case 't':
			conf.extract = true;
			break;
		case 'V':
			if (!sm_envid_ok(optarg)) {
				sm_err(&conf, "-V: bad envelope ID");
				return EX_USAGE;
			}
			conf.envid = optarg;
			break;
		case 'v':
			conf.verbose = true;
			break;
		case 'A': case 'G': case 'h': case 'L': case 'n': case 'O':
		case 'p': case 'U': case 'X':
			break;		/* accepted, as Postfix does */
		default:
			sm_usage(&conf);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;

	if (mode == SM_NEWALIASES) {
		sm_err(&conf, "nothing to do: alias tables are read as they "
		    "are (\"posta map build\" compiles bdb: tables)");
		return EX_OK;
	}
	if (dir == NULL)
		dir = settings_config_dir();
	if ((rc = sm_config(&conf, dir)) != 0)
		return rc;
	memset(&msg, 0, sizeof(msg));
	if (mode == SM_LIST) {
		if (argc > 0) {
			sm_usage(&conf);
			rc = EX_USAGE;
		} else
			rc = qlist_print(stdout, conf.qdir, conf.prog) < 0 ?
			    EX_UNAVAILABLE : EX_OK;
		goto out;
	}
	if (mode == SM_RELAY) {
		rc = sm_relay(&conf);
		goto out;
	}

	if ((rc = sm_sender(&conf, sender)) != 0)
		goto out;
	if (fullname == NULL)
		fullname = getenv("NAME");
	conf.fullname = fullname != NULL ? xstrdup(fullname) : NULL;
	for (i = 0; i < (size_t)argc; i++) {
		/* no folding on a command line: a CR or LF is an attack */
		if (argv[i][0] == '-' || strpbrk(argv[i], "\r\n\t") != NULL) {
			sm_err(&conf, "bad recipient address \"%s\"", argv[i]);
			rc = EX_USAGE;
			goto out;
		}
		if (sm_addr_list(&conf, argv[i], strlen(argv[i]), &rcpts,
		    "recipient") < 0) {
			rc = EX_USAGE;
			goto out;
		}
	}
	if (!conf.extract && rcpts.n == 0) {
		sm_err(&conf, "no recipients specified");
		rc = EX_USAGE;
		goto out;
	}
	if ((rc = sm_msg_read(&conf, STDIN_FILENO, &msg)) != 0)
		goto out;
	for (i = 0; i < msg.rcpts.n; i++) {
		if (rcpts.n >= SM_RCPT_MAX) {
			sm_err(&conf, "too many recipients");
			rc = EX_DATAERR;
			goto out;
		}
		sm_addrs_add(&rcpts, msg.rcpts.v[i]);
	}
	if (rcpts.n == 0) {
		sm_err(&conf, "no recipient addresses found in the message "
		    "header");
		rc = EX_USAGE;
		goto out;
	}
	sm_dedup(&rcpts);
	rc = sm_submit(&conf, &msg, &rcpts);
out:
	sm_msg_free(&msg);
	sm_addrs_free(&rcpts);
	free(conf.qdir);
	free(conf.mydomain);
	free(conf.myhostname);
	free(conf.sender);
	free(conf.fullname);
	return rc;
}
