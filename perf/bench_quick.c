/*
 * bench_quick.c - a quick measurement of shmring against a pipe, between two
 * forked processes pinned to different CPUs (run by `ninja bench`).
 *
 *   stream:  one producer process -> one consumer process, 64-byte records,
 *            the consumer checks every record's sequence number.  Paths: the
 *            copy API, the batch API, the zero-copy API, and a pipe carrying
 *            a 4-byte length prefix + payload (one write per record).
 *   latency: ping-pong of one 64-byte record; one-way = round trip / 2, the
 *            median of several timed batches.  Paths: a bare shared cache
 *            line (the floor), two rings with timeout 0 (spinning), two rings
 *            with timeout -1 (the library's spin-then-futex), the same with
 *            shmring_set_spin(0) (futex only), and two pipes; and bare models
 *            of a ring hop (latency_model.h), to show what the layout and
 *            the locked instructions cost at best on this machine.
 *
 * Prints a table and one line per target (PASS/MISS).  Exits 0 unless a check
 * fails (a lost, duplicated or corrupt record) or the setup fails.
 *
 * usage: bench_quick [--quick] [--json FILE] [--rounds N] [--count N]
 *                    [--seconds S] [--capacity BYTES] [--batches N] [--only PATH,...]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "bench_util.h"
#include "latency_model.h"
#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

#define REC         64	/* bytes of every record */
#define BATCH       32	/* records per put_many/get_many */
#define MAX_BATCHES 64	/* latency batches per run */
#define MAX_SAMPLES 256	/* per path, all rounds */
#define STOP        UINT64_MAX

/* Everything the two sides of a test share; lives in shared memory. */
struct shared {
	struct gate gate;
	/* The floor's cache line, alone in its 128 bytes (x86 prefetches lines
	 * in pairs). */
	_Alignas(2 * CACHE_LINE) _Atomic uint64_t ball;
	_Alignas(2 * CACHE_LINE) struct shmring *ring[2];	/* stream: [0]; ping, pong */
	int pipe_a[2], pipe_b[2];		/* stream: pipe_a; ping, pong */
	int64_t timeout;			/* ring ping-pong: 0 or -1 */
	struct model *model;			/* model ping-pong (its own mapping) */
	uint64_t limit;				/* stream: most records to send */
	int64_t run_ns;				/* stream: producer stops after */
	int nbatches;
	int64_t batch_ns;
	/* results, each written by one side */
	uint64_t sent, received;
	int64_t t_start, t_end;
	double rtt[MAX_BATCHES];		/* ns per round trip, per batch */
	_Atomic uint64_t errors;
};

/* A record carries its sequence number in its first and last 8 bytes. */
static inline void rec_fill(void *p, uint64_t seq)
{
	memcpy(p, &seq, 8);
	memcpy((char *)p + REC - 8, &seq, 8);
}

static inline int rec_ok(const void *p, size_t len, uint64_t seq)
{
	uint64_t a, b;

	if (len != REC)
		return 0;
	memcpy(&a, p, 8);
	memcpy(&b, (const char *)p + REC - 8, 8);
	return a == seq && b == seq;
}

static int fail(struct shared *s, const char *what, long long rc, uint64_t seq)
{
	fprintf(stderr, "bench_quick: %s failed at record %llu: %lld (%s)\n", what,
		(unsigned long long)seq, rc, rc < 0 ? shmring_strerror((int)rc) : "bad record");
	atomic_fetch_add(&s->errors, 1);
	return 1;
}

/* Pipe framing: a 4-byte length, then the payload; one write per record. */
static int frame_write(int fd, uint64_t seq)
{
	unsigned char f[4 + REC] = { 0 };
	uint32_t len = REC;

	memcpy(f, &len, 4);
	rec_fill(f + 4, seq);
	return write_full(fd, f, sizeof f);
}

/* 1: a record read into rec[REC]; 0: end of file; -1: error or bad frame. */
static int frame_read(int fd, unsigned char *rec)
{
	uint32_t len;
	int r = read_full(fd, &len, 4);

	if (r <= 0)
		return r;
	if (len != REC)
		return -1;
	return read_full(fd, rec, REC) == 1 ? 1 : -1;
}

/* ---- streaming ------------------------------------------------------- */

/* The producer's loop condition; the clock is read once per 256 calls. */
static inline int keep_going(const struct shared *s, uint64_t sent, uint64_t call)
{
	if (sent >= s->limit)
		return 0;
	return (call & 255) || !s->run_ns || now_ns() - s->t_start < s->run_ns;
}

