/*
 * test_redeliver.c - SHMRING_REDELIVER: a record a consumer peeked and never
 * released is delivered again when the consumer dies (real processes,
 * SIGKILL), counted per delivery; dead letters after max_deliveries;
 * requeue; a full ring is not stalled by a parked record; end of stream
 * waits for held and parked records; released ones never come back.
 */
#include "common.h"
#include "handle.h" /* tests are built with -Iring: op records */

TestSuite(redeliver, .timeout = T_TIMEOUT);

static struct shmring *rr;

static struct shmring *redeliver_ring(size_t capacity, size_t max_record, unsigned max_deliveries)
{
	struct shmring_config cfg = { .capacity = capacity, .max_record = max_record,
	                              .flags = SHMRING_REDELIVER,
	                              .max_deliveries = max_deliveries };
	struct shmring *r = NULL;
	int rc = shmring_create(&r, NULL, &cfg);
	cr_assert_eq(rc, 0, "create with SHMRING_REDELIVER = %d (%s)", rc, shmring_strerror(rc));
	return r;
}

struct peeker {
	int ready[2];
	int n;            /* records to peek */
	int release;      /* of which the first `release` are released again */
	unsigned deliv;   /* the first one's deliveries must be this (0: any) */
	int use_get;      /* take with shmring_get instead (copy: acked at once) */
};

/* Child: take n records, release some, say so, hang (until SIGKILL). */
static int peek_and_hang(void *arg)
{
	struct peeker *a = arg;
	close(a->ready[0]);
	struct shmring_span sp[8];
	for (int i = 0; i < a->n; i++) {
		if (a->use_get) {
			char buf[64];
			if (shmring_get(rr, buf, sizeof buf, 10 * T_SEC) < 0)
				return 1;
			continue;
		}
		if (shmring_peek(rr, &sp[i], 10 * T_SEC) < 0)
			return 1;
		if (i == 0 && a->deliv && sp[i].deliveries != a->deliv)
			return 10 + (int)sp[i].deliveries;
	}
	for (int i = 0; i < a->release; i++)
		if (shmring_release(rr, &sp[i]) != 0)
			return 2;
	if (write(a->ready[1], "r", 1) != 1)
		return 3;
	for (;;)
		pause();
}

/* Fork a peeker, wait until it holds its records, then SIGKILL it. */
static void peek_then_die(struct peeker *a)
{
	cr_assert_eq(pipe(a->ready), 0);
	pid_t pid = t_fork(peek_and_hang, a);
	close(a->ready[1]);
	char b;
	ssize_t n = read(a->ready[0], &b, 1);
	close(a->ready[0]);
	if (n != 1) {
		char buf[96];
		cr_assert_fail("peeker did not get ready: %s",
		               t_status_str(t_wait_status(pid, T_SEC), buf, sizeof buf));
	}
	kill(pid, SIGKILL);
	int st = t_wait_status(pid, 5 * T_SEC);
	cr_assert(st >= 0 && WIFSIGNALED(st), "peeker was not killed");
}

/* Let sweeps run (a joiner sweeps while it waits) until cond holds. */
#define SWEEP_UNTIL(cond)                                                              \
	do {                                                                           \
		int64_t dl_ = t_now_ns() + 10 * T_SEC;                                 \
		while (!(cond) && t_now_ns() < dl_)                                    \
			(void)shmring_join(rr, 20 * T_MS);                             \
		cr_assert((cond), "not within 10 s: %s", #cond);                        \
	} while (0)

static void expect_record(struct shmring_span *sp, const char *what, unsigned deliveries)
{
	cr_assert_eq(sp->len, strlen(what));
	cr_assert_eq(memcmp(sp->data, what, sp->len), 0, "record %.*s, expected %s",
	             (int)sp->len, (char *)sp->data, what);
	cr_assert_eq(sp->deliveries, deliveries, "%s: deliveries %u, expected %u", what,
	             sp->deliveries, deliveries);
}

/* The consumer dies holding a peeked record: a consumer waiting on the
 * (otherwise empty) ring gets it again, deliveries == 2, within the
 * liveness bound; it was not lost. */
Test(redeliver, dead_consumers_peek_is_delivered_again)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct peeker a = { .n = 1, .deliv = 1 };
	peek_then_die(&a);
	struct shmring_span sp;
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_peek(rr, &sp, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(n, 1, "peek after the consumer died = %zd", n);
	expect_record(&sp, "A", 2);
	cr_assert_lt(el, T_WAKE_BOUND_NS, "redelivered after %lld ms", (long long)(el / T_MS));
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.lost_records, 0);
	cr_assert_eq(in.redelivered, 1);
	cr_assert_eq(in.redeliver_waiting, 0);
	cr_assert_eq(in.delivery, SHMRING_REDELIVER, "info tells a redelivery ring");
	cr_assert_eq(shmring_release(rr, &sp), 0);
	/* acked: never again */
	cr_assert_eq(shmring_peek(rr, &sp, 100 * T_MS), -ETIMEDOUT);
	cr_assert_eq(shmring_put(rr, "B", 1, 0), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "B", 1);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	shmring_detach(rr);
}

