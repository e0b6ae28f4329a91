/* Pseudo-terminal pairs (posix_openpt, openpty). A master record carries the
 * pair's state: termios, window size, lock and packet modes, and the bytes queued
 * in each direction. us-init makes each pair once, in the group's own devpts
 * instance (us_init.c), where opening ptmx gives the lowest free index, so the
 * slave gets its old number back; every holder of the master duplicates it and
 * every slave record opens the slave again.
 *
 * No read on a tty leaves the bytes it returns, so the capture takes the queues
 * out and puts them straight back: the slave's input through the master with
 * echo, signals and input mapping off (its canonical mode kept, so line ends are
 * found again), the master's input through the slave with output processing off.
 * A restore puts them in the same way. */
#include <stddef.h>
#include <asm/termbits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <time.h>
#include "kinds.h"
#include "../common/us_sys.h"

_Static_assert(sizeof(struct termios2) == sizeof ((struct us_pty_state *)0)->termios, "termios2 size");

static void put_all(int fd, const char *p, uint32_t n)
{
	while (n) {
		long w = us_sc3(SYS_write, fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (uint32_t)w;
	}
}

/* Bytes of a canonical queue that read() would see now: up to the last line end. */
static uint32_t complete_lines(const struct termios2 *t, const char *p, uint32_t n)
{
	uint32_t whole = 0;
	for (uint32_t i = 0; i < n; i++)
		if (p[i] == '\n' || (t->c_cc[VEOL] && p[i] == (char)t->c_cc[VEOL]) ||
		    (t->c_cc[VEOL2] && p[i] == (char)t->c_cc[VEOL2]))
			whole = i + 1;
	return whole;
}

/* Waits (at most 20 ms) until want bytes are readable on fd: the kernel moves what
 * the other side wrote in a worker; polling with nothing readable hurries it. */
static void settle(int fd, uint32_t want)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int queued = 0;
		us_sc3(SYS_poll, &pfd, 1, 0);
		if (us_sc3(SYS_ioctl, fd, FIONREAD, &queued) < 0 || (uint32_t)queued >= want)
			return;
		struct timespec ts = { 0, 100000 };
		us_sc2(SYS_nanosleep, &ts, NULL);
	}
}

/* Queues the bytes on each side of a pair that has termios t, as they were: the
 * slave's with no echo, signals, input mapping, erase, kill or end-of-file
 * character (canonical mode only finds the line ends again), the master's with
 * no output processing. */
static void pty_inject(int master, int slave, const struct termios2 *t,
		       const char *to_slave, uint32_t ns, const char *to_master, uint32_t nm)
{
	struct termios2 quiet = *t;
	quiet.c_iflag = 0;
	quiet.c_oflag &= ~(unsigned)OPOST;
	quiet.c_lflag &= ICANON;
	quiet.c_cc[VERASE] = quiet.c_cc[VKILL] = quiet.c_cc[VEOF] = 0;   /* _POSIX_VDISABLE */
	us_sc3(SYS_ioctl, slave, TCSETS2, &quiet);
	put_all(master, to_slave, ns);
	put_all(slave, to_master, nm);
	settle(slave, t->c_lflag & ICANON ? complete_lines(t, to_slave, ns) : ns);
	settle(master, nm);
	us_sc3(SYS_ioctl, slave, TCSETS2, t);
}

#ifdef US_FD_CAPTURE
#include <fcntl.h>
#include <sys/sysmacros.h>
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"

static int is_ptmx(const struct us_fd_capture *c)
{
	return S_ISCHR(c->st.st_mode) && major(c->st.st_rdev) == 5 && minor(c->st.st_rdev) == 2;
}

static uint64_t pts_index(dev_t rdev)
{
	return (uint64_t)(major(rdev) - 136) * 256 + minor(rdev);
}

static int is_pts(const struct us_fd_capture *c)
{
	return S_ISCHR(c->st.st_mode) && major(c->st.st_rdev) >= 136 && major(c->st.st_rdev) <= 143;
}

/* Whether the slave is our controlling terminal and we lead its session: then
 * the restore makes it that again, with its foreground process group. */
static void capture_pty_slave(struct us_fd_capture *c)
{
	uint64_t f[64];
	unsigned maj = major(c->st.st_rdev), min = minor(c->st.st_rdev);
	uint64_t tty_nr = (uint64_t)maj << 8 | (min & 0xff) | (uint64_t)(min & ~0xffu) << 12;
	c->rec.aux[0] = pts_index(c->st.st_rdev);
	if (us_read_file("/proc/self/stat", c->s->data, 4096) <= 0)
		return;
	us_stat_fields(c->s->data, f);
	if (f[6] == (uint64_t)us_sc0(SYS_getpid) && f[7] == tty_nr) {
		c->rec.aux[1] = US_PTY_SLAVE_CTTY;
		c->rec.aux[2] = f[8];
	}
}

/* Whether a process of the group holds the slave of pty index: only then may the
 * capture open it too (the last close of a slave hangs the master up). */
