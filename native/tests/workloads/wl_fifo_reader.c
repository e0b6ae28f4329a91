/* wl_fifo_reader PATH: opens the FIFO PATH (creating it if the writer has not
 * yet) and checks every record: seq == expected, so nothing is lost or
 * duplicated, and the content and checksum match. After each read it prints
 * "reader count <iteration> received <records>" (the iteration grows by
 * exactly one per line) and sleeps 10 ms, so records queue up in the FIFO
 * meanwhile. On SIGUSR1: "VERIFY OK fifo-reader ...". */
#include "wl_common.h"
#include <fcntl.h>
#include <sys/stat.h>

#define KIND_FIFO 3u
#define MAXREC 32

int main(int argc, char **argv)
{
	wl_init("fifo-reader");
	if (argc < 2)
		wl_fail("usage: wl_fifo_reader PATH");
	if (mkfifo(argv[1], 0600) != 0 && errno != EEXIST)
		wl_fail("mkfifo %s: %s", argv[1], strerror(errno));
	int fd;
	do
		fd = open(argv[1], O_RDONLY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		wl_fail("open %s: %s", argv[1], strerror(errno));
	wl_out("fifo-reader open pid %d ppid %d", (int)wl_pid0, (int)wl_ppid0);

	struct wl_rec buf[MAXREC];
	size_t have = 0;
	uint64_t expect = 0, iter = 0;
	for (;;) {
		wl_check_ids();
		if (wl_take_verify())
			wl_out("VERIFY OK fifo-reader count=%llu received=%llu partial=%zu pid=%d ppid=%d",
			       (unsigned long long)iter, (unsigned long long)expect, have,
			       (int)wl_pid0, (int)wl_ppid0);
		ssize_t n = read(fd, (char *)buf + have, sizeof buf - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			wl_fail("read %s: %s", argv[1], strerror(errno));
		if (n == 0)
			wl_fail("writer closed the FIFO after %llu records",
				(unsigned long long)expect);
		have += (size_t)n;
		size_t whole = have / WL_REC_SIZE;
		for (size_t i = 0; i < whole; i++)
			wl_rec_check(&buf[i], expect++, KIND_FIFO);
		have -= whole * WL_REC_SIZE;
		memmove(buf, (char *)buf + whole * WL_REC_SIZE, have);
		iter++;
		wl_out("reader count %llu received %llu", (unsigned long long)iter,
		       (unsigned long long)expect);
		wl_sleep_ms(10);
	}
}
