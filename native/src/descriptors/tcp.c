/* TCP connections, with TCP repair (TCP_REPAIR, Linux 3.5+, CAP_NET_ADMIN).
 *
 * Capture: a connected socket goes into repair mode for a moment, which lets its
 * sequence numbers, options, window and both queues be read without the peer
 * seeing anything (the group is frozen, so neither end sends meanwhile); it then
 * leaves repair mode without a window probe. A socket that cannot be repaired
 * (closed, still connecting, TCP_REPAIR refused) keeps its addresses, state and
 * the bytes queued for reading.
 *
 * Restore: a connection whose peer is in the group too is made again, both ends
 * at once, in repair mode, so no packet leaves before both exist; then the ends
 * leave repair mode and carry on from the same sequence numbers, with nothing
 * lost or repeated. The two ends are captured by their own processes, moments
 * apart, while the kernel may still carry segments between them: each end's send
 * queue is cut where its peer's receive queue ends (align_to_peer). Repair mode
 * binds over the restored listener's port and over a lingering TIME_WAIT of the
 * killed processes' connection; what of theirs still holds the connection's
 * addresses is ended (end_orphans). Any other connection comes back dropped
 * (share_dropped_connection in sockets.c). */
#include <stddef.h>
#include <netinet/tcp.h>
#include "sockets.h"

#ifdef US_FD_CAPTURE
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int repairable(int state)
{
	return state == TCP_ESTABLISHED || state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 ||
	       state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING;
}

static void set_int(int fd, int level, int name, int v)
{
	us_sc5(SYS_setsockopt, fd, level, name, &v, sizeof v);
}

static int get_tcp(int fd, int name, void *v, unsigned int len)
{
	return us_sc5(SYS_getsockopt, fd, SOL_TCP, name, v, &len) < 0 ? -1 : 0;
}

/* The address and port of getsockname (which 0) or getpeername (1). */
static void address(int fd, int which, uint8_t addr[16], uint16_t *port)
{
	unsigned char sa[128] = { 0 };
	unsigned int len = sizeof sa;
	us_sc3(which ? SYS_getpeername : SYS_getsockname, fd, sa, &len);
	*port = (uint16_t)(sa[2] << 8 | sa[3]);
	int v6 = *(unsigned short *)sa == AF_INET6;
	for (int i = 0; i < (v6 ? 16 : 4); i++)
		addr[i] = sa[(v6 ? 8 : 4) + i];     /* sin6_addr, sin_addr */
}

/* Peeks what is queued for reading, at most cap bytes: -1 if there is more. */
static long peek_received(int fd, char *buf, uint64_t cap)
{
	int queued = 0;
	us_sc3(SYS_ioctl, fd, SIOCINQ, &queued);
	if (queued <= 0)
		return 0;
	if ((uint64_t)queued > cap)
		return -1;
	long n = us_sc6(SYS_recvfrom, fd, (long)buf, queued, MSG_PEEK | MSG_DONTWAIT, 0, 0);
	return n == queued ? n : -1;
}

/* In repair mode: the next sequence number of queue (TCP_SEND_QUEUE: after the
 * last byte written; TCP_RECV_QUEUE: after the last byte received) into *seq. */
static int queue_seq(int fd, int queue, uint32_t *seq)
{
	set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, queue);
	return get_tcp(fd, TCP_QUEUE_SEQ, seq, sizeof *seq);
}

#define MOVING_TRIES 100

/* In repair mode: the state, queue lengths and sequence numbers, and the queues
 * themselves, the receive queue at q and the send queue after it. */
