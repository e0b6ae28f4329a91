/* Rebuilding a checkpointed group inside a fresh PID namespace.
 *
 * Objects shared between processes (pipes, FIFOs, socket pairs, shared memory) are
 * made once here, in PID 1, so that every process inherits the same ones. Then
 * each process is created by its own parent with clone3(set_tid) so that pids,
 * parents, sessions and process groups are what they were. Each process puts its
 * descriptors in place, then execs us-restorer, which replaces its memory. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "init.h"
#include "../common/us_crc32c.h"
#include "../common/us_fmt.h"
#include "../common/us_lz4.h"
#include "../common/us_image_check.h"
#include "../descriptors/kinds.h"
#include "../restorer/layers.h"
#include "../../include/us_image.h"

struct proc {
	char meta_path[4096], pages_path[4096];
	/* the images the restored one applies to, newest first: "base-meta:PATH" and
	 * "base-pages:PATH" arguments of the restorer, in pairs */
	char *bases[2 * (US_CHAIN_MAX - 1)];
	int nbases;
	char *meta;
	size_t meta_len;
	uint32_t rec_vpid;                     /* as the plan lists it */
	const struct us_rec_proc *rec;
	const struct us_rec_misc *misc;
	/* sized from the image */
	const struct us_rec_fd **fds;
	int nfds;
	const struct us_rec_vma **shm_vmas;    /* shared memory without a name: memfds */
	int nshm_vmas;
	const struct us_rec_vma **sysv_vmas;   /* SysV attachments: the IPC records' segments */
	int nsysv_vmas;
	int has_ipc;                           /* holds the group's IPC records */
	const struct us_rec_file **files;
	int nfiles;
};

static struct proc *procs;
static int nprocs;
/* Sized from the images before any is made: at most two per record (a pty pair),
 * and pointers to them stay good. */
static struct us_object *objects;
static int nobjects, max_objects;
static const struct proc *ipc_holder;     /* the image with the group's IPC records */
static int fd_base;
static const struct init_config *cfg;
/* The group's output log where the checkpoint was taken (the plan's output-was),
 * when it is not this node's (--output); else NULL. */
static char *output_was;

/* An attachment of a SysV segment: shmid is its inode (capture_memory.c). */
static int is_sysv(const struct us_rec_vma *v)
{
	const char *path = (const char *)(v + 1) + v->nruns * sizeof(struct us_page_run);
	return v->kind == US_VMA_SHMEM && v->path_len >= 5 && !memcmp(path, "/SYSV", 5);
}

static int load(struct proc *p)
{
	int fd = open(p->meta_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		init_log(cfg, "restore-failed reason=cannot-open image=%s errno=%d", p->meta_path, errno);
		return -1;
	}
	p->meta_len = (size_t)st.st_size;
	p->meta = malloc(p->meta_len + 1);
	if (!p->meta || read(fd, p->meta, p->meta_len) != (ssize_t)p->meta_len) {
		close(fd);
		return -1;
	}
	close(fd);
	const char *why = us_image_check(p->meta, p->meta_len);
	if (why) {
		init_log(cfg, "restore-failed reason=corrupt-image image=%s detail=%s", p->meta_path, why);
		return -1;
	}
	size_t nrecords = 0;
	US_FOR_RECORDS(p->meta, p->meta_len, r)
		nrecords++;
	p->fds = calloc(nrecords + 1, sizeof *p->fds);
	p->shm_vmas = calloc(nrecords + 1, sizeof *p->shm_vmas);
	p->sysv_vmas = calloc(nrecords + 1, sizeof *p->sysv_vmas);
	p->files = calloc(nrecords + 1, sizeof *p->files);
	if (!p->fds || !p->shm_vmas || !p->sysv_vmas || !p->files)
		return -1;
	US_FOR_RECORDS(p->meta, p->meta_len, r) {
		const void *body = r + 1;
		if (r->type == US_REC_PROC)
			p->rec = body;
		else if (r->type == US_REC_MISC)
			p->misc = body;
		else if (r->type == US_REC_FILE)
			p->files[p->nfiles++] = body;
		else if (r->type == US_REC_FD)
			p->fds[p->nfds++] = body;
		else if (r->type == US_REC_IPC)
			p->has_ipc = 1;
		else if (r->type == US_REC_VMA) {
			const struct us_rec_vma *v = body;
			if (v->kind == US_VMA_SHMEM && !is_sysv(v))
				p->shm_vmas[p->nshm_vmas++] = v;
			else if (is_sysv(v))
				p->sysv_vmas[p->nsysv_vmas++] = v;
		}
	}
	max_objects += 2 * (p->nfds + p->nshm_vmas + p->nfiles);
	return p->rec ? 0 : -1;
}

