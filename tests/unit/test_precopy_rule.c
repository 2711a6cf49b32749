/*
 * The pre-copy stop rule of a migration (ckpt_precopy_enough and
 * ckpt_precopy_pace, src/ckpt/precopy.c): pure arithmetic on what the
 * rounds saw, checked with the figures of this machine's benchmark (a link
 * of about 1.1 GB/s, 5 ms for the rest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ckpt/ckpt.h"

#define REST_NS 5000000ull
#define RATE    1.1   /* bytes per ns */

/* A 64 MiB process writing 100 MB/s: after the first step (60 ms) about
 * 1500 pages are new, 5.6 ms at the link's pace: one more round. After it
 * (about 250 pages) the rest goes at the freeze. */
static void test_small_rest_ends(void **state)
{
	(void)state;
	assert_false(ckpt_precopy_enough(1500, UINT64_MAX, RATE, REST_NS));
	assert_true(ckpt_precopy_enough(250, 1500, RATE, REST_NS));
	assert_true(ckpt_precopy_enough(0, UINT64_MAX, RATE, REST_NS));
}

/* A rest that shrank by less than a quarter over the last round: the
 * process writes as fast as the rounds copy; a bigger shrink goes on. */
static void test_rest_that_stops_shrinking_ends(void **state)
{
	(void)state;
	assert_true(ckpt_precopy_enough(80000, 100000, RATE, REST_NS));
	assert_true(ckpt_precopy_enough(120000, 100000, RATE, REST_NS));
	assert_false(ckpt_precopy_enough(70000, 100000, RATE, REST_NS));
	/* No round yet: the size alone decides, whatever it is. */
	assert_false(ckpt_precopy_enough(UINT64_MAX / 8, UINT64_MAX, RATE, REST_NS));
}

/* A slower link makes the same rest too big to go in the pause; a rate of
 * zero (a step that sent nothing) counts as 1 byte per ns, never as a
 * division by zero. */
static void test_rate_scales_the_rest(void **state)
{
	(void)state;
	assert_true(ckpt_precopy_enough(1000, UINT64_MAX, RATE, REST_NS));
	assert_false(ckpt_precopy_enough(1000, UINT64_MAX, 0.1, REST_NS));
	assert_true(ckpt_precopy_enough(1000, UINT64_MAX, 0.0, REST_NS));
	assert_false(ckpt_precopy_enough(2000, UINT64_MAX, 0.0, REST_NS));
}

/* The first step sent whole runs: the pages written since, which go one
 * by one, are taken at half its pace; a round's own pace stands. */
static void test_pace(void **state)
{
	(void)state;
	struct ckpt_round first = { .round = 0, .bytes = 64u << 20, .ns = 60000000 };
	struct ckpt_round round = { .round = 1, .bytes = 6u << 20, .ns = 8000000 };

	assert_true(ckpt_precopy_pace(&first) > 0.55 && ckpt_precopy_pace(&first) < 0.56);
	assert_true(ckpt_precopy_pace(&round) > 0.78 && ckpt_precopy_pace(&round) < 0.79);
	/* 1500 pages left after that first step: a round, not a 10 ms pause. */
	assert_false(ckpt_precopy_enough(1500, UINT64_MAX, ckpt_precopy_pace(&first), REST_NS));
	round.ns = 0;
	assert_true(ckpt_precopy_pace(&round) == 1.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_rest_ends),
		cmocka_unit_test(test_rest_that_stops_shrinking_ends),
		cmocka_unit_test(test_rate_scales_the_rest),
		cmocka_unit_test(test_pace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
