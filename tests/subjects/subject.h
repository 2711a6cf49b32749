/*
 * subject.h: the shared skeleton of roam's self-checking test subjects
 * (in the manner of CRIU's zdtm).
 *
 * A subject sets up one kind of process state, prints "ready" on stdout,
 * then keeps verifying that state until a stop file appears; it then
 * verifies once more and prints "PASS" (exit 0) or "FAIL: <why>" (exit 1).
 * The harness checkpoints and restores it in between; a subject must pass
 * just as well when nobody touches it.
 *
 * Command line understood by every subject (subj_init):
 *   -t N     run N worker threads besides the main thread (0: single-threaded)
 *   -x       sabotage: corrupt the subject's own state once it is ready, so
 *            that the harness can prove the subject's checks can fail
 *   -s PATH  stop file (default: $ROAM_STOP)
 *   any other argument is left to the subject (subj.argv/subj.argc)
 *
 * The stop file's content is a list of words the harness passes on:
 *   pid-kept   the process runs under the PID it started with, so PID and
 *              TID equality may be asserted
 *
 * Output goes through write(2) so that no stdio buffer sits in memory across
 * a checkpoint; the harness appends stdout and stderr to one log file.
 * Failing is immediate (first broken invariant wins): the message names what
 * broke.  The helpers are static inline because each subject is one file.
 */
#ifndef ROAM_SUBJECT_H
#define ROAM_SUBJECT_H

/* Subjects are built without -D_GNU_SOURCE; include this header first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct subj_ctx {
	const char *name;
	const char *stop;	/* stop file path */
	char dir[PATH_MAX];	/* directory of the stop file: scratch space */
	int threads;		/* -t N */
	int sabotage;		/* -x */
	pid_t pid0;		/* getpid() at start */
	int argc;		/* arguments left over for the subject */
	char **argv;
};

static struct subj_ctx subj;

static inline void subj_write(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static inline void subj_vprint(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	subj_write(buf, (size_t)n);
}

/* A note for the log; not interpreted by the harness. */
static inline __attribute__((format(printf, 1, 2))) void subj_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	subj_vprint(fmt, ap);
	va_end(ap);
}

/* Report the first broken invariant and leave at once (from any thread). */
static inline __attribute__((format(printf, 1, 2), noreturn)) void subj_fail(const char *fmt, ...)
{
	va_list ap;
	char buf[1200];
	int n;

	n = snprintf(buf, sizeof(buf), "FAIL: %s: ", subj.name ? subj.name : "subject");
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(buf);
	if ((size_t)n < sizeof(buf) - 1)
		buf[n++] = '\n';
	subj_write(buf, (size_t)n);
	_exit(1);
}

#define SUBJ_CHECK(cond, ...) do { if (!(cond)) subj_fail(__VA_ARGS__); } while (0)
/* For calls that must succeed: names the call and errno. */
#define SUBJ_SYS(call) do { if ((call) < 0) \
	subj_fail("%s:%d: %s: %s", __FILE__, __LINE__, #call, strerror(errno)); } while (0)

static inline __attribute__((noreturn)) void subj_pass(void)
{
	subj_write("PASS\n", 5);
	exit(0);
}

static inline void subj_usage(void)
{
	subj_log("usage: %s [-t THREADS] [-x] [-s STOPFILE] [args]\n", subj.name);
	_exit(2);
}

/* Parse the common options; leaves the rest in subj.argc/subj.argv. */
static inline void subj_init(int argc, char **argv, const char *name)
{
	int i, k = 0;
	char *slash;

	subj.name = name;
	subj.stop = getenv("ROAM_STOP");
	subj.pid0 = getpid();
	subj.argv = calloc((size_t)argc + 1, sizeof(char *));
	if (!subj.argv)
		subj_fail("out of memory");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			subj.threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-x"))
			subj.sabotage = 1;
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			subj.stop = argv[++i];
		else if (!strcmp(argv[i], "-h"))
			subj_usage();
		else
			subj.argv[k++] = argv[i];
	}
	subj.argc = k;
	if (!subj.stop || !*subj.stop)
		subj_fail("no stop file: set ROAM_STOP or pass -s PATH");
	if (subj.threads < 0 || subj.threads > 64)
		subj_fail("bad thread count %d", subj.threads);
	if (strlen(subj.stop) >= sizeof(subj.dir))
		subj_fail("stop path too long");
	strcpy(subj.dir, subj.stop);
	slash = strrchr(subj.dir, '/');
	if (slash == subj.dir)
		subj.dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(subj.dir, ".");
}

