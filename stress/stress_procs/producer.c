/* producer.c - stress_procs: a producer child: every put API at random, each record accounted (stress_procs.h). */
#include "../stress_procs.h"

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
/* A record too large: refused by put and reserve, nothing put. */
static void put_oversize(struct producer *p, int64_t to)
{
	struct pinc *me = p->me;
	struct shmring_span sp;
	int rc = shmring_put(ring, p->buf, max_record + 1, to);

	if (rc != -EMSGSIZE)
		violation("put of max_record + 1 bytes: %d, not -EMSGSIZE", rc);
	rc = shmring_reserve(ring, max_record + 1, &sp, to);
	if (rc != -EMSGSIZE)
		violation("reserve of max_record + 1 bytes: %d, not -EMSGSIZE", rc);
	INC(me->calls[PO_OVERSIZE], 1);
}

/* put or (vec) putv: one record. */
static void put_one(struct producer *p, bool vec, int64_t to)
{
	struct pinc *me = p->me;
	uint64_t *rng = &p->rng;
	uint64_t keys[1];
	size_t lens[1];
	int rc;

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
}

/* put_many: ids of records not put are used again. */
static void put_batch(struct producer *p, int64_t to)
{
	struct pinc *me = p->me;
	uint64_t *rng = &p->rng;
	uint64_t keys[MAX_BATCH];
	size_t lens[MAX_BATCH];
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
}

/* reserve, then commit (maybe shorter) or (abort_it) abort. */
static void put_reserved(struct producer *p, bool abort_it, int64_t to)
{
	struct pinc *me = p->me;
	uint64_t *rng = &p->rng;
	uint64_t keys[1];
	size_t lens[1];
	struct shmring_span sp;
	int rc;

	size_t len = rand_len(rng);
	size_t fin = abort_it || rnd(rng) % 2 ? len : rnd(rng) % (len + 1);
	lens[0] = fin;
	keys[0] = key_for(fin, p->pool[0]);
	begin_op(p, PO_RESERVE, keys, lens, 1);
	rc = shmring_reserve(ring, len, &sp, to);
	if (rc) {
		put_error(p, rc, to, "reserve");
		return;
	}
	set_state(me, P_RESERVED, PO_RESERVE);
	if (sp.len < len || span_misplaced(sp.data, max_record))
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
		return;
	}
	set_state(me, P_CALL, PO_COMMIT);
	rc = shmring_commit(ring, &sp, fin);
	if (rc) {
		violation("commit(%zu of %zu): %d", fin, len, rc);
		atomic_store_explicit(&me->state, P_IDLE, memory_order_release);
		return;
	}
	INC(me->calls[PO_COMMIT], 1);
	if (fin < len)
		INC(me->short_commits, 1);
	record_put(p, 1);
}

/* One operation, picked at random: false when the ids have run out. */
static bool produce_one(struct producer *p)
{
	int64_t to = rand_timeout(&p->rng);
	uint64_t op = rnd(&p->rng) % 100;

	if (!ids_fill(p, MAX_BATCH))
		return false;
	if (op < 1)
		put_oversize(p, to);
	else if (op < 41)
		put_one(p, op >= 21, to);
	else if (op < 61)
		put_batch(p, to);
	else
		put_reserved(p, op >= 88, to);
	return true;
}

void producer_main(uint32_t inc)
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
