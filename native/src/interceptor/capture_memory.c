/* Memory: a VMA record for every mapping, with the runs of pages it saves, chosen
 * with PAGEMAP_SCAN (or /proc/self/pagemap) and the dirty-page tracker; re-arming
 * the tracker once the image is taken; staging a small increment while frozen. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_pagemap.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

#define PM_PRESENT   (1ull << 63)
#define PM_SWAPPED   (1ull << 62)
#define PM_FILE      (1ull << 61)
#define PM_FRAME     ((1ull << 55) - 1)
#define PM_SWAP_TYPE 0x1full
/* The last swap type is the kernel's page-table marker (SWP_PTE_MARKER) */
#define PM_TYPE_MARKER 31

/* The staging area stays mapped from one checkpoint to the next, so that its pages
 * are there already: a fault per page costs more than the copy itself. It grows in
 * place (its pages kept), and what it gains is faulted in at once. It is not the
 * application's: never captured, tracked, or inherited by a fork. */
static char *stage_buf;
static uint64_t stage_cap;

static int grow_stage(uint64_t len)
{
	len = (len + (2ull << 20) - 1) & ~((2ull << 20) - 1);
	long m = stage_buf ? us_sc5(SYS_mremap, stage_buf, stage_cap, len, MREMAP_MAYMOVE, 0)
			   : us_sc6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m < 0 && m > -4096)
		return -1;      /* the old area, if any, is still there */
	if (!stage_buf)
		us_sc3(SYS_madvise, m, len, MADV_DONTFORK);   /* mremap keeps it */
	us_sc3(SYS_madvise, m + stage_cap, len - stage_cap, MADV_POPULATE_WRITE);
	stage_buf = (char *)m;
	stage_cap = len;
	return 0;
}

/* The survey of the memory map, taken when PREPARE arrives, before the freeze (see
 * us_survey_memory), or carried from the last capture. Kept mapped like the staging
 * area, and just as much ours. */
#define SURVEY_READ_MAX (256ul << 10)
#define SURVEY_SIZE (2 * MAPS_MAX + VM_FLAGS_MAX * sizeof(struct vm_flags) + SURVEY_READ_MAX)
/* How long flags read from smaps are used again while nothing shows a change: the
 * bound on how long a raw madvise or mlock system call can go unseen. */
#define SURVEY_CARRY_MS 1000
static struct {
	char *area;                     /* SURVEY_SIZE: two map texts, the flags, a read buffer */
	uint64_t maps_len;
	uint32_t nflags;
	uint64_t calls;                 /* us.vm_calls when it began (carried: at the capture) */
	int valid;                      /* for the capture of this PREPARE */
	int carried;                    /* the last capture's map (its own areas left out) and flags */
	long read_ms;                   /* when smaps was read for these flags */
} survey;

/* Our own scratch (s; NULL: none mapped), staging and survey areas: neither captured
 * nor tracked. */
static int is_own(const struct scratch *s, uint64_t start, uint64_t end)
{
	return (s && start >= (uint64_t)s->base && end <= (uint64_t)s->base + SCRATCH_SIZE) ||
	       (stage_buf && start >= (uint64_t)stage_buf && end <= (uint64_t)stage_buf + stage_cap) ||
	       (survey.area && start >= (uint64_t)survey.area && end <= (uint64_t)survey.area + SURVEY_SIZE);
}

/* After a fork or a restore: these areas are not in this process (MADV_DONTFORK,
 * and never in an image). */
void us_stage_forget(void)
{
	stage_buf = NULL;
	stage_cap = 0;
	survey.area = NULL;
	survey.valid = 0;
	survey.carried = 0;
}

/* Adds a run to the current mapping's record; the writer places its bytes in
 * .pages later (image_writer.c), possibly in a forked writer. With compression, runs
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
const void *run_source(struct scratch *s, uint64_t addr, uint64_t len, int readable, int mem_fd)
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

/* ---- flags of mappings ----
 * /proc/self/smaps is read once, in DATA_MAX pieces, and only the mappings with a
 * flag a restore sets again are kept: MAP_NORESERVE goes into the VMA record, the
 * madvise and mlock attributes into one MADVICE record. */
