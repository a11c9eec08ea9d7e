/*
 * wait.h - sleeping and waking (private): deadlines, futexes, the
 * eventcount, and the one spin policy.  docs/design.md section 4.
 */
#ifndef SHMRING_WAIT_H
#define SHMRING_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "handle.h"

/* deadline.c: an absolute CLOCK_MONOTONIC deadline for a timeout_ns. */
struct deadline {
	bool            forever;
	struct timespec at;
};
void shmring__deadline_init(struct deadline *dl, int64_t timeout_ns);
bool shmring__deadline_passed(const struct deadline *dl);

/* CLOCK_MONOTONIC now, in ns. */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* futex.c: shared (never private) futex operations on the mapping. */
int  shmring__futex_wait_until(_Atomic uint32_t *word, uint32_t expected, const struct timespec *abs);
void shmring__futex_wake_all(_Atomic uint32_t *word);

/* --- spinning: the one policy --------------------------------------------- */

/* A ring's default spin (shmring_set_spin): about 0.1 ms of pauses here. */
#define RING_DEFAULT_SPIN 2000u

/* One pause of a spin loop: PAUSE on x86 (what liburcu's caa_cpu_relax was),
 * YIELD on arm64, elsewhere a compiler barrier so the loop re-reads memory. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

typedef bool (*ready_fn)(const void *arg);
/* eventcount.c: before a first sleep, look at ready() with a growing gap of
 * pauses between looks, spin pauses in all; true as soon as it says so. */
bool shmring__spin_until(unsigned spin, ready_fn ready, const void *arg);

/* eventcount.c: sleep until ready() or a deadline; wake sleepers.  Usable
 * on any eventcount in shared memory, with or without a ring around it. */
struct ec_stats {                 /* counters to bump, or NULL */
	_Atomic uint64_t *waits;
	_Atomic uint64_t *wakes;
};
struct waiter {
	int64_t         timeout_ns;
	unsigned        spin;      /* pauses to spin before the first sleep */
	bool            started;   /* deadline computed (lazily: slow path only) */
	bool            spun;      /* spun once already: later waits sleep at once */
	bool            slept;     /* went to sleep on the futex at least once */
	bool            fenced;    /* a light ring's: W1 issues the membarrier (fence.h) */
	struct deadline dl;
	struct ec_stats stats;
	/* Spins in a row that ended in a sleep anyway (per handle), or NULL:
	 * after SPIN_MISSES_MAX of them only one wait in SPIN_PROBE spins (the
	 * peer is on our CPU, or too slow to answer within a spin), until a
	 * spin succeeds again. */
	_Atomic unsigned *spin_misses;
};
#define SPIN_MISSES_MAX 8u
#define SPIN_PROBE      16u
static inline void waiter_init(struct waiter *w, int64_t timeout_ns, unsigned spin,
                               struct ec_stats stats)
{
	w->timeout_ns = timeout_ns;
	w->spin = spin;
	w->started = false;
	w->spun = false;
	w->slept = false;
	w->fenced = false;
	w->stats = stats;
	w->spin_misses = NULL;
}
/* After an attempt that would block: 0 = try again, -EAGAIN (timeout 0) or
 * -ETIMEDOUT = give up with that error. */
int  shmring__ec_block(struct eventcount *ec, ready_fn ready, const void *arg, struct waiter *w);
/* ec_wake's slow path: w, a read of the word, shows sleepers (N3, N4). */
void shmring__ec_wake_sleepers(struct eventcount *ec, uint64_t w, struct ec_stats stats);
/* N2: the word, if it shows sleepers; else 0. */
static inline uint64_t ec_sleepers(struct eventcount *ec)
{
	uint64_t w = atomic_load_explicit(&ec->word, memory_order_seq_cst); /* N2 */
	return EC_WAITERS(w) != 0 ? w : 0;
}
/* Wake every sleeper; no system call (nor store) when there are none. */
static inline void ec_wake(struct eventcount *ec, struct ec_stats stats)
{
	uint64_t w = ec_sleepers(ec);
	if (__builtin_expect(w != 0, 0))
		shmring__ec_wake_sleepers(ec, w, stats);
}
/* The pieces of ec_block, for a caller that sleeps on several eventcounts at
 * once (poll.c): W1 returns the key; W4; the end of the next sleep slice
 * (at most 50 ms from now, at most the deadline). */
uint32_t shmring__ec_register(struct eventcount *ec, bool fenced);
/* The longest sleep slice: 50 ms, or 1 ms for a fenced sleep (a light
 * ring's) in a blind process (fence.h). */
long     shmring__ec_recheck_ns(bool fenced);
void     shmring__ec_unregister(struct eventcount *ec, uint32_t key);
void     shmring__ec_sleep_until(struct timespec *until, const struct deadline *dl, bool fenced);
/* A ring's own use of the above. */
static inline struct ec_stats ring_stats(struct shmring *r)
{
	return (struct ec_stats){ &r->hdr->futex_waits, &r->hdr->futex_wakes };
}
static inline void ring_waiter_init(struct shmring *r, struct waiter *w, int64_t timeout_ns)
{
	waiter_init(w, timeout_ns, r->spin, ring_stats(r));
	w->spin_misses = &r->spin_misses;
	w->fenced = r->fenced;
}
/* A wait whose condition only seq_cst writes change (join's task count, a
 * CAS; peer.c's census, RMWs, and closed, a seq_cst store): never light,
 * so no membarrier, and a blind process sleeps in the usual slices
 * (fence.h; fence::a_blind_join_or_peer_wait_sleeps_as_usual_on_a_light_ring). */
static inline void ring_waiter_init_unfenced(struct shmring *r, struct waiter *w,
                                             int64_t timeout_ns)
{
	ring_waiter_init(r, w, timeout_ns);
	w->fenced = false;
}
static inline void ec_notify(struct shmring *r, struct eventcount *ec)
{
	/* ec_wake, with the stats made on the slow path only (2 instructions
	 * less per call: docs/perf.md, "Cost per record") */
	uint64_t w = ec_sleepers(ec);
	if (__builtin_expect(w != 0, 0))
		shmring__ec_wake_sleepers(ec, w, ring_stats(r));
}
static inline void ring_notify_consumers(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_empty);
}
static inline void ring_notify_producers(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_full);
}

#endif /* SHMRING_WAIT_H */
