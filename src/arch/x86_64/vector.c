/*
 * The vector width code may use beyond the build's baseline (SSE2), told
 * at run time: see arch_xxh3_wide in arch.h.
 */
#include <cpuid.h>
#include <stdbool.h>

#include "arch.h"

uint64_t arch_xxh3_avx2(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2);

/*
 * AVX2 is usable when the CPU has it (CPUID 7.0 EBX) and the kernel saves
 * the YMM registers (XCR0 bits 1 and 2). Asked when first needed, not by a
 * constructor (nor __builtin_cpu_supports, whose libgcc constructor runs in
 * every program linking it): CPUID traps to the hypervisor on a VM, about
 * 5 us each here, and every roam run would pay for a check that only
 * images need.
 */
static bool have_avx2(void)
{
	unsigned a, b, c, d, lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
		return false;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if ((lo & 6) != 6)
		return false;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2);
}

arch_xxh3_fn arch_xxh3_wide(void)
{
	return have_avx2() ? arch_xxh3_avx2 : NULL;
}
