/*
 * test_hostile.c - a peer with the mapping writes nonsense into it.
 *
 * Every test maps the ring's file itself (MAP_SHARED on shmring_fd, as any
 * process holding the fd could), scribbles on the shared words using the
 * layout of ring/layout.h, and checks that the library answers with an
 * error (-EBADMSG for a corrupt record, -EAGAIN / -ETIMEDOUT within the
 * timeout for indices that say "wait", -EPIPE, -ERANGE...) and never
 * crashes, hangs or steps outside the mapping (the ASan variant of the
 * suite runs these too).  Several are the deterministic form of an input
 * the fuzzers found (fuzz/, tests/fuzz-corpus/<target>/regress-*).
 * docs/threat-model.md says what a hostile peer can and cannot do.
 */
#include "common.h"

#include <stdatomic.h>
#include <stddef.h>
#include <sys/ptrace.h>

#include "attach.h" /* shmring__recover_entry: two sweeps interleaved by hand */
#include "layout.h"
#include "slot.h"
#include "shmring_inspect.h"

TestSuite(hostile, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* A call "returns promptly" within this (waits in these tests are <= 20 ms). */
#define PROMPT_NS (2 * T_SEC)

struct scrib {
	struct shmring *r;
	unsigned char *base; /* our own view of the whole file */
	size_t size;
	struct ring_header *hdr;
	uint64_t nslots;
	size_t capacity, max_record;
};

static struct scrib scrib_ring(size_t capacity, size_t max_record)
{
	struct scrib s = { .r = t_ring(capacity, max_record) };
	struct shmring_info info = t_info(s.r);
	s.capacity = info.capacity;
	s.max_record = info.max_record;
	s.nslots = s.capacity / SHMRING_SLOT_SIZE;
	struct stat st;
	cr_assert_eq(fstat(shmring_fd(s.r), &st), 0);
	s.size = (size_t)st.st_size;
	s.base = mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_SHARED, shmring_fd(s.r), 0);
	cr_assert_neq(s.base, MAP_FAILED, "mmap of the ring's fd: %s", strerror(errno));
	s.hdr = (struct ring_header *)s.base;
	cr_assert_eq(s.hdr->magic, RING_MAGIC);
	cr_assert_eq(s.hdr->capacity, s.capacity);
	return s;
}

static void scrib_done(struct scrib *s)
{
	munmap(s->base, s->size);
	shmring_detach(s->r);
}

/* The meta entry of position pos: neighbouring slots' entries are spread a
 * quarter of the array apart (docs/design.md, section 2). */
static struct slot_meta *meta(const struct scrib *s, uint64_t pos)
{
	struct slot_meta *m = (struct slot_meta *)(s->base + s->hdr->meta_offset);
	uint64_t i = pos & (s->nslots - 1);
	unsigned qs = (unsigned)__builtin_ctzll(s->nslots) - 2;
	return &m[((i & 3) << qs) | (i >> 2)];
}

static uint64_t ld(_Atomic uint64_t *p)
{
	return atomic_load(p);
}

/* Put a record and check that meta() finds it where the layout says. */
static uint64_t put_at(struct scrib *s, size_t len)
{
	static unsigned char b[1 << 16];
	uint64_t pos = ld(&s->hdr->prod_head) & RING_POS_MASK;
	t_fill(b, len, pos);
	int rc = shmring_put(s->r, b, len, 0);
	cr_assert_eq(rc, 0, "put(%zu) = %d", len, rc);
	struct slot_meta *m = meta(s, pos);
	cr_assert_eq(atomic_load(&m->seq), SLOT_SEQ(pos, SLOT_COMMITTED),
	             "meta of position %llu not where layout.h and design.md say",
	             (unsigned long long)pos);
	cr_assert_eq(atomic_load(&m->len), len);
	return pos;
}

/* Every way of taking the next record gives want (and takes nothing). */
static void expect_take(struct scrib *s, long want, const char *what)
{
	static unsigned char b[1 << 16];
	struct iovec recs[8];
	struct shmring_span sp;
	long rc;
	int64_t t0 = t_now_ns();
	rc = shmring_get(s->r, b, sizeof b, 0);
	cr_assert_eq(rc, want, "%s: get = %ld, expected %ld", what, rc, want);
	rc = shmring_get(s->r, b, sizeof b, 5 * T_MS);
	cr_assert(rc == want || (want == -EAGAIN && rc == -ETIMEDOUT),
	          "%s: get (5 ms) = %ld, expected %ld", what, rc, want);
	rc = shmring_peek(s->r, &sp, 0);
	cr_assert_eq(rc, want, "%s: peek = %ld, expected %ld", what, rc, want);
	rc = shmring_get_many(s->r, b, sizeof b, recs, 8, 0);
	cr_assert_eq(rc, want, "%s: get_many = %ld, expected %ld", what, rc, want);
	rc = shmring_next_len(s->r);
	cr_assert_eq(rc, want, "%s: next_len = %ld, expected %ld", what, rc, want);
	struct shmring_info info = t_info(s->r);
	cr_assert_leq(info.records, s->nslots, "%s: info.records %zu", what, info.records);
	cr_assert_leq(info.used, s->capacity, "%s: info.used %zu", what, info.used);
	cr_assert_lt(t_now_ns() - t0, PROMPT_NS, "%s: the calls took too long", what);
}

/* A dead process's pid: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		_exit(0);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return pid;
}

/* Make the next wait that ends without a record run a liveness sweep:
 * sweeps are rate-limited by reap_ns (once per 50 ms per ring). */
static void sweep_now(struct scrib *s)
{
	static unsigned char b[64];
	atomic_store(&s->hdr->reap_ns, 0);
	long rc = shmring_get(s->r, b, sizeof b, 1 * T_MS);
	cr_assert(rc == -ETIMEDOUT || rc == -EAGAIN || rc >= 0 || rc == -EBADMSG,
	          "get to trigger a sweep = %ld", rc);
}

/* ------------------------------------------------------------ records */

/* A record's length rewritten beyond max_record: -EBADMSG from every way of
 * taking it, nothing taken; the true length back, and it is delivered. */
Test(hostile, record_len_beyond_max_record_is_ebadmsg)
{
	struct scrib s = scrib_ring(4096, 1000);
	uint64_t pos = put_at(&s, 8);
	struct slot_meta *m = meta(&s, pos);
	static const uint32_t lens[] = { 1001, 4096, 4097, 0x7fffffff, UINT32_MAX };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		atomic_store(&m->len, lens[i]);
		char what[64];
		snprintf(what, sizeof what, "len %u, max_record 1000", lens[i]);
		expect_take(&s, -EBADMSG, what);
	}
	atomic_store(&m->len, 8);
	unsigned char b[64];
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 8);
	cr_assert(t_check(b, 8, pos));
	scrib_done(&s);
}

/* A meta entry forged to say COMMITTED at cons_head, on an empty ring, with
 * a huge length; and a skip record longer than the ring. */
Test(hostile, forged_committed_seq_with_huge_len_is_ebadmsg)
{
	struct scrib s = scrib_ring(8192, 0);
	put_at(&s, 100);
	unsigned char b[256];
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 100);
	uint64_t t = ld(&s.hdr->cons_head);
	struct slot_meta *m = meta(&s, t);
	atomic_store(&m->len, UINT32_MAX);
	atomic_store(&m->flags, 0);
	atomic_store(&m->seq, SLOT_SEQ(t, SLOT_COMMITTED));
	expect_take(&s, -EBADMSG, "forged COMMITTED, len 4 GiB");
	atomic_store(&m->len, (uint32_t)s.capacity + 64);
	atomic_store(&m->flags, SLOT_F_SKIP);
	expect_take(&s, -EBADMSG, "forged skip record longer than the ring");
	/* a skip record of exactly the ring is legal: taken, nothing delivered */
	atomic_store(&m->len, (uint32_t)s.capacity);
	expect_take(&s, -EAGAIN, "skip record of the whole ring");
	scrib_done(&s);
}