static uint32_t vm_flag_bits(const char *p, uint32_t *noreserve)
{
	static const struct { char name[3]; uint32_t bit; } known[] = {
		{ "dc", US_MADV_DONTFORK }, { "wf", US_MADV_WIPEONFORK }, { "dd", US_MADV_DONTDUMP },
		{ "hg", US_MADV_HUGEPAGE }, { "nh", US_MADV_NOHUGEPAGE }, { "lo", US_MADV_LOCKED },
		{ "lf", US_MADV_LOCKONFAULT },
	};
	uint32_t bits = 0;
	for (; *p && *p != '\n'; p++) {
		if (p[0] == ' ' || !p[1] || p[1] == ' ' || p[1] == '\n')
			continue;
		if (p[0] == 'n' && p[1] == 'r')
			*noreserve = 1;
		for (unsigned i = 0; i < sizeof known / sizeof known[0]; i++)
			if (p[0] == known[i].name[0] && p[1] == known[i].name[1])
				bits |= known[i].bit;
		p++;
	}
	return bits;
}

/* The mappings of /proc/self/smaps whose VmFlags a restore must set again, into
 * flags (at most VM_FLAGS_MAX), read through buf; their count, or -errno, or
 * -E2BIG for too many. */
static long read_smaps_flags(char *buf, size_t cap, struct vm_flags *flags)
{
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	uint64_t start = 0, end = 0;
	size_t have = 0;
	long n = 0;
	for (;;) {
		long r = us_sc3(SYS_read, fd, buf + have, cap - have);
		if (r == -EINTR)
			continue;
		if (r < 0)
			n = r;
		if (r <= 0)
			break;
		have += (size_t)r;
		char *line = buf, *stop = buf + have;
		for (char *nl = line; nl < stop && n >= 0; nl++) {
			if (*nl != '\n')
				continue;
			const char *p = line;
			if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')) {
				start = us_parse_u(&p, 16);
				p++;
				end = us_parse_u(&p, 16);
			} else if (us_startswith(p, "VmFlags:")) {
				uint32_t noreserve = 0, advice = vm_flag_bits(p + 8, &noreserve);
				if (noreserve || advice) {
					if (n == VM_FLAGS_MAX)
						n = -E2BIG;
					else
						flags[n++] = (struct vm_flags){ start, end, noreserve, advice };
				}
			}
			line = nl + 1;
		}
		if (n < 0)
			break;
		have = (size_t)(stop - line);   /* a line cut by the read: keep it for the next */
		__builtin_memmove(buf, line, have);
	}
	us_sc1(SYS_close, fd);
	return n;
}

/* The next line of a memory map text at *p, [*p, end), that is not one of our own
 * areas; NULL at the end. */
static const char *next_app_line(const struct scratch *s, const char **p, const char *end, size_t *len)
{
	while (*p < end && **p) {
		struct us_maps_line l;
		const char *line = *p;
		*p = us_maps_next(line, &l);
		if (!is_own(s, l.start, l.end)) {
			*len = (size_t)(*p - line);
			return line;
		}
	}
	return NULL;
}

/* The survey's memory map text and [b, b + b_len) list the same mappings, our own
 * areas aside. */
static int same_app_lines(const struct scratch *s, const char *b, long b_len)
{
	const char *a = survey.area, *a_end = a + survey.maps_len, *b_end = b + b_len;
	for (;;) {
		size_t la = 0, lb = 0;
		const char *x = next_app_line(s, &a, a_end, &la), *y = next_app_line(s, &b, b_end, &lb);
		if (!x || !y)
			return !x && !y;
		if (la != lb || __builtin_memcmp(x, y, la))
			return 0;
	}
}

/* The last capture's map and flags still describe the memory: smaps was read for them
 * less than SURVEY_CARRY_MS ago, no madvise or mlock call through libc began since
 * the capture, and /proc/self/maps (which costs no walk of the page tables) lists the
 * same mappings. At ten checkpoints a second, smaps is read once a second. */
