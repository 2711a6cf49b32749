/*
 * Policy decisions: constraints first, then the policy's own rule.
 *
 * The hot path (roam-sim calls it for every simulated arrival) is the
 * rejection sampler: draw a host index uniformly, keep it if it is eligible
 * and not drawn before. With most hosts eligible that costs one or two
 * draws per host sampled. When draws keep failing (few eligible hosts), it
 * falls back to counting the eligible hosts and drawing ranks among them
 * (Floyd's algorithm). Both give every set of distinct eligible hosts the
 * same probability: the number of rejections does not depend on which
 * hosts were drawn, so switching midway keeps the sample uniform.
 */
#include <math.h>
#include <string.h>

#include "policy/policy.h"

enum phase {
	PHASE_START = 0,
	PHASE_ASKED,       /* probes out: waiting for the answers */
};

/* Rejection draws per wanted host before the exact fallback. */
#define REJECT_TRIES 16

void policy_request_init(struct policy_request *req, int32_t origin, double origin_load)
{
	memset(req, 0, sizeof(*req));
	req->on = POLICY_NO_HOST;
	req->near = POLICY_NO_HOST;
	req->origin = origin;
	req->origin_load = origin_load;
}

enum policy_reads policy_reads(const struct policy *p)
{
	switch (p->kind) {
	case POLICY_KIND_LEAST_LOADED:
	case POLICY_KIND_POD:
		return POLICY_READS_PUBLISHED;
	case POLICY_KIND_JSQ:
		return POLICY_READS_EXACT;
	case POLICY_KIND_PROBE:
	case POLICY_KIND_THRESHOLD:
		return POLICY_READS_PROBES;
	default:
		return POLICY_READS_NOTHING;
	}
}

static const char *const arch_names[POLICY_ARCH_MAX] = {
	[POLICY_ARCH_ANY] = "any",
	[POLICY_ARCH_X86_64] = "x86_64",
	[POLICY_ARCH_AARCH64] = "aarch64",
	[POLICY_ARCH_RISCV64] = "riscv64",
};

const char *policy_arch_name(uint32_t arch)
{
	return arch < POLICY_ARCH_MAX ? arch_names[arch] : "unknown";
}

int policy_arch_parse(const char *name)
{
	for (int i = 0; i < POLICY_ARCH_MAX; i++)
		if (strcmp(name, arch_names[i]) == 0)
			return i;
	return -POLICY_ERR_NAME;
}

static bool unconstrained(const struct policy_request *req)
{
	return !req->mem && !req->cpus && req->arch == POLICY_ARCH_ANY &&
	       !req->features && !req->tags;
}

/* The first need of req that h fails, POLICY_UNMET_NONE if none. */
static enum policy_unmet host_unmet(const struct policy_host *h, const struct policy_request *req)
{
	if ((h->flags & (POLICY_HOST_UP | POLICY_HOST_DRAINING)) != POLICY_HOST_UP)
		return POLICY_UNMET_UP;
	if (h->mem_free < req->mem)
		return POLICY_UNMET_MEM;
	if (h->ncpus < req->cpus)
		return POLICY_UNMET_CPUS;
	if (req->arch != POLICY_ARCH_ANY && h->arch != req->arch)
		return POLICY_UNMET_ARCH;
	if ((h->features & req->features) != req->features)
		return POLICY_UNMET_FEATURES;
	if ((h->tags & req->tags) != req->tags)
		return POLICY_UNMET_TAGS;
	return POLICY_UNMET_NONE;
}

bool policy_host_eligible(const struct policy_host *h, const struct policy_request *req)
{
	return host_unmet(h, req) == POLICY_UNMET_NONE;
}

/* Eligibility with the unconstrained case folded to one flag test. */
static inline bool eligible(const struct policy_host *h, const struct policy_request *req, bool free_req)
{
	if (free_req)
		return (h->flags & (POLICY_HOST_UP | POLICY_HOST_DRAINING)) == POLICY_HOST_UP;
	return host_unmet(h, req) == POLICY_UNMET_NONE;
}

/*
 * Names the need no host met, for a request with no eligible host: among
 * the hosts that are up, the first need that none of them meets; if each
 * need is met by some host, they are never met all on one.
 */
