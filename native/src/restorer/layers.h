/* Restoring one process from a chain of images: the full image at the bottom, then
 * each incremental image up to the one restored, newest first in memory. A page
 * comes from the newest image that has a run there; an image lets the pages of
 * older ones show through only where it has a mapping that is not complete and no
 * run (docs/image-format.md, "Restoring from a chain"). The same pages as a merge
 * of the chain would keep, without writing the merged image. */
#ifndef US_RESTORER_LAYERS_H
#define US_RESTORER_LAYERS_H
#include <stdint.h>
#include "../../include/us_image.h"

/* A restore reads at most this many images of one process. */
#define US_CHAIN_MAX 256

/* One image of the chain: its mappings in address order. */
struct layer {
	const struct us_rec_vma *const *vmas;
	uint32_t nvmas;
};

/* Whether a mapping's pages are placed by the restorer from image data: private
 * memory, anonymous or of a file. Shared memory comes whole from the newest image. */
int layer_takes_pages(const struct us_rec_vma *v);

/* The index of the image's first mapping that ends above addr (nvmas if none). */
uint32_t layer_seek(const struct layer *l, uint64_t addr);

/* The image's mapping at addr, or NULL; *until is where that may change. */
const struct us_rec_vma *layer_mapping(const struct layer *l, uint64_t addr, uint64_t *until);

/* What images newer[0..n-1] (newest first) make of the page at addr of an image
 * below them: it shows through all of them, or the newest that decides it has data
 * for it, or says it is gone (a hole, a complete or shared mapping, no mapping).
 * *until is where the answer may change (above addr). */
enum { LAYER_SHOWS, LAYER_DATA, LAYER_GONE };
int layers_decide(const struct layer *newer, int n, uint64_t addr, uint64_t *until);

/* Fills vmas with the image's mappings (room for every record); returns their
 * count, or -1 if mappings or the runs of one overlap or are out of order. */
long layer_index(const char *records, uint64_t records_len, const struct us_rec_vma **vmas);
#endif
