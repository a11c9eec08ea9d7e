/*
 * broadcast.c - the frontier of a broadcast ring, and joining it
 * (docs/design.md section 10).
 *
 * On a broadcast ring records are never taken: every subscriber reads them
 * where they are, with a cursor of its own (its attachment entry), and
 * nothing is released.  What producers may overwrite is decided by one
 * frontier, bcast.tail: every position below it may be reused.  Producers
 * that run short of room advance it (helping, as free_tail on plain rings),
 * over published records only, never past a tethered subscriber's cursor,
 * and no further than they need (plus a step of at least 1/16 of the ring):
 * what lies between the frontier and prod_head is the history a
 * SHMRING_SUB_OLDEST subscriber starts from.
 *
 * The frontier moves together with recno, the number of records (skip
 * records excluded) below it, by one 16-byte CAS: a lossy subscriber that
 * finds itself lapped re-anchors at {tail, recno} and knows exactly how many
 * records it missed.  The same word holds gen, which a joining subscriber
 * bumps (with the same CAS) after publishing its cursor: an advance computed
 * from a frontier read before the join fails its CAS and looks again, so it
 * cannot pass a cursor it did not see.
 */
#include <errno.h>
#include <string.h>

#include "bcast.h"
#include "shmring_broadcast.h"

/* The 16-byte CAS of {tail, word}: address-free (one locked instruction on
 * the shared line).  On failure *tail and *word get the current values. */
static bool frontier_cas(struct ring_header *hdr, uint64_t *tail, uint64_t *word,
                         uint64_t new_tail, uint64_t new_word)
{
#if defined(__x86_64__)
	typedef struct { uint64_t lo, hi; } __attribute__((may_alias, aligned(16))) pair;
	bool ok;
	__asm__ __volatile__("lock cmpxchg16b %1"
	                     : "=@ccz"(ok), "+m"(*(volatile pair *)&hdr->bcast.tail),
	                       "+a"(*tail), "+d"(*word)
	                     : "b"(new_tail), "c"(new_word)
	                     : "memory");
	return ok;
#else
	unsigned __int128 expect = ((unsigned __int128)*word << 64) | *tail;
	unsigned __int128 want = ((unsigned __int128)new_word << 64) | new_tail;
	bool ok = __atomic_compare_exchange_n((unsigned __int128 *)&hdr->bcast.tail, &expect, want,
	                                      false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	*tail = (uint64_t)expect;
	*word = (uint64_t)(expect >> 64);
	return ok;
#endif
}

/* A consistent {tail, word}: both come from the same CAS (tail only grows,
 * so an unchanged tail around the read of word means no advance between;
 * a gen bump in between leaves recno as it was). */
static void frontier_read(const struct ring_header *hdr, uint64_t *tail, uint64_t *word)
{
	uint64_t t = atomic_load_explicit(&hdr->bcast.tail, memory_order_acquire);
	for (;;) {
		uint64_t w = atomic_load_explicit(&hdr->bcast.word, memory_order_acquire);
		uint64_t t2 = atomic_load_explicit(&hdr->bcast.tail, memory_order_acquire);
		if (t2 == t) {
			*tail = t;
			*word = w;
			return;
		}
		t = t2;
	}
}

/* The lowest cursor of a tethered subscriber, or limit.  seq_cst: the room
 * Dekker pair with a subscriber that advances its cursor and then reads
 * not_full's waiters (subscriber.c).  Walks the ring's whole table (nattach
 * entries, one 64-byte line each: 16 KiB at the default 256, 4 MiB at 65535);
 * only from shmring__bcast_reclaim, i.e. when a producer needs room beyond
 * its cached frontier, and the frontier then moves at least 1/16 of the ring
 * (frontier_step), so at most about 16 scans per lap of the ring, never one
 * per put. */
static uint64_t tethered_gate(const struct shmring *r, uint64_t limit)
{
	uint64_t gate = limit;
	for (int i = 0; i < (int)r->nattach; i++) {
		const struct attach_entry *e = ring_attach(r, i);
		unsigned roles = atomic_load_explicit(&e->roles, memory_order_seq_cst);
		if ((roles & (ROLE_SUBSCRIBER | ROLE_SUB_LOSSY | SHMRING_CONSUMER)) !=
		    (ROLE_SUBSCRIBER | SHMRING_CONSUMER))
			continue;
		uint64_t c = atomic_load_explicit(&e->sub_cursor, memory_order_seq_cst);
		if (c < gate)
			gate = c;
	}
	return gate;
}

/* Slots the frontier keeps free ahead of prod_head: room for the largest
 * record, and at least 1/16 of the ring, so that it moves in steps. */
static uint64_t frontier_step(const struct shmring *r)
{
	uint64_t k = slots_for(r->max_record), sixteenth = r->nslots / 16;
	return k > sixteenth ? k : sixteenth;
}

uint64_t shmring__bcast_reclaim(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	uint64_t t, w;
	frontier_read(hdr, &t, &w);
	for (;;) {
		uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_seq_cst) & RING_POS_MASK;
		uint64_t step = frontier_step(r);
		uint64_t target = h + step > r->nslots ? h + step - r->nslots : 0;
		if (t >= target)
			break;
		/* The gate after the frontier's read: a subscriber that joined
		 * after that read bumped gen, and our CAS below fails. */
		uint64_t gate = tethered_gate(r, target);
		uint64_t p = t, recs = 0;
		for (uint64_t scanned = 0; p < target && p < gate && scanned < r->nslots;) {
			struct slot_meta *m = meta_at(r, p);
			/* Published records only: an unpublished claim stops the
			 * frontier (its producer finishes it, or a sweep turns it
			 * into a skip record).  acquire: the record's meta. */
			if (atomic_load_explicit(&m->seq, memory_order_seq_cst) !=
			    SLOT_SEQ(p, SLOT_COMMITTED))
				break;
			uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
			bool skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
			if (skip ? len > r->capacity : len > r->max_record)
				break; /* corrupt: leave it there */
			p += slots_for(len);
			scanned += slots_for(len);
			recs += !skip;
		}
		if (p == t)
			break;
		/* seq_cst (a locked instruction): producers that read the new
		 * tail (acquire) and then claim write only after it. */
		if (frontier_cas(hdr, &t, &w, p, w + (recs << BCAST_GEN_BITS))) {
			t = p;
			/* free_tail mirrors it, for shmring_info (never used to
			 * claim on a broadcast ring) */
			uint64_t f = atomic_load_explicit(&hdr->free_tail, memory_order_relaxed);
			while (f < t && !atomic_compare_exchange_weak_explicit(
			                        &hdr->free_tail, &f, t, memory_order_relaxed,
			                        memory_order_relaxed))
				;
			break;
		}
		/* lost the race (or a subscriber joined): t, w are current */
	}
	atomic_store_explicit(&r->cached_free, t, memory_order_release);
	return t;
}

