/*
 * The address space: the layout (every mapping with its protection, kind and
 * flags), the identity of every mapped file, and the mm fields PR_SET_MM_MAP
 * will need at restore. The pages are pages.c's.
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sys/fileid.h"
#include "sys/mem.h"

#define PAGE ARCH_PAGE_SIZE

int ckpt_open_mapped(struct ckpt *c, uint64_t start, uint64_t end, const char *path)
{
	char link[64];
	int fd;

	snprintf(link, sizeof(link), "map_files/%llx-%llx", (unsigned long long)start, (unsigned long long)end);
	fd = openat(c->procfd, link, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && path && !strstr(path, " (deleted)"))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Index of the MappedFile for path (as /proc shows it, perhaps ending in
 * " (deleted)"), added on first sight; open_file gives its descriptor. */
static int file_index(struct ckpt *c, const char *shown, int (*open_file)(struct ckpt *, const void *),
		      const void *arg, size_t *cap)
{
	Roamimg__Mm *mm = c->mm;
	char path[PATH_MAX];
	int deleted = 0;

	snprintf(path, sizeof(path), "%s", shown);
	char *del = strstr(path, " (deleted)");
	if (del && !del[10]) {
		*del = '\0';
		deleted = 1;
	}
	for (size_t i = 0; i < mm->n_files; i++)
		if (!strcmp(mm->files[i]->path, path))
			return (int)i;
	if (mm->n_files == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		Roamimg__MappedFile **n = arena_alloc(&c->arena, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		if (mm->n_files)
			memcpy(n, mm->files, mm->n_files * sizeof(*n));
		mm->files = n;
		*cap = ncap;
	}
	Roamimg__MappedFile *f = ARENA_NEW(c, Roamimg__MappedFile, roamimg__mapped_file__init);
	if (!f)
		return -ENOMEM;
	f->path = arena_strdup(&c->arena, path);
	f->deleted = deleted;
	f->has_deleted = 1;
	int fd = open_file(c, arg);
	if (fd < 0)
		return roam_fail(c->err, fd, "opening %s", path);
	struct stat st;
	uint8_t h[16];
	int rc = fstat(fd, &st) < 0 ? -errno : file_hash_cached(fd, h, &f->size);
	close(fd);
	if (rc < 0)
		return roam_fail(c->err, rc, "hashing %s", path);
	f->mode = st.st_mode;
	f->has_mode = 1;
	f->hash.len = 16;
	f->hash.data = arena_memdup(&c->arena, h, 16);
	mm->files[mm->n_files] = f;
	return (int)mm->n_files++;
}

static int open_vma_file(struct ckpt *c, const void *arg)
{
	const struct proc_vma *v = arg;

	return ckpt_open_mapped(c, v->start, v->end, v->path);
}

static int open_exe(struct ckpt *c, const void *arg)
{
	int fd = openat(c->procfd, "exe", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static Roamimg__VmaKind classify(const struct proc_vma *v)
{
	const char *p = v->path;

	if (!strcmp(p, "[vdso]"))
		return ROAMIMG__VMA_KIND__VMA_VDSO;
	if (!strcmp(p, "[vvar]") || !strcmp(p, "[vvar_vclock]"))
		return ROAMIMG__VMA_KIND__VMA_VVAR;
	if (v->shared && (!p[0] || !strncmp(p, "/dev/zero", 9)))
		return ROAMIMG__VMA_KIND__VMA_ANON_SHARED;
	if (p[0] == '/')
		return v->shared ? ROAMIMG__VMA_KIND__VMA_FILE_SHARED : ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE;
	return ROAMIMG__VMA_KIND__VMA_ANON_PRIVATE;
}

static uint32_t madv_bits(uint32_t f)
{
	return ((f & PV_DONTCOPY) ? VMA_MADV_DONTFORK : 0) | ((f & PV_DONTDUMP) ? VMA_MADV_DONTDUMP : 0) |
	       ((f & PV_WIPEONFORK) ? VMA_MADV_WIPEONFORK : 0) | ((f & PV_HUGEPAGE) ? VMA_MADV_HUGEPAGE : 0) |
	       ((f & PV_NOHUGEPAGE) ? VMA_MADV_NOHUGEPAGE : 0) | ((f & PV_MERGEABLE) ? VMA_MADV_MERGEABLE : 0);
}

void ckpt_snapshot(struct ckpt *c)
{
	ckpt_snapshot_drop(c);
	if (c->state == CK_OPEN && proc_read_vmas(c->procfd, &c->snap, &c->nsnap) < 0) {
		c->snap = NULL;   /* the freeze reads smaps itself */
		c->nsnap = 0;
	}
}

void ckpt_snapshot_drop(struct ckpt *c)
{
	proc_free_vmas(c->snap, c->nsnap);
	c->snap = NULL;
	c->nsnap = 0;
}

/* Frozen: the layout from maps with the flags and counts of the snapshot,
 * when maps shows the same mappings. 1 with *out set, 0 when smaps must be
 * read, or a negative error. */
static int layout_from_snapshot(struct ckpt *c, struct proc_vma **out, size_t *n)
{
	struct proc_vma *v;
	size_t nv;
	int rc;

	if (!c->snap || c->state != CK_FROZEN)
		return 0;
	if ((rc = proc_read_maps(c->procfd, &v, &nv)) < 0)
		return rc;
	int same = nv == c->nsnap;
	for (size_t i = 0; same && i < nv; i++) {
		const struct proc_vma *a = &v[i], *b = &c->snap[i];
		same = a->start == b->start && a->end == b->end && a->prot == b->prot && a->shared == b->shared &&
		       a->pgoff == b->pgoff && a->dev_major == b->dev_major && a->dev_minor == b->dev_minor &&
		       a->ino == b->ino && !strcmp(a->path, b->path);
	}
	if (!same) {
		proc_free_vmas(v, nv);
		return 0;
	}
	for (size_t i = 0; i < nv; i++) {
		v[i].vmflags = c->snap[i].vmflags;
		v[i].rss_kb = c->snap[i].rss_kb;
		v[i].swap_kb = c->snap[i].swap_kb;
	}
	*out = v;
	*n = nv;
	return 1;
}

int ckpt_collect_mm(struct ckpt *c)
{
	Roamimg__Mm *mm = ARENA_NEW(c, Roamimg__Mm, roamimg__mm__init);
	size_t files_cap = 0;
	char *auxv;
	size_t auxlen;
	int rc;

	if (!mm)
		return -ENOMEM;
	c->mm = mm;
	/* Remote syscalls mapped and unmapped a scratch page: read the layout again. */
	proc_free_vmas(c->vmas, c->nvmas);
	c->vmas = NULL;
	c->nvmas = 0;
	if ((rc = layout_from_snapshot(c, &c->vmas, &c->nvmas)) < 0 ||
	    (rc == 0 && (rc = proc_read_vmas(c->procfd, &c->vmas, &c->nvmas)) < 0))
		return roam_fail(c->err, rc, "reading /proc/%d/smaps", c->pid);
	c->counts_stale = rc == 1;
	mm->start_code = c->stat.start_code;
	mm->end_code = c->stat.end_code;
	mm->start_data = c->stat.start_data;
	mm->end_data = c->stat.end_data;
	mm->start_brk = c->stat.start_brk;
	mm->brk = c->brk;
	mm->start_stack = c->stat.start_stack;
	mm->arg_start = c->stat.arg_start;
	mm->arg_end = c->stat.arg_end;
	mm->env_start = c->stat.env_start;
	mm->env_end = c->stat.env_end;
	if ((rc = proc_read_file(c->procfd, "auxv", &auxv, &auxlen)) < 0)
		return roam_fail(c->err, rc, "reading /proc/%d/auxv", c->pid);
	mm->auxv.data = arena_memdup(&c->arena, auxv, auxlen);
	mm->auxv.len = auxlen;
	free(auxv);

	mm->vmas = arena_alloc(&c->arena, (c->nvmas ? c->nvmas : 1) * sizeof(*mm->vmas));
	if (!mm->vmas)
		return -ENOMEM;
	for (size_t i = 0; i < c->nvmas; i++) {
		const struct proc_vma *v = &c->vmas[i];
		if ((rc = ckpt_check_vma(c, v)) < 0)
			return rc;
		if (!strcmp(v->path, "[vsyscall]"))
			continue;  /* the kernel's, at a fixed address, in every process */
		Roamimg__Vma *m = ARENA_NEW(c, Roamimg__Vma, roamimg__vma__init);
		if (!m)
			return -ENOMEM;
		m->start = v->start;
		m->end = v->end;
		m->prot = v->prot;
		m->kind = classify(v);
		m->has_pgoff = 1;
		m->pgoff = v->pgoff;
		m->has_madv = 1;
		m->madv = madv_bits(v->vmflags) | ((v->vmflags & PV_NORESERVE) ? VMA_NORESERVE : 0);
		m->has_growsdown = 1;
		m->growsdown = (v->vmflags & PV_GROWSDOWN) != 0;
		if (v->path[0] == '[')
			m->name = arena_strdup(&c->arena, v->path);
		if (m->kind == ROAMIMG__VMA_KIND__VMA_ANON_SHARED) {
			m->has_shm_id = 1;
			m->shm_id = v->ino;
		}
		if (m->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE || m->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED) {
			int idx = file_index(c, v->path, open_vma_file, v, &files_cap);
			if (idx < 0)
				return idx;
			m->has_file_id = 1;
			m->file_id = (uint32_t)idx;
			m->path = mm->files[idx]->path;
			if (m->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE &&
			    (c->opts.carry_files || mm->files[idx]->deleted)) {
				m->has_carried = 1;
				m->carried = 1;
			}
			/* A shared mapping that may become writable needs the file open
			 * for writing at restore: remember it in the protection. */
			if (m->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED && (v->vmflags & PV_MAYWRITE))
				m->madv |= VMA_SHARED_MAYWRITE;
		}
		mm->vmas[mm->n_vmas++] = m;
	}

	char exe[PATH_MAX];
	ssize_t n = readlinkat(c->procfd, "exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		mm->exe_path = arena_strdup(&c->arena, exe);
		/* Even when no mapping shows it (a restored process whose exe was
		 * carried), the exe is recorded, so its link can be given back. */
		int idx = file_index(c, exe, open_exe, NULL, &files_cap);
		if (idx < 0)
			return idx;
		mm->has_exe_file_id = 1;
		mm->exe_file_id = (uint32_t)idx;
	}

	c->stats.vmas = (uint32_t)mm->n_vmas;
	return 0;
}
