/*
 * Descriptors of kernel objects that restore makes rather than opens:
 * eventfd (its count and mode), signalfd (its mask), timerfd (clock, time
 * left, interval, expirations not read), epoll (its interest list), inotify
 * (each watch's wd, mask and path), and the ends of AF_UNIX socket pairs
 * whose both ends are in the process (type, buffer sizes, the bytes queued
 * in a stream, the messages queued in a datagram or seqpacket pair). All of
 * it is read from /proc/PID/fdinfo, sock_diag, a copy of the descriptor
 * (pidfd_getfd) and, for inotify, the watches' file handles
 * (open_by_handle_at): nothing in the process is touched. Whatever cannot
 * be carried exactly is refused with its reason.
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/sockios.h>
#include <stddef.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>


/* anon_inode:[eventfd], or anon_inode:inotify (no brackets). */
static int is_anon(const struct fd_view *f, const char *name)
{
	const char *p = f->link + 11;
	size_t l = strlen(name);
	int bracket = *p == '[';

	return !strncmp(f->link, "anon_inode:", 11) && !strncmp(p + bracket, name, l) &&
	       (bracket ? p[1 + l] == ']' && !p[2 + l] : !p[l]);
}

int ckpt_classify_anon(struct ckpt *c, struct fd_view *f, const char *name)
{
	static const struct {
		const char *name;
		Roamimg__FdKind kind;
	} made[] = {
		{ "eventfd", ROAMIMG__FD_KIND__FD_EVENTFD },
		{ "signalfd", ROAMIMG__FD_KIND__FD_SIGNALFD },
		{ "timerfd", ROAMIMG__FD_KIND__FD_TIMERFD },
		{ "eventpoll", ROAMIMG__FD_KIND__FD_EPOLL },
		{ "inotify", ROAMIMG__FD_KIND__FD_INOTIFY },
	};
	char what[64];

	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
		if (is_anon(f, made[i].name))
			return f->kind = made[i].kind, 0;
	/* io_uring, fanotify, userfaultfd, pidfd...: named as the kernel does. */
	snprintf(what, sizeof(what), "%s", name[0] == '[' ? name + 1 : name);
	what[strcspn(what, "]")] = '\0';
	return roam_fail(c->err, -ROAM_E_REFUSED, "%s on fd %d", what, f->fd);
}

int ckpt_classify_socket(struct ckpt *c, struct fd_view *f)
{
	struct unix_sock_info *s = &f->sock;
	const char *why = NULL;
	int rc = unix_sock_query(f->st.st_ino, s);

	if (rc == -ENOENT) {
		/* TCP or UDP (inet.c), or else not a Unix socket of this
		 * network namespace. */
		if ((rc = ckpt_inet_read(c, f, NULL)) <= 0) {
			if (rc == -ROAM_E_REFUSED && f->fd <= 2)
				return f->kind = ROAMIMG__FD_KIND__FD_EXTERNAL, 0;
			return rc < 0 ? rc : (f->kind = ROAMIMG__FD_KIND__FD_INET, 0);
		}
		why = "not a Unix socket of this network namespace";
	} else if (rc < 0)
		return roam_fail(c->err, rc, "asking sock_diag about the socket on fd %d", f->fd);
	else if (s->state == TCP_LISTEN)
		why = "listening";
	else if (s->named)
		why = "bound to a name";
	else if (s->state != TCP_ESTABLISHED || !s->peer)
		why = "not connected";
	else if (s->shutdown)
		why = "shut down";
	else if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM && s->type != SOCK_SEQPACKET)
		why = "of an unknown type";
	if (!why)
		return f->kind = ROAMIMG__FD_KIND__FD_SOCKPAIR, 0;
	if (f->fd <= 2)
		return f->kind = ROAMIMG__FD_KIND__FD_EXTERNAL, 0;
	return roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (%s)", f->fd, why);
}

