/*
 * Frames: the one encoder and decoder of every roam message (see msg.h).
 */
#include <errno.h>
#include <string.h>

#include "net/msg.h"

struct msg_desc {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
	uint32_t max;        /* payload limit */
	unsigned channels;
};

#define P MSG_CH_PEER
#define C MSG_CH_CONTROL
static const struct msg_desc table[MSG_TYPE_MAX] = {
	[MSG_HEARTBEAT] = {"heartbeat", &roamnet__heartbeat__descriptor, 256u << 10, P},
	[MSG_PROBE_REQ] = {"probe-req", &roamnet__probe_req__descriptor, 64, P},
	[MSG_PROBE_REP] = {"probe-rep", &roamnet__probe_rep__descriptor, 16u << 10, P},
	[MSG_SPAWN]     = {"spawn", &roamnet__spawn__descriptor, MSG_MAX_PAYLOAD, P},
	[MSG_STARTED]   = {"started", &roamnet__started__descriptor, 16u << 10, P | C},
	[MSG_FAILED]    = {"failed", &roamnet__failed__descriptor, 16u << 10, P | C},
	[MSG_OUTPUT]    = {"output", &roamnet__output__descriptor, 128u << 10, P | C},
	[MSG_INPUT]     = {"input", &roamnet__input__descriptor, 128u << 10, P | C},
	[MSG_SIGNAL]    = {"signal", &roamnet__signal__descriptor, 1024, P | C},
	[MSG_EXITED]    = {"exited", &roamnet__exited__descriptor, 1024, P | C},
	[MSG_PS_REQ]    = {"ps-req", &roamnet__ps_req__descriptor, 64, P},
	[MSG_PS_REP]    = {"ps-rep", &roamnet__ps_rep__descriptor, MSG_MAX_PAYLOAD, P},
	[MSG_FLOW]      = {"flow", &roamnet__flow__descriptor, 256, P},
	[MSG_RUN]       = {"run", &roamnet__run__descriptor, MSG_MAX_PAYLOAD, C},
	[MSG_ATTACH]    = {"attach", &roamnet__attach__descriptor, 1024, C},
	[MSG_WAIT]      = {"wait", &roamnet__wait__descriptor, 1024, C},
	[MSG_PS]        = {"ps", &roamnet__ps__descriptor, 64, C},
	[MSG_PS_LIST]   = {"ps-list", &roamnet__ps_list__descriptor, MSG_MAX_PAYLOAD, C},
	[MSG_HOSTS]     = {"hosts", &roamnet__hosts__descriptor, 64, C},
	[MSG_HOST_LIST] = {"host-list", &roamnet__host_list__descriptor, MSG_MAX_PAYLOAD, C},
	[MSG_KILL]      = {"kill", &roamnet__kill__descriptor, 1024, C},
	[MSG_RESULT]    = {"result", &roamnet__result__descriptor, 16u << 10, C},
	[MSG_MIG_PREPARE] = {"mig-prepare", &roamnet__mig_prepare__descriptor, MSG_MAX_PAYLOAD, P},
	[MSG_MIG_DATA]  = {"mig-data", &roamnet__mig_data__descriptor, MSG_MIG_CHUNK + 64, P},
	/* COMMIT carries the input held at the source: at most the home's
	 * window and a chunk (IN_WINDOW + IN_CHUNK in roamd), 320 KiB. */
	[MSG_MIG_CTL]   = {"mig-ctl", &roamnet__mig_ctl__descriptor, MSG_MAX_PAYLOAD, P},
	[MSG_MIG_REPLY] = {"mig-reply", &roamnet__mig_reply__descriptor, 16u << 10, P},
	[MSG_MIG_HOME]  = {"mig-home", &roamnet__mig_home__descriptor, 1024, P},
	[MSG_MIGRATE]   = {"migrate", &roamnet__migrate__descriptor, 1024, P | C},
	[MSG_MIG_DONE]  = {"mig-done", &roamnet__mig_done__descriptor, 16u << 10, P},
	[MSG_MIG_PROGRESS] = {"mig-progress", &roamnet__mig_progress__descriptor, 1024, P | C},
	[MSG_DRAIN]     = {"drain", &roamnet__drain__descriptor, 1024, P | C},
	[MSG_REHOME_REQ] = {"rehome-req", &roamnet__rehome_req__descriptor, 1024, P},
	[MSG_REHOME_REP] = {"rehome-rep", &roamnet__rehome_rep__descriptor, 8192, P},
	[MSG_KILL_REQ]  = {"kill-req", &roamnet__kill_req__descriptor, 1024, P},
	[MSG_KILL_REP]  = {"kill-rep", &roamnet__kill_rep__descriptor, 2048, P},
	[MSG_LOCATE_REQ] = {"locate-req", &roamnet__locate_req__descriptor, 1024, P},
	[MSG_LOCATE_REP] = {"locate-rep", &roamnet__locate_rep__descriptor, 2048, P},
};
#undef P
#undef C

