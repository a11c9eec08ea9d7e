/*
 * overwrite.c - SHMRING_OVERWRITE on plain rings: a put that finds the ring
 * full discards the oldest unread record and tries again (docs/design.md
 * section 10).
 *
 * The producer takes the record at cons_head exactly as a consumer takes it
 * (announced in its op record as CONSUME, one CAS of cons_head), releases it
 * at once, and counts it.  So the discard is exact (one winner per record),
 * crash-safe (a producer that dies in between is recovered like a dead
 * consumer), never touches a record a consumer holds (that one is already
 * past cons_head: the put then waits for its release as usual), and the
 * consumers' take protocol is not changed at all.  The next get, by whichever
 * consumer comes first, reports the loss with -EOVERFLOW.
 */
#include <stdint.h>

#include "bcast.h"
#include "latch.h"

bool shmring__overwrite_possible(struct shmring *r, uint64_t f)
{
	uint64_t t = atomic_load_explicit(&r->hdr->cons_head, memory_order_seq_cst);
	return t == f && atomic_load_explicit(&meta_at(r, t)->seq, memory_order_seq_cst) ==
	                         SLOT_SEQ(t, SLOT_COMMITTED);
}

bool shmring__overwrite_oldest(struct shmring *r, struct op_rec *c)
{
	/* Only when it frees room: every record before cons_head is released
	 * (free_tail, just reclaimed, has reached it).  A record a consumer
	 * holds (or is copying) keeps free_tail back: discarding the unread
	 * ones behind it would free nothing; the put waits for the release. */
	if (!shmring__overwrite_possible(r, atomic_load_explicit(&r->cached_free,
	                                                         memory_order_acquire)))
		return false;
	struct take tk;
	size_t n;
	ssize_t rc = shmring__take_run(r, SIZE_MAX, 1, &tk, &n, 0, c);
	if (rc <= 0) {
		op_rec_clear(c);
		return false; /* nothing to discard: empty, or only held records */
	}
	bool skip = tk.len == TAKE_SKIP;
	/* Did the take count the record's task in this entry's got (join in
	 * use: take.c, OPREC_R_GOT)?  Then the discard is this entry's
	 * task_done, so that got - done stays what a sweep may forgive. */
	bool got = OPREC_GOT(atomic_load_explicit(&c->extent, memory_order_relaxed));
	/* Counted and flagged right after the take, before the release: a
	 * producer killed after the release (the free_tail walk, the wake of
	 * waiting producers: a system call) left a discard counted nowhere and
	 * never reported (-EOVERFLOW), the recovery seeing a released record
	 * (a review found it, 2026-12-06).  Killed here, before the release,
	 * it is recovered as a lost record too (counted twice, never none);
	 * and a consumer that takes the next record finds the flag set
	 * a few instructions sooner. */
	if (!skip) {
		atomic_fetch_add_explicit(&r->hdr->bcast.overwritten, 1, memory_order_relaxed);
		/* release: a get that sees the flag sees the count */
		atomic_store_explicit(&r->hdr->bcast.overflow, 1, memory_order_release);
	}
	ring_release(r, tk.pos);
	ring_free_tail_follow(r, tk.pos, take_end(&tk));
	op_rec_clear(c);
	ring_notify_producers(r); /* as a consumer's release: others may discard next */
	if (!skip) {
		/* its task will never be done by a consumer: done first, then
		 * the count, as task_done (join.c): a death between the two
		 * forgives nothing rather than twice */
		int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
		_Atomic uint64_t *done = got && slot >= 0 ? &ring_attach(r, slot)->done : NULL;
		if (done)
			atomic_fetch_add_explicit(done, 1, memory_order_relaxed);
		if (shmring__join_finish(r, 1, true) < 0 && done) /* not below 0 */
			atomic_fetch_sub_explicit(done, 1, memory_order_relaxed);
	}
	return true;
}
