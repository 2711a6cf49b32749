/*
 * The address space, rebuilt by remote syscalls in the stopped child:
 *
 *   1. the child's own rseq area is unregistered (the kernel would write to
 *      it on every return to user space, and it is about to vanish);
 *   2. everything but the trampoline is unmapped;
 *   3. the vDSO is mapped at its old address (ARCH_MAP_VDSO), and the layout
 *      of [vvar]/[vdso] is checked against the image;
 *   4. every mapping is made at its address with its protection: anonymous
 *      ones fresh, file ones from their (hash-checked) files, shared
 *      anonymous ones as views (mremap of size 0) of one master per object;
 *   5. pages are written as they stream in (pages.c);
 *   6. after the last page: masters and file descriptors go, and
 *      PR_SET_MM_MAP sets the mm fields (brk, stack, args, env, auxv, exe).
 */
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/mem.h"
#include "sys/proc.h"

#ifndef MREMAP_FIXED
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#endif

int rsys(struct restore *r, long *ret, const char *what, long nr, long a0, long a1, long a2, long a3, long a4,
	 long a5)
{
	return rsys_in(r, &r->rem, ret, what, nr, a0, a1, a2, a3, a4, a5);
}

int rsys_in(struct restore *r, struct remote *in, long *ret, const char *what, long nr, long a0, long a1, long a2,
	    long a3, long a4, long a5)
{
	long v;
	int rc = remote_syscall(in, &v, nr, a0, a1, a2, a3, a4, a5);

	if (rc < 0)
		return roam_fail(r->err, rc, "%s: the new process could not be driven", what);
	if (v < 0 && v > -4096)
		return roam_fail(r->err, (int)v, "%s", what);
	if (ret)
		*ret = v;
	return 0;
}

int tramp_put(struct restore *r, size_t off, const void *data, size_t len, uint64_t *addr)
{
	uint64_t a = r->tramp + ARCH_PAGE_SIZE + off;
	int rc;

	if (off + len > TRAMP_DATA_PAGES * ARCH_PAGE_SIZE)
		return roam_fail(r->err, -E2BIG, "%zu bytes of syscall arguments", len);
	if ((rc = mem_write(r->pid, r->memfd, a, data, len)) < 0)
		return roam_fail(r->err, rc, "writing syscall arguments");
	*addr = a;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* A hole of size bytes that no image mapping and no extra range touches,
 * above 1 MiB and below the top of the user address space. */
int restore_find_hole(const Roamimg__Mm *mm, const uint64_t (*extra)[2], size_t nextra, uint64_t size,
		      uint64_t *out)
{
	size_t n = mm->n_vmas + nextra;
	uint64_t (*v)[2] = malloc((n ? n : 1) * sizeof(*v));
	uint64_t cur = 1ul << 20;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		v[i][0] = mm->vmas[i]->start;
		v[i][1] = mm->vmas[i]->end;
	}
	for (size_t i = 0; i < nextra; i++) {
		v[mm->n_vmas + i][0] = extra[i][0];
		v[mm->n_vmas + i][1] = extra[i][1];
	}
	qsort(v, n, sizeof(*v), cmp_range);
	/* Leave a page of space on both sides: a growsdown stack must not meet us. */
	for (size_t i = 0; i < n; i++) {
		if (v[i][0] > cur && v[i][0] - cur >= size + 2 * ARCH_PAGE_SIZE)
			break;
		if (v[i][1] + ARCH_PAGE_SIZE > cur)
			cur = v[i][1] + ARCH_PAGE_SIZE;
	}
	free(v);
	if (cur + size >= ARCH_TASK_SIZE)
		return -ENOMEM;
	*out = cur;
	return 0;
}

static int file_fd(struct restore *r, uint32_t id, int rw, long *fd)
{
	int *cache = rw ? r->file_fd_rw : r->file_fd;
	const char *path = r->mm->files[id]->path;
	uint64_t a;
	int rc;

	if (cache[id] >= 0) {
		*fd = cache[id];
		return 0;
	}
	if ((rc = tramp_put(r, 0, path, strlen(path) + 1, &a)) < 0)
		return rc;
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "opening %s", path);
	if ((rc = rsys(r, fd, what, SYS_openat, AT_FDCWD, (long)a, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0, 0, 0)) < 0)
		return rc;
	cache[id] = (int)*fd;
	return 0;
}

