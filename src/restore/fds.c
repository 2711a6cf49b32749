/*
 * Every image descriptor at its number, each open file description made
 * once and dup'ed to every descriptor that shares it. Two callers run the
 * same steps in different ways: the child before it stops (spawn.c), with
 * direct system calls, and the tracer of a pre-copy's bare child, by remote
 * system calls (restore_setup_late). A struct fd_maker is the one
 * difference between them.
 *
 * What a descriptor stands for is opened again (files, directories,
 * devices) or made again: a pipe with the bytes queued in it, an eventfd
 * with its count, a signalfd with its mask, a timerfd with the time left,
 * its interval and the expirations not read, an inotify with its watches
 * under their wds, a socket pair with the bytes or messages queued at each
 * end, a TCP or UDP socket bound, listening or (UDP) connected again, an epoll with its interest list (last, once every file it watches is
 * in place). File locks are taken again at the very end of the restore
 * (fds_make_locks), once nothing will close a descriptor any more.
 */
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sys/inet.h"
#include "sys/mem.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* Writes of queued bytes go in pieces that fit the trampoline's data. */
#define PUT_CHUNK 32768

int fds_high(const Roamimg__Files *fs)
{
	int high = 3;

	for (size_t i = 0; i < fs->n_fds; i++)
		if ((int)fs->fds[i]->fd + 1 > high)
			high = (int)fs->fds[i]->fd + 1;
	return high;
}

/* --- the two makers ------------------------------------------------------- */

static long local_sys(struct fd_maker *m, long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	(void)m;
	long v = syscall(nr, a0, a1, a2, a3, a4, a5);
	return v < 0 ? -errno : v;
}

static uint64_t local_put(struct fd_maker *m, const void *p, size_t len)
{
	(void)m;
	(void)len;
	return (uint64_t)(uintptr_t)p;
}

static int local_get(struct fd_maker *m, uint64_t addr, void *p, size_t len)
{
	(void)m;
	if ((uintptr_t)addr != (uintptr_t)p)
		memcpy(p, (const void *)(uintptr_t)addr, len);
	return 0;
}

void fd_maker_local(struct fd_maker *m, struct restore *r)
{
	memset(m, 0, sizeof(*m));
	m->sys = local_sys;
	m->put = local_put;
	m->get = local_get;
	m->r = r;
}

static long remote_sys(struct fd_maker *m, long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	long v;
	int rc = remote_syscall(m->in, &v, nr, a0, a1, a2, a3, a4, a5);

	if (rc < 0) {
		m->undriven = 1;
		return rc;
	}
	return v;
}

static uint64_t remote_put(struct fd_maker *m, const void *p, size_t len)
{
	uint64_t a;

	return tramp_put(m->r, 0, p, len, &a) < 0 ? 0 : a;
}

static int remote_get(struct fd_maker *m, uint64_t addr, void *p, size_t len)
{
	return mem_read(m->r->pid, m->r->memfd, addr, p, len);
}

void fd_maker_remote(struct fd_maker *m, struct restore *r, struct remote *in)
{
	memset(m, 0, sizeof(*m));
	m->sys = remote_sys;
	m->put = remote_put;
	m->get = remote_get;
	m->r = r;
	m->in = in;
}

int fd_maker_fail(struct fd_maker *m, int rc)
{
	if (m->undriven)
		return roam_fail(m->r->err, rc, "%s: the new process could not be driven", m->what);
	return roam_fail(m->r->err, rc, "%s", m->what);
}

/* A call whose failure is worded as what, for descriptor fd. */
static long call(struct fd_maker *m, const char *what, uint32_t fd, long nr, long a0, long a1, long a2, long a3)
{
	long v = m->sys(m, nr, a0, a1, a2, a3, 0, 0);

	if (v < 0 && v > -4096)
		snprintf(m->what, sizeof(m->what), "%s for fd %u", what, fd);
	return v;
}

static long put(struct fd_maker *m, const void *p, size_t len, uint32_t fd)
{
	uint64_t a = m->put(m, p, len);

	if (!a) {
		snprintf(m->what, sizeof(m->what), "passing %zu bytes for fd %u", len, fd);
		return -E2BIG;
	}
	return (long)a;
}

/* fd moves to the lowest free number >= high (and is closed). */
static long move_high(struct fd_maker *m, long fd, int high, uint32_t for_fd)
{
	long moved = call(m, "moving a descriptor", for_fd, SYS_fcntl, fd, F_DUPFD_CLOEXEC, high, 0);

	m->sys(m, SYS_close, fd, 0, 0, 0, 0, 0);
	return moved;
}