/* ------------------------------------------------------------ indices */

static int put_with_free_tail_ahead(void *arg)
{
	struct scrib *s = arg;
	/* fill the ring, so that the next put must reclaim (and so read
	 * free_tail) */
	static unsigned char b[512];
	int n = 0;
	while (shmring_put(s->r, b, sizeof b, 0) == 0)
		n++;
	if (n == 0)
		return 10;
	uint64_t h = ld(&s->hdr->prod_head);
	atomic_store(&s->hdr->free_tail, h + 100);
	int rc = shmring_put(s->r, b, 1, 0);
	if (rc != -EBADMSG)
		return 11;
	if (shmring_put(s->r, b, 1, 5 * T_MS) != -EBADMSG)
		return 12;
	struct shmring_span sp;
	if (shmring_reserve(s->r, 10, &sp, 5 * T_MS) != -EBADMSG)
		return 13;
	struct iovec recs[2] = { { b, 1 }, { b, 2 } };
	if (shmring_put_many(s->r, recs, 2, 0) != -EBADMSG)
		return 14;
	return T_CHILD_OK;
}

/* free_tail ahead of prod_head (free_tail never passes prod_head): a put
 * spun forever in try_slots_claim before (fuzz_scribble, regress-free-tail-ahead).
 * Now -EBADMSG.  In a child, so that a hang is a failure with a message. */
Test(hostile, free_tail_ahead_of_prod_head_is_ebadmsg_not_a_hang)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER), 0);
	pid_t pid = t_fork(put_with_free_tail_ahead, &s);
	t_expect_exit(pid, T_CHILD_OK, 10 * T_SEC);
	scrib_done(&s);
}

/* prod_head laps ahead of free_tail: puts wait (-EAGAIN / -ETIMEDOUT within
 * the timeout), gets see nothing committed there. */
Test(hostile, prod_head_far_ahead_waits_within_timeouts)
{
	struct scrib s = scrib_ring(4096, 0);
	put_at(&s, 10);
	unsigned char b[64];
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 10);
	static const uint64_t ahead[] = { 65, 1000, UINT64_C(1) << 40, RING_POS_MASK - 5 };
	for (size_t i = 0; i < sizeof ahead / sizeof ahead[0]; i++) {
		atomic_store(&s.hdr->prod_head, ld(&s.hdr->free_tail) + ahead[i]);
		int64_t t0 = t_now_ns();
		int rc = shmring_put(s.r, b, 1, 0);
		cr_assert_eq(rc, -EAGAIN, "put with prod_head +%llu = %d",
		             (unsigned long long)ahead[i], rc);
		rc = shmring_put(s.r, b, 1, 10 * T_MS);
		cr_assert_eq(rc, -ETIMEDOUT, "put (10 ms) = %d", rc);
		cr_assert_lt(t_now_ns() - t0, PROMPT_NS);
		expect_take(&s, -EAGAIN, "prod_head far ahead");
	}
	scrib_done(&s);
}

/* cons_head past prod_head, far past, behind free_tail: gets find nothing
 * committed and wait within their timeouts; puts go on or wait. */
Test(hostile, cons_head_absurd_waits_within_timeouts)
{
	struct scrib s = scrib_ring(4096, 0);
	for (int i = 0; i < 3; i++)
		put_at(&s, 100);
	uint64_t t = ld(&s.hdr->cons_head), h = ld(&s.hdr->prod_head);
	const uint64_t values[] = { h + 1, h + 1000, UINT64_C(1) << 61, UINT64_MAX, t + 1 };
	unsigned char b[128] = { 0 };
	int puts = 0;
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		atomic_store(&s.hdr->cons_head, values[i]);
		expect_take(&s, -EAGAIN, "cons_head absurd");
		int64_t t0 = t_now_ns();
		int rc = shmring_put(s.r, b, 8, 5 * T_MS);
		cr_assert(rc == 0 || rc == -ETIMEDOUT, "put = %d", rc);
		puts += rc == 0;
		cr_assert_lt(t_now_ns() - t0, PROMPT_NS);
	}
	/* the true value back: everything is still there, in order */
	atomic_store(&s.hdr->cons_head, t);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 100);
	for (int i = 0; i < puts; i++)
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 8);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), -EAGAIN);
	scrib_done(&s);
}

/* ------------------------------------------------------------ shared counters */

/* A census claiming 65535 producers and consumers, or a consumer that
 * existed and is gone: no crash, documented answers. */
Test(hostile, census_huge_counts)
{
	struct scrib s = scrib_ring(4096, 0);
	put_at(&s, 5);
	put_at(&s, 6);
	unsigned char b[16];
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 5); /* both roles taken */
	atomic_store(&s.hdr->census, UINT64_MAX);
	struct shmring_info info = t_info(s.r);
	cr_assert_eq(info.producers, 0xffff);
	cr_assert_eq(info.consumers, 0xffff);
	cr_assert_eq(info.eof, 0);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 6);
	cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
	/* with the arrival generations moved on: a consumer (producer) came
	 * since this handle was made, and went */
	atomic_store(&s.hdr->census, CENSUS_EVER_CONSUMER | (UINT64_C(1) << CENSUS_CGEN_SHIFT));
	cr_assert_eq(shmring_put(s.r, b, 1, 0), -EPIPE, "no consumer left: broken pipe");
	atomic_store(&s.hdr->census, CENSUS_EVER_PRODUCER | (UINT64_C(1) << CENSUS_PGEN_SHIFT));
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 5 * T_MS), -EPIPE, "no producer left, empty");
	cr_assert_eq(shmring_next_len(s.r), -EPIPE);
	scrib_done(&s);
}

/* The join counter (tasks finished) at INT64_MIN, or past the puts: task_done
 * is -ERANGE (its check computed INT64_MIN - 1 before, signed overflow:
 * regress-join-count-min), join waits
 * within its timeout, info clamps it. */
Test(hostile, join_count_negative_is_erange)
{
	struct scrib s = scrib_ring(4096, 0);
	static const int64_t counts[] = { INT64_MIN, INT64_MIN + 1, -1 };
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		atomic_store((_Atomic int64_t *)&s.hdr->join.count, counts[i]);
		cr_assert_eq(shmring_task_done(s.r), -ERANGE);
		cr_assert_eq(shmring_join(s.r, 0), -EAGAIN);
		cr_assert_eq(shmring_join(s.r, 5 * T_MS), -ETIMEDOUT);
		cr_assert_eq(shmring_unfinished(s.r), 0);
		cr_assert_eq(t_info(s.r).unfinished, 0);
	}
	scrib_done(&s);
}

/* An eventcount claiming 2^32 - 1 sleepers (registering carries into the
 * epoch): waits still end at their deadline. */
Test(hostile, eventcount_waiters_max)
{
	struct scrib s = scrib_ring(4096, 0);
	atomic_store(&s.hdr->not_empty.word, UINT32_MAX);
	atomic_store(&s.hdr->not_full.word, UINT64_MAX);
	unsigned char b[16];
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 20 * T_MS), -ETIMEDOUT);
	cr_assert_lt(t_now_ns() - t0, PROMPT_NS);
	put_at(&s, 3);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 20 * T_MS), 3);
	scrib_done(&s);
}

