/*
 * The incremental index behind least-loaded and jsq at scale.
 *
 * Hosts sit in order[] sorted by level; start[l] is the first place whose
 * level is >= l (start[0] = 0, and levels past the table end at n). The
 * hosts of level l are order[start[l] .. start[l+1]). Raising a host from l
 * to l+1 swaps it with the last host of its level and moves the boundary
 * start[l+1] down by one; lowering it swaps it with the first host of its
 * level and moves start[l] up. Both are O(1), and the lowest level is
 * always the range order[0 .. start[min+1]).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define INITIAL_LEVELS 64

int policy_index_init(struct policy_index *ix, uint32_t n)
{
	memset(ix, 0, sizeof(*ix));
	ix->order = malloc(sizeof(uint32_t) * (n ? n : 1));
	ix->pos = malloc(sizeof(uint32_t) * (n ? n : 1));
	ix->level = calloc(n ? n : 1, sizeof(uint32_t));
	ix->start = malloc(sizeof(uint32_t) * (INITIAL_LEVELS + 1));
	if (!ix->order || !ix->pos || !ix->level || !ix->start) {
		policy_index_free(ix);
		return -ENOMEM;
	}
	ix->n = n;
	ix->nlevels = INITIAL_LEVELS;
	for (uint32_t i = 0; i < n; i++)
		ix->order[i] = ix->pos[i] = i;
	ix->start[0] = 0;
	for (uint32_t l = 1; l <= INITIAL_LEVELS; l++)
		ix->start[l] = n;
	return 0;
}

void policy_index_free(struct policy_index *ix)
{
	free(ix->order);
	free(ix->pos);
	free(ix->level);
	free(ix->start);
	memset(ix, 0, sizeof(*ix));
}

static inline void swap_places(struct policy_index *ix, uint32_t a, uint32_t b)
{
	uint32_t ha = ix->order[a], hb = ix->order[b];

	ix->order[a] = hb;
	ix->order[b] = ha;
	ix->pos[hb] = a;
	ix->pos[ha] = b;
}

int policy_index_inc(struct policy_index *ix, uint32_t host)
{
	uint32_t l = ix->level[host], last;

	if (l + 1 >= ix->nlevels) {   /* start[l + 2] must exist */
		uint32_t grow = ix->nlevels * 2;
		uint32_t *s = realloc(ix->start, sizeof(uint32_t) * (grow + 1));

		if (!s)
			return -ENOMEM;
		for (uint32_t k = ix->nlevels + 1; k <= grow; k++)
			s[k] = ix->n;
		ix->start = s;
		ix->nlevels = grow;
	}
	last = ix->start[l + 1] - 1;
	swap_places(ix, ix->pos[host], last);
	ix->start[l + 1]--;
	ix->level[host] = l + 1;
	return 0;
}

void policy_index_dec(struct policy_index *ix, uint32_t host)
{
	uint32_t l = ix->level[host], first;

	if (l == 0)
		return;
	first = ix->start[l];
	swap_places(ix, ix->pos[host], first);
	ix->start[l]++;
	ix->level[host] = l - 1;
}

int policy_index_set(struct policy_index *ix, uint32_t host, uint32_t level)
{
	while (ix->level[host] < level)
		if (policy_index_inc(ix, host) < 0)
			return -ENOMEM;
	while (ix->level[host] > level)
		policy_index_dec(ix, host);
	return 0;
}