static enum policy_unmet diagnose(const struct policy_view *v, const struct policy_request *req)
{
	bool up = false, mem = false, cpus = false, arch = false, feat = false, tags = false;

	if (v->n == 0)
		return POLICY_UNMET_HOSTS;
	for (uint32_t i = 0; i < v->n; i++) {
		const struct policy_host *h = &v->hosts[i];

		if ((h->flags & (POLICY_HOST_UP | POLICY_HOST_DRAINING)) != POLICY_HOST_UP)
			continue;
		up = true;
		mem |= h->mem_free >= req->mem;
		cpus |= h->ncpus >= req->cpus;
		arch |= req->arch == POLICY_ARCH_ANY || h->arch == req->arch;
		feat |= (h->features & req->features) == req->features;
		tags |= (h->tags & req->tags) == req->tags;
	}
	if (!up)
		return POLICY_UNMET_UP;
	if (!mem)
		return POLICY_UNMET_MEM;
	if (!cpus)
		return POLICY_UNMET_CPUS;
	if (!arch)
		return POLICY_UNMET_ARCH;
	if (!feat)
		return POLICY_UNMET_FEATURES;
	if (!tags)
		return POLICY_UNMET_TAGS;
	return POLICY_UNMET_TOGETHER;
}

static bool in_list(const uint32_t *list, uint32_t n, uint32_t x)
{
	for (uint32_t i = 0; i < n; i++)
		if (list[i] == x)
			return true;
	return false;
}

/* Eligible, not excluded, not yet in the session. */
static inline bool candidate(const struct policy_view *v, const struct policy_request *req,
                             bool free_req, int64_t exclude, const struct policy_session *s,
                             uint32_t h)
{
	return (int64_t)h != exclude && eligible(&v->hosts[h], req, free_req) &&
	       !in_list(s->host, s->nsampled, h);
}

/*
 * Appends up to want distinct eligible hosts (never exclude, never one
 * already in s) to s->host, uniformly among all such sets. Returns how many
 * it added: fewer than want only when fewer candidates exist.
 */
static uint32_t sample(const struct policy_view *v, const struct policy_request *req,
                       bool free_req, int64_t exclude, struct policy_rng *rng,
                       struct policy_session *s, uint32_t want)
{
	uint32_t added = 0, tries = REJECT_TRIES * want + REJECT_TRIES;
	uint32_t ranks[POLICY_MAX_D], nranks = 0, total = 0;

	if (want > POLICY_MAX_D - s->nsampled)
		want = POLICY_MAX_D - s->nsampled;
	while (added < want && tries-- > 0) {
		uint32_t h = policy_rng_below(rng, v->n);

		if (candidate(v, req, free_req, exclude, s, h)) {
			s->host[s->nsampled++] = h;
			added++;
		}
	}
	if (added == want)
		return added;

	/* Exact fallback: count the candidates, draw ranks, map them back. */
	for (uint32_t h = 0; h < v->n; h++)
		total += candidate(v, req, free_req, exclude, s, h);
	want -= added;
	if (want > total)
		want = total;
	for (uint32_t j = total - want; j < total; j++) {   /* Floyd */
		uint32_t t = policy_rng_below(rng, j + 1);

		if (in_list(ranks, nranks, t))
			t = j;
		ranks[nranks++] = t;
	}
	if (nranks) {
		uint32_t base = s->nsampled, rank = 0;

		for (uint32_t h = 0; h < v->n && s->nsampled - base < nranks; h++) {
			if (!candidate(v, req, free_req, exclude, s, h))
				continue;
			/* s grows as we go, but only with hosts already counted:
			 * compare against the candidates as they were. */
			if (in_list(ranks, nranks, rank))
				s->host[s->nsampled++] = h;
			rank++;
		}
	}
	return added + nranks;
}

/* Keeps the lowest of a stream of (host, load), ties uniformly at random. */
struct lowest {
	uint32_t host, ties;
	double load;
};

static inline void lowest_start(struct lowest *l)
{
	l->ties = 0;
	l->load = INFINITY;
	l->host = 0;
}

static inline void lowest_offer(struct lowest *l, struct policy_rng *rng, uint32_t h, double load)
{
	if (load < l->load) {
		l->load = load;
		l->host = h;
		l->ties = 1;
	} else if (load == l->load) {
		if (policy_rng_below(rng, ++l->ties) == 0)
			l->host = h;
	}
}