static int slave_held(struct scratch *s, uint64_t index)
{
	for (int i = 0, n = group_fds(s); i < n; i++) {
		char path[64];
		struct us_buf b = { path, 0, sizeof path };
		struct stat st;
		us_put(&b, "/proc/");
		us_putu(&b, (uint64_t)s->holders[i].pid);
		us_put(&b, "/fd/");
		us_putu(&b, (uint64_t)s->holders[i].fd);
		if (us_sc2(SYS_stat, us_term(&b), &st) == 0 && S_ISCHR(st.st_mode) &&
		    major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143 && pts_index(st.st_rdev) == index)
			return 1;
	}
	return 0;
}

/* Takes both queues out into data (slave's input first) and puts them back. */
static void capture_queues(struct us_fd_capture *c, struct us_pty_state *st, char *data, uint32_t room)
{
	int slave = (int)us_sc3(SYS_ioctl, c->fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (slave < 0)
		return;
	struct termios2 t, raw;
	__builtin_memcpy(&t, st->termios, sizeof t);
	raw = t;
	raw.c_lflag &= ~(unsigned)(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	us_sc3(SYS_ioctl, slave, TCSETS2, &raw);   /* a partial canonical line becomes readable */
	int queued = 0;
	us_sc3(SYS_ioctl, slave, FIONREAD, &queued);
	long ns = queued > 0 ? us_sc3(SYS_read, slave, data, (uint32_t)queued < room ? (uint32_t)queued : room) : 0;
	st->to_slave_len = ns > 0 ? (uint32_t)ns : 0;
	queued = 0;
	us_sc3(SYS_ioctl, c->fd, FIONREAD, &queued);
	char *to_master = data + st->to_slave_len;
	long nm = 0;
	if (queued > 0 && (uint32_t)queued + 1 < room - st->to_slave_len) {
		nm = us_sc3(SYS_read, c->fd, to_master, (uint32_t)queued + ((st->flags & US_PTY_F_PACKET) != 0));
		if (nm > 0 && (st->flags & US_PTY_F_PACKET)) {   /* a TIOCPKT_DATA header byte first */
			nm--;
			for (long i = 0; i < nm; i++)
				to_master[i] = to_master[i + 1];
		}
	}
	st->to_master_len = nm > 0 ? (uint32_t)nm : 0;
	pty_inject(c->fd, slave, &t, data, st->to_slave_len, to_master, st->to_master_len);
	us_sc1(SYS_close, slave);
}

static void capture_pty_master(struct us_fd_capture *c)
{
	struct us_pty_state st = { 0 };
	unsigned index = 0;
	int locked = 0, packet = 0;
	struct winsize ws = { 0 };
	us_sc3(SYS_ioctl, c->fd, TIOCGPTN, &index);
	us_sc3(SYS_ioctl, c->fd, TIOCGPTLCK, &locked);
	us_sc3(SYS_ioctl, c->fd, TIOCGPKT, &packet);
	us_sc3(SYS_ioctl, c->fd, TIOCGWINSZ, &ws);
	us_sc3(SYS_ioctl, c->fd, TCGETS2, st.termios);   /* the slave's, read through the master */
	st.ws_row = ws.ws_row;
	st.ws_col = ws.ws_col;
	st.ws_xpixel = ws.ws_xpixel;
	st.ws_ypixel = ws.ws_ypixel;
	st.flags = (locked ? US_PTY_F_LOCKED : 0) | (packet ? US_PTY_F_PACKET : 0);
	c->rec.aux[0] = index;
	c->name = "/dev/ptmx";
	/* the queues once per pair: by the holder that names the master's open file; the
	 * restore takes the pair's termios from its record too */
	uint64_t key = c->rec.aux[US_FD_AUX_OPEN_KEY];
	if (!locked && (!key || key == US_OPEN_KEY(us_sc0(SYS_getpid), c->fd)) && slave_held(c->s, index))
		capture_queues(c, &st, c->s->data + sizeof st, DATA_MAX - sizeof st);
	__builtin_memcpy(c->s->data, &st, sizeof st);
	c->data_len = (uint32_t)sizeof st + st.to_slave_len + st.to_master_len;
}
#endif

#ifdef US_FD_RESTORE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* The pair's state in a master record: after the path, so not aligned. */
static struct us_pty_state state_of(const struct us_rec_fd *f)
{
	struct us_pty_state st;
	memcpy(&st, us_fd_data(f), sizeof st);
	return st;
}

/* A record of pair index of this kind; with designated, the master record of the
 * holder that captured the pair's queues, whose termios no other capture of the
 * pair may have seen while they were out. */
static const struct us_rec_fd *pair_record(uint32_t kind, uint64_t index, int designated)
{
	long cursor = 0;
	const struct proc *holder;
	for (const struct us_rec_fd *f; (f = restore_next_record(&cursor, &holder));)
		if (f->kind == kind && f->aux[0] == index &&
		    (!designated || restore_open_key(holder, f) == US_OPEN_KEY(restore_vpid(holder), f->fd)))
			return f;
	return NULL;
}

/* A master of the given index: ptmx gives the lowest free one, so the ones below
 * it are taken and let go again. */
static int open_master(uint64_t index)
{
	int spare[64], nspare = 0, fd;
	for (;;) {
		fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		unsigned got = 0;
		if (fd < 0 || ioctl(fd, TIOCGPTN, &got) < 0 || got >= index || nspare == 64)
			break;
		spare[nspare++] = fd;
	}
	while (nspare)
		close(spare[--nspare]);
	return fd;
}

static int share_pty(const struct us_rec_fd *f)
{
	if (f->data_len < sizeof(struct us_pty_state) || restore_find_object(US_FD_PTY_MASTER, 0, f->aux[0]))
		return 0;
	const struct us_rec_fd *d = pair_record(US_FD_PTY_MASTER, f->aux[0], 1);
	const struct us_pty_state state = state_of(d ? d : f), *st = &state;
	uint32_t queued = st->to_slave_len + st->to_master_len;
	struct termios2 t;
	memcpy(&t, st->termios, sizeof t);
	int master = open_master(f->aux[0]), unlock = 0;
	unsigned got = 0;
	if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &got) < 0) {
		restore_log("restore-failed reason=cannot-open-pty errno=%d", errno);
		return -1;
	}
	if (got != f->aux[0])
		restore_log("restore-warning reason=pty-index-taken index=%llu now=%u", (unsigned long long)f->aux[0], got);
	struct winsize ws = { st->ws_row, st->ws_col, st->ws_xpixel, st->ws_ypixel };
	ioctl(master, TIOCSWINSZ, &ws);
	ioctl(master, TCSETS2, &t);
	/* the slave only if the group had it open: its last close hangs the master up */
	int slave = -1;
	if (pair_record(US_FD_PTY_SLAVE, f->aux[0], 0) || queued)
		slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave >= 0) {
		const char *bytes = us_fd_data(d ? d : f) + sizeof state;
		pty_inject(master, slave, &t, bytes, st->to_slave_len, bytes + st->to_slave_len, st->to_master_len);
	}
	int packet = (st->flags & US_PTY_F_PACKET) != 0, lock = (st->flags & US_PTY_F_LOCKED) != 0;
	ioctl(master, TIOCPKT, &packet);
	ioctl(master, TIOCSPTLCK, &lock);
	restore_add_object(US_FD_PTY_MASTER, 0, f->aux[0], master, slave);
	return 0;
}

