/*
 * oprec.c - op records, one per operation in flight.
 *
 * Before the CAS that claims slots (a put, a reserve, a batch) or takes
 * records (a get, a peek, a batch), the caller announces it in an op record
 * of its own attachment entry: position, kind, extent.  It clears the record
 * when the claim is published or released.  A record is what lets a
 * sweep finish the claims of a process that died in the middle (recover.c).
 * Records are handed out per operation from the entry's bitmap: a line only
 * this process writes, so the CAS is uncontended unless its threads race.
 */
#include <errno.h>
#include <pthread.h>

#include "attach.h"
#include "oprec.h"

/* The first put through op record c (its puts 0): entries [0, join_entries)
 * and their records [0, op_high) are what join sums (join.c), so c must be
 * in them before its puts is.  Both only grow, join_entries first (a death
 * between the two leaves nothing unsummed).  Whoever sums because of a put
 * through c (a task_done of its record, a joiner seeing that task_done) is
 * ordered after the put by the publication's and join.count's
 * release/acquire chains, so sees these values or later ones.  Relaxed
 * otherwise: a record once raised stays below op_high, and its puts stay
 * above 0, so this runs once per record. */
void shmring__op_rec_first_put(struct shmring *r, const struct op_rec *c)
{
	size_t n = (size_t)(c - r->op_recs);
	uint32_t slot = (uint32_t)(n / OPREC_PER_ENTRY), i = (uint32_t)(n % OPREC_PER_ENTRY);
	_Atomic uint32_t *ents = &r->hdr->join_entries;
	uint32_t have = atomic_load_explicit(ents, memory_order_relaxed);
	while (have <= slot && !atomic_compare_exchange_weak_explicit(ents, &have, slot + 1,
	                                                             memory_order_relaxed,
	                                                             memory_order_relaxed))
		;
	_Atomic uint32_t *high = &ring_attach(r, (int)slot)->op_high;
	have = atomic_load_explicit(high, memory_order_relaxed);
	while (have <= i && !atomic_compare_exchange_weak_explicit(high, &have, i + 1,
	                                                          memory_order_relaxed,
	                                                          memory_order_relaxed))
		;
}

int shmring__op_rec_alloc(struct shmring *r, struct op_rec **out)
{
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	if (slot < 0)
		return -EUSERS;
	struct attach_entry *e = ring_attach(r, slot);
	uint64_t busy = atomic_load_explicit(&e->op_busy, memory_order_relaxed);
	for (;;) {
		if (~busy == 0) /* OPREC_PER_ENTRY operations in flight on this handle */
			return -ENOBUFS;
		unsigned i = (unsigned)__builtin_ctzll(~busy);
		if (atomic_compare_exchange_weak_explicit(&e->op_busy, &busy, busy | (UINT64_C(1) << i),
		                                          memory_order_acquire,
		                                          memory_order_relaxed)) {
			*out = ring_op_rec(r, slot, i);
			return 0;
		}
	}
}

void shmring__op_rec_free(struct shmring *r, struct op_rec *c)
{
	size_t n = (size_t)(c - r->op_recs);
	atomic_store_explicit(&c->word, 0, memory_order_release);
	atomic_fetch_and_explicit(&ring_attach(r, (int)(n / OPREC_PER_ENTRY))->op_busy,
	                          ~(UINT64_C(1) << (n % OPREC_PER_ENTRY)), memory_order_release);
}

/*
 * The per-thread cache.  A thread keeps one record per handle it has used
 * recently (OPREC_CACHE_WAYS of them), its bit left set in the entry's bitmap, so
 * that a put or get announces with plain stores and no read-modify-write.
 * The key is (handle serial, entry slot, fork generation): a detached
 * handle, a re-registration or a fork makes the cached record unusable.
 * Evicted ones, and all of a thread's at its exit, are given back if their
 * handle is still live with the same entry.
 */
