/*
 * Loading an image: record order, unpacking and the checks of load.h.
 */
#include "image/load.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#define BIT(t) (1u << (t))
#define META_BITS (BIT(IMG_REC_PLATFORM) | BIT(IMG_REC_PROCESS) | BIT(IMG_REC_MM) | BIT(IMG_REC_FILES))
#define EARLY_BITS (BIT(IMG_REC_PLATFORM) | BIT(IMG_REC_PROCESS) | BIT(IMG_REC_MM))
#define FINAL_BITS (BIT(IMG_REC_PROCESS) | BIT(IMG_REC_MM) | BIT(IMG_REC_FILES))
#define PAGE_BITS (BIT(IMG_REC_PAGES) | BIT(IMG_REC_DROP))

/* Largest file descriptor number we believe: the kernel's fs.nr_open ceiling. */
#define MAX_FD_NUMBER (1u << 30)
#define SIGINFO_SIZE 128

static int fault(struct img_fault *f, int err, const char *what)
{
	if (f)
		f->what = what;
	return err;
}

const ProtobufCMessageDescriptor *img_rec_descriptor(uint32_t type)
{
	switch (type) {
	case IMG_REC_HEADER: return &roamimg__header__descriptor;
	case IMG_REC_PLATFORM: return &roamimg__platform__descriptor;
	case IMG_REC_PROCESS: return &roamimg__process__descriptor;
	case IMG_REC_MM: return &roamimg__mm__descriptor;
	case IMG_REC_FILES: return &roamimg__files__descriptor;
	case IMG_REC_THREADS: return &roamimg__threads__descriptor;
	case IMG_REC_DROP: return &roamimg__drop_pages__descriptor;
	default: return NULL;
	}
}

int img_unpack(const struct img_record *rec, uint32_t type, ProtobufCMessage **out)
{
	const ProtobufCMessageDescriptor *d = img_rec_descriptor(type);

	*out = NULL;
	if (!d || rec->type != type)
		return -IMG_ERR_TYPE;
	/* protobuf-c checks required fields and lengths against the payload. */
	*out = protobuf_c_message_unpack(d, NULL, rec->len, rec->payload);
	return *out ? 0 : -IMG_ERR_DECODE;
}

#define UNPACK_AS(name, TYPE, Msg)                                              \
	int img_unpack_##name(const struct img_record *rec, Msg **out)          \
	{                                                                       \
		ProtobufCMessage *m;                                            \
		int rc = img_unpack(rec, TYPE, &m);                             \
		*out = (Msg *)m;                                                \
		return rc;                                                      \
	}
UNPACK_AS(header, IMG_REC_HEADER, Roamimg__Header)
UNPACK_AS(platform, IMG_REC_PLATFORM, Roamimg__Platform)
UNPACK_AS(process, IMG_REC_PROCESS, Roamimg__Process)
UNPACK_AS(mm, IMG_REC_MM, Roamimg__Mm)
UNPACK_AS(files, IMG_REC_FILES, Roamimg__Files)
UNPACK_AS(threads, IMG_REC_THREADS, Roamimg__Threads)
UNPACK_AS(drop, IMG_REC_DROP, Roamimg__DropPages)
#undef UNPACK_AS

const char *img_vma_kind_name(int kind)
{
	switch (kind) {
	case ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE: return "anon-private";
	case ROAMIMG__VMA_KIND__VMA_ANON_SHARED: return "anon-shared";
	case ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE: return "file-private";
	case ROAMIMG__VMA_KIND__VMA_FILE_SHARED: return "file-shared";
	case ROAMIMG__VMA_KIND__VMA_VDSO: return "vdso";
	case ROAMIMG__VMA_KIND__VMA_VVAR: return "vvar";
	default: return "?";
	}
}

const char *img_fd_kind_name(int kind)
{
	switch (kind) {
	case ROAMIMG__FD_KIND__FD_REG: return "reg";
	case ROAMIMG__FD_KIND__FD_DIR: return "dir";
	case ROAMIMG__FD_KIND__FD_CHR: return "chr";
	case ROAMIMG__FD_KIND__FD_PIPE: return "pipe";
	case ROAMIMG__FD_KIND__FD_EXTERNAL: return "external";
	case ROAMIMG__FD_KIND__FD_EVENTFD: return "eventfd";
	case ROAMIMG__FD_KIND__FD_SIGNALFD: return "signalfd";
	case ROAMIMG__FD_KIND__FD_TIMERFD: return "timerfd";
	case ROAMIMG__FD_KIND__FD_EPOLL: return "epoll";
	case ROAMIMG__FD_KIND__FD_SOCKPAIR: return "sockpair";
	case ROAMIMG__FD_KIND__FD_INOTIFY: return "inotify";
	case ROAMIMG__FD_KIND__FD_INET: return "inet";
	default: return "?";
	}
}

