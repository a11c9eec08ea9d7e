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

/* take.c: the consumer side. */
struct take {
	uint64_t pos;
	uint32_t len;  /* UINT32_MAX: a skip record (shmring__take_run only) */
	/* redeliver.h (out[0] only: a record taken from the redelivery list is
	 * a run of one): its list entry + 1 or 0, and which delivery this is. */
	uint32_t rl;
	uint32_t deliveries;
};
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
