/*
 * Internet sockets (TCP, UDP; IPv4, IPv6) that carry no connection: a
 * listening TCP socket whose queue of connections not yet accepted is empty,
 * a TCP socket never connected, a UDP socket bound, connected, or neither.
 * All of it is read through a copy of the descriptor (pidfd_getfd):
 * family, type, addresses, the backlog (TCP_INFO), and every option of the
 * table in sys/inet.c whose value differs from a new socket's. An
 * established connection, a socket filter, another protocol (raw, SCTP,
 * MPTCP, UDP-Lite) are refused with their reason. Datagrams queued at a UDP
 * socket are not carried: a network may drop them as well. With
 * opts.tcp_established, an established connection is carried too, read in
 * repair mode behind a network lock (read_connection).
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sys/inet.h"
#include "sys/netlock.h"

static const char *const tcp_states[] = {
	[TCP_ESTABLISHED] = "established", [TCP_SYN_SENT] = "connecting", [TCP_SYN_RECV] = "half open",
	[TCP_FIN_WAIT1] = "closing", [TCP_FIN_WAIT2] = "closing", [TCP_TIME_WAIT] = "closed",
	[TCP_CLOSE] = "closed", [TCP_CLOSE_WAIT] = "closed by its peer", [TCP_LAST_ACK] = "closing",
	[TCP_LISTEN] = "listening", [TCP_CLOSING] = "closing",
};

static int get_int(int s, int level, int name, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(s, level, name, v, &l) < 0 ? -errno : 0;
}

/* addr and port of a sockaddr_in or sockaddr_in6. */
static void split(const struct sockaddr_storage *ss, const uint8_t **addr, size_t *len, uint32_t *port,
		  uint32_t *scope)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		*addr = a->sin6_addr.s6_addr, *len = 16, *port = ntohs(a->sin6_port), *scope = a->sin6_scope_id;
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		*addr = (const uint8_t *)&a->sin_addr, *len = 4, *port = ntohs(a->sin_port), *scope = 0;
	}
}

/* The options of the table that differ from a new socket's, into d. */
static int read_options(struct ckpt *c, int s, int family, int type, Roamimg__InetSock *d)
{
	int fresh = socket(family, type | SOCK_CLOEXEC, 0), rc = 0;

	if (fresh < 0)
		return roam_fail(c->err, -errno, "making a socket to compare options with");
	d->opts = arena_alloc(&c->arena, inet_nopts * sizeof(*d->opts));
	for (size_t i = 0; d->opts && i < inet_nopts; i++) {
		const struct inet_opt *o = &inet_opts[i];
		int v, v0;
		if ((o->family && o->family != family) || (o->type && o->type != type))
			continue;
		if (get_int(s, o->level, o->name, &v) < 0 || get_int(fresh, o->level, o->name, &v0) < 0 || v == v0)
			continue;
		Roamimg__SockOpt *so = ARENA_NEW(c, Roamimg__SockOpt, roamimg__sock_opt__init);
		if (!so)
			break;
		so->level = o->level, so->name = o->name, so->value = v;
		d->opts[d->n_opts++] = so;
	}
	if (!d->opts)
		rc = -ENOMEM;
	close(fresh);
	return rc;
}

/* The connection's packets dropped both ways while it has no socket, in
 * the process's network namespace. */
static int lock_connection(struct ckpt *c, const struct sockaddr_storage *me, const struct sockaddr_storage *peer)
{
	struct netlock_conn nc = { .family = me->ss_family }, *more;
	const uint8_t *a;
	size_t al;
	uint32_t scope;
	char why[256];
	int rc;

	split(me, &a, &al, &nc.lport, &scope);
	memcpy(nc.local, a, al);
	split(peer, &a, &al, &nc.pport, &scope);
	memcpy(nc.peer, a, al);
	if (!(more = realloc(c->locked, (c->nlocked + 1) * sizeof(*more))))
		return -ENOMEM;
	c->locked = more;
	if (!c->files->netlock)
		c->files->netlock = (char *)NETLOCK_TABLE;
	if ((rc = netlock_lock(c->pid, &nc, 1, why, sizeof(why))) < 0)
		return roam_fail(c->err, rc, "locking the TCP connection's packets out (nftables): %s", why);
	c->locked[c->nlocked++] = nc;
	return 0;
}

static int queue(struct ckpt *c, int s, int which, uint32_t *seq, size_t len, ProtobufCBinaryData *out, int *has)
{
	socklen_t l = sizeof(*seq);

	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, &which, sizeof(which)) < 0 ||
	    getsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &l) < 0)
		return -errno;
	if (!len)
		return 0;
	if (!(out->data = arena_alloc(&c->arena, len)))
		return -ENOMEM;
	ssize_t got = recv(s, out->data, len, MSG_PEEK | MSG_DONTWAIT);
	if (got != (ssize_t)len)
		return got < 0 ? -errno : -EPROTO;
	out->len = len;
	*has = 1;
	return 0;
}