/* ------------------------------------------------------------ attachment table */

/* Wild op records in the entry of a dead process: the sweep that reaps it
 * stays inside the ring (positions masked, walks bounded by the slot count),
 * does not loop, and leaves a ring that still works. */
Test(hostile, wild_claims_of_dead_entry_are_swept_safely)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	for (int i = 0; i < 5; i++)
		put_at(&s, (size_t)i * 90);
	unsigned char b[1024];
	for (int i = 0; i < 5; i++)
		cr_assert_geq(shmring_get(s.r, b, sizeof b, 0), 0);
	uint64_t h = ld(&s.hdr->prod_head), t = ld(&s.hdr->cons_head);
	cr_assert_eq(h, t);

	const int dead = 40;
	struct attach_entry *e = layout_attach(s.hdr, dead);
	struct op_rec *c = layout_op_rec(s.hdr, dead, 0);
	const uint64_t pos[] = {
		0, h, h - 1, h - 3, t, h + 1, h - s.nslots, h - s.nslots - 1, h - 2 * s.nslots,
		UINT64_C(1) << 61, (UINT64_MAX >> 2) - 1, h - 100,
	};
	const uint64_t ext[] = {
		OPREC_EXTENT(0, 0), OPREC_EXTENT(1, 1), OPREC_EXTENT(3, UINT32_MAX),
		OPREC_EXTENT(s.nslots, 5), OPREC_EXTENT(s.nslots + 1, 0), OPREC_EXTENT(UINT32_MAX, 1),
		UINT64_MAX, OPREC_EXTENT(2 * s.nslots, 2),
	};
	int k = 0;
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
		for (unsigned kind = OPREC_PRODUCE; kind <= OPREC_CONSUME; kind++, k++) {
			atomic_store(&c[k % OPREC_PER_ENTRY].word, OPREC_WORD(pos[i], kind));
			atomic_store(&c[k % OPREC_PER_ENTRY].extent, ext[k % (sizeof ext / sizeof ext[0])]);
		}
	atomic_store(&e->op_busy, UINT64_MAX);
	atomic_store(&e->roles, SHMRING_PRODUCER | SHMRING_CONSUMER);
	atomic_fetch_add(&s.hdr->census, CENSUS_PRODUCER | CENSUS_CONSUMER); /* its roles */
	atomic_store(&e->got, UINT64_MAX);
	atomic_store(&e->done, 0);
	atomic_fetch_or(&s.hdr->census, CENSUS_JOIN);
	atomic_store(&e->id, (uint64_t)dead_pid()); /* start time 0: never ours */

	int64_t t0 = t_now_ns();
	sweep_now(&s);
	cr_assert_lt(t_now_ns() - t0, PROMPT_NS, "the sweep took too long");
	cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
	cr_assert_eq(atomic_load(&e->op_busy), 0);

	/* the ring still works: records in and out, intact */
	for (int i = 0; i < 20; i++) {
		size_t len = (size_t)(i * 77) % 900;
		t_fill(b, len, (uint64_t)i);
		cr_assert_eq(shmring_put(s.r, b, len, 0), 0, "put %d after the sweep", i);
		memset(b, 0, sizeof b);
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), (ssize_t)len, "get %d", i);
		cr_assert(t_check(b, len, (uint64_t)i), "record %d corrupted", i);
	}
	struct shmring_info info = t_info(s.r);
	cr_assert_leq(info.used, s.capacity);
	scrib_done(&s);
}

/* A producer that died after publishing but before clearing its COUNTED
 * op record, swept only after its slots were reused a lap later: its
 * records were delivered, so none of its join tasks may be forgiven.  (The
 * sweep used to forgive "records - published seen", and the walk stops at
 * the first reused slot: the CI stress's join ledger came out short.) */
Test(hostile, dead_producers_published_counted_claim_forgives_nothing)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	uint64_t h0 = ld(&s.hdr->prod_head);
	unsigned char b[8];
	for (int i = 0; i < 3; i++)
		put_at(&s, 1);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
	/* a lap of one-slot records: the three slots are reused */
	for (uint64_t i = 0; i < s.nslots; i++) {
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
	}
	int64_t unfinished = shmring_unfinished(s.r);
	cr_assert_eq(unfinished, (int64_t)(3 + s.nslots));

	const int dead = 40;
	struct attach_entry *e = layout_attach(s.hdr, dead);
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->extent, OPREC_EXTENT(3, 3));
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->word, OPREC_WORD(h0, OPREC_COUNTED));
	atomic_store(&e->op_busy, 1);
	atomic_store(&e->roles, SHMRING_PRODUCER);
	atomic_fetch_add(&s.hdr->census, CENSUS_PRODUCER); /* its role */
	atomic_store(&e->id, (uint64_t)dead_pid());
	sweep_now(&s);
	cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
	cr_assert_eq(shmring_unfinished(s.r), unfinished,
	             "tasks of delivered records were forgiven: %lld left of %lld",
	             (long long)shmring_unfinished(s.r), (long long)unfinished);
	cr_assert_eq(t_info(s.r).lost_tasks, 0);
	scrib_done(&s);
}

/* A producer that died inside shmring_put after counting its one record's
 * task but before writing its length (the put counts first, so that its
 * full barrier does not wait for the record's lines): the meta entry still
 * holds a length from an earlier lap.  Exactly that one task is forgiven,
 * whatever the stale lengths say (walking them, as for a batch, counted
 * three here: 3 of 6 tasks left, not 5), and the ring goes on. */
/* stale: 0, or the slots of a stale announcement at the put's position,
 * in the entry's op record 0 before the put's (so recovered first): a
 * thread of the same process that read the same prod_head and lost its CAS
 * to the put. */
static void counted_put_forgives_one(int stale)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	unsigned char b[256];
	/* a lap of one-slot records: every meta entry says "one slot"; the
	 * last five are still being worked on (their tasks are not done) */
	const uint64_t working = 5;
	for (uint64_t i = 0; i < s.nslots; i++) {
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
		if (i < s.nslots - working)
			cr_assert_eq(shmring_task_done(s.r), 0);
	}
	cr_assert_eq(shmring_unfinished(s.r), working);

	/* the dead producer's put of a three-slot record: room reclaimed (the
	 * lap is all released), claimed, counted */
	const int dead = 40;
	uint64_t h = ld(&s.hdr->prod_head);
	atomic_store(&s.hdr->free_tail, h);
	int put = stale ? 1 : 0; /* the put's op record */
	atomic_store(&layout_op_rec(s.hdr, dead, put)->extent, OPREC_EXTENT(3, 1));
	atomic_store(&layout_op_rec(s.hdr, dead, put)->word, OPREC_WORD(h, OPREC_COUNTED));
	if (stale) {
		atomic_store(&layout_op_rec(s.hdr, dead, 0)->extent, OPREC_EXTENT(stale, 1));
		atomic_store(&layout_op_rec(s.hdr, dead, 0)->word, OPREC_WORD(h, OPREC_PRODUCE));
	}
	atomic_store(&s.hdr->prod_head, h + 3);
	struct attach_entry *e = layout_attach(s.hdr, dead);
	/* its task, counted in its op record (join: layout.h op_rec.puts) */
	atomic_store(&s.hdr->join_entries, dead + 1);
	atomic_store(&e->op_high, (uint64_t)put + 1);
	atomic_fetch_add(&layout_op_rec(s.hdr, dead, put)->puts, 1);
	atomic_store(&e->op_busy, stale ? 3 : 1);
	atomic_store(&e->roles, SHMRING_PRODUCER);
	atomic_fetch_add(&s.hdr->census, CENSUS_PRODUCER); /* its role */
	atomic_store(&e->id, (uint64_t)dead_pid());
	cr_assert_eq(shmring_unfinished(s.r), working + 1);

	sweep_now(&s);
	cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
	cr_assert_eq(shmring_unfinished(s.r), working, "stale %d: %llu tasks left, expected %llu",
	             stale, (unsigned long long)shmring_unfinished(s.r), (unsigned long long)working);
	cr_assert_eq(t_info(s.r).lost_tasks, 1, "stale %d", stale);
	for (uint64_t i = 0; i < working; i++)
		cr_assert_eq(shmring_task_done(s.r), 0);
	cr_assert_eq(shmring_join(s.r, 0), 0);
	/* its slots became a skip record: the next record comes through */
	t_fill(b, 200, 7);
	int rc = shmring_put(s.r, b, 200, 0);
	cr_assert_eq(rc, 0, "put after the sweep = %d", rc);
	memset(b, 0, sizeof b);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 200);
	cr_assert(t_check(b, 200, 7));
	scrib_done(&s);
}

