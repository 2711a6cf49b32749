/*
 * inet: TCP and UDP sockets that carry no connection, each checked through
 * the kernel's view of it (addresses, options, backlog), and at the end put
 * to use:
 *   l4  TCP listening on 127.0.0.1 (port the kernel's pick), SO_REUSEADDR,
 *       TCP_NODELAY, backlog 7
 *   l6  TCP listening on ::1, IPV6_V6ONLY, TCP_DEFER_ACCEPT
 *   lw  TCP listening on every address (0.0.0.0), non-blocking, SO_KEEPALIVE
 *       with TCP_KEEPIDLE 77
 *   u   UDP bound to 127.0.0.1, IP_PKTINFO
 *   uc  UDP connected to u (so bound by the kernel)
 *   t   TCP never bound or connected, SO_KEEPALIVE
 * While running it only looks (a connection made at the wrong instant would
 * be one checkpoint refuses); once stopped it connects to each listener,
 * accepts, and trades bytes both ways, and sends a datagram from uc to u
 * and back. Sabotage turns l4's TCP_NODELAY off. With -t N, N threads sleep
 * beside it.
 */
#include "subject.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

struct sock {
	const char *name;
	int fd;
	struct sockaddr_storage addr;   /* getsockname at start */
	socklen_t len;
	int listening;
	struct { int level, name, value; } opts[3];
};

static struct sock l4 = { .name = "l4" }, l6 = { .name = "l6" }, lw = { .name = "lw" }, u = { .name = "u" },
		   uc = { .name = "uc" }, t = { .name = "t" };
static struct sock *all[] = { &l4, &l6, &lw, &u, &uc, &t };

static int get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	SUBJ_SYS(getsockopt(fd, level, name, &v, &l));
	return v;
}

/* Sets the option and records what the kernel then reports (it may round). */
static void set_opt(struct sock *s, int level, int name, int v)
{
	size_t k = 0;

	SUBJ_SYS(setsockopt(s->fd, level, name, &v, sizeof(v)));
	while (s->opts[k].level || s->opts[k].name)
		k++;
	s->opts[k].level = level, s->opts[k].name = name, s->opts[k].value = get_int(s->fd, level, name);
}

static void make(struct sock *s, int family, int type, const char *addr)
{
	s->fd = socket(family, type | SOCK_CLOEXEC, 0);
	SUBJ_SYS(s->fd);
	if (!addr)
		return;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		SUBJ_CHECK(inet_pton(AF_INET6, addr, &a->sin6_addr) == 1, "bad address %s", addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		SUBJ_CHECK(inet_pton(AF_INET, addr, &a->sin_addr) == 1, "bad address %s", addr);
		len = sizeof(*a);
	}
	if (s == &l6)   /* before the bind, which it affects */
		set_opt(s, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (s == &l4)
		set_opt(s, SOL_SOCKET, SO_REUSEADDR, 1);
	SUBJ_SYS(bind(s->fd, (struct sockaddr *)&ss, len));
}

static void record(struct sock *s)
{
	s->len = sizeof(s->addr);
	SUBJ_SYS(getsockname(s->fd, (struct sockaddr *)&s->addr, &s->len));
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
					 : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void verify(void)
{
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct sock *s = all[i];
		struct sockaddr_storage now = { 0 };
		socklen_t len = sizeof(now);
		SUBJ_SYS(getsockname(s->fd, (struct sockaddr *)&now, &len));
		SUBJ_CHECK(len == s->len && !memcmp(&now, &s->addr, len), "%s: bound to port %u, not %u", s->name,
			   port_of(&now), port_of(&s->addr));
		SUBJ_CHECK(get_int(s->fd, SOL_SOCKET, SO_ACCEPTCONN) == s->listening, "%s: %slistening", s->name,
			   s->listening ? "not " : "");
		for (size_t k = 0; k < 3 && (s->opts[k].level || s->opts[k].name); k++) {
			int v = get_int(s->fd, s->opts[k].level, s->opts[k].name);
			SUBJ_CHECK(v == s->opts[k].value, "%s: option %d:%d is %d, not %d", s->name, s->opts[k].level,
				   s->opts[k].name, v, s->opts[k].value);
		}
	}
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	SUBJ_SYS(getsockopt(l4.fd, IPPROTO_TCP, TCP_INFO, &ti, &tl));
	SUBJ_CHECK(ti.tcpi_sacked == 7, "l4: backlog %u, not 7", ti.tcpi_sacked);
	SUBJ_CHECK(fcntl(lw.fd, F_GETFL) & O_NONBLOCK, "lw: blocking");
	SUBJ_CHECK(!(fcntl(l4.fd, F_GETFL) & O_NONBLOCK), "l4: non-blocking");
	struct sockaddr_storage peer = { 0 };
	socklen_t pl = sizeof(peer);
	SUBJ_SYS(getpeername(uc.fd, (struct sockaddr *)&peer, &pl));
	SUBJ_CHECK(pl == u.len && !memcmp(&peer, &u.addr, pl), "uc: connected to port %u, not u's %u", port_of(&peer),
		   port_of(&u.addr));
	SUBJ_CHECK(port_of(&t.addr) == 0 && getpeername(t.fd, (struct sockaddr *)&peer, &pl) < 0, "t: bound or connected");
}

static void sabotage(void)
{
	int off = 0;

	SUBJ_SYS(setsockopt(l4.fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off)));
}

