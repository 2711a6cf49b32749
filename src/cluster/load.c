/*
 * This host's load (see cluster.h and docs/daemon.md).
 *
 * Several roamd may share one kernel (the tests' namespaces, containers), so
 * a host's load is counted over the threads of the jobs it runs, found
 * through their cgroups, never over the whole machine: /proc/loadavg and the
 * root PSI files would be the same number on every host.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cluster/cluster.h"

/* The state letter of /proc/TID/stat: after the last ')'. */
static int thread_state(long tid, char *state)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	*state = p[2];
	return 0;
}

int load_runnable(const char *threads_file, unsigned *runnable)
{
	FILE *f = fopen(threads_file, "re");
	long tid;
	char st;

	if (!f)
		return -errno;
	*runnable = 0;
	while (fscanf(f, "%ld", &tid) == 1)
		if (thread_state(tid, &st) == 0 && st == 'R')
			(*runnable)++;
	fclose(f);
	return 0;
}

int load_runnable_pid(int pid, unsigned *runnable)
{
	char dir[64];
	struct dirent *d;
	DIR *dp;
	char st;

	snprintf(dir, sizeof(dir), "/proc/%d/task", pid);
	if (!(dp = opendir(dir)))
		return -errno;
	*runnable = 0;
	while ((d = readdir(dp)))
		if (d->d_name[0] != '.' && thread_state(atol(d->d_name), &st) == 0 && st == 'R')
			(*runnable)++;
	closedir(dp);
	return 0;
}

int load_psi_some(const char *pressure_file, double *avg10)
{
	FILE *f = fopen(pressure_file, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "some avg10=%lf", avg10) == 1;
	fclose(f);
	return ok ? 0 : -EIO;
}

static void cpu_features(uint64_t *bits)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	*bits = 0;
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "flags", 5))
			continue;
		for (char *tok = strtok(strchr(line, ':') ? strchr(line, ':') + 1 : line, " \n");
		     tok; tok = strtok(NULL, " \n"))
			for (unsigned i = 0; i < cl_nfeatures; i++)
				if (!strcmp(tok, cl_features[i]))
					*bits |= 1ull << i;
		break;
	}
	free(line);
	fclose(f);
}

int load_machine(struct host_load *l)
{
	FILE *f = fopen("/proc/meminfo", "re");
	struct utsname u;
	char key[64];
	unsigned long long v;
	long n;

	if (f) {
		while (fscanf(f, "%63s %llu kB\n", key, &v) == 2) {
			if (!strcmp(key, "MemTotal:"))
				l->mem_total = v << 10;
			else if (!strcmp(key, "MemAvailable:"))
				l->mem_free = v << 10;
		}
		fclose(f);
	}
	if (uname(&u) == 0)
		snprintf(l->arch, sizeof(l->arch), "%s", u.machine);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	l->ncpus = n > 0 ? (uint32_t)n : 1;
	cpu_features(&l->features);
	return 0;
}
