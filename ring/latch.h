/*
 * latch.h - the futex counter behind struct shmring_latch and the ring's join
 * counter (private).
 */
#ifndef SHMRING_LATCH_IMPL_H
#define SHMRING_LATCH_IMPL_H

#include "wait.h"
#include "shmring_latch.h"

_Static_assert(sizeof(struct latch) == sizeof(struct shmring_latch), "latch ABI");
_Static_assert(_Alignof(struct latch) <= _Alignof(struct shmring_latch), "latch alignment");

int shmring__latch_add(struct latch *l, int64_t delta, struct ec_stats stats);
/* The waiters' re-check: count == 0 (seq_cst).  arg: the latch. */
bool shmring__latch_is_open(const void *arg);

#endif
