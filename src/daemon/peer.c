/*
 * Peer messages: membership (heartbeats every second on each outgoing link,
 * carrying this host's load and the members it knows, so the cluster spreads
 * from a few seeds), probes, and the job conversation between a home and an
 * exec host.
 *
 * Direction is fixed by who opened the link: requests (Heartbeat, ProbeReq,
 * Spawn, Input, Signal, PsReq, KillReq, LocateReq) travel on the sender's
 * outgoing link; answers (ProbeRep, Started, Failed, Output, Exited, PsRep,
 * KillRep, LocateRep) come back on the same
 * connection. A message in the wrong direction is a protocol error.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define HEARTBEAT_MS 1000

void peer_fill_load(Roamnet__HostLoad *out, const struct host_load *l, char **tagv, char **featv)
{
	roamnet__host_load__init(out);
	out->load = l->load;
	out->has_psi_some = 1;
	out->psi_some = l->psi_some;
	out->has_mem_free = out->has_mem_total = 1;
	out->mem_free = l->mem_free;
	out->mem_total = l->mem_total;
	out->arch = (char *)l->arch;
	for (unsigned i = 0; i < l->ntags; i++)
		tagv[i] = (char *)l->tags[i];
	out->tags = tagv;
	out->n_tags = l->ntags;
	out->has_nprocs = out->has_max_procs = out->has_ncpus = 1;
	out->nprocs = l->nprocs;
	out->max_procs = l->max_procs;
	out->ncpus = l->ncpus;
	out->has_draining = l->draining;
	out->draining = l->draining;
	/* Feature bits travel as names: the numbering is each host's own. */
	size_t nf = 0;
	for (unsigned i = 0; i < cl_nfeatures && i < 64; i++)
		if (l->features & (1ull << i))
			featv[nf++] = (char *)cl_features[i];
	out->cpu_flags = featv;
	out->n_cpu_flags = nf;
}

void member_unusable(const struct member *m, char *buf, size_t size)
{
	if (m->state == MEMBER_INCOMPAT)
		snprintf(buf, size, "host %s speaks roam peer protocol %u..%u, this roamd %u..%u (upgrade one of them)",
			 m->name, m->proto_min, m->proto, roamd->cfg.proto_min, roamd->cfg.proto);
	else
		snprintf(buf, size, "host %s is not reachable", m->name);
}

void peer_host_load_from(struct host_load *l, const Roamnet__HostLoad *in)
{
	memset(l, 0, sizeof(*l));
	l->load = in->load;
	l->psi_some = in->has_psi_some ? in->psi_some : -1;
	l->mem_free = in->mem_free;
	l->mem_total = in->mem_total;
	snprintf(l->arch, sizeof(l->arch), "%s", in->arch ? in->arch : "");
	for (size_t i = 0; i < in->n_tags && i < CL_MAX_TAGS; i++)
		snprintf(l->tags[l->ntags++], CL_NAME_MAX, "%s", in->tags[i]);
	for (size_t i = 0; i < in->n_cpu_flags; i++)
		for (unsigned k = 0; k < cl_nfeatures; k++)
			if (!strcmp(in->cpu_flags[i], cl_features[k]))
				l->features |= 1ull << k;
	l->nprocs = in->nprocs;
	l->max_procs = in->max_procs;
	l->ncpus = in->ncpus ? in->ncpus : 1;
	l->draining = in->has_draining && in->draining;
}

/* The address peers should use for us: --listen, or, when it is a wildcard,
 * the local address of this link with the listen port. */
static void advertised(const struct conn *c, char *out, size_t cap)
{
	const char *l = roamd->cfg.listen;
	const char *port = strrchr(l, ':');
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(out, cap, "%s", l);
	if (strncmp(l, "0.0.0.0:", 8) && strncmp(l, "[::]:", 5))
		return;
	if (getsockname(c->ev.fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s%s", host, port);
	} else if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "[%s]%s", host, port);
	}
}

