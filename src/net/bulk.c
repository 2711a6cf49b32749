/*
 * The bulk channel (see bulk.h): the record layer over buffers first, then
 * the sockets, the handshake, and the blocking stream calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <gcrypt.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "net/bulk.h"
#include "sys/clock.h"

/* Socket buffers asked for: a 1 MiB record should never wait for room. */
#define BULK_SOCKBUF (8 << 20)

/* A write piece at least this big is sealed from the caller's buffer
 * rather than gathered (copied) first. */
#define BULK_DIRECT_MIN (64u << 10)

/* caps bits in the client's hello */
#define CAP_AES   0x01
#define CAP_CLEAR 0x02          /* would take AES-256-GMAC: records in clear */

static int clear_ok;            /* bulk_allow_clear */

void bulk_allow_clear(int on)
{
	clear_ok = on != 0;
}

const char *bulk_cipher_name(int cipher)
{
	switch (cipher) {
	case BULK_XCHACHA20POLY1305: return "encrypted (XChaCha20-Poly1305)";
	case BULK_AES256OCB: return "encrypted (AES-256-OCB)";
	case BULK_AES256GMAC: return "in clear, authenticated (AES-256-GMAC)";
	default: return "none";
	}
}

const char *bulk_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case BULK_ERR_MAGIC: return "bulk peer does not speak this protocol or version";
	case BULK_ERR_AUTH: return "bulk handshake refused: other cluster key or other token";
	case BULK_ERR_RECORD: return "bulk record failed authentication (altered, replayed or reordered)";
	case BULK_ERR_FORMAT: return "bulk record header out of range";
	case BULK_ERR_TRUNC: return "bulk stream cut before its end marker";
	case BULK_ERR_STATE: return "bulk channel used out of order";
	default: break;
	}
	if (err > LINK_ERR_BASE && err < LINK_ERR_BASE + 100)
		return link_strerror(err);
	return strerror(err);
}

/* ---- the record layer ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff; p[1] = v >> 8 & 0xff; p[2] = v >> 16 & 0xff; p[3] = v >> 24 & 0xff;
}

/* The nonce is the record counter, little-endian, zero-padded; the AES
 * ciphers use its first 12 bytes, XChaCha20-Poly1305 all 24. */
static void seq_nonce(uint64_t seq, uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(n, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		n[i] = seq >> (8 * i) & 0xff;
}

static int gcrypt_ok;

/* libgcrypt's initialisation, once per process: it is then thread-safe. */
static void gcrypt_start(void)
{
	gcry_cipher_hd_t h;

	if (!gcry_check_version(GCRYPT_VERSION))
		return;
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	/* OCB may be refused (a FIPS mode): the channel then takes XChaCha20. */
	if (!gcry_cipher_open(&h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_OCB, 0)) {
		gcry_cipher_close(h);
		gcrypt_ok = 1;
	}
}

/* Whether this process runs the AES ciphers: in hardware (AES-NI), with
 * libgcrypt ready. */
static int aes_ok(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available())
		return 0;
	pthread_once(&once, gcrypt_start);
	return gcrypt_ok;
}

/* A libgcrypt AES-256-OCB handle with its key set; NULL when it fails. */
static gcry_cipher_hd_t ocb_new(const uint8_t key[32])
{
	gcry_cipher_hd_t h;

	if (gcry_cipher_open(&h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_OCB, 0))
		return NULL;
	if (gcry_cipher_setkey(h, key, 32)) {
		gcry_cipher_close(h);
		return NULL;
	}
	return h;
}

/* An OpenSSL AES-256-GCM context with key set, for the tags of records in
 * clear (GMAC); NULL when out of memory. */
static EVP_CIPHER_CTX *gmac_new(const uint8_t key[32], int seal)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();

	if (x && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, key, NULL, seal) != 1) {
		EVP_CIPHER_CTX_free(x);
		x = NULL;
	}
	return x;
}

