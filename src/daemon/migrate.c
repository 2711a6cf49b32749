/*
 * Migration: a running job moves to another host, and never runs in two
 * places (docs/migration.md has the protocol and its failure table).
 *
 * The source (the job's exec host) coordinates a two-phase commit:
 *
 *   source                                destination
 *   PREPARE   MigPrepare(ident, files) -->  checks, may refuse     READY
 *             MigHome HOLD --> home: input and signals wait there
 *   TRANSFER  freeze, MigData* ---------->  restore builds it, stopped
 *   BUILT     <-------------------------  MigReply BUILT
 *   DOUBT     cgroup frozen, MigCtl COMMIT ->  releases it             COMMITTED
 *             <------------------------- MigReply COMMITTED
 *   DONE      kills its copy, MigHome MOVED --> home switches over
 *
 * Until the source sends COMMIT, any failure aborts: the source resumes its
 * process and the destination kills what it built. Once COMMIT is sent the
 * source cannot know the outcome without the destination's answer, so its
 * copy stays frozen (in a frozen cgroup, which survives roamd) until the
 * destination says committed or not (MigCtl RESOLVE, sent again each time
 * the link comes back). The destination decides: it commits on COMMIT or
 * RESOLVE, aborts on ABORT or when its source stays silent doubt-timeout
 * seconds while it holds a built process, and remembers each outcome.
 *
 * The checkpoint and the restore block, so each runs in a worker (a forked
 * child of roamd) that is its process's tracer from start to end; the event
 * loop talks to it through pipes (its notes, and the decisions). The image
 * goes from worker to worker over a bulk channel of its own (net/bulk.h),
 * authenticated with the cluster key and bound to the migration, at the
 * speed of the wire.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "cluster/ident.h"
#include "daemon/migrate.h"
#include "daemon/roamd.h"
#include "net/bulk.h"
#include "restore/restore.h"
#include "sys/clock.h"
#include "sys/proc.h"

#define OUTCOMES    256

struct mig *migs;


/*
 * Faults the tests inject (roamd --test-fault NAME), each at one step:
 *   exit-ready exit-data exit-built exit-commit   destination roamd dies
 *     when it would answer READY, at the first image bytes, when the
 *     process is built, when COMMIT arrives;
 *   exit-transfer exit-before-commit exit-doubt   source roamd dies once
 *     the job is frozen / when BUILT arrives / right after sending COMMIT;
 *   corrupt-stream truncate-stream   the source damages the image in flight
 *     (a byte slipped into the connection) or cuts it short;
 *   lose-committed   the destination commits, then drops the link before
 *     its answer (the source is left in doubt);
 *   lose-commit   the destination drops the link when COMMIT arrives,
 *     before acting on it.
 * A roamd dying here is _exit: as abrupt as kill -9.
 */
bool mig_fault(const char *name)
{
	return !strcmp(roamd->cfg.test_fault, name);
}

void mig_fault_exit(const char *name)
{
	if (mig_fault(name)) {
		log_warn("test fault %s: exiting", name);
		_exit(99);
	}
}

/* roam drain of this host: the client waits for every job to be moved. */
static struct {
	struct conn *client;
	unsigned pending, moved, failed;
	char failures[2048];
} drain;

static void drain_done(bool ok, const char *msg);

/* The worker's last error, as text (its roam_error names the object). */
static const char *errtext(struct mig *g)
{
	return g->errmsg[0] ? g->errmsg : "the worker died";
}
static uint64_t next_mid;

/* What destinations decided, for sources that ask again. */
static struct outcome {
	char src[CL_NAME_MAX];
	uint64_t mid;
	bool committed;
} outcomes[OUTCOMES];
static unsigned noutcomes;

static void remember(const char *src, uint64_t mid, bool committed)
{
	struct outcome *o = &outcomes[noutcomes++ % OUTCOMES];

	snprintf(o->src, sizeof(o->src), "%s", src);
	o->mid = mid;
	o->committed = committed;
}

static const struct outcome *recall(const char *src, uint64_t mid)
{
	for (unsigned i = 0; i < OUTCOMES; i++)
		if (outcomes[i].mid == mid && !strcmp(outcomes[i].src, src))
			return &outcomes[i];
	return NULL;
}

#define MIG_OF(ev, member) ((struct mig *)((char *)(ev) - offsetof(struct mig, member)))


/* ---- bookkeeping ---------------------------------------------------------- */

static void ev_close(struct ev *ev)
{
	if (ev->fd >= 0) {
		loop_del(ev);
		close(ev->fd);
		ev->fd = -1;
	}
}

static void note_event(struct ev *ev, uint32_t events);

static struct mig *mig_new(bool source, struct job *j, const char *peer)
{
	struct mig *g = calloc(1, sizeof(*g));
	int np[2] = {-1, -1}, cp[2] = {-1, -1};

	if (!g)
		return NULL;
	g->source = source;
	g->job = j;
	snprintf(g->peer, sizeof(g->peer), "%s", peer);
	g->listen_fd = -1;
	g->note_ev.fd = -1;
	for (int i = 0; i < 4; i++)
		g->cg_fds[i] = -1;
	for (int i = 0; i < 3; i++)
		g->pipes[i][0] = g->pipes[i][1] = -1;
	g->t0_ns = mono_ns();
	if (pipe2(np, O_CLOEXEC) < 0 || pipe2(cp, O_CLOEXEC) < 0) {
		close_fd(&np[0]);
		close_fd(&np[1]);
		free(g);
		return NULL;
	}
	g->note_fd = np[0];
	g->worker_note_fd = np[1];
	g->ctl_fd = cp[1];
	g->worker_ctl_fd = cp[0];
	fcntl(g->note_fd, F_SETFL, O_NONBLOCK);
	g->note_ev = (struct ev){.fd = g->note_fd, .fn = note_event};
	loop_add(&g->note_ev, EPOLLIN);
	g->next = migs;
	migs = g;
	return g;
}

