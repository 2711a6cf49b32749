/*
 * Everything the engine knows about x86_64: general registers, the XSAVE
 * area, the syscall calling convention, syscall restart, and the vDSO call.
 * Another architecture provides the same names in src/arch/NAME/arch.h.
 */
#ifndef ROAM_ARCH_H
#define ROAM_ARCH_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "image.pb-c.h"

#define ARCH_NAME "x86_64"
#define ARCH_PAGE_SIZE 4096ul
/* The reach of one page-table page (512 entries of 4 KiB): two threads
 * writing pages under the same one take turns on its lock. */
#define ARCH_PTE_TABLE_SHIFT 21
/* Highest user address + 1 with 4-level paging; mappings above need a hint. */
#define ARCH_TASK_SIZE 0x7ffffffff000ul
/* The bytes of the syscall instruction, and a trap right after it. */
#define ARCH_SYSCALL_INSN { 0x0f, 0x05 }
#define ARCH_SYSCALL_INSN_LEN 2
#define ARCH_TRAMPOLINE_CODE { 0x0f, 0x05, 0xcc, 0xcc }
/* The ip a thread reports when it stops at the trampoline's breakpoint
 * (int3 traps with the ip after it), relative to the trampoline. */
#define ARCH_TRAMPOLINE_TRAP_IP 3
/* The largest XSAVE area we accept (AMX tiles make it about 11 KiB). */
#define ARCH_XSTATE_MAX 16384

typedef struct user_regs_struct arch_regs_t;

int arch_get_regs(pid_t tid, arch_regs_t *r);
int arch_set_regs(pid_t tid, const arch_regs_t *r);

/* The XSAVE area of a stopped thread: *len is the buffer size in, bytes out. */
int arch_get_xstate(pid_t tid, void *buf, size_t *len);
int arch_set_xstate(pid_t tid, const void *buf, size_t len);

/* This CPU's enabled XSAVE features (XCR0) and XSAVE area size. */
uint64_t arch_xfeatures(void);
uint32_t arch_xsave_size(void);
/* The feature bits of an XSAVE area (its header's XSTATE_BV), 0 if too short. */
uint64_t arch_xstate_features(const void *buf, size_t len);
/* CPUID feature words: leaf 1 ecx, edx; leaf 7.0 ebx, ecx, edx. */
#define ARCH_CPUID_WORDS 5
void arch_cpuid_features(uint32_t words[ARCH_CPUID_WORDS]);

/* Sets r up to execute syscall nr(a[0..5]) at ip, the address of a syscall
 * instruction, without any restart processing of what the thread was doing. */
void arch_setup_syscall(arch_regs_t *r, uint64_t ip, long nr, const long a[6]);
long arch_syscall_result(const arch_regs_t *r);

/* A thread stopped inside an interrupted syscall has the kernel's restart
 * code in its return register. This applies the restart by hand, as the
 * kernel would on the way back to user space when no handler runs: the
 * instruction pointer goes back to the syscall instruction and the syscall
 * number is reloaded. For -ERESTART_RESTARTBLOCK the kernel keeps the
 * remaining time of a relative sleep to itself; use_restart_syscall says
 * whether that state still exists (the same thread resumes) or not (a
 * restored thread re-issues the original call, which may then last up to its
 * full length again, never shorter). Returns the syscall number re-issued, or
 * -1 when the thread was not inside an interrupted syscall. orig_rax becomes
 * -1 so that the kernel does not apply the restart a second time. */
long arch_apply_restart(arch_regs_t *r, int use_restart_syscall);

/* The syscall a stopped thread is in, as the kernel keeps it for a restart
 * (orig_rax here): -1 when none. Setting it to -1 keeps the kernel from
 * applying a restart when the thread goes on. */
long arch_regs_syscall_nr(const arch_regs_t *r);
void arch_regs_set_syscall_nr(arch_regs_t *r, long nr);

/* The kernel's number for restart_syscall, which a thread shows while it
 * resumes a sleep after job control or a ptrace stop. */
