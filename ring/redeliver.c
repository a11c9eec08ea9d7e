/*
 * redeliver.c - at-least-once delivery (SHMRING_REDELIVER): parking a dead
 * consumer's records, taking them again, requeue, dead letters, and the end
 * of stream that waits for them.  The list and its states: redeliver.h; the
 * protocol with every memory order: docs/design.md section 9.
 */
#include <errno.h>

#include "latch.h"
#include "redeliver.h"
#include "shmring_zc.h"

static uint64_t list_high(const struct shmring *r)
{
	/* Hostile bytes: an index from shared memory, clamped. */
	uint64_t h = atomic_load_explicit(&r->hdr->rdl.high, memory_order_acquire);
	return h > REDELIVER_ENTRIES ? REDELIVER_ENTRIES : h;
}

/* The record at p is a credible one to hand out: seq REDELIVER(p) (acquire:
 * the producer's writes, through the parker's CAS) and a length within
 * max_record.  Returns its length, or -1. */
static int64_t parked_len(const struct shmring *r, uint64_t p, memory_order mo)
{
	struct slot_meta *m = meta_at(r, p);
	if (atomic_load_explicit(&m->seq, mo) != SLOT_SEQ(p, SLOT_REDELIVER))
		return -1;
	uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
	if (len > r->max_record || (atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP))
		return -1;
	return len;
}

/* A FREE entry made RESERVED for holder (the attachment whose recovery
 * finishes it if we die); -1 if the list is full. */
