/*
 * proc_keep_pids_free (src/sys/proc.c): after it, the next pid this PID
 * namespace gives out is above the ids asked for, so that a restore's own
 * helper threads cannot take the thread ids the restored process asks for
 * last. Needs root (ns_last_pid); says so and skips otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/proc.h"

static long pid_max(void)
{
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
	long v = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

/* The pid of a child made now (and reaped). */
static pid_t next_pid(void)
{
	pid_t p = fork();

	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	assert_int_equal(waitpid(p, NULL, 0), p);
	return p;
}

static void test_next_pid_above(void **state)
{
	(void)state;
	pid_t now = next_pid();
	int32_t ids[3] = { (int32_t)now + 300, (int32_t)now + 700, (int32_t)now + 500 };

	if (ids[1] + 10 >= pid_max())
		skip();  /* too near the wrap-around to tell */
	assert_int_equal(proc_keep_pids_free(ids, 3), 0);
	pid_t after = next_pid();
	/* Above the highest asked for, unless some other process took pids
	 * meanwhile: then higher still. */
	assert_true(after > ids[1]);

	/* Ids below the namespace's last pid leave it where it is. */
	int32_t low[1] = { 2 };
	assert_int_equal(proc_keep_pids_free(low, 1), 0);
	assert_true(next_pid() > after);
	/* Nothing asked for: nothing done. */
	assert_int_equal(proc_keep_pids_free(NULL, 0), 0);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("test_proc_pids: needs root (writes /proc/sys/kernel/ns_last_pid): skipped\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_pid_above),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
