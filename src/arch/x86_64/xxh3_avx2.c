/*
 * XXH3-64 compiled for AVX2 (this file alone is built with -mavx2; see
 * arch_xxh3_wide in vector.c for the check that comes first). XXH3 gives the
 * same value whatever the vector width: only the speed differs, about 3x
 * here, which counts when every byte of a 1 GiB image is checked twice.
 */
#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#define XXH_VECTOR 2 /* XXH_AVX2 */
#include <xxhash.h>

#include "sys/xxh3_parts.h"

uint64_t arch_xxh3_avx2(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2);

uint64_t arch_xxh3_avx2(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2)
{
	return xxh3_parts(hdr16, p1, l1, p2, l2);
}
