/* wl_pipes: a parent and its forked child exchange sequenced 64-byte records
 * over two pipes, with data always in flight.
 *
 * The parent keeps WINDOW records outstanding: it tops the parent->child pipe
 * up to WINDOW, then reads back HALF echoes, checks each (sequence, content,
 * checksum), prints "count <iteration> msgs <round-tripped>" (the iteration
 * grows by exactly one per line) and sleeps 10 ms, so HALF records sit in the
 * pipes while it sleeps. The child checks every record it receives
 * (seq == expected: nothing lost, nothing duplicated) and echoes it.
 * Both check getpid()/getppid() (the child's parent must stay the parent).
 * On SIGUSR1 each side prints "VERIFY OK pipes-parent|pipes-child ...". */
#include "wl_common.h"
#include <sys/wait.h>

#define WINDOW 128
#define HALF (WINDOW / 2)
#define KIND_DATA 1u
#define KIND_ECHO 2u

static void child_loop(int in, int out)
{
	struct wl_rec buf[64];
	size_t have = 0;                /* bytes in buf */
	uint64_t expect = 0;

	for (;;) {
		ssize_t n = read(in, (char *)buf + have, sizeof buf - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			wl_fail("read from parent: %s", strerror(errno));
		if (n == 0)
			wl_fail("parent closed the pipe after %llu records",
				(unsigned long long)expect);
		have += (size_t)n;
		size_t whole = have / WL_REC_SIZE;
		struct wl_rec echo[64];
		for (size_t i = 0; i < whole; i++) {
			wl_rec_check(&buf[i], expect, KIND_DATA);
			wl_rec_make(&echo[i], expect, KIND_ECHO);
			expect++;
		}
		if (wl_write_all(out, echo, whole * WL_REC_SIZE) != 0)
			wl_fail("write to parent: %s", strerror(errno));
		have -= whole * WL_REC_SIZE;
		memmove(buf, (char *)buf + whole * WL_REC_SIZE, have);

		wl_check_ids();
		if (wl_take_verify())
			wl_out("VERIFY OK pipes-child received=%llu partial=%zu pid=%d ppid=%d",
			       (unsigned long long)expect, have, (int)wl_pid0, (int)wl_ppid0);
	}
}

int main(void)
{
	int down[2], up[2];             /* parent->child, child->parent */
	wl_init("pipes-parent");
	if (pipe(down) != 0 || pipe(up) != 0)
		wl_fail("pipe: %s", strerror(errno));

	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		close(down[1]);
		close(up[0]);
		wl_reinit_child("pipes-child", parent);
		child_loop(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	wl_out("pipes ready parent %d child %d ppid %d", (int)parent, (int)child, (int)wl_ppid0);

	uint64_t sent = 0, echoed = 0, iter = 0;
	struct wl_rec out[WINDOW], in[HALF];
	for (;;) {
		wl_check_ids();
		if (wl_take_verify()) {
			int st;
			pid_t w = waitpid(child, &st, WNOHANG);
			if (w != 0)
				wl_fail("child %d is gone (waitpid %d)", (int)child, (int)w);
			if (sent - echoed != HALF && iter > 0)
				wl_fail("%llu records outstanding, expected %d",
					(unsigned long long)(sent - echoed), HALF);
			wl_out("VERIFY OK pipes-parent count=%llu sent=%llu echoed=%llu child=%d pid=%d ppid=%d",
			       (unsigned long long)iter, (unsigned long long)sent,
			       (unsigned long long)echoed, (int)child, (int)wl_pid0,
			       (int)wl_ppid0);
		}

		size_t n = 0;
		while (sent - echoed < WINDOW)
			wl_rec_make(&out[n++], sent++, KIND_DATA);
		if (wl_write_all(down[1], out, n * WL_REC_SIZE) != 0)
			wl_fail("write to child: %s", strerror(errno));

		ssize_t r = wl_read_full(up[0], in, sizeof in);
		if (r < 0)
			wl_fail("read from child: %s", strerror(errno));
		if (r == 0)
			wl_fail("child closed the pipe after %llu echoes",
				(unsigned long long)echoed);
		for (int i = 0; i < HALF; i++)
			wl_rec_check(&in[i], echoed++, KIND_ECHO);

		iter++;
		wl_out("count %llu msgs %llu", (unsigned long long)iter,
		       (unsigned long long)echoed);
		wl_sleep_ms(10);
	}
}
