/*
 * Policy decisions: one test per policy, per constraint, per refusal, plus
 * the probe conversation, the incremental index and migration's criterion.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"

#define NH 8

static struct policy_host hosts[NH];
static struct policy_view view = { hosts, NH };
static struct policy_rng rng;

static int setup(void **state)
{
	for (uint32_t i = 0; i < NH; i++) {
		hosts[i] = (struct policy_host){
			.id = 100 + i, .flags = POLICY_HOST_UP, .load = 5,
			.mem_free = 1u << 30, .ncpus = 4, .arch = POLICY_ARCH_X86_64,
		};
	}
	policy_rng_seed(&rng, 42);
	return 0;
}

static struct policy spec(const char *s)
{
	struct policy p;

	assert_int_equal(policy_parse(&p, s, NULL), 0);
	return p;
}

/* One decision, answering probes from the hosts' .load fields. */
static int decide(const struct policy *p, const struct policy_request *req,
                  const struct policy_index *ix, struct policy_result *res)
{
	struct policy_session s;
	int v;

	policy_session_start(&s);
	while ((v = policy_decide(p, &view, req, &rng, ix, &s, res)) == POLICY_PROBE)
		for (uint32_t i = 0; i < res->nprobe; i++)
			assert_int_equal(policy_answer(&s, res->probe[i], hosts[res->probe[i]].load), 0);
	return v;
}

static uint32_t place(const char *s, int32_t origin)
{
	struct policy p = spec(s);
	struct policy_request req;
	struct policy_result res;

	policy_request_init(&req, origin, origin >= 0 ? hosts[origin].load : 0);
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_DECIDED);
	assert_true(res.host < NH);
	return res.host;
}

static void test_random_uniform(void **state)
{
	uint32_t count[NH] = { 0 };

	hosts[3].flags = 0;   /* down: never chosen */
	for (int i = 0; i < 70000; i++)
		count[place("random", 0)]++;
	assert_int_equal(count[3], 0);
	for (int i = 0; i < NH; i++)
		if (i != 3)
			assert_true(count[i] > 9400 && count[i] < 10600);
}

static void test_least_loaded_and_jsq(void **state)
{
	hosts[6].load = 1;
	assert_int_equal(place("least-loaded", 0), 6);
	assert_int_equal(place("jsq", 0), 6);
	/* Ties at random: both lowest hosts chosen, nothing else. */
	hosts[2].load = 1;
	uint32_t c2 = 0, c6 = 0;
	for (int i = 0; i < 2000; i++) {
		uint32_t h = place("jsq", 0);
		assert_true(h == 2 || h == 6);
		c2 += h == 2, c6 += h == 6;
	}
	assert_true(c2 > 800 && c6 > 800);
	/* Draining hosts take nothing. */
	hosts[2].flags |= POLICY_HOST_DRAINING;
	hosts[6].flags = 0;
	hosts[5].load = 4;
	assert_int_equal(place("least-loaded", 0), 5);
}

static void test_pod(void **state)
{
	/* d = NH: sees everyone, so it finds the single lowest host. */
	hosts[4].load = 0;
	for (int i = 0; i < 100; i++)
		assert_int_equal(place("pod:d=8", 0), 4);
	/* d = 2: host 4 wins exactly when sampled: P = 1 - C(7,2)/C(8,2) = 1/4. */
	int wins = 0;
	for (int i = 0; i < 40000; i++)
		wins += place("pod:d=2", 0) == 4;
	assert_true(wins > 9500 && wins < 10500);
	/* d = 1 is random placement. */
	wins = 0;
	for (int i = 0; i < 40000; i++)
		wins += place("pod:d=1", 0) == 4;
	assert_true(wins > 4600 && wins < 5400);
}

static void test_pod_distinct(void **state)
{
	/* Two hosts, d=2: both must be sampled, so the lower always wins. A
	 * sampler drawing with replacement would pick host 1 a quarter of the time. */
	struct policy_view two = { hosts, 2 };
	struct policy p = spec("pod:d=2");
	struct policy_request req;
	struct policy_result res;
	struct policy_session s;

	hosts[0].load = 1, hosts[1].load = 2;
	policy_request_init(&req, 0, 1);
	for (int i = 0; i < 1000; i++) {
		policy_session_start(&s);
		assert_int_equal(policy_decide(&p, &two, &req, &rng, NULL, &s, &res), POLICY_DECIDED);
		assert_int_equal(res.host, 0);
		assert_int_equal(res.considered, 2);
	}
}

