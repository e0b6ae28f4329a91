/* wl_threads: 8 worker threads share a mutex-protected counter.
 *
 * Each step, under the mutex, a worker checks that its thread-local mirror
 * equals its slot in per[], then does shared++, per[i]++, tls++.
 * Every 20 ms the main thread checks shared == sum(per) and prints
 * "count <tick> shared <shared>" (the tick grows by exactly one per line).
 * On SIGUSR1 it also checks every thread's TLS value through the address the
 * thread published, and waits until every worker has made progress (all 8
 * threads are running), then prints "VERIFY OK threads ...".
 * Each worker names itself "worker-<i>" and checks at every step that it still has
 * that name (a restore gives each thread its name back). */
#include "wl_common.h"
#include <pthread.h>
#include <sys/prctl.h>

#define NT 8
#define STALL_TICKS 1500                /* 30 s without progress from a worker */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t shared_count;
static uint64_t per[NT];
static uint64_t *tls_addr[NT];
static _Thread_local uint64_t tls;

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	char want[16], name[16];
	snprintf(want, sizeof want, "worker-%d", idx);
	prctl(PR_SET_NAME, want);
	pthread_mutex_lock(&mu);
	tls = per[idx];
	tls_addr[idx] = &tls;
	pthread_mutex_unlock(&mu);
	for (;;) {
		pthread_mutex_lock(&mu);
		if (tls != per[idx])
			wl_fail("thread %d: thread-local %llu != per[%d] %llu", idx,
				(unsigned long long)tls, idx,
				(unsigned long long)per[idx]);
		shared_count++;
		per[idx]++;
		tls++;
		pthread_mutex_unlock(&mu);
		if (prctl(PR_GET_NAME, name) != 0 || strcmp(name, want))
			wl_fail("thread %d: named '%s', not '%s'", idx, name, want);
		if (getpid() != wl_pid0)
			wl_fail("thread %d: getpid() changed", idx);
		wl_sleep_ms(1);
	}
	return NULL;
}

int main(void)
{
	wl_init("threads");

	/* Workers block SIGUSR1 so that the main thread takes it. */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	for (int i = 0; i < NT; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, worker, (void *)(intptr_t)i);
		if (err)
			wl_fail("pthread_create: %s", strerror(err));
		pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wl_out("threads ready pid %d ppid %d threads %d", (int)wl_pid0, (int)wl_ppid0, NT);

	uint64_t tick = 0;
	int verifying = 0;
	uint64_t verify_start_tick = 0, snap[NT];

	for (;;) {
		wl_check_ids();
		if (wl_take_verify() && !verifying) {
			verifying = 1;
			verify_start_tick = tick;
			pthread_mutex_lock(&mu);
			memcpy(snap, per, sizeof snap);
			pthread_mutex_unlock(&mu);
		}

		pthread_mutex_lock(&mu);
		uint64_t sum = 0, shared = shared_count;
		int ready = 1, stuck = -1;
		for (int i = 0; i < NT; i++) {
			sum += per[i];
			if (!tls_addr[i])
				ready = 0;
			if (verifying && per[i] == snap[i] && stuck < 0)
				stuck = i;
		}
		if (sum != shared)
			wl_fail("shared %llu != sum(per) %llu", (unsigned long long)shared,
				(unsigned long long)sum);
		if (verifying && ready)
			for (int i = 0; i < NT; i++)
				if (*tls_addr[i] != per[i])
					wl_fail("thread %d: thread-local %llu != per[%d] %llu", i,
						(unsigned long long)*tls_addr[i], i,
						(unsigned long long)per[i]);
		pthread_mutex_unlock(&mu);

		tick++;
		wl_out("count %llu shared %llu", (unsigned long long)tick,
		       (unsigned long long)shared);
		if (verifying && ready && stuck < 0) {
			verifying = 0;
			wl_out("VERIFY OK threads count=%llu shared=%llu threads=%d pid=%d ppid=%d",
			       (unsigned long long)tick, (unsigned long long)shared, NT,
			       (int)wl_pid0, (int)wl_ppid0);
		} else if (verifying && tick - verify_start_tick > STALL_TICKS) {
			if (stuck >= 0)
				wl_fail("thread %d made no progress since the verify request", stuck);
			wl_fail("a worker thread never started");
		}
		wl_sleep_ms(20);
	}
}
