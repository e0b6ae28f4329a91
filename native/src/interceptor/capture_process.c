/* Process-wide state: identity and memory layout (PROC), threads (THREAD), signal
 * handlers (SIGACT), interval timers, soft limits and pending signals (MISC), POSIX
 * timers (TIMER). */
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include "capture.h"
#include "../common/us_fmt.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

/* The process's pending signals, for MISC: they themselves are kept with their
 * siginfo by the threads that took them (freeze.c). */
static uint64_t pending_shared;

static void capture_proc(struct scratch *s)
{
	char *text = s->data;
	struct us_rec_proc p = { 0 };
	char exe[US_PATH_MAX], cwd[US_PATH_MAX], comm[32];

	p.vpid = (uint32_t)us.vpid;
	p.vppid = (uint32_t)us_sc0(SYS_getppid);
	p.vpgid = (uint32_t)us_sc1(SYS_getpgid, 0);
	p.vsid = (uint32_t)us_sc1(SYS_getsid, 0);
	p.uid = (uint32_t)us_sc0(SYS_getuid);
	p.gid = (uint32_t)us_sc0(SYS_getgid);
	p.exec_count = (uint32_t)us.exec_count;
	p.entry = (uint64_t)us_restore_entry;
	p.entry_arg = 0;

	us_read_file("/proc/self/status", text, DATA_MAX);
	p.umask = (uint32_t)us_proc_field_u(text, "Umask:", 8);
	pending_shared = us_proc_field_u(text, "ShdPnd:", 16);

	/* /proc/self/stat: fields after "(comm)" start at field 3 */
	us_read_file("/proc/self/stat", text, DATA_MAX);
	uint64_t f[64];
	us_stat_fields(text, f);
	p.mm[US_MM_START_CODE] = f[26];
	p.mm[US_MM_END_CODE] = f[27];
	p.mm[US_MM_START_STACK] = f[28];
	p.mm[US_MM_START_DATA] = f[45];
	p.mm[US_MM_END_DATA] = f[46];
	p.mm[US_MM_START_BRK] = f[47];
	p.mm[US_MM_ARG_START] = f[48];
	p.mm[US_MM_ARG_END] = f[49];
	p.mm[US_MM_ENV_START] = f[50];
	p.mm[US_MM_ENV_END] = f[51];
	p.mm[US_MM_BRK] = (uint64_t)us_sc1(SYS_brk, 0);

	long ne = us_read_link("/proc/self/exe", exe, sizeof exe);
	for (long i = 0; i <= ne && i < (long)sizeof us.exe_path; i++)
		us.exe_path[i] = exe[i];
	long nc = us_read_link("/proc/self/cwd", cwd, sizeof cwd);
	long nm = us_read_file("/proc/self/comm", comm, sizeof comm);
	if (nm > 0 && comm[nm - 1] == '\n')
		comm[--nm] = 0;
	long na = us_read_file("/proc/self/auxv", text, DATA_MAX);
	p.exe_len = ne > 0 ? (uint32_t)ne : 0;
	p.cwd_len = nc > 0 ? (uint32_t)nc : 0;
	p.comm_len = nm > 0 ? (uint32_t)nm : 0;
	p.auxv_len = na > 0 ? (uint32_t)na : 0;

	rec_begin(s, US_REC_PROC);
	meta_add(s, &p, sizeof p);
	meta_add(s, exe, p.exe_len);
	meta_add(s, cwd, p.cwd_len);
	meta_add(s, comm, p.comm_len);
	meta_add(s, text, p.auxv_len);
	rec_end(s);
}

static void capture_threads(struct scratch *s)
{
	for (int i = 0, n = us_slot_count(); i < n; i++) {
		struct us_thread_slot *t = us_slot_at(i);
		if (!t->tid)
			continue;
		if (!t->creds.valid || t->creds.ngroups < 0) {   /* a restore could not give them back */
			char tid[16];
			struct us_buf b = { tid, 0, sizeof tid };
			us_putu(&b, (uint64_t)t->tid);
			capture_fail(s, t->creds.valid ? "more than 64 supplementary groups in thread" : "cannot read the credentials of thread",
				     us_term(&b), 0);
			return;
		}
		struct us_rec_thread r = { (uint32_t)t->tid, (uint32_t)t->is_checkpoint_thread, t->fs_base, { 0 } };
		for (int k = 0; k < 16; k++)
			r.comm[k] = t->comm[k];
		rec_begin(s, US_REC_THREAD);
		meta_add(s, &r, sizeof r);
		rec_end(s);
	}
}