static int stream_end(struct shared *s, uint64_t got, int rc)
{
	s->t_end = now_ns();
	s->received = got;
	return rc;
}

static int prod_copy(void *arg)
{
	struct shared *s = arg;
	unsigned char rec[REC] = { 0 };
	uint64_t i = 0;
	int rc = 0;

	s->t_start = now_ns();
	for (; keep_going(s, i, i); i++) {
		rec_fill(rec, i);
		int r = shmring_put(s->ring[0], rec, REC, -1);
		if (r) {
			rc = fail(s, "shmring_put", r, i);
			break;
		}
	}
	s->sent = i;
	shmring_close(s->ring[0]);
	return rc;
}

static int cons_copy(void *arg)
{
	struct shared *s = arg;
	unsigned char buf[REC];
	uint64_t i;

	for (i = 0;; i++) {
		ssize_t n = shmring_get(s->ring[0], buf, sizeof buf, -1);
		if (n == -EPIPE)
			break;
		if (n < 0 || !rec_ok(buf, (size_t)n, i)) {
			shmring_close(s->ring[0]);
			return stream_end(s, i, fail(s, "shmring_get", n, i));
		}
	}
	return stream_end(s, i, 0);
}

static int prod_batch(void *arg)
{
	struct shared *s = arg;
	static unsigned char recs[BATCH][REC];
	struct iovec iov[BATCH];
	uint64_t i = 0, call = 0;
	int rc = 0;

	for (int k = 0; k < BATCH; k++)
		iov[k] = (struct iovec){ recs[k], REC };
	s->t_start = now_ns();
	for (; keep_going(s, i, call); call++) {
		size_t n = s->limit - i < BATCH ? (size_t)(s->limit - i) : BATCH;
		for (size_t k = 0; k < n; k++)
			rec_fill(recs[k], i + k);
		ssize_t r = shmring_put_many(s->ring[0], iov, n, -1);
		if (r < 1 || (size_t)r > n) {
			rc = fail(s, "shmring_put_many", r, i);
			break;
		}
		i += (uint64_t)r;
	}
	s->sent = i;
	shmring_close(s->ring[0]);
	return rc;
}

static int cons_batch(void *arg)
{
	struct shared *s = arg;
	static _Alignas(8) unsigned char buf[BATCH * REC];
	struct iovec recs[BATCH];
	uint64_t i = 0;

	for (;;) {
		ssize_t n = shmring_get_many(s->ring[0], buf, sizeof buf, recs, BATCH, -1);
		if (n == -EPIPE)
			break;
		if (n < 1 || n > BATCH) {
			shmring_close(s->ring[0]);
			return stream_end(s, i, fail(s, "shmring_get_many", n, i));
		}
		for (ssize_t k = 0; k < n; k++, i++) {
			if (!rec_ok(recs[k].iov_base, recs[k].iov_len, i)) {
				shmring_close(s->ring[0]);
				return stream_end(s, i, fail(s, "shmring_get_many", 0, i));
			}
		}
	}
	return stream_end(s, i, 0);
}

static int prod_zc(void *arg)
{
	struct shared *s = arg;
	struct shmring_span sp;
	uint64_t i = 0;
	int rc = 0;

	s->t_start = now_ns();
	for (; keep_going(s, i, i); i++) {
		int r = shmring_reserve(s->ring[0], REC, &sp, -1);
		if (r == 0) {
			rec_fill(sp.data, i);
			r = shmring_commit(s->ring[0], &sp, REC);
		}
		if (r) {
			rc = fail(s, "shmring_reserve/commit", r, i);
			break;
		}
	}
	s->sent = i;
	shmring_close(s->ring[0]);
	return rc;
}

static int cons_zc(void *arg)
{
	struct shared *s = arg;
	struct shmring_span sp;
	uint64_t i;

	for (i = 0;; i++) {
		ssize_t n = shmring_peek(s->ring[0], &sp, -1);
		if (n == -EPIPE)
			break;
		int ok = n >= 0 && rec_ok(sp.data, (size_t)n, i);
		if (n >= 0 && shmring_release(s->ring[0], &sp) != 0)
			ok = 0;
		if (!ok) {
			shmring_close(s->ring[0]);
			return stream_end(s, i, fail(s, "shmring_peek/release", n, i));
		}
	}
	return stream_end(s, i, 0);
}

