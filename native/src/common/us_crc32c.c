#include "us_crc32c.h"

/* SSE4.2 crc32 instruction: every x86-64 CPU this product targets has it. One chain
 * of crc32 instructions waits on each result (3 cycles); long inputs run three
 * independent chains over three consecutive blocks and join them, which keeps the
 * unit busy every cycle. Freestanding: the restorer links it. */

#define POLY 0x82f63b78u        /* Castagnoli, bit-reflected: bit 31 is x^0 */
#define BLOCK 8192u             /* bytes per chain and round */

/* a * b mod POLY, both bit-reflected */
static uint32_t mul_mod(uint32_t a, uint32_t b)
{
	uint32_t product = 0;
	for (uint32_t bit = 1u << 31; bit; bit >>= 1) {
		if (a & bit)
			product ^= b;
		b = (b >> 1) ^ (b & 1 ? POLY : 0);      /* b * x */
	}
	return product;
}

/* x^(8 * bytes) mod POLY: what a register is multiplied by when that many zero bytes
 * follow it */
static uint32_t shift_of(uint64_t bytes)
{
	uint32_t r = 1u << 31, power = 1u << 23;        /* x^0, x^8 */
	for (; bytes; bytes >>= 1, power = mul_mod(power, power))
		if (bytes & 1)
			r = mul_mod(r, power);
	return r;
}

static uint64_t chain(uint64_t c, const unsigned char *p, size_t len)
{
	for (; len >= 8; p += 8, len -= 8)
		c = __builtin_ia32_crc32di(c, *(const uint64_t *)p);
	for (; len; len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return c;
}

uint32_t us_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t c = ~crc & 0xffffffffu;

	for (; len && ((uintptr_t)p & 7); len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	if (len >= 3 * BLOCK) {
		/* A register r followed by n bytes d is r * x^(8n) + crc0(d), crc0 starting
		 * from zero: the linearity that lets the three chains be joined. */
		uint32_t by_one = shift_of(BLOCK), by_two = mul_mod(by_one, by_one);
		for (; len >= 3 * BLOCK; p += 3 * BLOCK, len -= 3 * BLOCK) {
			uint64_t c1 = 0, c2 = 0;
			const uint64_t *w = (const uint64_t *)p;
			for (uint32_t i = 0; i < BLOCK / 8; i++) {
				c = __builtin_ia32_crc32di(c, w[i]);
				c1 = __builtin_ia32_crc32di(c1, w[i + BLOCK / 8]);
				c2 = __builtin_ia32_crc32di(c2, w[i + 2 * BLOCK / 8]);
			}
			c = mul_mod(by_two, (uint32_t)c) ^ mul_mod(by_one, (uint32_t)c1) ^ (uint32_t)c2;
		}
	}
	return ~(uint32_t)chain(c, p, len);
}
