/* wl_layers DIR: memory that changes in a different way at each step, so that
 * each incremental checkpoint of it is a different layer of a chain.
 *
 *   mem   2048 pages of private anonymous memory
 *   file  256 pages of DIR/layers.data mapped private and writable
 *   ro    256 pages of anonymous memory, part of it made read-only
 *
 * Each page holds a pattern of its index and its version; version 0 is a page
 * that is not in memory (zeros, or the file's contents). On SIGUSR2 it takes the
 * next step and prints "stepped N ROLE":
 *   1  rewrites every 5th page of mem and file pages 0..63
 *   2  MADV_DONTNEED on mem 100..299 and file 0..31; ro 0..127 made read-only
 *   3  mem 500..699 unmapped and mapped again, 500..599 written; forks a child
 *      (role layers-child, counting "child_count N") that takes the same steps on
 *      its own copy from then on
 *   4  rewrites mem pages 1, 4, 7, ...; MADV_DONTNEED on mem 1000..1099; file 100..149
 *   5  ro 0..63 writable again and rewritten; mem 1500..1599 unmapped and mapped again
 *   6+ rewrites every 7th page of mem (shifted by the step) and drops 20 pages
 * It prints "count N" every 50 ms; SIGUSR1 checks every page of every region. */
#include "wl_common.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096ul
#define MEM_PAGES 2048
#define FILE_PAGES 256
#define RO_PAGES 256

struct region {
	const char *name;
	char *at;
	uint32_t *version;           /* per page; 0: not in memory */
	uint64_t salt;
	int file;                    /* a page of version 0 is the file's */
};

static struct region mem = { "mem", 0, 0, 0x11, 0 }, file = { "file", 0, 0, 0x22, 1 }, ro = { "ro", 0, 0, 0x33, 0 };
static volatile sig_atomic_t step_requested;
static int steps;
static const char *count_tag = "count";

static void on_usr2(int sig) { (void)sig; step_requested = 1; }

static uint64_t word_of(const struct region *r, uint64_t page, uint32_t version, uint64_t i)
{
	if (!version && !r->file)
		return 0;
	return wl_mix(r->salt << 56 ^ page << 32 ^ (uint64_t)version << 16 ^ i);
}

static void write_page(struct region *r, uint64_t page, uint32_t version)
{
	uint64_t *w = (uint64_t *)(r->at + page * PAGE);
	for (uint64_t i = 0; i < PAGE / 8; i++)
		w[i] = word_of(r, page, version, i);
	r->version[page] = version;
}

static void write_pages(struct region *r, uint64_t from, uint64_t to, uint32_t version)
{
	for (uint64_t p = from; p < to; p++)
		write_page(r, p, version);
}

static void drop(struct region *r, uint64_t from, uint64_t to)
{
	if (madvise(r->at + from * PAGE, (to - from) * PAGE, MADV_DONTNEED) != 0)
		wl_fail("madvise(MADV_DONTNEED) on %s: %s", r->name, strerror(errno));
	for (uint64_t p = from; p < to; p++)
		r->version[p] = 0;
	/* File pages are left unread: under the uffd tracker each is then a
	 * write-protect marker, which PAGEMAP_SCAN reports as swapped, not gone. */
}

