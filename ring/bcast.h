/*
 * bcast.h - broadcast rings and lossy plain rings (private; issue 13).
 *
 *   broadcast.c   the frontier of a broadcast ring (what producers may
 *                 overwrite), subscribing, the per-subscriber inspection
 *   subscriber.c  a subscriber's reads: get, get_many, peek/release, next_len,
 *                 readiness
 *   overwrite.c   SHMRING_OVERWRITE on plain rings, and the dropped counter
 *
 * The hooks in the files shared with plain rings are the inline functions
 * below, each one branch on the handle's mode.  docs/design.md section 10.
 */
#ifndef SHMRING_BCAST_H
#define SHMRING_BCAST_H

#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "queue.h"

static inline bool ring_is_bcast(const struct shmring *r)
{
	return __builtin_expect(r->mode & RING_HDR_BROADCAST, 0);
}
/* After a publication: on a broadcast ring it may let the frontier move
 * (it stops at unpublished records), on a SHMRING_OVERWRITE ring it makes
 * the record at cons_head one a put may discard; so producers waiting for
 * room re-check (model/bcast.pml BUG_NO_PUB_WAKE, model/overwrite.pml:
 * without it a producer sleeps on). */
static inline void ring_bcast_published(struct shmring *r)
{
	if (__builtin_expect(r->mode & (RING_HDR_BROADCAST | RING_HDR_OVERWRITE), 0))
		ring_notify_producers(r);
}

/* broadcast.c */
/* Advance the frontier as far as producers need (and tethered subscribers
 * allow); returns it (stored in the handle's cached_free as shmring__reclaim_free_tail
 * does).  space.c's shmring__reclaim_free_tail defers to it on broadcast rings. */
uint64_t shmring__bcast_reclaim(struct shmring *r);
/* The frontier: positions below it may be overwritten (acquire). */
static inline uint64_t bcast_tail(const struct shmring *r)
{
	return atomic_load_explicit(&r->hdr->bcast.tail, memory_order_acquire);
}
/* Has the frontier passed pos?  Asked after reading the record at pos (its
 * meta, its payload): the acquire fence keeps those reads before the load
 * of the frontier.  A producer writes only into room the frontier has
 * passed, so a record it has not passed was whole when read (a lossy
 * subscriber's check after its copy, subscriber.c; a lossy join's walk,
 * broadcast.c). */
static inline bool bcast_passed(const struct shmring *r, uint64_t pos)
{
	atomic_thread_fence(memory_order_acquire);
	return bcast_tail(r) > pos;
}
/* Subscribe this handle (shmring_subscribe without the argument checks). */
int shmring__bcast_subscribe(struct shmring *r, unsigned flags);
/* The sum of every subscriber's cursor (tethered or lossy): it moves
 * whenever a subscriber reads, which cons_head, never moved on a broadcast
 * ring, cannot tell a producer's liveness look (reap.c).  A scan of the
 * ring's table (one line per entry), relaxed: a hint. */
uint64_t shmring__bcast_cursor_sum(const struct shmring *r);
/* Is this handle's subscription live (this process, this entry)? */
bool shmring__bcast_subscribed(const struct shmring *r);

/* subscriber.c: the consumer calls, on a broadcast ring. */
ssize_t shmring__bcast_get(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns);
ssize_t shmring__bcast_get_many(struct shmring *r, void *buf, size_t cap, struct iovec *recs,
                                size_t max_recs, int64_t timeout_ns);
struct shmring_span;
ssize_t shmring__bcast_peek(struct shmring *r, struct shmring_span *span, int64_t timeout_ns);
int     shmring__bcast_release(struct shmring *r, struct shmring_span *span);
ssize_t shmring__bcast_next_len(struct shmring *r);
bool    shmring__bcast_readable(const struct shmring *r);

/* recover.c: a stale slot below this position is not an unpublished claim
 * (on a plain ring, consumers have passed it; on a broadcast ring, the
 * frontier, which passes published records only). */
static inline uint64_t ring_consumed_floor(const struct shmring *r)
{
	if (ring_is_bcast(r))
		return bcast_tail(r);
	return atomic_load_explicit(&r->hdr->cons_head, memory_order_acquire);
}

/* overwrite.c */
/* A SHMRING_OVERWRITE put that found no room: discard the oldest unread
 * record (taken as a consumer takes it, announced in c, then released);
 * true if one was discarded (try the claim again). */
bool shmring__overwrite_oldest(struct shmring *r, struct op_rec *c);
/* Would discarding free room (free_tail f reclaimed up to cons_head, and a
 * published record there)?  The waiting producer's re-check (seq_cst). */
bool shmring__overwrite_possible(struct shmring *r, uint64_t f);
/* ring_overwrites, ring_take_overflow, ring_note_refused: queue.h (the
 * one-record claim and take call them). */

#endif /* SHMRING_BCAST_H */
