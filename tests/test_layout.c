/*
 * test_layout.c - the inline record header (ABI 2) and what it must never do.
 *
 * A record's header sits at the start of its first slot; in its other slots
 * the first 8 bytes are payload.  When a later lap starts a record at such a
 * slot, a consumer reads the header word there before the new producer has
 * written it, so every release path zeroes those words first
 * (docs/design.md, section 2).  These tests put a payload that holds, at
 * exactly that place, the header a forged record of the next lap would have,
 * then bring cons_head there with nothing published: a get must wait, not
 * deliver the forgery.  Without the zeroing each of them fails.
 */
#include "common.h"

#include <stdatomic.h>
#include <string.h>

#include "layout.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

TestSuite(layout, .timeout = T_TIMEOUT, .fini = t_cleanup);

#define CAP    4096u
#define NSLOTS (CAP / SHMRING_SLOT_SIZE)
/* The payload offset of slot 1's first byte: one slot less the header. */
#define SLOT1  (SHMRING_SLOT_SIZE - SHMRING_RECORD_HEADER)
#define FORGED_LEN 10u

enum release_path { BY_GET, BY_GET_MANY, BY_PEEK_RELEASE };

/* A two-slot record at position 0 whose slot-1 bytes read as the header of
 * a committed FORGED_LEN-byte record at position NSLOTS + 1 (slot 1 of the
 * next lap). */
static void put_trap(struct shmring *r)
{
	unsigned char rec[SLOT1 + 16];
	memset(rec, 0x5a, sizeof rec);
	uint64_t seq = SLOT_SEQ(NSLOTS + 1, SLOT_COMMITTED);
	uint32_t len = FORGED_LEN, owner_flags = 0;
	memcpy(rec + SLOT1, &seq, 8);
	memcpy(rec + SLOT1 + 8, &len, 4);
	memcpy(rec + SLOT1 + 12, &owner_flags, 4);
	cr_assert_eq(SHMRING_RECORD_SLOTS(sizeof rec), 2);
	cr_assert_eq(shmring_put(r, rec, sizeof rec, 0), 0);
}

static void take_one(struct shmring *r, enum release_path how, size_t want)
{
	unsigned char buf[256];
	switch (how) {
	case BY_GET:
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), (ssize_t)want);
		break;
	case BY_GET_MANY: {
		struct iovec recs[1];
		cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 1, 0), 1);
		cr_assert_eq(recs[0].iov_len, want);
		break;
	}
	case BY_PEEK_RELEASE: {
		struct shmring_span sp;
		cr_assert_eq(shmring_peek(r, &sp, 0), (ssize_t)want);
		cr_assert_eq(shmring_release(r, &sp), 0);
		break;
	}
	}
}

static void forged_header_is_never_read(enum release_path how)
{
	struct shmring *r = t_ring(CAP, 0);
	put_trap(r);
	take_one(r, how, SLOT1 + 16);
	/* One-slot records from position 2 up to NSLOTS + 1: cons_head and
	 * prod_head both end at slot 1 of the next lap. */
	unsigned char one[8] = { 1 };
	for (uint64_t pos = 2; pos < NSLOTS + 1; pos++) {
		cr_assert_eq(shmring_put(r, one, sizeof one, 0), 0, "put at %llu",
		             (unsigned long long)pos);
		take_one(r, how, sizeof one);
	}
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.records, 0);
	unsigned char buf[256];
	ssize_t n = shmring_get(r, buf, sizeof buf, 0);
	cr_assert_eq(n, -EAGAIN, "an empty ring delivered %zd bytes: payload read as a header", n);
	cr_assert_eq(shmring_next_len(r), -EAGAIN);
	/* and the ring goes on normally from there */
	cr_assert_eq(shmring_put(r, one, 3, 0), 0);
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 3);
	shmring_detach(r);
}

Test(layout, get_zeroes_interior_header_words)
{
	forged_header_is_never_read(BY_GET);
}

Test(layout, get_many_zeroes_interior_header_words)
{
	forged_header_is_never_read(BY_GET_MANY);
}

Test(layout, peek_release_zeroes_interior_header_words)
{
	forged_header_is_never_read(BY_PEEK_RELEASE);
}

/* A skip record (an aborted reservation) leaves payload the producer wrote
 * before aborting; its release must zero that too. */
Test(layout, aborted_reservation_zeroes_interior_header_words)
{
	struct shmring *r = t_ring(CAP, 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_reserve(r, SLOT1 + 16, &sp, 0), 0);
	uint64_t seq = SLOT_SEQ(NSLOTS + 1, SLOT_COMMITTED);
	uint32_t len = FORGED_LEN;
	memcpy((unsigned char *)sp.data + SLOT1, &seq, 8);
	memcpy((unsigned char *)sp.data + SLOT1 + 8, &len, 4);
	memset((unsigned char *)sp.data + SLOT1 + 12, 0, 4);
	cr_assert_eq(shmring_abort(r, &sp), 0);
	unsigned char one[8] = { 1 }, buf[256];
	for (uint64_t pos = 2; pos < NSLOTS + 1; pos++) {
		cr_assert_eq(shmring_put(r, one, sizeof one, 0), 0);
		/* the first get passes over the skip record (and releases it) */
		cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), (ssize_t)sizeof one);
	}
	ssize_t n = shmring_get(r, buf, sizeof buf, 0);
	cr_assert_eq(n, -EAGAIN, "an empty ring delivered %zd bytes: payload read as a header", n);
	shmring_detach(r);
}

/* Where the header and the payload are: a span starts 16 bytes into a slot,
 * and the header before it carries the record's position and length. */
Test(layout, header_precedes_payload_in_the_same_slot)
{
	struct shmring *r = t_ring(CAP, 0);
	cr_assert_eq(shmring_put(r, "abc", 3, 0), 0);
	struct shmring_span sp;
	cr_assert_eq(shmring_peek(r, &sp, 0), 3);
	uintptr_t a = (uintptr_t)sp.data;
	cr_assert_eq(a % SHMRING_SLOT_SIZE, SHMRING_RECORD_HEADER);
	const struct slot_meta *h = (const struct slot_meta *)(a - SHMRING_RECORD_HEADER);
	cr_assert_eq(atomic_load(&h->seq), SLOT_SEQ(0, SLOT_COMMITTED));
	cr_assert_eq(atomic_load(&h->len), 3);
	cr_assert_eq(memcmp(sp.data, "abc", 3), 0);
	cr_assert_eq(shmring_release(r, &sp), 0);
	cr_assert_eq(atomic_load(&h->seq), SLOT_SEQ(0, SLOT_RELEASED));
	shmring_detach(r);
}
