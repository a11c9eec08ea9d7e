/*
 * stress_procs.c - P producer and C consumer PROCESSES on one anonymous ring,
 * every API at random, every record accounted for; with --kill, a killer
 * SIGKILLs random producers and consumers throughout, respawns them, and
 * checks the crash-recovery rules of docs/design.md section 7.
 * docs/stress.md explains what is checked and why the rules are exact.
 *
 * usage: stress_procs [--producers P] [--consumers C] [--seconds S]
 *                     [--capacity BYTES] [--max-record BYTES] [--kill]
 *                     [--kill-ms MIN:MAX] [--seed N] [--max-recovery-ms MS]
 *                     [--stall-ms MS] [--drain-s S] [--hold PCT:MAX_US] [-v|-vv]
 *        stress_procs --redeliver [options of stress_redeliver.c]
 *
 * Processes.  The parent makes the ring (anonymous, inherited by fork) and a
 * shared accounting region (MAP_SHARED | MAP_ANONYMOUS), then forks: for each
 * child it declares the child's role, forks, and leaves the role again (the
 * idiom of include/shmring.h), so the child is counted from before fork()
 * returns and the parent never holds a role for long.  A respawn forks the
 * replacement first and kills the victim after, so the number of producers
 * (consumers) never drops to zero: no early end of stream or broken pipe,
 * even with --producers 1.
 *
 * Records.  Every record of 8 bytes or more names itself with a record id
 * (ids come from a shared counter in blocks of BLOCK_IDS, so one producer
 * incarnation's ids increase; its "sequence").  len >= HDR: a header
 * (FNV-1a checksum of everything after it, id, producer incarnation,
 * producer slot, length, a timestamp) and random payload; 8 <= len < HDR: the
 * id and a 24-bit check of (id, len), then a pattern of the id; len < 8: a
 * pattern of the length ("tiny" records, counted per length).
 *
 * Accounting (shared): per id a "committed" bit (the producer's put
 * returned success) and a delivery tag byte (0, or the tag of the consumer
 * incarnation that recorded it: the CAS 0 -> tag catches a second delivery);
 * per producer incarnation the operation in flight and its records; per
 * consumer incarnation the call in flight and the records it has taken but
 * not finished recording.  The parent resolves a killed child's in-flight
 * state at waitpid() and attributes ring counters to each death.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

#define NAME        "stress_procs"
#define HDR         32		/* full header: sum 8, id 8, inc 4, slot 2, api 2, len 4, stamp 4 */
#define COMPACT     8		/* records from 8 to HDR - 1 bytes: id + check in 8 bytes */
#define NTINY       COMPACT	/* tiny records: 0 to 7 bytes, no id */
#define MAX_PROCS   28		/* per kind; the attachment table has 64 entries */
#define MAX_BATCH   8		/* put_many */
#define MAX_TAKE    16		/* get_many */
#define BLOCK_IDS   1024	/* ids handed to a producer at once */
#define MAX_INC     16384	/* incarnations per kind */
#define TINY_KEY    (UINT64_C(1) << 63)	/* ent.key of a tiny record: | len */
#define BAD_KEY     (UINT64_C(1) << 62)	/* ent.key of a corrupt record: ignored */
#define ID_BITS     40		/* ids fit the compact header */

/* ---- options ------------------------------------------------------------- */

struct opts {
	int producers, consumers;
	double seconds;
	size_t capacity, max_record;
	int kill;
	unsigned kill_min_ms, kill_max_ms;
	uint64_t seed;
	unsigned max_recovery_ms;	/* a kill not recovered from by then: FAIL */
	unsigned stall_ms;		/* no delivery at all for that long: FAIL */
	unsigned drain_s;		/* bound on each end phase */
	unsigned hold_pct, hold_us;	/* hold a reservation / peek that long, sometimes */
	int verbose;
};

/* ---- shared state --------------------------------------------------------- */

/* One record of an operation in flight: id, or TINY_KEY | len. */
struct ent {
	_Atomic uint64_t key;
	_Atomic uint32_t len;
	uint32_t pad;
};

enum pstate { P_IDLE, P_CALL, P_RESERVED, P_RECORD };
enum pop { PO_PUT, PO_PUTV, PO_PUT_MANY, PO_RESERVE, PO_COMMIT, PO_ABORT, PO_OVERSIZE, N_PO };
static const char *const pop_name[N_PO] = { "put", "putv", "put_many", "reserve", "commit",
					    "abort", "oversize" };
static const char *const pstate_name[] = { "idle", "in call", "reserved", "recording" };

/* One producer incarnation.  Written by that producer (atomics, relaxed
 * unless said), read by the parent once the producer is dead or gone. */
struct pinc {
	uint32_t slot;			/* set by the parent before fork */
	pid_t pid;
	_Atomic uint32_t state, op;	/* enum pstate, enum pop */
	_Atomic uint32_t n, done_n;	/* records in flight; of them, put (P_RECORD) */
	struct ent fl[MAX_BATCH];
	_Atomic uint64_t tiny[NTINY];	/* tiny records put, per length */
	_Atomic uint64_t tiny_snap[NTINY];	/* tiny[] before the op being recorded */
	_Atomic uint64_t calls[N_PO], records, bytes, eagain, etimedout, short_commits;
	_Atomic uint64_t last_id;	/* + 1; 0: none yet */
};

enum cstate { C_IDLE, C_CALL, C_NEXTLEN, C_HOLD, C_RELEASING, C_RECORD };
enum cop { CO_GET, CO_GET_SMALL, CO_GET_MANY, CO_PEEK, CO_NEXT_LEN, N_CO };
static const char *const cop_name[N_CO] = { "get", "get(small)", "get_many", "peek", "next_len" };
static const char *const cstate_name[] = { "idle", "in call", "next_len", "holding a peek",
					   "releasing", "recording" };

/* One consumer incarnation. */
struct cinc {
	uint32_t slot;
	pid_t pid;
	uint8_t tag;			/* its delivery tag, 1..255 */
	_Atomic uint32_t state, op, max_n;
	_Atomic uint32_t n, applied;	/* pending records; how many recorded */
	struct ent pend[MAX_TAKE];
	_Atomic uint64_t tiny[NTINY], tiny_snap[NTINY];
	_Atomic uint64_t records, bytes, records_snap, bytes_snap;
	_Atomic uint32_t last_stamp;	/* newest stamp among records taken */
	_Atomic uint64_t calls[N_CO], eagain, etimedout, emsgsize;
};

struct shared {
	uint64_t t0_ns;
	_Atomic uint64_t next_block;
	_Atomic int stop;			/* producers: finish and leave */
	_Atomic uint32_t producers_at_stop;	/* how many were told to stop */
	_Atomic uint32_t producers_leaving;	/* + 1 by each, before its detach */
	_Atomic uint64_t violations;
	char first_violation[400];		/* the reason a FAIL line gives */
	_Atomic uint64_t deliveries;		/* successful consumer calls */
	_Atomic int ids_exhausted;
	struct pinc pinc[MAX_INC];
	struct cinc cinc[MAX_INC];
};

static struct opts opt;
static struct shmring *ring;
static size_t max_record;
static struct shared *sh;
static uint64_t ids_cap;		/* ids available (a multiple of BLOCK_IDS) */
static _Atomic uint32_t *owner;		/* per block: producer incarnation + 1 */
static _Atomic uint64_t *committed;	/* per id: one bit */
static _Atomic uint8_t *tags;		/* per id: the consumer tag that recorded it */
static const char *who = "parent";	/* for messages */

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void violation(const char *fmt, ...)
{
	va_list ap;

	uint64_t nth = atomic_fetch_add(&sh->violations, 1);
	if (nth < 30) {
		char msg[512];
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		fprintf(stderr, NAME ": VIOLATION (%s): %s\n", who, msg);
		if (nth == 0) {	/* "<who>: <msg>", cut to fit */
			size_t w = strlen(who), room = sizeof sh->first_violation;
			if (w + 2 < room) {
				memcpy(sh->first_violation, who, w);
				memcpy(sh->first_violation + w, ": ", 2);
				size_t m = strlen(msg) < room - w - 3 ? strlen(msg) : room - w - 3;
				memcpy(sh->first_violation + w + 2, msg, m);
				sh->first_violation[w + 2 + m] = '\0';
			}
		}
	}
}

static void *map_shared(size_t size)	/* zeroed, committed only as touched */
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, NAME ": FAIL mmap of %zu bytes: %s\n", size, strerror(errno));
		exit(2);
	}
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t stamp_now(void)		/* microseconds since the start, wrapping */
{
	return (uint32_t)((now_ns() - sh->t0_ns) / 1000);
}

#define RLX memory_order_relaxed
#define LD(x) atomic_load_explicit(&(x), RLX)
#define ST(x, v) atomic_store_explicit(&(x), (v), RLX)
#define INC(x, v) atomic_fetch_add_explicit(&(x), (v), RLX)

