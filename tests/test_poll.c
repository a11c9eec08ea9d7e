/*
 * test_poll.c - shmring_poll: many rings fed by many processes, POLLOUT,
 * timeouts, waking a sleeping poller, the fallback without futex_waitv
 * (SHMRING_NO_FUTEX_WAITV=1), closed rings, the 64-ring maximum.
 */
#include "common.h"

#include <stdatomic.h>

#include "shmring_latch.h"
#include "shmring_poll.h"

TestSuite(poll, .timeout = T_TIMEOUT);

/* ------------------------------------------------------------ helpers */

/* Run fn in a child that first sets SHMRING_NO_FUTEX_WAITV=1.  The library
 * reads the variable once per process, at the first poll that sleeps (a
 * forked child reads it afresh), so setting it in the child is enough. */
struct env_child {
	int (*fn)(void *);
	void *arg;
};

static int no_waitv_child(void *arg)
{
	struct env_child *c = arg;
	if (setenv("SHMRING_NO_FUTEX_WAITV", "1", 1) != 0)
		return 90;
	return c->fn(c->arg);
}

/* ------------------------------------------------------------ many producers */

#define NRINGS 3
#define BURSTS_OTHER 6    /* producers 1 and 2 */
#define BURSTS_FIRST 8    /* producer 0: its last burst waits for the others */
#define PER_BURST 25
#define MAX_REC 300

struct many {
	struct shmring *r[NRINGS];
	int nrecs[NRINGS];               /* records producer i puts */
	_Atomic int consumed[NRINGS];    /* the consumer's progress, for producer 0 */
	int polls;                       /* shmring_poll calls the consumer made */
};

static struct many *M;

static size_t rec_len(int ring, int k)
{
	return (size_t)(t_mix64((uint64_t)ring << 32 | (uint64_t)k) % MAX_REC);
}

static uint64_t rec_seed(int ring, int k)
{
	return (uint64_t)ring * 1000000u + (uint64_t)k;
}

/* Producer i: bursts of PER_BURST records, 30 ms apart, starting at its own
 * offset.  Producer 0 puts its last burst only once the consumer has every
 * record of the others, so ring 0 is the last one the consumer watches. */
static int many_producer(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct shmring *r = M->r[i];
	int bursts = i == 0 ? BURSTS_FIRST : BURSTS_OTHER;
	static char buf[MAX_REC];
	t_sleep_ns(i * 10 * T_MS);
	int k = 0;
	for (int b = 0; b < bursts; b++) {
		if (i == 0 && b == bursts - 1) {
			int64_t dl = t_now_ns() + 15 * T_SEC;
			while (atomic_load(&M->consumed[1]) < M->nrecs[1] ||
			       atomic_load(&M->consumed[2]) < M->nrecs[2]) {
				if (t_now_ns() > dl)
					return 10;
				t_sleep_ns(T_MS);
			}
		}
		t_sleep_ns(30 * T_MS);
		for (int j = 0; j < PER_BURST; j++, k++) {
			size_t len = rec_len(i, k);
			t_fill(buf, len, rec_seed(i, k));
			int rc = shmring_put(r, buf, len, 10 * T_SEC);
			if (rc != 0)
				return 20;
		}
	}
	return 0;
}

/* The consumer: poll the three rings, drain what is ready, check every
 * record.  Returns 0, or a code saying what went wrong. */
