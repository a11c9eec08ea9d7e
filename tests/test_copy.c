/*
 * test_copy.c - the copy API: put/get, next_len, sizes, timeouts, full and
 * empty rings, wrap-around, info accounting.
 */
#include "common.h"

#include <pthread.h>
#include <sys/time.h>

TestSuite(copy, .timeout = T_TIMEOUT);

Test(copy, put_then_get_roundtrip)
{
	struct shmring *r = t_ring(4096, 0);
	char in[100], out[200];
	t_fill(in, sizeof in, 1);
	memset(out, 0, sizeof out);
	cr_assert_eq(shmring_put(r, in, sizeof in, 0), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 100);
	cr_assert(t_check(out, 100, 1));
	/* nothing written past the record */
	for (size_t i = 100; i < sizeof out; i++)
		cr_assert_eq(out[i], 0, "byte %zu written past the record", i);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	shmring_detach(r);
}

Test(copy, records_come_out_in_order)
{
	struct shmring *r = t_ring(65536, 0);
	for (int i = 0; i < 50; i++) {
		char buf[64];
		t_fill(buf, (size_t)i, (uint64_t)i);
		cr_assert_eq(shmring_put(r, buf, (size_t)i, 0), 0, "put %d", i);
	}
	for (int i = 0; i < 50; i++) {
		char buf[64];
		ssize_t n = shmring_get(r, buf, sizeof buf, 0);
		cr_assert_eq(n, i, "record %d came out with length %zd", i, n);
		cr_assert(t_check(buf, (size_t)i, (uint64_t)i), "record %d content", i);
	}
	shmring_detach(r);
}

Test(copy, zero_length_records)
{
	struct shmring *r = t_ring(4096, 0);
	char dummy = 'x';
	cr_assert_eq(shmring_put(r, &dummy, 0, 0), 0);
	cr_assert_eq(shmring_put(r, "a", 1, 0), 0);
	cr_assert_eq(shmring_put(r, &dummy, 0, 0), 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.records, 3);
	cr_assert_eq(in.bytes, 1);
	cr_assert_eq(in.used, 3 * SHMRING_SLOT_SIZE, "a 0-length record uses one slot");
	cr_assert_eq(shmring_next_len(r), 0);
	char buf[4] = { 0 };
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	cr_assert_eq(buf[0], 'a');
	/* a 0-length record fits a 0-capacity buffer */
	cr_assert_eq(shmring_get(r, buf, 0, 0), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN);
	shmring_detach(r);
}

Test(copy, max_record_boundary)
{
	struct shmring *r = t_ring(8192, 1000);
	static char in[1100], out[1100];
	t_fill(in, sizeof in, 7);
	cr_assert_eq(shmring_put(r, in, 1001, 0), -EMSGSIZE);
	cr_assert_eq(shmring_put(r, in, (size_t)-1, 0), -EMSGSIZE);
	cr_assert_eq(t_info(r).records, 0, "a rejected put left something behind");
	cr_assert_eq(shmring_put(r, in, 1000, 0), 0);
	cr_assert_eq(shmring_get(r, out, 1000, 0), 1000, "cap == len is enough");
	cr_assert(t_check(out, 1000, 7));
	/* default max_record: capacity / 4 */
	struct shmring *d = t_ring(4096, 0);
	cr_assert_eq(shmring_put(d, in, 1025, 0), -EMSGSIZE);
	cr_assert_eq(shmring_put(d, in, 1024, 0), 0);
	shmring_detach(d);
	shmring_detach(r);
}

Test(copy, get_with_small_buffer_leaves_record)
{
	struct shmring *r = t_ring(4096, 0);
	char in[300], out[300];
	t_fill(in, sizeof in, 3);
	cr_assert_eq(shmring_put(r, in, 300, 0), 0);
	cr_assert_eq(shmring_put(r, "next", 4, 0), 0);
	cr_assert_eq(shmring_next_len(r), 300);
	cr_assert_eq(shmring_get(r, out, 299, 0), -EMSGSIZE);
	cr_assert_eq(shmring_get(r, out, 0, 0), -EMSGSIZE);
	cr_assert_eq(shmring_get(r, out, 1, 5 * T_MS), -EMSGSIZE);
	/* still there, still first */
	cr_assert_eq(shmring_next_len(r), 300);
	cr_assert_eq(t_info(r).records, 2);
	cr_assert_eq(shmring_get(r, out, 300, 0), 300);
	cr_assert(t_check(out, 300, 3));
	cr_assert_eq(shmring_next_len(r), 4);
	cr_assert_eq(shmring_get(r, out, 300, 0), 4);
	cr_assert_eq(memcmp(out, "next", 4), 0);
	shmring_detach(r);
}