/* A parked record comes out before records nobody has taken yet. */
Test(redeliver, parked_record_comes_before_untaken_ones)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	cr_assert_eq(shmring_put(rr, "B", 1, 0), 0);
	cr_assert_eq(shmring_put(rr, "C", 1, 0), 0);
	struct peeker a = { .n = 1 };
	peek_then_die(&a);
	SWEEP_UNTIL(t_info(rr).redeliver_waiting == 1);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "A", 2);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "B", 1);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "C", 1);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), -EAGAIN);
	shmring_detach(rr);
}

/* Killed twice holding the same record, with max_deliveries 2: a dead
 * letter, counted, not delivered again, readable with peek_dead; its
 * release gives the room back. */
Test(redeliver, max_deliveries_makes_a_dead_letter)
{
	rr = redeliver_ring(4096, 4096, 2);
	cr_assert_eq(shmring_put(rr, "poison", 6, 0), 0);
	struct peeker a = { .n = 1, .deliv = 1 };
	peek_then_die(&a);
	SWEEP_UNTIL(t_info(rr).redeliver_waiting == 1);
	struct peeker b = { .n = 1, .deliv = 2 };
	peek_then_die(&b);
	SWEEP_UNTIL(t_info(rr).dead_letters == 1);
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.dead_waiting, 1);
	cr_assert_eq(in.redeliver_waiting, 0);
	cr_assert_eq(in.lost_records, 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(rr, &sp, 100 * T_MS), -ETIMEDOUT, "a dead letter is not delivered");
	cr_assert_eq(shmring_peek_dead(rr, &sp, T_SEC), 6);
	expect_record(&sp, "poison", 2);
	cr_assert_eq(shmring_peek_dead(rr, &sp, 0), -EAGAIN, "one dead letter only");
	/* it holds its room until it is released */
	static char big[4096];
	cr_assert_eq(shmring_put(rr, big, 4096 - SHMRING_SLOT_SIZE, 0), 0);
	cr_assert_eq(shmring_put(rr, big, 1, 0), -EAGAIN);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_put(rr, big, 1, T_SEC), 0);
	cr_assert_eq(t_info(rr).dead_waiting, 0);
	shmring_detach(rr);
}

/* requeue is a negative ack: the record comes back, next delivery counted;
 * with max_deliveries reached it becomes a dead letter, and drop_dead
 * releases dead letters unread. */
/* Put A and B, take A and requeue it (sp: its spent span). */
static void a_b_then_requeue_a(struct shmring_span *sp)
{
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	cr_assert_eq(shmring_put(rr, "B", 1, 0), 0);
	cr_assert_eq(shmring_peek(rr, sp, 0), 1);
	expect_record(sp, "A", 1);
	cr_assert_eq(shmring_requeue(rr, sp), 0);
}

