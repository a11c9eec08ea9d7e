/*
 * claim.c - claim records, one per operation in flight.
 *
 * Before the CAS that claims slots (a put, a reserve, a batch) or takes
 * records (a get, a peek, a batch), the caller announces it in a claim
 * record of its own attachment entry: position, kind, extent.  It clears the
 * record when the claim is published or released.  A record is what lets a
 * sweep finish the claims of a process that died in the middle (recover.c).
 * Records are handed out per operation from the entry's bitmap: a line only
 * this process writes, so the CAS is uncontended unless its threads race.
 */
#include <errno.h>

#include "handle.h"

int claim_acquire(struct shmring *r, struct claim_rec **out)
{
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	if (slot < 0)
		return -EUSERS;
	struct attach_entry *e = &r->hdr->attach[slot];
	uint64_t busy = atomic_load_explicit(&e->claim_busy, memory_order_relaxed);
	for (;;) {
		if (~busy == 0) /* CLAIM_RECS operations in flight on this handle */
			return -ENOBUFS;
		unsigned i = (unsigned)__builtin_ctzll(~busy);
		if (atomic_compare_exchange_weak_explicit(&e->claim_busy, &busy, busy | (UINT64_C(1) << i),
		                                          memory_order_acquire,
		                                          memory_order_relaxed)) {
			*out = &r->hdr->claims[slot][i];
			return 0;
		}
	}
}

void claim_release(struct shmring *r, struct claim_rec *c)
{
	size_t n = (size_t)(c - &r->hdr->claims[0][0]);
	atomic_store_explicit(&c->word, 0, memory_order_release);
	atomic_fetch_and_explicit(&r->hdr->attach[n / CLAIM_RECS].claim_busy,
	                          ~(UINT64_C(1) << (n % CLAIM_RECS)), memory_order_release);
}

/* A fresh entry (claimed, or converted after fork) starts with no claims. */
void claim_reset_entry(struct ring_header *hdr, int slot)
{
	for (int i = 0; i < CLAIM_RECS; i++) {
		atomic_store_explicit(&hdr->claims[slot][i].word, 0, memory_order_relaxed);
		atomic_store_explicit(&hdr->claims[slot][i].extent, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&hdr->attach[slot].claim_busy, 0, memory_order_relaxed);
	atomic_store_explicit(&hdr->attach[slot].got, 0, memory_order_relaxed);
	atomic_store_explicit(&hdr->attach[slot].done, 0, memory_order_relaxed);
}