Test(copy, next_len_on_empty_is_eagain)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	cr_assert_eq(shmring_put(r, "12345", 5, 0), 0);
	cr_assert_eq(shmring_next_len(r), 5);
	cr_assert_eq(shmring_next_len(r), 5, "next_len does not take the record");
	char buf[8];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 5);
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	shmring_detach(r);
}

Test(copy, bad_arguments)
{
	struct shmring *r = t_ring(4096, 0);
	char buf[8];
	cr_assert_eq(shmring_put(NULL, "x", 1, 0), -EINVAL);
	cr_assert_eq(shmring_put(r, NULL, 1, 0), -EINVAL);
	cr_assert_eq(shmring_get(NULL, buf, sizeof buf, 0), -EINVAL);
	cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
	cr_assert_eq(shmring_get(r, NULL, 8, 0), -EINVAL);
	cr_assert_eq(shmring_next_len(NULL), -EINVAL);
	cr_assert_eq(t_info(r).records, 1, "bad calls must not consume");
	shmring_detach(r);
}

/* Exactly capacity / SLOT_SIZE one-slot records fit. */
Test(copy, full_ring_then_drain)
{
	struct shmring *r = t_ring(4096, 0);
	const size_t nslots = 4096 / SHMRING_SLOT_SIZE;
	char buf[64];
	size_t i;
	for (i = 0; i < nslots; i++) {
		t_fill(buf, 64, i);
		int rc = shmring_put(r, buf, 1 + i % 64, 0);
		cr_assert_eq(rc, 0, "put #%zu of %zu one-slot records = %d", i, nslots, rc);
	}
	cr_assert_eq(shmring_put(r, buf, 1, 0), -EAGAIN);
	cr_assert_eq(shmring_put(r, buf, 0, 0), -EAGAIN);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.records, nslots);
	cr_assert_eq(in.used, 4096);
	/* one out, one slot free: a one-slot record fits, a two-slot one does not */
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 1);
	cr_assert_eq(shmring_put(r, buf, 65, 0), -EAGAIN);
	cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
	cr_assert_eq(shmring_put(r, buf, 1, 0), -EAGAIN);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 2);
	for (i = 2; i < nslots; i++) {
		char out[64];
		ssize_t n = shmring_get(r, out, sizeof out, 0);
		cr_assert_eq(n, (ssize_t)(1 + i % 64));
		t_fill(buf, 64, i);
		cr_assert_eq(memcmp(out, buf, (size_t)n), 0, "record %zu", i);
	}
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 64);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN);
	in = t_info(r);
	cr_assert_eq(in.records, 0);
	cr_assert_eq(in.used, 0);
	shmring_detach(r);
}

Test(copy, full_with_max_records)
{
	/* capacity 4096, max_record 4096: one record fills the ring */
	struct shmring *r = t_ring(4096, 4096);
	static char big[4096], out[4096];
	t_fill(big, sizeof big, 11);
	cr_assert_eq(shmring_put(r, big, 4096, 0), 0);
	cr_assert_eq(shmring_put(r, big, 0, 0), -EAGAIN);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 4096);
	cr_assert(t_check(out, 4096, 11));
	/* and again, now that the positions have moved on */
	cr_assert_eq(shmring_put(r, "a", 1, 0), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(shmring_put(r, big, 4096, 0), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 4096);
	cr_assert(t_check(out, 4096, 11));
	shmring_detach(r);
}

