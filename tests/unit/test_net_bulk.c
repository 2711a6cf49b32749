/*
 * The bulk channel: a stream crosses loopback TCP whole and unchanged (1 MiB
 * in odd pieces, 64 MiB in big ones); another key, another token, a flipped
 * byte, a replayed or reordered record are refused by name; a stream cut
 * before its end marker is an error, not an end; bulk_accept drops bad
 * clients and still takes the good one; an image stream (img_writer ->
 * bulk_write, bulk_read -> img_reader) arrives page for page. The record
 * layer is also driven over buffers, for every cipher. Records in clear
 * (AES-256-GMAC) are taken only when both ends allow them, stay readable on
 * the wire, and are authenticated all the same.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "image/image.h"
#include "net/bulk.h"

static uint8_t K[LINK_KEY_SIZE], K2[LINK_KEY_SIZE];
static const char TOK[] = "migration 7 alpha->beta";
static const char TOK2[] = "migration 8 alpha->beta";

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(K, sizeof(K));
	randombytes_buf(K2, sizeof(K2));
	return 0;
}

/* A reproducible stream: byte i of stream seed. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* The destination side, in a thread: accepts, then reads everything. */
struct srv {
	int lfd;
	const uint8_t *key;
	const char *tok;
	int timeout_ms;
	size_t rdsz;            /* bytes asked per bulk_read */
	int accept_rc;
	ssize_t read_rc;        /* the last bulk_read's result: 0 for a clean end */
	uint8_t *out;
	size_t cap, got;
	pthread_t th;
};

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct bulk b;

	s->accept_rc = bulk_accept(&b, s->lfd, s->key, s->tok, strlen(s->tok), s->timeout_ms);
	if (s->accept_rc == 0) {
		for (;;) {
			size_t want = s->cap - s->got < s->rdsz ? s->cap - s->got : s->rdsz;
			ssize_t n;

			if (want == 0)
				want = 1;       /* past the end: a further byte would overflow out */
			n = bulk_read(&b, s->got < s->cap ? s->out + s->got : (uint8_t[1]){ 0 },
				      want);
			s->read_rc = n;
			if (n <= 0)
				break;
			s->got += (size_t)n;
		}
	}
	bulk_close(&b);
	return NULL;
}

/* Starts the destination thread on a fresh port of addr; 0 if addr has
 * no such family here. */
static uint16_t srv_start_at(struct srv *s, const char *addr, const uint8_t *key,
			     const char *tok, size_t cap, size_t rdsz, int timeout_ms)
{
	uint16_t port = 0;

	memset(s, 0, sizeof(*s));
	s->lfd = bulk_listen(addr, &port);
	if (s->lfd == -EADDRNOTAVAIL || s->lfd == -EAFNOSUPPORT)
		return 0;
	assert_true(s->lfd >= 0);
	assert_true(port != 0);
	s->key = key;
	s->tok = tok;
	s->timeout_ms = timeout_ms;
	s->rdsz = rdsz;
	s->cap = cap;
	s->out = cap ? malloc(cap) : NULL;
	assert_true(cap == 0 || s->out);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	return port;
}

static uint16_t srv_start(struct srv *s, const uint8_t *key, const char *tok, size_t cap,
			  size_t rdsz, int timeout_ms)
{
	return srv_start_at(s, "127.0.0.1", key, tok, cap, rdsz, timeout_ms);
}

static void srv_join(struct srv *s)
{
	assert_int_equal(pthread_join(s->th, NULL), 0);
	close(s->lfd);
}

static void srv_free(struct srv *s)
{
	free(s->out);
}

/* Sends n bytes of stream seed in pieces of step bytes, then finishes. */
static void send_stream(uint16_t port, size_t n, size_t step, uint32_t seed)
{
	uint8_t *p = malloc(n);
	struct bulk b;

	assert_non_null(p);
	fill(p, n, seed);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK, strlen(TOK), 5000), 0);
	for (size_t off = 0; off < n; off += step)
		assert_int_equal(bulk_write(&b, p + off, n - off < step ? n - off : step), 0);
	assert_int_equal(bulk_finish(&b), 0);
	assert_int_equal(bulk_write(&b, "x", 1), -BULK_ERR_STATE);
	bulk_close(&b);
	free(p);
}

