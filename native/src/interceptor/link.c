/* The process's link to its coordinator: a Unix stream socket carrying the line
 * protocol of docs/protocol.md. The checkpoint thread owns reading; any thread may
 * send, under send_lock with the freeze signal blocked so that a thread is never
 * frozen halfway through a line.
 *
 * The link's descriptor lives at a high number, out of the way of programs that
 * close what they did not open (wrappers.c refuses them ours); a descriptor closed
 * anyway (a raw close_range) is noticed by its inode, never written to, and the
 * checkpoint thread makes a new link. A coordinator that does not answer at all
 * (stopped, stalled, gone) holds a request or a registration for at most
 * US_LINK_PATIENCE_MS of silence: the process then goes on unregistered, and
 * registers once the coordinator is back. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

long us_now_ms(void)
{
	struct timespec ts;
	us_sc2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Where the interceptor's own descriptors go: just below the soft descriptor
 * limit (at most 1024, so that no process grows a huge descriptor table). */
int us_fd_base(void)
{
	struct rlimit rl;
	uint64_t cur = 1024;
	if (us_sc4(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur < cur)
		cur = rl.rlim_cur;
	return cur >= 64 ? (int)cur - 32 : (int)cur / 2 > 3 ? (int)cur / 2 : 3;
}

int us_fd_move_high(int fd)
{
	if (fd < 0)
		return fd;
	int high = (int)us_sc3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, us_fd_base());
	if (high < 0)
		return fd;   /* no room up there: where it is still works */
	us_sc1(SYS_close, fd);
	return high;
}

