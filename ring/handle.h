/*
 * handle.h - one process's handle on a ring, and the library's internal
 * interfaces between its source files (private).
 */
#ifndef SHMRING_HANDLE_H
#define SHMRING_HANDLE_H

#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include "layout.h"

/* Geometry is copied out of the shared header once, after validation, and
 * never re-read from shared memory: a peer cannot change our bounds. */
struct shmring {
	struct ring_header *hdr;
	struct slot_meta   *meta;
	unsigned char      *data;      /* first of the two data mappings */
	uint64_t            nslots;
	uint64_t            mask;      /* nslots - 1 */
	unsigned            quarter_shift; /* log2(nslots) - 2 */
	size_t              capacity;
	size_t              max_record;
	void               *map;
	size_t              map_len;
	int                 fd;
	bool                named;
	unsigned            spin;
	/* Producer-side hint: a free_tail value seen earlier (only ever behind
	 * the real one, since free_tail only grows).  Release/acquire so that a
	 * thread using another thread's hint inherits its happens-before. */
	_Atomic uint64_t    cached_free;
	struct ring_eventfd *evfd;    /* shmring_event_fd's watcher, or NULL */

	/* attach.c: this handle's entry in the ring's attachment table. */
	/* -1: none (yet, or in a fresh child).  Atomic: set under the registry
	 * lock, read without it by operations of other threads (who first see
	 * their role with acquire, set after the slot with release). */
	_Atomic int         attach_slot;
	pid_t               attach_pid;   /* the process that owns the entry */
	_Atomic unsigned    roles;        /* roles held in this process */
	unsigned            declared;     /* roles declared: inherited by fork */
	int                 fork_slot;    /* entry claimed for a child being forked */
	uint64_t            fork_id;      /* its pending id (parent id | ATTACH_PENDING_TAG) */
	_Atomic unsigned    eagain_count; /* rate-limits sweeps from -EAGAIN */
	struct shmring     *reg_next, *reg_prev;
	uint64_t            serial;       /* unique per handle in this process */
};

/* claim.c */
int  claim_acquire(struct shmring *r, struct claim_rec **out);
void claim_release(struct shmring *r, struct claim_rec *c);
/* For an operation that ends within the call (put, get, batches): the
 * calling thread's own record for this handle, kept between calls (in a
 * per-thread cache, claim.c); give it back with claim_done (which only
 * clears it). */
#define CACHE_WAYS 4
struct cached_claim {
	uint64_t serial;     /* 0: empty */
	int      slot;
	unsigned fork_gen;
	unsigned idx;
};
/* initial-exec: a plain %fs-relative access, also from the shared library
 * (the cache is 100 bytes, well within the static TLS glibc sets aside for
 * libraries loaded later). */
extern __thread struct cached_claim claim_cache[CACHE_WAYS]
	__attribute__((tls_model("initial-exec")));
extern _Atomic unsigned ring_fork_gen; /* attach.c: + 1 in every fork child */
int claim_mine_new(struct shmring *r, struct claim_rec **out);
static inline int claim_mine(struct shmring *r, struct claim_rec **out)
{
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	unsigned gen = atomic_load_explicit(&ring_fork_gen, memory_order_relaxed);
	for (int i = 0; i < CACHE_WAYS; i++) {
		const struct cached_claim *cc = &claim_cache[i];
		if (cc->serial == r->serial && cc->slot == slot && cc->fork_gen == gen) {
			*out = &r->hdr->claims[slot][cc->idx];
			return 0;
		}
	}
	return claim_mine_new(r, out);
}
static inline void claim_done(struct claim_rec *c)
{
	atomic_store_explicit(&c->word, 0, memory_order_release);
}
/* attach.c: run f(handle) for the live handle with this serial, under the
 * registry lock; false if there is none. */
bool ring_with_handle(uint64_t serial, void (*f)(struct shmring *r, void *arg), void *arg);
void claim_reset_entry(struct ring_header *hdr, int slot);
/* Announce before the claiming CAS (which is a release, so a sweep that
 * sees the CAS's effect sees the announcement). */
static inline void claim_announce(struct claim_rec *c, uint64_t pos, unsigned kind,
                                  uint64_t slots, uint64_t records)
{
	atomic_store_explicit(&c->extent, CLAIM_EXTENT(slots, records), memory_order_relaxed);
	atomic_store_explicit(&c->word, CLAIM_WORD(pos, kind), memory_order_release);
}
static inline void claim_clear(struct claim_rec *c)
{
	atomic_store_explicit(&c->word, 0, memory_order_release);
}
/* The claim's records are now counted in join: a sweep that finds them
 * unpublished forgives them. */