static void check_stream(struct srv *s, size_t n, uint32_t seed)
{
	uint8_t *want = malloc(n);

	assert_non_null(want);
	fill(want, n, seed);
	assert_int_equal(s->accept_rc, 0);
	assert_int_equal(s->read_rc, 0);
	assert_int_equal(s->got, n);
	assert_memory_equal(s->out, want, n);
	free(want);
}

static void test_round_trip_1m(void **state)
{
	struct srv s;
	uint16_t port;
	size_t n = 1u << 20;

	(void)state;
	/* Odd pieces on both sides: gathered writes, reads served in part. */
	port = srv_start(&s, K, TOK, n, 1000, 5000);
	send_stream(port, n, 777, 1);
	srv_join(&s);
	check_stream(&s, n, 1);
	srv_free(&s);
}

/* bulk_sync returns once the reader has taken every byte written before
 * it (the reader answers by itself, inside bulk_read), and the stream goes
 * on whole after it. */
static void test_sync(void **state)
{
	size_t part = 3u << 20, n = 2 * part;
	uint8_t *p = malloc(n);
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	assert_non_null(p);
	fill(p, n, 9);
	port = srv_start(&s, K, TOK, n, 100000, 5000);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK, strlen(TOK), 5000), 0);
	assert_int_equal(bulk_write(&b, p, part), 0);
	assert_int_equal(bulk_write(&b, p + part, 10), 0);  /* gathered, not yet sent */
	assert_int_equal(bulk_sync(&b, 5000), 0);
	assert_true(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST) >= part + 10);
	assert_int_equal(bulk_write(&b, p + part + 10, n - part - 10), 0);
	assert_int_equal(bulk_sync(&b, 5000), 0);  /* twice is fine */
	assert_int_equal(bulk_finish(&b), 0);
	assert_int_equal(bulk_sync(&b, 5000), -BULK_ERR_STATE);
	bulk_close(&b);
	srv_join(&s);
	check_stream(&s, n, 9);
	srv_free(&s);
	free(p);
}

/* A reader that does not read: bulk_sync gives up at its time limit, and
 * the channel is dead after it. */
static void *lazy_srv(void *arg)
{
	struct srv *s = arg;
	struct bulk b;

	s->accept_rc = bulk_accept(&b, s->lfd, s->key, s->tok, strlen(s->tok), s->timeout_ms);
	usleep(600 * 1000);
	bulk_close(&b);
	return NULL;
}

static void test_sync_times_out(void **state)
{
	struct srv s;
	struct bulk b;
	uint16_t port = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.lfd = bulk_listen("127.0.0.1", &port);
	assert_true(s.lfd >= 0);
	s.key = K;
	s.tok = TOK;
	s.timeout_ms = 5000;
	assert_int_equal(pthread_create(&s.th, NULL, lazy_srv, &s), 0);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK, strlen(TOK), 5000), 0);
	assert_int_equal(bulk_write(&b, "abc", 3), 0);
	assert_int_equal(bulk_sync(&b, 150), -ETIMEDOUT);
	assert_int_equal(bulk_write(&b, "d", 1), -ETIMEDOUT);
	bulk_close(&b);
	srv_join(&s);
	assert_int_equal(s.accept_rc, 0);
}

static void test_round_trip_64m(void **state)
{
	struct srv s;
	uint16_t port;
	size_t n = 64u << 20;

	(void)state;
	/* Big pieces: records sealed from the caller's buffer, opened in it. */
	port = srv_start(&s, K, TOK, n, 8u << 20, 20000);
	send_stream(port, n, (4u << 20) + 3, 2);
	srv_join(&s);
	check_stream(&s, n, 2);
	srv_free(&s);
}

static void test_ipv6(void **state)
{
	uint8_t data[5000];
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	port = srv_start_at(&s, "::1", K, TOK, sizeof(data), sizeof(data), 5000);
	if (port == 0)
		skip();         /* no IPv6 loopback here */
	fill(data, sizeof(data), 9);
	assert_int_equal(bulk_connect(&b, "::1", port, K, TOK, strlen(TOK), 5000), 0);
	assert_int_equal(bulk_write(&b, data, sizeof(data)), 0);
	assert_int_equal(bulk_finish(&b), 0);
	bulk_close(&b);
	srv_join(&s);
	check_stream(&s, sizeof(data), 9);
	srv_free(&s);
}