bool shmring__bcast_subscribed(const struct shmring *r)
{
	return r->sub.active &&
	       r->sub.slot == atomic_load_explicit(&r->attach_slot, memory_order_relaxed) &&
	       r->sub.fork_gen == atomic_load_explicit(&shmring__fork_gen, memory_order_relaxed);
}

/* Walk the published records from p up to h (bounded by the ring's size,
 * and by the one record-length check: slot.h's walker): the first position
 * not published, or h; *recs += the records passed (skips excluded). */
static uint64_t walk_published(const struct shmring *r, uint64_t p, uint64_t h, uint64_t *recs)
{
	struct slot_walk w = slot_walk_from(r, p, h, SLOT_COMMITTED, memory_order_acquire);
	struct record rec;
	while (slot_walk_look(&w, &rec)) {
		*recs += !rec.skip;
		slot_walk_step(&w, &rec);
	}
	return w.pos;
}

/* The same for a lossy joiner, which holds nothing back: producers may
 * overwrite what it walks.  From the frontier {t, w} up to h (prod_head when
 * it joined).  Each record's reading is checked against the frontier before
 * it is trusted (as subscriber.c still_there: a producer writes only into
 * room the frontier has passed, so a record the frontier has not passed was
 * intact); one it has passed, the walk goes on from where the frontier
 * stands now, whose recno is exact, not from the start.  Returns where the
 * walk stopped (the first position not published, or h; or the frontier
 * if it passed h meanwhile) and sets *recno to the records below it.
 * Before, a walk the frontier moved during was thrown away whole and began
 * again from the frontier: with a producer putting faster than a lap could
 * be walked, a subscribe never returned while the producer ran
 * (broadcast::lossy_subscribe_returns_while_a_producer_laps_the_ring). */
static uint64_t walk_published_lossy(const struct shmring *r, uint64_t t, uint64_t w,
                                     uint64_t h, uint64_t *recno)
{
	uint64_t recs = BCAST_RECNO(w);
	struct slot_walk sw = slot_walk_from(r, t, h, SLOT_COMMITTED, memory_order_acquire);
	for (;;) {
		struct record rec;
		bool more = slot_walk_look(&sw, &rec);
		if (bcast_passed(r, sw.pos)) { /* what was read may be a later lap's */
			frontier_read(r->hdr, &t, &w);
			*recno = BCAST_RECNO(w);
			if (t >= h)
				return t;
			recs = *recno;
			sw = slot_walk_from(r, t, h, SLOT_COMMITTED, memory_order_acquire);
			continue;
		}
		if (!more)
			break;
		recs += !rec.skip;
		slot_walk_step(&sw, &rec);
	}
	*recno = recs;
	return sw.pos;
}