static inline void claim_counted(struct claim_rec *c, uint64_t pos)
{
	atomic_store_explicit(&c->word, CLAIM_WORD(pos, CLAIM_COUNTED), memory_order_release);
}
/* Join accounting for a consumer's attachment, once join is in use. */
static inline void count_got(struct shmring *r, uint64_t n)
{
	if (__builtin_expect(atomic_load_explicit(&r->hdr->census, memory_order_relaxed) & CENSUS_JOIN, 0) &&
	    r->attach_slot >= 0)
		atomic_fetch_add_explicit(&r->hdr->attach[r->attach_slot].got, n, memory_order_relaxed);
}

/* recover.c: finish a dead attachment's claims (from a sweep, or detach);
 * false if part must wait for a live process (retry later). */
bool ring_recover_entry(struct shmring *r, int slot);
/* attach.c: is the process behind an attachment id alive? */
bool ring_id_alive(uint64_t id);

/* attach.c */
void ring_registry_add(struct shmring *r);
void ring_registry_remove(struct shmring *r);
int  ring_take_role(struct shmring *r, unsigned roles);
int  ring_reap(struct shmring *r);
void ring_maybe_reap(struct shmring *r);
/* After a wait: sweep for the dead (rate-limited; on every 64th -EAGAIN
 * for callers that never sleep), so a dead peer is noticed by anyone who
 * waits on it, sleeping or polling. */
static inline void ring_sweep_after_wait(struct shmring *r, int rc)
{
	if (rc != -EAGAIN) {
		ring_maybe_reap(r);
		return;
	}
	/* A plain load and store, not an RMW: threads racing here may lose a
	 * count, which only shifts when the next sweep happens. */
	unsigned n = atomic_load_explicit(&r->eagain_count, memory_order_relaxed) + 1;
	atomic_store_explicit(&r->eagain_count, n, memory_order_relaxed);
	if ((n & 63) == 0)
		ring_maybe_reap(r);
}
/* Take the role on first use: one relaxed load on the fast path. */
static inline int ring_need_role(struct shmring *r, unsigned role)
{
	if (__builtin_expect(atomic_load_explicit(&r->roles, memory_order_acquire) & role, 1))
		return 0;
	return ring_take_role(r, role);
}
/* The start of every put or get that ends within the call: take the role
 * on first use, then this thread's claim record for the handle. */
static inline int ring_enter(struct shmring *r, unsigned role, struct claim_rec **c)
{
	int rc = ring_need_role(r, role);
	return rc ? rc : claim_mine(r, c);
}
/* End of stream: producers came and all went.  Broken pipe: consumers did. */
static inline bool census_eof(uint64_t c)
{
	return (c & CENSUS_EVER_PRODUCER) && CENSUS_PRODUCERS(c) == 0;
}
static inline bool census_broken(uint64_t c)
{
	return (c & CENSUS_EVER_CONSUMER) && CENSUS_CONSUMERS(c) == 0;
}

/* eventfd.c: stop the watcher and close the eventfd (from detach). */
void ring_eventfd_destroy(struct shmring *r);

#define RING_DEFAULT_SPIN 2000u

/* Neighbouring slots' meta entries are spread a quarter of the array apart
 * (four entries share a cache line): otherwise a consumer releasing record i
 * and the producer publishing record i + 1 would fight over one line. */
static inline struct slot_meta *meta_at(const struct shmring *r, uint64_t pos)
{
	uint64_t s = pos & r->mask;
	return &r->meta[((s & 3) << r->quarter_shift) | (s >> 2)];
}

static inline unsigned char *data_at(const struct shmring *r, uint64_t pos)
{
	return r->data + ((pos & r->mask) << RING_SLOT_SHIFT);
}

/* Ask for a cache line we are about to write, in exclusive state, so that
 * its transfer from the peer's cache overlaps the work before the write
 * (a later locked instruction would otherwise wait for it).  PREFETCHW is a
 * NOP on x86 CPUs without it; elsewhere, the compiler's write prefetch. */
static inline void prefetch_for_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/* deadline.c: an absolute CLOCK_MONOTONIC deadline for a timeout_ns. */
struct deadline {
	bool            forever;
	struct timespec at;
};
void deadline_init(struct deadline *dl, int64_t timeout_ns);
bool deadline_passed(const struct deadline *dl);

/* futex.c: shared (never private) futex operations on the mapping. */
int  futex_wait_until(_Atomic uint32_t *word, uint32_t expected, const struct timespec *abs);
void futex_wake_all(_Atomic uint32_t *word);

/* eventcount.c: sleep until ready() or a deadline; wake sleepers.  Usable
 * on any eventcount in shared memory, with or without a ring around it. */
