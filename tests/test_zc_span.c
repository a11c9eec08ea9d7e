/*
 * test_zc_span.c - a span whose reserve or peek failed is refused by commit,
 * abort and release (-EINVAL), whatever garbage it held before the call:
 * nothing is published, released or counted, and the ring goes on working.
 */
#include "common.h"

TestSuite(zc_span, .timeout = T_TIMEOUT);

static void garbage(struct shmring_span *sp)
{
	memset(sp, 0xa5, sizeof *sp);
}

/* Every call that takes a span refuses this one, and the ring is intact. */
static void expect_refused(struct shmring *r, struct shmring_span *sp, const char *after)
{
	cr_assert_null(sp->data, "span data after failed %s", after);
	cr_assert_eq(shmring_commit(r, sp, 0), -EINVAL, "commit after failed %s", after);
	cr_assert_eq(shmring_abort(r, sp), -EINVAL, "abort after failed %s", after);
	cr_assert_eq(shmring_release(r, sp), -EINVAL, "release after failed %s", after);
}

Test(zc_span, failed_reserve_leaves_a_span_commit_and_abort_refuse)
{
	struct shmring *r = t_ring(4096, 1024);
	struct shmring_span sp;

	garbage(&sp);
	cr_assert_eq(shmring_reserve(r, 1025, &sp, 0), -EMSGSIZE);
	expect_refused(r, &sp, "reserve (-EMSGSIZE)");

	garbage(&sp);
	cr_assert_eq(shmring_reserve(NULL, 1, &sp, 0), -EINVAL);
	expect_refused(r, &sp, "reserve (NULL ring)");

	/* a full ring: -EAGAIN */
	size_t n = 0;
	while (shmring_put(r, "x", 1, 0) == 0)
		n++;
	cr_assert_gt(n, 0);
	garbage(&sp);
	cr_assert_eq(shmring_reserve(r, 64, &sp, 0), -EAGAIN);
	expect_refused(r, &sp, "reserve (-EAGAIN)");
	garbage(&sp);
	cr_assert_eq(shmring_reserve(r, 64, &sp, 10 * T_MS), -ETIMEDOUT);
	expect_refused(r, &sp, "reserve (-ETIMEDOUT)");

	/* nothing was published or counted by the refused calls */
	cr_assert_eq(shmring_unfinished(r), n);
	char c;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(shmring_get(r, &c, 1, 0), 1);
	cr_assert_eq(shmring_get(r, &c, 1, 0), -EAGAIN);

	/* a closed ring: -EPIPE */
	cr_assert_eq(shmring_close(r), 0);
	garbage(&sp);
	cr_assert_eq(shmring_reserve(r, 8, &sp, 0), -EPIPE);
	expect_refused(r, &sp, "reserve (-EPIPE)");
	shmring_detach(r);
}

Test(zc_span, failed_peek_leaves_a_span_release_refuses)
{
	struct shmring *r = t_ring(4096, 1024);
	struct shmring_span sp;

	garbage(&sp);
	cr_assert_eq(shmring_peek(r, &sp, 0), -EAGAIN);
	expect_refused(r, &sp, "peek (-EAGAIN)");
	garbage(&sp);
	cr_assert_eq(shmring_peek(r, &sp, 10 * T_MS), -ETIMEDOUT);
	expect_refused(r, &sp, "peek (-ETIMEDOUT)");
	garbage(&sp);
	cr_assert_eq(shmring_peek(NULL, &sp, 0), -EINVAL);
	expect_refused(r, &sp, "peek (NULL ring)");

	/* a record that is there: peek and release work as ever, and a
	 * second release of the same span is refused */
	cr_assert_eq(shmring_put(r, "abc", 3, 0), 0);
	garbage(&sp);
	cr_assert_eq(shmring_peek(r, &sp, 0), 3);
	cr_assert(memcmp(sp.data, "abc", 3) == 0);
	cr_assert_eq(shmring_release(r, &sp), 0);
	cr_assert_eq(shmring_release(r, &sp), -EINVAL);

	cr_assert_eq(shmring_close(r), 0);
	garbage(&sp);
	cr_assert_eq(shmring_peek(r, &sp, 0), -EPIPE);
	expect_refused(r, &sp, "peek (-EPIPE)");
	shmring_detach(r);
}
