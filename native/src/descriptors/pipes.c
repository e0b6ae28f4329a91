/* Pipes and FIFOs. The bytes queued in one are copied, not consumed, when it is
 * captured; us-init makes each pipe once, or opens each FIFO once, refills it,
 * and every process that held it gets its end. */
#include <stddef.h>
#include "kinds.h"

#ifdef US_FD_CAPTURE
#include <fcntl.h>
#include <sys/ioctl.h>
#include "../common/us_fmt.h"

static int is_pipe(const struct us_fd_capture *c)
{
	return S_ISFIFO(c->st.st_mode) && us_startswith(c->link, "pipe:");
}

static int is_fifo(const struct us_fd_capture *c)
{
	return S_ISFIFO(c->st.st_mode) && !us_startswith(c->link, "pipe:");
}

/* Copies what is queued with tee, which leaves it in the pipe for the application:
 * from the descriptor itself when it is a read end, else from a second read end.
 * A process that runs as another user than the pipe's owner (it dropped its
 * privileges, or was restored, which makes pipes as root) may not open one: the
 * read end's holder then copies the queue (a restore takes it from any holder). */
static uint32_t peek_pipe(struct scratch *s, int fd, uint32_t open_flags)
{
	char path[64];
	int own = (open_flags & O_ACCMODE) != O_WRONLY;
	int rd = own ? fd : (int)us_sc4(SYS_openat, AT_FDCWD, fd_proc_path(path, sizeof path, "fd", fd),
					O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (rd < 0)
		return 0;
	int queued = 0;
	us_sc3(SYS_ioctl, rd, FIONREAD, &queued);
	uint32_t got = 0;
	if (queued > 0) {
		int tmp[2];
		if (us_sc2(SYS_pipe2, tmp, O_CLOEXEC | O_NONBLOCK) == 0) {
			us_sc3(SYS_fcntl, tmp[1], F_SETPIPE_SZ, queued);
			long t = us_sc4(SYS_tee, rd, tmp[1], (unsigned long)queued, 2 /* SPLICE_F_NONBLOCK */);
			if (t > 0) {
				long r = us_sc3(SYS_read, tmp[0], s->data, (unsigned long)t);
				got = r > 0 ? (uint32_t)r : 0;
			}
			us_sc1(SYS_close, tmp[0]);
			us_sc1(SYS_close, tmp[1]);
		}
		if (got < (uint32_t)queued)
			capture_fail(s, "cannot copy the data queued in a pipe", NULL, 0);
	}
	if (!own)
		us_sc1(SYS_close, rd);
	return got;
}

static void capture_fifo(struct us_fd_capture *c)
{
	c->rec.aux[0] = (c->rec.open_flags & O_ACCMODE) != O_WRONLY;   /* a read end */
	c->data_len = peek_pipe(c->s, c->fd, c->rec.open_flags);
}

static void capture_pipe(struct us_fd_capture *c)
{
	c->name = "";           /* "pipe:[inode]" names nothing to open */
	capture_fifo(c);
}
#endif

#ifdef US_FD_RESTORE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int refill(int fd, const struct us_rec_fd *f)
{
	const struct us_rec_fd *d = restore_queued_data((int)f->kind, f->dev, f->inode);
	if (!d)
		return 0;
	fcntl(fd, F_SETPIPE_SZ, d->data_len);
	return restore_queue(fd, d);
}

static int share_pipe(const struct us_rec_fd *f)
{
	if (restore_find_object(US_FD_PIPE, f->dev, f->inode))
		return 0;
	int p[2];
	if (pipe2(p, 0) < 0 || refill(p[1], f) < 0)
		return -1;
	restore_add_object(US_FD_PIPE, f->dev, f->inode, p[0], p[1]);
	return 0;
}

static int share_fifo(const struct us_rec_fd *f)
{
	if (restore_find_object(US_FD_FIFO, f->dev, f->inode))
		return 0;
	/* O_RDWR never blocks on a FIFO and keeps it open while we set up */
	char path[4096];
	int h = open(us_fd_path(f, path, sizeof path), O_RDWR | O_NONBLOCK);
	if (h < 0) {
		restore_log("restore-failed reason=fifo-missing path=%s errno=%d", path, errno);
		return -1;
	}
	if (refill(h, f) < 0)
		return -1;
	restore_add_object(US_FD_FIFO, f->dev, f->inode, h, -1);
	return 0;
}

static int restore_pipe(const struct proc *p, const struct us_rec_fd *f)
{
	struct us_object *o = restore_find_object(US_FD_PIPE, f->dev, f->inode);
	if (!o)
		restore_fail(p, "pipe-missing", NULL);
	return restore_status_flags(dup(f->aux[0] ? o->fd : o->fd2), f);
}

static int restore_fifo(const struct proc *p, const struct us_rec_fd *f)
{
	struct us_object *o = restore_find_object(US_FD_FIFO, f->dev, f->inode);
	if (!o)
		restore_fail(p, "fifo-missing", NULL);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", o->fd);
	return restore_status_flags(open(path, restore_open_flags(f)), f);
}
#endif

const struct us_fd_ops us_fd_pipe = {
	.kind = US_FD_PIPE,
	.detect = US_CAPTURE(is_pipe),
	.capture = US_CAPTURE(capture_pipe),
	.share = US_RESTORE(share_pipe),
	.restore = US_RESTORE(restore_pipe),
};

const struct us_fd_ops us_fd_fifo = {
	.kind = US_FD_FIFO,
	.detect = US_CAPTURE(is_fifo),
	.capture = US_CAPTURE(capture_fifo),
	.share = US_RESTORE(share_fifo),
	.restore = US_RESTORE(restore_fifo),
};
