/* us-init: PID 1 of a group's PID namespace.
 *
 * The agent starts it with pipes on stdin and stdout and talks to it in lines
 * (docs/protocol.md, "Group init control"). It launches applications into the
 * group with the interceptor preloaded, reaps every process of the namespace and
 * reports exits, and on --restore first rebuilds the checkpointed process tree.
 * Killing it kills the whole group: that is what a PID namespace's init does.
 *
 * It outlives its agent: when the pipe closes (the agent crashed, was killed or
 * restarted), the group runs on, exits are kept, and the next agent attaches on
 * the control socket (--control, 0600), where the same lines go both ways. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "init.h"
#include "../common/us_fmt.h"

static const char usage[] =
	"usage: us-init --group G --coord SOCKET --lib LIBUNDERSTUDY --log FILE --output FILE\n"
	"               [--control SOCKET] [--restore CHECKPOINT_DIR --plan RESTORE_PLAN --restorer US_RESTORER]\n"
	"PID 1 of an Understudy group; started by the guest agent, not by hand.\n";

/* The agent's channel: the pipes it started us with, later a connection on the
 * control socket; -1 while no agent is attached. */
static int agent_in = STDIN_FILENO, agent_out = STDOUT_FILENO;

/* EXITED lines said while no agent listened, replayed to the next one. The
 * oldest go first when it fills up (a counter says how many were lost). */
#define KEPT_LINES 1024
static char kept[KEPT_LINES][48];
static int kept_first, kept_count, kept_lost;

static void keep_line(const char *line, int n)
{
	if (n >= (int)sizeof kept[0] || strncmp(line, "EXITED ", 7))
		return;   /* only exits matter to the next agent; the rest answered a gone one */
	if (kept_count == KEPT_LINES) {
		kept_first = (kept_first + 1) % KEPT_LINES;
		kept_count--;
		kept_lost++;
	}
	char *slot = kept[(kept_first + kept_count++) % KEPT_LINES];
	memcpy(slot, line, (size_t)n);
	slot[n] = 0;
}

static int write_all(int fd, const char *p, int n)
{
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, p + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (int)w;
	}
	return 0;
}

void init_say(const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	if (agent_out < 0) {
		keep_line(line, n);
		return;
	}
	line[n] = '\n';
	if (write_all(agent_out, line, n + 1) < 0) {
		/* The agent is going (its end of the channel is seen next): this line
		 * is the next agent's, and so is every one until then. */
		if (agent_out != agent_in)
			close(agent_out);
		agent_out = -1;
		keep_line(line, n);
	}
}

void init_log(const struct init_config *c, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n = snprintf(line, sizeof line, "group=%s event=init ", c->group);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	int fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) < 0) { /* nothing more to do */ }
		close(fd);
	}
}

static void encode(char *out, size_t cap, const char *s)
{
	struct us_buf b = { out, 0, cap };
	us_put_token(&b, s);
	us_term(&b);
}

static void setenv_int(const char *name, long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%ld", v);
	setenv(name, buf, 1);
}

