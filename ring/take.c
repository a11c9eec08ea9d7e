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

#include "queue.h"
#include "bcast.h" /* issue 13 hooks */
#include "redeliver.h"


/* A consumer polling an empty ring also reads the payload line of the record
 * it waits for.  Most such reads fetch a line the producer has yet to write
 * (and will take back), but one that lands between the producer's payload
 * stores and its publication saves the transfer that would otherwise follow
 * the read of seq: when the two cores are far apart (a 200+ ns line
 * transfer) that is about a fifth of the one-way latency (docs/perf.md). */
static inline void prefetch_next_payload(const struct shmring *r, uint64_t t)
{
	__builtin_prefetch(data_at(r, t), 0, 3);
}

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
	prefetch_next_payload(r, t);
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

/* Scan the committed records from t: up to max of them whose payloads pack
 * (8-byte aligned) into cap.  Returns how many; *stop says why it stopped
 * early at the first record (0: not committed, -EMSGSIZE, -EBADMSG) and
 * *first_len the length of a record that did not fit. */
static inline __attribute__((always_inline)) size_t
scan_run(struct shmring *r, uint64_t t, size_t cap, size_t max, struct take *out, uint64_t *end,
         int *stop, uint32_t *first_len)
{
	size_t n = 0, off = 0;
	/* acquire: pairs with the producer's publishing store; its meta and
	 * payload writes are visible from here on. */
	struct slot_walk w = slot_walk_from(r, t, UINT64_MAX, SLOT_COMMITTED, memory_order_acquire);
	struct record rec;
	*stop = 0;
	while (n < max && slot_walk_look(&w, &rec)) {
		if (!rec.skip) {
			size_t need = align8(off) + rec.len;
			if (need > cap) {
				*stop = -EMSGSIZE;
				*first_len = rec.len;
				break;
			}
			off = need;
		}
		out[n].pos = w.pos;
		out[n].len = rec.skip ? TAKE_SKIP : rec.len;
		n++;
		slot_walk_step(&w, &rec);
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

/* One attempt: take a run of records.  Returns how many (>= 1), or -EAGAIN
 * (nothing ready), -EPIPE (closed and empty), -EMSGSIZE (the first record
 * does not fit in cap; not taken; out[0].len says how long it is), -EBADMSG
 * (corrupt meta). */
static inline __attribute__((always_inline)) ssize_t
try_take_run(struct shmring *r, size_t cap, size_t max, struct take *out, uint64_t *end,
             struct op_rec *c)
{
	struct ring_header *hdr = r->hdr;
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_relaxed);
	for (;;) {
		int stop;
		uint32_t first_len = 0;
		size_t n = scan_run(r, t, cap, max, out, end, &stop, &first_len);
		if (n) {
			/* The payload, and the meta line the release will write:
			 * fetched during the claim, not after it. */
			prefetch_next_payload(r, t);
			prefetch_for_write(meta_at(r, t));
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
			continue;
		}
		/* Nothing taken: is that still the truth at cons_head?  prod_head
		 * only if the stream may have ended (closed, or the census says
		 * so): reading it on every empty poll would pull the line every
		 * producer writes away from them.  The census before prod_head: a
		 * producer's claims happen before it leaves. */
		uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
		bool ended = atomic_load_explicit(&hdr->closed, memory_order_acquire) ||
		             ring_eof(r, census);
		uint64_t h = ended ? atomic_load_explicit(&hdr->prod_head, memory_order_acquire) : 0;
		uint64_t t2 = atomic_load_explicit(&hdr->cons_head, memory_order_relaxed);
		if (t2 != t) {
			t = t2;
			continue;
		}
		if (!stop)
			prefetch_next_payload(r, t);
		if (stop == -EMSGSIZE)
			out[0].len = first_len;
		if (stop)
			return stop;
		if (ended && (h & RING_POS_MASK) == t &&
		    !(r->redeliver && shmring__redeliver_holds_open(r))) /* redeliver hook */
			return -EPIPE; /* closed, or end of stream: and empty */
		return -EAGAIN; /* empty, or a producer is still writing at t */
	}
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
		/* redeliver hook: parked records first (a run of one) */
		int rrc = redeliver_first(r, cap, out);
		if (rrc) {
			*nout = 1;
			return rrc;
		}
		ssize_t rc = try_take_run(r, cap, max_recs, out, &end, c);
		if (rc > 0) {
			*nout = (size_t)rc;
			return rc;
		}
		op_rec_clear(c); /* an announcement whose CAS lost */
		if (rc != -EAGAIN)
			return rc;
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
                      struct op_rec *c)
{
	for (;;) {
		/* One attempt compiled for one record (no waiter), then the
		 * general loop. */
		uint64_t end;
		out->rl = 0;
		out->deliveries = 1;
		/* (a redelivery ring: parked records first, in the loop) */
		ssize_t rc = __builtin_expect(r->redeliver, 0) ? -EAGAIN
		                                               : try_take_run(r, cap, 1, out, &end, c);
		if (__builtin_expect(rc <= 0, 0)) {
			op_rec_clear(c);
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
		op_rec_clear(c);
		ring_notify_producers(r);
	}
}
