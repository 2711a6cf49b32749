/*
 * The restore driver: reads the stream and runs the stages in order.
 *
 *   metadata   HEADER PLATFORM PROCESS MM FILES, checked by the loader
 *   validate   may it run here, as this caller (validate.c)
 *   spawn      the child, stopped and traced (spawn.c)
 *   layout     its address space (mm.c)
 *   pages      written as they stream in (mm.c)
 *   finish     after THREADS and COMMIT: threads, signals, creds, registers
 *   release    restore_release, when the caller says so
 *
 * Any failure kills the child. Between prepare and release the child stays
 * stopped and traced by the thread that prepared it; PTRACE_O_EXITKILL
 * kills it should that thread (or roam) die first.
 */
#include "restore/internal.h"
#include "sys/clock.h"
#include "sys/netlock.h"
#include "sys/proc.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int restore_open(struct restore **out, const struct restore_opts *opts, struct roam_error *err)
{
	struct restore *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->opts = *opts;
	r->err = err;
	r->memfd = -1;
	r->lazy_fd = -1;
	img_load_init(&r->ld, 0);
	*out = r;
	return 0;
}

static int image_error(struct restore *r, int rc, const struct img_fault *f)
{
	char where[200], tree[64] = "";

	/* A tree's other processes: whose stream, counted from the root's. */
	if (r->tree_root)
		snprintf(tree, sizeof(tree), "the stream of the tree's process %zu, ", r->tree_root->nmembers + 1);
	if (f->record)
		snprintf(where, sizeof(where), "%srecord %llu (%s) at byte %llu", tree, (unsigned long long)f->record,
			 img_rec_name(f->type), (unsigned long long)f->offset);
	else
		snprintf(where, sizeof(where), "%sthe preamble", tree);
	return roam_fail(r->err, -ROAM_E_IMAGE, "%s: %s%s%s", where, img_strerror(rc), f->what ? ": " : "",
			 f->what ? f->what : "");
}

static pid_t prepare(struct restore *r, struct img_reader *reader, int rc);

pid_t restore_prepare(struct restore *r, img_read_fn fn, void *ctx)
{
	struct img_reader rd;

	if (r->pid)
		return -EINVAL;
	r->stats.started_ns = mono_ns();
	int rc = img_reader_init(&rd, fn, ctx);
	if (r->opts.authenticated)
		img_reader_authenticated(&rd);
	return prepare(r, &rd, rc);
}

pid_t restore_prepare_mem(struct restore *r, const void *data, size_t len)
{
	struct img_reader rd;

	if (r->pid)
		return -EINVAL;
	r->stats.started_ns = mono_ns();
	r->mem_image = 1;
	return prepare(r, &rd, img_reader_init_mem(&rd, data, len));
}

/* Kills the child and every thread of it, and reaps them: nothing is left.
 * A tree's root kills every process of the tree. */
static void kill_child(struct restore *r)
{
	int st;

	for (size_t k = r->nmembers; k-- > 0;)
		kill_child(r->members[k]);
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	/* Traced threads must be collected before the leader reports. */
	for (size_t i = 1; r->tids && r->ld.threads && i < r->ld.threads->n_threads; i++)
		if (r->tids[i] > 0)
			while (waitpid(r->tids[i], &st, __WALL) < 0 && errno == EINTR)
				;
	while (waitpid(r->pid, &st, __WALL) < 0 && errno == EINTR)
		;
	r->pid = 0;
	r->prepared = 0;
}

/* The established connections of r's process (and of its tree), as the
 * checkpoint locked them: *out (malloc'ed), their number. */
static size_t restore_locked_conns(const struct restore *r, struct netlock_conn **out)
{
	size_t n = 0, cap = 0;

	*out = NULL;
	for (size_t k = 0; k <= r->nmembers; k++) {
		const Roamimg__Files *fs = (k < r->nmembers ? r->members[k] : r)->ld.files;
		for (size_t i = 0; fs && fs->netlock && i < fs->n_fds + fs->n_tree_objects; i++) {
			const Roamimg__Fd *d = i < fs->n_fds ? fs->fds[i] : fs->tree_objects[i - fs->n_fds];
			const Roamimg__InetSock *in = d->inet;
			if (!in || !in->tcp || (i < fs->n_fds && d->shared_id))
				continue;   /* a shared one: once, from the root's objects */
			if (n == cap) {
				struct netlock_conn *more = realloc(*out, (cap = cap ? 2 * cap : 8) * sizeof(*more));
				if (!more)
					return n;
				*out = more;
			}
			struct netlock_conn *c = &(*out)[n++];
			memset(c, 0, sizeof(*c));
			c->family = (int)in->family;
			memcpy(c->local, in->addr.data, in->addr.len);
			memcpy(c->peer, in->peer_addr.data, in->peer_addr.len);
			c->lport = in->port, c->pport = in->peer_port;
		}
	}
	return n;
}

