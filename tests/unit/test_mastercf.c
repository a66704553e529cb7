/*
 * test_mastercf - the master.conf parser: hostile input first (NUL,
 * control characters, long lines, too many fields and services,
 * overflowing numbers), then each field's errors with file:line, then
 * good tables, -o checks against the settings table, and the helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mastercf.h"

/* parse text; return the result, errors in errs, table in *cf_r */
static int
parse(const char *text, size_t len, struct mastercf **cf_r, struct buf *errs)
{
	buf_reset(errs);
	return mastercf_parse(text, len, "m.conf", cf_r, errs);
}

/* expect text to fail with an error containing want */
static void
expect_error(const char *text, const char *want)
{
	struct mastercf *cf = (struct mastercf *)1;
	struct buf errs;

	buf_init(&errs, 0);
	if (parse(text, strlen(text), &cf, &errs) != -1)
		fail_msg("accepted: %s", text);
	assert_null(cf);
	if (strstr(buf_cstr(&errs), want) == NULL)
		fail_msg("for %s\nwanted \"%s\" in:\n%s", text, want,
		    buf_cstr(&errs));
	buf_deinit(&errs);
}

static void
expect_ok(const char *text)
{
	struct mastercf *cf = NULL;
	struct buf errs;

	buf_init(&errs, 0);
	if (parse(text, strlen(text), &cf, &errs) != 0)
		fail_msg("refused: %s\n%s", text, buf_cstr(&errs));
	assert_non_null(cf);
	mastercf_free(&cf);
	assert_null(cf);
	buf_deinit(&errs);
}

static void
test_nul_and_control(void **state)
{
	static const char t1[] = "smtp inet 25 1 smtpd\0 -x\n";
	struct mastercf *cf;
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(parse(t1, sizeof(t1) - 1, &cf, &errs), -1);
	assert_null(cf);
	assert_non_null(strstr(buf_cstr(&errs), "m.conf:1: NUL character"));
	/* a NUL in a continuation line drops the whole service */
	static const char t2[] = "smtp inet 25 1 smtpd\n  -o\0x\nqmgr none - 1 q\n";
	assert_int_equal(parse(t2, sizeof(t2) - 1, &cf, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "m.conf:2: NUL character"));
	assert_null(strstr(buf_cstr(&errs), "m.conf:3"));
	expect_error("smtp inet 25 1 smt\033pd\n", "m.conf:1: control");
	expect_error("smtp inet 25 1 smtpd\x7f\n", "m.conf:1: control");
	buf_deinit(&errs);
}

static void
test_long_line(void **state)
{
	size_t n = MASTERCF_LINE_MAX + 100;
	char *text = malloc(n + 64);

	(void)state;
	memcpy(text, "smtp inet 25 1 smtpd ", 21);
	memset(text + 21, 'x', n - 21);
	memcpy(text + n, "\nok none - 1 q\n", 16);
	expect_error(text, "m.conf:1: line too long");
	/* built from many continuation lines: reported at the first */
	{
		struct buf b;

		buf_init(&b, 0);
		(void)buf_puts(&b, "\n\nsmtp inet 25 1 smtpd\n");
		while (b.len < MASTERCF_LINE_MAX + 10)
			(void)buf_puts(&b, "  -o debug=yes\n");
		expect_error(buf_cstr(&b), "m.conf:3: line too long");
		buf_deinit(&b);
	}
	free(text);
}

