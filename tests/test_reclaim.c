/*
 * test_reclaim.c - consumers keep free_tail current (issue 12, space.c
 * shmring__free_tail_follow): with records released as fast as they are put,
 * free_tail stands right behind the record just put, whatever took and
 * released them (get_many, peek/release, skip records, releases out of
 * order), or, after the one-record get, at most FOLLOW_EVERY slots behind
 * (slot.h ring_free_tail_due: that get follows once per FOLLOW_EVERY
 * slots).  Before, it stayed where it was until a producer found the ring
 * full by its hint and walked the whole lap at once (0.2-0.5 ms for one put
 * in 65536 on a 4 MiB ring).  A held record stops it, and the producers'
 * own walk still fills the ring up to that record; records stay intact.
 */
#include "common.h"

#include "handle.h" /* tests are built with -Iring: the header's indices */
#include "slot.h"   /* FOLLOW_EVERY */

TestSuite(reclaim, .timeout = T_TIMEOUT);

#define CAP    (1u << 20)
#define NSLOTS (CAP / 64)

static uint64_t lag(const struct shmring *r)
{
	uint64_t h = atomic_load(&r->hdr->prod_head) & RING_POS_MASK;
	return h - atomic_load(&r->hdr->free_tail);
}

/* n 64-byte records through r, each put and then got. */
static void pass_through(struct shmring *r, uint64_t n)
{
	unsigned char buf[64];
	for (uint64_t i = 0; i < n; i++) {
		cr_assert_eq(shmring_put(r, buf, sizeof buf, 0), 0);
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 64);
	}
}

static void laps(size_t len, uint64_t records)
{
	struct shmring *r = t_ring(CAP, 4096);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	static unsigned char in[4096], out[4096];
	uint64_t worst = 0;
	for (uint64_t i = 0; i < records; i++) {
		memset(in, (int)(i & 0xff), len);
		memcpy(in, &i, sizeof i);
		cr_assert_eq(shmring_put(r, in, len, 0), 0, "put %llu", (unsigned long long)i);
		uint64_t l = lag(r);
		if (l > worst)
			worst = l;
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), (ssize_t)len);
		cr_assert_eq(memcmp(in, out, len), 0, "record %llu changed", (unsigned long long)i);
	}
	/* right after a put: that record is not released, and the one-record
	 * get has moved free_tail at the last multiple of FOLLOW_EVERY slots
	 * it crossed */
	uint64_t most = FOLLOW_EVERY + (len + 63) / 64;
	cr_assert_leq(worst, most, "free_tail fell %llu slots behind prod_head (at most %llu)",
	              (unsigned long long)worst, (unsigned long long)most);
	if (len <= 64) /* a one-slot record: the leaf get's (the general path follows each) */
		cr_assert_geq(worst, FOLLOW_EVERY / 2, "free_tail at most %llu slots behind: the "
		              "get followed more often than once per %u slots",
		              (unsigned long long)worst, FOLLOW_EVERY);
	shmring_detach(r);
}

Test(reclaim, free_tail_follows_one_slot_records)
{
	laps(64, 3 * NSLOTS);
}

Test(reclaim, free_tail_follows_multi_slot_records)
{
	/* 3 slots a record: claims cross chunk boundaries at every offset */
	laps(150, NSLOTS);
}

/* One-slot records (the one-record get's) between three-slot ones (the
 * general get's): every multiple of FOLLOW_EVERY is crossed by a record of
 * one kind or the other, and whichever took it follows.  When only the
 * one-record get followed at multiples, a one-slot record never ended on
 * one here (each ends at 1 mod 4), and free_tail fell a whole lap behind:
 * the producer's walk of the third session's stall, back (found by a
 * review). */
Test(reclaim, free_tail_follows_records_of_both_paths)
{
	struct shmring *r = t_ring(CAP, 4096);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	static unsigned char buf[4096];
	uint64_t worst = 0;
	for (uint64_t i = 0; i < 3 * NSLOTS / 4; i++) {
		size_t len = i & 1 ? 192 : 64;
		cr_assert_eq(shmring_put(r, buf, len, 0), 0);
		uint64_t l = lag(r);
		if (l > worst)
			worst = l;
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), (ssize_t)len);
	}
	cr_assert_leq(worst, FOLLOW_EVERY + 4, "free_tail fell %llu slots behind prod_head",
	              (unsigned long long)worst);
	shmring_detach(r);
}

