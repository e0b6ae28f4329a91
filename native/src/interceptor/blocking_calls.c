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
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "internal.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"

#define CALL_NONE 0
#define CALL_SEEN 1          /* snapshot taken, thread not frozen yet */

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

/* The value of a libc call that makes system call nr_a or nr_b, timed. */
#define TIMED(nr_a, nr_b, call)                                            \
	({                                                                 \
		struct call_clock outer_ = call_begin(nr_a, nr_b);         \
		__typeof__(call) r_ = (call);                              \
		call_end(outer_);                                          \
		r_;                                                        \
	})

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
	case SYS_pread64: case SYS_preadv: case SYS_preadv2:
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

/* A call that the kernel, or we, will start again after the checkpoint: what it
 * writes into must stay writable under the mprotect tracker, or the kernel fails it
 * with EFAULT (a read made without the wrappers; the result arrays of the blocking
 * calls, which the program may keep anywhere, and their timeouts written back). */
static void note_kernel_write(struct us_kernel_write *k, long nr, const uint64_t *a)
{
	uint64_t fdset = (a[0] + 63) / 64 * 8;   /* select's sets: n bits in longs */
	switch (nr) {
	case SYS_poll:
		*k = (struct us_kernel_write){ .range = { { a[0], a[1] * sizeof(struct pollfd) } } };
		break;
	case SYS_ppoll:
		*k = (struct us_kernel_write){ .range = { { a[0], a[1] * sizeof(struct pollfd) },
							  { a[2], a[2] ? sizeof(struct timespec) : 0 } } };
		break;
	case SYS_select: case SYS_pselect6:
		*k = (struct us_kernel_write){ .range = { { a[1], a[1] ? fdset : 0 }, { a[2], a[2] ? fdset : 0 },
							  { a[3], a[3] ? fdset : 0 },
							  { a[4], !a[4] ? 0 : nr == SYS_select ? sizeof(struct timeval)
										: sizeof(struct timespec) } } };
		break;
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
		*k = (struct us_kernel_write){ .range = { { a[1], a[2] * sizeof(struct epoll_event) } } };
		break;
	case SYS_nanosleep:
		*k = (struct us_kernel_write){ .range = { { a[1], a[1] ? sizeof(struct timespec) : 0 } } };
		break;
	case SYS_clock_nanosleep:
		*k = (struct us_kernel_write){ .range = { { a[3], a[3] ? sizeof(struct timespec) : 0 } } };
		break;
	case SYS_rt_sigtimedwait:
		*k = (struct us_kernel_write){ .range = { { a[1], a[1] ? sizeof(siginfo_t) : 0 } } };
		break;
	case SYS_read: case SYS_pread64:
		*k = (struct us_kernel_write){ .range = { { a[1], a[2] } } };
		break;
	case SYS_recvfrom:
		*k = (struct us_kernel_write){ .range = { { a[1], a[2] }, { a[4], a[4] ? sizeof(struct sockaddr_storage) : 0 },
							  { a[5], a[5] ? sizeof(socklen_t) : 0 } } };
		break;
	case SYS_readv: case SYS_preadv: case SYS_preadv2:
		*k = (struct us_kernel_write){ .iov = a[1], .iovcnt = (int)a[2] };
		break;
	case SYS_recvmsg:
		if (a[1]) {
			const struct msghdr *m = (const struct msghdr *)a[1];
			*k = (struct us_kernel_write){ .range = { { a[1], sizeof *m },
								  { (uint64_t)m->msg_name, m->msg_namelen },
								  { (uint64_t)m->msg_control, m->msg_controllen } },
						       .iov = (uint64_t)m->msg_iov, .iovcnt = (int)m->msg_iovlen };
		}
		break;
	}
}

/* A libc call that writes its results (and timeout) into the caller's memory: those
 * pages are made writable before it enters the kernel, and stay so across a checkpoint
 * while it runs (the mprotect tracker; nothing otherwise). */
