/* Round-trip test and benchmark for us_lz4.
 *
 * decompress(compress(x)) == x over zeros, random, text-like, memory-like and periodic
 * inputs (periods 1..70000) of lengths 0..300000; compress must give up (return 0)
 * exactly when cap is below the block's length, must not depend on the table's prior
 * contents, and must never write past cap (guard bytes). Blocks from the reference
 * encoder must decode, and hand-made bad blocks must be rejected. Prints MB/s, never
 * asserts on time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../src/common/us_lz4.h"

#define GUARD 64
#define MAXN 300000

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int failures;
#define CHECK(c, ...)                                            \
	do {                                                     \
		if (!(c)) {                                      \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                     \
			printf("\n");                            \
			if (++failures > 20)                     \
				exit(1);                         \
		}                                                \
	} while (0)

static uint32_t table[US_LZ4_TABLE_BYTES / 4], garbage[US_LZ4_TABLE_BYTES / 4];
static uint8_t blk[MAXN + MAXN / 255 + 64 + GUARD], blk2[sizeof blk], out[MAXN + GUARD];

static void gen_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)next();
}

static void gen_text(uint8_t *p, size_t n)
{
	static const char *words[] = {"the", "process", "checkpoint", "of", "a", "memory", "page", "restore",
				      "thread", "signal", "file", "descriptor", "and", "to", "in", "=", "{", "}",
				      "/usr/lib/x86_64-linux-gnu/libc.so.6", "error:", "0x7ffd", "\n"};
	size_t i = 0;
	while (i < n) {
		const char *w = next() % 8 ? words[next() % (sizeof words / sizeof *words)] : 0;
		char num[24];
		if (!w) {
			snprintf(num, sizeof num, "%u", (unsigned)(next() % 100000));
			w = num;
		}
		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
		if (i < n)
			p[i++] = ' ';
	}
}

/* Like a process's pages: zero pages, pointers into a few mappings, small integers,
 * text, and some high-entropy bytes. About half of it is zero. */
static void gen_memory(uint8_t *p, size_t n)
{
	for (size_t page = 0; page < n; page += 4096) {
		size_t end = page + 4096 < n ? page + 4096 : n;
		if (next() % 8 < 3) {
			memset(p + page, 0, end - page);
			continue;
		}
		for (size_t i = page; i < end;) {
			size_t run = 8 + next() % 256;
			if (run > end - i)
				run = end - i;
			switch (next() % 6) {
			case 0:
			case 1:
				memset(p + i, 0, run);
				break;
			case 2:
				for (size_t j = 0; j < run; j++) {
					uint64_t v = (j % 8 == 0) ? 0x00007f3a12000000ull + (next() % 4096) * 16 : 0;
					p[i + j] = (uint8_t)(v >> 0);
					if (j % 8 == 0)
						for (size_t k = 1; k < 8 && j + k < run; k++)
							p[i + j + k] = (uint8_t)(v >> (8 * k));
					if (j % 8 == 0)
						j += 7;
				}
				break;
			case 3:
				for (size_t j = 0; j < run; j++)
					p[i + j] = j % 4 == 0 ? (uint8_t)(next() % 16) : 0;
				break;
			case 4:
				gen_text(p + i, run);
				break;
			case 5:
				gen_random(p + i, run);
				break;
			}
			i += run;
		}
	}
}

static void gen_periodic(uint8_t *p, size_t n, size_t period)
{
	for (size_t i = 0; i < n; i++)
		p[i] = i < period ? (uint8_t)next() : p[i - period];
}

