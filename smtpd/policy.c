/*
 * policy - who may send mail here, and to whom (DESIGN.md invariants 3
 * and 4: no backscatter, no open relay)
 *
 * At RCPT the recipient's domain decides:
 *   - a local domain (mydestination, virtual_mailbox_domains; items may
 *     be tables, "type:where", whose keys are domains): the address,
 *     with its extension removed (recipient_delimiter), must be a user
 *     of user_database or a key of alias_maps (full address or local
 *     part), else 550 5.1.1 ... User unknown;
 *   - a relay domain (relay_domains): the address must be in
 *     relay_recipient_maps (address, unextended address or "@domain"),
 *     else 550 5.1.1;
 *   - any other domain: smtpd_relay_restrictions must permit (mynetworks
 *     or the submit service, an authenticated client, a client
 *     certificate whose fingerprint is in smtpd_tls_fingerprint_maps,
 *     a client in smtpd_restricted_networks sending to a domain in
 *     smtpd_restricted_domains), else 554 5.7.1 Relay access denied.  A list that runs out
 *     without a decision refuses: an empty list never makes an open
 *     relay.
 * A table that fails (LDAP down, a broken file) gives 451 4.3.0: mail is
 * deferred, never accepted or refused on a guess.
 *
 * At MAIL, smtpd_client_restrictions (empty: anyone) says whether the
 * client may send at all; the submission service uses
 * "permit_sasl_authenticated, reject".
 *
 * Lookups are blocking calls; file: and bdb: tables answer from memory
 * or a local file.  (ldap: tables block the loop for one lookup; an
 * asynchronous lookup service is later work.)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "log.h"
#include "map.h"
#include "mem.h"
#include "smtpd.h"

#define POLICY_ITEM_MAX		4096
#define POLICY_RESTRICT_MAX	16

enum policy_restriction {
	PR_PERMIT_MYNETWORKS,
	PR_PERMIT_SASL,
	PR_PERMIT_CERTS,
	PR_PERMIT_RESTRICTED,
	PR_PERMIT,
	PR_REJECT,
};

static const struct {
	const char *name;
	enum policy_restriction r;
} policy_names[] = {
	{ "permit_mynetworks", PR_PERMIT_MYNETWORKS },
	{ "permit_sasl_authenticated", PR_PERMIT_SASL },
	{ "permit_tls_clientcerts", PR_PERMIT_CERTS },
	{ "permit_restricted_networks", PR_PERMIT_RESTRICTED },
	{ "permit", PR_PERMIT },
	{ "reject", PR_REJECT },
};

struct policy_list {
	char	**names;	/* plain names, lower case */
	size_t	  n;
	struct map **maps;	/* "type:where" items */
	size_t	  nmaps;
};