/* Frees g once its worker is done (the caller made sure it is). */
static void mig_free(struct mig *g)
{
	struct mig **pp;

	for (pp = &migs; *pp && *pp != g; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = g->next;
	if (g->worker > 0 && g->state != MS_DOUBT)
		kill(g->worker, SIGKILL);   /* done or useless by now; reaped as an orphan */
	if (g->job && g->job->mig == g)
		g->job->mig = NULL;
	ev_close(&g->note_ev);
	close_fd(&g->listen_fd);
	close_fd(&g->ctl_fd);
	close_fd(&g->worker_ctl_fd);
	close_fd(&g->worker_note_fd);
	for (int i = 0; i < 4; i++)
		close_fd(&g->cg_fds[i]);
	for (int i = 0; i < 3; i++) {
		close_fd(&g->pipes[i][0]);
		close_fd(&g->pipes[i][1]);
	}
	ckpt_tree_close(g->ckt);
	if (g->rs)
		restore_close(g->rs);
	buf_free(&g->commit_stdin);
	free(g);
}

static struct mig *find_mid(uint64_t mid, bool source, const char *peer)
{
	for (struct mig *g = migs; g; g = g->next)
		if (g->mid == mid && g->source == source && (!peer || !strcmp(g->peer, peer)))
			return g;
	return NULL;
}

/* ---- messages -------------------------------------------------------------- */

static void reply(struct mig *g, unsigned step, bool ok, const char *reason)
{
	Roamnet__MigReply r = ROAMNET__MIG_REPLY__INIT;

	if (!g->link)
		return;
	r.mid = g->mid;
	r.step = step;
	r.has_ok = 1;
	r.ok = ok;
	r.reason = (char *)reason;
	if (step == MIG_STEP_COMMITTED || step == MIG_STEP_BUILT) {
		r.has_pid = 1;
		r.pid = g->new_pid;
	}
	if (step == MIG_STEP_READY && ok) {
		r.has_port = 1;
		r.port = g->bulk_port;
		r.has_bulk_version = mig_bulk_says(&r.bulk_version);
	}
	/* The migration's own messages leave at once, not when the loop is
	 * next idle: its steps race with the bulk channel and the workers (a
	 * destination's reason for failing leaves before the reset of the
	 * bulk channel it closes right after). */
	conn_send(g->link, MSG_MIG_REPLY, &r.base);
	conn_flush_due();
}

static void ctl(struct mig *g, unsigned op, const char *reason)
{
	Roamnet__MigCtl c = ROAMNET__MIG_CTL__INIT;
	struct job *j = g->job;

	if (!g->link)
		return;
	c.mid = g->mid;
	c.op = op;
	c.reason = (char *)reason;
	if (op == MIG_OP_COMMIT && j) {
		c.has_stdin = 1;
		c.stdin.data = buf_data(&j->stdin_buf);
		c.stdin.len = buf_used(&j->stdin_buf);
		c.has_stdin_eof = 1;
		c.stdin_eof = j->stdin_eof || j->in_ev.fd < 0;
		c.has_sigs = 1;
		c.sigs = j->held_sigs;
	}
	if (op == MIG_OP_RESOLVE) {
		c.has_source_alive = 1;
		c.source_alive = true;
	}
	conn_send(g->link, MSG_MIG_CTL, &c.base);
	conn_flush_due();   /* at once, as reply's */
}

static void home_msg(struct job *j, unsigned op, const char *host, int pid)
{
	Roamnet__MigHome h = ROAMNET__MIG_HOME__INIT;

	h.id = j->id;
	h.op = op;
	h.host = (char *)host;
	h.has_pid = pid > 0;
	h.pid = pid;
	if (j->origin)
		conn_send(j->origin, MSG_MIG_HOME, &h.base);
}

static void progress(struct mig *g, const char *phase)
{
	Roamnet__MigProgress p = ROAMNET__MIG_PROGRESS__INIT;

	if (!g->client)
		return;
	p.phase = (char *)phase;
	p.has_bytes = p.has_total = p.has_round = 1;
	p.bytes = g->sent;
	p.total = g->rss;
	p.round = (uint32_t)g->rounds;
	/* A relayed request: to the roamd that relays it, which passes it on
	 * (migrate_progress_relay) as it will pass on the answer. */
	p.has_qid = g->client_qid != 0;
	p.qid = g->client_qid;
	conn_send(g->client, MSG_MIG_PROGRESS, &p.base);
}

static void answer_client(struct mig *g, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void answer_client(struct mig *g, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("migration %llu of %s: %s", (unsigned long long)g->mid, g->job ? g->job->id : "?", msg);
	if (g->client)
		mig_answer(g->client, g->client_qid, code, msg);
	g->client = NULL;
	if (g->draining) {
		g->draining = false;
		drain_done(code == 0, msg);
	}
}

/* ---- source ---------------------------------------------------------------- */

/*
 * The location policy of --auto and drain: the least loaded host that meets
 * the job's own need (its roam run --need, which moved with it) and takes
 * new processes, other than this one and reachable now. A running process
 * needs its own architecture whatever it asked for. NULL when there is
 * none, with why saying which need no host met (the policy's own reason).
 */
static struct member *auto_target(const struct job *j, char *why, size_t cap)
{
	static struct policy_host hosts[CL_MAX_MEMBERS];
	struct members *t = &roamd->members;
	struct policy_view v = {.hosts = hosts, .n = t->n};
	struct policy p = {.kind = POLICY_KIND_LEAST_LOADED};
	struct policy_request req;
	struct policy_session s;
	struct policy_result res;
	const char *bad = NULL;
	int rc, arch;

	if (j->pinned) {
		snprintf(why, cap, "job %s was placed with --on: only roam migrate --to moves it", j->id);
		return NULL;
	}
	policy_request_init(&req, 0, roamd->self_load.load);
	if (j->need && (rc = need_parse(j->need, t, &req, &bad)) < 0) {
		snprintf(why, cap, "job %s: its --need '%s': %s", j->id, j->need, need_strerror(rc));
		return NULL;
	}
	arch = policy_arch_parse(roamd->self_load.arch);
	if (req.arch == POLICY_ARCH_ANY && arch > 0)
		req.arch = (uint32_t)arch;
	members_view(t, hosts);
	hosts[0].flags = 0;   /* it runs here: another host or none */
	for (unsigned i = 1; i < t->n; i++)
		if (!t->m[i].link || t->m[i].link->state != CS_OPEN)
			hosts[i].flags = 0;
	policy_session_start(&s);
	rc = policy_decide(&p, &v, &req, &roamd->rng, NULL, &s, &res);
	if (rc == POLICY_DECIDED)
		return &t->m[res.host];
	if (rc == POLICY_REFUSED)
		snprintf(why, cap, "no other host can take job %s%s%s: %s", j->id, j->need ? " --need " : "",
			 j->need ? j->need : "", policy_unmet_str(res.unmet));
	else
		snprintf(why, cap, "no other host can take job %s: %s", j->id, policy_strerror(rc));
	return NULL;
}

static void source_abort(struct mig *g, const char *why);

static void start_transfer(struct mig *g)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (g->state != MS_PREPARE || !g->ready || !g->home_held)
		return;
	/* The destination's address: the far end of our link to it. */
	if (!g->link || getpeername(g->link->ev.fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, g->bulk_addr, sizeof(g->bulk_addr), NULL, 0,
			NI_NUMERICHOST) != 0)
		return source_abort(g, "the destination's address is unknown");
	g->job->migrating = true;
	g->state = MS_TRANSFER;
	mig_record_write(g);
	progress(g, "transfer");
	mig_go(g);   /* a worker gone meanwhile: its note pipe's end aborts */
}

/* Tells the worker to resume the process; the rest happens at its note. */
static void source_abort(struct mig *g, const char *why)
{
	if (g->state == MS_FINISHING)
		return;
	snprintf(g->why, sizeof(g->why), "%s", why);
	if (g->link)
		ctl(g, MIG_OP_ABORT, why);   /* unknown to it: ignored */
	if (g->worker && g->state != MS_PREPARE) {
		/* A worker still streaming would not hear 'R' until its stream
		 * fails: it is told to cut it (mig_cut_stream). Never killed:
		 * once it froze the process for the last time, the process dies
		 * with it (ckpt_kill_with_tracer), and an abort must resume it. */
		if (g->state == MS_TRANSFER)
			mig_cut_stream(g);
		g->state = MS_FINISHING;
		g->committing = false;
		mig_tell(g, 'R');
		return;
	}
	/* Nothing was frozen: a worker waiting for the word to go has not
	 * touched the process, and dies in mig_free. */
	struct job *j = g->job;
	if (j) {
		exec_unhold(j);
		if (j->home_side)
			job_home_stayed(j);
		else if (g->hold_sent)
			home_msg(j, MIG_HOME_STAYED, NULL, 0);
	}
	answer_client(g, 255, "cannot migrate %s to %s: %s", j ? j->id : "?", g->peer, why);
	mig_free(g);
}


/* A migration that failed with the process running on here: the answer. */
static void source_answer_failed(struct mig *g)
{
	answer_client(g, 255, "cannot migrate %s to %s: %s; it goes on here", g->jid, g->peer, g->why);
	mig_free(g);
}

/* How long a source whose stream broke waits for the destination's reason
 * (an out-of-memory kill there cuts the stream before it can say why; a
 * sanitized roamd on a loaded host took more than two seconds to say it). */
#define STREAM_REASON_WAIT_MS 5000

/*
 * Committed: the job is the destination's. Its copy here has SIGKILL
 * pending and can never run again (source_outcome), so the home and the
 * client hear it now, not once the worker has reaped it: the teardown of
 * its memory (~5 ms for 64 MiB) is no part of the migration's time.
 */
static void source_moved(struct mig *g)
{
	struct job *j = g->job;
	char host[CL_NAME_MAX];
	int pid = g->new_pid;

	snprintf(host, sizeof(host), "%s", g->peer);
	g->job = NULL;
	j->mig = NULL;
	if (j->home_side) {
		job_home_moved(j, host, pid);
	} else {
		home_msg(j, MIG_HOME_MOVED, host, pid);
		job_free(j);
	}
	double total = (double)(g->done_ns - g->t0_ns) / 1e6;
	double down = g->freeze_ns ? (double)(g->done_ns - g->freeze_ns) / 1e6 : 0;
	answer_client(g, 0, "migrated %s from %s to %s: total_ms=%.1f downtime_ms=%.1f bytes=%llu rounds=%d",
		      j->id, roamd->cfg.name, host, total, down, (unsigned long long)g->sent, g->rounds);
}

/* The worker is done with the process: killed (committed) or resumed. */
static void source_finished(struct mig *g)
{
	struct job *j = g->job;

	mig_record_drop(g->mid);
	if (!g->committing) {
		snprintf(g->jid, sizeof(g->jid), "%s", j ? j->id : "?");
		if (j) {
			cgroup_freeze(j, false);
			exec_unhold(j);
			if (j->home_side)
				job_home_stayed(j);
			else
				home_msg(j, MIG_HOME_STAYED, NULL, 0);
		}
		if (g->stream_broke && g->link) {
			g->answer_by_ms = mono_ms() + STREAM_REASON_WAIT_MS;   /* migrate_tick, or source_built */
			return;
		}
		return source_answer_failed(g);
	}
	if (g->worker_rc < 0)
		log_warn("migration %llu: killing the source copy: %s", (unsigned long long)g->mid, errtext(g));
	mig_free(g);
}

static void source_note(struct mig *g, char c)
{
	if (c == 'E') {
		char why[600];
		snprintf(why, sizeof(why), "checkpoint: %s", errtext(g));
		g->stream_broke = g->state == MS_TRANSFER || g->state == MS_BUILT_WAIT;
		return source_abort(g, why);
	}
	if (c == 'P') {
		char phase[40];
		snprintf(phase, sizeof(phase), "pre-copy round %d", g->rounds);
		return progress(g, phase);
	}
	if (c == 'D') {
		log_debug("migration %llu: image written (%d rounds)", (unsigned long long)g->mid, g->rounds);
		mig_fault_exit("exit-transfer");
		if (g->state == MS_TRANSFER)
			g->state = MS_BUILT_WAIT;
		return;
	}
	if (c == 'F')
		source_finished(g);
}

static void source_built(struct mig *g, const Roamnet__MigReply *r)
{
	if (g->state == MS_FINISHING && g->stream_broke && !r->ok) {
		/* Why the stream broke, from the side that broke it. */
		snprintf(g->why, sizeof(g->why), "%s", r->reason ? r->reason : "the destination could not restore it");
		g->stream_broke = false;
		if (g->answer_by_ms)
			source_answer_failed(g);
		return;
	}
	if (g->state != MS_BUILT_WAIT && g->state != MS_TRANSFER)
		return;
	if (!r->ok)
		return source_abort(g, r->reason ? r->reason : "the destination could not restore it");
	/* The point of no return for this host: from here only the
	 * destination's answer decides. Park the process where roamd's death
	 * cannot let it run: its cgroup frozen (a ptrace stop ends with us). */
	log_debug("migration %llu: built at %s", (unsigned long long)g->mid, g->peer);
	/* The input held here goes with COMMIT, in one frame. The home's
	 * window keeps it far below the limit; should it not fit, nothing is
	 * lost yet: stay (a COMMIT that cannot be sent would leave us in doubt
	 * on a link that works). */
	if (buf_used(&g->job->stdin_buf) + 1024 > msg_type_max(MSG_MIG_CTL))
		return source_abort(g, "too much input held for the job to carry it");
	mig_fault_exit("exit-before-commit");
	cgroup_freeze(g->job, true);
	g->state = MS_DOUBT;
	g->committing = true;
	progress(g, "commit");
	ctl(g, MIG_OP_COMMIT, NULL);
	conn_flush_due();   /* COMMIT leaves now (and before we die, under exit-doubt) */
	mig_fault_exit("exit-doubt");
}

static void source_outcome(struct mig *g, bool committed, int pid, const char *reason)
{
	if (g->state != MS_DOUBT)
		return;
	g->done_ns = mono_ns();
	log_debug("migration %llu: %s at %s", (unsigned long long)g->mid, committed ? "committed" : "not committed",
		  g->peer);
	g->new_pid = pid;
	g->state = MS_FINISHING;
	if (committed) {
		/* Killed before thawed: a v1 freezer would not let it die. Its
		 * end is not the job's: the exec side goes before it is seen. */
		kill(g->job->pid, SIGKILL);
		cgroup_freeze(g->job, false);
		buf_free(&g->job->stdin_buf);   /* it went with COMMIT: the destination reports it taken */
		exec_detach(g->job);
		g->job->held_sigs = 0;   /* they went with COMMIT */
		mig_tell(g, 'K');
		source_moved(g);
	} else {
		g->committing = false;
		snprintf(g->why, sizeof(g->why), "%s", reason ? reason : "the destination did not commit");
		mig_tell(g, 'R');
	}
}

void migrate_reply(struct conn *c, const Roamnet__MigReply *r)
{
	struct mig *g = find_mid(r->mid, true, NULL);

	if (!g && (r->step == MIG_STEP_COMMITTED || r->step == MIG_STEP_OUTCOME) && mig_resolved(r))
		return;
	if (!g || g->link != c)
		return;
	switch (r->step) {
	case MIG_STEP_READY: {
		bool ok = r->ok;
		const char *reason = r->reason ? r->reason : "refused";
		char vwhy[300];
		if (g->state != MS_PREPARE)
			return;
		/* A destination older than the check refuses nothing of it. */
		if (ok && mig_bulk_mismatch(g->peer, r->has_bulk_version, r->bulk_version, vwhy, sizeof(vwhy))) {
			ok = false;
			reason = vwhy;
		}
		if (g->committing && (g->why[0] || !ok)) {   /* --check: every blocker */
			char why[1200];
			snprintf(why, sizeof(why), "%s%s%s", g->why, g->why[0] && !ok ? "; " : "", ok ? "" : reason);
			return source_abort(g, why);
		}
		if (!ok)
			return source_abort(g, reason);
		if (g->committing) {   /* --check: nothing more to do */
			answer_client(g, 0, "%s can move to %s", g->job->id, g->peer);
			return mig_free(g);
		}
		if (!r->has_port || !r->port || r->port > 65535)
			return source_abort(g, "the destination gave no port for the image");
		g->bulk_port = (uint16_t)r->port;
		g->ready = true;
		return start_transfer(g);
	}
	case MIG_STEP_BUILT:
		return source_built(g, r);
	case MIG_STEP_COMMITTED:
	case MIG_STEP_OUTCOME:
		return source_outcome(g, r->ok, r->has_pid ? r->pid : 0, r->reason);
	}
}

static int start_migration(struct job *j, struct member *dst, bool check, bool cold, struct conn *c,
			   uint64_t qid, bool draining);

/* ---- relayed requests ------------------------------------------------------ */

/*
 * roam migrate may be typed on any host: a roamd where the job does not run
 * relays the request to the job's exec host if it is the job's home (it
 * knows where it runs), else to the job's home (named in its id), which
 * relays it once more. The answer (MigDone) comes back the same way.
 */
static struct relay {
	uint64_t qid;               /* ours, sent on up */
	struct conn *up;            /* where we sent it */
	struct conn *down;          /* who asked: a control client, or a peer */
	uint64_t down_qid;          /* a peer's qid (0: a control client) */
	struct relay *next;
} *relays;

void mig_answer(struct conn *c, uint64_t qid, int code, const char *msg)
{
	if (!qid) {
		control_result(c, code, "%s", msg);
		return;
	}
	Roamnet__MigDone d = ROAMNET__MIG_DONE__INIT;
	d.qid = qid;
	d.code = code;
	d.reason = (char *)msg;
	conn_send(c, MSG_MIG_DONE, &d.base);
}

static void relay_end(struct relay *r, int code, const char *msg)
{
	struct relay **pp;

	if (r->down)
		mig_answer(r->down, r->down_qid, code, msg);
	for (pp = &relays; *pp && *pp != r; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = r->next;
	free(r);
}

static void relay(struct conn *c, uint64_t qid, const Roamnet__Migrate *m, struct member *to, const char *user)
{
	Roamnet__Migrate f = *m;
	struct relay *r;

	if (!to || !to->link || to->link->state != CS_OPEN)
		return mig_answer(c, qid, 255, "the host that knows where the job runs is not reachable");
	if (!(r = calloc(1, sizeof(*r))))
		return mig_answer(c, qid, 255, "out of memory");
	r->qid = ++roamd->next_qid;
	r->up = to->link;
	r->down = c;
	r->down_qid = qid;
	r->next = relays;
	relays = r;
	f.has_qid = 1;
	f.qid = r->qid;
	f.user = (char *)user;
	if (conn_send(to->link, MSG_MIGRATE, &f.base) < 0)
		relay_end(r, 255, "the host that knows where the job runs is not reachable");
}

void migrate_done(struct conn *c, const Roamnet__MigDone *d)
{
	for (struct relay *r = relays; r; r = r->next)
		if (r->qid == d->qid && r->up == c)
			return relay_end(r, d->code, d->reason ? d->reason : "");
}

/* Progress of a request we relayed: on to whoever asked us, as its answer
 * will go (a peer relaying it once more gets it under its own qid). */
void migrate_progress_relay(struct conn *c, const Roamnet__MigProgress *p)
{
	for (struct relay *r = relays; r; r = r->next) {
		if (!p->has_qid || r->qid != p->qid || r->up != c)
			continue;
		if (r->down) {
			Roamnet__MigProgress f = *p;
			f.has_qid = r->down_qid != 0;
			f.qid = r->down_qid;
			conn_send(r->down, MSG_MIG_PROGRESS, &f.base);
		}
		return;
	}
}

/* A control client (qid 0) or a relaying peer asks to move job m->id. */
void migrate_request(struct conn *c, const Roamnet__Migrate *m)
{
	struct job *j = job_find(m->id);
	uint64_t qid = c->kind == CONN_CONTROL ? 0 : m->qid;
	const char *user = c->kind == CONN_CONTROL ? (c->uid == 0 ? "root" : c->user) : m->user;
	char why[1600];
	struct member *dst;

	if (c->kind != CONN_CONTROL && (!m->has_qid || !user))
		return;
	if (j && !(c->kind == CONN_CONTROL ? job_visible(j, c->uid, c->user)
					   : !strcmp(user, "root") || !strcmp(user, j->user)))
		return mig_answer(c, qid, 255, "job belongs to another user");
	if (!j || !j->exec_side) {
		char home[CL_NAME_MAX];
		uint64_t seq;
		if (j && j->home_side && j->exec_member)
			return relay(c, qid, m, j->exec_member, user);   /* we know where it runs */
		if (c->kind == CONN_CONTROL && msg_parse_job_id(m->id, home, sizeof(home), &seq) == 0 &&
		    strcmp(home, roamd->cfg.name))
			return relay(c, qid, m, members_find(&roamd->members, home), user);   /* its home knows */
		snprintf(why, sizeof(why), "no such running job %s", m->id);
		return mig_answer(c, qid, 255, why);
	}
	if (j->state != JOB_RUNNING || j->leader_exited) {
		snprintf(why, sizeof(why), "job %s is not running", j->id);
		return mig_answer(c, qid, 255, why);
	}
	if (j->mig) {
		snprintf(why, sizeof(why), "job %s is already migrating", j->id);
		return mig_answer(c, qid, 255, why);
	}
	if (m->to && m->to[0]) {
		dst = members_find(&roamd->members, m->to);
		if (!dst && !strcmp(m->to, roamd->cfg.name))
			snprintf(why, sizeof(why), "job %s already runs on %s", j->id, m->to);
		else if (!dst)
			snprintf(why, sizeof(why), "unknown host %s", m->to);
		if (!dst)
			return mig_answer(c, qid, 255, why);
	} else if (!(dst = auto_target(j, why, sizeof(why)))) {
		return mig_answer(c, qid, 255, why);
	}
	if (dst->self) {
		snprintf(why, sizeof(why), "job %s already runs on %s", j->id, dst->name);
		return mig_answer(c, qid, 255, why);
	}
	if (dst->state != MEMBER_UP || !dst->link || dst->link->state != CS_OPEN) {
		member_unusable(dst, why, sizeof(why));
		return mig_answer(c, qid, 255, why);
	}
	if (start_migration(j, dst, m->check, m->cold, c, qid, false) < 0)
		mig_answer(c, qid, 255, "out of memory");
}

/* Starts moving j to dst; every outcome reaches c (if any) and the drain. */
static int start_migration(struct job *j, struct member *dst, bool check, bool cold, struct conn *c,
			   uint64_t qid, bool draining)
{
	struct host_ident id;
	struct file_list files;
	Roamnet__MigPrepare p = ROAMNET__MIG_PREPARE__INIT;
	Roamnet__HostIdent im;
	char *featv[64];
	uint32_t cpuid[ARCH_CPUID_WORDS];
	struct mig *g;
	int rc;

	g = mig_new(true, j, dst->name);
	if (!g)
		return -ENOMEM;
	g->draining = draining;
	g->cold = cold;
	g->mid = next_mid++;
	g->link = dst->link;
	g->client = c;
	g->client_qid = qid;
	g->rss = mig_rss_of(j->pid);
	/* The engine's own refusals come first, before anything is frozen. */
	struct ckpt_opts o = {.codec = IMG_CODEC_NONE, .out_fd = -1, .dirty_hash = roamd->cfg.dirty_hash};
	if ((rc = ckpt_tree_open(&g->ckt, j->pid, &o, &g->err)) == 0) {
		g->ck = ckpt_tree_root(g->ckt);
		rc = ckpt_tree_check(g->ckt, check);
	}
	/* A process tree moves cold: pre-copy follows one process. */
	int dirfd = proc_open(j->pid);
	if (dirfd >= 0 && proc_count_children(dirfd, NULL) > 0)
		g->cold = 1;
	if (dirfd >= 0)
		close(dirfd);
	if (rc == 0)
		rc = mig_may_trace(&g->err);
	if (rc < 0) {
		char why[sizeof(g->why)];
		roam_error_text(&g->err, why, sizeof(why));
		if (!check) {
			source_abort(g, why);
			return 0;
		}
		/* --check goes on: the destination's reasons are listed too. */
		snprintf(g->why, sizeof(g->why), "%s", why);
	}
	if ((rc = mig_files_of(j->pid, &files)) < 0) {
		mig_files_free(&files);
		source_abort(g, "cannot list its files");
		return 0;
	}
	mig_self_ident(&id);
	mig_ident_msg(&im, &id, featv, cpuid);
	p.mid = g->mid;
	p.id = j->id;
	p.home = j->home[0] ? j->home : roamd->cfg.name;
	p.user = j->user;
	{
		struct passwd *pw = getpwnam(j->user);
		p.uid = pw ? pw->pw_uid : (uint32_t)-1;
	}
	p.command = j->cmd;
	p.has_started = p.has_migrations = p.has_rss = p.has_anon = 1;
	p.anon = mig_anon_of(j->pid);
	p.started = j->started;
	p.migrations = j->migrations;
	p.rss = g->rss;
	p.ident = &im;
	p.files = files.p;
	for (size_t i = 0; i < files.n; i++)
		files.p[i] = &files.v[i];
	p.n_files = files.n;
	p.sockets = files.sp;
	p.n_sockets = files.ns;
	p.has_check_only = p.check_only = check;
	p.has_bulk_version = mig_bulk_says(&p.bulk_version);
	p.need = j->need;
	p.has_pinned = p.pinned = j->pinned;
	p.has_clock_mono = p.has_clock_boot = 1;
	mig_clocks_of(j->pid, &p.clock_mono, &p.clock_boot);
	{
		int pfd = proc_open(j->pid);
		struct proc_posix_timer *timers = NULL;
		size_t n = 0;
		if (pfd >= 0) {
			proc_read_posix_timers(pfd, &timers, &n);
			close(pfd);
		}
		free(timers);
		p.has_posix_timers = n > 0;
		p.posix_timers = (uint32_t)n;
	}
	_Static_assert(sizeof(pid_t) == sizeof(int32_t), "MigPrepare.tids holds pids");
	pid_t *tids;
	p.n_tids = mig_tids_of(j->pid, &tids);
	p.tids = (int32_t *)tids;
	g->committing = check;   /* marks a check: READY ends it */
	rc = conn_send(g->link, MSG_MIG_PREPARE, &p.base);
	mig_files_free(&files);
	free(tids);
	j->mig = g;
	g->state = MS_PREPARE;
	if (rc < 0) {
		source_abort(g, "the link to the destination failed");
		return 0;
	}
	if (check) {
		g->home_held = true;
		return 0;
	}
	/* Input and signals wait at the home while the job is in flight. */
	if (j->home_side) {
		job_home_hold(j);
		g->home_held = true;
	} else {
		home_msg(j, MIG_HOME_HOLD, NULL, 0);
		g->hold_sent = true;
	}
	progress(g, "prepare");
	/* The worker starts now, while the destination prepares: it reads the
	 * layout (a walk of every page table, 25 ms a GiB, which the freeze
	 * would otherwise begin with) out of this loop, and is ready when
	 * READY comes (start_transfer). */
	if (mig_start_worker(g) < 0)
		source_abort(g, "cannot start a worker");
	return 0;
}

/* ---- drain ------------------------------------------------------------------ */

/* One fewer answer to wait for; the last one answers the client. */
static void drain_release(void)
{
	if (--drain.pending || !drain.client)
		return;
	if (drain.failed)
		control_result(drain.client, 255, "%s draining: moved %u jobs, %u could not move: %s",
			       roamd->cfg.name, drain.moved, drain.failed, drain.failures);
	else
		control_result(drain.client, 0, "%s drained: moved %u jobs", roamd->cfg.name, drain.moved);
	drain.client = NULL;
}

static void drain_done(bool ok, const char *msg)
{
	if (ok) {
		drain.moved++;
	} else {
		size_t n = strlen(drain.failures);
		drain.failed++;
		snprintf(drain.failures + n, sizeof(drain.failures) - n, "%s%s", n ? "; " : "", msg);
	}
	drain_release();
}

/* Stops placements here and moves every job that runs here elsewhere. */
static void drain_self(struct conn *c, bool undo)
{
	roamd->self_load.draining = !undo;
	roamd->members.m[0].load.draining = !undo;
	log_info("%s", undo ? "undrained: taking jobs again" : "draining: no new jobs, moving jobs away");
	if (undo) {
		if (c)
			control_result(c, 0, "%s takes jobs again", roamd->cfg.name);
		return;
	}
	if (drain.pending) {
		if (c)
			control_result(c, 255, "%s is already being drained", roamd->cfg.name);
		return;
	}
	memset(&drain, 0, sizeof(drain));
	drain.client = c;
	drain.pending = 1;   /* held until every migration has started */
	for (struct job *j = roamd->jobs; j; j = j->next) {
		struct member *dst;
		char why[1600];
		if (!j->exec_side || j->state != JOB_RUNNING || j->leader_exited || j->mig)
			continue;
		drain.pending++;
		if (!(dst = auto_target(j, why, sizeof(why)))) {
			log_info("drain: %s stays here: %s", j->id, why);
			drain_done(false, why);
		} else if (start_migration(j, dst, false, false, NULL, 0, true) < 0) {
			snprintf(why, sizeof(why), "%s: out of memory", j->id);
			drain_done(false, why);
		}
	}
	drain_release();   /* the hold above: every job has its migration now */
}

void migrate_drain(struct conn *c, const Roamnet__Drain *d)
{
	struct member *m;

	if (c->kind != CONN_CONTROL) {
		if (!strcmp(d->host, roamd->cfg.name))
			drain_self(NULL, d->undo);   /* asked by root on another host */
		return;
	}
	if (c->uid != 0 && c->uid != geteuid())
		return control_result(c, 255, "only root may drain a host");
	if (!strcmp(d->host, roamd->cfg.name))
		return drain_self(c, d->undo);
	m = members_find(&roamd->members, d->host);
	if (!m)
		return control_result(c, 255, "unknown host %s", d->host);
	if (!m->link || m->link->state != CS_OPEN || conn_send(m->link, MSG_DRAIN, &d->base) < 0)
		return control_result(c, 255, "host %s is not reachable", d->host);
	control_result(c, 0, "asked %s to %s", d->host, d->undo ? "take jobs again" : "drain");
}

/* ---- destination ------------------------------------------------------------ */

static void dest_cleanup_job(struct mig *g)
{
	struct job *j = g->job;

	g->job = NULL;
	if (!j)
		return;
	j->mig = NULL;
	if (!j->exec_side) {
		cgroup_remove(j);
		if (!j->home_side)
			job_free(j);
	}
}

/* Why the build failed, as the source will tell its caller: the job's
 * memory limit when the restore ran into it (the kernel's kill of the
 * half-built process is what the worker saw), else the worker's error. */
static void dest_failure_why(struct mig *g, char *why, size_t size)
{
	if (g->job && cgroup_mem_exceeded(g->job))
		snprintf(why, size, "%s: out of memory: the process did not fit in the job memory "
			 "limit there (roamd --job-mem-max %llu MiB; restore: %s)", roamd->cfg.name,
			 (unsigned long long)(roamd->mem_max >> 20), errtext(g));
	else
		snprintf(why, size, "%s: restore: %s", roamd->cfg.name, errtext(g));
}

static void dest_abort(struct mig *g, const char *why)
{
	log_info("migration %llu from %s: aborted: %s", (unsigned long long)g->mid, g->peer, why);
	remember(g->peer, g->mid, false);
	if (g->state == MD_RECEIVING && g->job && cgroup_mem_exceeded(g->job)) {
		/* The stream broke because the restore here ran out of memory
		 * (the source's ABORT may come before our worker's note): the
		 * source waits for this side's reason, which is the real one. */
		char own[800];
		dest_failure_why(g, own, sizeof(own));
		log_info("migration %llu: %s", (unsigned long long)g->mid, own);
		reply(g, MIG_STEP_BUILT, false, own);
	}
	if (g->state == MD_BUILT) {
		g->state = MD_RELEASING;
		mig_tell(g, 'A');
		return;   /* the worker's note frees it */
	}
	if (g->state == MD_RECEIVING && g->worker) {
		/* The worker is reading: end it (its half-built process dies with
		 * it); its end, seen as EOF on its notes, frees the rest. */
		kill(g->worker, SIGKILL);
		g->state = MD_RELEASING;
		return;
	}
	if (g->state == MD_RELEASING)
		return;
	dest_cleanup_job(g);
	mig_free(g);
}

static void dest_commit(struct mig *g)
{
	if (g->state != MD_BUILT)
		return;
	log_debug("migration %llu: commit", (unsigned long long)g->mid);
	g->state = MD_RELEASING;
	g->outcome_ok = true;
	mig_tell(g, 'G');
}

void migrate_prepare(struct conn *c, const Roamnet__MigPrepare *p)
{
	char why[2048];
	struct mig *g;
	struct job *j;
	struct restore_opts o = {.stdio = {-1, -1, -1}};

	g = find_mid(p->mid, false, c->peer_name);
	if (g || recall(c->peer_name, p->mid)) {
		Roamnet__MigReply r = ROAMNET__MIG_REPLY__INIT;
		r.mid = p->mid;
		r.step = MIG_STEP_READY;
		r.has_ok = 1;
		r.reason = "duplicate migration number";
		conn_send(c, MSG_MIG_REPLY, &r.base);
		return;
	}
	mig_dest_checks(c, p, why, sizeof(why));
	if (why[0] || p->check_only) {
		Roamnet__MigReply r = ROAMNET__MIG_REPLY__INIT;
		r.mid = p->mid;
		r.step = MIG_STEP_READY;
		r.has_ok = 1;
		r.ok = !why[0];
		r.reason = why[0] ? why : NULL;
		r.has_bulk_version = mig_bulk_says(&r.bulk_version);
		conn_send(c, MSG_MIG_REPLY, &r.base);
		if (why[0])
			log_info("migration of %s from %s refused: %s", p->id, c->peer_name, why);
		return;
	}
	j = job_find(p->id);
	if (!j) {
		j = job_new(p->id);
		if (!j)
			goto oom;
		snprintf(j->home, sizeof(j->home), "%s", p->home);
		snprintf(j->user, sizeof(j->user), "%s", p->user);
		j->cmd = strdup(p->command ? p->command : "?");
		j->need = p->need && p->need[0] ? strdup(p->need) : NULL;
		j->pinned = p->has_pinned && p->pinned;
		j->started = p->started;
		j->origin = mig_home_link(p->home);
	}
	g = mig_new(false, j, c->peer_name);
	if (!g) {
		if (!j->home_side)
			job_free(j);
		goto oom;
	}
	j->mig = g;
	g->mid = p->mid;
	g->link = c;
	g->state = MD_RECEIVING;
	g->rss = p->rss;
	j->migrations = p->migrations + 1;
	/* The process is built inside the job's cgroups, under their limits:
	 * one bigger than this host's job memory limit fails to build (OOM
	 * kill or ENOMEM), and the source resumes it. */
	cgroup_create(j);
	g->ncg = cgroup_open_procs(j, g->cg_fds, 4);
	o.ncgroup = g->ncg;
	memcpy(o.cgroup_procs, g->cg_fds, sizeof(o.cgroup_procs));
	for (int i = 0; i < 3; i++)
		if (pipe2(g->pipes[i], O_CLOEXEC) < 0)
			goto fail;
	o.stdio[0] = g->pipes[0][0];
	o.stdio[1] = g->pipes[1][1];
	o.stdio[2] = g->pipes[2][1];
	o.authenticated = 1;   /* the bulk channel's tags cover every byte */
	/* The image comes on a bulk channel of its own, at the address the
	 * source reaches us at (the near end of its link). */
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char addr[64];
		if (getsockname(c->ev.fd, (struct sockaddr *)&ss, &sl) < 0 ||
		    getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0 ||
		    (g->listen_fd = bulk_listen(addr, &g->bulk_port)) < 0)
			goto fail;
	}
	/* The worker and the restore's helpers, made next, take pids above. */
	int kept = proc_keep_pids_free(p->tids, p->n_tids);
	if (kept < 0)
		log_debug("ns_last_pid: %s", strerror(-kept));
	if (restore_open(&g->rs, &o, &g->err) < 0 || mig_start_worker(g) < 0)
		goto fail;
	for (int i = 0; i < 4; i++)
		close_fd(&g->cg_fds[i]);   /* the worker's now */
	mig_fault_exit("exit-ready");
	reply(g, MIG_STEP_READY, true, NULL);
	log_info("migration %llu: receiving %s from %s", (unsigned long long)g->mid, j->id, g->peer);
	return;
fail:
	snprintf(why, sizeof(why), "%s: cannot prepare the restore: %s", roamd->cfg.name, strerror(errno));
	reply(g, MIG_STEP_READY, false, why);
	dest_cleanup_job(g);
	mig_free(g);
	return;
oom: {
	Roamnet__MigReply r = ROAMNET__MIG_REPLY__INIT;
	r.mid = p->mid;
	r.step = MIG_STEP_READY;
	r.has_ok = 1;
	r.reason = "out of memory";
	conn_send(c, MSG_MIG_REPLY, &r.base);
}
}

static void dest_built(struct mig *g)
{
	/* The worker holds the child's ends of the pipes no more. */
	close_fd(&g->pipes[0][0]);
	close_fd(&g->pipes[1][1]);
	close_fd(&g->pipes[2][1]);
	if (g->state != MD_RECEIVING) {   /* aborted meanwhile */
		g->state = MD_BUILT;
		return dest_abort(g, "aborted while building");
	}
	g->state = MD_BUILT;
	mig_fault_exit("exit-built");
	reply(g, MIG_STEP_BUILT, true, NULL);
	conn_flush_due();
	if (!g->link)
		g->deadline_ms = mono_ms() + (uint64_t)roamd->cfg.doubt_timeout_s * 1000;
}

static void dest_released(struct mig *g)
{
	struct job *j = g->job;

	if (!g->outcome_ok || g->worker_rc < 0) {
		if (g->outcome_ok) {
			/* Release failed: the process is gone, so is the commit. */
			log_warn("migration %llu: release failed: %s", (unsigned long long)g->mid,
				 errtext(g));
			remember(g->peer, g->mid, false);
			reply(g, MIG_STEP_COMMITTED, false, "the destination could not start it");
		}
		dest_cleanup_job(g);
		return mig_free(g);
	}
	remember(g->peer, g->mid, true);
	/* What the pipe held at the source is in our pipe (the worker put it
	 * there); then comes what the source's roamd held. */
	if (buf_used(&g->commit_stdin))
		buf_append(&j->stdin_buf, buf_data(&g->commit_stdin), buf_used(&g->commit_stdin));
	buf_free(&g->commit_stdin);
	if (!j->home_side && !j->origin && !g->home_gone)
		j->origin = mig_home_link(j->home);
	if (exec_adopt(j, g->new_pid, g->pipes[0][1], g->pipes[1][0], g->pipes[2][0]) < 0)
		log_warn("job %s: cannot watch pid %d", j->id, g->new_pid);
	g->pipes[0][1] = g->pipes[1][0] = g->pipes[2][0] = -1;
	for (int s = 1; s <= 64; s++)
		if (j->held_sigs & (1ull << (s - 1)))
			exec_signal(j, s);
	j->held_sigs = 0;
	if (g->home_gone) {
		orphan_adopt(j);
		exec_hold(j, false);
	}
	log_info("migration %llu: job %s runs here as pid %d", (unsigned long long)g->mid, j->id, g->new_pid);
	if (j->origin)   /* tell the home too, in case the source dies now */
		home_msg(j, MIG_HOME_ARRIVED, roamd->cfg.name, g->new_pid);
	if (mig_fault("lose-committed") && g->link) {
		roamd->cfg.test_fault[0] = 0;   /* once */
		conn_kill(g->link, "test fault lose-committed");
		g->link = NULL;
	}
	reply(g, MIG_STEP_COMMITTED, true, NULL);
	conn_flush_due();   /* the pause ends when the source hears it: now */
	/* Born in its cgroups (restore_opts.cgroup_procs) unless they could
	 * not be opened: then into them only now, since moving a process waits
	 * for an RCU grace period (milliseconds), which the pause need not
	 * include. */
	if (!g->ncg && cgroup_join(j, g->new_pid) < 0)
		log_warn("job %s: joining its cgroup failed", j->id);
	j->mig = NULL;
	g->job = NULL;
	mig_free(g);
}

static void dest_note(struct mig *g, char c)
{
	if (c == 'X')
		mig_fault_exit("exit-data");
	if (c == 'B')
		return dest_built(g);
	if (c == 'E') {
		char why[800];
		dest_failure_why(g, why, sizeof(why));
		if (g->state == MD_RECEIVING)
			reply(g, MIG_STEP_BUILT, false, why);
		remember(g->peer, g->mid, false);
		log_info("migration %llu: %s", (unsigned long long)g->mid, why);
		dest_cleanup_job(g);
		return mig_free(g);
	}
	if (c == 'F')
		dest_released(g);
}

void migrate_ctl(struct conn *c, const Roamnet__MigCtl *m)
{
	struct mig *g = find_mid(m->mid, false, c->peer_name);
	const struct outcome *o;

	if (g && g->link != c)
		g->link = c;   /* the source came back on a new link */
	if (m->op == MIG_OP_ABORT) {
		if (g)
			dest_abort(g, m->reason ? m->reason : "the source aborted");
		return;
	}
	if (g && g->state == MD_BUILT && m->op == MIG_OP_COMMIT) {
		mig_fault_exit("exit-commit");
		if (mig_fault("lose-commit")) {
			roamd->cfg.test_fault[0] = 0;   /* once */
			return conn_kill(c, "test fault lose-commit");
		}
	}
	if (g && g->state == MD_BUILT && m->op == MIG_OP_RESOLVE && m->has_source_alive && !m->source_alive &&
	    g->job && !strcmp(g->job->home, c->peer_name))
		g->home_gone = true;   /* the source was its home: a new roamd there knows nothing of it */
	if (g && g->state == MD_BUILT) {
		/* COMMIT, or RESOLVE from a source in doubt or restarted: either
		 * way the source's copy will not run: take it. */
		struct job *j = g->job;
		if (m->op == MIG_OP_COMMIT && j) {
			buf_free(&g->commit_stdin);   /* the image is all in: it holds stdin now */
			if (m->has_stdin && m->stdin.len)
				buf_append(&g->commit_stdin, m->stdin.data, m->stdin.len);
			j->stdin_eof = m->has_stdin_eof && m->stdin_eof;
			j->held_sigs = m->has_sigs ? m->sigs : 0;
		}
		return dest_commit(g);
	}
	if (g)
		return;   /* still receiving or releasing: its answer comes */
	o = recall(c->peer_name, m->mid);
	Roamnet__MigReply r = ROAMNET__MIG_REPLY__INIT;
	r.mid = m->mid;
	r.step = m->op == MIG_OP_COMMIT ? MIG_STEP_COMMITTED : MIG_STEP_OUTCOME;
	r.has_ok = 1;
	r.ok = o && o->committed;
	r.reason = r.ok ? NULL : "the destination holds no such migration";
	conn_send(c, MSG_MIG_REPLY, &r.base);
}

/* ---- events -------------------------------------------------------------- */

static void note_event(struct ev *ev, uint32_t events)
{
	struct mig *g = MIG_OF(ev, note_ev);
	struct worker_note n;
	ssize_t got;

	(void)events;
	while ((got = read(ev->fd, &n, sizeof(n))) < 0 && errno == EINTR)
		;
	if (got < 0 && errno == EAGAIN)
		return;
	if (got != (ssize_t)sizeof(n)) {
		/* The worker died: as a failure, then as its end. */
		memset(&n, 0, sizeof(n));
		n.rc = -ECHILD;
		n.kind = g->state == MS_DOUBT || g->state == MD_RELEASING || g->state == MS_FINISHING ? 'F' : 'E';
		ev_close(&g->note_ev);
		g->worker = 0;
	}
	g->worker_rc = n.rc;
	if (n.err[0])
		snprintf(g->errmsg, sizeof(g->errmsg), "%s", n.err);
	if (g->source && (n.kind == 'P' || n.kind == 'D')) {
		g->rounds = n.pid;   /* a source worker's notes carry its round there */
		g->sent = n.bytes;
	}
	else if (n.pid)
		g->new_pid = n.pid;
	if (n.freeze_ns)
		g->freeze_ns = n.freeze_ns;
	if (g->source)
		source_note(g, n.kind);
	else
		dest_note(g, n.kind);
}

/* ---- home side ------------------------------------------------------------- */

void migrate_home(struct conn *c, const Roamnet__MigHome *h)
{
	struct job *j = job_find(h->id);

	if (c->kind == CONN_PEER_IN) {
		/* Home -> exec: HELD. */
		if (!j || j->origin != c || !j->mig || h->op != MIG_HOME_HELD)
			return;
		j->mig->home_held = true;
		return start_transfer(j->mig);
	}
	/* Exec -> home on our link to it: the new host says it has the job
	 * before its source says it gave it away (which it may never say if
	 * it dies): kept, in case. */
	if (h->op == MIG_HOME_ARRIVED) {
		if (j && j->home_side && j->migrating && j->exec_member != c->member) {
			if (j->lost_ms)   /* its source is gone already */
				return job_home_moved(j, c->member->name, h->has_pid ? h->pid : 0);
			j->arrived = c->member;
		}
		return;
	}
	if (!j || !j->home_side || j->exec_member != c->member)
		return;
	switch (h->op) {
	case MIG_HOME_HOLD: {
		Roamnet__MigHome a = ROAMNET__MIG_HOME__INIT;
		job_home_hold(j);
		a.id = j->id;
		a.op = MIG_HOME_HELD;
		conn_send(c, MSG_MIG_HOME, &a.base);
		return;
	}
	case MIG_HOME_MOVED:
		return job_home_moved(j, h->host, h->has_pid ? h->pid : 0);
	case MIG_HOME_STAYED:
		return job_home_stayed(j);
	}
}

/* ---- links and time ------------------------------------------------------- */

void migrate_link_closed(struct conn *c)
{
	struct mig *g, *next;
	struct relay *r, *rn;

	for (r = relays; r; r = rn) {
		rn = r->next;
		if (r->down == c)
			r->down = NULL;
		if (r->up == c)
			relay_end(r, 255, "the host relaying roam migrate was lost before it answered");
	}
	for (g = migs; g; g = g->next)
		if (g->client == c)
			g->client = NULL;   /* a relaying peer gone: nobody to answer */

	for (g = migs; g; g = next) {
		next = g->next;
		if (!g->source && g->job && g->job->origin == c)
			g->job->origin = NULL;   /* found again when it lands */
		if (g->link != c)
			continue;
		g->link = NULL;
		if (g->source) {
			if (g->state == MS_DOUBT)
				log_warn("migration %llu of %s: link to %s lost after COMMIT: frozen until %s answers",
					 (unsigned long long)g->mid, g->job->id, g->peer, g->peer);
			else if (g->state != MS_FINISHING)
				source_abort(g, "the link to the destination was lost");
		} else if (g->state == MD_BUILT) {
			g->deadline_ms = mono_ms() + (uint64_t)roamd->cfg.doubt_timeout_s * 1000;
			log_warn("migration %llu from %s: link lost before the decision; waiting %u s",
				 (unsigned long long)g->mid, g->peer, roamd->cfg.doubt_timeout_s);
		} else if (g->state == MD_RECEIVING) {
			dest_abort(g, "the link to the source was lost");
		}
	}
	/* A home whose job's host goes mid-migration: job_member_lost waits for
	 * the destination's ARRIVED. */
}

void migrate_link_opened(struct conn *c)
{
	if (c->kind != CONN_PEER_OUT || !c->member)
		return;
	mig_records_ask(c);
	for (struct mig *g = migs; g; g = g->next)
		if (g->source && g->state == MS_DOUBT && !g->link && !strcmp(g->peer, c->member->name)) {
			g->link = c;
			log_info("migration %llu: asking %s for the outcome", (unsigned long long)g->mid, g->peer);
			ctl(g, MIG_OP_RESOLVE, NULL);
		}
}

void migrate_client_closed(struct conn *c)
{
	for (struct relay *r = relays; r; r = r->next)
		if (r->down == c)
			r->down = NULL;
	for (struct mig *g = migs; g; g = g->next)
		if (g->client == c)
			g->client = NULL;
}

void migrate_tick(uint64_t now)
{
	struct mig *g, *next;

	for (g = migs; g; g = next) {
		next = g->next;
		if (!g->source && g->state == MD_BUILT && !g->link && g->deadline_ms && now >= g->deadline_ms)
			dest_abort(g, "the source stayed silent past the doubt timeout");
		else if (g->source && g->answer_by_ms && (now >= g->answer_by_ms || !g->link))
			source_answer_failed(g);
	}
}

void migrate_init(void)
{
	/* Migration numbers never repeat across restarts of this daemon. */
	next_mid = (uint64_t)clock_ns(CLOCK_REALTIME);
	mig_records_load();
	bulk_preload();   /* once here, not in every worker */
	bulk_allow_clear(roamd->cfg.image_clear);
	if (roamd->cfg.image_clear)
		log_info("migration images go in clear (authenticated) with hosts that allow it too");
}

