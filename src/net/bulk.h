/*
 * The bulk channel: one direct, blocking, authenticated and encrypted TCP
 * connection between two workers that hold the cluster key, made for
 * streaming a process image (64 MiB to 1 GiB) at the speed of the wire.
 * The peer link (link.h) carries the control messages between roamd; this
 * carries the bytes, without the event loop, the pipes and the framing.
 *
 * Handshake (K the cluster key, T the token both workers know: migration
 * number and host names; H keyed BLAKE2b):
 *
 *   client -> server  "ROAMBLK1" | version | caps   | link HELLO
 *   server -> client  "ROAMBLK1" | version | cipher | link REPLY
 *   client -> server  link FINISH
 *   server -> client  READY record (sealed, empty)
 *
 * caps says whether the client can run AES in hardware, and whether it
 * would take records in clear (bulk_allow_clear); the server picks
 * AES-256-GMAC when both can and would, else AES-256-OCB (RFC 7253) when
 * both can, XChaCha20-Poly1305 otherwise. The link
 * handshake (link.h, reused as it is) then runs under
 * Kb = H_K("roam-bulk" | version | caps | u32le |T| | T) instead of K: its
 * proofs show each side holds K *and* T *and* saw the same caps (another key,
 * token or caps makes the proofs differ: the client refuses a REPLY whose
 * proof does not match, the server such a FINISH), and its per-direction
 * session keys are H_Kb(direction | X25519 session key | transcript), from
 * fresh ephemeral keys: every connection has new keys, and the ephemeral
 * secret alone does not give them. The READY record, sealed with the
 * cipher the server chose, tells the client the server accepted it and
 * confirms the choice (a changed choice fails to open it). The magic
 * differs from the peer link's, so neither can be mistaken for the other.
 *
 * Records: u32le plaintext length | u8 type | 3 zero bytes, then the
 * ciphertext, then the 16-byte tag. The 8-byte header is the associated
 * data; the nonce is a per-direction record counter both sides track and
 * never send, so a replayed, reordered, dropped or altered record fails to
 * open. Under AES-256-GMAC the data goes in clear, header and data both
 * associated data of an empty AES-256-GCM message: authenticated just the
 * same, only not secret (for a network the admin trusts not to be read;
 * the tag is then the only pass over the bytes, which it reads and does
 * not write). The sender ends with an END record: a stream cut before
 * it reads as -BULK_ERR_TRUNC, never as a clean end. A SYNC record from the
 * sender asks the receiver to answer SYNCED once its reader has taken every
 * byte before it (bulk_sync): the only record the receiver sends after
 * READY. Any error is sticky: the channel is then dead and only bulk_close
 * remains.
 */
#ifndef ROAM_NET_BULK_H
#define ROAM_NET_BULK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sodium.h>

#include "net/link.h"

#define BULK_MAGIC       "ROAMBLK1"
#define BULK_VERSION     3              /* 3: AES-256-OCB, not GCM; 2: records of up to 1 MiB */
#define BULK_CHELLO_SIZE (8 + 2 + LINK_HELLO_SIZE)
#define BULK_SREPLY_SIZE (8 + 2 + LINK_REPLY_SIZE)
#define BULK_HDR_SIZE    8
#define BULK_TAG_SIZE    16
/* Plaintext bytes per record: the limit, and what the sender fills. As
 * big as an image's page record, whose data then goes as one record: a
 * cold 64 MiB migration took 53.3 ms against 56.9 with 256 KiB records in
 * clear, 61.2 against 63.8 encrypted (medians of 40, alternating): fewer
 * sends, seals and opens. */
#define BULK_MAX_RECORD  (1u << 20)
#define BULK_HS_MS       5000           /* one accepted client's handshake budget */

enum bulk_cipher {
	BULK_XCHACHA20POLY1305 = 1,
	/* 2 was AES-256-GCM, until version 3 */
	BULK_AES256GMAC        = 3,     /* in clear, authenticated */
	BULK_AES256OCB         = 4,
};

