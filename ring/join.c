/*
 * join.c - the ring's join counter (JoinableQueue semantics).  Puts add to
 * it (ring_count_tasks, before publication); task_done takes one off and
 * refuses to go below zero; join sleeps until it is zero.
 */
#include <errno.h>

#include "attach.h"
#include "latch.h"

/* From the first task_done or join on, consumers count what they take in
 * their attachment entry, so that a dead one's tasks can be forgiven. */
static void join_in_use(struct shmring *ring)
{
	struct ring_header *hdr = ring->hdr;
	if (!(atomic_load_explicit(&hdr->census, memory_order_relaxed) & CENSUS_JOIN))
		atomic_fetch_or_explicit(&hdr->census, CENSUS_JOIN, memory_order_relaxed);
}

int shmring_task_done(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	join_in_use(ring);
	/* done first, then the count (undone if the count refuses): a death
	 * between the two leaves a task unforgiven (join waits, within its
	 * timeout), never forgives one twice, as a take does (docs/design.md,
	 * "Join fate"). */
	int slot = atomic_load_explicit(&ring->attach_slot, memory_order_relaxed);
	_Atomic uint64_t *done = slot >= 0 ? &ring_attach(ring, slot)->done : NULL;
	if (done)
		atomic_fetch_add_explicit(done, 1, memory_order_relaxed);
	int rc = shmring__latch_add(&ring->hdr->join, -1, ring_stats(ring));
	if (rc && done)
		atomic_fetch_sub_explicit(done, 1, memory_order_relaxed);
	return rc;
}

int shmring_join(struct shmring *ring, int64_t timeout_ns)
{
	if (!ring)
		return -EINVAL;
	join_in_use(ring);
	/* latch_wait's loop, plus sweeps: a dead worker's tasks are forgiven
	 * by the sweep that finds it, and the joiner may be the only one left
	 * to look. */
	struct latch *l = &ring->hdr->join;
	struct waiter w;
	ring_waiter_init(ring, &w, timeout_ns);
	while (!shmring__latch_is_open(l)) {
		int rc = shmring__ec_block(&l->ec, shmring__latch_is_open, l, &w);
		ring_sweep_after_wait(ring, rc, &w, STALL_OTHER,
		                      (uint64_t)atomic_load_explicit(&l->count, memory_order_relaxed));
		if (rc)
			return rc;
	}
	return 0;
}

uint64_t shmring_unfinished(const struct shmring *ring)
{
	if (!ring)
		return 0;
	int64_t c = atomic_load_explicit(&ring->hdr->join.count, memory_order_acquire);
	return c > 0 ? (uint64_t)c : 0;
}
