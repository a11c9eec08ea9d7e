/*
 * test_join_pool.c - the join counter with a pool of worker processes
 * (JoinableQueue semantics across processes).  tests/test_join.c covers the
 * counter in one process and one worker; here:
 *   - 4 forked workers get records and task_done each; the parent puts 1000
 *     and shmring_join(-1) returns only once every one of them is done;
 *   - the same with every way in: put_many batches (k each), putv,
 *     reserve/commit (also shorter than reserved: the skip tail is not a
 *     task), reserve/abort (not a task), and every way out (get, get_many,
 *     peek/release);
 *   - join timeouts (-ETIMEDOUT bounded, -EAGAIN for 0) with unfinished
 *     tasks held by a worker in another process;
 *   - task_done underflow (-ERANGE, count unchanged), also with workers in
 *     several processes racing past zero: exactly as many succeed as there
 *     were tasks.
 */
#include "common.h"

#include <stdatomic.h>

TestSuite(joinpool, .timeout = T_TIMEOUT);

#define WORKERS 4
#define POOL_RECS 1000
#define POOL_TAIL (POOL_RECS - 12)
#define MAX_RECS 1024

struct pool_shared {
	_Atomic uint64_t done;          /* task_done calls, bumped just before each */
	_Atomic uint32_t per_worker[WORKERS];
	_Atomic uint32_t seen[MAX_RECS];/* deliveries of record i */
};

static struct shmring *pr;
static struct pool_shared *ps;

static void expect_unfinished(struct shmring *r, uint64_t n, const char *when)
{
	cr_assert_eq(shmring_unfinished(r), n, "%s: unfinished %llu, expected %llu", when,
	             (unsigned long long)shmring_unfinished(r), (unsigned long long)n);
	cr_assert_eq(t_info(r).unfinished, n, "%s: info.unfinished", when);
}

/* One task: record i was delivered; do a little work; then done. */
static int finish(int w, uint32_t i)
{
	if (i >= MAX_RECS)
		return 20;
	if (atomic_fetch_add(&ps->seen[i], 1) != 0)
		return 21; /* delivered twice */
	if (i % 5 == 0)
		t_sleep_ns(50000 + (int64_t)(i % 7) * 20000); /* 50-170 us of "work" */
	if (i >= POOL_TAIL)
		t_sleep_ns(5 * T_MS); /* the last records are slow: join must wait */
	atomic_fetch_add(&ps->done, 1);
	atomic_fetch_add(&ps->per_worker[w], 1);
	return shmring_task_done(pr) == 0 ? 0 : 22;
}

/* get -> work -> task_done until end of stream. */
static int worker_get(void *arg)
{
	int w = (int)(intptr_t)arg;
	if (shmring_declare(pr, SHMRING_CONSUMER) != 0)
		return 10;
	for (;;) {
		uint32_t v;
		ssize_t n = shmring_get(pr, &v, sizeof v, 20 * T_SEC);
		if (n == -EPIPE)
			return 0;
		if (n != (ssize_t)sizeof v)
			return 11;
		int rc = finish(w, v);
		if (rc)
			return rc;
	}
}

static void pool_start(pid_t *pids, int (*fn)(void *), size_t cap)
{
	pr = t_ring(cap, 0);
	ps = t_shared(sizeof *ps);
	/* Workers first, with no declared role to inherit: a worker that
	 * inherited the parent's producer role would hold the stream open. */
	for (int w = 0; w < WORKERS; w++)
		pids[w] = t_fork(fn, (void *)(intptr_t)w);
	cr_assert_eq(shmring_declare(pr, SHMRING_PRODUCER), 0);
}

static void pool_finish(pid_t *pids, uint64_t expect)
{
	/* end of stream: the workers leave on -EPIPE */
	cr_assert_eq(shmring_leave(pr, SHMRING_PRODUCER), 0);
	for (int w = 0; w < WORKERS; w++)
		t_expect_exit(pids[w], 0, 20 * T_SEC);
	cr_assert_eq(atomic_load(&ps->done), expect);
	expect_unfinished(pr, 0, "after the pool");
	cr_assert_eq(shmring_join(pr, 0), 0);
	shmring_detach(pr);
}