/* ---- records ---------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)	/* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1du;
}

static uint64_t mix(uint64_t x)		/* splitmix64's finaliser */
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static unsigned char tiny_byte(size_t len, size_t i)
{
	return (unsigned char)(0x5a + len * 31 + i * 7);
}

static unsigned char compact_byte(uint64_t id, size_t i)
{
	return (unsigned char)((mix(id) >> (i % 8 * 8)) ^ i);
}

static uint64_t compact_word(uint64_t id, size_t len)
{
	return id | (mix(id * 131 + len) >> ID_BITS << ID_BITS);
}

/* A random length in 0..max_record, mostly small. */
static size_t rand_len(uint64_t *rng)
{
	uint64_t r = rnd(rng);
	size_t len;
	switch (r % 40) {
	case 0: case 1:
		len = (r >> 8) % NTINY;				/* tiny */
		break;
	case 2: case 3:
		len = COMPACT + (r >> 8) % (HDR - COMPACT);	/* compact */
		break;
	case 4: case 5:
		len = max_record;				/* the largest */
		break;
	case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 13: case 14: case 15:
		len = (r >> 8) % (max_record + 1);		/* any */
		break;
	default:
		len = HDR + (r >> 8) % (512 - HDR + 1);		/* small */
		break;
	}
	return len < max_record ? len : max_record;
}

static uint64_t key_for(size_t len, uint64_t id)
{
	return len >= COMPACT ? id : TINY_KEY | len;
}

/* Write the record (len bytes, name key) at dst. */
static void make_record(unsigned char *dst, size_t len, uint64_t key, uint32_t inc, uint32_t slot,
			unsigned api, uint64_t *rng)
{
	if (len < COMPACT) {
		for (size_t i = 0; i < len; i++)
			dst[i] = tiny_byte(len, i);
		return;
	}
	if (len < HDR) {
		uint64_t w = compact_word(key, len);
		memcpy(dst, &w, 8);
		for (size_t i = 8; i < len; i++)
			dst[i] = compact_byte(key, i);
		return;
	}
	uint16_t slot16 = (uint16_t)slot, api16 = (uint16_t)api;
	uint32_t len32 = (uint32_t)len, stamp = stamp_now();
	memcpy(dst + 8, &key, 8);
	memcpy(dst + 16, &inc, 4);
	memcpy(dst + 20, &slot16, 2);
	memcpy(dst + 22, &api16, 2);
	memcpy(dst + 24, &len32, 4);
	memcpy(dst + 28, &stamp, 4);
	for (size_t i = HDR; i < len; i += 8) {
		uint64_t r = rnd(rng);
		memcpy(dst + i, &r, len - i < 8 ? len - i : 8);
	}
	uint64_t sum = fnv1a(dst + 8, len - 8);
	memcpy(dst, &sum, 8);
}

/* Check a record taken by a consumer; returns its key (BAD_KEY if corrupt)
 * and its stamp in *stamp (0 if it has none). */
static uint64_t check_record(const unsigned char *p, size_t len, uint32_t *stamp)
{
	*stamp = 0;
	if (len > max_record) {
		violation("record of %zu bytes > max_record %zu", len, max_record);
		return BAD_KEY;
	}
	if (len < COMPACT) {
		for (size_t i = 0; i < len; i++)
			if (p[i] != tiny_byte(len, i)) {
				violation("%zu-byte record corrupt at byte %zu", len, i);
				return BAD_KEY;
			}
		return TINY_KEY | len;
	}
	uint64_t id, w;
	if (len < HDR) {
		memcpy(&w, p, 8);
		id = w & ((UINT64_C(1) << ID_BITS) - 1);
		if (id >= ids_cap || w != compact_word(id, len)) {
			violation("%zu-byte record: corrupt compact header %016llx", len,
				  (unsigned long long)w);
			return BAD_KEY;
		}
		for (size_t i = 8; i < len; i++)
			if (p[i] != compact_byte(id, i)) {
				violation("%zu-byte record id %llu corrupt at byte %zu", len,
					  (unsigned long long)id, i);
				return BAD_KEY;
			}
		if (!atomic_load_explicit(&owner[id / BLOCK_IDS], memory_order_acquire)) {
			violation("%zu-byte record id %llu: id never handed out", len,
				  (unsigned long long)id);
			return BAD_KEY;
		}
		return id;
	}
	uint64_t sum;
	uint32_t inc, len32;
	uint16_t slot;
	memcpy(&sum, p, 8);
	memcpy(&id, p + 8, 8);
	memcpy(&inc, p + 16, 4);
	memcpy(&slot, p + 20, 2);
	memcpy(&len32, p + 24, 4);
	memcpy(stamp, p + 28, 4);
	uint64_t want = fnv1a(p + 8, len - 8);
	if (sum != want || len32 != len || id >= ids_cap || inc >= MAX_INC) {
		violation("corrupt (torn?) record: %zu bytes, header says %u bytes, id %llu, "
			  "producer incarnation %u, checksum %s", len, len32,
			  (unsigned long long)id, inc, sum == want ? "ok" : "BAD");
		*stamp = 0;
		return BAD_KEY;
	}
	uint32_t own = atomic_load_explicit(&owner[id / BLOCK_IDS], memory_order_acquire);
	if (own != inc + 1 || sh->pinc[inc].slot != slot) {
		violation("record id %llu says producer %u incarnation %u; the id belongs to "
			  "incarnation %d (slot %u)", (unsigned long long)id, slot, inc,
			  (int)own - 1, own ? sh->pinc[own - 1].slot : 0);
		*stamp = 0;
		return BAD_KEY;
	}
	return id;
}

static int64_t rand_timeout(uint64_t *rng)
{
	uint64_t r = rnd(rng) % 10;
	if (r < 3)
		return 0;				/* never wait; retry later */
	if (r < 6)
		return 1000 + (int64_t)(rnd(rng) % 500000);	/* 1 us to 0.5 ms */
	return -1;
}

/* Sometimes hold a span (a reservation, a peeked record) a while, as an
 * application working in place would: a kill then finds it held. */
static void maybe_hold(uint64_t *rng)
{
	if (opt.hold_pct && rnd(rng) % 100 < opt.hold_pct)
		usleep((useconds_t)(rnd(rng) % (opt.hold_us + 1)));
}

/* ---- producers ---------------------------------------------------------------- */

struct producer {
	struct pinc *me;
	uint32_t inc;
	uint64_t rng;
	uint64_t pool[MAX_BATCH];	/* ids to use next, ascending */
	int npool;
	uint64_t blk_next, blk_end;	/* the rest of the current block */
	uint64_t tiny[NTINY];		/* local copy of me->tiny */
	unsigned char *buf;		/* MAX_BATCH records of max_record */
};

/* Make sure the pool holds n ids; false if the id space is exhausted. */
static bool ids_fill(struct producer *p, int n)
{
	while (p->npool < n) {
		if (p->blk_next == p->blk_end) {
			uint64_t b = atomic_fetch_add(&sh->next_block, 1);
			if (b >= ids_cap / BLOCK_IDS) {
				atomic_store(&sh->ids_exhausted, 1);
				return false;
			}
			/* release: a consumer that reads an id (through the
			 * ring's publication) sees its owner */
			atomic_store_explicit(&owner[b], p->inc + 1, memory_order_release);
			p->blk_next = b * BLOCK_IDS;
			p->blk_end = p->blk_next + BLOCK_IDS;
		}
		p->pool[p->npool++] = p->blk_next++;
	}
	return true;
}

/* The first n ids of the pool were used (put, or aborted): drop them. */
static void ids_used(struct producer *p, int n)
{
	memmove(p->pool, p->pool + n, (size_t)(p->npool - n) * sizeof p->pool[0]);
	p->npool -= n;
}

/* Announce an operation: its records, then the state (release). */
static void begin_op(struct producer *p, enum pop op, const uint64_t *keys, const size_t *lens,
		     int n)
{
	struct pinc *me = p->me;
	for (int i = 0; i < n; i++) {
		ST(me->fl[i].key, keys[i]);
		ST(me->fl[i].len, (uint32_t)lens[i]);
	}
	ST(me->n, (uint32_t)n);
	ST(me->done_n, 0);
	ST(me->op, op);
	atomic_store_explicit(&me->state, P_CALL, memory_order_release);
}

static void set_state(struct pinc *me, enum pstate s, enum pop op)
{
	ST(me->op, op);
	atomic_store_explicit(&me->state, s, memory_order_release);
}

