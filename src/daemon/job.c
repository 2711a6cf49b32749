/*
 * The job table and the home side of a job: placement through the policy
 * module, the conversation with the exec host, the attached client, the
 * output kept while nobody is attached, and the exit status kept for wait.
 *
 * Home-side states:
 *   PLACING   the policy is deciding (maybe waiting for probe answers)
 *   STARTING  Spawn sent to the exec host, no answer yet
 *   RUNNING   it runs (here or there)
 *   EXITED    status known;  FAILED  never started;  LOST  its host died
 * Every state but PLACING/STARTING/RUNNING is final; a final job is kept a
 * while for roam wait and roam attach, then forgotten.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define PROBE_MS        1000       /* a probe unanswered this long is lost */
#define BACKLOG_MAX     (1u << 20) /* output kept for a detached job before it is held */
#define FLOW_HIGH       (4u << 20) /* client backlog that pauses a remote job */
#define KEEP_SEEN_MS    60000      /* a final job its client saw end */
#define KEEP_UNSEEN_MS  600000     /* a final job nobody saw end */

static void flush_early_input(struct job *j);

/* Jobs by id: job_find runs for every frame about a job, and a busy home
 * keeps thousands of ended jobs for roam wait (KEEP_SEEN_MS). */
#define JOB_BUCKETS 1024
static struct job *by_id[JOB_BUCKETS];

static struct job **bucket(const char *id)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &by_id[h % JOB_BUCKETS];
}

struct job *job_find(const char *id)
{
	for (struct job *j = *bucket(id); j; j = j->hnext)
		if (!strcmp(j->id, id))
			return j;
	return NULL;
}

struct job *job_new(const char *id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->pidfd_ev.fd = j->out_ev.fd = j->err_ev.fd = j->in_ev.fd = -1;
	j->next = roamd->jobs;
	roamd->jobs = j;
	j->hnext = *bucket(j->id);
	*bucket(j->id) = j;
	return j;
}

void job_free(struct job *j)
{
	struct job **pp;

	for (pp = &roamd->jobs; *pp && *pp != j; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = j->next;
	for (pp = bucket(j->id); *pp && *pp != j; pp = &(*pp)->hnext)
		;
	if (*pp)
		*pp = j->hnext;
	for (struct conn *c = roamd->conns; c; c = c->next) {
		if (c->job == j)
			c->job = NULL;
		if (c->waiting == j)
			c->waiting = NULL;
	}
	/* Events of this loop turn may still name the job's (closed) fds:
	 * the memory goes at the end of the turn, in job_reap. */
	j->next = roamd->graveyard;
	roamd->graveyard = j;
}

void job_reap(void)
{
	while (roamd->graveyard) {
		struct job *j = roamd->graveyard;
		roamd->graveyard = j->next;
		if (j->run)
			msg_free(&j->run->base);
		buf_free(&j->backlog);
		buf_free(&j->stdin_buf);
		buf_free(&j->early_in);
		free(j->cmd);
		free(j->need);
		free(j);
	}
}

static bool final(const struct job *j)
{
	return j->state == JOB_EXITED || j->state == JOB_FAILED || j->state == JOB_LOST;
}

bool job_visible(const struct job *j, uid_t uid, const char *user)
{
	return uid == 0 || (j->home_side ? j->uid == uid : !strcmp(j->user, user));
}

char *job_cmdline(char **argv, size_t n)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(argv[i]) + 1;
	if (len > 1024)
		len = 1024;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*p = 0;
	for (size_t i = 0; i < n; i++) {
		size_t room = len - (size_t)(p - s);
		int w = snprintf(p, room, "%s%s", i ? " " : "", argv[i]);
		if (w < 0 || (size_t)w >= room)
			break;
		p += w;
	}
	return s;
}

