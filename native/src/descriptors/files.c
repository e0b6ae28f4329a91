/* Regular files, directories and character devices: opened again by path, at
 * the offset they had. A memfd or deleted file that a process also maps is the
 * shared memory object made for the mapping (restore_tree.c). */
#include <stddef.h>
#include "kinds.h"

#ifdef US_FD_CAPTURE
#include "../common/us_fmt.h"

/* An anonymous inode of a kind not in the table is unsupported, whatever mode
 * it shows. */
static int is_file(const struct us_fd_capture *c)
{
	return S_ISREG(c->st.st_mode) && !us_startswith(c->link, "anon_inode:");
}

static int is_dir(const struct us_fd_capture *c)
{
	return S_ISDIR(c->st.st_mode);
}

static int is_chr(const struct us_fd_capture *c)
{
	return S_ISCHR(c->st.st_mode);
}

static void capture_offset(struct us_fd_capture *c)
{
	c->rec.pos = (uint64_t)us_sc3(SYS_lseek, c->fd, 0, SEEK_CUR);
}

static void capture_chr(struct us_fd_capture *c)
{
	c->rec.aux[0] = c->st.st_rdev;
}
#endif

#ifdef US_FD_RESTORE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int open_again(const struct proc *p, const struct us_rec_fd *f)
{
	char path[4096];
	int fd = open(us_fd_path(f, path, sizeof path), restore_open_flags(f));
	if (fd < 0)
		restore_fail(p, "cannot-open-file", path);
	if (f->kind != US_FD_CHR && lseek(fd, (off_t)f->pos, SEEK_SET) < 0 && f->pos)
		restore_fail(p, "cannot-seek", path);
	return fd;
}

static int restore_file(const struct proc *p, const struct us_rec_fd *f)
{
	/* a memfd or deleted file: the same object as a shared mapping of it */
	struct us_object *o = restore_find_object(US_OBJ_SHARED_MEMORY, f->dev, f->inode);
	if (!o)
		return open_again(p, f);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", o->fd);
	int fd = open(path, restore_open_flags(f));
	if (fd < 0 || lseek(fd, (off_t)f->pos, SEEK_SET) < 0)
		restore_fail(p, "cannot-reopen-shared-memory", NULL);
	return fd;
}
#endif

const struct us_fd_ops us_fd_file = {
	.kind = US_FD_FILE,
	.detect = US_CAPTURE(is_file),
	.capture = US_CAPTURE(capture_offset),
	.restore = US_RESTORE(restore_file),
};

const struct us_fd_ops us_fd_dir = {
	.kind = US_FD_DIR,
	.detect = US_CAPTURE(is_dir),
	.capture = US_CAPTURE(capture_offset),
	.restore = US_RESTORE(open_again),
};

const struct us_fd_ops us_fd_chr = {
	.kind = US_FD_CHR,
	.detect = US_CAPTURE(is_chr),
	.capture = US_CAPTURE(capture_chr),
	.restore = US_RESTORE(open_again),
};
