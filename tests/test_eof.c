/*
 * test_eof.c - roles, end of stream and broken pipe, with real processes:
 *   - EOF once the last producer detaches (a sleeping consumer wakes at once)
 *     or is killed (noticed by a liveness sweep: the delay is measured);
 *   - no EOF before any producer has existed;
 *   - the fork-pool idiom (declare, fork, leave) never yields a premature EOF;
 *   - broken pipe once every consumer has detached or died; a ring nobody
 *     has consumed from yet accepts puts until it is full;
 *   - handles inherited across fork: declared roles are the child's own,
 *     implicit ones are not inherited;
 *   - shmring_declare/shmring_leave arguments, and the counts in info.
 */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

#include "shmring_latch.h"

TestSuite(eof, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* A record: who put it, which one, then a t_fill payload. */
struct rec_hdr {
	uint32_t producer, seq;
};
#define REC_MAX 256

static uint64_t rec_seed(uint32_t p, uint32_t s)
{
	return ((uint64_t)p << 32) | s;
}

static size_t rec_len(uint32_t p, uint32_t s)
{
	return sizeof(struct rec_hdr) + (size_t)(t_mix64(rec_seed(p, s)) % 120);
}

static int rec_put(struct shmring *r, uint32_t p, uint32_t s, int64_t timeout)
{
	unsigned char buf[REC_MAX];
	struct rec_hdr h = { p, s };
	size_t len = rec_len(p, s);
	memcpy(buf, &h, sizeof h);
	t_fill(buf + sizeof h, len - sizeof h, rec_seed(p, s));
	return shmring_put(r, buf, len, timeout);
}

/* 1 if buf[0..n) is a well-formed record; its header in *h. */
static int rec_ok(const unsigned char *buf, ssize_t n, struct rec_hdr *h)
{
	if (n < (ssize_t)sizeof *h)
		return 0;
	memcpy(h, buf, sizeof *h);
	return (size_t)n == rec_len(h->producer, h->seq) &&
	       t_check(buf + sizeof *h, (size_t)n - sizeof *h, rec_seed(h->producer, h->seq));
}

/* Wait (polling info, no ring wait of our own) until futex_waits > base:
 * some process is asleep on the ring.  1 if so within timeout_ns. */
static int wait_for_sleeper(struct shmring *r, uint64_t base, int64_t timeout_ns)
{
	int64_t dl = t_now_ns() + timeout_ns;
	struct shmring_info in;
	while (shmring_info(r, &in) == 0 && in.futex_waits <= base) {
		if (t_now_ns() > dl)
			return 0;
		t_sleep_ns(T_MS / 2);
	}
	return 1;
}

static uint64_t futex_waits_now(struct shmring *r)
{
	struct shmring_info in;
	return shmring_info(r, &in) == 0 ? in.futex_waits : 0;
}

/* --------------------------------------------- (a) last producer detaches */

#define A_PRODUCERS 2
#define A_PER 60

struct a_shared {
	_Atomic uint64_t drained_waits; /* 0: not yet; else futex_waits + 1 */
	_Atomic int64_t t_detach;       /* when the last producer detached */
};
static struct shmring *a_ring;
static struct a_shared *a_sh;

static int a_producer(void *arg)
{
	uint32_t p = (uint32_t)(intptr_t)arg;
	for (uint32_t s = 0; s < A_PER; s++)
		if (rec_put(a_ring, p, s, 10 * T_SEC) != 0)
			return 10;
	if (p + 1 < A_PRODUCERS) {
		shmring_detach(a_ring);
		return 0;
	}
	/* The last producer: wait until the consumer has drained everything
	 * and gone to sleep in a blocking get, then detach. */
	int64_t dl = t_now_ns() + 20 * T_SEC;
	uint64_t base;
	while ((base = atomic_load(&a_sh->drained_waits)) == 0) {
		if (t_now_ns() > dl)
			return 11;
		t_sleep_ns(T_MS / 2);
	}
	if (!wait_for_sleeper(a_ring, base - 1, 10 * T_SEC))
		return 12;
	t_sleep_ns(20 * T_MS);
	atomic_store(&a_sh->t_detach, t_now_ns());
	shmring_detach(a_ring);
	return 0;
}

Test(eof, after_last_producer_detaches_sleeping_consumer_wakes)
{
	a_ring = t_ring(1 << 16, REC_MAX);
	a_sh = t_shared(4096);
	shmring_set_spin(a_ring, 0);
	/* The producers must hold their role from the start: with implicit
	 * roles, producer 0 could put everything and detach before producer 1
	 * has put anything, and that is a (correct) end of stream.  So: the
	 * fork-pool idiom. */
	cr_assert_eq(shmring_declare(a_ring, SHMRING_PRODUCER), 0);
	pid_t pids[A_PRODUCERS];
	for (int i = 0; i < A_PRODUCERS; i++)
		pids[i] = t_fork(a_producer, (void *)(intptr_t)i);
	cr_assert_eq(shmring_leave(a_ring, SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_declare(a_ring, SHMRING_CONSUMER), 0);

	uint32_t next[A_PRODUCERS] = { 0 };
	unsigned char buf[REC_MAX];
	for (int k = 0; k < A_PRODUCERS * A_PER; k++) {
		ssize_t n = shmring_get(a_ring, buf, sizeof buf, 10 * T_SEC);
		struct rec_hdr h;
		cr_assert(n > 0 && rec_ok(buf, n, &h), "record #%d: get = %zd", k, n);
		cr_assert_lt(h.producer, A_PRODUCERS);
		cr_assert_eq(h.seq, next[h.producer], "producer %u: seq %u, expected %u",
		             h.producer, h.seq, next[h.producer]);
		next[h.producer]++;
	}
	/* producer 0 has detached (or will): producer 1 still holds the
	 * stream open, so a blocking get sleeps until it detaches */
	atomic_store(&a_sh->drained_waits, futex_waits_now(a_ring) + 1);
	ssize_t n = shmring_get(a_ring, buf, sizeof buf, -1);
	int64_t t1 = t_now_ns();
	cr_assert_eq(n, -EPIPE, "blocking get after the last producer detached = %zd", n);
	int64_t lat = t1 - atomic_load(&a_sh->t_detach);
	cr_log_info("eof: sleeping consumer woke %.3f ms after the last producer's detach\n",
	            lat / 1e6);
	cr_assert_lt(lat, 1 * T_SEC, "woke %lld ns after the detach", (long long)lat);
	for (int i = 0; i < A_PRODUCERS; i++)
		t_expect_exit(pids[i], 0, 10 * T_SEC);

	/* EOF is final (while no producer comes back), for every flavour */
	struct shmring_info in = t_info(a_ring);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.eof, 1);
	cr_assert_eq(in.closed, 0, "end of stream is not a close");
	cr_assert_eq(shmring_get(a_ring, buf, sizeof buf, 0), -EPIPE);
	cr_assert_eq(shmring_get(a_ring, buf, sizeof buf, 50 * T_MS), -EPIPE);
	cr_assert_eq(shmring_get(a_ring, buf, sizeof buf, -1), -EPIPE);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(a_ring, &sp, -1), -EPIPE);
	_Alignas(8) char many[1024];
	struct iovec recs[4];
	cr_assert_eq(shmring_get_many(a_ring, many, sizeof many, recs, 4, -1), -EPIPE);
	shmring_detach(a_ring);
}

