/*
 * roam-sim: the policies of src/policy/ on thousands of simulated hosts.
 *
 * A discrete-event simulation of N hosts, each a queue (FIFO, or processor
 * sharing), fed by Poisson arrivals or a trace. Every arrival asks the very
 * policy code roamd links (policy_decide) where to run, with the knowledge
 * roamd would have: loads published every P seconds, probes that take a
 * round trip, transfers that take time. See docs/sim.md for the model.
 *
 * The header reads as a map of the files:
 *   heap.c      the event queues (host timers, other events)
 *   workload.c  inter-arrival and work distributions, the trace reader
 *   engine.c    one replication of one configuration
 *   stats.c     histograms, percentiles, confidence intervals
 *   report.c    the table, the CSV, the gnuplot plots
 *   main.c      the command line, sweeps and replications
 */
#ifndef ROAM_SIM_H
#define ROAM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/policy.h"

/* ------------------------------------------------------------------ */
/* heap.c: event queues                                                */
/* ------------------------------------------------------------------ */

/*
 * The host timers: at most one pending completion per host, keyed by time,
 * in an indexed 4-ary heap so that processor sharing can move a host's
 * completion time in place.
 */
struct timer_heap {
	uint32_t n;
	double *key;             /* key[i]: time of the i-th heap node */
	uint32_t *id;            /* id[i]: its host */
	uint32_t *pos;           /* pos[host]: its node, UINT32_MAX if none */
	double *keybase;         /* the aligned allocation behind key */
};

int timer_heap_init(struct timer_heap *h, uint32_t nhosts);
void timer_heap_free(struct timer_heap *h);
/* Sets (adds or moves) host's timer. */
void timer_heap_set(struct timer_heap *h, uint32_t host, double t);
/* Removes host's timer, if it has one. */
void timer_heap_del(struct timer_heap *h, uint32_t host);

static inline double timer_heap_top_time(const struct timer_heap *h)
{
	return h->n ? h->key[0] : __builtin_inf();
}

/* A job as it travels: by value in host queues and in events. */
struct sjob {
	double arrive;     /* when it entered the system */
	double work;       /* its total work, seconds on a speed-1 host */
	double tag;        /* PS: virtual finish time; in transit: work left */
	float mem;         /* memory, for the migration cost */
	uint32_t origin;
	uint32_t flags;    /* SJOB_* */
};

#define SJOB_MEASURED     0x1u   /* counted in the statistics */
#define SJOB_TRANSFERRED  0x2u
#define SJOB_MIGRATED     0x4u

/* Everything that is not a host's completion. */
enum sim_event_kind {
	EV_PUBLISH = 1,      /* every host publishes its load */
	EV_PROBE_REPLY,      /* the probes of a parked decision are answered */
	EV_TRANSFER,         /* a transferred job reaches its host */
	EV_MIGRATE_SWEEP,    /* look for processes worth migrating */
	EV_MIGRATED,         /* a migrated job reaches its new host */
};

struct sim_event {
	double t;
	uint64_t seq;        /* insertion order: ties leave FIFO */
	enum sim_event_kind kind;
	uint32_t host;       /* TRANSFER, MIGRATED: destination */
	uint32_t slot;       /* PROBE_REPLY: parked decision */
	struct sjob job;
};

struct event_heap {
	uint32_t n, cap;
	uint64_t seq;
	struct sim_event *a;
};

void event_heap_init(struct event_heap *h);
void event_heap_free(struct event_heap *h);
int event_heap_push(struct event_heap *h, const struct sim_event *e);
void event_heap_pop(struct event_heap *h, struct sim_event *out);

static inline double event_heap_top_time(const struct event_heap *h)
{
	return h->n ? h->a[0].t : __builtin_inf();
}

/* ------------------------------------------------------------------ */
/* workload.c                                                          */
/* ------------------------------------------------------------------ */

enum work_kind { WORK_EXP = 1, WORK_DET, WORK_BPARETO };

/* A work distribution with mean 1 (seconds on a speed-1 host). */
struct work_dist {
	enum work_kind kind;
	double alpha;      /* bounded Pareto: shape */
	double ratio;      /* bounded Pareto: largest / smallest */
	double lo, hi;     /* derived: the bounds giving mean 1 */
};

/* Parses "exp", "det", "bpareto[:a=A,r=R]". Returns 0 or -EINVAL. */
int work_parse(struct work_dist *w, const char *spec);
void work_format(const struct work_dist *w, char *buf, size_t len);
double work_draw(const struct work_dist *w, struct policy_rng *rng);

/* One trace row: arrival (seconds), origin (host index), work, mem (MiB). */
struct trace_row {
	double arrival, work, mem;
	uint32_t origin;
};

struct trace {
	struct trace_row *rows;
	uint64_t n;
	bool has_mem;
};

/*
 * Reads a trace file (docs/sim.md): a header naming the columns
 * arrival,origin,work[,mem], then one row per process, arrivals
 * non-decreasing. Returns 0, or -errno / -EINVAL with *line set to the
 * offending line (1-based) and *why to a static reason.
 */