#define ARCH_NR_RESTART_SYSCALL 219
/* 1 when the thread is about to enter restart_syscall: the restart was
 * applied (by the kernel on its way out, or by a tracer that ran remote
 * syscalls in it) and it stopped again before running the syscall
 * instruction at its ip, whose bytes are at_ip. Outside the thread that
 * was interrupted, restart_syscall has nothing to resume and fails with
 * EINTR: a checkpoint re-issues the original call instead. */
int arch_restart_pending(const arch_regs_t *r, const uint8_t at_ip[ARCH_SYSCALL_INSN_LEN]);
/* Makes the thread issue syscall nr from its ip (a syscall instruction). */
void arch_set_pending_syscall(arch_regs_t *r, long nr);
/* The syscall a call site makes, told from the code before its syscall
 * instruction (len bytes ending right before it): the last "mov $nr, %eax"
 * or "mov $nr, %rax". A thread inside restart_syscall has lost its original
 * number, which the kernel keeps to itself; libc wrappers load it right
 * before the instruction. -1 when the code does not say. */
long arch_syscall_at(const uint8_t *code, size_t len);
/* The same for a call through libc's generic syscall(2), whose number comes
 * in the first argument register: 1 when code (ending before the syscall
 * instruction) is that wrapper, and then arch_syscall_arg_at(), given the
 * code before the wrapper's return address, finds the caller's
 * "mov $nr, %edi". */
int arch_is_syscall_wrapper(const uint8_t *code, size_t len);
long arch_syscall_arg_at(const uint8_t *code, size_t len);
/* The syscalls that may resume through restart_syscall (they keep a
 * restart block): a guess outside these is no answer. */
int arch_restartable_syscall(long nr);

uint64_t arch_regs_ip(const arch_regs_t *r);
uint64_t arch_regs_sp(const arch_regs_t *r);
/* 1 if the thread runs 64-bit code (a 32-bit or x32 process is refused). */
int arch_regs_native(const arch_regs_t *r);

void arch_regs_to_image(const arch_regs_t *r, Roamimg__GpRegsX86 *out);
void arch_regs_from_image(const Roamimg__GpRegsX86 *in, arch_regs_t *r);

/* clone3 where the child starts on a stack of its own (args->stack): it
 * comes back from the syscall where no C frame exists, so it calls fn(arg)
 * and exits with its result, never returning. Returns the child's pid or
 * -errno. The C library has no such call; roamd spawns with it straight into
 * a cgroup (CLONE_INTO_CGROUP) with CLONE_VM|CLONE_VFORK. */
#define ARCH_HAVE_CLONE3_FN 1
struct clone_args;
long arch_clone3_fn(struct clone_args *args, size_t size, int (*fn)(void *), void *arg);

/* A system call made directly, for code that runs before the C library
 * has started (no errno, which lives in TLS not yet set up): returns the
 * result or -errno. */
static inline long arch_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* The roam CLI's entry point (src/arch/x86_64/entry.c): it calls
 * cli_pre_libc(sp), sp pointing at argc, argv and the environment, then
 * goes on into the C library's _start as if nothing had run. */
#define ARCH_HAVE_CLI_ENTRY 1
void cli_pre_libc(long *sp);

/* The syscall that maps this kernel's vDSO (and its vvar pages) at addr in
 * the calling process, for syscall injection (restore/mm.c): its number in
 * *nr, its arguments in a[]. 0, or -ENOSYS where the architecture has none. */
int arch_map_vdso_syscall(uint64_t addr, long *nr, long a[6]);

/* XXH3-64 of a 16-byte header and two pieces (the image's record check,
 * image/stream.c), built for wider vectors than the portable build where
 * using them takes a check at run time: AVX2 here, about 3x the portable
 * build's SSE2. NULL where this CPU has none (nor has an architecture that
 * compiles its best in). XXH3's value is the same whatever the width. */
typedef uint64_t (*arch_xxh3_fn)(const uint8_t *hdr16, const void *p1, size_t l1, const void *p2, size_t l2);
arch_xxh3_fn arch_xxh3_wide(void);

#endif
