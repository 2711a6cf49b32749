/*
 * roam ps [--json]: every roam process of the cluster the caller may see
 * (their own; root: all), gathered by the local roamd from every up host.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/control_client.h"

static void fmt_bytes(char *b, size_t n, uint64_t v)
{
	const char *u = "BKMGT";
	double x = (double)v;

	while (x >= 1024 && u[1]) {
		x /= 1024;
		u++;
	}
	snprintf(b, n, u[0] == 'B' ? "%.0f%c" : "%.1f%c", x, u[0]);
}

static void fmt_age(char *b, size_t n, uint64_t started)
{
	long s = (long)time(NULL) - (long)started;

	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(b, n, "%lds", s);
	else if (s < 7200)
		snprintf(b, n, "%ldm", s / 60);
	else
		snprintf(b, n, "%ldh", s / 3600);
}

int cmd_ps(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Ps req = ROAMNET__PS__INIT;
	ProtobufCMessage *m;
	unsigned type;
	bool json = argc == 2 && !strcmp(argv[1], "--json");
	struct cc c;

	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: roam ps [--control PATH] [--json]\n");
		return CLI_EXIT_USAGE;
	}
	if (cc_open(&c, "ps", path) < 0)
		return CLI_EXIT_FAILURE;
	if (cc_send(&c, MSG_PS, &req.base) < 0 || cc_recv(&c, &type, &m) < 0) {
		cc_close(&c);
		return CLI_EXIT_FAILURE;
	}
	cc_close(&c);
	if (type != MSG_PS_LIST) {
		cli_error("ps", "unexpected answer from roamd");
		msg_free(m);
		return CLI_EXIT_FAILURE;
	}
	Roamnet__PsList *l = (Roamnet__PsList *)m;
	if (json) {
		printf("[");
		for (size_t i = 0; i < l->n_jobs; i++) {
			Roamnet__JobInfo *j = l->jobs[i];
			printf("%s{\"id\":", i ? "," : "");
			cc_json_str(stdout, j->id);
			printf(",\"host\":"); cc_json_str(stdout, j->host);
			printf(",\"home\":"); cc_json_str(stdout, j->home);
			printf(",\"user\":"); cc_json_str(stdout, j->user);
			printf(",\"state\":"); cc_json_str(stdout, j->state);
			printf(",\"pid\":%d,\"cpu_ns\":%llu,\"rss\":%llu,\"started\":%llu", j->pid,
			       (unsigned long long)j->cpu_ns, (unsigned long long)j->rss,
			       (unsigned long long)j->started);
			printf(",\"migrations\":%u", j->migrations);
			if (j->has_status)
				printf(",\"status\":%d", j->status);
			printf(",\"command\":"); cc_json_str(stdout, j->command);
			printf("}");
		}
		printf("]\n");
	} else {
		printf("%-14s %-10s %-10s %-10s %-8s %8s %8s %5s %4s  %s\n", "ID", "HOST", "HOME", "USER",
		       "STATE", "CPU", "RSS", "AGE", "MIG", "COMMAND");
		for (size_t i = 0; i < l->n_jobs; i++) {
			Roamnet__JobInfo *j = l->jobs[i];
			char cpu[32], rss[32], age[32];
			snprintf(cpu, sizeof(cpu), "%.2fs", (double)j->cpu_ns / 1e9);
			fmt_bytes(rss, sizeof(rss), j->rss);
			fmt_age(age, sizeof(age), j->started);
			printf("%-14s %-10s %-10s %-10s %-8s %8s %8s %5s %4u  %s\n", j->id, j->host, j->home,
			       j->user, j->state, cpu, rss, age, j->migrations, j->command ? j->command : "");
		}
	}
	msg_free(m);
	return 0;
}
