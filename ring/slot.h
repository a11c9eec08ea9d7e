/*
 * slot.h - where a position's meta entry and payload live, and the state
 * changes of a slot (private): write the meta, publish, release.  The
 * memory order of each is in docs/design.md section 3.
 */
#ifndef SHMRING_SLOT_H
#define SHMRING_SLOT_H

#include "fence.h"
#include "handle.h"

/* The handle's geometry, copied into a local by a hot path once: the
 * compiler must reload a handle field after every acquire or seq_cst
 * atomic (another thread might have written it), so a function that
 * computes meta_at several times around its atomics reloads mask, shift and
 * base each time (docs/perf.md, "Cost per record").  A local copy stays in
 * registers. */
struct ring_geom {
	struct slot_meta *meta;
	unsigned char    *data;
	uint64_t          mask, meta_lo, meta_hi;
	unsigned          meta_shift;
};
static inline struct ring_geom ring_geom(const struct shmring *r)
{
	return (struct ring_geom){ r->meta, r->data, r->mask, r->meta_lo, r->meta_hi,
		                   r->meta_shift };
}

/* The meta entry of the slot at pos (handle.h has the formula).  Split
 * layout: neighbouring slots' entries are spread a quarter of the array
 * apart (four entries share a cache line): otherwise a consumer releasing
 * record i and the producer publishing record i + 1 would fight over one
 * line.  Inline layout: the start of the slot, in the record's own line.
 * The byte offset, with the slot mask folded into meta_lo and meta_hi: two
 * ands, a shift, and an lea that scales and adds (6 instructions a put
 * + get pair fewer than an entry index from the masked slot; perf/pair_cost,
 * fourteenth session). */
static inline size_t meta_offset(uint64_t pos, uint64_t lo, uint64_t hi, unsigned shift)
{
	return (size_t)(((pos & lo) << shift) + ((pos & hi) << 2));
}
static inline struct slot_meta *meta_from(struct slot_meta *meta, size_t off)
{
	return (struct slot_meta *)((unsigned char *)meta + off);
}
static inline struct slot_meta *geom_meta(const struct ring_geom *g, uint64_t pos)
{
	return meta_from(g->meta, meta_offset(pos, g->meta_lo, g->meta_hi, g->meta_shift));
}
static inline unsigned char *geom_data(const struct ring_geom *g, uint64_t pos)
{
	return g->data + ((pos & g->mask) << RING_SLOT_SHIFT);
}
/* The same from the handle (written out, not through ring_geom: the copy
 * of the whole struct costs instructions where only one is computed). */
static inline struct slot_meta *meta_at(const struct shmring *r, uint64_t pos)
{
	return meta_from(r->meta, meta_offset(pos, r->meta_lo, r->meta_hi, r->meta_shift));
}
static inline unsigned char *data_at(const struct shmring *r, uint64_t pos)
{
	return r->data + ((pos & r->mask) << RING_SLOT_SHIFT);
}

/* Ask for a cache line we are about to write, in exclusive state, so that
 * its transfer from the peer's cache overlaps the work before the write
 * (a later locked instruction would otherwise wait for it).  PREFETCHW is a
 * NOP on x86 CPUs without it; elsewhere, the compiler's write prefetch. */
static inline void prefetch_for_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/* --- state changes ------------------------------------------------------- */

/* Fill a claimed record's meta entry m (at pos) (before publication, so
 * relaxed: the seq store that publishes it is a release). */
