/*
 * fuzz_scribble.c - a live ring, a hostile peer and a victim (libFuzzer).
 *
 * Each input is a program (scribble.h): a small anonymous ring is made, and
 * the program interleaves a peer's writes into the shared mapping (raw bytes
 * anywhere in the file; header words, slot meta entries, attachment entries
 * and op records built from the ring's current indices so that they are
 * plausible enough to get past the first check) with library calls by one or
 * two victim handles, every wait bounded (timeout 0, 1 ms or 2 ms).
 *
 * What must hold whatever the peer wrote: no crash, no sanitizer report, no
 * hang (run with -timeout), and results inside the caller's and the ring's
 * bounds (checked below: a returned length fits the buffer and max_record,
 * a span lies inside the double-mapped data region, error codes are the
 * documented ones).  By default the peer writes between calls, not during
 * them, and a run is deterministic.  With the setup byte's concurrent bit
 * the peer's writes run in a thread of their own, over and over, while the
 * calls run (what a call reads may change under it: double fetches); such a
 * run is not reproducible, but a sanitizer report is a bug all the same.
 * Either way, a loop that only a live peer keeps going (by rewriting the
 * words it reads) is a retry loop, not a hang: the peer thread stops after
 * 200 passes over its writes.
 *
 * Build and run: fuzz/run.sh fuzz_scribble SECONDS.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attach.h"
#include "slot.h"
#include "shmring_batch.h"
#include "shmring_poll.h"
#include "shmring_zc.h"

#define FUZZ_NAME "fuzz_scribble"
#include "oracle.h"
#include "scribble.h"

#define MAX_OPS   256
#define MAX_SPANS 4
#define MS        1000000LL

struct input {
	const uint8_t *p;
	size_t n;
	bool ended;
};

static uint8_t u8(struct input *in)
{
	if (!in->n) {
		in->ended = true;
		return 0;
	}
	in->n--;
	return *in->p++;
}

static uint64_t un(struct input *in, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)u8(in) << (8 * i);
	return v;
}

static int64_t tmo(struct input *in)
{
	switch (u8(in) & 7) {
	case 6: return 1 * MS;
	case 7: return 2 * MS;
	default: return 0;
	}
}

/* --- the world of one input ---------------------------------------------- */

struct span_slot {
	bool used;
	int h; /* handle index */
	struct shmring_span sp;
};

static struct world {
	struct shmring *h[2];
	unsigned char *base;     /* our own MAP_SHARED view of the file */
	size_t file_size;
	uint64_t nslots, capacity, max_record;
	struct span_slot peeks[MAX_SPANS], res[MAX_SPANS];
} w;

static unsigned char buf[1 << 16];
static unsigned char src[1 << 16];

static struct ring_header *H(void)
{
	return (struct ring_header *)w.base;
}

static uint64_t load64(const void *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}

/* Set in a thread that only parses the peer's instructions (the victim's,
 * in concurrent mode): no write happens. */
static _Thread_local bool dry;

static void store(void *p, uint64_t v, int width)
{
	if (dry)
		return;
	switch (width) {
	case 2: atomic_store_explicit((_Atomic uint16_t *)p, (uint16_t)v, memory_order_relaxed); break;
	case 4: atomic_store_explicit((_Atomic uint32_t *)p, (uint32_t)v, memory_order_relaxed); break;
	default: atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_relaxed); break;
	}
}

static uint64_t value(struct input *in)
{
	unsigned kind = u8(in) % V_KINDS;
	switch (kind) {
	case V_SMALL:   return u8(in);
	case V_RAW:     return un(in, 8);
	case V_PROD:    return load64(&H()->prod_head) + (uint64_t)(int64_t)(int8_t)u8(in);
	case V_CONS:    return load64(&H()->cons_head) + (uint64_t)(int64_t)(int8_t)u8(in);
	case V_FREE:    return load64(&H()->free_tail) + (uint64_t)(int64_t)(int8_t)u8(in);
	case V_LAPS:    return w.nslots * u8(in) + (uint64_t)(int64_t)(int8_t)u8(in);
	case V_TOPBIT:  return (UINT64_C(1) << 63) + (uint64_t)(int64_t)(int8_t)u8(in);
	case V_NEARMAX: return UINT64_MAX - u8(in);
	default:        return (un(in, 4) << 32) | u8(in);
	}
}

