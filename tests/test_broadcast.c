/*
 * test_broadcast.c - broadcast rings (SHMRING_BROADCAST, issue 13): every
 * subscriber gets every record, tethered subscribers back-pressure, lossy
 * ones are told exactly what they lost, the dead stop nobody, late joiners
 * start where they asked to.
 */
#include "common.h"
#include "shmring_broadcast.h"
#include "shmring_poll.h"

#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>

TestSuite(broadcast, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* A record: who put it, its sequence number, then t_fill bytes seeded by both. */
struct rec_hdr {
	uint32_t producer;
	uint32_t len;
	uint64_t seq;
};
#define REC_MIN sizeof(struct rec_hdr)
#define REC_MAX 400

static uint64_t rec_seed(uint32_t producer, uint64_t seq)
{
	return ((uint64_t)producer << 40) ^ seq;
}

static size_t rec_make(unsigned char *buf, uint32_t producer, uint64_t seq)
{
	size_t len = REC_MIN + (size_t)(t_mix64(rec_seed(producer, seq)) % (REC_MAX - REC_MIN));
	struct rec_hdr h = { producer, (uint32_t)len, seq };
	memcpy(buf, &h, sizeof h);
	t_fill(buf + sizeof h, len - sizeof h, rec_seed(producer, seq));
	return len;
}

/* 0 if buf (n bytes) is a whole record; *h its header. */
static int rec_check(const unsigned char *buf, size_t n, struct rec_hdr *h)
{
	if (n < REC_MIN)
		return 1;
	memcpy(h, buf, sizeof *h);
	if (h->len != n)
		return 2;
	if (!t_check(buf + sizeof *h, n - sizeof *h, rec_seed(h->producer, h->seq)))
		return 3;
	return 0;
}

static struct shmring *bcast_ring(size_t capacity, const char *name)
{
	struct shmring_config cfg = { .capacity = capacity, .max_record = REC_MAX,
	                              .flags = SHMRING_BROADCAST };
	struct shmring *r = NULL;
	int rc = shmring_create(&r, name, &cfg);
	cr_assert_eq(rc, 0, "create broadcast: %s", shmring_strerror(rc));
	return r;
}

static struct shmring *second_handle(struct shmring *r)
{
	struct shmring *h = NULL;
	cr_assert_eq(shmring_attach_fd(&h, shmring_fd(r)), 0);
	return h;
}

/* ------------------------------------------------ every record, everyone */

#define NPROD 3
#define NSUB  3
#define PER_PRODUCER 20000

struct fan {
	struct shmring *r;
	_Atomic int subscribed;
	_Atomic uint64_t got[NSUB];
};
struct fan_arg { /* on the parent's stack: each child has its own copy */
	struct fan *f;
	int id;
};

static int fan_producer(void *arg)
{
	struct fan_arg *a = arg;
	struct fan *f = a->f;
	unsigned char buf[REC_MAX];
	for (uint64_t s = 0; s < PER_PRODUCER; s++) {
		size_t len = rec_make(buf, (uint32_t)a->id, s);
		int rc = shmring_put(f->r, buf, len, -1);
		if (rc)
			return 10;
	}
	return 0;
}

static int fan_subscriber(void *arg)
{
	struct fan_arg *a = arg;
	struct fan *f = a->f;
	int me = a->id;
	if (shmring_subscribe(f->r, 0))
		return 20;
	atomic_fetch_add(&f->subscribed, 1);
	uint64_t next[NPROD] = { 0 };
	unsigned char buf[REC_MAX];
	for (;;) {
		ssize_t n = shmring_get(f->r, buf, sizeof buf, 20 * T_SEC);
		if (n == -EPIPE)
			break;
		if (n < 0)
			return 21;
		struct rec_hdr h;
		if (rec_check(buf, (size_t)n, &h))
			return 22; /* torn or mixed up */
		if (h.producer >= NPROD || h.seq != next[h.producer])
			return 23; /* out of order, or a gap */
		next[h.producer]++;
		atomic_fetch_add(&f->got[me], 1);
	}
	for (int p = 0; p < NPROD; p++)
		if (next[p] != PER_PRODUCER)
			return 24;
	return shmring_lost(f->r) == 0 ? 0 : 25;
}

Test(broadcast, three_subscribers_get_every_record_in_order_from_three_producers)
{
	struct fan *f = t_shared(sizeof *f);
	f->r = bcast_ring(64 << 10, NULL);
	pid_t subs[NSUB], prods[NPROD];
	struct fan_arg arg = { f, 0 };
	for (int i = 0; i < NSUB; i++) {
		arg.id = i;
		subs[i] = t_fork(fan_subscriber, &arg);
	}
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&f->subscribed) == NSUB, 10 * T_SEC);
	cr_assert(ok, "subscribers did not subscribe");
	/* The producer role is inherited at fork, so the stream does not end
	 * between one producer's exit and the next one's first put. */
	cr_assert_eq(shmring_declare(f->r, SHMRING_PRODUCER), 0);
	for (int i = 0; i < NPROD; i++) {
		arg.id = i;
		prods[i] = t_fork(fan_producer, &arg);
	}
	cr_assert_eq(shmring_leave(f->r, SHMRING_PRODUCER), 0);
	for (int i = 0; i < NPROD; i++)
		t_expect_exit(prods[i], 0, 25 * T_SEC);
	for (int i = 0; i < NSUB; i++)
		t_expect_exit(subs[i], 0, 25 * T_SEC);
	for (int i = 0; i < NSUB; i++)
		cr_assert_eq(atomic_load(&f->got[i]), (uint64_t)NPROD * PER_PRODUCER);
	shmring_detach(f->r);
}