/* The call put the first k records of the op: account for them. */
static void record_put(struct producer *p, int k)
{
	struct pinc *me = p->me;
	int ids = 0;
	for (int l = 0; l < NTINY; l++)
		ST(me->tiny_snap[l], p->tiny[l]);
	ST(me->done_n, (uint32_t)k);
	atomic_store_explicit(&me->state, P_RECORD, memory_order_release);
	for (int i = 0; i < k; i++) {
		uint64_t key = LD(me->fl[i].key);
		uint32_t len = LD(me->fl[i].len);
		INC(me->records, 1);
		INC(me->bytes, len);
		if (key & TINY_KEY) {
			p->tiny[len]++;
			ST(me->tiny[len], p->tiny[len]);
			continue;
		}
		atomic_fetch_or_explicit(&committed[key / 64], UINT64_C(1) << (key % 64), RLX);
		ST(me->last_id, key + 1);
		ids++;
	}
	ids_used(p, ids);
	atomic_store_explicit(&me->state, P_IDLE, memory_order_release);
}

static void put_error(struct producer *p, int rc, int64_t to, const char *api)
{
	if (rc == -EAGAIN && to == 0)
		INC(p->me->eagain, 1);
	else if (rc == -ETIMEDOUT && to > 0)
		INC(p->me->etimedout, 1);
	else
		violation("%s (timeout %lld): unexpected %d (%s)", api, (long long)to, rc,
			  shmring_strerror(rc));
	atomic_store_explicit(&p->me->state, P_IDLE, memory_order_release);
}

/* One operation; false when the id space has run out. */
static bool produce_one(struct producer *p)
{
	struct pinc *me = p->me;
	uint64_t *rng = &p->rng;
	int64_t to = rand_timeout(rng);
	uint64_t op = rnd(rng) % 100;
	uint64_t keys[MAX_BATCH];
	size_t lens[MAX_BATCH];
	int rc;

	if (!ids_fill(p, MAX_BATCH))
		return false;
	if (op < 1) {		/* too large: refused, nothing put */
		struct shmring_span sp;
		rc = shmring_put(ring, p->buf, max_record + 1, to);
		if (rc != -EMSGSIZE)
			violation("put of max_record + 1 bytes: %d, not -EMSGSIZE", rc);
		rc = shmring_reserve(ring, max_record + 1, &sp, to);
		if (rc != -EMSGSIZE)
			violation("reserve of max_record + 1 bytes: %d, not -EMSGSIZE", rc);
		INC(me->calls[PO_OVERSIZE], 1);
		return true;
	}
	if (op < 41) {		/* put, putv: one record */
		bool vec = op >= 21;
		lens[0] = rand_len(rng);
		keys[0] = key_for(lens[0], p->pool[0]);
		make_record(p->buf, lens[0], keys[0], p->inc, me->slot, vec ? PO_PUTV : PO_PUT, rng);
		begin_op(p, vec ? PO_PUTV : PO_PUT, keys, lens, 1);
		if (!vec) {
			rc = shmring_put(ring, p->buf, lens[0], to);
		} else {	/* the same record in up to 4 pieces */
			struct iovec iov[4];
			int cnt = 1 + (int)(rnd(rng) % 4);
			size_t at = 0;
			for (int i = 0; i < cnt; i++) {
				size_t piece = i == cnt - 1 ? lens[0] - at : rnd(rng) % (lens[0] - at + 1);
				iov[i] = (struct iovec){ p->buf + at, piece };
				at += piece;
			}
			rc = shmring_putv(ring, iov, cnt, to);
		}
		if (rc == 0) {
			INC(me->calls[vec ? PO_PUTV : PO_PUT], 1);
			record_put(p, 1);
		} else {
			put_error(p, rc, to, vec ? "putv" : "put");
		}
		return true;
	}
	if (op < 61) {		/* put_many: ids of records not put are used again */
		struct iovec recs[MAX_BATCH];
		int n = 1 + (int)(rnd(rng) % MAX_BATCH), used = 0;
		for (int i = 0; i < n; i++) {
			unsigned char *dst = p->buf + (size_t)i * max_record;
			lens[i] = rand_len(rng);
			keys[i] = key_for(lens[i], p->pool[used]);
			used += lens[i] >= COMPACT;
			make_record(dst, lens[i], keys[i], p->inc, me->slot, PO_PUT_MANY, rng);
			recs[i] = (struct iovec){ dst, lens[i] };
		}
		begin_op(p, PO_PUT_MANY, keys, lens, n);
		ssize_t k = shmring_put_many(ring, recs, (size_t)n, to);
		if (k > 0 && k <= n) {
			INC(me->calls[PO_PUT_MANY], 1);
			record_put(p, (int)k);
		} else if (k >= 0) {
			violation("put_many of %d: returned %zd", n, k);
			atomic_store_explicit(&me->state, P_IDLE, memory_order_release);
		} else {
			put_error(p, (int)k, to, "put_many");
		}
		return true;
	}
	/* reserve, then commit (maybe shorter) or abort */
	struct shmring_span sp;
	bool abort_it = op >= 88;
	size_t len = rand_len(rng);
	size_t fin = abort_it || rnd(rng) % 2 ? len : rnd(rng) % (len + 1);
	lens[0] = fin;
	keys[0] = key_for(fin, p->pool[0]);
	begin_op(p, PO_RESERVE, keys, lens, 1);
	rc = shmring_reserve(ring, len, &sp, to);
	if (rc) {
		put_error(p, rc, to, "reserve");
		return true;
	}
	set_state(me, P_RESERVED, PO_RESERVE);
	if (sp.len < len || ((uintptr_t)sp.data % SHMRING_SLOT_SIZE) != 0)
		violation("reserve(%zu): span of %zu bytes at %p", len, sp.len, sp.data);
	make_record(sp.data, fin, keys[0], p->inc, me->slot, abort_it ? PO_ABORT : PO_COMMIT, rng);
	maybe_hold(rng);
	if (abort_it) {
		set_state(me, P_CALL, PO_ABORT);
		rc = shmring_abort(ring, &sp);
		if (rc)
			violation("abort: %d", rc);
		INC(me->calls[PO_ABORT], 1);
		if (!(keys[0] & TINY_KEY))
			ids_used(p, 1);		/* this id must never arrive */
		atomic_store_explicit(&me->state, P_IDLE, memory_order_release);
		return true;
	}
	set_state(me, P_CALL, PO_COMMIT);
	rc = shmring_commit(ring, &sp, fin);
	if (rc) {
		violation("commit(%zu of %zu): %d", fin, len, rc);
		atomic_store_explicit(&me->state, P_IDLE, memory_order_release);
		return true;
	}
	INC(me->calls[PO_COMMIT], 1);
	if (fin < len)
		INC(me->short_commits, 1);
	record_put(p, 1);
	return true;
}

static void producer_main(uint32_t inc)
{
	struct producer p = { 0 };
	p.inc = inc;
	p.me = &sh->pinc[inc];
	p.rng = mix(opt.seed ^ mix(inc * 2 + 1)) | 1;
	p.buf = malloc((size_t)MAX_BATCH * (max_record + 1));
	if (!p.buf)
		_exit(2);
	while (!atomic_load(&sh->stop))
		if (!produce_one(&p))
			break;
	/* Counted as leaving before the detach: a consumer that sees end of
	 * stream must find every producer counted here. */
	atomic_fetch_add(&sh->producers_leaving, 1);
	shmring_detach(ring);
	free(p.buf);
	exit(0);
}

/* ---- consumers ------------------------------------------------------------------ */

struct consumer {
	struct cinc *me;
	uint32_t inc;
	uint64_t rng;
	uint64_t tiny[NTINY];
	uint64_t records, bytes;
	uint64_t *last;			/* per producer incarnation: last id + 1 */
	unsigned char *buf;		/* MAX_TAKE records of max_record, 8-aligned */
};

static void begin_call(struct consumer *c, enum cop op, uint32_t max_n)
{
	ST(c->me->op, op);
	ST(c->me->max_n, max_n);
	atomic_store_explicit(&c->me->state, op == CO_NEXT_LEN ? C_NEXTLEN : C_CALL,
			      memory_order_release);
}

static void to_idle(struct consumer *c)
{
	atomic_store_explicit(&c->me->state, C_IDLE, memory_order_release);
}

/* Is -EPIPE allowed now?  Only once every producer has been told to stop
 * and has started to leave. */
static bool epipe_ok(void)
{
	return atomic_load(&sh->stop) &&
	       atomic_load(&sh->producers_leaving) >= atomic_load(&sh->producers_at_stop);
}

/* A get-side error: returns 1 at a legitimate end of stream. */
static int get_error(struct consumer *c, ssize_t rc, int64_t to, const char *api)
{
	to_idle(c);
	if (rc == -EAGAIN && to == 0) {
		INC(c->me->eagain, 1);
	} else if (rc == -ETIMEDOUT && to > 0) {
		INC(c->me->etimedout, 1);
	} else if (rc == -EPIPE) {
		if (epipe_ok())
			return 1;
		violation("%s (timeout %lld): -EPIPE (end of stream) while producers are still "
			  "attached", api, (long long)to);
		usleep(10000);
	} else {
		violation("%s (timeout %lld): unexpected %zd (%s)", api, (long long)to, rc,
			  shmring_strerror((int)rc));
	}
	return 0;
}