static int decided(struct policy_result *res, uint32_t host, enum policy_reason why,
                   double load, uint32_t considered)
{
	res->verdict = POLICY_DECIDED;
	res->host = host;
	res->reason = why;
	res->load = load;
	res->considered = considered;
	return POLICY_DECIDED;
}

static int refused(struct policy_result *res, enum policy_unmet unmet, int32_t host)
{
	res->verdict = POLICY_REFUSED;
	res->unmet = unmet;
	res->unmet_host = host;
	return POLICY_REFUSED;
}

/* Asks for the probes of s->host[from .. s->nsampled). */
static int ask(struct policy_result *res, struct policy_session *s, uint32_t from)
{
	s->phase = PHASE_ASKED;
	s->first_asked = from;
	s->nasked = s->nsampled - from;
	for (uint32_t i = from; i < s->nsampled; i++)
		s->answered[i] = 0;
	res->verdict = POLICY_PROBE;
	res->probe = &s->host[from];
	res->nprobe = s->nasked;
	res->probes = s->nsampled;
	return POLICY_PROBE;
}

static int lowest_of_all(const struct policy_view *v, const struct policy_request *req,
                         bool free_req, struct policy_rng *rng,
                         const struct policy_index *ix, struct policy_result *res)
{
	struct lowest l;
	uint32_t n = 0;

	if (ix && ix->n == v->n) {
		uint32_t min = policy_index_min(ix);
		uint32_t end = min + 1 < ix->nlevels ? ix->start[min + 1] : ix->n;
		uint32_t h = ix->order[policy_rng_below(rng, end)];

		if (eligible(&v->hosts[h], req, free_req))
			return decided(res, h, POLICY_R_LOWEST, (double)min, ix->n);
		/* An ineligible host among the lowest: walk up the levels. */
		lowest_start(&l);
		for (uint32_t i = 0; i < ix->n; i++) {
			uint32_t g = ix->order[i];

			if ((double)ix->level[g] > l.load)
				break;
			if (eligible(&v->hosts[g], req, free_req)) {
				lowest_offer(&l, rng, g, (double)ix->level[g]);
				n++;
			}
		}
	} else {
		lowest_start(&l);
		for (uint32_t h = 0; h < v->n; h++) {
			if (!eligible(&v->hosts[h], req, free_req))
				continue;
			lowest_offer(&l, rng, h, v->hosts[h].load);
			n++;
		}
	}
	if (n == 0)
		return refused(res, diagnose(v, req), POLICY_NO_HOST);
	return decided(res, l.host, n == 1 ? POLICY_R_ONLY : POLICY_R_LOWEST, l.load, n);
}

/* req.on / req.near: the named host if it meets the constraints. */
static int pinned(const struct policy_view *v, const struct policy_request *req,
                  struct policy_result *res)
{
	int32_t h = req->on != POLICY_NO_HOST ? req->on : req->near;
	enum policy_unmet why;

	if (h < 0 || (uint32_t)h >= v->n ||
	    (req->near != POLICY_NO_HOST && ((uint32_t)req->near >= v->n || req->near < 0)))
		return -POLICY_ERR_HOST;
	if (req->on != POLICY_NO_HOST && req->near != POLICY_NO_HOST && req->on != req->near)
		return refused(res, POLICY_UNMET_CONFLICT, req->near);
	why = host_unmet(&v->hosts[h], req);
	if (why != POLICY_UNMET_NONE)
		return refused(res, why, h);
	return decided(res, (uint32_t)h, req->on != POLICY_NO_HOST ? POLICY_R_PINNED : POLICY_R_NEAR,
	               v->hosts[h].load, 1);
}

/* The probe policies' second half: every answer must be in. */
static int answers_complete(const struct policy_session *s)
{
	if (s->phase != PHASE_ASKED)
		return 1;
	for (uint32_t i = s->first_asked; i < s->nsampled; i++)
		if (!s->answered[i])
			return 0;
	return 1;
}

static int decide_threshold(const struct policy *p, const struct policy_view *v,
                            const struct policy_request *req, bool free_req,
                            struct policy_rng *rng, struct policy_session *s,
                            struct policy_result *res)
{
	uint32_t origin;
	bool home_ok;

