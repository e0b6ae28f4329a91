/* Writes vector.meta and vector.pages: a process image laid out with the real structs of
 * native/include/us_image.h, so the C# reader and writer are checked against the C compiler's
 * layout, not against themselves. The CRC-32C here is the bitwise definition, independent of the
 * hardware instruction the C# side uses. Then vector-inc.meta and vector-inc.pages: an
 * incremental image on vector's checkpoint, with a hole run, a complete mapping holding a
 * compressed run (US_RUN_F_LZ4: an LZ4 block built by hand below, independent of any LZ4
 * library), a FILE record (storage checkpointing), and the records of format version 3:
 * TIMER, IPC (with a segment's contents in .pages), MADVICE, an mqueue descriptor and a
 * MAP_NORESERVE mapping.
 *
 *   gcc -std=c11 -Wall -I../../../native/include make_vector.c -o /tmp/make_vector && /tmp/make_vector .
 *
 * Records come in the native writer's order (native/src/interceptor/capture.c): PROC, THREAD...,
 * SIGACT, MISC, TIMER..., FD..., FILE..., IPC..., VMA..., MADVICE. NativeVectorTests asserts
 * every value written here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "us_image.h"

static uint8_t meta[16384];
static size_t meta_len = sizeof(struct us_meta_header);
static uint32_t nrecords;

static uint32_t crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = ~0u;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & -(crc & 1u));
	}
	return ~crc;
}

/* Appends one record from up to three pieces: struct, then variable parts. */
static void record(uint32_t type, const void *a, size_t alen, const void *b, size_t blen, const void *c, size_t clen)
{
	struct us_rec_hdr h = { .type = type, .len = (uint32_t)(alen + blen + clen) };
	memcpy(meta + meta_len, &h, sizeof h);
	meta_len += sizeof h;
	if (alen) memcpy(meta + meta_len, a, alen);
	if (blen) memcpy(meta + meta_len + alen, b, blen);
	if (clen) memcpy(meta + meta_len + alen + blen, c, clen);
	meta_len += US_REC_ALIGN(h.len); /* padding stays zero: meta is static */
	nrecords++;
}

static uint8_t pages[4 * US_PAGE_SIZE];

static void fill_pages(void)
{
	for (size_t i = 0; i < sizeof pages; i++)
		pages[i] = (uint8_t)(i * 7 + 13 + i / US_PAGE_SIZE);
}

/* Appends an LZ4 length continuation: 255s then the rest (the LZ4 block format). */
static size_t lz4_length(uint8_t *out, size_t extra)
{
	size_t n = 0;
	for (; extra >= 255; extra -= 255)
		out[n++] = 255;
	out[n++] = (uint8_t)extra;
	return n;
}

/* An LZ4 block of n bytes that repeat the first period bytes of pattern (period <= 15 + 255):
 * the first period bytes as literals, one match at offset period up to 5 bytes before the end,
 * then those 5 as the last literals, as the format requires of a block's end. */
static size_t lz4_repeat_block(uint8_t *out, const uint8_t *pattern, size_t period, size_t n)
{
	size_t len = 0, match = n - period - 5;
	out[len++] = (uint8_t)((period < 15 ? period : 15) << 4 | (match - 4 < 15 ? match - 4 : 15));
	if (period >= 15)
		len += lz4_length(out + len, period - 15);
	memcpy(out + len, pattern, period);
	len += period;
	out[len++] = (uint8_t)period;           /* offset, little-endian */
	out[len++] = 0;
	if (match - 4 >= 15)
		len += lz4_length(out + len, match - 4 - 15);
	out[len++] = 5 << 4;                    /* the last sequence: 5 literals, no match */
	for (size_t i = n - 5; i < n; i++)
		out[len++] = pattern[i % period];
	return len;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *out = fopen(path, "wb");
	if (!out || fwrite(data, 1, len, out) != len || fclose(out)) {
		perror(path);
		return 1;
	}
	return 0;
}