/* Ends a job's placement or run with a roam failure (or 127). */
void job_home_failed(struct job *j, int code, const char *reason)
{
	if (final(j))
		return;
	j->state = code == 255 && j->exec_member && j->state == JOB_RUNNING ? JOB_LOST : JOB_FAILED;
	j->fail_code = code;
	snprintf(j->fail_reason, sizeof(j->fail_reason), "%s", reason);
	j->reap_ms = mono_ms() + (j->client ? KEEP_SEEN_MS : KEEP_UNSEEN_MS);
	log_info("job %s failed: %s", j->id, reason);
	job_input_pump(j);   /* what waits is dropped; the client is read again */
	if (j->client) {
		Roamnet__Failed f = ROAMNET__FAILED__INIT;
		f.id = j->id;
		f.code = code;
		f.reason = j->fail_reason;
		conn_send(j->client, MSG_FAILED, &f.base);
	}
	for (struct conn *c = roamd->conns; c; c = c->next)
		if (c->waiting == j) {
			control_result(c, code, "%s", reason);
			c->waiting = NULL;
		}
}

static Roamnet__Spawn *spawn_from_run(struct job *j, Roamnet__Spawn *s)
{
	const Roamnet__Run *r = j->run;

	roamnet__spawn__init(s);
	s->id = j->id;
	s->home = roamd->cfg.name;
	s->user = j->user;
	s->argv = r->argv;
	s->n_argv = r->n_argv;
	s->env = r->env;
	s->n_env = r->n_env;
	s->cwd = r->cwd;
	s->umask = r->umask;
	s->rlimits = r->rlimits;
	s->n_rlimits = r->n_rlimits;
	s->need = j->need;
	s->has_pinned = s->pinned = j->pinned;
	return s;
}

static void explain(struct job *j, const struct policy_result *res, const char *host)
{
	char spec[POLICY_SPEC_MAX];

	if (policy_format(&j->policy, spec, sizeof(spec)) < 0)
		snprintf(spec, sizeof(spec), "?");
	snprintf(j->explain, sizeof(j->explain),
		 "%s: decided %s by %s: %s (load %.2f, %u hosts considered, %u probes)",
		 j->id, host, spec, policy_reason_str(res->reason), res->load, res->considered,
		 res->probes);
}

/* Runs the decided job here or sends it to its host. */
static void dispatch(struct job *j, struct member *m)
{
	Roamnet__Spawn s;
	char reason[512];
	int code;

	snprintf(j->host, sizeof(j->host), "%s", m->name);
	spawn_from_run(j, &s);
	if (m->self) {
		code = exec_start(j, &s, reason, sizeof(reason));
		if (code)
			return job_home_failed(j, code, reason);
		job_home_started(j, m->name, j->pid);
		flush_early_input(j);
	} else {
		if (!m->link || m->link->state != CS_OPEN || m->state != MEMBER_UP) {
			member_unusable(m, reason, sizeof(reason));
			return job_home_failed(j, 255, reason);
		}
		j->exec_member = m;
		j->state = JOB_STARTING;
		/* Until its next heartbeat, count the job in that host's load. */
		m->load.load += 1.0 / (m->load.ncpus ? m->load.ncpus : 1);
		m->load.nprocs++;
		conn_send(m->link, MSG_SPAWN, &s.base);
		flush_early_input(j);
	}
}

static uint32_t member_index(const struct member *m)
{
	return (uint32_t)(m - roamd->members.m);
}

/* Marks hosts the daemon cannot reach right now as down for the policy. */
static void view(struct policy_host *hosts)
{
	struct members *t = &roamd->members;

	members_view(t, hosts);
	hosts[0].load = roamd->self_load.load;
	hosts[0].nprocs = roamd->self_load.nprocs;
	for (unsigned i = 1; i < t->n; i++)
		if (!t->m[i].link || t->m[i].link->state != CS_OPEN)
			hosts[i].flags &= ~POLICY_HOST_UP;
}

