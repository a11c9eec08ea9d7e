/*
 * test_latch.c - struct shmring_latch: counter semantics, timeouts, and its
 * three uses across processes (latch, start gate, barrier).
 */
#include "common.h"

#include "shmring_latch.h"

TestSuite(latch, .timeout = T_TIMEOUT);

/* A latch (or several) in memory shared with forked children. */
static struct shmring_latch *shared_latches(size_t n)
{
	return t_shared(n * sizeof(struct shmring_latch));
}

/* ------------------------------------------------------------ one process */

Test(latch, init_add_arrive_count)
{
	struct shmring_latch *l = shared_latches(1);
	cr_assert_eq(shmring_latch_init(l, 3), 0);
	cr_assert_eq(shmring_latch_count(l), 3);
	cr_assert_eq(shmring_latch_arrive(l), 0);
	cr_assert_eq(shmring_latch_count(l), 2);
	cr_assert_eq(shmring_latch_add(l, 5), 0);
	cr_assert_eq(shmring_latch_count(l), 7);
	cr_assert_eq(shmring_latch_add(l, -6), 0);
	cr_assert_eq(shmring_latch_count(l), 1);
	cr_assert_eq(shmring_latch_add(l, 0), 0, "adding 0 is allowed");
	cr_assert_eq(shmring_latch_count(l), 1);
	cr_assert_eq(shmring_latch_wait(l, 0), -EAGAIN, "count 1: not open");
	cr_assert_eq(shmring_latch_arrive(l), 0);
	cr_assert_eq(shmring_latch_count(l), 0);
	/* open: waits return at once, whatever the timeout */
	cr_assert_eq(shmring_latch_wait(l, 0), 0);
	cr_assert_eq(shmring_latch_wait(l, -1), 0);
	cr_assert_eq(shmring_latch_wait(l, 10 * T_MS), 0);
	/* and it can be reused as a counter */
	cr_assert_eq(shmring_latch_add(l, 2), 0);
	cr_assert_eq(shmring_latch_wait(l, 0), -EAGAIN);
	cr_assert_eq(shmring_latch_add(l, -2), 0);
	cr_assert_eq(shmring_latch_wait(l, 0), 0);
	/* re-init */
	cr_assert_eq(shmring_latch_init(l, 0), 0);
	cr_assert_eq(shmring_latch_count(l), 0);
	cr_assert_eq(shmring_latch_wait(l, 0), 0);
}

Test(latch, underflow_is_erange_and_leaves_count)
{
	struct shmring_latch *l = shared_latches(1);
	cr_assert_eq(shmring_latch_init(l, 2), 0);
	cr_assert_eq(shmring_latch_add(l, -3), -ERANGE);
	cr_assert_eq(shmring_latch_count(l), 2, "count unchanged after -ERANGE");
	cr_assert_eq(shmring_latch_add(l, INT64_MIN), -ERANGE);
	cr_assert_eq(shmring_latch_count(l), 2);
	cr_assert_eq(shmring_latch_arrive(l), 0);
	cr_assert_eq(shmring_latch_arrive(l), 0);
	cr_assert_eq(shmring_latch_arrive(l), -ERANGE, "arrive on an open latch");
	cr_assert_eq(shmring_latch_count(l), 0);
	cr_assert_eq(shmring_latch_arrive_and_wait(l, 0), -ERANGE);
	cr_assert_eq(shmring_latch_count(l), 0);
	/* overflow the other way is refused too */
	cr_assert_eq(shmring_latch_add(l, INT64_MAX), 0);
	cr_assert_eq(shmring_latch_add(l, 1), -ERANGE);
	cr_assert_eq(shmring_latch_count(l), INT64_MAX);
}

Test(latch, bad_arguments)
{
	struct shmring_latch *l = shared_latches(1);
	cr_assert_eq(shmring_latch_init(NULL, 1), -EINVAL);
	cr_assert_eq(shmring_latch_init(l, -1), -EINVAL);
	cr_assert_eq(shmring_latch_add(NULL, 1), -EINVAL);
	cr_assert_eq(shmring_latch_arrive(NULL), -EINVAL);
	cr_assert_eq(shmring_latch_wait(NULL, 0), -EINVAL);
	cr_assert_eq(shmring_latch_arrive_and_wait(NULL, 0), -EINVAL);
	cr_assert_lt(shmring_latch_count(NULL), 0);
}

Test(latch, timeouts)
{
	struct shmring_latch *l = shared_latches(1);
	cr_assert_eq(shmring_latch_init(l, 1), 0);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_latch_wait(l, 0), -EAGAIN);
	cr_assert_lt(t_now_ns() - t0, 50 * T_MS, "timeout 0 must not wait");

	const int64_t to = 150 * T_MS;
	t0 = t_now_ns();
	cr_assert_eq(shmring_latch_wait(l, to), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	cr_assert_geq(el, to, "returned after %lld ns, before the timeout", (long long)el);
	cr_assert_lt(el, to + T_WAKE_BOUND_NS, "timed out after %lld ns", (long long)el);
	cr_assert_eq(shmring_latch_count(l), 1, "a timed-out wait changes nothing");

	/* a timeout longer than the 100 ms re-check slice */
	t0 = t_now_ns();
	cr_assert_eq(shmring_latch_wait(l, 350 * T_MS), -ETIMEDOUT);
	el = t_now_ns() - t0;
	cr_assert_geq(el, 350 * T_MS);
	cr_assert_lt(el, 350 * T_MS + T_WAKE_BOUND_NS);
}

/* ------------------------------------------------------------ latch */

#define NWORK 4

