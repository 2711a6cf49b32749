/*
 * attrs: process attributes survive a checkpoint/restore.
 *
 *   cwd (a scratch subdirectory), umask 027
 *   rlimits: several soft limits lowered, RLIMIT_CORE's hard limit lowered
 *     too; every limit must read back as it was
 *   personality with ADDR_NO_RANDOMIZE added
 *   comm of the main thread and of every thread (-t N), also read through
 *     a /proc/thread-self/comm each thread keeps open: after restore it
 *     must still be that thread's own file, whatever its TID then
 *   credentials: real/effective/saved/fs uid and gid, supplementary groups
 *     and capability sets, checked in every thread (as root the subject
 *     first changes them: extra groups, effective and saved gid, saved uid,
 *     CAP_MKNOD dropped from the effective set)
 */
#include "subject.h"

#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static char cwd[PATH_MAX];
static struct rlimit limits[RLIM_NLIMITS];
static int persona;
static uid_t ruid, euid, suid;
static gid_t rgid, egid, sgid, groups[64];
static int ngroups;
static struct __user_cap_data_struct caps[2];
static volatile int stop_threads;
static int main_comm;  /* the main thread's /proc/thread-self/comm, kept open */

static void get_caps(struct __user_cap_data_struct out[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	if (syscall(SYS_capget, &h, out) < 0)
		subj_fail("capget: %s", strerror(errno));
}

static void check_creds(const char *who)
{
	uid_t r, e, s;
	gid_t gr, ge, gs, g[64];
	struct __user_cap_data_struct c[2];
	int n;

	SUBJ_SYS(syscall(SYS_getresuid, &r, &e, &s));
	SUBJ_CHECK(r == ruid && e == euid && s == suid, "%s: uids %d/%d/%d, were %d/%d/%d", who,
		   (int)r, (int)e, (int)s, (int)ruid, (int)euid, (int)suid);
	SUBJ_SYS(syscall(SYS_getresgid, &gr, &ge, &gs));
	SUBJ_CHECK(gr == rgid && ge == egid && gs == sgid, "%s: gids %d/%d/%d, were %d/%d/%d", who,
		   (int)gr, (int)ge, (int)gs, (int)rgid, (int)egid, (int)sgid);
	SUBJ_CHECK((uid_t)syscall(SYS_setfsuid, -1) == euid, "%s: fsuid changed", who);
	SUBJ_CHECK((gid_t)syscall(SYS_setfsgid, -1) == egid, "%s: fsgid changed", who);
	n = (int)syscall(SYS_getgroups, 64, g);
	SUBJ_CHECK(n == ngroups && !memcmp(g, groups, sizeof(gid_t) * (size_t)n),
		   "%s: %d supplementary groups, were %d (or they differ)", who, n, ngroups);
	get_caps(c);
	SUBJ_CHECK(!memcmp(c, caps, sizeof(c)), "%s: capabilities eff %#x:%#x perm %#x:%#x inh %#x:%#x changed",
		   who, c[1].effective, c[0].effective, c[1].permitted, c[0].permitted,
		   c[1].inheritable, c[0].inheritable);
}

/* The thread's comm as read from fd, a /proc/.../comm file. */
static void read_comm(int fd, const char *want, const char *who, const char *how)
{
	char buf[64] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	SUBJ_CHECK(n > 0, "%s: read %s: %s", who, how, strerror(errno));
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	SUBJ_CHECK(!strcmp(buf, want), "%s: %s '%s', want '%s'", who, how, buf, want);
}

/* kept: the thread's own comm file, open since it started. */
static void check_comm(const char *want, const char *who, int kept)
{
	char name[17] = "";
	int fd;

	SUBJ_SYS(prctl(PR_GET_NAME, name));
	SUBJ_CHECK(!strcmp(name, want), "%s: comm '%s', want '%s'", who, name, want);
	fd = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC);
	SUBJ_SYS(fd);
	read_comm(fd, want, who, "/proc comm");
	close(fd);
	read_comm(kept, want, who, "the comm file it keeps open");
}

static void *worker(void *arg)
{
	char name[16], who[32];

	snprintf(name, sizeof(name), "attrs-t%d", (int)(intptr_t)arg);
	snprintf(who, sizeof(who), "thread %d", (int)(intptr_t)arg);
	SUBJ_SYS(prctl(PR_SET_NAME, name));
	int kept = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC);
	SUBJ_SYS(kept);
	while (!stop_threads) {
		check_comm(name, who, kept);
		check_creds(who);
		subj_sleep_ms(10);
	}
	check_comm(name, who, kept);
	check_creds(who);
	close(kept);
	return NULL;
}