Test(redeliver, requeue_gives_the_record_back)
{
	rr = redeliver_ring(4096, 0, 3);
	struct shmring_span sp;
	a_b_then_requeue_a(&sp);
	cr_assert_null(sp.data, "the span is spent");
	cr_assert_eq(shmring_requeue(rr, &sp), -EINVAL);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "A", 2);
	cr_assert_eq(shmring_requeue(rr, &sp), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "A", 3);
	cr_assert_eq(shmring_requeue(rr, &sp), 0, "the third delivery: a dead letter");
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.dead_letters, 1);
	cr_assert_eq(in.redelivered, 2);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	expect_record(&sp, "B", 1);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), -EAGAIN);
	cr_assert_eq(shmring_drop_dead(rr), 1);
	cr_assert_eq(shmring_drop_dead(rr), 0);
	cr_assert_eq(t_info(rr).dead_waiting, 0);
	shmring_detach(rr);

	/* not on a plain ring */
	rr = t_ring(4096, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	cr_assert_eq(sp.deliveries, 1);
	cr_assert_eq(shmring_requeue(rr, &sp), -EOPNOTSUPP);
	cr_assert_eq(shmring_release(rr, &sp), 0, "the span is still held");
	cr_assert_eq(shmring_peek_dead(rr, &sp, 0), -EOPNOTSUPP);
	shmring_detach(rr);
}

/* The same through shmring_get on the creating handle: the requeued record
 * comes first.  (The one-record get leaves redelivery rings to the general
 * path by the handle's mode word: a creator's mode lacked the redelivery
 * bit for a while, and its get took B, leaving A parked; a review found it,
 * thirteenth session.) */
Test(redeliver, creators_get_takes_the_requeued_record_first)
{
	rr = redeliver_ring(4096, 0, 0);
	struct shmring_span sp;
	a_b_then_requeue_a(&sp);
	char buf[8];
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), 1);
	cr_assert_eq(buf[0], 'A', "got %c before the requeued A", buf[0]);
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), 1);
	cr_assert_eq(buf[0], 'B');
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), -EAGAIN);
	cr_assert_eq(t_info(rr).redeliver_waiting, 0);
	shmring_detach(rr);
}

/* A ring full behind a dead consumer's record: a producer waits for room;
 * the record is taken again in place (it needs no room), released, and the
 * producer goes on.  A design that put the record back into the ring would
 * wait for room behind itself here. */
static int put_x(void *arg)
{
	(void)arg;
	return shmring_put(rr, "X", 1, 20 * T_SEC) == 0 ? 0 : 1;
}

Test(redeliver, full_ring_with_a_parked_record_does_not_stall)
{
	rr = redeliver_ring(4096, 4096, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct peeker a = { .n = 1 };
	cr_assert_eq(pipe(a.ready), 0);
	pid_t peeker = t_fork(peek_and_hang, &a);
	close(a.ready[1]);
	char b;
	cr_assert_eq(read(a.ready[0], &b, 1), 1);
	close(a.ready[0]);
	cr_assert_eq(shmring_declare(rr, SHMRING_CONSUMER), 0);
	static char big[4096];
	cr_assert_eq(shmring_put(rr, big, 4096 - SHMRING_SLOT_SIZE, 0), 0);
	cr_assert_eq(shmring_put(rr, big, 1, 0), -EAGAIN, "full");
	pid_t producer = t_fork(put_x, NULL);
	t_sleep_ns(50 * T_MS);
	kill(peeker, SIGKILL);
	cr_assert(WIFSIGNALED(t_wait_status(peeker, 5 * T_SEC)));
	int64_t t0 = t_now_ns();
	struct shmring_span sp;
	char seen[3] = { 0 };
	unsigned deliv[3] = { 0 };
	for (int i = 0; i < 3; i++) {
		ssize_t n = shmring_peek(rr, &sp, 10 * T_SEC);
		cr_assert_geq(n, 1, "peek #%d = %zd", i, n);
		seen[i] = n == 1 ? *(char *)sp.data : 'L';
		deliv[i] = sp.deliveries;
		cr_assert_eq(shmring_release(rr, &sp), 0);
	}
	int64_t el = t_now_ns() - t0;
	/* big, A (again: 2), X in some order that has X last */
	cr_assert_eq(seen[2], 'X', "X last: %c %c %c", seen[0], seen[1], seen[2]);
	for (int i = 0; i < 2; i++)
		if (seen[i] == 'A')
			cr_assert_eq(deliv[i], 2);
	cr_assert(seen[0] == 'A' || seen[1] == 'A');
	cr_assert_lt(el, 2 * T_WAKE_BOUND_NS, "drained in %lld ms", (long long)(el / T_MS));
	t_expect_exit(producer, 0, 10 * T_SEC);
	shmring_detach(rr);
}

/* Records released before the death are never delivered again; the one
 * held is. */
Test(redeliver, released_record_is_never_delivered_again)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	cr_assert_eq(shmring_put(rr, "B", 1, 0), 0);
	struct peeker a = { .n = 2, .release = 1 }; /* A released, B held */
	peek_then_die(&a);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(rr, &sp, 10 * T_SEC), 1);
	expect_record(&sp, "B", 2);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 200 * T_MS), -ETIMEDOUT);
	cr_assert_eq(t_info(rr).redelivered, 1);
	shmring_detach(rr);
}