static void send_heartbeat(struct conn *c)
{
	Roamnet__Heartbeat h = ROAMNET__HEARTBEAT__INIT;
	Roamnet__HostLoad l;
	static Roamnet__Member mv[CL_MAX_MEMBERS];
	static Roamnet__Member *mp[CL_MAX_MEMBERS];
	char *tagv[CL_MAX_TAGS], *featv[64];
	char addr[CL_ADDR_MAX];
	size_t n = 0;

	advertised(c, addr, sizeof(addr));
	peer_fill_load(&l, &roamd->self_load, tagv, featv);
	h.name = roamd->cfg.name;
	h.addr = addr;
	h.load = &l;
	for (unsigned i = 1; i < roamd->members.n; i++) {
		struct member *m = &roamd->members.m[i];
		if (m->state != MEMBER_UP || !m->name[0])
			continue;
		roamnet__member__init(&mv[n]);
		mv[n].name = m->name;
		mv[n].addr = m->addr;
		mp[n] = &mv[n];
		n++;
	}
	h.members = mp;
	h.n_members = n;
	h.has_proto = h.has_proto_min = 1;
	h.proto = roamd->cfg.proto;
	h.proto_min = roamd->cfg.proto_min;
	conn_send(c, MSG_HEARTBEAT, &h.base);
}

void peer_opened(struct conn *c)
{
	send_heartbeat(c);
	migrate_link_opened(c);
}

static void heartbeat(struct conn *c, const Roamnet__Heartbeat *h)
{
	struct host_load l;
	struct member *m;
	bool up;

	if (!strcmp(h->name, roamd->cfg.name)) {
		log_warn("peer %s claims this host's name %s", c->peer_desc, h->name);
		return conn_kill(c, "duplicate host name");
	}
	uint32_t hi = h->has_proto ? h->proto : 1, lo = h->has_proto_min ? h->proto_min : hi;
	if (hi < roamd->cfg.proto_min || lo > roamd->cfg.proto) {
		/* Known, shown, but used for nothing: what else it sends is
		 * dropped (peer_frame), and it is not asked for anything. */
		c->incompat = true;
		m = members_add(&roamd->members, h->name, h->addr);
		if (!m || m->self)
			return;
		if (m->state != MEMBER_INCOMPAT || m->proto != hi || m->proto_min != lo)
			log_warn("host %s (%s) speaks roam peer protocol %u..%u, this roamd %u..%u: "
				 "left out of the cluster until one of them is upgraded",
				 h->name, h->addr, lo, hi, roamd->cfg.proto_min, roamd->cfg.proto);
		m->state = MEMBER_INCOMPAT;
		m->proto = hi;
		m->proto_min = lo;
		m->last_ms = mono_ms();
		m->heard = true;
		return;
	}
	c->incompat = false;
	peer_host_load_from(&l, h->load);
	m = members_heard(&roamd->members, h->name, h->addr, &l, mono_ms(), &up);
	if (!m)
		return;
	m->proto = hi;
	m->proto_min = lo;
	snprintf(c->peer_name, sizeof(c->peer_name), "%s", h->name);
	exec_rebind(c);
	if (up)
		log_info("host %s (%s) is up", m->name, m->addr);
	if (!m->link)
		conn_connect(m);
	for (size_t i = 0; i < h->n_members; i++) {
		const Roamnet__Member *x = h->members[i];
		if (!strcmp(x->name, roamd->cfg.name) || members_find(&roamd->members, x->name))
			continue;
		struct member *n = members_add(&roamd->members, x->name, x->addr);
		if (n)
			conn_connect(n);
	}
}

static void spawn(struct conn *c, const Roamnet__Spawn *s)
{
	char reason[512];
	struct job *j;
	int code;

	if (job_find(s->id)) {
		Roamnet__Failed f = ROAMNET__FAILED__INIT;
		f.id = s->id;
		f.code = 255;
		f.reason = "duplicate job id";
		conn_send(c, MSG_FAILED, &f.base);
		return;
	}
	j = job_new(s->id);
	if (!j)
		return;
	j->origin = c;
	snprintf(j->home, sizeof(j->home), "%s", s->home);
	j->cmd = job_cmdline(s->argv, s->n_argv);
	j->need = s->need && s->need[0] ? strdup(s->need) : NULL;
	j->pinned = s->has_pinned && s->pinned;
	code = exec_start(j, s, reason, sizeof(reason));
	if (code) {
		Roamnet__Failed f = ROAMNET__FAILED__INIT;
		log_info("job %s from %s refused: %s", s->id, s->home, reason);
		f.id = s->id;
		f.code = code;
		f.reason = reason;
		conn_send(c, MSG_FAILED, &f.base);
		job_free(j);
		return;
	}
	Roamnet__Started st = ROAMNET__STARTED__INIT;
	st.id = j->id;
	st.host = roamd->cfg.name;
	st.has_pid = 1;
	st.pid = j->pid;
	conn_send(c, MSG_STARTED, &st.base);
}

