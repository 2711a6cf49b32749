/*
 * The roam CLI's entry point (the CLI is linked with -e arch_cli_entry).
 * It runs cli_pre_libc on the process's first stack before the C library's
 * _start, then enters _start with the stack and %rdx (the dynamic loader's
 * fini function, 0 for a static program) as the kernel or loader left
 * them, so the C library starts as it always does. Kept alone in its file:
 * only the CLI links it.
 */
#include "arch.h"

__asm__(".text\n"
	".globl arch_cli_entry\n"
	".type arch_cli_entry, @function\n"
	"arch_cli_entry:\n"
	"	mov %rsp, %rbx\n"       /* callee-saved: kept across the call */
	"	mov %rdx, %r12\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call cli_pre_libc\n"
	"	mov %rbx, %rsp\n"
	"	mov %r12, %rdx\n"
	"	xor %ebx, %ebx\n"
	"	xor %r12d, %r12d\n"
	"	jmp _start\n"
	".size arch_cli_entry, .-arch_cli_entry\n");
