/*
 * test_tls - TLS contexts from configuration and streams over real TCP
 * on 127.0.0.1: plain, implicit TLS, STARTTLS with injected plaintext,
 * client certificates (trusted, self-signed, other CA, none, hostile
 * CN) under optional and require, the protocol floor (TLS 1.1 refused),
 * host name checks, handshake timeout, a handshake driven by lib/ev.
 *
 * Certificates are made at run time by tests/fixtures/tls/mkcerts.sh in
 * a temporary directory (and one in C, for a CN with control bytes).
 * Each server is a forked child that accepts one connection and reports
 * what it saw as "key=value" lines on a pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cfg.h"
#include "ev.h"
#include "settings.h"
#include "stream.h"
#include "tls.h"

static char dir[256];

static const char *
path(const char *name)
{
	static char p[8][512];
	static int i;

	i = (i + 1) % 8;
	(void)snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

/* a self-signed EC certificate whose CN holds control and 8-bit bytes */
static int
make_hostile_cert(void)
{
	static const unsigned char cn[] = "evil\r\nX: 1\x01\xc3\xa9";
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;
	int ok = 0;

	if (key == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn,
	    (int)sizeof(cn) - 1, -1, 0))
		goto out;
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, key, EVP_sha256()))
		goto out;
	if ((f = fopen(path("hostile.pem"), "w")) == NULL)
		goto out;
	ok = PEM_write_X509(f, x);
	fclose(f);
	if ((f = fopen(path("hostile.key"), "w")) == NULL)
		goto out;
	ok = ok && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

static int
group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char cmd[1024];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	(void)snprintf(dir, sizeof(dir), "%s/posta-tls-XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	(void)snprintf(cmd, sizeof(cmd),
	    "tests/fixtures/tls/mkcerts.sh '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	return make_hostile_cert();
}

static int
group_teardown(void **state)
{
	char cmd[1024];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* the fingerprint as the openssl command prints it */
static void
cli_fingerprint(const char *pem, char *out, size_t outsz)
{
	char cmd[1024], line[512], *eq, *nl;
	FILE *p;

	(void)snprintf(cmd, sizeof(cmd),
	    "openssl x509 -in '%s' -noout -fingerprint -sha256", pem);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	eq = strchr(line, '=');
	assert_non_null(eq);
	if ((nl = strchr(eq, '\n')) != NULL)
		*nl = '\0';
	(void)snprintf(out, outsz, "%s", eq + 1);
	assert_int_equal(strlen(out), 95);
}

/* ---- contexts --------------------------------------------------------- */

static struct tls_conf
conf_of(const char *cert, const char *key, const char *ca,
    enum tls_verify verify)
{
	struct tls_conf c;

	tls_conf_init(&c);
	c.cert_file = cert != NULL ? path(cert) : NULL;
	c.key_file = key != NULL ? path(key) : NULL;
	c.ca_file = ca != NULL ? path(ca) : NULL;
	c.verify = verify;
	return c;
}

static SSL_CTX *
server_ctx(enum tls_verify verify, int min_version)
{
	struct tls_conf c = conf_of("server.pem", "server.key", "ca.pem",
	    verify);
	struct buf errs;
	SSL_CTX *ctx;

	c.min_version = min_version;
	buf_init(&errs, 0);
	ctx = tls_server_ctx(&c, &errs);
	if (ctx == NULL)
		fprintf(stderr, "%s", buf_cstr(&errs));
	assert_non_null(ctx);
	assert_int_equal(buf_len(&errs), 0);
	buf_deinit(&errs);
	return ctx;
}

/* client_ctx - cert NULL for none; ca NULL for ca.pem */
static SSL_CTX *
client_ctx(const char *cert, const char *key, const char *ca,
    enum tls_verify verify)
{
	struct tls_conf c = conf_of(cert, key, ca != NULL ? ca : "ca.pem",
	    verify);
	struct buf errs;
	SSL_CTX *ctx;

	buf_init(&errs, 0);
	ctx = tls_client_ctx(&c, &errs);
	if (ctx == NULL)
		fprintf(stderr, "%s", buf_cstr(&errs));
	assert_non_null(ctx);
	buf_deinit(&errs);
	return ctx;
}

/* a client that speaks only TLS versions min..max (old ones allowed) */
static SSL_CTX *
raw_client_ctx(int min, int max)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	SSL_CTX_set_security_level(ctx, 0);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"),
	    1);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, min), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* ---- the server child ------------------------------------------------- */

enum srv_mode {
	SRV_PLAIN,
	SRV_IMPLICIT,
	SRV_STARTTLS,
	SRV_EV,			/* implicit TLS driven by lib/ev */
	SRV_BULK,		/* implicit TLS, then BULK_LINES lines */
	SRV_CLOSE,		/* implicit TLS, then hang up at once */
};

