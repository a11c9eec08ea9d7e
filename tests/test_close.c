/*
 * test_close.c - shmring_close: puts fail with -EPIPE, gets drain then fail
 * with -EPIPE, every sleeper (in any process, on any waiting call) wakes at
 * once, idempotence, visibility through other handles.
 */
#include "common.h"

TestSuite(close, .timeout = T_TIMEOUT, .fini = t_cleanup);

Test(close, puts_fail_with_epipe)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_close(r), 0);
	cr_assert_eq(shmring_put(r, "x", 1, 0), -EPIPE);
	cr_assert_eq(shmring_put(r, "x", 1, -1), -EPIPE, "must not block on a closed ring");
	cr_assert_eq(shmring_put(r, "x", 1, 50 * T_MS), -EPIPE);
	cr_assert_eq(shmring_put(r, "x", 0, 0), -EPIPE);
	struct iovec iov[2] = { { "a", 1 }, { "b", 1 } };
	cr_assert_eq(shmring_putv(r, iov, 2, -1), -EPIPE);
	cr_assert_eq(shmring_put_many(r, iov, 2, -1), -EPIPE);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 10, &sp, -1), -EPIPE);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.closed, 1);
	cr_assert_eq(in.records, 0);
	shmring_detach(r);
}

Test(close, gets_drain_then_epipe)
{
	struct shmring *r = t_ring(4096, 0);
	for (int i = 0; i < 5; i++) {
		char b[32];
		t_fill(b, (size_t)i * 7, (uint64_t)i);
		cr_assert_eq(shmring_put(r, b, (size_t)i * 7, 0), 0);
	}
	cr_assert_eq(shmring_close(r), 0);
	cr_assert_eq(t_info(r).records, 5);
	char buf[64];
	/* get */
	cr_assert_eq(shmring_next_len(r), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), 0);
	cr_assert_eq(shmring_get(r, buf, 3, 0), -EMSGSIZE, "a too-small buffer is still -EMSGSIZE");
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 7);
	cr_assert(t_check(buf, 7, 1));
	/* peek */
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(r, &sp, -1), 14);
	cr_assert(t_check(sp.data, 14, 2));
	cr_assert_eq(shmring_release(r, &sp), 0);
	/* get_many */
	_Alignas(8) char many[256];
	struct iovec recs[8];
	cr_assert_eq(shmring_get_many(r, many, sizeof many, recs, 8, -1), 2);
	cr_assert_eq(recs[0].iov_len, 21);
	cr_assert(t_check(recs[0].iov_base, 21, 3));
	cr_assert_eq(recs[1].iov_len, 28);
	cr_assert(t_check(recs[1].iov_base, 28, 4));
	/* now empty and closed: -EPIPE from every taking call, never blocking */
	cr_assert_eq(shmring_next_len(r), -EPIPE);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EPIPE);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), -EPIPE);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 50 * T_MS), -EPIPE);
	cr_assert_eq(shmring_peek(r, &sp, -1), -EPIPE);
	cr_assert_eq(shmring_get_many(r, many, sizeof many, recs, 8, -1), -EPIPE);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.closed, 1);
	cr_assert_eq(in.records, 0);
	cr_assert_eq(in.used, 0);
	shmring_detach(r);
}

Test(close, is_idempotent)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_put(r, "k", 1, 0), 0);
	cr_assert_eq(shmring_close(r), 0);
	cr_assert_eq(shmring_close(r), 0);
	cr_assert_eq(shmring_close(r), 0);
	char c;
	cr_assert_eq(shmring_get(r, &c, 1, 0), 1, "a second close must not lose records");
	cr_assert_eq(shmring_get(r, &c, 1, 0), -EPIPE);
	cr_assert_eq(shmring_close(r), 0);
	cr_assert_eq(shmring_close(NULL), -EINVAL);
	shmring_detach(r);
}

