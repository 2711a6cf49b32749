/*
 * Job cgroups: every job is a folder of its own, in the cgroup2 tree when
 * there is one (mounted at /sys/fs/cgroup, or beside v1 at
 * /sys/fs/cgroup/unified) and in the v1 hierarchies roam uses (cpuacct for
 * CPU time, pids and freezer for tracking) when they are mounted. A folder
 * holds the whole process tree, so signals and the final kill reach every
 * process of the job and nothing escapes by double-forking.
 *
 *   <hierarchy><roamd's own cgroup>/roam.<host>/<job id>
 *
 * A v1 hierarchy is used only where there is no cgroup2 tree (see
 * cgroup_init), but for the memory controller: with a job memory limit
 * (roamd --job-mem-max), jobs go into the v1 memory hierarchy too where the
 * cgroup2 tree lacks that controller (a host whose memory controller is
 * bound to v1 while cgroup2 is mounted beside it as "unified"). The host folder also gives each host its own PSI file (cpu.pressure on v2),
 * which matters when several roamd share one kernel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "daemon/roamd.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

/* pids first: its cgroup.procs is the job's process list on v1. */
static const char *const v1_names[] = {"pids", "freezer", "cpuacct"};

/* Folders whose rmdir failed while their last processes died: retried. */
#define MAX_STALE 256
static char *stale[MAX_STALE];

/* roamd's own cgroup in a hierarchy, from /proc/self/cgroup ("" for "/"). */
static void own_path(const char *controller, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512];

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = 0;
		b[strcspn(b + 1, "\n") + 1] = 0;
		bool match = controller ? false : !strcmp(a + 1, "");
		if (controller)
			for (char *tok = strtok(a + 1, ","); tok; tok = strtok(NULL, ","))
				if (!strcmp(tok, controller))
					match = true;
		if (match) {
			strfmt(out, cap, "%s", strcmp(b + 1, "/") ? b + 1 : "");
			break;
		}
	}
	fclose(f);
}

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static int write_file(const char *path, const char *s);
static void remember_stale(const char *dir);
static void kill_leftovers(const char *base, bool v2);