Test(copy, info_accounts_records_bytes_used)
{
	struct shmring *r = t_ring(8192, 0);
	static const size_t lens[] = { 0, 1, 63, 64, 65, 128, 129, 500 };
	size_t bytes = 0, used = 0;
	char buf[600] = { 0 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		cr_assert_eq(shmring_put(r, buf, lens[i], 0), 0);
		bytes += lens[i];
		used += t_slots(lens[i]) * SHMRING_SLOT_SIZE;
		struct shmring_info in = t_info(r);
		cr_assert_eq(in.records, i + 1);
		cr_assert_eq(in.bytes, bytes);
		cr_assert_eq(in.used, used, "after %zu records used=%zu expected %zu", i + 1,
		             in.used, used);
		cr_assert_eq(in.capacity, 8192);
		cr_assert_eq(in.closed, 0);
	}
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), (ssize_t)lens[i]);
		bytes -= lens[i];
		used -= t_slots(lens[i]) * SHMRING_SLOT_SIZE;
		struct shmring_info in = t_info(r);
		cr_assert_eq(in.bytes, bytes);
		cr_assert_eq(in.used, used);
	}
	shmring_detach(r);
}

/* ------------------------------------------------------------ timeouts */

Test(copy, eagain_with_zero_timeout)
{
	struct shmring *r = t_ring(4096, 4096);
	char buf[16];
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EAGAIN);
	static char big[4096];
	cr_assert_eq(shmring_put(r, big, 4096, 0), 0);
	cr_assert_eq(shmring_put(r, buf, 1, 0), -EAGAIN);
	cr_assert_lt(t_now_ns() - t0, T_SEC, "timeout 0 must not wait");
	shmring_detach(r);
}

Test(copy, etimedout_on_empty_get)
{
	struct shmring *r = t_ring(4096, 0);
	char buf[16];
	const int64_t to = 100 * T_MS;
	int64_t t0 = t_now_ns();
	ssize_t rc = shmring_get(r, buf, sizeof buf, to);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT);
	cr_assert_geq(el, to, "returned after %lld ns, before the %lld ns timeout", (long long)el,
	              (long long)to);
	cr_assert_lt(el, to + T_WAKE_BOUND_NS, "returned after %lld ns", (long long)el);
	/* a short one, so spinning alone cannot explain it */
	t0 = t_now_ns();
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 1), -ETIMEDOUT);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	shmring_detach(r);
}

Test(copy, etimedout_on_full_put)
{
	struct shmring *r = t_ring(4096, 4096);
	static char big[4096];
	cr_assert_eq(shmring_put(r, big, 4096, 0), 0);
	const int64_t to = 100 * T_MS;
	int64_t t0 = t_now_ns();
	int rc = shmring_put(r, "x", 1, to);
	int64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT);
	cr_assert_geq(el, to);
	cr_assert_lt(el, to + T_WAKE_BOUND_NS);
	cr_assert_eq(t_info(r).records, 1, "the timed-out put left nothing behind");
	/* a larger timeout than fits in 32 bits of ns, and ring emptied meanwhile */
	char out[4096];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 4096);
	cr_assert_eq(shmring_put(r, "x", 1, 10 * T_SEC), 0);
	shmring_detach(r);
}

Test(copy, timeout_wait_succeeds_when_data_arrives)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_put(r, "ready", 5, 0), 0);
	char buf[8];
	/* data already there: a timed get returns at once */
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 5 * T_SEC), 5);
	cr_assert_lt(t_now_ns() - t0, T_SEC);
	shmring_detach(r);
}

/* A thread that puts one record after a delay (signals blocked in it). */
struct late_put {
	struct shmring *r;
	int64_t delay;
	int rc;
};

static void *late_put_thread(void *arg)
{
	struct late_put *lp = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	t_sleep_ns(lp->delay);
	lp->rc = shmring_put(lp->r, "late", 4, -1);
	return NULL;
}

