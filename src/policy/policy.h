/*
 * roam's transfer and location policies: pure decisions.
 *
 * Every new process asks one question: on which host does it run? The same
 * code answers it in roamd (a handful of real hosts) and in roam-sim (ten
 * thousand simulated ones), so this module does no I/O, keeps no globals and
 * allocates nothing while deciding. Everything it reads is passed in:
 *
 *   struct policy          what a spec string such as "pod:d=2" names
 *   struct policy_view     the caller's array of host descriptors
 *   struct policy_request  the constraints of this one process
 *   struct policy_rng      the random-number state (rng.h), caller-seeded
 *   struct policy_index    optional incremental index (jsq, least-loaded)
 *   struct policy_session  one decision in progress (probes), caller-owned
 *
 * Hosts are named by their index in the view's array, 0 .. n-1; the caller
 * maps indexes to names (struct policy_host.id is carried for it, unread).
 *
 * A decision is a short conversation:
 *
 *	policy_session_start(&s);
 *	while ((v = policy_decide(&p, &view, &req, &rng, ix, &s, &res)) == POLICY_PROBE) {
 *		for (i = 0; i < res.nprobe; i++)
 *			if (ask(res.probe[i], &load) == 0)
 *				policy_answer(&s, res.probe[i], load);
 *			else
 *				policy_answer_lost(&s, res.probe[i]);
 *	}
 *	v is POLICY_DECIDED (res.host, res.reason), POLICY_REFUSED (res.unmet)
 *	or a negative error (-POLICY_ERR_*: the caller broke the contract).
 *
 * The hosts of one PROBE verdict may be asked in parallel; the policy asks
 * for more than one only when its meaning allows it (probe:d=D asks all D at
 * once, threshold asks one host at a time).
 *
 * A host's load is one non-negative number: runnable threads per CPU in
 * roamd, the queue length (counting the process in service) in roam-sim.
 * policy_reads() tells the caller which load the view must hold.
 *
 * Policies (every spec has exactly one meaning, everywhere):
 *
 *   random              an eligible host uniformly at random
 *   least-loaded        the lowest published load of all eligible hosts,
 *                       ties at random
 *   jsq                 the same choice on exact loads: the caller keeps
 *                       the view's loads current (join the shortest queue)
 *   pod:d=D             power of d choices: D distinct eligible hosts drawn
 *                       uniformly, the lowest published load, ties at random
 *   probe:d=D           D distinct eligible hosts drawn uniformly are asked
 *                       their current load; the lowest answer wins, ties at
 *                       random
 *   threshold:t=T,lp=L  Eager, Lazowska and Zahorjan (1986): stay at the
 *                       origin while its load is below T; otherwise ask up
 *                       to L distinct random other eligible hosts, one at a
 *                       time, and go to the first whose load is below T;
 *                       stay at the origin if none is
 *
 * Constraints filter the eligible hosts before any policy looks at them: a
 * host is eligible when it is up, not draining, has at least req.mem bytes
 * free and req.cpus CPUs, the requested architecture, and every requested
 * feature and tag bit. req.on pins the process to a host and req.near places
 * it with another process; both bypass the policy but not the constraints.
 * When no host is eligible the answer is POLICY_REFUSED with res.unmet
 * naming the constraint no host met.
 */
#ifndef ROAM_POLICY_H
#define ROAM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/rng.h"

#define POLICY_MAX_D      64    /* largest d and lp a spec may name */
#define POLICY_SPEC_MAX   64    /* a formatted spec always fits in this */
#define POLICY_NO_HOST    (-1)  /* req.on, req.near, req.origin: none */

/* ------------------------------------------------------------------------ */
/* Policies and their spec strings                                          */
/* ------------------------------------------------------------------------ */

enum policy_kind {
	POLICY_KIND_RANDOM = 1,
	POLICY_KIND_LEAST_LOADED,
	POLICY_KIND_JSQ,
	POLICY_KIND_POD,
	POLICY_KIND_PROBE,
	POLICY_KIND_THRESHOLD,
};

/* What a spec string names. Fields a kind does not use are zero. */
struct policy {
	enum policy_kind kind;
	uint32_t d;     /* pod, probe: hosts sampled, 1 .. POLICY_MAX_D */
	uint32_t lp;    /* threshold: probe limit, 1 .. POLICY_MAX_D */
	double t;       /* threshold: load threshold, > 0 */
};

/*
 * Errors, returned negated. Parse errors come with the offset of the
 * offending text in struct policy_parse_error.
 */
