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
#include <sys/prctl.h>
#include <asm/prctl.h>
#include "internal.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"

struct us_state us;

struct us_thread_slot *us_slot_for(int tid, int create)
{
	struct us_thread_slot *free_slot = NULL;
	for (int i = 0; i < US_MAX_THREADS; i++) {
		if (us.slots[i].tid == tid)
			return &us.slots[i];
		if (!free_slot && us.slots[i].tid == 0)
			free_slot = &us.slots[i];
	}
	if (!create || !free_slot)
		return NULL;
	/* claim atomically: several threads check in at once */
	for (int i = 0; i < US_MAX_THREADS; i++) {
		int zero = 0;
		if (__atomic_compare_exchange_n(&us.slots[i].tid, &zero, tid, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return &us.slots[i];
	}
	return NULL;
}

static void read_comm(int tid, char comm[16])
{
	char path[64];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, "/proc/self/task/");
	us_putu(&b, (uint64_t)tid);
	us_put(&b, "/comm");
	for (int i = 0; i < 16; i++)
		comm[i] = 0;
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, us_term(&b), O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	long n = us_sc3(SYS_read, fd, comm, 15);
	us_sc1(SYS_close, fd);
	for (long i = 0; i < n; i++)
		if (comm[i] == '\n')
			comm[i] = 0;
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
	read_comm(s->tid, s->comm);
}

static void freeze_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)si;
	int saved_errno = errno;
	int gen = __atomic_load_n(&us.thaw_gen, __ATOMIC_ACQUIRE);
	int tid = (int)us_sc0(SYS_gettid);
	struct us_thread_slot *s = us_slot_for(tid, 1);
	struct us_restart restart = { -1, -1 };

	if (s) {
		us_blocked_on_freeze(s, uc, &restart);
		us_capture_thread(s);
		if (us_jmp_save(&s->ctx) == 0) {
			__atomic_add_fetch(&us.frozen_count, 1, __ATOMIC_ACQ_REL);
			us_futex_wake(&us.frozen_count);
		} else if (tid == us.vpid) {
			/* restored: the main thread has left the restorer's stack */
			__atomic_store_n(&us.restored_main_left, 1, __ATOMIC_RELEASE);
			us_futex_wake(&us.restored_main_left);
		}
	}
	while (__atomic_load_n(&us.thaw_gen, __ATOMIC_ACQUIRE) == gen)
		us_futex_wait(&us.thaw_gen, gen, -1);
	if (s)
		us_blocked_resume(s, uc, &restart);   /* after a thaw, or in the restored process */
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

int us_freeze_all(char *why, int cap)
{
	static int signaled[US_MAX_THREADS];
	int nsig = 0, me = (int)us_sc0(SYS_gettid);
	int tasks[US_MAX_THREADS];
	struct us_buf w = { why, 0, (size_t)cap };

	__atomic_store_n(&us.frozen_count, 0, __ATOMIC_RELEASE);
	for (int round = 0; round < 50; round++) {
		int n = us_list_numbers("/proc/self/task", 0, tasks, US_MAX_THREADS), fresh = 0;
		if (n < 0) {
			us_put(&w, "cannot list /proc/self/task");
			us_term(&w);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int t = tasks[i], seen = 0;
			if (t == me)
				continue;
			for (int k = 0; k < nsig; k++)
				seen |= signaled[k] == t;
			if (seen)
				continue;
			if (nsig == US_MAX_THREADS) {
				us_put(&w, "more than 512 threads");
				us_term(&w);
				return -1;
			}
			struct us_thread_slot *ts = us_slot_for(t, 1);
			if (ts)
				us_blocked_snapshot(ts, t);
			if (us_sc3(SYS_tgkill, us.vpid, t, US_SIG_FREEZE) == 0) {
				signaled[nsig++] = t;
				fresh++;
			}
		}
		/* wait for every signaled thread that still exists to check in */
		for (int waited = 0;; waited += 20) {
			int done = __atomic_load_n(&us.frozen_count, __ATOMIC_ACQUIRE);
			int alive = 0;
			for (int k = 0; k < nsig; k++)
				if (us_sc3(SYS_tgkill, us.vpid, signaled[k], 0) == 0)
					alive++;
			if (done >= alive)
				break;
			if (waited > 5000) {
				us_put(&w, "a thread did not stop within 5 s (signal ");
				us_putu(&w, US_SIG_FREEZE);
				us_put(&w, " blocked?)");
				us_term(&w);
				return -1;
			}
			us_futex_wait(&us.frozen_count, done, 20);
		}
		if (!fresh && round > 0)
			break;
	}
	/* threads that exited since their last checkpoint free their slots */
	for (int i = 0; i < US_MAX_THREADS; i++) {
		int t = us.slots[i].tid, keep = t == me;
		for (int k = 0; k < nsig && !keep; k++)
			keep = signaled[k] == t && us_sc3(SYS_tgkill, us.vpid, t, 0) == 0;
		if (t && !keep)
			us.slots[i].tid = 0;
	}
	return __atomic_load_n(&us.frozen_count, __ATOMIC_ACQUIRE);
}

void us_thaw_all(void)
{
	__atomic_add_fetch(&us.thaw_gen, 1, __ATOMIC_ACQ_REL);
	us_futex_wake(&us.thaw_gen);
}