/* Records taken: publish them as pending (state st), then record each. */
static void record_taken(struct consumer *c, enum cstate st, const uint64_t *keys,
			 const uint32_t *lens, const uint32_t *stamps, int n)
{
	struct cinc *me = c->me;
	for (int i = 0; i < n; i++) {
		ST(me->pend[i].key, keys[i]);
		ST(me->pend[i].len, lens[i]);
	}
	for (int l = 0; l < NTINY; l++)
		ST(me->tiny_snap[l], c->tiny[l]);
	ST(me->records_snap, c->records);
	ST(me->bytes_snap, c->bytes);
	ST(me->n, (uint32_t)n);
	ST(me->applied, 0);
	atomic_store_explicit(&me->state, st, memory_order_release);

	uint32_t newest = LD(me->last_stamp);
	for (int i = 0; i < n; i++) {
		uint64_t key = keys[i];
		if (key & BAD_KEY) {
			ST(me->applied, (uint32_t)i + 1);
			continue;
		}
		c->records++;
		c->bytes += lens[i];
		if (key & TINY_KEY) {
			c->tiny[lens[i]]++;
			ST(me->tiny[lens[i]], c->tiny[lens[i]]);
			ST(me->applied, (uint32_t)i + 1);
			continue;
		}
		uint8_t zero = 0;
		if (!atomic_compare_exchange_strong(&tags[key], &zero, me->tag))
			violation("record id %llu delivered twice (also to the consumer with tag %u)",
				  (unsigned long long)key, zero);
		ST(me->applied, (uint32_t)i + 1);
		/* per (consumer, producer incarnation): ids increase */
		uint32_t inc = atomic_load_explicit(&owner[key / BLOCK_IDS], memory_order_acquire) - 1;
		if (inc < MAX_INC) {
			if (key + 1 <= c->last[inc])
				violation("producer incarnation %u: order: id %llu after %llu", inc,
					  (unsigned long long)key, (unsigned long long)c->last[inc] - 1);
			else
				c->last[inc] = key + 1;
		}
		if (stamps[i] && (int32_t)(stamps[i] - newest) > 0)
			newest = stamps[i];
	}
	ST(me->records, c->records);
	ST(me->bytes, c->bytes);
	ST(me->last_stamp, newest);
	INC(sh->deliveries, 1);
}

/* One call; returns 1 at the end of the stream. */
static int consume_one(struct consumer *c)
{
	struct cinc *me = c->me;
	uint64_t *rng = &c->rng;
	int64_t to = rand_timeout(rng);
	uint64_t op = rnd(rng) % 100;
	uint64_t keys[MAX_TAKE];
	uint32_t lens[MAX_TAKE], stamps[MAX_TAKE];
	ssize_t n;

	if (op < 5) {		/* next_len: a hint only (and it takes skip records) */
		begin_call(c, CO_NEXT_LEN, 0);
		n = shmring_next_len(ring);
		to_idle(c);
		if (n > (ssize_t)max_record || (n < 0 && n != -EAGAIN && n != -EPIPE) ||
		    (n == -EPIPE && !epipe_ok()))
			violation("next_len: %zd", n);
		INC(me->calls[CO_NEXT_LEN], 1);
		return 0;
	}
	if (op < 40) {		/* get; sometimes with a small buffer */
		bool small = op < 12;
		size_t cap = small ? rnd(rng) % 64 : max_record;
		begin_call(c, small ? CO_GET_SMALL : CO_GET, 1);
		n = shmring_get(ring, c->buf, cap, to);
		if (n == -EMSGSIZE && small) {	/* the record stays in the ring */
			to_idle(c);
			INC(me->emsgsize, 1);
			return 0;
		}
		if (n < 0)
			return get_error(c, n, to, "get");
		if ((size_t)n > cap)
			violation("get: %zd bytes into a %zu-byte buffer", n, cap);
		keys[0] = check_record(c->buf, (size_t)n, &stamps[0]);
		lens[0] = (uint32_t)n;
		record_taken(c, C_RECORD, keys, lens, stamps, 1);
		INC(me->calls[small ? CO_GET_SMALL : CO_GET], 1);
		to_idle(c);
		return 0;
	}
	if (op < 70) {		/* get_many */
		struct iovec recs[MAX_TAKE];
		size_t max = 1 + rnd(rng) % MAX_TAKE;
		size_t cap = max_record + rnd(rng) % (MAX_TAKE * max_record - max_record + 1);
		begin_call(c, CO_GET_MANY, (uint32_t)max);
		n = shmring_get_many(ring, c->buf, cap, recs, max, to);
		if (n < 0)
			return get_error(c, n, to, "get_many");
		if (n == 0 || (size_t)n > max) {
			violation("get_many(max %zu): returned %zd", max, n);
			n = n > 0 ? (ssize_t)max : 0;
		}
		size_t end = 0;
		for (ssize_t i = 0; i < n; i++) {
			size_t off = (size_t)((unsigned char *)recs[i].iov_base - c->buf);
			lens[i] = (uint32_t)recs[i].iov_len;
			if (off % 8 || off < end || off + recs[i].iov_len > cap) {
				violation("get_many: record %zd at offset %zu (+%zu) of %zu", i, off,
					  recs[i].iov_len, cap);
				keys[i] = BAD_KEY;
				stamps[i] = 0;
				continue;
			}
			end = off + recs[i].iov_len;
			keys[i] = check_record(recs[i].iov_base, recs[i].iov_len, &stamps[i]);
		}
		record_taken(c, C_RECORD, keys, lens, stamps, (int)n);
		INC(me->calls[CO_GET_MANY], 1);
		to_idle(c);
		return 0;
	}
	/* peek, check in place, record, release */
	struct shmring_span sp;
	begin_call(c, CO_PEEK, 1);
	n = shmring_peek(ring, &sp, to);
	if (n < 0)
		return get_error(c, n, to, "peek");
	if ((size_t)n != sp.len || ((uintptr_t)sp.data % SHMRING_SLOT_SIZE) != 0)
		violation("peek: returned %zd, span of %zu bytes at %p", n, sp.len, sp.data);
	keys[0] = check_record(sp.data, sp.len, &stamps[0]);
	lens[0] = (uint32_t)sp.len;
	record_taken(c, C_HOLD, keys, lens, stamps, 1);
	maybe_hold(rng);
	atomic_store_explicit(&me->state, C_RELEASING, memory_order_release);
	if (shmring_release(ring, &sp) != 0)
		violation("release failed");
	INC(me->calls[CO_PEEK], 1);
	to_idle(c);
	return 0;
}

static void consumer_main(uint32_t inc)
{
	struct consumer c = { 0 };
	c.inc = inc;
	c.me = &sh->cinc[inc];
	c.rng = mix(opt.seed ^ mix(inc * 2 + 0x1000001)) | 1;
	c.last = calloc(MAX_INC, sizeof c.last[0]);
	c.buf = malloc((size_t)MAX_TAKE * max_record + 8);
	if (!c.last || !c.buf)
		_exit(2);
	while (!consume_one(&c))
		;
	shmring_detach(ring);
	free(c.last);
	free(c.buf);
	exit(0);
}

/* ---- the parent: processes ------------------------------------------------------ */

enum kind { PROD, CONS };
static const char *const kind_name[2] = { "producer", "consumer" };

struct proc {				/* a live child */
	pid_t pid;
	uint32_t inc;
};
static struct proc slots[2][MAX_PROCS];	/* per kind, per slot: the live incarnation */
static uint32_t next_inc[2];
static int alive[2];			/* live children per kind */
static pid_t parent_pid;
static bool cinc_dead[MAX_INC];		/* consumer incarnation gone */

static uint8_t next_tag = 0;
static uint8_t victim_tag = 0;		/* the tag of a consumer about to be killed */

/* A delivery tag no live consumer has (round robin over 1..255). */
static uint8_t pick_tag(void)
{
	for (;;) {
		next_tag = (uint8_t)(next_tag % 255 + 1);
		bool used = next_tag == victim_tag;
		for (int s = 0; s < opt.consumers; s++)
			if (slots[CONS][s].pid && sh->cinc[slots[CONS][s].inc].tag == next_tag)
				used = true;
		if (!used)
			return next_tag;
	}
}

