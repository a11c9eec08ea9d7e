/*
 * test_zc.c - zero-copy: reserve/commit/abort, peek/release, spans that are
 * contiguous across the wrap-around and aligned to SHMRING_SLOT_SIZE.
 */
#include <inttypes.h>

#include "common.h"

TestSuite(zc, .timeout = T_TIMEOUT);

static int aligned(const void *p)
{
	return ((uintptr_t)p % SHMRING_SLOT_SIZE) == 0;
}

Test(zc, reserve_commit_roundtrip)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span sp;
	memset(&sp, 0, sizeof sp);
	cr_assert_eq(shmring_reserve(r, 100, &sp, 0), 0);
	cr_assert_not_null(sp.data);
	cr_assert_geq(sp.len, 100);
	cr_assert(aligned(sp.data), "span at %p", sp.data);
	t_fill(sp.data, 100, 5);
	/* not visible before commit */
	char out[200];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.records, 0);
	cr_assert_eq(in.used, 2 * SHMRING_SLOT_SIZE, "in-flight reservation counts as used");
	cr_assert_eq(shmring_commit(r, &sp, 100), 0);
	in = t_info(r);
	cr_assert_eq(in.records, 1);
	cr_assert_eq(in.bytes, 100);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 100);
	cr_assert(t_check(out, 100, 5));
	cr_assert_eq(t_info(r).used, 0);
	shmring_detach(r);
}

Test(zc, commit_shorter_than_reserved)
{
	struct shmring *r = t_ring(4096, 0);
	char out[1024];
	/* many laps: the unused tail of each reservation must come back */
	for (int i = 0; i < 500; i++) {
		struct shmring_span sp;
		cr_assert_eq(shmring_reserve(r, 1000, &sp, 0), 0, "reserve #%d", i);
		cr_assert_geq(sp.len, 1000);
		size_t len = (size_t)(i % 67);
		t_fill(sp.data, len, (uint64_t)i);
		cr_assert_eq(shmring_commit(r, &sp, len), 0);
		struct shmring_info in = t_info(r);
		cr_assert_eq(in.records, 1);
		cr_assert_eq(in.bytes, len);
		cr_assert_eq(shmring_next_len(r), (ssize_t)len);
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), (ssize_t)len, "record %d", i);
		cr_assert(t_check(out, len, (uint64_t)i));
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN,
		             "the reservation's tail was delivered as a record");
	}
	/* the whole ring is free again */
	cr_assert_eq(shmring_put(r, out, 1024, 0), 0);
	cr_assert_eq(shmring_put(r, out, 1024, 0), 0);
	cr_assert_eq(shmring_put(r, out, 1024, 0), 0);
	cr_assert_eq(shmring_put(r, out, 1024, 0), 0);
	cr_assert_eq(shmring_put(r, out, 0, 0), -EAGAIN);
	shmring_detach(r);
}

Test(zc, commit_longer_than_reserved_is_einval)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 64, &sp, 0), 0);
	/* the header leaves the code open: a bad argument, or a record too big
	 * for its reservation */
	int rc = shmring_commit(r, &sp, sp.len + 1);
	cr_assert(rc == -EINVAL || rc == -EMSGSIZE, "commit(len + 1) = %d", rc);
	cr_assert_eq(shmring_get(r, &sp, 0, 0), -EAGAIN);
	memcpy(sp.data, "ok", 2);
	cr_assert_eq(shmring_commit(r, &sp, 2), 0, "the reservation survives a bad commit");
	char out[8];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 2);
	cr_assert_eq(memcmp(out, "ok", 2), 0);
	cr_assert_eq(shmring_commit(r, NULL, 0), -EINVAL);
	cr_assert_eq(shmring_abort(r, NULL), -EINVAL);
	cr_assert_eq(shmring_release(r, NULL), -EINVAL);
	cr_assert_eq(shmring_reserve(r, 1, NULL, 0), -EINVAL);
	cr_assert_eq(shmring_peek(r, NULL, 0), -EINVAL);
	shmring_detach(r);
}

Test(zc, zero_length_reservation)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 0, &sp, 0), 0);
	cr_assert_eq(shmring_commit(r, &sp, 0), 0);
	char out[4];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	shmring_detach(r);
}

