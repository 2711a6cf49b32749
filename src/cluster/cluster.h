/*
 * The cluster as one host sees it: the member table (membership spreads from
 * seed peers through heartbeats; a member unheard of for a few seconds is
 * down), what each member publishes about itself, the constraint parser
 * (--need), and this host's own load measurement.
 *
 * The member table and the need parser are pure; load.c reads /proc and
 * cgroupfs.
 */
#ifndef ROAM_CLUSTER_H
#define ROAM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

struct conn;

#define CL_NAME_MAX   64
#define CL_ADDR_MAX   128
#define CL_MAX_TAGS   64
#define CL_MAX_MEMBERS 256
#define CL_DOWN_MS    3000   /* a member unheard of this long is down */

/* The CPU feature flags roam publishes and matches, bit i = cl_features[i]. */
extern const char *const cl_features[];
extern const unsigned cl_nfeatures;

/* What a host publishes about itself. */
struct host_load {
	double load;            /* runnable threads of its jobs per CPU */
	double psi_some;        /* PSI cpu some avg10 of its cgroup, -1 if none */
	uint64_t mem_free, mem_total;
	char arch[72];
	uint64_t features;      /* bits of cl_features */
	char tags[CL_MAX_TAGS][CL_NAME_MAX];
	unsigned ntags;
	uint32_t nprocs, max_procs, ncpus;
	bool draining;          /* roam drain: no new process goes there */
};

/* MEMBER_INCOMPAT: heard, but it speaks no peer protocol this host does. */
enum member_state { MEMBER_NEW = 0, MEMBER_UP, MEMBER_DOWN, MEMBER_INCOMPAT };

struct member {
	char name[CL_NAME_MAX];
	char addr[CL_ADDR_MAX];
	enum member_state state;
	bool self;
	bool heard;             /* a heartbeat arrived at least once */
	uint64_t last_ms;       /* monotonic ms of the last heartbeat */
	struct host_load load;
	struct conn *link;      /* the daemon's outgoing connection (opaque here), or NULL */
	uint32_t proto_min, proto;  /* the peer protocols it said it speaks */
};

struct members {
	struct member m[CL_MAX_MEMBERS];
	unsigned n;
	/* The cluster's tag numbering: bit i of policy tags is tag[i]. */
	char tag[CL_MAX_TAGS][CL_NAME_MAX];
	unsigned ntags;
};

/* members.c */
/* Starts the table with this host as member 0. */
void members_init(struct members *t, const char *self_name, const char *self_addr);
struct member *members_find(struct members *t, const char *name);
struct member *members_find_addr(struct members *t, const char *addr);
/* Adds a member known by name and address (or returns the existing one);
 * NULL when the table is full. A seed known only by address has name "". */
struct member *members_add(struct members *t, const char *name, const char *addr);
/* Records a heartbeat from name: returns the member (created if new) and
 * sets *came_up when it was not up before. */
struct member *members_heard(struct members *t, const char *name, const char *addr,
			     const struct host_load *l, uint64_t now_ms, bool *came_up);
/* Marks members unheard of for CL_DOWN_MS down; calls down(m, arg) for each. */
void members_expire(struct members *t, uint64_t now_ms,
		    void (*down)(struct member *m, void *arg), void *arg);
/* The bit of a tag in the cluster's numbering, adding it; -1 when full. */
int members_tag_bit(struct members *t, const char *tag);
/* Fills hosts[0..t->n) for the policy: index i is t->m[i]. */
void members_view(struct members *t, struct policy_host *hosts);

/* need.c */
enum need_error {
	NEED_ERR_BASE   = 6600,
	NEED_ERR_SYNTAX = 6601,   /* not key=value[,key=value] */
	NEED_ERR_KEY    = 6602,   /* unknown key */
	NEED_ERR_VALUE  = 6603,   /* a value that does not parse */
};
/*
 * Parses "mem=SIZE,cpus=N,arch=NAME,tag=T,feature=F" (any subset, tag and
 * feature repeatable; SIZE takes K, M, G suffixes) into req. Tags are given
 * bits in t's numbering. Returns 0 or -NEED_ERR_*; *bad points at the
 * offending item.
 */
int need_parse(const char *s, struct members *t, struct policy_request *req, const char **bad);
const char *need_strerror(int err);
/* A size as --need mem= takes it ("512M", "2G", bytes without a suffix):
 * 0, or -NEED_ERR_VALUE. roamd's own size settings read the same way. */
int need_parse_size(const char *s, uint64_t *out);

/* load.c */
/*
 * Counts the runnable (state R) threads listed in a cgroup's thread file
 * (cgroup.threads on v2, tasks on v1): the threads of one job.
 */
int load_runnable(const char *threads_file, unsigned *runnable);
/* The same over one process's threads: the fallback for a job without a cgroup. */
int load_runnable_pid(int pid, unsigned *runnable);
/* Reads "some avg10" of a PSI file (cpu.pressure); -errno when absent. */
int load_psi_some(const char *pressure_file, double *avg10);
/* Fills mem_free, mem_total, arch, features and ncpus of this machine. */
int load_machine(struct host_load *l);

#endif