static int prod_pipe(void *arg)
{
	struct shared *s = arg;
	uint64_t i = 0;
	int rc = 0;

	close(s->pipe_a[0]);
	s->t_start = now_ns();
	for (; keep_going(s, i, i); i++) {
		if (frame_write(s->pipe_a[1], i)) {
			rc = fail(s, "write", -errno, i);
			break;
		}
	}
	s->sent = i;
	close(s->pipe_a[1]);
	return rc;
}

static int cons_pipe(void *arg)
{
	struct shared *s = arg;
	unsigned char rec[REC];
	uint64_t i;

	close(s->pipe_a[1]);
	for (i = 0;; i++) {
		int r = frame_read(s->pipe_a[0], rec);
		if (r == 0)
			break;
		if (r < 0 || !rec_ok(rec, REC, i))
			return stream_end(s, i, fail(s, "read", 0, i));
	}
	return stream_end(s, i, 0);
}

/* ---- ping-pong ------------------------------------------------------- */

typedef int (*roundtrip_fn)(struct shared *s, uint64_t seq);

/* Side A: a first batch to warm up and size the batches, then nbatches timed
 * batches of the same number of round trips. */
static int pp_drive(struct shared *s, roundtrip_fn rt)
{
	uint64_t seq = 0, n = 0, rounds;
	int64_t t0 = now_ns(), t;

	do {
		for (int k = 0; k < 8; k++)
			if (rt(s, ++seq))
				return 1;
		n += 8;
	} while ((t = now_ns()) - t0 < s->batch_ns);
	rounds = (uint64_t)((double)n * (double)s->batch_ns / (double)(t - t0)) + 1;
	for (int b = 0; b < s->nbatches; b++) {
		t0 = now_ns();
		for (uint64_t i = 0; i < rounds; i++)
			if (rt(s, ++seq))
				return 1;
		s->rtt[b] = (double)(now_ns() - t0) / (double)rounds;
	}
	return 0;
}

static int rt_floor(struct shared *s, uint64_t seq)
{
	atomic_store_explicit(&s->ball, 2 * seq - 1, memory_order_release);
	while (atomic_load_explicit(&s->ball, memory_order_acquire) != 2 * seq)
		cpu_relax();
	return 0;
}

static int a_floor(void *arg)
{
	struct shared *s = arg;
	int rc = pp_drive(s, rt_floor);

	atomic_store(&s->ball, STOP);
	return rc;
}

static int b_floor(void *arg)
{
	struct shared *s = arg;

	for (uint64_t want = 1;; want += 2) {
		uint64_t v;
		while ((v = atomic_load_explicit(&s->ball, memory_order_acquire)) != want) {
			if (v == STOP)
				return 0;
			cpu_relax();
		}
		atomic_store_explicit(&s->ball, want + 1, memory_order_release);
	}
}

/* Ring ping-pong: put on ring[0] (ping), get from ring[1] (pong).  With
 * timeout 0 the retry loop is ours; with -1 the library waits. */
static int rt_ring(struct shared *s, uint64_t seq)
{
	unsigned char rec[REC] = { 0 }, buf[REC];
	ssize_t n;
	int r;

	rec_fill(rec, seq);
	while ((r = shmring_put(s->ring[0], rec, REC, s->timeout)) == -EAGAIN)
		cpu_relax();
	if (r)
		return fail(s, "ping put", r, seq);
	while ((n = shmring_get(s->ring[1], buf, REC, s->timeout)) == -EAGAIN)
		cpu_relax();
	if (n < 0 || !rec_ok(buf, (size_t)n, seq))
		return fail(s, "pong get", n, seq);
	return 0;
}

static int a_ring(void *arg)
{
	struct shared *s = arg;
	int rc = pp_drive(s, rt_ring);

	shmring_close(s->ring[0]);	/* side B stops at -EPIPE */
	return rc;
}

static int b_ring(void *arg)
{
	struct shared *s = arg;
	unsigned char buf[REC];

	for (uint64_t want = 1;; want++) {
		ssize_t n;
		int r;

		while ((n = shmring_get(s->ring[0], buf, REC, s->timeout)) == -EAGAIN)
			cpu_relax();
		if (n == -EPIPE)
			return 0;
		if (n < 0 || !rec_ok(buf, (size_t)n, want)) {
			shmring_close(s->ring[1]);
			return fail(s, "ping get", n, want);
		}
		while ((r = shmring_put(s->ring[1], buf, REC, s->timeout)) == -EAGAIN)
			cpu_relax();
		if (r)
			return fail(s, "pong put", r, want);
	}
}

