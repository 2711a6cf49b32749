/*
 * The peer link: a handshake with the right key succeeds; a wrong key, a
 * replayed handshake, a replayed, reordered or altered record all fail.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/key.h"
#include "net/link.h"

static uint8_t K[LINK_KEY_SIZE], K2[LINK_KEY_SIZE];

static int setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(K, sizeof(K));
	randombytes_buf(K2, sizeof(K2));
	return 0;
}

/* Runs a handshake; returns the first error or 0. */
static int handshake(struct link *c, struct link *s, const uint8_t *kc, const uint8_t *ks)
{
	uint8_t hello[LINK_HELLO_SIZE], reply[LINK_REPLY_SIZE], fin[LINK_FINISH_SIZE];
	int err;

	link_init(c, LINK_CLIENT, kc);
	link_init(s, LINK_SERVER, ks);
	link_client_hello(c, hello);
	if ((err = link_server_reply(s, hello, reply)))
		return err;
	if ((err = link_client_finish(c, reply, fin)))
		return err;
	return link_server_accept(s, fin);
}

static void test_ok_both_ways(void **state)
{
	struct link c, s;
	uint8_t rec[128], out[128];

	assert_int_equal(handshake(&c, &s, K, K), 0);
	assert_int_equal(link_seal(&c, (const uint8_t *)"ping", 4, rec), 0);
	assert_int_equal(link_open(&s, rec, link_record_size(4), out), 4);
	assert_memory_equal(out, "ping", 4);
	assert_int_equal(link_seal(&s, (const uint8_t *)"pong!", 5, rec), 0);
	assert_int_equal(link_open(&c, rec, link_record_size(5), out), 5);
	assert_memory_equal(out, "pong!", 5);
}

static void test_wrong_key_client(void **state)
{
	struct link c, s;

	/* The server holds K, the client K2: the client finds the server's
	 * proof wrong (it cannot know K). */
	assert_int_equal(handshake(&c, &s, K2, K), -LINK_ERR_AUTH);
}

static void test_wrong_key_server(void **state)
{
	struct link c, s;
	uint8_t hello[LINK_HELLO_SIZE], reply[LINK_REPLY_SIZE], fin[LINK_FINISH_SIZE];

	/* A client without K that ignores the server's proof still cannot
	 * produce FINISH. */
	link_init(&c, LINK_CLIENT, K2);
	link_init(&s, LINK_SERVER, K);
	link_client_hello(&c, hello);
	assert_int_equal(link_server_reply(&s, hello, reply), 0);
	memset(fin, 0x5a, sizeof(fin));
	assert_int_equal(link_server_accept(&s, fin), -LINK_ERR_AUTH);
	assert_false(s.established);
}

static void test_replayed_handshake(void **state)
{
	struct link c, s, s2;
	uint8_t hello[LINK_HELLO_SIZE], reply[LINK_REPLY_SIZE], fin[LINK_FINISH_SIZE];
	uint8_t reply2[LINK_REPLY_SIZE];

	link_init(&c, LINK_CLIENT, K);
	link_init(&s, LINK_SERVER, K);
	link_client_hello(&c, hello);
	assert_int_equal(link_server_reply(&s, hello, reply), 0);
	assert_int_equal(link_client_finish(&c, reply, fin), 0);
	assert_int_equal(link_server_accept(&s, fin), 0);
	/* An eavesdropper replays HELLO and FINISH to a fresh server. */
	link_init(&s2, LINK_SERVER, K);
	assert_int_equal(link_server_reply(&s2, hello, reply2), 0);
	assert_int_equal(link_server_accept(&s2, fin), -LINK_ERR_AUTH);
}

static void test_bad_magic(void **state)
{
	struct link s;
	uint8_t hello[LINK_HELLO_SIZE] = "GET / HTTP/1.1\r\n", reply[LINK_REPLY_SIZE];

	link_init(&s, LINK_SERVER, K);
	assert_int_equal(link_server_reply(&s, hello, reply), -LINK_ERR_MAGIC);
}

static void test_replay_reorder_tamper(void **state)
{
	struct link c, s;
	uint8_t r1[64], r2[64], out[64];
	size_t n = link_record_size(3);

	assert_int_equal(handshake(&c, &s, K, K), 0);
	assert_int_equal(link_seal(&c, (const uint8_t *)"one", 3, r1), 0);
	assert_int_equal(link_seal(&c, (const uint8_t *)"two", 3, r2), 0);
	/* Reordered: the second record first. */
	assert_int_equal(link_open(&s, r2, n, out), -LINK_ERR_RECORD);
	assert_int_equal(link_open(&s, r1, n, out), 3);
	/* Replayed. */
	assert_int_equal(link_open(&s, r1, n, out), -LINK_ERR_RECORD);
	/* Altered. */
	r2[6] ^= 1;
	assert_int_equal(link_open(&s, r2, n, out), -LINK_ERR_RECORD);
	r2[6] ^= 1;
	assert_int_equal(link_open(&s, r2, n, out), 3);
	/* Sealing before the handshake is refused. */
	link_init(&c, LINK_CLIENT, K);
	assert_int_equal(link_seal(&c, out, 1, r1), -LINK_ERR_STATE);
}

static void test_record_peek(void **state)
{
	uint8_t h[4] = {0xff, 0xff, 0xff, 0x7f};
	size_t n;

	assert_int_equal(link_record_peek(h, 3, &n), 1);
	assert_int_equal(link_record_peek(h, 4, &n), -LINK_ERR_SIZE);
	h[0] = 2; h[1] = h[2] = h[3] = 0;
	assert_int_equal(link_record_peek(h, 4, &n), -LINK_ERR_SIZE);
}

static void test_key_file(void **state)
{
	char dir[] = "/tmp/roam-keytest.XXXXXX", path[64];
	uint8_t k[LINK_KEY_SIZE];
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	assert_int_equal(key_generate(path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(key_generate(path), -EEXIST);
	assert_int_equal(key_load(path, k), 0);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(key_load(path, k), -KEY_ERR_MODE);
	assert_int_equal(chmod(path, 0600), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("abcd\n", f);
	fclose(f);
	assert_int_equal(key_load(path, k), -KEY_ERR_FORMAT);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_both_ways),
		cmocka_unit_test(test_wrong_key_client),
		cmocka_unit_test(test_wrong_key_server),
		cmocka_unit_test(test_replayed_handshake),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_replay_reorder_tamper),
		cmocka_unit_test(test_record_peek),
		cmocka_unit_test(test_key_file),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
