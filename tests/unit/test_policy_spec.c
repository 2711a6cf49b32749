/* The spec-string parser and printer: good specs, bad specs, round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"

static void parses_to(const char *spec, enum policy_kind kind, uint32_t d, double t, uint32_t lp)
{
	struct policy p;
	struct policy_parse_error err;

	assert_int_equal(policy_parse(&p, spec, &err), 0);
	assert_int_equal(err.code, 0);
	assert_int_equal(p.kind, kind);
	assert_int_equal(p.d, d);
	assert_int_equal(p.lp, lp);
	assert_true(p.t == t);
}

static void fails_with(const char *spec, int code, size_t offset)
{
	struct policy p = { .kind = POLICY_KIND_JSQ };
	struct policy_parse_error err;

	assert_int_equal(policy_parse(&p, spec, &err), -code);
	assert_int_equal(err.code, code);
	assert_int_equal(err.offset, offset);
	assert_int_equal(p.kind, POLICY_KIND_JSQ);   /* untouched on error */
	assert_string_not_equal(policy_strerror(-code), "unknown policy error");
}

static void test_good_specs(void **state)
{
	parses_to("random", POLICY_KIND_RANDOM, 0, 0, 0);
	parses_to("least-loaded", POLICY_KIND_LEAST_LOADED, 0, 0, 0);
	parses_to("jsq", POLICY_KIND_JSQ, 0, 0, 0);
	parses_to("pod:d=2", POLICY_KIND_POD, 2, 0, 0);
	parses_to("pod:d=3", POLICY_KIND_POD, 3, 0, 0);
	parses_to("pod", POLICY_KIND_POD, 2, 0, 0);
	parses_to("pod:d=64", POLICY_KIND_POD, 64, 0, 0);
	parses_to("probe:d=3", POLICY_KIND_PROBE, 3, 0, 0);
	parses_to("threshold:t=2,lp=3", POLICY_KIND_THRESHOLD, 0, 2, 3);
	parses_to("threshold:lp=5,t=1", POLICY_KIND_THRESHOLD, 0, 1, 5);
	parses_to("threshold:t=0.75", POLICY_KIND_THRESHOLD, 0, 0.75, 3);
	parses_to("threshold:t=1e2,lp=1", POLICY_KIND_THRESHOLD, 0, 100, 1);
	parses_to("threshold", POLICY_KIND_THRESHOLD, 0, 2, 3);
}

static void test_bad_specs(void **state)
{
	fails_with("", POLICY_ERR_EMPTY, 0);
	fails_with("rand", POLICY_ERR_NAME, 0);
	fails_with("Random", POLICY_ERR_NAME, 0);
	fails_with(":d=2", POLICY_ERR_NAME, 0);
	fails_with("pod:", POLICY_ERR_SYNTAX, 3);
	fails_with("pod:d", POLICY_ERR_SYNTAX, 4);
	fails_with("pod:d=", POLICY_ERR_NUMBER, 6);
	fails_with("pod:d=0", POLICY_ERR_RANGE, 6);
	fails_with("pod:d=65", POLICY_ERR_RANGE, 6);
	fails_with("pod:d=99999999999999999999", POLICY_ERR_RANGE, 6);
	fails_with("pod:d=-1", POLICY_ERR_NUMBER, 6);
	fails_with("pod:d=2x", POLICY_ERR_NUMBER, 6);
	fails_with("pod:d=2.5", POLICY_ERR_NUMBER, 6);
	fails_with("pod:d=2,", POLICY_ERR_SYNTAX, 7);
	fails_with("pod:d=2,d=3", POLICY_ERR_DUPLICATE, 8);
	fails_with("pod:t=2", POLICY_ERR_PARAM, 4);
	fails_with("pod:d=2,,", POLICY_ERR_SYNTAX, 8);
	fails_with("random:d=2", POLICY_ERR_PARAM, 7);
	fails_with("jsq:", POLICY_ERR_SYNTAX, 3);
	fails_with("pod: d=2", POLICY_ERR_PARAM, 4);
	fails_with("threshold:t=0", POLICY_ERR_RANGE, 12);
	fails_with("threshold:t=nan", POLICY_ERR_NUMBER, 12);
	fails_with("threshold:t=inf", POLICY_ERR_NUMBER, 12);
	fails_with("threshold:t=1e999", POLICY_ERR_RANGE, 12);
	fails_with("threshold:t=.", POLICY_ERR_NUMBER, 12);
	fails_with("threshold:t=1e", POLICY_ERR_NUMBER, 12);
	fails_with("threshold:t=0x10", POLICY_ERR_NUMBER, 12);
	fails_with("threshold:t=2,lp=0", POLICY_ERR_RANGE, 17);
	fails_with("threshold:t=2,l=3", POLICY_ERR_PARAM, 14);
	fails_with("threshold:=2", POLICY_ERR_PARAM, 10);

	char longspec[400];
	memset(longspec, 'a', sizeof(longspec) - 1);
	longspec[sizeof(longspec) - 1] = '\0';
	fails_with(longspec, POLICY_ERR_TOO_LONG, 256);

	struct policy p;
	assert_int_equal(policy_parse(&p, NULL, NULL), -POLICY_ERR_EMPTY);
	assert_int_equal(policy_parse(&p, "nope", NULL), -POLICY_ERR_NAME);
}

static void round_trip(const char *spec, const char *canonical)
{
	struct policy p, q;
	char buf[POLICY_SPEC_MAX];
	int n;

	assert_int_equal(policy_parse(&p, spec, NULL), 0);
	n = policy_format(&p, buf, sizeof(buf));
	assert_true(n > 0 && n < POLICY_SPEC_MAX);
	assert_string_equal(buf, canonical);
	assert_int_equal(policy_parse(&q, buf, NULL), 0);
	assert_memory_equal(&p, &q, sizeof(p));
}

static void test_format(void **state)
{
	round_trip("random", "random");
	round_trip("least-loaded", "least-loaded");
	round_trip("jsq", "jsq");
	round_trip("pod", "pod:d=2");
	round_trip("probe:d=7", "probe:d=7");
	round_trip("threshold", "threshold:t=2,lp=3");
	round_trip("threshold:lp=4,t=0.1", "threshold:t=0.1,lp=4");
	round_trip("threshold:t=0.123456789012345678", "threshold:t=0.12345678901234568,lp=3");
	round_trip("threshold:t=1000000000", "threshold:t=1e+09,lp=3");

	struct policy bad = { .kind = 0 };
	char buf[8];
	assert_int_equal(policy_format(&bad, buf, sizeof(buf)), -POLICY_ERR_KIND);
	/* snprintf semantics: the length needed, truncated output. */
	struct policy p = { .kind = POLICY_KIND_THRESHOLD, .t = 2, .lp = 3 };
	assert_int_equal(policy_format(&p, buf, sizeof(buf)), (int)strlen("threshold:t=2,lp=3"));
	assert_string_equal(buf, "thresho");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_specs),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
