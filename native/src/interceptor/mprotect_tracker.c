/* The patent's tracker, for kernels without asynchronous userfaultfd write-protect:
 * writable private memory is made read-only after each checkpoint; the first write
 * to a page faults, the SIGSEGV handler marks the page dirty and makes it writable
 * again. System calls that would write into a protected page get EFAULT instead of
 * a fault, so the wrappers for them (read, pread, readv, recv..., and the result
 * arrays of poll, select and epoll_wait) unprotect and mark the argument pages first. Calls libc makes internally (stdio reads) cannot be
 * wrapped: they may fail with EFAULT, which is why uffd is the default.
 *
 * Left untracked, and so captured whole every time: stacks (the kernel cannot
 * write a signal frame into a protected stack), the interceptor's own memory, and
 * anything that could not be protected. Near vm.max_map_count, where making one
 * page writable would split one mapping too many, the whole range is unprotected
 * and marked dirty instead. */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include "internal.h"
#include "../../include/us_image.h"
#include "../common/us_procfs.h"

#define MP_RANGES 8192
#define MP_BITS_CAP (64ull << 20)       /* dirty bits: one per page, reserved lazily */

struct mp_range { uint64_t start, end, bits; uint32_t prot, given_up; };

static struct mp_range ranges[MP_RANGES];
static int nranges;
static unsigned char *bits;
static uint64_t bits_used;
static struct us_kernel_sigaction app_segv;   /* the application's own SIGSEGV action */

static struct mp_range *find(uint64_t addr)
{
	int lo = 0, hi = nranges - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (addr < ranges[mid].start)
			hi = mid - 1;
		else if (addr >= ranges[mid].end)
			lo = mid + 1;
		else
			return &ranges[mid];
	}
	return 0;
}

/* Gives a range its application protection back. Part of it may have been unmapped
 * since it was armed (a range can span mappings the kernel had merged, and libc's
 * free() unmaps without going through any wrapper): mprotect then fails with ENOMEM
 * at the hole and leaves what follows protected, so that is done line by line, and
 * only where the protection is still the one the tracker set. */
