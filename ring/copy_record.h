/*
 * copy_record.h - copying a record's payload in or out of its slots: a
 * record of at most one slot (64 bytes) by inline overlapping moves, no call
 * (a libc memcpy call cost about 15 instructions a record each way,
 * perf/pair_cost under callgrind); larger ones by memcpy.  Used by the copy
 * API (copy.c) and the batch calls (batch.c).
 */
#ifndef SHMRING_COPY_RECORD_H
#define SHMRING_COPY_RECORD_H

#include <stdint.h>
#include <string.h>

#include "layout.h" /* RING_SLOT */

/* Copy n <= 64 bytes (one slot), inline by overlapping moves: no call. */
static inline __attribute__((always_inline)) void copy_small(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (n >= 16) {
		unsigned char a[16], b[16];
		memcpy(a, s, 16);
		memcpy(b, s + n - 16, 16);
		if (n > 32) {
			unsigned char c[16], e[16];
			memcpy(c, s + 16, 16);
			memcpy(e, s + n - 32, 16);
			memcpy(d + 16, c, 16);
			memcpy(d + n - 32, e, 16);
		}
		memcpy(d, a, 16);
		memcpy(d + n - 16, b, 16);
	} else if (n >= 8) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	} else if (n) {
		unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
		d[0] = a;
		d[n / 2] = b;
		d[n - 1] = c;
	}
}
/* Copy n bytes of a record in or out: a slot's worth inline, more by memcpy. */
static inline __attribute__((always_inline)) void copy_record(void *dst, const void *src, size_t n)
{
	if (n > RING_SLOT)
		memcpy(dst, src, n);
	else
		copy_small(dst, src, n);
}

#endif /* SHMRING_COPY_RECORD_H */
