/*
 * Frames: every message round-trips, every malformed frame is refused with
 * its own error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/msg.h"

static uint8_t buf[1 << 16];

static long encode_spawn(const char *id, int n_argv)
{
	Roamnet__Spawn s = ROAMNET__SPAWN__INIT;
	char *argv[] = {"/bin/echo", "hello"};
	char *env[] = {"A=1"};

	s.id = (char *)id;
	s.home = "h1";
	s.user = "alice";
	s.argv = argv;
	s.n_argv = (size_t)n_argv;
	s.env = env;
	s.n_env = 1;
	s.cwd = "/tmp";
	s.umask = 022;
	return msg_encode(MSG_SPAWN, &s.base, buf, sizeof(buf));
}

static void test_roundtrip(void **state)
{
	ProtobufCMessage *m;
	unsigned type;
	long n = encode_spawn("h1.42", 2);
	Roamnet__Spawn *s;

	assert_true(n > MSG_HDR_SIZE);
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), 0);
	assert_int_equal(type, MSG_SPAWN);
	s = (Roamnet__Spawn *)m;
	assert_string_equal(s->id, "h1.42");
	assert_int_equal(s->n_argv, 2);
	assert_string_equal(s->argv[1], "hello");
	assert_int_equal(s->umask, 022);
	msg_free(m);
}

static void test_channel(void **state)
{
	ProtobufCMessage *m;
	unsigned type;
	long n = encode_spawn("h1.42", 2);

	/* Spawn is a peer message: the control socket must refuse it. */
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_TYPE);
}

static void test_truncated(void **state)
{
	ProtobufCMessage *m;
	unsigned type;
	uint32_t plen;
	long n = encode_spawn("h1.42", 2);

	assert_int_equal(msg_peek(buf, 3, MSG_CH_PEER, &type, &plen), -MSG_ERR_SHORT);
	assert_int_equal(msg_decode(buf, (size_t)n - 1, MSG_CH_PEER, &type, &m), -MSG_ERR_SHORT);
	assert_int_equal(msg_peek(buf, (size_t)n - 1, MSG_CH_PEER, &type, &plen), 0);
	assert_int_equal(plen, (uint32_t)n - MSG_HDR_SIZE);
}

static void test_bad_header(void **state)
{
	uint8_t h[MSG_HDR_SIZE] = {0};
	unsigned type;
	uint32_t plen;

	h[4] = 99;   /* no such type */
	assert_int_equal(msg_peek(h, sizeof(h), MSG_CH_PEER, &type, &plen), -MSG_ERR_TYPE);
	h[4] = MSG_PROBE_REQ;
	h[6] = 1;
	assert_int_equal(msg_peek(h, sizeof(h), MSG_CH_PEER, &type, &plen), -MSG_ERR_FLAGS);
	h[6] = 0;
	h[0] = 0xff; h[1] = 0xff;  /* 64 KiB for a 64-byte type */
	assert_int_equal(msg_peek(h, sizeof(h), MSG_CH_PEER, &type, &plen), -MSG_ERR_TOO_BIG);
}

static void test_garbage_payload(void **state)
{
	ProtobufCMessage *m;
	unsigned type;
	uint8_t f[MSG_HDR_SIZE + 4] = {4, 0, 0, 0, MSG_SPAWN, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};

	assert_int_equal(msg_decode(f, sizeof(f), MSG_CH_PEER, &type, &m), -MSG_ERR_DECODE);
}

static void test_semantic(void **state)
{
	ProtobufCMessage *m;
	unsigned type;
	long n;

	n = encode_spawn("not-an-id", 2);
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);
	n = encode_spawn("h1.7", 0);
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);

	Roamnet__Output o = ROAMNET__OUTPUT__INIT;
	o.id = "h2.1";
	o.fd = 3;
	n = msg_encode(MSG_OUTPUT, &o.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);
}

static void test_encode_wrong_type(void **state)
{
	Roamnet__ProbeReq p = ROAMNET__PROBE_REQ__INIT;

	assert_int_equal(msg_encode(MSG_SPAWN, &p.base, buf, sizeof(buf)), -MSG_ERR_TYPE);
	assert_int_equal(msg_encode(MSG_PROBE_REQ, &p.base, buf, 4), -ENOSPC);
}