static struct {
	struct cidr_list mynetworks;
	struct cidr_list restricted;		/* smtpd_restricted_networks */
	struct policy_list restricted_domains;	/* ... may send to these */
	struct policy_list local, relay;
	struct policy_list aliases, relay_rcpt, fingerprints;
	const char *delim;
	enum policy_restriction client_r[POLICY_RESTRICT_MAX];
	size_t	 nclient_r;
	bool	 client_has_sasl;
	enum policy_restriction relay_r[POLICY_RESTRICT_MAX];
	size_t	 nrelay_r;
} pol;

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* policy_list_add - the items of value: names and/or tables */
static int
policy_list_add(struct policy_list *l, const char *setting,
    const char *value, bool tables_only, struct buf *errs)
{
	char item[POLICY_ITEM_MAX];
	const char *pos = value;
	struct map *m;
	int r, rc = 0;

	while ((r = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		if (r < 0) {
			(void)buf_printf(errs, "%s: item too long\n", setting);
			return -1;
		}
		if (strchr(item, ':') != NULL) {
			if ((m = map_open(item, errs)) == NULL) {
				rc = -1;
				continue;
			}
			l->maps = xreallocarray(l->maps, l->nmaps + 1,
			    sizeof(*l->maps));
			l->maps[l->nmaps++] = m;
		} else if (tables_only) {
			(void)buf_printf(errs, "%s: \"%s\" is not a table "
			    "(type:where)\n", setting, item);
			rc = -1;
		} else {
			lower(item);
			l->names = xreallocarray(l->names, l->n + 1,
			    sizeof(*l->names));
			l->names[l->n++] = xstrdup(item);
		}
	}
	return rc;
}

/* policy_list_has - 1 if key is a name or in a table, 0, -1 (r) */
static int
policy_list_has(struct policy_list *l, const char *key, struct reply *r)
{
	char *v;
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->names[i], key) == 0)
			return 1;
	for (i = 0; i < l->nmaps; i++) {
		rc = map_lookup(l->maps[i], key, &v, r);
		free(v);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
policy_restrictions(const char *setting, const char *value,
    enum policy_restriction *v, size_t *n_r, struct buf *errs)
{
	char item[64];
	const char *pos = value;
	size_t i, n = 0;
	int r;

	while ((r = cfg_list_next(&pos, item, sizeof(item))) != 0) {
		for (i = 0; r > 0 && i < sizeof(policy_names) /
		    sizeof(policy_names[0]); i++)
			if (strcmp(item, policy_names[i].name) == 0)
				break;
		if (r < 0 || i == sizeof(policy_names) /
		    sizeof(policy_names[0])) {
			(void)buf_printf(errs, "%s: unknown restriction "
			    "\"%.60s\"\n", setting, r < 0 ? pos : item);
			return -1;
		}
		if (n == POLICY_RESTRICT_MAX) {
			(void)buf_printf(errs, "%s: too many restrictions\n",
			    setting);
			return -1;
		}
		v[n++] = policy_names[i].r;
	}
	*n_r = n;
	return 0;
}

int
smtpd_policy_init(struct cfg *c, struct buf *errs)
{
	int rc = 0;
	size_t i;

	cidr_list_init(&pol.mynetworks);
	if (cidr_list_parse(&pol.mynetworks, "mynetworks",
	    cfg_str(c, "mynetworks"), errs) < 0)
		rc = -1;
	cidr_list_init(&pol.restricted);
	if (cidr_list_parse(&pol.restricted, "smtpd_restricted_networks",
	    cfg_str(c, "smtpd_restricted_networks"), errs) < 0)
		rc = -1;
	if (policy_list_add(&pol.restricted_domains,
	    "smtpd_restricted_domains", cfg_str(c, "smtpd_restricted_domains"),
	    false, errs) < 0)
		rc = -1;
	if (policy_list_add(&pol.local, "mydestination",
	    cfg_str(c, "mydestination"), false, errs) < 0 ||
	    policy_list_add(&pol.local, "virtual_mailbox_domains",
	    cfg_str(c, "virtual_mailbox_domains"), false, errs) < 0 ||
	    policy_list_add(&pol.relay, "relay_domains",
	    cfg_str(c, "relay_domains"), false, errs) < 0 ||
	    policy_list_add(&pol.aliases, "alias_maps",
	    cfg_str(c, "alias_maps"), true, errs) < 0 ||
	    policy_list_add(&pol.relay_rcpt, "relay_recipient_maps",
	    cfg_str(c, "relay_recipient_maps"), true, errs) < 0 ||
	    policy_list_add(&pol.fingerprints, "smtpd_tls_fingerprint_maps",
	    cfg_str(c, "smtpd_tls_fingerprint_maps"), true, errs) < 0)
		rc = -1;
	if (policy_restrictions("smtpd_client_restrictions",
	    cfg_str(c, "smtpd_client_restrictions"), pol.client_r,
	    &pol.nclient_r, errs) < 0 ||
	    policy_restrictions("smtpd_relay_restrictions",
	    cfg_str(c, "smtpd_relay_restrictions"), pol.relay_r,
	    &pol.nrelay_r, errs) < 0)
		rc = -1;
	for (i = 0; i < pol.nclient_r; i++)
		if (pol.client_r[i] == PR_PERMIT_SASL)
			pol.client_has_sasl = true;
	pol.delim = cfg_str(c, "recipient_delimiter");
	return rc;
}

int
smtpd_policy_is_mynetworks(const struct sockaddr *sa)
{
	return cidr_list_match_sa(&pol.mynetworks, sa);
}

int
smtpd_policy_is_restricted(const struct sockaddr *sa)
{
	return cidr_list_match_sa(&pol.restricted, sa);
}

/*
 * policy_restricted_ok - 1 if domain (lower case) or one of its parent
 * domains is in smtpd_restricted_domains (as "domain" or ".parent"
 * keys, like transport_maps), 0, -1 for a table failure (r set)
 */
static int
policy_restricted_ok(const char *domain, struct reply *r)
{
	char key[SMTP_PATH_MAX + 2];
	const char *p;
	int rc;

	if (*domain == '\0')
		return 0;
	if ((rc = policy_list_has(&pol.restricted_domains, domain, r)) != 0)
		return rc;
	for (p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.')) {
		(void)snprintf(key, sizeof(key), "%s", p);
		if ((rc = policy_list_has(&pol.restricted_domains, key,
		    r)) != 0)
			return rc;
	}
	return 0;
}

int
smtpd_policy_cert(const char *fingerprint)
{
	struct reply r;
	char key[TLS_FINGERPRINT_SIZE];

	if (*fingerprint == '\0' || pol.fingerprints.nmaps == 0)
		return 0;
	(void)snprintf(key, sizeof(key), "%s", fingerprint);
	lower(key);
	return policy_list_has(&pol.fingerprints, key, &r);
}

/*
 * policy_eval - walk a restriction list: 1 permit, 0 reject, -1 none,
 * -2 a table failed (r set); domain is the recipient's at RCPT, else
 * NULL (permit_restricted_networks then does not apply)
 */
static int
policy_eval(const struct smtpd_session *s, const enum policy_restriction *v,
    size_t n, const char *domain, struct reply *r)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		switch (v[i]) {
		case PR_PERMIT_MYNETWORKS:
			if (s->is_mynetworks || s->is_local)
				return 1;
			break;
		case PR_PERMIT_SASL:
			if (s->auth_user != NULL)
				return 1;
			break;
		case PR_PERMIT_CERTS:
			if (s->is_cert_trusted)
				return 1;
			break;
		case PR_PERMIT_RESTRICTED:
			if (domain == NULL || !s->is_restricted)
				break;
			if ((rc = policy_restricted_ok(domain, r)) < 0)
				return -2;
			if (rc > 0)
				return 1;
			break;
		case PR_PERMIT:
			return 1;
		case PR_REJECT:
			return 0;
		}
	}
	return -1;
}