static const struct msg_desc *lookup(unsigned type)
{
	if (type >= MSG_TYPE_MAX || !table[type].desc)
		return NULL;
	return &table[type];
}

const char *msg_type_name(unsigned type)
{
	const struct msg_desc *d = lookup(type);

	return d ? d->name : "unknown";
}

const char *msg_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case MSG_ERR_SHORT: return "truncated frame";
	case MSG_ERR_TYPE: return "unknown or misplaced message type";
	case MSG_ERR_TOO_BIG: return "frame larger than its type allows";
	case MSG_ERR_FLAGS: return "reserved frame flags set";
	case MSG_ERR_DECODE: return "payload does not decode";
	case MSG_ERR_INVALID: return "message field out of range";
	default: return strerror(err);
	}
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff; p[1] = v >> 8 & 0xff; p[2] = v >> 16 & 0xff; p[3] = v >> 24 & 0xff;
}

int msg_peek(const uint8_t *buf, size_t len, unsigned ch, unsigned *type, uint32_t *plen)
{
	const struct msg_desc *d;
	uint32_t n;
	unsigned t, flags;

	if (len < MSG_HDR_SIZE)
		return -MSG_ERR_SHORT;
	n = get_le32(buf);
	t = (unsigned)buf[4] | (unsigned)buf[5] << 8;
	flags = (unsigned)buf[6] | (unsigned)buf[7] << 8;
	d = lookup(t);
	if (!d || !(d->channels & ch))
		return -MSG_ERR_TYPE;
	if (flags)
		return -MSG_ERR_FLAGS;
	if (n > d->max)
		return -MSG_ERR_TOO_BIG;
	*type = t;
	*plen = n;
	return 0;
}

int msg_valid_name(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= 63;
}

int msg_parse_job_id(const char *id, char *host, size_t hostcap, uint64_t *seq)
{
	const char *dot;
	size_t hl;
	uint64_t v = 0;

	if (!id || strlen(id) >= MSG_MAX_ID)
		return -EINVAL;
	dot = strrchr(id, '.');
	if (!dot || !dot[1])
		return -EINVAL;
	hl = (size_t)(dot - id);
	if (hl == 0 || hl >= hostcap)
		return -EINVAL;
	for (const char *p = dot + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > UINT64_MAX / 10 - 1)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	memcpy(host, id, hl);
	host[hl] = 0;
	if (!msg_valid_name(host))
		return -EINVAL;
	*seq = v;
	return 0;
}

static int valid_id(const char *id)
{
	char host[64];
	uint64_t seq;

	return msg_parse_job_id(id, host, sizeof(host), &seq) == 0;
}

static int str_ok(const char *s)
{
	return s && strlen(s) < MSG_MAX_STR;
}

static int strv_ok(char **v, size_t n, size_t max)
{
	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!str_ok(v[i]))
			return 0;
	return 1;
}

static int load_ok(const Roamnet__HostLoad *l)
{
	if (!l || l->load != l->load || l->load < 0 || l->load > 1e6)
		return 0;
	if (l->arch && !str_ok(l->arch))
		return 0;
	if (l->n_cpu_flags > 256 || l->n_tags > 64)
		return 0;
	for (size_t i = 0; i < l->n_tags; i++)
		if (!msg_valid_name(l->tags[i]))
			return 0;
	return strv_ok(l->cpu_flags, l->n_cpu_flags, 256);
}

