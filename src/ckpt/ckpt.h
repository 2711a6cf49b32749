/*
 * Checkpoint: turn a running process into an image stream.
 *
 * The steps are separate calls so that the caller decides what happens to
 * the process once its image is safe (flushed to disk, or committed by a
 * migration peer):
 *
 *   ckpt_open     opens /proc/PID; nothing is touched
 *   ckpt_check    refuses unsupported state up front; nothing is frozen
 *   ckpt_reserve  allocates the image file's likely size (opts.out_fd), so
 *                 that the freeze only copies; nothing is frozen
 *   (ckpt_precopy_start, ckpt_precopy_round: pre-copy, see below)
 *   ckpt_freeze   seizes and interrupts every thread (ptrace, never SIGSTOP)
 *   (ckpt_kill_with_tracer: from then on the process dies if we do, rather
 *                 than resume: for a caller whose image may run elsewhere)
 *   ckpt_dump     collects everything and writes the stream, COMMIT last
 *   ckpt_resume   lets the process run on exactly as it was, or
 *   ckpt_kill     ends it (only once its image is safe)
 *   ckpt_close    frees; a process still frozen is resumed first
 *
 * Every failure leaves the process able to resume untouched. Errors are
 * negative codes; the context's roam_error names the object.
 */
#ifndef ROAM_CKPT_H
#define ROAM_CKPT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "sys/error.h"

struct ckpt_opts {
	int carry_files;        /* store the pages of every private file mapping */
	int codec;              /* enum img_codec for page records */
	int out_fd;             /* the image's regular file, which may then be
				 * written by several threads; -1 otherwise */
	int dirty_hash;         /* pre-copy: track dirty pages by hashing them
				 * (DIRTY_FORCE_HASH), even where userfaultfd works */
	int tree;               /* children are taken with it (ckpt_tree_*), not
				 * refused */
	int tcp_established;    /* established TCP connections are carried
				 * (TCP_REPAIR, a network lock: sys/netlock.h),
				 * not refused: for a restore on this host */
};

struct ckpt_stats {
	uint64_t freeze_ns;     /* CLOCK_MONOTONIC when the last thread stopped */
	uint64_t dumped_ns;     /* ... when the COMMIT record was written */
	uint64_t pages;         /* page records' pages */
	uint64_t zero_pages;    /* present pages skipped because all zero */
	uint64_t bytes;         /* stream bytes */
	uint32_t threads, vmas, fds;
	/* Pre-copy. */
	uint32_t rounds;        /* ckpt_precopy_round calls */
	int dirty_mode;         /* enum dirty_mode of src/sys/dirty.h: 1 userfaultfd, 2 hashing */
	uint64_t final_pages;   /* pages written after the freeze */
	uint64_t final_dropped; /* pages named in drop records after the freeze */
	uint32_t fresh_vmas;    /* mappings sent whole after the freeze */
};

/* What one pre-copy step sent. */
struct ckpt_round {
	uint32_t round;         /* 0: ckpt_precopy_start */
	uint64_t dirty_pages;   /* pages written since the last round (0 for round 0) */
	uint64_t pages;         /* pages sent in page records */
	uint64_t dropped;       /* pages named in drop records (gone since sent) */
	uint64_t bytes;         /* stream bytes written */
	uint64_t ns;            /* how long the step took */
	uint64_t frozen_ns;     /* round 0: how long the process was stopped */
	uint32_t untracked;     /* mappings tracking lost so far: whole at the freeze */
};

struct ckpt;

int ckpt_open(struct ckpt **out, pid_t pid, const struct ckpt_opts *opts, struct roam_error *err);
/* The refusals before the freeze. The mappings are read from maps, which
 * costs nothing; with every_flag, from smaps, whose flags show what maps
 * cannot (device memory, hugetlbfs, a userfaultfd registration) at the cost
 * of a walk of every page table (1.5 ms for 64 MiB of small pages, 25 ms a
 * GiB). Without it, those are refused once frozen, where smaps is read
 * anyway, and the process runs on: every_flag is for a check that freezes
 * nothing after it (roam migrate --check). */
int ckpt_check(struct ckpt *c, int every_flag);

/*
 * Pre-copy (live checkpoint, live migration), between ckpt_check and
 * ckpt_freeze, while the process runs:
 *
 *   ckpt_precopy_start  stops the process briefly to start dirty tracking
 *                       (a userfaultfd made inside it, or page hashing with
 *                       opts.dirty_hash or where userfaultfd fails), lets it
 *                       go, and writes the start of a pre-copy stream
 *                       (image/load.h): HEADER, PLATFORM, PROCESS and MM as
 *                       they are, then every page it holds.
 *   ckpt_precopy_round  writes the pages written since the last round (and
 *                       drops those that went), as often as the caller
 *                       likes; *out says how much, so the caller can stop
 *                       when the rest is small, or when the process dirties
 *                       faster than the link carries.
 *   ckpt_precopy_pending  how many pages a round would send now, without
 *                       sending them (the freeze then sends them): so that
 *                       the caller can skip a round not worth its own cost.
 *                       -EOPNOTSUPP when the tracking cannot count without
 *                       a round (hashing).
 *
 * Then ckpt_freeze and ckpt_dump as usual: the dump writes the final
 * PROCESS, MM and FILES, the pages written since the last round, drops for
 * pages gone since they were sent, every mapping made or changed since
 * tracking began (or whose tracking was lost) whole, THREADS and COMMIT.
 * Both return 0 or a negative error; a failed ckpt_precopy_start leaves the
 * process running untouched, any failure leaves it running. w must be the
 * same writer throughout.
 */
