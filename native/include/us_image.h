/* Understudy process image format, version 3.
 *
 * One process of one checkpoint is two files in the checkpoint directory:
 *   <vpid>.meta   the state description: a 64-byte header, then records.
 *   <vpid>.pages  raw page data only, 4096-aligned runs, read or mapped lazily.
 * Everything is little-endian. docs/image-format.md describes the same layout
 * for readers in other languages; images/ (C#) must agree with it bit for bit.
 */
#ifndef US_IMAGE_H
#define US_IMAGE_H

#include <stdint.h>

#define US_META_MAGIC   "USTDMETA"      /* 8 bytes, no terminator in the file */
#define US_META_VERSION 3u
#define US_PAGE_SIZE    4096u

enum us_image_kind { US_IMAGE_FULL = 1, US_IMAGE_INCREMENTAL = 2 };

struct us_meta_header {                 /* 64 bytes */
	char     magic[8];              /*  0 "USTDMETA" */
	uint32_t version;               /*  8 US_META_VERSION */
	uint32_t header_size;           /* 12 sizeof(struct us_meta_header) */
	uint32_t kind;                  /* 16 enum us_image_kind */
	uint32_t record_count;          /* 20 */
	uint64_t records_len;           /* 24 bytes of records after the header */
	uint64_t pages_len;             /* 32 exact size of the .pages file */
	uint32_t records_crc;           /* 40 crc32c of the records bytes */
	uint32_t vpid;                  /* 44 pid inside the group's pid namespace */
	uint64_t checkpoint_seq;        /* 48 sequence number of this checkpoint */
	uint32_t base_seq;              /* 56 incremental: seq of the image it applies to; 0 for full */
	uint32_t header_crc;            /* 60 crc32c of bytes 0..59 */
};

/* Records follow the header back to back; each starts 8-aligned. */
struct us_rec_hdr {
	uint32_t type;                  /* enum us_rec_type */
	uint32_t len;                   /* payload bytes, excluding this header and padding */
};
#define US_REC_ALIGN(n) (((n) + 7u) & ~7u)

enum us_rec_type {
	US_REC_PROC   = 1,
	US_REC_VMA    = 2,
	US_REC_THREAD = 3,
	US_REC_FD     = 4,
	US_REC_SIGACT = 5,
	US_REC_MISC   = 6,
	US_REC_FILE   = 7,              /* storage checkpointing: a file's contents */
	US_REC_TIMER  = 8,              /* a POSIX timer (timer_create) */
	US_REC_IPC    = 9,              /* an IPC object of the group: SysV, or a POSIX message queue */
	US_REC_MADVICE = 12,            /* memory attributes set with madvise or mlock */
};

/* mm fields in the order prctl(PR_SET_MM_MAP) takes them. */
enum us_mm_field {
	US_MM_START_CODE, US_MM_END_CODE, US_MM_START_DATA, US_MM_END_DATA,
	US_MM_START_BRK, US_MM_BRK, US_MM_START_STACK, US_MM_ARG_START,
	US_MM_ARG_END, US_MM_ENV_START, US_MM_ENV_END, US_MM_COUNT
};

struct us_rec_proc {                    /* followed by exe, cwd, comm, auxv bytes */
	uint32_t vpid, vppid, vpgid, vsid;
	uint32_t uid, gid, exec_count, umask;
	uint64_t entry;                 /* interceptor's restore entry in this address space */
	uint64_t entry_arg;             /* its argument (address of the interceptor's state) */
	uint64_t mm[US_MM_COUNT];
	uint32_t exe_len, cwd_len, comm_len, auxv_len;
};

enum us_vma_kind {
	US_VMA_ANON = 1,                /* private anonymous, including heap and stacks */
	US_VMA_FILE = 2,                /* file mapping, private or shared */
	US_VMA_SHMEM = 3,               /* shared memory without a live name: memfd, SysV, MAP_SHARED|MAP_ANON */
	US_VMA_HEAP = 4,
	US_VMA_STACK = 5,
	US_VMA_VDSO = 6,
	US_VMA_VVAR = 7,
	US_VMA_VVAR_VCLOCK = 8,
};
#define US_VMA_F_SHARED   1u            /* MAP_SHARED, otherwise MAP_PRIVATE */
/* Incremental images only: the runs describe the whole mapping; nothing of it comes
 * from the base image (a mapping that is new or was not tracked). In a full image
 * every mapping is complete, flag or not. */
#define US_VMA_F_COMPLETE 2u
/* MAP_NORESERVE ("nr" in /proc/PID/smaps): no swap space is reserved for it, so a
 * mapping larger than memory and swap together can exist; mapped so again. */