static int many_consume(void *arg)
{
	(void)arg;
	struct shmring_pollitem items[NRINGS];
	int total = 0, want = 0, next[NRINGS] = { 0 };
	for (int i = 0; i < NRINGS; i++) {
		items[i] = (struct shmring_pollitem){ M->r[i], SHMRING_POLLIN, 0 };
		want += M->nrecs[i];
	}
	static char buf[MAX_REC + 64];
	while (total < want) {
		int rc = shmring_poll(items, NRINGS, 10 * T_SEC);
		M->polls++;
		if (rc <= 0)
			return rc == -ETIMEDOUT ? 30 : 31;
		int seen = 0;
		for (int i = 0; i < NRINGS; i++) {
			if (items[i].revents & ~SHMRING_POLLIN)
				return 32;
			if (!items[i].revents)
				continue;
			seen++;
			for (;;) {
				ssize_t n = shmring_get(M->r[i], buf, sizeof buf, 0);
				if (n == -EAGAIN)
					break;
				if (n == -EPIPE && next[i] == M->nrecs[i])
					break; /* its producer is gone: end of stream */
				if (n < 0)
					return 33;
				if (next[i] >= M->nrecs[i])
					return 34; /* more records than were put */
				if ((size_t)n != rec_len(i, next[i]) ||
				    !t_check(buf, (size_t)n, rec_seed(i, next[i])))
					return 35;
				next[i]++;
				total++;
				atomic_store(&M->consumed[i], next[i]);
			}
			if (next[i] == M->nrecs[i])
				items[i].events = 0; /* done with this one */
		}
		if (seen != rc)
			return 36;
	}
	return 0;
}

static void many_setup(void)
{
	M = t_shared(sizeof *M);
	for (int i = 0; i < NRINGS; i++) {
		/* Big enough that no producer ever waits for room: a futex
		 * wake on a ring then comes only from waking the poller. */
		M->r[i] = t_ring(256 << 10, 0);
		M->nrecs[i] = PER_BURST * (i == 0 ? BURSTS_FIRST : BURSTS_OTHER);
		shmring_set_spin(M->r[i], 0);
	}
}

static void many_finish(pid_t *prod)
{
	for (int i = 0; i < NRINGS; i++)
		t_expect_exit(prod[i], 0, 20 * T_SEC);
	for (int i = 0; i < NRINGS; i++) {
		cr_assert_eq(atomic_load(&M->consumed[i]), M->nrecs[i], "ring %d: %d of %d records",
		             i, atomic_load(&M->consumed[i]), M->nrecs[i]);
		cr_assert_eq(t_info(M->r[i]).records, 0);
	}
}

Test(poll, three_rings_three_producers)
{
	many_setup();
	pid_t prod[NRINGS];
	for (int i = 0; i < NRINGS; i++)
		prod[i] = t_fork(many_producer, (void *)(intptr_t)i);
	int rc = many_consume(NULL);
	cr_assert_eq(rc, 0, "consumer failed with code %d after %d polls", rc, M->polls);
	many_finish(prod);
	/* The poller slept on all three words: puts on rings 1 and 2 woke it
	 * (at least once in 12 bursts 30 ms apart). */
	uint64_t w12 = t_info(M->r[1]).futex_wakes + t_info(M->r[2]).futex_wakes;
	cr_assert_gt(w12, 0, "no put on ring 1 or 2 ever found the poller asleep");
	cr_assert_gt(t_info(M->r[0]).futex_waits, 0);
	cr_log_info("polls %d, wakes %llu/%llu/%llu\n", M->polls,
	            (unsigned long long)t_info(M->r[0]).futex_wakes,
	            (unsigned long long)t_info(M->r[1]).futex_wakes,
	            (unsigned long long)t_info(M->r[2]).futex_wakes);
	for (int i = 0; i < NRINGS; i++)
		shmring_detach(M->r[i]);
}

Test(poll, three_rings_without_futex_waitv)
{
	many_setup();
	pid_t prod[NRINGS];
	for (int i = 0; i < NRINGS; i++)
		prod[i] = t_fork(many_producer, (void *)(intptr_t)i);
	struct env_child c = { many_consume, NULL };
	pid_t cons = t_fork(no_waitv_child, &c);
	t_expect_exit(cons, 0, 25 * T_SEC);
	many_finish(prod);
	/* The fallback sleeps on the first watched word only (ring 0, which
	 * stays watched to the end) and registers nowhere else: puts on rings
	 * 1 and 2 never found a registered waiter.  This shows the variable
	 * took effect (with futex_waitv they do, see the test above). */
	cr_assert_eq(t_info(M->r[1]).futex_wakes, 0);
	cr_assert_eq(t_info(M->r[2]).futex_wakes, 0);
	for (int i = 0; i < NRINGS; i++)
		shmring_detach(M->r[i]);
}

