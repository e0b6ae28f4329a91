/* Rebuilding a checkpointed group inside a fresh PID namespace.
 *
 * Objects shared between processes (pipes, FIFOs, socket pairs, shared memory) are
 * made once here, in PID 1, so that every process inherits the same ones. Then
 * each process is created by its own parent with clone3(set_tid) so that pids,
 * parents, sessions and process groups are what they were. Each process puts its
 * descriptors in place, then execs us-restorer, which replaces its memory. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include "init.h"
#include "../common/us_crc32c.h"
#include "../common/us_lz4.h"
#include "../common/us_image_check.h"
#include "../../include/us_image.h"

struct proc {
	char meta_path[4096], pages_path[4096];
	char *meta;
	size_t meta_len;
	const struct us_rec_proc *rec;
	const struct us_rec_misc *misc;
	const struct us_rec_fd *fds[4096];
	int nfds;
	const struct us_rec_vma *shm_vmas[256];
	int nshm_vmas;
	const struct us_rec_file *files[256];
	int nfiles;
};

struct object { uint64_t dev, ino; int kind; int fd, fd2; };

static struct proc *procs;
static int nprocs;
static struct object objects[8192];
static int nobjects;
static int fd_base;
static const struct init_config *cfg;

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
	US_FOR_RECORDS(p->meta, p->meta_len, r) {
		const void *body = r + 1;
		if (r->type == US_REC_PROC)
			p->rec = body;
		else if (r->type == US_REC_MISC)
			p->misc = body;
		else if (r->type == US_REC_FILE && p->nfiles < 256)
			p->files[p->nfiles++] = body;
		else if (r->type == US_REC_FD && p->nfds < 4096)
			p->fds[p->nfds++] = body;
		else if (r->type == US_REC_VMA) {
			const struct us_rec_vma *v = body;
			if (v->kind == US_VMA_SHMEM && p->nshm_vmas < 256)
				p->shm_vmas[p->nshm_vmas++] = v;
		}
	}
	return p->rec ? 0 : -1;
}

static const char *fd_path(const struct us_rec_fd *f, char *out, size_t cap)
{
	size_t n = f->path_len < cap - 1 ? f->path_len : cap - 1;
	memcpy(out, f + 1, n);
	out[n] = 0;
	return out;
}

static const char *fd_data(const struct us_rec_fd *f) { return (const char *)(f + 1) + f->path_len; }

static struct object *find(int kind, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < nobjects; i++)
		if (objects[i].kind == kind && objects[i].ino == ino && objects[i].dev == dev)
			return &objects[i];
	return NULL;
}

static int high(int fd)
{
	if (fd < 0)
		return fd;
	int h = fcntl(fd, F_DUPFD, fd_base + nobjects * 2 + 2);
	close(fd);
	return h;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Parses "a.b.c.d:port" or "[v6]:port" and makes a socket bound there (listening for TCP). */
static int bind_inet(const char *name, int type)
{
	char host[128];
	const char *colon = strrchr(name, ':');
	if (!colon || colon - name >= (long)sizeof host)
		return errno = EINVAL, -1;
	int v6 = name[0] == '[';
	size_t n = (size_t)(colon - name) - (v6 ? 2 : 0);
	memcpy(host, name + (v6 ? 1 : 0), n);
	host[n] = 0;
	unsigned port = (unsigned)atoi(colon + 1);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if ((v6 ? inet_pton(AF_INET6, host, &a6.sin6_addr) : inet_pton(AF_INET, host, &a4.sin_addr)) != 1)
		return errno = EINVAL, -1;
	int s = socket(v6 ? AF_INET6 : AF_INET, type, 0), one = 1;
	if (s < 0)
		return -1;
	/* the old socket's connections may linger in TIME_WAIT */
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, v6 ? sizeof a6 : sizeof a4) < 0 ||
	    (type == SOCK_STREAM && listen(s, SOMAXCONN) < 0)) {
		int e = errno;
		close(s);
		return errno = e, -1;
	}
	return s;
}

/* The first record that holds data for an object is as good as any: every holder
 * peeked the same queue at the same frozen instant. */
static const struct us_rec_fd *data_for(int kind, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++) {
			const struct us_rec_fd *f = procs[i].fds[k];
			if ((int)f->kind == kind && f->inode == ino && f->dev == dev && f->data_len)
				return f;
		}
	return NULL;
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