static void ps_reply(struct conn *c, uint64_t qid)
{
	Roamnet__PsRep r = ROAMNET__PS_REP__INIT;
	struct job_list l;

	job_list_local(&l);
	r.qid = qid;
	r.jobs = l.ptrs;
	r.n_jobs = l.n;
	conn_send(c, MSG_PS_REP, &r.base);
	job_list_free(&l);
}

static bool from_home(struct conn *c, unsigned type, ProtobufCMessage *m)
{
	switch (type) {
	case MSG_HEARTBEAT:
		heartbeat(c, (Roamnet__Heartbeat *)m);
		return false;
	case MSG_PROBE_REQ: {
		Roamnet__ProbeRep r = ROAMNET__PROBE_REP__INIT;
		Roamnet__HostLoad l;
		char *tagv[CL_MAX_TAGS], *featv[64];
		struct host_load now = roamd->self_load;
		now.load = exec_load();
		peer_fill_load(&l, &now, tagv, featv);
		r.qid = ((Roamnet__ProbeReq *)m)->qid;
		r.load = &l;
		conn_send(c, MSG_PROBE_REP, &r.base);
		return false;
	}
	case MSG_SPAWN:
		spawn(c, (Roamnet__Spawn *)m);
		return false;
	case MSG_INPUT: {
		Roamnet__Input *in = (Roamnet__Input *)m;
		struct job *j = job_find(in->id);
		if (j && j->exec_side && j->origin == c)
			exec_input(j, in->has_data ? in->data.data : NULL, in->has_data ? in->data.len : 0,
				   in->has_eof && in->eof);
		return false;
	}
	case MSG_SIGNAL: {
		Roamnet__Signal *s = (Roamnet__Signal *)m;
		struct job *j = job_find(s->id);
		if (!j)
			return false;
		if (j->exec_side && j->origin == c)
			exec_signal(j, s->sig);
		return false;
	}
	case MSG_FLOW: {
		Roamnet__Flow *f = (Roamnet__Flow *)m;
		struct job *j = job_find(f->id);
		if (j && j->exec_side && j->origin == c)
			exec_hold(j, f->pause);
		return false;
	}
	case MSG_PS_REQ:
		ps_reply(c, ((Roamnet__PsReq *)m)->qid);
		return false;
	case MSG_MIG_PREPARE:
		migrate_prepare(c, (Roamnet__MigPrepare *)m);
		return false;
	case MSG_MIG_CTL:
		migrate_ctl(c, (Roamnet__MigCtl *)m);
		return false;
	case MSG_MIG_HOME:
		migrate_home(c, (Roamnet__MigHome *)m);
		return false;
	case MSG_DRAIN:
		migrate_drain(c, (Roamnet__Drain *)m);
		return false;
	case MSG_REHOME_REQ:
		orphan_rehome(c, (Roamnet__RehomeReq *)m);
		return false;
	case MSG_MIGRATE:
		migrate_request(c, (Roamnet__Migrate *)m);
		return false;
	case MSG_KILL_REQ:
		kill_request(c, (Roamnet__KillReq *)m);
		return false;
	case MSG_LOCATE_REQ:
		job_locate(c, (Roamnet__LocateReq *)m);
		return false;
	}
	conn_kill(c, "message in the wrong direction");
	return false;
}

static struct job *home_job(struct conn *c, const char *id)
{
	struct job *j = job_find(id);

	if (!j || !j->home_side || (j->exec_member != c->member && j->arrived != c->member))
		return NULL;
	return j;
}

