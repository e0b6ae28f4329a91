/* Which pages changed since the last checkpoint.
 *
 * uffd (default): userfaultfd in asynchronous write-protect mode. After each
 * checkpoint every private mapping is registered and write-protected; the kernel
 * itself clears a page's protection on its first write, by the application or by
 * a system call, with no signal. PAGEMAP_SCAN then reports the written pages.
 * none: no tracking, every image is full.
 * A mapping the tracker does not cover (new since the last checkpoint, grown, or
 * refused by userfaultfd) is captured whole: nothing is ever missed. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include "internal.h"
#include "../../include/us_image.h"
#include "../common/us_fmt.h"
#include "../common/us_pagemap.h"
#include "../common/us_procfs.h"

extern const ptrdiff_t __rseq_offset __attribute__((weak));

const char *us_tracker_name(void)
{
	return us.tracker == US_TRACK_UFFD ? "uffd-wp-async" : us.tracker == US_TRACK_MPROTECT ? "mprotect" : "none";
}

void us_tracker_init(const char *wanted)
{
	us.tracked_seq = 0;
	us.pending_seq = 0;
	if (us.uffd > 0 && us.uffd_ino && us_fd_inode(us.uffd) == us.uffd_ino)
		us_sc1(SYS_close, us.uffd);   /* never a descriptor the application has now */
	us.uffd = -1;
	us.uffd_ino = 0;
	if (us.tracker == US_TRACK_MPROTECT)
		us_mp_reset();
	us.tracker = US_TRACK_NONE;
	if (wanted && us_streq(wanted, "none"))
		return;
	if (wanted && us_streq(wanted, "mprotect")) {
		us_mp_init();
		us.tracker = US_TRACK_MPROTECT;
		return;
	}
	int fd = (int)us_sc1(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | US_UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		us_log("tracker", "userfaultfd unavailable: every checkpoint of this process is full");
		return;
	}
	struct uffdio_api api = { .api = UFFD_API,
		.features = US_UFFD_FEATURE_WP_ASYNC | US_UFFD_FEATURE_WP_UNPOPULATED };
	if (us_sc3(SYS_ioctl, fd, UFFDIO_API, &api) < 0) {
		us_sc1(SYS_close, fd);
		us_log("tracker", "userfaultfd lacks asynchronous write-protect: every checkpoint is full");
		return;
	}
	us.uffd = us_fd_move_high(fd);   /* out of the way of the application's close loops */
	us.uffd_ino = us_fd_inode(us.uffd);
	us.tracker = US_TRACK_UFFD;
}

void us_tracker_ensure_intact(void)
{
	if (us.tracker != US_TRACK_UFFD || us_fd_inode(us.uffd) == us.uffd_ino)
		return;
	us_log("tracker-lost", "the application closed the userfaultfd; this image is full and tracking starts again");
	us.uffd_ino = 0;   /* the number is not ours any more: init must not close it */
	us_tracker_init(us.tracker_wanted);
	us_tracker_arm_all();
}

/* Whether a private mapping may be write-protected at all: a signal frame needs a
 * writable stack. A refusal leaves it untracked, which only means the next image
 * captures it whole. */
int us_tracker_may_arm(uint64_t start, uint64_t end, int is_stack)
{
	if (us.tracker != US_TRACK_MPROTECT)
		return 1;
	if (is_stack)
		return 0;
	for (int i = 0, n = us_slot_count(); i < n; i++) {
		const struct us_thread_slot *t = us_slot_at(i);
		if (t->tid && t->ctx.rsp >= start && t->ctx.rsp < end)
			return 0;
	}
	return 1;
}

/* Whether [start, end) holds memory that must stay writable under the mprotect
 * tracker: what the fault path itself writes, and where the kernel writes on its
 * own, in each thread's TCB: rseq (on every return to user space), clear-tid and
 * the robust futex list. A fault inside the kernel kills the thread instead of
 * signalling it. */
static int must_stay_writable(uint64_t start, uint64_t end)
{
	if (us_mp_owns(start, end))
		return 1;
	for (int i = 0, n = us_slot_count(); i < n; i++) {
		const struct us_thread_slot *t = us_slot_at(i);
		uint64_t rseq = t->fs_base + (&__rseq_offset ? (uint64_t)__rseq_offset : 0);
		const uint64_t spans[][2] = { { t->fs_base, 1 }, { rseq, 32 }, { t->clear_tid, 4 },
					      { t->robust_head, 3 * sizeof(uint64_t) } };
		for (unsigned k = 0; t->tid && k < sizeof spans / sizeof spans[0]; k++)
			if (spans[k][0] && spans[k][0] < end && spans[k][0] + spans[k][1] > start)
				return 1;
	}
	return 0;
}

