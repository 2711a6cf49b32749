/*
 * The random-number state every policy decision is given explicitly.
 *
 * xoshiro256** (Blackman and Vigna), seeded through splitmix64 so that any
 * 64-bit seed, 0 included, gives a good state. The generator is a plain
 * struct the caller owns: roamd keeps one per daemon, roam-sim one per
 * replication, a unit test one per case. Nothing here is global, so the same
 * seed always gives the same decisions.
 *
 * The functions are inline because roam-sim draws several numbers per
 * simulated event and must run at tens of millions of events per second.
 */
#ifndef ROAM_POLICY_RNG_H
#define ROAM_POLICY_RNG_H

#include <stdint.h>

struct policy_rng {
	uint64_t s[4];
};

/* One step of splitmix64: used for seeding and for deriving the seeds of
 * independent streams (replications, hosts) from one user seed. */
static inline uint64_t policy_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Seeds the state from one 64-bit number. Never leaves the all-zero state. */
static inline void policy_rng_seed(struct policy_rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = policy_splitmix64(&x);
}

static inline uint64_t policy_rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* The next 64 uniformly distributed bits. */
static inline uint64_t policy_rng_next(struct policy_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = policy_rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = policy_rng_rotl(s[3], 45);
	return result;
}

/*
 * A uniform integer in [0, n), n > 0, without modulo bias (Lemire's
 * multiply-and-reject: the division runs only in the rare rejection case).
 */
static inline uint32_t policy_rng_below(struct policy_rng *r, uint32_t n)
{
	uint64_t m = (policy_rng_next(r) >> 32) * (uint64_t)n;
	uint32_t low = (uint32_t)m;

	if (low < n) {
		uint32_t floor = (uint32_t)(-n) % n;

		while (low < floor) {
			m = (policy_rng_next(r) >> 32) * (uint64_t)n;
			low = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

/* A uniform double in [0, 1), 53 random bits. */
static inline double policy_rng_unit(struct policy_rng *r)
{
	return (double)(policy_rng_next(r) >> 11) * 0x1.0p-53;
}

/* A uniform double in (0, 1]: safe to pass to log(). */
static inline double policy_rng_unit_open0(struct policy_rng *r)
{
	return ((double)(policy_rng_next(r) >> 11) + 1.0) * 0x1.0p-53;
}

#endif /* ROAM_POLICY_RNG_H */
