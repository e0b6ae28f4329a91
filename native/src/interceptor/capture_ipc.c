/* The group's IPC namespace: SysV shared memory segments, semaphore sets and
 * message queues, and POSIX message queues (in the group's mqueue mount,
 * /dev/mqueue). They belong to the namespace, not to a process, so one member,
 * the one WRITE names with "ipc", captures them all into its image; us-init makes
 * them again under the same ids and names before any process of a restore starts
 * (src/init/restore_ipc.c).
 *
 * Nothing the application can see changes: a segment is read through a read-only
 * attachment of our own, like files its contents go to .pages; SysV messages are
 * copied with MSG_COPY. A POSIX queue can only be read by receiving, so its
 * messages are received and sent back in the same order (every thread is out of
 * its blocking call while frozen, so none takes or gives one meanwhile). */
#include <errno.h>
#include <fcntl.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include "capture.h"
#include "../common/us_crc32c.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

#ifndef MSG_COPY
#define MSG_COPY 040000                 /* the kernel ABI's; glibc leaves it out */
#endif
#define MQUEUE_MAGIC 0x19800202         /* the mqueue file system's f_type (kernel ABI) */
#define MQUEUE_DIR "/dev/mqueue"

static void ipc_record(struct scratch *s, const struct us_rec_ipc *o, const char *name, const void *data)
{
	rec_begin(s, US_REC_IPC);
	meta_add(s, o, sizeof *o);
	meta_add(s, data, o->data_len);
	meta_add(s, name, o->name_len);
	rec_end(s);
}

/* The numbers of one line of a /proc/sysvipc file, in its column order; perms is
 * octal (column 2), the key may be negative. Returns the next line. */
static const char *sysvipc_line(const char *p, int64_t *f, int n)
{
	for (int i = 0; i < n; i++) {
		us_skip_spaces(&p);
		int neg = *p == '-';
		p += neg;
		uint64_t v = us_parse_u(&p, i == 2 ? 8 : 10);
		f[i] = neg ? -(int64_t)v : (int64_t)v;
	}
	while (*p && *p != '\n')
		p++;
	return *p ? p + 1 : p;
}

/* Calls fn for every object that /proc/sysvipc/<what> lists, with its first
 * ncols numbers. The listing goes to the maps area, free until capture_memory. */
static void each_object(struct scratch *s, const char *what, int ncols,
			void (*fn)(struct scratch *, const int64_t *))
{
	char path[64];
	struct us_buf b = { path, 0, sizeof path };
	us_put(&b, "/proc/sysvipc/");
	us_put(&b, what);
	long n = us_read_file(us_term(&b), s->maps, MAPS_MAX);
	if (n < 0) {
		capture_fail(s, "cannot read", path, n);
		return;
	}
	const char *p = s->maps;
	while (*p && *p++ != '\n')   /* the header */
		;
	while (*p && !s->failed) {
		int64_t f[9];
		p = sysvipc_line(p, f, ncols);
		fn(s, f);
	}
}

/* /proc/sysvipc/shm: key shmid perms size cpid lpid nattch uid gid */
static void capture_shm(struct scratch *s, const int64_t *f)
{
	struct us_rec_ipc o = { .kind = US_IPC_SHM, .id = (int32_t)f[1], .key = (int32_t)f[0], .mode = (uint32_t)f[2],
		.uid = (uint32_t)f[7], .gid = (uint32_t)f[8], .size = (uint64_t)f[3], .pages_off = s->pages_len };
	long at = us_sc3(SYS_shmat, o.id, 0, SHM_RDONLY);
	if (at < 0 && at > -4096) {
		capture_fail(s, "cannot read SysV shared memory segment (shmat)", NULL, at);
		return;
	}
	o.crc = us_crc32c(0, (const void *)at, o.size);
	int w = write_all(s->pages_fd, (const void *)at, o.size);
	us_sc1(SYS_shmdt, at);
	static const char zeros[US_PAGE_SIZE];
	uint64_t pad = (US_PAGE_SIZE - o.size % US_PAGE_SIZE) % US_PAGE_SIZE;
	if (w || (pad && (w = write_all(s->pages_fd, zeros, pad)))) {
		capture_fail(s, "cannot write the pages file", NULL, w);
		return;
	}
	s->pages_len += o.size + pad;
	ipc_record(s, &o, NULL, NULL);
}