/* Asks the policy again with what the session knows; acts on the verdict. */
static void place_step(struct job *j)
{
	static struct policy_host hosts[CL_MAX_MEMBERS];
	struct policy_view v = {.hosts = hosts, .n = roamd->members.n};
	struct policy_result res;
	char reason[512];
	int verdict;

	for (;;) {
		view(hosts);
		j->req.origin_load = roamd->self_load.load;
		verdict = policy_decide(&j->policy, &v, &j->req, &roamd->rng, NULL, &j->session, &res);
		if (verdict == POLICY_DECIDED) {
			explain(j, &res, roamd->members.m[res.host].name);
			return dispatch(j, &roamd->members.m[res.host]);
		}
		if (verdict == POLICY_REFUSED) {
			if (res.unmet_host >= 0 && (unsigned)res.unmet_host < roamd->members.n)
				snprintf(reason, sizeof(reason), "no host satisfies the request: %s (host %s)",
					 policy_unmet_str(res.unmet), roamd->members.m[res.unmet_host].name);
			else
				snprintf(reason, sizeof(reason), "no host satisfies the request: %s",
					 policy_unmet_str(res.unmet));
			return job_home_failed(j, 255, reason);
		}
		if (verdict != POLICY_PROBE) {
			snprintf(reason, sizeof(reason), "policy error: %s", policy_strerror(verdict));
			return job_home_failed(j, 255, reason);
		}
		j->probe_qid = ++roamd->next_qid;
		j->probes_out = 0;
		for (uint32_t i = 0; i < res.nprobe; i++) {
			struct member *m = &roamd->members.m[res.probe[i]];
			Roamnet__ProbeReq q = ROAMNET__PROBE_REQ__INIT;

			if (m->self) {
				policy_answer(&j->session, res.probe[i], exec_load());
			} else if (m->link && m->link->state == CS_OPEN) {
				q.qid = j->probe_qid;
				if (conn_send(m->link, MSG_PROBE_REQ, &q.base) == 0) {
					j->probes_out++;
					continue;
				}
				policy_answer_lost(&j->session, res.probe[i]);
			} else {
				policy_answer_lost(&j->session, res.probe[i]);
			}
		}
		if (j->probes_out) {
			j->probe_deadline_ms = mono_ms() + PROBE_MS;
			return;
		}
	}
}

void job_probe_answer(uint64_t qid, struct member *m, const Roamnet__HostLoad *l)
{
	for (struct job *j = roamd->jobs; j; j = j->next) {
		if (j->state != JOB_PLACING || j->probe_qid != qid || !j->probes_out)
			continue;
		if (policy_answer(&j->session, member_index(m), l->load) == 0)
			j->probes_out--;
		if (!j->probes_out)
			place_step(j);
		return;
	}
}

/* Places j on the host m, where its --near job runs (or fails as the policy
 * says, when m does not meet the other constraints). */
static void near_found(struct job *j, struct member *m)
{
	j->req.near = (int32_t)member_index(m);
	policy_session_start(&j->session);
	place_step(j);
}

/* --near ID: where ID runs is known here when ID is homed here or runs
 * here; otherwise its home, named by the id, is asked (LocateReq) and j
 * stays PLACING until the answer (job_locate_answer) or the deadline. */
static void place_near(struct job *j, struct conn *c, const char *id)
{
	Roamnet__LocateReq q = ROAMNET__LOCATE_REQ__INIT;
	struct job *n = job_find(id);
	char host[CL_NAME_MAX], r[300];
	struct member *m;
	uint64_t seq;

	if (n && !job_visible(n, c->uid, c->user)) {
		snprintf(r, sizeof(r), "--near %s: job %s belongs to another user", id, id);
		return job_home_failed(j, 255, r);
	}
	if (n) {
		m = n->host[0] && !final(n) ? members_find(&roamd->members, n->host) : NULL;
		if (!m) {
			snprintf(r, sizeof(r), "--near %s: no such running job", id);
			return job_home_failed(j, 255, r);
		}
		return near_found(j, m);
	}
	if (msg_parse_job_id(id, host, sizeof(host), &seq) < 0 ||
	    !(m = members_find(&roamd->members, host)) || m->self) {
		snprintf(r, sizeof(r), "--near %s: no such running job", id);
		return job_home_failed(j, 255, r);
	}
	if (!m->link || m->link->state != CS_OPEN || m->state != MEMBER_UP) {
		snprintf(r, sizeof(r), "--near %s: its home %s is not reachable", id, host);
		return job_home_failed(j, 255, r);
	}
	q.qid = j->near_qid = ++roamd->next_qid;
	q.id = (char *)id;
	q.user = c->uid == 0 ? "root" : c->user;
	if (conn_send(m->link, MSG_LOCATE_REQ, &q.base) < 0) {
		snprintf(r, sizeof(r), "--near %s: its home %s is not reachable", id, host);
		return job_home_failed(j, 255, r);
	}
	j->near_deadline_ms = mono_ms() + PROBE_MS;
}

