/* wl_blocking: threads that block in the calls a signal handler interrupts.
 *
 * Each probe thread loops on one call and checks every return itself:
 *   - timed probes (poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
 *     epoll_pwait2, nanosleep with and without a remainder, clock_nanosleep
 *     relative and absolute, usleep, sleep, sem_timedwait, sigtimedwait,
 *     pthread_cond_timedwait, futex and poll through syscall(), and poll as a bare
 *     syscall instruction) must time out, never fail with EINTR, and never return
 *     before their timeout;
 *   - waking probes (sem_wait, epoll_wait without a timeout, sigwaitinfo, pause,
 *     sigsuspend, read from a pipe through libc and through syscall()) are woken
 *     every 100 ms by a poster thread and must return only for what the poster
 *     did: a post, an event, the signal it sent, the next number it wrote.
 * Unlike the other workloads, nothing here retries on EINTR: a checkpoint must be
 * invisible. A failed check prints "FAIL blocking: <probe>: ..." and exits 3.
 * The main thread prints "count <tick>" every 50 ms; on SIGUSR1 it waits until
 * every probe has completed calls since the last verification, then prints
 * "VERIFY OK blocking probes=N calls=C over=<ms>", where over is the longest
 * time any timed call took beyond its timeout (reported, not checked: it includes
 * the time the group was frozen, or down). */
#include "wl_common.h"
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <linux/futex.h>

#define TIMEOUT_MS 250
#define POST_MS 100
#define NPROBES 32

struct probe {
	const char *name;
	int (*call)(struct probe *);        /* 0: the call behaved */
	pid_t tid;
	volatile uint64_t calls;
	uint64_t verified;                  /* calls at the last verification */
	char why[200];
};

static struct probe probes[NPROBES];
static int nprobes;
static volatile int64_t max_over_ns;
static int64_t start_wall;

static int64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec ts_of(int64_t ns)
{
	return (struct timespec){ ns / 1000000000, ns % 1000000000 };
}

static void note_over(int64_t took_ns, int64_t timeout_ns)
{
	int64_t over = took_ns - timeout_ns, cur = max_over_ns;
	while (over > cur && !__atomic_compare_exchange_n(&max_over_ns, &cur, over, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* A timed call: r is its result, ok the result it must have. */
static int timed(struct probe *p, int64_t t0, long r, long ok, int64_t timeout_ns)
{
	int64_t took = now_ns(CLOCK_MONOTONIC) - t0;
	int err = errno;
	if (r != ok) {
		snprintf(p->why, sizeof p->why, "returned %ld (%s) after %lld ms, expected %ld", r,
			 r < 0 ? strerror(err) : "no error", (long long)(took / 1000000), ok);
		return -1;
	}
	if (took < timeout_ns) {
		snprintf(p->why, sizeof p->why, "returned after %lld.%03lld ms, before its %lld ms timeout",
			 (long long)(took / 1000000), (long long)(took / 1000 % 1000), (long long)(timeout_ns / 1000000));
		return -1;
	}
	note_over(took, timeout_ns);
	return 0;
}

#define T_NS ((int64_t)TIMEOUT_MS * 1000000)

/* Calls that return an error number: -1 with errno, as the others fail. */
static long posix_result(int err)
{
	if (!err)
		return 0;
	errno = err;
	return err == ETIMEDOUT ? -ETIMEDOUT : -1;
}

/* ---- timed probes ---- */

static int p_poll(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, poll(NULL, 0, TIMEOUT_MS), 0, T_NS);
}

static int p_ppoll(struct probe *p)
{
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, ppoll(NULL, 0, &ts, NULL), 0, T_NS);
}

static int p_select(struct probe *p)
{
	struct timeval tv = { 0, TIMEOUT_MS * 1000 };
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, select(0, NULL, NULL, NULL, &tv), 0, T_NS);
}

static int p_pselect(struct probe *p)
{
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, pselect(0, NULL, NULL, NULL, &ts, NULL), 0, T_NS);
}

static int quiet_epoll = -1;   /* an epoll set with nothing in it */

static int p_epoll_wait(struct probe *p)
{
	struct epoll_event ev;
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, epoll_wait(quiet_epoll, &ev, 1, TIMEOUT_MS), 0, T_NS);
}

static int p_epoll_pwait(struct probe *p)
{
	struct epoll_event ev;
	sigset_t mask;   /* the thread's own: an empty one would let SIGUSR1 in */
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, epoll_pwait(quiet_epoll, &ev, 1, TIMEOUT_MS, &mask), 0, T_NS);
}