void img_load_init(struct img_load *ld, unsigned flags)
{
	memset(ld, 0, sizeof(*ld));
	ld->flags = flags;
}

void img_load_fini(struct img_load *ld)
{
	if (ld->header)
		roamimg__header__free_unpacked(ld->header, NULL);
	if (ld->platform)
		roamimg__platform__free_unpacked(ld->platform, NULL);
	if (ld->process)
		roamimg__process__free_unpacked(ld->process, NULL);
	if (ld->mm)
		roamimg__mm__free_unpacked(ld->mm, NULL);
	if (ld->files)
		roamimg__files__free_unpacked(ld->files, NULL);
	if (ld->threads)
		roamimg__threads__free_unpacked(ld->threads, NULL);
	if (ld->mm_early)
		roamimg__mm__free_unpacked(ld->mm_early, NULL);
	if (ld->process_early)
		roamimg__process__free_unpacked(ld->process_early, NULL);
	free(ld->vma_stat);
	free(ld->ext);
	memset(ld, 0, sizeof(*ld));
}

/* --- per-record checks ------------------------------------------------ */

static int check_header(const Roamimg__Header *h, const struct img_reader *r, struct img_fault *f)
{
	if (h->version == 0 || h->version > IMG_FORMAT_VERSION)
		return fault(f, -IMG_ERR_VERSION, "header names a format version this roam does not know");
	if (h->version != r->version)
		return fault(f, -IMG_ERR_VERSION, "header version differs from the preamble's");
	if (strcmp(h->arch, IMG_ARCH) != 0)
		return fault(f, -IMG_ERR_ARCH, "header names another architecture");
	if (h->page_size != IMG_PAGE_SIZE)
		return fault(f, -IMG_ERR_ARCH, "header names another page size");
	if (h->has_precopy && h->precopy && h->version < IMG_FORMAT_PRECOPY)
		return fault(f, -IMG_ERR_VERSION, "pre-copy header in a stream of a version without pre-copy");
	return 0;
}

static int check_siginfos(Roamimg__SigInfo *const *si, size_t n, struct img_fault *f)
{
	for (size_t i = 0; i < n; i++) {
		if (si[i]->signo == 0 || si[i]->signo > (uint32_t)SIGRTMAX)
			return fault(f, -IMG_ERR_DECODE, "pending signal number out of range");
		if (si[i]->raw.len != SIGINFO_SIZE)
			return fault(f, -IMG_ERR_DECODE, "pending signal's siginfo is not 128 bytes");
	}
	return 0;
}

static int check_process(const Roamimg__Process *p, struct img_fault *f)
{
	if (p->cwd[0] != '/')
		return fault(f, -IMG_ERR_DECODE, "cwd is not an absolute path");
	if (p->umask > 0777)
		return fault(f, -IMG_ERR_DECODE, "umask out of range");
	if (p->has_pdeath_signal && p->pdeath_signal > (uint32_t)SIGRTMAX)
		return fault(f, -IMG_ERR_DECODE, "parent-death signal out of range");
	for (size_t i = 0; i < p->n_rlimits; i++) {
		if (p->rlimits[i]->resource >= RLIM_NLIMITS)
			return fault(f, -IMG_ERR_DECODE, "rlimit resource out of range");
		if (p->rlimits[i]->cur > p->rlimits[i]->max)
			return fault(f, -IMG_ERR_DECODE, "rlimit soft limit above its hard limit");
	}
	for (size_t i = 0; i < p->n_sigactions; i++) {
		uint32_t s = p->sigactions[i]->signo;
		if (s == 0 || s > (uint32_t)SIGRTMAX || s == SIGKILL || s == SIGSTOP)
			return fault(f, -IMG_ERR_DECODE, "signal handler for an impossible signal");
	}
	for (size_t i = 0; i < p->n_itimers; i++)
		if (p->itimers[i]->which > ITIMER_PROF)
			return fault(f, -IMG_ERR_DECODE, "interval timer of unknown kind");
	for (size_t i = 0; i < p->n_posix_timers; i++) {
		const Roamimg__PosixTimer *t = p->posix_timers[i];
		int how = t->notify & ~SIGEV_THREAD_ID;
		if (t->id < 0 || (how != SIGEV_SIGNAL && how != SIGEV_NONE) ||
		    ((t->notify & SIGEV_THREAD_ID) && (how != SIGEV_SIGNAL || !t->has_tid)) ||
		    (how == SIGEV_SIGNAL && (t->signo <= 0 || t->signo > SIGRTMAX)))
			return fault(f, -IMG_ERR_DECODE, "POSIX timer of impossible settings");
		for (size_t j = 0; j < i; j++)
			if (p->posix_timers[j]->id == t->id)
				return fault(f, -IMG_ERR_DECODE, "POSIX timer listed twice");
	}
	return check_siginfos(p->shared_pending, p->n_shared_pending, f);
}

