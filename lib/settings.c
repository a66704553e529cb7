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
	{ "relayhost", CFG_STR, "", 0, 0, NULL, P,
	    "next hop for mail to other domains: host, [host], with :port" },
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

	/* posta.conf: DNS (lib/dns) */
	{ "dns_servers", CFG_STR, "", 0, 0, NULL, P,
	    "DNS servers to forward queries to, host[:port] (list; "
	    "empty: /etc/resolv.conf)" },
	{ "dns_timeout", CFG_TIME, "10s", 1, 300, NULL, P,
	    "how long one DNS lookup may take, retries included" },

	/* smtpd.conf: the SMTP server (man/smtpd.8) */
	{ "smtpd_auth_failure_delay", CFG_TIME, "1s", 0, 60, NULL,
	    SCOPE_SMTPD, "wait this long per failure before a failed AUTH "
	    "is answered" },
	{ "smtpd_auth_failure_limit", CFG_INT, "5", 1, 1000, NULL,
	    SCOPE_SMTPD, "failed AUTH attempts of one client before 421" },
	{ "smtpd_banner", CFG_STR, "$myhostname ESMTP posta", 0, 0, NULL,
	    SCOPE_SMTPD, "the text of the 220 greeting" },
	{ "smtpd_client_connection_limit", CFG_INT, "50", 0, 100000, NULL,
	    SCOPE_SMTPD, "sessions from one address at once per process "
	    "(0: no limit; mynetworks exempt)" },
	{ "smtpd_client_restrictions", CFG_STR, "", 0, 0, NULL, SCOPE_SMTPD,
	    "who may send mail at all (list of permit_* / reject; empty: "
	    "anyone)" },
	{ "smtpd_error_sleep_time", CFG_TIME, "1s", 0, 300, NULL,
	    SCOPE_SMTPD, "pause before each error reply past the soft limit" },
	{ "smtpd_fsync_threads", CFG_INT, "8", 1, 64, NULL, SCOPE_SMTPD,
	    "threads that fsync queue files (concurrent fsyncs commit "
	    "together)" },
	{ "smtpd_hard_error_limit", CFG_INT, "20", 1, 1000, NULL,
	    SCOPE_SMTPD, "errors in one session before 421 and disconnect" },
	{ "smtpd_line_length_limit", CFG_INT, "2048", 512, 16384, NULL,
	    SCOPE_SMTPD, "longest command line, CR LF not counted" },
	{ "smtpd_local_submit", CFG_BOOL, "no", 0, 0, NULL, SCOPE_SMTPD,
	    "unix-socket clients are local and trusted (the submit service)" },
	{ "smtpd_peername_lookup", CFG_BOOL, "yes", 0, 0, NULL, SCOPE_SMTPD,
	    "find the client's name (PTR, confirmed by A/AAAA) before the "
	    "greeting" },
	{ "smtpd_recipient_limit", CFG_INT, "1000", 1, 10000, NULL,
	    SCOPE_SMTPD, "most recipients of one message" },
	{ "smtpd_reject_bare_lf", CFG_BOOL, "yes", 0, 0, NULL, SCOPE_SMTPD,
	    "refuse message content with a bare LF or bare CR" },
	{ "smtpd_relay_restrictions", CFG_STR, "permit_mynetworks, "
	    "permit_sasl_authenticated, permit_tls_clientcerts, "
	    "permit_restricted_networks, reject", 0, 0,
	    NULL, SCOPE_SMTPD, "who may send to domains that are not ours" },
	{ "smtpd_restricted_domains", CFG_STR, "", 0, 0, NULL, SCOPE_SMTPD,
	    "the only other domains smtpd_restricted_networks may send to "
	    "(list; .parent matches subdomains)" },
	{ "smtpd_restricted_networks", CFG_STR, "", 0, 0, NULL, SCOPE_SMTPD,
	    "clients that may send without AUTH, only to "
	    "smtpd_restricted_domains (CIDR list)" },
	{ "smtpd_sasl_auth_enable", CFG_BOOL, "no", 0, 0, NULL, SCOPE_SMTPD,
	    "offer AUTH PLAIN and LOGIN against user_database" },
	{ "smtpd_soft_error_limit", CFG_INT, "10", 1, 1000, NULL,
	    SCOPE_SMTPD, "errors in one session before each error reply "
	    "is delayed" },
	{ "smtpd_timeout", CFG_TIME, "300s", 1, 3600, NULL, SCOPE_SMTPD,
	    "how long a client may take to send a command or data" },
	{ "smtpd_tls_auth_only", CFG_BOOL, "yes", 0, 0, NULL, SCOPE_SMTPD,
	    "offer AUTH only over TLS" },
	{ "smtpd_tls_fingerprint_maps", CFG_STR, "", 0, 0, NULL, SCOPE_SMTPD,
	    "tables of client certificate SHA-256 fingerprints allowed to "
	    "relay" },
	{ "smtpd_tls_security_level", CFG_ENUM, "none", 0, 0,
	    "none|may|encrypt", SCOPE_SMTPD,
	    "STARTTLS: not offered, offered, or required before MAIL/AUTH" },
	{ "smtpd_tls_wrappermode", CFG_BOOL, "no", 0, 0, NULL, SCOPE_SMTPD,
	    "TLS from the first byte (port 465, submissions)" },

	/* qmgr.conf: delivery status notifications (lib/dsn) */
	{ "bounce_size_limit", CFG_SIZE, "50000", 1024, 1LL << 25, NULL,
	    SCOPE_QMGR, "larger messages come back in a bounce as their "
	    "header only" },

	/* qmgr.conf: scheduling, retries, transports (man/qmgr.8) */
	{ "bounce_queue_lifetime", CFG_TIME, "5d", 0, TMAX, NULL, SCOPE_QMGR,
	    "how long a bounce (null sender) is retried before it is given up" },
	{ "default_destination_concurrency_limit", CFG_INT, "20", 1, 1000,
	    NULL, SCOPE_QMGR, "deliveries at once to one destination" },
	{ "default_destination_recipient_limit", CFG_INT, "50", 1, 10000,
	    NULL, SCOPE_QMGR, "recipients in one delivery request" },
	{ "default_destination_rate_delay", CFG_TIME, "0", 0, 3600, NULL,
	    SCOPE_QMGR, "pause between two deliveries to one destination "
	    "(0: none; else one at a time)" },
	{ "default_transport", CFG_STR, "smtp", 0, 0, NULL, SCOPE_QMGR,
	    "transport for domains that are not local" },
	{ "default_transport_concurrency_limit", CFG_INT, "100", 1, 10000,
	    NULL, SCOPE_QMGR, "deliveries at once through one transport" },
	{ "delay_warning_time", CFG_TIME, "0", 0, TMAX, NULL, SCOPE_QMGR,
	    "tell the sender once of mail delayed this long (0: never)" },
	{ "local_destination_concurrency_limit", CFG_INT, "20", 1, 1000,
	    NULL, SCOPE_QMGR, "local deliveries at once to one domain" },
	{ "local_destination_recipient_limit", CFG_INT, "50", 1, 10000, NULL,
	    SCOPE_QMGR, "recipients in one request to local" },
	{ "local_transport", CFG_STR, "local", 0, 0, NULL, SCOPE_QMGR,
	    "transport for mydestination and virtual_mailbox_domains" },
	{ "maximal_backoff_time", CFG_TIME, "4000s", 1, TMAX, NULL,
	    SCOPE_QMGR, "longest wait between two tries of deferred mail" },
	{ "maximal_queue_lifetime", CFG_TIME, "5d", 0, TMAX, NULL, SCOPE_QMGR,
	    "how long deferred mail is retried before it bounces" },
	{ "minimal_backoff_time", CFG_TIME, "300s", 1, TMAX, NULL, SCOPE_QMGR,
	    "shortest wait between two tries of deferred mail" },
	{ "qmgr_ipc_timeout", CFG_TIME, "600s", 1, 86400, NULL, SCOPE_QMGR,
	    "longest wait for a delivery agent's answer" },
	{ "qmgr_message_active_limit", CFG_INT, "20000", 1, 1000000, NULL,
	    SCOPE_QMGR, "messages in active/ at once" },
	{ "queue_run_delay", CFG_TIME, "300s", 1, 86400, NULL, SCOPE_QMGR,
	    "how often the queue directories are scanned" },
	{ "smtp_destination_concurrency_limit", CFG_INT, "20", 1, 1000, NULL,
	    SCOPE_QMGR | SCOPE_SMTP, "smtp deliveries at once to one "
	    "destination (read by qmgr; smtp.conf wins)" },
	{ "smtp_destination_rate_delay", CFG_TIME, "0", 0, 3600, NULL,
	    SCOPE_QMGR | SCOPE_SMTP, "pause between two smtp deliveries to "
	    "one destination (read by qmgr; smtp.conf wins)" },
	{ "smtp_destination_recipient_limit", CFG_INT, "50", 1, 10000, NULL,
	    SCOPE_QMGR | SCOPE_SMTP, "recipients in one request to smtp "
	    "(read by qmgr; smtp.conf wins)" },
	{ "transport_maps", CFG_STR, "", 0, 0, NULL, SCOPE_QMGR,
	    "tables of domain or address -> transport[:nexthop]" },

	/* local.conf: the local delivery agent */
	{ "local_quota_default", CFG_SIZE, "0", 0, SMAX, NULL, SCOPE_LOCAL,
	    "mailbox quota of users without quota= (bytes; 0: unlimited)" },
	{ "local_workers", CFG_INT, "8", 1, 256, NULL, SCOPE_LOCAL,
	    "deliveries one local process makes at the same time" },

	/* smtp.conf: the smtp delivery agent (man/smtp.conf.5) */
	{ "smtp_bind_address", CFG_STR, "", 0, 0, NULL, SCOPE_SMTP,
	    "source IP address of outgoing connections (empty: any)" },
	{ "smtp_connect_timeout", CFG_TIME, "30s", 1, 3600, NULL, SCOPE_SMTP,
	    "longest wait for a TCP connection to be made" },
	{ "smtp_connection_cache_time", CFG_TIME, "2s", 0, 300, NULL,
	    SCOPE_SMTP, "keep an idle connection this long for the next "
	    "message to its destination (0: never)" },
	{ "smtp_connection_reuse_limit", CFG_INT, "100", 1, 100000, NULL,
	    SCOPE_SMTP, "most messages over one connection" },
	{ "smtp_data_done_timeout", CFG_TIME, "600s", 1, 86400, NULL,
	    SCOPE_SMTP, "longest wait for the reply to the end of DATA" },
	{ "smtp_data_init_timeout", CFG_TIME, "120s", 1, 86400, NULL,
	    SCOPE_SMTP, "longest wait for the reply to DATA" },
	{ "smtp_data_xfer_timeout", CFG_TIME, "180s", 1, 86400, NULL,
	    SCOPE_SMTP, "longest time the server may take no message data" },
	{ "smtp_helo_name", CFG_STR, "$myhostname", 0, 0, NULL, SCOPE_SMTP,
	    "the name sent with EHLO and HELO" },
	{ "smtp_helo_timeout", CFG_TIME, "300s", 1, 86400, NULL, SCOPE_SMTP,
	    "longest wait for the greeting, EHLO, STARTTLS and the TLS "
	    "handshake" },
	{ "smtp_line_length_limit", CFG_INT, "998", 0, 100000, NULL,
	    SCOPE_SMTP, "break longer message lines (0: never)" },
	{ "smtp_mail_timeout", CFG_TIME, "300s", 1, 86400, NULL, SCOPE_SMTP,
	    "longest wait for the reply to MAIL FROM" },
	{ "smtp_max_sessions", CFG_INT, "100", 1, 10000, NULL, SCOPE_SMTP,
	    "deliveries at once in one smtp process" },
	{ "smtp_mx_address_limit", CFG_INT, "5", 1, 100, NULL, SCOPE_SMTP,
	    "most addresses tried for one delivery" },
	{ "smtp_rcpt_timeout", CFG_TIME, "300s", 1, 86400, NULL, SCOPE_SMTP,
	    "longest wait for the reply to RCPT TO" },
	{ "smtp_rset_timeout", CFG_TIME, "20s", 1, 3600, NULL, SCOPE_SMTP,
	    "longest wait for the reply to RSET before a connection is "
	    "cached" },
	{ "smtp_tls_ca_file", CFG_STR, "", 0, 0, NULL, SCOPE_SMTP,
	    "PEM CA certificates to verify servers with (empty: the "
	    "system's)" },
	{ "smtp_tls_ca_path", CFG_STR, "", 0, 0, NULL, SCOPE_SMTP,
	    "a directory of hashed CA certificates (c_rehash)" },
	{ "smtp_tls_cert_file", CFG_STR, "", 0, 0, NULL, SCOPE_SMTP,
	    "client certificate chain (PEM), shown when a server asks" },
	{ "smtp_tls_key_file", CFG_STR, "", 0, 0, NULL, SCOPE_SMTP,
	    "client private key (empty: in smtp_tls_cert_file)" },
	{ "smtp_tls_policy_maps", CFG_STR, "", 0, 0, NULL, SCOPE_SMTP,
	    "tables of destination -> TLS level [match=..] "
	    "[fingerprint=..]" },
	{ "smtp_tls_security_level", CFG_ENUM, "may", 0, 0,
	    "none|may|encrypt|verify", SCOPE_SMTP,
	    "TLS towards servers when no policy table entry says otherwise" },

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
