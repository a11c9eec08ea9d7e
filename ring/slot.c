/*
 * slot.c - the batch forms of publish and release (one record at a time:
 * ring_publish and ring_release in slot.h).
 *
 * Release stores, then one seq_cst fence: the fence, not each store, orders
 * them before the notifier's read of waiters (N1 before N2 of the eventcount
 * protocol; C11 7.17.4: a load after a seq_cst fence sees every seq_cst
 * modification that precedes the fence).  One fence per batch instead of one
 * xchg per record.
 */
#include "slot.h"

void shmring__publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_COMMITTED),
		                      memory_order_release);
		pos += slots[i];
	}
	atomic_thread_fence(memory_order_seq_cst);
}

void shmring__release_many(struct shmring *r, const struct take *run, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&meta_at(r, run[i].pos)->seq, SLOT_SEQ(run[i].pos, SLOT_RELEASED),
		                      memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
}
