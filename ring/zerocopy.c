/*
 * zerocopy.c - reserve/commit/abort for producers, peek/release for consumers.
 */
#include <errno.h>

#include "attempt.h"
#include "shmring_zc.h"

/* A reserved span says so in its redeliver_ (a peeked one holds a list
 * entry + 1 there, at most REDELIVER_ENTRIES, or 0).  Commit and abort take
 * only reserved spans and release only peeked ones: a commit of a peeked
 * span wrote COMMITTED behind cons_head, a release of a reserved one wrote
 * RELEASED into an unpublished claim, and either returned 0 and stalled the
 * ring for every process (zc::spans_of_the_other_kind_are_refused).  The
 * mark lives in the caller's span, not in the op record it points at: a
 * peer can rewrite that record (fuzz_scribble found a first fix that read
 * the kind there refusing a good commit). */
#define SPAN_RESERVED (UINT32_C(1) << 31)
_Static_assert(REDELIVER_ENTRIES < SPAN_RESERVED, "list entries below the mark");

/* A span no call will act on (data NULL: commit/abort/release say -EINVAL).
 * Every reserve and peek starts with it, so a span whose reserve or peek
 * failed, whatever it held before, is refused instead of being trusted
 * (its pos_ and claim_ would otherwise be garbage used as a claim record). */
static void span_invalidate(struct shmring_span *span)
{
	span->data = NULL;
	span->len = 0;
	span->pos_ = 0;
	span->claim_ = NULL;
	span->deliveries = 0;
	span->redeliver_ = 0;
}

int shmring_reserve(struct shmring *ring, size_t len, struct shmring_span *span,
                    int64_t timeout_ns)
{
	if (!span)
		return -EINVAL;
	span_invalidate(span);
	if (!ring)
		return -EINVAL;
	if (len > ring->max_record)
		return -EMSGSIZE;
	struct op_rec *c;
	struct slot_ref at;
	int rc = claim_one(ring, true, false, len, timeout_ns, &c, &at);
	if (rc)
		return rc;
	meta_write(at.meta, (uint32_t)len, 0);
	span->data = at.data;
	span->len = len;
	span->pos_ = at.pos;
	span->claim_ = c;
	span->redeliver_ = SPAN_RESERVED;
	return 0;
}

/* The slots a commit leaves unused become a skip record of their own,
 * published first: no consumer can reach it before the record itself. */
int shmring_commit(struct shmring *ring, struct shmring_span *span, size_t len)
{
	if (!ring || !span || !span->data || !span->claim_ || span->redeliver_ != SPAN_RESERVED)
		return -EINVAL;
	if (len > span->len)
		return -EMSGSIZE;
	uint64_t reserved = slots_for(span->len), used = slots_for(len);
	struct slot_meta *m = meta_at(ring, span->pos_);
	claim_count_one(ring, span->claim_, span->pos_, m, (uint32_t)len, 0, false);
	if (used < reserved) {
		uint64_t tail = span->pos_ + used;
		ring_write_meta(ring, tail, (uint32_t)((reserved - used) << RING_SLOT_SHIFT),
		                SLOT_F_SKIP);
		ring_publish(ring, tail);
	}
	meta_publish(ring, m, span->pos_);
	shmring__op_rec_free(ring, span->claim_);
	ring_notify_consumers(ring);
	ring_bcast_published(ring); /* issue 13 */
	span_invalidate(span);
	return 0;
}

int shmring_abort(struct shmring *ring, struct shmring_span *span)
{
	if (!ring || !span || !span->data || !span->claim_ || span->redeliver_ != SPAN_RESERVED)
		return -EINVAL;
	ring_write_meta(ring, span->pos_, (uint32_t)(slots_for(span->len) << RING_SLOT_SHIFT),
	                SLOT_F_SKIP);
	ring_publish(ring, span->pos_);
	shmring__op_rec_free(ring, span->claim_);
	ring_notify_consumers(ring); /* consumers waiting behind it may go on */
	ring_bcast_published(ring); /* issue 13 */
	span_invalidate(span);
	return 0;
}

ssize_t shmring_peek(struct shmring *ring, struct shmring_span *span, int64_t timeout_ns)
{
	if (!span)
		return -EINVAL;
	span_invalidate(span);
	if (!ring)
		return -EINVAL;
	if (ring_is_bcast(ring)) /* issue 13: a subscriber's peek */
		return shmring__bcast_peek(ring, span, timeout_ns);
	struct op_rec *c;
	struct take tk;
	struct slot_ref at = { 0 }; /* (take_one sets it when rc >= 0: -fanalyzer) */
	ssize_t rc = take_one(ring, true, false, false, SIZE_MAX, timeout_ns, &c, &tk, &at);
	if (rc < 0)
		return rc;
	span->data = at.data;
	span->len = tk.len;
	span->pos_ = tk.pos;
	span->claim_ = c;
	span->deliveries = tk.deliveries; /* redeliver hook */
	span->redeliver_ = tk.rl;
	return rc;
}

int shmring_release(struct shmring *ring, struct shmring_span *span)
{
	if (!ring || !span || !span->data || (span->redeliver_ & SPAN_RESERVED))
		return -EINVAL;
	if (ring_is_bcast(ring)) /* issue 13: a subscriber's release (no op record) */
		return shmring__bcast_release(ring, span);
	if (!span->claim_)
		return -EINVAL;
	ring_release(ring, span->pos_);
	ring_free_tail_follow(ring, span->pos_, span->pos_ + slots_for(span->len));
	redeliver_after_release(ring, span->redeliver_); /* redeliver hook */
	shmring__op_rec_free(ring, span->claim_);
	ring_notify_producers(ring);
	span_invalidate(span);
	return 0;
}

uint64_t shmring_span_position(const struct shmring_span *span)
{
	return span->pos_;
}
