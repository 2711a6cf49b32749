/*
 * One replication: hosts, arrivals, the policy, and the clock.
 *
 * The loop takes the earliest of three sources: the next arrival (one
 * Poisson stream of rate load * capacity, each arrival's origin uniform,
 * which is the superposition of the per-host streams; or the next trace
 * row), the earliest host completion (timer heap) and the earliest other
 * event (publication, probe replies, transfers, migrations).
 *
 * Each arrival asks policy_decide() with a host view the engine keeps as
 * roamd would see it: the view's loads are queue lengths, exact for jsq (and
 * for every policy when --publish is 0), else refreshed for all hosts every
 * P seconds (Mitzenmacher's periodic bulletin board: ages spread over 0..P).
 * Probes are answered with exact queue lengths, after --probe-delay when
 * that is not zero, during which the process waits at its origin, in no
 * queue. The same policy code, the same random stream discipline.
 *
 * Measuring: processes arriving after the warm-up fraction and up to --jobs
 * are measured; arrivals go on past --jobs until the last measured process
 * completes, so the end of the run does not empty the system early. Under
 * heavy-tailed work that could take a very long time (one huge process
 * keeps the run alive), so the extra arrivals stop after a tenth of the
 * run's length and the system then drains.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

/* A simulated host. The queue is a ring (FIFO) or a heap on tag (PS). */
struct shost {
	struct sjob *q;
	uint32_t head, n, cap;
	double speed;
	double vt, vlast;        /* PS: attained service per process, and when */
	double busy_since;
};

/* A decision parked while its probes travel. */
struct parked {
	struct policy_session s;
	struct sjob job;
	uint32_t next_free;
};

struct engine {
	const struct sim_config *cfg;
	struct sim_result *res;
	struct shost *h;
	struct policy_host *view;
	struct policy_view pview;
	struct policy_index ix;
	bool use_ix;
	bool exact_view;         /* the view follows every change */
	bool periodic;           /* the view is refreshed every P seconds */
	struct timer_heap timers;
	struct event_heap events;
	struct policy_rng wrng, prng;
	struct parked *parked;
	uint32_t nparked, parked_cap, parked_free;
	double now;
	uint64_t in_system, outstanding;
};

#define NO_SLOT UINT32_MAX

/* ---- host queues ---------------------------------------------------- */

static int queue_grow(struct shost *h)
{
	uint32_t cap = h->cap ? h->cap * 2 : 4;
	struct sjob *q = malloc(sizeof(*q) * cap);

	if (!q)
		return -ENOMEM;
	/* Unroll the ring (FIFO); a heap is already contiguous from 0. */
	for (uint32_t i = 0; i < h->n; i++)
		q[i] = h->q[(h->head + i) & (h->cap - 1)];
	free(h->q);
	h->q = q;
	h->head = 0;
	h->cap = cap;
	return 0;
}

static void ps_sift_up(struct shost *h, uint32_t i)
{
	struct sjob x = h->q[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (!(x.tag < h->q[p].tag))
			break;
		h->q[i] = h->q[p];
		i = p;
	}
	h->q[i] = x;
}

static void ps_sift_down(struct shost *h, uint32_t i)
{
	struct sjob x = h->q[i];

	for (;;) {
		uint32_t l = 2 * i + 1, m = l;

		if (l >= h->n)
			break;
		if (l + 1 < h->n && h->q[l + 1].tag < h->q[l].tag)
			m = l + 1;
		if (!(h->q[m].tag < x.tag))
			break;
		h->q[i] = h->q[m];
		i = m;
	}
	h->q[i] = x;
}

/* Brings a PS host's virtual time up to now. */
static inline void ps_advance(struct shost *h, double now)
{
	if (h->n)
		h->vt += (now - h->vlast) * h->speed / h->n;
	h->vlast = now;
}

static inline void ps_reschedule(struct engine *e, uint32_t host)
{
	struct shost *h = &e->h[host];
	double left;

	if (!h->n) {
		timer_heap_del(&e->timers, host);
		return;
	}
	left = h->q[0].tag - h->vt;
	if (left < 0)
		left = 0;
	timer_heap_set(&e->timers, host, e->now + left * h->n / h->speed);
}

