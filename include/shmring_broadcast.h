/*
 * shmring_broadcast.h - broadcast rings: every subscriber receives every
 * record (docs/broadcast.md).
 *
 * A ring created with SHMRING_BROADCAST in shmring_config.flags is a
 * broadcast ring.  Any number of producers put records as on any ring (put,
 * putv, put_many, reserve/commit/abort; the same claim, the same crash
 * recovery).  Any number of subscribers each receive every record published
 * after they subscribed, in publication order, whole.
 *
 * A handle becomes a subscriber with shmring_subscribe(); from then on
 * shmring_get, shmring_get_many, shmring_peek/shmring_release,
 * shmring_next_len, shmring_poll (SHMRING_POLLIN) and the event fd read this
 * subscriber's stream.  A handle that gets or peeks without subscribing is
 * subscribed with flags 0 by that first call.  One subscription per handle;
 * its gets must not run in several threads at once (one reader per
 * subscription: open another handle for another reader).  A subscriber holds
 * at most one peeked record at a time (a second peek: -ENOBUFS).  fork(): a
 * child does not inherit the subscription; it subscribes itself.
 *
 * Policies, per subscriber:
 *  - tethered (the default): producers wait for it when the ring is full;
 *    it receives every record, exactly once, in order.
 *  - SHMRING_SUB_LOSSY: producers never wait for it.  If it falls a lap
 *    behind (the records it would read next were overwritten), its next get
 *    (get_many, peek) returns -EOVERFLOW once; shmring_lost() then tells
 *    exactly how many records it has missed in all, and the following gets
 *    continue from the oldest record still in the ring.  A lossy peeked
 *    record may be overwritten while held: shmring_release then returns
 *    -EOVERFLOW (what was read through the span may be torn) and counts it
 *    lost.  A get never returns a torn record (it copies, then re-checks).
 * With no tethered subscriber, producers never wait: the oldest records are
 * overwritten.  The ring keeps at least capacity - max(max_record,
 * capacity / 16) bytes of the latest records (the frontier moves in steps of
 * that much); that history is where a SHMRING_SUB_OLDEST subscriber starts.
 *
 * shmring_info on a broadcast ring: records and bytes count what is still in
 * the ring (from the frontier: the history plus what subscribers have yet to
 * read); dropped counts puts refused (only tethered subscribers can make a
 * put wait); overwritten stays 0 (see shmring_lost per subscriber).
 *
 * Ends and failures, as for plain rings: a subscriber counts as a consumer
 * (broken pipe: puts return -EPIPE once subscribers have existed and none is
 * left); end of stream (every producer gone) and shmring_close make a
 * subscriber's get return -EPIPE once it has read everything (on a
 * SHMRING_PERSISTENT ring neither happens: only shmring_close ends it); every put adds
 * one task to the join counter (tasks are not per subscriber: shmring_task_done
 * is the application's call); a producer that dies mid-put is recovered as on
 * plain rings (its unpublished claim becomes a skip record).  A subscriber
 * that detaches or dies never stalls producers: its cursor goes with its
 * attachment, dropped by the liveness sweep (a dead tethered subscriber
 * holds producers back for at most about 100 ms).
 */
#ifndef SHMRING_BROADCAST_H
#define SHMRING_BROADCAST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMRING_SUB_LOSSY  0x1u /* producers never wait for this subscriber */
#define SHMRING_SUB_OLDEST 0x2u /* start from the oldest record still there */

/* Make this handle a subscriber of its broadcast ring (it becomes a consumer
 * for end of stream / broken pipe).  By default it starts with the next
 * record published; SHMRING_SUB_OLDEST starts with the oldest record still in
 * the ring.  -EINVAL: not a broadcast ring, or unknown flags; -EALREADY:
 * this handle already subscribes; -EUSERS: attachment table full. */
SHMRING_API int      shmring_subscribe(struct shmring *ring, unsigned flags);

/* Records this subscriber has missed so far (a running total; 0 for a
 * tethered subscriber, or a handle that does not subscribe).  Exact: it
 * counts the records published between the last record it received and the
 * first one it receives after an -EOVERFLOW (skip records excluded). */
SHMRING_API uint64_t shmring_lost(const struct shmring *ring);

/* One subscriber, as another process sees it (shmring_subscribers). */
struct shmring_subscriber {
	pid_t    pid;
	unsigned flags;        /* SHMRING_SUB_LOSSY if lossy                     */
	uint64_t lag_bytes;    /* storage between its cursor and the producers'
	                          head (slots x 64 B)                           */
	uint64_t lag_records;  /* published records it has yet to read (counted
	                          from the oldest still there if it is lapped)   */
	int      lapped;       /* 1: it has fallen a lap behind and not yet read */
	uint64_t lost;         /* its shmring_lost() total, as last recorded     */
};
/* Fill out[0..n) with the ring's live subscribers (a snapshot: any figure may
 * be stale); returns how many there are (may be more than n), or -EINVAL
 * (NULL ring, or out NULL with n > 0).  Works on any handle of the ring, in
 * any process, subscriber or not.  Reads every entry of the ring's
 * attachment table (shmring_config.max_attach of them). */
SHMRING_API int      shmring_subscribers(const struct shmring *ring, struct shmring_subscriber *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_BROADCAST_H */
