/*
 * Process creation with clone(CLONE_VM|CLONE_VFORK), after musl's
 * posix_spawn: the child shares roamd's memory until it calls execve, so the
 * cost does not grow with roamd's size, and roamd sleeps until then.
 *
 * The child may not touch anything the parent owns beyond the request: it
 * runs on its own small stack, calls only raw system calls (glibc's setuid
 * and friends would broadcast the change to "all threads" through signals,
 * and malloc's locks are the parent's), and reports a failure by writing the
 * stage and errno into the shared request before _exit. Since the parent is
 * suspended until the child execs or exits, no lock is needed to read them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch.h"
#include "daemon/roamd.h"

#define CHILD_STACK (64u << 10)

struct child {
	const struct spawn_req *r;
	const sigset_t *reset;      /* dispositions that are not SIG_DFL in roamd */
	bool join_v2;               /* not born in its cgroup2 folder: join it */
	volatile int err;
	volatile int stage;
};

const char *spawn_stage_name(enum spawn_stage s)
{
	switch (s) {
	case SPAWN_OK: return "ok";
	case SPAWN_CGROUP: return "joining the job's cgroup";
	case SPAWN_CREDS: return "switching to the user";
	case SPAWN_CWD: return "entering the working directory";
	case SPAWN_RLIMIT: return "setting resource limits";
	case SPAWN_EXEC: return "executing the program";
	}
	return "?";
}

static __attribute__((noreturn)) void child_fail(struct child *c, int stage, long ret)
{
	c->err = (int)-ret;
	c->stage = stage;
	syscall(SYS_exit_group, 127);
	__builtin_unreachable();
}

/* Raw syscalls return -errno through syscall() as -1 and errno; errno is the
 * parent's TLS slot (CLONE_VM without CLONE_SETTLS), harmless while it sleeps. */
static long rs(long ret)
{
	return ret < 0 ? -errno : ret;
}

__attribute__((no_sanitize("address", "undefined")))
static int child_main(void *arg)
{
	struct child *c = arg;
	const struct spawn_req *r = c->r;
	sigset_t none;
	long ret;

	/* A new session: the job must not share roamd's process group, so that
	 * a signal to roamd's group never reaches jobs. */
	syscall(SYS_setsid);

	/* Dispositions roamd ignores would survive execve: reset them. */
	for (int s = 1; s < _NSIG; s++) {
		/* The kernel's layout, all zero: SIG_DFL, no flags, empty mask. */
		struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } ks;
		memset(&ks, 0, sizeof(ks));
		if (sigismember(c->reset, s) == 1)
			syscall(SYS_rt_sigaction, s, &ks, NULL, sizeof(ks.mask));
	}

	for (int v2 = 0; v2 < 2; v2++) {
		const char *const *p = v2 ? &r->cgroup_v2_procs : r->cgroup_procs;
		if (v2 && !c->join_v2)
			break;
		for (; p && *p; p++) {
			int fd = (int)syscall(SYS_openat, AT_FDCWD, *p, O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				continue;  /* a hierarchy we cannot use; the others still hold the job */
			ret = rs(syscall(SYS_write, fd, "0", 1));
			syscall(SYS_close, fd);
			if (ret < 0)
				child_fail(c, SPAWN_CGROUP, ret);
			if (v2)
				break;
		}
	}

	if (r->fd_in != 0 && (ret = rs(syscall(SYS_dup2, r->fd_in, 0))) < 0)
		child_fail(c, SPAWN_CREDS, ret);
	if (r->fd_out != 1 && (ret = rs(syscall(SYS_dup2, r->fd_out, 1))) < 0)
		child_fail(c, SPAWN_CREDS, ret);
	if (r->fd_err != 2 && (ret = rs(syscall(SYS_dup2, r->fd_err, 2))) < 0)
		child_fail(c, SPAWN_CREDS, ret);

	if (r->rlim)
		for (int i = 0; i < RLIM_NLIMITS; i++)
			if (r->rlim_set[i])
				syscall(SYS_prlimit64, 0, i, &r->rlim[i], NULL);

	/* Groups, then gid, then uid: after setresuid the rest is not allowed. */
	if (r->switch_user) {
		if ((ret = rs(syscall(SYS_setgroups, r->ngroups, r->groups))) < 0)
			child_fail(c, SPAWN_CREDS, ret);
		if ((ret = rs(syscall(SYS_setresgid, r->gid, r->gid, r->gid))) < 0)
			child_fail(c, SPAWN_CREDS, ret);
		if ((ret = rs(syscall(SYS_setresuid, r->uid, r->uid, r->uid))) < 0)
			child_fail(c, SPAWN_CREDS, ret);
	}

	/* As the user, so that a directory the user may not enter is refused. */
	if ((ret = rs(syscall(SYS_chdir, r->cwd))) < 0)
		child_fail(c, SPAWN_CWD, ret);
	syscall(SYS_umask, r->umask);

	sigemptyset(&none);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8);

	/* Like execvp: the first candidate that exists wins; remember the most
	 * telling error (EACCES over ENOENT) when none does. */
	ret = -ENOENT;
	for (const char *const *p = r->paths; *p; p++) {
		long e = rs(syscall(SYS_execve, *p, r->argv, r->envp));
		if (e != -ENOENT && e != -ENOTDIR)
			ret = e;
		if (e == -ENOEXEC)
			break;
	}
	child_fail(c, SPAWN_EXEC, ret);
}


