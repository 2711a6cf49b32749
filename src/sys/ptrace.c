#include "sys/ptrace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "sys/mem.h"
#include "sys/proc.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
/* The kernel's struct ptrace_rseq_configuration (glibc does not define it). */
struct rseq_configuration {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

int pt_seize(pid_t tid, unsigned long options)
{
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)options))
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return -errno;
	return 0;
}

int pt_wait_stop(pid_t tid, int *status)
{
	for (;;) {
		pid_t p = waitpid(tid, status, __WALL);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (WIFSTOPPED(*status))
			return 0;
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return -ESRCH;
	}
}

int pt_detach(pid_t tid)
{
	return ptrace(PTRACE_DETACH, tid, 0, 0) ? -errno : 0;
}

int pt_get_sigmask(pid_t tid, uint64_t *mask)
{
	return ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask) ? -errno : 0;
}

int pt_set_sigmask(pid_t tid, uint64_t mask)
{
	return ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) ? -errno : 0;
}

int pt_peek_siginfo(pid_t tid, int shared, siginfo_t *out, int max)
{
	struct __ptrace_peeksiginfo_args a = {
		.off = 0, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = 0,
	};
	int total = 0;

	while (total < max) {
		a.off = (uint64_t)total;
		a.nr = (int32_t)(max - total);
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &a, out + total);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		total += (int)n;
	}
	return total;
}

int pt_get_rseq(pid_t tid, struct pt_rseq *out)
{
	struct rseq_configuration c;

	memset(&c, 0, sizeof(c));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(c), &c) < 0)
		return -errno;
	out->ptr = c.rseq_abi_pointer;
	out->len = c.rseq_abi_size;
	out->flags = c.flags;
	out->sig = c.signature;
	return 0;
}

#define SYSCALL_STOP (SIGTRAP | 0x80)

/* Resumes tid to its next syscall stop (or with r->trap_after, to the
 * breakpoint's SIGTRAP, which the next resumption discards), reporting a
 * clone event on the way. */
static int to_syscall_stop(struct remote *r)
{
	int st, rc;

	for (;;) {
		if (ptrace(r->trap_after ? PTRACE_CONT : PTRACE_SYSCALL, r->tid, 0, 0))
			return -errno;
		if ((rc = pt_wait_stop(r->tid, &st)) < 0)
			return rc;
		if (WSTOPSIG(st) == (r->trap_after ? SIGTRAP : SYSCALL_STOP) && !(st >> 16))
			return 0;
		int event = st >> 16;
		if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK) {
			unsigned long msg = 0;
			ptrace(PTRACE_GETEVENTMSG, r->tid, 0, &msg);
			r->new_thread = (pid_t)msg;
			continue;
		}
		/* A signal arrived although all were blocked (SIGKILL cannot be
		 * blocked; SIGSTOP neither): the thread cannot be driven. */
		return -EINTR;
	}
}

int remote_syscall(struct remote *r, long *ret, long nr, long a0, long a1, long a2,
		   long a3, long a4, long a5)
{
	arch_regs_t regs = r->base;
	const long args[6] = { a0, a1, a2, a3, a4, a5 };
	int rc;

	arch_setup_syscall(&regs, r->ip, nr, args);
	if ((rc = arch_set_regs(r->tid, &regs)) < 0)
		return rc;
	if ((rc = to_syscall_stop(r)) < 0)   /* entry, or the breakpoint after the call */
		return rc;
	if (!r->trap_after && (rc = to_syscall_stop(r)) < 0)   /* exit */
		return rc;
	if ((rc = arch_get_regs(r->tid, &regs)) < 0)
		return rc;
	/* A SIGTRAP that stops the thread anywhere but after our breakpoint is
	 * somebody else's, sent while the call ran: the call's result is not
	 * known, and the thread cannot be driven further. */
	if (r->trap_after && arch_regs_ip(&regs) != r->ip + ARCH_TRAMPOLINE_TRAP_IP)
		return -EINTR;
	*ret = arch_syscall_result(&regs);
	return 0;
}

int remote_find_syscall(int procfd, pid_t pid, int memfd, uint64_t *ip)
{
	static const unsigned char insn[] = ARCH_SYSCALL_INSN;
	unsigned long long start = 0, end = 0;
	char *maps, *line;
	int rc;

	/* maps, not smaps: it does not walk the page tables. */
	if ((rc = proc_read_file(procfd, "maps", &maps, NULL)) < 0)
		return rc;
	for (line = maps; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		size_t l = strcspn(line, "\n");
		if (l > 6 && !strncmp(line + l - 6, "[vdso]", 6) && sscanf(line, "%llx-%llx", &start, &end) == 2)
			break;
		start = end = 0;
	}
	free(maps);
	if (end <= start || end - start > (1u << 20))
		return -ENOENT;
	size_t len = end - start;
	unsigned char *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	rc = mem_read(pid, memfd, start, buf, len);
	*ip = 0;
	for (size_t off = 0; rc == 0 && off + sizeof(insn) <= len; off++)
		if (!memcmp(buf + off, insn, sizeof(insn))) {
			*ip = start + off;
			break;
		}
	free(buf);
	if (rc < 0)
		return rc;
	return *ip ? 0 : -ENOENT;
}
