/* wl_cancel: many threads that end by pthread_cancel, deferred and asynchronous.
 *
 * Two relay threads each start a batch of 32 victims, half of them deferred and
 * waiting in a cancellation point (read of a pipe nobody writes,
 * pthread_cond_wait, nanosleep, poll, by turns), half asynchronous and only
 * counting; then a canceller thread that cancels and joins them one by one. Each
 * victim must end canceled, a deferred one through its cleanup handler. Then the
 * next batch. The canceller is younger than its victims, so a checkpoint, which
 * stops threads oldest first, usually finds it canceling victims already stopped:
 * the cancel signal is pending in them when the checkpoint is taken.
 *
 * Besides, eight long-lived threads (four deferred in a cancellation point, four
 * asynchronous) wait across checkpoints to be canceled, and 32 bystanders sleep
 * with every signal blocked: with that many threads, a checkpoint asks the frozen
 * threads themselves which have signals pending, rather than reading each one's
 * /proc status (freeze.c), and the holder below must be found so as well.
 *
 * A cancel in flight is a signal pending in the canceled thread, with its siginfo
 * (libc acts only on its own: sent by this process, with tgkill). Catching a
 * checkpoint at that moment is luck, so the same is checked for certain: a holder
 * thread keeps a real-time signal blocked, and always has three of them queued
 * to it (pthread_sigqueue) with their values.
 *
 * It prints "count N" every 20 ms. On SIGUSR1 it cancels and joins the eight
 * long-lived threads (each must end canceled, the deferred ones through their
 * cleanup handler), starts eight new ones, waits until each relay has finished
 * another batch, has the holder take its three signals (each must come from this
 * process with its value, in order) and queues three more, and prints
 * "VERIFY OK cancel ...". A cancel that a restore loses
 * leaves its thread running (or waiting in libc for the signal) and its joiner
 * waiting: after 30 s the verification says FAIL instead. */
#include "wl_common.h"
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>

#define RELAYS 2
#define BATCH 32
#define LONG_LIVED 8
#define BYSTANDERS 32

static int never_written[2];            /* a pipe nobody writes: reads wait forever */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_signalled = PTHREAD_COND_INITIALIZER;
static volatile uint64_t batches[RELAYS];

struct victim {
	pthread_t thread;
	int deferred, how;              /* how: the cancellation point a deferred one waits in */
	volatile int started, cleaned_up;
	volatile uint64_t spins;
};

static void cleanup(void *arg)
{
	struct victim *v = arg;
	v->cleaned_up = 1;
}

static void unlock_mutex(void *arg)
{
	pthread_mutex_unlock(arg);
}

static void *deferred(void *arg)
{
	struct victim *v = arg;
	char c;
	struct timespec long_time = { 3600, 0 };
	struct pollfd p = { never_written[0], POLLIN, 0 };
	pthread_cleanup_push(cleanup, v);
	v->started = 1;
	for (;;) {
		switch (v->how) {
		case 0:
			if (read(never_written[0], &c, 1) >= 0)
				wl_fail("read a pipe nobody writes");
			break;
		case 1:
			pthread_mutex_lock(&lock);
			pthread_cleanup_push(unlock_mutex, &lock);
			pthread_cond_wait(&never_signalled, &lock);
			pthread_cleanup_pop(1);
			break;
		case 2:
			nanosleep(&long_time, NULL);
			break;
		default:
			poll(&p, 1, -1);
			break;
		}
	}
	pthread_cleanup_pop(0);
	return NULL;
}

static void *asynchronous(void *arg)
{
	struct victim *v = arg;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	v->started = 1;
	for (;;) {
		v->spins++;
		sched_yield();          /* not a cancellation point; it spares the machine */
	}
	return NULL;
}

static void start(struct victim *v, int is_deferred, int how)
{
	*v = (struct victim){ .deferred = is_deferred, .how = how };
	/* born with SIGUSR1 blocked: the verification request is the main thread's */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	int r = pthread_create(&v->thread, NULL, is_deferred ? deferred : asynchronous, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		wl_fail("pthread_create: %s", strerror(r));
	while (!v->started)
		sched_yield();
}

/* Cancels v and joins it: it must end canceled, a deferred one through its cleanup. */
static void cancel(struct victim *v, int bounded)
{
	void *result = NULL;
	int r = pthread_cancel(v->thread);
	if (r != 0)
		wl_fail("pthread_cancel: %s", strerror(r));
	if (bounded) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 30;
		r = pthread_timedjoin_np(v->thread, &result, &until);
		if (r == ETIMEDOUT)
			wl_fail("a %s thread (%s) did not end within 30 s of pthread_cancel",
				v->deferred ? "deferred" : "asynchronous",
				v->deferred ? (const char *[]){ "read", "pthread_cond_wait", "nanosleep", "poll" }[v->how] : "spinning");
	} else {
		r = pthread_join(v->thread, &result);
	}
	if (r != 0)
		wl_fail("pthread_join: %s", strerror(r));
	if (result != PTHREAD_CANCELED)
		wl_fail("a canceled thread ended with %p, not PTHREAD_CANCELED", result);
	if (v->deferred && !v->cleaned_up)
		wl_fail("a canceled deferred thread (how %d) did not run its cleanup handler", v->how);
}