int ckpt_precopy_start(struct ckpt *c, struct img_writer *w, struct ckpt_round *out);
int ckpt_precopy_round(struct ckpt *c, struct img_writer *w, struct ckpt_round *out);
int ckpt_precopy_pending(struct ckpt *c, uint64_t *pages);
/* What is left for the freeze, for deciding whether to go on (last: the last
 * step's figures): counted where the tracking can (ckpt_precopy_pending);
 * where it cannot (hashing), the last round's size stands in. 0, or
 * -EOPNOTSUPP before any round where it cannot count. */
int ckpt_precopy_rest(struct ckpt *c, const struct ckpt_round *last, uint64_t *pages);

/*
 * When a migration's rounds should end (pure: no process involved), before
 * a round: rest pages are left (counted, or the last round's size where the
 * tracking cannot count), last is what was left before the last round
 * (UINT64_MAX: no round yet), rate the last step's bytes per ns; enough when
 * the rest would go in rest_ns at that rate, or when it shrank by less than
 * a quarter over the last round. A round of R pages at the link's pace S
 * lasts R/S, in which a process writing W leaves W/S x R: a rest that does
 * not shrink by a quarter is a process writing at 3/4 of the link's pace or
 * more, which more rounds would not catch.
 */
bool ckpt_precopy_enough(uint64_t rest, uint64_t last, double rate, uint64_t rest_ns);
/* The rate for it after step r: its bytes per ns, but half the
 * first step's, which sent whole runs of pages: pages written since go one
 * by one (a read and a record each, about twice the cost per byte here). */
double ckpt_precopy_pace(const struct ckpt_round *r);

/* For opts.out_fd: the space the image will likely take (the process's
 * private memory, RssAnon and VmSwap of /proc/PID/status, with room for
 * headers) is
 * allocated while the process runs: filling fresh file pages (a fault and
 * zeroing each on tmpfs, block allocation elsewhere) would otherwise happen
 * under the freeze. ckpt_dump cuts the file to what it wrote. Best effort:
 * where the file system refuses, 0 all the same, and nothing is kept. */
int ckpt_reserve(struct ckpt *c);
/* The layout with its flags and page counts (smaps, a walk of every page
 * table: 1.5 ms for 64 MiB of small pages, 25 ms a GiB), read while the
 * process runs, so that the next freeze reads maps instead (no walk) and
 * takes the flags from here when maps shows the same mappings; the page
 * counts are then not trusted (the page tables are looked at). ckpt_freeze
 * takes one itself just before it stops the process when there is none;
 * calling this earlier takes the walk off the caller's path, where it has
 * to wait anyway (a migration, while the destination prepares). A thaw
 * after pre-copy's first step drops it. An madvise of a whole mapping in
 * between is missed, as it would be a moment before the freeze. */
void ckpt_snapshot(struct ckpt *c);
int ckpt_freeze(struct ckpt *c);
int ckpt_kill_with_tracer(struct ckpt *c);
int ckpt_dump(struct ckpt *c, struct img_writer *w);
int ckpt_resume(struct ckpt *c);
int ckpt_kill(struct ckpt *c);
const struct ckpt_stats *ckpt_stats(const struct ckpt *c);
void ckpt_close(struct ckpt *c);

/*
 * A process tree: the process and every descendant, frozen, dumped and then
 * killed or resumed together (opts.tree). The root is opened and checked as
 * one process; ckpt_tree_freeze freezes it, then each child it finds, top
 * down (a frozen process makes no new children), checking each as it goes.
 * ckpt_tree_dump writes one whole stream per process, the root's first
 * (image.proto, Header.tree), with what they share made once in the root.
 * Refused: a zombie child, a process in a session or process group a
 * restore could not give it back, an object other than a file, directory,
 * device, pipe or stdio shared between two processes, stdio of a child
 * connected outside the tree but through the root.
 */
struct ckpt_tree;
int ckpt_tree_open(struct ckpt_tree **out, pid_t root, const struct ckpt_opts *opts, struct roam_error *err);
/* The root, to drive alone (pre-copy, stats) before the freeze. */
struct ckpt *ckpt_tree_root(struct ckpt_tree *t);
/* ckpt_check of the root and of every descendant it has now, nothing
 * frozen (the freeze checks them again, and any child made since). */
int ckpt_tree_check(struct ckpt_tree *t, int every_flag);
int ckpt_tree_freeze(struct ckpt_tree *t);
int ckpt_tree_kill_with_tracer(struct ckpt_tree *t);
int ckpt_tree_dump(struct ckpt_tree *t, struct img_writer *w);
/* Every process resumed, or killed; the stats are summed over the tree. */
int ckpt_tree_resume(struct ckpt_tree *t);
int ckpt_tree_kill(struct ckpt_tree *t);
size_t ckpt_tree_size(const struct ckpt_tree *t);
void ckpt_tree_stats(const struct ckpt_tree *t, struct ckpt_stats *out);
void ckpt_tree_close(struct ckpt_tree *t);

#endif
