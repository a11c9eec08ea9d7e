/*
 * recover.c - finishing the claims of a process that died (docs/design.md,
 * "Crash recovery").  Runs from a sweep, on an entry the sweep has made its
 * own (id = its own id | ATTACH_REAPING_TAG), so never twice at once.
 *
 * An entry whose recovery waits on a live process stays marked and is
 * retried by a later sweep (attach.c); every step is safe to redo.
 *
 * A dead producer's claim record says "slots [h, h + n)".  What it claimed
 * and never published becomes skip records: consumers pass over them and
 * the room is reclaimed as usual.  A dead consumer's record says "records
 * from t": what it took and never released is released, counted in
 * lost_records, and its tasks are forgiven.
 *
 * Three rules keep this safe against the living:
 *  - only positions below prod_head (cons_head) are touched: someone claimed
 *    (took) them, and an unsuccessful CAS of the dead process did not;
 *  - never a position a live process's claim record covers: the live owner
 *    will finish it (a stale record of the dead one may overlap it);
 *  - every state change is a CAS from the state just seen, so a racing owner
 *    or a slot already reused makes it a no-op.
 */
#include "attach.h"
#include "latch.h"
#include "liveness.h"
#include "slot.h"
#include "redeliver.h"

/* The entries whose claims count as live: taken, not being reaped, and
 * (unless pending for a child being forked) of a live process.  Computed
 * once per recovery: two dead processes' overlapping announcements must not
 * wait for each other. */
static uint64_t live_entries(struct shmring *r, int dead)
{
	uint64_t mask = 0;
	for (int j = 0; j < SHMRING_MAX_ATTACH; j++) {
		uint64_t id = atomic_load_explicit(&r->hdr->attach[j].id, memory_order_acquire);
		if (j == dead || id == 0 || (id & ATTACH_REAPING_TAG))
			continue;
		if ((id & ATTACH_PENDING_TAG) || shmring__id_alive(id))
			mask |= UINT64_C(1) << j;
	}
	return mask;
}

/* Does a claim record of a live attachment, of that side, cover p? */
static bool live_claim_covers(struct shmring *r, uint64_t live, bool producer, uint64_t p)
{
	struct ring_header *hdr = r->hdr;
	while (live) {
		int j = __builtin_ctzll(live);
		live &= live - 1;
		uint64_t busy = atomic_load_explicit(&hdr->attach[j].op_busy, memory_order_acquire);
		while (busy) {
			int i = __builtin_ctzll(busy);
			busy &= busy - 1;
			const struct op_rec *c = &hdr->op_recs[j][i];
			uint64_t w = atomic_load_explicit(&c->word, memory_order_acquire);
			unsigned kind = OPREC_KIND(w);
			if (kind == OPREC_FREE || (kind == OPREC_CONSUME) == producer)
				continue;
			uint64_t q = OPREC_POS(w);
			uint64_t n = OPREC_SLOTS(atomic_load_explicit(&c->extent, memory_order_relaxed));
			if (q <= p && p - q < n)
				return true;
		}
	}
	return false;
}

/* The slot at p starts a record of this lap (published, or released). */
static bool is_start(struct shmring *r, uint64_t p)
{
	uint64_t s = atomic_load_explicit(&meta_at(r, p)->seq, memory_order_acquire);
	return s == SLOT_SEQ(p, SLOT_COMMITTED) || s == SLOT_SEQ(p, SLOT_RELEASED) ||
	       s == SLOT_SEQ(p, SLOT_REDELIVER); /* redeliver hook: a parked record */
}

static uint64_t record_slots(struct shmring *r, uint64_t p)
{
	struct slot_meta *m = meta_at(r, p);
	uint64_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
	bool skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
	uint64_t n = slots_for(len);
	if ((skip ? len > r->capacity : len > r->max_record) || n == 0)
		return 0; /* corrupt: stop */
	return n;
}

/* Join tasks that will never be done: take them off (not below zero). */
static void forgive_tasks(struct shmring *r, uint64_t n)
{
	struct latch *l = &r->hdr->join;
	/* Hostile bytes: n comes from shared words (got - done, a claim's
	 * record count); clamped, c - n below cannot overflow (fuzz_attach). */
	if (n > INT64_MAX)
		n = INT64_MAX;
	int64_t c = atomic_load_explicit(&l->count, memory_order_relaxed), to;
	do {
		to = c > (int64_t)n ? c - (int64_t)n : 0;
		if (to == c)
			return;
	} while (!atomic_compare_exchange_weak_explicit(&l->count, &c, to, memory_order_seq_cst,
	                                                memory_order_relaxed));
	atomic_fetch_add_explicit(&r->hdr->lost_tasks, (uint64_t)(c - to), memory_order_relaxed);
	if (to == 0)
		ec_wake(&l->ec, ring_stats(r));
}