#define BULK_LINES	20000	/* of 100 bytes */

struct srv {
	pid_t	pid;
	int	port;
	int	report;		/* read end of the report pipe */
	char	text[4096];	/* the report, once read */
};

static void
rep(struct buf *b, const char *k, const char *v)
{
	(void)buf_printf(b, "%s=%s\n", k, v);
}

static void
rep_info(struct buf *b, struct stream *s)
{
	struct tls_info ti;

	if (tls_info_get(stream_ssl(s), &ti) < 0) {
		rep(b, "info", "none");
		return;
	}
	rep(b, "version", ti.version);
	(void)buf_printf(b, "peer=%d\nverified=%d\nvr=%ld\ntrusted=%d\n",
	    ti.has_peer_cert, ti.is_peer_verified, ti.verify_result,
	    tls_is_peer_trusted(stream_ssl(s)));
	rep(b, "cn", ti.peer_cn);
	rep(b, "fp", ti.peer_fingerprint);
}

/* srv_echo - read a line, answer "250 <line>", note it */
static void
srv_echo(struct buf *b, struct stream *s)
{
	const char *line;
	size_t len;
	int f;

	if (stream_read_line_wait(s, &line, &len, &f) != 1) {
		rep(b, "line", "-");
		rep(b, "read_err", stream_error(s));
		return;
	}
	rep(b, "line", line);
	if (stream_printf(s, "250 %s\r\n", line) < 0 ||
	    stream_flush_wait(s) < 0)
		rep(b, "write_err", stream_error(s));
}

struct evsrv {
	struct ev	*ev;
	struct stream	*s;
	int		 state;		/* 0 handshake, 1 read, 2 write */
	struct buf	*b;
};

static void
evsrv_done(struct evsrv *e, const char *how)
{
	rep(e->b, "ev", how);
	ev_fd_clear(e->ev, stream_fd(e->s));
	ev_stop(e->ev);
}

static void
evsrv_cb(struct ev *ev, int fd, int events, void *arg)
{
	struct evsrv *e = arg;
	const char *line;
	size_t len;
	ssize_t n;
	int f, r;

	(void)events;
	if (e->state == 0) {
		if ((r = stream_handshake(e->s)) < 0) {
			rep(e->b, "err", stream_error(e->s));
			evsrv_done(e, "hs-fail");
			return;
		}
		if (r == 0) {
			(void)ev_fd_set(ev, fd, stream_events(e->s, 0),
			    evsrv_cb, e);
			return;
		}
		rep(e->b, "hs", "ok");
		rep_info(e->b, e->s);
		e->state = 1;
	}
	while (e->state == 1) {
		if ((r = stream_getline(e->s, &line, &len, &f)) == 1) {
			rep(e->b, "line", line);
			(void)stream_printf(e->s, "250 %s\r\n", line);
			e->state = 2;
			break;
		}
		if (r < 0) {
			evsrv_done(e, "too-long");
			return;
		}
		n = stream_fill(e->s);
		if (n == STREAM_AGAIN) {
			(void)ev_fd_set(ev, fd, stream_events(e->s, EV_READ),
			    evsrv_cb, e);
			return;
		}
		if (n <= 0) {
			evsrv_done(e, "read-fail");
			return;
		}
	}
	if ((r = stream_flush(e->s)) == 1)
		evsrv_done(e, "done");
	else if (r == 0)
		(void)ev_fd_set(ev, fd, stream_events(e->s, 0), evsrv_cb, e);
	else
		evsrv_done(e, "write-fail");
}

static void
evsrv_timeout(struct ev *ev, void *arg)
{
	struct evsrv *e = arg;

	(void)ev;
	evsrv_done(e, "timeout");
}

