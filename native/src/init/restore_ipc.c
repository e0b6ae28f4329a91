/* The group's IPC objects, made again in its fresh IPC namespace before any
 * process of a restore starts: SysV shared memory segments (filled from .pages),
 * semaphore sets and message queues under their old ids, chosen with
 * /proc/sys/kernel/{shm,sem,msg}_next_id, and POSIX message queues under their
 * names, each with its owner, mode, limits, values and queued messages. The
 * member that captured them is named in WRITE (src/interceptor/capture_ipc.c).
 *
 * What cannot be made again: the pids and times of last operations, the creator
 * (cuid, cgid: us-init), semaphore adjustments on exit (SEM_UNDO). A segment
 * marked for removal is made unmarked; the restorers of the processes attached to
 * it mark it again once attached (restore_tree.c passes them its id). */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>
#include "init.h"
#include "../common/us_crc32c.h"
#include "../common/us_image_check.h"

/* The next SysV object of this kind gets this id. */
static int choose_id(const char *kind, int id)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/sys/kernel/%s_next_id", kind);
	FILE *f = fopen(path, "w");
	int ok = f && fprintf(f, "%d\n", id) > 0;
	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int fill_segment(int id, const struct us_rec_ipc *o, int pages)
{
	char *at = shmat(id, NULL, 0);
	if (at == (void *)-1)
		return -1;
	uint32_t crc = 0;
	int ok = 1;
	for (uint64_t off = 0; ok && off < o->size;) {
		size_t want = o->size - off > (1u << 20) ? (1u << 20) : (size_t)(o->size - off);
		ok = pread(pages, at + off, want, (off_t)(o->pages_off + off)) == (ssize_t)want;
		crc = us_crc32c(crc, at + off, want);
		off += want;
	}
	shmdt(at);
	return ok && crc == o->crc ? 0 : -1;
}

static int make_shm(const struct us_rec_ipc *o, int pages)
{
	if (choose_id("shm", o->id) < 0)
		return -1;
	int id = shmget(o->key, o->size, IPC_CREAT | IPC_EXCL | (o->mode & 0777));
	struct shmid_ds ds;
	if (id != o->id || fill_segment(id, o, pages) < 0 || shmctl(id, IPC_STAT, &ds) < 0)
		return -1;
	ds.shm_perm.uid = o->uid;
	ds.shm_perm.gid = o->gid;
	ds.shm_perm.mode = o->mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0 || ((o->mode & US_IPC_SHM_LOCKED) && shmctl(id, SHM_LOCK, NULL) < 0))
		return -1;
	return 0;
}

static int make_sem(const struct us_rec_ipc *o)
{
	if (choose_id("sem", o->id) < 0)
		return -1;
	int id = semget(o->key, (int)o->size, IPC_CREAT | IPC_EXCL | (o->mode & 0777));
	struct semid_ds ds;
	if (id != o->id || semctl(id, 0, SETALL, o + 1) < 0 ||
	    semctl(id, 0, IPC_STAT, &ds) < 0)
		return -1;
	ds.sem_perm.uid = o->uid;
	ds.sem_perm.gid = o->gid;
	ds.sem_perm.mode = o->mode & 0777;
	return semctl(id, 0, IPC_SET, &ds);
}

/* Calls send for each message of a MSG or MQUEUE record, oldest first. */
static int each_message(const struct us_rec_ipc *o, int (*send)(int, const struct us_ipc_msg *, const char *), int q)
{
	const char *m = (const char *)(o + 1);
	for (uint32_t i = 0; i < o->count; i++) {
		const struct us_ipc_msg *h = (const void *)m;
		if (send(q, h, m + sizeof *h) < 0)
			return -1;
		m += sizeof *h + US_REC_ALIGN(h->len);
	}
	return 0;
}

static int send_msg(int q, const struct us_ipc_msg *h, const char *text)
{
	struct { long type; char text[]; } *m = malloc(sizeof(long) + h->len);
	if (!m)
		return -1;
	m->type = h->type;
	memcpy(m->text, text, h->len);
	int r = msgsnd(q, m, h->len, IPC_NOWAIT);
	free(m);
	return r;
}

static int make_msg(const struct us_rec_ipc *o)
{
	if (choose_id("msg", o->id) < 0)
		return -1;
	int id = msgget(o->key, IPC_CREAT | IPC_EXCL | (o->mode & 0777));
	struct msqid_ds ds;
	if (id != o->id || msgctl(id, IPC_STAT, &ds) < 0)
		return -1;
	ds.msg_perm.uid = o->uid;
	ds.msg_perm.gid = o->gid;
	ds.msg_perm.mode = o->mode & 0777;
	ds.msg_qbytes = o->size;
	return msgctl(id, IPC_SET, &ds) < 0 ? -1 : each_message(o, send_msg, id);
}

static int send_mqueue(int q, const struct us_ipc_msg *h, const char *text)
{
	return mq_send(q, text, h->len, (unsigned)h->type);
}

static int make_mqueue(const struct us_rec_ipc *o)
{
	char name[256];
	if (o->name_len >= sizeof name - 1)
		return -1;
	name[0] = '/';
	memcpy(name + 1, (const char *)(o + 1) + o->data_len, o->name_len);
	name[o->name_len + 1] = 0;
	struct mq_attr attr = { .mq_maxmsg = (long)o->size, .mq_msgsize = (long)o->msg_size };
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK | O_CLOEXEC, o->mode & 07777, &attr);
	if (q < 0)
		return -1;
	int r = fchmod(q, o->mode & 07777) < 0 || fchown(q, o->uid, o->gid) < 0 ? -1 : each_message(o, send_mqueue, q);
	mq_close(q);
	return r;
}

int restore_ipc(const struct init_config *c, const char *meta, size_t meta_len, const char *pages_path)
{
	int pages = open(pages_path, O_RDONLY | O_CLOEXEC);
	if (pages < 0)
		return -1;
	/* the queues are charged to us-init's RLIMIT_MSGQUEUE for a moment: their
	 * owners had room for them */
	struct rlimit was, unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	getrlimit(RLIMIT_MSGQUEUE, &was);
	setrlimit(RLIMIT_MSGQUEUE, &unlimited);
	int failed = 0;
	US_FOR_RECORDS(meta, meta_len, r) {
		const struct us_rec_ipc *o = (const void *)(r + 1);
		if (r->type != US_REC_IPC || failed)
			continue;
		int made = o->kind == US_IPC_SHM ? make_shm(o, pages) : o->kind == US_IPC_SEM ? make_sem(o) :
			   o->kind == US_IPC_MSG ? make_msg(o) : make_mqueue(o);
		if (made < 0) {
			init_log(c, "restore-failed reason=cannot-make-ipc-object kind=%u id=%d key=%d errno=%d",
				 o->kind, o->id, o->key, errno);
			failed = 1;
		}
	}
	setrlimit(RLIMIT_MSGQUEUE, &was);
	close(pages);
	return failed ? -1 : 0;
}
