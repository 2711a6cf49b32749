/*
 * The allowlist: anything outside the supported state is refused before the
 * process is frozen, naming the resource. The same checks run again once it
 * is frozen, since the process may have changed in between.
 */
#include "ckpt/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define refuse(c, ...) roam_fail((c)->err, -ROAM_E_REFUSED, __VA_ARGS__)

/* Namespaces other than ours cannot be recreated (time namespaces are the
 * exception: their clock offsets travel in the image). */
static int check_namespaces(struct ckpt *c)
{
	static const char *const kinds[] = { "mnt", "net", "pid", "ipc", "uts", "user", "cgroup" };
	char mine[64], theirs[64];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct stat a, b;
		snprintf(mine, sizeof(mine), "/proc/self/ns/%s", kinds[i]);
		snprintf(theirs, sizeof(theirs), "ns/%s", kinds[i]);
		if (stat(mine, &a) < 0)
			continue;  /* the kernel lacks this kind */
		if (fstatat(c->procfd, theirs, &b, 0) < 0)
			return roam_fail(c->err, -errno, "reading the %s namespace of pid %d", kinds[i], c->pid);
		if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
			return refuse(c, "foreign %s namespace (the process is not in roam's)", kinds[i]);
	}
	return 0;
}

static int check_rlimits(struct ckpt *c)
{
	static const char *const names[RLIM_NLIMITS] = {
		"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
		"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
	};

	uint64_t lcur[RLIM_NLIMITS], lmax[RLIM_NLIMITS];

	if (proc_read_limits(c->procfd, lcur, lmax, RLIM_NLIMITS) != RLIM_NLIMITS)
		return roam_fail(c->err, -EIO, "reading /proc/%d/limits", c->pid);
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit theirs = { lcur[r], lmax[r] }, mine;
		if (getrlimit(r, &mine) < 0)
			continue;
		/* Without CAP_SYS_RESOURCE no one here can raise a hard limit above
		 * ours: refuse now rather than clamp silently at restore. */
		if (theirs.rlim_max > mine.rlim_max) {
			char what[96];
			snprintf(what, sizeof(what), "%s", names[r] ? names[r] : "?");
			return roam_fail(c->err, -ROAM_E_REFUSED,
					 "hard RLIMIT_%s %llu is above what this host can grant (%llu)", what,
					 (unsigned long long)theirs.rlim_max, (unsigned long long)mine.rlim_max);
		}
	}
	return 0;
}

static int shared_anon(const struct proc_vma *v)
{
	return v->shared && !strncmp(v->path, "/dev/zero", 9);
}

/* Ours, the process's shared anonymous mappings, sorted by object. */
static int cmp_object(const void *a, const void *b)
{
	const struct proc_vma *x = *(const struct proc_vma *const *)a, *y = *(const struct proc_vma *const *)b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->dev_major != y->dev_major)
		return x->dev_major < y->dev_major ? -1 : 1;
	return x->dev_minor < y->dev_minor ? -1 : x->dev_minor > y->dev_minor;
}

/* Shared anonymous memory goes with the process as its own. Another process
 * mapping the same object (one the process was forked from, say) would no
 * longer share it after a restore, and its writes during a pre-copy are no
 * writes in this process's page tables: refused. Every process's maps are
 * read, and only for a process that has such memory (each of their shared
 * mappings looked up among the process's, which may be thousands); a
 * process whose maps we may not read is passed over. Checked before the
 * freeze only: a new sharer would have to be a child, refused then. */
static int check_shared_anon(struct ckpt *c)
{
	const struct proc_vma **ours = malloc((c->nvmas ? c->nvmas : 1) * sizeof(*ours));
	size_t nours = 0;
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0;

	if (!ours)
		return -ENOMEM;
	for (size_t i = 0; i < c->nvmas; i++)
		if (shared_anon(&c->vmas[i]))
			ours[nours++] = &c->vmas[i];
	if (!nours || !(d = opendir("/proc")))
		goto out;
	qsort(ours, nours, sizeof(*ours), cmp_object);
	while (rc == 0 && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		struct proc_vma *theirs;
		size_t n;
		if (pid <= 0 || pid == c->pid)
			continue;
		int dirfd = proc_open(pid);
		if (dirfd < 0)
			continue;
		if (proc_read_maps(dirfd, &theirs, &n) == 0) {
			for (size_t i = 0; i < n && rc == 0; i++) {
				const struct proc_vma *t = &theirs[i], *const *o;
				if (shared_anon(t) && (o = bsearch(&t, ours, nours, sizeof(*ours), cmp_object)))
					rc = refuse(c, "shared anonymous memory at %llx-%llx, mapped by pid %d too",
						    (unsigned long long)(*o)->start, (unsigned long long)(*o)->end, pid);
			}
			proc_free_vmas(theirs, n);
		}
		close(dirfd);
	}
out:
	if (d)
		closedir(d);
	free(ours);
	return rc;
}