static int nullable_streq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

int img_vma_same(const Roamimg__Mm *a, const Roamimg__Vma *va, const Roamimg__Mm *b, const Roamimg__Vma *vb)
{
	if (va->start != vb->start || va->end != vb->end || va->prot != vb->prot || va->kind != vb->kind ||
	    va->pgoff != vb->pgoff || va->has_file_id != vb->has_file_id || va->shm_id != vb->shm_id ||
	    va->madv != vb->madv || va->growsdown != vb->growsdown || va->carried != vb->carried ||
	    !nullable_streq(va->name, vb->name))
		return 0;
	if (!va->has_file_id)
		return 1;
	if (va->file_id >= a->n_files || vb->file_id >= b->n_files)
		return 0;
	const Roamimg__MappedFile *fa = a->files[va->file_id], *fb = b->files[vb->file_id];
	return !strcmp(fa->path, fb->path) && fa->size == fb->size && fa->hash.len == fb->hash.len &&
	       !memcmp(fa->hash.data, fb->hash.data, fa->hash.len) && fa->deleted == fb->deleted;
}

/* The final MM of a pre-copy stream against the early one. */
static int check_final_mm(const Roamimg__Mm *early, const Roamimg__Mm *mm, struct img_fault *f)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		if (v->has_fresh && v->fresh)
			continue;
		ssize_t k = img_find_vma(early, v->start);
		if (k < 0 || !img_vma_same(early, early->vmas[k], mm, v))
			return fault(f, -IMG_ERR_DECODE, "pre-copy mapping neither fresh nor in the early layout");
	}
	return 0;
}

static int check_mm(const Roamimg__Mm *mm, int fresh_ok, struct img_fault *f)
{
	const uint64_t mask = IMG_PAGE_SIZE - 1;

	if (mm->has_exe_file_id && mm->exe_file_id >= mm->n_files)
		return fault(f, -IMG_ERR_DECODE, "exe file index out of range");
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];

		if ((v->start & mask) || (v->end & mask) || v->start >= v->end)
			return fault(f, -IMG_ERR_DECODE, "mapping with an unaligned or empty range");
		/* Sorted and disjoint, as /proc/PID/maps lists them: lookups bisect. */
		if (i > 0 && v->start < mm->vmas[i - 1]->end)
			return fault(f, -IMG_ERR_DECODE, "mappings overlap or are out of order");
		if (v->kind < ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE || v->kind > ROAMIMG__VMA_KIND__VMA_VVAR)
			return fault(f, -IMG_ERR_DECODE, "mapping of unknown kind");
		if (v->prot & ~7u)
			return fault(f, -IMG_ERR_DECODE, "mapping with unknown protection bits");
		if ((v->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE || v->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED) &&
		    (!v->has_file_id || v->file_id >= mm->n_files))
			return fault(f, -IMG_ERR_DECODE, "file mapping without a valid file index");
		if (v->has_pgoff && (v->pgoff & mask))
			return fault(f, -IMG_ERR_DECODE, "mapping with an unaligned file offset");
		if (v->has_fresh && v->fresh && !fresh_ok)
			return fault(f, -IMG_ERR_DECODE, "fresh mapping outside the final layout of a pre-copy stream");
	}
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* 1 if some value repeats. Sorting, not comparing pairs: a forged image may
 * list millions of descriptors or threads. */
static int has_duplicate(uint32_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), u32_cmp);
	for (size_t i = 1; i < n; i++)
		if (v[i] == v[i - 1])
			return 1;
	return 0;
}

/* A lock is a file's or a directory's; a flock covers the whole file; a
 * record lock's bytes fit fcntl's signed offsets. */
static int check_lock(const Roamimg__Fd *d, const Roamimg__FileLock *l, struct img_fault *f)
{
	if (d->kind != ROAMIMG__FD_KIND__FD_REG && d->kind != ROAMIMG__FD_KIND__FD_DIR)
		return fault(f, -IMG_ERR_DECODE, "file lock on a descriptor that is not a file");
	if (l->kind < ROAMIMG__LOCK_KIND__LOCK_FLOCK || l->kind > ROAMIMG__LOCK_KIND__LOCK_OFD)
		return fault(f, -IMG_ERR_DECODE, "file lock of unknown kind");
	if (l->kind == ROAMIMG__LOCK_KIND__LOCK_FLOCK && (l->start || l->has_end))
		return fault(f, -IMG_ERR_DECODE, "flock lock on a range");
	if (l->start > INT64_MAX || (l->has_end && (l->end < l->start || l->end >= INT64_MAX)))
		return fault(f, -IMG_ERR_DECODE, "file lock range out of order or out of range");
	return 0;
}

