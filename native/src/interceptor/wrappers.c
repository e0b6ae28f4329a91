/* Library calls the interceptor wraps so that every process of the group stays
 * registered and checkpointable: fork and exec go through the registration lock,
 * exec keeps the group identity even when the application clears its environment,
 * and the freeze signal can be neither caught nor blocked by the application. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <fcntl.h>
#include "internal.h"
#include "../common/us_fmt.h"

extern char **environ;

static pid_t (*real_fork)(void);
static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			       const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_system)(const char *);
static FILE *(*real_popen)(const char *, const char *);
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
static int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
static int (*real_close)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);

void us_wrappers_init(void)
{
	RESOLVE(fork);
	RESOLVE(execve);
	RESOLVE(execvpe);
	RESOLVE(posix_spawn);
	RESOLVE(posix_spawnp);
	RESOLVE(system);
	RESOLVE(popen);
	RESOLVE(sigaction);
	RESOLVE(sigprocmask);
	RESOLVE(pthread_sigmask);
	RESOLVE(close);
	RESOLVE(dup2);
	RESOLVE(dup3);
}

/* Registered and talking to the coordinator from this very process (a child made
 * by a raw clone inherits our memory but not our registration). */
static int linked(void)
{
	return us.active && !us.link_dead && us.registered && getpid() == us.vpid;
}

/* ---- environment kept across exec ---- */

static const char *const kept[] = {
	"UNDERSTUDY_COORD", "UNDERSTUDY_GROUP", "UNDERSTUDY_APP", "UNDERSTUDY_LIB",
	"UNDERSTUDY_LOG", "UNDERSTUDY_EXEC_VPID", "UNDERSTUDY_EXEC_COUNT", "UNDERSTUDY_OUTPUT",
	"UNDERSTUDY_TRACKER", "UNDERSTUDY_FILES",
	"UNDERSTUDY_LAUNCH_VPID", "UNDERSTUDY_LINK_SILENT", "LD_PRELOAD",
};
#define NKEPT (sizeof kept / sizeof kept[0])

static int is_kept(const char *entry)
{
	for (size_t i = 0; i < NKEPT; i++) {
		size_t n = strlen(kept[i]);
		if (!strncmp(entry, kept[i], n) && entry[n] == '=')
			return 1;
	}
	return 0;
}

struct fixed_env {
	char coord[US_PATH_MAX + 32], group[300], app[300], lib[US_PATH_MAX + 32];
	char log[US_PATH_MAX + 32], exec_vpid[48], exec_count[48];
	char output[US_PATH_MAX + 32], tracker[48], files[US_PATH_MAX + 32];
	char preload[2 * US_PATH_MAX + 32];
};

static void set_var(char *dst, size_t cap, const char *name, const char *value)
{
	struct us_buf b = { dst, 0, cap };
	us_put(&b, name);
	us_putc(&b, '=');
	us_put(&b, value);
	us_term(&b);
}

/* Fills out[] with envp minus our variables, plus our variables as they must be
 * for the next program. for_exec: the next program is this process (same pid). */