static const struct fd_view *view_of(const struct fd_view *v, size_t n, int fd)
{
	size_t lo = 0, hi = n;  /* v is in fd order (proc_list_fds sorts) */

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].fd == fd)
			return &v[mid];
		if (v[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Each "tfd:" line of an epoll's fdinfo, in turn: 1 while one was read. */
static int next_watch(const char **p, int *fd, unsigned *events, unsigned long long *data, unsigned long *ino)
{
	const char *t;

	while (*p && (t = strstr(*p, "tfd:"))) {
		long long pos;
		unsigned sdev;
		*p = t + 4;
		if (sscanf(t, "tfd: %d events: %x data: %llx pos:%lli ino:%lx sdev:%x", fd, events, data, &pos, ino,
			   &sdev) == 6)
			return 1;
	}
	return 0;
}

/* Whether the file at fd target is the one epfd watches as tfd: kcmp
 * where the kernel has it, the inode otherwise. */
static int watches_file(const struct ckpt *c, const struct fd_view *target, int epfd, int tfd, unsigned long ino)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)epfd, .tfd = (uint32_t)tfd, .toff = 0 };
	long k = syscall(SYS_kcmp, c->pid, c->pid, KCMP_EPOLL_TFD, target->fd, &slot);

	if (k >= 0)
		return k == 0;
	return target->st.st_ino == ino;
}

static int check_epoll(struct ckpt *c, const struct fd_view *v, size_t n, const struct fd_view *ep)
{
	char name[64], *text;
	int rc;

	snprintf(name, sizeof(name), "fdinfo/%d", ep->fd);
	if ((rc = proc_read_file(c->procfd, name, &text, NULL)) < 0)
		return roam_fail(c->err, rc, "reading the epoll on fd %d", ep->fd);
	const char *p = text;
	int tfd;
	unsigned events;
	unsigned long long data;
	unsigned long ino;
	while (rc == 0 && next_watch(&p, &tfd, &events, &data, &ino)) {
		const struct fd_view *t = view_of(v, n, tfd);
		if (!t || !watches_file(c, t, ep->fd, tfd, ino))
			rc = roam_fail(c->err, -ROAM_E_REFUSED,
				       "epoll on fd %d watches a file added as fd %d, which is no longer open there",
				       ep->fd, tfd);
		else if (t->kind == ROAMIMG__FD_KIND__FD_EPOLL)
			rc = roam_fail(c->err, -ROAM_E_REFUSED, "epoll on fd %d watches another epoll (fd %d)", ep->fd,
				       tfd);
	}
	free(text);
	return rc;
}

int ckpt_check_objects(struct ckpt *c, struct fd_view *v, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		struct fd_view *f = &v[i];
		if (f->kind == ROAMIMG__FD_KIND__FD_EPOLL)
			rc = check_epoll(c, v, n, f);
		if (f->kind != ROAMIMG__FD_KIND__FD_SOCKPAIR)
			continue;
		int inside = 0;
		for (size_t j = 0; j < n && !inside; j++)
			if ((inside = S_ISSOCK(v[j].st.st_mode) && v[j].st.st_ino == f->sock.peer))
				f->peer_fd = v[j].fd;
		if (inside)
			continue;
		if (f->fd <= 2) {
			f->kind = ROAMIMG__FD_KIND__FD_EXTERNAL;
			continue;
		}
		rc = roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (connected outside the process)", f->fd);
	}
	return rc;
}

static int collect_eventfd(struct ckpt *c, const struct fd_view *f, const char *text, Roamimg__Fd *d)
{
	char v[64];

	if (proc_status_value(text, "eventfd-count", v, sizeof(v)))
		return roam_fail(c->err, -EPROTO, "eventfd on fd %d: no count in its fdinfo", f->fd);
	d->has_eventfd_count = 1;
	d->eventfd_count = strtoull(v, NULL, 16);
	/* Older kernels do not tell a semaphore from a counter. */
	if (proc_status_value(text, "eventfd-semaphore", v, sizeof(v)))
		return roam_fail(c->err, -ROAM_E_REFUSED, "eventfd on fd %d (this kernel does not tell its mode)",
				 f->fd);
	d->has_eventfd_semaphore = 1;
	d->eventfd_semaphore = atoi(v) != 0;
	return 0;
}

