/* us-restorer PID-IMAGE.meta PID-IMAGE.pages LOG [coord:PATH] [output:PATH] [base-meta:META base-pages:PAGES ...]
 *             [shm:DEV:INODE:FD ...] [shm-removed:SHMID ...]
 *
 * Exec'd by us-init in a process that already has the right pid, parent, session,
 * descriptors, cwd and limits. Replaces its own address space with the image's
 * and jumps into the interceptor's restore entry. An incremental image comes with
 * the images it applies to, newest first down to a full one (layers.h): its pages
 * are taken from the chain as it is, unmerged. Depends on nothing: no libc. */
#include <stdint.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/mman.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <linux/prctl.h>
#include "layout.h"
#include "layers.h"
#include "../common/us_sys.h"
#include "../common/us_fmt.h"
#include "../common/us_crc32c.h"
#include "../common/us_image_check.h"
#include "../common/us_lz4.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

char restorer_stack[256 * 1024] __attribute__((aligned(16)));
extern char restorer_stack_top[] __asm__("restorer_stack_top");
__asm__(".globl restorer_stack_top\n.set restorer_stack_top, restorer_stack + 262144");

/* gcc may emit calls to these */
void *memcpy(void *d, const void *s, size_t n)
{
	char *dd = d;
	const char *ss = s;
	while (n--)
		*dd++ = *ss++;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	char *dd = d;
	while (n--)
		*dd++ = (char)c;
	return d;
}

/* copies: argv lives on the stack this program unmaps */
static char log_path[4096];
static char meta_path[4096];
static char coord_path[4096];   /* the restoring agent's member socket, handed to the process */
static char output_path[4096];  /* the restoring node's output log of the group, handed over too */
static const char *image_read;  /* the image of the chain a failure is about, if not the restored one */

static void copy_arg(char *dst, const char *src)
{
	size_t i = 0;
	for (; src[i] && i < 4095; i++)
		dst[i] = src[i];
	dst[i] = 0;
}

static __attribute__((noreturn)) void die(const char *what, long err)
{
	char line[1024];
	struct us_buf b = { line, 0, sizeof line - 1 };
	us_put(&b, "event=restore-failed pid=");
	us_puti(&b, us_sc0(SYS_getpid));
	us_put(&b, " image=");
	us_put(&b, image_read ? image_read : meta_path);
	us_put(&b, " reason=");
	us_put_token(&b, what);
	if (err) {
		us_put(&b, " errno=");
		us_puti(&b, -err);
	}
	us_putc(&b, '\n');
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		us_sc3(SYS_write, fd, line, b.len);
		us_sc1(SYS_close, fd);
	}
	for (;;)
		us_sc1(SYS_exit_group, 126);
}

static int is_err(long r) { return r < 0 && r > -4096; }

/* Scratch memory: taken in order from the restorer's area, never given back (it
 * goes with the area). The vdso is parked above it. */
#define SCRATCH_LIMIT (RESTORER_SCRATCH + (512ull << 20))
static uint64_t scratch_next = RESTORER_SCRATCH;