void job_locate(struct conn *c, const Roamnet__LocateReq *q)
{
	Roamnet__LocateRep r = ROAMNET__LOCATE_REP__INIT;
	struct job *n = job_find(q->id);
	char reason[300];

	r.qid = q->qid;
	if (!n || !n->home_side || (n->state != JOB_RUNNING && n->state != JOB_STARTING)) {
		snprintf(reason, sizeof(reason), "no such running job");
		r.reason = reason;
	} else if (strcmp(q->user, n->user) && strcmp(q->user, "root")) {
		snprintf(reason, sizeof(reason), "job %s belongs to another user", n->id);
		r.reason = reason;
	} else {
		r.host = n->host;
	}
	conn_send(c, MSG_LOCATE_REP, &r.base);
}

void job_locate_answer(const Roamnet__LocateRep *a)
{
	char r[300];
	struct member *m;

	for (struct job *j = roamd->jobs; j; j = j->next) {
		if (j->state != JOB_PLACING || !j->near_qid || j->near_qid != a->qid)
			continue;
		j->near_qid = 0;
		if (!a->host || !a->host[0]) {
			snprintf(r, sizeof(r), "--near %s: %s", j->run->near, a->reason ? a->reason : "refused");
			return job_home_failed(j, 255, r);
		}
		if (!(m = members_find(&roamd->members, a->host))) {
			snprintf(r, sizeof(r), "--near %s: it runs on %s, a host unknown here", j->run->near,
				 a->host);
			return job_home_failed(j, 255, r);
		}
		return near_found(j, m);
	}
}

void job_place(struct conn *c, Roamnet__Run *run)
{
	struct policy_parse_error pe;
	const char *spec = run->policy && run->policy[0] ? run->policy : roamd->cfg.policy;
	const char *bad = NULL;
	char id[MSG_MAX_ID];
	struct job *j;
	uint64_t seq;
	int err;

	if (c->job && !final(c->job)) {
		control_result(c, 255, "this connection already follows job %s", c->job->id);
		msg_free(&run->base);
		return;
	}
	seq = state_next_seq();
	snprintf(id, sizeof(id), "%s.%llu", roamd->cfg.name, (unsigned long long)seq);
	j = seq ? job_new(id) : NULL;
	if (!seq) {
		control_result(c, 255, "cannot reserve a job id (see roamd's log)");
		msg_free(&run->base);
		return;
	}
	if (!j) {
		control_result(c, 255, "out of memory");
		msg_free(&run->base);
		return;
	}
	j->run = run;
	j->home_side = true;
	j->state = JOB_PLACING;
	j->uid = c->uid;
	j->client = c;
	j->started = (uint64_t)time(NULL);
	j->cmd = job_cmdline(run->argv, run->n_argv);
	c->job = j;
	c->detach = run->detach;
	snprintf(j->home, sizeof(j->home), "%s", roamd->cfg.name);
	snprintf(j->user, sizeof(j->user), "%s", c->user);

	if (c->uid == 0 && !roamd->cfg.allow_root)
		return job_home_failed(j, 255, "root jobs are refused (roamd --allow-root)");
	if ((err = policy_parse(&j->policy, spec, &pe))) {
		char r[300];
		snprintf(r, sizeof(r), "policy '%s': %s", spec, policy_strerror(err));
		return job_home_failed(j, 255, r);
	}
	policy_request_init(&j->req, 0, roamd->self_load.load);
	if (run->need && run->need[0] && (err = need_parse(run->need, &roamd->members, &j->req, &bad))) {
		char r[300];
		snprintf(r, sizeof(r), "--need '%s': %s at '%s'", run->need, need_strerror(err), bad);
		return job_home_failed(j, 255, r);
	}
	if (run->need && run->need[0] && !(j->need = strdup(run->need)))
		return job_home_failed(j, 255, "out of memory");
	j->pinned = run->on && run->on[0];
	if (run->on && run->on[0]) {
		struct member *m = members_find(&roamd->members, run->on);
		if (!m) {
			char r[200];
			snprintf(r, sizeof(r), "--on %s: unknown host", run->on);
			return job_home_failed(j, 255, r);
		}
		if (m->state == MEMBER_INCOMPAT) {
			char r[300];
			member_unusable(m, r, sizeof(r));
			return job_home_failed(j, 255, r);
		}
		j->req.on = (int32_t)member_index(m);
	}
	if (run->near && run->near[0])
		return place_near(j, c, run->near);
	policy_session_start(&j->session);
	place_step(j);
}