/* ------------------------------------------------------------ POLLOUT */

struct drain_arg {
	struct shmring *r;
	struct shmring_latch *go;   /* the child stays attached until this opens */
};

static int drain_one_later(void *arg)
{
	struct drain_arg *d = arg;
	/* Mid-slice (sleep slices are 50 ms, starting about when we were
	 * forked): on a slice boundary the poller may be between W4 and W1,
	 * see the room itself and need no wake, and the wake count below
	 * would be 0. */
	t_sleep_ns(125 * T_MS);
	char buf[64];
	if (shmring_get(d->r, buf, sizeof buf, 0) != 64)
		return 1;
	/* stay alive as the ring's consumer until the parent has put */
	return shmring_latch_wait(d->go, 15 * T_SEC) == 0 ? 0 : 2;
}

Test(poll, pollout_on_full_ring_wakes_when_consumer_drains)
{
	struct shmring *r = t_ring(4096, 4096);
	shmring_set_spin(r, 0);
	char rec[64];
	memset(rec, 'x', sizeof rec);
	int n = 0;
	while (shmring_put(r, rec, sizeof rec, 0) == 0)
		n++;
	cr_assert_eq(n, 4096 / 64, "one slot per record fills the ring");

	struct shmring_pollitem it = { r, SHMRING_POLLOUT, 0xdead };
	cr_assert_eq(shmring_poll(&it, 1, 0), 0);
	cr_assert_eq(it.revents, 0, "revents is cleared");
	/* readable, though */
	it.events = SHMRING_POLLIN | SHMRING_POLLOUT;
	cr_assert_eq(shmring_poll(&it, 1, 0), 1);
	cr_assert_eq(it.revents, SHMRING_POLLIN);

	struct shmring_latch *go = t_shared(sizeof *go);
	cr_assert_eq(shmring_latch_init(go, 1), 0);
	struct drain_arg d = { r, go };
	pid_t pid = t_fork(drain_one_later, &d);
	it.events = SHMRING_POLLOUT;
	int64_t t0 = t_now_ns();
	int rc = shmring_poll(&it, 1, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 1, "poll = %d", rc);
	cr_assert_eq(it.revents, SHMRING_POLLOUT);
	cr_assert_gt(el, 50 * T_MS, "ready after %lld ns: before the consumer took anything?",
	             (long long)el);
	cr_assert_eq(shmring_put(r, rec, sizeof rec, 0), 0, "POLLOUT: a small put fits");
	cr_assert_eq(shmring_put(r, rec, sizeof rec, 0), -EAGAIN, "and only one");
	cr_assert_gt(t_info(r).futex_wakes, 0, "the consumer's release woke the poller");
	cr_assert_eq(shmring_latch_arrive(go), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(r);
}

/* ------------------------------------------------------------ timeouts */

Test(poll, timeout_zero_and_etimedout)
{
	struct shmring *a = t_ring(4096, 0), *b = t_ring(4096, 0);
	struct shmring_pollitem it[2] = { { a, SHMRING_POLLIN, 77 }, { b, SHMRING_POLLIN, 77 } };
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_poll(it, 2, 0), 0);
	cr_assert_lt(t_now_ns() - t0, 50 * T_MS, "timeout 0 must not wait");
	cr_assert_eq(it[0].revents, 0);
	cr_assert_eq(it[1].revents, 0);

	int64_t tos[] = { 30 * T_MS, 250 * T_MS }; /* shorter and longer than a slice */
	for (size_t k = 0; k < 2; k++) {
		t0 = t_now_ns();
		int rc = shmring_poll(it, 2, tos[k]);
		int64_t el = t_now_ns() - t0;
		cr_assert_eq(rc, -ETIMEDOUT, "poll = %d", rc);
		cr_assert_geq(el, tos[k], "returned after %lld ns", (long long)el);
		cr_assert_lt(el, tos[k] + T_WAKE_BOUND_NS, "timed out after %lld ns", (long long)el);
	}
	/* a single ring takes the one-word path */
	t0 = t_now_ns();
	cr_assert_eq(shmring_poll(it, 1, 30 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 30 * T_MS);

	/* what is ready is reported at once, with the exact bits */
	cr_assert_eq(shmring_put(b, "hi", 2, 0), 0);
	it[0].events = SHMRING_POLLIN | SHMRING_POLLOUT;
	t0 = t_now_ns();
	cr_assert_eq(shmring_poll(it, 2, -1), 2);
	cr_assert_lt(t_now_ns() - t0, 50 * T_MS);
	cr_assert_eq(it[0].revents, SHMRING_POLLOUT, "empty ring: writable, not readable");
	cr_assert_eq(it[1].revents, SHMRING_POLLIN);
	/* items that ask for nothing are never ready */
	it[0].events = 0;
	it[1].events = 0;
	cr_assert_eq(shmring_poll(it, 2, 0), 0);
	cr_assert_eq(shmring_poll(it, 2, 20 * T_MS), -ETIMEDOUT);
	shmring_detach(a);
	shmring_detach(b);
}

Test(poll, bad_arguments)
{
	struct shmring *a = t_ring(4096, 0);
	struct shmring_pollitem it[SHMRING_POLL_MAX + 1];
	for (int i = 0; i <= SHMRING_POLL_MAX; i++)
		it[i] = (struct shmring_pollitem){ a, SHMRING_POLLOUT, 0 };
	cr_assert_eq(shmring_poll(NULL, 1, 0), -EINVAL);
	cr_assert_eq(shmring_poll(it, 0, 0), -EINVAL);
	cr_assert_eq(shmring_poll(it, SHMRING_POLL_MAX + 1, 0), -EINVAL);
	cr_assert_eq(shmring_poll(it, SHMRING_POLL_MAX, 0), SHMRING_POLL_MAX);
	it[3].ring = NULL;
	cr_assert_eq(shmring_poll(it, 5, -1), -EINVAL);
	cr_assert_eq(shmring_event_fd(NULL), -EINVAL);
	cr_assert_eq(shmring_event_ack(NULL), -EINVAL);
	cr_assert_eq(shmring_event_ack(a), -EINVAL, "ack without an event fd");
	shmring_detach(a);
}

/* ------------------------------------------------------------ waking */

struct sleeper {
	struct shmring *a, *b;
	int64_t returned;      /* CLOCK_MONOTONIC ns */
	int rc;
	unsigned rev_a, rev_b;
	int use_env;           /* SHMRING_NO_FUTEX_WAITV=1 */
};

static int poll_sleeper(void *arg)
{
	struct sleeper *s = arg;
	if (s->use_env && setenv("SHMRING_NO_FUTEX_WAITV", "1", 1) != 0)
		return 90;
	struct shmring_pollitem it[2] = { { s->a, SHMRING_POLLIN, 0 },
		                          { s->b, SHMRING_POLLIN, 0 } };
	int rc = shmring_poll(it, 2, 20 * T_SEC);
	s->returned = t_now_ns();
	s->rc = rc;
	s->rev_a = it[0].revents;
	s->rev_b = it[1].revents;
	return 0;
}

/* A poller asleep in a child on rings a and b; the parent acts on b (a put,
 * or a close) and the child must return promptly with b readable. */
static void wake_sleeper(int use_env, int by_close)
{
	struct sleeper *s = t_shared(sizeof *s);
	s->a = t_ring(4096, 0);
	s->b = t_ring(4096, 0);
	s->use_env = use_env;
	shmring_set_spin(s->a, 0);
	shmring_set_spin(s->b, 0);
	pid_t pid = t_fork(poll_sleeper, s);
	int asleep;
	T_POLL_UNTIL(asleep, t_info(s->a).futex_waits > 0, 10 * T_SEC);
	cr_assert(asleep, "the poller never slept");
	if (!use_env)
		cr_assert_gt(t_info(s->b).futex_waits, 0, "futex_waitv counts on every ring");
	t_sleep_ns(30 * T_MS);
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the poller returned with nothing ready");
	int64_t t0 = t_now_ns();
	if (by_close)
		cr_assert_eq(shmring_close(s->b), 0);
	else
		cr_assert_eq(shmring_put(s->b, "wake", 4, 0), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	int64_t el = s->returned - t0;
	cr_assert_eq(s->rc, 1, "poll = %d", s->rc);
	cr_assert_eq(s->rev_a, 0);
	cr_assert_eq(s->rev_b, SHMRING_POLLIN);
	cr_assert_geq(el, 0, "the poller returned before the put");
	cr_assert_lt(el, T_WAKE_BOUND_NS, "woken after %lld ns", (long long)el);
	if (!use_env)
		cr_assert_gt(t_info(s->b).futex_wakes, 0, "the put found the poller registered");
	else
		cr_assert_eq(t_info(s->b).futex_wakes, 0,
		             "the fallback registers on the first ring only");
	cr_log_info("woken after %lld us\n", (long long)el / 1000);
	shmring_detach(s->a);
	shmring_detach(s->b);
}

Test(poll, sleeping_poller_in_child_woken_by_put)
{
	wake_sleeper(0, 0);
}

Test(poll, sleeping_poller_woken_by_put_without_futex_waitv)
{
	wake_sleeper(1, 0);
}

Test(poll, sleeping_poller_woken_by_close)
{
	wake_sleeper(0, 1);
}

/* ------------------------------------------------------------ closed */

Test(poll, closed_ring_polls_readable_and_writable)
{
	struct shmring *r = t_ring(4096, 4096), *other = t_ring(4096, 0);
	static char big[4096];
	cr_assert_eq(shmring_put(r, big, sizeof big, 0), 0);     /* full */
	struct shmring_pollitem it[2] = { { other, SHMRING_POLLIN, 0 }, { r, SHMRING_POLLOUT, 0 } };
	cr_assert_eq(shmring_poll(it, 2, 0), 0);
	char buf[4096];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 4096);  /* now empty */
	it[1].events = SHMRING_POLLIN;
	cr_assert_eq(shmring_poll(it, 2, 0), 0);
	cr_assert_eq(shmring_close(r), 0);
	it[1].events = SHMRING_POLLIN | SHMRING_POLLOUT;
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_poll(it, 2, -1), 1);
	cr_assert_lt(t_now_ns() - t0, 50 * T_MS);
	cr_assert_eq(it[0].revents, 0);
	cr_assert_eq(it[1].revents, SHMRING_POLLIN | SHMRING_POLLOUT,
	             "closed: a get and a put would both return at once (-EPIPE)");
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(r);
	shmring_detach(other);
}