static void unprotect(const struct mp_range *r)
{
	if (us_sc3(SYS_mprotect, r->start, r->end - r->start, r->prot) != -ENOMEM)
		return;
	const uint64_t cap = 8ull << 20;
	long maps = us_sc6(SYS_mmap, 0, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (maps < 0 && maps > -4096)
		return;
	us_read_file("/proc/self/maps", (char *)maps, cap);
	for (const char *p = (const char *)maps; *p;) {
		struct us_maps_line l;
		p = us_maps_next(p, &l);
		uint64_t lo = l.start > r->start ? l.start : r->start, hi = l.end < r->end ? l.end : r->end;
		if (lo < hi && l.prot == (r->prot & ~(uint32_t)PROT_WRITE))
			us_sc3(SYS_mprotect, lo, hi - lo, r->prot);
	}
	us_sc2(SYS_munmap, maps, cap);
}

static void give_up(struct mp_range *r)
{
	unprotect(r);
	r->given_up = 1;
}

/* Marks [start, end) of r dirty and writable. */
static void release(struct mp_range *r, uint64_t start, uint64_t end)
{
	if (r->given_up)
		return;
	uint64_t first = (start - r->start) / US_PAGE_SIZE, last = (end - r->start + US_PAGE_SIZE - 1) / US_PAGE_SIZE;
	int any = 0;
	for (uint64_t i = first; i < last; i++)
		any |= !(bits[r->bits + i / 8] & (1u << (i % 8)));
	if (!any)
		return;
	for (uint64_t i = first; i < last; i++)   /* threads fault concurrently */
		__atomic_fetch_or(&bits[r->bits + i / 8], (unsigned char)(1u << (i % 8)), __ATOMIC_RELAXED);
	if (us_sc3(SYS_mprotect, r->start + first * US_PAGE_SIZE, (last - first) * US_PAGE_SIZE, r->prot) < 0)
		give_up(r);   /* ENOMEM: one mapping split too many */
}

static void segv(int sig, siginfo_t *si, void *uc)
{
	uint64_t addr = (uint64_t)si->si_addr;
	struct mp_range *r = si->si_code == SEGV_ACCERR ? find(addr) : 0;
	if (r && !r->given_up) {
		release(r, addr & ~(uint64_t)(US_PAGE_SIZE - 1), (addr & ~(uint64_t)(US_PAGE_SIZE - 1)) + US_PAGE_SIZE);
		return;
	}
	/* not ours: the application's handler, or the default action on return */
	if (app_segv.handler > 1) {
		/* that handler may never return (siglongjmp, a loop): it must stay freezable */
		uint64_t freeze = 1ull << (US_SIG_FREEZE - 1);
		us_sc4(SYS_rt_sigprocmask, SIG_UNBLOCK, &freeze, NULL, 8);
		if (app_segv.flags & SA_SIGINFO)
			((void (*)(int, siginfo_t *, void *))app_segv.handler)(sig, si, uc);
		else
			((void (*)(int))app_segv.handler)(sig);
		return;
	}
	struct us_kernel_sigaction dfl = { 0, 0, 0, 0 };
	us_sc4(SYS_rt_sigaction, SIGSEGV, &dfl, NULL, 8);
}

int us_mp_sigaction(const struct us_kernel_sigaction *act, struct us_kernel_sigaction *old)
{
	if (old)
		*old = app_segv;
	if (act)
		app_segv = *act;
	return 0;
}

void us_mp_init(void)
{
	us_mp_reset();
	if (!bits) {
		long m = us_sc6(SYS_mmap, 0, MP_BITS_CAP, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m < 0 && m > -4096)
			return;
		bits = (unsigned char *)m;
	}
	struct us_kernel_sigaction cur;
	us_sc4(SYS_rt_sigaction, SIGSEGV, NULL, &cur, 8);
	if (cur.handler != (uint64_t)segv)
		app_segv = cur;
	/* SA_NODEFER: a fault inside an application handler is still ours to catch.
	 * The freeze waits until a fault is handled: a thread frozen in between would
	 * be restored into this handler with a table the restore has rebuilt, find no
	 * range, and fall to the default action. */
	struct us_kernel_sigaction ka = { (uint64_t)segv, SA_SIGINFO | SA_RESTART | SA_NODEFER | US_SA_RESTORER,
		(uint64_t)us_sigreturn, 1ull << (US_SIG_FREEZE - 1) };
	us_sc4(SYS_rt_sigaction, SIGSEGV, &ka, NULL, 8);
}

/* Unprotects everything and forgets it (after fork, before re-arming). */
void us_mp_reset(void)
{
	for (int i = 0; i < nranges; i++)
		if (!ranges[i].given_up)
			unprotect(&ranges[i]);
	nranges = 0;
	bits_used = 0;
}

void us_mp_arm(uint64_t start, uint64_t end, uint32_t prot)
{
	if (!bits || !(prot & PROT_WRITE) || nranges == MP_RANGES)
		return;
	uint64_t npages = (end - start) / US_PAGE_SIZE, nbytes = (npages + 7) / 8;
	if (bits_used + nbytes > MP_BITS_CAP)
		return;
	for (uint64_t i = 0; i < nbytes; i++)
		bits[bits_used + i] = 0;
	if (us_sc3(SYS_mprotect, start, end - start, prot & ~PROT_WRITE) < 0)
		return;   /* left untracked: captured whole next time */
	ranges[nranges++] = (struct mp_range){ start, end, bits_used, prot, 0 };
	bits_used += nbytes;
}

/* Whether [start, end) holds memory the fault path itself writes. */
int us_mp_owns(uint64_t start, uint64_t end)
{
	const uint64_t spans[][2] = {
		{ (uint64_t)ranges, (uint64_t)(ranges + MP_RANGES) },
		{ (uint64_t)bits, (uint64_t)bits + MP_BITS_CAP },
		{ (uint64_t)&app_segv, (uint64_t)(&app_segv + 1) },
		{ (uint64_t)&us, (uint64_t)(&us + 1) },
	};
	for (unsigned i = 0; i < sizeof spans / sizeof spans[0]; i++)
		if (spans[i][0] < end && spans[i][1] > start)
			return 1;
	return us_freeze_owns(start, end);
}

/* Where the part of [start, end) that begins at start stops being all inside one
 * range or all outside every range. A mapping line does not say: the kernel merges
 * a range we made read-only with a read-only neighbour into one mapping. */
uint64_t us_mp_piece_end(uint64_t start, uint64_t end)
{
	struct mp_range *r = find(start);
	if (r)
		return r->end < end ? r->end : end;
	int lo = 0, hi = nranges;       /* the first range that starts after start */
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (ranges[mid].start <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nranges && ranges[lo].start < end ? ranges[lo].start : end;
}

/* Tracked: [start, end) lies inside one range that still tracks page by page. */
int us_mp_covers(uint64_t start, uint64_t end)
{
	struct mp_range *r = find(start);
	return r && !r->given_up && end <= r->end;
}

/* The protection the application gave [start, end): ours only removes write. */
uint32_t us_mp_app_prot(uint64_t start, uint32_t prot)
{
	struct mp_range *r = find(start);
	return r ? r->prot : prot;
}

int us_mp_dirty(uint64_t page)
{
	struct mp_range *r = find(page);
	if (!r || r->given_up)
		return 1;
	uint64_t i = (page - r->start) / US_PAGE_SIZE;
	return (bits[r->bits + i / 8] >> (i % 8)) & 1;
}

/* Before a system call writes into [p, p+len): unprotect and mark those pages. */
void us_mp_touch(const void *p, uint64_t len)
{
	if (us.tracker != US_TRACK_MPROTECT || !len)
		return;
	uint64_t a = (uint64_t)p, end = a + len;
	while (a < end) {
		struct mp_range *r = find(a);
		if (!r) {
			a = (a & ~(uint64_t)(US_PAGE_SIZE - 1)) + US_PAGE_SIZE;
			continue;
		}
		uint64_t to = end < r->end ? end : r->end;
		release(r, a & ~(uint64_t)(US_PAGE_SIZE - 1), to);
		a = to;
	}
}

void us_mp_touch_kernel_write(const struct us_kernel_write *k)
{
	for (int i = 0; i < 4; i++)
		us_mp_touch((const void *)k->range[i][0], k->range[i][1]);
	const struct iovec *iov = (const struct iovec *)k->iov;
	for (int i = 0; iov && i < k->iovcnt; i++)
		us_mp_touch(iov[i].iov_base, iov[i].iov_len);
}

void us_mp_release_kernel_writes(void)
{
	if (us.tracker != US_TRACK_MPROTECT)
		return;
	for (int i = 0, n = us_slot_count(); i < n; i++)
		if (us_slot_at(i)->tid)
			us_mp_touch_kernel_write(&us_slot_at(i)->kwrite);
}