struct us_object *restore_find_object(int kind, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < nobjects; i++)
		if (objects[i].kind == kind && objects[i].ino == ino && objects[i].dev == dev)
			return &objects[i];
	return NULL;
}

int restore_move_high(int fd)
{
	if (fd < 0)
		return fd;
	int h = fcntl(fd, F_DUPFD, fd_base + nobjects * 2 + 2);
	close(fd);
	return h;
}

void restore_add_object(int kind, uint64_t dev, uint64_t ino, int fd, int fd2)
{
	struct us_object *o = &objects[nobjects];
	*o = (struct us_object){ dev, ino, kind, restore_move_high(fd), -1 };
	if (fd2 >= 0)
		o->fd2 = restore_move_high(fd2);
	nobjects++;
}

/* The first record that holds data for an object is as good as any: every holder
 * peeked the same queue at the same frozen instant. */
const struct us_rec_fd *restore_queued_data(int kind, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++) {
			const struct us_rec_fd *f = procs[i].fds[k];
			if ((int)f->kind == kind && f->inode == ino && f->dev == dev && f->data_len)
				return f;
		}
	return NULL;
}

int restore_in_group(int kind, uint64_t ino)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++)
			if (procs[i].fds[k]->inode == ino && (int)procs[i].fds[k]->kind == kind)
				return 1;
	return 0;
}

void restore_log(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	init_log(cfg, "%s", line);
}

/* Copies a FILE record's saved contents into out, checking them on the way. */
static int copy_contents(const struct proc *p, const struct us_rec_file *f, int out, char *buf)
{
	int pages = open(p->pages_path, O_RDONLY | O_CLOEXEC);
	uint32_t crc = 0;
	for (uint64_t off = 0; pages >= 0 && off < f->size;) {
		size_t want = f->size - off > (1u << 20) ? (1u << 20) : (size_t)(f->size - off);
		if (pread(pages, buf, want, (off_t)(f->pages_off + off)) != (ssize_t)want ||
		    pwrite(out, buf, want, (off_t)off) != (ssize_t)want)
			break;
		crc = us_crc32c(crc, buf, want);
		off += want;
	}
	int ok = pages >= 0 && crc == f->crc && ftruncate(out, (off_t)f->size) == 0;
	if (pages >= 0)
		close(pages);
	return ok;
}

static const char *file_path(const struct us_rec_file *f, char *out, size_t cap)
{
	size_t n = f->path_len < cap - 1 ? f->path_len : cap - 1;
	memcpy(out, f + 1, n);
	out[n] = 0;
	return out;
}

static int first_of_inode(int i, int k)
{
	const struct us_rec_file *f = procs[i].files[k];
	for (int a = 0; a <= i; a++)
		for (int b = 0; b < (a == i ? k : procs[a].nfiles); b++)
			if (procs[a].files[b]->dev == f->dev && procs[a].files[b]->inode == f->inode)
				return 0;
	return 1;
}

/* Storage checkpointing: files the group had open for writing get back the contents
 * and length they had at the checkpoint, before any process runs. */
static int restore_files(char *buf)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfiles; k++) {
			const struct us_rec_file *f = procs[i].files[k];
			if ((f->flags & US_FILE_F_UNLINKED) || !first_of_inode(i, k))
				continue;
			char path[4096];
			int out = open(file_path(f, path, sizeof path), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			int ok = out >= 0 && copy_contents(&procs[i], f, out, buf) && fsync(out) == 0;
			if (out >= 0)
				close(out);
			if (!ok) {
				init_log(cfg, "restore-failed reason=cannot-restore-file path=%s errno=%d", path, errno);
				return -1;
			}
			init_log(cfg, "file-restored path=%s bytes=%llu", path, (unsigned long long)f->size);
		}
	return 0;
}

/* An unlinked file comes back unlinked in its directory (O_TMPFILE), a memfd as a
 * memfd of the same name; either as a memfd where the directory will not do. */
