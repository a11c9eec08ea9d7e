/*
 * pair_cost.c - the software cost of one uncontended put + get pair, for
 * callgrind (instruction counts do not depend on the machine's load).
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       build/release/perf/pair_cost 100000 [put|zc|batch|empty] [MAX_RECORD]
 *
 * Only the timed loop is instrumented (CALLGRIND_START/STOP_INSTRUMENTATION
 * around it, when valgrind's header is installed), so callgrind's total is
 * that loop's instructions; divided by the pairs, the cost of one pair.
 * Outside valgrind it prints ns per pair (one process, one thread: no line
 * transfers, only the operations' own work).
 *
 *   put    shmring_put(64 B, timeout 0) then shmring_get(timeout 0)
 *   zc     shmring_reserve/commit then shmring_peek/release
 *   batch  shmring_put_many/get_many of 32 records: cost per record
 *   empty  shmring_get(timeout 0) on an empty ring: the cost of one poll
 *
 * Records are 64 bytes, or MAX_RECORD if that is smaller (the ring is made
 * with it: 48 or less is the inline layout, <shmring.h>).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "perf_common.h"
#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#define REC_MAX 64
static size_t rec_len = REC_MAX; /* record bytes: 64, or max_record if smaller */
#define BATCH 32

static int pairs_put(struct shmring *r, long n)
{
	_Alignas(64) unsigned char in[REC_MAX], out[REC_MAX];
	memset(in, 0x5a, sizeof in);
	for (long i = 0; i < n; i++) {
		if (shmring_put(r, in, rec_len, 0) != 0 || shmring_get(r, out, rec_len, 0) != (ssize_t)rec_len)
			return 1;
	}
	return 0;
}

static int pairs_zc(struct shmring *r, long n)
{
	for (long i = 0; i < n; i++) {
		struct shmring_span sp;
		if (shmring_reserve(r, rec_len, &sp, 0) != 0)
			return 1;
		memset(sp.data, 0x5a, rec_len);
		if (shmring_commit(r, &sp, rec_len) != 0 || shmring_peek(r, &sp, 0) != (ssize_t)rec_len)
			return 1;
		if (((unsigned char *)sp.data)[rec_len - 1] != 0x5a || shmring_release(r, &sp) != 0)
			return 1;
	}
	return 0;
}

static int polls_empty(struct shmring *r, long n)
{
	_Alignas(64) unsigned char out[REC_MAX];
	for (long i = 0; i < n; i++) {
		if (shmring_get(r, out, rec_len, 0) != -EAGAIN)
			return 1;
	}
	return 0;
}

static int pairs_batch(struct shmring *r, long n)
{
	_Alignas(64) unsigned char in[REC_MAX], out[BATCH * REC_MAX];
	memset(in, 0x5a, sizeof in);
	struct iovec recs[BATCH], got[BATCH];
	for (int i = 0; i < BATCH; i++)
		recs[i] = (struct iovec){ in, rec_len };
	for (long i = 0; i < n; i += BATCH) {
		if (shmring_put_many(r, recs, BATCH, 0) != BATCH ||
		    shmring_get_many(r, out, sizeof out, got, BATCH, 0) != BATCH)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	const char *mode = argc > 2 ? argv[2] : "put";
	int (*run)(struct shmring *, long) = !strcmp(mode, "zc")    ? pairs_zc
	                                     : !strcmp(mode, "batch") ? pairs_batch
	                                     : !strcmp(mode, "put")   ? pairs_put
	                                     : !strcmp(mode, "empty") ? polls_empty
	                                                              : NULL;
	if (n <= 0 || !run) {
		fprintf(stderr, "usage: pair_cost [PAIRS] [put|zc|batch|empty] [MAX_RECORD]\n");
		return 2;
	}
	size_t max_record = argc > 3 ? (size_t)atol(argv[3]) : 0;
	if (max_record && max_record < rec_len)
		rec_len = max_record;
	struct shmring_config cfg = { .capacity = 4096 * 16, .max_record = max_record,
	                              .flags = SHMRING_PRODUCER | SHMRING_CONSUMER };
	struct shmring *r;
	int rc = shmring_create(&r, NULL, &cfg);
	if (rc) {
		fprintf(stderr, "shmring_create: %s\n", shmring_strerror(rc));
		return 1;
	}
	shmring_prefault(r);
	if (run(r, 4096)) { /* warm: roles taken, op record cached, every page touched */
		fprintf(stderr, "pair_cost: warm-up failed\n");
		return 1;
	}
	uint64_t t0 = now_ns();
	CALLGRIND_START_INSTRUMENTATION;
	rc = run(r, n);
	CALLGRIND_STOP_INSTRUMENTATION;
	uint64_t t1 = now_ns();
	if (rc) {
		fprintf(stderr, "pair_cost: a put or get failed\n");
		return 1;
	}
	printf("%s: %ld pairs, %.1f ns per pair (wall clock, one thread)\n", mode, n,
	       (double)(t1 - t0) / (double)n);
	shmring_detach(r);
	return 0;
}
