/* wl_pty: a pseudo-terminal pair with settings and bytes queued both ways.
 *
 * The parent opens a pair (posix_openpt), sets the slave's termios (canonical,
 * no echo, its own erase character, no output processing) and a window size,
 * then forks a child that keeps the slave and makes it the controlling terminal
 * of a session of its own. At every verification the parent first takes what was
 * queued: the line the master wrote and the slave has not read, and what the
 * slave wrote and the master has not read, checks both against what it queued
 * (round k's text), then queues round k+1's, so every checkpoint holds bytes in
 * both directions, plus a partial line behind the complete one. Each prints
 * "pty N" or "pty-child N" every 20 ms; on SIGUSR1 each checks the slave's
 * number (ttyname), termios and window size, the child that the slave is still
 * its controlling terminal (/dev/tty, its session, its foreground group), and
 * prints "VERIFY OK". */
#include "wl_common.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

static int master, slave;
static char name[64];
static long round_no;

static void queue_round(long k)
{
	char line[64];
	int n = snprintf(line, sizeof line, "to-slave %ld\n", k);
	if (wl_write_all(master, line, (size_t)n) != 0 || wl_write_all(master, "part", 4) != 0)
		wl_fail("write to the master: %s", strerror(errno));
	n = snprintf(line, sizeof line, "to-master %ld;", k);
	if (wl_write_all(slave, line, (size_t)n) != 0)
		wl_fail("write to the slave: %s", strerror(errno));
}

static void check_queue(int fd, const char *want, const char *what)
{
	char buf[128];
	int queued = 0;
	for (int tries = 0; tries < 100 && ioctl(fd, FIONREAD, &queued) == 0 && queued < (int)strlen(want); tries++)
		wl_sleep_ms(1);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0)
		wl_fail("%s: read: %s", what, strerror(errno));
	buf[n] = 0;
	if (strcmp(buf, want) != 0)
		wl_fail("%s: read \"%s\", expected \"%s\"", what, buf, want);
}

static void check_controlling(void)
{
	struct stat own;
	unsigned int tty = 0;   /* the terminal behind /dev/tty, in the kernel's encoding */
	int fd = open("/dev/tty", O_RDONLY | O_NOCTTY);
	if (fd < 0 || ioctl(fd, TIOCGDEV, &tty) != 0 || fstat(slave, &own) != 0 ||
	    ((tty >> 8) & 0xfff) != major(own.st_rdev) || ((tty & 0xff) | ((tty >> 12) & 0xfff00)) != minor(own.st_rdev))
		wl_fail("/dev/tty is not the slave: %s", fd < 0 ? strerror(errno) : "another terminal");
	close(fd);
	if (tcgetsid(slave) != getpid() || tcgetpgrp(slave) != getpgrp())
		wl_fail("the slave's session is %d and foreground group %d, expected %d",
			(int)tcgetsid(slave), (int)tcgetpgrp(slave), (int)getpid());
}

static void check_settings(int fd)
{
	struct termios t;
	struct winsize ws;
	if (tcgetattr(fd, &t) != 0 || ioctl(fd, TIOCGWINSZ, &ws) != 0)
		wl_fail("tcgetattr: %s", strerror(errno));
	if (!(t.c_lflag & ICANON) || (t.c_lflag & ECHO) || (t.c_oflag & OPOST) || t.c_cc[VERASE] != 0x08)
		wl_fail("termios changed: lflag 0x%x oflag 0x%x erase 0x%x", t.c_lflag, t.c_oflag, t.c_cc[VERASE]);
	if (cfgetospeed(&t) != B9600)
		wl_fail("output speed changed");
	if (ws.ws_row != 33 || ws.ws_col != 101)
		wl_fail("window size %dx%d, expected 33x101", ws.ws_row, ws.ws_col);
	const char *tty = ttyname(slave);
	if (!tty || strcmp(tty, name) != 0)
		wl_fail("the slave is %s, was %s", tty ? tty : strerror(errno), name);
}

int main(void)
{
	wl_init("pty");
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0)
		wl_fail("posix_openpt: %s", strerror(errno));
	slave = open(name, O_RDWR | O_NOCTTY);
	if (slave < 0)
		wl_fail("open %s: %s", name, strerror(errno));
	struct termios t;
	tcgetattr(slave, &t);
	t.c_lflag = (t.c_lflag | ICANON) & ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	t.c_oflag &= ~(tcflag_t)OPOST;
	t.c_cc[VERASE] = 0x08;
	cfsetspeed(&t, B9600);
	struct winsize ws = { .ws_row = 33, .ws_col = 101 };
	if (tcsetattr(slave, TCSANOW, &t) != 0 || ioctl(master, TIOCSWINSZ, &ws) != 0)
		wl_fail("tcsetattr: %s", strerror(errno));
	queue_round(0);

	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		wl_reinit_child("pty-child", parent);
		if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) != 0)
			wl_fail("setsid, TIOCSCTTY: %s", strerror(errno));
	}
	for (long i = 1;; i++) {
		wl_check_ids();
		if (wl_take_verify()) {
			check_settings(child ? master : slave);
			if (!child)
				check_controlling();
			if (child) {
				char want[64];
				snprintf(want, sizeof want, "%sto-slave %ld\n", round_no ? "part" : "", round_no);
				check_queue(slave, want, "the slave's input");
				snprintf(want, sizeof want, "to-master %ld;", round_no);
				check_queue(master, want, "the master's input");
				queue_round(++round_no);
			}
			wl_out("VERIFY OK %s iteration=%ld tty=%s round=%ld", wl_role, i, name, round_no);
		}
		wl_out("%s %ld", wl_role, i);
		wl_sleep_ms(20);
	}
}