void bulk_preload(void)
{
	static const uint8_t zero[32];

	if (aes_ok()) {
		gcry_cipher_close(ocb_new(zero));
		EVP_CIPHER_CTX_free(gmac_new(zero, 1));
	}
}

int bulk_init_keys(struct bulk *b, int cipher, const uint8_t tx[32], const uint8_t rx[32])
{
	sodium_memzero(b, sizeof(*b));
	b->fd = -1;
	b->cipher = cipher;
	memcpy(b->tx_key, tx, 32);
	memcpy(b->rx_key, rx, 32);
	if (cipher == BULK_AES256OCB) {
		if (!aes_ok())
			return -ENOSYS;
		b->tx_ocb = ocb_new(tx);
		b->rx_ocb = ocb_new(rx);
		if (!b->tx_ocb || !b->rx_ocb)
			return -ENOMEM;
	} else if (cipher == BULK_AES256GMAC) {
		b->tx_gmac = gmac_new(tx, 1);
		b->rx_gmac = gmac_new(rx, 0);
		if (!b->tx_gmac || !b->rx_gmac)
			return -ENOMEM;
	}
	return 0;
}

/* One AES-256-OCB record with libgcrypt, in place or not, hdr as associated
 * data. Sealing writes the tag; opening checks it (0, or -1 when it fails). */
static int ocb_record(gcry_cipher_hd_t h, int seal, const uint8_t nonce[12], const uint8_t *hdr,
		      const uint8_t *src, uint8_t *dst, size_t n, uint8_t tag[BULK_TAG_SIZE])
{
	/* In place, libgcrypt wants no input buffer. */
	const uint8_t *in = src == dst ? NULL : src;
	size_t inlen = in ? n : 0;

	if (gcry_cipher_setiv(h, nonce, 12) || gcry_cipher_authenticate(h, hdr, BULK_HDR_SIZE) ||
	    gcry_cipher_final(h))
		return -1;
	if (seal ? gcry_cipher_encrypt(h, dst, n, in, inlen) || gcry_cipher_gettag(h, tag, BULK_TAG_SIZE)
		 : gcry_cipher_decrypt(h, dst, n, in, inlen) || gcry_cipher_checktag(h, tag, BULK_TAG_SIZE))
		return -1;
	return 0;
}

/* One record in clear with OpenSSL: the tag of an empty AES-256-GCM message
 * with hdr and the data as associated data (GMAC). Sealing writes the tag;
 * opening checks it (0, or -1 when it fails). */
static int gmac_record(EVP_CIPHER_CTX *x, int seal, const uint8_t nonce[12], const uint8_t *hdr,
		       const uint8_t *data, size_t n, uint8_t tag[BULK_TAG_SIZE])
{
	uint8_t none[1];
	int len;

	if (EVP_CipherInit_ex(x, NULL, NULL, NULL, nonce, seal) != 1 ||
	    EVP_CipherUpdate(x, NULL, &len, hdr, BULK_HDR_SIZE) != 1 ||
	    (n && EVP_CipherUpdate(x, NULL, &len, data, (int)n) != 1))
		return -1;
	if (!seal && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, BULK_TAG_SIZE, tag) != 1)
		return -1;
	if (EVP_CipherFinal_ex(x, none, &len) != 1)
		return -1;
	if (seal && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, BULK_TAG_SIZE, tag) != 1)
		return -1;
	return 0;
}

/* Seals src[0..n) into dst (which may be src) as the next record; in
 * clear, dst is left alone (the caller sends src). */
