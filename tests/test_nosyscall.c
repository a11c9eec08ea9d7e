/*
 * test_nosyscall.c - the fast path makes no futex calls: with nobody asleep,
 * long runs of put/get (in one process, and between two processes that never
 * block) leave shmring_info().futex_waits and .futex_wakes unchanged.  And
 * the converse, so that the counters are known to move: a consumer that
 * sleeps shows futex_waits > 0, and the put that wakes it futex_wakes > 0.
 */
#include "common.h"

#include <sched.h>

TestSuite(nosyscall, .timeout = T_TIMEOUT);

static void expect_counters(struct shmring *r, uint64_t waits, uint64_t wakes, const char *when)
{
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.futex_waits, waits, "%s: futex_waits %llu, expected %llu", when,
	             (unsigned long long)in.futex_waits, (unsigned long long)waits);
	cr_assert_eq(in.futex_wakes, wakes, "%s: futex_wakes %llu, expected %llu", when,
	             (unsigned long long)in.futex_wakes, (unsigned long long)wakes);
}

Test(nosyscall, one_process_put_get_never_calls_futex)
{
	struct shmring *r = t_ring(4096, 0);
	expect_counters(r, 0, 0, "fresh ring");
	char buf[1024];
	uint64_t rng = 5;
	/* alternate, and in bursts up to full and down to empty; with timeout 0,
	 * with an infinite timeout (never needed), and with a finite one */
	for (int i = 0; i < 50000; i++) {
		size_t len = t_rand(&rng) % 200;
		int64_t to = i % 3 == 0 ? 0 : i % 3 == 1 ? -1 : T_SEC;
		cr_assert_eq(shmring_put(r, buf, len, to), 0);
		cr_assert_eq(shmring_get(r, buf, sizeof buf, to), (ssize_t)len);
	}
	expect_counters(r, 0, 0, "after alternating put/get");
	for (int lap = 0; lap < 200; lap++) {
		int n = 0;
		while (shmring_put(r, buf, 100, 0) == 0)
			n++;
		cr_assert_eq(n, 4096 / 128, "two-slot records in a 64-slot ring");
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 100);
		cr_assert_eq(shmring_put(r, buf, 100, -1), 0, "room for one, must not wait");
		while (shmring_get(r, buf, sizeof buf, 0) == 100)
			n--;
		cr_assert_eq(n, 0);
	}
	expect_counters(r, 0, 0, "after filling and draining with -EAGAIN on both ends");
	/* the other calls too */
	for (int i = 0; i < 2000; i++) {
		struct shmring_span sp;
		cr_assert_eq(shmring_reserve(r, 300, &sp, -1), 0);
		cr_assert_eq(shmring_commit(r, &sp, 10), 0);
		cr_assert_eq(shmring_peek(r, &sp, -1), 10);
		cr_assert_eq(shmring_release(r, &sp), 0);
		cr_assert_eq(shmring_reserve(r, 30, &sp, 0), 0);
		cr_assert_eq(shmring_abort(r, &sp), 0);
		struct iovec recs[3] = { { buf, 1 }, { buf, 100 }, { buf, 0 } };
		cr_assert_eq(shmring_put_many(r, recs, 3, -1), 3);
		cr_assert_eq(shmring_putv(r, recs, 3, -1), 0);
		_Alignas(8) char many[512];
		struct iovec got[8];
		cr_assert_eq(shmring_get_many(r, many, sizeof many, got, 8, -1), 4);
		cr_assert_eq(shmring_next_len(r), -EAGAIN);
	}
	expect_counters(r, 0, 0, "after zero-copy and batch calls");
	shmring_detach(r);
}

#define NS_RECORDS 100000

static struct shmring *ns_ring;

/* Never blocks: timeout 0, yield and retry on -EAGAIN. */
static int ns_producer(void *arg)
{
	(void)arg;
	char buf[256];
	for (uint32_t i = 0; i < NS_RECORDS; i++) {
		size_t len = 4 + i % 200;
		memcpy(buf, &i, 4);
		int rc;
		while ((rc = shmring_put(ns_ring, buf, len, 0)) == -EAGAIN)
			sched_yield();
		if (rc != 0)
			return 1;
	}
	return 0;
}