/* Build a path in the scratch directory (beside the stop file). */
static inline void subj_path(char *buf, size_t len, const char *leaf)
{
	if ((size_t)snprintf(buf, len, "%s/%s", subj.dir, leaf) >= len)
		subj_fail("path too long: %s", leaf);
}

static inline void subj_ready(void)
{
	subj_write("ready\n", 6);
}

static inline int subj_stopped(void)
{
	return access(subj.stop, F_OK) == 0;
}

/* Does the stop file carry WORD?  Only meaningful once subj_stopped(). */
static inline int subj_stop_says(const char *word)
{
	char buf[512];
	ssize_t n;
	int fd = open(subj.stop, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, word) != NULL;
}

static inline int subj_pid_kept(void)
{
	return subj_stop_says("pid-kept");
}

static inline int64_t subj_now_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) < 0)
		subj_fail("clock_gettime(%d): %s", (int)clk, strerror(errno));
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Sleep about MS milliseconds, tolerating signal interruptions (subjects
 * with signal handlers or interval timers get EINTR legitimately); the
 * syscalls subject makes its own, strict, calls.
 */
static inline void subj_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * The common main loop: call VERIFY every ~10 ms until the stop file
 * appears; with -x, call SABOTAGE once after the second round (early: the
 * harness stops a sabotaged subject after a fraction of a second).  Then verify
 * once more.  The caller prints PASS after its own final checks.
 */
static inline void subj_loop(void (*verify)(void), void (*sabotage)(void))
{
	unsigned long round = 0;

	while (!subj_stopped()) {
		verify();
		if (subj.sabotage && sabotage && ++round == 2)
			sabotage();
		subj_sleep_ms(10);
	}
	/* On a loaded machine the stop may come before round 5: a sabotaged
	 * run must fail all the same. */
	if (subj.sabotage && sabotage && round < 5)
		sabotage();
	verify();
}

/*
 * A subject's worker threads: subj.threads of them, thread i running
 * worker((void *)(intptr_t)i). subj_join_threads sets the subject's own
 * stop flag, which its workers poll, and joins and frees them.
 */
static inline pthread_t *subj_start_threads(void *(*worker)(void *))
{
	pthread_t *th = calloc((size_t)subj.threads + 1, sizeof(*th));

	SUBJ_CHECK(th != NULL, "out of memory");
	for (int i = 0; i < subj.threads; i++) {
		errno = pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
		SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
	}
	return th;
}

static inline void subj_join_threads(pthread_t *th, volatile int *stop)
{
	*stop = 1;
	for (int i = 0; i < subj.threads; i++)
		pthread_join(th[i], NULL);
	free(th);
}

/* The life of a subject with workers: they start, a first check, ready,
 * the main loop (subj_loop), and they are stopped and joined. */
static inline void subj_run_threaded(void *(*worker)(void *), void (*verify)(void),
				     void (*sabotage)(void), volatile int *stop)
{
	pthread_t *th = subj_start_threads(worker);

	verify();
	subj_ready();
	subj_loop(verify, sabotage);
	subj_join_threads(th, stop);
}

/* A worker that only sleeps until subj_idle_stop: for subjects whose state
 * belongs to the process whatever thread runs (subj_run_threaded(
 * subj_idle_worker, verify, sabotage, &subj_idle_stop)). */
static volatile int subj_idle_stop;
static inline void *subj_idle_worker(void *arg)
{
	(void)arg;
	while (!subj_idle_stop)
		subj_sleep_ms(5);
	return NULL;
}

static inline pid_t subj_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Deterministic pattern: a 64-bit mix of a region seed and a word index. */
static inline uint64_t subj_pattern(uint64_t seed, uint64_t i)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + i + 1;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	return x;
}

static inline void subj_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = subj_pattern(seed, i);
}

/* Index of the first word that differs from the pattern, or -1. */
static inline long subj_check_fill(const void *p, size_t len, uint64_t seed)
{
	const volatile uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != subj_pattern(seed, i))
			return (long)i;
	return -1;
}

#endif