static void seal_to(struct bulk *b, unsigned type, const uint8_t *src, uint8_t *dst, size_t n,
		    uint8_t hdr[BULK_HDR_SIZE], uint8_t tag[BULK_TAG_SIZE])
{
	static const uint8_t none[1];
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long tlen;

	if (n == 0)
		src = dst = (uint8_t *)none;    /* never written: the cipher has no bytes to touch */
	put_u32(hdr, (uint32_t)n);
	hdr[4] = (uint8_t)type;
	hdr[5] = hdr[6] = hdr[7] = 0;
	seq_nonce(b->tx_seq++, nonce);
	/* The AES calls cannot fail with a context that bulk_init_keys made. */
	if (b->cipher == BULK_AES256OCB) {
		if (ocb_record(b->tx_ocb, 1, nonce, hdr, src, dst, n, tag) < 0)
			abort();
	} else if (b->cipher == BULK_AES256GMAC) {
		if (gmac_record(b->tx_gmac, 1, nonce, hdr, src, n, tag) < 0)
			abort();
	} else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(dst, tag, &tlen, src, n, hdr,
								    BULK_HDR_SIZE, NULL, nonce,
								    b->tx_key);
}

void bulk_seal(struct bulk *b, unsigned type, uint8_t *p, size_t n,
	       uint8_t hdr[BULK_HDR_SIZE], uint8_t tag[BULK_TAG_SIZE])
{
	seal_to(b, type, p, p, n, hdr, tag);
}

int bulk_hdr_parse(const uint8_t hdr[BULK_HDR_SIZE], unsigned *type, size_t *len)
{
	uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		     (uint32_t)hdr[3] << 24;

	if (hdr[5] || hdr[6] || hdr[7])
		return -BULK_ERR_FORMAT;
	switch (hdr[4]) {
	case BULK_REC_DATA:
		if (n == 0 || n > BULK_MAX_RECORD)
			return -BULK_ERR_FORMAT;
		break;
	case BULK_REC_END:
	case BULK_REC_READY:
	case BULK_REC_SYNC:
	case BULK_REC_SYNCED:
		if (n != 0)
			return -BULK_ERR_FORMAT;
		break;
	default:
		return -BULK_ERR_FORMAT;
	}
	*type = hdr[4];
	*len = n;
	return 0;
}

int bulk_open(struct bulk *b, const uint8_t hdr[BULK_HDR_SIZE], uint8_t *c, size_t n,
	      const uint8_t tag[BULK_TAG_SIZE])
{
	static uint8_t none[1];
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	int rc;

	if (n == 0)
		c = none;
	seq_nonce(b->rx_seq, nonce);
	if (b->cipher == BULK_AES256OCB)
		rc = ocb_record(b->rx_ocb, 0, nonce, hdr, c, c, n, (uint8_t *)tag);
	else if (b->cipher == BULK_AES256GMAC)
		rc = gmac_record(b->rx_gmac, 0, nonce, hdr, c, n, (uint8_t *)tag);
	else
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(c, NULL, c, n, tag, hdr,
									 BULK_HDR_SIZE, nonce,
									 b->rx_key);
	if (rc != 0)
		return -BULK_ERR_RECORD;
	b->rx_seq++;
	return 0;
}

int bulk_take(struct bulk *b, uint8_t *buf, size_t len, struct bulk_rec *rec)
{
	unsigned type;
	size_t n;
	int rc;

	if (len < BULK_HDR_SIZE)
		return 1;
	if ((rc = bulk_hdr_parse(buf, &type, &n)))
		return rc;
	if (len - BULK_HDR_SIZE < n + BULK_TAG_SIZE)
		return 1;
	if ((rc = bulk_open(b, buf, buf + BULK_HDR_SIZE, n, buf + BULK_HDR_SIZE + n)))
		return rc;
	rec->type = type;
	rec->data = buf + BULK_HDR_SIZE;
	rec->len = n;
	rec->used = BULK_HDR_SIZE + n + BULK_TAG_SIZE;
	return 0;
}

/* ---- sockets ---- */

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? INT64_MAX : (int64_t)mono_ms() + timeout_ms;
}

