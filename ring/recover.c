/*
 * recover.c - finishing the claims of a process that died (docs/design.md,
 * "Crash recovery").  Runs from a sweep, on an entry the sweep has made its
 * own (id = its own id | ATTACH_REAPING_TAG), so never twice at once.
 *
 * An entry whose recovery waits on a live process stays marked and is
 * retried by a later sweep (reap.c); every step is safe to redo.
 *
 * A dead producer's op record says "slots [h, h + n)".  What it claimed
 * and never published becomes skip records: consumers pass over them and
 * the room is reclaimed as usual.  A dead consumer's record says "records
 * from t": what it took and never released is released, counted in
 * lost_records, and its tasks are forgiven.
 *
 * Three rules keep this safe against the living:
 *  - only positions below prod_head (cons_head) are touched: someone claimed
 *    (took) them, and an unsuccessful CAS of the dead process did not;
 *  - never a position a live process's op record covers: the live owner
 *    will finish it (a stale record of the dead one may overlap it);
 *  - every state change is a CAS from the state just seen, so a racing owner
 *    or a slot already reused makes it a no-op.
 */
#include "attach.h"
#include "latch.h"
#include "liveness.h"
#include "slot.h"
#include "bcast.h" /* issue 13: ring_consumed_floor */
#include "redeliver.h"

#include <sys/mman.h>

/* The live claims' intervals of one side, sorted and merged: [lo, end).
 * Also an announced start (lo = end), and a COUNTED claim with its records
 * (records: those arrays only). */
struct live_span {
	uint64_t lo, end, records;
	uint64_t progress; /* a COUNTED claim's op_rec.progress */
};

/* The entries whose claims count as live: taken, not being reaped, and
 * (unless pending for a child being forked) of a live process.  Computed
 * once per recovery: two dead processes' overlapping announcements must not
 * wait for each other.  A bitmap over the table (8 KiB at the largest).
 *
 * With it, a snapshot of their op records' intervals per side, taken once
 * per recovery AFTER prod_head and cons_head are read (below), so that "is
 * p covered" is a binary search (docs/design.md, "Crash recovery", "The
 * live cover, snapshotted"): the old per-slot scan made a sweep over a
 * forged table cost dead claims x slots x live claims (issue 11).  If the
 * snapshot cannot be allocated (span == NULL), the scan answers, as before.
 * work: what the recovery has cost, for the sweep's budget (reap.c). */
struct live_set {
	unsigned words;
	uint64_t prod_head, cons_head; /* read before the entries and the snapshot */
	struct live_span *span[2];     /* [producer side]: consumer 0, producer 1 */
	size_t nspan[2];
	size_t cap[2];                 /* the spans mapped for each (spans_unmap) */
	/* Every producer announcement's start, of every entry (live, dead,
	 * being reaped, the one recovered), as spans [lo, lo) sorted by lo:
	 * where a dead stretch must end (dead_stretch_end).  And every COUNTED
	 * claim, [lo, end) with its records, sorted by lo: whose tasks a dead
	 * stretch forgives (counted_claim_at).  NULL: the scan answers
	 * (announced_start_after, counted_claim_at). */
	struct live_span *starts, *counted;
	size_t nstarts, starts_cap, ncounted, counted_cap;
	uint64_t *work;
	struct shmring__sweep *sweep; /* NULL: none (detach) */
	uint64_t bits[(SHMRING_MAX_ATTACH_LIMIT + 63) / 64];
};

static void live_entries(struct shmring *r, int dead, struct live_set *live)
{
	live->words = (r->nattach + 63) / 64;
	for (unsigned w = 0; w < live->words; w++)
		live->bits[w] = 0;
	for (int j = 0; j < (int)r->nattach; j++) {
		uint64_t id = atomic_load_explicit(&ring_attach(r, j)->id, memory_order_acquire);
		if (j == dead || id == 0 || (id & ATTACH_REAPING_TAG))
			continue;
		bool alive = (id & ATTACH_PENDING_TAG) ||
		             (live->sweep ? shmring__sweep_id_alive(live->sweep, j, id)
		                          : shmring__id_alive(id));
		if (alive)
			live->bits[j / 64] |= UINT64_C(1) << (j % 64);
	}
	*live->work += r->nattach;
}

/* Runs BODY for each op record of a live entry that announces a claim:
 * producer_ (its side), q_ and n_ (slots [q_, q_ + n_)), until STOP. */