static void remap(struct region *r, uint64_t from, uint64_t to)
{
	char *at = r->at + from * PAGE;
	if (munmap(at, (to - from) * PAGE) != 0 ||
	    mmap(at, (to - from) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at)
		wl_fail("cannot unmap and map %s again: %s", r->name, strerror(errno));
	for (uint64_t p = from; p < to; p++)
		r->version[p] = 0;
}

static void protect(struct region *r, uint64_t from, uint64_t to, int prot)
{
	if (mprotect(r->at + from * PAGE, (to - from) * PAGE, prot) != 0)
		wl_fail("mprotect on %s: %s", r->name, strerror(errno));
}

static void check(const struct region *r, uint64_t npages)
{
	for (uint64_t p = 0; p < npages; p++) {
		const uint64_t *w = (const uint64_t *)(r->at + p * PAGE);
		for (uint64_t i = 0; i < PAGE / 8; i++)
			if (w[i] != word_of(r, p, r->version[p], i))
				wl_fail("%s page %llu word %llu is %016llx, expected version %u", r->name,
					(unsigned long long)p, (unsigned long long)i, (unsigned long long)w[i], r->version[p]);
	}
}

static void verify(void)
{
	check(&mem, MEM_PAGES);
	check(&file, FILE_PAGES);
	check(&ro, RO_PAGES);
	wl_out("VERIFY OK %s steps %d pages %d", wl_role, steps, MEM_PAGES + FILE_PAGES + RO_PAGES);
}

static void step(void)
{
	uint32_t v = (uint32_t)++steps + 1;
	switch (steps) {
	case 1:
		for (uint64_t p = 0; p < MEM_PAGES; p += 5)
			write_page(&mem, p, v);
		write_pages(&file, 0, 64, v);
		break;
	case 2:
		drop(&mem, 100, 300);
		drop(&file, 0, 32);
		protect(&ro, 0, 128, PROT_READ);
		break;
	case 3: {
		remap(&mem, 500, 700);
		write_pages(&mem, 500, 600, v);
		if (!strcmp(wl_role, "layers")) {
			pid_t parent = getpid(), child = fork();
			if (child < 0)
				wl_fail("fork: %s", strerror(errno));
			if (child == 0) {
				wl_reinit_child("layers-child", parent);
				count_tag = "child_count";
			}
		}
		break;
	}
	case 4:
		for (uint64_t p = 1; p < MEM_PAGES; p += 3)
			write_page(&mem, p, v);
		drop(&mem, 1000, 1100);
		write_pages(&file, 100, 150, v);
		break;
	case 5:
		protect(&ro, 0, 64, PROT_READ | PROT_WRITE);
		write_pages(&ro, 0, 64, v);
		remap(&mem, 1500, 1600);
		break;
	default:
		for (uint64_t p = (uint64_t)steps % 7; p < MEM_PAGES; p += 7)
			write_page(&mem, p, v);
		uint64_t from = (uint64_t)steps * 131 % (MEM_PAGES - 20);
		drop(&mem, from, from + 20);
	}
	wl_out("stepped %d %s", steps, wl_role);
}

static char *map_file(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/layers.data", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		wl_fail("open %s: %s", path, strerror(errno));
	static uint64_t page[PAGE / 8];
	for (uint64_t p = 0; p < FILE_PAGES; p++) {
		for (uint64_t i = 0; i < PAGE / 8; i++)
			page[i] = word_of(&file, p, 0, i);
		if (pwrite(fd, page, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE)
			wl_fail("write %s: %s", path, strerror(errno));
	}
	char *at = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (at == MAP_FAILED)
		wl_fail("mmap %s: %s", path, strerror(errno));
	close(fd);
	return at;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		wl_out("FAIL layers: usage: wl_layers DIR");
		return 3;
	}
	wl_init("layers");
	signal(SIGUSR2, on_usr2);
	mem.at = mmap(NULL, MEM_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro.at = mmap(NULL, RO_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mem.version = calloc(MEM_PAGES, sizeof *mem.version);
	file.version = calloc(FILE_PAGES, sizeof *file.version);
	ro.version = calloc(RO_PAGES, sizeof *ro.version);
	if (mem.at == MAP_FAILED || ro.at == MAP_FAILED || !mem.version || !file.version || !ro.version)
		wl_fail("cannot allocate memory");
	file.at = map_file(argv[1]);
	write_pages(&mem, 0, MEM_PAGES, 1);
	write_pages(&ro, 0, RO_PAGES, 1);
	for (unsigned long long n = 1;; n++) {
		wl_check_ids();
		if (step_requested) {
			step_requested = 0;
			step();
		}
		if (wl_take_verify())
			verify();
		wl_out("%s %llu", count_tag, n);
		wl_sleep_ms(50);
		int status;
		while (waitpid(-1, &status, WNOHANG) > 0)
			wl_fail("the child ended (status %d)", status);
	}
}
