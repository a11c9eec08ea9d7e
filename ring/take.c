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
#include "redeliver.h"

#define TAKE_SKIP UINT32_MAX /* take.len of a skip record: deliver nothing */

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
	struct ring_header *hdr = r->hdr;
	/* redeliver hook: a parked record is waiting (redeliver.c) */
	if (r->redeliver && shmring__redeliver_ready(r))
		return true;
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_seq_cst);
	/* seq_cst: W3 of the eventcount protocol (eventcount.c). */
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
	    !census_eof(atomic_load_explicit(&hdr->census, memory_order_seq_cst)))
		return false;
	/* Ended, and empty?  (Not if a claimed record is still being written;
	 * redeliver hook: nor while a record is held or parked.) */
	return (atomic_load_explicit(&hdr->prod_head, memory_order_seq_cst) & RING_POS_MASK) == t &&
	       !(r->redeliver && shmring__redeliver_holds_open(r));
}

static size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

/* Scan the committed records from t: up to max of them whose payloads pack
 * (8-byte aligned) into cap.  Returns how many; *stop says why it stopped
 * early at the first record (0: not committed, -EMSGSIZE, -EBADMSG) and
 * *first_len the length of a record that did not fit. */
static size_t scan_run(struct shmring *r, uint64_t t, size_t cap, size_t max, struct take *out,
                       uint64_t *end, int *stop, uint32_t *first_len)
{
	size_t n = 0, off = 0;
	uint64_t p = t;
	*stop = 0;
	while (n < max) {
		struct slot_meta *m = meta_at(r, p);
		/* acquire: pairs with the producer's publishing store; its meta
		 * and payload writes are visible from here on. */
		if (atomic_load_explicit(&m->seq, memory_order_acquire) != SLOT_SEQ(p, SLOT_COMMITTED))
			break;
		uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
		bool skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
		if (skip ? len > r->capacity : len > r->max_record) {
			*stop = -EBADMSG;
			break;
		}
		if (!skip) {
			size_t need = align8(off) + len;
			if (need > cap) {
				*stop = -EMSGSIZE;
				*first_len = len;
				break;
			}
			off = need;
		}
		out[n].pos = p;
		out[n].len = skip ? TAKE_SKIP : len;
		n++;
		p += slots_for(len);
	}
	*end = p;
	return n;
}

/* One attempt: take a run of records.  Returns how many (>= 1), or -EAGAIN
 * (nothing ready), -EPIPE (closed and empty), -EMSGSIZE (the first record
 * does not fit in cap; not taken; out[0].len says how long it is), -EBADMSG
 * (corrupt meta). */
static ssize_t try_take_run(struct shmring *r, size_t cap, size_t max, struct take *out,
                            uint64_t *end, struct op_rec *c)
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
			op_rec_announce(c, t, OPREC_CONSUME, *end - t, n);
			/* acq_rel on success: release publishes the announcement to
			 * a sweep; acquire keeps the payload reads after the take. */
			if (atomic_compare_exchange_weak_explicit(&hdr->cons_head, &t, *end,
			                                          memory_order_acq_rel,
			                                          memory_order_relaxed))
				return (ssize_t)n;
			continue;
		}
		/* Nothing taken: is that still the truth at cons_head?  prod_head
		 * only if the stream may have ended (closed, or the census says
		 * so): reading it on every empty poll would pull the line every
		 * producer writes away from them.  The census before prod_head: a
		 * producer's claims happen before it leaves. */
		uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
		bool ended = atomic_load_explicit(&hdr->closed, memory_order_acquire) ||
		             census_eof(census);
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

ssize_t shmring__take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out,
                      size_t *nout, uint64_t *end, int64_t timeout_ns, struct op_rec *c)
{
	struct waiter w;
	ring_waiter_init(r, &w, timeout_ns);
	for (;;) {
		/* redeliver hook: parked records first (a run of one) */
		int rrc = redeliver_first(r, cap, out);
		if (rrc) {
			*nout = 1;
			*end = out->pos;
			return rrc;
		}
		ssize_t rc = try_take_run(r, cap, max_recs, out, end, c);
		if (rc > 0) {
			*nout = (size_t)rc;
			return rc;
		}
		op_rec_clear(c); /* an announcement whose CAS lost */
		if (rc != -EAGAIN)
			return rc;
		int brc = shmring__ec_block(&r->hdr->not_empty, shmring__readable, r, &w);
		ring_sweep_after_wait(r, brc);
		if (brc)
			return brc;
	}
}

ssize_t shmring__take(struct shmring *r, size_t cap, struct take *out, int64_t timeout_ns,
                  struct op_rec *c)
{
	for (;;) {
		size_t n;
		uint64_t end;
		ssize_t rc = shmring__take_run(r, cap, 1, out, &n, &end, timeout_ns, c);
		if (rc < 0)
			return rc;
		if (out->len != TAKE_SKIP)
			return (ssize_t)out->len;
		ring_release(r, out->pos);
		op_rec_clear(c);
		ring_notify_producers(r);
	}
}