/* Writes len bytes to fd, in pieces. */
static int fill(struct fd_maker *m, long fd, const uint8_t *data, size_t len, int sock, uint32_t for_fd)
{
	for (size_t off = 0; off < len;) {
		size_t n = len - off < PUT_CHUNK ? len - off : PUT_CHUNK;
		long a = put(m, data + off, n, for_fd), w;
		if (a < 0)
			return (int)a;
		w = sock ? call(m, "queueing the socket's bytes", for_fd, SYS_sendto, fd, a, (long)n,
				MSG_DONTWAIT | MSG_NOSIGNAL)
			 : call(m, "filling the pipe", for_fd, SYS_write, fd, a, (long)n, 0);
		if (w < 0)
			return (int)w;
		if (w == 0) {
			snprintf(m->what, sizeof(m->what), "queueing bytes for fd %u", for_fd);
			return -EIO;
		}
		off += (size_t)w;
	}
	return 0;
}

/* One datagram or seqpacket message, whole (a zero-length one too). */
static int send_message(struct fd_maker *m, long fd, const ProtobufCBinaryData *msg, uint32_t for_fd)
{
	long a = put(m, msg->len ? msg->data : (const uint8_t *)"", msg->len ? msg->len : 1, for_fd), w;

	if (a < 0)
		return (int)a;
	w = call(m, "queueing a message", for_fd, SYS_sendto, fd, a, (long)msg->len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w >= 0 && (size_t)w != msg->len) {
		snprintf(m->what, sizeof(m->what), "queueing a message of %zu bytes for fd %u", msg->len, for_fd);
		return -EIO;
	}
	return w < 0 ? (int)w : 0;
}

/* --- one object each -------------------------------------------------------- */

static long open_file(struct fd_maker *m, const Roamimg__Fd *d, int high)
{
	long flags = (long)((d->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC)) | O_NOCTTY), fd;
	long a;

	if (!d->path) {
		snprintf(m->what, sizeof(m->what), "fd %u has no path", d->fd);
		return -ROAM_E_IMAGE;
	}
	if ((a = put(m, d->path, strlen(d->path) + 1, d->fd)) < 0)
		return a;
	fd = m->sys(m, SYS_openat, AT_FDCWD, a, flags, 0, 0, 0);
	if (fd < 0) {
		snprintf(m->what, sizeof(m->what), "opening %s for fd %u", d->path, d->fd);
		return fd;
	}
	if ((d->kind == ROAMIMG__FD_KIND__FD_REG || d->kind == ROAMIMG__FD_KIND__FD_DIR) && d->pos) {
		long rc = m->sys(m, SYS_lseek, fd, (long)d->pos, SEEK_SET, 0, 0, 0);
		if (rc < 0) {
			snprintf(m->what, sizeof(m->what), "seeking %s to %llu for fd %u", d->path,
				 (unsigned long long)d->pos, d->fd);
			m->sys(m, SYS_close, fd, 0, 0, 0, 0, 0);
			return rc;
		}
	}
	return move_high(m, fd, high, d->fd);
}

/* The descriptors of pipe (or pair) id that decide an end's settings: the
 * first of each end, or the one of it carrying the queued bytes. */
static void ends_of(const Roamimg__Files *fs, const Roamimg__Fd *d, const Roamimg__Fd *end[2])
{
	int pipe = d->kind == ROAMIMG__FD_KIND__FD_PIPE;

	end[0] = end[1] = NULL;
	for (size_t i = 0; i < fs->n_fds; i++) {
		const Roamimg__Fd *e = fs->fds[i];
		int k;
		if (e->kind != d->kind || (pipe ? e->pipe_id != d->pipe_id : e->pair_id != d->pair_id))
			continue;
		k = pipe ? (e->pipe_write_end ? 1 : 0) : (int)e->pair_end;
		if (!end[k] || (pipe ? e->has_pipe_data : e->has_sock_queued || e->n_sock_messages))
			end[k] = e;
	}
}

/* Both ends, at >= high, of a new pipe (type 0) or socket pair. */
static int make_two(struct fd_maker *m, const Roamimg__Fd *d, int type, int high, long out[2])
{
	int32_t p[2] = { -1, -1 };
	long a = put(m, p, sizeof(p), d->fd), rc;

	if (a < 0)
		return (int)a;
	rc = type ? call(m, "making the socket pair", d->fd, SYS_socketpair, AF_UNIX, type | SOCK_CLOEXEC, 0, a)
		  : call(m, "making the pipe", d->fd, SYS_pipe2, a, O_CLOEXEC, 0, 0);
	if (rc < 0)
		return (int)rc;
	if ((rc = m->get(m, (uint64_t)a, p, sizeof(p))) < 0) {
		snprintf(m->what, sizeof(m->what), "reading the new descriptors for fd %u", d->fd);
		return (int)rc;
	}
	for (int k = 0; k < 2; k++)
		if ((out[k] = move_high(m, p[k], high, d->fd)) < 0)
			return (int)out[k];
	return 0;
}

