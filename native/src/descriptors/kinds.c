/* The table of descriptor kinds, and the coordinator link's entry. */
#include <stddef.h>
#include "kinds.h"

/* The interceptor's own link to the coordinator: recorded so that its number
 * stays taken, and made anew by the restored interceptor, not by us-init. */
#ifdef US_FD_CAPTURE
static int is_coordinator(const struct us_fd_capture *c)
{
	return c->fd == us.coord_fd;
}

static void capture_coordinator(struct us_fd_capture *c)
{
	c->name = "";
}
#endif

static const struct us_fd_ops coordinator = {
	.kind = US_FD_COORDINATOR,
	.detect = US_CAPTURE(is_coordinator),
	.capture = US_CAPTURE(capture_coordinator),
};

extern const struct us_fd_ops us_fd_file, us_fd_memfd, us_fd_dir, us_fd_chr;   /* files.c */
extern const struct us_fd_ops us_fd_pty_master, us_fd_pty_slave;              /* ptys.c */
extern const struct us_fd_ops us_fd_pipe, us_fd_fifo;                          /* pipes.c */
extern const struct us_fd_ops us_fd_tcp, us_fd_udp;                            /* sockets.c */
extern const struct us_fd_ops us_fd_unix_stream, us_fd_unix_dgram, us_fd_unix_seqpacket;
extern const struct us_fd_ops us_fd_eventfd, us_fd_timerfd, us_fd_signalfd, us_fd_epoll;  /* events.c */
extern const struct us_fd_ops us_fd_mqueue;                                    /* mqueue.c */

/* The coordinator link is a Unix socket: it goes before the socket kinds. A
 * message queue is a regular file of its own file system: before files. */
const struct us_fd_ops *const us_fd_kinds[] = {
	&coordinator,
	&us_fd_eventfd, &us_fd_timerfd, &us_fd_signalfd, &us_fd_epoll,
	&us_fd_memfd, &us_fd_mqueue, &us_fd_file, &us_fd_dir, &us_fd_pty_master, &us_fd_pty_slave, &us_fd_chr,
	&us_fd_pipe, &us_fd_fifo,
	&us_fd_tcp, &us_fd_udp, &us_fd_unix_stream, &us_fd_unix_dgram, &us_fd_unix_seqpacket,
	NULL,
};

const struct us_fd_ops *us_fd_ops_of(uint32_t kind)
{
	for (const struct us_fd_ops *const *k = us_fd_kinds; *k; k++)
		if ((*k)->kind == kind)
			return *k;
	return NULL;
}

#ifdef US_FD_RESTORE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *us_fd_path(const struct us_rec_fd *f, char *out, size_t cap)
{
	size_t n = f->path_len < cap - 1 ? f->path_len : cap - 1;
	memcpy(out, f + 1, n);
	out[n] = 0;
	return out;
}

const char *us_fd_data(const struct us_rec_fd *f)
{
	return (const char *)(f + 1) + f->path_len;
}

int restore_open_flags(const struct us_rec_fd *f)
{
	return (int)(f->open_flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY));
}

int restore_status_flags(int fd, const struct us_rec_fd *f)
{
	if (fd >= 0)
		fcntl(fd, F_SETFL, restore_open_flags(f));
	return fd;
}

int restore_queue(int fd, const struct us_rec_fd *f)
{
	const char *p = us_fd_data(f);
	for (size_t n = f->data_len; n;) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
#endif
