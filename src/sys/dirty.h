/*
 * Which pages of another process were written since we last asked: the
 * dirty tracking that pre-copy (live checkpoint, live migration) copies
 * memory by, while the process runs.
 *
 * This kernel has no soft-dirty bit. The first way is userfaultfd
 * write-protection in asynchronous mode: a write clears the protection
 * without any message (UFFD_FEATURE_WP_ASYNC), and PAGEMAP_SCAN lists the
 * written pages and protects them again in one call. The userfaultfd must be
 * created inside the target (a remote syscall); we then hold it through
 * pidfd_getfd and close the target's copy. The second way, for kernels or
 * mappings without it (and forced by DIRTY_FORCE_HASH so that it is tested
 * too), keeps a hash of every page and compares.
 *
 * A range that is not tracked (a mapping created after dirty_track, or one
 * the kernel would not register) is reported as such: its caller copies it
 * whole. Nothing is ever silently skipped.
 */
#ifndef ROAM_SYS_DIRTY_H
#define ROAM_SYS_DIRTY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sys/ptrace.h"

enum dirty_mode { DIRTY_UFFD = 1, DIRTY_HASH = 2 };
#define DIRTY_FORCE_HASH 0x1

struct dirty_range {
	uint64_t start, end;
	uint64_t *hash;         /* DIRTY_HASH: one per page */
};

struct dirty {
	pid_t pid;
	enum dirty_mode mode;
	int uffd;               /* DIRTY_UFFD: on the target's mm */
	int pagemapfd, memfd;
	uint64_t marker;        /* DIRTY_UFFD: a write-protection marker's page map entry, or 0 */
	struct dirty_range *ranges;  /* sorted by start, never overlapping */
	size_t nranges, capranges;
};

/* Prepares tracking of pid. r is a stopped thread of pid, used to create the
 * userfaultfd inside it (its registers are the caller's to put back). */
int dirty_open(struct dirty *d, pid_t pid, struct remote *r, unsigned flags);
/* Starts tracking [start, end): every page counts as clean from now on.
 * -EINVAL when the kernel refuses to track that mapping, -EEXIST when it
 * meets a range tracked already. With DIRTY_BY_HASH
 * the range is tracked by hashing whatever the mode: shared memory, whose
 * pages can change with no write in the process's own page tables (another
 * process's write; a hole punched by MADV_REMOVE, then read back as zero
 * under the old write protection), which only a comparison sees. */
#define DIRTY_BY_HASH 0x1
int dirty_track(struct dirty *d, uint64_t start, uint64_t end, unsigned how);
/* Calls fn for each run of pages of [start, end) written since they were
 * tracked or last reported, and tracks them again. -ENOENT when part of the
 * range is not tracked: the caller must then copy the range whole. */
typedef int (*dirty_fn)(void *ctx, uint64_t start, uint64_t end);
int dirty_scan(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx);
/* Before pages of [start, end) are read to be sent for the first time:
 * with userfaultfd they count as clean from now on, so that a write that
 * came before the read (it is in the copy) is not sent again by the next
 * scan; only a write after it is. Hashing does the same after the read
 * (dirty_copied). Best effort: pages it cannot re-arm stay written, and
 * go again. */
void dirty_rearm(struct dirty *d, uint64_t start, uint64_t end);
/* Hashing: records data, npages pages just copied from addr (or what the
 * copy's reader holds there without a copy), as the pages' clean state. dirty_scan read them a moment before: had they changed and
 * changed back since (a counter up and down), the copy would hold the
 * passing value and the next scan would see nothing. No-op with DIRTY_UFFD,
 * where any write shows. */
void dirty_copied(struct dirty *d, uint64_t addr, const void *data, size_t npages);
/* DIRTY_UFFD only (-EOPNOTSUPP otherwise: hashing learns it only by a
 * scan): adds to *pages the number of pages of [start, end) that dirty_scan
 * would report now, without reporting them or tracking them again. A range
 * tracked DIRTY_BY_HASH adds nothing: a round finds its pages. */
int dirty_count(struct dirty *d, uint64_t start, uint64_t end, uint64_t *pages);

/* DIRTY_UFFD only (-EOPNOTSUPP otherwise: hashing sees such pages change).
 * dirty_gone calls fn for runs of [start, end) that may hold none of the
 * process's data any more, since no write shows it: pages not present
 * (dropped by MADV_DONTNEED, or swapped out: the caller reads them to tell)
 * and the shared zero page. dirty_file_pages: the present pages of a
 * private file mapping that are the file's own, not a private copy. */
int dirty_gone(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx);
int dirty_file_pages(struct dirty *d, uint64_t start, uint64_t end, dirty_fn fn, void *ctx);
void dirty_close(struct dirty *d);

/* Whether pm, an entry of the tracked process's page map read through
 * pagemapfd, is a write-protection marker: a page that holds nothing
 * (dirty_track leaves one on every page never populated, and zapping a
 * protected page leaves one). The page map shows it as swapped out, as it
 * does a page really swapped out or being migrated: the entry's swap type
 * tells them apart, and the marker's whole entry is learned once, on a page
 * of our own (dirty_open), rather than built from kernel constants. */
int dirty_is_marker(const struct dirty *d, uint64_t pm);
/* Whether dirty_is_marker knows a marker (not without CAP_SYS_ADMIN, to
 * whom the page map hides swap fields), or none can appear (hashing). If
 * not, the pages present must be listed before dirty_track, the process
 * stopped in between. */
int dirty_knows_markers(const struct dirty *d);

/* Runs of [start, end) holding pages present or swapped out (write-
 * protection markers count as swapped: they read as zero) by PAGEMAP_SCAN
 * on a /proc/PID/pagemap descriptor, which skips what no page table covers:
 * a sparse reservation costs what it holds, not its size. -ENOTTY where the
 * kernel has no PAGEMAP_SCAN. Not tracking: here since it shares the scan. */
int pagemap_present(int pagemapfd, uint64_t start, uint64_t end, dirty_fn fn, void *ctx);

#endif
