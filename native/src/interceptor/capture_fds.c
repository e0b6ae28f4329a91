/* Descriptors: an FD record for every open descriptor. This walks the table and
 * reads what every descriptor has (its link, stat, flags, a socket's domain and
 * type); the kind that recognizes it (src/descriptors/) records the rest. */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/socket.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"
#include "../descriptors/kinds.h"
#include "../../include/us_image.h"

int group_fds(struct scratch *s)
{
	if (s->nholders >= 0)
		return s->nholders;
	/* the pids go at the end of the table, the pairs fill it from the start */
	int *pids = (int *)(s->holders + HOLDERS_MAX) - 4096;
	int npids = us_list_numbers("/proc", 0, pids, 4096);
	int n = 0;
	for (int i = 0; i < npids; i++) {
		char dir[64];
		struct us_buf b = { dir, 0, sizeof dir };
		us_put(&b, "/proc/");
		us_putu(&b, (uint64_t)pids[i]);
		us_put(&b, "/fd");
		int *fds = pids - 4096;
		int nfds = us_list_numbers(us_term(&b), 0, fds, 4096);
		for (int k = 0; k < nfds && (struct fd_holder *)&s->holders[n + 1] <= (struct fd_holder *)fds; k++)
			s->holders[n++] = (struct fd_holder){ pids[i], fds[k] };
	}
	return s->nholders = n;
}

/* The key of the open file behind fd (US_FD_AUX_OPEN_KEY): the lowest (pid, fd)
 * of the group that holds the same one, or 0 when fd is its only descriptor. */
static uint64_t open_file_key(struct scratch *s, int fd)
{
	int self = (int)us_sc0(SYS_getpid);
	uint64_t key = US_OPEN_KEY(self, fd);
	int shared = 0;
	for (int i = 0, n = group_fds(s); i < n; i++) {
		const struct fd_holder *h = &s->holders[i];
		if ((h->pid == self && h->fd == fd) ||
		    us_sc5(SYS_kcmp, self, h->pid, KCMP_FILE, fd, h->fd) != 0)
			continue;
		shared = 1;
		if (US_OPEN_KEY(h->pid, h->fd) < key)
			key = US_OPEN_KEY(h->pid, h->fd);
	}
	return shared ? key : 0;
}

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
		capture_fail(s, S_ISSOCK(c.st.st_mode) ? "unsupported socket (Unix stream, datagram and seqpacket, TCP and UDP only):"
						      : "unsupported descriptor:", c.link, 0);
		return;
	}
	c.rec.kind = (*kind)->kind;
	if ((*kind)->open_key)
		c.rec.aux[US_FD_AUX_OPEN_KEY] = open_file_key(s, fd);
	if ((*kind)->capture)
		(*kind)->capture(&c);

	c.rec.path_len = (uint32_t)us_strlen(c.name);
	c.rec.data_len = c.data_len;
	rec_begin(s, US_REC_FD);
	meta_add(s, &c.rec, sizeof c.rec);
	meta_add(s, c.name, c.rec.path_len);
	meta_add(s, c.data ? c.data : s->data, c.data_len);
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
