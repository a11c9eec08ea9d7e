/*
 * copy.c - the copy API: shmring_put, shmring_putv, shmring_get.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "attempt.h"
#include "shmring_batch.h"

/* Copy n bytes of a record in or out.  Up to 64 (one slot) inline, by
 * overlapping 16-byte moves: no call, so the put's and get's values stay in
 * their registers across it (docs/perf.md, "Cost per record": a call here
 * made the compiler save and restore six registers per put and get). */
static inline __attribute__((always_inline)) void copy_record(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (__builtin_expect(n > 64 || n < 16, 0)) {
		if (n)
			memcpy(d, s, n);
		return;
	}
	unsigned char a[16], b[16];
	memcpy(a, s, 16);
	memcpy(b, s + n - 16, 16);
	if (n > 32) {
		unsigned char c[16], e[16];
		memcpy(c, s + 16, 16);
		memcpy(e, s + n - 32, 16);
		memcpy(d + 16, c, 16);
		memcpy(d + n - 32, e, 16);
	}
	memcpy(d, a, 16);
	memcpy(d + n - 16, b, 16);
}

/* A put of iov's len bytes, checked by the caller: one body for shmring_put
 * (inlined with iovcnt 1, so its copy loop is one memcpy) and shmring_putv. */
static inline __attribute__((always_inline)) int put_checked(struct shmring *ring,
                                                             const struct iovec *iov, int iovcnt,
                                                             size_t len, int64_t timeout_ns)
{
	struct op_rec *c;
	struct slot_ref at;
	int rc = claim_one(ring, false, len, timeout_ns, &c, &at);
	if (rc)
		return rc;
	/* The task counted (queue.h), then the meta and payload. */
	claim_count_one(ring, c, at.pos, at.meta, (uint32_t)len, 0);
	unsigned char *dst = at.data;
	for (int i = 0; i < iovcnt; i++) {
		copy_record(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
	meta_publish(at.meta, at.pos);
	op_rec_clear(c);
	ring_notify_consumers(ring);
	ring_bcast_published(ring); /* issue 13 */
	return 0;
}

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
	return put_checked(ring, iov, iovcnt, len, timeout_ns);
}

int shmring_put(struct shmring *ring, const void *data, size_t len, int64_t timeout_ns)
{
	/* the checks of shmring_putv for one iovec */
	if (!ring || (len && !data))
		return -EINVAL;
	if (len > ring->max_record)
		return -EMSGSIZE;
	struct iovec iov = { (void *)data, len };
	return put_checked(ring, &iov, 1, len, timeout_ns);
}

ssize_t shmring_get(struct shmring *ring, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!ring || (cap && !buf))
		return -EINVAL;
	if (ring_is_bcast(ring)) /* issue 13: a subscriber's get */
		return shmring__bcast_get(ring, buf, cap, timeout_ns);
	struct take tk;
	struct op_rec *c;
	struct slot_ref at;
	ssize_t rc = take_one(ring, false, cap, timeout_ns, &c, &tk, &at);
	if (rc >= 0) {
		copy_record(buf, at.data, tk.len);
		meta_release(at.meta, at.pos);
		redeliver_after_release(ring, tk.rl); /* redeliver hook */
		op_rec_clear(c);
		ring_notify_producers(ring);
	}
	return rc;
}
