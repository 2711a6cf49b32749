/*
 * roamd: one daemon per host. One thread, one epoll loop; every source of
 * work is a file descriptor (sockets, pipes, pidfds, a signalfd, a timerfd).
 *
 * A job has two sides, which are one struct when the job runs at home:
 *   home side  on the host where `roam run` was typed: placement, the
 *              attached client, buffered output, the exit status for wait;
 *   exec side  on the host that runs it: the process, its pipes, its cgroup.
 * Between hosts, the home side talks over its outgoing link to the exec
 * host, and the exec host answers over the same connection (see
 * docs/daemon.md).
 */
#ifndef ROAMD_H
#define ROAMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cluster/cluster.h"
#include "net/buf.h"
#include "net/link.h"
#include "net/msg.h"
#include "policy/policy.h"

#define ROAMD_MAX_DENY 64

/* An epoll source: what to call when fd is ready. */
struct ev {
	int fd;
	void (*fn)(struct ev *ev, uint32_t events);
};

struct config {
	char name[CL_NAME_MAX];
	char listen[CL_ADDR_MAX];
	char peers[1024];            /* ADDR:PORT[,...] */
	char key_file[256];
	char control[256];
	char tags[CL_MAX_TAGS][CL_NAME_MAX];
	unsigned ntags;
	char policy[128];            /* default policy spec */
	unsigned max_procs;          /* 0: no limit */
	bool allow_root;
	char env_deny[ROAMD_MAX_DENY][64];   /* names (or PREFIX*) never passed on */
	unsigned nenv_deny;
	char cgroup_mode[8];         /* auto, v2, v1, none */
	char shared[CL_MAX_TAGS][CL_NAME_MAX];  /* shared storage path prefixes */
	unsigned nshared;
	unsigned doubt_timeout_s;    /* destination: prepared, source silent */
	uint64_t job_mem_max;        /* bytes each job may use here (its cgroup's limit), 0: none */
	bool dirty_hash;             /* pre-copy tracks dirty pages by hashing */
	bool image_clear;            /* image-encryption no: images may go in clear */
	char hide_cpu[CL_MAX_TAGS][CL_NAME_MAX];  /* tests: flags advertised as missing */
	unsigned nhide_cpu;
	char test_vdso_id[64];       /* tests: advertised vDSO identity */
	bool test_no_timer_ids;      /* tests: act as a kernel that cannot restore POSIX timer ids */
	char test_fault[32];         /* tests: a migration fault to inject (migrate.c) */
	uint32_t proto_min, proto;   /* peer protocols spoken (ROAMD_PROTO..; tests change it) */
	uint32_t bulk_version;       /* the image channel's version it says it speaks
	                                (BULK_VERSION; tests change it) */
	char state_dir[256];         /* what outlives a roamd (state.c) */
	unsigned ballast_mb;         /* benchmarks: stay resident with this much touched memory */
	int check_only;              /* -n */
	int verbose;
};

/*
 * The peer protocol: the messages of src/net/schema/wire.proto and what they
 * mean. A change that an older roamd would misread takes a new number; a
 * roamd speaks ROAMD_PROTO_MIN to ROAMD_PROTO, says so in its heartbeats,
 * and leaves out a host that shares none of them (roam hosts shows it
 * "incompatible"), rather than misread it.
 */
#define ROAMD_PROTO_MIN 1
#define ROAMD_PROTO     1

enum conn_kind { CONN_CONTROL = 1, CONN_PEER_IN, CONN_PEER_OUT };
enum conn_state {
	CS_CONNECTING = 1,   /* peer out: TCP connect in progress */
	CS_HELLO,            /* server: waiting for HELLO; client: for REPLY */
	CS_FINISH,           /* server: waiting for FINISH */
	CS_OPEN,             /* frames flow */
};

struct job;
struct mig;

struct conn {
	struct ev ev;
	enum conn_kind kind;
	enum conn_state state;
	struct buf in, out;
	uint32_t epoll_events;
	bool dead;                  /* closed at the end of this loop turn */
	char peer_desc[CL_ADDR_MAX];/* remote address or "uid N" for logs */
	struct link link;           /* peers */
	struct member *member;      /* peer out: the member it reaches */
	char peer_name[CL_NAME_MAX];/* peer in: the name its heartbeats gave */
	bool incompat;              /* peer in: it speaks no protocol we do */
	uint64_t deadline_ms;       /* handshake deadline */
	/* control clients */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char user[64];
	struct job *job;            /* run/attach: the job this client follows */
	struct job *waiting;        /* wait: the job it waits for */
	uint64_t query;             /* ps: the query it awaits */
	bool detach;
	bool held_back;             /* some job's output waits for this queue to drain */
	bool rx_paused;             /* control: its job's input queue is full: not read */
	bool flush_due;             /* frames queued this loop turn: conn_flush_due sends them */
	struct conn *next;
};

