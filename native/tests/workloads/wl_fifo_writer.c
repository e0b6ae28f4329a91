/* wl_fifo_writer PATH: creates the FIFO PATH if needed, opens it for writing
 * (this blocks until a reader opens it, so the reader may start later), and
 * writes bursts of BURST sequenced 64-byte records (one atomic write each,
 * BURST * 64 <= PIPE_BUF). After each burst it prints
 * "writer count <iteration> sent <records>" (the iteration grows by exactly
 * one per line) and sleeps 10 ms. On SIGUSR1: "VERIFY OK fifo-writer ...". */
#include "wl_common.h"
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#define BURST 16
#define KIND_FIFO 3u
_Static_assert(BURST * WL_REC_SIZE <= PIPE_BUF, "a burst is one atomic write");

int main(int argc, char **argv)
{
	wl_init("fifo-writer");
	if (argc < 2)
		wl_fail("usage: wl_fifo_writer PATH");
	signal(SIGPIPE, SIG_IGN);       /* a vanished reader is reported, not fatal */
	if (mkfifo(argv[1], 0600) != 0 && errno != EEXIST)
		wl_fail("mkfifo %s: %s", argv[1], strerror(errno));
	wl_out("fifo-writer waiting pid %d ppid %d", (int)wl_pid0, (int)wl_ppid0);
	int fd;
	do
		fd = open(argv[1], O_WRONLY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		wl_fail("open %s: %s", argv[1], strerror(errno));
	wl_out("fifo-writer open");

	uint64_t sent = 0, iter = 0;
	struct wl_rec burst[BURST];
	for (;;) {
		wl_check_ids();
		if (wl_take_verify())
			wl_out("VERIFY OK fifo-writer count=%llu sent=%llu pid=%d ppid=%d",
			       (unsigned long long)iter, (unsigned long long)sent,
			       (int)wl_pid0, (int)wl_ppid0);
		for (int i = 0; i < BURST; i++)
			wl_rec_make(&burst[i], sent + (uint64_t)i, KIND_FIFO);
		if (wl_write_all(fd, burst, sizeof burst) != 0)
			wl_fail("write %s after %llu records: %s", argv[1],
				(unsigned long long)sent, strerror(errno));
		sent += BURST;
		iter++;
		wl_out("writer count %llu sent %llu", (unsigned long long)iter,
		       (unsigned long long)sent);
		wl_sleep_ms(10);
	}
}
