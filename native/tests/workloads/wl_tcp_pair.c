/* wl_tcp_pair: two processes of one group with TCP connections between them over
 * 127.0.0.1, data always in flight.
 *
 * The parent listens, forks a child, and the child connects twice:
 *   - "stream": each tick, both ends write 64-byte sequenced records (wl_rec)
 *     until the connection takes no more (or a megabyte) and read what has
 *     arrived, so the send
 *     queues stay full (fixed buffers; part of each never sent) and the receive
 *     queues hold what the peer wrote since; each reader checks every record:
 *     nothing lost, repeated or reordered; and when two verifications are at least
 *     LONG_TICKS apart, more records must arrive between them than the buffers of
 *     both ends hold (after a restore: what was written since crossed too);
 *   - "half": the child writes HALF_BYTES bytes and shuts down writing; the parent
 *     reads them one byte per tick, then must see the end of the stream, and writes
 *     the child one byte per tick, which the child reads and checks;
 *   - "mixed": the child's end is an IPv6 socket connected to ::ffff:127.0.0.1, the
 *     parent's an IPv4 one; each writes the other one byte per tick and checks what
 *     it reads.
 * SIGPIPE keeps its default action: a dropped connection ends the writer, as it
 * ended real programs. Each prints "parent|child count N" per 20 ms tick; SIGUSR1 checks the
 * connections' addresses and progress and prints "VERIFY OK tcp-parent|tcp-child". */
#include "wl_common.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* Buffers far above twice loopback's MSS (64 KiB), below which the receiver holds
 * back window updates and the stream crawls. */
#define BUF_BYTES (256 << 10)
#define WRITE_PER_TICK 16384
#define READ_PER_TICK 65536
#define LONG_TICKS 50
#define HALF_BYTES 2000
#define KIND_DOWN 1u            /* parent to child */
#define KIND_UP 2u              /* child to parent */

static int stream_fd, half_fd;
static struct sockaddr_in local0, peer0;

/* The stream: records out (a partly written one is finished first) and in. */
static uint64_t sent, received;
static struct wl_rec out_rec;
static size_t out_done = sizeof out_rec;
static unsigned char in_buf[WL_REC_SIZE];
static size_t in_have;
static uint32_t kind_out, kind_in;

/* The half-closed connection */
static unsigned half_read, half_written;
static int half_eof;

/* The IPv6-to-IPv4 connection */
static int mixed_fd, mixed_family;
static unsigned mixed_read, mixed_written, mixed_verified;

static void small_buffers(int fd)
{
	int size = BUF_BYTES;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0)
		wl_fail("buffer sizes: %s", strerror(errno));
}

static void nonblocking(int fd)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		wl_fail("O_NONBLOCK: %s", strerror(errno));
}

static unsigned char half_byte(unsigned i, unsigned salt)
{
	return (unsigned char)(wl_mix(i * 2 + salt) >> 40);
}

static void pump_stream(void)
{
	for (int i = 0; i < WRITE_PER_TICK; i++) {      /* until the connection takes no more */
		if (out_done == sizeof out_rec) {
			wl_rec_make(&out_rec, sent, kind_out);
			out_done = 0;
		}
		ssize_t n = send(stream_fd, (char *)&out_rec + out_done, sizeof out_rec - out_done, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0)
			wl_fail("stream send: %s", n ? strerror(errno) : "nothing written");
		out_done += (size_t)n;
		if (out_done == sizeof out_rec)
			sent++;
	}
	for (int i = 0; i < READ_PER_TICK;) {
		ssize_t n = recv(stream_fd, in_buf + in_have, sizeof in_buf - in_have, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0)
			wl_fail("stream recv after %llu records: %s", (unsigned long long)received,
				n ? strerror(errno) : "the connection ended");
		in_have += (size_t)n;
		if (in_have == sizeof in_buf) {
			struct wl_rec r;
			memcpy(&r, in_buf, sizeof r);
			wl_rec_check(&r, received, kind_in);
			received++;
			in_have = 0;
			i++;
		}
	}
}

static void pump_half_parent(void)
{
	unsigned char b;
	if (!half_eof) {
		ssize_t n = recv(half_fd, &b, 1, 0);
		if (n == 1) {
			if (half_read >= HALF_BYTES || b != half_byte(half_read, 0))
				wl_fail("half-closed connection: byte %u is wrong or one too many", half_read);
			half_read++;
		} else if (n == 0) {
			if (half_read != HALF_BYTES)
				wl_fail("half-closed connection ended after %u of %u bytes", half_read, HALF_BYTES);
			half_eof = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			wl_fail("half-closed connection recv: %s", strerror(errno));
		}
	}
	b = half_byte(half_written, 1);
	if (send(half_fd, &b, 1, 0) == 1)
		half_written++;
	else if (errno != EAGAIN && errno != EINTR)
		wl_fail("half-closed connection send: %s", strerror(errno));
}

static void pump_half_child(void)
{
	unsigned char b;
	ssize_t n = recv(half_fd, &b, 1, 0);
	if (n == 1) {
		if (b != half_byte(half_read, 1))
			wl_fail("half-closed connection: byte %u from the parent is wrong", half_read);
		half_read++;
	} else if (n == 0) {
		wl_fail("half-closed connection: the parent's side ended after %u bytes", half_read);
	} else if (errno != EAGAIN && errno != EINTR) {
		wl_fail("half-closed connection recv: %s", strerror(errno));
	}
}

/* Records that fit in this end's receive buffer and, as both ends have the same
 * sizes, the peer's send buffer. */
static uint64_t in_flight_max(void)
{
	int snd = 0, rcv = 0;
	socklen_t len = sizeof snd;
	getsockopt(stream_fd, SOL_SOCKET, SO_SNDBUF, &snd, &len);
	len = sizeof rcv;
	getsockopt(stream_fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len);
	return (uint64_t)(snd + rcv) / WL_REC_SIZE;
}

