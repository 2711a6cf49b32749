/*
 * XXH3-64 of a 16-byte header and two pieces: the image's record check.
 * Each build of it includes this after <xxhash.h>, configured its own way:
 * the portable one in image/stream.c, the wider ones in src/arch/ (which
 * gives the same value, faster).
 */
#ifndef ROAM_XXH3_PARTS_H
#define ROAM_XXH3_PARTS_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t xxh3_parts(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, hdr16, 16);
	if (l1)
		XXH3_64bits_update(&st, p1, l1);
	if (l2)
		XXH3_64bits_update(&st, p2, l2);
	return XXH3_64bits_digest(&st);
}

#endif
