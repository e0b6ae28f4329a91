/* wl_service LABEL [options]: a small service for the availability tests.
 * Prints "LABEL count N" every 100 ms, N growing by exactly one per line
 * (clients add " pongs P reconnects R"). Options:
 *   --tcp PORT          listen on 127.0.0.1:PORT; "GET ..." gets an HTTP 200
 *                       and the connection is closed, "ping\n" gets "pong N\n"
 *   --listen-after MS   start listening only after MS milliseconds
 *   --connect PORT      a client: connect to 127.0.0.1:PORT at start (FAIL
 *                       and exit 3 if nothing listens: the launch order was
 *                       not kept), then send "ping" every tick; a dropped
 *                       connection is made again
 *   --ready-file PATH   create PATH once listening or connected
 *   --hang-file PATH    when PATH appears: remove it, print "LABEL hang" and
 *                       deadlock (a mutex locked twice): alive, but silent
 *   --crash-file PATH   while PATH exists: print "LABEL crash" and abort()
 *   --disk-waits        a thread that is in uninterruptible sleep (D) nearly
 *                       all the time, in short waits one after another, as
 *                       a thread of a busy database waits on its disk
 *   --stuck-file PATH   when PATH appears: print "LABEL stuck" and stay in
 *                       one uninterruptible sleep until PATH is removed, then
 *                       print "LABEL unstuck"
 * On SIGUSR1: "VERIFY OK service-LABEL count=N ...". */
#include "wl_common.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAXCONN 32
#define TICK_MS 100

static const char *label = "service";
static int tcp_port, connect_port;
static long listen_after_ms;
static const char *ready_file, *hang_file, *crash_file, *stuck_file;
static int disk_waits;

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int tcp_listen(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = loopback(port);
	if (s < 0)
		wl_fail("socket: %s", strerror(errno));
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0)
		wl_fail("listen on port %d: %s", port, strerror(errno));
	return s;
}

static int tcp_connect(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = loopback(port);
	if (s < 0)
		wl_fail("socket: %s", strerror(errno));
	int r;
	do
		r = connect(s, (struct sockaddr *)&a, sizeof a);
	while (r != 0 && errno == EINTR);
	if (r != 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		wl_fail("create %s: %s", path, strerror(errno));
	close(fd);
}

static void deadlock(void)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&m);
	pthread_mutex_lock(&m);         /* a default mutex does not notice: blocks forever */
	wl_fail("the deadlock ended");
}

/* A vfork parent waits for its child in uninterruptible sleep (state D), and is
 * not switched out until the child exits: a wait in D as long as the child wants,
 * with no disk needed. The child shares our memory and runs on its own stack. */
static int nap_20ms(void *arg)
{
	(void)arg;
	nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	return 0;
}

static int nap_while_stuck_file(void *arg)
{
	(void)arg;
	while (access(stuck_file, F_OK) == 0)
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	return 0;
}

static void wait_in_d(int (*child)(void *))
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	pid_t pid = clone(child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	if (pid < 0)
		wl_fail("clone(CLONE_VFORK): %s", strerror(errno));
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void *disk_waiter(void *arg)
{
	(void)arg;
	for (;;)
		wait_in_d(nap_20ms);
	return NULL;
}

/* Answers one request on a server connection; returns 0 to keep it open. */
static int serve(int fd, uint64_t n)
{
	char req[1024], resp[512];
	ssize_t got = read(fd, req, sizeof req - 1);
	if (got < 0 && errno == EINTR)
		return 0;
	if (got <= 0)
		return -1;
	req[got] = 0;
	if (!strncmp(req, "GET ", 4)) {
		char body[128];
		int blen = snprintf(body, sizeof body, "%s count %llu\n", label, (unsigned long long)n);
		int len = snprintf(resp, sizeof resp,
				   "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
				   "Connection: close\r\n\r\n%s", blen, body);
		(void)wl_write_all(fd, resp, (size_t)len);
		return -1;
	}
	int len = snprintf(resp, sizeof resp, "pong %llu\n", (unsigned long long)n);
	return wl_write_all(fd, resp, (size_t)len) == 0 ? 0 : -1;
}

/* Client: one ping and its pong; returns 1 for a pong, 0 for none, -1 when the connection is gone. */
static int ping(int fd)
{
	if (wl_write_all(fd, "ping\n", 5) != 0)
		return -1;
	struct pollfd p = { fd, POLLIN, 0 };
	int r;
	do
		r = poll(&p, 1, 500);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return 0;
	char buf[128];
	ssize_t got;
	do
		got = read(fd, buf, sizeof buf);
	while (got < 0 && errno == EINTR);
	if (got <= 0)
		return -1;
	return !strncmp(buf, "pong", 4);
}

static void parse(int argc, char **argv)
{
	if (argc < 2)
		wl_fail("usage: wl_service LABEL [--tcp PORT] [--listen-after MS] [--connect PORT] "
			"[--ready-file PATH] [--hang-file PATH] [--crash-file PATH] [--disk-waits] [--stuck-file PATH]");
	label = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(opt, "--disk-waits")) {
			disk_waits = 1;
			continue;
		}
		if (!val)
			wl_fail("%s needs a value", opt);
		i++;
		if (!strcmp(opt, "--tcp"))
			tcp_port = atoi(val);
		else if (!strcmp(opt, "--listen-after"))
			listen_after_ms = atol(val);
		else if (!strcmp(opt, "--connect"))
			connect_port = atoi(val);
		else if (!strcmp(opt, "--ready-file"))
			ready_file = val;
		else if (!strcmp(opt, "--hang-file"))
			hang_file = val;
		else if (!strcmp(opt, "--crash-file"))
			crash_file = val;
		else if (!strcmp(opt, "--stuck-file"))
			stuck_file = val;
		else
			wl_fail("unknown option %s", opt);
	}
}