static int make_objects(void)
{
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++) {
			const struct us_rec_fd *f = procs[i].fds[k];
			char path[4096];
			if (nobjects >= 8190)
				return -1;
			if (f->kind == US_FD_PIPE && !find(US_FD_PIPE, f->dev, f->inode)) {
				int p[2];
				if (pipe2(p, 0) < 0)
					return -1;
				const struct us_rec_fd *d = data_for(US_FD_PIPE, f->dev, f->inode);
				if (d) {
					fcntl(p[1], F_SETPIPE_SZ, d->data_len);
					if (write_all(p[1], fd_data(d), d->data_len) < 0)
						return -1;
				}
				objects[nobjects] = (struct object){ f->dev, f->inode, US_FD_PIPE, high(p[0]), 0 };
				objects[nobjects].fd2 = high(p[1]);
				nobjects++;
			} else if (f->kind == US_FD_FIFO && !find(US_FD_FIFO, f->dev, f->inode)) {
				/* O_RDWR never blocks on a FIFO and keeps it open while we set up */
				int h = open(fd_path(f, path, sizeof path), O_RDWR | O_NONBLOCK);
				if (h < 0) {
					init_log(cfg, "restore-failed reason=fifo-missing path=%s errno=%d", path, errno);
					return -1;
				}
				const struct us_rec_fd *d = data_for(US_FD_FIFO, f->dev, f->inode);
				if (d) {
					fcntl(h, F_SETPIPE_SZ, d->data_len);
					if (write_all(h, fd_data(d), d->data_len) < 0)
						return -1;
				}
				objects[nobjects++] = (struct object){ f->dev, f->inode, US_FD_FIFO, high(h), -1 };
			} else if ((f->kind == US_FD_UNIX_STREAM || f->kind == US_FD_UNIX_DGRAM) &&
				   !find((int)f->kind, f->dev, f->inode)) {
				int type = f->kind == US_FD_UNIX_STREAM ? SOCK_STREAM : SOCK_DGRAM;
				if (f->aux[1]) {   /* listening: bind its name again */
					int s = socket(AF_UNIX, type, 0);
					struct sockaddr_un sa = { .sun_family = AF_UNIX };
					if (f->path_len >= sizeof sa.sun_path) {
						init_log(cfg, "restore-failed reason=socket-path-too-long");
						return -1;
					}
					memcpy(sa.sun_path, fd_path(f, path, sizeof path), f->path_len);
					struct stat st;
					if (!stat(sa.sun_path, &st) && S_ISSOCK(st.st_mode))
						unlink(sa.sun_path);
					if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 128) < 0) {
						init_log(cfg, "restore-failed reason=cannot-listen path=%s errno=%d", sa.sun_path, errno);
						return -1;
					}
					objects[nobjects++] = (struct object){ f->dev, f->inode, (int)f->kind, high(s), -1 };
					continue;
				}
				int sv[2];
				if (socketpair(AF_UNIX, type, 0, sv) < 0)
					return -1;
				/* data queued for reading at one end was sent from the other */
				const struct us_rec_fd *mine = data_for((int)f->kind, f->dev, f->inode);
				if (mine && write_all(sv[1], fd_data(mine), mine->data_len) < 0)
					return -1;
				uint64_t peer = f->aux[0];
				int peer_known = 0;
				for (int a = 0; a < nprocs && !peer_known; a++)
					for (int b = 0; b < procs[a].nfds; b++)
						if (procs[a].fds[b]->inode == peer && procs[a].fds[b]->kind == f->kind)
							peer_known = 1;
				if (peer && peer_known) {
					const struct us_rec_fd *theirs = data_for((int)f->kind, f->dev, peer);
					if (theirs && write_all(sv[0], fd_data(theirs), theirs->data_len) < 0)
						return -1;
				}
				objects[nobjects++] = (struct object){ f->dev, f->inode, (int)f->kind, high(sv[0]), -1 };
				if (peer && peer_known)
					objects[nobjects++] = (struct object){ f->dev, peer, (int)f->kind, high(sv[1]), -1 };
				else
					close(sv[1]);   /* peer outside the group: it reads as closed */
			}
		}
	/* listening TCP and bound UDP sockets: bound again at their addresses */
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++) {
			const struct us_rec_fd *f = procs[i].fds[k];
			int tcp_listen = f->kind == US_FD_TCP && f->aux[1];
			if ((!tcp_listen && f->kind != US_FD_UDP) || find((int)f->kind, f->dev, f->inode))
				continue;
			if (nobjects >= 8190)
				return -1;
			char name[256];
			int s = bind_inet(fd_path(f, name, sizeof name), f->kind == US_FD_TCP ? SOCK_STREAM : SOCK_DGRAM);
			if (s < 0) {
				init_log(cfg, "restore-failed reason=cannot-bind address=%s errno=%d", name, errno);
				return -1;
			}
			objects[nobjects++] = (struct object){ f->dev, f->inode, (int)f->kind, high(s), -1 };
		}
	/* shared memory objects: one memfd each, filled from the pages of any sharer */
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nshm_vmas; k++) {
			const struct us_rec_vma *v = procs[i].shm_vmas[k];
			struct object *o = find(-1, v->dev, v->inode);
			if (!o) {
				int m = memfd_create("understudy-shm", 0);
				if (m < 0)
					return -1;
				objects[nobjects] = (struct object){ v->dev, v->inode, -1, high(m), -1 };
				o = &objects[nobjects++];
			}
			struct stat st;
			uint64_t need = v->file_offset + (v->end - v->start);
			if (fstat(o->fd, &st) == 0 && (uint64_t)st.st_size < need && ftruncate(o->fd, (off_t)need) < 0)
				return -1;
			int pages = open(procs[i].pages_path, O_RDONLY | O_CLOEXEC);
			if (pages < 0)
				return -1;
			const struct us_page_run *run = (const void *)(v + 1);
			char *buf = malloc(1 << 20), *block = malloc(US_LZ4_BOUND(US_LZ4_RUN_PAGES * US_PAGE_SIZE));
			int ok = buf && block;
			for (uint32_t r = 0; r < v->nruns && ok; r++)
				ok = fill_shared_run(&run[r], pages, o->fd, run[r].addr - v->start + v->file_offset, buf, block);
			free(buf);
			free(block);
			close(pages);
			if (!ok)
				return -1;
		}
	return 0;
}

