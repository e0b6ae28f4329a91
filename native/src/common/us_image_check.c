#include "us_image_check.h"
#include "us_crc32c.h"

static const char *check_vma(const struct us_rec_vma *v, uint64_t len, uint64_t pages_len, int incremental)
{
	if (len < sizeof *v || (uint64_t)v->nruns * sizeof(struct us_page_run) + v->path_len > len - sizeof *v)
		return "memory record overruns itself";
	if (v->start >= v->end || v->start % US_PAGE_SIZE || v->end % US_PAGE_SIZE)
		return "memory record has a bad address range";
	if (v->kind < US_VMA_ANON || v->kind > US_VMA_VVAR_VCLOCK)
		return "memory record of unknown kind";
	const struct us_page_run *run = (const void *)(v + 1);
	for (uint32_t i = 0; i < v->nruns; i++, run++) {
		uint64_t bytes = run->npages * US_PAGE_SIZE;
		if (!run->npages || run->npages > (v->end - v->start) / US_PAGE_SIZE ||
		    run->addr < v->start || run->addr % US_PAGE_SIZE || bytes > v->end - run->addr)
			return "page run outside its mapping";
		if (run->flags & ~(US_RUN_F_HOLE | US_RUN_F_LZ4) || run->flags == (US_RUN_F_HOLE | US_RUN_F_LZ4))
			return "page run with unknown flags";
		if (run->flags & US_RUN_F_HOLE) {
			if (!incremental || run->pages_off || run->stored_len || run->crc)
				return "hole run in a full image or with data";
			continue;
		}
		if (run->flags & US_RUN_F_LZ4) {
			if (run->npages > US_LZ4_RUN_PAGES || run->pages_off % 8 || !run->stored_len ||
			    run->stored_len > US_LZ4_BOUND(bytes))
				return "compressed page run with a bad size or alignment";
		} else if (run->pages_off % US_PAGE_SIZE || run->stored_len != bytes) {
			return "page run with a bad size or alignment";
		}
		if (run->pages_off > pages_len || run->stored_len > pages_len - run->pages_off)
			return "page run outside the pages file";
	}
	return 0;
}

/* A pty master's data: its state, then exactly the bytes queued each way. */
static int pty_state_fits(const struct us_rec_fd *f)
{
	struct us_pty_state st;
	if (f->data_len < sizeof st)
		return 0;
	__builtin_memcpy(&st, (const char *)(f + 1) + f->path_len, sizeof st);
	return (uint64_t)sizeof st + st.to_slave_len + st.to_master_len == f->data_len;
}

/* The queued data of a socket record, which a restore writes back: datagrams and
 * records framed exactly, a TCP connection's queues as long as its state says. */
static const char *check_fd_data(const struct us_rec_fd *f)
{
	const unsigned char *d = (const unsigned char *)(f + 1) + f->path_len;
	if (f->kind == US_FD_UNIX_DGRAM || f->kind == US_FD_UNIX_SEQPACKET) {
		for (uint64_t at = 0; at < f->data_len;) {
			if (f->data_len - at < 4)
				return "queued datagrams overrun their descriptor record";
			uint32_t n = (uint32_t)d[at] | (uint32_t)d[at + 1] << 8 | (uint32_t)d[at + 2] << 16 | (uint32_t)d[at + 3] << 24;
			if (n > f->data_len - at - 4)
				return "queued datagrams overrun their descriptor record";
			at += 4 + (uint64_t)n;
		}
	} else if (f->kind == US_FD_TCP && f->data_len) {
		struct us_tcp_conn t;
		if (f->data_len < sizeof t)
			return "TCP connection state truncated";
		__builtin_memcpy(&t, d, sizeof t);
		if ((uint64_t)sizeof t + t.recv_len + t.send_len != f->data_len || t.unsent_len > t.send_len)
			return "TCP connection queues do not match their lengths";
	}
	return 0;
}

/* The messages of a MSG or MQUEUE record fill its data exactly. */
static int messages_fit(const char *data, uint64_t len, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct us_ipc_msg *m = (const void *)data;
		if (len < sizeof *m || US_REC_ALIGN((uint64_t)m->len) > len - sizeof *m)
			return 0;
		uint64_t step = sizeof *m + US_REC_ALIGN((uint64_t)m->len);
		data += step;
		len -= step;
	}
	return len == 0;
}