/* ------------------------------------------------ a lossy subscriber */

#define LOSSY_N 200000

struct lossy {
	struct shmring *r;
	_Atomic int subscribed;
	_Atomic uint64_t puts_refused;
};

static int lossy_producer(void *arg)
{
	struct lossy *l = arg;
	unsigned char buf[REC_MAX];
	for (uint64_t s = 0; s < LOSSY_N; s++) {
		size_t len = rec_make(buf, 0, s);
		/* timeout 0: never waits; with no tethered subscriber it never
		 * has to */
		int rc = shmring_put(l->r, buf, len, 0);
		if (rc) {
			atomic_fetch_add(&l->puts_refused, 1);
			return 10;
		}
	}
	return 0;
}

Test(broadcast, sleeping_lossy_subscriber_gets_eoverflow_and_exact_lost_count)
{
	struct lossy *l = t_shared(sizeof *l);
	l->r = bcast_ring(16 << 10, NULL);
	cr_assert_eq(t_info(l->r).delivery, SHMRING_BROADCAST, "info tells a broadcast ring");
	cr_assert_eq(shmring_subscribe(l->r, SHMRING_SUB_LOSSY), 0);
	cr_assert_eq(shmring_declare(l->r, SHMRING_PRODUCER), 0);
	pid_t p = t_fork(lossy_producer, l);
	cr_assert_eq(shmring_leave(l->r, SHMRING_PRODUCER), 0);

	uint64_t expect = 0, received = 0, overflows = 0, lost_before = 0;
	unsigned char buf[REC_MAX];
	for (;;) {
		if (received % 5000 == 100)
			t_sleep_ns(20 * T_MS); /* fall behind, more than a lap */
		ssize_t n = shmring_get(l->r, buf, sizeof buf, 20 * T_SEC);
		if (n == -EPIPE)
			break;
		if (n == -EOVERFLOW) {
			overflows++;
			uint64_t lost = shmring_lost(l->r);
			cr_assert_gt(lost, lost_before, "-EOVERFLOW but nothing counted lost");
			expect += lost - lost_before; /* exactly those records are gone */
			lost_before = lost;
			continue;
		}
		cr_assert_geq(n, 0, "get: %s", shmring_strerror((int)n));
		struct rec_hdr h;
		cr_assert_eq(rec_check(buf, (size_t)n, &h), 0, "torn record at %" PRIu64, received);
		cr_assert_eq(h.seq, expect, "got seq %" PRIu64 ", expected %" PRIu64
		             " (lost so far %" PRIu64 ")", h.seq, expect, lost_before);
		expect++;
		received++;
	}
	t_expect_exit(p, 0, 25 * T_SEC);
	cr_assert_eq(atomic_load(&l->puts_refused), 0);
	cr_assert_gt(overflows, 0, "the subscriber was never lapped");
	cr_assert_eq(received + shmring_lost(l->r), LOSSY_N, "received %" PRIu64 " + lost %" PRIu64,
	             received, shmring_lost(l->r));
	shmring_detach(l->r);
}

/* ------------------------------------------------ tethered back-pressure */

Test(broadcast, tethered_subscriber_back_pressures_producers)
{
	struct shmring *prod = bcast_ring(4096, NULL); /* 64 slots */
	struct shmring *sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, 0), 0);
	unsigned char rec[40] = { 0 };
	int put = 0, rc;
	for (;;) {
		memcpy(rec, &put, sizeof put);
		if ((rc = shmring_put(prod, rec, sizeof rec, 0)) != 0)
			break;
		put++;
		cr_assert_lt(put, 1000, "the producer never had to wait");
	}
	cr_assert_eq(rc, -EAGAIN);
	cr_assert_leq(put, 64);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_put(prod, rec, sizeof rec, 100 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 90 * T_MS);
	cr_assert_eq(t_info(prod).dropped, 2, "both refusals counted");

	/* Its lag, as anyone sees it. */
	struct shmring_subscriber s[4];
	cr_assert_eq(shmring_subscribers(prod, s, 4), 1);
	cr_assert_eq(s[0].pid, getpid());
	cr_assert_eq(s[0].flags, 0);
	cr_assert_eq(s[0].lag_records, (uint64_t)put);
	cr_assert_eq(s[0].lapped, 0);

	/* Reading frees room (after the frontier's step: 1/16 of the ring). */
	unsigned char buf[64];
	for (int i = 0; i < 8; i++) {
		ssize_t n = shmring_get(sub, buf, sizeof buf, 0);
		cr_assert_eq(n, 40);
		int v;
		memcpy(&v, buf, sizeof v);
		cr_assert_eq(v, i); /* in order */
	}
	cr_assert_eq(shmring_put(prod, rec, sizeof rec, T_SEC), 0);
	cr_assert_eq(shmring_lost(sub), 0);
	shmring_detach(sub);
	shmring_detach(prod);
}