static void test_probe_conversation(void **state)
{
	struct policy p = spec("probe:d=3");
	struct policy_request req;
	struct policy_result res;
	struct policy_session s;
	uint32_t asked[3];

	hosts[1].load = 0;   /* published: irrelevant to probe */
	policy_request_init(&req, 0, 5);
	policy_session_start(&s);
	assert_int_equal(policy_decide(&p, &view, &req, &rng, NULL, &s, &res), POLICY_PROBE);
	assert_int_equal(res.nprobe, 3);
	memcpy(asked, res.probe, sizeof(asked));
	assert_true(asked[0] != asked[1] && asked[1] != asked[2] && asked[0] != asked[2]);
	/* Deciding before every answer is in breaks the contract. */
	assert_int_equal(policy_answer(&s, asked[0], 7), 0);
	assert_int_equal(policy_decide(&p, &view, &req, &rng, NULL, &s, &res), -POLICY_ERR_SESSION);
	/* An answer for a host not asked, or twice, is refused. */
	for (uint32_t h = 0; h < NH; h++)
		if (h != asked[0] && h != asked[1] && h != asked[2])
			assert_int_equal(policy_answer(&s, h, 1), -POLICY_ERR_SESSION);
	assert_int_equal(policy_answer(&s, asked[0], 1), -POLICY_ERR_SESSION);
	assert_int_equal(policy_answer(&s, asked[1], 3), 0);
	assert_int_equal(policy_answer_lost(&s, asked[2]), 0);
	assert_int_equal(policy_decide(&p, &view, &req, &rng, NULL, &s, &res), POLICY_DECIDED);
	assert_int_equal(res.host, asked[1]);
	assert_int_equal(res.reason, POLICY_R_LOWEST_PROBED);
	assert_true(res.load == 3);

	/* Every probe lost: refused, saying so. */
	policy_session_start(&s);
	assert_int_equal(policy_decide(&p, &view, &req, &rng, NULL, &s, &res), POLICY_PROBE);
	memcpy(asked, res.probe, sizeof(asked));
	for (int i = 0; i < 3; i++)
		assert_int_equal(policy_answer_lost(&s, asked[i]), 0);
	assert_int_equal(policy_decide(&p, &view, &req, &rng, NULL, &s, &res), POLICY_REFUSED);
	assert_int_equal(res.unmet, POLICY_UNMET_NO_ANSWER);
}

static void test_threshold(void **state)
{
	struct policy p = spec("threshold:t=2,lp=3");
	struct policy_request req;
	struct policy_result res;
	struct policy_session s;

	/* Origin below T: local, no probe. */
	policy_request_init(&req, 0, 1);
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_DECIDED);
	assert_int_equal(res.host, 0);
	assert_int_equal(res.reason, POLICY_R_LOCAL_BELOW_T);
	assert_int_equal(res.probes, 0);

	/* Origin at T, everyone else busy: probes exactly lp distinct others, one at a time, stays. */
	policy_request_init(&req, 0, 2);
	policy_session_start(&s);
	uint32_t seen[3], n = 0;
	int v;
	while ((v = policy_decide(&p, &view, &req, &rng, NULL, &s, &res)) == POLICY_PROBE) {
		assert_int_equal(res.nprobe, 1);
		assert_true(res.probe[0] != 0);
		for (uint32_t i = 0; i < n; i++)
			assert_true(seen[i] != res.probe[0]);
		assert_true(n < 3);
		seen[n++] = res.probe[0];
		policy_answer(&s, res.probe[0], 5);
	}
	assert_int_equal(v, POLICY_DECIDED);
	assert_int_equal(n, 3);
	assert_int_equal(res.host, 0);
	assert_int_equal(res.reason, POLICY_R_LOCAL_NONE_BELOW);

	/* One other host below T: found whenever probed; the first one below T wins. */
	hosts[5].load = 1;
	int found = 0;
	for (int i = 0; i < 7000; i++) {
		assert_int_equal(decide(&p, &req, NULL, &res), POLICY_DECIDED);
		if (res.host == 5) {
			assert_int_equal(res.reason, POLICY_R_REMOTE_BELOW_T);
			found++;
		} else {
			assert_int_equal(res.host, 0);
		}
	}
	/* P(host 5 among 3 of the 7 others) = 3/7: 3000 of 7000. */
	assert_true(found > 2800 && found < 3200);

	/* No origin: a contract error. */
	policy_request_init(&req, POLICY_NO_HOST, 0);
	policy_session_start(&s);
	assert_int_equal(policy_decide(&p, &view, &req, &rng, NULL, &s, &res), -POLICY_ERR_ORIGIN);
}