Test(close, visible_through_every_handle)
{
	const char *name = t_name("closevis");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *a = NULL, *b = NULL, *c = NULL;
	cr_assert_eq(shmring_create(&a, name, &cfg), 0);
	cr_assert_eq(shmring_open(&b, name), 0);
	cr_assert_eq(shmring_put(a, "left", 4, 0), 0);
	cr_assert_eq(shmring_close(b), 0);
	cr_assert_eq(t_info(a).closed, 1);
	cr_assert_eq(shmring_put(a, "x", 1, 0), -EPIPE);
	/* a handle attached after the close sees it closed too */
	cr_assert_eq(shmring_open(&c, name), 0);
	cr_assert_eq(t_info(c).closed, 1);
	char buf[8];
	cr_assert_eq(shmring_get(c, buf, sizeof buf, 0), 4);
	cr_assert_eq(shmring_get(a, buf, sizeof buf, -1), -EPIPE);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(a);
	shmring_detach(b);
	shmring_detach(c);
}

/* ------------------------------------------------------------ sleepers */

enum waiter_kind { W_GET, W_PEEK, W_GET_MANY, W_PUT, W_PUTV, W_PUT_MANY, W_RESERVE, W_NKINDS };
static const char *const kind_name[] = { "get", "peek", "get_many", "put",
	                                 "putv", "put_many", "reserve" };

struct waiter {
	struct shmring *r;
	enum waiter_kind kind;
	int64_t timeout;
};

/* Exit 0 if the waiting call ended with -EPIPE, else 100 + (-rc) (clamped). */
static int waiter_child(void *arg)
{
	struct waiter *w = arg;
	shmring_set_spin(w->r, 0);
	static char buf[4096];
	_Alignas(8) static char many[4096];
	struct iovec recs[4], iov[2] = { { buf, 1 }, { buf, 2 } };
	struct shmring_span sp;
	long rc;
	switch (w->kind) {
	case W_GET: rc = shmring_get(w->r, buf, sizeof buf, w->timeout); break;
	case W_PEEK: rc = shmring_peek(w->r, &sp, w->timeout); break;
	case W_GET_MANY: rc = shmring_get_many(w->r, many, sizeof many, recs, 4, w->timeout); break;
	case W_PUT: rc = shmring_put(w->r, buf, 10, w->timeout); break;
	case W_PUTV: rc = shmring_putv(w->r, iov, 2, w->timeout); break;
	case W_PUT_MANY: rc = shmring_put_many(w->r, iov, 2, w->timeout); break;
	case W_RESERVE: rc = shmring_reserve(w->r, 10, &sp, w->timeout); break;
	default: rc = -9999;
	}
	if (rc == -EPIPE)
		return 0;
	if (rc >= 0)
		return 1;
	return rc < -150 ? 250 : (int)(100 - rc);
}

/* Sleepers of every kind in separate processes; close from the parent; all
 * must return -EPIPE within the wake bound. */
static void sleepers_wake_on_close(int64_t timeout)
{
	struct shmring *empty = t_ring(4096, 4096);
	struct shmring *full = t_ring(4096, 4096);
	static char big[4096];
	cr_assert_eq(shmring_put(full, big, 4096, 0), 0);

	struct waiter ws[W_NKINDS];
	pid_t pids[W_NKINDS];
	for (int k = 0; k < W_NKINDS; k++) {
		ws[k].kind = (enum waiter_kind)k;
		ws[k].r = k < W_PUT ? empty : full;
		ws[k].timeout = timeout;
		pids[k] = t_fork(waiter_child, &ws[k]);
	}
	/* wait until every child is asleep on the futex (the counters say so) */
	int asleep;
	T_POLL_UNTIL(asleep, t_info(empty).futex_waits >= 3 && t_info(full).futex_waits >= 4,
	             10 * T_SEC);
	cr_assert(asleep, "waiters did not go to sleep: futex_waits empty=%llu full=%llu",
	          (unsigned long long)t_info(empty).futex_waits,
	          (unsigned long long)t_info(full).futex_waits);
	t_sleep_ns(20 * T_MS);
	/* nobody has returned yet */
	for (int k = 0; k < W_NKINDS; k++)
		cr_assert_eq(waitpid(pids[k], NULL, WNOHANG), 0, "%s waiter returned before close",
		             kind_name[k]);

	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_close(empty), 0);
	cr_assert_eq(shmring_close(full), 0);
	for (int k = 0; k < W_NKINDS; k++) {
		int st = t_wait_status(pids[k], T_WAKE_BOUND_NS - (t_now_ns() - t0) + T_MS);
		char b[96];
		cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		          "%s waiter: %s (0 = -EPIPE, 1 = success, 100+e = -e)", kind_name[k],
		          t_status_str(st, b, sizeof b));
	}
	int64_t el = t_now_ns() - t0;
	cr_assert_lt(el, T_WAKE_BOUND_NS, "waking took %lld ns", (long long)el);
	cr_assert_gt(t_info(empty).futex_wakes, 0);
	cr_assert_gt(t_info(full).futex_wakes, 0);
	shmring_detach(empty);
	shmring_detach(full);
}