Test(zc, reserve_over_max_record_is_emsgsize)
{
	struct shmring *r = t_ring(4096, 1000);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, 1001, &sp, 0), -EMSGSIZE);
	cr_assert_eq(shmring_reserve(r, 1000, &sp, 0), 0);
	cr_assert_eq(shmring_abort(r, &sp), 0);
	shmring_detach(r);
}

Test(zc, abort_is_skipped)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span sp;
	char out[512];
	/* alone */
	cr_assert_eq(shmring_reserve(r, 300, &sp, 0), 0);
	memset(sp.data, 'X', 300);
	cr_assert_eq(shmring_abort(r, &sp), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	cr_assert_eq(t_info(r).records, 0);
	/* between two records */
	cr_assert_eq(shmring_put(r, "A", 1, 0), 0);
	cr_assert_eq(shmring_reserve(r, 300, &sp, 0), 0);
	memset(sp.data, 'X', 300);
	cr_assert_eq(shmring_put(r, "C", 1, 0), 0);
	cr_assert_eq(shmring_abort(r, &sp), 0);
	cr_assert_eq(t_info(r).records, 2);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(out[0], 'A');
	cr_assert_eq(shmring_next_len(r), 1, "next_len must look past the aborted span");
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(out[0], 'C');
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	/* many aborts never fill the ring for good: a consumer that looks
	 * (and finds nothing) skips them */
	for (int i = 0; i < 300; i++) {
		int rc = shmring_reserve(r, 1000, &sp, 0);
		cr_assert_eq(rc, 0, "reserve after %d aborts = %d", i, rc);
		cr_assert_eq(shmring_abort(r, &sp), 0);
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	}
	cr_assert_eq(shmring_put(r, "E", 1, 0), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(out[0], 'E');
	cr_assert_eq(t_info(r).used, 0);
	shmring_detach(r);
}

Test(zc, reservations_are_delivered_in_position_order)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span x;
	cr_assert_eq(shmring_reserve(r, 10, &x, 0), 0);
	cr_assert_eq(shmring_put(r, "C", 1, 0), 0);
	memcpy(x.data, "X", 1);
	cr_assert_eq(shmring_commit(r, &x, 1), 0);
	char out[16];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(out[0], 'X');
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(out[0], 'C');
	shmring_detach(r);
}

Test(zc, peek_then_release)
{
	struct shmring *r = t_ring(4096, 0);
	char in[200];
	t_fill(in, sizeof in, 9);
	cr_assert_eq(shmring_put(r, in, 200, 0), 0);
	cr_assert_eq(shmring_put(r, "B", 1, 0), 0);
	struct shmring_span sp;
	memset(&sp, 0, sizeof sp);
	cr_assert_eq(shmring_peek(r, &sp, 0), 200);
	cr_assert_eq(sp.len, 200);
	cr_assert(aligned(sp.data));
	cr_assert(t_check(sp.data, 200, 9));
	/* it is taken: nobody else sees it; the record behind it stays readable */
	cr_assert_eq(shmring_next_len(r), 1);
	cr_assert_eq(t_info(r).records, 1);
	char out[8];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	cr_assert_eq(out[0], 'B');
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	/* its storage (and that of B, behind it) is not free until release */
	cr_assert_eq(t_info(r).used, 5 * SHMRING_SLOT_SIZE);
	cr_assert(t_check(sp.data, 200, 9), "peeked data changed under us");
	cr_assert_eq(shmring_release(r, &sp), 0);
	cr_assert_eq(t_info(r).used, 0);
	shmring_detach(r);
}

