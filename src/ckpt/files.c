/*
 * File descriptors. Supported: regular files, directories, memory character
 * devices (/dev/null, /dev/urandom...), pipes whose both ends are in the
 * process (with the bytes queued in them), the objects of fdobj.c (eventfd,
 * signalfd, timerfd, epoll, socket pairs), TCP and UDP sockets that carry
 * no connection (inet.c), the file locks held through
 * files and directories (flock, POSIX and OFD), and anything on fds 0-2, which
 * restore rebinds to its own stdio when it cannot reopen it. Descriptors that
 * share one open file description (dup, 2>&1) are found with kcmp and keep
 * sharing it after restore.
 */
#include "ckpt/internal.h"
#include "image/load.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int is_tty_major(unsigned major)
{
	return major == 4 || major == 5 || (major >= 136 && major <= 143);
}

/* The kind of one descriptor, or a refusal naming it. */
static int classify_fd(struct ckpt *c, struct fd_view *f)
{
	const char *l = f->link;

	if (!strncmp(l, "anon_inode:", 11))
		return ckpt_classify_anon(c, f, l + 11);
	if (S_ISSOCK(f->st.st_mode) || !strncmp(l, "socket:", 7))
		return ckpt_classify_socket(c, f);
	if (S_ISFIFO(f->st.st_mode)) {
		if (!strncmp(l, "pipe:", 5))
			return f->kind = ROAMIMG__FD_KIND__FD_PIPE, 0;  /* both ends checked later */
		if (f->fd <= 2)
			return f->kind = ROAMIMG__FD_KIND__FD_EXTERNAL, 0;
		return roam_fail(c->err, -ROAM_E_REFUSED, "named pipe %s on fd %d", l, f->fd);
	}
	if (S_ISCHR(f->st.st_mode)) {
		if (major(f->st.st_rdev) == 1)
			return f->kind = ROAMIMG__FD_KIND__FD_CHR, 0;
		if (is_tty_major(major(f->st.st_rdev)) && f->fd <= 2)
			return f->kind = ROAMIMG__FD_KIND__FD_EXTERNAL, 0;
		if (is_tty_major(major(f->st.st_rdev)))
			return roam_fail(c->err, -ROAM_E_REFUSED, "terminal %s on fd %d", l, f->fd);
		return roam_fail(c->err, -ROAM_E_REFUSED, "character device %s on fd %d", l, f->fd);
	}
	if (S_ISDIR(f->st.st_mode))
		return f->kind = ROAMIMG__FD_KIND__FD_DIR, 0;
	if (!S_ISREG(f->st.st_mode))
		return roam_fail(c->err, -ROAM_E_REFUSED, "%s on fd %d (unsupported file type)", l, f->fd);
	if (!strncmp(l, "/memfd:", 7))
		return roam_fail(c->err, -ROAM_E_REFUSED, "memfd on fd %d", f->fd);
	if (strstr(l, " (deleted)"))
		return roam_fail(c->err, -ROAM_E_REFUSED, "deleted file %s on fd %d", l, f->fd);
	struct stat byname;
	if (l[0] != '/' || stat(l, &byname) < 0 || byname.st_ino != f->st.st_ino || byname.st_dev != f->st.st_dev)
		return roam_fail(c->err, -ROAM_E_REFUSED, "file on fd %d is not reachable by its path %s", f->fd, l);
	return f->kind = ROAMIMG__FD_KIND__FD_REG, 0;
}

int ckpt_read_views(struct ckpt *c, struct fd_view **out, size_t *n)
{
	int *fds;
	size_t cnt;
	int rc = proc_list_fds(c->procfd, &fds, &cnt);

	if (rc < 0)
		return roam_fail(c->err, rc, "listing the fds of pid %d", c->pid);
	struct fd_view *v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v) {
		free(fds);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < cnt; i++) {
		char name[64];
		struct fd_view *f = &v[k];
		f->fd = fds[i];
		snprintf(name, sizeof(name), "fd/%d", fds[i]);
		ssize_t l = readlinkat(c->procfd, name, f->link, sizeof(f->link) - 1);
		if (l < 0 || fstatat(c->procfd, name, &f->st, 0) < 0 ||
		    proc_read_fdinfo(c->procfd, fds[i], &f->info) < 0) {
			if (errno == ENOENT)
				continue;  /* closed meanwhile (only possible before the freeze) */
			rc = roam_fail(c->err, -errno, "reading fd %d of pid %d", fds[i], c->pid);
			break;
		}
		f->link[l] = '\0';
		k++;
	}
	free(fds);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

