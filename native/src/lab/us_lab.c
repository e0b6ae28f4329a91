/* us-lab: the namespaces of hactl lab's nodes (docs/lab.md).
 *
 *   us-lab hold [--net-only] DIR
 *       Creates a network, mount and pid namespace (--net-only: a network namespace only),
 *       whose first process holds them: pid 1 of the new pid namespace, which reaps orphans
 *       and exits on SIGTERM. Prints that process's pid (as the caller sees it) and closes its
 *       stdout, then stays, back in the caller's namespaces, as the holder's parent until the
 *       holder ends: it reaps it at once, so that nothing of the node (not even a zombie's
 *       pid namespace) outlives it. DIR names the node; the holder's working directory is DIR.
 *   us-lab start DIR PID LOG -- PROGRAM ARGS...
 *       Runs PROGRAM inside the namespaces of process PID, detached: a session of its own,
 *       stdin /dev/null, stdout and stderr appended to LOG, working directory DIR, and pid 1
 *       of the node as its parent. Prints its pid and exits once it is executing.
 *   us-lab exec DIR PID -- PROGRAM ARGS...
 *       Runs PROGRAM inside the namespaces of process PID in the foreground, in the caller's
 *       working directory, and exits with its status.
 *
 * DIR is always an argument so that `hactl lab down` finds every us-lab process of a lab by its
 * command line, even when the lab's state file never recorded it. Errors: one line on stderr
 * and exit status 125. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL 125

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "us-lab: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
	exit(FAIL);
}

static void usage(void)
{
	fprintf(stderr, "us-lab: usage: us-lab hold [--net-only] DIR | us-lab start DIR PID LOG -- PROGRAM ARGS... | "
			"us-lab exec DIR PID -- PROGRAM ARGS...\n");
	exit(FAIL);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* pid 1 of a node: reaps every process that ends up its child, until SIGTERM. A handler is
 * installed for each signal it waits for: pid 1 of a namespace never receives a signal left at
 * its default action (except SIGKILL from outside, which is how a node crashes). */
static void hold_forever(void)
{
	sigset_t wanted;
	sigemptyset(&wanted);
	sigaddset(&wanted, SIGCHLD);
	sigaddset(&wanted, SIGTERM);
	sigaddset(&wanted, SIGINT);
	sigprocmask(SIG_BLOCK, &wanted, NULL);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		int sig = sigwaitinfo(&wanted, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			_exit(0);
	}
}

static void quiet_stdio(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		die("open", "/dev/null");
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
}

static int hold(int net_only, const char *dir)
{
	if (chdir(dir) != 0)
		die("chdir", dir);
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) != 0)
		die("pipe", NULL);
	int own_net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int own_mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (own_net < 0 || own_mnt < 0)
		die("open", "/proc/self/ns");
	int flags = net_only ? CLONE_NEWNET : CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID;
	if (unshare(flags) != 0)
		die("unshare", NULL);
	/* Nothing mounted in the node propagates to the host. */
	if (!net_only && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		die("mount --make-rprivate", "/");
	pid_t child = fork();
	if (child < 0)
		die("fork", NULL);
	if (child == 0) {
		close(ready[0]);
		setsid();
		/* The node's own /proc: its pids as the node's processes see them. */
		if (!net_only && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
			dprintf(ready[1], "mount /proc: %s", strerror(errno));
			_exit(FAIL);
		}
		quiet_stdio();
		if (write(ready[1], "k", 1) != 1)
			_exit(FAIL);
		close(ready[1]);
		hold_forever();
	}
	close(ready[1]);
	char msg[256] = "";
	ssize_t n = read(ready[0], msg, sizeof msg - 1);
	if (n == 1 && msg[0] == 'k') {
		/* The keeper: in the caller's namespaces again, so that it holds none of the node's. */
		if (setns(own_net, CLONE_NEWNET) != 0 || setns(own_mnt, CLONE_NEWNS) != 0)
			die("setns", "back to the caller's namespaces");
		printf("%d\n", (int)child);
		fflush(stdout);
		setsid();
		quiet_stdio();
		if (chdir("/") != 0)
			_exit(FAIL);
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
		return 0;
	}
	msg[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "us-lab: hold %s: %s\n", dir, n > 0 ? msg : "the holder exited before it was ready");
	return FAIL;
}

/* Enters the namespaces of PID (those that differ from ours): network, pid (for the children
 * forked next) and mount last, since it changes what /proc shows. */