static int collect_timerfd(struct ckpt *c, const struct fd_view *f, const char *text, Roamimg__Fd *d)
{
	Roamimg__TimerFd *t = ARENA_NEW(c, Roamimg__TimerFd, roamimg__timer_fd__init);
	char v[64];
	unsigned long long vs, vns, is, ins;
	int ok = t != NULL;

	if (!t)
		return -ENOMEM;
	ok = ok && !proc_status_value(text, "clockid", v, sizeof(v));
	t->clockid = ok ? atoi(v) : 0;
	ok = ok && !proc_status_value(text, "ticks", v, sizeof(v));
	t->ticks = ok ? strtoull(v, NULL, 10) : 0;
	ok = ok && !proc_status_value(text, "settime flags", v, sizeof(v));
	t->settime_flags = ok ? (uint32_t)strtoul(v, NULL, 8) : 0;
	ok = ok && !proc_status_value(text, "it_value", v, sizeof(v)) && sscanf(v, "(%llu, %llu)", &vs, &vns) == 2;
	ok = ok && !proc_status_value(text, "it_interval", v, sizeof(v)) &&
	     sscanf(v, "(%llu, %llu)", &is, &ins) == 2;
	if (!ok)
		return roam_fail(c->err, -EPROTO, "timerfd on fd %d: its fdinfo lacks the timer", f->fd);
	t->value_ns = vs * 1000000000ull + vns;
	t->interval_ns = is * 1000000000ull + ins;
	d->timer = t;
	return 0;
}

static int collect_epoll(struct ckpt *c, const char *text, Roamimg__Fd *d)
{
	const char *p = text;
	size_t count = 0;
	int tfd;
	unsigned events;
	unsigned long long data;
	unsigned long ino;

	while (next_watch(&p, &tfd, &events, &data, &ino))
		count++;
	d->watches = arena_alloc(&c->arena, (count ? count : 1) * sizeof(*d->watches));
	if (!d->watches)
		return -ENOMEM;
	for (p = text; d->n_watches < count && next_watch(&p, &tfd, &events, &data, &ino);) {
		Roamimg__EpollWatch *w = ARENA_NEW(c, Roamimg__EpollWatch, roamimg__epoll_watch__init);
		if (!w)
			return -ENOMEM;
		w->fd = (uint32_t)tfd;
		w->events = events;
		w->data = data;
		d->watches[d->n_watches++] = w;
	}
	return 0;
}

/* One peek at s into buf; len, or a refusal. Descriptors in flight
 * (SCM_RIGHTS) cannot travel: a peek hands us copies, closed here. */
static ssize_t peek_once(struct ckpt *c, const struct fd_view *f, int s, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	ssize_t got = recvmsg(s, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	int in_flight = got >= 0 && (m.msg_flags & MSG_CTRUNC) != 0;

	if (got < 0)
		return errno == EAGAIN ? -EAGAIN : roam_fail(c->err, -errno, "peeking at the socket on fd %d", f->fd);
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			in_flight = 1;
			for (int *p = (int *)CMSG_DATA(h); (char *)(p + 1) <= (char *)h + h->cmsg_len; p++)
				close(*p);
		}
	if (in_flight)
		return roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (descriptors in flight in it)", f->fd);
	if ((size_t)got > len)
		return roam_fail(c->err, -EMSGSIZE, "a message of %zd bytes on the socket on fd %d", got, f->fd);
	return got;
}

