/* Allocation-free formatting and parsing for code that must not call stdio. */
#ifndef US_FMT_H
#define US_FMT_H
#include <stddef.h>
#include <stdint.h>

struct us_buf { char *p; size_t len, cap; };

void us_put(struct us_buf *b, const char *s);
void us_putn(struct us_buf *b, const char *s, size_t n);
void us_putu(struct us_buf *b, uint64_t v);
void us_puti(struct us_buf *b, int64_t v);
void us_putx(struct us_buf *b, uint64_t v);
void us_putc(struct us_buf *b, char c);
/* Percent-encodes space, '%', newline and control bytes (protocol tokens). */
void us_put_token(struct us_buf *b, const char *s);
const char *us_term(struct us_buf *b);   /* NUL-terminates, truncating if needed */
/* What an errno value means, as strerror says it for the common ones ("no space
 * left on device"), else "errno N". err may be given negative, as syscalls return it. */
void us_put_errno(struct us_buf *b, long err);

size_t us_strlen(const char *s);
int us_streq(const char *a, const char *b);
int us_startswith(const char *s, const char *prefix);
/* Parses an unsigned number in base 10 or 16; advances *s. */
uint64_t us_parse_u(const char **s, int base);
void us_skip_spaces(const char **s);
/* Copies the next space-delimited token, percent-decoding it. Returns its length or -1. */
int us_next_token(const char **s, char *out, size_t cap);
#endif
