/* Sockets: Unix stream, datagram and seqpacket sockets, TCP and UDP.
 *
 * A Unix socket whose peer is in the group comes back as one end of a new socket
 * pair, with what was queued at each end (datagrams and seqpacket records one by
 * one, their boundaries kept); one whose peer is outside reads as closed after
 * its queued data. A listening Unix socket is bound again at its name. A
 * listening TCP socket and a UDP socket are bound again at their addresses, with
 * the SO_REUSEADDR and SO_REUSEPORT they had. TCP connections are tcp.c's. */
#include <stddef.h>
#include "sockets.h"

#ifdef US_FD_CAPTURE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include "../common/us_fmt.h"

static int is_inet(const struct us_fd_capture *c, int type)
{
	return S_ISSOCK(c->st.st_mode) && (c->domain == AF_INET || c->domain == AF_INET6) && c->type == type;
}

static int is_tcp(const struct us_fd_capture *c) { return is_inet(c, SOCK_STREAM); }
static int is_udp(const struct us_fd_capture *c) { return is_inet(c, SOCK_DGRAM); }

static int is_unix(const struct us_fd_capture *c, int type)
{
	return S_ISSOCK(c->st.st_mode) && c->domain == AF_UNIX && c->type == type;
}

static int is_unix_stream(const struct us_fd_capture *c) { return is_unix(c, SOCK_STREAM); }
static int is_unix_dgram(const struct us_fd_capture *c) { return is_unix(c, SOCK_DGRAM); }
static int is_unix_seqpacket(const struct us_fd_capture *c) { return is_unix(c, SOCK_SEQPACKET); }