/* Model ping-pong: as the ring's, on a bare model ring (latency_model.h). */
static int rt_model(struct shared *s, uint64_t seq)
{
	model_put(s->model, &s->model->ring[0], seq);
	if (model_get(s->model, &s->model->ring[1], seq, &s->ball, STOP) != 1)
		return fail(s, "model pong", 0, seq);
	return 0;
}

static int a_model(void *arg)
{
	struct shared *s = arg;
	int rc = pp_drive(s, rt_model);

	atomic_store(&s->ball, STOP);	/* side B stops */
	return rc;
}

static int b_model(void *arg)
{
	struct shared *s = arg;

	for (uint64_t want = 1;; want++) {
		int r = model_get(s->model, &s->model->ring[0], want, &s->ball, STOP);
		if (r == 0)
			return 0;
		if (r < 0)
			return fail(s, "model ping", 0, want);
		model_put(s->model, &s->model->ring[1], want);
	}
}

static int rt_pipe(struct shared *s, uint64_t seq)
{
	unsigned char rec[REC];

	if (frame_write(s->pipe_a[1], seq))
		return fail(s, "ping write", -errno, seq);
	if (frame_read(s->pipe_b[0], rec) != 1 || !rec_ok(rec, REC, seq))
		return fail(s, "pong read", 0, seq);
	return 0;
}

static int a_pipe(void *arg)
{
	struct shared *s = arg;
	int rc;

	close(s->pipe_a[0]);
	close(s->pipe_b[1]);
	rc = pp_drive(s, rt_pipe);
	close(s->pipe_a[1]);	/* side B stops at end of file */
	return rc;
}

static int b_pipe(void *arg)
{
	struct shared *s = arg;
	unsigned char rec[REC];

	close(s->pipe_a[1]);
	close(s->pipe_b[0]);
	for (uint64_t want = 1;; want++) {
		int r = frame_read(s->pipe_a[0], rec);
		if (r == 0)
			return 0;
		if (r < 0 || !rec_ok(rec, REC, want))
			return fail(s, "ping read", 0, want);
		if (frame_write(s->pipe_b[1], want))
			return fail(s, "pong write", -errno, want);
	}
}

/* ---- driver ---------------------------------------------------------- */

/* Every path runs once per round, round-robin, so that noise from the rest
 * of the machine spreads over all paths; each figure is a median. */
struct opts {
	int quick;
	const char *json;
	int rounds;
	uint64_t count;		/* stream: records per path and round; 0 = timed */
	double seconds;		/* stream: seconds per path, all rounds */
	size_t capacity;	/* ring capacity; 0 = library default */
	int batches;		/* latency: timed batches per path, all rounds */
	int64_t batch_ns;	/* latency: length of a batch */
	const char *only;	/* run only these paths: keys, comma-separated */
};

enum { PATH_NONE, PATH_RING, PATH_PIPE, PATH_MODEL };

struct test {
	const char *name, *key;
	int path;
	side_fn a, b;
	int64_t timeout;	/* ring ping-pong */
	int spin_zero;		/* shmring_set_spin(0) */
	int needs_2cpu;
	unsigned ring_flags;	/* shmring_config.flags (SHMRING_REDELIVER) */
	enum model_kind model;	/* PATH_MODEL */
	/* results, over all rounds */
	int ran, ok;
	uint64_t records, futex_waits;
	double secs;
	double sample[MAX_SAMPLES];	/* stream: msgs/s per run; latency: ns per batch */
	int nsamples;
	double value;		/* the median sample */
	double best;		/* stream: the fastest run; latency: the best batch */
	double per_round[MAX_SAMPLES];	/* each round's figure (its median batch) */
	int nrounds;
};

#define STREAM(n, k, p, a_, b_) { .name = n, .key = k, .path = p, .a = a_, .b = b_ }
static struct test streams[] = {
	STREAM("ring copy (put/get)",           "ring_copy",  PATH_RING, prod_copy,  cons_copy),
	STREAM("ring batch (put/get_many)",     "ring_batch", PATH_RING, prod_batch, cons_batch),
	STREAM("ring zero-copy (reserve/peek)", "ring_zc",    PATH_RING, prod_zc,    cons_zc),
	STREAM("pipe (len + payload)",          "pipe",       PATH_PIPE, prod_pipe,  cons_pipe),
	/* peek/release on a SHMRING_REDELIVER ring (its fast-path cost: one
	 * load of a read-mostly line per take, two per release) */
	{ .name = "ring zero-copy, REDELIVER", .key = "ring_zc_redeliver", .path = PATH_RING,
	  .a = prod_zc, .b = cons_zc, .ring_flags = SHMRING_REDELIVER },
};
#define LAT(n, k, p, a_, b_, to, s0, c2) \
	{ .name = n, .key = k, .path = p, .a = a_, .b = b_, .timeout = to, .spin_zero = s0, \
	  .needs_2cpu = c2 }