static char **fix_env(char *const envp[], char **out, size_t cap, struct fixed_env *f, int for_exec)
{
	size_t n = 0;
	const char *their_preload = NULL;
	for (char *const *e = envp; e && *e; e++) {
		if (!strncmp(*e, "LD_PRELOAD=", 11))
			their_preload = *e + 11;
		if (!is_kept(*e) && n + 16 < cap)
			out[n++] = *e;
	}
	set_var(f->coord, sizeof f->coord, "UNDERSTUDY_COORD", us.coord_path);
	set_var(f->group, sizeof f->group, "UNDERSTUDY_GROUP", us.group);
	set_var(f->app, sizeof f->app, "UNDERSTUDY_APP", us.app);
	set_var(f->lib, sizeof f->lib, "UNDERSTUDY_LIB", us.lib_path);
	out[n++] = f->coord;
	out[n++] = f->group;
	out[n++] = f->app;
	out[n++] = f->lib;
	if (us.log_path[0]) {
		set_var(f->log, sizeof f->log, "UNDERSTUDY_LOG", us.log_path);
		out[n++] = f->log;
	}
	if (us.output_path[0]) {
		set_var(f->output, sizeof f->output, "UNDERSTUDY_OUTPUT", us.output_path);
		out[n++] = f->output;
	}
	if (us.tracker_wanted[0]) {
		set_var(f->tracker, sizeof f->tracker, "UNDERSTUDY_TRACKER", us.tracker_wanted);
		out[n++] = f->tracker;
	}
	if (us.files[0]) {
		set_var(f->files, sizeof f->files, "UNDERSTUDY_FILES", us.files);
		out[n++] = f->files;
	}
	if (us.silent)   /* the next program need not wait for a coordinator that did not answer us */
		out[n++] = (char *)"UNDERSTUDY_LINK_SILENT=1";
	if (for_exec) {
		struct us_buf b = { f->exec_vpid, 0, sizeof f->exec_vpid };
		us_put(&b, "UNDERSTUDY_EXEC_VPID=");
		us_puti(&b, getpid());
		us_term(&b);
		b = (struct us_buf){ f->exec_count, 0, sizeof f->exec_count };
		us_put(&b, "UNDERSTUDY_EXEC_COUNT=");
		us_puti(&b, us.exec_count + 1);
		us_term(&b);
		out[n++] = f->exec_vpid;
		out[n++] = f->exec_count;
	}
	/* our library first; keep whatever else the application preloads */
	struct us_buf b = { f->preload, 0, sizeof f->preload };
	us_put(&b, "LD_PRELOAD=");
	us_put(&b, us.lib_path);
	if (their_preload && !strstr(their_preload, us.lib_path) && *their_preload) {
		us_putc(&b, ':');
		us_put(&b, their_preload);
	} else if (their_preload && strstr(their_preload, us.lib_path)) {
		b.len = 0;
		us_put(&b, "LD_PRELOAD=");
		us_put(&b, their_preload);
	}
	us_term(&b);
	out[n++] = f->preload;
	out[n] = NULL;
	return out;
}

static size_t env_count(char *const envp[])
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	return n + 20;
}

/* Whether environ holds name=value; an empty value is not ours to check. */
static int env_is(const char *name, const char *value)
{
	const char *v = getenv(name);
	return !*value || (v && !strcmp(v, value));
}

/* Puts our variables back into environ for calls that spawn through it. */
static void ensure_environ(void)
{
	if (!us.active)
		return;
	/* Set already, unless the process was restored by another agent (on another
	 * node: other files) since. */
	if (env_is("UNDERSTUDY_COORD", us.coord_path) && env_is("UNDERSTUDY_LOG", us.log_path) &&
	    env_is("UNDERSTUDY_OUTPUT", us.output_path))
		return;
	setenv("UNDERSTUDY_COORD", us.coord_path, 1);
	setenv("UNDERSTUDY_GROUP", us.group, 1);
	setenv("UNDERSTUDY_APP", us.app, 1);
	setenv("UNDERSTUDY_LIB", us.lib_path, 1);
	if (us.log_path[0])
		setenv("UNDERSTUDY_LOG", us.log_path, 1);
	if (us.output_path[0])
		setenv("UNDERSTUDY_OUTPUT", us.output_path, 1);
	const char *pre = getenv("LD_PRELOAD");
	if (!pre || !strstr(pre, us.lib_path))
		setenv("LD_PRELOAD", us.lib_path, 1);
}

/* ---- fork ---- */

