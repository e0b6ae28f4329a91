/* wl_hugefill: anonymous memory written whole, in whole 2 MiB blocks.
 *
 *   plain   8 MiB, no advice
 *   nohuge  4 MiB, MADV_NOHUGEPAGE
 *
 * Both are 2 MiB-aligned mappings of their own, every byte written. It prints
 * "count N" every 20 ms. On SIGUSR1 it checks both regions' contents and flags
 * (plain has neither hg nor nh, nohuge has nh) and prints
 * "VERIFY OK hugefill plain_huge_kb=N nohuge_huge_kb=M": the kB of each held in
 * huge pages (smaps AnonHugePages), for a test to compare with what the kernel's
 * THP mode allows. */
#include "wl_common.h"
#include <sys/mman.h>

#define BLOCK (2ul << 20)

struct region {
	const char *name;
	size_t len;
	int advice;
	unsigned char seed;
	char *at;
};

static struct region regions[] = {
	{ "plain", 4 * BLOCK, 0, 13, NULL },
	{ "nohuge", 2 * BLOCK, MADV_NOHUGEPAGE, 29, NULL },
};
#define NREGIONS (sizeof regions / sizeof regions[0])

static unsigned char byte_at(const struct region *r, size_t i)
{
	return (unsigned char)(wl_mix(r->seed * 1000003ull + i / 8) >> (i % 8 * 8));
}

/* A mapping of exactly len bytes at a 2 MiB boundary: the rest of a larger one goes. */
static char *map_aligned(size_t len)
{
	char *m = mmap(NULL, len + BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	char *at = (char *)(((uintptr_t)m + BLOCK - 1) & ~(BLOCK - 1));
	if (at > m)
		munmap(m, (size_t)(at - m));
	munmap(at + len, (size_t)(m + len + BLOCK - (at + len)));
	return at;
}

/* smaps of the mapping holding addr: its AnonHugePages in kB, and whether its
 * VmFlags carry hg and nh. */
static long huge_kb(uintptr_t addr, int *hg, int *nh)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[1024];
	int in = 0;
	long kb = -1;
	*hg = *nh = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = addr >= start && addr < end;
		else if (in && !strncmp(line, "AnonHugePages:", 14))
			kb = atol(line + 14);
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			for (char *t = strtok(line + 8, " \n"); t; t = strtok(NULL, " \n")) {
				*hg |= !strcmp(t, "hg");
				*nh |= !strcmp(t, "nh");
			}
			break;
		}
	}
	if (f)
		fclose(f);
	return kb;
}

static void verify(void)
{
	long kb[NREGIONS];
	for (size_t k = 0; k < NREGIONS; k++) {
		const struct region *r = &regions[k];
		for (size_t i = 0; i < r->len; i++)
			if ((unsigned char)r->at[i] != byte_at(r, i))
				wl_fail("region %s: byte %zu is %u, expected %u", r->name, i, (unsigned char)r->at[i], byte_at(r, i));
		int hg, nh;
		kb[k] = huge_kb((uintptr_t)r->at, &hg, &nh);
		if (kb[k] < 0)
			wl_fail("region %s: no AnonHugePages in /proc/self/smaps", r->name);
		if (hg || nh != (r->advice == MADV_NOHUGEPAGE))
			wl_fail("region %s: VmFlags hg %d nh %d, not as it was advised", r->name, hg, nh);
	}
	wl_out("VERIFY OK hugefill plain_huge_kb=%ld nohuge_huge_kb=%ld", kb[0], kb[1]);
}

int main(void)
{
	wl_init("hugefill");
	for (size_t k = 0; k < NREGIONS; k++) {
		struct region *r = &regions[k];
		r->at = map_aligned(r->len);
		if (r->advice && madvise(r->at, r->len, r->advice) != 0)
			wl_fail("madvise %s: %s", r->name, strerror(errno));
		for (size_t i = 0; i < r->len; i++)
			r->at[i] = (char)byte_at(r, i);
	}
	wl_out("hugefill ready pid %d", (int)wl_pid0);
	wl_count_forever(verify, 20);
}