/* /proc/sysvipc/sem: key semid perms nsems uid gid */
static void capture_sem(struct scratch *s, const int64_t *f)
{
	struct us_rec_ipc o = { .kind = US_IPC_SEM, .id = (int32_t)f[1], .key = (int32_t)f[0], .mode = (uint32_t)f[2],
		.uid = (uint32_t)f[4], .gid = (uint32_t)f[5], .size = (uint64_t)f[3] };
	o.data_len = (uint32_t)(o.size * sizeof(uint16_t));
	long r = us_sc4(SYS_semctl, o.id, 0, GETALL, s->data);
	if (r < 0) {
		capture_fail(s, "cannot read a SysV semaphore set (GETALL)", NULL, r);
		return;
	}
	ipc_record(s, &o, NULL, s->data);
}

/* Appends one message to the record's data being built at *len in s->data. */
static int add_message(struct scratch *s, uint32_t *len, int64_t type, const void *text, uint64_t n)
{
	struct us_ipc_msg m = { type, (uint32_t)n, 0 };
	uint64_t need = sizeof m + US_REC_ALIGN(n);
	if (*len + need > DATA_MAX / 2) {
		capture_fail(s, "a message queue holds more than", "2 MiB of messages", 0);
		return -1;
	}
	char *at = s->data + *len;
	__builtin_memcpy(at, &m, sizeof m);
	__builtin_memmove(at + sizeof m, text, n);
	for (uint64_t i = n; i < US_REC_ALIGN(n); i++)
		at[sizeof m + i] = 0;
	*len += (uint32_t)need;
	return 0;
}

/* /proc/sysvipc/msg: key msqid perms cbytes qnum lspid lrpid uid gid */
static void capture_msg(struct scratch *s, const int64_t *f)
{
	struct us_rec_ipc o = { .kind = US_IPC_MSG, .id = (int32_t)f[1], .key = (int32_t)f[0], .mode = (uint32_t)f[2],
		.uid = (uint32_t)f[7], .gid = (uint32_t)f[8] };
	struct msqid_ds ds;
	long r = us_sc3(SYS_msgctl, o.id, IPC_STAT, &ds);
	if (r < 0) {
		capture_fail(s, "cannot read a SysV message queue (IPC_STAT)", NULL, r);
		return;
	}
	o.size = ds.msg_qbytes;
	/* each copy lands in the second half of the data area, then is appended */
	char *copy = s->data + DATA_MAX / 2;
	for (uint64_t i = 0; i < (uint64_t)f[4]; i++) {
		r = us_sc5(SYS_msgrcv, o.id, copy, DATA_MAX / 2 - sizeof(long), i, MSG_COPY | IPC_NOWAIT);
		if (r < 0) {
			capture_fail(s, "cannot copy a SysV message (MSG_COPY)", NULL, r);
			return;
		}
		if (add_message(s, &o.data_len, *(long *)copy, copy + sizeof(long), (uint64_t)r) < 0)
			return;
		o.count++;
	}
	ipc_record(s, &o, NULL, s->data);
}

