/*
 * Internet sockets (TCP and UDP over IPv4 and IPv6) as roam carries them:
 * the socket options it reads and sets again, an address's printed form,
 * and the sockets a process holds as /proc/PID/net/{tcp,udp}[6] list them
 * (what roamd tells a migration's destination to try binding).
 */
#ifndef ROAM_SYS_INET_H
#define ROAM_SYS_INET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One option of the table: set again at restore only if it is in it. */
struct inet_opt {
	int level, name;
	const char *label;      /* "SO_REUSEADDR" */
	int family;             /* 0: any; else AF_INET or AF_INET6 only */
	int type;               /* 0: any; else SOCK_STREAM or SOCK_DGRAM only */
};
extern const struct inet_opt inet_opts[];
extern const size_t inet_nopts;

/* The table's entry for (level, name), or NULL when roam does not carry it. */
const struct inet_opt *inet_opt_find(int level, int name);

/* "127.0.0.1:8000", "[::1]:8000", "[fe80::1%2]:53" into buf; addr is 4
 * (AF_INET) or 16 (AF_INET6) bytes, anything else prints as "?". */
const char *inet_addr_str(int family, const uint8_t *addr, size_t len, uint32_t port, uint32_t scope_id,
			  char *buf, size_t cap);

/* addr (4 bytes for AF_INET, 16 for AF_INET6) and port as a sockaddr_in
 * or sockaddr_in6 in *out; its length. */
socklen_t inet_sockaddr(int family, const uint8_t *addr, uint32_t port, uint32_t scope_id,
			struct sockaddr_storage *out);

/* A socket a process holds, as /proc/PID/net lists it. */
struct inet_entry {
	uint64_t ino;
	int family;             /* AF_INET, AF_INET6 */
	int type;               /* SOCK_STREAM (tcp), SOCK_DGRAM (udp) */
	int state;              /* TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE... */
	uint8_t addr[16];       /* the local address, 4 or 16 bytes used */
	uint32_t port;
};

/* One line of /proc/net/{tcp,tcp6,udp,udp6} (the header line is not
 * one): 0, or -EINVAL. */
int inet_parse_line(const char *line, int family, int type, struct inet_entry *out);

/* The entries of the sockets with the inodes in inos (n of them) in pid's
 * network namespace: *out (malloc'ed, freed by the caller), *nout of them;
 * 0 or -errno. A socket of another family is not among them. */
int inet_sockets_of(int pid, const uint64_t *inos, size_t n, struct inet_entry **out, size_t *nout);

#endif