/* ------------------------------------------- (b) the producer is killed */

#define B_RECS 100

static struct shmring *b_ring;

static int b_producer(void *arg)
{
	(void)arg;
	for (uint32_t s = 0; s < B_RECS; s++)
		if (rec_put(b_ring, 0, s, 10 * T_SEC) != 0)
			return 10;
	for (;;)
		pause(); /* alive, holding the producer role, until SIGKILL */
	return 0; /* not reached */
}

struct killer {
	struct shmring *r;
	pid_t victim;
	uint64_t waits_base;
	int saw_sleeper;
	int status;
	int64_t t_kill, t_reaped;
};

/* A thread of the test process: once the main thread sleeps on the ring,
 * SIGKILL the victim and reap it. */
static void *killer_main(void *arg)
{
	struct killer *k = arg;
	k->saw_sleeper = wait_for_sleeper(k->r, k->waits_base, 10 * T_SEC);
	t_sleep_ns(20 * T_MS);
	k->t_kill = t_now_ns();
	kill(k->victim, SIGKILL);
	while (waitpid(k->victim, &k->status, 0) < 0 && errno == EINTR)
		;
	k->t_reaped = t_now_ns();
	return NULL;
}

static void drain_b(void)
{
	unsigned char buf[REC_MAX];
	for (uint32_t s = 0; s < B_RECS; s++) {
		ssize_t n = shmring_get(b_ring, buf, sizeof buf, 10 * T_SEC);
		struct rec_hdr h;
		cr_assert(n > 0 && rec_ok(buf, n, &h) && h.seq == s, "record %u: get = %zd", s, n);
	}
}

