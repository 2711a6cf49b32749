/*
 * roam-sim: the command line. Runs every (policy, load) configuration asked
 * for, each as independent replications, and prints a table or CSV.
 *
 *   roam-sim --hosts N --load L --policy SPEC --jobs J --seed S [--csv]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim.h"
#include "sys/clock.h"

#define MAX_POLICIES 32
#define MAX_LOADS    64
#define MAX_SPEEDS   64

static const double default_sweep[] = { 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: roam-sim [options]\n"
"  --hosts N            hosts (default 1000)\n"
"  --load L             arrival rate / total capacity, 0 < L < 1 (default 0.9)\n"
"  --sweep[=L1,L2,...]  several loads (default 0.5 .. 0.99)\n"
"  --policy SPEC        random, least-loaded, jsq, pod:d=D, probe:d=D,\n"
"                       threshold:t=T,lp=L; may be repeated (default pod:d=2)\n"
"  --jobs J             processes per configuration, all replications (default 1000000)\n"
"  --reps R             independent replications (default 5)\n"
"  --seed S             seed (default 1)\n"
"  --warmup F           fraction of each replication not measured (default 0.1)\n"
"  --ps                 processor sharing instead of FIFO\n"
"  --work DIST          exp, det, bpareto[:a=A,r=R] (mean 1; default exp)\n"
"  --speeds S1,S2,...   host i runs at S[i mod k] (default all 1)\n"
"  --publish P          loads published every P s (default 0: exact)\n"
"  --probe-delay D      round trip of a probe (default 0)\n"
"  --transfer-delay D   moving a new process (default 0)\n"
"  --migrate            preemptive migration by age (needs --ps)\n"
"  --mig-cost C         seconds per MiB migrated (default 0.01)\n"
"  --mig-period T       how often hosts consider a migration (default 1)\n"
"  --mem M              MiB per process without a trace (default 10)\n"
"  --trace FILE         arrivals from a CSV trace (see docs/sim.md)\n"
"  --csv                CSV (RFC 4180) instead of a table\n"
"  --plot PREFIX        also write PREFIX.png and PREFIX.svg (mean, p99 vs load)\n");
}

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "roam-sim: %s %s: %s\n", opt, val, why);
	return 2;
}

static int num(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (end == s || *end || errno || !isfinite(*out)) ? -1 : 0;
}

static int count(const char *s, uint64_t *out)
{
	double v;

	/* Accept 1e7 as well as 10000000. */
	if (num(s, &v) < 0 || v < 1 || v > 1e12 || v != floor(v))
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static int list(const char *s, double *out, size_t max, size_t *n)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int rc = 0;

	*n = 0;
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == max || num(tok, &out[*n]) < 0) {
			rc = -1;
			break;
		}
		(*n)++;
	}
	free(copy);
	return rc || *n == 0 ? -1 : 0;
}

/* Independent streams per replication and purpose, from one seed. */
static uint64_t derive(uint64_t seed, uint64_t rep, uint64_t purpose)
{
	uint64_t x = seed ^ (rep * 0xd1342543de82ef95ull) ^ (purpose << 56);

	policy_splitmix64(&x);
	return policy_splitmix64(&x);
}

/* Runs one configuration's replications into row. Returns 0 or exit code. */
static int run_config(const struct sim_config *c, unsigned reps, uint64_t seed,
                      struct sim_row *row, struct hist *hist)
{
	double means[256], sum = 0, var = 0;
	double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	struct sim_result tot = { 0 };