US_EXPORT pid_t fork(void)
{
	RESOLVE(fork);
	if (!linked())
		return real_fork();
	us_request("FORK_BEGIN");
	struct us_fork_handover *h = us_tracker_fork_begin();
	pid_t pid = real_fork();
	if (pid == 0) {
		us_after_fork_child(h);
		return 0;
	}
	us_tracker_fork_end(h, pid > 0);
	char line[40];
	struct us_buf b = { line, 0, sizeof line };
	us_put(&b, "FORK_END ");
	us_puti(&b, pid < 0 ? -1 : pid);
	us_putc(&b, '\n');
	us_notify(us_term(&b));
	return pid;
}

/* ---- _exit ---- */

/* exit() waits for an image being written in a destructor (main.c); _exit skips those */
US_EXPORT void _exit(int status)
{
	if (us.active)
		us_exit_after_image();
	for (;;)
		us_sc1(SYS_exit_group, status);
}

US_EXPORT void _Exit(int status)
{
	_exit(status);
}

/* vfork's child may only exec or _exit, which fork's child can do as well; a real
 * vfork child would share our address space and link. */
US_EXPORT pid_t vfork(void)
{
	return fork();
}

/* ---- exec ---- */

static int exec_with(int (*fn)(const char *, char *const[], char *const[]),
		     const char *path, char *const argv[], char *const envp[])
{
	char *env[env_count(envp)];
	struct fixed_env f;
	if (!us.active)
		return fn(path, argv, envp);
	int talk = linked();
	if (talk)
		us_request("EXEC_BEGIN");
	int r = fn(path, argv, fix_env(envp, env, sizeof env / sizeof env[0], &f, 1));
	int saved = errno;
	if (talk)
		us_notify("EXEC_FAIL\n");
	errno = saved;
	return r;
}

US_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	RESOLVE(execve);
	return exec_with(real_execve, path, argv, envp);
}

US_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	RESOLVE(execvpe);
	return exec_with(real_execvpe, file, argv, envp);
}

US_EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }
US_EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

#define COLLECT_ARGS(first, ap, argv)                                          \
	size_t argc_ = 1;                                                      \
	va_start(ap, first);                                                   \
	while (va_arg(ap, char *))                                             \
		argc_++;                                                       \
	va_end(ap);                                                            \
	char *argv[argc_ + 1];                                                 \
	argv[0] = (char *)(first);                                             \
	va_start(ap, first);                                                   \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                 \
		argv[i_] = va_arg(ap, char *);

US_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	va_end(ap);
	return execve(path, argv, environ);
}

US_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	va_end(ap);
	return execvpe(file, argv, environ);
}

US_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

/* ---- spawn ---- */

static void spawn_end(pid_t pid)
{
	char line[40];
	struct us_buf b = { line, 0, sizeof line };
	us_put(&b, "SPAWN_END ");
	us_puti(&b, pid);
	us_putc(&b, '\n');
	us_notify(us_term(&b));
}

static int spawn_with(typeof(real_posix_spawn) fn, pid_t *pid, const char *path,
		      const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
		      char *const argv[], char *const envp[])
{
	char *env[env_count(envp)];
	struct fixed_env f;
	pid_t child = 0;
	if (!us.active)
		return fn(pid, path, fa, at, argv, envp);
	int talk = linked();
	if (talk)
		us_request("SPAWN_BEGIN");
	int r = fn(&child, path, fa, at, argv, fix_env(envp, env, sizeof env / sizeof env[0], &f, 0));
	if (talk)
		spawn_end(r == 0 ? child : 0);
	if (pid)
		*pid = child;
	return r;
}

US_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	RESOLVE(posix_spawn);
	return spawn_with(real_posix_spawn, pid, path, fa, at, argv, envp);
}

US_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	RESOLVE(posix_spawnp);
	return spawn_with(real_posix_spawnp, pid, file, fa, at, argv, envp);
}

US_EXPORT int system(const char *cmd)
{
	RESOLVE(system);
	if (!cmd || !linked())
		return real_system(cmd);
	ensure_environ();
	us_request("SPAWN_BEGIN");
	int r = real_system(cmd);
	spawn_end(0);
	return r;
}

