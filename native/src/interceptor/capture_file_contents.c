/* Storage checkpointing: regular files the process holds open for writing are
 * saved with the image, so that a restore brings their contents and lengths back
 * to the checkpoint instant, consistent with memory. UNDERSTUDY_FILES limits this
 * to ':'-separated path prefixes ("none": off); the group's output log is never
 * rolled back. Files without a name (unlinked, memfds) open in any mode are
 * always saved: nothing else holds their contents. The contents go to .pages
 * ahead of the page runs. */
#include <fcntl.h>
#include <sys/stat.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_crc32c.h"
#include "../common/us_procfs.h"
#include "../descriptors/kinds.h"
#include "../../include/us_image.h"

static int path_has_suffix(const char *path, const char *suffix)
{
	size_t n = us_strlen(path), k = us_strlen(suffix);
	return n >= k && us_streq(path + n - k, suffix);
}

static int file_wanted(const char *path)
{
	if (us_streq(us.files, "none") || us_streq(path, us.output_path) || us_streq(path, us.log_path) ||
	    us_startswith(path, "/proc/") || us_startswith(path, "/dev/"))
		return 0;
	if (!us.files[0])
		return 1;
	for (const char *p = us.files; *p;) {
		const char *e = p;
		while (*e && *e != ':')
			e++;
		size_t n = (size_t)(e - p);
		int match = n > 0;
		for (size_t i = 0; i < n && match; i++)
			match = path[i] == p[i];
		if (match)
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

static void capture_file(struct scratch *s, int fd, const char *path, const struct stat *st, uint32_t flags)
{
	char proc[64];
	int rd = (int)us_sc4(SYS_openat, AT_FDCWD, fd_proc_path(proc, sizeof proc, "fd", fd), O_RDONLY | O_CLOEXEC, 0);
	if (rd < 0) {
		capture_fail(s, "cannot read a file open for writing:", path, rd);
		return;
	}
	struct us_rec_file r = { .dev = st->st_dev, .inode = st->st_ino, .size = (uint64_t)st->st_size,
		.pages_off = s->pages_len, .path_len = (uint32_t)us_strlen(path), .flags = flags };
	for (uint64_t off = 0; off < r.size && !s->failed;) {
		uint64_t want = r.size - off < DATA_MAX ? r.size - off : DATA_MAX;
		long got = us_sc4(SYS_pread64, rd, s->data, want, off);
		if (got <= 0) {
			capture_fail(s, "file shrank while frozen:", path, got);
			break;
		}
		r.crc = us_crc32c(r.crc, s->data, (uint64_t)got);
		int w = write_all(s->pages_fd, s->data, (uint64_t)got);
		if (w)
			capture_fail(s, "cannot write the pages file", NULL, w);
		off += (uint64_t)got;
	}
	us_sc1(SYS_close, rd);
	uint64_t padded = (r.size + US_PAGE_SIZE - 1) / US_PAGE_SIZE * US_PAGE_SIZE;
	for (uint64_t i = r.size; i < padded; i++)
		s->data[i - r.size] = 0;
	if (padded > r.size && write_all(s->pages_fd, s->data, padded - r.size))
		capture_fail(s, "cannot write the pages file", NULL, 0);
	s->pages_len += padded;
	rec_begin(s, US_REC_FILE);
	meta_add(s, &r, sizeof r);
	meta_add(s, path, r.path_len);
	rec_end(s);
}

void capture_file_contents(struct scratch *s, const int *fds, int n)
{
	struct { uint64_t dev, ino; } seen[256];
	int nseen = 0;
	for (int i = 0; i < n && !s->failed; i++) {
		char path[US_PATH_MAX], proc[64];
		struct stat st;
		int flags = (int)us_sc2(SYS_fcntl, fds[i], F_GETFL);
		if (fds[i] == us.coord_fd || fds[i] == us.uffd || us_sc2(SYS_fstat, fds[i], &st) < 0 || !S_ISREG(st.st_mode) ||
		    us_fd_is_mqueue(fds[i]) || us_read_link(fd_proc_path(proc, sizeof proc, "fd", fds[i]), path, sizeof path) <= 0 ||
		    us_startswith(path, "anon_inode:"))
			continue;
		int unlinked = path_has_suffix(path, " (deleted)");
		if (!unlinked && ((flags & O_ACCMODE) == O_RDONLY || !file_wanted(path)))
			continue;
		int dup = 0;
		for (int k = 0; k < nseen; k++)
			dup |= seen[k].ino == st.st_ino && seen[k].dev == st.st_dev;
		if (dup)
			continue;
		if (nseen < 256) {
			seen[nseen].dev = st.st_dev;
			seen[nseen++].ino = st.st_ino;
		}
		if ((uint64_t)st.st_size > us.files_max) {
			capture_fail(s, unlinked ? "an unlinked file or memfd is larger than UNDERSTUDY_FILES_MAX; raise it:"
						 : "a file open for writing is larger than UNDERSTUDY_FILES_MAX; raise it or leave the file out with UNDERSTUDY_FILES:",
				     path, 0);
			return;
		}
		capture_file(s, fds[i], path, &st, unlinked ? US_FILE_F_UNLINKED : 0);
	}
}