static void
srv_child(int lfd, int wfd, enum srv_mode mode, SSL_CTX *ctx, int rt)
{
	struct stream_limits lim = { 1000, rt, 3000, 0 };
	struct stream *s;
	struct buf b;
	const char *line;
	size_t len;
	ssize_t d;
	int64_t t0;
	int fd, f;

	alarm(10);
	buf_init(&b, 0);
	if ((fd = accept(lfd, NULL, NULL)) < 0)
		_exit(2);
	close(lfd);
	if ((s = stream_new(fd, &lim, 0)) == NULL)
		_exit(3);
	switch (mode) {
	case SRV_PLAIN:
		srv_echo(&b, s);
		break;
	case SRV_STARTTLS:
		if (stream_read_line_wait(s, &line, &len, &f) != 1)
			_exit(4);
		rep(&b, "first", line);
		(void)stream_puts(s, "220 2.0.0 Ready to start TLS\r\n");
		if (stream_flush_wait(s) < 0)
			_exit(5);
		d = stream_starttls(s, ctx, true);
		(void)buf_printf(&b, "discarded=%zd\n", d);
		/* FALLTHROUGH */
	case SRV_IMPLICIT:
		if (mode == SRV_IMPLICIT && stream_tls_accept(s, ctx) < 0)
			_exit(6);
		t0 = ev_clock_ms();
		if (stream_handshake_wait(s) < 0) {
			rep(&b, "hs", "fail");
			(void)buf_printf(&b, "errno=%d\nms=%lld\n", errno,
			    (long long)(ev_clock_ms() - t0));
			rep(&b, "err", stream_error(s));
			break;
		}
		rep(&b, "hs", "ok");
		rep_info(&b, s);
		srv_echo(&b, s);
		break;
	case SRV_CLOSE:
		if (stream_tls_accept(s, ctx) < 0 ||
		    stream_handshake_wait(s) < 0)
			_exit(6);
		rep(&b, "hs", "ok");
		break;
	case SRV_BULK: {
		static char x[91];
		int i, blocked = 0;

		f = 32768;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &f, sizeof(f));
		if (stream_tls_accept(s, ctx) < 0 ||
		    stream_handshake_wait(s) < 0)
			_exit(6);
		memset(x, 'x', sizeof(x) - 1);
		for (i = 0; i < BULK_LINES; i++) {
			if (stream_printf(s, "%06d %s\r\n", i, x) < 0)
				_exit(7);
			if (stream_out_len(s) < 256 * 1024)
				continue;
			if (stream_flush(s) == 0)
				blocked++;
			if (stream_flush_wait(s) < 0)
				_exit(8);
		}
		if (stream_flush_wait(s) < 0)
			_exit(8);
		(void)buf_printf(&b, "blocked=%d\n", blocked);
		srv_echo(&b, s);
		break;
	}
	case SRV_EV: {
		struct evsrv e = { ev_new(), s, 0, &b };
		struct ev_timer *t;

		if (stream_tls_accept(s, ctx) < 0)
			_exit(6);
		(void)ev_fd_set(e.ev, fd, stream_events(s, 0), evsrv_cb, &e);
		t = ev_timer_add(e.ev, 5000, evsrv_timeout, &e);
		(void)ev_run(e.ev);
		ev_timer_cancel(e.ev, &t);
		ev_free(&e.ev);
		break;
	}
	}
	stream_free(&s);
	if (write(wfd, buf_cstr(&b), buf_len(&b)) != (ssize_t)buf_len(&b))
		_exit(9);
	_exit(0);
}

static void
srv_start(struct srv *v, enum srv_mode mode, SSL_CTX *ctx, int rt)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int lfd, p[2], one = 1;

	memset(v, 0, sizeof(*v));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
	v->port = ntohs(sin.sin_port);
	assert_int_equal(pipe(p), 0);
	v->pid = fork();
	assert_true(v->pid >= 0);
	if (v->pid == 0) {
		close(p[0]);
		srv_child(lfd, p[1], mode, ctx, rt);
	}
	close(p[1]);
	close(lfd);
	v->report = p[0];
}

/* srv_wait - read the child's report and reap it */
static void
srv_wait(struct srv *v)
{
	size_t got = 0;
	ssize_t n;
	int st;

	while (got + 1 < sizeof(v->text) &&
	    (n = read(v->report, v->text + got,
	    sizeof(v->text) - 1 - got)) > 0)
		got += (size_t)n;
	v->text[got] = '\0';
	close(v->report);
	assert_int_equal(waitpid(v->pid, &st, 0), v->pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "server: status %d, report:\n%s", st, v->text);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* srv_get - the value of key in the report ("" when absent) */
static const char *
srv_get(const struct srv *v, const char *key)
{
	static char val[1024];
	size_t klen = strlen(key);
	const char *p = v->text, *nl;

	val[0] = '\0';
	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			(void)snprintf(val, sizeof(val), "%.*s",
			    (int)(nl - p - (ptrdiff_t)klen - 1), p + klen + 1);
			break;
		}
		p = *nl != '\0' ? nl + 1 : nl;
	}
	return val;
}

static void
expect_rep(const struct srv *v, const char *key, const char *want)
{
	if (strcmp(srv_get(v, key), want) != 0)
		fprintf(stderr, "report:\n%s", v->text);
	assert_string_equal(srv_get(v, key), want);
}

static long
atoi_(const char *str)
{
	return strtol(str, NULL, 10);
}

/* ---- the client --------------------------------------------------------- */

static struct stream *
cli_connect(int port)
{
	struct stream_limits lim = { 1000, 3000, 3000, 0 };
	struct sockaddr_in sin;
	struct stream *s;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	s = stream_new(fd, &lim, 0);
	assert_non_null(s);
	return s;
}

