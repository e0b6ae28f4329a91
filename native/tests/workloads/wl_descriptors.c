/* wl_descriptors: one process holding a descriptor of each kind a restore makes
 * again, each in a state it can check without changing it: a regular file at an
 * offset, a directory, /dev/null, a pipe and a Unix stream socket pair with data
 * queued, a Unix datagram socket pair with two datagrams queued, a listening Unix
 * socket, a listening TCP socket and a
 * bound UDP socket, an eventfd with a count, an armed timerfd, a signalfd, and an
 * epoll set watching the pipe and the eventfd.
 *
 * It prints "count <iteration>" every 20 ms. On SIGUSR1 it checks every
 * descriptor and prints "VERIFY OK descriptors ...". Usage: wl_descriptors DIR
 * (DIR holds the Unix socket's name). */
#include "wl_common.h"
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#define FILE_POS 3
#define EVENT_COUNT 7
#define TIMER_INTERVAL 3600

static int file_fd, dir_fd, null_fd, pipe_fds[2], stream[2], dgram[2], unix_listener, tcp_listener, udp_fd;
static int event_fd, timer_fd, signal_fd, epoll_fd;
static struct sockaddr_un unix_name;
static struct sockaddr_in tcp_name, udp_name;

static void make_descriptors(const char *dir)
{
	if ((file_fd = open("/proc/self/exe", O_RDONLY)) < 0 || lseek(file_fd, FILE_POS, SEEK_SET) != FILE_POS)
		wl_fail("the file: %s", strerror(errno));
	if ((dir_fd = open("/", O_RDONLY | O_DIRECTORY)) < 0 || (null_fd = open("/dev/null", O_WRONLY)) < 0)
		wl_fail("the directory or /dev/null: %s", strerror(errno));
	if (pipe2(pipe_fds, O_NONBLOCK) != 0 || wl_write_all(pipe_fds[1], "pipe!", 5) != 0)
		wl_fail("the pipe: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream) != 0 || wl_write_all(stream[0], "stream", 6) != 0)
		wl_fail("the stream pair: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) != 0 || send(dgram[0], "dgram", 5, 0) != 5 || send(dgram[0], "", 0, 0) != 0)
		wl_fail("the datagram pair: %s", strerror(errno));

	unix_name.sun_family = AF_UNIX;
	snprintf(unix_name.sun_path, sizeof unix_name.sun_path, "%s/wl_descriptors.sock", dir);
	unlink(unix_name.sun_path);
	unix_listener = socket(AF_UNIX, SOCK_STREAM, 0);
	if (unix_listener < 0 || bind(unix_listener, (struct sockaddr *)&unix_name, sizeof unix_name) != 0 ||
	    listen(unix_listener, 8) != 0)
		wl_fail("the Unix listener at %s: %s", unix_name.sun_path, strerror(errno));

	socklen_t len = sizeof tcp_name;
	tcp_name = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	tcp_listener = socket(AF_INET, SOCK_STREAM, 0);
	if (tcp_listener < 0 || bind(tcp_listener, (struct sockaddr *)&tcp_name, sizeof tcp_name) != 0 ||
	    listen(tcp_listener, 8) != 0 || getsockname(tcp_listener, (struct sockaddr *)&tcp_name, &len) != 0)
		wl_fail("the TCP listener: %s", strerror(errno));
	len = sizeof udp_name;
	udp_name = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	udp_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (udp_fd < 0 || bind(udp_fd, (struct sockaddr *)&udp_name, sizeof udp_name) != 0 ||
	    getsockname(udp_fd, (struct sockaddr *)&udp_name, &len) != 0)
		wl_fail("the UDP socket: %s", strerror(errno));

	if ((event_fd = eventfd(EVENT_COUNT, EFD_SEMAPHORE | EFD_NONBLOCK)) < 0)
		wl_fail("eventfd: %s", strerror(errno));
	struct itimerspec its = { { TIMER_INTERVAL, 0 }, { TIMER_INTERVAL, 0 } };
	if ((timer_fd = timerfd_create(CLOCK_MONOTONIC, 0)) < 0 || timerfd_settime(timer_fd, 0, &its, NULL) != 0)
		wl_fail("timerfd: %s", strerror(errno));
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	if ((signal_fd = signalfd(-1, &set, SFD_NONBLOCK)) < 0)
		wl_fail("signalfd: %s", strerror(errno));
	struct epoll_event on_pipe = { .events = EPOLLIN, .data.u64 = 42 }, on_event = { .events = EPOLLIN, .data.u64 = 43 };
	if ((epoll_fd = epoll_create1(0)) < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pipe_fds[0], &on_pipe) != 0 ||
	    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, event_fd, &on_event) != 0)
		wl_fail("epoll: %s", strerror(errno));
}