static bool from_exec(struct conn *c, unsigned type, ProtobufCMessage *m)
{
	struct job *j;

	switch (type) {
	case MSG_PROBE_REP: {
		Roamnet__ProbeRep *r = (Roamnet__ProbeRep *)m;
		job_probe_answer(r->qid, c->member, r->load);
		return false;
	}
	case MSG_STARTED: {
		Roamnet__Started *s = (Roamnet__Started *)m;
		if ((j = home_job(c, s->id)) && j->state == JOB_STARTING)
			job_home_started(j, c->member->name, s->pid);
		return false;
	}
	case MSG_FAILED: {
		Roamnet__Failed *f = (Roamnet__Failed *)m;
		if ((j = home_job(c, f->id)))
			job_home_failed(j, f->code, f->reason);
		return false;
	}
	case MSG_OUTPUT: {
		Roamnet__Output *o = (Roamnet__Output *)m;
		if ((j = home_job(c, o->id)))
			job_home_output(j, o->fd, o->data.data, o->data.len);
		return false;
	}
	case MSG_EXITED: {
		Roamnet__Exited *e = (Roamnet__Exited *)m;
		if ((j = home_job(c, e->id)))
			job_home_exited(j, e->status);
		return false;
	}
	case MSG_PS_REP: {
		Roamnet__PsRep *r = (Roamnet__PsRep *)m;
		query_answer(r->qid, r->jobs, r->n_jobs);
		return false;
	}
	case MSG_MIG_REPLY:
		migrate_reply(c, (Roamnet__MigReply *)m);
		return false;
	case MSG_REHOME_REP:
		orphan_found(c, (Roamnet__RehomeRep *)m);
		return false;
	case MSG_MIG_DONE:
		migrate_done(c, (Roamnet__MigDone *)m);
		return false;
	case MSG_MIG_PROGRESS:
		migrate_progress_relay(c, (Roamnet__MigProgress *)m);
		return false;
	case MSG_MIG_HOME:
		migrate_home(c, (Roamnet__MigHome *)m);
		return false;
	case MSG_KILL_REP: {
		Roamnet__KillRep *r = (Roamnet__KillRep *)m;
		kill_answer(r->qid, r->code, r->reason);
		return false;
	}
	case MSG_LOCATE_REP:
		job_locate_answer((Roamnet__LocateRep *)m);
		return false;
	case MSG_FLOW: {
		/* The stdin the exec side took. From whichever host runs it or
		 * is taking it over: a destination reports the input COMMIT
		 * brought before its source says the job moved. */
		Roamnet__Flow *f = (Roamnet__Flow *)m;
		j = job_find(f->id);
		if (j && j->home_side && f->has_input_taken)
			job_input_taken(j, f->input_taken);
		return false;
	}
	}
	conn_kill(c, "message in the wrong direction");
	return false;
}

bool peer_frame(struct conn *c, unsigned type, ProtobufCMessage *m)
{
	log_debug("peer %s: %s", c->peer_desc, msg_type_name(type));
	if (c->incompat && type != MSG_HEARTBEAT)
		return false;  /* another protocol: its meaning is not ours (heartbeat) */
	return c->kind == CONN_PEER_IN ? from_home(c, type, m) : from_exec(c, type, m);
}

void peer_closed(struct conn *c)
{
	migrate_link_closed(c);
	if (c->kind == CONN_PEER_OUT) {
		struct member *m = c->member;
		if (m && m->link == c) {
			m->link = NULL;
			if (c->state == CS_OPEN)
				job_member_lost(m);
		}
	} else {
		exec_origin_lost(c);
	}
}

static void member_down(struct member *m, void *arg)
{
	log_warn("host %s (%s) is down: no heartbeat for %d ms", m->name, m->addr, CL_DOWN_MS);
	job_member_lost(m);
	if (m->link)
		conn_kill(m->link, "host down");
}

static void refresh_self(void)
{
	struct host_load *l = &roamd->self_load;
	FILE *f = fopen("/proc/meminfo", "re");
	const char *psi = cgroup_host_pressure();
	char key[64];
	unsigned long long v;

	if (f) {
		while (fscanf(f, "%63s %llu kB\n", key, &v) == 2)
			if (!strcmp(key, "MemAvailable:"))
				l->mem_free = v << 10;
		fclose(f);
	}
	l->load = exec_load();
	l->nprocs = exec_running();
	if (!psi || load_psi_some(psi, &l->psi_some) < 0)
		l->psi_some = -1;
}

void peer_tick(uint64_t now)
{
	if (now - roamd->last_heartbeat_ms < HEARTBEAT_MS)
		return;
	roamd->last_heartbeat_ms = now;
	refresh_self();
	for (unsigned i = 1; i < roamd->members.n; i++) {
		struct member *m = &roamd->members.m[i];
		if (!m->link)
			conn_connect(m);
		else if (m->link->state == CS_OPEN)
			send_heartbeat(m->link);
	}
	members_expire(&roamd->members, now, member_down, NULL);
}
