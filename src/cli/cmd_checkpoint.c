/*
 * roam checkpoint PID -o IMAGE|- [--leave-running] [--carry-files] [--compress] [--stats]
 *                 [--tcp-established] [--live [--rounds N] [--round-gap MS] [--dirty-hash]]
 *
 * --tcp-established carries established TCP connections (TCP_REPAIR, root),
 * for a restore on this host: from the freeze until the restore, roam's
 * nftables table (sys/netlock.h) drops their packets, so that the peer,
 * whose segments find no socket meanwhile, is not answered with a reset and
 * retransmits.
 * Killed, the process's connections close without a FIN or a reset.
 *
 * --live copies the memory while the process runs (pre-copy: a first full
 * pass, then up to N rounds (default 4) of the pages written meanwhile,
 * fewer once the rest is under 1 MiB or stops shrinking; --round-gap lets
 * the process run MS milliseconds before each), and freezes it only for the
 * last delta. --dirty-hash (or ROAM_DIRTY_HASH=1 in the
 * environment) tracks written pages by hashing instead of userfaultfd.
 *
 * The image is written to a temporary file beside IMAGE (mode 0600: it holds
 * all of the process's memory), flushed to stable storage and renamed into
 * place; only then is the process killed (or resumed with --leave-running).
 * On any failure the process resumes untouched and no file is left behind.
 *
 * The process's descendants go with it (a process tree, ckpt_tree_*): all
 * are frozen, written one after the other, and killed or resumed together.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "cli/cli.h"
#include "sys/clock.h"
#include "sys/proc.h"

static void usage(void)
{
	fprintf(stderr, "usage: roam checkpoint PID -o IMAGE|- [--leave-running] [--carry-files] [--compress] [--stats]\n"
			"                       [--tcp-established] [--live [--rounds N] [--round-gap MS] [--dirty-hash]]\n");
}

static int fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc = 0;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = -errno;
	close(fd);
	return rc;
}

static void print_round(const struct ckpt_round *r)
{
	fprintf(stderr, "checkpoint: round %u dirty %llu pages %llu dropped %llu bytes %llu ms %.3f untracked %u",
		r->round, (unsigned long long)r->dirty_pages, (unsigned long long)r->pages,
		(unsigned long long)r->dropped, (unsigned long long)r->bytes, (double)r->ns / 1e6, r->untracked);
	if (r->round == 0)
		fprintf(stderr, " frozen-ms %.3f", (double)r->frozen_ns / 1e6);
	fputc('\n', stderr);
}

/* The pre-copy rounds while the process runs: stop once what is left to
 * send is small, or once it stops shrinking (the process writes as fast as
 * the rounds copy): what the freeze would send now (ckpt_precopy_rest). */
