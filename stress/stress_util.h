/*
 * stress_util.h - what the stress programs share: their random numbers, the
 * checksum and tiny-record pattern their records carry, the clock and a
 * sleep that survives signals (stress_procs, stress_threads).
 */
#ifndef STRESS_UTIL_H
#define STRESS_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmring.h"

/* Is a zero-copy span misplaced?  It starts at a slot's start, or 16 bytes
 * past it on a ring with the inline layout (max_record <= 48: <shmring_zc.h>). */
static inline int span_misplaced(const void *data, size_t max_record)
{
	uintptr_t want = max_record <= SHMRING_INLINE_MAX_RECORD ? 16 : 0;
	return ((uintptr_t)data % SHMRING_SLOT_SIZE) != want;
}

static inline uint64_t rnd(uint64_t *s)	/* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1du;
}

static inline uint64_t mix(uint64_t x)	/* splitmix64's finaliser */
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* The records' checksum: 64-bit FNV-1a. */
static inline uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3u;
	}
	return h;
}

/* Byte i of a tiny record of len bytes (too short for a header). */
static inline unsigned char tiny_byte(size_t len, size_t i)
{
	return (unsigned char)(0x5a + len * 31 + i * 7);
}

static inline uint64_t now_ns(void)	/* CLOCK_MONOTONIC */
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep that long, EINTR or not. */
static inline void sleep_ms(double ms)
{
	struct timespec d = { (time_t)(ms / 1000),
			      (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

/* The options every stress program takes: --producers P, --consumers C,
 * --seconds S, --capacity BYTES.  1 if `a` is one of them (its value `v`
 * stored), 0 if not. */
static inline int stress_common_opt(const char *a, const char *v, int *producers,
				    int *consumers, double *seconds, size_t *capacity)
{
	if (!strcmp(a, "--producers"))
		*producers = atoi(v);
	else if (!strcmp(a, "--consumers"))
		*consumers = atoi(v);
	else if (!strcmp(a, "--seconds"))
		*seconds = atof(v);
	else if (!strcmp(a, "--capacity"))
		*capacity = strtoull(v, NULL, 0);
	else
		return 0;
	return 1;
}

#endif /* STRESS_UTIL_H */
