/* wl_kernel_writes DATAFILE: memory that only the kernel writes, and mappings that
 * appear and grow between checkpoints.
 *   A: 8 MiB of heap filled by read(2) from a pipe
 *   B: 8 MiB mmap'd, filled by recv(2) from a socket pair
 *   C: filled by pread(2) from DATAFILE; grown with mremap every 10 ticks
 *   R: a new 64 KiB mapping every 10 ticks (up to 64), filled by read(2)
 *   H: the heap end grown with sbrk every 10 ticks, filled by recv(2)
 * Each tick rewrites one page of A, B and C through the kernel. SIGUSR1 checks every
 * byte against what the kernel was asked to write; "count N" per tick. */
#include "wl_common.h"
#include <sys/mman.h>
#include <sys/socket.h>
#include <fcntl.h>

#define PAGE 4096u
#define BIG (8u << 20)
#define FILE_PAGES 256u

static uint64_t word_of(uint64_t tag, uint64_t page, uint64_t version, uint64_t i)
{
	return wl_mix(tag << 56 ^ page << 28 ^ version << 12 ^ i);
}

static void fill_page(uint64_t *p, uint64_t tag, uint64_t page, uint64_t version)
{
	for (uint64_t i = 0; i < PAGE / 8; i++)
		p[i] = word_of(tag, page, version, i);
}

