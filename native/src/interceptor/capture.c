/* Writing one process's image while the whole group is frozen: the state
 * description to <vpid>.meta and raw pages to <vpid>.pages (format: us_image.h).
 * Runs on the checkpoint thread with every application thread stopped, possibly
 * inside malloc or stdio, so it uses raw system calls and its own scratch mapping. */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <time.h>
#include "internal.h"
#include "../common/us_fmt.h"
#include "../common/us_crc32c.h"
#include "../common/us_lz4.h"
#include "../common/us_pagemap.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

#define SCRATCH_SIZE (256ul << 20)      /* reserved, touched only as needed */
#define MAPS_MAX     (16ul << 20)
#define PM_BATCH     65536              /* pagemap entries per read */
#define DATA_MAX     (4ul << 20)        /* in-flight bytes captured per descriptor */
#define PM_PRESENT   (1ull << 63)
#define PM_SWAPPED   (1ull << 62)
#define PM_FILE      (1ull << 61)

#define REGIONS_MAX 65536

struct scratch {
	int meta_fd;
	uint64_t seq, base_seq;
	char *base;
	struct us_page_region *regions; /* PAGEMAP_SCAN output */
	int scan_works;                 /* PAGEMAP_SCAN answered (Linux 6.7+) */
	int incremental;
	char *maps;                     /* /proc/self/maps text */
	uint64_t *pm;                   /* pagemap batch */
	char *data;                     /* peeked queue data, fdinfo text, diag replies */
	char *meta;                     /* records being built */
	size_t meta_len, meta_cap;
	int pages_fd;
	uint64_t pages_len;             /* files' contents at capture; then what write_pages wrote */
	uint64_t runs_start;            /* where page runs begin, after saved files' contents */
	char *lz4_table, *lz4_out;      /* the writer's compression scratch */
	char *writer_map;               /* the writer's state description and scratch */
	uint64_t writer_map_len;
	uint64_t private_bytes;         /* private mappings' sizes: is staging cheaper than a fork? */
	char *stage;                    /* staged image: data runs copied while frozen, at their pages_off */
	uint64_t stage_len;
	uint32_t nrecords;
	int failed;
	char *why;
	int why_cap;
};

static void fail(struct scratch *s, const char *what, const char *detail, long err)
{
	if (s->failed)
		return;
	struct us_buf b = { s->why, 0, (size_t)s->why_cap };
	us_put(&b, what);
	if (detail) {
		us_putc(&b, ' ');
		us_put(&b, detail);
	}
	if (err) {
		us_put(&b, " (errno ");
		us_puti(&b, -err);
		us_putc(&b, ')');
	}
	us_term(&b);
	s->failed = 1;
}

/* The staging area stays mapped from one checkpoint to the next, so that its pages
 * are there already: a fault per page costs more than the copy itself. It is not
 * the application's: never captured, tracked, or inherited by a fork. */
static char *stage_buf;
static uint64_t stage_cap;

static int grow_stage(uint64_t len)
{
	len = (len + (2ull << 20) - 1) & ~((2ull << 20) - 1);
	if (stage_buf)
		us_sc2(SYS_munmap, stage_buf, stage_cap);
	stage_buf = NULL;
	stage_cap = 0;
	long m = us_sc6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m < 0 && m > -4096)
		return -1;
	us_sc3(SYS_madvise, m, len, MADV_DONTFORK);
	stage_buf = (char *)m;
	stage_cap = len;
	return 0;
}

static int is_stage(uint64_t start, uint64_t end)
{
	return stage_buf && start >= (uint64_t)stage_buf && end <= (uint64_t)stage_buf + stage_cap;
}

void us_stage_forget(void)
{
	stage_buf = NULL;
	stage_cap = 0;
}

/* ---- record building ---- */

static size_t rec_start;

static void meta_add(struct scratch *s, const void *p, size_t n)
{
	if (s->meta_len + n > s->meta_cap) {
		fail(s, "state description larger than", "the scratch area", 0);
		return;
	}
	const char *src = p;
	for (size_t i = 0; i < n; i++)
		s->meta[s->meta_len + i] = src ? src[i] : 0;
	s->meta_len += n;
}

static void rec_begin(struct scratch *s, uint32_t type)
{
	struct us_rec_hdr h = { type, 0 };
	rec_start = s->meta_len;
	meta_add(s, &h, sizeof h);
}

static void rec_end(struct scratch *s)
{
	if (s->failed)
		return;
	struct us_rec_hdr *h = (void *)(s->meta + rec_start);
	h->len = (uint32_t)(s->meta_len - rec_start - sizeof *h);
	size_t pad = US_REC_ALIGN(h->len) - h->len;
	meta_add(s, NULL, pad);
	s->nrecords++;
}

/* ---- small /proc helpers ---- */

