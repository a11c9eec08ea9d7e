/*
 * copy.c - the copy API: shmring_put, shmring_putv, shmring_get.
 *
 * A put or get of a record of at most one slot (64 bytes) takes the leaf
 * path: one function that makes no call, so that the compiler saves no
 * registers for it (docs/perf.md, "Cost per record").  It uses the same
 * inline steps as the general path (attempt.h, with leaf set: one look, no
 * reclaim, no second try); what it does not do itself it hands on by a tail
 * call: a liveness look that is due (put_after_look, get_after_look: the
 * look, then the rest of the leaf), the free_tail follow (follow_then_get), waking
 * sleepers, and, before it has claimed or taken anything, the general path
 * wherever that would call out (a role to take, an op record not in the
 * handle, no room by the hint, a lost CAS, nothing ready when the call may
 * wait, a skip record, a first put through the record, broadcast, overwrite
 * and redelivery rings).  A get with timeout 0 that finds nothing ready ends
 * in get_nothing.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "attempt.h"
#include "copy_record.h"
#include "shmring_batch.h"

/* Why a leaf path handed a call to the general path: not done, nothing
 * claimed or taken (LEAF_TICKED: with the liveness tick taken already). */
#define LEAF_NO     (-0x40000000)
#define LEAF_TICKED (-0x40000001)
#define LEAF_EMPTY  (-0x40000002) /* ticked, and a get found nothing ready */

/* The leaf paths make no call: what they leave is done by a tail call
 * (TAIL_ONLY: noipa, no clone with another signature, which would make it
 * a plain call), so that their fast path saves no register (a call on a
 * cold path made both functions push six: 35 instructions a put + get
 * pair).  clang, which builds the fuzzers, has no noipa (and a fuzzer
 * does not count registers): noinline alone there. */
#if defined(__clang__)
#define TAIL_ONLY __attribute__((noinline))
#else
#define TAIL_ONLY __attribute__((noinline, noipa))
#endif
/* Waking sleepers: */
static TAIL_ONLY int wake_then_put(struct shmring *r, uint64_t w)
{
	shmring__ec_wake_sleepers(&r->hdr->not_empty, w, ring_stats(r));
	return 0;
}
static TAIL_ONLY ssize_t wake_then_get(struct shmring *r, uint64_t w, ssize_t len)
{
	shmring__ec_wake_sleepers(&r->hdr->not_full, w, ring_stats(r));
	return len;
}
/* The end of a leaf get whose record [.., end) crossed a multiple of
 * FOLLOW_EVERY: the free_tail follow (slot.h). */
static TAIL_ONLY ssize_t follow_then_get(struct shmring *r, struct op_rec *c, ssize_t len,
                                         uint64_t end)
{
	ring_free_tail_follow_own(r, end);
	op_rec_clear(c);
	ring_notify_producers(r);
	return len;
}

/* A put of iov's len bytes, checked by the caller: one body for shmring_put
 * and shmring_putv; ticked: the leaf path took the liveness tick. */
