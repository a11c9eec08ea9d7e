/*
 * shmring_latch.h - a futex counter in shared memory: join counter, latch,
 * start gate, one-shot barrier.
 *
 * Place a struct shmring_latch in memory shared by the processes (a
 * MAP_SHARED mapping made before fork, say), initialise it once, then:
 *  - latch:  init(N); each of N workers arrive(); the parent wait()s;
 *  - gate:   init(1); workers wait(); the parent open()s it (arrive) and
 *            every waiter is released at once (a benchmark's start line);
 *  - barrier: init(N); each of N calls arrive_and_wait();
 *  - counter: add(+k) / add(-k) freely; wait() until it reaches zero (the
 *    join counter of a ring is one of these).
 * Waiters sleep on a futex (shared, not private), spinning briefly first;
 * timeouts as in <shmring.h>; errors are negative errno values.  A sleeper
 * re-checks at least every 50 ms.
 */
#ifndef SHMRING_LATCH_H
#define SHMRING_LATCH_H

#include <stdint.h>
#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct shmring_latch {
	uint64_t opaque_[2]; /* count; eventcount word.  16 bytes, 8-aligned */
};

/* count >= 0.  Not concurrent with other calls on the same latch. */
SHMRING_API int     shmring_latch_init(struct shmring_latch *latch, int64_t count);
/* count += delta, atomically.  -ERANGE (unchanged) if it would go below 0.
 * Wakes the waiters when it reaches 0. */
SHMRING_API int     shmring_latch_add(struct shmring_latch *latch, int64_t delta);
/* count -= 1. */
SHMRING_API int     shmring_latch_arrive(struct shmring_latch *latch);
/* Wait until count == 0. */
SHMRING_API int     shmring_latch_wait(struct shmring_latch *latch, int64_t timeout_ns);
/* arrive, then wait. */
SHMRING_API int     shmring_latch_arrive_and_wait(struct shmring_latch *latch, int64_t timeout_ns);
SHMRING_API int64_t shmring_latch_count(const struct shmring_latch *latch);

/* A start gate is a latch of one. */
static inline int shmring_gate_init(struct shmring_latch *gate) { return shmring_latch_init(gate, 1); }
static inline int shmring_gate_open(struct shmring_latch *gate) { return shmring_latch_arrive(gate); }
static inline int shmring_gate_wait(struct shmring_latch *gate, int64_t timeout_ns)
{
	return shmring_latch_wait(gate, timeout_ns);
}

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_LATCH_H */