/* A producer asleep on a full ring wakes when the subscriber reads. */
struct slow_reader {
	struct shmring *r;
	_Atomic int ready;
};

static int slow_reader_main(void *arg)
{
	struct slow_reader *s = arg;
	if (shmring_subscribe(s->r, 0))
		return 20;
	atomic_store(&s->ready, 1);
	unsigned char buf[64];
	uint32_t expect = 0;
	for (;;) {
		t_sleep_ns(T_MS / 10);
		ssize_t n = shmring_get(s->r, buf, sizeof buf, 20 * T_SEC);
		if (n == -EPIPE)
			return expect == 3000 ? 0 : 21;
		if (n != 40)
			return 22;
		uint32_t v;
		memcpy(&v, buf, sizeof v);
		if (v != expect++)
			return 23;
	}
}

Test(broadcast, slow_tethered_subscriber_gets_everything_producer_waits)
{
	struct slow_reader *s = t_shared(sizeof *s);
	s->r = bcast_ring(4096, NULL);
	pid_t c = t_fork(slow_reader_main, s);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&s->ready), 10 * T_SEC);
	cr_assert(ok);
	unsigned char rec[40] = { 0 };
	for (uint32_t i = 0; i < 3000; i++) {
		memcpy(rec, &i, sizeof i);
		cr_assert_eq(shmring_put(s->r, rec, sizeof rec, 20 * T_SEC), 0);
	}
	cr_assert_gt(t_info(s->r).futex_waits, 0, "the producer never waited");
	cr_assert_eq(shmring_leave(s->r, SHMRING_PRODUCER), 0);
	t_expect_exit(c, 0, 25 * T_SEC);
	shmring_detach(s->r);
}

/* ------------------------------------------------ a dead subscriber */

struct victim {
	struct shmring *r;
	_Atomic int subscribed, holding;
};

static int victim_main(void *arg)
{
	struct victim *v = arg;
	if (shmring_subscribe(v->r, 0))
		return 20;
	atomic_store(&v->subscribed, 1);
	struct shmring_span span;
	if (shmring_peek(v->r, &span, 10 * T_SEC) < 0)
		return 21;
	atomic_store(&v->holding, 1);
	for (;;)
		pause(); /* holds the record until SIGKILL */
}

Test(broadcast, sigkilled_tethered_subscriber_holding_a_peek_stops_blocking_producers)
{
	struct victim *v = t_shared(sizeof *v);
	v->r = bcast_ring(4096, NULL);
	/* a lossy subscriber stays, so that puts do not see a broken pipe */
	struct shmring *watcher = second_handle(v->r);
	cr_assert_eq(shmring_subscribe(watcher, SHMRING_SUB_LOSSY), 0);
	pid_t c = t_fork(victim_main, v);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&v->subscribed), 10 * T_SEC);
	cr_assert(ok);
	unsigned char rec[40] = { 0 };
	cr_assert_eq(shmring_put(v->r, rec, sizeof rec, -1), 0);
	T_POLL_UNTIL(ok, atomic_load(&v->holding), 10 * T_SEC);
	cr_assert(ok);
	while (shmring_put(v->r, rec, sizeof rec, 0) == 0)
		;
	cr_assert_eq(shmring_put(v->r, rec, sizeof rec, 200 * T_MS), -ETIMEDOUT,
	             "the held record did not hold producers back");
	int64_t t_kill = t_now_ns();
	kill(c, SIGKILL);
	cr_assert_eq(shmring_put(v->r, rec, sizeof rec, 5 * T_SEC), 0);
	int64_t took = t_now_ns() - t_kill;
	cr_log_info("producer went on %.1f ms after the kill", took / 1e6);
	cr_assert_lt(took, 2 * T_SEC, "liveness bound (100 ms nominal) far exceeded");
	int st = t_wait_status(c, 5 * T_SEC);
	cr_assert(WIFSIGNALED(st));
	/* Gone from the inspection too; only the watcher is left. */
	struct shmring_subscriber s[4];
	cr_assert_eq(shmring_subscribers(v->r, s, 4), 1);
	cr_assert_eq(s[0].flags, SHMRING_SUB_LOSSY);
	/* and producers never wait for a lossy one */
	for (int i = 0; i < 500; i++)
		cr_assert_eq(shmring_put(v->r, rec, sizeof rec, 0), 0);
	shmring_detach(watcher);
	shmring_detach(v->r);
}

