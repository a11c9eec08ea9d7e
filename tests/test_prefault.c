/*
 * test_prefault.c - shmring_prefault maps the whole ring in, so that a lap of
 * puts and gets (wrapping records included) takes no page fault; without it
 * the same lap on a fresh ring faults every page in.  A file shrunk under
 * the mapping is reported, not a SIGBUS.
 */
#include "common.h"

#include <sys/resource.h>

TestSuite(prefault, .timeout = T_TIMEOUT);

#define CAP (1u << 20) /* 256 data pages, 64 meta pages */

/* Faults a lap may take that are not the ring's: this test's own stack and
 * libc (2 seen); under ASan also the shadow pages of the ring's addresses,
 * which its checks touch (40 seen: one per 8 ring pages). */
#ifdef __SANITIZE_ADDRESS__
#define SLACK (CAP / 4096 / 4)
#else
#define SLACK 8
#endif

static long minor_faults(void)
{
	struct rusage ru;
	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_minflt;
}

/* A lap and a half of records of every size up to 3000 bytes (so that some
 * wrap into the data region's second view); returns the minor faults taken. */
static long lap_faults(struct shmring *r)
{
	static unsigned char in[4096], out[4096];
	long before = minor_faults();
	size_t moved = 0;
	for (uint64_t i = 0; moved < CAP + CAP / 2; i++) {
		size_t len = (size_t)(i * 977) % 3000;
		int rc = shmring_put(r, in, len, 0);
		if (rc)
			return -1000000 + rc;
		if (shmring_get(r, out, sizeof out, 0) != (ssize_t)len)
			return -2000000;
		moved += len ? len : 1;
	}
	return minor_faults() - before;
}

static struct shmring *fresh_ring(void)
{
	struct shmring *r = t_ring(CAP, 4096);
	cr_assert_eq(shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER), 0);
	/* this process's own first-use costs, out of the count */
	static unsigned char b[4096];
	cr_assert_eq(shmring_put(r, b, 1, 0), 0);
	cr_assert_eq(shmring_get(r, b, sizeof b, 0), 1);
	return r;
}

Test(prefault, a_lap_after_prefault_takes_no_page_fault)
{
	struct shmring *r = fresh_ring();
	/* a record in the ring across the prefault: its contents untouched */
	unsigned char rec[300], back[300];
	t_fill(rec, sizeof rec, 42);
	cr_assert_eq(shmring_put(r, rec, sizeof rec, 0), 0);
	cr_assert_eq(shmring_prefault(r), 0);
	cr_assert_eq(shmring_get(r, back, sizeof back, 0), (ssize_t)sizeof back);
	cr_assert(t_check(back, sizeof back, 42), "the record changed across the prefault");
	long n = lap_faults(r);
	cr_assert_geq(n, 0, "the lap failed: %ld", n);
	cr_assert_leq(n, SLACK, "%ld page faults in a lap of a prefaulted ring", n);
	shmring_detach(r);
}

/* The converse, so that the count is known to see the ring's pages. */
Test(prefault, a_lap_of_a_fresh_ring_faults_its_pages_in)
{
	struct shmring *r = fresh_ring();
	long n = lap_faults(r);
	cr_assert_geq(n, (long)(CAP / 4096), "only %ld page faults in the first lap of a fresh "
	              "ring of %u pages", n, CAP / 4096);
	shmring_detach(r);
}

Test(prefault, null_is_einval)
{
	cr_assert_eq(shmring_prefault(NULL), -EINVAL);
}

Test(prefault, named_file_shrunk_under_the_mapping_is_efault)
{
	struct t_shrunk s = t_shrunk_ring("prefault");
	int rc = shmring_prefault(s.r);
	cr_assert_eq(rc, -EFAULT, "prefault of a shrunk file = %d", rc);
	t_shrunk_restore(&s);
	cr_assert_eq(shmring_prefault(s.r), 0);
	shmring_detach(s.r);
	cr_assert_eq(shmring_unlink(s.name), 0);
}
