/*
 * signals: signal state survives a checkpoint/restore.
 *
 *   dispositions: the kernel's view (rt_sigaction: handler, flags including
 *     SA_SIGINFO/SA_RESTART/SA_ONSTACK/SA_NODEFER/SA_RESETHAND and
 *     SA_RESTORER, the restorer, the mask) of every signal is unchanged
 *   per-thread blocked masks (each thread blocks a signal of its own)
 *   pending signals, both shared (kill, sigqueue twice with values) and
 *     per-thread (tgkill), checked in /proc/thread-self/status; once the
 *     subject is stopped it unblocks them: each is delivered exactly once,
 *     to the right thread, with its siginfo (code, sender pid, value), on the
 *     alternate stack when SA_ONSTACK asks for it, queued values in order
 *   sigaltstack of every thread
 *   with -t N (N > 0), a SIGTRAP handler (the engine drives threads with
 *     breakpoints, whose SIGTRAP must not reset it) still runs when SIGTRAP
 *     is raised; without, SIGTRAP keeps its default, which lets checkpoint
 *     use its breakpoint, and the masks above must still come back
 *   ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF: same intervals, and they
 *     still fire after the restore; the SIGPROF handler runs 3 ms on the
 *     alternate stack, so checkpoints also land inside a signal handler
 *
 * -t N adds worker threads (at most 16).
 */
#include "subject.h"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#define ALTSTACK_LEN (64 * 1024)
#define RT_QUEUED (SIGRTMIN + 1)
#define RT_THREAD(i) (SIGRTMIN + 2 + (i))	/* blocked by thread i only */

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksigaction saved[65];
static volatile int stop_threads;
static volatile int armed;	/* the shared signals have been sent */
static int nready;		/* workers set up */
/* REAL, VIRTUAL, PROF; a short REAL period, so that any freeze spans an expiry. */
static int itimer_ns[3] = { 2000000, 20000000, 20000000 };
static volatile long ticks[3];	/* SIGALRM, SIGVTALRM, SIGPROF */

/* What the handlers saw, per thread. */
struct seen {
	int usr1, usr2, rt;
	int usr1_code, usr2_code, rt_code[4];
	pid_t usr1_pid, usr2_pid, usr2_tid;
	int usr1_onstack, rt_vals[4];
	char *alt;	/* this thread's alternate stack */
};
static __thread struct seen seen;

static int on_altstack(const void *p)
{
	return seen.alt && (const char *)p >= seen.alt && (const char *)p < seen.alt + ALTSTACK_LEN;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	int here;

	seen.usr1++;
	seen.usr1_code = si->si_code;
	seen.usr1_pid = si->si_pid;
	seen.usr1_onstack = on_altstack(&here);
}

static void on_usr2(int sig)
{
	seen.usr2++;
	seen.usr2_tid = subj_gettid();
}

static void on_usr2_info(int sig, siginfo_t *si, void *uc)
{
	seen.usr2++;
	seen.usr2_code = si->si_code;
	seen.usr2_pid = si->si_pid;
	seen.usr2_tid = subj_gettid();
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	if (seen.rt < 4) {
		seen.rt_vals[seen.rt] = si->si_value.sival_int;
		seen.rt_code[seen.rt] = si->si_code;
	}
	seen.rt++;
}

static volatile int prof_offstack;	/* SIGPROF handler found off its altstack */

/*
 * SIGPROF (SA_ONSTACK) lingers 3 ms in its handler, on the alternate stack,
 * so that some checkpoints land inside a handler and the restored thread
 * must finish it and return through the restorer (rt_sigreturn).
 */
static void on_timer(int sig)
{
	int i = sig == SIGALRM ? 0 : sig == SIGVTALRM ? 1 : 2, here;
	struct timespec t0, t;

	__atomic_fetch_add(&ticks[i], 1, __ATOMIC_RELAXED);
	if (sig != SIGPROF)
		return;
	if (seen.alt && !on_altstack(&here))
		prof_offstack = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 3000000);
}

static void on_term(int sig)
{
}

static volatile int traps;

static void on_trap(int sig)
{
	(void)sig;
	traps++;
}

static void install(int sig, void *fn, int flags, int masked)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (masked)
		sigaddset(&sa.sa_mask, masked);
	sa.sa_flags = flags;
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = fn;
	else
		sa.sa_handler = fn;
	if (sigaction(sig, &sa, NULL) < 0)
		subj_fail("sigaction(%d): %s", sig, strerror(errno));
}

