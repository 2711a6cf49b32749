/*
 * fpu: FPU, SSE, AVX and AVX-512 register contents survive a checkpoint
 * taken while they are live in registers.
 *
 * Each round loads distinct patterns into ymm0-15 (and, where the CPU has
 * AVX-512, zmm0-31 and k1-k7), sets a non-default MXCSR rounding mode, spins
 * in a register-only busy loop (where a checkpoint most likely lands), then
 * stores the registers and compares.  The same for the eight x87 stack
 * registers (80-bit values) with a non-default x87 control word.  Each
 * thread (-t N) uses its own patterns.
 */
#include "subject.h"

#include <pthread.h>

#define SPIN 20000000UL
static volatile int stop_threads;
static int have_avx, have_avx512;

#define LD_Y(n) "vmovdqu " #n "*32(%[in]), %%ymm" #n "\n\t"
#define ST_Y(n) "vmovdqu %%ymm" #n ", " #n "*32(%[out])\n\t"
#define LD_Z(n) "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n\t"
#define ST_Z(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n\t"
#define SPIN_ASM "mov %[loops], %%rcx\n\t1: dec %%rcx\n\tjnz 1b\n\t"
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* MXCSR with all exceptions masked and rounding toward zero. */
#define MXCSR_TEST 0x7f80u

static void compare(const uint8_t *a, const uint8_t *b, size_t len, size_t reg, const char *kind,
		    const char *who)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			subj_fail("%s: %s%zu byte %zu is %#x, want %#x", who, kind, i / reg,
				  i % reg, b[i], a[i]);
}

static void check_avx(uint64_t seed, int sabotage, const char *who)
{
	uint8_t in[16 * 32] __attribute__((aligned(32)));
	uint8_t out[16 * 32] __attribute__((aligned(32)));
	uint32_t mx_in = MXCSR_TEST, mx_out = 0, mx_save = 0;
	long sab = sabotage;

	subj_fill(in, sizeof(in), seed);
	memset(out, 0, sizeof(out));
	__asm__ volatile(
		"stmxcsr %[save]\n\t"
		"ldmxcsr %[mxin]\n\t"
		LD_Y(0) LD_Y(1) LD_Y(2) LD_Y(3) LD_Y(4) LD_Y(5) LD_Y(6) LD_Y(7)
		LD_Y(8) LD_Y(9) LD_Y(10) LD_Y(11) LD_Y(12) LD_Y(13) LD_Y(14) LD_Y(15)
		SPIN_ASM
		"test %[sab], %[sab]\n\t"
		"jz 2f\n\t"
		"vpcmpeqd %%ymm5, %%ymm5, %%ymm5\n\t"
		"2:\n\t"
		ST_Y(0) ST_Y(1) ST_Y(2) ST_Y(3) ST_Y(4) ST_Y(5) ST_Y(6) ST_Y(7)
		ST_Y(8) ST_Y(9) ST_Y(10) ST_Y(11) ST_Y(12) ST_Y(13) ST_Y(14) ST_Y(15)
		"stmxcsr %[mxout]\n\t"
		"ldmxcsr %[save]\n\t"
		"vzeroupper\n\t"
		: [mxout] "=m"(mx_out), [save] "+m"(mx_save)
		: [in] "r"(in), [out] "r"(out), [loops] "r"(SPIN), [sab] "r"(sab), [mxin] "m"(mx_in)
		: "rcx", "cc", "memory", XMM_CLOBBERS);
	compare(in, out, sizeof(in), 32, "ymm", who);
	SUBJ_CHECK(mx_out == MXCSR_TEST, "%s: MXCSR %#x, want %#x", who, mx_out, MXCSR_TEST);
}

/* zmm16-31 and the mask registers are never used by this (non-AVX-512)
 * build, so only the low 16 need declaring as clobbered. */
