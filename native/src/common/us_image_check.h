#ifndef US_IMAGE_CHECK_H
#define US_IMAGE_CHECK_H
#include <stdint.h>
#include "../../include/us_image.h"

/* Checks a whole state description (the .meta file's bytes) before anything in it
 * is trusted: header, checksums, every record's bounds and internal lengths, and
 * page runs inside their mappings and inside pages_len. Freestanding.
 * Returns NULL if sound, else a short reason. */
const char *us_image_check(const void *buf, uint64_t size);

/* Walks records of a checked description. */
#define US_FOR_RECORDS(buf, size, r)                                                     \
	for (const struct us_rec_hdr *r = (const void *)((const char *)(buf) +               \
							 sizeof(struct us_meta_header));    \
	     (const char *)r < (const char *)(buf) + (size);                                 \
	     r = (const void *)((const char *)(r + 1) + US_REC_ALIGN(r->len)))
#endif