static const struct us_object *pair_of(const struct proc *p, const struct us_rec_fd *f)
{
	const struct us_object *o = restore_find_object(US_FD_PTY_MASTER, 0, f->aux[0]);
	if (!o)
		restore_fail(p, "pty-master-not-in-group", NULL);
	return o;
}

static int restore_pty_master(const struct proc *p, const struct us_rec_fd *f)
{
	return restore_status_flags(dup(pair_of(p, f)->fd), f);
}

static int restore_pty_slave(const struct proc *p, const struct us_rec_fd *f)
{
	const struct us_object *o = pair_of(p, f);
	int locked = 0;
	ioctl(o->fd, TIOCGPTLCK, &locked);
	if (locked)   /* locked again after it was opened: no new open, the same slave */
		return restore_status_flags(dup(o->fd2), f);
	return (int)ioctl(o->fd, TIOCGPTPEER, restore_open_flags(f) | O_NOCTTY);
}

/* The controlling terminal of a session leader, and its foreground group: that
 * group may be a child's, made at the same time, so it is waited for a little. */
static void make_controlling(const struct proc *p, const struct us_rec_fd *f)
{
	if (!(f->aux[1] & US_PTY_SLAVE_CTTY))
		return;
	if (ioctl(f->fd, TIOCSCTTY, 0) < 0) {
		restore_log("restore-warning pid=%u reason=cannot-set-controlling-terminal errno=%d", restore_vpid(p), errno);
		return;
	}
	pid_t group = (pid_t)f->aux[2];
	for (int tries = 0; group > 0 && group != getpgrp() && ioctl(f->fd, TIOCSPGRP, &group) < 0; tries++) {
		if (tries == 100) {
			restore_log("restore-warning pid=%u reason=cannot-set-foreground-group pgid=%d errno=%d",
				    restore_vpid(p), (int)group, errno);
			return;
		}
		usleep(1000);
	}
}
#endif

const struct us_fd_ops us_fd_pty_master = {
	.kind = US_FD_PTY_MASTER,
	.detect = US_CAPTURE(is_ptmx),
	.capture = US_CAPTURE(capture_pty_master),
	.share = US_RESTORE(share_pty),
	.restore = US_RESTORE(restore_pty_master),
	.open_key = 1,
};

const struct us_fd_ops us_fd_pty_slave = {
	.kind = US_FD_PTY_SLAVE,
	.detect = US_CAPTURE(is_pts),
	.capture = US_CAPTURE(capture_pty_slave),
	.restore = US_RESTORE(restore_pty_slave),
	.placed = US_RESTORE(make_controlling),
	.open_key = 1,
};