static void test_wrong_key(void **state)
{
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	port = srv_start(&s, K, TOK, 0, 1, 1500);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K2, TOK, strlen(TOK), 5000),
			 -BULK_ERR_AUTH);
	assert_int_equal(b.fd, -1);
	bulk_close(&b);
	srv_join(&s);
	assert_int_equal(s.accept_rc, -ETIMEDOUT);
	srv_free(&s);
}

static void test_wrong_token(void **state)
{
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	port = srv_start(&s, K, TOK, 0, 1, 1500);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK2, strlen(TOK2), 5000),
			 -BULK_ERR_AUTH);
	bulk_close(&b);
	srv_join(&s);
	assert_int_equal(s.accept_rc, -ETIMEDOUT);
	srv_free(&s);
}

/* A raw TCP client that sends len bytes and hangs up. */
static void raw_client(uint16_t port, const void *p, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (len)
		assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void test_accept_skips_bad_clients(void **state)
{
	uint8_t junk[BULK_CHELLO_SIZE];
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	port = srv_start(&s, K, TOK, 4096, 4096, 10000);
	memset(junk, 'j', sizeof(junk));
	raw_client(port, junk, sizeof(junk));          /* not a bulk hello */
	raw_client(port, BULK_MAGIC, 8);               /* hangs up mid-hello */
	raw_client(port, NULL, 0);                     /* says nothing */
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K2, TOK, strlen(TOK), 5000),
			 -BULK_ERR_AUTH);
	bulk_close(&b);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK2, strlen(TOK2), 5000),
			 -BULK_ERR_AUTH);
	bulk_close(&b);
	send_stream(port, 4096, 100, 3);
	srv_join(&s);
	check_stream(&s, 4096, 3);
	srv_free(&s);
}

/* A client of another protocol version (the one before: 256 KiB records),
 * its hello otherwise well made, gets no reply: the server hangs up on it
 * and goes on to serve the next client. */
static void test_other_version(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint8_t hello[BULK_CHELLO_SIZE], byte;
	struct link l;
	struct srv s;
	int fd;

	(void)state;
	sa.sin_port = htons(srv_start(&s, K, TOK, 4096, 4096, 10000));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memcpy(hello, BULK_MAGIC, 8);
	hello[8] = BULK_VERSION - 1;
	hello[9] = 0;   /* caps: XChaCha20-Poly1305 only */
	link_init(&l, LINK_CLIENT, K);
	link_client_hello(&l, hello + 10);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
	assert_int_equal(read(fd, &byte, 1), 0);
	close(fd);
	send_stream(ntohs(sa.sin_port), 4096, 100, 5);
	srv_join(&s);
	check_stream(&s, 4096, 5);
	srv_free(&s);
}

/* Connects, then hands the raw socket to the test (records made by hand). */
static void connect_raw(struct bulk *b, uint16_t port)
{
	assert_int_equal(bulk_connect(b, "127.0.0.1", port, K, TOK, strlen(TOK), 5000), 0);
}

static void send_raw(struct bulk *b, const void *p, size_t n)
{
	assert_int_equal(write(b->fd, p, n), (ssize_t)n);
}

static void test_flipped_byte(void **state)
{
	uint8_t rec[BULK_HDR_SIZE + 100 + BULK_TAG_SIZE];
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	port = srv_start(&s, K, TOK, 4096, 4096, 5000);
	connect_raw(&b, port);
	fill(rec + BULK_HDR_SIZE, 100, 4);
	bulk_seal(&b, BULK_REC_DATA, rec + BULK_HDR_SIZE, 100, rec, rec + BULK_HDR_SIZE + 100);
	rec[BULK_HDR_SIZE + 50] ^= 0x01;
	send_raw(&b, rec, sizeof(rec));
	srv_join(&s);
	assert_int_equal(s.accept_rc, 0);
	assert_int_equal(s.read_rc, -BULK_ERR_RECORD);
	assert_int_equal(s.got, 0);
	bulk_close(&b);
	srv_free(&s);
}

static void test_replayed_record(void **state)
{
	uint8_t rec[BULK_HDR_SIZE + 100 + BULK_TAG_SIZE], copy[sizeof(rec)];
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	port = srv_start(&s, K, TOK, 4096, 4096, 5000);
	connect_raw(&b, port);
	fill(rec + BULK_HDR_SIZE, 100, 5);
	bulk_seal(&b, BULK_REC_DATA, rec + BULK_HDR_SIZE, 100, rec, rec + BULK_HDR_SIZE + 100);
	memcpy(copy, rec, sizeof(rec));
	send_raw(&b, rec, sizeof(rec));
	send_raw(&b, copy, sizeof(copy));
	srv_join(&s);
	assert_int_equal(s.read_rc, -BULK_ERR_RECORD);
	assert_int_equal(s.got, 100);           /* the first copy was good */
	bulk_close(&b);
	srv_free(&s);
}