/* ------------------------------------------------------------ duplicates */

static struct shmring *dup_ring;
static int put_later(void *arg)
{
	(void)arg;
	t_sleep_ns(75 * T_MS); /* mid-slice, as in drain_one_later */
	return shmring_put(dup_ring, "d", 1, 0) == 0 ? 0 : 1;
}

Test(poll, same_ring_in_several_items)
{
	dup_ring = t_ring(4096, 0);
	shmring_set_spin(dup_ring, 0);
	/* a producer stays: the child's exit must not end the stream */
	cr_assert_eq(shmring_declare(dup_ring, SHMRING_PRODUCER), 0);
	struct shmring *other = t_ring(4096, 0);
	struct shmring_pollitem it[3] = { { dup_ring, SHMRING_POLLIN, 0 },
		                          { other, SHMRING_POLLIN, 0 },
		                          { dup_ring, SHMRING_POLLIN, 0 } };
	pid_t pid = t_fork(put_later, NULL);
	int rc = shmring_poll(it, 3, 10 * T_SEC);
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_eq(rc, 2, "poll = %d", rc);
	cr_assert_eq(it[0].revents, SHMRING_POLLIN);
	cr_assert_eq(it[1].revents, 0);
	cr_assert_eq(it[2].revents, SHMRING_POLLIN);
	char c;
	cr_assert_eq(shmring_get(dup_ring, &c, 1, 0), 1);
	cr_assert_eq(shmring_poll(it, 3, 20 * T_MS), -ETIMEDOUT);
	uint64_t wakes = t_info(dup_ring).futex_wakes;
	cr_assert_eq(shmring_put(dup_ring, "e", 1, 0), 0);
	cr_assert_eq(t_info(dup_ring).futex_wakes, wakes,
	             "nobody is registered after poll returned: a put makes no wake");
	shmring_detach(dup_ring);
	shmring_detach(other);
}