enum bulk_rec_type {
	BULK_REC_DATA  = 1,     /* 1..BULK_MAX_RECORD bytes of stream */
	BULK_REC_END   = 2,     /* empty: the sender's clean end */
	BULK_REC_READY = 3,     /* empty: the server accepted the handshake */
	BULK_REC_SYNC  = 4,     /* empty, sender -> receiver: say when you got here */
	BULK_REC_SYNCED = 5,    /* empty, receiver -> sender: read up to the SYNC */
};

enum bulk_error {
	BULK_ERR_BASE   = 6700,
	BULK_ERR_MAGIC  = 6701,  /* the peer does not speak this protocol or version */
	BULK_ERR_AUTH   = 6702,  /* handshake proof wrong: other cluster key or other token */
	BULK_ERR_RECORD = 6703,  /* a record failed to open: altered, replayed or reordered */
	BULK_ERR_FORMAT = 6704,  /* a record header out of range or of an unknown type */
	BULK_ERR_TRUNC  = 6705,  /* the stream ended before the sender's end marker */
	BULK_ERR_STATE  = 6706,  /* call out of order (write after finish, ...) */
};

/*
 * One channel. Caller-allocated (stack or heap, any content): bulk_accept
 * and bulk_connect initialise it whatever they return, and bulk_close must
 * then be called once, success or not (also after bulk_init_keys). One
 * thread at a time: a channel has no lock. Both calls run sodium_init()
 * themselves.
 */
struct bulk {
	int fd;                 /* the connection, -1 when none */
	int cipher;             /* enum bulk_cipher */
	int err;                /* first fatal error (negative), sticky; 0 while healthy */
	int tx_done;            /* the END record was sent */
	int rx_eof;             /* the peer's END record was read */
	uint64_t tx_seq, rx_seq;
	/* The AES ciphers' contexts, keys expanded once: libgcrypt's for
	 * AES-256-OCB, OpenSSL's for AES-256-GMAC, each the fastest library
	 * here at its work, which is the channel's only pass over the bytes
	 * (one core, 1 MiB records): OCB seals at 7.2 to 9.4 GB/s in
	 * libgcrypt (VAES), 5.1 in OpenSSL, where OpenSSL's AES-256-GCM
	 * sealed 2.9 to 4.3 and libsodium's half that; GHASH alone runs at
	 * 8.8 to 11.8 GB/s in OpenSSL, 6.6 to 7.8 in libgcrypt. */
	struct gcry_cipher_handle *tx_ocb, *rx_ocb;
	struct evp_cipher_ctx_st *tx_gmac, *rx_gmac;
	uint8_t tx_key[32], rx_key[32];
	uint8_t *tx_buf;        /* BULK_MAX_RECORD bytes: plaintext gathered, sealed in place */
	size_t tx_len;
	uint8_t *rx_buf;        /* BULK_MAX_RECORD bytes: a record opened for a short read */
	size_t rx_off, rx_len;  /* the part of rx_buf not yet handed out */
};

/* How a channel's records go, in words: "encrypted (AES-256-OCB)", ... */
const char *bulk_cipher_name(int cipher);

/* Returns a static description of a bulk_error, link_error or errno. */
const char *bulk_strerror(int err);

/* Loads what the ciphers need (OpenSSL reads its configuration and loads
 * its providers at the first cipher a process asks for: about a
 * millisecond; libgcrypt is initialised once). A process that forks bulk
 * channel users calls it once, so that each child does not pay it on its
 * way to the first record. */
void bulk_preload(void);

/* Whether this process offers (client) or accepts (server) records in
 * clear, authenticated but not encrypted; a channel is in clear only when
 * both ends would. Off unless set; for the whole process. */
void bulk_allow_clear(int on);

/*
 * Destination worker: a listening TCP socket on bind_addr (numeric IPv4 or
 * IPv6, port in *port_out, 0 for any), close-on-exec; the port bound is
 * written back to *port_out. Returns the fd or -errno.
 */
int bulk_listen(const char *bind_addr, uint16_t *port_out);

/*
 * Accepts connections on listen_fd until one completes the handshake with
 * key and token, for at most timeout_ms in all. A client that fails the
 * handshake (other key, other token, garbage, silence for BULK_HS_MS) is
 * dropped and the next one awaited. Returns 0 or -ETIMEDOUT, -errno.
 */