#define FOR_EACH_LIVE_CLAIM(r, live, STOP, ...)                                                  \
	for (unsigned w_ = 0; w_ < (live)->words && !(STOP); w_++) {                             \
		uint64_t m_ = (live)->bits[w_];                                                  \
		while (m_ && !(STOP)) {                                                          \
			int j_ = (int)(w_ * 64) + __builtin_ctzll(m_);                           \
			m_ &= m_ - 1;                                                            \
			uint64_t busy_ = atomic_load_explicit(&ring_attach(r, j_)->op_busy,      \
			                                      memory_order_acquire);             \
			while (busy_ && !(STOP)) {                                               \
				unsigned i_ = (unsigned)__builtin_ctzll(busy_);                  \
				busy_ &= busy_ - 1;                                              \
				const struct op_rec *c_ = ring_op_rec(r, j_, i_);                \
				uint64_t wd_ = atomic_load_explicit(&c_->word,                   \
				                                    memory_order_acquire);       \
				unsigned kind_ = OPREC_KIND(wd_);                                \
				if (kind_ == OPREC_FREE)                                         \
					continue;                                                \
				bool producer_ = kind_ != OPREC_CONSUME;                         \
				uint64_t q_ = OPREC_POS(wd_);                                    \
				uint64_t n_ = OPREC_SLOTS(atomic_load_explicit(                  \
					&c_->extent, memory_order_relaxed));                     \
				__VA_ARGS__                                                      \
			}                                                                        \
		}                                                                                \
	}

/* The snapshot allocates nothing from the allocator: a sweep may run in a
 * library thread (an event fd's watcher) while another thread forks, and a
 * child forked while that thread held the allocator's lock hangs at its
 * first malloc where the allocator has no fork handler (ASan's; reap.c's
 * liveness cache is the handle's for the same reason,
 * tests/test_sweep_noalloc.c).  So its arrays are mapped (mmap takes no
 * user-space lock a forked child could inherit held), and sorted here:
 * glibc's qsort (2.36 here, and later ones) mallocs a buffer for arrays of
 * 1 KiB or more. */
static struct live_span *spans_map(size_t n)
{
	void *p = mmap(NULL, n * sizeof(struct live_span), PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
static struct live_span *spans_grow(struct live_span *s, size_t n, size_t m)
{
	void *p = mremap(s, n * sizeof *s, m * sizeof *s, MREMAP_MAYMOVE);
	return p == MAP_FAILED ? NULL : p;
}
static void spans_unmap(struct live_span *s, size_t n)
{
	if (s)
		munmap(s, n * sizeof *s);
}

/* Heapsort by lo (in place, n log n, no allocation). */
static void spans_sift(struct live_span *s, size_t i, size_t n)
{
	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && s[c + 1].lo > s[c].lo)
			c++;
		if (s[c].lo <= s[i].lo)
			return;
		struct live_span t = s[i];
		s[i] = s[c];
		s[c] = t;
	}
}
static void spans_sort(struct live_span *s, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		spans_sift(s, i, n);
	for (size_t k = n; k-- > 1;) {
		struct live_span t = s[0];
		s[0] = s[k];
		s[k] = t;
		spans_sift(s, 0, k);
	}
}

/* The last of s[0, n) (sorted by lo) with lo <= p: its index + 1, or 0.  A
 * binary search, its cost added to *work. */
static size_t spans_upto(const struct live_span *s, size_t n, uint64_t p, uint64_t *work)
{
	size_t lo = 0, hi = n; /* first with lo > p */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[mid].lo <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	*work += 1 + (64 - (uint64_t)__builtin_clzll(n | 1));
	return lo;
}

/* Sort and merge: the spans become disjoint, so the one that can hold p is
 * the last starting at or below it. */
static size_t spans_merge(struct live_span *s, size_t n)
{
	if (n == 0)
		return 0;
	spans_sort(s, n);
	size_t k = 0;
	for (size_t i = 1; i < n; i++) {
		if (s[i].lo <= s[k].end) {
			if (s[i].end > s[k].end)
				s[k].end = s[i].end;
		} else {
			s[++k] = s[i];
		}
	}
	return k + 1;
}

/* The snapshot (after live_entries).  Each side's array starts at the
 * busy records seen in a first pass and grows if the second pass finds more
 * (records announced in between, which lie beyond the heads read before,
 * or a peer flipping op_busy): never a record left out, since a relevant
 * one may come after the new ones.  At most max_attach x 64 per side. */