/* Compresses src under every check; returns the block length (in blk). */
static uint64_t roundtrip(const uint8_t *src, uint64_t n, const char *what)
{
	uint64_t bound = n + n / 255 + 16;
	if (n == 0) { /* stored raw: compress declines */
		CHECK(us_lz4_compress(src, 0, blk, bound, table) == 0, "empty input compressed");
		return 0;
	}
	memset(blk, 0xa5, bound + GUARD);
	memcpy(table, garbage, sizeof table);
	uint64_t len = us_lz4_compress(src, n, blk, bound, table);
	CHECK(len > 0 && len <= bound, "%s n=%llu: compress returned %llu", what, (unsigned long long)n,
	      (unsigned long long)len);
	if (!len)
		return 0;
	for (int i = 0; i < GUARD; i++)
		CHECK(blk[bound + i] == 0xa5, "%s n=%llu: wrote past cap", what, (unsigned long long)n);

	memset(out, 0x5a, n + GUARD);
	CHECK(us_lz4_decompress(blk, len, out, n) == 0, "%s n=%llu: own block rejected", what,
	      (unsigned long long)n);
	CHECK(memcmp(out, src, n) == 0, "%s n=%llu: round trip differs", what, (unsigned long long)n);
	for (int i = 0; i < GUARD; i++)
		CHECK(out[n + i] == 0x5a, "%s n=%llu: decoder wrote past out_len", what, (unsigned long long)n);
	CHECK(us_lz4_decompress(blk, len, out, n + 1) == -1, "%s: longer out_len accepted", what);
	if (n)
		CHECK(us_lz4_decompress(blk, len, out, n - 1) == -1, "%s: shorter out_len accepted", what);
	CHECK(us_lz4_decompress(blk, len - 1, out, n) == -1, "%s: truncated block accepted", what);

	/* Same block from a cleared table and exactly enough room; nothing from one byte less. */
	memset(table, 0, sizeof table);
	memset(blk2, 0xa5, len + GUARD);
	CHECK(us_lz4_compress(src, n, blk2, len, table) == len && memcmp(blk, blk2, len) == 0,
	      "%s n=%llu: output depends on table or cap", what, (unsigned long long)n);
	uint64_t small[3] = {len - 1, next() % len, len / 2};
	for (int k = 0; k < 3; k++) {
		memset(blk2, 0xa5, len + GUARD);
		CHECK(us_lz4_compress(src, n, blk2, small[k], table) == 0, "%s n=%llu: fit in cap %llu < %llu",
		      what, (unsigned long long)n, (unsigned long long)small[k], (unsigned long long)len);
		for (uint64_t i = small[k]; i < len + GUARD; i++)
			if (blk2[i] != 0xa5) {
				CHECK(0, "%s n=%llu: wrote at %llu past cap %llu", what, (unsigned long long)n,
				      (unsigned long long)i, (unsigned long long)small[k]);
				break;
			}
	}
	return len;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(const char *name, void (*gen)(uint8_t *, size_t), size_t chunk)
{
	enum { TOTAL = 64 << 20 };
	static uint8_t src[16][256 << 10];
	static uint8_t cb[16][(256 << 10) + 2048];
	static uint64_t cl[16];
	int nb = (int)(sizeof src / sizeof *src);
	for (int i = 0; i < nb; i++)
		gen(src[i], chunk);
	uint64_t in = 0, outb = 0;
	double t0 = now();
	long iters = TOTAL / chunk;
	for (long it = 0; it < iters; it++) {
		int i = (int)(it % nb);
		cl[i] = us_lz4_compress(src[i], chunk, cb[i], sizeof cb[i], table);
		in += chunk;
		outb += cl[i];
	}
	double tc = now() - t0;
	t0 = now();
	for (long it = 0; it < iters; it++) {
		int i = (int)(it % nb);
		if (us_lz4_decompress(cb[i], cl[i], out, chunk))
			CHECK(0, "bench block rejected");
	}
	double td = now() - t0;
	printf("%-28s %7zu B chunks: ratio %6.2f  compress %7.0f MB/s  decompress %7.0f MB/s\n", name, chunk,
	       (double)in / outb, in / tc / 1e6, in / td / 1e6);
}

static void expect_block(const char *name, const uint8_t *b, size_t n, size_t out_len, int want)
{
	uint8_t *o = malloc(out_len + 1);
	int r = us_lz4_decompress(b, n, o, out_len);
	CHECK(r == want, "%s: decoder returned %d, expected %d", name, r, want);
	free(o);
}

static void known_blocks(void)
{
	/* From the reference lz4 encoder: "Abcdefghijklmnop" "0" x 16 "Abcdefghijk". */
	static const uint8_t ref[] = {0xfb, 0x02, 'A', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm',
				      'n', 'o', 'p', '0', 0x01, 0x00, 0xb0, 'A', 'b', 'c', 'd', 'e', 'f', 'g',
				      'h', 'i', 'j', 'k'};
	const char *want = "Abcdefghijklmnop0000000000000000Abcdefghijk";
	uint8_t o[64];
	CHECK(us_lz4_decompress(ref, sizeof ref, o, 43) == 0 && memcmp(o, want, 43) == 0, "reference block");

	static const uint8_t empty[] = {0x00}, lit3[] = {0x30, 'a', 'b', 'c'};
	expect_block("empty block", empty, 1, 0, 0);
	expect_block("K4os' empty block", empty, 0, 0, 0);
	expect_block("empty block for 1 byte", empty, 0, 1, -1);
	expect_block("{0} for 1 byte", empty, 1, 1, -1);
	expect_block("3 literals", lit3, 4, 3, 0);
	expect_block("literals past the input", lit3, 3, 2, -1);
	/* 8 literals, then a match of 4 at offset 8, then 8 final literals: 20 bytes out. */
	uint8_t ok[] = {0x80, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0x80, 1, 2, 3, 4, 5, 6, 7, 8};
	expect_block("valid match", ok, sizeof ok, 20, 0);
	ok[9] = 0;
	expect_block("offset 0", ok, sizeof ok, 20, -1);
	ok[9] = 9;
	expect_block("offset before the start", ok, sizeof ok, 20, -1);
	ok[9] = 8;
	expect_block("match then no final sequence", ok, 11, 20, -1);
	/* The end-of-block rules: a match must start >= 12 and end >= 5 bytes before the end. */
	expect_block("match starting 12 before the end", ok, sizeof ok, 20, 0);
	uint8_t late[] = {0x84, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0x40, 1, 2, 3, 4};
	expect_block("match ending 4 before the end", late, sizeof late, 20, -1);
	uint8_t edge[] = {0x83, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0x50, 1, 2, 3, 4, 5};
	expect_block("match ending 5 before the end", edge, sizeof edge, 20, 0);
	uint8_t late2[] = {0x81, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0x60, 1, 2, 3, 4, 5, 6};
	expect_block("match starting 11 before the end", late2, sizeof late2, 19, -1);
	uint8_t longlen[] = {0xf0, 255, 255, 255};
	expect_block("literal length past the input", longlen, sizeof longlen, 1000, -1);
}

int main(void)
{
	static uint8_t src[MAXN];
	for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++)
		garbage[i] = (uint32_t)next();
	known_blocks();

	long cases = 0;
	void (*gens[])(uint8_t *, size_t) = {0, gen_random, gen_text, gen_memory};
	const char *names[] = {"zeros", "random", "text", "memory"};
	for (int g = 0; g < 4; g++) {
		size_t lens[200], nl = 0;
		for (size_t n = 0; n <= 40; n++)
			lens[nl++] = n;
		for (size_t k = 1; k <= 64; k *= 2)
			lens[nl++] = 4096 * k, lens[nl++] = 4096 * k - 1, lens[nl++] = 4096 * k + 1;
		lens[nl++] = 65535, lens[nl++] = 65536 + 12, lens[nl++] = MAXN;
		for (int i = 0; i < 40; i++)
			lens[nl++] = 41 + next() % (MAXN - 41);
		for (size_t i = 0; i < nl; i++) {
			if (gens[g])
				gens[g](src, lens[i]);
			else
				memset(src, 0, lens[i]);
			roundtrip(src, lens[i], names[g]);
			cases++;
		}
	}
	size_t periods[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70,
			    100, 255, 256, 1000, 4095, 4096, 4097, 30000, 65534, 65535, 65536, 65537, 70000};
	for (size_t i = 0; i < sizeof periods / sizeof *periods; i++) {
		size_t p = periods[i];
		size_t lens[] = {p + 13, 2 * p + 20, 3 * p + next() % 5000, 4096 * (1 + next() % 64)};
		for (size_t j = 0; j < 4; j++) {
			size_t n = lens[j] < MAXN ? lens[j] : MAXN;
			gen_periodic(src, n, p);
			roundtrip(src, n, "periodic");
			cases++;
		}
	}
	for (size_t p = 1; p <= 70; p++) /* every small period, all lengths 0..60 */
		for (size_t n = 0; n <= 60; n++) {
			gen_periodic(src, n, p);
			roundtrip(src, n, "short periodic");
			cases++;
		}
	printf("%ld round trips\n", cases);

	memset(src, 0, sizeof src);
	uint64_t z4 = roundtrip(src, 4096, "zero page"), z256 = roundtrip(src, 256 << 10, "zero 256K");
	printf("zero page: 4096 -> %llu bytes, 256 KiB -> %llu bytes\n", (unsigned long long)z4,
	       (unsigned long long)z256);
	CHECK(z4 && 4096 / z4 >= 100, "zero page compresses only %llu:1", (unsigned long long)(z4 ? 4096 / z4 : 0));
	CHECK(z256 && (256 << 10) / z256 >= 200, "zero 256K compresses only %llu:1",
	      (unsigned long long)(z256 ? (256 << 10) / z256 : 0));

	bench("half-zero memory-like", gen_memory, 256 << 10);
	bench("random", gen_random, 256 << 10);
	bench("text-like", gen_text, 256 << 10);
	bench("half-zero memory-like", gen_memory, 4096);

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("OK\n");
	return 0;
}