/* Pipes: both ends must be in the process, or the pipe is stdio. */
static int check_pipes(struct ckpt *c, struct fd_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind != ROAMIMG__FD_KIND__FD_PIPE || ckpt_tree_pipe(c, v[i].st.st_ino))
			continue;  /* a pipe between processes of a tree: both ends are in it */
		if (c->opts.tree && !c->shares_known)
			continue;  /* the tree is not known before the freeze */
		int rd = 0, wr = 0;
		for (size_t j = 0; j < n; j++) {
			if (v[j].kind != ROAMIMG__FD_KIND__FD_PIPE || v[j].st.st_ino != v[i].st.st_ino)
				continue;
			if ((v[j].info.flags & O_ACCMODE) == O_RDONLY)
				rd = 1;
			else
				wr = 1;
		}
		if (rd && wr)
			continue;
		if (v[i].fd <= 2) {
			v[i].kind = ROAMIMG__FD_KIND__FD_EXTERNAL;
			continue;
		}
		return roam_fail(c->err, -ROAM_E_REFUSED, "pipe on fd %d whose other end is outside the process",
				 v[i].fd);
	}
	return 0;
}

/*
 * The locks held through f, read again from its fdinfo: flock and OFD locks
 * of its open file description, the process's POSIX locks taken through it.
 * Files and directories only, and no lease (its break is the kernel's
 * business with another process). With d, into d->locks.
 */
static int read_locks(struct ckpt *c, const struct fd_view *f, Roamimg__Fd *d)
{
	static const Roamimg__LockKind kinds[] = {
		[PROC_LOCK_FLOCK] = ROAMIMG__LOCK_KIND__LOCK_FLOCK,
		[PROC_LOCK_POSIX] = ROAMIMG__LOCK_KIND__LOCK_POSIX,
		[PROC_LOCK_OFD] = ROAMIMG__LOCK_KIND__LOCK_OFD,
	};
	struct proc_lock *v;
	size_t n;
	int rc;

	if (f->kind != ROAMIMG__FD_KIND__FD_REG && f->kind != ROAMIMG__FD_KIND__FD_DIR)
		return roam_fail(c->err, -ROAM_E_REFUSED, "file lock on fd %d (%s), which is not a file", f->fd,
				 f->link);
	if ((rc = proc_read_locks(c->procfd, f->fd, &v, &n)) < 0)
		return roam_fail(c->err, rc, "reading the locks of fd %d", f->fd);
	if (d && n && !(d->locks = arena_alloc(&c->arena, n * sizeof(*d->locks))))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (v[i].kind == PROC_LOCK_OTHER) {
			rc = roam_fail(c->err, -ROAM_E_REFUSED, "%s on fd %d (%s)",
				       !strcmp(v[i].what, "LEASE") ? "file lease" : !strcmp(v[i].what, "DELEG") ? "delegation"
					       : "file lock of an unknown kind", f->fd, f->link);
			break;
		}
		if (!d)
			continue;
		Roamimg__FileLock *l = ARENA_NEW(c, Roamimg__FileLock, roamimg__file_lock__init);
		if (!l) {
			rc = -ENOMEM;
			break;
		}
		l->kind = kinds[v[i].kind];
		l->write = v[i].write != 0;
		l->start = v[i].start;
		l->has_end = v[i].end != UINT64_MAX;
		l->end = l->has_end ? v[i].end : 0;
		d->locks[d->n_locks++] = l;
	}
	free(v);
	return rc;
}

