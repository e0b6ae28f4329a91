/* LZ4 block codec, written from the block format description (lz4_Block_format.md).
 *
 * A block is a series of sequences:
 *   token | [more literal length] | literals | offset (u16 LE) | [more match length]
 * The token's high nibble is the literal count, its low nibble the match length minus 4
 * (the minimum match). A nibble of 15 continues in the following bytes, each added to it;
 * a byte of 255 means another one follows. The offset (1..65535) counts back from the
 * current output position, and a match may overlap the bytes it produces. The last
 * sequence ends after its literals. End-of-block rules: the last 5 bytes are literals
 * and the last match starts at least 12 bytes before the end, so blocks of under 13
 * bytes are all literals. The decoder rejects matches breaking those rules too: the
 * format allows it, every conforming encoder obeys them, and it makes our round-trip
 * tests prove that ours does.
 *
 * Compressor: greedy, one hash table of 4-byte prefixes to positions; misses make it
 * step faster through incompressible data. Both directions copy with unaligned 8-byte
 * loads and stores, and call nothing: the code runs in the freestanding restorer and in
 * signal handlers. */
#include "us_lz4.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "us_lz4 assumes a little-endian machine"
#endif

/* gcc rewrites copy and fill loops into memcpy/memset calls, which the restorer cannot
 * make and which are not ours to call from a signal handler. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

enum { MINMATCH = 4, LASTLITERALS = 5, MFLIMIT = 12, MAXOFFSET = 65535, HASH_LOG = 12, SKIP_LOG = 6 };
#define MAX_INPUT (4u << 20)

/* Unaligned scalars that may alias anything. Not packed structs: with those, gcc 12 -O2
 * vectorised wild_copy as if source and destination never partly overlapped, which
 * broke matches at offsets 9..15. */
typedef uint64_t __attribute__((aligned(1), may_alias)) u64u;
typedef uint32_t __attribute__((aligned(1), may_alias)) u32u;

static inline uint64_t ld64(const uint8_t *p) { return *(const u64u *)p; }
static inline uint32_t ld32(const uint8_t *p) { return *(const u32u *)p; }
static inline void st64(uint8_t *p, uint64_t v) { *(u64u *)p = v; }

/* Copies n bytes; d and s do not overlap. */
static inline void copy(uint8_t *d, const uint8_t *s, uint64_t n)
{
	for (; n >= 8; n -= 8, d += 8, s += 8)
		st64(d, ld64(s));
	while (n--)
		*d++ = *s++;
}

/* Copies [s, s + (e - d)) to [d, e) 16 bytes at a time: may write up to 15 bytes past
 * e and read as far past the source. Correct for overlap if d - s >= 8. Most literal
 * runs and matches are short: one round, no loop branch to mispredict. */
static inline void wild_copy(uint8_t *d, const uint8_t *s, uint8_t *e)
{
	do {
		st64(d, ld64(s));
		st64(d + 8, ld64(s + 8));
		d += 16, s += 16;
	} while (d < e);
}

/* Bytes taken by the continuation of a length field whose nibble saturates at 15. */
static inline uint64_t len_bytes(uint64_t len)
{
	return len < 15 ? 0 : (len - 15) / 255 + 1;
}

static inline uint8_t *put_len(uint8_t *op, uint64_t len)
{
	for (len -= 15; len >= 255; len -= 255)
		*op++ = 255;
	*op++ = (uint8_t)len;
	return op;
}

static inline uint32_t hash4(uint32_t v, unsigned shift)
{
	return (v * 2654435761u) >> shift;
}

/* Length of the common run of a and b, a ahead of b, stopping at end. */
static inline uint64_t common(const uint8_t *a, const uint8_t *b, const uint8_t *end)
{
	const uint8_t *start = a;
	for (; a + 8 <= end; a += 8, b += 8) {
		uint64_t x = ld64(a) ^ ld64(b);
		if (x)
			return (uint64_t)(a - start) + (__builtin_ctzll(x) >> 3);
	}
	while (a < end && *a == *b)
		a++, b++;
	return (uint64_t)(a - start);
}

