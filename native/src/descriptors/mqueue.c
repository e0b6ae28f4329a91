/* POSIX message queue descriptors (mq_open). The queue itself, its attributes and
 * messages, belongs to the group's IPC namespace: it is captured with the other
 * IPC objects (src/interceptor/capture_ipc.c) and made again by us-init first
 * (src/init/restore_ipc.c). A descriptor is its name, "/name", opened again with
 * its access mode and O_NONBLOCK. */
#include <stddef.h>
#include "kinds.h"

#define MQUEUE_MAGIC 0x19800202         /* the mqueue file system's f_type (kernel ABI) */

#ifdef US_FD_CAPTURE
#include <sys/statfs.h>

int us_fd_is_mqueue(int fd)
{
	struct statfs fs;
	return us_sc2(SYS_fstatfs, fd, &fs) == 0 && fs.f_type == MQUEUE_MAGIC;
}

static int is_mqueue(const struct us_fd_capture *c)
{
	return S_ISREG(c->st.st_mode) && us_fd_is_mqueue(c->fd);
}
#endif

#ifdef US_FD_RESTORE
#include <fcntl.h>
#include <mqueue.h>

static int restore_mqueue(const struct proc *p, const struct us_rec_fd *f)
{
	char name[4096];
	int fd = mq_open(us_fd_path(f, name, sizeof name), (int)f->open_flags & (O_ACCMODE | O_NONBLOCK));
	if (fd < 0)
		restore_fail(p, "cannot-open-message-queue", name);
	return fd;
}
#endif

const struct us_fd_ops us_fd_mqueue = {
	.kind = US_FD_MQUEUE,
	.detect = US_CAPTURE(is_mqueue),
	.restore = US_RESTORE(restore_mqueue),
};