	memset(hist, 0, sizeof(*hist));
	for (unsigned r = 0; r < reps; r++) {
		struct sim_result res = { .hist = hist };
		const char *why;
		int rc = sim_run(c, derive(seed, r, 0), derive(seed, r, 1), &res, &why);

		if (rc < 0) {
			fprintf(stderr, "roam-sim: %s: %s\n", row->policy, why ? why : strerror(-rc));
			return rc == -EINVAL ? 2 : 255;
		}
		means[r] = res.measured ? res.sum_time / (double)res.measured : NAN;
		sum += means[r];
		tot.measured += res.measured;
		tot.sum_slowdown += res.sum_slowdown;
		tot.transferred += res.transferred;
		tot.migrated += res.migrated;
		tot.probes += res.probes;
		tot.messages += res.messages;
		tot.arrivals += res.arrivals;
		tot.busy += res.busy_until_stop;
		tot.capacity_time += res.capacity_time;
		tot.events += res.events;
	}
	row->mean = sum / reps;
	for (unsigned r = 0; r < reps; r++)
		var += (means[r] - row->mean) * (means[r] - row->mean);
	row->ci95 = reps > 1 ? t95(reps - 1) * sqrt(var / (reps - 1) / reps) : NAN;
	row->median = hist_quantile(hist, 0.5);
	row->p99 = hist_quantile(hist, 0.99);
	row->slowdown = tot.sum_slowdown / (double)tot.measured;
	row->transferred = (double)tot.transferred / (double)tot.measured;
	row->migrated = (double)tot.migrated / (double)tot.measured;
	row->probes = (double)tot.probes / (double)tot.arrivals;
	row->messages = (double)tot.messages / (double)tot.arrivals;
	row->utilisation = tot.busy / tot.capacity_time;
	row->events = tot.events;
	row->seconds = clock_s(CLOCK_MONOTONIC) - t0;
	row->cpu_seconds = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	return 0;
}

enum {
	OPT_HOSTS = 256, OPT_LOAD, OPT_SWEEP, OPT_POLICY, OPT_JOBS, OPT_REPS, OPT_SEED,
	OPT_WARMUP, OPT_PS, OPT_WORK, OPT_SPEEDS, OPT_PUBLISH, OPT_PROBE_DELAY,
	OPT_TRANSFER_DELAY, OPT_MIGRATE, OPT_MIG_COST, OPT_MIG_PERIOD, OPT_MEM,
	OPT_TRACE, OPT_CSV, OPT_PLOT, OPT_HELP,
};

