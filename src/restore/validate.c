/*
 * May this image run here, as this caller? Everything that can be decided
 * before a process exists is decided here, so that a refusal costs nothing.
 */
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "sys/clock.h"
#include "sys/fileid.h"
#include "sys/proc.h"

/* Our own capability sets, from /proc/self/status, read once per restore. */
struct caps {
	uint64_t prm, eff, inh, amb, bnd;
};

static void own_caps(struct caps *c)
{
	char *text = NULL;

	memset(c, 0, sizeof(*c));
	if (proc_read_file(AT_FDCWD, "/proc/self/status", &text, NULL) < 0)
		return;
	c->prm = proc_status_hex(text, "CapPrm");
	c->eff = proc_status_hex(text, "CapEff");
	c->inh = proc_status_hex(text, "CapInh");
	c->amb = proc_status_hex(text, "CapAmb");
	c->bnd = proc_status_hex(text, "CapBnd");
	free(text);
}

/* Credentials are compared, never granted: only root may restore an image
 * of another user, or one holding capabilities it lacks. */
static int check_creds(struct restore *r)
{
	const Roamimg__Creds *c = r->ld.process->creds;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	if (eu == 0)
		return 0;
	if (c->uid != ru || c->euid != eu || c->suid != su || c->fsuid != eu)
		return roam_fail(r->err, -ROAM_E_PERM, "the image runs as uid %u, you are uid %u", c->euid, eu);
	if (c->gid != rg || c->egid != eg || c->sgid != sg || c->fsgid != eg)
		return roam_fail(r->err, -ROAM_E_PERM, "the image runs as gid %u, you are gid %u", c->egid, eg);
	gid_t groups[1024];
	int ng = getgroups(1024, groups);
	for (size_t i = 0; i < c->n_groups; i++) {
		int found = 0;
		for (int j = 0; j < ng && !found; j++)
			found = groups[j] == c->groups[i];
		if (!found && c->groups[i] != eg)
			return roam_fail(r->err, -ROAM_E_PERM, "the image holds group %u, which you lack", c->groups[i]);
	}
	struct caps own;
	own_caps(&own);
	if ((c->cap_prm & ~own.prm) || (c->cap_eff & ~own.eff) || (c->cap_inh & ~(own.inh | own.prm)) ||
	    (c->cap_amb & ~own.amb))
		return roam_fail(r->err, -ROAM_E_PERM, "the image holds capabilities you lack (permitted %llx)",
				 (unsigned long long)c->cap_prm);
	return 0;
}

static int check_platform(struct restore *r)
{
	const Roamimg__Platform *p = r->ld.platform;
	uint64_t have = arch_xfeatures();

	if (p->has_xfeatures && (p->xfeatures & ~have))
		return roam_fail(r->err, -ROAM_E_INCOMPAT,
				 "the image uses XSAVE features %#llx that this CPU lacks (it has %#llx)",
				 (unsigned long long)p->xfeatures, (unsigned long long)have);
	if (p->n_cpuid_features) {
		uint32_t words[ARCH_CPUID_WORDS];
		arch_cpuid_features(words);
		for (size_t i = 0; i < p->n_cpuid_features && i < ARCH_CPUID_WORDS; i++)
			if (p->cpuid_features[i] & ~words[i])
				return roam_fail(r->err, -ROAM_E_INCOMPAT,
						 "the image's CPU had features this one lacks (CPUID word %zu: %08x)",
						 i, p->cpuid_features[i] & ~words[i]);
	}
	if (p->has_vdso_hash) {
		/* The process may hold return addresses into the vDSO: it must be the
		 * very same code, at the same place. */
		uint64_t base = getauxval(AT_SYSINFO_EHDR);
		if (!base || p->vdso_hash.len != 16)
			return roam_fail(r->err, -ROAM_E_INCOMPAT, "this host has no vDSO");
		XXH128_canonical_t canon;
		XXH128_canonicalFromHash(&canon, XXH3_128bits((const void *)(uintptr_t)base, p->vdso_size));
		if (memcmp(canon.digest, p->vdso_hash.data, 16))
			return roam_fail(r->err, -ROAM_E_INCOMPAT,
					 "this kernel's vDSO differs from the one the process was using");
	}
	return 0;
}

static int check_rlimits(struct restore *r)
{
	const Roamimg__Process *p = r->ld.process;

	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit mine;
		if (getrlimit((int)p->rlimits[i]->resource, &mine) < 0)
			continue;
		if (p->rlimits[i]->max > mine.rlim_max)
			return roam_fail(r->err, -ROAM_E_INCOMPAT,
					 "hard rlimit %u of the image (%llu) is above what this host grants (%llu)",
					 p->rlimits[i]->resource, (unsigned long long)p->rlimits[i]->max,
					 (unsigned long long)mine.rlim_max);
	}
	return 0;
}

/* Every file the image maps without carrying its pages must be the very
 * same file here: same content hash. */
