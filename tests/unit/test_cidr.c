/*
 * test_cidr - network blocks: malformed ones first, then matching of
 * IPv4, IPv6 and IPv4-mapped addresses, and lists
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"

static void
test_bad(void **state)
{
	static const char *const bad[] = {
		"", "/", "/24", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/-1",
		"1.2.3.4/+8", "1.2.3.4/024", "1.2.3.4/8x", "1.2.3.4 /8",
		"192.0.2.1/24",		/* host bits set */
		"10.1", "10.1.2.3.4", "010.1.2.3", "1.2.3.256",
		"::1/129", "[::1", "::1]", "[]", "[1.2.3.4]", "[::1]x",
		"[::1]/", "2001:db8::1/32", "fe80::1%eth0",
		"1.2.3.4/99999999999999999999999",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaa",
	};
	struct cidr c, before;
	size_t i;

	(void)state;
	memset(&before, 0x5a, sizeof(before));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = before;
		if (cidr_parse(bad[i], &c) != -1)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static int
match4(const char *block, const char *addr)
{
	struct cidr c;
	uint8_t a[4];

	assert_int_equal(cidr_parse(block, &c), 0);
	assert_int_equal(inet_pton(AF_INET, addr, a), 1);
	return cidr_match(&c, AF_INET, a);
}

static int
match6(const char *block, const char *addr)
{
	struct cidr c;
	uint8_t a[16];

	assert_int_equal(cidr_parse(block, &c), 0);
	assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
	return cidr_match(&c, AF_INET6, a);
}

static void
test_v4(void **state)
{
	(void)state;
	assert_true(match4("127.0.0.0/8", "127.0.0.1"));
	assert_true(match4("127.0.0.0/8", "127.255.255.255"));
	assert_false(match4("127.0.0.0/8", "128.0.0.1"));
	assert_true(match4("192.0.2.128/25", "192.0.2.200"));
	assert_false(match4("192.0.2.128/25", "192.0.2.127"));
	assert_true(match4("192.0.2.7", "192.0.2.7"));
	assert_false(match4("192.0.2.7", "192.0.2.6"));
	assert_true(match4("0.0.0.0/0", "203.0.113.9"));
	assert_true(match4("10.0.0.0/9", "10.127.1.1"));
	assert_false(match4("10.0.0.0/9", "10.128.1.1"));
}

static void
test_v6(void **state)
{
	char out[64];
	struct cidr c;

	(void)state;
	assert_true(match6("[::1]/128", "::1"));
	assert_true(match6("[::1]", "::1"));
	assert_false(match6("::1/128", "::2"));
	assert_true(match6("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(match6("2001:db8::/32", "2001:db9::1"));
	assert_true(match6("[2001:db8:8000::]/33", "2001:db8:8001::1"));
	assert_false(match6("[2001:db8:8000::]/33", "2001:db8:7fff::1"));
	assert_true(match6("::/0", "fe80::1"));
	/* IPv4-mapped addresses match IPv4 blocks, not the other way */
	assert_true(match6("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_false(match6("127.0.0.0/8", "::ffff:128.0.0.1"));
	assert_false(match6("127.0.0.0/8", "::127.0.0.1"));
	assert_false(match4("::ffff:127.0.0.0/104", "127.0.0.1"));
	assert_int_equal(cidr_parse("[2001:db8::]/32", &c), 0);
	cidr_format(&c, out, sizeof(out));
	assert_string_equal(out, "2001:db8::/32");
}

static void
test_list(void **state)
{
	struct cidr_list l;
	struct buf errs;
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr su;

	(void)state;
	buf_init(&errs, 0);
	cidr_list_init(&l);
	assert_int_equal(cidr_list_parse(&l, "mynetworks",
	    "127.0.0.0/8, [::1]/128 192.0.2.0/24,,10.0.0.0/8", &errs), 0);
	assert_int_equal(l.n, 4);
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.9", &s4.sin_addr), 1);
	assert_int_equal(cidr_list_match_sa(&l, (struct sockaddr *)&s4), 1);
	assert_int_equal(inet_pton(AF_INET, "198.51.100.1", &s4.sin_addr), 1);
	assert_int_equal(cidr_list_match_sa(&l, (struct sockaddr *)&s4), 0);
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::1", &s6.sin6_addr), 1);
	assert_int_equal(cidr_list_match_sa(&l, (struct sockaddr *)&s6), 1);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:10.9.9.9",
	    &s6.sin6_addr), 1);
	assert_int_equal(cidr_list_match_sa(&l, (struct sockaddr *)&s6), 1);
	memset(&su, 0, sizeof(su));
	su.sa_family = AF_UNIX;
	assert_int_equal(cidr_list_match_sa(&l, &su), 0);

	/* bad items are reported, the good ones kept */
	assert_int_equal(cidr_list_parse(&l, "mynetworks",
	    "1.2.3.4/40 5.6.7.0/24 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx "
	    "junk", &errs), -1);
	assert_int_equal(l.n, 5);
	assert_non_null(strstr(buf_cstr(&errs),
	    "mynetworks: bad network block \"1.2.3.4/40\"\n"));
	assert_non_null(strstr(buf_cstr(&errs),
	    "mynetworks: bad network block \"junk\"\n"));
	cidr_list_deinit(&l);
	buf_deinit(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_v6),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
