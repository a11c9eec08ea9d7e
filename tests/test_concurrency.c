/*
 * test_concurrency.c - real processes (and threads) hammering one small
 * ring: P producers x C consumers.  Every record carries its producer, its
 * sequence number and a checksum; consumers tally what they get in shared
 * memory; the parent checks every record was delivered exactly once and
 * whole, and, with one consumer, each producer's records in order.  The ring
 * is small and waits are blocking, so producers and consumers really sleep.
 */
#include "common.h"

#include <pthread.h>

TestSuite(concurrency, .timeout = 60);

#define MAX_P 8
#define HDR_LEN 16

enum put_api { PUT_COPY, PUT_V, PUT_ZC, PUT_MANY, PUT_MIXED };
enum get_api { GET_COPY, GET_PEEK, GET_MANY, GET_MIXED };

struct tally {
	uint64_t zero, shortrec, shortbytes; /* records without a header */
	uint64_t bad_len, bad_sum, bad_short, unknown, order, errors;
	uint64_t total;
	int last_error;
	uint32_t counts[]; /* [producer * n + seq]: deliveries */
};

struct conc {
	struct shmring *r;
	struct tally *t;
	int P, C;
	uint32_t n;        /* records per producer */
	size_t max;        /* ring's max_record */
	enum put_api put;
	enum get_api get;
	unsigned spin;     /* set_spin for every worker (UINT_MAX: default) */
	int producer;      /* index, for a producer */
};

/* Length of record (p, s): 1 in 16 empty, 1 in 16 shorter than a header,
 * the rest anywhere from a header up to max_record. */
static size_t rec_len(int p, uint32_t s, size_t max)
{
	uint64_t h = t_mix64(((uint64_t)p << 32) ^ s ^ 0xabcdef);
	switch (h % 16) {
	case 0: return 0;
	case 1: return 1 + (h >> 8) % (HDR_LEN - 1);
	default: return HDR_LEN + (size_t)((h >> 8) % (max - HDR_LEN + 1));
	}
}

/* Write record (p, s) of length len into buf. */
static void rec_make(unsigned char *buf, int p, uint32_t s, size_t len)
{
	if (len == 0)
		return;
	if (len < HDR_LEN) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(len * 31 + i);
		return;
	}
	t_fill(buf + HDR_LEN, len - HDR_LEN, ((uint64_t)p << 32) | s);
	uint32_t h[4] = { (uint32_t)p, s, (uint32_t)len, t_fnv(buf + HDR_LEN, len - HDR_LEN) };
	memcpy(buf, h, HDR_LEN);
}