/* The value after key in /proc/self/fdinfo/<fd>, in base. */
static unsigned long long fdinfo(int fd, const char *key, int base)
{
	char path[64], text[4096];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	int h = open(path, O_RDONLY);
	ssize_t n = h < 0 ? -1 : read(h, text, sizeof text - 1);
	if (h >= 0)
		close(h);
	text[n > 0 ? n : 0] = 0;
	const char *p = strstr(text, key);
	if (!p)
		wl_fail("no %s in %s", key, path);
	return strtoull(p + strlen(key), NULL, base);
}

static void expect_mode(int fd, unsigned type, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != type)
		wl_fail("%s (fd %d) is not what it was", what, fd);
}

/* Connects to a listening socket and takes the connection back: it still listens. */
static void expect_listening(int listener, int family, const void *name, socklen_t len, const char *what)
{
	int c = socket(family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, name, len) != 0)
		wl_fail("cannot connect to %s: %s", what, strerror(errno));
	int a = accept(listener, NULL, NULL);
	if (a < 0)
		wl_fail("%s accepts nothing: %s", what, strerror(errno));
	close(a);
	close(c);
}

static void verify(void)
{
	char buf[16];
	int queued = 0;

	expect_mode(file_fd, S_IFREG, "the file");
	if (lseek(file_fd, 0, SEEK_CUR) != FILE_POS)
		wl_fail("the file's offset moved");
	expect_mode(dir_fd, S_IFDIR, "the directory");
	struct stat st;
	if (fstat(null_fd, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		wl_fail("/dev/null is not /dev/null");

	if (ioctl(pipe_fds[0], FIONREAD, &queued) != 0 || queued != 5 || !(fcntl(pipe_fds[0], F_GETFL) & O_NONBLOCK))
		wl_fail("the pipe holds %d bytes, or lost O_NONBLOCK", queued);
	if (recv(stream[1], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) != 6 || memcmp(buf, "stream", 6))
		wl_fail("the stream pair lost its queued bytes");
	/* the two queued datagrams, each whole, then nothing; queued again for the next time */
	if (recv(dgram[1], buf, sizeof buf, MSG_DONTWAIT) != 5 || memcmp(buf, "dgram", 5) ||
	    recv(dgram[1], buf, sizeof buf, MSG_DONTWAIT) != 0 || recv(dgram[1], buf, sizeof buf, MSG_DONTWAIT) != -1)
		wl_fail("the datagram pair lost its queued datagrams or their boundaries");
	if (send(dgram[0], "dgram", 5, 0) != 5 || send(dgram[0], "", 0, 0) != 0)
		wl_fail("the datagram pair is no longer a pair");

	expect_listening(unix_listener, AF_UNIX, &unix_name, sizeof unix_name, "the Unix listener");
	expect_listening(tcp_listener, AF_INET, &tcp_name, sizeof tcp_name, "the TCP listener");
	struct sockaddr_in now;
	socklen_t len = sizeof now;
	if (getsockname(udp_fd, (struct sockaddr *)&now, &len) != 0 || now.sin_port != udp_name.sin_port ||
	    sendto(udp_fd, "udp", 3, 0, (struct sockaddr *)&udp_name, sizeof udp_name) != 3 ||
	    recv(udp_fd, buf, sizeof buf, 0) != 3)
		wl_fail("the UDP socket is not bound where it was");

	if (fdinfo(event_fd, "eventfd-count:", 16) != EVENT_COUNT || !(fcntl(event_fd, F_GETFL) & O_NONBLOCK))
		wl_fail("the eventfd lost its count or O_NONBLOCK");
	struct itimerspec its;
	if (timerfd_gettime(timer_fd, &its) != 0 || its.it_interval.tv_sec != TIMER_INTERVAL ||
	    (!its.it_value.tv_sec && !its.it_value.tv_nsec))
		wl_fail("the timerfd is not armed as it was");
	if (fdinfo(signal_fd, "sigmask:", 16) != 1ull << (SIGUSR2 - 1))
		wl_fail("the signalfd's mask changed");
	struct epoll_event ev[4];
	int n = epoll_wait(epoll_fd, ev, 4, 0);
	uint64_t seen = 0;
	for (int i = 0; i < n; i++)
		seen += ev[i].data.u64;
	if (n != 2 || seen != 42 + 43)
		wl_fail("epoll reports %d ready targets, not the pipe and the eventfd", n);

	wl_out("VERIFY OK descriptors pid=%d ppid=%d tcp=%d udp=%d", (int)wl_pid0, (int)wl_ppid0,
	       ntohs(tcp_name.sin_port), ntohs(udp_name.sin_port));
}

int main(int argc, char **argv)
{
	wl_init("descriptors");
	make_descriptors(argc > 1 ? argv[1] : "/tmp");
	wl_out("descriptors ready pid %d", (int)wl_pid0);
	wl_count_forever(verify, 20);
}
