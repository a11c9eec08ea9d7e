/*
 * pattern.h - deterministic test data, shared by the Criterion tests
 * (through common.h) and the helper executables (which do not link
 * Criterion).
 */
#ifndef SHMRING_TESTS_PATTERN_H
#define SHMRING_TESTS_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: deterministic, seedable, good enough for test data. */
static inline uint64_t t_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline uint64_t t_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	uint64_t x = *state;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Fill buf with bytes that depend on (seed, offset): any shift, truncation
 * or mix-up of two records shows up in t_check. */
static inline void t_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	for (size_t w = 0; w * 8 < len; w++) {
		uint64_t v = t_mix64(seed * 1000003u + w);
		for (size_t b = 0; b < 8 && w * 8 + b < len; b++)
			p[w * 8 + b] = (unsigned char)(v >> (b * 8));
	}
}

/* 1 if buf holds exactly what t_fill(buf, len, seed) wrote. */
static inline int t_check(const void *buf, size_t len, uint64_t seed)
{
	const unsigned char *p = buf;
	for (size_t w = 0; w * 8 < len; w++) {
		uint64_t v = t_mix64(seed * 1000003u + w);
		for (size_t b = 0; b < 8 && w * 8 + b < len; b++)
			if (p[w * 8 + b] != (unsigned char)(v >> (b * 8)))
				return 0;
	}
	return 1;
}

/* The records test_exec.c sends to helper_open: record i has this length
 * and t_fill(.., i) content. */
static inline size_t t_exec_len(unsigned i)
{
	return (size_t)(i * 13u % 500u);
}

#endif /* SHMRING_TESTS_PATTERN_H */
