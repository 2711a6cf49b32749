/*
 * roam kill [-SIG] ID: sends a signal (default TERM) to every process of a
 * job, wherever it runs. SIG is a number or a name (KILL, SIGKILL, INT...).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/control_client.h"

static int parse_sig(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
		{"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH},
	};
	char *end;
	long n = strtol(s, &end, 10);

	if (!*end && n > 0 && n < 65)
		return (int)n;
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].name))
			return names[i].sig;
	return -1;
}

int cmd_kill(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Kill k = ROAMNET__KILL__INIT;
	ProtobufCMessage *m;
	unsigned type;
	struct cc c;
	int code = CLI_EXIT_FAILURE, i = 1;

	k.sig = SIGTERM;
	if (argc == 3 && argv[1][0] == '-') {
		k.sig = parse_sig(argv[1] + 1);
		if (k.sig < 0) {
			cli_error("kill", "unknown signal %s", argv[1] + 1);
			return CLI_EXIT_USAGE;
		}
		i = 2;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: roam kill [--control PATH] [-SIG] ID\n");
		return CLI_EXIT_USAGE;
	}
	k.id = argv[i];
	if (cc_open(&c, "kill", path) < 0)
		return CLI_EXIT_FAILURE;
	if (cc_send(&c, MSG_KILL, &k.base) == 0 && cc_recv(&c, &type, &m) == 0) {
		if (type == MSG_RESULT) {
			Roamnet__Result *r = (Roamnet__Result *)m;
			if (r->code)
				cli_error("kill", "%s", r->reason ? r->reason : "failed");
			code = r->code ? CLI_EXIT_FAILURE : 0;
		}
		msg_free(m);
	}
	cc_close(&c);
	return code;
}