static int p_epoll_pwait2(struct probe *p)
{
	struct epoll_event ev;
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, epoll_pwait2(quiet_epoll, &ev, 1, &ts, NULL), 0, T_NS);
}

static int p_nanosleep(struct probe *p)
{
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, nanosleep(&ts, NULL), 0, T_NS);
}

static int p_nanosleep_rem(struct probe *p)
{
	struct timespec ts = ts_of(T_NS), rem;
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, nanosleep(&ts, &rem), 0, T_NS);
}

static int p_clock_nanosleep(struct probe *p)
{
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, posix_result(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL)), 0, T_NS);
}

static int p_clock_nanosleep_abs(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	struct timespec deadline = ts_of(t0 + T_NS);
	return timed(p, t0, posix_result(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL)), 0, T_NS);
}

static int p_usleep(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, usleep(TIMEOUT_MS * 1000), 0, T_NS);
}

static int p_sleep(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	/* sleep() returns the seconds it did not sleep */
	return timed(p, t0, (long)sleep(1), 0, 1000000000);
}

static sem_t never_posted;

static int p_sem_timedwait(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	struct timespec deadline = ts_of(now_ns(CLOCK_REALTIME) + T_NS);
	long r = sem_timedwait(&never_posted, &deadline);
	if (r == -1 && errno == ETIMEDOUT)
		r = -ETIMEDOUT;
	return timed(p, t0, r, -ETIMEDOUT, T_NS);
}

static int p_sigtimedwait(struct probe *p)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);   /* blocked in every thread, never sent */
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	long r = sigtimedwait(&set, NULL, &ts);
	if (r == -1 && errno == EAGAIN)
		r = -EAGAIN;
	return timed(p, t0, r, -EAGAIN, T_NS);
}

static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_signalled = PTHREAD_COND_INITIALIZER;

static int p_cond_timedwait(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	struct timespec deadline = ts_of(now_ns(CLOCK_REALTIME) + T_NS);
	pthread_mutex_lock(&cond_mu);
	long r = posix_result(pthread_cond_timedwait(&never_signalled, &cond_mu, &deadline));
	pthread_mutex_unlock(&cond_mu);
	return timed(p, t0, r, -ETIMEDOUT, T_NS);
}

static int futex_word;

static int p_futex(struct probe *p)
{
	struct timespec ts = ts_of(T_NS);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	if (r == -1 && errno == ETIMEDOUT)
		r = -ETIMEDOUT;
	return timed(p, t0, r, -ETIMEDOUT, T_NS);
}

static int p_syscall_poll(struct probe *p)
{
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	return timed(p, t0, syscall(SYS_poll, NULL, 0, TIMEOUT_MS), 0, T_NS);
}

/* poll as a bare syscall instruction, as a program without libc makes it */
static int p_raw_poll(struct probe *p)
{
	long r;
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "0"((long)SYS_poll), "D"(0L), "S"(0L), "d"((long)TIMEOUT_MS)
			 : "rcx", "r11", "memory");
	if (r < 0) {
		errno = (int)-r;
		r = -1;
	}
	return timed(p, t0, r, 0, T_NS);
}

/* ---- probes woken by the poster ---- */

static sem_t posted_sem;
static volatile uint64_t sem_posts, sem_taken;
static int wake_fd = -1, wake_epoll = -1;
static volatile uint64_t wake_writes, wake_seen;

#define SIG_PAUSE (SIGRTMIN + 1)
#define SIG_SUSPEND (SIGRTMIN + 2)
#define SIG_WAITED (SIGRTMIN + 3)
static volatile uint64_t pause_sent, pause_handled, suspend_sent, suspend_handled, waited_sent;

static void on_pause_signal(int sig) { (void)sig; pause_handled++; }
static void on_suspend_signal(int sig) { (void)sig; suspend_handled++; }

static int fail_with(struct probe *p, const char *what, long r)
{
	snprintf(p->why, sizeof p->why, "%s (returned %ld, %s)", what, r, r < 0 ? strerror(errno) : "no error");
	return -1;
}

static int p_sem_wait(struct probe *p)
{
	long r = sem_wait(&posted_sem);
	if (r != 0)
		return fail_with(p, "sem_wait failed", r);
	if (++sem_taken > sem_posts)
		return fail_with(p, "sem_wait returned more times than the semaphore was posted", r);
	return 0;
}

/* Its event array has a page of its own, off the stack: the mprotect tracker protects
 * it again at each checkpoint, and nothing but the kernel writes into it. A call
 * blocked across a checkpoint must still be able to (not fail with EFAULT). */
static union { struct epoll_event ev; char page[4096]; } forever_events __attribute__((aligned(4096)));

