/* wl_memflags: memory with the flags a mapping or madvise gives it.
 *
 *   big       32 GiB MAP_NORESERVE, more than this machine's memory: without the flag
 *             the kernel would refuse to map it; a few pages written far apart
 *   dontfork  MADV_DONTFORK: a child does not get it
 *   wipe      MADV_WIPEONFORK: a child gets it empty
 *   dontdump  MADV_DONTDUMP
 *   locked    mlock
 *   huge      MADV_HUGEPAGE, nohuge MADV_NOHUGEPAGE
 *
 * It prints "count N" every 20 ms. On SIGUSR2 it changes flags while it runs, and
 * prints "memflags changed": MADV_DONTFORK (through libc) on late, mapped and written
 * without flags at the start, and a second 32 GiB MAP_NORESERVE mapping, late_big (a
 * new mapping, no madvise). On SIGUSR1 it checks every region's contents and its
 * flags in /proc/self/smaps (nr, dc, wf, dd, lo, hg, nh; after the change, late's dc
 * and late_big's nr), forks a child that checks what it inherited (big and its
 * pages; no dontfork, nor late after the change; wipe empty), and prints
 * "VERIFY OK memflags ...". */
#include "wl_common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096ul
#define BIG (32ul << 30)
#define SMALL (4 * PAGE)
#define HUGE (4ul << 20)

struct region {
	const char *name, *flag;        /* its VmFlags mark in smaps */
	char *at;
	size_t len;
	unsigned char seed;
};

static struct region regions[] = {
	{ "big", "nr", NULL, BIG, 11 },
	{ "dontfork", "dc", NULL, SMALL, 23 },
	{ "wipe", "wf", NULL, SMALL, 37 },
	{ "dontdump", "dd", NULL, SMALL, 41 },
	{ "locked", "lo", NULL, SMALL, 53 },
	{ "huge", "hg", NULL, HUGE, 67 },
	{ "nohuge", "nh", NULL, HUGE, 71 },
	{ "late", "dc", NULL, SMALL, 83 },
	{ "late_big", "nr", NULL, BIG, 97 },
};
#define NREGIONS (sizeof regions / sizeof regions[0])
enum { BIG_R, DONTFORK_R, WIPE_R, DONTDUMP_R, LOCKED_R, HUGE_R, NOHUGE_R, LATE_R, LATE_BIG_R };

/* SIGUSR2 asked for the change; it was made (memory: a restore brings it back) */
static volatile sig_atomic_t change_requested;
static int changed;

/* The pages each region has written: all of a small one, three of big. */
static size_t written_pages(const struct region *r, size_t *out)
{
	if (r->len == BIG) {   /* big, late_big */
		out[0] = 0;
		out[1] = BIG / PAGE / 2;
		out[2] = BIG / PAGE - 1;
		return 3;
	}
	size_t n = r->len / PAGE < 16 ? r->len / PAGE : 16;
	for (size_t i = 0; i < n; i++)
		out[i] = i * (r->len / PAGE / n);
	return n;
}

static unsigned char byte_at(const struct region *r, size_t page, size_t i)
{
	return (unsigned char)(wl_mix(r->seed * 1000003ull + page) >> (i % 56));
}

static void fill(const struct region *r)
{
	size_t pages[16], n = written_pages(r, pages);
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < PAGE; i++)
			r->at[pages[k] * PAGE + i] = (char)byte_at(r, pages[k], i);
}

/* 0 when the region holds its pattern, or (expect_zero) nothing but zeros. */
static int check(const struct region *r, int expect_zero)
{
	size_t pages[16], n = written_pages(r, pages);
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < PAGE; i++)
			if ((unsigned char)r->at[pages[k] * PAGE + i] != (expect_zero ? 0 : byte_at(r, pages[k], i)))
				return -1;
	return 0;
}

