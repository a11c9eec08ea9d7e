/*
 * publish.c - making claimed records visible to consumers: a batch at once.
 * (One record at a time: the inline ring_publish in handle.h.)
 */
#include "slot.h"

/* Publish n consecutive records starting at pos.  Release stores, then one
 * seq_cst fence: the fence, not each store, orders the publications before
 * the notifier's read of waiters (C11 7.17.4: a load after a seq_cst fence
 * sees every seq_cst modification that precedes the fence). */
void shmring__publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_COMMITTED),
		                      memory_order_release);
		pos += slots[i];
	}
	atomic_thread_fence(memory_order_seq_cst);
}