Test(hostile, dead_producers_counted_put_without_length_forgives_one)
{
	counted_put_forgives_one(0);
}

/* The same put, with a stale announcement of 1, 2 or 3 slots at its
 * position recovered first: its skip record covers the put's slots (a
 * dead stretch runs to the claim's end, recover.c dead_stretch_end), and
 * the put's task was forgiven only by the put's own recovery, which then
 * found a published start and forgave nothing: 6 tasks left, join waited
 * for good (a review found it, 2026-12-06).  Whoever publishes the
 * stretch forgives it now (recover.c stretch_tasks). */
Test(hostile, stale_announcement_over_a_dead_counted_put_forgives_it)
{
	for (int stale = 1; stale <= 3; stale++)
		counted_put_forgives_one(stale);
}

/* A dead consumer's entry claiming 2^64 - 1 records got and none done: its
 * tasks are forgiven, the join counter goes to 0, never below (the forgiving
 * subtraction overflowed before: fuzz_attach's dead-table seed). */
Test(hostile, dead_entry_huge_got_is_forgiven_without_overflow)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	for (int i = 0; i < 5; i++)
		put_at(&s, 1);
	unsigned char b[8];
	for (int i = 0; i < 5; i++)
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
	cr_assert_eq(shmring_unfinished(s.r), 5);
	static const uint64_t gots[] = { UINT64_MAX, UINT64_C(1) << 63, (UINT64_C(1) << 63) + 1 };
	for (size_t i = 0; i < sizeof gots / sizeof gots[0]; i++) {
		atomic_store((_Atomic int64_t *)&s.hdr->join.count, 0); /* none finished */
		struct attach_entry *e = layout_attach(s.hdr, 50);
		atomic_store(&e->got, gots[i]);
		atomic_store(&e->done, 0);
		atomic_store(&e->roles, SHMRING_CONSUMER);
		atomic_fetch_add(&s.hdr->census, CENSUS_CONSUMER);
		atomic_fetch_or(&s.hdr->census, CENSUS_JOIN);
		atomic_store(&e->id, (uint64_t)dead_pid());
		uint64_t lost0 = t_info(s.r).lost_tasks;
		sweep_now(&s);
		cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
		cr_assert_eq(shmring_unfinished(s.r), 0);
		cr_assert_eq(t_info(s.r).lost_tasks - lost0, 5);
		cr_assert_eq(shmring_join(s.r, 0), 0);
	}
	scrib_done(&s);
}

/* A consumer killed inside the in-order release of a run it took with
 * shmring_get_many (one CONSUME announcement over [t, end)): records
 * 0..i-1 released, i..n-1 still taken.  free_tail passes the released
 * prefix at once and producers reuse it for the next lap long before a
 * sweep (docs/perf.md, "ABI 2 (inline headers): a hypothesis for the
 * stall under `--kill`").  Forged here with real puts and gets: a run
 * R0 (two slots) R1 R2 from position 0, R0 and R1 released, R2 taken
 * (cons_head past it, still COMMITTED), one lap of records put after it
 * so that a next-lap record STARTS at a slot the sweep's walk from t
 * visits (next_lap_at: slot 0, R0's start, or slot 2, R1's, slot 0 then
 * being the interior of a next-lap record: the ABI 1 form), then the dead
 * entry announcing the run.  The sweep must release R2: the walk used to
 * stop at the reused slot, leave R2 taken for ever and reap the entry as
 * complete, and the ring stayed full with nothing to take.  Then the ring
 * must take a whole lap and give it back. */
static void dead_consumers_run_with_reused_prefix(uint64_t next_lap_at)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	const uint64_t n = s.nslots;
	const uint64_t t = ld(&s.hdr->cons_head);
	cr_assert_eq(t, 0);
	cr_assert_eq(put_at(&s, 100), t);     /* R0: slots 0, 1 */
	cr_assert_eq(put_at(&s, 1), t + 2);   /* R1 */
	cr_assert_eq(put_at(&s, 1), t + 3);   /* R2 */
	unsigned char b[256];
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 100); /* released */
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);   /* released */
	uint64_t ch = t + 3; /* R2 taken, never released */
	cr_assert(atomic_compare_exchange_strong(&s.hdr->cons_head, &ch, t + 4));

	/* the next lap: one-slot records up to R2's slot, so that one starts
	 * at slot 0; for slot 2, a two-slot record crossing the end covers
	 * slot 0 (whose meta then still says RELEASED(0), two slots: the walk
	 * steps to slot 2) and one-slot records follow at slots 1 and 2 */
	uint64_t records = 0;
	while (ld(&s.hdr->prod_head) < t + n - (next_lap_at == 2)) {
		put_at(&s, 1);
		records++;
	}
	if (next_lap_at == 2) {
		cr_assert_eq(put_at(&s, 100), t + n - 1);
		records++;
	}
	while (ld(&s.hdr->prod_head) < t + n + 3) {
		put_at(&s, 1);
		records++;
	}
	cr_assert_eq(atomic_load(&meta(&s, t + next_lap_at)->seq),
	             SLOT_SEQ(t + n + next_lap_at, SLOT_COMMITTED), "a next-lap record starts there");
	cr_assert_eq(ld(&s.hdr->free_tail), t + 3, "free_tail passed the released prefix");
	cr_assert_eq(shmring_put(s.r, b, 1, 0), -EAGAIN, "full: R2 holds the room back");

	const int dead = 40;
	struct attach_entry *e = layout_attach(s.hdr, dead);
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->extent, OPREC_EXTENT(4, 3));
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->word, OPREC_WORD(t, OPREC_CONSUME));
	atomic_store(&e->op_busy, 1);
	atomic_store(&e->roles, SHMRING_CONSUMER);
	atomic_fetch_add(&s.hdr->census, CENSUS_CONSUMER); /* its role */
	atomic_store(&e->id, (uint64_t)dead_pid());

	for (uint64_t i = 0; i < records; i++)
		cr_assert_geq(shmring_get(s.r, b, sizeof b, 0), 0, "drain %llu of %llu",
		              (unsigned long long)i, (unsigned long long)records);
	uint64_t lost0 = t_info(s.r).lost_records;
	sweep_now(&s);
	cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
	uint64_t seq = atomic_load(&meta(&s, t + 3)->seq);
	cr_assert_eq(seq, SLOT_SEQ(t + 3, SLOT_RELEASED),
	             "the dead consumer's taken record R2 at %llu was not released by the sweep "
	             "(seq state %llu, free_tail %llu, prod_head %llu): the ring stalls for good",
	             (unsigned long long)(t + 3), (unsigned long long)(seq & 3),
	             (unsigned long long)ld(&s.hdr->free_tail),
	             (unsigned long long)ld(&s.hdr->prod_head));
	cr_assert_eq(t_info(s.r).lost_records - lost0, 1);

	/* the ring drains (it is empty) and refills: a whole lap in, and out */
	for (int lap = 0; lap < 2; lap++) {
		for (uint64_t i = 0; i < n; i++) {
			t_fill(b, 1, i);
			int rc = shmring_put(s.r, b, 1, 0);
			cr_assert_eq(rc, 0, "lap %d: put %llu of %llu after the sweep = %d", lap,
			             (unsigned long long)i, (unsigned long long)n, rc);
		}
		for (uint64_t i = 0; i < n; i++) {
			cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
			cr_assert(t_check(b, 1, i), "lap %d: record %llu", lap, (unsigned long long)i);
		}
	}
	expect_take(&s, -EAGAIN, "drained");
	scrib_done(&s);
}