Test(eof, after_producer_sigkill_sleeping_consumer)
{
	b_ring = t_ring(1 << 16, REC_MAX);
	shmring_set_spin(b_ring, 0);
	pid_t pid = t_fork(b_producer, NULL);
	cr_assert_eq(shmring_declare(b_ring, SHMRING_CONSUMER), 0);
	drain_b();
	cr_assert_eq(t_info(b_ring).producers, 1);

	struct killer k = { .r = b_ring, .victim = pid, .waits_base = futex_waits_now(b_ring) };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, killer_main, &k), 0);
	unsigned char buf[REC_MAX];
	ssize_t n = shmring_get(b_ring, buf, sizeof buf, -1);
	int64_t t1 = t_now_ns();
	pthread_join(th, NULL);
	cr_assert_eq(n, -EPIPE, "blocking get after the producer was killed = %zd", n);
	cr_assert(k.saw_sleeper, "the consumer never went to sleep");
	cr_assert(WIFSIGNALED(k.status) && WTERMSIG(k.status) == SIGKILL);
	int64_t lat = t1 - k.t_kill;
	fprintf(stderr, "eof: SIGKILLed producer noticed by a sleeping consumer %.1f ms after "
	        "kill() (%.1f ms after waitpid)\n", lat / 1e6, (t1 - k.t_reaped) / 1e6);
	cr_log_info("eof: death detected %.1f ms after kill\n", lat / 1e6);
	cr_assert_lt(lat, 2 * T_SEC, "EOF %lld ns after the kill", (long long)lat);
	struct shmring_info in = t_info(b_ring);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.eof, 1);
	cr_assert_eq(shmring_get(b_ring, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(b_ring);
}

/* The same death, seen by a consumer that never sleeps: it polls with
 * timeout 0 and sweeps once the ring has stood still for 50 ms. */
Test(eof, after_producer_sigkill_polling_consumer)
{
	b_ring = t_ring(1 << 16, REC_MAX);
	pid_t pid = t_fork(b_producer, NULL);
	cr_assert_eq(shmring_declare(b_ring, SHMRING_CONSUMER), 0);
	drain_b();
	/* still alive: polling only ever says -EAGAIN */
	unsigned char buf[REC_MAX];
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(shmring_get(b_ring, buf, sizeof buf, 0), -EAGAIN);
		if (i % 50 == 0)
			t_sleep_ns(T_MS);
	}
	int64_t t0 = t_now_ns();
	kill(pid, SIGKILL);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	uint64_t polls = 0;
	ssize_t n;
	while ((n = shmring_get(b_ring, buf, sizeof buf, 0)) == -EAGAIN &&
	       t_now_ns() - t0 < 5 * T_SEC) {
		polls++;
		t_sleep_ns(T_MS / 4);
	}
	int64_t lat = t_now_ns() - t0;
	cr_assert_eq(n, -EPIPE, "polling get after the producer was killed = %zd", n);
	fprintf(stderr, "eof: SIGKILLed producer noticed by a polling consumer %.1f ms after "
	        "kill() (%llu polls)\n", lat / 1e6, (unsigned long long)polls);
	cr_assert_lt(lat, 2 * T_SEC);
	shmring_detach(b_ring);
}

/* ------------------------------------ (c) no EOF before any producer */

static struct shmring *c_ring;

static int c_attach_and_go(void *arg)
{
	/* a process that holds the ring, maybe declares a consumer, and leaves */
	if (arg && shmring_declare(c_ring, SHMRING_CONSUMER) != 0)
		return 10;
	shmring_detach(c_ring);
	return 0;
}

static int c_producer_that_never_puts(void *arg)
{
	(void)arg;
	return shmring_declare(c_ring, SHMRING_PRODUCER) == 0 ? 0 : 10;
	/* _exit without detach: noticed dead by a sweep */
}

