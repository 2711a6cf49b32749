/*
 * Where the engine's threads run: helper threads on CPUs of their own for
 * the short parallel phases of a checkpoint or restore (copying pages), and
 * the tracer on the CPU of the thread it drives by remote syscalls
 * (cpu_spread_follow).
 *
 * A scheduler may leave a new thread on its creator's CPU for a while, so
 * that the two take turns instead of running side by side. This VM's does
 * it at times (it packs runnable threads onto few vCPUs): a restore's page
 * phase then took 16 to 20 ms instead of 12, with the helper thread on the
 * reader's CPU from start to end. So for the length of a phase the caller
 * is held on the CPU it runs on, and each helper starts held on another of
 * the CPUs the caller may use; the caller gets its own mask back at the end.
 */
#ifndef ROAM_SYS_CPUS_H
#define ROAM_SYS_CPUS_H

#include <pthread.h>
#include <sched.h>

struct cpu_spread {
	cpu_set_t allowed;      /* the caller's mask before the phase */
	int held;               /* the caller is held on its CPU */
	int mine;               /* the CPU it is held on */
	int next;               /* where the next helper's CPU is looked for */
};

/* The CPUs this thread may run on (at least 1). */
int cpu_allowed(void);

/* Begins a phase of at most max threads, the caller included; returns how
 * many to use: no more than the CPUs the caller may run on. */
int cpu_spread_begin(struct cpu_spread *s, int max);

/* Thread attributes for the next helper: held on a CPU no other thread of
 * the phase has, when one is left. at must be initialised. */
void cpu_spread_attr(struct cpu_spread *s, pthread_attr_t *at);

/* Holds the caller on cpu, if it may run there: on the CPU a stopped
 * thread it is about to drive by ptrace last ran on, each resumption and
 * each stop stays on one CPU (across two of this VM's, a remote syscall
 * costs about 100 us instead of 12). The first call begins the phase. */
void cpu_spread_follow(struct cpu_spread *s, int cpu);

/* The CPUs the caller could run on before the phase (1 when it holds
 * nothing): how many threads may share the work. */
int cpu_spread_width(const struct cpu_spread *s);

/* Thread attributes for a thread that may run anywhere the caller could
 * before the phase (a thread it starts would inherit its one CPU). */
void cpu_spread_attr_any(const struct cpu_spread *s, pthread_attr_t *at);

/* Ends the phase: the caller may run on its old CPUs again. */
void cpu_spread_end(struct cpu_spread *s);

#endif
