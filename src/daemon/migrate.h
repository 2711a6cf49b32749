/*
 * Migration's shared state: the migrations in progress and the pieces of
 * migrate.c (protocol), migrate_worker.c (the forked workers),
 * migrate_check.c (compatibility) and migrate_record.c (a source's records
 * for its restart). Internal to src/daemon.
 */
#ifndef ROAMD_MIGRATE_H
#define ROAMD_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "cluster/ident.h"
#include "daemon/roamd.h"
#include "sys/error.h"
#include "sys/inet.h"

struct ckpt;
struct restore;

enum mig_state {
	MS_PREPARE = 1,   /* source: waiting for READY (and the home's HELD) */
	MS_TRANSFER,      /* source: worker freezing and dumping, stream flowing */
	MS_BUILT_WAIT,    /* source: image sent, waiting for BUILT */
	MS_DOUBT,         /* source: COMMIT sent, outcome unknown */
	MS_FINISHING,     /* source: worker killing or resuming its copy */
	MD_RECEIVING,     /* destination: worker restoring from the stream */
	MD_BUILT,         /* destination: built, stopped, waiting for the decision */
	MD_RELEASING,     /* destination: worker releasing or killing it */
};

struct mig {
	uint64_t mid;
	bool source;
	enum mig_state state;
	struct job *job;
	char peer[CL_NAME_MAX];     /* the other host */
	struct conn *link;          /* source: its link to the destination; destination: from the source */
	struct conn *client;        /* source: roam migrate waiting, or the roamd relaying it */
	uint64_t client_qid;        /* relayed: the qid its answer (MigDone) names */
	bool draining;              /* source: part of roam drain */
	bool home_held, hold_sent, ready, committing, outcome_ok;
	bool cold;                  /* source: no pre-copy rounds */
	bool home_gone;             /* destination: its home restarted meanwhile */
	int rounds;                 /* source: pre-copy rounds done */
	char why[512];
	/* source: the stream broke (the destination may have cut it: its own
	 * reason, if it comes before answer_by_ms, replaces why) */
	bool stream_broke;
	uint64_t answer_by_ms;      /* source: the process runs on here; the answer waits till then */
	char jid[MSG_MAX_ID];       /* source: the job's id, for that late answer */

	/* worker */
	pid_t worker;               /* the forked worker, 0 before */
	int listen_fd;              /* destination: the bulk channel's socket, until the worker has it */
	char bulk_addr[64];         /* source: the destination's address, and its bulk port */
	uint16_t bulk_port;
	int note_fd, worker_note_fd;
	int ctl_fd, worker_ctl_fd;
	struct ev note_ev;
	int worker_rc;
	pid_t new_pid;
	struct roam_error err;
	char errmsg[512];
	struct ckpt_tree *ckt;      /* the source: the process and its descendants */
	struct ckpt *ck;            /* ... their root */
	struct restore *rs;
	int pipes[3][2];            /* destination: the job's stdin, stdout, stderr */
	int cg_fds[4], ncg;         /* destination: the job's cgroup.procs files, which the
	                               restored process joins as it is made */

	/* stream */
	uint64_t sent;              /* source: image bytes, as the worker last said */
	struct buf commit_stdin;    /* destination: the input COMMIT brought */
	uint64_t deadline_ms;       /* destination: doubt timeout */
	uint64_t t0_ns, freeze_ns, done_ns;
	uint64_t rss;

	struct mig *next;
};

extern struct mig *migs;

/* What a worker tells roamd (one write on its note pipe). */
struct worker_note {
	char kind;      /* source: D dumped, E failed, F finished; destination: B built, E, F */
	int rc;
	pid_t pid;      /* destination: the built process */
	uint64_t freeze_ns;
	uint64_t bytes;  /* source: image bytes written so far */
	char err[512];
};

/* The regular files pid maps or holds open, each once, with its hash; and
 * the addresses its TCP listeners and UDP sockets are bound to. */
struct file_list {
	Roamnet__MigFile *v;
	Roamnet__MigFile **p;
	uint8_t (*hash)[16];
	char **path;
	size_t n, cap;
	Roamnet__MigSocket *sv;
	Roamnet__MigSocket **sp;
	struct inet_entry *se;   /* what sv's addresses point into */
	size_t ns;
	uint64_t *inos;          /* while listing: the sockets' inodes */
	size_t ninos, inocap;
};

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* migrate.c */
void mig_answer(struct conn *c, uint64_t qid, int code, const char *msg);
bool mig_fault(const char *name);
void mig_fault_exit(const char *name);

/* migrate_worker.c */
/* Forks g's worker. A source's is forked at PREPARE and waits for
 * mig_go, once the destination is READY, before it touches the process. */
int mig_start_worker(struct mig *g);
void mig_go(struct mig *g);
void mig_tell(struct mig *g, char c);
/* Source: the worker's stream to the destination fails at once (its
 * writes, or the connection it is making), so that it comes to the
 * decision. */
void mig_cut_stream(struct mig *g);

/* migrate_check.c */
void mig_ident_msg(Roamnet__HostIdent *m, const struct host_ident *id, char **featv, uint32_t *cpuid);
void mig_self_ident(struct host_ident *id);
void mig_files_free(struct file_list *l);
int mig_files_of(pid_t pid, struct file_list *l);
uint64_t mig_rss_of(pid_t pid);
uint64_t mig_anon_of(pid_t pid);
void mig_clocks_of(pid_t pid, int64_t *mono, int64_t *boot);
/* The process's pid and thread ids (*out, to be freed); their number. */
size_t mig_tids_of(pid_t pid, pid_t **out);
int mig_may_trace(struct roam_error *err);
struct conn *mig_home_link(const char *home);
void mig_dest_checks(struct conn *c, const Roamnet__MigPrepare *p, char *why, size_t cap);
/* Whether this roamd says its image channel's version (in MigPrepare and
 * MigReply), which it puts in *version. */
bool mig_bulk_says(uint32_t *version);
/* The image channel's version the peer said (has: whether it said one; a
 * roamd of version 2, the last that did not, says none) is not this roamd's:
 * writes why the image cannot go between them and returns true. */
bool mig_bulk_mismatch(const char *peer, bool has, uint32_t version, char *why, size_t cap);

/* migrate_record.c */
void mig_record_write(struct mig *g);
void mig_record_drop(uint64_t mid);
bool mig_resolved(const Roamnet__MigReply *r);
void mig_records_load(void);
void mig_records_ask(struct conn *c);

#endif
