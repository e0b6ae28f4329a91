/* Stopping and capturing application threads. The checkpoint thread sends each
 * thread US_SIG_FREEZE; the handler records what the kernel will not give back on
 * its own (thread pointer, robust list, clear-tid, alternate stack, name), saves a
 * resume point, checks in and waits. The kernel's signal frame on the thread's own
 * stack holds every register, FPU/AVX-512 state and the signal mask: returning from
 * the handler, after a thaw or after a restore, lets rt_sigreturn put them back.
 * A system call the signal interrupted is entered again on the way out
 * (blocking_calls.c), so that the application never sees the freeze. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <asm/prctl.h>
#include "internal.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"

struct us_state us;

/* Where each thread's slot was last found, by tid: a hint, checked against the slot.
 * Looking through all the slots (each a cache miss) for each thread cost the freeze
 * of n threads n² misses, in the checkpoint thread and in the frozen ones. */
#define SLOT_HINTS 16384
static int slot_hint[SLOT_HINTS];      /* slot index + 1 */

static struct us_thread_slot *hinted(int tid, int i)
{
	__atomic_store_n(&slot_hint[(unsigned)tid % SLOT_HINTS], i + 1, __ATOMIC_RELAXED);
	return us_slot_at(i);
}

struct us_thread_slot *us_slot_for(int tid, int create)
{
	int n = us_slot_count(), h = __atomic_load_n(&slot_hint[(unsigned)tid % SLOT_HINTS], __ATOMIC_RELAXED) - 1;
	if (h >= 0 && h < n && us_slot_at(h)->tid == tid)
		return us_slot_at(h);
	int free_slot = -1;
	for (int i = 0; i < n; i++) {
		struct us_thread_slot *s = us_slot_at(i);
		if (s->tid == tid)
			return hinted(tid, i);
		if (free_slot < 0 && s->tid == 0)
			free_slot = i;
	}
	if (!create || free_slot < 0)
		return NULL;
	/* claim atomically: several threads check in at once */
	for (int i = free_slot; i < n; i++) {
		int zero = 0;
		if (__atomic_compare_exchange_n(&us_slot_at(i)->tid, &zero, tid, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return hinted(tid, i);
	}
	return NULL;
}

struct us_thread_slot *us_slot_claim(int tid)
{
	struct us_thread_slot *s;
	us_lock(&us.slot_lock);
	while (!(s = us_slot_for(tid, 1))) {
		int n = us.nslot_chunks;
		long m = n < US_SLOT_CHUNKS ? us_sc6(SYS_mmap, 0, US_SLOT_CHUNK * sizeof *s, PROT_READ | PROT_WRITE,
						     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : -ENOMEM;
		if (m < 0 && m > -4096)
			break;
		us.slot_chunks[n] = (struct us_thread_slot *)m;
		__atomic_store_n(&us.nslot_chunks, n + 1, __ATOMIC_RELEASE);
	}
	us_unlock(&us.slot_lock);
	return s;
}

/* The calling thread's name: one prctl, where /proc/self/task/TID/comm costs a
 * path walk, a read and a close. */
static void read_comm(char comm[16])
{
	for (int i = 0; i < 16; i++)
		comm[i] = 0;
	us_sc2(SYS_prctl, PR_GET_NAME, comm);
	comm[15] = 0;
}

void us_capture_thread(struct us_thread_slot *s)
{
	unsigned long fs = 0;
	us_sc2(SYS_arch_prctl, ARCH_GET_FS, &fs);
	s->fs_base = fs;
	size_t len = 0;
	void *head = NULL;
	us_sc3(SYS_get_robust_list, 0, &head, &len);
	s->robust_head = (uint64_t)head;
	s->robust_len = len;
	int *ctid = NULL;
	if (us_sc5(SYS_prctl, PR_GET_TID_ADDRESS, &ctid, 0, 0, 0) == 0)
		s->clear_tid = (uint64_t)ctid;
	us_sc2(SYS_sigaltstack, NULL, &s->altstack);
	read_comm(s->comm);
	us_creds_capture(&s->creds);
}

/* ---- pending signals ----
 * A restore makes a new process, and the signals pending in the old one would be
 * lost: a pthread_cancel's (the canceled thread would run on, or wait for it in
 * libc forever), a timer's expiry, a child's exit. So while the group is frozen,
 * each thread with pending signals takes them out of the kernel (sigtimedwait),
 * keeping their whole siginfo in its slot, which the image holds, and queues them
 * again at once, for itself (rt_tgsigqueueinfo); the main thread does the same
 * with those sent to the process (rt_sigqueueinfo). A restored thread queues them
 * again before it returns to the application. The kernel accepts any siginfo
 * from the thread a signal is for, or for the process from its main thread. */

static uint64_t pending_of(const char *file, const char *field)
{
	char text[2048];
	if (us_read_file(file, text, sizeof text) <= 0)
		return 0;
	return us_proc_field_u(text, field, 16) & ~(1ull << (US_SIG_FREEZE - 1));
}

static const char *task_status(char *buf, size_t cap, int tid)
{
	struct us_buf b = { buf, 0, cap };
	us_put(&b, "/proc/self/task/");
	us_putu(&b, (uint64_t)tid);
	us_put(&b, "/status");
	return us_term(&b);
}

/* Takes the signals of mask from the kernel while file's field still shows them
 * pending: a thread's own come before the process's of the same number. */
static void take(struct us_thread_slot *s, uint64_t mask, const char *file, const char *field, int shared)
{
	struct timespec now = { 0, 0 };
	while (mask) {
		struct us_pending_signal *p = &s->pending[s->npending];
		if (s->npending == US_MAX_PENDING) {
			s->pending_lost = 1;
			return;
		}
		if (us_sc4(SYS_rt_sigtimedwait, &mask, &p->info, &now, 8) <= 0)
			return;
		p->shared = shared;
		s->npending++;
		mask &= pending_of(file, field);
	}
}

static void queue_again(const struct us_thread_slot *s)
{
	for (int i = 0; i < s->npending; i++) {
		const struct us_pending_signal *p = &s->pending[i];
		if (p->shared)
			us_sc3(SYS_rt_sigqueueinfo, us.vpid, p->info.si_signo, &p->info);
		else
			us_sc4(SYS_rt_tgsigqueueinfo, us.vpid, s->tid, p->info.si_signo, &p->info);
	}
}

static void take_pending(struct us_thread_slot *s)
{
	char file[64];
	s->npending = 0;
	s->pending_lost = 0;
	take(s, s->drain_private, task_status(file, sizeof file, s->tid), "SigPnd:", 0);
	take(s, s->drain_shared, "/proc/self/status", "ShdPnd:", 1);
	queue_again(s);
	__atomic_store_n(&s->drain, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&us.drained, 1, __ATOMIC_ACQ_REL);
	us_futex_wake(&us.drained);
}

/* In a frozen thread, asked by a census: whether any signal but the freeze is
 * pending for it, its own or the process's. In the freeze handler every signal is
 * blocked but SIGSEGV and SIGBUS, which would not stay pending, so rt_sigpending
 * shows them all. */
static void answer_census(struct us_thread_slot *s, int census)
{
	uint64_t set = 0;
	int none = us_sc2(SYS_rt_sigpending, &set, 8) == 0 && !(set & ~(1ull << (US_SIG_FREEZE - 1)));
	__atomic_store_n(&s->census_none, none ? census : 0, __ATOMIC_RELEASE);
	if (__atomic_add_fetch(&us.counted, 1, __ATOMIC_ACQ_REL) >= __atomic_load_n(&us.frozen_count, __ATOMIC_ACQUIRE))
		us_futex_wake(&us.counted);
}

/* Which frozen threads may have signals of their own pending: each looks at its
 * own at once (one system call, the threads in parallel), where reading every
 * thread's /proc/self/task/TID/status in turn cost the freeze of 2,000 threads
 * tens of milliseconds. A thread that does not answer counts as maybe. Nothing is
 * written to the slots of threads that do not answer: every page written while
 * frozen would be in the next increment. With few threads, reading their status
 * costs less than waiting for them to be scheduled. Returns the census, 0 if none. */
#define CENSUS_MIN 32

static int take_census(void)
{
	int frozen = __atomic_load_n(&us.frozen_count, __ATOMIC_ACQUIRE);
	if (frozen < CENSUS_MIN)
		return 0;
	__atomic_store_n(&us.counted, 0, __ATOMIC_RELEASE);
	int census = (__atomic_load_n(&us.census, __ATOMIC_ACQUIRE) & 0x3fffffff) + 1;   /* never 0 */
	__atomic_store_n(&us.census, census, __ATOMIC_RELEASE);
	__atomic_add_fetch(&us.frozen_wake, 1, __ATOMIC_ACQ_REL);
	us_futex_wake(&us.frozen_wake);
	for (int waited = 0, done; (done = __atomic_load_n(&us.counted, __ATOMIC_ACQUIRE)) < frozen && waited < 5000; waited += 20)
		us_futex_wait(&us.counted, done, 20);
	return census;
}

int us_take_pending_signals(char *why, int cap)
{
	char file[64];
	struct us_thread_slot *main_thread = NULL;
	int asked = 0;
	uint64_t shared = pending_of("/proc/self/status", "ShdPnd:");
	__atomic_store_n(&us.drained, 0, __ATOMIC_RELEASE);
	us.pending_signals = 0;
	int census = take_census();
	for (int i = 0, n = us_slot_count(); i < n; i++) {
		struct us_thread_slot *s = us_slot_at(i);
		if (!s->tid || s->is_checkpoint_thread)
			continue;
		s->npending = 0;
		s->drain_private = census && __atomic_load_n(&s->census_none, __ATOMIC_ACQUIRE) == census ? 0 :
				   pending_of(task_status(file, sizeof file, s->tid), "SigPnd:");
		s->drain_shared = s->tid == us.vpid ? shared : 0;
		if (s->tid == us.vpid)
			main_thread = s;
		if (s->drain_private || s->drain_shared) {
			__atomic_store_n(&s->drain, 1, __ATOMIC_RELEASE);
			asked++;
		}
	}
	if (!main_thread)
		us.pending_signals = shared;   /* sent again as kill sends them (main.c) */
	if (!asked)
		return 0;
	__atomic_add_fetch(&us.frozen_wake, 1, __ATOMIC_ACQ_REL);
	us_futex_wake(&us.frozen_wake);
	for (int waited = 0, done; (done = __atomic_load_n(&us.drained, __ATOMIC_ACQUIRE)) < asked; waited += 20) {
		if (waited > 5000) {
			struct us_buf w = { why, 0, (size_t)cap };
			us_put(&w, "a frozen thread did not take its pending signals within 5 s");
			us_term(&w);
			return -1;
		}
		us_futex_wait(&us.drained, done, 20);
	}
	for (int i = 0, n = us_slot_count(); i < n; i++)
		if (us_slot_at(i)->tid && us_slot_at(i)->pending_lost) {
			struct us_buf w = { why, 0, (size_t)cap };
			us_put(&w, "more than 8 signals pending for thread ");
			us_putu(&w, (uint64_t)us_slot_at(i)->tid);
			us_term(&w);
			return -1;
		}
	return 0;
}

static void freeze_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)si;
	int saved_errno = errno;
	int gen = __atomic_load_n(&us.thaw_gen, __ATOMIC_ACQUIRE);
	int tid = (int)us_sc0(SYS_gettid);
	if (tid == __atomic_load_n(&us.checkpoint_tid, __ATOMIC_ACQUIRE)) {
		us_creds_serve();   /* never frozen: asked to follow a thread's credentials */
		errno = saved_errno;
		return;
	}
	struct us_thread_slot *s = us_slot_for(tid, 1);
	struct us_restart restart = { -1, -1 };
	int restored = 0, census = __atomic_load_n(&us.census, __ATOMIC_ACQUIRE);

	if (s) {
		us_blocked_on_freeze(s, uc, &restart);
		us_capture_thread(s);
		if (us_jmp_save(&s->ctx) == 0) {
			__atomic_add_fetch(&us.frozen_count, 1, __ATOMIC_ACQ_REL);
			us_futex_wake(&us.frozen_count);
		} else {
			restored = 1;
			if (tid == us.vpid) {
				/* the main thread has left the restorer's stack */
				__atomic_store_n(&us.restored_main_left, 1, __ATOMIC_RELEASE);
				us_futex_wake(&us.restored_main_left);
			}
		}
	}
	for (;;) {
		int wake = __atomic_load_n(&us.frozen_wake, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&us.thaw_gen, __ATOMIC_ACQUIRE) != gen)
			break;
		if (s && __atomic_load_n(&us.census, __ATOMIC_ACQUIRE) != census) {
			census = us.census;
			answer_census(s, census);
		}
		if (s && __atomic_load_n(&s->drain, __ATOMIC_ACQUIRE))
			take_pending(s);
		us_futex_wait(&us.frozen_wake, wake, -1);
	}
	if (s) {
		if (restored)
			queue_again(s);   /* the signals pending at the checkpoint */
		else if (tid == __atomic_load_n(&us.exiting_tid, __ATOMIC_ACQUIRE))
			us_wait_image_before_exit();   /* frozen in the middle of its exit */
		us_blocked_resume(s, uc, &restart);   /* after a thaw, or in the restored process */
	}
	errno = saved_errno;
}

