/*
 * test_recover.c - processes that die in the middle of an operation: a
 * producer holding a reservation, a consumer holding a peeked record, a
 * consumer that took records and never called task_done.  The living must
 * go on (consumers past the dead producer's claim, producers into the dead
 * consumer's storage, joiners past its tasks), and shmring_info counts what
 * was recovered (recovered_claims, lost_records, lost_tasks).
 */
#include "common.h"

#include <pthread.h>

#include "handle.h" /* tests are built with -Iring: free_tail, cons_head */
#include "oprec.h"  /* a stale announcement, made by hand */
#include "shmring_inspect.h"

TestSuite(recover, .timeout = T_TIMEOUT);

static struct shmring *rr;

struct hang_arg {
	int ready[2];
	size_t len; /* reserve: bytes */
};

static void signal_ready(struct hang_arg *a)
{
	if (write(a->ready[1], "r", 1) != 1)
		_exit(90);
}

static void wait_ready(struct hang_arg *a, pid_t pid)
{
	close(a->ready[1]);
	char b;
	ssize_t n = read(a->ready[0], &b, 1);
	close(a->ready[0]);
	if (n != 1) {
		char buf[96];
		cr_assert_fail("child did not get ready: %s",
		               t_status_str(t_wait_status(pid, T_SEC), buf, sizeof buf));
	}
}

static int reserve_and_hang(void *arg)
{
	struct hang_arg *a = arg;
	close(a->ready[0]);
	struct shmring_span sp;
	if (shmring_reserve(rr, a->len, &sp, 0) != 0)
		return 1;
	memset(sp.data, 0xee, a->len);
	signal_ready(a);
	for (;;)
		pause();
}

static int peek_and_hang(void *arg)
{
	struct hang_arg *a = arg;
	close(a->ready[0]);
	struct shmring_span sp;
	if (shmring_peek(rr, &sp, 5 * T_SEC) < 0)
		return 1;
	signal_ready(a);
	for (;;)
		pause();
}

static int get_and_hang(void *arg)
{
	struct hang_arg *a = arg;
	close(a->ready[0]);
	char buf[64];
	for (int i = 0; i < 3; i++)
		if (shmring_get(rr, buf, sizeof buf, 5 * T_SEC) < 0)
			return 1;
	if (shmring_task_done(rr) != 0) /* one of three finished */
		return 2;
	signal_ready(a);
	for (;;)
		pause();
}

static pid_t start(struct hang_arg *a, int (*fn)(void *))
{
	cr_assert_eq(pipe(a->ready), 0);
	pid_t pid = t_fork(fn, a);
	wait_ready(a, pid);
	return pid;
}


/* A producer dies holding a reservation; records put after it by a live
 * producer still reach the consumer. */
Test(recover, dead_producers_reservation_is_skipped)
{
	rr = t_ring(4096, 0);
	struct shmring *live = NULL;
	cr_assert_eq(shmring_attach_fd(&live, shmring_fd(rr)), 0);
	struct hang_arg a = { .len = 300 };
	pid_t pid = start(&a, reserve_and_hang);
	cr_assert_eq(shmring_declare(live, SHMRING_PRODUCER), 0); /* after fork: ours only */
	cr_assert_eq(shmring_put(live, "after", 5, 0), 0);
	char buf[16];
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), -EAGAIN,
	             "the record behind a live reservation is not readable yet");
	t_kill_and_reap(pid);
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(rr, buf, sizeof buf, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(n, 5, "get after the producer died = %zd", n);
	cr_assert_eq(memcmp(buf, "after", 5), 0);
	cr_assert_lt(el, T_WAKE_BOUND_NS, "recovered after %lld ms", (long long)(el / T_MS));
	struct shmring_info in = t_info(rr);
	cr_assert_geq(in.recovered_claims, 1);
	cr_assert_eq(in.lost_records, 0);
	/* and the ring is whole: all its room usable again */
	cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), -EAGAIN);
	static char big[1024];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(shmring_put(live, big, 1024, 5 * T_SEC), 0, "put #%d", i);
	shmring_detach(live);
	shmring_detach(rr);
}

