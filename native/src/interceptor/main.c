/* Start-up in every process of a group, and the checkpoint thread. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/prctl.h>
#include <unistd.h>
#include "internal.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"


static void copy_env(char *dst, size_t cap, const char *name)
{
	const char *v = getenv(name);
	size_t i = 0;
	for (; v && v[i] && i + 1 < cap; i++)
		dst[i] = v[i];
	dst[i] = 0;
}

static int env_int(const char *name)
{
	const char *v = getenv(name);
	return v ? atoi(v) : -1;
}

static void reply(const char *word, const char *detail)
{
	char line[1024];
	struct us_buf b = { line, 0, sizeof line - 1 };
	us_put(&b, word);
	if (detail) {
		us_putc(&b, ' ');
		us_put(&b, detail);
	}
	us_putc(&b, '\n');
	us_link_send(us_term(&b));
}

/* After a restore, the process's pending signals when no main thread was there to
 * take them with their siginfo (freeze.c): sent again, as kill sends them. */
static void raise_pending_signals(void)
{
	for (int sig = 1; sig <= 64; sig++)
		if (us.pending_signals & (1ull << (sig - 1)))
			us_sc2(SYS_kill, us.vpid, sig);
	us.pending_signals = 0;
}

/* /proc/self/exe names the restorer until this runs. PR_SET_MM_MAP is the one
 * mm update allowed without CAP_SYS_RESOURCE, so the whole layout goes again,
 * read back from what the restorer already set. Raw system calls only, like the
 * rest of the restored checkpoint thread's way to RESUME: an application thread
 * may be frozen holding a lock of libc or of the dynamic loader (inside dlopen),
 * and a wrapper's first call would take the loader's lock in dlsym. */
static void us_set_exe(void)
{
	char text[2048];
	static uint64_t auxv[128];
	if (us_read_file("/proc/self/stat", text, sizeof text) <= 0)
		return;
	uint64_t f[64];
	us_stat_fields(text, f);
	long alen = us_read_file("/proc/self/auxv", (char *)auxv, sizeof auxv);
	int exe = (int)us_sc4(SYS_openat, AT_FDCWD, us.exe_path, O_RDONLY | O_CLOEXEC, 0);
	if (exe < 0) {
		us_log("warning", "executable gone; /proc/self/exe names the restorer");
		return;
	}
	struct prctl_mm_map m = {
		.start_code = f[26], .end_code = f[27], .start_stack = f[28],
		.start_data = f[45], .end_data = f[46], .start_brk = f[47],
		.brk = (uint64_t)us_sc1(SYS_brk, 0),
		.arg_start = f[48], .arg_end = f[49], .env_start = f[50], .env_end = f[51],
		.auxv = (__u64 *)auxv, .auxv_size = alen > 0 ? (uint32_t)alen : 0,
		.exe_fd = (uint32_t)exe,
	};
	if (us_sc5(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof m, 0) < 0)
		us_log("warning", "cannot set /proc/self/exe after restore");
	us_sc1(SYS_close, exe);
}

/* The checkpoint thread's signal mask, as pthread_sigmask left it: every signal
 * blocked but the mprotect tracker's faults and libc's own (cancellation,
 * setxid, which libc never lets a thread block). */
static uint64_t checkpoint_thread_mask;

