/*
 * Connections: the control clients and the peer links, non-blocking, each
 * with an input and an output queue. Peer links run the handshake of
 * net/link.h first; nothing of a peer is believed before its proof checks.
 * A connection is killed (logged once, with the reason) on the first bad
 * byte: a frame that does not parse, a record that does not open.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define HANDSHAKE_MS   5000
#define READ_BUDGET    (1u << 20)     /* bytes read per event, for fairness */
#define LOW_WATER      (256u << 10)   /* resume throttled jobs below this */

static void conn_event(struct ev *ev, uint32_t events);

/* Some connection has frames waiting for conn_flush_due. */
static bool flush_pending;

static struct conn *conn_of(struct ev *ev)
{
	return (struct conn *)((char *)ev - offsetof(struct conn, ev));
}

struct conn *conn_new(int fd, enum conn_kind kind, const char *desc)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ev.fd = fd;
	c->ev.fn = conn_event;
	c->kind = kind;
	snprintf(c->peer_desc, sizeof(c->peer_desc), "%s", desc);
	switch (kind) {
	case CONN_CONTROL:
		c->state = CS_OPEN;
		c->epoll_events = EPOLLIN;
		break;
	case CONN_PEER_IN:
		c->state = CS_HELLO;
		c->epoll_events = EPOLLIN;
		link_init(&c->link, LINK_SERVER, roamd->key);
		c->deadline_ms = mono_ms() + HANDSHAKE_MS;
		break;
	case CONN_PEER_OUT:
		c->state = CS_CONNECTING;
		c->epoll_events = EPOLLOUT;
		c->deadline_ms = mono_ms() + HANDSHAKE_MS;
		break;
	}
	if (loop_add(&c->ev, c->epoll_events) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = roamd->conns;
	roamd->conns = c;
	return c;
}

size_t conn_pending(const struct conn *c)
{
	return buf_used(&c->out);
}

static void want(struct conn *c, uint32_t events)
{
	if (c->rx_paused)
		events &= ~(uint32_t)EPOLLIN;
	if (c->dead || c->epoll_events == events)
		return;
	c->epoll_events = events;
	loop_mod(&c->ev, events);
}

