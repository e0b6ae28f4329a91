/* us-probe: reports the kernel features Understudy uses, one per line:
 *   name<TAB>yes|no<TAB>detail
 * hactl doctor runs it and renders the result. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
/* PAGEMAP_SCAN (Linux 6.7); the installed headers predate it. */
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)

static void report(const char *name, int ok, const char *detail)
{
	printf("%s\t%s\t%s\n", name, ok ? "yes" : "no", detail);
}

static void uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		report("userfaultfd", 0, strerror(errno));
		report("uffd-wp-async", 0, "no userfaultfd");
		return;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int ok = ioctl(fd, UFFDIO_API, &api) == 0;
	report("userfaultfd", ok, ok ? "available" : strerror(errno));
	close(fd);
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	struct uffdio_api wp = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	ok = fd >= 0 && ioctl(fd, UFFDIO_API, &wp) == 0;
	report("uffd-wp-async", ok, ok ? "asynchronous write-protect tracking" : "kernel lacks UFFD_FEATURE_WP_ASYNC");
	if (fd >= 0)
		close(fd);
}

static void pagemap_scan(void)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct pm_scan_arg a = { .size = sizeof a };
	int r = fd < 0 ? -1 : ioctl(fd, PAGEMAP_SCAN, &a);
	int ok = r >= 0 || (errno != ENOTTY && errno != EOPNOTSUPP);
	report("pagemap-scan", ok, ok ? "PAGEMAP_SCAN ioctl present" : "kernel older than 6.7");
	if (fd >= 0)
		close(fd);
}

/* clone3 with set_tid inside a new pid namespace, the way restores use it. */
static void set_tid(void)
{
	pid_t child = fork();
	if (child == 0) {
		if (unshare(CLONE_NEWPID) < 0)
			_exit(2);
		pid_t init = fork();
		if (init == 0) {
			pid_t want = 4242, tid = want;
			struct clone_args a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&tid, .set_tid_size = 1 };
			pid_t p = (pid_t)syscall(SYS_clone3, &a, sizeof a);
			if (p == 0)
				_exit(getpid() == want ? 0 : 1);
			int st;
			if (p < 0 || waitpid(p, &st, 0) < 0)
				_exit(3);
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 4);
		}
		int st;
		waitpid(init, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 5);
	}
	int st = 0;
	waitpid(child, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 9;
	report("pid-namespace", code != 2, code == 2 ? "unshare(CLONE_NEWPID) refused" : "available");
	report("clone3-set-tid", code == 0, code == 0 ? "processes keep their pids on restore" :
		"clone3 cannot choose pids: restores are impossible");
}

static void namespaces(void)
{
	pid_t c = fork();
	if (c == 0)
		_exit(unshare(CLONE_NEWNET | CLONE_NEWNS) == 0 ? 0 : 1);
	int st = 0;
	waitpid(c, &st, 0);
	int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	report("net-mount-namespaces", ok, ok ? "nodes can be simulated" : "unshare refused");
}

static void tcp_repair(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	int ok = s >= 0 && setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) == 0;
	report("tcp-repair", ok, ok ? "TCP connections can be moved" : "needs CAP_NET_ADMIN");
	if (s >= 0)
		close(s);
}

static void mm_map(void)
{
	unsigned int size = 0;
	int ok = prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size > 0;
	report("prctl-mm-map", ok, ok ? "memory layout can be restored" : "kernel lacks CONFIG_CHECKPOINT_RESTORE");
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--help")) {
		puts("usage: us-probe\nPrints name<TAB>yes|no<TAB>detail for each kernel feature Understudy uses.");
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	uffd();
	pagemap_scan();
	set_tid();
	namespaces();
	tcp_repair();
	mm_map();
	return 0;
}
