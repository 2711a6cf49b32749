/*
 * Helper threads on CPUs of their own (see cpus.h).
 */
#include "sys/cpus.h"

#include <string.h>

int cpu_allowed(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

/* Holds the caller on cpu, one of s->allowed. */
static void hold_on(struct cpu_spread *s, int cpu)
{
	cpu_set_t one;

	if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &s->allowed))
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) == 0) {
		s->held = 1;
		s->mine = cpu;
	}
}

int cpu_spread_begin(struct cpu_spread *s, int max)
{
	int n;

	memset(s, 0, sizeof(*s));
	if (sched_getaffinity(0, sizeof(s->allowed), &s->allowed) < 0)
		return 1;
	n = CPU_COUNT(&s->allowed);
	if (n > max)
		n = max;
	s->mine = sched_getcpu();
	if (n >= 2)
		hold_on(s, s->mine);
	return n < 1 ? 1 : n;
}

void cpu_spread_attr(struct cpu_spread *s, pthread_attr_t *at)
{
	cpu_set_t one;

	if (!s->held)
		return;
	while (s->next < CPU_SETSIZE && (s->next == s->mine || !CPU_ISSET(s->next, &s->allowed)))
		s->next++;
	if (s->next == CPU_SETSIZE)
		return;  /* more helpers than CPUs: the scheduler places the rest */
	CPU_ZERO(&one);
	CPU_SET(s->next, &one);
	pthread_attr_setaffinity_np(at, sizeof(one), &one);
	s->next++;
}

void cpu_spread_follow(struct cpu_spread *s, int cpu)
{
	if (!s->held) {
		memset(s, 0, sizeof(*s));
		if (sched_getaffinity(0, sizeof(s->allowed), &s->allowed) < 0)
			return;
	} else if (cpu == s->mine) {
		return;
	}
	hold_on(s, cpu);
}

int cpu_spread_width(const struct cpu_spread *s)
{
	return s->held ? CPU_COUNT(&s->allowed) : 1;
}

void cpu_spread_attr_any(const struct cpu_spread *s, pthread_attr_t *at)
{
	if (s->held)
		pthread_attr_setaffinity_np(at, sizeof(s->allowed), &s->allowed);
}

void cpu_spread_end(struct cpu_spread *s)
{
	if (s->held)
		sched_setaffinity(0, sizeof(s->allowed), &s->allowed);
	s->held = 0;
}
