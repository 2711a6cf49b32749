/*
 * Jobs whose home went away. Unlike MOSIX's, whose processes die with their
 * home node, a roam job runs on where it is: its output is kept here (1 MiB
 * in memory, then appended to a file in the state directory, up to 256 MiB;
 * past that the job is held back, as a full pipe would hold it) and its exit
 * status too, until someone types `roam attach ID` on any host. That host
 * asks every host it reaches (RehomeReq); the one that has the job takes it
 * as the job's new home, answers, and sends what it kept, in order, then the
 * live output, and Exited if the job has ended meanwhile.
 *
 * The kept output is a sequence of chunks: u8 fd, u32le length, bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define KEEP_MEM      (1u << 20)
#define KEEP_FILE_MAX (256u << 20)
#define KEEP_MS       600000       /* an ended orphan nobody attached to */
#define REHOME_MS     1500         /* hosts that do not answer by then do not have it */

static void spill_path(const struct job *j, char *buf, size_t cap)
{
	strfmt(buf, cap, "%s/spill-%s", roamd->cfg.state_dir, j->id);
}

void orphan_adopt(struct job *j)
{
	log_warn("job %s: its home %s is gone; it runs on, its output kept here until roam attach", j->id,
		 j->home);
	j->origin = NULL;
	j->orphan = true;
}

void orphan_keep(struct job *j, unsigned fd, const uint8_t *data, size_t n)
{
	uint8_t hdr[5] = {(uint8_t)fd, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
	char path[300];

	if (!j->spilled && buf_used(&j->backlog) + n + sizeof(hdr) <= KEEP_MEM) {
		buf_append(&j->backlog, hdr, sizeof(hdr));
		buf_append(&j->backlog, data, n);
		return;
	}
	/* Past the memory budget, on disk (0600: it is the user's output). */
	spill_path(j, path, sizeof(path));
	int f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (f < 0 || write(f, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) || write(f, data, n) != (ssize_t)n) {
		log_warn("job %s: cannot keep its output in %s: %s; holding it back", j->id, path, strerror(errno));
		exec_hold(j, true);
	} else {
		j->spilled += n + sizeof(hdr);
		if (j->spilled > KEEP_FILE_MAX)
			exec_hold(j, true);   /* as a pipe nobody reads would */
	}
	if (f >= 0)
		close(f);
}

void orphan_exited(struct job *j, int status)
{
	j->state = JOB_EXITED;
	j->status = status;
	j->reap_ms = mono_ms() + KEEP_MS;
	log_info("job %s ended with status 0x%x while homeless; kept for roam attach", j->id, status);
}

typedef void (*kept_fn)(struct job *j, unsigned fd, const uint8_t *data, size_t n);

static void each_chunk(struct job *j, const uint8_t *p, size_t len, kept_fn fn)
{
	while (p && len >= 5) {
		size_t n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
		if (n > len - 5)
			break;
		fn(j, p[0], p + 5, n);
		p += 5 + n;
		len -= 5 + n;
	}
}

/* Hands what was kept to fn, oldest first (memory, then the file), and
 * forgets it. */
static void take_kept(struct job *j, kept_fn fn)
{
	struct buf mem = j->backlog;
	char path[300];

	memset(&j->backlog, 0, sizeof(j->backlog));
	each_chunk(j, buf_data(&mem), buf_used(&mem), fn);
	buf_free(&mem);
	if (!j->spilled)
		return;
	spill_path(j, path, sizeof(path));
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f >= 0) {
		struct buf b = {0};
		uint8_t chunk[65536];
		ssize_t n;
		while ((n = read(f, chunk, sizeof(chunk))) > 0)
			buf_append(&b, chunk, (size_t)n);
		close(f);
		each_chunk(j, buf_data(&b), buf_used(&b), fn);
		buf_free(&b);
	}
	unlink(path);
	j->spilled = 0;
}

void orphan_forget(struct job *j)
{
	char path[300];

	if (j->spilled) {
		spill_path(j, path, sizeof(path));
		unlink(path);
	}
}

/* A host where `roam attach` was typed asks for a job: ours if we have it
 * homeless, and the user may. */