static inline void meta_write(struct slot_meta *m, uint32_t len, uint16_t flags)
{
	atomic_store_explicit(&m->len, len, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	atomic_store_explicit(&m->flags, flags, memory_order_relaxed);
}
static inline void ring_write_meta(struct shmring *r, uint64_t pos, uint32_t len, uint16_t flags)
{
	meta_write(meta_at(r, pos), len, flags);
}
/* Publish the record at pos.  Release, and N1 of the eventcount protocol
 * on not_empty (eventcount.c), ordered before the read of its waiters (N2,
 * ring_notify_consumers): a seq_cst store, or on a light ring the
 * asymmetric fence (fence.h): a compiler barrier here, the waiters'
 * membarrier. */
static inline void meta_publish(const struct shmring *r, struct slot_meta *m, uint64_t pos)
{
	fence_store_n1(&m->seq, SLOT_SEQ(pos, SLOT_COMMITTED), r->light);
}
static inline void ring_publish(struct shmring *r, uint64_t pos)
{
	meta_publish(r, meta_at(r, pos), pos);
}
/* Release a taken record: its slots may be reused.  Release, and N1 of
 * the eventcount protocol on not_full, ordered before the read of its
 * waiters (N2, ring_notify_producers) as meta_publish's; a waiting
 * producer's re-check (W2) is the seq_cst load of seq in space.c's
 * reclaim. */
static inline void meta_release(const struct shmring *r, struct slot_meta *m, uint64_t pos)
{
	fence_store_n1(&m->seq, SLOT_SEQ(pos, SLOT_RELEASED), r->light);
}
static inline void ring_release(struct shmring *r, uint64_t pos)
{
	meta_release(r, meta_at(r, pos), pos);
}
void shmring__free_tail_follow(struct shmring *r, uint64_t pos);
/* When a consumer moves free_tail on (space.c, shmring__free_tail_follow,
 * from wherever free_tail stands, over released records up to cons_head):
 * once per FOLLOW_EVERY slots, after releasing the record [pos, next) that
 * crosses a multiple of it (each multiple is crossed by exactly one record,
 * whichever path took it).  Following after every record cost a full ring's
 * stream more than half its rate: the consumer's CAS took free_tail's line
 * from a producer that reclaims on almost every put once the ring is full,
 * and the meta lines of the records just released with it (a 1x1 stream of
 * 2 M 64-byte records: 13.2 M/s and 153 ns of CPU a record, against
 * 31.8-32.1 M/s and 64-66 ns; docs/perf.md, eleventh session).  A producer
 * that runs out of room by its hint then walks about FOLLOW_EVERY records,
 * not the lap of the third session's stall. */
#define FOLLOW_EVERY 1024u
static inline bool ring_free_tail_due(uint64_t pos, uint64_t next)
{
	return (pos / FOLLOW_EVERY) != (next / FOLLOW_EVERY);
}
/* The same for a record of one slot, [next - 1, next): it crosses a
 * multiple when next is one (the one-record get's test: 4 instructions a
 * put + get pair fewer; perf/pair_cost, fourteenth session). */
static inline bool ring_free_tail_due_one(uint64_t next)
{
	return next % FOLLOW_EVERY == 0;
}
/* The follow from wherever free_tail stands (a sweep's, recover.c).
 * Relaxed: where to start; a stale value walks released records again or
 * stops at a reused slot, and the CAS from it fails if someone moved
 * free_tail. */
static inline void ring_free_tail_catch_up(struct shmring *r)
{
	shmring__free_tail_follow(r, atomic_load_explicit(&r->hdr->free_tail,
	                                                  memory_order_relaxed));
}
/* The one-record get's follow (copy.c follow_then_get), by the owner of
 * op_solo (handle.h), after its leaf get of the record ending at end, which
 * crossed a multiple of FOLLOW_EVERY.  If its one-record gets since its last
 * follow number the slots from where that follow ended to end, every one of
 * those slots was a record it took itself, in one slot, and released before
 * this (each leaf get releases before it returns; positions only grow): no
 * walk to find that out.  Then free_tail, standing in that span, moves to end
 * by a CAS (release: the owner's release stores are sequenced before it, as
 * ring_free_tail_follow_run's).  Anything else in the span (another
 * consumer's record, the owner's own by another path, a follow that stopped
 * short) makes the count fall short: the walk, as before.  The walk cost 28
 * of a put + get pair's instructions with one consumer (perf/pair_cost put;
 * docs/perf.md, thirteenth session).  counted_follows: the follows made
 * without the walk (tests/test_reclaim.c). */
static inline void ring_free_tail_follow_own(struct shmring *r, uint64_t end)
{
	struct op_rec_solo *s = &r->op_solo;
	uint64_t f = atomic_load_explicit(&r->hdr->free_tail, memory_order_relaxed);
	if (s->follow_at <= f && f < end && s->gets_since_follow == end - s->follow_at) {
		atomic_compare_exchange_strong_explicit(&r->hdr->free_tail, &f, end,
		                                        memory_order_release, memory_order_relaxed);
		s->counted_follows++;
	} else
		shmring__free_tail_follow(r, f);
	s->follow_at = end;
	s->gets_since_follow = 0;
}
/* The general paths' follow, after releasing [pos, next): when due, or when
 * free_tail stands at pos with cons_head FOLLOW_EVERY slots or more on (a
 * record held long, now released: the walk over what was released behind
 * it would otherwise fall to a producer).  Relaxed loads: a hint; the
 * producers' reclaim finds whatever this leaves.  (Not "whenever free_tail
 * stands at pos": after each follow it stands at the next record taken, so
 * that was a follow after every record again.) */
static inline void ring_free_tail_follow(struct shmring *r, uint64_t pos, uint64_t next)
{
	uint64_t f = atomic_load_explicit(&r->hdr->free_tail, memory_order_relaxed);
	if (ring_free_tail_due(pos, next) ||
	    (f == pos && atomic_load_explicit(&r->hdr->cons_head, memory_order_relaxed) - next >=
	                         FOLLOW_EVERY))
		shmring__free_tail_follow(r, f);
}
/* get_many's (batch.c), where the caller took and released every record in
 * [pos, next) itself (not on a broadcast ring).  free_tail standing at pos:
 * with one consumer keeping up, nothing was taken after them (cons_head is
 * next), the walk would step over those records and stop, so free_tail
 * moves to next at once, with no walk, once a batch; else the walk from
 * pos.  free_tail elsewhere: the walk from it when due, as
 * ring_free_tail_follow. */
static inline void ring_free_tail_follow_run(struct shmring *r, uint64_t pos, uint64_t next)
{
	struct ring_header *hdr = r->hdr;
	uint64_t f = atomic_load_explicit(&hdr->free_tail, memory_order_relaxed);
	if (f != pos) {
		if (ring_free_tail_due(pos, next))
			shmring__free_tail_follow(r, f);
		return;
	}
	if (atomic_load_explicit(&hdr->cons_head, memory_order_relaxed) != next) {
		shmring__free_tail_follow(r, pos);
		return;
	}
	/* release: as the walk's CAS (space.c) */
	atomic_compare_exchange_strong_explicit(&hdr->free_tail, &pos, next, memory_order_release,
	                                        memory_order_relaxed);
}
/* Publish and release, for a sweep finishing a dead process's record (recover.c):
 * a CAS from the seq just read, so that a racing owner, or a slot reused
 * meanwhile, makes it a no-op.  seq_cst, as the owner's store. */
static inline bool ring_publish_from(struct shmring *r, uint64_t pos, uint64_t seen)
{
	return atomic_compare_exchange_strong_explicit(&meta_at(r, pos)->seq, &seen,
	                                               SLOT_SEQ(pos, SLOT_COMMITTED),
	                                               memory_order_seq_cst, memory_order_relaxed);
}
static inline bool ring_release_from(struct shmring *r, uint64_t pos, uint64_t seen)
{
	return atomic_compare_exchange_strong_explicit(&meta_at(r, pos)->seq, &seen,
	                                               SLOT_SEQ(pos, SLOT_RELEASED),
	                                               memory_order_seq_cst, memory_order_relaxed);
}

/* Where one record is: its position, meta entry and payload (computed once
 * by a claim or take attempt, attempt.h, and used to publish or release). */
struct slot_ref {
	uint64_t          pos;
	struct slot_meta *meta;
	unsigned char    *data;
};
static inline struct slot_ref geom_ref(const struct ring_geom *g, uint64_t pos)
{
	return (struct slot_ref){ pos, geom_meta(g, pos), geom_data(g, pos) };
}

/* A record taken by a consumer: where, and how long. */
struct take {
	uint64_t pos;
	uint32_t len;  /* TAKE_SKIP: a skip record (shmring__take_run only) */
	/* the slots it spans (read for a skip record, whose len says nothing,
	 * by take_end; a ring has at most 2^30 slots): whether it crosses a
	 * multiple of FOLLOW_EVERY (ring_free_tail_follow) */
	uint32_t skip_slots;
	/* redeliver.h (out[0] only: a record taken from the redelivery list is
	 * a run of one): its list entry + 1 or 0, and which delivery this is. */
	uint32_t rl;
	uint32_t deliveries;
};
#define TAKE_SKIP UINT32_MAX
/* The position after a record taken: the end of [pos, next) that the
 * general paths' follow is given (slot.h ring_free_tail_follow). */
static inline uint64_t take_end(const struct take *t)
{
	return t->pos + (t->len != TAKE_SKIP ? slots_for(t->len) : t->skip_slots);
}

/* slot.c: the batch forms, release stores and one seq_cst fence.  Publish
 * n consecutive records from pos (of slots[i] slots each); release the n
 * records of a run taken at once, last first (slot.c says why). */
void shmring__publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n,
                           struct op_rec *c);
