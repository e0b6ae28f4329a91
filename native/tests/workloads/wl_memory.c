/* wl_memory [MiB=256] [--compressible] [--fork-on-usr2]: a program with MiB of varied data.
 *
 * Page i holds a pseudo-random pattern derived from (i, version[i]). Each loop
 * iteration makes BATCH updates: updates++, pick p = hash(updates) % npages,
 * check page p against its pattern, version[p]++, rewrite page p. Then it
 * prints "count <iteration> updates <updates>" (the iteration grows by exactly
 * one per line) and sleeps 10 ms.
 * On SIGUSR1: sum(version) == updates and every page matches its pattern,
 * then "VERIFY OK memory ...".
 * --compressible: each page repeats a 64-byte pattern, as real memory often does.
 * --fork-on-usr2: SIGUSR2 forks a child that carries on with the same memory, its
 * own stream of updates, role "memory-child" and lines "ccount <iteration> ...". */
#include "wl_common.h"
#include <sys/mman.h>

#define PAGE 4096u
#define WORDS (PAGE / sizeof(uint64_t))
#define BATCH 64

static uint64_t page_seed(uint64_t i, uint32_t v)
{
	return wl_mix(i * 0x100000001b3ULL ^ ((uint64_t)v << 40) ^ 0x5bd1e995ULL);
}

static size_t period = WORDS;           /* words before a page's pattern repeats */

static void page_fill(uint64_t *pg, uint64_t i, uint32_t v)
{
	uint64_t s = page_seed(i, v);
	for (size_t j = 0; j < WORDS; j++)
		pg[j] = wl_mix(s + j % period);
}

static int page_ok(const uint64_t *pg, uint64_t i, uint32_t v)
{
	uint64_t s = page_seed(i, v);
	for (size_t j = 0; j < WORDS; j++)
		if (pg[j] != wl_mix(s + j % period))
			return 0;
	return 1;
}

static volatile sig_atomic_t fork_requested;
static void on_usr2(int sig) { (void)sig; fork_requested = 1; }

int main(int argc, char **argv)
{
	long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 256;
	if (mib < 1 || mib > 65536) {
		wl_out("FAIL memory: bad size '%s' (MiB, 1..65536)", argv[1]);
		return 3;
	}
	int fork_on_usr2 = 0;
	for (int a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--compressible")) {
			period = 8;
		} else if (!strcmp(argv[a], "--fork-on-usr2")) {
			fork_on_usr2 = 1;
		} else {
			wl_out("FAIL memory: unknown option '%s' (--compressible, --fork-on-usr2)", argv[a]);
			return 3;
		}
	}
	wl_init("memory");
	if (fork_on_usr2)
		signal(SIGUSR2, on_usr2);
	const char *tag = "count";
	uint64_t salt = 0;

	uint64_t npages = (uint64_t)mib * (1024 * 1024 / PAGE);
	unsigned char *mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_fail("mmap %ld MiB: %s", mib, strerror(errno));
	uint32_t *version = calloc(npages, sizeof *version);
	if (!version)
		wl_fail("calloc version[%llu]", (unsigned long long)npages);
	for (uint64_t i = 0; i < npages; i++)
		page_fill((uint64_t *)(mem + i * PAGE), i, 0);

	uint64_t updates = 0, iter = 0;
	wl_out("memory ready pid %d ppid %d pages %llu", (int)wl_pid0, (int)wl_ppid0,
	       (unsigned long long)npages);

	for (;;) {
		wl_check_ids();
		if (fork_requested && !salt) {
			fork_requested = 0;
			pid_t parent = getpid(), child = fork();
			if (child < 0)
				wl_fail("fork: %s", strerror(errno));
			if (child == 0) {
				wl_reinit_child("memory-child", parent);
				tag = "ccount";
				salt = 0x5eed;
			} else {
				wl_out("forked child %d", (int)child);
			}
		}
		if (wl_take_verify()) {
			uint64_t sum = 0;
			for (uint64_t i = 0; i < npages; i++) {
				sum += version[i];
				if (!page_ok((uint64_t *)(mem + i * PAGE), i, version[i]))
					wl_fail("page %llu (version %u) does not match its pattern",
						(unsigned long long)i, version[i]);
			}
			if (sum != updates)
				wl_fail("sum(version) is %llu but updates is %llu",
					(unsigned long long)sum, (unsigned long long)updates);
			wl_out("VERIFY OK %s count=%llu updates=%llu pages=%llu pid=%d ppid=%d",
			       wl_role, (unsigned long long)iter, (unsigned long long)updates,
			       (unsigned long long)npages, (int)wl_pid0, (int)wl_ppid0);
		}

		iter++;
		for (int b = 0; b < BATCH; b++) {
			updates++;
			uint64_t p = wl_mix(updates ^ salt) % npages;
			uint64_t *pg = (uint64_t *)(mem + p * PAGE);
			if (!page_ok(pg, p, version[p]))
				wl_fail("page %llu (version %u) does not match its pattern",
					(unsigned long long)p, version[p]);
			version[p]++;
			page_fill(pg, p, version[p]);
		}
		wl_out("%s %llu updates %llu", tag, (unsigned long long)iter,
		       (unsigned long long)updates);
		wl_sleep_ms(10);
	}
}