Test(nosyscall, two_processes_that_never_block_never_call_futex)
{
	ns_ring = t_ring(8192, 0);
	pid_t pid = t_fork(ns_producer, NULL);
	char buf[256];
	uint64_t eagain = 0;
	for (uint32_t i = 0; i < NS_RECORDS; i++) {
		ssize_t n;
		while ((n = shmring_get(ns_ring, buf, sizeof buf, 0)) == -EAGAIN) {
			eagain++;
			sched_yield();
		}
		cr_assert_eq(n, (ssize_t)(4 + i % 200), "record %u", i);
		uint32_t v;
		memcpy(&v, buf, 4);
		cr_assert_eq(v, i);
	}
	t_expect_exit(pid, 0, 20 * T_SEC);
	expect_counters(ns_ring, 0, 0, "two processes, timeout 0 only");
	cr_log_info("consumer saw -EAGAIN %llu times", (unsigned long long)eagain);
	shmring_detach(ns_ring);
}

/* A ring big enough that the producer never fills it, and a consumer that
 * starts only when all is in: blocking calls, but no waiting. */
static int ns_bulk_producer(void *arg)
{
	(void)arg;
	char buf[64] = { 0 };
	for (int i = 0; i < 20000; i++)
		if (shmring_put(ns_ring, buf, 64, -1) != 0)
			return 1;
	return 0;
}

Test(nosyscall, blocking_calls_that_need_not_wait_never_call_futex)
{
	ns_ring = t_ring(20000 * 64, 0); /* rounds up to 2 MiB */
	pid_t pid = t_fork(ns_bulk_producer, NULL);
	t_expect_exit(pid, 0, 20 * T_SEC);
	char buf[64];
	for (int i = 0; i < 20000; i++)
		cr_assert_eq(shmring_get(ns_ring, buf, sizeof buf, -1), 64);
	expect_counters(ns_ring, 0, 0, "blocking calls that never had to wait");
	shmring_detach(ns_ring);
}

/* ------------------------------------------------------------ converse */

static int ns_sleeper(void *arg)
{
	(void)arg;
	shmring_set_spin(ns_ring, 0);
	char buf[16];
	ssize_t n = shmring_get(ns_ring, buf, sizeof buf, 10 * T_SEC);
	return n == 2 ? 0 : 1;
}

Test(nosyscall, a_sleeping_consumer_is_counted)
{
	ns_ring = t_ring(4096, 0);
	expect_counters(ns_ring, 0, 0, "fresh ring");
	pid_t pid = t_fork(ns_sleeper, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(ns_ring).futex_waits > 0, 10 * T_SEC);
	cr_assert(ok, "futex_waits stayed 0 while a consumer waited in get");
	cr_assert_eq(t_info(ns_ring).futex_wakes, 0, "a wake with no producer yet");
	cr_assert_eq(shmring_put(ns_ring, "hi", 2, 0), 0);
	t_expect_exit(pid, 0, T_WAKE_BOUND_NS);
	struct shmring_info in = t_info(ns_ring);
	cr_assert_gt(in.futex_waits, 0);
	cr_assert_gt(in.futex_wakes, 0, "the put that woke the consumer was not counted");
	shmring_detach(ns_ring);
}

Test(nosyscall, a_timed_out_wait_is_counted_in_process)
{
	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 20 * T_MS), -ETIMEDOUT);
	cr_assert_gt(t_info(r).futex_waits, 0, "a 20 ms wait with spin 0 did not sleep");
	/* nobody is asleep now: a put must not wake anybody */
	uint64_t wakes = t_info(r).futex_wakes;
	cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
	cr_assert_eq(t_info(r).futex_wakes, wakes, "FUTEX_WAKE with no sleeper left");
	shmring_detach(r);
}
