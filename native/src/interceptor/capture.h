/* One image being captured and written: what capture.c, its capture_*.c parts,
 * image_writer.c and the descriptor kinds' capture halves (src/descriptors/)
 * share. All of it runs while the group is frozen (the writer aside), so: raw
 * system calls, no malloc. */
#ifndef US_CAPTURE_H
#define US_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include "internal.h"

/* The scratch mapping, in this order; reserved, touched only as needed. */
#define SCRATCH_SIZE (512ul << 20)
#define MAPS_MAX     (16ul << 20)       /* /proc/self/maps text */
#define PM_BATCH     65536              /* pagemap entries per read */
#define DATA_MAX     (4ul << 20)        /* in-flight bytes captured per descriptor */
#define PEERS_MAX    (4ul << 20)        /* after the data area: the Unix socket peer table */
#define REGIONS_MAX  65536              /* PAGEMAP_SCAN output */
#define FDS_MAX      (1 << 20)          /* one process's descriptors: fs.nr_open's default */
#define PIDS_MAX     65536              /* the group's processes */
#define HOLDERS_MAX  (1 << 21)          /* the group's descriptors, for open file keys */
#define QUEUES_MAX   (32ul << 20)       /* at the end: a TCP connection's state and queues */
#define VM_FLAGS_MAX 65536              /* mappings with flags a restore sets again */
#define REARMED_MAX  65536              /* mappings re-protected by the capture's walk */

/* In the capture's runs only, never in a file: the writer looks for pages of
 * zeros in this run. */
#define RUN_SCAN_ZERO 0x80000000u

struct us_page_region;
struct fd_holder;
struct own_file;

/* What /proc/self/smaps says of a mapping that a restore must know: MAP_NORESERVE
 * and the madvise and mlock attributes (US_MADV_*). */
struct vm_flags {
	uint64_t start, end;
	uint32_t noreserve, advice;
};

struct scratch {
	int meta_fd;
	uint64_t seq, base_seq;
	char *base;
	struct us_page_region *regions; /* PAGEMAP_SCAN output */
	struct vm_flags *vm_flags;      /* mappings with flags, ascending */
	uint32_t nvm_flags, vm_flags_at;
	uint64_t *rearmed;              /* starts of the mappings the capture re-protected, ascending */
	uint32_t nrearmed;
	int rearming;                   /* a walk re-protected pages: a failure loses the tracked base */
	int scan_works;                 /* PAGEMAP_SCAN answered (Linux 6.7+) */
	int incremental;
	char *maps;                     /* /proc/self/maps text */
	uint64_t *pm;                   /* pagemap batch */
	char *data;                     /* peeked queue data, fdinfo text, diag replies */
	char *peers;                    /* the Unix socket peer table (src/descriptors/sockets.c) */
	int *fds;                       /* this process's descriptors (FDS_MAX) */
	int *pids;                      /* the group's processes (PIDS_MAX) */
	int *list;                      /* one process's descriptors, while listing the group's (FDS_MAX) */
	struct fd_holder *holders;      /* every descriptor of the group, listed once when first needed */
	int nholders;                   /* -1 until listed */
	const int *app_fds;             /* this process's descriptors before the capture opened any */
	int napp_fds;
	struct own_file *own;           /* the same, with their open files' keys (FDS_MAX) */
	struct own_file *own_sorting;   /* as many: merge sort's other half */
	int nown;                       /* -1 until matched with the group's */
	char *queues;                   /* a TCP connection's state and queues (src/descriptors/tcp.c) */
	char *meta;                     /* records being built */
	size_t meta_len, meta_cap;
	size_t rec_start;               /* where the record being built starts in meta */
	int pages_fd;
	uint64_t pages_len;             /* files' contents at capture; then what the writer wrote */
	uint64_t pages_started;         /* .pages bytes the disk was told to start writing */
	uint64_t runs_start;            /* where page runs begin, after saved files' contents */
	char *lz4_table, *lz4_out;      /* the writer's compression scratch */
	char *writer_map;               /* the writer's state description and scratch */
	uint64_t writer_map_len;
	uint64_t private_bytes;         /* private mappings' sizes: is staging cheaper than a fork? */
	char *stage;                    /* staged image: data runs copied while frozen, at their pages_off */
	uint64_t stage_len;
	uint32_t nrecords;
	int failed;
	char *why;
	int why_cap;
};

/* capture.c: the state description. The first failure is the one reported. */
void capture_fail(struct scratch *s, const char *what, const char *detail, long err);
void meta_add(struct scratch *s, const void *p, size_t n);     /* p NULL: n zero bytes */
void rec_begin(struct scratch *s, uint32_t type);
void rec_end(struct scratch *s);
/* "/proc/self/<dir>/<fd>" in buf */
const char *fd_proc_path(char *buf, size_t cap, const char *dir, int fd);

/* capture_process.c: PROC, THREAD, SIGACT, MISC and TIMER */
void capture_process(struct scratch *s);

/* capture_fds.c: an FD record for every descriptor, by its kind (src/descriptors/) */
void capture_fds(struct scratch *s, const int *fds, int n);
/* One descriptor of a process of the group (this one included), by pid in the group,
 * and its inode when listed. */
struct fd_holder { int pid, fd; uint64_t dev, ino; };
/* One of this process's descriptors, the lowest (pid, fd) holding its open file and
 * how many hold it. */
struct own_file { int fd, holders; uint64_t dev, ino, key; };
/* Every descriptor of the group's processes (image writers left out), listed once
 * per image. */
int group_fds(struct scratch *s);

/* capture_file_contents.c: FILE records for files open for writing */
void capture_file_contents(struct scratch *s, const int *fds, int n);

/* capture_ipc.c: IPC records for the objects of the group's IPC namespace */
void capture_ipc(struct scratch *s);

/* capture_memory.c: VMA records and the pages each one saves */
void capture_memory(struct scratch *s);
void arm_tracker(struct scratch *s);
int stage_pages(struct scratch *s);
const void *run_source(struct scratch *s, uint64_t addr, uint64_t len, int readable, int mem_fd);

/* image_writer.c: .pages and the final .meta */
int write_all(int fd, const void *p, uint64_t n);
int open_image_file(const char *dir, const char *ext);
int map_writer_result(void);
void finish_image(struct scratch *s);
void start_writer(struct scratch *s);
void write_staged_later(struct scratch *s);
void release_image(struct scratch *s);

#endif
