/* Statistics: percentiles from the histogram, confidence intervals. */
#include <math.h>

#include "sim/sim.h"

void hist_merge(struct hist *into, const struct hist *from)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
}

/* The value at the middle (geometric) of bucket i. */
static double bucket_mid(uint32_t i)
{
	int e = (int)(i >> HIST_SUB_BITS) + HIST_MIN_EXP;
	double sub = (double)(i & ((1u << HIST_SUB_BITS) - 1));
	double lo = ldexp(1 + sub / (1 << HIST_SUB_BITS), e);
	double hi = ldexp(1 + (sub + 1) / (1 << HIST_SUB_BITS), e);

	return sqrt(lo * hi);
}

double hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return NAN;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			return bucket_mid(i);
	}
	return bucket_mid(HIST_BUCKETS - 1);
}

double t95(unsigned df)
{
	static const double t[] = {
		NAN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
		2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093,
		2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
	};
	if (df < sizeof(t) / sizeof(t[0]))
		return t[df];
	return df < 60 ? 2.000 : df < 120 ? 1.980 : 1.960;
}
