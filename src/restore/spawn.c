/*
 * The child that becomes the restored process. It is a copy of roam itself
 * (clone3, with the image's PID when that PID is free and we may ask for
 * it); before it stops for the tracer it prepares the state that is easiest
 * to set from inside: session and process group, cwd, umask, personality,
 * rlimits, signal dispositions back to default, every descriptor at its
 * number, and the trampoline page. It reports failure through a pipe.
 */
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include "sys/mem.h"
#include "sys/proc.h"

struct child_report {
	int err;                /* negative errno */
	char what[240];
};

static void report(int fd, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(int fd, int err, const char *fmt, ...)
{
	struct child_report rep = { .err = err };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep.what, sizeof(rep.what), fmt, ap);
	va_end(ap);
	if (write(fd, &rep, sizeof(rep)) < 0)
		_exit(127);
	_exit(127);
}

/* Puts every image descriptor at its number. All temporaries live at
 * numbers >= high (above every image fd), so that placing one descriptor
 * never clobbers another's source. */
static void setup_fds(struct restore *r, int repfd)
{
	const Roamimg__Files *fs = r->ld.files;
	int high = fds_high(fs);
	int stdio_copy[3], kept[3];
	struct fd_maker m;
	for (int k = 0; k < 3; k++) {
		stdio_copy[k] = r->opts.stdio[k] >= 0 ? fcntl(r->opts.stdio[k], F_DUPFD_CLOEXEC, high) : -1;
		kept[k] = r->opts.stdio[k] >= 0;
	}
	repfd = fcntl(repfd, F_DUPFD_CLOEXEC, high);
	/* stdio first: an epoll may watch it. */
	for (int k = 0; k < 3; k++)
		if (stdio_copy[k] >= 0) {
			dup3(stdio_copy[k], k, 0);
			close(stdio_copy[k]);
		}

	fd_maker_local(&m, r);
	/* A tree's root: what its processes share, at tree_base and up, first
	 * (the report pipe out of their way, at high, below tree_base). */
	int ntree = r->tree_base ? (int)fs->n_tree_objects : 0, rc = 0;
	if (r->tree_base && repfd != high) {
		dup3(repfd, high, O_CLOEXEC);
		close(repfd);
		repfd = high;
	}
	m.tree_base = r->tree_base;
	m.tree_root = 1;
	if (r->tree_base && (rc = fds_make_tree_objects(&m, fs)) < 0)
		report(repfd, rc, "%s", m.what);
	rc = fds_make_all(&m, fs, kept);
	if (rc == 0 && r->tree_base)
		rc = fds_make_tree_stdio(&m, fs);
	if (rc < 0)
		report(repfd, rc, "%s", m.what);
	/* Close everything not placed above (below high), except stdio we
	 * were told to install. */
	for (int fd = 0; fd < high; fd++) {
		int keep = fd <= 2 && r->opts.stdio[fd] >= 0;
		for (size_t i = 0; i < fs->n_fds && !keep; i++)
			keep = (int)fs->fds[i]->fd == fd && !fs->fds[i]->has_task_tid;
		if (!keep)
			close(fd);
	}
	/* Everything at or above high is ours, but the report pipe and what
	 * the tree shares. */
	if (ntree || r->tree_base) {
		if (high + 1 < r->tree_base)
			syscall(SYS_close_range, high + 1, r->tree_base - 1, 0);
		syscall(SYS_close_range, r->tree_base + ntree, ~0u, 0);
		return;
	}
	if (repfd > high)
		syscall(SYS_close_range, high, repfd - 1, 0);
	syscall(SYS_close_range, repfd + 1, ~0u, 0);
	if (repfd != high) {
		dup3(repfd, high, O_CLOEXEC);
		close(repfd);
	}
}

/* Pre-copy: the image's session, cwd, descriptors and limits are not known
 * yet (restore_setup_late sets them). Only the caller's stdio is kept, at
 * 0, 1, 2; the report pipe goes at EOF, as success. */