/* A stream's queued bytes, in one peek. */
static int peek_stream(struct ckpt *c, const struct fd_view *f, int s, Roamimg__Fd *d)
{
	int queued = 0;

	if (ioctl(s, SIOCINQ, &queued) < 0)
		queued = (int)f->sock.rqueue;
	if (queued <= 0)
		return 0;
	uint8_t *data = arena_alloc(&c->arena, (size_t)queued);
	if (!data)
		return -ENOMEM;
	ssize_t got = peek_once(c, f, s, data, (size_t)queued);
	if (got < 0 && got != -EAGAIN)
		return (int)got;
	if (got != queued)
		return roam_fail(c->err, -EIO, "reading the %d bytes queued on the socket on fd %d", queued, f->fd);
	d->has_sock_queued = 1;
	d->sock_queued.data = data;
	d->sock_queued.len = (size_t)got;
	return 0;
}

/* A descriptor of our own on the process's open file description fd
 * (pidfd_getfd), or -errno. */
int ckpt_copy_fd(const struct ckpt *c, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0), s;

	if (pidfd < 0)
		return -errno;
	s = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	s = s < 0 ? -errno : s;
	close(pidfd);
	return s;
}

/* Whether msgs are all the queue holds: the kernel charges every queued
 * message to its sender's send buffer (SIOCOUTQ), so the peer's charge
 * must equal what the same messages cost a new pair. A peek offset skips
 * an empty message that was peeked at before (its "peeked" mark), so a
 * walk can miss one; this is how it shows. */
static int messages_complete(struct ckpt *c, const struct fd_view *f, const ProtobufCBinaryData *msgs, size_t n)
{
	int peer = ckpt_copy_fd(c, f->peer_fd), pair[2] = { -1, -1 }, big = 1 << 30;
	int charged = -1, replica = -2;

	if (peer >= 0 &&
	    ioctl(peer, SIOCOUTQ, &charged) == 0 && socketpair(AF_UNIX, f->sock.type | SOCK_CLOEXEC, 0, pair) == 0) {
		setsockopt(pair[1], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
		size_t i = 0;
		while (i < n && send(pair[1], msgs[i].data, msgs[i].len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)msgs[i].len)
			i++;
		if (i == n && ioctl(pair[1], SIOCOUTQ, &replica) < 0)
			replica = -2;
	}
	for (int k = 0; k < 2; k++)
		if (pair[k] >= 0)
			close(pair[k]);
	if (peer >= 0)
		close(peer);
	return charged == replica;
}

/* Each queued message in turn: the peek offset (SO_PEEK_OFF) walks the
 * queue, whole messages at a time, and is put back (-1: none) at once. */
static int peek_messages(struct ckpt *c, const struct fd_view *f, int s, Roamimg__Fd *d)
{
	enum { MAX_MSG = 1 << 20 };
	int zero = 0, none = -1, rc = 0;
	size_t n = 0, cap = 0;
	ProtobufCBinaryData *msgs = NULL;
	uint8_t *buf = malloc(MAX_MSG);

	if (!buf)
		return -ENOMEM;
	if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		free(buf);
		return roam_fail(c->err, -errno, "walking the messages queued on the socket on fd %d", f->fd);
	}
	for (;;) {
		ssize_t got = peek_once(c, f, s, buf, MAX_MSG);
		if (got == -EAGAIN)
			break;
		uint8_t *copy = got >= 0 ? arena_alloc(&c->arena, got ? (size_t)got : 1) : NULL;
		if (got >= 0 && n == cap) {
			ProtobufCBinaryData *more = realloc(msgs, (cap = cap ? 2 * cap : 16) * sizeof(*msgs));
			if (more)
				msgs = more;
			else
				copy = NULL;
		}
		if (got < 0 || !copy) {
			rc = got < 0 ? (int)got : -ENOMEM;
			break;
		}
		memcpy(copy, buf, (size_t)got);
		msgs[n++] = (ProtobufCBinaryData){ (size_t)got, copy };
	}
	setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none));
	free(buf);
	if (rc == 0 && !messages_complete(c, f, msgs, n))
		rc = roam_fail(c->err, -ROAM_E_REFUSED,
			       "socket on fd %d (it holds messages a peek does not list: empty ones peeked before)", f->fd);
	if (rc == 0 && n) {
		d->sock_messages = arena_alloc(&c->arena, n * sizeof(*msgs));
		if (!d->sock_messages)
			rc = -ENOMEM;
		else {
			memcpy(d->sock_messages, msgs, n * sizeof(*msgs));
			d->n_sock_messages = n;
		}
	}
	free(msgs);
	return rc;
}

