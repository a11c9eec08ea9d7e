/*
 * sem.c - struct shmring_sem: a counting semaphore in shared memory, on the
 * library's eventcount (eventcount.c; docs/design.md section 4).
 *
 * value changes by CAS only, so that it stays in [0, max].  A release is N1
 * of the eventcount protocol: its CAS is seq_cst, then ec_wake reads the
 * waiters (N2).  An acquirer that finds no unit sleeps through ec_block,
 * whose re-check (W2) is sem_has_units, a seq_cst load of value: so a release
 * either sees the registered waiter and wakes it, or comes before W2 in the
 * seq_cst order and the waiter sees the unit and does not sleep.
 */
#include <errno.h>

#include "wait.h"
#include "shmring_sem.h"

/* Pauses before the first sleep: as a latch waiter (latch.c, LATCH_SPIN). */
#define SEM_SPIN 2000u

struct sem {
	_Atomic int64_t   value;
	int64_t           max;
	struct eventcount ec;
	uint64_t          reserved;
};
_Static_assert(sizeof(struct sem) == sizeof(struct shmring_sem), "sem ABI");
_Static_assert(_Alignof(struct sem) <= _Alignof(struct shmring_sem), "sem alignment");

static struct sem *impl(struct shmring_sem *sem)
{
	return (struct sem *)sem;
}

static const struct ec_stats no_stats = { NULL, NULL };

/* The waiters' re-check (W2): a unit is there (seq_cst). */
static bool sem_has_units(const void *arg)
{
	const struct sem *s = arg;
	return atomic_load_explicit(&s->value, memory_order_seq_cst) != 0;
}

int shmring_sem_init(struct shmring_sem *sem, int64_t value, int64_t max)
{
	if (!sem || value < 0 || max < value)
		return -EINVAL;
	struct sem *s = impl(sem);
	atomic_init(&s->value, value);
	s->max = max;
	atomic_init(&s->ec.word, 0);
	s->reserved = 0;
	return 0;
}

int64_t shmring_sem_try_acquire(struct shmring_sem *sem, int64_t want)
{
	if (!sem || want < 1)
		return -EINVAL;
	struct sem *s = impl(sem);
	int64_t max = s->max;
	int64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	for (;;) {
		if (v < 0 || v > max)
			return -EBADMSG;   /* the shared value is not ours to trust */
		if (v == 0)
			return -EAGAIN;
		int64_t k = v < want ? v : want;
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - k, memory_order_seq_cst,
		                                          memory_order_relaxed))
			return k;
	}
}

int64_t shmring_sem_acquire(struct shmring_sem *sem, int64_t want, int64_t timeout_ns)
{
	int64_t k = shmring_sem_try_acquire(sem, want);
	if (k != -EAGAIN)
		return k;
	struct waiter w;
	waiter_init(&w, timeout_ns, SEM_SPIN, no_stats);
	for (;;) {
		int rc = shmring__ec_block(&impl(sem)->ec, sem_has_units, impl(sem), &w);
		if (rc)
			return rc;
		k = shmring_sem_try_acquire(sem, want);
		if (k != -EAGAIN)
			return k;
	}
}

int shmring_sem_release(struct shmring_sem *sem, int64_t n)
{
	if (!sem || n < 1)
		return -EINVAL;
	struct sem *s = impl(sem);
	int64_t max = s->max;
	int64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	do {
		if (v < 0 || v > max)
			return -EBADMSG;
		if (n > max - v)
			return -ERANGE;
	} while (!atomic_compare_exchange_weak_explicit(&s->value, &v, v + n, memory_order_seq_cst,
	                                                memory_order_relaxed));  /* N1 */
	ec_wake(&s->ec, no_stats);                                                 /* N2-N4 */
	return 0;
}

int64_t shmring_sem_value(const struct shmring_sem *sem)
{
	if (!sem)
		return -EINVAL;
	return atomic_load_explicit(&((const struct sem *)sem)->value, memory_order_acquire);
}

int64_t shmring_sem_max(const struct shmring_sem *sem)
{
	if (!sem)
		return -EINVAL;
	return ((const struct sem *)sem)->max;
}
