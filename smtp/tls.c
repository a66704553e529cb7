/*
 * tls - the smtp client's TLS: one client context and the policy
 *
 * The context is made before privileges drop (a client key may be
 * root's).  It verifies in TLS_VERIFY_OPTIONAL mode: the handshake never
 * fails because of the certificate, the outcome is recorded and judged
 * here by the policy of the destination:
 *
 *	none	no STARTTLS
 *	may	STARTTLS when offered; any certificate; a failed handshake
 *		is retried once without TLS (conn.c)
 *	encrypt	STARTTLS required (else 4.7.4), any certificate
 *	verify	STARTTLS required and the certificate verified against the
 *		CA and one of the match= names (default the MX host name,
 *		or the next hop's host), or with fingerprint= its SHA-256
 *		fingerprint equal to one given (else 4.7.5)
 *
 * smtp_tls_security_level is the default; smtp_tls_policy_maps tables
 * override it per destination: the key is the next hop as given
 * ("[10.0.0.1]:2525"), then without its port ("[10.0.0.1]"), then the
 * domain.  Value: a level, then "match=NAME[:NAME...]" and
 * "fingerprint=HEX" options (colons in HEX optional, any case).  A
 * value that does not parse defers the mail (a broken table never
 * lowers security by guessing).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "smtp.h"
#include "tls.h"

static const char *const level_names[] = {
	[SMTP_TLS_NONE] = "none",
	[SMTP_TLS_MAY] = "may",
	[SMTP_TLS_ENCRYPT] = "encrypt",
	[SMTP_TLS_VERIFY] = "verify",
};

const char *
smtp_tls_level_name(enum smtp_tls_level l)
{
	return level_names[l];
}

int
smtp_tls_level_parse(const char *s, enum smtp_tls_level *l_r)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0) {
			*l_r = (enum smtp_tls_level)i;
			return 0;
		}
	return -1;
}

int
smtp_tls_pre_drop(struct cfg *c)
{
	struct tls_conf tc;
	struct buf errs;
	const char *capath = cfg_str(c, "smtp_tls_ca_path");
	int rc = 0;

	tls_conf_init(&tc);
	tc.cert_file = cfg_str(c, "smtp_tls_cert_file");
	tc.key_file = cfg_str(c, "smtp_tls_key_file");
	tc.ca_file = cfg_str(c, "smtp_tls_ca_file");
	tc.verify = TLS_VERIFY_OPTIONAL;
	if (tls_version_parse(cfg_str(c, "tls_protocols"), &tc.min_version) < 0)
		tc.min_version = TLS1_2_VERSION;
	buf_init(&errs, 0);
	if ((smtp_conf.tls_ctx = tls_client_ctx(&tc, &errs)) == NULL)
		rc = -1;
	else if (*capath != '\0' && SSL_CTX_load_verify_locations(
	    smtp_conf.tls_ctx, NULL, capath) != 1) {
		(void)buf_printf(&errs, "smtp_tls_ca_path %s: cannot be "
		    "loaded\n", capath);
		rc = -1;
	}
	if (rc < 0)
		log_lines(LOG_L_ERR, buf_cstr(&errs));
	buf_deinit(&errs);
	return rc;
}

/* policy_fp - normalize a fingerprint: hex digits, colons dropped */
static int
policy_fp(const char *s, size_t n, char out[65])
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == ':')
			continue;
		if (!isxdigit((unsigned char)s[i]) || k >= 64)
			return -1;
		out[k++] = (char)toupper((unsigned char)s[i]);
	}
	out[k] = '\0';
	return k == 64 ? 0 : -1;
}