/* Control requests: what the daemon must never act on. */
static void test_control_run(void **state)
{
	Roamnet__Run r = ROAMNET__RUN__INIT;
	Roamnet__Kill k = ROAMNET__KILL__INIT;
	char *argv[] = {"true"};
	ProtobufCMessage *m;
	unsigned type;
	long n;

	r.argv = argv;
	r.n_argv = 1;
	r.cwd = "/";
	r.umask = 022;
	n = msg_encode(MSG_RUN, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), 0);
	msg_free(m);
	/* Peers never send Run. */
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_TYPE);
	r.cwd = "relative";
	n = msg_encode(MSG_RUN, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_INVALID);
	r.cwd = "/";
	r.umask = 01000;
	n = msg_encode(MSG_RUN, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_INVALID);
	r.umask = 0;
	r.on = "no such host!";
	n = msg_encode(MSG_RUN, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_INVALID);

	k.id = "h1.1";
	k.sig = 65;
	n = msg_encode(MSG_KILL, &k.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_INVALID);
	k.sig = 9;
	n = msg_encode(MSG_KILL, &k.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), 0);
	assert_int_equal(type, MSG_KILL);
	msg_free(m);
}

/* A remote roam kill's request and verdict travel between peers only. */
static void test_kill_req(void **state)
{
	Roamnet__KillReq k = ROAMNET__KILL_REQ__INIT;
	Roamnet__KillRep r = ROAMNET__KILL_REP__INIT;
	ProtobufCMessage *m;
	unsigned type;
	long n;

	k.qid = 7;
	k.id = "h1.3";
	k.sig = 15;
	k.user = "alice";
	n = msg_encode(MSG_KILL_REQ, &k.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), 0);
	assert_int_equal(type, MSG_KILL_REQ);
	msg_free(m);
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_TYPE);
	k.user = "";
	n = msg_encode(MSG_KILL_REQ, &k.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);
	k.user = "alice";
	k.id = "not an id";
	n = msg_encode(MSG_KILL_REQ, &k.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);

	r.qid = 7;
	r.code = 255;
	r.reason = "job h1.3 belongs to another user";
	n = msg_encode(MSG_KILL_REP, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), 0);
	assert_int_equal(type, MSG_KILL_REP);
	msg_free(m);
	r.code = 256;
	n = msg_encode(MSG_KILL_REP, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);
}

/* roam run --near's question to the near job's home, and its answer. */
static void test_locate(void **state)
{
	Roamnet__LocateReq q = ROAMNET__LOCATE_REQ__INIT;
	Roamnet__LocateRep r = ROAMNET__LOCATE_REP__INIT;
	ProtobufCMessage *m;
	unsigned type;
	long n;

	q.qid = 1;
	q.id = "h1.3";
	q.user = "root";
	n = msg_encode(MSG_LOCATE_REQ, &q.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), 0);
	msg_free(m);
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_CONTROL, &type, &m), -MSG_ERR_TYPE);
	r.qid = 1;
	r.host = "h4";
	n = msg_encode(MSG_LOCATE_REP, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), 0);
	assert_int_equal(type, MSG_LOCATE_REP);
	msg_free(m);
	r.host = "not a host";
	n = msg_encode(MSG_LOCATE_REP, &r.base, buf, sizeof(buf));
	assert_int_equal(msg_decode(buf, (size_t)n, MSG_CH_PEER, &type, &m), -MSG_ERR_INVALID);
}

static void test_job_id(void **state)
{
	char host[64];
	uint64_t seq;

	assert_int_equal(msg_parse_job_id("h1.42", host, sizeof(host), &seq), 0);
	assert_string_equal(host, "h1");
	assert_int_equal(seq, 42);
	assert_int_equal(msg_parse_job_id("a.b.3", host, sizeof(host), &seq), -EINVAL);
	assert_int_equal(msg_parse_job_id("h1.", host, sizeof(host), &seq), -EINVAL);
	assert_int_equal(msg_parse_job_id(".5", host, sizeof(host), &seq), -EINVAL);
	assert_int_equal(msg_parse_job_id("h1.5x", host, sizeof(host), &seq), -EINVAL);
	assert_int_equal(msg_parse_job_id("h1.99999999999999999999999", host, sizeof(host), &seq), -EINVAL);
	assert_true(msg_valid_name("gpu-1"));
	assert_false(msg_valid_name("a b"));
	assert_false(msg_valid_name(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_channel),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_garbage_payload),
		cmocka_unit_test(test_semantic),
		cmocka_unit_test(test_encode_wrong_type),
		cmocka_unit_test(test_control_run),
		cmocka_unit_test(test_kill_req),
		cmocka_unit_test(test_locate),
		cmocka_unit_test(test_job_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