int socket_capture_lock(struct scratch *s, uint64_t ino)
{
	/* an abstract name for the socket's inode: one process binds it at a time,
	 * and the kernel releases it with the process if that dies */
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct us_buf b = { a.sun_path + 1, 0, sizeof a.sun_path - 1 };
	us_put(&b, "understudy-capture-");
	us_putu(&b, ino);
	unsigned int len = (unsigned int)(offsetof(struct sockaddr_un, sun_path) + 1 + b.len);
	int l = (int)us_sc3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long r = l;
	for (int waited = 0; l >= 0 && waited < 50000; waited++) {   /* 5 s */
		r = us_sc3(SYS_bind, l, &a, len);
		if (r != -EADDRINUSE)
			break;
		struct timespec ts = { 0, 100000 };
		us_sc2(SYS_nanosleep, &ts, NULL);
	}
	if (r == 0)
		return l;
	capture_fail(s, "cannot take the capture lock of a socket shared with another process", NULL, r);
	if (l >= 0)
		us_sc1(SYS_close, l);
	return -1;
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

int socket_int(int fd, int level, int name)
{
	int v = 0;
	unsigned int len = sizeof v;
	us_sc5(SYS_getsockopt, fd, level, name, &v, &len);
	return v;
}

static void capture_inet(struct us_fd_capture *c)
{
	c->rec.aux[1] = socket_int(c->fd, SOL_SOCKET, SO_ACCEPTCONN) != 0;
	c->rec.aux[2] = (socket_int(c->fd, SOL_SOCKET, SO_REUSEADDR) ? US_INET_F_REUSEADDR : 0) |
			(socket_int(c->fd, SOL_SOCKET, SO_REUSEPORT) ? US_INET_F_REUSEPORT : 0);
	format_inet_name(c->fd, c->link, sizeof c->link);
	c->name = c->link;
	if (c->type == SOCK_STREAM && !c->rec.aux[1])
		tcp_capture_connection(c);
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

/* What is queued for reading, peeked without taking it: a stream's bytes, or each
 * datagram or record (framed) as its length then its bytes. A peek offset walks
 * the queue (a stream's peek stops where the sender changes); with SO_PASSCRED
 * every record carries credentials, which tells an empty record from the end of a
 * closed seqpacket stream. */
static uint32_t peek_queue(struct scratch *s, int fd, uint64_t ino, int framed)
{
	int queued = 0;
	if (!framed && (us_sc3(SYS_ioctl, fd, FIONREAD, &queued) < 0 || queued <= 0))
		return 0;
	if ((unsigned)queued > DATA_MAX) {
		capture_fail(s, "socket queue larger than 4 MiB", NULL, 0);
		return 0;
	}
	int lock = socket_capture_lock(s, ino);
	if (lock < 0)
		return 0;
	int peek_off = socket_int(fd, SOL_SOCKET, SO_PEEK_OFF);
	int passcred = socket_int(fd, SOL_SOCKET, SO_PASSCRED), zero = 0, one = 1;
	us_sc5(SYS_setsockopt, fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero);
	us_sc5(SYS_setsockopt, fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
	uint32_t used = 0, head = framed ? 4 : 0;
	while (!s->failed && used + head < DATA_MAX) {
		char control[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = { s->data + used + head, DATA_MAX - used - head };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
		long n = us_sc3(SYS_recvmsg, fd, &m, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 || (framed ? !m.msg_controllen : n == 0))
			break;          /* the whole queue was seen (EAGAIN), or the stream ended */
		if (m.msg_flags & MSG_CTRUNC)
			capture_fail(s, "descriptors in flight on a Unix socket (SCM_RIGHTS) cannot be checkpointed", NULL, 0);
		else if (m.msg_flags & MSG_TRUNC)
			capture_fail(s, "socket queue larger than 4 MiB", NULL, 0);
		if (framed)
			*(uint32_t *)(s->data + used) = (uint32_t)n;
		used += head + (uint32_t)n;
	}
	if (!s->failed && (framed ? used + head >= DATA_MAX : used != (uint32_t)queued))
		capture_fail(s, framed ? "socket queue larger than 4 MiB" : "cannot copy the data queued on a Unix socket", NULL, 0);
	us_sc5(SYS_setsockopt, fd, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof passcred);
	us_sc5(SYS_setsockopt, fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof peek_off);
	us_sc1(SYS_close, lock);
	return used;
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
	if (c->rec.aux[1])
		return;
	c->data_len = peek_queue(c->s, c->fd, c->st.st_ino, c->type != SOCK_STREAM);
}
#endif

#ifdef US_FD_RESTORE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_type(uint32_t kind)
{
	return kind == US_FD_UNIX_STREAM ? SOCK_STREAM : kind == US_FD_UNIX_DGRAM ? SOCK_DGRAM : SOCK_SEQPACKET;
}

/* Sends the queued data of a record into fd, the other end of the socket that
 * will read it: a stream's bytes, or each datagram or record on its own. */
static int refill_socket(int fd, uint32_t kind, const char *data, uint32_t len)
{
	/* what was queued fitted the old socket's buffers, and may not fit the new one's */
	int need = (int)(len < (1u << 29) ? 2 * len : 1u << 30), have = 0;
	socklen_t optlen = sizeof have;
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &optlen) == 0 && have < need)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &need, sizeof need);
	while (len) {
		uint32_t n = len, skip = 0;
		if (kind != US_FD_UNIX_STREAM) {
			if (len < 4)
				return -1;
			memcpy(&n, data, 4);
			skip = 4;
			if (n > len - 4)
				return -1;
		}
		ssize_t w = send(fd, data + skip, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 || (kind != US_FD_UNIX_STREAM && (uint32_t)w != n))
			return -1;
		data += skip + (uint32_t)w;
		len -= skip + (uint32_t)w;
	}
	return 0;
}

static int listen_unix(const struct us_rec_fd *f)
{
	char path[4096];
	int s = socket(AF_UNIX, unix_type(f->kind), 0);
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

/* Data queued for reading at one end was sent from the other. */
static int refill_from(int fd, int kind, uint64_t dev, uint64_t ino)
{
	const struct us_rec_fd *q = restore_queued_data(kind, dev, ino);
	return q ? refill_socket(fd, q->kind, us_fd_data(q), q->data_len) : 0;
}

static int share_unix(const struct us_rec_fd *f)
{
	if (restore_find_object((int)f->kind, f->dev, f->inode))
		return 0;
	if (f->aux[1])   /* listening: bound again at its name */
		return listen_unix(f);
	int sv[2];
	if (socketpair(AF_UNIX, unix_type(f->kind), 0, sv) < 0 || refill_from(sv[1], (int)f->kind, f->dev, f->inode) < 0) {
		restore_log("restore-failed reason=cannot-make-socket-pair errno=%d", errno);
		return -1;
	}
	uint64_t peer = f->aux[0];
	int peer_known = peer && restore_in_group((int)f->kind, peer);
	if (peer_known && refill_from(sv[0], (int)f->kind, f->dev, peer) < 0) {
		restore_log("restore-failed reason=cannot-refill-socket errno=%d", errno);
		return -1;
	}
	restore_add_object((int)f->kind, f->dev, f->inode, sv[0], -1);
	if (peer_known)
		restore_add_object((int)f->kind, f->dev, peer, sv[1], -1);
	else
		close(sv[1]);   /* peer outside the group: it reads as closed */
	return 0;
}

int share_dropped_connection(const struct us_rec_fd *f, const char *queued, uint32_t len)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || refill_socket(sv[1], US_FD_UNIX_STREAM, queued, len) < 0) {
		restore_log("restore-failed reason=cannot-make-dropped-connection errno=%d", errno);
		return -1;
	}
	close(sv[1]);
	restore_add_object((int)f->kind, f->dev, f->inode, sv[0], -1);
	return 0;
}