Test(joinpool, join_returns_only_when_every_record_is_done)
{
	pid_t pids[WORKERS];
	/* a small ring: the parent's puts wait for the workers now and then */
	pool_start(pids, worker_get, 4096);
	for (uint32_t i = 0; i < POOL_RECS; i++) {
		int rc = shmring_put(pr, &i, sizeof i, 10 * T_SEC);
		cr_assert_eq(rc, 0, "put %u = %d", i, rc);
	}
	int64_t t0 = t_now_ns();
	int rc = shmring_join(pr, -1);
	int64_t el = t_now_ns() - t0;
	/* read the evidence first, before anything else can change */
	uint64_t done = atomic_load(&ps->done);
	uint64_t unfinished = shmring_unfinished(pr);
	cr_assert_eq(rc, 0, "join = %d", rc);
	cr_assert_eq(done, POOL_RECS, "join returned with %llu of %d tasks done",
	             (unsigned long long)done, POOL_RECS);
	cr_assert_eq(unfinished, 0);
	for (uint32_t i = 0; i < POOL_RECS; i++)
		cr_assert_eq(atomic_load(&ps->seen[i]), 1, "record %u delivered %u times", i,
		             atomic_load(&ps->seen[i]));
	cr_log_info("join waited %.1f ms; per worker %u %u %u %u\n", el / 1e6,
	            atomic_load(&ps->per_worker[0]), atomic_load(&ps->per_worker[1]),
	            atomic_load(&ps->per_worker[2]), atomic_load(&ps->per_worker[3]));
	/* a second join: nothing to wait for */
	cr_assert_eq(shmring_join(pr, -1), 0);
	cr_assert_eq(shmring_join(pr, 0), 0);
	pool_finish(pids, POOL_RECS);
}

/* --------------------------------------------- every way in and out */

/* Alternates get_many (up to 8 at a time), peek/release and get. */
static int worker_mixed(void *arg)
{
	int w = (int)(intptr_t)arg;
	if (shmring_declare(pr, SHMRING_CONSUMER) != 0)
		return 10;
	_Alignas(8) unsigned char buf[1024];
	struct iovec recs[8];
	for (unsigned round = 0;; round++) {
		ssize_t n;
		switch ((round + (unsigned)w) % 3) {
		case 0:
			n = shmring_get_many(pr, buf, sizeof buf, recs, 8, 20 * T_SEC);
			if (n == -EPIPE)
				return 0;
			if (n < 1)
				return 11;
			for (ssize_t k = 0; k < n; k++) {
				uint32_t v;
				if (recs[k].iov_len < sizeof v)
					return 12;
				memcpy(&v, recs[k].iov_base, sizeof v);
				int rc = finish(w, v);
				if (rc)
					return rc;
			}
			break;
		case 1: {
			struct shmring_span sp;
			n = shmring_peek(pr, &sp, 20 * T_SEC);
			if (n == -EPIPE)
				return 0;
			uint32_t v;
			if (n < (ssize_t)sizeof v)
				return 13;
			memcpy(&v, sp.data, sizeof v);
			if (shmring_release(pr, &sp) != 0)
				return 14;
			int rc = finish(w, v);
			if (rc)
				return rc;
			break;
		}
		default: {
			n = shmring_get(pr, buf, sizeof buf, 20 * T_SEC);
			if (n == -EPIPE)
				return 0;
			uint32_t v;
			if (n < (ssize_t)sizeof v)
				return 15;
			memcpy(&v, buf, sizeof v);
			int rc = finish(w, v);
			if (rc)
				return rc;
		}
		}
	}
}