/* ------------------------------------------------------------ 64 rings */

#define NMAX SHMRING_POLL_MAX

struct maxpoll {
	struct shmring *r[NMAX];
	int rc;
	unsigned rev[NMAX];
};

static int max_sleeper(void *arg)
{
	struct maxpoll *m = arg;
	struct shmring_pollitem it[NMAX];
	for (int i = 0; i < NMAX; i++)
		it[i] = (struct shmring_pollitem){ m->r[i], SHMRING_POLLIN | SHMRING_POLLOUT, 0 };
	m->rc = shmring_poll(it, NMAX, 20 * T_SEC);
	for (int i = 0; i < NMAX; i++)
		m->rev[i] = it[i].revents;
	return 0;
}

/* 64 rings, each neither readable nor writable (one uncommitted reservation
 * fills it): 128 futex words, futex_waitv's maximum. */
Test(poll, sixty_four_rings_both_directions)
{
	struct maxpoll *m = t_shared(sizeof *m);
	struct shmring_span sp[NMAX];
	for (int i = 0; i < NMAX; i++) {
		m->r[i] = t_ring(4096, 4096);
		shmring_set_spin(m->r[i], 0);
		cr_assert_eq(shmring_reserve(m->r[i], 4096, &sp[i], 0), 0);
	}
	struct shmring_pollitem it = { m->r[5], SHMRING_POLLIN | SHMRING_POLLOUT, 0 };
	cr_assert_eq(shmring_poll(&it, 1, 0), 0, "a reserved ring is neither readable nor writable");
	pid_t pid = t_fork(max_sleeper, m);
	int asleep;
	T_POLL_UNTIL(asleep, t_info(m->r[NMAX - 1]).futex_waits >= 2, 10 * T_SEC);
	cr_assert(asleep, "the poller never slept on the last ring's two words");
	t_sleep_ns(20 * T_MS);
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0);
	cr_assert_eq(shmring_commit(m->r[37], &sp[37], 10), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_eq(m->rc, 1, "poll = %d", m->rc);
	for (int i = 0; i < NMAX; i++)
		cr_assert_eq(m->rev[i], i == 37 ? SHMRING_POLLIN : 0u, "ring %d: revents %u", i,
		             m->rev[i]);
	for (int i = 0; i < NMAX; i++) {
		if (i != 37)
			cr_assert_eq(shmring_abort(m->r[i], &sp[i]), 0);
		shmring_detach(m->r[i]);
	}
}