static int make_pipe(struct fd_maker *m, const Roamimg__Files *fs, const Roamimg__Fd *d, int high, long out[2])
{
	const Roamimg__Fd *end[2];
	int rc = make_two(m, d, 0, high, out);

	ends_of(fs, d, end);
	if (rc < 0)
		return rc;
	if (end[0] && end[0]->has_pipe_size)
		m->sys(m, SYS_fcntl, out[1], F_SETPIPE_SZ, (long)end[0]->pipe_size, 0, 0, 0);
	if (end[0] && end[0]->has_pipe_data &&
	    (rc = fill(m, out[1], end[0]->pipe_data.data, end[0]->pipe_data.len, 0, d->fd)) < 0)
		return rc;
	for (int k = 0; k < 2; k++)
		if (end[k])
			m->sys(m, SYS_fcntl, out[k], F_SETFL, (long)(end[k]->flags & (O_NONBLOCK | O_DIRECT)), 0, 0, 0);
	return 0;
}

static int set_int_opt(struct fd_maker *m, long fd, int level, int opt, int v, uint32_t for_fd)
{
	long a = put(m, &v, sizeof(v), for_fd), rc;
	const struct inet_opt *o = level == SOL_SOCKET ? NULL : inet_opt_find(level, opt);

	if (a < 0)
		return (int)a;
	/* setsockopt's fifth argument is not among call's four */
	rc = m->sys(m, SYS_setsockopt, fd, level, opt, a, sizeof(v), 0);
	if (rc < 0 && o)
		snprintf(m->what, sizeof(m->what), "setting %s to %d for fd %u", o->label, v, for_fd);
	else if (rc < 0)
		snprintf(m->what, sizeof(m->what), "setting socket option %d:%d for fd %u", level, opt, for_fd);
	return rc < 0 ? (int)rc : 0;
}

static int make_pair(struct fd_maker *m, const Roamimg__Files *fs, const Roamimg__Fd *d, int high, long out[2])
{
	const Roamimg__Fd *end[2];
	int rc;

	ends_of(fs, d, end);
	if (!end[0] || !end[1]) {
		snprintf(m->what, sizeof(m->what), "the socket pair of fd %u lacks its other end", d->fd);
		return -ROAM_E_IMAGE;
	}
	if ((rc = make_two(m, d, (int)d->sock_type, high, out)) < 0)
		return rc;
	for (int k = 0; k < 2; k++) {
		const Roamimg__Fd *e = end[k];
		/* What end k has yet to read, it reads from its peer. */
		if (e->has_sock_queued && (rc = fill(m, out[1 - k], e->sock_queued.data, e->sock_queued.len, 1, e->fd)) < 0)
			return rc;
		for (size_t q = 0; q < e->n_sock_messages; q++)
			if ((rc = send_message(m, out[1 - k], &e->sock_messages[q], e->fd)) < 0)
				return rc;
	}
	for (int k = 0; k < 2; k++) {
		const Roamimg__Fd *e = end[k];
		/* getsockopt gave the doubled values setsockopt makes of its own. */
		if ((e->has_sndbuf && (rc = set_int_opt(m, out[k], SOL_SOCKET, SO_SNDBUF, (int)(e->sndbuf / 2), e->fd)) < 0) ||
		    (e->has_rcvbuf && (rc = set_int_opt(m, out[k], SOL_SOCKET, SO_RCVBUF, (int)(e->rcvbuf / 2), e->fd)) < 0) ||
		    (e->has_passcred && e->passcred && (rc = set_int_opt(m, out[k], SOL_SOCKET, SO_PASSCRED, 1, e->fd)) < 0))
			return rc;
		m->sys(m, SYS_fcntl, out[k], F_SETFL, (long)(e->flags & O_NONBLOCK), 0, 0, 0);
	}
	return 0;
}

/* An object made as fd (rc: how its making went): blocking or not as d
 * says, at its number >= high; closed if its making failed. */