static int cmp_master(const void *a, const void *b)
{
	const struct shm_master *x = a, *y = b;
	return x->shm_id < y->shm_id ? -1 : x->shm_id > y->shm_id;
}

struct shm_master *restore_find_master(const struct restore *r, uint64_t id)
{
	struct shm_master key = { .shm_id = id };

	return r->nshm ? bsearch(&key, r->shm, r->nshm, sizeof(*r->shm), cmp_master) : NULL;
}

/* The masters in address order: each one's address and index in r->shm
 * (which is in shm_id order). NULL when out of memory; the caller frees. */
static uint64_t (*masters_by_address(const struct restore *r))[2]
{
	uint64_t (*byaddr)[2] = malloc((r->nshm ? r->nshm : 1) * sizeof(*byaddr));

	if (!byaddr)
		return NULL;
	for (size_t k = 0; k < r->nshm; k++) {
		byaddr[k][0] = r->shm[k].addr;
		byaddr[k][1] = k;
	}
	qsort(byaddr, r->nshm, sizeof(*byaddr), cmp_range);
	return byaddr;
}

/*
 * A master mapping for each shared anonymous object of mm that has none
 * yet, big enough for every view of it. The new ones go side by side into
 * one hole of the layout: a process may hold thousands of such objects
 * (python's mmap module makes one per call), and a hole each would search
 * the whole layout as many times. (Two shared objects side by side stay
 * two mappings; a master that has to move leaves a hole among the others.)
 */
static int make_masters(struct restore *r, const Roamimg__Mm *mm)
{
	struct shm_master *add = malloc((mm->n_vmas ? mm->n_vmas : 1) * sizeof(*add));
	uint64_t (*extra)[2] = malloc((r->nshm + 1) * sizeof(*extra));
	size_t nadd = 0, n = 0;
	uint64_t total = 0, addr;
	long ret;
	int rc = 0;

	if (!add || !extra) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		if (v->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED && !restore_find_master(r, v->shm_id))
			add[nadd++] = (struct shm_master){ v->shm_id, 0, v->pgoff + (v->end - v->start) };
	}
	if (!nadd)
		goto out;
	/* One entry per object, as large as its largest view needs. */
	qsort(add, nadd, sizeof(*add), cmp_master);
	for (size_t i = 0; i < nadd; i++) {
		if (n && add[n - 1].shm_id == add[i].shm_id) {
			if (add[i].size > add[n - 1].size)
				add[n - 1].size = add[i].size;
			continue;
		}
		add[n++] = add[i];
	}
	for (size_t i = 0; i < n; i++)
		total += add[i].size;
	extra[0][0] = r->tramp;
	extra[0][1] = r->tramp + TRAMP_SIZE;
	for (size_t i = 0; i < r->nshm; i++) {
		extra[i + 1][0] = r->shm[i].addr;
		extra[i + 1][1] = r->shm[i].addr + r->shm[i].size;
	}
	if ((rc = restore_find_hole(mm, (const uint64_t (*)[2])extra, r->nshm + 1, total, &addr)) < 0) {
		rc = roam_fail(r->err, rc, "no room for %zu shared memory objects of %llu bytes in all", n,
			       (unsigned long long)total);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		add[i].addr = addr;
		if ((rc = rsys(r, &ret, "mapping shared memory", SYS_mmap, (long)addr, (long)add[i].size,
			       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)) < 0)
			goto out;
		addr += add[i].size;
	}
	struct shm_master *all = realloc(r->shm, (r->nshm + n) * sizeof(*all));
	if (!all) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(all + r->nshm, add, n * sizeof(*add));
	r->shm = all;
	r->nshm += n;
	qsort(r->shm, r->nshm, sizeof(*r->shm), cmp_master);
