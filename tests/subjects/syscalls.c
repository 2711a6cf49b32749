/*
 * syscalls: threads caught inside blocking system calls resume them after
 * a restore as if nothing happened: every call returns its normal result
 * (never EINTR: no signal handler is installed) and no sleep ends before the
 * time it asked for (CLOCK_MONOTONIC).
 *
 * Timed calls (each in its own thread with -t N>0, else in turn on the main
 * thread): nanosleep, clock_nanosleep TIMER_ABSTIME, FUTEX_WAIT with a
 * timeout, poll and select timing out on an idle pipe.
 * Woken calls (with -t N>0 only, since they need a waker thread): read(2)
 * on a pipe, FUTEX_WAIT without timeout, poll(-1) on a pipe; a waker thread
 * feeds them every 100 ms with a sequence the sleepers check.
 * Signal waits (with -t N>0): sigsuspend and ppoll, each with a temporary
 * mask that unblocks the one signal (SIGUSR1, SIGUSR2) every thread blocks
 * otherwise; only the final stop sends it (pthread_kill).  They must return
 * EINTR then, once, after their handler ran, and the thread's own mask must
 * be back (the kernel's saved_sigmask: /proc shows the temporary one while
 * they wait).  No other call can see these signals.
 */
#include "subject.h"

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>

#define NAP_NS (150 * 1000000LL)

static volatile int stop_threads;
static int idle_pipe[2];		/* nobody ever writes */
static int read_pipe[2], poll_pipe[2];	/* fed by the waker */
static uint32_t fword;			/* bumped by the waker */
static int sabotage_nap;
static __thread const char *who = "main";	/* for messages */

static void no_eintr(long rc, int err, const char *call)
{
	if (rc < 0 && err == EINTR)
		subj_fail("%s: %s returned EINTR", who, call);
}

static void slept_enough(int64_t t0, int64_t want_ns, const char *call)
{
	int64_t took = subj_now_ns(CLOCK_MONOTONIC) - t0;

	if (sabotage_nap)
		want_ns *= 100;
	if (took < want_ns)
		subj_fail("%s: %s slept %lld ns, asked for %lld", who, call, (long long)took,
			  (long long)want_ns);
}

static void do_nanosleep(void)
{
	struct timespec ts = { 0, NAP_NS };
	int64_t t0 = subj_now_ns(CLOCK_MONOTONIC);
	int rc = nanosleep(&ts, NULL);

	no_eintr(rc, errno, "nanosleep");
	SUBJ_CHECK(rc == 0, "nanosleep: %s", strerror(errno));
	slept_enough(t0, NAP_NS, "nanosleep");
}

static void do_clock_abs(void)
{
	struct timespec ts;
	int64_t target = subj_now_ns(CLOCK_MONOTONIC) + NAP_NS, now;
	int rc;

	ts.tv_sec = target / 1000000000;
	ts.tv_nsec = target % 1000000000;
	rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	no_eintr(rc ? -1 : 0, rc, "clock_nanosleep(TIMER_ABSTIME)");
	SUBJ_CHECK(rc == 0, "clock_nanosleep(TIMER_ABSTIME): %s", strerror(rc));
	now = subj_now_ns(CLOCK_MONOTONIC);
	SUBJ_CHECK(now >= target, "clock_nanosleep(TIMER_ABSTIME) woke %lld ns early",
		   (long long)(target - now));
}

static void do_futex_timed(void)
{
	static uint32_t never;	/* stays 0 */
	struct timespec ts = { 0, NAP_NS };
	int64_t t0 = subj_now_ns(CLOCK_MONOTONIC);
	long rc = syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	int err = errno;

	no_eintr(rc, err, "FUTEX_WAIT (timed)");
	SUBJ_CHECK(rc < 0 && err == ETIMEDOUT, "FUTEX_WAIT (timed) returned %ld (%s)", rc,
		   strerror(err));
	slept_enough(t0, NAP_NS, "FUTEX_WAIT (timed)");
}

