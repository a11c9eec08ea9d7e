/*
 * fence.c - the waiter's half of the asymmetric fence, and the process's
 * registration for it (fence.h has the argument; docs/design.md section 4).
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fence.h"
#include "handle.h"

_Atomic bool shmring__fence_blind;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
/* This process is registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED: its
 * handles on light rings publish light.  Written once, under setup_once. */
static bool registered;

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* SHMRING_MEMBARRIER=0 (or "off", "no"): do not register; publish with the
 * seq_cst store.  Anything else, or unset: register if the kernel can. */
static bool told_not_to(void)
{
	const char *v = getenv("SHMRING_MEMBARRIER");
	return v && (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "no"));
}

static void setup(void)
{
	/* The waiter's barrier once now: a process that cannot issue it is
	 * blind from its first light handle on, before any sleep computes a
	 * slice (event_uring.c's re-check thread computes its own at its
	 * start). */
	shmring__fence_waiter();
	if (told_not_to())
		return;
	int saved = errno; /* a failure here is no error of the caller's */
	/* QUERY first: REGISTER on a kernel without the command is -EINVAL,
	 * but a seccomp filter may fail QUERY and REGISTER alike. */
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	registered = cmds >= 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
	             membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
	errno = saved;
}

void shmring__fence_choose(struct shmring *r, bool light_ring)
{
	r->light = r->fenced = false;
	if (!light_ring)
		return;
	/* pthread_once orders the registration before this handle's first
	 * put, and before any other thread's use of the handle */
	pthread_once(&setup_once, setup);
	r->light = registered;
	r->fenced = true;
}

/* The kernel has membarrier but not this command (-EINVAL: Linux 4.3 to
 * 4.15): no process of this machine can have registered, none publishes
 * light, and the waiters need no barrier.  -ENOMEM (the kernel's cpumask)
 * passes: the next sleep tries again, and this one may lose a wake for a
 * slice.  Any other failure (-EPERM, or -ENOSYS, from a seccomp filter, or
 * a kernel built without membarrier, which cannot be told apart) may hide
 * light notifiers elsewhere: blind. */
static _Atomic bool none_light;

void shmring__fence_waiter(void)
{
	if (atomic_load_explicit(&shmring__fence_blind, memory_order_relaxed) ||
	    atomic_load_explicit(&none_light, memory_order_relaxed))
		return;
	int saved = errno; /* callers report their own errors, not this one */
	if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 && errno != ENOMEM)
		atomic_store_explicit(errno == EINVAL ? &none_light : &shmring__fence_blind, true,
		                      memory_order_relaxed);
	errno = saved;
}
