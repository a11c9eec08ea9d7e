/*
 * queue.h - the two sides of the queue (private): producers claim slots
 * (space.c), consumers take records (take.c).
 */
#ifndef SHMRING_QUEUE_H
#define SHMRING_QUEUE_H

#include <sys/types.h>

#include "attach.h"
#include "oprec.h"
#include "slot.h"
#include "wait.h"

/* Would a record of that many slots fit now (or is the ring closed)?  The
 * waiter's re-check for producers; reclaims as it looks. */
bool     shmring__has_room(struct shmring *r, uint64_t slots);
/* Claim room for records 0..*taken of n (as many as fit, at least the first,
 * waiting up to timeout_ns for that), announcing it in c; *pos = the first. */
int      shmring__slots_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken,
                              uint64_t *pos, int64_t timeout_ns, struct op_rec *c);

/* The tasks of a claim's n records: join += n, then the op record marked
 * COUNTED.  The one order crash recovery depends on (recover.c forgives the
 * tasks of a COUNTED claim's unpublished records, and only of a COUNTED
 * one's).  A claim of several records writes every record's meta first: the
 * sweep walks their lengths to count them.  A one-record claim needs no
 * length (the sweep does not read it): claim_count_one counts first and
 * writes the meta after, so that the locked add, a full barrier on x86, does
 * not wait for the lines of the record's stores (copy.c). */
static inline void claim_count_tasks(struct shmring *r, struct op_rec *c, uint64_t pos, uint64_t n)
{
	ring_count_tasks(r, n);
	op_rec_counted(c, pos);
}
static inline void claim_count_one(struct shmring *r, struct op_rec *c, uint64_t pos, uint32_t len,
                                   uint16_t flags)
{
	claim_count_tasks(r, c, pos, 1);
	ring_write_meta(r, pos, len, flags);
}

/* take.c: the consumer side. */
ssize_t shmring__take(struct shmring *r, size_t cap, struct take *out, int64_t timeout_ns,
                      struct op_rec *c);
/* Is a record ready at cons_head (or is the ring closed)?  arg: the ring.
 * The waiter's re-check for consumers. */
bool    shmring__readable(const void *arg);
ssize_t shmring__take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out,
                          size_t *nout, uint64_t *end, int64_t timeout_ns, struct op_rec *c);

/* The start of every put or get that ends within the call: take the role
 * on first use, then this thread's op record for the handle. */
static inline int ring_enter(struct shmring *r, unsigned role, struct op_rec **c)
{
	int rc = ring_need_role(r, role);
	return rc ? rc : op_rec_mine(r, c);
}

#endif /* SHMRING_QUEUE_H */