/*
 * The load a host shows changed: keep the exact view and the index. An
 * exact view is not free in a real cluster: count one message per change
 * (the host telling whoever keeps the loads).
 */
static inline int load_changed(struct engine *e, uint32_t host, int up)
{
	if (e->exact_view) {
		e->res->messages++;
		e->view[host].load = e->h[host].n;
		if (e->use_ix) {
			if (up)
				return policy_index_inc(&e->ix, host);
			policy_index_dec(&e->ix, host);
		}
	}
	return 0;
}

static int enqueue(struct engine *e, uint32_t host, struct sjob job)
{
	struct shost *h = &e->h[host];

	if (h->n == h->cap && queue_grow(h) < 0)
		return -ENOMEM;
	if (e->cfg->disc == DISC_FIFO) {
		h->q[(h->head + h->n) & (h->cap - 1)] = job;
		if (h->n++ == 0) {
			h->busy_since = e->now;
			timer_heap_set(&e->timers, host, e->now + job.work / h->speed);
		}
	} else {
		ps_advance(h, e->now);
		if (h->n == 0)
			h->busy_since = e->now;
		job.tag = h->vt + job.tag;   /* tag held the work left */
		h->q[h->n++] = job;
		ps_sift_up(h, h->n - 1);
		ps_reschedule(e, host);
	}
	if (++e->in_system > e->res->peak_in_system)
		e->res->peak_in_system = e->in_system;
	return load_changed(e, host, 1);
}

static void complete(struct engine *e, const struct sjob *job)
{
	struct sim_result *r = e->res;

	e->in_system--;
	if (!(job->flags & SJOB_MEASURED))
		return;
	double t = e->now - job->arrive;

	r->measured++;
	r->sum_time += t;
	r->sum_slowdown += t / job->work;
	hist_add(r->hist, t);
	if (job->flags & SJOB_TRANSFERRED)
		r->transferred++;
	if (job->flags & SJOB_MIGRATED)
		r->migrated++;
	e->outstanding--;
}

static void host_done(struct engine *e, uint32_t host)
{
	struct shost *h = &e->h[host];
	struct sjob job;

	if (e->cfg->disc == DISC_FIFO) {
		job = h->q[h->head];
		h->head = (h->head + 1) & (h->cap - 1);
		if (--h->n)
			timer_heap_set(&e->timers, host, e->now + h->q[h->head].work / h->speed);
		else
			timer_heap_del(&e->timers, host);
	} else {
		ps_advance(h, e->now);
		job = h->q[0];
		h->q[0] = h->q[--h->n];
		if (h->n)
			ps_sift_down(h, 0);
		ps_reschedule(e, host);
	}
	if (!h->n)
		e->res->busy += (e->now - h->busy_since) * h->speed;
	complete(e, &job);
	load_changed(e, host, 0);
}

/* ---- decisions ------------------------------------------------------ */

static int schedule(struct engine *e, double t, enum sim_event_kind kind,
                    uint32_t host, uint32_t slot, const struct sjob *job)
{
	struct sim_event ev = { .t = t, .kind = kind, .host = host, .slot = slot };

	if (job)
		ev.job = *job;
	return event_heap_push(&e->events, &ev);
}

/* A decided process goes to its host, now or after the transfer delay. */
static int place(struct engine *e, struct sjob job, uint32_t host)
{
	if (host != job.origin) {
		job.flags |= SJOB_TRANSFERRED;
		e->res->messages++;
		if (e->cfg->transfer_delay > 0)
			return schedule(e, e->now + e->cfg->transfer_delay, EV_TRANSFER, host, 0, &job);
	}
	return enqueue(e, host, job);
}