static void
cli_say(struct stream *s, const char *cmd, const char *want)
{
	const char *line;
	size_t len;
	int f;

	assert_int_equal(stream_printf(s, "%s\r\n", cmd), 0);
	assert_int_equal(stream_flush_wait(s), 0);
	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), 1);
	assert_string_equal(line, want);
}

/*
 * run_tls - implicit TLS with the server verifying as sv, the client
 * showing cert/key; the server's report is left in v
 */
static void
run_tls(struct srv *v, enum tls_verify sv, const char *cert,
    const char *key, bool expect_ok)
{
	SSL_CTX *sctx = server_ctx(sv, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx(cert, key, NULL, TLS_VERIFY_REQUIRE);
	struct stream *s;
	const char *line;
	size_t len;
	int f, r;

	srv_start(v, SRV_IMPLICIT, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v->port);
	assert_int_equal(stream_tls_connect(s, cctx, "mx.example.test",
	    STREAM_TLS_VERIFY_HOST), 0);
	r = stream_handshake_wait(s);
	if (expect_ok) {
		assert_int_equal(r, 0);
		cli_say(s, "EHLO client", "250 EHLO client");
	} else if (r == 0) {
		/*
		 * TLS 1.3: the client is done before the server has judged
		 * its certificate; the refusal arrives as an alert.
		 */
		(void)stream_puts(s, "EHLO client\r\n");
		(void)stream_flush_wait(s);
		assert_int_not_equal(stream_read_line_wait(s, &line, &len,
		    &f), 1);
	}
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(v);
}

/* ---- tests: configuration ------------------------------------------------ */

static void
test_conf_errors(void **state)
{
	struct tls_conf c;
	struct buf errs;
	SSL_CTX *ctx;

	(void)state;
	buf_init(&errs, 0);

	tls_conf_init(&c);		/* a server without a certificate */
	assert_null(tls_server_ctx(&c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "tls_cert_file: not set"));

	buf_reset(&errs);
	c = conf_of("nonexistent.pem", NULL, NULL, TLS_VERIFY_NONE);
	assert_null(tls_server_ctx(&c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "tls_cert_file "));
	assert_non_null(strstr(buf_cstr(&errs), "nonexistent.pem: "));

	buf_reset(&errs);		/* key of another certificate */
	c = conf_of("server.pem", "client.key", NULL, TLS_VERIFY_NONE);
	assert_null(tls_server_ctx(&c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "tls_key_file "));
	assert_non_null(strstr(buf_cstr(&errs), "mismatch"));

	buf_reset(&errs);		/* a certificate is not a key */
	c = conf_of("server.pem", "ca.pem", NULL, TLS_VERIFY_NONE);
	assert_null(tls_server_ctx(&c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "cannot load key"));

	buf_reset(&errs);		/* verifying clients needs a CA */
	c = conf_of("server.pem", "server.key", NULL, TLS_VERIFY_OPTIONAL);
	assert_null(tls_server_ctx(&c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "tls_ca_file: not set"));

	buf_reset(&errs);		/* never below TLS 1.2 */
	c = conf_of("server.pem", "server.key", NULL, TLS_VERIFY_NONE);
	c.min_version = TLS1_1_VERSION;
	assert_null(tls_server_ctx(&c, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "tls_protocols"));
	assert_null(tls_client_ctx(&c, &errs));

	buf_reset(&errs);		/* key inside the certificate file */
	c = conf_of("combined.pem", NULL, "ca.pem", TLS_VERIFY_REQUIRE);
	ctx = tls_server_ctx(&c, &errs);
	assert_non_null(ctx);
	assert_int_equal(buf_len(&errs), 0);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);

	/* a client may go without a certificate, not without its key */
	c = conf_of(NULL, "client.key", NULL, TLS_VERIFY_NONE);
	assert_null(tls_client_ctx(&c, &errs));
	c = conf_of(NULL, NULL, NULL, TLS_VERIFY_NONE);
	ctx = tls_client_ctx(&c, &errs);
	assert_non_null(ctx);
	SSL_CTX_free(ctx);
	buf_deinit(&errs);
}

