/*
 * roam wait ID: waits for a job to end and exits with its status (as roam
 * run would: the job's code, 128+signal, 127 or 255).
 */
#include "cli/cli.h"
#include "cli/control_client.h"

int cmd_wait(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Wait w = ROAMNET__WAIT__INIT;
	ProtobufCMessage *m;
	unsigned type;
	struct cc c;
	int code = CLI_EXIT_FAILURE;

	if (argc != 2) {
		fprintf(stderr, "usage: roam wait [--control PATH] ID\n");
		return CLI_EXIT_USAGE;
	}
	w.id = argv[1];
	if (cc_open(&c, "wait", path) < 0)
		return CLI_EXIT_FAILURE;
	if (cc_send(&c, MSG_WAIT, &w.base) == 0 && cc_recv(&c, &type, &m) == 0) {
		if (type == MSG_RESULT) {
			Roamnet__Result *r = (Roamnet__Result *)m;
			if (r->has_status) {
				code = cc_exit_code(r->status);
			} else {
				cli_error("wait", "%s", r->reason ? r->reason : "failed");
				code = r->code ? r->code : CLI_EXIT_FAILURE;
			}
		}
		msg_free(m);
	}
	cc_close(&c);
	return code;
}