/* A TCP or UDP socket: addresses of its family's length, a port in range,
 * a backlog only when listening is TCP's, a peer only UDP's. Which options
 * restore sets is its own judgement (sys/inet.c's table). */
static int check_inet(const Roamimg__InetSock *in, struct img_fault *f)
{
	size_t alen = in && in->family == AF_INET ? 4 : 16;

	if (!in)
		return fault(f, -IMG_ERR_DECODE, "TCP or UDP socket without its addresses");
	if ((in->family != AF_INET && in->family != AF_INET6) || (in->type != SOCK_STREAM && in->type != SOCK_DGRAM))
		return fault(f, -IMG_ERR_DECODE, "socket of an unknown family or type");
	if (in->addr.len != alen || in->port > 65535 || (in->has_peer_addr && in->peer_addr.len != alen) ||
	    (in->has_peer_addr != in->has_peer_port) || (in->has_peer_port && (!in->peer_port || in->peer_port > 65535)))
		return fault(f, -IMG_ERR_DECODE, "socket address of the wrong length or port out of range");
	if ((in->has_backlog && (in->type != SOCK_STREAM || in->tcp)) ||
	    (in->has_peer_addr && in->type != SOCK_DGRAM && !in->tcp))
		return fault(f, -IMG_ERR_DECODE, "socket listening or connected where its type cannot");
	if (in->tcp && (in->type != SOCK_STREAM || !in->has_peer_addr || !in->port))
		return fault(f, -IMG_ERR_DECODE, "TCP connection without its two ends");
	if (in->tcp && in->tcp->wscale && (in->tcp->snd_wscale > 14 || in->tcp->rcv_wscale > 14))
		return fault(f, -IMG_ERR_DECODE, "TCP window scale out of range");
	if ((in->has_scope_id || in->has_peer_scope_id) && in->family != AF_INET6)
		return fault(f, -IMG_ERR_DECODE, "interface scope on an IPv4 socket");
	return 0;
}

/* A tree's root: what its processes share, numbered in order, of a kind
 * made once and inherited (stdio: the root's own 0-2), and a descriptor
 * base above every descriptor of its own. */
static int check_tree_objects(const Roamimg__Files *fl, struct img_fault *f)
{
	if (!fl->has_tree_fd_base && !fl->n_tree_objects)
		return 0;
	if (!fl->has_tree_fd_base || fl->tree_fd_base < 3 || fl->tree_fd_base > (1u << 20))
		return fault(f, -IMG_ERR_DECODE, "process tree without a descriptor base in range");
	for (size_t i = 0; i < fl->n_fds; i++)
		if (fl->fds[i]->fd >= fl->tree_fd_base)
			return fault(f, -IMG_ERR_DECODE, "file descriptor above the tree's descriptor base");
	for (size_t i = 0; i < fl->n_tree_objects; i++) {
		const Roamimg__Fd *o = fl->tree_objects[i];
		if (!o->has_shared_id || o->shared_id != i + 1)
			return fault(f, -IMG_ERR_DECODE, "shared descriptions of a tree out of order");
		if (o->kind == ROAMIMG__FD_KIND__FD_EXTERNAL ? o->fd > 2
							   : o->kind != ROAMIMG__FD_KIND__FD_REG && o->kind != ROAMIMG__FD_KIND__FD_DIR &&
								     o->kind != ROAMIMG__FD_KIND__FD_CHR && o->kind != ROAMIMG__FD_KIND__FD_PIPE &&
								     o->kind != ROAMIMG__FD_KIND__FD_INET)
			return fault(f, -IMG_ERR_DECODE, "a shared description of a kind a tree does not share");
	}
	return 0;
}