static void live_snapshot(struct shmring *r, struct live_set *live)
{
	size_t cap0 = 0;
	for (unsigned w = 0; w < live->words; w++) {
		uint64_t m = live->bits[w];
		while (m) {
			int j = (int)(w * 64) + __builtin_ctzll(m);
			m &= m - 1;
			cap0 += (size_t)__builtin_popcountll(atomic_load_explicit(
				&ring_attach(r, j)->op_busy, memory_order_relaxed));
		}
	}
	live->span[0] = live->span[1] = NULL;
	live->nspan[0] = live->nspan[1] = 0;
	live->cap[0] = live->cap[1] = 0;
	if (cap0 == 0)
		cap0 = 1;
	size_t n[2] = { 0, 0 }, cap[2] = { cap0, cap0 };
	struct live_span *to[2] = { spans_map(cap0), spans_map(cap0) };
	bool failed = !to[0] || !to[1];
	FOR_EACH_LIVE_CLAIM(r, live, failed, {
		if (n_ == 0)
			continue;
		if (n[producer_] == cap[producer_]) {
			struct live_span *g = spans_grow(to[producer_], cap[producer_],
			                                 2 * cap[producer_]);
			if (!g) {
				failed = true;
				continue;
			}
			to[producer_] = g;
			cap[producer_] *= 2;
		}
		uint64_t end_ = q_ + n_ < q_ ? UINT64_MAX : q_ + n_;
		to[producer_][n[producer_]++] = (struct live_span){ q_, end_, 0, 0 };
	})
	*live->work += cap[0] + cap[1];
	if (failed) {
		spans_unmap(to[0], cap[0]);
		spans_unmap(to[1], cap[1]);
		return; /* the scan answers */
	}
	for (int side = 0; side < 2; side++) {
		live->span[side] = to[side];
		live->cap[side] = cap[side];
		live->nspan[side] = spans_merge(to[side], n[side]);
		/* n log n of the sort, counted as the work it is */
		*live->work += n[side] * (uint64_t)(64 - __builtin_clzll(n[side] | 1));
	}
}

/* Runs BODY for each producer announcement of every entry: q_ its start,
 * kind_ PRODUCE or COUNTED, x_ its extent word; looked_ counts the op
 * records read (for the sweep's budget). */
#define FOR_EACH_ANNOUNCED_START(r, looked_, STOP, ...)                                          \
	for (int j_ = 0; j_ < (int)(r)->nattach && !(STOP); j_++) {                              \
		uint64_t busy_ = atomic_load_explicit(&ring_attach(r, j_)->op_busy,              \
		                                      memory_order_acquire);                     \
		(looked_) += 1 + (uint64_t)__builtin_popcountll(busy_);                          \
		while (busy_ && !(STOP)) {                                                       \
			unsigned i_ = (unsigned)__builtin_ctzll(busy_);                          \
			busy_ &= busy_ - 1;                                                      \
			const struct op_rec *c_ = ring_op_rec(r, j_, i_);                        \
			uint64_t wd_ = atomic_load_explicit(&c_->word, memory_order_acquire);    \
			unsigned kind_ = OPREC_KIND(wd_);                                        \
			if (kind_ != OPREC_PRODUCE && kind_ != OPREC_COUNTED)                    \
				continue;                                                        \
			uint64_t q_ = OPREC_POS(wd_);                                            \
			uint64_t x_ = atomic_load_explicit(&c_->extent, memory_order_relaxed);   \
			__VA_ARGS__                                                              \
		}                                                                                \
	}

/* A COUNTED claim's span: [q, q + slots) (saturated), its records.  False
 * for one longer than the ring, which no claim is (a forged one made the
 * count of its unpublished records walk 2^28 slots: a review found it). */
static bool counted_span(const struct shmring *r, uint64_t q, uint64_t x, const struct op_rec *c,
                         struct live_span *out)
{
	uint64_t n = OPREC_SLOTS(x);
	*out = (struct live_span){ q, q + n < q ? UINT64_MAX : q + n, OPREC_RECORDS(x),
	                           atomic_load_explicit(&c->progress, memory_order_acquire) };
	return n > 0 && n <= r->nslots; /* (an empty one, forged, hid the claim below it) */
}

/* Append to a mapped array (s, n, cap), growing it; false: no memory. */
static bool spans_push(struct live_span **s, size_t *n, size_t *cap, struct live_span v)
{
	if (*n == *cap) {
		struct live_span *g = spans_grow(*s, *cap, 2 * *cap);
		if (!g)
			return false;
		*s = g;
		*cap *= 2;
	}
	(*s)[(*n)++] = v;
	return true;
}

