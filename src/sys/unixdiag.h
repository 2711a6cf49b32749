/*
 * What the kernel tells of one AF_UNIX socket through sock_diag: its type
 * and state, its peer, whether it has a name, what waits in its receive
 * queue and how it was shut down. /proc shows none of this; checkpoint needs
 * the peer to tell a socket pair held by one process from a connection to
 * the outside.
 */
#ifndef ROAM_SYS_UNIXDIAG_H
#define ROAM_SYS_UNIXDIAG_H

#include <stdint.h>

struct unix_sock_info {
	int type;               /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	int state;              /* TCP_ESTABLISHED (connected), TCP_LISTEN, TCP_CLOSE */
	uint64_t peer;          /* the peer's inode, 0 if none */
	int named;              /* bound to a path or an abstract name */
	uint32_t rqueue;        /* bytes (stream) or datagrams queued to be read */
	int shutdown;           /* the socket's own shutdown bits (RCV 1, SEND 2) */
};

/* The socket with inode ino in the caller's network namespace: 0, or
 * -ENOENT when there is none there, or another -errno. */
int unix_sock_query(uint64_t ino, struct unix_sock_info *out);

#endif