/* ------------------------------------------------ late joiners */

Test(broadcast, late_joiners_start_next_or_oldest)
{
	struct shmring *prod = bcast_ring(4096, NULL);
	unsigned char buf[64];
	for (uint32_t i = 0; i < 10; i++)
		cr_assert_eq(shmring_put(prod, &i, sizeof i, 0), 0);
	struct shmring *fresh = second_handle(prod), *old = second_handle(prod);
	cr_assert_eq(shmring_subscribe(fresh, 0), 0);
	cr_assert_eq(shmring_subscribe(old, SHMRING_SUB_OLDEST), 0);
	cr_assert_eq(shmring_get(fresh, buf, sizeof buf, 0), -EAGAIN);
	for (uint32_t i = 0; i < 10; i++) {
		uint32_t v;
		cr_assert_eq(shmring_get(old, &v, sizeof v, 0), 4);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(shmring_get(old, buf, sizeof buf, 0), -EAGAIN);
	uint32_t ten = 10, v;
	cr_assert_eq(shmring_put(prod, &ten, sizeof ten, 0), 0);
	cr_assert_eq(shmring_get(fresh, &v, sizeof v, 0), 4);
	cr_assert_eq(v, 10);
	cr_assert_eq(shmring_get(old, &v, sizeof v, 0), 4);
	cr_assert_eq(v, 10);
	cr_assert_eq(shmring_subscribe(old, 0), -EALREADY);
	shmring_detach(fresh);
	shmring_detach(old);
	shmring_detach(prod);
}

Test(broadcast, history_after_overwrite_is_a_contiguous_suffix)
{
	struct shmring *prod = bcast_ring(4096, NULL); /* 64 slots, max_record 400 */
	for (uint32_t i = 0; i < 1000; i++)
		cr_assert_eq(shmring_put(prod, &i, sizeof i, 0), 0, "never waits: nobody tethered");
	struct shmring *old = second_handle(prod);
	cr_assert_eq(shmring_subscribe(old, SHMRING_SUB_OLDEST), 0);
	uint32_t v, first = 0, n = 0, prev = 0;
	while (shmring_get(old, &v, sizeof v, 0) == 4) {
		if (n == 0)
			first = v;
		else
			cr_assert_eq(v, prev + 1);
		prev = v;
		n++;
	}
	cr_assert_eq(prev, 999);
	/* at least capacity - max(max_record, capacity / 16) of history: 64 - 7 slots */
	cr_assert_geq(n, 57, "history of %u records (from %u)", n, first);
	cr_assert_eq(shmring_lost(old), 0);
	shmring_detach(old);
	shmring_detach(prod);
}

/* ------------------------------------------------ inspection elsewhere */

struct inspect {
	const char *name;
	pid_t tethered_pid;
	uint64_t lag;
};

static int inspect_main(void *arg)
{
	struct inspect *in = arg;
	struct shmring *r;
	if (shmring_open(&r, in->name))
		return 10;
	struct shmring_subscriber s[8];
	int n = shmring_subscribers(r, s, 8);
	int rc = 0;
	if (n != 2)
		rc = 11;
	for (int i = 0; i < n && !rc; i++) {
		if (s[i].flags == 0 && (s[i].pid != in->tethered_pid || s[i].lag_records != in->lag ||
		                        s[i].lag_bytes != in->lag * 64))
			rc = 12;
		if (s[i].flags == SHMRING_SUB_LOSSY && (s[i].lag_records != 0 || s[i].lost != 0))
			rc = 13;
	}
	if (shmring_subscribers(r, NULL, 0) != 2)
		rc = 14;
	shmring_detach(r);
	return rc;
}

Test(broadcast, another_process_sees_each_subscribers_lag_and_policy)
{
	struct inspect *in = t_shared(sizeof *in);
	in->name = t_name("bc-inspect");
	struct shmring *prod = bcast_ring(64 << 10, in->name);
	struct shmring *a = second_handle(prod), *b = second_handle(prod);
	cr_assert_eq(shmring_subscribe(a, 0), 0);
	cr_assert_eq(shmring_subscribe(b, SHMRING_SUB_LOSSY), 0);
	uint32_t x = 1;
	for (int i = 0; i < 30; i++)
		cr_assert_eq(shmring_put(prod, &x, sizeof x, 0), 0);
	unsigned char buf[64];
	for (int i = 0; i < 30; i++)
		cr_assert_eq(shmring_get(b, buf, sizeof buf, 0), 4);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(shmring_get(a, buf, sizeof buf, 0), 4);
	in->tethered_pid = getpid();
	in->lag = 23;
	pid_t c = t_fork(inspect_main, in);
	t_expect_exit(c, 0, 10 * T_SEC);
	shmring_detach(a);
	shmring_detach(b);
	shmring_detach(prod);
	shmring_unlink(in->name);
}

/* ------------------------------------------------ the other read calls */

Test(broadcast, get_many_peek_next_len_poll_read_the_subscribers_stream)
{
	struct shmring *prod = bcast_ring(4096, NULL);
	struct shmring *a = second_handle(prod), *b = second_handle(prod);
	cr_assert_eq(shmring_subscribe(a, 0), 0);
	cr_assert_eq(shmring_subscribe(b, 0), 0);
	struct shmring_pollitem it = { .ring = a, .events = SHMRING_POLLIN };
	cr_assert_eq(shmring_poll(&it, 1, 0), 0);
	for (uint32_t i = 0; i < 5; i++)
		cr_assert_eq(shmring_put(prod, &i, sizeof i, 0), 0);
	cr_assert_eq(shmring_poll(&it, 1, 0), 1);
	cr_assert_eq(shmring_next_len(a), 4);
	struct shmring_span span;
	cr_assert_eq(shmring_peek(a, &span, 0), 4);
	cr_assert_eq(*(uint32_t *)span.data, 0);
	struct shmring_span again;
	cr_assert_eq(shmring_peek(a, &again, 0), -ENOBUFS);
	cr_assert_eq(shmring_release(a, &span), 0);
	unsigned char buf[256];
	struct iovec recs[8];
	cr_assert_eq(shmring_get_many(a, buf, sizeof buf, recs, 8, 0), 4);
	for (uint32_t i = 0; i < 4; i++)
		cr_assert_eq(*(uint32_t *)recs[i].iov_base, i + 1);
	cr_assert_eq(shmring_poll(&it, 1, 0), 0);
	/* b is untouched by a's reads */
	cr_assert_eq(shmring_get_many(b, buf, sizeof buf, recs, 8, 0), 5);
	cr_assert_eq(*(uint32_t *)recs[0].iov_base, 0);
	shmring_close(prod);
	cr_assert_eq(shmring_get(a, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(a);
	shmring_detach(b);
	shmring_detach(prod);
}

/* ------------------------------------------------ bad combinations */

Test(broadcast, bad_flag_combinations_are_einval)
{
	struct shmring *r = NULL;
	struct shmring_config cfg = { .flags = SHMRING_BROADCAST | SHMRING_OVERWRITE };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.flags = SHMRING_BROADCAST | SHMRING_REDELIVER;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	/* an overwriting put would discard records a redelivery ring holds */
	cfg.flags = SHMRING_OVERWRITE | SHMRING_REDELIVER;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.flags = SHMRING_BROADCAST | SHMRING_OVERWRITE | SHMRING_REDELIVER;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cr_assert_null(r, "nothing made");
	struct shmring *plain = t_ring(4096, 0);
	cr_assert_eq(shmring_subscribe(plain, 0), -EINVAL, "not a broadcast ring");
	cr_assert_eq(shmring_lost(plain), 0);
	shmring_detach(plain);
	struct shmring *b = bcast_ring(4096, NULL);
	cr_assert_eq(shmring_subscribe(b, 0x80), -EINVAL);
	cr_assert_eq(shmring_subscribe(NULL, 0), -EINVAL);
	cr_assert_eq(shmring_subscribers(NULL, NULL, 0), -EINVAL);
	cr_assert_eq(shmring_subscribers(b, NULL, 1), -EINVAL);
	shmring_detach(b);
}

/* ------------------------------------------------ lossy peek, event fd */

Test(broadcast, lossy_peek_overwritten_while_held_is_reported_and_counted)
{
	struct shmring *prod = bcast_ring(4096, NULL); /* 64 slots */
	struct shmring *sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, SHMRING_SUB_LOSSY), 0);
	uint32_t i = 0;
	cr_assert_eq(shmring_put(prod, &i, sizeof i, 0), 0);
	struct shmring_span span;
	cr_assert_eq(shmring_peek(sub, &span, 0), 4);
	for (i = 1; i < 200; i++)
		cr_assert_eq(shmring_put(prod, &i, sizeof i, 0), 0, "a lossy holder never blocks");
	cr_assert_eq(shmring_release(sub, &span), -EOVERFLOW);
	cr_assert_eq(shmring_lost(sub), 1, "the held record counts as lost");
	uint32_t v, got = 0, prev = 0;
	cr_assert_eq(shmring_get(sub, &v, sizeof v, 0), -EOVERFLOW);
	while (shmring_get(sub, &v, sizeof v, 0) == 4) {
		cr_assert(got == 0 || v == prev + 1);
		prev = v;
		got++;
	}
	cr_assert_eq(prev, 199);
	cr_assert_eq(got + shmring_lost(sub), 200, "got %u + lost %" PRIu64, got, shmring_lost(sub));
	shmring_detach(sub);
	shmring_detach(prod);
}

/* A producer mid-write over the record a lossy subscriber peeks next has
 * written its own length there, not yet its seq: the peek must not step by
 * that length.  It did: a 1024-byte claim over 8-byte records made the peek
 * return 1024 bytes and move the cursor 16 records on, and the get after
 * the release's -EOVERFLOW returned record 16 with shmring_lost() 1 though
 * records 0-15 were missed (a review found it, 2026-12-06). */
Test(broadcast, lossy_peek_over_a_claim_counts_what_it_skips)
{
	struct shmring_config cfg = { .capacity = 4096, .max_record = 1024,
	                              .flags = SHMRING_BROADCAST };
	struct shmring *prod = NULL;
	cr_assert_eq(shmring_create(&prod, NULL, &cfg), 0);
	struct shmring *sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, SHMRING_SUB_LOSSY | SHMRING_SUB_OLDEST), 0);
	uint64_t v;
	for (v = 0; v < 64; v++)
		cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	struct shmring_span w, span;
	cr_assert_eq(shmring_reserve(prod, 1024, &w, 0), 0); /* mid-write over records 0-15 */
	ssize_t n = shmring_peek(sub, &span, 0);
	if (n >= 0) {
		cr_assert_eq(n, (ssize_t)sizeof v, "the peek read the claim's length: %zd", n);
		cr_assert_eq(shmring_release(sub, &span), 0);
	} else {
		cr_assert_eq(n, -EOVERFLOW);
	}
	memset(w.data, 0xab, 1024);
	cr_assert_eq(shmring_commit(prod, &w, 1024), 0);
	/* every record is got or counted lost, exactly: 64 small ones and the
	 * 1024-byte one */
	uint64_t got = n == (ssize_t)sizeof v, big = 0, last = 0;
	char buf[1024];
	for (;;) {
		ssize_t g = shmring_get(sub, buf, sizeof buf, 0);
		if (g == -EOVERFLOW)
			continue;
		if (g < 0)
			break;
		if (g == (ssize_t)sizeof v) {
			memcpy(&last, buf, sizeof v);
			got++;
		} else {
			cr_assert_eq(g, 1024);
			big++;
		}
	}
	cr_assert_eq(last, 63);
	cr_assert_eq(big, 1);
	cr_assert_eq(got + big + shmring_lost(sub), 65,
	             "got %" PRIu64 " + the big one + lost %" PRIu64, got, shmring_lost(sub));
	shmring_detach(sub);
	shmring_detach(prod);
}

