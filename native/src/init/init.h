#ifndef US_INIT_H
#define US_INIT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct init_config {
	const char *group, *coord, *lib, *log, *output;
	const char *control;             /* the socket a later agent attaches on, or NULL */
	const char *restore_dir, *restorer;
	const char *plan;                /* with restore_dir: which images make each process */
};

/* Writes one line to the agent (its pipe or connection; kept for the next agent if
 * none), percent-encoding nothing: callers pass tokens. */
void init_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One event line to the group's native log. */
void init_log(const struct init_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* restore_tree.c: builds the checkpointed process tree in this pid namespace.
 * Returns the number of processes started, or -1 with the reason logged. */
int restore_tree(const struct init_config *c);

/* restore_ipc.c: makes the IPC objects of one image's IPC records in the group's
 * namespace; 0, or -1 with the reason logged. */
int restore_ipc(const struct init_config *c, const char *meta, size_t meta_len, const char *pages_path);
#endif
