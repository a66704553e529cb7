/*
 * tls - OpenSSL contexts from configuration, and what a session learned
 *
 * struct tls_conf says where the certificate, key and CA files are, the
 * lowest protocol accepted (TLSv1.2 or TLSv1.3: nothing older is ever
 * allowed) and how a peer certificate is checked:
 *
 *	TLS_VERIFY_NONE		no certificate is asked for (server) or
 *				checked (client)
 *	TLS_VERIFY_OPTIONAL	a certificate is asked for and checked, but a
 *				missing or untrusted one does not abort the
 *				handshake: the peer is then just not trusted
 *				(tls_info.is_peer_verified is false)
 *	TLS_VERIFY_REQUIRE	the handshake fails unless the peer shows a
 *				certificate that verifies against the CA file
 *				(and, on the client, matches the host name
 *				when the stream asked for the check)
 *
 * tls_conf_from_cfg() fills a tls_conf from the settings tls_cert_file,
 * tls_key_file, tls_ca_file, tls_protocols and tls_verify_client; the
 * file names are borrowed from the cfg and valid until it changes.  An
 * empty key file means the key is in the certificate file.
 *
 * tls_server_ctx() and tls_client_ctx() return a new SSL_CTX (the caller
 * frees it with SSL_CTX_free()), or NULL with one line per problem
 * appended to errs, e.g. "tls_key_file /etc/posta/key.pem: ...".  Key
 * files are read here, so call them before privileges are dropped.  The
 * server needs a certificate and key; verification other than NONE needs
 * a CA file (the client falls back to the system's CA store).  Both
 * contexts refuse renegotiation and treat a peer that closes without
 * close_notify as an ordinary end of file (SMTP and IMAP frame their own
 * data, so truncation is seen by the protocol).
 *
 * After a handshake, tls_info_get() describes the session: protocol,
 * cipher, and the peer certificate - whether there is one, whether it is
 * trusted, its SHA-256 fingerprint ("AB:CD:...", upper-case hex with
 * colons, as `openssl x509 -fingerprint -sha256` prints it) and subject
 * CN.  The CN comes from the peer: it is cut to fit and every byte that
 * is not printable ASCII is shown as '?', so it is safe in a Received:
 * header or a log line.  A peer is trusted only when a certificate was
 * presented AND every check on it passed: no certificate also leaves
 * SSL_get_verify_result() at X509_V_OK, which tls_info_get() never
 * mistakes for trust.
 */
#ifndef POSTA_TLS_H
#define POSTA_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "cfg.h"

enum tls_verify {
	TLS_VERIFY_NONE,
	TLS_VERIFY_OPTIONAL,
	TLS_VERIFY_REQUIRE,
};

struct tls_conf {
	const char	*cert_file;	/* PEM chain, leaf first */
	const char	*key_file;	/* PEM key; NULL or "" = in cert_file */
	const char	*ca_file;	/* PEM CAs to verify peers with */
	int		 min_version;	/* TLS1_2_VERSION or TLS1_3_VERSION */
	enum tls_verify	 verify;
};

/* SHA-256: 32 bytes as "XX:" * 32 minus the last colon, plus NUL */
#define TLS_FINGERPRINT_SIZE	(32 * 3)
#define TLS_CN_SIZE		256

struct tls_info {
	char	version[16];		/* "TLSv1.3" */
	char	cipher[64];		/* "TLS_AES_256_GCM_SHA384" */
	int	bits;			/* secret bits of the cipher */
	bool	has_peer_cert;
	bool	is_peer_verified;	/* has_peer_cert and all checks ok */
	long	verify_result;		/* X509_V_OK or the X509_V_ERR_* */
	char	peer_cn[TLS_CN_SIZE];	/* "" when none */
	char	peer_fingerprint[TLS_FINGERPRINT_SIZE];	/* "" when none */
};

/* tls_conf_init - no files, TLSv1.2, TLS_VERIFY_NONE */
void	tls_conf_init(struct tls_conf *);
/*
 * tls_conf_from_cfg - fill conf from the tls_* settings of c; 0, or -1
 * with a line in errs (a value the settings table should have refused)
 */
int	tls_conf_from_cfg(struct cfg *c, struct tls_conf *conf_r,
	    struct buf *errs);
/* tls_verify_parse - "none" "optional" "require"; 0 or -1 */
int	tls_verify_parse(const char *, enum tls_verify *verify_r);
/* tls_version_parse - "TLSv1.2" "TLSv1.3"; 0 or -1 */
int	tls_version_parse(const char *, int *version_r);

SSL_CTX	*tls_server_ctx(const struct tls_conf *, struct buf *errs);
SSL_CTX	*tls_client_ctx(const struct tls_conf *, struct buf *errs);

/*
 * tls_info_get - describe the session of ssl after its handshake into
 * info_r; 0, or -1 if ssl has not finished a handshake
 */
int	tls_info_get(SSL *ssl, struct tls_info *info_r);

/*
 * tls_is_peer_trusted - 1 if the peer showed a certificate and it passed
 * every check, else 0
 */
int	tls_is_peer_trusted(SSL *ssl);

/*
 * tls_cert_fingerprint - SHA-256 of the DER of cert as "AB:CD:..." into
 * out (size >= TLS_FINGERPRINT_SIZE); 0 or -1
 */
int	tls_cert_fingerprint(X509 *cert, char *out, size_t outsz);

/*
 * tls_error_string - append the queued OpenSSL errors to out (each as
 * "; reason"), or "what" alone when there are none, and clear the queue
 */
void	tls_error_string(const char *what, char *out, size_t outsz);

#endif