static long read_link(const char *path, char *buf, size_t cap)
{
	long n = us_sc4(SYS_readlinkat, AT_FDCWD, path, buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

/* Finds "key" at a line start in text and returns what follows it. */
static const char *field(const char *text, const char *key)
{
	for (const char *p = text; *p;) {
		if (us_startswith(p, key))
			return p + us_strlen(key);
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
	}
	return NULL;
}

static uint64_t field_u(const char *text, const char *key, int base)
{
	const char *p = field(text, key);
	if (!p)
		return 0;
	us_skip_spaces(&p);
	return us_parse_u(&p, base);
}

/* ---- pages ---- */

/* capture to writer only, never in a file: look for pages of zeros in this run */
#define RUN_SCAN_ZERO 0x80000000u

static int page_is_zero(const uint64_t *p)
{
	for (unsigned i = 0; i < US_PAGE_SIZE / 8; i++)
		if (p[i])
			return 0;
	return 1;
}


static int write_all(int fd, const void *p, uint64_t n)
{
	const char *c = p;
	while (n) {
		long r = us_sc3(SYS_write, fd, c, n > (1ul << 30) ? (1ul << 30) : n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		c += r;
		n -= (uint64_t)r;
	}
	return 0;
}

/* Adds a run to the current mapping's record; the writer places its bytes in
 * .pages later (write_pages), possibly in a forked writer. With compression, runs
 * are cut to what one LZ4 block may hold. */
static uint32_t add_run(struct scratch *s, uint64_t addr, uint64_t npages, uint32_t flags)
{
	uint32_t runs = 0;
	for (; npages; runs++) {
		uint64_t n = us.compress && npages > US_LZ4_RUN_PAGES ? US_LZ4_RUN_PAGES : npages;
		struct us_page_run run = { .addr = addr, .npages = n, .stored_len = n * US_PAGE_SIZE, .flags = flags };
		meta_add(s, &run, sizeof run);
		addr += n * US_PAGE_SIZE;
		npages -= n;
	}
	return runs;
}

/* Where a run's bytes can be read: the memory itself, or a copy in s->data when
 * the memory is unreadable (through /proc/self/mem, which ignores protections) or
 * is our own stack, which changes while we copy it. len <= DATA_MAX for a copy. */
static const void *run_source(struct scratch *s, uint64_t addr, uint64_t len, int readable, int mem_fd)
{
	uint64_t here = (uint64_t)&len;
	if (readable && !(here >= addr && here < addr + len))
		return (const void *)addr;
	if (readable) {
		for (uint64_t i = 0; i < len; i++)
			s->data[i] = ((const char *)addr)[i];
	} else if (us_sc4(SYS_pread64, mem_fd, s->data, len, addr) != (long)len) {
		return NULL;
	}
	return s->data;
}

static int pad_pages_file(struct scratch *s, uint64_t align)
{
	static const char zeros[US_PAGE_SIZE];
	uint64_t pad = (align - s->pages_len % align) % align;
	s->pages_len += pad;
	return pad ? write_all(s->pages_fd, zeros, pad) : 0;
}

/* Stores [addr, addr + npages) at the end of .pages and describes it in run: as an
 * LZ4 block where that saves an eighth or more, else raw and page-aligned. */
static int store_run(struct scratch *s, struct us_page_run *run, const char *staged, int readable, int mem_fd)
{
	int compress = us.compress && run->npages <= US_LZ4_RUN_PAGES;
	uint64_t len = run->npages * US_PAGE_SIZE, z = 0;
	run->stored_len = len;
	run->crc = 0;
	for (uint64_t off = 0; off < len; off += DATA_MAX) {
		uint64_t n = len - off < DATA_MAX ? len - off : DATA_MAX;
		const void *src = staged ? staged + off : run_source(s, run->addr + off, n, readable, mem_fd);
		if (!src)
			return -EFAULT;
		if (!off && compress)
			z = us_lz4_compress(src, len, s->lz4_out, len - len / 8, s->lz4_table);
		int r = off ? 0 : pad_pages_file(s, z ? 8 : US_PAGE_SIZE);
		if (r)
			return r;
		if (!off)
			run->pages_off = s->pages_len;
		if (z) {
			run->flags |= US_RUN_F_LZ4;
			run->stored_len = z;
			src = s->lz4_out;
			n = z;
		}
		run->crc = us_crc32c(run->crc, src, n);
		if ((r = write_all(s->pages_fd, src, n)))
			return r;
		s->pages_len += n;
	}
	return 0;
}

/* The writer lays out .pages and the final state description together: the runs
 * the capture reserved, with the pages of zeros of RUN_SCAN_ZERO runs left out
 * (or, where the mapping is a delta, turned into holes). Looking for zeros here
 * rather than in capture_vma keeps that reading out of the freeze. */
struct rewrite {
	struct scratch *s;
	char *out;
	size_t len, cap;
	int mem_fd, readable;
	uint32_t nruns;
	uint64_t run_addr;              /* the capture's run being written, */
	const char *staged;             /* and its staged copy, if any */
};

static void out_add(struct rewrite *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		fail(w->s, "state description larger than", "the writer's buffer", 0);
		return;
	}
	for (size_t i = 0; i < n; i++)
		w->out[w->len + i] = p ? ((const char *)p)[i] : 0;
	w->len += n;
}

static void out_data(struct rewrite *w, uint64_t addr, uint64_t npages)
{
	struct us_page_run run = { .addr = addr, .npages = npages };
	int e = store_run(w->s, &run, w->staged ? w->staged + (addr - w->run_addr) : NULL, w->readable, w->mem_fd);
	if (e)
		fail(w->s, "cannot write the pages file", NULL, e);
	out_add(w, &run, sizeof run);
	w->nruns++;
}

static void out_hole(struct rewrite *w, uint64_t addr, uint64_t npages)
{
	struct us_page_run run = { .addr = addr, .npages = npages, .flags = US_RUN_F_HOLE };
	out_add(w, &run, sizeof run);
	w->nruns++;
}

/* The run's pages of data become data runs; its pages of zeros become holes in a
 * delta, and nothing otherwise. */
static void out_without_zeros(struct rewrite *w, const struct us_page_run *run, int delta)
{
	uint64_t end = run->addr + run->npages * US_PAGE_SIZE, from = run->addr;
	int zeros = -1;                 /* what [from, p) holds: 1 zeros, 0 data */
	for (uint64_t p = run->addr; p <= end && !w->s->failed; p += US_PAGE_SIZE) {
		const void *page = w->staged ? w->staged + (p - run->addr) : (const void *)p;
		int z = p < end ? page_is_zero(page) : -1;
		if (z == zeros)
			continue;
		if (p > from && !zeros)
			out_data(w, from, (p - from) / US_PAGE_SIZE);
		else if (p > from && delta)
			out_hole(w, from, (p - from) / US_PAGE_SIZE);
		from = p;
		zeros = z;
	}
}

static void rewrite_vma(struct rewrite *w, const struct us_rec_hdr *r)
{
	const struct us_rec_vma *v = (const void *)(r + 1);
	const struct us_page_run *run = (const void *)(v + 1);
	size_t at = w->len;
	out_add(w, r, sizeof *r);
	out_add(w, v, sizeof *v);
	w->nruns = 0;
	w->readable = (v->prot & PROT_READ) != 0;
	int delta = w->s->incremental && !(v->flags & US_VMA_F_COMPLETE);
	for (uint32_t i = 0; i < v->nruns && !w->s->failed; i++, run++) {
		w->run_addr = run->addr;
		w->staged = w->s->stage && !(run->flags & US_RUN_F_HOLE) ? w->s->stage + run->pages_off : NULL;
		if (run->flags & US_RUN_F_HOLE)
			out_hole(w, run->addr, run->npages);
		else if (run->flags & RUN_SCAN_ZERO)
			out_without_zeros(w, run, delta);
		else
			out_data(w, run->addr, run->npages);
	}
	out_add(w, (const char *)(v + 1) + v->nruns * sizeof *run, v->path_len);
	if (w->s->failed)
		return;
	struct us_rec_hdr *h = (void *)(w->out + at);
	struct us_rec_vma *nv = (void *)(h + 1);
	nv->nruns = w->nruns;
	h->len = (uint32_t)(w->len - at - sizeof *h);
	out_add(w, NULL, US_REC_ALIGN(h->len) - h->len);
}

static uint64_t writer_meta_cap(const struct scratch *s)
{
	/* at worst every other page of a scanned run becomes a run of its own */
	uint64_t cap = s->meta_len;
	const char *end = s->meta + s->meta_len;
	for (const struct us_rec_hdr *r = (const void *)(s->meta + sizeof(struct us_meta_header));
	     (const char *)r < end; r = (const void *)((const char *)(r + 1) + US_REC_ALIGN(r->len))) {
		const struct us_rec_vma *v = (const void *)(r + 1);
		const struct us_page_run *run = (const void *)(v + 1);
		for (uint32_t i = 0; r->type == US_REC_VMA && i < v->nruns; i++)
			if (run[i].flags & RUN_SCAN_ZERO)
				cap += (run[i].npages + 1) * sizeof *run;
	}
	return (cap + US_PAGE_SIZE) & ~(uint64_t)(US_PAGE_SIZE - 1);
}

static void write_pages(struct scratch *s)
{
	struct rewrite w = { .s = s, .cap = writer_meta_cap(s) };
	uint64_t lz4_len = us.compress ? US_LZ4_TABLE_BYTES + US_LZ4_BOUND(US_LZ4_RUN_PAGES * US_PAGE_SIZE) : 0;
	long m = us_sc6(SYS_mmap, 0, w.cap + lz4_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m < 0 && m > -4096) {
		fail(s, "cannot map the writer's memory", NULL, m);
		return;
	}
	w.out = (char *)m;
	s->lz4_table = w.out + w.cap;
	s->lz4_out = s->lz4_table + US_LZ4_TABLE_BYTES;
	w.mem_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDONLY | O_CLOEXEC, 0);
	s->pages_len = s->runs_start;

	out_add(&w, s->meta, sizeof(struct us_meta_header));
	const char *end = s->meta + s->meta_len;
	for (const struct us_rec_hdr *r = (const void *)(s->meta + sizeof(struct us_meta_header));
	     (const char *)r < end && !s->failed; r = (const void *)((const char *)(r + 1) + US_REC_ALIGN(r->len))) {
		if (r->type == US_REC_VMA)
			rewrite_vma(&w, r);
		else
			out_add(&w, r, sizeof *r + US_REC_ALIGN(r->len));
	}
	if (w.mem_fd >= 0)
		us_sc1(SYS_close, w.mem_fd);
	/* the capture's scratch goes with the writer (or with us_write_image) */
	s->meta = w.out;
	s->meta_len = w.len;
	s->writer_map = (char *)m;
	s->writer_map_len = w.cap + lz4_len;
}

static int path_has_suffix(const char *path, const char *suffix)
{
	size_t n = us_strlen(path), k = us_strlen(suffix);
	return n >= k && us_streq(path + n - k, suffix);
}

static int path_ends(const struct us_maps_line *v, const char *s)
{
	size_t n = us_strlen(s);
	if (v->path_len < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v->path[v->path_len - n + i] != s[i])
			return 0;
	return 1;
}

/* ---- choosing pages ----
 * Every page of a mapping is DATA (saved), HOLE (incremental: gone from memory) or
 * left out (full: never touched, or the file's contents; incremental: unchanged). */
enum { PG_SKIP, PG_DATA, PG_HOLE };
/* what classify looks at; US_PAGE_IS_FILE too in private file mappings */
#define SCAN_CATEGORIES (US_PAGE_IS_WPALLOWED | US_PAGE_IS_WRITTEN | US_PAGE_IS_PRESENT | US_PAGE_IS_SWAPPED | US_PAGE_IS_PFNZERO)

struct vma_pass {
	struct scratch *s;
	int pm_fd, readable;
	int anon_only;                  /* private file mapping: only copied-on-write pages differ */
	int delta;                      /* tracked: pages not written are unchanged since the base */
	uint32_t nruns;
	uint64_t start, npages;
	int type;
};

static void add_hole(struct vma_pass *x, uint64_t addr, uint64_t npages)
{
	struct us_page_run run = { .addr = addr, .npages = npages, .flags = US_RUN_F_HOLE };
	meta_add(x->s, &run, sizeof run);
	x->nruns++;
}

/* Saves a run of pages. Pages of zeros in anonymous memory read as zero anyway
 * when absent: the writer leaves them out. */
static void add_data(struct vma_pass *x, uint64_t addr, uint64_t npages)
{
	x->nruns += add_run(x->s, addr, npages, x->anon_only || !x->readable ? 0 : RUN_SCAN_ZERO);
}

static void flush_pages(struct vma_pass *x)
{
	if (x->type == PG_DATA)
		add_data(x, x->start, x->npages);
	else if (x->type == PG_HOLE)
		add_hole(x, x->start, x->npages);
	x->type = PG_SKIP;
	x->npages = 0;
}

static void classify(void *ctx, uint64_t start, uint64_t end, uint64_t c)
{
	struct vma_pass *x = ctx;
	int present = (c & (US_PAGE_IS_PRESENT | US_PAGE_IS_SWAPPED)) != 0;
	int gone = !present || (c & US_PAGE_IS_PFNZERO) || (x->anon_only && (c & US_PAGE_IS_FILE));
	int type;
	if (!x->delta)
		type = gone ? PG_SKIP : PG_DATA;
	else
		type = gone ? PG_HOLE : PG_SKIP;
	if (x->delta && type == PG_SKIP && us.tracker == US_TRACK_MPROTECT) {
		/* the mprotect tracker knows written pages one by one */
		for (uint64_t p = start; p < end; p += US_PAGE_SIZE) {
			int t = us_tracker_page_written(p, c) ? PG_DATA : PG_SKIP;
			if (t == x->type && x->start + x->npages * US_PAGE_SIZE == p) {
				x->npages++;
				continue;
			}
			flush_pages(x);
			x->type = t;
			x->start = p;
			x->npages = 1;
		}
		return;
	}
	if (x->delta && type == PG_SKIP && us_tracker_page_written(start, c))
		type = PG_DATA;
	if (type == x->type && x->start + x->npages * US_PAGE_SIZE == start) {
		x->npages += (end - start) / US_PAGE_SIZE;
		return;
	}
	flush_pages(x);
	x->type = type;
	x->start = start;
	x->npages = (end - start) / US_PAGE_SIZE;
}

/* Without PAGEMAP_SCAN (kernels before 6.7): /proc/self/pagemap, page by page. */
static void walk_pagemap(struct vma_pass *x, uint64_t start, uint64_t end)
{
	uint64_t npages = (end - start) / US_PAGE_SIZE;
	for (uint64_t i = 0; i < npages && !x->s->failed; i += PM_BATCH) {
		uint64_t n = npages - i < PM_BATCH ? npages - i : PM_BATCH;
		long got = us_sc4(SYS_pread64, x->pm_fd, x->s->pm, n * 8, (start / US_PAGE_SIZE + i) * 8);
		if (got != (long)(n * 8)) {
			fail(x->s, "cannot read /proc/self/pagemap", NULL, got < 0 ? got : -EIO);
			return;
		}
		for (uint64_t k = 0; k < n; k++) {
			uint64_t e = x->s->pm[k], c = 0;
			if (e & PM_PRESENT) c |= US_PAGE_IS_PRESENT;
			if (e & PM_SWAPPED) c |= US_PAGE_IS_SWAPPED;
			if (e & PM_FILE) c |= US_PAGE_IS_FILE;
			uint64_t page = start + (i + k) * US_PAGE_SIZE;
			classify(x, page, page + US_PAGE_SIZE, c);
		}
	}
}

static void capture_vma(struct scratch *s, const struct us_maps_line *v, int pm_fd)
{
	/* the mprotect tracker's read-only pages are the application's writable ones */
	uint32_t prot = us.tracker == US_TRACK_MPROTECT && !v->shared ? us_mp_app_prot(v->start, v->prot) : v->prot;
	struct us_rec_vma r = { .start = v->start, .end = v->end, .prot = prot,
		.flags = v->shared ? US_VMA_F_SHARED : 0, .file_offset = v->offset,
		.dev = v->dev, .inode = v->inode, .path_len = (uint32_t)v->path_len };
	int save_all = 0, anon_only = 0;

	if (us_maps_path_is(v, "[vdso]"))
		r.kind = US_VMA_VDSO;
	else if (us_maps_path_is(v, "[vvar]"))
		r.kind = US_VMA_VVAR;
	else if (us_maps_path_is(v, "[vvar_vclock]"))
		r.kind = US_VMA_VVAR_VCLOCK;
	else if (us_maps_path_is(v, "[heap]"))
		r.kind = US_VMA_HEAP;
	else if (us_maps_path_is(v, "[stack]"))
		r.kind = US_VMA_STACK;
	else if (v->shared && (v->path_len == 0 || v->path[0] == '[' || path_ends(v, " (deleted)") ||
			       us_startswith(v->path, "/SYSV") || us_startswith(v->path, "/memfd:")))
		r.kind = US_VMA_SHMEM, save_all = 1;      /* no name to map again: keep it all */
	else if (v->path_len == 0 || v->path[0] == '[')
		r.kind = US_VMA_ANON;
	else if (!v->shared && path_ends(v, " (deleted)"))
		r.kind = US_VMA_ANON, save_all = 1;       /* the file is gone: keep the contents */
	else
		r.kind = US_VMA_FILE, anon_only = !v->shared;

	int want_pages = r.kind == US_VMA_ANON || r.kind == US_VMA_HEAP || r.kind == US_VMA_STACK ||
			 r.kind == US_VMA_SHMEM || anon_only;
	struct vma_pass x = { .s = s, .pm_fd = pm_fd,
		.readable = (v->prot & PROT_READ) != 0, .anon_only = anon_only };

	/* Incremental: a mapping the tracker covers entirely is a delta; any other is
	 * captured whole and marked complete. */
	if (want_pages && !save_all && s->incremental)
		x.delta = us_tracker_covers(v->start, v->end, pm_fd, s->regions, REGIONS_MAX);
	if (s->incremental && !x.delta)
		r.flags |= US_VMA_F_COMPLETE;

	r.object_size = v->end - v->start;
	size_t hdr_at = s->meta_len + sizeof(struct us_rec_hdr);
	rec_begin(s, US_REC_VMA);
	meta_add(s, &r, sizeof r);
	if (want_pages) {
		if (save_all)
			classify(&x, v->start, v->end, US_PAGE_IS_PRESENT);
		else if (!s->scan_works ||
			 us_tracker_scan(pm_fd, v->start, v->end, SCAN_CATEGORIES | (anon_only ? US_PAGE_IS_FILE : 0),
					 s->regions, REGIONS_MAX, classify, &x) < 0) {
			if (x.delta)
				fail(s, "PAGEMAP_SCAN failed on a tracked mapping", NULL, 0);
			s->scan_works = 0;
			x.type = PG_SKIP;
			x.npages = 0;
			walk_pagemap(&x, v->start, v->end);
		}
		flush_pages(&x);
	}
	meta_add(s, v->path, v->path_len);
	if (!s->failed)
		((struct us_rec_vma *)(s->meta + hdr_at))->nruns = x.nruns;
	rec_end(s);
}

static void capture_memory(struct scratch *s)
{
	int pm_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	if (pm_fd < 0) {
		fail(s, "cannot open /proc/self/pagemap", NULL, pm_fd);
		return;
	}
	if (us_read_file("/proc/self/maps", s->maps, MAPS_MAX) >= (long)MAPS_MAX - 1) {
		fail(s, "too many memory mappings", NULL, 0);
	} else {
		for (const char *p = s->maps; *p && !s->failed;) {
			struct us_maps_line v;
			p = us_maps_next(p, &v);
			if (v.end <= v.start || us_maps_path_is(&v, "[vsyscall]"))
				continue;
			if ((v.start >= (uint64_t)s->base && v.end <= (uint64_t)s->base + SCRATCH_SIZE) || is_stage(v.start, v.end))
				continue;   /* our own scratch and staging areas */
			if (!v.shared)
				s->private_bytes += v.end - v.start;
			if (us.tracker != US_TRACK_MPROTECT || v.shared) {
				capture_vma(s, &v, pm_fd);
				continue;
			}
			/* each piece has one protection of the application's: see us_mp_piece_end */
			for (uint64_t at = v.start; at < v.end && !s->failed;) {
				struct us_maps_line piece = v;
				piece.start = at;
				piece.end = us_mp_piece_end(at, v.end);
				piece.offset = v.offset + (at - v.start);
				capture_vma(s, &piece, pm_fd);
				at = piece.end;
			}
		}
	}
	us_sc1(SYS_close, pm_fd);
}

/* ---- descriptors ---- */

struct unix_peer { uint64_t ino, peer; uint32_t listening; };
static struct unix_peer *peers;
static int npeers;

/* Asks sock_diag for every Unix socket's peer and state. */
static void load_unix_peers(struct scratch *s, char *buf, size_t cap)
{
	npeers = 0;
	peers = (struct unix_peer *)(s->data + DATA_MAX);  /* after the data area */
	int nl = (int)us_sc3(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return;
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req req;
	} q = {
		.nh = { sizeof q, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_PEER },
	};
	if (us_sc6(SYS_sendto, nl, (long)&q, sizeof q, 0, 0, 0) < 0)
		goto out;
	for (;;) {
		long n = us_sc6(SYS_recvfrom, nl, (long)buf, (long)cap, 0, 0, 0);
		if (n <= 0)
			goto out;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (unsigned long)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
				goto out;
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct unix_peer p = { m->udiag_ino, 0, m->udiag_state == 10 /* TCP_LISTEN */ };
			int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
			for (struct rtattr *a = (void *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == UNIX_DIAG_PEER)
					p.peer = *(uint32_t *)RTA_DATA(a);
			if (npeers < 65536)
				peers[npeers++] = p;
		}
	}
out:
	us_sc1(SYS_close, nl);
}

static const struct unix_peer *find_peer(uint64_t ino)
{
	for (int i = 0; i < npeers; i++)
		if (peers[i].ino == ino)
			return &peers[i];
	return NULL;
}

/* "a.b.c.d:port" or "[x:x:x:x:x:x:x:x]:port": the local address, for binding again. */
static void format_inet_name(int fd, char *out, size_t cap)
{
	unsigned char sa[128] = { 0 };
	unsigned int salen = sizeof sa;
	struct us_buf b = { out, 0, cap };
	us_sc3(SYS_getsockname, fd, sa, &salen);
	unsigned short family = *(unsigned short *)sa;
	unsigned port = (unsigned)sa[2] << 8 | sa[3];
	if (family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			if (i)
				us_putc(&b, '.');
			us_putu(&b, sa[4 + i]);
		}
	} else {
		us_putc(&b, '[');
		for (int i = 0; i < 8; i++) {      /* sin6_addr is at offset 8 */
			if (i)
				us_putc(&b, ':');
			us_putx(&b, (uint64_t)sa[8 + 2 * i] << 8 | sa[9 + 2 * i]);
		}
		us_putc(&b, ']');
	}
	us_putc(&b, ':');
	us_putu(&b, port);
	us_term(&b);
}

