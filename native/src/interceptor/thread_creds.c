/* Capabilities, the keep-capabilities flag, securebits, the bounding and ambient
 * sets and no_new_privs belong to each thread, not to the process. A program that
 * drops privileges sets them in its own thread, then has glibc change every
 * thread's uid and gid (setxid). The checkpoint thread, left with other flags, lost
 * its capabilities at the uid change, failed the gid change, and glibc aborted the
 * program (setpriv --reuid). So each such change is made in the checkpoint thread
 * too, before the call returns: the freeze signal, which that thread otherwise
 * never gets, asks it to. */
#include <errno.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include "internal.h"
#include "../common/us_fmt.h"

static struct {
	volatile int lock;
	volatile int done;
	long nr;
	uint64_t arg[4];
	struct { uint32_t version; int pid; } cap_header;
	long result;
} mirror = { .done = 1 };

/* In the checkpoint thread, from the freeze handler. */
void us_creds_serve(void)
{
	if (__atomic_load_n(&mirror.done, __ATOMIC_ACQUIRE))
		return;
	mirror.result = mirror.nr == SYS_capset ? us_sc2(SYS_capset, &mirror.cap_header, mirror.arg[1])
						: us_sc5(SYS_prctl, mirror.arg[0], mirror.arg[1], mirror.arg[2], mirror.arg[3], 0);
	__atomic_store_n(&mirror.done, 1, __ATOMIC_RELEASE);
	us_futex_wake(&mirror.done);
}

static void run_in_checkpoint_thread(long nr, const uint64_t arg[4])
{
	int tid = __atomic_load_n(&us.checkpoint_tid, __ATOMIC_ACQUIRE);
	if (!tid || tid == (int)us_sc0(SYS_gettid))
		return;
	us_lock(&mirror.lock);
	mirror.nr = nr;
	for (int i = 0; i < 4; i++)
		mirror.arg[i] = arg[i];
	if (nr == SYS_capset) {
		const uint32_t *h = (const uint32_t *)arg[0];
		mirror.cap_header.version = h[0];
		mirror.cap_header.pid = 0;      /* the checkpoint thread itself */
	}
	__atomic_store_n(&mirror.done, 0, __ATOMIC_RELEASE);
	if (us_sc3(SYS_tgkill, us.vpid, tid, US_SIG_FREEZE) == 0)
		while (!__atomic_load_n(&mirror.done, __ATOMIC_ACQUIRE))
			us_futex_wait(&mirror.done, 0, 100);
	if (mirror.result < 0) {
		char why[160];
		struct us_buf b = { why, 0, sizeof why };
		us_put(&b, nr == SYS_capset ? "capset" : "prctl");
		us_put(&b, ": the checkpoint thread could not follow this thread's change: errno ");
		us_puti(&b, (int)-mirror.result);
		us_log("warning", us_term(&b));
	}
	us_unlock(&mirror.lock);
}

static int capset_targets_self(const void *header)
{
	int pid = ((const int *)header)[1];
	return pid == 0 || pid == (int)us_sc0(SYS_gettid);
}

US_EXPORT int capset(void *header, const void *data)
{
	long r = us_sc2(SYS_capset, header, data);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	if (us.active && capset_targets_self(header)) {
		const uint64_t arg[4] = { (uint64_t)header, (uint64_t)data, 0, 0 };
		run_in_checkpoint_thread(SYS_capset, arg);
	}
	return 0;
}

static int per_thread_credential(int option, unsigned long arg2)
{
	switch (option) {
	case PR_SET_KEEPCAPS:
	case PR_SET_SECUREBITS:
	case PR_CAPBSET_DROP:
	case PR_SET_NO_NEW_PRIVS:
		return 1;
	case PR_CAP_AMBIENT:
		return arg2 != PR_CAP_AMBIENT_IS_SET;
	default:
		return 0;
	}
}

US_EXPORT int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long arg2 = va_arg(ap, unsigned long), arg3 = va_arg(ap, unsigned long),
		      arg4 = va_arg(ap, unsigned long), arg5 = va_arg(ap, unsigned long);
	va_end(ap);
	long r = us_sc5(SYS_prctl, option, arg2, arg3, arg4, arg5);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	if (us.active && per_thread_credential(option, arg2)) {
		const uint64_t arg[4] = { (uint64_t)option, arg2, arg3, arg4 };
		run_in_checkpoint_thread(SYS_prctl, arg);
	}
	return (int)r;
}