static int check_files(const Roamimg__Files *fl, struct img_fault *f)
{
	uint32_t *nums = malloc((fl->n_fds ? fl->n_fds : 1) * sizeof(*nums));
	int rc = 0;

	if (!nums)
		return fault(f, -ENOMEM, "out of memory checking the descriptors");
	for (size_t i = 0; i < fl->n_fds && rc == 0; i++) {
		const Roamimg__Fd *d = fl->fds[i];

		if (d->fd >= MAX_FD_NUMBER)
			rc = fault(f, -IMG_ERR_DECODE, "file descriptor number out of range");
		else if (d->kind < ROAMIMG__FD_KIND__FD_REG || d->kind > ROAMIMG__FD_KIND__FD_INET)
			rc = fault(f, -IMG_ERR_DECODE, "file descriptor of unknown kind");
		else if (d->kind == ROAMIMG__FD_KIND__FD_TIMERFD && !d->timer)
			rc = fault(f, -IMG_ERR_DECODE, "timerfd without its timer");
		else if (d->kind == ROAMIMG__FD_KIND__FD_SOCKPAIR &&
			 (!d->has_sock_type || !d->has_pair_id || !d->has_pair_end || d->pair_end > 1))
			rc = fault(f, -IMG_ERR_DECODE, "socket pair end without its type, pair or end");
		else if (d->kind == ROAMIMG__FD_KIND__FD_INET)
			rc = check_inet(d->inet, f);
		else if (d->inet)
			rc = fault(f, -IMG_ERR_DECODE, "socket addresses on a descriptor that is no socket");
		for (size_t w = 0; rc == 0 && w < d->n_inotify; w++)
			if (d->inotify[w]->wd <= 0 || d->inotify[w]->path[0] != '/' ||
			    (w && d->inotify[w]->wd <= d->inotify[w - 1]->wd))
				rc = fault(f, -IMG_ERR_DECODE, "inotify watch out of order or without a path");
		for (size_t w = 0; rc == 0 && w < d->n_watches; w++)
			if (d->watches[w]->fd >= MAX_FD_NUMBER)
				rc = fault(f, -IMG_ERR_DECODE, "epoll watch of a descriptor number out of range");
		for (size_t k = 0; rc == 0 && k < d->n_locks; k++)
			rc = check_lock(d, d->locks[k], f);
		nums[i] = d->fd;
	}
	if (rc == 0 && has_duplicate(nums, fl->n_fds))
		rc = fault(f, -IMG_ERR_DECODE, "file descriptor listed twice");
	if (rc == 0)
		rc = check_tree_objects(fl, f);
	free(nums);
	return rc;
}

static int check_threads(const Roamimg__Threads *t, struct img_fault *f)
{
	uint32_t *tids;
	int rc = 0;

	if (t->n_threads == 0)
		return fault(f, -IMG_ERR_DECODE, "no thread");
	if (!(tids = malloc(t->n_threads * sizeof(*tids))))
		return fault(f, -ENOMEM, "out of memory checking the threads");
	for (size_t i = 0; i < t->n_threads && rc == 0; i++) {
		const Roamimg__Thread *th = t->threads[i];

		if (th->tid <= 0)
			rc = fault(f, -IMG_ERR_DECODE, "thread id not positive");
		else
			rc = check_siginfos(th->pending, th->n_pending, f);
		tids[i] = (uint32_t)th->tid;
	}
	if (rc == 0 && has_duplicate(tids, t->n_threads))
		rc = fault(f, -IMG_ERR_DECODE, "thread listed twice");
	free(tids);
	return rc;
}

int img_siginfo_has(Roamimg__SigInfo *const *v, size_t n, uint32_t signo)
{
	for (size_t k = 0; k < n; k++)
		if (v[k]->signo == signo)
			return 1;
	return 0;
}

ssize_t img_find_vma(const Roamimg__Mm *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (addr < mm->vmas[mid]->start)
			hi = mid;
		else if (addr >= mm->vmas[mid]->end)
			lo = mid + 1;
		else
			return (ssize_t)mid;
	}
	return -1;
}

static int page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];

	for (size_t off = 0; off < IMG_PAGE_SIZE; off += sizeof(zero))
		if (memcmp(p + off, zero, sizeof(zero)))
			return 0;
	return 1;
}

/*
 * Accounts one page block to the mappings it covers. A block may span
 * adjacent mappings (a writer may batch contiguous pages), but no page of it
 * may fall outside every mapping.
 */
static int absorb_pages(struct img_load *ld, const struct img_pages *pg, struct img_fault *f)
{
	uint64_t end = pg->addr + (uint64_t)pg->npages * IMG_PAGE_SIZE;
	ssize_t vi = img_find_vma(ld->mm, pg->addr);
	uint64_t a = pg->addr;

	if (end < pg->addr)
		return fault(f, -IMG_ERR_ORDER, "page block wraps around the address space");
	if (vi < 0)
		return fault(f, -IMG_ERR_ORDER, "page block outside every mapping");
	while (a < end) {
		const Roamimg__Vma *v;

		if ((size_t)vi >= ld->mm->n_vmas || a < ld->mm->vmas[vi]->start)
			return fault(f, -IMG_ERR_ORDER, "page block runs past its mapping");
		v = ld->mm->vmas[vi];
		uint64_t stop = end < v->end ? end : v->end;
		uint64_t n = (stop - a) / IMG_PAGE_SIZE;
		ld->vma_stat[vi].pages += n;
		if ((ld->flags & IMG_LOAD_ZERO) && pg->data) {  /* lazy: no data here */
			const uint8_t *p = pg->data + (a - pg->addr);
			for (uint64_t i = 0; i < n; i++, p += IMG_PAGE_SIZE)
				if (page_is_zero(p)) {
					ld->vma_stat[vi].zero++;
					ld->pages_zero++;
				}
		}
		a = stop;
		vi++;
	}
	ld->pages += pg->npages;
	if (ld->flags & IMG_LOAD_TRACK) {
		if (ld->n_ext == ld->cap_ext) {
			size_t cap = ld->cap_ext ? ld->cap_ext * 2 : 256;
			void *n = realloc(ld->ext, cap * sizeof(*ld->ext));
			if (!n)
				return fault(f, -ENOMEM, "out of memory for the page table");
			ld->ext = n;
			ld->cap_ext = cap;
		}
		ld->ext[ld->n_ext++] = (struct img_extent){pg->addr, pg->npages};
	}
	return 0;
}

