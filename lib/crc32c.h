/*
 * crc32c - CRC-32C (Castagnoli), the check sum of queue files
 *
 * The CRC of RFC 3720 (iSCSI), ext4 and Btrfs metadata: polynomial
 * 0x1EDC6F41 (reflected 0x82F63B78), initial value and final XOR
 * 0xFFFFFFFF.  crc32c("123456789") is 0xE3069283.
 *
 * It is computed piece by piece:
 *
 *	uint32_t c = crc32c_init();
 *	c = crc32c_update(c, part1, len1);
 *	c = crc32c_update(c, part2, len2);
 *	value = crc32c_final(c);
 *
 * crc32c_update() uses the CPU's crc32 instruction (SSE 4.2) when the
 * processor has one, else tables (slicing by 8); both give the same
 * result.  Thread-safe: the tables are built once, on first use.
 */
#ifndef POSTA_CRC32C_H
#define POSTA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_HEX	8	/* digits of a check sum in hex */

static inline uint32_t
crc32c_init(void)
{
	return 0xffffffffU;
}

static inline uint32_t
crc32c_final(uint32_t c)
{
	return c ^ 0xffffffffU;
}

uint32_t crc32c_update(uint32_t c, const void *p, size_t n);

/* crc32c - the check sum of one buffer */
uint32_t crc32c(const void *p, size_t n);

/* crc32c_update_sw - crc32c_update() by the tables whatever the CPU (tests) */
uint32_t crc32c_update_sw(uint32_t c, const void *p, size_t n);

#endif
