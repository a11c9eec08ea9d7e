/*
 * test_states.c - end of stream and broken pipe are states, not tombstones
 * (issue 11): a leftover named ring, reopened, works like a new one; a
 * producer (consumer) coming back makes gets (puts) work again; a
 * SHMRING_PERSISTENT ring never ends but by shmring_close; and
 * shmring_wait_peer.
 */
#include "common.h"

#include <stdatomic.h>

TestSuite(states, .timeout = T_TIMEOUT, .fini = t_cleanup);

static struct shmring *s_ring;

static struct shmring *s_open(const char *name)
{
	struct shmring *r = NULL;
	int rc = shmring_open(&r, name);
	cr_assert_eq(rc, 0, "open %s: %d", name, rc);
	shmring_set_spin(r, 0);
	return r;
}

static ssize_t s_get(struct shmring *r, char *buf, int64_t timeout)
{
	return shmring_get(r, buf, 64, timeout);
}

Test(states, leftover_ring_reopened_works_like_a_new_one)
{
	const char *name = t_name("leftover");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *p, *c;
	char buf[64];
	cr_assert_eq(shmring_create(&p, name, &cfg), 0);
	c = s_open(name);
	cr_assert_eq(shmring_put(p, "one", 3, 0), 0);
	cr_assert_eq(s_get(c, buf, 0), 3);
	shmring_detach(p);
	cr_assert_eq(s_get(c, buf, -1), -EPIPE, "end of stream, the ring in use");
	shmring_detach(c);

	/* Nobody attached; a new producer comes first: its puts work (before
	 * the fix: -EPIPE, a consumer had existed and none was left). */
	struct shmring *p2 = s_open(name);
	int rc = shmring_put(p2, "two", 3, 0);
	cr_assert_eq(rc, 0, "a new producer on a leftover ring: put = %d (%s)", rc,
	             shmring_strerror(rc));
	/* a new consumer: gets the record, then waits (the producer is live) */
	struct shmring *c2 = s_open(name);
	cr_assert_eq(s_get(c2, buf, 0), 3);
	cr_assert_eq(s_get(c2, buf, 0), -EAGAIN);
	/* the producer goes: end of stream for c2, a state... */
	shmring_detach(p2);
	cr_assert_eq(s_get(c2, buf, -1), -EPIPE);
	cr_assert_eq(t_info(c2).eof, 1);
	/* ...that a new producer ends: gets work again */
	struct shmring *p3 = s_open(name);
	cr_assert_eq(shmring_put(p3, "three", 5, 0), 0);
	cr_assert_eq(s_get(c2, buf, 0), 5);
	cr_assert_eq(t_info(c2).eof, 0);
	shmring_detach(p3);
	cr_assert_eq(s_get(c2, buf, -1), -EPIPE);
	shmring_detach(c2);

	/* Nobody attached, ring empty; a new consumer comes first: it waits for
	 * a producer (before the fix: -EPIPE at once). */
	struct shmring *c3 = s_open(name);
	ssize_t n = s_get(c3, buf, 0);
	cr_assert_eq(n, -EAGAIN, "a new consumer on a drained leftover ring: get = %zd", n);
	int64_t t0 = t_now_ns();
	cr_assert_eq(s_get(c3, buf, 100 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 90 * T_MS);
	cr_assert_eq(shmring_next_len(c3), -EAGAIN);
	cr_assert_eq(t_info(c3).eof, 0);
	/* a producer comes and goes: that end of stream is c3's own */
	struct shmring *p4 = s_open(name);
	cr_assert_eq(shmring_put(p4, "four", 4, 0), 0);
	shmring_detach(p4);
	cr_assert_eq(s_get(c3, buf, 0), 4);
	cr_assert_eq(s_get(c3, buf, -1), -EPIPE);
	shmring_detach(c3);
	cr_assert_eq(shmring_unlink(name), 0);
}

Test(states, records_left_in_a_leftover_ring_end_in_eof)
{
	const char *name = t_name("left-recs");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *p;
	char buf[64];
	cr_assert_eq(shmring_create(&p, name, &cfg), 0);
	cr_assert_eq(shmring_put(p, "a", 1, 0), 0);
	cr_assert_eq(shmring_put(p, "bb", 2, 0), 0);
	shmring_detach(p);
	struct shmring *c = s_open(name);
	cr_assert_eq(s_get(c, buf, 0), 1);
	cr_assert_eq(s_get(c, buf, 0), 2);
	cr_assert_eq(s_get(c, buf, -1), -EPIPE, "the stream those records came from ended");
	shmring_detach(c);
	cr_assert_eq(shmring_unlink(name), 0);
}

Test(states, broken_pipe_is_a_state_a_new_consumer_ends_it)
{
	const char *name = t_name("broken");
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *p;
	char buf[64];
	cr_assert_eq(shmring_create(&p, name, &cfg), 0);
	struct shmring *c = s_open(name);
	cr_assert_eq(shmring_declare(c, SHMRING_CONSUMER), 0);
	shmring_detach(c);
	cr_assert_eq(shmring_put(p, "x", 1, -1), -EPIPE);
	c = s_open(name);
	cr_assert_eq(shmring_declare(c, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(p, "x", 1, 0), 0, "a consumer came back: puts work again");
	cr_assert_eq(s_get(c, buf, 0), 1);
	shmring_detach(c);
	shmring_detach(p);
	cr_assert_eq(shmring_unlink(name), 0);
}

/* ------------------------------------------------------------ persistent */

static int s_producer_puts(void *arg)
{
	int n = (int)(intptr_t)arg;
	if (shmring_declare(s_ring, SHMRING_PRODUCER) != 0)
		return 10;
	for (int i = 0; i < n; i++)
		if (shmring_put(s_ring, "rec", 3, 5 * T_SEC) != 0)
			return 11;
	if (n % 2)
		shmring_detach(s_ring); /* the others exit: reaped by a sweep */
	return 0;
}

static int s_consumer_gets_one(void *arg)
{
	(void)arg;
	char buf[64];
	if (shmring_leave(s_ring, SHMRING_PRODUCER) != 0)
		return 10;
	return shmring_get(s_ring, buf, sizeof buf, 5 * T_SEC) == 3 ? 0 : 11;
}

Test(states, persistent_consumer_waits_through_producers_leaving)
{
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_PERSISTENT | SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&s_ring, NULL, &cfg), 0);
	shmring_set_spin(s_ring, 0);
	char buf[64];
	for (int round = 0; round < 2; round++) {
		int n = round ? 4 : 5; /* detach, then exit without detach */
		t_expect_exit(t_fork(s_producer_puts, (void *)(intptr_t)n), 0, 10 * T_SEC);
		for (int i = 0; i < n; i++)
			cr_assert_eq(s_get(s_ring, buf, 5 * T_SEC), 3);
		/* long enough for sweeps to have reaped the dead producer */
		ssize_t rc = s_get(s_ring, buf, 200 * T_MS);
		cr_assert_eq(rc, -ETIMEDOUT, "round %d: producers left a persistent ring: get = %zd",
		             round, rc);
		struct shmring_info in = t_info(s_ring);
		cr_assert_eq(in.producers, 0);
		cr_assert_eq(in.eof, 0);
	}
	cr_assert_eq(shmring_close(s_ring), 0);
	cr_assert_eq(s_get(s_ring, buf, -1), -EPIPE, "close still ends it");
	shmring_detach(s_ring);
}