enum job_state { JOB_PLACING = 1, JOB_STARTING, JOB_RUNNING, JOB_EXITED, JOB_LOST, JOB_FAILED };

struct job {
	char id[MSG_MAX_ID];
	char home[CL_NAME_MAX];
	char host[CL_NAME_MAX];     /* where it runs (once placed) */
	char user[64];
	uid_t uid;                  /* home side: the caller */
	char *cmd;                  /* argv joined, for ps */
	enum job_state state;
	int status;                 /* wait status once exited */
	uint64_t started;           /* realtime seconds */
	bool home_side, exec_side;

	/* home side */
	struct conn *client;        /* the attached roam run/attach */
	struct buf backlog;         /* output frames kept while nobody is attached */
	Roamnet__Run *run;          /* the request, until it is placed */
	struct policy policy;
	struct policy_request req;
	struct policy_session session;
	uint64_t probe_qid;         /* placing: the probes in flight carry this */
	unsigned probes_out;
	uint64_t probe_deadline_ms;
	uint64_t near_qid;          /* placing: --near asked the near job's home (LocateReq) */
	uint64_t near_deadline_ms;
	struct member *exec_member; /* where it runs when not here */
	bool paused;                /* home: asked the exec host to stop reading output */
	bool held;                  /* exec: the home asked us to stop reading output */
	struct buf early_in;        /* home: stdin from the client not yet handed out
	                               (placing, moving, or the window is full) */
	bool early_eof;
	uint64_t in_out;            /* home: stdin handed to the exec side, not yet taken */
	bool in_pumping;
	uint32_t migrations;        /* times it moved between hosts */
	char *need;                 /* both sides: the caller's --need as typed (NULL: none);
	                               it moves with the job, and --auto and drain honour it */
	bool pinned;                /* both sides: placed by --on; --auto and drain leave it */
	bool migrating;             /* input and signals are held meanwhile */
	uint64_t held_sigs;         /* signals held while migrating (bit sig-1) */
	struct member *arrived;     /* home: where it says it landed, before its source did */
	uint64_t lost_ms;           /* home: its host died mid-migration; lost at this time */
	bool orphan;                /* exec: its home is gone; output kept (orphan.c) */
	uint64_t spilled;           /* exec, orphan: bytes of output kept on disk */
	char explain[512];
	char fail_reason[512];
	int fail_code;
	uint64_t reap_ms;           /* exited: forget it after this */

	/* exec side */
	struct conn *origin;        /* peer in: the home's link; NULL when home is here */
	pid_t pid;
	struct ev pidfd_ev;
	struct ev out_ev, err_ev, in_ev;
	struct buf stdin_buf;
	bool stdin_eof;
	uint64_t in_taken;          /* exec: stdin taken, not yet told the home */
	bool leader_exited;
	char cg_v2[256];            /* job cgroup dirs ("" if none) */
	char cg_v1[4][256];
	unsigned ncg_v1;
	struct mig *mig;            /* a migration of it in progress, here */

	struct job *next;
	struct job *hnext;          /* job.c's table by id */
};

/* A cluster-wide roam ps in progress, or a roam kill awaiting its home. */
struct query {
	uint64_t qid;
	struct conn *client;
	unsigned waiting;           /* peers yet to answer */
	uint64_t deadline_ms;
	Roamnet__JobInfo **jobs;    /* collected, owned copies */
	size_t njobs;
	char kill_id[MSG_MAX_ID];   /* roam kill: the job ("" for ps) */
	char kill_home[CL_NAME_MAX];/* roam kill: the home asked */
	struct query *next;
};