static int make_nameless(const char *path)
{
	const char *deleted = " (deleted)";
	size_t n = strlen(path), k = strlen(deleted);
	char name[4096];
	snprintf(name, sizeof name, "%.*s", (int)(n >= k && !strcmp(path + n - k, deleted) ? n - k : n), path);
	if (!strncmp(name, "/memfd:", 7))
		return memfd_create(name + 7, MFD_ALLOW_SEALING);
	char *slash = strrchr(name, '/');
	if (slash && slash != name) {
		*slash = 0;
		int fd = open(name, O_TMPFILE | O_RDWR, 0600);
		*slash = '/';
		if (fd >= 0)
			return fd;
	}
	return memfd_create(slash ? slash + 1 : name, MFD_ALLOW_SEALING);
}

/* Unlinked files and memfds: one object each, with its saved contents, before any
 * descriptor or mapping of it is made (a mapped memfd stays that one object). */
static int make_unlinked_files(char *buf)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfiles; k++) {
			const struct us_rec_file *f = procs[i].files[k];
			if (!(f->flags & US_FILE_F_UNLINKED) || restore_find_object(US_OBJ_SHARED_MEMORY, f->dev, f->inode))
				continue;
			char path[4096];
			int fd = make_nameless(file_path(f, path, sizeof path));
			if (fd < 0 || !copy_contents(&procs[i], f, fd, buf)) {
				init_log(cfg, "restore-failed reason=cannot-restore-unlinked-file path=%s errno=%d", path, errno);
				return -1;
			}
			restore_add_object(US_OBJ_SHARED_MEMORY, f->dev, f->inode, fd, -1);
		}
	return 0;
}

/* A memfd's seals, once its contents are in: a seal against writing would refuse them. */
static void seal_memfds(void)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++) {
			const struct us_rec_fd *f = procs[i].fds[k];
			struct us_object *o = f->kind == US_FD_MEMFD ? restore_find_object(US_OBJ_SHARED_MEMORY, f->dev, f->inode) : NULL;
			if (o && f->aux[0])
				fcntl(o->fd, F_ADD_SEALS, (int)f->aux[0]);
		}
}

uint64_t restore_open_key(const struct proc *p, const struct us_rec_fd *f)
{
	const struct us_fd_ops *kind = us_fd_ops_of(f->kind);
	if (kind && kind->open_key && f->aux[US_FD_AUX_OPEN_KEY])
		return f->aux[US_FD_AUX_OPEN_KEY];
	return US_OPEN_KEY(p->rec->vpid, f->fd);
}

int restore_open_file(const struct proc *p, const struct us_rec_fd *f)
{
	uint64_t key = restore_open_key(p, f);
	struct us_object *o = restore_find_object(US_OBJ_OPEN_FILE, 0, key);
	if (o)
		return o->fd;
	const struct us_fd_ops *kind = us_fd_ops_of(f->kind);
	if (!kind || !kind->restore || nobjects + 2 > max_objects)
		return -1;
	int fd = kind->share_open ? kind->share_open(p, f) : kind->restore(p, f);
	if (fd < 0)
		return -1;
	restore_add_object(US_OBJ_OPEN_FILE, 0, key, fd, -1);
	return objects[nobjects - 1].fd;
}

/* cursor: the process's index in the high half, the record's in the low one */
const struct us_rec_fd *restore_next_record(long *cursor, const struct proc **holder)
{
	for (long c = *cursor; (c >> 32) < nprocs; c = ((c >> 32) + 1) << 32)
		if ((c & 0xffffffff) < procs[c >> 32].nfds) {
			*cursor = c + 1;
			*holder = &procs[c >> 32];
			return procs[c >> 32].fds[c & 0xffffffff];
		}
	return NULL;
}

const struct us_rec_fd *restore_next_with_key(uint64_t key, long *cursor, const struct proc **holder)
{
	for (const struct us_rec_fd *f; (f = restore_next_record(cursor, holder));) {
		const struct us_fd_ops *kind = us_fd_ops_of(f->kind);
		if (kind && kind->open_key && f->aux[US_FD_AUX_OPEN_KEY] == key)
			return f;
	}
	return NULL;
}

const char *restore_output_log_for(const char *path)
{
	return output_was && !strcmp(path, output_was) ? cfg->output : NULL;
}

uint32_t restore_vpid(const struct proc *p)
{
	return p->rec->vpid;
}

const struct us_rec_fd *restore_fd_of(const struct proc *p, int fd)
{
	for (int k = 0; k < p->nfds; k++)
		if (p->fds[k]->fd == fd)
			return p->fds[k];
	return NULL;
}

