/*
 * fence.h - the store-load fence of the eventcount protocol, made
 * asymmetric (private; docs/design.md section 4, "The fence, asymmetric").
 *
 * A notifier publishes (N1: a record's COMMITTED, or its RELEASED), then
 * reads the eventcount's waiters (N2); a waiter registers (W1), then
 * re-checks (W2).  Neither pair may be reordered, or a waiter sleeps
 * through a publication.  On x86-64 the notifier's side cost a locked
 * instruction per record (the xchg of a seq_cst store), on every put and
 * every get, while the waiter's side runs only before a sleep.  So the cost
 * is moved to the waiter, as liburcu's urcu-memb moves it to the writer:
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
 * every waiter: if the barrier point falls before N2, N1 is visible to W2;
 * if it falls after the IPI, N2 reads the word after W1 and sees the waiter.
 * That is the argument of the seq_cst version (W1, W2, N1, N2 in one
 * order), kept.
 *
 * A process is light once it registered (fence_setup, at its first handle);
 * registration is inherited by fork() and dropped by exec().  A process that
 * cannot register, or is told not to (SHMRING_MEMBARRIER=0: a process whose
 * CPUs must not take the IPIs, such as one spinning on an isolated core),
 * publishes with the seq_cst store as before: it needs no waiter's help.
 * A waiter whose membarrier fails (a seccomp filter) cannot tell whether a
 * light notifier raced it, so it sleeps in short slices (RECHECK_BLIND_NS in
 * eventcount.c): a wake it missed costs at most one slice.
 */
#ifndef SHMRING_FENCE_H
#define SHMRING_FENCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* This process publishes with release stores and a compiler barrier
 * (registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED).  Set once, by
 * shmring__fence_setup, before this process's first handle exists. */
extern bool shmring__fence_light;
/* This process's waiters could not issue the barrier: sleep in short
 * slices.  Set by the first waiter whose membarrier failed; never cleared. */
extern _Atomic bool shmring__fence_blind;

/* Once per process (pthread_once): register, unless SHMRING_MEMBARRIER=0. */
void shmring__fence_setup(void);
/* The waiter's side, after W1 and before W2: a full barrier on every CPU
 * running a light notifier.  On failure, marks this process blind. */
void shmring__fence_waiter(void);

/* N1 -> N2, after release stores (slot.c's batch forms): the notifier's
 * side.  Light: a compiler barrier (the waiter's membarrier does the rest);
 * else a seq_cst fence (C11 7.17.4: a load after it sees every seq_cst
 * modification before it in S). */
static inline void fence_notifier(void)
{
	if (__builtin_expect(shmring__fence_light, 1))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

/* N1 itself, one word: a release store then fence_notifier, or, not light,
 * one seq_cst store (an xchg, cheaper than a store and an mfence). */
static inline void fence_store_n1(_Atomic uint64_t *word, uint64_t v)
{
	if (__builtin_expect(shmring__fence_light, 1)) {
		atomic_store_explicit(word, v, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
	} else
		atomic_store_explicit(word, v, memory_order_seq_cst);
}

#endif /* SHMRING_FENCE_H */