__thread struct op_rec_cached shmring__op_rec_cache[OPREC_CACHE_WAYS] __attribute__((tls_model("initial-exec")));
static __thread unsigned op_rec_cache_next;
static pthread_key_t op_rec_cache_key;
static pthread_once_t op_rec_cache_once = PTHREAD_ONCE_INIT;

struct give_back {
	int      slot;
	unsigned fork_gen;
	unsigned idx;
	struct op_rec *rec;
};

/* Keep cc's record in the handle's op_solo too (handle.h), if the field is
 * free or this thread's already. */
static void solo_take(struct shmring *r, const struct op_rec_cached *cc)
{
	uintptr_t me = op_solo_me(), owner = 0;
	/* acquire: the previous owner's writes of the fields happen before ours */
	uintptr_t seen = atomic_load_explicit(&r->op_solo.owner, memory_order_relaxed);
	if (seen != me && (seen != 0 || !atomic_compare_exchange_strong_explicit(
	                                        &r->op_solo.owner, &owner, me,
	                                        memory_order_acquire, memory_order_relaxed)))
		return; /* another thread's */
	r->op_solo.slot = cc->slot;
	r->op_solo.rec = cc->rec;
	r->op_solo.follow_at = UINT64_MAX; /* the next follow walks (slot.h) */
}

static void give_back_in(struct shmring *r, void *arg)
{
	const struct give_back *g = arg;
	/* The handle's op_solo, if it is this thread's and holds this record,
	 * goes with it (release: our writes of the fields happen before the
	 * next owner's). */
	if (atomic_load_explicit(&r->op_solo.owner, memory_order_relaxed) == op_solo_me() &&
	    r->op_solo.rec == g->rec)
		atomic_store_explicit(&r->op_solo.owner, 0, memory_order_release);
	if (atomic_load_explicit(&r->attach_slot, memory_order_relaxed) != g->slot ||
	    atomic_load_explicit(&shmring__fork_gen, memory_order_relaxed) != g->fork_gen)
		return;
	shmring__op_rec_free(r, ring_op_rec(r, g->slot, g->idx));
}

static void give_back(struct op_rec_cached *cc)
{
	if (!cc->serial)
		return;
	struct give_back g = { cc->slot, cc->fork_gen, cc->idx, cc->rec };
	shmring__with_handle(cc->serial, give_back_in, &g);
	cc->serial = 0;
}

static void thread_exit(void *unused)
{
	(void)unused;
	for (int i = 0; i < OPREC_CACHE_WAYS; i++)
		give_back(&shmring__op_rec_cache[i]);
}

static void cache_key_init(void)
{
	pthread_key_create(&op_rec_cache_key, thread_exit);
}

int shmring__op_rec_mine_cached(struct shmring *r, struct op_rec **out)
{
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	unsigned gen = atomic_load_explicit(&shmring__fork_gen, memory_order_relaxed);
	uint64_t serial = r->serial;
	for (int i = 0; i < OPREC_CACHE_WAYS; i++) {
		const struct op_rec_cached *cc = &shmring__op_rec_cache[i];
		if (cc->serial == serial && cc->slot == slot && cc->fork_gen == gen) {
			*out = cc->rec;
			if (!atomic_load_explicit(&r->op_solo.owner, memory_order_relaxed))
				solo_take(r, cc);
			return 0;
		}
	}
	/* A new record, in the way after the last one filled. */
	int rc = shmring__op_rec_alloc(r, out);
	if (rc)
		return rc;
	pthread_once(&op_rec_cache_once, cache_key_init);
	pthread_setspecific(op_rec_cache_key, shmring__op_rec_cache); /* arms thread_exit */
	struct op_rec_cached *cc = &shmring__op_rec_cache[op_rec_cache_next++ % OPREC_CACHE_WAYS];
	give_back(cc);
	cc->serial = r->serial;
	cc->slot = slot;
	cc->fork_gen = gen;
	cc->idx = (unsigned)(*out - ring_op_rec(r, slot, 0));
	cc->rec = *out;
	solo_take(r, cc);
	return 0;
}