/* The announced starts (live_set.starts), after the heads are read: an
 * announcement made later starts at or beyond prod_head, past every claim
 * recovered here.  One cleared since was published first (release of the
 * clear, recover_entry's and op_rec_clear's; acquire here), so a dead
 * stretch that no longer sees its start sees the published start there. */
static void starts_snapshot(struct shmring *r, struct live_set *live)
{
	size_t n = 0, cap = 64, nc = 0, ccap = 64;
	struct live_span *s = spans_map(cap), *c = spans_map(ccap);
	bool failed = !s || !c;
	uint64_t looked = 0;
	FOR_EACH_ANNOUNCED_START(r, looked, failed, {
		struct live_span v;
		if (!spans_push(&s, &n, &cap, (struct live_span){ q_, q_, 0, 0 }) ||
		    (kind_ == OPREC_COUNTED && counted_span(r, q_, x_, c_, &v) &&
		     !spans_push(&c, &nc, &ccap, v)))
			failed = true;
	})
	*live->work += looked;
	if (failed) {
		spans_unmap(s, cap);
		spans_unmap(c, ccap);
		return; /* the scan answers */
	}
	spans_sort(s, n);
	spans_sort(c, nc);
	*live->work += n * (uint64_t)(64 - __builtin_clzll(n | 1)) +
	               nc * (uint64_t)(64 - __builtin_clzll(nc | 1));
	live->starts = s;
	live->nstarts = n;
	live->starts_cap = cap;
	live->counted = c;
	live->ncounted = nc;
	live->counted_cap = ccap;
}


/* The first announced start beyond p (UINT64_MAX: none). */
static uint64_t announced_start_after(struct shmring *r, const struct live_set *live, uint64_t p)
{
	const struct live_span *s = live->starts;
	if (s) {
		size_t i = spans_upto(s, live->nstarts, p, live->work); /* the first start > p */
		return i < live->nstarts ? s[i].lo : UINT64_MAX;
	}
	uint64_t next = UINT64_MAX, looked = 0;
	FOR_EACH_ANNOUNCED_START(r, looked, false, {
		(void)kind_;
		(void)x_;
		if (q_ > p && q_ < next)
			next = q_;
	})
	*live->work += looked;
	return next;
}

/* The COUNTED claim whose slots hold p, into *out: false if none.  A COUNTED
 * mark is set only after the claim's CAS won, so its span is a real claim's
 * (one found long after its publication lies below the consumed floor,
 * where no dead stretch is). */
static bool counted_claim_at(struct shmring *r, const struct live_set *live, uint64_t p,
                             struct live_span *out)
{
	const struct live_span *s = live->counted;
	if (s) {
		size_t i = spans_upto(s, live->ncounted, p, live->work);
		if (i == 0 || p >= s[i - 1].end)
			return false;
		*out = s[i - 1];
		return true;
	}
	bool found = false;
	uint64_t looked = 0;
	FOR_EACH_ANNOUNCED_START(r, looked, found, {
		struct live_span v;
		if (kind_ == OPREC_COUNTED && counted_span(r, q_, x_, c_, &v) && v.lo <= p &&
		    p < v.end) {
			*out = v;
			found = true;
		}
	})
	*live->work += looked;
	return found;
}

static void live_release(struct live_set *live)
{
	spans_unmap(live->span[0], live->cap[0]);
	spans_unmap(live->span[1], live->cap[1]);
	spans_unmap(live->starts, live->starts_cap);
	spans_unmap(live->counted, live->counted_cap);
}

/* Does an op record of a live attachment, of that side, cover p?  From the
 * snapshot (binary search), or by the scan if there is none. */
static bool live_claim_covers(struct shmring *r, const struct live_set *live, bool producer,
                              uint64_t p)
{
	const struct live_span *s = live->span[producer];
	if (s) {
		size_t i = spans_upto(s, live->nspan[producer], p, live->work);
		return i > 0 && p < s[i - 1].end;
	}
	uint64_t looked = 0;
	bool covered = false;
	FOR_EACH_LIVE_CLAIM(r, live, covered, {
		looked++;
		if (producer_ == producer && q_ <= p && p - q_ < n_) {
			covered = true;
			continue;
		}
	})
	*live->work += 1 + looked;
	return covered;
}

/* The slot at p starts a record of this lap (published, or released). */
static bool is_start(struct shmring *r, uint64_t p)
{
	return seq_is_start(atomic_load_explicit(&meta_at(r, p)->seq, memory_order_acquire), p);
}

/* The slots of the record at p (its seq read with acquire), or 0 if its
 * length is not credible: stop. */
