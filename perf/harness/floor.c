/*
 * floor.c - the physical floor the transports are measured against.
 *
 *  - memcpy bandwidth: one core copying a record-sized buffer into another,
 *    both hot in cache; the best of three 10 ms trials (the strictest floor:
 *    no transport can move a record's bytes faster than one copy).
 *  - a bare single-producer single-consumer ring between two processes on
 *    two CPUs: fixed slots, two indices on their own lines, each side
 *    caching the other's index, spinning when full or empty; the same fill
 *    and check of every record.  Not a strict floor (it still moves an
 *    index line per record) but a reference: what moving records between
 *    two cores costs with no queue logic at all (at 1 MiB, the bandwidth of
 *    handing data from one core to another).  Reported as "ref: bare SPSC".
 *  - cache-line ping-pong: two processes on two CPUs bounce one 64-bit word
 *    alone in its 128 bytes (x86 fetches lines in pairs); a round trip is two
 *    cache-line transfers, one-way is half of it.  Timed by the same driver
 *    as the transports' ping-pong (pp_drive).
 *  - the same ping-pong padded: each side busy-waits pad_ns before it
 *    answers, so that a round trip lasts as long as a transport's.  A
 *    channel's p99.9 on a VM is mostly the host's own stalls (tens of us,
 *    thousands a second here) that land in a round trip, and the longer the
 *    round trip the more of them land: the padded floor is what any channel
 *    as slow as the transport would show.  Reported as "ref: padded floor".
 *  - host stalls: both CPUs spin reading the clock; every gap of at least
 *    1 us is time the host took (this process made no call and touched no
 *    memory in it).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

double floor_memcpy_bps(size_t size)
{
	unsigned char *src, *dst;
	double best = 0;
	int64_t trial_ns = 10000000;

	if (posix_memalign((void **)&src, CACHE_LINE, size) ||
	    posix_memalign((void **)&dst, CACHE_LINE, size))
		return 0;
	memset(src, 0x5a, size);
	memset(dst, 0, size);
	for (int trial = 0; trial < 3; trial++) {
		uint64_t n = 0;
		int64_t t0 = now_ns(), t;
		do {
			for (int k = 0; k < 16; k++) {
				memcpy(dst, src, size);
				__asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
			}
			n += 16;
		} while ((t = now_ns()) - t0 < trial_ns);
		double bps = (double)n * (double)size * 1e9 / (double)(t - t0);
		if (bps > best)
			best = bps;
	}
	free(src);
	free(dst);
	return best;
}

/* Two processes running ops on the two default CPUs, sharing scen: the
 * run's result (r->why says why it failed). */
static int run_pair(struct run *r, const struct scen_ops *ops, void *scen)
{
	r->ops = ops;
	r->nparties = 2;
	r->scen = scen;
	r->timeout_ns = g_opt.run_timeout_ns;
	run_default_pins(r, 2);
	return run_parties(r);
}

#define BALL_STOP UINT64_MAX

struct floor_pp {
	_Alignas(2 * CACHE_LINE) _Atomic uint64_t ball;
	_Alignas(2 * CACHE_LINE) uint64_t rounds;
	int64_t pad_ns;		/* each side's busy wait before it answers */
	int nbatches, sample_every;
	double batch_ns[MAX_REPS * 8];
	struct hist h;
};

static void pad(int64_t ns)
{
	if (ns > 0)
		for (int64_t until = now_ns() + ns; now_ns() < until;)
			;
}

static int rt_floor(void *arg, uint64_t seq)
{
	struct floor_pp *f = arg;

	pad(f->pad_ns);
	atomic_store_explicit(&f->ball, 2 * seq - 1, memory_order_release);
	while (atomic_load_explicit(&f->ball, memory_order_acquire) != 2 * seq)
		cpu_relax();
	return 0;
}

static int floor_main(struct party *p)
{
	struct floor_pp *f = p->run->scen;

	if (p->index == 0) {
		int rc = pp_drive(rt_floor, f, f->rounds, f->nbatches, f->sample_every, &f->h,
				  f->batch_ns);
		atomic_store(&f->ball, BALL_STOP);
		return rc;
	}
	for (uint64_t want = 1;; want += 2) {
		uint64_t v;
		while ((v = atomic_load_explicit(&f->ball, memory_order_acquire)) != want) {
			if (v == BALL_STOP)
				return 0;
			cpu_relax();
		}
		pad(f->pad_ns);
		atomic_store_explicit(&f->ball, want + 1, memory_order_release);
	}
}

static const struct scen_ops floor_ops = { .main = floor_main };

int floor_pingpong(uint64_t rounds, int nbatches, int64_t pad_ns, struct hist *h, double *batch_ns,
		   char *why, size_t whylen)
{
	struct floor_pp *f;
	struct run r = { 0 };
	int rc;

	if (g_ncpus < 2) {
		snprintf(why, whylen, "needs 2 CPUs");
		return 1;
	}
	f = shared_alloc(sizeof *f);
	f->rounds = rounds;
	f->pad_ns = pad_ns;
	f->nbatches = nbatches;
	f->sample_every = 16;
	rc = run_pair(&r, &floor_ops, f);
	if (rc) {
		snprintf(why, whylen, "%s", r.why);
	} else {
		hist_merge(h, &f->h);
		memcpy(batch_ns, f->batch_ns, (size_t)nbatches * sizeof *batch_ns);
	}
	shared_free(f, sizeof *f);
	return rc ? -1 : 0;
}