/* Every open file that several descriptors share, once, after the objects it may
 * be made of (pipes, shared memory). */
static int share_open_files(void)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++) {
			const struct us_rec_fd *f = procs[i].fds[k];
			const struct us_fd_ops *kind = us_fd_ops_of(f->kind);
			if (kind && kind->open_key && f->aux[US_FD_AUX_OPEN_KEY] && restore_open_file(&procs[i], f) < 0) {
				init_log(cfg, "restore-failed pid=%u reason=cannot-make-shared-open-file fd=%d errno=%d",
					 procs[i].rec->vpid, f->fd, errno);
				return -1;
			}
		}
	return 0;
}

/* Writes one saved run of a shared memory object into the object at off, through
 * buf (1 MiB) or, compressed, block; checks the stored bytes on the way. */
static int fill_shared_run(const struct us_page_run *run, int pages, int obj, uint64_t off, char *buf, char *block)
{
	uint64_t len = run->npages * US_PAGE_SIZE;
	if (run->flags & US_RUN_F_LZ4) {
		return pread(pages, block, run->stored_len, (off_t)run->pages_off) == (ssize_t)run->stored_len &&
		       us_crc32c(0, block, run->stored_len) == run->crc &&
		       us_lz4_decompress(block, run->stored_len, buf, len) == 0 &&
		       pwrite(obj, buf, len, (off_t)off) == (ssize_t)len;
	}
	uint32_t crc = 0;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done > (1u << 20) ? (1u << 20) : len - done;
		if (pread(pages, buf, n, (off_t)(run->pages_off + done)) != (ssize_t)n ||
		    pwrite(obj, buf, n, (off_t)(off + done)) != (ssize_t)n)
			return 0;
		crc = us_crc32c(crc, buf, n);
		done += n;
	}
	return crc == run->crc;
}

static int make_objects(char *buf)
{
	if (make_unlinked_files(buf) < 0)
		return -1;
	/* pipes, FIFOs, socket pairs, listening and bound sockets, ptys, TCP
	 * connections: each kind's own */
	for (int late = 0; late <= 1; late++)
		for (int i = 0; i < nprocs; i++)
			for (int k = 0; k < procs[i].nfds; k++) {
				const struct us_rec_fd *f = procs[i].fds[k];
				const struct us_fd_ops *kind = us_fd_ops_of(f->kind);
				int (*share)(const struct us_rec_fd *) = !kind ? NULL : late ? kind->share_late : kind->share;
				if (nobjects + 2 > max_objects)
					return -1;
				if (share && share(f) < 0)
					return -1;
			}
	/* shared memory objects: one memfd each, filled from the pages of any sharer */
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nshm_vmas; k++) {
			const struct us_rec_vma *v = procs[i].shm_vmas[k];
			struct us_object *o = restore_find_object(US_OBJ_SHARED_MEMORY, v->dev, v->inode);
			if (!o) {
				int m = memfd_create("understudy-shm", 0);
				if (m < 0)
					return -1;
				restore_add_object(US_OBJ_SHARED_MEMORY, v->dev, v->inode, m, -1);
				o = &objects[nobjects - 1];
			}
			struct stat st;
			uint64_t need = v->file_offset + (v->end - v->start);
			if (fstat(o->fd, &st) == 0 && (uint64_t)st.st_size < need && ftruncate(o->fd, (off_t)need) < 0)
				return -1;
			int pages = open(procs[i].pages_path, O_RDONLY | O_CLOEXEC);
			if (pages < 0)
				return -1;
			const struct us_page_run *run = (const void *)(v + 1);
			char *block = malloc(US_LZ4_BOUND(US_LZ4_RUN_PAGES * US_PAGE_SIZE));
			int ok = block != NULL;
			for (uint32_t r = 0; r < v->nruns && ok; r++)
				ok = fill_shared_run(&run[r], pages, o->fd, run[r].addr - v->start + v->file_offset, buf, block);
			free(block);
			close(pages);
			if (!ok)
				return -1;
		}
	seal_memfds();
	return share_open_files();
}