static void *scratch_alloc(uint64_t len)
{
	len = (len + 4095) & ~4095ull;
	if (len > SCRATCH_LIMIT - scratch_next)
		die("state descriptions larger than the restorer's 512 MiB of scratch memory", 0);
	long r = us_sc6(SYS_mmap, scratch_next, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (is_err(r))
		die("cannot map restorer scratch memory", r);
	scratch_next += len;
	return (void *)r;
}

static void read_exact(int fd, void *buf, uint64_t len, uint64_t off)
{
	char *p = buf;
	while (len) {
		long r = us_sc4(SYS_pread64, fd, p, len > (1ul << 30) ? (1ul << 30) : len, off);
		if (r == -4 /* EINTR */)
			continue;
		if (r <= 0)
			die("image file shorter than its description", r);
		p += r;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
}

/* ---- the state descriptions ---- */

/* One image of the chain: chain[0] is the one restored, chain[nchain - 1] the full
 * image at the bottom. layers[k] indexes chain[k]'s mappings. */
struct image {
	const struct us_meta_header *h;
	const char *rec, *end;
	const struct us_rec_proc *proc;
	const char *meta_path, *pages_path;
	int pages_fd;
};
static struct image chain[US_CHAIN_MAX];
static struct layer layers[US_CHAIN_MAX];
static int nchain;

/* Reads and checks one image's state description, and indexes its mappings. */
static void load_image(struct image *im, struct layer *l)
{
	image_read = im->meta_path;
	int meta_fd = (int)us_sc4(SYS_openat, AT_FDCWD, im->meta_path, O_RDONLY | O_CLOEXEC, 0);
	im->pages_fd = (int)us_sc4(SYS_openat, AT_FDCWD, im->pages_path, O_RDONLY | O_CLOEXEC, 0);
	if (meta_fd < 0 || im->pages_fd < 0)
		die("cannot open the image files", meta_fd < 0 ? meta_fd : im->pages_fd);
	uint64_t meta_size = (uint64_t)us_sc3(SYS_lseek, meta_fd, 0, 2 /* SEEK_END */);
	uint64_t pages_size = (uint64_t)us_sc3(SYS_lseek, im->pages_fd, 0, 2);
	if (meta_size > (128ull << 20))
		die("state description larger than 128 MiB", 0);
	char *buf = scratch_alloc(meta_size);
	read_exact(meta_fd, buf, meta_size, 0);
	us_sc1(SYS_close, meta_fd);
	const char *why = us_image_check(buf, meta_size);
	if (why)
		die(why, 0);
	im->h = (const void *)buf;
	im->rec = buf + sizeof *im->h;
	im->end = buf + meta_size;
	if (im->h->pages_len != pages_size)
		die("pages file size differs from its description", 0);
	uint64_t nrecords = 0;
	US_FOR_RECORDS(buf, meta_size, r) {
		nrecords++;
		if (r->type == US_REC_PROC)
			im->proc = (const void *)(r + 1);
	}
	const struct us_rec_vma **vmas = scratch_alloc(nrecords * sizeof *vmas);
	long n = layer_index(im->rec, im->h->records_len, vmas);
	if (n < 0)
		die("memory records or their page runs out of address order", 0);
	*l = (struct layer){ vmas, (uint32_t)n };
	image_read = 0;
}

/* The chain must go down, checkpoint by checkpoint, to one full image. */
static void check_chain(void)
{
	for (int k = 0; k < nchain; k++) {
		const struct us_meta_header *h = chain[k].h;
		int bottom = k == nchain - 1;
		if (bottom && h->kind != US_IMAGE_FULL)
			die(k ? "the chain of images does not end in a full image" :
				"incremental image without the images it applies to", 0);
		if (!bottom && h->kind != US_IMAGE_INCREMENTAL)
			die("a full image above the bottom of the chain of images", 0);
		if (!bottom && h->base_seq != chain[k + 1].h->checkpoint_seq)
			die("an image of the chain does not apply to the next one", 0);
	}
}

#define FOR_RECORDS(im, r) \
	for (const struct us_rec_hdr *r = (const void *)(im)->rec; (const char *)r < (im)->end; \
	     r = (const void *)((const char *)(r + 1) + US_REC_ALIGN(r->len)))

/* ---- our own mappings ---- */

struct special { uint64_t start, end; };
static struct special cur_vdso, cur_vvar, cur_vclock;

static void scan_self(char *maps, uint64_t cap)
{
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		die("cannot read /proc/self/maps", fd);
	uint64_t n = 0;
	for (long r; (r = us_sc3(SYS_read, fd, maps + n, cap - 1 - n)) > 0;)
		n += (uint64_t)r;
	maps[n] = 0;
	us_sc1(SYS_close, fd);

	for (const char *p = maps; *p;) {
		struct us_maps_line l;
		p = us_maps_next(p, &l);
		if (us_maps_path_is(&l, "[vdso]"))
			cur_vdso = (struct special){ l.start, l.end };
		else if (us_maps_path_is(&l, "[vvar]"))
			cur_vvar = (struct special){ l.start, l.end };
		else if (us_maps_path_is(&l, "[vvar_vclock]"))
			cur_vclock = (struct special){ l.start, l.end };
		else if (!us_maps_path_is(&l, "[vsyscall]") && (l.start < RESTORER_BASE || l.end > RESTORER_END))
			us_sc2(SYS_munmap, l.start, l.end - l.start);   /* the exec'd stack and anything else */
	}
}

static void move_special(struct special *cur, uint64_t tmp)
{
	if (!cur->start)
		return;
	long r = us_sc5(SYS_mremap, cur->start, cur->end - cur->start, cur->end - cur->start,
			MREMAP_MAYMOVE | MREMAP_FIXED, tmp);
	if (is_err(r))
		die("cannot move the vdso", r);
	cur->end = tmp + (cur->end - cur->start);
	cur->start = tmp;
}

static void place_special(struct special *cur, uint64_t to)
{
	if (!cur->start)
		return;
	long r = us_sc5(SYS_mremap, cur->start, cur->end - cur->start, cur->end - cur->start,
			MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (is_err(r))
		die("cannot move the vdso to its saved address", r);
}

/* ---- memory ---- */

struct shm_arg { uint64_t dev, ino; int fd; };
static struct shm_arg *shms;    /* one per argument, in scratch memory: argv goes with the stack */
static int nshm;
/* SysV segments that were marked for removal: marked again once attached; in the
 * same scratch pages, after shms */
static long *shm_removed;
static int nshm_removed;

static char lz4_block[US_LZ4_BOUND(US_LZ4_RUN_PAGES * US_PAGE_SIZE)];
#define READ_CHUNK (512ul << 10)
/* Pages of an older image's run read where they are not wanted (to check its
 * checksum), or a compressed run decoded before its pages are copied. */
static char run_buf[READ_CHUNK] __attribute__((aligned(4096)));

static uint64_t run_bytes(const struct us_page_run *run) { return run->npages * US_PAGE_SIZE; }

/* Reads a compressed run's block, checks it, and decodes it to dst. */
static void decode_run(const struct us_page_run *run, int pages_fd, void *dst)
{
	read_exact(pages_fd, lz4_block, run->stored_len, run->pages_off);
	if (us_crc32c(0, lz4_block, run->stored_len) != run->crc)
		die("page data checksum mismatch", 0);
	if (us_lz4_decompress(lz4_block, run->stored_len, dst, run_bytes(run)) < 0)
		die("compressed page data does not decode", 0);
}

/* Whether addr lies in a private mapping of the restored image, which takes pages
 * from the chain; *until is where that may change. */
static int in_private_mapping(uint64_t addr, uint64_t *until)
{
	const struct us_rec_vma *v = layer_mapping(&layers[0], addr, until);
	return v && layer_takes_pages(v);
}

/* Anonymous memory in 4 KiB pages costs a TLB miss per page on each pass over it
 * (the read into place, the checksum), and far more under a hypervisor that
 * shadows page tables: reading and checking 1 GiB took 3 to 4 s here in 4 KiB
 * pages, 0.2 to 0.3 s in huge pages (docs/benchmarks.md). Where
 * the kernel gives huge pages only to memory advised so (THP "madvise"), the whole
 * 2 MiB blocks that a run fills are made huge pages before it is read into them,
 * with MADV_COLLAPSE (Linux 6.1+; best effort, 4 KiB pages otherwise): unlike
 * MADV_HUGEPAGE it leaves the mapping's flags as the image has them (they decide
 * the application's later faults), and a block no run fills whole stays small, so
 * no more memory is used than the pages hold. Not under a NOHUGEPAGE advice, and
 * not where THP is "always" (faults give huge pages already) or "never". */
#define HUGE_BLOCK (2ul << 20)
static int gets_pages(const struct us_rec_vma *v);
static int collapse_blocks;
static const struct us_rec_madvice *advice;   /* the restored image's, or NULL */

static void check_thp(void)
{
	char mode[128];
	long n = us_read_file("/sys/kernel/mm/transparent_hugepage/enabled", mode, sizeof mode);
	for (long i = 0; i + 9 <= n && !collapse_blocks; i++)
		collapse_blocks = us_startswith(mode + i, "[madvise]");
}

static int advised_small(uint64_t start, uint64_t end)
{
	const struct us_madvice *m = advice ? (const void *)(advice + 1) : 0;
	for (uint32_t i = 0; advice && i < advice->count; i++, m++)
		if ((m->flags & US_MADV_NOHUGEPAGE) && m->start < end && m->end > start)
			return 1;
	return 0;
}

/* [a, until) lies in one private mapping of the restored image and the run
 * being read fills it whole. */
static void make_huge_blocks(uint64_t a, uint64_t until)
{
	uint64_t first = (a + HUGE_BLOCK - 1) & ~(HUGE_BLOCK - 1), last = until & ~(HUGE_BLOCK - 1), ignored;
	if (!collapse_blocks || last <= first)
		return;
	const struct us_rec_vma *v = layer_mapping(&layers[0], a, &ignored);
	if ((v->kind != US_VMA_ANON && v->kind != US_VMA_HEAP) || !gets_pages(v))
		return;   /* gets_pages: mapped writable */
	if (advised_small(first, last))
		return;
	/* MADV_COLLAPSE makes a block huge only if it has a page: the run overwrites it */
	for (uint64_t b = first; b < last; b += HUGE_BLOCK)
		*(volatile char *)b = 0;
	us_sc3(SYS_madvise, first, last - first, 25 /* MADV_COLLAPSE */);
}

/* Reads a run whole, its checksum checked: its stretches in private mappings of the
 * restored image straight into place (faulted in at once with MADV_POPULATE_WRITE,
 * best effort: Linux 5.14+, and checked a chunk at a time while it is in the cache),
 * the others through run_buf. A compressed run is decoded whole first. */
static void fill_run(const struct us_page_run *run, int pages_fd)
{
	uint64_t end = run->addr + run_bytes(run), until;
	if (run->flags & US_RUN_F_LZ4) {
		if (in_private_mapping(run->addr, &until) && until >= end) {
			decode_run(run, pages_fd, (void *)run->addr);
			return;
		}
		decode_run(run, pages_fd, run_buf);
		for (uint64_t a = run->addr; a < end; a = until) {
			int mapped = in_private_mapping(a, &until);
			if (until > end)
				until = end;
			for (uint64_t i = 0; mapped && i < (until - a) / 8; i++)
				((uint64_t *)a)[i] = ((const uint64_t *)(run_buf + (a - run->addr)))[i];
		}
		return;
	}
	uint32_t crc = 0;
	for (uint64_t a = run->addr; a < end; a = until) {
		int mapped = in_private_mapping(a, &until);
		if (until > end)
			until = end;
		if (mapped)
			make_huge_blocks(a, until);
		if (mapped && until - a >= 16 * US_PAGE_SIZE)   /* a page or a few fault in as cheaply */
			us_sc3(SYS_madvise, a, until - a, 23 /* MADV_POPULATE_WRITE */);
		for (uint64_t at = a, n; at < until; at += n) {
			n = until - at < READ_CHUNK ? until - at : READ_CHUNK;
			char *dst = mapped ? (char *)at : run_buf;
			read_exact(pages_fd, dst, n, run->pages_off + (at - run->addr));
			crc = us_crc32c(crc, dst, n);
		}
	}
	if (crc != run->crc)
		die("page data checksum mismatch", 0);
}

/* Image k's data runs, over what the images below it wrote. */
static void fill_image(int k)
{
	image_read = k ? chain[k].meta_path : 0;
	for (uint32_t i = 0; i < layers[k].nvmas; i++) {
		const struct us_rec_vma *v = layers[k].vmas[i];
		const struct us_page_run *run = (const void *)(v + 1);
		if (!k && !layer_takes_pages(v))
			continue;   /* shared memory: us-init filled the object */
		for (uint32_t r = 0; r < v->nruns; r++, run++)
			if (!(run->flags & US_RUN_F_HOLE))
				fill_run(run, chain[k].pages_fd);
	}
}

/* After every image of the chain wrote its runs, oldest first, each page holds the
 * data of the newest image with data for it. Where a newer image says the page is
 * gone (a hole, a complete mapping: docs/image-format.md, "Restoring from a chain"),
 * the older image's data goes again: MADV_DONTNEED leaves zeros in anonymous memory
 * and the file's page in a private file mapping, as a page never written. */
static void drop_hidden(int k)
{
	for (uint32_t i = 0; i < layers[k].nvmas; i++) {
		const struct us_rec_vma *v = layers[k].vmas[i];
		const struct us_page_run *run = (const void *)(v + 1);
		for (uint32_t r = 0; r < v->nruns; r++, run++) {
			if (run->flags & US_RUN_F_HOLE)
				continue;
			uint64_t end = run->addr + run_bytes(run), until, mapped_until;
			for (uint64_t a = run->addr; a < end; a = until) {
				int gone = layers_decide(layers, k, a, &until) == LAYER_GONE;
				int mapped = in_private_mapping(a, &mapped_until);
				if (mapped_until < until)
					until = mapped_until;
				if (until > end)
					until = end;
				long e;
				if (gone && mapped && is_err(e = us_sc3(SYS_madvise, a, until - a, MADV_DONTNEED)))
					die("cannot drop a page that a newer image says is gone", e);
			}
		}
	}
}

/* Whether an image of the chain has data for a mapping of the restored one: it is
 * mapped writable while its pages are put in place. */
static int gets_pages(const struct us_rec_vma *v)
{
	if (v->nruns)
		return 1;
	if ((v->flags & US_VMA_F_COMPLETE) || !layer_takes_pages(v))
		return 0;
	for (int k = 1; k < nchain; k++)
		for (uint32_t i = layer_seek(&layers[k], v->start); i < layers[k].nvmas; i++) {
			const struct us_rec_vma *o = layers[k].vmas[i];
			const struct us_page_run *run = (const void *)(o + 1);
			if (o->start >= v->end)
				break;
			for (uint32_t r = 0; r < o->nruns; r++, run++)
				if (!(run->flags & US_RUN_F_HOLE) && run->addr < v->end && run->addr + run_bytes(run) > v->start)
					return 1;
		}
	return 0;
}

/* A SysV shared memory attachment: the segment is shmid v->inode, which us-init
 * made again, filled, under that id. shmat maps the whole segment; the mapping's
 * part of it moves into place and the rest goes, so that a mapping that was only
 * part of an attachment counts as one attachment, as it did. */
static void attach_sysv(const struct us_rec_vma *v)
{
	uint64_t len = v->end - v->start;
	uint64_t size = (v->object_size + US_PAGE_SIZE - 1) & ~(uint64_t)(US_PAGE_SIZE - 1);
	if (v->file_offset > size || len > size - v->file_offset)
		die("SysV shared memory mapping outside its segment", 0);
	long base = us_sc3(SYS_shmat, v->inode, 0, v->prot & PROT_EXEC ? SHM_EXEC : 0);
	if (is_err(base))
		die("cannot attach SysV shared memory", base);
	long r = us_sc5(SYS_mremap, base + v->file_offset, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start);
	if (is_err(r))
		die("cannot move SysV shared memory to its saved address", r);
	if (v->file_offset)
		us_sc2(SYS_munmap, base, v->file_offset);
	if (size > v->file_offset + len)
		us_sc2(SYS_munmap, base + v->file_offset + len, size - v->file_offset - len);
	if (is_err(r = us_sc3(SYS_mprotect, v->start, len, v->prot)))
		die("cannot restore memory protection", r);
}

static void map_vma(const struct us_rec_vma *v)
{
	const char *path = (const char *)(v + 1) + v->nruns * sizeof(struct us_page_run);
	char p[4096];
	uint64_t len = v->end - v->start;
	long r;

	if (v->path_len >= sizeof p)
		die("mapped file path too long", 0);
	for (uint32_t i = 0; i < v->path_len; i++)
		p[i] = path[i];
	p[v->path_len] = 0;

	uint32_t prot = v->prot | (gets_pages(v) ? PROT_WRITE : 0);
	long noreserve = v->flags & US_VMA_F_NORESERVE ? MAP_NORESERVE : 0;
	switch (v->kind) {
	case US_VMA_ANON:
	case US_VMA_HEAP:
		r = us_sc6(SYS_mmap, v->start, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | noreserve, -1, 0);
		break;
	case US_VMA_STACK:
		r = us_sc6(SYS_mmap, v->start, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
		break;
	case US_VMA_FILE: {
		int shared = v->flags & US_VMA_F_SHARED;
		int mode = shared && (v->prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
		int fd = (int)us_sc4(SYS_openat, AT_FDCWD, p, mode | O_CLOEXEC, 0);
		if (fd < 0)
			die("a file the process had mapped cannot be opened", fd);
		r = us_sc6(SYS_mmap, v->start, len, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED | noreserve, fd, v->file_offset);
		us_sc1(SYS_close, fd);
		break;
	}
	case US_VMA_SHMEM: {
		if (us_startswith(p, "/SYSV")) {
			attach_sysv(v);
			return;
		}
		int fd = -1;
		for (int i = 0; i < nshm; i++)
			if (shms[i].dev == v->dev && shms[i].ino == v->inode)
				fd = shms[i].fd;
		if (fd < 0)
			die("shared memory object missing from the restore plan", 0);
		r = us_sc6(SYS_mmap, v->start, len, v->prot, MAP_SHARED | MAP_FIXED, fd, v->file_offset);
		if (is_err(r))
			die("cannot map shared memory", r);
		return;   /* us-init filled the object; every sharer sees the same pages */
	}
	default:
		return;
	}
	if (is_err(r))
		die("cannot map memory at its saved address", r);
}

/* Once every image of the chain put its pages in: the protection of the image. */
static void protect_vma(const struct us_rec_vma *v)
{
	long r;
	int mapped_here = v->kind == US_VMA_ANON || v->kind == US_VMA_HEAP || v->kind == US_VMA_STACK || v->kind == US_VMA_FILE;
	if (mapped_here && !(v->prot & PROT_WRITE) && gets_pages(v) &&
	    is_err(r = us_sc3(SYS_mprotect, v->start, v->end - v->start, v->prot)))
		die("cannot restore memory protection", r);
}

/* Memory attributes given with madvise and mlock, once every page is in place. */
static void advise(const struct us_rec_madvice *h)
{
	static const struct { uint32_t flag; int advice; } by_flag[] = {
		{ US_MADV_DONTFORK, MADV_DONTFORK }, { US_MADV_WIPEONFORK, MADV_WIPEONFORK },
		{ US_MADV_DONTDUMP, MADV_DONTDUMP }, { US_MADV_HUGEPAGE, MADV_HUGEPAGE },
		{ US_MADV_NOHUGEPAGE, MADV_NOHUGEPAGE },
	};
	const struct us_madvice *m = (const void *)(h + 1);
	for (uint32_t i = 0; i < h->count; i++, m++) {
		uint64_t len = m->end - m->start;
		long r;
		for (unsigned k = 0; k < sizeof by_flag / sizeof by_flag[0]; k++)
			if ((m->flags & by_flag[k].flag) && is_err(r = us_sc3(SYS_madvise, m->start, len, by_flag[k].advice)))
				die("cannot give memory its madvise attributes again", r);
		if ((m->flags & US_MADV_LOCKED) &&
		    is_err(r = us_sc3(SYS_mlock2, m->start, len, m->flags & US_MADV_LOCKONFAULT ? MLOCK_ONFAULT : 0)))
			die("cannot lock memory again (mlock; RLIMIT_MEMLOCK?)", r);
	}
}

/* ---- the rest of the process ---- */

static void set_mm(const struct us_rec_proc *pr)
{
	const char *exe = (const char *)(pr + 1);
	const char *auxv = exe + pr->exe_len + pr->cwd_len + pr->comm_len;

	static uint64_t auxv_copy[128];
	uint32_t alen = pr->auxv_len < sizeof auxv_copy ? pr->auxv_len : sizeof auxv_copy;
	for (uint32_t i = 0; i < alen; i++)
		((char *)auxv_copy)[i] = auxv[i];

	struct prctl_mm_map m = {
		.start_code = pr->mm[US_MM_START_CODE], .end_code = pr->mm[US_MM_END_CODE],
		.start_data = pr->mm[US_MM_START_DATA], .end_data = pr->mm[US_MM_END_DATA],
		.start_brk = pr->mm[US_MM_START_BRK], .brk = pr->mm[US_MM_BRK],
		.start_stack = pr->mm[US_MM_START_STACK],
		.arg_start = pr->mm[US_MM_ARG_START], .arg_end = pr->mm[US_MM_ARG_END],
		.env_start = pr->mm[US_MM_ENV_START], .env_end = pr->mm[US_MM_ENV_END],
		.auxv = alen ? (__u64 *)auxv_copy : 0, .auxv_size = alen,
		/* /proc/self/exe cannot change while this program is mapped; the
		 * restored checkpoint thread sets it once it has unmapped us */
		.exe_fd = (uint32_t)-1,
	};
	long r = us_sc5(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof m, 0);
	if (is_err(r))
		die("cannot restore the process's memory layout (PR_SET_MM_MAP)", r);
	char comm[16] = { 0 };
	for (uint32_t i = 0; i < pr->comm_len && i < 15; i++)
		comm[i] = exe[pr->exe_len + pr->cwd_len + i];
	us_sc5(SYS_prctl, PR_SET_NAME, comm, 0, 0, 0);
}

struct restore_args { uint64_t restorer_start, restorer_end, checkpoint_seq, coord_path, log_path, output_path; };
static struct restore_args args;

/* Arguments go with the stack this program unmaps: they are copied to scratch
 * memory, where what was parsed of them points. */
static char **copy_args(int argc, char **argv)
{
	uint64_t bytes = (uint64_t)argc * sizeof(char *);
	for (int i = 0; i < argc; i++) {
		uint64_t n = 0;
		while (argv[i][n])
			n++;
		bytes += n + 1;
	}
	char **copy = scratch_alloc(bytes);
	char *at = (char *)(copy + argc);
	for (int i = 0; i < argc; i++) {
		copy[i] = at;
		for (const char *p = argv[i]; (*at++ = *p); p++)
			;
	}
	return copy;
}

void restorer_main(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	if (argc < 4)
		die("usage: us-restorer META PAGES LOG [coord:PATH] [output:PATH] [base-meta:META base-pages:PAGES ...] "
		    "[shm:DEV:INODE:FD ...] [shm-removed:SHMID ...]", 0);
	copy_arg(meta_path, argv[1]);
	copy_arg(log_path, argv[3]);
	argv = copy_args(argc, argv);
	chain[0] = (struct image){ .meta_path = meta_path, .pages_path = argv[2] };
	nchain = 1;
	uint64_t n = (uint64_t)(argc - 4);
	shms = scratch_alloc(n * sizeof *shms + 1);
	shm_removed = scratch_alloc(n * sizeof *shm_removed + 1);
	for (int i = 4; i < argc; i++) {
		const char *p = argv[i];
		if (us_startswith(p, "coord:")) {
			copy_arg(coord_path, p + 6);
			continue;
		}
		if (us_startswith(p, "output:")) {
			copy_arg(output_path, p + 7);
			continue;
		}
		if (us_startswith(p, "base-meta:")) {
			if (nchain == US_CHAIN_MAX || i + 1 == argc || !us_startswith(argv[i + 1], "base-pages:"))
				die("bad argument: base-meta: comes with base-pages:, at most 255 times", 0);
			chain[nchain++] = (struct image){ .meta_path = p + 10, .pages_path = argv[++i] + 11 };
			continue;
		}
		if (us_startswith(p, "shm-removed:")) {
			p += 12;
			shm_removed[nshm_removed++] = (long)us_parse_u(&p, 10);
			continue;
		}
		if (!us_startswith(p, "shm:"))
			die("bad argument", 0);
		p += 4;
		shms[nshm].dev = us_parse_u(&p, 10);
		p++;
		shms[nshm].ino = us_parse_u(&p, 10);
		p++;
		shms[nshm++].fd = (int)us_parse_u(&p, 10);
	}

	uint64_t all = ~0ull;
	us_sc4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, &all, NULL, 8);

	/* Every image of the chain is read and checked before anything is touched. */
	for (int k = 0; k < nchain; k++)
		load_image(&chain[k], &layers[k]);
	check_chain();
	const struct image *im = &chain[0];
	char *maps = scratch_alloc(16ull << 20);
	check_thp();
	FOR_RECORDS(im, r)
		if (r->type == US_REC_MADVICE)
			advice = (const void *)(r + 1);

	/* Refuse before touching anything if the image needs our area. */
	FOR_RECORDS(im, r) {
		if (r->type != US_REC_VMA)
			continue;
		const struct us_rec_vma *v = (const void *)(r + 1);
		if (v->start < RESTORER_END && v->end > RESTORER_BASE)
			die("the image maps memory where the restorer lives", 0);
	}

	scan_self(maps, 16ull << 20);
	/* vdso and vvar: first out of the way, then to their saved addresses */
	uint64_t tmp = SCRATCH_LIMIT;
	move_special(&cur_vvar, tmp);
	move_special(&cur_vclock, tmp + (16ull << 20));
	move_special(&cur_vdso, tmp + (32ull << 20));
	FOR_RECORDS(im, r) {
		if (r->type != US_REC_VMA)
			continue;
		const struct us_rec_vma *v = (const void *)(r + 1);
		struct special *s = v->kind == US_VMA_VDSO ? &cur_vdso : v->kind == US_VMA_VVAR ? &cur_vvar :
				    v->kind == US_VMA_VVAR_VCLOCK ? &cur_vclock : 0;
		if (s && s->end - s->start != v->end - v->start)
			die("vdso or vvar size differs from the image: restore on the kernel that checkpointed", 0);
		if (s)
			place_special(s, v->start);
	}

	FOR_RECORDS(im, r)
		if (r->type == US_REC_VMA)
			map_vma((const void *)(r + 1));
	/* Pages: every image's runs, oldest first, each over the older ones; then
	 * what newer images say is gone goes again. */
	for (int k = nchain - 1; k >= 0; k--)
		fill_image(k);
	for (int k = 1; k < nchain; k++)
		drop_hidden(k);
	image_read = 0;
	FOR_RECORDS(im, r)
		if (r->type == US_REC_VMA)
			protect_vma((const void *)(r + 1));
	for (int i = 0; i < nshm_removed; i++)
		us_sc3(SYS_shmctl, shm_removed[i], IPC_RMID, 0);

	set_mm(im->proc);

	FOR_RECORDS(im, r)
		if (r->type == US_REC_MADVICE)
			advise((const void *)(r + 1));

	FOR_RECORDS(im, r) {
		if (r->type == US_REC_SIGACT) {
			const struct us_rec_sigact *h = (const void *)(r + 1);
			const struct us_sigact *a = (const void *)(h + 1);
			for (uint32_t i = 0; i < h->count; i++) {
				struct us_kernel_sigaction k = { a[i].handler, a[i].flags, a[i].restorer, a[i].mask };
				us_sc4(SYS_rt_sigaction, a[i].signo, &k, NULL, 8);
			}
		} else if (r->type == US_REC_FD) {
			const struct us_rec_fd *f = (const void *)(r + 1);
			if (f->kind != US_FD_COORDINATOR)
				us_sc3(SYS_fcntl, f->fd, 2 /* F_SETFD */, f->fd_flags);
		} else if (r->type == US_REC_MISC && r->len >= sizeof(struct us_rec_misc)) {
			const struct us_rec_misc *m = (const void *)(r + 1);
			for (int w = 0; w < 3; w++)
				if (m->itimer[w][2] || m->itimer[w][3])
					us_sc3(SYS_setitimer, w, m->itimer[w], NULL);
		}
	}
	for (int k = 0; k < nchain; k++)
		us_sc1(SYS_close, chain[k].pages_fd);
	for (int i = 0; i < nshm; i++)
		us_sc1(SYS_close, shms[i].fd);

	args.checkpoint_seq = im->h->checkpoint_seq;
	args.coord_path = coord_path[0] ? (uint64_t)coord_path : 0;
	args.log_path = (uint64_t)log_path;
	args.output_path = output_path[0] ? (uint64_t)output_path : 0;
	args.restorer_start = RESTORER_BASE;
	args.restorer_end = RESTORER_END;
	/* Scratch mappings are inside our area and go with it. */
	void (*entry)(struct restore_args *) = (void *)im->proc->entry;
	entry(&args);
	die("restore entry returned", 0);
}
