/*
 * slot.c - the batch forms of publish and release (one record at a time:
 * ring_publish and ring_release in slot.h).
 *
 * Release stores, then one fence_notifier (fence.h): the fence, not each
 * store, orders them before the notifier's read of waiters (N1 before N2 of
 * the eventcount protocol).  On a light ring a compiler barrier, the
 * waiters' membarrier doing the rest; else a seq_cst fence (C11 7.17.4: a
 * load after a seq_cst fence sees every seq_cst modification that precedes
 * the fence).  One fence per batch instead of one per record.
 */
#include "slot.h"

void shmring__publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n,
                           struct op_rec *c)
{
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		atomic_store_explicit(&meta_at(r, pos + at)->seq, SLOT_SEQ(pos + at, SLOT_COMMITTED),
		                      memory_order_release);
		at += slots[i];
		/* (a plain store on the op record's own line) */
		atomic_store_explicit(&c->progress, OPREC_PROGRESS(i + 1, at), memory_order_release);
	}
	fence_notifier(r->light);
}

/* Last record first: free_tail advances in order over RELEASED records, so
 * while the run's first record is taken it cannot pass any record of the
 * run, and a consumer killed inside this loop leaves its run whole, none
 * of it reused, for the sweep's walk from the run's start.  In order, a
 * kill left a released prefix that producers reused at once and the walk
 * stopped there, the record still taken never released (docs/perf.md,
 * "ABI 2 (inline headers): a hypothesis for the stall under `--kill`";
 * recover.c walk_floor copes with that state too).  The release store of
 * run[0], the last, is what a reclaim's acquire load of its seq pairs with:
 * it sees the others released. */
void shmring__release_many(struct shmring *r, const struct take *run, size_t n)
{
	for (size_t i = n; i-- > 0;)
		atomic_store_explicit(&meta_at(r, run[i].pos)->seq, SLOT_SEQ(run[i].pos, SLOT_RELEASED),
		                      memory_order_release);
	fence_notifier(r->light);
}