/* Whether SysV segment shmid was marked for removal at the checkpoint. */
static int segment_removed(uint64_t shmid)
{
	if (!ipc_holder)
		return 0;
	US_FOR_RECORDS(ipc_holder->meta, ipc_holder->meta_len, r) {
		const struct us_rec_ipc *o = (const void *)(r + 1);
		if (r->type == US_REC_IPC && o->kind == US_IPC_SHM && (uint64_t)o->id == shmid)
			return (o->mode & US_IPC_SHM_DEST) != 0;
	}
	return 0;
}

/* The group's IPC objects, before any process exists. A segment marked for removal
 * is marked again by the restorers of the processes attached to it; one that no
 * process attaches goes at once, as it would have with its last detach. */
static int make_ipc_objects(void)
{
	for (int i = 0; i < nprocs && !ipc_holder; i++)
		if (procs[i].has_ipc)
			ipc_holder = &procs[i];
	if (!ipc_holder)
		return 0;
	if (restore_ipc(cfg, ipc_holder->meta, ipc_holder->meta_len, ipc_holder->pages_path) < 0)
		return -1;
	US_FOR_RECORDS(ipc_holder->meta, ipc_holder->meta_len, r) {
		const struct us_rec_ipc *o = (const void *)(r + 1);
		int attached = 0;
		if (r->type != US_REC_IPC || o->kind != US_IPC_SHM || !(o->mode & US_IPC_SHM_DEST))
			continue;
		for (int i = 0; i < nprocs; i++)
			for (int k = 0; k < procs[i].nsysv_vmas; k++)
				attached |= procs[i].sysv_vmas[k]->inode == (uint64_t)o->id;
		if (!attached)
			shmctl(o->id, IPC_RMID, NULL);
	}
	return 0;
}

/* ---- one process ---- */

void restore_fail(const struct proc *p, const char *what, const char *detail)
{
	init_log(cfg, "restore-failed pid=%u reason=%s detail=%s errno=%d", p->rec->vpid, what, detail ? detail : "-", errno);
	_exit(126);
}

static void place(const struct proc *p, const struct us_rec_fd *f, int fd)
{
	if (fd < 0)
		restore_fail(p, "cannot-make-descriptor", NULL);
	/* Every descriptor must outlive the exec into the restorer, which sets the
	 * recorded FD_CLOEXEC afterwards; dup2 clears it, but one made at its own number
	 * keeps what it was made with (the kernel makes every mq_open descriptor
	 * close-on-exec). */
	if (fd == f->fd) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			restore_fail(p, "cannot-place-descriptor", NULL);
		return;
	}
	if (dup2(fd, f->fd) < 0)
		restore_fail(p, "cannot-place-descriptor", NULL);
	close(fd);
}

static void setup_fds(const struct proc *p, const int *keep, int nkeep)
{
	int top = fd_base + nobjects * 2 + 300;
	for (int k = 0; k < nkeep; k++)
		top = keep[k] >= top ? keep[k] + 1 : top;
	char *in_table = calloc((size_t)top, 1);
	if (!in_table)
		restore_fail(p, "out-of-memory", NULL);
	for (int last = 0; last <= 1; last++)   /* epoll last: its targets exist then */
		for (int k = 0; k < p->nfds; k++) {
			const struct us_rec_fd *f = p->fds[k];
			const struct us_fd_ops *kind = us_fd_ops_of(f->kind);
			if (!last && (f->fd < 0 || f->fd >= fd_base))
				restore_fail(p, "descriptor-number-out-of-range", NULL);
			if (!kind)
				restore_fail(p, "cannot-make-descriptor", NULL);
			struct us_object *shared = restore_find_object(US_OBJ_OPEN_FILE, 0, restore_open_key(p, f));
			if (shared && !last)   /* one open file with other descriptors: made in PID 1 */
				place(p, f, dup(shared->fd));
			else if (!shared && kind->restore && kind->restore_last == last)
				place(p, f, kind->restore(p, f));
			else
				continue;   /* another pass, or not made here (the coordinator link) */
			in_table[f->fd] = 1;
			if (kind->placed)
				kind->placed(p, f);
		}
	for (int k = 0; k < nkeep; k++)
		in_table[keep[k]] = 1;
	for (int fd = 0; fd < top; fd++)
		if (!in_table[fd])
			close(fd);
	free(in_table);
}

static pid_t clone_with_pid(pid_t pid)
{
	pid_t tid = pid;
	struct clone_args a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&tid, .set_tid_size = 1 };
	return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

static void start(struct proc *p);