static void bare_stop(struct restore *r, int repfd)
{
	int tmp[3];

	for (int k = 0; k < 3; k++)
		tmp[k] = r->opts.stdio[k] >= 0 ? fcntl(r->opts.stdio[k], F_DUPFD_CLOEXEC, 10) : -1;
	repfd = fcntl(repfd, F_DUPFD_CLOEXEC, 10);
	for (int k = 0; k < 3; k++) {
		if (tmp[k] >= 0)
			dup3(tmp[k], k, 0);
		else
			close(k);
	}
	dup3(repfd, 3, O_CLOEXEC);
	syscall(SYS_close_range, 4, ~0u, 0);
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		report(3, -errno, "asking to be traced");
	close(3);
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	_exit(127);
}

static void child_main(struct restore *r, int repfd, int born_in)
{
	const Roamimg__Process *p = r->ld.process;

	/* Dispositions of roam (and of the sanitizer runtime) must not leak in:
	 * the image's handlers are installed later. Raw syscalls: glibc refuses
	 * the signals it reserves for itself. */
	for (int sig = 1; sig <= 64; sig++) {
		struct { uint64_t handler, flags, restorer, mask; } dfl = { 0, 0, 0, 0 };
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	}
	stack_t none = { .ss_flags = SS_DISABLE };
	sigaltstack(&none, NULL);
	/* Into the caller's cgroups before a page of the image is written:
	 * the process is charged for what it is built of. */
	for (int i = 0; i < r->opts.ncgroup && i < 4; i++)
		if (i != born_in && write(r->opts.cgroup_procs[i], "0", 1) < 0)
			report(repfd, -errno, "joining its cgroup");

	if (r->bare)
		goto trampoline;  /* the rest: restore_setup_late */
	if (p->sid == p->pid) {
		if (setsid() < 0)
			report(repfd, -errno, "making a session (the process led its own)");
	} else if (p->pgid == p->pid) {
		if (setpgid(0, 0) < 0)
			report(repfd, -errno, "making a process group (the process led its own)");
	}
	if (chdir(p->cwd) < 0)
		report(repfd, -errno, "entering the working directory %s", p->cwd);
	umask((mode_t)p->umask);
	if (personality(p->personality) < 0)
		report(repfd, -errno, "setting the personality %#x", p->personality);
	if (p->creds->has_no_new_privs && p->creds->no_new_privs)
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

trampoline:;
	uint64_t t = r->tramp;
	void *m = mmap((void *)(uintptr_t)t, TRAMP_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED || (uint64_t)(uintptr_t)m != t)
		report(repfd, -errno, "mapping the trampoline at %llx", (unsigned long long)t);
	static const unsigned char code[] = ARCH_TRAMPOLINE_CODE;
	memcpy(m, code, sizeof(code));
	if (mprotect(m, ARCH_PAGE_SIZE, PROT_READ | PROT_EXEC) < 0)
		report(repfd, -errno, "protecting the trampoline");
	if (r->bare)
		bare_stop(r, repfd);

	setup_fds(r, repfd);
	repfd = fds_high(r->ld.files);

	/* Last, since a lowered RLIMIT_NOFILE or NPROC could stop the steps above. */
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = { p->rlimits[i]->cur, p->rlimits[i]->max };
		if (setrlimit((int)p->rlimits[i]->resource, &rl) < 0)
			report(repfd, -errno, "setting rlimit %u to %llu/%llu", p->rlimits[i]->resource,
			       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	}
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		report(repfd, -errno, "asking to be traced");
	close(repfd);  /* EOF without a report: success */
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	_exit(127);  /* not reached: the tracer takes over */
}

/*
 * The directory of the caller's cgroup v2 among its cgroup.procs files
 * (*which: its index), for the child to be born in (CLONE_INTO_CGROUP):
 * joining by a write to cgroup.procs waits for an RCU grace period (16 ms
 * measured on a 2-CPU VM, in every migration's path), being born there
 * does not. -1 when there is none, or it cannot be opened.
 */