/* Waits until fd is ready for ev or the deadline passes. Readiness
 * includes errors and hang-ups: the I/O that follows reports them. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = ev };
		int64_t left = deadline == INT64_MAX ? -1 : deadline - (int64_t)mono_ms();
		int n;

		if (deadline != INT64_MAX && left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int resolve(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints, *ai;
	char ps[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if (!addr || getaddrinfo(addr, ps, &hints, &ai) != 0)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/*
 * Bulk transfer settings; each is a wish, refused ones are ignored. Big
 * buffers so that a whole record is in flight while the next is sealed;
 * Nagle stays on (the records are large, and it merges the small handshake
 * tail); keepalive and a user timeout so that a peer host that vanishes is
 * noticed in about half a minute, while a live peer may stay idle for as
 * long as it likes (a blocking worker has no other way to learn of it).
 */
static void tune(int fd)
{
	int big = BULK_SOCKBUF, off = 0, on = 1, idle = 10, intvl = 5, cnt = 3;
	unsigned user_ms = 30000;

	if (big && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (big && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int bulk_listen(const char *bind_addr, uint16_t *port_out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, on = 1, rc;

	if ((rc = resolve(bind_addr, *port_out, &ss, &sl)))
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	tune(fd);       /* before listen: accepted sockets inherit the buffers and window scale */
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 8) < 0)
		goto err;
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto err;
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
err:
	rc = -errno;
	close(fd);
	return rc;
}

/* Handshake I/O, on a non-blocking socket, bounded by a deadline. The peer
 * closing mid-handshake is -ECONNRESET. */
static int hs_send(int fd, const void *buf, size_t len, int64_t deadline)
{
	const uint8_t *p = buf;
	int rc;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			if ((rc = wait_fd(fd, POLLOUT, deadline)))
				return rc;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int hs_recv(int fd, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;
	int rc;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			if ((rc = wait_fd(fd, POLLIN, deadline)))
				return rc;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int link_to_bulk(int rc)
{
	if (rc == -LINK_ERR_MAGIC)
		return -BULK_ERR_MAGIC;
	if (rc == -LINK_ERR_AUTH)
		return -BULK_ERR_AUTH;
	return rc;
}

/* Kb = H_K("roam-bulk" | version | caps | u32le toklen | token). */
static void bulk_key(const uint8_t key[LINK_KEY_SIZE], uint8_t caps, const void *token,
		     size_t toklen, uint8_t kb[LINK_KEY_SIZE])
{
	static const char label[] = "roam-bulk";
	crypto_generichash_state st;
	uint8_t pre[6] = { BULK_VERSION, caps };

	put_u32(pre + 2, (uint32_t)toklen);
	crypto_generichash_init(&st, key, LINK_KEY_SIZE, LINK_KEY_SIZE);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&st, pre, sizeof(pre));
	if (toklen)
		crypto_generichash_update(&st, token, toklen);
	crypto_generichash_final(&st, kb, LINK_KEY_SIZE);
	sodium_memzero(&st, sizeof(st));
}

static uint8_t local_caps(void)
{
	if (!aes_ok())
		return 0;
	return CAP_AES | (clear_ok ? CAP_CLEAR : 0);
}

/* The server's choice for a client's caps. */
static int pick_cipher(uint8_t theirs)
{
	uint8_t both = theirs & local_caps();

	if (!(both & CAP_AES))
		return BULK_XCHACHA20POLY1305;
	return both & CAP_CLEAR ? BULK_AES256GMAC : BULK_AES256OCB;
}

/* Server side of one handshake on fd; fills b's keys on success. */
static int server_handshake(struct bulk *b, int fd, const uint8_t key[LINK_KEY_SIZE],
			    const void *token, size_t toklen, int64_t deadline)
{
	uint8_t ch[BULK_CHELLO_SIZE], sr[BULK_SREPLY_SIZE], fin[LINK_FINISH_SIZE];
	uint8_t kb[LINK_KEY_SIZE], rec[BULK_HDR_SIZE + BULK_TAG_SIZE];
	struct link l;
	int cipher, rc;

	if ((rc = hs_recv(fd, ch, sizeof(ch), deadline)))
		return rc;
	if (memcmp(ch, BULK_MAGIC, 8) || ch[8] != BULK_VERSION)
		return -BULK_ERR_MAGIC;
	cipher = pick_cipher(ch[9]);
	bulk_key(key, ch[9], token, toklen, kb);
	link_init(&l, LINK_SERVER, kb);
	memcpy(sr, BULK_MAGIC, 8);
	sr[8] = BULK_VERSION;
	sr[9] = (uint8_t)cipher;
	if ((rc = link_server_reply(&l, ch + 10, sr + 10)))
		goto out;
	if ((rc = hs_send(fd, sr, sizeof(sr), deadline)))
		goto out;
	if ((rc = hs_recv(fd, fin, sizeof(fin), deadline)))
		goto out;
	if ((rc = link_server_accept(&l, fin)))
		goto out;
	if ((rc = bulk_init_keys(b, cipher, l.tx, l.rx)))
		goto out;
	bulk_seal(b, BULK_REC_READY, NULL, 0, rec, rec + BULK_HDR_SIZE);
	rc = hs_send(fd, rec, sizeof(rec), deadline);
out:
	link_wipe(&l);
	sodium_memzero(kb, sizeof(kb));
	return link_to_bulk(rc);
}

/* Client side of the handshake on fd; fills b's keys on success. */
static int client_handshake(struct bulk *b, int fd, const uint8_t key[LINK_KEY_SIZE],
			    const void *token, size_t toklen, int64_t deadline)
{
	uint8_t ch[BULK_CHELLO_SIZE], sr[BULK_SREPLY_SIZE], fin[LINK_FINISH_SIZE];
	uint8_t kb[LINK_KEY_SIZE], rec[BULK_HDR_SIZE + BULK_TAG_SIZE];
	uint8_t caps = local_caps();
	struct link l;
	unsigned type;
	size_t n;
	int cipher, rc;

	bulk_key(key, caps, token, toklen, kb);
	link_init(&l, LINK_CLIENT, kb);
	memcpy(ch, BULK_MAGIC, 8);
	ch[8] = BULK_VERSION;
	ch[9] = caps;
	link_client_hello(&l, ch + 10);
	if ((rc = hs_send(fd, ch, sizeof(ch), deadline)))
		goto out;
	if ((rc = hs_recv(fd, sr, sizeof(sr), deadline)))
		goto out;
	cipher = sr[9];
	rc = -BULK_ERR_MAGIC;
	if (memcmp(sr, BULK_MAGIC, 8) || sr[8] != BULK_VERSION)
		goto out;
	if (cipher != BULK_XCHACHA20POLY1305 && !(cipher == BULK_AES256OCB && (caps & CAP_AES)) &&
	    !(cipher == BULK_AES256GMAC && (caps & CAP_CLEAR)))
		goto out;
	if ((rc = link_client_finish(&l, sr + 10, fin)))
		goto out;
	if ((rc = hs_send(fd, fin, sizeof(fin), deadline)))
		goto out;
	if ((rc = bulk_init_keys(b, cipher, l.tx, l.rx)))
		goto out;
	if ((rc = hs_recv(fd, rec, sizeof(rec), deadline)))
		goto out;
	if ((rc = bulk_hdr_parse(rec, &type, &n)))
		goto out;
	if (type != BULK_REC_READY) {
		rc = -BULK_ERR_FORMAT;
		goto out;
	}
	rc = bulk_open(b, rec, NULL, 0, rec + BULK_HDR_SIZE);
out:
	link_wipe(&l);
	sodium_memzero(kb, sizeof(kb));
	return link_to_bulk(rc);
}

static void bulk_reset(struct bulk *b)
{
	sodium_memzero(b, sizeof(*b));
	b->fd = -1;
}

/* A handshake that failed after its keys were set, or the end. */
static void drop_keys(struct bulk *b)
{
	gcry_cipher_close(b->tx_ocb);
	gcry_cipher_close(b->rx_ocb);
	EVP_CIPHER_CTX_free(b->tx_gmac);
	EVP_CIPHER_CTX_free(b->rx_gmac);
	b->tx_ocb = b->rx_ocb = NULL;
	b->tx_gmac = b->rx_gmac = NULL;
}

int bulk_accept(struct bulk *b, int listen_fd, const uint8_t key[LINK_KEY_SIZE],
		const void *token, size_t toklen, int timeout_ms)
{
	int64_t deadline = deadline_of(timeout_ms);
	int fd, rc;

	bulk_reset(b);
	if (sodium_init() < 0)
		return -ENOSYS;
	for (;;) {
		int64_t hs_deadline;

		if ((rc = wait_fd(listen_fd, POLLIN, deadline)))
			return rc;
		fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* The client may have gone between the poll and the accept. */
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED)
				continue;
			return -errno;
		}
		tune(fd);
		/* A silent client holds the queue up for BULK_HS_MS at most. */
		hs_deadline = (int64_t)mono_ms() + BULK_HS_MS;
		if (hs_deadline > deadline)
			hs_deadline = deadline;
		rc = server_handshake(b, fd, key, token, toklen, hs_deadline);
		if (rc == 0 && (rc = set_blocking(fd)) == 0) {
			b->fd = fd;
			return 0;
		}
		drop_keys(b);
		bulk_reset(b);
		close(fd);
		if (rc == -ENOMEM)
			return rc;
	}
}