#define SKIP_CHUNK (UINT64_C(1) << 25) /* slots per skip record: len fits 31 bits */

/* The records a dead producer counted and never published, from p (the
 * start of its unpublished suffix: a batch publishes in order) up to e or
 * the next published start; records: how many the claim holds (0: unknown).
 * A one-record claim has that one: it is counted before its length is
 * written (shmring_putv), so its length is not read.  A claim of several
 * records (a batch) wrote their lengths before it was marked COUNTED
 * (acquire of the claim word), so they can be walked; a length that is not
 * credible ends the walk (counting that one). */
static uint64_t unpublished_records(struct shmring *r, uint64_t p, uint64_t e, uint64_t records)
{
	if (records == 1)
		return 1;
	uint64_t n = 0;
	for (uint64_t x = p; x < e && (x == p || !is_start(r, x)); n++) {
		uint64_t k = record_slots(r, x);
		if (!k)
			return n + 1;
		x += k;
	}
	return n;
}

/* Returns false if part of the claim is covered by a live one (retry). */
static bool recover_produce(struct shmring *r, uint64_t live, struct op_rec *c,
                            uint64_t h, uint64_t slots, uint64_t records, bool counted)
{
	struct ring_header *hdr = r->hdr;
	uint64_t ph = atomic_load_explicit(&hdr->prod_head, memory_order_acquire) & RING_POS_MASK;
	uint64_t e = h + slots;
	if (e > ph || slots > r->nslots)
		return true; /* its CAS did not succeed (that claim would end by prod_head) */
	uint64_t recovered = 0;
	bool complete = true, forgiven = false;
	for (uint64_t p = h; p < e;) {
		/* Live cover first, then the slot: a live producer clears its claim
		 * record only after publishing, so "not covered" read first means a
		 * publication of it is visible to the loads that follow.  (The
		 * other order lets it publish in between, and the skip record's
		 * len/flags would overwrite its record: found by the spin model.) */
		if (live_claim_covers(r, live, true, p)) {
			/* A live producer's: it will publish.  Stop here and let
			 * the retry resume from p (the record now says [p, e)):
			 * a retry from h could meet a slot already reused in a
			 * later lap first and stop for good (found by the spin
			 * model). */
			atomic_store_explicit(&c->extent, OPREC_EXTENT(e - p, p == h ? records : 0),
			                      memory_order_relaxed);
			atomic_store_explicit(&c->word,
			                      OPREC_WORD(p, counted && !forgiven ? OPREC_COUNTED : OPREC_PRODUCE),
			                      memory_order_relaxed);
			complete = false;
			break;
		}
		uint64_t s = atomic_load_explicit(&meta_at(r, p)->seq, memory_order_acquire);
		if ((s >> 2) > p)
			break; /* reused in a later lap: it all went through long ago */
		if (s == SLOT_SEQ(p, SLOT_COMMITTED) || s == SLOT_SEQ(p, SLOT_RELEASED) ||
		    s == SLOT_SEQ(p, SLOT_REDELIVER) /* redeliver hook */) {
			uint64_t n = record_slots(r, p);
			if (!n)
				break;
			p += n;
			continue;
		}
		/* An unpublished record holds every consumer back at its start, so
		 * a stale slot below cons_head is not an unpublished claim of this
		 * lap: the announcement was stale (its CAS lost) and the slot has
		 * been through its record since.  Never write there. */
		if (p < atomic_load_explicit(&hdr->cons_head, memory_order_acquire))
			break;
		/* Dead territory, up to the next live claim or published start
		 * (checked in that order, as above). */
		uint64_t q = p + 1;
		while (q < e && q - p < SKIP_CHUNK && !live_claim_covers(r, live, true, q) &&
		       !is_start(r, q))
			q++;
		/* Its join tasks: counted from the records themselves, once per
		 * claim (the unpublished ones are a suffix, so the first stretch
		 * of dead territory starts them all).  Not "records - published":
		 * a claim found long after its records were published (the owner
		 * died before clearing it) has slots already reused, and the walk
		 * above cannot count what it stepped over then. */
		uint64_t unpub = counted && !forgiven ? unpublished_records(r, p, e, records) : 0;
		struct slot_meta *m = meta_at(r, p);
		atomic_store_explicit(&m->len, (uint32_t)((q - p) << RING_SLOT_SHIFT), memory_order_relaxed);
		atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
		atomic_store_explicit(&m->flags, SLOT_F_SKIP, memory_order_relaxed);
		/* seq_cst: publishes the skip record like ring_publish does */
		if (atomic_compare_exchange_strong_explicit(&m->seq, &s, SLOT_SEQ(p, SLOT_COMMITTED),
		                                            memory_order_seq_cst,
		                                            memory_order_relaxed)) {
			recovered++;
			if (unpub) {
				forgive_tasks(r, unpub);
				forgiven = true;
			}
		}
		p = q;
	}
	if (recovered) {
		atomic_fetch_add_explicit(&hdr->recovered_claims, recovered, memory_order_relaxed);
		ec_notify(r, &hdr->not_empty);
	}
	return complete;
}