Test(close, wakes_infinite_sleepers_in_other_processes)
{
	sleepers_wake_on_close(-1);
}

Test(close, wakes_timed_sleepers_in_other_processes)
{
	sleepers_wake_on_close(20 * T_SEC);
}

static struct shmring *closer_ring;
static int closer_child(void *arg)
{
	(void)arg;
	t_sleep_ns(100 * T_MS);
	return shmring_close(closer_ring) == 0 ? 0 : 1;
}

/* The closing process is another one; the sleeper is this one. */
Test(close, close_from_another_process_wakes_us)
{
	closer_ring = t_ring(4096, 0);
	shmring_set_spin(closer_ring, 0);
	pid_t pid = t_fork(closer_child, NULL);
	char buf[16];
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(closer_ring, buf, sizeof buf, -1);
	int64_t el = t_now_ns() - t0;
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_eq(n, -EPIPE);
	cr_assert_lt(el, 100 * T_MS + T_WAKE_BOUND_NS);
	shmring_detach(closer_ring);
}

/* Records put before close are all delivered to consumers in other
 * processes before they see -EPIPE. */
static struct shmring *drain_ring;
static int drain_child(void *arg)
{
	int *count = arg;
	char buf[64];
	for (;;) {
		ssize_t n = shmring_get(drain_ring, buf, sizeof buf, -1);
		if (n == -EPIPE)
			return 0;
		if (n != 8)
			return 1;
		__atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
	}
}

Test(close, consumers_in_other_processes_drain_before_epipe)
{
	drain_ring = t_ring(1 << 16, 0);
	int *count = t_shared(4096);
	const int n = 500;
	for (int i = 0; i < n; i++)
		cr_assert_eq(shmring_put(drain_ring, "12345678", 8, 0), 0);
	cr_assert_eq(shmring_close(drain_ring), 0);
	pid_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = t_fork(drain_child, count);
	for (int i = 0; i < 3; i++)
		t_expect_exit(p[i], 0, 10 * T_SEC);
	cr_assert_eq(*count, n);
	shmring_detach(drain_ring);
}

/* A reservation in flight when the ring closes is still delivered once it is
 * committed; an aborted one is skipped; then -EPIPE. */
Test(close, in_flight_reservations_drain_after_close)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span a, b;
	cr_assert_eq(shmring_reserve(r, 100, &a, 0), 0);
	cr_assert_eq(shmring_reserve(r, 100, &b, 0), 0);
	cr_assert_eq(shmring_close(r), 0);
	char buf[128];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN,
	             "closed but a record is in flight: not -EPIPE yet");
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	memcpy(a.data, "committed", 9);
	cr_assert_eq(shmring_commit(r, &a, 9), 0);
	cr_assert_eq(shmring_abort(r, &b), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 9);
	cr_assert_eq(memcmp(buf, "committed", 9), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), -EPIPE);
	shmring_detach(r);
}

/* A consumer waiting on a closed ring for a record still in flight waits
 * without burning CPU (it is asleep, not spinning), and times out. */
Test(close, waiting_for_in_flight_record_after_close_does_not_spin)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span a;
	cr_assert_eq(shmring_reserve(r, 10, &a, 0), 0);
	cr_assert_eq(shmring_close(r), 0);
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	int64_t t0 = t_now_ns();
	char buf[16];
	ssize_t n = shmring_get(r, buf, sizeof buf, 300 * T_MS);
	int64_t el = t_now_ns() - t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	int64_t cpu = (int64_t)(c1.tv_sec - c0.tv_sec) * T_SEC + (c1.tv_nsec - c0.tv_nsec);
	cr_assert_eq(n, -ETIMEDOUT, "get = %zd", n);
	cr_assert_geq(el, 300 * T_MS);
	cr_assert_lt(cpu, 150 * T_MS, "a 300 ms wait burned %lld ms of CPU", (long long)(cpu / T_MS));
	cr_assert_eq(shmring_abort(r, &a), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(r);
}
