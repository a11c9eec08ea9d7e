/*
 * bench_util.h - small helpers shared by the programs in perf/: a clock,
 * CPU pinning, memory shared across fork(), a start gate, and running two
 * forked sides of a test together.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "perf_common.h"	/* CACHE_LINE, now_ns, cpu_relax */

/* Zeroed memory that stays shared with children forked after this call. */
static inline void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* The first two CPUs this process may run on; returns how many it may use. */
static inline int pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int n = 0;

	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (n < 2)
			cpu[n] = i;
		n++;
	}
	return n;
}

static inline void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		perror("sched_setaffinity");
}

/* Start gate in shared memory: each side arrives and spins; the parent opens
 * it once every side has arrived, so they start within a cache miss. */
struct gate {
	_Alignas(CACHE_LINE) atomic_int ready;
	atomic_int go;
};

static inline void gate_wait(struct gate *g)
{
	atomic_fetch_add(&g->ready, 1);
	while (!atomic_load_explicit(&g->go, memory_order_acquire))
		cpu_relax();
}

typedef int (*side_fn)(void *arg);
typedef int (*prep_fn)(int side, void *arg);

/* Fork side a and side b (pinned to cpu[0] and cpu[1] unless -1) and open
 * the gate once both wait at it; each side first runs prep(0 or 1, arg) if
 * given, and gives up if it fails.  A side's return value is its exit
 * status.  The parent may close its copies of pipe ends, then calls
 * pair_wait. */
static inline void pair_start(struct gate *g, const int cpu[2], prep_fn prep, side_fn a,
			      side_fn b, void *arg, pid_t pid[2])
{
	side_fn fn[2] = { a, b };

	atomic_store(&g->ready, 0);
	atomic_store(&g->go, 0);
	fflush(NULL);	/* the children leave with _exit(): no duplicate output */
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] < 0) {
			perror("fork");
			exit(2);
		}
		if (pid[i] == 0) {
			pin_to(cpu[i]);
			int rc = prep ? prep(i, arg) : 0;
			gate_wait(g);
			_exit(rc || fn[i](arg) ? 1 : 0);
		}
	}
	while (atomic_load(&g->ready) < 2)
		usleep(100);
	atomic_store_explicit(&g->go, 1, memory_order_release);
}

/* Wait for both sides; 0 only if both exited with status 0. */
static inline int pair_wait(const pid_t pid[2])
{
	int bad = 0;

	for (int i = 0; i < 2; i++) {
		int st = 0;
		while (waitpid(pid[i], &st, 0) < 0) {
			if (errno != EINTR) {
				st = -1;
				break;
			}
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	}
	return bad;
}

/* read()/write() exactly len bytes.  read_full returns 1 on success, 0 on EOF
 * before the first byte, -1 on error or EOF mid-way. */
static inline int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			return got ? -1 : 0;
		else if (errno != EINTR)
			return -1;
	}
	return 1;
}

static inline int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static inline double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* BENCH_UTIL_H */
