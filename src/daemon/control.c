/*
 * The control socket: where the roam CLI talks to its roamd. The caller is
 * whoever the kernel says (SO_PEERCRED), never what a message claims; a job
 * runs as that user, and a user sees and signals only their own jobs (root
 * all of them).
 *
 * Conversations (client -> daemon, then daemon -> client):
 *   Run      -> Started | Failed, then Output*, Exited | Failed; the client
 *               may send Input and Signal meanwhile (they go to its job)
 *   Attach   -> the same, from the output kept so far
 *   Wait     -> Result (status)
 *   Ps       -> PsList (the whole cluster, gathered from every up host)
 *   Hosts    -> HostList
 *   Kill     -> Result (for a job homed elsewhere, once its home has checked
 *               the caller and signalled it: KillReq/KillRep over the link)
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define PS_MS 1500   /* a host that has not answered ps (or kill) by then is left out */

static void query_finish(struct query *q);

int control_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[sizeof(sa.sun_path)], *slash;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0755);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a dead roamd refuses connections: replace it; one a
	 * live roamd serves is kept, and we fail. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	/* Anyone local may ask; who asks is known from SO_PEERCRED. */
	chmod(path, 0666);
	return fd;
}

void control_accept(struct ev *ev, uint32_t events)
{
	for (;;) {
		struct ucred cr;
		socklen_t len = sizeof(cr);
		char desc[64];
		struct user_info u;
		struct conn *c;
		int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
			close(fd);
			continue;
		}
		snprintf(desc, sizeof(desc), "uid %u pid %d", (unsigned)cr.uid, (int)cr.pid);
		c = conn_new(fd, CONN_CONTROL, desc);
		if (!c) {
			close(fd);
			continue;
		}
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->pid = cr.pid;
		if (users_by_uid(cr.uid, &u) == 0)
			snprintf(c->user, sizeof(c->user), "%s", u.name);
		else
			snprintf(c->user, sizeof(c->user), "#%u", (unsigned)cr.uid);
		/* roam writes its request right after connect, usually while
		 * we were being woken for the connection: read it now rather
		 * than sleep again and be woken once more. */
		conn_read_now(c);
	}
}

void control_result(struct conn *c, int code, const char *fmt, ...)
{
	Roamnet__Result r = ROAMNET__RESULT__INIT;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	r.code = code;
	r.reason = reason;
	conn_send(c, MSG_RESULT, &r.base);
}

/* The job id names a job homed here that the caller may see. */
/* A job neither known here nor homed on a host that is up. */
static bool homeless(const char *id)
{
	char host[CL_NAME_MAX];
	uint64_t seq;
	struct job *j = job_find(id);
	struct member *m;

	if ((j && j->home_side) || msg_parse_job_id(id, host, sizeof(host), &seq) < 0 ||
	    !strcmp(host, roamd->cfg.name))
		return false;
	m = members_find(&roamd->members, host);
	return !m || m->state != MEMBER_UP || !m->link || m->link->state != CS_OPEN;
}

static struct job *my_job(struct conn *c, const char *id)
{
	struct job *j = job_find(id);

	if (!j || !j->home_side) {
		char host[CL_NAME_MAX];
		uint64_t seq;
		if (msg_parse_job_id(id, host, sizeof(host), &seq) == 0 && strcmp(host, roamd->cfg.name))
			control_result(c, 255, "job %s is homed on %s: ask there", id, host);
		else
			control_result(c, 255, "no such job %s", id);
		return NULL;
	}
	if (!job_visible(j, c->uid, c->user)) {
		control_result(c, 255, "job %s belongs to another user", id);
		return NULL;
	}
	return j;
}

/* The one check of a roam kill, wherever it was typed: j (the job homed here
 * that id names, or NULL) exists, the caller may signal it (allowed) and it
 * still runs. Signals it and returns 0, or returns 255; reason says which. */