static int born_cgroup(const struct restore *r, int *which)
{
	for (int i = 0; i < r->opts.ncgroup && i < 4; i++) {
		char link[64], path[PATH_MAX];
		struct statfs sf;
		ssize_t n;
		if (fstatfs(r->opts.cgroup_procs[i], &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", r->opts.cgroup_procs[i]);
		n = readlink(link, path, sizeof(path) - 1);
		if (n <= 0)
			return -1;
		path[n] = '\0';
		char *slash = strrchr(path, '/');
		if (!slash || strcmp(slash, "/cgroup.procs"))
			return -1;
		*slash = '\0';
		*which = i;
		return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	return -1;
}

/* *cgfd: the cgroup to be born in, or -1; set to -1 (closed) when the
 * kernel will not start it there, and it is made without. */
static pid_t clone_child(struct restore *r, int try_pid, int *cgfd)
{
	struct clone_args args;
	pid_t want = r->ld.process->pid;

	for (;;) {
		memset(&args, 0, sizeof(args));
		args.exit_signal = SIGCHLD;
		if (try_pid) {
			args.set_tid = (uint64_t)(uintptr_t)&want;
			args.set_tid_size = 1;
		}
		if (*cgfd >= 0) {
			args.flags |= CLONE_INTO_CGROUP;
			args.cgroup = (uint64_t)*cgfd;
		}
		pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0 || *cgfd < 0 || errno == EEXIST)
			return pid;
		/* An older kernel, or a cgroup that takes no process this way:
		 * the child joins it by cgroup.procs, as the others. */
		close(*cgfd);
		*cgfd = -1;
	}
}

/* 1: pid is a zombie whose parent lives (and will reap it), 2: a zombie of
 * init's (a killed tree's child: some inits reap late), 0: neither. */
static int pid_is_zombie(pid_t pid)
{
	char path[64], buf[512];
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid = 0;
	if (!p || p[1] != ' ' || p[2] != 'Z' || sscanf(p + 3, " %d", &ppid) != 1)
		return 0;
	return ppid > 1 ? 1 : 2;
}

/* The offsets a time namespace takes are from the host's clocks, while
 * validate.c measured what is missing from ours: where roam itself runs in
 * a time namespace, its own offsets come on top. */
static int enter_timens(struct restore *r)
{
	int64_t mono, boot;
	char buf[128];
	int fd, n;

	if (!r->timens_mono_ns && !r->timens_boot_ns)
		return 0;
	if (proc_timens_offsets(AT_FDCWD, &mono, &boot) < 0)
		mono = boot = 0;
	mono += r->timens_mono_ns;
	boot += r->timens_boot_ns;
	if (unshare(CLONE_NEWTIME) < 0)
		return roam_fail(r->err, -errno, "making a time namespace for the restored clocks");
	n = snprintf(buf, sizeof(buf), "monotonic %lld %lld\nboottime %lld %lld\n",
		     (long long)(mono / 1000000000), (long long)(mono % 1000000000),
		     (long long)(boot / 1000000000), (long long)(boot % 1000000000));
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return roam_fail(r->err, e, "setting the time namespace offsets");
	}
	close(fd);
	r->stats.timens = 1;
	return 0;
}

int restore_spawn(struct restore *r)
{
	int rep[2], rc, st, which = -1, cgfd;
	pid_t pid;

	if ((rc = enter_timens(r)) < 0)
		return rc;
	if (pipe2(rep, O_CLOEXEC) < 0)
		return roam_fail(r->err, -errno, "making a pipe");
	cgfd = born_cgroup(r, &which);
	pid = -1;
	errno = EPERM;
	/* The process we restore may have just been killed by its checkpoint:
	 * its zombie holds the PID until its parent reaps it. Wait a little. */
	for (int tries = 0; geteuid() == 0 && tries < 25; tries++) {
		pid = clone_child(r, 1, &cgfd);
		int e = errno;
		/* A zombie of init's may wait long: only one with a live parent of
		 * its own is worth waiting for here. */
		if (pid >= 0 || e != EEXIST || pid_is_zombie(r->ld.process->pid) != 1) {
			errno = e;
			break;
		}
		usleep(2000);
		errno = e;
	}
	if (pid < 0 && errno == EEXIST && r->opts.same_pid) {
		if (cgfd >= 0)
			close(cgfd);
		close(rep[0]);
		close(rep[1]);
		return roam_fail(r->err, -ROAM_E_PIDTAKEN, "pid %d is in use (--same-pid)", r->ld.process->pid);
	}
	if (pid < 0 && r->opts.same_pid) {
		int e = errno;
		if (cgfd >= 0)
			close(cgfd);
		close(rep[0]);
		close(rep[1]);
		return roam_fail(r->err, -ROAM_E_PERM, "cannot ask for pid %d (%s)", r->ld.process->pid,
				 strerror(e));
	}
	if (pid < 0)
		pid = clone_child(r, 0, &cgfd);
	if (pid == 0) {
		close(rep[0]);
		child_main(r, rep[1], cgfd >= 0 ? which : -1);
	}
	if (pid < 0)
		rc = roam_fail(r->err, -errno, "creating the process");
	if (cgfd >= 0)
		close(cgfd);   /* the child, if any, was born in it */
	if (pid < 0) {
		close(rep[0]);
		close(rep[1]);
		return rc;
	}
	close(rep[1]);
	r->pid = pid;
	r->stats.pid_kept = pid == r->ld.process->pid;

	struct child_report rp;
	ssize_t n = read(rep[0], &rp, sizeof(rp));
	close(rep[0]);
	if (n == (ssize_t)sizeof(rp)) {
		rp.what[sizeof(rp.what) - 1] = '\0';
		return roam_fail(r->err, rp.err, "%s", rp.what);
	}
	if ((rc = pt_wait_stop(pid, &st)) < 0)
		return roam_fail(r->err, rc, "the new process died before it stopped");
	if (WSTOPSIG(st) != SIGSTOP)
		return roam_fail(r->err, -ROAM_E_TARGET, "the new process stopped by signal %d", WSTOPSIG(st));
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL)) < 0)
		return roam_fail(r->err, -errno, "tracing the new process");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	r->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (r->memfd < 0)
		return roam_fail(r->err, -errno, "opening %s", path);
	r->rem.tid = pid;
	r->rem.ip = r->tramp;
	r->rem.trap_after = 1;  /* the trampoline's syscall is followed by int3 */
	if ((rc = arch_get_regs(pid, &r->rem.base)) < 0)
		return roam_fail(r->err, rc, "reading the registers of the new process");
	if ((rc = pt_set_sigmask(pid, ~0ull)) < 0)
		return roam_fail(r->err, rc, "blocking signals in the new process");
	return 0;
}