/* Whether the space-separated list in file path names word. */
static bool file_has_word(const char *path, const char *word)
{
	char buf[1024];
	size_t n = strlen(word);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return false;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0)
		return false;
	buf[got] = 0;
	for (char *p = buf; (p = strstr(p, word)); p += n)
		if ((p == buf || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

/*
 * Where the job memory limit can be enforced: in the cgroup2 tree when its
 * memory controller can be enabled for our folders (in roamd's own cgroup
 * and in the host folder; enabling it in a folder that holds processes
 * itself, as a systemd service's, is refused: give roamd a delegated
 * subtree), else in the v1 memory hierarchy. Sets roamd->mem_max.
 */
static void memory_init(const char *v2_own)
{
	char own[256], base[300], path[400];

	roamd->cg_mem_v1 = -1;
	if (!roamd->cfg.job_mem_max)
		return;
	if (roamd->cg_v2_base[0]) {
		strfmt(path, sizeof(path), "%s/cgroup.subtree_control", v2_own);
		/* A cgroup2 folder that holds processes cannot hand a controller
		 * down (no internal processes): a roamd in its own folder, as a
		 * delegated systemd service is, moves into a leaf of it first. */
		if (write_file(path, "+memory") == -EBUSY) {
			char self[400], pid[32];
			strfmt(self, sizeof(self), "%s/roamd.%s", v2_own, roamd->cfg.name);
			snprintf(pid, sizeof(pid), "%d", (int)getpid());
			if ((mkdir(self, 0755) == 0 || errno == EEXIST) &&
			    strfmt(self, sizeof(self), "%s/roamd.%s/cgroup.procs", v2_own, roamd->cfg.name) == 0 &&
			    write_file(self, pid) == 0)
				write_file(path, "+memory");
		}
		strfmt(path, sizeof(path), "%s/cgroup.subtree_control", roamd->cg_v2_base);
		write_file(path, "+memory");
		if (file_has_word(path, "memory")) {
			roamd->mem_max = roamd->cfg.job_mem_max;
			log_info("job memory limit %llu MiB (cgroup2 memory.max)",
				 (unsigned long long)(roamd->mem_max >> 20));
			return;
		}
	}
	if (strcmp(roamd->cfg.cgroup_mode, "v2") && roamd->ncg_v1 < 4 &&
	    is_fs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC)) {
		own_path("memory", own, sizeof(own));
		strfmt(base, sizeof(base), "/sys/fs/cgroup/memory%s/roam.%s", own, roamd->cfg.name);
		if ((mkdir(base, 0755) == 0 || errno == EEXIST) && access(base, W_OK) == 0) {
			kill_leftovers(base, false);
			roamd->cg_mem_v1 = (int)roamd->ncg_v1;
			strfmt(roamd->cg_v1_base[roamd->ncg_v1++], sizeof(roamd->cg_v1_base[0]), "%s", base);
			roamd->mem_max = roamd->cfg.job_mem_max;
			log_info("job memory limit %llu MiB (cgroup v1 %s, memory.limit_in_bytes)",
				 (unsigned long long)(roamd->mem_max >> 20), base);
			return;
		}
	}
	log_warn("--job-mem-max: no memory controller this roamd can use (cgroup2 or v1): jobs run "
		 "without the limit");
}

/*
 * Job folders left by an earlier roamd of this host: their homes were told
 * the host was lost (roam run exited 255), so the processes must not run on
 * unseen. Kill them and remove the folders.
 */
static void kill_leftovers(const char *base, bool v2)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char path[600];

	if (!d)
		return;
	while ((e = readdir(d))) {
		FILE *f;
		long pid;

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (v2 && strfmt(path, sizeof(path), "%s/%s/cgroup.kill", base, e->d_name) == 0 &&
		    write_file(path, "1") == 0) {
			log_warn("killed the processes of job %s, left by an earlier roamd", e->d_name);
		} else if (strfmt(path, sizeof(path), "%s/%s/cgroup.procs", base, e->d_name) == 0 &&
			   (f = fopen(path, "re"))) {
			int n = 0;
			while (fscanf(f, "%ld", &pid) == 1)
				n += kill((pid_t)pid, SIGKILL) == 0;
			fclose(f);
			if (n)
				log_warn("killed %d processes of job %s, left by an earlier roamd", n, e->d_name);
		}
		if (strfmt(path, sizeof(path), "%s/%s", base, e->d_name) == 0)
			remember_stale(path);
	}
	closedir(d);
}

