/*
 * oprec.h - op records (private): each operation in flight announces what
 * it claims or takes in a record of its attachment entry, so that a sweep
 * can finish it if the process dies (oprec.c, recover.c; docs/design.md
 * section 7).
 */
#ifndef SHMRING_OPREC_H
#define SHMRING_OPREC_H

#include "attach.h"

/* oprec.c: a record from the handle's entry, for an operation that outlives
 * the call (a reservation, a peeked span); give it back with op_rec_free. */
int  shmring__op_rec_alloc(struct shmring *r, struct op_rec **out);
void shmring__op_rec_free(struct shmring *r, struct op_rec *c);

/* For an operation that ends within the call (put, get, batches): the
 * calling thread's own record for this handle, kept between calls (in a
 * per-thread cache, oprec.c, and for one thread in the handle itself); the
 * operation ends with op_rec_clear. */
#define OPREC_CACHE_WAYS 4
struct op_rec_cached {
	uint64_t serial;     /* 0: empty */
	int      slot;
	unsigned fork_gen;
	unsigned idx;
	struct op_rec *rec;  /* ring_op_rec(r, slot, idx), made once */
};
/* initial-exec: a plain %fs-relative access, also from the shared library
 * (the cache is 128 bytes, well within the static TLS glibc sets aside for
 * libraries loaded later). */
extern __thread struct op_rec_cached shmring__op_rec_cache[OPREC_CACHE_WAYS]
	__attribute__((tls_model("initial-exec")));
/* The calling thread, as op_solo's owner word names it: the thread pointer
 * where the compiler gives it (one load from %fs:0 on x86-64, where the
 * cache's address is a load and an add: 4 instructions a put + get pair;
 * perf/pair_cost, fourteenth session), else the address of the thread's
 * cache.  Either is the thread's own while it lives, and its fork child's
 * in the child (which empties op_solo first: attach.c).  The builtin only
 * where it is known to work: __has_builtin says yes where the compiler
 * then fails (clang 12-13 on x86-64, GCC on ppc64le). */
#if defined(__x86_64__) && ((defined(__clang__) && __clang_major__ >= 14) || \
                            (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 12))
#define OP_SOLO_ME_TP 1
#endif
static inline uintptr_t op_solo_me(void)
{
#ifdef OP_SOLO_ME_TP
	return (uintptr_t)__builtin_thread_pointer();
#else
	return (uintptr_t)shmring__op_rec_cache;
#endif
}
/* oprec.c: the lookup in the per-thread cache, else a new record. */
int shmring__op_rec_mine_cached(struct shmring *r, struct op_rec **out);
/* This thread's record kept in the handle (handle.h op_solo): a cache way's
 * key but the serial, which the handle itself is, and the fork generation:
 * a fork child empties op_solo before it runs anything else (attach.c
 * after_fork_child). */
static inline __attribute__((always_inline)) bool op_rec_solo(struct shmring *r,
                                                              struct op_rec **out)
{
	if (__builtin_expect(atomic_load_explicit(&r->op_solo.owner, memory_order_relaxed) ==
	                             op_solo_me() &&
	                     r->op_solo.slot == atomic_load_explicit(&r->attach_slot,
	                                                             memory_order_relaxed),
	                     1)) {
		*out = r->op_solo.rec;
		return true;
	}
	return false;
}
static inline __attribute__((always_inline)) int op_rec_mine(struct shmring *r,
                                                             struct op_rec **out)
{
	return op_rec_solo(r, out) ? 0 : shmring__op_rec_mine_cached(r, out);
}
/* Announce before the claiming CAS (which is a release, so a sweep that
 * sees the CAS's effect sees the announcement). */
static inline void op_rec_announce(struct op_rec *c, uint64_t pos, unsigned kind,
                                   uint64_t slots, uint64_t records)
{
	atomic_store_explicit(&c->extent, OPREC_EXTENT(slots, records), memory_order_relaxed);
	atomic_store_explicit(&c->word, OPREC_WORD(pos, kind), memory_order_release);
}
/* The operation is over (published, released, or its CAS lost). */
static inline void op_rec_clear(struct op_rec *c)
{
	atomic_store_explicit(&c->word, 0, memory_order_release);
}
/* The claim's n records are counted in the record's puts (join), then it is
 * marked COUNTED: a sweep that finds them unpublished forgives them.  puts
 * has one writer, the holder of c (relaxed load and store: no locked
 * instruction, no shared line); the release store of the mark orders the
 * count before it for a sweep that reads the mark (docs/design.md). */
void shmring__op_rec_first_put(struct shmring *r, const struct op_rec *c);
static inline void op_rec_count_puts(struct shmring *r, struct op_rec *c, uint64_t n, bool leaf)
{
	uint64_t puts = atomic_load_explicit(&c->puts, memory_order_relaxed);
	/* once per record: join must sum it (oprec.c); the leaf put (copy.c)
	 * has checked that it is not the first */
	if (!leaf && __builtin_expect(puts == 0, 0))
		shmring__op_rec_first_put(r, c);
	atomic_store_explicit(&c->puts, puts + n, memory_order_relaxed);
}
static inline void op_rec_counted(struct op_rec *c, uint64_t pos)
{
	atomic_store_explicit(&c->word, OPREC_WORD(pos, OPREC_COUNTED), memory_order_release);
}

#endif /* SHMRING_OPREC_H */
