/*
 * clocks: CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE and
 * CLOCK_BOOTTIME never go backwards across a checkpoint/restore, whether
 * read through the vDSO (clock_gettime) or the raw system call.  Every
 * thread (-t N) keeps its own last readings.
 */
#include "subject.h"

#include <pthread.h>

static const struct {
	clockid_t id;
	const char *name;
} clocks[] = {
	{ CLOCK_MONOTONIC, "CLOCK_MONOTONIC" },
	{ CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW" },
	{ CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE" },
	{ CLOCK_BOOTTIME, "CLOCK_BOOTTIME" },
};
#define NCLOCKS (sizeof(clocks) / sizeof(clocks[0]))

static volatile int stop_threads;

struct last {
	int64_t vdso[NCLOCKS], sys[NCLOCKS];
};

static int64_t raw_now(clockid_t id)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, id, &ts) < 0)
		subj_fail("clock_gettime syscall(%d): %s", (int)id, strerror(errno));
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void check(struct last *l, const char *who)
{
	size_t i;

	for (i = 0; i < NCLOCKS; i++) {
		int64_t v = subj_now_ns(clocks[i].id), s = raw_now(clocks[i].id);

		if (v < l->vdso[i])
			subj_fail("%s: %s went back by %lld ns (vDSO)", who, clocks[i].name,
				  (long long)(l->vdso[i] - v));
		if (s < l->sys[i])
			subj_fail("%s: %s went back by %lld ns (syscall)", who, clocks[i].name,
				  (long long)(l->sys[i] - s));
		l->vdso[i] = v;
		l->sys[i] = s;
	}
}

static void *worker(void *arg)
{
	struct last l;
	char who[32];

	memset(&l, 0, sizeof(l));
	snprintf(who, sizeof(who), "thread %d", (int)(intptr_t)arg);
	while (!stop_threads) {
		check(&l, who);
		subj_sleep_ms(1);
	}
	check(&l, who);
	return NULL;
}

static struct last main_last;

static void verify(void)
{
	check(&main_last, "main");
}

static void sabotage(void)
{
	main_last.vdso[0] += 1000000000000LL;	/* a reading 1000 s in the future */
}

int main(int argc, char **argv)
{
	subj_init(argc, argv, "clocks");
	subj_run_threaded(worker, verify, sabotage, &stop_threads);
	subj_pass();
}
