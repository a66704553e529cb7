/*
 * test_smtp_cmd - the SMTP command parser: hostile input first, then
 * each verb, paths (RFC 5321 4.1.2) and ESMTP parameters
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp_cmd.h"

struct pcase {
	const char *line;
	int	code;		/* 0 = must parse */
	const char *dsn;
};

static int
parse(const char *line, struct smtp_cmd *cmd, struct reply *r)
{
	return smtp_cmd_parse(line, strlen(line), NULL, cmd, r);
}

static void
run_cases(const struct pcase *c, size_t n)
{
	struct smtp_cmd cmd;
	struct reply r;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		rc = parse(c[i].line, &cmd, &r);
		if (c[i].code == 0 && rc != 0)
			fail_msg("\"%s\": refused with %d %s %s", c[i].line,
			    r.code, r.dsn, r.text);
		if (c[i].code != 0 && (rc != -1 || r.code != c[i].code ||
		    strcmp(r.dsn, c[i].dsn) != 0))
			fail_msg("\"%s\": want %d %s, got rc %d %d %s",
			    c[i].line, c[i].code, c[i].dsn, rc, r.code, r.dsn);
	}
}

static void
test_hostile(void **state)
{
	char line[4096];
	struct smtp_cmd cmd;
	struct reply r;

	(void)state;
	/* NUL inside the line */
	assert_int_equal(smtp_cmd_parse("NOOP\0x", 6, NULL, &cmd, &r), -1);
	assert_int_equal(r.code, 500);
	/* bare CR */
	assert_int_equal(parse("NOOP\rRSET", &cmd, &r), -1);
	assert_int_equal(r.code, 500);
	/* longer than the line limit */
	memset(line, 'A', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "HELO ", 5);
	assert_int_equal(parse(line, &cmd, &r), -1);
	assert_int_equal(r.code, 500);
	assert_string_equal(r.dsn, "5.5.2");
	/* a path of 300 octets */
	snprintf(line, sizeof(line), "MAIL FROM:<%0300d@x.test>", 0);
	assert_int_equal(parse(line, &cmd, &r), -1);
	assert_int_equal(r.code, 501);
	/* local part of 65 octets */
	snprintf(line, sizeof(line), "RCPT TO:<%065d@x.test>", 0);
	assert_int_equal(parse(line, &cmd, &r), -1);
	assert_string_equal(r.dsn, "5.1.3");
	snprintf(line, sizeof(line), "RCPT TO:<%064d@x.test>", 0);
	assert_int_equal(parse(line, &cmd, &r), 0);
	/* eleven parameters */
	assert_int_equal(parse("MAIL FROM:<a@b.test> A=1 B=1 C=1 D=1 E=1 "
	    "F=1 G=1 H=1 I=1 J=1 K=1", &cmd, &r), -1);
	assert_string_equal(r.text, "Error: too many parameters");
	/* SIZE that overflows */
	assert_int_equal(parse("MAIL FROM:<a@b.test> SIZE="
	    "99999999999999999999999", &cmd, &r), -1);
	assert_int_equal(r.code, 501);
	/* bad UTF-8 (overlong '/') */
	assert_int_equal(parse("RCPT TO:<\xc0\xaf@x.test>", &cmd, &r), -1);
	assert_string_equal(r.dsn, "5.6.7");
}

