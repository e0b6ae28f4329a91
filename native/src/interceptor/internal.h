/* State shared by the interceptor's parts. Everything lives in static storage, so
 * it is inside the checkpointed address space and comes back with a restore. */
#ifndef US_INTERNAL_H
#define US_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <time.h>
#include "../common/us_sys.h"

#define US_HIDDEN __attribute__((visibility("hidden")))
#define US_EXPORT __attribute__((visibility("default")))
/* Thread slots come in chunks the checkpoint thread maps as threads appear (never
 * a signal handler): chunks never move, so a frozen thread's slot pointer stays
 * good. US_SLOT_CHUNKS * US_SLOT_CHUNK is above any pid_max. */
#define US_SLOT_CHUNK 1024
#define US_SLOT_CHUNKS 4096
#define US_SIG_FREEZE 64                /* SIGRTMAX: reserved, hidden from the app */
#define US_PATH_MAX 4096

/* The system call a thread was blocked in just before the freeze signal was sent
 * to it, as /proc/self/task/TID/syscall showed it (blocking_calls.c). Written by
 * the checkpoint thread: the next checkpoint may write it again while the thread's
 * handler still waits to return from this one. */
struct us_blocked_call {
	int state;
	long nr;
	uint64_t args[6], sp, pc;
	struct timespec scratch;        /* what is left of a relative timeout, once restarted */
};

/* What the thread's own handler decided at the freeze: kept on its stack. */
struct us_restart {
	long nr;                        /* -1: nothing to restart (0 is read) */
	int64_t elapsed_ns;             /* spent in the call before the freeze; -1: unknown */
};

/* Memory the kernel is to write into for a call the thread is making: the
 * mprotect tracker must leave it writable when it re-arms during a freeze. */
struct us_kernel_write {
	uint64_t range[4][2];           /* start, length; unused ones are 0 */
	uint64_t iov;                   /* struct iovec array, or 0 */
	int iovcnt;
};

/* A signal that was pending at a checkpoint, with all its siginfo. */
#define US_MAX_PENDING 8
struct us_pending_signal {
	int shared;                     /* sent to the process; else to its thread alone */
	siginfo_t info;
};

/* A thread's credentials: each thread has its own, and a restore, which starts as
 * root, gives each re-created thread back its own (restore.c). */
#define US_MAX_GROUPS 64
struct us_creds {
	int valid;
	uint32_t uid[3], gid[3];        /* real, effective, saved */
	int ngroups;                    /* -1: more than US_MAX_GROUPS */
	uint32_t groups[US_MAX_GROUPS];
	uint32_t caps[6];               /* capget v3: effective, permitted, inheritable; low word, high word */
	uint64_t bounding, ambient;
	int securebits, no_new_privs;
};

struct us_thread_slot {
	int tid;                        /* 0: free */
	int is_checkpoint_thread;
	uint64_t fs_base;
	struct us_jmp ctx;
	uint64_t robust_head, robust_len;
	uint64_t clear_tid;
	stack_t altstack;
	char comm[16];
	struct us_blocked_call call;
	struct us_blocked_call restarted;   /* the call its handler last entered again */
	struct us_kernel_write kwrite;  /* noted when it froze */
	/* its pending signals, as the last capture took them (freeze.c) */
	volatile int drain;             /* the checkpoint thread asks it to take them */
	uint64_t drain_private, drain_shared;
	volatile int census_none;       /* the last census it answered with no signal pending */
	int npending, pending_lost;
	struct us_pending_signal pending[US_MAX_PENDING];
	struct us_creds creds;          /* as the last capture took them */
};

/* A POSIX timer as the last capture saw it (its TIMER record): made again under
 * the same id after a restore, and armed at RESUME (timers.c). */
#define US_MAX_TIMERS 256
struct us_timer {
	int32_t id, clockid, notify, signo, tid;
	uint64_t value, interval_ns, value_ns;
};

struct us_state {
	int active;                     /* launched under a coordinator */
	int coord_fd;
	int vpid;
	int exec_count;
	char coord_path[US_PATH_MAX];
	char group[256], app[256];
	char lib_path[US_PATH_MAX];
	char log_path[US_PATH_MAX];
	char fault[64];
	char exe_path[US_PATH_MAX];     /* set again on restore as /proc/self/exe */

	/* freeze/thaw handshake between the checkpoint thread and app threads */
	volatile int frozen_count;
	volatile int thaw_gen;
	volatile int frozen_wake;       /* what frozen threads wait on: moves at a thaw and at a request */
	volatile int restored_main_left;        /* main thread left the restorer's stack */
	volatile int checkpoint_tid;    /* 0 until the checkpoint thread runs (thread_creds.c) */
	volatile int creds_left;        /* restored threads still to take their credentials back */
	int app_dumpable;               /* PR_GET_DUMPABLE when the group froze (freeze.c) */
	int dumpable_changed;           /* made dumpable for the capture, or by a restore's uid change */
	struct us_thread_slot *slot_chunks[US_SLOT_CHUNKS];
	volatile int nslot_chunks;
	volatile int slot_lock;