/* A tethered subscriber that leaves the consumer role and comes back: the
 * records published while it was away were not held for it, and it has not
 * lost any (a tethered subscriber's lost is 0, and -EOVERFLOW is for lossy
 * ones): it goes on from the next record.  It got -EOVERFLOW and
 * shmring_lost() 143 before. */
Test(broadcast, tethered_subscriber_back_after_leave_loses_nothing)
{
	struct shmring *prod = bcast_ring(4096, NULL);
	struct shmring *sub = second_handle(prod), *other = second_handle(prod);
	cr_assert_eq(shmring_subscribe(other, SHMRING_SUB_LOSSY), 0); /* a consumer stays */
	cr_assert_eq(shmring_subscribe(sub, 0), 0);
	uint64_t v = 0, got;
	for (int i = 0; i < 10; i++) {
		v++;
		cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	}
	for (int i = 0; i < 5; i++)
		cr_assert_eq(shmring_get(sub, &got, sizeof got, 0), (ssize_t)sizeof got);
	cr_assert_eq(shmring_leave(sub, SHMRING_CONSUMER), 0);
	for (int i = 0; i < 200; i++) {
		v++;
		cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0, "nobody holds producers back");
	}
	ssize_t n = shmring_get(sub, &got, sizeof got, 0);
	cr_assert_eq(n, -EAGAIN, "back after leave: %zd (%s)", n, shmring_strerror((int)n));
	cr_assert_eq(shmring_lost(sub), 0);
	v++;
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	cr_assert_eq(shmring_get(sub, &got, sizeof got, 0), (ssize_t)sizeof got);
	cr_assert_eq(got, v, "the next record published");
	cr_assert_eq(shmring_lost(sub), 0);
	/* a lossy one's running total survives the same (the rejoin reset it) */
	ssize_t gn;
	while ((gn = shmring_get(other, &got, sizeof got, 0)) != -EAGAIN)
		cr_assert(gn == (ssize_t)sizeof got || gn == -EOVERFLOW, "get = %zd", gn);
	uint64_t lost = shmring_lost(other);
	cr_assert_gt(lost, 0, "the lossy subscriber was lapped");
	cr_assert_eq(shmring_leave(other, SHMRING_CONSUMER), 0);
	v++;
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	cr_assert_eq(shmring_get(other, &got, sizeof got, 0), -EAGAIN);
	cr_assert_eq(shmring_lost(other), lost, "shmring_lost() is a running total");
	shmring_detach(other);
	shmring_detach(sub);
	shmring_detach(prod);
}

