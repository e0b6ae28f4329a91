/* wl_dirty [MiB=1024] [PERCENT=5]: MiB of varied data that changes only when asked.
 * On SIGUSR2 it rewrites exactly PERCENT % of its pages (distinct ones) and prints
 * "dirtied N"; otherwise it only prints "count N" every 100 ms. So a test controls
 * exactly how much changed between two checkpoints. SIGUSR1 checks every page. */
#include "wl_common.h"
#include <sys/mman.h>

static volatile sig_atomic_t dirty_requested;
static void on_usr2(int sig) { (void)sig; dirty_requested = 1; }

static uint64_t pattern(uint64_t word, uint32_t version)
{
	return wl_mix(word * 0x100000001b3ULL ^ ((uint64_t)version << 40));
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 1024, percent = argc > 2 ? atol(argv[2]) : 5;
	if (mib < 1 || mib > 65536 || percent < 0 || percent > 100) {
		wl_out("FAIL memory: usage: wl_dirty [MiB 1..65536] [PERCENT 0..100]");
		return 3;
	}
	wl_init("memory");
	signal(SIGUSR2, on_usr2);
	uint64_t npages = (uint64_t)mib * 256, words = npages * 512;
	uint64_t *mem = mmap(NULL, npages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *version = calloc(npages, sizeof *version);
	if (mem == MAP_FAILED || !version)
		wl_fail("cannot allocate %ld MiB", mib);
	for (uint64_t w = 0; w < words; w++)
		mem[w] = pattern(w, 0);
	wl_out("memory ready pages %llu", (unsigned long long)npages);

	uint64_t rounds = 0;
	for (uint64_t count = 1;; count++) {
		wl_check_ids();
		if (dirty_requested) {
			dirty_requested = 0;
			/* a stride coprime with npages visits distinct pages */
			uint64_t n = npages * (uint64_t)percent / 100, stride = 7919, start = wl_mix(++rounds) % npages;
			while (npages % stride == 0)
				stride += 2;
			for (uint64_t i = 0; i < n; i++) {
				uint64_t p = (start + i * stride) % npages;
				version[p]++;
				for (uint64_t j = 0; j < 512; j++)
					mem[p * 512 + j] = pattern(p * 512 + j, version[p]);
			}
			wl_out("dirtied %llu", (unsigned long long)n);
		}
		if (wl_take_verify()) {
			for (uint64_t w = 0; w < words; w++)
				if (mem[w] != pattern(w, version[w / 512]))
					wl_fail("page %llu does not match its pattern", (unsigned long long)(w / 512));
			wl_out("VERIFY OK memory count=%llu pages=%llu pid=%d ppid=%d", (unsigned long long)count,
			       (unsigned long long)npages, (int)wl_pid0, (int)wl_ppid0);
		}
		wl_out("count %llu", (unsigned long long)count);
		wl_sleep_ms(100);
	}
}