void job_home_started(struct job *j, const char *host, int pid)
{
	Roamnet__Started s = ROAMNET__STARTED__INIT;

	j->state = JOB_RUNNING;
	snprintf(j->host, sizeof(j->host), "%s", host);
	if (!j->exec_side)
		j->pid = pid;
	/* The request is not needed any more: free argv and environment. */
	if (j->run)
		msg_free(&j->run->base);
	j->run = NULL;
	if (!j->client)
		return;
	s.id = j->id;
	s.host = j->host;
	s.has_pid = 1;
	s.pid = pid;
	s.explain = j->explain;
	conn_send(j->client, MSG_STARTED, &s.base);
	if (j->client->detach) {
		/* From now on output is kept for roam attach, not sent to a
		 * client that is about to go. */
		conn_pause_rx(j->client, false);
		j->client->job = NULL;
		j->client = NULL;
	}
}

static void flow(struct job *j, bool pause)
{
	Roamnet__Flow f = ROAMNET__FLOW__INIT;

	if (!j->exec_member || !j->exec_member->link)
		return;
	f.id = j->id;
	f.pause = pause;
	if (conn_send(j->exec_member->link, MSG_FLOW, &f.base) == 0) {
		j->paused = pause;
		/* Now, not once the loop is idle: a job streaming output keeps
		 * the loop busy, and it must stop within a turn or two, before
		 * what is in flight outgrows the limits. */
		conn_flush_due();
	}
}

/* Holds back or releases the job's output, wherever it runs. */
static void hold(struct job *j, bool on)
{
	if (j->exec_side)
		exec_hold(j, on);
	else if (j->paused != on)
		flow(j, on);
}

void job_client_drained(struct conn *c)
{
	for (struct job *j = roamd->jobs; j; j = j->next)
		if (j->home_side && j->paused && j->client == c && !final(j))
			flow(j, false);
}

void job_home_output(struct job *j, unsigned fd, const uint8_t *data, size_t n)
{
	Roamnet__Output o = ROAMNET__OUTPUT__INIT;
	uint8_t *dst;
	size_t sz;
	long w;

	o.id = j->id;
	o.fd = fd;
	o.data.data = (uint8_t *)data;
	o.data.len = n;
	if (j->client) {
		conn_send(j->client, MSG_OUTPUT, &o.base);
		/* A slow client: hold the job back at its exec host rather than
		 * queue its output here without bound. */
		if (!j->exec_side && !j->paused && conn_pending(j->client) > FLOW_HIGH) {
			flow(j, true);
			j->client->held_back = true;   /* job_client_drained resumes it */
		}
		return;
	}
	/* Nobody attached: keep the frames for roam attach. Past the limit the
	 * job is held back (as a pipe nobody reads would hold it) rather than
	 * lose output; what is already on its way is still kept. */
	sz = msg_frame_size(&o.base);
	dst = buf_reserve(&j->backlog, sz);
	if (dst && (w = msg_encode(MSG_OUTPUT, &o.base, dst, sz)) > 0)
		buf_commit(&j->backlog, (size_t)w);
	if (buf_used(&j->backlog) > BACKLOG_MAX)
		hold(j, true);
}