out:
	free(add);
	free(extra);
	return rc;
}

static int map_vdso(struct restore *r)
{
	const Roamimg__Mm *mm = r->mm;
	uint64_t lo = 0;
	long ret, nr, a[6];
	int rc;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		if ((v->kind == ROAMIMG__VMA_KIND__VMA_VDSO || v->kind == ROAMIMG__VMA_KIND__VMA_VVAR) && (!lo || v->start < lo))
			lo = v->start;
	}
	if (!lo)
		return 0;
	if ((rc = arch_map_vdso_syscall(lo, &nr, a)) < 0)
		return roam_fail(r->err, rc, "mapping the vDSO at its old address (no call for it on %s)", ARCH_NAME);
	if ((rc = rsys(r, &ret, "mapping the vDSO at its old address", nr, a[0], a[1], a[2], a[3], a[4], a[5])) < 0)
		return rc;
	/* The kernel lays out [vvar] and [vdso] itself: check it matches. */
	int pfd = proc_open(r->pid);
	struct proc_vma *vmas;
	size_t n;
	if (pfd < 0 || proc_read_vmas(pfd, &vmas, &n) < 0) {
		if (pfd >= 0)
			close(pfd);
		return roam_fail(r->err, -EIO, "reading the layout of the new process");
	}
	close(pfd);
	rc = 0;
	for (size_t i = 0; i < mm->n_vmas && !rc; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		if (v->kind != ROAMIMG__VMA_KIND__VMA_VDSO && v->kind != ROAMIMG__VMA_KIND__VMA_VVAR)
			continue;
		int found = 0;
		for (size_t k = 0; k < n && !found; k++)
			found = vmas[k].start == v->start && vmas[k].end == v->end && v->name && !strcmp(vmas[k].path, v->name);
		if (!found)
			rc = roam_fail(r->err, -ROAM_E_INCOMPAT, "this kernel lays out %s differently (%llx-%llx expected)",
				       v->name ? v->name : "the vDSO", (unsigned long long)v->start, (unsigned long long)v->end);
	}
	proc_free_vmas(vmas, n);
	return rc;
}

/* The name an anonymous mapping was given (prctl PR_SET_VMA_ANON_NAME),
 * shown as [anon:NAME]: best effort, like madvise state. */
static void apply_anon_name(struct restore *r, const Roamimg__Vma *v)
{
	char name[96];
	uint64_t a;
	long ret;

	if (!v->name || strncmp(v->name, "[anon:", 6) || v->kind != ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE)
		return;
	snprintf(name, sizeof(name), "%s", v->name + 6);
	name[strcspn(name, "]")] = '\0';
	if (tramp_put(r, 0, name, strlen(name) + 1, &a) == 0)
		remote_syscall(&r->rem, &ret, SYS_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, (long)v->start,
			       (long)(v->end - v->start), (long)a, 0);
}

static int apply_madvise(struct restore *r, const Roamimg__Vma *v)
{
	apply_anon_name(r, v);
	static const struct { uint32_t bit; int advice; } adv[] = {
		{ VMA_MADV_DONTFORK, MADV_DONTFORK }, { VMA_MADV_DONTDUMP, MADV_DONTDUMP },
		{ VMA_MADV_WIPEONFORK, MADV_WIPEONFORK }, { VMA_MADV_HUGEPAGE, MADV_HUGEPAGE },
		{ VMA_MADV_NOHUGEPAGE, MADV_NOHUGEPAGE }, { VMA_MADV_MERGEABLE, MADV_MERGEABLE },
	};
	long ret;

	for (size_t i = 0; i < sizeof(adv) / sizeof(adv[0]); i++) {
		if (!(v->madv & adv[i].bit))
			continue;
		/* Advice is best effort: THP or KSM may be off on this host. */
		remote_syscall(&r->rem, &ret, SYS_madvise, (long)v->start, (long)(v->end - v->start), adv[i].advice, 0, 0, 0);
	}
	return 0;
}

