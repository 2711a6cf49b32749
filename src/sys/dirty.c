#include "sys/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include "sys/mem.h"

/* The installed headers are older than the kernel: what 6.7 added. */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WRITTEN (1 << 1)
#endif
#ifndef PAGE_IS_FILE
#define PAGE_IS_FILE    (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#endif

#define PAGE 4096ul
#define PM_FRAME_MASK ((1ull << 55) - 1)  /* PFN, or swap type and offset */

/*
 * The page map entry of a write-protection marker, as read through a page
 * map opened like d->pagemapfd (by us: the same capabilities show the same
 * swap fields): a page of our own, never touched, write-protected by a
 * userfaultfd of our own with the features open_uffd asks for. 0 when it
 * cannot be learned or told apart.
 */
static void learn_marker(uint64_t *out)
{
	uint64_t pm = 0;
	int uffd = -1, pmfd = -1, rc = 0;
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	*out = 0;
	if (p == MAP_FAILED)
		return;
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct uffdio_register reg = { .range = { (uint64_t)(uintptr_t)p, PAGE }, .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { (uint64_t)(uintptr_t)p, PAGE }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (uffd < 0 || pmfd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		rc = -errno;
	else
		rc = pagemap_read(pmfd, (uint64_t)(uintptr_t)p, 1, &pm);
	/* Only "swapped out" with the swap fields shown (they are, to
	 * CAP_SYS_ADMIN) is told apart from a page really swapped out:
	 * otherwise 0, and no entry is taken for a marker. */
	*out = rc == 0 && (pm & (PM_PRESENT | PM_SWAPPED)) == PM_SWAPPED && (pm & PM_FRAME_MASK) ? pm : 0;
	if (pmfd >= 0)
		close(pmfd);
	if (uffd >= 0)
		close(uffd);
	munmap(p, PAGE);
}

int dirty_is_marker(const struct dirty *d, uint64_t pm)
{
	return d->mode == DIRTY_UFFD && d->marker && pm == d->marker;
}

int dirty_knows_markers(const struct dirty *d)
{
	return d->mode != DIRTY_UFFD || d->marker;
}

static int open_uffd(struct dirty *d, struct remote *r)
{
	long fd;
	int rc, pidfd;

	learn_marker(&d->marker);
	rc = remote_syscall(r, &fd, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
	/* Unprivileged (vm.unprivileged_userfaultfd 0, the default): only one
	 * that handles faults of user mode alone. That is no loss here: an
	 * asynchronous write-protection fault, from user or kernel mode, is
	 * resolved by the kernel without ever reaching the userfaultfd. */
	if (rc == 0 && fd == -EPERM)
		rc = remote_syscall(r, &fd, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0,
				    0, 0, 0);
	if (rc < 0)
		return rc;
	if (fd < 0)
		return (int)fd;
	pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	d->uffd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	rc = d->uffd < 0 ? -errno : 0;
	if (pidfd >= 0)
		close(pidfd);
	long ignored;
	remote_syscall(r, &ignored, SYS_close, fd, 0, 0, 0, 0, 0);
	if (rc < 0)
		return rc;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	if (ioctl(d->uffd, UFFDIO_API, &api) < 0) {
		rc = -errno;
		close(d->uffd);
		d->uffd = -1;
		return rc;
	}
	return 0;
}

int dirty_open(struct dirty *d, pid_t pid, struct remote *r, unsigned flags)
{
	char path[64];

	memset(d, 0, sizeof(*d));
	d->pid = pid;
	d->uffd = -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	d->pagemapfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	d->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->pagemapfd < 0 || d->memfd < 0) {
		int rc = -errno;
		dirty_close(d);
		return rc;
	}
	d->mode = DIRTY_HASH;
	if (!(flags & DIRTY_FORCE_HASH) && r && open_uffd(d, r) == 0)
		d->mode = DIRTY_UFFD;
	return 0;
}

static int hash_pages(struct dirty *d, uint64_t start, size_t n, uint64_t *out)
{
	/* No bigger than the range: a process may have thousands of one page. */
	size_t chunk = n < 256 ? n : 256;
	uint8_t *buf = malloc((chunk ? chunk : 1) * PAGE);
	int rc = buf ? 0 : -ENOMEM;

	for (size_t i = 0; !rc && i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		rc = mem_read(d->pid, d->memfd, start + i * PAGE, buf, k * PAGE);
		for (size_t j = 0; !rc && j < k; j++)
			out[i + j] = XXH3_64bits(buf + j * PAGE, PAGE);
	}
	free(buf);
	return rc;
}

/* The index of the first range that starts above addr: the ranges are kept
 * sorted by start, and never overlap, so that finding one is a binary
 * search (a process may have tens of thousands of mappings). */
static size_t ranges_above(const struct dirty *d, uint64_t addr)
{
	size_t lo = 0, hi = d->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->ranges[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int dirty_track(struct dirty *d, uint64_t start, uint64_t end, unsigned how)
{
	struct dirty_range rg = { start, end, NULL };
	size_t at = ranges_above(d, start);
	int rc = 0;

	if ((start | end) & (PAGE - 1) || end <= start)
		return -EINVAL;
	if ((at > 0 && d->ranges[at - 1].end > start) || (at < d->nranges && d->ranges[at].start < end))
		return -EEXIST;
	if (d->nranges == d->capranges) {
		size_t cap = d->capranges ? 2 * d->capranges : 16;
		struct dirty_range *nr = realloc(d->ranges, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		d->ranges = nr;
		d->capranges = cap;
	}
	if (d->mode == DIRTY_UFFD && !(how & DIRTY_BY_HASH)) {
		struct uffdio_register reg = { .range = { start, end - start }, .mode = UFFDIO_REGISTER_MODE_WP };
		struct uffdio_writeprotect wp = { .range = { start, end - start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) < 0 || ioctl(d->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
			return -errno;
	} else {
		size_t n = (size_t)((end - start) / PAGE);
		rg.hash = malloc(n * sizeof(uint64_t));
		if (!rg.hash)
			return -ENOMEM;
		if ((rc = hash_pages(d, start, n, rg.hash)) < 0) {
			free(rg.hash);
			return rc;
		}
	}
	memmove(&d->ranges[at + 1], &d->ranges[at], (d->nranges - at) * sizeof(*d->ranges));
	d->ranges[at] = rg;
	d->nranges++;
	return 0;
}

static struct dirty_range *covering(struct dirty *d, uint64_t start, uint64_t end)
{
	size_t i = ranges_above(d, start);

	return i > 0 && end <= d->ranges[i - 1].end ? &d->ranges[i - 1] : NULL;
}

static int scan_uffd(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx)
{
	struct page_region vec[64];
	int rc = 0;

	while (start < end && !rc) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg), .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start, .end = end, .vec = (uint64_t)(uintptr_t)vec, .vec_len = 64,
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(d->pagemapfd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return errno == EPERM ? -ENOENT : -errno;
		for (long i = 0; i < n && !rc; i++)
			rc = fn(ctx, vec[i].start, vec[i].end);
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return rc;
}

static int scan_hash(struct dirty *d, struct dirty_range *rg, uint64_t start, uint64_t end, dirty_fn fn, void *ctx)
{
	size_t n = (size_t)((end - start) / PAGE), first = (size_t)((start - rg->start) / PAGE);
	uint64_t *now = malloc(n * sizeof(uint64_t));
	int rc;

	if (!now)
		return -ENOMEM;
	if ((rc = hash_pages(d, start, n, now)) < 0)
		goto out;
	for (size_t i = 0; i < n && !rc;) {
		if (now[i] == rg->hash[first + i]) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && now[j] != rg->hash[first + j]) {
			rg->hash[first + j] = now[j];
			j++;
		}
		rc = fn(ctx, start + i * PAGE, start + j * PAGE);
		i = j;
	}
out:
	free(now);
	return rc;
}

int dirty_scan(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx)
{
	struct dirty_range *rg = covering(d, start, end);

	if ((start | end) & (PAGE - 1) || end <= start)
		return -EINVAL;
	if (!rg)
		return -ENOENT;
	return rg->hash ? scan_hash(d, rg, start, end, fn, ctx) : scan_uffd(d, start, end, fn, ctx);
}

static int ignore_run(void *ctx, uint64_t start, uint64_t end)
{
	(void)ctx;
	(void)start;
	(void)end;
	return 0;
}

void dirty_rearm(struct dirty *d, uint64_t start, uint64_t end)
{
	struct dirty_range *rg = covering(d, start, end);

	if (rg && !rg->hash)
		(void)scan_uffd(d, start, end, ignore_run, NULL);
}

void dirty_copied(struct dirty *d, uint64_t addr, const void *data, size_t npages)
{
	struct dirty_range *rg;

	if (!npages || !(rg = covering(d, addr, addr + npages * PAGE)) || !rg->hash)
		return;
	for (size_t i = 0; i < npages; i++)
		rg->hash[(addr - rg->start) / PAGE + i] = XXH3_64bits((const uint8_t *)data + i * PAGE, PAGE);
}

/* One PAGEMAP_SCAN pass without write-protecting: runs of pages whose
 * categories, after inverting those of inv, include all of mask (or, with
 * anyof, any of anyof). */
static int scan_fd(int pagemapfd, uint64_t start, uint64_t end, uint64_t inv, uint64_t mask, uint64_t anyof,
		   dirty_fn fn, void *ctx)
{
	struct page_region vec[64];
	int rc = 0;

	while (start < end && !rc) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg), .start = start, .end = end, .vec = (uint64_t)(uintptr_t)vec, .vec_len = 64,
			.category_inverted = inv, .category_mask = mask, .category_anyof_mask = anyof,
			.return_mask = mask | anyof,
		};
		long n = ioctl(pagemapfd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n && !rc; i++)
			rc = fn(ctx, vec[i].start, vec[i].end);
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return rc;
}

static int count_run(void *ctx, uint64_t start, uint64_t end)
{
	*(uint64_t *)ctx += (end - start) / PAGE;
	return 0;
}

int dirty_count(struct dirty *d, uint64_t start, uint64_t end, uint64_t *pages)
{
	struct dirty_range *rg;

	if ((start | end) & (PAGE - 1) || end <= start)
		return -EINVAL;
	if (d->mode != DIRTY_UFFD)
		return -EOPNOTSUPP;
	if (!(rg = covering(d, start, end)))
		return -ENOENT;
	if (rg->hash)
		return 0;
	/* The same category scan_uffd asks for, without PM_SCAN_WP_MATCHING:
	 * nothing is protected again. */
	return scan_fd(d->pagemapfd, start, end, 0, PAGE_IS_WRITTEN, 0, count_run, pages);
}

int pagemap_present(int pagemapfd, uint64_t start, uint64_t end, dirty_fn fn, void *ctx)
{
	if ((start | end) & (PAGE - 1) || end <= start)
		return -EINVAL;
	return scan_fd(pagemapfd, start, end, 0, 0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, fn, ctx);
}

static int scan_categories(struct dirty *d, uint64_t start, uint64_t end, uint64_t inv, uint64_t mask, dirty_fn fn,
			   void *ctx)
{
	return scan_fd(d->pagemapfd, start, end, inv, mask, 0, fn, ctx);
}

int dirty_gone(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx)
{
	int rc;

	if (d->mode != DIRTY_UFFD)
		return -EOPNOTSUPP;
	if ((start | end) & (PAGE - 1) || end <= start)
		return -EINVAL;
	/* Swapped pages and write-protection markers look alike here: both
	 * are "not present". */
	if ((rc = scan_categories(d, start, end, PAGE_IS_PRESENT, PAGE_IS_PRESENT, fn, ctx)) < 0)
		return rc;
	return scan_categories(d, start, end, 0, PAGE_IS_PFNZERO, fn, ctx);
}

int dirty_file_pages(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx)
{
	if (d->mode != DIRTY_UFFD)
		return -EOPNOTSUPP;
	if ((start | end) & (PAGE - 1) || end <= start)
		return -EINVAL;
	return scan_categories(d, start, end, 0, PAGE_IS_PRESENT | PAGE_IS_FILE, fn, ctx);
}

void dirty_close(struct dirty *d)
{
	for (size_t i = 0; i < d->nranges; i++)
		free(d->ranges[i].hash);
	free(d->ranges);
	d->ranges = NULL;
	d->nranges = d->capranges = 0;
	if (d->uffd >= 0)
		close(d->uffd);  /* unregisters every range: the process is as before */
	if (d->pagemapfd >= 0)
		close(d->pagemapfd);
	if (d->memfd >= 0)
		close(d->memfd);
	d->uffd = d->pagemapfd = d->memfd = -1;
}