static int p_epoll_forever(struct probe *p)
{
	struct epoll_event *events = &forever_events.ev;
	long r = epoll_wait(wake_epoll, events, 1, -1);
	struct epoll_event ev = *events;
	if (r != 1 || !(ev.events & EPOLLIN))
		return fail_with(p, "epoll_wait without a timeout returned without an event", r);
	uint64_t n;
	if (read(wake_fd, &n, sizeof n) != sizeof n)
		return fail_with(p, "eventfd read", -1);
	wake_seen += n;
	if (wake_seen > wake_writes)
		return fail_with(p, "more events than writes", r);
	return 0;
}

static int p_sigwaitinfo(struct probe *p)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIG_WAITED);
	siginfo_t si;
	long r = sigwaitinfo(&set, &si);
	if (r != SIG_WAITED)
		return fail_with(p, "sigwaitinfo returned something else than the signal sent", r);
	return 0;
}

static int p_pause(struct probe *p)
{
	uint64_t before = pause_handled;
	long r = pause();
	if (r != -1 || errno != EINTR)
		return fail_with(p, "pause", r);
	if (pause_handled == before)
		return fail_with(p, "pause returned, but the program's handler did not run", r);
	return 0;
}

static int p_sigsuspend(struct probe *p)
{
	uint64_t before = suspend_handled;
	sigset_t mask;
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIG_SUSPEND);
	long r = sigsuspend(&mask);
	if (r != -1 || errno != EINTR)
		return fail_with(p, "sigsuspend", r);
	if (suspend_handled == before)
		return fail_with(p, "sigsuspend returned, but the program's handler did not run", r);
	return 0;
}

/* Reads that block until the poster writes: into static memory, which a write
 * tracker protects after each checkpoint; once through libc, once as syscall(). */
static int feed[2][2] = { { -1, -1 }, { -1, -1 } };
static volatile uint64_t fed[2], eaten[2];
static uint64_t read_into[2][512];

static int pipe_read(struct probe *p, int which, int raw)
{
	long r = raw ? syscall(SYS_read, feed[which][0], read_into[which], sizeof(uint64_t))
		     : read(feed[which][0], read_into[which], sizeof(uint64_t));
	if (r != (long)sizeof(uint64_t))
		return fail_with(p, "read from the pipe the poster writes", r);
	if (read_into[which][0] != ++eaten[which] || eaten[which] > fed[which])
		return fail_with(p, "read a value the poster did not write next", (long)read_into[which][0]);
	return 0;
}

static int p_pipe_read(struct probe *p) { return pipe_read(p, 0, 0); }
static int p_syscall_read(struct probe *p) { return pipe_read(p, 1, 1); }

static struct probe *probe_named(const char *name)
{
	for (int i = 0; i < nprobes; i++)
		if (!strcmp(probes[i].name, name))
			return &probes[i];
	return NULL;
}

static void *poster(void *arg)
{
	(void)arg;
	pid_t me = getpid();
	for (;;) {
		struct timespec ts = ts_of((int64_t)POST_MS * 1000000);
		while (nanosleep(&ts, &ts) != 0)
			wl_fail("poster: nanosleep: %s", strerror(errno));
		sem_posts++;
		sem_post(&posted_sem);
		for (int k = 0; k < 2; k++) {
			uint64_t v = ++fed[k];
			if (write(feed[k][1], &v, sizeof v) != sizeof v)
				wl_fail("poster: pipe write: %s", strerror(errno));
		}
		wake_writes++;
		uint64_t one = 1;
		if (write(wake_fd, &one, sizeof one) != sizeof one)
			wl_fail("poster: eventfd write: %s", strerror(errno));
		struct probe *pp = probe_named("pause"), *ps = probe_named("sigsuspend"), *pw = probe_named("sigwaitinfo");
		if (pp->tid && syscall(SYS_tgkill, me, pp->tid, SIG_PAUSE) == 0)
			pause_sent++;
		if (ps->tid && syscall(SYS_tgkill, me, ps->tid, SIG_SUSPEND) == 0)
			suspend_sent++;
		if (pw->tid && syscall(SYS_tgkill, me, pw->tid, SIG_WAITED) == 0)
			waited_sent++;
	}
	return NULL;
}

static void *run_probe(void *arg)
{
	struct probe *p = arg;
	p->tid = (pid_t)syscall(SYS_gettid);
	if (!strcmp(p->name, "sigsuspend")) {
		sigset_t s;   /* delivered only while suspended */
		sigemptyset(&s);
		sigaddset(&s, SIG_SUSPEND);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
	}
	for (;;) {
		if (p->call(p) != 0)
			wl_fail("%s: %s", p->name, p->why);
		p->calls++;
	}
	return NULL;
}

