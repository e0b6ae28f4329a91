/* wl_records: record boundaries across Unix sockets between two processes.
 *
 * The parent forks a child; three channels, each with records queued:
 *   - a SOCK_SEQPACKET socket pair, child to parent;
 *   - a SOCK_SEQPACKET connection to a listening socket named DIR/wl_records.sock,
 *     accepted by the parent (which keeps listening), parent to child;
 *   - a SOCK_DGRAM socket pair, child to parent.
 * Writers send 20 records per 20 ms tick (until the queue is full), readers take
 * 10, so the queues fill up within a second and stay full, and a reader has gone
 * through everything that was queued at a checkpoint some 20 ticks later. Record n has its own length (0 to 700 bytes: every
 * seventh is empty) and contents: each read must return exactly one whole record,
 * the next one. "parent|child count N" every tick; SIGUSR1 prints "VERIFY OK records-parent|
 * records-child" after checking that each channel still delivers. Usage:
 * wl_records DIR. */
#include "wl_common.h"
#include <sys/socket.h>
#include <sys/un.h>

#define MAX_RECORD 700
#define WRITE_PER_TICK 20
#define READ_PER_TICK 10

struct channel {
	const char *name;
	int fd;
	uint32_t tag;
	uint64_t next;          /* writer: next record to send; reader: next expected */
	uint64_t verified_at;
};

static size_t record_len(uint64_t n)
{
	return n % 7 == 3 ? 0 : 1 + wl_mix(n) % MAX_RECORD;
}

static void record_fill(unsigned char *b, uint64_t n, uint32_t tag)
{
	uint64_t s = wl_mix(n ^ (uint64_t)tag << 48);
	for (size_t i = 0; i < record_len(n); i++)
		b[i] = (unsigned char)(wl_mix(s + i) >> 32);
}

static void write_records(struct channel *c)
{
	unsigned char b[MAX_RECORD];
	for (int i = 0; i < WRITE_PER_TICK; i++) {
		record_fill(b, c->next, c->tag);
		ssize_t n = send(c->fd, b, record_len(c->next), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n != (ssize_t)record_len(c->next))
			wl_fail("%s: send of record %llu: %s", c->name, (unsigned long long)c->next, n < 0 ? strerror(errno) : "short");
		c->next++;
	}
}

static void read_records(struct channel *c)
{
	unsigned char b[MAX_RECORD + 1], want[MAX_RECORD];
	for (int i = 0; i < READ_PER_TICK; i++) {
		ssize_t n = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0)
			wl_fail("%s: recv: %s", c->name, strerror(errno));
		record_fill(want, c->next, c->tag);
		if ((size_t)n != record_len(c->next) || memcmp(b, want, (size_t)n))
			wl_fail("%s: record %llu is %zd bytes, expected %zu%s", c->name, (unsigned long long)c->next, n,
				record_len(c->next), (size_t)n == record_len(c->next) ? " (contents differ)" : "");
		c->next++;
	}
}

static void verify_channel(struct channel *c)
{
	if (c->next <= c->verified_at)
		wl_fail("%s: nothing moved since the last verification (record %llu)", c->name, (unsigned long long)c->next);
	c->verified_at = c->next;
}

int main(int argc, char **argv)
{
	wl_init("records-parent");
	struct sockaddr_un name = { .sun_family = AF_UNIX };
	snprintf(name.sun_path, sizeof name.sun_path, "%s/wl_records.sock", argc > 1 ? argv[1] : "/tmp");
	unlink(name.sun_path);
	int pair[2], dgram[2], listener = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) != 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) != 0)
		wl_fail("socketpair: %s", strerror(errno));
	if (listener < 0 || bind(listener, (struct sockaddr *)&name, sizeof name) != 0 || listen(listener, 4) != 0)
		wl_fail("the seqpacket listener at %s: %s", name.sun_path, strerror(errno));

	pid_t parent = getpid(), child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	struct channel pair_ch = { "seqpacket pair", 0, 1, 0, 0 };
	struct channel conn_ch = { "seqpacket connection", 0, 2, 0, 0 };
	struct channel dgram_ch = { "datagram pair", 0, 3, 0, 0 };
	int is_parent = child != 0;
	if (!is_parent) {
		wl_reinit_child("records-child", parent);
		close(listener);
		close(pair[0]);
		close(dgram[0]);
		pair_ch.fd = pair[1];
		dgram_ch.fd = dgram[1];
		conn_ch.fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		if (conn_ch.fd < 0 || connect(conn_ch.fd, (struct sockaddr *)&name, sizeof name) != 0)
			wl_fail("connect to %s: %s", name.sun_path, strerror(errno));
	} else {
		close(pair[1]);
		close(dgram[1]);
		pair_ch.fd = pair[0];
		dgram_ch.fd = dgram[0];
		if ((conn_ch.fd = accept(listener, NULL, NULL)) < 0)
			wl_fail("accept: %s", strerror(errno));
		wl_out("records ready pid %d", (int)wl_pid0);
	}

	for (unsigned long long iter = 1;; iter++) {
		wl_check_ids();
		if (is_parent) {
			read_records(&pair_ch);
			read_records(&dgram_ch);
			write_records(&conn_ch);
		} else {
			write_records(&pair_ch);
			write_records(&dgram_ch);
			read_records(&conn_ch);
		}
		if (wl_take_verify()) {
			verify_channel(&pair_ch);
			verify_channel(&conn_ch);
			verify_channel(&dgram_ch);
			if (is_parent) {        /* the listener still takes connections */
				int c = socket(AF_UNIX, SOCK_SEQPACKET, 0), a;
				if (c < 0 || connect(c, (struct sockaddr *)&name, sizeof name) != 0 ||
				    (a = accept(listener, NULL, NULL)) < 0)
					wl_fail("the seqpacket listener no longer accepts: %s", strerror(errno));
				close(a);
				close(c);
			}
			wl_out("VERIFY OK %s pid=%d pair=%llu connection=%llu dgram=%llu", wl_role, (int)wl_pid0,
			       (unsigned long long)pair_ch.next, (unsigned long long)conn_ch.next,
			       (unsigned long long)dgram_ch.next);
		}
		wl_out("%s count %llu", is_parent ? "parent" : "child", iter);
		wl_sleep_ms(20);
	}
}