#define WRITING(nr, a0, a1, a2, a3, a4, call)                                                    \
	({                                                                                       \
		const uint64_t args_[6] = { (uint64_t)(a0), (uint64_t)(a1), (uint64_t)(a2),      \
					    (uint64_t)(a3), (uint64_t)(a4), 0 };                 \
		struct us_kernel_write note_ = { 0 };                                            \
		note_kernel_write(&note_, nr, args_);                                            \
		struct us_kernel_write outer_ = us_kernel_write_begin(&note_);                   \
		__typeof__(call) r_ = (call);                                                    \
		us_kernel_write_end(&outer_);                                                    \
		r_;                                                                              \
	})

/* Whether the thread stopped right after a "syscall" (0f 05). Bytes before the
 * instruction pointer are read only within its page, which is mapped. */
static int after_syscall_instruction(const greg_t *r)
{
	const unsigned char *ip = (const unsigned char *)r[REG_RIP];
	return (uint64_t)ip % 4096 >= 2 && ip[-2] == 0x0f && ip[-1] == 0x05;
}

/* The thread entered a wrapped call after the checkpoint thread looked (/proc said
 * "running"), and the signal interrupted it: the frame still holds the arguments,
 * only the number is gone from rax. It is one of the two the wrapper expects; the
 * usual "mov $nr, %eax" right before the syscall instruction says which. */
static long wrapped_call_number(const greg_t *r)
{
	const unsigned char *ip = (const unsigned char *)r[REG_RIP];
	if (!clock_now.start_ns || !after_syscall_instruction(r))
		return -1;
	if ((uint64_t)ip % 4096 >= 7 && ip[-7] == 0xb8) {
		int32_t imm;
		__builtin_memcpy(&imm, ip - 6, sizeof imm);
		if (imm == clock_now.nr[0] || imm == clock_now.nr[1])
			return imm;
	}
	return clock_now.nr[0] == clock_now.nr[1] ? clock_now.nr[0] : -1;
}

/* Whether the frame shows the snapshot's call: interrupted (EINTR, ours to start
 * again), or about to be started again by the kernel itself (SA_RESTART: the frame
 * is back on the syscall instruction). */
static int frame_is(const struct us_blocked_call *c, const greg_t *r, int *interrupted)
{
	const uint64_t regs[6] = { (uint64_t)r[REG_RDI], (uint64_t)r[REG_RSI], (uint64_t)r[REG_RDX],
				   (uint64_t)r[REG_R10], (uint64_t)r[REG_R8], (uint64_t)r[REG_R9] };
	*interrupted = r[REG_RAX] == -EINTR && (uint64_t)r[REG_RIP] == c->pc;
	int restarting = r[REG_RAX] == c->nr && (uint64_t)r[REG_RIP] == c->pc - 2;
	if (!(*interrupted || restarting) || (uint64_t)r[REG_RSP] != c->sp)
		return 0;   /* the thread left that call before the signal came */
	for (int i = 0; i < 6; i++)
		if (regs[i] != c->args[i])
			return 0;
	return 1;
}

/* A raw system call (not through libc) that the thread entered after the checkpoint
 * thread looked and before the signal came: nothing says which call it was, so it
 * returns EINTR. Said in the log, so that an application that then fails can be
 * traced to it (docs/architecture.md, "A checkpoint is invisible to blocked calls"). */
static void note_unknown_call(const struct us_thread_slot *s, const greg_t *r)
{
	if (!after_syscall_instruction(r))
		return;   /* EINTR is the application's own value */
	char detail[96];
	struct us_buf b = { detail, 0, sizeof detail };
	us_put(&b, "tid=");
	us_puti(&b, s->tid);
	us_put(&b, " pc=0x");
	us_putx(&b, (uint64_t)r[REG_RIP]);
	us_log("blocked-call-unknown", us_term(&b));
}

