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

bool shmring__fence_light;
_Atomic bool shmring__fence_blind;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

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
	if (told_not_to())
		return;
	/* QUERY first: REGISTER on a kernel without the command is -EINVAL,
	 * but a seccomp filter may fail QUERY and REGISTER alike. */
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		return;
	if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
		return;
	/* before any handle of this process exists, hence before any put:
	 * pthread_once orders it before every caller's return */
	shmring__fence_light = true;
}

void shmring__fence_setup(void)
{
	pthread_once(&setup_once, setup);
}

void shmring__fence_waiter(void)
{
	if (atomic_load_explicit(&shmring__fence_blind, memory_order_relaxed))
		return;
	int saved = errno; /* callers report their own errors, not this one */
	if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0)
		atomic_store_explicit(&shmring__fence_blind, true, memory_order_relaxed);
	errno = saved;
}
