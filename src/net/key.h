/*
 * The cluster key file: 64 hex digits and a newline, mode 0600. roamd refuses
 * a key file that anyone but its owner may read or write, as ssh refuses a
 * private key left open.
 */
#ifndef ROAM_NET_KEY_H
#define ROAM_NET_KEY_H

#include <stdint.h>

#include "net/link.h"

enum key_error {
	KEY_ERR_BASE   = 6500,
	KEY_ERR_MODE   = 6501,  /* group or others may access the file */
	KEY_ERR_FORMAT = 6502,  /* not 64 hex digits */
};

const char *key_strerror(int err);

/* Writes a new random key to path, created 0600 (never overwrites). */
int key_generate(const char *path);

/* Reads the key at path into key; -KEY_ERR_MODE if the file is open to others. */
int key_load(const char *path, uint8_t key[LINK_KEY_SIZE]);

#endif
