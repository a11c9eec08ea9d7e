/*
 * redeliver.h - at-least-once delivery on SHMRING_REDELIVER rings (private;
 * redeliver.c; docs/design.md section 9).
 *
 * A record a dead consumer took and never released is *parked*: its seq goes
 * from COMMITTED(p) to REDELIVER(p) (once: it never becomes COMMITTED again)
 * and an entry of the redelivery list (hdr->rdl) owns it from then on.  The
 * record stays where it is, unreleased: free_tail waits for it, which is
 * fine, because taking it again needs no room.  An entry's word is
 *
 *   [ version : 28 | holder : 16 | deliveries : 16 | state : 4 ]
 *
 * version grows by one on every change, so every CAS expects exactly the
 * word it read.  holder is the attachment that holds it (HELD, DEADHELD) or
 * whose recovery must finish it (RESERVED): a dead holder's recovery finds
 * its entries by that index, with no announcement needed.
 *
 *   FREE -> RESERVED -> (seq COMMITTED -> REDELIVER) -> WAITING | DEAD
 *   WAITING -> HELD (a take; deliveries + 1)
 *   HELD -> FREE (release: seq RELEASED first) | WAITING | DEAD (holder died,
 *           or requeue; DEAD once deliveries >= max_deliveries)
 *   DEAD -> DEADHELD (shmring_peek_dead) -> FREE (release) | DEAD (died)
 */
#ifndef SHMRING_REDELIVER_H
#define SHMRING_REDELIVER_H

#include "queue.h"

enum rdl_state {
	RDL_FREE = 0,
	RDL_RESERVED = 1, /* being parked (seq not yet REDELIVER, maybe) */
	RDL_WAITING = 2,  /* parked: the next take gets it */
	RDL_HELD = 3,     /* delivered again, held by holder */
	RDL_DEAD = 4,     /* a dead letter nobody reads */
	RDL_DEADHELD = 5, /* a dead letter holder reads */
};
#define RDL_WORD(ver, holder, d, st) \
	((((uint64_t)(ver) & 0xfffffff) << 36) | ((uint64_t)(holder) << 20) | \
	 ((uint64_t)(d) << 4) | (uint64_t)(st))
#define RDL_STATE(w)  ((unsigned)((w) & 15))
#define RDL_DELIV(w)  ((unsigned)(((w) >> 4) & 0xffff))
#define RDL_HOLDER(w) ((unsigned)(((w) >> 20) & 0xffff))
#define RDL_VER(w)    ((w) >> 36)
#define RDL_NEXT(w, holder, d, st) RDL_WORD(RDL_VER(w) + 1, holder, d, st)
#define RDL_MAX_DELIVERIES 0xffffu

/* The fast path: on a plain ring one test of a handle field; on a
 * redelivery ring one relaxed load of rdl.pending, a line no plain take or
 * release writes. */
static inline bool redeliver_pending(const struct shmring *r)
{
	return __builtin_expect(r->redeliver, 0) &&
	       atomic_load_explicit(&r->hdr->rdl.pending, memory_order_relaxed) > 0;
}

/* Take a parked record that fits cap into out[0] (out->rl = its entry + 1,
 * out->deliveries); 1 if one was taken, 0 if none is waiting, -EMSGSIZE if
 * those waiting are all longer than cap (out->len: one's length; nothing
 * taken, as for a record at cons_head). */
int  shmring__redeliver_take(struct shmring *r, size_t cap, struct take *out);
/* The start of every take attempt (take.c): parked records first. */
static inline int redeliver_first(struct shmring *r, size_t cap, struct take *out)
{
	out->rl = 0;
	out->deliveries = 1;
	return redeliver_pending(r) ? shmring__redeliver_take(r, cap, out) : 0;
}
/* After a record's seq was stored RELEASED (get, get_many, release): free
 * its list entry (rl = entry + 1, or 0) and, once the stream has ended, wake
 * consumers waiting for the last held record (end of stream). */
void shmring__redeliver_released(struct shmring *r, uint32_t rl);
static inline void redeliver_after_release(struct shmring *r, uint32_t rl)
{
	if (__builtin_expect(r->redeliver, 0))
		shmring__redeliver_released(r, rl);
}
/* The consumer's re-check (shmring__readable): a parked record is waiting
 * (seq_cst, W2 of the eventcount protocol). */
bool shmring__redeliver_ready(const struct shmring *r);
/* A sweep (reap.c): pending and dead_waiting raised to the list's number
 * of WAITING and DEAD entries where they fell short (a process killed
 * between an entry's CAS and its count's increment left one low). */
void shmring__redeliver_recount(struct shmring *r);
/* End of stream is held open: a record is parked or held (taken and not
 * released, not a dead letter).  seq_cst loads (also a re-check). */
bool shmring__redeliver_holds_open(const struct shmring *r);

/* recover.c: park the record at p that the dead attachment slot took (its
 * seq read COMMITTED(p)); got: the take counted its task in the entry's got
 * (OPREC_R_GOT), so the entry's done grows by one to keep the parked record's
 * task unfinished.  1: parked (or someone changed it meanwhile: leave it), 0:
 * the list is full (the caller counts it lost, as without the flag). */
int  shmring__redeliver_park(struct shmring *r, int slot, uint64_t p, bool got);
/* recover.c: finish the list entries of the dead attachment slot. */
void shmring__redeliver_recover(struct shmring *r, int slot);
/* recover.c: take n join tasks off (not below zero), counted in lost_tasks. */
void shmring__forgive_tasks(struct shmring *r, uint64_t n);

/* state.c: the redelivery figures of shmring_info. */
void shmring__redeliver_info(const struct shmring *r, struct shmring_info *info);

#endif /* SHMRING_REDELIVER_H */