void shmring__release_many(struct shmring *r, const struct take *run, size_t n);

/* --- reading records ----------------------------------------------------- */

/* Does seq, read at pos, start a record of this lap (published, released,
 * or parked for redelivery: SLOT_REDELIVER, redeliver.h)? */
static inline bool seq_is_start(uint64_t seq, uint64_t pos)
{
	return seq == SLOT_SEQ(pos, SLOT_COMMITTED) || seq == SLOT_SEQ(pos, SLOT_RELEASED) ||
	       seq == SLOT_SEQ(pos, SLOT_REDELIVER);
}

/* A record as a reader sees it. */
struct record {
	uint64_t seq;    /* as the walker read it (slot_walk_look only) */
	uint32_t len;    /* payload bytes (a skip record: bytes it spans) */
	bool     skip;
	uint64_t slots;  /* slots it covers */
};

/* The record-length check, the one every reader applies before it uses a
 * length from shared memory (docs/design.md section 8): a record holds at
 * most max_record bytes, a skip record spans at most the ring.  Reads the
 * meta entry m, whose seq the caller has loaded with acquire or stronger
 * (len and flags are relaxed: ordered by it).  false: the length is not
 * credible (corrupt), *rec holds what was read. */
static inline bool record_in(const struct shmring *r, const struct slot_meta *m,
                             struct record *rec)
{
	rec->len = atomic_load_explicit(&m->len, memory_order_relaxed);
	rec->skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
	rec->slots = slots_for(rec->len);
	if (__builtin_expect(rec->skip, 0))
		return rec->len <= r->capacity;
	return rec->len <= r->max_record;
}
/* The same, for the record at pos. */
static inline bool record_at(const struct shmring *r, uint64_t pos, struct record *rec)
{
	return record_in(r, meta_at(r, pos), rec);
}