US_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	RESOLVE(popen);
	if (!linked())
		return real_popen(cmd, mode);
	ensure_environ();
	us_request("SPAWN_BEGIN");
	FILE *f = real_popen(cmd, mode);
	spawn_end(0);
	return f;
}

/* ---- the interceptor's descriptors are ours ----
 * The link and the userfaultfd live at high numbers (link.c); a program that closes
 * every descriptor it did not open (close in a loop, close_range, closefrom: the
 * daemon idiom) or puts one of its own on that number must not take them. They do
 * not exist for the application: closing one fails with EBADF, a range skips
 * them, and a dup2 onto one moves ours out of the way first. A raw system call
 * cannot be stopped: the checkpoint thread then notices and makes a new link. */

int us_fd_is_ours(int fd)
{
	return us.active && fd >= 0 && ((fd == us.coord_fd && us_link_ok()) || (fd == us.uffd && us_fd_inode(fd) == us.uffd_ino));
}

/* Our descriptor at fd goes to another high number (the application wants fd). */
static void move_ours_from(int fd)
{
	if (!us_fd_is_ours(fd))
		return;
	int to = (int)us_sc3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, us_fd_base());
	if (to == fd || to < 0)
		to = (int)us_sc3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
	if (to < 0)
		return;   /* the application's dup2 replaces it: the link is made again */
	if (fd == us.uffd) {
		us.uffd = to;
	} else {
		us_lock(&us.send_lock);
		us.coord_fd = to;   /* same socket, same inode */
		us_unlock(&us.send_lock);
	}
	/* the application's call replaces fd itself */
}

US_EXPORT int close(int fd)
{
	RESOLVE(close);
	if (us_fd_is_ours(fd)) {
		errno = EBADF;
		return -1;
	}
	return real_close(fd);
}

/* first..last without our descriptors: the pieces between them, in order. */
static int close_pieces(unsigned first, unsigned last, int flags)
{
	int ours[2] = { -1, -1 }, n = 0;
	if (us_fd_is_ours(us.coord_fd))
		ours[n++] = us.coord_fd;
	if (us_fd_is_ours(us.uffd))
		ours[n++] = us.uffd;
	if (n == 2 && ours[0] > ours[1]) {
		int t = ours[0];
		ours[0] = ours[1];
		ours[1] = t;
	}
	unsigned from = first;
	for (int i = 0; i < n; i++) {
		unsigned o = (unsigned)ours[i];   /* below 2^31: o + 1 does not wrap */
		if (o < from || o > last)
			continue;
		if (o > from) {
			long r = us_sc3(SYS_close_range, from, o - 1, flags);
			if (r < 0) {
				errno = (int)-r;
				return -1;
			}
		}
		if (o == last)
			return 0;
		from = o + 1;
	}
	long r = us_sc3(SYS_close_range, from, last, flags);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

US_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	return close_pieces(first, last, flags);
}

US_EXPORT void closefrom(int lowfd)
{
	close_pieces(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u, 0);
}

US_EXPORT int dup2(int oldfd, int newfd)
{
	RESOLVE(dup2);
	if (oldfd != newfd)
		move_ours_from(newfd);
	return real_dup2(oldfd, newfd);
}

US_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	RESOLVE(dup3);
	if (oldfd != newfd)
		move_ours_from(newfd);
	return real_dup3(oldfd, newfd, flags);
}

/* ---- the freeze signal is ours ---- */

