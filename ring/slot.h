/*
 * slot.h - where a position's meta entry and payload live, and the state
 * changes of a slot (private): write the meta, publish, release.  The
 * memory order of each is in docs/design.md section 3.
 */
#ifndef SHMRING_SLOT_H
#define SHMRING_SLOT_H

#include "handle.h"

/* Neighbouring slots' meta entries are spread a quarter of the array apart
 * (four entries share a cache line): otherwise a consumer releasing record i
 * and the producer publishing record i + 1 would fight over one line. */
static inline struct slot_meta *meta_at(const struct shmring *r, uint64_t pos)
{
	uint64_t s = pos & r->mask;
	return &r->meta[((s & 3) << r->quarter_shift) | (s >> 2)];
}

static inline unsigned char *data_at(const struct shmring *r, uint64_t pos)
{
	return r->data + ((pos & r->mask) << RING_SLOT_SHIFT);
}

/* Ask for a cache line we are about to write, in exclusive state, so that
 * its transfer from the peer's cache overlaps the work before the write
 * (a later locked instruction would otherwise wait for it).  PREFETCHW is a
 * NOP on x86 CPUs without it; elsewhere, the compiler's write prefetch. */
static inline void prefetch_for_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/* Fill a claimed record's meta entry (before publication, so relaxed: the
 * seq store that publishes it is a release). */
static inline void ring_write_meta(struct shmring *r, uint64_t pos, uint32_t len, uint16_t flags)
{
	struct slot_meta *m = meta_at(r, pos);
	atomic_store_explicit(&m->len, len, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	atomic_store_explicit(&m->flags, flags, memory_order_relaxed);
}
/* Publish the record at pos.  seq_cst, not just release: it is N1 of the
 * eventcount protocol (eventcount.c), ordered before the read of waiters. */
static inline void ring_publish(struct shmring *r, uint64_t pos)
{
	atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_COMMITTED),
	                      memory_order_seq_cst);
}
/* publish.c: n consecutive records from pos at once. */
void shmring__publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n);
/* Unfinished tasks += n, before the records are published (relaxed: the
 * publishing release store orders it before any consumer's task_done). */
static inline void ring_count_tasks(struct shmring *r, uint64_t n)
{
	atomic_fetch_add_explicit(&r->hdr->join.count, (int64_t)n, memory_order_relaxed);
}
/* Release a taken record: its slots may be reused.  seq_cst: this store and
 * the read of not_full's waiters in ring_notify_producers are C1/C2 of the
 * room Dekker pair (space.c). */
static inline void ring_release(struct shmring *r, uint64_t pos)
{
	atomic_store_explicit(&meta_at(r, pos)->seq, SLOT_SEQ(pos, SLOT_RELEASED),
	                      memory_order_seq_cst);
}

#endif /* SHMRING_SLOT_H */
