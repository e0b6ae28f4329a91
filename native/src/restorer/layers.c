#include "layers.h"

static uint64_t run_end(const struct us_page_run *r) { return r->addr + r->npages * US_PAGE_SIZE; }

int layer_takes_pages(const struct us_rec_vma *v)
{
	return v->kind == US_VMA_ANON || v->kind == US_VMA_HEAP || v->kind == US_VMA_STACK ||
	       (v->kind == US_VMA_FILE && !(v->flags & US_VMA_F_SHARED));
}

/* One image: what it says of the page at addr (LAYER_SHOWS: ask the images below),
 * and up to where. */
uint32_t layer_seek(const struct layer *l, uint64_t addr)
{
	uint32_t lo = 0, hi = l->nvmas;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (l->vmas[mid]->end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct us_rec_vma *layer_mapping(const struct layer *l, uint64_t addr, uint64_t *until)
{
	uint32_t lo = layer_seek(l, addr);
	const struct us_rec_vma *v = lo < l->nvmas ? l->vmas[lo] : 0;
	*until = !v ? ~0ull : addr < v->start ? v->start : v->end;
	return v && addr >= v->start ? v : 0;
}

static int decides(const struct layer *l, uint64_t addr, uint64_t *until)
{
	const struct us_rec_vma *v = layer_mapping(l, addr, until);
	if (!v)                      /* not mapped in this image: gone */
		return LAYER_GONE;
	const struct us_page_run *runs = (const void *)(v + 1);
	uint32_t lo = 0, hi = v->nruns;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (run_end(&runs[mid]) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->nruns && runs[lo].addr <= addr) {   /* this image's data, or a hole */
		*until = run_end(&runs[lo]);
		return runs[lo].flags & US_RUN_F_HOLE ? LAYER_GONE : LAYER_DATA;
	}
	*until = lo < v->nruns ? runs[lo].addr : v->end;
	/* a page in no run: not in memory if the mapping is complete or shared */
	return (v->flags & US_VMA_F_COMPLETE) || !layer_takes_pages(v) ? LAYER_GONE : LAYER_SHOWS;
}

int layers_decide(const struct layer *newer, int n, uint64_t addr, uint64_t *until)
{
	uint64_t same = ~0ull;       /* where a newer image may change its mind */
	for (int i = 0; i < n; i++) {
		uint64_t u;
		int says = decides(&newer[i], addr, &u);
		if (u < same)
			same = u;
		if (says != LAYER_SHOWS) {
			*until = same;
			return says;
		}
	}
	*until = same;
	return LAYER_SHOWS;
}

long layer_index(const char *records, uint64_t records_len, const struct us_rec_vma **vmas)
{
	long n = 0;
	for (const char *p = records; p < records + records_len;) {
		const struct us_rec_hdr *r = (const void *)p;
		p = (const char *)(r + 1) + US_REC_ALIGN(r->len);
		if (r->type != US_REC_VMA)
			continue;
		const struct us_rec_vma *v = (const void *)(r + 1);
		if (n && vmas[n - 1]->end > v->start)
			return -1;
		const struct us_page_run *run = (const void *)(v + 1);
		for (uint32_t i = 1; i < v->nruns; i++)
			if (run_end(&run[i - 1]) > run[i].addr)
				return -1;
		vmas[n++] = v;
	}
	return n;
}