/* Protects [start, end) except the pages that must stay writable, which the
 * kernel may have merged into one mapping with the application's memory (the
 * main thread's TCB, our own small mappings): halving around them keeps the rest
 * tracked. Neighbouring pieces are protected together. */
struct arm_run { uint64_t start, end; uint32_t prot; };

static void arm_flush(struct arm_run *run)
{
	if (run->end > run->start)
		us_mp_arm(run->start, run->end, run->prot);
	run->start = run->end = 0;
}

static void arm_around(struct arm_run *run, uint64_t start, uint64_t end)
{
	if (!must_stay_writable(start, end)) {
		if (run->end != start) {
			arm_flush(run);
			run->start = start;
		}
		run->end = end;
		return;
	}
	if (end - start <= US_PAGE_SIZE)
		return;   /* left writable: captured whole */
	uint64_t mid = start + (end - start) / US_PAGE_SIZE / 2 * US_PAGE_SIZE;
	arm_around(run, start, mid);
	arm_around(run, mid, end);
}

int us_tracker_page_written(uint64_t page, uint64_t categories)
{
	return us.tracker == US_TRACK_MPROTECT ? us_mp_dirty(page) : (categories & US_PAGE_IS_WRITTEN) != 0;
}

static void note_untracked(void *ctx, uint64_t start, uint64_t end, uint64_t c)
{
	(void)start, (void)end;
	if (!(c & US_PAGE_IS_WPALLOWED))
		*(int *)ctx = 1;
}

int us_tracker_covers(uint64_t start, uint64_t end, int pm_fd, struct us_page_region *vec, uint64_t vec_len)
{
	if (us.tracker == US_TRACK_MPROTECT)
		return us_mp_covers(start, end);
	int untracked = 0;
	if (us.tracker != US_TRACK_UFFD || us_tracker_scan(pm_fd, start, end, US_PAGE_IS_WPALLOWED, 0, vec, vec_len, note_untracked, &untracked) < 0)
		return 0;
	return !untracked;
}

static int uffd_register(uint64_t start, uint64_t end)
{
	struct uffdio_register reg = { .range = { start, end - start }, .mode = UFFDIO_REGISTER_MODE_WP };
	long r = us_sc3(SYS_ioctl, us.uffd, UFFDIO_REGISTER, &reg);
	return r < 0 && r != -EBUSY ? -1 : 0;
}