static void add(const char *name, int (*call)(struct probe *))
{
	probes[nprobes++] = (struct probe){ .name = name, .call = call };
}

int main(void)
{
	wl_init("blocking");
	start_wall = now_ns(CLOCK_MONOTONIC);
	if (sem_init(&never_posted, 0, 0) || sem_init(&posted_sem, 0, 0))
		wl_fail("sem_init: %s", strerror(errno));
	quiet_epoll = epoll_create1(EPOLL_CLOEXEC);
	wake_epoll = epoll_create1(EPOLL_CLOEXEC);
	wake_fd = eventfd(0, EFD_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	if (quiet_epoll < 0 || wake_epoll < 0 || wake_fd < 0 || epoll_ctl(wake_epoll, EPOLL_CTL_ADD, wake_fd, &ev))
		wl_fail("epoll/eventfd: %s", strerror(errno));
	if (pipe2(feed[0], O_CLOEXEC) || pipe2(feed[1], O_CLOEXEC))
		wl_fail("pipe2: %s", strerror(errno));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);   /* no SA_RESTART: pause and sigsuspend end with EINTR */
	sa.sa_handler = on_pause_signal;
	sigaction(SIG_PAUSE, &sa, NULL);
	sa.sa_handler = on_suspend_signal;
	sigaction(SIG_SUSPEND, &sa, NULL);

	add("poll", p_poll);
	add("ppoll", p_ppoll);
	add("select", p_select);
	add("pselect", p_pselect);
	add("epoll_wait", p_epoll_wait);
	add("epoll_pwait", p_epoll_pwait);
	add("epoll_pwait2", p_epoll_pwait2);
	add("nanosleep", p_nanosleep);
	add("nanosleep-rem", p_nanosleep_rem);
	add("clock_nanosleep", p_clock_nanosleep);
	add("clock_nanosleep-abs", p_clock_nanosleep_abs);
	add("usleep", p_usleep);
	add("sleep", p_sleep);
	add("sem_timedwait", p_sem_timedwait);
	add("sigtimedwait", p_sigtimedwait);
	add("cond_timedwait", p_cond_timedwait);
	add("futex", p_futex);
	add("syscall-poll", p_syscall_poll);
	add("raw-poll", p_raw_poll);
	add("sem_wait", p_sem_wait);
	add("epoll-forever", p_epoll_forever);
	add("sigwaitinfo", p_sigwaitinfo);
	add("pause", p_pause);
	add("sigsuspend", p_sigsuspend);
	add("pipe-read", p_pipe_read);
	add("syscall-read", p_syscall_read);

	/* Signals a probe waits for stay blocked everywhere else; SIGUSR1 (verify) goes
	 * to this thread only. */
	sigset_t waited, usr1, old;
	sigemptyset(&waited);
	sigaddset(&waited, SIGUSR2);
	sigaddset(&waited, SIG_WAITED);
	pthread_sigmask(SIG_BLOCK, &waited, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	for (int i = 0; i < nprobes; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, run_probe, &probes[i]);
		if (err)
			wl_fail("pthread_create: %s", strerror(err));
		pthread_detach(t);
	}
	pthread_t t;
	if (pthread_create(&t, NULL, poster, NULL))
		wl_fail("pthread_create(poster)");
	pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	wl_out("blocking ready probes=%d", nprobes);
	for (uint64_t tick = 1;; tick++) {
		wl_out("count %llu", (unsigned long long)tick);
		wl_sleep_ms(50);   /* SIGUSR1, the program's own signal, may end it early */
		if (!wl_verify_requested)
			continue;
		wl_verify_requested = 0;
		/* every probe completed calls since the last verification (sleep takes 1 s) */
		for (int waited_ms = 0;; waited_ms += 50) {
			int idle = -1;
			for (int i = 0; i < nprobes && idle < 0; i++)
				if (probes[i].calls == probes[i].verified)
					idle = i;
			if (idle < 0)
				break;
			if (waited_ms > 30000)
				wl_fail("%s: no call completed for 30 s", probes[idle].name);
			wl_sleep_ms(50);
		}
		uint64_t calls = 0;
		for (int i = 0; i < nprobes; i++) {
			probes[i].verified = probes[i].calls;
			calls += probes[i].calls;
		}
		if (getpid() != wl_pid0 || getppid() != wl_ppid0)
			wl_fail("getpid()/getppid() changed");
		wl_out("VERIFY OK blocking probes=%d calls=%llu over=%lld", nprobes, (unsigned long long)calls,
		       (long long)(max_over_ns / 1000000));
	}
}