static bool recover_consume(struct shmring *r, uint64_t live, int slot, uint64_t t, uint64_t slots)
{
	struct ring_header *hdr = r->hdr;
	uint64_t ch = atomic_load_explicit(&hdr->cons_head, memory_order_acquire);
	uint64_t e = t + slots;
	if (slots > r->nslots)
		return true;
	if (e > ch)
		e = ch; /* beyond cons_head nothing is taken: never release that */
	uint64_t lost = 0;
	bool released = false, complete = true;
	for (uint64_t p = t; p < e;) {
		struct slot_meta *m = meta_at(r, p);
		uint64_t s = atomic_load_explicit(&m->seq, memory_order_acquire);
		if ((s >> 2) > p)
			break; /* reused in a later lap */
		if (s != SLOT_SEQ(p, SLOT_COMMITTED) && s != SLOT_SEQ(p, SLOT_RELEASED) &&
		    s != SLOT_SEQ(p, SLOT_REDELIVER)) /* redeliver hook: parked, step over */
			break;
		uint64_t n = record_slots(r, p);
		if (!n)
			break;
		if (s == SLOT_SEQ(p, SLOT_COMMITTED) && live_claim_covers(r, live, false, p)) {
			complete = false; /* a live consumer's (or about to lose its CAS) */
		} else if (s == SLOT_SEQ(p, SLOT_COMMITTED)) {
			bool skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
			/* redeliver hook: parked for another delivery instead of lost
			 * (0: the redelivery list is full, lost as without the flag) */
			if (!skip && r->redeliver && shmring__redeliver_park(r, slot, p)) {
				/* parked: not lost, its task stays unfinished */
			} else if (atomic_compare_exchange_strong_explicit( /* seq_cst: a release, as ring_release's */&m->seq, &s, SLOT_SEQ(p, SLOT_RELEASED),
			                                            memory_order_seq_cst,
			                                            memory_order_relaxed)) {
				released = true;
				lost += !skip;
			}
		}
		p += n;
	}
	if (lost) {
		atomic_fetch_add_explicit(&hdr->lost_records, lost, memory_order_relaxed);
		forgive_tasks(r, lost);
	}
	if (released)
		ec_notify(r, &hdr->not_full);
	return complete;
}

bool shmring__recover_entry(struct shmring *r, int slot)
{
	struct ring_header *hdr = r->hdr;
	struct attach_entry *e = &hdr->attach[slot];
	uint64_t live = live_entries(r, slot);
	/* redeliver hook: records it held again, dead letters it was reading,
	 * parks a reaper of it left half done */
	if (r->redeliver)
		shmring__redeliver_recover(r, slot);
	uint64_t busy = atomic_load_explicit(&e->op_busy, memory_order_acquire);
	uint64_t left = 0; /* records to look at again */
	while (busy) {
		int i = __builtin_ctzll(busy);
		busy &= busy - 1;
		struct op_rec *c = &hdr->op_recs[slot][i];
		uint64_t w = atomic_load_explicit(&c->word, memory_order_acquire);
		uint64_t x = atomic_load_explicit(&c->extent, memory_order_relaxed);
		bool done = true;
		switch (OPREC_KIND(w)) {
		case OPREC_PRODUCE:
		case OPREC_COUNTED:
			done = recover_produce(r, live, c, OPREC_POS(w), OPREC_SLOTS(x),
			                       OPREC_RECORDS(x), OPREC_KIND(w) == OPREC_COUNTED);
			break;
		case OPREC_CONSUME:
			done = recover_consume(r, live, slot, OPREC_POS(w), OPREC_SLOTS(x));
			break;
		default:
			break;
		}
		if (done)
			atomic_store_explicit(&c->word, 0, memory_order_relaxed);
		else
			left |= UINT64_C(1) << i;
	}
	atomic_store_explicit(&e->op_busy, left, memory_order_relaxed);
	if (left)
		return false;
	/* Tasks it took (get returned them) and never marked done. */
	if (atomic_load_explicit(&hdr->census, memory_order_acquire) & CENSUS_JOIN) {
		uint64_t got = atomic_load_explicit(&e->got, memory_order_relaxed);
		uint64_t done = atomic_load_explicit(&e->done, memory_order_relaxed);
		if (got > done)
			forgive_tasks(r, got - done);
		atomic_store_explicit(&e->got, 0, memory_order_relaxed);
		atomic_store_explicit(&e->done, 0, memory_order_relaxed);
	}
	return true;
}

/* redeliver hook: dead letters' tasks are forgiven too (redeliver.c). */
void shmring__forgive_tasks(struct shmring *r, uint64_t n)
{
	forgive_tasks(r, n);
}
