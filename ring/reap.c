/*
 * reap.c - sweeping the attachment table for the dead (docs/design.md
 * section 5): a dead entry's half-done operations are finished (recover.c),
 * its roles leave the census, and the entry is freed.
 */
#include "attach.h"
#include "liveness.h"

#define REAP_INTERVAL_NS 50000000ull /* 50 ms between liveness sweeps */

int shmring__reap(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	int reaped = 0;
	for (int i = 0; i < (int)r->nattach; i++) {
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
			 * it died at once */
			if (mono_ns() - atomic_load_explicit(&e->since_ns, memory_order_relaxed) <
			    PENDING_TIMEOUT_NS)
				continue;
		} else if (shmring__id_alive(id)) {
			continue;
		}
		/* The CAS makes one reaper, known by its id, the owner. */
		if (!atomic_compare_exchange_strong_explicit(&e->id, &id,
		                                             shmring__self_id() | ATTACH_REAPING_TAG,
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			continue;
		/* Finish what it left half done, then let it go.  If a claim of
		 * a live process still covers part of it, a later sweep retries:
		 * leave the entry marked with no reaper. */
		if (!shmring__recover_entry(r, i)) {
			atomic_store_explicit(&e->id, ATTACH_REAPING_TAG, memory_order_release);
			continue;
		}
		/* exchange: the roles are taken off the census exactly once */
		unsigned roles = atomic_exchange_explicit(&e->roles, 0, memory_order_acq_rel);
		census_sub(hdr, roles);
		atomic_store_explicit(&e->id, 0, memory_order_release);
		reaped++;
	}
	if (reaped)
		wake_everyone(r);
	return reaped;
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
