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

/* Whether pid is one of our image writers: a clone child with no exit signal
 * (image_writer.c), from the clone on. It holds a copy of its process's
 * descriptors while it writes, and is no holder of them. */
static int is_image_writer(int pid)
{
	char path[64], text[1024];
	uint64_t f[64];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, "/proc/");
	us_putu(&b, (uint64_t)pid);
	us_put(&b, "/stat");
	if (us_read_file(us_term(&b), text, sizeof text) <= 0)
		return 1;   /* gone */
	us_stat_fields(text, f);
	return f[38] == 0;   /* exit_signal */
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
	int self = (int)us_sc0(SYS_getpid);
	if (is_image_writer(self)) {
		capture_fail(s, "a process of the group was made by clone without an exit signal:",
			     "its open files cannot be told from an image writer's", 0);
		return 0;
	}
	int n = 0;
	for (int i = 0; i < npids; i++) {
		if (is_image_writer(s->pids[i]))
			continue;
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
			char path[64];
			struct stat st;
			b = (struct us_buf){ path, 0, sizeof path };
			us_put(&b, "/proc/");
			us_putu(&b, (uint64_t)s->pids[i]);
			us_put(&b, "/fd/");
			us_putu(&b, (uint64_t)s->list[k]);
			if (us_sc2(SYS_stat, us_term(&b), &st) == 0)
				s->holders[n++] = (struct fd_holder){ s->pids[i], s->list[k], st.st_dev, st.st_ino };
		}
	}
	return s->nholders = n;
}

/* How an own file compares with the open file of pid's fd: by inode, then by
 * kcmp's order; 0 the same open file, 2 when kcmp cannot tell (gone meanwhile). */
static int own_order(const struct own_file *a, int pid, int fd, uint64_t dev, uint64_t ino)
{
	if (a->dev != dev || a->ino != ino)
		return a->dev != dev ? (a->dev < dev ? -1 : 1) : (a->ino < ino ? -1 : 1);
	long r = us_sc5(SYS_kcmp, us_sc0(SYS_getpid), pid, KCMP_FILE, a->fd, fd);
	return r == 0 ? 0 : r == 1 ? -1 : r == 2 ? 1 : 2;
}

static int by_open_file(const struct own_file *a, const struct own_file *b)
{
	int c = own_order(a, (int)us_sc0(SYS_getpid), b->fd, b->dev, b->ino);
	return c ? c : a->fd < b->fd ? -1 : a->fd > b->fd;
}

static int by_fd(const struct own_file *a, const struct own_file *b)
{
	return a->fd < b->fd ? -1 : a->fd > b->fd;
}

/* Bottom-up merge sort of n own files into s->own. */
static void sort_own(struct scratch *s, int n, int (*order)(const struct own_file *, const struct own_file *))
{
	struct own_file *a = s->own, *b = s->own_sorting;
	for (int width = 1; width < n; width *= 2) {
		for (int lo = 0; lo < n; lo += 2 * width) {
			int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
			int i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				b[k++] = order(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
			while (i < mid)
				b[k++] = a[i++];
			while (j < hi)
				b[k++] = a[j++];
		}
		struct own_file *t = a;
		a = b;
		b = t;
	}
	if (a != s->own)
		for (int i = 0; i < n; i++)
			s->own[i] = a[i];
}

/* The other processes capture at the same time, opening and closing descriptors
 * of their own (image files, /proc files, a second descriptor of a file or pipe
 * to read it through), so theirs may change while we look. Only our own
 * descriptors stay put: kcmp orders them, and every holder of the group is
 * looked up among them. A holder that is not the same open file as one of ours
 * counts for nothing, whatever it was meanwhile. Each own file gets the lowest
 * (pid, fd) of its holders and how many there are. */
static void match_own_files(struct scratch *s)
{
	int self = (int)us_sc0(SYS_getpid), n = s->nown = s->napp_fds;
	for (int i = 0; i < n; i++) {
		struct stat st;
		s->own[i] = (struct own_file){ s->app_fds[i], 0, 0, 0, 0 };
		if (us_sc2(SYS_fstat, s->own[i].fd, &st) == 0) {
			s->own[i].dev = st.st_dev;
			s->own[i].ino = st.st_ino;
		}
	}
	sort_own(s, n, by_open_file);
	for (int i = 0, nh = group_fds(s); i < nh; i++) {
		const struct fd_holder *h = &s->holders[i];
		int lo = 0, hi = n - 1, c = 1, mid = 0;
		while (lo <= hi && c) {
			mid = lo + (hi - lo) / 2;
			c = own_order(&s->own[mid], h->pid, h->fd, h->dev, h->ino);
			if (c == 2)
				break;
			if (c < 0)
				lo = mid + 1;
			else if (c > 0)
				hi = mid - 1;
		}
		if (c)
			continue;
		struct own_file *o = &s->own[mid];
		uint64_t key = US_OPEN_KEY(h->pid, h->fd);
		o->holders++;
		if (!o->key || key < o->key)
			o->key = key;
	}
	/* several of ours on one open file: each was found by some of its holders */
	for (int lo = 0, hi; lo < n; lo = hi) {
		int holders = s->own[lo].holders;
		uint64_t key = s->own[lo].key;
		for (hi = lo + 1; hi < n && own_order(&s->own[lo], self, s->own[hi].fd, s->own[hi].dev, s->own[hi].ino) == 0; hi++) {
			holders += s->own[hi].holders;
			if (s->own[hi].key && (!key || s->own[hi].key < key))
				key = s->own[hi].key;
		}
		for (int i = lo; i < hi; i++) {
			s->own[i].holders = holders;
			s->own[i].key = key;
		}
	}
	sort_own(s, n, by_fd);
}

/* The key of the open file behind fd (US_FD_AUX_OPEN_KEY): the lowest (pid, fd) of
 * the group that holds the same one, or 0 when fd is its only descriptor. */
static uint64_t open_file_key(struct scratch *s, int fd)
{
	if (s->nown < 0)
		match_own_files(s);
	for (int lo = 0, hi = s->nown - 1; lo <= hi;) {
		int mid = lo + (hi - lo) / 2;
		if (s->own[mid].fd == fd)
			return s->own[mid].holders > 1 ? s->own[mid].key : 0;
		if (s->own[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid - 1;
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
	s->app_fds = fds;
	s->napp_fds = n;
	for (const struct us_fd_ops *const *kind = us_fd_kinds; *kind; kind++)
		if ((*kind)->begin)
			(*kind)->begin(s);
	for (int i = 0; i < n && !s->failed; i++)
		capture_fd(s, fds[i]);
}
