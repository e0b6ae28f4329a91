/* Descriptor kinds: one entry per enum us_fd_kind (us_image.h), holding how the
 * interceptor captures a descriptor of that kind and how us-init makes it again.
 *
 * A kind's capture and restore live in one file of this directory, which both
 * binaries compile: the interceptor with US_FD_CAPTURE, us-init with
 * US_FD_RESTORE. Each builds its own half of every file; the other half's
 * functions are NULL in its entries. Capture halves run with the group frozen:
 * raw system calls and the capture's scratch memory, no libc calls. Restore
 * halves are ordinary libc code.
 *
 * A new kind: its value in us_image.h (and docs/image-format.md), its entry in a
 * file here, and its place in us_fd_kinds[] (kinds.c). */
#ifndef US_FD_KINDS_H
#define US_FD_KINDS_H

#include <stdint.h>
#include "../../include/us_image.h"

#if defined(US_FD_CAPTURE) == defined(US_FD_RESTORE)
#error "descriptor kinds build with one of US_FD_CAPTURE (interceptor) or US_FD_RESTORE (us-init)"
#endif

#ifdef US_FD_CAPTURE
#define US_CAPTURE(fn) fn
#define US_RESTORE(fn) NULL
#else
#define US_CAPTURE(fn) NULL
#define US_RESTORE(fn) fn
#endif

struct scratch;
struct us_fd_capture;
struct proc;

struct us_fd_ops {
	uint32_t kind;                  /* enum us_fd_kind */

	/* Interceptor, group frozen. Once per image, before any descriptor. */
	void (*begin)(struct scratch *s);
	/* Whether the descriptor is of this kind; the first kind in us_fd_kinds[]
	 * that says so captures it. */
	int (*detect)(const struct us_fd_capture *c);
	/* Fills in the kind's parts of the record: aux, pos, name, queued data. */
	void (*capture)(struct us_fd_capture *c);

	/* us-init, in PID 1, before any process exists: makes the objects this
	 * record shares with other processes' records (a pipe, a socket pair), so
	 * that every process inherits the same ones. 0, or -1 to fail the restore. */
	int (*share)(const struct us_rec_fd *f);
	/* The same, in a second pass, once every record's share has run (a TCP
	 * connection binds to its listener's port, which must be bound first). */
	int (*share_late)(const struct us_rec_fd *f);
	/* us-init, in PID 1, for a record whose open file several descriptors share
	 * (open_key): that open file, made once. NULL: restore, run in PID 1. */
	int (*share_open)(const struct proc *p, const struct us_rec_fd *f);
	/* us-init, in the process being restored: a descriptor for the record,
	 * which the caller places at f->fd; -1 fails the restore. NULL: the kind
	 * is not made by us-init (the coordinator link: the interceptor's own). */
	int (*restore)(const struct proc *p, const struct us_rec_fd *f);
	/* us-init, in the process being restored, once the descriptor is at f->fd,
	 * however it was made: what only its own process can do with it. */
	void (*placed)(const struct proc *p, const struct us_rec_fd *f);
	/* Restored after every other kind, because it refers to them (epoll). */
	int restore_last;
	/* aux[3] holds the open file's key (US_FD_AUX_OPEN_KEY): descriptors of one
	 * open file are one again after a restore, made once in PID 1. */
	int open_key;
};

/* Every kind, in the order the capture tries them; NULL-terminated (kinds.c). */
extern const struct us_fd_ops *const us_fd_kinds[];
/* The entry of a kind in an image, NULL for none. */
const struct us_fd_ops *us_fd_ops_of(uint32_t kind);

#ifdef US_FD_CAPTURE
#include <sys/stat.h>
#include "../interceptor/capture.h"

/* One descriptor being captured: what every kind may look at, and the record it
 * fills in. */