	/* one request (FORK_BEGIN, ...) to the coordinator at a time */
	volatile int req_lock;
	volatile int req_seq;           /* requests sent on this link */
	volatile int grant_seq;         /* GRANTs received (or given up for) */
	volatile int lines_heard;       /* lines read from the link: the coordinator is alive */
	volatile int silent;            /* a wait gave up and nothing was heard since: do not wait again */
	char pending_req[32];           /* re-sent after a restore if still waiting */
	volatile int send_lock;
	volatile int link_dead;         /* no link now: run unprotected until a new one is made */
	volatile int registered;        /* WELCOME came on the present link */
	volatile int held;              /* HOLD: frozen until a RESUME, whatever happens to the link */
	volatile int image_pending;     /* CAPTURED sent, WRITTEN or FAILED not yet: an exit waits (us_exit_after_image) */
	volatile int exiting_tid;       /* the thread ending the process, once it began to (exit's destructors, _exit) */
	uint64_t coord_ino;             /* the link's socket inode: coord_fd is still ours */

	/* what the restorer left mapped, unmapped by the restored checkpoint thread */
	uint64_t restorer_start, restorer_end;
	volatile int drained;           /* threads done taking their pending signals */
	volatile int census, counted;   /* asks each frozen thread whether any signal is pending; answers */
	uint64_t pending_signals;       /* for the process, with no main thread to take them */

	/* dirty-page tracking (tracker.c) */
	int tracker;                    /* enum us_tracker_mode */
	int uffd;
	uint64_t uffd_ino;              /* its inode: us.uffd is still ours */
	uint64_t tracked_seq;           /* checkpoint the tracked state is relative to; 0: none */
	uint64_t pending_seq;           /* written, becomes tracked_seq on RESUME */
	int base_vpid;                  /* whose image of tracked_seq we are: our own, or a parent's before fork */
	char tracker_wanted[16];

	/* storage checkpointing: regular files open for writing */
	char files[US_PATH_MAX];        /* ':'-separated path prefixes; empty: all; "none" */
	char output_path[US_PATH_MAX];  /* the group's output log: never rolled back */
	uint64_t files_max;

	int compress;                   /* UNDERSTUDY_COMPRESS=lz4: page runs stored as LZ4 blocks */

	/* madvise and mlock calls, which change flags the memory map does not show
	 * (capture_memory.c, the survey): calls made, and calls under way */
	volatile uint64_t vm_calls;
	volatile int vm_calls_running;

	struct us_timer timers[US_MAX_TIMERS];
	int ntimers;
};


extern struct us_state us US_HIDDEN;

/* Every thread slot: for (int i = 0, n = us_slot_count(); i < n; i++) us_slot_at(i).
 * Inline: the restore entry runs before there is a thread pointer. */
static inline int us_slot_count(void)
{
	return __atomic_load_n(&us.nslot_chunks, __ATOMIC_ACQUIRE) * US_SLOT_CHUNK;
}

static inline struct us_thread_slot *us_slot_at(int i)
{
	return &us.slot_chunks[i / US_SLOT_CHUNK][i % US_SLOT_CHUNK];
}

/* arguments the restorer passes to us_restore_entry */
struct us_restore_args {
	uint64_t restorer_start, restorer_end;
	uint64_t checkpoint_seq;        /* the image restored: what the tracker starts from */
	/* C strings in the restorer's memory, gone once it is unmapped; 0 for none */
	uint64_t coord_path;            /* the restoring agent's member socket */
	uint64_t log_path;              /* the restoring node's native log of the group */
	uint64_t output_path;           /* and its output log */
};

enum us_tracker_mode { US_TRACK_NONE = 0, US_TRACK_UFFD = 1, US_TRACK_MPROTECT = 2 };

/* log.c */
US_HIDDEN void us_log(const char *event, const char *detail);

