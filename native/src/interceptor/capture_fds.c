/* Descriptors: an FD record for every open descriptor, with what its kind needs
 * to make it again: the data queued in pipes and sockets (copied, not consumed),
 * Unix socket peers, bound addresses, eventfd, timerfd, signalfd and epoll state. */
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

struct unix_peer { uint64_t ino, peer; uint32_t listening; };
static struct unix_peer *peers;
static int npeers;

/* Asks sock_diag for every Unix socket's peer and state. */
static void load_unix_peers(struct scratch *s, char *buf, size_t cap)
{
	npeers = 0;
	peers = (struct unix_peer *)s->peers;
	int nl = (int)us_sc3(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return;
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req req;
	} q = {
		.nh = { sizeof q, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_PEER },
	};
	if (us_sc6(SYS_sendto, nl, (long)&q, sizeof q, 0, 0, 0) < 0)
		goto out;
	for (;;) {
		long n = us_sc6(SYS_recvfrom, nl, (long)buf, (long)cap, 0, 0, 0);
		if (n <= 0)
			goto out;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (unsigned long)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
				goto out;
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct unix_peer p = { m->udiag_ino, 0, m->udiag_state == 10 /* TCP_LISTEN */ };
			int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
			for (struct rtattr *a = (void *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == UNIX_DIAG_PEER)
					p.peer = *(uint32_t *)RTA_DATA(a);
			if (npeers < 65536)
				peers[npeers++] = p;
		}
	}
out:
	us_sc1(SYS_close, nl);
}

static const struct unix_peer *find_peer(uint64_t ino)
{
	for (int i = 0; i < npeers; i++)
		if (peers[i].ino == ino)
			return &peers[i];
	return NULL;
}

/* "a.b.c.d:port" or "[x:x:x:x:x:x:x:x]:port": the local address, for binding again. */
static void format_inet_name(int fd, char *out, size_t cap)
{
	unsigned char sa[128] = { 0 };
	unsigned int salen = sizeof sa;
	struct us_buf b = { out, 0, cap };
	us_sc3(SYS_getsockname, fd, sa, &salen);
	unsigned short family = *(unsigned short *)sa;
	unsigned port = (unsigned)sa[2] << 8 | sa[3];
	if (family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			if (i)
				us_putc(&b, '.');
			us_putu(&b, sa[4 + i]);
		}
	} else {
		us_putc(&b, '[');
		for (int i = 0; i < 8; i++) {      /* sin6_addr is at offset 8 */
			if (i)
				us_putc(&b, ':');
			us_putx(&b, (uint64_t)sa[8 + 2 * i] << 8 | sa[9 + 2 * i]);
		}
		us_putc(&b, ']');
	}
	us_putc(&b, ':');
	us_putu(&b, port);
	us_term(&b);
}

/* Copies, without consuming, what is queued in the pipe or FIFO behind fd. */
static uint32_t peek_pipe(struct scratch *s, int fd)
{
	char path[64];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, "/proc/self/fd/");
	us_putu(&b, (uint64_t)fd);
	int rd = (int)us_sc4(SYS_openat, AT_FDCWD, us_term(&b), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
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
	us_sc1(SYS_close, rd);
	return got;
}

static uint32_t peek_socket(struct scratch *s, int fd)
{
	int queued = 0;
	us_sc3(SYS_ioctl, fd, FIONREAD, &queued);
	if (queued <= 0)
		return 0;
	if ((unsigned)queued > DATA_MAX) {
		capture_fail(s, "socket queue larger than 4 MiB", NULL, 0);
		return 0;
	}
	long r = us_sc6(SYS_recvfrom, fd, (long)s->data, queued, MSG_PEEK | MSG_DONTWAIT, 0, 0);
	return r > 0 ? (uint32_t)r : 0;
}