static const char *take_repair_state(int fd, struct us_tcp_conn *t, char *q, uint64_t cap)
{
	uint32_t write_seq, rcv_nxt;
	struct tcp_repair_window w;
	int fin_unacked = t->state == TCP_FIN_WAIT1 || t->state == TCP_CLOSING || t->state == TCP_LAST_ACK;
	if (t->state != TCP_ESTABLISHED && t->state != TCP_CLOSE_WAIT)
		t->flags |= US_TCP_F_FIN_SENT;
	if (t->state == TCP_CLOSE_WAIT || t->state == TCP_CLOSING || t->state == TCP_LAST_ACK)
		t->flags |= US_TCP_F_FIN_RECEIVED;

	/* The peer's kernel may still send and acknowledge meanwhile: a queue is taken
	 * again until where it ends (received) or starts (acknowledged) stayed put
	 * around its copy, or its bytes would be numbered wrong. */
	uint32_t rcv_nxt_after = 1;
	long received = 0;
	rcv_nxt = 0;
	for (int tries = 0; rcv_nxt_after != rcv_nxt; tries++) {
		if (tries == MOVING_TRIES)
			return "a TCP connection kept receiving while captured";
		if (queue_seq(fd, TCP_RECV_QUEUE, &rcv_nxt) < 0)
			return "cannot read a TCP connection's receive sequence";
		if ((received = peek_received(fd, q, cap)) < 0)
			return "cannot copy a TCP connection's receive queue (at most 32 MiB)";
		queue_seq(fd, TCP_RECV_QUEUE, &rcv_nxt_after);
	}
	t->recv_len = (uint32_t)received;
	t->recv_seq = rcv_nxt - t->recv_len - !!(t->flags & US_TCP_F_FIN_RECEIVED);

	int outq = 0, outq_after = -1, unsent = 0;
	uint32_t sending = 0;
	if (queue_seq(fd, TCP_SEND_QUEUE, &write_seq) < 0)
		return "cannot read a TCP connection's send sequence";
	for (int tries = 0; outq_after != outq; tries++) {
		if (tries == MOVING_TRIES)
			return "a TCP connection kept being acknowledged while captured";
		us_sc3(SYS_ioctl, fd, SIOCOUTQ, &outq);
		us_sc3(SYS_ioctl, fd, SIOCOUTQNSD, &unsent);
		sending = (uint32_t)outq - (uint32_t)fin_unacked;
		if (outq < fin_unacked || sending > cap - t->recv_len)
			return "cannot copy a TCP connection's send queue (at most 32 MiB with the receive queue)";
		long copied = sending ? us_sc6(SYS_recvfrom, fd, (long)(q + t->recv_len), sending, MSG_PEEK | MSG_DONTWAIT, 0, 0) : 0;
		us_sc3(SYS_ioctl, fd, SIOCOUTQ, &outq_after);
		if (copied != sending && outq_after == outq)
			return "cannot copy a TCP connection's send queue";
	}
	t->send_len = sending;
	t->unsent_len = (uint32_t)unsent < sending ? (uint32_t)unsent : sending;
	t->send_seq = write_seq - sending - !!(t->flags & US_TCP_F_FIN_SENT);

	if (get_tcp(fd, TCP_MAXSEG, &t->mss, sizeof t->mss) < 0 ||
	    get_tcp(fd, TCP_TIMESTAMP, &t->timestamp, sizeof t->timestamp) < 0 ||
	    get_tcp(fd, TCP_REPAIR_WINDOW, &w, sizeof w) < 0)
		return "cannot read a TCP connection's options or window";
	t->snd_wl1 = w.snd_wl1;
	t->snd_wnd = w.snd_wnd;
	t->max_window = w.max_window;
	t->rcv_wnd = w.rcv_wnd;
	t->rcv_wup = w.rcv_wup;
	t->flags |= US_TCP_F_REPAIR;
	return NULL;
}