/* Seals the header of the records appended so far and writes NAME.meta and NAME.pages. */
static int finish(const char *dir, const char *name, uint32_t kind, uint64_t seq, uint32_t base_seq,
		  const void *page_data, size_t pages_len)
{
	struct us_meta_header h = { .version = US_META_VERSION, .header_size = sizeof h, .kind = kind,
		.record_count = nrecords, .records_len = meta_len - sizeof h, .pages_len = pages_len,
		.vpid = 7, .checkpoint_seq = seq, .base_seq = base_seq };
	memcpy(h.magic, US_META_MAGIC, 8);
	h.records_crc = crc32c(meta + sizeof h, meta_len - sizeof h);
	h.header_crc = crc32c(&h, 60);
	memcpy(meta, &h, sizeof h);

	char file[256];
	snprintf(file, sizeof file, "%s.meta", name);
	if (write_file(dir, file, meta, meta_len))
		return 1;
	snprintf(file, sizeof file, "%s.pages", name);
	if (write_file(dir, file, page_data, pages_len))
		return 1;
	printf("%s.meta %zu bytes, %u records; %s.pages %zu bytes\n", name, meta_len, nrecords, name, pages_len);
	memset(meta, 0, sizeof meta);
	meta_len = sizeof(struct us_meta_header);
	nrecords = 0;
	return 0;
}

/* Appends one message of an IPC record's data at out: the header, the text, zeros to 8. */
static size_t ipc_msg(uint8_t *out, int64_t type, const char *text)
{
	struct us_ipc_msg m = { .type = type, .len = (uint32_t)strlen(text) };
	memcpy(out, &m, sizeof m);
	memcpy(out + sizeof m, text, m.len);
	return sizeof m + US_REC_ALIGN(m.len);
}

/* The incremental image: checkpoint 4 on checkpoint 3 (vector). Its .pages holds one page of
 * heap data, then the 5000 bytes of a captured file padded to two pages, then the 100 bytes of a
 * SysV shared memory segment padded to a page, then the LZ4 block of two pages of the new
 * mapping: a 16-byte pattern repeated (8-aligned, unpadded at the end). It also has the records
 * of format version 3: two POSIX timers, the group's IPC objects, a message queue descriptor,
 * memory advice and a MAP_NORESERVE mapping. */