static void test_cut_stream_is_error(void **state)
{
	uint8_t data[100000];
	struct srv s;
	struct bulk b;
	uint16_t port;

	(void)state;
	/* Between records: the sender closes without bulk_finish. */
	port = srv_start(&s, K, TOK, sizeof(data), 4096, 5000);
	fill(data, sizeof(data), 6);
	connect_raw(&b, port);
	assert_int_equal(bulk_write(&b, data, sizeof(data)), 0);
	bulk_close(&b);         /* what was gathered is never sent */
	srv_join(&s);
	assert_int_equal(s.accept_rc, 0);
	assert_int_equal(s.read_rc, -BULK_ERR_TRUNC);
	srv_free(&s);

	/* Inside a record: a header and half its body. */
	port = srv_start(&s, K, TOK, sizeof(data), 4096, 5000);
	connect_raw(&b, port);
	{
		uint8_t rec[BULK_HDR_SIZE + 1000 + BULK_TAG_SIZE];

		bulk_seal(&b, BULK_REC_DATA, rec + BULK_HDR_SIZE, 1000, rec,
			  rec + BULK_HDR_SIZE + 1000);
		send_raw(&b, rec, BULK_HDR_SIZE + 500);
	}
	bulk_close(&b);
	srv_join(&s);
	assert_int_equal(s.read_rc, -BULK_ERR_TRUNC);
	assert_int_equal(s.got, 0);
	srv_free(&s);
}

static void test_connect_refused(void **state)
{
	struct bulk b;
	uint16_t port = 0;
	int lfd = bulk_listen("127.0.0.1", &port);

	(void)state;
	assert_true(lfd >= 0);
	close(lfd);             /* nobody listens there now */
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK, strlen(TOK), 2000),
			 -ECONNREFUSED);
	bulk_close(&b);
	assert_int_equal(bulk_connect(&b, "not-an-address", port, K, TOK, strlen(TOK), 2000),
			 -EINVAL);
	bulk_close(&b);
	assert_string_equal(bulk_strerror(-BULK_ERR_TRUNC),
			    "bulk stream cut before its end marker");
}

/* The image stream over the channel, as migration uses it: bulk_write and
 * bulk_read are the writer's and reader's callbacks. */
#define IMG_TEST_PAGES 4096

struct img_srv {
	int lfd;
	int rc;                 /* 0: every page came back, the stream ended cleanly */
	pthread_t th;
};

static void *img_srv_main(void *arg)
{
	struct img_srv *s = arg;
	struct img_reader r;
	struct img_record rec;
	struct img_pages pg;
	struct bulk b;
	uint8_t *want = malloc(4096);
	uint32_t seen = 0;
	int rc;

	s->rc = -1;
	if (!want || bulk_accept(&b, s->lfd, K, TOK, strlen(TOK), 5000) != 0)
		goto out;
	if (img_reader_init(&r, bulk_read, &b) != 0)
		goto close;
	while ((rc = img_read_record(&r, &rec)) == 1) {
		if (rec.type != IMG_REC_PAGES)
			continue;
		if (img_decode_pages(&r, &rec, &pg) != 0)
			break;
		for (uint32_t i = 0; i < pg.npages; i++) {
			fill(want, 4096, (uint32_t)(pg.addr / 4096) + i);
			if (memcmp(pg.data + (size_t)i * 4096, want, 4096))
				goto fini;
		}
		seen += pg.npages;
	}
	if (rc == 0 && seen == IMG_TEST_PAGES && bulk_read(&b, want, 1) == 0)
		s->rc = 0;
fini:
	img_reader_fini(&r);
close:
	bulk_close(&b);
out:
	free(want);
	return NULL;
}

