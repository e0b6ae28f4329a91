/* Process-wide state: identity and memory layout (PROC), threads (THREAD), signal
 * handlers (SIGACT), interval timers, soft limits and pending signals (MISC). */
#include <sys/resource.h>
#include "capture.h"
#include "../common/us_procfs.h"
#include "../../include/us_image.h"

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
	us.pending_signals = us_proc_field_u(text, "ShdPnd:", 16);

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
	m.pending_shared = us.pending_signals;
	rec_begin(s, US_REC_MISC);
	meta_add(s, &m, sizeof m);
	rec_end(s);
}

void capture_process(struct scratch *s)
{
	capture_proc(s);
	capture_threads(s);
	capture_signals_and_limits(s);
}