/* A socket of f's kind bound at sa (listening for TCP), with the reuse options it
 * had. A listener binds with SO_REUSEADDR whatever it had, as the old socket's
 * connections may linger in TIME_WAIT, and then gets its own setting back. */
static int bind_at(const struct us_rec_fd *f, const struct sockaddr *sa, socklen_t len)
{
	int tcp = f->kind == US_FD_TCP, one = 1;
	int reuseaddr = (f->aux[2] & US_INET_F_REUSEADDR) != 0, reuseport = (f->aux[2] & US_INET_F_REUSEPORT) != 0;
	int s = socket(sa->sa_family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (s < 0)
		return -1;
	if (((tcp || reuseaddr) && setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
	    (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    bind(s, sa, len) < 0 || (tcp && listen(s, SOMAXCONN) < 0) ||
	    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof reuseaddr) < 0) {
		int e = errno;
		close(s);
		return errno = e, -1;
	}
	return s;
}

int end_orphans(int family, unsigned port)
{
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), ended = 0;
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 req;
	} q = {
		.nh = { sizeof q, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u },
	};
	static char buf[1 << 16];
	if (nl < 0 || send(nl, &q, sizeof q, 0) < 0)
		goto out;
	for (ssize_t n; (n = recv(nl, buf, sizeof buf, 0)) > 0;) {
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
				goto out;
			struct inet_diag_msg *m = NLMSG_DATA(h);
			if (ntohs(m->id.idiag_sport) != port || m->idiag_inode)
				continue;       /* another port, or a process's socket */
			int d = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
			struct {
				struct nlmsghdr nh;
				struct inet_diag_req_v2 req;
			} k = {
				.nh = { sizeof k, SOCK_DESTROY, NLM_F_REQUEST, 2, 0 },
				.req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
					 .idiag_states = 1u << m->idiag_state, .id = m->id },
			};
			if (d >= 0 && send(d, &k, sizeof k, 0) == (ssize_t)sizeof k)
				ended++;
			if (d >= 0)
				close(d);
		}
	}
out:
	if (nl >= 0)
		close(nl);
	return ended;
}

/* Parses "a.b.c.d:port" or "[v6]:port" and makes f's socket bound there. */
static int bind_inet(const char *name, const struct us_rec_fd *f)
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
	const struct sockaddr *sa = v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	socklen_t len = v6 ? sizeof a6 : sizeof a4;
	int s = bind_at(f, sa, len);
	if (s < 0 && errno == EADDRINUSE && f->kind == US_FD_TCP && end_orphans(sa->sa_family, port) > 0) {
		restore_log("orphans-ended address=%s", name);
		s = bind_at(f, sa, len);
	}
	return s;
}

static int share_inet(const struct us_rec_fd *f)
{
	if (restore_find_object((int)f->kind, f->dev, f->inode))
		return 0;
	char name[256];
	int s = bind_inet(us_fd_path(f, name, sizeof name), f);
	if (s < 0) {
		restore_log("restore-failed reason=cannot-bind address=%s errno=%d", name, errno);
		return -1;
	}
	restore_add_object((int)f->kind, f->dev, f->inode, s, -1);
	return 0;
}

/* Listeners first: a connection bound to a listener's port keeps it from binding. */
static int share_tcp_listener(const struct us_rec_fd *f)
{
	return f->aux[1] ? share_inet(f) : 0;
}

static int share_tcp_connection(const struct us_rec_fd *f)
{
	return f->aux[1] ? 0 : tcp_share_connection(f);
}

static int restore_shared_socket(const struct proc *p, const struct us_rec_fd *f)
{
	struct us_object *o = restore_find_object((int)f->kind, f->dev, f->inode);
	if (!o)
		restore_fail(p, "socket-missing", NULL);
	return restore_status_flags(dup(o->fd), f);
}
#endif

const struct us_fd_ops us_fd_tcp = {
	.kind = US_FD_TCP,
	.detect = US_CAPTURE(is_tcp),
	.capture = US_CAPTURE(capture_inet),
	.share = US_RESTORE(share_tcp_listener),
	.share_late = US_RESTORE(share_tcp_connection),
	.restore = US_RESTORE(restore_shared_socket),
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
	.begin = US_CAPTURE(load_unix_peers),   /* for every Unix kind */
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

const struct us_fd_ops us_fd_unix_seqpacket = {
	.kind = US_FD_UNIX_SEQPACKET,
	.detect = US_CAPTURE(is_unix_seqpacket),
	.capture = US_CAPTURE(capture_unix),
	.share = US_RESTORE(share_unix),
	.restore = US_RESTORE(restore_shared_socket),
};