/* A handle that has not subscribed yet, its ring's only producer gone: a
 * get (which subscribes) returns -EPIPE at once, so poll must say POLLIN
 * and the event fd fire.  Both waited for the ring to be closed before. */
Test(broadcast, unsubscribed_handle_polls_the_end_of_stream)
{
	struct shmring *prod = bcast_ring(4096, NULL);
	struct shmring *sub = second_handle(prod);
	cr_assert_eq(shmring_put(prod, "x", 1, 0), 0);
	shmring_detach(prod); /* the only producer: the end of the stream */
	struct shmring_pollitem it = { sub, SHMRING_POLLIN, 0 };
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_poll(&it, 1, 2 * T_SEC), 1, "poll timed out");
	cr_assert_lt(t_now_ns() - t0, T_SEC);
	cr_assert(it.revents & SHMRING_POLLIN);
	int efd = shmring_event_fd(sub);
	cr_assert_geq(efd, 0);
	struct pollfd pf = { efd, POLLIN, 0 };
	cr_assert_eq(poll(&pf, 1, 2000), 1, "the event fd did not fire");
	char buf[8];
	cr_assert_eq(shmring_get(sub, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(sub);
}

Test(broadcast, event_fd_follows_the_subscribers_stream)
{
	struct shmring *prod = bcast_ring(4096, NULL);
	struct shmring *sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, 0), 0);
	int fd = shmring_event_fd(sub);
	cr_assert_geq(fd, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 100), 0, "nothing yet");
	uint32_t x = 7, v;
	cr_assert_eq(shmring_put(prod, &x, sizeof x, 0), 0);
	cr_assert_eq(poll(&p, 1, 5000), 1);
	cr_assert_eq(shmring_event_ack(sub), 0);
	cr_assert_eq(shmring_get(sub, &v, sizeof v, 0), 4);
	cr_assert_eq(v, 7);
	/* ack, then drain (poll-and-events.md): the watcher may have signalled
	 * again before the get; an ack after the drain leaves nothing */
	cr_assert_eq(shmring_event_ack(sub), 0);
	p.revents = 0;
	cr_assert_eq(poll(&p, 1, 100), 0, "drained");
	shmring_detach(sub);
	shmring_detach(prod);
}