static int carried_survey_holds(char *again)
{
	if (!survey.carried || us_now_ms() - survey.read_ms > SURVEY_CARRY_MS ||
	    __atomic_load_n(&us.vm_calls, __ATOMIC_SEQ_CST) != survey.calls ||
	    __atomic_load_n(&us.vm_calls_running, __ATOMIC_SEQ_CST))
		return 0;
	long len = us_read_file("/proc/self/maps", again, MAPS_MAX);
	return len > 0 && len < (long)MAPS_MAX - 1 && same_app_lines(NULL, again, len);
}

/*
 * Reading /proc/self/smaps makes the kernel walk every page table entry (about
 * 30 ms for 1 GiB here), for the few flags it shows that the memory map does not.
 * So it is read when PREPARE arrives, before the freeze, between two reads of
 * /proc/self/maps, unless the last capture's flags still hold (carried_survey_holds).
 * While frozen, the capture takes these flags if the memory map is still the same
 * (our own areas aside) and no madvise or mlock call through libc began since the
 * survey began (or the last capture, for carried flags), nor was under way then
 * (us.vm_calls, wrappers.c); otherwise it reads smaps again. A raw madvise or mlock
 * system call, not through libc, is not seen until smaps is read again: see
 * docs/architecture.md.
 */
static void survey_memory(void)
{
	survey.valid = 0;
	if (map_writer_result())   /* made here, not at WRITE: the map must not change in between */
		return;
	if (!survey.area) {
		long m = us_sc6(SYS_mmap, 0, SURVEY_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m < 0 && m > -4096)
			return;
		us_sc3(SYS_madvise, m, SURVEY_SIZE, MADV_DONTFORK);
		survey.area = (char *)m;
	}
	char *maps = survey.area, *again = maps + MAPS_MAX;
	struct vm_flags *flags = (struct vm_flags *)(again + MAPS_MAX);
	if (carried_survey_holds(again)) {
		survey.valid = 1;
		return;
	}
	survey.carried = 0;
	survey.read_ms = us_now_ms();
	survey.calls = __atomic_load_n(&us.vm_calls, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&us.vm_calls_running, __ATOMIC_SEQ_CST))
		return;
	long len = us_read_file("/proc/self/maps", maps, MAPS_MAX);
	long n = len > 0 && len < (long)MAPS_MAX - 1 ? read_smaps_flags((char *)(flags + VM_FLAGS_MAX), SURVEY_READ_MAX, flags) : -1;
	if (n < 0 || us_read_file("/proc/self/maps", again, MAPS_MAX) != len || __builtin_memcmp(maps, again, (size_t)len))
		return;
	survey.maps_len = (uint64_t)len;
	survey.nflags = (uint32_t)n;
	survey.valid = 1;
}