Test(eof, not_before_a_producer_has_existed)
{
	c_ring = t_ring(4096, 0);
	shmring_set_spin(c_ring, 0);
	char buf[64];
	cr_assert_eq(shmring_get(c_ring, buf, sizeof buf, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_get(c_ring, buf, sizeof buf, 100 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 90 * T_MS);
	struct shmring_info in = t_info(c_ring);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.consumers, 1, "the get made this handle a consumer");
	cr_assert_eq(in.eof, 0);

	/* processes that come and go without ever producing change nothing */
	t_expect_exit(t_fork(c_attach_and_go, NULL), 0, 10 * T_SEC);
	t_expect_exit(t_fork(c_attach_and_go, (void *)1), 0, 10 * T_SEC);
	cr_assert_eq(shmring_get(c_ring, buf, sizeof buf, 120 * T_MS), -ETIMEDOUT,
	             "no EOF: no producer has ever existed");
	cr_assert_eq(t_info(c_ring).eof, 0);
	cr_assert_eq(shmring_next_len(c_ring), -EAGAIN);

	/* contrast: a producer that existed, never put, and died is an EOF */
	t_expect_exit(t_fork(c_producer_that_never_puts, NULL), 0, 10 * T_SEC);
	t0 = t_now_ns();
	ssize_t n = shmring_get(c_ring, buf, sizeof buf, 5 * T_SEC);
	cr_assert_eq(n, -EPIPE, "a producer came and died: get = %zd", n);
	cr_assert_lt(t_now_ns() - t0, 2 * T_SEC);
	cr_assert_eq(t_info(c_ring).eof, 1);
	shmring_detach(c_ring);
}

/* ------------------------------------------------- (d) the fork pool */

#define D_POOL 3
#define D_PER 40

struct d_shared {
	struct shmring_latch gate;
};
static struct shmring *d_ring;
static struct d_shared *d_sh;

static int d_producer(void *arg)
{
	uint32_t p = (uint32_t)(intptr_t)arg;
	if (shmring_gate_wait(&d_sh->gate, 20 * T_SEC) != 0)
		return 10;
	/* staggered: producer p starts p * 150 ms after the gate, and puts
	 * in two halves with a pause between */
	t_sleep_ns((int64_t)p * 150 * T_MS);
	for (uint32_t s = 0; s < D_PER; s++) {
		if (s == D_PER / 2)
			t_sleep_ns(60 * T_MS);
		if (rec_put(d_ring, p, s, 10 * T_SEC) != 0)
			return 11;
	}
	if (p % 2 == 0)
		shmring_detach(d_ring); /* the others just exit: reaped by a sweep */
	return 0;
}

Test(eof, fork_pool_idiom_no_premature_eof)
{
	d_ring = t_ring(1 << 14, REC_MAX);
	d_sh = t_shared(4096);
	cr_assert_eq(shmring_gate_init(&d_sh->gate), 0);
	cr_assert_eq(shmring_declare(d_ring, SHMRING_PRODUCER), 0);
	pid_t pids[D_POOL];
	for (int i = 0; i < D_POOL; i++)
		pids[i] = t_fork(d_producer, (void *)(intptr_t)i);
	/* the pool holds the role now: the parent gives its own up */
	cr_assert_eq(shmring_leave(d_ring, SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_declare(d_ring, SHMRING_CONSUMER), 0);
	struct shmring_info in = t_info(d_ring);
	cr_assert_eq(in.producers, D_POOL, "inherited producers: %u", in.producers);
	cr_assert_eq(in.consumers, 1, "children inherit only what was declared before fork");
	cr_assert_eq(in.eof, 0);
	char b[REC_MAX];
	cr_assert_eq(shmring_get(d_ring, b, sizeof b, 0), -EAGAIN, "not EOF: the pool lives");
	cr_assert_eq(shmring_gate_open(&d_sh->gate), 0);

	uint32_t next[D_POOL] = { 0 };
	unsigned total = 0;
	ssize_t n;
	unsigned char buf[REC_MAX];
	while ((n = shmring_get(d_ring, buf, sizeof buf, -1)) != -EPIPE) {
		struct rec_hdr h;
		cr_assert(n > 0 && rec_ok(buf, n, &h), "get = %zd after %u records", n, total);
		cr_assert_lt(h.producer, D_POOL);
		cr_assert_eq(h.seq, next[h.producer]);
		next[h.producer]++;
		total++;
	}
	cr_assert_eq(total, D_POOL * D_PER, "EOF after %u of %u records", total, D_POOL * D_PER);
	for (int i = 0; i < D_POOL; i++)
		t_expect_exit(pids[i], 0, 10 * T_SEC);
	cr_assert_eq(t_info(d_ring).producers, 0);
	shmring_detach(d_ring);
}

static int d_quick_producer(void *arg)
{
	uint32_t p = (uint32_t)(intptr_t)arg;
	if (rec_put(d_ring, p, 0, 10 * T_SEC) != 0)
		return 11;
	if (p == 0)
		shmring_detach(d_ring);
	return 0;
}

/* The race the idiom is about: children that put and exit at once, the
 * parent leaving its role at once; many rounds.  The count of producers
 * must never pass through zero before the last child is gone. */
Test(eof, fork_pool_idiom_quick_children_rounds)
{
	for (int round = 0; round < 15; round++) {
		d_ring = t_ring(4096, REC_MAX);
		cr_assert_eq(shmring_declare(d_ring, SHMRING_PRODUCER), 0);
		pid_t pids[D_POOL];
		for (int i = 0; i < D_POOL; i++)
			pids[i] = t_fork(d_quick_producer, (void *)(intptr_t)i);
		cr_assert_eq(shmring_leave(d_ring, SHMRING_PRODUCER), 0);
		unsigned got = 0;
		ssize_t n;
		unsigned char buf[REC_MAX];
		while ((n = shmring_get(d_ring, buf, sizeof buf, 10 * T_SEC)) != -EPIPE) {
			struct rec_hdr h;
			cr_assert(n > 0 && rec_ok(buf, n, &h), "round %d: get = %zd", round, n);
			got++;
		}
		cr_assert_eq(got, D_POOL, "round %d: EOF after %u of %d records", round, got, D_POOL);
		for (int i = 0; i < D_POOL; i++)
			t_expect_exit(pids[i], 0, 10 * T_SEC);
		shmring_detach(d_ring);
	}
}

/* ------------------------------------------------- (e) broken pipe */

struct e_shared {
	_Atomic int ready;
	_Atomic uint64_t parent_waits; /* 0: not yet; else futex_waits + 1 */
	_Atomic int64_t t_detach;
};
static struct shmring *e_ring;
static struct e_shared *e_sh;

/* Declares (arg 0) or becomes by a get (arg 1) a consumer, then detaches. */
static int e_consumer_detaches(void *arg)
{
	char buf[64];
	if (!arg) {
		if (shmring_declare(e_ring, SHMRING_CONSUMER) != 0)
			return 10;
	} else if (shmring_get(e_ring, buf, sizeof buf, 10 * T_SEC) != 1) {
		return 11;
	}
	shmring_detach(e_ring);
	return 0;
}

/* Takes one record (an implicit consumer), then exits without detaching. */
static int e_consumer_exits(void *arg)
{
	(void)arg;
	char buf[64];
	return shmring_get(e_ring, buf, sizeof buf, 10 * T_SEC) == 1 ? 0 : 11;
}

/* Puts until -EPIPE, with short timeouts (a dead consumer is noticed by a
 * sweep, which only a waiting or -EAGAIN-ing caller makes).  Returns the
 * elapsed ns, or -1 if -EPIPE did not come within 2 s. */
static int64_t put_until_epipe(struct shmring *r, int *last)
{
	int64_t t0 = t_now_ns();
	int rc;
	while ((rc = shmring_put(r, "x", 1, 10 * T_MS)) != -EPIPE) {
		if (t_now_ns() - t0 > 2 * T_SEC) {
			*last = rc;
			return -1;
		}
		if (rc != 0)
			t_sleep_ns(T_MS);
	}
	*last = rc;
	return t_now_ns() - t0;
}

static void e_expect_every_put_epipe(struct shmring *r)
{
	cr_assert_eq(shmring_put(r, "x", 1, 0), -EPIPE);
	cr_assert_eq(shmring_put(r, "x", 1, -1), -EPIPE, "must not block");
	cr_assert_eq(shmring_put(r, "x", 0, 50 * T_MS), -EPIPE);
	struct iovec iov[2] = { { "a", 1 }, { "b", 1 } };
	cr_assert_eq(shmring_putv(r, iov, 2, -1), -EPIPE);
	cr_assert_eq(shmring_put_many(r, iov, 2, -1), -EPIPE);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 10, &sp, -1), -EPIPE);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(in.closed, 0, "a broken pipe is not a close");
}

