/* wl_files: descriptors of files without a name, shared as programs share them.
 *
 * The parent creates a file in DIR, opens it twice (two open files of one
 * inode, at different offsets), unlinks it, and makes two memfds: one sealed and
 * only open, one also mapped shared and written through the mapping at every
 * iteration. It forks a child that inherits the unlinked file's first open file
 * and the memfds, and moves the shared offset itself. Both print a count
 * every 20 ms ("files N", "files-child N"); on SIGUSR1 each checks the contents, sizes, offsets, flags and
 * seals, that inherited descriptors are still one open file with the parent's
 * (kcmp) and the two opens of the file are not, that the mapped memfd's
 * descriptor reads what the mapping holds (the parent, which writes it), and that stdout and stderr are one
 * open file, then prints "VERIFY OK files|files-child ...". Usage: wl_files DIR */
#include "wl_common.h"
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define FILE_SIZE 20000
#define MEMFD_SIZE 9000
#define MAPPED_SIZE 8192

static int shared_fd, other_fd, sealed_fd, mapped_fd;
static unsigned char *mapped;
static pid_t parent;

static unsigned char byte_at(uint64_t salt, size_t i)
{
	return (unsigned char)(wl_mix(salt * 1000003u + i) >> 40);
}

static void fill(int fd, uint64_t salt, size_t n)
{
	unsigned char buf[4096];
	for (size_t off = 0; off < n;) {
		size_t k = n - off < sizeof buf ? n - off : sizeof buf;
		for (size_t i = 0; i < k; i++)
			buf[i] = byte_at(salt, off + i);
		if (pwrite(fd, buf, k, (off_t)off) != (ssize_t)k)
			wl_fail("pwrite: %s", strerror(errno));
		off += k;
	}
}

static void check_contents(int fd, uint64_t salt, size_t n, const char *what)
{
	unsigned char buf[4096];
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size != n)
		wl_fail("%s: size %lld, expected %zu", what, (long long)st.st_size, n);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < sizeof buf ? n - off : sizeof buf;
		if (pread(fd, buf, k, (off_t)off) != (ssize_t)k)
			wl_fail("%s: pread: %s", what, strerror(errno));
		for (size_t i = 0; i < k; i++)
			if (buf[i] != byte_at(salt, off + i))
				wl_fail("%s: byte %zu differs", what, off + i);
		off += k;
	}
}

static void check_offset(int fd, off_t want, int flags, const char *what)
{
	off_t at = lseek(fd, 0, SEEK_CUR);
	if (at != want)
		wl_fail("%s: offset %lld, expected %lld", what, (long long)at, (long long)want);
	int got = fcntl(fd, F_GETFL);
	if ((got & (O_ACCMODE | O_APPEND | O_NONBLOCK)) != flags)
		wl_fail("%s: flags 0x%x, expected 0x%x", what, got & (O_ACCMODE | O_APPEND | O_NONBLOCK), flags);
}

static int same_open_file(pid_t a, int fa, pid_t b, int fb)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILE, fa, fb) == 0;
}

static void verify(long iteration, off_t shared_at, int is_child)
{
	check_contents(shared_fd, 1, FILE_SIZE, "the unlinked file");
	check_contents(sealed_fd, 2, MEMFD_SIZE, "the sealed memfd");
	if ((fcntl(shared_fd, F_GETFL) & (O_ACCMODE | O_APPEND)) != (O_RDWR | O_APPEND))
		wl_fail("the unlinked file's shared open file lost its flags");
	check_offset(other_fd, 77, O_RDONLY | O_NONBLOCK, "the unlinked file's second open file");
	check_offset(sealed_fd, 321, O_RDWR, "the sealed memfd");
	int seals = fcntl(sealed_fd, F_GET_SEALS);
	if (seals != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		wl_fail("the memfd's seals are 0x%x", seals);
	unsigned char buf[MAPPED_SIZE];
	if (!is_child && (pread(mapped_fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf || memcmp(buf, mapped, sizeof buf) != 0))
		wl_fail("the mapped memfd's descriptor does not read what its mapping holds");
	char link[128], path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", sealed_fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0 || (link[n] = 0, strncmp(link, "/memfd:wl-sealed", 16) != 0))
		wl_fail("the memfd is now %s", n < 0 ? strerror(errno) : link);
	if (!same_open_file(getpid(), 1, getpid(), 2))
		wl_fail("stdout and stderr are no longer one open file");
	if (same_open_file(getpid(), shared_fd, getpid(), other_fd))
		wl_fail("the file's two opens became one open file");
	wl_out("VERIFY OK %s iteration=%ld offset=%lld", wl_role, iteration, (long long)shared_at);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: wl_files DIR\n");
		return 2;
	}
	wl_init("files");
	char path[4096];
	snprintf(path, sizeof path, "%s/wl_files.%d", argv[1], (int)getpid());
	shared_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
	other_fd = open(path, O_RDONLY | O_NONBLOCK);
	if (shared_fd < 0 || other_fd < 0 || unlink(path) != 0)
		wl_fail("the file %s: %s", path, strerror(errno));
	fill(shared_fd, 1, FILE_SIZE);
	lseek(shared_fd, 1234, SEEK_SET);
	lseek(other_fd, 77, SEEK_SET);

	sealed_fd = memfd_create("wl-sealed", MFD_ALLOW_SEALING);
	mapped_fd = memfd_create("wl-mapped", 0);
	if (sealed_fd < 0 || mapped_fd < 0 || ftruncate(mapped_fd, MAPPED_SIZE) != 0)
		wl_fail("memfd_create: %s", strerror(errno));
	fill(sealed_fd, 2, MEMFD_SIZE);
	lseek(sealed_fd, 321, SEEK_SET);
	if (fcntl(sealed_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		wl_fail("F_ADD_SEALS: %s", strerror(errno));
	mapped = mmap(NULL, MAPPED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mapped_fd, 0);
	if (mapped == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));

	parent = getpid();
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	int is_child = child == 0;
	if (is_child)
		wl_reinit_child("files-child", parent);

	for (long i = 1;; i++) {
		wl_check_ids();
		/* the child moves the offset it shares with the parent; both see it */
		if (is_child && i % 10 == 0)
			lseek(shared_fd, 1234 + (i / 10) % 500, SEEK_SET);
		if (!is_child)
			snprintf((char *)mapped + (i % 8) * 1024, 1024, "iteration %ld", i);
		if (wl_take_verify()) {
			off_t at = lseek(shared_fd, 0, SEEK_CUR);
			if (at < 1234 || at >= 1234 + 500)
				wl_fail("the shared offset is %lld", (long long)at);
			if (!same_open_file(parent, shared_fd, is_child ? getpid() : child, shared_fd))
				wl_fail("the unlinked file is no longer one open file in parent and child");
			if (!same_open_file(parent, sealed_fd, is_child ? getpid() : child, sealed_fd))
				wl_fail("the memfd is no longer one open file in parent and child");
			verify(i, at, is_child);
		}
		wl_out("%s %ld", wl_role, i);
		wl_sleep_ms(20);
	}
}