static __attribute__((noinline)) int put_checked(struct shmring *ring, const struct iovec *iov,
                                                 int iovcnt, size_t len, int64_t timeout_ns,
                                                 bool ticked)
{
	struct op_rec *c;
	struct slot_ref at;
	int rc = claim_one(ring, false, ticked, len, timeout_ns, &c, &at);
	if (rc)
		return rc;
	/* The task counted (queue.h), then the meta and payload. */
	claim_count_one(ring, c, at.pos, at.meta, (uint32_t)len, 0, false);
	unsigned char *dst = at.data;
	for (int i = 0; i < iovcnt; i++) {
		copy_record(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
	meta_publish(ring, at.meta, at.pos);
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
	return put_checked(ring, iov, iovcnt, len, timeout_ns, false);
}

/* shmring_put's general path (a tail call from the leaf's failure: its
 * arguments fit in registers). */
static __attribute__((noinline)) int put_general(struct shmring *ring, const void *data,
                                                 size_t len, int64_t timeout_ns, bool ticked)
{
	struct iovec iov = { (void *)data, len };
	return put_checked(ring, &iov, 1, len, timeout_ns, ticked);
}

/* The general get; leaf: why the leaf path did not do it (LEAF_*).  */
static __attribute__((noinline)) ssize_t get_general(struct shmring *ring, void *buf, size_t cap,
                                                     int64_t timeout_ns, long leaf)
{
	bool ticked = leaf != LEAF_NO, looked = leaf == LEAF_EMPTY;
	if (ring_is_bcast(ring)) /* issue 13: a subscriber's get */
		return shmring__bcast_get(ring, buf, cap, timeout_ns);
	/* zeroed: take_one sets both when it returns >= 0, which -fanalyzer
	 * cannot follow through its loop (the general path: no cost that
	 * shows) */
	struct take tk = { 0 };
	struct op_rec *c;
	struct slot_ref at = { 0 };
	ssize_t rc = take_one(ring, false, ticked, looked, cap, timeout_ns, &c, &tk, &at);
	if (rc >= 0) {
		copy_record(buf, at.data, tk.len);
		meta_release(ring, at.meta, at.pos);
		ring_free_tail_follow(ring, at.pos, take_end(&tk));
		redeliver_after_release(ring, tk.rl); /* redeliver hook */
		op_rec_clear(c);
		ring_notify_producers(ring);
	}
	return rc;
}

/* A leaf get with timeout 0 that found nothing ready at t: the general
 * path's verdict without its loop, its waiter or a second attempt
 * (attempt.h take_nothing_at: -EPIPE at the end of the stream, else -EAGAIN,
 * with the stall check a poll makes, attach.h ring_sweep_if_stalled), and
 * the payload line of t asked for, as a poll does (attempt.h
 * prefetch_next_payload).  cons_head moved meanwhile: the general path,
 * which looks again.  An empty poll took 340 instructions through the
 * general path, 123 this way (perf/pair_cost empty, callgrind). */
static TAIL_ONLY ssize_t get_nothing(struct shmring *ring, void *buf, size_t cap, uint64_t t)
{
	uint64_t moved_to;
	int verdict = take_nothing_at(ring, t, &moved_to);
	if (verdict > 0)
		return get_general(ring, buf, cap, 0, LEAF_TICKED);
	if (verdict == -EAGAIN) {
		struct ring_geom g = ring_geom(ring);
		prefetch_next_payload(&g, t);
		ring_sweep_if_stalled(ring, STALL_TAKE, t);
	}
	return verdict;
}

/* The leaf paths: the one-record put of len <= RING_SLOT bytes and the
 * one-record get of a record of at most min(cap, RING_SLOT) bytes.  Every
 * exit returns the call's result, the general path's by a tail call.
 * put_leaf and get_leaf check the call and enter (ring_enter_leaf);
 * put_leaf_go and get_leaf_go do the rest with the tick taken and the op
 * record c, whether straight on or after the liveness look
 * (put_after_look, get_after_look), which changes nothing the entry
 * checked: the look only sweeps dead processes' attachments (entering
 * again after it cost 3.1 instructions a put + get pair; perf/pair_cost,
 * fourteenth session). */
static int put_after_look(struct shmring *ring, const void *data, size_t len, int64_t timeout_ns,
                          struct op_rec *c);
static ssize_t get_after_look(struct shmring *ring, void *buf, size_t cap, int64_t timeout_ns,
                              struct op_rec *c);

static inline __attribute__((always_inline)) int put_leaf_go(struct shmring *ring,
                                                             const void *data, size_t len,
                                                             int64_t timeout_ns, struct op_rec *c)
{
	/* (the first put through an op record registers it for join: a call) */
	if (__builtin_expect(!atomic_load_explicit(&c->puts, memory_order_relaxed), 0))
		return put_general(ring, data, len, timeout_ns, true);
	struct slot_ref at;
	size_t taken;
	uint32_t slots = 1;
	if (try_slots_claim(ring, &slots, 1, &taken, &at, c, true)) {
		op_rec_clear(c); /* an announcement whose CAS lost, or none */
		return put_general(ring, data, len, timeout_ns, true);
	}
	claim_count_one(ring, c, at.pos, at.meta, (uint32_t)len, 0, true);
	copy_small(at.data, data, len);
	meta_publish(ring, at.meta, at.pos);
	op_rec_clear(c);
	uint64_t w = ec_sleepers(&ring->hdr->not_empty); /* ring_notify_consumers */
	if (__builtin_expect(w != 0, 0))
		return wake_then_put(ring, w);
	return 0;
}
static inline __attribute__((always_inline)) int put_leaf(struct shmring *ring, const void *data,
                                                          size_t len, int64_t timeout_ns)
{
	struct op_rec *c;
	if (len > RING_SLOT || (ring->mode & (RING_HDR_BROADCAST | RING_HDR_OVERWRITE)))
		return put_general(ring, data, len, timeout_ns, false);
	int e = ring_enter_leaf(ring, SHMRING_PRODUCER, &c);
	if (e == LEAF_ENTER_LOOK)
		return put_after_look(ring, data, len, timeout_ns, c);
	if (e != LEAF_ENTER_GO)
		return put_general(ring, data, len, timeout_ns, false);
	return put_leaf_go(ring, data, len, timeout_ns, c);
}

static inline __attribute__((always_inline)) ssize_t get_leaf_go(struct shmring *ring, void *buf,
                                                                 size_t cap, int64_t timeout_ns,
                                                                 struct op_rec *c)
{
	struct take tk;
	struct slot_ref at;
	uint64_t end;
	ssize_t n = try_take_run(ring, cap < RING_SLOT ? cap : RING_SLOT, 1, &tk, &end, &at, c, true);
	if (n <= 0) {
		op_rec_clear(c); /* an announcement whose CAS lost, or none */
		if (n == -EAGAIN && timeout_ns == 0)
			return get_nothing(ring, buf, cap, at.pos);
		return get_general(ring, buf, cap, timeout_ns, n == -EAGAIN ? LEAF_EMPTY : LEAF_TICKED);
	}
	copy_small(buf, at.data, tk.len);
	meta_release(ring, at.meta, at.pos);
	ring->op_solo.gets_since_follow++; /* ring_free_tail_follow_own */
	/* one record of one slot, no skip: [at.pos, end = at.pos + 1) */
	if (__builtin_expect(ring_free_tail_due_one(end), 0))
		return follow_then_get(ring, c, (ssize_t)tk.len, end);
	op_rec_clear(c);
	uint64_t w = ec_sleepers(&ring->hdr->not_full); /* ring_notify_producers */
	if (__builtin_expect(w != 0, 0))
		return wake_then_get(ring, w, (ssize_t)tk.len);
	return (ssize_t)tk.len;
}
static inline __attribute__((always_inline)) ssize_t get_leaf(struct shmring *ring, void *buf,
                                                              size_t cap, int64_t timeout_ns)
{
	struct op_rec *c;
	if (ring->mode & (RING_HDR_BROADCAST | RING_HDR_OVERWRITE | RING_HDR_REDELIVER))
		return get_general(ring, buf, cap, timeout_ns, LEAF_NO);
	int e = ring_enter_leaf(ring, SHMRING_CONSUMER, &c);
	if (e == LEAF_ENTER_LOOK)
		return get_after_look(ring, buf, cap, timeout_ns, c);
	if (e != LEAF_ENTER_GO)
		return get_general(ring, buf, cap, timeout_ns, LEAF_NO);
	return get_leaf_go(ring, buf, cap, timeout_ns, c);
}

/* When the liveness look is due: the look, then the rest of the leaf. */
static TAIL_ONLY int put_after_look(struct shmring *ring, const void *data, size_t len,
                                    int64_t timeout_ns, struct op_rec *c)
{
	shmring__liveness_look(ring, SHMRING_PRODUCER);
	return put_leaf_go(ring, data, len, timeout_ns, c);
}
static TAIL_ONLY ssize_t get_after_look(struct shmring *ring, void *buf, size_t cap,
                                        int64_t timeout_ns, struct op_rec *c)
{
	shmring__liveness_look(ring, SHMRING_CONSUMER);
	return get_leaf_go(ring, buf, cap, timeout_ns, c);
}

int shmring_put(struct shmring *ring, const void *data, size_t len, int64_t timeout_ns)
{
	/* the checks of shmring_putv for one iovec */
	if (!ring || (len && !data))
		return -EINVAL;
	if (len > ring->max_record)
		return -EMSGSIZE;
	return put_leaf(ring, data, len, timeout_ns);
}

ssize_t shmring_get(struct shmring *ring, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!ring || (cap && !buf))
		return -EINVAL;
	return get_leaf(ring, buf, cap, timeout_ns);
}
