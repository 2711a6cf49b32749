/*
 * runwire: the hand-made frames of roam run are byte for byte what
 * msg_encode writes, its decoders take what msg_encode writes and refuse
 * what msg_decode would, and its option rules are cmd_run's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/msg.h"
#include "net/runwire.h"

static uint8_t want[1 << 20], got[1 << 20];

/* Encodes r both ways and compares. */
static void check_run(const struct run_req *r)
{
	Roamnet__Run run = ROAMNET__RUN__INIT;
	Roamnet__Rlimit lims[16], *limp[16];
	long n;

	run.argv = r->argv;
	run.n_argv = r->argc;
	run.env = r->env;
	run.n_env = r->nenv;
	run.cwd = (char *)r->cwd;
	run.umask = r->umask;
	for (size_t i = 0; i < r->nlim; i++) {
		roamnet__rlimit__init(&lims[i]);
		lims[i].resource = r->lim[i].resource;
		lims[i].soft = r->lim[i].soft;
		lims[i].hard = r->lim[i].hard;
		limp[i] = &lims[i];
	}
	run.rlimits = limp;
	run.n_rlimits = r->nlim;
	run.policy = (char *)r->o->policy;
	run.need = (char *)r->o->need;
	run.near = (char *)r->o->near;
	run.on = (char *)r->o->on;
	run.has_detach = run.detach = r->o->detach;
	run.has_explain = run.explain = r->o->explain;
	n = msg_encode(MSG_RUN, &run.base, want, sizeof(want));
	assert_true(n > 0);
	assert_int_equal(runwire_run_size(r), (size_t)n);
	memset(got, 0xee, sizeof(got));
	runwire_run_encode(r, got);
	assert_memory_equal(got, want, (size_t)n);
}

static void test_run_bytes(void **state)
{
	char *argv[] = {"/bin/true", "", "x y"};
	char *env[] = {"PATH=/usr/bin:/bin", "HOME=/root", "EMPTY="};
	struct run_limit lim[3] = {{0, UINT64_MAX, UINT64_MAX}, {3, 8u << 20, UINT64_MAX}, {15, 0, 127}};
	struct run_opts o = {.status = RUN_OPTS_OK};
	struct run_req r = {.o = &o, .argv = argv, .argc = 1, .env = env, .nenv = 0, .cwd = "/",
			    .umask = 022, .lim = lim, .nlim = 0};

	check_run(&r);
	r.argc = 3;
	r.nenv = 3;
	r.nlim = 3;
	check_run(&r);
	o.policy = "least-loaded";
	o.need = "mem=1G,tag=gpu";
	o.near = "h1.42";
	o.on = "h2";
	o.detach = o.explain = true;
	r.umask = 0777;
	check_run(&r);
	o.policy = "";   /* given but empty: still sent */
	check_run(&r);

	/* Long strings: two- and three-byte lengths. */
	char *big = malloc(70000), *mid = malloc(300);
	memset(big, 'a', 69999);
	big[69999] = 0;
	memset(mid, 'b', 299);
	mid[299] = 0;
	char *env2[] = {big, mid};
	r.env = env2;
	r.nenv = 2;
	r.cwd = mid;
	check_run(&r);
	free(big);
	free(mid);
}

static void test_eof_bytes(void **state)
{
	Roamnet__Input in = ROAMNET__INPUT__INIT;
	uint8_t b[RUNWIRE_EOF_SIZE];

	in.id = "";
	in.has_eof = in.eof = 1;
	assert_int_equal(msg_encode(MSG_INPUT, &in.base, want, sizeof(want)), RUNWIRE_EOF_SIZE);
	runwire_eof_encode(b);
	assert_memory_equal(b, want, RUNWIRE_EOF_SIZE);
}