static void make_regions(void)
{
	for (size_t k = 0; k <= LATE_R; k++) {
		struct region *r = &regions[k];
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | (k == BIG_R ? MAP_NORESERVE : 0);
		/* huge pages want 2 MiB alignment: map more, keep an aligned middle */
		size_t extra = r->len == HUGE ? (2ul << 20) : 0;
		char *p = mmap(NULL, r->len + extra, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (p == MAP_FAILED)
			wl_fail("mmap %s: %s", r->name, strerror(errno));
		r->at = extra ? (char *)(((uintptr_t)p + extra - 1) & ~(extra - 1)) : p;
		static const int advice[] = { [DONTFORK_R] = MADV_DONTFORK, [WIPE_R] = MADV_WIPEONFORK,
			[DONTDUMP_R] = MADV_DONTDUMP, [HUGE_R] = MADV_HUGEPAGE, [NOHUGE_R] = MADV_NOHUGEPAGE };
		if (k == LOCKED_R ? mlock(r->at, r->len) != 0 : k != BIG_R && k != LATE_R && madvise(r->at, r->len, advice[k]) != 0)
			wl_fail("advising %s: %s", r->name, strerror(errno));
		fill(r);
	}
}

/* SIGUSR2's change, made in the main loop */
static void change_flags(void)
{
	struct region *late = &regions[LATE_R], *late_big = &regions[LATE_BIG_R];
	if (madvise(late->at, late->len, MADV_DONTFORK) != 0)
		wl_fail("advising late: %s", strerror(errno));
	late_big->at = mmap(NULL, late_big->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (late_big->at == MAP_FAILED)
		wl_fail("mmap late_big: %s", strerror(errno));
	fill(late_big);
	changed = 1;
	wl_out("memflags changed");
}

static void on_usr2(int sig)
{
	(void)sig;
	change_requested = 1;
}

/* Whether the smaps VmFlags of the mapping holding addr carry flag. */
static int has_flag(uintptr_t addr, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[1024];
	int in = 0, found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = addr >= start && addr < end;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			for (char *t = strtok(line + 8, " \n"); t; t = strtok(NULL, " \n"))
				found |= !strcmp(t, flag);
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* In a child: what fork gave it. Exits 0 if it is right, else the failed check. */
static void child_checks(void)
{
	if (check(&regions[BIG_R], 0) != 0)
		_exit(10);
	if (check(&regions[WIPE_R], 1) != 0)
		_exit(11);
	unsigned char vec[4];
	if (mincore(regions[DONTFORK_R].at, SMALL, vec) == 0 || errno != ENOMEM)
		_exit(12);
	if (changed && (mincore(regions[LATE_R].at, SMALL, vec) == 0 || errno != ENOMEM))
		_exit(13);
	_exit(0);
}

static void verify(void)
{
	for (size_t k = 0; k < NREGIONS; k++) {
		if (k == LATE_BIG_R && !changed)
			continue;
		if (check(&regions[k], 0) != 0)
			wl_fail("region %s lost its contents", regions[k].name);
		if ((k != LATE_R || changed) && !has_flag((uintptr_t)regions[k].at, regions[k].flag))
			wl_fail("region %s lost its flag %s (smaps VmFlags)", regions[k].name, regions[k].flag);
	}
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0)
		child_checks();
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		wl_fail("the child found fork's result wrong: %s", !WIFEXITED(status) ? "it died" :
			WEXITSTATUS(status) == 10 ? "big lost its pages" : WEXITSTATUS(status) == 11 ? "wipe was not wiped" :
			WEXITSTATUS(status) == 12 ? "dontfork was inherited" : WEXITSTATUS(status) == 13 ? "late was inherited" : "exit status");
	wl_out("VERIFY OK memflags regions=%zu big_gib=%lu changed=%d pid=%d ppid=%d", changed ? NREGIONS : NREGIONS - 1, BIG >> 30,
	       changed, (int)wl_pid0, (int)wl_ppid0);
}

int main(void)
{
	wl_init("memflags");
	make_regions();
	struct sigaction sa = { .sa_handler = on_usr2 };
	sigaction(SIGUSR2, &sa, NULL);
	wl_out("memflags ready pid %d", (int)wl_pid0);
	for (unsigned long long n = 1;; n++) {
		wl_check_ids();
		if (wl_take_verify())
			verify();
		if (change_requested && !changed)
			change_flags();
		wl_out("count %llu", n);
		wl_sleep_ms(20);
	}
}