/* The child is born into r->cgroup_fd when the kernel allows; else it
 * joins its cgroup itself. Returns the pid, or -errno (the clone failed). */
static pid_t create(struct child *c, void *stack, int *pidfd)
{
	const struct spawn_req *r = c->r;

#ifdef ARCH_HAVE_CLONE3_FN
	if (r->cgroup_fd >= 0) {
		struct clone_args args;
		long pid;

		memset(&args, 0, sizeof(args));
		args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP;
		args.pidfd = (uint64_t)(uintptr_t)pidfd;
		args.exit_signal = SIGCHLD;
		args.stack = (uint64_t)(uintptr_t)stack;
		args.stack_size = CHILD_STACK;
		args.cgroup = (uint64_t)r->cgroup_fd;
		c->join_v2 = false;
		pid = arch_clone3_fn(&args, sizeof(args), child_main, c);
		if (pid >= 0)
			return (pid_t)pid;
		if (pid != -ENOSYS && pid != -EINVAL && pid != -E2BIG && pid != -EOPNOTSUPP)
			return (pid_t)pid;
		/* An older kernel: the child joins by itself below. */
	}
#endif
	c->join_v2 = r->cgroup_v2_procs != NULL;
	pid_t pid = clone(child_main, (char *)stack + CHILD_STACK,
			  CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, c, pidfd);
	return pid < 0 ? -errno : pid;
}

/*
 * The signals whose disposition is not SIG_DFL in roamd, read once: roamd
 * takes its signals through a signalfd and never changes a disposition
 * after start-up, and what it inherited (an ignored SIGPIPE, say) stays.
 * The child resets only these, instead of making 64 system calls while
 * roamd waits for it.
 */
static const sigset_t *dispositions_to_reset(void)
{
	static sigset_t set;
	static bool known;

	if (!known) {
		sigemptyset(&set);
		for (int s = 1; s < _NSIG; s++) {
			struct sigaction sa;
			if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) < 0)
				continue;
			if (sa.sa_handler != SIG_DFL)
				sigaddset(&set, s);
		}
		known = true;
	}
	return &set;
}

pid_t spawn_process(const struct spawn_req *r, int *pidfd, enum spawn_stage *stage)
{
	struct child c = {.r = r, .reset = dispositions_to_reset(), .err = 0, .stage = SPAWN_OK};
	/* One stack for every child, kept: spawns are one at a time (the
	 * parent sleeps until the child has exec'd), and unmapping a stack a
	 * child used on another CPU costs a TLB shootdown there. */
	static void *stack;
	sigset_t all, old;
	pid_t pid;

	if (!stack) {
		void *p = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		stack = p;
	}
	/* No handler may run in the child on the shared memory. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	*pidfd = -1;
	pid = create(&c, stack, pidfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return pid;
	*stage = (enum spawn_stage)c.stage;
	if (c.stage != SPAWN_OK) {
		/* The child has already exited (vfork returned): reap it now. */
		waitpid(pid, NULL, 0);
		close(*pidfd);
		*pidfd = -1;
		return c.err ? -c.err : -EIO;
	}
	return pid;
}