/* The checkpoint thread resumes here after a restore, on the new process. */
static void restored(void)
{
	/* re-created from the restorer, which blocks every signal: a setuid() would
	 * wait for this thread forever */
	us_sc4(SYS_rt_sigprocmask, SIG_SETMASK, &checkpoint_thread_mask, NULL, 8);
	while (!__atomic_load_n(&us.restored_main_left, __ATOMIC_ACQUIRE))
		us_futex_wait(&us.restored_main_left, 0, 100);
	us.restored_main_left = 0;
	/* The restorer started this thread with every signal blocked. Unblocked again,
	 * as pthread_sigmask left them when it first started: the mprotect tracker's
	 * faults, and glibc's own two signals (32: cancellation, 33: setxid, which
	 * setuid() and its kin send to every thread, waiting for each to answer), and
	 * the freeze signal, which asks it to follow credential changes. */
	uint64_t mask = ~((1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1)) | (1ull << (32 - 1)) | (1ull << (33 - 1)) |
			  (1ull << (US_SIG_FREEZE - 1)));
	us_sc4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, 8);
	if (us.restorer_end > us.restorer_start)
		us_sc2(SYS_munmap, us.restorer_start, us.restorer_end - us.restorer_start);
	us.restorer_start = us.restorer_end = 0;
	us_set_exe();
	us.held = 0;   /* the source's hold, should an image ever carry it, is not this copy's */
	/* the restored memory is exactly the checkpoint's: track from there */
	uint64_t restored_seq = us.tracked_seq;
	us_stage_forget();
	us_writer_result_own();
	us_tracker_init(us.tracker_wanted);
	us_tracker_arm_all();
	us.tracked_seq = us.tracker == US_TRACK_UFFD ? restored_seq : 0;
	us.base_vpid = us.vpid;

	us_link_reset_reader();
	int fd = us_link_connect();
	if (fd >= 0)
		us_link_set(fd);
	/* the request a thread still waits for is sent again after RESUME */
	us.grant_seq = us.req_seq - (us.pending_req[0] ? 1 : 0);
	if (us_timers_recreate() < 0)
		us_sc1(SYS_exit_group, 125);
	if (fd < 0 || us_link_hello("restore", (int)us_sc0(SYS_getppid), 1) < 0) {
		us_log("restore-failed", "cannot register with the coordinator");
		us_sc1(SYS_exit_group, 125);
	}
	us.link_dead = 0;
	/* Registered: now this thread takes its credentials back too, after every other
	 * thread took theirs (restore.c). Their uid changes made the process undumpable:
	 * RESUME's thaw puts that as it was. */
	for (int left; (left = __atomic_load_n(&us.creds_left, __ATOMIC_ACQUIRE));)
		us_futex_wait(&us.creds_left, left, 100);
	struct us_thread_slot *self = us_slot_for((int)us_sc0(SYS_gettid), 0);
	if (self && us_creds_apply(&self->creds) < 0) {
		us_log("restore-failed", "cannot give the checkpoint thread its credentials back");
		us_sc1(SYS_exit_group, 125);
	}
	us.dumpable_changed = 1;
	us_log("restored", NULL);
}

/* An image not written yet (a forked writer's, or one staged for this thread to
 * write after RESUME): WRITTEN is sent once it is done. */
struct written {
	int waiting;
	int incremental, base_vpid;
};

/* WRITTEN <meta bytes> <pages bytes> <kind> [<base vpid>]: the base vpid is named
 * when the increment applies to another process's image (a fork since the base). */
static void reply_written(uint64_t meta_bytes, uint64_t pages_bytes, int incremental, int base_vpid)
{
	char nums[80];
	struct us_buf b = { nums, 0, sizeof nums };
	us_putu(&b, meta_bytes);
	us_putc(&b, ' ');
	us_putu(&b, pages_bytes);
	us_put(&b, incremental ? " incremental" : " full");
	if (incremental && base_vpid != us.vpid) {
		us_putc(&b, ' ');
		us_putu(&b, (uint64_t)base_vpid);
	}
	reply("WRITTEN", us_term(&b));
}

/* The origin of the next HELLO on a new link: the process's own until it was
 * welcomed once, then reattach. */
static const char *next_origin = "reattach";

/* How often an idle checkpoint thread checks that its descriptor is still its own. */
#define LINK_CHECK_MS 1000

/* The image of the last checkpoint is written after RESUME, by this thread: an exit of the
 * process meanwhile would end it, and with it the whole checkpoint. Exits wait for it
 * (us_exit_after_image). */
static void image_pending(int pending)
{
	__atomic_store_n(&us.image_pending, pending, __ATOMIC_RELEASE);
	if (!pending)
		us_futex_wake(&us.image_pending);
}

