/* wl_exec_parent: what wl_script.sh execs into. It forks a child that execs
 * wl_exec_child (from the same directory), then prints "parent count N"
 * every 20 ms (N grows by exactly one per line) and checks that the child is
 * still alive. On SIGUSR1: "VERIFY OK exec-parent ...". */
#include "wl_common.h"
#include <limits.h>
#include <sys/wait.h>

int main(void)
{
	wl_init("exec-parent");

	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len <= 0)
		wl_fail("readlink /proc/self/exe: %s", strerror(errno));
	exe[len] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash || (size_t)(slash - exe) + sizeof "/wl_exec_child" > sizeof exe)
		wl_fail("cannot place wl_exec_child next to %s", exe);
	strcpy(slash, "/wl_exec_child");

	char parent_arg[32];
	snprintf(parent_arg, sizeof parent_arg, "%d", (int)wl_pid0);
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		execl(exe, "wl_exec_child", parent_arg, (char *)NULL);
		wl_out("FAIL exec-parent: exec %s: %s", exe, strerror(errno));
		_exit(3);
	}
	wl_out("exec-parent ready pid %d ppid %d child %d", (int)wl_pid0, (int)wl_ppid0,
	       (int)child);

	uint64_t n = 0;
	for (;;) {
		int st;
		wl_check_ids();
		pid_t w = waitpid(child, &st, WNOHANG);
		if (w != 0)
			wl_fail("child %d is gone (waitpid %d, status 0x%x)", (int)child,
				(int)w, w > 0 ? st : 0);
		if (wl_take_verify())
			wl_out("VERIFY OK exec-parent count=%llu child=%d pid=%d ppid=%d",
			       (unsigned long long)n, (int)child, (int)wl_pid0,
			       (int)wl_ppid0);
		n++;
		wl_out("parent count %llu", (unsigned long long)n);
		wl_sleep_ms(20);
	}
}
