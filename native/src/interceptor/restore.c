/* The restorer jumps here once the address space is the checkpointed one. Runs on
 * the restorer's stack with every signal blocked and no thread pointer yet, so this
 * file is built without stack protector and calls nothing that touches TLS. It
 * re-creates every thread with its old tid and resumes each where it was frozen. */
#include <sched.h>
#include <sys/prctl.h>
#include <asm/prctl.h>
#include <linux/sched.h>
#include "internal.h"

#define RSEQ_SIG 0x53053053
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

long us_clone3_thread(struct clone3_args *a, size_t size, void (*fn)(void *), void *arg);

static __attribute__((noreturn)) void die(int code)
{
	for (;;)
		us_sc1(SYS_exit_group, code);
}

/* A path the restorer hands over (a C string in its memory, 0 for none) into one
 * of ours, US_PATH_MAX bytes. A loop, not a libc call: there is no thread pointer yet. */
static void take_path(char *ours, uint64_t given)
{
	const char *p = (const char *)given;
	if (!p)
		return;
	size_t i = 0;
	for (; p[i] && i < US_PATH_MAX - 1; i++)
		ours[i] = p[i];
	ours[i] = 0;
}

static void restore_thread_state(struct us_thread_slot *s)
{
	us_sc1(SYS_set_tid_address, s->clear_tid);
	if (s->robust_head)
		us_sc2(SYS_set_robust_list, s->robust_head, s->robust_len);
	/* glibc registered rseq for this thread at the thread pointer + __rseq_offset */
	if (&__rseq_size && __rseq_size) {
		char *area = (char *)s->fs_base + __rseq_offset;
		*(volatile uint64_t *)(area + 8) = 0;     /* rseq_cs: no critical section */
		if (us_sc4(SYS_rseq, area, 32, 0, RSEQ_SIG) < 0)
			us_sc4(SYS_rseq, area, __rseq_size, 0, RSEQ_SIG);
	}
	if (!(s->altstack.ss_flags & SS_DISABLE)) {
		stack_t st = s->altstack;
		st.ss_flags &= ~SS_ONSTACK;
		us_sc2(SYS_sigaltstack, &st, NULL);
	}
	us_sc5(SYS_prctl, PR_SET_NAME, s->comm, 0, 0, 0);
}

/* An application thread takes its credentials back at once: it needs none of
 * root's from here on. The checkpoint thread still does (the executable's link,
 * the coordinator's socket), and takes its own once registered (main.c). */
static void restore_creds(struct us_thread_slot *s)
{
	if (!s->is_checkpoint_thread && us_creds_apply(&s->creds) < 0)
		die(122);   /* never let it run with root's credentials instead of its own */
	if (__atomic_sub_fetch(&us.creds_left, 1, __ATOMIC_ACQ_REL) == 0)
		us_futex_wake(&us.creds_left);
}

static void thread_start(void *arg)
{
	struct us_thread_slot *s = arg;
	restore_thread_state(s);
	restore_creds(s);
	us_jmp_resume(&s->ctx);
}

void us_restore_entry(struct us_restore_args *a)
{
	int pid = (int)us_sc0(SYS_getpid);
	struct us_thread_slot *leader = 0;

	int nslots = us_slot_count();
	for (int i = 0; i < nslots; i++)
		if (us_slot_at(i)->tid == pid)
			leader = us_slot_at(i);
	if (!leader || pid != us.vpid)
		die(124);
	us_sc2(SYS_arch_prctl, ARCH_SET_FS, leader->fs_base);
	us.restorer_start = a->restorer_start;
	us.restorer_end = a->restorer_end;
	us.tracked_seq = a->checkpoint_seq;     /* picked up by the checkpoint thread */
	/* Restored by another agent (a standby node, a migration): register with that
	 * one, log into its node's files, and hand those to the programs exec'd next. */
	take_path(us.coord_path, a->coord_path);
	take_path(us.log_path, a->log_path);
	take_path(us.output_path, a->output_path);
	us.restored_main_left = 0;
	us.creds_left = 0;
	for (int i = 0; i < nslots; i++)
		us.creds_left += us_slot_at(i)->tid != 0;

	for (int i = 0; i < nslots; i++) {
		struct us_thread_slot *s = us_slot_at(i);
		if (!s->tid || s == leader)
			continue;
		/* Start below the frozen frame: that part of the thread's stack is unused. */
		uint64_t top = (s->ctx.rsp - 2048) & ~15ull;
		uint64_t tid = (uint64_t)s->tid;
		struct clone3_args ca = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM | CLONE_SETTLS,
			.stack = top - 8192,
			.stack_size = 8192,
			.tls = s->fs_base,
			.set_tid = (uint64_t)&tid,
			.set_tid_size = 1,
		};
		if (us_clone3_thread(&ca, sizeof ca, thread_start, s) < 0)
			die(123);
	}
	restore_thread_state(leader);
	restore_creds(leader);
	us_jmp_resume(&leader->ctx);
}
