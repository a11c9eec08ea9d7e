/*
 * futex.c - futex calls on the shared mapping.
 *
 * Never FUTEX_PRIVATE_FLAG: sleepers and wakers are different processes, and
 * the private hash is keyed by (mm, address).  FUTEX_WAIT_BITSET takes an
 * absolute CLOCK_MONOTONIC deadline, so a restart after EINTR keeps it.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wait.h"

int shmring__futex_wait_until(_Atomic uint32_t *word, uint32_t expected, const struct timespec *abs)
{
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, abs, NULL,
	                  FUTEX_BITSET_MATCH_ANY);
	if (rc == 0)
		return 0;
	return -errno; /* EAGAIN: word changed; ETIMEDOUT; EINTR */
}

void shmring__futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