static void
test_too_many(void **state)
{
	struct buf b;
	int i;

	(void)state;
	buf_init(&b, 0);
	(void)buf_puts(&b, "s inet 25 1 smtpd");
	for (i = 0; i < MASTERCF_ARGS_MAX + 1; i++)
		(void)buf_puts(&b, " a");
	(void)buf_puts(&b, "\n");
	expect_error(buf_cstr(&b), "m.conf:1: too many arguments");

	/* exactly the limit is fine */
	buf_reset(&b);
	(void)buf_puts(&b, "s inet 25 1 smtpd");
	for (i = 0; i < MASTERCF_ARGS_MAX; i++)
		(void)buf_puts(&b, " a");
	(void)buf_puts(&b, "\n");
	expect_ok(buf_cstr(&b));

	buf_reset(&b);
	for (i = 0; i < MASTERCF_SERVICES_MAX + 1; i++)
		(void)buf_printf(&b, "s%d none - 1 x\n", i);
	expect_error(buf_cstr(&b), "m.conf:1001: too many services");
	buf_deinit(&b);
}

static void
test_numbers(void **state)
{
	(void)state;
	expect_error("s inet 99999999999999999999999 1 x\n", "bad port");
	expect_error("s inet 127.0.0.1:0 1 x\n", "m.conf:1: inet listen "
	    "\"127.0.0.1:0\": bad port");
	expect_error("s inet 127.0.0.1:65536 1 x\n", "bad port");
	expect_error("s inet 127.0.0.1:-1 1 x\n", "bad port");
	expect_error("s inet 127.0.0.1:+25 1 x\n", "bad port");
	expect_error("s inet 127.0.0.1: 1 x\n", "bad port");
	expect_error("s inet smtp 1 x\n", "bad port");
	expect_error("s inet 25 0 x\n", "m.conf:1: bad procs \"0\"");
	expect_error("s inet 25 1001 x\n", "bad procs");
	expect_error("s inet 25 18446744073709551617 x\n", "bad procs");
	expect_error("s inet 25 -1 x\n", "bad procs");
	expect_error("s inet 25 1x x\n", "bad procs");
	expect_ok("s inet 65535 1000 x\n");
}

