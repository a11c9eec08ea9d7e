/*
 * test_join.c - the join counter (JoinableQueue semantics): every successful
 * put adds one unfinished task before its record is visible, task_done takes
 * one off (-ERANGE at zero), join waits for zero.
 */
#include "common.h"

TestSuite(join, .timeout = T_TIMEOUT);

static void expect_unfinished(struct shmring *r, uint64_t n, const char *when)
{
	cr_assert_eq(shmring_unfinished(r), n, "%s: unfinished %llu, expected %llu", when,
	             (unsigned long long)shmring_unfinished(r), (unsigned long long)n);
	cr_assert_eq(t_info(r).unfinished, n, "%s: info.unfinished", when);
}

Test(join, every_successful_put_counts_once)
{
	struct shmring *r = t_ring(4096, 1000);
	expect_unfinished(r, 0, "fresh");
	cr_assert_eq(shmring_put(r, "a", 1, 0), 0);
	expect_unfinished(r, 1, "put");
	cr_assert_eq(shmring_put(r, "", 0, 0), 0);
	expect_unfinished(r, 2, "empty put");
	struct iovec iov[3] = { { "x", 1 }, { "yy", 2 }, { "zzz", 3 } };
	cr_assert_eq(shmring_putv(r, iov, 3, 0), 0);
	expect_unfinished(r, 3, "putv");
	cr_assert_eq(shmring_put_many(r, iov, 3, 0), 3);
	expect_unfinished(r, 6, "put_many of 3");
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 10, &sp, 0), 0);
	expect_unfinished(r, 6, "reserved, not committed");
	cr_assert_eq(shmring_commit(r, &sp, 5), 0);
	expect_unfinished(r, 7, "commit");
	cr_assert_eq(shmring_reserve(r, 10, &sp, 0), 0);
	cr_assert_eq(shmring_abort(r, &sp), 0);
	expect_unfinished(r, 7, "abort");
	/* failures add nothing */
	static char big[1001];
	cr_assert_eq(shmring_put(r, big, 1001, 0), -EMSGSIZE);
	expect_unfinished(r, 7, "-EMSGSIZE");
	while (shmring_put(r, big, 1000, 0) == 0)
		;
	uint64_t n = shmring_unfinished(r);
	cr_assert_eq(shmring_put(r, big, 1000, 0), -EAGAIN);
	cr_assert_eq(shmring_put(r, big, 1000, 10 * T_MS), -ETIMEDOUT);
	expect_unfinished(r, n, "-EAGAIN / -ETIMEDOUT");
	/* gets do not change it: only task_done does */
	char buf[1000];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	expect_unfinished(r, n, "after a get");
	shmring_detach(r);
}

Test(join, task_done_down_to_zero_then_erange)
{
	struct shmring *r = t_ring(4096, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_put(r, "t", 1, 0), 0);
	for (int i = 3; i > 0; i--) {
		cr_assert_eq(shmring_task_done(r), 0);
		expect_unfinished(r, (uint64_t)i - 1, "task_done");
	}
	cr_assert_eq(shmring_task_done(r), -ERANGE);
	cr_assert_eq(shmring_task_done(r), -ERANGE);
	expect_unfinished(r, 0, "after -ERANGE");
	cr_assert_eq(shmring_put(r, "t", 1, 0), 0);
	expect_unfinished(r, 1, "counts again");
	cr_assert_eq(shmring_task_done(NULL), -EINVAL);
	cr_assert_eq(shmring_join(NULL, 0), -EINVAL);
	cr_assert_eq(shmring_unfinished(NULL), 0);
	shmring_detach(r);
}

Test(join, join_timeouts)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_join(r, 0), 0, "nothing unfinished");
	cr_assert_eq(shmring_join(r, -1), 0, "nothing unfinished: no wait");
	cr_assert_eq(shmring_put(r, "t", 1, 0), 0);
	cr_assert_eq(shmring_join(r, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_join(r, 60 * T_MS), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	cr_assert_geq(el, 60 * T_MS);
	cr_assert_lt(el, 60 * T_MS + T_WAKE_BOUND_NS);
	/* taking the record is not finishing it */
	char c;
	cr_assert_eq(shmring_get(r, &c, 1, 0), 1);
	cr_assert_eq(shmring_join(r, 0), -EAGAIN);
	cr_assert_eq(shmring_task_done(r), 0);
	cr_assert_eq(shmring_join(r, 0), 0);
	shmring_detach(r);
}

/* A worker in another process takes records and finishes each after a
 * delay; join(-1) in the parent returns only after the last task_done. */
static struct shmring *jr;
static int worker(void *arg)
{
	volatile int *done_flag = arg;
	shmring_set_spin(jr, 0);
	for (int i = 0; i < 20; i++) {
		int v;
		if (shmring_get(jr, &v, sizeof v, 10 * T_SEC) != (ssize_t)sizeof v || v != i)
			return 1;
		t_sleep_ns(5 * T_MS);
		if (i == 19) {
			t_sleep_ns(100 * T_MS);
			__atomic_store_n(done_flag, 1, __ATOMIC_SEQ_CST);
		}
		if (shmring_task_done(jr) != 0)
			return 2;
	}
	return 0;
}

Test(join, join_waits_for_the_last_task_done_in_another_process)
{
	jr = t_ring(4096, 0);
	shmring_set_spin(jr, 0);
	int *flag = t_shared(4096);
	*flag = 0;
	pid_t pid = t_fork(worker, flag);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(shmring_put(jr, &i, sizeof i, 0), 0);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_join(jr, -1), 0);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(__atomic_load_n(flag, __ATOMIC_SEQ_CST), 1, "join returned before the last task_done");
	cr_assert_eq(shmring_unfinished(jr), 0);
	cr_assert_geq(el, 150 * T_MS);
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_gt(t_info(jr).futex_waits, 0, "join should have slept");
	shmring_detach(jr);
}

