/*
 * tcp: established TCP connections, both ends in the process (carried with
 * roam checkpoint --tcp-established):
 *   a  over 127.0.0.1, accepted from listener l (still listening, on the
 *      port the accepted end shares; SO_REUSEADDR, which the accepted end
 *      inherits): c has sent 20000 bytes that s has not read, s 3000 that c
 *      has not read; TCP_NODELAY on c
 *   b  over ::1, idle, SO_KEEPALIVE on its accepted end
 * While running it only looks: the bytes still queued at each end
 * (SIOCINQ), each end's addresses. Once stopped it reads the queued bytes
 * (checking their pattern), then trades 200000 more each way on a, a line
 * on b, and takes one more connection on l. Sabotage reads a byte of a's
 * queue. With -t N, N threads sleep beside it. It prints its listeners'
 * ports ("tcp: ports A B"), which the accepted ends share.
 */
#include "subject.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define A_TO_S 20000
#define A_TO_C 3000

struct end {
	int fd;
	struct sockaddr_storage me, peer;
	socklen_t len;
};
static int l4, l6;
static struct end ac, as, bc, bs;
static struct sockaddr_storage l4addr;
static socklen_t l4len;

static void record(struct end *e)
{
	socklen_t pl = sizeof(e->peer);

	e->len = sizeof(e->me);
	SUBJ_SYS(getsockname(e->fd, (struct sockaddr *)&e->me, &e->len));
	SUBJ_SYS(getpeername(e->fd, (struct sockaddr *)&e->peer, &pl));
}

static int listener(int family, const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	SUBJ_SYS(l);
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET6)
		SUBJ_CHECK(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1, "address");
	else
		SUBJ_CHECK(inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr) == 1, "address");
	*len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	SUBJ_SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)));  /* the accepted end inherits it */
	SUBJ_SYS(bind(l, (struct sockaddr *)ss, *len));
	SUBJ_SYS(listen(l, 4));
	SUBJ_SYS(getsockname(l, (struct sockaddr *)ss, len));
	return l;
}

static void connect_pair(int l, const struct sockaddr_storage *ss, socklen_t len, struct end *c, struct end *s)
{
	c->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SUBJ_SYS(c->fd);
	SUBJ_SYS(connect(c->fd, (const struct sockaddr *)ss, len));
	s->fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	SUBJ_SYS(s->fd);
	record(c);
	record(s);
}

static int queued(int fd)
{
	int n = -1;

	SUBJ_SYS(ioctl(fd, SIOCINQ, &n));
	return n;
}

static void send_all(int fd, uint64_t seed, size_t len)
{
	static uint8_t buf[A_TO_S];

	SUBJ_CHECK(len <= sizeof(buf), "too long");
	subj_fill(buf, len, seed);
	SUBJ_CHECK(write(fd, buf, len) == (ssize_t)len, "write: %s", strerror(errno));
}

static void read_check(int fd, uint64_t seed, size_t len, const char *what)
{
	static uint8_t want[A_TO_S], got[A_TO_S];
	size_t have = 0;

	subj_fill(want, len, seed);
	while (have < len) {
		ssize_t r = read(fd, got + have, len - have);
		SUBJ_CHECK(r > 0, "%s: read after %zu of %zu bytes: %s", what, have, len, r ? strerror(errno) : "end");
		have += (size_t)r;
	}
	SUBJ_CHECK(!memcmp(got, want, len), "%s: the bytes read differ from those sent", what);
}

static void same_ends(const struct end *e, const char *what)
{
	struct sockaddr_storage me = { 0 }, peer = { 0 };
	socklen_t ml = sizeof(me), pl = sizeof(peer);

	SUBJ_SYS(getsockname(e->fd, (struct sockaddr *)&me, &ml));
	SUBJ_CHECK(getpeername(e->fd, (struct sockaddr *)&peer, &pl) == 0, "%s: not connected: %s", what,
		   strerror(errno));
	SUBJ_CHECK(ml == e->len && !memcmp(&me, &e->me, ml) && !memcmp(&peer, &e->peer, pl),
		   "%s: its addresses changed", what);
}