static void capture_signals_and_limits(struct scratch *s)
{
	struct us_rec_sigact h = { 0, 0 };
	struct us_sigact acts[64];
	for (int sig = 1; sig <= 64; sig++) {
		struct us_kernel_sigaction k;
		if (sig == 9 || sig == 19)
			continue;
		if (us_sc4(SYS_rt_sigaction, sig, NULL, &k, 8) < 0)
			continue;
		acts[h.count++] = (struct us_sigact){ (uint32_t)sig, 0, k.handler, k.flags, k.restorer, k.mask };
	}
	rec_begin(s, US_REC_SIGACT);
	meta_add(s, &h, sizeof h);
	meta_add(s, acts, h.count * sizeof acts[0]);
	rec_end(s);

	struct us_rec_misc m = { 0 };
	for (int w = 0; w < 3; w++) {
		long it[4];
		if (us_sc2(SYS_getitimer, w, it) == 0)
			for (int k = 0; k < 4; k++)
				m.itimer[w][k] = it[k];
	}
	for (int r = 0; r < 16; r++) {
		struct rlimit rl;
		if (us_sc4(SYS_prlimit64, 0, r, NULL, &rl) == 0)
			m.rlim_cur[r] = rl.rlim_cur;
	}
	m.pending_shared = pending_shared;
	rec_begin(s, US_REC_MISC);
	meta_add(s, &m, sizeof m);
	rec_end(s);
}

/* One "key: value" field of a /proc/self/timers entry; NULL past the entry. */
static const char *timer_field(const char *p, const char *key)
{
	for (; *p; p++) {
		if (p[-1] != '\n')
			continue;
		if (us_startswith(p, key)) {
			p += us_strlen(key);
			us_skip_spaces(&p);
			return p;
		}
		if (us_startswith(p, "ID:"))
			return NULL;    /* the next timer's */
	}
	return NULL;
}

/* "ID: 3 / signal: 14/00000000deadbeef / notify: signal/tid.5 / ClockID: 1" per
 * timer, and timer_gettime for what is left: TIMER records, and a copy for the
 * restored process to make them again from (timers.c). */
static void capture_timers(struct scratch *s)
{
	char *text = s->data;
	us.ntimers = 0;
	text[0] = '\n';
	if (us_read_file("/proc/self/timers", text + 1, DATA_MAX - 1) < 0)
		return;     /* no POSIX timers on this kernel */
	for (const char *p = text; (p = timer_field(p + 1, "ID:")) != NULL;) {
		const char *sig = timer_field(p, "signal:"), *notify = timer_field(p, "notify:");
		const char *clock = timer_field(p, "ClockID:");
		if (!sig || !notify || !clock) {
			capture_fail(s, "cannot read /proc/self/timers", NULL, 0);
			return;
		}
		if (us.ntimers == US_MAX_TIMERS) {
			capture_fail(s, "more than 256 POSIX timers", NULL, 0);
			return;
		}
		const char *q = p;
		struct us_timer *t = &us.timers[us.ntimers++];
		*t = (struct us_timer){ .id = (int32_t)us_parse_u(&q, 10) };
		t->signo = (int32_t)us_parse_u(&sig, 10);
		sig++;
		t->value = us_parse_u(&sig, 16);
		t->notify = us_startswith(notify, "none") ? SIGEV_NONE : SIGEV_SIGNAL;
		while (*notify != '/')
			notify++;
		if (us_startswith(notify, "/tid.")) {
			notify += 5;
			t->notify |= SIGEV_THREAD_ID;
			t->tid = (int32_t)us_parse_u(&notify, 10);
		}
		int neg = *clock == '-';
		clock += neg;
		t->clockid = (int32_t)us_parse_u(&clock, 10) * (neg ? -1 : 1);
		struct itimerspec its;
		long r = us_sc2(SYS_timer_gettime, t->id, &its);
		if (r < 0) {
			capture_fail(s, "cannot read a POSIX timer (timer_gettime)", NULL, r);
			return;
		}
		t->interval_ns = (uint64_t)its.it_interval.tv_sec * 1000000000ull + (uint64_t)its.it_interval.tv_nsec;
		t->value_ns = (uint64_t)its.it_value.tv_sec * 1000000000ull + (uint64_t)its.it_value.tv_nsec;
		struct us_rec_timer rec = { t->id, t->clockid, t->notify, t->signo, t->value, t->tid, 0,
					    t->interval_ns, t->value_ns };
		rec_begin(s, US_REC_TIMER);
		meta_add(s, &rec, sizeof rec);
		rec_end(s);
	}
}

void capture_process(struct scratch *s)
{
	capture_proc(s);
	capture_threads(s);
	capture_signals_and_limits(s);
	capture_timers(s);
}