/* ---- a thread's credentials across a checkpoint and a restore ---- */

struct cap_header { uint32_t version; int pid; };
#define CAP_V3 0x20080522

void us_creds_capture(struct us_creds *c)
{
	struct cap_header h = { CAP_V3, 0 };
	uint32_t caps[6];
	c->valid = 0;
	if (us_sc3(SYS_getresuid, &c->uid[0], &c->uid[1], &c->uid[2]) < 0 ||
	    us_sc3(SYS_getresgid, &c->gid[0], &c->gid[1], &c->gid[2]) < 0 || us_sc2(SYS_capget, &h, caps) < 0)
		return;
	long n = us_sc2(SYS_getgroups, US_MAX_GROUPS, c->groups);
	c->ngroups = n >= 0 ? (int)n : -1;
	for (int i = 0; i < 3; i++) {   /* capget gives {eff, prm, inh} per word */
		c->caps[i] = caps[i];
		c->caps[3 + i] = caps[3 + i];
	}
	c->securebits = (int)us_sc2(SYS_prctl, PR_GET_SECUREBITS, 0);
	c->no_new_privs = (int)us_sc5(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	c->bounding = c->ambient = 0;
	for (int cap = 0; cap < 64; cap++) {
		long r = us_sc2(SYS_prctl, PR_CAPBSET_READ, cap);
		if (r < 0)
			break;   /* past the last capability the kernel knows */
		c->bounding |= (uint64_t)(r == 1) << cap;
	}
	/* ambient ⊆ permitted ∩ inheritable: only those can be set */
	uint64_t maybe = ((uint64_t)caps[4] << 32 | caps[1]) & ((uint64_t)caps[5] << 32 | caps[2]);
	for (int cap = 0; cap < 64 && maybe >> cap; cap++)
		if ((maybe >> cap & 1) && us_sc5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			c->ambient |= 1ull << cap;
	c->valid = 1;
}

/* From root with every capability, as the restorer leaves each thread: what needs
 * a capability comes before the uid change that takes it away, keep-caps holds the
 * permitted set across that change, and the saved capabilities go last, then
 * no_new_privs. The raw calls change this thread only (glibc's would change all). */
int us_creds_apply(const struct us_creds *c)
{
	/* every thread's were read at capture (capture_threads fails otherwise): a thread
	 * without them must not run on with root's */
	if (!c->valid)
		return -EINVAL;
	if (c->ngroups < 0)
		return -E2BIG;
	long r = 0;
	for (int cap = 0; cap < 64 && !r; cap++)
		if (!(c->bounding >> cap & 1))
			r = us_sc2(SYS_prctl, PR_CAPBSET_DROP, cap);
	if (r == -EINVAL)
		r = 0;   /* past the last capability the kernel knows: the rest were dropped */
	if (r || (r = us_sc2(SYS_setgroups, c->ngroups, c->groups)) || (r = us_sc3(SYS_setresgid, c->gid[0], c->gid[1], c->gid[2])) ||
	    (r = us_sc2(SYS_prctl, PR_SET_KEEPCAPS, 1)) || (r = us_sc3(SYS_setresuid, c->uid[0], c->uid[1], c->uid[2])))
		return (int)r;
	/* effective back to all that is permitted, with the saved inheritable set: the
	 * ambient set and securebits need them */
	struct cap_header h = { CAP_V3, 0 };
	uint32_t now[6];
	if ((r = us_sc2(SYS_capget, &h, now)))
		return (int)r;
	uint32_t wide[6] = { now[1], now[1], c->caps[2], now[4], now[4], c->caps[5] };
	if ((r = us_sc2(SYS_capset, &h, wide)))
		return (int)r;
	for (int cap = 0; cap < 64 && r == 0; cap++)
		if (c->ambient >> cap & 1)
			r = us_sc5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
	if (r || (r = us_sc2(SYS_prctl, PR_SET_SECUREBITS, c->securebits)) || (r = us_sc2(SYS_capset, &h, c->caps)))
		return (int)r;
	if (c->no_new_privs)
		r = us_sc5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return (int)r;
}