static int check_files(struct restore *r)
{
	const Roamimg__Mm *mm = r->ld.mm;

	for (size_t i = 0; i < mm->n_files; i++) {
		const Roamimg__MappedFile *f = mm->files[i];
		int needed = 0;
		for (size_t k = 0; k < mm->n_vmas; k++)
			if (mm->vmas[k]->kind == ROAMIMG__VMA_KIND__VMA_FILE_SHARED && mm->vmas[k]->file_id == i &&
			    access(f->path, F_OK) < 0)
				return roam_fail(r->err, -ROAM_E_INCOMPAT, "shared mapped file %s: %s", f->path,
						 strerror(errno));
		for (size_t k = 0; k < mm->n_vmas && !needed; k++) {
			const Roamimg__Vma *v = mm->vmas[k];
			/* A shared mapping's file is the process's own state, changing
			 * under it: it must exist, its content is whatever it is now. */
			needed = v->has_file_id && v->file_id == i && v->kind == ROAMIMG__VMA_KIND__VMA_FILE_PRIVATE &&
				 !v->carried;
		}
		if (!needed)
			continue;
		int fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return roam_fail(r->err, -ROAM_E_INCOMPAT, "mapped file %s: %s", f->path, strerror(errno));
		uint8_t h[16];
		uint64_t size;
		int rc = file_hash_cached(fd, h, &size);
		close(fd);
		if (rc < 0)
			return roam_fail(r->err, rc, "hashing %s", f->path);
		if (f->hash.len != 16 || memcmp(h, f->hash.data, 16) || size != f->size)
			return roam_fail(r->err, -ROAM_E_INCOMPAT,
					 "mapped file %s differs from the one checkpointed (content hash); "
					 "checkpoint with --carry-files to carry its pages", f->path);
	}
	return 0;
}

static int check_files_open(struct restore *r)
{
	const Roamimg__Files *fs = r->ld.files;

	for (size_t i = 0; i < fs->n_fds; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		/* Given by the caller, or (in a tree but its root) by the root. */
		int inherited = (d->fd <= 2 && r->opts.stdio[d->fd] >= 0) || (r->tree_root && d->has_shared_id);
		if (inherited)
			continue;
		if (d->kind == ROAMIMG__FD_KIND__FD_EXTERNAL)
			return roam_fail(r->err, -ROAM_E_INCOMPAT,
					 "fd %u was %s, outside the process: restore with --inherit-stdio", d->fd,
					 d->external ? d->external : "external");
		if ((d->kind == ROAMIMG__FD_KIND__FD_REG || d->kind == ROAMIMG__FD_KIND__FD_DIR ||
		     d->kind == ROAMIMG__FD_KIND__FD_CHR) && (!d->path || access(d->path, F_OK) < 0) &&
		    !(d->path && (!strncmp(d->path, "/proc/self/", 11) || !strncmp(d->path, "/proc/thread-self/", 18))))
			return roam_fail(r->err, -ROAM_E_INCOMPAT, "fd %u: %s does not exist here", d->fd,
					 d->path ? d->path : "(no path)");
	}
	return 0;
}

/* A restored process must never see its monotonic clocks go backwards:
 * where the image is ahead of this host (a reboot, another host) it needs a
 * time namespace whose offsets make up the difference. */
static int check_clocks(struct restore *r)
{
	const Roamimg__Clocks *c = r->ld.process->clocks;
	int64_t mono = c->monotonic_ns - clock_ns(CLOCK_MONOTONIC);
	int64_t boot = c->boottime_ns - clock_ns(CLOCK_BOOTTIME);

	r->timens_mono_ns = mono > 0 ? mono : 0;
	r->timens_boot_ns = boot > 0 ? boot : 0;
	if ((r->timens_mono_ns || r->timens_boot_ns) && geteuid() != 0)
		return roam_fail(r->err, -ROAM_E_PERM,
				 "the image's clocks are %.3f s ahead of this host's; restoring it needs a time "
				 "namespace, which needs root", (double)(mono > boot ? mono : boot) / 1e9);
	return 0;
}

/* The image's credentials are exactly ours (the usual case: a user restoring
 * their own process): the child and its threads inherit them, and nothing
 * needs setting. */
static int creds_are_ours(const Roamimg__Creds *c)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[1024];
	int ng;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	if (c->uid != ru || c->euid != eu || c->suid != su || c->fsuid != eu || c->gid != rg || c->egid != eg ||
	    c->sgid != sg || c->fsgid != eg)
		return 0;
	ng = getgroups(1024, groups);
	if (ng < 0 || (size_t)ng != c->n_groups)
		return 0;
	for (size_t i = 0; i < c->n_groups; i++) {
		int found = 0;
		for (int j = 0; j < ng && !found; j++)
			found = groups[j] == c->groups[i];
		if (!found)
			return 0;
	}
	struct caps own;
	own_caps(&own);
	return c->cap_prm == own.prm && c->cap_eff == own.eff && c->cap_inh == own.inh && c->cap_amb == own.amb &&
	       c->cap_bnd == own.bnd;
}

int restore_validate_final(struct restore *r)
{
	int rc;

	if ((rc = check_creds(r)) < 0 || (rc = check_rlimits(r)) < 0 || (rc = check_files(r)) < 0 ||
	    (rc = check_files_open(r)) < 0)
		return rc;
	r->creds_ours = creds_are_ours(r->ld.process->creds);
	if (access(r->ld.process->cwd, X_OK) < 0)
		return roam_fail(r->err, -ROAM_E_INCOMPAT, "working directory %s: %s", r->ld.process->cwd,
				 strerror(errno));
	return 0;
}

/* A pre-copy stream is checked twice: here, on its early picture (no
 * FILES yet), and by restore_validate_final. */
int restore_validate(struct restore *r)
{
	int rc;

	if ((rc = check_creds(r)) < 0 || (rc = check_platform(r)) < 0 || (rc = check_rlimits(r)) < 0 ||
	    (rc = check_files(r)) < 0 || (r->ld.files && (rc = check_files_open(r)) < 0) ||
	    (rc = check_clocks(r)) < 0)
		return rc;
	r->creds_ours = creds_are_ours(r->ld.process->creds);
	if (access(r->ld.process->cwd, X_OK) < 0)
		return roam_fail(r->err, -ROAM_E_INCOMPAT, "working directory %s: %s", r->ld.process->cwd,
				 strerror(errno));
	return 0;
}
