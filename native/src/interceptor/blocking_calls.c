/* Blocking calls go on across a checkpoint and a restore.
 *
 * The freeze signal interrupts a thread blocked in a system call. Calls that the
 * kernel never restarts after a signal handler (poll, nanosleep, epoll_wait, a
 * futex wait with a timeout, sigtimedwait, ...: signal(7)) then return EINTR to
 * the application, and a sleep ends early. Here such a call is recognised when
 * its thread freezes and, once the group resumes, it is entered again from the
 * handler's frame: the frame's instruction pointer goes back to the syscall
 * instruction and rax gets the call's number again, so rt_sigreturn lands on the
 * call itself. This works however the program made the call (libc or raw).
 *
 * Which call it was: the checkpoint thread reads /proc/self/task/TID/syscall
 * just before it signals the thread (number, arguments, stack and instruction
 * pointers); the handler trusts it only if the frame shows that very call
 * interrupted (same pc, same arguments, rax = -EINTR).
 *
 * How much of its timeout is left: select, pselect, ppoll and a sleep with a
 * remainder pointer have the kernel write it back themselves. For the others, the
 * libc functions below note when the call began, so the timeout passed again is
 * the original one less the time spent before the freeze: a call never returns
 * early, and waits past its deadline by no more than the group was frozen. A call
 * made without libc (inline assembly) gets its whole timeout again. */
#include <errno.h>
#include <dlfcn.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "internal.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"

#define CALL_NONE 0
#define CALL_SEEN 1          /* snapshot taken, thread not frozen yet */
#define CALL_RESTART 2       /* enter it again on resume */

/* When the libc call this thread is in began, and which system calls it makes. */
struct call_clock {
	uint64_t start_ns;      /* 0: not in a timed libc call */
	long nr[2];
};
static __thread struct call_clock clock_now __attribute__((tls_model("initial-exec")));

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	us_sc2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct call_clock call_begin(long nr_a, long nr_b)
{
	struct call_clock outer = clock_now;   /* an application signal handler may nest */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);   /* the vDSO: no system call on this path */
	clock_now = (struct call_clock){ (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, { nr_a, nr_b } };
	return outer;
}

static void call_end(struct call_clock outer) { clock_now = outer; }

/* ---- recognising the interrupted call ---- */

static int restartable(long nr)
{
	switch (nr) {
	case SYS_poll: case SYS_ppoll: case SYS_select: case SYS_pselect6:
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
	case SYS_nanosleep: case SYS_clock_nanosleep:
	case SYS_futex: case SYS_futex_waitv:
	case SYS_rt_sigtimedwait: case SYS_rt_sigsuspend: case SYS_pause:
	case SYS_io_getevents: case SYS_io_pgetevents: case SYS_io_uring_enter:
	case SYS_semop: case SYS_semtimedop: case SYS_msgrcv: case SYS_msgsnd:
	case SYS_mq_timedsend: case SYS_mq_timedreceive:
	/* sockets with SO_RCVTIMEO/SO_SNDTIMEO (nothing was transferred) */
	case SYS_accept: case SYS_accept4: case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg:
	case SYS_sendto: case SYS_sendmsg: case SYS_sendmmsg:
	case SYS_read: case SYS_readv: case SYS_write: case SYS_writev:
		return 1;
	default:
		return 0;
	}
}

static uint64_t parse_hex(const char **p)
{
	us_skip_spaces(p);
	if ((*p)[0] == '0' && (*p)[1] == 'x')
		*p += 2;
	return us_parse_u(p, 16);
}

void us_blocked_snapshot(struct us_thread_slot *s, int tid)
{
	struct us_blocked_call *c = &s->call;
	char path[64], text[256];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, "/proc/self/task/");
	us_putu(&b, (uint64_t)tid);
	us_put(&b, "/syscall");
	__atomic_store_n(&c->state, CALL_NONE, __ATOMIC_RELEASE);
	/* "running", "-1 sp pc" (blocked, not in a call), or "nr a1 .. a6 sp pc" */
	if (us_read_file(us_term(&b), text, sizeof text) <= 0 || text[0] < '0' || text[0] > '9')
		return;
	const char *p = text;
	c->nr = (long)us_parse_u(&p, 10);
	if (!restartable(c->nr))
		return;
	for (int i = 0; i < 6; i++)
		c->args[i] = parse_hex(&p);
	c->sp = parse_hex(&p);
	c->pc = parse_hex(&p);
	__atomic_store_n(&c->state, CALL_SEEN, __ATOMIC_RELEASE);
}

