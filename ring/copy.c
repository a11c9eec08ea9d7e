/*
 * copy.c - the copy API: shmring_put, shmring_putv, shmring_get.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "queue.h"
#include "redeliver.h"
#include "shmring_batch.h"

int shmring_putv(struct shmring *ring, const struct iovec *iov, int iovcnt, int64_t timeout_ns)
{
	if (!ring || iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
		if (iov[i].iov_len > ring->max_record - len)
			return -EMSGSIZE;
		len += iov[i].iov_len;
	}
	struct op_rec *c;
	int rc = ring_enter(ring, SHMRING_PRODUCER, &c);
	if (rc)
		return rc;
	uint32_t slots = (uint32_t)slots_for(len);
	uint64_t pos;
	size_t taken;
	rc = shmring__slots_claim(ring, &slots, 1, &taken, &pos, timeout_ns, c);
	if (rc) {
		op_rec_clear(c);
		return rc;
	}
	/* Count the task first: the fetch_add is a full barrier on x86, and
	 * after the record's stores it would wait for their lines to arrive,
	 * which a spinning consumer then pulls away again before the publish.
	 * (A single-record claim needs no length to be forgiven: recover.c.) */
	ring_count_tasks(ring, 1);
	op_rec_counted(c, pos);
	ring_write_meta(ring, pos, (uint32_t)len, 0);
	unsigned char *dst = data_at(ring, pos);
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
	ring_publish(ring, pos);
	op_rec_clear(c);
	ring_notify_consumers(ring);
	return 0;
}

int shmring_put(struct shmring *ring, const void *data, size_t len, int64_t timeout_ns)
{
	struct iovec iov = { (void *)data, len };
	return shmring_putv(ring, &iov, 1, timeout_ns);
}

ssize_t shmring_get(struct shmring *ring, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!ring || (cap && !buf))
		return -EINVAL;
	struct op_rec *c;
	int role = ring_enter(ring, SHMRING_CONSUMER, &c);
	if (role)
		return role;
	struct take tk;
	ssize_t rc = shmring__take(ring, cap, &tk, timeout_ns, c);
	if (rc < 0) {
		op_rec_clear(c);
		return rc;
	}
	if (tk.len)
		memcpy(buf, data_at(ring, tk.pos), tk.len);
	ring_release(ring, tk.pos);
	redeliver_after_release(ring, tk.rl); /* redeliver hook */
	op_rec_clear(c);
	count_got(ring, 1);
	ring_notify_producers(ring);
	return rc;
}