/* "TAG" followed by value: an argument of the restorer. */
static char *tagged(const struct proc *p, const char *tag, const char *value)
{
	char *arg = malloc(strlen(tag) + strlen(value) + 1);
	if (!arg)
		restore_fail(p, "out-of-memory", NULL);
	return strcat(strcpy(arg, tag), value);
}

static void become(struct proc *p)
{
	const struct us_rec_proc *r = p->rec;
	if (r->vsid == r->vpid)
		setsid();
	else if (r->vpgid == r->vpid)
		setpgid(0, 0);
	else if ((uint32_t)getpgid(0) != r->vpgid && setpgid(0, (pid_t)r->vpgid) < 0)
		init_log(cfg, "restore-warning pid=%u reason=cannot-join-process-group pgid=%u", r->vpid, r->vpgid);

	for (int i = 0; i < nprocs; i++)   /* children are made by their own parent */
		if (procs[i].rec->vppid == r->vpid && procs[i].rec != r)
			start(&procs[i]);

	const char *strs = (const char *)(r + 1);
	char cwd[4096];
	size_t n = r->cwd_len < sizeof cwd - 1 ? r->cwd_len : sizeof cwd - 1;
	memcpy(cwd, strs + r->exe_len, n);
	cwd[n] = 0;
	if (chdir(cwd) < 0)
		restore_fail(p, "cannot-enter-working-directory", cwd);
	umask(r->umask);
	if (p->misc)
		for (int res = 0; res < 16; res++) {
			struct rlimit rl;
			if (getrlimit(res, &rl) == 0 && p->misc->rlim_cur[res] <= rl.rlim_max) {
				rl.rlim_cur = p->misc->rlim_cur[res];
				setrlimit(res, &rl);
			}
		}

	/* shared memory objects the restorer maps, passed by descriptor, once each */
	char **argv = calloc((size_t)p->nshm_vmas + (size_t)p->nsysv_vmas + 2 * (size_t)p->nbases + 7, sizeof *argv);
	int *shm_fds = calloc((size_t)p->nshm_vmas + 1, sizeof *shm_fds);
	if (!argv || !shm_fds)
		restore_fail(p, "out-of-memory", NULL);
	int argc = 0, nshm_fds = 0;
	argv[argc++] = (char *)cfg->restorer;
	argv[argc++] = p->meta_path;
	argv[argc++] = p->pages_path;
	argv[argc++] = (char *)cfg->log;
	/* the process registers with the agent restoring it, whichever launched it,
	 * and writes its output and log lines into this node's files */
	argv[argc++] = tagged(p, "coord:", cfg->coord);
	argv[argc++] = tagged(p, "output:", cfg->output);
	for (int k = 0; k < 2 * p->nbases; k++)
		argv[argc++] = p->bases[k];
	for (int k = 0; k < p->nshm_vmas; k++) {
		const struct us_rec_vma *v = p->shm_vmas[k];
		int passed = 0;
		for (int j = 0; j < k && !passed; j++)
			passed = p->shm_vmas[j]->dev == v->dev && p->shm_vmas[j]->inode == v->inode;
		if (passed)
			continue;
		struct us_object *o = restore_find_object(US_OBJ_SHARED_MEMORY, v->dev, v->inode);
		char *arg = malloc(96);
		/* above every target number, so placing the table cannot clobber it */
		int fd = o && arg ? fcntl(o->fd, F_DUPFD, fd_base + nobjects * 2 + 8 + nshm_fds) : -1;
		if (fd < 0)
			restore_fail(p, "cannot-pass-shared-memory", NULL);
		shm_fds[nshm_fds++] = fd;
		snprintf(arg, 96, "shm:%llu:%llu:%d", (unsigned long long)v->dev, (unsigned long long)v->inode, fd);
		argv[argc++] = arg;
	}
	for (int k = 0; k < p->nsysv_vmas; k++) {
		if (!segment_removed(p->sysv_vmas[k]->inode))
			continue;
		char *arg = malloc(48);
		snprintf(arg, 48, "shm-removed:%llu", (unsigned long long)p->sysv_vmas[k]->inode);
		argv[argc++] = arg;
	}
	argv[argc] = NULL;
	setup_fds(p, shm_fds, nshm_fds);
	char *envp[] = { NULL };
	execve(cfg->restorer, argv, envp);
	restore_fail(p, "cannot-exec-restorer", cfg->restorer);
}