static uint64_t now_us(void)
{
	struct timespec ts = { 0, 0 };
	us_sc2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t us_survey_memory(void)
{
	uint64_t began = now_us();
	survey_memory();
	return now_us() - began;
}

/* The memory map read while frozen (s->maps) is the survey's, our own areas aside,
 * and no madvise or mlock call came in between. */
static int survey_still_holds(const struct scratch *s, long maps_len)
{
	if (!survey.valid || __atomic_load_n(&us.vm_calls, __ATOMIC_SEQ_CST) != survey.calls ||
	    __atomic_load_n(&us.vm_calls_running, __ATOMIC_SEQ_CST))
		return 0;
	return same_app_lines(s, s->maps, maps_len);
}

/* The map and flags this capture found, frozen, for the next PREPARE (carried_survey_holds). */
static void carry_survey(const struct scratch *s, long maps_len)
{
	survey.carried = 0;
	if (!survey.area || __atomic_load_n(&us.vm_calls_running, __ATOMIC_SEQ_CST))
		return;
	const char *p = s->maps, *line;
	size_t len = 0, n = 0;
	while ((line = next_app_line(s, &p, s->maps + maps_len, &n))) {
		__builtin_memcpy(survey.area + len, line, n);
		len += n;
	}
	survey.maps_len = len;
	__builtin_memcpy(survey.area + 2 * MAPS_MAX, s->vm_flags, (size_t)s->nvm_flags * sizeof *s->vm_flags);
	survey.nflags = s->nvm_flags;
	survey.calls = __atomic_load_n(&us.vm_calls, __ATOMIC_SEQ_CST);
	survey.carried = 1;
}

/* The flags of every mapping but our own, from the survey or read now. */
static void read_vm_flags(struct scratch *s, long maps_len)
{
	long n;
	if (survey_still_holds(s, maps_len)) {
		n = survey.nflags;
		__builtin_memcpy(s->vm_flags, survey.area + 2 * MAPS_MAX, (size_t)n * sizeof *s->vm_flags);
	} else {
		if (survey.valid)
			us_log("survey-stale", "the memory map or its flags changed after PREPARE: smaps read again, frozen");
		survey.read_ms = us_now_ms();
		n = read_smaps_flags(s->data, DATA_MAX, s->vm_flags);
	}
	survey.valid = 0;
	if (n == -E2BIG) {
		capture_fail(s, "more than 65536 mappings with flags", NULL, 0);
		return;
	}
	if (n < 0) {
		capture_fail(s, "cannot read /proc/self/smaps", NULL, n);
		return;
	}
	s->nvm_flags = 0;
	for (long i = 0; i < n; i++)
		if (!is_own(s, s->vm_flags[i].start, s->vm_flags[i].end))
			s->vm_flags[s->nvm_flags++] = s->vm_flags[i];
	carry_survey(s, maps_len);
}

/* The flags of the mapping holding [start, end): mappings are asked in ascending
 * order, the mprotect tracker's pieces of one mapping in turn. */
static const struct vm_flags *vm_flags_of(struct scratch *s, uint64_t start)
{
	while (s->vm_flags_at < s->nvm_flags && s->vm_flags[s->vm_flags_at].end <= start)
		s->vm_flags_at++;
	const struct vm_flags *f = &s->vm_flags[s->vm_flags_at];
	return s->vm_flags_at < s->nvm_flags && f->start <= start ? f : NULL;
}

static void capture_madvice(struct scratch *s)
{
	struct us_rec_madvice h = { 0, 0 };
	for (uint32_t i = 0; i < s->nvm_flags; i++)
		h.count += s->vm_flags[i].advice != 0;
	if (!h.count)
		return;
	rec_begin(s, US_REC_MADVICE);
	meta_add(s, &h, sizeof h);
	for (uint32_t i = 0; i < s->nvm_flags; i++) {
		const struct vm_flags *f = &s->vm_flags[i];
		struct us_madvice m = { f->start, f->end, f->advice, 0 };
		if (f->advice)
			meta_add(s, &m, sizeof m);
	}
	rec_end(s);
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
	int *mem_fd;                    /* /proc/self/mem, opened when first needed */
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

static void place(struct vma_pass *x, uint64_t start, uint64_t end, uint64_t c)
{
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

/* What a page of a private file mapping that PAGEMAP_SCAN calls swapped really is.
 * Under the uffd tracker it is most often a marker, not swap: the kernel puts one
 * in a write-protected entry that has no page (never touched, or dropped by
 * MADV_DONTNEED), and a read there gets the file's page. Such a page is not ours
 * to save. Real swap, or a page in migration, holds our copy-on-write data. The
 * swap type in /proc/self/pagemap tells them apart. When the kernel hides it (no
 * CAP_SYS_ADMIN), a full image keeps the page (the file's contents, saved by the
 * writer after the thaw), and an increment, where "unchanged" would be wrong,
 * reads the page through /proc/self/mem, which brings in whichever it is, and
 * looks at the entry again. */
static uint64_t swapped_page(struct vma_pass *x, uint64_t page, uint64_t e, uint64_t c)
{
	if ((e & PM_SWAPPED) && (e & PM_FRAME)) {
		if ((e & PM_SWAP_TYPE) == PM_TYPE_MARKER)
			return 0;
	} else if ((e & PM_SWAPPED) && x->delta) {
		char byte;
		if (*x->mem_fd < 0)
			*x->mem_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDONLY | O_CLOEXEC, 0);
		if (*x->mem_fd < 0 || us_sc4(SYS_pread64, *x->mem_fd, &byte, 1, page) != 1 ||
		    us_sc4(SYS_pread64, x->pm_fd, &e, 8, page / US_PAGE_SIZE * 8) != 8)
			return c;       /* keep it: saving the file's page costs space, not data */
	}
	if (e & PM_SWAPPED)
		return c;
	if (!(e & PM_PRESENT))
		return 0;
	return US_PAGE_IS_PRESENT | (e & PM_FILE ? US_PAGE_IS_FILE : 0) | (c & US_PAGE_IS_WRITTEN);
}

static void classify(void *ctx, uint64_t start, uint64_t end, uint64_t c)
{
	struct vma_pass *x = ctx;
	if (!x->anon_only || !(c & US_PAGE_IS_SWAPPED) || (c & US_PAGE_IS_PRESENT) || us.tracker != US_TRACK_UFFD) {
		place(x, start, end, c);
		return;
	}
	for (uint64_t at = start; at < end && !x->s->failed;) {
		uint64_t n = (end - at) / US_PAGE_SIZE < PM_BATCH ? (end - at) / US_PAGE_SIZE : PM_BATCH;
		if (us_sc4(SYS_pread64, x->pm_fd, x->s->pm, n * 8, at / US_PAGE_SIZE * 8) != (long)(n * 8)) {
			place(x, at, end, c);
			return;
		}
		for (uint64_t k = 0; k < n; k++, at += US_PAGE_SIZE)
			place(x, at, at + US_PAGE_SIZE, swapped_page(x, at, x->s->pm[k], c));
	}
}

/* Without PAGEMAP_SCAN (kernels before 6.7): /proc/self/pagemap, page by page. */
static void walk_pagemap(struct vma_pass *x, uint64_t start, uint64_t end)
{
	uint64_t npages = (end - start) / US_PAGE_SIZE;
	for (uint64_t i = 0; i < npages && !x->s->failed; i += PM_BATCH) {
		uint64_t n = npages - i < PM_BATCH ? npages - i : PM_BATCH;
		long got = us_sc4(SYS_pread64, x->pm_fd, x->s->pm, n * 8, (start / US_PAGE_SIZE + i) * 8);
		if (got != (long)(n * 8)) {
			capture_fail(x->s, "cannot read /proc/self/pagemap", NULL, got < 0 ? got : -EIO);
			return;
		}
		for (uint64_t k = 0; k < n; k++) {
			uint64_t e = x->s->pm[k], c = 0;
			if (e & PM_PRESENT) c |= US_PAGE_IS_PRESENT;
			if (e & PM_SWAPPED) c |= US_PAGE_IS_SWAPPED;
			if (e & PM_FILE) c |= US_PAGE_IS_FILE;
			uint64_t page = start + (i + k) * US_PAGE_SIZE;
			place(x, page, page + US_PAGE_SIZE, c);
		}
	}
}

/* An incremental capture's walk of a mapping under the uffd tracker: one
 * PAGEMAP_SCAN tells whether the tracker covers the mapping, lists its pages as a
 * delta and write-protects the written ones again, for the next image; arm_tracker
 * then leaves the mapping alone. Returns 1 when done. Otherwise x is as it was,
 * not a delta: the mapping is not tracked (EPERM before anything was protected),
 * or the walk failed midway, some written pages maybe protected already, and only
 * the whole mapping is right. */
static int scan_delta_rearming(struct vma_pass *x, uint64_t start, uint64_t end, uint64_t mask)
{
	struct scratch *s = x->s;
	struct vma_pass before = *x;
	size_t runs_at = s->meta_len;
	x->delta = 1;
	s->rearming = 1;
	int r = us_tracker_scan(x->pm_fd, start, end, mask, US_PM_SCAN_WP_MATCHING | US_PM_SCAN_CHECK_WPASYNC,
				s->regions, REGIONS_MAX, classify, x);
	if (s->failed)
		return 1;
	if (r == 0) {
		if (s->nrearmed < REARMED_MAX)
			s->rearmed[s->nrearmed++] = start;
		return 1;
	}
	s->meta_len = runs_at;
	*x = before;
	return 0;
}

/* The size of SysV segment shmid (its mappings show it as their inode). */
static uint64_t sysv_size(int shmid)
{
	struct shmid_ds ds;
	return us_sc3(SYS_shmctl, shmid, IPC_STAT, &ds) < 0 ? 0 : ds.shm_segsz;
}

static void capture_vma(struct scratch *s, const struct us_maps_line *v, int pm_fd, int *mem_fd)
{
	/* the mprotect tracker's read-only pages are the application's writable ones */
	uint32_t prot = us.tracker == US_TRACK_MPROTECT && !v->shared ? us_mp_app_prot(v->start, v->prot) : v->prot;
	const struct vm_flags *f = vm_flags_of(s, v->start);
	struct us_rec_vma r = { .start = v->start, .end = v->end, .prot = prot,
		.flags = (v->shared ? US_VMA_F_SHARED : 0) | (f && f->noreserve ? US_VMA_F_NORESERVE : 0),
		.file_offset = v->offset,
		.dev = v->dev, .inode = v->inode, .path_len = (uint32_t)v->path_len };
	int save_all = 0, anon_only = 0, sysv = 0;

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
	else if (v->shared && us_startswith(v->path, "/SYSV"))
		r.kind = US_VMA_SHMEM, sysv = 1;      /* its contents are in the IPC record */
	else if (v->shared && (v->path_len == 0 || v->path[0] == '[' || path_ends(v, " (deleted)") ||
			       us_startswith(v->path, "/memfd:")))
		r.kind = US_VMA_SHMEM, save_all = 1;      /* no name to map again: keep it all */
	else if (v->path_len == 0 || v->path[0] == '[')
		r.kind = US_VMA_ANON;
	else if (!v->shared && path_ends(v, " (deleted)"))
		r.kind = US_VMA_ANON, save_all = 1;       /* the file is gone: keep the contents */
	else
		r.kind = US_VMA_FILE, anon_only = !v->shared;

	int want_pages = r.kind == US_VMA_ANON || r.kind == US_VMA_HEAP || r.kind == US_VMA_STACK ||
			 (r.kind == US_VMA_SHMEM && !sysv) || anon_only;
	struct vma_pass x = { .s = s, .pm_fd = pm_fd, .mem_fd = mem_fd,
		.readable = (v->prot & PROT_READ) != 0, .anon_only = anon_only };

	r.object_size = sysv ? sysv_size((int)v->inode) : v->end - v->start;
	size_t hdr_at = s->meta_len + sizeof(struct us_rec_hdr);
	rec_begin(s, US_REC_VMA);
	meta_add(s, &r, sizeof r);
	uint64_t mask = SCAN_CATEGORIES | (anon_only ? US_PAGE_IS_FILE : 0);
	/* Incremental: a mapping the tracker covers entirely is a delta; any other is
	 * captured whole and marked complete. */
	int scanned = 0;
	if (want_pages && !save_all && s->incremental && us.tracker == US_TRACK_UFFD && s->scan_works)
		scanned = scan_delta_rearming(&x, v->start, v->end, mask);
	else if (want_pages && !save_all && s->incremental)
		x.delta = us_tracker_covers(v->start, v->end, pm_fd, s->regions, REGIONS_MAX);
	if (s->incremental && !x.delta && !s->failed)
		((struct us_rec_vma *)(s->meta + hdr_at))->flags |= US_VMA_F_COMPLETE;

	if (want_pages && save_all) {
		place(&x, v->start, v->end, US_PAGE_IS_PRESENT);
	} else if (want_pages && !scanned && (!s->scan_works ||
		   us_tracker_scan(pm_fd, v->start, v->end, mask, 0, s->regions, REGIONS_MAX, classify, &x) < 0)) {
		if (x.delta)
			capture_fail(s, "PAGEMAP_SCAN failed on a tracked mapping", NULL, 0);
		s->scan_works = 0;
		x.type = PG_SKIP;
		x.npages = 0;
		walk_pagemap(&x, v->start, v->end);
	}
	if (want_pages)
		flush_pages(&x);
	meta_add(s, v->path, v->path_len);
	if (!s->failed)
		((struct us_rec_vma *)(s->meta + hdr_at))->nruns = x.nruns;
	rec_end(s);
}

/* The restorer's own mappings, next to the process's while it restores them. */
#define RESTORER_MAPS 16

/* A process with more mappings than a restore can make again fails the checkpoint. */
static void check_map_count(struct scratch *s)
{
	uint64_t count = 0, own = 0;
	for (const char *p = s->maps; *p;) {
		struct us_maps_line v;
		p = us_maps_next(p, &v);
		count++;
		own += is_own(s, v.start, v.end);
	}
	char text[32];
	if (us_read_file("/proc/sys/vm/max_map_count", text, sizeof text) <= 0)
		return;
	const char *t = text;
	uint64_t max = us_parse_u(&t, 10);
	if (count - own + RESTORER_MAPS <= max)
		return;
	char why[160];
	struct us_buf b = { why, 0, sizeof why };
	us_putu(&b, count - own);
	us_put(&b, " memory mappings: a restore needs 16 more within vm.max_map_count (");
	us_putu(&b, max);
	us_put(&b, "); raise it");
	capture_fail(s, us_term(&b), NULL, 0);
}

void capture_memory(struct scratch *s)
{
	int pm_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	if (pm_fd < 0) {
		capture_fail(s, "cannot open /proc/self/pagemap", NULL, pm_fd);
		return;
	}
	int mem_fd = -1;
	long maps_len = us_read_file("/proc/self/maps", s->maps, MAPS_MAX);
	if (maps_len >= (long)MAPS_MAX - 1)
		capture_fail(s, "memory mappings: /proc/self/maps is larger than 16 MiB", NULL, 0);
	else if (maps_len < 0)
		capture_fail(s, "cannot read /proc/self/maps", NULL, maps_len);
	else
		read_vm_flags(s, maps_len);
	if (!s->failed) {
		check_map_count(s);
		for (const char *p = s->maps; *p && !s->failed;) {
			struct us_maps_line v;
			p = us_maps_next(p, &v);
			if (v.end <= v.start || us_maps_path_is(&v, "[vsyscall]"))
				continue;
			if (is_own(s, v.start, v.end))
				continue;
			if (!v.shared)
				s->private_bytes += v.end - v.start;
			if (us.tracker != US_TRACK_MPROTECT || v.shared) {
				capture_vma(s, &v, pm_fd, &mem_fd);
				continue;
			}
			/* each piece has one protection of the application's: see us_mp_piece_end */
			for (uint64_t at = v.start; at < v.end && !s->failed;) {
				struct us_maps_line piece = v;
				piece.start = at;
				piece.end = us_mp_piece_end(at, v.end);
				piece.offset = v.offset + (at - v.start);
				capture_vma(s, &piece, pm_fd, &mem_fd);
				at = piece.end;
			}
		}
	}
	us_sc1(SYS_close, pm_fd);
	if (mem_fd >= 0)
		us_sc1(SYS_close, mem_fd);
	if (!s->failed)
		capture_madvice(s);
}

/* After an image is written, every private mapping is tracked again from a clean
 * state, so that the next image can be relative to this one. */
void arm_tracker(struct scratch *s)
{
	if (us.tracker == US_TRACK_NONE)
		return;
	if (us.tracker == US_TRACK_MPROTECT) {
		/* pages made writable split the mappings: undo that, then look again */
		us_mp_reset();
		us_read_file("/proc/self/maps", s->maps, MAPS_MAX);
	}
	int pm_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	uint32_t rearmed = 0;
	for (const char *p = s->maps; *p;) {
		struct us_maps_line v;
		p = us_maps_next(p, &v);
		if (!us_tracker_wants(&v))
			continue;
		if (is_own(s, v.start, v.end))
			continue;
		if (rearmed < s->nrearmed && s->rearmed[rearmed] == v.start) {
			rearmed++;      /* by the capture's walk already */
			continue;
		}
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

int stage_pages(struct scratch *s)
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
						capture_fail(s, "cannot read memory to stage", NULL, -EFAULT);
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

