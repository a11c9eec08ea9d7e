/*
 * bench_redeliver.c - what SHMRING_REDELIVER costs a peek/release: one
 * thread puts a 64-byte record, peeks it and releases it, N times, on a plain
 * ring and on a redelivery ring, alternating rounds.  Timed in thread CPU
 * time (CLOCK_THREAD_CPUTIME_ID), so that other processes on a loaded machine
 * change the figures less; the two-process stream figure is bench_quick's
 * `--only ring_zc,ring_zc_redeliver`.  Prints per-op ns (median and best of
 * the rounds) and the ratio of the medians (target: redeliver/plain time
 * <= 1.11, i.e. throughput within 10%).
 *
 * usage: bench_redeliver [--rounds N] [--ops N]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmring.h"
#include "shmring_zc.h"

static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ns per put + peek + release over ops operations. */
static double round_ns(struct shmring *r, long ops)
{
	unsigned char rec[64] = { 1 };
	struct shmring_span sp;
	double t0 = cpu_ns();
	for (long i = 0; i < ops; i++) {
		rec[0] = (unsigned char)i;
		if (shmring_put(r, rec, sizeof rec, 0) != 0 || shmring_peek(r, &sp, 0) != 64 ||
		    *(unsigned char *)sp.data != (unsigned char)i || shmring_release(r, &sp) != 0) {
			fprintf(stderr, "bench_redeliver: op %ld failed\n", i);
			exit(1);
		}
	}
	return (cpu_ns() - t0) / (double)ops;
}

int main(int argc, char **argv)
{
	int rounds = 15;
	long ops = 1000000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ops"))
			ops = atol(argv[i + 1]);
	}
	if (rounds < 1 || rounds > 1000 || ops < 1) {
		fprintf(stderr, "usage: bench_redeliver [--rounds N] [--ops N]\n");
		return 2;
	}
	struct shmring *ring[2];
	for (int k = 0; k < 2; k++) {
		struct shmring_config cfg = { .capacity = 65536,
		                              .flags = k ? SHMRING_REDELIVER : 0 };
		if (shmring_create(&ring[k], NULL, &cfg) != 0 || shmring_prefault(ring[k]) != 0) {
			fprintf(stderr, "bench_redeliver: create failed\n");
			return 1;
		}
		round_ns(ring[k], ops / 10); /* warm up */
	}
	double *t[2] = { calloc((size_t)rounds, sizeof(double)), calloc((size_t)rounds, sizeof(double)) };
	double *ratio = calloc((size_t)rounds, sizeof(double));
	for (int i = 0; i < rounds; i++) {
		/* alternate which goes first */
		int a = i & 1;
		t[a][i] = round_ns(ring[a], ops);
		t[!a][i] = round_ns(ring[!a], ops);
		ratio[i] = t[1][i] / t[0][i];
	}
	double best[2];
	for (int k = 0; k < 2; k++) {
		qsort(t[k], (size_t)rounds, sizeof(double), cmp_d);
		best[k] = t[k][0];
	}
	qsort(ratio, (size_t)rounds, sizeof(double), cmp_d);
	printf("put+peek+release, 64 B, one thread, %d rounds of %ld (thread CPU time)\n", rounds, ops);
	printf("  plain ring      median %6.1f ns  best %6.1f ns\n", t[0][rounds / 2], best[0]);
	printf("  REDELIVER ring  median %6.1f ns  best %6.1f ns\n", t[1][rounds / 2], best[1]);
	double r = ratio[rounds / 2];
	printf("target redeliver/plain time per op = %.3fx (<= 1.11x: %s); best/best %.3fx\n", r,
	       r <= 1.11 ? "PASS" : "MISS", best[1] / best[0]);
	shmring_detach(ring[0]);
	shmring_detach(ring[1]);
	return 0;
}
