/*
 * queue.h - the two sides of the queue (private): producers claim slots
 * (space.c), consumers take records (take.c).
 */
#ifndef SHMRING_QUEUE_H
#define SHMRING_QUEUE_H

#include <errno.h>
#include <sys/types.h>

#include "attach.h"
#include "oprec.h"
#include "slot.h"
#include "wait.h"

/* Would a record of that many slots fit now (or is the ring closed)?  The
 * waiter's re-check for producers; reclaims as it looks. */
bool     shmring__has_room(struct shmring *r, uint64_t slots);
/* Claim room for records 0..*taken of n (as many as fit, at least the first,
 * waiting up to timeout_ns for that), announcing it in c; *pos = the first.
 * On failure c is clear again (as after every lost CAS). */
int      shmring__slots_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken,
                              uint64_t *pos, int64_t timeout_ns, struct op_rec *c);

/* The tasks of a claim's n records: counted in its op record's puts (join),
 * then the op record marked COUNTED.  The one order crash recovery depends
 * on (recover.c forgives the tasks of a COUNTED claim's unpublished records,
 * and only of a COUNTED one's).  A claim of several records writes every
 * record's meta first: the sweep walks their lengths to count them.  A
 * one-record claim needs no length (the sweep does not read it):
 * claim_count_one counts first and writes the meta after.  No locked
 * instruction: a ring nobody joins pays two plain stores on a line of its
 * own op record (issue 12; before, a fetch_add on the ring's join line). */
static inline void claim_count_run(struct shmring *r, struct op_rec *c, uint64_t pos, uint64_t n,
                                   bool leaf)
{
	op_rec_count_puts(r, c, n, leaf);
	op_rec_counted(c, pos);
}
static inline void claim_count_tasks(struct shmring *r, struct op_rec *c, uint64_t pos,
                                     uint64_t n)
{
	claim_count_run(r, c, pos, n, false);
}
/* leaf: the caller has checked that c's puts is not 0 (copy.c) */
static inline void claim_count_one(struct shmring *r, struct op_rec *c, uint64_t pos,
                                   struct slot_meta *m, uint32_t len, uint16_t flags, bool leaf)
{
	claim_count_run(r, c, pos, 1, leaf);
	meta_write(m, len, flags);
}

/* take.c: the consumer side.  shmring__take_run takes a run of up to
 * max_recs records whose payloads pack into cap (*nout of them, skip records
 * included), announcing it in c; on failure c is clear again.  (The
 * one-record take: attempt.h, take_one.) */
/* Is a record ready at cons_head (or is the ring closed)?  arg: the ring.
 * The waiter's re-check for consumers. */
bool    shmring__readable(const void *arg);
ssize_t shmring__take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out,
                          size_t *nout, int64_t timeout_ns, struct op_rec *c);
/* Payloads of a run are packed 8-byte aligned into the caller's buffer. */
static inline size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

/* The start of every put or get that ends within the call: take the role
 * on first use, then this thread's op record for the handle. */
static inline __attribute__((always_inline)) int ring_enter_ticked(struct shmring *r,
                                                                    unsigned role, bool ticked,
                                                                    struct op_rec **c)
{
	if (!ticked)
		ring_liveness_tick(r, role);
	int rc = ring_need_role(r, role);
	return rc ? rc : op_rec_mine(r, c);
}
static inline __attribute__((always_inline)) int ring_enter(struct shmring *r, unsigned role,
                                                             struct op_rec **c)
{
	return ring_enter_ticked(r, role, false, c);
}
/* The same for the leaf fast path of put and get (copy.c), which makes no
 * call: LEAF_ENTER_NO (nothing done) where ring_enter would call out (the
 * role not taken yet, the op record not in op_solo), LEAF_ENTER_LOOK
 * (the tick counted down, *c is the thread's record) when the liveness look
 * is due: the caller makes it, out of line, then goes on with *c (copy.c
 * put_after_look); LEAF_ENTER_GO: the tick is taken, *c is the thread's
 * record.  Sending every 16th call down the general path for its look cost
 * 26 instructions a put + get pair (perf/pair_cost, callgrind). */
enum { LEAF_ENTER_NO, LEAF_ENTER_LOOK, LEAF_ENTER_GO };
static inline __attribute__((always_inline)) int ring_enter_leaf(struct shmring *r, unsigned role,
                                                                  struct op_rec **c)
{
	if (!(atomic_load_explicit(&r->roles, memory_order_acquire) & role) ||
	    !op_rec_solo(r, c))
		return LEAF_ENTER_NO;
	if (__builtin_expect(ring_tick_down(r), 0))
		return LEAF_ENTER_LOOK;
	return LEAF_ENTER_GO;
}
/* The same for an operation that outlives the call (reserve, peek): an op
 * record of its own, given back with shmring__op_rec_free. */
static inline int ring_enter_span(struct shmring *r, unsigned role, struct op_rec **c)
{
	ring_liveness_tick(r, role);
	int rc = ring_need_role(r, role);
	return rc ? rc : shmring__op_rec_alloc(r, c);
}

/* Issue 13 hooks of the one-record claim and take (overwrite.c).  Here, not
 * in bcast.h, because claim_one and take_one call them. */
static inline bool ring_overwrites(const struct shmring *r)
{
	return __builtin_expect(r->mode & RING_HDR_OVERWRITE, 0);
}
/* A get on a SHMRING_OVERWRITE ring after records were discarded: -EOVERFLOW,
 * once (whichever consumer comes first). */
static inline int ring_take_overflow(struct shmring *r)
{
	if (!ring_overwrites(r) ||
	    !atomic_load_explicit(&r->hdr->bcast.overflow, memory_order_relaxed))
		return 0;
	return atomic_exchange_explicit(&r->hdr->bcast.overflow, 0, memory_order_acquire)
	               ? -EOVERFLOW : 0;
}
/* A put that ends with rc: n records refused because the ring was full? */
static inline void ring_note_refused(struct shmring *r, long rc, uint64_t n)
{
	if (__builtin_expect(rc == -EAGAIN || rc == -ETIMEDOUT, 0) && n)
		atomic_fetch_add_explicit(&r->hdr->bcast.dropped, n, memory_order_relaxed);
}

#endif /* SHMRING_QUEUE_H */
