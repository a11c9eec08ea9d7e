/*
 * attach.h - attachments (private): this process's registry of handles,
 * roles and the census, reaping dead peers.  docs/design.md section 5.
 */
#ifndef SHMRING_ATTACH_H
#define SHMRING_ATTACH_H

#include <errno.h>

#include "wait.h"

/* registry.c: this process's handles, under one lock (held across fork). */
void shmring__registry_lock(void);
void shmring__registry_unlock(void);
/* Add r (giving it a serial); remove it.  Under the lock. */
void shmring__registry_add(struct shmring *r);
void shmring__registry_remove(struct shmring *r);
/* The first handle (then ->reg_next); under the lock. */
struct shmring *shmring__registry_first(void);
/* Run f(handle) for the live handle with this serial, under the registry
 * lock; false if there is none. */
bool shmring__with_handle(uint64_t serial, void (*f)(struct shmring *r, void *arg), void *arg);
/* + 1 in every fork child (attach.c): what a process cached about its
 * entries before the fork is stale after it. */
extern _Atomic unsigned shmring__fork_gen;

/* attach.c: a new handle joins this process (map.c), a detaching one
 * leaves its entry (roles end: peers are woken) and the registry. */
void shmring__attach_new(struct shmring *r);
void shmring__attach_end(struct shmring *r);
int  shmring__take_role(struct shmring *r, unsigned roles);
/* Take the role on first use: one acquire load on the fast path. */
static inline int ring_need_role(struct shmring *r, unsigned role)
{
	if (__builtin_expect(atomic_load_explicit(&r->roles, memory_order_acquire) & role, 1))
		return 0;
	return shmring__take_role(r, role);
}

/* The census word's deltas for a set of roles. */
static inline uint64_t census_delta(unsigned roles)
{
	return ((roles & SHMRING_PRODUCER) ? CENSUS_PRODUCER : 0) |
	       ((roles & SHMRING_CONSUMER) ? CENSUS_CONSUMER : 0);
}
/* census.c (attach.c): count roles in, with the arrival generations and
 * (unless the ring is persistent) the "ever" bits, and wake waiters; count
 * them out. */
void shmring__census_add(struct shmring *r, unsigned roles);
static inline void census_sub(struct ring_header *hdr, unsigned roles)
{
	/* seq_cst (release at least): a leaving producer's puts happen before
	 * a consumer that reads the lower count and then looks at prod_head. */
	atomic_fetch_sub_explicit(&hdr->census, census_delta(roles), memory_order_seq_cst);
}
/* A new handle looks at the census and the heads (attach.c). */
void shmring__census_look(struct shmring *r);
/* End of stream: producers came and all went.  Broken pipe: consumers did.
 * (A persistent ring never sets the "ever" bits: neither ever holds.) */
static inline bool census_eof(uint64_t c)
{
	return (c & CENSUS_EVER_PRODUCER) && CENSUS_PRODUCERS(c) == 0;
}
static inline bool census_broken(uint64_t c)
{
	return (c & CENSUS_EVER_CONSUMER) && CENSUS_CONSUMERS(c) == 0;
}
/* The same for this handle: a state, not a tombstone.  An end of stream
 * that was already there, on an empty ring, when the handle was made (a
 * leftover ring, reopened) is not the handle's own until a producer has
 * come since; likewise a broken pipe with no consumer then.  Evaluated only
 * once census_eof/broken holds: the fast path pays nothing. */
static inline bool ring_eof(const struct shmring *r, uint64_t c)
{
	return census_eof(c) &&
	       !(r->fresh_prod && CENSUS_PGEN(c) == CENSUS_PGEN(r->born_census));
}
static inline bool ring_broken(const struct shmring *r, uint64_t c)
{
	return census_broken(c) &&
	       !(r->fresh_cons && CENSUS_CGEN(c) == CENSUS_CGEN(r->born_census));
}
/* Roles changed: sleepers on both sides re-check (EOF, EPIPE). */
static inline void wake_everyone(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_empty);
	ec_notify(r, &r->hdr->not_full);
}
/* Join accounting for a consumer's attachment, once join is in use: the
 * entry whose got counts what this handle takes, or NULL.  Decided once per
 * take, before its announcement (take.c), so that the op record says
 * whether its records' tasks are counted there (OPREC_R_GOT). */
static inline struct attach_entry *join_ledger(struct shmring *r)
{
	if (__builtin_expect(!(atomic_load_explicit(&r->hdr->census, memory_order_relaxed) & CENSUS_JOIN), 1))
		return NULL;
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	return slot >= 0 ? ring_attach(r, slot) : NULL;
}