/* Fork a child of that kind into slot s (declare, fork, leave). */
static int spawn(enum kind k, int s)
{
	if (next_inc[k] >= MAX_INC)
		return -ENOSPC;
	uint32_t inc = next_inc[k]++;
	unsigned role = k == PROD ? SHMRING_PRODUCER : SHMRING_CONSUMER;
	if (k == PROD)
		sh->pinc[inc].slot = (uint32_t)s;
	else {
		sh->cinc[inc].slot = (uint32_t)s;
		sh->cinc[inc].tag = pick_tag();
	}
	int rc = shmring_declare(ring, role);
	if (rc) {
		fprintf(stderr, NAME ": shmring_declare: %s\n", shmring_strerror(rc));
		return rc;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent_pid)
			_exit(3);
		signal(SIGALRM, SIG_DFL);
		alarm(0);
		char buf[32];
		snprintf(buf, sizeof buf, "%s %u", kind_name[k], inc);
		who = buf;
		if (k == PROD)
			producer_main(inc);
		else
			consumer_main(inc);
		_exit(0);
	}
	int err = errno;
	shmring_leave(ring, role);
	if (pid < 0) {
		fprintf(stderr, NAME ": fork: %s\n", strerror(err));
		return -err;
	}
	if (k == PROD)
		sh->pinc[inc].pid = pid;
	else
		sh->cinc[inc].pid = pid;
	slots[k][s] = (struct proc){ pid, inc };
	alive[k]++;
	return 0;
}

static void kill_all(void)
{
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < MAX_PROCS; s++)
			if (slots[k][s].pid > 0)
				kill(slots[k][s].pid, SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

static void on_alarm(int sig)
{
	static const char msg[] = NAME ": FAIL watchdog: the run did not finish (hang?)\n";
	(void)sig;
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < MAX_PROCS; s++)
			if (slots[k][s].pid > 0)
				kill(slots[k][s].pid, SIGKILL);
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(3);
	_exit(3);
}

/* ---- the parent: deaths ------------------------------------------------------------ */

/* A killed child, as found at waitpid, and what its death did to the ring. */
struct death {
	enum kind kind;
	uint32_t inc;
	uint32_t state, op, max_n;	/* its in-flight state when it died */
	uint64_t t_kill;		/* ns */
	uint32_t kill_stamp;		/* us, as records carry */
	uint64_t before;		/* recovered_claims or lost_records before the kill */
	int64_t delta;			/* and what the reap added to it */
	int64_t lo, hi;			/* the range that delta must fall in */
	bool reaped, flowed, done;
	uint64_t reap_ns, flow_ns;
	uint32_t waiting[MAX_PROCS];	/* consumers that must take a newer record */
	int nwaiting;
};
static struct death *deaths;
static size_t ndeaths, cap_deaths;
static int unreaped[2] = { -1, -1 };	/* per kind: the death whose reap we wait for */
static size_t first_open;		/* deaths before it are all done */

/* In-flight records of producers killed mid-call: delivered once or never. */
static uint64_t *maybe_ids;
static size_t nmaybe, cap_maybe;
static uint64_t maybe_tiny[NTINY];
static uint64_t kills[2];

static void add_maybe(uint64_t id)
{
	if (nmaybe == cap_maybe) {
		cap_maybe = cap_maybe ? cap_maybe * 2 : 1024;
		maybe_ids = realloc(maybe_ids, cap_maybe * sizeof *maybe_ids);
		if (!maybe_ids)
			abort();
	}
	maybe_ids[nmaybe++] = id;
}

/* A dead producer: what was in flight.  Returns the range of
 * recovered_claims its reap may add. */
static void resolve_producer(struct death *d)
{
	struct pinc *me = &sh->pinc[d->inc];
	uint32_t n = LD(me->n) > MAX_BATCH ? MAX_BATCH : LD(me->n);
	d->state = LD(me->state);
	d->op = LD(me->op);
	d->lo = 0;
	d->hi = 0;
	switch (d->state) {
	case P_IDLE:
		break;
	case P_CALL:		/* may have claimed (and even published): 0 or 1 skip */
		d->hi = 1;
		if (d->op == PO_RESERVE || d->op == PO_ABORT)
			break;	/* nothing deliverable: never committed */
		for (uint32_t i = 0; i < n; i++) {
			uint64_t key = LD(me->fl[i].key);
			if (key & TINY_KEY)
				maybe_tiny[key & 0xff]++;
			else
				add_maybe(key);
		}
		break;
	case P_RESERVED:	/* a reservation never committed: exactly one skip */
		d->lo = d->hi = 1;
		break;
	case P_RECORD: {	/* the call succeeded: finish the accounting */
		uint32_t k = LD(me->done_n) > n ? n : LD(me->done_n);
		uint64_t tiny[NTINY];
		for (int l = 0; l < NTINY; l++)
			tiny[l] = LD(me->tiny_snap[l]);
		for (uint32_t i = 0; i < k; i++) {
			uint64_t key = LD(me->fl[i].key);
			if (key & TINY_KEY)
				tiny[key & 0xff]++;
			else
				atomic_fetch_or(&committed[key / 64], UINT64_C(1) << (key % 64));
		}
		for (int l = 0; l < NTINY; l++)
			ST(me->tiny[l], tiny[l]);
		break;
	}
	}
}

/* A dead consumer: records it took and had started to record were taken
 * (delivered, to a consumer that then died): finish recording them. */
static void resolve_consumer(struct death *d)
{
	struct cinc *me = &sh->cinc[d->inc];
	d->state = LD(me->state);
	d->op = LD(me->op);
	d->max_n = LD(me->max_n);
	d->lo = 0;
	d->hi = 0;
	switch (d->state) {
	case C_IDLE:
	case C_NEXTLEN:
		return;			/* nothing taken: nothing lost */
	case C_CALL:			/* took up to max_n, recorded none */
		d->hi = d->max_n;
		return;
	case C_HOLD:			/* a peeked record, not released */
		d->lo = d->hi = 1;
		break;
	case C_RELEASING:		/* released, or not yet */
		d->hi = 1;
		break;
	case C_RECORD:			/* the call returned: all released */
		break;
	}
	uint32_t n = LD(me->n) > MAX_TAKE ? MAX_TAKE : LD(me->n);
	uint32_t applied = LD(me->applied);
	uint64_t tiny[NTINY], records = LD(me->records_snap), bytes = LD(me->bytes_snap);
	for (int l = 0; l < NTINY; l++)
		tiny[l] = LD(me->tiny_snap[l]);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key = LD(me->pend[i].key);
		if (key & BAD_KEY)
			continue;
		records++;
		bytes += LD(me->pend[i].len);
		if (key & TINY_KEY) {
			tiny[key & 0xff]++;
			continue;
		}
		if (i < applied)
			continue;		/* it recorded that one itself */
		uint8_t t = 0;
		if (atomic_compare_exchange_strong(&tags[key], &t, me->tag))
			continue;
		if (i == applied && t == me->tag)
			continue;		/* it had done the CAS, not the next store */
		violation("record id %llu delivered twice (consumer incarnation %u, killed "
			  "while recording it, and the consumer with tag %u)",
			  (unsigned long long)key, d->inc, t);
	}
	for (int l = 0; l < NTINY; l++)
		ST(me->tiny[l], tiny[l]);
	ST(me->records, records);
	ST(me->bytes, bytes);
}

static struct death *new_death(void)
{
	if (ndeaths == cap_deaths) {
		cap_deaths = cap_deaths ? cap_deaths * 2 : 256;
		deaths = realloc(deaths, cap_deaths * sizeof *deaths);
		if (!deaths)
			abort();
	}
	struct death *d = &deaths[ndeaths++];
	memset(d, 0, sizeof *d);
	return d;
}

static uint64_t rng_parent;

