/*
 * attempt.h - one attempt at a claim (producer side) or a take (consumer
 * side), inline (private).  The one copy of each, compiled into the general
 * loops of space.c and take.c and into the one-record put, get, reserve and
 * peek (claim_one, take_one below), which make one attempt of their own
 * before they call those loops: an uncontended put or get is then one
 * function that reads the ring's geometry once (struct ring_geom) and keeps
 * the record's meta pointer from its claim to its publish or release
 * (docs/perf.md, "Cost per record").
 */
#ifndef SHMRING_ATTEMPT_H
#define SHMRING_ATTEMPT_H

#include "queue.h"
#include "bcast.h" /* issue 13 hooks */
#include "redeliver.h"

/* --- producer side (space.c) ---------------------------------------------- */

/* A producer that claims slot h asks for slot h + CLAIM_AHEAD's payload and
 * meta lines, for writing, when the slots up to h + 2 * CLAIM_AHEAD are free
 * by its hint.  A slot's first write in a lap needs its lines back from the
 * consumer that read them a lap ago (or from shmring_prefault), and the
 * publishing xchg waits for them: asked for 16 records early, the transfer
 * is done by the time the stores come.  The payload line made the stream
 * (harness 1x1 64 B: 23-29 M/s against 6-18; docs/perf.md, "2026-12-05,
 * seventh session"); the meta line made the spinning ping-pong's p99
 * (0.59-0.61 us against 0.96-1.79, where a 64 KiB ring, whose pages all stay
 * in the TLB, showed 0.64-0.66 without it: one record in 256 has the first
 * entry of a meta page; "2026-12-06, eighth session").  In the inline layout
 * the entry is in the payload's line: the second ask repeats the claim's
 * prefetch of at->meta, one instruction.  The guard keeps both well clear of
 * a consumer at a full ring: asking for the meta line with h + 16 the only
 * guard took lines that consumer was still reading and releasing
 * (bench_quick's copy stream 5.7-14.2 M/s against 11.4-16.8).  Not the next
 * slot, whose lines a consumer polling an empty ring reads next (a spinning
 * hop was 15% slower: docs/perf.md, fifth session). */
#define CLAIM_AHEAD 16u
/* (CLAIM_AHEAD & meta_hi) >> 2 entries is h + CLAIM_AHEAD's entry only so */
_Static_assert(CLAIM_AHEAD % 4 == 0, "CLAIM_AHEAD slots must be whole meta entries of a quarter");

/* Advance free_tail over released records; return the new value (stored in
 * the handle's cached_free too). */
uint64_t shmring__reclaim_free_tail(struct shmring *r);

/* One attempt: claim slots for records 0..*taken of n (as many as fit, at
 * least the first), or -EAGAIN if not even the first fits, -EPIPE if closed. */
static inline __attribute__((always_inline)) int
try_slots_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken,
                struct slot_ref *at, struct op_rec *c, bool leaf)
{
	struct ring_header *hdr = r->hdr;
	if (ring_broken(r, atomic_load_explicit(&hdr->census, memory_order_acquire)))
		return -EPIPE; /* every consumer has gone */
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_relaxed);
	for (;;) {
		if (h & RING_CLOSED)
			return -EPIPE;
		uint64_t f = atomic_load_explicit(&r->cached_free, memory_order_acquire);
		if (leaf && ((int64_t)(h - f) < 0 || h + slots[0] - f > r->nslots))
			return -EAGAIN; /* the leaf put makes no call, nor a second look */
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
		if (__builtin_expect(h + slots[0] - f > r->nslots, 0)) { /* once a lap */
			f = shmring__reclaim_free_tail(r);
			if ((int64_t)(h - f) < 0) {
				h = atomic_load_explicit(&hdr->prod_head, memory_order_relaxed);
				continue;
			}
			if (h + slots[0] - f > r->nslots)
				return -EAGAIN;
		}
		uint64_t want = 0;
		size_t k = 0;
		if (leaf) { /* one record, which fits: checked above */
			want = slots[0];
			k = 1;
		} else {
			uint64_t room = r->nslots - (h - f);
			while (k < n && want + slots[k] <= room)
				want += slots[k++];
		}
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
			/* (the geometry loaded here: held across the loop,
			 * the compiler spills it) */
			struct ring_geom g = ring_geom(r);
			*at = geom_ref(&g, h);
			prefetch_for_write(at->meta);
			prefetch_for_write(at->data);
			/* 0 <= h - f < nslots (checked above): no wrap.  The
			 * meta entry of h + 16 is 4 past h's in the split layout
			 * (handle.h).  For the last 16 slots of a lap that is
			 * the next quarter's first line (entries of slots inside
			 * the guard) or, past the last quarter, a line after the
			 * array (padding, or slot 0's payload, inside the guard
			 * too): a hint, it cannot fault.  In the inline layout
			 * (meta_hi 0) it is h's own entry, asked for again. */
			if (h + 2 * CLAIM_AHEAD - f <= r->nslots) {
				/* (past the ring's end, through the second
				 * data mapping: the same line) */
				prefetch_for_write(at->data + CLAIM_AHEAD * RING_SLOT);
				prefetch_for_write(at->meta + ((CLAIM_AHEAD & g.meta_hi) >> 2));
			}
			*taken = k;
			return 0;
		}
		if (leaf)
			return -EAGAIN;
	}
}