static void test_image_stream(void **state)
{
	uint8_t *pages = malloc((size_t)IMG_MAX_PAGES_PER_RECORD * 4096);
	struct img_srv s = { 0 };
	struct img_writer w;
	struct bulk b;
	uint16_t port = 0;

	(void)state;
	assert_non_null(pages);
	s.lfd = bulk_listen("127.0.0.1", &port);
	assert_true(s.lfd >= 0);
	assert_int_equal(pthread_create(&s.th, NULL, img_srv_main, &s), 0);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK, strlen(TOK), 5000), 0);
	assert_int_equal(img_writer_init(&w, bulk_write, &b, IMG_CODEC_NONE), 0);
	assert_int_equal(img_write_record(&w, IMG_REC_HEADER, "hdr", 3), 0);
	for (uint32_t p = 0; p < IMG_TEST_PAGES; p += IMG_MAX_PAGES_PER_RECORD) {
		for (uint32_t i = 0; i < IMG_MAX_PAGES_PER_RECORD; i++)
			fill(pages + (size_t)i * 4096, 4096, 0x1000 + p + i);
		assert_int_equal(img_write_pages(&w, (uint64_t)(0x1000 + p) * 4096, pages,
						 IMG_MAX_PAGES_PER_RECORD), 0);
	}
	assert_int_equal(img_write_commit(&w), 0);
	assert_int_equal(bulk_finish(&b), 0);
	img_writer_fini(&w);
	assert_int_equal(pthread_join(s.th, NULL), 0);
	assert_int_equal(s.rc, 0);
	bulk_close(&b);
	close(s.lfd);
	free(pages);
}

/* The record layer over buffers, both ciphers. */
static void records(int cipher)
{
	uint8_t k1[32], k2[32], buf[3][BULK_HDR_SIZE + 64 + BULK_TAG_SIZE], tmp[sizeof(buf[0])];
	struct bulk tx, rx, rx2;
	struct bulk_rec r;
	size_t rl = sizeof(buf[0]);

	randombytes_buf(k1, sizeof(k1));
	randombytes_buf(k2, sizeof(k2));
	assert_int_equal(bulk_init_keys(&tx, cipher, k1, k2), 0);
	assert_int_equal(bulk_init_keys(&rx, cipher, k2, k1), 0);
	for (int i = 0; i < 3; i++) {
		memset(buf[i] + BULK_HDR_SIZE, 'a' + i, 64);
		bulk_seal(&tx, BULK_REC_DATA, buf[i] + BULK_HDR_SIZE, 64, buf[i],
			  buf[i] + BULK_HDR_SIZE + 64);
		/* In clear the data is left as it was; sealed, it is not (all 64
		 * bytes: one byte of ciphertext matches by chance once in 256). */
		uint8_t plain[64];
		memset(plain, 'a' + i, sizeof(plain));
		assert_int_equal(!memcmp(buf[i] + BULK_HDR_SIZE, plain, sizeof(plain)), cipher == BULK_AES256GMAC);
	}
	/* Incomplete input asks for more, and changes nothing. */
	assert_int_equal(bulk_take(&rx, buf[0], BULK_HDR_SIZE - 1, &r), 1);
	assert_int_equal(bulk_take(&rx, buf[0], rl - 1, &r), 1);
	/* Reordered: record 1 first fails (on a copy: a failed open wipes
	 * what it was opening). */
	memcpy(&rx2, &rx, sizeof(rx));
	memcpy(tmp, buf[1], rl);
	assert_int_equal(bulk_take(&rx2, tmp, rl, &r), -BULK_ERR_RECORD);
	/* In order: opens in place. */
	assert_int_equal(bulk_take(&rx, buf[0], rl, &r), 0);
	assert_int_equal(r.type, BULK_REC_DATA);
	assert_int_equal(r.len, 64);
	assert_int_equal(r.used, rl);
	assert_int_equal(r.data[0], 'a');
	/* Replayed (record 0 again, resealed bytes restored): fails. */
	bulk_close(&tx);
	assert_int_equal(bulk_init_keys(&tx, cipher, k1, k2), 0);
	memset(buf[0] + BULK_HDR_SIZE, 'a', 64);
	bulk_seal(&tx, BULK_REC_DATA, buf[0] + BULK_HDR_SIZE, 64, buf[0],
		  buf[0] + BULK_HDR_SIZE + 64);
	assert_int_equal(bulk_take(&rx, buf[0], rl, &r), -BULK_ERR_RECORD);
	/* A header changed: the length or type is refused, or the tag fails. */
	buf[1][4] = 9;
	assert_int_equal(bulk_take(&rx, buf[1], rl, &r), -BULK_ERR_FORMAT);
	buf[1][4] = BULK_REC_DATA;
	buf[1][7] = 1;
	assert_int_equal(bulk_take(&rx, buf[1], rl, &r), -BULK_ERR_FORMAT);
	buf[1][7] = 0;
	assert_int_equal(bulk_take(&rx, buf[1], rl, &r), 0);
	assert_int_equal(r.data[63], 'b');
	/* A flipped data bit (in clear too), then a flipped tag bit. */
	memcpy(&rx2, &rx, sizeof(rx));
	memcpy(tmp, buf[2], rl);
	tmp[BULK_HDR_SIZE + 10] ^= 0x01;
	assert_int_equal(bulk_take(&rx2, tmp, rl, &r), -BULK_ERR_RECORD);
	buf[2][rl - 1] ^= 0x80;
	assert_int_equal(bulk_take(&rx, buf[2], rl, &r), -BULK_ERR_RECORD);
	bulk_close(&tx);
	bulk_close(&rx);        /* rx2 shared its contexts: not closed */
}

