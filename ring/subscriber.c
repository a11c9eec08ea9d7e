/*
 * subscriber.c - a subscriber's reads on a broadcast ring: get, get_many,
 * peek/release, next_len, readiness (docs/design.md section 10).
 *
 * A subscriber reads the record at its own position (sub.next) where it
 * lies: meta[next].seq == COMMITTED(next), then its length, then the payload.
 * Nothing is taken or released; the subscriber's cursor in its attachment
 * entry tells producers what it still needs (a tethered one holds the
 * frontier back; a lossy one does not).
 *
 * A lossy subscriber may read a record while a producer overwrites it: it
 * copies optimistically and then re-checks the frontier (a seqlock with the
 * frontier as the version): if the frontier has not passed the record after
 * the copy, no producer can have written into it, since a producer writes
 * only into room the frontier has passed (its claim follows its acquire of
 * the frontier).  Otherwise the copy is discarded and the subscriber has been
 * lapped: it re-anchors at the frontier, whose recno says exactly how many
 * records it missed.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "bcast.h"
#include "shmring_broadcast.h"
#include "shmring_zc.h"

enum look { LOOK_READY = 1, LOOK_EMPTY = 0, LOOK_LAPPED = -1 };

/* What is at pos for this subscriber (one look, no wait). */
static int look(const struct shmring *r, uint64_t pos, uint32_t *len, bool *skip)
{
	struct slot_meta *m = meta_at(r, pos);
	/* acquire: pairs with the publishing store (meta and payload) */
	if (atomic_load_explicit(&m->seq, memory_order_acquire) != SLOT_SEQ(pos, SLOT_COMMITTED))
		return bcast_tail(r) > pos ? LOOK_LAPPED : LOOK_EMPTY;
	*len = atomic_load_explicit(&m->len, memory_order_relaxed);
	*skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
	if (*skip ? *len > r->capacity : *len > r->max_record) {
		/* a length being overwritten, or corrupt */
		return bcast_passed(r, pos) ? LOOK_LAPPED : -EBADMSG;
	}
	return LOOK_READY;
}

/* After reading the record at pos (meta, payload): was it intact? */
static bool still_there(const struct shmring *r, uint64_t pos)
{
	return !bcast_passed(r, pos);
}

static struct attach_entry *my_entry(struct shmring *r)
{
	return ring_attach(r, r->sub.slot);
}

/* Publish the cursor: a tethered subscriber's releases room (seq_cst, then
 * the read of not_full's waiters: the room Dekker pair, as ring_release). */