/* The bytes or messages queued for this end to read, peeked through our
 * own copy of the descriptor: nothing is consumed. A peek offset the
 * program set would skip part of the queue. */
static int collect_sockpair(struct ckpt *c, const struct fd_view *f, Roamimg__Fd *d)
{
	int s = ckpt_copy_fd(c, f->fd), rc = 0, v;
	socklen_t vl = sizeof(v);

	if (s < 0)
		return roam_fail(c->err, s, "copying the socket on fd %d", f->fd);
	d->has_sock_type = d->has_pair_id = d->has_pair_end = 1;
	d->sock_type = (uint32_t)f->sock.type;
	d->pair_id = f->st.st_ino < f->sock.peer ? f->st.st_ino : f->sock.peer;
	d->pair_end = f->st.st_ino != d->pair_id;
	if (getsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, &vl) == 0)
		d->has_sndbuf = 1, d->sndbuf = (uint32_t)v;
	vl = sizeof(v);
	if (getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0)
		d->has_rcvbuf = 1, d->rcvbuf = (uint32_t)v;
	vl = sizeof(v);
	if (getsockopt(s, SOL_SOCKET, SO_PASSCRED, &v, &vl) == 0)
		d->has_passcred = 1, d->passcred = v != 0;
	vl = sizeof(v);
	if (getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, &vl) == 0 && v >= 0) {
		rc = roam_fail(c->err, -ROAM_E_REFUSED, "socket on fd %d (a peek offset is set)", f->fd);
		goto out;
	}
	if (f->sock.type == SOCK_STREAM)
		rc = peek_stream(c, f, s, d);
	else
		rc = peek_messages(c, f, s, d);
out:
	close(s);
	return rc;
}

/* A mount of the filesystem with kernel device number sdev (major << 20 |
 * minor, as fdinfo prints it) in the process's view, opened. */
static int open_mount_of(const struct ckpt *c, unsigned long sdev)
{
	char *text, want[32];
	int fd = -ENOENT;

	if (proc_read_file(c->procfd, "mountinfo", &text, NULL) < 0)
		return -EIO;
	snprintf(want, sizeof(want), " %lu:%lu ", sdev >> 20, sdev & 0xfffff);
	for (const char *l = text; l && *l && fd == -ENOENT; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *at = strstr(l, want), *end = strchr(l, '\n');
		char point[PATH_MAX];
		if (!at || (end && at > end))
			continue;
		/* "ID PARENT MAJ:MIN ROOT POINT ...": the mount point is the fifth field. */
		if (sscanf(at + strlen(want), "%*s %4095s", point) != 1)
			continue;
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "root%s", point);
		fd = openat(c->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);  /* not O_PATH: open_by_handle_at refuses one */
		if (fd < 0)
			fd = -errno;
	}
	free(text);
	return fd;
}

/* Without CAP_DAC_READ_SEARCH: the watched inode among what the process
 * holds open (tail -f holds the file it follows) or works in, by /proc;
 * its path into path. 0, or -ENOENT. */
