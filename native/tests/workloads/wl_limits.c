/* wl_limits: one process with a lot of one kind of state, for the engine's limits.
 *
 *   wl_limits threads N   N threads besides the main one, each waiting on a
 *                         condition variable with a thread-local value; a
 *                         verification wakes every one, which checks its value
 *                         and its tid and answers.
 *   wl_limits fds N DIR   N more descriptors: each a file of DIR opened alone,
 *                         at an offset of its own; a verification checks every
 *                         one's file, offset and access mode.
 *   wl_limits shm N       N shared anonymous mappings of two pages, each with
 *                         its own pattern; the main loop writes one per tick; a
 *                         verification checks them all.
 *   wl_limits maps N      as many one-page private mappings as vm.max_map_count
 *                         allows, less N: too many for a restore to make again,
 *                         so a checkpoint must fail (nothing to verify).
 *   wl_limits args K ARG...  checks at start and on verification that it got K
 *                         arguments after "args K", each of 64 KiB of its own
 *                         letter (so K = 16 is a 1 MiB command line), in argv and
 *                         in /proc/self/cmdline.
 *
 * Prints "limits N" every 20 ms; on SIGUSR1 "VERIFY OK limits ...".
 * Usage: wl_limits threads|fds|shm|maps N [DIR], or wl_limits args K ARG... */
#include "wl_common.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define ARG_LEN (64 * 1024)

static int count;

/* ---- threads ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, answered = PTHREAD_COND_INITIALIZER;
static uint64_t round_no;
static int answers, started;
static pid_t *tids;
static _Thread_local uint64_t mine;

static void *waiter(void *arg)
{
	int idx = (int)(intptr_t)arg;
	mine = wl_mix((uint64_t)idx);
	pthread_mutex_lock(&mu);
	tids[idx] = (pid_t)syscall(SYS_gettid);
	started++;
	pthread_cond_broadcast(&answered);
	for (uint64_t seen = round_no;;) {
		while (round_no == seen)
			pthread_cond_wait(&wake, &mu);
		seen = round_no;
		if (mine != wl_mix((uint64_t)idx))
			wl_fail("thread %d: its thread-local value changed", idx);
		if (tids[idx] != (pid_t)syscall(SYS_gettid))
			wl_fail("thread %d: tid %d became %d", idx, (int)tids[idx], (int)syscall(SYS_gettid));
		answers++;
		pthread_cond_broadcast(&answered);
	}
	return NULL;
}

static void start_threads(void)
{
	tids = calloc((size_t)count, sizeof *tids);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (int i = 0; i < count; i++) {
		pthread_t t;
		int err = pthread_create(&t, &a, waiter, (void *)(intptr_t)i);
		if (err)
			wl_fail("pthread_create %d: %s", i, strerror(err));
		pthread_detach(t);
	}
	pthread_attr_destroy(&a);
	pthread_mutex_lock(&mu);
	while (started < count)
		pthread_cond_wait(&answered, &mu);
	pthread_mutex_unlock(&mu);
}

static void verify_threads(void)
{
	pthread_mutex_lock(&mu);
	answers = 0;
	round_no++;
	pthread_cond_broadcast(&wake);
	while (answers < count)
		pthread_cond_wait(&answered, &mu);
	pthread_mutex_unlock(&mu);
	char path[64];
	int listed = 0;
	for (int i = 0; i < count; i++) {
		snprintf(path, sizeof path, "/proc/self/task/%d", (int)tids[i]);
		listed += access(path, F_OK) == 0;
	}
	if (listed != count)
		wl_fail("%d of %d threads in /proc/self/task", listed, count);
}

/* ---- descriptors ---- */

static ino_t *inodes;
static int *fdnums;

static void open_fds(const char *dir)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 16) {
		rl.rlim_cur = (rlim_t)count + 16 < rl.rlim_max ? (rlim_t)count + 16 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/wl_limits.%d", dir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		wl_fail("cannot create %s: %s", path, strerror(errno));
	close(fd);
	inodes = calloc((size_t)count, sizeof *inodes);
	fdnums = calloc((size_t)count, sizeof *fdnums);
	for (int i = 0; i < count; i++) {
		fd = open(path, i % 2 ? O_RDONLY : O_RDWR);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || lseek(fd, i, SEEK_SET) != i)
			wl_fail("descriptor %d: %s", i, strerror(errno));
		inodes[i] = st.st_ino;
		fdnums[i] = fd;
	}
}

