/*
 * state.c - closing a ring, and looking at it: info, next_len, strerror.
 */
#include <errno.h>
#include <string.h>

#include "attach.h"
#include "slot.h"
#include "bcast.h" /* issue 13 hooks */
#include "redeliver.h"

int shmring_close(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	struct ring_header *hdr = ring->hdr;
	/* seq_cst RMW: after it no producer CAS can succeed (they expect the
	 * bit clear), and every later readable()/room_ready() sees the bit. */
	atomic_fetch_or_explicit(&hdr->prod_head, RING_CLOSED, memory_order_seq_cst);
	atomic_store_explicit(&hdr->closed, 1, memory_order_seq_cst);
	ec_notify(ring, &hdr->not_empty);
	ec_notify(ring, &hdr->not_full);
	return 0;
}

/* Read-only: skip records at the head are looked past, never taken (taking
 * needs an op record, and a consumer that died holding one must be
 * recoverable). */
ssize_t shmring_next_len(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	if (ring_is_bcast(ring)) /* issue 13: this subscriber's next record */
		return shmring__bcast_next_len(ring);
	struct ring_header *hdr = ring->hdr;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_acquire);
		ssize_t rc = -EAGAIN;
		struct slot_walk w = slot_walk_from(ring, t, UINT64_MAX, SLOT_COMMITTED,
		                                    memory_order_acquire);
		struct record rec;
		while (slot_walk_look(&w, &rec)) {
			if (!rec.skip) {
				rc = (ssize_t)rec.len;
				break;
			}
			slot_walk_step(&w, &rec);
		}
		if (w.corrupt)
			rc = -EBADMSG;
		uint64_t p = w.pos;
		uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
		uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
		if (atomic_load_explicit(&hdr->cons_head, memory_order_acquire) != t)
			continue; /* a consumer moved meanwhile: look again */
		if (rc != -EAGAIN)
			return rc;
		bool ended = (h & RING_CLOSED) || ring_eof(ring, census);
		if (ended && ring->redeliver && shmring__redeliver_holds_open(ring))
			ended = false; /* redeliver hook */
		return ((h & RING_POS_MASK) == p && ended) ? -EPIPE : -EAGAIN;
	}
	return -EAGAIN;
}

void shmring_set_spin(struct shmring *ring, unsigned iterations)
{
	if (ring)
		ring->spin = iterations;
}

/* A snapshot walk: committed records from cons_head, released ones from
 * free_tail.  Bounded by the ring's size whatever the shared words say. */
int shmring_info(const struct shmring *ring, struct shmring_info *info)
{
	if (!ring || !info)
		return -EINVAL;
	const struct ring_header *hdr = ring->hdr;
	memset(info, 0, sizeof(*info));
	info->capacity = ring->capacity;
	info->max_record = ring->max_record;
	info->named = ring->named;
	info->persistent = ring->persistent;
	info->max_attach = ring->nattach;
	info->delivery = (ring->mode & RING_HDR_BROADCAST ? SHMRING_BROADCAST : 0u) |
	                 (ring->mode & RING_HDR_OVERWRITE ? SHMRING_OVERWRITE : 0u) |
	                 (ring->redeliver ? SHMRING_REDELIVER : 0u) |
	                 (ring->fenced ? SHMRING_LIGHT_PUBLISH : 0u); /* fence.h */
	uint64_t f = atomic_load_explicit(&hdr->free_tail, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_acquire);
	if (ring_is_bcast(ring)) /* issue 13: records = what is still in the ring */
		f = t = bcast_tail(ring);
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
	info->closed = (h & RING_CLOSED) != 0;
	h &= RING_POS_MASK;

	struct record rec;
	struct slot_walk w = slot_walk_from(ring, f, t, SLOT_RELEASED, memory_order_acquire);
	while (slot_walk_look(&w, &rec))
		slot_walk_step(&w, &rec);
	f = w.pos;
	w = slot_walk_from(ring, t, h, SLOT_COMMITTED, memory_order_acquire);
	while (slot_walk_look(&w, &rec)) {
		if (!rec.skip) {
			info->records++;
			info->bytes += rec.len;
		}
		slot_walk_step(&w, &rec);
	}
	uint64_t used = h >= f ? h - f : 0;
	info->used = (size_t)((used > ring->nslots ? ring->nslots : used) << RING_SLOT_SHIFT);
	uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
	info->producers = CENSUS_PRODUCERS(census);
	info->consumers = CENSUS_CONSUMERS(census);
	info->eof = ring_eof(ring, census);
	info->unfinished = shmring__join_unfinished(ring);
	info->recovered_claims = atomic_load_explicit(&hdr->recovered_claims, memory_order_relaxed);
	info->lost_records = atomic_load_explicit(&hdr->lost_records, memory_order_relaxed);
	info->lost_tasks = atomic_load_explicit(&hdr->lost_tasks, memory_order_relaxed);
	info->futex_waits = atomic_load_explicit(&hdr->futex_waits, memory_order_relaxed);
	info->futex_wakes = atomic_load_explicit(&hdr->futex_wakes, memory_order_relaxed);
	info->dropped = atomic_load_explicit(&hdr->bcast.dropped, memory_order_relaxed);
	info->overwritten = atomic_load_explicit(&hdr->bcast.overwritten, memory_order_relaxed);
	shmring__redeliver_info(ring, info); /* redeliver hook */
	return 0;
}

const char *shmring_strerror(int err)
{
	switch (err) {
	case 0:             return "success";
	case -EINVAL:       return "invalid argument";
	case -ENAMETOOLONG: return "ring name too long";
	case -EEXIST:       return "a ring of that name already exists";
	case -ENOENT:       return "no ring of that name";
	case -EMSGSIZE:     return "record larger than the ring's maximum or the caller's buffer";
	case -EAGAIN:       return "would have to wait (ring full or empty)";
	case -ETIMEDOUT:    return "timed out";
	case -EPIPE:        return "ring closed, or end of stream (get) / no consumer left (put)";
	case -ERANGE:       return "count would go below zero (task_done, latch)";
	case -EUSERS:       return "attachment table full";
	case -ENOBUFS:      return "too many operations in flight on this handle";
	case -EPROTO:       return "not a shmring file";
	case -EPROTONOSUPPORT:
		return "ring of another layout version (made by an older or newer shmring library)";
	case -EBADMSG:      return "corrupt shmring file or record metadata";
	case -EXDEV:        return "ring made in another PID namespace (liveness cannot be tracked)";
	case -EBUSY:        return "busy: in use by another process or handle";
	case -ENOTEMPTY:    return "records are waiting in the ring";
	case -EOVERFLOW:    return "records were lost before this one (overwritten)";
	default:            return err < 0 ? strerror(-err) : "not an error code";
	}
}