int ckpt_check_process(struct ckpt *c, int every_flag)
{
	char v[128];
	int rc;

	free(c->status);
	c->status = NULL;
	if ((rc = proc_read_file(c->procfd, "status", &c->status, NULL)) < 0)
		return roam_fail(c->err, rc, "reading /proc/%d/status", c->pid);
	if ((rc = proc_parse_stat(c->procfd, &c->stat)) < 0)
		return roam_fail(c->err, rc, "reading /proc/%d/stat", c->pid);

	if (c->state == CK_OPEN) {
		if (c->stat.state == 'T')
			return roam_fail(c->err, -ROAM_E_REFUSED, "process %d is stopped", c->pid);
		if (!proc_status_value(c->status, "TracerPid", v, sizeof(v)) && atoi(v) != 0)
			return roam_fail(c->err, -ROAM_E_REFUSED, "process %d is already traced by pid %s", c->pid, v);
	}
	if (c->stat.state == 'Z' || c->stat.state == 'X')
		return roam_fail(c->err, -ROAM_E_REFUSED, "process %d is a zombie", c->pid);
	if (c->stat.state == 't' && c->state == CK_OPEN)
		return roam_fail(c->err, -ROAM_E_REFUSED, "process %d is stopped by a tracer", c->pid);
	if (!proc_status_value(c->status, "Seccomp", v, sizeof(v)) && atoi(v) != 0)
		return refuse(c, "seccomp filter (mode %s)", v);

	pid_t child = 0;
	if (!c->opts.tree && (rc = proc_count_children(c->procfd, &child)) > 0)
		return roam_fail(c->err, -ROAM_E_REFUSED,
				 "child process %d (a process tree moves only by roam checkpoint and restore yet)",
				 child);
	if ((rc = check_namespaces(c)) < 0)
		return rc;

	char root[PATH_MAX];
	ssize_t n = readlinkat(c->procfd, "root", root, sizeof(root) - 1);
	if (n < 0)
		return roam_fail(c->err, -errno, "reading the root of pid %d", c->pid);
	root[n] = '\0';
	if (strcmp(root, "/"))
		return refuse(c, "chroot to %s", root);

	/* A session leader's controlling terminal cannot be given back to it. */
	if (c->stat.session == c->pid && c->stat.tty_nr != 0)
		return refuse(c, "%s", "controlling terminal of the session it leads");
	if ((rc = check_rlimits(c)) < 0)
		return rc;

	/* Once frozen, the mappings are checked as they are collected: reading
	 * smaps walks every page table, which is worth doing once (ckpt.h). */
	if (c->state == CK_OPEN) {
		proc_free_vmas(c->vmas, c->nvmas);
		c->vmas = NULL;
		c->nvmas = 0;
		if ((rc = (every_flag ? proc_read_vmas : proc_read_maps)(c->procfd, &c->vmas, &c->nvmas)) < 0)
			return roam_fail(c->err, rc, "reading /proc/%d/%s", c->pid, every_flag ? "smaps" : "maps");
		for (size_t i = 0; i < c->nvmas; i++)
			if ((rc = ckpt_check_vma(c, &c->vmas[i])) < 0)
				return rc;
		if ((rc = check_shared_anon(c)) < 0)
			return rc;
	}
	return ckpt_check_fds(c);
}

static int is_special(const char *path)
{
	return !strcmp(path, "[heap]") || !strcmp(path, "[stack]") || !strcmp(path, "[vdso]") ||
	       !strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]") || !strcmp(path, "[vsyscall]") ||
	       !strncmp(path, "[anon:", 6) || !strncmp(path, "[stack:", 7);
}

int ckpt_check_vma(struct ckpt *c, const struct proc_vma *v)
{
	const char *p = v->path;
	char what[PATH_MAX + 64];

	snprintf(what, sizeof(what), "mapping %llx-%llx %s", (unsigned long long)v->start,
		 (unsigned long long)v->end, p);
	if (p[0] == '[')  /* the kernel's own: [vvar] is a PFN map, legitimately */
		return is_special(p) ? 0 : refuse(c, "%s (unknown special mapping)", what);
	if (v->vmflags & (PV_IO | PV_PFNMAP))
		return refuse(c, "%s (device memory)", what);
	/* maps shows anonymous MAP_HUGETLB memory by this name, smaps the flag */
	if ((v->vmflags & PV_HUGETLB) || !strncmp(p, "/anon_hugepage", 14))
		return refuse(c, "%s (hugetlbfs)", what);
	/* Pre-copy's own write-protection shows as a registration. */
	if ((v->vmflags & PV_UFFD) && !c->pre)
		return refuse(c, "%s (registered with userfaultfd)", what);
	if (!p[0])
		return 0;
	if (!strncmp(p, "/SYSV", 5))
		return refuse(c, "%s (SysV shared memory)", what);
	if (!strncmp(p, "/dev/zero", 9) && v->shared)
		return 0;  /* shared anonymous memory */
	if (!strncmp(p, "/memfd:", 7))
		return refuse(c, "%s (memfd)", what);
	if (!strncmp(p, "anon_inode:", 11))
		return refuse(c, "%s (anonymous inode)", what);
	if (p[0] != '/')
		return refuse(c, "%s (unknown kind)", what);

	/* A file mapping: only regular files. map_files opens the very file. */
	char link[64];
	struct stat st;
	snprintf(link, sizeof(link), "map_files/%llx-%llx", (unsigned long long)v->start,
		 (unsigned long long)v->end);
	if (fstatat(c->procfd, link, &st, 0) == 0 && !S_ISREG(st.st_mode))
		return refuse(c, "%s (not a regular file)", what);
	if (v->shared && strstr(p, " (deleted)"))
		return refuse(c, "%s (shared mapping of a deleted file)", what);
	return 0;
}