#define US_VMA_F_NORESERVE 4u

struct us_page_run {                    /* 40 bytes: pages [addr, addr + npages*4096) */
	uint64_t addr;
	uint64_t npages;
	uint64_t pages_off;             /* where the run's bytes start in .pages */
	uint64_t stored_len;            /* how many bytes it has there: npages*4096 unless compressed */
	uint32_t crc;                   /* crc32c of those stored bytes */
	uint32_t flags;                 /* US_RUN_F_* */
};
/* Incremental images only: these pages are no longer in memory (never written, or
 * dropped with MADV_DONTNEED): zero in an anonymous mapping, the file's contents in a
 * file mapping. No data in .pages; pages_off, stored_len and crc are 0. Pages of a
 * mapping that is not complete and are in no run are unchanged since the base image. */
#define US_RUN_F_HOLE 1u
/* The stored bytes are one LZ4 block (the LZ4 block format, no frame) that decodes to
 * exactly npages*4096 bytes. Such a run is 8-aligned rather than page-aligned, covers
 * at most US_LZ4_RUN_PAGES pages, and is written only where it saves space; raw runs
 * of the same image stay page-aligned. */
#define US_RUN_F_LZ4  2u
#define US_LZ4_RUN_PAGES 64u
/* Largest LZ4 block for n input bytes: incompressible data grows by 1/255 plus 16. */
#define US_LZ4_BOUND(n) ((n) + (n) / 255u + 16u)

struct us_rec_vma {                     /* followed by nruns us_page_run, then path bytes */
	uint64_t start, end;
	uint32_t prot;                  /* PROT_* */
	uint32_t flags;                 /* US_VMA_F_* */
	uint32_t kind;                  /* enum us_vma_kind */
	uint32_t path_len;
	uint64_t file_offset;
	uint64_t dev, inode;
	uint64_t object_size;           /* SHMEM/FILE: size of the backing object when captured */
	uint32_t nruns;
	uint32_t reserved;
};

struct us_rec_thread {
	uint32_t tid;
	uint32_t is_checkpoint_thread;
	uint64_t fs_base;
	char     comm[16];
};

enum us_fd_kind {
	US_FD_FILE = 1, US_FD_DIR = 2, US_FD_PIPE = 3, US_FD_FIFO = 4,
	US_FD_UNIX_STREAM = 5, US_FD_CHR = 6, US_FD_EVENTFD = 7,
	US_FD_TIMERFD = 8, US_FD_EPOLL = 9, US_FD_SIGNALFD = 10,
	US_FD_COORDINATOR = 11,         /* the interceptor's own link; re-made on restore */
	US_FD_UNIX_DGRAM = 12,
	US_FD_TCP = 13,                 /* path: local address "a.b.c.d:port" or "[v6]:port" */
	US_FD_UDP = 14,
	US_FD_MEMFD = 15,               /* contents in a FILE record of the same dev/inode */
	US_FD_PTY_MASTER = 16,          /* data: struct us_pty_state, then the queued bytes */
	US_FD_PTY_SLAVE = 17,
	US_FD_UNIX_SEQPACKET = 18,
	US_FD_MQUEUE = 19,              /* a POSIX message queue; path: its name, "/name" */
};
#define US_FD_KIND_MAX US_FD_MQUEUE

struct us_rec_fd {                      /* followed by path bytes, then data bytes */
	int32_t  fd;
	uint32_t fd_flags;              /* FD_CLOEXEC */
	uint32_t kind;                  /* enum us_fd_kind */
	uint32_t open_flags;            /* O_* status flags and access mode */
	uint64_t pos;
	uint64_t dev, inode;            /* identity of the open object (pipe/socket inode) */
	uint32_t mode;                  /* st_mode */
	uint32_t path_len;
	uint64_t aux[4];                /* kind-specific, see docs/image-format.md */
	uint32_t data_len;              /* pipes, FIFOs, sockets: what is queued (below); epoll: targets */
	uint32_t reserved;
};

/* FILE, DIR, CHR, EVENTFD, TIMERFD, EPOLL, SIGNALFD, MEMFD, PTY_MASTER, PTY_SLAVE:
 * aux[3] is the open file description's key when more than one descriptor of the
 * group refers to it (after dup or fork), 0 otherwise: (vpid << 32) | fd of its
 * holder with the lowest vpid, then the lowest fd. Records with one key are one
 * open file again after a restore. */
#define US_FD_AUX_OPEN_KEY 3
#define US_OPEN_KEY(vpid, fd) ((uint64_t)(vpid) << 32 | (uint32_t)(fd))