static int map_one(struct restore *r, const Roamimg__Vma *v)
{
	long len = (long)(v->end - v->start), ret, fd = -1;
	int flags = MAP_FIXED | (v->growsdown ? MAP_GROWSDOWN : 0) | ((v->madv & VMA_NORESERVE) ? MAP_NORESERVE : 0), rc;
	char what[PATH_MAX + 96];

	snprintf(what, sizeof(what), "mapping %llx-%llx %s", (unsigned long long)v->start, (unsigned long long)v->end,
		 v->path ? v->path : (v->name ? v->name : ""));
	switch (v->kind) {
	case ROAMIMG__VMA_KIND__VMA_VDSO:
	case ROAMIMG__VMA_KIND__VMA_VVAR:
		return 0;
	case ROAMIMG__VMA_KIND__VMA_ANON_SHARED: {
		const struct shm_master *m = restore_find_master(r, v->shm_id);
		if (!m)  /* make_masters made one for every object of r->mm */
			return roam_fail(r->err, -ROAM_E_IMAGE, "%s: no master for its shared memory object", what);
		if ((rc = rsys(r, &ret, what, SYS_mremap, (long)(m->addr + v->pgoff), 0, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			       (long)v->start, 0)) < 0)
			return rc;
		if (v->prot != (PROT_READ | PROT_WRITE) &&
		    (rc = rsys(r, &ret, what, SYS_mprotect, (long)v->start, len, v->prot, 0, 0, 0)) < 0)
			return rc;
		return apply_madvise(r, v);
	}
	case ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE:
	case ROAMIMG__VMA_KIND__VMA_FILE_SHARED:
		if (!v->carried) {
			int shared = v->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED;
			if ((rc = file_fd(r, v->file_id, shared && (v->madv & VMA_SHARED_MAYWRITE), &fd)) < 0)
				return rc;
			if ((rc = rsys(r, &ret, what, SYS_mmap, (long)v->start, len, v->prot,
				       flags | (shared ? MAP_SHARED : MAP_PRIVATE), fd, (long)v->pgoff)) < 0)
				return rc;
			return apply_madvise(r, v);
		}
		/* A carried file mapping is anonymous memory now. */
		__attribute__((fallthrough));
	default:
		if ((rc = rsys(r, &ret, what, SYS_mmap, (long)v->start, len, v->prot, flags | MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0)) < 0)
			return rc;
		return apply_madvise(r, v);
	}
}

int restore_layout(struct restore *r)
{
	const Roamimg__Mm *mm = r->mm;
	struct pt_rseq rs;
	long ret;
	int rc;

	r->file_fd = malloc((mm->n_files + 1) * sizeof(int));
	r->file_fd_rw = malloc((mm->n_files + 1) * sizeof(int));
	if (!r->file_fd || !r->file_fd_rw)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_files; i++)
		r->file_fd[i] = r->file_fd_rw[i] = -1;

	if (pt_get_rseq(r->pid, &rs) == 0 && rs.ptr &&
	    (rc = rsys(r, &ret, "unregistering roam's rseq area", SYS_rseq, (long)rs.ptr, rs.len, 1 /* UNREGISTER */,
		       rs.sig, 0, 0)) < 0)
		return rc;
	if ((rc = rsys(r, &ret, "clearing the address space", SYS_munmap, 0, (long)r->tramp, 0, 0, 0, 0)) < 0)
		return rc;
	uint64_t top = r->tramp + TRAMP_SIZE;
	if ((rc = rsys(r, &ret, "clearing the address space", SYS_munmap, (long)top, (long)(ARCH_TASK_SIZE - top), 0, 0,
		       0, 0)) < 0)
		return rc;
	if ((rc = map_vdso(r)) < 0 || (rc = make_masters(r, mm)) < 0)
		return rc;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if ((rc = map_one(r, mm->vmas[i])) < 0)
			return rc;
	return 0;
}

void restore_close_files(struct restore *r)
{
	long ret;

	for (size_t i = 0; i < r->mm->n_files; i++) {
		if (r->file_fd[i] >= 0)
			remote_syscall(&r->rem, &ret, SYS_close, r->file_fd[i], 0, 0, 0, 0, 0);
		if (r->file_fd_rw[i] >= 0)
			remote_syscall(&r->rem, &ret, SYS_close, r->file_fd_rw[i], 0, 0, 0, 0, 0);
		r->file_fd[i] = r->file_fd_rw[i] = -1;
	}
}