void conn_pause_rx(struct conn *c, bool pause)
{
	if (c->rx_paused == pause)
		return;
	c->rx_paused = pause;
	if (c->state == CS_OPEN)
		want(c, buf_used(&c->out) ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void flush(struct conn *c)
{
	while (buf_used(&c->out)) {
		ssize_t n = send(c->ev.fd, buf_data(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_kill(c, strerror(errno));
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (c->state == CS_CONNECTING)
		return;
	want(c, buf_used(&c->out) ? EPOLLIN | EPOLLOUT : EPOLLIN);
	if (buf_used(&c->out) < LOW_WATER)
		exec_resume(c);
}

int conn_send(struct conn *c, unsigned type, const ProtobufCMessage *m)
{
	size_t fsz = msg_frame_size(m);
	uint8_t *dst;
	long n;

	if (c->dead || c->state != CS_OPEN)
		return -ENOTCONN;
	if (c->kind == CONN_CONTROL) {
		dst = buf_reserve(&c->out, fsz);
		if (!dst)
			return -ENOMEM;
		n = msg_encode(type, m, dst, fsz);
		if (n < 0)
			return (int)n;
		buf_commit(&c->out, (size_t)n);
	} else {
		uint8_t *plain = malloc(fsz);
		if (!plain)
			return -ENOMEM;
		n = msg_encode(type, m, plain, fsz);
		dst = n < 0 ? NULL : buf_reserve(&c->out, link_record_size((size_t)n));
		if (n < 0 || !dst) {
			free(plain);
			return n < 0 ? (int)n : -ENOMEM;
		}
		if (link_seal(&c->link, plain, (size_t)n, dst) == 0)
			buf_commit(&c->out, link_record_size((size_t)n));
		free(plain);
	}
	/* Small frames wait until the loop has nothing more to do right now
	 * (conn_flush_due), so that the frames some events produce for one
	 * peer (a Spawn and the stdin behind it; a job's Started and, when it
	 * was that quick, its Exited) leave in one write and one TCP segment,
	 * and wake the other side once. A queue past LOW_WATER goes at once. */
	if (buf_used(&c->out) >= LOW_WATER) {
		flush(c);
	} else {
		c->flush_due = true;
		flush_pending = true;
	}
	return 0;
}

bool conn_flush_pending(void)
{
	return flush_pending;
}

void conn_flush_due(void)
{
	flush_pending = false;
	for (struct conn *c = roamd->conns; c; c = c->next)
		if (c->flush_due) {
			c->flush_due = false;
			if (!c->dead)
				flush(c);
		}
}

void conn_write(struct conn *c, const uint8_t *p, size_t n)
{
	if (buf_append(&c->out, p, n) == 0)
		flush(c);
}

void conn_kill(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (c->flush_due) {
		/* What this turn queued still goes, as far as the socket takes
		 * it (a failing send comes back here and finishes the kill). */
		c->flush_due = false;
		flush(c);
		if (c->dead)
			return;
	}
	c->dead = true;
	if (c->kind == CONN_CONTROL)
		log_debug("control client %s closed: %s", c->peer_desc, why);
	else if (c->state == CS_OPEN)
		log_info("peer link %s %s (%s) closed: %s", c->kind == CONN_PEER_IN ? "from" : "to",
			 c->peer_desc, c->kind == CONN_PEER_IN ? c->peer_name :
			 c->member ? c->member->name : "", why);
	else
		log_warn("peer %s dropped during handshake: %s", c->peer_desc, why);
	if (c->kind == CONN_CONTROL)
		control_closed(c);
	else
		peer_closed(c);
	loop_del(&c->ev);
}

void conn_reap(void)
{
	struct conn **pp = &roamd->conns;

	while (*pp) {
		struct conn *c = *pp;
		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		close(c->ev.fd);
		link_wipe(&c->link);
		buf_free(&c->in);
		buf_free(&c->out);
		free(c);
	}
}

void conn_connect(struct member *m)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct conn *c;
	int fd, one = 1;

	if (m->link || m->self || parse_hostport(m->addr, &ss, &len))
		return;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	c = conn_new(fd, CONN_PEER_OUT, m->addr);
	if (!c)
		return;
	c->member = m;
	m->link = c;
}

/* The handshake steps and the frames that follow; returns when more bytes
 * are needed or the connection died. */
static void process(struct conn *c)
{
	uint8_t out[LINK_REPLY_SIZE];
	int err;

	while (!c->dead) {
		const uint8_t *p = buf_data(&c->in);
		size_t have = buf_used(&c->in);

		if (c->state == CS_HELLO && c->kind == CONN_PEER_IN) {
			if (have < LINK_HELLO_SIZE)
				return;
			if ((err = link_server_reply(&c->link, p, out)))
				return conn_kill(c, link_strerror(err));
			buf_consume(&c->in, LINK_HELLO_SIZE);
			conn_write(c, out, LINK_REPLY_SIZE);
			c->state = CS_FINISH;
		} else if (c->state == CS_HELLO) {
			if (have < LINK_REPLY_SIZE)
				return;
			if ((err = link_client_finish(&c->link, p, out)))
				return conn_kill(c, link_strerror(err));
			buf_consume(&c->in, LINK_REPLY_SIZE);
			conn_write(c, out, LINK_FINISH_SIZE);
			c->state = CS_OPEN;
			log_info("peer link to %s established", c->peer_desc);
			peer_opened(c);
		} else if (c->state == CS_FINISH) {
			if (have < LINK_FINISH_SIZE)
				return;
			if ((err = link_server_accept(&c->link, p)))
				return conn_kill(c, link_strerror(err));
			buf_consume(&c->in, LINK_FINISH_SIZE);
			c->state = CS_OPEN;
			log_debug("peer link from %s authenticated", c->peer_desc);
		} else if (c->kind == CONN_CONTROL) {
			ProtobufCMessage *m;
			unsigned type;
			size_t used;

			err = msg_take(p, have, MSG_CH_CONTROL, &type, &m, &used);
			if (err == 0)
				return;
			if (err < 0) {
				log_warn("control client %s: %s", c->peer_desc, msg_strerror(err));
				return conn_kill(c, msg_strerror(err));
			}
			buf_consume(&c->in, used);
			if (!control_frame(c, type, m))
				msg_free(m);
		} else {
			ProtobufCMessage *m;
			unsigned type;
			size_t rlen;
			uint8_t *plain;
			long n;

			err = link_record_peek(p, have, &rlen);
			if (err == 1 || (!err && have < rlen))
				return;
			if (err)
				return conn_kill(c, link_strerror(err));
			plain = malloc(rlen);
			if (!plain)
				return conn_kill(c, "out of memory");
			n = link_open(&c->link, p, rlen, plain);
			if (n < 0) {
				free(plain);
				return conn_kill(c, link_strerror((int)n));
			}
			buf_consume(&c->in, rlen);
			err = msg_decode(plain, (size_t)n, MSG_CH_PEER, &type, &m);
			free(plain);
			if (err)
				return conn_kill(c, msg_strerror(err));
			if (!peer_frame(c, type, m))
				msg_free(m);
		}
	}
}

static void conn_event(struct ev *ev, uint32_t events)
{
	struct conn *c = conn_of(ev);
	size_t budget = READ_BUDGET;
	bool eof = false;

	if (c->dead)
		return;
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		uint8_t hello[LINK_HELLO_SIZE];

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->ev.fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			return conn_kill(c, strerror(err));
		link_init(&c->link, LINK_CLIENT, roamd->key);
		link_client_hello(&c->link, hello);
		c->state = CS_HELLO;
		want(c, EPOLLIN);
		conn_write(c, hello, sizeof(hello));
		return;
	}
	/* Paused, a client is still read once it hung up: what its socket
	 * holds is all that can come (and epoll reports a hang-up anyway). */
	if ((events & (EPOLLHUP | EPOLLERR)) || ((events & EPOLLIN) && !c->rx_paused)) {
		while (budget > 0) {
			uint8_t *dst = buf_reserve(&c->in, 65536);
			ssize_t n;

			if (!dst)
				return conn_kill(c, "out of memory");
			n = recv(c->ev.fd, dst, 65536, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					return conn_kill(c, strerror(errno));
				break;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			buf_commit(&c->in, (size_t)n);
			budget -= (size_t)n < budget ? (size_t)n : budget;
			/* A short read emptied the socket: no second recv just to
			 * hear EAGAIN (epoll says when more comes). */
			if (n < 65536)
				break;
		}
		process(c);
		if (eof && !c->dead)
			conn_kill(c, buf_used(&c->in) ? "closed inside a frame" : "closed by the other side");
	}
	if (!c->dead && (events & EPOLLOUT))
		flush(c);
}

void conn_read_now(struct conn *c)
{
	conn_event(&c->ev, EPOLLIN);
}

void conn_tick(uint64_t now)
{
	for (struct conn *c = roamd->conns; c; c = c->next)
		if (!c->dead && c->kind != CONN_CONTROL && c->state != CS_OPEN && now > c->deadline_ms)
			conn_kill(c, "handshake timed out");
}