	if (req->origin < 0 || (uint32_t)req->origin >= v->n)
		return -POLICY_ERR_ORIGIN;
	origin = (uint32_t)req->origin;
	home_ok = eligible(&v->hosts[origin], req, free_req);

	if (s->phase == PHASE_START) {
		if (home_ok && req->origin_load < p->t)
			return decided(res, origin, POLICY_R_LOCAL_BELOW_T, req->origin_load, 0);
	} else {
		uint32_t last = s->nsampled - 1;   /* one host at a time */

		if (s->load[last] >= 0 && s->load[last] < p->t)
			return decided(res, s->host[last], POLICY_R_REMOTE_BELOW_T,
			               s->load[last], s->nsampled);
	}
	if (s->nsampled < p->lp &&
	    sample(v, req, free_req, (int64_t)origin, rng, s, 1) == 1)
		return ask(res, s, s->nsampled - 1);

	if (home_ok)
		return decided(res, origin, POLICY_R_LOCAL_NONE_BELOW, req->origin_load, s->nsampled);
	/* The origin cannot run it: the lowest answer, if any. */
	{
		struct lowest l;
		uint32_t n = 0;

		lowest_start(&l);
		for (uint32_t i = 0; i < s->nsampled; i++) {
			if (s->load[i] < 0)
				continue;
			lowest_offer(&l, rng, s->host[i], s->load[i]);
			n++;
		}
		if (n)
			return decided(res, l.host, POLICY_R_ORIGIN_INELIGIBLE, l.load, s->nsampled);
		if (s->nsampled == 0)
			return refused(res, diagnose(v, req), POLICY_NO_HOST);
		return refused(res, POLICY_UNMET_NO_ANSWER, POLICY_NO_HOST);
	}
}

int policy_decide(const struct policy *p, const struct policy_view *v,
                  const struct policy_request *req, struct policy_rng *rng,
                  const struct policy_index *ix, struct policy_session *s,
                  struct policy_result *res)
{
	bool free_req = unconstrained(req);
	struct lowest l;
	uint32_t got;

	res->verdict = 0;
	res->reason = POLICY_R_NONE;
	res->unmet = POLICY_UNMET_NONE;
	res->unmet_host = POLICY_NO_HOST;
	res->nprobe = 0;
	res->probe = NULL;
	res->probes = s->nsampled;
	res->load = -1;
	res->considered = 0;

	if (!answers_complete(s))
		return -POLICY_ERR_SESSION;
	if (req->on != POLICY_NO_HOST || req->near != POLICY_NO_HOST)
		return pinned(v, req, res);
	if (v->n == 0)
		return refused(res, POLICY_UNMET_HOSTS, POLICY_NO_HOST);

	switch (p->kind) {
	case POLICY_KIND_RANDOM:
		if (sample(v, req, free_req, -1, rng, s, 1) == 0)
			return refused(res, diagnose(v, req), POLICY_NO_HOST);
		got = s->host[--s->nsampled];
		return decided(res, got, POLICY_R_RANDOM, v->hosts[got].load, 1);

	case POLICY_KIND_LEAST_LOADED:
	case POLICY_KIND_JSQ:
		return lowest_of_all(v, req, free_req, rng, ix, res);

	case POLICY_KIND_POD:
		if (p->d < 1 || p->d > POLICY_MAX_D)
			return -POLICY_ERR_KIND;
		got = sample(v, req, free_req, -1, rng, s, p->d);
		if (got == 0)
			return refused(res, diagnose(v, req), POLICY_NO_HOST);
		lowest_start(&l);
		for (uint32_t i = 0; i < got; i++)
			lowest_offer(&l, rng, s->host[i], v->hosts[s->host[i]].load);
		s->nsampled = 0;   /* no probes: the session stays reusable */
		return decided(res, l.host, got == 1 && p->d > 1 ? POLICY_R_ONLY
		               : POLICY_R_LOWEST_SAMPLED, l.load, got);

	case POLICY_KIND_PROBE:
		if (p->d < 1 || p->d > POLICY_MAX_D)
			return -POLICY_ERR_KIND;
		if (s->phase == PHASE_START) {
			if (sample(v, req, free_req, -1, rng, s, p->d) == 0)
				return refused(res, diagnose(v, req), POLICY_NO_HOST);
			return ask(res, s, 0);
		}
		lowest_start(&l);
		got = 0;
		for (uint32_t i = 0; i < s->nsampled; i++) {
			if (s->load[i] < 0)
				continue;
			lowest_offer(&l, rng, s->host[i], s->load[i]);
			got++;
		}
		if (!got)
			return refused(res, POLICY_UNMET_NO_ANSWER, POLICY_NO_HOST);
		return decided(res, l.host, POLICY_R_LOWEST_PROBED, l.load, s->nsampled);

	case POLICY_KIND_THRESHOLD:
		if (p->lp < 1 || p->lp > POLICY_MAX_D || !(p->t > 0))
			return -POLICY_ERR_KIND;
		return decide_threshold(p, v, req, free_req, rng, s, res);
	}
	return -POLICY_ERR_KIND;
}

