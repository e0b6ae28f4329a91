/* wl_privdrop [keep-cap]: a root master forks a worker that drops its privileges
 * itself, as nginx and PostgreSQL workers do: CAP_SYS_ADMIN out of its bounding
 * set, setgroups, setresgid, setresuid to 65534 (nobody), then no_new_privs. With
 * keep-cap, the worker keeps CAP_NET_BIND_SERVICE across the uid change (keep-caps,
 * then capset), inheritable and ambient too.
 *   master: "master count N", VERIFY OK master: still root, its memory intact.
 *   worker: "worker count N", VERIFY OK worker: its ids, groups, capabilities,
 *           keep-caps and no_new_privs are exactly as it set them, it cannot become
 *           root again, and its memory is intact. */
#include "wl_common.h"
#include <grp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

#define NOBODY 65534
#define WORDS (1u << 17)                /* 1 MiB of memory that changes as it runs */

static uint64_t *mem;
static uint64_t tick;

static void touch(void)
{
	tick++;
	mem[tick % WORDS] = wl_mix(tick);
}

static void check_memory(void)
{
	for (uint64_t i = 0; i < WORDS; i++) {
		uint64_t want = 0;
		if (i <= tick && (i || tick >= WORDS))
			want = wl_mix(tick - (tick - i) % WORDS);
		if (mem[i] != want)
			wl_fail("memory word %llu is %016llx, expected %016llx (tick %llu)", (unsigned long long)i,
				(unsigned long long)mem[i], (unsigned long long)want, (unsigned long long)tick);
	}
}

static int keep_cap;

static void caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	if (syscall(SYS_capget, &h, d) != 0)
		wl_fail("capget: %s", strerror(errno));
}

static void check_worker_creds(void)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	if (getresuid(&r, &e, &s) || r != NOBODY || e != NOBODY || s != NOBODY)
		wl_fail("uids are %u %u %u, expected %u", r, e, s, NOBODY);
	if (getresgid(&gr, &ge, &gs) || gr != NOBODY || ge != NOBODY || gs != NOBODY)
		wl_fail("gids are %u %u %u, expected %u", gr, ge, gs, NOBODY);
	gid_t groups[8];
	int n = getgroups(8, groups);
	if (n != 2 || groups[0] != 100 || groups[1] != NOBODY)   /* the kernel sorts them */
		wl_fail("supplementary groups are not 100 65534 (%d of them)", n);
	struct __user_cap_data_struct d[2];
	caps(d);
	uint32_t want = keep_cap ? 1u << CAP_NET_BIND_SERVICE : 0;
	if (d[0].effective != want || d[0].permitted != want || d[0].inheritable != want || d[1].effective ||
	    d[1].permitted || d[1].inheritable)
		wl_fail("capabilities are eff %08x prm %08x inh %08x, expected all %08x", d[0].effective,
			d[0].permitted, d[0].inheritable, want);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) != keep_cap)
		wl_fail("CAP_NET_BIND_SERVICE is %sin the ambient set", keep_cap ? "not " : "");
	if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0 || prctl(PR_CAPBSET_READ, CAP_NET_BIND_SERVICE, 0, 0, 0) != 1)
		wl_fail("the bounding set is not all but CAP_SYS_ADMIN");
	if (prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) != 0)
		wl_fail("keep-caps is set; the worker cleared it");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		wl_fail("no_new_privs is not set");
	/* the point of dropping: root is gone for good */
	if (setresuid(0, 0, 0) == 0 || errno != EPERM)
		wl_fail("setresuid(0) did not fail with EPERM: the worker is root again");
	if (setgroups(0, NULL) == 0)
		wl_fail("setgroups succeeded: the worker has CAP_SETGID again");
}

static void verify_worker(void)
{
	check_memory();
	check_worker_creds();
	wl_out("VERIFY OK worker tick=%llu uid=%u keep-cap=%d", (unsigned long long)tick, getuid(), keep_cap);
}

static void verify_master(void)
{
	check_memory();
	if (getuid() != 0 || geteuid() != 0)
		wl_fail("the master is no longer root (uid %u euid %u)", getuid(), geteuid());
	wl_out("VERIFY OK master tick=%llu", (unsigned long long)tick);
}

static void drop(void)
{
	gid_t groups[2] = { NOBODY, 100 };
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0)
		wl_fail("PR_CAPBSET_DROP: %s", strerror(errno));
	if (setgroups(2, groups) != 0)
		wl_fail("setgroups: %s", strerror(errno));
	if (setresgid(NOBODY, NOBODY, NOBODY) != 0)
		wl_fail("setresgid: %s", strerror(errno));
	if (keep_cap && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		wl_fail("PR_SET_KEEPCAPS: %s", strerror(errno));
	if (setresuid(NOBODY, NOBODY, NOBODY) != 0)
		wl_fail("setresuid: %s", strerror(errno));
	if (keep_cap) {
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2] = { 0 };
		d[0].effective = d[0].permitted = d[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
		if (syscall(SYS_capset, &h, d) != 0)
			wl_fail("capset: %s", strerror(errno));
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0)
			wl_fail("PR_CAP_AMBIENT_RAISE: %s", strerror(errno));
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
			wl_fail("clearing PR_SET_KEEPCAPS: %s", strerror(errno));
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		wl_fail("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	keep_cap = argc > 1 && strcmp(argv[1], "keep-cap") == 0;
	wl_init("master");
	mem = calloc(WORDS, sizeof *mem);
	if (!mem)
		wl_fail("calloc: %s", strerror(errno));
	pid_t master = getpid();
	pid_t worker = fork();
	if (worker < 0)
		wl_fail("fork: %s", strerror(errno));
	int is_worker = worker == 0;
	if (is_worker) {
		wl_reinit_child("worker", master);
		drop();
		check_worker_creds();
	}
	for (;;) {
		wl_check_ids();
		if (wl_take_verify())
			is_worker ? verify_worker() : verify_master();
		touch();
		wl_out("%s count %llu", is_worker ? "worker" : "master", (unsigned long long)tick);
		if (!is_worker && waitpid(worker, NULL, WNOHANG) == worker)
			wl_fail("the worker exited");
		wl_sleep_ms(50);
	}
}