/* The slot walker, for every reader that steps over records: from pos, the
 * records whose seq reads (a given state, their position), up to end, and
 * never more than the ring's slot count whatever the shared words say
 * (slot_walk_one, which looks at one record, has no such bound).
 *
 *   struct slot_walk w = slot_walk_from(r, from, end, SLOT_COMMITTED, memory_order_acquire);
 *   struct record rec;
 *   while (slot_walk_look(&w, &rec)) { ... slot_walk_step(&w, &rec); }
 *
 * After the loop w.pos is where the walk stopped (the first record not in
 * that state, or end), and w.corrupt says whether a length failed the check
 * there.  slot_walk_starts walks every start of this lap, published or
 * released (rec.seq says which). */
struct slot_walk {
	const struct shmring *r;
	uint64_t pos;
	uint64_t end;            /* min(end, from + nslots); slot_walk_one: UINT64_MAX */
	uint64_t state;          /* enum slot_state walked, unless any_start */
	bool any_start;          /* walk published and released records alike */
	memory_order order;      /* of the seq loads */
	bool corrupt;
};
static inline struct slot_walk slot_walk_init(const struct shmring *r, uint64_t from, uint64_t end,
                                              uint64_t state, bool any_start, memory_order order)
{
	/* (A from so large that from + nslots wraps, a hostile shared word,
	 * makes the limit small: the walk stops at once.) */
	uint64_t limit = from + r->nslots;
	return (struct slot_walk){ r, from, end < limit ? end : limit, state, any_start, order, false };
}
static inline struct slot_walk slot_walk_from(const struct shmring *r, uint64_t from,
                                              uint64_t end, enum slot_state state,
                                              memory_order order)
{
	return slot_walk_init(r, from, end, state, false, order);
}
/* A walk that looks at one record only (the leaf get, attempt.h scan_run):
 * no limit to bound its steps. */
static inline struct slot_walk slot_walk_one(const struct shmring *r, uint64_t from,
                                             enum slot_state state, memory_order order)
{
	return (struct slot_walk){ r, from, UINT64_MAX, state, false, order, false };
}
static inline struct slot_walk slot_walk_starts(const struct shmring *r, uint64_t from,
                                                uint64_t end, memory_order order)
{
	return slot_walk_init(r, from, end, 0, true, order);
}
/* The record at w->pos, if the walk goes on there; m is its meta entry
 * (meta_at(w->r, w->pos), computed by a caller that has it already). */
static inline bool slot_walk_look_at(struct slot_walk *w, const struct slot_meta *m,
                                     struct record *rec)
{
	if (w->pos >= w->end)
		return false;
	uint64_t seq = atomic_load_explicit(&m->seq, w->order);
	if (w->any_start ? !seq_is_start(seq, w->pos) : seq != SLOT_SEQ(w->pos, w->state))
		return false;
	rec->seq = seq;
	if (!record_in(w->r, m, rec)) {
		w->corrupt = true;
		return false;
	}
	return true;
}
static inline bool slot_walk_look(struct slot_walk *w, struct record *rec)
{
	return slot_walk_look_at(w, meta_at(w->r, w->pos), rec);
}
/* Past the record slot_walk_look returned. */
static inline void slot_walk_step(struct slot_walk *w, const struct record *rec)
{
	w->pos += rec->slots;
}

#endif /* SHMRING_SLOT_H */
