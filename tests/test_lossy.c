/*
 * test_lossy.c - lossy plain rings (issue 13): the dropped counter, and
 * SHMRING_OVERWRITE (a put on a full ring discards the oldest unread
 * records, counted in overwritten, reported once by -EOVERFLOW).
 */
#include "common.h"

#include <inttypes.h>
#include <stdatomic.h>

TestSuite(lossy, .timeout = T_TIMEOUT, .fini = t_cleanup);

static struct shmring *overwrite_ring(size_t capacity)
{
	struct shmring_config cfg = { .capacity = capacity, .flags = SHMRING_OVERWRITE };
	struct shmring *r = NULL;
	int rc = shmring_create(&r, NULL, &cfg);
	cr_assert_eq(rc, 0, "create: %s", shmring_strerror(rc));
	return r;
}

struct rec {
	uint32_t producer;
	uint32_t check;
	uint64_t seq;
};
static uint32_t rec_check_word(uint32_t producer, uint64_t seq)
{
	return (uint32_t)t_mix64(((uint64_t)producer << 48) ^ seq);
}

/* ------------------------------------------------ dropped */

#define DROP_PRODUCERS 3
#define DROP_N 30000

struct drop {
	struct shmring *r;
	_Atomic uint64_t refused, put, got;
	_Atomic int go;
};
struct drop_arg {
	struct drop *d;
	uint32_t id;
};

static int drop_producer(void *arg)
{
	struct drop_arg *a = arg;
	struct drop *d = a->d;
	while (!atomic_load(&d->go))
		;
	uint64_t refused = 0, put = 0;
	for (uint64_t s = 0; s < DROP_N; s++) {
		struct rec rec = { a->id, rec_check_word(a->id, s), s };
		/* half with timeout 0, half with a short timeout that expires */
		int rc = shmring_put(d->r, &rec, sizeof rec, (s & 1) ? 0 : 20000);
		if (rc == 0)
			put++;
		else if (rc == -EAGAIN || rc == -ETIMEDOUT)
			refused++;
		else
			return 10;
	}
	atomic_fetch_add(&d->refused, refused);
	atomic_fetch_add(&d->put, put);
	return 0;
}

static int drop_consumer(void *arg)
{
	struct drop *d = arg;
	uint64_t got = 0;
	struct rec rec;
	for (;;) {
		ssize_t n = shmring_get(d->r, &rec, sizeof rec, 20 * T_SEC);
		if (n == -EPIPE)
			break;
		if (n != sizeof rec || rec.check != rec_check_word(rec.producer, rec.seq))
			return 20;
		got++;
		if ((got & 255) == 0)
			t_sleep_ns(T_MS / 5); /* slow: the ring fills */
	}
	atomic_fetch_add(&d->got, got);
	return 0;
}

