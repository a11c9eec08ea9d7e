/*
 * eventcount.c - sleep and wake without lost wakeups (see docs/design.md,
 * "Sleep and wake").  One word per eventcount: epoch (high half, the futex
 * word) and registered waiters (low half).
 *
 *   waiter                                  notifier
 *   W1 w = word += 1; key = epoch(w)        N1 publish (light: release
 *      membarrier (fence.h)                    store(s) + compiler barrier;
 *   W2 if ready(): unregister                  else seq_cst store or fence)
 *   W3 futex_wait(epoch, key)               N2 w = word (seq_cst load)
 *   W4 unregister if epoch == key still     N3 if waiters(w): CAS word to
 *                                              (epoch + 1, 0 waiters)
 *                                           N4     FUTEX_WAKE(epoch, all)
 *
 * W1, W2's loads, N1 and N2 are all in the single seq_cst order S (or, for a
 * light notifier, act so by the waiter's membarrier: fence.h).  If N2
 * reads no waiter, W1 follows N2, so N1 precedes W2 and the waiter sees the
 * publication and does not sleep.  If N2 (or a retry of N3) sees the waiter,
 * N3 changes the epoch: a W3 that starts after N3 returns at once (the word
 * no longer equals key) and one already asleep is woken by N4.  N3 clears the
 * waiter count because N4 wakes everybody: a woken waiter finds the epoch
 * moved and does not unregister (W4); one that timed out with the epoch
 * unchanged takes itself off.
 *
 * No sleep lasts longer than RECHECK_NS: whatever a crashed peer left behind
 * (a missed wake), a sleeper looks again on that interval.
 */
#include <errno.h>

#include "fence.h"
#include "wait.h"

#define RECHECK_NS 50000000L /* 50 ms: also the dead-peer sweep interval */
/* A blind waiter's slice (fence.h): a wake it missed costs this much. */
#define RECHECK_BLIND_NS 1000000L

long shmring__ec_recheck_ns(bool fenced)
{
	return fenced && atomic_load_explicit(&shmring__fence_blind, memory_order_relaxed)
	               ? RECHECK_BLIND_NS
	               : RECHECK_NS;
}
/* Pauses between two looks, at most.  Each look pulls a line the other side
 * is about to write, but a long gap is latency: with 16 (about 0.5 us here)
 * a blocking ping-pong's one-way latency was 1.9x a timeout-0 loop's; with 2,
 * 1.4x, and no loss in the streaming rate (docs/perf.md, 2026-12-04). */
#define SPIN_GAP_MAX 2u

void shmring__ec_wake_sleepers(struct eventcount *ec, uint64_t w, struct ec_stats stats)
{
	do {
		if (EC_WAITERS(w) == 0)
			return;
	} while (!atomic_compare_exchange_weak_explicit(&ec->word, &w, EC_NEXT(w),  /* N3 */
	                                                memory_order_seq_cst,
	                                                memory_order_seq_cst));
	if (stats.wakes)
		atomic_fetch_add_explicit(stats.wakes, 1, memory_order_relaxed);
	shmring__futex_wake_all(ec_futex_word(ec));                                       /* N4 */
}

void shmring__ec_unregister(struct eventcount *ec, uint32_t key)
{
	uint64_t w = atomic_load_explicit(&ec->word, memory_order_relaxed);
	while (EC_EPOCH(w) == key && EC_WAITERS(w) > 0 &&
	       !atomic_compare_exchange_weak_explicit(&ec->word, &w, w - EC_WAITER,
	                                              memory_order_relaxed,
	                                              memory_order_relaxed))
		;
}

uint32_t shmring__ec_register(struct eventcount *ec, bool fenced)
{
	uint32_t key = EC_EPOCH(atomic_fetch_add_explicit(&ec->word, EC_WAITER, memory_order_seq_cst));
	if (fenced)
		shmring__fence_waiter(); /* light notifiers' N1 -> N2 (fence.h) */
	return key;
}

void shmring__ec_sleep_until(struct timespec *until, const struct deadline *dl, bool fenced)
{
	clock_gettime(CLOCK_MONOTONIC, until);
	until->tv_nsec += shmring__ec_recheck_ns(fenced);
	if (until->tv_nsec >= 1000000000) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000;
	}
	if (!dl->forever && (dl->at.tv_sec < until->tv_sec ||
	                     (dl->at.tv_sec == until->tv_sec && dl->at.tv_nsec < until->tv_nsec)))
		*until = dl->at;
}

bool shmring__spin_until(unsigned spin, ready_fn ready, const void *arg)
{
	/* Exponential backoff between looks: each look pulls a line the other
	 * side is about to write. */
	unsigned gap = 1;
	for (unsigned i = 0; i < spin; i += gap) {
		if (ready(arg))
			return true;
		for (unsigned j = 0; j < gap; j++)
			cpu_relax();
		if (gap < SPIN_GAP_MAX)
			gap <<= 1;
	}
	return false;
}

/* The spin before a first sleep, adaptive: spinning pays only if the peer
 * answers meanwhile, from another CPU.  Which CPU the peer runs on cannot be
 * known here, so whether spins have been succeeding decides: after
 * SPIN_MISSES_MAX misses in a row, one wait in SPIN_PROBE still spins, and
 * a success restores spinning.  Relaxed: a per-handle hint. */
static bool spin_first(struct waiter *w, ready_fn ready, const void *arg)
{
	if (!w->spin)
		return false;
	_Atomic unsigned *m = w->spin_misses;
	unsigned misses = m ? atomic_load_explicit(m, memory_order_relaxed) : 0;
	bool spin = misses < SPIN_MISSES_MAX || misses % SPIN_PROBE == 0;
	if (spin && shmring__spin_until(w->spin, ready, arg)) {
		if (misses && m)
			atomic_store_explicit(m, 0, memory_order_relaxed);
		return true;
	}
	if (m && misses < UINT32_MAX - 1)
		atomic_store_explicit(m, misses + 1, memory_order_relaxed);
	return false;
}

int shmring__ec_block(struct eventcount *ec, ready_fn ready, const void *arg, struct waiter *w)
{
	if (w->timeout_ns == 0)
		return -EAGAIN;
	if (!w->started) {
		shmring__deadline_init(&w->dl, w->timeout_ns);
		w->started = true;
	}
	if (!w->spun) {
		w->spun = true;
		if (spin_first(w, ready, arg))
			return 0;
	}
	if (shmring__deadline_passed(&w->dl))
		return -ETIMEDOUT;

	uint32_t key = shmring__ec_register(ec, w->fenced);                                    /* W1 */
	if (!ready(arg)) {                                                         /* W2 */
		struct timespec until;
		shmring__ec_sleep_until(&until, &w->dl, w->fenced);
		w->slept = true;
		if (w->stats.waits)
			atomic_fetch_add_explicit(w->stats.waits, 1, memory_order_relaxed);
		shmring__futex_wait_until(ec_futex_word(ec), key, &until);                     /* W3 */
	}
	shmring__ec_unregister(ec, key);                                                       /* W4 */
	return 0;
}