/* Every multiple of FOLLOW_EVERY crossed by a skip record (an aborted
 * reservation of five slots laid across it), one-slot records between.
 * The general get releases the skip record on its way to the record after
 * it, and follows free_tail if the skip record crosses a multiple.  When
 * that get took the skip record for one slot long (its span was not in
 * struct take), nobody followed: free_tail stood still until a producer's
 * reclaim walked the whole lap (found in the twelfth session). */
Test(reclaim, free_tail_follows_skip_records)
{
	struct shmring *r = t_ring(CAP, 4096);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	static unsigned char buf[4096];
	uint64_t worst = 0, skips = 0;
	while (skips < 2 * NSLOTS / FOLLOW_EVERY) {
		uint64_t h = atomic_load(&r->hdr->prod_head) & RING_POS_MASK;
		if ((h + 3) % FOLLOW_EVERY == 0) { /* [h, h + 5) crosses it */
			struct shmring_span sp;
			cr_assert_eq(shmring_reserve(r, 5 * 64, &sp, 0), 0);
			cr_assert_eq(shmring_abort(r, &sp), 0);
			skips++;
		}
		cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
		uint64_t l = lag(r);
		if (l > worst)
			worst = l;
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 64);
	}
	cr_assert_leq(worst, FOLLOW_EVERY + 8, "free_tail fell %llu slots behind prod_head",
	              (unsigned long long)worst);
	shmring_detach(r);
}

/* A held record: free_tail stops at it, the ring fills up to it, no
 * further; released, free_tail moves over everything after it. */
Test(reclaim, free_tail_stops_at_a_held_record)
{
	struct shmring *r = t_ring(CAP, 4096);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	static unsigned char buf[4096];
	/* a little more than half a lap on */
	pass_through(r, NSLOTS / 2 + 1000);
	uint64_t held_at = atomic_load(&r->hdr->cons_head);
	cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
	struct shmring_span s;
	cr_assert_eq(shmring_peek(r, &s, 0), 64);
	uint64_t puts = 0;
	for (;;) {
		int rc = shmring_put(r, buf, 64, 0);
		if (rc == -EAGAIN)
			break;
		cr_assert_eq(rc, 0);
		puts++;
		/* take them as they come: only the held one stays */
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 64);
		cr_assert(puts <= NSLOTS, "the ring never filled up to the held record");
	}
	cr_assert_eq(puts, NSLOTS - 1, "%llu puts past the held record (ring of %u slots)",
	             (unsigned long long)puts, (unsigned)NSLOTS);
	cr_assert_eq(atomic_load(&r->hdr->free_tail), held_at);
	cr_assert_eq(shmring_release(r, &s), 0);
	cr_assert_eq(atomic_load(&r->hdr->free_tail), atomic_load(&r->hdr->cons_head),
	             "released last, the held record did not take free_tail over the others");
	cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 64);
	shmring_detach(r);
}

/* Every way of taking and releasing: get_many runs, peek/release, skip
 * records (an aborted reservation), releases out of order. */
