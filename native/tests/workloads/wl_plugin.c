/* wl_plugin: the library wl_dlopen loads and unloads (built twice, as
 * wl_plugin_held.so and wl_plugin_cycled.so). Its own data, thread-local data,
 * constructor and destructor let the loader check that the library it holds is
 * the one it loaded, in the state it left it. */
#include <stdint.h>

static uint64_t steps;
static __thread uint64_t thread_steps;
static int constructed;

/* Set by the loader: where the destructor reports that it ran. */
int *wl_plugin_destroyed;

__attribute__((constructor)) static void construct(void) { constructed = 1; }

__attribute__((destructor)) static void destroy(void)
{
	if (wl_plugin_destroyed)
		*wl_plugin_destroyed = 1;
}

int wl_plugin_constructed(void) { return constructed; }

/* One step: both counters advance, and the sum says whether they agree. */
uint64_t wl_plugin_step(void)
{
	thread_steps++;
	return ++steps;
}

uint64_t wl_plugin_steps(void) { return steps; }
uint64_t wl_plugin_thread_steps(void) { return thread_steps; }