/* p's connections leave repair mode (a window probe tells each peer where
 * it is) just before p runs: until then a failed restore closes them
 * without a FIN, as the checkpoint did. Through copies of its descriptors. */
static int connections_go(struct restore *p)
{
	const Roamimg__Files *fs = p->ld.files;
	int pidfd = -1, rc = 0;

	for (size_t i = 0; fs && rc == 0 && i < fs->n_fds; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		int s, off = TCP_REPAIR_OFF;
		if (!d->inet || !d->inet->tcp)
			continue;
		if (pidfd < 0 && (pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0)) < 0)
			return roam_fail(p->err, -errno, "reaching pid %d for its TCP connections", (int)p->pid);
		if ((s = (int)syscall(SYS_pidfd_getfd, pidfd, (int)d->fd, 0)) < 0 ||
		    setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
			rc = roam_fail(p->err, -errno, "letting the TCP connection on fd %u go", d->fd);
		/* Leaving repair mode cleared SO_REUSEADDR: the image's again. */
		for (size_t k = 0; rc == 0 && k < d->inet->n_opts; k++) {
			const Roamimg__SockOpt *o = d->inet->opts[k];
			if (o->level == SOL_SOCKET && o->name == SO_REUSEADDR &&
			    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &o->value, sizeof(o->value)) < 0)
				rc = roam_fail(p->err, -errno, "setting SO_REUSEADDR again on fd %u", d->fd);
		}
		if (s >= 0)
			close(s);
	}
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

int restore_release(struct restore *r)
{
	int rc = 0;

	if (!r->prepared || r->released)
		return -EINVAL;
	for (size_t k = 0; k <= r->nmembers && rc == 0; k++)
		rc = connections_go(k < r->nmembers ? r->members[k] : r);
	if (rc < 0) {
		kill_child(r);
		return rc;
	}
	/* A tree: the children first, the root last. */
	for (size_t k = r->nmembers; k-- > 0;)
		if ((rc = restore_let_go(r->members[k])) < 0)
			break;
	if (rc >= 0)
		rc = restore_let_go(r);
	if (rc < 0) {
		/* Some threads may run already: never half a process. */
		kill_child(r);
		return rc;
	}
	/* Its connections are back: their packets may pass again. */
	struct netlock_conn *conns = NULL;
	size_t n = restore_locked_conns(r, &conns);
	char why[160];
	if (n && netlock_unlock(0, conns, n, why, sizeof(why)) < 0)
		snprintf(r->stats.netlock_left, sizeof(r->stats.netlock_left), "%.160s", why);
	free(conns);
	return 0;
}

int restore_abort(struct restore *r)
{
	if (r->released)
		return -EINVAL;
	kill_child(r);
	return 0;
}

pid_t restore_run(struct restore *r, img_read_fn fn, void *ctx)
{
	pid_t pid = restore_prepare(r, fn, ctx);

	if (pid < 0)
		return pid;
	int rc = restore_release(r);
	return rc < 0 ? rc : pid;
}

pid_t restore_run_file(struct restore *r, int fd)
{
	r->image_fd = r->lazy_fd = fd;
	return restore_run(r, img_fd_read, &r->image_fd);
}

pid_t restore_run_mem(struct restore *r, const void *data, size_t len)
{
	pid_t pid = restore_prepare_mem(r, data, len);

	if (pid < 0)
		return pid;
	int rc = restore_release(r);
	return rc < 0 ? rc : pid;
}

int restore_stdio_data(const struct restore *r, int fd, const void **data, size_t *len)
{
	const Roamimg__Files *fs = r->ld.files;

	*data = NULL;
	*len = 0;
	if (fd < 0 || fd > 2 || !fs)
		return -EINVAL;
	if (r->opts.stdio[fd] < 0)
		return 0;
	for (size_t i = 0; i < fs->n_fds; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		if (d->fd != (uint32_t)fd || !d->has_pipe_data)
			continue;
		*data = d->pipe_data.data;
		*len = d->pipe_data.len;
	}
	return 0;
}

/* The root's child, a copy of roam (spawn.c), with a trampoline free both
 * in the image's layout and in ours, which the child starts as a copy of. */
