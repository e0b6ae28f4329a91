/* Descriptors: an FD record for every open descriptor. This walks the table and
 * reads what every descriptor has (its link, stat, flags, a socket's domain and
 * type); the kind that recognizes it (src/descriptors/) records the rest. */
#include <fcntl.h>
#include <sys/socket.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"
#include "../descriptors/kinds.h"
#include "../../include/us_image.h"

static void capture_fd(struct scratch *s, int fd)
{
	char path[64];
	struct us_fd_capture c = { .s = s, .fd = fd, .rec = { .fd = fd } };

	if (us_read_link(fd_proc_path(path, sizeof path, "fd", fd), c.link, sizeof c.link) < 0 ||
	    us_sc2(SYS_fstat, fd, &c.st) < 0)
		return;   /* closed meanwhile by nobody (all frozen): cannot happen; skip */
	c.rec.fd_flags = (uint32_t)us_sc2(SYS_fcntl, fd, F_GETFD);
	c.rec.open_flags = (uint32_t)us_sc2(SYS_fcntl, fd, F_GETFL);
	c.rec.dev = c.st.st_dev;
	c.rec.inode = c.st.st_ino;
	c.rec.mode = c.st.st_mode;
	c.name = c.link;
	if (fd == us.uffd)
		return;   /* the tracker's own: made anew after a restore */
	if (S_ISSOCK(c.st.st_mode)) {
		unsigned int len = sizeof c.domain;
		us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &c.domain, &len);
		len = sizeof c.type;
		us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &c.type, &len);
	}

	const struct us_fd_ops *const *kind = us_fd_kinds;
	while (*kind && !(*kind)->detect(&c))
		kind++;
	if (!*kind) {
		capture_fail(s, S_ISSOCK(c.st.st_mode) ? "unsupported socket (Unix, TCP and UDP sockets only):"
						      : "unsupported descriptor:", c.link, 0);
		return;
	}
	c.rec.kind = (*kind)->kind;
	if ((*kind)->capture)
		(*kind)->capture(&c);

	c.rec.path_len = (uint32_t)us_strlen(c.name);
	c.rec.data_len = c.data_len;
	rec_begin(s, US_REC_FD);
	meta_add(s, &c.rec, sizeof c.rec);
	meta_add(s, c.name, c.rec.path_len);
	meta_add(s, s->data, c.data_len);
	rec_end(s);
}

void capture_fds(struct scratch *s, const int *fds, int n)
{
	for (const struct us_fd_ops *const *kind = us_fd_kinds; *kind; kind++)
		if ((*kind)->begin)
			(*kind)->begin(s);
	for (int i = 0; i < n && !s->failed; i++)
		capture_fd(s, fds[i]);
}