/* Copies, without consuming, what is queued in the pipe or FIFO behind fd. */
static uint32_t peek_pipe(struct scratch *s, int fd)
{
	char path[64];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, "/proc/self/fd/");
	us_putu(&b, (uint64_t)fd);
	int rd = (int)us_sc4(SYS_openat, AT_FDCWD, us_term(&b), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (rd < 0)
		return 0;
	int queued = 0;
	us_sc3(SYS_ioctl, rd, FIONREAD, &queued);
	uint32_t got = 0;
	if (queued > 0) {
		int tmp[2];
		if (us_sc2(SYS_pipe2, tmp, O_CLOEXEC | O_NONBLOCK) == 0) {
			us_sc3(SYS_fcntl, tmp[1], F_SETPIPE_SZ, queued);
			long t = us_sc4(SYS_tee, rd, tmp[1], (unsigned long)queued, 2 /* SPLICE_F_NONBLOCK */);
			if (t > 0) {
				long r = us_sc3(SYS_read, tmp[0], s->data, (unsigned long)t);
				got = r > 0 ? (uint32_t)r : 0;
			}
			us_sc1(SYS_close, tmp[0]);
			us_sc1(SYS_close, tmp[1]);
		}
		if (got < (uint32_t)queued)
			fail(s, "cannot copy the data queued in a pipe", NULL, 0);
	}
	us_sc1(SYS_close, rd);
	return got;
}