static long settle(struct fd_maker *m, const Roamimg__Fd *d, long fd, long rc, int high)
{
	if (rc < 0) {
		m->sys(m, SYS_close, fd, 0, 0, 0, 0, 0);
		return rc;
	}
	m->sys(m, SYS_fcntl, fd, F_SETFL, (long)(d->flags & O_NONBLOCK), 0, 0, 0);
	return move_high(m, fd, high, d->fd);
}

/* addr:port of in's family as a sockaddr in the new process. */
static long put_addr(struct fd_maker *m, const Roamimg__InetSock *in, const ProtobufCBinaryData *addr, uint32_t port,
		     uint32_t scope, uint32_t for_fd, socklen_t *len)
{
	struct sockaddr_storage ss;

	*len = inet_sockaddr((int)in->family, addr->data, port, scope, &ss);
	return put(m, &ss, *len, for_fd);
}

static int set_buf_opt(struct fd_maker *m, long fd, int opt, const void *p, size_t len, uint32_t for_fd, const char *what)
{
	long a = put(m, p, len, for_fd), rc;

	if (a < 0)
		return (int)a;
	rc = m->sys(m, SYS_setsockopt, fd, IPPROTO_TCP, opt, a, (long)len, 0);
	if (rc < 0)
		snprintf(m->what, sizeof(m->what), "%s for fd %u", what, for_fd);
	return rc < 0 ? (int)rc : 0;
}

/* Where the connection's queues begin, before its connect (in repair mode,
 * which sends nothing). */
static int set_seqs(struct fd_maker *m, long fd, const Roamimg__TcpConn *t, uint32_t for_fd)
{
	int rc;

	if ((rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, for_fd)) < 0 ||
	    (rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)t->rcv_seq, for_fd)) < 0 ||
	    (rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, for_fd)) < 0)
		return rc;
	return set_int_opt(m, fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)t->snd_seq, for_fd);
}

/* After the connect: the options agreed with the peer, the clock, the
 * bytes of both queues, the window. */
static int finish_connection(struct fd_maker *m, long fd, const Roamimg__TcpConn *t, uint32_t for_fd)
{
	struct tcp_repair_opt o[4];
	struct tcp_repair_window win = { t->snd_wl1, t->snd_wnd, t->max_window, t->rcv_wnd, t->rcv_wup };
	size_t n = 0;
	int rc;

	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, t->mss };
	if (t->sack)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (t->wscale)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, t->snd_wscale | t->rcv_wscale << 16 };
	if (t->timestamps)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if ((rc = set_buf_opt(m, fd, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0]), for_fd, "setting the TCP options")) < 0 ||
	    (t->has_timestamp && (rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_TIMESTAMP, (int)t->timestamp, for_fd)) < 0))
		return rc;
	if (t->has_recv_queue &&
	    ((rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, for_fd)) < 0 ||
	     (rc = fill(m, fd, t->recv_queue.data, t->recv_queue.len, 1, for_fd)) < 0))
		return rc;
	if (t->has_send_queue &&
	    ((rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, for_fd)) < 0 ||
	     (rc = fill(m, fd, t->send_queue.data, t->send_queue.len, 1, for_fd)) < 0))
		return rc;
	/* Out of repair mode only as the process is let go (restore.c): a
	 * restore that fails before closes it without a FIN. */
	return set_buf_opt(m, fd, TCP_REPAIR_WINDOW, &win, sizeof(win), for_fd, "setting the TCP window");
}

/* A TCP or UDP socket: its options (those the program changed, before the
 * bind, which SO_REUSEADDR and IPV6_V6ONLY affect), its address, its peer
 * (UDP), listening with its backlog. A port taken meanwhile fails the
 * restore, naming it. */