struct latch_shared {
	struct shmring_latch done;
	int                  work[NWORK];   /* set by worker i before it arrives */
};

static struct latch_shared *ls;

static int latch_worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	t_sleep_ns((i + 1) * 30 * T_MS);   /* finish at different times */
	__atomic_store_n(&ls->work[i], 1, __ATOMIC_RELAXED);
	return shmring_latch_arrive(&ls->done) == 0 ? 0 : 1;
}

Test(latch, parent_waits_for_forked_workers)
{
	ls = t_shared(sizeof *ls);
	cr_assert_eq(shmring_latch_init(&ls->done, NWORK), 0);
	pid_t p[NWORK];
	for (int i = 0; i < NWORK; i++)
		p[i] = t_fork(latch_worker, (void *)(intptr_t)i);
	cr_assert_eq(shmring_latch_wait(&ls->done, 10 * T_SEC), 0);
	cr_assert_eq(shmring_latch_count(&ls->done), 0);
	/* the arrivals' writes before arrive are visible after the wait */
	for (int i = 0; i < NWORK; i++)
		cr_assert_eq(ls->work[i], 1, "worker %d arrived before its work was visible", i);
	for (int i = 0; i < NWORK; i++)
		t_expect_exit(p[i], 0, 10 * T_SEC);
}

/* ------------------------------------------------------------ start gate */

#define NGATE 8

struct gate_shared {
	struct shmring_latch ready;   /* each runner arrives just before waiting */
	struct shmring_latch gate;
	int64_t released[NGATE];      /* CLOCK_MONOTONIC ns when gate_wait returned */
	int     rc[NGATE];
};

static struct gate_shared *gs;

static int gate_runner(void *arg)
{
	int i = (int)(intptr_t)arg;
	if (shmring_latch_arrive(&gs->ready) != 0)
		return 1;
	int rc = shmring_gate_wait(&gs->gate, 20 * T_SEC);
	__atomic_store_n(&gs->released[i], t_now_ns(), __ATOMIC_RELAXED);
	gs->rc[i] = rc;
	return rc == 0 ? 0 : 2;
}

Test(latch, start_gate_releases_everyone_at_once)
{
	gs = t_shared(sizeof *gs);
	cr_assert_eq(shmring_latch_init(&gs->ready, NGATE), 0);
	cr_assert_eq(shmring_gate_init(&gs->gate), 0);
	pid_t p[NGATE];
	for (int i = 0; i < NGATE; i++)
		p[i] = t_fork(gate_runner, (void *)(intptr_t)i);
	cr_assert_eq(shmring_latch_wait(&gs->ready, 10 * T_SEC), 0, "runners did not get ready");
	/* Let them get well into their sleeps; nobody may pass meanwhile. */
	t_sleep_ns(200 * T_MS);
	for (int i = 0; i < NGATE; i++)
		cr_assert_eq(__atomic_load_n(&gs->released[i], __ATOMIC_RELAXED), 0,
		             "runner %d passed a closed gate", i);
	int64_t opened = t_now_ns();
	cr_assert_eq(shmring_gate_open(&gs->gate), 0);
	for (int i = 0; i < NGATE; i++)
		t_expect_exit(p[i], 0, 10 * T_SEC);
	int64_t worst = 0;
	for (int i = 0; i < NGATE; i++) {
		int64_t d = gs->released[i] - opened;
		cr_assert_geq(d, 0, "runner %d released %lld ns before the gate opened", i,
		              (long long)-d);
		if (d > worst)
			worst = d;
	}
	cr_assert_lt(worst, 500 * T_MS, "the last runner was released %lld ns after the open",
	             (long long)worst);
	cr_assert_eq(shmring_latch_count(&gs->gate), 0);
	cr_assert_eq(shmring_gate_open(&gs->gate), -ERANGE, "a gate opens once");
}

/* ------------------------------------------------------------ barrier */

#define NBAR 4

struct barrier_shared {
	struct shmring_latch barrier;
	int64_t arrived[NBAR];
	int64_t left[NBAR];
};

static struct barrier_shared *bs;

static int barrier_member(void *arg)
{
	int i = (int)(intptr_t)arg;
	t_sleep_ns(i * 60 * T_MS);   /* arrive one after another */
	__atomic_store_n(&bs->arrived[i], t_now_ns(), __ATOMIC_RELAXED);
	int rc = shmring_latch_arrive_and_wait(&bs->barrier, 20 * T_SEC);
	__atomic_store_n(&bs->left[i], t_now_ns(), __ATOMIC_RELAXED);
	return rc == 0 ? 0 : 1;
}

Test(latch, barrier_of_four_processes)
{
	bs = t_shared(sizeof *bs);
	cr_assert_eq(shmring_latch_init(&bs->barrier, NBAR), 0);
	pid_t p[NBAR];
	for (int i = 0; i < NBAR; i++)
		p[i] = t_fork(barrier_member, (void *)(intptr_t)i);
	for (int i = 0; i < NBAR; i++)
		t_expect_exit(p[i], 0, 10 * T_SEC);
	int64_t last_arrival = 0;
	for (int i = 0; i < NBAR; i++)
		if (bs->arrived[i] > last_arrival)
			last_arrival = bs->arrived[i];
	for (int i = 0; i < NBAR; i++) {
		cr_assert_gt(bs->arrived[i], 0);
		cr_assert_geq(bs->left[i], last_arrival,
		              "member %d left the barrier %lld ns before the last arrival", i,
		              (long long)(last_arrival - bs->left[i]));
		cr_assert_lt(bs->left[i] - last_arrival, T_WAKE_BOUND_NS);
	}
	cr_assert_eq(shmring_latch_count(&bs->barrier), 0);
}
