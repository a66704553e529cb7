/*
 * crc32c - CRC-32C, in hardware where the CPU has it (crc32c.h)
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY	0x82f63b78U	/* reflected 0x1EDC6F41 */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void
crc_setup(void)
{
	uint32_t c;
	int i, j, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_tab[j][i] = (crc_tab[j - 1][i] >> 8) ^
			    crc_tab[0][crc_tab[j - 1][i] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* crc_sw - slicing by 8: eight table lookups per 8 bytes */
static uint32_t
crc_sw(uint32_t c, const unsigned char *p, size_t n)
{
	uint32_t lo, hi;

	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	while (n >= 8) {
		/* little-endian loads, byte by byte: no alignment games */
		lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
		    (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t
crc_hw32(uint32_t c, const unsigned char *p, size_t n)
{
	uint64_t c64 = c, v;

	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
		n--;
	}
	while (n >= 8) {
		memcpy(&v, p, sizeof(v));
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
	return (uint32_t)c64;
}
#endif

uint32_t
crc32c_update(uint32_t c, const void *p, size_t n)
{
	(void)pthread_once(&crc_once, crc_setup);
#if defined(__x86_64__) && defined(__GNUC__)
	if (crc_hw)
		return crc_hw32(c, p, n);
#endif
	return crc_sw(c, p, n);
}

uint32_t
crc32c(const void *p, size_t n)
{
	return crc32c_final(crc32c_update(crc32c_init(), p, n));
}

uint32_t
crc32c_update_sw(uint32_t c, const void *p, size_t n)
{
	(void)pthread_once(&crc_once, crc_setup);
	return crc_sw(c, p, n);
}
