/*
 * See inet.h. The option table is the one list of what a socket carries
 * besides its addresses: checkpoint reads each (and keeps what differs from
 * a new socket's), restore sets only what it names.
 */
#include "sys/inet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OPT(level, name, family, type) { level, name, #name, family, type }

/* Options a program sets on a server's or a client's socket, that take an
 * int and need no privilege. Not here: buffer sizes (setting one turns the
 * kernel's tuning of it off, and a new socket's cannot be told from a set
 * one), filters and marks. */
const struct inet_opt inet_opts[] = {
	OPT(SOL_SOCKET, SO_REUSEADDR, 0, 0),
	OPT(SOL_SOCKET, SO_REUSEPORT, 0, 0),
	OPT(SOL_SOCKET, SO_KEEPALIVE, 0, 0),
	OPT(SOL_SOCKET, SO_BROADCAST, 0, 0),
	OPT(SOL_SOCKET, SO_OOBINLINE, 0, 0),
	OPT(SOL_SOCKET, SO_PRIORITY, 0, 0),
	OPT(SOL_SOCKET, SO_RCVLOWAT, 0, 0),
	OPT(SOL_SOCKET, SO_TIMESTAMP, 0, 0),
	OPT(SOL_SOCKET, SO_PASSCRED, 0, 0),
	OPT(IPPROTO_TCP, TCP_NODELAY, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_KEEPIDLE, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_KEEPINTVL, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_KEEPCNT, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_USER_TIMEOUT, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0, SOCK_STREAM),
	OPT(IPPROTO_TCP, TCP_FASTOPEN, 0, SOCK_STREAM),
	OPT(IPPROTO_IP, IP_TOS, AF_INET, 0),
	OPT(IPPROTO_IP, IP_TTL, AF_INET, 0),
	OPT(IPPROTO_IP, IP_FREEBIND, AF_INET, 0),
	OPT(IPPROTO_IP, IP_PKTINFO, AF_INET, SOCK_DGRAM),
	OPT(IPPROTO_IP, IP_RECVERR, AF_INET, 0),
	OPT(IPPROTO_IP, IP_RECVTOS, AF_INET, 0),
	OPT(IPPROTO_IP, IP_MULTICAST_TTL, AF_INET, SOCK_DGRAM),
	OPT(IPPROTO_IP, IP_MULTICAST_LOOP, AF_INET, SOCK_DGRAM),
	OPT(IPPROTO_IPV6, IPV6_V6ONLY, AF_INET6, 0),
	OPT(IPPROTO_IPV6, IPV6_UNICAST_HOPS, AF_INET6, 0),
	OPT(IPPROTO_IPV6, IPV6_TCLASS, AF_INET6, 0),
	OPT(IPPROTO_IPV6, IPV6_RECVPKTINFO, AF_INET6, SOCK_DGRAM),
	OPT(IPPROTO_IPV6, IPV6_RECVERR, AF_INET6, 0),
	OPT(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, AF_INET6, SOCK_DGRAM),
	OPT(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, AF_INET6, SOCK_DGRAM),
};
const size_t inet_nopts = sizeof(inet_opts) / sizeof(inet_opts[0]);

const struct inet_opt *inet_opt_find(int level, int name)
{
	for (size_t i = 0; i < inet_nopts; i++)
		if (inet_opts[i].level == level && inet_opts[i].name == name)
			return &inet_opts[i];
	return NULL;
}

const char *inet_addr_str(int family, const uint8_t *addr, size_t len, uint32_t port, uint32_t scope_id,
			  char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if ((family == AF_INET && len == 4) || (family == AF_INET6 && len == 16))
		inet_ntop(family, addr, a, sizeof(a));
	if (family == AF_INET6 && scope_id)
		snprintf(buf, cap, "[%s%%%u]:%u", a, scope_id, port);
	else if (family == AF_INET6)
		snprintf(buf, cap, "[%s]:%u", a, port);
	else
		snprintf(buf, cap, "%s:%u", a, port);
	return buf;
}

socklen_t inet_sockaddr(int family, const uint8_t *addr, uint32_t port, uint32_t scope_id,
			struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_scope_id = scope_id;
		memcpy(&a->sin6_addr, addr, sizeof(a->sin6_addr));
		return sizeof(*a);
	}
	struct sockaddr_in *a = (struct sockaddr_in *)out;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	memcpy(&a->sin_addr, addr, sizeof(a->sin_addr));
	return sizeof(*a);
}

/* Hex words as the kernel prints an address: each 32-bit word in host
 * order, so its bytes in memory are the address's. */
static int parse_addr(const char *hex, size_t words, uint8_t *addr)
{
	for (size_t w = 0; w < words; w++) {
		char part[9];
		char *end;
		memcpy(part, hex + 8 * w, 8);
		part[8] = 0;
		uint32_t v = (uint32_t)strtoul(part, &end, 16);
		if (*end)
			return -EINVAL;
		memcpy(addr + 4 * w, &v, 4);
	}
	return 0;
}

int inet_parse_line(const char *line, int family, int type, struct inet_entry *out)
{
	char local[40], remote[40];
	unsigned state;
	unsigned long long ino;
	size_t words = family == AF_INET6 ? 4 : 1;
	int n = -1;

	memset(out, 0, sizeof(*out));
	/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
	if (sscanf(line, " %*u: %39[0-9A-Fa-f:] %39[0-9A-Fa-f:] %x %*x:%*x %*x:%*x %*x %*u %*u %llu%n", local, remote,
		   &state, &ino, &n) != 4 || n < 0)
		return -EINVAL;
	char *colon = strchr(local, ':');
	if (!colon || (size_t)(colon - local) != 8 * words || strlen(colon + 1) != 4)
		return -EINVAL;
	*colon = 0;
	if (parse_addr(local, words, out->addr) < 0)
		return -EINVAL;
	out->port = (uint32_t)strtoul(colon + 1, NULL, 16);
	out->family = family;
	out->type = type;
	out->state = (int)state;
	out->ino = ino;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int inet_sockets_of(int pid, const uint64_t *inos, size_t n, struct inet_entry **out, size_t *nout)
{
	static const struct {
		const char *name;
		int family, type;
	} tables[] = {
		{ "tcp", AF_INET, SOCK_STREAM }, { "tcp6", AF_INET6, SOCK_STREAM },
		{ "udp", AF_INET, SOCK_DGRAM }, { "udp6", AF_INET6, SOCK_DGRAM },
	};
	uint64_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
	struct inet_entry *v = calloc(n ? n : 1, sizeof(*v));
	size_t k = 0;
	int rc = sorted && v ? 0 : -ENOMEM;

	if (rc == 0 && n) {
		memcpy(sorted, inos, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_u64);
	}
	for (size_t t = 0; rc == 0 && n && t < sizeof(tables) / sizeof(tables[0]); t++) {
		char path[64], line[512];
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, tables[t].name);
		if (!(f = fopen(path, "re")))
			continue;   /* IPv6 off: no tcp6 */
		while (k < n && fgets(line, sizeof(line), f)) {
			struct inet_entry e;
			if (inet_parse_line(line, tables[t].family, tables[t].type, &e) == 0 && e.ino &&
			    bsearch(&e.ino, sorted, n, sizeof(*sorted), cmp_u64))
				v[k++] = e;
		}
		fclose(f);
	}
	free(sorted);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = k;
	return 0;
}
