/*
 * settings - the table of all settings (see settings.h)
 *
 * Keep the table sorted by scope, then by name; man/posta.conf.5 and the
 * per-program man pages document each entry with the same default.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "settings.h"

#define P	SCOPE_POSTA
#define TMAX	(10LL * 365 * 86400)
#define SMAX	(1LL << 40)

const struct cfg_def posta_settings[] = {
	/* posta.conf: identity and paths */
	{ "myhostname", CFG_STR, "", 0, 0, NULL, P,
	    "this host's fully qualified name (empty: from the system)" },
	{ "mydomain", CFG_STR, "example.test", 0, 0, NULL, P,
	    "the main mail domain" },
	{ "mydestination", CFG_STR, "$mydomain, localhost", 0, 0, NULL, P,
	    "domains delivered locally" },
	{ "mynetworks", CFG_STR, "127.0.0.0/8, [::1]/128", 0, 0, NULL, P,
	    "client networks allowed to relay" },
	{ "config_directory", CFG_STR, POSTA_SYSCONFDIR, 0, 0, NULL, P,
	    "where the configuration files live" },
	{ "daemon_directory", CFG_STR, POSTA_LIBEXECDIR, 0, 0, NULL, P,
	    "where master finds the programs it runs" },
	{ "queue_directory", CFG_STR, POSTA_SPOOLDIR, 0, 0, NULL, P,
	    "the mail queue and the internal sockets" },
	{ "mail_root", CFG_STR, POSTA_MAILDIR, 0, 0, NULL, P,
	    "mailboxes live in mail_root/DOMAIN/USER/Maildir" },
	{ "mail_owner", CFG_STR, "posta", 0, 0, NULL, P,
	    "the unprivileged user every program but master runs as" },
	{ "maillog_file", CFG_STR, "", 0, 0, NULL, P,
	    "log to this file instead of syslog (empty: syslog)" },
	{ "debug", CFG_BOOL, "no", 0, 0, NULL, SCOPE_ALL,
	    "log debugging detail" },

	/* posta.conf: addresses, domains and tables every program shares */
	{ "virtual_mailbox_domains", CFG_STR, "", 0, 0, NULL, P,
	    "more domains whose users are in user_database (list)" },
	{ "relay_domains", CFG_STR, "", 0, 0, NULL, P,
	    "domains we accept mail for and forward to a next hop (list)" },
	{ "relay_recipient_maps", CFG_STR, "", 0, 0, NULL, P,
	    "valid recipients in relay_domains (tables; empty: refuse all)" },
	{ "user_database", CFG_STR, "file:$config_directory/users", 0, 0,
	    NULL, P, "the users: their mailboxes, quotas and passwords" },
	{ "alias_maps", CFG_STR, "file:$config_directory/aliases", 0, 0,
	    NULL, P, "aliases and lists for the local domains (tables)" },
	{ "recipient_delimiter", CFG_STR, "+", 0, 0, NULL, P,
	    "separates a user name from an address extension (empty: none)" },
	{ "message_size_limit", CFG_SIZE, "50m", 1024, 1LL << 34, NULL, P,
	    "largest message accepted, in bytes" },
	{ "postmaster_address", CFG_STR, "postmaster@$mydomain", 0, 0, NULL,
	    P, "where bounces of bounces go" },
	{ "bounce_notice_recipient", CFG_STR, "", 0, 0, NULL, P,
	    "also tell this address of bounces (empty: nobody)" },

	/* posta.conf: master */
	{ "master_restart_delay", CFG_TIME, "1s", 0, 3600, NULL, P,
	    "first wait before restarting a child that died" },
	{ "master_restart_max_delay", CFG_TIME, "60s", 1, 86400, NULL, P,
	    "longest wait between restarts (the back-off doubles up to it)" },
	{ "master_throttle_window", CFG_TIME, "10s", 1, 3600, NULL, P,
	    "a child that dies this soon after start counts as a fast fail" },
	{ "master_throttle_count", CFG_INT, "5", 1, 1000, NULL, P,
	    "after this many fast fails in a row the service is throttled" },
	{ "master_throttle_time", CFG_TIME, "60s", 1, 86400, NULL, P,
	    "how long a throttled service waits before trying again" },
	{ "master_stop_timeout", CFG_TIME, "10s", 1, 3600, NULL, P,
	    "how long to wait for children after SIGTERM before SIGKILL" },

	/* qmgr.conf: delivery status notifications (lib/dsn) */
	{ "bounce_size_limit", CFG_SIZE, "50000", 1024, 1LL << 25, NULL,
	    SCOPE_QMGR, "larger messages come back in a bounce as their "
	    "header only" },

	/* posta.conf: TLS for every server and client */
	{ "tls_cert_file", CFG_STR, "", 0, 0, NULL, SCOPE_ALL,
	    "PEM certificate chain" },
	{ "tls_key_file", CFG_STR, "", 0, 0, NULL, SCOPE_ALL,
	    "PEM private key (read before privileges are dropped)" },
	{ "tls_ca_file", CFG_STR, "", 0, 0, NULL, SCOPE_ALL,
	    "PEM CA certificates to verify peers with" },
	{ "tls_protocols", CFG_ENUM, "TLSv1.2", 0, 0, "TLSv1.2|TLSv1.3",
	    SCOPE_ALL, "lowest TLS version accepted" },
	{ "tls_verify_client", CFG_ENUM, "none", 0, 0,
	    "none|optional|require", SCOPE_ALL,
	    "ask clients for a certificate" },

	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

