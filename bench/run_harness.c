/*
 * run_harness: runs a command many times, from C concurrent callers, and
 * reports the round trip as the user sees it (fork+exec of the command
 * included: the harness runs the roam CLI as a shell would).
 *
 *   run_harness [-n RUNS] [-c CALLERS] [-w WARMUP] [-b MiB] [-m fork|vfork] -- CMD ARGS...
 *               [::: CMD2 ARGS... [::: CMD3 ...]]
 *
 * -b makes the harness itself resident with MiB of touched memory, and -m
 * says how it creates each process: fork (copies the page tables of that
 * memory) or vfork (posix_spawn's way). Output, one line:
 *   runs=N callers=C p50_ms=... p90_ms=... p99_ms=... mean_ms=... runs_per_s=...
 * A run whose command exits non-zero counts as a failure (failures=K).
 *
 * With several commands (separated by ":::"), each caller runs them in turn,
 * one run of each per round, and one line is printed per command, in order,
 * starting "cmd=I": the commands share whatever else the machine was doing
 * during the measurement, so their ratios hold on a machine whose load
 * changes from second to second (a shared VM).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CMDS 8

struct caller {
	char **argv[MAX_CMDS];
	int ncmd;
	int runs;               /* per command */
	int use_fork;
	double *lat[MAX_CMDS];
	int failures[MAX_CMDS];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_once(char **argv, int use_fork)
{
	pid_t pid;
	int st;

	if (use_fork) {
		pid = fork();
		if (pid == 0) {
			int fd = open("/dev/null", O_RDWR);
			dup2(fd, 0);
			dup2(fd, 1);
			execvp(argv[0], argv);
			_exit(127);
		}
	} else {
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ))
			pid = -1;
		posix_spawn_file_actions_destroy(&fa);
	}
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void *caller_main(void *arg)
{
	struct caller *c = arg;

	for (int i = 0; i < c->runs; i++)
		for (int k = 0; k < c->ncmd; k++) {
			double t = now_s();
			if (run_once(c->argv[k], c->use_fork) < 0)
				c->failures[k]++;
			c->lat[k][i] = (now_s() - t) * 1e3;
		}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int runs = 200, callers = 1, warmup = 10, use_fork = 0, opt;
	long ballast_mb = 0;

	while ((opt = getopt(argc, argv, "n:c:w:b:m:")) != -1) {
		switch (opt) {
		case 'n': runs = atoi(optarg); break;
		case 'c': callers = atoi(optarg); break;
		case 'w': warmup = atoi(optarg); break;
		case 'b': ballast_mb = atol(optarg); break;
		case 'm': use_fork = !strcmp(optarg, "fork"); break;
		default:
			fprintf(stderr, "usage: run_harness [-n RUNS] [-c CALLERS] [-w WARMUP] [-b MiB] [-m fork|vfork] -- CMD... [::: CMD...]\n");
			return 2;
		}
	}
	if (optind >= argc || runs < 1 || callers < 1)
		return 2;
	/* The commands: argv from optind, split at each ":::" (made NULL). */
	char **cmds[MAX_CMDS];
	int ncmd = 0;
	cmds[ncmd++] = argv + optind;
	for (int i = optind; i < argc; i++)
		if (!strcmp(argv[i], ":::")) {
			argv[i] = NULL;
			if (ncmd == MAX_CMDS || i + 1 >= argc)
				return 2;
			cmds[ncmd++] = argv + i + 1;
		}
	if (ballast_mb > 0) {
		size_t sz = (size_t)ballast_mb << 20;
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		for (size_t i = 0; i < sz; i += 4096)
			p[i] = 1;
	}
	for (int i = 0; i < warmup; i++)
		for (int k = 0; k < ncmd; k++)
			run_once(cmds[k], use_fork);

	int per = (runs + callers - 1) / callers;
	size_t n = (size_t)per * (size_t)callers;
	struct caller *cs = calloc((size_t)callers, sizeof(*cs));
	pthread_t *th = calloc((size_t)callers, sizeof(*th));
	double *all = calloc(n * (size_t)ncmd, sizeof(double));
	if (!cs || !th || !all)
		return 1;
	double t0 = now_s();
	for (int i = 0; i < callers; i++) {
		cs[i].ncmd = ncmd;
		cs[i].runs = per;
		cs[i].use_fork = use_fork;
		for (int k = 0; k < ncmd; k++) {
			cs[i].argv[k] = cmds[k];
			cs[i].lat[k] = all + (size_t)k * n + (size_t)i * (size_t)per;
		}
		pthread_create(&th[i], NULL, caller_main, &cs[i]);
	}
	int failures = 0;
	for (int i = 0; i < callers; i++)
		pthread_join(th[i], NULL);
	double wall = now_s() - t0;
	for (int k = 0; k < ncmd; k++) {
		double *lat = all + (size_t)k * n, sum = 0;
		int fails = 0;
		for (int i = 0; i < callers; i++)
			fails += cs[i].failures[k];
		failures += fails;
		qsort(lat, n, sizeof(double), cmp);
		for (size_t i = 0; i < n; i++)
			sum += lat[i];
		if (ncmd > 1)
			printf("cmd=%d ", k);
		/* runs_per_s: of this command alone, when it is the only one. */
		printf("runs=%zu callers=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f mean_ms=%.3f runs_per_s=%.1f failures=%d\n",
		       n, callers, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100 < n ? n * 99 / 100 : n - 1],
		       sum / (double)n, ncmd > 1 ? 0.0 : (double)n / wall, fails);
	}
	free(cs);
	free(th);
	free(all);
	return failures ? 1 : 0;
}