/* The only producer dies holding a reservation: end of stream, not a hang. */
Test(recover, dead_only_producer_with_reservation_gives_end_of_stream)
{
	rr = t_ring(4096, 0);
	struct hang_arg a = { .len = 10 };
	pid_t pid = start(&a, reserve_and_hang);
	t_kill_and_reap(pid);
	char buf[16];
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(rr, buf, sizeof buf, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(n, -EPIPE, "get = %zd", n);
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	shmring_detach(rr);
}

/* A consumer dies holding a peeked record: its storage comes back, so a
 * producer waiting for room goes on. */
Test(recover, dead_consumers_peek_is_released)
{
	rr = t_ring(4096, 4096);
	struct shmring *live = NULL;
	cr_assert_eq(shmring_attach_fd(&live, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct hang_arg a = { 0 };
	pid_t pid = start(&a, peek_and_hang);
	cr_assert_eq(shmring_declare(live, SHMRING_CONSUMER), 0); /* a consumer stays */
	static char big[4096];
	cr_assert_eq(shmring_put(rr, big, 4096 - SHMRING_SLOT_SIZE, 0), 0);
	cr_assert_eq(shmring_put(rr, big, 1, 0), -EAGAIN, "the peeked slot holds the room back");
	t_kill_and_reap(pid);
	int64_t t0 = t_now_ns();
	int rc = shmring_put(rr, big, 1, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 0, "put after the consumer died = %d", rc);
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.lost_records, 1);
	char out[4096];
	cr_assert_eq(shmring_get(live, out, sizeof out, 0), 4096 - SHMRING_SLOT_SIZE);
	cr_assert_eq(shmring_get(live, out, sizeof out, 0), 1);
	shmring_detach(live);
	shmring_detach(rr);
}

/* A consumer dies holding a peeked record with records released after it:
 * the sweep that releases it takes free_tail on over all of them (as a
 * consumer's own release does, space.c shmring__free_tail_follow), so no
 * producer has to walk them when it next runs short of room. */
Test(recover, dead_consumers_release_takes_free_tail_on)
{
	rr = t_ring(1u << 16, 4096);
	struct shmring *live = NULL;
	cr_assert_eq(shmring_attach_fd(&live, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_put(rr, "A", 1, 0), 0);
	struct hang_arg a = { 0 };
	pid_t pid = start(&a, peek_and_hang);
	cr_assert_eq(shmring_declare(live, SHMRING_CONSUMER), 0);
	uint64_t held = atomic_load(&rr->hdr->free_tail);
	char buf[64];
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(shmring_put(rr, buf, sizeof buf, 0), 0);
		cr_assert_eq(shmring_get(live, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	}
	cr_assert_eq(atomic_load(&rr->hdr->free_tail), held, "free_tail passed the held record");
	t_kill_and_reap(pid);
	/* an empty ring: the get sleeps, then sweeps (rate-limited to one a 50 ms) */
	cr_assert_eq(shmring_get(live, buf, sizeof buf, 300 * T_MS), -ETIMEDOUT);
	cr_assert_eq(t_info(rr).lost_records, 1, "the dead consumer's record was not released");
	cr_assert_eq(atomic_load(&rr->hdr->free_tail), atomic_load(&rr->hdr->cons_head),
	             "free_tail left at %llu, cons_head %llu",
	             (unsigned long long)atomic_load(&rr->hdr->free_tail),
	             (unsigned long long)atomic_load(&rr->hdr->cons_head));
	shmring_detach(live);
	shmring_detach(rr);
}

/* A consumer that took three records, finished one and died: the other two
 * tasks are forgiven, so join returns. */
Test(recover, dead_consumers_unfinished_tasks_are_forgiven)
{
	rr = t_ring(4096, 0);
	cr_assert_eq(shmring_join(rr, 0), 0, "join in use (nothing unfinished yet)");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_put(rr, "t", 1, 0), 0);
	cr_assert_eq(shmring_unfinished(rr), 3);
	struct hang_arg a = { 0 };
	pid_t pid = start(&a, get_and_hang);
	cr_assert_eq(shmring_unfinished(rr), 2);
	cr_assert_eq(shmring_join(rr, 50 * T_MS), -ETIMEDOUT);
	t_kill_and_reap(pid);
	int64_t t0 = t_now_ns();
	int rc = shmring_join(rr, 10 * T_SEC);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, 0, "join after the consumer died = %d", rc);
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.unfinished, 0);
	cr_assert_eq(in.lost_tasks, 2);
	cr_assert_eq(in.lost_records, 0, "the records were released: none lost");
	shmring_detach(rr);
}

#define T_CHILD_FAILED 77 /* a child that did not reach its death */

/* Peek one record (join in use) and die where the test says: holding the
 * peek, or after task_done for it (still holding it). */
static int peek_and_die(void *arg)
{
	const int *finish = arg;
	struct shmring_span sp;
	if (shmring_peek(rr, &sp, 5 * T_SEC) < 0)
		return T_CHILD_FAILED;
	if (*finish && shmring_task_done(rr) != 0)
		return T_CHILD_FAILED;
	raise(SIGKILL);
	return T_CHILD_FAILED;
}

/* Get one record into a buffer that cannot be written: the copy faults
 * after the take and before the release, and the process dies there (by
 * SIGSEGV; under a sanitizer, by its handler's _exit). */
static int get_and_fault(void *arg)
{
	(void)arg;
	signal(SIGSEGV, SIG_DFL);
	void *buf = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return T_CHILD_FAILED;
	shmring_get(rr, buf, 4096, 5 * T_SEC);
	return T_CHILD_FAILED; /* the copy did not fault */
}

/* Three puts, join in use; a child takes one and dies by fn; a live
 * consumer's joins sweep until the dead one is recovered.  Returns the
 * ring's counts then. */
static struct shmring_info three_puts_one_death(int (*fn)(void *), void *arg)
{
	rr = t_ring(4096, 0);
	cr_assert_eq(shmring_join(rr, 0), 0, "join in use (nothing unfinished yet)");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_put(rr, "t", 1, 0), 0);
	pid_t pid = t_fork(fn, arg);
	int st = t_wait_status(pid, 10 * T_SEC);
	char buf[96];
	cr_assert(st >= 0 && (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
	                                          WEXITSTATUS(st) != T_CHILD_FAILED)),
	          "child did not die where it should: %s", t_status_str(st, buf, sizeof buf));
	struct shmring *live = NULL;
	cr_assert_eq(shmring_attach_fd(&live, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_declare(live, SHMRING_CONSUMER), 0);
	int64_t t0 = t_now_ns();
	while (t_info(rr).lost_records == 0 && t_now_ns() - t0 < 10 * T_SEC)
		shmring_join(rr, 60 * T_MS); /* its sweeps find the dead child */
	shmring_detach(live);
	return t_info(rr);
}