static uint64_t record_slots(struct shmring *r, uint64_t p)
{
	struct record rec;
	return record_at(r, p, &rec) ? rec.slots : 0;
}

/* Join tasks that will never be done: finish them (no more than are
 * unfinished: join.c), counted in lost_tasks. */
static void forgive_tasks(struct shmring *r, uint64_t n)
{
	int64_t k = shmring__join_finish(r, n, false);
	if (k > 0)
		atomic_fetch_add_explicit(&r->hdr->lost_tasks, (uint64_t)k, memory_order_relaxed);
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

/* A claim recovery must stop at p: rewrite its op record to say [p, e), so
 * that the retry resumes there. */
static void resume_from(struct op_rec *c, uint64_t p, uint64_t e, uint64_t records, bool counted)
{
	atomic_store_explicit(&c->extent, OPREC_EXTENT(e - p, records), memory_order_relaxed);
	/* release: what it published below p, for a starts_snapshot */
	atomic_store_explicit(&c->word, OPREC_WORD(p, counted ? OPREC_COUNTED : OPREC_PRODUCE),
	                      memory_order_release);
}

/* The end of the dead territory from p (an unpublished slot no live claim
 * covers, and a record boundary: a claim's start, or where a published
 * record or an earlier stretch ended): the next slot a live claim covers
 * or a published start, checked in that order (see recover_produce), and
 * never past another announcement's start nor prod_head; at most
 * SKIP_CHUNK slots on.
 *
 * So the stretch is the rest of the one claim p is in, whichever
 * announcement's recovery asks.  A claim starts where prod_head stood, and
 * every announcement's position is a prod_head value read, so an
 * announced start is a record boundary; an unpublished claim is announced
 * until it is published, so the next boundary is an announced or a
 * published start, or prod_head.  A live claim covering a slot of the
 * stretch starts at or below p, so it covers p, which the caller checked.
 *
 * It used to end at the end of the claim recovered, and at no announced
 * start.  A stale announcement (its CAS lost) of [h, h + 3), over dead
 * [h, h + 2) and dead [h + 2, h + 4), made a skip record of 3 slots when
 * it came first, c's recovery one of 2 from h + 2, and consumers waited
 * at h + 3 for good (recover::stale_announcement_over_two_dead_claims).
 * And two sweeps recovering a stale [h, h + 1) and the dead [h, h + 2) it
 * lost to, side by side, wrote different lengths into the same slot before
 * their CAS of its seq: the winner's seq could go out with the loser's
 * length (model/stale.pml, BUG_CLIP_AT_CLAIM). */
static uint64_t dead_stretch_end(struct shmring *r, const struct live_set *live, uint64_t p)
{
	uint64_t e = announced_start_after(r, live, p);
	if (e > live->prod_head)
		e = live->prod_head;
	/* and a lap: the claim p is in ends within it.  Unbounded, a forged
	 * table (prod_head far ahead, one-slot claims 2^25 apart) made each
	 * walk 2^25 slots (a review found it, 2026-12-06; threat-model.md) */
	if (e - p > r->nslots)
		e = p + r->nslots;
	uint64_t q = p + 1;
	while (q < e && q - p < SKIP_CHUNK && !live_claim_covers(r, live, true, q) && !is_start(r, q))
		q++;
	return q;
}

/* Where a recovery walk over a dead claim may go on when it meets a slot
 * reused in a later lap: every record below the index returned is past
 * what the walk looks for, and the slot at it is of this lap when read.
 *
 * A consumer's claim (producer false): free_tail.  It advances by whole
 * records over RELEASED ones only (space.c reclaim_free_tail), so every
 * record of [t, free_tail) is released and nothing there is to release;
 * a producer may reuse the slot of position p only once free_tail > p
 * (it claims below free_tail + nslots), so a slot reused in a later lap
 * means free_tail has passed it.  The reused slot's seq was stored
 * (release or seq_cst) by one who had read that free_tail (acquire) or
 * claimed after it, and our acquire load of seq synchronizes with it, so
 * the free_tail read after it is at least that value (coherence).  The
 * walk from t used to stop at such a slot: a consumer killed inside
 * shmring_get_many's in-order release left a prefix of its run released,
 * producers reused it within microseconds, and the record of the run
 * still taken was never released (the ring stalled for good: docs/perf.md,
 * "ABI 2 (inline headers): a hypothesis for the stall under `--kill`";
 * hostile::dead_consumers_run_released_prefix_reused_*).
 *
 * A producer's claim (producer true): the consumed floor (cons_head, or the
 * broadcast frontier), for the same reason the other way round: an
 * unpublished record holds every consumer back at its start, so every
 * record below the floor was published, and a slot is reused only once
 * free_tail, never beyond the floor, has passed it.
 *
 * Broadcast rings keep no free_tail of their own (it mirrors the frontier,
 * relaxed) and have no consumer claims: 0 there, the walk as before. */
static uint64_t walk_floor(struct shmring *r, bool producer)
{
	if (producer)
		return ring_consumed_floor(r);
	if (ring_is_bcast(r))
		return 0;
	return atomic_load_explicit(&r->hdr->free_tail, memory_order_acquire);
}

/* Is p where the unpublished records of the claim starting at h begin?
 * Yes if every record of it below p is published and none of them is a
 * skip record (a dead stretch's: the suffix began there).  *published:
 * the records walked over; *jumped: a slot reused in a later lap sent the
 * walk on from the consumed floor (as recover_produce's, walk_floor), so
 * that count is short. */
static bool suffix_at(struct shmring *r, const struct live_set *live, uint64_t h, uint64_t p,
                      uint64_t *published, bool *jumped)
{
	uint64_t x = h;
	*published = 0;
	*jumped = false;
	uint64_t fl = walk_floor(r, true); /* below it: published, and lengths maybe a later lap's */
	if (x < fl) {
		x = fl;
		*jumped = true;
	}
	for (uint64_t steps = 0; x < p && steps < r->nslots; steps++) {
		*live->work += 1;
		uint64_t s = atomic_load_explicit(&meta_at(r, x)->seq, memory_order_acquire);
		if ((s >> 2) > x) {
			fl = walk_floor(r, true);
			if (fl <= x)
				return false;
			x = fl;
			*jumped = true;
			continue;
		}
		struct record rec;
		if (!seq_is_start(s, x) || !record_at(r, x, &rec) || rec.skip)
			return false;
		x += rec.slots;
		++*published;
	}
	return x == p;
}

/* The join tasks a dead stretch from p forgives: those of the unpublished
 * records of the COUNTED claim p lies in, if they start at p; else 0.
 *
 * Whoever's CAS publishes the skip record at p forgives them, whichever
 * announcement it recovers.  They used to be forgiven only by the claim's
 * own recovery: a stale announcement at the claim's start (its CAS lost to
 * the claim) recovered first made the skip record over the whole claim,
 * the claim's recovery then stepped over it, and join waited for good
 * (hostile::stale_announcement_over_a_dead_counted_put_forgives_it; a
 * review found it).  The unpublished records of a claim start at one
 * position, published once: forgiven once.
 *
 * How many: the claim's records less those published before p, walked
 * from its start, so that no length is read at p, where another sweep may
 * be writing its skip record's (it was: a batch of 3 forgave 1, a review
 * found it).  But the walk reads no length below the consumed floor (a
 * released slot there may hold the next lap's: recover_produce), so where
 * the claim starts below it, which is the usual case for a batch whose
 * published records were consumed, the tasks are counted instead from the
 * batch's own count of what it published (op_rec.progress),
 * and only where there is none (a library before it) from the lengths at
 * p (unpublished_records), where that race is open: a sweep that finds
 * another's skip length at p (two sweeps at once, or one killed between
 * its length and its CAS) forgives too few (it did since the walk starts
 * at the floor, until the batch counted: a review found it;
 * hostile::a_consumed_batch_recovered_beside_a_stale_sweep_forgives_all).
 *
 * *seen: the claim looked at last by this walk (UINT64_MAX: none).  A later
 * stretch in the same claim is not where its suffix starts, and is not
 * walked again: each stretch walking its claim from the start made a
 * recovery cost nslots^2 / 8 (a review found it). */
static uint64_t stretch_tasks(struct shmring *r, const struct live_set *live, uint64_t p,
                              uint64_t *seen)
{
	struct live_span cc;
	if (!counted_claim_at(r, live, p, &cc) || cc.lo == *seen)
		return 0;
	*seen = cc.lo;
	uint64_t published;
	bool jumped;
	if (!suffix_at(r, live, cc.lo, p, &published, &jumped))
		return 0;
	if (!jumped && cc.records)
		return cc.records > published ? cc.records - published : 0;
	/* A batch says how far its publication went: every record it
	 * published is counted there, but maybe the last (killed between its
	 * publication and the count), which p, the first slot unpublished,
	 * tells.  Its progress is its own once it is COUNTED (batch.c). */
	uint64_t pr = cc.progress;
	if (cc.records > 1 && (pr & OPREC_PROGRESS_SET) && cc.lo + OPREC_PROGRESS_SLOTS(pr) <= p) {
		uint64_t pub = OPREC_PROGRESS_RECS(pr) + (cc.lo + OPREC_PROGRESS_SLOTS(pr) < p);
		return cc.records > pub ? cc.records - pub : 0;
	}
	uint64_t n = unpublished_records(r, p, cc.end, cc.records);
	*live->work += n;
	return n;
}

/* Returns false if part of the claim is covered by a live one (retry). */
static bool recover_produce(struct shmring *r, const struct live_set *live, struct op_rec *c,
                            uint64_t h, uint64_t slots, uint64_t records, bool counted)
{
	struct ring_header *hdr = r->hdr;
	uint64_t ph = live->prod_head; /* read before the live cover: see live_set */
	uint64_t e = h + slots;
	if (e > ph || slots > r->nslots)
		return true; /* its CAS did not succeed (that claim would end by prod_head) */
	uint64_t recovered = 0, seen = UINT64_MAX; /* stretch_tasks */
	bool complete = true;
	for (uint64_t p = h; p < e;) {
		/* Below the consumed floor every record was published (an
		 * unpublished one holds every consumer back at its start), and a
		 * released slot there may hold a later lap's length, written
		 * before its seq moves: go on from the floor.  The walk read such a
		 * length, stepped into the middle of an old record, took it for a
		 * stale announcement's and stopped, and a batch's unpublished
		 * records behind it stalled the ring for good
		 * (hostile::a_length_of_the_next_lap_below_the_floor_misleads_no_walk;
		 * a review found it, 2026-12-06). */
		uint64_t fl = walk_floor(r, true);
		if (p < fl) {
			p = fl;
			continue;
		}
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
			/* COUNTED stays while this walk never looked at a stretch of
			 * its own claim (stretch_tasks: whoever's CAS publishes the
			 * first forgives) */
			resume_from(c, p, e, p == h ? records : 0, counted && seen != h);
			complete = false;
			break;
		}
		uint64_t s = atomic_load_explicit(&meta_at(r, p)->seq, memory_order_acquire);
		if ((s >> 2) > p) {
			/* Reused in a later lap: consumers passed it, and all
			 * below the consumed floor was published.  A batch
			 * killed inside its in-order publication has its
			 * unpublished suffix at or beyond the floor: go on
			 * from there (walk_floor).  The walk used to stop here,
			 * and those records held every consumer back for good. */
			fl = walk_floor(r, true);
			if (fl <= p)
				break; /* corrupt: nothing to trust beyond */
			p = fl;
			continue;
		}
		if (seq_is_start(s, p)) {
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
		if (p < ring_consumed_floor(r)) /* issue 13: cons_head, or the broadcast frontier */
			break;
		/* Dead territory, up to the next live claim or published start
		 * (checked in that order, as above). */
		uint64_t q = dead_stretch_end(r, live, p);
		uint64_t unpub = stretch_tasks(r, live, p, &seen); /* before the meta is written */
		ring_write_meta(r, p, (uint32_t)((q - p) << RING_SLOT_SHIFT), SLOT_F_SKIP);
		if (ring_publish_from(r, p, s)) {
			recovered++;
			if (unpub)
				forgive_tasks(r, unpub);
		}
		p = q;
	}
	if (recovered) {
		atomic_fetch_add_explicit(&hdr->recovered_claims, recovered, memory_order_relaxed);
		ec_notify(r, &hdr->not_empty);
	}
	return complete;
}

/* slot: the dead attachment (its index).  got: the claim's tasks are
 * counted in the entry's got (OPREC_R_GOT), to be forgiven from there
 * (shmring__recover_entry), not here. */
static bool recover_consume(struct shmring *r, const struct live_set *live, int slot, uint64_t t,
                            uint64_t slots, bool got)
{
	struct ring_header *hdr = r->hdr;
	uint64_t ch = live->cons_head; /* read before the live cover: see live_set */
	uint64_t e = t + slots;
	if (slots > r->nslots)
		return true;
	if (e > ch)
		e = ch; /* beyond cons_head nothing is taken: never release that */
	uint64_t lost = 0;
	bool released = false, complete = true;
	/* The walk starts at max(t, free_tail) and, where it meets a slot that
	 * does not start a record of this lap, goes on from free_tail read
	 * again if that is beyond the slot (walk_floor).  A record parked for
	 * redelivery (SLOT_REDELIVER) is a start: step over it.  A slot that
	 * is neither (corrupt) with free_tail at or below it ends the walk. */
	uint64_t from = t;
	for (bool first = true;; first = false) {
		uint64_t f = walk_floor(r, false);
		if (f > from)
			from = f;
		else if (!first)
			break; /* a slot free_tail has not passed: corrupt */
		struct slot_walk w = slot_walk_starts(r, from, e, memory_order_acquire);
		struct record rec;
		for (; slot_walk_look(&w, &rec); slot_walk_step(&w, &rec)) {
			uint64_t p = w.pos;
			if (rec.seq != SLOT_SEQ(p, SLOT_COMMITTED))
				continue; /* released (or parked) already */
			if (live_claim_covers(r, live, false, p)) {
				complete = false; /* a live consumer's (or about to lose its CAS) */
			} else if (!rec.skip && r->redeliver &&
			           shmring__redeliver_park(r, slot, p, got)) {
				/* redeliver hook: parked for another delivery
				 * instead of lost; its task stays unfinished (0:
				 * the redelivery list is full, lost as without
				 * the flag) */
			} else if (ring_release_from(r, p, rec.seq)) {
				released = true;
				lost += !rec.skip;
			}
		}
		if (w.pos >= w.end || w.corrupt)
			break;
		from = w.pos; /* not a start of this lap: reused, if free_tail passed it */
	}
	if (lost) {
		atomic_fetch_add_explicit(&hdr->lost_records, lost, memory_order_relaxed);
		if (!got)
			forgive_tasks(r, lost);
	}
	if (released) {
		/* as a consumer after its release (space.c): free_tail on over
		 * what this released, so no producer walks a lap for it later */
		ring_free_tail_catch_up(r);
		ec_notify(r, &hdr->not_full);
	}
	return complete;
}

bool shmring__recover_entry(struct shmring *r, int slot, struct shmring__sweep *sw)
{
	struct ring_header *hdr = r->hdr;
	struct attach_entry *e = ring_attach(r, slot);
	uint64_t spent = 0;
	struct live_set live = { .work = sw ? &sw->work : &spent, .sweep = sw };
	/* The heads first, then the live entries and their claims (acquire:
	 * a claim below a head read here was made by a CAS this load
	 * synchronizes with, so its announcement is in the snapshot or was
	 * cleared after its publication; one announced later lies at or
	 * beyond it: docs/design.md, "The live cover, snapshotted"). */
	live.prod_head = atomic_load_explicit(&hdr->prod_head, memory_order_acquire) & RING_POS_MASK;
	live.cons_head = atomic_load_explicit(&hdr->cons_head, memory_order_acquire);
	live_entries(r, slot, &live);
	/* redeliver hook: records it held again, dead letters it was reading,
	 * parks a reaper of it left half done */
	if (r->redeliver)
		shmring__redeliver_recover(r, slot);
	uint64_t busy = atomic_load_explicit(&e->op_busy, memory_order_acquire);
	if (busy) {
		live_snapshot(r, &live);
		starts_snapshot(r, &live);
	}
	uint64_t left = 0; /* records to look at again */
	while (busy) {
		int i = __builtin_ctzll(busy);
		busy &= busy - 1;
		struct op_rec *c = ring_op_rec(r, slot, i);
		uint64_t w = atomic_load_explicit(&c->word, memory_order_acquire);
		uint64_t x = atomic_load_explicit(&c->extent, memory_order_relaxed);
		bool done = true;
		switch (OPREC_KIND(w)) {
		case OPREC_PRODUCE:
		case OPREC_COUNTED:
			done = recover_produce(r, &live, c, OPREC_POS(w), OPREC_SLOTS(x),
			                       OPREC_RECORDS(x), OPREC_KIND(w) == OPREC_COUNTED);
			break;
		case OPREC_CONSUME:
			done = recover_consume(r, &live, slot, OPREC_POS(w), OPREC_SLOTS(x), OPREC_GOT(x));
			break;
		default:
			break;
		}
		if (done) /* release: what it published, for a starts_snapshot */
			atomic_store_explicit(&c->word, 0, memory_order_release);
		else
			left |= UINT64_C(1) << i;
	}
	live_release(&live);
	/* release: what it published, for a starts_snapshot that skips a
	 * record whose bit it finds clear */
	atomic_store_explicit(&e->op_busy, left, memory_order_release);
	if (left)
		return false;
	/* Tasks it took (counted right after each take's CAS, see take.c) and
	 * never marked done: those of records released above included. */
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
