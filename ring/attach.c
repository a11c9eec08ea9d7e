/*
 * attach.c - who is attached: entries in the shared attachment table, roles,
 * the census, and fork.
 *
 * A handle gets an entry in the ring's table when it first takes a role
 * (shmring_declare, or its first put or get).  The entry's id is the pid and
 * the process start time (liveness.c), so liveness survives pid reuse.  The
 * census word counts live producers and consumers; end of stream and broken
 * pipe are read off it with one load.  Dead entries are reaped by reap.c.
 *
 * Entries change under the registry lock (registry.c), which pthread_atfork
 * holds across fork().  In the child, every handle loses its parent's entry;
 * a handle with declared roles registers the child at once, the others when
 * they next take a role.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "attach.h"
#include "liveness.h"


static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

void shmring__census_add(struct shmring *r, unsigned roles)
{
	struct ring_header *hdr = r->hdr;
	uint64_t delta = census_delta(roles);
	if (!delta)
		return;
	uint64_t ever = r->persistent ? 0 :
	                ((roles & SHMRING_PRODUCER) ? CENSUS_EVER_PRODUCER : 0) |
	                ((roles & SHMRING_CONSUMER) ? CENSUS_EVER_CONSUMER : 0);
	/* One CAS: the count, the ever bits and the arrival generation change
	 * together, so a reader never sees "ever, and none left" while a first
	 * producer (consumer) joins, nor a new count with an old generation.
	 * seq_cst: a joining producer or consumer is counted before its first
	 * put/get can be seen, and before anyone decides EOF/EPIPE. */
	uint64_t c = atomic_load_explicit(&hdr->census, memory_order_relaxed), n;
	do {
		uint64_t pgen = CENSUS_PGEN(c) + ((roles & SHMRING_PRODUCER) ? 1 : 0);
		uint64_t cgen = CENSUS_CGEN(c) + ((roles & SHMRING_CONSUMER) ? 1 : 0);
		n = (c & ~((CENSUS_GEN_MASK << CENSUS_PGEN_SHIFT) | (CENSUS_GEN_MASK << CENSUS_CGEN_SHIFT)));
		n = ((n + delta) | ever) |
		    ((pgen & CENSUS_GEN_MASK) << CENSUS_PGEN_SHIFT) |
		    ((cgen & CENSUS_GEN_MASK) << CENSUS_CGEN_SHIFT);
	} while (!atomic_compare_exchange_weak_explicit(&hdr->census, &c, n, memory_order_seq_cst,
	                                                memory_order_relaxed));
	/* shmring_wait_peer sleepers (and nobody else) care about an arrival */
	wake_everyone(r);
}

void shmring__census_look(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	/* The census first, the heads after: any producer arriving after this
	 * load moves the generation on, whatever the heads then say. */
	uint64_t c = atomic_load_explicit(&hdr->census, memory_order_seq_cst);
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_seq_cst) & RING_POS_MASK;
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_seq_cst);
	r->born_census = c;
	r->fresh_prod = CENSUS_PRODUCERS(c) == 0 && h == t;
	r->fresh_cons = CENSUS_CONSUMERS(c) == 0;
}

/* --- entries ------------------------------------------------------------- */

/* A fresh entry (taken, or converted after fork) starts with no op records
 * in use and no join accounting. */
