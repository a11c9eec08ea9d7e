/*
 * reap.c - sweeping the attachment table for the dead (docs/design.md
 * section 5): a dead entry's half-done operations are finished (recover.c),
 * its roles leave the census, and the entry is freed.
 */
#include "attach.h"
#include "bcast.h" /* a broadcast producer's look */
#include "liveness.h"
#include "redeliver.h" /* a sweep sets its counts right */

#include <string.h>

#define REAP_INTERVAL_NS 50000000ull /* 50 ms between liveness sweeps */

/* The work one sweep may spend on recoveries (live-cover looks, slots
 * walked, table entries and op records read; recover.c counts them) before
 * it leaves the dead entries it has not taken to the next sweep: a few
 * walks of the ring.  At least one recovery per sweep, so it always makes
 * progress.  Bounded by the ring's size whatever a forged table holds
 * (docs/threat-model.md, "Bounds on loops"; issue 11). */
#define ID_LOOK_WORK 256 /* the cost of one liveness look (a /proc read) */

static uint64_t sweep_budget(const struct shmring *r)
{
	return 64 * (uint64_t)r->nslots + 4 * (ID_LOOK_WORK + 64) * (uint64_t)r->nattach;
}

bool shmring__sweep_id_alive(struct shmring__sweep *sw, int j, uint64_t id)
{
	if (sw->ids && sw->ids[j] == id)
		return sw->alive[j];
	bool alive = shmring__id_alive(id);
	sw->work += ID_LOOK_WORK;
	if (sw->ids) {
		sw->ids[j] = id;
		sw->alive[j] = alive;
	}
	return alive;
}