static struct test lats[] = {
	LAT("floor (shared cache line)",  "floor",      PATH_NONE, a_floor, b_floor,  0, 0, 1),
	LAT("ring spin (timeout 0)",      "ring_spin",  PATH_RING, a_ring,  b_ring,   0, 0, 1),
	LAT("ring block (timeout -1)",    "ring_block", PATH_RING, a_ring,  b_ring,  -1, 0, 0),
	LAT("ring block, spin 0 (futex)", "ring_futex", PATH_RING, a_ring,  b_ring,  -1, 1, 0),
	LAT("pipe (len + payload)",       "pipe_pingpong", PATH_PIPE, a_pipe, b_pipe,  0, 0, 0),
#define MODEL(n, k, kind_) \
	{ .name = n, .key = k, .path = PATH_MODEL, .a = a_model, .b = b_model, .needs_2cpu = 1, \
	  .model = kind_ }
	MODEL("model: split meta, locked",  "model_split",  MODEL_SPLIT_LOCKED),
	MODEL("model: inline seq, locked",  "model_inline", MODEL_INLINE_LOCKED),
	MODEL("model: inline seq, CAS only", "model_cas",   MODEL_INLINE_CAS),
	MODEL("model: inline seq, plain",   "model_plain",  MODEL_INLINE_PLAIN),
	MODEL("model: inline, 64 B payload", "model_wide",  MODEL_INLINE_WIDE),
};
enum { S_COPY, S_BATCH, S_ZC, S_PIPE, S_ZC_REDELIVER };
enum { L_FLOOR, L_SPIN, L_BLOCK, L_FUTEX, L_PIPE, L_MODEL_SPLIT, L_MODEL_INLINE, L_MODEL_CAS,
       L_MODEL_PLAIN, L_MODEL_WIDE };
#define NSTREAMS (int)(sizeof streams / sizeof streams[0])
#define NLATS    (int)(sizeof lats / sizeof lats[0])

static int make_ring(struct shmring **r, const struct opts *o, int spin_zero, unsigned flags)
{
	struct shmring_config cfg = { .capacity = o->capacity, .flags = flags };
	int rc = shmring_create(r, NULL, &cfg);

	if (rc) {
		fprintf(stderr, "bench_quick: shmring_create: %s\n", shmring_strerror(rc));
		exit(2);
	}
	if (spin_zero)
		shmring_set_spin(*r, 0);
	return rc;
}

static void make_pipe(int fd[2])
{
	if (pipe(fd) != 0) {
		perror("pipe");
		exit(2);
	}
}

static uint64_t futex_waits(struct shmring *r)
{
	struct shmring_info info;
	return shmring_info(r, &info) == 0 ? info.futex_waits : 0;
}

/* Before the start: side 0 produces into ring[0] (and consumes ring[1]),
 * side 1 the reverse.  Declared up front, the roles are in place before
 * either side's first call, and taking them stays out of the timing. */
static int declare_roles(int side, void *arg)
{
	struct shared *s = arg;
	unsigned mine = side == 0 ? SHMRING_PRODUCER : SHMRING_CONSUMER;
	unsigned other = mine ^ (SHMRING_PRODUCER | SHMRING_CONSUMER);
	int rc = s->ring[0] ? shmring_declare(s->ring[0], mine) : 0;

	if (rc == 0 && s->ring[1])
		rc = shmring_declare(s->ring[1], other);
	if (rc)
		fprintf(stderr, "bench_quick: shmring_declare: %s\n", shmring_strerror(rc));
	return rc;
}

