/* eventfd, timerfd, signalfd and epoll: anonymous inodes whose state is read
 * from /proc/self/fdinfo and made again from scratch: in the restored process, or
 * once in PID 1 when several descriptors share one (after fork or dup).
 *
 * An epoll set's interest list names (file, descriptor number) pairs of whichever
 * process added them. Each holder records the targets that are its own descriptor
 * at that number (same inode); a shared set is rebuilt in PID 1 from every
 * holder's targets, each put at its number there for EPOLL_CTL_ADD. Adding a
 * target polls it: a level-triggered event still pending comes back by itself,
 * an edge-triggered one is reported once more if its target is ready, and a
 * one-shot target that already fired keeps its disabled mask. */
#include <stddef.h>
#include "kinds.h"

#ifdef US_FD_CAPTURE
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"

static int is_eventfd(const struct us_fd_capture *c) { return us_streq(c->link, "anon_inode:[eventfd]"); }
static int is_timerfd(const struct us_fd_capture *c) { return us_streq(c->link, "anon_inode:[timerfd]"); }
static int is_signalfd(const struct us_fd_capture *c) { return us_streq(c->link, "anon_inode:[signalfd]"); }
static int is_epoll(const struct us_fd_capture *c) { return us_streq(c->link, "anon_inode:[eventpoll]"); }

/* The descriptor's fdinfo text, in the second half of the data area: the first
 * half is left for epoll's targets. */
static const char *fdinfo(struct us_fd_capture *c)
{
	char path[64];
	char *text = c->s->data + DATA_MAX / 2;
	us_read_file(fd_proc_path(path, sizeof path, "fdinfo", c->fd), text, DATA_MAX / 2);
	return text;
}

static void capture_eventfd(struct us_fd_capture *c)
{
	const char *text = fdinfo(c);
	c->rec.aux[0] = us_proc_field_u(text, "eventfd-count:", 16);
	c->rec.aux[1] = us_proc_field_u(text, "eventfd-semaphore:", 10);
}

/* "key (sec, nsec)" in nanoseconds */
static uint64_t timer_ns(const char *text, const char *key)
{
	const char *p = us_proc_field(text, key);
	uint64_t sec = p ? us_parse_u(&p, 10) : 0, nsec = 0;
	if (p && *p == ',') {
		p++;
		us_skip_spaces(&p);
		nsec = us_parse_u(&p, 10);
	}
	return sec * 1000000000ull + nsec;
}

static void capture_timerfd(struct us_fd_capture *c)
{
	const char *text = fdinfo(c);
	c->rec.aux[0] = us_proc_field_u(text, "clockid:", 10);
	c->rec.aux[2] = timer_ns(text, "it_value: (");
	c->rec.aux[1] = timer_ns(text, "it_interval: (");
}

static void capture_signalfd(struct us_fd_capture *c)
{
	c->rec.aux[0] = us_proc_field_u(fdinfo(c), "sigmask:", 16);
}

/* One us_epoll_target per "tfd:" line whose inode is that of our descriptor at
 * that number; another holder of a shared set records the others. */
static void capture_epoll(struct us_fd_capture *c)
{
	const char *text = fdinfo(c);
	struct us_epoll_target *t = (void *)c->s->data;
	uint32_t n = 0;
	uint32_t max = (DATA_MAX / 2) / sizeof *t;
	for (const char *p = text; n < max && (p = us_proc_field(p, "tfd:")) != NULL;) {
		us_skip_spaces(&p);
		t[n].fd = (int32_t)us_parse_u(&p, 10);
		us_skip_spaces(&p);
		if (us_startswith(p, "events:")) {
			p += 7;
			us_skip_spaces(&p);
			t[n].events = (uint32_t)us_parse_u(&p, 16);
		}
		us_skip_spaces(&p);
		if (us_startswith(p, "data:")) {
			p += 5;
			us_skip_spaces(&p);
			t[n].data = us_parse_u(&p, 16);
		}
		while (*p && *p != '\n' && !us_startswith(p, "ino:"))
			p++;
		uint64_t ino = 0;
		if (us_startswith(p, "ino:")) {
			p += 4;
			ino = us_parse_u(&p, 16);
		}
		struct stat st;
		if (us_sc2(SYS_fstat, t[n].fd, &st) == 0 && st.st_ino == ino)
			n++;
	}
	c->data_len = n * (uint32_t)sizeof *t;
}
#endif

#ifdef US_FD_RESTORE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int nonblock(const struct us_rec_fd *f, int flag)
{
	return restore_open_flags(f) & O_NONBLOCK ? flag : 0;
}

static int restore_eventfd(const struct proc *p, const struct us_rec_fd *f)
{
	(void)p;
	return eventfd((unsigned)f->aux[0], (f->aux[1] ? EFD_SEMAPHORE : 0) | nonblock(f, EFD_NONBLOCK));
}

