/*
 * join.c - the ring's join counter (JoinableQueue semantics).  Puts add to
 * it (ring_count_tasks, before publication); task_done takes one off and
 * refuses to go below zero; join sleeps until it is zero.
 */
#include <errno.h>

#include "latch.h"

int shmring_task_done(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	return latch_add(&ring->hdr->join, -1, ring_stats(ring));
}

int shmring_join(struct shmring *ring, int64_t timeout_ns)
{
	if (!ring)
		return -EINVAL;
	return latch_wait(&ring->hdr->join, timeout_ns, ring->spin, ring_stats(ring));
}

uint64_t shmring_unfinished(const struct shmring *ring)
{
	if (!ring)
		return 0;
	int64_t c = atomic_load_explicit(&ring->hdr->join.count, memory_order_acquire);
	return c > 0 ? (uint64_t)c : 0;
}