/* Storage checkpointing: files the group had open for writing get back the contents
 * and length they had at the checkpoint, before any process runs. */
static int restore_files(void)
{
	char *buf = malloc(1 << 20);
	if (!buf)
		return -1;
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfiles; k++) {
			const struct us_rec_file *f = procs[i].files[k];
			int done = 0;
			for (int a = 0; a < i && !done; a++)
				for (int b = 0; b < procs[a].nfiles && !done; b++)
					done = procs[a].files[b]->dev == f->dev && procs[a].files[b]->inode == f->inode;
			if (done)
				continue;
			char path[4096];
			size_t n = f->path_len < sizeof path - 1 ? f->path_len : sizeof path - 1;
			memcpy(path, f + 1, n);
			path[n] = 0;
			int pages = open(procs[i].pages_path, O_RDONLY | O_CLOEXEC);
			int out = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			uint32_t crc = 0;
			for (uint64_t off = 0; pages >= 0 && out >= 0 && off < f->size;) {
				size_t want = f->size - off > (1u << 20) ? (1u << 20) : (size_t)(f->size - off);
				if (pread(pages, buf, want, (off_t)(f->pages_off + off)) != (ssize_t)want ||
				    pwrite(out, buf, want, (off_t)off) != (ssize_t)want)
					break;
				crc = us_crc32c(crc, buf, want);
				off += want;
			}
			int ok = pages >= 0 && out >= 0 && crc == f->crc && ftruncate(out, (off_t)f->size) == 0 && fsync(out) == 0;
			if (pages >= 0)
				close(pages);
			if (out >= 0)
				close(out);
			if (!ok) {
				init_log(cfg, "restore-failed reason=cannot-restore-file path=%s errno=%d", path, errno);
				free(buf);
				return -1;
			}
			init_log(cfg, "file-restored path=%s bytes=%llu", path, (unsigned long long)f->size);
		}
	free(buf);
	return 0;
}

/* ---- one process ---- */

static __attribute__((noreturn)) void fail_proc(const struct proc *p, const char *what, const char *detail)
{
	init_log(cfg, "restore-failed pid=%u reason=%s detail=%s errno=%d", p->rec->vpid, what, detail ? detail : "-", errno);
	_exit(126);
}

