/*
 * ptrace, as the engine uses it: seize-and-interrupt for checkpoint (the
 * process cannot observe it, unlike SIGSTOP), stop waiting, signal state, and
 * syscalls executed inside a stopped thread ("remote syscalls").
 */
#ifndef ROAM_SYS_PTRACE_H
#define ROAM_SYS_PTRACE_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch.h"

/* PTRACE_SEIZE with options, then PTRACE_INTERRUPT. */
int pt_seize(pid_t tid, unsigned long options);
/* Waits until tid reports a stop; *status gets the raw wait status.
 * -ESRCH if it exited instead. */
int pt_wait_stop(pid_t tid, int *status);
int pt_detach(pid_t tid);
int pt_get_sigmask(pid_t tid, uint64_t *mask);
int pt_set_sigmask(pid_t tid, uint64_t mask);
/* Copies up to max queued signals (without dequeuing them): the thread's own
 * queue, or the process-wide one when shared is set. Returns the count. */
int pt_peek_siginfo(pid_t tid, int shared, siginfo_t *out, int max);

struct pt_rseq {
	uint64_t ptr;
	uint32_t len, flags, sig;
};
/* ptr is 0 when the thread has no rseq area registered. */
int pt_get_rseq(pid_t tid, struct pt_rseq *out);

/*
 * A remote syscall runs in a stopped thread: its registers are pointed at a
 * syscall instruction that exists in the target (ip), the thread is resumed
 * to the syscall-exit stop, and the result is read back. The caller saves
 * and restores the thread's own registers; base supplies the segment
 * registers and flags to start from.
 *
 * remote_syscall returns 0 when the call ran (its own result in *ret, a
 * negative errno on failure) or a negative errno when the thread could not
 * be driven (it died, or stopped for an unexpected signal).
 * Every signal must be blocked in the thread (pt_set_sigmask) beforehand.
 */
struct remote {
	pid_t tid;
	uint64_t ip;
	arch_regs_t base;
	pid_t new_thread;  /* set when the call created a traced thread (clone) */
	int trap_after;    /* a breakpoint follows the syscall instruction at ip:
			    * the thread runs to it (one stop per call) instead
			    * of stopping at syscall entry and exit (two) */
};

int remote_syscall(struct remote *r, long *ret, long nr, long a0, long a1, long a2,
		   long a3, long a4, long a5);

/* The address of a syscall instruction in the process's own vDSO, to run
 * remote syscalls from without changing a byte of its code. -ENOENT when it
 * has no vDSO. procfd is its /proc/PID, memfd its /proc/PID/mem. */
int remote_find_syscall(int procfd, pid_t pid, int memfd, uint64_t *ip);

#endif
