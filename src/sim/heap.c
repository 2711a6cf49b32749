/*
 * Event queues. Host completions live in an indexed 4-ary heap (one slot
 * per host, so its size is bounded by the hosts and a processor-sharing
 * host can move its timer in place); every other event in a plain binary
 * heap ordered by (time, insertion number), so equal times leave in the
 * order they were scheduled and a run is reproducible.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

#define NONE UINT32_MAX

/*
 * Keys and hosts are kept in separate arrays, and the keys shifted by three
 * slots in a 64-byte aligned block, so that the four children of a node
 * (4k+1 .. 4k+4) are one aligned 32-byte group: the sift-down that every
 * completion pays reads one cache line per level, and picks the least child
 * without branches. Ties between equal times leave in whatever order the
 * heap has, which is itself deterministic, so runs stay reproducible.
 */
int timer_heap_init(struct timer_heap *h, uint32_t nhosts)
{
	size_t slots = (size_t)nhosts + 8;

	h->n = 0;
	h->keybase = aligned_alloc(64, ((slots * sizeof(double) + 63) / 64) * 64);
	h->id = malloc(sizeof(*h->id) * (nhosts ? nhosts : 1));
	h->pos = malloc(sizeof(*h->pos) * (nhosts ? nhosts : 1));
	if (!h->keybase || !h->id || !h->pos) {
		timer_heap_free(h);
		return -ENOMEM;
	}
	h->key = h->keybase + 3;
	memset(h->pos, 0xff, sizeof(*h->pos) * nhosts);
	return 0;
}

void timer_heap_free(struct timer_heap *h)
{
	free(h->keybase);
	free(h->id);
	free(h->pos);
	h->keybase = h->key = NULL;
	h->id = h->pos = NULL;
	h->n = 0;
}

static void sift_up(struct timer_heap *h, uint32_t i, double t, uint32_t host)
{
	while (i > 0) {
		uint32_t p = (i - 1) >> 2;

		if (!(t < h->key[p]))
			break;
		h->key[i] = h->key[p];
		h->id[i] = h->id[p];
		h->pos[h->id[i]] = i;
		i = p;
	}
	h->key[i] = t;
	h->id[i] = host;
	h->pos[host] = i;
}

static void sift_down(struct timer_heap *h, uint32_t i, double t, uint32_t host)
{
	const double *k = h->key;
	uint32_t n = h->n;

	for (;;) {
		uint32_t c = (i << 2) + 1, best;
		double bv;

		if (c + 3 < n) {
			/* Arithmetic, not branches: these comparisons are coin
			 * flips that a branch predictor cannot learn. */
			uint32_t m01 = c + (uint32_t)(k[c + 1] < k[c]);
			uint32_t m23 = c + 2 + (uint32_t)(k[c + 3] < k[c + 2]);
			uint32_t take23 = -(uint32_t)(k[m23] < k[m01]);

			best = m01 ^ ((m01 ^ m23) & take23);
		} else if (c < n) {
			best = c;
			for (uint32_t j = c + 1; j < n; j++)
				if (k[j] < k[best])
					best = j;
		} else {
			break;
		}
		bv = k[best];
		if (!(bv < t))
			break;
		h->key[i] = bv;
		h->id[i] = h->id[best];
		h->pos[h->id[i]] = i;
		i = best;
	}
	h->key[i] = t;
	h->id[i] = host;
	h->pos[host] = i;
}

void timer_heap_set(struct timer_heap *h, uint32_t host, double t)
{
	uint32_t i = h->pos[host];

	if (i == NONE)
		sift_up(h, h->n++, t, host);
	else if (t < h->key[i])
		sift_up(h, i, t, host);
	else
		sift_down(h, i, t, host);
}

void timer_heap_del(struct timer_heap *h, uint32_t host)
{
	uint32_t i = h->pos[host], last;

	if (i == NONE)
		return;
	h->pos[host] = NONE;
	last = --h->n;
	if (last == i)
		return;
	if (i > 0 && h->key[last] < h->key[(i - 1) >> 2])
		sift_up(h, i, h->key[last], h->id[last]);
	else
		sift_down(h, i, h->key[last], h->id[last]);
}

void event_heap_init(struct event_heap *h)
{
	memset(h, 0, sizeof(*h));
}

void event_heap_free(struct event_heap *h)
{
	free(h->a);
	memset(h, 0, sizeof(*h));
}

static inline int ev_before(const struct sim_event *x, const struct sim_event *y)
{
	return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

int event_heap_push(struct event_heap *h, const struct sim_event *e)
{
	uint32_t i;

	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct sim_event *a = realloc(h->a, sizeof(*a) * cap);

		if (!a)
			return -ENOMEM;
		h->a = a;
		h->cap = cap;
	}
	i = h->n++;
	h->a[i] = *e;
	h->a[i].seq = h->seq++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		struct sim_event tmp;

		if (!ev_before(&h->a[i], &h->a[p]))
			break;
		tmp = h->a[i];
		h->a[i] = h->a[p];
		h->a[p] = tmp;
		i = p;
	}
	return 0;
}

void event_heap_pop(struct event_heap *h, struct sim_event *out)
{
	uint32_t i = 0;

	*out = h->a[0];
	h->a[0] = h->a[--h->n];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		struct sim_event tmp;

		if (l < h->n && ev_before(&h->a[l], &h->a[m]))
			m = l;
		if (r < h->n && ev_before(&h->a[r], &h->a[m]))
			m = r;
		if (m == i)
			break;
		tmp = h->a[i];
		h->a[i] = h->a[m];
		h->a[m] = tmp;
		i = m;
	}
}