static void test_threshold_origin_ineligible(void **state)
{
	struct policy p = spec("threshold:t=2,lp=2");
	struct policy_request req;
	struct policy_result res;

	hosts[0].tags = 0;
	for (int i = 1; i < NH; i++)
		hosts[i].tags = 1, hosts[i].load = 4 + i;
	policy_request_init(&req, 0, 0);
	req.tags = 1;
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_DECIDED);
	assert_true(res.host != 0);
	assert_int_equal(res.reason, POLICY_R_ORIGIN_INELIGIBLE);
	assert_int_equal(res.probes, 2);
}

static void refused_for(const struct policy_request *req, enum policy_unmet unmet)
{
	static const char *const specs[] = {
		"random", "least-loaded", "jsq", "pod:d=2", "probe:d=3", "threshold:t=1,lp=3",
	};
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct policy p = spec(specs[i]);
		struct policy_result res;

		assert_int_equal(decide(&p, req, NULL, &res), POLICY_REFUSED);
		assert_int_equal(res.unmet, unmet);
		assert_string_not_equal(policy_unmet_str(res.unmet), "unknown need");
	}
}

static void chosen_for(const struct policy_request *req, uint32_t only)
{
	static const char *const specs[] = {
		"random", "least-loaded", "jsq", "pod:d=2", "probe:d=3",
	};
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct policy p = spec(specs[i]);
		struct policy_result res;

		for (int k = 0; k < 20; k++) {
			assert_int_equal(decide(&p, req, NULL, &res), POLICY_DECIDED);
			assert_int_equal(res.host, only);
		}
	}
}

static void test_constraints(void **state)
{
	struct policy_request req;

	hosts[2].mem_free = 8ull << 30;
	hosts[3].ncpus = 64;
	hosts[4].arch = POLICY_ARCH_AARCH64;
	hosts[5].features = 0x6;
	hosts[6].tags = 0x10;

	policy_request_init(&req, 0, 9);
	req.mem = 4ull << 30;
	chosen_for(&req, 2);
	req.mem = 16ull << 30;
	refused_for(&req, POLICY_UNMET_MEM);

	policy_request_init(&req, 0, 9);
	req.cpus = 32;
	chosen_for(&req, 3);
	req.cpus = 128;
	refused_for(&req, POLICY_UNMET_CPUS);

	policy_request_init(&req, 0, 9);
	req.arch = POLICY_ARCH_AARCH64;
	chosen_for(&req, 4);
	req.arch = POLICY_ARCH_RISCV64;
	refused_for(&req, POLICY_UNMET_ARCH);

	policy_request_init(&req, 0, 9);
	req.features = 0x4;
	chosen_for(&req, 5);
	req.features = 0x9;
	refused_for(&req, POLICY_UNMET_FEATURES);

	policy_request_init(&req, 0, 9);
	req.tags = 0x10;
	chosen_for(&req, 6);
	req.tags = 0x20;
	refused_for(&req, POLICY_UNMET_TAGS);

	/* Each need met somewhere, never together. */
	policy_request_init(&req, 0, 9);
	req.tags = 0x10;
	req.cpus = 32;
	refused_for(&req, POLICY_UNMET_TOGETHER);

	/* The only host with the tag is draining. */
	hosts[6].flags |= POLICY_HOST_DRAINING;
	policy_request_init(&req, 0, 9);
	req.tags = 0x10;
	refused_for(&req, POLICY_UNMET_TAGS);

	/* Nobody up. */
	for (int i = 0; i < NH; i++)
		hosts[i].flags = 0;
	policy_request_init(&req, 0, 0);
	refused_for(&req, POLICY_UNMET_UP);
}

