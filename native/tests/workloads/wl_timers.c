/* wl_timers: POSIX timers of every kind a program makes with timer_create.
 *
 *   tick     SIGEV_SIGNAL to the process, CLOCK_MONOTONIC, every 50 ms
 *   thread   SIGEV_THREAD_ID to a worker thread, which takes it with sigwaitinfo, every 30 ms
 *   callback SIGEV_THREAD (the library starts a thread per expiry), CLOCK_REALTIME, every 40 ms
 *   hour     SIGEV_NONE, one-shot, an hour: what is left only goes down
 *   idle     created, never armed
 * and one created and deleted between them, so that the ids are not just 0, 1, 2...
 *
 * Each expiry checks that it comes from its own timer: the signal's si_timerid and
 * si_value, the callback's value. It prints "count N" every 20 ms. On SIGUSR1 it
 * checks that every id still names its timer (and the deleted one none), that
 * each timer has its interval, that "hour" has less left than the last time it
 * looked but more than nothing, that "idle" is still disarmed, waits until each
 * periodic timer fired again, and prints "VERIFY OK timers ...". */
#include "wl_common.h"
#include <pthread.h>
#include <sched.h>

#define SIG_TICK (SIGRTMIN + 1)
#define SIG_THREAD (SIGRTMIN + 2)
#define VALUE_TICK 1111
#define VALUE_THREAD 2222
#define HOUR_S 3600

static timer_t tick, thread_timer, callback, hour, idle, deleted;
static volatile uint64_t ticks, thread_ticks, callbacks;
static uint64_t hour_left_ns = (uint64_t)HOUR_S * 1000000000ull;
static pid_t worker_tid;
static pthread_mutex_t worker_ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t worker_ready = PTHREAD_COND_INITIALIZER;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig != SIG_TICK || si->si_code != SI_TIMER || si->si_value.sival_int != VALUE_TICK ||
	    si->si_timerid != (int)(intptr_t)tick)
		wl_fail("tick: signal %d code %d value %d timer %d, not its own", sig, si->si_code,
			si->si_value.sival_int, si->si_timerid);
	ticks++;
}

static void on_callback(union sigval v)
{
	if (v.sival_ptr != &callbacks)
		wl_fail("callback: value %p, not its own %p", v.sival_ptr, (void *)&callbacks);
	__atomic_add_fetch(&callbacks, 1, __ATOMIC_RELAXED);
}

/* Takes the thread timer's signals. */
static void *worker(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIG_THREAD);
	pthread_mutex_lock(&worker_ready_mu);
	worker_tid = gettid();
	pthread_cond_signal(&worker_ready);
	pthread_mutex_unlock(&worker_ready_mu);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0 && errno == EINTR)
			continue;
		if (sig != SIG_THREAD || si.si_code != SI_TIMER || si.si_value.sival_int != VALUE_THREAD ||
		    si.si_timerid != (int)(intptr_t)thread_timer)
			wl_fail("thread timer: signal %d code %d value %d timer %d, not its own", sig, si.si_code,
				si.si_value.sival_int, si.si_timerid);
		thread_ticks++;
	}
	return NULL;
}

static void make(timer_t *t, clockid_t clock, struct sigevent *ev, const char *what)
{
	if (timer_create(clock, ev, t) != 0)
		wl_fail("timer_create %s: %s", what, strerror(errno));
}

static void arm(timer_t t, long interval_ms, long value_ms, const char *what)
{
	struct itimerspec its = { { interval_ms / 1000, interval_ms % 1000 * 1000000 },
				  { value_ms / 1000, value_ms % 1000 * 1000000 } };
	if (timer_settime(t, 0, &its, NULL) != 0)
		wl_fail("timer_settime %s: %s", what, strerror(errno));
}