/* Sends one page of pattern through fd_out and has the kernel put it at dst via fd_in. */
static void through(int fd_out, int fd_in, int use_recv, void *dst, uint64_t tag, uint64_t page, uint64_t version)
{
	uint64_t tmp[PAGE / 8];
	fill_page(tmp, tag, page, version);
	if (wl_write_all(fd_out, tmp, PAGE) < 0)
		wl_fail("write to %s: %s", use_recv ? "socket" : "pipe", strerror(errno));
	size_t got = 0;
	while (got < PAGE) {
		ssize_t r = use_recv ? recv(fd_in, (char *)dst + got, PAGE - got, 0) : read(fd_in, (char *)dst + got, PAGE - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			wl_fail("%s: %s", use_recv ? "recv" : "read", r ? strerror(errno) : "end of data");
		got += (size_t)r;
	}
}

static void check_page(const uint64_t *p, uint64_t tag, uint64_t page, uint64_t version, const char *what)
{
	for (uint64_t i = 0; i < PAGE / 8; i++)
		if (p[i] != word_of(tag, page, version, i))
			wl_fail("%s page %llu differs from what the kernel was asked to write", what, (unsigned long long)page);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		wl_out("FAIL kernel: usage: wl_kernel_writes DATAFILE");
		return 3;
	}
	wl_init("kernel");
	int pipefd[2], sv[2];
	if (pipe(pipefd) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		wl_fail("pipe/socketpair: %s", strerror(errno));
	int data = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (data < 0)
		wl_fail("open %s: %s", argv[1], strerror(errno));
	for (uint64_t p = 0; p < FILE_PAGES; p++) {
		uint64_t tmp[PAGE / 8];
		fill_page(tmp, 3, p, 0);
		if (wl_write_all(data, tmp, PAGE) < 0)
			wl_fail("write %s: %s", argv[1], strerror(errno));
	}
	/* the data file is read-only from here: storage checkpointing need not keep it */
	close(data);
	data = open(argv[1], O_RDONLY);

	uint64_t *a = malloc(BIG);
	uint64_t *b = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t c_pages = 16;
	uint64_t *c = mmap(NULL, c_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *va = calloc(BIG / PAGE, 4), *vb = calloc(BIG / PAGE, 4);
	uint32_t *cfrom = calloc(1u << 16, 4);   /* which file page each page of C holds */
	uint64_t *regions[64];
	int nregions = 0;
	char *heap_start = NULL;   /* where our first sbrk began: malloc's heap lies below */
	size_t heap_pages = 0;
	if (!a || b == MAP_FAILED || c == MAP_FAILED || !va || !vb || !cfrom)
		wl_fail("allocation failed");
	for (uint64_t p = 0; p < BIG / PAGE; p++) {
		through(pipefd[1], pipefd[0], 0, (char *)a + p * PAGE, 1, p, 0);
		through(sv[0], sv[1], 1, (char *)b + p * PAGE, 2, p, 0);
	}
	for (size_t p = 0; p < c_pages; p++) {
		cfrom[p] = (uint32_t)(p % FILE_PAGES);
		if (pread(data, (char *)c + p * PAGE, PAGE, (off_t)cfrom[p] * PAGE) != PAGE)
			wl_fail("pread: %s", strerror(errno));
	}
	wl_out("kernel ready");

	for (uint64_t count = 1;; count++) {
		wl_check_ids();
		uint64_t pa = wl_mix(count * 3) % (BIG / PAGE), pb = wl_mix(count * 3 + 1) % (BIG / PAGE);
		through(pipefd[1], pipefd[0], 0, (char *)a + pa * PAGE, 1, pa, ++va[pa]);
		through(sv[0], sv[1], 1, (char *)b + pb * PAGE, 2, pb, ++vb[pb]);
		uint64_t pc = wl_mix(count * 3 + 2) % c_pages;
		cfrom[pc] = (uint32_t)(wl_mix(count) % FILE_PAGES);
		if (pread(data, (char *)c + pc * PAGE, PAGE, (off_t)cfrom[pc] * PAGE) != PAGE)
			wl_fail("pread: %s", strerror(errno));
		if (count % 10 == 0) {
			if (nregions < 64) {   /* a mapping that did not exist at the last checkpoint */
				uint64_t *r = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (r == MAP_FAILED)
					wl_fail("mmap: %s", strerror(errno));
				for (uint64_t p = 0; p < 16; p++)
					through(pipefd[1], pipefd[0], 0, (char *)r + p * PAGE, 4, (uint64_t)nregions * 16 + p, 0);
				regions[nregions++] = r;
			}
			if (c_pages + 16 <= (1u << 16)) {   /* a mapping that grew (and may have moved) */
				uint64_t *nc = mremap(c, c_pages * PAGE, (c_pages + 16) * PAGE, MREMAP_MAYMOVE);
				if (nc == MAP_FAILED)
					wl_fail("mremap: %s", strerror(errno));
				c = nc;
				for (size_t p = c_pages; p < c_pages + 16; p++) {
					cfrom[p] = (uint32_t)(p % FILE_PAGES);
					if (pread(data, (char *)c + p * PAGE, PAGE, (off_t)cfrom[p] * PAGE) != PAGE)
						wl_fail("pread: %s", strerror(errno));
				}
				c_pages += 16;
			}
			if (heap_pages < 1024) {   /* the heap's end moved */
				char *at = sbrk(16 * PAGE);
				if (at == (void *)-1)
					wl_fail("sbrk: %s", strerror(errno));
				if (!heap_start)
					heap_start = at;
				else if (at != heap_start + heap_pages * PAGE)
					wl_fail("someone else moved the heap's end");
				for (uint64_t p = 0; p < 16; p++)
					through(sv[0], sv[1], 1, at + p * PAGE, 5, heap_pages + p, 0);
				heap_pages += 16;
			}
		}
		if (wl_take_verify()) {
			for (uint64_t p = 0; p < BIG / PAGE; p++) {
				check_page((uint64_t *)((char *)a + p * PAGE), 1, p, va[p], "read(2) buffer");
				check_page((uint64_t *)((char *)b + p * PAGE), 2, p, vb[p], "recv(2) buffer");
			}
			for (size_t p = 0; p < c_pages; p++)
				check_page((uint64_t *)((char *)c + p * PAGE), 3, cfrom[p], 0, "pread(2) mapping");
			for (int r = 0; r < nregions; r++)
				for (uint64_t p = 0; p < 16; p++)
					check_page(regions[r] + p * (PAGE / 8), 4, (uint64_t)r * 16 + p, 0, "new mapping");
			for (size_t p = 0; p < heap_pages; p++)
				check_page((uint64_t *)(heap_start + p * PAGE), 5, p, 0, "sbrk-grown heap");
			wl_out("VERIFY OK kernel count=%llu mappings=%d grown=%zu heap=%zu pid=%d ppid=%d",
			       (unsigned long long)count, nregions, c_pages, heap_pages, (int)wl_pid0, (int)wl_ppid0);
		}
		wl_out("count %llu", (unsigned long long)count);
		wl_sleep_ms(20);
	}
}
