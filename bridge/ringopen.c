/*
 * ringopen.c - open the bridge's ring, or create it.
 *
 * Where the library has SHMRING_PERSISTENT (issue 11: a ring whose last
 * producer or consumer going away is not end of stream or broken pipe), it
 * has shmring_open_or_create too, and a ring the bridge makes is persistent
 * (and, for out, SHMRING_REDELIVER where the library has it).
 * Without them this file does the same by hand: open, else create with
 * O_EXCL, else (another process created it in between) open.
 */
#include <errno.h>
#include <stdio.h>

#include "bridge.h"

int bridge_ring_open(struct shmring **ring, const struct bridge_args *a, unsigned roles)
{
	struct shmring_config cfg = {
		.capacity = a->capacity, .max_record = a->max_record, .flags = roles,
	};
	int rc;
#ifdef SHMRING_REDELIVER    /* issue 14 */
	/* The out bridge consumes at least once: a ring it makes gives a killed
	 * bridge's peeked, unacknowledged records back to its next run (the
	 * stream's duplicate window drops those already stored). */
	if (roles == SHMRING_CONSUMER)
		cfg.flags |= SHMRING_REDELIVER;
#endif
#ifdef SHMRING_PERSISTENT   /* issue 11: both came together */
	cfg.flags |= SHMRING_PERSISTENT;
	rc = shmring_open_or_create(ring, a->ring, &cfg);   /* roles declared either way */
	if (rc < 0) {
		fprintf(stderr, "shmring-nats %s: ring '%s': %s\n", a->mode, a->ring,
		        shmring_strerror(rc));
		return rc;
	}
	return 0;
#else
	rc = -ENOENT;
	for (int tries = 0; tries < 3 && rc < 0; tries++) {
		rc = shmring_open(ring, a->ring);
		if (rc == -ENOENT) {
			rc = shmring_create(ring, a->ring, &cfg);
			if (rc == 0)
				return 0;   /* roles declared by cfg.flags */
			if (rc != -EEXIST)
				break;
		} else if (rc < 0) {
			break;
		}
	}
	if (rc < 0) {
		fprintf(stderr, "shmring-nats %s: ring '%s': %s\n", a->mode, a->ring,
		        shmring_strerror(rc));
		return rc;
	}
	rc = shmring_declare(*ring, roles);
	if (rc < 0) {
		fprintf(stderr, "shmring-nats %s: ring '%s': declare: %s\n", a->mode, a->ring,
		        shmring_strerror(rc));
		shmring_detach(*ring);
		*ring = NULL;
	}
	return rc;
#endif
}
