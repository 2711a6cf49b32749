/*
 * Freezing and releasing: every thread is seized and interrupted with ptrace,
 * which the process cannot observe (SIGSTOP would show in its parent's
 * waitpid and in its own signal state). Threads created while we seize are
 * caught by listing the tasks again until the list stops growing.
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include "sys/clock.h"

static struct ckpt_thread *find_thread(struct ckpt *c, pid_t tid)
{
	for (size_t i = 0; i < c->nthreads; i++)
		if (c->threads[i].tid == tid)
			return &c->threads[i];
	return NULL;
}

static int add_thread(struct ckpt *c, pid_t tid)
{
	struct ckpt_thread *n = realloc(c->threads, (c->nthreads + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	c->threads = n;
	memset(&n[c->nthreads], 0, sizeof(*n));
	n[c->nthreads].tid = tid;
	c->nthreads++;
	return 0;
}

/* Gone, or past the point where it could still run user code. */
static int thread_exiting(struct ckpt *c, pid_t tid)
{
	char name[64], *buf, *p;
	int gone = 1;

	snprintf(name, sizeof(name), "task/%d/stat", tid);
	if (proc_read_file(c->procfd, name, &buf, NULL) < 0)
		return 1;
	p = strrchr(buf, ')');
	if (p && p[1] == ' ')
		gone = p[2] == 'Z' || p[2] == 'X';
	free(buf);
	return gone;
}

int ckpt_seize_all(struct ckpt *c)
{
	int rc, grew;

	do {
		pid_t *tids;
		size_t n;
		grew = 0;
		if ((rc = proc_list_tasks(c->procfd, &tids, &n)) < 0)
			return roam_fail(c->err, rc, "listing the threads of pid %d", c->pid);
		for (size_t i = 0; i < n; i++) {
			if (find_thread(c, tids[i]))
				continue;
			if ((rc = add_thread(c, tids[i])) < 0) {
				free(tids);
				return rc;
			}
			/* No PTRACE_O_EXITKILL: if roam dies, the process must live on. */
			rc = pt_seize(tids[i], PTRACE_O_TRACESYSGOOD);
			if (rc == -ESRCH || (rc == -EPERM && thread_exiting(c, tids[i])))
				continue;  /* the thread exited meanwhile (EPERM: while exiting) */
			if (rc < 0) {
				free(tids);
				return roam_fail(c->err, rc, "seizing thread %d", tids[i]);
			}
			c->threads[c->nthreads - 1].seized = 1;
			grew = 1;
		}
		free(tids);
	} while (grew);

	/* Wait for every interrupt stop; drop the threads that exited. */
	size_t kept = 0;
	for (size_t i = 0; i < c->nthreads; i++) {
		struct ckpt_thread *t = &c->threads[i];
		int st;
		if (!t->seized)
			continue;
		for (;;) {
			rc = pt_wait_stop(t->tid, &st);
			if (rc < 0)
				break;
			if ((st >> 16) == PTRACE_EVENT_STOP)
				break;
			/* A signal-delivery stop came first: let the signal through
			 * unchanged and wait for our interrupt. */
			if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)WSTOPSIG(st)) < 0) {
				rc = -errno;
				break;
			}
		}
		if (rc == -ESRCH)
			continue;
		if (rc < 0)
			return roam_fail(c->err, rc, "waiting for thread %d to stop", t->tid);
		t->stopped = 1;
		c->threads[kept++] = *t;
	}
	c->nthreads = kept;
	if (!kept || c->threads[0].tid != c->pid)
		return roam_fail(c->err, -ESRCH, "process %d exited while being frozen", c->pid);
	c->stats.freeze_ns = mono_ns();
	c->state = CK_FROZEN;
	c->collected = 0;  /* what it holds now is to be read anew */
	return 0;
}

/*
 * From here the frozen process dies with its tracer instead of running on:
 * PTRACE_O_EXITKILL on every seized thread (one would do, since SIGKILL
 * takes the whole group; all, in case that one exits). The seize leaves it
 * out on purpose, so that a plain checkpoint never costs the process its
 * life; a caller whose image may already run elsewhere (a migration source
 * once the process is frozen for the last time) asks for it.
 */
int ckpt_kill_with_tracer(struct ckpt *c)
{
	if (c->state != CK_FROZEN)
		return -EINVAL;
	for (size_t i = 0; i < c->nthreads; i++) {
		struct ckpt_thread *t = &c->threads[i];
		if (!t->seized || !t->stopped)
			continue;
		if (ptrace(PTRACE_SETOPTIONS, t->tid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) < 0)
			return roam_fail(c->err, -errno, "setting PTRACE_O_EXITKILL on thread %d", t->tid);
	}
	return 0;
}

/* Puts every thread back as it was before remote syscalls. A thread that
 * ran them sits at a syscall-exit stop, where the kernel does no restart
 * processing on the way out: the restart is applied by hand, with
 * restart_syscall, since the same thread keeps its restart block. */
int ckpt_restore_threads(struct ckpt *c)
{
	int first = 0;

	cpu_spread_end(&c->hold);  /* the remote syscalls are over */
	for (size_t i = 0; i < c->nthreads; i++) {
		struct ckpt_thread *t = &c->threads[i];
		int rc = 0;
		if (!t->seized || !t->stopped)
			continue;
		if (t->regs_changed) {
			arch_regs_t r = t->regs;
			arch_apply_restart(&r, 1);
			rc = arch_set_regs(t->tid, &r);
			if (!rc)
				t->regs_changed = 0;
		}
		if (!rc && t->mask_changed) {
			rc = pt_set_sigmask(t->tid, t->sigmask);
			if (!rc)
				t->mask_changed = 0;
		}
		if (rc < 0 && rc != -ESRCH && !first)
			first = roam_fail(c->err, rc, "putting thread %d back", t->tid);
	}
	return first;
}

int ckpt_release_all(struct ckpt *c)
{
	int first = ckpt_restore_threads(c);

	for (size_t i = 0; i < c->nthreads; i++) {
		struct ckpt_thread *t = &c->threads[i];
		if (!t->seized)
			continue;
		int rc = pt_detach(t->tid);
		if (rc < 0 && rc != -ESRCH && !first)
			first = roam_fail(c->err, rc, "releasing thread %d", t->tid);
		t->seized = 0;
	}
	return first;
}