static int held_path(const struct ckpt *c, dev_t dev, unsigned long ino, char *path, size_t cap)
{
	int *fds, rc = -ENOENT;
	size_t n;
	char name[32];
	struct stat st;

	if (fstatat(c->procfd, "cwd", &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino) {
		ssize_t l = readlinkat(c->procfd, "cwd", path, cap - 1);
		if (l > 0)
			return path[l] = '\0', 0;
	}
	if (proc_list_fds(c->procfd, &fds, &n) < 0)
		return -ENOENT;
	for (size_t i = 0; i < n && rc; i++) {
		snprintf(name, sizeof(name), "fd/%d", fds[i]);
		if (fstatat(c->procfd, name, &st, 0) < 0 || st.st_dev != dev || st.st_ino != ino)
			continue;
		ssize_t l = readlinkat(c->procfd, name, path, cap - 1);
		if (l > 0) {
			path[l] = '\0';
			rc = 0;
		}
	}
	free(fds);
	return rc;
}

/* The path of what one inotify watch watches: its file handle opened on its
 * filesystem (open_by_handle_at, which takes CAP_DAC_READ_SEARCH), named
 * by /proc; without that capability, a file or directory the process holds
 * open with the watch's inode. */
static int watch_path(struct ckpt *c, const struct fd_view *f, const char *line, Roamimg__InotifyWatch *w)
{
	unsigned long sdev, ino;
	unsigned bytes, mask;
	int wd, type, n = 0, mnt, fd, rc = 0;
	char hex[2 * MAX_HANDLE_SZ + 1];

	if (sscanf(line, "inotify wd:%d ino:%lx sdev:%lx mask:%x ignored_mask:%*x fhandle-bytes:%x fhandle-type:%x "
		   "f_handle:%256s%n", &wd, &ino, &sdev, &mask, &bytes, &type, hex, &n) < 7 || bytes > MAX_HANDLE_SZ ||
	    strlen(hex) != 2 * bytes)
		return roam_fail(c->err, -EPROTO, "inotify on fd %d: a watch its fdinfo does not describe", f->fd);
	union {
		struct file_handle h;
		unsigned char raw[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} fh;
	unsigned char *handle = fh.raw + offsetof(struct file_handle, f_handle);
	fh.h.handle_bytes = bytes;
	fh.h.handle_type = type;
	for (unsigned i = 0; i < bytes; i++)
		sscanf(hex + 2 * i, "%2hhx", &handle[i]);
	if ((mnt = open_mount_of(c, sdev)) < 0)
		return roam_fail(c->err, -ROAM_E_REFUSED, "inotify on fd %d: the filesystem of watch %d is not mounted",
				 f->fd, wd);
	char link[64], path[PATH_MAX];
	struct stat st;
	ssize_t l = -1;
	fd = open_by_handle_at(mnt, &fh.h, O_PATH | O_CLOEXEC);
	if (fd < 0 && errno == EPERM && held_path(c, makedev(sdev >> 20, sdev & 0xfffff), ino, path, sizeof(path)) == 0)
		fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		rc = roam_fail(c->err, -ROAM_E_REFUSED, "inotify on fd %d: what watch %d watches cannot be found (%s%s)",
			       f->fd, wd, strerror(errno),
			       errno == EPERM ? ": naming a file the process does not hold open needs CAP_DAC_READ_SEARCH"
					      : "");
	if (rc == 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		l = readlink(link, path, sizeof(path) - 1);
		if (l <= 0 || fstat(fd, &st) < 0)
			rc = roam_fail(c->err, -EIO, "inotify on fd %d: naming what watch %d watches", f->fd, wd);
	}
	if (rc == 0) {
		path[l] = '\0';
		if (strstr(path, " (deleted)") || path[0] != '/')
			rc = roam_fail(c->err, -ROAM_E_REFUSED, "inotify on fd %d: watch %d watches a deleted file", f->fd,
				       wd);
	}
	if (rc == 0) {
		w->wd = wd;
		/* A symbolic link is watched itself only when it was added so. */
		w->mask = mask | (S_ISLNK(st.st_mode) ? IN_DONT_FOLLOW : 0);
		w->path = arena_strdup(&c->arena, path);
		rc = w->path ? 0 : -ENOMEM;
	}
	if (fd >= 0)
		close(fd);
	close(mnt);
	return rc;
}

static int cmp_wd(const void *a, const void *b)
{
	const Roamimg__InotifyWatch *x = *(Roamimg__InotifyWatch *const *)a, *y = *(Roamimg__InotifyWatch *const *)b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

/* Every watch, by wd. Events already queued would be lost: refused. */
static int collect_inotify(struct ckpt *c, const struct fd_view *f, const char *text, Roamimg__Fd *d)
{
	int s = ckpt_copy_fd(c, f->fd), queued = 0, rc = 0;
	size_t n = 0;

	if (s < 0 || ioctl(s, FIONREAD, &queued) < 0)
		rc = roam_fail(c->err, s < 0 ? s : -errno, "reading the inotify on fd %d", f->fd);
	else if (queued > 0)
		rc = roam_fail(c->err, -ROAM_E_REFUSED, "inotify on fd %d (%d bytes of events not read yet)", f->fd,
			       queued);
	if (s >= 0)
		close(s);
	for (const char *p = text; rc == 0 && (p = strstr(p, "inotify wd:")); p++)
		n++;
	d->inotify = rc == 0 ? arena_alloc(&c->arena, (n ? n : 1) * sizeof(*d->inotify)) : NULL;
	if (rc == 0 && !d->inotify)
		rc = -ENOMEM;
	for (const char *p = text; rc == 0 && d->n_inotify < n && (p = strstr(p, "inotify wd:")); p++) {
		Roamimg__InotifyWatch *w = ARENA_NEW(c, Roamimg__InotifyWatch, roamimg__inotify_watch__init);
		if (!w)
			return -ENOMEM;
		if ((rc = watch_path(c, f, p, w)) == 0)
			d->inotify[d->n_inotify++] = w;
	}
	if (rc == 0)
		qsort(d->inotify, d->n_inotify, sizeof(*d->inotify), cmp_wd);
	return rc;
}

int ckpt_collect_object(struct ckpt *c, const struct fd_view *f, Roamimg__Fd *d)
{
	char name[64], *text = NULL, v[64];
	int rc;

	if (f->kind == ROAMIMG__FD_KIND__FD_SOCKPAIR)
		return collect_sockpair(c, f, d);
	if (f->kind == ROAMIMG__FD_KIND__FD_INET) {
		rc = ckpt_inet_read(c, f, d);
		return rc > 0 ? roam_fail(c->err, -ROAM_E_TARGET, "fd %d is no longer a TCP or UDP socket", f->fd) : rc;
	}
	snprintf(name, sizeof(name), "fdinfo/%d", f->fd);
	if ((rc = proc_read_file(c->procfd, name, &text, NULL)) < 0)
		return roam_fail(c->err, rc, "reading fd %d of pid %d", f->fd, c->pid);
	switch (f->kind) {
	case ROAMIMG__FD_KIND__FD_EVENTFD:
		rc = collect_eventfd(c, f, text, d);
		break;
	case ROAMIMG__FD_KIND__FD_SIGNALFD:
		if (proc_status_value(text, "sigmask", v, sizeof(v))) {
			rc = roam_fail(c->err, -EPROTO, "signalfd on fd %d: no mask in its fdinfo", f->fd);
			break;
		}
		d->has_sigmask = 1;
		d->sigmask = strtoull(v, NULL, 16);
		break;
	case ROAMIMG__FD_KIND__FD_TIMERFD:
		rc = collect_timerfd(c, f, text, d);
		break;
	case ROAMIMG__FD_KIND__FD_EPOLL:
		rc = collect_epoll(c, text, d);
		break;
	case ROAMIMG__FD_KIND__FD_INOTIFY:
		rc = collect_inotify(c, f, text, d);
		break;
	default:
		break;
	}
	free(text);
	return rc;
}
