/*
 * ringopen.c - open the bridge's ring, or create it.
 *
 * Issue 11 brings shmring_open_or_create and SHMRING_PERSISTENT (a ring whose
 * last producer or consumer going away is not end of stream or broken pipe).
 * Until both are in the library this file does the same by hand: open, else
 * create with O_EXCL, else (another process created it in between) open.
 * Where SHMRING_PERSISTENT is defined the ring is created with it.
 */
#include <errno.h>
#include <stdio.h>

#include "bridge.h"

int bridge_ring_open(struct shmring **ring, const struct bridge_args *a, unsigned roles)
{
	struct shmring_config cfg = {
		.capacity = a->capacity, .max_record = a->max_record, .flags = roles,
	};
#ifdef SHMRING_PERSISTENT
	cfg.flags |= SHMRING_PERSISTENT;
#endif
	int rc = -ENOENT;
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
}