static uint32_t len32(struct input *in)
{
	unsigned kind = u8(in) % L_KINDS;
	int8_t d;
	switch (kind) {
	case L_SMALL:    return u8(in);
	case L_U16:      return (uint32_t)un(in, 2);
	case L_MAXREC:   d = (int8_t)u8(in); return (uint32_t)(w.max_record + (uint64_t)(int64_t)d);
	case L_CAPACITY: d = (int8_t)u8(in); return (uint32_t)(w.capacity + (uint64_t)(int64_t)d);
	case L_NEARMAX:  return UINT32_MAX - u8(in);
	case L_RAW:      return (uint32_t)un(in, 4);
	default:         return (uint32_t)u8(in) << RING_SLOT_SHIFT;
	}
}

/* (The oracles every call is checked with: oracle.h.) */

/* --- the victim ----------------------------------------------------------- */

static struct shmring *handle(struct input *in)
{
	int i = u8(in) & 1;
	if (i == 1 && !w.h[1]) {
		/* the peer may have scribbled on the header: then it is refused */
		int rc = shmring_attach_fd(&w.h[1], shmring_fd(w.h[0]));
		if (attach_refused(rc))
			return w.h[0];
		if (rc)
			fail("attach_fd of our own ring", rc);
		shmring_set_spin(w.h[1], w.h[0]->spin);
	}
	return w.h[i];
}

static int handle_index(struct shmring *r)
{
	return r == w.h[1];
}

static struct span_slot *free_slot(struct span_slot *s)
{
	for (int i = 0; i < MAX_SPANS; i++)
		if (!s[i].used)
			return &s[i];
	return NULL;
}

static void check_info(struct shmring *r)
{
	struct shmring_info info;
	int rc = shmring_info(r, &info);
	if (rc)
		fail("info", rc);
	if (info.capacity != r->capacity || info.max_record != r->max_record)
		fail("info: geometry changed", 0);
	/* (a record over max_record still counts here: info walks with the
	 * capacity as its bound, and a handle attached after a peer rewrote
	 * the header's max_record has a smaller one than the records' writer) */
	if (info.records > r->nslots || info.used > r->capacity ||
	    info.bytes > (uint64_t)info.records * r->capacity)
		fail("info: figures beyond the ring's size", (long)info.records);
}