static int kill_checked(struct job *j, const char *id, int sig, bool allowed, char *reason, size_t cap)
{
	if (!j) {
		snprintf(reason, cap, "no such job %s", id);
		return 255;
	}
	if (!allowed) {
		snprintf(reason, cap, "job %s belongs to another user", id);
		return 255;
	}
	if (j->state != JOB_RUNNING && j->state != JOB_STARTING && j->state != JOB_PLACING) {
		snprintf(reason, cap, "job %s is not running", id);
		return 255;
	}
	job_signal(j, sig);
	snprintf(reason, cap, "signal %d sent to %s on %s", sig, id, j->host[0] ? j->host : roamd->cfg.name);
	return 0;
}

static void kill_job(struct conn *c, const Roamnet__Kill *k)
{
	Roamnet__KillReq r = ROAMNET__KILL_REQ__INIT;
	char host[CL_NAME_MAX], reason[512];
	uint64_t seq;
	struct member *m;
	struct query *q;
	struct job *j = job_find(k->id);
	int code;

	if (msg_parse_job_id(k->id, host, sizeof(host), &seq) < 0)
		return control_result(c, 255, "no such job %s", k->id);
	if (!strcmp(host, roamd->cfg.name)) {
		if (j && !j->home_side)
			j = NULL;
		code = kill_checked(j, k->id, k->sig, j && job_visible(j, c->uid, c->user), reason,
				    sizeof(reason));
		return control_result(c, code, "%s", reason);
	}
	/* Homed elsewhere: only the home knows who owns it and where it runs,
	 * so the answer waits for the home's verdict (kill_answer). */
	if (!(m = members_find(&roamd->members, host)))
		return control_result(c, 255, "no such job %s: no host %s in the cluster", k->id, host);
	if (m->state != MEMBER_UP || !m->link || m->link->state != CS_OPEN)
		return control_result(c, 255, "home host %s of %s is not reachable", host, k->id);
	if (!(q = calloc(1, sizeof(*q))))
		return control_result(c, 255, "out of memory");
	q->qid = ++roamd->next_qid;
	q->client = c;
	q->waiting = 1;
	q->deadline_ms = mono_ms() + PS_MS;
	snprintf(q->kill_id, sizeof(q->kill_id), "%s", k->id);
	snprintf(q->kill_home, sizeof(q->kill_home), "%s", host);
	q->next = roamd->queries;
	roamd->queries = q;
	c->query = q->qid;
	r.qid = q->qid;
	r.id = k->id;
	r.sig = k->sig;
	r.user = c->uid == 0 ? "root" : c->user;
	if (conn_send(m->link, MSG_KILL_REQ, &r.base) < 0) {
		q->client = NULL;
		query_finish(q);
		control_result(c, 255, "home host %s of %s is not reachable", host, k->id);
	}
}

void kill_request(struct conn *c, const Roamnet__KillReq *k)
{
	Roamnet__KillRep r = ROAMNET__KILL_REP__INIT;
	char reason[512];
	struct job *j = job_find(k->id);
	bool allowed;

	if (j && !j->home_side)
		j = NULL;
	allowed = j && (!strcmp(k->user, j->user) || !strcmp(k->user, "root"));
	r.qid = k->qid;
	r.code = kill_checked(j, k->id, k->sig, allowed, reason, sizeof(reason));
	r.reason = reason;
	log_info("roam kill -%d %s by %s on %s: %s", k->sig, k->id, k->user, c->peer_name, reason);
	conn_send(c, MSG_KILL_REP, &r.base);
}