static void test_decode(void **state)
{
	Roamnet__Started s = ROAMNET__STARTED__INIT;
	Roamnet__Output o = ROAMNET__OUTPUT__INIT;
	Roamnet__Exited e = ROAMNET__EXITED__INIT;
	const uint8_t *data;
	unsigned type, fd;
	size_t size, len;
	int status;
	long n;

	s.id = "h1.7";
	s.host = "h2";
	s.has_pid = 1;
	s.pid = 1234;
	s.explain = "because";
	n = msg_encode(MSG_STARTED, &s.base, want, sizeof(want));
	assert_int_equal(runwire_frame(want, (size_t)n - 1, 1 << 17, &type, &size), 0);
	assert_int_equal(runwire_frame(want, (size_t)n, 1 << 17, &type, &size), 1);
	assert_int_equal(type, MSG_STARTED);
	assert_int_equal(size, (size_t)n);
	assert_int_equal(runwire_started(want + MSG_HDR_SIZE, size - MSG_HDR_SIZE), 0);
	s.id = "h1";   /* not an id */
	n = msg_encode(MSG_STARTED, &s.base, want, sizeof(want));
	assert_int_equal(runwire_started(want + MSG_HDR_SIZE, (size_t)n - MSG_HDR_SIZE), -1);

	o.id = "h1.7";
	o.fd = 2;
	o.data.data = (uint8_t *)"hello";
	o.data.len = 5;
	n = msg_encode(MSG_OUTPUT, &o.base, want, sizeof(want));
	assert_int_equal(runwire_output(want + MSG_HDR_SIZE, (size_t)n - MSG_HDR_SIZE, &fd, &data, &len), 0);
	assert_int_equal(fd, 2);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	/* Truncated inside the data: refused. */
	assert_int_equal(runwire_output(want + MSG_HDR_SIZE, (size_t)n - MSG_HDR_SIZE - 1, &fd, &data, &len), -1);
	o.fd = 3;
	n = msg_encode(MSG_OUTPUT, &o.base, want, sizeof(want));
	assert_int_equal(runwire_output(want + MSG_HDR_SIZE, (size_t)n - MSG_HDR_SIZE, &fd, &data, &len), -1);

	e.id = "h1.7";
	e.status = 0x8100;
	n = msg_encode(MSG_EXITED, &e.base, want, sizeof(want));
	assert_int_equal(runwire_exited(want + MSG_HDR_SIZE, (size_t)n - MSG_HDR_SIZE, &status), 0);
	assert_int_equal(status, 0x8100);
	e.status = -1;
	n = msg_encode(MSG_EXITED, &e.base, want, sizeof(want));
	assert_int_equal(runwire_exited(want + MSG_HDR_SIZE, (size_t)n - MSG_HDR_SIZE, &status), -1);

	/* An unknown field, a missing required one, flags, an oversized frame. */
	const uint8_t unknown[] = {0x0a, 0x04, 'h', '1', '.', '7', 0x10, 0x00, 0x78, 0x01};
	assert_int_equal(runwire_exited(unknown, sizeof(unknown), &status), -1);
	assert_int_equal(runwire_exited(unknown, 6, &status), -1);
	assert_int_equal(runwire_exited(unknown, 8, &status), 0);
	const uint8_t flags[] = {0, 0, 0, 0, MSG_EXITED, 0, 1, 0};
	assert_int_equal(runwire_frame(flags, sizeof(flags), 1 << 17, &type, &size), -1);
	const uint8_t huge[] = {0, 0, 0, 1, MSG_OUTPUT, 0, 0, 0};
	assert_int_equal(runwire_frame(huge, sizeof(huge), 1 << 17, &type, &size), -1);
}

static void test_options(void **state)
{
	char *a1[] = {"run", "--control", "/s1", "--on", "h2", "--control=/s2", "--", "ls", "--control", "x", NULL};
	char *out[16];
	const char *path = "/env";
	struct run_opts o;
	int n = runwire_strip_control(10, a1, out, &path);

	assert_int_equal(n, 7);   /* run --on h2 -- ls --control x */
	assert_string_equal(path, "/s2");
	assert_string_equal(out[1], "--on");
	assert_string_equal(out[4], "ls");
	assert_string_equal(out[5], "--control");
	run_opts_parse(n, out, &o);
	assert_int_equal(o.status, RUN_OPTS_OK);
	assert_string_equal(o.on, "h2");
	assert_int_equal(o.cmd, 4);

	/* In place, as cc_control_path does it; --control after CMD but before
	 * any "--" goes too. */
	char *a2[] = {"run", "ls", "--control", "/s3", "-l", NULL};
	path = NULL;
	n = runwire_strip_control(5, a2, a2, &path);
	assert_int_equal(n, 3);
	assert_string_equal(path, "/s3");
	assert_string_equal(a2[2], "-l");
	run_opts_parse(n, a2, &o);
	assert_int_equal(o.status, RUN_OPTS_OK);
	assert_int_equal(o.cmd, 1);

	char *a3[] = {"run", "--explain", "-d", "--json", "--policy", "random", "--need", "tag=x", "--near",
		      "h1.1", "true", NULL};
	run_opts_parse(11, a3, &o);
	assert_int_equal(o.status, RUN_OPTS_OK);
	assert_true(o.explain && o.detach && o.json);
	assert_string_equal(o.policy, "random");
	assert_string_equal(o.need, "tag=x");
	assert_string_equal(o.near, "h1.1");
	assert_int_equal(o.cmd, 10);

	char *a4[] = {"run", "--on", NULL};
	run_opts_parse(2, a4, &o);
	assert_int_equal(o.status, RUN_OPTS_UNKNOWN);
	assert_string_equal(o.bad, "--on");
	char *a5[] = {"run", "--", NULL};
	run_opts_parse(2, a5, &o);
	assert_int_equal(o.status, RUN_OPTS_NO_CMD);
	char *a6[] = {"run", "-h", "true", NULL};
	run_opts_parse(3, a6, &o);
	assert_int_equal(o.status, RUN_OPTS_HELP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_bytes),
		cmocka_unit_test(test_eof_bytes),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