static void do_poll_timeout(void)
{
	struct pollfd p = { .fd = idle_pipe[0], .events = POLLIN };
	int64_t t0 = subj_now_ns(CLOCK_MONOTONIC);
	int rc = poll(&p, 1, (int)(NAP_NS / 1000000));

	no_eintr(rc, errno, "poll (timeout)");
	SUBJ_CHECK(rc == 0, "poll (timeout) returned %d (%s)", rc, strerror(errno));
	slept_enough(t0, NAP_NS, "poll (timeout)");
}

static void do_select_timeout(void)
{
	struct timeval tv = { 0, NAP_NS / 1000 };
	fd_set rd;
	int64_t t0 = subj_now_ns(CLOCK_MONOTONIC);
	int rc;

	FD_ZERO(&rd);
	FD_SET(idle_pipe[0], &rd);
	rc = select(idle_pipe[0] + 1, &rd, NULL, NULL, &tv);
	no_eintr(rc, errno, "select (timeout)");
	SUBJ_CHECK(rc == 0, "select (timeout) returned %d (%s)", rc, strerror(errno));
	slept_enough(t0, NAP_NS, "select (timeout)");
}

static void (*const timed[])(void) = {
	do_nanosleep, do_clock_abs, do_futex_timed, do_poll_timeout, do_select_timeout,
};
#define NTIMED (sizeof(timed) / sizeof(timed[0]))

static void *timed_thread(void *arg)
{
	void (*fn)(void) = (void (*)(void))arg;

	who = fn == do_nanosleep ? "nanosleep thread" : fn == do_clock_abs ? "clock_nanosleep thread" :
	      fn == do_futex_timed ? "futex thread" : fn == do_poll_timeout ? "poll thread" :
	      "select thread";
	while (!stop_threads)
		fn();
	return NULL;
}

static void *reader(void *arg)
{
	unsigned char want = 0, c;

	who = "reader thread";
	for (;;) {
		ssize_t n = read(read_pipe[0], &c, 1);

		no_eintr(n, errno, "read (pipe)");
		SUBJ_CHECK(n == 1, "read (pipe) returned %zd (%s)", n, strerror(errno));
		if (c == 0xff)
			return NULL;
		SUBJ_CHECK(c == want, "read (pipe) got byte %u, want %u", c, want);
		want = (unsigned char)((want + 1) % 200);
	}
}

static void *poller(void *arg)
{
	unsigned char c;

	who = "poller thread";
	for (;;) {
		struct pollfd p = { .fd = poll_pipe[0], .events = POLLIN };
		int rc = poll(&p, 1, -1);

		no_eintr(rc, errno, "poll (infinite)");
		SUBJ_CHECK(rc == 1 && (p.revents & POLLIN), "poll (infinite) returned %d revents %#x",
			   rc, p.revents);
		SUBJ_CHECK(read(poll_pipe[0], &c, 1) == 1, "read after poll: %s", strerror(errno));
		if (c == 0xff)
			return NULL;
	}
}

static void *futex_waiter(void *arg)
{
	who = "futex waiter thread";
	for (;;) {
		uint32_t seen = __atomic_load_n(&fword, __ATOMIC_ACQUIRE);
		long rc;

		if (seen == UINT32_MAX)
			return NULL;
		rc = syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
		no_eintr(rc, errno, "FUTEX_WAIT");
		SUBJ_CHECK(rc == 0 || errno == EAGAIN, "FUTEX_WAIT: %s", strerror(errno));
	}
}

static volatile sig_atomic_t usr1_seen, usr2_seen;

static void on_usr(int sig)
{
	if (sig == SIGUSR1)
		usr1_seen++;
	else
		usr2_seen++;
}

static void mask_intact(const char *call)
{
	sigset_t cur;

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	SUBJ_CHECK(sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2),
		   "%s: after %s the thread's own mask lost SIGUSR1/SIGUSR2", who, call);
}

