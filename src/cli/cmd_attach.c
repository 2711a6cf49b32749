/*
 * roam attach ID: reconnects to a job's output (what was kept while nobody
 * was attached, then what comes), forwards stdin and signals, and exits
 * with its status, as roam run would have.
 */
#include <string.h>

#include "cli/cli.h"
#include "cli/control_client.h"

int cmd_attach(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Attach a = ROAMNET__ATTACH__INIT;
	ProtobufCMessage *m;
	unsigned type;
	struct cc c;
	int code;

	if (argc != 2) {
		fprintf(stderr, "usage: roam attach [--control PATH] ID\n");
		return CLI_EXIT_USAGE;
	}
	a.id = argv[1];
	if (cc_open(&c, "attach", path) < 0)
		return CLI_EXIT_FAILURE;
	if (cc_send(&c, MSG_ATTACH, &a.base) < 0 || cc_recv(&c, &type, &m) < 0) {
		cc_close(&c);
		return CLI_EXIT_FAILURE;
	}
	if (type == MSG_RESULT) {
		Roamnet__Result *r = (Roamnet__Result *)m;
		cli_error("attach", "%s", r->reason ? r->reason : "refused");
		msg_free(m);
		cc_close(&c);
		return CLI_EXIT_FAILURE;
	}
	msg_free(m);
	code = cc_relay(&c, true);
	cc_close(&c);
	return code;
}