/* ------------------------------------------------ states (issue 11) */

/* Issue 11's states on a broadcast ring: a subscriber holds the consumer
 * role, so the last one leaving is a broken pipe for producers, and the last
 * producer leaving is end of stream for subscribers (after what is left);
 * a SHMRING_PERSISTENT broadcast ring has neither. */
Test(broadcast, subscribers_are_consumers_for_broken_pipe_and_end_of_stream)
{
	uint32_t v = 7, got = 0;
	/* broken pipe */
	struct shmring *prod = bcast_ring(4096, NULL);
	struct shmring *sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, 0), 0);
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	cr_assert_eq(shmring_get(sub, &got, sizeof got, 0), (ssize_t)sizeof got);
	cr_assert_eq(t_info(prod).consumers, 1);
	shmring_detach(sub);
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), -EPIPE);
	shmring_detach(prod);

	/* end of stream */
	prod = bcast_ring(4096, NULL);
	sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, 0), 0);
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	cr_assert_eq(shmring_leave(prod, SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_get(sub, &got, sizeof got, 0), (ssize_t)sizeof got);
	cr_assert_eq(got, 7);
	cr_assert_eq(shmring_get(sub, &got, sizeof got, 100 * T_MS), -EPIPE);
	shmring_detach(sub);
	shmring_detach(prod);

	/* persistent: neither */
	struct shmring_config cfg = { .capacity = 4096, .max_record = REC_MAX,
	                              .flags = SHMRING_BROADCAST | SHMRING_PERSISTENT };
	cr_assert_eq(shmring_create(&prod, NULL, &cfg), 0);
	sub = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub, 0), 0);
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0);
	cr_assert_eq(shmring_leave(prod, SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_get(sub, &got, sizeof got, 0), (ssize_t)sizeof got);
	cr_assert_eq(shmring_get(sub, &got, sizeof got, 20 * T_MS), -ETIMEDOUT);
	struct shmring *sub2 = second_handle(prod);
	cr_assert_eq(shmring_subscribe(sub2, 0), 0);
	shmring_detach(sub);
	shmring_detach(sub2);
	cr_assert_eq(shmring_put(prod, &v, sizeof v, 0), 0, "no broken pipe on a persistent ring");
	shmring_detach(prod);
}

/* ------------------------------------------------ joining while lapped */

