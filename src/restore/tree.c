/*
 * Process trees: an image whose root stream says Header.tree = N is
 * followed by N - 1 whole streams, parents before children. The root is
 * restored as one process is, but for what its processes share
 * (Files.tree_objects), which it makes at Files.tree_fd_base and up before
 * its own descriptors (spawn.c, setup_fds). Every other process is forked
 * by its parent's process once that one is built (restore_fork), so that
 * it is that process's child and inherits the shared descriptions; it is
 * then built as a pre-copy's bare child is, by remote syscalls, its
 * parent's descriptors closed but the shared ones. Nothing of any of them
 * runs until every stream is in and every process finished; a failure
 * anywhere kills them all.
 */
#include "restore/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "sys/clock.h"
#include <unistd.h>

/* More processes than that is a corrupt image, not a tree. */
#define MAX_TREE 4096

static int tree_error(struct restore *r, const char *what, int pid)
{
	return roam_fail(r->err, -ROAM_E_IMAGE, "process tree: %s (process %d)", what, pid);
}

/* Every descriptor below the tree's base, every shared id one of the root's. */
static int check_member_files(struct restore *r, const Roamimg__Files *root_files)
{
	const Roamimg__Files *fs = r->ld.files;

	for (size_t i = 0; i < fs->n_fds; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		if (d->fd >= root_files->tree_fd_base)
			return tree_error(r, "a descriptor above the tree's base", r->ld.process->pid);
		if (d->has_shared_id && (d->shared_id == 0 || d->shared_id > root_files->n_tree_objects))
			return tree_error(r, "a descriptor shared with nothing the root makes", r->ld.process->pid);
	}
	return 0;
}

int restore_tree_begin(struct restore *r)
{
	const Roamimg__Header *h = r->ld.header;
	const Roamimg__Files *fs = r->ld.files;

	if (!h->has_tree || h->tree <= 1)
		return 0;
	if (h->tree > MAX_TREE)
		return tree_error(r, "too many processes", r->ld.process->pid);
	/* The loader checked the shared descriptions and the base, if any;
	 * the ids the root's descriptors name must be among them. */
	if (!fs->has_tree_fd_base)
		return tree_error(r, "no descriptor base", r->ld.process->pid);
	if (check_member_files(r, fs) < 0)
		return -ROAM_E_IMAGE;
	r->tree_base = (int)fs->tree_fd_base;
	return 0;
}

int restore_tree_parent(struct restore *r)
{
	struct restore *root = r->tree_root;
	const Roamimg__Process *p = r->ld.process;
	int rc;

	if (r->ld.header->has_tree || !p->has_tree_parent)
		return tree_error(r, "a process stream that is not a child's", p->pid);
	if ((rc = check_member_files(r, root->ld.files)) < 0)
		return rc;
	if (root->ld.process->pid == p->tree_parent)
		r->up = root;
	for (size_t k = 0; !r->up && k + 1 < root->nmembers; k++)
		if (root->members[k]->ld.process->pid == p->tree_parent)
			r->up = root->members[k];
	if (!r->up)
		return tree_error(r, "a parent the tree has not restored before it", p->pid);
	return 0;
}

/* The process group the image says, where it is neither its own nor its
 * parent's (which restore_setup_late and the fork give): one a process
 * restored before it leads. */
static int join_group(struct restore *r)
{
	struct restore *root = r->tree_root, *leader = NULL;
	const Roamimg__Process *p = r->ld.process, *pp = r->up->ld.process;
	long ret;

	if (p->sid != p->pid && p->sid != pp->sid)
		return tree_error(r, "a session neither its own nor its parent's", p->pid);
	if (p->sid == p->pid || p->pgid == p->pid || p->pgid == pp->pgid)
		return 0;
	if (root->ld.process->pid == p->pgid)
		leader = root;
	for (size_t k = 0; !leader && k + 1 < root->nmembers; k++)
		if (root->members[k]->ld.process->pid == p->pgid)
			leader = root->members[k];
	if (!leader)
		return tree_error(r, "a process group no process restored before it leads", p->pid);
	return rsys(r, &ret, "joining its process group", SYS_setpgid, 0, leader->pid, 0, 0, 0, 0);
}

int restore_tree_load(struct restore *root, struct img_reader *rd0)
{
	const Roamimg__Header *h = root->ld.header;
	struct img_reader rds[2], *prev = rd0;
	int rc = 0;

	if (!h->has_tree || h->tree <= 1)
		return 0;
	if (!(root->members = calloc(h->tree - 1, sizeof(*root->members))))
		return -ENOMEM;
	for (uint32_t k = 1; k < h->tree && rc == 0; k++) {
		struct img_reader *rd = &rds[k & 1];
		struct restore *m;
		if ((rc = restore_open(&m, &root->opts, root->err)) < 0)
			break;
		root->members[root->nmembers++] = m;
		for (int i = 0; i < 3; i++)
			m->opts.stdio[i] = -1;   /* theirs come through the root */
		m->opts.ncgroup = 0;         /* born in their parent's */
		m->tree_root = root;
		m->tree_base = root->tree_base;
		m->mem_image = root->mem_image;
		m->lazy_fd = root->lazy_fd;
		m->hold.allowed = root->hold.allowed;
		m->hold.mine = root->hold.mine;
		m->stats.started_ns = mono_ns();
		/* The next stream, from where the last one ended. */
		if (prev->mem)
			rc = img_reader_init_mem(rd, prev->mem + prev->mem_off, prev->mem_len - prev->mem_off);
		else
			rc = img_reader_init(rd, prev->read, prev->ctx);
		if (prev->authenticated)
			img_reader_authenticated(rd);
		rc = restore_load(m, rd, rc);
		if (rc == 0)
			rc = join_group(m);
		if (prev != rd0)
			img_reader_fini(prev);
		prev = rd;
	}
	if (prev != rd0)
		img_reader_fini(prev);
	return rc;
}
