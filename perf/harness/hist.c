/*
 * hist.c - a log-bucketed histogram of nanoseconds (HdrHistogram's idea with
 * 32 sub-buckets per power of two): constant-time adds, fixed size (15 KiB,
 * so it can live in shared memory), quantiles to within 3%.
 */
#include "harness.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
}

void hist_merge(struct hist *into, const struct hist *from)
{
	if (!from->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	if (!into->count || from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->count += from->count;
	into->sum += from->sum;
}

/* The largest value that falls in bucket i. */
static double bucket_high(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned k = i / HIST_SUB + HIST_SUB_BITS - 1, sub = i % HIST_SUB;
	double width = (double)(UINT64_C(1) << (k - HIST_SUB_BITS));
	return (double)(HIST_SUB + sub) * width + width - 1;
}

double hist_quantile(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	if (q <= 0)
		return (double)h->min;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			double v = bucket_high(i);
			return v > (double)h->max ? (double)h->max : v;
		}
	}
	return (double)h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0;
}

void hist_walk(const struct hist *h, void (*fn)(double v, double frac, void *arg), void *arg)
{
	uint64_t seen = 0;

	if (!h->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		if (!h->b[i])
			continue;
		seen += h->b[i];
		double v = bucket_high(i);
		fn(v > (double)h->max ? (double)h->max : v, (double)seen / (double)h->count, arg);
	}
}