/* A lossy subscriber joining "from the next record" walks the history from
 * the frontier to count the records below its start (its recno, from which
 * a later lap counts what it lost).  It holds nothing back, so producers
 * may overwrite what it walks.  Before, a walk the frontier moved during was
 * thrown away whole and began again from the frontier: on a 64 MiB ring (a
 * million slots, a walk of tens of milliseconds) with a producer putting
 * without pause (the frontier moves every 1/16 of the ring), every walk was
 * thrown away and the subscribe returned only once the producer stopped.
 * Now the walk checks each record against the frontier and goes on from it
 * (broadcast.c walk_published_lossy). */
struct lap_join {
	struct shmring *r;
	_Atomic uint64_t put;  /* records put so far */
	_Atomic int stop;
};

static int lap_join_producer(void *arg)
{
	struct lap_join *l = arg;
	int64_t until = t_now_ns() + 30 * T_SEC; /* (the test stops it sooner) */
	for (uint64_t s = 0; !atomic_load(&l->stop) && t_now_ns() < until;) {
		for (int i = 0; i < 256; i++, s++) {
			uint64_t rec[8] = { s, ~s };
			if (shmring_put(l->r, rec, sizeof rec, 0))
				return 10;
			atomic_store(&l->put, s + 1);
		}
	}
	return 0;
}

Test(broadcast, lossy_subscribe_returns_while_a_producer_laps_the_ring)
{
	struct lap_join *l = t_shared(sizeof *l);
	struct shmring_config cfg = { .capacity = 64u << 20, .max_record = 64,
	                              .flags = SHMRING_BROADCAST };
	cr_assert_eq(shmring_create(&l->r, NULL, &cfg), 0);
	/* a lossy subscriber that never reads, for the whole test: the joiners'
	 * detach leaves a consumer, so the puts never see a broken pipe */
	cr_assert_eq(shmring_subscribe(l->r, SHMRING_SUB_LOSSY), 0);
	uint64_t nslots = (64u << 20) / 64;
	pid_t p = t_fork(lap_join_producer, l);
	int64_t fill_by = t_now_ns() + 20 * T_SEC;
	while (atomic_load(&l->put) < 2 * nslots) { /* the history is a whole lap */
		cr_assert_lt(t_now_ns(), fill_by, "the producer put only %llu records in 20 s",
		             (unsigned long long)atomic_load(&l->put));
		t_sleep_ns(T_MS);
	}
	for (int round = 0; round < 3; round++) {
		struct shmring *h = second_handle(l->r);
		uint64_t before = atomic_load(&l->put);
		int64_t t0 = t_now_ns();
		cr_assert_eq(shmring_subscribe(h, SHMRING_SUB_LOSSY), 0);
		int64_t el = t_now_ns() - t0;
		uint64_t moved = atomic_load(&l->put) - before;
		fprintf(stderr, "broadcast: a lossy subscribe took %lld us, %llu records put meanwhile\n",
		        (long long)(el / 1000), (unsigned long long)moved);
		cr_assert_lt(el, 2 * T_SEC, "a lossy subscribe took %lld ms (%llu records put meanwhile)",
		             (long long)(el / T_MS), (unsigned long long)moved);
		/* it starts after what was put before it began, and counts
		 * exactly what it loses from there (lapped before its first
		 * record, which a loaded machine may do: from the first one after) */
		uint64_t rec[8], expect = 0, lost_before = 0;
		bool first = true, lapped_first = false;
		for (int got = 0; got < 20000;) {
			ssize_t n = shmring_get(h, rec, sizeof rec, 5 * T_SEC);
			if (n == -EOVERFLOW && first) {
				lapped_first = true;
				lost_before = shmring_lost(h);
				continue;
			}
			if (n == -EOVERFLOW) {
				uint64_t lost = shmring_lost(h);
				cr_assert_gt(lost, lost_before);
				expect += lost - lost_before;
				lost_before = lost;
				continue;
			}
			cr_assert_eq(n, (ssize_t)sizeof rec, "get: %s", shmring_strerror((int)n));
			cr_assert_eq(rec[1], ~rec[0], "a torn record");
			if (first) {
				cr_assert_geq(rec[0] + 1, before, "the first record (%llu) was put before "
				              "the subscribe began (%llu put)", (unsigned long long)rec[0],
				              (unsigned long long)before);
				expect = rec[0];
				first = false;
				if (lapped_first)
					fprintf(stderr, "broadcast: lapped before its first record\n");
			}
			cr_assert_eq(rec[0], expect, "got %llu, expected %llu (lost %llu)",
			             (unsigned long long)rec[0], (unsigned long long)expect,
			             (unsigned long long)lost_before);
			expect++;
			got++;
		}
		shmring_detach(h);
	}
	atomic_store(&l->stop, 1);
	t_expect_exit(p, 0, 10 * T_SEC);
	shmring_detach(l->r);
}