/* A consumer dies holding a peeked record it has not finished: the record
 * is lost and its task forgiven once; the two records still in the ring
 * keep theirs (the peek's task used to be forgiven twice: as a lost record
 * and again as got - done). */
Test(recover, dead_consumer_holding_a_peek_forgives_its_task_once)
{
	int finish = 0;
	struct shmring_info in = three_puts_one_death(peek_and_die, &finish);
	cr_assert_eq(in.lost_records, 1);
	cr_assert_eq(in.records, 2);
	cr_assert_eq(in.unfinished, 2, "unfinished %llu: two records still in the ring",
	             (unsigned long long)in.unfinished);
	cr_assert_eq(in.lost_tasks, 1);
	shmring_detach(rr);
}

/* The same, but it called task_done for the peeked record before dying
 * with it: that task is done, nothing is left to forgive. */
Test(recover, dead_consumer_with_a_finished_peek_forgives_nothing)
{
	int finish = 1;
	struct shmring_info in = three_puts_one_death(peek_and_die, &finish);
	cr_assert_eq(in.lost_records, 1);
	cr_assert_eq(in.records, 2);
	cr_assert_eq(in.unfinished, 2, "unfinished %llu: two records still in the ring",
	             (unsigned long long)in.unfinished);
	cr_assert_eq(in.lost_tasks, 0);
	shmring_detach(rr);
}

/* A worker gets a record before join is in use (not counted in its got),
 * calls task_done for it (join in use from here), peeks the next one and
 * dies holding it.  The held record's task is forgiven: before, the first
 * task_done counted in done and hid it (got - done 0): unfinished 1 for
 * good, join never returned (a review found it, 2026-12-06). */
static int get_done_peek_and_die(void *arg)
{
	(void)arg;
	char buf[8];
	struct shmring_span sp;
	if (shmring_get(rr, buf, sizeof buf, 5 * T_SEC) != 1 || shmring_task_done(rr) != 0 ||
	    shmring_peek(rr, &sp, 5 * T_SEC) < 0)
		return T_CHILD_FAILED;
	raise(SIGKILL);
	return T_CHILD_FAILED;
}