static uint32_t park(struct engine *e, const struct policy_session *s, const struct sjob *job)
{
	uint32_t slot = e->parked_free;

	if (slot == NO_SLOT) {
		if (e->nparked == e->parked_cap) {
			uint32_t cap = e->parked_cap ? e->parked_cap * 2 : 16;
			struct parked *p = realloc(e->parked, sizeof(*p) * cap);

			if (!p)
				return NO_SLOT;
			e->parked = p;
			e->parked_cap = cap;
		}
		slot = e->nparked++;
	} else {
		e->parked_free = e->parked[slot].next_free;
	}
	e->parked[slot].s = *s;
	e->parked[slot].job = *job;
	return slot;
}

/*
 * Runs the policy conversation for job from session s until it decides or
 * must wait for probes. Probes are answered with exact queue lengths.
 */
static int converse(struct engine *e, struct policy_session *s, struct sjob job)
{
	struct policy_request req;
	struct policy_result res;
	int v;

	policy_request_init(&req, (int32_t)job.origin, e->h[job.origin].n);
	for (;;) {
		v = policy_decide(&e->cfg->policy, &e->pview, &req, &e->prng,
		                  e->use_ix ? &e->ix : NULL, s, &res);
		if (v == POLICY_DECIDED)
			return place(e, job, res.host);
		if (v != POLICY_PROBE)
			return -EINVAL;   /* no constraints here: a refusal is a bug */
		e->res->probes += res.nprobe;
		e->res->messages += 2 * res.nprobe;
		if (e->cfg->probe_delay > 0) {
			uint32_t slot = park(e, s, &job);

			if (slot == NO_SLOT)
				return -ENOMEM;
			return schedule(e, e->now + e->cfg->probe_delay, EV_PROBE_REPLY, 0, slot, NULL);
		}
		for (uint32_t i = 0; i < res.nprobe; i++)
			policy_answer(s, res.probe[i], e->h[res.probe[i]].n);
	}
}

static int probes_answered(struct engine *e, uint32_t slot)
{
	struct parked *p = &e->parked[slot];
	struct policy_session s = p->s;
	struct sjob job = p->job;

	p->next_free = e->parked_free;
	e->parked_free = slot;
	for (uint32_t i = s.first_asked; i < s.nsampled; i++)
		policy_answer(&s, s.host[i], e->h[s.host[i]].n);
	return converse(e, &s, job);
}

/* ---- publication and migration -------------------------------------- */

static int publish(struct engine *e)
{
	for (uint32_t i = 0; i < e->cfg->hosts; i++) {
		e->view[i].load = e->h[i].n;
		if (e->use_ix && policy_index_set(&e->ix, i, e->h[i].n) < 0)
			return -ENOMEM;
	}
	e->res->messages += e->cfg->hosts;
	return schedule(e, e->now + e->cfg->publish, EV_PUBLISH, 0, 0, NULL);
}

/*
 * Every host with two or more processes looks at its oldest one (the most
 * service attained, so by Harchol-Balter and Downey the longest expected
 * remaining life) and moves it if policy_migration_pays() says so, to the
 * host the location policy picks. PS only: age is attained service.
 */
static int migrate_sweep(struct engine *e)
{
	const struct sim_config *c = e->cfg;

	for (uint32_t host = 0; host < c->hosts; host++) {
		struct shost *h = &e->h[host];
		struct policy_request req;
		struct policy_result res;
		struct policy_session s;
		uint32_t oldest = 0, dst;
		double age = -1, cost;
		struct sjob job;
		int v;

		if (h->n < 2)
			continue;
		ps_advance(h, e->now);
		for (uint32_t i = 0; i < h->n; i++) {
			double a = h->q[i].work - (h->q[i].tag - h->vt);

			if (a > age)
				age = a, oldest = i;
		}
		cost = c->mig_cost * h->q[oldest].mem;
		if (age <= 0)
			continue;
		policy_request_init(&req, (int32_t)host, h->n);
		policy_session_start(&s);
		while ((v = policy_decide(&c->policy, &e->pview, &req, &e->prng,
		                          e->use_ix ? &e->ix : NULL, &s, &res)) == POLICY_PROBE) {
			e->res->probes += res.nprobe;
			e->res->messages += 2 * res.nprobe;
			for (uint32_t i = 0; i < res.nprobe; i++)
				policy_answer(&s, res.probe[i], e->h[res.probe[i]].n);
		}
		if (v != POLICY_DECIDED || res.host == host)
			continue;
		dst = res.host;
		if (!policy_migration_pays(age, cost, h->n, e->h[dst].n))
			continue;
		job = h->q[oldest];
		job.tag = job.tag - h->vt;       /* work left */
		if (job.tag < 0)
			job.tag = 0;
		job.flags |= SJOB_MIGRATED;
		h->q[oldest] = h->q[--h->n];
		if (oldest < h->n) {
			ps_sift_down(h, oldest);
			ps_sift_up(h, oldest);
		}
		ps_reschedule(e, host);
		e->in_system--;
		load_changed(e, host, 0);
		e->res->messages++;
		if (schedule(e, e->now + cost, EV_MIGRATED, dst, 0, &job) < 0)
			return -ENOMEM;
	}
	return schedule(e, e->now + c->mig_period, EV_MIGRATE_SWEEP, 0, 0, NULL);
}