Test(reclaim, free_tail_follows_every_release)
{
	struct shmring *r = t_ring(CAP, 4096);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	static unsigned char buf[1 << 16];
	struct iovec in[8], out[8];
	for (int k = 0; k < 8; k++)
		in[k] = (struct iovec){ buf, 100 + 30 * (size_t)k };
	/* free_tail at most FOLLOW_EVERY slots behind the multiple last crossed,
	 * plus what one round puts (under 64 slots); twice that when the
	 * multiple was crossed while a record was held: the walk stopped at it,
	 * and its release, with cons_head only a record on, does not follow
	 * (slot.h ring_free_tail_follow: one that does, free_tail standing at the
	 * next record after every walk, followed after every record again) */
	for (uint64_t lap = 0; lap < 2 * NSLOTS / 40; lap++) {
		/* a batch each way */
		cr_assert_eq(shmring_put_many(r, in, 8, 0), 8);
		cr_assert_eq(shmring_get_many(r, buf, sizeof buf, out, 8, 0), 8);
		cr_assert_leq(lag(r), 2 * FOLLOW_EVERY + 64, "after get_many");
		/* an aborted reservation (a skip record) before a record */
		struct shmring_span sp;
		cr_assert_eq(shmring_reserve(r, 300, &sp, 0), 0);
		cr_assert_eq(shmring_abort(r, &sp), 0);
		cr_assert_eq(shmring_put(r, buf, 10, 0), 0);
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 10);
		cr_assert_leq(lag(r), 2 * FOLLOW_EVERY + 64, "after a skip record");
		/* two held, released out of order */
		struct shmring_span a, b;
		cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
		cr_assert_eq(shmring_put(r, buf, 200, 0), 0);
		cr_assert_eq(shmring_peek(r, &a, 0), 64);
		cr_assert_eq(shmring_peek(r, &b, 0), 200);
		cr_assert_eq(shmring_release(r, &b), 0);
		cr_assert_neq(lag(r), 0, "free_tail passed a held record");
		cr_assert_eq(shmring_release(r, &a), 0);
		cr_assert_leq(lag(r), 2 * FOLLOW_EVERY + 64, "after releases out of order");
	}
	shmring_detach(r);
}

/* The one-record get moves free_tail without a walk when every slot since
 * its last follow was a record it took itself (slot.h
 * ring_free_tail_follow_own: its gets counted against the slots).  A record
 * another consumer (another handle) holds in that span makes the count fall
 * short: free_tail stops at it, and moves on after its release.  (With the
 * span alone and no count, free_tail passed it: checked by building so.) */
Test(reclaim, free_tail_stops_at_a_record_another_consumer_holds)
{
	struct shmring *r = t_ring(CAP, 4096), *other;
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	cr_assert_eq(shmring_attach_fd(&other, shmring_fd(r)), 0);
	cr_assert_eq(shmring_declare(other, SHMRING_CONSUMER), 0);
	static unsigned char buf[64];
	/* past two multiples: the getter's last follow was its own */
	pass_through(r, 2 * FOLLOW_EVERY + 10);
	cr_assert_eq(atomic_load(&r->hdr->free_tail), 2 * FOLLOW_EVERY);
	uint64_t counted = r->op_solo.counted_follows;
	cr_assert_geq(counted, 1, "no follow was made without the walk (the count never matched)");
	/* the other handle holds one record, 20 slots on */
	pass_through(r, 20);
	uint64_t held_at = atomic_load(&r->hdr->cons_head);
	cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
	struct shmring_span s;
	cr_assert_eq(shmring_peek(other, &s, 0), 64);
	/* this handle goes on past the next multiple, and the one after */
	for (uint64_t i = 0; i < 2 * FOLLOW_EVERY; i++) {
		cr_assert_eq(shmring_put(r, buf, 64, 0), 0);
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 64);
		cr_assert_leq(atomic_load(&r->hdr->free_tail), held_at,
		              "free_tail passed the record the other handle holds");
	}
	cr_assert_eq(atomic_load(&r->hdr->free_tail), held_at);
	cr_assert_eq(r->op_solo.counted_follows, counted, "a follow without the walk over a span "
	             "with the other handle's record in it");
	cr_assert_eq(shmring_release(other, &s), 0);
	/* released: the next multiple's follow walks over it, and the one after
	 * is this handle's own again */
	pass_through(r, 2 * FOLLOW_EVERY);
	cr_assert_gt(r->op_solo.counted_follows, counted, "no follow without the walk after it");
	uint64_t head = atomic_load(&r->hdr->cons_head);
	cr_assert_eq(atomic_load(&r->hdr->free_tail), head - head % FOLLOW_EVERY,
	             "free_tail %llu, cons_head %llu",
	             (unsigned long long)atomic_load(&r->hdr->free_tail), (unsigned long long)head);
	shmring_detach(other);
	shmring_detach(r);
}
