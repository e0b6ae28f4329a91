/* wl_tcp_outside: a TCP connection to a peer outside the group.
 *
 *   wl_tcp_outside server      listens on 127.0.0.1, prints "outside server port N",
 *                              accepts one connection, writes it GREETING, then
 *                              only counts ("server count N");
 *   wl_tcp_outside client N    connects to port N and never reads until verified
 *                              ("client count N").
 * Run in two groups, the client's checkpointed and restored alone, its connection
 * comes back dropped. SIGPIPE is ignored, as a program that handles EPIPE does.
 * On SIGUSR1 the client sends a byte and reads what is there, which must be one
 * of: the connection is live (the send is taken, GREETING is queued); or it is
 * dropped: the send fails with EPIPE at once, and the reads give what is left of
 * GREETING, then the end of the stream, never blocking. It prints "VERIFY OK
 * tcp-outside connection=live|dropped". */
#include "wl_common.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define GREETING "greetings from outside"

static size_t greeting_read;    /* bytes of GREETING taken once the connection dropped */

static void verify(int fd)
{
	char buf[64];
	ssize_t n = send(fd, "x", 1, MSG_DONTWAIT);
	if (n == 1) {
		if (recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) != (ssize_t)strlen(GREETING) ||
		    memcmp(buf, GREETING, strlen(GREETING)))
			wl_fail("a live connection without the greeting queued");
		wl_out("VERIFY OK tcp-outside connection=live pid=%d", (int)wl_pid0);
		return;
	}
	if (n >= 0 || errno != EPIPE)
		wl_fail("writing to a dropped connection: %s, not EPIPE", n < 0 ? strerror(errno) : "accepted");
	for (;;) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0)
			wl_fail("reading a dropped connection: %s, not the end of the stream", strerror(errno));
		if (greeting_read + (size_t)n > strlen(GREETING) || memcmp(buf, GREETING + greeting_read, (size_t)n))
			wl_fail("a dropped connection gave bytes that were never sent");
		greeting_read += (size_t)n;
	}
	if (greeting_read != strlen(GREETING))
		wl_fail("a dropped connection lost %zu bytes that had arrived", strlen(GREETING) - greeting_read);
	wl_out("VERIFY OK tcp-outside connection=dropped pid=%d", (int)wl_pid0);
}

int main(int argc, char **argv)
{
	int server = argc > 1 && !strcmp(argv[1], "server");
	wl_init(server ? "tcp-outside-server" : "tcp-outside");
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd;
	if (server) {
		socklen_t len = sizeof addr;
		int listener = socket(AF_INET, SOCK_STREAM, 0);
		if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
		    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
			wl_fail("listen: %s", strerror(errno));
		wl_out("outside server port %u", ntohs(addr.sin_port));
		if ((fd = accept(listener, NULL, NULL)) < 0 || wl_write_all(fd, GREETING, strlen(GREETING)) != 0)
			wl_fail("accept: %s", strerror(errno));
	} else {
		addr.sin_port = htons((uint16_t)atoi(argc > 2 ? argv[2] : "0"));
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
			wl_fail("connect to port %u: %s", ntohs(addr.sin_port), strerror(errno));
	}
	for (unsigned long long iter = 1;; iter++) {
		wl_check_ids();
		if (wl_take_verify()) {
			if (server)
				wl_out("VERIFY OK tcp-outside-server pid=%d", (int)wl_pid0);
			else
				verify(fd);
		}
		wl_out("%s count %llu", server ? "server" : "client", iter);
		wl_sleep_ms(20);
	}
}
