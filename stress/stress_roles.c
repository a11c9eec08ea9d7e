/*
 * stress_roles.c - the first producer or consumer to join a ring must not
 * make anyone see end of stream or a broken pipe while it joins.
 *
 * Each iteration makes a fresh ring with two handles (one per role, as two
 * processes would have).  One thread takes its role and then polls with
 * timeout 0 while a second thread declares the other role, for the first
 * time on that ring:
 *   put-side: the producer polls shmring_put while the first consumer joins;
 *             -EPIPE (broken pipe) would mean "every consumer has gone".
 *   get-side: the consumer polls shmring_get on the empty ring while the
 *             first producer joins; -EPIPE would mean "end of stream".
 * Neither is true at any moment, so either is a violation.
 *
 * usage: stress_roles [--iterations N]   (default 5000 per side)
 * Prints "stress_roles: OK ..." or "stress_roles: FAIL ..." (exit 1).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmring.h"

struct round {
	struct shmring *joiner;	/* the handle that takes its role now */
	unsigned role;
	atomic_int go, joined;
};

static void *join_thread(void *arg)
{
	struct round *r = arg;

	while (!atomic_load(&r->go))
		;
	int rc = shmring_declare(r->joiner, r->role);
	if (rc)
		fprintf(stderr, "stress_roles: shmring_declare: %s\n", shmring_strerror(rc));
	atomic_store(&r->joined, 1);
	return NULL;
}

/* One iteration; returns 1 if the poller saw -EPIPE. */
static int one_round(int get_side)
{
	struct shmring_config cfg = { .capacity = 4096 };
	struct shmring *prod, *cons;
	struct round r;
	pthread_t t;
	char buf[64] = { 0 };
	int hit = 0, rc;

	rc = shmring_create(&prod, NULL, &cfg);
	if (rc == 0)
		rc = shmring_attach_fd(&cons, shmring_fd(prod));
	if (rc) {
		fprintf(stderr, "stress_roles: FAIL setup: %s\n", shmring_strerror(rc));
		exit(2);
	}
	/* the poller has its role already; the joiner is the first of its kind */
	shmring_declare(get_side ? cons : prod, get_side ? SHMRING_CONSUMER : SHMRING_PRODUCER);
	r.joiner = get_side ? prod : cons;
	r.role = get_side ? SHMRING_PRODUCER : SHMRING_CONSUMER;
	atomic_init(&r.go, 0);
	atomic_init(&r.joined, 0);
	pthread_create(&t, NULL, join_thread, &r);
	atomic_store(&r.go, 1);
	while (!atomic_load(&r.joined) && !hit) {
		/* a put fills the ring soon (-EAGAIN then), which is fine */
		long n = get_side ? (long)shmring_get(cons, buf, sizeof buf, 0)
				  : (long)shmring_put(prod, buf, 8, 0);
		hit = n == -EPIPE;
	}
	pthread_join(t, NULL);
	shmring_detach(cons);
	shmring_detach(prod);
	return hit;
}

int main(int argc, char **argv)
{
	long iterations = 5000;
	long hits[2] = { 0, 0 };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
			iterations = atol(argv[++i]);
		} else {
			fprintf(stderr, "usage: stress_roles [--iterations N]\n");
			return 2;
		}
	}
	for (int side = 0; side < 2; side++)
		for (long i = 0; i < iterations; i++)
			hits[side] += one_round(side);

	int bad = hits[0] || hits[1];
	printf("stress_roles: %s iterations=%ld put_saw_broken_pipe=%ld get_saw_end_of_stream=%ld\n",
	       bad ? "FAIL" : "OK", iterations, hits[0], hits[1]);
	return bad;
}