static void test_on_and_near(void **state)
{
	struct policy p = spec("jsq");
	struct policy_request req;
	struct policy_result res;

	hosts[1].load = 0;
	policy_request_init(&req, 0, 5);
	req.on = 7;
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_DECIDED);
	assert_int_equal(res.host, 7);
	assert_int_equal(res.reason, POLICY_R_PINNED);

	policy_request_init(&req, 0, 5);
	req.near = 3;
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_DECIDED);
	assert_int_equal(res.host, 3);
	assert_int_equal(res.reason, POLICY_R_NEAR);

	/* The pinned host fails a constraint: refused, naming host and need. */
	policy_request_init(&req, 0, 5);
	req.on = 7;
	req.mem = 2ull << 30;
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_REFUSED);
	assert_int_equal(res.unmet, POLICY_UNMET_MEM);
	assert_int_equal(res.unmet_host, 7);

	policy_request_init(&req, 0, 5);
	req.on = 7;
	req.near = 3;
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_REFUSED);
	assert_int_equal(res.unmet, POLICY_UNMET_CONFLICT);

	policy_request_init(&req, 0, 5);
	req.on = NH;
	assert_int_equal(decide(&p, &req, NULL, &res), -POLICY_ERR_HOST);

	hosts[7].flags = 0;
	policy_request_init(&req, 0, 5);
	req.on = 7;
	assert_int_equal(decide(&p, &req, NULL, &res), POLICY_REFUSED);
	assert_int_equal(res.unmet, POLICY_UNMET_UP);
}

static void test_empty_view(void **state)
{
	struct policy_view none = { hosts, 0 };
	struct policy p = spec("pod:d=2");
	struct policy_request req;
	struct policy_result res;
	struct policy_session s;

	policy_request_init(&req, POLICY_NO_HOST, 0);
	policy_session_start(&s);
	assert_int_equal(policy_decide(&p, &none, &req, &rng, NULL, &s, &res), POLICY_REFUSED);
	assert_int_equal(res.unmet, POLICY_UNMET_HOSTS);
}

static void test_sparse_eligibility(void **state)
{
	/* 1000 hosts, 3 eligible: the exact fallback still samples distinct
	 * eligible hosts uniformly. */
	static struct policy_host many[1000];
	struct policy_view v = { many, 1000 };
	struct policy p = spec("pod:d=2");
	struct policy_request req;
	struct policy_result res;
	struct policy_session s;
	uint32_t count[3] = { 0 };

	for (int i = 0; i < 1000; i++)
		many[i] = (struct policy_host){ .flags = POLICY_HOST_UP, .load = 1 };
	many[10].tags = many[500].tags = many[999].tags = 1;
	policy_request_init(&req, 0, 0);
	req.tags = 1;
	for (int i = 0; i < 3000; i++) {
		policy_session_start(&s);
		assert_int_equal(policy_decide(&p, &v, &req, &rng, NULL, &s, &res), POLICY_DECIDED);
		assert_int_equal(res.considered, 2);
		count[res.host == 10 ? 0 : res.host == 500 ? 1 : res.host == 999 ? 2 : 99]++;
	}
	for (int i = 0; i < 3; i++)
		assert_true(count[i] > 850 && count[i] < 1150);
}

static void test_index(void **state)
{
	struct policy_index ix;
	struct policy p = spec("jsq");
	struct policy_request req;
	struct policy_result res;
	uint32_t ref[NH] = { 0 };

	assert_int_equal(policy_index_init(&ix, NH), 0);
	/* A random walk of levels, checked against a plain array. */
	for (int step = 0; step < 20000; step++) {
		uint32_t h = policy_rng_below(&rng, NH);
		if (policy_rng_below(&rng, 2) && ref[h] < 200) {
			assert_int_equal(policy_index_inc(&ix, h), 0);
			ref[h]++;
		} else {
			policy_index_dec(&ix, h);
			ref[h] -= ref[h] > 0;
		}
		uint32_t min = UINT32_MAX;
		for (int i = 0; i < NH; i++) {
			assert_int_equal(policy_index_level(&ix, i), ref[i]);
			min = ref[i] < min ? ref[i] : min;
			hosts[i].load = ref[i];
		}
		assert_int_equal(policy_index_min(&ix), min);
		for (uint32_t k = 1; k < NH; k++)
			assert_true(ix.level[ix.order[k - 1]] <= ix.level[ix.order[k]]);
		policy_request_init(&req, 0, 0);
		assert_int_equal(decide(&p, &req, &ix, &res), POLICY_DECIDED);
		assert_int_equal(ref[res.host], min);
	}
	/* A level far above the initial table. */
	assert_int_equal(policy_index_set(&ix, 3, 1000), 0);
	assert_int_equal(policy_index_level(&ix, 3), 1000);
	assert_int_equal(policy_index_set(&ix, 3, 0), 0);
	policy_index_free(&ix);
}

