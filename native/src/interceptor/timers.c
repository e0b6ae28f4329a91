/* POSIX timers.
 *
 * A restore makes the process's timers again under the ids timer_create gave them
 * (prctl PR_TIMER_CREATE_RESTORE_IDS, Linux 6.18: on an older kernel the restore
 * of a process with timers fails with that reason), with the clock, signal,
 * value and target thread the capture read from /proc/self/timers
 * (capture_process.c). This runs in the restored process itself, on the
 * checkpoint thread before it says HELLO: a timer that signals one thread
 * (SIGEV_THREAD_ID) can only be made once that thread exists again, which the
 * restorer cannot wait for. Each timer is armed at RESUME with what was left of
 * it at the checkpoint: the group was frozen meanwhile, so a timer neither fires
 * nor runs late for the time the group was down.
 *
 * SIGEV_THREAD timers are a library's, not the kernel's: glibc makes a kernel
 * timer that signals a helper thread of its own, which starts a thread calling
 * the application's function at each expiry. That helper blocks every signal, the
 * freeze signal too, so a process with such a timer could not be frozen at all.
 * The interceptor runs them instead, the same way, with a helper thread of its
 * own that the freeze stops like any other (it waits in sigtimedwait, which goes
 * on across a checkpoint and a restore). timer_t is then the kernel's id, which
 * glibc's timer_settime, timer_gettime, timer_getoverrun and timer_delete take as
 * it is, and the kernel timer comes back with a restore like any other. */
#include <errno.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include "internal.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77          /* Linux 6.18 (kernel ABI) */
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif
#define US_SIG_TIMER 32                         /* glibc's SIGTIMER too: no program can use it */

/* ---- SIGEV_THREAD ---- */

struct thread_timer {
	int id;                         /* -1: free */
	void (*fn)(union sigval);
	union sigval value;
	size_t stack_size;              /* 0: the default */
};

static struct thread_timer thread_timers[US_MAX_TIMERS];
static volatile int thread_timers_lock;
static volatile int helper_tid;         /* 0: no helper yet */

struct expiry {
	void (*fn)(union sigval);
	union sigval value;
};

static void *run_expiry(void *arg)
{
	struct expiry e = *(struct expiry *)arg;
	free(arg);
	/* the helper blocks every signal; the application's function need not */
	uint64_t none = 0;
	us_sc4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
	e.fn(e.value);
	return NULL;
}

static void start_expiry(const struct thread_timer *t)
{
	struct expiry *e = malloc(sizeof *e);
	pthread_attr_t attr;
	pthread_t th;
	if (!e)
		return;
	*e = (struct expiry){ t->fn, t->value };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (t->stack_size)
		pthread_attr_setstacksize(&attr, t->stack_size);
	if (pthread_create(&th, &attr, run_expiry, e) != 0)
		free(e);
	pthread_attr_destroy(&attr);
}

static void *timer_helper(void *arg)
{
	(void)arg;
	/* the mprotect tracker's faults stay deliverable, like the freeze signal */
	uint64_t blocked = ~(1ull << (US_SIG_FREEZE - 1) | 1ull << (SIGSEGV - 1) | 1ull << (SIGBUS - 1));
	uint64_t wanted = 1ull << (US_SIG_TIMER - 1);
	us_sc4(SYS_rt_sigprocmask, SIG_SETMASK, &blocked, NULL, 8);
	__atomic_store_n(&helper_tid, (int)us_sc0(SYS_gettid), __ATOMIC_RELEASE);
	us_futex_wake(&helper_tid);
	for (;;) {
		siginfo_t si;
		if (us_sc4(SYS_rt_sigtimedwait, &wanted, &si, NULL, 8) != US_SIG_TIMER || si.si_code != SI_TIMER)
			continue;
		struct thread_timer *t = si.si_value.sival_ptr, copy = { .id = -1 };
		us_lock(&thread_timers_lock);
		if (t >= thread_timers && t < thread_timers + US_MAX_TIMERS && t->id >= 0)
			copy = *t;
		us_unlock(&thread_timers_lock);
		if (copy.id >= 0)
			start_expiry(&copy);
	}
	return NULL;
}

