#include "us_fmt.h"

size_t us_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int us_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int us_startswith(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

void us_putn(struct us_buf *b, const char *s, size_t n)
{
	while (n-- && b->len + 1 < b->cap)
		b->p[b->len++] = *s++;
}

void us_put(struct us_buf *b, const char *s) { us_putn(b, s, us_strlen(s)); }
void us_putc(struct us_buf *b, char c) { us_putn(b, &c, 1); }

void us_putu(struct us_buf *b, uint64_t v)
{
	char t[24];
	int i = sizeof t;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	us_putn(b, t + i, sizeof t - i);
}

void us_puti(struct us_buf *b, int64_t v)
{
	if (v < 0) {
		us_putc(b, '-');
		us_putu(b, (uint64_t)0 - (uint64_t)v);
	} else {
		us_putu(b, (uint64_t)v);
	}
}

void us_putx(struct us_buf *b, uint64_t v)
{
	char t[16];
	int i = sizeof t;
	do {
		t[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	us_putn(b, t + i, sizeof t - i);
}

void us_put_token(struct us_buf *b, const char *s)
{
	if (!*s) {
		us_put(b, "%00");   /* an empty token still takes its place */
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '%' || c == 0x7f) {
			us_putc(b, '%');
			us_putc(b, "0123456789ABCDEF"[c >> 4]);
			us_putc(b, "0123456789ABCDEF"[c & 15]);
		} else {
			us_putc(b, (char)c);
		}
	}
}

const char *us_term(struct us_buf *b)
{
	if (b->cap == 0)
		return "";
	b->p[b->len < b->cap ? b->len : b->cap - 1] = 0;
	return b->p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

uint64_t us_parse_u(const char **s, int base)
{
	uint64_t v = 0;
	int d;
	while ((d = hexval(**s)) >= 0 && d < base) {
		v = v * (uint64_t)base + (uint64_t)d;
		(*s)++;
	}
	return v;
}

void us_skip_spaces(const char **s)
{
	while (**s == ' ' || **s == '\t')
		(*s)++;
}

int us_next_token(const char **s, char *out, size_t cap)
{
	size_t n = 0;
	us_skip_spaces(s);
	if (!**s || **s == '\n')
		return -1;
	while (**s && **s != ' ' && **s != '\n') {
		char c = **s;
		if (c == '%' && hexval((*s)[1]) >= 0 && hexval((*s)[2]) >= 0) {
			c = (char)(hexval((*s)[1]) << 4 | hexval((*s)[2]));
			*s += 2;
		}
		(*s)++;
		if (c && n + 1 < cap)
			out[n++] = c;
	}
	if (cap)
		out[n] = 0;
	return (int)n;
}

/* The errors a checkpoint or a restore meets, in strerror's words. */
static const struct { int err; const char *text; } errno_texts[] = {
	{ 1, "operation not permitted" }, { 2, "no such file or directory" }, { 3, "no such process" },
	{ 4, "interrupted system call" }, { 5, "input/output error" }, { 7, "argument list too long" },
	{ 9, "bad file descriptor" }, { 11, "resource temporarily unavailable" }, { 12, "cannot allocate memory" },
	{ 13, "permission denied" }, { 14, "bad address" }, { 16, "device or resource busy" },
	{ 17, "file exists" }, { 20, "not a directory" }, { 21, "is a directory" }, { 22, "invalid argument" },
	{ 23, "too many open files in system" }, { 24, "too many open files" }, { 26, "text file busy" },
	{ 27, "file too large" }, { 28, "no space left on device" }, { 30, "read-only file system" },
	{ 32, "broken pipe" }, { 36, "file name too long" }, { 38, "function not implemented" },
	{ 40, "too many levels of symbolic links" }, { 95, "operation not supported" },
	{ 98, "address already in use" }, { 110, "connection timed out" }, { 111, "connection refused" },
	{ 122, "disk quota exceeded" },
};

void us_put_errno(struct us_buf *b, long err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof errno_texts / sizeof errno_texts[0]; i++)
		if (errno_texts[i].err == err) {
			us_put(b, errno_texts[i].text);
			return;
		}
	us_put(b, "errno ");
	us_putu(b, (uint64_t)err);
}