/* An established connection, read in repair mode (TCP_REPAIR): its
 * sequence numbers, its queues, the options agreed, its window. The socket
 * stays in repair mode (our copy of it, s, is kept) until the process
 * resumes; killed, it closes without telling its peer. */
static int read_connection(struct ckpt *c, const struct fd_view *f, int s, const struct sockaddr_storage *me,
			   const struct sockaddr_storage *peer, Roamimg__InetSock *in)
{
	Roamimg__TcpConn *t = ARENA_NEW(c, Roamimg__TcpConn, roamimg__tcp_conn__init);
	int on = 1, rc, outq = 0, inq = 0, mss = 0, reuse = 0;
	struct repaired *more;
	uint32_t seq;
	struct tcp_info ti = { 0 };
	struct tcp_repair_window win = { 0 };
	socklen_t l;

	if (!t || !(more = realloc(c->repaired, (c->nrepaired + 1) * sizeof(*more))))
		return -ENOMEM;
	c->repaired = more;
	if ((rc = lock_connection(c, me, peer)) < 0)
		return rc;
	get_int(s, SOL_SOCKET, SO_REUSEADDR, &reuse);   /* leaving repair mode clears it */
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return roam_fail(c->err, errno == EPERM ? -ROAM_E_REFUSED : -errno, "TCP connection on fd %d: "
				 "TCP_REPAIR%s", f->fd, errno == EPERM ? " takes CAP_NET_ADMIN" : "");
	if ((c->repaired[c->nrepaired].fd = dup(s)) < 0)
		return -errno;
	c->repaired[c->nrepaired++].reuse = reuse;
	l = sizeof(ti);
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 || ti.tcpi_state != TCP_ESTABLISHED ||
	    (l = sizeof(win), getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &win, &l)) < 0 ||
	    ioctl(s, SIOCOUTQ, &outq) < 0 || ioctl(s, SIOCINQ, &inq) < 0 || outq < 0 || inq < 0 ||
	    (l = sizeof(mss), getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, &l)) < 0)
		return roam_fail(c->err, -errno ? -errno : -EPROTO, "reading the TCP connection on fd %d", f->fd);
	if ((rc = queue(c, s, TCP_SEND_QUEUE, &seq, (size_t)outq, &t->send_queue, &t->has_send_queue)) < 0)
		return roam_fail(c->err, rc, "reading the send queue of fd %d", f->fd);
	t->snd_seq = seq - (uint32_t)outq;
	if ((rc = queue(c, s, TCP_RECV_QUEUE, &seq, (size_t)inq, &t->recv_queue, &t->has_recv_queue)) < 0)
		return roam_fail(c->err, rc, "reading the receive queue of fd %d", f->fd);
	t->rcv_seq = seq - (uint32_t)inq;
	t->mss = (uint32_t)mss;
	t->has_sack = t->sack = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
	t->has_timestamps = t->timestamps = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		t->has_wscale = t->wscale = 1;
		t->has_snd_wscale = t->has_rcv_wscale = 1;
		t->snd_wscale = ti.tcpi_snd_wscale, t->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	l = sizeof(t->timestamp);
	if (t->timestamps && getsockopt(s, IPPROTO_TCP, TCP_TIMESTAMP, &t->timestamp, &l) == 0)
		t->has_timestamp = 1;
	t->snd_wl1 = win.snd_wl1, t->snd_wnd = win.snd_wnd, t->max_window = win.max_window;
	t->rcv_wnd = win.rcv_wnd, t->rcv_wup = win.rcv_wup;
	in->tcp = t;
	return 0;
}

void ckpt_inet_release(struct ckpt *c, int resumed)
{
	char why[256];

	for (size_t i = 0; i < c->nrepaired; i++) {
		/* Out of repair mode, a window probe tells the peer where we are;
		 * the kernel then forgets SO_REUSEADDR, which is set again. */
		int off = 0, fd = c->repaired[i].fd;
		if (resumed && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) == 0 && c->repaired[i].reuse)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &c->repaired[i].reuse, sizeof(int));
		close(fd);
	}
	free(c->repaired);
	c->repaired = NULL;
	c->nrepaired = 0;
	/* Killed, the connections stay locked for the restore. */
	if (resumed && c->nlocked)
		netlock_unlock(c->pid, c->locked, c->nlocked, why, sizeof(why));
	free(c->locked);
	c->locked = NULL;
	c->nlocked = 0;
}

/* What is wrong with the socket s (-ROAM_E_REFUSED with the reason), or
 * 0; with d, its state into d. */
