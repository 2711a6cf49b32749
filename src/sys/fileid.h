/*
 * A file's identity: the XXH3-128 hash of its whole content. Checkpoint
 * records it for every mapped file; restore maps a file only when its hash
 * still matches, so a changed library can never be mixed into a process.
 */
#ifndef ROAM_SYS_FILEID_H
#define ROAM_SYS_FILEID_H

#include <stdint.h>

/* Hashes the file open on fd from offset 0; *size gets its length. */
int file_hash(int fd, uint8_t out[16], uint64_t *size);

#endif
