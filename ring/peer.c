/*
 * peer.c - shmring_wait_peer: waiting until another attachment holds a role.
 *
 * Arrivals are counted in the census (attach.c shmring__census_add, which
 * wakes both eventcounts); departures and reaps wake them too.  A dead peer
 * counts until a sweep finds it, so the wait sweeps once at entry (whatever
 * the rate limit) and after every sleep slice (at most 50 ms, wait.h).
 */
#include <errno.h>

#include "attach.h"

struct peer_need {
	struct shmring *r;
	unsigned        roles;
};

/* Live attachments with one of need->roles, other than this handle's own. */
static bool peer_present(const struct peer_need *need, uint64_t c)
{
	unsigned own = atomic_load_explicit(&need->r->roles, memory_order_acquire);
	if ((need->roles & SHMRING_PRODUCER) &&
	    CENSUS_PRODUCERS(c) > ((own & SHMRING_PRODUCER) ? 1u : 0u))
		return true;
	return (need->roles & SHMRING_CONSUMER) &&
	       CENSUS_CONSUMERS(c) > ((own & SHMRING_CONSUMER) ? 1u : 0u);
}

static bool peer_ready(const void *arg)
{
	const struct peer_need *need = arg;
	struct ring_header *hdr = need->r->hdr;
	/* seq_cst: the W2 re-check of the eventcount protocol (eventcount.c) */
	return atomic_load_explicit(&hdr->closed, memory_order_seq_cst) ||
	       peer_present(need, atomic_load_explicit(&hdr->census, memory_order_seq_cst));
}

int shmring_wait_peer(struct shmring *ring, unsigned roles, int64_t timeout_ns)
{
	if (!ring || !roles || (roles & ~(SHMRING_PRODUCER | SHMRING_CONSUMER)))
		return -EINVAL;
	struct peer_need need = { ring, roles };
	struct ring_header *hdr = ring->hdr;
	/* Producers' arrivals wake consumers' sleepers and vice versa; both
	 * eventcounts are woken on every census change, so either will do. */
	struct eventcount *ec = (roles & SHMRING_PRODUCER) ? &hdr->not_empty : &hdr->not_full;
	struct waiter w;
	ring_waiter_init_unfenced(ring, &w, timeout_ns);
	w.spin = 0; /* a peer arrives in milliseconds, not nanoseconds */
	shmring__reap(ring); /* the dead are not peers */
	for (;;) {
		if (atomic_load_explicit(&hdr->closed, memory_order_acquire))
			return -EPIPE;
		if (peer_present(&need, atomic_load_explicit(&hdr->census, memory_order_acquire)))
			return 0;
		int rc = shmring__ec_block(ec, peer_ready, &need, &w);
		ring_sweep_after_block(ring, rc, &w); /* (rate-limited) */
		if (rc)
			return rc;
	}
}