int bulk_connect(struct bulk *b, const char *addr, uint16_t port,
		 const uint8_t key[LINK_KEY_SIZE], const void *token, size_t toklen,
		 int timeout_ms)
{
	int64_t deadline = deadline_of(timeout_ms);
	struct sockaddr_storage ss;
	socklen_t sl, el = sizeof(int);
	int fd, rc, soerr = 0;

	bulk_reset(b);
	if (sodium_init() < 0)
		return -ENOSYS;
	if ((rc = resolve(addr, port, &ss, &sl)))
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	tune(fd);
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto err;
		}
		if ((rc = wait_fd(fd, POLLOUT, deadline)))
			goto err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0)
			soerr = errno;
		if (soerr) {
			rc = -soerr;
			goto err;
		}
	}
	if ((rc = client_handshake(b, fd, key, token, toklen, deadline)))
		goto err;
	if ((rc = set_blocking(fd)))
		goto err;
	b->fd = fd;
	return 0;
err:
	drop_keys(b);
	bulk_reset(b);
	close(fd);
	return rc;
}

/* ---- the stream ---- */

/* Records the first fatal error; every later call returns it. */
static int fail(struct bulk *b, int rc)
{
	if (!b->err)
		b->err = rc;
	return b->err;
}

/* Moves m's iovecs past n bytes sent or received. */
static void advance(struct msghdr *m, size_t n)
{
	while (m->msg_iovlen && n >= m->msg_iov->iov_len) {
		n -= m->msg_iov->iov_len;
		m->msg_iov++;
		m->msg_iovlen--;
	}
	if (m->msg_iovlen) {
		m->msg_iov->iov_base = (uint8_t *)m->msg_iov->iov_base + n;
		m->msg_iov->iov_len -= n;
	}
}

