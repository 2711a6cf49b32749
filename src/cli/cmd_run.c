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

int cmd_run(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Run run = ROAMNET__RUN__INIT;
	Roamnet__Rlimit lims[RLIM_NLIMITS], *limp[RLIM_NLIMITS];
	bool json = false, null_in;
	char cwd[4096];
	size_t nenv = 0;
	mode_t um;
	struct cc c;
	int i, code;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--explain"))
			run.has_explain = run.explain = 1;
		else if (!strcmp(a, "--detach") || !strcmp(a, "-d"))
			run.has_detach = run.detach = 1;
		else if (!strcmp(a, "--json"))
			json = true;
		else if (i + 1 < argc && !strcmp(a, "--policy"))
			run.policy = argv[++i];
		else if (i + 1 < argc && !strcmp(a, "--need"))
			run.need = argv[++i];
		else if (i + 1 < argc && !strcmp(a, "--near"))
			run.near = argv[++i];
		else if (i + 1 < argc && !strcmp(a, "--on"))
			run.on = argv[++i];
		else {
			cli_error("run", "unknown option %s", a);
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	run.argv = argv + i;
	run.n_argv = (size_t)(argc - i);
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

	if (cc_open(&c, "run", path) < 0)
		return CLI_EXIT_FAILURE;
	if (cc_send(&c, MSG_RUN, &run.base) < 0) {
		cc_close(&c);
		return CLI_EXIT_FAILURE;
	}
	/* An empty stdin's EOF goes right behind the request: the home hands
	 * it over with the Spawn, instead of it waking the home and the exec
	 * host once more while the job starts. */
	null_in = !run.detach && stdin_is_null();
	if (null_in) {
		Roamnet__Input in = ROAMNET__INPUT__INIT;
		in.id = "";
		in.has_eof = in.eof = 1;
		if (cc_send(&c, MSG_INPUT, &in.base) < 0) {
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
			if (run.explain && !json)
				fprintf(stderr, "roam run: %s\n", s->explain ? s->explain : s->host);
			if (run.detach || (run.explain && json)) {
				FILE *out = run.detach ? stdout : stderr;
				if (json) {
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
	code = cc_relay(&c, !null_in);
	cc_close(&c);
	return code;
}