/* Does [a, b) meet [s, e)? */
static int meets(uint64_t a, uint64_t b, uint64_t s, uint64_t e)
{
	return a < e && s < b;
}

int restore_hole_beside(const Roamimg__Mm *mm, const Roamimg__Mm *other, const struct restore *occ, size_t skip,
			uint64_t size, uint64_t *out)
{
	size_t n = 0;
	uint64_t (*extra)[2] = malloc((other->n_vmas + occ->nshm + 1) * sizeof(*extra));
	int rc;

	if (!extra)
		return -ENOMEM;
	for (size_t i = 0; i < other->n_vmas; i++) {
		extra[n][0] = other->vmas[i]->start;
		extra[n++][1] = other->vmas[i]->end;
	}
	extra[n][0] = occ->tramp;
	extra[n++][1] = occ->tramp + TRAMP_SIZE;
	for (size_t k = 0; k < occ->nshm; k++)
		if (k != skip) {
			extra[n][0] = occ->shm[k].addr;
			extra[n++][1] = occ->shm[k].addr + occ->shm[k].size;
		}
	rc = restore_find_hole(mm, (const uint64_t (*)[2])extra, n, size, out);
	free(extra);
	return rc;
}

/* A hole of size bytes that neither layout, nor the trampoline, nor any
 * shared memory master but skip uses. */
static int hole_for(struct restore *r, const Roamimg__Mm *early, size_t skip, uint64_t size, uint64_t *out)
{
	return restore_hole_beside(r->ld.mm, early, r, skip, size, out);
}

/* The trampoline moves to a hole of both layouts: a new one is made (the
 * remote syscalls of its making run in the old one), then the old goes. */
static int move_tramp(struct restore *r, const Roamimg__Mm *early)
{
	static const unsigned char code[] = ARCH_TRAMPOLINE_CODE;
	uint64_t addr, old = r->tramp;
	long ret;
	int rc;

	if ((rc = hole_for(r, early, (size_t)-1, TRAMP_SIZE, &addr)) < 0)
		return roam_fail(r->err, rc, "no room to move the trampoline");
	if ((rc = rsys(r, &ret, "moving the trampoline", SYS_mmap, (long)addr, TRAMP_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)) < 0)
		return rc;
	if ((rc = mem_write(r->pid, r->memfd, addr, code, sizeof(code))) < 0)
		return roam_fail(r->err, rc, "writing the moved trampoline");
	if ((rc = rsys(r, &ret, "moving the trampoline", SYS_mprotect, (long)addr, ARCH_PAGE_SIZE, PROT_READ | PROT_EXEC,
		       0, 0, 0)) < 0)
		return rc;
	r->tramp = addr;
	r->rem.ip = addr;
	return rsys(r, &ret, "unmapping the old trampoline", SYS_munmap, (long)old, TRAMP_SIZE, 0, 0, 0, 0);
}

static int move_master(struct restore *r, const Roamimg__Mm *early, size_t k)
{
	uint64_t addr;
	long ret;
	int rc;

	if ((rc = hole_for(r, early, k, r->shm[k].size, &addr)) < 0)
		return roam_fail(r->err, rc, "no room to move a shared memory object");
	if ((rc = rsys(r, &ret, "moving a shared memory object", SYS_mremap, (long)r->shm[k].addr, (long)r->shm[k].size,
		       (long)r->shm[k].size, MREMAP_MAYMOVE | MREMAP_FIXED, (long)addr, 0)) < 0)
		return rc;
	r->shm[k].addr = addr;
	return 0;
}

