/* Regular files, directories, character devices and memfds: opened again at the
 * offset they had. An unlinked file or a memfd is opened again from the object
 * us-init made once from its saved contents (FILE record, restore_tree.c), which
 * is also what a mapping of it maps. The group's output log is the restoring
 * node's: a restore on another node opens that node's instead. */
#include <stddef.h>
#include "kinds.h"

#ifdef US_FD_CAPTURE
#include <fcntl.h>
#include "../common/us_fmt.h"

/* An anonymous inode of a kind not in the table is unsupported, whatever mode
 * it shows. */
static int is_file(const struct us_fd_capture *c)
{
	return S_ISREG(c->st.st_mode) && !us_startswith(c->link, "anon_inode:");
}

static int is_memfd(const struct us_fd_capture *c)
{
	return S_ISREG(c->st.st_mode) && us_startswith(c->link, "/memfd:");
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

/* The group's output log, as the agent names it (UNDERSTUDY_OUTPUT), looked up
 * once per image. */
static struct stat output_log;
static int have_output_log;

static void find_output_log(struct scratch *s)
{
	(void)s;
	have_output_log = us.output_path[0] && us_sc2(SYS_stat, us.output_path, &output_log) == 0;
}

/* The output log is recorded under the agent's name for it, whatever path the
 * kernel shows (a group directory that is a symlink): the restore finds it by
 * that name, which the checkpoint's manifest holds. */
static void capture_file(struct us_fd_capture *c)
{
	capture_offset(c);
	if (have_output_log && c->st.st_dev == output_log.st_dev && c->st.st_ino == output_log.st_ino)
		c->name = us.output_path;
}

static void capture_memfd(struct us_fd_capture *c)
{
	capture_offset(c);
	long seals = us_sc2(SYS_fcntl, c->fd, F_GET_SEALS);
	c->rec.aux[0] = seals > 0 ? (uint64_t)seals : 0;
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
	us_fd_path(f, path, sizeof path);
	const char *output = f->kind == US_FD_FILE ? restore_output_log_for(path) : NULL;
	if (output) {
		/* this node's output log, written on from its end as the source's was */
		int fd = open(output, restore_open_flags(f) | O_CREAT | O_NOFOLLOW, 0600);
		if (fd < 0)
			restore_fail(p, "cannot-open-output-log", output);
		lseek(fd, 0, SEEK_END);
		return fd;
	}
	int fd = open(path, restore_open_flags(f));
	if (fd < 0)
		restore_fail(p, "cannot-open-file", path);
	if (f->kind != US_FD_CHR && lseek(fd, (off_t)f->pos, SEEK_SET) < 0 && f->pos)
		restore_fail(p, "cannot-seek", path);
	return fd;
}

/* Another open file of an object made once in PID 1, at the record's offset. */
static int reopen_object(const struct proc *p, const struct us_rec_fd *f, const struct us_object *o)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", o->fd);
	int fd = open(path, restore_open_flags(f));
	if (fd < 0 || lseek(fd, (off_t)f->pos, SEEK_SET) < 0)
		restore_fail(p, "cannot-reopen-unlinked-file", NULL);
	return fd;
}

static int restore_file(const struct proc *p, const struct us_rec_fd *f)
{
	struct us_object *o = restore_find_object(US_OBJ_SHARED_MEMORY, f->dev, f->inode);
	return o ? reopen_object(p, f, o) : open_again(p, f);
}

static int restore_memfd(const struct proc *p, const struct us_rec_fd *f)
{
	struct us_object *o = restore_find_object(US_OBJ_SHARED_MEMORY, f->dev, f->inode);
	if (!o)
		restore_fail(p, "memfd-contents-missing", NULL);
	return reopen_object(p, f, o);
}
#endif

const struct us_fd_ops us_fd_file = {
	.kind = US_FD_FILE,
	.begin = US_CAPTURE(find_output_log),
	.detect = US_CAPTURE(is_file),
	.capture = US_CAPTURE(capture_file),
	.restore = US_RESTORE(restore_file),
	.open_key = 1,
};

const struct us_fd_ops us_fd_memfd = {
	.kind = US_FD_MEMFD,
	.detect = US_CAPTURE(is_memfd),
	.capture = US_CAPTURE(capture_memfd),
	.restore = US_RESTORE(restore_memfd),
	.open_key = 1,
};

const struct us_fd_ops us_fd_dir = {
	.kind = US_FD_DIR,
	.detect = US_CAPTURE(is_dir),
	.capture = US_CAPTURE(capture_offset),
	.restore = US_RESTORE(open_again),
	.open_key = 1,
};

const struct us_fd_ops us_fd_chr = {
	.kind = US_FD_CHR,
	.detect = US_CAPTURE(is_chr),
	.capture = US_CAPTURE(capture_chr),
	.restore = US_RESTORE(open_again),
	.open_key = 1,
};
