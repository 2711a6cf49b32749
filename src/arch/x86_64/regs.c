/*
 * x86_64 registers: ptrace access, syscall setup and restart, image form.
 */
#include "arch.h"

#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* The kernel's restart codes (include/linux/errno.h, not exported). */
#define ERESTARTSYS           512
#define ERESTARTNOINTR        513
#define ERESTARTNOHAND        514
#define ERESTART_RESTARTBLOCK 516

int arch_get_regs(pid_t tid, arch_regs_t *r)
{
	return ptrace(PTRACE_GETREGS, tid, 0, r) ? -errno : 0;
}

int arch_set_regs(pid_t tid, const arch_regs_t *r)
{
	return ptrace(PTRACE_SETREGS, tid, 0, r) ? -errno : 0;
}

int arch_get_xstate(pid_t tid, void *buf, size_t *len)
{
	struct iovec iov = { buf, *len };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return -errno;
	*len = iov.iov_len;
	return 0;
}

int arch_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	return ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) ? -errno : 0;
}

uint64_t arch_xfeatures(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* Our own: <cpuid.h>'s rbx juggling went wrong under clang with ASan. */
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

uint32_t arch_xsave_size(void)
{
	uint32_t r[4];

	cpuid(0xd, 0, r);
	return r[1];  /* size for the features enabled in XCR0 */
}

uint64_t arch_xstate_features(const void *buf, size_t len)
{
	uint64_t bv;

	/* XSTATE_BV is the first quadword of the header at offset 512. */
	if (len < 520)
		return 0;
	memcpy(&bv, (const char *)buf + 512, sizeof(bv));
	return bv;
}

void arch_cpuid_features(uint32_t w[ARCH_CPUID_WORDS])
{
	uint32_t r[4];

	cpuid(1, 0, r);
	w[0] = r[2];
	w[1] = r[3];
	cpuid(7, 0, r);
	w[2] = r[1];
	w[3] = r[2];
	w[4] = r[3];
	/* Leaf 1 ecx bit 27 (OSXSAVE) and the APIC id bits of ebx are host state,
	 * not features: only ecx/edx are kept, and OSXSAVE is masked. */
	w[0] &= ~(1u << 27);
}

void arch_setup_syscall(arch_regs_t *r, uint64_t ip, long nr, const long a[6])
{
	r->rip = ip;
	r->rax = (unsigned long)nr;
	r->orig_rax = (unsigned long)-1;
	r->rdi = (unsigned long)a[0];
	r->rsi = (unsigned long)a[1];
	r->rdx = (unsigned long)a[2];
	r->r10 = (unsigned long)a[3];
	r->r8 = (unsigned long)a[4];
	r->r9 = (unsigned long)a[5];
}

long arch_syscall_result(const arch_regs_t *r)
{
	return (long)r->rax;
}

long arch_regs_syscall_nr(const arch_regs_t *r)
{
	return (long)r->orig_rax;
}

void arch_regs_set_syscall_nr(arch_regs_t *r, long nr)
{
	r->orig_rax = (unsigned long)nr;
}

int arch_map_vdso_syscall(uint64_t addr, long *nr, long a[6])
{
	*nr = SYS_arch_prctl;
	a[0] = 0x2003;  /* ARCH_MAP_VDSO_64 */
	a[1] = (long)addr;
	a[2] = a[3] = a[4] = a[5] = 0;
	return 0;
}

long arch_apply_restart(arch_regs_t *r, int use_restart_syscall)
{
	long nr = (long)r->orig_rax;

	if (nr < 0)
		return -1;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		break;
	case -ERESTART_RESTARTBLOCK:
		if (use_restart_syscall)
			nr = SYS_restart_syscall;
		break;
	default:
		/* Stopped at a syscall boundary, not inside one: nothing to redo. */
		r->orig_rax = (unsigned long)-1;
		return -1;
	}
	r->rax = (unsigned long)nr;
	r->rip -= ARCH_SYSCALL_INSN_LEN;
	r->orig_rax = (unsigned long)-1;
	return nr;
}

int arch_restart_pending(const arch_regs_t *r, const uint8_t at_ip[ARCH_SYSCALL_INSN_LEN])
{
	static const uint8_t insn[] = ARCH_SYSCALL_INSN;

	/* orig_rax is -1 after a tracer's restart, the original number after
	 * the kernel's; 219 would be a thread inside restart_syscall, whose ip
	 * is past the instruction (find_restarted_call's case). */
	return r->rax == ARCH_NR_RESTART_SYSCALL && (long)r->orig_rax != ARCH_NR_RESTART_SYSCALL &&
	       memcmp(at_ip, insn, sizeof(insn)) == 0;
}

void arch_set_pending_syscall(arch_regs_t *r, long nr)
{
	r->rax = (unsigned long)nr;
	r->orig_rax = (unsigned long)-1;
}

long arch_syscall_at(const uint8_t *code, size_t len)
{
	/* From the nearest instruction backwards: b8 imm32 (mov $imm32,%eax) or
	 * 48 c7 c0 imm32 (mov $imm32,%rax). Only numbers of real syscalls. */
	for (size_t end = len; end >= 5; end--) {
		const uint8_t *p = code + end - 5;
		uint32_t imm = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
		if (p[0] == 0xb8 && imm < 1024)
			return (long)imm;
		if (end >= 7 && p[-2] == 0x48 && p[-1] == 0xc7 && p[0] == 0xc0 && imm < 1024)
			return (long)imm;
	}
	return -1;
}

int arch_is_syscall_wrapper(const uint8_t *code, size_t len)
{
	/* glibc's syscall(): mov %rdi,%rax; mov %rsi,%rdi; ... syscall */
	for (size_t i = 0; i + 3 <= len; i++)
		if (code[i] == 0x48 && code[i + 1] == 0x89 && code[i + 2] == 0xf8)
			return 1;
	return 0;
}

long arch_syscall_arg_at(const uint8_t *code, size_t len)
{
	/* The caller's call instruction ends the code; before it, bf imm32
	 * (mov $imm32,%edi). */
	for (size_t end = len; end >= 5; end--) {
		const uint8_t *p = code + end - 5;
		uint32_t imm = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
		if (p[0] == 0xbf && imm < 1024)
			return (long)imm;
	}
	return -1;
}

int arch_restartable_syscall(long nr)
{
	switch (nr) {
	case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_futex: case SYS_poll:
		return 1;
	default:
		return 0;
	}
}

uint64_t arch_regs_ip(const arch_regs_t *r)
{
	return r->rip;
}

uint64_t arch_regs_sp(const arch_regs_t *r)
{
	return r->rsp;
}

int arch_regs_native(const arch_regs_t *r)
{
	return r->cs == 0x33;  /* __USER_CS; 0x23 is the 32-bit code segment */
}

#define REGS(X) X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) X(r9) X(r8) \
	X(rax) X(rcx) X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) X(cs) X(eflags) X(rsp) \
	X(ss) X(fs_base) X(gs_base) X(ds) X(es) X(fs) X(gs)

void arch_regs_to_image(const arch_regs_t *r, Roamimg__GpRegsX86 *out)
{
	roamimg__gp_regs_x86__init(out);
#define TO(f) out->f = r->f;
	REGS(TO)
#undef TO
}

void arch_regs_from_image(const Roamimg__GpRegsX86 *in, arch_regs_t *r)
{
	memset(r, 0, sizeof(*r));
#define FROM(f) r->f = in->f;
	REGS(FROM)
#undef FROM
}