static const char *check_ipc(const struct us_rec_ipc *o, uint64_t len, uint64_t pages_len)
{
	if (len < sizeof *o || (uint64_t)o->name_len + o->data_len != len - sizeof *o)
		return "IPC record overruns itself";
	const char *data = (const char *)(o + 1);
	switch (o->kind) {
	case US_IPC_SHM:
		if (o->pages_off % US_PAGE_SIZE || o->pages_off > pages_len || o->size > pages_len - o->pages_off)
			return "shared memory contents outside the pages file";
		return 0;
	case US_IPC_SEM:
		return o->data_len == o->size * 2 ? 0 : "semaphore record with the wrong number of values";
	case US_IPC_MSG:
	case US_IPC_MQUEUE:
		return messages_fit(data, o->data_len, o->count) ? 0 : "message queue record whose messages overrun it";
	default:
		return "IPC record of unknown kind";
	}
}

const char *us_image_check(const void *buf, uint64_t size)
{
	const struct us_meta_header *h = buf;
	const char magic[8] = US_META_MAGIC;
	if (size < sizeof *h)
		return "state description truncated";
	for (int i = 0; i < 8; i++)
		if (h->magic[i] != magic[i])
			return "not an Understudy image (bad magic)";
	if (h->version != US_META_VERSION || h->header_size != sizeof *h)
		return "unsupported image version: this build reads version 3 only; take a new checkpoint";
	if (us_crc32c(0, h, 60) != h->header_crc)
		return "header checksum mismatch";
	if (h->records_len != size - sizeof *h)
		return "state description truncated or padded";
	if (h->kind != US_IMAGE_FULL && h->kind != US_IMAGE_INCREMENTAL)
		return "unknown image kind";
	if ((h->kind == US_IMAGE_FULL) != (h->base_seq == 0))
		return "base checkpoint inconsistent with the image kind";
	const char *rec = (const char *)buf + sizeof *h, *end = rec + h->records_len;
	if (us_crc32c(0, rec, h->records_len) != h->records_crc)
		return "records checksum mismatch";

	uint32_t count = 0, procs = 0;
	for (const char *p = rec; p < end; count++) {
		const struct us_rec_hdr *r = (const void *)p;
		uint64_t room = (uint64_t)(end - p);
		if (room < sizeof *r || r->len > room - sizeof *r)
			return "record overruns the state description";
		uint64_t len = r->len;
		const void *body = r + 1;
		const char *why = 0;
		switch (r->type) {
		case US_REC_PROC: {
			const struct us_rec_proc *pr = body;
			procs++;
			if (len < sizeof *pr || (uint64_t)pr->exe_len + pr->cwd_len + pr->comm_len + pr->auxv_len > len - sizeof *pr)
				why = "process record overruns itself";
			break;
		}
		case US_REC_VMA:
			why = check_vma(body, len, h->pages_len, h->kind == US_IMAGE_INCREMENTAL);
			break;
		case US_REC_FILE: {
			const struct us_rec_file *f = body;
			if (len < sizeof *f || f->path_len > len - sizeof *f)
				why = "file record overruns itself";
			else if (f->pages_off % US_PAGE_SIZE || f->pages_off > h->pages_len || f->size > h->pages_len - f->pages_off)
				why = "file contents outside the pages file";
			break;
		}
		case US_REC_THREAD:
			if (len < sizeof(struct us_rec_thread))
				why = "thread record too short";
			break;
		case US_REC_FD: {
			const struct us_rec_fd *f = body;
			if (len < sizeof *f || (uint64_t)f->path_len + f->data_len > len - sizeof *f)
				why = "descriptor record overruns itself";
			else if (f->fd < 0 || f->kind < US_FD_FILE || f->kind > US_FD_KIND_MAX)
				why = "descriptor record has a bad number or kind";
			else if (f->kind == US_FD_PTY_MASTER && !pty_state_fits(f))
				why = "pty record's state and queued bytes do not fill its data";
			else
				why = check_fd_data(f);
			break;
		}
		case US_REC_SIGACT: {
			const struct us_rec_sigact *s = body;
			if (len < sizeof *s || (uint64_t)s->count * sizeof(struct us_sigact) > len - sizeof *s)
				why = "signal record overruns itself";
			break;
		}
		case US_REC_MISC:
			if (len < sizeof(struct us_rec_misc))
				why = "limits record too short";
			break;
		case US_REC_TIMER:
			if (len < sizeof(struct us_rec_timer))
				why = "timer record too short";
			break;
		case US_REC_IPC:
			why = check_ipc(body, len, h->pages_len);
			break;
		case US_REC_MADVICE: {
			const struct us_rec_madvice *m = body;
			if (len < sizeof *m || (uint64_t)m->count * sizeof(struct us_madvice) > len - sizeof *m)
				why = "memory advice record overruns itself";
			break;
		}
		default:
			why = "record of unknown type";
		}
		if (why)
			return why;
		if (US_REC_ALIGN(len) > room - sizeof *r)
			return "record padding overruns the state description";
		p += sizeof *r + US_REC_ALIGN(len);
	}
	if (count != h->record_count)
		return "record count mismatch";
	if (procs != 1)
		return "state description must hold exactly one process record";
	return 0;
}
