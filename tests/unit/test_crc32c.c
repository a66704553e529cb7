/*
 * test_crc32c - known check values (RFC 3720 appendix B.4 and the
 * usual "123456789"), piecewise == whole at every split and alignment,
 * and the table code agreeing with the hardware code on random data
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

static void
test_known(void **state)
{
	unsigned char b[32];
	size_t i;

	(void)state;
	assert_int_equal(crc32c("123456789", 9), 0xe3069283U);
	assert_int_equal(crc32c("", 0), 0);
	assert_int_equal(crc32c("a", 1), 0xc1d04330U);
	/* RFC 3720 B.4: 32 bytes of zeros, of ones, ascending, descending */
	memset(b, 0, sizeof(b));
	assert_int_equal(crc32c(b, sizeof(b)), 0x8a9136aaU);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(crc32c(b, sizeof(b)), 0x62a8ab43U);
	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)i;
	assert_int_equal(crc32c(b, sizeof(b)), 0x46dd794eU);
	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)(31 - i);
	assert_int_equal(crc32c(b, sizeof(b)), 0x113fdb5cU);
}

static void
test_pieces(void **state)
{
	unsigned char *buf = malloc(4096 + 8);
	uint32_t whole, c;
	size_t i, split, off;

	(void)state;
	srand(7);
	for (i = 0; i < 4096 + 8; i++)
		buf[i] = (unsigned char)rand();
	for (off = 0; off < 8; off++) {
		whole = crc32c(buf + off, 4096);
		assert_int_equal(crc32c_final(crc32c_update_sw(crc32c_init(),
		    buf + off, 4096)), whole);
		for (split = 0; split <= 4096; split += 37) {
			c = crc32c_update(crc32c_init(), buf + off, split);
			c = crc32c_update(c, buf + off + split, 4096 - split);
			assert_int_equal(crc32c_final(c), whole);
		}
	}
	/* one changed bit changes the sum */
	whole = crc32c(buf, 4096);
	buf[1234] ^= 0x10;
	assert_int_not_equal(crc32c(buf, 4096), whole);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
