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

/* The same, through a cache of hashes keyed by device, inode, size, ctime
 * and mtime: an unchanged file is not read again. ctime cannot be set by
 * anyone but the kernel, so a file changed since it was hashed never hits.
 * The cache lives in $ROAM_CACHE, or /var/cache/roam for root and
 * ~/.cache/roam for others (mode 0700: each user trusts only their own). A
 * cache that cannot be used is not an error: the file is then hashed. */
int file_hash_cached(int fd, uint8_t out[16], uint64_t *size);

#endif
