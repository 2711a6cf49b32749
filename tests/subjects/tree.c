/*
 * tree: a process tree whose processes share what a shell pipeline and its
 * jobs share, each checking its part:
 *   root   holds the write end of pipe T, whose read end only child e
 *          holds, and sends e a tick every 10 ms; opened the log file L
 *          before forking: a, b and the root write fixed-size records to
 *          it through that one open file description (one offset); waits
 *          for every child at the end, which must exit 0
 *   a      writes 1, 2, 3... into pipe P, whose read end only b holds (the
 *          root holds neither end: the pipe runs between siblings)
 *   b      reads P: every number once, in order
 *   c      leads a process group of its own, with its child c1 in it (which
 *          asked for SIGTERM at c's death: PR_SET_PDEATHSIG)
 *   d      joined c's group (a group an earlier sibling leads)
 *   e      leads a session of its own, and reads the root's ticks
 * Every process checks that its parent is still its parent, its group and
 * session (by the names the processes give themselves: a restore may give
 * other pids), and that it holds no descriptor but its own (nothing a
 * restore passed through it is left). L must end up holding whole records only.
 * Sabotage kills c1: c sees it gone. With -t N the root runs N threads.
 */
#include "subject.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define REC 32

static int logfd, tpipe[2], ppipe[2];
static pid_t c_pid, c1_pid, kids[5];

static void record(const char *who, long n)
{
	char buf[REC + 1];

	snprintf(buf, sizeof(buf), "%-8s %22ld\n", who, n);
	SUBJ_CHECK(write(logfd, buf, REC) == REC, "%s: writing the log: %s", who, strerror(errno));
}

/* Exactly the descriptors in want (and stdio), none inherited otherwise. */
static void check_fds(const char *who, const int *want, int nwant)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	SUBJ_CHECK(d != NULL, "%s: opendir: %s", who, strerror(errno));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), ok = fd <= 2 || fd == dirfd(d) || e->d_name[0] == '.';
		for (int i = 0; i < nwant && !ok; i++)
			ok = want[i] == fd;
		SUBJ_CHECK(ok, "%s: holds fd %d, not its own", who, fd);
	}
	closedir(d);
}

/* The name of process pid (each process of the tree names itself). */
static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	int f;
	ssize_t n = -1;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(f, buf, len - 1);
		close(f);
	}
	buf[n > 0 ? n - 1 : 0] = '\0';
}

/* Its parent is the process named parent; its group is led by the process
 * named leader (NULL: its parent's group), its session its parent's unless
 * it leads one. By names, not pids: a restore may give other pids. */
static void check_family(const char *who, const char *parent, const char *leader, int own_session)
{
	char name[32];
	pid_t pp = getppid();

	comm_of(pp, name, sizeof(name));
	SUBJ_CHECK(!strcmp(name, parent), "%s: parent %d is %s, not %s", who, (int)pp, name, parent);
	if (leader) {
		comm_of(getpgrp(), name, sizeof(name));
		SUBJ_CHECK(!strcmp(name, leader), "%s: group %d is led by %s, not %s", who, (int)getpgrp(), name, leader);
	} else {
		SUBJ_CHECK(getpgrp() == getpgid(pp), "%s: group %d, its parent's %d", who, (int)getpgrp(), (int)getpgid(pp));
	}
	if (own_session)
		SUBJ_CHECK(getsid(0) == getpid(), "%s: session %d, not its own", who, (int)getsid(0));
	else
		SUBJ_CHECK(getsid(0) == getsid(pp), "%s: session %d, not its parent's %d", who, (int)getsid(0), (int)getsid(pp));
}

static void name_self(const char *name)
{
	SUBJ_SYS(prctl(PR_SET_NAME, name, 0, 0, 0));
}

static void child_a(void)
{
	long n = 0;
	int mine[] = { logfd, ppipe[1] };

	name_self("tree-a");
	while (!subj_stopped()) {
		for (int i = 0; i < 10; i++) {
			n++;
			SUBJ_CHECK(write(ppipe[1], &n, sizeof(n)) == sizeof(n), "a: write: %s", strerror(errno));
		}
		record("a", n);
		check_family("a", "tree-root", NULL, 0);
		check_fds("a", mine, 2);
		subj_sleep_ms(5);
	}
	_exit(0);
}

static void child_b(void)
{
	long n, want = 1;
	int mine[] = { logfd, ppipe[0] };

	name_self("tree-b");
	while (read(ppipe[0], &n, sizeof(n)) == sizeof(n)) {
		SUBJ_CHECK(n == want, "b: read %ld, expected %ld", n, want);
		want++;
		if (n % 50 == 0) {
			record("b", n);
			check_family("b", "tree-root", NULL, 0);
			check_fds("b", mine, 2);
		}
	}
	SUBJ_CHECK(want > 1, "b: read nothing");
	_exit(0);
}

static void child_c1(void)
{
	int sig = 0;

	name_self("tree-c1");
	SUBJ_SYS(prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0));
	while (!subj_stopped()) {
		check_family("c1", "tree-c", "tree-c", 0);
		SUBJ_SYS(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0));
		SUBJ_CHECK(sig == SIGTERM, "c1: parent-death signal %d, not SIGTERM", sig);
		check_fds("c1", NULL, 0);
		subj_sleep_ms(10);
	}
	_exit(0);
}

