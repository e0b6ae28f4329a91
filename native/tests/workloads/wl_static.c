/* wl_static: a statically linked program (built with -static), which the
 * interceptor cannot enter. Prints "static N" every 20 ms; a launch must refuse
 * it before it ever runs. */
#include "wl_common.h"

int main(void)
{
	wl_init("static");
	for (uint64_t tick = 1;; tick++) {
		wl_out("static %llu", (unsigned long long)tick);
		wl_sleep_ms(20);
	}
}