static void start(struct proc *p)
{
	pid_t pid = clone_with_pid((pid_t)p->rec->vpid);
	if (pid < 0) {
		init_log(cfg, "restore-failed pid=%u reason=pid-taken-or-clone3-failed errno=%d", p->rec->vpid, errno);
		_exit(126);
	}
	if (pid == 0)
		become(p);
}

/* ---- the restore plan ----
 * Written by the agent (docs/protocol.md, "Restore plan"): for each process, the
 * image restored and the images it applies to, newest first down to a full one,
 * as files of checkpoints beside the restored one. Checked whole here, before any
 * process is made. */

static const char *plan_error;

static int name_ok(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	if (n <= k || s[0] == '.' || strcmp(s + n - k, suffix))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static int id_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 19)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Reads a base image's header and checks the whole state description. */
static int read_header(const char *path, struct us_meta_header *h)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		plan_error = "an image of the chain cannot be opened";
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	int ok = buf && read(fd, buf, (size_t)st.st_size) == (ssize_t)st.st_size;
	close(fd);
	if (ok && (plan_error = us_image_check(buf, (uint64_t)st.st_size)))
		ok = 0;
	else if (!ok)
		plan_error = "an image of the chain cannot be read";
	if (ok)
		memcpy(h, buf, sizeof *h);
	free(buf);
	return ok ? 0 : -1;
}

/* One "image ID VPID META PAGES" line of process p, the i-th of its chain. */
static int plan_image(struct proc *p, int i, const char *dir, const char *restored, char *line, struct us_meta_header *h)
{
	char id[32], meta[256], pages[256], nl;
	unsigned vpid;
	if (sscanf(line, "image %31s %u %255s %255s%c", id, &vpid, meta, pages, &nl) != 5 || nl != '\n')
		return plan_error = "expected: image CHECKPOINT VPID META PAGES", -1;
	if (!id_ok(id) || !name_ok(meta, ".meta") || !name_ok(pages, ".pages"))
		return plan_error = "bad checkpoint id or image file name", -1;
	if (i == 0 && (strcmp(id, restored) || vpid != p->rec_vpid))
		return plan_error = "the first image of a process is not its image in the restored checkpoint", -1;
	char mp[4096], pp[4096];
	if (snprintf(mp, sizeof mp, "%s/%s/%s", dir, id, meta) >= (int)sizeof mp ||
	    snprintf(pp, sizeof pp, "%s/%s/%s", dir, id, pages) >= (int)sizeof pp)
		return plan_error = "image path too long", -1;
	struct us_meta_header prev = *h;
	if (i == 0) {
		strcpy(p->meta_path, mp);
		strcpy(p->pages_path, pp);
		if (load(p) < 0)
			return plan_error = NULL, -1;   /* load said why */
		memcpy(h, p->meta, sizeof *h);
	} else {
		if (read_header(mp, h) < 0)
			return -1;
		char *m = malloc(strlen(mp) + 11), *g = malloc(strlen(pp) + 12);
		if (!m || !g)
			return plan_error = "out of memory", -1;
		sprintf(m, "base-meta:%s", mp);
		sprintf(g, "base-pages:%s", pp);
		p->bases[2 * p->nbases] = m;
		p->bases[2 * p->nbases++ + 1] = g;
	}
	if (h->vpid != vpid || h->checkpoint_seq != strtoull(id, NULL, 10))
		return plan_error = "an image of the chain is not the one the plan names", -1;
	if (i > 0 && (prev.kind != US_IMAGE_INCREMENTAL || prev.base_seq != h->checkpoint_seq))
		return plan_error = "an image of the chain does not apply to the next one", -1;
	return 0;
}

/* "output-was PATH" (a percent-encoded token): the group's output log where the
 * checkpoint was taken. Only a path other than this node's is kept. */
static int plan_output_was(const struct init_config *c, const char *arg)
{
	static int seen;
	char was[4096];
	if (seen++ || us_next_token(&arg, was, sizeof was) <= 0 || strcmp(arg, "\n") || was[0] != '/')
		return plan_error = "expected once, before the processes: output-was PATH (absolute)", -1;
	if (strcmp(was, c->output) && !(output_was = strdup(was)))
		return plan_error = "out of memory", -1;
	return 0;
}

