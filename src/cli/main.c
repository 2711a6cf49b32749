/*
 * roam: dispatches to one subcommand per file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
	{"checkpoint", cmd_checkpoint, "checkpoint PID -o IMAGE [--leave-running]: freeze a process into an image"},
	{"restore", cmd_restore, "restore IMAGE [--detach] [--pid-file F] [--inherit-stdio]: run a process from an image"},
	{"inspect", cmd_inspect, "inspect IMAGE: describe an image"},
	/* Cluster commands (roamd clients) go below this line. */
	{"run", cmd_run, "run [--policy SPEC] [--need LIST] [--near ID] [--on HOST] [--explain] [--detach] -- CMD ARGS...: run anywhere in the cluster"},
	{"attach", cmd_attach, "attach ID: reconnect to a job's output, stdin and signals"},
	{"wait", cmd_wait, "wait ID: wait for a job and exit with its status"},
	{"ps", cmd_ps, "ps [--json]: list the cluster's roam processes"},
	{"hosts", cmd_hosts, "hosts [--json]: list the cluster's hosts"},
	{"kill", cmd_kill, "kill [-SIG] ID: signal every process of a job"},
	{"migrate", cmd_migrate, "migrate ID --to HOST|--auto [--check] [--cold] [--stats]: move a running job to another host"},
	{"drain", cmd_drain, "drain HOST: move every job off HOST and place no new one there"},
	{"undrain", cmd_undrain, "undrain HOST: let HOST take jobs again"},
	{"keygen", cmd_keygen, "keygen FILE: write a new cluster key (mode 0600)"},
};

void cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "roam %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: roam COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "roam: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
