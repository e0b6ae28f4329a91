/* wl_epoll: an epoll set shared by a parent and its child, with events pending.
 *
 * The parent makes a non-blocking epoll set watching a pipe with bytes queued
 * (level-triggered), an eventfd with a count, and a one-shot eventfd that has
 * already fired (so it is disabled), then forks. The child inherits the set and
 * adds a pipe of its own, with bytes queued. Both also hold BUSY_PIPES pipes
 * with a byte queued in each: their captures peek every one through a
 * descriptor of their own, opened and closed while the other process matches
 * the group's open files, which must not be misled by them. Each prints
 * "epoll N" or "epoll-child N" every 20 ms; on SIGUSR1 each checks, without
 * consuming anything, that the set and every descriptor the child inherited
 * are still one open file with the other process's, that epoll_wait with no
 * timeout reports exactly the three pending events with their data, that the
 * set is still non-blocking and each busy pipe holds its byte, and prints
 * "VERIFY OK epoll|epoll-child". */
#include "wl_common.h"
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

enum { DATA_PIPE = 0x11, DATA_EVENT = 0x22, DATA_ONESHOT = 0x33, DATA_CHILD_PIPE = 0x44 };
enum { BUSY_PIPES = 400 };

static int ep, pipe_fds[2], event_fd, oneshot_fd, child_pipe[2], busy[BUSY_PIPES][2];

static void check_shared(pid_t other, int fd, const char *what)
{
	if (syscall(SYS_kcmp, getpid(), other, KCMP_FILE, fd, fd) != 0)
		wl_fail("%s (descriptor %d) is no longer one open file with %d's", what, fd, (int)other);
}

static void add(int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		wl_fail("epoll_ctl: %s", strerror(errno));
}

static void verify(long iteration, pid_t other)
{
	check_shared(other, ep, "the epoll set");
	check_shared(other, pipe_fds[0], "the watched pipe");
	check_shared(other, event_fd, "the eventfd");
	check_shared(other, oneshot_fd, "the one-shot eventfd");
	for (int i = 0; i < BUSY_PIPES; i++) {
		int queued = -1;
		check_shared(other, busy[i][0], "a busy pipe");
		if (ioctl(busy[i][0], FIONREAD, &queued) != 0 || queued != 1)
			wl_fail("busy pipe %d holds %d bytes, not 1", i, queued);
	}
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0);
	unsigned seen = 0;
	for (int i = 0; i < n; i++) {
		if (!(ev[i].events & EPOLLIN))
			wl_fail("event 0x%x for data 0x%llx", ev[i].events, (unsigned long long)ev[i].data.u64);
		switch (ev[i].data.u64) {
		case DATA_PIPE: seen |= 1; break;
		case DATA_EVENT: seen |= 2; break;
		case DATA_CHILD_PIPE: seen |= 4; break;
		default: wl_fail("unexpected event with data 0x%llx", (unsigned long long)ev[i].data.u64);
		}
	}
	if (n != 3 || seen != 7)
		wl_fail("epoll_wait reported %d events (mask %u), expected the pipe, the eventfd and the child's pipe", n, seen);
	if (!(fcntl(ep, F_GETFL) & O_NONBLOCK))
		wl_fail("the epoll descriptor lost O_NONBLOCK");
	wl_out("VERIFY OK %s iteration=%ld events=%d", wl_role, iteration, n);
}

int main(void)
{
	wl_init("epoll");
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || fcntl(ep, F_SETFL, O_NONBLOCK) != 0)
		wl_fail("epoll_create1: %s", strerror(errno));
	if (pipe(pipe_fds) != 0 || wl_write_all(pipe_fds[1], "ready", 5) != 0)
		wl_fail("pipe: %s", strerror(errno));
	event_fd = eventfd(5, 0);
	oneshot_fd = eventfd(1, 0);
	if (event_fd < 0 || oneshot_fd < 0)
		wl_fail("eventfd: %s", strerror(errno));
	add(pipe_fds[0], EPOLLIN, DATA_PIPE);
	add(event_fd, EPOLLIN, DATA_EVENT);
	add(oneshot_fd, EPOLLIN | EPOLLONESHOT, DATA_ONESHOT);
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0);   /* fires the one-shot item, which stays disabled */
	if (n != 3)
		wl_fail("first epoll_wait: %d events", n);
	for (int i = 0; i < BUSY_PIPES; i++)
		if (pipe(busy[i]) != 0 || wl_write_all(busy[i][1], "b", 1) != 0)
			wl_fail("pipe: %s", strerror(errno));

	pid_t parent = getpid();
	int to_parent[2];
	if (pipe(to_parent) != 0)
		wl_fail("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		wl_reinit_child("epoll-child", parent);
		if (pipe(child_pipe) != 0 || wl_write_all(child_pipe[1], "child", 5) != 0)
			wl_fail("pipe: %s", strerror(errno));
		add(child_pipe[0], EPOLLIN, DATA_CHILD_PIPE);
		wl_write_all(to_parent[1], "!", 1);
	} else {
		char c;
		if (wl_read_full(to_parent[0], &c, 1) != 1)
			wl_fail("the child did not add its pipe");
	}
	close(to_parent[0]);
	close(to_parent[1]);
	pid_t other = child ? child : parent;
	for (long i = 1;; i++) {
		wl_check_ids();
		if (wl_take_verify())
			verify(i, other);
		wl_out("%s %ld", wl_role, i);
		wl_sleep_ms(20);
	}
}