/* shmring_get keeps its meaning: a record is delivered when the copy is
 * made, so a consumer that dies after get loses nothing to redeliver. */
Test(redeliver, get_is_delivered_when_copied)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct peeker a = { .n = 1, .use_get = 1 };
	peek_then_die(&a);
	char buf[8];
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 300 * T_MS), -ETIMEDOUT);
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.redelivered, 0);
	cr_assert_eq(in.lost_records, 0);
	shmring_detach(rr);
}

/* get_many (the batch take) takes a parked record too. */
Test(redeliver, get_many_takes_a_parked_record)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct peeker a = { .n = 1 };
	peek_then_die(&a);
	char buf[64];
	struct iovec v[4];
	cr_assert_eq(shmring_get_many(rr, buf, sizeof buf, v, 4, 10 * T_SEC), 1);
	cr_assert_eq(v[0].iov_len, 1);
	cr_assert_eq(*(char *)v[0].iov_base, 'A');
	cr_assert_eq(shmring_get_many(rr, buf, sizeof buf, v, 4, 0), -EAGAIN);
	cr_assert_eq(t_info(rr).redelivered, 1);
	shmring_detach(rr);
}

/* End of stream waits for every record to be released or dead-lettered: one
 * held by a live consumer, one parked, keep it open. */
Test(redeliver, end_of_stream_waits_for_held_and_parked_records)
{
	rr = redeliver_ring(4096, 0, 0);
	struct shmring *prod = NULL;
	cr_assert_eq(shmring_attach_fd(&prod, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_put(prod, "A", 1, 0), 0);
	cr_assert_eq(shmring_put(prod, "B", 1, 0), 0);
	struct peeker a = { .n = 1 };
	cr_assert_eq(pipe(a.ready), 0);
	pid_t peeker = t_fork(peek_and_hang, &a);
	close(a.ready[1]);
	char b;
	cr_assert_eq(read(a.ready[0], &b, 1), 1);
	close(a.ready[0]);
	struct shmring_span sb, sa;
	cr_assert_eq(shmring_peek(rr, &sb, 0), 1);
	expect_record(&sb, "B", 1);
	cr_assert_eq(shmring_leave(prod, SHMRING_PRODUCER), 0);
	cr_assert_eq(t_info(rr).eof, 1);
	struct shmring_span sx;
	cr_assert_eq(shmring_peek(rr, &sx, 0), -EAGAIN, "B held by us, A by a live consumer");
	cr_assert_eq(shmring_next_len(rr), -EAGAIN);
	cr_assert_eq(shmring_release(rr, &sb), 0);
	cr_assert_eq(shmring_peek(rr, &sx, 0), -EAGAIN, "A held by a live consumer");
	kill(peeker, SIGKILL);
	cr_assert(WIFSIGNALED(t_wait_status(peeker, 5 * T_SEC)));
	cr_assert_eq(shmring_peek(rr, &sa, 10 * T_SEC), 1, "A again, not end of stream");
	expect_record(&sa, "A", 2);
	cr_assert_eq(shmring_peek(rr, &sx, 0), -EAGAIN, "A held by us");
	cr_assert_eq(shmring_release(rr, &sa), 0);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_peek(rr, &sx, 10 * T_SEC), -EPIPE);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	cr_assert_eq(shmring_peek_dead(rr, &sx, 0), -EPIPE);
	shmring_detach(prod);
	shmring_detach(rr);
}

