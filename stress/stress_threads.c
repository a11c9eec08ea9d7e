/*
 * stress_threads.c - many threads on one ring, every API at random, every
 * record checked (run under ThreadSanitizer by `ninja stress-tsan`).
 *
 * P producer threads and C consumer threads share one anonymous ring through
 * one handle.  Producers pick at random among put, putv, put_many,
 * reserve/commit (sometimes committing less than reserved) and reserve/abort,
 * with timeouts 0, a few microseconds, or -1, and record sizes from 0 to
 * max_record.  Consumers pick among get (sometimes with a buffer too small:
 * -EMSGSIZE must leave the record in place), get_many, peek/release and
 * next_len, with the same timeouts.
 *
 * A record of HDR bytes or more carries a header (checksum, sequence number,
 * producer id, length) and random payload; the checksum is FNV-1a over every
 * byte after it.  Checks:
 *   - every record is whole (checksum, length) and every return value is one
 *     the contract allows;
 *   - per (consumer, producer), sequence numbers increase;
 *   - exactly once: a bit per (producer, sequence) set by the consumer that
 *     takes it, must not be set already;
 *   - -EPIPE only after the end of the stream, never before;
 *   - at the end (producers stopped, ring closed, consumers drained to
 *     -EPIPE): every committed record arrived, and nothing else (no aborted,
 *     timed-out or never-put record);
 *   - no hang: a watchdog fails the run 60 s after its end.
 * A record shorter than HDR carries a fixed pattern of its length; those are
 * counted per length instead (as many taken as put).
 *
 * usage: stress_threads [--producers P] [--consumers C] [--seconds S]
 *                       [--capacity BYTES] [--max-record BYTES] [--spin N] [--seed N] [--light]
 *                       [--handles 1|2] [--end close|detach] [-v]
 * --handles 2 gives the consumers a handle of their own (shmring_attach_fd);
 * --end detach (with --handles 2) ends the stream by detaching the
 * producers' handle instead of closing the ring: end of stream by census.
 * Prints one line, "stress: OK ..." or "stress: FAIL ...", and exits 1 on
 * any violation.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

#include "stress_util.h"

#define HDR       24		/* checksum 8, seq 8, producer 4, len 4 */
#define MAX_THR   64
#define MAX_SEQ   (UINT64_C(1) << 28)	/* per producer; it stops there */
#define MAX_BATCH 8		/* put_many */
#define MAX_TAKE  16		/* get_many */

struct opts {
	int producers, consumers;
	double seconds;
	size_t capacity;
	size_t max_record;	/* --max-record: 0 = the default; <= 48: the inline layout */
	int light;		/* --light: SHMRING_LIGHT_PUBLISH */
	long spin;		/* -1: the library's default */
	uint64_t seed;
	int handles;		/* 2: consumers use a second handle (attach_fd) */
	int detach;		/* end by detaching the producers' handle, not close */
	int verbose;
};

/* ---- shared state ---------------------------------------------------- */

static struct opts opt;
static struct shmring *ring;		/* the producers' handle */
static struct shmring *cring;		/* the consumers': ring, or a second one */
static size_t max_record;
static atomic_int stop;			/* producers: stop now */
static atomic_int ended;		/* set just before close (or detach) */
static _Atomic uint64_t violations;
static _Atomic uint64_t *received[MAX_THR];	/* per producer: one bit per seq */

/* Counters of one thread: written by it, read by main after the join. */
struct counters {
	uint64_t calls;		/* calls that moved at least one record */
	uint64_t records, bytes, aborts, eagain, etimedout, emsgsize;
	uint64_t tiny[HDR];	/* records shorter than HDR, per length */
	uint64_t op[8];		/* successful calls, per API */
};

struct producer {
	pthread_t thr;
	uint32_t id;
	uint64_t rng;
	uint64_t next_seq;	/* seqs below it were put or aborted */
	unsigned char *committed;	/* one bit per seq: put for real */
	unsigned char *buf;		/* MAX_BATCH records of max_record */
	struct counters n;
};

