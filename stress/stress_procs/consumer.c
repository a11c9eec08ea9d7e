/* consumer.c - stress_procs: a consumer child: every get API at random, each delivery recorded (stress_procs.h). */
#include "../stress_procs.h"

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
/* next_len: a hint only (and it takes skip records). */
static int take_next_len(struct consumer *c)
{
	struct cinc *me = c->me;
	ssize_t n;

	begin_call(c, CO_NEXT_LEN, 0);
	n = shmring_next_len(ring);
	to_idle(c);
	if (n > (ssize_t)max_record || (n < 0 && n != -EAGAIN && n != -EPIPE) ||
	    (n == -EPIPE && !epipe_ok()))
		violation("next_len: %zd", n);
	INC(me->calls[CO_NEXT_LEN], 1);
	return 0;
}

/* get; (small) with a small buffer sometimes. */
static int take_get(struct consumer *c, bool small, int64_t to)
{
	struct cinc *me = c->me;
	uint64_t *rng = &c->rng;
	uint64_t keys[1];
	uint32_t lens[1], stamps[1];
	ssize_t n;

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

/* get_many. */
static int take_many(struct consumer *c, int64_t to)
{
	struct cinc *me = c->me;
	uint64_t *rng = &c->rng;
	uint64_t keys[MAX_TAKE];
	uint32_t lens[MAX_TAKE], stamps[MAX_TAKE];
	ssize_t n;

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

/* peek, check in place, record, release. */
static int take_peek(struct consumer *c, int64_t to)
{
	struct cinc *me = c->me;
	uint64_t *rng = &c->rng;
	uint64_t keys[1];
	uint32_t lens[1], stamps[1];
	ssize_t n;

	struct shmring_span sp;
	begin_call(c, CO_PEEK, 1);
	n = shmring_peek(ring, &sp, to);
	if (n < 0)
		return get_error(c, n, to, "peek");
	if ((size_t)n != sp.len || span_misplaced(sp.data, max_record))
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

/* One call, picked at random. */
static int consume_one(struct consumer *c)
{
	int64_t to = rand_timeout(&c->rng);
	uint64_t op = rnd(&c->rng) % 100;

	if (op < 5)
		return take_next_len(c);
	if (op < 40)
		return take_get(c, op < 12, to);
	if (op < 70)
		return take_many(c, to);
	return take_peek(c, to);
}

void consumer_main(uint32_t inc)
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
