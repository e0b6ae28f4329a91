/* wl_ipc: IPC objects of every kind, with contents and with threads waiting on them.
 *
 *   SysV shared memory: "attached" (a key, mapped twice), "detached" (IPC_PRIVATE,
 *     not mapped: only its shmid reaches it), "removed" (mapped, then IPC_RMID)
 *   a SysV semaphore set of three, at 3, 0, 7; a thread waits in semop on the second
 *   a SysV message queue holding messages of types 1 to 3; a thread waits in msgrcv
 *     for type 9, which is not there
 *   a POSIX message queue holding messages of priorities 0 to 5; another, empty, on
 *     which a thread waits in mq_receive
 *
 * It prints "count N" every 20 ms. On SIGUSR1 it checks that every id still names
 * its object with its contents (shmat(shmid) of the detached segment, the segment's
 * two mappings still one memory, the semaphore values, the queued messages in
 * order, copied without taking them), that each waiter still waits (the semaphore's
 * GETNCNT is 1), then wakes each one with a token (semop, msgsnd, mq_send), waits
 * until each took its own and waits again, and prints "VERIFY OK ipc ...". */
#include "wl_common.h"
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#define SHM_KEY 0x5753484d
#define SEM_KEY 0x57534d45
#define MSG_KEY 0x57534d51
#define SEG (64 * 1024)
#define QUEUE_NAME "/wl_ipc_queue"
#define WAIT_NAME "/wl_ipc_wait"
#define MSG_TYPES 3
#define QUEUE_MSGS 6

static int shm_attached, shm_detached, shm_removed, sem_id, msg_id;
static char *attached_a, *attached_b, *removed_at;
static mqd_t queue, wait_queue;
static volatile uint64_t sem_wakes, msg_wakes, mq_wakes;

static unsigned char seg_byte(int seg, size_t i) { return (unsigned char)(wl_mix((uint64_t)seg * 7919 + i / 64) >> (i % 64)); }

static void fill_segment(char *at, int seg)
{
	for (size_t i = 0; i < SEG; i++)
		at[i] = (char)seg_byte(seg, i);
}

static void check_segment(const char *at, int seg, const char *what)
{
	for (size_t i = 0; i < SEG; i++)
		if ((unsigned char)at[i] != seg_byte(seg, i))
			wl_fail("shared memory %s: byte %zu differs", what, i);
}

static char *attach(int id, const char *what)
{
	char *at = shmat(id, NULL, 0);
	if (at == (void *)-1)
		wl_fail("shmat %s (shmid %d): %s", what, id, strerror(errno));
	return at;
}

static void *sem_waiter(void *arg)
{
	(void)arg;
	for (;;) {
		struct sembuf take = { 1, -1, 0 };
		if (semop(sem_id, &take, 1) != 0) {
			if (errno == EINTR)
				continue;
			wl_fail("semop: %s", strerror(errno));
		}
		sem_wakes++;
	}
	return NULL;
}

static void *msg_waiter(void *arg)
{
	(void)arg;
	for (;;) {
		struct { long type; char text[16]; } m;
		ssize_t n = msgrcv(msg_id, &m, sizeof m.text, 9, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 6 || m.type != 9 || memcmp(m.text, "token", 6))
			wl_fail("msgrcv: got %zd bytes of type %ld, not the token", n, m.type);
		msg_wakes++;
	}
	return NULL;
}

static void *mq_waiter(void *arg)
{
	(void)arg;
	for (;;) {
		char text[64];
		unsigned prio;
		ssize_t n = mq_receive(wait_queue, text, sizeof text, &prio);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 6 || prio != 4 || memcmp(text, "token", 6))
			wl_fail("mq_receive: got %zd bytes at priority %u, not the token (%s)", n, prio,
				n < 0 ? strerror(errno) : "");
		mq_wakes++;
	}
	return NULL;
}

/* Objects a run killed earlier left in this IPC namespace (run outside a group). */
static void remove_stale(void)
{
	int id;
	if ((id = shmget(SHM_KEY, 0, 0)) >= 0)
		shmctl(id, IPC_RMID, NULL);
	if ((id = semget(SEM_KEY, 0, 0)) >= 0)
		semctl(id, 0, IPC_RMID);
	if ((id = msgget(MSG_KEY, 0)) >= 0)
		msgctl(id, IPC_RMID, NULL);
	mq_unlink(QUEUE_NAME);
	mq_unlink(WAIT_NAME);
}

