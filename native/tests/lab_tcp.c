/* lab_tcp: TCP reachability between lab nodes, for the integration tests (hactl lab exec).
 *
 *   lab_tcp listen PORT                 listens on every address of its node, prints
 *                                       "listening PORT", and answers each connection
 *                                       with "hello\n", forever;
 *   lab_tcp connect ADDR PORT SECONDS   one connection attempt, bounded by SECONDS; exits 0
 *                                       and prints "connected" once "hello" is read, else
 *                                       prints why and exits 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_forever(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
		printf("listen %d: %s\n", port, strerror(errno));
		return 1;
	}
	printf("listening %d\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (write(c, "hello\n", 6) != 6)
			perror("write");
		close(c);
	}
}

static int connect_once(const char *addr, int port, int seconds)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		printf("not an IPv4 address: %s\n", addr);
		return 1;
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0 || (connect(s, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)) {
		printf("connect %s:%d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	struct pollfd p = { .fd = s, .events = POLLIN };
	int n = poll(&p, 1, seconds * 1000);
	if (n == 0) {
		printf("connect %s:%d: no answer within %d s\n", addr, port, seconds);
		return 1;
	}
	char buf[8] = "";
	ssize_t got = read(s, buf, sizeof buf - 1);
	if (got != 6 || strcmp(buf, "hello\n") != 0) {
		printf("connect %s:%d: %s\n", addr, port, got < 0 ? strerror(errno) : "no hello");
		return 1;
	}
	printf("connected\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "listen") == 0)
		return listen_forever(atoi(argv[2]));
	if (argc == 5 && strcmp(argv[1], "connect") == 0)
		return connect_once(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: lab_tcp listen PORT | lab_tcp connect ADDR PORT SECONDS\n");
	return 2;
}