/* --- consumer side (take.c) ---------------------------------------------- */

/* A leaf attempt (copy.c) that stopped for a reason the general path must
 * find for itself (a lost CAS, a skip record, a record over the leaf's cap);
 * -EAGAIN from a leaf take is "nothing ready at cons_head". */
#define ATTEMPT_LEAF_NO (-ECANCELED)

/* A consumer polling an empty ring also reads the payload line of the record
 * it waits for.  Most such reads fetch a line the producer has yet to write
 * (and will take back), but one that lands between the producer's payload
 * stores and its publication saves the transfer that would otherwise follow
 * the read of seq: when the two cores are far apart (a 200+ ns line
 * transfer) that is about a fifth of the one-way latency (docs/perf.md). */
static inline void prefetch_next_payload(const struct ring_geom *g, uint64_t t)
{
	__builtin_prefetch(geom_data(g, t), 0, 3);
}

/* Scan the committed records from t (meta entry m): up to max of them whose
 * payloads pack (8-byte aligned) into cap.  Returns how many; *stop says why
 * it stopped early at the first record (0: not committed, -EMSGSIZE,
 * -EBADMSG; the leaf: ATTEMPT_LEAF_NO at a skip record) and *first_len the
 * length of a record that did not fit.  The leaf (the one-record get) looks
 * at one record of at most RING_SLOT bytes, whatever max and cap say: so its
 * walk needs no bound (slot_walk_one) and its record is one slot. */
static inline __attribute__((always_inline)) size_t
scan_run(struct shmring *r, const struct ring_geom *g, uint64_t t, const struct slot_meta *m,
         size_t cap, size_t max, struct take *out, uint64_t *end, int *stop, uint32_t *first_len,
         bool leaf)
{
	size_t n = 0, off = 0;
	if (leaf) { /* (folded away: the one caller passes 1 and at most 64) */
		max = 1;
		cap = cap < RING_SLOT ? cap : RING_SLOT;
	}
	/* acquire: pairs with the producer's publishing store; its meta and
	 * payload writes are visible from here on. */
	struct slot_walk w = leaf ? slot_walk_one(r, t, SLOT_COMMITTED, memory_order_acquire)
	                          : slot_walk_from(r, t, UINT64_MAX, SLOT_COMMITTED,
	                                           memory_order_acquire);
	struct record rec;
	*stop = 0;
	while (n < max && slot_walk_look_at(&w, m, &rec)) {
		if (!rec.skip) {
			size_t need = align8(off) + rec.len;
			if (need > cap) {
				*stop = -EMSGSIZE;
				*first_len = rec.len;
				break;
			}
			off = need;
		} else if (leaf) {
			*stop = ATTEMPT_LEAF_NO; /* a skip record: the general path's */
			break;
		}
		if (leaf) /* len <= cap <= RING_SLOT: one slot */
			rec.slots = 1;
		out[n].pos = w.pos;
		out[n].len = rec.skip ? TAKE_SKIP : rec.len;
		out[n].skip_slots = (uint32_t)rec.slots;
		n++;
		slot_walk_step(&w, &rec);
		m = geom_meta(g, w.pos);
	}
	if (w.corrupt)
		*stop = -EBADMSG;
	*end = w.pos;
	return n;
}

/* The tasks of a run just taken (its records but skip records), counted in
 * the taker's entry: relaxed, only a sweep after this process's death reads
 * it (recover.c). */
static void count_taken_tasks(struct attach_entry *ledger, const struct take *run, size_t n)
{
	uint64_t tasks = 0;
	for (size_t i = 0; i < n; i++)
		tasks += run[i].len != TAKE_SKIP;
	if (tasks)
		atomic_fetch_add_explicit(&ledger->got, tasks, memory_order_relaxed);
}