/* Several joiners, in several processes, all released by one task_done. */
static int joiner(void *arg)
{
	(void)arg;
	shmring_set_spin(jr, 0);
	return shmring_join(jr, 20 * T_SEC) == 0 ? 0 : 1;
}

Test(join, one_task_done_releases_every_joiner)
{
	jr = t_ring(4096, 0);
	cr_assert_eq(shmring_put(jr, "t", 1, 0), 0);
	pid_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = t_fork(joiner, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(jr).futex_waits >= 3, 10 * T_SEC);
	cr_assert(ok, "joiners did not sleep");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(waitpid(p[i], NULL, WNOHANG), 0, "joiner %d returned early", i);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_task_done(jr), 0);
	for (int i = 0; i < 3; i++)
		t_expect_exit(p[i], 0, T_WAKE_BOUND_NS);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	shmring_detach(jr);
}

/* The count goes up before a record is visible: a consumer that finishes
 * each record as soon as it has it never sees -ERANGE. */
static int fast_producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 30000; i++) {
		int rc;
		if (i % 3 == 0) {
			struct iovec iov[2] = { { &i, sizeof i }, { &i, sizeof i } };
			ssize_t k = shmring_put_many(jr, iov, 2, 10 * T_SEC);
			if (k < 1)
				return 1;
			i += (int)k - 1;
			continue;
		}
		rc = shmring_put(jr, &i, sizeof i, 10 * T_SEC);
		if (rc != 0)
			return 2;
	}
	return 0;
}

static int fast_consumer(void *arg)
{
	int *erange = arg;
	for (;;) {
		int v;
		ssize_t n = shmring_get(jr, &v, sizeof v, 10 * T_SEC);
		if (n == -EPIPE)
			return 0;
		if (n < 0)
			return 1;
		if (shmring_task_done(jr) == -ERANGE)
			__atomic_fetch_add(erange, 1, __ATOMIC_RELAXED);
	}
}

Test(join, counted_before_visible)
{
	jr = t_ring(4096, 0);
	int *erange = t_shared(4096);
	*erange = 0;
	pid_t c1 = t_fork(fast_consumer, erange), c2 = t_fork(fast_consumer, erange);
	pid_t p = t_fork(fast_producer, NULL);
	t_expect_exit(p, 0, 20 * T_SEC);
	t_expect_exit(c1, 0, 20 * T_SEC); /* end of stream once the producer is gone */
	t_expect_exit(c2, 0, 20 * T_SEC);
	cr_assert_eq(*erange, 0, "%d task_done calls found nothing unfinished", *erange);
	cr_assert_eq(shmring_unfinished(jr), 0);
	cr_assert_eq(shmring_join(jr, 0), 0);
	shmring_detach(jr);
}

/* Issue 12: a put counts its task in its own op record (one writer, no
 * locked instruction), never in a ring-wide word: the join line stays
 * untouched by puts (it held a fetch_add per put before).  White-box: tests
 * are built with -Iring. */
#include "handle.h"

Test(join, puts_leave_the_join_line_alone)
{
	struct shmring *r = t_ring(4096, 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(shmring_put(r, "t", 1, 0), 0);
	struct iovec iov[2] = { { "x", 1 }, { "yy", 2 } };
	cr_assert_eq(shmring_put_many(r, iov, 2, 0), 2);
	cr_assert_eq(atomic_load(&r->hdr->join.count), 0, "a put wrote the join counter");
	expect_unfinished(r, 12, "12 puts");
	cr_assert_eq(shmring_task_done(r), 0);
	cr_assert_eq(atomic_load(&r->hdr->join.count), 1, "task_done counts the finished");
	expect_unfinished(r, 11, "one done");
	shmring_detach(r);
}

/* The puts of a producer that has gone stay counted when its attachment
 * entry is reused by another (op records are never reset): 3 + 2 tasks,
 * five task_dones, then -ERANGE, and join returns. */
static const char *reuse_name;
static int reuse_put(void *arg)
{
	int n = (int)(intptr_t)arg;
	struct shmring *r;
	if (shmring_open(&r, reuse_name) != 0)
		return 10;
	for (int i = 0; i < n; i++)
		if (shmring_put(r, "p", 1, 0) != 0)
			return 11;
	shmring_detach(r);
	return 0;
}

Test(join, a_gone_producers_puts_stay_counted_after_its_entry_is_reused, .fini = t_cleanup)
{
	reuse_name = t_name("jreuse");
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_CONSUMER };
	struct shmring *r;
	cr_assert_eq(shmring_create(&r, reuse_name, &cfg), 0);
	t_expect_exit(t_fork(reuse_put, (void *)(intptr_t)3), 0, 10000 * T_MS);
	t_expect_exit(t_fork(reuse_put, (void *)(intptr_t)2), 0, 10000 * T_MS);
	expect_unfinished(r, 5, "3 + 2 puts by two producers, both gone");
	char b[8];
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(shmring_get(r, b, sizeof b, 0), 1);
		cr_assert_eq(shmring_task_done(r), 0);
	}
	cr_assert_eq(shmring_task_done(r), -ERANGE);
	cr_assert_eq(shmring_join(r, 0), 0);
	shmring_detach(r);
}