typedef bool (*ready_fn)(const void *arg);
struct ec_stats {                 /* counters to bump, or NULL */
	_Atomic uint64_t *waits;
	_Atomic uint64_t *wakes;
};
struct waiter {
	int64_t         timeout_ns;
	unsigned        spin;      /* pauses to spin before the first sleep */
	bool            started;   /* deadline computed (lazily: slow path only) */
	bool            spun;      /* spun once already: later waits sleep at once */
	struct deadline dl;
	struct ec_stats stats;
};
static inline void waiter_init(struct waiter *w, int64_t timeout_ns, unsigned spin,
                               struct ec_stats stats)
{
	w->timeout_ns = timeout_ns;
	w->spin = spin;
	w->started = false;
	w->spun = false;
	w->stats = stats;
}
/* After an attempt that would block: 0 = try again, -EAGAIN (timeout 0) or
 * -ETIMEDOUT = give up with that error. */
int  ec_block(struct eventcount *ec, ready_fn ready, const void *arg, struct waiter *w);
/* ec_wake's slow path: w, a read of the word, shows sleepers (N3, N4). */
void ec_wake_sleepers(struct eventcount *ec, uint64_t w, struct ec_stats stats);
/* Wake every sleeper; no system call (nor store) when there are none. */
static inline void ec_wake(struct eventcount *ec, struct ec_stats stats)
{
	uint64_t w = atomic_load_explicit(&ec->word, memory_order_seq_cst); /* N2 */
	if (__builtin_expect(EC_WAITERS(w) != 0, 0))
		ec_wake_sleepers(ec, w, stats);
}
/* The pieces of ec_block, for a caller that sleeps on several eventcounts at
 * once (poll.c): W1 returns the key; W4; the end of the next sleep slice
 * (at most 50 ms from now, at most the deadline). */
uint32_t ec_register(struct eventcount *ec);
void     ec_unregister(struct eventcount *ec, uint32_t key);
void     ec_sleep_until(struct timespec *until, const struct deadline *dl);
/* A ring's own use of the above. */
static inline struct ec_stats ring_stats(struct shmring *r)
{
	return (struct ec_stats){ &r->hdr->futex_waits, &r->hdr->futex_wakes };
}
static inline void ring_waiter_init(struct shmring *r, struct waiter *w, int64_t timeout_ns)
{
	waiter_init(w, timeout_ns, r->spin, ring_stats(r));
}
static inline void ec_notify(struct shmring *r, struct eventcount *ec)
{
	ec_wake(ec, ring_stats(r));
}

/* space.c: the producer side's room accounting. */
uint64_t ring_reclaim(struct shmring *r);
/* Would a record of that many slots fit now (or is the ring closed)?  The
 * waiter's re-check for producers; reclaims as it looks. */
bool     ring_has_room(struct shmring *r, uint64_t slots);
int      ring_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken,
                    uint64_t *pos, int64_t timeout_ns, struct claim_rec *c);

/* Publishing.  Fill a claimed record's meta entry (before publication, so
 * relaxed: the seq store that publishes it is a release). */
static inline void ring_write_meta(struct shmring *r, uint64_t pos, uint32_t len, uint16_t flags)
{
	struct slot_meta *m = meta_at(r, pos);
	atomic_store_explicit(&m->len, len, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	atomic_store_explicit(&m->flags, flags, memory_order_relaxed);
}
/* Publish the record at pos.  seq_cst, not just release: it is N1 of the
 * eventcount protocol (eventcount.c), ordered before the read of waiters. */
static inline void ring_publish(struct shmring *r, uint64_t pos)
{
	atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_COMMITTED),
	                      memory_order_seq_cst);
}
static inline void ring_notify_consumers(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_empty);
}
/* Unfinished tasks += n, before the records are published (relaxed: the
 * publishing release store orders it before any consumer's task_done). */
static inline void ring_count_tasks(struct shmring *r, uint64_t n)
{
	atomic_fetch_add_explicit(&r->hdr->join.count, (int64_t)n, memory_order_relaxed);
}
/* publish.c */
void ring_publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n);

/* take.c: the consumer side. */
struct take {
	uint64_t pos;
	uint32_t len;  /* UINT32_MAX: a skip record (ring_take_run only) */
};
ssize_t ring_take(struct shmring *r, size_t cap, struct take *out, int64_t timeout_ns,
                  struct claim_rec *c);
/* Is a record ready at cons_head (or is the ring closed)?  arg: the ring.
 * The waiter's re-check for consumers. */
bool    ring_readable(const void *arg);
ssize_t ring_take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out,
                      size_t *nout, uint64_t *end, int64_t timeout_ns, struct claim_rec *c);
/* Release a taken record: its slots may be reused.  seq_cst: this store and
 * the read of not_full's waiters in ring_notify_producers are C1/C2 of the
 * room Dekker pair (space.c). */
static inline void ring_release(struct shmring *r, uint64_t pos)
{
	atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_RELEASED),
	                      memory_order_seq_cst);
}
static inline void ring_notify_producers(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_full);
}

/* name.c */
int ring_shm_name(const char *name, char out[SHMRING_NAME_MAX + 2]);

#endif /* SHMRING_HANDLE_H */