struct us_fd_capture {
	struct scratch *s;              /* its data area is free for the kind to use */
	int fd;
	struct stat st;
	int domain, type;               /* sockets: SO_DOMAIN, SO_TYPE */
	char link[US_PATH_MAX];         /* where /proc/self/fd/<fd> points; a kind may reuse it */
	struct us_rec_fd rec;           /* fd, flags, identity and mode filled in */
	const char *name;               /* the record's path: link, unless the kind changes it */
	const char *data;               /* what the record carries: s->data unless the kind sets it */
	uint32_t data_len;              /* how many bytes of it */
};

/* mqueue.c: a message queue is a regular file too, but not one to save */
int us_fd_is_mqueue(int fd);
#endif

#ifdef US_FD_RESTORE
#include <stddef.h>

/* kinds.c: reading a record */
/* Its path, terminated in out (cut at cap - 1), and its data. */
const char *us_fd_path(const struct us_rec_fd *f, char *out, size_t cap);
const char *us_fd_data(const struct us_rec_fd *f);
/* Its status flags, less those that only mean something to open(). */
int restore_open_flags(const struct us_rec_fd *f);
/* fd, given the record's status flags (O_NONBLOCK, ...): for kinds whose making
 * does not set them. */
int restore_status_flags(int fd, const struct us_rec_fd *f);
/* Writes the record's queued data into fd (a new pipe). 0 or -1. */
int restore_queue(int fd, const struct us_rec_fd *f);

/* restore_tree.c: the group being restored */

/* An object made once in PID 1 and inherited by every process of the group. */
struct us_object { uint64_t dev, ino; int kind; int fd, fd2; };
#define US_OBJ_SHARED_MEMORY (-1)       /* the memfd or file made for shared memory or an unlinked file */
#define US_OBJ_OPEN_FILE (-2)           /* an open file several descriptors share; ino: its key */

struct us_object *restore_find_object(int kind, uint64_t dev, uint64_t ino);
/* Keeps fd (and fd2, -1 for none) as an object, moved above the descriptors any
 * process will need. */
void restore_add_object(int kind, uint64_t dev, uint64_t ino, int fd, int fd2);
/* fd moved above every number a record will take (closing fd); -1 stays -1. */
int restore_move_high(int fd);
/* The first record of any process that holds queued data for this object: every
 * holder peeked the same queue at the same frozen instant. */
const struct us_rec_fd *restore_queued_data(int kind, uint64_t dev, uint64_t ino);
/* The key of the record's open file: aux[3] when the kind has one and it is set,
 * else the record's own (vpid, fd). */
uint64_t restore_open_key(const struct proc *p, const struct us_rec_fd *f);
/* The open file of p's record, made once in PID 1 (by the kind's share_open or
 * restore) and kept as an object that every descriptor with its key duplicates:
 * its descriptor in PID 1, or -1. */
int restore_open_file(const struct proc *p, const struct us_rec_fd *f);
/* The group's records, one a call: *cursor 0 first; NULL after the last.
 * *holder is the record's process. */
const struct us_rec_fd *restore_next_record(long *cursor, const struct proc **holder);
/* The same, only the records whose open file has this key (US_FD_AUX_OPEN_KEY). */
const struct us_rec_fd *restore_next_with_key(uint64_t key, long *cursor, const struct proc **holder);
/* The restoring node's output log (us-init's --output) when path names the
 * group's output log at the checkpoint and that was another file (the restore
 * plan's output-was), else NULL. */
const char *restore_output_log_for(const char *path);
/* p's pid in the group. */
uint32_t restore_vpid(const struct proc *p);
/* p's record for descriptor fd, or NULL. */
const struct us_rec_fd *restore_fd_of(const struct proc *p, int fd);
/* Whether any process of the group has a descriptor of this kind and inode. */
int restore_in_group(int kind, uint64_t ino);
/* One line to the group's native log. */
void restore_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs why the process cannot be restored, and ends it. */
__attribute__((noreturn)) void restore_fail(const struct proc *p, const char *what, const char *detail);
#endif

#endif
