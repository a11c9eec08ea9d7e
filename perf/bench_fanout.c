/*
 * bench_fanout.c - fan-out: one producer process to N subscriber processes,
 * 64-byte records, every subscriber gets every record (issue 13).
 *
 * Three ways, in the same run, for each N:
 *   broadcast     one SHMRING_BROADCAST ring, N tethered subscribers;
 *   ring-per-sub  the workaround: one plain ring per subscriber, the producer
 *                 puts each record N times;
 *   pipe-per-sub  one pipe per subscriber, one write per record and pipe.
 * Every subscriber checks that it gets every sequence number, in order.  The
 * time is from the start gate to the last subscriber's last record; the rate
 * is records per second per subscriber (each gets all of them).  Parties are
 * not pinned: the scheduler places them (N + 1 processes on the machine's
 * CPUs).
 *
 * usage: bench_fanout [--count N] [--subs 1,3,8] [--capacity BYTES] [--rounds R]
 * Prints one line per (N, way) and the broadcast / ring-per-sub ratio; exits 1
 * if a check fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>

#include "bench_util.h"
#include "shmring.h"
#include "shmring_broadcast.h"

#define REC 64
#define MAX_SUBS 16

enum way { BROADCAST, RING_PER_SUB, PIPE_PER_SUB, NWAYS };
static const char *way_name[NWAYS] = { "broadcast", "ring-per-sub", "pipe-per-sub" };

struct shared {
	_Atomic int ready;          /* subscribers ready */
	_Atomic int go;
	_Atomic int failed;
	int64_t t_start;
	int64_t t_end[MAX_SUBS];
};

static uint64_t count = 200000;
static size_t capacity = 1 << 20;

static int subscriber(struct shared *sh, enum way way, int me, struct shmring *ring, int fd)
{
	if (way == BROADCAST && shmring_subscribe(ring, 0) != 0)
		return 2;
	if (way != PIPE_PER_SUB)
		shmring_prefault(ring);
	atomic_fetch_add(&sh->ready, 1);
	unsigned char buf[REC];
	uint64_t expect = 0;
	for (;;) {
		if (way == PIPE_PER_SUB) {
			if (read_full(fd, buf, REC) != 1)
				break;
		} else {
			ssize_t n = shmring_get(ring, buf, sizeof buf, -1);
			if (n == -EPIPE)
				break;
			if (n != REC)
				return 3;
		}
		uint64_t seq;
		memcpy(&seq, buf, sizeof seq);
		if (seq != expect++)
			return 4;
	}
	sh->t_end[me] = now_ns();
	return expect == count ? 0 : 5;
}

static int producer(struct shared *sh, enum way way, int nsubs, struct shmring **rings, int *fds)
{
	unsigned char buf[REC];
	memset(buf, 0x5a, sizeof buf);
	for (int i = 0; i < (way == BROADCAST ? 1 : nsubs); i++)
		if (way != PIPE_PER_SUB)
			shmring_prefault(rings[i]);
	while (atomic_load(&sh->ready) < nsubs)
		cpu_relax();
	sh->t_start = now_ns();
	atomic_store(&sh->go, 1);
	for (uint64_t s = 0; s < count; s++) {
		memcpy(buf, &s, sizeof s);
		if (way == BROADCAST) {
			if (shmring_put(rings[0], buf, REC, -1) != 0)
				return 6;
		} else {
			for (int i = 0; i < nsubs; i++) {
				if (way == RING_PER_SUB ? shmring_put(rings[i], buf, REC, -1) != 0
				                        : write(fds[i], buf, REC) != REC)
					return 7;
			}
		}
	}
	for (int i = 0; i < (way == BROADCAST ? 1 : nsubs); i++) {
		if (way == PIPE_PER_SUB)
			close(fds[i]);
		else
			shmring_close(rings[i]);
	}
	return 0;
}

static pid_t spawn(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t p = fork();
	if (p < 0) {
		perror("fork");
		exit(2);
	}
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	return p;
}

struct party {
	struct shared *sh;
	enum way way;
	int me, nsubs;
	struct shmring **rings;
	int (*pipes)[2];
};

static int run_sub(void *arg)
{
	struct party *p = arg;
	struct shmring *r = p->way == BROADCAST ? p->rings[0] : p->rings[p->me];
	if (p->way == PIPE_PER_SUB)
		for (int i = 0; i < p->nsubs; i++) {
			close(p->pipes[i][1]);
			if (i != p->me)
				close(p->pipes[i][0]);
		}
	return subscriber(p->sh, p->way, p->me, r, p->way == PIPE_PER_SUB ? p->pipes[p->me][0] : -1);
}