static void
test_conf_from_cfg(void **state)
{
	struct cfg *c = cfg_new(posta_settings, SCOPE_SMTPD);
	struct tls_conf conf;
	struct buf errs;
	enum tls_verify v;
	SSL_CTX *ctx;
	int ver;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(tls_conf_from_cfg(c, &conf, &errs), 0);
	assert_int_equal(conf.min_version, TLS1_2_VERSION);
	assert_int_equal(conf.verify, TLS_VERIFY_NONE);
	assert_string_equal(conf.cert_file, "");

	/* the settings table refuses what tls would refuse */
	assert_int_equal(cfg_set(c, "tls_protocols", "TLSv1.1", "t", &errs),
	    -1);
	assert_int_equal(cfg_set(c, "tls_verify_client", "maybe", "t",
	    &errs), -1);

	buf_reset(&errs);
	assert_int_equal(cfg_set(c, "tls_protocols", "TLSv1.3", "t", &errs),
	    0);
	assert_int_equal(cfg_set(c, "tls_verify_client", "optional", "t",
	    &errs), 0);
	assert_int_equal(cfg_set(c, "tls_cert_file", path("server.pem"), "t",
	    &errs), 0);
	assert_int_equal(cfg_set(c, "tls_key_file", path("server.key"), "t",
	    &errs), 0);
	assert_int_equal(cfg_set(c, "tls_ca_file", path("ca.pem"), "t",
	    &errs), 0);
	assert_int_equal(tls_conf_from_cfg(c, &conf, &errs), 0);
	assert_int_equal(conf.min_version, TLS1_3_VERSION);
	assert_int_equal(conf.verify, TLS_VERIFY_OPTIONAL);
	assert_string_equal(conf.ca_file, path("ca.pem"));
	ctx = tls_server_ctx(&conf, &errs);
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER,
	    SSL_VERIFY_PEER);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx) &
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 0);
	SSL_CTX_free(ctx);

	assert_int_equal(tls_version_parse("TLSv1.1", &ver), -1);
	assert_int_equal(tls_version_parse("tlsv1.2", &ver), -1);
	assert_int_equal(tls_version_parse("TLSv1.2 ", &ver), -1);
	assert_int_equal(tls_verify_parse("yes", &v), -1);
	assert_int_equal(tls_verify_parse("", &v), -1);
	assert_int_equal(tls_verify_parse("require", &v), 0);
	assert_int_equal(v, TLS_VERIFY_REQUIRE);
	buf_deinit(&errs);
	cfg_free(&c);
}

/* ---- tests: sessions ---------------------------------------------------- */

static void
test_plain(void **state)
{
	struct srv v;
	struct stream *s;

	(void)state;
	srv_start(&v, SRV_PLAIN, NULL, 3000);
	s = cli_connect(v.port);
	cli_say(s, "HELO x", "250 HELO x");
	assert_false(stream_is_tls(s));
	assert_null(stream_ssl(s));
	stream_free(&s);
	srv_wait(&v);
	expect_rep(&v, "line", "HELO x");
}

static void
test_implicit(void **state)
{
	struct tls_info ti;
	struct srv v;
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx("client.pem", "client.key", NULL,
	    TLS_VERIFY_REQUIRE);
	struct stream *s;
	char fp[128];

	(void)state;
	srv_start(&v, SRV_IMPLICIT, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(tls_info_get(stream_ssl(s), &ti), -1);
	assert_int_equal(stream_tls_connect(s, cctx, "mx.example.test",
	    STREAM_TLS_VERIFY_HOST), 0);
	assert_int_equal(tls_info_get(stream_ssl(s), &ti), -1);	/* not yet */
	assert_int_equal(stream_handshake_wait(s), 0);
	assert_int_equal(stream_handshake(s), 1);
	assert_int_equal(tls_info_get(stream_ssl(s), &ti), 0);
	assert_string_equal(ti.version, "TLSv1.3");
	assert_true(ti.bits >= 128);
	assert_true(strlen(ti.cipher) > 0);
	assert_true(ti.has_peer_cert);
	assert_true(ti.is_peer_verified);
	assert_int_equal(ti.verify_result, X509_V_OK);
	assert_string_equal(ti.peer_cn, "mx.example.test");
	cli_fingerprint(path("server.pem"), fp, sizeof(fp));
	assert_string_equal(ti.peer_fingerprint, fp);
	cli_say(s, "EHLO client", "250 EHLO client");
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(&v);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "version", "TLSv1.3");
	/* verify_client none: the client's certificate was not asked for */
	expect_rep(&v, "peer", "0");
	expect_rep(&v, "verified", "0");
	expect_rep(&v, "line", "EHLO client");
}

/*
 * "STARTTLS\r\nNOOP\r\n" in one segment: the NOOP was sent in the clear
 * and must be dropped, not run after the handshake (CVE-2011-0411).
 */
