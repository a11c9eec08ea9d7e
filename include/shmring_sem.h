/*
 * shmring_sem.h - a counting semaphore in shared memory.
 *
 * Place a struct shmring_sem in memory shared by the processes (a MAP_SHARED
 * mapping of a memfd or a /dev/shm file), initialise it once with
 * shmring_sem_init, then acquire and release units from any process or
 * thread.  The value stays between 0 and the max given at init: acquire takes
 * units (waiting while there are none), release gives them back.  The item
 * limit of a bounded queue is one: init(maxsize, maxsize); a put acquires one
 * unit of room, a get releases it (the Python binding's maxsize).
 *
 * Waiting is the library's (the eventcount of docs/design.md, section 4):
 * spin briefly, then sleep on a futex in the shared mapping (shared, never
 * private), re-checking at least every 50 ms.  Timeouts as in <shmring.h>:
 * < 0 wait as long as needed, 0 never wait, > 0 at most that many ns.
 * Errors are negative errno values (shmring_strerror).  The struct holds no
 * pointer: processes may map it at different addresses.  A value it holds
 * that a hostile or crashed peer made inconsistent (out of [0, max]) makes
 * the calls return -EBADMSG, never crash.
 */
#ifndef SHMRING_SEM_H
#define SHMRING_SEM_H

#include <stdint.h>
#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct shmring_sem {
	uint64_t opaque_[4]; /* value, max, eventcount word, reserved: 32 bytes, 8-aligned */
};

/* value and max: 0 <= value <= max.  Not concurrent with other calls on the
 * same semaphore; the struct must be visible to the other processes before
 * they use it (a store before the fork, or before the file is shared). */
SHMRING_API int     shmring_sem_init(struct shmring_sem *sem, int64_t value, int64_t max);

/* Take between 1 and want units (want >= 1), as many as are there now,
 * without waiting.  Returns how many were taken, or -EAGAIN if none was.
 * Ordering: a successful take is a seq_cst read-modify-write of the value, so
 * it happens after the release that gave the units (whatever the releaser
 * wrote before releasing is visible after the take). */
SHMRING_API int64_t shmring_sem_try_acquire(struct shmring_sem *sem, int64_t want);

/* As try_acquire, but wait up to timeout_ns for at least one unit.  Returns
 * how many were taken (1..want), -EAGAIN (timeout 0), -ETIMEDOUT. */
SHMRING_API int64_t shmring_sem_acquire(struct shmring_sem *sem, int64_t want, int64_t timeout_ns);

/* Give n units back (n >= 1) and wake the waiters if there are any (no
 * system call when none sleeps).  -ERANGE, value unchanged, if the value
 * would exceed max.  Ordering: a seq_cst read-modify-write of the value,
 * before the eventcount's read of its waiters (N1, N2 of the protocol). */
SHMRING_API int     shmring_sem_release(struct shmring_sem *sem, int64_t n);

/* The value now (units available); may be stale at once.  Acquire load. */
SHMRING_API int64_t shmring_sem_value(const struct shmring_sem *sem);
/* The max given at init. */
SHMRING_API int64_t shmring_sem_max(const struct shmring_sem *sem);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_SEM_H */