static void lose_link(const char *why, struct written *pending)
{
	us_log("link-lost", why);
	/* Never leave the application frozen without a coordinator, unless it was told to stay
	 * frozen: a migration's target may run the group now, and only a coordinator that
	 * learnt it does not may let it run here again. */
	if (us.held)
		us_log("held", "staying frozen until a coordinator sends RESUME");
	else
		us_thaw_all();
	if (pending->waiting) {   /* an image nobody will commit: let its writer finish */
		char ignored[128];
		uint64_t mb, pb;
		us_wait_writer(ignored, sizeof ignored, &mb, &pb);
		pending->waiting = 0;
		image_pending(0);
	}
	us.tracked_seq = 0;   /* whatever was written since is in no committed image */
	us.pending_seq = 0;
	us.link_dead = 1;
	us.registered = 0;
	us.silent = 0;
	us_lock(&us.send_lock);
	us_link_close();
	us_unlock(&us.send_lock);
	/* a thread waiting for GRANT goes on: none will come on this link */
	__atomic_store_n(&us.grant_seq, us.req_seq, __ATOMIC_RELEASE);
	us_futex_wake(&us.grant_seq);
}

/* A new link and a HELLO on it, trying again with a back-off (50 ms doubling to
 * 1 s) until the coordinator answers the connection. The WELCOME is read by serve. */
static void relink(void)
{
	long delay_ms = 50;
	for (;;) {
		int fd = us_link_connect();
		if (fd >= 0) {
			us_lock(&us.send_lock);
			us_link_set(fd);
			us_unlock(&us.send_lock);
			us_link_reset_reader();
			us.req_seq = us.grant_seq = 0;
			if (us_link_send_hello(next_origin, (int)us_sc0(SYS_getppid)) == 0) {
				us.link_dead = 0;
				us_log("relinking", next_origin);
				return;
			}
			us_lock(&us.send_lock);
			us_link_close();
			us_unlock(&us.send_lock);
		}
		struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000 };
		us_sc2(SYS_nanosleep, &ts, NULL);
		delay_ms = delay_ms * 2 > 1000 ? 1000 : delay_ms * 2;
	}
}

static void welcomed(void)
{
	char d[32];
	struct us_buf b = { d, 0, sizeof d };
	us_put(&b, "origin=");
	us_put(&b, next_origin);
	us_log("joined", us_term(&b));
	next_origin = "reattach";
}