static void
test_starttls_injection(void **state)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx(NULL, NULL, NULL, TLS_VERIFY_REQUIRE);
	static const char inject[] = "STARTTLS\r\nNOOP\r\n";
	struct tls_info ti;
	struct stream *s;
	struct srv v;
	const char *line;
	size_t len;
	int f;

	(void)state;
	srv_start(&v, SRV_STARTTLS, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(send(stream_fd(s), inject, sizeof(inject) - 1, 0),
	    (ssize_t)sizeof(inject) - 1);
	assert_int_equal(stream_read_line_wait(s, &line, &len, &f), 1);
	assert_string_equal(line, "220 2.0.0 Ready to start TLS");
	assert_int_equal(stream_starttls(s, cctx, false), 0);
	assert_int_equal(stream_tls_set_host(s, "localhost",
	    STREAM_TLS_VERIFY_HOST), 0);
	assert_int_equal(stream_handshake_wait(s), 0);
	assert_int_equal(tls_info_get(stream_ssl(s), &ti), 0);
	assert_true(ti.is_peer_verified);
	cli_say(s, "QUIT", "250 QUIT");
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(&v);
	expect_rep(&v, "first", "STARTTLS");
	expect_rep(&v, "discarded", "6");
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "line", "QUIT");
}

static void
test_client_cert_trusted(void **state)
{
	struct srv v;
	char fp[128];

	(void)state;
	run_tls(&v, TLS_VERIFY_OPTIONAL, "client.pem", "client.key", true);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "peer", "1");
	expect_rep(&v, "verified", "1");
	expect_rep(&v, "trusted", "1");
	expect_rep(&v, "vr", "0");
	expect_rep(&v, "cn", "client1.example.test");
	cli_fingerprint(path("client.pem"), fp, sizeof(fp));
	expect_rep(&v, "fp", fp);
}

static void
test_client_cert_selfsigned(void **state)
{
	struct srv v;
	char fp[128], num[32];

	(void)state;
	run_tls(&v, TLS_VERIFY_OPTIONAL, "selfsigned.pem", "selfsigned.key",
	    true);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "peer", "1");
	expect_rep(&v, "verified", "0");
	expect_rep(&v, "trusted", "0");
	(void)snprintf(num, sizeof(num), "%d",
	    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
	expect_rep(&v, "vr", num);
	expect_rep(&v, "cn", "rogue.example.test");
	cli_fingerprint(path("selfsigned.pem"), fp, sizeof(fp));
	expect_rep(&v, "fp", fp);
	expect_rep(&v, "line", "EHLO client");
}

static void
test_client_cert_other_ca(void **state)
{
	struct srv v;
	char num[32];

	(void)state;
	run_tls(&v, TLS_VERIFY_OPTIONAL, "other.pem", "other.key", true);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "peer", "1");
	expect_rep(&v, "verified", "0");
	/* the client sent only its own certificate */
	(void)snprintf(num, sizeof(num), "%d",
	    X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE);
	expect_rep(&v, "vr", num);
	expect_rep(&v, "cn", "other.example.test");
}

/* no certificate leaves the verify result at X509_V_OK: still no trust */
static void
test_optional_no_cert(void **state)
{
	struct srv v;

	(void)state;
	run_tls(&v, TLS_VERIFY_OPTIONAL, NULL, NULL, true);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "peer", "0");
	expect_rep(&v, "vr", "0");
	expect_rep(&v, "verified", "0");
	expect_rep(&v, "trusted", "0");
	expect_rep(&v, "cn", "");
	expect_rep(&v, "fp", "");
}

static void
test_hostile_cn(void **state)
{
	struct srv v;

	(void)state;
	run_tls(&v, TLS_VERIFY_OPTIONAL, "hostile.pem", "hostile.key", true);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "peer", "1");
	expect_rep(&v, "verified", "0");
	expect_rep(&v, "cn", "evil??X: 1???");
	expect_rep(&v, "line", "EHLO client");
}

static void
test_require_no_cert(void **state)
{
	struct srv v;

	(void)state;
	run_tls(&v, TLS_VERIFY_REQUIRE, NULL, NULL, false);
	expect_rep(&v, "hs", "fail");
	assert_non_null(strstr(srv_get(&v, "err"),
	    "peer did not return a certificate"));
}

static void
test_require_untrusted(void **state)
{
	struct srv v;

	(void)state;
	run_tls(&v, TLS_VERIFY_REQUIRE, "selfsigned.pem", "selfsigned.key",
	    false);
	expect_rep(&v, "hs", "fail");
	assert_non_null(strstr(srv_get(&v, "err"),
	    "certificate verify failed"));
}

static void
test_require_good(void **state)
{
	struct srv v;

	(void)state;
	run_tls(&v, TLS_VERIFY_REQUIRE, "client.pem", "client.key", true);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "verified", "1");
	expect_rep(&v, "cn", "client1.example.test");
}

/* run_version - a client speaking min..max against a floor; 0 or -1 */
static int
run_version(struct srv *v, int floor, int min, int max)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, floor);
	SSL_CTX *cctx = raw_client_ctx(min, max);
	struct stream *s;
	int r;

	srv_start(v, SRV_IMPLICIT, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v->port);
	assert_int_equal(stream_tls_connect(s, cctx, NULL, 0), 0);
	r = stream_handshake_wait(s);
	if (r == 0)
		cli_say(s, "EHLO old", "250 EHLO old");
	else
		assert_int_equal(errno, EPROTO);
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(v);
	return r;
}