enum policy_error {
	POLICY_ERR_BASE = 6000,
	POLICY_ERR_EMPTY = 6001,        /* the spec is empty */
	POLICY_ERR_NAME = 6002,         /* no policy has this name */
	POLICY_ERR_PARAM = 6003,        /* this policy has no such parameter */
	POLICY_ERR_SYNTAX = 6004,       /* not "name" or "name:k=v,k=v" */
	POLICY_ERR_NUMBER = 6005,       /* a value is not a number */
	POLICY_ERR_RANGE = 6006,        /* a value out of its range */
	POLICY_ERR_DUPLICATE = 6007,    /* a parameter given twice */
	POLICY_ERR_MISSING = 6008,      /* a required parameter is missing */
	POLICY_ERR_TOO_LONG = 6009,     /* longer than any valid spec */
	POLICY_ERR_HOST = 6010,         /* a host index outside the view */
	POLICY_ERR_SESSION = 6011,      /* decide called with probes unanswered,
	                                   or an answer for a host not asked */
	POLICY_ERR_ORIGIN = 6012,       /* threshold needs req.origin */
	POLICY_ERR_KIND = 6013,         /* struct policy holds no valid policy */
};

struct policy_parse_error {
	int code;        /* a POLICY_ERR_* value (positive), 0 if none */
	size_t offset;   /* where in the spec the problem starts */
	size_t len;      /* how many bytes it spans (at least 1 unless empty) */
};

/*
 * Parses a spec string into *p. Returns 0, or -POLICY_ERR_* with *err (may
 * be NULL) saying where. Parameters may come in any order; those with a
 * default may be left out: pod and probe default to d=2, threshold to
 * t=2,lp=3. Numbers are decimal; d and lp are integers, t may be a fraction
 * (roamd's loads are per-CPU). Whitespace is not allowed anywhere.
 */
int policy_parse(struct policy *p, const char *spec, struct policy_parse_error *err);

/*
 * Writes the canonical spec of *p, every parameter spelled out, into buf as
 * snprintf does: returns the length it needed (excluding the NUL), or
 * -POLICY_ERR_KIND. A canonical spec parses back to an equal policy.
 */
int policy_format(const struct policy *p, char *buf, size_t len);

/* A sentence for a POLICY_ERR_* code (positive or negated). Never NULL. */
const char *policy_strerror(int code);

/* The policy names, in the order of enum policy_kind, for help texts. */
const char *policy_kind_name(enum policy_kind kind);

/* ------------------------------------------------------------------------ */
/* Host views and requests                                                  */
/* ------------------------------------------------------------------------ */

/* Host flags. A host is eligible only when UP and not DRAINING. */
#define POLICY_HOST_UP        0x1u   /* answering the cluster */
#define POLICY_HOST_DRAINING  0x2u   /* up, but takes no new process */

/* Architectures. Names through policy_arch_name() / policy_arch_parse(). */
enum policy_arch {
	POLICY_ARCH_ANY = 0,    /* in a request: any; in a host: unknown */
	POLICY_ARCH_X86_64 = 1,
	POLICY_ARCH_AARCH64 = 2,
	POLICY_ARCH_RISCV64 = 3,
	POLICY_ARCH_MAX
};

/*
 * What the caller knows of one host. In roamd the load is the last one the
 * host published (load_age seconds ago), or the exact local one for the
 * host itself; roam-sim fills it according to policy_reads().
 */
struct policy_host {
	uint32_t id;            /* the caller's own name for the host: unread */
	uint32_t flags;         /* POLICY_HOST_* */
	double load;            /* >= 0: see the top of this file */
	double load_age;        /* seconds since the load was measured */
	uint64_t mem_free;      /* bytes */
	uint32_t ncpus;
	uint32_t arch;          /* enum policy_arch */
	uint64_t features;      /* CPU feature bits (the caller's numbering) */
	uint64_t tags;          /* tag bits (the cluster's numbering) */
	uint32_t nprocs;        /* roam processes running there */
};

struct policy_view {
	const struct policy_host *hosts;
	uint32_t n;
};

/* What one new process needs. Zero fields need nothing. */
struct policy_request {
	uint64_t mem;           /* bytes free on the host, at least */
	uint32_t cpus;          /* CPUs, at least */
	uint32_t arch;          /* enum policy_arch; ANY accepts all */
	uint64_t features;      /* every one of these bits */
	uint64_t tags;          /* every one of these bits */
	int32_t on;             /* --on: host index, or POLICY_NO_HOST */
	int32_t near;           /* --near: the host index of that process */
	int32_t origin;         /* where the request was made (its home) */
	double origin_load;     /* the origin's current load, known exactly:
	                           threshold reads it instead of the view */
};

