/*
 * test_spin.c - the default spin (issue 11): a process pinned to one CPU
 * before it creates or opens a ring still spins before sleeping when the
 * machine has two or more CPUs (its peer may run on another); the ratio
 * this buys is measured by perf/bench_pinned.c, not here.
 */
#include "common.h"

#include <sched.h>

#include "handle.h" /* tests are built with -Iring: the handle's spin */

TestSuite(spin, .timeout = T_TIMEOUT, .fini = t_cleanup);

static int s_pinned_creates(void *arg)
{
	(void)arg;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof one, &one) != 0)
		return 10;
	struct shmring *r;
	if (shmring_create(&r, NULL, NULL) != 0)
		return 11;
	unsigned spin = r->spin;
	shmring_detach(r);
	const char *name = t_name("pinned");
	struct shmring_config cfg = { .capacity = 4096 };
	if (shmring_create(&r, name, &cfg) != 0)
		return 12;
	struct shmring *o;
	if (shmring_open(&o, name) != 0)
		return 13;
	unsigned spin_open = o->spin;
	shmring_detach(o);
	shmring_detach(r);
	shmring_unlink(name);
	return spin == 0 ? 20 : spin_open == 0 ? 21 : 0;
}

Test(spin, pinned_process_still_spins_on_a_multi_cpu_machine)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		cr_skip_test("one CPU online: spin 0 is right here");
	t_expect_exit(t_fork(s_pinned_creates, NULL), 0, 10 * T_SEC);
}