static long make_inet(struct fd_maker *m, const Roamimg__Fd *d, int high)
{
	const Roamimg__InetSock *in = d->inet;
	char where[80];
	socklen_t len;
	long fd, a, rc = 0;

	fd = call(m, "making the socket", d->fd, SYS_socket, (long)in->family, (long)in->type | SOCK_CLOEXEC, 0, 0);
	if (fd < 0)
		return fd;
	for (size_t i = 0; i < in->n_opts && rc >= 0; i++) {
		const Roamimg__SockOpt *o = in->opts[i];
		if (!inet_opt_find(o->level, o->name)) {
			snprintf(m->what, sizeof(m->what), "fd %u: socket option %d:%d is not one roam sets", d->fd,
				 o->level, o->name);
			rc = -ROAM_E_IMAGE;
		} else
			rc = set_int_opt(m, fd, o->level, o->name, o->value, d->fd);
	}
	/* A connection is made again in repair mode, which binds its port
	 * beside the listener it came from and connects without a packet.
	 * After the options: SO_REUSEADDR would undo its binding rule. */
	if (rc >= 0 && in->tcp && (rc = set_int_opt(m, fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, d->fd)) == -EPERM)
		snprintf(m->what, sizeof(m->what), "fd %u: TCP_REPAIR, which an established connection takes, "
			 "needs CAP_NET_ADMIN", d->fd);
	inet_addr_str((int)in->family, in->addr.data, in->addr.len, in->port, in->scope_id, where, sizeof(where));
	if (rc >= 0 && in->port) {
		if ((a = put_addr(m, in, &in->addr, in->port, in->scope_id, d->fd, &len)) < 0)
			rc = a;
		else if ((rc = m->sys(m, SYS_bind, fd, a, len, 0, 0, 0)) < 0)
			snprintf(m->what, sizeof(m->what), "binding %s for fd %u", where, d->fd);
	}
	if (rc >= 0 && in->tcp)
		rc = set_seqs(m, fd, in->tcp, d->fd);
	if (rc >= 0 && in->has_peer_addr) {
		if ((a = put_addr(m, in, &in->peer_addr, in->peer_port, in->peer_scope_id, d->fd, &len)) < 0)
			rc = a;
		else
			rc = call(m, "connecting the socket", d->fd, SYS_connect, fd, a, len, 0);
	}
	if (rc >= 0 && in->tcp)
		rc = finish_connection(m, fd, in->tcp, d->fd);
	if (rc >= 0 && in->has_backlog && (rc = m->sys(m, SYS_listen, fd, (long)in->backlog, 0, 0, 0, 0)) < 0)
		snprintf(m->what, sizeof(m->what), "listening on %s for fd %u", where, d->fd);
	return settle(m, d, fd, rc, high);
}