static int spawn_root(struct restore *r)
{
	uint64_t (*self)[2] = NULL;
	size_t nself = 0;
	int rc;

	FILE *m = fopen("/proc/self/maps", "re");
	char line[512];
	while (m && fgets(line, sizeof(line), m)) {
		unsigned long long s, e;
		if (sscanf(line, "%llx-%llx", &s, &e) != 2)
			continue;
		void *n = realloc(self, (nself + 1) * sizeof(*self));
		if (!n)
			break;
		self = n;
		self[nself][0] = s;
		self[nself++][1] = e;
	}
	if (m)
		fclose(m);
	rc = restore_find_hole(r->mm, (const uint64_t (*)[2])self, nself, TRAMP_SIZE, &r->tramp);
	free(self);
	if (rc < 0)
		return roam_fail(r->err, rc, "no room for the trampoline");
	/* Every remote syscall wakes the child and then us: across two CPUs
	 * of this VM that is about 100 us a call, on one about 12. So we stay
	 * on the CPU we run on while we drive the child, and the child, born
	 * with our mask, stays there; its threads get our old mask back before
	 * they run (restore_let_go). Filling from a file we stay there too, and
	 * helper threads get CPUs of their own; from a stream we let go of it
	 * while the pages come (the writer at the other end needs CPUs), and
	 * come back to the child's CPU for the end (prepare). A tree's other
	 * processes are built on the root's CPU, in its phase. */
	cpu_spread_begin(&r->hold, 2);
	if ((rc = restore_tree_begin(r)) < 0)
		return rc;
	return restore_spawn(r);
}

/* Builds the child from the metadata read so far: validate, spawn (or, in a
 * tree but its root, fork from its parent), layout. */
static int build(struct restore *r)
{
	int rc;

	if (strcmp(r->ld.header->arch, ARCH_NAME))
		return roam_fail(r->err, -ROAM_E_INCOMPAT, "the image is for %s", r->ld.header->arch);
	/* A pre-copy stream is built from its early layout, before the process
	 * is even frozen at the source: the final one arrives later. */
	r->bare = r->ld.precopy;
	r->mm = r->ld.mm_early ? r->ld.mm_early : r->ld.mm;
	if ((rc = restore_validate(r)) < 0)
		return rc;
	r->stats.validated_ns = mono_ns();
	/* Neither the helper threads that fill the pages nor anything else we
	 * start may take the ids the process's threads ask for last. */
	const Roamimg__Process *p = r->ld.process;
	int32_t ids[1] = { p->pid };
	(void)proc_keep_pids_free(p->n_tids ? p->tids : ids, p->n_tids ? p->n_tids : 1);
	if (r->tree_root)
		rc = (rc = restore_tree_parent(r)) < 0 ? rc : restore_fork(r);
	else
		rc = spawn_root(r);
	if (rc < 0)
		return rc;
	r->stats.spawned_ns = mono_ns();
	if ((rc = restore_layout(r)) < 0)
		return rc;
	/* A pre-copy stream's first pass, nearly all of it, fills fresh
	 * memory as a plain image does; the fill ends (prepare) at the first
	 * round's pages, at its first drop or before the final layout, after
	 * which pages go in as they come. */
	if ((rc = restore_fill_open(r)) < 0)
		return roam_fail(r->err, rc, "preparing to write the pages");
	if (r->lazy_fd < 0 && !r->tree_root)
		cpu_spread_end(&r->hold);  /* keeps hold.mine: the child's CPU */
	r->stats.laid_out_ns = mono_ns();
	return 0;
}

#define REC_BIT(t) (1u << (t))
#define EARLY_RECS (REC_BIT(IMG_REC_PLATFORM) | REC_BIT(IMG_REC_PROCESS) | REC_BIT(IMG_REC_MM))
#define FINAL_RECS (REC_BIT(IMG_REC_PROCESS) | REC_BIT(IMG_REC_MM) | REC_BIT(IMG_REC_FILES))

/* The stages but the finish and the release, over a reader whose
 * initialisation returned rc: 0 or a negative error (the caller kills). */