static void test_index_skips_ineligible(void **state)
{
	struct policy_index ix;
	struct policy p = spec("least-loaded");
	struct policy_request req;
	struct policy_result res;

	assert_int_equal(policy_index_init(&ix, NH), 0);
	for (uint32_t h = 0; h < NH; h++) {
		policy_index_set(&ix, h, h == 2 ? 0 : 3 + h);
		hosts[h].load = h == 2 ? 0 : 3 + h;
	}
	hosts[2].flags = 0;   /* the lowest is down: the next one */
	policy_request_init(&req, 0, 0);
	assert_int_equal(decide(&p, &req, &ix, &res), POLICY_DECIDED);
	assert_int_equal(res.host, 0);
	policy_index_free(&ix);
}

static void test_migration_criterion(void **state)
{
	assert_true(isinf(policy_migration_min_age(1, 3, 2)));
	assert_true(policy_migration_min_age(2, 5, 0) == 0.5);
	assert_false(policy_migration_pays(0.4, 2, 5, 0));
	assert_true(policy_migration_pays(0.6, 2, 5, 0));
	assert_false(policy_migration_pays(100, 1, 2, 1));
}

static void test_texts(void **state)
{
	for (int r = 1; r < POLICY_R_MAX; r++)
		assert_string_not_equal(policy_reason_str(r), "no decision");
	assert_string_equal(policy_arch_name(POLICY_ARCH_X86_64), "x86_64");
	assert_int_equal(policy_arch_parse("aarch64"), POLICY_ARCH_AARCH64);
	assert_int_equal(policy_arch_parse("sparc"), -POLICY_ERR_NAME);
	struct policy p = spec("pod");
	assert_int_equal(policy_reads(&p), POLICY_READS_PUBLISHED);
	p = spec("jsq");
	assert_int_equal(policy_reads(&p), POLICY_READS_EXACT);
	p = spec("threshold");
	assert_int_equal(policy_reads(&p), POLICY_READS_PROBES);
}

static void test_seeded_reproducible(void **state)
{
	uint32_t a[200], b[200];

	policy_rng_seed(&rng, 7);
	for (int i = 0; i < 200; i++)
		a[i] = place("pod:d=3", 0);
	policy_rng_seed(&rng, 7);
	for (int i = 0; i < 200; i++)
		b[i] = place("pod:d=3", 0);
	assert_memory_equal(a, b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_random_uniform, setup),
		cmocka_unit_test_setup(test_least_loaded_and_jsq, setup),
		cmocka_unit_test_setup(test_pod, setup),
		cmocka_unit_test_setup(test_pod_distinct, setup),
		cmocka_unit_test_setup(test_probe_conversation, setup),
		cmocka_unit_test_setup(test_threshold, setup),
		cmocka_unit_test_setup(test_threshold_origin_ineligible, setup),
		cmocka_unit_test_setup(test_constraints, setup),
		cmocka_unit_test_setup(test_on_and_near, setup),
		cmocka_unit_test_setup(test_empty_view, setup),
		cmocka_unit_test_setup(test_sparse_eligibility, setup),
		cmocka_unit_test_setup(test_index, setup),
		cmocka_unit_test_setup(test_index_skips_ineligible, setup),
		cmocka_unit_test_setup(test_migration_criterion, setup),
		cmocka_unit_test_setup(test_texts, setup),
		cmocka_unit_test_setup(test_seeded_reproducible, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