static int classify_all(struct ckpt *c, struct fd_view **out, size_t *n)
{
	int rc = ckpt_read_views(c, out, n);

	for (size_t i = 0; rc == 0 && i < *n; i++)
		rc = classify_fd(c, &(*out)[i]);
	for (size_t i = 0; rc == 0 && i < *n; i++)
		if ((*out)[i].info.locks)
			rc = read_locks(c, &(*out)[i], NULL);
	if (rc == 0)
		rc = check_pipes(c, *out, *n);
	if (rc == 0)
		rc = ckpt_check_objects(c, *out, *n);
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

int ckpt_check_fds(struct ckpt *c)
{
	struct fd_view *v;
	size_t n;
	int rc = classify_all(c, &v, &n);

	if (rc == 0)
		free(v);
	return rc;
}

/* The bytes queued in a pipe, copied without consuming them: tee(2) from a
 * descriptor of our own on the same pipe into a pipe of equal capacity. */
int ckpt_peek_pipe(struct ckpt *c, int fd, Roamimg__Fd *out)
{
	char name[64];
	int ours = -1, tmp[2] = { -1, -1 }, rc = 0;

	snprintf(name, sizeof(name), "fd/%d", fd);
	ours = openat(c->procfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (ours < 0)
		return roam_fail(c->err, -errno, "opening the pipe on fd %d", fd);
	int size = fcntl(ours, F_GETPIPE_SZ);
	out->has_pipe_size = 1;
	out->pipe_size = (uint32_t)(size > 0 ? size : 65536);
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0 || fcntl(tmp[1], F_SETPIPE_SZ, size) < 0) {
		rc = roam_fail(c->err, -errno, "making a pipe to copy fd %d", fd);
		goto out;
	}
	ssize_t got = tee(ours, tmp[1], (size_t)size, SPLICE_F_NONBLOCK);
	if (got < 0 && errno != EAGAIN) {
		rc = roam_fail(c->err, -errno, "copying the data queued in the pipe on fd %d", fd);
		goto out;
	}
	if (got > 0) {
		uint8_t *data = arena_alloc(&c->arena, (size_t)got);
		if (!data || read(tmp[0], data, (size_t)got) != got) {
			rc = roam_fail(c->err, -EIO, "reading the data queued in the pipe on fd %d", fd);
			goto out;
		}
		out->has_pipe_data = 1;
		out->pipe_data.data = data;
		out->pipe_data.len = (size_t)got;
	}
out:
	if (tmp[0] >= 0)
		close(tmp[0]);
	if (tmp[1] >= 0)
		close(tmp[1]);
	close(ours);
	return rc;
}

/* Whether f is a file or directory under /proc/PID/task/TID of one of the
 * process's threads: then the length of that prefix (what follows is
 * "/..." or nothing), and the thread's index. */
static int task_file_of(const struct ckpt *c, const struct fd_view *f, size_t *thread)
{
	if (f->kind != ROAMIMG__FD_KIND__FD_REG && f->kind != ROAMIMG__FD_KIND__FD_DIR)
		return -1;
	for (size_t i = 0; i < c->nthreads; i++) {
		char task[64];
		int tl = snprintf(task, sizeof(task), "/proc/%d/task/%d", c->pid, c->threads[i].tid);
		if (!strncmp(f->link, task, (size_t)tl) && (f->link[tl] == '/' || f->link[tl] == 0)) {
			*thread = i;
			return tl;
		}
	}
	return -1;
}

/* Orders descriptors by inode, then by their open file descriptions in
 * the kernel's order (kcmp KCMP_FILE gives one): descriptors that share a
 * description end up side by side. kcmp refused: by descriptor number,
 * every description apart. */
static int cmp_description(const void *a, const void *b, void *pid)
{
	const struct fd_view *x = *(const struct fd_view *const *)a, *y = *(const struct fd_view *const *)b;
	pid_t p = *(const pid_t *)pid;

	if (x->st.st_dev != y->st.st_dev)
		return x->st.st_dev < y->st.st_dev ? -1 : 1;
	if (x->st.st_ino != y->st.st_ino)
		return x->st.st_ino < y->st.st_ino ? -1 : 1;
	if (x->fd == y->fd)
		return 0;
	long k = syscall(SYS_kcmp, p, p, KCMP_FILE, x->fd, y->fd);
	if (k == 0 || k == 1 || k == 2)
		return k == 0 ? 0 : k == 1 ? -1 : 1;
	return x->fd < y->fd ? -1 : 1;
}

/* leader[i]: the first of v[0..n) that shares v[i]'s open file description
 * (dup, 2>&1), i itself when none before it does. One sort, not a kcmp of
 * every pair of descriptors of one file: a process may hold thousands. */
static int description_leaders(const struct ckpt *c, const struct fd_view *v, size_t n, size_t *leader)
{
	const struct fd_view **by = malloc((n ? n : 1) * sizeof(*by));
	pid_t pid = c->pid;

	if (!by)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		by[i] = &v[i];
	qsort_r(by, n, sizeof(*by), cmp_description, &pid);
	for (size_t i = 0, j; i < n; i = j) {
		size_t first = (size_t)(by[i] - v);
		for (j = i + 1; j < n && cmp_description(&by[j - 1], &by[j], &pid) == 0; j++)
			if ((size_t)(by[j] - v) < first)
				first = (size_t)(by[j] - v);
		for (size_t k = i; k < j; k++)
			leader[by[k] - v] = first;
	}
	free(by);
	return 0;
}

/* d shares leader's open file description: the object's settings are the
 * same (restore makes it once, from the first); what is queued in it
 * travels with the first alone. */
static void same_object(Roamimg__Fd *d, const Roamimg__Fd *leader)
{
	d->has_eventfd_count = leader->has_eventfd_count;
	d->eventfd_count = leader->eventfd_count;
	d->has_eventfd_semaphore = leader->has_eventfd_semaphore;
	d->eventfd_semaphore = leader->eventfd_semaphore;
	d->has_sigmask = leader->has_sigmask;
	d->sigmask = leader->sigmask;
	d->timer = leader->timer;
	d->n_watches = leader->n_watches;
	d->watches = leader->watches;
	d->n_inotify = leader->n_inotify;
	d->inotify = leader->inotify;
	d->has_sock_type = leader->has_sock_type;
	d->sock_type = leader->sock_type;
	d->has_pair_id = leader->has_pair_id;
	d->pair_id = leader->pair_id;
	d->has_pair_end = leader->has_pair_end;
	d->pair_end = leader->pair_end;
	d->has_sndbuf = leader->has_sndbuf;
	d->sndbuf = leader->sndbuf;
	d->has_rcvbuf = leader->has_rcvbuf;
	d->rcvbuf = leader->rcvbuf;
	d->has_passcred = leader->has_passcred;
	d->passcred = leader->passcred;
	d->inet = leader->inet;
}

int ckpt_collect_files(struct ckpt *c)
{
	struct fd_view *v;
	size_t n;
	int rc = classify_all(c, &v, &n);

	if (rc < 0)
		return rc;
	Roamimg__Files *files = ARENA_NEW(c, Roamimg__Files, roamimg__files__init);
	Roamimg__Fd **fds = arena_alloc(&c->arena, (n ? n : 1) * sizeof(*fds));
	int *ids = calloc(n ? n : 1, sizeof(int));
	size_t *leader = malloc((n ? n : 1) * sizeof(size_t));
	if (!files || !fds || !ids || !leader || description_leaders(c, v, n, leader) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	c->files = files;
	files->fds = fds;
	uint32_t next_id = 1;
	for (size_t i = 0; i < n; i++) {
		struct fd_view *f = &v[i];
		Roamimg__Fd *d = ARENA_NEW(c, Roamimg__Fd, roamimg__fd__init);
		if (!d) {
			rc = -ENOMEM;
			goto out;
		}
		/* Same open file description as an earlier fd? */
		ids[i] = leader[i] < i ? ids[leader[i]] : (int)next_id++;
		d->fd = (uint32_t)f->fd;
		d->kind = f->kind;
		d->file_id = (uint32_t)ids[i];
		d->path = arena_strdup(&c->arena, f->link);
		/* The process's own /proc files and directories (an
		 * opendir("/proc/self/fd") to list its descriptors) are its own
		 * again after restore, whatever its PID then. */
		char own[32];
		size_t ol = (size_t)snprintf(own, sizeof(own), "/proc/%d", c->pid);
		int is_own = (f->kind == ROAMIMG__FD_KIND__FD_REG || f->kind == ROAMIMG__FD_KIND__FD_DIR) &&
			     !strncmp(f->link, own, ol) && (f->link[ol] == '/' || f->link[ol] == 0);
		size_t thread;
		int task = task_file_of(c, f, &thread);
		if (task >= 0) {
			/* A thread's own files: opened again by that thread once
			 * restored, whatever its TID then. */
			char self[PATH_MAX];
			snprintf(self, sizeof(self), "/proc/thread-self%s", f->link + task);
			d->path = arena_strdup(&c->arena, self);
			d->has_task_tid = 1;
			d->task_tid = c->threads[thread].tid;
		} else if (is_own) {
			char self[PATH_MAX];
			snprintf(self, sizeof(self), "/proc/self%s", f->link + ol);
			d->path = arena_strdup(&c->arena, self);
		}
		d->has_flags = d->has_pos = d->has_cloexec = 1;
		d->flags = f->info.flags & ~(uint32_t)O_CLOEXEC;
		d->cloexec = (f->info.flags & O_CLOEXEC) != 0;
		d->pos = f->info.pos;
		/* An object is read once, through the first descriptor of its
		 * description: a second walk of a datagram queue would not see an
		 * empty message the first one peeked at. */
		if (f->kind >= ROAMIMG__FD_KIND__FD_EVENTFD && leader[i] < i)
			same_object(d, fds[leader[i]]);
		else if (f->kind >= ROAMIMG__FD_KIND__FD_EVENTFD && (rc = ckpt_collect_object(c, f, d)) < 0)
			goto out;
		/* Shared with another process of a tree: made once, in the root. */
		d->shared_id = ckpt_tree_shared(c, f->fd);
		d->has_shared_id = d->shared_id != 0;
		/* A socket the workers of a pre-forking server all accept on
		 * is made once, as a file is; other objects are not. */
		if (d->shared_id && f->kind >= ROAMIMG__FD_KIND__FD_EVENTFD && f->kind != ROAMIMG__FD_KIND__FD_INET) {
			rc = roam_fail(c->err, -ROAM_E_REFUSED, "%s on fd %d of process %d is shared with another "
				       "process of the tree", img_fd_kind_name(f->kind), f->fd, c->pid);
			goto out;
		}
		if (c->tree_child && f->kind == ROAMIMG__FD_KIND__FD_EXTERNAL && !d->shared_id) {
			rc = roam_fail(c->err, -ROAM_E_REFUSED, "fd %d of process %d (%s) leads outside the process "
				       "tree, and not through its root", f->fd, c->pid, f->link);
			goto out;
		}
		/* Locks belong to the description (POSIX ones to the process, on
		 * its file): every descriptor of it shows them, the first keeps them. */
		if (f->info.locks && leader[i] == i && (rc = read_locks(c, f, d)) < 0)
			goto out;
		if (f->kind == ROAMIMG__FD_KIND__FD_CHR) {
			d->has_rdev = 1;
			d->rdev = f->st.st_rdev;
		}
		if (f->kind == ROAMIMG__FD_KIND__FD_EXTERNAL) {
			d->external = d->path;
			/* Stdin from an outside pipe: what the process has not read yet
			 * travels too, for a restorer that rebinds stdin to a pipe of its
			 * own (restore_stdio_data), once per pipe. */
			int first = S_ISFIFO(f->st.st_mode) && !strncmp(f->link, "pipe:", 5) &&
				    (f->info.flags & O_ACCMODE) == O_RDONLY && !c->tree_child;
			for (size_t j = 0; first && j < i; j++)
				first = !(v[j].st.st_ino == f->st.st_ino && v[j].st.st_dev == f->st.st_dev);
			if (first && (rc = ckpt_peek_pipe(c, f->fd, d)) < 0)
				goto out;
		}
		if (f->kind == ROAMIMG__FD_KIND__FD_PIPE) {
			d->has_pipe_id = d->has_pipe_write_end = 1;
			d->pipe_id = f->st.st_ino;
			d->pipe_write_end = (f->info.flags & O_ACCMODE) != O_RDONLY;
			/* The queued bytes travel once per pipe, with its first read end
			 * that does not share a description with an earlier fd. */
			int first = !d->pipe_write_end && !ckpt_tree_pipe(c, f->st.st_ino);
			for (size_t j = 0; first && j < i; j++)
				if (v[j].kind == ROAMIMG__FD_KIND__FD_PIPE && v[j].st.st_ino == f->st.st_ino &&
				    (v[j].info.flags & O_ACCMODE) == O_RDONLY)
					first = 0;
			if (first && (rc = ckpt_peek_pipe(c, f->fd, d)) < 0)
				goto out;
		}
		fds[files->n_fds++] = d;
	}
	c->stats.fds = (uint32_t)files->n_fds;
out:
	free(ids);
	free(leader);
	free(v);
	return rc;
}