static void kernel_sigaction(int sig, struct ksigaction *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, sig, NULL, k, 8) < 0)
		subj_fail("rt_sigaction(%d): %s", sig, strerror(errno));
}

static void check_dispositions(void)
{
	struct ksigaction k;
	int sig;

	for (sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		kernel_sigaction(sig, &k);
		if (k.handler != saved[sig].handler || k.flags != saved[sig].flags ||
		    k.restorer != saved[sig].restorer || k.mask != saved[sig].mask)
			subj_fail("signal %d: handler %p flags %#lx restorer %p mask %#llx, was %p %#lx %p %#llx",
				  sig, k.handler, k.flags, k.restorer, (unsigned long long)k.mask,
				  saved[sig].handler, saved[sig].flags, saved[sig].restorer,
				  (unsigned long long)saved[sig].mask);
	}
}

static uint64_t bit(int sig)
{
	return 1ULL << (sig - 1);
}

/* SigPnd, ShdPnd and SigBlk of the calling thread, from /proc. */
static void proc_sigs(uint64_t *pnd, uint64_t *shd, uint64_t *blk)
{
	char buf[4096], *p;
	ssize_t n, got = 0;
	int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		subj_fail("open /proc/thread-self/status: %s", strerror(errno));
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	p = strstr(buf, "SigPnd:");
	SUBJ_CHECK(p && sscanf(p, "SigPnd: %llx", (unsigned long long *)pnd) == 1, "no SigPnd");
	p = strstr(buf, "ShdPnd:");
	SUBJ_CHECK(p && sscanf(p, "ShdPnd: %llx", (unsigned long long *)shd) == 1, "no ShdPnd");
	p = strstr(buf, "SigBlk:");
	SUBJ_CHECK(p && sscanf(p, "SigBlk: %llx", (unsigned long long *)blk) == 1, "no SigBlk");
}

struct thread {
	pthread_t th;
	int idx;	/* -1: main */
	char name[16];
	uint64_t blocked;
	stack_t alt;
};

static uint64_t common_blocked(void)
{
	return bit(SIGUSR1) | bit(SIGUSR2) | bit(RT_QUEUED);
}

static void check_thread(struct thread *t)
{
	uint64_t pnd, shd, blk, want_shd = bit(SIGUSR1) | bit(RT_QUEUED);
	sigset_t cur;
	stack_t ss;
	int sig;

	proc_sigs(&pnd, &shd, &blk);
	SUBJ_CHECK(blk == t->blocked, "%s: blocked %#llx, want %#llx", t->name,
		   (unsigned long long)blk, (unsigned long long)t->blocked);
	SUBJ_CHECK((pnd & t->blocked) == bit(SIGUSR2), "%s: own pending %#llx, want %#llx", t->name,
		   (unsigned long long)pnd, (unsigned long long)bit(SIGUSR2));
	SUBJ_CHECK((shd & t->blocked) == want_shd, "%s: shared pending %#llx, want %#llx", t->name,
		   (unsigned long long)shd, (unsigned long long)want_shd);
	SUBJ_SYS(pthread_sigmask(SIG_BLOCK, NULL, &cur) ? -1 : 0);
	for (sig = 1; sig <= 64; sig++)
		SUBJ_CHECK(!!sigismember(&cur, sig) == !!(t->blocked & bit(sig)),
			   "%s: sigprocmask disagrees on signal %d", t->name, sig);
	SUBJ_SYS(sigaltstack(NULL, &ss));
	SUBJ_CHECK(ss.ss_sp == t->alt.ss_sp && ss.ss_size == t->alt.ss_size && ss.ss_flags == 0,
		   "%s: altstack %p+%zu flags %d, was %p+%zu", t->name, ss.ss_sp, ss.ss_size,
		   ss.ss_flags, t->alt.ss_sp, t->alt.ss_size);
	SUBJ_CHECK(seen.usr1 == 0 && seen.usr2 == 0 && seen.rt == 0,
		   "%s: a blocked signal was delivered early", t->name);
}

static void thread_setup(struct thread *t)
{
	sigset_t set;
	int sig;

	snprintf(t->name, sizeof(t->name), t->idx < 0 ? "main" : "thread %d", t->idx);
	seen.alt = malloc(ALTSTACK_LEN);
	SUBJ_CHECK(seen.alt != NULL, "out of memory");
	t->alt.ss_sp = seen.alt;
	t->alt.ss_size = ALTSTACK_LEN;
	t->alt.ss_flags = 0;
	SUBJ_SYS(sigaltstack(&t->alt, NULL));
	t->blocked = common_blocked() | (t->idx < 0 ? bit(SIGQUIT) : bit(RT_THREAD(t->idx)));
	sigemptyset(&set);
	for (sig = 1; sig <= 64; sig++)
		if (t->blocked & bit(sig))
			sigaddset(&set, sig);
	SUBJ_SYS(pthread_sigmask(SIG_SETMASK, &set, NULL) ? -1 : 0);
	/* A signal pending for this thread alone. */
	SUBJ_SYS(syscall(SYS_tgkill, getpid(), subj_gettid(), SIGUSR2));
}