static int precopy(struct ckpt *c, struct img_writer *w, int rounds, int gap_ms, int stats)
{
	struct ckpt_round r;
	uint64_t last = UINT64_MAX;
	int rc;

	if ((rc = ckpt_precopy_start(c, w, &r)) < 0)
		return rc;
	if (stats) {
		fprintf(stderr, "checkpoint: pre-copy with %s\n", ckpt_stats(c)->dirty_mode == 1 ? "userfaultfd" : "hashing");
		print_round(&r);
	}
	for (int i = 0; i < rounds; i++) {
		struct timespec gap = { gap_ms / 1000, (long)(gap_ms % 1000) * 1000000 };
		while (gap_ms && nanosleep(&gap, &gap) < 0 && errno == EINTR)
			;
		if ((rc = ckpt_precopy_round(c, w, &r)) < 0)
			return rc;
		if (stats)
			print_round(&r);
		uint64_t rest = 0;
		(void)ckpt_precopy_rest(c, &r, &rest);   /* after a round: never fails */
		if (rest * 4096 <= (1u << 20) || rest >= last)
			break;
		last = rest;
	}
	return 0;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"leave-running", no_argument, NULL, 'L'},
		{"carry-files", no_argument, NULL, 'C'},
		{"compress", no_argument, NULL, 'z'},
		{"stats", no_argument, NULL, 's'},
		{"live", no_argument, NULL, 'l'},
		{"rounds", required_argument, NULL, 'r'},
		{"dirty-hash", no_argument, NULL, 'H'},
		{"round-gap", required_argument, NULL, 'g'},
		{"tcp-established", no_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct ckpt_opts opts = { .codec = IMG_CODEC_NONE, .out_fd = -1 };
	const char *output = NULL;
	int leave = 0, stats = 0, live = 0, rounds = 4, gap_ms = 0, ch;
	const char *force_hash = getenv("ROAM_DIRTY_HASH");

	opts.dirty_hash = force_hash && *force_hash && strcmp(force_hash, "0");

	while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o': output = optarg; break;
		case 'L': leave = 1; break;
		case 'C': opts.carry_files = 1; break;
		case 'T': opts.tcp_established = 1; break;
		case 'z': opts.codec = IMG_CODEC_LZ4; break;
		case 's': stats = 1; break;
		case 'l': live = 1; break;
		case 'r':
			rounds = atoi(optarg);
			if (rounds < 0 || rounds > 1000) {
				usage();
				return CLI_EXIT_USAGE;
			}
			break;
		case 'H': opts.dirty_hash = 1; break;
		case 'g':
			gap_ms = atoi(optarg);
			if (gap_ms < 0 || gap_ms > 60000) {
				usage();
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h': usage(); return 0;
		default: usage(); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !output) {
		usage();
		return CLI_EXIT_USAGE;
	}
	char *end;
	long pid = strtol(argv[optind], &end, 10);
	if (*end || pid <= 0 || pid > INT_MAX) {
		cli_error("checkpoint", "'%s' is not a process id", argv[optind]);
		return CLI_EXIT_USAGE;
	}

	struct roam_error err = {0};
	struct ckpt_tree *t = NULL;
	struct ckpt *c = NULL;
	struct img_writer w = {0};
	char tmp[PATH_MAX] = "", msg[512];
	int fd = -1, old_image = -1, rc, to_stdout = !strcmp(output, "-");
	uint64_t t0 = mono_ns();

	if (to_stdout) {
		fd = STDOUT_FILENO;
	} else {
		snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", output);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			rc = roam_fail(&err, -errno, "creating %s", tmp);
			tmp[0] = '\0';
			goto fail;
		}
		fchmod(fd, 0600);
		opts.out_fd = fd;
		/* The rename replaces an older image, and frees its pages as it
		 * does (some ms per 64 MiB on tmpfs): held open here, that older
		 * file is freed only after the process is let go. */
		old_image = open(output, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if ((rc = ckpt_tree_open(&t, (pid_t)pid, &opts, &err)) < 0)
		goto fail;
	c = ckpt_tree_root(t);
	if ((rc = ckpt_tree_check(t, 0)) < 0)
		goto fail;
	/* Pre-copy tracks one process's memory: a tree is refused before it
	 * begins, not after its first pass. */
	pid_t kid = 0;
	int dirfd = live ? proc_open((pid_t)pid) : -1;
	if (dirfd >= 0 && proc_count_children(dirfd, &kid) > 0)
		rc = roam_fail(&err, -ROAM_E_REFUSED, "child process %d: a process tree is not checkpointed live "
			       "(--live) yet", kid);
	if (dirfd >= 0)
		close(dirfd);
	if (rc < 0)
		goto fail;
	if ((rc = img_writer_init(&w, img_fd_write, &fd, opts.codec)) < 0) {
		roam_fail(&err, rc, "writing to %s", output);
		goto fail;
	}
	if (live && (rc = precopy(c, &w, rounds, gap_ms, stats)) < 0)
		goto fail;
	if (!live && (rc = ckpt_reserve(c)) < 0)
		goto fail;
	if ((rc = ckpt_tree_freeze(t)) < 0)
		goto fail;
	if ((rc = ckpt_tree_dump(t, &w)) < 0)
		goto fail;
	/* The image must be safe before the process may die. */
	if (!to_stdout) {
		if (fsync(fd) < 0) {
			rc = roam_fail(&err, -errno, "flushing %s", tmp);
			goto fail;
		}
		if (rename(tmp, output) < 0) {
			rc = roam_fail(&err, -errno, "renaming %s to %s", tmp, output);
			goto fail;
		}
		tmp[0] = '\0';
		fsync_dir_of(output);
	}
	rc = leave ? ckpt_tree_resume(t) : ckpt_tree_kill(t);
	if (rc < 0)
		goto fail;
	if (stats) {
		struct ckpt_stats sum;
		const struct ckpt_stats *s = &sum;
		uint64_t t_end = mono_ns();
		ckpt_tree_stats(t, &sum);
		fprintf(stderr,
			"checkpoint: pid %ld processes %zu threads %u vmas %u fds %u pages %llu zero-pages %llu bytes %llu "
			"frozen-ms %.3f dump-ms %.3f total-ms %.3f\n",
			pid, ckpt_tree_size(t), s->threads, s->vmas, s->fds, (unsigned long long)s->pages,
			(unsigned long long)s->zero_pages, (unsigned long long)s->bytes,
			(double)(t_end - s->freeze_ns) / 1e6, (double)(s->dumped_ns - s->freeze_ns) / 1e6,
			(double)(t_end - t0) / 1e6);
		if (live)
			fprintf(stderr, "checkpoint: final pages %llu dropped %llu fresh-vmas %u\n",
				(unsigned long long)s->final_pages, (unsigned long long)s->final_dropped, s->fresh_vmas);
		/* CLOCK_MONOTONIC, to measure a downtime against roam restore's. */
		fprintf(stderr, "checkpoint: frozen-at-ns %llu\n", (unsigned long long)s->freeze_ns);
	}
	img_writer_fini(&w);
	ckpt_tree_close(t);
	if (!to_stdout)
		close(fd);
	if (old_image >= 0)
		close(old_image);
	return 0;

fail:
	img_writer_fini(&w);
	ckpt_tree_close(t);  /* resumes every frozen process untouched */
	if (old_image >= 0)
		close(old_image);
	if (tmp[0]) {
		unlink(tmp);
		close(fd);
	}
	if (!err.code)
		roam_fail(&err, rc, "pid %ld", pid);
	cli_error("checkpoint", "%s", roam_error_text(&err, msg, sizeof(msg)));
	return CLI_EXIT_FAILURE;
}
