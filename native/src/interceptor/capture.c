/* Writing one process's image while the whole group is frozen: the state
 * description to <vpid>.meta and raw pages to <vpid>.pages (format: us_image.h).
 * Runs on the checkpoint thread with every application thread stopped, possibly
 * inside malloc or stdio, so it uses raw system calls and its own scratch mapping.
 *
 * This file holds the order of a capture and the record building; each resource
 * is captured in its own file: capture_process.c, capture_fds.c (each kind of
 * descriptor in src/descriptors/), capture_file_contents.c, capture_memory.c;
 * image_writer.c writes the files. */
#include <sys/mman.h>
#include <time.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_pagemap.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

void capture_fail(struct scratch *s, const char *what, const char *detail, long err)
{
	if (s->failed)
		return;
	struct us_buf b = { s->why, 0, (size_t)s->why_cap };
	us_put(&b, what);
	if (detail) {
		us_putc(&b, ' ');
		us_put(&b, detail);
	}
	if (err) {
		us_put(&b, ": ");
		us_put_errno(&b, err);
	}
	us_term(&b);
	s->failed = 1;
}

/* ---- record building ---- */

void meta_add(struct scratch *s, const void *p, size_t n)
{
	if (s->meta_len + n > s->meta_cap) {
		capture_fail(s, "state description larger than", "the scratch area", 0);
		return;
	}
	const char *src = p;
	for (size_t i = 0; i < n; i++)
		s->meta[s->meta_len + i] = src ? src[i] : 0;
	s->meta_len += n;
}

void rec_begin(struct scratch *s, uint32_t type)
{
	struct us_rec_hdr h = { type, 0 };
	s->rec_start = s->meta_len;
	meta_add(s, &h, sizeof h);
}

void rec_end(struct scratch *s)
{
	if (s->failed)
		return;
	struct us_rec_hdr *h = (void *)(s->meta + s->rec_start);
	h->len = (uint32_t)(s->meta_len - s->rec_start - sizeof *h);
	size_t pad = US_REC_ALIGN(h->len) - h->len;
	meta_add(s, NULL, pad);
	s->nrecords++;
}

const char *fd_proc_path(char *buf, size_t cap, const char *dir, int fd)
{
	struct us_buf b = { buf, 0, cap };
	us_put(&b, "/proc/self/");
	us_put(&b, dir);
	us_putc(&b, '/');
	us_putu(&b, (uint64_t)fd);
	return us_term(&b);
}

/* The list of /proc/self/fd without the descriptors of the image itself. */
static int without(int *fds, int n, const int files[2])
{
	int kept = 0;
	for (int i = 0; i < n; i++)
		if (fds[i] != files[0] && fds[i] != files[1])
			fds[kept++] = fds[i];
	return kept;
}

static void close_files(const int files[2])
{
	for (int i = 0; i < 2; i++)
		if (files[i] >= 0)
			us_sc1(SYS_close, files[i]);
}