Test(eof, broken_pipe_after_declared_consumer_detaches)
{
	e_ring = t_ring(4096, 0);
	t_expect_exit(t_fork(e_consumer_detaches, NULL), 0, 10 * T_SEC);
	/* the detach took the consumer off at once: no sweep needed */
	e_expect_every_put_epipe(e_ring);
	shmring_detach(e_ring);
}

Test(eof, broken_pipe_after_implicit_consumer_detaches)
{
	e_ring = t_ring(4096, 0);
	pid_t pid = t_fork(e_consumer_detaches, (void *)1);
	cr_assert_eq(shmring_put(e_ring, "1", 1, 0), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	e_expect_every_put_epipe(e_ring);
	shmring_detach(e_ring);
}

Test(eof, broken_pipe_after_consumer_exits_without_detach)
{
	e_ring = t_ring(4096, 0);
	pid_t pid = t_fork(e_consumer_exits, NULL);
	cr_assert_eq(shmring_put(e_ring, "1", 1, 0), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	int last;
	int64_t el = put_until_epipe(e_ring, &last);
	cr_assert_geq(el, 0, "no -EPIPE within 2 s (last put = %d)", last);
	e_expect_every_put_epipe(e_ring);
	shmring_detach(e_ring);
}

static int e_consumer_pauses(void *arg)
{
	(void)arg;
	if (shmring_declare(e_ring, SHMRING_CONSUMER) != 0)
		return 10;
	atomic_store(&e_sh->ready, 1);
	for (;;)
		pause();
	return 0; /* not reached */
}

Test(eof, broken_pipe_after_consumer_sigkill)
{
	e_ring = t_ring(4096, 0);
	e_sh = t_shared(4096);
	pid_t pid = t_fork(e_consumer_pauses, NULL);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&e_sh->ready), 10 * T_SEC);
	cr_assert(ok);
	cr_assert_eq(shmring_put(e_ring, "1", 1, 0), 0, "a live consumer: puts work");
	int64_t t0 = t_now_ns();
	kill(pid, SIGKILL);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	int last;
	int64_t el = put_until_epipe(e_ring, &last);
	cr_assert_geq(el, 0, "no -EPIPE within 2 s of the kill (last put = %d)", last);
	fprintf(stderr, "eof: SIGKILLed consumer noticed by a retrying producer %.1f ms after "
	        "kill()\n", (t_now_ns() - t0) / 1e6);
	e_expect_every_put_epipe(e_ring);
	shmring_detach(e_ring);
}