/* Sends iov[0..cnt) whole; blocks. */
static int send_all(int fd, struct iovec *iov, int cnt)
{
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = (size_t)cnt;
	while (m.msg_iovlen) {
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		advance(&m, (size_t)n);
	}
	return 0;
}

/* Receives iov[0..cnt) whole; blocks. The connection ending first is
 * -BULK_ERR_TRUNC: only an END record ends a stream. */
static int recv_all(int fd, struct iovec *iov, int cnt)
{
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = (size_t)cnt;
	while (m.msg_iovlen) {
		ssize_t n = recvmsg(fd, &m, MSG_WAITALL);
		if (n == 0)
			return -BULK_ERR_TRUNC;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		advance(&m, (size_t)n);
	}
	return 0;
}

/* Seals src[0..n) into dst as the next record and sends it. */
static int send_record(struct bulk *b, unsigned type, const uint8_t *src, uint8_t *dst, size_t n)
{
	uint8_t hdr[BULK_HDR_SIZE], tag[BULK_TAG_SIZE];
	struct iovec iov[3] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = dst, .iov_len = n },
		{ .iov_base = tag, .iov_len = sizeof(tag) },
	};

	if (b->cipher == BULK_AES256GMAC)
		iov[1].iov_base = (void *)src;   /* in clear: sent as it is, no copy */
	seal_to(b, type, src, dst, n, hdr, tag);
	if (n == 0) {
		iov[1] = iov[2];
		return send_all(b->fd, iov, 2);
	}
	return send_all(b->fd, iov, 3);
}

