/* wl_daemon MODE: the daemon idiom. Once started it closes every descriptor above
 * stderr, as daemons do, in one of the ways programs do it (MODE):
 *   close_range  close_range(3, ~0U, 0) through libc
 *   closefrom    closefrom(3)
 *   loop         close() on every number up to the descriptor limit
 *   raw          the close_range system call itself, past every library
 * then prints "daemon count N" every 100 ms, N growing by one per line, and
 * "daemon closed MODE" once after the closing. On SIGUSR1: "VERIFY OK daemon ...". */
#include "wl_common.h"   /* first: it asks for _GNU_SOURCE */
#include <sys/resource.h>
#include <sys/syscall.h>

static void close_all(const char *mode)
{
	if (!strcmp(mode, "close_range")) {
		if (close_range(3, ~0U, 0) < 0)
			wl_fail("close_range: %s", strerror(errno));
	} else if (!strcmp(mode, "closefrom")) {
		closefrom(3);
	} else if (!strcmp(mode, "loop")) {
		struct rlimit rl;
		long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
		for (long fd = 3; fd < max; fd++)
			close((int)fd);
	} else if (!strcmp(mode, "raw")) {
		if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
			wl_fail("close_range system call: %s", strerror(errno));
	} else {
		wl_fail("unknown mode %s (close_range, closefrom, loop, raw)", mode);
	}
	wl_out("daemon closed %s", mode);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "close_range";
	wl_init("daemon");
	close_all(mode);

	uint64_t n = 0;
	for (;;) {
		wl_check_ids();
		if (wl_take_verify())
			wl_out("VERIFY OK daemon count=%llu pid=%d ppid=%d", (unsigned long long)n, (int)wl_pid0, (int)wl_ppid0);
		n++;
		wl_out("daemon count %llu", (unsigned long long)n);
		wl_sleep_ms(100);
	}
}
