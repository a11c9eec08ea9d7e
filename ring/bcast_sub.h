/*
 * bcast_sub.h - one handle's subscription to a broadcast ring (private;
 * subscriber.c).  Process-local: the shared part (cursor, lost count,
 * policy) is in the handle's attachment entry (layout.h).
 */
#ifndef SHMRING_BCAST_SUB_H
#define SHMRING_BCAST_SUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct bcast_sub {
	unsigned         flags;     /* SHMRING_SUB_*; valid while active */
	bool             active;    /* subscribed, in this entry, this process */
	int              slot;      /* the attachment entry it subscribed in */
	unsigned         fork_gen;  /* shmring__fork_gen then: a child is not subscribed */
	/* The next position to read (atomic: the event fd's watcher thread
	 * reads it to decide readiness). */
	_Atomic uint64_t next;
	uint64_t         recno;     /* records (skips excluded) below next, mod 2^48 */
	uint64_t         lost;      /* running total (mirrored in the entry) */
	bool             lapped;    /* the next get reports -EOVERFLOW */
	bool             holding;   /* a peeked record not yet released */
	uint64_t         held_pos;
};

#endif /* SHMRING_BCAST_SUB_H */