static int usable(struct bulk *b)
{
	if (b->err)
		return b->err;
	if (b->fd < 0)
		return -BULK_ERR_STATE;
	return 0;
}

/* Sends the gathered bytes as one record. */
static int flush(struct bulk *b)
{
	int rc = send_record(b, BULK_REC_DATA, b->tx_buf, b->tx_buf, b->tx_len);

	b->tx_len = 0;
	return rc;
}

int bulk_write(void *ctx, const void *buf, size_t len)
{
	struct bulk *b = ctx;
	const uint8_t *p = buf;
	int rc;

	if ((rc = usable(b)))
		return rc;
	if (b->tx_done)
		return -BULK_ERR_STATE;
	if (!b->tx_buf && !(b->tx_buf = malloc(BULK_MAX_RECORD)))
		return -ENOMEM;
	while (len) {
		if (len >= BULK_DIRECT_MIN) {
			/* Big pieces are sealed from the caller's buffer; what was
			 * gathered before them (an image record's header, say) goes
			 * first as a record of its own rather than have them copied
			 * in behind it. */
			size_t k = len < BULK_MAX_RECORD ? len : BULK_MAX_RECORD;

			if (b->tx_len && (rc = flush(b)))
				return fail(b, rc);
			rc = send_record(b, BULK_REC_DATA, p, b->tx_buf, k);
			p += k;
			len -= k;
		} else {
			size_t k = BULK_MAX_RECORD - b->tx_len;

			if (k > len)
				k = len;
			memcpy(b->tx_buf + b->tx_len, p, k);
			b->tx_len += k;
			p += k;
			len -= k;
			if (b->tx_len == BULK_MAX_RECORD)
				rc = flush(b);
		}
		if (rc)
			return fail(b, rc);
	}
	return 0;
}

/* Before a record of its own (END, SYNC): the channel still takes records,
 * and what was gathered goes first. */
static int flush_before_own(struct bulk *b)
{
	int rc;

	if ((rc = usable(b)))
		return rc;
	if (b->tx_done)
		return -BULK_ERR_STATE;
	if (b->tx_len && (rc = flush(b)))
		return fail(b, rc);
	return 0;
}