/* An unreleased peek holds back the space after it. */
Test(zc, peek_holds_back_space)
{
	struct shmring *r = t_ring(4096, 4096);
	const size_t nslots = 4096 / SHMRING_SLOT_SIZE;
	static char big[4096];
	cr_assert_eq(shmring_put(r, "A", 1, 0), 0);
	cr_assert_eq(shmring_put(r, "B", 1, 0), 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(r, &sp, 0), 1);
	char out[4096];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 1);
	/* A (held) and B (behind it) still occupy their slots */
	cr_assert_eq(shmring_put(r, big, (nslots - 2) * SHMRING_SLOT_SIZE, 0), 0);
	cr_assert_eq(shmring_put(r, big, 0, 0), -EAGAIN);
	cr_assert_eq(shmring_put(r, big, 0, 20 * T_MS), -ETIMEDOUT);
	cr_assert_eq(shmring_release(r, &sp), 0);
	/* now both slots are free */
	cr_assert_eq(shmring_put(r, big, SHMRING_SLOT_SIZE + 1, 0), 0);
	cr_assert_eq(shmring_put(r, big, 0, 0), -EAGAIN);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), (ssize_t)((nslots - 2) * SHMRING_SLOT_SIZE));
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), SHMRING_SLOT_SIZE + 1);
	shmring_detach(r);
}

Test(zc, peek_empty_eagain_and_etimedout)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(r, &sp, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_peek(r, &sp, 80 * T_MS), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	cr_assert_geq(el, 80 * T_MS);
	cr_assert_lt(el, 80 * T_MS + T_WAKE_BOUND_NS);
	shmring_detach(r);
}

/* Polls of an empty ring (timeout 0) end in their first attempt's verdict
 * (attempt.h take_one, copy.c get_nothing, take.c take_run).  A peek takes
 * an op record of its own from the entry's pool: each must give it back, or
 * within 64 polls a peek finds none left. */
Test(zc, empty_polls_hold_no_op_record)
{
	struct shmring *r = t_ring(4096, 0);
	struct shmring_span sp;
	char out[64];
	struct iovec io[4];
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(shmring_peek(r, &sp, 0), -EAGAIN);
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
		cr_assert_eq(shmring_get_many(r, out, sizeof out, io, 4, 0), -EAGAIN);
	}
	cr_assert_eq(shmring_put(r, "A", 1, 0), 0);
	cr_assert_eq(shmring_peek(r, &sp, 0), 1);
	cr_assert_eq(shmring_release(r, &sp), 0);
	shmring_detach(r);
}

/* The same for polls of a full ring (attempt.h claim_one, space.c
 * shmring__slots_claim): a reservation takes an op record of its own. */
Test(zc, full_polls_hold_no_op_record)
{
	struct shmring *r = t_ring(4096, 0);
	char in[64] = { 0 };
	struct shmring_span sp;
	struct iovec io[2] = { { in, sizeof in }, { in, sizeof in } };
	while (shmring_put(r, in, sizeof in, 0) == 0)
		;
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(shmring_reserve(r, sizeof in, &sp, 0), -EAGAIN);
		cr_assert_eq(shmring_put(r, in, sizeof in, 0), -EAGAIN);
		cr_assert_eq(shmring_put_many(r, io, 2, 0), -EAGAIN);
	}
	char out[64];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), (ssize_t)sizeof out);
	cr_assert_eq(shmring_reserve(r, sizeof in, &sp, 0), 0);
	cr_assert_eq(shmring_commit(r, &sp, sizeof in), 0);
	shmring_detach(r);
}