Test(hostile, dead_consumers_run_released_prefix_reused_at_its_start)
{
	dead_consumers_run_with_reused_prefix(0);
}

Test(hostile, dead_consumers_run_released_prefix_reused_inside)
{
	dead_consumers_run_with_reused_prefix(2);
}

/* The producer side of the same: a batch (one PRODUCE announcement over
 * [h, end)) killed inside shmring__publish_many's in-order publication
 * leaves records 0..i-1 published and i..n-1 not.  Consumers take and
 * release the published prefix, producers reuse it for the next lap, and
 * the sweep's walk from h used to stop at the reused slot ("it all went
 * through long ago"): record i never became a skip record and held every
 * consumer back for good.  Forged: P0 (two slots) and P1 published, P2's
 * slot claimed (prod_head past it) and never published, P0 and P1 taken
 * and released, a next-lap record starting at slot 0. */
Test(hostile, dead_producers_batch_published_prefix_reused)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	const uint64_t n = s.nslots;
	const uint64_t h = ld(&s.hdr->prod_head);
	cr_assert_eq(h, 0);
	cr_assert_eq(put_at(&s, 100), h);     /* P0: slots 0, 1 */
	cr_assert_eq(put_at(&s, 1), h + 2);   /* P1 */
	uint64_t ph = h + 3;                  /* P2: claimed, never published */
	cr_assert(atomic_compare_exchange_strong(&s.hdr->prod_head, &ph, h + 4));
	unsigned char b[256];
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 100);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
	cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), -EAGAIN, "P2 holds the consumers back");
	uint64_t records = 0;
	while (ld(&s.hdr->prod_head) < h + n + 3) {
		put_at(&s, 1);
		records++;
	}
	cr_assert_eq(atomic_load(&meta(&s, h)->seq), SLOT_SEQ(h + n, SLOT_COMMITTED),
	             "a next-lap record starts at the claim's first slot");
	cr_assert_eq(shmring_put(s.r, b, 1, 0), -EAGAIN, "full: P2 holds the room back");

	const int dead = 40;
	struct attach_entry *e = layout_attach(s.hdr, dead);
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->extent, OPREC_EXTENT(4, 3));
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->word, OPREC_WORD(h, OPREC_PRODUCE));
	atomic_store(&e->op_busy, 1);
	atomic_store(&e->roles, SHMRING_PRODUCER);
	atomic_fetch_add(&s.hdr->census, CENSUS_PRODUCER); /* its role */
	atomic_store(&e->id, (uint64_t)dead_pid());
	uint64_t claims0 = t_info(s.r).recovered_claims;
	sweep_now(&s);
	cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
	/* a skip record (and the get that swept may have passed it) */
	uint64_t seq = atomic_load(&meta(&s, h + 3)->seq);
	cr_assert(seq == SLOT_SEQ(h + 3, SLOT_COMMITTED) || seq == SLOT_SEQ(h + 3, SLOT_RELEASED),
	             "the dead producer's unpublished P2 at %llu was not made a skip record by the "
	             "sweep (seq %#llx, cons_head %llu, prod_head %llu): the ring stalls for good",
	             (unsigned long long)(h + 3), (unsigned long long)seq,
	             (unsigned long long)ld(&s.hdr->cons_head),
	             (unsigned long long)ld(&s.hdr->prod_head));
	cr_assert_eq(t_info(s.r).recovered_claims - claims0, 1);
	/* the records behind it come through (the get that swept may have
	 * had the first), then a whole lap in and out */
	uint64_t behind = 0;
	while (shmring_get(s.r, b, sizeof b, 0) == 1)
		behind++;
	cr_assert(behind == records || behind == records - 1, "%llu of the %llu records behind P2",
	          (unsigned long long)behind, (unsigned long long)records);
	cr_assert_eq(ld(&s.hdr->cons_head), ld(&s.hdr->prod_head));
	for (int lap = 0; lap < 2; lap++) {
		for (uint64_t i = 0; i < n; i++) {
			t_fill(b, 1, i);
			int rc = shmring_put(s.r, b, 1, 0);
			cr_assert_eq(rc, 0, "lap %d: put %llu of %llu after the sweep = %d", lap,
			             (unsigned long long)i, (unsigned long long)n, rc);
		}
		for (uint64_t i = 0; i < n; i++) {
			cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
			cr_assert(t_check(b, 1, i), "lap %d: record %llu", lap, (unsigned long long)i);
		}
	}
	expect_take(&s, -EAGAIN, "drained");
	scrib_done(&s);
}

/* ------------------------------------------------------------ runs cut short */

TestSuite(cut_short, .timeout = T_TIMEOUT, .fini = t_cleanup);

static struct shmring *cut_ring;

/* The traced child: stop, then take the run of three records at once. */
static int get_many_traced(void *arg)
{
	(void)arg;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
		return 10;
	raise(SIGSTOP);
	static char buf[256];
	struct iovec recs[8];
	ssize_t n = shmring_get_many(cut_ring, buf, sizeof buf, recs, 8, 0);
	return n == 3 ? 0 : 11;
}

/* A consumer can be killed at any instruction of shmring_get_many's release
 * of its run, and free_tail passes released records in order: so at no
 * instruction may a record of the run be released while an earlier one is
 * still taken (a released prefix is reused by producers at once, and the
 * sweep's walk over the dead consumer's run then met the reused slots:
 * hostile::dead_consumers_run_released_prefix_reused_*).  The child is
 * single-stepped through the whole call and the run's three seq words are
 * read after every instruction.  The release used to go in order. */
Test(cut_short, get_many_never_releases_a_record_before_an_earlier_one)
{
	struct scrib s = scrib_ring(4096, 0);
	cut_ring = s.r;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put_at(&s, 1), (uint64_t)i);
	pid_t pid = t_fork(get_many_traced, NULL);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "the child did not stop");
	cr_assert_eq(ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)PTRACE_O_EXITKILL), 0,
	             "PTRACE_SETOPTIONS: %s", strerror(errno));
	const uint64_t max_steps = 20u * 1000 * 1000;
	uint64_t steps = 0, bad_step = 0;
	int bad_state[3] = { 0, 0, 0 };
	int sig = 0;
	for (;;) {
		cr_assert_eq(ptrace(PTRACE_SINGLESTEP, pid, NULL, (void *)(long)sig), 0,
		             "PTRACE_SINGLESTEP: %s", strerror(errno));
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		if (!WIFSTOPPED(st))
			break;
		sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
		int state[3];
		for (uint64_t p = 0; p < 3; p++)
			state[p] = (int)(atomic_load(&meta(&s, p)->seq) & 3);
		for (int i = 0; i < 3 && !bad_step; i++)
			for (int j = i + 1; j < 3; j++)
				if (state[i] == SLOT_RELEASED && state[j] == SLOT_COMMITTED) {
					bad_step = steps + 1;
					memcpy(bad_state, state, sizeof state);
					break;
				}
		if (++steps > max_steps) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			cr_assert_fail("more than %llu instructions", (unsigned long long)max_steps);
		}
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's get_many failed (status %#x)",
	          st);
	cr_assert_eq(bad_step, 0,
	             "after instruction %llu of %llu the run's states were %d %d %d (1 taken, 2 "
	             "released): killed there, the consumer leaves a released prefix before a "
	             "taken record", (unsigned long long)bad_step, (unsigned long long)steps,
	             bad_state[0], bad_state[1], bad_state[2]);
	for (uint64_t p = 0; p < 3; p++)
		cr_assert_eq(atomic_load(&meta(&s, p)->seq), SLOT_SEQ(p, SLOT_RELEASED));
	fprintf(stderr, "cut_short: %llu instructions single-stepped\n", (unsigned long long)steps);
	scrib_done(&s);
}