uint64_t us_fd_inode(int fd)
{
	struct stat st;
	return fd >= 0 && us_sc2(SYS_fstat, fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

void us_link_set(int fd)
{
	us.coord_fd = fd;
	us.coord_ino = us_fd_inode(fd);
}

int us_link_ok(void)
{
	return us.coord_fd >= 0 && us.coord_ino && us_fd_inode(us.coord_fd) == us.coord_ino;
}

void us_link_close(void)
{
	if (us_link_ok())
		us_sc1(SYS_close, us.coord_fd);
	us.coord_fd = -1;
	us.coord_ino = 0;
}

/* Anyone can listen on an abstract name: whoever listens there must be root, or
 * the owner of the directory the member socket is in (the agent's user), when this
 * process can still see it. */
static int agent_listens(int fd)
{
	struct ucred peer;
	unsigned int len = sizeof peer;
	char dir[US_PATH_MAX];
	struct stat st;
	size_t n = 0, slash = 0;
	if (us_sc5(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0)
		return 0;
	if (peer.uid == 0)
		return 1;
	for (; us.coord_path[n] && n < sizeof dir - 1; n++)
		if ((dir[n] = us.coord_path[n]) == '/')
			slash = n;
	dir[slash ? slash : 1] = 0;
	return us_sc4(SYS_newfstatat, AT_FDCWD, dir, &st, 0) == 0 && peer.uid == st.st_uid;
}

static int connect_to(const struct sockaddr_un *sa, unsigned int len)
{
	/* Non-blocking: a stalled coordinator's full backlog fails the connect (EAGAIN)
	 * instead of holding the process; the link is made again later. */
	int fd = (int)us_sc3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fd;
	long r = us_sc3(SYS_connect, fd, sa, len);
	if (r < 0) {
		us_sc1(SYS_close, fd);
		return (int)r;
	}
	us_sc3(SYS_fcntl, fd, F_SETFL, 0);   /* blocking again */
	return fd;
}

int us_link_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = us_strlen(us.coord_path);
	if (n >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= n; i++)
		sa.sun_path[i] = us.coord_path[i];
	int fd = connect_to(&sa, sizeof sa);
	if (fd == -EACCES && n < sizeof sa.sun_path - 1) {
		/* A process that dropped its privileges cannot reach the agent's private
		 * directory: the agent listens on the same name in the abstract namespace
		 * too, and admits it there if it runs in one of its groups. */
		sa.sun_path[0] = 0;
		for (size_t i = 0; i < n; i++)
			sa.sun_path[i + 1] = us.coord_path[i];
		fd = connect_to(&sa, (unsigned int)(__builtin_offsetof(struct sockaddr_un, sun_path) + 1 + n));
		if (fd >= 0 && !agent_listens(fd)) {
			us_sc1(SYS_close, fd);
			us_log("warning", "the abstract member socket is not the agent's; not connecting");
			fd = -EACCES;
		}
	}
	return us_fd_move_high(fd);
}

int us_link_send(const char *line)
{
	uint64_t block = 1ull << (US_SIG_FREEZE - 1), old;
	size_t len = us_strlen(line), off = 0;
	long r = 0;

	us_sc4(SYS_rt_sigprocmask, SIG_BLOCK, &block, &old, 8);
	us_lock(&us.send_lock);
	if (!us_link_ok())
		r = -EBADF, len = 1;   /* never write into a descriptor that is no longer ours */
	while (off < len && r == 0) {
		r = us_sc6(SYS_sendto, us.coord_fd, (long)(line + off), (long)(len - off), MSG_NOSIGNAL, 0, 0);
		if (r == -EINTR) {
			r = 0;
			continue;
		}
		if (r <= 0)
			break;
		off += (size_t)r;
		r = 0;
	}
	us_unlock(&us.send_lock);
	us_sc4(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
	return off == len ? 0 : (r < 0 ? (int)r : -EPIPE);
}

/* Reader state: only ever used by one thread at a time (constructor, fork child
 * before its checkpoint thread starts, then the checkpoint thread).
 *
 * Descriptors the coordinator sends (SCM_RIGHTS, with WRITE) go out with one whole
 * line, in one sendmsg. A recvmsg returns the bytes of earlier sends without
 * descriptors in front of theirs and stops after theirs: so they belong to the last
 * line that starts in the bytes they came with, not to the first (an ABORT read in
 * the same recvmsg as the WRITE after it must not take the WRITE's files). Each
 * batch remembers where its line starts in rbuf. Two can wait at once: a batch
 * whose line was cut by a full rbuf, and the next one, which comes with the rest of
 * that line. Whatever the caller does not take is closed when the next line is read. */
#define LINK_MAX_FDS 2
#define LINK_BATCHES 2
struct fd_batch {
	int fds[LINK_MAX_FDS], n;
	int at;   /* where the line the descriptors came with starts in rbuf */
};
static char rbuf[4096];
static int rlen;
static struct fd_batch batches[LINK_BATCHES];
static int nbatches;
static int line_fds[LINK_MAX_FDS], nline_fds;

static void close_fds(int *fds, int *n)
{
	for (int i = 0; i < *n; i++)
		us_sc1(SYS_close, fds[i]);
	*n = 0;
}

static void drop_first_batch(void)
{
	for (int i = 1; i < nbatches; i++)
		batches[i - 1] = batches[i];
	nbatches--;
}

static void close_batches(void)
{
	while (nbatches) {
		close_fds(batches[0].fds, &batches[0].n);
		drop_first_batch();
	}
}

int us_link_take_fds(int *out, int cap)
{
	int n = nline_fds <= cap ? nline_fds : 0;
	for (int i = 0; i < n; i++)
		out[i] = line_fds[i];
	if (n)
		nline_fds = 0;
	return nline_fds ? -1 : n;     /* more than the caller can take: closed at the next read */
}

/* One recvmsg into rbuf: bytes, and the descriptors that came with them, moved
 * up among ours (they arrive at the lowest free numbers, which are the
 * application's). */
static long receive(void)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(LINK_MAX_FDS * sizeof(int))];
	} control;
	struct iovec iov = { rbuf + rlen, sizeof rbuf - (size_t)rlen };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control };
	long r = us_sc3(SYS_recvmsg, us.coord_fd, &msg, MSG_CMSG_CLOEXEC);
	if (r <= 0 || msg.msg_controllen < sizeof(struct cmsghdr))
		return r;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);   /* the coordinator sends one, or none */
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		const char *data = (const char *)CMSG_DATA(c);
		if (nbatches == LINK_BATCHES) {   /* never claimed: a line dropped as garbage */
			close_fds(batches[0].fds, &batches[0].n);
			drop_first_batch();
		}
		struct fd_batch *b = &batches[nbatches++];
		b->n = 0;
		for (int i = 0; i < n; i++) {
			int fd;
			__builtin_memcpy(&fd, data + i * sizeof fd, sizeof fd);
			if (i < LINK_MAX_FDS)
				b->fds[b->n++] = us_fd_move_high(fd);
			else
				us_sc1(SYS_close, fd);
		}
		/* the last line that starts in these bytes (a newline as their last byte ends it) */
		b->at = rlen;
		for (int k = rlen; k < rlen + (int)r - 1; k++)
			if (rbuf[k] == '\n')
				b->at = k + 1;
	}
	return r;
}

int us_link_read_line(char *out, int cap)
{
	return us_link_read_line_within(out, cap, -1);
}

