/* Fuzzes us_image_check, the parser every restore trusts first.
 *
 * Built two ways: with clang -fsanitize=fuzzer this is a libFuzzer target; built
 * normally (ctest, under ASan and UBSan) main() runs a fixed-seed mutation campaign
 * from the shared test vector. Half of the mutants get their checksums recomputed
 * so that the structural checks behind the CRCs are exercised too. The checker
 * must accept the seed, reject targeted corruptions, and never crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/common/us_image_check.h"
#include "../src/common/us_crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	us_image_check(data, size);
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

static void reseal(uint8_t *buf, size_t size)
{
	struct us_meta_header *h = (void *)buf;
	if (size < sizeof *h)
		return;
	uint64_t rl = h->records_len <= size - sizeof *h ? h->records_len : size - sizeof *h;
	h->records_crc = us_crc32c(0, buf + sizeof *h, rl);
	h->header_crc = us_crc32c(0, h, 60);
}

static int expect_reject(const uint8_t *seed, size_t size, const char *name, void (*mutate)(uint8_t *, size_t))
{
	uint8_t *m = malloc(size);
	memcpy(m, seed, size);
	mutate(m, size);
	if (!memcmp(m, seed, size)) {   /* the seed has nothing this corrupts */
		free(m);
		printf("%-40s (not in this seed)\n", name);
		return 1;
	}
	const char *why = us_image_check(m, size);
	free(m);
	printf("%-40s %s\n", name, why ? why : "ACCEPTED (wrong)");
	return why != NULL;
}

static void flip_magic(uint8_t *b, size_t n) { (void)n; b[0] ^= 1; }
static void bad_version(uint8_t *b, size_t n) { ((struct us_meta_header *)b)->version = 1; reseal(b, n); }
static void flip_record_byte(uint8_t *b, size_t n) { b[n / 2] ^= 0x40; }
static void huge_record(uint8_t *b, size_t n) { ((struct us_rec_hdr *)(b + 64))->len = 0xfffffff0u; reseal(b, n); }
static void zero_pages_len(uint8_t *b, size_t n) { ((struct us_meta_header *)b)->pages_len = 0; reseal(b, n); }

/* The data of the seed's first FD record of this kind, or NULL. */
static uint8_t *fd_data(uint8_t *b, size_t n, uint32_t kind)
{
	for (size_t off = sizeof(struct us_meta_header); off + sizeof(struct us_rec_hdr) <= n;) {
		struct us_rec_hdr *r = (void *)(b + off);
		struct us_rec_fd *f = (void *)(r + 1);
		if (r->type == US_REC_FD && f->kind == kind)
			return (uint8_t *)(f + 1) + f->path_len;
		off += sizeof *r + US_REC_ALIGN(r->len);
	}
	return NULL;
}

/* One more byte announced than the record's data holds (lengths are little-endian,
 * and the seed's are small). */
static void bump(uint8_t *b, size_t n, uint32_t kind, size_t at)
{
	uint8_t *d = fd_data(b, n, kind);
	if (d)
		d[at]++;
	reseal(b, n);
}

static void pty_queue_overrun(uint8_t *b, size_t n) { bump(b, n, US_FD_PTY_MASTER, offsetof(struct us_pty_state, to_slave_len)); }
static void tcp_queue_overrun(uint8_t *b, size_t n) { bump(b, n, US_FD_TCP, offsetof(struct us_tcp_conn, recv_len)); }
static void seqpacket_record_overrun(uint8_t *b, size_t n) { bump(b, n, US_FD_UNIX_SEQPACKET, 0); }

/* The seed's first queued IPC message claims 8 bytes more than its record holds. */
static void ipc_message_overrun(uint8_t *b, size_t n)
{
	for (size_t off = sizeof(struct us_meta_header); off + sizeof(struct us_rec_hdr) <= n;) {
		struct us_rec_hdr *r = (void *)(b + off);
		struct us_rec_ipc *o = (void *)(r + 1);
		if (r->type == US_REC_IPC && (o->kind == US_IPC_MSG || o->kind == US_IPC_MQUEUE) && o->count) {
			((struct us_ipc_msg *)(o + 1))->len += 8;
			break;
		}
		off += sizeof *r + US_REC_ALIGN(r->len);
	}
	reseal(b, n);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_image_check SEED.meta [iterations]\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	static uint8_t seed[1 << 20];
	size_t size = fread(seed, 1, sizeof seed, f);
	fclose(f);
	long iterations = argc > 2 ? atol(argv[2]) : 200000;

	const char *why = us_image_check(seed, size);
	if (why) {
		printf("seed rejected: %s\n", why);
		return 1;
	}
	int ok = 1;
	ok &= expect_reject(seed, size, "bad magic", flip_magic);
	ok &= expect_reject(seed, size, "version 1", bad_version);
	ok &= expect_reject(seed, size, "flipped record byte", flip_record_byte);
	ok &= expect_reject(seed, size, "record length past the end", huge_record);
	ok &= expect_reject(seed, size, "page runs past an empty pages file", zero_pages_len);
	ok &= expect_reject(seed, size, "pty queue past its record's data", pty_queue_overrun);
	ok &= expect_reject(seed, size, "TCP queue past its record's data", tcp_queue_overrun);
	ok &= expect_reject(seed, size, "seqpacket record past the queue", seqpacket_record_overrun);
	ok &= expect_reject(seed, size, "IPC message past its record's data", ipc_message_overrun);
	for (size_t cut = 0; cut < size; cut++)
		if (!us_image_check(seed, cut)) {
			printf("truncation to %zu bytes accepted\n", cut);
			ok = 0;
		}

	uint8_t *m = malloc(size);
	long accepted = 0;
	for (long i = 0; i < iterations; i++) {
		size_t n = size;
		memcpy(m, seed, size);
		int edits = 1 + (int)(next() % 4);
		for (int e = 0; e < edits; e++) {
			size_t at = next() % size;
			switch (next() % 4) {
			case 0: m[at] ^= (uint8_t)(1u << (next() % 8)); break;
			case 1: m[at] = (uint8_t)next(); break;
			case 2: if (at + 4 <= size) memset(m + at, 0xff, 4); break;
			case 3: n = at; break;
			}
		}
		if (next() & 1)
			reseal(m, n);
		if (!us_image_check(m, n))
			accepted++;
	}
	free(m);
	printf("%ld mutants, %ld still well-formed (benign edits), no crash\n", iterations, accepted);
	return ok ? 0 : 1;
}
#endif