/* This process's attachment id (pid | start time << 22), as attach.c makes
 * it, from /proc/self/stat. */
static uint64_t my_attach_id(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY);
	cr_assert_geq(fd, 0);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	cr_assert_not_null(p);
	unsigned long long start = 0;
	cr_assert_eq(sscanf(p + 1, " %*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
	                           "%*s %*s %*s %llu", &start), 1);
	return (uint64_t)getpid() | ((uint64_t)start << ATTACH_PID_BITS);
}

/* A table whose every entry names a live process: -EUSERS, at once.  The
 * same table of dead ones (a recycled pid: our pid, another start time, or
 * a pid beyond pid_max): reaped, and the put goes through. */
Test(hostile, attach_table_full_of_forged_ids)
{
	struct scrib s = scrib_ring(4096, 0);
	uint64_t me = my_attach_id();
	for (int i = 0; i < (int)s.hdr->attach_count; i++)
		atomic_store(&layout_attach(s.hdr, i)->id, me);
	unsigned char b[4] = { 1, 2, 3, 4 };
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_put(s.r, b, 4, 0), -EUSERS);
	cr_assert_lt(t_now_ns() - t0, PROMPT_NS);
	for (int i = 0; i < (int)s.hdr->attach_count; i++) {
		uint64_t id = (i & 1) ? (me ^ ((uint64_t)1 << 40)) : ATTACH_PID_MASK - (uint64_t)i;
		atomic_store(&layout_attach(s.hdr, i)->id, id);
		atomic_store(&layout_attach(s.hdr, i)->op_busy, (uint64_t)i * 0x0101010101010101u);
	}
	cr_assert_eq(shmring_put(s.r, b, 4, 0), 0);
	cr_assert_eq(shmring_get(s.r, b, 4, 0), 4);
	scrib_done(&s);
}

/* ------------------------------------------------------------ truncation */

static int put_after_truncate(void *arg)
{
	struct shmring *r = arg;
	/* the default action, whatever a runtime (Criterion, ASan) installed */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &sa, NULL);
	/* the named file was cut to one page under our mapping: the put takes
	 * an attachment entry and writes its op records, past that page */
	return shmring_put(r, "x", 1, 0) == 0 ? 1 : 2;
}

/* A named ring's file truncated while mapped: an access beyond the new end
 * raises SIGBUS in whoever makes it (a process with write access to the
 * file can always do that; docs/threat-model.md).  Opening the truncated
 * file is refused with -EBADMSG, never a SIGBUS (the header is read with
 * pread and the size checked with fstat before anything is mapped). */
Test(hostile, named_file_truncated_while_mapped)
{
	struct t_shrunk s = t_shrunk_ring("trunc");
	pid_t pid = t_fork(put_after_truncate, s.r);
	int st = t_wait_status(pid, 10 * T_SEC);
	char buf[96];
	cr_assert(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
	          "a put into a truncated mapping: expected SIGBUS, got %s",
	          t_status_str(st, buf, sizeof buf));

	struct shmring *r2 = NULL;
	int rc = shmring_open(&r2, s.name);
	cr_assert_eq(rc, -EBADMSG, "open of the truncated file = %d", rc);
	t_shrunk_restore(&s);
	shmring_detach(s.r);
	cr_assert_eq(shmring_unlink(s.name), 0);
}

/* ------------------------------------------------------------ forged sweep */

/* Sweeps over a forged table: half the entries dead, each with 64 producer
 * claims over the whole ring (full of published one-slot records, so each
 * claim's walk visits every slot), half "live" (our own id), each with 64
 * producer claims that cover nothing.  Before the live cover was searched
 * in a sorted snapshot (docs/design.md, "Crash recovery"), every slot
 * visited scanned every live claim: dead claims x slots x live claims,
 * 22 s for one sweep of a 16 KiB ring, more than 100 s for this one
 * (measured on a loaded 2-core machine).  Now each sweep is bounded by the ring's size
 * (a work budget; the rest is left to the next sweep): every sweep returns
 * within SWEEP_BOUND_NS, the whole table is reaped within a few, and no
 * record is lost or changed. */
#define SWEEP_BOUND_NS (10 * T_SEC)