/* ------------------------------------------------------------ dead peers */

static struct shmring *dp_ring;
static int put_one_and_die(void *arg)
{
	(void)arg;
	return shmring_put(dp_ring, "last", 4, 0) == 0 ? 0 : 1;
	/* _exit without detaching: only a sweep can tell it is gone */
}

/* A sleeping poller notices a producer that died (its sweeps, after each
 * sleep slice): end of stream polls readable. */
Test(poll, dead_producer_polls_readable)
{
	struct shmring *other = t_ring(4096, 0);
	dp_ring = t_ring(4096, 0);
	shmring_set_spin(dp_ring, 0);
	shmring_set_spin(other, 0);
	pid_t pid = t_fork(put_one_and_die, NULL);
	struct shmring_pollitem it[2] = { { other, SHMRING_POLLIN, 0 }, { dp_ring, SHMRING_POLLIN, 0 } };
	cr_assert_eq(shmring_poll(it, 2, 10 * T_SEC), 1);
	cr_assert_eq(it[1].revents, SHMRING_POLLIN);
	char buf[8];
	cr_assert_eq(shmring_get(dp_ring, buf, sizeof buf, 0), 4);
	t_expect_exit(pid, 0, 5 * T_SEC); /* dead (and reaped by waitpid) */
	int64_t t0 = t_now_ns();
	int rc = shmring_poll(it, 2, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 1, "poll = %d", rc);
	cr_assert_eq(it[1].revents, SHMRING_POLLIN, "end of stream is readable");
	cr_assert_lt(el, T_WAKE_BOUND_NS, "noticed after %lld ns", (long long)el);
	cr_assert_eq(shmring_get(dp_ring, buf, sizeof buf, 0), -EPIPE);
	cr_log_info("dead producer noticed after %lld ms\n", (long long)el / T_MS);
	shmring_detach(dp_ring);
	shmring_detach(other);
}

