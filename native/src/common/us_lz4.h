#ifndef US_LZ4_H
#define US_LZ4_H
#include <stdint.h>

/* LZ4 block format (no frame): blocks that any LZ4 block decoder reads, e.g. .NET's
 * K4os LZ4Codec.Decode. Freestanding and async-signal-safe: no allocation, no libc. */

/* Scratch the caller provides to the compressor (a hash table of 4096 positions). */
#define US_LZ4_TABLE_BYTES 16384

/* Compresses n bytes (n <= 4 MiB) into one LZ4 block. Returns the block's length, or 0
 * when it would not fit in cap bytes (the caller then stores the data raw); also 0 for
 * n == 0 (raw is shorter than any block) and n > 4 MiB. table: US_LZ4_TABLE_BYTES of
 * caller scratch, any contents, 4-byte aligned. Never writes past dst+cap. The block
 * depends only on the input, not on the table's contents or on cap. */
uint64_t us_lz4_compress(const void *src, uint64_t n, void *dst, uint64_t cap, void *table);

/* Decodes one LZ4 block of n bytes that must decode to exactly out_len bytes. Returns 0
 * on success, -1 if the block is malformed in any way (bad offset, overrun of input or
 * output, output shorter or longer than out_len, a match breaking the end-of-block
 * rules). Never reads outside [src, src+n) nor writes outside [dst, dst+out_len); on -1
 * dst holds garbage. Empty output has two encodings, both accepted: the format's {0}
 * and K4os' empty block (n == 0). */
int us_lz4_decompress(const void *src, uint64_t n, void *dst, uint64_t out_len);
#endif