/* US_FD_PTY_MASTER and US_FD_PTY_SLAVE: aux[0] is the pty's index (/dev/pts/N). A
 * master's data starts with its pair's state; the bytes queued in each direction
 * follow, the slave's input first. Only one master record of a pair carries them.
 * A slave's aux[1] is US_PTY_SLAVE_CTTY when it is the controlling terminal of its
 * process, a session leader, and aux[2] then the terminal's foreground group. */
#define US_PTY_SLAVE_CTTY 1u
struct us_pty_state {                   /* 64 bytes */
	uint8_t  termios[44];           /* the kernel's struct termios2 (TCGETS2) */
	uint16_t ws_row, ws_col, ws_xpixel, ws_ypixel;
	uint32_t flags;                 /* US_PTY_F_* */
	uint32_t to_slave_len;          /* written by the master, not yet read from the slave */
	uint32_t to_master_len;         /* written to the slave, not yet read from the master */
};
#define US_PTY_F_LOCKED 1u              /* the slave cannot be opened (unlockpt not called) */
#define US_PTY_F_PACKET 2u              /* TIOCPKT mode on the master */

/* aux[2] of TCP and UDP records: the SO_REUSEADDR and SO_REUSEPORT the socket had. */
#define US_INET_F_REUSEADDR 1u
#define US_INET_F_REUSEPORT 2u

/* The data of a UNIX_DGRAM or UNIX_SEQPACKET record: each queued datagram or record
 * in order, as its length (uint32_t) then its bytes, back to back. */

/* The data of a connected (not listening) TCP record: this, then the receive queue
 * (recv_len bytes), then the send queue (send_len bytes). Without US_TCP_F_REPAIR
 * (closed, still connecting, or TCP_REPAIR refused) only the addresses, state,
 * buffers, flags and receive queue are known, and everything else is 0. */
struct us_tcp_conn {                    /* 104 bytes */
	uint16_t family;                /* AF_INET 2, AF_INET6 10 */
	uint16_t state;                 /* TCP_ESTABLISHED 1, ... (netinet/tcp.h) */
	uint16_t local_port, remote_port;
	uint8_t  local_addr[16];        /* network order; IPv4 in the first 4 bytes */
	uint8_t  remote_addr[16];
	uint32_t send_seq;              /* sequence number of the send queue's first byte */
	uint32_t recv_seq;              /* sequence number of the receive queue's first byte */
	uint32_t send_len;              /* bytes not yet acknowledged by the peer, ... */
	uint32_t unsent_len;            /* ... the last unsent_len of them never sent */
	uint32_t recv_len;              /* bytes received, not yet read */
	uint32_t mss;                   /* TCP_MAXSEG */
	uint32_t timestamp;             /* TCP_TIMESTAMP */
	uint8_t  snd_wscale, rcv_wscale;
	uint16_t options;               /* TCPI_OPT_* of tcp_info */
	uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;   /* TCP_REPAIR_WINDOW */
	uint32_t sndbuf, rcvbuf;        /* SO_SNDBUF, SO_RCVBUF as read */
	uint32_t flags;                 /* US_TCP_F_* */
};
#define US_TCP_F_REPAIR       1u        /* taken with TCP_REPAIR: sequence numbers, options, window, send queue */
#define US_TCP_F_FIN_SENT     2u        /* this end had shut down writing: a FIN follows the send queue */
#define US_TCP_F_FIN_RECEIVED 4u        /* the peer's FIN follows the receive queue */
#define US_TCP_F_NODELAY      8u        /* TCP_NODELAY was set */
#define US_TCP_F_KEEPALIVE    16u       /* SO_KEEPALIVE was set */

struct us_epoll_target {
	int32_t  fd;
	uint32_t events;
	uint64_t data;
};

struct us_sigact {
	uint32_t signo;
	uint32_t reserved;
	uint64_t handler, flags, restorer, mask;
};

struct us_rec_sigact {                  /* followed by count us_sigact */
	uint32_t count;
	uint32_t reserved;
};

struct us_rec_file {                    /* followed by path bytes */
	uint64_t dev, inode;
	uint64_t size;                  /* the file's length at the checkpoint */
	uint64_t pages_off;             /* contents in .pages, 4096-aligned, size bytes */
	uint32_t crc;                   /* crc32c of those size bytes */
	uint32_t path_len;
	uint32_t flags;                 /* US_FILE_F_* */
	uint32_t reserved;
};
/* The file has no name (unlinked, or a memfd): its contents are the object that FD
 * records of the same dev/inode open again; nothing is written back to the path,
 * which is the one /proc showed ("/tmp/x (deleted)", "/memfd:name (deleted)"). */
