/*
 * roam checkpoint PID -o IMAGE [--leave-running] [--carry-files] [--compress] [--stats]
 *
 * The image is written to a temporary file beside IMAGE (mode 0600: it holds
 * all of the process's memory), flushed to stable storage and renamed into
 * place; only then is the process killed (or resumed with --leave-running).
 * On any failure the process resumes untouched and no file is left behind.
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

static void usage(void)
{
	fprintf(stderr, "usage: roam checkpoint PID -o IMAGE|- [--leave-running] [--carry-files] [--compress] [--stats]\n");
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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"leave-running", no_argument, NULL, 'L'},
		{"carry-files", no_argument, NULL, 'C'},
		{"compress", no_argument, NULL, 'z'},
		{"stats", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct ckpt_opts opts = { .codec = IMG_CODEC_NONE, .out_fd = -1 };
	const char *output = NULL;
	int leave = 0, stats = 0, ch;

	while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o': output = optarg; break;
		case 'L': leave = 1; break;
		case 'C': opts.carry_files = 1; break;
		case 'z': opts.codec = IMG_CODEC_LZ4; break;
		case 's': stats = 1; break;
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
	struct ckpt *c = NULL;
	struct img_writer w = {0};
	char tmp[PATH_MAX] = "", msg[512];
	int fd = -1, rc, to_stdout = !strcmp(output, "-");
	uint64_t t0 = now_ns();

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
	}
	if ((rc = ckpt_open(&c, (pid_t)pid, &opts, &err)) < 0)
		goto fail;
	if ((rc = ckpt_check(c)) < 0)
		goto fail;
	if ((rc = ckpt_freeze(c)) < 0)
		goto fail;
	if ((rc = img_writer_init(&w, img_fd_write, &fd, opts.codec)) < 0) {
		roam_fail(&err, rc, "writing to %s", output);
		goto fail;
	}
	if ((rc = ckpt_dump(c, &w)) < 0)
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
	rc = leave ? ckpt_resume(c) : ckpt_kill(c);
	if (rc < 0)
		goto fail;
	if (stats) {
		const struct ckpt_stats *s = ckpt_stats(c);
		uint64_t t_end = now_ns();
		fprintf(stderr,
			"checkpoint: pid %ld threads %u vmas %u fds %u pages %llu zero-pages %llu bytes %llu "
			"frozen-ms %.3f total-ms %.3f\n",
			pid, s->threads, s->vmas, s->fds, (unsigned long long)s->pages,
			(unsigned long long)s->zero_pages, (unsigned long long)s->bytes,
			(double)(t_end - s->freeze_ns) / 1e6, (double)(t_end - t0) / 1e6);
	}
	img_writer_fini(&w);
	ckpt_close(c);
	if (!to_stdout)
		close(fd);
	return 0;

fail:
	img_writer_fini(&w);
	ckpt_close(c);  /* resumes a frozen process untouched */
	if (tmp[0]) {
		unlink(tmp);
		close(fd);
	}
	if (!err.code)
		roam_fail(&err, rc, "pid %ld", pid);
	cli_error("checkpoint", "%s", roam_error_text(&err, msg, sizeof(msg)));
	return CLI_EXIT_FAILURE;
}