static int dispatch(struct engine *e)
{
	struct sim_event ev;

	event_heap_pop(&e->events, &ev);
	switch (ev.kind) {
	case EV_PUBLISH:
		return publish(e);
	case EV_PROBE_REPLY:
		return probes_answered(e, ev.slot);
	case EV_TRANSFER:
	case EV_MIGRATED:
		return enqueue(e, ev.host, ev.job);
	case EV_MIGRATE_SWEEP:
		return migrate_sweep(e);
	}
	return -EINVAL;
}

/* ---- the run -------------------------------------------------------- */

static void engine_free(struct engine *e)
{
	if (e->h)
		for (uint32_t i = 0; i < e->cfg->hosts; i++)
			free(e->h[i].q);
	free(e->h);
	free(e->view);
	free(e->parked);
	if (e->use_ix)
		policy_index_free(&e->ix);
	timer_heap_free(&e->timers);
	event_heap_free(&e->events);
}

static int engine_init(struct engine *e, const struct sim_config *c, struct sim_result *res,
                       uint64_t work_seed, uint64_t policy_seed)
{
	enum policy_reads reads = policy_reads(&c->policy);
	double capacity = 0;

	memset(e, 0, sizeof(*e));
	e->cfg = c;
	e->res = res;
	e->parked_free = NO_SLOT;
	event_heap_init(&e->events);
	e->h = calloc(c->hosts, sizeof(*e->h));
	e->view = calloc(c->hosts, sizeof(*e->view));
	if (!e->h || !e->view || timer_heap_init(&e->timers, c->hosts) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->hosts; i++) {
		e->h[i].speed = c->nspeeds ? c->speeds[i % c->nspeeds] : 1.0;
		capacity += e->h[i].speed;
		e->view[i] = (struct policy_host){
			.id = i, .flags = POLICY_HOST_UP, .ncpus = 1,
			.arch = POLICY_ARCH_X86_64, .mem_free = UINT64_MAX,
		};
	}
	e->pview = (struct policy_view){ e->view, c->hosts };
	e->exact_view = reads == POLICY_READS_EXACT ||
	                (reads == POLICY_READS_PUBLISHED && c->publish <= 0);
	e->periodic = reads == POLICY_READS_PUBLISHED && c->publish > 0;
	e->use_ix = c->policy.kind == POLICY_KIND_JSQ || c->policy.kind == POLICY_KIND_LEAST_LOADED;
	if (e->use_ix && policy_index_init(&e->ix, c->hosts) < 0) {
		e->use_ix = false;
		return -ENOMEM;
	}
	policy_rng_seed(&e->wrng, work_seed);
	policy_rng_seed(&e->prng, policy_seed);
	res->capacity_time = capacity;   /* times sim_time at the end */
	return 0;
}

/*
 * Utilisation is measured up to now: the end of the run, or the moment the
 * arrivals stop (the drain that follows would only dilute it). Busy time
 * accrues when a host goes idle; hosts busy now add what they have so far.
 */