static void *canceller(void *arg)
{
	struct victim *v = arg;
	for (int i = 0; i < BATCH; i++)
		cancel(&v[i], 0);
	return NULL;
}

static void *relay(void *arg)
{
	int i = (int)(intptr_t)arg;
	static struct victim victims[RELAYS][BATCH];
	for (;;) {
		struct victim *v = victims[i];
		for (int k = 0; k < BATCH; k++)
			start(&v[k], k % 2 == 0, (k / 2) % 4);
		pthread_t c;
		int r = pthread_create(&c, NULL, canceller, v);
		if (r != 0)
			wl_fail("pthread_create: %s", strerror(r));
		if ((r = pthread_join(c, NULL)) != 0)
			wl_fail("pthread_join: %s", strerror(r));
		batches[i]++;
	}
	return NULL;
}

/* ---- the holder: signals pending in one thread ---- */

#define HELD_SIGNALS 3
static pthread_t holder;
static sem_t take_signals, signals_taken;
static int held_signal;
static volatile int held_ok, held_got;
static volatile long held_first;          /* the value the first one must carry */

static void *hold(void *arg)
{
	(void)arg;
	for (;;) {
		while (sem_wait(&take_signals) != 0)
			;
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, held_signal);
		struct timespec now = { 0, 0 };
		siginfo_t si;
		int got = 0, ok = 1;
		while (sigtimedwait(&set, &si, &now) == held_signal) {
			ok &= si.si_code == SI_QUEUE && si.si_pid == wl_pid0 && si.si_value.sival_int == held_first + got;
			got++;
		}
		held_got = got;
		held_ok = ok;
		sem_post(&signals_taken);
	}
	return NULL;
}

static void queue_held_signals(void)
{
	for (int i = 0; i < HELD_SIGNALS; i++) {
		int r = pthread_sigqueue(holder, held_signal, (union sigval){ .sival_int = (int)held_first + i });
		if (r != 0)
			wl_fail("pthread_sigqueue: %s", strerror(r));
	}
}

static void check_held_signals(void)
{
	sem_post(&take_signals);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	while (sem_timedwait(&signals_taken, &until) != 0)
		if (errno == ETIMEDOUT)
			wl_fail("the holder thread did not take its signals within 30 s");
	if (held_got != HELD_SIGNALS || !held_ok)
		wl_fail("the holder thread had %d of its %d pending signals%s", held_got, HELD_SIGNALS,
			held_ok ? "" : ", not all from this process with their values in order");
	held_first += HELD_SIGNALS;
	queue_held_signals();
}

static void *bystander(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	wl_init("cancel");
	if (pipe(never_written) != 0)
		wl_fail("pipe: %s", strerror(errno));
	static struct victim long_lived[LONG_LIVED];
	for (int i = 0; i < LONG_LIVED; i++)
		start(&long_lived[i], i < 4, i % 4);
	pthread_t relays[RELAYS];
	for (int i = 0; i < RELAYS; i++) {
		sigset_t usr1, old;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &usr1, &old);
		int r = pthread_create(&relays[i], NULL, relay, (void *)(intptr_t)i);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r != 0)
			wl_fail("pthread_create: %s", strerror(r));
	}
	sigset_t all, before;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &before);
	for (int i = 0; i < BYSTANDERS; i++) {
		pthread_t t;
		int r = pthread_create(&t, NULL, bystander, NULL);
		if (r != 0)
			wl_fail("pthread_create: %s", strerror(r));
		pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &before, NULL);
	held_signal = SIGRTMIN + 3;
	if (sem_init(&take_signals, 0, 0) != 0 || sem_init(&signals_taken, 0, 0) != 0)
		wl_fail("sem_init: %s", strerror(errno));
	sigset_t blocked, old;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, held_signal);
	pthread_sigmask(SIG_BLOCK, &blocked, &old);
	int r = pthread_create(&holder, NULL, hold, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		wl_fail("pthread_create: %s", strerror(r));
	held_first = 1000;
	queue_held_signals();
	wl_out("cancel ready pid %d", (int)wl_pid0);

	uint64_t verified = 0;
	for (uint64_t tick = 1;; tick++) {
		wl_check_ids();
		if (wl_take_verify()) {
			uint64_t before[RELAYS], spins = 0;
			for (int i = 0; i < RELAYS; i++)
				before[i] = batches[i];
			for (int i = 0; i < LONG_LIVED; i++) {
				spins += long_lived[i].spins;
				cancel(&long_lived[i], 1);
				start(&long_lived[i], i < 4, i % 4);
			}
			for (int i = 0; i < RELAYS; i++)
				for (int waited = 0; batches[i] == before[i]; waited++) {
					if (waited > 30000)
						wl_fail("relay %d finished no batch in 30 s: a canceled thread did not end", i);
					wl_sleep_ms(1);
				}
			check_held_signals();
			uint64_t cycles = 0;
			for (int i = 0; i < RELAYS; i++)
				cycles += batches[i];
			verified++;
			wl_out("VERIFY OK cancel verified=%llu batches=%llu spins=%llu held=%ld pid=%d ppid=%d",
			       (unsigned long long)verified, (unsigned long long)cycles, (unsigned long long)spins, held_first,
			       (int)wl_pid0, (int)wl_ppid0);
		}
		wl_out("count %llu", (unsigned long long)tick);
		wl_sleep_ms(20);
	}
}
