/*
 * pid: a program that remembers its pid keeps working when the pid could
 * be kept.  The subject saves getpid() and every thread's gettid() at start;
 * it continuously checks that getpid(), the raw system call, /proc/self and
 * the thread group agree with each other; once stopped, if the harness says
 * the pid was kept ("pid-kept" in the stop file), the saved pid and tids
 * must be the current ones.
 */
#include "subject.h"

#include <pthread.h>

static volatile int stop_threads;
static int final_kept;

static void check_consistent(const char *who)
{
	char buf[64];
	ssize_t n;
	pid_t p = getpid();

	SUBJ_CHECK(p == (pid_t)syscall(SYS_getpid), "%s: getpid() %d, syscall %d", who, (int)p,
		   (int)syscall(SYS_getpid));
	n = readlink("/proc/self", buf, sizeof(buf) - 1);
	SUBJ_CHECK(n > 0, "readlink /proc/self: %s", strerror(errno));
	buf[n] = '\0';
	SUBJ_CHECK(atoi(buf) == p, "%s: /proc/self is %s, getpid() %d", who, buf, (int)p);
	n = readlink("/proc/thread-self", buf, sizeof(buf) - 1);
	SUBJ_CHECK(n > 0, "readlink /proc/thread-self: %s", strerror(errno));
	buf[n] = '\0';
	snprintf(buf + 32, 32, "%d/task/%d", (int)p, (int)subj_gettid());
	SUBJ_CHECK(!strcmp(buf, buf + 32), "%s: /proc/thread-self is %s, want %s", who, buf, buf + 32);
}

static void *worker(void *arg)
{
	pid_t tid0 = subj_gettid();
	char who[32];

	snprintf(who, sizeof(who), "thread %d", (int)(intptr_t)arg);
	while (!stop_threads) {
		check_consistent(who);
		subj_sleep_ms(10);
	}
	check_consistent(who);
	if (final_kept)
		SUBJ_CHECK(subj_gettid() == tid0, "%s: tid %d, was %d", who, (int)subj_gettid(),
			   (int)tid0);
	return NULL;
}

static void verify(void)
{
	check_consistent("main");
}

static pid_t saved_pid;

static void sabotage(void)
{
	saved_pid++;
}

int main(int argc, char **argv)
{
	pthread_t *th;

	subj_init(argc, argv, "pid");
	saved_pid = getpid();
	th = subj_start_threads(worker);
	subj_log("pid %d\n", (int)saved_pid);
	subj_ready();
	subj_loop(verify, sabotage);
	final_kept = subj_pid_kept();
	subj_join_threads(th, &stop_threads);
	if (final_kept)
		SUBJ_CHECK(getpid() == saved_pid, "getpid() %d, saved %d, though the pid was kept",
			   (int)getpid(), (int)saved_pid);
	else
		subj_log("pid not kept: %d is now %d\n", (int)saved_pid, (int)getpid());
	SUBJ_CHECK(subj_gettid() == getpid(), "main tid %d, pid %d", (int)subj_gettid(), (int)getpid());
	subj_pass();
}