/* join.c: the tasks puts have counted (the sum of every op record's puts,
 * docs/design.md "Join"); unfinished tasks (that sum - join.count); finish
 * n tasks (task_done, a discard, forgiveness): exact, all n or -ERANGE,
 * else as many as are unfinished (maybe 0).  Returns how many; wakes the
 * joiners when that may have left none. */
uint64_t shmring__join_puts(const struct shmring *r);
uint64_t shmring__join_unfinished(const struct shmring *r);
int64_t  shmring__join_finish(struct shmring *r, uint64_t n, bool exact);
/* A pending entry (taken by a parent for a child being forked) that the
 * child has not converted by then is reaped (fork failed, or it died). */
#define PENDING_TIMEOUT_NS 1000000000ull
/* Give an entry back: since_ns 0 first (a pending entry's stamp; 0 until
 * the parent that takes it next stamps it: reap.c), then the id, with
 * release, so that whoever takes the entry sees since_ns 0. */
static inline void attach_entry_free(struct attach_entry *e)
{
	atomic_store_explicit(&e->since_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&e->id, 0, memory_order_release);
}
/* reap.c: sweep the table for dead attachments (returns how many were
 * freed); the same, at most every 50 ms per ring. */
int  shmring__reap(struct shmring *r);
void shmring__maybe_reap(struct shmring *r);
/* One sweep's accounting (reap.c): the work its recoveries did (for its
 * budget), and the liveness answers it has had, per entry, for the id seen
 * then (ids[j] == 0: none; NULL arrays: no cache).  A dead id stays dead;
 * an id answered live may have died since, which only makes a recovery
 * wait for a later sweep. */
struct shmring__sweep {
	uint64_t work;
	uint64_t *ids;
	unsigned char *alive;
};
bool shmring__sweep_id_alive(struct shmring__sweep *sw, int j, uint64_t id);
/* recover.c: finish a dead attachment's claims (from a sweep, or detach);
 * false if part must wait for a live process (retry later).  sw: the
 * sweep's, or NULL. */
bool shmring__recover_entry(struct shmring *r, int slot, struct shmring__sweep *sw);
/* reap.c: a look at the clock from ring_liveness_tick, by a call of role
 * (SHMRING_PRODUCER or SHMRING_CONSUMER). */
void shmring__liveness_look(struct shmring *r, unsigned role);
/* Every put, get, reserve and peek: a caller whose calls keep succeeding
 * never waits, so never sweeps, and would not learn that its last peer died
 * (a producer putting into a ring whose consumer was killed).  So every
 * 16th call of a handle (every call, while its calls are more than 5 ms
 * apart) looks at the coarse clock (vDSO: no system call) and at the other
 * side's index: cons_head for a put or reserve, prod_head for a get or peek,
 * read at most once a millisecond (reap.c PEER_LOOK_NS: each read takes the
 * line the other side writes on every call; a put on a broadcast ring, where
 * cons_head never moves: the sum of the subscribers' cursors, scanned at
 * most every 20 ms).
 * If that index has moved since the last look, a live process of the other
 * role is at work: nothing more (no sweep, no system call; the rule that
 * lets a poller stream with no system call, tests/test_nosyscall_poll.c).
 * If it has stood still for RING_STALL_NS (50 ms), sweep (at most every
 * 50 ms per ring): a producer whose only consumer died sees cons_head stop
 * and gets -EPIPE within about 100 ms (tests/test_liveness.c).  Cost on the
 * fast path: a count down and a branch (the look, 11 ns here,
 * amortized over 16 calls).  Measured with callgrind (one thread, put + get
 * of 64 bytes, 200,000 pairs): 9.5 instructions more per pair, 648 without,
 * i.e. +1.5%; wall-clock differences were within noise. */
#define LIVENESS_TICK 16
/* The count down by one; true when it reached zero or below (a look is
 * due; the look sets it again).  On x86-64 one `sub` on the field and the
 * branch on its flags (asm goto: no lock prefix; the count is relaxed and
 * racing threads of a handle only shift a look, as below): the relaxed load,
 * subtract, test and store the compiler makes of the C below cost 3
 * instructions more a call, 6 a put + get pair (perf/pair_cost put;
 * docs/perf.md, thirteenth session). */
static inline __attribute__((always_inline)) bool ring_tick_down(struct shmring *r)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && \
	!defined(__SANITIZE_THREAD__)
	/* (asm goto with an output: GCC 11 and later; not under TSan, which
	 * would not see the write) */
	__asm__ goto("subl $1, %0\n\tjle %l[due]" : "+m"(r->tick_left) : : "cc" : due);
	return false;
due:
	return true;
#else
	int n = atomic_load_explicit(&r->tick_left, memory_order_relaxed) - 1;
	atomic_store_explicit(&r->tick_left, n, memory_order_relaxed);
	return n <= 0;
