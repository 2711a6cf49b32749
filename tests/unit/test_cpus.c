/*
 * cpu_spread (src/sys/cpus.c): during a phase the caller is held on the
 * CPU it runs on and each helper starts on another CPU it may use; after
 * the phase the caller's own mask is back. With one usable CPU (taskset)
 * the phase has one thread and nothing is held.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sys/cpus.h"

static cpu_set_t mask_now(void)
{
	cpu_set_t m;

	assert_int_equal(sched_getaffinity(0, sizeof(m), &m), 0);
	return m;
}

static void *where(void *arg)
{
	*(int *)arg = sched_getcpu();
	return NULL;
}

static void test_spread_and_back(void **state)
{
	(void)state;
	cpu_set_t before = mask_now();
	struct cpu_spread s;
	int n = cpu_spread_begin(&s, 8);

	assert_int_equal(n, CPU_COUNT(&before) < 8 ? CPU_COUNT(&before) : 8);
	if (n > 1) {
		cpu_set_t held = mask_now();
		assert_int_equal(CPU_COUNT(&held), 1);
		assert_true(CPU_ISSET(sched_getcpu(), &held));
		/* Every helper on a CPU of its own, none on ours. */
		cpu_set_t seen;
		CPU_ZERO(&seen);
		CPU_SET(sched_getcpu(), &seen);
		for (int t = 1; t < n; t++) {
			pthread_attr_t at;
			pthread_t th;
			int cpu = -1;
			pthread_attr_init(&at);
			cpu_spread_attr(&s, &at);
			assert_int_equal(pthread_create(&th, &at, where, &cpu), 0);
			pthread_attr_destroy(&at);
			assert_int_equal(pthread_join(th, NULL), 0);
			assert_true(cpu >= 0 && CPU_ISSET(cpu, &before));
			assert_false(CPU_ISSET(cpu, &seen));
			CPU_SET(cpu, &seen);
		}
	}
	cpu_spread_end(&s);
	cpu_set_t after = mask_now();
	assert_true(CPU_EQUAL(&before, &after));
}

static void test_one_cpu(void **state)
{
	(void)state;
	cpu_set_t before = mask_now(), one;
	struct cpu_spread s;

	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(cpu_allowed(), 1);
	assert_int_equal(cpu_spread_begin(&s, 4), 1);
	assert_false(s.held);
	cpu_spread_end(&s);
	cpu_set_t now = mask_now();
	assert_true(CPU_EQUAL(&now, &one));
	assert_int_equal(sched_setaffinity(0, sizeof(before), &before), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread_and_back),
		cmocka_unit_test(test_one_cpu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
