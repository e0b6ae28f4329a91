/* Fuzzes us_lz4_decompress, which reads page data straight from image files, and
 * checks us_lz4_compress against exact-size buffers.
 *
 * Built two ways: with clang -fsanitize=fuzzer -DUS_LIBFUZZER this is a libFuzzer
 * target; built normally (ctest, under ASan and UBSan) main() runs a fixed-seed
 * campaign: valid blocks from our compressor, mutated (bit flips, random bytes,
 * truncation, extension, insertion, deletion), decoded into buffers of exactly out_len
 * bytes so that any stray access trips ASan. Every verdict is compared with a slow,
 * plain reference decoder in this file: the decoder must agree on accept/reject and on
 * the bytes. Bounded by an iteration count and a time budget. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../src/common/us_lz4.h"

/* The format read byte by byte, with the same end-of-block rules (last match starts
 * >= 12 and ends >= 5 bytes before the end). Returns the decoded length, or -1 if the
 * block is malformed or decodes to more than cap bytes. */
static int64_t ref_decode(const uint8_t *s, uint64_t n, uint8_t *d, uint64_t cap)
{
	uint64_t i = 0, o = 0, last_start = 0, last_end = 0;
	int matched = 0;
	if (n == 0)
		return 0;
	for (;;) {
		if (i >= n)
			return -1;
		unsigned tok = s[i++], b;
		uint64_t lit = tok >> 4, len = tok & 15;
		if (lit == 15)
			do {
				if (i >= n)
					return -1;
				lit += b = s[i++];
			} while (b == 255);
		if (lit > n - i)
			return -1;
		while (lit--) {
			if (o >= cap)
				return -1;
			d[o++] = s[i++];
		}
		if (i == n)
			break;
		if (n - i < 2)
			return -1;
		uint64_t off = s[i] | (uint64_t)s[i + 1] << 8;
		i += 2;
		if (len == 15)
			do {
				if (i >= n)
					return -1;
				len += b = s[i++];
			} while (b == 255);
		len += 4;
		if (off == 0 || off > o)
			return -1;
		matched = 1, last_start = o;
		while (len--) {
			if (o >= cap)
				return -1;
			d[o] = d[o - off];
			o++;
		}
		last_end = o;
	}
	if (matched && (o - last_start < 12 || o - last_end < 5))
		return -1;
	return (int64_t)o;
}

static void die(const char *what, uint64_t n, uint64_t out_len)
{
	printf("FAIL: %s (block %llu bytes, out_len %llu)\n", what, (unsigned long long)n, (unsigned long long)out_len);
	fflush(stdout);
	abort();
}

/* Decodes blk[0..n) into exactly out_len malloc'd bytes; checks against ref_decode. */
static int check_decode(const uint8_t *blk, uint64_t n, uint64_t out_len)
{
	uint8_t *in = malloc(n ? n : 1), *out = malloc(out_len ? out_len : 1), *ref = malloc(out_len + 1);
	memcpy(in, blk, n);
	int r = us_lz4_decompress(in, n, out, out_len);
	int64_t want = ref_decode(in, n, ref, out_len + 1);
	if (r != 0 && r != -1)
		die("decoder returned neither 0 nor -1", n, out_len);
	if ((r == 0) != (want == (int64_t)out_len))
		die(r ? "decoder rejected a well-formed block" : "decoder accepted a malformed block", n, out_len);
	if (r == 0 && memcmp(out, ref, out_len))
		die("decoder output differs from the reference", n, out_len);
	free(in), free(out), free(ref);
	return r == 0;
}

/* Compresses into exactly cap malloc'd bytes and decodes the result back. */
static void check_compress(const uint8_t *data, uint64_t n, uint64_t cap, void *table)
{
	uint8_t *src = malloc(n ? n : 1), *dst = malloc(cap ? cap : 1);
	memcpy(src, data, n);
	uint64_t len = us_lz4_compress(src, n, dst, cap, table);
	if (len > cap)
		die("compress returned more than cap", len, n);
	if (len) {
		uint8_t *back = malloc(n);
		if (us_lz4_decompress(dst, len, back, n) || memcmp(back, data, n))
			die("round trip failed", len, n);
		free(back);
	}
	free(src), free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t table[US_LZ4_TABLE_BYTES / 4];
	if (size < 3)
		return 0;
	/* First three bytes: out_len (< 256 KiB); the rest is the block. */
	uint64_t out_len = data[0] | (uint64_t)data[1] << 8 | (uint64_t)(data[2] & 3) << 16;
	check_decode(data + 3, size - 3, out_len);
	if (size <= (4u << 20))
		check_compress(data, size, size + size / 255 + 16, table);
	return 0;
}