static void victim(struct input *in, unsigned op)
{
	struct shmring *r;
	long rc;
	switch (op) {
	case OP_PUT: {
		r = handle(in);
		size_t len = un(in, 2) % (r->max_record + 65);
		rc = shmring_put(r, src, len, tmo(in));
		check_err("put", rc);
		if (rc > 0)
			fail("put > 0", rc);
		break;
	}
	case OP_PUTV: {
		r = handle(in);
		struct iovec iov[2] = { { src, u8(in) }, { src + 300, un(in, 2) % (r->max_record + 1) } };
		rc = shmring_putv(r, iov, 2, tmo(in));
		check_err("putv", rc);
		break;
	}
	case OP_GET: {
		r = handle(in);
		size_t cap = un(in, 2);
		rc = shmring_get(r, buf, cap, tmo(in));
		check_err("get", rc);
		if (rc >= 0 && ((size_t)rc > cap || (size_t)rc > r->max_record))
			fail("get: length beyond cap or max_record", rc);
		break;
	}
	case OP_PEEK: {
		r = handle(in);
		int64_t t = tmo(in);
		struct span_slot *s = free_slot(w.peeks);
		if (!s)
			break;
		rc = shmring_peek(r, &s->sp, t);
		check_err("peek", rc);
		if (rc >= 0) {
			if ((size_t)rc != s->sp.len)
				fail("peek: span length", rc);
			check_span(r, &s->sp, s->sp.len);
			s->used = true;
			s->h = handle_index(r);
		}
		break;
	}
	case OP_RELEASE: {
		struct span_slot *s = &w.peeks[u8(in) % MAX_SPANS];
		if (!s->used)
			break;
		rc = shmring_release(w.h[s->h], &s->sp);
		if (rc)
			fail("release", rc);
		s->used = false;
		break;
	}
	case OP_RESERVE: {
		r = handle(in);
		size_t len = un(in, 2) % (r->max_record + 65);
		int64_t t = tmo(in);
		struct span_slot *s = free_slot(w.res);
		if (!s)
			break;
		rc = shmring_reserve(r, len, &s->sp, t);
		check_err("reserve", rc);
		if (rc == 0) {
			if (s->sp.len != len)
				fail("reserve: span length", (long)s->sp.len);
			check_span(r, &s->sp, len);
			memset(s->sp.data, 0x5a, len);
			s->used = true;
			s->h = handle_index(r);
		}
		break;
	}
	case OP_COMMIT:
	case OP_ABORT: {
		struct span_slot *s = &w.res[u8(in) % MAX_SPANS];
		size_t len = op == OP_COMMIT ? un(in, 2) : 0;
		if (!s->used)
			break;
		if (op == OP_COMMIT)
			rc = shmring_commit(w.h[s->h], &s->sp, len % (s->sp.len + 1));
		else
			rc = shmring_abort(w.h[s->h], &s->sp);
		if (rc)
			fail(op == OP_COMMIT ? "commit" : "abort", rc);
		s->used = false;
		break;
	}
	case OP_GET_MANY: {
		r = handle(in);
		size_t cap = un(in, 2);
		size_t max = u8(in) % 32 + 1;
		struct iovec recs[32];
		rc = shmring_get_many(r, buf, cap, recs, max, tmo(in));
		check_many(r, rc, buf, cap, recs, max);
		break;
	}
	case OP_PUT_MANY: {
		r = handle(in);
		size_t n = u8(in) % 8 + 1;
		struct iovec recs[8];
		for (size_t i = 0; i < n; i++) {
			recs[i].iov_base = src + i * 100;
			recs[i].iov_len = un(in, 2) % (r->max_record + 65);
		}
		rc = shmring_put_many(r, recs, n, tmo(in));
		check_err("put_many", rc);
		if (rc > (long)n)
			fail("put_many: more than given", rc);
		break;
	}
	case OP_NEXT_LEN:
		r = handle(in);
		rc = shmring_next_len(r);
		check_err("next_len", rc);
		if (rc >= 0 && (size_t)rc > r->max_record)
			fail("next_len beyond max_record", rc);
		break;
	case OP_INFO:
		check_info(handle(in));
		break;
	case OP_CLOSE:
		rc = shmring_close(handle(in));
		if (rc)
			fail("close", rc);
		break;
	case OP_TASK_DONE:
		rc = shmring_task_done(handle(in));
		check_err("task_done", rc);
		break;
	case OP_JOIN:
		r = handle(in);
		rc = shmring_join(r, tmo(in));
		check_err("join", rc);
		break;
	case OP_POLL: {
		unsigned ea = u8(in) & 3, eb = u8(in) & 3;
		int64_t t = tmo(in);
		struct shmring_pollitem items[2] = { { w.h[0], ea, 0 }, { w.h[1], eb, 0 } };
		rc = shmring_poll(items, w.h[1] ? 2 : 1, t);
		if (rc < 0 && rc != -ETIMEDOUT)
			fail("poll", rc);
		break;
	}
	case OP_REAP:
		shmring__reap(handle(in));
		break;
	case OP_MAYBE_REAP:
		shmring__maybe_reap(handle(in));
		break;
	case OP_DECLARE:
	case OP_LEAVE: {
		r = handle(in);
		unsigned roles = u8(in) % 3 + 1;
		rc = op == OP_DECLARE ? shmring_declare(r, roles) : shmring_leave(r, roles);
		check_err(op == OP_DECLARE ? "declare" : "leave", rc);
		break;
	}
	case OP_DETACH_B:
		if (w.h[1]) {
			for (int i = 0; i < MAX_SPANS; i++) {
				if (w.peeks[i].h == 1)
					w.peeks[i].used = false;
				if (w.res[i].h == 1)
					w.res[i].used = false;
			}
			shmring_detach(w.h[1]);
			w.h[1] = NULL;
		}
		break;
	default:
		break;
	}
}

/* --- the peer ------------------------------------------------------------- */

static const struct { uint32_t off; int width; } hfields[HF_COUNT] = {
	[HF_PROD_HEAD]    = { offsetof(struct ring_header, prod_head), 8 },
	[HF_CONS_HEAD]    = { offsetof(struct ring_header, cons_head), 8 },
	[HF_FREE_TAIL]    = { offsetof(struct ring_header, free_tail), 8 },
	[HF_NOT_EMPTY]    = { offsetof(struct ring_header, not_empty), 8 },
	[HF_NOT_FULL]     = { offsetof(struct ring_header, not_full), 8 },
	[HF_CLOSED]       = { offsetof(struct ring_header, closed), 4 },
	[HF_CENSUS]       = { offsetof(struct ring_header, census), 8 },
	[HF_REAP_NS]      = { offsetof(struct ring_header, reap_ns), 8 },
	[HF_JOIN_COUNT]   = { offsetof(struct ring_header, join.count), 8 },
	[HF_JOIN_EC]      = { offsetof(struct ring_header, join.ec), 8 },
	[HF_FUTEX_WAITS]  = { offsetof(struct ring_header, futex_waits), 8 },
	[HF_RECOVERED]    = { offsetof(struct ring_header, recovered_claims), 8 },
	[HF_LOST_RECORDS] = { offsetof(struct ring_header, lost_records), 8 },
	[HF_LOST_TASKS]   = { offsetof(struct ring_header, lost_tasks), 8 },
	[HF_MAGIC]        = { offsetof(struct ring_header, magic), 8 },
	[HF_CAPACITY]     = { offsetof(struct ring_header, capacity), 8 },
	[HF_MAX_RECORD]   = { offsetof(struct ring_header, max_record), 8 },
};