/* A DROP record: ranges each inside one private mapping of the current MM. */
static int absorb_drop(struct img_load *ld, const struct img_record *rec, struct img_fault *f)
{
	Roamimg__DropPages *d;
	int rc = img_unpack_drop(rec, &d);

	if (rc < 0)
		return fault(f, rc, "payload does not decode as its schema message");
	if (d->n_addr != d->n_npages)
		rc = fault(f, -IMG_ERR_DECODE, "drop record with unequal address and count lists");
	for (size_t i = 0; rc == 0 && i < d->n_addr; i++) {
		uint64_t a = d->addr[i], n = d->npages[i];
		ssize_t vi = img_find_vma(ld->mm, a);
		if ((a & (IMG_PAGE_SIZE - 1)) || n == 0) {
			rc = fault(f, -IMG_ERR_DECODE, "drop range unaligned or empty");
			break;
		}
		if (vi < 0 || n > (ld->mm->vmas[vi]->end - a) / IMG_PAGE_SIZE) {
			rc = fault(f, -IMG_ERR_ORDER, "drop range outside every mapping, or across two");
			break;
		}
		int kind = ld->mm->vmas[vi]->kind;
		if (kind != ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE && kind != ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE) {
			rc = fault(f, -IMG_ERR_ORDER, "drop range in a mapping that is not private");
			break;
		}
		ld->pages_dropped += n;
	}
	roamimg__drop_pages__free_unpacked(d, NULL);
	return rc;
}

/* Takes ownership of a freshly unpacked message into its slot. */
static int keep_meta(struct img_load *ld, const struct img_reader *r, const struct img_record *rec,
		     struct img_fault *f)
{
	ProtobufCMessage *m;
	int rc = img_unpack(rec, rec->type, &m);