static void serve(void)
{
	char line[US_PATH_MAX + 128], why[512];
	const char *p;
	int restored_now = 0;
	struct written pending = { 0 };

	for (;;) {
		if (us.link_dead)
			relink();
		int n = us_link_read_line_within(line, sizeof line, LINK_CHECK_MS);
		if (n == US_LINK_TIMEOUT) {
			if (!us_link_ok())
				lose_link("the application closed the link's descriptor; making a new link", &pending);
			continue;
		}
		if (n < 0) {
			lose_link(us_link_ok() ? "the coordinator closed the connection; making a new link"
					       : "the application closed the link's descriptor; making a new link", &pending);
			continue;
		}
		__atomic_add_fetch(&us.lines_heard, 1, __ATOMIC_ACQ_REL);
		us.silent = 0;
		if (!us.registered) {
			int r = us_link_on_hello_reply(line);
			if (r > 0) {
				welcomed();
			} else if (r < 0) {
				lose_link("registration refused; running unprotected", &pending);
				us.active = 0;
				return;
			}
			continue;
		}
		if (us_streq(line, "GRANT")) {
			__atomic_add_fetch(&us.grant_seq, 1, __ATOMIC_ACQ_REL);
			us_futex_wake(&us.grant_seq);
		} else if (us_startswith(line, "PREPARE ")) {
			uint64_t surveyed_us = us_survey_memory();   /* still running */
			int n = us_freeze_all(why, sizeof why);
			if (n < 0) {
				us_thaw_all();
				us_log("prepare-failed", why);
				reply("FAILED", why);
			} else {
				char num[48];
				struct us_buf b = { num, 0, sizeof num };
				us_putu(&b, (uint64_t)n);
				us_putc(&b, ' ');
				us_putu(&b, surveyed_us);
				reply("FROZEN", us_term(&b));
			}
		} else if (us_startswith(line, "WRITE ")) {
			char id[64], dir[US_PATH_MAX], kind[32], base[32];
			uint64_t mb = 0, pb = 0;
			int incremental = 0;
			p = line + 6;
			us_next_token(&p, id, sizeof id);
			us_next_token(&p, dir, sizeof dir);
			if (us_next_token(&p, kind, sizeof kind) < 0)
				kind[0] = 0;
			if (us_next_token(&p, base, sizeof base) < 0)
				base[0] = 0;
			char option[16];
			int options = 0;
			while (us_next_token(&p, option, sizeof option) >= 0)
				options |= us_streq(option, "cow")     ? US_WRITE_COW
					   : us_streq(option, "ipc")   ? US_WRITE_IPC
					   : us_streq(option, "files") ? US_WRITE_FILES
								       : 0;
			int cow = options & US_WRITE_COW;
			/* the agent's files for the image, when it sends them: .meta, .pages */
			int files[2] = { -1, -1 };
			int nfiles = us_link_take_fds(files, 2);
			if (nfiles == 1) {
				us_sc1(SYS_close, files[0]);
				files[0] = -1;
			}
			if ((options & US_WRITE_FILES) && nfiles != 2) {
				/* Creating them here would fail (the coordinator made them) or
				 * write files it does not know of: the WRITE fails, the coordinator
				 * aborts this checkpoint, and the next one brings its files. */
				struct us_buf b = { why, 0, sizeof why };
				us_put(&b, "the 2 image files sent with WRITE did not arrive (got ");
				us_puti(&b, nfiles);
				us_put(&b, "; a process at its descriptor limit receives none); this checkpoint fails, the next can succeed");
				us_term(&b);
				us_log("write-failed", why);
				reply("FAILED", why);
				continue;
			}
			us_tracker_ensure_intact();
			const char *q = id, *bq = base;
			uint64_t base_seq = us_streq(kind, "incremental") ? us_parse_u(&bq, 10) : 0;
			int r = us_write_image(dir, files, us_parse_u(&q, 10), base_seq, options, why, sizeof why, &mb, &pb,
					       &incremental);
			if (r == US_WRITE_RESTORED) {
				restored();
				restored_now = 1;
				continue;
			}
			if (r < 0) {
				us_log("write-failed", why);
				reply("FAILED", why);
			} else if (cow) {
				/* the snapshot is taken: the group may resume, and WRITTEN
				 * follows once the image is written */
				pending = (struct written){ 1, incremental, us.base_vpid };
				image_pending(1);
				reply("CAPTURED", NULL);
			} else {
				reply_written(mb, pb, incremental, us.base_vpid);
			}
		} else if (us_streq(line, "HOLD")) {
			/* the group is frozen for good until a coordinator says otherwise:
			 * a lost link no longer thaws it (lose_link) */
			us.held = 1;
			us_log("held", "a lost link keeps this process frozen");
			reply("HELD", NULL);
		} else if (us_streq(line, "RESUME") || us_streq(line, "ABORT")) {
			int aborted = us_streq(line, "ABORT");
			us.held = 0;
			/* After an abort the writes of this interval were not kept anywhere:
			 * the tracker no longer describes a committed image. */
			if (aborted)
				us.tracked_seq = 0;
			else if (us.pending_seq) {   /* a RESUME after a restore keeps the restored base */
				us.tracked_seq = us.pending_seq;
				us.base_vpid = us.vpid;   /* the image just written is our own */
			}
			us.pending_seq = 0;
			if (restored_now) {
				/* as they were at the checkpoint, the moment the group runs again */
				us_timers_arm();
				raise_pending_signals();
			}
			us_thaw_all();
			reply("RESUMED", NULL);
			if (pending.waiting) {   /* the image is still to be written */
				/* An aborted image is not wanted: its writer is waited for, and
				 * RESUMED stays the one answer to ABORT, so that nothing of the
				 * aborted round reaches the coordinator's next one. */
				uint64_t mb = 0, pb = 0;
				if (us_wait_writer(why, sizeof why, &mb, &pb) < 0) {
					us.tracked_seq = 0;
					us_log("write-failed", why);
					if (!aborted)
						reply("FAILED", why);
				} else if (!aborted) {
					reply_written(mb, pb, pending.incremental, pending.base_vpid);
				}
				pending.waiting = 0;
				image_pending(0);
			}
			if (restored_now) {
				restored_now = 0;
				if (us.pending_req[0]) {   /* an app thread still waits for GRANT */
					char req[40];
					struct us_buf b = { req, 0, sizeof req };
					us_put(&b, us.pending_req);
					us_putc(&b, '\n');
					us_link_send(us_term(&b));
				}
			}
		}
	}
}