struct consumer {
	pthread_t thr;
	int id;
	uint64_t rng;
	int64_t last[MAX_THR];	/* last seq taken, per producer */
	unsigned char *buf;	/* MAX_TAKE records of max_record, 8-aligned */
	struct counters n;
};

static struct producer prod[MAX_THR];
static struct consumer cons[MAX_THR];

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void violation(const char *fmt, ...)
{
	va_list ap;

	/* the first few in full; the count says the rest */
	if (atomic_fetch_add(&violations, 1) < 20) {
		va_start(ap, fmt);
		fprintf(stderr, "stress: VIOLATION: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
}

static void *zalloc(size_t size)	/* zeroed, committed as touched */
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* ---- records --------------------------------------------------------- */




/* A random length in 0..max_record, biased to small records. */
static size_t rand_len(uint64_t *rng)
{
	uint64_t r = rnd(rng);
	switch (r % 20) {
	case 0: case 1:
		return (r >> 8) % HDR;				/* tiny */
	case 2:
		return max_record;				/* the largest */
	case 3: case 4: case 5: case 6: case 7:
		return (r >> 8) % (max_record + 1);		/* any */
	default:
		r = HDR + (r >> 8) % (512 - HDR + 1);		/* small */
		return r < max_record ? r : max_record;
	}
}

/* Write a record of len bytes at dst; seq is used only if len >= HDR. */
static void make_record(unsigned char *dst, size_t len, uint32_t producer, uint64_t seq,
			uint64_t *rng)
{
	if (len < HDR) {
		for (size_t i = 0; i < len; i++)
			dst[i] = tiny_byte(len, i);
		return;
	}
	uint32_t len32 = (uint32_t)len;
	memcpy(dst + 8, &seq, 8);
	memcpy(dst + 16, &producer, 4);
	memcpy(dst + 20, &len32, 4);
	for (size_t i = HDR; i < len; i += 8) {
		uint64_t r = rnd(rng);
		memcpy(dst + i, &r, len - i < 8 ? len - i : 8);
	}
	uint64_t sum = fnv1a(dst + 8, len - 8);
	memcpy(dst, &sum, 8);
}

/* Check one record taken by consumer c. */
static void check_record(struct consumer *c, const unsigned char *p, size_t len)
{
	c->n.records++;
	c->n.bytes += len;
	if (len > max_record) {
		violation("consumer %d: record of %zu bytes > max_record %zu", c->id, len, max_record);
		return;
	}
	if (len < HDR) {
		for (size_t i = 0; i < len; i++) {
			if (p[i] != tiny_byte(len, i)) {
				violation("consumer %d: %zu-byte record corrupt at byte %zu", c->id, len, i);
				return;
			}
		}
		c->n.tiny[len]++;
		return;
	}

	uint64_t sum, seq;
	uint32_t pid, len32;
	memcpy(&sum, p, 8);
	memcpy(&seq, p + 8, 8);
	memcpy(&pid, p + 16, 4);
	memcpy(&len32, p + 20, 4);
	if (len32 != len || pid >= (uint32_t)opt.producers || sum != fnv1a(p + 8, len - 8)) {
		violation("consumer %d: corrupt record: got %zu bytes, header says %u bytes from "
			  "producer %u seq %llu, checksum %s", c->id, len, len32, pid,
			  (unsigned long long)seq, sum == fnv1a(p + 8, len - 8) ? "ok" : "BAD");
		return;
	}
	if (seq >= MAX_SEQ) {
		violation("consumer %d: producer %u seq %llu out of range", c->id, pid,
			  (unsigned long long)seq);
		return;
	}
	if ((int64_t)seq <= c->last[pid])
		violation("consumer %d: producer %u order: seq %llu after %lld", c->id, pid,
			  (unsigned long long)seq, (long long)c->last[pid]);
	c->last[pid] = (int64_t)seq;
	uint64_t mask = UINT64_C(1) << (seq % 64);
	if (atomic_fetch_or_explicit(&received[pid][seq / 64], mask, memory_order_relaxed) & mask)
		violation("consumer %d: producer %u seq %llu delivered twice", c->id, pid,
			  (unsigned long long)seq);
}

/* ---- producers ------------------------------------------------------- */

static int64_t rand_timeout(uint64_t *rng)
{
	uint64_t r = rnd(rng) % 10;
	if (r < 3)
		return 0;
	if (r < 6)
		return 1000 + (int64_t)(rnd(rng) % 200000);	/* 1 to 201 us */
	return -1;
}

/* Account for a put-side error; returns 1 if it is one the contract allows. */
static int put_error(struct counters *n, int rc, int64_t to, const char *api)
{
	if (rc == -EAGAIN && to == 0) {
		n->eagain++;
		return 1;
	}
	if (rc == -ETIMEDOUT && to > 0) {
		n->etimedout++;
		return 1;
	}
	violation("%s (timeout %lld): unexpected %d (%s)", api, (long long)to, rc,
		  shmring_strerror(rc));
	return 0;
}

/* Record seq (or a tiny record) as put; the next record gets the next seq. */
static void mark_committed(struct producer *p, size_t len, uint64_t seq)
{
	p->n.records++;
	p->n.bytes += len;
	if (len < HDR) {
		p->n.tiny[len]++;
		return;
	}
	p->committed[seq / 8] |= (unsigned char)(1u << (seq % 8));
	p->next_seq = seq + 1;
}

enum { OP_PUT, OP_PUTV, OP_PUT_MANY, OP_COMMIT, OP_ABORT, OP_GET, OP_GET_MANY, OP_PEEK };

static void produce_one(struct producer *p)
{
	uint64_t *rng = &p->rng;
	int64_t to = rand_timeout(rng);
	uint64_t op = rnd(rng) % 100;
	size_t len = rand_len(rng);
	uint64_t seq = p->next_seq;
	int rc;

	if (op < 1) {		/* too large: refused, nothing put */
		rc = shmring_put(ring, p->buf, max_record + 1, to);
		if (rc != -EMSGSIZE)
			violation("put of max_record + 1 bytes: %d, not -EMSGSIZE", rc);
		rc = shmring_reserve(ring, max_record + 1, &(struct shmring_span){ 0 }, to);
		if (rc != -EMSGSIZE)
			violation("reserve of max_record + 1 bytes: %d, not -EMSGSIZE", rc);
		p->n.emsgsize += 2;
	} else if (op < 25) {	/* put */
		make_record(p->buf, len, p->id, seq, rng);
		rc = shmring_put(ring, p->buf, len, to);
		if (rc == 0) {
			mark_committed(p, len, seq);
			p->n.calls++;
			p->n.op[OP_PUT]++;
		} else {
			put_error(&p->n, rc, to, "put");
		}
	} else if (op < 45) {	/* putv: the same record in up to 4 pieces */
		struct iovec iov[4];
		int cnt = 1 + (int)(rnd(rng) % 4);
		size_t at = 0;
		make_record(p->buf, len, p->id, seq, rng);
		for (int i = 0; i < cnt; i++) {
			size_t piece = i == cnt - 1 ? len - at : rnd(rng) % (len - at + 1);
			iov[i] = (struct iovec){ p->buf + at, piece };
			at += piece;
		}
		rc = shmring_putv(ring, iov, cnt, to);
		if (rc == 0) {
			mark_committed(p, len, seq);
			p->n.calls++;
			p->n.op[OP_PUTV]++;
		} else {
			put_error(&p->n, rc, to, "putv");
		}
	} else if (op < 65) {	/* put_many: seqs of records not put are reused */
		struct iovec recs[MAX_BATCH];
		uint64_t seqs[MAX_BATCH], s = seq;
		size_t n = 1 + rnd(rng) % MAX_BATCH;
		for (size_t i = 0; i < n; i++) {
			size_t l = i ? rand_len(rng) : len;
			unsigned char *dst = p->buf + i * max_record;
			seqs[i] = s;
			make_record(dst, l, p->id, s, rng);
			if (l >= HDR)
				s++;
			recs[i] = (struct iovec){ dst, l };
		}
		ssize_t k = shmring_put_many(ring, recs, n, to);
		if (k > 0 && (size_t)k <= n) {
			for (ssize_t i = 0; i < k; i++)
				mark_committed(p, recs[i].iov_len, seqs[i]);
			p->n.calls++;
			p->n.op[OP_PUT_MANY]++;
		} else if (k >= 0) {
			violation("put_many of %zu: returned %zd", n, k);
		} else {
			put_error(&p->n, (int)k, to, "put_many");
		}
		return;
	} else {		/* reserve, then commit (maybe shorter) or abort */
		struct shmring_span sp;
		int abort_it = op >= 90;
		rc = shmring_reserve(ring, len, &sp, to);
		if (rc) {
			put_error(&p->n, rc, to, "reserve");
			return;
		}
		if (sp.len < len || span_misplaced(sp.data, max_record))
			violation("reserve(%zu): span of %zu bytes at %p", len, sp.len, sp.data);
		size_t fin = rnd(rng) % 2 ? len : rnd(rng) % (len + 1);
		make_record(sp.data, abort_it ? len : fin, p->id, seq, rng);
		if (abort_it) {
			rc = shmring_abort(ring, &sp);
			if (rc)
				violation("abort: %d", rc);
			p->n.aborts++;
			p->n.op[OP_ABORT]++;
			if (len >= HDR)
				p->next_seq++;	/* this seq must never arrive */
			return;
		}
		rc = shmring_commit(ring, &sp, fin);
		if (rc) {
			violation("commit(%zu of %zu): %d", fin, len, rc);
			return;
		}
		mark_committed(p, fin, seq);
		p->n.calls++;
		p->n.op[OP_COMMIT]++;
	}
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
	       p->next_seq + MAX_BATCH < MAX_SEQ)
		produce_one(p);
	return NULL;
}

/* ---- consumers ------------------------------------------------------- */

/* A get-side error allowed by the contract?  Returns 1 at the end of the
 * stream: -EPIPE once the ring is closed (or its producers gone). */
static int get_error(struct counters *n, ssize_t rc, int64_t to, const char *api)
{
	if (rc == -EAGAIN && to == 0) {
		n->eagain++;
	} else if (rc == -ETIMEDOUT && to > 0) {
		n->etimedout++;
	} else if (rc == -EPIPE) {
		if (atomic_load(&ended))
			return 1;
		violation("%s (timeout %lld): -EPIPE before the end of the stream", api,
			  (long long)to);
	} else {
		violation("%s (timeout %lld): unexpected %zd (%s)", api, (long long)to, rc,
			  shmring_strerror((int)rc));
	}
	return 0;
}

/* One call; returns 1 once the ring is closed and drained. */
static int consume_one(struct consumer *c)
{
	uint64_t *rng = &c->rng;
	int64_t to = rand_timeout(rng);
	uint64_t op = rnd(rng) % 100;
	ssize_t n;

	if (op < 5) {		/* next_len: a hint only */
		n = shmring_next_len(cring);
		if (n > (ssize_t)max_record || (n < 0 && n != -EAGAIN && n != -EPIPE) ||
		    (n == -EPIPE && !atomic_load(&ended)))
			violation("next_len: %zd", n);
		return 0;
	}
	if (op < 12) {		/* get with a small buffer: -EMSGSIZE keeps the record */
		size_t cap = rnd(rng) % 64;
		n = shmring_get(cring, c->buf, cap, to);
		if (n == -EMSGSIZE) {
			c->n.emsgsize++;
			return 0;
		}
		if (n >= 0 && (size_t)n > cap)
			violation("get: %zd bytes into a %zu-byte buffer", n, cap);
	} else if (op < 40) {	/* get */
		n = shmring_get(cring, c->buf, max_record, to);
	} else if (op < 70) {	/* get_many */
		struct iovec recs[MAX_TAKE];
		size_t max = 1 + rnd(rng) % MAX_TAKE;
		size_t cap = max_record + rnd(rng) % (MAX_TAKE * max_record - max_record + 1);
		n = shmring_get_many(cring, c->buf, cap, recs, max, to);
		if (n < 0)
			return get_error(&c->n, n, to, "get_many");
		if (n == 0 || (size_t)n > max)
			violation("get_many(max %zu): returned %zd", max, n);
		size_t end = 0;
		for (ssize_t i = 0; i < n && (size_t)i < max; i++) {
			size_t off = (size_t)((unsigned char *)recs[i].iov_base - c->buf);
			if (off % 8 || off < end || off + recs[i].iov_len > cap) {
				violation("get_many: record %zd at offset %zu (+%zu) of %zu", i, off,
					  recs[i].iov_len, cap);
				break;
			}
			end = off + recs[i].iov_len;
			check_record(c, recs[i].iov_base, recs[i].iov_len);
		}
		c->n.calls++;
		c->n.op[OP_GET_MANY]++;
		return 0;
	} else {		/* peek, check in place, release */
		struct shmring_span sp;
		n = shmring_peek(cring, &sp, to);
		if (n < 0)
			return get_error(&c->n, n, to, "peek");
		if ((size_t)n != sp.len || span_misplaced(sp.data, max_record))
			violation("peek: returned %zd, span of %zu bytes at %p", n, sp.len, sp.data);
		check_record(c, sp.data, sp.len);
		if (shmring_release(cring, &sp) != 0)
			violation("release failed");
		c->n.calls++;
		c->n.op[OP_PEEK]++;
		return 0;
	}
	if (n < 0)
		return get_error(&c->n, n, to, "get");
	check_record(c, c->buf, (size_t)n);
	c->n.calls++;
	c->n.op[OP_GET]++;
	return 0;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;

	while (!consume_one(c))
		;
	return NULL;
}

/* ---- main ------------------------------------------------------------ */

static void on_alarm(int sig)
{
	static const char msg[] = "stress: FAIL watchdog: threads did not finish (hang?)\n";
	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(3);
	_exit(3);
}

static void usage(void)
{
	fprintf(stderr, "usage: stress_threads [--producers P] [--consumers C] [--seconds S]\n"
			"                      [--capacity BYTES] [--max-record BYTES] [--spin N] [--seed N] [--light]\n"
			"                      [--handles 1|2] [--end close|detach] [-v]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	opt = (struct opts){ .producers = 3, .consumers = 3, .seconds = 10,
			     .capacity = 64 * 1024, .spin = -1, .seed = (uint64_t)time(NULL),
			     .handles = 1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-v")) {
			opt.verbose = 1;
			continue;
		}
		if (!strcmp(a, "--light")) { /* a ring made with SHMRING_LIGHT_PUBLISH */
			opt.light = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (stress_common_opt(a, v, &opt.producers, &opt.consumers, &opt.seconds,
				      &opt.capacity))
			continue;
		if (!strcmp(a, "--spin"))
			opt.spin = atol(v);
		else if (!strcmp(a, "--max-record"))
			opt.max_record = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--handles"))
			opt.handles = atoi(v);
		else if (!strcmp(a, "--end") && (!strcmp(v, "close") || !strcmp(v, "detach")))
			opt.detach = !strcmp(v, "detach");
		else
			usage();
	}
	if (opt.producers < 1 || opt.producers > MAX_THR || opt.consumers < 1 ||
	    opt.consumers > MAX_THR || opt.seconds < 0 || opt.handles < 1 || opt.handles > 2 ||
	    (opt.detach && opt.handles != 2))
		usage();
}

static void add(struct counters *sum, const struct counters *n)
{
	sum->calls += n->calls;
	sum->records += n->records;
	sum->bytes += n->bytes;
	sum->aborts += n->aborts;
	sum->eagain += n->eagain;
	sum->etimedout += n->etimedout;
	sum->emsgsize += n->emsgsize;
	for (int i = 0; i < HDR; i++)
		sum->tiny[i] += n->tiny[i];
	for (int i = 0; i < 8; i++)
		sum->op[i] += n->op[i];
}

/* After the drain: every committed record arrived, nothing else did. */
static void final_checks(const struct counters *put, const struct counters *got)
{
	for (int p = 0; p < opt.producers; p++) {
		uint64_t lost = 0, extra = 0, first = 0;
		for (uint64_t s = 0; s < prod[p].next_seq; s++) {
			int c = prod[p].committed[s / 8] >> (s % 8) & 1;
			int r = (int)(atomic_load_explicit(&received[p][s / 64],
							   memory_order_relaxed) >> (s % 64) & 1);
			if (c != r && !lost && !extra)
				first = s;
			lost += c && !r;
			extra += !c && r;
		}
		for (int c = 0; c < opt.consumers; c++)
			if (cons[c].last[p] >= (int64_t)prod[p].next_seq)
				extra++;
		if (lost || extra)
			violation("producer %d: %llu committed records never arrived, %llu arrived "
				  "that were never committed (first at seq %llu)", p,
				  (unsigned long long)lost, (unsigned long long)extra,
				  (unsigned long long)first);
	}
	for (int l = 0; l < HDR; l++)
		if (put->tiny[l] != got->tiny[l])
			violation("%d-byte records: %llu put, %llu taken", l,
				  (unsigned long long)put->tiny[l], (unsigned long long)got->tiny[l]);
	if (put->records != got->records || put->bytes != got->bytes)
		violation("put %llu records (%llu bytes), took %llu (%llu bytes)",
			  (unsigned long long)put->records, (unsigned long long)put->bytes,
			  (unsigned long long)got->records, (unsigned long long)got->bytes);

	struct shmring_info info;
	int rc = shmring_info(cring, &info);
	if (rc || info.records || info.bytes || (opt.detach ? !info.eof : !info.closed))
		violation("info after the drain: rc %d closed %d eof %d records %zu bytes %zu", rc,
			  info.closed, info.eof, info.records, info.bytes);
}

int main(int argc, char **argv)
{
	struct shmring_config cfg = { 0 };
	struct counters put = { 0 }, got = { 0 };
	struct timespec t0, t1;
	int rc;

	parse(argc, argv);
	cfg.capacity = opt.capacity;
	cfg.max_record = opt.max_record;
	cfg.flags = opt.light ? SHMRING_LIGHT_PUBLISH : 0;
	rc = shmring_create(&ring, NULL, &cfg);
	if (rc) {
		fprintf(stderr, "stress: FAIL shmring_create: %s\n", shmring_strerror(rc));
		return 1;
	}
	cring = ring;
	if (opt.handles == 2) {
		rc = shmring_attach_fd(&cring, shmring_fd(ring));
		if (rc) {
			fprintf(stderr, "stress: FAIL shmring_attach_fd: %s\n", shmring_strerror(rc));
			return 1;
		}
	}
	if (opt.spin >= 0) {
		shmring_set_spin(ring, (unsigned)opt.spin);
		shmring_set_spin(cring, (unsigned)opt.spin);
	}
	struct shmring_info info;
	shmring_info(ring, &info);
	max_record = info.max_record;
	if (opt.verbose)
		fprintf(stderr, "stress: %d producers, %d consumers, capacity %zu, max_record %zu, "
			"seed %llu\n", opt.producers, opt.consumers, info.capacity, max_record,
			(unsigned long long)opt.seed);

	for (int i = 0; i < opt.producers; i++) {
		received[i] = zalloc(MAX_SEQ / 8);
		prod[i].id = (uint32_t)i;
		prod[i].rng = opt.seed * 2654435761u + (uint64_t)i * 2 + 1;
		prod[i].committed = zalloc(MAX_SEQ / 8);
		prod[i].buf = zalloc(MAX_BATCH * (max_record + 1));
	}
	for (int i = 0; i < opt.consumers; i++) {
		cons[i].id = i;
		cons[i].rng = opt.seed * 40503u + (uint64_t)i * 2 + 0x1000001;
		for (int p = 0; p < MAX_THR; p++)
			cons[i].last[p] = -1;
		cons[i].buf = zalloc(MAX_TAKE * max_record + 8);
	}

	signal(SIGALRM, on_alarm);
	alarm((unsigned)opt.seconds + 60);	/* a hang is a failure too */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < opt.consumers; i++)
		pthread_create(&cons[i].thr, NULL, consumer_main, &cons[i]);
	for (int i = 0; i < opt.producers; i++)
		pthread_create(&prod[i].thr, NULL, producer_main, &prod[i]);

	sleep_ms(opt.seconds * 1000);
	atomic_store(&stop, 1);
	for (int i = 0; i < opt.producers; i++)
		pthread_join(prod[i].thr, NULL);
	atomic_store(&ended, 1);
	if (opt.detach) {		/* the last producer leaves: end of stream */
		shmring_detach(ring);
		ring = NULL;
	} else {
		rc = shmring_close(ring);	/* consumers drain the rest, then -EPIPE */
		if (rc)
			violation("close: %d", rc);
	}
	for (int i = 0; i < opt.consumers; i++)
		pthread_join(cons[i].thr, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	alarm(0);

	for (int i = 0; i < opt.producers; i++)
		add(&put, &prod[i].n);
	for (int i = 0; i < opt.consumers; i++)
		add(&got, &cons[i].n);
	final_checks(&put, &got);

	if (opt.verbose)
		fprintf(stderr, "stress: calls put %llu putv %llu put_many %llu commit %llu "
			"abort %llu | get %llu get_many %llu peek %llu | eagain %llu/%llu "
			"etimedout %llu/%llu emsgsize %llu/%llu (put/get)\n",
			(unsigned long long)put.op[OP_PUT], (unsigned long long)put.op[OP_PUTV],
			(unsigned long long)put.op[OP_PUT_MANY], (unsigned long long)put.op[OP_COMMIT],
			(unsigned long long)put.op[OP_ABORT], (unsigned long long)got.op[OP_GET],
			(unsigned long long)got.op[OP_GET_MANY], (unsigned long long)got.op[OP_PEEK],
			(unsigned long long)put.eagain, (unsigned long long)got.eagain,
			(unsigned long long)put.etimedout, (unsigned long long)got.etimedout,
			(unsigned long long)put.emsgsize, (unsigned long long)got.emsgsize);

	uint64_t bad = atomic_load(&violations);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("stress: %s records=%llu bytes=%llu puts=%llu gets=%llu aborts=%llu seconds=%.1f",
	       bad ? "FAIL" : "OK", (unsigned long long)got.records,
	       (unsigned long long)got.bytes, (unsigned long long)put.calls,
	       (unsigned long long)got.calls, (unsigned long long)put.aborts, secs);
	if (bad)
		printf(" violations=%llu seed=%llu", (unsigned long long)bad,
		       (unsigned long long)opt.seed);
	printf("\n");
	if (cring != ring)
		shmring_detach(cring);
	shmring_detach(ring);
	return bad ? 1 : 0;
}