	if (rc < 0)
		return fault(f, rc, "payload does not decode as its schema message");
	switch (rec->type) {
	case IMG_REC_HEADER:
		ld->header = (Roamimg__Header *)m;
		ld->precopy = ld->header->has_precopy && ld->header->precopy;
		return check_header(ld->header, r, f);
	case IMG_REC_PLATFORM:
		ld->platform = (Roamimg__Platform *)m;
		return 0;
	case IMG_REC_PROCESS:
		if (ld->process) {  /* pre-copy: the final one (check_order) */
			ld->process_early = ld->process;
			ld->process = NULL;
		}
		ld->process = (Roamimg__Process *)m;
		return check_process(ld->process, f);
	case IMG_REC_MM: {
		Roamimg__Mm *mm = (Roamimg__Mm *)m;
		int final = ld->mm != NULL;  /* pre-copy: the final one (check_order) */
		if ((rc = check_mm(mm, final, f)) < 0 || (final && (rc = check_final_mm(ld->mm, mm, f)) < 0)) {
			roamimg__mm__free_unpacked(mm, NULL);
			return rc;
		}
		if (final) {
			ld->mm_early = ld->mm;
			free(ld->vma_stat);
		}
		ld->mm = mm;
		ld->vma_stat = calloc(ld->mm->n_vmas ? ld->mm->n_vmas : 1, sizeof(*ld->vma_stat));
		return ld->vma_stat ? 0 : fault(f, -ENOMEM, "out of memory for the mapping table");
	}
	case IMG_REC_FILES:
		ld->files = (Roamimg__Files *)m;
		return check_files(ld->files, f);
	case IMG_REC_THREADS:
		ld->threads = (Roamimg__Threads *)m;
		return check_threads(ld->threads, f);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return fault(f, -IMG_ERR_TYPE, "unknown record type");
}

/* The order of a pre-copy stream (load.h), after its header. */
static int check_order_precopy(const struct img_load *ld, uint32_t type, struct img_fault *f)
{
	uint32_t seen = ld->seen, fin = ld->final_seen;
	int early_done = (seen & EARLY_BITS) == EARLY_BITS;

	if (seen & BIT(IMG_REC_THREADS) && type != IMG_REC_COMMIT)
		return fault(f, -IMG_ERR_ORDER, type == IMG_REC_THREADS ? "threads record repeated"
									 : "record after the threads");
	switch (type) {
	case IMG_REC_PLATFORM:
		return (seen & BIT(type)) ? fault(f, -IMG_ERR_ORDER, "metadata record repeated") : 0;
	case IMG_REC_PROCESS:
	case IMG_REC_MM:
		if (!(seen & BIT(type)))
			return 0;  /* the early one */
		if (!early_done || (fin & BIT(type)))
			return fault(f, -IMG_ERR_ORDER, "metadata record repeated");
		return 0;
	case IMG_REC_FILES:
		if (!early_done)
			return fault(f, -IMG_ERR_ORDER, "pre-copy files record before the early platform, process and mm");
		return (fin & BIT(type)) ? fault(f, -IMG_ERR_ORDER, "metadata record repeated") : 0;
	case IMG_REC_PAGES:
	case IMG_REC_DROP:
		if (!early_done)
			return fault(f, -IMG_ERR_ORDER, "page record before the early platform, process and mm");
		if (fin && fin != FINAL_BITS)
			return fault(f, -IMG_ERR_ORDER, "page record among the final process, mm and files");
		return 0;
	case IMG_REC_THREADS:
		if (fin != FINAL_BITS)
			return fault(f, -IMG_ERR_ORDER, "threads record before the final process, mm and files");
		return 0;
	case IMG_REC_COMMIT:
		if (!(seen & BIT(IMG_REC_THREADS)))
			return fault(f, -IMG_ERR_ORDER, "commit before the threads record");
		return 0;
	default:
		return fault(f, -IMG_ERR_TYPE, "unknown record type");
	}
}

/* The order rules of load.h, before anything is unpacked. */
static int check_order(const struct img_load *ld, uint32_t type, struct img_fault *f)
{
	uint32_t seen = ld->seen;

	if (ld->committed)
		return fault(f, -IMG_ERR_ORDER, "record after the commit record");
	if (type == IMG_REC_HEADER)
		return seen ? fault(f, -IMG_ERR_ORDER, "second header record") : 0;
	if (!(seen & BIT(IMG_REC_HEADER)))
		return fault(f, -IMG_ERR_ORDER, "first record is not the header");
	if (ld->precopy)
		return check_order_precopy(ld, type, f);
	switch (type) {
	case IMG_REC_PLATFORM:
	case IMG_REC_PROCESS:
	case IMG_REC_MM:
	case IMG_REC_FILES:
		if (seen & BIT(type))
			return fault(f, -IMG_ERR_ORDER, "metadata record repeated");
		if (seen & BIT(IMG_REC_THREADS))
			return fault(f, -IMG_ERR_ORDER, "metadata record after the threads");
		return 0;
	case IMG_REC_PAGES:
		if (!(seen & BIT(IMG_REC_MM)))
			return fault(f, -IMG_ERR_ORDER, "page record before the mm record");
		if (seen & BIT(IMG_REC_THREADS))
			return fault(f, -IMG_ERR_ORDER, "page record after the threads");
		return 0;
	case IMG_REC_DROP:
		return fault(f, -IMG_ERR_ORDER, "drop record outside a pre-copy stream");
	case IMG_REC_THREADS:
		if (seen & BIT(IMG_REC_THREADS))
			return fault(f, -IMG_ERR_ORDER, "threads record repeated");
		if ((seen & META_BITS) != META_BITS)
			return fault(f, -IMG_ERR_ORDER, "threads record before the platform, process, mm and files records");
		return 0;
	case IMG_REC_COMMIT:
		if (!(seen & BIT(IMG_REC_THREADS)))
			return fault(f, -IMG_ERR_ORDER, "commit before the threads record");
		return 0;
	default:
		return fault(f, -IMG_ERR_TYPE, "unknown record type");
	}
}

int img_load_record(struct img_load *ld, struct img_reader *r, const struct img_record *rec,
		    struct img_pages *pages, struct img_fault *f)
{
	struct img_pages local;
	int rc;