/* Child side of LAUNCH: becomes the application. */
static void exec_app(const struct init_config *c, const char *app, const char *cwd, char **env, char **argv)
{
	for (char **e = env; *e; e++)
		putenv(*e);
	setsid();
	int out = open(c->output, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	close_range(3, ~0u, 0);
	if (chdir(cwd) < 0) {
		dprintf(2, "us-init: cannot enter %s: %s\n", cwd, strerror(errno));
		_exit(127);
	}
	const char *pre = getenv("LD_PRELOAD");
	char preload[8192];
	snprintf(preload, sizeof preload, "%s%s%s", c->lib, pre && *pre ? ":" : "", pre ? pre : "");
	setenv("LD_PRELOAD", preload, 1);
	setenv("UNDERSTUDY_LIB", c->lib, 1);
	setenv("UNDERSTUDY_COORD", c->coord, 1);
	setenv("UNDERSTUDY_GROUP", c->group, 1);
	setenv("UNDERSTUDY_APP", app, 1);
	setenv("UNDERSTUDY_LOG", c->log, 1);
	setenv("UNDERSTUDY_OUTPUT", c->output, 1);
	setenv_int("UNDERSTUDY_LAUNCH_VPID", getpid());
	unsetenv("UNDERSTUDY_EXEC_VPID");
	unsetenv("UNDERSTUDY_EXEC_COUNT");
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "us-init: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void launch(const struct init_config *c, const char *line)
{
	/* sized from the line: no token, variable or argument is cut off */
	size_t len = strlen(line), ntok = 1;
	for (const char *q = line; *q; q++)
		ntok += *q == ' ';
	char app[256], cwd[4096], *tok = malloc(len + 1);
	char **argv = calloc(ntok + 1, sizeof *argv), **env = calloc(ntok + 1, sizeof *env);
	int argc = 0, nenv = 0;
	const char *p = line;

	if (!tok || !argv || !env) {
		init_say("ERROR LAUNCH cannot allocate memory for a command of %zu bytes", len);
		goto out;
	}
	if (us_next_token(&p, app, sizeof app) < 0 || us_next_token(&p, cwd, sizeof cwd) < 0 ||
	    us_next_token(&p, tok, len + 1) < 0) {
		init_say("ERROR LAUNCH needs an application name, a directory, a variable count and a command");
		goto out;
	}
	int want = atoi(tok);
	if (want < 0 || (size_t)want > ntok) {
		init_say("ERROR LAUNCH has fewer environment variables than it announces");
		goto out;
	}
	while (nenv < want && us_next_token(&p, tok, len + 1) >= 0)
		env[nenv++] = strdup(tok);
	while (us_next_token(&p, tok, len + 1) >= 0)
		argv[argc++] = strdup(tok);
	if (!argc) {
		init_say("ERROR LAUNCH needs a command");
		goto out;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_app(c, app, cwd, env, argv);
	if (pid < 0) {
		char why[256];
		encode(why, sizeof why, strerror(errno));
		init_say("ERROR cannot fork: %s", why);
		goto out;
	}
	init_log(c, "launched app=%s pid=%d", app, pid);
	init_say("LAUNCHED %d", pid);
out:
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	for (int i = 0; i < nenv; i++)
		free(env[i]);
	free(argv);
	free(env);
	free(tok);
}

static void reap(const struct init_config *c)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		init_log(c, "exited pid=%d code=%d signal=%d", pid, code, sig);
		init_say("EXITED %d %d %d", pid, code, sig);
	}
}

static __attribute__((noreturn)) void quit(void)
{
	kill(-1, SIGKILL);   /* from PID 1: every other process of the namespace */
	_exit(0);
}

/* The control socket: bound by this init (so that SO_PEERCRED gives the agent our
 * host pid), 0600, for the next agent to attach. -1 when there is none. */
static int control_listen(const struct init_config *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!c->control)
		return -1;
	if (strlen(c->control) >= sizeof sa.sun_path) {
		init_log(c, "control-socket-unavailable reason=path-too-long path=%s", c->control);
		return -1;
	}
	strcpy(sa.sun_path, c->control);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask(0177);
	unlink(c->control);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 4) == 0;
	umask(old);
	if (!ok) {
		init_log(c, "control-socket-unavailable errno=%d path=%s", errno, c->control);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void detach(const struct init_config *c, const char *why)
{
	if (agent_out >= 0 && agent_out != agent_in)
		close(agent_out);
	if (agent_in >= 0)
		close(agent_in);
	agent_in = agent_out = -1;
	init_log(c, "agent-detached reason=%s", why);
}

/* A new agent: it replaces any other (only one agent may hold the state
 * directory, so the other one is gone). ATTACHED, then the exits it missed. */
static void attach(const struct init_config *c, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || (cred.uid != 0 && cred.uid != getuid())) {
		close(fd);
		return;
	}
	if (agent_in >= 0)
		detach(c, "replaced");
	agent_in = agent_out = fd;
	char group[512];
	encode(group, sizeof group, c->group);
	init_say("ATTACHED %s %d", group, kept_lost);
	init_log(c, "agent-attached exits-kept=%d exits-lost=%d", kept_count, kept_lost);
	while (kept_count > 0 && agent_out >= 0) {
		char line[sizeof kept[0]];
		strcpy(line, kept[kept_first]);
		kept_first = (kept_first + 1) % KEPT_LINES;
		kept_count--;
		init_say("%s", line);
	}
	kept_lost = 0;
}

