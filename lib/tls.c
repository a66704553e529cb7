/*
 * tls - OpenSSL contexts from configuration (see tls.h)
 *
 * Verification failures are recorded on the SSL object by our verify
 * callback, in addition to what OpenSSL keeps in its verify result: in
 * optional mode the callback overrides each failure to let the handshake
 * go on, and trust must never depend on whether a later check in the
 * chain happened to leave the stored result at X509_V_OK.  Sessions are
 * never resumed (no cache, no tickets): each daemon process would have
 * its own keys anyway, and a resumed session would not run the callback.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "cfg.h"
#include "log.h"
#include "tls.h"

static CRYPTO_ONCE tls_once = CRYPTO_ONCE_STATIC_INIT;
static int tls_ex_index = -1;

static void
tls_once_init(void)
{
	tls_ex_index = SSL_get_ex_new_index(0, "posta verify failure",
	    NULL, NULL, NULL);
}

static int
tls_index(void)
{
	if (!CRYPTO_THREAD_run_once(&tls_once, tls_once_init) ||
	    tls_ex_index < 0)
		log_fatal("tls: cannot allocate SSL ex_data index");
	return tls_ex_index;
}

void
tls_conf_init(struct tls_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->min_version = TLS1_2_VERSION;
	conf->verify = TLS_VERIFY_NONE;
}

int
tls_verify_parse(const char *s, enum tls_verify *verify_r)
{
	if (strcmp(s, "none") == 0)
		*verify_r = TLS_VERIFY_NONE;
	else if (strcmp(s, "optional") == 0)
		*verify_r = TLS_VERIFY_OPTIONAL;
	else if (strcmp(s, "require") == 0)
		*verify_r = TLS_VERIFY_REQUIRE;
	else
		return -1;
	return 0;
}

int
tls_version_parse(const char *s, int *version_r)
{
	if (strcmp(s, "TLSv1.2") == 0)
		*version_r = TLS1_2_VERSION;
	else if (strcmp(s, "TLSv1.3") == 0)
		*version_r = TLS1_3_VERSION;
	else
		return -1;
	return 0;
}

int
tls_conf_from_cfg(struct cfg *c, struct tls_conf *conf_r, struct buf *errs)
{
	struct tls_conf conf;
	const char *v;

	tls_conf_init(&conf);
	conf.cert_file = cfg_str(c, "tls_cert_file");
	conf.key_file = cfg_str(c, "tls_key_file");
	conf.ca_file = cfg_str(c, "tls_ca_file");
	v = cfg_str(c, "tls_protocols");
	if (tls_version_parse(v, &conf.min_version) < 0) {
		(void)buf_printf(errs, "tls_protocols: unknown value \"%s\"\n",
		    v);
		return -1;
	}
	v = cfg_str(c, "tls_verify_client");
	if (tls_verify_parse(v, &conf.verify) < 0) {
		(void)buf_printf(errs,
		    "tls_verify_client: unknown value \"%s\"\n", v);
		return -1;
	}
	*conf_r = conf;
	return 0;
}

void
tls_error_string(const char *what, char *out, size_t outsz)
{
	unsigned long e;
	const char *reason, *last = NULL;
	char tmp[256];
	size_t len;
	int n;

	if (outsz == 0)
		return;
	n = snprintf(out, outsz, "%s", what);
	len = n < 0 ? 0 : (size_t)n >= outsz ? outsz - 1 : (size_t)n;
	while ((e = ERR_get_error()) != 0) {
		if (ERR_SYSTEM_ERROR(e))
			reason = strerror(ERR_GET_REASON(e));
		else if ((reason = ERR_reason_error_string(e)) == NULL) {
			ERR_error_string_n(e, tmp, sizeof(tmp));
			reason = tmp;
		}
		/* OpenSSL stacks the same reason at each level */
		if (last != NULL && strcmp(last, reason) == 0)
			continue;
		/* and "system lib", "PEM lib" after the real reason */
		if (last != NULL && strlen(reason) > 4 &&
		    strcmp(reason + strlen(reason) - 4, " lib") == 0)
			continue;
		n = snprintf(out + len, outsz - len, "%s%s",
		    len > 0 ? ": " : "", reason);
		if (n < 0 || (size_t)n >= outsz - len) {
			ERR_clear_error();	/* the text is full */
			break;
		}
		len += (size_t)n;
		last = reason == tmp ? NULL : reason;
	}
}