#ifndef US_LIBFUZZER
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Inputs that exercise every path: long literal runs, long matches, offsets 1..7. */
static void gen(uint8_t *p, size_t n, int kind)
{
	size_t period = 1 + next() % (kind == 3 ? 7 : 300);
	for (size_t i = 0; i < n; i++)
		switch (kind) {
		case 0: p[i] = 0; break;
		case 1: p[i] = (uint8_t)next(); break;
		case 2: p[i] = (uint8_t)"abc defg hij\n"[next() % 13]; break;
		case 5: p[i] = next() % 4 ? 0 : (uint8_t)next(); break;
		case 6: p[i] = (i / 512) % 2 ? (uint8_t)next() : (uint8_t)(i / 4096); break;
		default: p[i] = i < period ? (uint8_t)next() : p[i - period]; break;
		}
}

enum { NSEEDS = 48 };
static struct {
	uint8_t *blk;
	uint64_t n, raw;
} seeds[NSEEDS];

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 200000;
	double budget = argc > 2 ? atof(argv[2]) : 15, t0 = now();
	uint32_t *table = malloc(US_LZ4_TABLE_BYTES);
	for (int i = 0; i < US_LZ4_TABLE_BYTES / 4; i++)
		table[i] = (uint32_t)next();

	static uint8_t raw[70000], tmp[70000 + 70000 / 255 + 16 + 64];
	for (int s = 0; s < NSEEDS; s++) {
		size_t n = s < 8 ? 1 + (size_t)s * 3 : s % 6 == 0 ? 20000 + next() % 50000 : 13 + next() % 3000;
		gen(raw, n, s % 7);
		uint64_t len = us_lz4_compress(raw, n, tmp, sizeof tmp, table);
		if (!len || !check_decode(tmp, len, n)) {
			printf("seed %d (%zu bytes) did not round-trip\n", s, n);
			return 1;
		}
		seeds[s].blk = malloc(len);
		memcpy(seeds[s].blk, tmp, len);
		seeds[s].n = len, seeds[s].raw = n;
	}

	/* The compressor, against exact-size output buffers and random caps. */
	long compressions = 0;
	for (; compressions < 3000 && now() - t0 < budget / 4; compressions++) {
		size_t n = next() % 4 ? next() % 5000 : next() % 70000;
		gen(raw, n, (int)(next() % 7));
		uint64_t bound = n + n / 255 + 16, cap = next() % 2 ? bound : next() % (bound + 1);
		check_compress(raw, n, cap, table);
	}

	long i, accepted = 0;
	for (i = 0; i < iterations; i++) {
		if (i % 1024 == 0 && now() - t0 > budget)
			break;
		int s = (int)(next() % NSEEDS);
		uint64_t n = seeds[s].n, out_len = seeds[s].raw;
		memcpy(tmp, seeds[s].blk, n);
		int edits = 1 + (int)(next() % 4);
		for (int e = 0; e < edits; e++) {
			uint64_t at = n ? next() % n : 0;
			switch (next() % 8) {
			case 0: if (n) tmp[at] ^= (uint8_t)(1u << (next() % 8)); break;
			case 1: if (n) tmp[at] = (uint8_t)next(); break;
			case 2: if (n) tmp[at] = (const uint8_t[]){0, 0x0f, 0xf0, 0xff}[next() % 4]; break;
			case 3: n = at; break;
			case 4: /* extend with random bytes */
				for (int k = 1 + (int)(next() % 16); k-- && n < sizeof tmp;)
					tmp[n++] = (uint8_t)next();
				break;
			case 5: /* insert a byte */
				if (n < sizeof tmp) {
					memmove(tmp + at + 1, tmp + at, n - at);
					tmp[at] = (uint8_t)next();
					n++;
				}
				break;
			case 6: /* delete a byte */
				if (n) {
					memmove(tmp + at, tmp + at + 1, n - at - 1);
					n--;
				}
				break;
			case 7: /* a different claimed size */
				out_len = next() % 2 ? out_len + next() % 9 - 4 : next() % 80000;
				if ((int64_t)out_len < 0)
					out_len = 0;
				break;
			}
		}
		if (next() % 64 == 0) { /* plain noise */
			n = next() % 512;
			for (uint64_t k = 0; k < n; k++)
				tmp[k] = (uint8_t)next();
			out_len = next() % 4096;
		}
		accepted += check_decode(tmp, n, out_len);
	}
	printf("%ld compressions into exact buffers; %ld mutated blocks (%ld still well-formed), "
	       "decoder agreed with the reference on all, in %.1f s\n",
	       compressions, i, accepted, now() - t0);
	for (int s = 0; s < NSEEDS; s++)
		free(seeds[s].blk);
	free(table);
	return 0;
}
#endif