Test(states, persistent_producer_fills_then_waits_for_a_consumer)
{
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_PERSISTENT | SHMRING_PRODUCER };
	cr_assert_eq(shmring_create(&s_ring, NULL, &cfg), 0);
	shmring_set_spin(s_ring, 0);
	cr_assert_eq(shmring_put(s_ring, "rec", 3, 0), 0);
	/* a consumer comes, takes one record and dies without detaching */
	t_expect_exit(t_fork(s_consumer_gets_one, NULL), 0, 10 * T_SEC);
	int rc;
	size_t puts = 0;
	while ((rc = shmring_put(s_ring, "rec", 3, 0)) == 0)
		puts++;
	cr_assert_eq(rc, -EAGAIN, "full, not broken: put = %d", rc);
	cr_assert_eq(puts, 4096 / SHMRING_SLOT_SIZE);
	rc = shmring_put(s_ring, "rec", 3, 200 * T_MS);
	cr_assert_eq(rc, -ETIMEDOUT, "a persistent ring waits for a consumer: put = %d", rc);
	cr_assert_eq(t_info(s_ring).consumers, 0, "the dead consumer was reaped");
	cr_assert_eq(shmring_close(s_ring), 0);
	cr_assert_eq(shmring_put(s_ring, "rec", 3, -1), -EPIPE);
	shmring_detach(s_ring);
}

