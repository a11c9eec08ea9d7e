/*
 * batch.c - shmring_put_many and shmring_get_many: several records per claim.
 */
#include <errno.h>
#include <string.h>

#include "queue.h"
#include "copy_record.h"
#include "bcast.h" /* issue 13 hooks */
#include "redeliver.h"
#include "shmring_batch.h"

#define BATCH_CHUNK 256 /* records claimed by one CAS */

/* Claim, fill and publish up to BATCH_CHUNK records; returns how many. */
static ssize_t put_chunk(struct shmring *r, const struct iovec *recs, size_t n,
                         int64_t timeout_ns, struct op_rec *c)
{
	uint32_t slots[BATCH_CHUNK];
	size_t k = 0;
	int bad = 0; /* why the batch ends early, if it does */
	for (; k < n && k < BATCH_CHUNK; k++) {
		if (recs[k].iov_len > r->max_record) {
			bad = -EMSGSIZE;
			break;
		}
		if (recs[k].iov_len && !recs[k].iov_base) {
			bad = -EINVAL;
			break;
		}
		slots[k] = (uint32_t)slots_for(recs[k].iov_len);
	}
	if (k == 0)
		return bad;
	uint64_t pos;
	size_t taken;
	int rc = shmring__slots_claim(r, slots, k, &taken, &pos, timeout_ns, c);
	if (rc)
		return rc;
	uint64_t p = pos;
	for (size_t i = 0; i < taken; i++) {
		ring_write_meta(r, p, (uint32_t)recs[i].iov_len, 0);
		copy_record(data_at(r, p), recs[i].iov_base, recs[i].iov_len);
		p += slots[i];
	}
	/* before the COUNTED mark (release): a recovery that sees the mark
	 * sees this claim's progress, not an earlier claim's */
	atomic_store_explicit(&c->progress, OPREC_PROGRESS(0, 0), memory_order_relaxed);
	claim_count_tasks(r, c, pos, taken);
	shmring__publish_many(r, pos, slots, taken, c);
	op_rec_clear(c);
	ring_notify_consumers(r);
	ring_bcast_published(r); /* issue 13 */
	return (ssize_t)taken;
}

ssize_t shmring_put_many(struct shmring *ring, const struct iovec *recs, size_t n,
                         int64_t timeout_ns)
{
	if (!ring || (n && !recs))
		return -EINVAL;
	if (n == 0)
		return 0;
	struct op_rec *c;
	int role = ring_enter(ring, SHMRING_PRODUCER, &c);
	if (role)
		return role;
	ssize_t done = put_chunk(ring, recs, n, timeout_ns, c);
	ssize_t more = 0;
	/* More only while it fits now: the call waits for the first record only. */
	while (done > 0 && (size_t)done < n) {
		more = put_chunk(ring, recs + done, n - (size_t)done, 0, c);
		if (more <= 0)
			break;
		done += more;
	}
	/* issue 13: dropped counts the records refused for want of room: not
	 * one the batch would refuse anyway (too large, no base: put_chunk),
	 * nor any after it */
	long why = done < 0 ? done : more;
	if (why == -EAGAIN || why == -ETIMEDOUT) {
		size_t k = done > 0 ? (size_t)done : 0;
		while (k < n && recs[k].iov_len <= ring->max_record &&
		       (recs[k].iov_base || !recs[k].iov_len))
			k++;
		ring_note_refused(ring, why, k - (size_t)(done > 0 ? done : 0));
	}
	return done;
}

ssize_t shmring_get_many(struct shmring *ring, void *buf, size_t cap, struct iovec *recs,
                         size_t max_recs, int64_t timeout_ns)
{
	if (!ring || !recs || max_recs == 0 || (cap && !buf))
		return -EINVAL;
	if (ring_is_bcast(ring)) /* issue 13: a subscriber's get_many */
		return shmring__bcast_get_many(ring, buf, cap, recs, max_recs, timeout_ns);
	struct op_rec *c;
	int role = ring_enter(ring, SHMRING_CONSUMER, &c);
	if (role)
		return role;
	if ((role = ring_take_overflow(ring)) != 0) /* issue 13: SHMRING_OVERWRITE */
		return role;
	for (;;) {
		struct take run[BATCH_CHUNK];
		size_t n;
		size_t want = max_recs < BATCH_CHUNK ? max_recs : BATCH_CHUNK;
		ssize_t rc = shmring__take_run(ring, cap, want, run, &n, timeout_ns, c);
		if (rc < 0)
			return rc;
		size_t off = 0, got = 0;
		for (size_t i = 0; i < n; i++) {
			if (run[i].len == TAKE_SKIP)
				continue; /* a skip record */
			off = align8(off);
			unsigned char *dst = (unsigned char *)buf + off;
			copy_record(dst, data_at(ring, run[i].pos), run[i].len);
			recs[got].iov_base = dst;
			recs[got].iov_len = run[i].len;
			off += run[i].len;
			got++;
		}
		shmring__release_many(ring, run, n);
		/* the run is [run[0].pos, its last's end), all released now */
		ring_free_tail_follow_run(ring, run[0].pos, take_end(&run[n - 1]));
		redeliver_after_release(ring, run[0].rl); /* redeliver hook */
		op_rec_clear(c);
		ring_notify_producers(ring);
		if (got)
			return (ssize_t)got;
		/* only skip records: look again */
	}
}