int main(int argc, char **argv)
{
	char role[80];
	parse(argc, argv);
	snprintf(role, sizeof role, "service-%s", label);
	wl_init(role);
	signal(SIGPIPE, SIG_IGN);

	int lfd = -1, cfd = -1, conns[MAXCONN], nconns = 0;
	uint64_t n = 0, pongs = 0, reconnects = 0;
	long listen_at = now_ms() + listen_after_ms;

	if (connect_port) {
		cfd = tcp_connect(connect_port);
		if (cfd < 0)
			wl_fail("cannot connect to the server on port %d: %s (was the launch order kept?)",
				connect_port, strerror(errno));
		if (ready_file)
			touch(ready_file);
	}
	if (disk_waits) {
		pthread_t t;
		if (pthread_create(&t, NULL, disk_waiter, NULL))
			wl_fail("cannot start the disk-wait thread");
	}
	wl_out("%s started pid %d ppid %d", label, (int)wl_pid0, (int)wl_ppid0);

	for (;;) {
		long tick_end = now_ms() + TICK_MS;
		wl_check_ids();
		if (wl_take_verify())
			wl_out("VERIFY OK %s count=%llu pongs=%llu reconnects=%llu pid=%d ppid=%d", role,
			       (unsigned long long)n, (unsigned long long)pongs, (unsigned long long)reconnects,
			       (int)wl_pid0, (int)wl_ppid0);
		if (hang_file && access(hang_file, F_OK) == 0) {
			unlink(hang_file);
			wl_out("%s hang", label);
			deadlock();
		}
		if (stuck_file && access(stuck_file, F_OK) == 0) {
			wl_out("%s stuck", label);
			wait_in_d(nap_while_stuck_file);
			wl_out("%s unstuck", label);
		}
		if (crash_file && access(crash_file, F_OK) == 0) {
			wl_out("%s crash", label);
			abort();
		}
		if (tcp_port && lfd < 0 && now_ms() >= listen_at) {
			lfd = tcp_listen(tcp_port);
			wl_out("%s listening on port %d", label, tcp_port);
			if (ready_file)
				touch(ready_file);
		}

		n++;
		if (connect_port) {
			if (cfd < 0 && (cfd = tcp_connect(connect_port)) >= 0)
				reconnects++;
			if (cfd >= 0) {
				int r = ping(cfd);
				if (r < 0) {
					close(cfd);
					cfd = -1;
				} else {
					pongs += (uint64_t)r;
				}
			}
			wl_out("%s count %llu pongs %llu reconnects %llu", label, (unsigned long long)n,
			       (unsigned long long)pongs, (unsigned long long)reconnects);
		} else {
			wl_out("%s count %llu", label, (unsigned long long)n);
		}

		/* Serve until the tick is over. */
		for (long left; (left = tick_end - now_ms()) > 0;) {
			struct pollfd p[MAXCONN + 1];
			int np = 0;
			if (lfd >= 0)
				p[np++] = (struct pollfd){ lfd, POLLIN, 0 };
			for (int i = 0; i < nconns; i++)
				p[np++] = (struct pollfd){ conns[i], POLLIN, 0 };
			int r = poll(p, (nfds_t)np, (int)left);
			if (r < 0 && errno == EINTR) {
				if (wl_verify_requested)
					break;
				continue;
			}
			if (r <= 0)
				continue;
			int base = lfd >= 0 ? 1 : 0, keep = 0;
			for (int i = 0; i < nconns; i++) {
				if (p[base + i].revents && serve(conns[i], n) != 0) {
					close(conns[i]);
					continue;
				}
				conns[keep++] = conns[i];
			}
			nconns = keep;
			if (lfd >= 0 && (p[0].revents & POLLIN)) {
				int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0 && nconns < MAXCONN)
					conns[nconns++] = c;
				else if (c >= 0)
					close(c);
			}
		}
	}
}