#define US_FILE_F_UNLINKED 1u

struct us_rec_misc {
	int64_t  itimer[3][4];          /* ITIMER_REAL/VIRTUAL/PROF: interval s, us, value s, us */
	uint64_t rlim_cur[16];          /* soft limits, RLIMIT_* order */
	uint64_t pending_shared;        /* process-wide pending signals, bit n-1 = signal n */
};

/* A POSIX timer of the process: what /proc/PID/timers and timer_gettime show. */
struct us_rec_timer {                   /* 48 bytes */
	int32_t  id;                    /* the kernel's timer id, which timer_create gave */
	int32_t  clockid;
	int32_t  notify;                /* SIGEV_SIGNAL 0, SIGEV_NONE 1, | SIGEV_THREAD_ID 4 */
	int32_t  signo;
	uint64_t value;                 /* sigev_value, delivered with each signal */
	int32_t  tid;                   /* SIGEV_THREAD_ID: the thread it signals; else 0 */
	uint32_t reserved;
	uint64_t interval_ns;           /* 0: one-shot */
	uint64_t value_ns;              /* until the next expiry; 0: disarmed */
};

/* An IPC object of the group's IPC namespace, captured once per checkpoint (in
 * one member's image) and made again by us-init before any process starts. */
enum us_ipc_kind { US_IPC_SHM = 1, US_IPC_SEM = 2, US_IPC_MSG = 3, US_IPC_MQUEUE = 4 };

struct us_rec_ipc {                     /* 64 bytes, then data (8-aligned), then name bytes */
	uint32_t kind;                  /* enum us_ipc_kind */
	int32_t  id;                    /* SysV: shmid, semid or msqid; mqueue: 0 */
	int32_t  key;                   /* SysV: its key, 0 for IPC_PRIVATE; mqueue: 0 */
	uint32_t mode;                  /* permission bits; a segment may add US_IPC_SHM_DEST, _LOCKED */
	uint32_t uid, gid;              /* owner */
	uint64_t size;                  /* SHM: bytes; SEM: semaphores; MSG: msg_qbytes; MQUEUE: mq_maxmsg */
	uint64_t msg_size;              /* MQUEUE: mq_msgsize; else 0 */
	uint64_t pages_off;             /* SHM: its contents in .pages, 4096-aligned, size bytes; else 0 */
	uint32_t crc;                   /* SHM: crc32c of the contents; else 0 */
	uint32_t count;                 /* MSG, MQUEUE: messages in the data; else 0 */
	uint32_t name_len;              /* MQUEUE: its name, without the leading '/'; else 0 */
	uint32_t data_len;              /* SEM: a uint16_t value per semaphore; MSG, MQUEUE: messages */
};
#define US_IPC_SHM_DEST 01000u          /* SHM_DEST: marked for removal, still attached */
#define US_IPC_SHM_LOCKED 02000u        /* SHM_LOCKED: locked in memory (SHM_LOCK) */

/* A queued message in the data of a MSG or MQUEUE record, oldest first (in the
 * order a receiver gets them): this, then len bytes, then zeros to a multiple of 8. */
struct us_ipc_msg {                     /* 16 bytes */
	int64_t  type;                  /* MSG: mtype, > 0; MQUEUE: priority */
	uint32_t len;
	uint32_t reserved;
};

/* Memory attributes that /proc/PID/smaps shows in VmFlags and a restore sets again:
 * one record of ranges, ascending, each inside a VMA of the image. */
struct us_rec_madvice {                 /* 8 bytes, then count us_madvice */
	uint32_t count;
	uint32_t reserved;
};
struct us_madvice {                     /* 24 bytes */
	uint64_t start, end;
	uint32_t flags;                 /* US_MADV_* */
	uint32_t reserved;
};
#define US_MADV_DONTFORK    1u          /* dc: MADV_DONTFORK */
#define US_MADV_WIPEONFORK  2u          /* wf: MADV_WIPEONFORK */
#define US_MADV_DONTDUMP    4u          /* dd: MADV_DONTDUMP */
#define US_MADV_HUGEPAGE    8u          /* hg: MADV_HUGEPAGE */
#define US_MADV_NOHUGEPAGE 16u          /* nh: MADV_NOHUGEPAGE */
#define US_MADV_LOCKED     32u          /* lo: mlock */
#define US_MADV_LOCKONFAULT 64u         /* lf: mlock2 MLOCK_ONFAULT (with US_MADV_LOCKED) */
#define US_MADV_ALL        127u

#endif