static const struct { uint32_t off; int width; } efields[EF_COUNT] = {
	[EF_ID]         = { offsetof(struct attach_entry, id), 8 },
	[EF_ROLES]      = { offsetof(struct attach_entry, roles), 4 },
	[EF_OP_HIGH]    = { offsetof(struct attach_entry, op_high), 4 },
	[EF_SINCE]      = { offsetof(struct attach_entry, since_ns), 8 },
	[EF_CLAIM_BUSY] = { offsetof(struct attach_entry, op_busy), 8 },
	[EF_GOT]        = { offsetof(struct attach_entry, got), 8 },
	[EF_DONE]       = { offsetof(struct attach_entry, done), 8 },
};

/* The slot meta entry of position pos, in our own view: where the library's
 * meta_at puts it (either layout, after the attachment region), at the same
 * offset in our mapping.  (Until 2026-12-05 this assumed the meta array
 * right after the header, as before ABI 2 moved the attachment table out:
 * OP_META scribbled on attachment entries, never on a slot's entry.) */
static struct slot_meta *meta_of(uint64_t pos)
{
	struct shmring *h = w.h[0];
	return (struct slot_meta *)(w.base + ((unsigned char *)meta_at(h, pos) - (unsigned char *)h->map));
}

static void peer(struct input *in, unsigned op)
{
	struct ring_header *hdr = H();
	switch (op) {
	case OP_RAW: {
		size_t off = un(in, 4) % w.file_size;
		size_t n = u8(in) % 16 + 1;
		for (size_t i = 0; i < n; i++) {
			uint8_t b = u8(in);
			if (!dry && off + i < w.file_size)
				atomic_store_explicit((_Atomic uint8_t *)&w.base[off + i], b,
				                      memory_order_relaxed);
		}
		break;
	}
	case OP_HDR: {
		unsigned f = u8(in) % HF_COUNT;
		store(w.base + hfields[f].off, value(in), hfields[f].width);
		break;
	}
	case OP_META: {
		unsigned b = u8(in) & 3;
		int8_t d = (int8_t)u8(in);
		uint64_t base = b == 0 ? load64(&hdr->cons_head)
		              : b == 1 ? load64(&hdr->prod_head) & RING_POS_MASK
		              : b == 2 ? load64(&hdr->free_tail) : 0;
		uint64_t pos = base + (uint64_t)(int64_t)d;
		unsigned st = u8(in);
		uint64_t seq = (st & 4) ? value(in) : SLOT_SEQ(pos, st & 3);
		uint32_t len = len32(in);
		uint16_t flags = u8(in);
		struct slot_meta *m = meta_of(pos);
		store(&m->len, len, 4);
		store(&m->flags, flags, 2);
		store(&m->seq, seq, 8);
		break;
	}
	case OP_ENTRY: {
		struct attach_entry *e = ring_attach(w.h[0], (int)(u8(in) % w.h[0]->nattach));
		unsigned f = u8(in) % EF_COUNT;
		store((unsigned char *)e + efields[f].off, value(in), efields[f].width);
		break;
	}
	case OP_CLAIM: {
		unsigned ei = u8(in) % w.h[0]->nattach, ci = u8(in) % OPREC_PER_ENTRY;
		unsigned kind = u8(in) & 3;
		uint64_t pos = value(in);
		uint32_t slots = len32(in);
		uint32_t records = u8(in);
		struct op_rec *c = ring_op_rec(w.h[0], (int)ei, ci);
		store(&c->extent, OPREC_EXTENT(slots, records), 8);
		store(&c->word, OPREC_WORD(pos, kind), 8);
		if (!dry)
			atomic_fetch_or_explicit(&ring_attach(w.h[0], (int)ei)->op_busy, UINT64_C(1) << ci,
			                         memory_order_relaxed);
		break;
	}
	case OP_KILL: {
		struct attach_entry *e = ring_attach(w.h[0], (int)(u8(in) % w.h[0]->nattach));
		unsigned how = u8(in);
		/* a pid no process has (the top of the 22-bit range), or our own
		 * pid with another start time (a recycled pid): both are dead */
		uint64_t pid = (how & 1) ? (uint64_t)getpid() : ATTACH_PID_MASK - (how >> 1);
		store(&e->id, pid | ((uint64_t)(how | 1) << ATTACH_PID_BITS << 20), 8);
		store(&e->roles, (how >> 1) & 3, 4);
		break;
	}
	default:
		break;
	}
}