int restore_load(struct restore *r, struct img_reader *reader, int rc)
{
	struct img_record rec;
	struct img_pages pg;
	struct img_fault f;
	int built = 0, updated = 0;
	uint64_t pass_end = 0;   /* pre-copy: where the first pass has got to */

	memset(&f, 0, sizeof(f));
	if (rc < 0)
		return image_error(r, rc, &f);
	if (r->lazy_fd >= 0 && img_reader_lazy_pages(reader, r->lazy_fd) < 0)
		r->lazy_fd = -1;
	while ((rc = img_load_next(&r->ld, reader, &rec, &pg, &f)) > 0) {
		/* The process is built once all metadata is in: at the first page
		 * record, or at THREADS for an image without pages. A pre-copy
		 * stream's is built once its early picture is in, and brought to
		 * the final layout once that is in. */
		int now = r->ld.precopy ? (r->ld.seen & EARLY_RECS) == EARLY_RECS &&
						  (rec.type == IMG_REC_PAGES || rec.type == IMG_REC_DROP || r->ld.final_seen)
					: rec.type == IMG_REC_PAGES || rec.type == IMG_REC_THREADS;
		if (!built && now) {
			if ((rc = build(r)) < 0)
				return rc;
			built = 1;
		}
		if (built && r->ld.precopy && !updated && r->ld.final_seen == FINAL_RECS) {
			r->stats.final_ns = mono_ns();
			r->stats.final_pages = r->stats.pages;
			/* The fill registered the early layout, which changes now. */
			if ((rc = restore_fill_close(r, 0)) < 0 || (rc = restore_validate_final(r)) < 0 ||
			    (rc = restore_mm_update(r)) < 0)
				return rc;
			updated = 1;
		}
		/* A pre-copy stream's first pass goes up the address space: a page
		 * record below where it got to is a round's, whose pages are mostly
		 * present already (a UFFDIO_COPY would fail on each, EEXIST, before
		 * it is written over): the fill ends there, as at a drop. */
		if (rec.type == IMG_REC_PAGES && r->ld.precopy && r->fill) {
			if (pg.addr < pass_end && (rc = restore_fill_close(r, 0)) < 0)
				return rc;
			pass_end = pg.addr + (uint64_t)pg.npages * ARCH_PAGE_SIZE;
		}
		if (rec.type == IMG_REC_PAGES && (rc = restore_pages(r, &pg, reader)) < 0)
			return rc;
		/* A drop must not overtake an older copy of its pages still
		 * queued for the fill: the fill ends first. */
		if (rec.type == IMG_REC_DROP && ((rc = restore_fill_close(r, 0)) < 0 || (rc = restore_drop(r, &rec)) < 0))
			return rc;
	}
	if (rc < 0)
		return image_error(r, rc, &f);
	if (!built)
		return roam_fail(r->err, -ROAM_E_IMAGE, "the image has no threads");
	if ((rc = restore_fill_close(r, 0)) < 0)
		return rc;
	r->stats.committed_ns = mono_ns();
	if (updated)
		r->stats.final_pages = r->stats.pages - r->stats.final_pages;
	if (!r->tree_root)
		cpu_spread_follow(&r->hold, r->hold.mine);  /* back with the child */
	if ((r->bare || r->tree_root) && (rc = restore_setup_late(r)) < 0)
		return rc;
	return 0;
}

/* The stages but the release, over a reader whose initialisation returned
 * rc; for a tree's root, every other process of the tree too. */
static pid_t prepare(struct restore *r, struct img_reader *reader, int rc)
{
	if ((rc = restore_load(r, reader, rc)) < 0 || (rc = restore_tree_load(r, reader)) < 0)
		goto fail;
	for (size_t k = r->nmembers; k-- > 0;)
		if ((rc = restore_finish(r->members[k])) < 0)
			goto fail;
	if ((rc = restore_finish(r)) < 0)
		goto fail;
	img_reader_fini(reader);
	r->prepared = 1;
	return r->pid;
fail:
	restore_fill_close(r, 1);
	kill_child(r);
	if (!r->err->code)
		roam_fail(r->err, rc, "restoring");
	/* The connections can still come back from the image: their packets
	 * stay dropped, for another restore. */
	if (r->ld.files && r->ld.files->netlock) {
		size_t l = strlen(r->err->what);
		snprintf(r->err->what + l, sizeof(r->err->what) - l, "; its TCP connections' network lock stays, for "
			 "another restore (their packets are dropped by nftables table inet %s)", r->ld.files->netlock);
	}
	img_reader_fini(reader);
	return rc < 0 ? rc : -EIO;
}

const struct restore_stats *restore_stats(const struct restore *r)
{
	return &r->stats;
}

void restore_close(struct restore *r)
{
	if (!r)
		return;
	restore_fill_close(r, 1);
	if (!r->released)
		kill_child(r);  /* never half a process */
	for (size_t k = 0; k < r->nmembers; k++)
		restore_close(r->members[k]);
	free(r->members);
	cpu_spread_end(&r->hold);
	if (r->memfd >= 0)
		close(r->memfd);
	img_load_fini(&r->ld);
	free(r->file_fd);
	free(r->file_fd_rw);
	free(r->shm);
	free(r->tids);
	free(r->trem);
	free(r);
}
