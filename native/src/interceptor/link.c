/* The process's link to its coordinator: a Unix stream socket carrying the line
 * protocol of docs/protocol.md. The checkpoint thread owns reading; any thread may
 * send, under send_lock with the freeze signal blocked so that a thread is never
 * frozen halfway through a line. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include "internal.h"
#include "../common/us_fmt.h"

void us_futex_wait(volatile int *addr, int val, long timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 };
	us_sc4(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, timeout_ms >= 0 ? &ts : NULL);
}

void us_futex_wake(volatile int *addr)
{
	us_sc3(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff);
}

void us_lock(volatile int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		us_futex_wait(l, 1, -1);
}

void us_unlock(volatile int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
	us_futex_wake(l);
}

int us_link_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = us_strlen(us.coord_path);
	if (n >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= n; i++)
		sa.sun_path[i] = us.coord_path[i];
	int fd = (int)us_sc3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	long r = us_sc3(SYS_connect, fd, &sa, sizeof sa);
	if (r < 0) {
		us_sc1(SYS_close, fd);
		return (int)r;
	}
	return fd;
}

int us_link_send(const char *line)
{
	uint64_t block = 1ull << (US_SIG_FREEZE - 1), old;
	size_t len = us_strlen(line), off = 0;
	long r = 0;

	us_sc4(SYS_rt_sigprocmask, SIG_BLOCK, &block, &old, 8);
	us_lock(&us.send_lock);
	while (off < len) {
		r = us_sc6(SYS_sendto, us.coord_fd, (long)(line + off), (long)(len - off), MSG_NOSIGNAL, 0, 0);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	us_unlock(&us.send_lock);
	us_sc4(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
	return off == len ? 0 : (r < 0 ? (int)r : -EPIPE);
}

/* Reader state: only ever used by one thread at a time (constructor, fork child
 * before its checkpoint thread starts, then the checkpoint thread). */
static char rbuf[4096];
static int rlen;

int us_link_read_line(char *out, int cap)
{
	for (;;) {
		for (int i = 0; i < rlen; i++) {
			if (rbuf[i] != '\n')
				continue;
			int n = i < cap - 1 ? i : cap - 1;
			for (int k = 0; k < n; k++)
				out[k] = rbuf[k];
			out[n] = 0;
			for (int k = i + 1; k < rlen; k++)
				rbuf[k - i - 1] = rbuf[k];
			rlen -= i + 1;
			return n;
		}
		if (rlen == (int)sizeof rbuf)
			rlen = 0;   /* an over-long line is garbage: drop it */
		long r = us_sc3(SYS_read, us.coord_fd, rbuf + rlen, sizeof rbuf - rlen);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			return -1;
		rlen += (int)r;
	}
}

void us_link_reset_reader(void) { rlen = 0; }

int us_link_hello(const char *origin, int vppid)
{
	char line[1024];
	struct us_buf b = { line, 0, sizeof line };
	us_put(&b, "HELLO 1 ");
	us_put_token(&b, us.group);
	us_putc(&b, ' ');
	us_put_token(&b, us.app);
	us_putc(&b, ' ');
	us_puti(&b, us.vpid);
	us_putc(&b, ' ');
	us_puti(&b, vppid);
	us_putc(&b, ' ');
	us_puti(&b, us.exec_count);
	us_putc(&b, ' ');
	us_put(&b, origin);
	us_putc(&b, ' ');
	us_put(&b, us_tracker_name());
	us_putc(&b, '\n');
	if (us_link_send(us_term(&b)) < 0)
		return -1;
	for (;;) {
		int n = us_link_read_line(line, sizeof line);
		if (n < 0)
			return -1;
		if (us_startswith(line, "WELCOME"))
			return 0;
		if (us_startswith(line, "REFUSED")) {
			us_log("refused", line + 7);
			return -1;
		}
		/* The coordinator sends WELCOME first (docs/protocol.md); a line
		 * before it cannot be acted on, but must not vanish unseen. */
		us_log("protocol-error", line);
	}
}

void us_request(const char *what)
{
	char line[64];
	struct us_buf b = { line, 0, sizeof line };

	us_lock(&us.req_lock);
	us.req_granted = 0;
	for (int i = 0; i < (int)sizeof us.pending_req - 1 && what[i]; i++)
		us.pending_req[i] = what[i], us.pending_req[i + 1] = 0;
	us_put(&b, what);
	us_putc(&b, '\n');
	if (us_link_send(us_term(&b)) < 0) {
		us.pending_req[0] = 0;
		us_unlock(&us.req_lock);
		return;   /* no coordinator: carry on unprotected rather than hang the app */
	}
	/* The checkpoint thread sets req_granted on GRANT. Waiting here is safe to
	 * freeze: after a restore the request is re-sent on the new link. */
	while (!__atomic_load_n(&us.req_granted, __ATOMIC_ACQUIRE) && !us.link_dead)
		us_futex_wait(&us.req_granted, 0, 1000);
	us.pending_req[0] = 0;
	us_unlock(&us.req_lock);
}

void us_notify(const char *line)
{
	us_link_send(line);
}