int trace_read(struct trace *tr, const char *path, uint32_t nhosts,
               uint64_t *line, const char **why);
void trace_free(struct trace *tr);

/* ------------------------------------------------------------------ */
/* stats.c                                                             */
/* ------------------------------------------------------------------ */

/*
 * Response-time histogram: 128 buckets per power of two (relative error
 * under 0.4%), from 2^-20 to 2^44 seconds, values outside clamped. Memory
 * is constant, so ten million processes cost no more than ten.
 */
#define HIST_SUB_BITS 7
#define HIST_MIN_EXP  (-20)
#define HIST_MAX_EXP  44
#define HIST_BUCKETS  ((HIST_MAX_EXP - HIST_MIN_EXP) << HIST_SUB_BITS)

struct hist {
	uint64_t count;
	uint64_t b[HIST_BUCKETS];
};

static inline uint32_t hist_bucket(double x)
{
	union { double d; uint64_t u; } v = { .d = x };
	int64_t i;

	if (!(x >= 0x1.0p-20))
		return 0;
	i = (int64_t)(v.u >> (52 - HIST_SUB_BITS)) -
	    ((int64_t)(1023 + HIST_MIN_EXP) << HIST_SUB_BITS);
	return i >= HIST_BUCKETS ? HIST_BUCKETS - 1 : (uint32_t)i;
}

static inline void hist_add(struct hist *h, double x)
{
	h->b[hist_bucket(x)]++;
	h->count++;
}

void hist_merge(struct hist *into, const struct hist *from);
/* The q-quantile (0 < q < 1): the middle of the bucket holding it. */
double hist_quantile(const struct hist *h, double q);

/* Student's t quantile for a two-sided 95% interval, df degrees of freedom. */
double t95(unsigned df);

/* ------------------------------------------------------------------ */
/* engine.c                                                            */
/* ------------------------------------------------------------------ */

enum discipline { DISC_FIFO = 1, DISC_PS };

struct sim_config {
	uint32_t hosts;
	double load;               /* arrival rate / total service capacity */
	uint64_t jobs;             /* processes per replication */
	double warmup;             /* fraction of the first jobs not measured */
	struct policy policy;
	enum discipline disc;
	struct work_dist work;
	double publish;            /* P: loads published every P s; 0 = exact */
	double probe_delay;        /* round trip of one probe round */
	double transfer_delay;     /* moving a new process to another host */
	bool migrate;              /* preemptive migration (PS only) */
	double mig_cost;           /* seconds per MiB moved */
	double mig_period;         /* how often hosts look for a move */
	double mem;                /* MiB per process without a trace */
	const double *speeds;      /* host i runs at speeds[i % nspeeds] */
	uint32_t nspeeds;
	const struct trace *trace; /* NULL: Poisson arrivals */
};

struct sim_result {
	uint64_t measured;          /* processes in the statistics */
	double sum_time, sum_slowdown;
	struct hist *hist;          /* caller-provided, added to */
	uint64_t transferred, migrated, probes, messages, arrivals;
	double busy;                /* host-seconds busy so far (speed-weighted) */
	double busy_until_stop;     /* the same, up to the end of arrivals */
	double capacity_time;       /* host-seconds of capacity, up to then */
	uint64_t events;
	double sim_time;
	uint64_t peak_in_system;
};

/*
 * Runs one replication. The workload stream (arrivals, work, origins) is
 * seeded from work_seed and the policy's stream from policy_seed, so that
 * two policies run with the same seed see the same processes. Returns 0,
 * -ENOMEM, or -EINVAL for a configuration the engine refuses (*why says).
 */
int sim_run(const struct sim_config *cfg, uint64_t work_seed, uint64_t policy_seed,
            struct sim_result *res, const char **why);

/* ------------------------------------------------------------------ */
/* report.c                                                            */
/* ------------------------------------------------------------------ */

/* One configuration's summary over its replications. */
struct sim_row {
	char policy[POLICY_SPEC_MAX];
	uint32_t hosts;
	double load;
	double mean, median, p99, ci95, slowdown;
	double transferred, migrated;        /* fractions of processes */
	double probes, messages;             /* per process */
	double utilisation;
	uint64_t jobs;
	unsigned reps;
	uint64_t seed;
	uint64_t events;
	double seconds;                      /* wall time: table only */
	double cpu_seconds;                  /* CPU time: the table's Mev/s */
};

void report_csv_header(FILE *f);
void report_csv_row(FILE *f, const struct sim_row *r);
void report_table_header(FILE *f);
void report_table_row(FILE *f, const struct sim_row *r);
/*
 * Plots mean and p99 time in system against load, one curve per policy,
 * as PREFIX.png and PREFIX.svg (gnuplot). Returns 0, or -1 with errno.
 */
int report_plot(const char *prefix, const char *title, const struct sim_row *rows, size_t n);

#endif /* ROAM_SIM_H */