Test(recover, task_done_of_a_take_before_join_hides_no_held_task)
{
	rr = t_ring(4096, 0); /* join not in use yet */
	cr_assert_eq(shmring_put(rr, "a", 1, 0), 0);
	cr_assert_eq(shmring_put(rr, "b", 1, 0), 0);
	pid_t pid = t_fork(get_done_peek_and_die, NULL);
	int st = t_wait_status(pid, 10 * T_SEC);
	cr_assert(st >= 0 && WIFSIGNALED(st), "the worker did not die holding its peek");
	struct shmring *live = NULL;
	cr_assert_eq(shmring_attach_fd(&live, shmring_fd(rr)), 0);
	cr_assert_eq(shmring_declare(live, SHMRING_CONSUMER), 0);
	int64_t t0 = t_now_ns();
	while (t_info(rr).lost_records == 0 && t_now_ns() - t0 < 10 * T_SEC)
		shmring_join(rr, 60 * T_MS); /* its sweeps find the dead worker */
	struct shmring_info in = t_info(rr);
	cr_assert_eq(in.lost_records, 1);
	cr_assert_eq(in.lost_tasks, 1, "the held record's task was not forgiven");
	cr_assert_eq(in.unfinished, 0);
	cr_assert_eq(shmring_join(rr, T_SEC), 0);
	shmring_detach(live);
	shmring_detach(rr);
}

/* A consumer dies inside shmring_get, between its take and its release:
 * the record is lost, its task forgiven once. */
Test(recover, dead_consumer_inside_get_forgives_its_task_once)
{
	struct shmring_info in = three_puts_one_death(get_and_fault, NULL);
	cr_assert_eq(in.lost_records, 1);
	cr_assert_eq(in.records, 2);
	cr_assert_eq(in.unfinished, 2, "unfinished %llu: two records still in the ring",
	             (unsigned long long)in.unfinished);
	cr_assert_eq(in.lost_tasks, 1);
	shmring_detach(rr);
}

/* A dead process leaves two unpublished reservations b = [h, h + 2) and
 * c = [h + 2, h + 4) and a stale announcement of [h, h + 3): a thread that
 * read prod_head = h, wanted three slots and lost its CAS to b.  order
 * puts the stale record before b's and c's in the entry, or after them
 * (recovery takes them in that order). */
static int stale_announcement_and_die(void *arg)
{
	int order = *(int *)arg;
	struct shmring_span b, c;
	struct op_rec *stale;
	if (shmring_declare(rr, SHMRING_PRODUCER))
		return T_CHILD_FAILED;
	if (order == 0 && shmring__op_rec_alloc(rr, &stale))
		return T_CHILD_FAILED;
	/* 100 bytes: two slots each */
	if (shmring_reserve(rr, 100, &b, 0) || shmring_reserve(rr, 100, &c, 0))
		return T_CHILD_FAILED;
	if (order == 1 && shmring__op_rec_alloc(rr, &stale))
		return T_CHILD_FAILED;
	if (c.pos_ != b.pos_ + 2)
		return T_CHILD_FAILED;
	op_rec_announce(stale, b.pos_, OPREC_PRODUCE, 3, 1);
	return 0; /* exits holding both */
}

/* The stale announcement's recovery made a skip record over [h, h + 3)
 * when it came first: its dead stretch ran past c's unpublished start, c's
 * own recovery then made one over [h + 2, h + 4), and consumers waited at
 * h + 3 for good (every get -EAGAIN, found by a review).  Both orders:
 * every record put afterwards is delivered. */
Test(recover, stale_announcement_over_two_dead_claims)
{
	for (int order = 0; order < 2; order++) {
		rr = t_ring(8192, 0);
		char buf[600];
		memset(buf, 7, sizeof buf);
		/* the parent consumes (and produces, after the child) */
		cr_assert_eq(shmring_put(rr, buf, 10, 0), 0);
		cr_assert_eq(shmring_get(rr, buf, sizeof buf, 0), 10);
		pid_t pid = t_fork(stale_announcement_and_die, &order);
		t_expect_exit(pid, 0, 10 * T_SEC);
		int64_t t0 = t_now_ns();
		while (t_info(rr).recovered_claims < 2 && t_now_ns() - t0 < 10 * T_SEC) {
			shmring_check_peers(rr);
			t_sleep_ns(2 * T_MS);
		}
		cr_assert_geq(t_info(rr).recovered_claims, 2, "order %d: not recovered", order);
		for (int i = 0; i < 300; i++) {
			cr_assert_eq(shmring_put(rr, buf, 500, 5 * T_SEC), 0, "order %d: put #%d", order, i);
			ssize_t g = shmring_get(rr, buf, sizeof buf, 5 * T_SEC);
			cr_assert_eq(g, 500, "order %d: get #%d = %zd (%s)", order, i, g,
			             g < 0 ? shmring_strerror((int)g) : "");
		}
		shmring_detach(rr);
	}
}