/* An attempt found nothing to take at t (cons_head when it looked): is that
 * still the truth at cons_head?  1: cons_head has moved on, to *moved_to
 * (look again there); -EPIPE: closed, or the end of the stream, and empty;
 * -EAGAIN: empty, or a producer is still writing at t.  cons_head only
 * grows, so finding it at t again means it stood there through the look:
 * nothing was ready at the head at that moment.  prod_head only if the
 * stream may have ended (closed, or the census says so): reading it on every
 * empty poll would pull the line every producer writes away from them.  The
 * census before prod_head: a producer's claims happen before it leaves. */
static inline __attribute__((always_inline)) int
take_nothing_at(struct shmring *r, uint64_t t, uint64_t *moved_to)
{
	struct ring_header *hdr = r->hdr;
	uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
	bool ended = atomic_load_explicit(&hdr->closed, memory_order_acquire) ||
	             ring_eof(r, census);
	uint64_t h = ended ? atomic_load_explicit(&hdr->prod_head, memory_order_acquire) : 0;
	uint64_t t2 = atomic_load_explicit(&hdr->cons_head, memory_order_relaxed);
	if (t2 != t) {
		*moved_to = t2;
		return 1;
	}
	if (ended && (h & RING_POS_MASK) == t &&
	    !(r->redeliver && shmring__redeliver_holds_open(r))) /* redeliver hook */
		return -EPIPE; /* closed, or end of stream: and empty */
	return -EAGAIN;
}

/* One attempt: take a run of records.  Returns how many (>= 1), or -EAGAIN
 * (nothing ready), -EPIPE (closed and empty), -EMSGSIZE (the first record
 * does not fit in cap; not taken; out[0].len says how long it is), -EBADMSG
 * (corrupt meta). */
static inline __attribute__((always_inline)) ssize_t
try_take_run(struct shmring *r, size_t cap, size_t max, struct take *out, uint64_t *end,
             struct slot_ref *at, struct op_rec *c, bool leaf)
{
	struct ring_header *hdr = r->hdr;
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_relaxed);
	for (;;) {
		int stop;
		uint32_t first_len = 0;
		/* the geometry loaded here, in the loop: held across it, the
		 * compiler spills it (4 instructions more per get, measured) */
		struct ring_geom g = ring_geom(r);
		*at = geom_ref(&g, t);
		size_t n = scan_run(r, &g, t, at->meta, cap, max, out, end, &stop, &first_len, leaf);
		if (leaf && !n) /* the leaf get: a record (scan_run stops at a skip) */
			return !stop ? -EAGAIN : ATTEMPT_LEAF_NO; /* -EAGAIN: none ready at t */
		if (n) {
			/* The payload, and the meta line the release will write:
			 * fetched during the claim, not after it. */
			__builtin_prefetch(at->data, 0, 3); /* prefetch_next_payload */
			prefetch_for_write(at->meta);
			/* Join in use: the tasks of what is taken are counted in
			 * the entry's got right after the CAS, and the
			 * announcement says so, so that a sweep finding them
			 * unreleased does not forgive them a second time
			 * (docs/design.md, "Join fate"). */
			struct attach_entry *ledger = join_ledger(r);
			op_rec_announce(c, t, OPREC_CONSUME, *end - t, n | (ledger ? OPREC_R_GOT : 0));
			/* acq_rel on success: release publishes the announcement to
			 * a sweep; acquire keeps the payload reads after the take. */
			if (atomic_compare_exchange_weak_explicit(&hdr->cons_head, &t, *end,
			                                          memory_order_acq_rel,
			                                          memory_order_relaxed)) {
				if (ledger)
					count_taken_tasks(ledger, out, n);
				return (ssize_t)n;
			}
			if (leaf)
				return ATTEMPT_LEAF_NO;
			continue;
		}
		uint64_t t2;
		int verdict = take_nothing_at(r, t, &t2);
		if (verdict > 0) {
			t = t2;
			continue;
		}
		if (!stop)
			prefetch_next_payload(&g, t); /* (t may have moved: not at) */
		if (stop == -EMSGSIZE)
			out[0].len = first_len;
		if (stop)
			return stop;
		return verdict;
	}
}

/* --- the one-record calls ------------------------------------------------- */

/* The first half of a one-record put (span false) or reserve (span true):
 * enter, then claim the slots of a record of len bytes at *at.  One
 * attempt here, then the general loop (shmring__slots_claim).  On
 * failure nothing is left announced or held. */