US_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	RESOLVE(sigaction);
	if (sig == US_SIG_FREEZE && us.active) {
		errno = EINVAL;
		return -1;
	}
	if (sig == SIGSEGV && us.tracker == US_TRACK_MPROTECT) {
		/* the tracker's handler stays installed and calls the application's */
		struct us_kernel_sigaction k, prev;
		if (act) {
			k.handler = (uint64_t)act->sa_sigaction;
			k.flags = (uint64_t)act->sa_flags;
			k.restorer = 0;
			memcpy(&k.mask, &act->sa_mask, sizeof k.mask);
		}
		us_mp_sigaction(act ? &k : NULL, &prev);
		if (old) {
			memset(old, 0, sizeof *old);
			old->sa_sigaction = (void (*)(int, siginfo_t *, void *))prev.handler;
			old->sa_flags = (int)prev.flags;
			memcpy(&old->sa_mask, &prev.mask, sizeof prev.mask);
		}
		return 0;
	}
	return real_sigaction(sig, act, old);
}

/* ---- system calls that write into the caller's memory (mprotect tracker) ----
 * The kernel cannot fault on a page the tracker protected: it fails the call with
 * EFAULT. So each wrapper unprotects (and marks written) the pages the call writes
 * into, and notes them for as long as the call runs: a checkpoint that re-arms the
 * tracker meanwhile (the thread frozen between the touch and the call, or blocked
 * in the call) leaves them writable (us_mp_release_kernel_writes). */

static __thread struct us_kernel_write kernel_write __attribute__((tls_model("initial-exec")));

const struct us_kernel_write *us_wrapped_kernel_write(void) { return &kernel_write; }

struct us_kernel_write us_kernel_write_begin(const struct us_kernel_write *note)
{
	struct us_kernel_write outer = kernel_write;
	kernel_write = *note;
	us_mp_touch_kernel_write(&kernel_write);
	return outer;
}

void us_kernel_write_end(const struct us_kernel_write *outer) { kernel_write = *outer; }

/* Runs call with the kernel's writes noted and unprotected; value of call. */
#define WRITES_INTO(note, call)                                          \
	({                                                               \
		struct us_kernel_write outer_ = kernel_write;            \
		kernel_write = (note);                                   \
		us_mp_touch_kernel_write(&kernel_write);                 \
		__typeof__(call) r_ = (call);                            \
		kernel_write = outer_;   /* a handler may have nested */ \
		r_;                                                      \
	})

#define FORWARD(ret, name, params)                       \
	static ret (*real_##name) params;                    \
	US_EXPORT ret name params

/* mremap needs one mapping: pages the tracker made writable one by one split it, so
 * the whole range is released (and merged again) first. */
US_EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
	static void *(*real_mremap)(void *, size_t, size_t, int, ...);
	RESOLVE(mremap);
	void *target = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		target = va_arg(ap, void *);
		va_end(ap);
	}
	us_mp_touch(old, old_size);
	return (flags & MREMAP_FIXED) ? real_mremap(old, old_size, new_size, flags, target)
				      : real_mremap(old, old_size, new_size, flags);
}

/* madvise and mlock change flags of mappings that /proc/self/maps does not show: the
 * capture uses its survey of them only if none of these calls began since, or was
 * under way then (capture_memory.c). Counted in, then begun; ended, then counted out. */
#define CHANGES_VM_FLAGS(call)                                                   \
	({                                                                       \
		__atomic_add_fetch(&us.vm_calls_running, 1, __ATOMIC_SEQ_CST);   \
		__atomic_add_fetch(&us.vm_calls, 1, __ATOMIC_SEQ_CST);           \
		__typeof__(call) r_ = (call);                                    \
		__atomic_sub_fetch(&us.vm_calls_running, 1, __ATOMIC_SEQ_CST);   \
		r_;                                                              \
	})

FORWARD(int, madvise, (void *addr, size_t len, int advice))
{
	RESOLVE(madvise);
	return CHANGES_VM_FLAGS(real_madvise(addr, len, advice));
}

FORWARD(int, mlock, (const void *addr, size_t len))
{
	RESOLVE(mlock);
	return CHANGES_VM_FLAGS(real_mlock(addr, len));
}