static int read_plan(const struct init_config *c)
{
	char dir[4096], line[4096];
	int n = snprintf(dir, sizeof dir, "%s", c->restore_dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = 0;
	char *slash = strrchr(dir, '/');
	FILE *f = fopen(c->plan, "re");
	int lineno = 1, ok = f && slash && slash != dir && fgets(line, sizeof line, f) &&
			     !strcmp(line, "understudy-restore-plan 1\n");
	if (!ok)
		plan_error = f ? "not a restore plan" : "cannot open the restore plan";
	if (slash)
		*slash = 0;
	const char *restored = slash ? slash + 1 : "";
	struct proc *p = NULL;
	struct us_meta_header h = { 0 };
	int images = 0, left = 0, cap = 0;
	while (ok && fgets(line, sizeof line, f)) {
		lineno++;
		if (left) {
			ok = plan_image(p, images - left, dir, restored, line, &h) == 0;
			left--;
			if (ok && !left && h.kind != US_IMAGE_FULL)
				ok = 0, plan_error = "the chain of images does not end in a full image";
			continue;
		}
		if (!nprocs && !strncmp(line, "output-was ", 11)) {
			ok = plan_output_was(c, line + 11) == 0;
			continue;
		}
		unsigned vpid;
		char nl;
		if (sscanf(line, "process %u %d%c", &vpid, &images, &nl) != 3 || nl != '\n' ||
		    images < 1 || images > US_CHAIN_MAX) {
			ok = 0, plan_error = "expected: process VPID IMAGES (1 to 256)";
			break;
		}
		for (int i = 0; i < nprocs; i++)
			if (procs[i].rec_vpid == vpid)
				ok = 0, plan_error = "a process is listed twice";
		if (ok && nprocs == cap) {
			cap = cap ? cap * 2 : 16;
			struct proc *more = realloc(procs, sizeof *procs * (size_t)cap);
			if (!more)
				ok = 0, plan_error = "out of memory";
			else
				procs = more;
		}
		if (!ok)
			break;
		p = &procs[nprocs++];
		memset(p, 0, sizeof *p);
		p->rec_vpid = vpid;
		left = images;
	}
	if (ok && left)
		ok = 0, plan_error = "the plan ends within a chain";
	if (ok && !nprocs)
		ok = 0, plan_error = "the plan lists no process";
	if (f)
		fclose(f);
	if (!ok && plan_error)
		init_log(c, "restore-failed reason=bad-restore-plan plan=%s line=%d detail=\"%s\"", c->plan, lineno, plan_error);
	return ok ? 0 : -1;
}

int restore_tree(const struct init_config *c)
{
	cfg = c;
	if (read_plan(c) < 0)
		return -1;
	if (output_was)
		init_log(c, "output-log-moved was=%s now=%s", output_was, c->output);
	int max_fd = 2;
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++)
			if (procs[i].fds[k]->fd > max_fd)
				max_fd = procs[i].fds[k]->fd;
	fd_base = max_fd + 64;
	objects = calloc((size_t)max_objects + 2, sizeof *objects);
	/* as many descriptors as the hard limit allows: the group's own limits come back per process */
	struct rlimit nofile, raised;
	int got_nofile = getrlimit(RLIMIT_NOFILE, &nofile) == 0;
	raised = nofile;
	raised.rlim_cur = raised.rlim_max;
	if (got_nofile)
		setrlimit(RLIMIT_NOFILE, &raised);
	char *buf = malloc(1 << 20);
	if (!objects) {
		init_log(c, "restore-failed reason=out-of-memory");
		return -1;
	}
	if (!buf || restore_files(buf) < 0 || make_ipc_objects() < 0)
		return -1;
	if (make_objects(buf) < 0) {
		init_log(c, "restore-failed reason=cannot-recreate-shared-objects errno=%d", errno);
		return -1;
	}
	free(buf);
	int started = 0;
	for (int i = 0; i < nprocs; i++) {
		uint32_t ppid = procs[i].rec->vppid;
		int parent_here = 0;
		for (int k = 0; k < nprocs; k++)
			parent_here |= procs[k].rec->vpid == ppid && k != i;
		if (!parent_here) {
			start(&procs[i]);
			started++;
		}
	}
	for (int i = 0; i < nobjects; i++) {
		close(objects[i].fd);
		if (objects[i].fd2 > 0)
			close(objects[i].fd2);
	}
	if (got_nofile)   /* what applications launched later inherit */
		setrlimit(RLIMIT_NOFILE, &nofile);
	init_log(c, "restored processes=%d top-level=%d", nprocs, started);
	return nprocs;
}