static int
tls_fail(struct buf *errs, const char *setting, const char *file,
    const char *what)
{
	char msg[512];

	tls_error_string(what, msg, sizeof(msg));
	if (file != NULL)
		(void)buf_printf(errs, "%s %s: %s\n", setting, file, msg);
	else
		(void)buf_printf(errs, "%s: %s\n", setting, msg);
	return -1;
}

static int
is_set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* record the first verification failure on the SSL object */
static void
tls_verify_record(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	int err;

	if (ok)
		return;
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || SSL_get_ex_data(ssl, tls_index()) != NULL)
		return;
	err = X509_STORE_CTX_get_error(xs);
	if (err == X509_V_OK)
		err = X509_V_ERR_UNSPECIFIED;
	(void)SSL_set_ex_data(ssl, tls_index(), (void *)(intptr_t)err);
}

/* optional: note the failure, but let the handshake go on */
static int
tls_verify_optional_cb(int ok, X509_STORE_CTX *xs)
{
	tls_verify_record(ok, xs);
	return 1;
}

/* require: note the failure and let OpenSSL abort on it */
static int
tls_verify_require_cb(int ok, X509_STORE_CTX *xs)
{
	tls_verify_record(ok, xs);
	return ok;
}

/* tls_ctx_common - protocol floor, options, certificate and key */
static int
tls_ctx_common(SSL_CTX *ctx, const struct tls_conf *conf, int is_server,
    struct buf *errs)
{
	const char *key;
	int bad = 0;

	(void)tls_index();
	if (conf->min_version != TLS1_2_VERSION &&
	    conf->min_version != TLS1_3_VERSION) {
		(void)buf_printf(errs, "tls_protocols: only TLSv1.2 and "
		    "TLSv1.3 may be the lowest version\n");
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, conf->min_version))
		return tls_fail(errs, "tls_protocols", NULL,
		    "cannot set the lowest version");
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_TICKET);
	if (is_server)
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (is_server)
		(void)SSL_CTX_set_num_tickets(ctx, 0);
	if (!SSL_CTX_set_session_id_context(ctx,
	    (const unsigned char *)"posta", 5))
		return tls_fail(errs, "tls", NULL, "session id context");

	if (!is_set(conf->cert_file)) {
		if (is_server) {
			(void)buf_printf(errs, "tls_cert_file: not set, "
			    "a TLS server needs a certificate\n");
			return -1;
		}
		if (is_set(conf->key_file)) {
			(void)buf_printf(errs, "tls_key_file: set without "
			    "tls_cert_file\n");
			return -1;
		}
		return 0;
	}
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1) {
		(void)tls_fail(errs, "tls_cert_file", conf->cert_file,
		    "cannot load certificate");
		bad = 1;
	}
	key = is_set(conf->key_file) ? conf->key_file : conf->cert_file;
	if (bad)
		return -1;	/* a key error now would only repeat it */
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		(void)tls_fail(errs, "tls_key_file", key, "cannot load key");
		bad = 1;
	}
	if (!bad && SSL_CTX_check_private_key(ctx) != 1) {
		(void)tls_fail(errs, "tls_key_file", key,
		    "does not match the certificate");
		bad = 1;
	}
	return bad ? -1 : 0;
}

