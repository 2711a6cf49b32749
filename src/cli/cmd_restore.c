/*
 * roam restore IMAGE|- [--detach] [--pid-file F] [--inherit-stdio] [--same-pid] [--stats]
 *
 * Without --detach, roam restore waits for the process (its child) and exits
 * with its status, 128+signal when a signal killed it, as a shell reports it.
 * Meanwhile SIGINT and SIGQUIT are left to the process (it shares our
 * terminal's process group unless it leads its own session), and SIGTERM and
 * SIGHUP sent to roam are passed on to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "restore/restore.h"

static volatile sig_atomic_t forward_to;

static void forward(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

static void usage(void)
{
	fprintf(stderr, "usage: roam restore IMAGE|- [--detach] [--pid-file F] [--inherit-stdio] [--same-pid] [--stats]\n");
}

int cmd_restore(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"detach", no_argument, NULL, 'd'},
		{"pid-file", required_argument, NULL, 'p'},
		{"inherit-stdio", no_argument, NULL, 'i'},
		{"same-pid", no_argument, NULL, 'S'},
		{"stats", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct restore_opts opts = { .stdio = { -1, -1, -1 } };
	const char *pid_file = NULL;
	int detach = 0, stats = 0, ch;

	while ((ch = getopt_long(argc, argv, "dh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': detach = 1; break;
		case 'p': pid_file = optarg; break;
		case 'i': opts.stdio[0] = 0; opts.stdio[1] = 1; opts.stdio[2] = 2; break;
		case 'S': opts.same_pid = 1; break;
		case 's': stats = 1; break;
		case 'h': usage(); return 0;
		default: usage(); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage();
		return CLI_EXIT_USAGE;
	}
	const char *image = argv[optind];
	int fd = strcmp(image, "-") ? open(image, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		cli_error("restore", "%s: %s", image, strerror(errno));
		return CLI_EXIT_FAILURE;
	}

	struct roam_error err = {0};
	struct restore *r = NULL;
	char msg[512];
	pid_t pid;
	if (restore_open(&r, &opts, &err) < 0) {
		cli_error("restore", "out of memory");
		return CLI_EXIT_FAILURE;
	}
	/* A regular file is read, not mapped: mapping it costs the mapping and
	 * unmapping of every page, more than the copy of a read. Its page
	 * blocks are read by the threads that place them (restore_run_file). */
	pid = restore_run_file(r, fd);
	if (pid < 0) {
		cli_error("restore", "%s: %s", image, roam_error_text(&err, msg, sizeof(msg)));
		restore_close(r);
		return CLI_EXIT_FAILURE;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (restore_stats(r)->netlock_left[0])
		cli_error("restore", "its TCP connections stay cut off: their network lock could not be lifted "
			  "(nftables table inet roam): %s", restore_stats(r)->netlock_left);
	if (stats) {
		const struct restore_stats *s = restore_stats(r);
#define MS(a, b) ((double)((a) - (b)) / 1e6)
		fprintf(stderr,
			"restore: pid %d%s threads %u pages %llu fill-helpers %u timens %d restore-ms %.3f "
			"(validate %.3f spawn %.3f layout %.3f pages %.3f finish %.3f)\n",
			pid, s->pid_kept ? " (kept)" : " (new)", s->threads, (unsigned long long)s->pages,
			s->fill_helpers, s->timens,
			MS(s->released_ns, s->started_ns), MS(s->validated_ns, s->started_ns),
			MS(s->spawned_ns, s->validated_ns), MS(s->laid_out_ns, s->spawned_ns),
			MS(s->committed_ns, s->laid_out_ns), MS(s->released_ns, s->committed_ns));
		if (s->final_ns)
			fprintf(stderr, "restore: pre-copy: final picture to release %.3f ms, %llu pages after it\n",
				MS(s->released_ns, s->final_ns), (unsigned long long)s->final_pages);
		/* CLOCK_MONOTONIC, to measure a downtime against roam checkpoint's. */
		fprintf(stderr, "restore: released-at-ns %llu\n", (unsigned long long)s->released_ns);
#undef MS
	}
	restore_close(r);
	if (pid_file) {
		FILE *pf = fopen(pid_file, "we");
		if (!pf || fprintf(pf, "%d\n", pid) < 0 || fclose(pf) != 0) {
			cli_error("restore", "writing %s: %s", pid_file, strerror(errno));
			/* The process runs: it is not ours to kill for a pid file. */
		}
	}
	if (detach)
		return 0;

	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	forward_to = pid;
	struct sigaction sa = { .sa_handler = forward };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			cli_error("restore", "waiting for pid %d: %s", pid, strerror(errno));
			return CLI_EXIT_FAILURE;
		}
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