int shmring__bcast_subscribe(struct shmring *r, unsigned flags)
{
	if (shmring__bcast_subscribed(r))
		return -EALREADY;
	int rc = ring_need_role(r, SHMRING_CONSUMER);
	if (rc)
		return rc;
	struct ring_header *hdr = r->hdr;
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	if (slot < 0)
		return -EUSERS;
	struct attach_entry *e = ring_attach(r, slot);
	bool lossy = flags & SHMRING_SUB_LOSSY;
	uint64_t t, w;
	frontier_read(hdr, &t, &w);
	atomic_store_explicit(&e->sub_lost, 0, memory_order_relaxed);
	atomic_store_explicit(&e->sub_cursor, t, memory_order_seq_cst);
	atomic_fetch_or_explicit(&e->roles, ROLE_SUBSCRIBER | (lossy ? ROLE_SUB_LOSSY : 0),
	                         memory_order_seq_cst);
	uint64_t start, recno;
	for (;;) {
		/* Publish the cursor to every later frontier advance: bump gen.
		 * If the frontier moved meanwhile, follow it and try again. */
		while (!frontier_cas(hdr, &t, &w, t,
		                     (w & ~BCAST_GEN_MASK) | ((w + 1) & BCAST_GEN_MASK)))
			atomic_store_explicit(&e->sub_cursor, t, memory_order_seq_cst);
		/* From here on (tethered) the frontier stays at or below t. */
		recno = BCAST_RECNO(w);
		start = t;
		if (!(flags & SHMRING_SUB_OLDEST)) { /* the next record published */
			uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
			start = lossy ? walk_published_lossy(r, t, w, h & RING_POS_MASK, &recno)
			              : walk_published(r, t, UINT64_MAX, &recno);
			break;
		}
		if (!lossy)
			break;
		/* From the oldest record, lossy: it holds nothing back; if the
		 * frontier passed t meanwhile, start where it stands now. */
		if (!bcast_passed(r, t))
			break;
		frontier_read(hdr, &t, &w);
		atomic_store_explicit(&e->sub_cursor, t, memory_order_relaxed);
	}
	r->sub.flags = flags;
	r->sub.slot = slot;
	r->sub.fork_gen = atomic_load_explicit(&shmring__fork_gen, memory_order_relaxed);
	atomic_store_explicit(&r->sub.next, start, memory_order_relaxed);
	r->sub.recno = recno & BCAST_RECNO_MASK;
	r->sub.lost = 0;
	r->sub.lapped = false;
	r->sub.holding = false;
	r->sub.active = true;
	atomic_store_explicit(&e->sub_cursor, start, memory_order_seq_cst);
	ring_notify_producers(r);
	return 0;
}

int shmring_subscribe(struct shmring *ring, unsigned flags)
{
	if (!ring || !ring_is_bcast(ring) || (flags & ~(SHMRING_SUB_LOSSY | SHMRING_SUB_OLDEST)))
		return -EINVAL;
	return shmring__bcast_subscribe(ring, flags);
}

uint64_t shmring_lost(const struct shmring *ring)
{
	if (!ring || !ring_is_bcast(ring) || !shmring__bcast_subscribed(ring))
		return 0;
	return ring->sub.lost;
}

/* Published records (skips excluded) in [p, h), bounded by the ring. */
static uint64_t count_records(const struct shmring *r, uint64_t p, uint64_t h)
{
	uint64_t n = 0;
	walk_published(r, p, h, &n);
	return n;
}

uint64_t shmring__bcast_cursor_sum(const struct shmring *r)
{
	uint64_t sum = 0;
	for (int i = 0; i < (int)r->nattach; i++) {
		const struct attach_entry *e = ring_attach(r, i);
		unsigned roles = atomic_load_explicit(&e->roles, memory_order_relaxed);
		if ((roles & (ROLE_SUBSCRIBER | SHMRING_CONSUMER)) == (ROLE_SUBSCRIBER | SHMRING_CONSUMER))
			sum += atomic_load_explicit(&e->sub_cursor, memory_order_relaxed);
	}
	return sum;
}

int shmring_subscribers(const struct shmring *ring, struct shmring_subscriber *out, size_t n)
{
	if (!ring || (n && !out))
		return -EINVAL;
	const struct ring_header *hdr = ring->hdr;
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire) & RING_POS_MASK;
	uint64_t t = bcast_tail(ring);
	int count = 0;
	for (int i = 0; i < (int)ring->nattach; i++) { /* the ring's own table */
		const struct attach_entry *e = ring_attach(ring, i);
		uint64_t id = atomic_load_explicit(&e->id, memory_order_acquire);
		unsigned roles = atomic_load_explicit(&e->roles, memory_order_acquire);
		if (!id || (roles & (ROLE_SUBSCRIBER | SHMRING_CONSUMER)) !=
		                   (ROLE_SUBSCRIBER | SHMRING_CONSUMER))
			continue;
		if ((size_t)count < n) {
			struct shmring_subscriber *s = &out[count];
			uint64_t c = atomic_load_explicit(&e->sub_cursor, memory_order_acquire);
			memset(s, 0, sizeof *s);
			s->pid = (pid_t)(id & ATTACH_PID_MASK);
			s->flags = (roles & ROLE_SUB_LOSSY) ? SHMRING_SUB_LOSSY : 0;
			s->lag_bytes = (h > c ? h - c : 0) << RING_SLOT_SHIFT;
			s->lapped = c < t;
			s->lag_records = count_records(ring, c < t ? t : c, h);
			s->lost = atomic_load_explicit(&e->sub_lost, memory_order_relaxed);
		}
		count++;
	}
	return count;
}