void us_blocked_on_freeze(struct us_thread_slot *s, void *ucontext)
{
	struct us_blocked_call *c = &s->call;
	greg_t *r = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	if (__atomic_exchange_n(&c->state, CALL_NONE, __ATOMIC_ACQ_REL) != CALL_SEEN)
		return;
	const uint64_t regs[6] = { (uint64_t)r[REG_RDI], (uint64_t)r[REG_RSI], (uint64_t)r[REG_RDX],
				   (uint64_t)r[REG_R10], (uint64_t)r[REG_R8], (uint64_t)r[REG_R9] };
	if (r[REG_RAX] != -EINTR || (uint64_t)r[REG_RIP] != c->pc || (uint64_t)r[REG_RSP] != c->sp)
		return;   /* the thread left that call before the signal came */
	for (int i = 0; i < 6; i++)
		if (regs[i] != c->args[i])
			return;
	c->elapsed_ns = -1;
	if (clock_now.start_ns && (clock_now.nr[0] == c->nr || clock_now.nr[1] == c->nr))
		c->elapsed_ns = (int64_t)(monotonic_ns() - clock_now.start_ns);
	c->state = CALL_RESTART;
}

/* ---- entering it again, with what is left of its timeout ---- */

static int64_t left_ns(int64_t total_ns, int64_t elapsed_ns)
{
	return total_ns > elapsed_ns ? total_ns - elapsed_ns : 0;
}

/* A timeout in milliseconds held in a register; negative means none. */
static void shorten_ms(greg_t *arg, int64_t elapsed_ns)
{
	int ms = (int)*arg;
	if (ms <= 0 || elapsed_ns < 0)
		return;
	/* whole milliseconds spent: the call never ends before its timeout */
	*arg = (greg_t)(int)left_ns(ms, elapsed_ns / 1000000);
}

/* A relative timespec: what is left goes into the thread's own scratch one. */
static void shorten_ts(struct us_blocked_call *c, greg_t *arg, int64_t elapsed_ns)
{
	const struct timespec *ts = (const struct timespec *)*arg;
	if (!ts || elapsed_ns < 0)
		return;
	int64_t left = left_ns((int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec, elapsed_ns);
	c->scratch.tv_sec = left / 1000000000;
	c->scratch.tv_nsec = left % 1000000000;
	*arg = (greg_t)&c->scratch;
}

/* nanosleep and relative clock_nanosleep wrote what is left into rem, if given. */
static void shorten_sleep(struct us_blocked_call *c, greg_t *req, greg_t rem, int64_t elapsed_ns)
{
	if (rem)
		*req = rem;
	else
		shorten_ts(c, req, elapsed_ns);
}

static void shorten_timeout(struct us_blocked_call *c, greg_t *r)
{
	int64_t el = c->elapsed_ns;
	switch (c->nr) {
	case SYS_poll:
		shorten_ms(&r[REG_RDX], el);
		break;
	case SYS_epoll_wait: case SYS_epoll_pwait:
		shorten_ms(&r[REG_R10], el);
		break;
	case SYS_epoll_pwait2: case SYS_semtimedop:
		shorten_ts(c, &r[REG_R10], el);
		break;
	case SYS_rt_sigtimedwait:
		shorten_ts(c, &r[REG_RDX], el);
		break;
	case SYS_io_getevents: case SYS_io_pgetevents:
		shorten_ts(c, &r[REG_R8], el);
		break;
	case SYS_nanosleep:
		shorten_sleep(c, &r[REG_RDI], r[REG_RSI], el);
		break;
	case SYS_clock_nanosleep:
		if (!(r[REG_RSI] & TIMER_ABSTIME))
			shorten_sleep(c, &r[REG_RDX], r[REG_R10], el);
		break;
	case SYS_futex:
		if ((r[REG_RSI] & FUTEX_CMD_MASK) == FUTEX_WAIT)   /* the others take a deadline */
			shorten_ts(c, &r[REG_R10], el);
		break;
	default:
		/* no timeout, an absolute deadline, or one the kernel updated (select,
		 * pselect6, ppoll) */
		break;
	}
}

void us_blocked_resume(struct us_thread_slot *s, void *ucontext)
{
	struct us_blocked_call *c = &s->call;
	greg_t *r = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	if (c->state != CALL_RESTART)
		return;
	c->state = CALL_NONE;
	shorten_timeout(c, r);
	r[REG_RAX] = c->nr;
	r[REG_RIP] -= 2;   /* back onto "syscall" (0f 05) */
	if (clock_now.start_ns)
		clock_now.start_ns = monotonic_ns();   /* what is left counts from now */
}

/* ---- libc calls: when a timed call began; and no mask may block or wait for
 * the freeze signal (the thread could not freeze, or the program would get the
 * interceptor's signal) ---- */

US_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	static int (*real_poll)(struct pollfd *, nfds_t, int);
	RESOLVE(poll);
	struct call_clock outer = call_begin(SYS_poll, SYS_ppoll);
	int r = real_poll(fds, n, timeout);
	call_end(outer);
	return r;
}

