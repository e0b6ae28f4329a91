/* Shared helpers for the Understudy test workloads (header only).
 *
 * The workloads are ordinary programs linked against libc only; they run
 * unmodified under the interceptor (LD_PRELOAD). Conventions:
 *   - one line per event on stdout, each written with a single write(2);
 *   - "FAIL <role>: <reason>" and exit status 3 on any inconsistency;
 *   - SIGUSR1 asks for a full verification, answered with
 *     "VERIFY OK <role> <details>" (or FAIL) at the next loop iteration;
 *   - getpid()/getppid() are recorded at start and must never change.
 * Calls retry on EINTR where the workload's own signals (SIGUSR1, SIGUSR2)
 * may interrupt them. A checkpoint never causes one: wl_blocking checks that. */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t wl_verify_requested;
static const char *wl_role = "workload";
static pid_t wl_pid0, wl_ppid0;

static inline void wl_on_usr1(int sig)
{
	(void)sig;
	wl_verify_requested = 1;
}

/* Writes all of buf, retrying on EINTR and short writes. 0 or -1 (errno). */
static inline int wl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes. Returns len, 0 on end of file before len bytes
 * (a partial record is reported as end of file), or -1 (errno). */
static inline ssize_t wl_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Prints one line (a trailing newline is added) with a single write(2). */
__attribute__((format(printf, 1, 2)))
static inline void wl_out(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)(sizeof line - 2);
	line[n++] = '\n';
	(void)wl_write_all(STDOUT_FILENO, line, (size_t)n);
}

/* Prints "FAIL <role>: <reason>" and exits with status 3. */
__attribute__((format(printf, 1, 2), noreturn))
static inline void wl_fail(const char *fmt, ...)
{
	char reason[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	wl_out("FAIL %s: %s", wl_role, reason);
	_exit(3);
}

/* Records the process identity and installs the SIGUSR1 handler. */
static inline void wl_init(const char *role)
{
	struct sigaction sa;
	wl_role = role;
	wl_pid0 = getpid();
	wl_ppid0 = getppid();
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = wl_on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		wl_fail("sigaction(SIGUSR1): %s", strerror(errno));
}

/* After fork: the child takes a new role and its own identity; its parent
 * must stay the process that forked it. */
static inline void wl_reinit_child(const char *role, pid_t parent)
{
	wl_role = role;
	wl_pid0 = getpid();
	wl_ppid0 = parent;
	if (getppid() != parent)
		wl_fail("getppid() is %d right after fork, expected %d",
			(int)getppid(), (int)parent);
}

static inline void wl_check_ids(void)
{
	pid_t pid = getpid(), ppid = getppid();
	if (pid != wl_pid0)
		wl_fail("getpid() changed from %d to %d", (int)wl_pid0, (int)pid);
	if (ppid != wl_ppid0)
		wl_fail("getppid() changed from %d to %d", (int)wl_ppid0, (int)ppid);
}

/* Takes (and clears) a pending verification request. */
static inline int wl_take_verify(void)
{
	if (!wl_verify_requested)
		return 0;
	wl_verify_requested = 0;
	return 1;
}

/* Sleeps about ms milliseconds. A signal (the interceptor's, for one) only
 * interrupts the sleep when it asked for a verification. Relative times only:
 * a restored process may run on a clock that started elsewhere. */
static inline void wl_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !wl_verify_requested)
		;
}

/* The usual main loop: "count N" every ms milliseconds, verify() on SIGUSR1. */
__attribute__((noreturn))
static inline void wl_count_forever(void (*verify)(void), long ms)
{
	for (unsigned long long n = 1;; n++) {
		wl_check_ids();
		if (wl_take_verify())
			verify();
		wl_out("count %llu", n);
		wl_sleep_ms(ms);
	}
}

/* splitmix64 finaliser: a cheap, well-mixed hash. */
static inline uint64_t wl_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A 64-byte sequenced record used by wl_pipes and the FIFO pair. */
#define WL_REC_SIZE 64
struct wl_rec {
	uint64_t seq;
	uint32_t magic;
	uint32_t kind;
	unsigned char payload[40];
	uint64_t sum;
};
_Static_assert(sizeof(struct wl_rec) == WL_REC_SIZE, "record is 64 bytes");

#define WL_REC_MAGIC 0x55535444u        /* "USTD" */

static inline uint64_t wl_rec_sum(const struct wl_rec *r)
{
	const unsigned char *p = (const unsigned char *)r;
	uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a over the first 56 bytes */
	for (size_t i = 0; i < offsetof(struct wl_rec, sum); i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static inline void wl_rec_make(struct wl_rec *r, uint64_t seq, uint32_t kind)
{
	r->seq = seq;
	r->magic = WL_REC_MAGIC;
	r->kind = kind;
	uint64_t s = wl_mix(seq ^ ((uint64_t)kind << 56));
	for (size_t i = 0; i < sizeof r->payload; i++)
		r->payload[i] = (unsigned char)(wl_mix(s + i) >> 24);
	r->sum = wl_rec_sum(r);
}

/* Checks a record's framing and content; fails loudly on any mismatch. */
static inline void wl_rec_check(const struct wl_rec *r, uint64_t want_seq, uint32_t kind)
{
	struct wl_rec expect;
	if (r->magic != WL_REC_MAGIC)
		wl_fail("record %llu: bad magic 0x%08x (stream out of step)",
			(unsigned long long)want_seq, r->magic);
	if (r->kind != kind)
		wl_fail("record %llu: kind %u, expected %u",
			(unsigned long long)want_seq, r->kind, kind);
	if (r->seq != want_seq)
		wl_fail("record sequence %llu, expected %llu (%s)",
			(unsigned long long)r->seq, (unsigned long long)want_seq,
			r->seq < want_seq ? "duplicated" : "lost");
	wl_rec_make(&expect, want_seq, kind);
	if (memcmp(&expect, r, sizeof expect) != 0)
		wl_fail("record %llu: content or checksum mismatch",
			(unsigned long long)want_seq);
}

#endif