int us_link_read_line_within(char *out, int cap, long timeout_ms)
{
	close_fds(line_fds, &nline_fds);   /* the previous line's, not taken */
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
			while (nbatches && batches[0].at <= i) {
				close_fds(line_fds, &nline_fds);   /* two batches on one line: the last counts */
				for (int k = 0; k < batches[0].n; k++)
					line_fds[k] = batches[0].fds[k];
				nline_fds = batches[0].n;
				drop_first_batch();
			}
			for (int k = 0; k < nbatches; k++)
				batches[k].at -= i + 1;
			return n;
		}
		if (rlen == (int)sizeof rbuf) {
			rlen = 0;   /* an over-long line is garbage: drop it */
			close_batches();
		}
		if (!us_link_ok())
			return -1;
		if (timeout_ms >= 0) {
			struct pollfd pfd = { us.coord_fd, POLLIN, 0 };
			struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 };
			long p = us_sc5(SYS_ppoll, &pfd, 1, &ts, NULL, 8);
			if (p == -EINTR)
				continue;
			if (p == 0)
				return US_LINK_TIMEOUT;
		}
		long r = receive();
		if (r == -EINTR)
			continue;
		if (r <= 0)
			return -1;
		rlen += (int)r;
	}
}

void us_link_reset_reader(void)
{
	rlen = 0;
	close_batches();
	close_fds(line_fds, &nline_fds);
}

int us_link_send_hello(const char *origin, int vppid)
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
	if (us.held)
		us_put(&b, " held");
	us_putc(&b, '\n');
	us.registered = 0;
	return us_link_send(us_term(&b)) < 0 ? -1 : 0;
}

int us_link_on_hello_reply(const char *line)
{
	if (us_startswith(line, "WELCOME")) {
		us.registered = 1;
		return 1;
	}
	if (us_startswith(line, "REFUSED")) {
		us_log("refused", line + 7);
		return -1;
	}
	/* WAIT: the coordinator is there and answers later (a checkpoint holds the
	 * registration lock). Anything else cannot be acted on before WELCOME, but
	 * must not vanish unseen. */
	if (!us_streq(line, "WAIT"))
		us_log("protocol-error", line);
	return 0;
}

int us_link_hello(const char *origin, int vppid, int patient)
{
	char line[1024];
	if (us_link_send_hello(origin, vppid) < 0)
		return -1;
	for (;;) {
		int n = us_link_read_line_within(line, sizeof line, patient ? -1 : us.silent ? 0 : US_LINK_PATIENCE_MS);
		if (n == US_LINK_TIMEOUT) {
			us.silent = 1;
			return 1;   /* silence: go on; the checkpoint thread reads the WELCOME */
		}
		if (n < 0)
			return -1;
		int r = us_link_on_hello_reply(line);
		if (r)
			return r > 0 ? 0 : -2;
	}
}

void us_request(const char *what)
{
	char line[64];
	struct us_buf b = { line, 0, sizeof line };

	us_lock(&us.req_lock);
	for (int i = 0; i < (int)sizeof us.pending_req - 1 && what[i]; i++)
		us.pending_req[i] = what[i], us.pending_req[i + 1] = 0;
	us_put(&b, what);
	us_putc(&b, '\n');
	/* GRANTs carry no id: this request is granted once as many came as were
	 * asked for, counting those that came too late for a request given up. */
	int seq = __atomic_add_fetch(&us.req_seq, 1, __ATOMIC_ACQ_REL);
	if (us_link_send(us_term(&b)) < 0) {
		__atomic_store_n(&us.grant_seq, seq, __ATOMIC_RELEASE);
		us.pending_req[0] = 0;
		us_unlock(&us.req_lock);
		return;   /* no coordinator: carry on unprotected rather than hang the app */
	}
	/* The checkpoint thread counts GRANTs. Waiting here is safe to freeze: after a
	 * restore the request is re-sent on the new link. Silence for longer than the
	 * patience (no line at all on the link) gives up: the coordinator is stopped
	 * or stalled, and the application must not be. */
	long heard = us_now_ms();
	int last = __atomic_load_n(&us.lines_heard, __ATOMIC_ACQUIRE);
	for (;;) {
		int granted = __atomic_load_n(&us.grant_seq, __ATOMIC_ACQUIRE);
		if (granted - seq >= 0 || us.link_dead || us.silent)
			break;
		us_futex_wait(&us.grant_seq, granted, 200);
		int now_heard = __atomic_load_n(&us.lines_heard, __ATOMIC_ACQUIRE);
		if (now_heard != last) {
			last = now_heard;
			heard = us_now_ms();
		} else if (us_now_ms() - heard > US_LINK_PATIENCE_MS) {
			us_log("request-unanswered", what);
			us.silent = 1;   /* until the checkpoint thread hears a line */
			break;
		}
	}
	us.pending_req[0] = 0;
	us_unlock(&us.req_lock);
}

void us_notify(const char *line)
{
	us_link_send(line);
}