Test(copy, infinite_wait_gets_late_record)
{
	struct shmring *r = t_ring(4096, 0);
	struct late_put lp = { r, 100 * T_MS, -1 };
	pthread_t th;
	int64_t t0 = t_now_ns();
	cr_assert_eq(pthread_create(&th, NULL, late_put_thread, &lp), 0);
	char buf[8];
	ssize_t n = shmring_get(r, buf, sizeof buf, -1);
	int64_t el = t_now_ns() - t0;
	pthread_join(th, NULL);
	cr_assert_eq(n, 4);
	cr_assert_eq(memcmp(buf, "late", 4), 0);
	cr_assert_eq(lp.rc, 0);
	cr_assert_geq(el, 100 * T_MS - T_MS);
	cr_assert_lt(el, 100 * T_MS + T_WAKE_BOUND_NS);
	shmring_detach(r);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void start_alarm_storm(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the library must handle EINTR itself */
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	struct itimerval it = { { 0, 5000 }, { 0, 5000 } }; /* every 5 ms */
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void stop_alarm_storm(void)
{
	struct itimerval it = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

Test(copy, timed_wait_survives_signals)
{
	struct shmring *r = t_ring(4096, 4096);
	shmring_set_spin(r, 0);
	char buf[8];
	alarms = 0;
	start_alarm_storm();
	const int64_t to = 200 * T_MS;
	int64_t t0 = t_now_ns();
	ssize_t n = shmring_get(r, buf, sizeof buf, to);
	int64_t el = t_now_ns() - t0;
	/* and a producer waiting on a full ring */
	static char big[4096];
	cr_assert_eq(shmring_put(r, big, 4096, 0), 0);
	int64_t t1 = t_now_ns();
	int rc = shmring_put(r, "x", 1, to);
	int64_t el2 = t_now_ns() - t1;
	stop_alarm_storm();
	cr_assert_gt(alarms, 5, "the signal storm did not happen (%d)", (int)alarms);
	cr_assert_eq(n, -ETIMEDOUT, "get under signals returned %zd", n);
	cr_assert_geq(el, to, "get returned early (%lld ns)", (long long)el);
	cr_assert_lt(el, to + T_WAKE_BOUND_NS);
	cr_assert_eq(rc, -ETIMEDOUT, "put under signals returned %d", rc);
	cr_assert_geq(el2, to, "put returned early (%lld ns)", (long long)el2);
	cr_assert_lt(el2, to + T_WAKE_BOUND_NS);
	shmring_detach(r);
}

Test(copy, infinite_wait_survives_signals)
{
	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	struct late_put lp = { r, 150 * T_MS, -1 };
	pthread_t th;
	alarms = 0;
	start_alarm_storm();
	cr_assert_eq(pthread_create(&th, NULL, late_put_thread, &lp), 0);
	char buf[8];
	ssize_t n = shmring_get(r, buf, sizeof buf, -1);
	stop_alarm_storm();
	pthread_join(th, NULL);
	cr_assert_gt(alarms, 5);
	cr_assert_eq(n, 4, "get(-1) under signals returned %zd", n);
	shmring_detach(r);
}

/* ------------------------------------------------------------ wrap-around */

/* Many laps around a small ring with random sizes (0..max_record), keeping a
 * random number of records in flight; every record is checked. */
static void wrap_run(size_t cap, size_t maxrec, int iters, uint64_t seed)
{
	struct shmring *r = t_ring(cap, maxrec);
	maxrec = t_info(r).max_record;
	static char in[65536], out[65536];
	uint64_t rng = seed;
	uint64_t put_seq = 0, get_seq = 0;
	size_t lens[4096];          /* lengths of records in flight, by seq % 4096 */
	uint64_t bytes_through = 0;
	for (int it = 0; it < iters; it++) {
		/* put until the ring is full or a coin says stop */
		for (;;) {
			size_t len = (size_t)(t_rand(&rng) % (maxrec + 1));
			if (t_rand(&rng) % 4 == 0)
				len = t_rand(&rng) % 3; /* plenty of tiny ones */
			t_fill(in, len, put_seq);
			int rc = shmring_put(r, in, len, 0);
			if (rc == -EAGAIN)
				break;
			cr_assert_eq(rc, 0, "put seq %llu len %zu = %d", (unsigned long long)put_seq,
			             len, rc);
			lens[put_seq % 4096] = len;
			put_seq++;
			bytes_through += len;
			cr_assert_lt(put_seq - get_seq, 4096);
			if (t_rand(&rng) % 3 == 0)
				break;
		}
		/* get a random number, at least one if any */
		uint64_t ngets = 1 + t_rand(&rng) % 4;
		while (ngets-- && get_seq < put_seq) {
			ssize_t n = shmring_get(r, out, sizeof out, 0);
			cr_assert_eq(n, (ssize_t)lens[get_seq % 4096], "seq %llu: got %zd bytes, put %zu",
			             (unsigned long long)get_seq, n, lens[get_seq % 4096]);
			cr_assert(t_check(out, (size_t)n, get_seq), "seq %llu content corrupt",
			          (unsigned long long)get_seq);
			get_seq++;
		}
	}
	while (get_seq < put_seq) {
		ssize_t n = shmring_get(r, out, sizeof out, 0);
		cr_assert_eq(n, (ssize_t)lens[get_seq % 4096]);
		cr_assert(t_check(out, (size_t)n, get_seq));
		get_seq++;
	}
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	struct shmring_info in_ = t_info(r);
	cr_assert_eq(in_.records, 0);
	cr_assert_eq(in_.used, 0);
	cr_assert_gt(bytes_through, 50 * (uint64_t)cap, "only %llu bytes went through",
	             (unsigned long long)bytes_through);
	shmring_detach(r);
}

Test(copy, wrap_around_default_max)
{
	wrap_run(4096, 0, 20000, 1);
}

Test(copy, wrap_around_max_equals_capacity)
{
	wrap_run(4096, 4096, 20000, 2);
}

Test(copy, wrap_around_odd_max)
{
	wrap_run(8192, 3001, 20000, 3);
}

/* Pin the interesting wrap point: a record that starts in the last slot and
 * runs past the end of the storage. */
Test(copy, record_straddling_the_end)
{
	struct shmring *r = t_ring(4096, 1024);
	char in[1024], out[1024];
	for (int lap = 0; lap < 3; lap++) {
		for (size_t off = 0; off < 64; off++) {
			/* advance to slot `off`-ish positions by one-slot records */
			cr_assert_eq(shmring_put(r, "p", 1, 0), 0);
			cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
			t_fill(in, 1024, off + 100 * (size_t)lap);
			cr_assert_eq(shmring_put(r, in, 1024, 0), 0);
			cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1024);
			cr_assert(t_check(out, 1024, off + 100 * (size_t)lap), "lap %d off %zu", lap, off);
		}
	}
	shmring_detach(r);
}

Test(copy, extreme_timeouts)
{
	struct shmring *r = t_ring(4096, 0);
	char buf[8];
	cr_assert_eq(shmring_put(r, "x", 1, INT64_MAX), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, INT64_MAX), 1);
	cr_assert_eq(shmring_put(r, "y", 1, INT64_MIN), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, INT64_MIN), 1);
	/* INT64_MAX and INT64_MIN both wait (centuries, or for ever) */
	struct late_put lp = { r, 50 * T_MS, -1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, late_put_thread, &lp), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, INT64_MAX), 4);
	pthread_join(th, NULL);
	lp.rc = -1;
	cr_assert_eq(pthread_create(&th, NULL, late_put_thread, &lp), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, INT64_MIN), 4);
	pthread_join(th, NULL);
	shmring_set_spin(NULL, 0); /* no crash */
	shmring_detach(r);
}