static int jobinfo_ok(const Roamnet__JobInfo *j)
{
	return valid_id(j->id) && msg_valid_name(j->host) && msg_valid_name(j->home) &&
	       str_ok(j->user) && str_ok(j->state) && (!j->command || str_ok(j->command));
}

static int rlimits_ok(Roamnet__Rlimit **r, size_t n)
{
	if (n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (r[i]->resource >= 16)
			return 0;
	return 1;
}

int msg_check(unsigned type, const ProtobufCMessage *m)
{
	switch (type) {
	case MSG_HEARTBEAT: {
		const Roamnet__Heartbeat *h = (const void *)m;
		if (!msg_valid_name(h->name) || !str_ok(h->addr) || !load_ok(h->load) ||
		    h->n_members > MSG_MAX_MEMBERS)
			return -MSG_ERR_INVALID;
		for (size_t i = 0; i < h->n_members; i++)
			if (!msg_valid_name(h->members[i]->name) || strlen(h->members[i]->addr) > 128)
				return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_PROBE_REQ:
		return 0;
	case MSG_PROBE_REP:
		return load_ok(((const Roamnet__ProbeRep *)m)->load) ? 0 : -MSG_ERR_INVALID;
	case MSG_SPAWN: {
		const Roamnet__Spawn *s = (const void *)m;
		if (!valid_id(s->id) || !msg_valid_name(s->home) || !str_ok(s->user) || !s->user[0] ||
		    s->n_argv == 0 || !s->argv[0][0] || !strv_ok(s->argv, s->n_argv, MSG_MAX_ARGS) ||
		    !strv_ok(s->env, s->n_env, MSG_MAX_ENV) || !str_ok(s->cwd) || s->cwd[0] != '/' ||
		    s->umask > 0777 || !rlimits_ok(s->rlimits, s->n_rlimits) ||
		    (s->need && strlen(s->need) > 1024))
			return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_STARTED: {
		const Roamnet__Started *s = (const void *)m;
		return valid_id(s->id) && msg_valid_name(s->host) &&
		       (!s->explain || str_ok(s->explain)) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_FAILED: {
		const Roamnet__Failed *f = (const void *)m;
		return valid_id(f->id) && str_ok(f->reason) && f->code > 0 && f->code < 256
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_OUTPUT: {
		const Roamnet__Output *o = (const void *)m;
		return valid_id(o->id) && (o->fd == 1 || o->fd == 2) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_INPUT:
		/* The control socket sends input for its own job: an empty id. */
		{
			const Roamnet__Input *in = (const void *)m;
			return (!in->id[0] || valid_id(in->id)) ? 0 : -MSG_ERR_INVALID;
		}
	case MSG_SIGNAL: {
		const Roamnet__Signal *s = (const void *)m;
		return (!s->id[0] || valid_id(s->id)) && s->sig >= 0 && s->sig <= 64 &&
		       (!s->user || str_ok(s->user)) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_EXITED: {
		const Roamnet__Exited *e = (const void *)m;
		return valid_id(e->id) && e->status >= 0 && e->status <= 0xffff ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_FLOW:
		return valid_id(((const Roamnet__Flow *)m)->id) ? 0 : -MSG_ERR_INVALID;
	case MSG_PS_REQ:
		return 0;
	case MSG_PS_REP: {
		const Roamnet__PsRep *r = (const void *)m;
		if (r->n_jobs > 65536)
			return -MSG_ERR_INVALID;
		for (size_t i = 0; i < r->n_jobs; i++)
			if (!jobinfo_ok(r->jobs[i]))
				return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_RUN: {
		const Roamnet__Run *r = (const void *)m;
		if (r->n_argv == 0 || !r->argv[0][0] || !strv_ok(r->argv, r->n_argv, MSG_MAX_ARGS) ||
		    !strv_ok(r->env, r->n_env, MSG_MAX_ENV) || !str_ok(r->cwd) || r->cwd[0] != '/' ||
		    r->umask > 0777 || !rlimits_ok(r->rlimits, r->n_rlimits) ||
		    (r->policy && strlen(r->policy) > 256) || (r->need && strlen(r->need) > 1024) ||
		    (r->near && r->near[0] && !valid_id(r->near)) ||
		    (r->on && r->on[0] && !msg_valid_name(r->on)))
			return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_ATTACH:
		return valid_id(((const Roamnet__Attach *)m)->id) ? 0 : -MSG_ERR_INVALID;
	case MSG_WAIT:
		return valid_id(((const Roamnet__Wait *)m)->id) ? 0 : -MSG_ERR_INVALID;
	case MSG_KILL: {
		const Roamnet__Kill *k = (const void *)m;
		return valid_id(k->id) && k->sig >= 0 && k->sig <= 64 ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_PS_LIST: {
		const Roamnet__PsList *r = (const void *)m;
		for (size_t i = 0; i < r->n_jobs; i++)
			if (!jobinfo_ok(r->jobs[i]))
				return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_HOST_LIST: {
		const Roamnet__HostList *r = (const void *)m;
		for (size_t i = 0; i < r->n_hosts; i++)
			if (!msg_valid_name(r->hosts[i]->name) ||
			    (r->hosts[i]->load && !load_ok(r->hosts[i]->load)))
				return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_PS:
	case MSG_HOSTS:
		return 0;
	case MSG_MIG_PREPARE: {
		const Roamnet__MigPrepare *p = (const void *)m;
		const Roamnet__HostIdent *h = p->ident;
		if (!valid_id(p->id) || !msg_valid_name(p->home) || !str_ok(p->user) ||
		    (p->command && !str_ok(p->command)) || !str_ok(h->arch) ||
		    !strv_ok(h->cpu_flags, h->n_cpu_flags, 256) || h->n_cpuid > 64 ||
		    (h->has_vdso && h->vdso.len != 16) || p->n_files > MSG_MAX_FILES ||
		    (p->need && strlen(p->need) > 1024))
			return -MSG_ERR_INVALID;
		for (size_t i = 0; i < p->n_files; i++)
			if (!str_ok(p->files[i]->path) || p->files[i]->path[0] != '/' ||
			    p->files[i]->hash.len != 16)
				return -MSG_ERR_INVALID;
		return 0;
	}
	case MSG_MIG_DATA:
		return ((const Roamnet__MigData *)m)->data.len <= MSG_MIG_CHUNK ? 0 : -MSG_ERR_INVALID;
	case MSG_MIG_CTL: {
		const Roamnet__MigCtl *c = (const void *)m;
		return c->op >= MIG_OP_COMMIT && c->op <= MIG_OP_RESOLVE && (!c->reason || str_ok(c->reason))
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_MIG_REPLY: {
		const Roamnet__MigReply *r = (const void *)m;
		return r->step >= MIG_STEP_READY && r->step <= MIG_STEP_ACK && (!r->reason || str_ok(r->reason))
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_MIG_HOME: {
		const Roamnet__MigHome *h = (const void *)m;
		return valid_id(h->id) && h->op >= MIG_HOME_HOLD && h->op <= MIG_HOME_ARRIVED &&
		       (!h->host || msg_valid_name(h->host)) && ((h->op != MIG_HOME_MOVED && h->op != MIG_HOME_ARRIVED) || h->host)
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_MIGRATE: {
		const Roamnet__Migrate *g = (const void *)m;
		return valid_id(g->id) && (!g->to || !g->to[0] || msg_valid_name(g->to)) &&
		       (!g->user || str_ok(g->user)) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_MIG_DONE: {
		const Roamnet__MigDone *d = (const void *)m;
		return !d->reason || str_ok(d->reason) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_MIG_PROGRESS:
		return str_ok(((const Roamnet__MigProgress *)m)->phase) ? 0 : -MSG_ERR_INVALID;
	case MSG_DRAIN:
		return msg_valid_name(((const Roamnet__Drain *)m)->host) ? 0 : -MSG_ERR_INVALID;
	case MSG_REHOME_REQ: {
		const Roamnet__RehomeReq *r = (const void *)m;
		return valid_id(r->id) && str_ok(r->user) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_REHOME_REP: {
		const Roamnet__RehomeRep *r = (const void *)m;
		return valid_id(r->id) && (!r->reason || str_ok(r->reason)) && (!r->command || str_ok(r->command))
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_RESULT: {
		const Roamnet__Result *r = (const void *)m;
		return (!r->reason || str_ok(r->reason)) ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_KILL_REQ: {
		const Roamnet__KillReq *k = (const void *)m;
		return valid_id(k->id) && k->sig >= 0 && k->sig <= 64 && str_ok(k->user) && k->user[0]
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_KILL_REP: {
		const Roamnet__KillRep *r = (const void *)m;
		return r->code >= 0 && r->code < 256 && (!r->reason || str_ok(r->reason))
		       ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_LOCATE_REQ: {
		const Roamnet__LocateReq *q = (const void *)m;
		return valid_id(q->id) && str_ok(q->user) && q->user[0] ? 0 : -MSG_ERR_INVALID;
	}
	case MSG_LOCATE_REP: {
		const Roamnet__LocateRep *r = (const void *)m;
		return (!r->host || !r->host[0] || msg_valid_name(r->host)) &&
		       (!r->reason || str_ok(r->reason)) ? 0 : -MSG_ERR_INVALID;
	}
	}
	return -MSG_ERR_TYPE;
}

int msg_decode(const uint8_t *buf, size_t len, unsigned ch, unsigned *type, ProtobufCMessage **out)
{
	ProtobufCMessage *m;
	uint32_t plen;
	unsigned t;
	int err;

	err = msg_peek(buf, len, ch, &t, &plen);
	if (err)
		return err;
	if (len != MSG_HDR_SIZE + (size_t)plen)
		return len < MSG_HDR_SIZE + (size_t)plen ? -MSG_ERR_SHORT : -MSG_ERR_TOO_BIG;
	m = protobuf_c_message_unpack(table[t].desc, NULL, plen, buf + MSG_HDR_SIZE);
	if (!m)
		return -MSG_ERR_DECODE;
	err = msg_check(t, m);
	if (err) {
		protobuf_c_message_free_unpacked(m, NULL);
		return err;
	}
	*type = t;
	*out = m;
	return 0;
}

void msg_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

size_t msg_type_max(unsigned type)
{
	const struct msg_desc *d = lookup(type);

	return d ? d->max : 0;
}

size_t msg_frame_size(const ProtobufCMessage *m)
{
	return MSG_HDR_SIZE + protobuf_c_message_get_packed_size(m);
}

long msg_encode(unsigned type, const ProtobufCMessage *m, uint8_t *out, size_t cap)
{
	const struct msg_desc *d = lookup(type);
	size_t n;

	if (!d || m->descriptor != d->desc)
		return -MSG_ERR_TYPE;
	n = protobuf_c_message_get_packed_size(m);
	if (n > d->max)
		return -MSG_ERR_TOO_BIG;
	if (cap < MSG_HDR_SIZE + n)
		return -ENOSPC;
	put_le32(out, (uint32_t)n);
	out[4] = type & 0xff;
	out[5] = type >> 8 & 0xff;
	out[6] = out[7] = 0;
	protobuf_c_message_pack(m, out + MSG_HDR_SIZE);
	return (long)(MSG_HDR_SIZE + n);
}

int msg_take(const uint8_t *buf, size_t len, unsigned ch, unsigned *type, ProtobufCMessage **out,
	     size_t *used)
{
	uint32_t plen;
	int err = msg_peek(buf, len, ch, type, &plen);

	if (err == -MSG_ERR_SHORT || (!err && len < MSG_HDR_SIZE + (size_t)plen))
		return 0;
	if (!err)
		err = msg_decode(buf, MSG_HDR_SIZE + (size_t)plen, ch, type, out);
	if (err)
		return err;
	*used = MSG_HDR_SIZE + (size_t)plen;
	return 1;
}