static inline __attribute__((always_inline)) int
claim_one(struct shmring *r, bool span, bool ticked, size_t len, int64_t timeout_ns,
          struct op_rec **c, struct slot_ref *at)
{
	int rc = span ? ring_enter_span(r, SHMRING_PRODUCER, c)
	              : ring_enter_ticked(r, SHMRING_PRODUCER, ticked, c);
	if (rc)
		return rc;
	uint32_t slots = (uint32_t)slots_for(len);
	size_t taken;
	rc = try_slots_claim(r, &slots, 1, &taken, at, *c, false);
	if (__builtin_expect(rc != 0, 0)) {
		op_rec_clear(*c); /* an announcement whose CAS lost */
		uint64_t pos;
		/* A poll (timeout 0) of a full ring: the attempt's -EAGAIN
		 * stands (it reclaimed before it said so), with the stall count
		 * the general loop would make; no second attempt.  Not on an
		 * overwrite ring, whose loop discards the oldest record. */
		if (rc == -EAGAIN && timeout_ns == 0 && !ring_overwrites(r))
			ring_sweep_if_stalled(r, STALL_CLAIM,
			                      atomic_load_explicit(&r->cached_free, memory_order_relaxed));
		else if (rc == -EAGAIN)
			rc = shmring__slots_claim(r, &slots, 1, &taken, &pos, timeout_ns, *c);
		if (rc) {
			if (span)
				shmring__op_rec_free(r, *c);
			ring_note_refused(r, rc, 1); /* issue 13: dropped */
			return rc;
		}
		struct ring_geom g = ring_geom(r);
		*at = geom_ref(&g, pos);
	}
	return 0;
}

/* One attempt at one record (the first of get, peek, and of
 * shmring__take's next look after a skip record): its length, or what
 * try_take_run returns (a skip record: out->len TAKE_SKIP).  A redelivery
 * ring makes none (-EAGAIN): parked records come first, in take_run. */
static inline __attribute__((always_inline)) ssize_t
take_attempt_one(struct shmring *r, size_t cap, struct take *out, struct slot_ref *at,
                 struct op_rec *c)
{
	out->rl = 0;
	out->deliveries = 1;
	if (__builtin_expect(r->redeliver, 0))
		return -EAGAIN;
	uint64_t end;
	return try_take_run(r, cap, 1, out, &end, at, c, false);
}

/* take.c: the rest of a one-record take after the attempt that returned
 * rc: the general loop (waiting up to timeout_ns) and skip records, which
 * it releases.  Returns the record's length, or an error with c clear. */
ssize_t shmring__take(struct shmring *r, size_t cap, struct take *out, int64_t timeout_ns,
                      struct op_rec *c, ssize_t rc);

/* The first half of a get (span false) or peek (span true): enter, then
 * take one record that fits cap (tk, and where it is: *at).  On failure
 * nothing is left announced or held. */
static inline __attribute__((always_inline)) ssize_t
take_one(struct shmring *r, bool span, bool ticked, bool looked, size_t cap, int64_t timeout_ns,
         struct op_rec **c, struct take *tk, struct slot_ref *at)
{
	int rc = span ? ring_enter_span(r, SHMRING_CONSUMER, c)
	              : ring_enter_ticked(r, SHMRING_CONSUMER, ticked, c);
	if (rc < 0) /* (never > 0: written so, the compiler knows *at is set on >= 0) */
		return rc;
	if ((rc = ring_take_overflow(r)) < 0) { /* issue 13: SHMRING_OVERWRITE */
		if (span)
			shmring__op_rec_free(r, *c);
		return rc;
	}
	/* looked: a leaf get that may wait found nothing ready just now; the
	 * general loop looks again before it waits (no second look here) */
	ssize_t len = looked ? -EAGAIN : take_attempt_one(r, cap, tk, at, *c);
	if (__builtin_expect(len > 0 && tk->len != TAKE_SKIP, 1))
		return tk->len;
	/* A poll (timeout 0) that found nothing: the attempt's verdict stands
	 * (take_nothing_at saw cons_head stay at at->pos), with the stall count
	 * the general loop would make; no second attempt (a redelivery ring's
	 * attempt looked at nothing: parked records come first, in the loop). */
	if (len == -EAGAIN && timeout_ns == 0 && !looked && !r->redeliver) {
		op_rec_clear(*c); /* an announcement whose CAS lost */
		ring_sweep_if_stalled(r, STALL_TAKE, at->pos);
		if (span)
			shmring__op_rec_free(r, *c);
		return -EAGAIN;
	}
	len = shmring__take(r, cap, tk, timeout_ns, *c, len);
	if (len < 0) {
		if (span)
			shmring__op_rec_free(r, *c);
		return len;
	}
	struct ring_geom g = ring_geom(r);
	*at = geom_ref(&g, tk->pos);
	return len;
}

#endif /* SHMRING_ATTEMPT_H */
