/*
 * The last stage, once every page is in place and COMMIT has been read:
 * process-wide signal state, the other threads (clone3 run in the main
 * thread, with their old TIDs when we may), each thread's own state, the
 * credentials, and finally the registers (restore_finish); then, as a
 * separate step the caller may hold back, the release (restore_let_go).
 *
 * Ordering constraints:
 *   - credentials are per thread for raw syscalls, and dropping them first
 *     would forbid set_tid: they are set in every thread after the clones;
 *   - pending signals are queued while every signal is blocked, so that none
 *     is delivered to the tracer's remote syscalls; the image's masks are
 *     installed just before release;
 *   - the trampoline goes last, since every thread's remote syscalls use it.
 */
#include "restore/internal.h"
#include "sys/clock.h"
#include "sys/mem.h"
#include "sys/proc.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* A remote syscall in thread i. */
static int tsys(struct restore *r, size_t i, long *ret, const char *what, long nr, long a0, long a1, long a2,
		long a3)
{
	long v;
	int rc = remote_syscall(&r->trem[i], &v, nr, a0, a1, a2, a3, 0, 0);

	if (rc < 0)
		return roam_fail(r->err, rc, "%s in thread %d: the thread could not be driven", what, r->tids[i]);
	if (v < 0 && v > -4096)
		return roam_fail(r->err, (int)v, "%s in thread %d", what, r->tids[i]);
	if (ret)
		*ret = v;
	return 0;
}

/*
 * The trampoline's breakpoint raises SIGTRAP, which the kernel forces
 * through: when SIGTRAP is blocked or ignored it resets the handler to
 * SIG_DFL, and a pending SIGTRAP would be taken for the breakpoint. Once the
 * process has its own SIGTRAP handler, or pending SIGTRAP, the remote calls
 * stop at syscall entry and exit instead (two stops each, no breakpoint).
 */
static int sigtrap_in_use(const struct restore *r)
{
	const Roamimg__Process *p = r->ld.process;
	const Roamimg__Threads *th = r->ld.threads;

	for (size_t i = 0; i < p->n_sigactions; i++)
		if (p->sigactions[i]->signo == SIGTRAP && p->sigactions[i]->handler != (uint64_t)(uintptr_t)SIG_DFL)
			return 1;
	if (img_siginfo_has(p->shared_pending, p->n_shared_pending, SIGTRAP))
		return 1;
	for (size_t i = 0; i < th->n_threads; i++)
		if (img_siginfo_has(th->threads[i]->pending, th->threads[i]->n_pending, SIGTRAP))
			return 1;
	return 0;
}

static int restore_sigactions(struct restore *r)
{
	const Roamimg__Process *p = r->ld.process;
	uint64_t a;
	long ret;
	int rc;

	for (size_t i = 0; i < p->n_sigactions; i++) {
		const Roamimg__SigAction *s = p->sigactions[i];
		uint64_t ka[4] = { s->handler, s->flags, s->restorer, s->mask };
		if ((rc = tramp_put(r, 0, ka, sizeof(ka), &a)) < 0)
			return rc;
		if ((rc = rsys(r, &ret, "installing a signal handler", SYS_rt_sigaction, s->signo, (long)a, 0, 8, 0, 0)) < 0)
			return rc;
	}
	for (size_t i = 0; i < p->n_itimers; i++) {
		const Roamimg__Itimer *t = p->itimers[i];
		/* A periodic timer caught at its expiry reads 0 left: it is armed all
		 * the same, and fires next a whole interval on. */
		uint64_t value = t->value_us ? t->value_us : t->interval_us;
		uint64_t tv[4] = { t->interval_us / 1000000, t->interval_us % 1000000, value / 1000000, value % 1000000 };
		if (!value)
			continue;  /* a disarmed timer */
		if ((rc = tramp_put(r, 0, tv, sizeof(tv), &a)) < 0)
			return rc;
		if ((rc = rsys(r, &ret, "arming an interval timer", SYS_setitimer, t->which, (long)a, 0, 0, 0, 0)) < 0)
			return rc;
	}
	return 0;
}