US_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	sigset_t copy;
	RESOLVE(ppoll);
	return real_ppoll(fds, n, timeout, us_without_freeze(mask, &copy));
}

US_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	sigset_t copy;
	RESOLVE(pselect);
	return real_pselect(n, r, w, e, timeout, us_without_freeze(mask, &copy));
}

US_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
	static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
	RESOLVE(epoll_wait);
	struct call_clock outer = call_begin(SYS_epoll_wait, SYS_epoll_pwait);
	int r = real_epoll_wait(ep, ev, max, timeout);
	call_end(outer);
	return r;
}

US_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
	static int (*real_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	sigset_t copy;
	RESOLVE(epoll_pwait);
	struct call_clock outer = call_begin(SYS_epoll_pwait, SYS_epoll_pwait);
	int r = real_epoll_pwait(ep, ev, max, timeout, us_without_freeze(mask, &copy));
	call_end(outer);
	return r;
}

US_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real_epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	sigset_t copy;
	RESOLVE(epoll_pwait2);
	struct call_clock outer = call_begin(SYS_epoll_pwait2, SYS_epoll_pwait2);
	int r = real_epoll_pwait2(ep, ev, max, timeout, us_without_freeze(mask, &copy));
	call_end(outer);
	return r;
}

US_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	static int (*real_nanosleep)(const struct timespec *, struct timespec *);
	RESOLVE(nanosleep);
	struct call_clock outer = call_begin(SYS_nanosleep, SYS_clock_nanosleep);
	int r = real_nanosleep(req, rem);
	call_end(outer);
	return r;
}

US_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem)
{
	static int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
	RESOLVE(clock_nanosleep);
	struct call_clock outer = call_begin(SYS_clock_nanosleep, SYS_clock_nanosleep);
	int r = real_clock_nanosleep(clock, flags, req, rem);
	call_end(outer);
	return r;
}

US_EXPORT int usleep(useconds_t usec)
{
	static int (*real_usleep)(useconds_t);
	RESOLVE(usleep);
	struct call_clock outer = call_begin(SYS_nanosleep, SYS_clock_nanosleep);
	int r = real_usleep(usec);
	call_end(outer);
	return r;
}

US_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	static int (*real_sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
	sigset_t copy;
	RESOLVE(sigtimedwait);
	struct call_clock outer = call_begin(SYS_rt_sigtimedwait, SYS_rt_sigtimedwait);
	int r = real_sigtimedwait(us_without_freeze(set, &copy), info, timeout);
	call_end(outer);
	return r;
}

US_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	static int (*real_sigwaitinfo)(const sigset_t *, siginfo_t *);
	sigset_t copy;
	RESOLVE(sigwaitinfo);
	return real_sigwaitinfo(us_without_freeze(set, &copy), info);
}

US_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	static int (*real_sigwait)(const sigset_t *, int *);
	sigset_t copy;
	RESOLVE(sigwait);
	return real_sigwait(us_without_freeze(set, &copy), sig);
}

US_EXPORT int sigsuspend(const sigset_t *mask)
{
	static int (*real_sigsuspend)(const sigset_t *);
	sigset_t copy;
	RESOLVE(sigsuspend);
	return real_sigsuspend(us_without_freeze(mask, &copy));
}

US_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	static int (*real_signalfd)(int, const sigset_t *, int);
	sigset_t copy;
	RESOLVE(signalfd);
	return real_signalfd(fd, us_without_freeze(mask, &copy), flags);
}

US_EXPORT int semtimedop(int id, struct sembuf *ops, size_t n, const struct timespec *timeout)
{
	static int (*real_semtimedop)(int, struct sembuf *, size_t, const struct timespec *);
	RESOLVE(semtimedop);
	struct call_clock outer = call_begin(SYS_semtimedop, SYS_semtimedop);
	int r = real_semtimedop(id, ops, n, timeout);
	call_end(outer);
	return r;
}

/* The generic entry of raw system calls: its timeouts are measured too. */
US_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
	long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
	va_end(ap);
	struct call_clock outer = call_begin(nr, nr);
	long r = us_sc6(nr, a, b, c, d, e, f);
	call_end(outer);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}