int shmring__reap(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	int reaped = 0;
	bool tried = false;
	uint64_t self, budget = sweep_budget(r);
	if (shmring__self_id(&self) != 0)
		return 0; /* a reaper must be known by its id (takeover below) */
	/* The handle's cache, if no other thread's sweep holds it (without
	 * it, every look asks /proc): a sweep calls no allocator (a recovery
	 * maps its snapshot: recover.c; handle.h says why). */
	bool cached = r->sweep_ids &&
	              !atomic_exchange_explicit(&r->sweep_busy, true, memory_order_acquire);
	struct shmring__sweep sw = { .ids = cached ? r->sweep_ids : NULL,
	                             .alive = cached ? (unsigned char *)(r->sweep_ids + r->nattach)
	                                             : NULL };
	if (cached) /* id 0 (no entry) is never looked up: nothing cached */
		memset(sw.ids, 0, r->nattach * sizeof(uint64_t));
	/* From where the last sweep stopped, so that entries a budget leaves
	 * (or whose recovery waits on the living) do not keep the ones after
	 * them waiting. */
	unsigned from = r->nattach ? atomic_load_explicit(&r->reap_from, memory_order_relaxed) % r->nattach : 0;
	for (unsigned n = 0; n < r->nattach; n++) {
		int i = (int)((from + n) % r->nattach);
		struct attach_entry *e = ring_attach(r, i);
		uint64_t id = atomic_load_explicit(&e->id, memory_order_acquire);
		if (id == 0)
			continue;
		if (id & ATTACH_REAPING_TAG) {
			/* Being reaped.  If the reaper died too (or a recovery was
			 * left to be retried: no reaper), take over: recovery is
			 * safe to redo. */
			if ((id & ATTACH_ID_MASK) && shmring__id_alive(id & ATTACH_ID_MASK))
				continue;
		} else if (id & ATTACH_PENDING_TAG) {
			/* a child that never took its entry over: fork failed, or
			 * it died at once.  since_ns 0: the parent has just taken
			 * the entry and not stamped it yet (every entry is freed
			 * with since_ns 0: attach.h attach_entry_free).  Start the clock
			 * here instead of reading 0 (or, before entries were freed
			 * so, a stamp of the entry's last pending use) as "long
			 * timed out": a sweep in that window reaped the fresh entry
			 * while its parent went on to count the child's roles into
			 * a free entry, which no sweep ever takes off the census
			 * (a 10-minute stress_procs --kill failed so once in ~25 000
			 * kills: a producer left counted, end of stream never came). */
			uint64_t since = atomic_load_explicit(&e->since_ns, memory_order_relaxed);
			if (since == 0) {
				atomic_compare_exchange_strong_explicit(&e->since_ns, &since, mono_ns(),
				                                        memory_order_relaxed,
				                                        memory_order_relaxed);
				continue;
			}
			if (mono_ns() - since < PENDING_TIMEOUT_NS)
				continue;
		} else if (shmring__sweep_id_alive(&sw, i, id)) {
			continue;
		}
		if (tried && sw.work > budget) {
			/* the rest is the next sweep's, from here */
			atomic_store_explicit(&r->reap_from, (unsigned)i, memory_order_relaxed);
			break;
		}
		/* The CAS makes one reaper, known by its id, the owner. */
		if (!atomic_compare_exchange_strong_explicit(&e->id, &id,
		                                             self | ATTACH_REAPING_TAG,
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			continue;
		/* Finish what it left half done, then let it go.  If a claim of
		 * a live process still covers part of it, a later sweep retries:
		 * leave the entry marked with no reaper. */
		tried = true;
		if (!shmring__recover_entry(r, i, &sw)) {
			atomic_store_explicit(&e->id, ATTACH_REAPING_TAG, memory_order_release);
			continue;
		}
		/* exchange: the roles are taken off the census exactly once */
		unsigned roles = atomic_exchange_explicit(&e->roles, 0, memory_order_acq_rel);
		census_sub(hdr, roles);
		attach_entry_free(e);
		reaped++;
	}
	if (r->redeliver) /* redeliver hook: counts a killed process left off */
		shmring__redeliver_recount(r);
	if (cached)
		atomic_store_explicit(&r->sweep_busy, false, memory_order_release);
	if (reaped)
		wake_everyone(r);
	return reaped;
}

#define SLOW_CALLER_NS 5000000ull /* calls this far apart: look on every one */
#define PEER_LOOK_NS 1000000ull   /* the other side's index: read at most this often */
#define BCAST_LOOK_NS 20000000ull /* a broadcast put's scan of the cursors */

static uint64_t coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void shmring__liveness_look(struct shmring *r, unsigned role)
{
	uint64_t now = coarse_ns();
	uint64_t prev = atomic_load_explicit(&r->tick_ns, memory_order_relaxed);
	atomic_store_explicit(&r->tick_ns, now, memory_order_relaxed);
	/* (A look every 64 calls while they came fast, tried in the thirteenth
	 * session, saved 9.6 of a put + get pair's instructions, and made a
	 * caller that slows down after a burst look only after 64 slow calls,
	 * or one every 3 ms every 192 ms: not kept.) */
	atomic_store_explicit(&r->tick_left, now - prev > SLOW_CALLER_NS ? 1 : LIVENESS_TICK,
	                      memory_order_relaxed);
	/* Time this handle did not watch, for both watches timing a
	 * standstill: a look in either role shows the process ran (attach.h
	 * ring_stood_still). */
	uint64_t gap = ring_look_gap(prev, now);
	for (int i = 0; i < 2; i++) {
		struct ring_peer_watch *w = &r->peer_watch[i];
		if (gap > atomic_load_explicit(&w->blind_ns, memory_order_relaxed))
			atomic_store_explicit(&w->blind_ns, gap, memory_order_relaxed);
	}
	/* The other side's index (attach.h ring_liveness_tick): moving, a
	 * live peer of that role is at work and nobody needs a sweep.  Read
	 * at most every PEER_LOOK_NS (in effect every tick or two of the
	 * coarse clock, 1-10 ms), however often the calls look: it is the line the
	 * other side writes on every call, and a caller polling an empty (or
	 * full) ring looks every 16 polls, about once a hop in a spinning
	 * ping-pong.  Read at every look, it was taken from the producer
	 * (consumer) between its records, one more line transfer on its next
	 * claim (take): the spinning ping-pong's one-way latency was 1.6x
	 * what it is with this (docs/perf.md, "sixth session").  A
	 * standstill is timed in tens of milliseconds; a millisecond's delay
	 * in seeing a move changes nothing.
	 * A broadcast ring's put: nothing is taken, cons_head never moves,
	 * and a put swept every 50 ms while records flowed (getpid, /proc for
	 * every attachment: tests/test_nosyscall_poll.c, broadcast).  The
	 * subscribers' cursors move when they read: their sum, by a scan of
	 * the table (16 KiB at the default 256 entries), so at most every
	 * BCAST_LOOK_NS.  Not the frontier: producers move it themselves
	 * while lossy subscribers are dead.
	 * Relaxed: coherence lets the look see a move sooner or later; a
	 * stale value only shifts a sweep.  Plain loads and stores on the
	 * watch: racing threads of one handle only shift a sweep too. */
	bool consumer = role == SHMRING_CONSUMER;
	bool bcast_put = !consumer && ring_is_bcast(r);
	struct ring_peer_watch *pw = &r->peer_watch[consumer];
	uint64_t read = atomic_load_explicit(&pw->read_ns, memory_order_relaxed);
	if (read <= now && now - read < (bcast_put ? BCAST_LOOK_NS : PEER_LOOK_NS))
		return;
	atomic_store_explicit(&pw->read_ns, now, memory_order_relaxed);
	uint64_t at = bcast_put ? shmring__bcast_cursor_sum(r)
	                        : atomic_load_explicit(consumer ? &r->hdr->prod_head
	                                                        : &r->hdr->cons_head,
	                                               memory_order_relaxed);
	if (at != atomic_load_explicit(&pw->at, memory_order_relaxed)) {
		atomic_store_explicit(&pw->at, at, memory_order_relaxed);
		atomic_store_explicit(&pw->since_ns, 0, memory_order_relaxed);
		return;
	}
	/* The standstill is timed from the first look that found the index
	 * unchanged, not from the look that saw it move: a gap between two
	 * looks may be our own descheduling, during which the peer could not
	 * move for want of us (a full ring behind a consumer, an empty one
	 * before a producer).  Two looks 50 ms apart that both find it
	 * unchanged, the first after a look that did, mean the peer had work
	 * and did none (tests/test_nosyscall_poll.c under load). */
	if (!ring_stood_still(&pw->since_ns, &pw->blind_ns, now))
		return;
	/* The coarse clock lags the precise one reap_ns is set from by up to a
	 * tick: a last sweep "in the future" is a recent one. */
	uint64_t last = atomic_load_explicit(&r->hdr->reap_ns, memory_order_relaxed);
	if (last <= now && now - last >= REAP_INTERVAL_NS)
		shmring__maybe_reap(r);
}

/* attach.h ring_sweep_if_stalled's look, every 64th poll at one position:
 * the clock, the blind time since the last look, and a sweep once the ring
 * has stood still for RING_STALL_NS. */
void shmring__stall_look(struct shmring *r, struct ring_stall *s)
{
	uint64_t now = mono_ns();
	uint64_t gap = ring_look_gap(atomic_load_explicit(&s->look_ns, memory_order_relaxed), now);
	atomic_store_explicit(&s->look_ns, now, memory_order_relaxed);
	if (gap > atomic_load_explicit(&s->blind_ns, memory_order_relaxed))
		atomic_store_explicit(&s->blind_ns, gap, memory_order_relaxed);
	if (ring_stood_still(&s->since_ns, &s->blind_ns, now))
		shmring__maybe_reap(r);
}

/* Sweep at most every REAP_INTERVAL_NS per ring, whoever calls. */
void shmring__maybe_reap(struct shmring *r)
{
	uint64_t now = mono_ns();
	uint64_t last = atomic_load_explicit(&r->hdr->reap_ns, memory_order_relaxed);
	if (now - last < REAP_INTERVAL_NS && last <= now)
		return;
	if (atomic_compare_exchange_strong_explicit(&r->hdr->reap_ns, &last, now,
	                                            memory_order_relaxed, memory_order_relaxed))
		shmring__reap(r);
}
