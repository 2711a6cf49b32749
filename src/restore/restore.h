/*
 * Restore: rebuild a running process from an image stream.
 *
 * The process is built from outside: roam forks a child, which prepares what
 * only it can (session, cwd, umask, rlimits, descriptors, a trampoline page
 * with a syscall instruction) and stops; everything else (the address space,
 * the vDSO, threads, signal state, registers) is made by remote syscalls
 * that the tracer runs inside it, while page data is written straight into
 * its memory as the stream arrives. Nothing of the image runs until the
 * COMMIT record has been read and every step has succeeded: a truncated or
 * corrupt stream kills the half-built process, so a restored process either
 * runs complete or never runs.
 *
 * Trust: the process runs as the caller. Credentials in the image are
 * compared with the caller's, never granted, unless the caller is root.
 */
#ifndef ROAM_RESTORE_H
#define ROAM_RESTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "sys/error.h"

struct restore_opts {
	int same_pid;           /* a taken PID is an error instead of a new PID */
	int stdio[3];           /* descriptors to install as 0, 1, 2 instead of the
				 * image's; -1 keeps the image's (--inherit-stdio
				 * passes 0, 1, 2) */
	int ncgroup;            /* the new process joins these cgroups (cgroup.procs
				 * files open for writing) first of all, so that it is
				 * built under their limits: over a memory limit, the
				 * restore fails (the kernel's OOM kill or ENOMEM) */
	int cgroup_procs[4];
	int authenticated;      /* the stream comes over a channel that authenticates
				 * every byte (img_reader_authenticated): its page
				 * records may come without their checks */
};

struct restore_stats {
	uint64_t started_ns;    /* CLOCK_MONOTONIC at restore_run */
	uint64_t released_ns;   /* ... when the process was let run */
	uint64_t validated_ns, spawned_ns, laid_out_ns, committed_ns;  /* stage ends */
	uint64_t pages;
	/* Pre-copy streams: when the final picture (PROCESS, MM, FILES) was in,
	 * that is, about when the source froze, and the pages written since. */
	uint64_t final_ns;
	uint64_t final_pages;
	uint32_t threads;
	uint32_t fill_helpers;  /* threads that helped fill the pages (pages.c) */
	int pid_kept;           /* it runs under its original PID */
	int timens;             /* in a time namespace made for it */
	/* A network lock of its TCP connections (sys/netlock.h) that could not
	 * be deleted once they were back: its name and nft's words, for the
	 * caller to tell ("" when none). */
	char netlock_left[256];
};

struct restore;

int restore_open(struct restore **out, const struct restore_opts *opts, struct roam_error *err);

/*
 * Two-phase restore, for a caller that must decide after the whole image is
 * in whether the process may run (a migration's commit):
 *
 *   restore_prepare   reads the whole stream through fn/ctx, up to and
 *                     including COMMIT, and does every stage but the last:
 *                     the process exists complete (memory, files, threads,
 *                     registers), stopped and traced by the calling thread.
 *                     Returns its PID (the caller's child), or a negative
 *                     error with nothing left running.
 *   restore_release   lets it run. On failure it is killed: nothing is left.
 *   restore_abort     kills it and reaps it: nothing is left. 0, or -EINVAL
 *                     once released.
 *
 * All three must be called from the same thread (the tracer). Should that
 * thread or roam die between prepare and release, the kernel kills the held
 * process (PTRACE_O_EXITKILL): it never runs half-committed.
 * restore_close of a prepared, unreleased process aborts it.
 */
pid_t restore_prepare(struct restore *r, img_read_fn fn, void *ctx);
/* The same from an image that is all in memory (a mapped file): pages are
 * copied into the process straight from it; data may go once this returns. */
pid_t restore_prepare_mem(struct restore *r, const void *data, size_t len);
int restore_release(struct restore *r);
int restore_abort(struct restore *r);

/* restore_prepare + restore_release. */
pid_t restore_run(struct restore *r, img_read_fn fn, void *ctx);
pid_t restore_run_mem(struct restore *r, const void *data, size_t len);
/* restore_run over an image file (or any fd: a pipe is read as a stream).
 * From a regular file, page blocks are not read by the stream reader but by
 * the threads that place them, each reading and checking its own block
 * (img_reader_lazy_pages): reading, checking and filling are shared. */
pid_t restore_run_file(struct restore *r, int fd);

/*
 * After restore_prepare: when opts.stdio[fd] (fd 0, 1 or 2) replaced the
 * image's descriptor, the bytes the image says were queued in it and not yet
 * read (stdin a pipe: what the process had not read at the checkpoint), for
 * the caller to write first into the pipe it gave. *data (valid until
 * restore_close) is NULL and *len 0 when there are none. 0, or -EINVAL for
 * another fd or before the image was read.
 */
int restore_stdio_data(const struct restore *r, int fd, const void **data, size_t *len);

const struct restore_stats *restore_stats(const struct restore *r);
void restore_close(struct restore *r);

#endif
