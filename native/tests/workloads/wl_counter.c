/* wl_counter [LABEL]: a tiny demo program. Prints "count N" (or
 * "LABEL count N") every 100 ms, N growing by exactly one per line.
 * On SIGUSR1: "VERIFY OK counter[-LABEL] ...", once setegid(getegid()) returned: glibc
 * runs that call in every thread of the process, the interceptor's included, and waits
 * for each to answer. */
#include "wl_common.h"

int main(int argc, char **argv)
{
	const char *label = argc > 1 ? argv[1] : NULL;
	char role[64];
	snprintf(role, sizeof role, "counter%s%s", label ? "-" : "", label ? label : "");
	wl_init(role);

	uint64_t n = 0;
	for (;;) {
		wl_check_ids();
		if (wl_take_verify()) {
			if (setegid(getegid()) != 0)
				wl_fail("setegid(getegid()): %s", strerror(errno));
			wl_out("VERIFY OK %s count=%llu pid=%d ppid=%d", role,
			       (unsigned long long)n, (int)wl_pid0, (int)wl_ppid0);
		}
		n++;
		if (label)
			wl_out("%s count %llu", label, (unsigned long long)n);
		else
			wl_out("count %llu", (unsigned long long)n);
		wl_sleep_ms(100);
	}
}
