/*
 * test_sweep_noalloc.c - a sweep calls no allocator, not even one that
 * recovers a dead producer's claim with many live claims around it.
 *
 * Why: a sweep may run in a library thread (an event fd's watcher) while
 * another thread of the process forks.  A child forked while that thread
 * held the allocator's lock hangs at its first malloc where the allocator
 * has no fork handler (ASan's: eventfd::forked_child_* hung so, 2 in 16,
 * until the sweep's liveness cache became the handle's).  The recovery's
 * snapshot of the live claims still came from malloc and realloc, and
 * glibc's qsort (2.36 here, and later ones) mallocs a buffer for 64 or more
 * (recover.c now maps and sorts them itself).
 *
 * How: this file replaces malloc, calloc, realloc and free for the whole
 * test program (glibc's manual documents replacing these four; exported,
 * so that calls from inside glibc, as qsort's, come here too), forwarding
 * to glibc's own __libc_* entry points, and counts the calls a thread makes
 * while its flag is set.  A control (glibc's qsort, which mallocs inside
 * glibc) proves the counting sees such calls.  ASan owns malloc in the asan
 * build: the test is skipped there.
 */
#include "common.h"

#include "shmring_zc.h"
#include "attach.h" /* tests are built with -Iring: shmring__reap */

TestSuite(sweep_noalloc, .timeout = T_TIMEOUT);

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(NA_ASAN)
#define NA_COUNTS 0
#else
#define NA_COUNTS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
/* per thread: another thread's allocations are not counted (nor raced) */
static __thread int na_counting;
static __thread long na_calls;

#define NA_EXPORT __attribute__((visibility("default"))) /* the build hides symbols */
NA_EXPORT void *malloc(size_t n)
{
	na_calls += na_counting;
	return __libc_malloc(n);
}
NA_EXPORT void *calloc(size_t n, size_t size)
{
	na_calls += na_counting;
	return __libc_calloc(n, size);
}
NA_EXPORT void *realloc(void *p, size_t n)
{
	na_calls += na_counting;
	return __libc_realloc(p, n);
}
NA_EXPORT void free(void *p)
{
	na_calls += na_counting && p;
	__libc_free(p);
}
#endif

#if NA_COUNTS
#define NA_HANDLES 3
#define NA_SPANS   40 /* per live handle: 120 live claims, over qsort's 1 KiB */

static struct shmring *na_ring;

static int na_key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The child: a producer that dies holding a reservation. */
static int na_reserve_and_hang(void *arg)
{
	int *ready = arg;
	close(ready[0]);
	struct shmring_span sp;
	if (shmring_reserve(na_ring, 16, &sp, 0) != 0)
		return 1;
	if (write(ready[1], "r", 1) != 1)
		return 2;
	for (;;)
		pause();
}
#endif

Test(sweep_noalloc, a_sweep_recovering_a_dead_producer_calls_no_allocator)
{
#if !NA_COUNTS
	cr_skip_test("the asan build's malloc is ASan's");
#else
	na_ring = t_ring(1u << 16, 64);
	/* Live claims around the dead one: reservations held by other
	 * handles (each its own attachment entry) of this process. */
	struct shmring *live[NA_HANDLES];
	struct shmring_span sp[NA_HANDLES][NA_SPANS];
	for (int h = 0; h < NA_HANDLES; h++) {
		cr_assert_eq(shmring_attach_fd(&live[h], shmring_fd(na_ring)), 0);
		for (int k = 0; k < NA_SPANS / 2; k++)
			cr_assert_eq(shmring_reserve(live[h], 16, &sp[h][k], 0), 0);
	}
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = t_fork(na_reserve_and_hang, ready);
	close(ready[1]);
	char b;
	cr_assert_eq(read(ready[0], &b, 1), 1, "the child did not reserve");
	close(ready[0]);
	for (int h = 0; h < NA_HANDLES; h++) /* and after it */
		for (int k = NA_SPANS / 2; k < NA_SPANS; k++)
			cr_assert_eq(shmring_reserve(live[h], 16, &sp[h][k], 0), 0);
	t_kill_and_reap(pid);

	/* The control: glibc's qsort of 1 KiB or more mallocs inside glibc
	 * (what recover.c's snapshot sort did), and is counted. */
	uint64_t keys[256];
	for (int i = 0; i < 256; i++)
		keys[i] = (uint64_t)(i * 7919 % 256);
	long before = na_calls;
	na_counting = 1;
	qsort(keys, 256, sizeof keys[0], na_key_cmp);
	na_counting = 0;
	cr_assert_gt(na_calls - before, 0, "qsort's allocation was not counted");
	cr_assert(keys[0] == 0 && keys[255] == 255);

	before = na_calls;
	na_counting = 1;
	int reaped = shmring__reap(na_ring);
	na_counting = 0;
	long calls = na_calls - before;
	cr_assert_eq(reaped, 1, "the sweep reaped %d entries", reaped);
	cr_assert_geq(t_info(na_ring).recovered_claims, 1, "the dead claim was not recovered");
	cr_assert_eq(calls, 0, "the sweep made %ld allocator calls", calls);

	for (int h = 0; h < NA_HANDLES; h++) {
		for (int k = 0; k < NA_SPANS; k++)
			cr_assert_eq(shmring_commit(live[h], &sp[h][k], 16), 0);
		shmring_detach(live[h]);
	}
	shmring_detach(na_ring);
#endif
}