static void make_timers(void)
{
	struct sigaction sa = { .sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_TICK, &sa, NULL) != 0)
		wl_fail("sigaction: %s", strerror(errno));

	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIG_TICK, .sigev_value.sival_int = VALUE_TICK };
	make(&tick, CLOCK_MONOTONIC, &ev, "tick");
	ev = (struct sigevent){ .sigev_notify = SIGEV_NONE };
	make(&deleted, CLOCK_MONOTONIC, &ev, "deleted");
	ev = (struct sigevent){ .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIG_THREAD, .sigev_value.sival_int = VALUE_THREAD };
	ev._sigev_un._tid = worker_tid;
	make(&thread_timer, CLOCK_MONOTONIC, &ev, "thread");
	ev = (struct sigevent){ .sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_callback,
				.sigev_value.sival_ptr = (void *)&callbacks };
	make(&callback, CLOCK_REALTIME, &ev, "callback");
	ev = (struct sigevent){ .sigev_notify = SIGEV_NONE };
	make(&hour, CLOCK_MONOTONIC, &ev, "hour");
	make(&idle, CLOCK_BOOTTIME, &ev, "idle");
	if (timer_delete(deleted) != 0)
		wl_fail("timer_delete: %s", strerror(errno));

	arm(tick, 50, 50, "tick");
	arm(thread_timer, 30, 30, "thread");
	arm(callback, 40, 40, "callback");
	arm(hour, 0, HOUR_S * 1000L, "hour");
}

static struct itimerspec get(timer_t t, const char *what)
{
	struct itimerspec its;
	if (timer_gettime(t, &its) != 0)
		wl_fail("timer %s (id %d) is gone: %s", what, (int)(intptr_t)t, strerror(errno));
	return its;
}

static uint64_t ns(struct timespec ts) { return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec; }

static void expect_interval(timer_t t, long ms, const char *what)
{
	struct itimerspec its = get(t, what);
	if (ns(its.it_interval) != (uint64_t)ms * 1000000 || !ns(its.it_value))
		wl_fail("timer %s: interval %llu ns, next in %llu ns; it was every %ld ms", what,
			(unsigned long long)ns(its.it_interval), (unsigned long long)ns(its.it_value), ms);
}

static void verify(void)
{
	struct itimerspec its;
	expect_interval(tick, 50, "tick");
	expect_interval(thread_timer, 30, "thread");
	expect_interval(callback, 40, "callback");
	its = get(hour, "hour");
	uint64_t left = ns(its.it_value);
	if (!left || left > hour_left_ns || ns(its.it_interval))
		wl_fail("timer hour: %llu ns left, %llu the last time: it went back or fired",
			(unsigned long long)left, (unsigned long long)hour_left_ns);
	hour_left_ns = left;
	its = get(idle, "idle");
	if (ns(its.it_value) || ns(its.it_interval))
		wl_fail("timer idle was never armed, but is now");
	if (timer_gettime(deleted, &its) == 0)
		wl_fail("timer %d was deleted, but exists again", (int)(intptr_t)deleted);

	uint64_t t0 = ticks, th0 = thread_ticks, c0 = callbacks;
	while (ticks == t0 || thread_ticks == th0 || callbacks == c0)
		wl_sleep_ms(5);
	wl_out("VERIFY OK timers ids=%d,%d,%d,%d,%d ticks=%llu thread=%llu callbacks=%llu hour_left_s=%llu pid=%d ppid=%d",
	       (int)(intptr_t)tick, (int)(intptr_t)thread_timer, (int)(intptr_t)callback, (int)(intptr_t)hour,
	       (int)(intptr_t)idle, (unsigned long long)ticks, (unsigned long long)thread_ticks,
	       (unsigned long long)callbacks, (unsigned long long)(hour_left_ns / 1000000000ull), (int)wl_pid0,
	       (int)wl_ppid0);
}

int main(void)
{
	wl_init("timers");
	/* only the worker takes the thread timer's signal; the main thread the rest */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIG_THREAD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigset_t others;
	sigemptyset(&others);
	sigaddset(&others, SIG_TICK);
	sigaddset(&others, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &others, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		wl_fail("pthread_create failed");
	pthread_sigmask(SIG_UNBLOCK, &others, NULL);
	pthread_mutex_lock(&worker_ready_mu);
	while (!worker_tid)
		pthread_cond_wait(&worker_ready, &worker_ready_mu);
	pthread_mutex_unlock(&worker_ready_mu);
	make_timers();
	wl_out("timers ready pid %d", (int)wl_pid0);

	wl_count_forever(verify, 20);
}
