#include "sys/mem.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* One loop for both directions: process_vm_{readv,writev}, then the
 * /proc/PID/mem fallback for what they may not touch. */
static int mem_rw(pid_t pid, int memfd, uint64_t addr, void *buf, size_t len, int write)
{
	size_t done = 0;

	while (done < len) {
		struct iovec l = { (char *)buf + done, len - done };
		struct iovec r = { (void *)(uintptr_t)(addr + done), len - done };
		ssize_t n = write ? process_vm_writev(pid, &l, 1, &r, 1, 0) : process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (n <= 0) {
			/* No permission (PROT_NONE, read-only): /proc/PID/mem forces. */
			n = write ? pwrite(memfd, (char *)buf + done, len - done, (off_t)(addr + done))
				  : pread(memfd, (char *)buf + done, len - done, (off_t)(addr + done));
			if (n < 0)
				return -errno;
			if (n == 0)
				return -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

int mem_read(pid_t pid, int memfd, uint64_t addr, void *buf, size_t len)
{
	return mem_rw(pid, memfd, addr, buf, len, 0);
}

int mem_write(pid_t pid, int memfd, uint64_t addr, const void *buf, size_t len)
{
	return mem_rw(pid, memfd, addr, (void *)buf, len, 1);
}

int pagemap_read(int pagemapfd, uint64_t addr, size_t npages, uint64_t *out)
{
	size_t want = npages * sizeof(uint64_t), got = 0;
	off_t off = (off_t)(addr / 4096 * sizeof(uint64_t));

	while (got < want) {
		ssize_t n = pread(pagemapfd, (char *)out + got, want - got, off + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

int page_is_zero(const void *page)
{
	const uint64_t *w = page;

	/* Random data fails at the first word; only zero pages pay the full scan. */
	for (size_t i = 0; i < 4096 / sizeof(uint64_t); i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
			return 0;
	return 1;
}