Test(hostile, forged_table_sweep_is_bounded_by_the_ring, .timeout = 120)
{
	/* before the ring: a fork with it would take a pending entry */
	uint64_t dead = (uint64_t)dead_pid();
	struct scrib s = scrib_ring(256 * 1024, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	unsigned char b[8];
	for (uint64_t i = 0; i < s.nslots; i++) {
		b[0] = (unsigned char)i;
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
	}
	uint64_t ph = ld(&s.hdr->prod_head);
	uint64_t me = my_attach_id();
	int ndead = 0;
	for (int i = 0; i < (int)s.hdr->attach_count; i++) {
		struct attach_entry *e = layout_attach(s.hdr, i);
		if (atomic_load(&e->id) != 0)
			continue; /* ours */
		bool is_dead = (i & 1) == 0;
		for (int k = 0; k < OPREC_PER_ENTRY; k++) {
			struct op_rec *c = layout_op_rec(s.hdr, i, k);
			uint64_t pos = is_dead ? ph - s.nslots : ph + 8 + (uint64_t)k;
			atomic_store(&c->extent, OPREC_EXTENT(is_dead ? s.nslots : 1, 0));
			atomic_store(&c->word, OPREC_WORD(pos, OPREC_PRODUCE));
		}
		atomic_store(&e->op_busy, ~UINT64_C(0));
		atomic_store(&e->id, is_dead ? dead : me);
		ndead += is_dead;
	}
	cr_assert_gt(ndead, 32);
	int64_t t0 = t_now_ns(), worst = 0;
	int reaped = 0, sweeps = 0;
	while (reaped < ndead && t_now_ns() - t0 < 6 * SWEEP_BOUND_NS) {
		int64_t t1 = t_now_ns();
		int rc = shmring_check_peers(s.r);
		int64_t dt = t_now_ns() - t1;
		cr_assert_geq(rc, 0, "check_peers = %d", rc);
		reaped += rc;
		sweeps++;
		if (dt > worst)
			worst = dt;
		cr_assert_lt(dt, SWEEP_BOUND_NS, "sweep %d took %.3f s (%d of %d reaped)", sweeps,
		             (double)dt / 1e9, reaped, ndead);
	}
	cr_log_info("forged sweep: %d dead entries, %llu slots: %d sweeps, worst %.3f s, total %.3f s",
	            ndead, (unsigned long long)s.nslots, sweeps, (double)worst / 1e9,
	            (double)(t_now_ns() - t0) / 1e9);
	cr_assert_eq(reaped, ndead, "%d of %d dead entries reaped", reaped, ndead);
	/* nothing lost, nothing changed */
	cr_assert_eq(ld(&s.hdr->prod_head), ph);
	for (uint64_t i = 0; i < s.nslots; i++) {
		long rc = shmring_get(s.r, b, sizeof b, 0);
		cr_assert_eq(rc, 1, "get %llu = %ld", (unsigned long long)i, rc);
		cr_assert_eq(b[0], (unsigned char)i);
	}
	cr_assert_eq(t_info(s.r).lost_records, 0);
	scrib_done(&s);
}

/* A forged table: prod_head far ahead and a dead entry's one-slot claims
 * 2^20 slots apart.  A dead stretch ends at the next announced start or
 * prod_head, and at most a lap on: a real claim ends within a lap.  Without
 * that bound each stretch walked to the next claim (2^25 slots apart: 0.2 s
 * a claim, 7 s a sweep of 64, every sweep; a review found it, 2026-12-06),
 * and its skip record said so. */
Test(hostile, forged_far_apart_dead_claims_make_skip_records_of_a_lap_at_most)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_CONSUMER), 0);
	const uint64_t gap = UINT64_C(1) << 20;
	const int k = 4, dead = 40;
	uint64_t h = ld(&s.hdr->prod_head);
	for (int i = 0; i < k; i++) {
		atomic_store(&layout_op_rec(s.hdr, dead, i)->extent, OPREC_EXTENT(1, 1));
		atomic_store(&layout_op_rec(s.hdr, dead, i)->word,
		             OPREC_WORD(h + (uint64_t)i * gap, OPREC_PRODUCE));
	}
	atomic_store(&s.hdr->prod_head, h + (uint64_t)k * gap);
	struct attach_entry *e = layout_attach(s.hdr, dead);
	atomic_store(&e->op_busy, (UINT64_C(1) << k) - 1);
	atomic_store(&e->roles, SHMRING_PRODUCER);
	atomic_fetch_add(&s.hdr->census, CENSUS_PRODUCER);
	atomic_store(&e->id, (uint64_t)dead_pid());
	sweep_now(&s);
	cr_assert_eq(atomic_load(&e->id), 0, "the dead entry was not reaped");
	cr_assert_geq(t_info(s.r).recovered_claims, 1);
	uint64_t slots = atomic_load(&meta(&s, h)->len) >> RING_SLOT_SHIFT;
	cr_assert(slots >= 1 && slots <= s.nslots, "a skip record of %llu slots in a ring of %llu",
	          (unsigned long long)slots, (unsigned long long)s.nslots);
	scrib_done(&s);
}

/* An entry of a dead process, taken by a sweep, holding one op record. */
static void dead_claim(struct scrib *s, int j, unsigned kind, uint64_t pos, uint64_t slots,
                       uint64_t records, uint64_t puts)
{
	atomic_store(&layout_op_rec(s->hdr, j, 0)->extent, OPREC_EXTENT(slots, records));
	atomic_store(&layout_op_rec(s->hdr, j, 0)->word, OPREC_WORD(pos, kind));
	if (puts) {
		if (atomic_load(&s->hdr->join_entries) < (unsigned)j + 1)
			atomic_store(&s->hdr->join_entries, (unsigned)j + 1);
		atomic_store(&layout_attach(s->hdr, j)->op_high, 1);
		atomic_fetch_add(&layout_op_rec(s->hdr, j, 0)->puts, puts);
	}
	atomic_store(&layout_attach(s->hdr, j)->op_busy, 1);
	atomic_store(&layout_attach(s->hdr, j)->id, (uint64_t)dead_pid() | ATTACH_REAPING_TAG);
}

/* Two sweeps side by side: A recovers a stale announcement D = [h, h + 1)
 * and has written its skip record's length (3 slots, to the next start)
 * at h, not yet its CAS; B recovers the dead batch C = [h, h + 3), COUNTED,
 * three records, all of it, and wins the CAS at h.  B counted C's
 * unpublished records from the lengths at h, read after A's write: 1 of
 * 3 forgiven, 2 tasks unfinished for good (a review found it, 2026-12-06).
 * It counts them now as C's records less those published before h. */
Test(hostile, a_batch_recovered_beside_a_stale_sweep_forgives_all_its_tasks)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	unsigned char b[8] = { 0 };
	for (uint64_t i = 0; i < s.nslots; i++) {
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
		cr_assert_eq(shmring_task_done(s.r), 0);
	}
	uint64_t h = ld(&s.hdr->prod_head) & RING_POS_MASK;
	const int c = 40, d = 41;
	for (int i = 0; i < 3; i++) /* the batch's lengths, written before COUNTED */
		ring_write_meta(s.r, h + (uint64_t)i, 1, 0);
	dead_claim(&s, c, OPREC_COUNTED, h, 3, 3, 3);
	dead_claim(&s, d, OPREC_PRODUCE, h, 1, 1, 0);
	atomic_store(&s.hdr->prod_head, h + 3);
	atomic_store(&s.hdr->free_tail, h);
	cr_assert_eq(shmring_unfinished(s.r), 3);

	uint64_t seq_a = atomic_load(&meta_at(s.r, h)->seq);
	ring_write_meta(s.r, h, 3u << RING_SLOT_SHIFT, SLOT_F_SKIP); /* A, before its CAS */
	struct shmring__sweep sw = { 0 };
	cr_assert(shmring__recover_entry(s.r, c, &sw), "B's recovery");
	cr_assert_not(ring_publish_from(s.r, h, seq_a), "A's CAS lost to B's");
	cr_assert(shmring__recover_entry(s.r, d, &sw), "A's recovery, done again");
	cr_assert_eq(t_info(s.r).lost_tasks, 3);
	cr_assert_eq(shmring_unfinished(s.r), 0, "%lld tasks left of none outstanding",
	             (long long)shmring_unfinished(s.r));
	cr_assert_eq(shmring_join(s.r, 0), 0);
	scrib_done(&s);
}

/* A forged dead COUNTED claim over the whole ring: its first half
 * published one-slot records, then dead and published slots in turn.  Each
 * of its nslots / 4 dead stretches walked the claim from its start to see
 * whether its unpublished records began there: one recovery cost
 * nslots^2 / 8 (2.5 s at 2^16 slots, far past a sweep's budget, which
 * cannot cut one recovery short; a review found it, 2026-12-06).  A claim
 * is walked once: the recovery's work stays linear in the ring. */
Test(hostile, a_forged_claim_of_many_dead_stretches_is_walked_once)
{
	struct scrib s = scrib_ring(1 << 20, 0); /* 16384 slots */
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	uint64_t n = s.nslots, half = n / 2;
	unsigned char b[1] = { 0 };
	for (uint64_t i = 0; i < half; i++)
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
	for (uint64_t p = half + 1; p < n; p += 2) {
		atomic_store(&meta(&s, p)->len, 1);
		atomic_store(&meta(&s, p)->flags, 0);
		atomic_store(&meta(&s, p)->seq, SLOT_SEQ(p, SLOT_COMMITTED));
	}
	atomic_store(&s.hdr->prod_head, n);
	const int dead = 40;
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->extent, OPREC_EXTENT(n, 1));
	atomic_store(&layout_op_rec(s.hdr, dead, 0)->word, OPREC_WORD(0, OPREC_COUNTED));
	atomic_store(&layout_attach(s.hdr, dead)->op_busy, 1);
	atomic_store(&layout_attach(s.hdr, dead)->id, (uint64_t)dead_pid() | ATTACH_REAPING_TAG);
	struct shmring__sweep sw = { 0 };
	cr_assert(shmring__recover_entry(s.r, dead, &sw));
	cr_assert_eq(ld(&s.hdr->recovered_claims), n / 4, "every dead slot a skip record");
	cr_assert_lt(sw.work, 64 * n, "one recovery's work %llu for %llu slots",
	             (unsigned long long)sw.work, (unsigned long long)n);
	scrib_done(&s);
}