/* --- a process tree: the others, forked by their parents ----------------- */

/* A trampoline for the new process, in its parent's process first: at a
 * hole of both its layout and the parent's as it is now. */
static int parent_tramp(struct restore *r, struct restore *up)
{
	long ret;
	int rc = restore_hole_beside(r->mm, up->mm, up, SIZE_MAX, TRAMP_SIZE, &r->tramp);

	if (rc < 0)
		return roam_fail(r->err, rc, "no room for the trampoline of process %d", r->ld.process->pid);
	static const unsigned char code[] = ARCH_TRAMPOLINE_CODE;
	if ((rc = rsys(up, &ret, "mapping a trampoline for a child", SYS_mmap, (long)r->tramp, TRAMP_SIZE,
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)) < 0)
		return rc;
	if ((uint64_t)ret != r->tramp)
		return roam_fail(r->err, -ENOMEM, "mapping a trampoline for a child at %llx", (unsigned long long)r->tramp);
	if ((rc = mem_write(up->pid, up->memfd, r->tramp, code, sizeof(code))) < 0)
		return roam_fail(r->err, rc, "writing a trampoline for a child");
	return rsys(up, &ret, "protecting a child's trampoline", SYS_mprotect, (long)r->tramp, ARCH_PAGE_SIZE,
		    PROT_READ | PROT_EXEC, 0, 0, 0);
}