void cgroup_init(void)
{
	char own[256], base[300], v2own[300];
	const char *v2 = NULL;

	const char *mode = roamd->cfg.cgroup_mode;

	roamd->cg_mem_v1 = -1;
	if (!strcmp(mode, "none")) {
		if (roamd->cfg.job_mem_max)
			log_warn("--job-mem-max needs cgroups (--cgroup none): jobs run without the limit");
		return;
	}
	if (strcmp(mode, "v1") && is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC))
		v2 = "/sys/fs/cgroup";
	else if (strcmp(mode, "v1") && is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC))
		v2 = "/sys/fs/cgroup/unified";
	v2own[0] = 0;
	if (v2) {
		own_path(NULL, own, sizeof(own));
		strfmt(v2own, sizeof(v2own), "%s%s", v2, own);
		strfmt(base, sizeof(base), "%s%s/roam.%s", v2, own, roamd->cfg.name);
		if ((mkdir(base, 0755) == 0 || errno == EEXIST) && access(base, W_OK) == 0) {
			strfmt(roamd->cg_v2_base, sizeof(roamd->cg_v2_base), "%s", base);
			kill_leftovers(base, true);
		} else
			log_warn("cgroup2 %s: %s; jobs get no v2 cgroup", base, strerror(errno));
	}
	/* Where cgroup2 exists it alone tracks, signals, kills and accounts a
	 * job; v1 hierarchies are joined only on a host without it. Each
	 * hierarchy joined costs a migration and an rmdir per job, both of
	 * which wait for an RCU grace period (milliseconds, measured). */
	for (size_t i = 0; !roamd->cg_v2_base[0] && strcmp(mode, "v2") &&
			   i < sizeof(v1_names) / sizeof(v1_names[0]); i++) {
		char mnt[64];
		strfmt(mnt, sizeof(mnt), "/sys/fs/cgroup/%s", v1_names[i]);
		if (!is_fs(mnt, CGROUP_SUPER_MAGIC))
			continue;
		own_path(v1_names[i], own, sizeof(own));
		strfmt(base, sizeof(base), "%s%s/roam.%s", mnt, own, roamd->cfg.name);
		if ((mkdir(base, 0755) == 0 || errno == EEXIST) && access(base, W_OK) == 0) {
			strfmt(roamd->cg_v1_base[roamd->ncg_v1++], sizeof(roamd->cg_v1_base[0]), "%s", base);
			kill_leftovers(base, false);
		}
	}
	memory_init(v2own);
	log_info("cgroups: v2 %s, v1 %u hierarchies", roamd->cg_v2_base[0] ? roamd->cg_v2_base : "none",
		 roamd->ncg_v1);
}

/* A job that comes back (migrated away and back again) takes its folder
 * over from the list of folders waiting to be removed. */
static void unstale(const char *dir)
{
	for (int i = 0; i < MAX_STALE; i++)
		if (stale[i] && !strcmp(stale[i], dir)) {
			free(stale[i]);
			stale[i] = NULL;
		}
}