static void send_exit(struct conn *c, struct job *j)
{
	Roamnet__Exited e = ROAMNET__EXITED__INIT;

	e.id = j->id;
	e.status = j->status;
	conn_send(c, MSG_EXITED, &e.base);
}

void job_home_exited(struct job *j, int status)
{
	if (final(j))
		return;
	j->state = JOB_EXITED;
	j->status = status;
	j->reap_ms = mono_ms() + (j->client ? KEEP_SEEN_MS : KEEP_UNSEEN_MS);
	job_input_pump(j);   /* what waits is dropped; the client is read again */
	if (j->client)
		send_exit(j->client, j);
	for (struct conn *c = roamd->conns; c; c = c->next)
		if (c->waiting == j) {
			Roamnet__Result r = ROAMNET__RESULT__INIT;
			r.code = 0;
			r.has_status = 1;
			r.status = status;
			conn_send(c, MSG_RESULT, &r.base);
			c->waiting = NULL;
		}
}

void job_member_lost(struct member *m)
{
	char reason[300];

	for (struct job *j = roamd->jobs; j; j = j->next) {
		if (!j->home_side)
			continue;
		if (j->arrived && j->arrived != m && j->exec_member == m) {
			/* Its source died after the commit: where it landed is where
			 * it runs (what the source still held of its output died
			 * with it). */
			job_home_moved(j, j->arrived->name, 0);
			continue;
		}
		if (j->arrived == m)
			j->arrived = NULL;
		if (j->migrating && j->exec_member == m && j->state == JOB_RUNNING && !j->lost_ms) {
			/* Lost mid-migration: its destination may have it (and say so,
			 * ARRIVED) once it decides, within its doubt timeout. */
			j->lost_ms = mono_ms() + (uint64_t)(roamd->cfg.doubt_timeout_s + 2) * 1000;
			log_warn("job %s: host %s lost while it moved; waiting for its destination", j->id, m->name);
			continue;
		}
		if ((j->state == JOB_RUNNING || j->state == JOB_STARTING) && j->exec_member == m) {
			snprintf(reason, sizeof(reason), "host %s lost while running %s", m->name, j->id);
			job_home_failed(j, 255, reason);
		}
	}
}

void job_signal(struct job *j, int sig)
{
	if (final(j) || sig == 0)
		return;
	if (j->exec_side) {
		exec_signal(j, sig);
	} else if (j->migrating) {
		j->held_sigs |= 1ull << (sig - 1);   /* delivered where it lands */
	} else if (j->exec_member && j->exec_member->link) {
		Roamnet__Signal s = ROAMNET__SIGNAL__INIT;
		s.id = j->id;
		s.sig = sig;
		s.user = j->user;
		conn_send(j->exec_member->link, MSG_SIGNAL, &s.base);
	} else if (j->state == JOB_PLACING) {
		job_home_failed(j, 128 + sig, "killed while being placed");
	}
}

static void send_input(struct job *j, const uint8_t *data, size_t n, bool eof)
{
	Roamnet__Input in = ROAMNET__INPUT__INIT;

	in.id = j->id;
	in.has_data = n > 0;
	in.data.data = (uint8_t *)data;
	in.data.len = n;
	in.has_eof = in.eof = eof;
	conn_send(j->exec_member->link, MSG_INPUT, &in.base);
}

/* Input goes out of the home's queue (early_in) while the exec side holds
 * less than IN_WINDOW of it untaken; the client is read while the queue
 * holds less than IN_WINDOW (what one read of its socket brings more at
 * most). Input is never dropped here while the job may still take it. */
