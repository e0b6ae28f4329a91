/* The image writer: lays out <vpid>.pages (page runs without their pages of zeros,
 * LZ4 blocks where they save space) and the final state description, writes the
 * state description last and fsyncs both. It runs in a forked writer that holds a
 * copy-on-write snapshot of the frozen process, or on the checkpoint thread for a
 * staged increment once the group runs again. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <linux/prctl.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_crc32c.h"
#include "../common/us_lz4.h"
#include "../../include/us_image.h"

static int page_is_zero(const uint64_t *p)
{
	for (unsigned i = 0; i < US_PAGE_SIZE / 8; i++)
		if (p[i])
			return 0;
	return 1;
}

int write_all(int fd, const void *p, uint64_t n)
{
	const char *c = p;
	while (n) {
		long r = us_sc3(SYS_write, fd, c, n > (1ul << 30) ? (1ul << 30) : n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		c += r;
		n -= (uint64_t)r;
	}
	return 0;
}

/* The pages of a staged increment go out a writev of up to PAGES_IOV_MAX pieces at a
 * time, straight from the staging area: its runs are mostly single pages, a write()
 * each was some two thousand system calls for an increment of 8 MB. Only bytes that
 * stay as they are until written wait here (the staging area, zeros); memory read in
 * place is written at once, right after its checksum, since the writer's own memory
 * is in the image too. */
#define PAGES_IOV_MAX 1024
static struct iovec pages_iov[PAGES_IOV_MAX];
static int pages_niov;