/* Tally one delivered record; last[] is per-producer order state (or NULL). */
static void rec_check(struct conc *c, const unsigned char *buf, size_t len, int64_t *last)
{
	struct tally *t = c->t;
	__atomic_fetch_add(&t->total, 1, __ATOMIC_RELAXED);
	if (len == 0) {
		__atomic_fetch_add(&t->zero, 1, __ATOMIC_RELAXED);
		return;
	}
	if (len < HDR_LEN) {
		for (size_t i = 0; i < len; i++)
			if (buf[i] != (unsigned char)(len * 31 + i)) {
				__atomic_fetch_add(&t->bad_short, 1, __ATOMIC_RELAXED);
				return;
			}
		__atomic_fetch_add(&t->shortrec, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&t->shortbytes, len, __ATOMIC_RELAXED);
		return;
	}
	uint32_t h[4];
	memcpy(h, buf, HDR_LEN);
	if (h[0] >= (uint32_t)c->P || h[1] >= c->n) {
		__atomic_fetch_add(&t->unknown, 1, __ATOMIC_RELAXED);
		return;
	}
	if (h[2] != len || rec_len((int)h[0], h[1], c->max) != len) {
		__atomic_fetch_add(&t->bad_len, 1, __ATOMIC_RELAXED);
		return;
	}
	if (h[3] != t_fnv(buf + HDR_LEN, len - HDR_LEN) ||
	    !t_check(buf + HDR_LEN, len - HDR_LEN, ((uint64_t)h[0] << 32) | h[1])) {
		__atomic_fetch_add(&t->bad_sum, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_fetch_add(&t->counts[(size_t)h[0] * c->n + h[1]], 1, __ATOMIC_RELAXED);
	if (last) {
		if ((int64_t)h[1] <= last[h[0]])
			__atomic_fetch_add(&t->order, 1, __ATOMIC_RELAXED);
		last[h[0]] = h[1];
	}
}

static void note_error(struct conc *c, long rc)
{
	__atomic_fetch_add(&c->t->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->t->last_error, (int)rc, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ producer */

static int producer(struct conc *c)
{
	if (c->spin != UINT_MAX)
		shmring_set_spin(c->r, c->spin);
	static unsigned char buf[8][1 << 16];
	int p = c->producer;
	uint64_t rng = 1000 + (uint64_t)p;
	uint32_t s = 0;
	while (s < c->n) {
		enum put_api api = c->put == PUT_MIXED ? (enum put_api)(t_rand(&rng) % 4) : c->put;
		size_t len = rec_len(p, s, c->max);
		long rc;
		switch (api) {
		case PUT_COPY:
			rec_make(buf[0], p, s, len);
			rc = shmring_put(c->r, buf[0], len, -1);
			if (rc == 0)
				s++;
			break;
		case PUT_V: {
			rec_make(buf[0], p, s, len);
			size_t cut = len ? t_rand(&rng) % (len + 1) : 0;
			struct iovec iov[3] = { { buf[0], cut }, { buf[1], 0 },
				                { buf[0] + cut, len - cut } };
			rc = shmring_putv(c->r, iov, 3, -1);
			if (rc == 0)
				s++;
			break;
		}
		case PUT_ZC: {
			struct shmring_span sp;
			/* reserve more than needed, sometimes abort first */
			size_t want = len + t_rand(&rng) % (c->max - len + 1);
			rc = shmring_reserve(c->r, want, &sp, -1);
			if (rc != 0)
				break;
			if (t_rand(&rng) % 8 == 0) {
				memset(sp.data, 0xdd, want);
				rc = shmring_abort(c->r, &sp);
				break;
			}
			rec_make(sp.data, p, s, len);
			rc = shmring_commit(c->r, &sp, len);
			if (rc == 0)
				s++;
			break;
		}
		case PUT_MANY: {
			struct iovec recs[8];
			size_t k = 1 + t_rand(&rng) % 8;
			if (k > c->n - s)
				k = c->n - s;
			for (size_t i = 0; i < k; i++) {
				size_t l = rec_len(p, s + (uint32_t)i, c->max);
				rec_make(buf[i], p, s + (uint32_t)i, l);
				recs[i].iov_base = buf[i];
				recs[i].iov_len = l;
			}
			rc = shmring_put_many(c->r, recs, k, -1);
			if (rc > 0) {
				if ((size_t)rc > k)
					return 3;
				s += (uint32_t)rc;
				rc = 0;
			}
			break;
		}
		default:
			return 4;
		}
		if (rc != 0) {
			note_error(c, rc);
			return 2;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ consumer */

static int consumer(struct conc *c)
{
	if (c->spin != UINT_MAX)
		shmring_set_spin(c->r, c->spin);
	static int64_t last[MAX_P];
	for (int i = 0; i < MAX_P; i++)
		last[i] = -1;
	int64_t *order = c->C == 1 ? last : NULL;
	_Alignas(8) static unsigned char buf[1 << 17];
	uint64_t rng = 77;
	for (;;) {
		enum get_api api = c->get == GET_MIXED ? (enum get_api)(t_rand(&rng) % 3) : c->get;
		ssize_t n;
		switch (api) {
		case GET_COPY:
			n = shmring_get(c->r, buf, sizeof buf, -1);
			if (n >= 0)
				rec_check(c, buf, (size_t)n, order);
			break;
		case GET_PEEK: {
			struct shmring_span sp;
			n = shmring_peek(c->r, &sp, -1);
			if (n >= 0) {
				if ((size_t)n != sp.len)
					return 5;
				rec_check(c, sp.data, (size_t)n, order);
				if (shmring_release(c->r, &sp) != 0)
					return 6;
			}
			break;
		}
		case GET_MANY: {
			struct iovec recs[16];
			/* a cap that sometimes cuts a batch short */
			size_t cap = c->max + t_rand(&rng) % (4 * c->max);
			n = shmring_get_many(c->r, buf, cap, recs, 1 + t_rand(&rng) % 16, -1);
			for (ssize_t i = 0; i < n; i++) {
				if ((unsigned char *)recs[i].iov_base + recs[i].iov_len > buf + cap)
					return 7;
				rec_check(c, recs[i].iov_base, recs[i].iov_len, order);
			}
			break;
		}
		default:
			return 4;
		}
		if (n == -EPIPE)
			return 0;
		if (n < 0) {
			note_error(c, n);
			return 2;
		}
	}
}

static int producer_main(void *arg)
{
	return producer(arg);
}

static int consumer_main(void *arg)
{
	return consumer(arg);
}

/* ------------------------------------------------------------ driver */

static void expected_totals(const struct conc *c, uint64_t *zero, uint64_t *shortrec,
                            uint64_t *shortbytes, uint64_t *full)
{
	*zero = *shortrec = *shortbytes = *full = 0;
	for (int p = 0; p < c->P; p++)
		for (uint32_t s = 0; s < c->n; s++) {
			size_t l = rec_len(p, s, c->max);
			if (l == 0)
				(*zero)++;
			else if (l < HDR_LEN) {
				(*shortrec)++;
				*shortbytes += l;
			} else
				(*full)++;
		}
}

static void check_tally(struct conc *c)
{
	struct tally *t = c->t;
	cr_assert_eq(t->errors, 0, "%llu calls failed, last with %d (%s)",
	             (unsigned long long)t->errors, t->last_error, shmring_strerror(t->last_error));
	cr_assert_eq(t->unknown, 0, "%llu records with a garbage header", (unsigned long long)t->unknown);
	cr_assert_eq(t->bad_len, 0, "%llu records of the wrong length", (unsigned long long)t->bad_len);
	cr_assert_eq(t->bad_sum, 0, "%llu records with a bad checksum", (unsigned long long)t->bad_sum);
	cr_assert_eq(t->bad_short, 0, "%llu short records corrupt", (unsigned long long)t->bad_short);
	cr_assert_eq(t->order, 0, "%llu records out of per-producer order", (unsigned long long)t->order);
	uint64_t zero, shortrec, shortbytes, full;
	expected_totals(c, &zero, &shortrec, &shortbytes, &full);
	uint64_t missing = 0, dup = 0;
	long first_bad = -1;
	for (int p = 0; p < c->P; p++)
		for (uint32_t s = 0; s < c->n; s++) {
			size_t i = (size_t)p * c->n + s;
			uint32_t want = rec_len(p, s, c->max) >= HDR_LEN ? 1 : 0;
			if (t->counts[i] != want && first_bad < 0)
				first_bad = (long)i;
			if (t->counts[i] < want)
				missing++;
			else if (t->counts[i] > want)
				dup += t->counts[i] - want;
		}
	cr_assert(missing == 0 && dup == 0,
	          "%llu records lost, %llu duplicated (first: producer %ld seq %ld, count %u)",
	          (unsigned long long)missing, (unsigned long long)dup,
	          first_bad < 0 ? -1 : first_bad / (long)c->n,
	          first_bad < 0 ? -1 : first_bad % (long)c->n,
	          first_bad < 0 ? 0 : t->counts[first_bad]);
	cr_assert_eq(t->zero, zero, "empty records: got %llu, sent %llu", (unsigned long long)t->zero,
	             (unsigned long long)zero);
	cr_assert_eq(t->shortrec, shortrec);
	cr_assert_eq(t->shortbytes, shortbytes);
	cr_assert_eq(t->total, zero + shortrec + full);
}

struct run_opts {
	int P, C;
	uint32_t n;
	size_t capacity, max_record;
	enum put_api put;
	enum get_api get;
	unsigned spin;         /* set_spin for every worker ... */
	int default_spin;      /* ... unless this is set */
	int expect_sleep;      /* assert futex_waits > 0 */
};

static void run(const struct run_opts *o)
{
	cr_assert_leq(o->P, MAX_P);
	struct conc c;
	memset(&c, 0, sizeof c);
	c.r = t_ring(o->capacity ? o->capacity : 4096, o->max_record);
	c.max = t_info(c.r).max_record;
	c.P = o->P;
	c.C = o->C;
	c.n = o->n;
	c.put = o->put;
	c.get = o->get;
	c.spin = o->default_spin ? UINT_MAX : o->spin;
	size_t tsize = sizeof(struct tally) + sizeof(uint32_t) * (size_t)o->P * o->n;
	c.t = t_shared(tsize);
	memset(c.t, 0, tsize);

	pid_t cons[16], prod[MAX_P];
	for (int i = 0; i < o->C; i++)
		cons[i] = t_fork(consumer_main, &c);
	/* The fork-pool pattern: producers inherit a declared role, so the
	 * stream cannot end (a producer that finishes early and exits) before
	 * a slow one has started. */
	cr_assert_eq(shmring_declare(c.r, SHMRING_PRODUCER), 0);
	for (int p = 0; p < o->P; p++) {
		c.producer = p;
		prod[p] = t_fork(producer_main, &c);
	}
	cr_assert_eq(shmring_leave(c.r, SHMRING_PRODUCER), 0);
	char b[96];
	int failed = 0;
	/* one deadline for all producers, well inside the test's timeout */
	int64_t deadline = t_now_ns() + 30 * T_SEC;
	for (int p = 0; p < o->P; p++) {
		int64_t left = deadline - t_now_ns();
		int st = t_wait_status(prod[p], left > 0 ? left : 1);
		if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			cr_log_error("producer %d: %s", p, t_status_str(st, b, sizeof b));
			failed = 1;
		}
	}
	/* Everything is in.  The producers' exit is the end of the stream:
	 * consumers drain and leave without a close (unless a worker failed,
	 * then close so that nobody waits for ever). */
	if (failed)
		cr_assert_eq(shmring_close(c.r), 0);
	/* 25 s: generous for end of stream on a loaded 2-core machine (the
	 * producers _exit without detaching, so it comes from a liveness sweep;
	 * 10 s once ran out at load 20) */
	deadline = t_now_ns() + 25 * T_SEC;
	for (int i = 0; i < o->C; i++) {
		int64_t left = deadline - t_now_ns();
		int st = t_wait_status(cons[i], left > 0 ? left : 1);
		if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			cr_log_error("consumer %d: %s", i, t_status_str(st, b, sizeof b));
			failed = 1;
		}
	}
	struct shmring_info in = t_info(c.r);
	if (failed)
		cr_log_error("tally: total %llu, zero %llu, short %llu, bad_len %llu, bad_sum %llu, "
		             "unknown %llu, order %llu; ring: records %zu used %zu closed %d",
		             (unsigned long long)c.t->total, (unsigned long long)c.t->zero,
		             (unsigned long long)c.t->shortrec, (unsigned long long)c.t->bad_len,
		             (unsigned long long)c.t->bad_sum, (unsigned long long)c.t->unknown,
		             (unsigned long long)c.t->order, in.records, in.used, in.closed);
	cr_assert_not(failed, "a worker failed (errors %llu, last %d)",
	              (unsigned long long)c.t->errors, c.t->last_error);
	check_tally(&c);
	cr_assert_eq(in.records, 0);
	cr_assert_eq(in.used, 0, "storage not all released at the end: %zu", in.used);
	if (o->expect_sleep)
		cr_assert_gt(in.futex_waits, 0, "nobody ever slept");
	shmring_detach(c.r);
	munmap(c.t, tsize);
}

#define RUN(...) run(&(struct run_opts){ __VA_ARGS__ })

Test(concurrency, p1_c1_copy_in_order)
{
	RUN(.P = 1, .C = 1, .n = 150000, .put = PUT_COPY, .get = GET_COPY, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p3_c3_copy)
{
	RUN(.P = 3, .C = 3, .n = 40000, .put = PUT_COPY, .get = GET_COPY, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p4_c1_copy_in_order)
{
	RUN(.P = 4, .C = 1, .n = 25000, .put = PUT_COPY, .get = GET_COPY, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p1_c4_copy)
{
	RUN(.P = 1, .C = 4, .n = 100000, .put = PUT_COPY, .get = GET_COPY, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p3_c3_default_spin)
{
	RUN(.P = 3, .C = 3, .n = 20000, .put = PUT_COPY, .get = GET_COPY, .default_spin = 1);
}

Test(concurrency, p2_c2_zero_copy)
{
	RUN(.P = 2, .C = 2, .n = 50000, .put = PUT_ZC, .get = GET_PEEK, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p2_c2_batches)
{
	RUN(.P = 2, .C = 2, .n = 60000, .put = PUT_MANY, .get = GET_MANY, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p3_c1_mixed_api_in_order)
{
	RUN(.P = 3, .C = 1, .n = 30000, .put = PUT_MIXED, .get = GET_MIXED, .spin = 0, .expect_sleep = 1);
}

Test(concurrency, p3_c3_mixed_api_big_records)
{
	RUN(.P = 3, .C = 3, .n = 4000, .capacity = 65536, .max_record = 65536, .put = PUT_MIXED,
	    .get = GET_MIXED, .spin = 50);
}

/* ------------------------------------------------------------ threads */

/* Thread-safe workers (stack buffers, no order state): the threads of one
 * process share one handle. */
static void *tprod(void *arg)
{
	struct conc *c = arg;
	unsigned char buf[2048];
	for (uint32_t s = 0; s < c->n; s++) {
		size_t len = rec_len(c->producer, s, c->max);
		rec_make(buf, c->producer, s, len);
		int rc = shmring_put(c->r, buf, len, -1);
		if (rc != 0) {
			note_error(c, rc);
			break;
		}
	}
	return NULL;
}

static void *tcons(void *arg)
{
	struct conc *c = arg;
	unsigned char buf[2048];
	for (;;) {
		ssize_t n = shmring_get(c->r, buf, sizeof buf, -1);
		if (n == -EPIPE)
			break;
		if (n < 0) {
			note_error(c, n);
			break;
		}
		rec_check(c, buf, (size_t)n, NULL);
	}
	return NULL;
}

Test(concurrency, threads_share_one_handle)
{
	struct shmring *r = t_ring(4096, 0);
	shmring_set_spin(r, 0);
	const uint32_t n = 20000;
	size_t tsize = sizeof(struct tally) + sizeof(uint32_t) * 2 * n;
	struct tally *t = t_shared(tsize);
	memset(t, 0, tsize);
	struct conc c = { .r = r, .t = t, .P = 2, .C = 2, .n = n, .max = t_info(r).max_record };
	pthread_t tid[4];
	struct conc cs[4];
	for (int i = 0; i < 4; i++) {
		cs[i] = c;
		cs[i].producer = i % 2;
		cr_assert_eq(pthread_create(&tid[i], NULL, i < 2 ? tprod : tcons, &cs[i]), 0);
	}
	pthread_join(tid[0], NULL);
	pthread_join(tid[1], NULL);
	cr_assert_eq(shmring_close(r), 0);
	pthread_join(tid[2], NULL);
	pthread_join(tid[3], NULL);
	check_tally(&c);
	cr_assert_gt(t_info(r).futex_waits, 0);
	shmring_detach(r);
	munmap(t, tsize);
}

/* ------------------------------------------------------------ wake-up */

static struct shmring *wake_ring;
static int wake_child(void *arg)
{
	(void)arg;
	shmring_set_spin(wake_ring, 0);
	char buf[64];
	ssize_t n = shmring_get(wake_ring, buf, sizeof buf, -1);
	if (n != 5 || memcmp(buf, "wake!", 5) != 0)
		return 1;
	return 0;
}

/* A consumer asleep in another process wakes promptly on a put. */
Test(concurrency, sleeping_consumer_wakes_on_put)
{
	wake_ring = t_ring(4096, 0);
	pid_t pid = t_fork(wake_child, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(wake_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "the consumer never went to sleep");
	t_sleep_ns(150 * T_MS); /* past at least one internal re-check interval */
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "consumer returned with nothing to get");
	uint64_t wakes0 = t_info(wake_ring).futex_wakes;
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_put(wake_ring, "wake!", 5, 0), 0);
	t_expect_exit(pid, 0, T_WAKE_BOUND_NS);
	int64_t el = t_now_ns() - t0;
	cr_assert_lt(el, T_WAKE_BOUND_NS);
	cr_assert_gt(t_info(wake_ring).futex_wakes, wakes0, "the put did not FUTEX_WAKE");
	shmring_detach(wake_ring);
}

static int wake_prod_child(void *arg)
{
	(void)arg;
	shmring_set_spin(wake_ring, 0);
	static char big[4096];
	return shmring_put(wake_ring, big, 4096, -1) == 0 ? 0 : 1;
}

/* A producer asleep on a full ring wakes promptly on a get. */
Test(concurrency, sleeping_producer_wakes_on_get)
{
	wake_ring = t_ring(4096, 4096);
	static char big[4096];
	cr_assert_eq(shmring_put(wake_ring, big, 1, 0), 0);
	pid_t pid = t_fork(wake_prod_child, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(wake_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "the producer never went to sleep");
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_get(wake_ring, big, sizeof big, 0), 1);
	t_expect_exit(pid, 0, T_WAKE_BOUND_NS);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	cr_assert_eq(shmring_get(wake_ring, big, sizeof big, 0), 4096);
	shmring_detach(wake_ring);
}

/* Wakes are prompt, not merely eventual: a sleeper also re-checks on its
 * own now and then, which would hide a lost wake-up from a test with a
 * generous bound.  50 round trips between two processes that both sleep
 * (spin 0) at every step must take far less than 50 re-check intervals. */
static struct shmring *ping, *pong;
static int pong_child(void *arg)
{
	(void)arg;
	shmring_set_spin(ping, 0);
	shmring_set_spin(pong, 0);
	for (int i = 0; i < 50; i++) {
		int v;
		if (shmring_get(ping, &v, sizeof v, -1) != (ssize_t)sizeof v || v != i)
			return 1;
		if (shmring_put(pong, &v, sizeof v, -1) != 0)
			return 2;
	}
	return 0;
}

Test(concurrency, ping_pong_wakes_are_prompt)
{
	ping = t_ring(4096, 0);
	pong = t_ring(4096, 0);
	shmring_set_spin(ping, 0);
	shmring_set_spin(pong, 0);
	pid_t pid = t_fork(pong_child, NULL);
	int64_t t0 = t_now_ns();
	for (int i = 0; i < 50; i++) {
		/* let the child fall asleep first, now and then */
		if (i % 10 == 0)
			t_sleep_ns(2 * T_MS);
		cr_assert_eq(shmring_put(ping, &i, sizeof i, -1), 0);
		int v = -1;
		cr_assert_eq(shmring_get(pong, &v, sizeof v, 10 * T_SEC), (ssize_t)sizeof v, "round %d", i);
		cr_assert_eq(v, i);
	}
	int64_t el = t_now_ns() - t0;
	t_expect_exit(pid, 0, 10 * T_SEC);
	uint64_t sleeps = t_info(ping).futex_waits + t_info(pong).futex_waits;
	cr_assert_gt(sleeps, 10, "too few sleeps (%llu) for the test to mean anything",
	             (unsigned long long)sleeps);
	cr_assert_lt(el, 1500 * T_MS, "50 round trips took %lld ms: lost wake-ups?",
	             (long long)(el / T_MS));
	shmring_detach(ping);
	shmring_detach(pong);
}