Test(joinpool, batches_and_zero_copy_count_per_record_aborts_do_not)
{
	pid_t pids[WORKERS];
	pool_start(pids, worker_mixed, 1 << 14);
	uint32_t next = 0;
	unsigned aborted = 0;
	while (next < 900) {
		switch (next / 8 % 4) {
		case 0: { /* a batch of 8 */
			uint32_t v[8];
			struct iovec iov[8];
			for (int k = 0; k < 8; k++) {
				v[k] = next + (uint32_t)k;
				iov[k] = (struct iovec){ &v[k], sizeof v[k] };
			}
			size_t put = 0;
			while (put < 8) {
				ssize_t k = shmring_put_many(pr, iov + put, 8 - put, 10 * T_SEC);
				cr_assert_gt(k, 0, "put_many = %zd", k);
				put += (size_t)k;
			}
			next += 8;
			break;
		}
		case 1: /* 8 zero-copy records, committed shorter than reserved */
			for (int k = 0; k < 8; k++, next++) {
				struct shmring_span sp;
				cr_assert_eq(shmring_reserve(pr, 300, &sp, 10 * T_SEC), 0);
				memcpy(sp.data, &next, sizeof next);
				cr_assert_eq(shmring_commit(pr, &sp, k % 2 ? sizeof next : 300), 0);
			}
			break;
		case 2: /* 8 putv, and an abort in between each */
			for (int k = 0; k < 8; k++, next++) {
				struct shmring_span sp;
				cr_assert_eq(shmring_reserve(pr, 100, &sp, 10 * T_SEC), 0);
				cr_assert_eq(shmring_abort(pr, &sp), 0);
				aborted++;
				struct iovec iov[2] = { { &next, 2 }, { (char *)&next + 2, 2 } };
				cr_assert_eq(shmring_putv(pr, iov, 2, 10 * T_SEC), 0);
			}
			break;
		default:
			for (int k = 0; k < 8; k++, next++)
				cr_assert_eq(shmring_put(pr, &next, sizeof next, 10 * T_SEC), 0);
		}
	}
	cr_assert_eq(shmring_join(pr, 20 * T_SEC), 0);
	uint64_t done = atomic_load(&ps->done);
	cr_assert_eq(done, next, "join returned with %llu of %u done (%u aborts)",
	             (unsigned long long)done, next, aborted);
	cr_assert_eq(shmring_unfinished(pr), 0);
	for (uint32_t i = 0; i < next; i++)
		cr_assert_eq(atomic_load(&ps->seen[i]), 1, "record %u delivered %u times", i,
		             atomic_load(&ps->seen[i]));
	pool_finish(pids, next);
}

/* The same counting, exactly, in one process (no consumer). */
Test(joinpool, counts_exactly_per_record)
{
	struct shmring *r = t_ring(1 << 14, 1000);
	uint32_t v[10] = { 0 };
	struct iovec iov[10];
	for (int k = 0; k < 10; k++)
		iov[k] = (struct iovec){ &v[k], sizeof v[k] };
	cr_assert_eq(shmring_put_many(r, iov, 10, 0), 10);
	expect_unfinished(r, 10, "put_many of 10");
	cr_assert_eq(shmring_put_many(r, iov, 1, 0), 1);
	expect_unfinished(r, 11, "put_many of 1");
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 640, &sp, 0), 0);
	expect_unfinished(r, 11, "a reservation is not a task");
	cr_assert_eq(shmring_commit(r, &sp, 1), 0); /* leaves a 9-slot skip tail */
	expect_unfinished(r, 12, "commit shorter than reserved: one task");
	cr_assert_eq(shmring_reserve(r, 64, &sp, 0), 0);
	cr_assert_eq(shmring_abort(r, &sp), 0);
	expect_unfinished(r, 12, "abort");
	cr_assert_eq(t_info(r).records, 12);
	/* taking records (in batches, with skips in between) finishes nothing */
	_Alignas(8) char buf[2048];
	struct iovec recs[32];
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 32, 0), 12);
	expect_unfinished(r, 12, "after get_many");
	for (int k = 12; k > 0; k--)
		cr_assert_eq(shmring_task_done(r), 0);
	expect_unfinished(r, 0, "all done");
	cr_assert_eq(shmring_task_done(r), -ERANGE);
	expect_unfinished(r, 0, "-ERANGE leaves it at 0");
	/* failed puts add nothing: a closed ring */
	cr_assert_eq(shmring_close(r), 0);
	cr_assert_eq(shmring_put(r, "x", 1, 0), -EPIPE);
	cr_assert_eq(shmring_put_many(r, iov, 10, 0), -EPIPE);
	expect_unfinished(r, 0, "-EPIPE puts");
	shmring_detach(r);
}

/* ------------------------------------------------------- timeouts */

struct holder {
	_Atomic int took;
	_Atomic int release;
};
static struct holder *hd;