/* Unblock this thread's own pending SIGUSR2 and check its delivery. */
static void deliver_own(struct thread *t)
{
	sigset_t set;
	pid_t tid = subj_gettid();

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	SUBJ_SYS(pthread_sigmask(SIG_UNBLOCK, &set, NULL) ? -1 : 0);
	SUBJ_CHECK(seen.usr2 == 1, "%s: own SIGUSR2 delivered %d times", t->name, seen.usr2);
	SUBJ_CHECK(seen.usr2_tid == tid, "%s: own SIGUSR2 ran on tid %d", t->name, (int)seen.usr2_tid);
	SUBJ_CHECK(seen.usr2_code == SI_TKILL, "%s: SIGUSR2 si_code %d, want SI_TKILL", t->name,
		   seen.usr2_code);
	SUBJ_CHECK(seen.usr2_pid == subj.pid0, "%s: SIGUSR2 si_pid %d, want %d", t->name,
		   (int)seen.usr2_pid, (int)subj.pid0);
}

static void *worker(void *arg)
{
	struct thread *t = arg;

	thread_setup(t);
	__atomic_fetch_add(&nready, 1, __ATOMIC_RELEASE);
	while (!armed)
		subj_sleep_ms(1);
	while (!stop_threads) {
		check_thread(t);
		subj_sleep_ms(10);
	}
	check_thread(t);
	deliver_own(t);
	return NULL;
}

static struct thread main_t = { .idx = -1 };

static void burn_cpu(int64_t ns)
{
	int64_t end = subj_now_ns(CLOCK_MONOTONIC) + ns;
	volatile unsigned long x = 0;

	while (subj_now_ns(CLOCK_MONOTONIC) < end)
		for (int i = 0; i < 10000; i++)
			x += (unsigned long)i;
}

static void check_itimers(void)
{
	static const int which[3] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };
	struct itimerval it;
	int i;

	for (i = 0; i < 3; i++) {
		long iv;

		SUBJ_SYS(getitimer(which[i], &it));
		iv = it.it_interval.tv_sec * 1000000000L + it.it_interval.tv_usec * 1000L;
		SUBJ_CHECK(iv == itimer_ns[i], "itimer %d interval %ld ns, want %d", which[i], iv,
			   itimer_ns[i]);
		/* CPU-time timers count in ticks and may show a value past the
		 * interval; the real-time one may not. */
		SUBJ_CHECK(which[i] != ITIMER_REAL ||
			   it.it_value.tv_sec * 1000000000L + it.it_value.tv_usec * 1000L <= iv,
			   "itimer %d value %ld.%06ld beyond its interval", which[i],
			   (long)it.it_value.tv_sec, (long)it.it_value.tv_usec);
	}
}

static void verify(void)
{
	SUBJ_CHECK(!prof_offstack, "SIGPROF handler (SA_ONSTACK) ran off the alternate stack");
	check_dispositions();
	check_thread(&main_t);
	check_itimers();
	burn_cpu(2000000);	/* so that ITIMER_VIRTUAL/PROF advance */
}

static void sabotage(void)
{
	install(SIGUSR2, on_usr2, 0, 0);	/* SA_RESTART dropped */
}

