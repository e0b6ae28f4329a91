/* us_crc32c against a bit-at-a-time CRC-32C, over lengths around the three-chain
 * threshold, every start alignment, and split points (crc of a then b == crc of ab).
 * Also the standard check value. Prints MB/s, never asserts on time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../src/common/us_crc32c.h"

static uint32_t reference(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (crc & 1 ? 0x82f63b78u : 0);
	}
	return ~crc;
}

static int failures;

static void check(const unsigned char *p, size_t n, uint32_t seed)
{
	uint32_t want = reference(seed, p, n), got = us_crc32c(seed, p, n);
	if (got != want && failures++ < 10)
		fprintf(stderr, "FAIL: length %zu at alignment %u, seed %08x: %08x, want %08x\n",
			n, (unsigned)((uintptr_t)p & 7), seed, got, want);
}

int main(void)
{
	enum { MAXN = 3 * 8192 * 4 + 100 };
	unsigned char *buf = malloc(MAXN + 8);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < MAXN + 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	if (us_crc32c(0, "123456789", 9) != 0xe3069283u && failures++ < 10)
		fprintf(stderr, "FAIL: check value of \"123456789\"\n");
	size_t lengths[] = { 0, 1, 7, 8, 9, 4096, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 13,
			     6 * 8192, 6 * 8192 + 7, 9 * 8192 + 4095, MAXN };
	for (unsigned a = 0; a < 8; a++)
		for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
			if (lengths[i] + a <= MAXN + 8) {
				check(buf + a, lengths[i], 0);
				check(buf + a, lengths[i], 0xdeadbeef);
			}
	for (size_t split = 0; split <= MAXN; split += 4093) {
		uint32_t whole = us_crc32c(0, buf, MAXN), parts = us_crc32c(us_crc32c(0, buf, split), buf + split, MAXN - split);
		if (whole != parts && failures++ < 10)
			fprintf(stderr, "FAIL: split at %zu: %08x, whole %08x\n", split, parts, whole);
	}

	size_t big = 256u << 20;
	unsigned char *mem = malloc(big);
	memset(mem, 0x5a, big);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	volatile uint32_t sink = us_crc32c(0, mem, big);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	(void)sink;
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("crc32c: %.0f MB/s over %zu MiB\n", (double)big / 1e6 / s, big >> 20);
	if (failures)
		fprintf(stderr, "crc32c_check: %d failure(s)\n", failures);
	else
		printf("crc32c_check: ok\n");
	return failures != 0;
}