static void measure_busy(struct engine *e, struct sim_result *res)
{
	double capacity = 0, busy = res->busy;

	for (uint32_t i = 0; i < e->cfg->hosts; i++) {
		capacity += e->h[i].speed;
		if (e->h[i].n)
			busy += (e->now - e->h[i].busy_since) * e->h[i].speed;
	}
	res->busy_until_stop = busy;
	res->capacity_time = capacity * e->now;
}

int sim_run(const struct sim_config *c, uint64_t work_seed, uint64_t policy_seed,
            struct sim_result *res, const char **why)
{
	struct engine eng, *e = &eng;
	uint64_t total, warm, arrived = 0;
	double rate, next_arrival, capacity, stop_arrivals = __builtin_inf();
	bool measured_busy = false;
	int rc;

	*why = NULL;
	if (c->hosts == 0 || (c->migrate && c->disc != DISC_PS)) {
		*why = c->hosts == 0 ? "no hosts" : "preemptive migration needs --ps";
		return -EINVAL;
	}
	total = c->trace && c->trace->n < c->jobs ? c->trace->n : c->jobs;
	warm = (uint64_t)(c->warmup * (double)total);
	rc = engine_init(e, c, res, work_seed, policy_seed);
	if (rc < 0)
		goto out;
	capacity = res->capacity_time;
	rate = c->load * capacity;
	e->outstanding = total - warm;

	if (e->periodic && (rc = publish(e)) < 0)
		goto out;
	if (c->migrate && (rc = schedule(e, c->mig_period, EV_MIGRATE_SWEEP, 0, 0, NULL)) < 0)
		goto out;
	next_arrival = c->trace ? c->trace->rows[0].arrival
	                        : -log(policy_rng_unit_open0(&e->wrng)) / rate;

	while (e->outstanding > 0) {
		double tt = timer_heap_top_time(&e->timers);
		double te = event_heap_top_time(&e->events);

		if (next_arrival <= tt && next_arrival <= te) {
			struct policy_session s;
			struct sjob job;

			e->now = next_arrival;
			if (c->trace) {
				const struct trace_row *row = &c->trace->rows[arrived % c->trace->n];

				job.work = row->work;
				job.origin = row->origin;
				job.mem = (float)(c->trace->has_mem ? row->mem : c->mem);
			} else {
				job.origin = policy_rng_below(&e->wrng, c->hosts);
				job.work = work_draw(&c->work, &e->wrng);
				job.mem = (float)c->mem;
			}
			job.arrive = e->now;
			job.tag = job.work;
			job.flags = arrived >= warm && arrived < total ? SJOB_MEASURED : 0;
			arrived++;
			res->arrivals++;
			if (c->trace) {
				/* Past the trace's end, arrivals stop: what is measured
				 * has all arrived, and the system drains. */
				next_arrival = arrived < c->trace->n ? c->trace->rows[arrived].arrival
				                                     : __builtin_inf();
			} else {
				next_arrival = e->now - log(policy_rng_unit_open0(&e->wrng)) / rate;
			}
			if (arrived == total)
				stop_arrivals = e->now * 1.1;
			if (next_arrival > stop_arrivals)
				next_arrival = __builtin_inf();
			policy_session_start(&s);
			rc = converse(e, &s, job);
		} else if (tt <= te) {
			e->now = tt;
			host_done(e, e->timers.id[0]);
			rc = 0;
		} else {
			e->now = te;
			rc = dispatch(e);
		}
		res->events++;
		if (e->now >= stop_arrivals && !measured_busy) {
			measure_busy(e, res);
			measured_busy = true;
		}
		if (rc < 0) {
			*why = rc == -ENOMEM ? "out of memory" : "the policy refused a process";
			goto out;
		}
		if (isinf(e->now)) {
			*why = "the simulation stalled";
			rc = -EINVAL;
			goto out;
		}
	}
	if (!measured_busy)
		measure_busy(e, res);
	res->sim_time = e->now;
	rc = 0;
out:
	engine_free(e);
	return rc;
}