	if (f) {
		f->record = ld->records + 1;
		f->type = rec->type;
		f->offset = ld->records ? ld->bytes : IMG_PREAMBLE_SIZE;
		f->has_addr = 0;
	}
	if ((rc = check_order(ld, rec->type, f)) < 0)
		return rc;
	/* Pre-copy: FILES, and a second PROCESS or MM, belong to the final picture. */
	int final = ld->precopy && (rec->type == IMG_REC_FILES ||
				    ((rec->type == IMG_REC_PROCESS || rec->type == IMG_REC_MM) && (ld->seen & BIT(rec->type))));
	if (rec->type == IMG_REC_DROP) {
		if ((rc = absorb_drop(ld, rec, f)) < 0)
			return rc;
	} else if (rec->type == IMG_REC_PAGES) {
		if (!pages)
			pages = &local;
		if ((rc = img_decode_pages(r, rec, pages)) < 0)
			return fault(f, rc, rc == -IMG_ERR_CODEC ? "page block does not decompress"
								 : "page block with a bad address, count or length");
		if (f) {
			f->addr = pages->addr;
			f->has_addr = 1;
		}
		if ((rc = absorb_pages(ld, pages, f)) < 0)
			return rc;
		if (rec->len != IMG_PAGE_HDR_SIZE + (uint64_t)pages->npages * IMG_PAGE_SIZE)
			ld->pages_compressed += pages->npages;
	} else if (rec->type == IMG_REC_COMMIT) {
		ld->committed = 1;
	} else if ((rc = keep_meta(ld, r, rec, f)) < 0) {
		return rc;
	}
	if (!ld->records)
		ld->bytes = IMG_PREAMBLE_SIZE;
	if (final)
		ld->final_seen |= BIT(rec->type);
	ld->seen |= BIT(rec->type);
	ld->records++;
	ld->bytes += IMG_RECORD_HDR_SIZE + rec->len;
	ld->rec_count[rec->type]++;
	ld->rec_bytes[rec->type] += rec->len;
	return 0;
}

static int ext_cmp(const void *a, const void *b)
{
	const struct img_extent *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Distinct pages per mapping, from the sorted extents. */
static void count_unique(struct img_load *ld)
{
	uint64_t cur = 0;   /* everything below cur is already counted */

	if (ld->n_ext == 0)
		return;
	qsort(ld->ext, ld->n_ext, sizeof(*ld->ext), ext_cmp);
	for (size_t i = 0; i < ld->n_ext; i++) {
		uint64_t a = ld->ext[i].addr, end = a + ld->ext[i].npages * IMG_PAGE_SIZE;

		if (a < cur)
			a = cur;
		while (a < end) {
			ssize_t vi = img_find_vma(ld->mm, a);
			/* absorb_pages proved every page lay in a mapping, but a
			 * pre-copy round's may have been unmapped since. */
			if (vi < 0) {
				a += IMG_PAGE_SIZE;
				continue;
			}
			uint64_t stop = end < ld->mm->vmas[vi]->end ? end : ld->mm->vmas[vi]->end;
			ld->vma_stat[vi].unique += (stop - a) / IMG_PAGE_SIZE;
			ld->pages_unique += (stop - a) / IMG_PAGE_SIZE;
			a = stop;
		}
		if (end > cur)
			cur = end;
	}
}

int img_load_finish(struct img_load *ld, struct img_fault *f)
{
	if (f) {
		f->record = ld->records + 1;
		f->type = 0;
		f->offset = ld->bytes;
		f->has_addr = 0;
	}
	if (!ld->committed)
		return fault(f, -IMG_ERR_TRUNCATED, "stream ended before the commit record");
	if (!ld->finished && (ld->flags & IMG_LOAD_TRACK))
		count_unique(ld);
	ld->finished = 1;
	return 0;
}

int img_load_next(struct img_load *ld, struct img_reader *r, struct img_record *rec, struct img_pages *pages,
		  struct img_fault *f)
{
	uint64_t at = r->bytes;
	int rc = img_read_record(r, rec);

	if (rc == 0)
		return img_load_finish(ld, f);
	if (rc < 0) {
		if (f) {
			f->record = r->records + 1;
			f->type = rec->type;
			f->offset = at;
			f->has_addr = 0;
			f->what = rc == -IMG_ERR_TRUNCATED ? (r->bytes == at ? "stream ended before the commit record"
									       : "stream ended inside the record")
							    : NULL;
			/* The reader counts a record before its order check. */
			if (rc == -IMG_ERR_ORDER) {
				f->record = r->records;
				f->what = "first record is not the header";
			}
		}
		return rc;
	}
	rc = img_load_record(ld, r, rec, pages, f);
	return rc < 0 ? rc : 1;
}

int img_load_stream(struct img_load *ld, img_read_fn fn, void *ctx, struct img_fault *f)
{
	struct img_reader r;
	struct img_record rec;
	int rc;

	if (f)
		*f = (struct img_fault){0};
	rc = img_reader_init(&r, fn, ctx);
	if (rc < 0)
		fault(f, rc, NULL);   /* record 0: the preamble */
	else
		while ((rc = img_load_next(ld, &r, &rec, NULL, f)) > 0)
			;
	img_reader_fini(&r);
	return rc;
}
