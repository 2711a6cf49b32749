/*
 * Process trees (ckpt.h, ckpt_tree_*): a process and its descendants, each
 * checkpointed as one process is (struct ckpt), plus what only the tree as
 * a whole tells:
 *
 *   who descends from whom   found top down at the freeze: a process is
 *                            frozen before its children are listed, so
 *                            none can appear unseen
 *   sessions, groups         each one its parent's, or its own, or (a
 *                            group) that of a process restored before it
 *   what they share          open file descriptions held by several
 *                            processes (kcmp across them), and pipes
 *                            between them: each gets a shared id; the root
 *                            carries one description of each
 *                            (Files.tree_objects), which a restore makes
 *                            before any child and every process inherits
 */
#include "ckpt/internal.h"
#include "image/load.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ckpt_tree {
	struct ckpt_opts opts;
	struct roam_error *err;
	struct ckpt **c;        /* depth first, children by pid: c[0] is the root */
	size_t *parent;         /* index of each one's parent (the root: 0) */
	size_t n, cap;
	uint64_t *pipes;        /* the tree pipes, each member's tree_pipes */
	size_t npipes;
};

/* One descriptor of one process of the tree. */
struct view {
	size_t m;               /* index of its process */
	int fd;
	struct stat st;
	int acc;                /* O_ACCMODE of its open flags */
};

static int add(struct ckpt_tree *t, pid_t pid, size_t parent)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		struct ckpt **c = realloc(t->c, cap * sizeof(*c));
		if (c)
			t->c = c;
		size_t *p = realloc(t->parent, cap * sizeof(*p));
		if (p)
			t->parent = p;
		if (!c || !p)
			return -ENOMEM;
		t->cap = cap;
	}
	int rc = ckpt_open(&t->c[t->n], pid, &t->opts, t->err);
	if (rc < 0)
		return rc;
	t->c[t->n]->tree_child = t->n > 0;
	t->parent[t->n] = parent;
	t->n++;
	return 0;
}