void tcp_capture_connection(struct us_fd_capture *c)
{
	struct scratch *s = c->s;
	struct tcp_info ti = { 0 };
	struct us_tcp_conn *t = (struct us_tcp_conn *)s->queues;
	char *q = s->queues + sizeof *t;
	uint64_t cap = QUEUES_MAX - sizeof *t;
	if (get_tcp(c->fd, TCP_INFO, &ti, sizeof ti) < 0)
		return;
	int lock = socket_capture_lock(s, c->st.st_ino);
	if (lock < 0)
		return;
	*t = (struct us_tcp_conn){ .family = (uint16_t)c->domain, .state = ti.tcpi_state };
	address(c->fd, 0, t->local_addr, &t->local_port);
	address(c->fd, 1, t->remote_addr, &t->remote_port);
	t->options = ti.tcpi_options;
	t->snd_wscale = ti.tcpi_snd_wscale;
	t->rcv_wscale = ti.tcpi_rcv_wscale;
	t->sndbuf = (uint32_t)socket_int(c->fd, SOL_SOCKET, SO_SNDBUF);
	t->rcvbuf = (uint32_t)socket_int(c->fd, SOL_SOCKET, SO_RCVBUF);
	if (socket_int(c->fd, SOL_TCP, TCP_NODELAY))
		t->flags |= US_TCP_F_NODELAY;
	if (socket_int(c->fd, SOL_SOCKET, SO_KEEPALIVE))
		t->flags |= US_TCP_F_KEEPALIVE;
	/* the peeks start at the queue's head, whatever peek offset the application set */
	int peek_off = socket_int(c->fd, SOL_SOCKET, SO_PEEK_OFF);
	set_int(c->fd, SOL_SOCKET, SO_PEEK_OFF, -1);

	const char *why = NULL;
	if (repairable(t->state) && us_sc5(SYS_setsockopt, c->fd, SOL_TCP, TCP_REPAIR, &(int){ 1 }, sizeof(int)) == 0) {
		why = take_repair_state(c->fd, t, q, cap);
		set_int(c->fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
		set_int(c->fd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
	} else {
		/* comes back dropped: what had arrived can still be read */
		long received = peek_received(c->fd, q, cap);
		if (received < 0)
			why = "cannot copy a TCP connection's receive queue (at most 32 MiB)";
		else
			t->recv_len = (uint32_t)received;
	}

	set_int(c->fd, SOL_SOCKET, SO_PEEK_OFF, peek_off);
	us_sc1(SYS_close, lock);
	if (why) {
		capture_fail(s, why, c->name, 0);
		return;
	}
	c->data = s->queues;
	c->data_len = (uint32_t)sizeof *t + t->recv_len + t->send_len;
}
#endif

#ifdef US_FD_RESTORE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The connection state of a connected TCP record; 0 if it has none. */
static int conn_of(const struct us_rec_fd *f, struct us_tcp_conn *t)
{
	if (f->kind != US_FD_TCP || f->aux[1] || f->data_len < sizeof *t)
		return 0;
	memcpy(t, us_fd_data(f), sizeof *t);    /* the data is not aligned */
	return 1;
}

/* Whether two addresses are the same host: an IPv6 socket talking to an IPv4 one
 * sees it as ::ffff:a.b.c.d. */
static int same_host(int family, const uint8_t *a, int other_family, const uint8_t *b)
{
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (family == AF_INET6 && other_family == AF_INET)
		return !memcmp(a, v4_mapped, 12) && !memcmp(a + 12, b, 4);
	if (family == AF_INET && other_family == AF_INET6)
		return same_host(other_family, b, family, a);
	return family == other_family && !memcmp(a, b, 16);
}

/* The record of the other end of mine's connection in the group (local and remote
 * swapped), or NULL. */
static const struct us_rec_fd *other_end(const struct us_tcp_conn *mine)
{
	long cursor = 0;
	const struct proc *holder;
	struct us_tcp_conn t;
	for (const struct us_rec_fd *f; (f = restore_next_record(&cursor, &holder));)
		if (conn_of(f, &t) && (t.flags & US_TCP_F_REPAIR) &&
		    t.local_port == mine->remote_port && t.remote_port == mine->local_port &&
		    same_host(t.family, t.local_addr, mine->family, mine->remote_addr) &&
		    same_host(t.family, t.remote_addr, mine->family, mine->local_addr))
			return f;
	return NULL;
}

static socklen_t sockaddr_of(const struct us_tcp_conn *t, int remote, struct sockaddr_in6 *sa)
{
	const uint8_t *addr = remote ? t->remote_addr : t->local_addr;
	uint16_t port = htons(remote ? t->remote_port : t->local_port);
	memset(sa, 0, sizeof *sa);
	if (t->family == AF_INET6) {
		*sa = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = port };
		memcpy(&sa->sin6_addr, addr, 16);
		return sizeof *sa;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
	*a4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = port };
	memcpy(&a4->sin_addr, addr, 4);
	return sizeof *a4;
}

/* "a.b.c.d:port" or "[v6]:port", for the log. */
static const char *format_end(const struct us_tcp_conn *t, int remote, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	inet_ntop(t->family, remote ? t->remote_addr : t->local_addr, host, sizeof host);
	snprintf(out, cap, t->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, remote ? t->remote_port : t->local_port);
	return out;
}

static int set_int(int s, int level, int name, int v)
{
	return setsockopt(s, level, name, &v, sizeof v);
}

/* Writes len bytes of p in as many sends as it takes (a repair-mode send may take
 * part of it). */
static int send_all(int s, const char *p, uint32_t len)
{
	while (len) {
		ssize_t w = send(s, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		len -= (uint32_t)w;
	}
	return 0;
}

/* The buffer the old socket had, or more if the queue to refill needs it (the
 * kernel counts its own overhead: twice the bytes). SO_*BUFFORCE takes half of
 * what SO_*BUF reads. */
static int size_buffer(int s, int name, uint32_t had, uint32_t bytes)
{
	uint64_t want = (uint64_t)bytes * 2 + 65536;
	if (want < had)
		want = had;
	if (want > (1u << 30))
		want = 1u << 30;
	return set_int(s, SOL_SOCKET, name, (int)(want / 2));
}

/* Cuts mine's send queue where what peer received ends. The peer's image holds
 * what it received: that part is not sent again. What it lacks goes out as new
 * data once live, none of it counted as in flight: restored in flight, it would
 * have to be retransmitted, by the timer (a second at first, no round trip
 * measured yet) unless later bytes made the peer report the gap. And if the
 * peer's capture came after segments it received since mine's, its
 * acknowledgments would be past what mine had sent, which the kernel drops with
 * the segments carrying them, in both directions, until mine sent past them:
 * never, if its window had closed meanwhile. The window is the peer's last
 * advertised right edge. -1 if mine no longer holds bytes the peer lacks: they
 * crossed and were acknowledged between the two captures, and are in neither
 * image. *skip is where the queue to send starts. */
static int align_to_peer(struct us_tcp_conn *mine, const struct us_tcp_conn *peer, uint32_t *skip)
{
	uint32_t received_to = peer->recv_seq + peer->recv_len;
	int32_t delivered = (int32_t)(received_to - mine->send_seq);
	if (delivered < 0 || (uint32_t)delivered > mine->send_len)
		return -1;
	int32_t window = (int32_t)(peer->rcv_wup + peer->rcv_wnd - received_to);
	*skip = (uint32_t)delivered;
	mine->send_seq = received_to;
	mine->send_len -= (uint32_t)delivered;
	mine->snd_wnd = window > 0 ? (uint32_t)window : 0;
	if (mine->max_window < mine->snd_wnd)
		mine->max_window = mine->snd_wnd;
	return 0;
}

/* A socket in repair mode holding the connection as captured and aligned, its
 * receive queue refilled from received, in *out; NULL, or the step that failed. */
static const char *repair(const struct us_tcp_conn *t, const char *received, int *out)
{
	struct sockaddr_in6 sa;
	int s = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	*out = s;
	if (s < 0)
		return "socket";
	if (set_int(s, SOL_TCP, TCP_REPAIR, 1) < 0)
		return "repair-mode";
	if (size_buffer(s, SO_SNDBUFFORCE, t->sndbuf, t->send_len) < 0 ||
	    size_buffer(s, SO_RCVBUFFORCE, t->rcvbuf, t->recv_len) < 0)
		return "buffers";
	if (set_int(s, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 || set_int(s, SOL_TCP, TCP_QUEUE_SEQ, (int)t->send_seq) < 0 ||
	    set_int(s, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 || set_int(s, SOL_TCP, TCP_QUEUE_SEQ, (int)t->recv_seq) < 0)
		return "sequence-numbers";
	if (bind(s, (struct sockaddr *)&sa, sockaddr_of(t, 0, &sa)) < 0)
		return "bind";
	/* the connect sizes segments from TCP_MAXSEG (at most 32767); the MSS option
	 * below only bounds them, so without it they would stay at 536 bytes */
	if (set_int(s, SOL_TCP, TCP_MAXSEG, t->mss < 32767 ? (int)t->mss : 32767) < 0)
		return "maxseg";
	if (connect(s, (struct sockaddr *)&sa, sockaddr_of(t, 1, &sa)) < 0)
		return "connect";

	struct tcp_repair_opt opts[4];
	int n = 0;
	opts[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, t->mss };
	if (t->options & TCPI_OPT_WSCALE)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, t->snd_wscale | (uint32_t)t->rcv_wscale << 16 };
	if (t->options & TCPI_OPT_SACK)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (t->options & TCPI_OPT_TIMESTAMPS)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(s, SOL_TCP, TCP_REPAIR_OPTIONS, opts, (socklen_t)(n * sizeof *opts)) < 0)
		return "options";
	if ((t->options & TCPI_OPT_TIMESTAMPS) && set_int(s, SOL_TCP, TCP_TIMESTAMP, (int)t->timestamp) < 0)
		return "timestamp";

	/* in repair mode, what is written to the receive queue reads as received; the
	 * send queue stays empty (align_to_peer) */
	if (set_int(s, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 || send_all(s, received, t->recv_len) < 0)
		return "receive-queue";

	/* a FIN received is not in the refilled queue: the window may not start past it */
	uint32_t rcv_nxt = t->recv_seq + t->recv_len;
	struct tcp_repair_window w = { t->snd_wl1, t->snd_wnd, t->max_window, t->rcv_wnd,
				       (int32_t)(t->rcv_wup - rcv_nxt) > 0 ? rcv_nxt : t->rcv_wup };
	if (setsockopt(s, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) < 0)
		return "window";
	if (((t->flags & US_TCP_F_NODELAY) && set_int(s, SOL_TCP, TCP_NODELAY, 1) < 0) ||
	    ((t->flags & US_TCP_F_KEEPALIVE) && set_int(s, SOL_SOCKET, SO_KEEPALIVE, 1) < 0))
		return "socket-options";
	return NULL;
}

/* Once both ends exist: live again, then what the peer has not received, then
 * the FIN this end had sent, which follows its data. */
static const char *go_live(int s, const struct us_tcp_conn *t, const char *sending)
{
	if (set_int(s, SOL_TCP, TCP_REPAIR, 0) < 0)
		return "leave-repair-mode";
	if (send_all(s, sending, t->send_len) < 0)
		return "send-queue";
	if ((t->flags & US_TCP_F_FIN_SENT) && shutdown(s, SHUT_WR) < 0)
		return "fin";
	return NULL;
}

int tcp_share_connection(const struct us_rec_fd *f)
{
	if (restore_find_object(US_FD_TCP, f->dev, f->inode))
		return 0;
	struct us_tcp_conn t, pt;
	char local[80], remote[80];
	if (!conn_of(f, &t))
		return share_dropped_connection(f, NULL, 0);
	const struct us_rec_fd *pf = (t.flags & US_TCP_F_REPAIR) ? other_end(&t) : NULL;
	format_end(&t, 0, local, sizeof local);
	format_end(&t, 1, remote, sizeof remote);
	if (!pf || pf->inode == f->inode || !conn_of(pf, &pt)) {
		restore_log("tcp-connection-dropped local=%s remote=%s reason=%s", local, remote,
			    (t.flags & US_TCP_F_REPAIR) ? "peer-outside-group" : "not-repairable");
		return share_dropped_connection(f, us_fd_data(f) + sizeof t, t.recv_len);
	}

	uint32_t skip, pskip;
	if (align_to_peer(&t, &pt, &skip) < 0 || align_to_peer(&pt, &t, &pskip) < 0) {
		restore_log("tcp-connection-dropped local=%s remote=%s reason=ends-captured-apart", local, remote);
		return share_dropped_connection(f, us_fd_data(f) + sizeof t, t.recv_len);
	}
	const char *q = us_fd_data(f) + sizeof t, *pq = us_fd_data(pf) + sizeof pt;
	const char *sending = q + t.recv_len + skip, *psending = pq + pt.recv_len + pskip;
	int s = -1, ps = -1;
	const char *why = repair(&t, q, &s);
	if (!why)
		why = repair(&pt, pq, &ps);
	if (why && !strcmp(why, "connect") && errno == EADDRNOTAVAIL &&
	    end_orphans(t.family, t.local_port) + end_orphans(t.family, pt.local_port) > 0) {
		/* the killed processes' ends of this connection, still closing */
		restore_log("orphans-ended local=%s remote=%s", local, remote);
		close(s);
		if (ps >= 0)
			close(ps);
		ps = -1;
		why = repair(&t, q, &s);
		if (!why)
			why = repair(&pt, pq, &ps);
	}
	if (!why)
		why = go_live(s, &t, sending);
	if (!why)
		why = go_live(ps, &pt, psending);
	if (why) {
		restore_log("restore-failed reason=cannot-repair-tcp-connection step=%s local=%s remote=%s errno=%d",
			    why, local, remote, errno);
		return -1;
	}
	restore_add_object(US_FD_TCP, f->dev, f->inode, s, -1);
	restore_add_object(US_FD_TCP, pf->dev, pf->inode, ps, -1);
	restore_log("tcp-connection-repaired local=%s remote=%s", local, remote);
	return 0;
}
#endif