static long make_timerfd(struct fd_maker *m, const Roamimg__Fd *d, long fd)
{
	const Roamimg__TimerFd *t = d->timer;
	uint64_t value = t->value_ns, ticks = t->ticks;
	long flags = 0, a, rc = 0;

	/* Expired and not read yet, periodic: the next expiry an interval on. */
	if (!value && t->interval_ns)
		value = t->interval_ns;
	if (value) {
		if (t->settime_flags & TFD_TIMER_CANCEL_ON_SET) {
			/* Only with an absolute time: the one that is value from now. */
			struct timespec now;
			clock_gettime(t->clockid, &now);
			value += (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
			flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;
		}
		struct itimerspec its = {
			.it_interval = { (time_t)(t->interval_ns / 1000000000ull), (long)(t->interval_ns % 1000000000ull) },
			.it_value = { (time_t)(value / 1000000000ull), (long)(value % 1000000000ull) },
		};
		if ((a = put(m, &its, sizeof(its), d->fd)) < 0 ||
		    (rc = call(m, "arming the timer", d->fd, SYS_timerfd_settime, fd, flags, a, 0)) < 0)
			return a < 0 ? a : rc;
	}
	if (ticks && ((a = put(m, &ticks, sizeof(ticks), d->fd)) < 0 ||
		      (rc = call(m, "setting the timer's expirations", d->fd, SYS_ioctl, fd, (long)TFD_IOC_SET_TICKS, a,
				 0)) < 0))
		return a < 0 ? a : rc;
	return 0;
}

/* Each watch under its wd. The kernel gives a new watch the next wd after
 * the last it gave (cyclically), so a wd below the one wanted is dropped
 * and the watch added again until it comes; the IN_IGNORED events the drops
 * leave are read away at the end. */
static long make_watches(struct fd_maker *m, const Roamimg__Fd *d, long fd)
{
	char drain[4096];
	long a, wd, rc;

	for (size_t i = 0; i < d->n_inotify; i++) {
		const Roamimg__InotifyWatch *w = d->inotify[i];
		if ((a = put(m, w->path, strlen(w->path) + 1, d->fd)) < 0)
			return a;
		for (int tries = 0;; tries++) {
			wd = m->sys(m, SYS_inotify_add_watch, fd, a, (long)w->mask, 0, 0, 0);
			if (wd == w->wd)
				break;
			if (wd < 0) {
				snprintf(m->what, sizeof(m->what), "watching %s for fd %u", w->path, d->fd);
				return wd;
			}
			if (wd > w->wd || tries > (1 << 20)) {
				snprintf(m->what, sizeof(m->what), "watching %s for fd %u: got wd %ld, not %d", w->path,
					 d->fd, wd, w->wd);
				return -EEXIST;
			}
			if ((rc = m->sys(m, SYS_inotify_rm_watch, fd, wd, 0, 0, 0, 0)) < 0) {
				snprintf(m->what, sizeof(m->what), "stepping to wd %d for fd %u", w->wd, d->fd);
				return rc;
			}
		}
	}
	if ((a = put(m, drain, sizeof(drain), d->fd)) < 0)
		return a;
	while (m->sys(m, SYS_read, fd, a, sizeof(drain), 0, 0, 0) > 0)
		;
	return 0;
}

/* An eventfd, signalfd, timerfd, inotify or (empty) epoll, at >= high. */
static long make_anon(struct fd_maker *m, const Roamimg__Fd *d, int high)
{
	long fd, a, rc = 0;

	switch (d->kind) {
	case ROAMIMG__FD_KIND__FD_EVENTFD:
		fd = call(m, "making the eventfd", d->fd, SYS_eventfd2, 0,
			  EFD_CLOEXEC | (d->eventfd_semaphore ? EFD_SEMAPHORE : 0), 0, 0);
		if (fd >= 0 && d->eventfd_count) {
			if ((a = put(m, &d->eventfd_count, sizeof(d->eventfd_count), d->fd)) < 0)
				rc = a;
			else
				rc = call(m, "setting the eventfd's count", d->fd, SYS_write, fd, a, 8, 0);
		}
		break;
	case ROAMIMG__FD_KIND__FD_SIGNALFD: {
		uint64_t mask = d->sigmask;
		if ((a = put(m, &mask, sizeof(mask), d->fd)) < 0)
			return a;
		fd = call(m, "making the signalfd", d->fd, SYS_signalfd4, -1, a, 8, SFD_CLOEXEC);
		break;
	}
	case ROAMIMG__FD_KIND__FD_TIMERFD:
		fd = call(m, "making the timerfd", d->fd, SYS_timerfd_create, d->timer->clockid, TFD_CLOEXEC, 0, 0);
		if (fd >= 0)
			rc = make_timerfd(m, d, fd);
		break;
	case ROAMIMG__FD_KIND__FD_EPOLL:
		fd = call(m, "making the epoll", d->fd, SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0, 0);
		break;
	case ROAMIMG__FD_KIND__FD_INOTIFY:
		fd = call(m, "making the inotify", d->fd, SYS_inotify_init1, IN_CLOEXEC | IN_NONBLOCK, 0, 0, 0);
		if (fd >= 0)
			rc = make_watches(m, d, fd);
		break;
	default:
		snprintf(m->what, sizeof(m->what), "fd %u is of a kind this roam cannot make", d->fd);
		return -ROAM_E_IMAGE;
	}
	if (fd < 0)
		return fd;
	return settle(m, d, fd, rc, high);
}

/* Which of d's object's ends e gets (0 or 1), or -1 when e is not of it. */
static int end_for(const Roamimg__Fd *d, const Roamimg__Fd *e)
{
	if (d->kind == ROAMIMG__FD_KIND__FD_PIPE)
		return e->kind == d->kind && e->pipe_id == d->pipe_id ? (e->pipe_write_end ? 1 : 0) : -1;
	if (d->kind == ROAMIMG__FD_KIND__FD_SOCKPAIR)
		return e->kind == d->kind && e->pair_id == d->pair_id ? (int)e->pair_end : -1;
	return e->file_id == d->file_id ? 0 : -1;
}

static int watch_all(struct fd_maker *m, const Roamimg__Fd *d)
{
	for (size_t w = 0; w < d->n_watches; w++) {
		const Roamimg__EpollWatch *x = d->watches[w];
		struct epoll_event ev = { .events = x->events, .data.u64 = x->data };
		long a = put(m, &ev, sizeof(ev), d->fd), rc;
		if (a < 0)
			return (int)a;
		rc = m->sys(m, SYS_epoll_ctl, d->fd, EPOLL_CTL_ADD, x->fd, a, 0, 0);
		if (rc < 0) {
			snprintf(m->what, sizeof(m->what), "adding fd %u to the epoll of fd %u", x->fd, d->fd);
			return (int)rc;
		}
	}
	return 0;
}

/* --- a process tree's shared descriptions ----------------------------------- */

/* Where d is, inherited from the root, when it is one of the tree's shared
 * descriptions; -1 otherwise (and for the root's own stdio, which it makes
 * as ever). */
static long from_tree(const struct fd_maker *m, const Roamimg__Fd *d)
{
	if (!m->tree_base || !d->has_shared_id || !d->shared_id)
		return -1;
	if (m->tree_root && d->kind == ROAMIMG__FD_KIND__FD_EXTERNAL)
		return -1;
	return m->tree_base + (long)d->shared_id - 1;
}

int fds_make_tree_objects(struct fd_maker *m, const Roamimg__Files *fs)
{
	Roamimg__Files objs = ROAMIMG__FILES__INIT;
	long base = fs->tree_fd_base, high = base + (long)fs->n_tree_objects;
	int rc = 0;

	objs.fds = fs->tree_objects;
	objs.n_fds = fs->n_tree_objects;
	for (size_t i = 0; i < fs->n_tree_objects && rc >= 0; i++) {
		const Roamimg__Fd *o = fs->tree_objects[i];
		long src[2] = { -1, -1 };
		if (o->kind == ROAMIMG__FD_KIND__FD_EXTERNAL)
			continue;  /* fds_make_tree_stdio */
		if (o->kind == ROAMIMG__FD_KIND__FD_PIPE) {
			/* Both ends at once, at the pipe's first object. */
			size_t first = 0;
			while (fs->tree_objects[first]->kind != ROAMIMG__FD_KIND__FD_PIPE ||
			       fs->tree_objects[first]->pipe_id != o->pipe_id)
				first++;
			if (first < i)
				continue;
			rc = make_pipe(m, &objs, o, (int)high, src);
			for (size_t j = i; j < fs->n_tree_objects && rc >= 0; j++) {
				const Roamimg__Fd *e = fs->tree_objects[j];
				if (e->kind == ROAMIMG__FD_KIND__FD_PIPE && e->pipe_id == o->pipe_id)
					rc = (int)call(m, "placing a pipe the tree shares", e->fd, SYS_dup3,
						       src[e->pipe_write_end ? 1 : 0], base + (long)j, O_CLOEXEC, 0);
			}
		} else {
			rc = (int)(src[0] = o->kind == ROAMIMG__FD_KIND__FD_INET ? make_inet(m, o, (int)high)
										   : open_file(m, o, (int)high));
			if (rc >= 0)
				rc = (int)call(m, "placing a file the tree shares", o->fd, SYS_dup3, src[0], base + (long)i,
					       O_CLOEXEC, 0);
		}
		for (int k = 0; k < 2; k++)
			if (src[k] >= 0)
				m->sys(m, SYS_close, src[k], 0, 0, 0, 0, 0);
	}
	return rc < 0 ? rc : 0;
}

int fds_make_tree_stdio(struct fd_maker *m, const Roamimg__Files *fs)
{
	for (size_t i = 0; i < fs->n_tree_objects; i++) {
		const Roamimg__Fd *o = fs->tree_objects[i];
		long rc;
		if (o->kind == ROAMIMG__FD_KIND__FD_EXTERNAL &&
		    (rc = call(m, "passing stdio on to the tree", o->fd, SYS_dup3, (long)o->fd,
			       (long)fs->tree_fd_base + (long)i, O_CLOEXEC, 0)) < 0)
			return (int)rc;
	}
	return 0;
}

int fds_make_all(struct fd_maker *m, const Roamimg__Files *fs, const int kept[3])
{
	int high = fds_high(fs), rc = 0;
	char *done = calloc(fs->n_fds + 1, 1);

	if (!done) {
		snprintf(m->what, sizeof(m->what), "preparing descriptors");
		return -ENOMEM;
	}
	/* stdio the caller passed stays; a thread's own files wait for their
	 * thread (restore_task_files). */
#define SKIPPED(e) (((e)->fd <= 2 && kept[(e)->fd]) || (e)->has_task_tid)
	/* Established connections last: the listener they came from binds
	 * its port first, as it did (their repair mode binds beside it). */
	for (size_t i = 0, pass = 0; pass < 2 && rc >= 0; i = 0, pass++)
	for (; i < fs->n_fds && rc >= 0; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		long src[2] = { -1, -1 };
		if (done[i] || SKIPPED(d) || (pass == 0) == (d->inet && d->inet->tcp))
			continue;
		long inherited = from_tree(m, d);
		if (inherited >= 0) {
			/* Shared in the tree: every descriptor of it from there. */
			for (size_t j = i; j < fs->n_fds && rc >= 0; j++) {
				const Roamimg__Fd *e = fs->fds[j];
				if (e->file_id != d->file_id || done[j] || SKIPPED(e))
					continue;
				rc = (int)call(m, "placing a descriptor the tree shares", e->fd, SYS_dup3, inherited, e->fd,
					       e->cloexec ? O_CLOEXEC : 0, 0);
				done[j] = 1;
			}
			continue;
		}
		switch (d->kind) {
		case ROAMIMG__FD_KIND__FD_PIPE:
			rc = make_pipe(m, fs, d, high, src);
			break;
		case ROAMIMG__FD_KIND__FD_SOCKPAIR:
			rc = make_pair(m, fs, d, high, src);
			break;
		case ROAMIMG__FD_KIND__FD_INET:
			rc = (int)(src[0] = make_inet(m, d, high));
			break;
		case ROAMIMG__FD_KIND__FD_REG:
		case ROAMIMG__FD_KIND__FD_DIR:
		case ROAMIMG__FD_KIND__FD_CHR:
		case ROAMIMG__FD_KIND__FD_EXTERNAL:
			rc = (int)(src[0] = open_file(m, d, high));
			break;
		default:
			rc = (int)(src[0] = make_anon(m, d, high));
			break;
		}
		for (size_t j = i; j < fs->n_fds && rc >= 0; j++) {
			const Roamimg__Fd *e = fs->fds[j];
			int k = end_for(d, e);
			if (k < 0 || done[j] || SKIPPED(e))
				continue;
			rc = (int)call(m, "placing the descriptor", e->fd, SYS_dup3, src[k], e->fd,
				       e->cloexec ? O_CLOEXEC : 0, 0);
			done[j] = 1;
		}
		for (int k = 0; k < 2; k++)
			if (src[k] >= 0)
				m->sys(m, SYS_close, src[k], 0, 0, 0, 0, 0);
	}
	/* Each epoll's interest list once, now that what it watches is in place. */
	for (size_t i = 0; i < fs->n_fds && rc >= 0; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		size_t first = 0;
		if (d->kind != ROAMIMG__FD_KIND__FD_EPOLL || SKIPPED(d))
			continue;
		while (fs->fds[first]->file_id != d->file_id || SKIPPED(fs->fds[first]))
			first++;
		if (first == i)
			rc = watch_all(m, d);
	}
#undef SKIPPED
	free(done);
	return rc < 0 ? rc : 0;
}

int fds_open_one(struct fd_maker *m, const Roamimg__Fd *d, int high, long *out)
{
	long fd = open_file(m, d, high);

	*out = fd;
	return fd < 0 ? (int)fd : 0;
}

/* One lock through fd, never waiting: held elsewhere meanwhile, the restore
 * fails naming it rather than take it later. */
static int take_lock(struct fd_maker *m, const Roamimg__Fd *d, const Roamimg__FileLock *l)
{
	long v;

	if (l->kind == ROAMIMG__LOCK_KIND__LOCK_FLOCK) {
		v = m->sys(m, SYS_flock, d->fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB, 0, 0, 0, 0);
	} else {
		struct flock fl = {
			.l_type = l->write ? F_WRLCK : F_RDLCK,
			.l_whence = SEEK_SET,
			.l_start = (off_t)l->start,
			.l_len = l->has_end ? (off_t)(l->end - l->start + 1) : 0,
		};
		long a = put(m, &fl, sizeof(fl), d->fd);
		if (a < 0)
			return (int)a;
		v = m->sys(m, SYS_fcntl, d->fd, l->kind == ROAMIMG__LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK, a, 0,
			   0, 0);
	}
	if (v >= 0)
		return 0;
	const char *kind = l->kind == ROAMIMG__LOCK_KIND__LOCK_FLOCK ? "flock"
			   : l->kind == ROAMIMG__LOCK_KIND__LOCK_POSIX ? "POSIX"
								       : "OFD";
	char range[64] = "";
	if (l->kind != ROAMIMG__LOCK_KIND__LOCK_FLOCK && l->has_end)
		snprintf(range, sizeof(range), ", bytes %llu-%llu", (unsigned long long)l->start,
			 (unsigned long long)l->end);
	else if (l->kind != ROAMIMG__LOCK_KIND__LOCK_FLOCK)
		snprintf(range, sizeof(range), ", bytes %llu to the end", (unsigned long long)l->start);
	snprintf(m->what, sizeof(m->what), "fd %u (%s): its %s %s lock%s %s", d->fd, d->path ? d->path : "?",
		 kind, l->write ? "write" : "read", range,
		 v == -EAGAIN || v == -EACCES ? "is held by another process" : "could not be taken");
	return (int)v;
}

int fds_make_locks(struct fd_maker *m, const Roamimg__Files *fs, const int kept[3])
{
	for (size_t i = 0; i < fs->n_fds; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		if (d->fd <= 2 && kept[d->fd])
			continue;
		for (size_t k = 0; k < d->n_locks; k++) {
			int rc = take_lock(m, d, d->locks[k]);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