static void hosts(struct conn *c)
{
	struct members *t = &roamd->members;
	static Roamnet__HostInfo info[CL_MAX_MEMBERS];
	static Roamnet__HostInfo *ptr[CL_MAX_MEMBERS];
	static Roamnet__HostLoad loads[CL_MAX_MEMBERS];
	static char *tagv[CL_MAX_MEMBERS][CL_MAX_TAGS];
	static char *featv[CL_MAX_MEMBERS][64];
	Roamnet__HostList r = ROAMNET__HOST_LIST__INIT;
	uint64_t now = mono_ms();
	size_t n = 0;

	for (unsigned i = 0; i < t->n; i++) {
		struct member *m = &t->m[i];
		if (!m->name[0])
			continue;   /* a seed not heard from yet */
		roamnet__host_info__init(&info[n]);
		info[n].name = m->name;
		info[n].addr = m->addr;
		info[n].state = m->self ? "self" : m->state == MEMBER_UP ? "up" :
				m->state == MEMBER_INCOMPAT ? "incompatible" : "down";
		peer_fill_load(&loads[n], m->self ? &roamd->self_load : &m->load, tagv[n], featv[n]);
		info[n].load = &loads[n];
		info[n].has_age_ms = 1;
		info[n].age_ms = m->self ? 0 : (uint32_t)(now - m->last_ms);
		ptr[n] = &info[n];
		n++;
	}
	r.hosts = ptr;
	r.n_hosts = n;
	conn_send(c, MSG_HOST_LIST, &r.base);
}

/* ---- cluster-wide ps ----------------------------------------------------- */

static void query_add(struct query *q, Roamnet__JobInfo *const *jobs, size_t n)
{
	Roamnet__JobInfo **grown;

	if (n == 0)
		return;   /* realloc to 0 bytes would free the list */
	grown = realloc(q->jobs, (q->njobs + n) * sizeof(*grown));
	if (!grown)
		return;
	q->jobs = grown;
	for (size_t i = 0; i < n; i++) {
		/* An owned deep copy: pack and unpack, the one copy protobuf-c offers. */
		size_t sz = roamnet__job_info__get_packed_size(jobs[i]);
		uint8_t *b = malloc(sz ? sz : 1);
		if (!b)
			continue;
		roamnet__job_info__pack(jobs[i], b);
		Roamnet__JobInfo *cp = roamnet__job_info__unpack(NULL, sz, b);
		free(b);
		if (cp)
			q->jobs[q->njobs++] = cp;
	}
}

/* Answers q's client (ps: what was gathered; kill: no verdict came) and frees q. */
static void query_finish(struct query *q)
{
	struct query **pp;
	Roamnet__PsList r = ROAMNET__PS_LIST__INIT;
	Roamnet__JobInfo **vis = calloc(q->njobs + 1, sizeof(*vis));
	size_t n = 0;

	for (pp = &roamd->queries; *pp != q; pp = &(*pp)->next)
		;
	*pp = q->next;
	if (q->client && q->kill_id[0]) {
		control_result(q->client, 255, "no answer about %s from its home %s", q->kill_id,
			       q->kill_home);
		q->client->query = 0;
	} else if (q->client && vis) {
		for (size_t i = 0; i < q->njobs; i++)
			if (q->client->uid == 0 || !strcmp(q->jobs[i]->user, q->client->user))
				vis[n++] = q->jobs[i];
		r.jobs = vis;
		r.n_jobs = n;
		conn_send(q->client, MSG_PS_LIST, &r.base);
		q->client->query = 0;
	}
	for (size_t i = 0; i < q->njobs; i++)
		roamnet__job_info__free_unpacked(q->jobs[i], NULL);
	free(vis);
	free(q->jobs);
	free(q);
}

static void ps(struct conn *c)
{
	struct query *q = calloc(1, sizeof(*q));
	struct job_list l;

	if (!q)
		return control_result(c, 255, "out of memory");
	q->qid = ++roamd->next_qid;
	q->client = c;
	q->deadline_ms = mono_ms() + PS_MS;
	q->next = roamd->queries;
	roamd->queries = q;
	c->query = q->qid;
	/* This host's own part, as a peer would report it. */
	job_list_local(&l);
	query_add(q, l.ptrs, l.n);
	job_list_free(&l);
	for (unsigned i = 1; i < roamd->members.n; i++) {
		struct member *m = &roamd->members.m[i];
		Roamnet__PsReq r = ROAMNET__PS_REQ__INIT;
		if (m->state != MEMBER_UP || !m->link || m->link->state != CS_OPEN)
			continue;
		r.qid = q->qid;
		if (conn_send(m->link, MSG_PS_REQ, &r.base) == 0)
			q->waiting++;
	}
	if (!q->waiting)
		query_finish(q);
}

