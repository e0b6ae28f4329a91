/* Sockets: Unix stream and datagram sockets, TCP and UDP.
 *
 * A Unix socket whose peer is in the group comes back as one end of a new socket
 * pair, with the stream bytes queued at each end; one whose peer is outside reads
 * as closed. A listening Unix socket is bound again at its name. A listening TCP
 * socket and a UDP socket are bound again at their addresses; a connected TCP
 * socket comes back as a dropped connection (no TCP repair yet). */
#include <stddef.h>
#include "kinds.h"

#ifdef US_FD_CAPTURE
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "../common/us_fmt.h"

static int is_inet(const struct us_fd_capture *c, int type)
{
	return S_ISSOCK(c->st.st_mode) && (c->domain == AF_INET || c->domain == AF_INET6) && c->type == type;
}

static int is_tcp(const struct us_fd_capture *c) { return is_inet(c, SOCK_STREAM); }
static int is_udp(const struct us_fd_capture *c) { return is_inet(c, SOCK_DGRAM); }

static int is_unix_stream(const struct us_fd_capture *c)
{
	return S_ISSOCK(c->st.st_mode) && c->domain == AF_UNIX && c->type == SOCK_STREAM;
}

static int is_unix_dgram(const struct us_fd_capture *c)
{
	return S_ISSOCK(c->st.st_mode) && c->domain == AF_UNIX && c->type == SOCK_DGRAM;
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

static void capture_inet(struct us_fd_capture *c)
{
	int listening = 0;
	unsigned int len = sizeof listening;
	us_sc5(SYS_getsockopt, c->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
	c->rec.aux[1] = listening != 0;
	format_inet_name(c->fd, c->link, sizeof c->link);
	c->name = c->link;
}

/* Every Unix socket's peer and state, from sock_diag, once per image. */
struct unix_peer { uint64_t ino, peer; uint32_t listening; };
static struct unix_peer *peers;
static int npeers;

static void load_unix_peers(struct scratch *s)
{
	char *buf = s->data;
	size_t cap = DATA_MAX;
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

/* The bytes queued for reading, peeked. */
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

static void capture_unix(struct us_fd_capture *c)
{
	const struct unix_peer *p = find_peer(c->st.st_ino);
	if (p) {
		c->rec.aux[0] = p->peer;
		c->rec.aux[1] = p->listening;
	}
	/* a bound name lets a listening socket be bound again on restore */
	struct sockaddr_un sa = { 0 };
	unsigned int salen = sizeof sa;
	c->name = "";
	if (us_sc3(SYS_getsockname, c->fd, &sa, &salen) == 0 && sa.sun_path[0]) {
		for (int i = 0; i < (int)sizeof sa.sun_path - 1 && sa.sun_path[i]; i++)
			c->link[i] = sa.sun_path[i], c->link[i + 1] = 0;
		c->name = c->link;
	}
	if (!c->rec.aux[1] && c->type == SOCK_STREAM)
		c->data_len = peek_socket(c->s, c->fd);
}
#endif

#ifdef US_FD_RESTORE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_unix(const struct us_rec_fd *f, int type)
{
	char path[4096];
	int s = socket(AF_UNIX, type, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (f->path_len >= sizeof sa.sun_path) {
		restore_log("restore-failed reason=socket-path-too-long");
		return -1;
	}
	memcpy(sa.sun_path, us_fd_path(f, path, sizeof path), f->path_len);
	struct stat st;
	if (!stat(sa.sun_path, &st) && S_ISSOCK(st.st_mode))
		unlink(sa.sun_path);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 128) < 0) {
		restore_log("restore-failed reason=cannot-listen path=%s errno=%d", sa.sun_path, errno);
		return -1;
	}
	restore_add_object((int)f->kind, f->dev, f->inode, s, -1);
	return 0;
}

static int share_unix(const struct us_rec_fd *f)
{
	int type = f->kind == US_FD_UNIX_STREAM ? SOCK_STREAM : SOCK_DGRAM;
	if (restore_find_object((int)f->kind, f->dev, f->inode))
		return 0;
	if (f->aux[1])   /* listening: bound again at its name */
		return listen_unix(f, type);
	int sv[2];
	if (socketpair(AF_UNIX, type, 0, sv) < 0)
		return -1;
	/* data queued for reading at one end was sent from the other */
	const struct us_rec_fd *mine = restore_queued_data((int)f->kind, f->dev, f->inode);
	if (mine && restore_queue(sv[1], mine) < 0)
		return -1;
	uint64_t peer = f->aux[0];
	int peer_known = peer && restore_in_group((int)f->kind, peer);
	if (peer_known) {
		const struct us_rec_fd *theirs = restore_queued_data((int)f->kind, f->dev, peer);
		if (theirs && restore_queue(sv[0], theirs) < 0)
			return -1;
	}
	restore_add_object((int)f->kind, f->dev, f->inode, sv[0], -1);
	if (peer_known)
		restore_add_object((int)f->kind, f->dev, peer, sv[1], -1);
	else
		close(sv[1]);   /* peer outside the group: it reads as closed */
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

static int share_inet(const struct us_rec_fd *f)
{
	int tcp = f->kind == US_FD_TCP;
	if ((tcp && !f->aux[1]) || restore_find_object((int)f->kind, f->dev, f->inode))
		return 0;       /* a connection: nothing to share */
	char name[256];
	int s = bind_inet(us_fd_path(f, name, sizeof name), tcp ? SOCK_STREAM : SOCK_DGRAM);
	if (s < 0) {
		restore_log("restore-failed reason=cannot-bind address=%s errno=%d", name, errno);
		return -1;
	}
	restore_add_object((int)f->kind, f->dev, f->inode, s, -1);
	return 0;
}

static int restore_shared_socket(const struct proc *p, const struct us_rec_fd *f)
{
	struct us_object *o = restore_find_object((int)f->kind, f->dev, f->inode);
	if (!o)
		restore_fail(p, "socket-missing", NULL);
	return restore_status_flags(dup(o->fd), f);
}

static int restore_tcp(const struct proc *p, const struct us_rec_fd *f)
{
	if (f->aux[1])
		return restore_shared_socket(p, f);
	/* a connection cannot follow the process yet: it comes back dropped, as if
	 * the peer had gone (reads end, writes fail with EPIPE) */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		restore_fail(p, "cannot-make-dropped-connection", NULL);
	close(sv[1]);
	return restore_status_flags(sv[0], f);
}
#endif

const struct us_fd_ops us_fd_tcp = {
	.kind = US_FD_TCP,
	.detect = US_CAPTURE(is_tcp),
	.capture = US_CAPTURE(capture_inet),
	.share = US_RESTORE(share_inet),
	.restore = US_RESTORE(restore_tcp),
};

const struct us_fd_ops us_fd_udp = {
	.kind = US_FD_UDP,
	.detect = US_CAPTURE(is_udp),
	.capture = US_CAPTURE(capture_inet),
	.share = US_RESTORE(share_inet),
	.restore = US_RESTORE(restore_shared_socket),
};

const struct us_fd_ops us_fd_unix_stream = {
	.kind = US_FD_UNIX_STREAM,
	.begin = US_CAPTURE(load_unix_peers),   /* for both Unix kinds */
	.detect = US_CAPTURE(is_unix_stream),
	.capture = US_CAPTURE(capture_unix),
	.share = US_RESTORE(share_unix),
	.restore = US_RESTORE(restore_shared_socket),
};

const struct us_fd_ops us_fd_unix_dgram = {
	.kind = US_FD_UNIX_DGRAM,
	.detect = US_CAPTURE(is_unix_dgram),
	.capture = US_CAPTURE(capture_unix),
	.share = US_RESTORE(share_unix),
	.restore = US_RESTORE(restore_shared_socket),
};