static int make_fd(const struct proc *p, const struct us_rec_fd *f)
{
	char path[4096];
	int flags = (int)(f->open_flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY));
	struct object *o;
	int fd = -1;

	switch (f->kind) {
	case US_FD_FILE:
		/* a memfd or deleted file: the same object as a shared mapping of it */
		if ((o = find(-1, f->dev, f->inode))) {
			snprintf(path, sizeof path, "/proc/self/fd/%d", o->fd);
			if ((fd = open(path, flags)) < 0 || lseek(fd, (off_t)f->pos, SEEK_SET) < 0)
				fail_proc(p, "cannot-reopen-shared-memory", NULL);
			return fd;
		}
		/* fall through */
	case US_FD_DIR:
	case US_FD_CHR:
		fd = open(fd_path(f, path, sizeof path), flags);
		if (fd < 0)
			fail_proc(p, "cannot-open-file", path);
		if (f->kind != US_FD_CHR && lseek(fd, (off_t)f->pos, SEEK_SET) < 0 && f->pos)
			fail_proc(p, "cannot-seek", path);
		return fd;
	case US_FD_PIPE:
		if (!(o = find(US_FD_PIPE, f->dev, f->inode)))
			fail_proc(p, "pipe-missing", NULL);
		fd = dup(f->aux[0] ? o->fd : o->fd2);
		break;
	case US_FD_FIFO:
		if (!(o = find(US_FD_FIFO, f->dev, f->inode)))
			fail_proc(p, "fifo-missing", NULL);
		snprintf(path, sizeof path, "/proc/self/fd/%d", o->fd);
		fd = open(path, flags);
		break;
	case US_FD_UNIX_STREAM:
	case US_FD_UNIX_DGRAM:
		if (!(o = find((int)f->kind, f->dev, f->inode)))
			fail_proc(p, "socket-missing", NULL);
		fd = dup(o->fd);
		break;
	case US_FD_TCP:
	case US_FD_UDP:
		if (f->kind == US_FD_TCP && !f->aux[1]) {
			/* a connection cannot follow the process yet: it comes back dropped,
			 * as if the peer had gone (reads end, writes fail with EPIPE) */
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
				fail_proc(p, "cannot-make-dropped-connection", NULL);
			close(sv[1]);
			fd = sv[0];
			break;
		}
		if (!(o = find((int)f->kind, f->dev, f->inode)))
			fail_proc(p, "socket-missing", NULL);
		fd = dup(o->fd);
		break;
	case US_FD_EVENTFD:
		fd = eventfd((unsigned)f->aux[0], (f->aux[1] ? EFD_SEMAPHORE : 0) | (flags & O_NONBLOCK ? EFD_NONBLOCK : 0));
		return fd;
	case US_FD_TIMERFD: {
		fd = timerfd_create((int)f->aux[0], flags & O_NONBLOCK ? TFD_NONBLOCK : 0);
		struct itimerspec its = {
			{ (time_t)(f->aux[1] / 1000000000), (long)(f->aux[1] % 1000000000) },
			{ (time_t)(f->aux[2] / 1000000000), (long)(f->aux[2] % 1000000000) },
		};
		if (fd >= 0 && f->aux[2])
			timerfd_settime(fd, 0, &its, NULL);
		return fd;
	}
	case US_FD_SIGNALFD: {
		sigset_t set;
		sigemptyset(&set);
		for (int s = 1; s <= 64; s++)
			if (f->aux[0] & (1ull << (s - 1)))
				sigaddset(&set, s);
		return signalfd(-1, &set, flags & O_NONBLOCK ? SFD_NONBLOCK : 0);
	}
	default:
		return -1;
	}
	if (fd >= 0)
		fcntl(fd, F_SETFL, flags);
	return fd;
}

static void place(const struct proc *p, const struct us_rec_fd *f, int fd)
{
	if (fd < 0)
		fail_proc(p, "cannot-make-descriptor", NULL);
	if (fd != f->fd) {
		if (dup2(fd, f->fd) < 0)
			fail_proc(p, "cannot-place-descriptor", NULL);
		close(fd);
	}
}

static void setup_fds(const struct proc *p, const int *keep, int nkeep)
{
	char in_table[65536] = { 0 };
	for (int k = 0; k < p->nfds; k++) {
		const struct us_rec_fd *f = p->fds[k];
		if (f->fd < 0 || f->fd >= fd_base)
			fail_proc(p, "descriptor-number-out-of-range", NULL);
		if (f->kind == US_FD_COORDINATOR || f->kind == US_FD_EPOLL)
			continue;
		place(p, f, make_fd(p, f));
		in_table[f->fd] = 1;
	}
	for (int k = 0; k < p->nfds; k++) {   /* epoll last: its targets exist now */
		const struct us_rec_fd *f = p->fds[k];
		if (f->kind != US_FD_EPOLL)
			continue;
		int ep = epoll_create1(0);
		const struct us_epoll_target *t = (const void *)fd_data(f);
		for (uint32_t i = 0; i < f->data_len / sizeof *t; i++) {
			struct epoll_event ev = { .events = t[i].events, .data.u64 = t[i].data };
			if (epoll_ctl(ep, EPOLL_CTL_ADD, t[i].fd, &ev) < 0)
				fail_proc(p, "cannot-restore-epoll-target", NULL);
		}
		place(p, f, ep);
		in_table[f->fd] = 1;
	}
	for (int k = 0; k < nkeep; k++)
		in_table[keep[k]] = 1;
	int top = fd_base + nobjects * 2 + 300;
	for (int fd = 0; fd < top && fd < 65536; fd++)
		if (!in_table[fd])
			close(fd);
}