static const struct option options[] = {
	{ "hosts", required_argument, NULL, OPT_HOSTS },
	{ "load", required_argument, NULL, OPT_LOAD },
	{ "sweep", optional_argument, NULL, OPT_SWEEP },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "jobs", required_argument, NULL, OPT_JOBS },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "ps", no_argument, NULL, OPT_PS },
	{ "work", required_argument, NULL, OPT_WORK },
	{ "speeds", required_argument, NULL, OPT_SPEEDS },
	{ "publish", required_argument, NULL, OPT_PUBLISH },
	{ "probe-delay", required_argument, NULL, OPT_PROBE_DELAY },
	{ "transfer-delay", required_argument, NULL, OPT_TRANSFER_DELAY },
	{ "migrate", no_argument, NULL, OPT_MIGRATE },
	{ "mig-cost", required_argument, NULL, OPT_MIG_COST },
	{ "mig-period", required_argument, NULL, OPT_MIG_PERIOD },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "csv", no_argument, NULL, OPT_CSV },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct sim_config cfg = {
		.hosts = 1000, .load = 0.9, .jobs = 1000000, .warmup = 0.1,
		.disc = DISC_FIFO, .mig_cost = 0.01, .mig_period = 1, .mem = 10,
	};
	struct policy policies[MAX_POLICIES];
	size_t npolicies = 0, nloads = 0, nspeeds = 0;
	double loads[MAX_LOADS], speeds[MAX_SPEEDS];
	uint64_t jobs = 1000000, seed = 1, u;
	unsigned reps = 5;
	bool csv = false, load_given = false;
	const char *plot = NULL, *trace_path = NULL;
	struct trace trace = { 0 };
	struct sim_row *rows = NULL;
	struct hist *hist = NULL;
	size_t nrows = 0;
	int opt, rc = 0;
	double v;

	work_parse(&cfg.work, "exp");
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_HOSTS:
			if (count(optarg, &u) < 0 || u > 10000000)
				return bad("--hosts", optarg, "expected 1 .. 10000000");
			cfg.hosts = (uint32_t)u;
			break;
		case OPT_LOAD:
			if (num(optarg, &v) < 0 || !(v > 0 && v < 1))
				return bad("--load", optarg, "expected a number in (0, 1)");
			loads[0] = v;
			nloads = 1;
			load_given = true;
			break;
		case OPT_SWEEP:
			if (!optarg) {
				memcpy(loads, default_sweep, sizeof(default_sweep));
				nloads = sizeof(default_sweep) / sizeof(default_sweep[0]);
			} else if (list(optarg, loads, MAX_LOADS, &nloads) < 0) {
				return bad("--sweep", optarg, "expected loads L1,L2,... in (0, 1)");
			}
			for (size_t i = 0; i < nloads; i++)
				if (!(loads[i] > 0 && loads[i] < 1))
					return bad("--sweep", optarg ? optarg : "", "loads must be in (0, 1)");
			load_given = true;
			break;
		case OPT_POLICY: {
			struct policy_parse_error err;

			if (npolicies == MAX_POLICIES)
				return bad("--policy", optarg, "too many policies");
			if (policy_parse(&policies[npolicies], optarg, &err) < 0) {
				fprintf(stderr, "roam-sim: --policy %s: %s\n", optarg, policy_strerror(err.code));
				fprintf(stderr, "roam-sim:          %*s^\n", (int)err.offset, "");
				return 2;
			}
			npolicies++;
			break;
		}
		case OPT_JOBS:
			if (count(optarg, &jobs) < 0)
				return bad("--jobs", optarg, "expected a positive integer");
			break;
		case OPT_REPS:
			if (count(optarg, &u) < 0 || u > 256)
				return bad("--reps", optarg, "expected 1 .. 256");
			reps = (unsigned)u;
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (end == optarg || *end || errno || *optarg == '-')
				return bad("--seed", optarg, "expected an unsigned 64-bit integer");
			break;
		}
		case OPT_WARMUP:
			if (num(optarg, &cfg.warmup) < 0 || cfg.warmup < 0 || cfg.warmup >= 1)
				return bad("--warmup", optarg, "expected a fraction in [0, 1)");
			break;
		case OPT_PS:
			cfg.disc = DISC_PS;
			break;
		case OPT_WORK:
			if (work_parse(&cfg.work, optarg) < 0)
				return bad("--work", optarg, "expected exp, det or bpareto[:a=A,r=R] (0 < A <= 10, R > 1)");
			break;
		case OPT_SPEEDS:
			if (list(optarg, speeds, MAX_SPEEDS, &nspeeds) < 0)
				return bad("--speeds", optarg, "expected S1,S2,... (at most 64)");
			for (size_t i = 0; i < nspeeds; i++)
				if (!(speeds[i] > 0 && speeds[i] <= 1e6))
					return bad("--speeds", optarg, "speeds must be > 0");
			break;
		case OPT_PUBLISH:
		case OPT_PROBE_DELAY:
		case OPT_TRANSFER_DELAY:
		case OPT_MIG_COST:
		case OPT_MIG_PERIOD:
		case OPT_MEM:
			if (num(optarg, &v) < 0 || v < 0 || v > 1e9 ||
			    (opt == OPT_MIG_PERIOD && v == 0))
				return bad(options[opt - OPT_HOSTS].name, optarg,
				           opt == OPT_MIG_PERIOD ? "expected a number > 0" : "expected a number >= 0");
			if (opt == OPT_PUBLISH) cfg.publish = v;
			if (opt == OPT_PROBE_DELAY) cfg.probe_delay = v;
			if (opt == OPT_TRANSFER_DELAY) cfg.transfer_delay = v;
			if (opt == OPT_MIG_COST) cfg.mig_cost = v;
			if (opt == OPT_MIG_PERIOD) cfg.mig_period = v;
			if (opt == OPT_MEM) cfg.mem = v;
			break;
		case OPT_MIGRATE:
			cfg.migrate = true;
			break;
		case OPT_TRACE:
			trace_path = optarg;
			break;
		case OPT_CSV:
			csv = true;
			break;
		case OPT_PLOT:
			plot = optarg;
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "roam-sim: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (cfg.migrate && cfg.disc != DISC_PS) {
		fprintf(stderr, "roam-sim: --migrate needs --ps (age is attained service under processor sharing)\n");
		return 2;
	}
	if (!npolicies)
		policy_parse(&policies[npolicies++], "pod:d=2", NULL);
	if (!nloads) {
		loads[0] = 0.9;
		nloads = 1;
	}
	if (jobs < reps) {
		fprintf(stderr, "roam-sim: --jobs %llu is fewer than --reps %u\n",
		        (unsigned long long)jobs, reps);
		return 2;
	}
	if (trace_path) {
		uint64_t line;
		const char *why;
		int trc = trace_read(&trace, trace_path, cfg.hosts, &line, &why);

		if (trc < 0) {
			if (line)
				fprintf(stderr, "roam-sim: %s:%llu: %s\n", trace_path,
				        (unsigned long long)line, why);
			else
				fprintf(stderr, "roam-sim: %s: %s: %s\n", trace_path, why, strerror(-trc));
			return 2;
		}
		if (load_given)
			fprintf(stderr, "roam-sim: --trace: the trace sets the load; --load ignored\n");
		cfg.trace = &trace;
		nloads = 1;
	}
	cfg.jobs = jobs / reps;
	cfg.speeds = speeds;
	cfg.nspeeds = (uint32_t)nspeeds;

	rows = calloc(npolicies * nloads, sizeof(*rows));
	hist = malloc(sizeof(*hist));
	if (!rows || !hist) {
		fprintf(stderr, "roam-sim: out of memory\n");
		rc = 255;
		goto out;
	}
	if (csv)
		report_csv_header(stdout);
	else
		report_table_header(stdout);
	for (size_t p = 0; p < npolicies; p++) {
		for (size_t l = 0; l < nloads; l++) {
			struct sim_row *row = &rows[nrows];

			cfg.policy = policies[p];
			cfg.load = loads[l];
			policy_format(&cfg.policy, row->policy, sizeof(row->policy));
			row->hosts = cfg.hosts;
			row->load = cfg.trace ? NAN : cfg.load;
			row->jobs = cfg.jobs * reps;
			row->reps = reps;
			row->seed = seed;
			rc = run_config(&cfg, reps, seed, row, hist);
			if (rc)
				goto out;
			if (cfg.trace)
				row->load = row->utilisation;
			if (csv)
				report_csv_row(stdout, row);
			else
				report_table_row(stdout, row);
			fflush(stdout);
			nrows++;
		}
	}
	if (plot) {
		char title[256], wname[48], mig[64] = "";

		work_format(&cfg.work, wname, sizeof(wname));
		if (cfg.migrate)
			snprintf(mig, sizeof(mig), ", migration %g s/MiB x %g MiB", cfg.mig_cost, cfg.mem);
		snprintf(title, sizeof(title),
		         "N = %u hosts, %s, work %s, publish P = %g, probe delay %g, transfer delay %g%s",
		         cfg.hosts, cfg.disc == DISC_PS ? "PS" : "FIFO", wname, cfg.publish,
		         cfg.probe_delay, cfg.transfer_delay, mig);
		if (report_plot(plot, title, rows, nrows) < 0) {
			fprintf(stderr, "roam-sim: --plot %s: gnuplot failed\n", plot);
			rc = 255;
		}
	}
out:
	free(rows);
	free(hist);
	trace_free(&trace);
	return rc;
}
