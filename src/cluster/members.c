/*
 * The member table (see cluster.h). Pure: time comes from the caller.
 */
#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"

const char *const cl_features[] = {
	"sse4_2", "avx", "avx2", "avx512f", "aes", "bmi2", "fma", "sha_ni", "popcnt",
};
const unsigned cl_nfeatures = sizeof(cl_features) / sizeof(cl_features[0]);

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void members_init(struct members *t, const char *self_name, const char *self_addr)
{
	memset(t, 0, sizeof(*t));
	copy(t->m[0].name, CL_NAME_MAX, self_name);
	copy(t->m[0].addr, CL_ADDR_MAX, self_addr);
	t->m[0].state = MEMBER_UP;
	t->m[0].self = true;
	t->m[0].heard = true;
	t->n = 1;
}

struct member *members_find(struct members *t, const char *name)
{
	if (!name || !name[0])
		return NULL;
	for (unsigned i = 0; i < t->n; i++)
		if (!strcmp(t->m[i].name, name))
			return &t->m[i];
	return NULL;
}

struct member *members_find_addr(struct members *t, const char *addr)
{
	for (unsigned i = 0; i < t->n; i++)
		if (!strcmp(t->m[i].addr, addr))
			return &t->m[i];
	return NULL;
}

struct member *members_add(struct members *t, const char *name, const char *addr)
{
	struct member *m = members_find(t, name);

	if (m)
		return m;
	/* A seed first known by address alone gets its name with its first heartbeat. */
	m = members_find_addr(t, addr);
	if (m) {
		if (!m->name[0] && name)
			copy(m->name, CL_NAME_MAX, name);
		return m;
	}
	if (t->n == CL_MAX_MEMBERS)
		return NULL;
	m = &t->m[t->n++];
	memset(m, 0, sizeof(*m));
	copy(m->name, CL_NAME_MAX, name);
	copy(m->addr, CL_ADDR_MAX, addr);
	m->state = MEMBER_NEW;
	return m;
}

struct member *members_heard(struct members *t, const char *name, const char *addr,
			     const struct host_load *l, uint64_t now_ms, bool *came_up)
{
	struct member *m = members_add(t, name, addr);

	*came_up = false;
	if (!m || m->self)
		return m;
	copy(m->addr, CL_ADDR_MAX, addr);
	m->load = *l;
	m->last_ms = now_ms;
	m->heard = true;
	if (m->state != MEMBER_UP) {
		m->state = MEMBER_UP;
		*came_up = true;
	}
	return m;
}

void members_expire(struct members *t, uint64_t now_ms,
		    void (*down)(struct member *m, void *arg), void *arg)
{
	for (unsigned i = 0; i < t->n; i++) {
		struct member *m = &t->m[i];
		if (m->self || (m->state != MEMBER_UP && m->state != MEMBER_INCOMPAT))
			continue;
		if (now_ms - m->last_ms >= CL_DOWN_MS) {
			m->state = MEMBER_DOWN;
			if (down)
				down(m, arg);
		}
	}
}

int members_tag_bit(struct members *t, const char *tag)
{
	for (unsigned i = 0; i < t->ntags; i++)
		if (!strcmp(t->tag[i], tag))
			return (int)i;
	if (t->ntags == CL_MAX_TAGS)
		return -1;
	copy(t->tag[t->ntags], CL_NAME_MAX, tag);
	return (int)t->ntags++;
}

void members_view(struct members *t, struct policy_host *hosts)
{
	for (unsigned i = 0; i < t->n; i++) {
		const struct member *m = &t->m[i];
		struct policy_host *h = &hosts[i];
		int arch;

		memset(h, 0, sizeof(*h));
		h->id = i;
		h->flags = m->state == MEMBER_UP && m->name[0] ? POLICY_HOST_UP : 0;
		if (m->load.draining || (m->load.max_procs && m->load.nprocs >= m->load.max_procs))
			h->flags |= POLICY_HOST_DRAINING;
		h->load = m->load.load;
		h->mem_free = m->load.mem_free;
		h->ncpus = m->load.ncpus;
		arch = policy_arch_parse(m->load.arch);
		h->arch = arch > 0 ? (uint32_t)arch : POLICY_ARCH_ANY;
		h->features = m->load.features;
		h->nprocs = m->load.nprocs;
		for (unsigned j = 0; j < m->load.ntags; j++) {
			int bit = members_tag_bit(t, m->load.tags[j]);
			if (bit >= 0)
				h->tags |= 1ull << bit;
		}
	}
}
