/* The benchmark workload: SIZE MiB of random data, 5 % of its pages rewritten per
 * second (spread over 20 ticks), as in docs/benchmarks.md. With a second
 * argument "compressible", each page repeats a 64-byte pattern instead (for LZ4).
 *   count N at MS      one line per tick, MS from CLOCK_MONOTONIC (the benchmark
 *                      reads how long the process made no progress from these)
 *   firstwrite NS      on SIGUSR2: nanoseconds per first write to each of 4096
 *                      pages not written since the last checkpoint (tracking cost)
 *   VERIFY OK          on SIGUSR1, after checking every page */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t want_verify, want_firstwrite;
static void on_usr1(int s) { (void)s; want_verify = 1; }
static void on_usr2(int s) { (void)s; want_firstwrite = 1; }

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void say(const char *line)
{
	if (write(1, line, strlen(line)) < 0)
		_exit(3);
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	uint64_t npages = mib * 256, words = 512, period = argc > 2 && !strcmp(argv[2], "compressible") ? 8 : words;
	uint64_t *mem = malloc(npages * 4096);
	uint32_t *version = calloc(npages, sizeof *version);
	if (!mem || !version)
		return 2;
	for (uint64_t p = 0; p < npages; p++)
		for (uint64_t w = 0; w < words; w++)
			mem[p * words + w] = mix(p * words + w % period);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	say("ready\n");

	uint64_t per_tick = npages / 20 / 20;   /* 5 % per second in 20 ticks */
	char line[128];
	for (uint64_t tick = 1, seed = 1;; tick++) {
		for (uint64_t i = 0; i < per_tick; i++) {
			uint64_t p = mix(seed++) % npages;
			version[p]++;
			mem[p * words] = mix(p * words) ^ version[p];
		}
		if (want_firstwrite) {
			/* pages far from the random rewrites: the first write of this interval */
			want_firstwrite = 0;
			uint64_t base = mix(tick) % (npages - 4096), t0 = now_ns();
			for (uint64_t i = 0; i < 4096; i++) {
				uint64_t p = base + i;
				version[p]++;
				mem[p * words] = mix(p * words) ^ version[p];
			}
			snprintf(line, sizeof line, "firstwrite %.0f\n", (double)(now_ns() - t0) / 4096);
			say(line);
		}
		if (want_verify) {
			want_verify = 0;
			uint64_t bad = 0;
			for (uint64_t p = 0; p < npages; p++)
				for (uint64_t w = 0; w < words; w++)
					bad += mem[p * words + w] != (mix(p * words + w % period) ^ (w ? 0 : version[p]));
			say(bad ? "FAIL memory\n" : "VERIFY OK\n");
		}
		snprintf(line, sizeof line, "count %llu at %llu\n", (unsigned long long)tick,
			 (unsigned long long)(now_ns() / 1000000));
		say(line);
		usleep(50000);
	}
}