static void
test_field_errors(void **state)
{
	(void)state;
	expect_error("smtp inet 25 1\n", "m.conf:1: missing fields");
	expect_error("smtp\n", "missing fields");
	expect_error("smtp tcp 25 1 smtpd\n",
	    "m.conf:1: unknown service type \"tcp\"");
	expect_error("Smtp inet 25 1 smtpd\n", "bad service name \"Smtp\"");
	expect_error("sm.tp inet 25 1 smtpd\n", "bad service name");
	expect_error("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    " inet 25 1 smtpd\n", "bad service name");
	expect_error("s inet ::1:25 1 x\n", "[address]:port");
	expect_error("s inet [::1]25 1 x\n", "[ipv6]:port");
	expect_error("s inet [zz::q]:25 1 x\n", "bad IPv6 address");
	expect_error("s inet []:25 1 x\n", "bad IPv6 address");
	expect_error("s inet bad/host:25 1 x\n", "bad host name");
	expect_error("s inet :25 1 x\n", "bad host name");
	expect_error("s unix - 1 x\n", "missing socket path");
	expect_error("s unix private/../x 1 x\n", "\"..\"");
	expect_error("s unix ../x 1 x\n", "\"..\"");
	expect_error("s unix private/x/.. 1 x\n", "\"..\"");
	expect_error("s unix private/ 1 x\n", "ends in");
	expect_error("s none 127.0.0.1:25 1 x\n", "type none takes no");
	expect_error("s none - 1 bin/x\n", "bad command");
	expect_error("s none - 1 /usr/lib/\n", "bad command");
	expect_error("  -o debug=yes\n", "m.conf:1: continuation line");
	expect_error("s none - 1 x\ns inet 25 1 y\n",
	    "m.conf:2: duplicate service \"s\" (first defined at m.conf:1)");
}

static void
test_overrides(void **state)
{
	(void)state;
	expect_error("s inet 25 1 smtpd -o nosuch_setting=1\n",
	    "m.conf:1: unknown setting \"nosuch_setting\"");
	expect_error("s inet 25 1 smtpd -o debug=maybe\n", "m.conf:1: ");
	expect_error("s inet 25 1 smtpd -o master_throttle_count=99999999999\n",
	    "m.conf:1: ");
	expect_error("s inet 25 1 smtpd -o =yes\n", "expected name=value");
	expect_error("s inet 25 1 smtpd -o debug\n", "expected name=value");
	expect_error("s inet 25 1 smtpd -o\n", "m.conf:1: -o without");
	expect_error("s inet 25 1 smtpd\n\n  # c\n   -o debug=no -o nope=1\n",
	    "m.conf:1: unknown setting \"nope\"");
	expect_ok("s inet 25 1 /usr/lib/posta/smtpd -o debug=yes "
	    "-o tls_cert_file=/x.pem\n");
	expect_ok("s inet 25 1 smtpd -o queue_directory=/tmp/q\n");
}

static void
test_all_errors_listed(void **state)
{
	const char *text =
	    "a inet 0 1 x\n"
	    "b inet 25 1 y\n"
	    "c none - 0 z\n"
	    "d bogus - 1 z\n";
	struct mastercf *cf;
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(parse(text, strlen(text), &cf, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "m.conf:1: "));
	assert_null(strstr(buf_cstr(&errs), "m.conf:2: "));
	assert_non_null(strstr(buf_cstr(&errs), "m.conf:3: "));
	assert_non_null(strstr(buf_cstr(&errs), "m.conf:4: "));
	buf_deinit(&errs);
}

static void
test_good_table(void **state)
{
	const char *text =
	    "# service type listen procs command args\r\n"
	    "smtp       inet  127.0.0.1:2525  2  smtpd\r\n"
	    "\n"
	    "   # an indented comment\n"
	    "submission inet  [::1]:2587      -  smtpd -v\n"
	    "\t-o debug=yes\n"
	    "  # comment inside\n"
	    "    -o tls_cert_file=/etc/x.pem  extra\n"
	    "qmgr       unix  private/qmgr    1  qmgr\n"
	    "pickup\tnone\t-\t1\t/usr/lib/posta/pickup\n"
	    "any        inet  *:25            1  smtpd\n"
	    "bare       inet  26              1  smtpd";
	const struct mastercf_service *s;
	struct mastercf *cf;
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(parse(text, strlen(text), &cf, &errs), 0);
	assert_string_equal(buf_cstr(&errs), "");
	assert_int_equal(cf->n, 6);

	s = &cf->svc[0];
	assert_string_equal(s->name, "smtp");
	assert_int_equal(s->type, MASTERCF_INET);
	assert_string_equal(s->listen, "127.0.0.1:2525");
	assert_int_equal(s->procs, 2);
	assert_string_equal(s->command, "smtpd");
	assert_int_equal(s->nargs, 0);
	assert_int_equal(s->noverrides, 0);
	assert_string_equal(s->origin, "m.conf:2");

	s = mastercf_lookup(cf, "submission");
	assert_ptr_equal(s, &cf->svc[1]);
	assert_int_equal(s->procs, 1);
	assert_string_equal(s->origin, "m.conf:5");
	assert_int_equal(s->nargs, 6);
	assert_string_equal(s->args[0], "-v");
	assert_string_equal(s->args[1], "-o");
	assert_string_equal(s->args[2], "debug=yes");
	assert_string_equal(s->args[4], "tls_cert_file=/etc/x.pem");
	assert_string_equal(s->args[5], "extra");
	assert_int_equal(s->noverrides, 2);
	assert_string_equal(s->overrides[0], "debug=yes");
	assert_string_equal(s->overrides[1], "tls_cert_file=/etc/x.pem");

	s = &cf->svc[2];
	assert_int_equal(s->type, MASTERCF_UNIX);
	assert_string_equal(s->listen, "private/qmgr");
	s = &cf->svc[3];
	assert_int_equal(s->type, MASTERCF_NONE);
	assert_string_equal(s->command, "/usr/lib/posta/pickup");
	assert_string_equal(cf->svc[5].listen, "26");
	assert_string_equal(cf->svc[5].origin, "m.conf:12");
	assert_null(mastercf_lookup(cf, "nosuch"));
	assert_string_equal(mastercf_type_name(MASTERCF_UNIX), "unix");

	/* equality for reload: same lines, different origin */
	{
		struct mastercf *cf2;
		const char *t2 = "\n\nsmtp inet 127.0.0.1:2525 2 smtpd\n"
		    "qmgr unix private/qmgr 2 qmgr\n";

		assert_int_equal(parse(t2, strlen(t2), &cf2, &errs), 0);
		assert_true(mastercf_service_equal(&cf->svc[0],
		    &cf2->svc[0]));
		assert_false(mastercf_service_equal(&cf->svc[2],
		    &cf2->svc[1]));
		assert_false(mastercf_service_equal(&cf->svc[0],
		    &cf->svc[4]));
		mastercf_free(&cf2);
	}
	mastercf_free(&cf);
	assert_null(cf);
	mastercf_free(&cf);	/* NULL is fine */
	buf_deinit(&errs);
}

static void
test_empty(void **state)
{
	struct mastercf *cf;
	struct buf errs;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(parse("", 0, &cf, &errs), 0);
	assert_int_equal(cf->n, 0);
	mastercf_free(&cf);
	assert_int_equal(parse("# only\n\n \t\n", 11, &cf, &errs), 0);
	assert_int_equal(cf->n, 0);
	mastercf_free(&cf);
	buf_deinit(&errs);
}

static void
test_inet_split(void **state)
{
	char host[64];
	unsigned port = 7;

	(void)state;
	assert_int_equal(mastercf_inet_split("127.0.0.1:25", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 25);
	assert_int_equal(mastercf_inet_split("[::1]:2525", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 2525);
	assert_int_equal(mastercf_inet_split("*:143", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(mastercf_inet_split("993", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(port, 993);
	(void)snprintf(host, sizeof(host), "keep");
	assert_int_equal(mastercf_inet_split("mx.example.test:0", host,
	    sizeof(host), &port), -1);
	assert_int_equal(mastercf_inet_split("mx.example.test:25", host, 4,
	    &port), -1);
	assert_string_equal(host, "keep");
	assert_int_equal(port, 993);
	assert_int_equal(mastercf_unix_mode("public/pickup"), 0666);
	assert_int_equal(mastercf_unix_mode("private/qmgr"), 0600);
	assert_int_equal(mastercf_unix_mode("/run/x"), 0600);
}

static void
test_load(void **state)
{
	char path[] = "/tmp/test_mastercf.XXXXXX";
	struct mastercf *cf = (struct mastercf *)1;
	struct buf errs;
	const char *t = "x none - 1 y\nz bad - 1 y\n";
	int fd;

	(void)state;
	buf_init(&errs, 0);
	assert_int_equal(mastercf_load("/nonexistent/master.conf", &cf,
	    &errs), -1);
	assert_null(cf);
	assert_non_null(strstr(buf_cstr(&errs),
	    "/nonexistent/master.conf: cannot open"));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	buf_reset(&errs);
	assert_int_equal(mastercf_load(path, &cf, &errs), -1);
	{
		char want[128];

		snprintf(want, sizeof(want), "%s:2: unknown service type",
		    path);
		assert_non_null(strstr(buf_cstr(&errs), want));
	}
	/* too large */
	fd = open(path, O_WRONLY | O_TRUNC);
	{
		static char big[64 * 1024];
		int i;

		memset(big, '#', sizeof(big));
		for (i = 0; i < 17; i++)
			assert_int_equal(write(fd, big, sizeof(big)),
			    (ssize_t)sizeof(big));
	}
	close(fd);
	buf_reset(&errs);
	assert_int_equal(mastercf_load(path, &cf, &errs), -1);
	assert_non_null(strstr(buf_cstr(&errs), "file too large"));
	unlink(path);
	buf_deinit(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nul_and_control),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_field_errors),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_all_errors_listed),
		cmocka_unit_test(test_good_table),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_inet_split),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
