/* TCP repair across images the two ends took moments apart (src/descriptors/tcp.c).
 *
 * Each end of a connection is captured by its own process while the kernel may
 * still carry segments between them: one end's image can be ahead of the other's.
 * This builds the two records of a connection over 127.0.0.1 as such captures
 * leave them, restores them with us-init's own code (tcp.c, its calls into the
 * rest of us-init stubbed here) and checks that every byte then crosses, both
 * ways, in order, and that none had to wait for a retransmission:
 *   - consistent: the receiver holds the sender's in-flight bytes, not yet
 *     acknowledged (a delayed ACK);
 *   - peer ahead: the sender's image was taken before it sent bytes that its
 *     peer then received, and its window had closed: restored as they are, the
 *     peer's acknowledgments are past what the sender sent, and the kernel drops
 *     them with the data segments carrying them, both ways, for good;
 *   - peer behind: the sender's in-flight bytes had not reached its peer when
 *     the peer was captured: restored in flight, they had to be retransmitted;
 *   - lost: bytes crossed and were acknowledged between the captures, so neither
 *     image holds them: the connection comes back dropped, logged.
 * Needs CAP_NET_ADMIN (TCP_REPAIR); skipped (77) without it. A stalled connection
 * never moves again: the wait for the bytes gives up after 10 s. */
#define US_FD_RESTORE
#include "../src/descriptors/tcp.c"

#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

/* --- what tcp.c calls in us-init --- */

static const struct us_rec_fd *records[2];
static struct us_object objects[2];
static int object_count, dropped;
static char last_log[256];

const char *us_fd_data(const struct us_rec_fd *f)
{
	return (const char *)(f + 1) + f->path_len;
}

const struct us_rec_fd *restore_next_record(long *cursor, const struct proc **holder)
{
	*holder = NULL;
	return *cursor < 2 ? records[(*cursor)++] : NULL;
}

struct us_object *restore_find_object(int kind, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < object_count; i++)
		if (objects[i].kind == kind && objects[i].dev == dev && objects[i].ino == ino)
			return &objects[i];
	return NULL;
}

void restore_add_object(int kind, uint64_t dev, uint64_t ino, int fd, int fd2)
{
	objects[object_count++] = (struct us_object){ dev, ino, kind, fd, fd2 };
}

void restore_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof last_log, fmt, ap);
	va_end(ap);
	printf("  us-init: %s\n", last_log);
}

int share_dropped_connection(const struct us_rec_fd *f, const char *queued, uint32_t len)
{
	(void)f, (void)queued, (void)len;
	dropped++;
	return 0;
}

int end_orphans(int family, unsigned port)
{
	(void)family, (void)port;
	return 0;
}

/* --- the connection --- */

static int failures;
#define CHECK(c, ...)                                    \
	do {                                             \
		if (!(c)) {                              \
			printf("  FAIL: " __VA_ARGS__);  \
			printf("\n");                    \
			failures++;                      \
		}                                        \
	} while (0)

#define STREAM 200000u                  /* bytes each end had written and not had acknowledged */

static unsigned char stream_byte(int way, uint32_t i)
{
	return (unsigned char)((i * 2654435761u + (unsigned)way * 40503u) >> 13);
}

/* One end as its capture saw it. The end wrote STREAM bytes from seq_out on,
 * of which in_flight were sent and unsent never; it had received received_len
 * bytes ending at received_to, not read yet, and advertised a window up to
 * window_to. Its peer's window as it knew it: send_window from seq_out. */
struct end {
	uint16_t port, peer_port;
	int way;                        /* which stream it writes */
	uint32_t seq_out, in_flight, unsent, send_window;
	uint32_t received_to, received_len, window_to, peer_seq0;
};