struct roamd {
	struct config cfg;
	uint8_t key[LINK_KEY_SIZE];
	int epfd;
	struct ev listen_ev, control_ev, signal_ev, timer_ev;
	struct conn *conns;
	struct job *jobs;
	struct job *graveyard;      /* freed at the end of the loop turn */
	struct query *queries;
	struct members members;
	struct host_load self_load;
	struct policy default_policy;
	struct policy_rng rng;
	uint64_t next_seq;           /* the last job id handed out */
	uint64_t seq_limit;          /* the last one reserved in the state directory */
	int state_fd;                /* the state directory */
	uint64_t next_qid;
	uint64_t last_heartbeat_ms;
	bool stopping;
	/* cgroups: where job folders go ("" when that hierarchy is unusable) */
	char cg_v2_base[256];
	char cg_v1_base[4][256];
	unsigned ncg_v1;
	/* The job memory limit in force (cfg.job_mem_max where a memory
	 * controller was found, else 0), and where: the cgroup2 tree, or the
	 * v1 hierarchy cg_v1_base[cg_mem_v1] (-1: not v1). */
	uint64_t mem_max;
	int cg_mem_v1;
};

extern struct roamd *roamd;  /* the one daemon of this process (main.c) */

/* log.c */
void log_init(const char *name, int verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* config.c */
void config_defaults(struct config *c);
/* Parses argv (and a -f FILE config file) into c; returns 0, or -1 after
 * printing the problem to stderr. */
int config_parse(struct config *c, int argc, char **argv);
/* Checks c: names, addresses, key file mode; prints problems; 0 if sound. */
int config_check(const struct config *c, uint8_t key[LINK_KEY_SIZE]);
int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* state.c */
/* Creates (0700) and opens the state directory, reads the job-id sequence;
 * 0 or -errno (-EBADMSG: a corrupt sequence file). */
int state_init(const char *dir);
/* The next job sequence number, never one an earlier roamd of this state
 * directory gave; 0 when no more could be reserved (logged). */
uint64_t state_next_seq(void);

/* users.c */
#define USERS_MAX_GROUPS 256
struct user_info {
	uid_t uid;
	gid_t gid;
	char name[64];
	int ngroups;                /* by name only: the supplementary groups */
	gid_t groups[USERS_MAX_GROUPS];
};
/* getpwuid, cached: 0, -ENOENT for an unknown uid, or -errno. */
int users_by_uid(uid_t uid, struct user_info *out);
/* getpwnam and getgrouplist, cached: 0, -ENOENT for an unknown name, or -errno. */
int users_by_name(const char *name, struct user_info *out);

/* loop.c */
int loop_add(struct ev *ev, uint32_t events);
int loop_mod(struct ev *ev, uint32_t events);
void loop_del(struct ev *ev);
/* snprintf that says -ENAMETOOLONG instead of truncating silently. */
int strfmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* conn.c */
struct conn *conn_new(int fd, enum conn_kind kind, const char *desc);
/* Queues one frame of type (plaintext on control, sealed on peers); it is
 * sent once the loop has no event left to handle (conn_flush_due), or at
 * once when the queue is long. */
int conn_send(struct conn *c, unsigned type, const ProtobufCMessage *m);
/* Sends what conn_send queued; main.c calls it when epoll has nothing
 * ready (or after a few busy turns). conn_flush_pending: anything queued. */
void conn_flush_due(void);
bool conn_flush_pending(void);
/* Queues bytes already framed (a job's kept output) and flushes. */
void conn_write(struct conn *c, const uint8_t *p, size_t n);
/* Marks c for closing at the end of the loop turn; notifies its users. */
void conn_kill(struct conn *c, const char *why);
void conn_reap(void);
/* Reads what c already holds, as if epoll had said so (an EAGAIN costs one
 * recv): a client that connects and writes at once is served without
 * roamd going back to sleep in between. */
void conn_read_now(struct conn *c);
/* Opens (or retries) the outgoing link to m. */
void conn_connect(struct member *m);
/* Bytes waiting to be written on c. */
size_t conn_pending(const struct conn *c);
/* Stops (or resumes) reading a control client: back-pressure on its stdin. */
void conn_pause_rx(struct conn *c, bool pause);
/* Kills handshakes past their deadline. */
void conn_tick(uint64_t now);

/* peer.c */
/* Handles one frame; returns true when it kept m (the caller frees it otherwise). */
bool peer_frame(struct conn *c, unsigned type, ProtobufCMessage *m);
void peer_opened(struct conn *c);
void peer_closed(struct conn *c);
void peer_tick(uint64_t now);
/* Fills out from l; tagv and featv (CL_MAX_TAGS and 64 entries) hold the
 * string pointers and must live as long as out. */
void peer_fill_load(Roamnet__HostLoad *out, const struct host_load *l, char **tagv, char **featv);
void peer_host_load_from(struct host_load *l, const Roamnet__HostLoad *in);
/* Why member m cannot take a job now, into buf: it speaks another peer
 * protocol, or it is not reachable. */
void member_unusable(const struct member *m, char *buf, size_t size);

/* control.c */
int control_listen(const char *path);
void control_accept(struct ev *ev, uint32_t events);
bool control_frame(struct conn *c, unsigned type, ProtobufCMessage *m);
void control_closed(struct conn *c);
void control_result(struct conn *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void query_answer(uint64_t qid, Roamnet__JobInfo **jobs, size_t n);
/* The home's verdict on a roam kill this host forwarded (KillRep). */
void kill_answer(uint64_t qid, int code, const char *reason);
/* A KillReq from another host for a job homed here: check, signal, answer on c. */
void kill_request(struct conn *c, const Roamnet__KillReq *k);
void query_tick(uint64_t now);

/* job.c (home side) */
struct job *job_find(const char *id);
struct job *job_new(const char *id);
void job_free(struct job *j);
void job_reap(void);
void job_place(struct conn *client, Roamnet__Run *run);
/* argv joined by spaces, at most 1 KiB (for ps); malloc'd. */
char *job_cmdline(char **argv, size_t n);
/* This host's part of roam ps: the jobs running here, and the jobs homed
 * here that run nowhere (placing or finished); a running job is reported
 * by its exec host only. Free with job_list_free. */
struct job_list {
	Roamnet__JobInfo *infos;
	Roamnet__JobInfo **ptrs;
	char (*states)[16];
	size_t n;
};
void job_list_local(struct job_list *l);
void job_list_free(struct job_list *l);
void job_probe_answer(uint64_t qid, struct member *m, const Roamnet__HostLoad *l);
/* A LocateReq for a job homed here: answers where it runs, on c. */
void job_locate(struct conn *c, const Roamnet__LocateReq *q);
/* The near job's home answered: the job waiting for it is placed. */
void job_locate_answer(const Roamnet__LocateRep *r);
void job_tick(uint64_t now);
void job_home_started(struct job *j, const char *host, int pid);
void job_home_output(struct job *j, unsigned fd, const uint8_t *data, size_t n);
void job_home_exited(struct job *j, int status);
/* Client c drained: remote jobs paused for it go on. */
void job_client_drained(struct conn *c);
void job_home_failed(struct job *j, int code, const char *reason);
void job_member_lost(struct member *m);
void job_signal(struct job *j, int sig);
/* stdin from the job's client, wherever the job is. */
void job_input(struct job *j, const uint8_t *data, size_t n, bool eof);
/* Stdin flow control. The home hands the exec side at most IN_WINDOW bytes
 * (one chunk more at most) that it has not taken yet, wherever the job runs;
 * past that, and while the job is placed or moves, input waits at the home,
 * which stops reading the client once IN_WINDOW waits there. So the input a
 * migration carries (MigCtl.stdin) stays far below a frame's limit. */
#define IN_WINDOW (256u << 10)
#define IN_CHUNK  (64u << 10)
_Static_assert(IN_WINDOW + IN_CHUNK + 1024 <= MSG_MAX_PAYLOAD, "COMMIT carries up to a window and a chunk of input");
void job_input_pump(struct job *j);
void job_input_taken(struct job *j, uint64_t n);   /* home: the exec side took n bytes */
void job_attach(struct conn *c, struct job *j);
void job_home_hold(struct job *j);
void job_home_moved(struct job *j, const char *host, int pid);
void job_home_stayed(struct job *j);
void job_info(const struct job *j, Roamnet__JobInfo *out, char *statebuf);
bool job_visible(const struct job *j, uid_t uid, const char *user);

/* exec.c (exec side) */
/* Starts s here. On failure returns the exit code to report (127 for a
 * program that cannot be executed, 255 otherwise) and fills reason. */
int exec_start(struct job *j, const Roamnet__Spawn *s, char *reason, size_t cap);
void exec_input(struct job *j, const uint8_t *data, size_t n, bool eof);
void exec_taken_flush(struct job *j);   /* tells the home what stdin was taken */
/* Output of the job, to wherever its home is (or kept, if it has none). */
void exec_deliver(struct job *j, unsigned fd, const uint8_t *data, size_t n);
void exec_signal(struct job *j, int sig);
void exec_origin_lost(struct conn *c);
/* Reading of job pipes paused for c's backlog resumes. */
void exec_resume(struct conn *c);
/* The home asks to pause or resume reading a job's output. */
void exec_hold(struct job *j, bool hold);
void exec_sample(struct job *j, uint64_t *cpu_ns, uint64_t *rss);
void exec_reap_orphans(void);
/* Migration destination: the restored process pid becomes j's, with the
 * pipe ends roamd keeps (stdin write end, stdout and stderr read ends). Its
 * output is held until the home says go on. */
int exec_adopt(struct job *j, pid_t pid, int in_w, int out_r, int err_r);
/* Migration source, once committed: the process is gone from here; what it
 * wrote is delivered, then the exec side is taken down without an exit. */
void exec_detach(struct job *j);
/* A job that landed here while its home's link was down finds it again. */
void exec_rebind(struct conn *c);
/* Migration source, aborted: held input and signals reach the process. */
void exec_unhold(struct job *j);
unsigned exec_running(void);
double exec_load(void);

/* migrate.c */
void migrate_init(void);
void migrate_request(struct conn *c, const Roamnet__Migrate *m);
void migrate_prepare(struct conn *c, const Roamnet__MigPrepare *p);
void migrate_ctl(struct conn *c, const Roamnet__MigCtl *m);
void migrate_reply(struct conn *c, const Roamnet__MigReply *r);
void migrate_done(struct conn *c, const Roamnet__MigDone *d);
void migrate_progress_relay(struct conn *c, const Roamnet__MigProgress *p);
void migrate_home(struct conn *c, const Roamnet__MigHome *h);
void migrate_link_closed(struct conn *c);
void migrate_link_opened(struct conn *c);
void migrate_client_closed(struct conn *c);
void migrate_tick(uint64_t now);
void migrate_drain(struct conn *c, const Roamnet__Drain *d);

/* orphan.c */
void orphan_adopt(struct job *j);
void orphan_keep(struct job *j, unsigned fd, const uint8_t *data, size_t n);
void orphan_exited(struct job *j, int status);
void orphan_forget(struct job *j);
void orphan_rehome(struct conn *c, const Roamnet__RehomeReq *r);
void orphan_find(struct conn *c, const char *id);
void orphan_found(struct conn *c, const Roamnet__RehomeRep *r);
void orphan_client_closed(struct conn *c);
void orphan_tick(uint64_t now);

/* spawn.c */
struct spawn_req {
	char *const *argv;
	char *const *envp;
	const char *const *paths;   /* candidate executables, tried in order */
	const char *cwd;
	mode_t umask;
	bool switch_user;           /* false: an unprivileged roamd runs jobs as itself */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int ngroups;
	const struct rlimit *rlim;  /* RLIM_NLIMITS entries or NULL */
	const bool *rlim_set;
	int fd_in, fd_out, fd_err;
	const char *const *cgroup_procs;  /* cgroup.procs files to join (v1) */
	int cgroup_fd;              /* the job's cgroup2 folder, born into it, or -1 */
	const char *cgroup_v2_procs;/* its cgroup.procs, if clone3 is refused */
};
enum spawn_stage { SPAWN_OK = 0, SPAWN_CGROUP, SPAWN_CREDS, SPAWN_CWD, SPAWN_RLIMIT, SPAWN_EXEC };
/* Creates the process with clone(CLONE_VM|CLONE_VFORK): returns its pid and
 * a pidfd, or -errno with *stage saying which step of the child failed. */
pid_t spawn_process(const struct spawn_req *r, int *pidfd, enum spawn_stage *stage);
const char *spawn_stage_name(enum spawn_stage s);

/* cgroup.c */
void cgroup_init(void);
int cgroup_create(struct job *j);
void cgroup_remove(struct job *j);
int cgroup_signal(struct job *j, int sig);
int cgroup_threads_file(const struct job *j, char *buf, size_t cap);
int cgroup_procs_file(const struct job *j, char *buf, size_t cap);
const char *cgroup_host_pressure(void);
uint64_t cgroup_cpu_ns(const struct job *j);
void cgroup_tick(void);
void cgroup_fini(void);
int cgroup_join(const struct job *j, pid_t pid);
int cgroup_freeze(const struct job *j, bool on);
int cgroup_open_procs(const struct job *j, int *fds, int max);
bool cgroup_mem_exceeded(const struct job *j);

#endif
