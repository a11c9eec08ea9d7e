/*
 * ringopen.c - open the bridge's ring, or create it.
 *
 * A ring the bridge makes is persistent (SHMRING_PERSISTENT: a bridge
 * restart is never end of stream or broken pipe for the ring's other
 * users) and, for out, SHMRING_REDELIVER (a killed bridge's peeked,
 * unacknowledged records are given back to its next run).  A ring that
 * exists is opened as it is: bridge_ring_redelivers says what it does.
 */
#include <errno.h>
#include <stdio.h>

#include "bridge.h"

int bridge_ring_open(struct shmring **ring, const struct bridge_args *a, unsigned roles)
{
	struct shmring_config cfg = {
		.capacity = a->capacity, .max_record = a->max_record,
		.flags = roles | SHMRING_PERSISTENT,
	};
	/* The out bridge consumes at least once: the stream's duplicate
	 * window drops the records given back that it had already stored. */
	if (roles == SHMRING_CONSUMER)
		cfg.flags |= SHMRING_REDELIVER;
	int rc = shmring_open_or_create(ring, a->ring, &cfg);   /* roles declared either way */
	if (rc < 0)
		fprintf(stderr, "shmring-nats %s: ring '%s': %s\n", a->mode, a->ring,
		        shmring_strerror(rc));
	return rc < 0 ? rc : 0;
}

bool bridge_ring_redelivers(struct shmring *ring)
{
	struct shmring_info info;
	return shmring_info(ring, &info) == 0 && (info.delivery & SHMRING_REDELIVER);
}
