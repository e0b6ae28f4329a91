/* wl_udp_shared: UDP ports used by several processes of one group.
 *
 * The parent binds two ports on 127.0.0.1 and forks WORKERS workers:
 *   - "shared": one socket, inherited by every worker (fork);
 *   - "reuseport": a socket per process, each bound to the same port with
 *     SO_REUSEPORT (the parent's too), the kernel spreading datagrams over them by
 *     source address;
 * and every process listens on one more port, a TCP port, with SO_REUSEPORT too.
 * Every tick (20 ms) the parent sends 2 datagrams per worker to the shared port,
 * and one to the reuseport port from each of SENDERS sockets of its own. A worker
 * reads one datagram per tick from the shared socket (so each worker gets its
 * turn) and every datagram waiting on its reuseport socket; the parent drains its
 * own reuseport socket. Each datagram is checked (magic, sender). Each prints
 * "parent|worker1|worker2 count N"; SIGUSR1 checks that every socket of the
 * process received since the last verification and is still bound where it was
 * with the options it had (the TCP listeners: still listening), and prints "VERIFY OK udp-parent|udp-worker1|udp-worker2". */
#include "wl_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define WORKERS 2
#define SENDERS 64
#define MAGIC 0x75647021u

struct datagram { uint32_t magic, sender; uint64_t seq; };

static struct sockaddr_in shared_addr, reuse_addr, listen_addr;
static int shared_fd, reuse_fd, listen_fd, senders[SENDERS];

static int inet_socket(int type, struct sockaddr_in *addr, int reuseport)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0), one = 1;
	socklen_t len = sizeof *addr;
	if (fd < 0 || (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
	    bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0 || getsockname(fd, (struct sockaddr *)addr, &len) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 8) != 0))
		wl_fail("socket on port %u: %s", ntohs(addr->sin_port), strerror(errno));
	return fd;
}

static int udp_socket(struct sockaddr_in *addr, int reuseport)
{
	return inet_socket(SOCK_DGRAM, addr, reuseport);
}

/* Up to max datagrams waiting on fd, checked; how many. */
static unsigned take(int fd, unsigned max)
{
	unsigned got = 0;
	struct datagram d;
	while (got < max) {
		ssize_t n = recv(fd, &d, sizeof d, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n != sizeof d || d.magic != MAGIC || d.sender >= SENDERS + 1)
			wl_fail("a bad datagram (%zd bytes): %s", n, n < 0 ? strerror(errno) : "wrong contents");
		got++;
	}
	return got;
}

static int option(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	getsockopt(fd, SOL_SOCKET, name, &v, &len);
	return v;
}

static void expect_bound(int fd, const struct sockaddr_in *addr, int reuseport, const char *what)
{
	struct sockaddr_in now;
	socklen_t len = sizeof now;
	if (getsockname(fd, (struct sockaddr *)&now, &len) != 0 || now.sin_port != addr->sin_port)
		wl_fail("the %s socket is no longer bound to port %u", what, ntohs(addr->sin_port));
	if (option(fd, SO_REUSEPORT) != reuseport || option(fd, SO_REUSEADDR) != 0)
		wl_fail("the %s socket's SO_REUSEPORT is %d (was %d), SO_REUSEADDR %d (was 0)", what,
			option(fd, SO_REUSEPORT), reuseport, option(fd, SO_REUSEADDR));
}

static void send_to(int fd, const struct sockaddr_in *addr, uint32_t sender, uint64_t seq)
{
	struct datagram d = { MAGIC, sender, seq };
	if (sendto(fd, &d, sizeof d, 0, (const struct sockaddr *)addr, sizeof *addr) < 0 && errno != EAGAIN)
		wl_fail("sendto port %u: %s", ntohs(addr->sin_port), strerror(errno));
}

int main(void)
{
	wl_init("udp-parent");
	shared_addr = reuse_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	shared_fd = udp_socket(&shared_addr, 0);
	reuse_fd = udp_socket(&reuse_addr, 1);
	listen_addr = shared_addr;
	listen_addr.sin_port = 0;
	listen_fd = inet_socket(SOCK_STREAM, &listen_addr, 1);
	pid_t parent = getpid();
	int worker = 0;
	for (int i = 0; i < WORKERS && !worker; i++) {
		pid_t p = fork();
		if (p < 0)
			wl_fail("fork: %s", strerror(errno));
		if (p == 0) {
			worker = i + 1;
			wl_reinit_child(i ? "udp-worker2" : "udp-worker1", parent);
			close(reuse_fd);
			close(listen_fd);
			reuse_fd = udp_socket(&reuse_addr, 1);
			listen_fd = inet_socket(SOCK_STREAM, &listen_addr, 1);
		}
	}
	if (!worker) {
		for (int i = 0; i < SENDERS; i++) {
			struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			senders[i] = udp_socket(&any, 0);
		}
		wl_out("udp ready shared %u reuseport %u", ntohs(shared_addr.sin_port), ntohs(reuse_addr.sin_port));
	}

	unsigned long long shared_got = 0, reuse_got = 0, shared_seen = 0, reuse_seen = 0;
	for (unsigned long long iter = 1;; iter++) {
		wl_check_ids();
		if (worker) {
			shared_got += take(shared_fd, 1);
		} else {
			for (int i = 0; i < 2 * WORKERS; i++)
				send_to(senders[0], &shared_addr, 0, iter);
			for (int i = 0; i < SENDERS; i++)
				send_to(senders[i], &reuse_addr, (uint32_t)i, iter);
		}
		reuse_got += take(reuse_fd, 1000);
		if (wl_take_verify()) {
			expect_bound(shared_fd, &shared_addr, 0, "shared");
			expect_bound(reuse_fd, &reuse_addr, 1, "SO_REUSEPORT");
			expect_bound(listen_fd, &listen_addr, 1, "TCP listening");
			if (option(listen_fd, SO_ACCEPTCONN) != 1)
				wl_fail("the TCP socket on port %u no longer listens", ntohs(listen_addr.sin_port));
			if (worker && shared_got <= shared_seen)
				wl_fail("nothing arrived on the shared socket since the last verification");
			if (reuse_got <= reuse_seen)
				wl_fail("nothing arrived on the SO_REUSEPORT socket since the last verification");
			shared_seen = shared_got;
			reuse_seen = reuse_got;
			wl_out("VERIFY OK %s pid=%d shared=%llu reuseport=%llu", wl_role, (int)wl_pid0, shared_got, reuse_got);
		}
		wl_out("%s count %llu", worker ? wl_role + 4 : "parent", iter);
		wl_sleep_ms(20);
	}
}
