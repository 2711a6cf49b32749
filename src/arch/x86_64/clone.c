/*
 * clone3 with a stack of the child's own (see arch.h).
 */
#include "arch.h"

#include <linux/sched.h>
#include <stddef.h>
#include <sys/syscall.h>

long arch_clone3_fn(struct clone_args *args, size_t size, int (*fn)(void *), void *arg)
{
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	long ret;

	/* In the child rsp is the new stack: align it, call fn, exit_group. */
	__asm__ volatile(
		"syscall\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 1f\n\t"
		"xor %%ebp, %%ebp\n\t"
		"and $-16, %%rsp\n\t"
		"mov %%r13, %%rdi\n\t"
		"call *%%r12\n\t"
		"mov %%eax, %%edi\n\t"
		"mov $231, %%eax\n\t"          /* exit_group */
		"syscall\n\t"
		"hlt\n\t"
		"1:\n\t"
		: "=a"(ret)
		: "a"((long)SYS_clone3), "D"(args), "S"(size), "r"(r12), "r"(r13)
		: "rcx", "r11", "memory");
	return ret;
}
