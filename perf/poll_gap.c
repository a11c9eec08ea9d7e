/*
 * poll_gap.c - what a consumer polling an empty ring costs a 1x1 stream.
 *
 *   build/release/perf/poll_gap [RECORDS [REPS [GAP_NS,...]]]
 *
 * One producer process (shmring_put, timeout -1) streams RECORDS 48-byte
 * records (default 2000000) to one consumer (shmring_get, timeout 0) that,
 * after each -EAGAIN, waits GAP_NS nanoseconds (default 0,300,1000,5000)
 * before it polls again.  Each gap runs on three rings: the split layout,
 * the inline layout (max_record 48) and a split SHMRING_LIGHT_PUBLISH ring,
 * round-robin over REPS reps (default 5); the figures are medians, in
 * records per second, with the consumer's -EAGAINs per record.  The two
 * processes are pinned to CPUs 0 and 1 when there are two.
 *
 * What it shows (docs/perf.md, fourteenth session): a consumer that keeps
 * up with its producer polls the line the producer is about to write, and
 * takes it away from it between its stores; one that waits a microsecond or
 * more when it finds nothing lets the producer get ahead and write lines
 * nobody reads yet.  How much that gains, and whether the inline layout
 * (whose polled line is the payload's too) loses more to a tight poll than
 * the split one, change with the state of the machine: run it more than
 * once, minutes apart.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "perf_common.h"
#include "shmring.h"

#define REC 48
#define MAX_GAPS 16
#define MAX_REPS 31

struct ring_kind {
	const char *name;
	size_t max_record;
	unsigned flags;
};
static const struct ring_kind kinds[] = {
	{ "split", 0, 0 },
	{ "inline", SHMRING_INLINE_MAX_RECORD, 0 },
	{ "split, light", 0, SHMRING_LIGHT_PUBLISH },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof set, &set);
}

static void wait_ns(int64_t gap)
{
	if (gap <= 0)
		return;
	int64_t until = now_ns() + gap;
	while (now_ns() < until)
		cpu_relax();
}

/* One run: records/s (0 on failure), *eagain the consumer's -EAGAINs. */
static double run(const struct ring_kind *k, long records, int64_t gap, long *eagain, int pinning)
{
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 4u << 20, .max_record = k->max_record,
		                      .flags = k->flags };
	int rc = shmring_create(&r, NULL, &cfg);
	if (rc) {
		fprintf(stderr, "poll_gap: shmring_create: %s\n", shmring_strerror(rc));
		return 0;
	}
	(void)shmring_prefault(r);
	pid_t pid = fork();
	if (pid < 0) {
		shmring_detach(r);
		return 0;
	}
	if (pid == 0) {
		if (pinning)
			pin(1);
		unsigned char rec[REC];
		memset(rec, 0x5a, sizeof rec);
		for (long i = 0; i < records; i++) {
			memcpy(rec, &i, sizeof i);
			if (shmring_put(r, rec, sizeof rec, -1) != 0)
				_exit(1);
		}
		_exit(0);
	}
	if (pinning)
		pin(0);
	unsigned char buf[64];
	long eag = 0, got = 0;
	int bad = 0;
	int64_t t0 = now_ns();
	while (got < records) {
		ssize_t n = shmring_get(r, buf, sizeof buf, 0);
		if (n == -EAGAIN) {
			eag++;
			wait_ns(gap);
			continue;
		}
		long seq;
		memcpy(&seq, buf, sizeof seq);
		if (n != REC || seq != got) {
			bad = 1;
			break;
		}
		got++;
	}
	int64_t t1 = now_ns();
	int status = 0;
	if (bad)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	shmring_detach(r);
	if (bad || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "poll_gap: %s, gap %lld ns: a record was lost or wrong\n", k->name,
		        (long long)gap);
		return 0;
	}
	*eagain = eag;
	return (double)records * 1e9 / (double)(t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long records = argc > 1 ? atol(argv[1]) : 2000000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	int64_t gaps[MAX_GAPS] = { 0, 300, 1000, 5000 };
	int ngaps = 4;
	if (argc > 3) {
		ngaps = 0;
		for (char *s = argv[3], *end; *s && ngaps < MAX_GAPS; s = *end ? end + 1 : end) {
			gaps[ngaps++] = strtoll(s, &end, 10);
			if (end == s)
				break;
		}
	}
	if (records < 1 || reps < 1 || reps > MAX_REPS || ngaps < 1) {
		fprintf(stderr, "usage: poll_gap [RECORDS [REPS (1-%d) [GAP_NS,...]]]\n", MAX_REPS);
		return 2;
	}
	int pinning = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
	double rate[MAX_GAPS][NKINDS][MAX_REPS];
	double polls[MAX_GAPS][NKINDS][MAX_REPS];
	for (int rep = 0; rep < reps; rep++)
		for (int g = 0; g < ngaps; g++)
			for (size_t k = 0; k < NKINDS; k++) {
				long eag = 0;
				rate[g][k][rep] = run(&kinds[k], records, gaps[g], &eag, pinning);
				if (rate[g][k][rep] == 0)
					return 1;
				polls[g][k][rep] = (double)eag / (double)records;
			}
	printf("1x1 stream of %ld 48-byte records, consumer get(timeout 0) waiting the gap after "
	       "each -EAGAIN; medians of %d runs%s\n",
	       records, reps, pinning ? ", pinned to CPUs 0 and 1" : "");
	printf("%10s", "gap ns");
	for (size_t k = 0; k < NKINDS; k++)
		printf("  %14s M/s  EAGAIN/rec", kinds[k].name);
	printf("\n");
	for (int g = 0; g < ngaps; g++) {
		printf("%10lld", (long long)gaps[g]);
		for (size_t k = 0; k < NKINDS; k++) {
			qsort(rate[g][k], (size_t)reps, sizeof(double), cmp_double);
			qsort(polls[g][k], (size_t)reps, sizeof(double), cmp_double);
			printf("  %18.1f  %10.3f", rate[g][k][reps / 2] / 1e6, polls[g][k][reps / 2]);
		}
		printf("\n");
	}
	return 0;
}