/* Kill a random child of kind k (its replacement first), resolve it. */
static int kill_one(enum kind k)
{
	int s = (int)(rnd(&rng_parent) % (uint64_t)(k == PROD ? opt.producers : opt.consumers));
	struct proc victim = slots[k][s];
	struct shmring_info info;
	if (next_inc[k] >= MAX_INC)
		return 0;		/* out of incarnations: no more kills of that kind */
	shmring_info(ring, &info);
	struct death *d = new_death();
	d->kind = k;
	d->inc = victim.inc;
	d->before = k == PROD ? info.recovered_claims : info.lost_records;
	/* the consumers that must see the ring flow again: those already there */
	for (int j = 0; j < opt.consumers; j++)
		if (slots[CONS][j].pid > 0 && !(k == CONS && j == s))
			d->waiting[d->nwaiting++] = slots[CONS][j].inc;
	alive[k]--;
	slots[k][s].pid = 0;
	victim_tag = k == CONS ? sh->cinc[victim.inc].tag : 0;
	int rc = spawn(k, s);		/* the replacement, into the same slot */
	victim_tag = 0;
	if (rc) {
		kill(victim.pid, SIGKILL);
		return rc;
	}
	d->t_kill = now_ns();
	d->kill_stamp = stamp_now();
	kill(victim.pid, SIGKILL);
	int st;
	while (waitpid(victim.pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		violation("%s incarnation %u: ended with status 0x%x before it was killed",
			  kind_name[k], victim.inc, st);
	if (k == PROD) {
		resolve_producer(d);
	} else {
		cinc_dead[victim.inc] = true;
		resolve_consumer(d);
	}
	unreaped[k] = (int)(d - deaths);
	kills[k]++;
	if (opt.verbose > 1)
		fprintf(stderr, NAME ": killed %s incarnation %u (pid %d) while %s (%s)\n",
			kind_name[k], victim.inc, victim.pid,
			k == PROD ? pstate_name[d->state] : cstate_name[d->state],
			k == PROD ? pop_name[d->op % N_PO] : cop_name[d->op % N_CO]);
	return 0;
}

/* Follow the deaths not yet recovered from.  Returns false on a timeout. */
static bool track_deaths(const struct shmring_info *info, uint64_t now)
{
	bool ok = true;
	for (int k = 0; k < 2; k++) {
		if (unreaped[k] < 0)
			continue;
		struct death *d = &deaths[unreaped[k]];
		unsigned census = k == PROD ? info->producers : info->consumers;
		if (census > (unsigned)alive[k])
			continue;	/* its entry is still there */
		/* Reaped: the sweep recovered its claims before it took the
		 * entry off the census, so the counter is final. */
		uint64_t after = k == PROD ? info->recovered_claims : info->lost_records;
		d->delta = (int64_t)(after - d->before);
		d->reaped = true;
		d->reap_ns = now - d->t_kill;
		unreaped[k] = -1;
		if (d->delta < d->lo || d->delta > d->hi)
			violation("%s incarnation %u killed while %s (%s): its reap added %lld to %s, "
				  "expected %lld..%lld", kind_name[k], d->inc,
				  k == PROD ? pstate_name[d->state] : cstate_name[d->state],
				  k == PROD ? pop_name[d->op % N_PO] : cop_name[d->op % N_CO],
				  (long long)d->delta,
				  k == PROD ? "recovered_claims" : "lost_records", (long long)d->lo,
				  (long long)d->hi);
	}
	while (first_open < ndeaths && deaths[first_open].done)
		first_open++;
	for (size_t i = first_open; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		if (d->done)
			continue;
		if (!d->flowed) {
			for (int j = 0; j < d->nwaiting;) {
				struct cinc *c = &sh->cinc[d->waiting[j]];
				if (cinc_dead[d->waiting[j]] ||
				    (int32_t)(LD(c->last_stamp) - d->kill_stamp) >= 0)
					d->waiting[j] = d->waiting[--d->nwaiting];
				else
					j++;
			}
			if (d->nwaiting == 0) {
				d->flowed = true;
				d->flow_ns = now - d->t_kill;
			}
		}
		if (d->reaped && d->flowed) {
			d->done = true;
		} else if (now - d->t_kill > (uint64_t)opt.max_recovery_ms * 1000000u) {
			violation("%s incarnation %u killed while %s: no recovery after %u ms "
				  "(reaped: %s; consumers still waiting for a newer record: %d)",
				  kind_name[d->kind], d->inc,
				  d->kind == PROD ? pstate_name[d->state] : cstate_name[d->state],
				  opt.max_recovery_ms, d->reaped ? "yes" : "no", d->nwaiting);
			d->done = true;
			ok = false;
		}
	}
	return ok;
}

/* An unexpected exit of a child during the run. */
static bool check_exits(bool expected)
{
	bool ok = true;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return ok;
		for (int k = 0; k < 2; k++)
			for (int s = 0; s < MAX_PROCS; s++) {
				if (slots[k][s].pid != pid)
					continue;
				slots[k][s].pid = 0;
				alive[k]--;
				if (k == CONS)
					cinc_dead[slots[k][s].inc] = true;
				if (!expected || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					violation("%s incarnation %u (pid %d) ended by itself: %s %d%s",
						  kind_name[k], slots[k][s].inc, pid,
						  WIFSIGNALED(st) ? "signal" : "exit status",
						  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
						  WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL
							  ? " (the OOM killer?)" : "");
					ok = false;
				}
			}
	}
}

/* ---- the parent: the end ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool is_maybe(uint64_t id)
{
	return nmaybe && bsearch(&id, maybe_ids, nmaybe, sizeof *maybe_ids, cmp_u64) != NULL;
}

struct verdict {
	uint64_t records, bytes;		/* delivered (recorded) */
	uint64_t put_records;			/* puts that returned success */
	uint64_t undelivered_min, undelivered_max;	/* committed, never delivered */
	uint64_t maybe_undelivered, maybe_delivered;
	uint64_t window_max, lost_in_calls, lost_holding;
	uint64_t recovered_sum, lost_sum;
	int64_t taken_unrecorded;		/* from the ring's join counter */
};

static void verify(const struct shmring_info *info, struct verdict *v)
{
	memset(v, 0, sizeof *v);
	if (nmaybe)
		qsort(maybe_ids, nmaybe, sizeof *maybe_ids, cmp_u64);
	uint64_t blocks = atomic_load(&sh->next_block);
	if (blocks > ids_cap / BLOCK_IDS)
		blocks = ids_cap / BLOCK_IDS;
	uint64_t never_put = 0, shown = 0, undelivered = 0;
	for (uint64_t b = 0; b < blocks; b++) {
		uint32_t own = LD(owner[b]);
		if (!own)
			continue;
		for (uint64_t id = b * BLOCK_IDS; id < (b + 1) * BLOCK_IDS; id++) {
			bool c = LD(committed[id / 64]) >> (id % 64) & 1;
			bool t = LD(tags[id]) != 0;
			if (!c && !t)
				continue;
			bool m = !c && is_maybe(id);
			v->put_records += c;
			if (t)
				v->records++;
			if (t && !c && !m) {
				never_put++;
				if (shown++ < 5)
					violation("record id %llu (producer incarnation %u) delivered, but "
						  "its put never returned success (aborted, failed, or "
						  "reserved only)", (unsigned long long)id, own - 1);
			}
			if (c && !t) {
				undelivered++;
				if (opt.verbose && undelivered <= 5)
					fprintf(stderr, NAME ": undelivered: id %llu (producer "
						"incarnation %u)\n", (unsigned long long)id, own - 1);
			}
			if (m)
				v->maybe_delivered += t;
		}
	}
	for (size_t i = 0; i < nmaybe; i++) {
		uint64_t id = maybe_ids[i];
		if (!(LD(tags[id]) || (LD(committed[id / 64]) >> (id % 64) & 1)))
			v->maybe_undelivered++;
	}
	if (never_put > 5)
		violation("%llu records delivered whose put never returned success",
			  (unsigned long long)never_put);

	/* tiny records, per length */
	uint64_t tmin = 0, tmax = 0;
	for (int l = 0; l < NTINY; l++) {
		uint64_t put = 0, got = 0;
		for (uint32_t i = 0; i < next_inc[PROD]; i++)
			put += LD(sh->pinc[i].tiny[l]);
		for (uint32_t i = 0; i < next_inc[CONS]; i++)
			got += LD(sh->cinc[i].tiny[l]);
		v->records += got;
		v->put_records += put;
		if (got > put + maybe_tiny[l])
			violation("%d-byte records: %llu delivered, only %llu put (+%llu in flight "
				  "at a producer's death)", l, (unsigned long long)got,
				  (unsigned long long)put, (unsigned long long)maybe_tiny[l]);
		if (put > got)
			tmin += put - got;
		if (put + maybe_tiny[l] > got)
			tmax += put + maybe_tiny[l] - got;
	}
	v->undelivered_min = undelivered + tmin;
	v->undelivered_max = undelivered + tmax;

	for (uint32_t i = 0; i < next_inc[CONS]; i++)
		v->bytes += LD(sh->cinc[i].bytes);

	/* the deaths: every lost record and recovered claim attributed */
	for (size_t i = 0; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		if (d->kind == PROD) {
			v->recovered_sum += (uint64_t)d->delta;
			continue;
		}
		v->lost_sum += (uint64_t)d->delta;
		if (d->state == C_CALL) {
			v->window_max += d->max_n;
			v->lost_in_calls += (uint64_t)d->delta;
		} else {
			v->lost_holding += (uint64_t)d->delta;
		}
	}
	if (v->recovered_sum != info->recovered_claims)
		violation("recovered_claims is %llu; the reaps of killed producers added %llu",
			  (unsigned long long)info->recovered_claims,
			  (unsigned long long)v->recovered_sum);
	if (v->lost_sum != info->lost_records)
		violation("lost_records is %llu; the reaps of killed consumers added %llu",
			  (unsigned long long)info->lost_records, (unsigned long long)v->lost_sum);
	/* Every committed record not delivered was taken by a consumer killed in
	 * a call, before it could record it: at most max_n per such death. */
	if (v->undelivered_min > v->window_max)
		violation("%llu records whose put succeeded were never delivered; consumers killed "
			  "inside a take could have taken at most %llu",
			  (unsigned long long)v->undelivered_min, (unsigned long long)v->window_max);
	/* Every record the ring counts as lost in such a call is one of them. */
	if (v->lost_in_calls > v->undelivered_max + v->maybe_undelivered)
		violation("the ring lost %llu records to consumers killed inside a take, but only "
			  "%llu records are missing", (unsigned long long)v->lost_in_calls,
			  (unsigned long long)(v->undelivered_max + v->maybe_undelivered));
	/* The ring's own ledger: every put adds a join task before it publishes,
	 * nobody calls task_done, and a reap forgives the tasks of records it
	 * loses (and of counted records it never saw published).  So, drained,
	 * unfinished + lost_records = records published = records taken, and
	 * T = records taken by consumers killed inside a call before they
	 * recorded them (the ring lost L_call of those; it released the rest). */
	int64_t T = (int64_t)(info->unfinished + info->lost_records) - (int64_t)v->records;
	v->taken_unrecorded = T;
	if (T < (int64_t)v->undelivered_min || T > (int64_t)(v->undelivered_max + v->maybe_undelivered) ||
	    T < (int64_t)v->lost_in_calls || T > (int64_t)v->window_max)
		violation("join ledger: unfinished %llu + lost_records %llu - delivered %llu = %lld "
			  "records taken and never recorded; expected %llu..%llu (missing records), "
			  "%llu..%llu (lost in a take .. most a killed take could hold)",
			  (unsigned long long)info->unfinished, (unsigned long long)info->lost_records,
			  (unsigned long long)v->records, (long long)T,
			  (unsigned long long)v->undelivered_min,
			  (unsigned long long)(v->undelivered_max + v->maybe_undelivered),
			  (unsigned long long)v->lost_in_calls, (unsigned long long)v->window_max);
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: " NAME " [--producers P] [--consumers C] [--seconds S]\n"
		"                    [--capacity BYTES] [--max-record BYTES] [--kill]\n"
		"                    [--kill-ms MIN:MAX] [--seed N] [--max-recovery-ms MS]\n"
		"                    [--stall-ms MS] [--drain-s S] [--hold PCT:MAX_US] [-v|-vv]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	opt = (struct opts){ .producers = 3, .consumers = 3, .seconds = 10,
			     .capacity = 64 * 1024, .kill_min_ms = 50, .kill_max_ms = 200,
			     .seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32,
			     .max_recovery_ms = 10000, .stall_ms = 20000, .drain_s = 60,
			     .hold_pct = 5, .hold_us = 1000 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-v") || !strcmp(a, "-vv")) {
			opt.verbose += a[2] ? 2 : 1;
			continue;
		}
		if (!strcmp(a, "--kill")) {
			opt.kill = 1;
			continue;
		}
		const char *v = i + 1 < argc ? argv[++i] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--producers"))
			opt.producers = atoi(v);
		else if (!strcmp(a, "--consumers"))
			opt.consumers = atoi(v);
		else if (!strcmp(a, "--seconds"))
			opt.seconds = atof(v);
		else if (!strcmp(a, "--capacity"))
			opt.capacity = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--max-record"))
			opt.max_record = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--kill-ms")) {
			if (sscanf(v, "%u:%u", &opt.kill_min_ms, &opt.kill_max_ms) != 2)
				usage();
		} else if (!strcmp(a, "--hold")) {
			if (sscanf(v, "%u:%u", &opt.hold_pct, &opt.hold_us) != 2)
				usage();
		} else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--max-recovery-ms"))
			opt.max_recovery_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--stall-ms"))
			opt.stall_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--drain-s"))
			opt.drain_s = (unsigned)atoi(v);
		else
			usage();
	}
	if (opt.producers < 1 || opt.producers > MAX_PROCS || opt.consumers < 1 ||
	    opt.consumers > MAX_PROCS || opt.seconds < 0 || opt.kill_min_ms > opt.kill_max_ms ||
	    opt.drain_s < 1)
		usage();
}