/* The current id of the thread that had tid in the image. */
static pid_t live_tid(const struct restore *r, pid_t tid)
{
	const Roamimg__Threads *th = r->ld.threads;

	for (size_t i = 0; i < th->n_threads; i++)
		if (th->threads[i]->tid == tid)
			return r->tids[i];
	return 0;
}

/* POSIX timers, once the threads they signal exist: each made again under
 * the id the program holds (PR_TIMER_CREATE_RESTORE_IDS makes timer_create
 * take it from its third argument), then armed with the time it had left. */
static int restore_posix_timers(struct restore *r)
{
	const Roamimg__Process *p = r->ld.process;
	long ret;
	uint64_t a;
	int rc = 0;

	if (!p->n_posix_timers)
		return 0;
	if ((rc = rsys(r, &ret, "asking for POSIX timers by id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.17 and later)",
		       SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0, 0)) < 0)
		return rc;
	for (size_t i = 0; i < p->n_posix_timers && rc == 0; i++) {
		const Roamimg__PosixTimer *t = p->posix_timers[i];
		char what[96];
		struct sigevent sev;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = t->notify;
		sev.sigev_signo = t->signo;
		sev.sigev_value.sival_ptr = (void *)(uintptr_t)t->sigev_value;
		if (t->notify & SIGEV_THREAD_ID) {
			pid_t tid = live_tid(r, t->tid);
			if (!tid)
				return roam_fail(r->err, -ROAM_E_IMAGE, "POSIX timer %d signals thread %d, which the image lacks",
						 t->id, t->tid);
			sev._sigev_un._tid = tid;
		}
		int32_t id = t->id;
		uint64_t sev_at, id_at;
		snprintf(what, sizeof(what), "making POSIX timer %d", t->id);
		if ((rc = tramp_put(r, 0, &sev, sizeof(sev), &sev_at)) < 0 ||
		    (rc = tramp_put(r, 256, &id, sizeof(id), &id_at)) < 0 ||
		    (rc = rsys(r, &ret, what, SYS_timer_create, t->clockid, (long)sev_at, (long)id_at, 0, 0, 0)) < 0)
			break;
		uint64_t its[4] = { t->interval_ns / 1000000000ull, t->interval_ns % 1000000000ull,
				    t->value_ns / 1000000000ull, t->value_ns % 1000000000ull };
		/* A periodic timer caught at its expiry: next a whole interval on. */
		if (!t->value_ns && t->interval_ns)
			its[2] = its[0], its[3] = its[1];
		snprintf(what, sizeof(what), "arming POSIX timer %d", t->id);
		if ((its[2] || its[3]) && ((rc = tramp_put(r, 0, its, sizeof(its), &a)) < 0 ||
					   (rc = rsys(r, &ret, what, SYS_timer_settime, t->id, 0, (long)a, 0, 0, 0)) < 0))
			break;
	}
	int off = rsys(r, &ret, "leaving PR_TIMER_CREATE_RESTORE_IDS", SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
		       PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0, 0);
	return rc < 0 ? rc : off;
}

/* Creates image thread i (i >= 1) from the main thread. */
int restore_clone_args(struct restore *r, uint64_t flags, int exit_signal, pid_t want, int set_tid, uint64_t *a)
{
	struct clone_args args;
	uint64_t tida;
	int rc;

	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.exit_signal = (uint64_t)exit_signal;
	if (set_tid) {
		if ((rc = tramp_put(r, 256, &want, sizeof(want), &tida)) < 0)
			return rc;
		args.set_tid = tida;
		args.set_tid_size = 1;
	}
	return tramp_put(r, 0, &args, sizeof(args), a);
}