uint64_t us_lz4_compress(const void *src_, uint64_t n, void *dst_, uint64_t cap, void *table)
{
	const uint8_t *src = src_;
	uint8_t *dst = dst_, *op = dst, *const oend = dst + cap;
	uint32_t *t = table;
	uint64_t anchor = 0;

	/* Empty input: raw is shorter than any block, and K4os' decoder rejects the
	 * format's one-byte empty block (its encoder writes nothing). */
	if (n == 0 || n > MAX_INPUT)
		return 0;
	if (n > MFLIMIT) {
		/* A table much larger than the input costs more to clear than it saves. */
		unsigned bits = HASH_LOG;
		while (bits > 8 && (1ull << (bits - 1)) >= n)
			bits--;
		const unsigned shift = 32 - bits;
		for (uint32_t i = 0; i < 1u << bits; i++)
			t[i] = 0;

		const uint64_t mflimit = n - MFLIMIT;
		const uint8_t *mlimit = src + n - LASTLITERALS;
		uint64_t ip = 1;
		while (ip <= mflimit) {
			uint64_t ref;
			uint32_t misses = 1u << SKIP_LOG;
			for (;;) {
				uint32_t h = hash4(ld32(src + ip), shift);
				ref = t[h];
				t[h] = (uint32_t)ip;
				/* ref < ip by construction; the unsigned test also rejects ref >= ip. */
				if (ip - ref - 1 < MAXOFFSET && ld32(src + ref) == ld32(src + ip))
					break;
				ip += misses++ >> SKIP_LOG;
				if (ip > mflimit)
					goto last;
			}
			/* Extend backwards into the pending literals: a match starting earlier
			 * still starts before mflimit. */
			while (ip > anchor && ref > 0 && src[ip - 1] == src[ref - 1])
				ip--, ref--;
			uint64_t len = MINMATCH + common(src + ip + MINMATCH, src + ref + MINMATCH, mlimit);
			uint64_t lit = ip - anchor, off = ip - ref;

			if ((uint64_t)(oend - op) < 1 + len_bytes(lit) + lit + 2 + len_bytes(len - MINMATCH))
				return 0;
			uint8_t *tok = op++;
			*tok = (uint8_t)((lit < 15 ? lit : 15) << 4);
			if (lit >= 15)
				op = put_len(op, lit);
			if ((uint64_t)(oend - op) - lit >= 16 && n - ip >= 16)
				wild_copy(op, src + anchor, op + lit);
			else
				copy(op, src + anchor, lit);
			op += lit;
			*op++ = (uint8_t)off;
			*op++ = (uint8_t)(off >> 8);
			*tok |= (uint8_t)(len - MINMATCH < 15 ? len - MINMATCH : 15);
			if (len - MINMATCH >= 15)
				op = put_len(op, len - MINMATCH);

			ip += len;
			anchor = ip;
			if (ip > mflimit)
				break;
			/* Seed the table inside the match so that a repeat of it is found. */
			t[hash4(ld32(src + ip - 2), shift)] = (uint32_t)(ip - 2);
		}
	}
last:;
	uint64_t lit = n - anchor;
	if ((uint64_t)(oend - op) < 1 + len_bytes(lit) + lit)
		return 0;
	*op++ = (uint8_t)((lit < 15 ? lit : 15) << 4);
	if (lit >= 15)
		op = put_len(op, lit);
	copy(op, src + anchor, lit);
	return (uint64_t)(op + lit - dst);
}

/* Adds the continuation bytes of a length field to *len; -1 if the input ends first.
 * No overflow: each input byte adds at most 255. */
static inline int get_len(const uint8_t **pp, const uint8_t *end, uint64_t *len)
{
	const uint8_t *p = *pp;
	unsigned b;
	do {
		if (p == end)
			return -1;
		b = *p++;
		*len += b;
	} while (b == 255);
	*pp = p;
	return 0;
}

int us_lz4_decompress(const void *src, uint64_t n, void *dst_, uint64_t out_len)
{
	const uint8_t *ip = src, *const iend = ip + n;
	uint8_t *const dst = dst_, *op = dst, *const oend = dst + out_len;

	if (n == 0)
		return out_len == 0 ? 0 : -1; /* K4os' encoding of empty input */
	for (;;) {
		if (ip == iend)
			return -1; /* no final literals-only sequence */
		unsigned tok = *ip++;
		uint64_t lit = tok >> 4;
		if (lit == 15 && get_len(&ip, iend, &lit))
			return -1;
		uint64_t in_left = (uint64_t)(iend - ip), out_left = (uint64_t)(oend - op);
		if (lit > in_left || lit > out_left)
			return -1;
		if (in_left - lit >= 16 && out_left - lit >= 16)
			wild_copy(op, ip, op + lit);
		else
			copy(op, ip, lit);
		ip += lit;
		op += lit;
		if (ip == iend)
			return op == oend ? 0 : -1;

		if (iend - ip < 2)
			return -1;
		uint64_t off = ip[0] | (uint64_t)ip[1] << 8;
		ip += 2;
		uint64_t len = tok & 15;
		if (len == 15 && get_len(&ip, iend, &len))
			return -1;
		len += MINMATCH;
		out_left = (uint64_t)(oend - op);
		if (off == 0 || off > (uint64_t)(op - dst))
			return -1;
		if (out_left < MFLIMIT || len > out_left - LASTLITERALS)
			return -1;

		const uint8_t *m = op - off;
		uint8_t *e = op + len;
		if (off < 8) {
			/* The output repeats with period off. Copy bytewise until a multiple of
			 * off that is >= 8 can serve as the distance for 8-byte moves. */
			uint64_t d = off;
			while (d < 8)
				d += off;
			uint8_t *h = op + (d - off < len ? d - off : len);
			while (op < h)
				*op++ = *m++;
			if (op == e)
				continue;
			m = op - d;
		}
		if ((uint64_t)(oend - e) >= 15) {
			if (op < e)
				wild_copy(op, m, e);
		} else {
			while (op < e)
				*op++ = *m++;
		}
		op = e;
	}
}