/* A forged COUNTED record of 2^32 - 1 slots and 2 records, in a free entry,
 * over a dead one-slot claim.  No claim is longer than the ring: it is not
 * a claim, and forgives nothing.  It was taken for one: the count of its
 * unpublished records walked up to 2^32 slots (1.2 s at 2^28), and it
 * forgave tasks nobody had left (a review found it, 2026-12-06). */
Test(hostile, a_forged_counted_record_longer_than_the_ring_forgives_nothing)
{
	struct scrib s = scrib_ring(4096, 0);
	cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	unsigned char b[8] = { 0 };
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
	}
	cr_assert_eq(shmring_unfinished(s.r), 5);
	uint64_t p = ld(&s.hdr->prod_head) & RING_POS_MASK;
	const int dead = 40, free_entry = 41;
	atomic_store(&layout_op_rec(s.hdr, free_entry, 0)->extent, OPREC_EXTENT(UINT32_MAX, 2));
	atomic_store(&layout_op_rec(s.hdr, free_entry, 0)->word, OPREC_WORD(p, OPREC_COUNTED));
	atomic_store(&layout_attach(s.hdr, free_entry)->op_busy, 1); /* its id stays 0 */
	dead_claim(&s, dead, OPREC_PRODUCE, p, 1, 1, 0);
	atomic_store(&s.hdr->prod_head, p + 1);
	struct shmring__sweep sw = { 0 };
	cr_assert(shmring__recover_entry(s.r, dead, &sw));
	cr_assert_eq(ld(&s.hdr->recovered_claims), 1);
	cr_assert_eq(t_info(s.r).lost_tasks, 0);
	cr_assert_eq(shmring_unfinished(s.r), 5);
	scrib_done(&s);
}

/* A dead batch: R0 (2 slots, published, consumed since) and R1 (unpublished).
 * A put of the next lap over R0's first slot, dead too, had written its
 * length (1 slot), not its seq, which still said RELEASED of this lap.  The
 * batch's recovery read that length as R0's, stepped into R0's second slot,
 * took it for a stale announcement's and stopped: R1 never became a skip
 * record, and every get waited at it for good (when the batch came first;
 * a review found it, 2026-12-06).  The walk goes on from the consumed floor
 * now: both orders recover, and every task is forgiven. */
Test(hostile, a_length_of_the_next_lap_below_the_floor_misleads_no_walk)
{
	for (int order = 0; order < 2; order++) {
		struct scrib s = scrib_ring(4096, 0);
		cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
		uint64_t n = s.nslots;
		unsigned char b[256] = { 0 };
		for (int i = 0; i < 5; i++) {
			cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
			cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
			cr_assert_eq(shmring_task_done(s.r), 0);
		}
		uint64_t c = ld(&s.hdr->prod_head) & RING_POS_MASK;
		cr_assert_eq(shmring_put(s.r, b, 100, 0), 0); /* R0: [c, c + 2) */
		ring_write_meta(s.r, c + 2, 1, 0);             /* R1's length */
		atomic_store(&s.hdr->prod_head, c + 3);
		dead_claim(&s, 40, OPREC_COUNTED, c, 3, 2, 1); /* R1's task (R0's: our put's) */
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 100);
		cr_assert_eq(shmring_task_done(s.r), 0);
		for (uint64_t p = c + 3; p < c + n; p++)
			cr_assert_eq(shmring_put(s.r, b, 1, 0), 0);
		ring_write_meta(s.r, c + n, 1, 0); /* the next lap's put: its length only */
		atomic_store(&s.hdr->prod_head, c + n + 1);
		dead_claim(&s, 41, OPREC_COUNTED, c + n, 1, 1, 1);
		struct shmring__sweep sw = { 0 };
		cr_assert(shmring__recover_entry(s.r, order ? 41 : 40, &sw));
		cr_assert(shmring__recover_entry(s.r, order ? 40 : 41, &sw));
		cr_assert_eq(atomic_load(&meta(&s, c + 2)->seq), SLOT_SEQ(c + 2, SLOT_COMMITTED),
		             "order %d: R1 is no skip record", order);
		cr_assert_eq(t_info(s.r).lost_tasks, 2, "order %d", order);
		long got = shmring_get(s.r, b, sizeof b, 0);
		cr_assert_eq(got, 1, "order %d: get after the recovery = %ld", order, got);
		scrib_done(&s);
	}
}

/* A dead batch of three one-slot records: R0 published and consumed, R1
 * and R2 not.  Another sweep (of a stale announcement at R1) has written
 * its skip record's length at R1, not yet its CAS; this recovery wins
 * the CAS there.  The walk cannot count R0 (it reads no length below the
 * consumed floor), so it counted R1's and R2's from the lengths at R1, the
 * other sweep's: 1 task forgiven of 2, join waiting for good (a review
 * found it, 2026-12-06).  The batch's own count of what it published
 * (op_rec.progress, as shmring__publish_many leaves it: after R0, or
 * killed between R0's publication and its count) says 2 now. */
Test(hostile, a_consumed_batch_recovered_beside_a_stale_sweep_forgives_all)
{
	static const uint64_t progress[2] = { OPREC_PROGRESS(1, 1), OPREC_PROGRESS(0, 0) };
	for (int k = 0; k < 2; k++) {
		struct scrib s = scrib_ring(4096, 0);
		cr_assert_eq(shmring_declare(s.r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
		unsigned char b[256] = { 0 };
		uint64_t c = ld(&s.hdr->prod_head) & RING_POS_MASK;
		cr_assert_eq(shmring_put(s.r, b, 1, 0), 0); /* R0 at c */
		ring_write_meta(s.r, c + 1, 1, 0);          /* R1's and R2's lengths */
		ring_write_meta(s.r, c + 2, 1, 0);
		atomic_store(&s.hdr->prod_head, c + 3);
		dead_claim(&s, 40, OPREC_COUNTED, c, 3, 3, 2); /* R1's and R2's tasks */
		atomic_store(&layout_op_rec(s.hdr, 40, 0)->progress, progress[k]);
		cr_assert_eq(shmring_get(s.r, b, sizeof b, 0), 1);
		cr_assert_eq(shmring_task_done(s.r), 0);
		cr_assert_eq(ld(&s.hdr->cons_head), c + 1);
		cr_assert_eq(shmring_unfinished(s.r), 2);
		ring_write_meta(s.r, c + 1, 2u << RING_SLOT_SHIFT, SLOT_F_SKIP); /* the other sweep */
		struct shmring__sweep sw = { 0 };
		cr_assert(shmring__recover_entry(s.r, 40, &sw));
		cr_assert_eq(atomic_load(&meta(&s, c + 1)->seq), SLOT_SEQ(c + 1, SLOT_COMMITTED));
		cr_assert_eq(t_info(s.r).lost_tasks, 2, "progress %d: lost_tasks %llu", k,
		             (unsigned long long)t_info(s.r).lost_tasks);
		cr_assert_eq(shmring_unfinished(s.r), 0, "progress %d", k);
		cr_assert_eq(shmring_join(s.r, 0), 0);
		scrib_done(&s);
	}
}
