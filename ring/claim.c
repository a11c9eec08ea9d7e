/*
 * claim.c - claim records, one per operation in flight.
 *
 * Before the CAS that claims slots (a put, a reserve, a batch) or takes
 * records (a get, a peek, a batch), the caller announces it in a claim
 * record of its own attachment entry: position, kind, extent.  It clears the
 * record when the claim is published or released.  A record is what lets a
 * sweep finish the claims of a process that died in the middle (recover.c).
 * Records are handed out per operation from the entry's bitmap: a line only
 * this process writes, so the CAS is uncontended unless its threads race.
 */
#include <errno.h>

#include "handle.h"

int claim_acquire(struct shmring *r, struct claim_rec **out)
{
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	if (slot < 0)
		return -EUSERS;
	struct attach_entry *e = &r->hdr->attach[slot];
	uint64_t busy = atomic_load_explicit(&e->claim_busy, memory_order_relaxed);
	for (;;) {
		if (~busy == 0) /* CLAIM_RECS operations in flight on this handle */
			return -ENOBUFS;
		unsigned i = (unsigned)__builtin_ctzll(~busy);
		if (atomic_compare_exchange_weak_explicit(&e->claim_busy, &busy, busy | (UINT64_C(1) << i),
		                                          memory_order_acquire,
		                                          memory_order_relaxed)) {
			*out = &r->hdr->claims[slot][i];
			return 0;
		}
	}
}

void claim_release(struct shmring *r, struct claim_rec *c)
{
	size_t n = (size_t)(c - &r->hdr->claims[0][0]);
	atomic_store_explicit(&c->word, 0, memory_order_release);
	atomic_fetch_and_explicit(&r->hdr->attach[n / CLAIM_RECS].claim_busy,
	                          ~(UINT64_C(1) << (n % CLAIM_RECS)), memory_order_release);
}

/* A fresh entry (claimed, or converted after fork) starts with no claims. */
void claim_reset_entry(struct ring_header *hdr, int slot)
{
	for (int i = 0; i < CLAIM_RECS; i++) {
		atomic_store_explicit(&hdr->claims[slot][i].word, 0, memory_order_relaxed);
		atomic_store_explicit(&hdr->claims[slot][i].extent, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&hdr->attach[slot].claim_busy, 0, memory_order_relaxed);
	atomic_store_explicit(&hdr->attach[slot].got, 0, memory_order_relaxed);
	atomic_store_explicit(&hdr->attach[slot].done, 0, memory_order_relaxed);
}

/*
 * The per-thread cache.  A thread keeps one record per handle it has used
 * recently (CACHE_WAYS of them), its bit left set in the entry's bitmap, so
 * that a put or get announces with plain stores and no read-modify-write.
 * The key is (handle serial, entry slot, fork generation): a detached
 * handle, a re-registration or a fork makes the cached record unusable.
 * Evicted ones, and all of a thread's at its exit, are given back if their
 * handle is still live with the same entry.
 */
#include <pthread.h>

__thread struct cached_claim claim_cache[CACHE_WAYS] __attribute__((tls_model("initial-exec")));
static __thread unsigned claim_cache_next;
static pthread_key_t claim_cache_key;
static pthread_once_t claim_cache_once = PTHREAD_ONCE_INIT;

struct give_back {
	int      slot;
	unsigned fork_gen;
	unsigned idx;
};

static void give_back_in(struct shmring *r, void *arg)
{
	const struct give_back *g = arg;
	if (atomic_load_explicit(&r->attach_slot, memory_order_relaxed) != g->slot ||
	    atomic_load_explicit(&ring_fork_gen, memory_order_relaxed) != g->fork_gen)
		return;
	claim_release(r, &r->hdr->claims[g->slot][g->idx]);
}

static void give_back(struct cached_claim *cc)
{
	if (!cc->serial)
		return;
	struct give_back g = { cc->slot, cc->fork_gen, cc->idx };
	ring_with_handle(cc->serial, give_back_in, &g);
	cc->serial = 0;
}

static void thread_exit(void *unused)
{
	(void)unused;
	for (int i = 0; i < CACHE_WAYS; i++)
		give_back(&claim_cache[i]);
}

static void cache_key_init(void)
{
	pthread_key_create(&claim_cache_key, thread_exit);
}

int claim_mine_new(struct shmring *r, struct claim_rec **out)
{
	int slot = atomic_load_explicit(&r->attach_slot, memory_order_relaxed);
	unsigned gen = atomic_load_explicit(&ring_fork_gen, memory_order_relaxed);
	/* A new record, in the way after the last one filled. */
	int rc = claim_acquire(r, out);
	if (rc)
		return rc;
	pthread_once(&claim_cache_once, cache_key_init);
	pthread_setspecific(claim_cache_key, claim_cache); /* arms thread_exit */
	struct cached_claim *cc = &claim_cache[claim_cache_next++ % CACHE_WAYS];
	give_back(cc);
	cc->serial = r->serial;
	cc->slot = slot;
	cc->fork_gen = gen;
	cc->idx = (unsigned)(*out - r->hdr->claims[slot]);
	return 0;
}
