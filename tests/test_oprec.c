/*
 * test_oprec.c - a put's or get's op record (oprec.h op_rec_mine): the
 * calling thread's own, held in the entry's op_busy bitmap while the thread
 * keeps it, whether it comes from the per-thread cache or from the handle's
 * op_solo (the record of one thread, kept in the handle: issue 12).  A
 * record a thread gave back (at its exit, or evicted from its cache) must
 * never be used again from op_solo: another thread may hold it by then,
 * and a sweep that finds two operations in one record finishes only one.
 * White-box: tests are built with -Iring.
 */
#include "common.h"

#include <pthread.h>

#include "oprec.h"

TestSuite(oprec, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* A ring with an attachment entry (a role taken), no op record used yet. */
static struct shmring *o_ring(void)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring__take_role(r, SHMRING_PRODUCER), 0);
	return r;
}

/* Is record c held in its entry's bitmap? */
static bool held(struct shmring *r, const struct op_rec *c)
{
	size_t n = (size_t)(c - r->op_recs);
	uint64_t busy = atomic_load(&ring_attach(r, (int)(n / OPREC_PER_ENTRY))->op_busy);
	return busy & (UINT64_C(1) << (n % OPREC_PER_ENTRY));
}

struct mine {
	struct shmring *r[OPREC_CACHE_WAYS + 1];
	int nrings;
	struct op_rec *got[OPREC_CACHE_WAYS + 2];
	bool was_held[OPREC_CACHE_WAYS + 2];
	int rc;
};

/* op_rec_mine on each ring, then on the first again (after the cache
 * evicted it when there are more rings than ways): each record must be held
 * when it is handed out. */
static void *use_rings(void *arg)
{
	struct mine *m = arg;
	for (int i = 0; i <= m->nrings; i++) {
		struct shmring *r = m->r[i % m->nrings];
		for (int k = 0; k < 3; k++) { /* from op_solo after the first */
			struct op_rec *c;
			if ((m->rc = op_rec_mine(r, &c)) != 0)
				return NULL;
			m->got[i] = c;
			m->was_held[i] = held(r, c);
			if (!m->was_held[i])
				return NULL;
		}
	}
	return NULL;
}

/* Threads that come and go (glibc reuses an exited thread's stack, so a new
 * thread often has the old one's thread pointer and TLS address, which name
 * op_solo's owner: oprec.h op_solo_me): each
 * one's record is held, and given back when it exits. */
Test(oprec, exited_threads_records_are_never_reused_from_the_handle)
{
	struct shmring *r = o_ring();
	for (int t = 0; t < 20; t++) {
		struct mine m = { .r = { r }, .nrings = 1 };
		pthread_t tid;
		cr_assert_eq(pthread_create(&tid, NULL, use_rings, &m), 0);
		cr_assert_eq(pthread_join(tid, NULL), 0);
		cr_assert_eq(m.rc, 0);
		cr_assert(m.was_held[0] && m.was_held[1], "thread %d got a record nobody holds", t);
		cr_assert(!held(r, m.got[0]), "thread %d's record not given back at its exit", t);
	}
	shmring_detach(r);
}

/* One thread, more rings than cache ways: the first ring's record is evicted
 * (given back), and the thread's next call on that ring gets one it holds. */
Test(oprec, evicted_records_are_never_reused_from_the_handle)
{
	struct mine m = { .nrings = OPREC_CACHE_WAYS + 1 };
	for (int i = 0; i < m.nrings; i++)
		m.r[i] = o_ring();
	pthread_t tid;
	cr_assert_eq(pthread_create(&tid, NULL, use_rings, &m), 0);
	cr_assert_eq(pthread_join(tid, NULL), 0);
	cr_assert_eq(m.rc, 0);
	for (int i = 0; i <= m.nrings; i++)
		cr_assert(m.was_held[i], "call %d got a record nobody holds", i);
	for (int i = 0; i < m.nrings; i++)
		shmring_detach(m.r[i]);
}

/* Two threads on one handle at once: two records. */
static void *hold_mine(void *arg)
{
	struct mine *m = arg;
	use_rings(m);
	return NULL;
}

Test(oprec, two_threads_two_records)
{
	struct shmring *r = o_ring();
	struct op_rec *own;
	cr_assert_eq(op_rec_mine(r, &own), 0); /* this thread: op_solo's owner */
	struct mine m = { .r = { r }, .nrings = 1 };
	pthread_t tid;
	cr_assert_eq(pthread_create(&tid, NULL, hold_mine, &m), 0);
	cr_assert_eq(pthread_join(tid, NULL), 0);
	cr_assert_eq(m.rc, 0);
	cr_assert(m.was_held[0]);
	cr_assert_neq(m.got[0], own);
	struct op_rec *again;
	cr_assert_eq(op_rec_mine(r, &again), 0);
	cr_assert_eq(again, own);
	cr_assert(held(r, own));
	shmring_detach(r);
}

/* A fork child's record is one of its own entry's (the parent's thread,
 * whose thread pointer and TLS address the child's thread has, owned
 * op_solo). */
static struct shmring *fork_ring;
static int child_mine(void *arg)
{
	(void)arg;
	struct shmring *r = fork_ring;
	if (shmring__take_role(r, SHMRING_PRODUCER) != 0)
		return 10;
	int slot = atomic_load(&r->attach_slot);
	for (int k = 0; k < 3; k++) {
		struct op_rec *c;
		if (op_rec_mine(r, &c) != 0)
			return 11;
		if ((size_t)(c - r->op_recs) / OPREC_PER_ENTRY != (size_t)slot)
			return 12; /* another entry's: the parent's */
		if (!held(r, c))
			return 13;
	}
	return 0;
}

Test(oprec, fork_child_uses_its_own_entry)
{
	fork_ring = o_ring();
	struct op_rec *own;
	cr_assert_eq(op_rec_mine(fork_ring, &own), 0); /* this thread: op_solo's owner */
	t_expect_exit(t_fork(child_mine, NULL), 0, 10000000000LL);
	shmring_detach(fork_ring);
}
