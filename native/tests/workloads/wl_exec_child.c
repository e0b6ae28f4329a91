/* wl_exec_child PARENT-PID: exec'd by the child of wl_exec_parent. Checks that
 * its parent is PARENT-PID, prints "child count N" every 20 ms (N grows by
 * exactly one per line). On SIGUSR1: "VERIFY OK exec-child ...". */
#include "wl_common.h"

int main(int argc, char **argv)
{
	wl_init("exec-child");
	if (argc < 2)
		wl_fail("usage: wl_exec_child PARENT-PID");
	pid_t parent = (pid_t)strtol(argv[1], NULL, 10);
	if (wl_ppid0 != parent)
		wl_fail("getppid() is %d, expected the forking parent %d",
			(int)wl_ppid0, (int)parent);
	wl_out("exec-child ready pid %d ppid %d", (int)wl_pid0, (int)wl_ppid0);

	uint64_t n = 0;
	for (;;) {
		wl_check_ids();
		if (wl_take_verify())
			wl_out("VERIFY OK exec-child count=%llu pid=%d ppid=%d",
			       (unsigned long long)n, (int)wl_pid0, (int)wl_ppid0);
		n++;
		wl_out("child count %llu", (unsigned long long)n);
		wl_sleep_ms(20);
	}
}
