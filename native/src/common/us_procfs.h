/* Parsing /proc text without libc. */
#ifndef US_PROCFS_H
#define US_PROCFS_H
#include <stddef.h>
#include <stdint.h>

/* One line of /proc/PID/maps. */
struct us_maps_line {
	uint64_t start, end, offset, inode, dev;   /* dev in st_dev's encoding */
	uint32_t prot, shared;
	const char *path;                          /* not terminated: path_len bytes */
	size_t path_len;
};

/* Parses the line at p; returns the start of the next one. */
const char *us_maps_next(const char *p, struct us_maps_line *l);
int us_maps_path_is(const struct us_maps_line *l, const char *s);

/* /proc/PID/stat fields by their number in proc(5) (f[1] pid, f[26] startcode...);
 * the name and state fields read as 0. */
void us_stat_fields(const char *text, uint64_t f[64]);

/* Reads the numeric entries of a /proc directory (fd, task) into out[]. With
 * skip_own, the entry for the descriptor this reads the directory with is left
 * out (listing /proc/self/fd). Returns the count, or -1. */
int us_list_numbers(const char *dir, int skip_own, int *out, int cap);
/* The whole of a small file, read with raw system calls and terminated: its
 * length (at most cap - 1), or -errno. */
long us_read_file(const char *path, char *buf, size_t cap);
/* readlink, terminated (empty on failure): the link's length, or -errno. */
long us_read_link(const char *path, char *buf, size_t cap);

/* In /proc text of "key: value" lines (status, fdinfo): what follows key at the
 * start of a line, or NULL; and that value as a number, 0 if absent. */
const char *us_proc_field(const char *text, const char *key);
uint64_t us_proc_field_u(const char *text, const char *key, int base);
#endif