Test(states, persistent_flag_is_seen_by_every_handle)
{
	const char *name = t_name("persist");
	struct shmring_config cfg = { .capacity = 4096, .flags = SHMRING_PERSISTENT };
	struct shmring *p, *c;
	char buf[64];
	cr_assert_eq(shmring_create(&p, name, &cfg), 0);
	c = s_open(name);
	cr_assert_eq(shmring_declare(c, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(p, "a", 1, 0), 0);
	shmring_detach(p);
	cr_assert_eq(s_get(c, buf, 0), 1);
	cr_assert_eq(s_get(c, buf, 50 * T_MS), -ETIMEDOUT);
	shmring_detach(c);
	cr_assert_eq(shmring_unlink(name), 0);
}

/* ------------------------------------------------------------- wait_peer */

struct s_shared {
	_Atomic int ready;
};
static struct s_shared *s_sh;

static int s_late_producer(void *arg)
{
	(void)arg;
	t_sleep_ns(200 * T_MS);
	if (shmring_declare(s_ring, SHMRING_PRODUCER) != 0)
		return 10;
	atomic_store(&s_sh->ready, 1);
	for (;;)
		pause();
	return 0;
}

Test(states, wait_peer_arguments_and_timeouts)
{
	s_ring = t_ring(4096, 0);
	cr_assert_eq(shmring_wait_peer(NULL, SHMRING_PRODUCER, 0), -EINVAL);
	cr_assert_eq(shmring_wait_peer(s_ring, 0, 0), -EINVAL);
	cr_assert_eq(shmring_wait_peer(s_ring, 0x4, 0), -EINVAL);
	cr_assert_eq(shmring_wait_peer(s_ring, SHMRING_PRODUCER, 0), -EAGAIN);
	/* this handle's own role is not a peer */
	cr_assert_eq(shmring_declare(s_ring, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_wait_peer(s_ring, SHMRING_PRODUCER | SHMRING_CONSUMER, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_wait_peer(s_ring, SHMRING_CONSUMER, 100 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 90 * T_MS);
	/* another handle of this process is */
	struct shmring *other;
	cr_assert_eq(shmring_attach_fd(&other, shmring_fd(s_ring)), 0);
	cr_assert_eq(shmring_declare(other, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_wait_peer(s_ring, SHMRING_CONSUMER, 0), 0);
	shmring_detach(other);
	cr_assert_eq(shmring_wait_peer(s_ring, SHMRING_CONSUMER, 0), -EAGAIN);
	cr_assert_eq(shmring_close(s_ring), 0);
	cr_assert_eq(shmring_wait_peer(s_ring, SHMRING_CONSUMER, -1), -EPIPE);
	shmring_detach(s_ring);
}

Test(states, wait_peer_wakes_for_an_arrival_and_ignores_the_dead)
{
	s_ring = t_ring(4096, 0);
	s_sh = t_shared(4096);
	shmring_set_spin(s_ring, 0);
	cr_assert_eq(shmring_declare(s_ring, SHMRING_CONSUMER), 0);
	pid_t pid = t_fork(s_late_producer, NULL);
	int64_t t0 = t_now_ns();
	int rc = shmring_wait_peer(s_ring, SHMRING_PRODUCER, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 0, "wait_peer = %d", rc);
	cr_assert_eq(atomic_load(&s_sh->ready) || t_info(s_ring).producers == 1, 1);
	cr_assert_geq(el, 150 * T_MS, "returned before the producer came: %lld ns", (long long)el);
	cr_assert_lt(el, T_WAKE_BOUND_NS, "woken late: %lld ns", (long long)el);
	/* the producer dies: it is no peer, however the census stood */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rc = shmring_wait_peer(s_ring, SHMRING_PRODUCER, 300 * T_MS);
	cr_assert_eq(rc, -ETIMEDOUT, "a dead producer counted as a peer: %d", rc);
	cr_assert_eq(t_info(s_ring).producers, 0);
	shmring_detach(s_ring);
}