static void *checkpoint_thread(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);   /* the mprotect tracker's faults must be handled here too */
	sigdelset(&all, SIGBUS);
	sigdelset(&all, US_SIG_FREEZE);   /* asks it to follow credential changes (thread_creds.c) */
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	__atomic_store_n(&us.checkpoint_tid, (int)us_sc0(SYS_gettid), __ATOMIC_RELEASE);
	us_futex_wake(&us.checkpoint_tid);
	us_sc4(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &checkpoint_thread_mask, 8);
	prctl(PR_SET_NAME, "us-checkpoint");
	struct us_thread_slot *s = us_slot_claim((int)us_sc0(SYS_gettid));
	if (s)
		s->is_checkpoint_thread = 1;
	serve();
	return NULL;
}

void us_start_checkpoint_thread(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	/* The app must not see its signals land on this thread: block them before
	 * creating it, so it starts blocked. */
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&t, &a, checkpoint_thread, NULL) != 0)
		us_log("error", "cannot start the checkpoint thread");
	else    /* it must be there to follow the program's first credential changes */
		while (!__atomic_load_n(&us.checkpoint_tid, __ATOMIC_ACQUIRE))
			us_futex_wait(&us.checkpoint_tid, 0, 100);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}

/* Connects and says HELLO with the given origin, waiting for WELCOME through
 * at most the link's patience; then starts the checkpoint thread, which makes
 * the link again if there is none (the coordinator is down) and reads a WELCOME
 * that came late. 0 unless the coordinator refused the process. */
static int join(const char *origin, int vppid)
{
	next_origin = origin;
	us.req_seq = us.grant_seq = 0;
	int fd = us_link_connect();
	if (fd < 0) {
		us.link_dead = 1;
		us_log("unlinked", "cannot reach the coordinator; registering once it is back");
	} else {
		us_link_set(fd);
		us.link_dead = 0;
		int r = us_link_hello(origin, vppid, 0);
		if (r == 0) {
			welcomed();
		} else if (r > 0) {
			us_log("registering", "no answer yet; running until the coordinator answers");
		} else if (r == -2) {
			us_link_close();
			us_log("error", "registration refused; running unprotected");
			us.active = 0;
			return -1;
		} else {
			us.link_dead = 1;
		}
	}
	us_start_checkpoint_thread();
	return 0;
}

void us_after_fork_child(struct us_fork_handover *h)
{
	us.send_lock = 0;
	us.req_lock = 0;
	us.slot_lock = 0;
	us.pending_req[0] = 0;
	for (int i = 0, n = us_slot_count(); i < n; i++)
		us_slot_at(i)->tid = 0;
	us_link_reset_reader();
	us_link_close();   /* the parent's link */
	us.registered = 0;
	us.vpid = (int)us_sc0(SYS_getpid);
	us.checkpoint_tid = 0;      /* the parent's; this process starts its own */
	us.image_pending = 0;       /* the parent's image */
	us.exiting_tid = 0;
	us_staged_forget();
	us_stage_forget();
	us_writer_result_own();
	us_timers_after_fork();
	us_tracker_after_fork(h);   /* continues against the parent's base image, or full */
	join("fork", (int)us_sc0(SYS_getppid));
}

