/*
 * zerocopy.c - reserve/commit/abort for producers, peek/release for consumers.
 */
#include <errno.h>

#include "queue.h"
#include "redeliver.h"
#include "shmring_zc.h"

int shmring_reserve(struct shmring *ring, size_t len, struct shmring_span *span,
                    int64_t timeout_ns)
{
	if (!ring || !span)
		return -EINVAL;
	if (len > ring->max_record)
		return -EMSGSIZE;
	int rc = ring_need_role(ring, SHMRING_PRODUCER);
	if (rc)
		return rc;
	struct op_rec *c;
	rc = shmring__op_rec_alloc(ring, &c);
	if (rc)
		return rc;
	uint32_t slots = (uint32_t)slots_for(len);
	uint64_t pos;
	size_t taken;
	rc = shmring__slots_claim(ring, &slots, 1, &taken, &pos, timeout_ns, c);
	if (rc) {
		shmring__op_rec_free(ring, c);
		return rc;
	}
	ring_write_meta(ring, pos, (uint32_t)len, 0);
	span->data = data_at(ring, pos);
	span->len = len;
	span->pos_ = pos;
	span->claim_ = c;
	return 0;
}

/* The slots a commit leaves unused become a skip record of their own,
 * published first: no consumer can reach it before the record itself. */
int shmring_commit(struct shmring *ring, struct shmring_span *span, size_t len)
{
	if (!ring || !span || !span->data)
		return -EINVAL;
	if (len > span->len)
		return -EMSGSIZE;
	uint64_t reserved = slots_for(span->len), used = slots_for(len);
	ring_count_tasks(ring, 1);
	op_rec_counted(span->claim_, span->pos_);
	if (used < reserved) {
		uint64_t tail = span->pos_ + used;
		ring_write_meta(ring, tail, (uint32_t)((reserved - used) << RING_SLOT_SHIFT),
		                SLOT_F_SKIP);
		ring_publish(ring, tail);
	}
	ring_write_meta(ring, span->pos_, (uint32_t)len, 0);
	ring_publish(ring, span->pos_);
	shmring__op_rec_free(ring, span->claim_);
	ring_notify_consumers(ring);
	span->data = NULL;
	return 0;
}

int shmring_abort(struct shmring *ring, struct shmring_span *span)
{
	if (!ring || !span || !span->data)
		return -EINVAL;
	ring_write_meta(ring, span->pos_, (uint32_t)(slots_for(span->len) << RING_SLOT_SHIFT),
	                SLOT_F_SKIP);
	ring_publish(ring, span->pos_);
	shmring__op_rec_free(ring, span->claim_);
	ring_notify_consumers(ring); /* consumers waiting behind it may go on */
	span->data = NULL;
	return 0;
}

ssize_t shmring_peek(struct shmring *ring, struct shmring_span *span, int64_t timeout_ns)
{
	if (!ring || !span)
		return -EINVAL;
	int role = ring_need_role(ring, SHMRING_CONSUMER);
	if (role)
		return role;
	struct op_rec *c;
	role = shmring__op_rec_alloc(ring, &c);
	if (role)
		return role;
	struct take tk;
	ssize_t rc = shmring__take(ring, SIZE_MAX, &tk, timeout_ns, c);
	if (rc < 0) {
		shmring__op_rec_free(ring, c);
		return rc;
	}
	span->data = data_at(ring, tk.pos);
	span->len = tk.len;
	span->pos_ = tk.pos;
	span->claim_ = c;
	span->deliveries = tk.deliveries; /* redeliver hook */
	span->redeliver_ = tk.rl;
	count_got(ring, 1);
	return rc;
}

int shmring_release(struct shmring *ring, struct shmring_span *span)
{
	if (!ring || !span || !span->data)
		return -EINVAL;
	ring_release(ring, span->pos_);
	redeliver_after_release(ring, span->redeliver_); /* redeliver hook */
	shmring__op_rec_free(ring, span->claim_);
	ring_notify_producers(ring);
	span->data = NULL;
	return 0;
}