/* Run one test: set up its rings or pipes, fork its two sides, tear down. */
static void run_test(struct shared *s, struct test *t, const int cpu[2], const struct opts *o,
		     int stream)
{
	pid_t pid[2];
	int nrings = t->path != PATH_RING ? 0 : stream ? 1 : 2;

	atomic_store(&s->ball, 0);
	atomic_store(&s->errors, 0);
	s->sent = s->received = 0;
	s->t_start = s->t_end = 0;
	s->timeout = t->timeout;
	s->ring[0] = s->ring[1] = NULL;
	if (t->path == PATH_MODEL) {
		memset(s->model, 0, sizeof *s->model);
		s->model->kind = t->model;
	}
	if (t->path == PATH_RING) {
		for (int i = 0; i < nrings; i++)
			make_ring(&s->ring[i], o, t->spin_zero, t->ring_flags);
	} else if (t->path == PATH_PIPE) {
		make_pipe(s->pipe_a);
		if (!stream)
			make_pipe(s->pipe_b);
	}

	pair_start(&s->gate, cpu, declare_roles, t->a, t->b, s, pid);
	if (t->path == PATH_PIPE) {	/* end of file needs every copy closed */
		close(s->pipe_a[0]);
		close(s->pipe_a[1]);
		if (!stream) {
			close(s->pipe_b[0]);
			close(s->pipe_b[1]);
		}
	}
	int bad = pair_wait(pid);

	int ok = !bad && atomic_load(&s->errors) == 0;
	t->ok = t->ran ? t->ok && ok : ok;
	t->ran = 1;
	if (t->path == PATH_RING) {
		for (int i = 0; i < nrings; i++) {
			t->futex_waits += futex_waits(s->ring[i]);
			shmring_detach(s->ring[i]);
		}
	}
	if (stream) {
		double secs = (double)(s->t_end - s->t_start) / 1e9;
		if (s->sent != s->received)
			ok = t->ok = 0;
		t->records += s->received;
		t->secs += secs;
		if (t->nsamples < MAX_SAMPLES && secs > 0)
			t->sample[t->nsamples++] = (double)s->received / secs;
		if (t->nrounds < MAX_SAMPLES && secs > 0)
			t->per_round[t->nrounds++] = (double)s->received / secs;
	} else {
		for (int b = 0; b < s->nbatches && t->nsamples < MAX_SAMPLES; b++)
			t->sample[t->nsamples++] = s->rtt[b] / 2;	/* one-way */
		if (t->nrounds < MAX_SAMPLES)
			t->per_round[t->nrounds++] = median(s->rtt, s->nbatches) / 2;
	}
	if (t->nsamples) {
		double v[MAX_SAMPLES];
		memcpy(v, t->sample, (size_t)t->nsamples * sizeof v[0]);
		t->value = median(v, t->nsamples);	/* sorts v */
		t->best = stream ? v[t->nsamples - 1] : v[0];
	}
	if (!ok)
		fprintf(stderr, "bench_quick: %s: FAILED (sent %llu, received %llu, errors %llu)\n",
			t->name, (unsigned long long)s->sent, (unsigned long long)s->received,
			(unsigned long long)atomic_load(&s->errors));
}

struct target {
	const char *name;
	double value;
	int at_least;		/* 1: value >= limit passes; 0: value <= limit */
	double limit;
	int have;		/* 0: not measured (skipped) */
	int pass;
};

static double ratio(const struct test *a, const struct test *b)
{
	return a->ran && b->ran && b->value > 0 ? a->value / b->value : 0;
}

/* The median over rounds of a/b within each round.  The two vCPUs of a
 * virtual machine can move between host cores mid-run (here the floor was
 * seen to jump between ~30 and ~250 ns), so a ratio of figures taken close
 * together is steadier than a ratio of medians. */
static double round_ratio(const struct test *a, const struct test *b)
{
	double v[MAX_SAMPLES];
	int n = 0;

	for (int r = 0; r < a->nrounds && r < b->nrounds; r++)
		if (b->per_round[r] > 0)
			v[n++] = a->per_round[r] / b->per_round[r];
	return n ? median(v, n) : 0;
}

/* Is the path with this key among --only's comma-separated keys (or is
 * there no --only)? */