/* One queue of /dev/mqueue: its messages are received, recorded, and sent back. */
static void capture_mqueue(struct scratch *s, int dir, const char *name)
{
	char status[128];
	struct stat st;
	int fd = (int)us_sc4(SYS_openat, dir, name, O_RDONLY | O_CLOEXEC, 0);
	long n = fd < 0 ? fd : us_sc3(SYS_read, fd, status, sizeof status - 1);
	if (fd >= 0 && us_sc2(SYS_fstat, fd, &st) < 0)
		n = -EIO;
	if (fd >= 0)
		us_sc1(SYS_close, fd);
	if (n < 0) {
		capture_fail(s, "cannot read POSIX message queue", name, n);
		return;
	}
	status[n] = 0;
	const char *notify = status;
	while (*notify && !us_startswith(notify, "NOTIFY_PID:"))
		notify++;
	notify += *notify ? 11 : 0;
	us_skip_spaces(&notify);
	if (us_parse_u(&notify, 10)) {
		capture_fail(s, "a restore cannot make a notification request (mq_notify) again: POSIX message queue", name, 0);
		return;
	}
	int q = (int)us_sc4(SYS_mq_open, name, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0, 0);
	struct mq_attr { long flags, maxmsg, msgsize, curmsgs, pad[4]; } attr;
	long r = q < 0 ? q : us_sc3(SYS_mq_getsetattr, q, 0, &attr);
	if (r < 0) {
		capture_fail(s, "cannot open POSIX message queue", name, r);
		if (q >= 0)
			us_sc1(SYS_close, q);
		return;
	}
	struct us_rec_ipc o = { .kind = US_IPC_MQUEUE, .mode = st.st_mode & 07777, .uid = st.st_uid, .gid = st.st_gid,
		.size = (uint64_t)attr.maxmsg, .msg_size = (uint64_t)attr.msgsize, .name_len = (uint32_t)us_strlen(name) };
	if ((uint64_t)attr.curmsgs * (sizeof(struct us_ipc_msg) + US_REC_ALIGN((uint64_t)attr.msgsize)) > DATA_MAX / 2) {
		capture_fail(s, "a message queue holds more than 2 MiB of messages:", name, 0);
		us_sc1(SYS_close, q);
		return;
	}
	char *text = s->data + DATA_MAX / 2;
	for (long i = 0; i < attr.curmsgs; i++) {
		unsigned prio = 0;
		r = us_sc5(SYS_mq_timedreceive, q, text, attr.msgsize, &prio, 0);
		if (r < 0) {
			capture_fail(s, "cannot read POSIX message queue", name, r);
			break;
		}
		add_message(s, &o.data_len, prio, text, (uint64_t)r);
		o.count++;
	}
	/* back in the order they came out: the queue is as it was */
	for (const char *m = s->data, *end = s->data + o.data_len; m < end;) {
		const struct us_ipc_msg *h = (const void *)m;
		r = us_sc5(SYS_mq_timedsend, q, m + sizeof *h, h->len, (unsigned)h->type, 0);
		if (r < 0)
			capture_fail(s, "cannot put a message back into POSIX message queue", name, r);
		m += sizeof *h + US_REC_ALIGN(h->len);
	}
	us_sc1(SYS_close, q);
	if (!s->failed)
		ipc_record(s, &o, name, s->data);
}

static void capture_mqueues(struct scratch *s)
{
	struct statfs fs;
	int dir = (int)us_sc4(SYS_openat, AT_FDCWD, MQUEUE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dir < 0 || us_sc2(SYS_fstatfs, dir, &fs) < 0 || fs.f_type != MQUEUE_MAGIC) {
		capture_fail(s, "the group has no mqueue file system at", MQUEUE_DIR, dir < 0 ? dir : 0);
		if (dir >= 0)
			us_sc1(SYS_close, dir);
		return;
	}
	/* the listing goes to the maps area, names are copied out before each capture */
	for (long n; !s->failed && (n = us_sc3(SYS_getdents64, dir, s->maps, MAPS_MAX / 2)) > 0;) {
		for (long off = 0; off < n && !s->failed;) {
			struct { uint64_t ino, off; uint16_t reclen; uint8_t type; char name[]; } *d = (void *)(s->maps + off);
			char name[256];
			size_t len = us_strlen(d->name);
			for (size_t i = 0; i <= len && i < sizeof name; i++)
				name[i] = d->name[i];
			off += d->reclen;
			if (name[0] != '.')
				capture_mqueue(s, dir, name);
		}
	}
	us_sc1(SYS_close, dir);
}

void capture_ipc(struct scratch *s)
{
	each_object(s, "shm", 9, capture_shm);
	each_object(s, "sem", 6, capture_sem);
	each_object(s, "msg", 9, capture_msg);
	if (!s->failed)
		capture_mqueues(s);
}