int restore_mm_update(struct restore *r)
{
	const Roamimg__Mm *early = r->mm, *mm = r->ld.mm;
	long ret;
	int rc;

	/* The trampoline and the shared memory masters were placed in holes of
	 * the early layout: the process may have mapped something there since.
	 * They move out of the way. Both lists are swept in address order (a
	 * process may have thousands of each). */
	uint64_t (*byaddr)[2] = masters_by_address(r);
	size_t p = 0;
	if (!byaddr)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Roamimg__Vma *v = mm->vmas[i];
		rc = 0;
		if (v->fresh && (v->kind == ROAMIMG__VMA_KIND__VMA_VDSO || v->kind == ROAMIMG__VMA_KIND__VMA_VVAR))
			rc = roam_fail(r->err, -ROAM_E_INCOMPAT, "the vDSO moved during the pre-copy");
		else if (meets(v->start, v->end, r->tramp, r->tramp + TRAMP_SIZE))
			rc = move_tramp(r, early);
		/* The sweep goes by where the masters were. One that moved went
		 * to a hole of both layouts, where no mapping meets it. */
		while (rc == 0 && p < r->nshm && byaddr[p][0] + r->shm[byaddr[p][1]].size <= v->start)
			p++;
		for (size_t q = p; rc == 0 && q < r->nshm && byaddr[q][0] < v->end; q++) {
			const struct shm_master *m = &r->shm[byaddr[q][1]];
			if (m->addr == byaddr[q][0] && meets(v->start, v->end, m->addr, m->addr + m->size))
				rc = move_master(r, early, byaddr[q][1]);
		}
		if (rc < 0) {
			free(byaddr);
			return rc;
		}
	}
	free(byaddr);
	/* What the early layout had and the final one does not: unmapped. What
	 * both have, kept or remapped below. */
	size_t first = 0;  /* the first final mapping that may meet early ones from here on */
	for (size_t i = 0; i < early->n_vmas; i++) {
		uint64_t a = early->vmas[i]->start, end = early->vmas[i]->end;
		while (first < mm->n_vmas && mm->vmas[first]->end <= a)
			first++;
		for (size_t k = first; k < mm->n_vmas && a < end; k++) {
			const Roamimg__Vma *v = mm->vmas[k];
			if (v->start >= end)
				break;
			if (v->end <= a)
				continue;
			if (v->start > a && (rc = rsys(r, &ret, "unmapping a mapping gone since the pre-copy", SYS_munmap,
							(long)a, (long)(v->start - a), 0, 0, 0, 0)) < 0)
				return rc;
			a = v->end;
		}
		if (a < end && (rc = rsys(r, &ret, "unmapping a mapping gone since the pre-copy", SYS_munmap, (long)a,
					  (long)(end - a), 0, 0, 0, 0)) < 0)
			return rc;
	}
	/* File indexes are the final MM's from now on. */
	restore_close_files(r);
	int *fd = realloc(r->file_fd, (mm->n_files + 1) * sizeof(int));
	if (fd)
		r->file_fd = fd;
	int *fdrw = realloc(r->file_fd_rw, (mm->n_files + 1) * sizeof(int));
	if (fdrw)
		r->file_fd_rw = fdrw;
	if (!fd || !fdrw)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_files; i++)
		r->file_fd[i] = r->file_fd_rw[i] = -1;
	r->mm = mm;
	if ((rc = make_masters(r, mm)) < 0)
		return rc;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->fresh && (rc = map_one(r, mm->vmas[i])) < 0)
			return rc;
	return 0;
}

int restore_drop(struct restore *r, const struct img_record *rec)
{
	Roamimg__DropPages *d;
	long ret;
	int rc = img_unpack_drop(rec, &d);

	if (rc < 0)
		return roam_fail(r->err, -ROAM_E_IMAGE, "a drop record does not decode");
	/* The loader checked every range lies in one private mapping of r->mm. */
	for (size_t i = 0; i < d->n_addr && rc == 0; i++)
		rc = rsys(r, &ret, "dropping pages", SYS_madvise, (long)d->addr[i], (long)d->npages[i] * ARCH_PAGE_SIZE,
			  MADV_DONTNEED, 0, 0, 0);
	roamimg__drop_pages__free_unpacked(d, NULL);
	return rc;
}