static void enter(const char *pid)
{
	static const char *const kinds[] = { "net", "pid", "mnt" };
	int fds[3];
	for (int i = 0; i < 3; i++) {
		char theirs[64], ours[64];
		snprintf(theirs, sizeof theirs, "/proc/%s/ns/%s", pid, kinds[i]);
		snprintf(ours, sizeof ours, "/proc/self/ns/%s", kinds[i]);
		struct stat a, b;
		if (stat(theirs, &a) != 0)
			die("stat", theirs);
		if (stat(ours, &b) != 0)
			die("stat", ours);
		fds[i] = a.st_ino == b.st_ino && a.st_dev == b.st_dev ? -1 : open(theirs, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0 && !(a.st_ino == b.st_ino && a.st_dev == b.st_dev))
			die("open", theirs);
	}
	for (int i = 0; i < 3; i++) {
		if (fds[i] >= 0 && setns(fds[i], 0) != 0)
			die("setns", kinds[i]);
		if (fds[i] >= 0)
			close(fds[i]);
	}
}

/* The pid, as the host's /proc (procfd) shows it, of the child of process PARENT; 0 if none. */
static pid_t host_child_of(int procfd, pid_t parent)
{
	int fd = dup(procfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d)
		return 0;
	pid_t found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], buf[4096];
		snprintf(path, sizeof path, "%s/status", e->d_name);
		int sf = openat(procfd, path, O_RDONLY | O_CLOEXEC);
		if (sf < 0)
			continue;
		ssize_t n = read(sf, buf, sizeof buf - 1);
		close(sf);
		buf[n > 0 ? n : 0] = '\0';
		const char *ppid = strstr(buf, "\nPPid:\t");
		if (ppid && atoi(ppid + 7) == (int)parent)
			found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

/* PROGRAM's parent must be a process of the node: when it exits, PROGRAM goes to pid 1 of the
 * node, never to a subreaper among our own ancestors (systemd --user, a test runner) outside
 * the node, which would have to reap it before the node could end. So a first child, inside
 * the node's pid namespace, forks PROGRAM, reports, and exits once we have found PROGRAM's pid
 * in the host's /proc. */
static int start(const char *dir, const char *pid, const char *log, char **argv)
{
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		die("open", "/proc");
	enter(pid);
	int report[2], ack[2];
	if (pipe2(report, O_CLOEXEC) != 0 || pipe2(ack, O_CLOEXEC) != 0)
		die("pipe", NULL);
	pid_t first = fork();
	if (first < 0)
		die("fork", NULL);
	if (first == 0) {
		close(report[0]);
		close(ack[1]);
		int failed[2];
		if (pipe2(failed, O_CLOEXEC) != 0)
			_exit(FAIL);
		pid_t program = fork();
		if (program < 0)
			_exit(FAIL);
		if (program == 0) {
			close(failed[0]);
			setsid();
			int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (out < 0 || null < 0 || chdir(dir) != 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) {
				dprintf(failed[1], "cannot prepare %s: %s", argv[0], strerror(errno));
				_exit(FAIL);
			}
			execvp(argv[0], argv);
			dprintf(failed[1], "exec %s: %s", argv[0], strerror(errno));
			_exit(FAIL);
		}
		close(failed[1]);
		char msg[512] = "";
		ssize_t n = read(failed[0], msg, sizeof msg - 1);
		if (n > 0) {
			waitpid(program, NULL, 0);
			if (write(report[1], msg, (size_t)n) < 0)
				_exit(FAIL);
			_exit(FAIL);
		}
		if (write(report[1], "k", 1) != 1)
			_exit(FAIL);
		char done;
		while (read(ack[0], &done, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(report[1]);
	close(ack[0]);
	char msg[512] = "";
	ssize_t n = read(report[0], msg, sizeof msg - 1);
	pid_t program = n == 1 && msg[0] == 'k' ? host_child_of(procfd, first) : 0;
	close(ack[1]);
	waitpid(first, NULL, 0);
	if (program <= 0) {
		msg[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "us-lab: %s\n", n > 1 ? msg : n == 1 ? "the started program's pid was not found" : "the node's first child failed");
		return FAIL;
	}
	/* It executes; pid 1 of the node is its parent now. */
	printf("%d\n", (int)program);
	return 0;
}

static pid_t foreground;

static void forward(int sig)
{
	if (foreground > 0)
		kill(foreground, sig);
}

static int exec_in(const char *pid, char **argv)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		die("getcwd", NULL);
	enter(pid);
	struct sigaction sa = { .sa_handler = forward };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	foreground = fork();
	if (foreground < 0)
		die("fork", NULL);
	if (foreground == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		if (chdir(cwd) != 0 && chdir("/") != 0)
			_exit(FAIL);
		execvp(argv[0], argv);
		fprintf(stderr, "us-lab: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(foreground, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid", NULL);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "hold") == 0) {
		int net_only = strcmp(argv[2], "--net-only") == 0;
		if (argc != 3 + net_only)
			usage();
		return hold(net_only, argv[2 + net_only]);
	}
	if (argc >= 7 && strcmp(argv[1], "start") == 0 && strcmp(argv[5], "--") == 0)
		return start(argv[2], argv[3], argv[4], argv + 6);
	if (argc >= 6 && strcmp(argv[1], "exec") == 0 && strcmp(argv[4], "--") == 0)
		return exec_in(argv[3], argv + 5);
	usage();
	return FAIL;
}