static int flush_pages_iov(struct scratch *s)
{
	struct iovec *v = pages_iov;
	int n = pages_niov;
	pages_niov = 0;
	while (n) {
		long r = us_sc3(SYS_writev, s->pages_fd, v, n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		for (; n && (uint64_t)r >= v->iov_len; n--, v++)
			r -= (long)v->iov_len;
		if (n) {
			v->iov_base = (char *)v->iov_base + r;
			v->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* n bytes at src to the end of .pages; stable: src stays as it is until written */
static int put_pages(struct scratch *s, const void *src, uint64_t n, int stable)
{
	if (!stable) {
		int r = flush_pages_iov(s);
		return r ? r : write_all(s->pages_fd, src, n);
	}
	struct iovec *last = pages_niov ? &pages_iov[pages_niov - 1] : NULL;
	if (last && (const char *)last->iov_base + last->iov_len == src && last->iov_len + n <= (1ul << 30)) {
		last->iov_len += n;
		return 0;
	}
	if (pages_niov == PAGES_IOV_MAX) {
		int r = flush_pages_iov(s);
		if (r)
			return r;
	}
	pages_iov[pages_niov++] = (struct iovec){ (void *)src, n };
	return 0;
}

static int pad_pages_file(struct scratch *s, uint64_t align)
{
	static const char zeros[US_PAGE_SIZE];
	uint64_t pad = (align - s->pages_len % align) % align;
	s->pages_len += pad;
	return pad ? put_pages(s, zeros, pad, 1) : 0;
}

/* Pages go out in chunks small enough to stay in the cache between the checksum that
 * reads them and the copy into the page cache (4 MiB chunks made that copy three times
 * slower), and the disk is started on every few MiB written, so that the one fsync at
 * the end has little left to wait for. */
#define WRITE_CHUNK     (512ul << 10)
#define WRITEBACK_EVERY (16ul << 20)

static int append_pages(struct scratch *s, struct us_page_run *run, const void *src, uint64_t n)
{
	run->crc = us_crc32c(run->crc, src, n);
	int staged = s->stage && (const char *)src >= s->stage && (const char *)src + n <= s->stage + s->stage_len;
	int r = put_pages(s, src, n, staged);
	if (r)
		return r;
	s->pages_len += n;
	if (s->pages_len - s->pages_started >= WRITEBACK_EVERY) {
		if ((r = flush_pages_iov(s)))
			return r;
		us_sc4(SYS_sync_file_range, s->pages_fd, s->pages_started, s->pages_len - s->pages_started,
		       SYNC_FILE_RANGE_WRITE);
		s->pages_started = s->pages_len;
	}
	return 0;
}

/* Stores [addr, addr + npages) at the end of .pages as one LZ4 block and describes
 * it in run, where that saves an eighth or more. 0: stored; 1: store it raw. */
static int store_compressed(struct scratch *s, struct us_page_run *run, const char *staged, int readable, int mem_fd)
{
	uint64_t len = run->npages * US_PAGE_SIZE;
	if (!us.compress || run->npages > US_LZ4_RUN_PAGES)
		return 1;
	const void *src = staged ? staged : run_source(s, run->addr, len, readable, mem_fd);
	if (!src)
		return -EFAULT;
	uint64_t z = us_lz4_compress(src, len, s->lz4_out, len - len / 8, s->lz4_table);
	if (!z)
		return 1;
	int r = pad_pages_file(s, 8);
	if (r)
		return r;
	run->crc = 0;
	run->flags |= US_RUN_F_LZ4;
	run->stored_len = z;
	run->pages_off = s->pages_len;
	return append_pages(s, run, s->lz4_out, z);
}

/* The writer lays out .pages and the final state description together: the runs
 * the capture reserved, with the pages of zeros of RUN_SCAN_ZERO runs left out
 * (or, where the mapping is a delta, turned into holes). Looking for zeros here
 * rather than in capture_vma keeps that reading out of the freeze. */
struct rewrite {
	struct scratch *s;
	char *out;
	size_t len, cap;
	int mem_fd, readable;
	uint32_t nruns;
	uint64_t run_addr;              /* the capture's run being written, */
	const char *staged;             /* and its staged copy, if any */
};

static void out_add(struct rewrite *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		capture_fail(w->s, "state description larger than", "the writer's buffer", 0);
		return;
	}
	for (size_t i = 0; i < n; i++)
		w->out[w->len + i] = p ? ((const char *)p)[i] : 0;
	w->len += n;
}

/* A raw data run, written a chunk at a time; in a run scanned for zeros, right
 * behind the scan, while each chunk is still in the cache (scanning a whole run
 * before writing it read all of memory from RAM twice). stored_len counts what is
 * written. */
static void open_run(struct rewrite *w, struct us_page_run *open, uint64_t addr)
{
	int e = pad_pages_file(w->s, US_PAGE_SIZE);
	if (e)
		capture_fail(w->s, "cannot write the pages file", NULL, e);
	*open = (struct us_page_run){ .addr = addr, .pages_off = w->s->pages_len };
}

static void write_open_run(struct rewrite *w, struct us_page_run *open, uint64_t upto)
{
	for (uint64_t from; !w->s->failed && (from = open->addr + open->stored_len) < upto;) {
		uint64_t n = upto - from < WRITE_CHUNK ? upto - from : WRITE_CHUNK;
		const void *src = w->staged ? w->staged + (from - w->run_addr) : run_source(w->s, from, n, w->readable, w->mem_fd);
		int e = src ? append_pages(w->s, open, src, n) : -EFAULT;
		if (e)
			capture_fail(w->s, "cannot write the pages file", NULL, e);
		open->stored_len += n;
	}
}

static void close_run(struct rewrite *w, struct us_page_run *open, uint64_t end)
{
	write_open_run(w, open, end);
	open->npages = open->stored_len / US_PAGE_SIZE;
	out_add(w, open, sizeof *open);
	w->nruns++;
}

/* A data run: an LZ4 block where that pays, else its pages raw. */
static void out_data(struct rewrite *w, uint64_t addr, uint64_t npages)
{
	struct us_page_run run = { .addr = addr, .npages = npages };
	int e = store_compressed(w->s, &run, w->staged ? w->staged + (addr - w->run_addr) : NULL, w->readable, w->mem_fd);
	if (e < 0) {
		capture_fail(w->s, "cannot write the pages file", NULL, e);
		return;
	}
	if (e) {
		open_run(w, &run, addr);
		close_run(w, &run, addr + npages * US_PAGE_SIZE);
		return;
	}
	out_add(w, &run, sizeof run);
	w->nruns++;
}

static void out_hole(struct rewrite *w, uint64_t addr, uint64_t npages)
{
	struct us_page_run run = { .addr = addr, .npages = npages, .flags = US_RUN_F_HOLE };
	out_add(w, &run, sizeof run);
	w->nruns++;
}

/* The run's pages of data become data runs; its pages of zeros become holes in a
 * delta, and nothing otherwise. LZ4 needs a run whole before it can choose, so a
 * compressed image finds each run's end first. */
static void out_without_zeros(struct rewrite *w, const struct us_page_run *run, int delta)
{
	uint64_t end = run->addr + run->npages * US_PAGE_SIZE, from = run->addr;
	int zeros = -1;                 /* what [from, p) holds: 1 zeros, 0 data */
	struct us_page_run open = { 0 };
	for (uint64_t p = run->addr; p <= end && !w->s->failed; p += US_PAGE_SIZE) {
		const char *page = w->staged ? w->staged + (p - run->addr) : (const char *)p;
		/* the first word of each page is a miss; ask for pages ahead of it */
		if (p + 16 * US_PAGE_SIZE < end)
			__builtin_prefetch(page + 16 * US_PAGE_SIZE);
		int z = p < end ? page_is_zero((const uint64_t *)page) : -1;
		if (z == zeros) {
			if (!z && !us.compress && p - (open.addr + open.stored_len) >= WRITE_CHUNK)
				write_open_run(w, &open, p);
			continue;
		}
		if (p > from && !zeros) {
			if (us.compress)
				out_data(w, from, (p - from) / US_PAGE_SIZE);
			else
				close_run(w, &open, p);
		} else if (p > from && delta) {
			out_hole(w, from, (p - from) / US_PAGE_SIZE);
		}
		if (z == 0 && !us.compress)
			open_run(w, &open, p);
		from = p;
		zeros = z;
	}
}

static void rewrite_vma(struct rewrite *w, const struct us_rec_hdr *r)
{
	const struct us_rec_vma *v = (const void *)(r + 1);
	const struct us_page_run *run = (const void *)(v + 1);
	size_t at = w->len;
	out_add(w, r, sizeof *r);
	out_add(w, v, sizeof *v);
	w->nruns = 0;
	w->readable = (v->prot & PROT_READ) != 0;
	int delta = w->s->incremental && !(v->flags & US_VMA_F_COMPLETE);
	for (uint32_t i = 0; i < v->nruns && !w->s->failed; i++, run++) {
		w->run_addr = run->addr;
		w->staged = w->s->stage && !(run->flags & US_RUN_F_HOLE) ? w->s->stage + run->pages_off : NULL;
		if (run->flags & US_RUN_F_HOLE)
			out_hole(w, run->addr, run->npages);
		else if (run->flags & RUN_SCAN_ZERO)
			out_without_zeros(w, run, delta);
		else
			out_data(w, run->addr, run->npages);
	}
	out_add(w, (const char *)(v + 1) + v->nruns * sizeof *run, v->path_len);
	if (w->s->failed)
		return;
	struct us_rec_hdr *h = (void *)(w->out + at);
	struct us_rec_vma *nv = (void *)(h + 1);
	nv->nruns = w->nruns;
	h->len = (uint32_t)(w->len - at - sizeof *h);
	out_add(w, NULL, US_REC_ALIGN(h->len) - h->len);
}

static uint64_t writer_meta_cap(const struct scratch *s)
{
	/* at worst every other page of a scanned run becomes a run of its own */
	uint64_t cap = s->meta_len;
	const char *end = s->meta + s->meta_len;
	for (const struct us_rec_hdr *r = (const void *)(s->meta + sizeof(struct us_meta_header));
	     (const char *)r < end; r = (const void *)((const char *)(r + 1) + US_REC_ALIGN(r->len))) {
		const struct us_rec_vma *v = (const void *)(r + 1);
		const struct us_page_run *run = (const void *)(v + 1);
		for (uint32_t i = 0; r->type == US_REC_VMA && i < v->nruns; i++)
			if (run[i].flags & RUN_SCAN_ZERO)
				cap += (run[i].npages + 1) * sizeof *run;
	}
	return (cap + US_PAGE_SIZE) & ~(uint64_t)(US_PAGE_SIZE - 1);
}

static int in_writer;   /* this is the forked writer */

static void write_pages(struct scratch *s)
{
	struct rewrite w = { .s = s, .cap = writer_meta_cap(s) };
	uint64_t lz4_len = us.compress ? US_LZ4_TABLE_BYTES + US_LZ4_BOUND(US_LZ4_RUN_PAGES * US_PAGE_SIZE) : 0;
	long m = us_sc6(SYS_mmap, 0, w.cap + lz4_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m < 0 && m > -4096) {
		capture_fail(s, "cannot map the writer's memory", NULL, m);
		return;
	}
	w.out = (char *)m;
	s->lz4_table = w.out + w.cap;
	s->lz4_out = s->lz4_table + US_LZ4_TABLE_BYTES;
	w.mem_fd = (int)us_sc4(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDONLY | O_CLOEXEC, 0);
	/* the forked writer was made while the capture needed the process dumpable
	 * (freeze.c); a copy of its memory is not to stay so any longer than this */
	if (in_writer && us.app_dumpable != 1)
		us_sc2(SYS_prctl, PR_SET_DUMPABLE, 0);
	s->pages_len = s->runs_start;

	out_add(&w, s->meta, sizeof(struct us_meta_header));
	const char *end = s->meta + s->meta_len;
	for (const struct us_rec_hdr *r = (const void *)(s->meta + sizeof(struct us_meta_header));
	     (const char *)r < end && !s->failed; r = (const void *)((const char *)(r + 1) + US_REC_ALIGN(r->len))) {
		if (r->type == US_REC_VMA)
			rewrite_vma(&w, r);
		else
			out_add(&w, r, sizeof *r + US_REC_ALIGN(r->len));
	}
	int e = flush_pages_iov(s);
	if (e && !s->failed)
		capture_fail(s, "cannot write the pages file", NULL, e);
	if (w.mem_fd >= 0)
		us_sc1(SYS_close, w.mem_fd);
	/* the capture's scratch goes with the writer (or with us_write_image) */
	s->meta = w.out;
	s->meta_len = w.len;
	s->writer_map = (char *)m;
	s->writer_map_len = w.cap + lz4_len;
}

int open_image_file(const char *dir, const char *ext)
{
	char path[US_PATH_MAX];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, dir);
	us_putc(&b, '/');
	us_putu(&b, (uint64_t)us.vpid);
	us_put(&b, ext);
	/* 0600: images hold application memory, which means secrets */
	return (int)us_sc4(SYS_openat, AT_FDCWD, us_term(&b), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* Copies the pages, then writes the state description last, so that a complete
 * .meta means a complete image. */
void finish_image(struct scratch *s)
{
	write_pages(s);
	if (s->failed)
		return;
	struct us_meta_header *h = (void *)s->meta;
	const char magic[8] = US_META_MAGIC;
	for (int i = 0; i < 8; i++)
		h->magic[i] = magic[i];
	h->version = US_META_VERSION;
	h->header_size = sizeof *h;
	h->kind = s->incremental ? US_IMAGE_INCREMENTAL : US_IMAGE_FULL;
	h->record_count = s->nrecords;
	h->records_len = s->meta_len - sizeof *h;
	h->pages_len = s->pages_len;
	h->records_crc = us_crc32c(0, s->meta + sizeof *h, h->records_len);
	h->vpid = (uint32_t)us.vpid;
	h->checkpoint_seq = s->seq;
	h->base_seq = s->incremental ? (uint32_t)s->base_seq : 0;
	h->header_crc = us_crc32c(0, h, 60);
	int r = write_all(s->meta_fd, s->meta, s->meta_len);
	if (!r)
		r = (int)us_sc1(SYS_fdatasync, s->pages_fd);
	if (!r)
		r = (int)us_sc1(SYS_fdatasync, s->meta_fd);
	if (r)
		capture_fail(s, "cannot write the image", NULL, r);
}

/* The forked writer: a copy-on-write snapshot of this process taken while it is
 * frozen. The application resumes at once; the writer copies the pages from the
 * snapshot. It is a clone child with no exit signal, so the application's own
 * waitpid() never sees it. */
static struct writer_result {
	volatile int done, failed;
	uint64_t meta_len, pages_len;   /* the writer decides them */
	char why[480];
} *writer;
static int writer_pid;

/* Made before the capture reads the memory map, so that every image holds it and
 * a restored process finds it where its pointer says. */
int map_writer_result(void)
{
	if (writer)
		return 0;
	long m = us_sc6(SYS_mmap, 0, US_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096)
		return (int)m;
	writer = (struct writer_result *)m;
	return 0;
}

/* A forked child, or a restored process whose parent was forked, shares the
 * parent's result page: their writers would report into one another's. A page of
 * its own at the same address, which its images hold like the one before. */
void us_writer_result_own(void)
{
	if (writer)
		us_sc6(SYS_mmap, (long)writer, US_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

/* Memory that fork leaves out (MADV_DONTFORK) or gives empty (MADV_WIPEONFORK)
 * must reach the writer as it is: it loses the flag for the fork, and gets it back
 * at once, while the group is still frozen. */
static void fork_advice(struct scratch *s, int for_writer)
{
	for (uint32_t i = 0; i < s->nvm_flags; i++) {
		const struct vm_flags *f = &s->vm_flags[i];
		if (f->advice & US_MADV_DONTFORK)
			us_sc3(SYS_madvise, f->start, f->end - f->start, for_writer ? MADV_DOFORK : MADV_DONTFORK);
		if (f->advice & US_MADV_WIPEONFORK)
			us_sc3(SYS_madvise, f->start, f->end - f->start, for_writer ? MADV_KEEPONFORK : MADV_WIPEONFORK);
	}
}

void start_writer(struct scratch *s)
{
	writer->done = writer->failed = 0;
	writer->why[0] = 0;
	fork_advice(s, 1);
	long pid = us_sc5(SYS_clone, 0 /* no exit signal */, 0, 0, 0, 0);
	if (pid != 0)
		fork_advice(s, 0);
	if (pid < 0) {
		capture_fail(s, "cannot fork the image writer", NULL, pid);
		return;
	}
	if (pid == 0) {
		/* named, so that whoever counts the group's processes can leave it out */
		us_sc2(SYS_prctl, PR_SET_NAME, (long)"us-writer");
		in_writer = 1;
		s->why = writer->why;
		s->why_cap = sizeof writer->why;
		finish_image(s);
		writer->meta_len = s->meta_len;
		writer->pages_len = s->pages_len;
		writer->failed = s->failed;
		writer->done = 1;
		for (;;)
			us_sc1(SYS_exit_group, s->failed);
	}
	writer_pid = (int)pid;
}

static struct scratch staged;   /* an image staged by us_write_image, written here */

void write_staged_later(struct scratch *s)
{
	staged = *s;
}

/* In a child forked while an increment waited to be written: the parent writes it. The child
 * lets go of the image files (the agent's) and the scratch memory it inherited, which its own
 * next checkpoint would otherwise list as its own. The staging area is us_stage_forget's. */
void us_staged_forget(void)
{
	if (!staged.base)
		return;
	if (staged.meta_fd >= 0)
		us_sc1(SYS_close, staged.meta_fd);
	if (staged.pages_fd >= 0)
		us_sc1(SYS_close, staged.pages_fd);
	if (staged.writer_map)
		us_sc2(SYS_munmap, staged.writer_map, staged.writer_map_len);
	us_sc2(SYS_munmap, staged.base, SCRATCH_SIZE);
	staged = (struct scratch){ 0 };
}

void release_image(struct scratch *s)
{
	if (s->meta_fd >= 0)
		us_sc1(SYS_close, s->meta_fd);
	if (s->pages_fd >= 0)
		us_sc1(SYS_close, s->pages_fd);
	if (s->writer_map)
		us_sc2(SYS_munmap, s->writer_map, s->writer_map_len);
	if (s->stage)   /* kept for the next one; the kernel may take the pages back meanwhile */
		us_sc3(SYS_madvise, s->stage, s->stage_len, MADV_FREE);
	us_sc2(SYS_munmap, s->base, SCRATCH_SIZE);
}

int us_wait_writer(char *why, int cap, uint64_t *meta_bytes, uint64_t *pages_bytes)
{
	if (staged.base) {
		staged.why = why;
		staged.why_cap = cap;
		finish_image(&staged);
		*meta_bytes = staged.meta_len;
		*pages_bytes = staged.pages_len;
		int failed = staged.failed;
		release_image(&staged);
		staged = (struct scratch){ 0 };
		return failed ? -1 : 0;
	}
	if (!writer_pid)
		return 0;
	int status = 0;
	while (us_sc4(SYS_wait4, writer_pid, &status, 0x80000000 /* __WCLONE */, 0) == -EINTR)
		;
	writer_pid = 0;
	if (writer->done && !writer->failed) {
		*meta_bytes = writer->meta_len;
		*pages_bytes = writer->pages_len;
		return 0;
	}
	struct us_buf b = { why, 0, (size_t)cap };
	us_put(&b, writer->done ? writer->why : "the image writer died");
	us_term(&b);
	return -1;
}