static void
test_tls11_refused(void **state)
{
	struct srv v;

	(void)state;
	assert_int_equal(run_version(&v, TLS1_2_VERSION, TLS1_VERSION,
	    TLS1_1_VERSION), -1);
	expect_rep(&v, "hs", "fail");
	assert_non_null(strstr(srv_get(&v, "err"), "unsupported protocol"));

	/* the same client allowed TLS 1.2 gets in: the version was the cause */
	assert_int_equal(run_version(&v, TLS1_2_VERSION, TLS1_VERSION,
	    TLS1_2_VERSION), 0);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "version", "TLSv1.2");
	expect_rep(&v, "line", "EHLO old");
}

static void
test_floor_tls13(void **state)
{
	struct srv v;

	(void)state;
	assert_int_equal(run_version(&v, TLS1_3_VERSION, TLS1_2_VERSION,
	    TLS1_2_VERSION), -1);
	expect_rep(&v, "hs", "fail");
	assert_non_null(strstr(srv_get(&v, "err"), "unsupported protocol"));
	assert_int_equal(run_version(&v, TLS1_3_VERSION, TLS1_2_VERSION,
	    TLS1_3_VERSION), 0);
	expect_rep(&v, "version", "TLSv1.3");
}

/* run_host - connect naming host; returns the client's handshake result */
static int
run_host(const char *host, int flags, enum tls_verify cv, const char *ca,
    struct tls_info *ti)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx(NULL, NULL, ca, cv);
	struct stream *s;
	struct srv v;
	int r;

	srv_start(&v, SRV_IMPLICIT, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(stream_tls_connect(s, cctx, host, flags), 0);
	r = stream_handshake_wait(s);
	if (r == 0) {
		assert_int_equal(tls_info_get(stream_ssl(s), ti), 0);
		cli_say(s, "EHLO h", "250 EHLO h");
	} else {
		assert_int_equal(errno, EPROTO);
		assert_non_null(strstr(stream_error(s), "TLS handshake"));
	}
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(&v);
	return r;
}

static void
test_client_checks_server(void **state)
{
	struct tls_info ti;

	(void)state;
	/* wrong name: refused under require, untrusted under optional */
	assert_int_equal(run_host("wrong.example.test",
	    STREAM_TLS_VERIFY_HOST, TLS_VERIFY_REQUIRE, NULL, &ti), -1);
	assert_int_equal(run_host("wrong.example.test",
	    STREAM_TLS_VERIFY_HOST, TLS_VERIFY_OPTIONAL, NULL, &ti), 0);
	assert_true(ti.has_peer_cert);
	assert_false(ti.is_peer_verified);
	assert_int_equal(ti.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
	/* not asked to check the name: the chain alone decides */
	assert_int_equal(run_host("wrong.example.test", 0,
	    TLS_VERIFY_REQUIRE, NULL, &ti), 0);
	assert_true(ti.is_peer_verified);
	/* an address is checked against the IP SAN (and not sent as SNI) */
	assert_int_equal(run_host("127.0.0.1", STREAM_TLS_VERIFY_HOST,
	    TLS_VERIFY_REQUIRE, NULL, &ti), 0);
	assert_true(ti.is_peer_verified);
	assert_int_equal(run_host("127.0.0.2", STREAM_TLS_VERIFY_HOST,
	    TLS_VERIFY_REQUIRE, NULL, &ti), -1);
	/* a CA that did not sign the server */
	assert_int_equal(run_host("mx.example.test", STREAM_TLS_VERIFY_HOST,
	    TLS_VERIFY_REQUIRE, "other-ca.pem", &ti), -1);
	assert_int_equal(run_host("mx.example.test", STREAM_TLS_VERIFY_HOST,
	    TLS_VERIFY_OPTIONAL, "other-ca.pem", &ti), 0);
	assert_false(ti.is_peer_verified);
	assert_string_equal(ti.peer_cn, "mx.example.test");
}

/* a client that connects and says nothing: the handshake deadline fires */
static void
test_handshake_timeout(void **state)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	struct stream *s;
	struct srv v;
	char num[32];
	long long ms;

	(void)state;
	srv_start(&v, SRV_IMPLICIT, sctx, 200);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	srv_wait(&v);
	stream_free(&s);
	expect_rep(&v, "hs", "fail");
	(void)snprintf(num, sizeof(num), "%d", ETIMEDOUT);
	expect_rep(&v, "errno", num);
	expect_rep(&v, "err", "TLS handshake timeout");
	ms = strtoll(srv_get(&v, "ms"), NULL, 10);
	assert_true(ms >= 195 && ms < 1500);
}