static uint32_t peek_socket(struct scratch *s, int fd)
{
	int queued = 0;
	us_sc3(SYS_ioctl, fd, FIONREAD, &queued);
	if (queued <= 0)
		return 0;
	if ((unsigned)queued > DATA_MAX) {
		fail(s, "socket queue larger than 4 MiB", NULL, 0);
		return 0;
	}
	long r = us_sc6(SYS_recvfrom, fd, (long)s->data, queued, MSG_PEEK | MSG_DONTWAIT, 0, 0);
	return r > 0 ? (uint32_t)r : 0;
}

static void capture_fd(struct scratch *s, int fd)
{
	char path[64], link[US_PATH_MAX];
	struct us_buf b = { path, 0, sizeof path };
	struct stat st;
	struct us_rec_fd r = { .fd = fd };
	uint32_t data_len = 0;
	const void *data = s->data;

	us_put(&b, "/proc/self/fd/");
	us_putu(&b, (uint64_t)fd);
	if (read_link(us_term(&b), link, sizeof link) < 0 || us_sc2(SYS_fstat, fd, &st) < 0)
		return;   /* closed meanwhile by nobody (all frozen): cannot happen; skip */
	r.fd_flags = (uint32_t)us_sc2(SYS_fcntl, fd, F_GETFD);
	r.open_flags = (uint32_t)us_sc2(SYS_fcntl, fd, F_GETFL);
	r.dev = st.st_dev;
	r.inode = st.st_ino;
	r.mode = st.st_mode;
	const char *name = link;

	if (fd == us.uffd)
		return;   /* the tracker's own: made anew after a restore */
	if (fd == us.coord_fd) {
		r.kind = US_FD_COORDINATOR;
		name = "";
	} else if (us_startswith(link, "anon_inode:")) {
		char info[512];
		struct us_buf ib = { info, 0, sizeof info };
		us_put(&ib, "/proc/self/fdinfo/");
		us_putu(&ib, (uint64_t)fd);
		const char *text = s->data + DATA_MAX / 2;
		us_read_file(us_term(&ib), (char *)text, DATA_MAX / 2);
		if (us_streq(link, "anon_inode:[eventfd]")) {
			r.kind = US_FD_EVENTFD;
			r.aux[0] = field_u(text, "eventfd-count:", 16);
			r.aux[1] = field_u(text, "eventfd-semaphore:", 10);
		} else if (us_streq(link, "anon_inode:[timerfd]")) {
			r.kind = US_FD_TIMERFD;
			r.aux[0] = field_u(text, "clockid:", 10);
			const char *p = field(text, "it_value: (");
			uint64_t sec = p ? us_parse_u(&p, 10) : 0, nsec = 0;
			if (p && *p == ',') { p++; us_skip_spaces(&p); nsec = us_parse_u(&p, 10); }
			r.aux[2] = sec * 1000000000ull + nsec;
			p = field(text, "it_interval: (");
			sec = p ? us_parse_u(&p, 10) : 0, nsec = 0;
			if (p && *p == ',') { p++; us_skip_spaces(&p); nsec = us_parse_u(&p, 10); }
			r.aux[1] = sec * 1000000000ull + nsec;
		} else if (us_streq(link, "anon_inode:[signalfd]")) {
			r.kind = US_FD_SIGNALFD;
			r.aux[0] = field_u(text, "sigmask:", 16);
		} else if (us_streq(link, "anon_inode:[eventpoll]")) {
			r.kind = US_FD_EPOLL;
			struct us_epoll_target *t = (void *)s->data;
			uint32_t n = 0;
			uint32_t max = (DATA_MAX / 2) / sizeof *t;
			for (const char *p = text; n < max && (p = field(p, "tfd:")) != NULL; n++) {
				us_skip_spaces(&p);
				t[n].fd = (int32_t)us_parse_u(&p, 10);
				us_skip_spaces(&p);
				if (us_startswith(p, "events:")) {
					p += 7;
					us_skip_spaces(&p);
					t[n].events = (uint32_t)us_parse_u(&p, 16);
				}
				us_skip_spaces(&p);
				if (us_startswith(p, "data:")) {
					p += 5;
					us_skip_spaces(&p);
					t[n].data = us_parse_u(&p, 16);
				}
			}
			data_len = n * (uint32_t)sizeof *t;
		} else {
			fail(s, "unsupported descriptor:", link, 0);
			return;
		}
	} else if (S_ISREG(st.st_mode)) {
		r.kind = US_FD_FILE;
		r.pos = (uint64_t)us_sc3(SYS_lseek, fd, 0, SEEK_CUR);
	} else if (S_ISDIR(st.st_mode)) {
		r.kind = US_FD_DIR;
		r.pos = (uint64_t)us_sc3(SYS_lseek, fd, 0, SEEK_CUR);
	} else if (S_ISCHR(st.st_mode)) {
		r.kind = US_FD_CHR;
		r.aux[0] = st.st_rdev;
	} else if (S_ISFIFO(st.st_mode)) {
		r.kind = us_startswith(link, "pipe:") ? US_FD_PIPE : US_FD_FIFO;
		r.aux[0] = (r.open_flags & O_ACCMODE) != O_WRONLY;
		if (r.kind == US_FD_PIPE)
			name = "";
		data_len = peek_pipe(s, fd);
	} else if (S_ISSOCK(st.st_mode)) {
		int domain = 0, type = 0;
		unsigned int len = sizeof domain;
		us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
		len = sizeof type;
		us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len);
		if ((domain == AF_INET || domain == AF_INET6) && (type == SOCK_STREAM || type == SOCK_DGRAM)) {
			int listening = 0;
			len = sizeof listening;
			us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
			r.kind = type == SOCK_STREAM ? US_FD_TCP : US_FD_UDP;
			r.aux[1] = listening != 0;
			format_inet_name(fd, link, sizeof link);
			name = link;
			goto record;
		}
		if (domain != AF_UNIX || (type != SOCK_STREAM && type != SOCK_DGRAM)) {
			fail(s, "unsupported socket (Unix, TCP and UDP sockets only):", link, 0);
			return;
		}
		r.kind = type == SOCK_STREAM ? US_FD_UNIX_STREAM : US_FD_UNIX_DGRAM;
		const struct unix_peer *p = find_peer(st.st_ino);
		if (p) {
			r.aux[0] = p->peer;
			r.aux[1] = p->listening;
		}
		/* a bound name lets a listening socket be bound again on restore */
		struct sockaddr_un sa = { 0 };
		unsigned int salen = sizeof sa;
		name = "";
		if (us_sc3(SYS_getsockname, fd, &sa, &salen) == 0 && sa.sun_path[0]) {
			for (int i = 0; i < (int)sizeof sa.sun_path - 1 && sa.sun_path[i]; i++)
				link[i] = sa.sun_path[i], link[i + 1] = 0;
			name = link;
		}
		if (!r.aux[1] && type == SOCK_STREAM)
			data_len = peek_socket(s, fd);
	} else {
		fail(s, "unsupported descriptor:", link, 0);
		return;
	}