int restore_fork(struct restore *r)
{
	struct restore *up = r->up;
	pid_t want = r->ld.process->pid, pid = -1;
	int may_set_tid = geteuid() == 0, rc, st;
	long ret;

	if ((rc = parent_tramp(r, up)) < 0)
		return rc;
	if (ptrace(PTRACE_SETOPTIONS, up->pid, 0,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL)) < 0)
		return roam_fail(r->err, -errno, "tracing the forks of process %d", up->pid);
	/* Its old pid where it is free; one just freed by the checkpoint's
	 * kill may still be a zombie a moment, and a while where its parent
	 * was killed too and init reaps it (a second here): worth up to 2 s,
	 * since programs hold their pids (asyncio checks its own). */
	for (int tries = 0; pid < 0 && tries < 1000; tries++) {
		uint64_t a;
		if ((rc = restore_clone_args(up, 0, SIGCHLD, want, may_set_tid, &a)) < 0)
			return rc;
		up->rem.new_thread = 0;
		if ((rc = remote_syscall(&up->rem, &ret, SYS_clone3, (long)a, sizeof(struct clone_args), 0, 0, 0, 0)) < 0)
			return roam_fail(r->err, rc, "forking process %d from %d", want, up->pid);
		if (ret >= 0)
			pid = up->rem.new_thread ? up->rem.new_thread : (pid_t)ret;
		else if (ret == -EEXIST && pid_is_zombie(want) && tries < 999)
			usleep(2000);
		else if (may_set_tid && !r->opts.same_pid)
			may_set_tid = 0;  /* taken, or not ours to choose: any pid */
		else
			return roam_fail(r->err, ret == -EEXIST ? -ROAM_E_PIDTAKEN : (int)ret, "forking process %d from %d",
					 want, up->pid);
	}
	if (pid < 0)
		return roam_fail(r->err, -ROAM_E_PIDTAKEN, "pid %d stayed taken", want);
	r->pid = pid;
	r->stats.pid_kept = pid == want;
	if ((rc = pt_wait_stop(pid, &st)) < 0)
		return roam_fail(r->err, rc, "the new process %d died before it stopped", pid);
	if (ptrace(PTRACE_SETOPTIONS, pid, 0,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL)) < 0)
		return roam_fail(r->err, -errno, "tracing the new process %d", pid);
	if ((rc = rsys(up, &ret, "unmapping a child's trampoline", SYS_munmap, (long)r->tramp, TRAMP_SIZE, 0, 0, 0,
		       0)) < 0)
		return rc;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	if ((r->memfd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return roam_fail(r->err, -errno, "opening %s", path);
	r->rem.tid = pid;
	r->rem.ip = r->tramp;
	r->rem.trap_after = up->rem.trap_after;
	if ((rc = arch_get_regs(pid, &r->rem.base)) < 0)
		return roam_fail(r->err, rc, "reading the registers of the new process");
	if ((rc = pt_set_sigmask(pid, ~0ull)) < 0)
		return roam_fail(r->err, rc, "blocking signals in the new process");
	return 0;
}

/* --- pre-copy: what the child would have done, by remote syscalls ------ */

/* A maker of descriptors by remote syscalls in the main thread, and which
 * of fds 0-2 are the caller's (kept). */
static void remote_maker(struct restore *r, struct fd_maker *m, int kept[3])
{
	for (int k = 0; k < 3; k++)
		kept[k] = r->opts.stdio[k] >= 0;
	fd_maker_remote(m, r, &r->rem);
}

/* setup_fds, from outside. */
static int late_fds(struct restore *r)
{
	int kept[3];
	struct fd_maker m;
	int rc;

	/* The caller's stdio is at 0-2 already (bare_stop). */
	remote_maker(r, &m, kept);
	/* A process of a tree holds its parent's descriptors: all go but what
	 * the tree shares, above them all. */
	m.tree_base = r->tree_base;
	if (r->up) {
		long ret;
		if ((rc = rsys(r, &ret, "closing what the parent held", SYS_close_range, 0, r->tree_base - 1, 0, 0, 0,
			       0)) < 0)
			return rc;
	}
	if ((rc = fds_make_all(&m, r->ld.files, kept)) < 0)
		return fd_maker_fail(&m, rc);
	return 0;
}

/* The files a thread had open under its own /proc/PID/task/TID: each is
 * opened by the restored thread itself as /proc/thread-self/..., once the
 * threads exist, since their TIDs may differ from the image's. */
int restore_task_files(struct restore *r)
{
	const Roamimg__Files *fs = r->ld.files;
	const Roamimg__Threads *th = r->ld.threads;
	int high = fds_high(fs), rc = 0;
	long src, ret;

	for (size_t i = 0; i < fs->n_fds && rc == 0; i++) {
		const Roamimg__Fd *d = fs->fds[i];
		size_t t = 0;
		if (!d->has_task_tid || (d->fd <= 2 && r->opts.stdio[d->fd] >= 0))
			continue;
		while (t < th->n_threads && th->threads[t]->tid != d->task_tid)
			t++;
		if (t == th->n_threads)
			return roam_fail(r->err, -ROAM_E_IMAGE, "fd %u is a file of thread %d, which the image lacks",
					 d->fd, d->task_tid);
		/* Each description once: an earlier fd with its file_id placed it. */
		size_t first = 0;
		while (fs->fds[first]->file_id != d->file_id)
			first++;
		if (first < i)
			continue;
		struct fd_maker m;
		fd_maker_remote(&m, r, &r->trem[t]);
		if ((rc = fds_open_one(&m, d, high, &src)) < 0)
			return fd_maker_fail(&m, rc);
		for (size_t j = i; j < fs->n_fds && rc == 0; j++) {
			const Roamimg__Fd *e = fs->fds[j];
			if (e->file_id == d->file_id && !(e->fd <= 2 && r->opts.stdio[e->fd] >= 0))
				rc = rsys(r, &ret, "placing a descriptor", SYS_dup3, src, e->fd, e->cloexec ? O_CLOEXEC : 0,
					  0, 0, 0);
		}
		remote_syscall(&r->rem, &ret, SYS_close, src, 0, 0, 0, 0, 0);
	}
	return rc;
}

/* The file locks, once every descriptor is in place for good. */
int restore_file_locks(struct restore *r)
{
	int kept[3];
	struct fd_maker m;
	int rc;

	remote_maker(r, &m, kept);
	if ((rc = fds_make_locks(&m, r->ld.files, kept)) < 0)
		return fd_maker_fail(&m, rc);
	return 0;
}

int restore_setup_late(struct restore *r)
{
	const Roamimg__Process *p = r->ld.process;
	uint64_t a;
	long ret;
	int rc;

	if (p->sid == p->pid)
		rc = rsys(r, &ret, "making a session (the process led its own)", SYS_setsid, 0, 0, 0, 0, 0, 0);
	else if (p->pgid == p->pid)
		rc = rsys(r, &ret, "making a process group (the process led its own)", SYS_setpgid, 0, 0, 0, 0, 0, 0);
	else
		rc = 0;
	if (rc < 0)
		return rc;
	char what[PATH_MAX + 64];
	snprintf(what, sizeof(what), "entering the working directory %s", p->cwd);
	if ((rc = tramp_put(r, 0, p->cwd, strlen(p->cwd) + 1, &a)) < 0 ||
	    (rc = rsys(r, &ret, what, SYS_chdir, (long)a, 0, 0, 0, 0, 0)) < 0 ||
	    (rc = rsys(r, &ret, "setting the umask", SYS_umask, (long)p->umask, 0, 0, 0, 0, 0)) < 0 ||
	    (rc = rsys(r, &ret, "setting the personality", SYS_personality, (long)p->personality, 0, 0, 0, 0, 0)) < 0)
		return rc;
	if (p->creds->has_no_new_privs && p->creds->no_new_privs &&
	    (rc = rsys(r, &ret, "setting no_new_privs", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)) < 0)
		return rc;
	restore_close_files(r);
	if ((rc = late_fds(r)) < 0)
		return rc;
	/* Last, since a lowered RLIMIT_NOFILE could stop the steps above. */
	for (size_t i = 0; i < p->n_rlimits; i++) {
		uint64_t rl[2] = { p->rlimits[i]->cur, p->rlimits[i]->max };
		snprintf(what, sizeof(what), "setting rlimit %u to %llu/%llu", p->rlimits[i]->resource,
			 (unsigned long long)rl[0], (unsigned long long)rl[1]);
		if ((rc = tramp_put(r, 0, rl, sizeof(rl), &a)) < 0 ||
		    (rc = rsys(r, &ret, what, SYS_prlimit64, 0, (long)p->rlimits[i]->resource, (long)a, 0, 0, 0)) < 0)
			return rc;
	}
	return 0;
}
