/*
 * space.c - claiming room for records (producer side).
 *
 * A producer may take slots [h, h + k) when h + k - free_tail <= nslots: every
 * record of the previous lap in those slots has been released.  Claims are a
 * single CAS on prod_head, for one record or for a whole batch.
 *
 * free_tail is advanced in order, over released records, by whichever
 * producer runs short of room (helping): consumers release out of order and
 * never wait for each other.
 */
#include <errno.h>

#include "queue.h"
#include "bcast.h" /* issue 13 hooks */

/* Advance free_tail over released records; return the new value. */
static uint64_t reclaim_free_tail(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	if (ring_is_bcast(r)) /* issue 13: the broadcast frontier instead */
		return shmring__bcast_reclaim(r);
	/* acquire: pairs with the release CAS below by another producer, so the
	 * consumers' reads of what we are about to overwrite happen before it. */
	uint64_t start = atomic_load_explicit(&hdr->free_tail, memory_order_acquire);
	for (;;) {
		/* seq_cst: W2 of the eventcount protocol on not_full, paired
		 * with a consumer's release (N1, ring_release) and its read of
		 * the waiters (N2); acquire at least, so that the consumers'
		 * reads of what we are about to overwrite happen before it.  A
		 * corrupt length stops the walk: the consumer reports it. */
		struct slot_walk w = slot_walk_from(r, start, UINT64_MAX, SLOT_RELEASED,
		                                    memory_order_seq_cst);
		struct record rec;
		while (slot_walk_look(&w, &rec))
			slot_walk_step(&w, &rec);
		uint64_t f = w.pos;
		if (f == start)
			break;
		/* release: hands the consumers' happens-before on to the next
		 * producer that reads free_tail with acquire. */
		if (atomic_compare_exchange_strong_explicit(&hdr->free_tail, &start, f,
		                                            memory_order_acq_rel,
		                                            memory_order_acquire)) {
			start = f;
			break;
		}
		/* someone else advanced it: start over from their value */
	}
	atomic_store_explicit(&r->cached_free, start, memory_order_release);
	return start;
}

struct room_need {
	struct shmring *r;
	uint64_t slots;
};

static bool room_ready(const void *arg)
{
	const struct room_need *need = arg;
	return shmring__has_room(need->r, need->slots);
}

bool shmring__has_room(struct shmring *r, uint64_t slots)
{
	if (atomic_load_explicit(&r->hdr->closed, memory_order_seq_cst) ||
	    ring_broken(r, atomic_load_explicit(&r->hdr->census, memory_order_seq_cst)))
		return true;
	uint64_t h = atomic_load_explicit(&r->hdr->prod_head, memory_order_seq_cst);
	uint64_t f = reclaim_free_tail(r);
	return (int64_t)(h - f) < 0 || h + slots - f <= r->nslots ||
	       (ring_overwrites(r) && shmring__overwrite_possible(r, f)); /* issue 13 */
}

/* One attempt: claim slots for records 0..*taken of n (as many as fit, at
 * least the first), or -EAGAIN if not even the first fits, -EPIPE if closed. */
static inline __attribute__((always_inline)) int
try_slots_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken, uint64_t *pos,
                struct op_rec *c)
{
	struct ring_header *hdr = r->hdr;
	if (ring_broken(r, atomic_load_explicit(&hdr->census, memory_order_acquire)))
		return -EPIPE; /* every consumer has gone */
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_relaxed);
	for (;;) {
		if (h & RING_CLOSED)
			return -EPIPE;
		uint64_t f = atomic_load_explicit(&r->cached_free, memory_order_acquire);
		if ((int64_t)(h - f) < 0) { /* h is older than our hint: reload */
			uint64_t h2 = atomic_load_explicit(&hdr->prod_head, memory_order_relaxed);
			/* Hostile bytes: free_tail never passes prod_head (the
			 * hint's chain of acquires orders the CAS that moved
			 * prod_head past it before this load), so a prod_head
			 * that has not moved is corrupt, not stale.  Without
			 * this the loop would spin forever (fuzz_scribble). */
			if (h2 == h)
				return -EBADMSG;
			h = h2;
			continue;
		}
		if (h + slots[0] - f > r->nslots) {
			f = reclaim_free_tail(r);
			if ((int64_t)(h - f) < 0) {
				h = atomic_load_explicit(&hdr->prod_head, memory_order_relaxed);
				continue;
			}
			if (h + slots[0] - f > r->nslots)
				return -EAGAIN;
		}
		uint64_t room = r->nslots - (h - f), want = 0;
		size_t k = 0;
		while (k < n && want + slots[k] <= room)
			want += slots[k++];
		op_rec_announce(c, h, OPREC_PRODUCE, want, k);
		/* acq_rel on success: release, so a sweep that sees the claim
		 * sees its announcement; acquire, so our writes to the claimed
		 * slots stay after it (the room itself was proven by the acquire
		 * of free_tail above). */
		if (atomic_compare_exchange_weak_explicit(&hdr->prod_head, &h, h + want,
		                                          memory_order_acq_rel,
		                                          memory_order_relaxed)) {
			/* The lines the record's stores need, on their way
			 * during the task count (slot.h, prefetch_for_write). */
			prefetch_for_write(meta_at(r, h));
			prefetch_for_write(data_at(r, h));
			*pos = h;
			*taken = k;
			return 0;
		}
	}
}

int shmring__slots_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken, uint64_t *pos,
               int64_t timeout_ns, struct op_rec *c)
{
	struct waiter w;
	bool waiting = false; /* w made on the first miss: a claim that succeeds at once never needs it */
	struct room_need need = { r, slots[0] };
	for (;;) {
		int rc = try_slots_claim(r, slots, n, taken, pos, c);
		if (rc != -EAGAIN) {
			if (rc)
				op_rec_clear(c);
			return rc;
		}
		op_rec_clear(c);
		/* issue 13: SHMRING_OVERWRITE discards the oldest record instead */
		if (ring_overwrites(r) && shmring__overwrite_oldest(r, c))
			continue;
		if (!waiting) {
			ring_waiter_init(r, &w, timeout_ns);
			waiting = true;
		}
		rc = shmring__ec_block(&r->hdr->not_full, room_ready, &need, &w);
		ring_sweep_after_wait(r, rc, &w, STALL_CLAIM,
		                      atomic_load_explicit(&r->cached_free, memory_order_relaxed));
		if (rc)
			return rc;
	}
}

int shmring__slot_claim_one(struct shmring *r, uint32_t slots, uint64_t *pos, int64_t timeout_ns,
                            struct op_rec *c)
{
	/* One attempt, compiled for one record (no batch loop, no waiter);
	 * anything but "no room" ends here. */
	size_t taken;
	int rc = try_slots_claim(r, &slots, 1, &taken, pos, c);
	if (__builtin_expect(rc != -EAGAIN, 1)) {
		if (rc)
			op_rec_clear(c);
		return rc;
	}
	op_rec_clear(c);
	return shmring__slots_claim(r, &slots, 1, &taken, pos, timeout_ns, c);
}