record:
	if (name != link)
		r.path_len = (uint32_t)us_strlen(name);
	else
		r.path_len = (uint32_t)us_strlen(link);
	r.data_len = data_len;
	rec_begin(s, US_REC_FD);
	meta_add(s, &r, sizeof r);
	meta_add(s, name, r.path_len);
	meta_add(s, data, data_len);
	rec_end(s);
}

/* ---- storage checkpointing ----
 * Regular files the process holds open for writing are saved with the image, so
 * that a restore brings their contents and lengths back to the checkpoint instant,
 * consistent with memory. UNDERSTUDY_FILES limits this to ':'-separated path
 * prefixes ("none": off); the group's output log is never rolled back. */
static int file_wanted(const char *path)
{
	if (us_streq(us.files, "none") || us_streq(path, us.output_path) || us_streq(path, us.log_path) ||
	    path_has_suffix(path, " (deleted)") || us_startswith(path, "/proc/") || us_startswith(path, "/dev/"))
		return 0;
	if (!us.files[0])
		return 1;
	for (const char *p = us.files; *p;) {
		const char *e = p;
		while (*e && *e != ':')
			e++;
		size_t n = (size_t)(e - p);
		int match = n > 0;
		for (size_t i = 0; i < n && match; i++)
			match = path[i] == p[i];
		if (match)
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

static void capture_file(struct scratch *s, int fd, const char *path, const struct stat *st)
{
	char proc[64];
	struct us_buf b = { proc, 0, sizeof proc };
	us_put(&b, "/proc/self/fd/");
	us_putu(&b, (uint64_t)fd);
	int rd = (int)us_sc4(SYS_openat, AT_FDCWD, us_term(&b), O_RDONLY | O_CLOEXEC, 0);
	if (rd < 0) {
		fail(s, "cannot read a file open for writing:", path, rd);
		return;
	}
	struct us_rec_file r = { .dev = st->st_dev, .inode = st->st_ino, .size = (uint64_t)st->st_size,
		.pages_off = s->pages_len, .path_len = (uint32_t)us_strlen(path) };
	for (uint64_t off = 0; off < r.size && !s->failed;) {
		uint64_t want = r.size - off < DATA_MAX ? r.size - off : DATA_MAX;
		long got = us_sc4(SYS_pread64, rd, s->data, want, off);
		if (got <= 0) {
			fail(s, "file shrank while frozen:", path, got);
			break;
		}
		r.crc = us_crc32c(r.crc, s->data, (uint64_t)got);
		int w = write_all(s->pages_fd, s->data, (uint64_t)got);
		if (w)
			fail(s, "cannot write the pages file", NULL, w);
		off += (uint64_t)got;
	}
	us_sc1(SYS_close, rd);
	uint64_t padded = (r.size + US_PAGE_SIZE - 1) / US_PAGE_SIZE * US_PAGE_SIZE;
	for (uint64_t i = r.size; i < padded; i++)
		s->data[i - r.size] = 0;
	if (padded > r.size && write_all(s->pages_fd, s->data, padded - r.size))
		fail(s, "cannot write the pages file", NULL, 0);
	s->pages_len += padded;
	rec_begin(s, US_REC_FILE);
	meta_add(s, &r, sizeof r);
	meta_add(s, path, r.path_len);
	rec_end(s);
}

static void capture_files(struct scratch *s, const int *fds, int n)
{
	uint64_t seen[256];
	int nseen = 0;
	for (int i = 0; i < n && !s->failed; i++) {
		char path[US_PATH_MAX], proc[64];
		struct us_buf b = { proc, 0, sizeof proc };
		struct stat st;
		int flags = (int)us_sc2(SYS_fcntl, fds[i], F_GETFL);
		if (fds[i] == us.coord_fd || fds[i] == us.uffd || us_sc2(SYS_fstat, fds[i], &st) < 0 ||
		    !S_ISREG(st.st_mode) || (flags & O_ACCMODE) == O_RDONLY)
			continue;
		us_put(&b, "/proc/self/fd/");
		us_putu(&b, (uint64_t)fds[i]);
		if (read_link(us_term(&b), path, sizeof path) <= 0 || !file_wanted(path))
			continue;
		int dup = 0;
		for (int k = 0; k < nseen; k++)
			dup |= seen[k] == st.st_ino;
		if (dup)
			continue;
		if (nseen < 256)
			seen[nseen++] = st.st_ino;
		if ((uint64_t)st.st_size > us.files_max) {
			fail(s, "a file open for writing is larger than UNDERSTUDY_FILES_MAX; raise it or leave the file out with UNDERSTUDY_FILES:", path, 0);
			return;
		}
		capture_file(s, fds[i], path, &st);
	}
}

static void capture_fds(struct scratch *s, const int *fds, int n)
{
	load_unix_peers(s, s->data, DATA_MAX);
	for (int i = 0; i < n && !s->failed; i++)
		capture_fd(s, fds[i]);
}

/* ---- process-wide state ---- */

static void capture_proc(struct scratch *s)
{
	char *text = s->data;
	struct us_rec_proc p = { 0 };
	char exe[US_PATH_MAX], cwd[US_PATH_MAX], comm[32];

	p.vpid = (uint32_t)us.vpid;
	p.vppid = (uint32_t)us_sc0(SYS_getppid);
	p.vpgid = (uint32_t)us_sc1(SYS_getpgid, 0);
	p.vsid = (uint32_t)us_sc1(SYS_getsid, 0);
	p.uid = (uint32_t)us_sc0(SYS_getuid);
	p.gid = (uint32_t)us_sc0(SYS_getgid);
	p.exec_count = (uint32_t)us.exec_count;
	p.entry = (uint64_t)us_restore_entry;
	p.entry_arg = 0;

	us_read_file("/proc/self/status", text, DATA_MAX);
	p.umask = (uint32_t)field_u(text, "Umask:", 8);
	us.pending_signals = field_u(text, "ShdPnd:", 16);

	/* /proc/self/stat: fields after "(comm)" start at field 3 */
	us_read_file("/proc/self/stat", text, DATA_MAX);
	uint64_t f[64];
	us_stat_fields(text, f);
	p.mm[US_MM_START_CODE] = f[26];
	p.mm[US_MM_END_CODE] = f[27];
	p.mm[US_MM_START_STACK] = f[28];
	p.mm[US_MM_START_DATA] = f[45];
	p.mm[US_MM_END_DATA] = f[46];
	p.mm[US_MM_START_BRK] = f[47];
	p.mm[US_MM_ARG_START] = f[48];
	p.mm[US_MM_ARG_END] = f[49];
	p.mm[US_MM_ENV_START] = f[50];
	p.mm[US_MM_ENV_END] = f[51];
	p.mm[US_MM_BRK] = (uint64_t)us_sc1(SYS_brk, 0);

	long ne = read_link("/proc/self/exe", exe, sizeof exe);
	for (long i = 0; i <= ne && i < (long)sizeof us.exe_path; i++)
		us.exe_path[i] = exe[i];
	long nc = read_link("/proc/self/cwd", cwd, sizeof cwd);
	long nm = us_read_file("/proc/self/comm", comm, sizeof comm);
	if (nm > 0 && comm[nm - 1] == '\n')
		comm[--nm] = 0;
	long na = us_read_file("/proc/self/auxv", text, DATA_MAX);
	p.exe_len = ne > 0 ? (uint32_t)ne : 0;
	p.cwd_len = nc > 0 ? (uint32_t)nc : 0;
	p.comm_len = nm > 0 ? (uint32_t)nm : 0;
	p.auxv_len = na > 0 ? (uint32_t)na : 0;

	rec_begin(s, US_REC_PROC);
	meta_add(s, &p, sizeof p);
	meta_add(s, exe, p.exe_len);
	meta_add(s, cwd, p.cwd_len);
	meta_add(s, comm, p.comm_len);
	meta_add(s, text, p.auxv_len);
	rec_end(s);
}

static void capture_threads(struct scratch *s)
{
	for (int i = 0; i < US_MAX_THREADS; i++) {
		struct us_thread_slot *t = &us.slots[i];
		if (!t->tid)
			continue;
		struct us_rec_thread r = { (uint32_t)t->tid, (uint32_t)t->is_checkpoint_thread, t->fs_base, { 0 } };
		for (int k = 0; k < 16; k++)
			r.comm[k] = t->comm[k];
		rec_begin(s, US_REC_THREAD);
		meta_add(s, &r, sizeof r);
		rec_end(s);
	}
}

static void capture_signals_and_limits(struct scratch *s)
{
	struct us_rec_sigact h = { 0, 0 };
	struct us_sigact acts[64];
	for (int sig = 1; sig <= 64; sig++) {
		struct us_kernel_sigaction k;
		if (sig == 9 || sig == 19)
			continue;
		if (us_sc4(SYS_rt_sigaction, sig, NULL, &k, 8) < 0)
			continue;
		acts[h.count++] = (struct us_sigact){ (uint32_t)sig, 0, k.handler, k.flags, k.restorer, k.mask };
	}
	rec_begin(s, US_REC_SIGACT);
	meta_add(s, &h, sizeof h);
	meta_add(s, acts, h.count * sizeof acts[0]);
	rec_end(s);

	struct us_rec_misc m = { 0 };
	for (int w = 0; w < 3; w++) {
		long it[4];
		if (us_sc2(SYS_getitimer, w, it) == 0)
			for (int k = 0; k < 4; k++)
				m.itimer[w][k] = it[k];
	}
	for (int r = 0; r < 16; r++) {
		struct rlimit rl;
		if (us_sc4(SYS_prlimit64, 0, r, NULL, &rl) == 0)
			m.rlim_cur[r] = rl.rlim_cur;
	}
	m.pending_shared = us.pending_signals;
	rec_begin(s, US_REC_MISC);
	meta_add(s, &m, sizeof m);
	rec_end(s);
}

static int open_image_file(const char *dir, const char *ext)
{
	char path[US_PATH_MAX];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, dir);
	us_putc(&b, '/');
	us_putu(&b, (uint64_t)us.vpid);
	us_put(&b, ext);
	/* 0600: images hold application memory, which means secrets */
	return (int)us_sc4(SYS_openat, AT_FDCWD, us_term(&b), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/* After an image is written, every private mapping is tracked again from a clean
 * state, so that the next image can be relative to this one. */
static void arm_tracker(struct scratch *s)
{
	if (us.tracker == US_TRACK_NONE)
		return;
	if (us.tracker == US_TRACK_MPROTECT) {
		/* pages made writable split the mappings: undo that, then look again */
		us_mp_reset();
		us_read_file("/proc/self/maps", s->maps, MAPS_MAX);
	}
	int pm_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	for (const char *p = s->maps; *p;) {
		struct us_maps_line v;
		p = us_maps_next(p, &v);
		if (!us_tracker_wants(&v))
			continue;
		if ((v.start >= (uint64_t)s->base && v.end <= (uint64_t)s->base + SCRATCH_SIZE) || is_stage(v.start, v.end))
			continue;
		if (us_tracker_may_arm(v.start, v.end, us_maps_path_is(&v, "[stack]")))
			us_tracker_rearm(v.start, v.end, v.prot, pm_fd, s->regions, REGIONS_MAX);
	}
	if (pm_fd >= 0)
		us_sc1(SYS_close, pm_fd);
	us_mp_release_kernel_writes();
}

/* A small increment is copied aside while the group is frozen, and written by the
 * checkpoint thread once the group runs again: cheaper than forking a writer,
 * whose cost is copying the page tables of all the process's memory. Returns 1 when
 * staged (each data run's pages_off then says where its copy is). */
#define STAGE_MAX (256ull << 20)

static int stage_pages(struct scratch *s)
{
	uint64_t total = 0;
	const char *end = s->meta + s->meta_len;
	for (int pass = 0; pass < 2; pass++) {
		int mem_fd = pass ? (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDONLY | O_CLOEXEC, 0) : -1;
		uint64_t at = 0;
		for (struct us_rec_hdr *r = (void *)(s->meta + sizeof(struct us_meta_header));
		     (const char *)r < end && !s->failed; r = (void *)((char *)(r + 1) + US_REC_ALIGN(r->len))) {
			struct us_rec_vma *v = (void *)(r + 1);
			struct us_page_run *run = (void *)(v + 1);
			for (uint32_t i = 0; r->type == US_REC_VMA && i < v->nruns && !s->failed; i++, run++) {
				uint64_t len = run->npages * US_PAGE_SIZE;
				if (run->flags & US_RUN_F_HOLE)
					continue;
				for (uint64_t off = 0; pass && off < len; off += DATA_MAX) {
					uint64_t n = len - off < DATA_MAX ? len - off : DATA_MAX;
					const void *src = run_source(s, run->addr + off, n, (v->prot & PROT_READ) != 0, mem_fd);
					if (!src)
						fail(s, "cannot read memory to stage", NULL, -EFAULT);
					else
						__builtin_memcpy(s->stage + at + off, src, n);
				}
				run->pages_off = at;
				at += len;
			}
		}
		if (mem_fd >= 0)
			us_sc1(SYS_close, mem_fd);
		total = at;
		if (!pass) {
			if (total > STAGE_MAX || total * 8 > s->private_bytes)
				return 0;
			if (!total)
				return 1;       /* nothing written since the base: nothing to copy */
			if (total > stage_cap && grow_stage(total) < 0)
				return 0;
			s->stage = stage_buf;
			s->stage_len = total;
		}
	}
	return 1;
}

/* Copies the pages, then writes the state description last, so that a complete
 * .meta means a complete image. */
static void finish_image(struct scratch *s)
{
	write_pages(s);
	if (s->failed)
		return;
	struct us_meta_header *h = (void *)s->meta;
	const char magic[8] = US_META_MAGIC;
	for (int i = 0; i < 8; i++)
		h->magic[i] = magic[i];
	h->version = US_META_VERSION;
	h->header_size = sizeof *h;
	h->kind = s->incremental ? US_IMAGE_INCREMENTAL : US_IMAGE_FULL;
	h->record_count = s->nrecords;
	h->records_len = s->meta_len - sizeof *h;
	h->pages_len = s->pages_len;
	h->records_crc = us_crc32c(0, s->meta + sizeof *h, h->records_len);
	h->vpid = (uint32_t)us.vpid;
	h->checkpoint_seq = s->seq;
	h->base_seq = s->incremental ? (uint32_t)s->base_seq : 0;
	h->header_crc = us_crc32c(0, h, 60);
	int r = write_all(s->meta_fd, s->meta, s->meta_len);
	if (!r)
		r = (int)us_sc1(SYS_fdatasync, s->pages_fd);
	if (!r)
		r = (int)us_sc1(SYS_fdatasync, s->meta_fd);
	if (r)
		fail(s, "cannot write the image", NULL, r);
}

/* The forked writer: a copy-on-write snapshot of this process taken while it is
 * frozen. The application resumes at once; the writer copies the pages from the
 * snapshot. It is a clone child with no exit signal, so the application's own
 * waitpid() never sees it. */
static struct writer_result {
	volatile int done, failed;
	uint64_t meta_len, pages_len;   /* the writer decides them */
	char why[480];
} *writer;
static int writer_pid;

/* Made before the capture reads the memory map, so that every image holds it and
 * a restored process finds it where its pointer says. */
static int map_writer_result(void)
{
	if (writer)
		return 0;
	long m = us_sc6(SYS_mmap, 0, US_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096)
		return (int)m;
	writer = (struct writer_result *)m;
	return 0;
}

static void start_writer(struct scratch *s)
{
	writer->done = writer->failed = 0;
	writer->why[0] = 0;
	long pid = us_sc5(SYS_clone, 0 /* no exit signal */, 0, 0, 0, 0);
	if (pid < 0) {
		fail(s, "cannot fork the image writer", NULL, pid);
		return;
	}
	if (pid == 0) {
		s->why = writer->why;
		s->why_cap = sizeof writer->why;
		finish_image(s);
		writer->meta_len = s->meta_len;
		writer->pages_len = s->pages_len;
		writer->failed = s->failed;
		writer->done = 1;
		for (;;)
			us_sc1(SYS_exit_group, s->failed);
	}
	writer_pid = (int)pid;
}

static struct scratch staged;   /* an image staged by us_write_image, written here */

static void release_image(struct scratch *s)
{
	if (s->meta_fd >= 0)
		us_sc1(SYS_close, s->meta_fd);
	if (s->pages_fd >= 0)
		us_sc1(SYS_close, s->pages_fd);
	if (s->writer_map)
		us_sc2(SYS_munmap, s->writer_map, s->writer_map_len);
	if (s->stage)   /* kept for the next one; the kernel may take the pages back meanwhile */
		us_sc3(SYS_madvise, s->stage, s->stage_len, MADV_FREE);
	us_sc2(SYS_munmap, s->base, SCRATCH_SIZE);
}

int us_wait_writer(char *why, int cap, uint64_t *meta_bytes, uint64_t *pages_bytes)
{
	if (staged.base) {
		staged.why = why;
		staged.why_cap = cap;
		finish_image(&staged);
		*meta_bytes = staged.meta_len;
		*pages_bytes = staged.pages_len;
		int failed = staged.failed;
		release_image(&staged);
		staged = (struct scratch){ 0 };
		return failed ? -1 : 0;
	}
	if (!writer_pid)
		return 0;
	int status = 0;
	while (us_sc4(SYS_wait4, writer_pid, &status, 0x80000000 /* __WCLONE */, 0) == -EINTR)
		;
	writer_pid = 0;
	if (writer->done && !writer->failed) {
		*meta_bytes = writer->meta_len;
		*pages_bytes = writer->pages_len;
		return 0;
	}
	struct us_buf b = { why, 0, (size_t)cap };
	us_put(&b, writer->done ? writer->why : "the image writer died");
	us_term(&b);
	return -1;
}

int us_write_image(const char *dir, uint64_t seq, uint64_t base_seq, int cow, char *why, int cap,
		   uint64_t *meta_bytes, uint64_t *pages_bytes, int *incremental)
{
	struct us_thread_slot *self = us_slot_for((int)us_sc0(SYS_gettid), 1);
	if (!self) {
		struct us_buf b = { why, 0, (size_t)cap };
		us_put(&b, "no thread slot left");
		us_term(&b);
		return -1;
	}
	self->is_checkpoint_thread = 1;
	us_capture_thread(self);
	/* The restored checkpoint thread resumes here, returning US_WRITE_RESTORED.
	 * Nothing below may be relied upon on that path: the stack was captured later. */
	if (us_jmp_save(&self->ctx))
		return US_WRITE_RESTORED;

	if (us_streq(us.fault, "stall-write")) {
		us_log("fault", "stall-write: hanging in WRITE until killed");
		for (;;) {
			struct timespec ts = { 1, 0 };
			us_sc2(SYS_nanosleep, &ts, NULL);
		}
	}

	int fds[4096];
	int nfds = us_list_numbers("/proc/self/fd", 1, fds, 4096);   /* before we open any */

	struct scratch s = { 0 };
	s.why = why;
	s.why_cap = cap;
	long base = us_sc6(SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base < 0 && base > -4096) {
		fail(&s, "cannot map scratch memory", NULL, base);
		return -1;
	}
	s.base = (char *)base;
	s.maps = s.base;
	s.pm = (uint64_t *)(s.base + MAPS_MAX);
	s.data = s.base + MAPS_MAX + PM_BATCH * 8;
	s.regions = (struct us_page_region *)(s.data + DATA_MAX + (4ul << 20));  /* peer table between */
	s.meta = (char *)(s.regions + REGIONS_MAX);
	s.scan_works = 1;
	/* relative to base_seq only if this process has tracked every write since then */
	s.incremental = base_seq && us.tracker != US_TRACK_NONE && us.tracked_seq == base_seq;
	us.pending_seq = 0;
	s.meta_cap = SCRATCH_SIZE - (size_t)(s.meta - s.base);

	int mapped = cow ? map_writer_result() : 0;
	if (mapped)
		fail(&s, "cannot map the writer's result page", NULL, mapped);
	int meta_fd = open_image_file(dir, ".meta");
	s.pages_fd = open_image_file(dir, ".pages");
	if (meta_fd < 0 || s.pages_fd < 0) {
		fail(&s, "cannot create image files in", dir, meta_fd < 0 ? meta_fd : s.pages_fd);
	} else {
		struct us_meta_header h = { 0 };
		meta_add(&s, &h, sizeof h);       /* filled in at the end */
		capture_proc(&s);
		capture_threads(&s);
		capture_signals_and_limits(&s);
		if (nfds < 0)
			fail(&s, "cannot list /proc/self/fd", NULL, 0);
		else
			capture_fds(&s, fds, nfds);
		if (!s.failed && nfds > 0)
			capture_files(&s, fds, nfds);
		s.runs_start = s.pages_len;
		if (!s.failed)
			capture_memory(&s);
	}
	s.meta_fd = meta_fd;
	int is_staged = 0;
	if (!s.failed) {
		s.seq = seq;
		s.base_seq = base_seq;
		if (cow && s.incremental && stage_pages(&s))
			is_staged = 1;
		else if (cow)
			start_writer(&s);
		else
			finish_image(&s);
		*meta_bytes = s.meta_len;
		*pages_bytes = s.pages_len;
		*incremental = s.incremental;
	}
	if (!s.failed) {
		/* still frozen: from here every write is tracked again */
		arm_tracker(&s);
		us.pending_seq = seq;   /* becomes the tracked base once the checkpoint commits */
	}
	if (is_staged && !s.failed)
		staged = s;             /* us_wait_writer writes it and lets it go */
	else
		release_image(&s);
	return s.failed ? -1 : 0;
}