static void wait_readable(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	SUBJ_CHECK(poll(&p, 1, 10000) == 1, "%s: nothing in 10 s", what);
}

/* A connection to listener s (through to, when s listens on every
 * address), accepted, and bytes both ways. */
static void use_listener(struct sock *s, const char *to)
{
	struct sockaddr_storage ss = s->addr;
	char buf[16];
	int c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), a;

	SUBJ_SYS(c);
	if (to)
		SUBJ_CHECK(inet_pton(AF_INET, to, &((struct sockaddr_in *)&ss)->sin_addr) == 1, "bad address");
	SUBJ_SYS(connect(c, (struct sockaddr *)&ss, s->len));
	SUBJ_CHECK(write(c, "ping", 4) == 4, "%s: write", s->name);   /* TCP_DEFER_ACCEPT waits for it */
	wait_readable(s->fd, s->name);
	a = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
	SUBJ_SYS(a);
	SUBJ_CHECK(read(a, buf, sizeof(buf)) == 4 && !memcmp(buf, "ping", 4), "%s: accepted no ping", s->name);
	SUBJ_CHECK(write(a, "pong", 4) == 4, "%s: write back", s->name);
	SUBJ_CHECK(read(c, buf, sizeof(buf)) == 4 && !memcmp(buf, "pong", 4), "%s: no pong", s->name);
	close(a);
	close(c);
}

static void use_udp(void)
{
	struct sockaddr_storage from = { 0 };
	socklen_t fl = sizeof(from);
	char buf[16];

	SUBJ_CHECK(send(uc.fd, "hello", 5, 0) == 5, "uc: send");
	wait_readable(u.fd, "u");
	SUBJ_CHECK(recvfrom(u.fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) == 5 && !memcmp(buf, "hello", 5),
		   "u: no hello");
	SUBJ_CHECK(fl == uc.len && !memcmp(&from, &uc.addr, fl), "u: hello from port %u, not uc's %u", port_of(&from),
		   port_of(&uc.addr));
	SUBJ_CHECK(sendto(u.fd, "back", 4, 0, (struct sockaddr *)&from, fl) == 4, "u: sendto");
	wait_readable(uc.fd, "uc");
	SUBJ_CHECK(recv(uc.fd, buf, sizeof(buf), 0) == 4 && !memcmp(buf, "back", 4), "uc: no reply");
}

int main(int argc, char **argv)
{
	subj_init(argc, argv, "inet");
	make(&l4, AF_INET, SOCK_STREAM, "127.0.0.1");
	set_opt(&l4, IPPROTO_TCP, TCP_NODELAY, 1);
	SUBJ_SYS(listen(l4.fd, 7));
	make(&l6, AF_INET6, SOCK_STREAM, "::1");
	set_opt(&l6, IPPROTO_TCP, TCP_DEFER_ACCEPT, 3);
	SUBJ_SYS(listen(l6.fd, 16));
	make(&lw, AF_INET, SOCK_STREAM, "0.0.0.0");
	set_opt(&lw, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_opt(&lw, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	SUBJ_SYS(listen(lw.fd, 5));
	SUBJ_SYS(fcntl(lw.fd, F_SETFL, O_NONBLOCK));
	make(&u, AF_INET, SOCK_DGRAM, "127.0.0.1");
	set_opt(&u, IPPROTO_IP, IP_PKTINFO, 1);
	make(&uc, AF_INET, SOCK_DGRAM, NULL);
	make(&t, AF_INET, SOCK_STREAM, NULL);
	set_opt(&t, SOL_SOCKET, SO_KEEPALIVE, 1);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		record(all[i]);
	SUBJ_SYS(connect(uc.fd, (struct sockaddr *)&u.addr, u.len));
	record(&uc);
	l4.listening = l6.listening = lw.listening = 1;
	subj_log("inet: l4 port %u, l6 port %u, lw port %u, u port %u\n", port_of(&l4.addr), port_of(&l6.addr),
		 port_of(&lw.addr), port_of(&u.addr));
	subj_run_threaded(subj_idle_worker, verify, sabotage, &subj_idle_stop);
	use_listener(&l4, NULL);
	use_listener(&l6, NULL);
	use_listener(&lw, "127.0.0.1");
	use_udp();
	verify();
	subj_pass();
}