/* The job memory limit on the folder of a new job, in the tree that has it. */
static void set_mem_max(const struct job *j, const char *dir, bool v2)
{
	char path[300], v[32];
	int rc;

	strfmt(path, sizeof(path), "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
	snprintf(v, sizeof(v), "%llu", (unsigned long long)roamd->mem_max);
	if ((rc = write_file(path, v)) < 0)
		log_warn("job %s: %s: %s: it runs without the memory limit", j->id, path, strerror(-rc));
}

int cgroup_create(struct job *j)
{
	int made = 0;

	j->cg_v2[0] = 0;
	j->ncg_v1 = 0;
	if (roamd->cg_v2_base[0]) {
		strfmt(j->cg_v2, sizeof(j->cg_v2), "%s/%s", roamd->cg_v2_base, j->id);
		unstale(j->cg_v2);
		if (mkdir(j->cg_v2, 0755) < 0 && errno != EEXIST) {
			j->cg_v2[0] = 0;
		} else {
			made++;
			if (roamd->mem_max && roamd->cg_mem_v1 < 0)
				set_mem_max(j, j->cg_v2, true);
		}
	}
	for (unsigned i = 0; i < roamd->ncg_v1; i++) {
		char *d = j->cg_v1[j->ncg_v1];
		strfmt(d, sizeof(j->cg_v1[0]), "%s/%s", roamd->cg_v1_base[i], j->id);
		unstale(d);
		if (mkdir(d, 0755) == 0 || errno == EEXIST) {
			j->ncg_v1++;
			made++;
			if (roamd->mem_max && (int)i == roamd->cg_mem_v1)
				set_mem_max(j, d, false);
		}
	}
	return made ? 0 : -ENOENT;
}

static void remember_stale(const char *dir)
{
	for (int i = 0; i < MAX_STALE; i++)
		if (!stale[i]) {
			stale[i] = strdup(dir);
			return;
		}
	rmdir(dir);  /* the list is full: now, then */
}

/* rmdir waits for an RCU grace period and the last processes of a killed
 * job may still be exiting: both are left to the next tick, off the path
 * that reports the job's end. */
static void remove_dir(const char *dir)
{
	if (dir[0])
		remember_stale(dir);
}

void cgroup_remove(struct job *j)
{
	remove_dir(j->cg_v2);
	for (unsigned i = 0; i < j->ncg_v1; i++)
		remove_dir(j->cg_v1[i]);
	j->cg_v2[0] = 0;
	j->ncg_v1 = 0;
}

void cgroup_tick(void)
{
	for (int i = 0; i < MAX_STALE; i++)
		if (stale[i] && (rmdir(stale[i]) == 0 || errno != EBUSY)) {
			free(stale[i]);
			stale[i] = NULL;
		}
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* The file listing the job's processes, "" when it has no cgroup. */
static void procs_file(const struct job *j, char *buf, size_t cap)
{
	if (j->cg_v2[0])
		strfmt(buf, cap, "%s/cgroup.procs", j->cg_v2);
	else if (j->ncg_v1)
		strfmt(buf, cap, "%s/cgroup.procs", j->cg_v1[0]);
	else
		buf[0] = 0;
}

int cgroup_signal(struct job *j, int sig)
{
	char path[300];
	int sent = 0;

	if (sig == SIGKILL && j->cg_v2[0]) {
		strfmt(path, sizeof(path), "%s/cgroup.kill", j->cg_v2);
		if (write_file(path, "1") == 0)
			return 0;
	}
	procs_file(j, path, sizeof(path));
	if (!path[0])
		return -ENOENT;
	/* A process forking while we read may be missed by one pass; a few
	 * passes settle it for SIGKILL, and other signals are one-shot anyway. */
	for (int pass = 0; pass < (sig == SIGKILL ? 3 : 1); pass++) {
		FILE *f = fopen(path, "re");
		long pid;
		if (!f)
			return -errno;
		while (fscanf(f, "%ld", &pid) == 1)
			if (kill((pid_t)pid, sig) == 0)
				sent++;
		fclose(f);
	}
	return sent ? 0 : -ESRCH;
}

int cgroup_threads_file(const struct job *j, char *buf, size_t cap)
{
	if (j->cg_v2[0])
		strfmt(buf, cap, "%s/cgroup.threads", j->cg_v2);
	else if (j->ncg_v1)
		strfmt(buf, cap, "%s/tasks", j->cg_v1[0]);
	else
		return -ENOENT;
	return 0;
}

int cgroup_procs_file(const struct job *j, char *buf, size_t cap)
{
	procs_file(j, buf, cap);
	return buf[0] ? 0 : -ENOENT;
}

const char *cgroup_host_pressure(void)
{
	static char path[300];

	if (!roamd->cg_v2_base[0])
		return NULL;
	strfmt(path, sizeof(path), "%s/cpu.pressure", roamd->cg_v2_base);
	return path;
}

/* CPU time of the job: cpu.stat usage_usec (v2) or cpuacct.usage (v1). */
uint64_t cgroup_cpu_ns(const struct job *j)
{
	char path[300], key[64];
	unsigned long long v;
	uint64_t ns = 0;
	FILE *f;

	if (j->cg_v2[0]) {
		strfmt(path, sizeof(path), "%s/cpu.stat", j->cg_v2);
		if ((f = fopen(path, "re"))) {
			while (fscanf(f, "%63s %llu", key, &v) == 2)
				if (!strcmp(key, "usage_usec"))
					ns = (uint64_t)v * 1000;
			fclose(f);
			return ns;
		}
	}
	for (unsigned i = 0; i < j->ncg_v1; i++) {
		strfmt(path, sizeof(path), "%s/cpuacct.usage", j->cg_v1[i]);
		if ((f = fopen(path, "re"))) {
			if (fscanf(f, "%llu", &v) == 1)
				ns = v;
			fclose(f);
			return ns;
		}
	}
	return 0;
}

void cgroup_fini(void)
{
	/* Best effort: the host folders go when their job folders are gone. */
	cgroup_tick();
	if (roamd->cg_v2_base[0])
		rmdir(roamd->cg_v2_base);
	for (unsigned i = 0; i < roamd->ncg_v1; i++)
		rmdir(roamd->cg_v1_base[i]);
}

/* Moves pid (every thread of it) into the job's cgroups: a process restored
 * by migration is born outside them. */
int cgroup_join(const struct job *j, pid_t pid)
{
	char path[300], s[32];
	int err = 0, rc;

	snprintf(s, sizeof(s), "%d", (int)pid);
	if (j->cg_v2[0]) {
		strfmt(path, sizeof(path), "%s/cgroup.procs", j->cg_v2);
		if ((rc = write_file(path, s)) < 0)
			err = rc;
	}
	for (unsigned i = 0; i < j->ncg_v1; i++) {
		strfmt(path, sizeof(path), "%s/cgroup.procs", j->cg_v1[i]);
		if ((rc = write_file(path, s)) < 0)
			err = rc;
	}
	return err;
}

/* A counter of a "key value" lines file (memory.events, memory.oom_control). */
static unsigned long long counter(const char *dir, const char *file, const char *key)
{
	char path[300], k[64];
	unsigned long long v, n = 0;
	FILE *f;

	strfmt(path, sizeof(path), "%s/%s", dir, file);
	if (!(f = fopen(path, "re")))
		return 0;
	while (fscanf(f, "%63s %llu", k, &v) == 2)
		if (!strcmp(k, key))
			n = v;
	fclose(f);
	return n;
}

/* Whether the job's memory limit stopped it: an allocation refused at the
 * limit, or a process of it killed by the kernel's OOM killer there. */
bool cgroup_mem_exceeded(const struct job *j)
{
	if (!roamd->mem_max)
		return false;
	if (roamd->cg_mem_v1 < 0)
		return j->cg_v2[0] && (counter(j->cg_v2, "memory.events", "max") ||
				       counter(j->cg_v2, "memory.events", "oom_kill"));
	for (unsigned i = 0; i < j->ncg_v1; i++)
		if (!strncmp(j->cg_v1[i], roamd->cg_v1_base[roamd->cg_mem_v1], strlen(roamd->cg_v1_base[roamd->cg_mem_v1])))
			return counter(j->cg_v1[i], "memory.oom_control", "oom_kill") ||
			       counter(j->cg_v1[i], "memory.oom_control", "under_oom");
	return false;
}

/* Opens every cgroup.procs of the job for writing, for a process to join
 * from inside (a restore's new process: restore_opts.cgroup_procs). Returns
 * how many were opened into fds[0 .. max); the caller closes them. */
int cgroup_open_procs(const struct job *j, int *fds, int max)
{
	char path[300];
	int n = 0;

	if (j->cg_v2[0] && n < max) {
		strfmt(path, sizeof(path), "%s/cgroup.procs", j->cg_v2);
		if ((fds[n] = open(path, O_WRONLY | O_CLOEXEC)) >= 0)
			n++;
	}
	for (unsigned i = 0; i < j->ncg_v1 && n < max; i++) {
		strfmt(path, sizeof(path), "%s/cgroup.procs", j->cg_v1[i]);
		if ((fds[n] = open(path, O_WRONLY | O_CLOEXEC)) >= 0)
			n++;
	}
	return n;
}

/* Freezes or thaws every process of the job (cgroup.freeze on v2, the v1
 * freezer otherwise). A frozen cgroup stays frozen when roamd dies, which a
 * ptrace stop does not: a migration in doubt parks its process so. */
int cgroup_freeze(const struct job *j, bool on)
{
	char path[300];

	if (j->cg_v2[0]) {
		strfmt(path, sizeof(path), "%s/cgroup.freeze", j->cg_v2);
		return write_file(path, on ? "1" : "0");
	}
	for (unsigned i = 0; i < j->ncg_v1; i++)
		if (strstr(j->cg_v1[i], "/freezer/")) {
			strfmt(path, sizeof(path), "%s/freezer.state", j->cg_v1[i]);
			return write_file(path, on ? "FROZEN" : "THAWED");
		}
	return -ENOENT;
}