void query_answer(uint64_t qid, Roamnet__JobInfo **jobs, size_t n)
{
	for (struct query *q = roamd->queries; q; q = q->next)
		if (q->qid == qid && !q->kill_id[0]) {
			query_add(q, jobs, n);
			if (--q->waiting == 0)
				query_finish(q);
			return;
		}
}

void kill_answer(uint64_t qid, int code, const char *reason)
{
	for (struct query *q = roamd->queries; q; q = q->next)
		if (q->qid == qid && q->kill_id[0]) {
			if (q->client) {
				control_result(q->client, code, "%s", reason ? reason : "");
				q->client->query = 0;
				q->client = NULL;
			}
			query_finish(q);
			return;
		}
}

void query_tick(uint64_t now)
{
	struct query *q = roamd->queries, *next;

	for (; q; q = next) {
		next = q->next;
		if (now >= q->deadline_ms)
			query_finish(q);
	}
}

/* ---- dispatch ------------------------------------------------------------ */

bool control_frame(struct conn *c, unsigned type, ProtobufCMessage *m)
{
	struct job *j;

	log_debug("control %s: %s", c->peer_desc, msg_type_name(type));
	switch (type) {
	case MSG_RUN:
		job_place(c, (Roamnet__Run *)m);
		return true;   /* the job owns the request now */
	case MSG_INPUT: {
		Roamnet__Input *in = (Roamnet__Input *)m;
		j = c->job;
		if (j && j->client == c)
			job_input(j, in->has_data ? in->data.data : NULL, in->has_data ? in->data.len : 0,
				  in->has_eof && in->eof);
		break;
	}
	case MSG_SIGNAL: {
		Roamnet__Signal *s = (Roamnet__Signal *)m;
		if (c->job && c->job->client == c)
			job_signal(c->job, s->sig);
		break;
	}
	case MSG_ATTACH: {
		const char *id = ((Roamnet__Attach *)m)->id;
		if (homeless(id)) {
			orphan_find(c, id);   /* its home is gone: whoever has it re-homes it here */
			break;
		}
		if ((j = my_job(c, id)))
			job_attach(c, j);
		break;
	}
	case MSG_WAIT:
		if (!(j = my_job(c, ((Roamnet__Wait *)m)->id)))
			break;
		if (j->state == JOB_EXITED) {
			Roamnet__Result r = ROAMNET__RESULT__INIT;
			r.has_status = 1;
			r.status = j->status;
			conn_send(c, MSG_RESULT, &r.base);
		} else if (j->state == JOB_FAILED || j->state == JOB_LOST) {
			control_result(c, j->fail_code, "%s", j->fail_reason);
		} else {
			c->waiting = j;
		}
		break;
	case MSG_KILL:
		kill_job(c, (Roamnet__Kill *)m);
		break;
	case MSG_PS:
		ps(c);
		break;
	case MSG_HOSTS:
		hosts(c);
		break;
	case MSG_MIGRATE:
		migrate_request(c, (Roamnet__Migrate *)m);
		break;
	case MSG_DRAIN:
		migrate_drain(c, (Roamnet__Drain *)m);
		break;
	default:
		conn_kill(c, "unexpected message");
		break;
	}
	return false;
}

void control_closed(struct conn *c)
{
	struct job *j = c->job;

	if (j && j->client == c) {
		j->client = NULL;
		/* A client that goes away without detaching hangs up its job, as
		 * closing a terminal does. */
		if (!c->detach && (j->state == JOB_RUNNING || j->state == JOB_STARTING || j->state == JOB_PLACING))
			job_signal(j, SIGHUP);
	}
	c->job = NULL;
	c->waiting = NULL;
	migrate_client_closed(c);
	orphan_client_closed(c);
	for (struct query *q = roamd->queries; q; q = q->next)
		if (q->client == c)
			q->client = NULL;
}