void us_blocked_on_freeze(struct us_thread_slot *s, void *ucontext, struct us_restart *out)
{
	struct us_blocked_call *c = &s->call;
	const greg_t *r = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	int interrupted = 0;
	s->kwrite = *us_wrapped_kernel_write();
	if (__atomic_exchange_n(&c->state, CALL_NONE, __ATOMIC_ACQ_REL) == CALL_SEEN && frame_is(c, r, &interrupted)) {
		if (!s->kwrite.range[0][0] && !s->kwrite.iov)
			note_kernel_write(&s->kwrite, c->nr, c->args);
		out->nr = interrupted ? c->nr : -1;
	} else if (r[REG_RAX] == -EINTR) {
		/* Not blocked yet when the checkpoint thread looked: a wrapped call, or the
		 * very call this handler entered again last time (a thread slow to get the
		 * processor back after a thaw meets the next checkpoint on its way in). */
		out->nr = wrapped_call_number(r);
		if (out->nr < 0 && frame_is(&s->restarted, r, &interrupted))
			out->nr = s->restarted.nr;
		if (out->nr >= 0 && !s->kwrite.range[0][0] && !s->kwrite.iov) {
			/* it returned EINTR: its arguments are still in their registers */
			const uint64_t args[6] = { (uint64_t)r[REG_RDI], (uint64_t)r[REG_RSI], (uint64_t)r[REG_RDX],
						   (uint64_t)r[REG_R10], (uint64_t)r[REG_R8], (uint64_t)r[REG_R9] };
			note_kernel_write(&s->kwrite, out->nr, args);
		}
	}
	if (out->nr >= 0 && !restartable(out->nr))
		out->nr = -1;
	if (out->nr < 0) {
		if (r[REG_RAX] == -EINTR)
			note_unknown_call(s, r);
		return;
	}
	out->elapsed_ns = -1;
	if (clock_now.start_ns && (clock_now.nr[0] == out->nr || clock_now.nr[1] == out->nr))
		out->elapsed_ns = (int64_t)(monotonic_ns() - clock_now.start_ns);
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

static void shorten_timeout(struct us_blocked_call *c, const struct us_restart *rs, greg_t *r)
{
	int64_t el = rs->elapsed_ns;
	switch (rs->nr) {
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

void us_blocked_resume(struct us_thread_slot *s, void *ucontext, const struct us_restart *rs)
{
	greg_t *r = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	if (rs->nr < 0)
		return;
	shorten_timeout(&s->call, rs, r);
	r[REG_RAX] = rs->nr;
	/* as the call will be entered: interrupted again, it is recognised by this */
	s->restarted = (struct us_blocked_call){ .nr = rs->nr, .sp = (uint64_t)r[REG_RSP], .pc = (uint64_t)r[REG_RIP],
		.args = { (uint64_t)r[REG_RDI], (uint64_t)r[REG_RSI], (uint64_t)r[REG_RDX],
			  (uint64_t)r[REG_R10], (uint64_t)r[REG_R8], (uint64_t)r[REG_R9] } };
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
	return TIMED(SYS_poll, SYS_ppoll, WRITING(SYS_poll, fds, n, 0, 0, 0, real_poll(fds, n, timeout)));
}

US_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	sigset_t copy;
	RESOLVE(ppoll);
	return TIMED(SYS_ppoll, SYS_ppoll, WRITING(SYS_ppoll, fds, n, timeout, 0, 0, real_ppoll(fds, n, timeout, us_without_freeze(mask, &copy))));
}

US_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout)
{
	static int (*real_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	RESOLVE(select);
	return TIMED(SYS_select, SYS_pselect6, WRITING(SYS_select, n, r, w, e, timeout, real_select(n, r, w, e, timeout)));
}

US_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	sigset_t copy;
	RESOLVE(pselect);
	return TIMED(SYS_pselect6, SYS_pselect6,
		     WRITING(SYS_pselect6, n, r, w, e, timeout, real_pselect(n, r, w, e, timeout, us_without_freeze(mask, &copy))));
}

US_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
	static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
	RESOLVE(epoll_wait);
	return TIMED(SYS_epoll_wait, SYS_epoll_pwait, WRITING(SYS_epoll_wait, ep, ev, max, 0, 0, real_epoll_wait(ep, ev, max, timeout)));
}

