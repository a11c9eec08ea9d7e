/*
 * fence.h - the store-load fence of the eventcount protocol, made
 * asymmetric (private; docs/design.md section 4, "The fence, asymmetric").
 *
 * A notifier publishes (N1: a record's COMMITTED, or its RELEASED), then
 * reads the eventcount's waiters (N2); a waiter registers (W1), then
 * re-checks (W2).  Neither pair may be reordered, or a waiter sleeps
 * through a publication.  On x86-64 the notifier's side costs a locked
 * instruction per record (the xchg of a seq_cst store), on every put and
 * every get, while the waiter's side runs only before a sleep.  On a ring
 * made with SHMRING_LIGHT_PUBLISH the cost is moved to the waiter, as
 * liburcu's urcu-memb moves it to the writer:
 *
 *   notifier (light)                         waiter
 *   N1 release store of seq                  W1 fetch_add(word) (a full barrier)
 *      compiler barrier                         membarrier(GLOBAL_EXPEDITED)
 *   N2 load of word                          W2 re-check
 *
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (Linux 4.16) returns only once
 * every CPU running a thread of a process registered for it has executed a
 * full memory barrier; a CPU that switches tasks executes one anyway.  So a
 * light notifier's compiler barrier acts as a full barrier with respect to
 * every waiter: if that barrier falls after N1, N1 is visible before the
 * membarrier returns, so to W2; if it falls before N1, N2 runs after the
 * IPI, which followed W1, and sees the waiter.  Those are the two cases of
 * the seq_cst argument (W1, W2, N1, N2 in one order), kept.
 *
 * The choice is the ring's, fixed at create (RING_HDR_LIGHT), so a ring
 * whose waiters need not pay never has a light notifier.  A handle on a
 * light ring publishes light once its process has registered (at its first
 * handle on a light ring); registration is inherited by fork() and dropped
 * by exec().  A process that cannot register, or is told not to
 * (SHMRING_MEMBARRIER=0: a process whose CPUs must not take the IPIs, such
 * as one spinning on an isolated core), publishes with the seq_cst store as
 * on any ring: it needs no waiter's help.  Every sleep on a light ring for
 * a record or for room issues the membarrier, registered or not; a join or
 * a wait for a peer does not (wait.h ring_waiter_init_unfenced: what they
 * wait for is only ever written seq_cst).  A waiter whose membarrier fails
 * (a seccomp filter) cannot tell whether a light notifier raced it, so it
 * sleeps in short slices on light rings (RECHECK_BLIND_NS in eventcount.c):
 * a wake it missed costs at most one slice.
 */
#ifndef SHMRING_FENCE_H
#define SHMRING_FENCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct shmring;

/* This process's waiters could not issue the barrier: sleep in short
 * slices on light rings.  Set by the first handle's probe (or a later
 * waiter) whose membarrier failed; never cleared. */
extern _Atomic bool shmring__fence_blind;

/* A new handle on a ring with (light) or without RING_HDR_LIGHT: sets its
 * light and fenced fields.  On a light ring, this process registers first
 * (once, pthread_once), unless SHMRING_MEMBARRIER=0. */
void shmring__fence_choose(struct shmring *r, bool light_ring);
/* The waiter's side, after W1 and before W2: a full barrier on every CPU
 * running a light notifier.  On failure, marks this process blind. */
void shmring__fence_waiter(void);

/* N1 -> N2, after release stores (slot.c's batch forms): the notifier's
 * side.  Light: a compiler barrier (the waiter's membarrier does the rest);
 * else a seq_cst fence (C11 7.17.4: a load after it sees every seq_cst
 * modification before it in S). */
static inline void fence_notifier(bool light)
{
	if (light)
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

/* N1 itself, one word: a release store then fence_notifier, or, not light,
 * one seq_cst store (an xchg, cheaper than a store and an mfence). */
static inline void fence_store_n1(_Atomic uint64_t *word, uint64_t v, bool light)
{
	if (light) {
		atomic_store_explicit(word, v, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
	} else
		atomic_store_explicit(word, v, memory_order_seq_cst);
}

#endif /* SHMRING_FENCE_H */
