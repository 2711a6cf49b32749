/*
 * The peer link: an authenticated, encrypted channel between two roamd that
 * hold the same 32-byte cluster key. Pure code over byte buffers: the caller
 * moves the bytes (so the daemon's event loop, the tests and the fuzzers all
 * drive the same code).
 *
 * Handshake (three fixed-size messages; K is the cluster key, H keyed BLAKE2b):
 *
 *   client -> server  HELLO  = "ROAMLNK1" | Nc (32 random) | Pc (X25519 ephemeral)
 *   server -> client  REPLY  = "ROAMLNK1" | Ns | Ps | H_K("roam-server" | HELLO | Ns | Ps)
 *   client -> server  FINISH = H_K("roam-client" | HELLO | REPLY)
 *
 * Each side checks the other's proof before it believes anything: a peer
 * without K cannot produce either proof, and a replayed HELLO or FINISH
 * fails because the proof covers the other side's fresh nonce and key. Each
 * direction then gets its own key, H_K(dir | crypto_kx session key |
 * transcript hash), so traffic needs both the ephemeral secret and K.
 *
 * Records: u32le ciphertext length | XChaCha20-Poly1305(frame), the length as
 * associated data, the nonce a per-direction counter that both sides track
 * and never send. A replayed, reordered, dropped or altered record fails to
 * open; the link is then dead (the caller drops the connection).
 */
#ifndef ROAM_NET_LINK_H
#define ROAM_NET_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define LINK_KEY_SIZE    32
#define LINK_MAGIC       "ROAMLNK1"
#define LINK_HELLO_SIZE  (8 + 32 + 32)
#define LINK_REPLY_SIZE  (8 + 32 + 32 + 32)
#define LINK_FINISH_SIZE 32
#define LINK_REC_HDR     4
#define LINK_TAG_SIZE    crypto_aead_xchacha20poly1305_ietf_ABYTES
#define LINK_MAX_RECORD  ((1u << 20) + 64 + LINK_TAG_SIZE)

enum link_role { LINK_CLIENT = 1, LINK_SERVER = 2 };

enum link_error {
	LINK_ERR_BASE   = 6400,
	LINK_ERR_MAGIC  = 6401,  /* not a roam peer */
	LINK_ERR_AUTH   = 6402,  /* the peer's proof is wrong: no cluster key */
	LINK_ERR_RECORD = 6403,  /* a record failed to open: replayed, reordered or forged */
	LINK_ERR_SIZE   = 6404,  /* a record length beyond the limit */
	LINK_ERR_STATE  = 6405,  /* call out of order */
};

struct link {
	enum link_role role;
	int established;
	uint8_t key[LINK_KEY_SIZE];
	uint8_t nonce[32];
	uint8_t pk[crypto_kx_PUBLICKEYBYTES];
	uint8_t sk[crypto_kx_SECRETKEYBYTES];
	uint8_t hello[LINK_HELLO_SIZE];
	uint8_t reply[LINK_REPLY_SIZE];
	uint8_t tx[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t rx[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint64_t tx_seq, rx_seq;
};

/* Returns a static description of a link_error. */
const char *link_strerror(int err);

/* Starts a link. sodium_init() must have succeeded. */
void link_init(struct link *l, enum link_role role, const uint8_t key[LINK_KEY_SIZE]);

/* Wipes every secret. */
void link_wipe(struct link *l);

/* Client: writes HELLO into out. */
void link_client_hello(struct link *l, uint8_t out[LINK_HELLO_SIZE]);

/* Server: reads HELLO, writes REPLY. Returns 0 or -LINK_ERR_*. */
int link_server_reply(struct link *l, const uint8_t hello[LINK_HELLO_SIZE],
		      uint8_t out[LINK_REPLY_SIZE]);

/* Client: checks REPLY, writes FINISH; the link is then established. */
int link_client_finish(struct link *l, const uint8_t reply[LINK_REPLY_SIZE],
		       uint8_t out[LINK_FINISH_SIZE]);

/* Server: checks FINISH; the link is then established. */
int link_server_accept(struct link *l, const uint8_t finish[LINK_FINISH_SIZE]);

/* Size of the record sealing n plaintext bytes. */
static inline size_t link_record_size(size_t n) { return LINK_REC_HDR + n + LINK_TAG_SIZE; }

/* Seals plaintext p[0..n) into out (link_record_size(n) bytes). */
int link_seal(struct link *l, const uint8_t *p, size_t n, uint8_t *out);

/*
 * Reads a record header: returns 0 and the whole record's size in *rlen when
 * buf holds at least LINK_REC_HDR bytes and the length is sane,
 * -LINK_ERR_SIZE when it is not, 1 when more bytes are needed.
 */
int link_record_peek(const uint8_t *buf, size_t len, size_t *rlen);

/* Opens one whole record rec[0..rlen) into out (rlen - LINK_REC_HDR -
 * LINK_TAG_SIZE bytes); returns the plaintext length or -LINK_ERR_*. */
long link_open(struct link *l, const uint8_t *rec, size_t rlen, uint8_t *out);

#endif