/* A request that needs nothing, made at origin (or POLICY_NO_HOST). */
void policy_request_init(struct policy_request *req, int32_t origin, double origin_load);

/* Which load the caller must put in the view's hosts for policy p. */
enum policy_reads {
	POLICY_READS_NOTHING = 0,   /* random: loads unread */
	POLICY_READS_PUBLISHED,     /* least-loaded, pod: possibly stale */
	POLICY_READS_EXACT,         /* jsq: the current loads */
	POLICY_READS_PROBES,        /* probe, threshold: answers to probes
	                               (and req.origin_load) */
};
enum policy_reads policy_reads(const struct policy *p);

/* Architecture names ("x86_64", "aarch64", "riscv64"). */
const char *policy_arch_name(uint32_t arch);
int policy_arch_parse(const char *name);   /* enum value, or -POLICY_ERR_NAME */

/* ------------------------------------------------------------------------ */
/* Decisions                                                                */
/* ------------------------------------------------------------------------ */

enum policy_verdict {
	POLICY_DECIDED = 1,     /* res.host, res.reason */
	POLICY_PROBE = 2,       /* ask res.probe[0 .. nprobe-1], then call again */
	POLICY_REFUSED = 3,     /* no host satisfies: res.unmet says which need */
};

/* Why a host was chosen. Text through policy_reason_str(). */
enum policy_reason {
	POLICY_R_NONE = 0,
	POLICY_R_PINNED,          /* req.on named it */
	POLICY_R_NEAR,            /* req.near named it */
	POLICY_R_ONLY,            /* the only eligible host */
	POLICY_R_RANDOM,          /* uniformly among the eligible */
	POLICY_R_LOWEST,          /* lowest load of all eligible hosts */
	POLICY_R_LOWEST_SAMPLED,  /* lowest published load of d sampled */
	POLICY_R_LOWEST_PROBED,   /* lowest answer of the hosts probed */
	POLICY_R_LOCAL_BELOW_T,   /* threshold: origin below T, kept local */
	POLICY_R_REMOTE_BELOW_T,  /* threshold: first probed host below T */
	POLICY_R_LOCAL_NONE_BELOW,/* threshold: lp probed, none below T */
	POLICY_R_ORIGIN_INELIGIBLE, /* threshold: origin fails a constraint
	                               and no probed host was below T: the
	                               lowest answer */
	POLICY_R_MAX
};

/* The need no host met. Text through policy_unmet_str(). */
enum policy_unmet {
	POLICY_UNMET_NONE = 0,
	POLICY_UNMET_HOSTS,       /* the view holds no host at all */
	POLICY_UNMET_UP,          /* every host is down or draining */
	POLICY_UNMET_MEM,         /* no host has req.mem free */
	POLICY_UNMET_CPUS,        /* no host has req.cpus CPUs */
	POLICY_UNMET_ARCH,        /* no host has req.arch */
	POLICY_UNMET_FEATURES,    /* no host has all req.features */
	POLICY_UNMET_TAGS,        /* no host has all req.tags */
	POLICY_UNMET_TOGETHER,    /* each need is met somewhere, never all at once */
	POLICY_UNMET_CONFLICT,    /* req.on and req.near name different hosts */
	POLICY_UNMET_NO_ANSWER,   /* every probed host was lost */
	POLICY_UNMET_MAX
};

/*
 * One decision in progress: the hosts drawn so far and their answers. The
 * caller owns it (on the stack, or one per in-flight process in roam-sim,
 * whose probes take simulated time) and starts it with
 * policy_session_start(); its fields are private to policy.c.
 */
struct policy_session {
	uint32_t phase;
	uint32_t nsampled;                 /* hosts drawn, answered or asked */
	uint32_t nasked;                   /* of which, asked and unanswered */
	uint32_t first_asked;              /* index of the first asked */
	uint32_t host[POLICY_MAX_D];
	double load[POLICY_MAX_D];         /* answers; < 0: lost */
	uint8_t answered[POLICY_MAX_D];
};

struct policy_result {
	enum policy_verdict verdict;
	/* POLICY_DECIDED */
	uint32_t host;               /* index into the view */
	enum policy_reason reason;
	double load;                 /* the load the choice rested on (or -1) */
	uint32_t considered;         /* hosts compared: sampled, probed, scanned */
	/* POLICY_PROBE */
	uint32_t nprobe;
	const uint32_t *probe;       /* points into the session */
	/* POLICY_REFUSED */
	enum policy_unmet unmet;
	int32_t unmet_host;          /* req.on/req.near host that failed, or -1 */
	/* every verdict: probes asked so far in this session */
	uint32_t probes;
};