int
smtpd_policy_client(struct smtpd_session *s, struct reply *r)
{
	if (policy_eval(s, pol.client_r, pol.nclient_r, NULL, r) != 0)
		return 1;	/* permitted, or no decision: anyone */
	if (pol.client_has_sasl && smtpd.sasl && s->auth_user == NULL)
		reply_set(r, 530, "5.7.0", "Authentication required");
	else
		reply_set(r, 554, "5.7.1", "<%.180s>: Client host rejected: "
		    "Access denied", s->client);
	return 0;
}

/* policy_unextend - user+ext -> user (any delimiter character) */
static void
policy_unextend(const char *local, char *out, size_t outsz)
{
	size_t n = *pol.delim != '\0' ? strcspn(local, pol.delim) :
	    strlen(local);

	/* "+foo@" (nothing before the delimiter) keeps its name */
	if (n == 0)
		n = strlen(local);
	(void)snprintf(out, outsz, "%.*s", (int)n, local);
}

/* policy_alias - 1 if one of the keys is an alias, 0, -1 (r) */
static int
policy_alias(const char *const *keys, size_t n, struct reply *r)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (*keys[i] == '\0')
			continue;
		if ((rc = policy_list_has(&pol.aliases, keys[i], r)) != 0)
			return rc;
	}
	return 0;
}

int
smtpd_policy_rcpt(struct smtpd_session *s, const char *addr,
    struct reply *r)
{
	char local[SMTP_PATH_MAX + 1], domain[SMTP_PATH_MAX + 1];
	char base[SMTP_PATH_MAX + 1], full[2 * SMTP_PATH_MAX + 2];
	char unext[2 * SMTP_PATH_MAX + 2], atdomain[SMTP_PATH_MAX + 2];
	struct userdb_user u;
	const char *at = strrchr(addr, '@');
	const char *keys[4];
	int rc;

	if (at != NULL) {
		(void)snprintf(local, sizeof(local), "%.*s",
		    (int)(at - addr), addr);
		(void)snprintf(domain, sizeof(domain), "%s", at + 1);
	} else {
		/* RFC 5321 4.5.1: <postmaster> without a domain is ours */
		(void)snprintf(local, sizeof(local), "%s", addr);
		domain[0] = '\0';
	}
	lower(local);
	lower(domain);
	policy_unextend(local, base, sizeof(base));
	(void)snprintf(full, sizeof(full), "%s@%s", local, domain);
	(void)snprintf(unext, sizeof(unext), "%s@%s", base, domain);

	rc = domain[0] == '\0' ? 1 : policy_list_has(&pol.local, domain, r);
	if (rc < 0)
		goto tempfail;
	if (rc > 0) {
		if (domain[0] != '\0') {
			rc = userdb_lookup(smtpd.users, unext, &u, r);
			if (rc > 0)
				userdb_user_free(&u);
			if (rc < 0)
				goto tempfail;
			if (rc > 0)
				return 1;
		}
		keys[0] = domain[0] != '\0' ? full : "";
		keys[1] = domain[0] != '\0' ? unext : "";
		keys[2] = local;
		keys[3] = base;
		rc = policy_alias(keys, 4, r);
		if (rc < 0)
			goto tempfail;
		if (rc > 0)
			return 1;
		reply_set(r, 550, "5.1.1", "<%.180s>: Recipient address "
		    "rejected: User unknown", addr);
		return 0;
	}

	rc = policy_list_has(&pol.relay, domain, r);
	if (rc < 0)
		goto tempfail;
	if (rc > 0) {
		keys[0] = full;
		keys[1] = unext;
		(void)snprintf(atdomain, sizeof(atdomain), "@%s", domain);
		keys[2] = atdomain;
		for (rc = 0; rc < 3; rc++) {
			int found = policy_list_has(&pol.relay_rcpt,
			    keys[rc], r);

			if (found < 0)
				goto tempfail;
			if (found > 0)
				return 1;
		}
		reply_set(r, 550, "5.1.1", "<%.180s>: Recipient address "
		    "rejected: User unknown in relay recipient table", addr);
		return 0;
	}

	rc = policy_eval(s, pol.relay_r, pol.nrelay_r, domain, r);
	if (rc == -2)
		goto tempfail;
	if (rc == 1)
		return 1;
	reply_set(r, 554, "5.7.1", "<%.180s>: Relay access denied", addr);
	return 0;

tempfail:
	reply_set(r, 451, "4.3.0", "<%.180s>: Temporary lookup failure", addr);
	return -1;
}
