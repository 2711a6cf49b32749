/*
 * roam run [options] -- CMD ARGS...: runs CMD wherever the policies say, as
 * if in this terminal: stdout and stderr stream back, stdin and signals go
 * to it, and roam exits with its status.
 *
 *   --policy SPEC     placement policy (default: the daemon's)
 *   --need LIST       mem=SIZE,cpus=N,arch=A,tag=T,feature=F
 *   --near ID         on the host of job ID
 *   --on HOST         on HOST
 *   --explain         print the decision and its reason on stderr
 *   --detach          print the job id and return at once
 *   --json            with --detach or --explain: machine-readable
 *   --control PATH    roamd's socket (or ROAM_CONTROL)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/control_client.h"
#include "cli/run_early.h"
#include "net/runwire.h"

extern char **environ;

/* Whether stdin is /dev/null (a batch job, a benchmark harness): the job's
 * stdin is then empty, known before it starts. */
static bool stdin_is_null(void)
{
	struct stat st;

	return fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: roam run [--policy SPEC] [--need LIST] [--near ID] [--on HOST]\n"
			"                [--explain] [--detach] [--json] [--control PATH] -- CMD [ARGS...]\n");
}

/* Connects and sends the Run frame (and the EOF of an empty stdin right
 * behind it: the home hands it over with the Spawn, instead of it waking
 * the home and the exec host once more while the job starts). */
static int send_request(struct cc *c, const char *path, Roamnet__Run *run, bool null_in)
{
	if (cc_open(c, "run", path) < 0)
		return -1;
	if (cc_send(c, MSG_RUN, &run->base) < 0)
		return -1;
	if (null_in) {
		Roamnet__Input in = ROAMNET__INPUT__INIT;
		in.id = "";
		in.has_eof = in.eof = 1;
		if (cc_send(c, MSG_INPUT, &in.base) < 0)
			return -1;
	}
	return 0;
}

/* Takes over the connection run_early.c opened before the C library
 * started, and what it read and did not handle. */
static int take_early(struct cc *c)
{
	memset(c, 0, sizeof(*c));
	c->cmd = "run";
	c->fd = run_early.fd;
	if (run_early.err) {
		cli_error("run", "roamd connection: %s", strerror(run_early.err));
		return -1;
	}
	if (run_early.nrest && buf_append(&c->in, run_early.rest, run_early.nrest) < 0) {
		cli_error("run", "out of memory");
		return -1;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Run run = ROAMNET__RUN__INIT;
	Roamnet__Rlimit lims[RLIM_NLIMITS], *limp[RLIM_NLIMITS];
	struct run_opts o;
	bool null_in;
	char cwd[4096];
	size_t nenv = 0;
	mode_t um;
	struct cc c;
	int code;

	run_opts_parse(argc, argv, &o);
	switch (o.status) {
	case RUN_OPTS_OK:
		break;
	case RUN_OPTS_HELP:
		usage(stdout);
		return 0;
	case RUN_OPTS_UNKNOWN:
		cli_error("run", "unknown option %s", o.bad);
		usage(stderr);
		return CLI_EXIT_USAGE;
	case RUN_OPTS_NO_CMD:
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	run.policy = (char *)o.policy;
	run.need = (char *)o.need;
	run.near = (char *)o.near;
	run.on = (char *)o.on;
	run.has_explain = run.explain = o.explain;
	run.has_detach = run.detach = o.detach;

	if (run_early.sent) {
		/* The request went before the C library started (run_early.c). */
		null_in = run_early.null_in;
		if (take_early(&c) < 0) {
			cc_close(&c);
			return CLI_EXIT_FAILURE;
		}
		if (run_early.started)
			goto relay;
	} else {
		run.argv = argv + o.cmd;
		run.n_argv = (size_t)(argc - o.cmd);
		while (environ && environ[nenv])
			nenv++;
		run.env = environ;
		run.n_env = nenv;
		if (!getcwd(cwd, sizeof(cwd))) {
			cli_error("run", "cannot read the working directory: %s", strerror(errno));
			return CLI_EXIT_FAILURE;
		}
		run.cwd = cwd;
		um = umask(0);
		umask(um);
		run.umask = um;
		for (int r = 0; r < RLIM_NLIMITS; r++) {
			struct rlimit rl;
			roamnet__rlimit__init(&lims[r]);
			if (getrlimit(r, &rl) < 0)
				continue;
			lims[r].resource = (uint32_t)r;
			lims[r].soft = rl.rlim_cur;
			lims[r].hard = rl.rlim_max;
			limp[run.n_rlimits++] = &lims[r];
		}
		run.rlimits = limp;
		null_in = !run.detach && stdin_is_null();
		if (send_request(&c, path, &run, null_in) < 0) {
			cc_close(&c);
			return CLI_EXIT_FAILURE;
		}
	}
	for (;;) {
		ProtobufCMessage *m;
		unsigned type;

		if (cc_recv(&c, &type, &m) < 0) {
			cc_close(&c);
			return CLI_EXIT_FAILURE;
		}
		if (type == MSG_STARTED) {
			Roamnet__Started *s = (Roamnet__Started *)m;
			if (run.explain && !o.json)
				fprintf(stderr, "roam run: %s\n", s->explain ? s->explain : s->host);
			if (run.detach || (run.explain && o.json)) {
				FILE *out = run.detach ? stdout : stderr;
				if (o.json) {
					fprintf(out, "{\"id\":");
					cc_json_str(out, s->id);
					fprintf(out, ",\"host\":");
					cc_json_str(out, s->host);
					fprintf(out, ",\"pid\":%d,\"explain\":", s->pid);
					cc_json_str(out, s->explain);
					fprintf(out, "}\n");
				} else if (run.detach) {
					printf("%s\n", s->id);
				}
			}
			msg_free(m);
			if (run.detach) {
				cc_close(&c);
				return 0;
			}
			break;
		}
		if (type == MSG_FAILED) {
			Roamnet__Failed *f = (Roamnet__Failed *)m;
			cli_error("run", "%s", f->reason);
			code = f->code;
			msg_free(m);
			cc_close(&c);
			return code;
		}
		if (type == MSG_RESULT) {
			Roamnet__Result *r = (Roamnet__Result *)m;
			cli_error("run", "%s", r->reason ? r->reason : "refused");
			msg_free(m);
			cc_close(&c);
			return CLI_EXIT_FAILURE;
		}
		msg_free(m);
	}
relay:
	code = cc_relay(&c, !null_in);
	cc_close(&c);
	return code;
}