static void sleep_ms(double ms)
{
	struct timespec d = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

static int cmp_ns(const void *a, const void *b)
{
	return cmp_u64(a, b);
}

/* max and median (ms) of one per-death figure */
static void stats_ms(int which, double *mx, double *med, size_t *n)
{
	uint64_t *v = malloc((ndeaths + 1) * sizeof *v);
	size_t m = 0;
	if (!v)
		abort();
	for (size_t i = 0; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		if (!d->reaped || !d->flowed)
			continue;
		v[m++] = which == 0 ? (d->reap_ns > d->flow_ns ? d->reap_ns : d->flow_ns)
				    : which == 1 ? d->reap_ns : d->flow_ns;
	}
	if (m)
		qsort(v, m, sizeof *v, cmp_ns);
	*mx = m ? (double)v[m - 1] / 1e6 : 0;
	*med = m ? (double)v[m / 2] / 1e6 : 0;
	*n = m;
	free(v);
}

/* --redeliver: the at-least-once stress (SHMRING_REDELIVER, peeking
 * consumers SIGKILLed) is its own program, stress_redeliver.c, next to this
 * one; run it with the same arguments. */
static int run_redeliver(char **argv)
{
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 2;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	snprintf(path, sizeof path, "%.*s/stress_redeliver", slash ? (int)(slash - self) : 1,
	         slash ? self : ".");
	argv[0] = path;
	execv(path, argv);
	perror(NAME ": exec stress_redeliver");
	return 2;
}

int main(int argc, char **argv)
{
	struct shmring_config cfg = { 0 };
	struct shmring_info info;
	int rc;

	for (int i = 1; i < argc; i++) /* redeliver hook */
		if (!strcmp(argv[i], "--redeliver"))
			return run_redeliver(argv);
	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	parent_pid = getpid();
	rng_parent = mix(opt.seed ^ 0x5eed) | 1;
	cfg.capacity = opt.capacity;
	cfg.max_record = opt.max_record;
	rc = shmring_create(&ring, NULL, &cfg);
	if (rc) {
		printf(NAME ": FAIL shmring_create: %s\n", shmring_strerror(rc));
		return 1;
	}
	shmring_info(ring, &info);
	max_record = info.max_record;
	if (max_record < HDR) {
		printf(NAME ": FAIL max_record %zu: at least %d needed\n", max_record, HDR);
		return 1;
	}

	/* Accounting.  Ids: enough for ~4M records a second (virtual only). */
	double want = (opt.seconds + 60) * 4e6;
	ids_cap = want > (double)(UINT64_C(1) << 34) ? UINT64_C(1) << 34 : (uint64_t)want;
	ids_cap = (ids_cap / BLOCK_IDS + 1) * BLOCK_IDS;
	sh = map_shared(sizeof *sh);
	owner = map_shared(ids_cap / BLOCK_IDS * sizeof *owner);
	committed = map_shared(ids_cap / 8);
	tags = map_shared(ids_cap);
	sh->t0_ns = now_ns();

	signal(SIGALRM, on_alarm);
	alarm((unsigned)opt.seconds + opt.max_recovery_ms / 1000 + 3 * opt.drain_s + 120);
	if (opt.verbose)
		fprintf(stderr, NAME ": %d producers, %d consumers, capacity %zu, max_record %zu, "
			"%s, seed %llu\n", opt.producers, opt.consumers, info.capacity, max_record,
			opt.kill ? "kill mode" : "no kills", (unsigned long long)opt.seed);

	/* Declare, fork, leave: every child counted before fork() returns. */
	for (int s = 0; s < opt.producers; s++)
		if (spawn(PROD, s))
			goto fatal;
	for (int s = 0; s < opt.consumers; s++)
		if (spawn(CONS, s))
			goto fatal;

	/* The run: watch, and kill. */
	uint64_t t_start = now_ns(), t_end = t_start + (uint64_t)(opt.seconds * 1e9);
	uint64_t last_deliveries = 0, last_change = t_start, gap_max = 0;
	uint64_t next_kill = t_start + (uint64_t)opt.kill_min_ms * 1000000u;
	bool ok = true;
	for (;;) {
		uint64_t now = now_ns();
		if (!check_exits(false))
			ok = false;
		shmring_info(ring, &info);
		now = now_ns();
		if (!track_deaths(&info, now))
			ok = false;
		if (info.producers < (unsigned)alive[PROD] || info.consumers < (unsigned)alive[CONS])
			violation("census: %u producers and %u consumers attached, %d and %d alive",
				  info.producers, info.consumers, alive[PROD], alive[CONS]);
		uint64_t dl = atomic_load(&sh->deliveries);
		if (dl != last_deliveries) {
			last_deliveries = dl;
			last_change = now;
		} else if (now - last_change > gap_max) {
			gap_max = now - last_change;
			if (gap_max > (uint64_t)opt.stall_ms * 1000000u) {
				violation("stall: no record delivered for %u ms", opt.stall_ms);
				ok = false;
			}
		}
		if (!ok || now >= t_end)
			break;
		if (opt.kill && now >= next_kill) {
			enum kind k = rnd(&rng_parent) % 2 ? PROD : CONS;
			if (unreaped[k] >= 0)	/* one unreaped death per kind: exact deltas */
				k = (enum kind)!k;
			if (unreaped[k] < 0) {
				if (kill_one(k))
					goto fatal;
				next_kill = now_ns() + (uint64_t)(opt.kill_min_ms +
					rnd(&rng_parent) % (opt.kill_max_ms - opt.kill_min_ms + 1)) * 1000000u;
			}
		}
		sleep_ms(1);
	}

	/* Let the last kills recover (each bounded by --max-recovery-ms). */
	while (ok && first_open < ndeaths) {
		if (!check_exits(false))
			ok = false;
		shmring_info(ring, &info);
		if (!track_deaths(&info, now_ns()))
			ok = false;
		sleep_ms(1);
	}

	/* The end: producers stop and detach (end of stream once the last has
	 * gone), consumers drain to -EPIPE and detach. */
	atomic_store(&sh->producers_at_stop, (uint32_t)alive[PROD]);
	atomic_store(&sh->stop, 1);
	const char *phase = "producers to stop";
	for (uint64_t t = now_ns(); alive[PROD] > 0 || alive[CONS] > 0;) {
		if (!check_exits(true))
			ok = false;
		if (alive[PROD] == 0 && phase[0] == 'p') {
			phase = "consumers to drain the ring";
			t = now_ns();
		}
		if (now_ns() - t > (uint64_t)opt.drain_s * 1000000000u) {
			shmring_info(ring, &info);
			violation("waited %u s for %s: %d producers and %d consumers still running, "
				  "%zu records (%zu bytes) in the ring", opt.drain_s, phase,
				  alive[PROD], alive[CONS], info.records, info.bytes);
			kill_all();
			ok = false;
			break;
		}
		sleep_ms(1);
	}
	double secs = (double)(now_ns() - t_start) / 1e9;

	shmring_info(ring, &info);
	if (ok && (info.records || info.bytes || !info.eof || info.producers || info.consumers))
		violation("after the drain: records %zu bytes %zu eof %d producers %u consumers %u",
			  info.records, info.bytes, info.eof, info.producers, info.consumers);
	rc = shmring_close(ring);
	if (rc)
		violation("close: %d", rc);
	shmring_info(ring, &info);
	if (!info.closed)
		violation("closed ring says closed=0");

	struct verdict v;
	verify(&info, &v);

	/* Report. */
	uint64_t pc[N_PO] = { 0 }, cc[N_CO] = { 0 }, p_eagain = 0, p_to = 0, c_eagain = 0,
		 c_to = 0, c_emsg = 0, shorts = 0;
	for (uint32_t i = 0; i < next_inc[PROD]; i++) {
		for (int o = 0; o < N_PO; o++)
			pc[o] += LD(sh->pinc[i].calls[o]);
		p_eagain += LD(sh->pinc[i].eagain);
		p_to += LD(sh->pinc[i].etimedout);
		shorts += LD(sh->pinc[i].short_commits);
	}
	for (uint32_t i = 0; i < next_inc[CONS]; i++) {
		for (int o = 0; o < N_CO; o++)
			cc[o] += LD(sh->cinc[i].calls[o]);
		c_eagain += LD(sh->cinc[i].eagain);
		c_to += LD(sh->cinc[i].etimedout);
		c_emsg += LD(sh->cinc[i].emsgsize);
	}
	double rmax, rmed, pmax, pmed, fmax, fmed;
	size_t nrec;
	stats_ms(0, &rmax, &rmed, &nrec);
	stats_ms(1, &pmax, &pmed, &nrec);
	stats_ms(2, &fmax, &fmed, &nrec);
	size_t over100 = 0;
	for (size_t i = 0; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		uint64_t r = d->reap_ns > d->flow_ns ? d->reap_ns : d->flow_ns;
		over100 += r > 100000000u;
		if (opt.verbose && r > 100000000u)
			fprintf(stderr, NAME ": slow recovery: kill #%zu at %.3f s, %s incarnation %u "
				"while %s (%s): reaped after %.1f ms, ring flowed after %.1f ms\n", i,
				(double)(d->t_kill - t_start) / 1e9, kind_name[d->kind], d->inc,
				d->kind == PROD ? pstate_name[d->state] : cstate_name[d->state],
				d->kind == PROD ? pop_name[d->op % N_PO] : cop_name[d->op % N_CO],
				(double)d->reap_ns / 1e6, (double)d->flow_ns / 1e6);
	}
	printf(NAME ": calls put %llu putv %llu put_many %llu commit %llu (shorter %llu) "
	       "abort %llu oversize %llu | get %llu get(small) %llu get_many %llu peek %llu "
	       "next_len %llu | eagain %llu/%llu etimedout %llu/%llu emsgsize(get) %llu\n",
	       (unsigned long long)pc[PO_PUT], (unsigned long long)pc[PO_PUTV],
	       (unsigned long long)pc[PO_PUT_MANY], (unsigned long long)pc[PO_COMMIT],
	       (unsigned long long)shorts, (unsigned long long)pc[PO_ABORT],
	       (unsigned long long)pc[PO_OVERSIZE], (unsigned long long)cc[CO_GET],
	       (unsigned long long)cc[CO_GET_SMALL], (unsigned long long)cc[CO_GET_MANY],
	       (unsigned long long)cc[CO_PEEK], (unsigned long long)cc[CO_NEXT_LEN],
	       (unsigned long long)p_eagain, (unsigned long long)c_eagain,
	       (unsigned long long)p_to, (unsigned long long)c_to, (unsigned long long)c_emsg);
	printf(NAME ": accounting put_ok=%llu delivered=%llu undelivered=%llu..%llu "
	       "inflight_at_death(delivered=%llu undelivered=%llu) lost_in_take=%llu "
	       "lost_holding_peek=%llu taken_unrecorded=%lld take_window_bound=%llu\n",
	       (unsigned long long)v.put_records, (unsigned long long)v.records,
	       (unsigned long long)v.undelivered_min, (unsigned long long)v.undelivered_max,
	       (unsigned long long)v.maybe_delivered, (unsigned long long)v.maybe_undelivered,
	       (unsigned long long)v.lost_in_calls, (unsigned long long)v.lost_holding,
	       (long long)v.taken_unrecorded, (unsigned long long)v.window_max);
	if (ndeaths)
		printf(NAME ": recovery_ms max %.1f median %.1f (reap max %.1f median %.1f; "
		       "flow max %.1f median %.1f) over %zu kills, %zu over 100 ms; "
		       "longest delivery gap %.1f ms\n", rmax, rmed, pmax, pmed, fmax, fmed, nrec,
		       over100, (double)gap_max / 1e6);
	printf(NAME ": info capacity=%zu max_record=%zu records=%zu bytes=%zu used=%zu closed=%d "
	       "eof=%d producers=%u consumers=%u unfinished=%llu recovered_claims=%llu "
	       "lost_records=%llu lost_tasks=%llu futex_waits=%llu futex_wakes=%llu\n",
	       info.capacity, info.max_record, info.records, info.bytes, info.used, info.closed,
	       info.eof, info.producers, info.consumers, (unsigned long long)info.unfinished,
	       (unsigned long long)info.recovered_claims, (unsigned long long)info.lost_records,
	       (unsigned long long)info.lost_tasks, (unsigned long long)info.futex_waits,
	       (unsigned long long)info.futex_wakes);
	if (atomic_load(&sh->ids_exhausted))
		printf(NAME ": note: the id space (%llu ids) ran out; producers stopped early\n",
		       (unsigned long long)ids_cap);

	uint64_t bad = atomic_load(&sh->violations);
	if (bad)
		printf(NAME ": FAIL %s (%llu violations in all, the first 30 on stderr) "
		       "records=%llu kills=%llu seconds=%.1f seed=%llu\n", sh->first_violation,
		       (unsigned long long)bad, (unsigned long long)v.records,
		       (unsigned long long)(kills[0] + kills[1]), secs, (unsigned long long)opt.seed);
	else
		printf(NAME ": OK records=%llu bytes=%llu kills=%llu (producers=%llu consumers=%llu) "
		       "recovered_claims=%llu lost_records=%llu recovery_ms_max=%.1f seconds=%.1f\n",
		       (unsigned long long)v.records, (unsigned long long)v.bytes,
		       (unsigned long long)(kills[0] + kills[1]), (unsigned long long)kills[0],
		       (unsigned long long)kills[1], (unsigned long long)info.recovered_claims,
		       (unsigned long long)info.lost_records, rmax, secs);
	shmring_detach(ring);
	free(deaths);
	free(maybe_ids);
	return bad ? 1 : 0;

fatal:
	kill_all();
	printf(NAME ": FAIL could not start a process (see above) seed=%llu\n",
	       (unsigned long long)opt.seed);
	return 1;
}