/* The record: struct us_rec_fd, no path, then struct us_tcp_conn and the queues. */
static struct us_rec_fd *record_of(const struct end *e, uint64_t inode)
{
	uint32_t send_len = e->in_flight + e->unsent;
	size_t len = sizeof(struct us_rec_fd) + sizeof(struct us_tcp_conn) + e->received_len + send_len;
	struct us_rec_fd *f = calloc(1, len);
	*f = (struct us_rec_fd){ .fd = 3, .kind = US_FD_TCP, .dev = 1, .inode = inode,
				 .data_len = (uint32_t)(sizeof(struct us_tcp_conn) + e->received_len + send_len) };
	struct us_tcp_conn t = {
		.family = AF_INET, .state = TCP_ESTABLISHED, .local_port = e->port, .remote_port = e->peer_port,
		.local_addr = { 127, 0, 0, 1 }, .remote_addr = { 127, 0, 0, 1 },
		.send_seq = e->seq_out, .recv_seq = e->received_to - e->received_len,
		.send_len = send_len, .unsent_len = e->unsent, .recv_len = e->received_len,
		.mss = 65483, .timestamp = 1000, .snd_wscale = 7, .rcv_wscale = 7,
		.options = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE,
		.snd_wl1 = e->received_to, .snd_wnd = e->send_window, .max_window = 1u << 20,
		.rcv_wnd = e->window_to - e->received_to, .rcv_wup = e->received_to,
		.sndbuf = 1u << 20, .rcvbuf = 1u << 20, .flags = US_TCP_F_REPAIR | US_TCP_F_NODELAY,
	};
	char *p = (char *)us_fd_data(f);
	memcpy(p, &t, sizeof t);
	p += sizeof t;
	/* what it received is the other way's stream, counted from the peer's first byte */
	for (uint32_t i = 0; i < e->received_len; i++)
		p[i] = (char)stream_byte(!e->way, t.recv_seq - e->peer_seq0 + i);
	for (uint32_t i = 0; i < send_len; i++)
		p[e->received_len + i] = (char)stream_byte(e->way, i);
	return f;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		perror("free port");
		exit(1);
	}
	close(s);
	return ntohs(a.sin_port);
}

/* Reads what each end is due until both have it all or nothing moves for 10 s;
 * checks every byte. want[i]: bytes end i must read, first[i]: the stream offset
 * of the first. */
static void expect_streams(const int fd[2], const uint32_t want[2], const uint32_t first[2], const int way_in[2])
{
	uint32_t got[2] = { 0, 0 };
	unsigned char buf[65536];
	while (got[0] < want[0] || got[1] < want[1]) {
		struct pollfd p[2] = { { fd[0], POLLIN, 0 }, { fd[1], POLLIN, 0 } };
		if (poll(p, 2, 10000) <= 0) {
			CHECK(0, "stalled: end 0 read %u of %u bytes, end 1 %u of %u", got[0], want[0], got[1], want[1]);
			return;
		}
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			ssize_t n = recv(fd[i], buf, sizeof buf, MSG_DONTWAIT);
			if (n <= 0) {
				CHECK(0, "end %d: %s", i, n ? strerror(errno) : "the connection ended");
				return;
			}
			for (ssize_t k = 0; k < n; k++)
				if (buf[k] != stream_byte(way_in[i], first[i] + got[i] + (uint32_t)k)) {
					CHECK(0, "end %d: byte %u is wrong", i, first[i] + got[i] + (uint32_t)k);
					return;
				}
			got[i] += (uint32_t)n;
			CHECK(got[i] <= want[i], "end %d read %u bytes, more than the %u due", i, got[i], want[i]);
		}
	}
}

static uint32_t retransmitted(int fd)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof ti;
	getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len);
	return ti.tcpi_total_retrans;
}

/* Restores a and b; checks that each reads the bytes its image held and then the
 * rest of what the other had written. */