US_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
	static int (*real_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	sigset_t copy;
	RESOLVE(epoll_pwait);
	return TIMED(SYS_epoll_pwait, SYS_epoll_pwait,
		     WRITING(SYS_epoll_pwait, ep, ev, max, 0, 0, real_epoll_pwait(ep, ev, max, timeout, us_without_freeze(mask, &copy))));
}

US_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real_epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	sigset_t copy;
	RESOLVE(epoll_pwait2);
	return TIMED(SYS_epoll_pwait2, SYS_epoll_pwait2,
		     WRITING(SYS_epoll_pwait2, ep, ev, max, 0, 0, real_epoll_pwait2(ep, ev, max, timeout, us_without_freeze(mask, &copy))));
}

US_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	static int (*real_nanosleep)(const struct timespec *, struct timespec *);
	RESOLVE(nanosleep);
	return TIMED(SYS_nanosleep, SYS_clock_nanosleep, real_nanosleep(req, rem));
}

US_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem)
{
	static int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
	RESOLVE(clock_nanosleep);
	return TIMED(SYS_clock_nanosleep, SYS_clock_nanosleep, real_clock_nanosleep(clock, flags, req, rem));
}

US_EXPORT int usleep(useconds_t usec)
{
	static int (*real_usleep)(useconds_t);
	RESOLVE(usleep);
	return TIMED(SYS_nanosleep, SYS_clock_nanosleep, real_usleep(usec));
}

US_EXPORT int pause(void)
{
	static int (*real_pause)(void);
	RESOLVE(pause);
	return TIMED(SYS_pause, SYS_ppoll, real_pause());
}

US_EXPORT int sigsuspend(const sigset_t *mask)
{
	static int (*real_sigsuspend)(const sigset_t *);
	sigset_t copy;
	RESOLVE(sigsuspend);
	return TIMED(SYS_rt_sigsuspend, SYS_rt_sigsuspend, real_sigsuspend(us_without_freeze(mask, &copy)));
}

US_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	static int (*real_sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
	sigset_t copy;
	RESOLVE(sigtimedwait);
	return TIMED(SYS_rt_sigtimedwait, SYS_rt_sigtimedwait, real_sigtimedwait(us_without_freeze(set, &copy), info, timeout));
}

US_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	static int (*real_sigwaitinfo)(const sigset_t *, siginfo_t *);
	sigset_t copy;
	RESOLVE(sigwaitinfo);
	return TIMED(SYS_rt_sigtimedwait, SYS_rt_sigtimedwait, real_sigwaitinfo(us_without_freeze(set, &copy), info));
}

US_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	static int (*real_sigwait)(const sigset_t *, int *);
	sigset_t copy;
	RESOLVE(sigwait);
	return TIMED(SYS_rt_sigtimedwait, SYS_rt_sigtimedwait, real_sigwait(us_without_freeze(set, &copy), sig));
}

US_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	static int (*real_signalfd)(int, const sigset_t *, int);
	sigset_t copy;
	RESOLVE(signalfd);
	return real_signalfd(fd, us_without_freeze(mask, &copy), flags);
}

US_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *deadline)
{
	static int (*real_sem_timedwait)(sem_t *, const struct timespec *);
	RESOLVE(sem_timedwait);
	return TIMED(SYS_futex, SYS_futex, real_sem_timedwait(sem, deadline));
}

US_EXPORT int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *deadline)
{
	static int (*real_sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
	RESOLVE(sem_clockwait);
	return TIMED(SYS_futex, SYS_futex, real_sem_clockwait(sem, clock, deadline));
}

US_EXPORT int semtimedop(int id, struct sembuf *ops, size_t n, const struct timespec *timeout)
{
	static int (*real_semtimedop)(int, struct sembuf *, size_t, const struct timespec *);
	RESOLVE(semtimedop);
	return TIMED(SYS_semtimedop, SYS_semtimedop, real_semtimedop(id, ops, n, timeout));
}

/* The generic entry of raw system calls: its timeouts are measured too. */
US_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
	long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
	va_end(ap);
	long r = TIMED(nr, nr, us_sc6(nr, a, b, c, d, e, f));
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}