void policy_session_start(struct policy_session *s)
{
	s->phase = PHASE_START;
	s->nsampled = 0;
	s->nasked = 0;
	s->first_asked = 0;
}

static int answer(struct policy_session *s, uint32_t host, double load)
{
	if (s->phase != PHASE_ASKED)
		return -POLICY_ERR_SESSION;
	for (uint32_t i = s->first_asked; i < s->nsampled; i++) {
		if (s->host[i] == host && !s->answered[i]) {
			s->answered[i] = 1;
			s->load[i] = load;
			return 0;
		}
	}
	return -POLICY_ERR_SESSION;
}

int policy_answer(struct policy_session *s, uint32_t host, double load)
{
	if (!(load >= 0))
		return -POLICY_ERR_SESSION;
	return answer(s, host, load);
}

int policy_answer_lost(struct policy_session *s, uint32_t host)
{
	return answer(s, host, -1);
}

const char *policy_reason_str(enum policy_reason r)
{
	switch (r) {
	case POLICY_R_PINNED:           return "pinned by --on";
	case POLICY_R_NEAR:             return "placed with the --near process";
	case POLICY_R_ONLY:             return "the only eligible host";
	case POLICY_R_RANDOM:           return "drawn uniformly among the eligible hosts";
	case POLICY_R_LOWEST:           return "lowest load of all eligible hosts";
	case POLICY_R_LOWEST_SAMPLED:   return "lowest published load of the hosts sampled";
	case POLICY_R_LOWEST_PROBED:    return "lowest load among the hosts probed";
	case POLICY_R_LOCAL_BELOW_T:    return "local load below the threshold: kept local";
	case POLICY_R_REMOTE_BELOW_T:   return "local load at or above the threshold: first probed host below it";
	case POLICY_R_LOCAL_NONE_BELOW: return "no probed host below the threshold: kept local";
	case POLICY_R_ORIGIN_INELIGIBLE:return "the origin fails a constraint and no probed host was below the threshold: lowest answer";
	default:                        return "no decision";
	}
}

const char *policy_unmet_str(enum policy_unmet u)
{
	switch (u) {
	case POLICY_UNMET_NONE:     return "no unmet need";
	case POLICY_UNMET_HOSTS:    return "no host is known";
	case POLICY_UNMET_UP:       return "no host is up and accepting processes";
	case POLICY_UNMET_MEM:      return "no host has the memory asked for (mem=)";
	case POLICY_UNMET_CPUS:     return "no host has the CPUs asked for (cpus=)";
	case POLICY_UNMET_ARCH:     return "no host has the architecture asked for (arch=)";
	case POLICY_UNMET_FEATURES: return "no host has the CPU features asked for";
	case POLICY_UNMET_TAGS:     return "no host has the tags asked for (tag=)";
	case POLICY_UNMET_TOGETHER: return "each need is met by some host, but no host meets them all";
	case POLICY_UNMET_CONFLICT: return "--on and --near name different hosts";
	case POLICY_UNMET_NO_ANSWER:return "no probed host answered";
	default:                    return "unknown need";
	}
}

double policy_migration_min_age(double cost, double src_n, double dst_n)
{
	double gain = src_n - dst_n - 1;

	if (!(gain > 0))
		return INFINITY;
	return cost / gain;
}

bool policy_migration_pays(double age, double cost, double src_n, double dst_n)
{
	return age > policy_migration_min_age(cost, src_n, dst_n);
}