static bool selected(const struct opts *o, const char *key)
{
	if (!o->only)
		return true;
	size_t n = strlen(key);
	for (const char *p = o->only; p; p = strchr(p, ',')) {
		p += *p == ',';
		if (!strncmp(p, key, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
	}
	return false;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_quick [--quick] [--json FILE] [--rounds N] [--count N]\n"
		"                   [--seconds S] [--capacity BYTES] [--batches N] [--only PATH,...]\n"
		"  --quick           shorter runs (a few seconds in all)\n"
		"  --json FILE       also write the figures to FILE\n"
		"  --rounds N        run every path N times, round-robin (default 3, quick 2)\n"
		"  --count N         stream exactly N records per path and round\n"
		"  --seconds S       else stream S seconds per path (default 1.5, quick 0.3)\n"
		"  --capacity BYTES  ring capacity (default: the library's)\n"
		"  --batches N       latency batches per path (default 15, quick 6)\n"
		"  --only PATH,...   run these paths: ring_copy, ring_batch, ring_zc, ring_zc_redeliver, pipe (stream),\n"
		"                    floor, ring_spin, ring_block, ring_futex, pipe_pingpong,\n"
		"                    model_split, model_inline, model_cas, model_plain, model_wide\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	double secs = -1;
	int batches = 0, rounds = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--quick")) {
			o->quick = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--json"))
			o->json = v;
		else if (!strcmp(a, "--rounds"))
			rounds = atoi(v);
		else if (!strcmp(a, "--count"))
			o->count = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			secs = atof(v);
		else if (!strcmp(a, "--capacity"))
			o->capacity = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--batches"))
			batches = atoi(v);
		else if (!strcmp(a, "--only"))
			o->only = v;
		else
			usage();
	}
	o->rounds = rounds > 0 ? rounds : o->quick ? 2 : 3;
	o->seconds = secs > 0 ? secs : o->quick ? 0.3 : 1.5;
	o->batches = batches > 0 ? batches : o->quick ? 6 : 15;
	if (o->batches < o->rounds)
		o->batches = o->rounds;
	if (o->batches / o->rounds > MAX_BATCHES || o->rounds * 2 > MAX_SAMPLES)
		usage();
	o->batch_ns = o->quick ? 10000000 : 40000000;
}

static void write_json(const char *path, const struct opts *o, int ncpu, int pinned,
		       const struct target *tg, int ntg)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		return;
	}
	fprintf(f, "{\n  \"cpus\": %d, \"pinned\": %s, \"record_bytes\": %d, \"quick\": %s,\n",
		ncpu, pinned ? "true" : "false", REC, o->quick ? "true" : "false");
	fprintf(f, "  \"stream_msgs_per_s\": {");
	for (int i = 0; i < NSTREAMS; i++)
		fprintf(f, "%s\"%s\": %.0f", i ? ", " : "", streams[i].key, streams[i].value);
	fprintf(f, "},\n  \"latency_one_way_ns\": {");
	for (int i = 0, n = 0; i < NLATS; i++)
		if (lats[i].ran)
			fprintf(f, "%s\"%s\": %.1f", n++ ? ", " : "", lats[i].key, lats[i].value);
	fprintf(f, "},\n  \"block_latency_ring_over_pipe\": %.4f,\n  \"targets\": [",
		round_ratio(&lats[L_BLOCK], &lats[L_PIPE]));
	for (int i = 0; i < ntg; i++)
		fprintf(f, "%s\n    {\"name\": \"%s\", \"value\": %.3f, \"limit\": %g, \"op\": \"%s\", "
			"\"result\": \"%s\"}", i ? "," : "", tg[i].name, tg[i].value, tg[i].limit,
			tg[i].at_least ? ">=" : "<=",
			!tg[i].have ? "SKIP" : tg[i].pass ? "PASS" : "MISS");
	fprintf(f, "\n  ]\n}\n");
	fclose(f);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct shared *s = shared_alloc(sizeof *s);
	s->model = shared_alloc(sizeof *s->model);
	int cpu[2], nocpu[2] = { -1, -1 }, ncpu, pinned, allok = 1;

	parse(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);	/* a dead reader shows up as EPIPE */
	ncpu = pick_cpus(cpu);
	pinned = ncpu >= 2;

	struct shmring *probe;
	struct shmring_info info = { 0 };
	make_ring(&probe, &o, 0, 0);
	shmring_info(probe, &info);
	shmring_detach(probe);
	printf("shmring bench_quick: %d CPU%s usable, sides %s, %d-byte records, "
	       "ring capacity %zu KiB\n", ncpu, ncpu == 1 ? "" : "s",
	       pinned ? "pinned to two CPUs" : "NOT pinned (1 CPU)", REC, info.capacity / 1024);

	s->limit = o.count ? o.count : UINT64_MAX;
	s->run_ns = o.count ? 0 : (int64_t)(o.seconds / o.rounds * 1e9);
	s->nbatches = o.batches / o.rounds;
	s->batch_ns = o.batch_ns;
	for (int r = 0; r < o.rounds; r++) {
		for (int i = 0; i < NSTREAMS; i++)
			if (selected(&o, streams[i].key))
				run_test(s, &streams[i], pinned ? cpu : nocpu, &o, 1);
		for (int i = 0; i < NLATS; i++) {
			if (lats[i].needs_2cpu && !pinned)
				continue;	/* two spinners on one CPU measure the scheduler */
			if (!selected(&o, lats[i].key))
				continue;
			run_test(s, &lats[i], pinned ? cpu : nocpu, &o, 0);
		}
	}
	for (int i = 0; i < NSTREAMS; i++)
		allok &= !streams[i].ran || streams[i].ok;
	for (int i = 0; i < NLATS; i++)
		allok &= !lats[i].ran || lats[i].ok;

	printf("\nstream: one producer -> one consumer, every record checked; "
	       "msgs/s: median of %d runs\n", o.rounds);
	printf("  %-32s %11s %7s %12s %12s %7s %11s\n", "path", "records", "seconds", "msgs/s",
	       "best run", "x pipe", "futex waits");
	for (int i = 0; i < NSTREAMS; i++) {
		const struct test *t = &streams[i];
		if (!t->ran) {
			printf("  %-32s %11s   (not run)\n", t->name, "-");
			continue;
		}
		printf("  %-32s %11llu %7.2f %12.0f %12.0f %6.1fx %11llu%s\n", t->name,
		       (unsigned long long)t->records, t->secs, t->value, t->best,
		       ratio(t, &streams[S_PIPE]), (unsigned long long)t->futex_waits,
		       t->ok ? "" : "  FAILED");
	}

	printf("\nlatency: ping-pong, one-way = round trip / 2; median of %d batches of ~%.0f ms\n",
	       s->nbatches * o.rounds, (double)o.batch_ns / 1e6);
	printf("  %-32s %11s %10s %8s %8s %11s\n", "path", "one-way ns", "best ns", "x floor",
	       "x pipe", "futex waits");
	for (int i = 0; i < NLATS; i++) {
		const struct test *t = &lats[i];
		if (!t->ran) {
			printf("  %-32s %11s   (%s)\n", t->name, "-",
			       t->needs_2cpu && !pinned ? "skipped: needs 2 CPUs" : "not run");
			continue;
		}
		printf("  %-32s %11.1f %10.1f %7.2fx %7.3fx %11llu%s\n", t->name, t->value, t->best,
		       ratio(t, &lats[L_FLOOR]), ratio(t, &lats[L_PIPE]),
		       (unsigned long long)t->futex_waits, t->ok ? "" : "  FAILED");
	}

	struct target tg[] = {
		{ "stream64 ring/pipe", round_ratio(&streams[S_COPY], &streams[S_PIPE]), 1, 20,
		  streams[S_COPY].ran && streams[S_PIPE].ran, 0 },
		{ "spin-latency ring/floor", round_ratio(&lats[L_SPIN], &lats[L_FLOOR]), 0, 2,
		  lats[L_SPIN].ran && lats[L_FLOOR].ran, 0 },
		{ "stream64 zc redeliver/zc", round_ratio(&streams[S_ZC_REDELIVER], &streams[S_ZC]), 1,
		  0.9, streams[S_ZC_REDELIVER].ran && streams[S_ZC].ran, 0 },
	};
	int ntg = (int)(sizeof tg / sizeof tg[0]);

	printf("\n");
	for (int i = 0; i < ntg; i++) {
		tg[i].pass = tg[i].at_least ? tg[i].value >= tg[i].limit : tg[i].value <= tg[i].limit;
		if (!tg[i].have)
			printf("target %s = n/a (%s %gx: SKIP)\n", tg[i].name,
			       tg[i].at_least ? ">=" : "<=", tg[i].limit);
		else
			printf("target %s = %.2fx (%s %gx: %s)\n", tg[i].name, tg[i].value,
			       tg[i].at_least ? ">=" : "<=", tg[i].limit,
			       tg[i].pass ? "PASS" : "MISS  <<<<<<<<");
	}
	printf("info   block-latency ring/pipe = %.3fx (no target)\n",
	       round_ratio(&lats[L_BLOCK], &lats[L_PIPE]));
	for (int i = L_MODEL_SPLIT; i <= L_MODEL_WIDE; i++)
		if (lats[i].ran && lats[L_FLOOR].ran)
			printf("info   spin-latency %s/floor = %.2fx (the best a design does here)\n",
			       lats[i].key, round_ratio(&lats[i], &lats[L_FLOOR]));
	printf("(targets: median over the %d rounds of each round's ratio)\n", o.rounds);
	if (!allok)
		printf("bench_quick: CHECK FAILED: records lost, duplicated or corrupt (see above)\n");

	if (o.json)
		write_json(o.json, &o, ncpu, pinned, tg, ntg);
	return allok ? 0 : 1;
}