void orphan_rehome(struct conn *c, const Roamnet__RehomeReq *r)
{
	Roamnet__RehomeRep a = ROAMNET__REHOME_REP__INIT;
	struct job *j = job_find(r->id);

	a.qid = r->qid;
	a.id = r->id;
	if (!j || !j->orphan || j->home_side)
		return;   /* not ours: only the host that has it answers */
	if (strcmp(r->user, j->user) && strcmp(r->user, "root")) {
		a.reason = "the job belongs to another user";
		conn_send(c, MSG_REHOME_REP, &a.base);
		return;
	}
	j->origin = c;
	j->orphan = false;
	snprintf(j->home, sizeof(j->home), "%s", c->peer_name);
	a.ok = true;
	a.has_pid = a.has_started = a.has_migrations = 1;
	a.pid = j->pid;
	a.command = j->cmd;
	a.started = j->started;
	a.migrations = j->migrations;
	conn_send(c, MSG_REHOME_REP, &a.base);
	log_info("job %s: its new home is %s", j->id, j->home);
	take_kept(j, exec_deliver);   /* over the new home's link */
	if (j->exec_side) {
		exec_hold(j, false);
	} else {
		Roamnet__Exited e = ROAMNET__EXITED__INIT;
		e.id = j->id;
		e.status = j->status;
		conn_send(c, MSG_EXITED, &e.base);
		job_free(j);
	}
}

/* ---- the attaching side ---------------------------------------------------- */

static struct rehome {
	uint64_t qid;
	struct conn *client;
	char id[MSG_MAX_ID];
	unsigned waiting;
	uint64_t deadline_ms;
	struct rehome *next;
} *rehomes;

static void rehome_end(struct rehome *q, const char *why)
{
	struct rehome **pp;

	if (why && q->client)
		control_result(q->client, 255, "%s", why);
	for (pp = &rehomes; *pp && *pp != q; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = q->next;
	free(q);
}

/* The job is here, homeless: this host becomes its home. */
static void rehome_here(struct conn *c, struct job *j)
{
	if (!job_visible(j, c->uid, c->user) && strcmp(j->user, c->user))
		return control_result(c, 255, "job %s belongs to another user", j->id);
	j->orphan = false;
	j->home_side = true;
	j->uid = c->uid;
	snprintf(j->home, sizeof(j->home), "%s", roamd->cfg.name);
	if (j->state == JOB_EXITED)
		j->reap_ms = mono_ms() + KEEP_MS;
	log_info("job %s: re-homed here, where it runs", j->id);
	take_kept(j, job_home_output);   /* kept as the home keeps output, for job_attach */
	job_attach(c, j);
}

void orphan_find(struct conn *c, const char *id)
{
	struct job *here = job_find(id);
	struct rehome *q;

	if (here && here->orphan)
		return rehome_here(c, here);
	q = calloc(1, sizeof(*q));
	if (!q)
		return control_result(c, 255, "out of memory");
	q->qid = ++roamd->next_qid;
	q->client = c;
	snprintf(q->id, sizeof(q->id), "%s", id);
	q->deadline_ms = mono_ms() + REHOME_MS;
	q->next = rehomes;
	rehomes = q;
	for (unsigned i = 1; i < roamd->members.n; i++) {
		struct member *m = &roamd->members.m[i];
		Roamnet__RehomeReq r = ROAMNET__REHOME_REQ__INIT;
		if (!m->link || m->link->state != CS_OPEN)
			continue;
		r.qid = q->qid;
		r.id = (char *)id;
		r.user = c->uid == 0 ? (char *)"root" : c->user;
		if (conn_send(m->link, MSG_REHOME_REQ, &r.base) == 0)
			q->waiting++;
	}
	if (!q->waiting)
		rehome_end(q, "no such job (its home is gone and no host reachable has it)");
}

void orphan_found(struct conn *c, const Roamnet__RehomeRep *r)
{
	struct rehome *q;
	struct job *j;

	for (q = rehomes; q && q->qid != r->qid; q = q->next)
		;
	if (!q)
		return;
	if (!r->ok)
		return rehome_end(q, r->reason ? r->reason : "refused");
	if (!q->client || job_find(r->id)) {
		rehome_end(q, NULL);
		return;
	}
	j = job_new(r->id);
	if (!j)
		return rehome_end(q, "out of memory");
	j->home_side = true;
	j->state = JOB_RUNNING;
	j->exec_member = c->member;
	j->uid = q->client->uid;
	snprintf(j->user, sizeof(j->user), "%s", q->client->user);
	snprintf(j->home, sizeof(j->home), "%s", roamd->cfg.name);
	snprintf(j->host, sizeof(j->host), "%s", c->member->name);
	j->pid = r->pid;
	j->cmd = strdup(r->command ? r->command : "?");
	j->started = r->started;
	j->migrations = r->migrations;
	log_info("job %s: re-homed here; it runs on %s", j->id, j->host);
	job_attach(q->client, j);
	q->client = NULL;
	rehome_end(q, NULL);
}

void orphan_client_closed(struct conn *c)
{
	for (struct rehome *q = rehomes; q; q = q->next)
		if (q->client == c)
			q->client = NULL;
}

void orphan_tick(uint64_t now)
{
	struct rehome *q, *next;

	for (q = rehomes; q; q = next) {
		next = q->next;
		if (now >= q->deadline_ms)
			rehome_end(q, "no such job (its home is gone and no host reachable has it)");
	}
}