int main(int argc, char **argv)
{
	static const int which[3] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };
	struct thread *th;
	union sigval v;
	struct itimerval it;
	long before[3];
	int64_t deadline;
	sigset_t set;
	int i, sig;

	subj_init(argc, argv, "signals");
	SUBJ_CHECK(subj.threads <= 16, "at most 16 threads");
	install(SIGUSR1, on_usr1, SA_SIGINFO | SA_RESTART | SA_ONSTACK, SIGUSR2);
	install(SIGUSR2, on_usr2_info, SA_SIGINFO | SA_RESTART, 0);
	install(RT_QUEUED, on_rt, SA_SIGINFO | SA_ONSTACK, SIGHUP);
	install(SIGALRM, on_timer, SA_RESTART, 0);
	install(SIGVTALRM, on_timer, SA_RESTART, 0);
	install(SIGPROF, on_timer, SA_RESTART | SA_ONSTACK, 0);
	install(SIGTERM, on_term, SA_RESETHAND | SA_NODEFER, SIGINT);
	if (subj.threads > 0)
		install(SIGTRAP, on_trap, SA_RESTART, 0);
	install(SIGHUP, SIG_IGN, 0, 0);
	install(SIGPIPE, SIG_IGN, 0, 0);
	/* Block the shared ones before any thread exists, so every thread
	 * inherits the block and they stay pending. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, RT_QUEUED);
	SUBJ_SYS(pthread_sigmask(SIG_BLOCK, &set, NULL) ? -1 : 0);
	th = calloc((size_t)subj.threads + 1, sizeof(*th));
	SUBJ_CHECK(th != NULL, "out of memory");
	for (i = 0; i < subj.threads; i++) {
		th[i].idx = i;
		errno = pthread_create(&th[i].th, NULL, worker, &th[i]);
		SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
	}
	while (__atomic_load_n(&nready, __ATOMIC_ACQUIRE) < subj.threads)
		subj_sleep_ms(1);
	thread_setup(&main_t);
	SUBJ_SYS(kill(getpid(), SIGUSR1));
	v.sival_int = 100;
	SUBJ_SYS(sigqueue(getpid(), RT_QUEUED, v));
	v.sival_int = 101;
	SUBJ_SYS(sigqueue(getpid(), RT_QUEUED, v));
	for (i = 0; i < 3; i++) {
		it.it_interval.tv_sec = 0;
		it.it_interval.tv_usec = itimer_ns[i] / 1000;
		it.it_value = it.it_interval;
		SUBJ_SYS(setitimer(which[i], &it, NULL));
	}
	armed = 1;
	/* Snapshot the dispositions only now: glibc installs its own internal
	 * handlers (SIGCANCEL) when the first thread starts. */
	for (sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			kernel_sigaction(sig, &saved[sig]);
	verify();
	subj_ready();
	subj_loop(verify, sabotage);

	stop_threads = 1;
	for (i = 0; i < subj.threads; i++)
		pthread_join(th[i].th, NULL);
	check_dispositions();
	check_thread(&main_t);
	deliver_own(&main_t);

	/* The shared ones now come to main, the only thread left. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, RT_QUEUED);
	SUBJ_SYS(pthread_sigmask(SIG_UNBLOCK, &set, NULL) ? -1 : 0);
	SUBJ_CHECK(seen.usr1 == 1, "SIGUSR1 (kill) delivered %d times", seen.usr1);
	SUBJ_CHECK(seen.usr1_code == SI_USER && seen.usr1_pid == subj.pid0,
		   "SIGUSR1 si_code %d si_pid %d, want SI_USER from %d", seen.usr1_code,
		   (int)seen.usr1_pid, (int)subj.pid0);
	SUBJ_CHECK(seen.usr1_onstack, "SIGUSR1 handler (SA_ONSTACK) not on the alternate stack");
	SUBJ_CHECK(seen.rt == 2, "queued real-time signal delivered %d times, want 2", seen.rt);
	SUBJ_CHECK(seen.rt_vals[0] == 100 && seen.rt_vals[1] == 101,
		   "queued values %d, %d; want 100, 101", seen.rt_vals[0], seen.rt_vals[1]);
	SUBJ_CHECK(seen.rt_code[0] == SI_QUEUE && seen.rt_code[1] == SI_QUEUE,
		   "queued si_code %d, %d; want SI_QUEUE", seen.rt_code[0], seen.rt_code[1]);

	/* The interval timers still fire. */
	for (i = 0; i < 3; i++)
		before[i] = ticks[i];
	deadline = subj_now_ns(CLOCK_MONOTONIC) + 5000000000LL;
	while (ticks[0] < before[0] + 2 || ticks[1] < before[1] + 2 || ticks[2] < before[2] + 2) {
		if (subj_now_ns(CLOCK_MONOTONIC) > deadline)
			subj_fail("interval timers stopped: REAL +%ld, VIRTUAL +%ld, PROF +%ld in 5 s",
				  ticks[0] - before[0], ticks[1] - before[1], ticks[2] - before[2]);
		burn_cpu(10000000);
	}
	check_itimers();
	if (subj.threads > 0) {
		SUBJ_SYS(raise(SIGTRAP));
		SUBJ_CHECK(traps == 1, "SIGTRAP handler ran %d times, want 1", traps);
	}
	subj_pass();
}