static void attach_entry_reset(struct shmring *r, int slot)
{
	/* (not the records' puts, nor op_high: join sums every put ever made,
	 * the gone owner's included; tests/test_join.c) */
	for (int i = 0; i < OPREC_PER_ENTRY; i++) {
		atomic_store_explicit(&ring_op_rec(r, slot, i)->word, 0, memory_order_relaxed);
		atomic_store_explicit(&ring_op_rec(r, slot, i)->extent, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&ring_attach(r, slot)->op_busy, 0, memory_order_relaxed);
	atomic_store_explicit(&ring_attach(r, slot)->got, 0, memory_order_relaxed);
	atomic_store_explicit(&ring_attach(r, slot)->done, 0, memory_order_relaxed);
}

/* One pass over the table: CAS a free entry's id from 0 to id; its index,
 * or -EUSERS.  fast: skip entries that a plain load shows taken. */
static int attach_entry_cas(struct shmring *r, uint64_t id, bool fast)
{
	for (int i = 0; i < (int)r->nattach; i++) {
		struct attach_entry *e = ring_attach(r, i);
		uint64_t expect = 0;
		if ((!fast || atomic_load_explicit(&e->id, memory_order_relaxed) == 0) &&
		    atomic_compare_exchange_strong_explicit(&e->id, &expect, id,
		                                            memory_order_acq_rel,
		                                            memory_order_relaxed)) {
			attach_entry_reset(r, i);
			return i;
		}
	}
	return -EUSERS;
}

/* Take a free entry for id: its index, or -EUSERS.  With the registry lock
 * held.  The handle's attach_slot is the caller's to set: before_fork takes
 * the child's entry without ever pointing the handle at it (it did, for a
 * moment, and another thread's put or peek in that moment announced its op
 * record in the child's entry: a sweep after the child's exit recovered it
 * from under that live thread; a review found it, 2026-12-06). */
static int attach_entry_take(struct shmring *r, uint64_t id)
{
	int slot = attach_entry_cas(r, id, true);
	if (slot >= 0)
		return slot;
	shmring__reap(r); /* a full table may hold the dead */
	return attach_entry_cas(r, id, false);
}

/* Leave the table: roles end, peers are woken to see EOF/EPIPE.  Only the
 * process that registered an entry removes it.  With the lock held. */
static void attach_entry_leave(struct shmring *r)
{
	if (r->attach_slot < 0 || r->attach_pid != getpid())
		return;
	struct attach_entry *e = ring_attach(r, r->attach_slot);
	/* Spans still reserved or peeked die with the handle: finish them as a
	 * sweep would for a dead process.  Where a live process's claim still
	 * covers one (a take that read a stale cons_head and has yet to lose
	 * its CAS), the recovery is not complete: the entry stays, roles and
	 * all, marked as a sweep leaves it (reap.c: reaping, no reaper), for
	 * the next sweep to finish.  Freed here instead, nothing ever came back
	 * to that record: never released nor redelivered, free_tail stopped at
	 * it and the ring stalled a lap later. */
	if (atomic_load_explicit(&e->op_busy, memory_order_relaxed) &&
	    !shmring__recover_entry(r, r->attach_slot, NULL)) {
		atomic_store_explicit(&e->id, ATTACH_REAPING_TAG, memory_order_release);
		r->attach_slot = -1;
		return;
	}
	unsigned roles = atomic_exchange_explicit(&e->roles, 0, memory_order_seq_cst);
	census_sub(r->hdr, roles);
	attach_entry_free(e);
	r->attach_slot = -1;
	if (roles)
		wake_everyone(r);
}

/* --- fork ---------------------------------------------------------------- */

/* In the parent, before fork: take the child's entry now, so that its roles
 * are counted before fork() returns; the parent may drop its own roles at
 * once (shmring_leave) without the count passing through zero. */
static void before_fork(void)
{
	shmring__registry_lock();
	for (struct shmring *r = shmring__registry_first(); r; r = r->reg_next) {
		r->fork_slot = -1;
		if (!r->declared)
			continue;
		uint64_t self;
		int slot;
		if (shmring__self_id(&self) != 0 ||
		    (slot = attach_entry_take(r, self | ATTACH_PENDING_TAG)) < 0)
			continue;
		struct attach_entry *e = ring_attach(r, slot);
		atomic_store_explicit(&e->since_ns, mono_ns(), memory_order_relaxed);
		atomic_store_explicit(&e->roles, r->declared, memory_order_relaxed);
		shmring__census_add(r, r->declared);
		r->fork_slot = slot;
		r->fork_id = self | ATTACH_PENDING_TAG;
	}
}

static void after_fork_parent(void)
{
	/* The child converts fork_slot; if fork failed, the pending entry
	 * times out and is reaped. */
	shmring__registry_unlock();
}

static void after_fork_child(void)
{
	atomic_fetch_add_explicit(&shmring__fork_gen, 1, memory_order_relaxed);
	uint64_t id;
	bool known = shmring__self_id(&id) == 0; /* else: take_role below retries */
	for (struct shmring *r = shmring__registry_first(); r; r = r->reg_next) {
		r->attach_slot = -1;
		/* the parent's threads' op records (oprec.h op_solo) */
		atomic_store_explicit(&r->op_solo.owner, 0, memory_order_relaxed);
		/* a parent thread's sweep held the cache: not ours */
		atomic_store_explicit(&r->sweep_busy, false, memory_order_relaxed);
		/* a parent thread making an event fd held it: not ours either */
		pthread_mutex_init(&r->ev_lock, NULL);
		atomic_store_explicit(&r->roles, 0, memory_order_relaxed);
		if (r->fork_slot < 0)
			continue;
		if (!known) { /* the pending entry times out; take_role below */
			r->fork_slot = -1;
			continue;
		}
		struct attach_entry *e = ring_attach(r, r->fork_slot);
		/* CAS from the exact pending id: a reaper may have taken the
		 * stale entry meanwhile (REAPING, 0, or someone else's id now). */
		uint64_t parent_id = r->fork_id;
		if (atomic_compare_exchange_strong_explicit(&e->id, &parent_id, id,
		                                            memory_order_acq_rel,
		                                            memory_order_relaxed)) {
			r->attach_slot = r->fork_slot;
			r->attach_pid = (pid_t)(id & ATTACH_PID_MASK);
			atomic_store_explicit(&r->roles, r->declared, memory_order_relaxed);
		}
		r->fork_slot = -1;
	}
	shmring__registry_unlock();
	/* A handle whose pending entry was lost takes its roles again. */
	for (struct shmring *r = shmring__registry_first(); r; r = r->reg_next)
		if (r->declared && r->attach_slot < 0)
			shmring__take_role(r, r->declared);
}

static void atfork_init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* --- handles, roles ------------------------------------------------------ */

void shmring__attach_new(struct shmring *r)
{
	pthread_once(&atfork_once, atfork_init);
	r->attach_slot = -1;
	r->fork_slot = -1;
	uint64_t self;
	(void)shmring__self_id(&self); /* the identity now, while fds are to be had */
	shmring__census_look(r);
	shmring__registry_lock();
	shmring__registry_add(r);
	shmring__registry_unlock();
}

void shmring__attach_end(struct shmring *r)
{
	shmring__registry_lock();
	attach_entry_leave(r);
	shmring__registry_remove(r);
	shmring__registry_unlock();
}

int shmring__take_role(struct shmring *r, unsigned roles)
{
	shmring__registry_lock();
	int rc = 0;
	unsigned have = atomic_load_explicit(&r->roles, memory_order_relaxed);
	if ((have & roles) != roles) {
		uint64_t self;
		if (r->attach_slot < 0 && (rc = shmring__self_id(&self)) == 0) {
			int slot = attach_entry_take(r, self);
			if (slot < 0) {
				rc = slot;
			} else {
				r->attach_slot = slot;
				r->attach_pid = (pid_t)(self & ATTACH_PID_MASK);
			}
		}
		if (rc == 0) {
			struct attach_entry *e = ring_attach(r, r->attach_slot);
			unsigned old = atomic_fetch_or_explicit(&e->roles, roles, memory_order_seq_cst);
			shmring__census_add(r, roles & ~old);
			/* release: pairs with ring_need_role's acquire */
			atomic_store_explicit(&r->roles, have | roles, memory_order_release);
		}
	}
	shmring__registry_unlock();
	return rc;
}

int shmring_declare(struct shmring *ring, unsigned roles)
{
	if (!ring || !roles || (roles & ~(SHMRING_PRODUCER | SHMRING_CONSUMER)))
		return -EINVAL;
	shmring__registry_lock();
	ring->declared |= roles;
	shmring__registry_unlock();
	return shmring__take_role(ring, roles);
}

int shmring_leave(struct shmring *ring, unsigned roles)
{
	if (!ring || !roles || (roles & ~(SHMRING_PRODUCER | SHMRING_CONSUMER)))
		return -EINVAL;
	shmring__registry_lock();
	ring->declared &= ~roles;
	unsigned dropped = 0;
	if (ring->attach_slot >= 0 && ring->attach_pid == getpid()) {
		struct attach_entry *e = ring_attach(ring, ring->attach_slot);
		dropped = atomic_fetch_and_explicit(&e->roles, ~roles, memory_order_seq_cst) & roles;
		census_sub(ring->hdr, dropped);
	}
	atomic_fetch_and_explicit(&ring->roles, ~roles, memory_order_relaxed);
	shmring__registry_unlock();
	if (dropped)
		wake_everyone(ring);
	return 0;
}