/* link.c: the coordinator connection */
#define US_LINK_PATIENCE_MS 2000        /* silence a request or a registration waits through */
#define US_LINK_TIMEOUT (-2)
US_HIDDEN long us_now_ms(void);
US_HIDDEN int us_fd_base(void);                   /* where our descriptors go */
US_HIDDEN int us_fd_move_high(int fd);            /* fd moved there (or fd, if no room) */
US_HIDDEN int us_link_connect(void);              /* a connected descriptor, high, or -errno */
US_HIDDEN void us_link_set(int fd);               /* the link is fd from now on */
US_HIDDEN int us_link_ok(void);                   /* coord_fd is still our socket */
US_HIDDEN uint64_t us_fd_inode(int fd);           /* 0 when fd is not open */
US_HIDDEN void us_link_close(void);               /* closes coord_fd if it is still ours */
/* HELLO, then its reply: 0 registered, 1 no reply within the patience (the
 * checkpoint thread takes it: us_link_on_hello_reply), -1 no link, -2 refused.
 * patient: wait for the reply however long (a restore). */
US_HIDDEN int us_link_hello(const char *origin, int vppid, int patient);
US_HIDDEN int us_link_send_hello(const char *origin, int vppid);
US_HIDDEN int us_link_on_hello_reply(const char *line);  /* 1 WELCOME, -1 REFUSED, 0 other */
US_HIDDEN int us_link_send(const char *line);
US_HIDDEN int us_link_read_line(char *out, int cap);
US_HIDDEN int us_link_read_line_within(char *out, int cap, long timeout_ms);  /* or US_LINK_TIMEOUT */
US_HIDDEN void us_request(const char *what);      /* sends and waits for GRANT */
US_HIDDEN void us_notify(const char *line);       /* fire and forget */
US_HIDDEN void us_link_reset_reader(void);        /* drop buffered input: new link, or after fork */
/* The descriptors that came with the line just read (SCM_RIGHTS), now the caller's:
 * their count, or -1 if more than cap came (they are closed). */
US_HIDDEN int us_link_take_fds(int *out, int cap);

/* wrappers.c */
#define RESOLVE(name) do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)
US_HIDDEN void us_wrappers_init(void);
/* set, or a copy of it without the freeze signal */
US_HIDDEN const sigset_t *us_without_freeze(const sigset_t *set, sigset_t *copy);
/* what this thread's wrapped call has the kernel write into, if it is in one */
US_HIDDEN const struct us_kernel_write *us_wrapped_kernel_write(void);
/* Around a wrapped call that writes into the caller's memory: note it, unprotected, for as
 * long as the call runs (what _begin returns goes back with _end: a handler may nest). */
US_HIDDEN struct us_kernel_write us_kernel_write_begin(const struct us_kernel_write *note);
US_HIDDEN void us_kernel_write_end(const struct us_kernel_write *outer);
US_HIDDEN void us_creds_serve(void);
/* thread_creds.c: the calling thread's credentials, taken and given back (raw,
 * per-thread system calls); apply: 0, or -errno of the step that failed */
US_HIDDEN void us_creds_capture(struct us_creds *c);
US_HIDDEN int us_creds_apply(const struct us_creds *c);
US_HIDDEN void us_lock(volatile int *l);
US_HIDDEN void us_unlock(volatile int *l);
US_HIDDEN void us_futex_wait(volatile int *addr, int val, long timeout_ms);
US_HIDDEN void us_futex_wake(volatile int *addr);

/* freeze.c */
US_HIDDEN void us_install_freeze_handler(void);
US_HIDDEN int us_freeze_all(char *why, int cap);  /* returns frozen threads or -1 */
US_HIDDEN void us_thaw_all(void);
/* The thread's slot; create: claim a free one, never mapping more (signal handlers). */
US_HIDDEN struct us_thread_slot *us_slot_for(int tid, int create);
/* The same, mapping another chunk of slots if none is free (the checkpoint thread). */
US_HIDDEN struct us_thread_slot *us_slot_claim(int tid);
US_HIDDEN int us_freeze_owns(uint64_t start, uint64_t end);
US_HIDDEN void us_capture_thread(struct us_thread_slot *s);
/* With the group frozen: every thread takes its pending signals into its slot,
 * and the main thread those of the process. 0, or -1 with the reason. */
US_HIDDEN int us_take_pending_signals(char *why, int cap);

/* blocking_calls.c: a call interrupted by the freeze goes on after it */
US_HIDDEN void us_blocked_snapshot(struct us_thread_slot *s, int tid);   /* before signalling */
US_HIDDEN void us_blocked_on_freeze(struct us_thread_slot *s, void *ucontext, struct us_restart *out);
US_HIDDEN void us_blocked_resume(struct us_thread_slot *s, void *ucontext, const struct us_restart *rs);

/* capture.c (its parts: capture.h). options: WRITE's */
#define US_WRITE_COW 1          /* a forked writer writes the image from a snapshot */
#define US_WRITE_IPC 2          /* the group's IPC objects go into this image too */
#define US_WRITE_FILES 4        /* the coordinator sent the image files with the line */
/* files: the .meta and .pages descriptors the coordinator sent, closed here in any
 * case; -1: created in dir by the process itself */