static int start_helper(void)
{
	static volatile int starting;
	pthread_t th;
	pthread_attr_t attr;
	us_lock(&starting);
	if (!helper_tid) {
		/* born with the application's signals blocked, so that none lands on it */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		if (pthread_create(&th, &attr, timer_helper, NULL) == 0)
			while (!__atomic_load_n(&helper_tid, __ATOMIC_ACQUIRE))
				us_futex_wait(&helper_tid, 0, 100);
		pthread_attr_destroy(&attr);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	us_unlock(&starting);
	return helper_tid ? 0 : -1;
}

US_EXPORT int timer_create(clockid_t clock, struct sigevent *ev, timer_t *timer)
{
	static int (*real_timer_create)(clockid_t, struct sigevent *, timer_t *);
	RESOLVE(timer_create);
	if (!ev || ev->sigev_notify != SIGEV_THREAD || !us.active)
		return real_timer_create(clock, ev, timer);
	size_t stack_size = 0;
	if (ev->sigev_notify_attributes)
		pthread_attr_getstacksize(ev->sigev_notify_attributes, &stack_size);
	if (start_helper() < 0) {
		errno = EAGAIN;
		return -1;
	}
	us_lock(&thread_timers_lock);
	struct thread_timer *t = NULL;
	for (int i = 0; i < US_MAX_TIMERS && !t; i++)
		if (thread_timers[i].id < 0)
			t = &thread_timers[i];
	long r = -EAGAIN;
	if (t) {
		struct sigevent kev = { .sigev_value.sival_ptr = t, .sigev_signo = US_SIG_TIMER,
					.sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID };
		kev._sigev_un._tid = helper_tid;
		int id;
		r = us_sc3(SYS_timer_create, clock, &kev, &id);
		if (r == 0) {
			*t = (struct thread_timer){ id, ev->sigev_notify_function, ev->sigev_value, stack_size };
			*timer = (timer_t)(intptr_t)id;
		}
	}
	us_unlock(&thread_timers_lock);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

US_EXPORT int timer_delete(timer_t timer)
{
	static int (*real_timer_delete)(timer_t);
	RESOLVE(timer_delete);
	int r = real_timer_delete(timer);
	if (r == 0) {
		us_lock(&thread_timers_lock);
		for (int i = 0; i < US_MAX_TIMERS; i++)
			if (thread_timers[i].id == (int)(intptr_t)timer)
				thread_timers[i].id = -1;
		us_unlock(&thread_timers_lock);
	}
	return r;
}

__attribute__((constructor)) static void no_thread_timers(void)
{
	for (int i = 0; i < US_MAX_TIMERS; i++)
		thread_timers[i].id = -1;
}

/* A child has no timers (POSIX), and no helper thread. */
void us_timers_after_fork(void)
{
	no_thread_timers();
	helper_tid = 0;
	thread_timers_lock = 0;
}

/* ---- after a restore ---- */

static long create_timer(const struct us_timer *t, int *id)
{
	struct sigevent ev = { .sigev_value.sival_ptr = (void *)t->value, .sigev_signo = t->signo,
			       .sigev_notify = t->notify };
	ev._sigev_un._tid = t->tid;
	*id = t->id;
	return us_sc3(SYS_timer_create, t->clockid, &ev, id);
}

int us_timers_recreate(void)
{
	if (!us.ntimers)
		return 0;
	long r = us_sc5(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);
	if (r < 0) {
		us_log("restore-failed", "this kernel cannot give POSIX timers their ids again (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.18)");
		return -1;
	}
	for (int i = 0; i < us.ntimers && r >= 0; i++) {
		int id;
		r = create_timer(&us.timers[i], &id);
	}
	us_sc5(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
	if (r < 0)
		us_log("restore-failed", "cannot make a POSIX timer again under its id");
	return r < 0 ? -1 : 0;
}

void us_timers_arm(void)
{
	for (int i = 0; i < us.ntimers; i++) {
		const struct us_timer *t = &us.timers[i];
		struct itimerspec its = {
			{ (time_t)(t->interval_ns / 1000000000), (long)(t->interval_ns % 1000000000) },
			{ (time_t)(t->value_ns / 1000000000), (long)(t->value_ns % 1000000000) },
		};
		if (t->value_ns)
			us_sc4(SYS_timer_settime, t->id, 0, &its, NULL);
	}
}