static int create_thread(struct restore *r, size_t i, int *may_set_tid)
{
	const Roamimg__Thread *t = r->ld.threads->threads[i];
	pid_t want = t->tid;
	uint64_t a;
	long ret;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = restore_clone_args(r, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
						 CLONE_SYSVSEM, 0, want, *may_set_tid, &a)) < 0)
			return rc;
		r->rem.new_thread = 0;
		if ((rc = remote_syscall(&r->rem, &ret, SYS_clone3, (long)a, sizeof(struct clone_args), 0, 0, 0, 0)) < 0)
			return roam_fail(r->err, rc, "creating thread %d", want);
		if (ret >= 0)
			break;
		if (!*may_set_tid)
			return roam_fail(r->err, (int)ret, "creating thread %d", want);
		*may_set_tid = 0;  /* the TID is taken, or we may not choose: any TID will do */
	}
	pid_t tid = r->rem.new_thread ? r->rem.new_thread : (pid_t)ret;
	int st;
	if ((rc = pt_wait_stop(tid, &st)) < 0)
		return roam_fail(r->err, rc, "waiting for new thread %d", tid);
	r->tids[i] = tid;
	r->trem[i].tid = tid;
	r->trem[i].ip = r->tramp;
	r->trem[i].trap_after = r->rem.trap_after;
	if ((rc = arch_get_regs(tid, &r->trem[i].base)) < 0)
		return roam_fail(r->err, rc, "reading the registers of thread %d", tid);
	if ((rc = pt_set_sigmask(tid, ~0ull)) < 0)
		return roam_fail(r->err, rc, "blocking signals in thread %d", tid);
	return 0;
}

