/*
 * registry.c - this process's handles: a list under one mutex (a handful of
 * handles per process needs nothing cleverer), which attach.c holds across
 * fork() and while it changes a handle's entry.
 */
#include <pthread.h>

#include "attach.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_serial = 1;     /* under registry_lock */
static struct shmring *registry;     /* this process's handles */
_Atomic unsigned shmring__fork_gen;  /* + 1 in every fork child (attach.c) */

void shmring__registry_lock(void)
{
	pthread_mutex_lock(&registry_lock);
}

void shmring__registry_unlock(void)
{
	pthread_mutex_unlock(&registry_lock);
}

struct shmring *shmring__registry_first(void)
{
	return registry;
}

void shmring__registry_add(struct shmring *r)
{
	r->serial = next_serial++;
	r->reg_next = registry;
	r->reg_prev = NULL;
	if (registry)
		registry->reg_prev = r;
	registry = r;
}

void shmring__registry_remove(struct shmring *r)
{
	if (r->reg_prev)
		r->reg_prev->reg_next = r->reg_next;
	else if (registry == r)
		registry = r->reg_next;
	if (r->reg_next)
		r->reg_next->reg_prev = r->reg_prev;
}

bool shmring__with_handle(uint64_t serial, void (*f)(struct shmring *r, void *arg), void *arg)
{
	bool found = false;
	pthread_mutex_lock(&registry_lock);
	for (struct shmring *r = registry; r; r = r->reg_next) {
		if (r->serial == serial) {
			f(r, arg);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return found;
}