static void verify_fds(void)
{
	for (int i = 0; i < count; i++) {
		struct stat st;
		int fd = fdnums[i];
		if (fstat(fd, &st) < 0)
			wl_fail("descriptor %d is gone: %s", fd, strerror(errno));
		if (st.st_ino != inodes[i])
			wl_fail("descriptor %d: another file", fd);
		if (lseek(fd, 0, SEEK_CUR) != i)
			wl_fail("descriptor %d: offset %lld, expected %d", fd, (long long)lseek(fd, 0, SEEK_CUR), i);
		int want = i % 2 ? O_RDONLY : O_RDWR;
		if ((fcntl(fd, F_GETFL) & O_ACCMODE) != want)
			wl_fail("descriptor %d: access mode changed", fd);
	}
}

/* ---- shared mappings ---- */

static unsigned char **maps;
static uint64_t *written;

static unsigned char shm_byte(int i, uint64_t gen, size_t off)
{
	return (unsigned char)(wl_mix((uint64_t)i << 32 ^ gen << 16 ^ off / 64) >> 8);
}

static void shm_write(int i, uint64_t gen)
{
	for (size_t off = 0; off < 8192; off += 64)
		maps[i][off] = shm_byte(i, gen, off);
	written[i] = gen;
}

static void map_shared(void)
{
	maps = calloc((size_t)count, sizeof *maps);
	written = calloc((size_t)count, sizeof *written);
	for (int i = 0; i < count; i++) {
		maps[i] = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED)
			wl_fail("mmap %d: %s", i, strerror(errno));
		shm_write(i, 1);
	}
}

static void verify_shared(void)
{
	for (int i = 0; i < count; i++)
		for (size_t off = 0; off < 8192; off += 64)
			if (maps[i][off] != shm_byte(i, written[i], off))
				wl_fail("shared mapping %d: byte %zu differs", i, off);
}

/* ---- mappings up to vm.max_map_count ---- */

static void map_to_the_limit(void)
{
	void *last[64];
	int n = 0;
	for (;; n++) {
		void *m = mmap(NULL, 4096, n % 2 ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			break;
		last[n % 64] = m;
	}
	for (int i = 0; i < count && i < 64 && n > 0; i++, n--)   /* room for the program itself */
		munmap(last[(n - 1) % 64], 4096);
}

/* ---- a long command line ---- */

static int nargs;
static char **args;

static void verify_args(void)
{
	for (int i = 0; i < nargs; i++) {
		size_t n = strlen(args[i]);
		if (n != ARG_LEN)
			wl_fail("argument %d: %zu bytes, expected %d", i, n, ARG_LEN);
		for (size_t k = 0; k < n; k++)
			if (args[i][k] != 'a' + i % 26)
				wl_fail("argument %d: byte %zu differs", i, k);
	}
	/* the kernel's view: arg_start..arg_end */
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	size_t total = 0;
	char buf[65536];
	for (ssize_t n; fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0;)
		total += (size_t)n;
	if (fd >= 0)
		close(fd);
	if (total < (size_t)nargs * (ARG_LEN + 1))
		wl_fail("/proc/self/cmdline has %zu bytes, expected at least %zu", total, (size_t)nargs * (ARG_LEN + 1));
}

int main(int argc, char **argv)
{
	wl_init("limits");
	if (argc < 3)
		wl_fail("usage: wl_limits threads|fds|shm|maps N [DIR] | args K ARG...");
	const char *mode = argv[1];
	count = atoi(argv[2]);
	if (!strcmp(mode, "threads"))
		start_threads();
	else if (!strcmp(mode, "fds"))
		open_fds(argc > 3 ? argv[3] : "/tmp");
	else if (!strcmp(mode, "shm"))
		map_shared();
	else if (!strcmp(mode, "maps"))
		map_to_the_limit();
	else if (!strcmp(mode, "args")) {
		nargs = argc - 3;
		args = argv + 3;
		if (nargs != count)
			wl_fail("%d arguments, expected %d", nargs, count);
		verify_args();
	} else
		wl_fail("unknown mode %s", mode);
	wl_out("limits ready pid %d mode %s count %d", (int)wl_pid0, mode, count);

	for (uint64_t tick = 1;; tick++) {
		wl_check_ids();
		if (nargs == 0 && maps)
			shm_write((int)(tick % (uint64_t)count), tick + 1);
		if (wl_take_verify()) {
			if (tids)
				verify_threads();
			else if (inodes)
				verify_fds();
			else if (maps)
				verify_shared();
			else
				verify_args();
			wl_out("VERIFY OK limits mode=%s count=%d tick=%llu", mode, count, (unsigned long long)tick);
		}
		wl_out("limits %llu", (unsigned long long)tick);
		wl_sleep_ms(20);
	}
}
