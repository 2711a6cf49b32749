/*
 * A clock's reading, in nanoseconds or seconds: CLOCK_MONOTONIC for
 * durations, CLOCK_REALTIME for dates, CLOCK_PROCESS_CPUTIME_ID for the
 * CPU time used, and so on.
 */
#ifndef ROAM_SYS_CLOCK_H
#define ROAM_SYS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline double clock_s(clockid_t id)
{
	return (double)clock_ns(id) / 1e9;
}

/* CLOCK_MONOTONIC, for durations and deadlines: ns, and ms (timeouts). */
static inline uint64_t mono_ns(void)
{
	return (uint64_t)clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

#endif