static int entry_alloc(struct shmring *r, int holder, unsigned d, uint64_t *wout)
{
	struct redeliver_area *a = &r->hdr->rdl;
	for (int i = 0; i < REDELIVER_ENTRIES; i++) {
		uint64_t w = atomic_load_explicit(&a->list[i].word, memory_order_relaxed);
		if (RDL_STATE(w) != RDL_FREE)
			continue;
		uint64_t nw = RDL_NEXT(w, (unsigned)holder, d, RDL_RESERVED);
		if (!atomic_compare_exchange_strong_explicit(&a->list[i].word, &w, nw,
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			continue;
		uint64_t h = atomic_load_explicit(&a->high, memory_order_relaxed);
		while (h < (uint64_t)i + 1 &&
		       !atomic_compare_exchange_weak_explicit(&a->high, &h, (uint64_t)i + 1,
		                                              memory_order_release,
		                                              memory_order_relaxed))
			;
		*wout = nw;
		return i;
	}
	return -1;
}

static void entry_free(struct shmring *r, unsigned i, uint64_t w)
{
	atomic_compare_exchange_strong_explicit(&r->hdr->rdl.list[i].word, &w,
	                                        RDL_NEXT(w, 0, 0, RDL_FREE),
	                                        memory_order_release, memory_order_relaxed);
}

/* Join accounting (docs/design.md, "Join fate"): a record given back is no
 * longer the holder's task (the next consumer's task_done finishes it), so if
 * its take was counted in the holder's got (counted), a dead holder's
 * got - done must not count it (recover.c forgives got - done): done + 1.
 * counted is exact for a park from recover_consume (the op record's
 * OPREC_R_GOT); for a held entry it is "join in use now" (CENSUS_JOIN never
 * clears, so it differs from the take's view only if join came into use in
 * between: then a task stays unforgiven, join waits within its timeout,
 * never one forgiven twice). */
static bool join_counted(const struct shmring *r)
{
	return atomic_load_explicit(&r->hdr->census, memory_order_relaxed) & CENSUS_JOIN;
}
static void count_given_back(struct shmring *r, int holder, bool counted)
{
	if (counted && holder >= 0 && holder < (int)r->nattach)
		atomic_fetch_add_explicit(&ring_attach(r, holder)->done, 1, memory_order_relaxed);
}

/* Entry i (word w: RESERVED or HELD, its record's seq REDELIVER) goes back:
 * WAITING for the next take, or DEAD once it has been delivered
 * max_deliveries times.  false if the word changed under us. */
static bool settle(struct shmring *r, unsigned i, uint64_t w, int holder, bool counted)
{
	struct redeliver_area *a = &r->hdr->rdl;
	unsigned d = RDL_DELIV(w) ? RDL_DELIV(w) : 1;
	unsigned max = atomic_load_explicit(&a->max_deliveries, memory_order_relaxed);
	bool dead = max && d >= max;
	/* release: a taker that reads WAITING (acquire) sees pos and, through
	 * our CAS of seq, the record's contents. */
	if (!atomic_compare_exchange_strong_explicit(&a->list[i].word, &w,
	                                             RDL_NEXT(w, 0, d, dead ? RDL_DEAD : RDL_WAITING),
	                                             memory_order_acq_rel, memory_order_relaxed))
		return false;
	count_given_back(r, holder, counted);
	if (dead) {
		atomic_fetch_add_explicit(&a->dead_letters, 1, memory_order_relaxed);
		/* seq_cst: N1 for shmring_peek_dead's sleepers */
		atomic_fetch_add_explicit(&a->dead_waiting, 1, memory_order_seq_cst);
		shmring__forgive_tasks(r, 1); /* a dead letter's task is forgiven */
	} else {
		atomic_fetch_add_explicit(&a->redelivered, 1, memory_order_relaxed);
		/* seq_cst: N1 of the not_empty Dekker pair (the re-check loads
		 * pending with seq_cst, shmring__redeliver_ready) */
		atomic_fetch_add_explicit(&a->pending, 1, memory_order_seq_cst);
	}
	ec_notify(r, &r->hdr->not_empty);
	return true;
}

int shmring__redeliver_park(struct shmring *r, int slot, uint64_t p, bool got)
{
	uint64_t w;
	int i = entry_alloc(r, slot, 1, &w);
	if (i < 0)
		return 0;
	atomic_store_explicit(&r->hdr->rdl.list[i].pos, p, memory_order_relaxed);
	/* seq_cst, as every recovery CAS of seq: from exactly COMMITTED(p), so
	 * a record its owner released meanwhile, or another recovery parked,
	 * is left alone.  COMMITTED -> REDELIVER happens once per record. */
	uint64_t s = SLOT_SEQ(p, SLOT_COMMITTED);
	if (!atomic_compare_exchange_strong_explicit(&meta_at(r, p)->seq, &s,
	                                             SLOT_SEQ(p, SLOT_REDELIVER),
	                                             memory_order_seq_cst, memory_order_relaxed)) {
		entry_free(r, (unsigned)i, w);
		return 1;
	}
	settle(r, (unsigned)i, w, slot, got);
	return 1;
}

void shmring__redeliver_recover(struct shmring *r, int slot)
{
	struct redeliver_area *a = &r->hdr->rdl;
	uint64_t high = list_high(r);
	for (unsigned i = 0; i < high; i++) {
		uint64_t w = atomic_load_explicit(&a->list[i].word, memory_order_acquire);
		unsigned st = RDL_STATE(w);
		if ((st != RDL_RESERVED && st != RDL_HELD && st != RDL_DEADHELD) ||
		    RDL_HOLDER(w) != (unsigned)slot)
			continue;
		uint64_t p = atomic_load_explicit(&a->list[i].pos, memory_order_relaxed);
		uint64_t s = atomic_load_explicit(&meta_at(r, p)->seq, memory_order_acquire);
		if (s != SLOT_SEQ(p, SLOT_REDELIVER)) {
			/* released before the holder died (release stores seq
			 * first), or a park that never changed seq: the op
			 * record walk parks that one again */
			entry_free(r, i, w);
			continue;
		}
		if (st == RDL_DEADHELD) {
			if (atomic_compare_exchange_strong_explicit(&a->list[i].word, &w,
			                                            RDL_NEXT(w, 0, RDL_DELIV(w), RDL_DEAD),
			                                            memory_order_acq_rel,
			                                            memory_order_relaxed)) {
				atomic_fetch_add_explicit(&a->dead_waiting, 1, memory_order_seq_cst);
				ec_notify(r, &r->hdr->not_empty);
			}
			continue;
		}
		settle(r, i, w, slot, join_counted(r));
	}
}

/* Take entry i in state `from` for this handle's attachment, as `to`; fills
 * out (pos, len, rl, deliveries).  false if it is not there or not ours;
 * *too_long = its length if it is there but longer than cap. */
static bool entry_take(struct shmring *r, unsigned i, unsigned from, unsigned to, size_t cap,
                       struct take *out, int64_t *too_long)
{
	struct redeliver_area *a = &r->hdr->rdl;
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	if (slot < 0)
		return false;
	/* acquire: pairs with settle's CAS (pos, and the record's contents) */
	uint64_t w = atomic_load_explicit(&a->list[i].word, memory_order_acquire);
	if (RDL_STATE(w) != from)
		return false;
	uint64_t p = atomic_load_explicit(&a->list[i].pos, memory_order_relaxed);
	int64_t len = parked_len(r, p, memory_order_acquire);
	if (len < 0)
		return false;
	if ((size_t)len > cap) {
		*too_long = len;
		return false;
	}
	unsigned d = RDL_DELIV(w);
	if (to == RDL_HELD && d < RDL_MAX_DELIVERIES)
		d++;
	/* acq_rel: the payload reads stay after it */
	if (!atomic_compare_exchange_strong_explicit(&a->list[i].word, &w,
	                                             RDL_NEXT(w, (unsigned)slot, d, to),
	                                             memory_order_acq_rel, memory_order_relaxed))
		return false;
	out->pos = p;
	out->len = (uint32_t)len;
	out->rl = i + 1;
	out->deliveries = d;
	return true;
}

int shmring__redeliver_take(struct shmring *r, size_t cap, struct take *out)
{
	uint64_t high = list_high(r);
	int64_t too_long = -1;
	for (unsigned i = 0; i < high; i++) {
		if (entry_take(r, i, RDL_WAITING, RDL_HELD, cap, out, &too_long)) {
			atomic_fetch_sub_explicit(&r->hdr->rdl.pending, 1, memory_order_relaxed);
			/* its task counted in got, as a take of a fresh record
			 * does (take.c; relaxed, read by a sweep after our death) */
			struct attach_entry *ledger = join_ledger(r);
			if (ledger)
				atomic_fetch_add_explicit(&ledger->got, 1, memory_order_relaxed);
			return 1;
		}
	}
	if (too_long < 0)
		return 0;
	out->len = (uint32_t)too_long;
	return -EMSGSIZE;
}

void shmring__redeliver_released(struct shmring *r, uint32_t rl)
{
	struct ring_header *hdr = r->hdr;
	if (rl && rl <= REDELIVER_ENTRIES) {
		/* after the seq store RELEASED (the caller's): a holder that dies
		 * in between leaves an entry whose recovery sees RELEASED and
		 * frees it; the other order would strand the record */
		uint64_t w = atomic_load_explicit(&hdr->rdl.list[rl - 1].word, memory_order_relaxed);
		if (RDL_STATE(w) == RDL_HELD || RDL_STATE(w) == RDL_DEADHELD)
			entry_free(r, rl - 1, w);
	}
	/* A consumer may be waiting for this release to end the stream.
	 * After our store of RELEASED, N1 (fence.h): a waiter whose re-check
	 * (after W1 and its membarrier) read the census as ended and our record
	 * as held is seen here as ended too, and woken.  Either our barrier
	 * point fell after the store, and the re-check saw it released; or
	 * before, and these loads follow W1: they see the census change, or its
	 * maker's notify (after its RMW) sees the waiter (design.md section 9,
	 * "Memory orders"). */
	if (atomic_load_explicit(&hdr->closed, memory_order_seq_cst) ||
	    ring_eof(r, atomic_load_explicit(&hdr->census, memory_order_seq_cst)))
		ec_notify(r, &hdr->not_empty);
}

/* Is an entry of the list in state st?  seq_cst loads (a re-check). */
static bool list_has(const struct shmring *r, unsigned st)
{
	const struct redeliver_area *a = &r->hdr->rdl;
	uint64_t high = list_high(r);
	for (unsigned i = 0; i < high; i++)
		if (RDL_STATE(atomic_load_explicit(&a->list[i].word, memory_order_seq_cst)) == st)
			return true;
	return false;
}

bool shmring__redeliver_ready(const struct shmring *r)
{
	/* Pending says so; is one there?  (A count off by a reaper killed
	 * between the entry and the count must not make a waiter spin.) */
	return atomic_load_explicit(&r->hdr->rdl.pending, memory_order_seq_cst) > 0 &&
	       list_has(r, RDL_WAITING);
}

/* Sweeps (reap.c) raise the two counts to what the list holds where they
 * fall short for good: a process killed between an entry's CAS and its
 * count's increment (settle, a dead letter's recovery) leaves one low.
 * pending one low, a parked record was never taken again (the take's fast
 * path reads pending only): free_tail stood at it, and once the ring was
 * full producers and consumers both waited forever, the consumers asleep on
 * an "empty" ring (redeliver::counts_a_killed_process_left_off_are_set_right).
 * A count is short for a moment in every live settle too (its CAS, then its
 * increment), and a taker's CAS makes the list shorter than the count for
 * a moment: so a count is raised only when it stood still through the scan
 * and this handle's sweep before found it short at that same value (sweeps
 * are 50 ms apart at least), and only raised, never lowered (one high only
 * costs a scan).  A first version raised on one look and drifted up with
 * live traffic (a review found it).  (dead_waiting one high, from a
 * dead-letter reader killed before its decrement, made a waiting
 * shmring_peek_dead spin and never see the end of the stream: its re-check
 * looks at the list now, dead_ready and dead_over.) */
void shmring__redeliver_recount(struct shmring *r)
{
	struct redeliver_area *a = &r->hdr->rdl;
	int64_t p = atomic_load_explicit(&a->pending, memory_order_seq_cst);
	uint64_t d = atomic_load_explicit(&a->dead_waiting, memory_order_seq_cst);
	uint64_t high = list_high(r);
	int64_t waiting = 0;
	uint64_t dead = 0;
	for (unsigned i = 0; i < high; i++) {
		unsigned st = RDL_STATE(atomic_load_explicit(&a->list[i].word, memory_order_seq_cst));
		waiting += st == RDL_WAITING;
		dead += st == RDL_DEAD;
	}
	bool p_short = p < waiting && atomic_load_explicit(&a->pending, memory_order_seq_cst) == p;
	bool d_short = d < dead && atomic_load_explicit(&a->dead_waiting, memory_order_seq_cst) == d;
	bool raised = false;
	/* seq_cst: N1 for the sleepers a raised count wakes (as settle's) */
	if (p_short && r->rdl_seen.pending_short && r->rdl_seen.pending == p)
		raised |= atomic_compare_exchange_strong_explicit(&a->pending, &p, waiting,
		                                                  memory_order_seq_cst,
		                                                  memory_order_relaxed);
	if (d_short && r->rdl_seen.dead_short && r->rdl_seen.dead == d)
		raised |= atomic_compare_exchange_strong_explicit(&a->dead_waiting, &d, dead,
		                                                  memory_order_seq_cst,
		                                                  memory_order_relaxed);
	r->rdl_seen.pending_short = p_short;
	r->rdl_seen.pending = p;
	r->rdl_seen.dead_short = d_short;
	r->rdl_seen.dead = d;
	if (raised)
		ec_notify(r, &r->hdr->not_empty);
}

/* The list entry that owns the parked record at p: is it a dead letter? */
static bool parked_is_dead(const struct shmring *r, uint64_t p)
{
	struct redeliver_area *a = &r->hdr->rdl;
	uint64_t high = list_high(r);
	for (unsigned i = 0; i < high; i++) {
		uint64_t w = atomic_load_explicit(&a->list[i].word, memory_order_seq_cst);
		unsigned st = RDL_STATE(w);
		if (st == RDL_FREE || atomic_load_explicit(&a->list[i].pos, memory_order_relaxed) != p)
			continue;
		if (st == RDL_WAITING && atomic_load_explicit(&a->pending, memory_order_relaxed) <= 0)
			atomic_fetch_add_explicit(&a->pending, 1, memory_order_seq_cst); /* repair */
		return st == RDL_DEAD || st == RDL_DEADHELD;
	}
	return false; /* being parked: not yet in the list */
}

/* Every record between free_tail and cons_head released or dead-lettered?
 * (A COMMITTED record there is held by a consumer, live or not yet reaped;
 * a parked one is waiting or held again.)  Bounded by the ring's size. */
bool shmring__redeliver_holds_open(const struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	uint64_t f = atomic_load_explicit(&hdr->free_tail, memory_order_seq_cst);
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_seq_cst);
	for (uint64_t p = f, walked = 0; p < t && walked < r->nslots;) {
		struct slot_meta *m = meta_at(r, p);
		uint64_t s = atomic_load_explicit(&m->seq, memory_order_seq_cst);
		if (s == SLOT_SEQ(p, SLOT_COMMITTED))
			return true;
		if (s == SLOT_SEQ(p, SLOT_REDELIVER) && !parked_is_dead(r, p))
			return true;
		if (s != SLOT_SEQ(p, SLOT_RELEASED) && s != SLOT_SEQ(p, SLOT_REDELIVER))
			break; /* not of this lap: nothing held here */
		uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
		bool skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
		if (skip ? len > r->capacity : len > r->max_record)
			break;
		p += slots_for(len);
		walked += slots_for(len);
	}
	return false;
}

int shmring_requeue(struct shmring *ring, struct shmring_span *span)
{
	if (!ring || !span || !span->data)
		return -EINVAL;
	if (!ring->redeliver)
		return -EOPNOTSUPP;
	int slot = atomic_load_explicit(&ring->attach_slot, memory_order_relaxed);
	if (slot < 0)
		return -EINVAL;
	struct redeliver_area *a = &ring->hdr->rdl;
	if (span->redeliver_) {
		if (span->redeliver_ > REDELIVER_ENTRIES)
			return -EINVAL;
		unsigned i = span->redeliver_ - 1;
		uint64_t w = atomic_load_explicit(&a->list[i].word, memory_order_acquire);
		if (RDL_STATE(w) != RDL_HELD || RDL_HOLDER(w) != (unsigned)slot ||
		    atomic_load_explicit(&a->list[i].pos, memory_order_relaxed) != span->pos_)
			return -EINVAL; /* a dead letter (release it), or not ours */
		if (!settle(ring, i, w, slot, join_counted(ring)))
			return -EBADMSG;
	} else {
		uint64_t w;
		int i = entry_alloc(ring, slot, span->deliveries ? span->deliveries : 1, &w);
		if (i < 0)
			return -ENOBUFS;
		atomic_store_explicit(&a->list[i].pos, span->pos_, memory_order_relaxed);
		uint64_t s = SLOT_SEQ(span->pos_, SLOT_COMMITTED);
		if (!atomic_compare_exchange_strong_explicit(&meta_at(ring, span->pos_)->seq, &s,
		                                             SLOT_SEQ(span->pos_, SLOT_REDELIVER),
		                                             memory_order_seq_cst,
		                                             memory_order_relaxed)) {
			entry_free(ring, (unsigned)i, w);
			return -EBADMSG; /* we held it: only a hostile writer changes it */
		}
		settle(ring, (unsigned)i, w, slot, join_counted(ring));
	}
	shmring__op_rec_free(ring, span->claim_);
	span->data = NULL;
	return 0;
}

/* A dead letter into span; false if there is none. */
static bool take_dead(struct shmring *r, struct shmring_span *span)
{
	struct redeliver_area *a = &r->hdr->rdl;
	if (atomic_load_explicit(&a->dead_waiting, memory_order_relaxed) == 0)
		return false;
	struct op_rec *c;
	if (shmring__op_rec_alloc(r, &c)) /* for the in-flight limit only */
		return false;
	uint64_t high = list_high(r);
	for (unsigned i = 0; i < high; i++) {
		struct take tk;
		int64_t unused;
		if (entry_take(r, i, RDL_DEAD, RDL_DEADHELD, SIZE_MAX, &tk, &unused)) {
			atomic_fetch_sub_explicit(&a->dead_waiting, 1, memory_order_relaxed);
			span->data = data_at(r, tk.pos);
			span->len = tk.len;
			span->pos_ = tk.pos;
			span->claim_ = c;
			span->deliveries = tk.deliveries;
			span->redeliver_ = tk.rl;
			return true;
		}
	}
	shmring__op_rec_free(r, c);
	return false;
}

/* No dead letter can come any more: the stream has ended, nothing is held
 * or parked, none is waiting. */
static bool dead_over(const struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	uint64_t census = atomic_load_explicit(&hdr->census, memory_order_seq_cst);
	if (!atomic_load_explicit(&hdr->closed, memory_order_seq_cst) && !ring_eof(r, census))
		return false;
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_seq_cst) & RING_POS_MASK;
	return h == atomic_load_explicit(&hdr->cons_head, memory_order_seq_cst) &&
	       !list_has(r, RDL_DEAD) && !shmring__redeliver_holds_open(r);
}