static pid_t clone_with_pid(pid_t pid)
{
	pid_t tid = pid;
	struct clone_args a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&tid, .set_tid_size = 1 };
	return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

static void start(struct proc *p);

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
		fail_proc(p, "cannot-enter-working-directory", cwd);
	umask(r->umask);
	if (p->misc)
		for (int res = 0; res < 16; res++) {
			struct rlimit rl;
			if (getrlimit(res, &rl) == 0 && p->misc->rlim_cur[res] <= rl.rlim_max) {
				rl.rlim_cur = p->misc->rlim_cur[res];
				setrlimit(res, &rl);
			}
		}

	/* shared memory objects the restorer maps, passed by descriptor */
	char *argv[300];
	int argc = 0;
	argv[argc++] = (char *)cfg->restorer;
	argv[argc++] = p->meta_path;
	argv[argc++] = p->pages_path;
	argv[argc++] = (char *)cfg->log;
	int shm_fds[256], nshm_fds = 0;
	for (int k = 0; k < p->nshm_vmas && argc < 298; k++) {
		const struct us_rec_vma *v = p->shm_vmas[k];
		struct object *o = find(-1, v->dev, v->inode);
		char *arg = malloc(96);
		/* above every target number, so placing the table cannot clobber it */
		int fd = fcntl(o->fd, F_DUPFD, fd_base + nobjects * 2 + 8 + k);
		if (fd < 0)
			fail_proc(p, "cannot-pass-shared-memory", NULL);
		shm_fds[nshm_fds++] = fd;
		snprintf(arg, 96, "shm:%llu:%llu:%d", (unsigned long long)v->dev, (unsigned long long)v->inode, fd);
		argv[argc++] = arg;
	}
	argv[argc] = NULL;
	setup_fds(p, shm_fds, nshm_fds);
	char *envp[] = { NULL };
	execve(cfg->restorer, argv, envp);
	fail_proc(p, "cannot-exec-restorer", cfg->restorer);
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

int restore_tree(const struct init_config *c)
{
	cfg = c;
	DIR *d = opendir(c->restore_dir);
	if (!d) {
		init_log(c, "restore-failed reason=cannot-open-checkpoint dir=%s errno=%d", c->restore_dir, errno);
		return -1;
	}
	struct dirent *e;
	int cap = 0;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n < 6 || strcmp(e->d_name + n - 5, ".meta"))
			continue;
		if (nprocs == cap) {
			cap = cap ? cap * 2 : 16;
			procs = realloc(procs, sizeof *procs * (size_t)cap);
		}
		struct proc *p = &procs[nprocs];
		memset(p, 0, sizeof *p);
		snprintf(p->meta_path, sizeof p->meta_path, "%s/%s", c->restore_dir, e->d_name);
		snprintf(p->pages_path, sizeof p->pages_path, "%s/%.*s.pages", c->restore_dir, (int)(n - 5), e->d_name);
		if (load(p) < 0) {
			closedir(d);
			return -1;
		}
		nprocs++;
	}
	closedir(d);
	if (!nprocs) {
		init_log(c, "restore-failed reason=no-process-images dir=%s", c->restore_dir);
		return -1;
	}
	int max_fd = 2;
	for (int i = 0; i < nprocs; i++)
		for (int k = 0; k < procs[i].nfds; k++)
			if (procs[i].fds[k]->fd > max_fd)
				max_fd = procs[i].fds[k]->fd;
	fd_base = max_fd + 64;
	if (restore_files() < 0)
		return -1;
	if (make_objects() < 0) {
		init_log(c, "restore-failed reason=cannot-recreate-shared-objects errno=%d", errno);
		return -1;
	}
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
	init_log(c, "restored processes=%d top-level=%d", nprocs, started);
	return nprocs;
}
