/*
 * publish.c - making claimed records visible to consumers.
 */
#include "handle.h"

/* Fill a claimed record's meta entry (before publication, so relaxed: the
 * seq store that publishes it is a release). */
void ring_write_meta(struct shmring *r, uint64_t pos, uint32_t len, uint16_t flags)
{
	struct slot_meta *m = meta_at(r, pos);
	atomic_store_explicit(&m->len, len, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	atomic_store_explicit(&m->flags, flags, memory_order_relaxed);
}

/* Publish the record at pos.  seq_cst, not just release: it is N1 of the
 * eventcount protocol (eventcount.c), ordered before the read of waiters. */
void ring_publish(struct shmring *r, uint64_t pos)
{
	atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_COMMITTED),
	                      memory_order_seq_cst);
}

void ring_notify_consumers(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_empty);
}

/* Publish n consecutive records starting at pos.  Release stores, then one
 * seq_cst fence: the fence, not each store, orders the publications before
 * the notifier's read of waiters (C11 7.17.4: a load after a seq_cst fence
 * sees every seq_cst modification that precedes the fence). */
void ring_publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_COMMITTED),
		                      memory_order_release);
		pos += slots[i];
	}
	atomic_thread_fence(memory_order_seq_cst);
}