/* Consume a victim instruction's operands without running it (the peer
 * thread's view of the program in concurrent mode).  Kept in step with
 * victim() and scribble.h. */
static void victim_skip(struct input *in, unsigned op)
{
	static const uint8_t bytes[OP_UNUSED_LAST] = {
		[OP_PUT] = 4, [OP_PUTV] = 5, [OP_GET] = 4, [OP_PEEK] = 2, [OP_RELEASE] = 1,
		[OP_RESERVE] = 4, [OP_COMMIT] = 3, [OP_ABORT] = 1, [OP_GET_MANY] = 5,
		[OP_NEXT_LEN] = 1, [OP_INFO] = 1, [OP_CLOSE] = 1, [OP_TASK_DONE] = 1, [OP_JOIN] = 2,
		[OP_POLL] = 3, [OP_REAP] = 1, [OP_MAYBE_REAP] = 1, [OP_DECLARE] = 2, [OP_LEAVE] = 2,
		[OP_DETACH_B] = 0,
	};
	if (op == OP_PUT_MANY) {
		u8(in);
		for (unsigned i = 2 * (u8(in) % 8 + 1); i > 0; i--)
			u8(in);
		u8(in);
		return;
	}
	un(in, bytes[op]);
}

/* Concurrent mode: the peer's writes run in a thread of their own, over and
 * over, while the victim's calls run; what a call reads may change under it.
 * Not reproducible run to run, but a sanitizer report or an oracle failure
 * is a bug all the same. */
struct peer_run {
	struct input prog;
	_Atomic bool stop;
};

static void *peer_main(void *arg)
{
	struct peer_run *pr = arg;
	dry = false;
	for (int pass = 0; pass < 200 && !atomic_load(&pr->stop); pass++) {
		struct input in = pr->prog;
		int writes = 0;
		for (int ops = 0; ops < MAX_OPS && !in.ended && in.n; ops++) {
			unsigned op = u8(&in) % OP_UNUSED_LAST;
			if (op < OP_PUT) {
				peer(&in, op);
				writes++;
			} else {
				victim_skip(&in, op);
			}
		}
		if (!writes)
			break;
	}
	return NULL;
}

/* --- one input ------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		for (size_t i = 0; i < sizeof src; i++)
			src[i] = (unsigned char)(i * 7 + 1);
		init = true;
	}
	struct input in = { data, size, false };
	uint8_t setup = u8(&in);
	static const size_t maxrecs[4] = { 0, 1, 200, 0 };
	struct shmring_config cfg = {
		.capacity = (setup & 1) ? 8192 : 4096,
		.max_record = maxrecs[(setup >> 1) & 3],
		.flags = (setup >> 3) & 3,
	};
	if (((setup >> 1) & 3) == 3)
		cfg.max_record = cfg.capacity;
	memset(&w, 0, sizeof w);
	int rc = shmring_create(&w.h[0], NULL, &cfg);
	if (rc)
		fail("create", rc);
	if (setup & 0x20)
		shmring_set_spin(w.h[0], 0);
	w.capacity = w.h[0]->capacity;
	w.max_record = w.h[0]->max_record;
	w.nslots = w.h[0]->nslots;
	w.file_size = w.h[0]->hdr->file_size; /* validated by the library: header, attachments, meta, data */
	w.base = mmap(NULL, w.file_size, PROT_READ | PROT_WRITE, MAP_SHARED, shmring_fd(w.h[0]), 0);
	if (w.base == MAP_FAILED)
		fail("mmap of the ring's fd", -errno);

	bool concurrent = setup & 0x40;
	struct peer_run pr = { .prog = in };
	pthread_t th;
	if (concurrent && pthread_create(&th, NULL, peer_main, &pr) != 0)
		fail("pthread_create", -EAGAIN);
	dry = concurrent; /* then the peer's instructions are the thread's */
	for (int ops = 0; ops < MAX_OPS && !in.ended && in.n; ops++) {
		unsigned op = u8(&in) % OP_UNUSED_LAST;
		if (op < OP_PUT)
			peer(&in, op);
		else
			victim(&in, op);
	}
	dry = false;
	if (concurrent) {
		atomic_store(&pr.stop, true);
		pthread_join(th, NULL);
	}

	munmap(w.base, w.file_size);
	if (w.h[1])
		shmring_detach(w.h[1]);
	shmring_detach(w.h[0]);
	return 0;
}