void us_install_freeze_handler(void)
{
	/* Raw rt_sigaction: the library's own sigaction() wrapper hides this signal. */
	struct us_kernel_sigaction ka = {
		.handler = (uint64_t)freeze_handler,
		.flags = SA_SIGINFO | SA_RESTART | US_SA_RESTORER,
		.restorer = (uint64_t)us_sigreturn,
		/* SIGSEGV and SIGBUS stay deliverable: the mprotect tracker's faults */
		.mask = ~((1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1))),
	};
	us_sc4(SYS_rt_sigaction, US_SIG_FREEZE, &ka, NULL, 8);
}

/* The checkpoint thread's lists of tids, grown to what /proc/self/task holds. */
static int *tasks, *signaled;
static int list_cap;

static int grow_lists(int need, struct us_buf *w)
{
	int cap = list_cap ? list_cap : 1024;
	while (cap < need)
		cap *= 2;
	long m = us_sc6(SYS_mmap, 0, 2ul * (unsigned)cap * sizeof(int), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096) {
		us_put(w, "cannot map memory for the list of threads");
		us_term(w);
		return -1;
	}
	int *t = (int *)m, *sig = t + cap;
	for (int i = 0; signaled && i < list_cap; i++)
		sig[i] = signaled[i];
	if (tasks)
		us_sc2(SYS_munmap, tasks, 2ul * (unsigned)list_cap * sizeof(int));
	tasks = t;
	signaled = sig;
	list_cap = cap;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts = { 0, 0 };
	us_sc2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether [start, end) holds the freeze's own memory, which no tracker may protect:
 * the thread slots (the freeze handler writes them) and the task lists. */
int us_freeze_owns(uint64_t start, uint64_t end)
{
	for (int i = 0; i < us.nslot_chunks; i++) {
		uint64_t a = (uint64_t)us.slot_chunks[i], b = a + US_SLOT_CHUNK * sizeof(struct us_thread_slot);
		if (a < end && b > start)
			return 1;
	}
	uint64_t a = (uint64_t)tasks, b = a + 2ul * (unsigned)list_cap * sizeof(int);
	return tasks && a < end && b > start;
}

static int signaled_already(int t, int nsig)
{
	for (int k = 0; k < nsig; k++)
		if (signaled[k] == t)
			return 1;
	return 0;
}

/* A process that changed its uid is not dumpable (unless it says otherwise): its
 * /proc/self pagemap, mem and task/N/syscall then belong to root, and it cannot
 * read them. It is made dumpable while the group is frozen, and not again at the
 * thaw; the image writer, a copy of it, undoes it as soon as it has opened its
 * memory (image_writer.c). */
static void dumpable_for_capture(void)
{
	us.app_dumpable = (int)us_sc2(SYS_prctl, PR_GET_DUMPABLE, 0);
	if (us.app_dumpable != 1 && us_sc2(SYS_prctl, PR_SET_DUMPABLE, 1) == 0)
		us.dumpable_changed = 1;
}

int us_freeze_all(char *why, int cap)
{
	int nsig = 0, me = (int)us_sc0(SYS_gettid);
	struct us_buf w = { why, 0, (size_t)cap };

	dumpable_for_capture();
	__atomic_store_n(&us.frozen_count, 0, __ATOMIC_RELEASE);
	for (int round = 0; round < 50; round++) {
		int n = list_cap ? us_list_numbers("/proc/self/task", 0, tasks, list_cap) : 0, fresh = 0;
		while (n >= 0 && n + nsig >= list_cap) {   /* room for every task, and as many signaled */
			if (grow_lists(n + nsig + 64, &w) < 0)
				return -1;
			n = us_list_numbers("/proc/self/task", 0, tasks, list_cap);
		}
		if (n < 0) {
			us_put(&w, "cannot list /proc/self/task");
			us_term(&w);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int t = tasks[i];
			if (t == me || signaled_already(t, nsig))
				continue;
			/* the handler finds its slot: it may not map memory */
			struct us_thread_slot *ts = us_slot_claim(t);
			if (!ts) {
				us_put(&w, "cannot map memory for a thread slot");
				us_term(&w);
				return -1;
			}
			us_blocked_snapshot(ts, t);
			if (us_sc3(SYS_tgkill, us.vpid, t, US_SIG_FREEZE) == 0) {
				signaled[nsig++] = t;
				fresh++;
			} else {
				ts->tid = 0;   /* exited meanwhile */
			}
		}
		/* Wait for every signaled thread that still exists to check in. Each check-in
		 * wakes us: the living are counted only every 20 ms, not at every wake-up
		 * (that was a kill(0) per thread per check-in). */
		for (int64_t start = now_ms(), counted = start;;) {
			int done = __atomic_load_n(&us.frozen_count, __ATOMIC_ACQUIRE);
			if (done >= nsig)
				break;
			int64_t now = now_ms();
			if (now - counted < 20) {
				us_futex_wait(&us.frozen_count, done, 20 - (now - counted));
				continue;
			}
			counted = now;
			int alive = 0;
			for (int k = 0; k < nsig; k++)
				if (us_sc3(SYS_tgkill, us.vpid, signaled[k], 0) == 0)
					alive++;
			if (done >= alive)
				break;
			if (now - start > 5000) {
				us_put(&w, "a thread did not stop within 5 s (signal ");
				us_putu(&w, US_SIG_FREEZE);
				us_put(&w, " blocked?)");
				us_term(&w);
				return -1;
			}
		}
		if (!fresh && round > 0)
			break;
	}
	/* threads that exited since their last checkpoint free their slots */
	for (int i = 0, n = us_slot_count(); i < n; i++) {
		struct us_thread_slot *s = us_slot_at(i);
		int t = s->tid, keep = t == me || (signaled_already(t, nsig) && us_sc3(SYS_tgkill, us.vpid, t, 0) == 0);
		if (t && !keep)
			s->tid = 0;
	}
	return __atomic_load_n(&us.frozen_count, __ATOMIC_ACQUIRE);
}

void us_thaw_all(void)
{
	if (us.dumpable_changed)   /* 2 (suid_dumpable) cannot be set again: 0 is its safe side */
		us_sc2(SYS_prctl, PR_SET_DUMPABLE, us.app_dumpable == 1);
	us.dumpable_changed = 0;
	__atomic_add_fetch(&us.thaw_gen, 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&us.frozen_wake, 1, __ATOMIC_ACQ_REL);
	us_futex_wake(&us.frozen_wake);
}