void job_input(struct job *j, const uint8_t *data, size_t n, bool eof)
{
	if (final(j))
		return;
	if (n && buf_append(&j->early_in, data, n) < 0) {
		log_warn("job %s: out of memory for its input", j->id);
		return;
	}
	j->early_eof |= eof;
	job_input_pump(j);
}

void job_input_pump(struct job *j)
{
	if (j->in_pumping || !j->home_side)
		return;
	j->in_pumping = true;
	if (final(j)) {
		buf_free(&j->early_in);
		j->early_eof = false;
	}
	while ((buf_used(&j->early_in) || j->early_eof) && j->in_out < IN_WINDOW &&
	       j->state != JOB_PLACING && !j->migrating && !final(j)) {
		size_t n = buf_used(&j->early_in) < IN_CHUNK ? buf_used(&j->early_in) : IN_CHUNK;
		bool eof = j->early_eof && n == buf_used(&j->early_in);
		if (j->exec_side) {
			j->in_out += n;
			exec_input(j, buf_data(&j->early_in), n, eof);
		} else if (j->exec_member && j->exec_member->link && j->exec_member->link->state == CS_OPEN) {
			j->in_out += n;
			send_input(j, buf_data(&j->early_in), n, eof);
		} else {
			break;   /* no way there now: kept until there is */
		}
		buf_consume(&j->early_in, n);
		if (eof)
			j->early_eof = false;
	}
	if (!buf_used(&j->early_in))
		buf_free(&j->early_in);
	if (j->client && j->client->job == j)
		conn_pause_rx(j->client, buf_used(&j->early_in) >= IN_WINDOW);
	j->in_pumping = false;
}

void job_input_taken(struct job *j, uint64_t n)
{
	j->in_out = n < j->in_out ? j->in_out - n : 0;
	job_input_pump(j);
}

/* Hands the job what stdin came while it was being placed or moved. */
static void flush_early_input(struct job *j)
{
	job_input_pump(j);
}

/* The exec host is about to move the job: hold input and signals here. */
void job_home_hold(struct job *j)
{
	j->migrating = true;
}

/* Where the job went (or that it stayed): deliver what was held there, and
 * let its output flow from the new host. */
static void home_unhold(struct job *j)
{
	uint64_t sigs = j->held_sigs;

	j->migrating = false;
	j->held_sigs = 0;
	if (j->exec_side)
		exec_input(j, NULL, 0, false);   /* what it held when it landed here */
	flush_early_input(j);
	for (int s = 1; s <= 64; s++)
		if (sigs & (1ull << (s - 1)))
			job_signal(j, s);
}

void job_home_moved(struct job *j, const char *host, int pid)
{
	struct member *m = members_find(&roamd->members, host);

	if (!strcmp(host, roamd->cfg.name))
		m = &roamd->members.m[0];
	snprintf(j->host, sizeof(j->host), "%s", host);
	j->pid = pid;
	if (!j->exec_side)
		j->migrations++;   /* here: counted when it arrived */
	j->exec_member = m && !m->self ? m : NULL;
	j->arrived = NULL;
	j->lost_ms = 0;
	j->paused = false;
	log_info("job %s now runs on %s (pid %d, migration %u)", j->id, host, pid, j->migrations);
	home_unhold(j);
	if (j->exec_side)
		exec_hold(j, j->client == NULL && buf_used(&j->backlog) > BACKLOG_MAX);
	else if (j->exec_member)
		flow(j, false);
}

void job_home_stayed(struct job *j)
{
	home_unhold(j);
}

