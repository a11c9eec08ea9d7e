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

#include "attempt.h"

uint64_t shmring__reclaim_free_tail(struct shmring *r)
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

/* A consumer that has just released the record (or run) at pos, with
 * free_tail standing there, moves free_tail over it and over the released
 * records after it, up to cons_head (no record at or past it has been taken:
 * nothing to read there, and the line the producers are writing).  Issue 12:
 * without it free_tail moved only when a producer ran out of room by its
 * hint, in a walk over every record released since, the whole lap at once:
 * a put took 0.2-0.5 ms once every 65536 records of a 4 MiB ring (64-byte
 * records), ten times that on a 64 MiB one.  An optimisation only: the
 * producers' reclaim above still walks over whatever this leaves (a consumer
 * that dies before it; two releasers that each find free_tail elsewhere),
 * and a lost CAS here means someone else moved it.  The walk's acquire loads
 * of seq pair with the other consumers' releases (their reads of the
 * payloads happen before); the CAS releases that on to the producers'
 * acquire load of free_tail (reclaim above). */
void shmring__free_tail_follow(struct shmring *r, uint64_t pos)
{
	struct ring_header *hdr = r->hdr;
	if (ring_is_bcast(r)) /* issue 13: free_tail mirrors the frontier there */
		return;
	uint64_t end = atomic_load_explicit(&hdr->cons_head, memory_order_relaxed);
	struct slot_walk w = slot_walk_from(r, pos, end, SLOT_RELEASED, memory_order_acquire);
	struct record rec;
	while (slot_walk_look(&w, &rec))
		slot_walk_step(&w, &rec);
	if (w.pos != pos)
		atomic_compare_exchange_strong_explicit(&hdr->free_tail, &pos, w.pos,
		                                        memory_order_release, memory_order_relaxed);
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
	uint64_t f = shmring__reclaim_free_tail(r);
	return (int64_t)(h - f) < 0 || h + slots - f <= r->nslots ||
	       (ring_overwrites(r) && shmring__overwrite_possible(r, f)); /* issue 13 */
}

int shmring__slots_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken, uint64_t *pos,
               int64_t timeout_ns, struct op_rec *c)
{
	struct waiter w;
	bool waiting = false; /* w made on the first miss: a claim that succeeds at once never needs it */
	struct room_need need = { r, slots[0] };
	for (;;) {
		struct slot_ref at;
		int rc = try_slots_claim(r, slots, n, taken, &at, c, false);
		if (rc != -EAGAIN) {
			if (rc)
				op_rec_clear(c);
			else
				*pos = at.pos; /* (set by the attempt only when it claims) */
			return rc;
		}
		op_rec_clear(c);
		/* issue 13: SHMRING_OVERWRITE discards the oldest record instead */
		if (ring_overwrites(r) && shmring__overwrite_oldest(r, c))
			continue;
		if (timeout_ns == 0) { /* a poll: no waiter; ec_block's -EAGAIN */
			ring_sweep_if_stalled(r, STALL_CLAIM,
			                      atomic_load_explicit(&r->cached_free, memory_order_relaxed));
			return -EAGAIN;
		}
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