/* A producer asleep on a full ring wakes with -EPIPE when the last consumer
 * detaches (promptly) or is killed (within a sweep or two). */
static int e_consumer_detaches_when_parent_sleeps(void *arg)
{
	(void)arg;
	if (shmring_declare(e_ring, SHMRING_CONSUMER) != 0)
		return 10;
	atomic_store(&e_sh->ready, 1);
	int64_t dl = t_now_ns() + 20 * T_SEC;
	uint64_t base;
	while ((base = atomic_load(&e_sh->parent_waits)) == 0) {
		if (t_now_ns() > dl)
			return 11;
		t_sleep_ns(T_MS / 2);
	}
	if (!wait_for_sleeper(e_ring, base - 1, 10 * T_SEC))
		return 12;
	t_sleep_ns(20 * T_MS);
	atomic_store(&e_sh->t_detach, t_now_ns());
	shmring_detach(e_ring);
	return 0;
}

static void e_fill(struct shmring *r)
{
	static char rec[SHMRING_SLOT_SIZE];
	int n = 0;
	while (shmring_put(r, rec, sizeof rec, 0) == 0)
		n++;
	cr_assert_eq(n, 4096 / SHMRING_SLOT_SIZE);
	cr_assert_eq(shmring_put(r, rec, sizeof rec, 0), -EAGAIN);
}

Test(eof, broken_pipe_wakes_sleeping_producer_on_detach)
{
	e_ring = t_ring(4096, 0);
	e_sh = t_shared(4096);
	shmring_set_spin(e_ring, 0);
	pid_t pid = t_fork(e_consumer_detaches_when_parent_sleeps, NULL);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&e_sh->ready), 10 * T_SEC);
	cr_assert(ok);
	e_fill(e_ring);
	atomic_store(&e_sh->parent_waits, futex_waits_now(e_ring) + 1);
	int rc = shmring_put(e_ring, "x", 1, -1);
	int64_t lat = t_now_ns() - atomic_load(&e_sh->t_detach);
	cr_assert_eq(rc, -EPIPE, "blocked put after the last consumer detached = %d", rc);
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_log_info("eof: sleeping producer woke %.3f ms after the last consumer's detach\n",
	            lat / 1e6);
	cr_assert_lt(lat, 1 * T_SEC, "woke %lld ns after the detach", (long long)lat);
	shmring_detach(e_ring);
}

Test(eof, broken_pipe_wakes_sleeping_producer_on_sigkill)
{
	e_ring = t_ring(4096, 0);
	e_sh = t_shared(4096);
	shmring_set_spin(e_ring, 0);
	pid_t pid = t_fork(e_consumer_pauses, NULL);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&e_sh->ready), 10 * T_SEC);
	cr_assert(ok);
	e_fill(e_ring);
	struct killer k = { .r = e_ring, .victim = pid, .waits_base = futex_waits_now(e_ring) };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, killer_main, &k), 0);
	int rc = shmring_put(e_ring, "x", 1, -1);
	int64_t t1 = t_now_ns();
	pthread_join(th, NULL);
	cr_assert_eq(rc, -EPIPE, "blocked put after the consumer was killed = %d", rc);
	cr_assert(k.saw_sleeper, "the producer never went to sleep");
	int64_t lat = t1 - k.t_kill;
	fprintf(stderr, "eof: SIGKILLed consumer noticed by a sleeping producer %.1f ms after "
	        "kill()\n", lat / 1e6);
	cr_assert_lt(lat, 2 * T_SEC);
	shmring_detach(e_ring);
}

/* ------------------------------- (f) nobody has consumed: puts until full */

static struct shmring *f_ring;

static int f_passer_by(void *arg)
{
	/* attaches (inherited), produces one record, leaves without consuming */
	(void)arg;
	if (shmring_put(f_ring, NULL, 0, 0) != 0)
		return 10;
	shmring_detach(f_ring);
	return 0;
}