static int restore_timerfd(const struct proc *p, const struct us_rec_fd *f)
{
	(void)p;
	int fd = timerfd_create((int)f->aux[0], nonblock(f, TFD_NONBLOCK));
	struct itimerspec its = {
		{ (time_t)(f->aux[1] / 1000000000), (long)(f->aux[1] % 1000000000) },
		{ (time_t)(f->aux[2] / 1000000000), (long)(f->aux[2] % 1000000000) },
	};
	if (fd >= 0 && f->aux[2])
		timerfd_settime(fd, 0, &its, NULL);
	return fd;
}

static int restore_signalfd(const struct proc *p, const struct us_rec_fd *f)
{
	(void)p;
	sigset_t set;
	sigemptyset(&set);
	for (int s = 1; s <= 64; s++)
		if (f->aux[0] & (1ull << (s - 1)))
			sigaddset(&set, s);
	return signalfd(-1, &set, nonblock(f, SFD_NONBLOCK));
}

static int restore_epoll(const struct proc *p, const struct us_rec_fd *f)
{
	int ep = epoll_create1(0);
	const struct us_epoll_target *t = (const void *)us_fd_data(f);
	for (uint32_t i = 0; i < f->data_len / sizeof *t; i++) {
		struct epoll_event ev = { .events = t[i].events, .data.u64 = t[i].data };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, t[i].fd, &ev) < 0)
			restore_fail(p, "cannot-restore-epoll-target", NULL);
	}
	return restore_status_flags(ep, f);
}

/* Adds file to ep as descriptor number num, which PID 1 lends for the call. */
static int add_as(int ep, int num, int file, struct epoll_event *ev)
{
	int saved = fcntl(num, F_GETFD) >= 0 ? restore_move_high(dup(num)) : -1;
	int ok = dup2(file, num) == num && (epoll_ctl(ep, EPOLL_CTL_ADD, num, ev) == 0 || errno == EEXIST);
	if (saved >= 0) {
		dup2(saved, num);
		close(saved);
	} else {
		close(num);
	}
	return ok ? 0 : -1;
}

/* A set several descriptors share, in PID 1: every holder's targets, each the
 * open file its holder will have at that number. */
static int share_open_epoll(const struct proc *p, const struct us_rec_fd *f)
{
	(void)p;
	int ep = restore_move_high(epoll_create1(0));
	long cursor = 0;
	const struct proc *h;
	for (const struct us_rec_fd *g; ep >= 0 && (g = restore_next_with_key(f->aux[US_FD_AUX_OPEN_KEY], &cursor, &h));) {
		const struct us_epoll_target *t = (const void *)us_fd_data(g);
		for (uint32_t i = 0; i < g->data_len / sizeof *t; i++) {
			const struct us_rec_fd *target = restore_fd_of(h, t[i].fd);
			int file = target ? restore_open_file(h, target) : -1;
			struct epoll_event ev = { .events = t[i].events, .data.u64 = t[i].data };
			if (file < 0 || add_as(ep, t[i].fd, file, &ev) < 0) {
				restore_log("restore-failed pid=%u reason=cannot-restore-epoll-target fd=%d errno=%d",
					    restore_vpid(h), t[i].fd, errno);
				close(ep);
				return -1;
			}
		}
	}
	return restore_status_flags(ep, f);
}
#endif

const struct us_fd_ops us_fd_eventfd = {
	.kind = US_FD_EVENTFD,
	.detect = US_CAPTURE(is_eventfd),
	.capture = US_CAPTURE(capture_eventfd),
	.restore = US_RESTORE(restore_eventfd),
	.open_key = 1,
};

const struct us_fd_ops us_fd_timerfd = {
	.kind = US_FD_TIMERFD,
	.detect = US_CAPTURE(is_timerfd),
	.capture = US_CAPTURE(capture_timerfd),
	.restore = US_RESTORE(restore_timerfd),
	.open_key = 1,
};

const struct us_fd_ops us_fd_signalfd = {
	.kind = US_FD_SIGNALFD,
	.detect = US_CAPTURE(is_signalfd),
	.capture = US_CAPTURE(capture_signalfd),
	.restore = US_RESTORE(restore_signalfd),
	.open_key = 1,
};

const struct us_fd_ops us_fd_epoll = {
	.kind = US_FD_EPOLL,
	.detect = US_CAPTURE(is_epoll),
	.capture = US_CAPTURE(capture_epoll),
	.share_open = US_RESTORE(share_open_epoll),
	.restore = US_RESTORE(restore_epoll),
	.restore_last = 1,      /* its targets must exist first */
	.open_key = 1,
};