static void verify(void)
{
	int v = 0;
	socklen_t l = sizeof(v);

	SUBJ_CHECK(queued(as.fd) == A_TO_S, "a: %d bytes queued at the accepted end, not %d", queued(as.fd), A_TO_S);
	SUBJ_CHECK(queued(ac.fd) == A_TO_C, "a: %d bytes queued at the client end, not %d", queued(ac.fd), A_TO_C);
	SUBJ_CHECK(queued(bs.fd) == 0 && queued(bc.fd) == 0, "b: bytes queued");
	same_ends(&ac, "a client"), same_ends(&as, "a accepted"), same_ends(&bc, "b client"), same_ends(&bs, "b accepted");
	SUBJ_SYS(getsockopt(ac.fd, IPPROTO_TCP, TCP_NODELAY, &v, &l));
	SUBJ_CHECK(v == 1, "a: TCP_NODELAY off");
	SUBJ_SYS(getsockopt(bs.fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l));
	SUBJ_CHECK(v == 1, "b: SO_KEEPALIVE off");
	SUBJ_SYS(getsockopt(as.fd, SOL_SOCKET, SO_REUSEADDR, &v, &l));
	SUBJ_CHECK(v == 1, "a: the accepted end's SO_REUSEADDR (its listener's) is off");
}

static void sabotage(void)
{
	char b;

	SUBJ_CHECK(read(as.fd, &b, 1) == 1, "sabotage read");
}

/* len bytes each way at once, in pieces, neither side blocking the other. */
static void trade(int x, int y, size_t len)
{
	static uint8_t out[8192], in[8192];
	size_t sent[2] = { 0, 0 }, got[2] = { 0, 0 };
	int fds[2] = { x, y };

	for (int k = 0; k < 2; k++)
		SUBJ_SYS(fcntl(fds[k], F_SETFL, O_NONBLOCK));
	memset(out, 0x5a, sizeof(out));
	while (got[0] < len || got[1] < len) {
		struct pollfd p[2] = { { .fd = x, .events = POLLIN | (sent[0] < len ? POLLOUT : 0) },
				       { .fd = y, .events = POLLIN | (sent[1] < len ? POLLOUT : 0) } };
		SUBJ_CHECK(poll(p, 2, 10000) > 0, "trade: stuck after %zu/%zu bytes in, %zu/%zu out", got[0], got[1],
			   sent[0], sent[1]);
		for (int k = 0; k < 2; k++) {
			if ((p[k].revents & POLLOUT) && sent[k] < len) {
				size_t n = len - sent[k] < sizeof(out) ? len - sent[k] : sizeof(out);
				ssize_t w = write(fds[k], out, n);
				if (w > 0)
					sent[k] += (size_t)w;
			}
			if (p[k].revents & POLLIN) {
				ssize_t r = read(fds[k], in, sizeof(in));
				SUBJ_CHECK(r > 0 || (r < 0 && errno == EAGAIN), "trade: read %zd: %s", r, strerror(errno));
				for (ssize_t i = 0; i < r; i++)
					SUBJ_CHECK(in[i] == 0x5a, "trade: a byte differs");
				if (r > 0)
					got[k] += (size_t)r;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	subj_init(argc, argv, "tcp");
	l4 = listener(AF_INET, "127.0.0.1", &l4addr, &l4len);
	connect_pair(l4, &l4addr, l4len, &ac, &as);
	SUBJ_SYS(setsockopt(ac.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	l6 = listener(AF_INET6, "::1", &ss, &len);
	connect_pair(l6, &ss, len, &bc, &bs);
	close(l6);
	SUBJ_SYS(setsockopt(bs.fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)));
	send_all(ac.fd, 1, A_TO_S);
	send_all(as.fd, 2, A_TO_C);
	for (int i = 0; i < 200 && (queued(as.fd) < A_TO_S || queued(ac.fd) < A_TO_C); i++)
		subj_sleep_ms(10);
	subj_log("tcp: ports %u %u\n", ntohs(((struct sockaddr_in *)&l4addr)->sin_port),
		 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	subj_run_threaded(subj_idle_worker, verify, sabotage, &subj_idle_stop);
	read_check(as.fd, 1, A_TO_S, "a accepted");
	read_check(ac.fd, 2, A_TO_C, "a client");
	trade(ac.fd, as.fd, 200000);
	SUBJ_CHECK(write(bc.fd, "line\n", 5) == 5, "b: write");
	char b[8];
	SUBJ_CHECK(read(bs.fd, b, sizeof(b)) == 5 && !memcmp(b, "line\n", 5), "b: no line");
	struct end more, moreacc;
	connect_pair(l4, &l4addr, l4len, &more, &moreacc);
	subj_pass();
}