Test(zc, reserve_full_eagain_and_etimedout)
{
	struct shmring *r = t_ring(4096, 4096);
	struct shmring_span a, b;
	cr_assert_eq(shmring_reserve(r, 4096, &a, 0), 0);
	cr_assert_eq(shmring_reserve(r, 0, &b, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_reserve(r, 1, &b, 80 * T_MS), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	cr_assert_geq(el, 80 * T_MS);
	cr_assert_lt(el, 80 * T_MS + T_WAKE_BOUND_NS);
	t_fill(a.data, 4096, 77);
	cr_assert_eq(shmring_commit(r, &a, 4096), 0);
	struct shmring_span p;
	cr_assert_eq(shmring_peek(r, &p, 0), 4096);
	cr_assert(t_check(p.data, 4096, 77));
	cr_assert_eq(shmring_release(r, &p), 0);
	shmring_detach(r);
}

/* Move the ring's position to slot `slot` (mod 64) by one-slot records. */
static void advance_to(struct shmring *r, size_t *pos, size_t slot)
{
	char c;
	while (*pos % (4096 / SHMRING_SLOT_SIZE) != slot) {
		cr_assert_eq(shmring_put(r, "s", 1, 0), 0);
		cr_assert_eq(shmring_get(r, &c, 1, 0), 1);
		(*pos)++;
	}
}

/* Reservations of every start slot, most of them running past the end of the
 * storage: the span is one contiguous, 64-byte aligned run. */
Test(zc, reserve_span_contiguous_across_wrap)
{
	struct shmring *r = t_ring(4096, 4096);
	size_t pos = 0;
	static char out[4096];
	for (size_t lap = 0; lap < 2; lap++) {
		for (size_t slot = 0; slot < 64; slot++) {
			size_t start = (slot + 17 * lap) % 64;
			advance_to(r, &pos, start);
			size_t len = 2048 + 31 * slot; /* 33..64 slots: wraps unless start is low */
			struct shmring_span sp;
			cr_assert_eq(shmring_reserve(r, len, &sp, 0), 0, "slot %zu", start);
			cr_assert(aligned(sp.data), "reserve at slot %zu: %p", start, sp.data);
			cr_assert_geq(sp.len, len);
			t_fill(sp.data, len, start * 1000 + len); /* writes the whole span linearly */
			cr_assert_eq(shmring_commit(r, &sp, len), 0);
			cr_assert_eq(shmring_get(r, out, sizeof out, 0), (ssize_t)len);
			cr_assert(t_check(out, len, start * 1000 + len), "slot %zu len %zu", start, len);
			pos += t_slots(len);
		}
	}
	shmring_detach(r);
}

Test(zc, peek_span_contiguous_across_wrap)
{
	struct shmring *r = t_ring(4096, 4096);
	size_t pos = 0;
	static char in[4096];
	for (size_t slot = 0; slot < 64; slot++) {
		advance_to(r, &pos, slot);
		size_t len = 4096 - slot * 13;
		t_fill(in, len, slot + 1);
		cr_assert_eq(shmring_put(r, in, len, 0), 0);
		struct shmring_span sp;
		cr_assert_eq(shmring_peek(r, &sp, 0), (ssize_t)len);
		cr_assert_eq(sp.len, len);
		cr_assert(aligned(sp.data), "peek at slot %zu: %p", slot, sp.data);
		cr_assert(t_check(sp.data, len, slot + 1), "peek at slot %zu len %zu", slot, len);
		cr_assert_eq(shmring_release(r, &sp), 0);
		pos += t_slots(len);
	}
	shmring_detach(r);
}

/* Several reservations in flight at once, committed out of order, and
 * several peeks released out of order. */
Test(zc, out_of_order_commit_and_release)
{
	struct shmring *r = t_ring(8192, 0);
	struct shmring_span s[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(shmring_reserve(r, 100 + (size_t)i, &s[i], 0), 0);
		t_fill(s[i].data, 100 + (size_t)i, (uint64_t)i);
	}
	static const int order[4] = { 2, 0, 3, 1 };
	for (int k = 0; k < 4; k++)
		cr_assert_eq(shmring_commit(r, &s[order[k]], 100 + (size_t)order[k]), 0);
	struct shmring_span p[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(shmring_peek(r, &p[i], 0), 100 + i);
		cr_assert(t_check(p[i].data, 100 + (size_t)i, (uint64_t)i));
	}
	for (int k = 0; k < 4; k++)
		cr_assert_eq(shmring_release(r, &p[order[k]]), 0);
	cr_assert_eq(t_info(r).used, 0);
	/* the ring is fully usable afterwards */
	static char big[2048];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(shmring_put(r, big, 2048, 0), 0);
	cr_assert_eq(shmring_put(r, big, 0, 0), -EAGAIN);
	shmring_detach(r);
}

/* Aborts wake a sleeping consumer, which skips them and so frees the room a
 * producer is waiting for: a producer that aborts over and over, with the
 * consumer asleep in another process, never gets stuck. */
static struct shmring *ab_ring;
static int ab_consumer(void *arg)
{
	(void)arg;
	shmring_set_spin(ab_ring, 0);
	char buf[64];
	ssize_t n = shmring_get(ab_ring, buf, sizeof buf, 20 * T_SEC);
	if (n != 3 || memcmp(buf, "end", 3) != 0)
		return 1;
	return 0;
}

Test(zc, aborts_with_a_sleeping_consumer_do_not_fill_the_ring)
{
	ab_ring = t_ring(4096, 0);
	pid_t pid = t_fork(ab_consumer, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(ab_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "consumer never slept");
	for (int i = 0; i < 300; i++) {
		struct shmring_span sp;
		int rc = shmring_reserve(ab_ring, 1000, &sp, 5 * T_SEC);
		cr_assert_eq(rc, 0, "reserve after %d aborts = %d", i, rc);
		cr_assert_eq(shmring_abort(ab_ring, &sp), 0);
	}
	cr_assert_eq(shmring_put(ab_ring, "end", 3, 5 * T_SEC), 0);
	t_expect_exit(pid, 0, 10 * T_SEC);
	shmring_detach(ab_ring);
}

/* shmring_span_position names a record for good: the reserve and the peek of
 * one record give the same position, positions grow in the order records are
 * taken, and never repeat over many laps (shmring-nats builds its Nats-Msg-Id
 * from it: docs/bridge.md). */
Test(zc, span_position_names_a_record)
{
	struct shmring *r = t_ring(4096, 0);
	uint64_t last = 0;
	for (int i = 0; i < 1000; i++) {   /* 4096 / 64 = 64 slots: ~30 laps */
		struct shmring_span w, p;
		size_t len = (size_t)(i % 150);
		cr_assert_eq(shmring_reserve(r, len, &w, 0), 0);
		uint64_t pos = shmring_span_position(&w);
		cr_assert_eq(shmring_commit(r, &w, len), 0);
		cr_assert_eq(shmring_peek(r, &p, 0), (ssize_t)len);
		cr_assert_eq(shmring_span_position(&p), pos, "record %d: reserved at %" PRIu64
		             ", peeked at %" PRIu64, i, pos, shmring_span_position(&p));
		cr_assert(i == 0 || pos > last, "record %d at %" PRIu64 " after %" PRIu64,
		          i, pos, last);
		last = pos;
		cr_assert_eq(shmring_release(r, &p), 0);
	}
	cr_assert_geq(last, 1000, "positions count slots across laps, not indices");
	shmring_detach(r);
}

/* A peeked span given to commit or abort, or a reserved one given to
 * release, is refused with -EINVAL and the ring goes on.  Before, each
 * returned 0: a commit of a peeked span wrote COMMITTED behind cons_head,
 * a release of a reserved one wrote RELEASED into an unpublished claim, and
 * the ring stalled for every process (found by a review, 2026-12-06). */
Test(zc, spans_of_the_other_kind_are_refused)
{
	for (int which = 0; which < 3; which++) {
		struct shmring *r = t_ring(4096, 0);
		struct shmring_span res, pk;
		cr_assert_eq(shmring_put(r, "first", 5, 0), 0);
		cr_assert_eq(shmring_peek(r, &pk, 0), 5);
		cr_assert_eq(shmring_reserve(r, 100, &res, 0), 0);
		struct shmring_span pk_copy = pk, res_copy = res;
		int rc = which == 0 ? shmring_commit(r, &pk_copy, 5)
		       : which == 1 ? shmring_abort(r, &pk_copy)
		                    : shmring_release(r, &res_copy);
		cr_assert_eq(rc, -EINVAL, "case %d: %d (%s)", which, rc, shmring_strerror(rc));
		/* each span still does what it is for, and the ring flows */
		memcpy(res.data, "reserved", 8);
		cr_assert_eq(shmring_commit(r, &res, 8), 0, "case %d", which);
		cr_assert_eq(shmring_release(r, &pk), 0, "case %d", which);
		char out[64];
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), 8, "case %d", which);
		cr_assert_eq(memcmp(out, "reserved", 8), 0);
		for (int i = 0; i < 100; i++) {
			cr_assert_eq(shmring_put(r, out, 60, 0), 0, "case %d: put #%d", which, i);
			cr_assert_eq(shmring_get(r, out, sizeof out, 0), 60, "case %d: get #%d", which, i);
		}
		cr_assert_eq(t_info(r).used, 0);
		shmring_detach(r);
	}
}