static int run_prod(void *arg)
{
	struct party *p = arg;
	int fds[MAX_SUBS];
	for (int i = 0; i < p->nsubs && p->way == PIPE_PER_SUB; i++) {
		close(p->pipes[i][0]);
		fds[i] = p->pipes[i][1];
	}
	return producer(p->sh, p->way, p->nsubs, p->rings, fds);
}

/* One run; returns records per second per subscriber, or -1 on a failure. */
static double run_once(enum way way, int nsubs)
{
	struct shared *sh = shared_alloc(sizeof *sh);
	struct shmring *rings[MAX_SUBS] = { 0 };
	int pipes[MAX_SUBS][2];
	int nrings = way == BROADCAST ? 1 : way == RING_PER_SUB ? nsubs : 0;
	struct shmring_config cfg = { .capacity = capacity,
	                              .flags = way == BROADCAST ? SHMRING_BROADCAST : 0 };
	for (int i = 0; i < nrings; i++)
		if (shmring_create(&rings[i], NULL, &cfg) != 0) {
			fprintf(stderr, "create failed\n");
			exit(2);
		}
	for (int i = 0; i < nsubs && way == PIPE_PER_SUB; i++) {
		if (pipe(pipes[i]) != 0) {
			perror("pipe");
			exit(2);
		}
		fcntl(pipes[i][1], F_SETPIPE_SZ, 1 << 20);
	}
	struct party party = { sh, way, 0, nsubs, rings, pipes };
	pid_t subs[MAX_SUBS];
	for (int i = 0; i < nsubs; i++) {
		party.me = i;
		subs[i] = spawn(run_sub, &party);
	}
	if (way == RING_PER_SUB || way == BROADCAST)
		for (int i = 0; i < nrings; i++)
			shmring_declare(rings[i], SHMRING_PRODUCER);
	pid_t prod = spawn(run_prod, &party);
	for (int i = 0; i < nrings; i++)
		shmring_leave(rings[i], SHMRING_PRODUCER);
	for (int i = 0; i < nsubs && way == PIPE_PER_SUB; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	int ok = 1, st;
	waitpid(prod, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "%s: producer failed (%d)\n", way_name[way], st);
		ok = 0;
	}
	int64_t last = 0;
	for (int i = 0; i < nsubs; i++) {
		waitpid(subs[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: subscriber %d failed (%d)\n", way_name[way], i, st);
			ok = 0;
		}
		if (sh->t_end[i] > last)
			last = sh->t_end[i];
	}
	for (int i = 0; i < nrings; i++)
		shmring_detach(rings[i]);
	double rate = ok ? (double)count / ((double)(last - sh->t_start) / 1e9) : -1;
	munmap(sh, sizeof *sh);
	return rate;
}

int main(int argc, char **argv)
{
	int subs[8] = { 1, 3, 8 }, nsub = 3, rounds = 3;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--capacity") && i + 1 < argc) {
			capacity = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--subs") && i + 1 < argc) {
			nsub = 0;
			for (char *s = strtok(argv[++i], ","); s && nsub < 8; s = strtok(NULL, ","))
				subs[nsub++] = atoi(s);
		} else {
			fprintf(stderr, "usage: %s [--count N] [--subs 1,3,8] [--capacity BYTES] "
			                "[--rounds R]\n", argv[0]);
			return 2;
		}
	}
	int cpu[2];
	printf("# fan-out, %d-byte records, %llu per run, capacity %zu, %d CPUs, best of %d\n",
	       REC, (unsigned long long)count, capacity, pick_cpus(cpu), rounds);
	printf("%-5s %-14s %14s\n", "subs", "way", "Mrec/s/sub");
	int failed = 0;
	for (int k = 0; k < nsub; k++) {
		int n = subs[k];
		if (n < 1 || n > MAX_SUBS)
			continue;
		double best[NWAYS] = { 0 };
		/* interleaved rounds: load on the machine hits every way alike */
		for (int r = 0; r < rounds; r++)
			for (int w = 0; w < NWAYS; w++) {
				double rate = run_once((enum way)w, n);
				if (rate < 0)
					failed = 1;
				if (rate > best[w])
					best[w] = rate;
			}
		for (int w = 0; w < NWAYS; w++)
			printf("%-5d %-14s %14.2f\n", n, way_name[w], best[w] / 1e6);
		printf("%-5d broadcast / ring-per-sub = %.2fx, broadcast / pipe-per-sub = %.2fx\n", n,
		       best[BROADCAST] / best[RING_PER_SUB], best[BROADCAST] / best[PIPE_PER_SUB]);
	}
	return failed;
}