static void make_objects(void)
{
	remove_stale();
	if ((shm_attached = shmget(SHM_KEY, SEG, IPC_CREAT | IPC_EXCL | 0640)) < 0 ||
	    (shm_detached = shmget(IPC_PRIVATE, SEG, IPC_CREAT | 0600)) < 0 ||
	    (shm_removed = shmget(IPC_PRIVATE, SEG, IPC_CREAT | 0600)) < 0)
		wl_fail("shmget: %s", strerror(errno));
	attached_a = attach(shm_attached, "attached");
	attached_b = attach(shm_attached, "attached, again");
	fill_segment(attached_a, 1);
	char *d = attach(shm_detached, "detached");
	fill_segment(d, 2);
	shmdt(d);
	removed_at = attach(shm_removed, "removed");
	fill_segment(removed_at, 3);
	if (shmctl(shm_removed, IPC_RMID, NULL) != 0)
		wl_fail("IPC_RMID: %s", strerror(errno));

	unsigned short values[3] = { 3, 0, 7 };
	if ((sem_id = semget(SEM_KEY, 3, IPC_CREAT | IPC_EXCL | 0600)) < 0 || semctl(sem_id, 0, SETALL, values) != 0)
		wl_fail("semget: %s", strerror(errno));

	if ((msg_id = msgget(MSG_KEY, IPC_CREAT | IPC_EXCL | 0600)) < 0)
		wl_fail("msgget: %s", strerror(errno));
	for (long t = 1; t <= MSG_TYPES; t++) {
		struct { long type; char text[32]; } m = { t, "" };
		int n = snprintf(m.text, sizeof m.text, "message of type %ld", t);
		if (msgsnd(msg_id, &m, (size_t)n + 1, 0) != 0)
			wl_fail("msgsnd: %s", strerror(errno));
	}

	struct mq_attr attr = { .mq_maxmsg = 8, .mq_msgsize = 64 };
	if ((queue = mq_open(QUEUE_NAME, O_CREAT | O_EXCL | O_RDWR, 0640, &attr)) < 0 ||
	    (wait_queue = mq_open(WAIT_NAME, O_CREAT | O_EXCL | O_RDWR, 0600, &attr)) < 0)
		wl_fail("mq_open: %s", strerror(errno));
	for (unsigned i = 0; i < QUEUE_MSGS; i++) {
		char text[64];
		int n = snprintf(text, sizeof text, "message %u at priority %u", i, i % 3);
		if (mq_send(queue, text, (size_t)n + 1, i % 3) != 0)
			wl_fail("mq_send: %s", strerror(errno));
	}
}

static void check_sysv_messages(void)
{
	struct msqid_ds ds;
	if (msgctl(msg_id, IPC_STAT, &ds) != 0 || ds.msg_qnum != MSG_TYPES)
		wl_fail("the SysV message queue (msqid %d) is gone or holds %lu messages, not %d", msg_id,
			(unsigned long)ds.msg_qnum, MSG_TYPES);
	for (long t = 1; t <= MSG_TYPES; t++) {
		struct { long type; char text[32]; } m;
		char want[32];
		snprintf(want, sizeof want, "message of type %ld", t);
		ssize_t n = msgrcv(msg_id, &m, sizeof m.text, t - 1, MSG_COPY | IPC_NOWAIT);
		if (n != (ssize_t)strlen(want) + 1 || m.type != t || strcmp(m.text, want))
			wl_fail("SysV message %ld: %zd bytes of type %ld, not \"%s\"", t - 1, n, m.type, want);
	}
}