int bulk_finish(struct bulk *b)
{
	int rc, on = 1;

	if ((rc = flush_before_own(b)))
		return rc;
	if ((rc = send_record(b, BULK_REC_END, NULL, NULL, 0)))
		return fail(b, rc);
	b->tx_done = 1;
	/* Turning Nagle off pushes the small END record out now rather than
	 * after the peer's next (possibly delayed) acknowledgement. */
	(void)setsockopt(b->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return 0;
}

int bulk_sync(struct bulk *b, int timeout_ms)
{
	uint8_t hdr[BULK_HDR_SIZE], tag[BULK_TAG_SIZE];
	struct iovec iov[1] = { { .iov_base = hdr, .iov_len = sizeof(hdr) } };
	struct pollfd p = { .fd = -1, .events = POLLIN };
	int64_t end = (int64_t)mono_ms() + timeout_ms;
	unsigned type;
	size_t n;
	int rc, on = 1;

	if ((rc = flush_before_own(b)))
		return rc;
	/* The SYNC goes now, not after the peer's next acknowledgement; the
	 * rest of the stream is the final part, which is wanted at once too. */
	(void)setsockopt(b->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if ((rc = send_record(b, BULK_REC_SYNC, NULL, NULL, 0)))
		return fail(b, rc);
	p.fd = b->fd;
	for (;;) {
		int64_t left = end - (int64_t)mono_ms();
		if (left <= 0)
			return fail(b, -ETIMEDOUT);
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			break;
		if (rc < 0 && errno != EINTR)
			return fail(b, -errno);
	}
	if ((rc = recv_all(b->fd, iov, 1)) || (rc = bulk_hdr_parse(hdr, &type, &n)))
		return fail(b, rc);
	if (type != BULK_REC_SYNCED)
		return fail(b, -BULK_ERR_FORMAT);
	iov[0] = (struct iovec){ .iov_base = tag, .iov_len = sizeof(tag) };
	if ((rc = recv_all(b->fd, iov, 1)) || (rc = bulk_open(b, hdr, NULL, 0, tag)))
		return fail(b, rc);
	return 0;
}

ssize_t bulk_read(void *ctx, void *buf, size_t len)
{
	struct bulk *b = ctx;
	uint8_t hdr[BULK_HDR_SIZE], tag[BULK_TAG_SIZE];
	struct iovec iov[2];
	uint8_t *dst;
	unsigned type;
	size_t n;
	int rc;

	if (b->rx_off < b->rx_len) {
		n = b->rx_len - b->rx_off;
		if (n > len)
			n = len;
		memcpy(buf, b->rx_buf + b->rx_off, n);
		b->rx_off += n;
		return (ssize_t)n;
	}
	if ((rc = usable(b)))
		return rc;
	if (b->rx_eof || len == 0)
		return 0;
next:
	iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
	if ((rc = recv_all(b->fd, iov, 1)))
		return fail(b, rc);
	if ((rc = bulk_hdr_parse(hdr, &type, &n)))
		return fail(b, rc);
	if (type == BULK_REC_READY || type == BULK_REC_SYNCED)
		return fail(b, -BULK_ERR_FORMAT);
	/* A read of at least a whole record gets it straight in its buffer. */
	if (n == 0 || len >= n) {
		dst = buf;
	} else {
		if (!b->rx_buf && !(b->rx_buf = malloc(BULK_MAX_RECORD)))
			return fail(b, -ENOMEM);
		dst = b->rx_buf;
	}
	iov[0] = (struct iovec){ .iov_base = dst, .iov_len = n };
	iov[1] = (struct iovec){ .iov_base = tag, .iov_len = sizeof(tag) };
	if ((rc = recv_all(b->fd, n ? iov : iov + 1, n ? 2 : 1)))
		return fail(b, rc);
	if ((rc = bulk_open(b, hdr, dst, n, tag))) {
		sodium_memzero(dst, n);         /* leave no unauthenticated bytes behind */
		return fail(b, rc);
	}
	if (type == BULK_REC_END) {
		b->rx_eof = 1;
		return 0;
	}
	if (type == BULK_REC_SYNC) {
		/* Every byte before it was handed out: say so, read on. */
		if ((rc = send_record(b, BULK_REC_SYNCED, NULL, NULL, 0)))
			return fail(b, rc);
		goto next;
	}
	if (dst == buf)
		return (ssize_t)n;
	b->rx_off = len;
	b->rx_len = n;
	memcpy(buf, b->rx_buf, len);
	return (ssize_t)len;
}

void bulk_abort(struct bulk *b)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (b->fd >= 0)
		(void)setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	bulk_close(b);
}

void bulk_close(struct bulk *b)
{
	if (b->fd >= 0)
		close(b->fd);
	if (b->tx_buf) {
		sodium_memzero(b->tx_buf, BULK_MAX_RECORD);
		free(b->tx_buf);
	}
	if (b->rx_buf) {
		sodium_memzero(b->rx_buf, BULK_MAX_RECORD);
		free(b->rx_buf);
	}
	drop_keys(b);
	bulk_reset(b);
}