int us_write_image(const char *dir, const int files[2], uint64_t seq, uint64_t base_seq, int options, char *why, int cap,
		   uint64_t *meta_bytes, uint64_t *pages_bytes, int *incremental)
{
	int cow = options & US_WRITE_COW;
	struct us_thread_slot *self = us_slot_claim((int)us_sc0(SYS_gettid));
	if (!self) {
		struct us_buf b = { why, 0, (size_t)cap };
		us_put(&b, "no thread slot left");
		us_term(&b);
		close_files(files);
		return -1;
	}
	self->is_checkpoint_thread = 1;
	us_capture_thread(self);
	/* The restored checkpoint thread resumes here, returning US_WRITE_RESTORED.
	 * Nothing below may be relied upon on that path: the stack was captured later. */
	if (us_jmp_save(&self->ctx))
		return US_WRITE_RESTORED;   /* the files were the old process's */
	if (us_take_pending_signals(why, cap) < 0) {
		close_files(files);
		return -1;
	}

	/* for tests: a forked child (its parent is not us-init) captures slowly, so that its
	 * parent's writer is done before the child's starts */
	if (us_streq(us.fault, "slow-capture-in-children") && us_sc0(SYS_getppid) != 1) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		us_sc2(SYS_nanosleep, &ts, NULL);
	}
	if (us_streq(us.fault, "stall-write")) {
		us_log("fault", "stall-write: hanging in WRITE until killed");
		for (;;) {
			struct timespec ts = { 1, 0 };
			us_sc2(SYS_nanosleep, &ts, NULL);
		}
	}

	struct scratch s = { 0 };
	s.why = why;
	s.why_cap = cap;
	long base = us_sc6(SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base < 0 && base > -4096) {
		capture_fail(&s, "cannot map scratch memory", NULL, base);
		close_files(files);
		return -1;
	}
	s.base = (char *)base;
	s.maps = s.base;
	s.pm = (uint64_t *)(s.base + MAPS_MAX);
	s.data = s.base + MAPS_MAX + PM_BATCH * 8;
	s.peers = s.data + DATA_MAX;
	s.regions = (struct us_page_region *)(s.peers + PEERS_MAX);
	s.fds = (int *)(s.regions + REGIONS_MAX);
	s.pids = s.fds + FDS_MAX;
	s.list = s.pids + PIDS_MAX;
	s.holders = (struct fd_holder *)(s.list + FDS_MAX);
	s.nholders = -1;
	s.own = (struct own_file *)(s.holders + HOLDERS_MAX);
	s.own_sorting = s.own + FDS_MAX;
	s.nown = -1;
	s.vm_flags = (struct vm_flags *)(s.own_sorting + FDS_MAX);
	s.rearmed = (uint64_t *)(s.vm_flags + VM_FLAGS_MAX);
	s.meta = (char *)(s.rearmed + REARMED_MAX);
	s.scan_works = 1;
	/* relative to base_seq only if this process has tracked every write since then */
	s.incremental = base_seq && us.tracker != US_TRACK_NONE && us.tracked_seq == base_seq;
	us.pending_seq = 0;
	s.queues = s.base + SCRATCH_SIZE - QUEUES_MAX;
	s.meta_cap = (size_t)(s.queues - s.meta);

	int *fds = s.fds;
	int nfds = us_list_numbers("/proc/self/fd", 1, fds, FDS_MAX);   /* before we open any */
	if (nfds > 0 && nfds <= FDS_MAX)
		nfds = without(fds, nfds, files);
	if (nfds > FDS_MAX) {
		capture_fail(&s, "more than 1048576 descriptors open (fs.nr_open's default); the image would leave some out", NULL, 0);
		nfds = 0;
	}
	int mapped = cow ? map_writer_result() : 0;
	if (mapped)
		capture_fail(&s, "cannot map the writer's result page", NULL, mapped);
	int meta_fd = files[0] >= 0 ? files[0] : open_image_file(dir, ".meta");
	s.pages_fd = files[1] >= 0 ? files[1] : open_image_file(dir, ".pages");
	if (meta_fd < 0 || s.pages_fd < 0) {
		capture_fail(&s, "cannot create image files in", dir, meta_fd < 0 ? meta_fd : s.pages_fd);
	} else {
		struct us_meta_header h = { 0 };
		meta_add(&s, &h, sizeof h);       /* filled in at the end */
		capture_process(&s);
		if (nfds < 0)
			capture_fail(&s, "cannot list /proc/self/fd", NULL, 0);
		else
			capture_fds(&s, fds, nfds);
		if (!s.failed && nfds > 0)
			capture_file_contents(&s, fds, nfds);
		if (!s.failed && (options & US_WRITE_IPC))
			capture_ipc(&s);
		s.runs_start = s.pages_len;
		if (!s.failed)
			capture_memory(&s);
	}
	s.meta_fd = meta_fd;
	int is_staged = 0;
	if (!s.failed) {
		s.seq = seq;
		s.base_seq = base_seq;
		if (cow && s.incremental && stage_pages(&s))
			is_staged = 1;
		else if (cow)
			start_writer(&s);
		else
			finish_image(&s);
		*meta_bytes = s.meta_len;
		*pages_bytes = s.pages_len;
		*incremental = s.incremental;
	}
	if (!s.failed) {
		/* still frozen: from here every write is tracked again */
		arm_tracker(&s);
		us.pending_seq = seq;   /* becomes the tracked base once the checkpoint commits */
	} else if (s.rearming) {
		us.tracked_seq = 0;     /* the capture's walks cleared written pages of no image */
	}
	if (is_staged && !s.failed)
		write_staged_later(&s); /* us_wait_writer writes it and lets it go */
	else
		release_image(&s);
	return s.failed ? -1 : 0;
}