int ckpt_tree_open(struct ckpt_tree **out, pid_t root, const struct ckpt_opts *opts, struct roam_error *err)
{
	struct ckpt_tree *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	t->opts = *opts;
	t->opts.tree = 1;
	t->err = err;
	if ((rc = add(t, root, 0)) < 0) {
		ckpt_tree_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

struct ckpt *ckpt_tree_root(struct ckpt_tree *t)
{
	return t->c[0];
}

size_t ckpt_tree_size(const struct ckpt_tree *t)
{
	return t->n;
}

/* A child about to be taken: neither a zombie nor one that tells its end
 * with another signal than SIGCHLD. */
static int check_child(struct ckpt_tree *t, pid_t kid, pid_t parent)
{
	int dirfd = proc_open(kid), rc = 0;
	struct proc_stat st;

	if (dirfd < 0 || proc_parse_stat(dirfd, &st) < 0)
		rc = dirfd < 0 ? 0 : roam_fail(t->err, -errno, "reading the state of process %d", kid);
	else if (st.state == 'Z' || st.state == 'X')
		rc = roam_fail(t->err, -ROAM_E_REFUSED, "child process %d of %d has ended and is not reaped yet "
			       "(a zombie)", kid, parent);
	else if (st.exit_signal != SIGCHLD)
		rc = roam_fail(t->err, -ROAM_E_REFUSED, "child process %d tells its end to %d with signal %d, "
			       "not SIGCHLD", kid, parent, st.exit_signal);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int ckpt_tree_check(struct ckpt_tree *t, int every_flag)
{
	pid_t *todo = malloc(sizeof(*todo)), *kids;
	size_t n = 1, nkids;
	int rc = ckpt_check(t->c[0], every_flag);

	if (!todo)
		return -ENOMEM;
	todo[0] = t->c[0]->pid;
	/* Down the tree as it is now, nothing frozen: each process checked as
	 * the freeze would check it (which does it again, for good). */
	while (rc == 0 && n > 0) {
		pid_t parent = todo[--n];
		int dirfd = proc_open(parent);
		if (dirfd < 0 || proc_list_children(dirfd, &kids, &nkids) < 0) {
			if (dirfd >= 0)
				close(dirfd);
			continue;   /* gone meanwhile: the freeze will tell */
		}
		close(dirfd);
		pid_t *grown = realloc(todo, (n + nkids + 1) * sizeof(*todo));
		if (!grown)
			rc = -ENOMEM;
		else
			todo = grown;
		for (size_t k = 0; rc == 0 && k < nkids; k++) {
			struct ckpt *c;
			if ((rc = check_child(t, kids[k], parent)) < 0)
				break;
			if (ckpt_open(&c, kids[k], &t->opts, t->err) < 0)
				continue;
			c->tree_child = 1;
			rc = ckpt_check(c, every_flag);
			ckpt_close(c);
			todo[n++] = kids[k];
		}
		free(kids);
	}
	free(todo);
	return rc;
}

/* Freezes the children of c[i], and theirs, depth first. */
static int freeze_below(struct ckpt_tree *t, size_t i)
{
	pid_t *kids;
	size_t nkids;
	int rc = proc_list_children(t->c[i]->procfd, &kids, &nkids);

	if (rc < 0)
		return roam_fail(t->err, rc, "listing the children of process %d", t->c[i]->pid);
	if (nkids && t->c[0]->pre)
		rc = roam_fail(t->err, -ROAM_E_REFUSED, "child process %d: a process tree is not checkpointed live "
			       "(--live) yet", kids[0]);
	for (size_t k = 0; rc == 0 && k < nkids; k++) {
		size_t j = t->n;
		if ((rc = check_child(t, kids[k], t->c[i]->pid)) < 0 || (rc = add(t, kids[k], i)) < 0 ||
		    (rc = ckpt_check(t->c[j], 0)) < 0 ||
		    (rc = ckpt_freeze(t->c[j])) < 0)
			break;
		rc = freeze_below(t, j);
	}
	free(kids);
	return rc;
}

/* Whether a restore can give c[j] its session and process group back:
 * its own, its parent's, or (a group) one a process restored before it
 * leads in the same session. */
static int check_groups(struct ckpt_tree *t, struct proc_stat *st)
{
	for (size_t j = 0; j < t->n; j++)
		if (proc_parse_stat(t->c[j]->procfd, &st[j]) < 0)
			return roam_fail(t->err, -errno, "reading the state of process %d", t->c[j]->pid);
	for (size_t j = 1; j < t->n; j++) {
		pid_t pid = t->c[j]->pid;
		const struct proc_stat *p = &st[t->parent[j]];
		if (st[j].session != pid && st[j].session != p->session)
			return roam_fail(t->err, -ROAM_E_REFUSED, "process %d is in session %d, neither its own nor its "
					 "parent's", pid, st[j].session);
		if (st[j].pgrp == pid || st[j].pgrp == p->pgrp)
			continue;
		size_t k = 0;
		while (k < j && !(t->c[k]->pid == st[j].pgrp && st[k].pgrp == t->c[k]->pid &&
				  st[k].session == st[j].session))
			k++;
		if (k == j)
			return roam_fail(t->err, -ROAM_E_REFUSED, "process %d is in process group %d, which is neither "
					 "its own nor its parent's, nor led by a process of the tree before it", pid,
					 st[j].pgrp);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_share(const void *a, const void *b)
{
	const struct tree_share *x = a, *y = b;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* By file, then by open file description in the kernel's order (kcmp). */
static int cmp_view(const void *a, const void *b, void *arg)
{
	const struct view *x = a, *y = b;
	struct ckpt_tree *t = arg;

	if (x->st.st_dev != y->st.st_dev)
		return x->st.st_dev < y->st.st_dev ? -1 : 1;
	if (x->st.st_ino != y->st.st_ino)
		return x->st.st_ino < y->st.st_ino ? -1 : 1;
	if (x->m == y->m && x->fd == y->fd)
		return 0;
	long k = syscall(SYS_kcmp, t->c[x->m]->pid, t->c[y->m]->pid, KCMP_FILE, x->fd, y->fd);
	return k == 0 ? 0 : k == 1 ? -1 : 1;
}

static int read_views(struct ckpt_tree *t, struct view **out, size_t *n)
{
	struct view *v = NULL;
	size_t k = 0;
	int rc = 0;

	for (size_t m = 0; rc == 0 && m < t->n; m++) {
		struct fd_view *fv;
		size_t nfv;
		if ((rc = ckpt_read_views(t->c[m], &fv, &nfv)) < 0)
			break;
		struct view *grown = realloc(v, (k + nfv + 1) * sizeof(*v));
		if (!grown)
			rc = -ENOMEM;
		else
			v = grown;
		for (size_t i = 0; rc == 0 && i < nfv; i++)
			v[k++] = (struct view){ .m = m, .fd = fv[i].fd, .st = fv[i].st, .acc = (int)(fv[i].info.flags & O_ACCMODE) };
		free(fv);
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

/*
 * Which descriptors several processes hold (one open file description),
 * and which pipes run between processes: every description of such a pipe
 * is shared too, whoever holds it, since the pipe is made once. Each member
 * gets its (fd, id) list; rep[id] is the first process and fd holding it.
 */
static int find_shares(struct ckpt_tree *t, struct view **rep, size_t *nids)
{
	struct view *v;
	size_t n, ngroups = 0;
	int rc = read_views(t, &v, &n);

	if (rc < 0)
		return rc;
	long probe = n > 1 ? syscall(SYS_kcmp, t->c[0]->pid, t->c[0]->pid, KCMP_FILE, v[0].fd, v[0].fd) : 0;
	if (probe < 0) {
		free(v);
		return roam_fail(t->err, -errno, "telling which descriptors the processes of the tree share (kcmp)");
	}
	qsort_r(v, n, sizeof(*v), cmp_view, t);
	size_t *group = malloc((n ? n : 1) * sizeof(*group));
	uint64_t *id = calloc(n ? n : 1, sizeof(*id));
	*rep = calloc(n + 1, sizeof(**rep));
	if (!group || !id || !*rep) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		group[i] = i && cmp_view(&v[i - 1], &v[i], t) == 0 ? group[i - 1] : ngroups++;
	/* Pipes between processes: by inode, both ends held, by two or more. */
	for (size_t i = 0, j; i < n; i = j) {
		int rd = 0, wr = 0, many = 0;
		for (j = i; j < n && v[j].st.st_dev == v[i].st.st_dev && v[j].st.st_ino == v[i].st.st_ino; j++) {
			rd |= v[j].acc == O_RDONLY;
			wr |= v[j].acc != O_RDONLY;
			many |= v[j].m != v[i].m;
		}
		if (!S_ISFIFO(v[i].st.st_mode) || !rd || !wr || !many)
			continue;
		uint64_t *grown = realloc(t->pipes, (t->npipes + 1) * sizeof(*grown));
		if (!grown) {
			rc = -ENOMEM;
			goto out;
		}
		t->pipes = grown;
		t->pipes[t->npipes++] = v[i].st.st_ino;
		for (size_t k = i; k < j; k++)
			id[group[k]] = 1;   /* marked; numbered below */
	}
	/* Descriptions that two processes hold. */
	for (size_t i = 0, j; i < n; i = j) {
		int many = 0;
		for (j = i; j < n && group[j] == group[i]; j++)
			many |= v[j].m != v[i].m;
		if (many)
			id[group[i]] = 1;
	}
	size_t next = 0;
	for (size_t g = 0; g < ngroups; g++)
		id[g] = id[g] ? ++next : 0;
	*nids = next;
	/* The first holder by process order (the root, when it holds it). */
	for (size_t i = 0; i < n; i++) {
		uint64_t k = id[group[i]];
		if (k && (!(*rep)[k].st.st_ino || v[i].m < (*rep)[k].m || (v[i].m == (*rep)[k].m && v[i].fd < (*rep)[k].fd)))
			(*rep)[k] = v[i];
	}
	if (t->npipes)
		qsort(t->pipes, t->npipes, sizeof(*t->pipes), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		struct ckpt *c = t->c[v[i].m];
		c->tree_pipes = t->pipes;
		c->ntree_pipes = t->npipes;
		if (!id[group[i]])
			continue;
		struct tree_share *grown = realloc(c->share, (c->nshare + 1) * sizeof(*grown));
		if (!grown) {
			rc = -ENOMEM;
			goto out;
		}
		c->share = grown;
		c->share[c->nshare++] = (struct tree_share){ v[i].fd, id[group[i]] };
	}
	for (size_t m = 0; m < t->n; m++)
		t->c[m]->shares_known = 1;
	for (size_t m = 0; m < t->n; m++)
		if (t->c[m]->nshare)
			qsort(t->c[m]->share, t->c[m]->nshare, sizeof(*t->c[m]->share), cmp_share);
out:
	free(group);
	free(id);
	free(v);
	return rc;
}

uint64_t ckpt_tree_shared(const struct ckpt *c, int fd)
{
	struct tree_share key = { fd, 0 };
	const struct tree_share *s = c->nshare ? bsearch(&key, c->share, c->nshare, sizeof(key), cmp_share) : NULL;

	return s ? s->id : 0;
}

int ckpt_tree_pipe(const struct ckpt *c, uint64_t ino)
{
	return c->ntree_pipes && bsearch(&ino, c->tree_pipes, c->ntree_pipes, sizeof(ino), cmp_u64) != NULL;
}

static const Roamimg__Fd *fd_of(const struct ckpt *c, int fd)
{
	for (size_t i = 0; i < c->files->n_fds; i++)
		if ((int)c->files->fds[i]->fd == fd)
			return c->files->fds[i];
	return NULL;
}

/* The root's Files.tree_objects: one description of each shared one, as
 * its first holder has it; a pipe's bytes with its first read end. */
static int make_objects(struct ckpt_tree *t, const struct view *rep, size_t nids)
{
	struct ckpt *root = t->c[0];
	Roamimg__Fd **objs = arena_alloc(&root->arena, (nids ? nids : 1) * sizeof(*objs));
	uint32_t top = 0;
	int rc;

	if (!objs)
		return -ENOMEM;
	for (size_t m = 0; m < t->n; m++)
		for (size_t i = 0; i < t->c[m]->files->n_fds; i++)
			if (t->c[m]->files->fds[i]->fd > top)
				top = t->c[m]->files->fds[i]->fd;
	for (size_t k = 1; k <= nids; k++) {
		struct ckpt *holder = t->c[rep[k].m];
		const Roamimg__Fd *d = fd_of(holder, rep[k].fd);
		Roamimg__Fd *o = ARENA_NEW(root, Roamimg__Fd, roamimg__fd__init);
		if (!o)
			return -ENOMEM;
		if (!d)
			return roam_fail(t->err, -ROAM_E_TARGET, "fd %d of process %d went away", rep[k].fd, holder->pid);
		if (d->kind == ROAMIMG__FD_KIND__FD_EXTERNAL && rep[k].m != 0)
			return roam_fail(t->err, -ROAM_E_REFUSED, "fd %d of process %d (%s) leads outside the process tree, "
					 "and not through its root", d->fd, holder->pid, d->external ? d->external : "?");
		*o = *d;
		o->fd = d->kind == ROAMIMG__FD_KIND__FD_EXTERNAL ? d->fd : (uint32_t)(k - 1);
		o->n_locks = 0;      /* each holder takes its own */
		o->has_pipe_data = 0;
		o->has_task_tid = 0;
		if (d->kind == ROAMIMG__FD_KIND__FD_PIPE && !d->pipe_write_end) {
			int first = 1;
			for (size_t j = 0; j + 1 < k; j++)
				first &= !(objs[j]->kind == ROAMIMG__FD_KIND__FD_PIPE && objs[j]->pipe_id == d->pipe_id &&
					   !objs[j]->pipe_write_end);
			if (first && (rc = ckpt_peek_pipe(holder, rep[k].fd, o)) < 0)
				return rc;
		}
		objs[k - 1] = o;
	}
	root->files->tree_objects = objs;
	root->files->n_tree_objects = nids;
	root->files->has_tree_fd_base = 1;
	root->files->tree_fd_base = top + 2;  /* above the root's report pipe too */
	return 0;
}

int ckpt_tree_freeze(struct ckpt_tree *t)
{
	int rc = ckpt_freeze(t->c[0]);

	if (rc == 0 && (rc = freeze_below(t, 0)) < 0)
		for (size_t j = t->n; j-- > 1;)
			ckpt_resume(t->c[j]);
	/* Alone, it shares with nobody: its pipes are checked as ever (a pipe
	 * to outside the process is stdio or refused). */
	if (rc == 0 && t->n == 1)
		t->c[0]->shares_known = 1;
	return rc;
}

int ckpt_tree_dump(struct ckpt_tree *t, struct img_writer *w)
{
	struct proc_stat *st = NULL;
	struct view *rep = NULL;
	size_t nids = 0;
	int rc = 0;

	if (t->n == 1)
		return ckpt_dump(t->c[0], w);
	if (!(st = calloc(t->n, sizeof(*st))))
		return -ENOMEM;
	if ((rc = check_groups(t, st)) < 0 || (rc = find_shares(t, &rep, &nids)) < 0)
		goto out;
	for (size_t j = 0; rc == 0 && j < t->n; j++)
		rc = ckpt_collect_all(t->c[j]);
	if (rc < 0 || (rc = make_objects(t, rep, nids)) < 0)
		goto out;
	t->c[0]->tree_size = (uint32_t)t->n;
	for (size_t j = 1; j < t->n; j++) {
		t->c[j]->process->has_tree_parent = 1;
		t->c[j]->process->tree_parent = t->c[t->parent[j]]->pid;
	}
	for (size_t j = 0; rc == 0 && j < t->n; j++) {
		struct img_writer wj;
		if (j == 0) {
			rc = ckpt_dump(t->c[0], w);
			continue;
		}
		/* One whole stream each, after the root's, on the same output. */
		if ((rc = img_writer_init(&wj, w->write, w->ctx, w->codec)) < 0)
			break;
		if (w->unchecked)
			img_writer_unchecked(&wj);
		rc = ckpt_dump(t->c[j], &wj);
		w->bytes += wj.bytes;
		img_writer_fini(&wj);
	}
out:
	free(st);
	free(rep);
	return rc;
}

/* fn on every process, children before parents: the first error, all done. */
static int each(struct ckpt_tree *t, int (*fn)(struct ckpt *c))
{
	int rc = 0;

	for (size_t j = t->n; j-- > 0;) {
		int r = fn(t->c[j]);
		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}

int ckpt_tree_resume(struct ckpt_tree *t)
{
	return each(t, ckpt_resume);
}

int ckpt_tree_kill(struct ckpt_tree *t)
{
	return each(t, ckpt_kill);
}

int ckpt_tree_kill_with_tracer(struct ckpt_tree *t)
{
	return each(t, ckpt_kill_with_tracer);
}

void ckpt_tree_stats(const struct ckpt_tree *t, struct ckpt_stats *out)
{
	*out = *ckpt_stats(t->c[0]);
	for (size_t j = 1; j < t->n; j++) {
		const struct ckpt_stats *s = ckpt_stats(t->c[j]);
		out->pages += s->pages;
		out->zero_pages += s->zero_pages;
		out->threads += s->threads;
		out->vmas += s->vmas;
		out->fds += s->fds;
		out->bytes += s->bytes;
		if (s->freeze_ns > out->freeze_ns)
			out->freeze_ns = s->freeze_ns;
		if (s->dumped_ns > out->dumped_ns)
			out->dumped_ns = s->dumped_ns;
	}
}

void ckpt_tree_close(struct ckpt_tree *t)
{
	if (!t)
		return;
	for (size_t j = t->n; j-- > 0;) {
		free(t->c[j]->share);
		t->c[j]->share = NULL;
		t->c[j]->tree_pipes = NULL;
		ckpt_close(t->c[j]);
	}
	free(t->pipes);
	free(t->c);
	free(t->parent);
	free(t);
}