static void child_c(void)
{
	int st;

	name_self("tree-c");
	SUBJ_SYS(setpgid(0, 0));
	c1_pid = fork();
	SUBJ_SYS(c1_pid);
	if (c1_pid == 0)
		child_c1();
	while (!subj_stopped()) {
		check_family("c", "tree-root", "tree-c", 0);
		check_fds("c", NULL, 0);
		SUBJ_CHECK(waitpid(-1, &st, WNOHANG) == 0, "c: c1 ended");
		subj_sleep_ms(10);
	}
	SUBJ_CHECK(waitpid(-1, &st, 0) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "c: c1 failed");
	_exit(0);
}

static void child_d(void)
{
	name_self("tree-d");
	SUBJ_SYS(setpgid(0, c_pid));
	while (!subj_stopped()) {
		check_family("d", "tree-root", "tree-c", 0);
		check_fds("d", NULL, 0);
		subj_sleep_ms(10);
	}
	_exit(0);
}

static void child_e(void)
{
	long tick, last = 0;
	int mine[] = { tpipe[0] };

	name_self("tree-e");
	SUBJ_SYS(setsid());
	while (read(tpipe[0], &tick, sizeof(tick)) == sizeof(tick)) {
		SUBJ_CHECK(tick == last + 1, "e: tick %ld after %ld", tick, last);
		last = tick;
		check_family("e", "tree-root", "tree-e", 1);
		check_fds("e", mine, 1);
	}
	SUBJ_CHECK(last > 0, "e: no tick");
	_exit(0);
}

static pid_t spawn(void (*fn)(void), int closing_p)
{
	pid_t p = fork();

	SUBJ_SYS(p);
	if (p == 0) {
		/* Each keeps only its own descriptors. */
		if (fn != child_a && closing_p)
			close(ppipe[1]);
		if (fn != child_b && closing_p)
			close(ppipe[0]);
		close(tpipe[1]);
		if (fn != child_e)
			close(tpipe[0]);
		if (fn != child_a && fn != child_b)
			close(logfd);
		fn();
	}
	return p;
}

static long ticks;

static void verify(void)
{
	int mine[] = { logfd, tpipe[1] };
	int st;

	ticks++;
	SUBJ_CHECK(write(tpipe[1], &ticks, sizeof(ticks)) == sizeof(ticks), "root: tick: %s", strerror(errno));
	record("root", ticks);
	/* Before the stop, when they end by themselves. */
	SUBJ_CHECK(subj_stopped() || waitpid(-1, &st, WNOHANG) == 0, "root: a child ended early (status %#x)", st);
	check_fds("root", mine, 2);
}

static void sabotage(void)
{
	char path[64];
	FILE *f;
	int c1 = 0;

	/* c1 is c's child, not ours: found through c. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)c_pid, (int)c_pid);
	if ((f = fopen(path, "re"))) {
		if (fscanf(f, "%d", &c1) != 1)
			c1 = 0;
		fclose(f);
	}
	if (c1 > 0)
		kill(c1, SIGKILL);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	int st;

	subj_init(argc, argv, "tree");
	name_self("tree-root");
	subj_path(path, sizeof(path), "tree.log");
	logfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	SUBJ_SYS(logfd);
	SUBJ_SYS(pipe2(ppipe, O_CLOEXEC));
	SUBJ_SYS(pipe2(tpipe, O_CLOEXEC));
	kids[0] = spawn(child_a, 1);
	kids[1] = spawn(child_b, 1);
	close(ppipe[0]);
	close(ppipe[1]);
	kids[2] = c_pid = spawn(child_c, 0);
	/* d joins c's group: wait until c made it. */
	for (int i = 0; i < 1000 && getpgid(c_pid) != c_pid; i++)
		subj_sleep_ms(1);
	SUBJ_CHECK(getpgid(c_pid) == c_pid, "c made no group");
	kids[3] = spawn(child_d, 0);
	kids[4] = spawn(child_e, 0);
	close(tpipe[0]);
	for (int i = 0; i < 1000 && getpgid(kids[3]) != c_pid; i++)
		subj_sleep_ms(1);
	subj_run_threaded(subj_idle_worker, verify, sabotage, &subj_idle_stop);
	close(tpipe[1]);   /* e sees the end */
	for (int i = 0; i < 5; i++) {
		pid_t k = waitpid(-1, &st, 0);
		SUBJ_CHECK(k > 0, "root: waitpid: %s", strerror(errno));
		SUBJ_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "root: child %d failed (status %#x)", (int)k, st);
	}
	/* The log: whole records only, however many processes wrote it. */
	off_t end = lseek(logfd, 0, SEEK_END);
	SUBJ_CHECK(end > 0 && end % REC == 0, "root: the log holds %lld bytes, not whole records", (long long)end);
	char rec[REC];
	for (off_t off = 0; off < end; off += REC) {
		SUBJ_CHECK(pread(logfd, rec, REC, off) == REC && rec[REC - 1] == '\n', "root: a broken record at %lld",
			   (long long)off);
	}
	subj_pass();
}