/* A sleeping consumer gets end of stream once the last held record is
 * released (the release wakes it; the bound here is the generous one), and a
 * dead letter does not hold the stream open. */
static int wait_for_eof(void *arg)
{
	(void)arg;
	struct shmring_span sp;
	ssize_t n = shmring_peek(rr, &sp, 20 * T_SEC);
	return n == -EPIPE ? 0 : 1;
}

Test(redeliver, sleeper_gets_end_of_stream_after_the_last_release)
{
	rr = redeliver_ring(4096, 0, 1);
	struct shmring *prod = NULL;
	cr_assert_eq(shmring_attach_fd(&prod, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_put(prod, "A", 1, 0), 0);
	cr_assert_eq(shmring_put(prod, "D", 1, 0), 0);
	struct shmring_span sa, sd;
	cr_assert_eq(shmring_peek(rr, &sa, 0), 1);
	cr_assert_eq(shmring_peek(rr, &sd, 0), 1);
	cr_assert_eq(shmring_requeue(rr, &sd), 0, "max_deliveries 1: D is a dead letter");
	cr_assert_eq(shmring_leave(prod, SHMRING_PRODUCER), 0);
	pid_t waiter = t_fork(wait_for_eof, NULL);
	t_sleep_ns(200 * T_MS); /* asleep by now (spin is about 0.1 ms) */
	cr_assert_eq(waitpid(waiter, NULL, WNOHANG), 0, "A held: no end of stream yet");
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_release(rr, &sa), 0);
	t_expect_exit(waiter, 0, 10 * T_SEC);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	cr_assert_eq(t_info(rr).dead_waiting, 1, "the dead letter is still there to read");
	shmring_detach(prod);
	shmring_detach(rr);
}

/* Config checks: max_deliveries needs the flag and fits 16 bits. */
Test(redeliver, config_is_checked)
{
	struct shmring *r = NULL;
	struct shmring_config cfg = { .max_deliveries = 3 };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.flags = SHMRING_REDELIVER;
	cfg.max_deliveries = 70000;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.max_deliveries = 65535;
	cfg.flags = SHMRING_REDELIVER | SHMRING_CONSUMER;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	cr_assert_eq(t_info(r).consumers, 1, "the role bits are still declared");
	shmring_detach(r);
}

/* A get whose buffer is too small for the parked record: -EMSGSIZE, the
 * record stays parked (no busy wait, nothing lost); a detach with a span
 * still peeked gives the record back as a death would. */
Test(redeliver, small_buffer_and_detach_with_a_held_span)
{
	rr = redeliver_ring(4096, 0, 0);
	struct shmring *other = NULL;
	cr_assert_eq(shmring_attach_fd(&other, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_put(rr, "long record", 11, 0), 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(other, &sp, 0), 11);
	shmring_detach(other); /* still holding it */
	char buf[4];
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, T_SEC), -EMSGSIZE);
	cr_assert_eq(t_info(rr).redeliver_waiting, 1);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 11);
	expect_record(&sp, "long record", 2);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	shmring_detach(rr);
}

/* A handle detaches holding a peeked record while a live consumer's take
 * covers that record: it announced a take from a cons_head read before the
 * peek moved it and has yet to lose its CAS (written here by hand, as
 * tests/test_recover.c writes a dead process's op records).  The detach
 * cannot give the record back then; the next sweep must, once that take
 * has lost.  Before, the detach freed its entry anyway: the record was
 * never delivered again, every peek timed out, and the ring stopped a lap
 * later (a review found it, 2026-12-06). */