static void publish_cursor(struct shmring *r, uint64_t pos)
{
	if (r->sub.flags & SHMRING_SUB_LOSSY) {
		atomic_store_explicit(&my_entry(r)->sub_cursor, pos, memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&my_entry(r)->sub_cursor, pos, memory_order_seq_cst);
	ring_notify_producers(r);
}

/* Move past the record at next (k slots; counted unless a skip record). */
static void advance(struct shmring *r, uint64_t next, bool counted)
{
	atomic_store_explicit(&r->sub.next, next, memory_order_relaxed);
	r->sub.recno = (r->sub.recno + counted) & BCAST_RECNO_MASK;
	if (!r->sub.holding)
		publish_cursor(r, next);
}

/* Lapped: go on from the frontier; the records between are lost. */
static void relap(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	uint64_t t = atomic_load_explicit(&hdr->bcast.tail, memory_order_acquire), w;
	for (;;) {
		w = atomic_load_explicit(&hdr->bcast.word, memory_order_acquire);
		uint64_t t2 = atomic_load_explicit(&hdr->bcast.tail, memory_order_acquire);
		if (t2 == t)
			break;
		t = t2;
	}
	uint64_t missed = (BCAST_RECNO(w) - r->sub.recno) & BCAST_RECNO_MASK;
	r->sub.lost += missed;
	r->sub.recno = BCAST_RECNO(w) & BCAST_RECNO_MASK;
	atomic_store_explicit(&my_entry(r)->sub_lost, r->sub.lost, memory_order_relaxed);
	atomic_store_explicit(&r->sub.next, t, memory_order_relaxed);
	if (!r->sub.holding)
		publish_cursor(r, t);
}

bool shmring__bcast_readable(const struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	/* Not subscribed yet: a get would subscribe from the next record, so
	 * it would not wait only if the ring is closed or its stream ended
	 * (-EPIPE).  The end was not looked at: poll and the event fd never
	 * fired for it while a get returned -EPIPE at once (a review found it,
	 * 2026-12-06; broadcast::unsubscribed_handle_polls_the_end_of_stream). */
	if (!shmring__bcast_subscribed(r))
		return atomic_load_explicit(&hdr->closed, memory_order_seq_cst) != 0 ||
		       ring_eof(r, atomic_load_explicit(&hdr->census, memory_order_seq_cst));
	if (r->sub.lapped)
		return true;
	uint64_t pos = atomic_load_explicit(&r->sub.next, memory_order_relaxed);
	/* seq_cst: W2 of the eventcount protocol (eventcount.c) */
	if (atomic_load_explicit(&meta_at(r, pos)->seq, memory_order_seq_cst) ==
	    SLOT_SEQ(pos, SLOT_COMMITTED))
		return true;
	if (atomic_load_explicit(&hdr->bcast.tail, memory_order_seq_cst) > pos)
		return true; /* lapped: the get reports it */
	if (!atomic_load_explicit(&hdr->closed, memory_order_seq_cst) &&
	    !ring_eof(r, atomic_load_explicit(&hdr->census, memory_order_seq_cst)))
		return false;
	return (atomic_load_explicit(&hdr->prod_head, memory_order_seq_cst) & RING_POS_MASK) == pos;
}

static bool readable_fn(const void *arg)
{
	return shmring__bcast_readable(arg);
}

static int ensure_subscribed(struct shmring *r)
{
	if (!shmring__bcast_subscribed(r))
		return shmring__bcast_subscribe(r, 0);
	if (__builtin_expect(atomic_load_explicit(&r->roles, memory_order_acquire) &
	                     SHMRING_CONSUMER, 1))
		return 0;
	/* Back after a shmring_leave(SHMRING_CONSUMER): while it was away its
	 * cursor held nothing back (producers look only at consumers), so it
	 * joins again, from the next record, with the same policy.  Taking the
	 * role back under the old cursor made a tethered subscriber's next get
	 * -EOVERFLOW with records counted lost, which a tethered one never has
	 * (a review found it, 2026-12-06;
	 * broadcast::tethered_subscriber_back_after_leave_loses_nothing). */
	uint64_t lost = r->sub.lost; /* a running total (shmring_lost): kept */
	r->sub.active = false;
	int rc = shmring__bcast_subscribe(r, r->sub.flags & ~SHMRING_SUB_OLDEST);
	if (rc == 0) {
		r->sub.lost = lost;
		atomic_store_explicit(&ring_attach(r, r->sub.slot)->sub_lost, lost,
		                      memory_order_relaxed);
	}
	return rc;
}

/* Wait for the next record that is not a skip record; *pos, *len.
 * -EOVERFLOW (lapped: re-anchored), -EPIPE, -EAGAIN, -ETIMEDOUT, -EBADMSG. */
static int next_record(struct shmring *r, uint64_t *pos, uint32_t *len, int64_t timeout_ns)
{
	struct ring_header *hdr = r->hdr;
	struct waiter w;
	ring_waiter_init(r, &w, timeout_ns);
	for (;;) {
		uint64_t p = atomic_load_explicit(&r->sub.next, memory_order_relaxed);
		bool skip = false;
		int st = look(r, p, len, &skip);
		if (st == LOOK_READY && skip) {
			if (!still_there(r, p)) {
				relap(r);
				return -EOVERFLOW;
			}
			advance(r, p + slots_for(*len), false);
			continue;
		}
		if (st == LOOK_READY) {
			*pos = p;
			return 0;
		}
		if (st == LOOK_LAPPED) {
			relap(r);
			return -EOVERFLOW;
		}
		if (st < 0)
			return st;
		/* Nothing at p yet.  Ended?  The census before prod_head (a
		 * producer's claims happen before it leaves). */
		uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
		if (atomic_load_explicit(&hdr->closed, memory_order_acquire) || ring_eof(r, census)) {
			uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
			if ((h & RING_POS_MASK) == p)
				return -EPIPE;
		}
		int brc = shmring__ec_block(&hdr->not_empty, readable_fn, r, &w);
		ring_sweep_after_wait(r, brc, &w, STALL_TAKE, p);
		if (brc)
			return brc;
	}
}

/* The prologue of a subscriber's get, get_many and peek: subscribed, -EOVERFLOW once after a
 * lap, and no peeked record held (release it first). */
static int sub_get_enter(struct shmring *r)
{
	int rc = ensure_subscribed(r);
	if (rc)
		return rc;
	if (r->sub.lapped) {
		r->sub.lapped = false;
		return -EOVERFLOW;
	}
	return r->sub.holding ? -ENOBUFS : 0;
}

ssize_t shmring__bcast_get(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	/* a run of one: the same checks (cap, the lap re-check after the copy),
	 * the record at buf (align8(0) == 0) */
	struct iovec rec;
	ssize_t n = shmring__bcast_get_many(r, buf, cap, &rec, 1, timeout_ns);
	return n == 1 ? (ssize_t)rec.iov_len : n;
}

ssize_t shmring__bcast_get_many(struct shmring *r, void *buf, size_t cap, struct iovec *recs,
                                size_t max_recs, int64_t timeout_ns)
{
	int rc = sub_get_enter(r);
	if (rc)
		return rc;
	uint64_t first, pos;
	uint32_t len;
	/* wait for the first record only; the run is what is there after it */
	rc = next_record(r, &first, &len, timeout_ns);
	if (rc)
		return rc;
	if (len > cap) {
		if (still_there(r, first))
			return -EMSGSIZE;
		relap(r);
		return -EOVERFLOW;
	}
	uint64_t recno0 = r->sub.recno;
	size_t got = 0, off = 0;
	pos = first;
	for (;;) {
		size_t at = align8(off);
		if (len)
			memcpy((unsigned char *)buf + at, data_at(r, pos), len);
		recs[got].iov_base = (unsigned char *)buf + at;
		recs[got].iov_len = len;
		off = at + len;
		got++;
		pos += slots_for(len);
		bool skip = false;
		while (got < max_recs && look(r, pos, &len, &skip) == LOOK_READY && skip)
			pos += slots_for(len);
		if (got == max_recs || look(r, pos, &len, &skip) != LOOK_READY ||
		    align8(off) + len > cap)
			break;
	}
	/* One check for the run: the frontier has not passed its first record,
	 * so it has passed none of them (a lap is counted from the first). */
	if (!still_there(r, first)) {
		relap(r);
		return -EOVERFLOW;
	}
	atomic_store_explicit(&r->sub.next, pos, memory_order_relaxed);
	r->sub.recno = (recno0 + got) & BCAST_RECNO_MASK;
	publish_cursor(r, pos);
	return (ssize_t)got;
}

ssize_t shmring__bcast_peek(struct shmring *r, struct shmring_span *span, int64_t timeout_ns)
{
	int rc = sub_get_enter(r);
	if (rc)
		return rc;
	uint64_t pos;
	uint32_t len;
	rc = next_record(r, &pos, &len, timeout_ns);
	if (rc)
		return rc;
	/* The length read must be the record's: a producer claiming over pos
	 * writes its own length there before its seq, and it claims only room
	 * the frontier has passed.  Unchecked, a lossy peek stepped the cursor
	 * by a new record's length, past unread records no lap ever counted
	 * (shmring_lost() short: a review found it, 2026-12-06;
	 * broadcast::lossy_peek_over_a_claim_counts_what_it_skips). */
	if (!still_there(r, pos)) {
		relap(r);
		return -EOVERFLOW;
	}
	/* The cursor stays at pos (a tethered subscriber keeps the record from
	 * being overwritten) until the release. */
	r->sub.holding = true;
	r->sub.held_pos = pos;
	advance(r, pos + slots_for(len), true);
	span->data = data_at(r, pos);
	span->len = len;
	span->pos_ = pos;
	span->claim_ = NULL;
	return (ssize_t)len;
}

int shmring__bcast_release(struct shmring *r, struct shmring_span *span)
{
	if (!shmring__bcast_subscribed(r) || !r->sub.holding || span->pos_ != r->sub.held_pos)
		return -EINVAL;
	int rc = 0;
	if (!still_there(r, r->sub.held_pos)) {
		/* a lossy subscriber's record was overwritten while held */
		r->sub.lost++;
		atomic_store_explicit(&my_entry(r)->sub_lost, r->sub.lost, memory_order_relaxed);
		rc = -EOVERFLOW;
	}
	r->sub.holding = false;
	publish_cursor(r, atomic_load_explicit(&r->sub.next, memory_order_relaxed));
	span->data = NULL;
	return rc;
}

ssize_t shmring__bcast_next_len(struct shmring *r)
{
	int rc = ensure_subscribed(r);
	if (rc)
		return rc;
	if (r->sub.lapped)
		return -EOVERFLOW;
	struct ring_header *hdr = r->hdr;
	uint64_t p = atomic_load_explicit(&r->sub.next, memory_order_relaxed);
	for (uint64_t walked = 0; walked < r->nslots;) {
		uint32_t len = 0; /* (look sets it whenever it matters: -fanalyzer) */
		bool skip = false;
		int st = look(r, p, &len, &skip);
		if (st == LOOK_LAPPED)
			return -EOVERFLOW;
		if (st < 0)
			return st;
		if (st == LOOK_EMPTY)
			break;
		if (!still_there(r, p))
			return -EOVERFLOW;
		if (!skip)
			return (ssize_t)len;
		p += slots_for(len);
		walked += slots_for(len);
	}
	uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
	bool ended = (h & RING_CLOSED) || ring_eof(r, census);
	return ((h & RING_POS_MASK) == p && ended) ? -EPIPE : -EAGAIN;
}
