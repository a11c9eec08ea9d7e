/*
 * latch.c - a futex counter in shared memory (latch, gate, barrier, join).
 *
 * count changes by CAS so that it can refuse to go below zero; the change
 * that makes it zero is N1 of the eventcount protocol (eventcount.c): it is
 * seq_cst, and the waiters' re-check is a seq_cst load of count.
 */
#include <errno.h>

#include "latch.h"

#define LATCH_SPIN 2000u

int shmring__latch_add(struct latch *l, int64_t delta, struct ec_stats stats)
{
	int64_t c = atomic_load_explicit(&l->count, memory_order_relaxed);
	do {
		/* c >= 0, so c + delta cannot overflow when delta < 0 (-delta
		 * would, for INT64_MIN).  Hostile bytes: the count lives in
		 * shared memory, so c < 0 is refused before that sum
		 * (INT64_MIN - 1 overflowed; fuzz_scribble). */
		if ((delta < 0 && (c < 0 || c + delta < 0)) || (delta > 0 && c > INT64_MAX - delta))
			return -ERANGE;
	} while (!atomic_compare_exchange_weak_explicit(&l->count, &c, c + delta,
	                                                memory_order_seq_cst,
	                                                memory_order_relaxed));
	if (c + delta == 0 && delta != 0)
		ec_wake(&l->ec, stats);
	return 0;
}

bool shmring__latch_is_open(const void *arg)
{
	const struct latch *l = arg;
	return atomic_load_explicit(&l->count, memory_order_seq_cst) == 0;
}

static int latch_wait(struct latch *l, int64_t timeout_ns, unsigned spin, struct ec_stats stats)
{
	struct waiter w;
	waiter_init(&w, timeout_ns, spin, stats);
	while (!shmring__latch_is_open(l)) {
		int rc = shmring__ec_block(&l->ec, shmring__latch_is_open, l, &w);
		if (rc)
			return rc;
	}
	return 0;
}

static struct latch *impl(struct shmring_latch *latch)
{
	return (struct latch *)latch;
}

static const struct ec_stats no_stats = { NULL, NULL };

int shmring_latch_init(struct shmring_latch *latch, int64_t count)
{
	if (!latch || count < 0)
		return -EINVAL;
	atomic_init(&impl(latch)->count, count);
	atomic_init(&impl(latch)->ec.word, 0);
	return 0;
}

int shmring_latch_add(struct shmring_latch *latch, int64_t delta)
{
	return latch ? shmring__latch_add(impl(latch), delta, no_stats) : -EINVAL;
}

int shmring_latch_arrive(struct shmring_latch *latch)
{
	return shmring_latch_add(latch, -1);
}

int shmring_latch_wait(struct shmring_latch *latch, int64_t timeout_ns)
{
	return latch ? latch_wait(impl(latch), timeout_ns, LATCH_SPIN, no_stats) : -EINVAL;
}

int shmring_latch_arrive_and_wait(struct shmring_latch *latch, int64_t timeout_ns)
{
	int rc = shmring_latch_arrive(latch);
	return rc ? rc : shmring_latch_wait(latch, timeout_ns);
}

int64_t shmring_latch_count(const struct shmring_latch *latch)
{
	if (!latch)
		return -EINVAL;
	return atomic_load_explicit(&((const struct latch *)latch)->count, memory_order_acquire);
}