static int write_incremental(const char *dir)
{
	static uint8_t inc_pages[4 * US_PAGE_SIZE + 256];
	memcpy(inc_pages, pages + US_PAGE_SIZE, US_PAGE_SIZE);
	for (size_t i = 0; i < 5000; i++)
		inc_pages[US_PAGE_SIZE + i] = (uint8_t)(i * 3 + 1);
	for (size_t i = 0; i < 100; i++)
		inc_pages[3 * US_PAGE_SIZE + i] = (uint8_t)(i * 5 + 3);
	const uint8_t pattern[16] = "understudy-lz4!";
	size_t lz4_off = 4 * US_PAGE_SIZE;
	size_t lz4_len = lz4_repeat_block(inc_pages + lz4_off, pattern, sizeof pattern, 2 * US_PAGE_SIZE);

	const char exe[] = "/usr/bin/vector-app";
	struct us_rec_proc p = { .vpid = 7, .vppid = 1, .vpgid = 7, .vsid = 1, .exe_len = sizeof exe - 1 };
	record(US_REC_PROC, &p, sizeof p, exe, p.exe_len, NULL, 0);
	struct us_rec_thread t = { .tid = 7, .fs_base = 0x7f00000aa000 };
	strcpy(t.comm, "vector-app");
	record(US_REC_THREAD, &t, sizeof t, NULL, 0, NULL, 0);
	struct us_rec_sigact sa = { .count = 0 };
	record(US_REC_SIGACT, &sa, sizeof sa, NULL, 0, NULL, 0);
	struct us_rec_misc m = { .pending_shared = 0 };
	record(US_REC_MISC, &m, sizeof m, NULL, 0, NULL, 0);

	/* TIMERs: a periodic one signalling the process, a one-shot one signalling thread 7 */
	struct us_rec_timer tick = { .id = 0, .clockid = 1, .notify = 0, .signo = 35, .value = 1111,
		.interval_ns = 50000000, .value_ns = 20000000 };
	record(US_REC_TIMER, &tick, sizeof tick, NULL, 0, NULL, 0);
	struct us_rec_timer once = { .id = 3, .clockid = 0, .notify = 4, .signo = 36, .value = 0x7f00000cc000,
		.tid = 7, .value_ns = 3600000000000ull };
	record(US_REC_TIMER, &once, sizeof once, NULL, 0, NULL, 0);

	const char db[] = "/srv/data/app.db";
	struct us_rec_fd f = { .fd = 3, .kind = US_FD_FILE, .open_flags = 0x402, .pos = 5000,
		.dev = 0x803, .inode = 4242, .mode = 0100600, .path_len = sizeof db - 1 };
	record(US_REC_FD, &f, sizeof f, db, sizeof db - 1, NULL, 0);
	const char queue[] = "/jobs";
	struct us_rec_fd mq = { .fd = 4, .fd_flags = 1, .kind = US_FD_MQUEUE, .open_flags = 02004002,
		.dev = 0x12, .inode = 77, .mode = 0100640, .path_len = sizeof queue - 1 };
	record(US_REC_FD, &mq, sizeof mq, queue, sizeof queue - 1, NULL, 0);

	/* FILE: the 5000 bytes of app.db */
	struct us_rec_file file = { .dev = 0x803, .inode = 4242, .size = 5000, .pages_off = US_PAGE_SIZE,
		.crc = crc32c(inc_pages + US_PAGE_SIZE, 5000), .path_len = sizeof db - 1 };
	record(US_REC_FILE, &file, sizeof file, db, sizeof db - 1, NULL, 0);

	/* IPC: a segment (its 100 bytes in .pages), a semaphore set, a SysV queue, a POSIX queue */
	struct us_rec_ipc shm = { .kind = US_IPC_SHM, .id = 32769, .key = 0x1234, .mode = 01640, .uid = 1000,
		.gid = 1001, .size = 100, .pages_off = 3 * US_PAGE_SIZE, .crc = crc32c(inc_pages + 3 * US_PAGE_SIZE, 100) };
	record(US_REC_IPC, &shm, sizeof shm, NULL, 0, NULL, 0);
	uint16_t values[3] = { 3, 0, 32767 };
	struct us_rec_ipc sem = { .kind = US_IPC_SEM, .id = 2, .key = -5, .mode = 0600, .uid = 1000, .gid = 1001,
		.size = 3, .data_len = sizeof values };
	record(US_REC_IPC, &sem, sizeof sem, values, sizeof values, NULL, 0);
	uint8_t msgs[128] = { 0 };
	size_t msgs_len = ipc_msg(msgs, 1, "first");
	msgs_len += ipc_msg(msgs + msgs_len, 9, "type nine");
	struct us_rec_ipc msg = { .kind = US_IPC_MSG, .id = 0, .key = 0, .mode = 0660, .uid = 0, .gid = 0,
		.size = 16384, .count = 2, .data_len = (uint32_t)msgs_len };
	record(US_REC_IPC, &msg, sizeof msg, msgs, msgs_len, NULL, 0);
	uint8_t posix[64] = { 0 };
	size_t posix_len = ipc_msg(posix, 7, "urgent");
	struct us_rec_ipc mqueue = { .kind = US_IPC_MQUEUE, .mode = 0640, .uid = 1000, .gid = 1001, .size = 10,
		.msg_size = 8192, .count = 1, .name_len = 4, .data_len = (uint32_t)posix_len };
	record(US_REC_IPC, &mqueue, sizeof mqueue, posix, posix_len, "jobs", 4);

	/* VMA 1: the heap as a delta: one page written, two pages gone, the rest unchanged */
	struct us_page_run heap_runs[2] = {
		{ .addr = 0x555555555000, .npages = 1, .pages_off = 0, .stored_len = US_PAGE_SIZE,
		  .crc = crc32c(inc_pages, US_PAGE_SIZE) },
		{ .addr = 0x555555556000, .npages = 2, .flags = US_RUN_F_HOLE },
	};
	struct us_rec_vma heap = { .start = 0x555555554000, .end = 0x555555558000, .prot = 3,
		.kind = US_VMA_HEAP, .path_len = 6, .nruns = 2 };
	record(US_REC_VMA, &heap, sizeof heap, heap_runs, sizeof heap_runs, "[heap]", 6);

	/* VMA 2: a new anonymous mapping, complete, two pages written: compressed */
	struct us_page_run fresh_run = { .addr = 0x7f0000021000, .npages = 2, .pages_off = lz4_off,
		.stored_len = lz4_len, .crc = crc32c(inc_pages + lz4_off, lz4_len), .flags = US_RUN_F_LZ4 };
	struct us_rec_vma fresh = { .start = 0x7f0000020000, .end = 0x7f0000024000, .prot = 3,
		.flags = US_VMA_F_COMPLETE | US_VMA_F_NORESERVE, .kind = US_VMA_ANON, .nruns = 1 };
	record(US_REC_VMA, &fresh, sizeof fresh, &fresh_run, sizeof fresh_run, NULL, 0);

	/* MADVICE: the new mapping's first two pages are not forked, and locked */
	struct us_rec_madvice advice = { .count = 1 };
	struct us_madvice range = { .start = 0x7f0000020000, .end = 0x7f0000022000,
		.flags = US_MADV_DONTFORK | US_MADV_LOCKED };
	record(US_REC_MADVICE, &advice, sizeof advice, &range, sizeof range, NULL, 0);

	return finish(dir, "vector-inc", US_IMAGE_INCREMENTAL, 4, 3, inc_pages, lz4_off + lz4_len);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	fill_pages();

	/* PROC */
	const char exe[] = "/usr/bin/vector-app", cwd[] = "/srv/data", comm[] = "vector-app";
	uint64_t auxv[4] = { 6, 4096, 0, 0 }; /* AT_PAGESZ 4096, AT_NULL */
	uint8_t proc_buf[512];
	struct us_rec_proc p = {
		.vpid = 7, .vppid = 1, .vpgid = 7, .vsid = 1, .uid = 1000, .gid = 1001,
		.exec_count = 2, .umask = 022, .entry = 0x7f0000001000, .entry_arg = 0x7f0000002000,
		.exe_len = sizeof exe - 1, .cwd_len = sizeof cwd - 1, .comm_len = sizeof comm - 1,
		.auxv_len = sizeof auxv,
	};
	for (int i = 0; i < US_MM_COUNT; i++)
		p.mm[i] = 0x400000 + (uint64_t)i * 0x1000;
	size_t n = 0;
	memcpy(proc_buf + n, exe, p.exe_len); n += p.exe_len;
	memcpy(proc_buf + n, cwd, p.cwd_len); n += p.cwd_len;
	memcpy(proc_buf + n, comm, p.comm_len); n += p.comm_len;
	memcpy(proc_buf + n, auxv, p.auxv_len); n += p.auxv_len;
	record(US_REC_PROC, &p, sizeof p, proc_buf, n, NULL, 0);

	/* THREADs */
	struct us_rec_thread t1 = { .tid = 7, .is_checkpoint_thread = 0, .fs_base = 0x7f00000aa000 };
	strcpy(t1.comm, "vector-app");
	record(US_REC_THREAD, &t1, sizeof t1, NULL, 0, NULL, 0);
	struct us_rec_thread t2 = { .tid = 8, .is_checkpoint_thread = 1, .fs_base = 0x7f00000bb000 };
	strcpy(t2.comm, "us-ckpt");
	record(US_REC_THREAD, &t2, sizeof t2, NULL, 0, NULL, 0);

	/* SIGACT */
	struct us_rec_sigact sa = { .count = 2 };
	struct us_sigact acts[2] = {
		{ .signo = 2, .handler = 0x401000, .flags = 0x04000000, .restorer = 0x401100, .mask = 0x1000 },
		{ .signo = 15, .handler = 1 },
	};
	record(US_REC_SIGACT, &sa, sizeof sa, acts, sizeof acts, NULL, 0);

	/* MISC */
	struct us_rec_misc m = { .itimer = { { 1, 500000, 0, 250000 } }, .pending_shared = 1u << 9 };
	for (int i = 0; i < 16; i++)
		m.rlim_cur[i] = i % 4 == 3 ? UINT64_MAX : (uint64_t)i * 1000 + 1;
	record(US_REC_MISC, &m, sizeof m, NULL, 0, NULL, 0);

	/* FDs */
	struct us_rec_fd chr = { .fd = 0, .kind = US_FD_CHR, .open_flags = 2, .dev = 5, .inode = 6,
		.mode = 020666, .path_len = 9, .aux = { 0x103 } };
	record(US_REC_FD, &chr, sizeof chr, "/dev/null", 9, NULL, 0);
	const char log[] = "/srv/data/log.txt";
	struct us_rec_fd f = { .fd = 3, .fd_flags = 1, .kind = US_FD_FILE, .open_flags = 0x401, .pos = 12345,
		.dev = 0x803, .inode = 999, .mode = 0100644, .path_len = sizeof log - 1 };
	record(US_REC_FD, &f, sizeof f, log, sizeof log - 1, NULL, 0);
	struct us_rec_fd pipe = { .fd = 4, .kind = US_FD_PIPE, .open_flags = 0, .inode = 4444,
		.mode = 010600, .aux = { 1 }, .data_len = 5 };
	record(US_REC_FD, &pipe, sizeof pipe, "hello", 5, NULL, 0);
	struct us_epoll_target targets[2] = { { .fd = 4, .events = 1, .data = 0x1122334455667788 },
		{ .fd = 6, .events = 5, .data = 42 } };
	struct us_rec_fd ep = { .fd = 5, .fd_flags = 1, .kind = US_FD_EPOLL, .open_flags = 2,
		.data_len = sizeof targets };
	record(US_REC_FD, &ep, sizeof ep, targets, sizeof targets, NULL, 0);
	struct us_rec_fd sock = { .fd = 6, .kind = US_FD_UNIX_STREAM, .open_flags = 2, .inode = 5555,
		.mode = 0140777, .path_len = 8, .aux = { 4242, 0 }, .data_len = 3 };
	record(US_REC_FD, &sock, sizeof sock, "/run/s.0", 8, "abc", 3);
	struct us_rec_fd timer = { .fd = 7, .kind = US_FD_TIMERFD, .open_flags = 2,
		.aux = { 1, 1000000000, 500000000 } };
	record(US_REC_FD, &timer, sizeof timer, NULL, 0, NULL, 0);
	/* a pty master with its state and both queues, shared with pid 7's fd 8 (itself) */
	struct { struct us_pty_state st; char queued[5]; } pty = {
		.st = { .ws_row = 24, .ws_col = 80, .ws_xpixel = 640, .ws_ypixel = 480, .flags = US_PTY_F_PACKET,
			.to_slave_len = 3, .to_master_len = 2 },
		.queued = "ab\nxy" };
	for (int i = 0; i < 44; i++)
		pty.st.termios[i] = (uint8_t)(i + 1);
	struct us_rec_fd ptm = { .fd = 8, .kind = US_FD_PTY_MASTER, .open_flags = 2, .path_len = 9,
		.aux = { 3, 0, 0, US_OPEN_KEY(7, 8) }, .data_len = sizeof pty.st + 5 };
	record(US_REC_FD, &ptm, sizeof ptm, "/dev/ptmx", 9, &pty, sizeof pty.st + 5);
	const char memfd_fd[] = "/memfd:cache (deleted)";
	struct us_rec_fd mfd = { .fd = 9, .kind = US_FD_MEMFD, .open_flags = 2, .pos = 77, .dev = 1, .inode = 31337,
		.mode = 0100777, .path_len = sizeof memfd_fd - 1, .aux = { 0x13 } };
	record(US_REC_FD, &mfd, sizeof mfd, memfd_fd, sizeof memfd_fd - 1, NULL, 0);
	/* a TCP connection taken with TCP repair: its state, then "ping" received, then
	 * "pong!" to send, of which "g!" never sent */
	struct us_tcp_conn conn = { .family = 2, .state = 1, .local_port = 8080, .remote_port = 40000,
		.local_addr = { 127, 0, 0, 1 }, .remote_addr = { 127, 0, 0, 2 }, .send_seq = 0xfffffffe,
		.recv_seq = 1000, .send_len = 5, .unsent_len = 2, .recv_len = 4, .mss = 65483,
		.timestamp = 0x12345678, .snd_wscale = 7, .rcv_wscale = 9, .options = 7, .snd_wl1 = 990,
		.snd_wnd = 65536, .max_window = 131072, .rcv_wnd = 65000, .rcv_wup = 1000,
		.sndbuf = 262144, .rcvbuf = 524288, .flags = US_TCP_F_REPAIR | US_TCP_F_NODELAY };
	uint8_t tcp_data[sizeof conn + 9];
	memcpy(tcp_data, &conn, sizeof conn);
	memcpy(tcp_data + sizeof conn, "pingpong!", 9);
	const char tcp_name[] = "127.0.0.1:8080";
	struct us_rec_fd tcp = { .fd = 10, .kind = US_FD_TCP, .open_flags = 04002, .inode = 7777, .mode = 0140777,
		.path_len = sizeof tcp_name - 1, .aux = { 0, 0, US_INET_F_REUSEADDR }, .data_len = sizeof tcp_data };
	record(US_REC_FD, &tcp, sizeof tcp, tcp_name, sizeof tcp_name - 1, tcp_data, sizeof tcp_data);
	/* a seqpacket socket with two records queued, "ab" and an empty one */
	const uint8_t records[] = { 2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0 };
	struct us_rec_fd seq = { .fd = 11, .kind = US_FD_UNIX_SEQPACKET, .open_flags = 2, .inode = 8888,
		.mode = 0140777, .aux = { 8889 }, .data_len = sizeof records };
	record(US_REC_FD, &seq, sizeof seq, records, sizeof records, NULL, 0);

	/* VMA 1: heap, two runs */
	struct us_page_run heap_runs[2] = {
		{ .addr = 0x555555554000, .npages = 1, .pages_off = 0, .stored_len = US_PAGE_SIZE,
		  .crc = crc32c(pages, US_PAGE_SIZE) },
		{ .addr = 0x555555556000, .npages = 2, .pages_off = US_PAGE_SIZE, .stored_len = 2 * US_PAGE_SIZE,
		  .crc = crc32c(pages + US_PAGE_SIZE, 2 * US_PAGE_SIZE) },
	};
	struct us_rec_vma heap = { .start = 0x555555554000, .end = 0x555555558000, .prot = 3, .flags = 0,
		.kind = US_VMA_HEAP, .path_len = 6, .nruns = 2 };
	record(US_REC_VMA, &heap, sizeof heap, heap_runs, sizeof heap_runs, "[heap]", 6);

	/* VMA 2: private file mapping with one written page */
	const char lib[] = "/usr/lib/libvector.so.1";
	struct us_page_run lib_run = { .addr = 0x7f0000001000, .npages = 1, .pages_off = 3 * US_PAGE_SIZE,
		.stored_len = US_PAGE_SIZE, .crc = crc32c(pages + 3 * US_PAGE_SIZE, US_PAGE_SIZE) };
	struct us_rec_vma file = { .start = 0x7f0000000000, .end = 0x7f0000002000, .prot = 5, .flags = 0,
		.kind = US_VMA_FILE, .path_len = sizeof lib - 1, .file_offset = 0x1000, .dev = 0x803,
		.inode = 12345, .object_size = 8192, .nruns = 1 };
	record(US_REC_VMA, &file, sizeof file, &lib_run, sizeof lib_run, lib, sizeof lib - 1);

	/* VMA 3: shared memfd, no runs */
	const char memfd[] = "/memfd:cache (deleted)";
	struct us_rec_vma shm = { .start = 0x7f0000010000, .end = 0x7f0000011000, .prot = 3,
		.flags = US_VMA_F_SHARED, .kind = US_VMA_SHMEM, .path_len = sizeof memfd - 1,
		.dev = 1, .inode = 77, .object_size = 4096 };
	record(US_REC_VMA, &shm, sizeof shm, memfd, sizeof memfd - 1, NULL, 0);

	/* VMA 4: vvar_vclock */
	struct us_rec_vma vclock = { .start = 0x7ffff7fc0000, .end = 0x7ffff7fc1000, .prot = 1,
		.kind = US_VMA_VVAR_VCLOCK };
	record(US_REC_VMA, &vclock, sizeof vclock, NULL, 0, NULL, 0);

	if (finish(dir, "vector", US_IMAGE_FULL, 3, 0, pages, sizeof pages))
		return 1;
	return write_incremental(dir);
}