/* ---- the bare SPSC ring ---------------------------------------------------- */

struct spsc {
	_Alignas(2 * CACHE_LINE) _Atomic uint64_t head;	/* producer: records written */
	_Alignas(2 * CACHE_LINE) _Atomic uint64_t tail;	/* consumer: records taken */
	_Alignas(2 * CACHE_LINE) uint64_t count, nslots;
	size_t size, stride;
	unsigned char *slots;
	int64_t t_begin, t_end;
	int bad;
	char why[160];
};

static int spsc_main(struct party *p)
{
	struct spsc *q = p->run->scen;

	shared_prefault(q->slots, q->nslots * q->stride);

	if (p->index == 0) {
		uint64_t cached_tail = 0;
		q->t_begin = now_ns();
		for (uint64_t i = 0; i < q->count; i++) {
			while (i - cached_tail == q->nslots) {
				cached_tail = atomic_load_explicit(&q->tail, memory_order_acquire);
				if (i - cached_tail == q->nslots)
					cpu_relax();
			}
			rec_fill(q->slots + (i % q->nslots) * q->stride, q->size, make_tag(0, i),
				 (int64_t)i);
			atomic_store_explicit(&q->head, i + 1, memory_order_release);
		}
		return 0;
	}
	uint64_t cached_head = 0;
	for (uint64_t i = 0; i < q->count; i++) {
		while (i == cached_head) {
			cached_head = atomic_load_explicit(&q->head, memory_order_acquire);
			if (i == cached_head)
				cpu_relax();
		}
		const unsigned char *rec = q->slots + (i % q->nslots) * q->stride;
		if (rec_tag(rec) != make_tag(0, i) ||
		    rec_check(rec, q->size, q->size, q->why, sizeof q->why)) {
			if (!q->why[0])
				snprintf(q->why, sizeof q->why, "record %llu out of order",
					 (unsigned long long)i);
			q->bad = 1;
			return -1;
		}
		atomic_store_explicit(&q->tail, i + 1, memory_order_release);
	}
	q->t_end = now_ns();
	return 0;
}

static const struct scen_ops spsc_ops = { .main = spsc_main };

double floor_spsc(size_t size, uint64_t count, size_t queue_bytes, char *why, size_t whylen)
{
	struct spsc *q;
	struct run r = { 0 };
	size_t stride = (size + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
	size_t nslots = queue_bytes / stride, bytes;
	double rate = 0;

	if (g_ncpus < 2) {
		snprintf(why, whylen, "needs 2 CPUs");
		return -1;
	}
	if (nslots < 2)
		nslots = 2;
	bytes = nslots * stride;
	q = shared_alloc(sizeof *q);
	q->slots = shared_alloc(bytes);
	shared_prefault(q->slots, bytes);	/* allocate the pages, as the transports do */
	q->count = count;
	q->nslots = nslots;
	q->size = size;
	q->stride = stride;
	if (run_pair(&r, &spsc_ops, q) != 0 || q->bad) {
		snprintf(why, whylen, "%s", q->bad ? q->why : r.why);
		rate = -1;
	} else if (q->t_end > q->t_begin) {
		rate = (double)count * 1e9 / (double)(q->t_end - q->t_begin);
	}
	shared_free(q->slots, bytes);
	shared_free(q, sizeof *q);
	return rate;
}

/* ---- host stalls ------------------------------------------------------------- */

struct stalls {
	double secs;
	uint64_t count[2];
	int64_t stolen_ns[2];
};

static int stalls_main(struct party *p)
{
	struct stalls *s = p->run->scen;
	int64_t end = now_ns() + (int64_t)(s->secs * 1e9), prev = now_ns();
	uint64_t n = 0;
	int64_t stolen = 0;

	while (prev < end) {
		int64_t t = now_ns();
		if (t - prev >= 1000) {
			n++;
			stolen += t - prev;
		}
		prev = t;
	}
	s->count[p->index] = n;
	s->stolen_ns[p->index] = stolen;
	return 0;
}

static const struct scen_ops stalls_ops = { .main = stalls_main };

int floor_host_stalls(double secs, double *per_sec, double *stolen_frac)
{
	struct stalls *s;
	struct run r = { 0 };
	int rc;

	if (g_ncpus < 2)
		return 1;
	s = shared_alloc(sizeof *s);
	s->secs = secs;
	rc = run_pair(&r, &stalls_ops, s);
	if (!rc) {
		*per_sec = (double)(s->count[0] + s->count[1]) / 2 / secs;
		*stolen_frac = (double)(s->stolen_ns[0] + s->stolen_ns[1]) / 2 / (secs * 1e9);
	}
	shared_free(s, sizeof *s);
	return rc ? -1 : 0;
}