static void check_avx512(uint64_t seed, const char *who)
{
	uint8_t in[32 * 64] __attribute__((aligned(64)));
	uint8_t out[32 * 64] __attribute__((aligned(64)));
	uint16_t kin[8], kout[8];
	int i;

	subj_fill(in, sizeof(in), seed);
	memset(out, 0, sizeof(out));
	for (i = 0; i < 8; i++)
		kin[i] = (uint16_t)subj_pattern(seed + 1, (uint64_t)i);
	memset(kout, 0, sizeof(kout));
	__asm__ volatile(
		"kmovw 2(%[kin]), %%k1\n\t" "kmovw 4(%[kin]), %%k2\n\t" "kmovw 6(%[kin]), %%k3\n\t"
		"kmovw 8(%[kin]), %%k4\n\t" "kmovw 10(%[kin]), %%k5\n\t" "kmovw 12(%[kin]), %%k6\n\t"
		"kmovw 14(%[kin]), %%k7\n\t"
		LD_Z(0) LD_Z(1) LD_Z(2) LD_Z(3) LD_Z(4) LD_Z(5) LD_Z(6) LD_Z(7)
		LD_Z(8) LD_Z(9) LD_Z(10) LD_Z(11) LD_Z(12) LD_Z(13) LD_Z(14) LD_Z(15)
		LD_Z(16) LD_Z(17) LD_Z(18) LD_Z(19) LD_Z(20) LD_Z(21) LD_Z(22) LD_Z(23)
		LD_Z(24) LD_Z(25) LD_Z(26) LD_Z(27) LD_Z(28) LD_Z(29) LD_Z(30) LD_Z(31)
		SPIN_ASM
		ST_Z(0) ST_Z(1) ST_Z(2) ST_Z(3) ST_Z(4) ST_Z(5) ST_Z(6) ST_Z(7)
		ST_Z(8) ST_Z(9) ST_Z(10) ST_Z(11) ST_Z(12) ST_Z(13) ST_Z(14) ST_Z(15)
		ST_Z(16) ST_Z(17) ST_Z(18) ST_Z(19) ST_Z(20) ST_Z(21) ST_Z(22) ST_Z(23)
		ST_Z(24) ST_Z(25) ST_Z(26) ST_Z(27) ST_Z(28) ST_Z(29) ST_Z(30) ST_Z(31)
		"kmovw %%k1, 2(%[kout])\n\t" "kmovw %%k2, 4(%[kout])\n\t" "kmovw %%k3, 6(%[kout])\n\t"
		"kmovw %%k4, 8(%[kout])\n\t" "kmovw %%k5, 10(%[kout])\n\t" "kmovw %%k6, 12(%[kout])\n\t"
		"kmovw %%k7, 14(%[kout])\n\t"
		"vzeroupper\n\t"
		:
		: [in] "r"(in), [out] "r"(out), [kin] "r"(kin), [kout] "r"(kout), [loops] "r"(SPIN)
		: "rcx", "cc", "memory", XMM_CLOBBERS);
	compare(in, out, sizeof(in), 64, "zmm", who);
	for (i = 1; i < 8; i++)
		SUBJ_CHECK(kin[i] == kout[i], "%s: k%d is %#x, want %#x", who, i, kout[i], kin[i]);
}

/* x87 control word: 24-bit precision, round up, exceptions masked. */
#define FPUCW_TEST 0x087fu

static void check_x87(uint64_t seed, const char *who)
{
	long double in[8], out[8];
	uint16_t cw_in = FPUCW_TEST, cw_out = 0, cw_save = 0;
	int i;

	for (i = 0; i < 8; i++)
		in[i] = (long double)(subj_pattern(seed, (uint64_t)i) >> 11) / 3.0L + i;
	memset(out, 0, sizeof(out));
	__asm__ volatile(
		"fnstcw %[save]\n\t"
		"fldcw %[cwin]\n\t"
		"fldt 0*16(%[in])\n\t" "fldt 1*16(%[in])\n\t" "fldt 2*16(%[in])\n\t" "fldt 3*16(%[in])\n\t"
		"fldt 4*16(%[in])\n\t" "fldt 5*16(%[in])\n\t" "fldt 6*16(%[in])\n\t" "fldt 7*16(%[in])\n\t"
		SPIN_ASM
		"fstpt 7*16(%[out])\n\t" "fstpt 6*16(%[out])\n\t" "fstpt 5*16(%[out])\n\t"
		"fstpt 4*16(%[out])\n\t" "fstpt 3*16(%[out])\n\t" "fstpt 2*16(%[out])\n\t"
		"fstpt 1*16(%[out])\n\t" "fstpt 0*16(%[out])\n\t"
		"fnstcw %[cwout]\n\t"
		"fldcw %[save]\n\t"
		: [cwout] "=m"(cw_out), [save] "+m"(cw_save)
		: [in] "r"(in), [out] "r"(out), [loops] "r"(SPIN), [cwin] "m"(cw_in)
		: "rcx", "cc", "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)",
		  "st(7)");
	for (i = 0; i < 8; i++)
		SUBJ_CHECK(memcmp(&in[i], &out[i], 10) == 0, "%s: st(%d) is %La, want %La", who, 7 - i,
			   out[i], in[i]);
	SUBJ_CHECK(cw_out == FPUCW_TEST, "%s: x87 control word %#x, want %#x", who, cw_out,
		   FPUCW_TEST);
}

static void one_round(uint64_t seed, int sabotage, const char *who)
{
	check_x87(seed, who);
	if (have_avx)
		check_avx(seed + 1, sabotage, who);
	if (have_avx512)
		check_avx512(seed + 2, who);
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	char who[32];
	uint64_t round = 0;

	snprintf(who, sizeof(who), "thread %d", idx);
	while (!stop_threads)
		one_round(1000 * (uint64_t)(idx + 1) + round++ % 7, 0, who);
	return NULL;
}

static uint64_t main_round;
static int sabotage_now;

static void verify(void)
{
	one_round(main_round++ % 5, sabotage_now, "main");
}

int main(int argc, char **argv)
{
	pthread_t *th;

	subj_init(argc, argv, "fpu");
	__builtin_cpu_init();
	have_avx = __builtin_cpu_supports("avx");
	have_avx512 = __builtin_cpu_supports("avx512f");
	subj_log("x87%s%s\n", have_avx ? " avx" : "", have_avx512 ? " avx512" : "");
	if (!have_avx && subj.sabotage)
		subj_fail("sabotage needs AVX");
	th = subj_start_threads(worker);
	verify();
	subj_ready();
	/* A round takes tens of milliseconds: sabotage the very first one. */
	sabotage_now = subj.sabotage;
	subj_loop(verify, NULL);
	subj_join_threads(th, &stop_threads);
	subj_pass();
}