static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * T_SEC + ts.tv_nsec;
}

/* "Asleep it costs no CPU": 400 ms of waiting (default spin) on an empty
 * ring and on a full one burn only a small fraction of that. */
Test(copy, waiting_costs_no_cpu)
{
	struct shmring *r = t_ring(4096, 4096);
	char buf[16];
	int64_t c0 = cpu_ns(), t0 = t_now_ns();
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 400 * T_MS), -ETIMEDOUT);
	int64_t cpu = cpu_ns() - c0, el = t_now_ns() - t0;
	cr_assert_geq(el, 400 * T_MS);
	cr_assert_lt(cpu, 100 * T_MS, "waiting in get for %lld ms used %lld ms of CPU",
	             (long long)(el / T_MS), (long long)(cpu / T_MS));
	static char big[4096];
	cr_assert_eq(shmring_put(r, big, 4096, 0), 0);
	c0 = cpu_ns();
	t0 = t_now_ns();
	cr_assert_eq(shmring_put(r, big, 1, 400 * T_MS), -ETIMEDOUT);
	cpu = cpu_ns() - c0;
	el = t_now_ns() - t0;
	cr_assert_geq(el, 400 * T_MS);
	cr_assert_lt(cpu, 100 * T_MS, "waiting in put for %lld ms used %lld ms of CPU",
	             (long long)(el / T_MS), (long long)(cpu / T_MS));
	shmring_detach(r);
}
