/*
 * test_maxrecord.c - max_record and its 32-bit limit: a capacity above 8 GiB
 * (rounded to 16 GiB) with the default max_record works, its max_record
 * being SHMRING_MAX_RECORD_LIMIT; an explicit max_record over the limit is
 * -EINVAL.  The 16 GiB rings are sparse (SHMRING_NO_RESERVE, anonymous) and
 * only a few of their pages are ever touched: no call here walks the ring.
 */
#include "common.h"

TestSuite(maxrecord, .timeout = T_TIMEOUT);

#define MR_BIG ((size_t)16 << 30)
#define OFF_MAX_RECORD 24   /* ring/layout.h, ABI 1 (test_validate.c checks it) */

static uint64_t header_max_record(struct shmring *r)
{
	uint64_t v = 0;
	cr_assert_eq(pread(shmring_fd(r), &v, 8, OFF_MAX_RECORD), 8);
	return v;
}

Test(maxrecord, default_fits_a_capacity_above_8_gib)
{
	/* 9 GiB rounds up to 16 GiB: capacity / 4 would be 4 GiB */
	size_t caps[] = { (size_t)9 << 30, MR_BIG };
	for (size_t i = 0; i < 2; i++) {
		struct shmring_config cfg = { .capacity = caps[i], .flags = SHMRING_NO_RESERVE };
		struct shmring *r = NULL;
		int rc = shmring_create(&r, NULL, &cfg);
		cr_assert_eq(rc, 0, "create(capacity %zu, default max_record) = %d (%s)", caps[i],
		             rc, shmring_strerror(rc));
		cr_assert_eq(header_max_record(r), SHMRING_MAX_RECORD_LIMIT);
		/* the limit is the handle's bound too (checked before touching
		 * anything: the data pointer is never read) */
		char small[16] = "0123456789abcdef";
		cr_assert_eq(shmring_put(r, small, SHMRING_MAX_RECORD_LIMIT + 1, 0), -EMSGSIZE);
		struct shmring_span sp;
		cr_assert_eq(shmring_reserve(r, SHMRING_MAX_RECORD_LIMIT + 1, &sp, 0), -EMSGSIZE);
		/* a reservation of the largest record: its slots fit, nothing is
		 * written but two meta entries */
		cr_assert_eq(shmring_reserve(r, SHMRING_MAX_RECORD_LIMIT, &sp, 0), 0);
		cr_assert_eq(sp.len, SHMRING_MAX_RECORD_LIMIT);
		cr_assert_eq(shmring_abort(r, &sp), 0);
		/* and the ring works */
		cr_assert_eq(shmring_put(r, small, sizeof small, 0), 0);
		char got[32];
		cr_assert_eq(shmring_get(r, got, sizeof got, 0), (ssize_t)sizeof small);
		cr_assert(memcmp(got, small, sizeof small) == 0);
		shmring_detach(r);
	}
}

Test(maxrecord, explicit_max_record_over_the_limit_is_einval)
{
	struct shmring_config cfg = { .capacity = MR_BIG, .flags = SHMRING_NO_RESERVE,
	                              .max_record = SHMRING_MAX_RECORD_LIMIT + 1 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.max_record = (size_t)4 << 30;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.max_record = SHMRING_MAX_RECORD_LIMIT;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	cr_assert_eq(header_max_record(r), SHMRING_MAX_RECORD_LIMIT);
	shmring_detach(r);
	/* below 16 GiB the default is still capacity / 4 */
	cfg = (struct shmring_config){ .capacity = (size_t)8 << 30, .flags = SHMRING_NO_RESERVE };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	cr_assert_eq(header_max_record(r), (uint64_t)2 << 30);
	shmring_detach(r);
}
