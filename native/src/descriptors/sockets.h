/* What sockets.c and tcp.c share. */
#ifndef US_FD_SOCKETS_H
#define US_FD_SOCKETS_H

#include "kinds.h"

#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP -1         /* leave repair mode without a window probe */
#endif

#ifdef US_FD_CAPTURE
/* A socket's peek offset, SO_PASSCRED and repair mode belong to the socket, not
 * to the descriptor: two processes holding it (fork) must not capture it at the
 * same time. Takes the socket's capture lock: a descriptor to close to release it,
 * or -1 (the capture failed). */
int socket_capture_lock(struct scratch *s, uint64_t ino);
/* An int socket option (getsockopt), 0 if it cannot be read. */
int socket_int(int fd, int level, int name);
/* A connected TCP socket's state and queues, taken in repair mode, as the data of
 * its record (struct us_tcp_conn, then the queues); nothing for a connection that
 * cannot be repaired. */
void tcp_capture_connection(struct us_fd_capture *c);
#endif

#ifdef US_FD_RESTORE
/* A connected TCP record's object: the connection with its peer when that is in
 * the group too, made with TCP repair; otherwise a dropped connection. */
int tcp_share_connection(const struct us_rec_fd *f);
/* A connection that cannot follow the process: one end of a Unix socket pair
 * holding the bytes that were queued for reading, whose other end is closed
 * (reads end after the data, writes fail with EPIPE). */
int share_dropped_connection(const struct us_rec_fd *f, const char *queued, uint32_t len);
/* The killed processes' TCP sockets may still hold their ports: connections in
 * TIME_WAIT, or closing with data unsent, that belong to no process any more
 * (accepted by a listener without SO_REUSEADDR, they keep it from binding again).
 * Ends those on a local port, as `ss -K` does (sock_diag SOCK_DESTROY); how many. */
int end_orphans(int family, unsigned port);
#endif

#endif