static void pump_mixed(int parent)
{
	unsigned char b = half_byte(mixed_written, parent ? 2 : 3);
	if (send(mixed_fd, &b, 1, 0) == 1)
		mixed_written++;
	else if (errno != EAGAIN && errno != EINTR)
		wl_fail("IPv6-to-IPv4 connection send: %s", strerror(errno));
	ssize_t n = recv(mixed_fd, &b, 1, 0);
	if (n == 1) {
		if (b != half_byte(mixed_read, parent ? 3 : 2))
			wl_fail("IPv6-to-IPv4 connection: byte %u is wrong", mixed_read);
		mixed_read++;
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		wl_fail("IPv6-to-IPv4 connection recv: %s", n ? strerror(errno) : "the connection ended");
	}
}

static void check_addresses(void)
{
	struct sockaddr_in l, p;
	socklen_t ll = sizeof l, pl = sizeof p;
	if (getsockname(stream_fd, (struct sockaddr *)&l, &ll) != 0 || getpeername(stream_fd, (struct sockaddr *)&p, &pl) != 0)
		wl_fail("the stream connection has no addresses: %s", strerror(errno));
	if (l.sin_port != local0.sin_port || p.sin_port != peer0.sin_port || l.sin_family != AF_INET)
		wl_fail("the stream connection's ports changed: %u->%u, was %u->%u", ntohs(l.sin_port), ntohs(p.sin_port),
			ntohs(local0.sin_port), ntohs(peer0.sin_port));
	struct sockaddr_storage m;
	socklen_t ml = sizeof m;
	if (getsockname(mixed_fd, (struct sockaddr *)&m, &ml) != 0 || m.ss_family != mixed_family)
		wl_fail("the IPv6-to-IPv4 connection's family changed to %d, was %d", m.ss_family, mixed_family);
	int nodelay = 0;
	socklen_t len = sizeof nodelay;
	if (getsockopt(stream_fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) != 0 || !nodelay)
		wl_fail("the stream connection lost TCP_NODELAY");
}

static void run(int parent)
{
	socklen_t len = sizeof local0;
	getsockname(stream_fd, (struct sockaddr *)&local0, &len);
	len = sizeof peer0;
	getpeername(stream_fd, (struct sockaddr *)&peer0, &len);
	int one = 1;
	setsockopt(stream_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_storage m;
	len = sizeof m;
	getsockname(mixed_fd, (struct sockaddr *)&m, &len);
	mixed_family = m.ss_family;
	nonblocking(stream_fd);
	nonblocking(half_fd);
	nonblocking(mixed_fd);
	kind_out = parent ? KIND_DOWN : KIND_UP;
	kind_in = parent ? KIND_UP : KIND_DOWN;
	uint64_t verified_at = 0, verified_tick = 0;
	for (unsigned long long iter = 1;; iter++) {
		wl_check_ids();
		pump_stream();
		if (parent)
			pump_half_parent();
		else
			pump_half_child();
		pump_mixed(parent);
		if (wl_take_verify()) {
			check_addresses();
			if (received <= verified_at)
				wl_fail("no record arrived since the last verification");
			if (iter - verified_tick >= LONG_TICKS && received - verified_at <= in_flight_max())
				wl_fail("only %llu records arrived in %llu ticks, no more than the buffers hold (%llu)",
					(unsigned long long)(received - verified_at), iter - verified_tick,
					(unsigned long long)in_flight_max());
			if (mixed_read <= mixed_verified)
				wl_fail("nothing arrived on the IPv6-to-IPv4 connection since the last verification");
			verified_at = received;
			verified_tick = iter;
			mixed_verified = mixed_read;
			wl_out("VERIFY OK %s pid=%d sent=%llu received=%llu half=%u%s mixed=%u", wl_role, (int)wl_pid0,
			       (unsigned long long)sent, (unsigned long long)received, half_read,
			       half_eof ? " half-ended" : "", mixed_read);
		}
		wl_out("%s count %llu", parent ? "parent" : "child", iter);
		wl_sleep_ms(20);
	}
}

int main(void)
{
	wl_init("tcp-parent");
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 4) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		wl_fail("listen: %s", strerror(errno));
	pid_t parent = getpid(), child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		wl_reinit_child("tcp-child", parent);
		close(listener);
		stream_fd = socket(AF_INET, SOCK_STREAM, 0);
		half_fd = socket(AF_INET, SOCK_STREAM, 0);
		small_buffers(stream_fd);
		struct sockaddr_in6 mapped = { .sin6_family = AF_INET6, .sin6_port = addr.sin_port };
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
		mixed_fd = socket(AF_INET6, SOCK_STREAM, 0);
		if (connect(stream_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
		    connect(half_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
		    connect(mixed_fd, (struct sockaddr *)&mapped, sizeof mapped) != 0)
			wl_fail("connect: %s", strerror(errno));
		unsigned char b[HALF_BYTES];
		for (unsigned i = 0; i < HALF_BYTES; i++)
			b[i] = half_byte(i, 0);
		if (wl_write_all(half_fd, b, sizeof b) != 0 || shutdown(half_fd, SHUT_WR) != 0)
			wl_fail("half-closed connection: %s", strerror(errno));
		run(0);
	}
	small_buffers(listener);
	if ((stream_fd = accept(listener, NULL, NULL)) < 0 || (half_fd = accept(listener, NULL, NULL)) < 0 ||
	    (mixed_fd = accept(listener, NULL, NULL)) < 0)
		wl_fail("accept: %s", strerror(errno));
	wl_out("tcp pair ready port %u", ntohs(addr.sin_port));
	run(1);
}