/* Starts (or restarts) a decision. Cheap: no array is cleared. */
void policy_session_start(struct policy_session *s);

/*
 * Asks policy p where the process of req runs. Returns the verdict (also in
 * res->verdict) or -POLICY_ERR_* when the contract is broken (host index
 * out of range, a probe not answered, threshold without an origin).
 * ix may be NULL; when given, it must hold the same integer levels as the
 * view's loads (see policy_index below) and least-loaded and jsq then choose
 * in O(1) instead of scanning. Draws from rng only as the policy's meaning
 * requires, so a seeded caller gets the same answers every time.
 */
struct policy_index;
int policy_decide(const struct policy *p, const struct policy_view *view,
                  const struct policy_request *req, struct policy_rng *rng,
                  const struct policy_index *ix, struct policy_session *s,
                  struct policy_result *res);

/* The answer to a probe of host: its current load (>= 0). Returns 0, or
 * -POLICY_ERR_SESSION if host was not asked in this session. */
int policy_answer(struct policy_session *s, uint32_t host, double load);

/* The probe of host got no answer (timeout, host down). */
int policy_answer_lost(struct policy_session *s, uint32_t host);

/* One-line texts for roam run --explain and error messages. Never NULL. */
const char *policy_reason_str(enum policy_reason r);
const char *policy_unmet_str(enum policy_unmet u);

/* Whether host h meets req's constraints (up, memory, CPUs, arch, bits). */
bool policy_host_eligible(const struct policy_host *h, const struct policy_request *req);

/* ------------------------------------------------------------------------ */
/* Preemptive migration                                                      */
/* ------------------------------------------------------------------------ */

/*
 * Whether moving a running process pays, after Harchol-Balter and Downey
 * (1996): lifetimes are heavy-tailed, so a process of age a is expected to
 * run about a longer. Under processor sharing it gets 1/src_n of its host
 * (src_n counts it) and would get 1/(dst_n + 1) of the destination, after a
 * migration cost of cost seconds. Moving its remaining work r ~ age pays when
 *   r * src_n  >  cost + r * (dst_n + 1),
 * that is when age > cost / (src_n - dst_n - 1). Returns that answer.
 */
bool policy_migration_pays(double age, double cost, double src_n, double dst_n);

/* The least age at which a move pays (INFINITY when it never does). */
double policy_migration_min_age(double cost, double src_n, double dst_n);

/* ------------------------------------------------------------------------ */
/* The incremental index: hosts ordered by integer load level                */
/* ------------------------------------------------------------------------ */

/*
 * For least-loaded and jsq over thousands of hosts: hosts kept sorted by an
 * integer level (roam-sim's queue lengths) in one array, with the first
 * position of every level, so that a level moving by one is two swaps and
 * the lowest level's hosts are one contiguous range to draw from. O(1)
 * update, O(1) choice, memory linear in hosts plus the highest level.
 * roamd, with its few hosts and fractional loads, passes no index and the
 * policies scan the view instead. Allocates only in init and when a level
 * higher than any before is reached (the level table doubles).
 */
struct policy_index {
	uint32_t n;          /* hosts */
	uint32_t nlevels;    /* levels with a slot in start[] */
	uint32_t *order;     /* hosts, by ascending level */
	uint32_t *pos;       /* pos[host]: its place in order */
	uint32_t *level;     /* level[host] */
	uint32_t *start;     /* start[l]: first place of level >= l, [nlevels+1] */
};

/* All n hosts at level 0. Returns 0 or -ENOMEM. */
int policy_index_init(struct policy_index *ix, uint32_t n);
void policy_index_free(struct policy_index *ix);

/* host's level + 1. Returns 0 or -ENOMEM (the index is unchanged). */
int policy_index_inc(struct policy_index *ix, uint32_t host);
/* host's level - 1; a host at level 0 stays there. */
void policy_index_dec(struct policy_index *ix, uint32_t host);
/* Moves host to level (a loop of inc or dec). Returns 0 or -ENOMEM. */
int policy_index_set(struct policy_index *ix, uint32_t host, uint32_t level);

static inline uint32_t policy_index_level(const struct policy_index *ix, uint32_t host)
{
	return ix->level[host];
}

/* The lowest level of any host. */
static inline uint32_t policy_index_min(const struct policy_index *ix)
{
	return ix->level[ix->order[0]];
}

#endif /* ROAM_POLICY_H */
