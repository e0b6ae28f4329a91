/* wl_dlopen: a program that loads and unloads libraries while it runs.
 *
 * It holds wl_plugin_held.so loaded from the start and steps it every 20 ms (the
 * library's own counter, and a thread-local one, must follow the program's);
 * a second thread loads wl_plugin_cycled.so, steps it once and unloads it, over
 * and over, so that a checkpoint usually finds it inside the dynamic loader.
 * Both libraries sit next to the program.
 *
 * It prints "count N" every 20 ms. On SIGUSR1 it checks the held library, then
 * unloads it (its destructor must run and its mapping must go from
 * /proc/self/maps), loads it again (its constructor runs, its state starts
 * over), checks that the other thread still cycles, and prints
 * "VERIFY OK dlopen ...": after a restore, that is a library loaded before the
 * checkpoint and unloaded after it. */
#include "wl_common.h"
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>

struct plugin {
	void *handle;
	int (*constructed)(void);
	uint64_t (*step)(void), (*steps)(void), (*thread_steps)(void);
	int **destroyed;
};

static char held_path[PATH_MAX], cycled_path[PATH_MAX];
static volatile uint64_t cycles;

static void *sym(void *handle, const char *name, const char *path)
{
	void *p = dlsym(handle, name);
	if (!p)
		wl_fail("%s has no %s: %s", path, name, dlerror());
	return p;
}

static void load(struct plugin *p, const char *path)
{
	if (!(p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		wl_fail("dlopen %s: %s", path, dlerror());
	p->constructed = (int (*)(void))sym(p->handle, "wl_plugin_constructed", path);
	p->step = (uint64_t (*)(void))sym(p->handle, "wl_plugin_step", path);
	p->steps = (uint64_t (*)(void))sym(p->handle, "wl_plugin_steps", path);
	p->thread_steps = (uint64_t (*)(void))sym(p->handle, "wl_plugin_thread_steps", path);
	p->destroyed = (int **)sym(p->handle, "wl_plugin_destroyed", path);
	if (!p->constructed())
		wl_fail("%s: its constructor did not run", path);
}

/* Unloads p and checks that its destructor ran; with check_maps, that its file is
 * no longer mapped either. */
static void unload(struct plugin *p, const char *path, int check_maps)
{
	int destroyed = 0;
	*p->destroyed = &destroyed;
	if (dlclose(p->handle) != 0)
		wl_fail("dlclose %s: %s", path, dlerror());
	if (!destroyed)
		wl_fail("%s: its destructor did not run at dlclose", path);
	FILE *maps = check_maps ? fopen("/proc/self/maps", "r") : NULL;
	char line[PATH_MAX + 128];
	while (maps && fgets(line, sizeof line, maps))
		if (strstr(line, path))
			wl_fail("%s is still mapped after dlclose: %s", path, line);
	if (maps)
		fclose(maps);
	p->handle = NULL;
}

static void *cycle(void *arg)
{
	(void)arg;
	for (;;) {
		struct plugin p;
		load(&p, cycled_path);
		if (p.step() != 1 || p.thread_steps() != 1)
			wl_fail("%s: a fresh load is not fresh", cycled_path);
		unload(&p, cycled_path, 0);
		cycles++;
		sched_yield();
	}
	return NULL;
}

static void beside_me(char *out, const char *name)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		wl_fail("readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = 0;
	size_t dir = (size_t)(strrchr(exe, '/') + 1 - exe);
	if (dir + strlen(name) >= PATH_MAX)
		wl_fail("%s: path too long", exe);
	memcpy(out, exe, dir);
	strcpy(out + dir, name);
}

int main(void)
{
	wl_init("dlopen");
	beside_me(held_path, "wl_plugin_held.so");
	beside_me(cycled_path, "wl_plugin_cycled.so");

	struct plugin held;
	load(&held, held_path);
	uint64_t stepped = 0, reloads = 0;

	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	pthread_t t;
	if (pthread_create(&t, NULL, cycle, NULL) != 0)
		wl_fail("pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wl_out("dlopen ready pid %d", (int)wl_pid0);

	for (uint64_t tick = 1;; tick++) {
		wl_check_ids();
		if (held.step() != ++stepped || held.steps() != stepped || held.thread_steps() != stepped)
			wl_fail("%s counts %llu (thread %llu), the program %llu", held_path,
				(unsigned long long)held.steps(), (unsigned long long)held.thread_steps(),
				(unsigned long long)stepped);
		if (wl_take_verify()) {
			uint64_t before = cycles;
			unload(&held, held_path, 1);
			load(&held, held_path);
			if (held.steps() != 0 || held.thread_steps() != 0)
				wl_fail("%s: loaded again, its state did not start over", held_path);
			stepped = 0;
			reloads++;
			while (cycles == before)
				wl_sleep_ms(1);
			wl_out("VERIFY OK dlopen reloads=%llu cycles=%llu pid=%d ppid=%d", (unsigned long long)reloads,
			       (unsigned long long)cycles, (int)wl_pid0, (int)wl_ppid0);
		}
		wl_out("count %llu", (unsigned long long)tick);
		wl_sleep_ms(20);
	}
}