int bulk_accept(struct bulk *b, int listen_fd, const uint8_t key[LINK_KEY_SIZE],
		const void *token, size_t toklen, int timeout_ms);

/*
 * Connects to addr (numeric IPv4 or IPv6) port and runs the handshake, all
 * within timeout_ms. Returns 0, -BULK_ERR_AUTH (the server holds another
 * key or token), -BULK_ERR_MAGIC, -ETIMEDOUT or -errno.
 */
int bulk_connect(struct bulk *b, const char *addr, uint16_t port,
		 const uint8_t key[LINK_KEY_SIZE], const void *token, size_t toklen,
		 int timeout_ms);

/*
 * An img_write_fn (image.h): appends len bytes to the stream; blocks. Small
 * writes are gathered into records of up to BULK_MAX_RECORD bytes, sealed
 * in place; pieces of 64 KiB and more are sealed from the caller's buffer
 * straight into the send buffer (the cipher is then the only pass over the
 * bytes in user space), after what was gathered before them.
 * Returns 0 or a negative error (-errno, -BULK_ERR_*).
 */
int bulk_write(void *b, const void *buf, size_t len);

/*
 * An img_read_fn (image.h): reads up to len bytes; blocks. A read that asks
 * for at least a whole record is served by receiving and opening it in the
 * caller's buffer. Returns the bytes read, 0 once the sender's END record
 * has been read, or a negative error: -BULK_ERR_TRUNC when the connection
 * ended without END. A read of 0 bytes returns 0 as well.
 */
ssize_t bulk_read(void *b, void *buf, size_t len);

/* Sends what is gathered and the END record. Returns 0 or a negative error. */
int bulk_finish(struct bulk *b);

/*
 * A barrier: sends what is gathered and a SYNC record, and waits until the
 * receiver says (SYNCED) that its reader has taken every byte before it,
 * within timeout_ms. bulk_read answers a SYNC by itself. Returns 0, or a
 * negative error, after which the channel is dead (-ETIMEDOUT included: a
 * SYNCED left unread would turn the close into a reset).
 */
int bulk_sync(struct bulk *b, int timeout_ms);

/* Closes the connection, frees the buffers and wipes the keys. */
void bulk_close(struct bulk *b);
/* bulk_close with a reset (SO_LINGER 0): what the kernel still holds of the
 * stream is discarded, never delivered. For a stream that must not arrive
 * whole once its sender changed its mind, even over a link that comes back. */
void bulk_abort(struct bulk *b);

/*
 * The pure record layer, over buffers (the sockets code above and the
 * fuzzer both drive it).
 */

/* Sets a channel with no connection and the given session keys; 0 or
 * -ENOMEM. bulk_close frees what it allocated. */
int bulk_init_keys(struct bulk *b, int cipher, const uint8_t tx[32], const uint8_t rx[32]);

/* Seals p[0..n) in place as the next record of type type; writes its
 * header and tag. n <= BULK_MAX_RECORD. */
void bulk_seal(struct bulk *b, unsigned type, uint8_t *p, size_t n,
	       uint8_t hdr[BULK_HDR_SIZE], uint8_t tag[BULK_TAG_SIZE]);

/* Parses a record header: 0 with its type and plaintext length, or
 * -BULK_ERR_FORMAT. */
int bulk_hdr_parse(const uint8_t hdr[BULK_HDR_SIZE], unsigned *type, size_t *len);

/* Opens c[0..n) in place as the next record, whose header is hdr (already
 * parsed, n its length). Returns 0 or -BULK_ERR_RECORD. */
int bulk_open(struct bulk *b, const uint8_t hdr[BULK_HDR_SIZE], uint8_t *c, size_t n,
	      const uint8_t tag[BULK_TAG_SIZE]);

struct bulk_rec {
	unsigned type;          /* enum bulk_rec_type */
	uint8_t *data;          /* the plaintext, in the input buffer */
	size_t len;
	size_t used;            /* bytes of input the record took */
};

/* Takes one whole record off buf[0..len) and opens it in place: 0 and rec,
 * 1 when more bytes are needed, or -BULK_ERR_FORMAT / -BULK_ERR_RECORD. */
int bulk_take(struct bulk *b, uint8_t *buf, size_t len, struct bulk_rec *rec);

#endif