static void verify(void)
{
	char buf[PATH_MAX], status[4096], *p;
	struct rlimit rl;
	ssize_t n;
	int i, fd;
	unsigned um = 0;

	SUBJ_CHECK(getcwd(buf, sizeof(buf)) && !strcmp(buf, cwd), "cwd '%s', want '%s'", buf, cwd);
	n = readlink("/proc/self/cwd", buf, sizeof(buf) - 1);
	SUBJ_CHECK(n > 0, "readlink /proc/self/cwd: %s", strerror(errno));
	buf[n] = '\0';
	SUBJ_CHECK(!strcmp(buf, cwd), "/proc/self/cwd '%s', want '%s'", buf, cwd);

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	SUBJ_SYS(fd);
	n = read(fd, status, sizeof(status) - 1);
	close(fd);
	SUBJ_CHECK(n > 0, "read status");
	status[n] = '\0';
	p = strstr(status, "Umask:");
	SUBJ_CHECK(p && sscanf(p, "Umask: %o", &um) == 1 && um == 027, "umask %03o, want 027", um);

	for (i = 0; i < RLIM_NLIMITS; i++) {
		SUBJ_SYS(prlimit(0, i, NULL, &rl));
		SUBJ_CHECK(rl.rlim_cur == limits[i].rlim_cur && rl.rlim_max == limits[i].rlim_max,
			   "rlimit %d is %llu/%llu, was %llu/%llu", i, (unsigned long long)rl.rlim_cur,
			   (unsigned long long)rl.rlim_max, (unsigned long long)limits[i].rlim_cur,
			   (unsigned long long)limits[i].rlim_max);
	}
	i = personality(0xffffffff);
	SUBJ_CHECK(i == persona, "personality %#x, was %#x", i, persona);
	check_comm("attrs-main", "main", main_comm);
	check_creds("main");
}

static void sabotage(void)
{
	SUBJ_SYS(chdir("/"));
}

static void lower_soft(int res, rlim_t soft)
{
	struct rlimit rl;

	SUBJ_SYS(getrlimit(res, &rl));
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > soft)
		rl.rlim_cur = soft;
	SUBJ_SYS(setrlimit(res, &rl));
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	char dir[PATH_MAX];
	int i;

	subj_init(argc, argv, "attrs");
	subj_path(dir, sizeof(dir), "attrs-cwd");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		subj_fail("mkdir %s: %s", dir, strerror(errno));
	SUBJ_SYS(chdir(dir));
	SUBJ_CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd: %s", strerror(errno));
	umask(027);

	lower_soft(RLIMIT_NOFILE, 321);
	lower_soft(RLIMIT_STACK, 4 << 20);
	lower_soft(RLIMIT_MSGQUEUE, 400000);
	lower_soft(RLIMIT_SIGPENDING, 1000);
	lower_soft(RLIMIT_NPROC, 5000);
	SUBJ_SYS(getrlimit(RLIMIT_CORE, &rl));
	rl.rlim_cur = 0;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1 << 20))
		rl.rlim_max = 1 << 20;
	SUBJ_SYS(setrlimit(RLIMIT_CORE, &rl));
	for (i = 0; i < RLIM_NLIMITS; i++)
		SUBJ_SYS(prlimit(0, i, NULL, &limits[i]));

	persona = personality(0xffffffff);
	SUBJ_SYS(personality((unsigned long)persona | ADDR_NO_RANDOMIZE));
	persona = personality(0xffffffff);
	SUBJ_CHECK(persona & ADDR_NO_RANDOMIZE, "personality did not take ADDR_NO_RANDOMIZE");
	SUBJ_SYS(prctl(PR_SET_NAME, "attrs-main"));
	main_comm = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC);
	SUBJ_SYS(main_comm);

	if (geteuid() == 0) {
		static const gid_t extra[] = { 4242, 4343 };
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

		SUBJ_SYS(setgroups(2, extra));
		SUBJ_SYS(setresgid(0, 4545, 4646));
		SUBJ_SYS(setresuid(0, 0, 4747));
		get_caps(caps);
		caps[0].effective &= ~(1u << CAP_MKNOD);
		if (syscall(SYS_capset, &h, caps) < 0)
			subj_fail("capset: %s", strerror(errno));
	}
	SUBJ_SYS(getresuid(&ruid, &euid, &suid));
	SUBJ_SYS(getresgid(&rgid, &egid, &sgid));
	ngroups = getgroups(64, groups);
	SUBJ_SYS(ngroups);
	get_caps(caps);

	subj_run_threaded(worker, verify, sabotage, &stop_threads);
	subj_pass();
}
