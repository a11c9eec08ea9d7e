/*
 * perf_common.h - what every program in perf/ shares (bench_quick through
 * bench_util.h, the harness through harness/harness.h): the cache-line size,
 * the clock and the pause of a spin loop.
 */
#ifndef PERF_COMMON_H
#define PERF_COMMON_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define CACHE_LINE 64

static inline int64_t now_ns(void)	/* CLOCK_MONOTONIC */
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif /* PERF_COMMON_H */
