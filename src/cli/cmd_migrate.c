/*
 * roam migrate ID --to HOST | --auto [--check] [--cold] [--stats] [--progress]: moves a
 * running job to another host (typed on any host: roamd relays it); --check
 * lists what would stop it without freezing anything.
 * roam drain HOST / roam undrain HOST: stop placing jobs on HOST and move its
 * jobs away / take jobs again.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/control_client.h"
#include "sys/clock.h"

/* Prints progress frames (when wanted) until the Result; returns the exit
 * code. The rate is the bytes sent over the time since the first frame (the
 * prepare step), as this end saw them arrive: relayed or not, the same. */
static int await_result(struct cc *c, const char *cmd, bool progress, bool print_reason)
{
	double t0 = -1;

	for (;;) {
		ProtobufCMessage *m;
		unsigned type;
		int code;

		if (cc_recv(c, &type, &m) < 0)
			return CLI_EXIT_FAILURE;
		if (type == MSG_MIG_PROGRESS) {
			Roamnet__MigProgress *p = (Roamnet__MigProgress *)m;
			double t = clock_s(CLOCK_MONOTONIC);
			if (t0 < 0)
				t0 = t;
			if (progress && p->bytes && t > t0)
				fprintf(stderr, "roam %s: %s: %llu of ~%llu MiB sent, %.1f MiB/s\n", cmd, p->phase,
					(unsigned long long)(p->bytes >> 20), (unsigned long long)(p->total >> 20),
					(double)p->bytes / (1 << 20) / (t - t0));
			else if (progress)
				fprintf(stderr, "roam %s: %s: %llu of ~%llu MiB sent\n", cmd, p->phase,
					(unsigned long long)(p->bytes >> 20), (unsigned long long)(p->total >> 20));
			msg_free(m);
			continue;
		}
		if (type != MSG_RESULT) {
			msg_free(m);
			cli_error(cmd, "unexpected answer from roamd");
			return CLI_EXIT_FAILURE;
		}
		Roamnet__Result *r = (Roamnet__Result *)m;
		if (r->code)
			cli_error(cmd, "%s", r->reason ? r->reason : "failed");
		else if (print_reason && r->reason)
			printf("%s\n", r->reason);
		code = r->code ? CLI_EXIT_FAILURE : 0;
		msg_free(m);
		return code;
	}
}

int cmd_migrate(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Migrate g = ROAMNET__MIGRATE__INIT;
	bool stats = false, progress = isatty(2), autosel = false;
	struct cc c;
	int code;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--to") && i + 1 < argc)
			g.to = argv[++i];
		else if (!strcmp(argv[i], "--auto"))
			autosel = true;
		else if (!strcmp(argv[i], "--check"))
			g.has_check = g.check = 1;
		else if (!strcmp(argv[i], "--cold"))
			g.has_cold = g.cold = 1;
		else if (!strcmp(argv[i], "--stats"))
			stats = true;
		else if (!strcmp(argv[i], "--progress"))
			progress = true;
		else if (argv[i][0] != '-' && !g.id)
			g.id = argv[i];
		else
			goto usage;
	}
	if (!g.id || (!g.to && !autosel) || (g.to && autosel))
		goto usage;
	if (cc_open(&c, "migrate", path) < 0)
		return CLI_EXIT_FAILURE;
	code = cc_send(&c, MSG_MIGRATE, &g.base) < 0 ? CLI_EXIT_FAILURE
						     : await_result(&c, "migrate", progress, stats || g.check);
	cc_close(&c);
	return code;
usage:
	fprintf(stderr, "usage: roam migrate [--control PATH] ID --to HOST|--auto [--check] [--cold] [--stats] [--progress]\n");
	return CLI_EXIT_USAGE;
}

static int drain(int argc, char **argv, bool undo)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Drain d = ROAMNET__DRAIN__INIT;
	struct cc c;
	int code;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: roam %s [--control PATH] HOST\n", undo ? "undrain" : "drain");
		return CLI_EXIT_USAGE;
	}
	d.host = argv[1];
	d.has_undo = d.undo = undo;
	if (cc_open(&c, undo ? "undrain" : "drain", path) < 0)
		return CLI_EXIT_FAILURE;
	code = cc_send(&c, MSG_DRAIN, &d.base) < 0 ? CLI_EXIT_FAILURE
						   : await_result(&c, undo ? "undrain" : "drain", isatty(2), true);
	cc_close(&c);
	return code;
}

int cmd_drain(int argc, char **argv)
{
	return drain(argc, argv, false);
}

int cmd_undrain(int argc, char **argv)
{
	return drain(argc, argv, true);
}