int
smtp_tls_policy_parse(const char *value, struct smtp_policy *p,
    const char **why_r)
{
	const char *s = value, *w, *c, *end;
	size_t n, k, i;
	char word[32];

	memset(p, 0, sizeof(*p));
	while (*s == ' ' || *s == '\t')
		s++;
	for (w = s; *s != '\0' && *s != ' ' && *s != '\t'; s++)
		;
	n = (size_t)(s - w);
	if (n == 0 || n >= sizeof(word)) {
		*why_r = "no security level";
		return -1;
	}
	memcpy(word, w, n);
	word[n] = '\0';
	if (smtp_tls_level_parse(word, &p->level) < 0) {
		*why_r = "unknown security level";
		return -1;
	}
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		for (w = s; *s != '\0' && *s != ' ' && *s != '\t'; s++)
			;
		end = s;
		if ((size_t)(end - w) > 6 && strncasecmp(w, "match=", 6) == 0) {
			for (c = w + 6; c < end; c += k + 1) {
				for (k = 0; c + k < end && c[k] != ':'; k++)
					;
				if (k == 0 || k > SMTP_HOST_MAX ||
				    p->nmatch >= SMTP_MATCH_MAX) {
					*why_r = "bad match= name";
					return -1;
				}
				for (i = 0; i < k; i++)
					p->match[p->nmatch][i] =
					    (char)tolower((unsigned char)c[i]);
				p->match[p->nmatch++][k] = '\0';
				if (c + k == end)
					break;
			}
		} else if ((size_t)(end - w) > 12 &&
		    strncasecmp(w, "fingerprint=", 12) == 0) {
			if (p->nfp >= SMTP_FP_MAX ||
			    policy_fp(w + 12, (size_t)(end - w - 12),
			    p->fp[p->nfp]) < 0) {
				*why_r = "bad fingerprint= (SHA-256 in hex)";
				return -1;
			}
			p->nfp++;
		} else {
			*why_r = "unknown option";
			return -1;
		}
	}
	if ((p->nmatch > 0 || p->nfp > 0) && p->level != SMTP_TLS_VERIFY) {
		*why_r = "match= and fingerprint= need level verify";
		return -1;
	}
	return 0;
}

int
smtp_tls_policy(struct smtp_job *job, struct reply *r)
{
	char keys[3][SMTP_HOST_MAX + 16], *value;
	const char *why;
	size_t nkeys = 0, i, m;
	int rc;

	memset(&job->policy, 0, sizeof(job->policy));
	job->policy.level = smtp_conf.tls_level;
	if (smtp_conf.npolicy_maps == 0)
		return 0;
	(void)snprintf(keys[nkeys++], sizeof(keys[0]), "%s", job->dest);
	if (job->is_bracket) {
		(void)snprintf(keys[nkeys], sizeof(keys[0]), "[%s]",
		    job->host);
		if (strcmp(keys[nkeys], keys[0]) != 0)
			nkeys++;
	} else if (strcmp(job->host, keys[0]) != 0)
		(void)snprintf(keys[nkeys++], sizeof(keys[0]), "%s",
		    job->host);
	for (i = 0; i < nkeys; i++)
		for (m = 0; m < smtp_conf.npolicy_maps; m++) {
			rc = map_lookup(smtp_conf.policy_maps[m], keys[i],
			    &value, r);
			if (rc < 0)
				return -1;
			if (rc == 0)
				continue;
			if (smtp_tls_policy_parse(value, &job->policy,
			    &why) < 0) {
				log_warn("%s: %s: bad TLS policy for %s: %s",
				    job->id, map_spec(smtp_conf.policy_maps[m]),
				    keys[i], why);
				reply_set(r, 451, "4.3.5", "bad TLS policy for "
				    "%.200s in smtp_tls_policy_maps", keys[i]);
				free(value);
				return -1;
			}
			free(value);
			return 0;
		}
	return 0;
}

size_t
smtp_tls_names(const struct smtp_job *job, const struct smtp_addr *a,
    const char **names, size_t max)
{
	size_t i, n = 0;

	if (job->policy.nmatch > 0) {
		for (i = 0; i < job->policy.nmatch && n < max; i++)
			names[n++] = job->policy.match[i];
		return n;
	}
	if (max > 0)
		names[n++] = a->host;
	return n;
}

int
smtp_tls_fp_ok(const struct smtp_policy *p, const char *fp)
{
	char norm[65];
	size_t i;

	if (policy_fp(fp, strlen(fp), norm) < 0)
		return 0;
	for (i = 0; i < p->nfp; i++)
		if (strcmp(p->fp[i], norm) == 0)
			return 1;
	return 0;
}