/* An application thread that ends the process (exit, _exit) while the image of the checkpoint
 * it resumed from is still being written waits until the image is written and answered for:
 * a short-lived process (a pipeline's command) would otherwise fail every checkpoint whose
 * writing its exit cuts short. A thread frozen later in its exit (after this ran) waits as it
 * is thawed (freeze.c). */
void us_exit_after_image(void)
{
	int tid = (int)us_sc0(SYS_gettid);
	if (tid == __atomic_load_n(&us.checkpoint_tid, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&us.exiting_tid, tid, __ATOMIC_RELEASE);
	us_wait_image_before_exit();
}

/* Bounded, should the writing never end. */
void us_wait_image_before_exit(void)
{
	if (!__atomic_load_n(&us.image_pending, __ATOMIC_ACQUIRE))
		return;
	us_log("exit-waits", "until the image being written is answered for");
	/* by the clock: a signal (SIGCHLD) cuts a futex wait short */
	for (long end = us_now_ms() + 60000; __atomic_load_n(&us.image_pending, __ATOMIC_ACQUIRE) && us_now_ms() < end;)
		us_futex_wait(&us.image_pending, 1, 1000);
}

/* exit() and a return from main run the libraries' destructors, this one among them */
__attribute__((destructor)) static void us_stop(void)
{
	if (us.active)
		us_exit_after_image();
}

__attribute__((constructor)) static void us_start(void)
{
	copy_env(us.coord_path, sizeof us.coord_path, "UNDERSTUDY_COORD");
	if (!us.coord_path[0])
		return;
	copy_env(us.group, sizeof us.group, "UNDERSTUDY_GROUP");
	copy_env(us.app, sizeof us.app, "UNDERSTUDY_APP");
	copy_env(us.lib_path, sizeof us.lib_path, "UNDERSTUDY_LIB");
	copy_env(us.log_path, sizeof us.log_path, "UNDERSTUDY_LOG");
	copy_env(us.fault, sizeof us.fault, "UNDERSTUDY_FAULT");
	copy_env(us.tracker_wanted, sizeof us.tracker_wanted, "UNDERSTUDY_TRACKER");
	copy_env(us.files, sizeof us.files, "UNDERSTUDY_FILES");
	copy_env(us.output_path, sizeof us.output_path, "UNDERSTUDY_OUTPUT");
	const char *fmax = getenv("UNDERSTUDY_FILES_MAX");
	us.files_max = fmax ? strtoull(fmax, NULL, 10) : 256ull << 20;
	const char *compress = getenv("UNDERSTUDY_COMPRESS");
	us.compress = compress && us_streq(compress, "lz4");
	us.uffd = -1;
	us.vpid = us.base_vpid = getpid();
	us.silent = env_int("UNDERSTUDY_LINK_SILENT") == 1;

	const char *origin = "spawn";
	us.exec_count = 0;
	if (env_int("UNDERSTUDY_EXEC_VPID") == us.vpid) {
		origin = "exec";
		us.exec_count = env_int("UNDERSTUDY_EXEC_COUNT");
	} else if (env_int("UNDERSTUDY_LAUNCH_VPID") == us.vpid) {
		origin = "launch";
	}
	us_wrappers_init();
	us_install_freeze_handler();
	us_tracker_init(us.tracker_wanted);
	if (compress && !us.compress && !us_streq(compress, "none"))
		us_log("error", "UNDERSTUDY_COMPRESS must be lz4 or none; page data is stored raw");

	us.coord_fd = -1;
	us.active = 1;
	join(origin, getppid());
}
