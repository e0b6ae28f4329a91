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

/* kcmp's order of two descriptors' open files: 0 the same, <0, >0. */
static int file_order(const struct fd_holder *a, const struct fd_holder *b)
{
	long r = us_sc5(SYS_kcmp, a->pid, b->pid, KCMP_FILE, a->fd, b->fd);
	return r == 0 ? 0 : r == 1 ? -1 : 1;
}

/* Bottom-up merge sort of the holders by open file: n log n kcmp calls. */
static struct fd_holder *sort_holders(struct fd_holder *a, struct fd_holder *b, int n)
{
	for (int width = 1; width < n; width *= 2) {
		for (int lo = 0; lo < n; lo += 2 * width) {
			int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
			int i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				b[k++] = file_order(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
			while (i < mid)
				b[k++] = a[i++];
			while (j < hi)
				b[k++] = a[j++];
		}
		struct fd_holder *t = a;
		a = b;
		b = t;
	}
	return a;
}

int group_fds(struct scratch *s)
{
	if (s->nholders >= 0)
		return s->nholders;
	s->nholders = 0;
	int npids = us_list_numbers("/proc", 0, s->pids, PIDS_MAX);
	if (npids > PIDS_MAX) {
		capture_fail(s, "more than 65536 processes in the group", NULL, 0);
		return 0;
	}
	int n = 0;
	for (int i = 0; i < npids; i++) {
		char dir[64];
		struct us_buf b = { dir, 0, sizeof dir };
		us_put(&b, "/proc/");
		us_putu(&b, (uint64_t)s->pids[i]);
		us_put(&b, "/fd");
		int nfds = us_list_numbers(us_term(&b), 0, s->list, FDS_MAX);
		if (nfds > FDS_MAX || n + nfds > HOLDERS_MAX) {
			capture_fail(s, "more than 2097152 descriptors open in the group", NULL, 0);
			return 0;
		}
		for (int k = 0; k < nfds; k++) {
			struct fd_holder h = { s->pids[i], s->list[k], 0 };
			if (us_sc5(SYS_kcmp, h.pid, h.pid, KCMP_FILE, h.fd, h.fd) == 0)   /* one kcmp may look at */
				s->holders[n++] = h;
		}
	}
	struct fd_holder *sorted = sort_holders(s->holders, s->sorting, n);
	if (sorted != s->holders)
		for (int i = 0; i < n; i++)
			s->holders[i] = sorted[i];
	/* each run of one open file: the lowest (pid, fd) of it, when there are several */
	for (int lo = 0, hi; lo < n; lo = hi) {
		uint64_t key = US_OPEN_KEY(s->holders[lo].pid, s->holders[lo].fd);
		for (hi = lo + 1; hi < n && file_order(&s->holders[lo], &s->holders[hi]) == 0; hi++)
			if (US_OPEN_KEY(s->holders[hi].pid, s->holders[hi].fd) < key)
				key = US_OPEN_KEY(s->holders[hi].pid, s->holders[hi].fd);
		for (int i = lo; i < hi; i++)
			s->holders[i].key = hi - lo > 1 ? key : 0;
	}
	return s->nholders = n;
}

/* The key of the open file behind fd (US_FD_AUX_OPEN_KEY): the lowest (pid, fd) of
 * the group that holds the same one, or 0 when fd is its only descriptor. */
static uint64_t open_file_key(struct scratch *s, int fd)
{
	struct fd_holder self = { (int)us_sc0(SYS_getpid), fd, 0 };
	for (int lo = 0, hi = group_fds(s) - 1; lo <= hi;) {
		int mid = lo + (hi - lo) / 2, c = file_order(&self, &s->holders[mid]);
		if (c == 0)
			return s->holders[mid].key;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return 0;
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
