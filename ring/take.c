/*
 * take.c - claiming records (consumer side).
 *
 * The record at cons_head is ready when its first slot's seq reads
 * COMMITTED(cons_head).  A consumer reads the length of that record, and of
 * those after it for a batch, then takes them all with one CAS of cons_head
 * past their slots; only then does it touch the payload.  It releases each
 * record (seq = RELEASED(pos)) when done with it; producers reclaim the room.
 */
#include <errno.h>

#include "attempt.h"


bool shmring__readable(const void *arg)
{
	const struct shmring *r = arg;
	if (ring_is_bcast(r)) /* issue 13: this subscriber's stream */
		return shmring__bcast_readable(r);
	struct ring_header *hdr = r->hdr;
	/* redeliver hook: a parked record is waiting (redeliver.c) */
	if (r->redeliver && shmring__redeliver_ready(r))
		return true;
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_seq_cst);
	/* seq_cst: W2 of the eventcount protocol (eventcount.c). */
	if (atomic_load_explicit(&meta_at(r, t)->seq, memory_order_seq_cst) ==
	    SLOT_SEQ(t, SLOT_COMMITTED))
		return true;
	struct ring_geom g = ring_geom(r);
	prefetch_next_payload(&g, t);
	/* If another consumer took (and released) the record at t meanwhile,
	 * seq[t] says nothing about the next record, which may have been
	 * published before we registered and so woke nobody: cons_head moved,
	 * so report ready and let the caller look again.  (Found by the spin
	 * model, model/ring.pml: without this the sleeper waits for the 50 ms
	 * re-check.) */
	if (atomic_load_explicit(&hdr->cons_head, memory_order_seq_cst) != t)
		return true;
	/* hdr->closed and the census first, prod_head only if they say the
	 * stream may have ended: polling prod_head would pull the line every
	 * producer writes away from them while we spin. */
	if (!atomic_load_explicit(&hdr->closed, memory_order_seq_cst) &&
	    !ring_eof(r, atomic_load_explicit(&hdr->census, memory_order_seq_cst)))
		return false;
	/* Ended, and empty?  (Not if a claimed record is still being written;
	 * redeliver hook: nor while a record is held or parked.) */
	return (atomic_load_explicit(&hdr->prod_head, memory_order_seq_cst) & RING_POS_MASK) == t &&
	       !(r->redeliver && shmring__redeliver_holds_open(r));
}

/* shmring__take_run's body, inlined into shmring__take too (one call less
 * per get). */
static inline __attribute__((always_inline)) ssize_t
take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out, size_t *nout,
         int64_t timeout_ns, struct op_rec *c)
{
	uint64_t end;
	struct waiter w;
	bool waiting = false; /* w made on the first miss: a take that succeeds at once never needs it */
	for (;;) {
		/* issue 13, SHMRING_OVERWRITE: records discarded while we slept
		 * come before the record after them (the caller checked before
		 * the first look).  A get asleep on an empty ring returned the
		 * record after the gap, and the next get the -EOVERFLOW (a
		 * review found it, 2026-12-06;
		 * lossy::a_waiting_get_reports_what_was_discarded_first). */
		if (waiting && ring_overwrites(r)) {
			int orc = ring_take_overflow(r);
			if (orc)
				return orc;
		}
		/* redeliver hook: parked records first (a run of one) */
		int rrc = redeliver_first(r, cap, out);
		if (rrc) {
			*nout = 1;
			return rrc;
		}
		struct slot_ref at;
		ssize_t rc = try_take_run(r, cap, max_recs, out, &end, &at, c, false);
		if (rc > 0) {
			*nout = (size_t)rc;
			return rc;
		}
		op_rec_clear(c); /* an announcement whose CAS lost */
		if (rc != -EAGAIN)
			return rc;
		if (timeout_ns == 0) { /* a poll: no waiter; ec_block's -EAGAIN */
			ring_sweep_if_stalled(r, STALL_TAKE, end);
			return -EAGAIN;
		}
		if (!waiting) {
			ring_waiter_init(r, &w, timeout_ns);
			waiting = true;
		}
		int brc = shmring__ec_block(&r->hdr->not_empty, shmring__readable, r, &w);
		/* on -EAGAIN, end is t: where the ring stands */
		ring_sweep_after_wait(r, brc, &w, STALL_TAKE, end);
		if (brc)
			return brc;
	}
}

ssize_t shmring__take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out,
                          size_t *nout, int64_t timeout_ns, struct op_rec *c)
{
	return take_run(r, cap, max_recs, out, nout, timeout_ns, c);
}

ssize_t shmring__take(struct shmring *r, size_t cap, struct take *out, int64_t timeout_ns,
                      struct op_rec *c, ssize_t rc)
{
	for (;;) {
		if (rc <= 0) {
			op_rec_clear(c); /* an announcement whose CAS lost */
			if (rc != -EAGAIN)
				return rc;
			size_t n;
			rc = shmring__take_run(r, cap, 1, out, &n, timeout_ns, c);
			if (rc < 0)
				return rc;
		}
		if (out->len != TAKE_SKIP)
			return (ssize_t)out->len;
		ring_release(r, out->pos);
		ring_free_tail_follow(r, out->pos, take_end(out)); /* a skip record */
		op_rec_clear(c);
		ring_notify_producers(r);
		struct slot_ref at;
		rc = take_attempt_one(r, cap, out, &at, c);
	}
}