Test(lossy, dropped_counts_every_refused_put_exactly_under_concurrency)
{
	struct drop *d = t_shared(sizeof *d);
	d->r = t_ring(4096, 0);
	cr_assert_eq(shmring_declare(d->r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	pid_t c[2], p[DROP_PRODUCERS];
	struct drop_arg arg = { d, 0 };
	for (int i = 0; i < DROP_PRODUCERS; i++) {
		arg.id = (uint32_t)i;
		p[i] = t_fork(drop_producer, &arg);
	}
	cr_assert_eq(shmring_leave(d->r, SHMRING_PRODUCER), 0);
	for (int i = 0; i < 2; i++)
		c[i] = t_fork(drop_consumer, d);
	cr_assert_eq(shmring_leave(d->r, SHMRING_CONSUMER), 0);
	atomic_store(&d->go, 1);
	for (int i = 0; i < DROP_PRODUCERS; i++)
		t_expect_exit(p[i], 0, 25 * T_SEC);
	for (int i = 0; i < 2; i++)
		t_expect_exit(c[i], 0, 25 * T_SEC);
	uint64_t refused = atomic_load(&d->refused), put = atomic_load(&d->put);
	cr_log_info("%" PRIu64 " put, %" PRIu64 " refused", put, refused);
	cr_assert_eq(put + refused, (uint64_t)DROP_PRODUCERS * DROP_N);
	cr_assert_gt(refused, 0, "the ring never filled");
	cr_assert_eq(t_info(d->r).dropped, refused);
	cr_assert_eq(atomic_load(&d->got), put);
	cr_assert_eq(t_info(d->r).overwritten, 0);
	shmring_detach(d->r);
}

Test(lossy, dropped_counts_batches_and_reservations)
{
	struct shmring *r = t_ring(4096, 0); /* 64 slots */
	unsigned char rec[40] = { 0 };
	int n = 0;
	while (shmring_put(r, rec, sizeof rec, 0) == 0)
		n++;
	cr_assert_eq(n, 64);
	cr_assert_eq(t_info(r).dropped, 1);
	cr_assert_eq(t_info(r).delivery, 0, "a plain ring");
	struct iovec v[5];
	for (int i = 0; i < 5; i++)
		v[i] = (struct iovec){ rec, sizeof rec };
	cr_assert_eq(shmring_put_many(r, v, 5, 0), -EAGAIN);
	cr_assert_eq(t_info(r).dropped, 6);
	struct shmring_span span;
	cr_assert_eq(shmring_reserve(r, 10, &span, 1000), -ETIMEDOUT);
	cr_assert_eq(t_info(r).dropped, 7);
	/* room for 2 of 5: the other 3 are refused */
	cr_assert_eq(shmring_get(r, rec, sizeof rec, 0), 40);
	cr_assert_eq(shmring_get(r, rec, sizeof rec, 0), 40);
	cr_assert_eq(shmring_put_many(r, v, 5, 0), 2);
	cr_assert_eq(t_info(r).dropped, 10);
	/* full: a record too large for the ring is not refused for want of
	 * room, nor is one after it (the batch stops there anyway); it used to
	 * count all five */
	static unsigned char big[5000];
	v[2] = (struct iovec){ big, sizeof big };
	cr_assert_eq(shmring_put_many(r, v, 5, 0), -EAGAIN);
	cr_assert_eq(t_info(r).dropped, 12);
	shmring_detach(r);
}

/* ------------------------------------------------ overwrite */

Test(lossy, overwrite_discards_oldest_reports_eoverflow_once_then_goes_on)
{
	struct shmring *r = overwrite_ring(4096); /* 64 slots */
	struct shmring *c = NULL;
	cr_assert_eq(shmring_attach_fd(&c, shmring_fd(r)), 0);
	for (uint32_t i = 0; i < 64 + 10; i++)
		cr_assert_eq(shmring_put(r, &i, sizeof i, 0), 0, "put %u waited", i);
	struct shmring_info info = t_info(r);
	cr_assert_eq(info.overwritten, 10);
	cr_assert_eq(info.delivery, SHMRING_OVERWRITE, "info tells an overwrite ring");
	cr_assert_eq(info.dropped, 0);
	cr_assert_eq(info.unfinished, 64, "discarded records' tasks are forgiven");
	uint32_t v;
	cr_assert_eq(shmring_get(c, &v, sizeof v, 0), -EOVERFLOW);
	for (uint32_t i = 10; i < 74; i++) {
		cr_assert_eq(shmring_get(c, &v, sizeof v, 0), 4);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(shmring_get(c, &v, sizeof v, 0), -EAGAIN);
	shmring_detach(c);
	shmring_detach(r);
}

/* A get asleep on an empty overwrite ring (its process stopped, to make the
 * order certain) while a producer fills it and discards the oldest record:
 * the get must report the discard (-EOVERFLOW) before it hands out the
 * record after the gap.  It returned that record, and the next get the
 * -EOVERFLOW, out of place (a review found it, 2026-12-06). */
static struct shmring *ow_ring;
static int three_waiting_gets(void *arg)
{
	int out = *(int *)arg;
	ssize_t got[3];
	uint32_t v[3] = { 0 };
	for (int i = 0; i < 3; i++)
		got[i] = shmring_get(ow_ring, &v[i], sizeof v[i], 10 * T_SEC);
	char line[96];
	int n = snprintf(line, sizeof line, "%zd %u %zd %u %zd %u", got[0], v[0], got[1], v[1],
	                 got[2], v[2]);
	return write(out, line, (size_t)n) == n ? 0 : 1;
}

Test(lossy, a_waiting_get_reports_what_was_discarded_first)
{
	ow_ring = overwrite_ring(4096);
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = t_fork(three_waiting_gets, &pfd[1]);
	t_sleep_ns(300 * T_MS); /* asleep in its first get */
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	int st;
	cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
	uint32_t i = 0;
	while (t_info(ow_ring).overwritten < 1) {
		cr_assert_eq(shmring_put(ow_ring, &i, sizeof i, 0), 0);
		cr_assert_lt(++i, 100000);
	}
	cr_assert_eq(kill(pid, SIGCONT), 0);
	t_expect_exit(pid, 0, 20 * T_SEC);
	char line[96] = { 0 };
	cr_assert_gt(read(pfd[0], line, sizeof line - 1), 0);
	ssize_t g0, g1, g2;
	unsigned v0, v1, v2;
	cr_assert_eq(sscanf(line, "%zd %u %zd %u %zd %u", &g0, &v0, &g1, &v1, &g2, &v2), 6, "%s", line);
	cr_assert_eq(g0, -EOVERFLOW, "the waiting get: %s", line);
	cr_assert_eq(g1, 4, "%s", line);
	cr_assert_eq(v1, 1, "the record after the discarded one: %s", line);
	cr_assert_eq(g2, 4, "%s", line);
	cr_assert_eq(v2, 2, "%s", line);
	close(pfd[0]);
	close(pfd[1]);
	shmring_detach(ow_ring);
}

Test(lossy, overwrite_never_discards_a_held_record)
{
	struct shmring *r = overwrite_ring(4096);
	struct shmring *c = NULL;
	cr_assert_eq(shmring_attach_fd(&c, shmring_fd(r)), 0);
	for (uint32_t i = 0; i < 64; i++)
		cr_assert_eq(shmring_put(r, &i, sizeof i, 0), 0);
	struct shmring_span held;
	cr_assert_eq(shmring_peek(c, &held, 0), 4);
	cr_assert_eq(*(uint32_t *)held.data, 0);
	/* The only room is behind the held record: discarding the unread ones
	 * would free nothing, so nothing is discarded and the put waits. */
	uint32_t x = 100;
	cr_assert_eq(shmring_put(r, &x, sizeof x, 0), -EAGAIN);
	cr_assert_eq(shmring_put(r, &x, sizeof x, 50 * T_MS), -ETIMEDOUT);
	cr_assert_eq(t_info(r).overwritten, 0);
	cr_assert_eq(t_info(r).dropped, 2);
	cr_assert_eq(*(uint32_t *)held.data, 0, "the held record is intact");
	cr_assert_eq(shmring_release(c, &held), 0);
	/* the released slot takes one; the next discards record 1 */
	cr_assert_eq(shmring_put(r, &x, sizeof x, 0), 0);
	cr_assert_eq(t_info(r).overwritten, 0);
	cr_assert_eq(shmring_put(r, &x, sizeof x, 0), 0);
	cr_assert_eq(t_info(r).overwritten, 1);
	uint32_t v;
	cr_assert_eq(shmring_get(c, &v, sizeof v, 0), -EOVERFLOW);
	cr_assert_eq(shmring_get(c, &v, sizeof v, 0), 4);
	cr_assert_eq(v, 2);
	shmring_detach(c);
	shmring_detach(r);
}

/* Several producers and consumers; every record either arrives (once, in
 * its producer's order, intact) or is counted overwritten. */
#define OW_PRODUCERS 3
#define OW_CONSUMERS 2
#define OW_N 40000

struct ow {
	struct shmring *r;
	_Atomic uint64_t got, overflows;
	_Atomic int go;
};
struct ow_arg {
	struct ow *o;
	uint32_t id;
};

static int ow_producer(void *arg)
{
	struct ow_arg *a = arg;
	while (!atomic_load(&a->o->go))
		;
	for (uint64_t s = 0; s < OW_N; s++) {
		struct rec rec = { a->id, rec_check_word(a->id, s), s };
		if (shmring_put(a->o->r, &rec, sizeof rec, 10 * T_SEC) != 0)
			return 10;
	}
	return 0;
}

static int ow_consumer(void *arg)
{
	struct ow *o = arg;
	uint64_t got = 0, overflows = 0;
	int64_t last[OW_PRODUCERS];
	for (int i = 0; i < OW_PRODUCERS; i++)
		last[i] = -1;
	struct rec rec;
	for (;;) {
		ssize_t n = shmring_get(o->r, &rec, sizeof rec, 20 * T_SEC);
		if (n == -EPIPE)
			break;
		if (n == -EOVERFLOW) {
			overflows++;
			continue;
		}
		if (n != sizeof rec || rec.producer >= OW_PRODUCERS ||
		    rec.check != rec_check_word(rec.producer, rec.seq))
			return 20;
		if ((int64_t)rec.seq <= last[rec.producer])
			return 21; /* twice, or out of its producer's order */
		last[rec.producer] = (int64_t)rec.seq;
		got++;
		if ((got & 1023) == 0)
			t_sleep_ns(T_MS); /* fall behind now and then */
	}
	atomic_fetch_add(&o->got, got);
	atomic_fetch_add(&o->overflows, overflows);
	return 0;
}

Test(lossy, overwritten_is_exact_under_concurrency)
{
	struct ow *o = t_shared(sizeof *o);
	o->r = overwrite_ring(8192);
	cr_assert_eq(shmring_declare(o->r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	pid_t p[OW_PRODUCERS], c[OW_CONSUMERS];
	struct ow_arg arg = { o, 0 };
	for (int i = 0; i < OW_PRODUCERS; i++) {
		arg.id = (uint32_t)i;
		p[i] = t_fork(ow_producer, &arg);
	}
	cr_assert_eq(shmring_leave(o->r, SHMRING_PRODUCER), 0);
	for (int i = 0; i < OW_CONSUMERS; i++)
		c[i] = t_fork(ow_consumer, o);
	cr_assert_eq(shmring_leave(o->r, SHMRING_CONSUMER), 0);
	atomic_store(&o->go, 1);
	for (int i = 0; i < OW_PRODUCERS; i++)
		t_expect_exit(p[i], 0, 25 * T_SEC);
	for (int i = 0; i < OW_CONSUMERS; i++)
		t_expect_exit(c[i], 0, 25 * T_SEC);
	struct shmring_info info = t_info(o->r);
	uint64_t got = atomic_load(&o->got);
	cr_log_info("%" PRIu64 " got, %" PRIu64 " overwritten, %" PRIu64 " overflows reported",
	            got, info.overwritten, atomic_load(&o->overflows));
	cr_assert_gt(info.overwritten, 0, "nothing was ever overwritten");
	cr_assert_eq(got + info.overwritten, (uint64_t)OW_PRODUCERS * OW_N);
	cr_assert_gt(atomic_load(&o->overflows), 0);
	cr_assert_leq(atomic_load(&o->overflows), info.overwritten);
	cr_assert_eq(info.unfinished, got, "tasks: one per delivered record");
	cr_assert_eq(info.dropped, 0);
	shmring_detach(o->r);
}

/* ------------------------------------------------ overwrite and join */

#define OJ_PUTS 100

static int oj_child(void *arg)
{
	struct shmring *r = arg;
	uint64_t v = 0;
	for (int i = 0; i < OJ_PUTS; i++, v++)
		if (shmring_put(r, &v, sizeof v, 0) != 0)
			return 10;
	raise(SIGKILL); /* dies holding the producer role */
	return 11;
}

/* A producer whose puts discarded records while join is in use, then died:
 * each discard took its record's task off once (the discard is counted in
 * the producer's entry as taken, got, and as done), so the sweep that finds
 * it dead forgives nothing more.  Fails if the discard's done is not counted
 * (the sweep then forgives got - done = the discards a second time). */
Test(lossy, overwrite_discards_are_forgiven_once_when_the_producer_dies)
{
	struct shmring *r = overwrite_ring(4096); /* 64 slots: 64 records of 8 bytes */
	struct shmring_info info = t_info(r);
	uint64_t fit = info.capacity / SHMRING_SLOT_SIZE;
	cr_assert_lt(fit, OJ_PUTS);
	/* join in use from here on (a task_done with nothing to do refuses) */
	cr_assert_eq(shmring_task_done(r), -ERANGE);
	pid_t pid = t_fork(oj_child, r);
	int st = t_wait_status(pid, 10000 * T_MS);
	char sb[64];
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child: %s",
	          t_status_str(st, sb, sizeof sb));
	info = t_info(r);
	cr_assert_eq(info.overwritten, OJ_PUTS - fit);
	/* a join that sweeps (the dead producer is found and reaped) */
	int64_t deadline = t_now_ns() + 5000 * T_MS;
	do {
		cr_assert_eq(shmring_join(r, 20 * T_MS), -ETIMEDOUT);
		info = t_info(r);
	} while (info.producers && t_now_ns() < deadline);
	cr_assert_eq(info.producers, 0, "the dead producer was not reaped");
	cr_assert_eq(info.lost_tasks, 0, "%" PRIu64 " tasks forgiven", info.lost_tasks);
	cr_assert_eq(shmring_unfinished(r), fit, "%" PRIu64 " unfinished, expected %" PRIu64,
	             (uint64_t)shmring_unfinished(r), fit);
	/* the survivors are there, and their tasks can be done */
	for (uint64_t i = 0; i < fit; i++) {
		uint64_t v;
		ssize_t n = shmring_get(r, &v, sizeof v, 0);
		if (i == 0 && n == -EOVERFLOW)
			n = shmring_get(r, &v, sizeof v, 0);
		cr_assert_eq(n, (ssize_t)sizeof v, "get %" PRIu64 ": %zd", i, n);
		cr_assert_eq(v, OJ_PUTS - fit + i);
		cr_assert_eq(shmring_task_done(r), 0);
	}
	cr_assert_eq(shmring_join(r, 0), 0);
	shmring_detach(r);
}