static void run(const char *name, struct end a, struct end b, int expect_dropped)
{
	printf("%s\n", name);
	a.port = b.peer_port = free_port();
	b.port = a.peer_port = free_port();
	a.way = 0, b.way = 1;
	a.peer_seq0 = b.seq_out, b.peer_seq0 = a.seq_out;
	records[0] = record_of(&a, 100);
	records[1] = record_of(&b, 200);
	object_count = dropped = 0;
	last_log[0] = 0;
	int r = tcp_share_connection(records[0]);
	if (expect_dropped) {
		CHECK(r == 0 && dropped == 1 && strstr(last_log, "reason=ends-captured-apart"),
		      "the connection should come back dropped, logged");
	} else if (r != 0 || object_count != 2) {
		CHECK(0, "not restored (%s)", last_log);
	} else {
		int fd[2] = { objects[0].fd, objects[1].fd };
		/* each reads from where its image's receive queue starts to the end of what the other wrote */
		uint32_t first[2] = { a.received_to - a.received_len - b.seq_out, b.received_to - b.received_len - a.seq_out };
		uint32_t want[2] = { STREAM - first[0], STREAM - first[1] };
		int way_in[2] = { 1, 0 };
		expect_streams(fd, want, first, way_in);
		CHECK(retransmitted(fd[0]) == 0 && retransmitted(fd[1]) == 0,
		      "bytes had to be sent again (%u, %u segments): they were restored as in flight",
		      retransmitted(fd[0]), retransmitted(fd[1]));
		close(fd[0]);
		close(fd[1]);
	}
	free((void *)records[0]);
	free((void *)records[1]);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	if (setsockopt(probe, SOL_TCP, TCP_REPAIR, &(int){ 1 }, sizeof(int)) < 0) {
		printf("skipped: TCP_REPAIR needs CAP_NET_ADMIN\n");
		return 77;
	}
	close(probe);
	const uint32_t A0 = 0xfffe0000u, B0 = 1000000;        /* A's numbers wrap */

	/* A sent 30000 bytes, which B holds unacknowledged; B sent nothing yet. */
	run("consistent",
	    (struct end){ .seq_out = A0, .in_flight = 30000, .unsent = STREAM - 30000, .send_window = 65536,
			  .received_to = B0, .window_to = B0 + 400000 },
	    (struct end){ .seq_out = B0, .unsent = STREAM, .send_window = 400000,
			  .received_to = A0 + 30000, .received_len = 30000, .window_to = A0 + 30000 + 400000 }, 0);

	/* A's image: 65536 bytes in flight, its window full. B then acknowledged them
	 * opening its window, A sent 40000 more, and B's image holds all 105536. */
	run("peer ahead",
	    (struct end){ .seq_out = A0, .in_flight = 65536, .unsent = STREAM - 65536, .send_window = 65536,
			  .received_to = B0, .window_to = B0 + 400000 },
	    (struct end){ .seq_out = B0, .unsent = STREAM, .send_window = 400000,
			  .received_to = A0 + 105536, .received_len = 105536, .window_to = A0 + 105536 + 400000 }, 0);

	/* A's image: 50000 bytes in flight; B's image has only the first 20000. */
	run("peer behind",
	    (struct end){ .seq_out = A0, .in_flight = 50000, .unsent = STREAM - 50000, .send_window = 400000,
			  .received_to = B0, .window_to = B0 + 400000 },
	    (struct end){ .seq_out = B0, .unsent = STREAM, .send_window = 400000,
			  .received_to = A0 + 20000, .received_len = 20000, .window_to = A0 + 20000 + 400000 }, 0);

	/* B's image was taken before bytes 0..9999 reached it, A's after B acknowledged them. */
	run("lost between the captures",
	    (struct end){ .seq_out = A0 + 10000, .unsent = STREAM, .send_window = 400000,
			  .received_to = B0, .window_to = B0 + 400000 },
	    (struct end){ .seq_out = B0, .unsent = STREAM, .send_window = 400000,
			  .received_to = A0, .window_to = A0 + 400000 }, 1);

	printf(failures ? "%d failure(s)\n" : "all passed\n", failures);
	return failures ? 1 : 0;
}