Test(redeliver, detach_while_a_stale_take_covers_the_held_record)
{
	rr = redeliver_ring(4096, 0, 0);
	struct shmring *other = NULL, *live = NULL;
	cr_assert_eq(shmring_attach_fd(&other, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_attach_fd(&live, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_declare(other, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_declare(live, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(rr, "held", 4, 0), 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(other, &sp, 0), 4);
	uint64_t p = shmring_span_position(&sp);
	/* live's take, announced at p (the stale cons_head), CAS still to come */
	int j = live->attach_slot;
	struct op_rec *c = ring_op_rec(live, j, OPREC_PER_ENTRY - 1);
	atomic_fetch_or(&ring_attach(live, j)->op_busy, UINT64_C(1) << (OPREC_PER_ENTRY - 1));
	atomic_store(&c->extent, OPREC_EXTENT(1, 1));
	atomic_store(&c->word, OPREC_WORD(p, OPREC_CONSUME));
	shmring_detach(other); /* still holding the record */
	/* the take loses its CAS and clears its announcement */
	atomic_store(&c->word, 0);
	atomic_fetch_and(&ring_attach(live, j)->op_busy, ~(UINT64_C(1) << (OPREC_PER_ENTRY - 1)));
	/* the next sweep gives it back (a waiting peek sweeps) */
	cr_assert_eq(shmring_peek(live, &sp, 5 * T_SEC), 4, "the held record never came back");
	expect_record(&sp, "held", 2);
	cr_assert_eq(shmring_release(live, &sp), 0);
	/* and the detached handle's consumer role is off the census with it */
	cr_assert_eq(t_info(rr).consumers, 1);
	cr_assert_eq(t_info(rr).lost_records, 0);
	shmring_detach(live);
	shmring_detach(rr);
}

/* A process killed between a list entry's CAS and its count's update
 * leaves the count off by one (written here by hand).  pending one too low:
 * the parked record was never taken again, free_tail stood at it, and once
 * the ring was full producers and consumers both waited for good.
 * dead_waiting one too high: a waiting shmring_peek_dead spun at full CPU
 * and never saw the end of the stream.  A sweep sets both right from the
 * list, and the dead-letter wait looks at the list (redeliver.c
 * shmring__redeliver_recount; a review found both, 2026-12-06). */
Test(redeliver, counts_a_killed_process_left_off_are_set_right)
{
	rr = redeliver_ring(4096, 0, 0);
	struct shmring *other = NULL;
	cr_assert_eq(shmring_attach_fd(&other, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_declare(rr, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_declare(other, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(rr, "parked", 6, 0), 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(other, &sp, 0), 6);
	shmring_detach(other); /* parked: WAITING, pending 1 */
	cr_assert_eq(t_info(rr).redeliver_waiting, 1);
	atomic_fetch_sub(&rr->hdr->rdl.pending, 1); /* the increment a kill skipped */
	/* the ring fills behind the parked record and drains */
	char buf[64];
	int puts = 0;
	while (shmring_put(rr, "x", 1, 0) == 0)
		puts++;
	cr_assert_gt(puts, 0);
	while (shmring_get(rr, buf, sizeof buf, 0) == 1)
		puts--;
	cr_assert_eq(puts, 0, "fresh records lost");
	/* a waiting get sweeps, the sweep counts the parked record again */
	ssize_t n = shmring_get(rr, buf, sizeof buf, 5 * T_SEC);
	cr_assert_eq(n, 6, "the parked record never came back: get = %zd", n);
	cr_assert_eq(memcmp(buf, "parked", 6), 0);
	cr_assert_eq(shmring_put(rr, "y", 1, T_SEC), 0, "the ring stayed full");
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), 1);
	shmring_detach(rr);

	/* dead_waiting one too high */
	rr = redeliver_ring(4096, 0, 1);
	cr_assert_eq(shmring_attach_fd(&other, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_declare(rr, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_declare(other, SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_put(rr, "dead", 4, 0), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 4);
	cr_assert_eq(shmring_requeue(rr, &sp), 0); /* max_deliveries 1: a dead letter */
	cr_assert_eq(shmring_peek_dead(other, &sp, 0), 4);
	atomic_fetch_add(&rr->hdr->rdl.dead_waiting, 1); /* the decrement a kill skipped */
	shmring_detach(other); /* its dead letter is one again */
	cr_assert_eq(shmring_peek_dead(rr, &sp, 0), 4);
	cr_assert_eq(memcmp(sp.data, "dead", 4), 0);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_close(rr), 0);
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	int64_t t0 = t_now_ns();
	n = shmring_peek_dead(rr, &sp, 2 * T_SEC);
	int64_t el = t_now_ns() - t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	int64_t cpu = (c1.tv_sec - c0.tv_sec) * T_SEC + (c1.tv_nsec - c0.tv_nsec);
	cr_assert_eq(n, -EPIPE, "peek_dead on a closed, drained ring = %zd (%s) after %lld ms", n,
	             shmring_strerror((int)n), (long long)(el / T_MS));
	cr_assert_lt(cpu, el / 2 + 50 * T_MS, "the wait spun: %lld ms of CPU in %lld ms",
	             (long long)(cpu / T_MS), (long long)(el / T_MS));
	shmring_detach(rr);
}

/* A record taken again from the list, and its holder killed too: delivered a
 * third time (deliveries 3); a dead letter's reader killed: the dead letter
 * is there to read again. */
static int peek_dead_and_hang(void *arg)
{
	struct peeker *a = arg;
	close(a->ready[0]);
	struct shmring_span sp;
	if (shmring_peek_dead(rr, &sp, 10 * T_SEC) < 0)
		return 1;
	if (write(a->ready[1], "r", 1) != 1)
		return 3;
	for (;;)
		pause();
}

Test(redeliver, holders_killed_again_and_dead_letter_reader_killed)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct peeker a = { .n = 1, .deliv = 1 };
	peek_then_die(&a);
	struct peeker b = { .n = 1, .deliv = 2 };
	peek_then_die(&b);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(rr, &sp, 10 * T_SEC), 1);
	expect_record(&sp, "A", 3);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(t_info(rr).redelivered, 2);
	shmring_detach(rr);

	rr = redeliver_ring(4096, 0, 1);
	cr_assert_eq(shmring_put(rr, "D", 1, 0), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	cr_assert_eq(shmring_requeue(rr, &sp), 0);
	cr_assert_eq(t_info(rr).dead_waiting, 1);
	struct peeker c = { 0 };
	cr_assert_eq(pipe(c.ready), 0);
	pid_t pid = t_fork(peek_dead_and_hang, &c);
	close(c.ready[1]);
	char ch;
	cr_assert_eq(read(c.ready[0], &ch, 1), 1);
	close(c.ready[0]);
	cr_assert_eq(t_info(rr).dead_waiting, 0, "being read");
	kill(pid, SIGKILL);
	cr_assert(WIFSIGNALED(t_wait_status(pid, 5 * T_SEC)));
	cr_assert_eq(shmring_peek_dead(rr, &sp, 10 * T_SEC), 1, "a dead letter again");
	expect_record(&sp, "D", 1);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.dead_letters, 1, "counted once");
	cr_assert_eq(in.dead_waiting, 0);
	shmring_detach(rr);
}

/* Join: a record given back is still an unfinished task (not forgiven with
 * its dead holder); its next consumer's task_done finishes it.  A dead
 * letter's task is forgiven. */
Test(redeliver, join_counts_a_parked_record_as_unfinished_and_forgives_a_dead_letter)
{
	rr = redeliver_ring(4096, 0, 0);
	cr_assert_eq(shmring_join(rr, 0), 0, "join in use");
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct peeker a = { .n = 1 };
	peek_then_die(&a);
	SWEEP_UNTIL(t_info(rr).redeliver_waiting == 1);
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.unfinished, 1, "still unfinished");
	cr_assert_eq(in.lost_tasks, 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	cr_assert_eq(shmring_release(rr, &sp), 0);
	cr_assert_eq(shmring_task_done(rr), 0);
	cr_assert_eq(shmring_join(rr, T_SEC), 0);
	shmring_detach(rr);

	rr = redeliver_ring(4096, 0, 1);
	cr_assert_eq(shmring_join(rr, 0), 0, "join in use");
	cr_assert_eq(shmring_put(rr, "D", 1, 0), 0);
	cr_assert_eq(shmring_peek(rr, &sp, 0), 1);
	cr_assert_eq(shmring_requeue(rr, &sp), 0, "max_deliveries 1: a dead letter");
	in = t_info(rr);
	cr_assert_eq(in.unfinished, 0, "a dead letter's task is forgiven");
	cr_assert_eq(shmring_join(rr, 0), 0);
	shmring_detach(rr);
}