/* The queue's messages come out by priority, oldest first; they go back as they came. */
static void check_posix_messages(void)
{
	struct mq_attr attr;
	if (mq_getattr(queue, &attr) != 0 || attr.mq_curmsgs != QUEUE_MSGS || attr.mq_maxmsg != 8 || attr.mq_msgsize != 64)
		wl_fail("the POSIX queue holds %ld messages (max %ld of %ld bytes), not %d", attr.mq_curmsgs, attr.mq_maxmsg,
			attr.mq_msgsize, QUEUE_MSGS);
	char got[QUEUE_MSGS][64];
	unsigned prio[QUEUE_MSGS];
	ssize_t len[QUEUE_MSGS];
	for (int i = 0; i < QUEUE_MSGS; i++) {
		/* sent as message k at priority k % 3: the two at priority 2 first, oldest first */
		unsigned want = 2 - (unsigned)i / 2, sent = want + 3 * (unsigned)(i % 2);
		char text[64];
		snprintf(text, sizeof text, "message %u at priority %u", sent, want);
		len[i] = mq_receive(queue, got[i], sizeof got[i], &prio[i]);
		if (len[i] != (ssize_t)strlen(text) + 1 || prio[i] != want || strcmp(got[i], text))
			wl_fail("POSIX message %d: priority %u, \"%s\", not \"%s\"", i, prio[i], len[i] > 0 ? got[i] : "", text);
	}
	for (int i = 0; i < QUEUE_MSGS; i++)
		if (mq_send(queue, got[i], (size_t)len[i], prio[i]) != 0)
			wl_fail("mq_send: %s", strerror(errno));
}

/* Waits until counter moves past before, and then until its thread waits again. */
static void woke(volatile uint64_t *counter, uint64_t before, const char *what)
{
	for (int waited = 0; *counter == before; waited++) {
		if (waited > 30000)
			wl_fail("the thread waiting in %s did not take its token", what);
		wl_sleep_ms(1);
	}
}

static void verify(void)
{
	check_segment(attached_a, 1, "attached");
	attached_a[100] ^= 0x5a;
	if (attached_b[100] != attached_a[100])
		wl_fail("the two mappings of segment %d are no longer the same memory", shm_attached);
	attached_a[100] ^= 0x5a;
	char *d = attach(shm_detached, "detached");
	check_segment(d, 2, "detached");
	shmdt(d);
	check_segment(removed_at, 3, "removed");
	struct shmid_ds ds;
	if (shmctl(shm_removed, IPC_STAT, &ds) != 0 || !(ds.shm_perm.mode & SHM_DEST))
		wl_fail("segment %d was marked for removal, and is not any more", shm_removed);
	if (shmget(SHM_KEY, 0, 0) != shm_attached)
		wl_fail("the key 0x%x no longer finds segment %d", SHM_KEY, shm_attached);

	unsigned short values[3];
	if (semctl(sem_id, 0, GETALL, values) != 0 || values[0] != 3 || values[1] != 0 || values[2] != 7)
		wl_fail("the semaphore set (semid %d) is gone or changed: %u %u %u", sem_id, values[0], values[1], values[2]);
	int waiting = semctl(sem_id, 1, GETNCNT);
	if (waiting != 1)
		wl_fail("%d threads wait on the semaphore, not 1", waiting);
	check_sysv_messages();
	check_posix_messages();

	uint64_t s0 = sem_wakes, m0 = msg_wakes, q0 = mq_wakes;
	struct sembuf give = { 1, 1, 0 };
	struct { long type; char text[8]; } token = { 9, "token" };
	if (semop(sem_id, &give, 1) != 0 || msgsnd(msg_id, &token, 6, 0) != 0 || mq_send(wait_queue, "token", 6, 4) != 0)
		wl_fail("waking the waiters: %s", strerror(errno));
	woke(&sem_wakes, s0, "semop");
	woke(&msg_wakes, m0, "msgrcv");
	woke(&mq_wakes, q0, "mq_receive");
	while (semctl(sem_id, 1, GETNCNT) != 1)
		wl_sleep_ms(1);
	wl_out("VERIFY OK ipc shmids=%d,%d,%d semid=%d msqid=%d wakes=%llu pid=%d ppid=%d", shm_attached, shm_detached,
	       shm_removed, sem_id, msg_id, (unsigned long long)sem_wakes, (int)wl_pid0, (int)wl_ppid0);
}

int main(void)
{
	wl_init("ipc");
	make_objects();
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	pthread_t t;
	if (pthread_create(&t, NULL, sem_waiter, NULL) || pthread_create(&t, NULL, msg_waiter, NULL) ||
	    pthread_create(&t, NULL, mq_waiter, NULL))
		wl_fail("pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wl_out("ipc ready pid %d shmid %d semid %d msqid %d", (int)wl_pid0, shm_attached, sem_id, msg_id);
	wl_count_forever(verify, 20);
}