#endif
}
static inline void ring_liveness_tick(struct shmring *r, unsigned role)
{
	/* a count down; racing threads may take it below zero: look then too */
	if (__builtin_expect(ring_tick_down(r), 0))
		shmring__liveness_look(r, role);
}

/* Sweeps for the dead happen where somebody waits, never on a path where
 * records flow: a sweep reads /proc/<pid>/stat for every attachment (about
 * five system calls and 10-20 us each time), which in a stream of 100 ns
 * hops is a stall (docs/perf.md, "The polling path").
 *
 * After a blocking wait (ec_block returned 0 or -ETIMEDOUT): sweep
 * (rate-limited per ring) if the caller slept on the futex or gave up, not
 * if its spin found the ring ready. */
static inline void ring_sweep_after_block(struct shmring *r, int rc, const struct waiter *w)
{
	if (rc || w->slept)
		shmring__maybe_reap(r);
}
/* The polls a handle keeps apart (a handle may both put and get). */
enum ring_stall_kind {
	STALL_TAKE,   /* get/peek: at = cons_head */
	STALL_CLAIM,  /* put/reserve: at = the free_tail last reclaimed */
	STALL_OTHER,  /* shmring_poll, shmring_join with timeout 0 */
};
#define RING_STALL_NS 50000000ull /* 50 ms without a move: look for the dead */
/* A look at now that found the other side's index unchanged: has it stood
 * still long enough to sweep?  The first such look starts the standstill
 * (since_ns; no blind time yet) and says no.  blind_ns is the longest gap
 * between two consecutive looks since (the caller keeps it: ring_look_gap):
 * time this process did not watch (descheduled, its VM or cgroup frozen,
 * the job stopped with ^Z), when the peer may have been stopped with it, so
 * it does not count.  Without this rule both sides of a stream frozen
 * together for 50 ms swept on waking (tests/test_liveness.c frozen_*; CI
 * saw five such sweeps in half a second, tests/test_nosyscall_poll.c).  A
 * caller that looks rarely (every 100 ms) sweeps one look later; a dead
 * peer is still noticed after 50 ms by a caller that keeps looking. */
static inline bool ring_stood_still(_Atomic uint64_t *since_ns, _Atomic uint64_t *blind_ns,
                                    uint64_t now)
{
	uint64_t since = atomic_load_explicit(since_ns, memory_order_relaxed);
	if (!since) {
		atomic_store_explicit(blind_ns, 0, memory_order_relaxed);
		atomic_store_explicit(since_ns, now, memory_order_relaxed);
		return false;
	}
	return now - since >= RING_STALL_NS + atomic_load_explicit(blind_ns, memory_order_relaxed);
}
/* The gap from a look at prev to one at now (0 if the clocks disagree). */
static inline uint64_t ring_look_gap(uint64_t prev, uint64_t now)
{
	return prev && prev <= now ? now - prev : 0;
}
/* reap.c: the look of ring_sweep_if_stalled below, every 64th poll at one
 * position (out of line: the count inlines). */
void shmring__stall_look(struct shmring *r, struct ring_stall *s);
/* After -EAGAIN (timeout 0) at `at`, a position that moves whenever records
 * flow: a caller that never sleeps still notices a dead peer, by a sweep once
 * the ring has stood still at `at` for RING_STALL_NS (the clock read on
 * every 64th poll there, through the vDSO).  While records flow, at changes
 * and nothing but these three words is touched: no clock, no system call. */
static inline __attribute__((always_inline)) void
ring_sweep_if_stalled(struct shmring *r, enum ring_stall_kind kind, uint64_t at)
{
	struct ring_stall *s = &r->stall[kind];
	if (atomic_load_explicit(&s->at, memory_order_relaxed) != at) {
		atomic_store_explicit(&s->at, at, memory_order_relaxed);
		atomic_store_explicit(&s->polls, 0, memory_order_relaxed);
		atomic_store_explicit(&s->since_ns, 0, memory_order_relaxed);
		return;
	}
	/* A plain load and store, not an RMW: threads racing here may lose a
	 * count, which only shifts when the next sweep happens. */
	unsigned n = atomic_load_explicit(&s->polls, memory_order_relaxed) + 1;
	atomic_store_explicit(&s->polls, n, memory_order_relaxed);
	if (n & 63)
		return;
	shmring__stall_look(r, s); /* out of line: once in 64 polls */
}
/* After ec_block's rc at a wait of that kind: one of the two above. */
static inline void ring_sweep_after_wait(struct shmring *r, int rc, const struct waiter *w,
                                         enum ring_stall_kind kind, uint64_t at)
{
	if (rc == -EAGAIN)
		ring_sweep_if_stalled(r, kind, at);
	else
		ring_sweep_after_block(r, rc, w);
}

#endif /* SHMRING_ATTACH_H */