/* plaintext where a ClientHello should be */
static void
test_handshake_garbage(void **state)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	struct stream *s;
	struct srv v;

	(void)state;
	srv_start(&v, SRV_IMPLICIT, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(stream_puts(s, "EHLO plain\r\n"), 0);
	assert_int_equal(stream_flush_wait(s), 0);
	srv_wait(&v);
	stream_free(&s);
	expect_rep(&v, "hs", "fail");
	assert_non_null(strstr(srv_get(&v, "err"), "TLS handshake"));
}

static void
test_ev_server(void **state)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_OPTIONAL, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx("client.pem", "client.key", NULL,
	    TLS_VERIFY_REQUIRE);
	struct stream *s;
	struct srv v;

	(void)state;
	srv_start(&v, SRV_EV, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(stream_tls_connect(s, cctx, "localhost",
	    STREAM_TLS_VERIFY_HOST), 0);
	assert_int_equal(stream_handshake_wait(s), 0);
	cli_say(s, "EHLO loop", "250 EHLO loop");
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(&v);
	expect_rep(&v, "hs", "ok");
	expect_rep(&v, "verified", "1");
	expect_rep(&v, "line", "EHLO loop");
	expect_rep(&v, "ev", "done");
}

/*
 * 2 MB from the server while the client is not reading yet: the server's
 * TLS writes block part-way and are retried; every line arrives in order.
 */
static void
test_tls_bulk(void **state)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx(NULL, NULL, NULL, TLS_VERIFY_REQUIRE);
	struct stream *s;
	struct srv v;
	const char *line;
	char want[16];
	size_t len;
	int i, f;

	(void)state;
	srv_start(&v, SRV_BULK, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(stream_tls_connect(s, cctx, "localhost", 0), 0);
	assert_int_equal(stream_handshake_wait(s), 0);
	usleep(200000);
	for (i = 0; i < BULK_LINES; i++) {
		assert_int_equal(stream_read_line_wait(s, &line, &len, &f), 1);
		assert_int_equal(len, 97);
		assert_int_equal(f, STREAM_LINE_CRLF);
		(void)snprintf(want, sizeof(want), "%06d ", i);
		assert_memory_equal(line, want, 7);
		assert_int_equal(line[96], 'x');
	}
	cli_say(s, "DONE", "250 DONE");
	stream_free(&s);
	SSL_CTX_free(cctx);
	srv_wait(&v);
	expect_rep(&v, "line", "DONE");
	assert_int_not_equal(atoi_(srv_get(&v, "blocked")), 0);
}

/* writing over TLS to a peer that hung up: EPIPE, and no SIGPIPE */
static void
test_tls_peer_gone(void **state)
{
	SSL_CTX *sctx = server_ctx(TLS_VERIFY_NONE, TLS1_2_VERSION);
	SSL_CTX *cctx = client_ctx(NULL, NULL, NULL, TLS_VERIFY_REQUIRE);
	static char junk[64 * 1024];
	struct stream *s;
	struct srv v;
	int i, r = 0;

	(void)state;
	signal(SIGPIPE, SIG_DFL);	/* a SIGPIPE would end this test */
	srv_start(&v, SRV_CLOSE, sctx, 3000);
	SSL_CTX_free(sctx);
	s = cli_connect(v.port);
	assert_int_equal(stream_tls_connect(s, cctx, "localhost", 0), 0);
	assert_int_equal(stream_handshake_wait(s), 0);
	srv_wait(&v);
	expect_rep(&v, "hs", "ok");
	for (i = 0; i < 20 && r == 0; i++) {
		assert_int_equal(stream_write(s, junk, sizeof(junk)), 0);
		r = stream_flush_wait(s);
	}
	assert_int_equal(r, -1);
	assert_true(errno == EPIPE || errno == ECONNRESET);
	assert_int_equal(stream_flush(s), -1);	/* and stays failed */
	stream_free(&s);
	SSL_CTX_free(cctx);
	signal(SIGPIPE, SIG_IGN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_conf_from_cfg),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_floor_tls13),
		cmocka_unit_test(test_require_no_cert),
		cmocka_unit_test(test_require_untrusted),
		cmocka_unit_test(test_hostile_cn),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_handshake_garbage),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_implicit),
		cmocka_unit_test(test_client_cert_trusted),
		cmocka_unit_test(test_client_cert_selfsigned),
		cmocka_unit_test(test_client_cert_other_ca),
		cmocka_unit_test(test_optional_no_cert),
		cmocka_unit_test(test_require_good),
		cmocka_unit_test(test_client_checks_server),
		cmocka_unit_test(test_ev_server),
		cmocka_unit_test(test_tls_bulk),
		cmocka_unit_test(test_tls_peer_gone),
	};

	return cmocka_run_group_tests_name("tls", tests, group_setup,
	    group_teardown);
}
