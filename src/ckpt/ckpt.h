/*
 * Checkpoint: turn a running process into an image stream.
 *
 * The steps are separate calls so that the caller decides what happens to
 * the process once its image is safe (flushed to disk, or committed by a
 * migration peer):
 *
 *   ckpt_open     opens /proc/PID; nothing is touched
 *   ckpt_check    refuses unsupported state up front; nothing is frozen
 *   ckpt_freeze   seizes and interrupts every thread (ptrace, never SIGSTOP)
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

#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "sys/error.h"

struct ckpt_opts {
	int carry_files;        /* store the pages of every private file mapping */
	int codec;              /* enum img_codec for page records */
	int out_fd;             /* the image's regular file, which may then be
				 * written by several threads; -1 otherwise */
};

struct ckpt_stats {
	uint64_t freeze_ns;     /* CLOCK_MONOTONIC when the last thread stopped */
	uint64_t dumped_ns;     /* ... when the COMMIT record was written */
	uint64_t pages;         /* page records' pages */
	uint64_t zero_pages;    /* present pages skipped because all zero */
	uint64_t bytes;         /* stream bytes */
	uint32_t threads, vmas, fds;
};

struct ckpt;

int ckpt_open(struct ckpt **out, pid_t pid, const struct ckpt_opts *opts, struct roam_error *err);
int ckpt_check(struct ckpt *c);
int ckpt_freeze(struct ckpt *c);
int ckpt_dump(struct ckpt *c, struct img_writer *w);
int ckpt_resume(struct ckpt *c);
int ckpt_kill(struct ckpt *c);
const struct ckpt_stats *ckpt_stats(const struct ckpt *c);
void ckpt_close(struct ckpt *c);

#endif