/* The masters go, a run of adjacent ones (make_masters lays them side by
 * side) by one remote munmap: thousands of them, one by one, would stretch
 * the freeze of a migration. */
static int unmap_masters(struct restore *r)
{
	uint64_t (*byaddr)[2] = masters_by_address(r);
	long ret;
	int rc = 0;

	if (!byaddr)
		return -ENOMEM;
	for (size_t k = 0, j; k < r->nshm && rc == 0; k = j) {
		uint64_t end = byaddr[k][0] + r->shm[byaddr[k][1]].size;
		for (j = k + 1; j < r->nshm && byaddr[j][0] == end; j++)
			end += r->shm[byaddr[j][1]].size;
		rc = rsys(r, &ret, "unmapping shared memory masters", SYS_munmap, (long)byaddr[k][0],
			  (long)(end - byaddr[k][0]), 0, 0, 0, 0);
	}
	free(byaddr);
	return rc;
}

int restore_mm_finish(struct restore *r)
{
	const Roamimg__Mm *mm = r->mm;
	long exe = -1;
	int rc;

	if ((rc = unmap_masters(r)) < 0)
		return rc;
	/* The exe link: the file at the exe's path (when its pages were carried,
	 * because it changed, the link still names it). A deleted exe is made
	 * again for a moment, empty, so that the link reads "PATH (deleted)" as
	 * it did: the kernel wants a regular executable file, not its content. */
	const char *made = NULL;
	if (mm->has_exe_file_id && mm->exe_file_id < mm->n_files) {
		const Roamimg__MappedFile *f = mm->files[mm->exe_file_id];
		if (f->deleted) {
			int fd = open(f->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0700);
			if (fd >= 0) {
				close(fd);
				made = f->path;
			}
		}
		if ((!f->deleted || made) && access(f->path, F_OK) == 0 &&
		    (rc = file_fd(r, mm->exe_file_id, 0, &exe)) < 0) {
			if (made)
				unlink(made);
			return rc;
		}
		if (made)
			unlink(made);
	}
	struct prctl_mm_map map = {
		.start_code = mm->start_code, .end_code = mm->end_code,
		.start_data = mm->start_data, .end_data = mm->end_data,
		.start_brk = mm->start_brk, .brk = mm->brk, .start_stack = mm->start_stack,
		.arg_start = mm->arg_start, .arg_end = mm->arg_end,
		.env_start = mm->env_start, .env_end = mm->env_end,
		.auxv_size = (uint32_t)mm->auxv.len, .exe_fd = (uint32_t)exe,
	};
	uint64_t auxv_addr, map_addr;
	if ((rc = tramp_put(r, 4096, mm->auxv.data, mm->auxv.len, &auxv_addr)) < 0)
		return rc;
	map.auxv = (__u64 *)(uintptr_t)auxv_addr;
	if ((rc = tramp_put(r, 0, &map, sizeof(map), &map_addr)) < 0)
		return rc;
	long v;
	rc = remote_syscall(&r->rem, &v, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)map_addr, sizeof(map), 0, 0);
	if (rc == 0 && v == -EPERM && exe >= 0) {
		/* Setting the exe link needs CAP_CHECKPOINT_RESTORE: keep roam's. */
		map.exe_fd = (uint32_t)-1;
		if ((rc = tramp_put(r, 0, &map, sizeof(map), &map_addr)) < 0)
			return rc;
		rc = remote_syscall(&r->rem, &v, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)map_addr, sizeof(map), 0, 0);
	}
	if (rc < 0 || v < 0)
		return roam_fail(r->err, rc < 0 ? rc : (int)v, "setting the mm fields (PR_SET_MM_MAP)");
	for (size_t i = 0; i < mm->n_files; i++) {
		if (r->file_fd[i] >= 0)
			remote_syscall(&r->rem, &v, SYS_close, r->file_fd[i], 0, 0, 0, 0, 0);
		if (r->file_fd_rw[i] >= 0)
			remote_syscall(&r->rem, &v, SYS_close, r->file_fd_rw[i], 0, 0, 0, 0, 0);
	}
	return 0;
}