static void serve(const struct init_config *c)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	int lfd = control_listen(c);
	/* grows with the longest line: a LAUNCH carries a whole command line */
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		quit();

	reap(c);
	for (;;) {
		struct pollfd fds[3] = { { sfd, POLLIN, 0 }, { lfd, POLLIN, 0 }, { agent_in, POLLIN, 0 } };
		if (poll(fds, 3, -1) < 0 && errno != EINTR)
			quit();
		if (fds[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			reap(c);
		}
		if (fds[1].revents) {
			attach(c, lfd);
			len = 0;
			continue;
		}
		if (agent_in < 0 || !fds[2].revents)
			continue;
		if (len == cap - 1) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				quit();
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = read(agent_in, buf + len, cap - 1 - len);
		if (n <= 0) {
			/* The agent is gone: the group runs on until the next one attaches
			 * (or, without a control socket, it goes too). */
			if (lfd < 0)
				quit();
			detach(c, "end-of-channel");
			len = 0;
			continue;
		}
		len += (size_t)n;
		buf[len] = 0;
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			*nl = 0;
			if (!strncmp(buf, "LAUNCH ", 7))
				launch(c, buf + 7);
			else if (!strcmp(buf, "QUIT"))
				quit();
			else
				init_say("ERROR unknown request");
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
	}
}

int main(int argc, char **argv)
{
	struct init_config c = { 0 };
	for (int i = 1; i < argc; i++) {
		const char **slot = !strcmp(argv[i], "--group") ? &c.group :
				    !strcmp(argv[i], "--coord") ? &c.coord :
				    !strcmp(argv[i], "--lib") ? &c.lib :
				    !strcmp(argv[i], "--log") ? &c.log :
				    !strcmp(argv[i], "--output") ? &c.output :
				    !strcmp(argv[i], "--control") ? &c.control :
				    !strcmp(argv[i], "--restore") ? &c.restore_dir :
				    !strcmp(argv[i], "--restorer") ? &c.restorer :
				    !strcmp(argv[i], "--plan") ? &c.plan : NULL;
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!slot || i + 1 == argc) {
			fprintf(stderr, "us-init: unknown or incomplete argument %s\n%s", argv[i], usage);
			return 2;
		}
		*slot = argv[++i];
	}
	if (!c.group || !c.coord || !c.lib || !c.log || !c.output || (c.restore_dir && (!c.restorer || !c.plan))) {
		fprintf(stderr, "us-init: missing arguments\n%s", usage);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	/* A mount namespace too, so the group gets a /proc of its own pid namespace:
	 * the interceptor reads /proc/self/task and must see the tids it can signal.
	 * And an IPC namespace: the group's SysV objects and POSIX message queues are
	 * its own, so a restore can give them back their ids and names. */
	if (unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC) < 0) {
		init_say("ERROR cannot create pid, mount and IPC namespaces: %s", strerror(errno));
		return 1;
	}
	pid_t init = fork();
	if (init < 0) {
		init_say("ERROR cannot fork: %s", strerror(errno));
		return 1;
	}
	if (init > 0) {
		/* Outside the namespace: report the init's host pid and wait for it.
		 * If we are killed, PDEATHSIG takes the init, and the group, with us. */
		init_say("READY %d", init);
		close(0);
		close(1);
		int status;
		while (waitpid(init, &status, 0) < 0 && errno == EINTR)
			;
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		init_say("ERROR cannot mount /proc for the group: %s", strerror(errno));
		return 1;
	}
	/* A devpts instance of the group's own: pty numbers start at 0 and are free
	 * again after a restore, so a pty pair gets back its /dev/pts/N. */
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0 ||
	    mount("/dev/pts/ptmx", "/dev/ptmx", NULL, MS_BIND, NULL) < 0)
		init_log(&c, "warning reason=no-private-devpts errno=%d", errno);
	/* The group's POSIX message queues where programs look for them, and where a
	 * checkpoint lists them. A system without /dev/mqueue gets the directory. */
	if ((mkdir("/dev/mqueue", 0755) < 0 && errno != EEXIST) ||
	    mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		init_say("ERROR cannot mount the group's /dev/mqueue: %s", strerror(errno));
		return 1;
	}
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);

	if (c.restore_dir) {
		int n = restore_tree(&c);
		if (n < 0) {
			init_say("ERROR restore failed; see %s", c.log);
			quit();
		}
		init_say("RESTORED %d", n);
	}
	serve(&c);
	return 0;
}