static int queue_signals(struct restore *r, size_t i, Roamimg__SigInfo **v, size_t n, int shared)
{
	uint64_t a;
	int rc;

	for (size_t k = 0; k < n; k++) {
		if (v[k]->raw.len != sizeof(siginfo_t))
			return roam_fail(r->err, -ROAM_E_IMAGE, "a pending signal of the wrong size");
		if ((rc = tramp_put(r, 512, v[k]->raw.data, v[k]->raw.len, &a)) < 0)
			return rc;
		if (shared)
			rc = tsys(r, i, NULL, "queueing a pending signal", SYS_rt_sigqueueinfo, r->pid, v[k]->signo, (long)a, 0);
		else
			rc = tsys(r, i, NULL, "queueing a pending signal", SYS_rt_tgsigqueueinfo, r->pid, r->tids[i],
				  v[k]->signo, (long)a);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The C library keeps each thread's TID in its thread descriptor, at the
 * clear-child-tid address (glibc's and musl's pthread->tid), and uses it for
 * pthread_kill and lock ownership. A thread that could not have its old TID
 * back finds its new one there, if the word held the old one. Lock words
 * that name an owner (error-checking, recursive, robust, PI mutexes) still
 * hold the old TID: that is why restore asks for the old TIDs first. */
static int renew_cached_tid(struct restore *r, size_t i)
{
	const Roamimg__Thread *t = r->ld.threads->threads[i];
	int32_t word;
	int rc;

	if (r->tids[i] == (pid_t)t->tid || !t->has_clear_child_tid || !t->clear_child_tid ||
	    mem_read(r->pid, r->memfd, t->clear_child_tid, &word, sizeof(word)) < 0 || word != (int32_t)t->tid)
		return 0;
	word = r->tids[i];
	if ((rc = mem_write(r->pid, r->memfd, t->clear_child_tid, &word, sizeof(word))) < 0)
		return roam_fail(r->err, rc, "writing thread %d's new TID where the C library keeps it", r->tids[i]);
	return 0;
}

static int thread_state(struct restore *r, size_t i)
{
	const Roamimg__Thread *t = r->ld.threads->threads[i];
	uint64_t a;
	long ret;
	int rc;

	if ((rc = tsys(r, i, &ret, "setting the robust futex list", SYS_set_robust_list,
		       t->has_robust_list ? (long)t->robust_list : 0, t->has_robust_len ? (long)t->robust_len : 24, 0, 0)) < 0)
		return rc;
	if ((rc = tsys(r, i, &ret, "setting the clear-child-tid address", SYS_set_tid_address,
		       (long)t->clear_child_tid, 0, 0, 0)) < 0 ||
	    (rc = renew_cached_tid(r, i)) < 0)
		return rc;
	if (t->rseq && (rc = tsys(r, i, &ret, "registering the rseq area", SYS_rseq, (long)t->rseq->ptr,
				  t->rseq->len, 0, t->rseq->sig)) < 0)
		return rc;
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss = { 0, SS_DISABLE, 0, 0 };
	if (t->altstack) {
		ss.sp = t->altstack->sp;
		ss.flags = (int32_t)t->altstack->flags;
		ss.size = t->altstack->size;
	}
	if ((rc = tramp_put(r, 0, &ss, sizeof(ss), &a)) < 0 ||
	    (rc = tsys(r, i, &ret, "setting the alternate signal stack", SYS_sigaltstack, (long)a, 0, 0, 0)) < 0)
		return rc;
	if (t->comm) {
		char name[16] = "";
		strncpy(name, t->comm, sizeof(name) - 1);
		if ((rc = tramp_put(r, 0, name, sizeof(name), &a)) < 0 ||
		    (rc = tsys(r, i, &ret, "naming the thread", SYS_prctl, PR_SET_NAME, (long)a, 0, 0)) < 0)
			return rc;
	}
	if (t->has_xstate && (rc = arch_set_xstate(r->tids[i], t->xstate.data, t->xstate.len)) < 0)
		return roam_fail(r->err, rc, "setting the XSAVE area of thread %d", r->tids[i]);
	return queue_signals(r, i, t->pending, t->n_pending, 0);
}

/* The image's credentials, in every thread (raw setres*id and capset change
 * the calling thread only). Root sets whatever the image says; another
 * caller, already checked to hold at least the image's capabilities, only
 * drops what the image lacks. The bounding set shrinks first (that needs
 * CAP_SETPCAP), KEEPCAPS carries the permitted set across the uid change,
 * then capset gives the exact sets. */
static int thread_creds(struct restore *r, size_t i)
{
	const Roamimg__Creds *c = r->ld.process->creds;
	int root = geteuid() == 0;
	uint64_t a;
	long ret;
	int rc;

	if (root) {
		for (int cap = 0; cap < 64; cap++)
			if (!(c->cap_bnd & (1ull << cap)))
				remote_syscall(&r->trem[i], &ret, SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0, 0);
		if ((rc = tsys(r, i, &ret, "keeping capabilities", SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0)) < 0)
			return rc;
		if ((rc = tramp_put(r, 1024, c->groups, c->n_groups * sizeof(uint32_t), &a)) < 0 ||
		    (rc = tsys(r, i, &ret, "setting the groups", SYS_setgroups, (long)c->n_groups, (long)a, 0, 0)) < 0 ||
		    (rc = tsys(r, i, &ret, "setting the gids", SYS_setresgid, c->gid, c->egid, c->sgid, 0)) < 0 ||
		    (rc = tsys(r, i, &ret, "setting the uids", SYS_setresuid, c->uid, c->euid, c->suid, 0)) < 0)
			return rc;
	}
	struct { uint32_t version; int32_t pid; uint32_t data[6]; } cap = {
		0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0,
		{ (uint32_t)c->cap_eff, (uint32_t)c->cap_prm, (uint32_t)c->cap_inh,
		  (uint32_t)(c->cap_eff >> 32), (uint32_t)(c->cap_prm >> 32), (uint32_t)(c->cap_inh >> 32) },
	};
	if ((rc = tramp_put(r, 2048, &cap, sizeof(cap), &a)) < 0 ||
	    (rc = tsys(r, i, &ret, "setting the capabilities", SYS_capset, (long)a, (long)a + 8, 0, 0)) < 0)
		return rc;
	if (root && (rc = tsys(r, i, &ret, "resetting KEEPCAPS", SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0)) < 0)
		return rc;
	for (int k = 0; k < 64; k++)
		if (c->cap_amb & (1ull << k))
			if ((rc = tsys(r, i, &ret, "raising an ambient capability", SYS_prctl, PR_CAP_AMBIENT,
				       PR_CAP_AMBIENT_RAISE, k, 0)) < 0)
				return rc;
	return 0;
}

int restore_finish(struct restore *r)
{
	const Roamimg__Threads *th = r->ld.threads;
	size_t n = th->n_threads;
	int may_set_tid = r->stats.pid_kept, rc;
	long ret;

	if ((rc = restore_mm_finish(r)) < 0)
		return rc;
	if (sigtrap_in_use(r))
		r->rem.trap_after = 0;
	if ((rc = restore_sigactions(r)) < 0)
		return rc;
	r->tids = calloc(n, sizeof(*r->tids));
	r->trem = calloc(n, sizeof(*r->trem));
	if (!r->tids || !r->trem)
		return -ENOMEM;
	r->tids[0] = r->pid;
	r->trem[0] = r->rem;
	for (size_t i = 1; i < n; i++)
		if ((rc = create_thread(r, i, &may_set_tid)) < 0)
			return rc;
	r->trem[0] = r->rem;
	/* A tree's processes are all forked: what they shared goes. */
	if (r->tree_base && (rc = rsys(r, &ret, "closing what the tree shared", SYS_close_range, r->tree_base,
				       (long)~0u, 0, 0, 0, 0)) < 0)
		return rc;
	if ((rc = restore_task_files(r)) < 0 || (rc = restore_file_locks(r)) < 0 ||
	    (rc = restore_posix_timers(r)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = thread_state(r, i)) < 0)
			return rc;
	if ((rc = queue_signals(r, 0, r->ld.process->shared_pending, r->ld.process->n_shared_pending, 1)) < 0)
		return rc;
	for (size_t i = 0; i < n && !r->creds_ours; i++)
		if ((rc = thread_creds(r, i)) < 0)
			return rc;
	/* Changing uids clears "dumpable": its owner must be able to trace it. */
	if (!r->creds_ours &&
	    (r->ld.process->creds->uid != 0 || r->ld.process->creds->euid != 0 || r->ld.process->creds->suid != 0) &&
	    (rc = rsys(r, &ret, "making the process dumpable", SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0, 0)) < 0)
		return rc;
	/* A tree's other processes have their parents back: the signal they
	 * asked for at its death too (after the credentials, whose change
	 * clears it). */
	const Roamimg__Process *p = r->ld.process;
	if (r->tree_root && p->has_pdeath_signal && p->pdeath_signal &&
	    (rc = rsys(r, &ret, "setting the parent-death signal", SYS_prctl, PR_SET_PDEATHSIG, (long)p->pdeath_signal,
		       0, 0, 0, 0)) < 0)
		return rc;
	/* The breakpoint goes with it: this call stops at its syscall exit. */
	r->rem.trap_after = 0;
	if ((rc = rsys(r, &ret, "removing the trampoline", SYS_munmap, (long)r->tramp, TRAMP_SIZE, 0, 0, 0, 0)) < 0)
		return rc;

	/* Registers and masks, then let every thread go. The registers carry
	 * the syscall restart already (see arch_apply_restart). */
	for (size_t i = 0; i < n; i++) {
		const Roamimg__Thread *t = th->threads[i];
		arch_regs_t regs;
		arch_regs_from_image(t->regs, &regs);
		arch_regs_set_syscall_nr(&regs, -1);
		if ((rc = arch_set_regs(r->tids[i], &regs)) < 0)
			return roam_fail(r->err, rc, "setting the registers of thread %d", r->tids[i]);
		if ((rc = pt_set_sigmask(r->tids[i], t->sigmask)) < 0)
			return roam_fail(r->err, rc, "setting the signal mask of thread %d", r->tids[i]);
	}
	r->stats.threads = (uint32_t)n;
	return 0;
}

int restore_let_go(struct restore *r)
{
	size_t n = r->ld.threads->n_threads;
	int rc;

	/* The threads were born on our one CPU (see build in restore.c): our
	 * mask from before, whether or not we still hold that CPU now. */
	for (size_t i = 0; CPU_COUNT(&r->hold.allowed) > 0 && i < n; i++)
		if (sched_setaffinity(r->tids[i], sizeof(r->hold.allowed), &r->hold.allowed) < 0 && errno != ESRCH)
			return roam_fail(r->err, -errno, "giving thread %d its CPUs back", r->tids[i]);
	cpu_spread_end(&r->hold);

	for (size_t i = 0; i < n; i++) {
		rc = pt_detach(r->tids[i]);
		/* Once one thread runs, the process may end before the others are
		 * let go: they are released all the same. */
		if (rc == -ESRCH && i > 0)
			continue;
		if (rc < 0)
			return roam_fail(r->err, rc, "releasing thread %d", r->tids[i]);
	}
	r->released = 1;
	r->stats.released_ns = mono_ns();
	return 0;
}