static int read_socket(struct ckpt *c, const struct fd_view *f, int s, int family, Roamimg__Fd *d)
{
	struct sockaddr_storage me = { 0 }, peer = { 0 };
	socklen_t ml = sizeof(me), pl = sizeof(peer);
	int type, proto, filter = 0, rc;
	const uint8_t *a;
	size_t al;
	uint32_t port, scope;
	char where[80], there[80];
	struct tcp_info ti = { 0 };
	socklen_t tl = sizeof(ti);
	socklen_t fl = 0;

	if ((rc = get_int(s, SOL_SOCKET, SO_TYPE, &type)) < 0 || (rc = get_int(s, SOL_SOCKET, SO_PROTOCOL, &proto)) < 0 ||
	    getsockname(s, (struct sockaddr *)&me, &ml) < 0)
		return roam_fail(c->err, rc ? rc : -errno, "reading the socket on fd %d", f->fd);
	split(&me, &a, &al, &port, &scope);
	inet_addr_str(family, a, al, port, scope, where, sizeof(where));
	int connected = getpeername(s, (struct sockaddr *)&peer, &pl) == 0;
	if (!((type == SOCK_STREAM && proto == IPPROTO_TCP) || (type == SOCK_DGRAM && proto == IPPROTO_UDP)))
		return roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (%s, of protocol %d: only TCP and UDP are "
				 "carried)", f->fd, where, proto);
	/* With a NULL buffer the kernel tells the filter's length. */
	if (getsockopt(s, SOL_SOCKET, SO_GET_FILTER, NULL, &fl) == 0 && fl > 0)
		filter = 1;
	if (filter)
		return roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (%s) has a socket filter attached", f->fd,
				 where);
	if (type == SOCK_STREAM) {
		if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
			return roam_fail(c->err, -errno, "reading the TCP state of fd %d", f->fd);
		int carried = ti.tcpi_state == TCP_ESTABLISHED && c->opts.tcp_established && connected;
		if (ti.tcpi_state != TCP_LISTEN && ti.tcpi_state != TCP_CLOSE && !carried) {
			const char *st = ti.tcpi_state < sizeof(tcp_states) / sizeof(tcp_states[0]) && tcp_states[ti.tcpi_state]
						 ? tcp_states[ti.tcpi_state] : "in another state";
			const uint8_t *pa;
			size_t pal;
			uint32_t pp, ps;
			split(&peer, &pa, &pal, &pp, &ps);
			return roam_fail(c->err, -ROAM_E_REFUSED, "TCP connection on fd %d (%s, from %s to %s)%s", f->fd,
					 st, where,
					 connected ? inet_addr_str(family, pa, pal, pp, ps, there, sizeof(there)) : "?",
					 ti.tcpi_state == TCP_ESTABLISHED ? ": an established connection is carried only by "
					 "roam checkpoint --tcp-established, for a restore on this host" : "");
		}
		/* Of a listening socket, TCP_INFO tells the queue of connections
		 * not accepted yet and the backlog. Those connections would be
		 * lost: the program has not seen them. */
		if (ti.tcpi_state == TCP_LISTEN && ti.tcpi_unacked)
			return roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (listening on %s): connections "
					 "waiting to be accepted: %u", f->fd, where, ti.tcpi_unacked);
	}
	if (!d)
		return 0;
	Roamimg__InetSock *in = ARENA_NEW(c, Roamimg__InetSock, roamimg__inet_sock__init);
	if (!in || !(in->addr.data = arena_memdup(&c->arena, a, al)))
		return -ENOMEM;
	in->family = (uint32_t)family;
	in->type = (uint32_t)type;
	in->addr.len = al;
	in->port = port;
	in->has_scope_id = scope != 0, in->scope_id = scope;
	if (type == SOCK_STREAM && ti.tcpi_state == TCP_LISTEN)
		in->has_backlog = 1, in->backlog = ti.tcpi_sacked;
	if (connected && (type == SOCK_DGRAM || ti.tcpi_state == TCP_ESTABLISHED)) {
		const uint8_t *pa;
		size_t pal;
		uint32_t pp, ps;
		split(&peer, &pa, &pal, &pp, &ps);
		if (!(in->peer_addr.data = arena_memdup(&c->arena, pa, pal)))
			return -ENOMEM;
		in->has_peer_addr = in->has_peer_port = 1;
		in->peer_addr.len = pal, in->peer_port = pp;
		in->has_peer_scope_id = ps != 0, in->peer_scope_id = ps;
	}
	d->inet = in;
	if ((rc = read_options(c, s, family, type, in)) < 0)
		return rc;
	return type == SOCK_STREAM && ti.tcpi_state == TCP_ESTABLISHED ? read_connection(c, f, s, &me, &peer, in) : 0;
}

int ckpt_inet_read(struct ckpt *c, const struct fd_view *f, Roamimg__Fd *d)
{
	int s = ckpt_copy_fd(c, f->fd), family, rc;

	if (s < 0)
		return roam_fail(c->err, s, "copying the socket on fd %d", f->fd);
	if ((rc = get_int(s, SOL_SOCKET, SO_DOMAIN, &family)) < 0)
		rc = roam_fail(c->err, rc, "reading the socket on fd %d", f->fd);
	else if (family != AF_INET && family != AF_INET6)
		rc = 1;
	else
		rc = read_socket(c, f, s, family, d);
	close(s);
	return rc;
}
