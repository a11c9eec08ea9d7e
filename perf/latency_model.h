/*
 * latency_model.h - bare models of one ring hop, for bench_quick's latency
 * table: what a ring design costs at best on this machine, measured in the
 * same run as the floor and as shmring, by the same ping-pong.
 *
 * A model ring is the least a Vyukov-style ring does per record, nothing
 * else: no room check, no claim record, no liveness, no sleeping.  Four
 * models, each a step from shmring's design towards the bare cache line:
 *
 *   split, locked   shmring's layout: seq in a 16-byte meta entry (four to a
 *                   line, spread as shmring spreads them), payload in its own
 *                   64-byte line; shmring's locked instructions per hop (CAS
 *                   claim, task count, seq_cst publish; CAS take, seq_cst
 *                   release).
 *   inline, locked  the seq word in the payload's line (8 + 56 bytes), the
 *                   same locked instructions.
 *   inline, CAS     the same line, only the two CASes any multi-producer
 *                   multi-consumer ring needs (claim, take); publish and
 *                   release are plain stores, no task count: a bare Vyukov
 *                   ring, which cannot let a waiter sleep safely.
 *   inline, plain   the same line, plain stores only: what a single-producer
 *                   single-consumer ring could do.
 *   inline, 64 B    "inline, locked" with a 64-byte payload, as ABI 2 laid a
 *                   64-byte record out: a 16-byte header and the payload
 *                   from its first slot into the next, two lines a record
 *                   as in the split layout (the harness's records are 64 B).
 *
 * Records carry their sequence number in their first and last 8 payload
 * bytes, checked on arrival.
 */
#ifndef SHMRING_LATENCY_MODEL_H
#define SHMRING_LATENCY_MODEL_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define MODEL_SLOTS  64u
#define MODEL_QSHIFT 4u	/* log2(MODEL_SLOTS) - 2 */

enum model_kind { MODEL_SPLIT_LOCKED = 1, MODEL_INLINE_LOCKED, MODEL_INLINE_CAS, MODEL_INLINE_PLAIN,
                  MODEL_INLINE_WIDE };

struct model_meta {
	_Atomic uint64_t seq;
	uint64_t len;
};

struct model_ring {
	_Alignas(128) _Atomic uint64_t head;	/* producer's claim index */
	_Alignas(128) _Atomic uint64_t tail;	/* consumer's claim index */
	_Alignas(128) _Atomic uint64_t tasks;	/* as shmring's join counter */
	_Alignas(128) struct model_meta meta[MODEL_SLOTS];
	_Alignas(128) unsigned char data[MODEL_SLOTS][64];
};

struct model {
	struct model_ring ring[2];	/* ping, pong */
	enum model_kind kind;
};

#define MODEL_COMMITTED(pos) (((pos) << 2) | 1)
#define MODEL_RELEASED(pos)  (((pos) << 2) | 2)

/* Claims and takes by CAS?  Task count, seq_cst publish and release? */
static inline int model_cas(const struct model *m)
{
	return m->kind != MODEL_INLINE_PLAIN;
}

static inline int model_locked(const struct model *m)
{
	return m->kind == MODEL_SPLIT_LOCKED || m->kind == MODEL_INLINE_LOCKED ||
	       m->kind == MODEL_INLINE_WIDE;
}

/* The first data slot of the record in slot s (a wide record takes two). */
static inline unsigned char *model_slot(struct model *m, struct model_ring *r, uint64_t s)
{
	return m->kind == MODEL_INLINE_WIDE ? r->data[(2 * s) % MODEL_SLOTS] : r->data[s];
}

/* The word that publishes slot s, and the payload bytes that go with it. */
static inline _Atomic uint64_t *model_seq(struct model *m, struct model_ring *r, uint64_t s)
{
	if (m->kind == MODEL_SPLIT_LOCKED)
		return &r->meta[((s & 3) << MODEL_QSHIFT) | (s >> 2)].seq;
	return (_Atomic uint64_t *)(void *)model_slot(m, r, s);
}

static inline unsigned char *model_payload(struct model *m, struct model_ring *r, uint64_t s,
					   size_t *len)
{
	if (m->kind == MODEL_INLINE_WIDE) {
		*len = 64;
		return model_slot(m, r, s) + 16;
	}
	*len = m->kind == MODEL_SPLIT_LOCKED ? 64 : 56;
	return m->kind == MODEL_SPLIT_LOCKED ? r->data[s] : r->data[s] + 8;
}

static inline void model_put(struct model *m, struct model_ring *r, uint64_t seq)
{
	int locked = model_locked(m);
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	if (model_cas(m)) {
		atomic_compare_exchange_strong_explicit(&r->head, &h, h + 1, memory_order_acq_rel,
							memory_order_relaxed);
		if (locked)
			atomic_fetch_add_explicit(&r->tasks, 1, memory_order_relaxed);
	} else {
		atomic_store_explicit(&r->head, h + 1, memory_order_relaxed);
	}
	uint64_t s = h % MODEL_SLOTS;
	size_t len;
	unsigned char *p = model_payload(m, r, s, &len);
	if (m->kind == MODEL_SPLIT_LOCKED)
		r->meta[((s & 3) << MODEL_QSHIFT) | (s >> 2)].len = len;
	memcpy(p, &seq, 8);
	memset(p + 8, (int)(seq & 0xff), len - 16);
	memcpy(p + len - 8, &seq, 8);
	atomic_store_explicit(model_seq(m, r, s), MODEL_COMMITTED(h),
			      locked ? memory_order_seq_cst : memory_order_release);
}

/* Wait for the next record (polling with a pause, as the floor does);
 * returns 0 when stop_word reads stop first, -1 for a wrong record. */
static inline int model_get(struct model *m, struct model_ring *r, uint64_t want,
			    _Atomic uint64_t *stop_word, uint64_t stop)
{
	int locked = model_locked(m);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t s = t % MODEL_SLOTS;
	_Atomic uint64_t *seq = model_seq(m, r, s);
	while (atomic_load_explicit(seq, memory_order_acquire) != MODEL_COMMITTED(t)) {
		if (atomic_load_explicit(stop_word, memory_order_relaxed) == stop)
			return 0;
		cpu_relax();
	}
	if (model_cas(m))
		atomic_compare_exchange_strong_explicit(&r->tail, &t, t + 1, memory_order_acq_rel,
							memory_order_relaxed);
	else
		atomic_store_explicit(&r->tail, t + 1, memory_order_relaxed);
	size_t len;
	unsigned char buf[64], *p = model_payload(m, r, s, &len);
	memcpy(buf, p, len);
	atomic_store_explicit(seq, MODEL_RELEASED(t),
			      locked ? memory_order_seq_cst : memory_order_release);
	uint64_t a, b;
	memcpy(&a, buf, 8);
	memcpy(&b, buf + len - 8, 8);
	return a == want && b == want ? 1 : -1;
}

#endif /* SHMRING_LATENCY_MODEL_H */
