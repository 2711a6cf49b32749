/*
 * Thread state, and the state only the process itself can read.
 *
 * Registers, the XSAVE area, blocked masks, queued signals, robust lists and
 * rseq registrations are read from outside with ptrace. Signal handlers,
 * alternate signal stacks, interval timers, the clear-child-tid address and
 * the exact brk have no /proc view: those are read by remote syscalls run in
 * the frozen threads (sys/ptrace.h), with every signal blocked meanwhile and
 * a scratch page mapped in the target for the results.
 *
 * The scratch page also holds a trampoline (syscall, breakpoint), so that
 * each call costs one stop instead of two (syscall entry and exit), which
 * shortens the freeze by about 1 ms. The breakpoint's SIGTRAP is forced
 * through by the kernel, which resets a blocked or ignored handler to
 * SIG_DFL and unblocks SIGTRAP in the thread's mask (put back with the
 * rest). So the trampoline is used only while that changes nothing: SIGTRAP
 * neither caught nor ignored, and none pending (it would be taken for the
 * breakpoint). Otherwise the calls run from the vDSO's syscall instruction.
 */
#include "ckpt/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "image/load.h"
#include "sys/mem.h"

#define MAX_PENDING 4096

Roamimg__SigInfo **ckpt_pack_siginfo(struct ckpt *c, const siginfo_t *si, int n)
{
	Roamimg__SigInfo **v = arena_alloc(&c->arena, (size_t)(n ? n : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (int i = 0; i < n; i++) {
		v[i] = ARENA_NEW(c, Roamimg__SigInfo, roamimg__sig_info__init);
		if (!v[i])
			return NULL;
		v[i]->signo = (uint32_t)si[i].si_signo;
		v[i]->code = si[i].si_code;
		v[i]->raw.data = arena_memdup(&c->arena, &si[i], sizeof(si[i]));
		v[i]->raw.len = sizeof(si[i]);
	}
	return v;
}

/* A thread resuming an interrupted sleep through restart_syscall (after job
 * control, or a --leave-running checkpoint) has no restart state that could
 * travel: the image re-issues the original call instead, with the arguments
 * still in its registers, so the sleep lasts up to its full length again,
 * never shorter. Its number is told from the call site. */
static int find_restarted_call(struct ckpt *c, struct ckpt_thread *t, arch_regs_t *r, uint64_t site, long *out)
{
	uint8_t code[32];
	uint64_t ret = 0;
	long nr = -1;

	if (mem_read(c->pid, c->memfd, site - sizeof(code), code, sizeof(code)) == 0) {
		nr = arch_syscall_at(code, sizeof(code));
		/* Through libc's syscall(): the number was the caller's argument.
		 * The wrapper is a leaf, so its return address is at the stack top. */
		if (!arch_restartable_syscall(nr) && arch_is_syscall_wrapper(code, sizeof(code)) &&
		    mem_read(c->pid, c->memfd, arch_regs_sp(r), &ret, sizeof(ret)) == 0 &&
		    mem_read(c->pid, c->memfd, ret - sizeof(code), code, sizeof(code)) == 0)
			nr = arch_syscall_arg_at(code, sizeof(code));
	}
	if (!arch_restartable_syscall(nr))
		return roam_fail(c->err, -ROAM_E_REFUSED,
				 "thread %d is resuming an interrupted call that cannot be told from its code "
				 "at %llx; try again once it has returned", t->tid, (unsigned long long)site);
	*out = nr;
	return 0;
}

/* The thread's registers as the image keeps them: a syscall it was inside
 * is to be issued again (the restart applied), and a restart_syscall it is
 * inside or about to enter becomes the original call. */
static int image_regs(struct ckpt *c, struct ckpt_thread *t, arch_regs_t *r, long *reissued)
{
	uint8_t at_ip[ARCH_SYSCALL_INSN_LEN];
	long nr;
	int rc;

	if (arch_regs_syscall_nr(r) == ARCH_NR_RESTART_SYSCALL) {
		if ((rc = find_restarted_call(c, t, r, arch_regs_ip(r) - ARCH_SYSCALL_INSN_LEN, &nr)) < 0)
			return rc;
		arch_regs_set_syscall_nr(r, nr);
	} else if (mem_read(c->pid, c->memfd, arch_regs_ip(r), at_ip, sizeof(at_ip)) == 0 &&
		   arch_restart_pending(r, at_ip)) {
		/* The kernel's own restart left the call's number for it to
		 * keep; ours left -1, and the call site tells it. */
		nr = arch_regs_syscall_nr(r);
		if (!arch_restartable_syscall(nr) && (rc = find_restarted_call(c, t, r, arch_regs_ip(r), &nr)) < 0)
			return rc;
		arch_set_pending_syscall(r, nr);
		*reissued = nr;
		return 0;
	}
	*reissued = arch_apply_restart(r, 0);
	return 0;
}

static int collect_one(struct ckpt *c, struct ckpt_thread *t, siginfo_t *sibuf)
{
	Roamimg__Thread *img = ARENA_NEW(c, Roamimg__Thread, roamimg__thread__init);
	static _Alignas(64) unsigned char xbuf[ARCH_XSTATE_MAX];
	arch_regs_t r;
	int rc, n;

	if (!img)
		return -ENOMEM;
	t->img = img;
	img->tid = t->tid;
	if ((rc = arch_get_regs(t->tid, &t->regs)) < 0)
		return roam_fail(c->err, rc, "reading the registers of thread %d", t->tid);
	if (!arch_regs_native(&t->regs))
		return roam_fail(c->err, -ROAM_E_REFUSED, "thread %d runs 32-bit code", t->tid);
	r = t->regs;
	long reissued;
	if ((rc = image_regs(c, t, &r, &reissued)) < 0)
		return rc;
	img->restarted_syscall = (int32_t)reissued;
	img->has_restarted_syscall = 1;
	img->regs = arena_alloc(&c->arena, sizeof(*img->regs));
	if (!img->regs)
		return -ENOMEM;
	arch_regs_to_image(&r, img->regs);

	size_t xlen = sizeof(xbuf);
	if ((rc = arch_get_xstate(t->tid, xbuf, &xlen)) < 0)
		return roam_fail(c->err, rc, "reading the XSAVE area of thread %d", t->tid);
	img->has_xstate = 1;
	img->xstate.len = xlen;
	img->xstate.data = arena_memdup(&c->arena, xbuf, xlen);

	if ((rc = pt_get_sigmask(t->tid, &t->sigmask)) < 0)
		return roam_fail(c->err, rc, "reading the signal mask of thread %d", t->tid);
	img->sigmask = t->sigmask;
	if ((n = pt_peek_siginfo(t->tid, 0, sibuf, MAX_PENDING)) < 0)
		return roam_fail(c->err, n, "reading the pending signals of thread %d", t->tid);
	img->n_pending = (size_t)n;
	if (!(img->pending = ckpt_pack_siginfo(c, sibuf, n)))
		return -ENOMEM;

	void *head = NULL;
	size_t len = 0;
	if (syscall(SYS_get_robust_list, t->tid, &head, &len) == 0 && head) {
		img->has_robust_list = img->has_robust_len = 1;
		img->robust_list = (uint64_t)(uintptr_t)head;
		img->robust_len = len;
	}
	struct pt_rseq rs;
	if (pt_get_rseq(t->tid, &rs) == 0 && rs.ptr) {
		img->rseq = ARENA_NEW(c, Roamimg__Rseq, roamimg__rseq__init);
		if (!img->rseq)
			return -ENOMEM;
		img->rseq->ptr = rs.ptr;
		img->rseq->len = rs.len;
		img->rseq->flags = rs.flags;
		img->rseq->sig = rs.sig;
	}
	char name[64], *comm;
	snprintf(name, sizeof(name), "task/%d/comm", t->tid);
	if (proc_read_file(c->procfd, name, &comm, NULL) == 0) {
		comm[strcspn(comm, "\n")] = '\0';
		img->comm = arena_strdup(&c->arena, comm);
		free(comm);
	}
	return 0;
}

int ckpt_collect_threads(struct ckpt *c)
{
	siginfo_t *sibuf = malloc(MAX_PENDING * sizeof(*sibuf));
	int rc = 0;

	if (!sibuf)
		return -ENOMEM;
	for (size_t i = 0; i < c->nthreads && !rc; i++)
		rc = collect_one(c, &c->threads[i], sibuf);
	free(sibuf);
	return rc;
}

static int find_syscall_ip(struct ckpt *c)
{
	int rc = remote_find_syscall(c->procfd, c->pid, c->memfd, &c->syscall_ip);

	if (rc == -ENOENT)
		return roam_fail(c->err, -ROAM_E_REFUSED, "process %d has no vDSO to run syscalls from", c->pid);
	return rc < 0 ? roam_fail(c->err, rc, "finding the vDSO of process %d", c->pid) : 0;
}

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

/* The CPU thread tid last ran on, or -1. */
static int thread_cpu(struct ckpt *c, pid_t tid)
{
	char name[32];
	struct proc_stat st;
	int fd, rc;

	snprintf(name, sizeof(name), "task/%d", tid);
	if ((fd = openat(c->procfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = proc_parse_stat(fd, &st);
	close(fd);
	return rc < 0 ? -1 : st.processor;
}

static int remote_for(struct ckpt *c, struct ckpt_thread *t, struct remote *r)
{
	int rc;

	/* Driven from its own CPU, the thread wakes there and wakes us there:
	 * no wake-up crosses CPUs (sys/cpus.h). Until ckpt_restore_threads. */
	cpu_spread_follow(&c->hold, thread_cpu(c, t->tid));
	memset(r, 0, sizeof(*r));
	r->tid = t->tid;
	r->ip = c->syscall_ip;
	r->base = t->regs;
	if (!t->mask_changed) {
		if ((rc = pt_set_sigmask(t->tid, ~0ull)) < 0)
			return roam_fail(c->err, rc, "blocking signals in thread %d", t->tid);
		t->mask_changed = 1;
	}
	t->regs_changed = 1;
	return 0;
}

/* Runs one remote syscall; a failure of the mechanism or of the call is
 * reported naming it. */
#define RSYS(c, r, ret, what, nr, ...) do { \
	int _rc = remote_syscall((r), (ret), (nr), __VA_ARGS__); \
	if (_rc == 0 && *(ret) < 0 && *(ret) > -4096) _rc = (int)*(ret); \
	if (_rc < 0) return roam_fail((c)->err, _rc, "%s in thread %d", (what), (r)->tid); \
} while (0)

static int collect_sigactions(struct ckpt *c, struct remote *r, uint64_t scratch)
{
	uint64_t wanted = proc_status_hex(c->status, "SigCgt") | proc_status_hex(c->status, "SigIgn");
	Roamimg__Process *p = c->process;
	long ret;

	p->sigactions = arena_alloc(&c->arena, 64 * sizeof(*p->sigactions));
	if (!p->sigactions)
		return -ENOMEM;
	for (int sig = 1; sig <= 64; sig++) {
		struct kernel_sigaction ka;
		if (!(wanted & (1ull << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		RSYS(c, r, &ret, "reading a signal handler", SYS_rt_sigaction, sig, 0, (long)scratch, 8, 0, 0);
		if (mem_read(c->pid, c->memfd, scratch, &ka, sizeof(ka)) < 0)
			return roam_fail(c->err, -EIO, "reading the handler of signal %d", sig);
		Roamimg__SigAction *a = ARENA_NEW(c, Roamimg__SigAction, roamimg__sig_action__init);
		if (!a)
			return -ENOMEM;
		a->signo = (uint32_t)sig;
		a->handler = ka.handler;
		a->flags = ka.flags;
		a->restorer = ka.restorer;
		a->mask = ka.mask;
		p->sigactions[p->n_sigactions++] = a;
	}
	return 0;
}

static int collect_itimers(struct ckpt *c, struct remote *r, uint64_t scratch)
{
	Roamimg__Process *p = c->process;
	long ret;

	p->itimers = arena_alloc(&c->arena, 3 * sizeof(*p->itimers));
	if (!p->itimers)
		return -ENOMEM;
	for (int which = 0; which < 3; which++) {
		uint64_t tv[4];  /* struct itimerval: interval {sec, usec}, value {sec, usec} */
		RSYS(c, r, &ret, "reading an interval timer", SYS_getitimer, which, (long)scratch, 0, 0, 0, 0);
		if (mem_read(c->pid, c->memfd, scratch, tv, sizeof(tv)) < 0)
			return roam_fail(c->err, -EIO, "reading interval timer %d", which);
		if (!tv[0] && !tv[1] && !tv[2] && !tv[3])
			continue;
		Roamimg__Itimer *it = ARENA_NEW(c, Roamimg__Itimer, roamimg__itimer__init);
		if (!it)
			return -ENOMEM;
		it->which = (uint32_t)which;
		it->interval_us = tv[0] * 1000000 + tv[1];
		it->value_us = tv[2] * 1000000 + tv[3];
		p->itimers[p->n_itimers++] = it;
	}
	return 0;
}

/* POSIX timers: their settings from /proc, the time left by timer_gettime
 * in the process. */
static int collect_posix_timers(struct ckpt *c, struct remote *r, uint64_t scratch)
{
	Roamimg__Process *p = c->process;
	struct proc_posix_timer *v;
	size_t n;
	long ret;
	int rc = proc_read_posix_timers(c->procfd, &v, &n);

	if (rc < 0)
		return roam_fail(c->err, rc, "reading the POSIX timers of pid %d", c->pid);
	p->posix_timers = arena_alloc(&c->arena, (n ? n : 1) * sizeof(*p->posix_timers));
	rc = p->posix_timers ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		Roamimg__PosixTimer *t = ARENA_NEW(c, Roamimg__PosixTimer, roamimg__posix_timer__init);
		uint64_t its[4];  /* struct itimerspec: interval {sec, nsec}, value {sec, nsec} */
		if (!t) {
			rc = -ENOMEM;
			break;
		}
		t->id = v[i].id;
		t->signo = v[i].signo;
		t->clockid = v[i].clockid;
		t->notify = v[i].notify;
		t->sigev_value = v[i].sigev_value;
		t->has_tid = (v[i].notify & SIGEV_THREAD_ID) != 0;
		t->tid = v[i].tid;
		rc = remote_syscall(r, &ret, SYS_timer_gettime, t->id, (long)scratch, 0, 0, 0, 0);
		if (rc == 0 && ret < 0)
			rc = (int)ret;
		if (rc < 0 || mem_read(c->pid, c->memfd, scratch, its, sizeof(its)) < 0) {
			rc = roam_fail(c->err, rc < 0 ? rc : -EIO, "reading POSIX timer %d of pid %d", t->id, c->pid);
			break;
		}
		t->interval_ns = its[0] * 1000000000ull + its[1];
		t->value_ns = its[2] * 1000000000ull + its[3];
		p->posix_timers[p->n_posix_timers++] = t;
	}
	free(v);
	return rc;
}

/* Whether the trampoline's breakpoint leaves the process as it was (see the
 * top of this file). Pending signals were collected before. */
static int trampoline_harmless(const struct ckpt *c)
{
	uint64_t trap = 1ull << (SIGTRAP - 1);

	if ((proc_status_hex(c->status, "SigCgt") | proc_status_hex(c->status, "SigIgn")) & trap)
		return 0;
	if (img_siginfo_has(c->process->shared_pending, c->process->n_shared_pending, SIGTRAP))
		return 0;
	for (size_t i = 0; i < c->nthreads; i++)
		if (img_siginfo_has(c->threads[i].img->pending, c->threads[i].img->n_pending, SIGTRAP))
			return 0;
	return 1;
}

/* Points r at the trampoline, when there is one (tramp != 0). */
static void use_trampoline(struct remote *r, uint64_t tramp)
{
	if (tramp) {
		r->ip = tramp;
		r->trap_after = 1;
	}
}

static int collect_thread_remote(struct ckpt *c, struct ckpt_thread *t, uint64_t scratch, uint64_t tramp)
{
	struct remote r;
	long ret;
	int rc;

	if ((rc = remote_for(c, t, &r)) < 0)
		return rc;
	use_trampoline(&r, tramp);
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;
	RSYS(c, &r, &ret, "reading the alternate signal stack", SYS_sigaltstack, 0, (long)scratch, 0, 0, 0, 0);
	if (mem_read(c->pid, c->memfd, scratch, &ss, sizeof(ss)) < 0)
		return roam_fail(c->err, -EIO, "reading the signal stack of thread %d", t->tid);
	if (!(ss.flags & SS_DISABLE)) {
		t->img->altstack = ARENA_NEW(c, Roamimg__SigAltStack, roamimg__sig_alt_stack__init);
		if (!t->img->altstack)
			return -ENOMEM;
		t->img->altstack->sp = ss.sp;
		t->img->altstack->size = ss.size;
		/* SS_ONSTACK is a state, not a setting: only SS_AUTODISARM is kept. */
		t->img->altstack->flags = (uint32_t)ss.flags & ~(uint32_t)(SS_ONSTACK | SS_DISABLE);
	}
	uint64_t tidaddr = 0;
	RSYS(c, &r, &ret, "reading the clear-child-tid address", SYS_prctl, PR_GET_TID_ADDRESS, (long)scratch, 0, 0, 0, 0);
	if (mem_read(c->pid, c->memfd, scratch, &tidaddr, sizeof(tidaddr)) < 0)
		return roam_fail(c->err, -EIO, "reading the tid address of thread %d", t->tid);
	t->img->has_clear_child_tid = 1;
	t->img->clear_child_tid = tidaddr;
	return 0;
}

int ckpt_collect_remote(struct ckpt *c)
{
	struct ckpt_thread *leader = &c->threads[0];
	struct remote r;
	long scratch, ret;
	int rc;

	if ((rc = find_syscall_ip(c)) < 0)
		return rc;
	if ((rc = remote_for(c, leader, &r)) < 0)
		return rc;
	int fast = trampoline_harmless(c);
	uint64_t tramp = 0;
	RSYS(c, &r, &scratch, "mapping a scratch page", SYS_mmap, 0, ARCH_PAGE_SIZE,
	     PROT_READ | PROT_WRITE | (fast ? PROT_EXEC : 0), MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fast) {
		static const unsigned char code[] = ARCH_TRAMPOLINE_CODE;
		uint64_t at = (uint64_t)scratch + ARCH_PAGE_SIZE - 16;  /* the results go at its start */
		if (mem_write(c->pid, c->memfd, at, code, sizeof(code)) == 0)
			tramp = at;
	}
	use_trampoline(&r, tramp);
	if ((rc = collect_sigactions(c, &r, (uint64_t)scratch)) < 0)
		goto unmap;
	if ((rc = collect_itimers(c, &r, (uint64_t)scratch)) < 0 ||
	    (rc = collect_posix_timers(c, &r, (uint64_t)scratch)) < 0)
		goto unmap;
	if ((rc = remote_syscall(&r, &ret, SYS_brk, 0, 0, 0, 0, 0, 0)) < 0) {
		roam_fail(c->err, rc, "reading the brk of pid %d", c->pid);
		goto unmap;
	}
	c->brk = (uint64_t)ret;
	/* The signal it asked for at its parent's death: a tree's other
	 * processes have their parents back, and get it back. */
	int32_t pdeath = 0;
	if (remote_syscall(&r, &ret, SYS_prctl, PR_GET_PDEATHSIG, scratch, 0, 0, 0, 0) == 0 && ret == 0 &&
	    mem_read(c->pid, c->memfd, (uint64_t)scratch, &pdeath, sizeof(pdeath)) == 0 && pdeath > 0 && pdeath <= 64) {
		c->process->has_pdeath_signal = 1;
		c->process->pdeath_signal = (uint32_t)pdeath;
	}
	for (size_t i = 0; i < c->nthreads; i++)
		if ((rc = collect_thread_remote(c, &c->threads[i], (uint64_t)scratch, tramp)) < 0)
			goto unmap;
unmap:
	/* Not from the page being unmapped. */
	r.ip = c->syscall_ip;
	r.trap_after = 0;
	if (remote_syscall(&r, &ret, SYS_munmap, scratch, ARCH_PAGE_SIZE, 0, 0, 0, 0) < 0 && !rc)
		rc = roam_fail(c->err, -EIO, "unmapping the scratch page of pid %d", c->pid);
	/* Put every thread back at once, rather than at release: should roam die
	 * from here on, the kernel detaches the threads as they are, and they
	 * must then go on exactly where they were. */
	int prc = ckpt_restore_threads(c);
	return rc ? rc : prc;
}

int ckpt_remote_leader(struct ckpt *c, struct remote *r)
{
	int rc;

	if (!c->syscall_ip && (rc = find_syscall_ip(c)) < 0)
		return rc;
	return remote_for(c, &c->threads[0], r);
}

int ckpt_write_threads(struct ckpt *c, struct img_writer *w)
{
	Roamimg__Threads th = ROAMIMG__THREADS__INIT;
	Roamimg__Thread **v = arena_alloc(&c->arena, c->nthreads * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->nthreads; i++)
		v[i] = c->threads[i].img;
	th.n_threads = c->nthreads;
	th.threads = v;
	return img_write_msg(w, IMG_REC_THREADS, &th.base);
}
