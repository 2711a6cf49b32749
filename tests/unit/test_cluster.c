/*
 * The cluster's pure parts: the member table (seeds named by their first
 * heartbeat, down after CL_DOWN_MS of silence, up again when heard) and the
 * --need parser, and the policy view they build together.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster.h"

static int downs;
static void on_down(struct member *m, void *arg) { downs++; }

static void test_membership(void **state)
{
	static struct members t;
	struct host_load l = {.load = 0.5, .ncpus = 2, .arch = "x86_64"};
	struct member *m;
	bool up;

	members_init(&t, "h1", "10.0.0.1:7070");
	/* A seed known by address gets its name from its heartbeat. */
	m = members_add(&t, NULL, "10.0.0.2:7070");
	assert_non_null(m);
	assert_string_equal(m->name, "");
	m = members_heard(&t, "h2", "10.0.0.2:7070", &l, 1000, &up);
	assert_true(up);
	assert_int_equal(t.n, 2);
	assert_string_equal(m->name, "h2");
	assert_ptr_equal(members_find(&t, "h2"), m);
	/* Heard again: not "came up" again. */
	members_heard(&t, "h2", "10.0.0.2:7070", &l, 2000, &up);
	assert_false(up);
	/* Silent for less than CL_DOWN_MS: still up; then down, once. */
	downs = 0;
	members_expire(&t, 2000 + CL_DOWN_MS - 1, on_down, NULL);
	assert_int_equal(m->state, MEMBER_UP);
	members_expire(&t, 2000 + CL_DOWN_MS, on_down, NULL);
	members_expire(&t, 2000 + CL_DOWN_MS + 500, on_down, NULL);
	assert_int_equal(m->state, MEMBER_DOWN);
	assert_int_equal(downs, 1);
	/* Back. */
	members_heard(&t, "h2", "10.0.0.2:7070", &l, 9000, &up);
	assert_true(up);
	/* The local host never expires. */
	members_expire(&t, 1000000, on_down, NULL);
	assert_int_equal(t.m[0].state, MEMBER_UP);
}

static void test_view(void **state)
{
	static struct members t;
	struct host_load l = {.load = 1.5, .ncpus = 4, .arch = "x86_64", .mem_free = 1 << 30};
	struct policy_host hosts[4];
	bool up;

	members_init(&t, "h1", "a:1");
	strcpy(l.tags[0], "gpu");
	l.ntags = 1;
	members_heard(&t, "h2", "b:1", &l, 1, &up);
	l.ntags = 0;
	l.max_procs = 2;
	l.nprocs = 2;
	members_heard(&t, "h3", "c:1", &l, 1, &up);
	members_view(&t, hosts);
	int gpu = members_tag_bit(&t, "gpu");
	assert_true(gpu >= 0);
	assert_true(hosts[1].tags & (1ull << gpu));
	assert_false(hosts[2].tags & (1ull << gpu));
	assert_true(hosts[1].flags & POLICY_HOST_UP);
	assert_true(hosts[2].flags & POLICY_HOST_DRAINING);   /* at its limit */
	assert_int_equal(hosts[1].arch, POLICY_ARCH_X86_64);
	assert_true(hosts[1].load == 1.5);
}

static void test_need(void **state)
{
	static struct members t;
	struct policy_request req;
	const char *bad;

	members_init(&t, "h1", "a:1");
	policy_request_init(&req, 0, 0);
	assert_int_equal(need_parse("mem=2G,cpus=4,arch=x86_64,tag=gpu,tag=ssd,feature=avx2",
				    &t, &req, &bad), 0);
	assert_true(req.mem == 2ull << 30);
	assert_int_equal(req.cpus, 4);
	assert_int_equal(req.arch, POLICY_ARCH_X86_64);
	assert_int_equal(__builtin_popcountll(req.tags), 2);
	assert_true(req.features != 0);
	assert_int_equal(need_parse("mem=512M", &t, &req, &bad), 0);
	assert_true(req.mem == 512ull << 20);
	assert_int_equal(need_parse("color=blue", &t, &req, &bad), -NEED_ERR_KEY);
	assert_string_equal(bad, "color=blue");
	assert_int_equal(need_parse("mem=lots", &t, &req, &bad), -NEED_ERR_VALUE);
	assert_int_equal(need_parse("cpus=2G", &t, &req, &bad), -NEED_ERR_VALUE);
	assert_int_equal(need_parse("arch=vax", &t, &req, &bad), -NEED_ERR_VALUE);
	assert_int_equal(need_parse("mem", &t, &req, &bad), -NEED_ERR_SYNTAX);
	assert_int_equal(need_parse("tag=a b", &t, &req, &bad), 0);  /* a tag no host has */
	assert_int_equal(need_parse("feature=warp", &t, &req, &bad), -NEED_ERR_VALUE);
	assert_int_equal(need_parse("mem=99999999999999999999", &t, &req, &bad), -NEED_ERR_VALUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_membership),
		cmocka_unit_test(test_view),
		cmocka_unit_test(test_need),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
