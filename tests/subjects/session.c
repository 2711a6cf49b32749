/*
 * session: a process that leads its own session and process group leads
 * them again after a restore, so that a restored job still receives the
 * signals sent to its group.  The subject calls setsid() at start (unless
 * it already leads both, as a job of roam run does) and checks getsid() and
 * getpgrp() against getpid() throughout; the harness sends SIGUSR1 to the
 * process group (kill -- -PID) before stopping it, and the subject must
 * have received it by then.
 */
#include "subject.h"

#include <pthread.h>
#include <signal.h>

static volatile sig_atomic_t usr1;
static volatile pid_t skew;	/* -x: expect a session id off by one */
static volatile int stop_threads;

static void on_usr1(int sig)
{
	usr1++;
}

static void check_leader(const char *who)
{
	pid_t p = getpid() + skew;

	SUBJ_CHECK(getsid(0) == p, "%s: session %d, pid %d: no longer the session leader", who,
		   (int)getsid(0), (int)p);
	SUBJ_CHECK(getpgrp() == p, "%s: process group %d, pid %d: no longer the group leader", who,
		   (int)getpgrp(), (int)p);
}

static void *worker(void *arg)
{
	while (!stop_threads) {
		check_leader("thread");
		subj_sleep_ms(10);
	}
	return NULL;
}

static void verify(void)
{
	check_leader("main");
}

static void sabotage(void)
{
	skew = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	subj_init(argc, argv, "session");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	SUBJ_SYS(sigaction(SIGUSR1, &sa, NULL));
	/* roam run starts every job in a session of its own (as a terminal
	 * would), so under roamd the subject already leads both; the engine
	 * tests start it as a non-leader, and it makes them itself. */
	if (getsid(0) != getpid() || getpgrp() != getpid()) {
		if (setsid() < 0)
			subj_fail("setsid: %s (start me as a non-leader)", strerror(errno));
	}
	subj_run_threaded(worker, verify, sabotage, &stop_threads);
	SUBJ_CHECK(usr1 >= 1, "no SIGUSR1 came through the process group");
	subj_pass();
}
