/* One line per event, to UNDERSTUDY_LOG; never to the application's stdout or stderr.
 * Opens and closes per line so no descriptor lingers in the application. */
#include <fcntl.h>
#include <time.h>
#include "internal.h"
#include "../common/us_fmt.h"

void us_log(const char *event, const char *detail)
{
	char line[512];
	struct us_buf b = { line, 0, sizeof line };
	struct timespec ts;

	if (!us.log_path[0])
		return;
	us_sc2(SYS_clock_gettime, CLOCK_REALTIME, &ts);
	us_putu(&b, (uint64_t)ts.tv_sec);
	us_putc(&b, '.');
	uint64_t ms = (uint64_t)ts.tv_nsec / 1000000;
	us_putc(&b, (char)('0' + ms / 100));
	us_putc(&b, (char)('0' + ms / 10 % 10));
	us_putc(&b, (char)('0' + ms % 10));
	us_put(&b, " group=");
	us_put_token(&b, us.group);
	us_put(&b, " app=");
	us_put_token(&b, us.app);
	us_put(&b, " pid=");
	us_puti(&b, us.vpid);
	us_put(&b, " event=");
	us_put(&b, event);
	if (detail && *detail) {
		us_putc(&b, ' ');
		us_put(&b, detail);
	}
	if (b.len >= sizeof line - 1)
		b.len = sizeof line - 2;
	line[b.len++] = '\n';
	int fd = (int)us_sc4(SYS_openat, AT_FDCWD, us.log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		us_sc3(SYS_write, fd, line, b.len);
		us_sc1(SYS_close, fd);
	}
}
