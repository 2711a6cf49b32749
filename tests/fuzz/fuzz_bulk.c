/*
 * libFuzzer: the bulk channel's record layer. The first input byte picks
 * the cipher by its remainder modulo 3 (1: AES-256-OCB, 2: AES-256-GMAC,
 * records in clear, both when the CPU has AES; 0 or no AES: XChaCha20-
 * Poly1305); the rest is a byte stream as it arrives on a bulk connection,
 * opened with a fixed key. Records are taken off it with bulk_take, as the
 * channel's reader does, until the first refusal or an incomplete record.
 * The seeds in corpus/bulk/ are streams sealed under that key (all-zero tx
 * and rx keys), so that mutations reach past the tag check: they were made
 * with bulk_init_keys(&b, cipher, zero, zero) and bulk_seal.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/bulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[32];
	static int ready;
	struct bulk b;
	struct bulk_rec r;
	uint8_t *buf, *p;
	int cipher;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	cipher = !crypto_aead_aes256gcm_is_available() || data[0] % 3 == 0 ? BULK_XCHACHA20POLY1305
					     : data[0] % 3 == 1	      ? BULK_AES256OCB
									      : BULK_AES256GMAC;
	if (bulk_init_keys(&b, cipher, zero, zero) < 0)
		abort();
	size--;
	/* A copy: records are opened in place. */
	buf = p = malloc(size ? size : 1);
	if (!buf) {
		bulk_close(&b);
		return 0;
	}
	memcpy(buf, data + 1, size);
	while (bulk_take(&b, p, size, &r) == 0) {
		if (r.used > size || r.data + r.len > p + r.used)
			abort();
		p += r.used;
		size -= r.used;
		if (r.type == BULK_REC_END)
			break;
	}
	free(buf);
	bulk_close(&b);
	return 0;
}