SSL_CTX *
tls_server_ctx(const struct tls_conf *conf, struct buf *errs)
{
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		(void)tls_fail(errs, "tls", NULL, "SSL_CTX_new");
		return NULL;
	}
	if (tls_ctx_common(ctx, conf, 1, errs) < 0)
		goto fail;
	if (conf->verify == TLS_VERIFY_NONE) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if (!is_set(conf->ca_file)) {
		(void)buf_printf(errs, "tls_ca_file: not set, needed to "
		    "verify client certificates\n");
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, conf->ca_file, NULL) != 1) {
		(void)tls_fail(errs, "tls_ca_file", conf->ca_file,
		    "cannot load CA certificates");
		goto fail;
	}
	/* the CA names tell the client which certificate to show */
	if ((names = SSL_load_client_CA_file(conf->ca_file)) == NULL) {
		(void)tls_fail(errs, "tls_ca_file", conf->ca_file,
		    "no CA names");
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	if (conf->verify == TLS_VERIFY_OPTIONAL)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_CLIENT_ONCE, tls_verify_optional_cb);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
		    tls_verify_require_cb);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(const struct tls_conf *conf, struct buf *errs)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		(void)tls_fail(errs, "tls", NULL, "SSL_CTX_new");
		return NULL;
	}
	if (tls_ctx_common(ctx, conf, 0, errs) < 0)
		goto fail;
	if (is_set(conf->ca_file)) {
		if (SSL_CTX_load_verify_locations(ctx, conf->ca_file,
		    NULL) != 1) {
			(void)tls_fail(errs, "tls_ca_file", conf->ca_file,
			    "cannot load CA certificates");
			goto fail;
		}
	} else if (conf->verify != TLS_VERIFY_NONE &&
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		(void)tls_fail(errs, "tls_ca_file", NULL,
		    "cannot load the system CA store");
		goto fail;
	}
	/*
	 * A client always checks the chain so that tls_info can tell
	 * whether the server is trusted; only REQUIRE aborts on failure.
	 */
	if (conf->verify == TLS_VERIFY_REQUIRE)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_require_cb);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER,
		    tls_verify_optional_cb);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_cert_fingerprint(X509 *cert, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (outsz < TLS_FINGERPRINT_SIZE ||
	    X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
		if (outsz > 0)
			out[0] = '\0';
		return -1;
	}
	for (i = 0; i < n; i++) {
		out[i * 3] = hex[md[i] >> 4];
		out[i * 3 + 1] = hex[md[i] & 0x0f];
		out[i * 3 + 2] = i + 1 < n ? ':' : '\0';
	}
	return 0;
}

/* tls_cert_cn - the subject CN, made safe to print; "" when none */
static void
tls_cert_cn(X509 *cert, char *out, size_t outsz)
{
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	size_t i, o = 0;
	int idx, n;

	out[0] = '\0';
	if (name == NULL ||
	    (idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return;
	e = X509_NAME_get_entry(name, idx);
	if (e == NULL ||
	    (n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
		return;
	/* the peer chose these bytes: no controls, no 8-bit in headers */
	for (i = 0; i < (size_t)n && o + 1 < outsz; i++)
		out[o++] = utf8[i] >= 0x20 && utf8[i] < 0x7f ?
		    (char)utf8[i] : '?';
	out[o] = '\0';
	OPENSSL_free(utf8);
}

static long
tls_verify_failure(SSL *ssl)
{
	long v = SSL_get_verify_result(ssl);
	intptr_t rec = (intptr_t)SSL_get_ex_data(ssl, tls_index());

	if (v == X509_V_OK && rec != 0)
		v = (long)rec;
	return v;
}

int
tls_is_peer_trusted(SSL *ssl)
{
	if (ssl == NULL || !SSL_is_init_finished(ssl) ||
	    SSL_get0_peer_certificate(ssl) == NULL)
		return 0;
	return tls_verify_failure(ssl) == X509_V_OK;
}

int
tls_info_get(SSL *ssl, struct tls_info *info_r)
{
	struct tls_info info;
	X509 *peer;
	const char *s;

	memset(&info, 0, sizeof(info));
	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return -1;
	s = SSL_get_version(ssl);
	(void)snprintf(info.version, sizeof(info.version), "%s",
	    s != NULL ? s : "unknown");
	s = SSL_get_cipher_name(ssl);
	(void)snprintf(info.cipher, sizeof(info.cipher), "%s",
	    s != NULL ? s : "unknown");
	info.bits = SSL_get_cipher_bits(ssl, NULL);
	info.verify_result = tls_verify_failure(ssl);
	if ((peer = SSL_get0_peer_certificate(ssl)) != NULL) {
		info.has_peer_cert = true;
		info.is_peer_verified = info.verify_result == X509_V_OK;
		tls_cert_cn(peer, info.peer_cn, sizeof(info.peer_cn));
		(void)tls_cert_fingerprint(peer, info.peer_fingerprint,
		    sizeof(info.peer_fingerprint));
	}
	*info_r = info;
	return 0;
}