void job_attach(struct conn *c, struct job *j)
{
	if (j->client && j->client != c) {
		control_result(c, 255, "job %s already has a client attached", j->id);
		return;
	}
	j->client = c;
	c->job = j;
	c->detach = false;
	{
		Roamnet__Started s = ROAMNET__STARTED__INIT;
		s.id = j->id;
		s.host = j->host[0] ? j->host : roamd->cfg.name;
		conn_send(c, MSG_STARTED, &s.base);
	}
	if (buf_used(&j->backlog)) {
		conn_write(c, buf_data(&j->backlog), buf_used(&j->backlog));
		buf_free(&j->backlog);
	}
	if (!final(j))
		hold(j, false);
	job_input_pump(j);   /* reads the new client, or not, as its input queue says */
	if (j->state == JOB_EXITED) {
		send_exit(c, j);
		j->reap_ms = mono_ms() + KEEP_SEEN_MS;
	} else if (final(j)) {
		Roamnet__Failed f = ROAMNET__FAILED__INIT;
		f.id = j->id;
		f.code = j->fail_code;
		f.reason = j->fail_reason;
		conn_send(c, MSG_FAILED, &f.base);
	}
}

void job_tick(uint64_t now)
{
	struct job *j = roamd->jobs, *next;

	for (; j; j = next) {
		next = j->next;
		if (j->state == JOB_PLACING && j->near_qid && now >= j->near_deadline_ms) {
			j->near_qid = 0;
			job_home_failed(j, 255, "--near: no answer from the near job's home");
		} else if (j->state == JOB_PLACING && j->probes_out && now >= j->probe_deadline_ms) {
			/* Unanswered probes count as lost hosts; the policy goes on. */
			for (uint32_t i = 0; i < roamd->members.n; i++)
				policy_answer_lost(&j->session, i);
			j->probes_out = 0;
			place_step(j);
		} else if (j->lost_ms && now >= j->lost_ms && !final(j)) {
			char reason[300];
			snprintf(reason, sizeof(reason), "host %s lost while moving %s", j->host, j->id);
			j->migrating = false;
			job_home_failed(j, 255, reason);
		} else if (final(j) && !j->exec_side && now >= j->reap_ms && !j->client) {
			orphan_forget(j);
			job_free(j);
		}
	}
}

void job_info(const struct job *j, Roamnet__JobInfo *out, char *statebuf)
{
	static const char *names[] = {"?", "placing", "starting", "running", "exited", "lost", "failed"};

	roamnet__job_info__init(out);
	out->id = (char *)j->id;
	out->host = (char *)(j->host[0] ? j->host : "-");
	if (!msg_valid_name(out->host))
		out->host = (char *)roamd->cfg.name;
	out->home = (char *)(j->home[0] ? j->home : roamd->cfg.name);
	out->user = (char *)j->user;
	snprintf(statebuf, 16, "%s", names[j->state]);
	out->state = statebuf;
	out->has_started = 1;
	out->started = j->started;
	out->command = j->cmd ? j->cmd : (char *)"";
	out->has_pid = 1;
	out->pid = j->pid;
	out->has_migrations = j->migrations > 0;
	out->migrations = j->migrations;
	if (j->state == JOB_EXITED) {
		out->has_status = 1;
		out->status = j->status;
	}
	if (j->exec_side) {
		uint64_t cpu, rss;
		exec_sample((struct job *)j, &cpu, &rss);
		out->has_cpu_ns = out->has_rss = 1;
		out->cpu_ns = cpu;
		out->rss = rss;
	}
}

void job_list_local(struct job_list *l)
{
	size_t cap = 0;

	memset(l, 0, sizeof(*l));
	for (struct job *j = roamd->jobs; j; j = j->next)
		cap++;
	l->infos = calloc(cap + 1, sizeof(*l->infos));
	l->ptrs = calloc(cap + 1, sizeof(*l->ptrs));
	l->states = calloc(cap + 1, sizeof(*l->states));
	if (!l->infos || !l->ptrs || !l->states)
		return;
	for (struct job *j = roamd->jobs; j; j = j->next) {
		if (!j->exec_side && !j->orphan &&
		    (!j->home_side || j->state == JOB_RUNNING || j->state == JOB_STARTING))
			continue;
		job_info(j, &l->infos[l->n], l->states[l->n]);
		l->ptrs[l->n] = &l->infos[l->n];
		l->n++;
	}
}

void job_list_free(struct job_list *l)
{
	free(l->infos);
	free(l->ptrs);
	free(l->states);
	memset(l, 0, sizeof(*l));
}
