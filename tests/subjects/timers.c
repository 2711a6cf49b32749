/*
 * timers: POSIX timers (timer_create) survive a checkpoint/restore, under
 * the ids the program holds.
 *
 *   A  CLOCK_MONOTONIC, SIGEV_SIGNAL (SIGUSR1, value 7), every 20 ms: its
 *      handler sees SI_TIMER, its timer id and value, and keeps counting
 *   B  SIGEV_NONE, one-shot 1000 s ahead: the time left never grows
 *   C  SIGEV_THREAD_ID to a waiting thread (SIGRTMIN+3, blocked everywhere),
 *      every 30 ms: that thread alone receives it, by sigwaitinfo
 *   D  glibc's SIGEV_THREAD (a callback on glibc's helper thread), every
 *      25 ms
 *   a timer made and deleted between B and C: the ids have a hole
 * Every timer_t still names its timer (timer_gettime), with its interval;
 * after the stop every periodic timer fires again within 2 s.
 */
#include "subject.h"

#include <pthread.h>
#include <signal.h>

static timer_t ta, tb, tc, td;
static volatile int a_hits, a_bad, c_hits, d_hits;
static volatile int a_id = -1;
static int c_id = -1;
static int64_t b_left = INT64_MAX;
static pthread_t waiter;
static volatile int stop_waiter;
static volatile pid_t waiter_tid;

static void on_a(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 7 || (a_id >= 0 && si->si_timerid != a_id))
		a_bad++;
	a_id = si->si_timerid;
	a_hits++;
}

static void on_d(union sigval v)
{
	if (v.sival_int == 9)
		d_hits++;
}

static void *wait_c(void *arg)
{
	sigset_t set;
	siginfo_t si;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	waiter_tid = subj_gettid();
	while (!stop_waiter) {
		struct timespec ts = { 0, 100000000 };
		if (sigtimedwait(&set, &si, &ts) < 0)
			continue;
		SUBJ_CHECK(si.si_code == SI_TIMER, "timer C's signal has code %d", si.si_code);
		SUBJ_CHECK(c_id < 0 || si.si_timerid == c_id, "timer C's signal names timer %d, was %d", si.si_timerid,
			   c_id);
		c_id = si.si_timerid;
		c_hits++;
	}
	return NULL;
}

static void expect_interval(timer_t t, long ns, const char *what)
{
	struct itimerspec its;

	SUBJ_CHECK(timer_gettime(t, &its) == 0, "timer_gettime %s: %s (its id changed?)", what, strerror(errno));
	SUBJ_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == ns, "%s: interval %ld.%09ld", what,
		   (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
}

static void verify(void)
{
	struct itimerspec its;

	SUBJ_CHECK(!a_bad, "timer A's signal came with the wrong code, value or id");
	expect_interval(ta, 20000000, "A");
	expect_interval(tc, 30000000, "C");
	expect_interval(td, 25000000, "D");
	SUBJ_CHECK(timer_gettime(tb, &its) == 0, "timer_gettime B: %s", strerror(errno));
	int64_t left = (int64_t)its.it_value.tv_sec * 1000000000 + its.it_value.tv_nsec;
	SUBJ_CHECK(left > 0 && left <= b_left, "timer B: %lld ns left, was %lld", (long long)left, (long long)b_left);
	b_left = left;
}

static void sabotage(void)
{
	struct itimerspec its = { .it_interval = { 0, 21000000 }, .it_value = { 0, 21000000 } };

	SUBJ_SYS(timer_settime(ta, 0, &its, NULL));
}

/* Every periodic timer fires again within 2 s. */
static void final_check(void)
{
	int a = a_hits, c = c_hits, d = d_hits;

	for (int i = 0; i < 200 && (a_hits == a || c_hits == c || d_hits == d); i++)
		subj_sleep_ms(10);
	SUBJ_CHECK(a_hits > a && c_hits > c && d_hits > d, "timers stopped: A %d -> %d, C %d -> %d, D %d -> %d", a,
		   a_hits, c, c_hits, d, d_hits);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct sigevent sev;
	sigset_t set;
	timer_t hole;

	subj_init(argc, argv, "timers");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_a;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	SUBJ_SYS(sigaction(SIGUSR1, &sa, NULL));
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	SUBJ_SYS(pthread_sigmask(SIG_BLOCK, &set, NULL));
	errno = pthread_create(&waiter, NULL, wait_c, NULL);
	SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_value.sival_int = 7;
	SUBJ_SYS(timer_create(CLOCK_MONOTONIC, &sev, &ta));
	sev.sigev_notify = SIGEV_NONE;
	SUBJ_SYS(timer_create(CLOCK_BOOTTIME, &sev, &tb));
	SUBJ_SYS(timer_create(CLOCK_MONOTONIC, &sev, &hole));
	SUBJ_SYS(timer_delete(hole));
	/* SIGEV_THREAD_ID names a thread by its tid. */
	for (int i = 0; i < 1000 && !waiter_tid; i++)
		subj_sleep_ms(1);
	SUBJ_CHECK(waiter_tid > 0, "the waiting thread never started");
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGRTMIN + 3;
	sev._sigev_un._tid = waiter_tid;
	SUBJ_SYS(timer_create(CLOCK_MONOTONIC, &sev, &tc));
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_d;
	sev.sigev_value.sival_int = 9;
	SUBJ_SYS(timer_create(CLOCK_MONOTONIC, &sev, &td));

	struct itimerspec a = { { 0, 20000000 }, { 0, 20000000 } }, b = { { 0, 0 }, { 1000, 0 } };
	struct itimerspec c = { { 0, 30000000 }, { 0, 30000000 } }, d = { { 0, 25000000 }, { 0, 25000000 } };
	SUBJ_SYS(timer_settime(ta, 0, &a, NULL));
	SUBJ_SYS(timer_settime(tb, 0, &b, NULL));
	SUBJ_SYS(timer_settime(tc, 0, &c, NULL));
	SUBJ_SYS(timer_settime(td, 0, &d, NULL));
	subj_sleep_ms(60);  /* each has fired: its signal's id is known */

	verify();
	subj_ready();
	subj_loop(verify, sabotage);
	final_check();
	stop_waiter = 1;
	pthread_join(waiter, NULL);
	subj_pass();
}