FORWARD(int, mlock2, (const void *addr, size_t len, unsigned int flags))
{
	RESOLVE(mlock2);
	return CHANGES_VM_FLAGS(real_mlock2(addr, len, flags));
}

FORWARD(int, munlock, (const void *addr, size_t len))
{
	RESOLVE(munlock);
	return CHANGES_VM_FLAGS(real_munlock(addr, len));
}

FORWARD(int, mlockall, (int flags))
{
	RESOLVE(mlockall);
	return CHANGES_VM_FLAGS(real_mlockall(flags));
}

FORWARD(int, munlockall, (void))
{
	RESOLVE(munlockall);
	return CHANGES_VM_FLAGS(real_munlockall());
}

#define ONE(b, n) ((struct us_kernel_write){ .range = { { (uint64_t)(b), (n) } } })
#define IOV(v, n) ((struct us_kernel_write){ .iov = (uint64_t)(v), .iovcnt = (n) })

FORWARD(ssize_t, read, (int fd, void *buf, size_t n))
{
	RESOLVE(read);
	return WRITES_INTO(ONE(buf, n), real_read(fd, buf, n));
}

FORWARD(ssize_t, pread, (int fd, void *buf, size_t n, off_t off))
{
	RESOLVE(pread);
	return WRITES_INTO(ONE(buf, n), real_pread(fd, buf, n, off));
}

/* the same function on x86-64 */
US_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

FORWARD(ssize_t, readv, (int fd, const struct iovec *iov, int n))
{
	RESOLVE(readv);
	return WRITES_INTO(IOV(iov, n), real_readv(fd, iov, n));
}

FORWARD(ssize_t, preadv, (int fd, const struct iovec *iov, int n, off_t off))
{
	RESOLVE(preadv);
	return WRITES_INTO(IOV(iov, n), real_preadv(fd, iov, n, off));
}

FORWARD(ssize_t, recv, (int fd, void *buf, size_t n, int flags))
{
	RESOLVE(recv);
	return WRITES_INTO(ONE(buf, n), real_recv(fd, buf, n, flags));
}

FORWARD(ssize_t, recvfrom, (int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al))
{
	RESOLVE(recvfrom);
	struct us_kernel_write k = { .range = { { (uint64_t)buf, n }, { (uint64_t)al, al ? sizeof *al : 0 },
						{ (uint64_t)a, a && al ? *al : 0 } } };
	return WRITES_INTO(k, real_recvfrom(fd, buf, n, flags, a, al));
}

FORWARD(ssize_t, recvmsg, (int fd, struct msghdr *m, int flags))
{
	RESOLVE(recvmsg);
	struct us_kernel_write k = { 0 };
	if (m)
		k = (struct us_kernel_write){ .range = { { (uint64_t)m, sizeof *m },
							 { (uint64_t)m->msg_name, m->msg_namelen },
							 { (uint64_t)m->msg_control, m->msg_controllen } },
					      .iov = (uint64_t)m->msg_iov, .iovcnt = (int)m->msg_iovlen };
	return WRITES_INTO(k, real_recvmsg(fd, m, flags));
}

US_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

const sigset_t *us_without_freeze(const sigset_t *set, sigset_t *copy)
{
	if (!set || !us.active || !sigismember(set, US_SIG_FREEZE))
		return set;
	*copy = *set;
	sigdelset(copy, US_SIG_FREEZE);
	return copy;
}

US_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;
	RESOLVE(sigprocmask);
	return real_sigprocmask(how, us_without_freeze(set, &copy), old);
}

US_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;
	RESOLVE(pthread_sigmask);
	/* the checkpoint thread itself blocks everything */
	if (set && us.active) {
		struct us_thread_slot *s = us_slot_for((int)us_sc0(SYS_gettid), 0);
		if (s && s->is_checkpoint_thread)
			return real_pthread_sigmask(how, set, old);
	}
	return real_pthread_sigmask(how, us_without_freeze(set, &copy), old);
}
