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
#include "internal.h"
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
	if (us.uffd > 0)
		us_sc1(SYS_close, us.uffd);
	us.uffd = -1;
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
	us.uffd = fd;
	us.tracker = US_TRACK_UFFD;
}

/* Registers and write-protects one private mapping. A refusal leaves it untracked,
 * which only means the next image captures it whole. */
int us_tracker_may_arm(uint64_t start, uint64_t end, int is_stack)
{
	if (us.tracker != US_TRACK_MPROTECT)
		return 1;
	/* a fault there could not be handled: a signal frame needs a writable stack, and
	 * the freeze handler and checkpoint thread write our own state */
	if (is_stack || us_mp_owns(start, end))
		return 0;
	/* nor where the kernel writes on its own: rseq (every return to user space),
	 * clear-tid and the robust futex list, all in each thread's TCB */
	for (int i = 0; i < US_MAX_THREADS; i++) {
		const struct us_thread_slot *t = &us.slots[i];
		const uint64_t kernel_writes[] = { t->ctx.rsp, t->fs_base, t->fs_base + (&__rseq_offset ? (uint64_t)__rseq_offset : 0),
						   t->clear_tid, t->robust_head };
		for (unsigned k = 0; t->tid && k < sizeof kernel_writes / sizeof kernel_writes[0]; k++)
			if (kernel_writes[k] >= start && kernel_writes[k] < end)
				return 0;
	}
	return 1;
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
	if (us.tracker != US_TRACK_UFFD || us_tracker_scan(pm_fd, start, end, vec, vec_len, note_untracked, &untracked) < 0)
		return 0;
	return !untracked;
}

void us_tracker_arm_range(uint64_t start, uint64_t end, uint32_t prot)
{
	if (us.tracker == US_TRACK_MPROTECT) {
		us_mp_arm(start, end, prot);
		return;
	}
	if (us.tracker != US_TRACK_UFFD)
		return;
	struct uffdio_register reg = { .range = { start, end - start }, .mode = UFFDIO_REGISTER_MODE_WP };
	long r = us_sc3(SYS_ioctl, us.uffd, UFFDIO_REGISTER, &reg);
	if (r < 0 && r != -EBUSY)
		return;
	struct uffdio_writeprotect wp = { .range = { start, end - start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	us_sc3(SYS_ioctl, us.uffd, UFFDIO_WRITEPROTECT, &wp);
}

/* Walks [start, end) with PAGEMAP_SCAN, calling fn for each region of pages that
 * share the same categories. Returns -1 if the scan is not possible. */
int us_tracker_scan(int pm_fd, uint64_t start, uint64_t end, struct us_page_region *vec, uint64_t vec_len,
		    void (*fn)(void *ctx, uint64_t start, uint64_t end, uint64_t categories), void *ctx)
{
	uint64_t at = start;
	while (at < end) {
		struct us_pm_scan_arg a = {
			.size = sizeof a, .start = at, .end = end,
			.vec = (uint64_t)vec, .vec_len = vec_len,
			.return_mask = US_PAGE_IS_WPALLOWED | US_PAGE_IS_WRITTEN | US_PAGE_IS_FILE |
				       US_PAGE_IS_PRESENT | US_PAGE_IS_SWAPPED | US_PAGE_IS_PFNZERO,
		};
		long n = us_sc3(SYS_ioctl, pm_fd, US_PAGEMAP_SCAN, &a);
		if (n < 0)
			return -1;
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
			return -1;
		at = covered;
	}
	return 0;
}

/* After a restore: track every private mapping from the restored state. */
void us_tracker_arm_all(void)
{
	if (us.tracker == US_TRACK_NONE)
		return;
	if (us.tracker == US_TRACK_MPROTECT)
		us_mp_reset();
	const uint64_t cap = 16ull << 20;
	long buf = us_sc6(SYS_mmap, 0, cap, 3 /* PROT_READ|PROT_WRITE */, 0x22 | 0x4000 /* PRIVATE|ANON|NORESERVE */, -1, 0);
	if (buf < 0 && buf > -4096)
		return;
	char *text = (char *)buf;
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	uint64_t n = 0;
	for (long r; fd >= 0 && (r = us_sc3(SYS_read, fd, text + n, cap - 1 - n)) > 0;)
		n += (uint64_t)r;
	if (fd >= 0)
		us_sc1(SYS_close, fd);
	text[n] = 0;
	for (const char *p = text; *p;) {
		struct us_maps_line l;
		p = us_maps_next(p, &l);
		int special = us_maps_path_is(&l, "[vdso]") || us_maps_path_is(&l, "[vvar]") ||
			      us_maps_path_is(&l, "[vvar_vclock]") || us_maps_path_is(&l, "[vsyscall]");
		if (!l.shared && !special && l.start < l.end && (l.start < (uint64_t)buf || l.start >= (uint64_t)buf + cap) &&
		    us_tracker_may_arm(l.start, l.end, us_maps_path_is(&l, "[stack]")))
			us_tracker_arm_range(l.start, l.end, l.prot);
	}
	us_sc2(SYS_munmap, buf, cap);
}