Test(eof, ring_nobody_consumed_from_accepts_puts_until_full)
{
	f_ring = t_ring(4096, 0);
	shmring_set_spin(f_ring, 0);
	t_expect_exit(t_fork(f_passer_by, NULL), 0, 10 * T_SEC);
	static char rec[SHMRING_SLOT_SIZE];
	int n = 1; /* the passer-by's empty record holds one slot */
	while (shmring_put(f_ring, rec, sizeof rec, 0) == 0)
		n++;
	cr_assert_eq(n, 4096 / SHMRING_SLOT_SIZE, "%d records fit", n);
	cr_assert_eq(shmring_put(f_ring, rec, sizeof rec, 0), -EAGAIN, "full, not broken");
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_put(f_ring, rec, sizeof rec, 120 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 100 * T_MS);
	for (int i = 0; i < 200; i++) /* many -EAGAINs: sweeps, still not broken */
		cr_assert_eq(shmring_put(f_ring, rec, 1, 0), -EAGAIN);
	struct shmring_info in = t_info(f_ring);
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.records, (size_t)n);
	/* a consumer arriving now takes the backlog */
	char buf[SHMRING_SLOT_SIZE];
	cr_assert_eq(shmring_get(f_ring, buf, sizeof buf, 0), 0);
	cr_assert_eq(shmring_put(f_ring, rec, sizeof rec, 0), 0);
	shmring_detach(f_ring);
}

/* ------------------------------------------ (g) handles across fork */

struct g_shared {
	struct shmring_latch gate;
};
static struct shmring *g_ring;
static struct g_shared *g_sh;

#define G_RECS 25

static int g_child_producer(void *arg)
{
	(void)arg;
	if (shmring_gate_wait(&g_sh->gate, 20 * T_SEC) != 0)
		return 10;
	for (uint32_t s = 0; s < G_RECS; s++)
		if (rec_put(g_ring, 7, s, 10 * T_SEC) != 0)
			return 11;
	return 0; /* exit without detach */
}

Test(eof, parent_detach_does_not_end_inherited_child_producer)
{
	const char *name = t_name("inherit");
	g_sh = t_shared(4096);
	cr_assert_eq(shmring_gate_init(&g_sh->gate), 0);
	struct shmring_config cfg = { .capacity = 1 << 14, .max_record = REC_MAX,
	                              .flags = SHMRING_PRODUCER };
	cr_assert_eq(shmring_create(&g_ring, name, &cfg), 0);
	pid_t pid = t_fork(g_child_producer, NULL);
	shmring_detach(g_ring); /* the parent's handle: not the child's */

	struct shmring *c = NULL;
	cr_assert_eq(shmring_open(&c, name), 0);
	cr_assert_eq(shmring_declare(c, SHMRING_CONSUMER), 0);
	shmring_set_spin(c, 0);
	struct shmring_info in = t_info(c);
	cr_assert_eq(in.producers, 1, "the child's inherited role: %u", in.producers);
	cr_assert_eq(in.eof, 0);
	unsigned char buf[REC_MAX];
	/* long enough for several sweeps: the child is alive, so no EOF */
	cr_assert_eq(shmring_get(c, buf, sizeof buf, 300 * T_MS), -ETIMEDOUT);
	cr_assert_eq(t_info(c).producers, 1);
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0);

	cr_assert_eq(shmring_gate_open(&g_sh->gate), 0);
	for (uint32_t s = 0; s < G_RECS; s++) {
		ssize_t n = shmring_get(c, buf, sizeof buf, 10 * T_SEC);
		struct rec_hdr h;
		cr_assert(n > 0 && rec_ok(buf, n, &h) && h.seq == s, "record %u: get = %zd", s, n);
	}
	cr_assert_eq(shmring_get(c, buf, sizeof buf, -1), -EPIPE, "the child is gone: EOF");
	t_expect_exit(pid, 0, 10 * T_SEC);
	cr_assert_eq(shmring_unlink(name), 0);
	shmring_detach(c);
}

static int g_child_detaches(void *arg)
{
	(void)arg;
	shmring_detach(g_ring);
	return 0;
}

Test(eof, child_detach_does_not_end_parent_producer)
{
	g_ring = t_ring(4096, 0);
	cr_assert_eq(shmring_declare(g_ring, SHMRING_PRODUCER), 0);
	pid_t pid = t_fork(g_child_detaches, NULL);
	t_expect_exit(pid, 0, 10 * T_SEC);
	struct shmring *c = NULL;
	cr_assert_eq(shmring_attach_fd(&c, shmring_fd(g_ring)), 0);
	char buf[8];
	cr_assert_eq(shmring_get(c, buf, sizeof buf, 150 * T_MS), -ETIMEDOUT);
	struct shmring_info in = t_info(c);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.eof, 0);
	shmring_detach(g_ring);
	cr_assert_eq(shmring_get(c, buf, sizeof buf, -1), -EPIPE);
	shmring_detach(c);
}

static int g_child_sleeps(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0; /* not reached */
}

/* A role taken implicitly (by a put) is not inherited: once the parent
 * detaches, the stream ends although the child still holds the handle. */