static const struct {
	const char *name;
	unsigned scope;
} settings_prog[] = {
	{ "smtpd", SCOPE_SMTPD },
	{ "qmgr", SCOPE_QMGR },
	{ "local", SCOPE_LOCAL },
	{ "smtp", SCOPE_SMTP },
	{ "filterd", SCOPE_FILTERD },
	{ "imapd", SCOPE_IMAPD },
	{ "proxyd", SCOPE_PROXYD },
};

static const char *const settings_prog_names[] = {
	"smtpd", "qmgr", "local", "smtp", "filterd", "imapd", "proxyd", NULL,
};

unsigned
settings_scope(const char *prog)
{
	size_t i;

	for (i = 0; i < sizeof(settings_prog) / sizeof(settings_prog[0]); i++)
		if (strcmp(settings_prog[i].name, prog) == 0)
			return settings_prog[i].scope;
	return 0;
}

const char *const *
settings_programs(void)
{
	return settings_prog_names;
}

const char *
settings_config_dir(void)
{
	const char *d = getenv("POSTA_CONFIG_DIR");

	return d != NULL && *d != '\0' ? d : POSTA_SYSCONFDIR;
}

struct cfg *
settings_open(const char *prog, const char *dir, struct buf *errs)
{
	unsigned scope = settings_scope(prog);
	struct cfg *c = cfg_new(posta_settings, SCOPE_POSTA | scope);
	char path[4096], host[256];
	int rc = 0;

	(void)snprintf(path, sizeof(path), "%s/posta.conf", dir);
	if (cfg_load_file(c, path, SCOPE_POSTA, false, errs) < 0)
		rc = -1;
	if (scope != 0) {
		(void)snprintf(path, sizeof(path), "%s/%s.conf", dir, prog);
		if (cfg_load_file(c, path, SCOPE_POSTA | scope, true,
		    errs) < 0)
			rc = -1;
	}
	if (rc == 0 && cfg_set(c, "config_directory", dir, "command line",
	    errs) < 0)
		rc = -1;
	if (rc == 0 && *cfg_str(c, "myhostname") == '\0') {
		if (gethostname(host, sizeof(host)) < 0)
			(void)snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		if (cfg_set(c, "myhostname", host, "system", errs) < 0)
			rc = -1;
	}
	if (rc < 0)
		cfg_free(&c);
	return c;
}