static void
test_verbs(void **state)
{
	static const struct pcase cases[] = {
		{ "EHLO client.example", 0, NULL },
		{ "ehlo [192.0.2.1]", 0, NULL },
		{ "HELO", 501, "5.5.4" },
		{ "EHLO ", 501, "5.5.4" },
		{ "DATA", 0, NULL },
		{ "DATA now", 501, "5.5.4" },
		{ "RSET", 0, NULL },
		{ "QUIT", 0, NULL },
		{ "QUIT x", 501, "5.5.4" },
		{ "NOOP", 0, NULL },
		{ "NOOP anything at all", 0, NULL },
		{ "STARTTLS", 0, NULL },
		{ "STARTTLS x", 501, "5.5.4" },
		{ "VRFY", 501, "5.5.4" },
		{ "VRFY demo", 0, NULL },
		{ "HELP", 0, NULL },
		{ "AUTH", 501, "5.5.4" },
		{ "AUTH PLAIN AGRlbW8AZGVtbw==", 0, NULL },
		{ "BDAT 100", 0, NULL },
		{ "BDAT 0 LAST", 0, NULL },
		{ "BDAT", 501, "5.5.4" },
		{ "BDAT x", 501, "5.5.4" },
		{ "BDAT 10 FIRST", 501, "5.5.4" },
		{ "BDAT 99999999999999999999", 501, "5.5.4" },
		{ "FOO", 500, "5.5.2" },
		{ "", 500, "5.5.2" },
		{ "MAILFROM:<a@b.test>", 500, "5.5.2" },
		{ "GET / HTTP/1.0", 500, "5.5.2" },
	};
	struct smtp_cmd cmd;
	struct reply r;

	(void)state;
	run_cases(cases, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(parse("bdat 42 last", &cmd, &r), 0);
	assert_int_equal(cmd.verb, SMTP_BDAT);
	assert_int_equal(cmd.chunk_size, 42);
	assert_true(cmd.last);
	assert_int_equal(parse("EhLo mx.example.org ", &cmd, &r), 0);
	assert_int_equal(cmd.verb, SMTP_EHLO);
	assert_string_equal(cmd.name, "EHLO");
	assert_string_equal(cmd.arg, "mx.example.org");
	assert_string_equal(smtp_verb_name(SMTP_STARTTLS), "STARTTLS");
}

static void
test_paths(void **state)
{
	static const struct pcase cases[] = {
		{ "MAIL FROM:<>", 0, NULL },
		{ "MAIL FROM:<user@example.test>", 0, NULL },
		{ "MAIL FROM: <user@example.test>", 0, NULL },
		{ "MAIL FROM:user@example.test", 0, NULL },
		{ "MAIL FROM:<first.last+tag@sub.example.test>", 0, NULL },
		{ "MAIL FROM:<\"quoted > here\"@example.test>", 0, NULL },
		{ "MAIL FROM:<@relay.test,@r2.test:user@example.test>", 0,
		    NULL },
		{ "MAIL FROM:<user@[192.0.2.1]>", 0, NULL },
		{ "MAIL FROM:<user@[IPv6:2001:db8::1]>", 0, NULL },
		{ "RCPT TO:<Postmaster>", 0, NULL },
		{ "RCPT TO:<postmaster>", 0, NULL },
		{ "RCPT TO:<d\xc3\xa9mo@example.test>", 0, NULL },
		{ "MAIL FROM:<user>", 501, "5.1.3" },
		{ "MAIL FROM:<user@>", 501, "5.1.3" },
		{ "MAIL FROM:<@example.test>", 501, "5.1.3" },
		{ "MAIL FROM:<a..b@example.test>", 501, "5.1.3" },
		{ "MAIL FROM:<.a@example.test>", 501, "5.1.3" },
		{ "MAIL FROM:<a@-x.test>", 501, "5.1.3" },
		{ "MAIL FROM:<a@x-.test>", 501, "5.1.3" },
		{ "MAIL FROM:<a@x..test>", 501, "5.1.3" },
		{ "MAIL FROM:<a@[300.1.1.1]>", 501, "5.1.3" },
		{ "MAIL FROM:<a@[IPv6:zz::1]>", 501, "5.1.3" },
		{ "MAIL FROM:<a b@x.test>", 501, "5.1.3" },
		{ "MAIL FROM:<a@x.test", 501, "5.1.3" },
		{ "MAIL FROM:<\"open@x.test>", 501, "5.1.3" },
		{ "MAIL FROM:<a@x.test>>", 501, "5.5.4" },
		{ "MAIL TO:<a@x.test>", 501, "5.5.4" },
		{ "MAIL", 501, "5.5.4" },
		{ "RCPT TO:<>", 501, "5.1.3" },
		{ "RCPT FROM:<a@x.test>", 501, "5.5.4" },
		{ "RCPT TO:<@x.test:>", 501, "5.1.3" },
	};
	struct smtp_cmd cmd;
	struct reply r;
	struct smtp_limits strict = smtp_limits_default;

	(void)state;
	run_cases(cases, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(parse("MAIL FROM:<@a.test:u@example.test>", &cmd,
	    &r), 0);
	assert_string_equal(cmd.addr, "u@example.test");
	assert_int_equal(parse("MAIL FROM:<>", &cmd, &r), 0);
	assert_string_equal(cmd.addr, "");
	assert_int_equal(parse("RCPT TO:<d\xc3\xa9mo@example.test>", &cmd, &r),
	    0);
	assert_true(cmd.addr_utf8);
	strict.strict = true;
	assert_int_equal(smtp_cmd_parse("MAIL FROM: <a@x.test>", 21, &strict,
	    &cmd, &r), -1);
	assert_int_equal(smtp_cmd_parse("MAIL FROM:a@x.test", 18, &strict,
	    &cmd, &r), -1);
	assert_int_equal(smtp_cmd_parse("MAIL FROM:<a@x.test>", 20, &strict,
	    &cmd, &r), 0);
}

static void
test_params(void **state)
{
	static const struct pcase cases[] = {
		{ "MAIL FROM:<a@x.test> SIZE=1000 BODY=8BITMIME", 0, NULL },
		{ "MAIL FROM:<a@x.test> SMTPUTF8", 0, NULL },
		{ "MAIL FROM:<a@x.test> RET=HDRS ENVID=abc+2Bdef", 0, NULL },
		{ "MAIL FROM:<a@x.test> AUTH=<>", 0, NULL },
		{ "MAIL FROM:<a@x.test> AUTH=demo+40example.test", 0, NULL },
		{ "MAIL FROM:<a@x.test>  SIZE=1", 0, NULL },
		{ "MAIL FROM:<a@x.test> SIZE", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> SIZE=1 SIZE=2", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> SIZE=-1", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> BODY=BINARYMIME", 504, "5.5.4" },
		{ "MAIL FROM:<a@x.test> SMTPUTF8=yes", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> RET=ALL", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> ENVID=a+zz", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> XFOO=1", 555, "5.5.4" },
		{ "MAIL FROM:<a@x.test> NOTIFY=NEVER", 555, "5.5.4" },
		{ "MAIL FROM:<a@x.test> =1", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> -A=1", 501, "5.5.4" },
		{ "MAIL FROM:<a@x.test> SIZE=", 501, "5.5.4" },
		{ "RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE,DELAY", 0, NULL },
		{ "RCPT TO:<a@x.test> NOTIFY=NEVER", 0, NULL },
		{ "RCPT TO:<a@x.test> ORCPT=rfc822;a+40x.test", 0, NULL },
		{ "RCPT TO:<a@x.test> NOTIFY=NEVER,DELAY", 501, "5.5.4" },
		{ "RCPT TO:<a@x.test> NOTIFY=SOMETIMES", 501, "5.5.4" },
		{ "RCPT TO:<a@x.test> NOTIFY=SUCCESS,", 501, "5.5.4" },
		{ "RCPT TO:<a@x.test> ORCPT=a@x.test", 501, "5.5.4" },
		{ "RCPT TO:<a@x.test> ORCPT=rfc822;", 501, "5.5.4" },
		{ "RCPT TO:<a@x.test> SIZE=10", 555, "5.5.4" },
	};
	struct smtp_cmd cmd;
	struct reply r;
	char out[64];

	(void)state;
	run_cases(cases, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(parse("MAIL FROM:<a@x.test> size=12345 body=7bit "
	    "smtputf8 ret=full envid=QQ", &cmd, &r), 0);
	assert_true(cmd.has_size);
	assert_int_equal(cmd.size, 12345);
	assert_int_equal(cmd.body, SMTP_BODY_7BIT);
	assert_true(cmd.smtputf8);
	assert_int_equal(cmd.ret, SMTP_RET_FULL);
	assert_string_equal(cmd.envid, "QQ");
	assert_int_equal(parse("RCPT TO:<a@x.test> NOTIFY=FAILURE,DELAY",
	    &cmd, &r), 0);
	assert_int_equal(cmd.notify, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	assert_int_equal(smtp_xtext_decode("a+2Bb+3Dc", out, sizeof(out)), 0);
	assert_string_equal(out, "a+b=c");
	assert_int_equal(smtp_xtext_decode("a+2", out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("abcdef", out, 4), -1);
}

static void
test_utf8(void **state)
{
	(void)state;
	assert_true(smtp_utf8_valid("plain", 5));
	assert_true(smtp_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	    9));
	assert_false(smtp_utf8_valid("\xc3", 1));
	assert_false(smtp_utf8_valid("\xe2\x82", 2));
	assert_false(smtp_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(smtp_utf8_valid("\xf4\x90\x80\x80", 4));	/* > 10FFFF */
	assert_false(smtp_utf8_valid("\xe0\x80\xaf", 3));	/* overlong */
	assert_false(smtp_utf8_valid("\xff", 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests_name("smtp_cmd", tests, NULL, NULL);
}