static int consume_nothing_and_die(void *arg)
{
	(void)arg;
	return shmring_declare(dp_ring, SHMRING_CONSUMER) == 0 ? 0 : 1;
}

/* The only consumer dies: a poller waiting for room on a full ring wakes
 * with POLLOUT, and the put fails with -EPIPE (broken pipe). */
Test(poll, dead_consumer_polls_writable)
{
	dp_ring = t_ring(4096, 4096);
	shmring_set_spin(dp_ring, 0);
	static char big[4096];
	cr_assert_eq(shmring_put(dp_ring, big, sizeof big, 0), 0);
	pid_t pid = t_fork(consume_nothing_and_die, NULL);
	t_expect_exit(pid, 0, 5 * T_SEC);
	struct shmring_pollitem it = { dp_ring, SHMRING_POLLOUT, 0 };
	int64_t t0 = t_now_ns();
	int rc = shmring_poll(&it, 1, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 1, "poll = %d", rc);
	cr_assert_eq(it.revents, SHMRING_POLLOUT);
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	cr_assert_eq(shmring_put(dp_ring, "x", 1, 0), -EPIPE);
	shmring_detach(dp_ring);
}

/* Without sleeping: a caller that polls with timeout 0 in a loop notices a
 * dead producer too (sweeps once the ring has stood still for 50 ms). */
Test(poll, dead_producer_seen_by_timeout_zero_polls)
{
	dp_ring = t_ring(4096, 0);
	pid_t pid = t_fork(put_one_and_die, NULL);
	t_expect_exit(pid, 0, 5 * T_SEC);
	char buf[8];
	cr_assert_eq(shmring_get(dp_ring, buf, sizeof buf, 0), 4);
	struct shmring_pollitem it = { dp_ring, SHMRING_POLLIN, 0 };
	int rc = 0;
	int64_t dl = t_now_ns() + 5 * T_SEC;
	while ((rc = shmring_poll(&it, 1, 0)) == 0 && t_now_ns() < dl)
		t_sleep_ns(T_MS);
	cr_assert_eq(rc, 1, "timeout-0 polls never saw the end of stream");
	cr_assert_eq(shmring_get(dp_ring, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(dp_ring);
}
