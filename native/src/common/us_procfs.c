#include <errno.h>
#include <fcntl.h>
#include "us_procfs.h"
#include "us_fmt.h"
#include "us_sys.h"

const char *us_maps_next(const char *p, struct us_maps_line *l)
{
	l->start = us_parse_u(&p, 16);
	p++;
	l->end = us_parse_u(&p, 16);
	us_skip_spaces(&p);
	l->prot = (p[0] == 'r' ? 1 : 0) | (p[1] == 'w' ? 2 : 0) | (p[2] == 'x' ? 4 : 0);   /* PROT_* */
	l->shared = p[3] == 's';
	p += 4;
	us_skip_spaces(&p);
	l->offset = us_parse_u(&p, 16);
	us_skip_spaces(&p);
	uint64_t major = us_parse_u(&p, 16);
	p++;
	uint64_t minor = us_parse_u(&p, 16);
	/* st_dev's encoding (glibc makedev), so descriptors and mappings compare */
	l->dev = (major & 0xfff) << 8 | (minor & 0xff) | (major & ~0xfffull) << 32 | (minor & ~0xffull) << 12;
	us_skip_spaces(&p);
	l->inode = us_parse_u(&p, 10);
	us_skip_spaces(&p);
	l->path = p;
	while (*p && *p != '\n')
		p++;
	l->path_len = (size_t)(p - l->path);
	return *p ? p + 1 : p;
}

int us_maps_path_is(const struct us_maps_line *l, const char *s)
{
	size_t n = us_strlen(s);
	if (l->path_len != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (l->path[i] != s[i])
			return 0;
	return 1;
}

void us_stat_fields(const char *text, uint64_t f[64])
{
	const char *q = text;
	for (const char *c = text; *c; c++)   /* the name may hold spaces and ')' */
		if (*c == ')')
			q = c + 1;
	for (int i = 0; i < 64; i++)
		f[i] = 0;
	for (int i = 3; i < 64 && *q; i++) {
		us_skip_spaces(&q);
		if (*q == '-')
			q++;
		f[i] = us_parse_u(&q, 10);
		while (*q && *q != ' ')
			q++;
	}
}

int us_list_numbers(const char *dir, int skip_own, int *out, int cap)
{
	char buf[4096];
	int n = 0;
	int dfd = (int)us_sc4(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return -1;
	for (;;) {
		long r = us_sc3(SYS_getdents64, dfd, buf, sizeof buf);
		if (r <= 0)
			break;
		for (long off = 0; off < r;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
			const char *p = d->name;
			int num = (int)us_parse_u(&p, 10);
			if (d->name[0] >= '0' && d->name[0] <= '9' && !(skip_own && num == dfd)) {
				if (n < cap)
					out[n] = num;
				n++;   /* counted beyond cap: the caller sees it needs more room */
			}
			off += d->reclen;
		}
	}
	us_sc1(SYS_close, dfd);
	return n;
}

/* Reads a whole small file (up to cap - 1 bytes) and terminates it. Returns its
 * length, or -errno if it cannot be opened. */
long us_read_file(const char *path, char *buf, size_t cap)
{
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	size_t n = 0;
	for (;;) {
		long r = us_sc3(SYS_read, fd, buf + n, cap - 1 - n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	us_sc1(SYS_close, fd);
	buf[n] = 0;
	return (long)n;
}

long us_read_link(const char *path, char *buf, size_t cap)
{
	long n = us_sc4(SYS_readlinkat, AT_FDCWD, path, buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

const char *us_proc_field(const char *text, const char *key)
{
	for (const char *p = text; *p;) {
		if (us_startswith(p, key))
			return p + us_strlen(key);
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
	}
	return NULL;
}

uint64_t us_proc_field_u(const char *text, const char *key, int base)
{
	const char *p = us_proc_field(text, key);
	if (!p)
		return 0;
	us_skip_spaces(&p);
	return us_parse_u(&p, base);
}
