/* wl_output_path [check]: a counter whose output follows the group to the node
 * that restores it. Prints "paths count N" every 100 ms. On SIGUSR1 it forks a
 * child that execs this program with "check": a program exec'd now, whose
 * UNDERSTUDY_* variables the interceptor fills in, checks that its stdout (the
 * descriptor it inherited, made by the restore) is the file UNDERSTUDY_OUTPUT
 * names, and that UNDERSTUDY_LOG names a file of the same directory (the group's),
 * and prints "VERIFY OK output-path output=PATH log=PATH"; the parent fails if
 * the check did not pass. Which node's files they are, the test knows. */
#include "wl_common.h"
#include <sys/stat.h>
#include <sys/wait.h>

/* The directory part of path: its length up to the last '/'. */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? (size_t)(slash - path) : 0;
}

static int check(void)
{
	wl_init("output-path");
	const char *output = getenv("UNDERSTUDY_OUTPUT"), *log = getenv("UNDERSTUDY_LOG");
	struct stat named, out;
	if (!output || !log)
		wl_fail("UNDERSTUDY_OUTPUT or UNDERSTUDY_LOG missing from the environment of an exec'd program");
	if (stat(output, &named) != 0 || fstat(STDOUT_FILENO, &out) != 0)
		wl_fail("cannot stat %s or stdout: %s", output, strerror(errno));
	if (named.st_dev != out.st_dev || named.st_ino != out.st_ino)
		wl_fail("stdout is not %s, the output log the environment names", output);
	if (dir_len(log) != dir_len(output) || strncmp(log, output, dir_len(output)))
		wl_fail("the native log %s is not beside the output log %s", log, output);
	wl_out("VERIFY OK output-path output=%s log=%s", output, log);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "check"))
		return check();
	wl_init("paths");
	uint64_t n = 0;
	for (;;) {
		wl_check_ids();
		if (wl_take_verify()) {
			pid_t child = fork();
			if (child == 0) {
				execl("/proc/self/exe", argv[0], "check", (char *)NULL);
				wl_fail("cannot exec itself: %s", strerror(errno));
			}
			int status;
			if (child < 0)
				wl_fail("fork: %s", strerror(errno));
			while (waitpid(child, &status, 0) < 0)
				if (errno != EINTR)
					wl_fail("waitpid: %s", strerror(errno));
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				wl_fail("the check exec'd in a child did not pass (status %d)", status);
		}
		n++;
		wl_out("paths count %llu", (unsigned long long)n);
		wl_sleep_ms(100);
	}
}