static void capture_fd(struct scratch *s, int fd)
{
	char path[64], link[US_PATH_MAX];
	struct us_buf b = { path, 0, sizeof path };
	struct stat st;
	struct us_rec_fd r = { .fd = fd };
	uint32_t data_len = 0;
	const void *data = s->data;

	us_put(&b, "/proc/self/fd/");
	us_putu(&b, (uint64_t)fd);
	if (us_read_link(us_term(&b), link, sizeof link) < 0 || us_sc2(SYS_fstat, fd, &st) < 0)
		return;   /* closed meanwhile by nobody (all frozen): cannot happen; skip */
	r.fd_flags = (uint32_t)us_sc2(SYS_fcntl, fd, F_GETFD);
	r.open_flags = (uint32_t)us_sc2(SYS_fcntl, fd, F_GETFL);
	r.dev = st.st_dev;
	r.inode = st.st_ino;
	r.mode = st.st_mode;
	const char *name = link;

	if (fd == us.uffd)
		return;   /* the tracker's own: made anew after a restore */
	if (fd == us.coord_fd) {
		r.kind = US_FD_COORDINATOR;
		name = "";
	} else if (us_startswith(link, "anon_inode:")) {
		char info[512];
		struct us_buf ib = { info, 0, sizeof info };
		us_put(&ib, "/proc/self/fdinfo/");
		us_putu(&ib, (uint64_t)fd);
		const char *text = s->data + DATA_MAX / 2;
		us_read_file(us_term(&ib), (char *)text, DATA_MAX / 2);
		if (us_streq(link, "anon_inode:[eventfd]")) {
			r.kind = US_FD_EVENTFD;
			r.aux[0] = us_proc_field_u(text, "eventfd-count:", 16);
			r.aux[1] = us_proc_field_u(text, "eventfd-semaphore:", 10);
		} else if (us_streq(link, "anon_inode:[timerfd]")) {
			r.kind = US_FD_TIMERFD;
			r.aux[0] = us_proc_field_u(text, "clockid:", 10);
			const char *p = us_proc_field(text, "it_value: (");
			uint64_t sec = p ? us_parse_u(&p, 10) : 0, nsec = 0;
			if (p && *p == ',') { p++; us_skip_spaces(&p); nsec = us_parse_u(&p, 10); }
			r.aux[2] = sec * 1000000000ull + nsec;
			p = us_proc_field(text, "it_interval: (");
			sec = p ? us_parse_u(&p, 10) : 0, nsec = 0;
			if (p && *p == ',') { p++; us_skip_spaces(&p); nsec = us_parse_u(&p, 10); }
			r.aux[1] = sec * 1000000000ull + nsec;
		} else if (us_streq(link, "anon_inode:[signalfd]")) {
			r.kind = US_FD_SIGNALFD;
			r.aux[0] = us_proc_field_u(text, "sigmask:", 16);
		} else if (us_streq(link, "anon_inode:[eventpoll]")) {
			r.kind = US_FD_EPOLL;
			struct us_epoll_target *t = (void *)s->data;
			uint32_t n = 0;
			uint32_t max = (DATA_MAX / 2) / sizeof *t;
			for (const char *p = text; n < max && (p = us_proc_field(p, "tfd:")) != NULL; n++) {
				us_skip_spaces(&p);
				t[n].fd = (int32_t)us_parse_u(&p, 10);
				us_skip_spaces(&p);
				if (us_startswith(p, "events:")) {
					p += 7;
					us_skip_spaces(&p);
					t[n].events = (uint32_t)us_parse_u(&p, 16);
				}
				us_skip_spaces(&p);
				if (us_startswith(p, "data:")) {
					p += 5;
					us_skip_spaces(&p);
					t[n].data = us_parse_u(&p, 16);
				}
			}
			data_len = n * (uint32_t)sizeof *t;
		} else {
			capture_fail(s, "unsupported descriptor:", link, 0);
			return;
		}
	} else if (S_ISREG(st.st_mode)) {
		r.kind = US_FD_FILE;
		r.pos = (uint64_t)us_sc3(SYS_lseek, fd, 0, SEEK_CUR);
	} else if (S_ISDIR(st.st_mode)) {
		r.kind = US_FD_DIR;
		r.pos = (uint64_t)us_sc3(SYS_lseek, fd, 0, SEEK_CUR);
	} else if (S_ISCHR(st.st_mode)) {
		r.kind = US_FD_CHR;
		r.aux[0] = st.st_rdev;
	} else if (S_ISFIFO(st.st_mode)) {
		r.kind = us_startswith(link, "pipe:") ? US_FD_PIPE : US_FD_FIFO;
		r.aux[0] = (r.open_flags & O_ACCMODE) != O_WRONLY;
		if (r.kind == US_FD_PIPE)
			name = "";
		data_len = peek_pipe(s, fd);
	} else if (S_ISSOCK(st.st_mode)) {
		int domain = 0, type = 0;
		unsigned int len = sizeof domain;
		us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
		len = sizeof type;
		us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len);
		if ((domain == AF_INET || domain == AF_INET6) && (type == SOCK_STREAM || type == SOCK_DGRAM)) {
			int listening = 0;
			len = sizeof listening;
			us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
			r.kind = type == SOCK_STREAM ? US_FD_TCP : US_FD_UDP;
			r.aux[1] = listening != 0;
			format_inet_name(fd, link, sizeof link);
			name = link;
			goto record;
		}
		if (domain != AF_UNIX || (type != SOCK_STREAM && type != SOCK_DGRAM)) {
			capture_fail(s, "unsupported socket (Unix, TCP and UDP sockets only):", link, 0);
			return;
		}
		r.kind = type == SOCK_STREAM ? US_FD_UNIX_STREAM : US_FD_UNIX_DGRAM;
		const struct unix_peer *p = find_peer(st.st_ino);
		if (p) {
			r.aux[0] = p->peer;
			r.aux[1] = p->listening;
		}
		/* a bound name lets a listening socket be bound again on restore */
		struct sockaddr_un sa = { 0 };
		unsigned int salen = sizeof sa;
		name = "";
		if (us_sc3(SYS_getsockname, fd, &sa, &salen) == 0 && sa.sun_path[0]) {
			for (int i = 0; i < (int)sizeof sa.sun_path - 1 && sa.sun_path[i]; i++)
				link[i] = sa.sun_path[i], link[i + 1] = 0;
			name = link;
		}
		if (!r.aux[1] && type == SOCK_STREAM)
			data_len = peek_socket(s, fd);
	} else {
		capture_fail(s, "unsupported descriptor:", link, 0);
		return;
	}
record:
	if (name != link)
		r.path_len = (uint32_t)us_strlen(name);
	else
		r.path_len = (uint32_t)us_strlen(link);
	r.data_len = data_len;
	rec_begin(s, US_REC_FD);
	meta_add(s, &r, sizeof r);
	meta_add(s, name, r.path_len);
	meta_add(s, data, data_len);
	rec_end(s);
}


void capture_fds(struct scratch *s, const int *fds, int n)
{
	load_unix_peers(s, s->data, DATA_MAX);
	for (int i = 0; i < n && !s->failed; i++)
		capture_fd(s, fds[i]);
}