/* A dead letter to read (the count says so and the list agrees: a count
 * one too high must not make a waiter spin), or the end. */
static bool dead_ready(const void *arg)
{
	const struct shmring *r = arg;
	return (atomic_load_explicit(&r->hdr->rdl.dead_waiting, memory_order_seq_cst) > 0 &&
	        list_has(r, RDL_DEAD)) ||
	       dead_over(r);
}

/* The prologue of the dead-letter calls: a redelivery ring, and this
 * handle a consumer. */
static int dead_enter(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	if (!ring->redeliver)
		return -EOPNOTSUPP;
	return ring_need_role(ring, SHMRING_CONSUMER);
}

ssize_t shmring_peek_dead(struct shmring *ring, struct shmring_span *span, int64_t timeout_ns)
{
	if (!span)
		return -EINVAL;
	int rc = dead_enter(ring);
	if (rc)
		return rc;
	struct waiter w;
	ring_waiter_init(ring, &w, timeout_ns);
	for (;;) {
		if (take_dead(ring, span))
			return (ssize_t)span->len;
		if (dead_over(ring))
			return -EPIPE;
		int brc = shmring__ec_block(&ring->hdr->not_empty, dead_ready, ring, &w);
		ring_sweep_after_wait(ring, brc, &w, STALL_OTHER,
		                      atomic_load_explicit(&ring->hdr->cons_head, memory_order_relaxed));
		if (brc)
			return brc;
	}
}

ssize_t shmring_drop_dead(struct shmring *ring)
{
	int rc = dead_enter(ring);
	if (rc)
		return rc;
	ssize_t n = 0;
	struct shmring_span sp;
	while (take_dead(ring, &sp)) {
		shmring_release(ring, &sp);
		n++;
	}
	return n;
}

void shmring__redeliver_info(const struct shmring *r, struct shmring_info *info)
{
	const struct redeliver_area *a = &r->hdr->rdl;
	int64_t pending = atomic_load_explicit(&a->pending, memory_order_relaxed);
	info->redelivered = atomic_load_explicit(&a->redelivered, memory_order_relaxed);
	info->redeliver_waiting = pending > 0 ? (uint64_t)pending : 0;
	info->dead_letters = atomic_load_explicit(&a->dead_letters, memory_order_relaxed);
	info->dead_waiting = atomic_load_explicit(&a->dead_waiting, memory_order_relaxed);
}