static void *suspender(void *arg)
{
	sigset_t wait_mask;
	int rc;

	who = "sigsuspend thread";
	sigfillset(&wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	rc = sigsuspend(&wait_mask);
	SUBJ_CHECK(rc == -1 && errno == EINTR, "sigsuspend returned %d (%s)", rc, strerror(errno));
	SUBJ_CHECK(stop_threads && usr1_seen == 1, "sigsuspend woke early or without its signal");
	mask_intact("sigsuspend");
	return NULL;
}

static void *ppoller(void *arg)
{
	sigset_t wait_mask;
	struct timespec ts = { 100000, 0 };
	struct pollfd p = { .fd = idle_pipe[0], .events = POLLIN };
	int rc;

	who = "ppoll thread";
	sigfillset(&wait_mask);
	sigdelset(&wait_mask, SIGUSR2);
	rc = ppoll(&p, 1, &ts, &wait_mask);
	SUBJ_CHECK(rc == -1 && errno == EINTR, "ppoll returned %d (%s)", rc, strerror(errno));
	SUBJ_CHECK(stop_threads && usr2_seen == 1, "ppoll woke early or without its signal");
	mask_intact("ppoll");
	return NULL;
}

static void wake_all(unsigned char c, uint32_t f)
{
	SUBJ_CHECK(write(read_pipe[1], &c, 1) == 1, "write: %s", strerror(errno));
	SUBJ_CHECK(write(poll_pipe[1], &c, 1) == 1, "write: %s", strerror(errno));
	__atomic_store_n(&fword, f, __ATOMIC_RELEASE);
	syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *waker(void *arg)
{
	unsigned char seq = 0;
	uint32_t f = 0;

	while (!stop_threads) {
		subj_sleep_ms(100);
		wake_all(seq, ++f);
		seq = (unsigned char)((seq + 1) % 200);
	}
	wake_all(0xff, UINT32_MAX);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[NTIMED + 4], susp_th, ppoll_th;
	struct sigaction sa;
	sigset_t block;
	int nth = 0, i;
	unsigned k = 0;

	subj_init(argc, argv, "syscalls");
	/* Blocked in every thread; only the two signal waiters let them in. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr;
	SUBJ_SYS(sigaction(SIGUSR1, &sa, NULL));
	SUBJ_SYS(sigaction(SIGUSR2, &sa, NULL));
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	SUBJ_SYS(pthread_sigmask(SIG_BLOCK, &block, NULL) ? -1 : 0);
	SUBJ_SYS(pipe2(idle_pipe, O_CLOEXEC));
	SUBJ_SYS(pipe2(read_pipe, O_CLOEXEC));
	SUBJ_SYS(pipe2(poll_pipe, O_CLOEXEC));
	if (subj.threads > 0) {
		void *(*const woken[])(void *) = { reader, poller, futex_waiter, waker };

		for (i = 0; i < (int)NTIMED; i++) {
			errno = pthread_create(&th[nth++], NULL, timed_thread, (void *)timed[i]);
			SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
		}
		for (i = 0; i < 4; i++) {
			errno = pthread_create(&th[nth++], NULL, woken[i], NULL);
			SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
		}
		errno = pthread_create(&susp_th, NULL, suspender, NULL);
		SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
		errno = pthread_create(&ppoll_th, NULL, ppoller, NULL);
		SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
	}
	subj_ready();
	while (!subj_stopped()) {
		if (subj.sabotage && k == 1)
			sabotage_nap = 1;
		if (subj.threads > 0)
			do_nanosleep();
		else
			timed[k % NTIMED]();
		k++;
	}
	stop_threads = 1;
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (subj.threads > 0) {
		SUBJ_CHECK(usr1_seen == 0 && usr2_seen == 0, "a signal arrived before the stop");
		errno = pthread_kill(susp_th, SIGUSR1);
		SUBJ_CHECK(errno == 0, "pthread_kill: %s", strerror(errno));
		errno = pthread_kill(ppoll_th, SIGUSR2);
		SUBJ_CHECK(errno == 0, "pthread_kill: %s", strerror(errno));
		pthread_join(susp_th, NULL);
		pthread_join(ppoll_th, NULL);
	}
	subj_pass();
}