US_HIDDEN int us_write_image(const char *dir, const int files[2], uint64_t seq, uint64_t base_seq, int options, char *why, int cap,
			     uint64_t *meta_bytes, uint64_t *pages_bytes, int *incremental);
#define US_WRITE_RESTORED 2
/* image_writer.c: with cow, us_write_image returns once a forked writer holds the
 * snapshot; this waits for it. 0 when the image is complete. */
US_HIDDEN int us_wait_writer(char *why, int cap, uint64_t *meta_bytes, uint64_t *pages_bytes);
/* capture_memory.c: after a restore or in a forked child, the staging area is not
 * in this address space. */
US_HIDDEN void us_stage_forget(void);
US_HIDDEN void us_staged_forget(void);
US_HIDDEN void us_writer_result_own(void);
/* reads what the capture needs of the memory map that the freeze need not wait
 * for; the microseconds it took */
US_HIDDEN uint64_t us_survey_memory(void);

/* tracker.c */
struct us_page_region;
US_HIDDEN const char *us_tracker_name(void);
US_HIDDEN void us_tracker_init(const char *wanted);
US_HIDDEN void us_tracker_arm_range(uint64_t start, uint64_t end, uint32_t prot);
US_HIDDEN void us_tracker_rearm(uint64_t start, uint64_t end, uint32_t prot, int pm_fd,
				struct us_page_region *vec, uint64_t vec_len);
US_HIDDEN void us_tracker_arm_all(void);
/* The userfaultfd is still ours (a raw close_range may have taken it); else it is
 * made again, everything armed, and the next image is full. With every thread frozen. */
US_HIDDEN void us_tracker_ensure_intact(void);
struct us_maps_line;
US_HIDDEN int us_tracker_wants(const struct us_maps_line *l);
/* fork: the parent's half (begin before fork(), end after it) and the child's */
struct us_fork_handover;
US_HIDDEN struct us_fork_handover *us_tracker_fork_begin(void);
US_HIDDEN void us_tracker_fork_end(struct us_fork_handover *h, int forked);
US_HIDDEN void us_tracker_after_fork(struct us_fork_handover *h);
/* Whether a private mapping may be tracked (mprotect: never stacks or our own memory). */
US_HIDDEN int us_tracker_may_arm(uint64_t start, uint64_t end, int is_stack);
US_HIDDEN int us_tracker_page_written(uint64_t page, uint64_t categories);
US_HIDDEN int us_tracker_covers(uint64_t start, uint64_t end, int pm_fd, struct us_page_region *vec, uint64_t vec_len);

/* mprotect_tracker.c */
US_HIDDEN void us_mp_init(void);
US_HIDDEN void us_mp_reset(void);
US_HIDDEN void us_mp_arm(uint64_t start, uint64_t end, uint32_t prot);
US_HIDDEN int us_mp_covers(uint64_t start, uint64_t end);
US_HIDDEN int us_mp_owns(uint64_t start, uint64_t end);
US_HIDDEN int us_mp_dirty(uint64_t page);
US_HIDDEN uint32_t us_mp_app_prot(uint64_t start, uint32_t prot);
US_HIDDEN uint64_t us_mp_piece_end(uint64_t start, uint64_t end);
US_HIDDEN void us_mp_touch(const void *p, uint64_t len);
US_HIDDEN void us_mp_touch_kernel_write(const struct us_kernel_write *k);
/* After arming, with every thread frozen: what their calls write into stays writable. */
US_HIDDEN void us_mp_release_kernel_writes(void);
US_HIDDEN int us_mp_sigaction(const struct us_kernel_sigaction *act, struct us_kernel_sigaction *old);
US_HIDDEN int us_tracker_scan(int pm_fd, uint64_t start, uint64_t end, uint64_t mask, uint64_t flags,
			      struct us_page_region *vec, uint64_t vec_len, void (*fn)(void *, uint64_t, uint64_t, uint64_t),
			      void *ctx);

/* timers.c: SIGEV_THREAD timers run by the interceptor; the timers of a restored
 * process made again (before it says HELLO) and armed (at RESUME). 0 or -1. */
US_HIDDEN int us_timers_recreate(void);
US_HIDDEN void us_timers_arm(void);
US_HIDDEN void us_timers_after_fork(void);

/* main.c */
US_HIDDEN void us_start_checkpoint_thread(void);
US_HIDDEN int us_fd_is_ours(int fd);
US_HIDDEN void us_after_fork_child(struct us_fork_handover *h);
US_HIDDEN void us_exit_after_image(void);
US_HIDDEN void us_wait_image_before_exit(void);

/* restore.c */
void us_restore_entry(struct us_restore_args *a);

#endif