static void test_records_aes(void **state)
{
	(void)state;
	if (!crypto_aead_aes256gcm_is_available())
		skip();
	records(BULK_AES256OCB);
}

static void test_records_gmac(void **state)
{
	(void)state;
	if (!crypto_aead_aes256gcm_is_available())
		skip();
	records(BULK_AES256GMAC);
}

static void test_records_xchacha(void **state)
{
	(void)state;
	records(BULK_XCHACHA20POLY1305);
}

/* OpenSSL's AES-256-OCB (RFC 7253), another implementation than the
 * channel's (libgcrypt): opens c[0..n) with hdr as associated data into
 * out, 0 when the tag holds. */
static int ocb_open_elsewhere(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *hdr,
			      const uint8_t *c, int n, const uint8_t *tag, uint8_t *out)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int len, fl, ok;

	assert_non_null(x);
	ok = EVP_DecryptInit_ex(x, EVP_aes_256_ocb(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, BULK_TAG_SIZE, (void *)tag) == 1 &&
	     EVP_DecryptInit_ex(x, NULL, NULL, key, nonce) == 1 &&
	     EVP_DecryptUpdate(x, NULL, &len, hdr, BULK_HDR_SIZE) == 1 &&
	     EVP_DecryptUpdate(x, out, &len, c, n) == 1 && EVP_DecryptFinal_ex(x, out + len, &fl) == 1 &&
	     len + fl == n;
	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -1;
}

/* The AES records are standard: AES-256-OCB encrypted (another library
 * opens them), and in clear (GMAC) the tag of an empty AES-256-GCM message
 * with the header and the data as associated data (libsodium checks it);
 * the nonce is the record counter. */
static void aes_standard(int cipher)
{
	uint8_t k1[32], k2[32], hdr[BULK_HDR_SIZE], tag[BULK_TAG_SIZE], p[1000], c[1000], o[1000];
	uint8_t ad[BULK_HDR_SIZE + sizeof(p)];
	uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES] = { 1 };   /* the second record */
	struct bulk b;

	if (!crypto_aead_aes256gcm_is_available())
		skip();
	randombytes_buf(k1, sizeof(k1));
	randombytes_buf(k2, sizeof(k2));
	randombytes_buf(p, sizeof(p));
	assert_int_equal(bulk_init_keys(&b, cipher, k1, k2), 0);
	bulk_seal(&b, BULK_REC_END, NULL, 0, hdr, tag);
	memcpy(c, p, sizeof(p));
	bulk_seal(&b, BULK_REC_DATA, c, sizeof(c), hdr, tag);
	if (cipher == BULK_AES256OCB) {
		assert_memory_not_equal(c, p, sizeof(p));
		assert_int_equal(ocb_open_elsewhere(k1, nonce, hdr, c, sizeof(c), tag, o), 0);
		assert_memory_equal(o, p, sizeof(p));
		c[sizeof(c) - 1] ^= 1;
		assert_int_equal(ocb_open_elsewhere(k1, nonce, hdr, c, sizeof(c), tag, o), -1);
	} else {
		assert_memory_equal(c, p, sizeof(p));
		memcpy(ad, hdr, sizeof(hdr));
		memcpy(ad + sizeof(hdr), p, sizeof(p));
		assert_int_equal(crypto_aead_aes256gcm_decrypt_detached(c, NULL, c, 0, tag, ad, sizeof(ad), nonce, k1), 0);
		ad[sizeof(ad) - 1] ^= 1;
		assert_int_equal(crypto_aead_aes256gcm_decrypt_detached(c, NULL, c, 0, tag, ad, sizeof(ad), nonce, k1), -1);
	}
	bulk_close(&b);
}

