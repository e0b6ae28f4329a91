/* The restorer's layering rule (native/src/restorer/layers.c) on hand-made images:
 * which image of a chain each page comes from. Exits 1 with the first mismatch. */
#include <stdio.h>
#include <string.h>
#include "../src/restorer/layers.h"

#define P 4096ull
#define A 0x10000000ull

struct vma_buf {
	struct us_rec_vma v;
	struct us_page_run runs[4];
};

static struct us_rec_vma *vma(struct vma_buf *b, uint64_t from, uint64_t to, uint32_t kind, uint32_t flags)
{
	memset(b, 0, sizeof *b);
	b->v = (struct us_rec_vma){ .start = A + from * P, .end = A + to * P, .kind = kind, .flags = flags };
	return &b->v;
}

static void run(struct vma_buf *b, uint64_t page, uint64_t n, uint32_t flags)
{
	b->runs[b->v.nruns++] = (struct us_page_run){ .addr = A + page * P, .npages = n, .flags = flags };
}

static int failures;

static const char *const said[] = { "shows", "newer data", "gone" };

static void expect(const struct layer *newer, int n, uint64_t page, int want, uint64_t until_page)
{
	uint64_t until;
	int got = layers_decide(newer, n, A + page * P, &until);
	uint64_t want_until = until_page == ~0ull ? ~0ull : A + until_page * P;
	if (got != want || until != want_until) {
		printf("page %llu below %d images: %s until 0x%llx, expected %s until 0x%llx\n", (unsigned long long)page, n,
		       said[got], (unsigned long long)until, said[want], (unsigned long long)want_until);
		failures++;
	}
}

int main(void)
{
	/* newest: one mapping of pages 0..9, not complete: data at 2, a hole at 5..6;
	 * then a shared mapping 12..13 and a complete one 14..15 */
	struct vma_buf n0, n1, n2, m0, m1;
	const struct us_rec_vma *newest[3] = {
		vma(&n0, 0, 10, US_VMA_ANON, 0), vma(&n1, 12, 14, US_VMA_FILE, US_VMA_F_SHARED),
		vma(&n2, 14, 16, US_VMA_ANON, US_VMA_F_COMPLETE) };
	run(&n0, 2, 1, 0);
	run(&n0, 5, 2, US_RUN_F_HOLE);
	/* the one below: pages 0..3 not complete with data at 0; 6..9 complete */
	const struct us_rec_vma *middle[2] = { vma(&m0, 0, 4, US_VMA_FILE, 0), vma(&m1, 6, 10, US_VMA_ANON, US_VMA_F_COMPLETE) };
	run(&m0, 0, 1, 0);
	run(&m1, 8, 1, 0);
	struct layer chain[2] = { { newest, 3 }, { middle, 2 } };

	enum { SHOWS = LAYER_SHOWS, DATA = LAYER_DATA, GONE = LAYER_GONE };
	/* pages of the middle image: below the newest alone */
	expect(chain, 1, 0, SHOWS, 2);  /* no run of the newest until page 2 */
	expect(chain, 1, 2, DATA, 3);   /* the newest's data */
	expect(chain, 1, 3, SHOWS, 5);
	expect(chain, 1, 5, GONE, 7);   /* the newest's hole: not in memory */
	expect(chain, 1, 7, SHOWS, 10);
	expect(chain, 1, 10, GONE, 12); /* not mapped in the newest */
	expect(chain, 1, 12, GONE, 14); /* shared: nothing from below */
	expect(chain, 1, 14, GONE, 16); /* complete */
	expect(chain, 1, 16, GONE, ~0ull);
	/* pages of the full image at the bottom: below both */
	expect(chain, 2, 0, DATA, 1);   /* the middle image's data */
	expect(chain, 2, 1, SHOWS, 2);
	expect(chain, 2, 2, DATA, 3);   /* the newest decides first */
	expect(chain, 2, 3, SHOWS, 4);
	expect(chain, 2, 4, GONE, 5);   /* not mapped in the middle image, until the newest's hole */
	expect(chain, 2, 7, GONE, 8);   /* complete in the middle image */
	expect(chain, 2, 8, DATA, 9);   /* ... which has data there */

	/* mappings out of order, or overlapping runs, are refused */
	struct {
		struct us_rec_hdr h;
		struct vma_buf b;
	} recs[2];
	memset(recs, 0, sizeof recs);
	recs[0].h = (struct us_rec_hdr){ US_REC_VMA, sizeof recs[0].b };
	recs[1].h = (struct us_rec_hdr){ US_REC_VMA, sizeof recs[1].b };
	vma(&recs[0].b, 4, 8, US_VMA_ANON, 0);
	vma(&recs[1].b, 0, 4, US_VMA_ANON, 0);
	const struct us_rec_vma *index[2];
	if (layer_index((const char *)recs, sizeof recs, index) != -1) {
		printf("mappings out of order were accepted\n");
		failures++;
	}
	vma(&recs[1].b, 8, 12, US_VMA_ANON, 0);
	run(&recs[1].b, 8, 2, 0);
	run(&recs[1].b, 9, 1, 0);
	recs[1].b.v.nruns = 2;
	if (layer_index((const char *)recs, sizeof recs, index) != -1) {
		printf("overlapping runs were accepted\n");
		failures++;
	}
	recs[1].b.runs[1].addr = A + 10 * P;
	if (layer_index((const char *)recs, sizeof recs, index) != 2) {
		printf("two ordered mappings were not indexed\n");
		failures++;
	}
	if (!failures)
		printf("layers: all cases hold\n");
	return failures ? 1 : 0;
}
