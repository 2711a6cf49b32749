/*
 * The peer link's handshake and record protection (see link.h).
 */
#include <string.h>

#include "net/link.h"

const char *link_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case LINK_ERR_MAGIC: return "not a roam peer";
	case LINK_ERR_AUTH: return "peer failed cluster-key authentication";
	case LINK_ERR_RECORD: return "record failed authentication (replayed, reordered or forged)";
	case LINK_ERR_SIZE: return "record length out of range";
	case LINK_ERR_STATE: return "link used out of order";
	default: return "link error";
	}
}

void link_init(struct link *l, enum link_role role, const uint8_t key[LINK_KEY_SIZE])
{
	memset(l, 0, sizeof(*l));
	l->role = role;
	memcpy(l->key, key, LINK_KEY_SIZE);
	randombytes_buf(l->nonce, sizeof(l->nonce));
	crypto_kx_keypair(l->pk, l->sk);
}

void link_wipe(struct link *l)
{
	sodium_memzero(l, sizeof(*l));
}

/* H_K(label | a | b | c), 32 bytes. */
static void proof(const struct link *l, const char *label, const uint8_t *a, size_t an,
		  const uint8_t *b, size_t bn, uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, l->key, LINK_KEY_SIZE, 32);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_generichash_update(&st, a, an);
	if (b)
		crypto_generichash_update(&st, b, bn);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

/* Per-direction keys from the kx session keys, K and the transcript. */
static void derive(struct link *l, uint8_t kx_rx[32], uint8_t kx_tx[32])
{
	uint8_t th[32];
	uint8_t c2s[32], s2c[32];
	const uint8_t *kc2s = l->role == LINK_CLIENT ? kx_tx : kx_rx;
	const uint8_t *ks2c = l->role == LINK_CLIENT ? kx_rx : kx_tx;

	proof(l, "roam-transcript", l->hello, sizeof(l->hello), l->reply, sizeof(l->reply), th);
	proof(l, "roam-c2s", kc2s, 32, th, 32, c2s);
	proof(l, "roam-s2c", ks2c, 32, th, 32, s2c);
	if (l->role == LINK_CLIENT) {
		memcpy(l->tx, c2s, 32);
		memcpy(l->rx, s2c, 32);
	} else {
		memcpy(l->tx, s2c, 32);
		memcpy(l->rx, c2s, 32);
	}
	sodium_memzero(c2s, 32);
	sodium_memzero(s2c, 32);
	sodium_memzero(kx_rx, 32);
	sodium_memzero(kx_tx, 32);
	sodium_memzero(l->sk, sizeof(l->sk));
	l->established = 1;
}

void link_client_hello(struct link *l, uint8_t out[LINK_HELLO_SIZE])
{
	memcpy(out, LINK_MAGIC, 8);
	memcpy(out + 8, l->nonce, 32);
	memcpy(out + 40, l->pk, 32);
	memcpy(l->hello, out, LINK_HELLO_SIZE);
}

int link_server_reply(struct link *l, const uint8_t hello[LINK_HELLO_SIZE],
		      uint8_t out[LINK_REPLY_SIZE])
{
	if (l->role != LINK_SERVER || l->established)
		return -LINK_ERR_STATE;
	if (memcmp(hello, LINK_MAGIC, 8))
		return -LINK_ERR_MAGIC;
	memcpy(l->hello, hello, LINK_HELLO_SIZE);
	memcpy(out, LINK_MAGIC, 8);
	memcpy(out + 8, l->nonce, 32);
	memcpy(out + 40, l->pk, 32);
	proof(l, "roam-server", hello, LINK_HELLO_SIZE, out + 8, 64, out + 72);
	memcpy(l->reply, out, LINK_REPLY_SIZE);
	return 0;
}

int link_client_finish(struct link *l, const uint8_t reply[LINK_REPLY_SIZE],
		       uint8_t out[LINK_FINISH_SIZE])
{
	uint8_t want[32], rx[32], tx[32];

	if (l->role != LINK_CLIENT || l->established)
		return -LINK_ERR_STATE;
	if (memcmp(reply, LINK_MAGIC, 8))
		return -LINK_ERR_MAGIC;
	proof(l, "roam-server", l->hello, LINK_HELLO_SIZE, reply + 8, 64, want);
	if (sodium_memcmp(want, reply + 72, 32))
		return -LINK_ERR_AUTH;
	memcpy(l->reply, reply, LINK_REPLY_SIZE);
	if (crypto_kx_client_session_keys(rx, tx, l->pk, l->sk, reply + 40))
		return -LINK_ERR_AUTH;  /* the server's key is a low-order point */
	proof(l, "roam-client", l->hello, LINK_HELLO_SIZE, l->reply, LINK_REPLY_SIZE, out);
	derive(l, rx, tx);
	return 0;
}

int link_server_accept(struct link *l, const uint8_t finish[LINK_FINISH_SIZE])
{
	uint8_t want[32], rx[32], tx[32];

	if (l->role != LINK_SERVER || l->established)
		return -LINK_ERR_STATE;
	proof(l, "roam-client", l->hello, LINK_HELLO_SIZE, l->reply, LINK_REPLY_SIZE, want);
	if (sodium_memcmp(want, finish, 32))
		return -LINK_ERR_AUTH;
	if (crypto_kx_server_session_keys(rx, tx, l->pk, l->sk, l->hello + 40))
		return -LINK_ERR_AUTH;
	derive(l, rx, tx);
	return 0;
}

static void seq_nonce(uint64_t seq, uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(n, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		n[i] = seq >> (8 * i) & 0xff;
}

int link_seal(struct link *l, const uint8_t *p, size_t n, uint8_t *out)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen;
	size_t c = n + LINK_TAG_SIZE;

	if (!l->established)
		return -LINK_ERR_STATE;
	if (c > LINK_MAX_RECORD)
		return -LINK_ERR_SIZE;
	out[0] = c & 0xff; out[1] = c >> 8 & 0xff; out[2] = c >> 16 & 0xff; out[3] = c >> 24 & 0xff;
	seq_nonce(l->tx_seq++, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + LINK_REC_HDR, &clen, p, n, out,
						   LINK_REC_HDR, NULL, nonce, l->tx);
	return 0;
}

int link_record_peek(const uint8_t *buf, size_t len, size_t *rlen)
{
	uint32_t c;

	if (len < LINK_REC_HDR)
		return 1;
	c = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
	if (c < LINK_TAG_SIZE || c > LINK_MAX_RECORD)
		return -LINK_ERR_SIZE;
	*rlen = LINK_REC_HDR + c;
	return 0;
}

long link_open(struct link *l, const uint8_t *rec, size_t rlen, uint8_t *out)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long plen;
	size_t want;

	if (!l->established)
		return -LINK_ERR_STATE;
	if (link_record_peek(rec, rlen, &want) || want != rlen)
		return -LINK_ERR_SIZE;
	seq_nonce(l->rx_seq, nonce);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, rec + LINK_REC_HDR,
						       rlen - LINK_REC_HDR, rec, LINK_REC_HDR,
						       nonce, l->rx))
		return -LINK_ERR_RECORD;
	l->rx_seq++;
	return (long)plen;
}