/* Takes one record and sits on it until told to finish it. */
static int holding_worker(void *arg)
{
	(void)arg;
	char c;
	if (shmring_get(pr, &c, 1, 10 * T_SEC) != 1)
		return 10;
	atomic_store(&hd->took, 1);
	int64_t dl = t_now_ns() + 20 * T_SEC;
	while (!atomic_load(&hd->release))
		if (t_now_ns() > dl)
			return 11;
		else
			t_sleep_ns(T_MS / 2);
	return shmring_task_done(pr) == 0 ? 0 : 12;
}

Test(joinpool, join_timeouts_with_a_task_held_elsewhere)
{
	pr = t_ring(4096, 0);
	hd = t_shared(4096);
	shmring_set_spin(pr, 0);
	cr_assert_eq(shmring_join(pr, 0), 0, "none unfinished: 0 at once");
	cr_assert_eq(shmring_join(pr, 50 * T_MS), 0);
	pid_t pid = t_fork(holding_worker, NULL);
	cr_assert_eq(shmring_put(pr, "t", 1, 0), 0);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&hd->took), 10 * T_SEC);
	cr_assert(ok);
	cr_assert_eq(shmring_join(pr, 0), -EAGAIN);
	for (int i = 0; i < 3; i++) {
		int64_t t0 = t_now_ns();
		cr_assert_eq(shmring_join(pr, 50 * T_MS), -ETIMEDOUT);
		int64_t el = t_now_ns() - t0;
		cr_assert_geq(el, 50 * T_MS, "join(50 ms) returned after %lld ns", (long long)el);
		cr_assert_lt(el, 50 * T_MS + T_WAKE_BOUND_NS, "join(50 ms) took %lld ns",
		             (long long)el);
	}
	expect_unfinished(pr, 1, "held by the worker");
	atomic_store(&hd->release, 1);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_join(pr, 10 * T_SEC), 0);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	cr_assert_eq(shmring_join(pr, 0), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(pr);
}

/* ------------------------------------------------------- underflow */

#define RACE_TASKS 1000
#define RACE_CALLS 300 /* per worker: WORKERS * RACE_CALLS > RACE_TASKS */

struct race {
	_Atomic int go;
	_Atomic uint32_t ok, erange, other;
};
static struct race *rc_sh;

static int racing_task_done(void *arg)
{
	(void)arg;
	while (!atomic_load(&rc_sh->go))
		;
	for (int i = 0; i < RACE_CALLS; i++) {
		int rc = shmring_task_done(pr);
		if (rc == 0)
			atomic_fetch_add(&rc_sh->ok, 1);
		else if (rc == -ERANGE)
			atomic_fetch_add(&rc_sh->erange, 1);
		else
			atomic_fetch_add(&rc_sh->other, 1);
	}
	return 0;
}

Test(joinpool, task_done_underflow_is_erange_across_processes)
{
	pr = t_ring(1 << 16, 0);
	rc_sh = t_shared(4096);
	cr_assert_eq(shmring_task_done(pr), -ERANGE, "fresh ring: nothing unfinished");
	expect_unfinished(pr, 0, "fresh");
	for (int i = 0; i < RACE_TASKS; i++)
		cr_assert_eq(shmring_put(pr, "", 0, 0), 0);
	expect_unfinished(pr, RACE_TASKS, "puts");
	pid_t pids[WORKERS];
	for (int w = 0; w < WORKERS; w++)
		pids[w] = t_fork(racing_task_done, NULL);
	atomic_store(&rc_sh->go, 1);
	for (int w = 0; w < WORKERS; w++)
		t_expect_exit(pids[w], 0, 20 * T_SEC);
	cr_assert_eq(atomic_load(&rc_sh->ok), RACE_TASKS);
	cr_assert_eq(atomic_load(&rc_sh->erange), WORKERS * RACE_CALLS - RACE_TASKS);
	cr_assert_eq(atomic_load(&rc_sh->other), 0);
	expect_unfinished(pr, 0, "after the race");
	cr_assert_eq(shmring_join(pr, 0), 0);
	/* and it still counts afterwards */
	cr_assert_eq(shmring_put(pr, "", 0, 0), 0);
	expect_unfinished(pr, 1, "counts again");
	cr_assert_eq(shmring_join(pr, 0), -EAGAIN);
	shmring_detach(pr);
}