static void test_aes_is_standard_ocb(void **state)
{
	(void)state;
	aes_standard(BULK_AES256OCB);
}

static void test_gmac_is_standard(void **state)
{
	(void)state;
	aes_standard(BULK_AES256GMAC);
}

/* A channel goes in clear only when both ends allow it: the server, in a
 * child of its own (bulk_allow_clear is per process), reads 1 MiB and exits
 * with the cipher it chose, the client checks its own and sends. */
static void clear_when(int client_ok, int server_ok, int want)
{
	size_t n = 1 << 20;
	uint8_t *p = malloc(n), *got = malloc(n);
	uint16_t port = 0;
	int lfd = bulk_listen("127.0.0.1", &port), status;
	struct bulk b;
	pid_t pid;

	assert_non_null(p);
	assert_non_null(got);
	assert_true(lfd >= 0);
	fill(p, n, 41);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t have = 0;
		ssize_t r = 1;
		bulk_allow_clear(server_ok);
		if (bulk_accept(&b, lfd, K, TOK, strlen(TOK), 5000))
			_exit(100);
		while (have < n && (r = bulk_read(&b, got + have, n - have)) > 0)
			have += (size_t)r;
		if (have != n || memcmp(got, p, n) || bulk_read(&b, got, 1) != 0)
			_exit(101);
		_exit(b.cipher);
	}
	close(lfd);
	bulk_allow_clear(client_ok);
	assert_int_equal(bulk_connect(&b, "127.0.0.1", port, K, TOK, strlen(TOK), 5000), 0);
	bulk_allow_clear(0);
	assert_int_equal(b.cipher, want);
	assert_int_equal(bulk_write(&b, p, n), 0);
	assert_int_equal(bulk_finish(&b), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	bulk_close(&b);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), want);
	free(p);
	free(got);
}

static void test_clear_only_when_both_allow(void **state)
{
	(void)state;
	if (!crypto_aead_aes256gcm_is_available())
		skip();
	clear_when(1, 1, BULK_AES256GMAC);
	clear_when(1, 0, BULK_AES256OCB);
	clear_when(0, 1, BULK_AES256OCB);
	clear_when(0, 0, BULK_AES256OCB);
}

static void test_header_limits(void **state)
{
	uint8_t h[BULK_HDR_SIZE] = { 0 };
	unsigned type;
	size_t len;

	(void)state;
	h[4] = BULK_REC_DATA;
	assert_int_equal(bulk_hdr_parse(h, &type, &len), -BULK_ERR_FORMAT);   /* empty data */
	h[0] = 1;
	assert_int_equal(bulk_hdr_parse(h, &type, &len), 0);
	assert_int_equal(len, 1);
	h[0] = 0; h[1] = 0; h[2] = BULK_MAX_RECORD >> 16; h[3] = 0;
	assert_int_equal(bulk_hdr_parse(h, &type, &len), 0);
	assert_int_equal(len, BULK_MAX_RECORD);
	h[0] = 1;
	assert_int_equal(bulk_hdr_parse(h, &type, &len), -BULK_ERR_FORMAT);   /* one past */
	memset(h, 0, sizeof(h));
	h[4] = BULK_REC_END;
	assert_int_equal(bulk_hdr_parse(h, &type, &len), 0);
	assert_int_equal(type, BULK_REC_END);
	h[0] = 1;
	assert_int_equal(bulk_hdr_parse(h, &type, &len), -BULK_ERR_FORMAT);   /* END with bytes */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_1m),
		cmocka_unit_test(test_round_trip_64m),
		cmocka_unit_test(test_sync),
		cmocka_unit_test(test_sync_times_out),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_wrong_token),
		cmocka_unit_test(test_accept_skips_bad_clients),
		cmocka_unit_test(test_other_version),
		cmocka_unit_test(test_flipped_byte),
		cmocka_unit_test(test_replayed_record),
		cmocka_unit_test(test_cut_stream_is_error),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_image_stream),
		cmocka_unit_test(test_records_aes),
		cmocka_unit_test(test_records_gmac),
		cmocka_unit_test(test_records_xchacha),
		cmocka_unit_test(test_aes_is_standard_ocb),
		cmocka_unit_test(test_gmac_is_standard),
		cmocka_unit_test(test_clear_only_when_both_allow),
		cmocka_unit_test(test_header_limits),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
