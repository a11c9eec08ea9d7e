/*
 * shmring_zc.h - zero-copy access to a shmring.
 *
 * A producer reserves a contiguous span of the ring, writes the record in
 * place, then commits it (possibly shorter than reserved) or aborts it.  A
 * consumer peeks at the next record in place (taking it: no other consumer
 * will see it), reads it, then releases it.  Spans are always contiguous,
 * even across the ring's wrap-around (the storage is mapped twice, back to
 * back), and start on a SHMRING_SLOT_SIZE boundary (16 bytes past one on a
 * ring with the inline layout: SHMRING_INLINE_MAX_RECORD in <shmring.h>).
 *
 * Until it is committed or released, a span holds back the storage after it
 * for every process (records behind it stay readable; space does not free up
 * past it), so keep spans short-lived.  Errors follow <shmring.h>.
 *
 * SPAN VALIDITY: reserve and peek first clear the span (data NULL), then
 * fill it only on success; commit, abort and release clear it when done.
 * So a span whose reserve or peek failed, or that was already committed,
 * aborted or released, is refused by those calls with -EINVAL, whatever it
 * held before.  So is a span of the other kind: commit and abort take only
 * a reserved span, release only a peeked one.  (A span never passed to reserve/peek is the caller's bug:
 * zero it, or the calls may act on what it holds.)
 */
#ifndef SHMRING_ZC_H
#define SHMRING_ZC_H

#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct shmring_span {
	void    *data;     /* first byte of the record, in the shared mapping */
	size_t   len;      /* reserve: bytes reserved; peek: the record's length */
	uint64_t pos_;     /* private: the record's position in the ring        */
	void    *claim_;   /* private: the op record announcing it           */
	uint32_t deliveries; /* peek: 1 the first time this record is delivered,
	                        n its n-th delivery (SHMRING_REDELIVER rings)   */
	uint32_t redeliver_; /* private: its redelivery list entry + 1, or 0    */
};

/* Reserve room for a record of up to len bytes (len <= max_record). */
SHMRING_API int     shmring_reserve(struct shmring *ring, size_t len, struct shmring_span *span,
                        int64_t timeout_ns);
/* Publish the reserved record with its final length (len <= span->len). */
SHMRING_API int     shmring_commit(struct shmring *ring, struct shmring_span *span, size_t len);
/* Give the reservation up: consumers skip it; nothing is delivered. */
SHMRING_API int     shmring_abort(struct shmring *ring, struct shmring_span *span);

/* Take the next record in place; returns its length (also in span->len). */
SHMRING_API ssize_t shmring_peek(struct shmring *ring, struct shmring_span *span, int64_t timeout_ns);
/* Done with a peeked record: its storage may be reused.  On a
 * SHMRING_REDELIVER ring this is the ack: the record is never delivered again. */
SHMRING_API int     shmring_release(struct shmring *ring, struct shmring_span *span);

/* The position of a reserved or peeked record: a 64-bit slot counter that
 * only grows over the ring's lifetime, so it names one record of this ring
 * file for good (a later record, in any lap, has a larger position).  Records
 * are taken in position order, so a single consumer sees its positions
 * increase.  A record delivered again (a redelivery) keeps its position.
 * Valid from a successful reserve or peek until the commit, abort or
 * release.  (shmring-nats derives its Nats-Msg-Id from it: docs/bridge.md.) */
SHMRING_API uint64_t shmring_span_position(const struct shmring_span *span);

/* SHMRING_REDELIVER rings only (elsewhere -EOPNOTSUPP).  Their guarantee is
 * in <shmring.h>, "AT-LEAST-ONCE DELIVERY"; docs/lifecycle.md. */
/* Negative ack: give a peeked record back for another delivery (to any
 * consumer, this one included); the span is spent.  If it has now been
 * delivered max_deliveries times it becomes a dead letter instead.
 * -ENOBUFS (span untouched, still held) if the redelivery list is full. */
SHMRING_API int     shmring_requeue(struct shmring *ring, struct shmring_span *span);
/* Take a dead letter in place (span->deliveries: how often it was delivered);
 * release it with shmring_release when done with it.  Waits per timeout_ns;
 * -EPIPE once the stream has ended with no dead letter left.  Takes the
 * consumer role.  A dead letter nobody reads keeps its storage: the ring
 * cannot reuse room past it, so read or drop dead letters. */
SHMRING_API ssize_t shmring_peek_dead(struct shmring *ring, struct shmring_span *span, int64_t timeout_ns);
/* Release every dead letter nobody is reading now, unread; returns how many.
 * Takes the consumer role. */
SHMRING_API ssize_t shmring_drop_dead(struct shmring *ring);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_ZC_H */
