/*
 * state.c - closing a ring, and looking at it: info, next_len, strerror.
 */
#include <errno.h>
#include <string.h>

#include "attach.h"
#include "slot.h"
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
 * needs a claim record, and a consumer that died holding one must be
 * recoverable). */
ssize_t shmring_next_len(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	struct ring_header *hdr = ring->hdr;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_acquire);
		uint64_t p = t;
		ssize_t rc = -EAGAIN;
		for (uint64_t walked = 0; walked < ring->nslots;) {
			struct slot_meta *m = meta_at(ring, p);
			if (atomic_load_explicit(&m->seq, memory_order_acquire) != SLOT_SEQ(p, SLOT_COMMITTED))
				break; /* nothing ready at p */
			uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
			bool skip = atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP;
			if (skip ? len > ring->capacity : len > ring->max_record) {
				rc = -EBADMSG;
				break;
			}
			if (!skip) {
				rc = (ssize_t)len;
				break;
			}
			p += slots_for(len);
			walked += slots_for(len);
		}
		uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
		uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
		if (atomic_load_explicit(&hdr->cons_head, memory_order_acquire) != t)
			continue; /* a consumer moved meanwhile: look again */
		if (rc != -EAGAIN)
			return rc;
		bool ended = (h & RING_CLOSED) || census_eof(census);
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
	uint64_t f = atomic_load_explicit(&hdr->free_tail, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&hdr->cons_head, memory_order_acquire);
	uint64_t h = atomic_load_explicit(&hdr->prod_head, memory_order_acquire);
	info->closed = (h & RING_CLOSED) != 0;
	h &= RING_POS_MASK;

	for (uint64_t p = f, walked = 0; p < t && walked < ring->nslots;) {
		struct slot_meta *m = meta_at(ring, p);
		uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
		if (atomic_load_explicit(&m->seq, memory_order_acquire) != SLOT_SEQ(p, SLOT_RELEASED) ||
		    len > ring->capacity)
			break;
		p += slots_for(len);
		walked += slots_for(len);
		f = p;
	}
	for (uint64_t p = t, walked = 0; p < h && walked < ring->nslots;) {
		struct slot_meta *m = meta_at(ring, p);
		if (atomic_load_explicit(&m->seq, memory_order_acquire) != SLOT_SEQ(p, SLOT_COMMITTED))
			break;
		uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
		if (len > ring->capacity)
			break;
		if (!(atomic_load_explicit(&m->flags, memory_order_relaxed) & SLOT_F_SKIP)) {
			info->records++;
			info->bytes += len;
		}
		p += slots_for(len);
		walked += slots_for(len);
	}
	uint64_t used = h >= f ? h - f : 0;
	info->used = (size_t)((used > ring->nslots ? ring->nslots : used) << RING_SLOT_SHIFT);
	uint64_t census = atomic_load_explicit(&hdr->census, memory_order_acquire);
	info->producers = CENSUS_PRODUCERS(census);
	info->consumers = CENSUS_CONSUMERS(census);
	info->eof = census_eof(census);
	int64_t unfinished = atomic_load_explicit(&hdr->join.count, memory_order_acquire);
	info->unfinished = unfinished > 0 ? (uint64_t)unfinished : 0;
	info->recovered_claims = atomic_load_explicit(&hdr->recovered_claims, memory_order_relaxed);
	info->lost_records = atomic_load_explicit(&hdr->lost_records, memory_order_relaxed);
	info->lost_tasks = atomic_load_explicit(&hdr->lost_tasks, memory_order_relaxed);
	info->futex_waits = atomic_load_explicit(&hdr->futex_waits, memory_order_relaxed);
	info->futex_wakes = atomic_load_explicit(&hdr->futex_wakes, memory_order_relaxed);
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
	case -EPROTO:       return "not a shmring file, or an unsupported ABI version";
	case -EBADMSG:      return "corrupt shmring file or record metadata";
	default:            return err < 0 ? strerror(-err) : "not an error code";
	}
}