Test(eof, implicit_roles_are_not_inherited)
{
	g_ring = t_ring(4096, 0);
	cr_assert_eq(shmring_put(g_ring, "z", 1, 0), 0);
	cr_assert_eq(t_info(g_ring).producers, 1);
	pid_t pid = t_fork(g_child_sleeps, NULL);
	cr_assert_eq(t_info(g_ring).producers, 1, "the child is not a producer");
	struct shmring *c = NULL;
	cr_assert_eq(shmring_attach_fd(&c, shmring_fd(g_ring)), 0);
	shmring_detach(g_ring);
	char buf[8];
	cr_assert_eq(shmring_get(c, buf, sizeof buf, 0), 1);
	cr_assert_eq(shmring_get(c, buf, sizeof buf, 5 * T_SEC), -EPIPE);
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the child is still alive");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	shmring_detach(c);
}

/* --------------------------------- (h) declare/leave arguments, counts */

Test(eof, declare_and_leave_argument_errors)
{
	struct shmring *r = t_ring(4096, 0);
	static const unsigned bad[] = { 0, 0x4, 0x8, 0x80000000u, SHMRING_PRODUCER | 0x4,
		                        SHMRING_CONSUMER | 0x100, ~0u };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(shmring_declare(r, bad[i]), -EINVAL, "declare(0x%x)", bad[i]);
		cr_assert_eq(shmring_leave(r, bad[i]), -EINVAL, "leave(0x%x)", bad[i]);
	}
	cr_assert_eq(shmring_declare(NULL, SHMRING_PRODUCER), -EINVAL);
	cr_assert_eq(shmring_leave(NULL, SHMRING_PRODUCER), -EINVAL);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers, 0, "a refused declare takes no role");
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(in.eof, 0);
	/* leaving a role never held is fine and changes nothing */
	cr_assert_eq(shmring_leave(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.eof, 0, "leaving a role never held is not an end of stream");
	struct shmring_config cfg = { .capacity = 4096, .flags = 0x4 };
	struct shmring *x = NULL;
	cr_assert_eq(shmring_create(&x, NULL, &cfg), -EINVAL);
	shmring_detach(r);
}

static struct shmring *h_ring;

static int h_child_declares_and_detaches(void *arg)
{
	(void)arg;
	if (shmring_declare(h_ring, SHMRING_PRODUCER | SHMRING_CONSUMER) != 0)
		return 10;
	struct shmring_info in;
	if (shmring_info(h_ring, &in) != 0)
		return 11;
	/* the parent's two roles were declared: inherited; ours add nothing
	 * to them, the parent's own add 1 */
	if (in.producers != 2 || in.consumers != 2)
		return 12;
	shmring_detach(h_ring);
	return 0;
}

Test(eof, info_counts_follow_declare_leave_detach)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.producers + in.consumers, 0);

	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER), 0);
	cr_assert_eq(t_info(r).producers, 1, "declaring twice counts once");
	cr_assert_eq(shmring_declare(r, SHMRING_CONSUMER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);

	/* a second handle in this process is an attachment of its own */
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_attach_fd(&r2, shmring_fd(r)), 0);
	cr_assert_eq(t_info(r2).producers, 1, "attaching takes no role");
	cr_assert_eq(shmring_declare(r2, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 2);
	cr_assert_eq(in.consumers, 2);
	cr_assert_eq(shmring_leave(r2, SHMRING_PRODUCER), 0);
	cr_assert_eq(t_info(r).producers, 1);
	cr_assert_eq(shmring_leave(r2, SHMRING_PRODUCER), 0, "leaving twice is fine");
	cr_assert_eq(t_info(r).producers, 1);
	shmring_detach(r2);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1, "detach gives up the roles still held");

	/* another process: its declared roles count until it detaches */
	h_ring = r;
	t_expect_exit(t_fork(h_child_declares_and_detaches, NULL), 0, 10 * T_SEC);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);

	/* leaving the last producer role is an end of stream ... */
	cr_assert_eq(shmring_leave(r, SHMRING_PRODUCER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.consumers, 1);
	cr_assert_eq(in.eof, 1);
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, -1), -EPIPE);
	/* ... until a put takes the role again */
	cr_assert_eq(shmring_put(r, "p", 1, 0), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.eof, 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN, "a producer again: no EOF");
	cr_assert_eq(shmring_leave(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 0);
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(in.eof, 1);
	shmring_detach(r);

	/* the creating handle's flags are declared roles */
	struct shmring_config cfg = { .capacity = 4096,
	                              .flags = SHMRING_PRODUCER | SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);
	shmring_detach(r);

	/* implicit roles: a put makes a producer, a get a consumer */
	r = t_ring(4096, 0);
	cr_assert_eq(shmring_put(r, "i", 1, 0), 0);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	in = t_info(r);
	cr_assert_eq(in.producers, 1);
	cr_assert_eq(in.consumers, 1);
	shmring_detach(r);
}