static void uffd_protect(uint64_t start, uint64_t end)
{
	struct uffdio_writeprotect wp = { .range = { start, end - start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	us_sc3(SYS_ioctl, us.uffd, UFFDIO_WRITEPROTECT, &wp);
}

void us_tracker_arm_range(uint64_t start, uint64_t end, uint32_t prot)
{
	if (us.tracker == US_TRACK_MPROTECT) {
		struct arm_run run = { 0, 0, prot };
		arm_around(&run, start, end);
		arm_flush(&run);
		return;
	}
	if (us.tracker == US_TRACK_UFFD && uffd_register(start, end) == 0)
		uffd_protect(start, end);
}

/* After a checkpoint: write-protects again only the pages written since the last
 * one (PAGEMAP_SCAN reports and protects them in one walk), instead of every page
 * of the mapping, which costs the freeze a write to every page table entry. A new
 * registration has no protected page yet, so all its pages count as written. */
void us_tracker_rearm(uint64_t start, uint64_t end, uint32_t prot, int pm_fd, struct us_page_region *vec, uint64_t vec_len)
{
	if (us.tracker != US_TRACK_UFFD) {
		us_tracker_arm_range(start, end, prot);
		return;
	}
	if (uffd_register(start, end) < 0)
		return;
	for (uint64_t at = start; at < end;) {
		struct us_pm_scan_arg a = {
			.size = sizeof a, .flags = US_PM_SCAN_WP_MATCHING, .start = at, .end = end,
			.vec = (uint64_t)vec, .vec_len = vec_len,
			.category_anyof_mask = US_PAGE_IS_WRITTEN, .return_mask = US_PAGE_IS_WRITTEN,
		};
		if (pm_fd < 0 || us_sc3(SYS_ioctl, pm_fd, US_PAGEMAP_SCAN, &a) < 0 || a.walk_end <= at) {
			uffd_protect(at, end);
			return;
		}
		at = a.walk_end;
	}
}

/* Walks [start, end) with PAGEMAP_SCAN, calling fn for each region of pages that
 * share the same categories among those of mask. Ask only for what is needed:
 * US_PAGE_IS_FILE costs a look at every page's struct page, five times the walk.
 * flags: 0, or US_PM_SCAN_WP_MATCHING | US_PM_SCAN_CHECK_WPASYNC to write-protect
 * the written pages in the same walk. Returns 0, or -errno if the scan is not
 * possible (-EPERM: the range is not tracked, nothing was protected). */
int us_tracker_scan(int pm_fd, uint64_t start, uint64_t end, uint64_t mask, uint64_t flags, struct us_page_region *vec,
		    uint64_t vec_len, void (*fn)(void *ctx, uint64_t start, uint64_t end, uint64_t categories), void *ctx)
{
	uint64_t at = start;
	while (at < end) {
		struct us_pm_scan_arg a = {
			.size = sizeof a, .flags = flags, .start = at, .end = end,
			.vec = (uint64_t)vec, .vec_len = vec_len, .return_mask = mask,
		};
		long n = us_sc3(SYS_ioctl, pm_fd, US_PAGEMAP_SCAN, &a);
		if (n < 0)
			return (int)n;
		/* Report each page once and in order, whatever the kernel's batching. */
		uint64_t covered = at;
		for (long i = 0; i < n; i++) {
			uint64_t from = vec[i].start > covered ? vec[i].start : covered;
			uint64_t to = vec[i].end < end ? vec[i].end : end;
			if (to <= from)
				continue;
			if (from > covered)   /* pages no category describes */
				fn(ctx, covered, from, 0);
			fn(ctx, from, to, vec[i].categories);
			covered = to;
		}
		uint64_t walked = a.walk_end ? a.walk_end : end;
		if (walked > end)
			walked = end;
		if (walked > covered) {
			fn(ctx, covered, walked, 0);
			covered = walked;
		}
		if (covered <= at)
			return -EIO;
		at = covered;
	}
	return 0;
}

/* Private mappings other than the kernel's own (vdso and friends) are tracked. */
int us_tracker_wants(const struct us_maps_line *l)
{
	return !l->shared && l->start < l->end &&
	       !(l->path_len && l->path[0] == '[' && (us_maps_path_is(l, "[vdso]") || us_maps_path_is(l, "[vvar]") ||
						     us_maps_path_is(l, "[vvar_vclock]") || us_maps_path_is(l, "[vsyscall]")));
}

static long map_scratch(uint64_t len, int shared)
{
	long m = us_sc6(SYS_mmap, 0, len, 3 /* PROT_READ|PROT_WRITE */,
			(shared ? 0x01 : 0x02) | 0x20 | 0x4000 /* SHARED or PRIVATE, ANON, NORESERVE */, -1, 0);
	return m < 0 && m > -4096 ? 0 : m;
}


/* After a restore: track every private mapping from the restored state. */
void us_tracker_arm_all(void)
{
	if (us.tracker == US_TRACK_NONE)
		return;
	if (us.tracker == US_TRACK_MPROTECT)
		us_mp_reset();
	const uint64_t cap = 16ull << 20;
	long buf = map_scratch(cap, 0);
	if (!buf)
		return;
	us_read_file("/proc/self/maps", (char *)buf, cap);
	for (const char *p = (char *)buf; *p;) {
		struct us_maps_line l;
		p = us_maps_next(p, &l);
		if (us_tracker_wants(&l) && (l.start < (uint64_t)buf || l.start >= (uint64_t)buf + cap) &&
		    us_tracker_may_arm(l.start, l.end, us_maps_path_is(&l, "[stack]")))
			us_tracker_arm_range(l.start, l.end, l.prot);
	}
	us_sc2(SYS_munmap, buf, cap);
	us_mp_release_kernel_writes();
}

/* ---- fork ----
 * A forked child continues incrementally against its parent's base image. The
 * mprotect tracker's protections, bitmap and handler are simply inherited. A
 * userfaultfd registration is not: the kernel drops it in the child, and with it
 * the record of which pages were written. So the parent describes its tracked
 * memory right after fork() returns, in a shared mapping the child waits on:
 * tracked and clean, tracked and written, or untracked. Written since the base
 * includes everything written before fork (later writes by the parent only add
 * pages). The child registers the tracked ranges and write-protects the clean
 * ones; untracked ones stay unregistered, so they are saved whole. */
enum { FORK_PENDING, FORK_READY, FORK_FAILED };
enum { SPAN_CLEAN, SPAN_WRITTEN, SPAN_UNTRACKED };

struct fork_span {
	uint64_t start, end;
	uint64_t type;
};

#define FORK_MAP_SIZE   (64ull << 20)
#define FORK_SPANS_MAX  (1u << 20)
#define FORK_MAPS_MAX   (16ull << 20)
#define FORK_VEC_LEN    65536u

struct us_fork_handover {
	volatile int state;
	uint32_t count;
	struct fork_span spans[FORK_SPANS_MAX];
	char maps[FORK_MAPS_MAX];
	struct us_page_region vec[FORK_VEC_LEN];
};
_Static_assert(sizeof(struct us_fork_handover) <= FORK_MAP_SIZE, "fork handover too large");

struct us_fork_handover *us_tracker_fork_begin(void)
{
	if (us.tracker != US_TRACK_UFFD || !us.tracked_seq)
		return 0;
	struct us_fork_handover *h = (void *)map_scratch(FORK_MAP_SIZE, 1);
	if (h)
		h->state = FORK_PENDING;
	return h;
}

static void add_span(void *ctx, uint64_t start, uint64_t end, uint64_t c)
{
	struct us_fork_handover *h = ctx;
	uint64_t type = !(c & US_PAGE_IS_WPALLOWED) ? SPAN_UNTRACKED : (c & US_PAGE_IS_WRITTEN) ? SPAN_WRITTEN : SPAN_CLEAN;
	struct fork_span *last = h->count ? &h->spans[h->count - 1] : 0;
	if (last && last->end == start && last->type == type) {
		last->end = end;
		return;
	}
	if (h->count == FORK_SPANS_MAX) {
		h->state = FORK_FAILED;
		return;
	}
	h->spans[h->count++] = (struct fork_span){ start, end, type };
}

void us_tracker_fork_end(struct us_fork_handover *h, int forked)
{
	if (!h)
		return;
	if (forked) {
		int pm_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
		long n = us_read_file("/proc/self/maps", h->maps, FORK_MAPS_MAX);
		if (pm_fd < 0 || n < 0 || n >= (long)FORK_MAPS_MAX - 1)
			h->state = FORK_FAILED;
		for (const char *p = h->maps; *p && h->state == FORK_PENDING;) {
			struct us_maps_line l;
			p = us_maps_next(p, &l);
			if (us_tracker_wants(&l) && (l.end <= (uint64_t)h || l.start >= (uint64_t)h + FORK_MAP_SIZE) &&
			    us_tracker_scan(pm_fd, l.start, l.end, US_PAGE_IS_WPALLOWED | US_PAGE_IS_WRITTEN, 0,
					    h->vec, FORK_VEC_LEN, add_span, h) < 0)
				h->state = FORK_FAILED;
		}
		if (pm_fd >= 0)
			us_sc1(SYS_close, pm_fd);
		__atomic_store_n(&h->state, h->state == FORK_PENDING ? FORK_READY : FORK_FAILED, __ATOMIC_RELEASE);
	}
	us_sc2(SYS_munmap, h, FORK_MAP_SIZE);
}

/* In the child: waits for the parent's description (a few milliseconds), then
 * tracks from it. Anything amiss makes the child's next image full. */
static int track_from_parent(struct us_fork_handover *h)
{
	int state = FORK_PENDING;
	for (int i = 0; i < 10000 && (state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE)) == FORK_PENDING; i++) {
		struct timespec ts = { 0, 1000000 };
		us_sc2(SYS_nanosleep, &ts, 0);
	}
	if (state != FORK_READY || us.tracker != US_TRACK_UFFD)
		return 0;
	for (uint32_t i = 0; i < h->count; i++) {
		const struct fork_span *sp = &h->spans[i];
		if (sp->type == SPAN_UNTRACKED)
			continue;
		uint64_t end = sp->end;
		while (i + 1 < h->count && h->spans[i + 1].type != SPAN_UNTRACKED && h->spans[i + 1].start == end)
			end = h->spans[++i].end;
		struct uffdio_register reg = { .range = { sp->start, end - sp->start }, .mode = UFFDIO_REGISTER_MODE_WP };
		if (us_sc3(SYS_ioctl, us.uffd, UFFDIO_REGISTER, &reg) < 0)
			return 0;
	}
	for (uint32_t i = 0; i < h->count; i++) {
		const struct fork_span *sp = &h->spans[i];
		struct uffdio_writeprotect wp = { .range = { sp->start, sp->end - sp->start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (sp->type == SPAN_CLEAN && us_sc3(SYS_ioctl, us.uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
			return 0;
	}
	return 1;
}

void us_tracker_after_fork(struct us_fork_handover *h)
{
	if (us.tracker == US_TRACK_MPROTECT)
		return;
	uint64_t seq = us.tracked_seq;
	us_tracker_init(us.tracker_wanted);
	if (h && track_from_parent(h))
		us.tracked_seq = seq;
	else
		us.base_vpid = us.vpid;
	if (h)
		us_sc2(SYS_munmap, h, FORK_MAP_SIZE);
}
