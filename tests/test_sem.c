/*
 * test_sem.c - struct shmring_sem: counting semantics, errors, timeouts, and
 * its use across processes (a blocked acquirer woken by another process's
 * release; many processes never holding more units than there are).
 */
#include "common.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "shmring_sem.h"

TestSuite(sem, .timeout = T_TIMEOUT);

/* One semaphore in a memfd; each process maps it itself (the children map
 * it again after fork, at an address of their own). */
static int sem_fd(void)
{
	int fd = memfd_create("test_sem", MFD_CLOEXEC);
	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	cr_assert_eq(ftruncate(fd, 4096), 0);
	return fd;
}

static struct shmring_sem *sem_map(int fd)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : (struct shmring_sem *)((char *)p + 64);
}

Test(sem, counts_and_errors)
{
	struct shmring_sem *s = sem_map(sem_fd());
	cr_assert_not_null(s);
	cr_assert_eq(shmring_sem_init(s, 2, 1), -EINVAL, "value above max");
	cr_assert_eq(shmring_sem_init(s, -1, 1), -EINVAL);
	cr_assert_eq(shmring_sem_init(NULL, 0, 1), -EINVAL);
	cr_assert_eq(shmring_sem_init(s, 3, 5), 0);
	cr_assert_eq(shmring_sem_value(s), 3);
	cr_assert_eq(shmring_sem_max(s), 5);
	cr_assert_eq(shmring_sem_try_acquire(s, 0), -EINVAL);
	cr_assert_eq(shmring_sem_try_acquire(s, 2), 2);
	cr_assert_eq(shmring_sem_try_acquire(s, 4), 1, "takes what is there, up to want");
	cr_assert_eq(shmring_sem_try_acquire(s, 1), -EAGAIN);
	cr_assert_eq(shmring_sem_acquire(s, 1, 0), -EAGAIN, "timeout 0 never waits");
	cr_assert_eq(shmring_sem_value(s), 0);
	cr_assert_eq(shmring_sem_release(s, 0), -EINVAL);
	cr_assert_eq(shmring_sem_release(s, 5), 0);
	cr_assert_eq(shmring_sem_release(s, 1), -ERANGE, "above max");
	cr_assert_eq(shmring_sem_release(s, INT64_MAX), -ERANGE);
	cr_assert_eq(shmring_sem_value(s), 5, "unchanged after -ERANGE");
	cr_assert_eq(shmring_sem_acquire(s, 5, -1), 5);
	/* a corrupt shared value is refused, not trusted */
	*(volatile int64_t *)s = -7;
	cr_assert_eq(shmring_sem_try_acquire(s, 1), -EBADMSG);
	cr_assert_eq(shmring_sem_release(s, 1), -EBADMSG);
	*(volatile int64_t *)s = 99;
	cr_assert_eq(shmring_sem_acquire(s, 1, 10 * T_MS), -EBADMSG);
}

Test(sem, acquire_times_out)
{
	struct shmring_sem *s = sem_map(sem_fd());
	cr_assert_eq(shmring_sem_init(s, 0, 1), 0);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_sem_acquire(s, 1, 80 * T_MS), -ETIMEDOUT);
	int64_t took = t_now_ns() - t0;
	cr_assert_geq(took, 80 * T_MS, "returned after %lld ns", (long long)took);
	cr_assert_eq(shmring_sem_value(s), 0);
}

/* ------------------------------------------------------- across processes */

static int g_fd;

static int blocked_acquirer(void *arg)
{
	(void)arg;
	struct shmring_sem *s = sem_map(g_fd);
	if (!s)
		return 2;
	int64_t k = shmring_sem_acquire(s, 4, 20 * T_SEC);
	return k == 3 ? 0 : 3;
}

Test(sem, release_in_one_process_wakes_an_acquirer_in_another)
{
	g_fd = sem_fd();
	struct shmring_sem *s = sem_map(g_fd);
	cr_assert_eq(shmring_sem_init(s, 0, 10), 0);
	pid_t p = t_fork(blocked_acquirer, NULL);
	t_sleep_ns(150 * T_MS);             /* let it spin out and sleep */
	cr_assert_eq(shmring_sem_value(s), 0, "nothing taken before the release");
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_sem_release(s, 3), 0);
	t_expect_exit(p, 0, T_WAKE_BOUND_NS);
	cr_assert_lt(t_now_ns() - t0, T_WAKE_BOUND_NS);
	cr_assert_eq(shmring_sem_value(s), 0, "the acquirer took all 3");
}

#define HOLDERS_MAX 3
#define WORKERS 6
#define ROUNDS 3000

struct census {
	_Atomic int holding;
	_Atomic int most;
};
static struct census *g_census;

static int holder(void *arg)
{
	(void)arg;
	struct shmring_sem *s = sem_map(g_fd);
	if (!s)
		return 2;
	for (int i = 0; i < ROUNDS; i++) {
		int64_t k = shmring_sem_acquire(s, 1 + i % 2, 10 * T_SEC);
		if (k < 1 || k > 2)
			return 3;
		int now = atomic_fetch_add(&g_census->holding, (int)k) + (int)k;
		int most = atomic_load(&g_census->most);
		while (now > most && !atomic_compare_exchange_weak(&g_census->most, &most, now))
			;
		if (i % 64 == 0)
			sched_yield();
		atomic_fetch_sub(&g_census->holding, (int)k);
		if (shmring_sem_release(s, k) != 0)
			return 4;
	}
	return 0;
}

Test(sem, processes_never_hold_more_than_max)
{
	g_fd = sem_fd();
	g_census = t_shared(sizeof *g_census);
	struct shmring_sem *s = sem_map(g_fd);
	cr_assert_eq(shmring_sem_init(s, HOLDERS_MAX, HOLDERS_MAX), 0);
	pid_t p[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		p[i] = t_fork(holder, NULL);
	for (int i = 0; i < WORKERS; i++)
		t_expect_exit(p[i], 0, 30 * T_SEC);
	cr_assert_leq(atomic_load(&g_census->most), HOLDERS_MAX, "held at once: %d",
	              atomic_load(&g_census->most));
	cr_assert_eq(shmring_sem_value(s), HOLDERS_MAX, "every unit came back");
}
