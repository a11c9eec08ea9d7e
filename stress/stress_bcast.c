/*
 * stress_bcast.c - the --kill stress for broadcast rings (issue 13).
 *
 * Processes on one SHMRING_BROADCAST ring:
 *   producers            each incarnation numbers its records 0, 1, 2, ...;
 *   the survivor         a tethered subscriber from the start, never killed:
 *                        it must get every record exactly once, in order per
 *                        incarnation, intact;
 *   the lossy one        a lossy subscriber from the start, never killed:
 *                        records it gets are in order and intact, and at the
 *                        end what it got plus shmring_lost() equals what the
 *                        survivor got;
 *   victims              tethered subscribers that are SIGKILLed (some while
 *                        holding a peeked record) and respawned; each checks
 *                        order and integrity from where it joined.
 * With --kill, a killer SIGKILLs a random producer or victim every --period ms
 * and starts a new one.  A dead producer's half-written record becomes a skip
 * record (crash recovery); a dead victim's cursor is dropped by the sweep, or
 * the producers would stall for good (the run would time out).
 *
 * At the end the survivor's count per incarnation is checked against that
 * incarnation's completed puts (a killed one may have published one more
 * than it counted).  Exit 0 when every check holds.
 *
 * usage: stress_bcast [--seconds S] [--kill] [--period MS] [--producers N]
 *                     [--victims N] [--capacity BYTES] [-v]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_broadcast.h"
#include "shmring_zc.h"

#define MAX_INC   100000    /* producer incarnations per run */
#define MAX_PROD  8
#define MAX_VICT  8
#define REC_MAX   200

struct rec {
	uint32_t inc;       /* producer incarnation */
	uint32_t len;
	uint64_t seq;
	uint64_t check;
};

struct shared {
	_Atomic uint32_t next_inc;
	_Atomic int stop;
	_Atomic int ready;
	_Atomic uint64_t put_done[MAX_INC];   /* completed puts, per incarnation */
	uint64_t surv_got[MAX_INC];           /* written by the survivor only */
	_Atomic uint64_t surv_total, lossy_got, lossy_lost, victim_recs;
	_Atomic int failures;
	char why[256];
};

static struct shared *sh;
static struct shmring *ring;
static int verbose;

static uint64_t check_word(uint32_t inc, uint64_t seq)
{
	uint64_t x = ((uint64_t)inc << 40) ^ seq ^ 0x9e3779b97f4a7c15ull;
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

static size_t rec_len(uint32_t inc, uint64_t seq)
{
	return sizeof(struct rec) + check_word(inc, seq) % (REC_MAX - sizeof(struct rec));
}

static void fail(const char *what, uint32_t inc, uint64_t seq, long extra)
{
	if (atomic_fetch_add(&sh->failures, 1) == 0)
		snprintf(sh->why, sizeof sh->why, "%s (incarnation %u, seq %llu, %ld)", what, inc,
		         (unsigned long long)seq, extra);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A record's integrity; returns its header. */
static bool rec_ok(const unsigned char *buf, ssize_t n, struct rec *r)
{
	if (n < (ssize_t)sizeof *r)
		return false;
	memcpy(r, buf, sizeof *r);
	if (r->inc >= MAX_INC || r->len != (size_t)n || r->len != rec_len(r->inc, r->seq) ||
	    r->check != check_word(r->inc, r->seq))
		return false;
	for (ssize_t i = sizeof *r; i < n; i++)
		if (buf[i] != (unsigned char)(r->check >> (i % 8 * 8)))
			return false;
	return true;
}

static void producer(void)
{
	uint32_t inc = atomic_fetch_add(&sh->next_inc, 1);
	if (inc >= MAX_INC)
		_exit(0);
	unsigned char buf[REC_MAX];
	for (uint64_t s = 0; !atomic_load(&sh->stop);) {
		struct rec r = { inc, (uint32_t)rec_len(inc, s), s, check_word(inc, s) };
		memcpy(buf, &r, sizeof r);
		for (size_t i = sizeof r; i < r.len; i++)
			buf[i] = (unsigned char)(r.check >> (i % 8 * 8));
		int rc = shmring_put(ring, buf, r.len, 200000000);
		if (rc == -ETIMEDOUT)
			continue; /* try this one again (stop may have come) */
		if (rc) {
			fail("put failed", inc, s, rc);
			_exit(1);
		}
		atomic_store(&sh->put_done[inc], ++s);
	}
	_exit(0);
}

/* role: 0 survivor, 1 lossy, 2 victim */
static void subscriber(int role)
{
	shmring_leave(ring, SHMRING_PRODUCER); /* inherited from the parent */
	if (shmring_subscribe(ring, role == 1 ? SHMRING_SUB_LOSSY : 0) != 0) {
		fail("subscribe failed", 0, 0, role);
		_exit(1);
	}
	if (role != 2)
		atomic_fetch_add(&sh->ready, 1);
	static uint64_t next[MAX_INC]; /* next seq expected per incarnation (0: none seen) */
	static bool seen[MAX_INC];
	unsigned char buf[REC_MAX];
	uint64_t got = 0, n_peek = 0;
	for (;;) {
		ssize_t n;
		struct shmring_span span = { 0 };
		bool peeked = role == 2 && (got % 7) == 3;
		if (peeked) {
			n = shmring_peek(ring, &span, -1);
			if (n >= 0) {
				memcpy(buf, span.data, (size_t)n);
				n_peek++;
			}
		} else {
			n = shmring_get(ring, buf, sizeof buf, -1);
		}
		if (n == -EPIPE)
			break;
		if (n == -EOVERFLOW && role == 1) {
			/* lost records: the next one of each incarnation may skip */
			memset(seen, 0, sizeof seen);
			continue;
		}
		struct rec r;
		if (n < 0 || !rec_ok(buf, n, &r)) {
			fail(n < 0 ? "get failed" : "torn or corrupt record", 0, 0, (long)n);
			_exit(1);
		}
		if (role == 0) {
			if (r.seq != sh->surv_got[r.inc]) {
				fail("survivor: gap, duplicate or disorder", r.inc, r.seq,
				     (long)sh->surv_got[r.inc]);
				_exit(1);
			}
			sh->surv_got[r.inc]++;
		} else {
			if (seen[r.inc] && r.seq != next[r.inc] && role == 2) {
				fail("victim: gap, duplicate or disorder", r.inc, r.seq, (long)next[r.inc]);
				_exit(1);
			}
			if (seen[r.inc] && r.seq < next[r.inc]) {
				fail("lossy: duplicate or disorder", r.inc, r.seq, (long)next[r.inc]);
				_exit(1);
			}
			seen[r.inc] = true;
			next[r.inc] = r.seq + 1;
		}
		if (peeked && shmring_release(ring, &span) != 0) {
			fail("release failed", r.inc, r.seq, 0);
			_exit(1);
		}
		got++;
		if (role == 2)
			atomic_fetch_add(&sh->victim_recs, 1);
		if (role == 1 && (got & 4095) == 0)
			usleep(2000); /* fall behind now and then */
	}
	if (role == 0)
		atomic_store(&sh->surv_total, got);
	if (role == 1) {
		atomic_store(&sh->lossy_got, got);
		atomic_store(&sh->lossy_lost, shmring_lost(ring));
	}
	(void)n_peek;
	_exit(0);
}

static pid_t spawn(void (*fn)(void), int role)
{
	fflush(NULL);
	pid_t p = fork();
	if (p < 0) {
		perror("fork");
		exit(2);
	}
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fn)
			fn();
		subscriber(role);
	}
	return p;
}

int main(int argc, char **argv)
{
	int seconds = 10, period_ms = 20, nprod = 2, nvict = 2;
	bool kill_mode = false;
	size_t capacity = 64 << 10;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--kill")) kill_mode = true;
		else if (!strcmp(argv[i], "--period") && i + 1 < argc) period_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--producers") && i + 1 < argc) nprod = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--victims") && i + 1 < argc) nvict = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--capacity") && i + 1 < argc) capacity = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-v")) verbose = 1;
		else {
			fprintf(stderr, "usage: %s [--seconds S] [--kill] [--period MS] [--producers N] "
			                "[--victims N] [--capacity BYTES] [-v]\n", argv[0]);
			return 2;
		}
	}
	if (nprod < 1 || nprod > MAX_PROD || nvict < 0 || nvict > MAX_VICT)
		return 2;
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	struct shmring_config cfg = { .capacity = capacity, .max_record = REC_MAX,
	                              .flags = SHMRING_BROADCAST | SHMRING_PRODUCER };
	int rc = shmring_create(&ring, NULL, &cfg);
	if (rc) {
		fprintf(stderr, "create: %s\n", shmring_strerror(rc));
		return 2;
	}
	/* The parent holds the producer role (children inherit it at fork):
	 * the stream does not end between a producer's death and its respawn. */
	pid_t survivor = spawn(NULL, 0), lossy = spawn(NULL, 1);
	while (atomic_load(&sh->ready) < 2)
		usleep(1000);
	pid_t prod[MAX_PROD], vict[MAX_VICT];
	for (int i = 0; i < nvict; i++)
		vict[i] = spawn(NULL, 2);
	for (int i = 0; i < nprod; i++)
		prod[i] = spawn(producer, 0);
	uint64_t kills = 0, prod_kills = 0;
	int64_t end = now_ns() + (int64_t)seconds * 1000000000;
	unsigned seed = (unsigned)getpid();
	while (now_ns() < end && !atomic_load(&sh->failures)) {
		usleep((useconds_t)period_ms * 1000);
		if (!kill_mode)
			continue;
		int k = (int)(rand_r(&seed) % (unsigned)(nprod + nvict));
		if (k < nprod) {
			kill(prod[k], SIGKILL);
			waitpid(prod[k], NULL, 0);
			prod[k] = spawn(producer, 0);
			prod_kills++;
		} else {
			k -= nprod;
			kill(vict[k], SIGKILL);
			waitpid(vict[k], NULL, 0);
			vict[k] = spawn(NULL, 2);
		}
		kills++;
	}
	atomic_store(&sh->stop, 1);
	int st, bad = 0;
	for (int i = 0; i < nprod; i++) {
		waitpid(prod[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	shmring_leave(ring, SHMRING_PRODUCER); /* end of stream */
	for (int i = 0; i < nvict; i++) {
		waitpid(vict[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	waitpid(survivor, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	waitpid(lossy, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);

	/* The survivor got every completed put (a killed producer: maybe one more). */
	uint32_t incs = atomic_load(&sh->next_inc);
	uint64_t expect_min = 0, extra = 0;
	for (uint32_t i = 0; i < incs && i < MAX_INC; i++) {
		uint64_t done = atomic_load(&sh->put_done[i]);
		expect_min += done;
		if (sh->surv_got[i] < done || sh->surv_got[i] > done + 1) {
			fail("survivor count vs completed puts", i, sh->surv_got[i], (long)done);
			break;
		}
		extra += sh->surv_got[i] - done;
	}
	uint64_t total = atomic_load(&sh->surv_total);
	uint64_t lg = atomic_load(&sh->lossy_got), ll = atomic_load(&sh->lossy_lost);
	if (lg + ll != total)
		fail("lossy: got + lost != published", 0, lg + ll, (long)total);
	struct shmring_info info;
	shmring_info(ring, &info);
	printf("stress_bcast: %d s, %d producers, %d victims, %s: %llu records, %llu kills "
	       "(%llu producers, %u incarnations), %llu claims recovered, survivor got %llu "
	       "(%llu published by killed producers after their last count), lossy got %llu "
	       "lost %llu, victims got %llu\n",
	       seconds, nprod, nvict, kill_mode ? "--kill" : "no kills",
	       (unsigned long long)expect_min, (unsigned long long)kills,
	       (unsigned long long)prod_kills, incs, (unsigned long long)info.recovered_claims,
	       (unsigned long long)total, (unsigned long long)extra, (unsigned long long)lg,
	       (unsigned long long)ll, (unsigned long long)atomic_load(&sh->victim_recs));
	shmring_detach(ring);
	if (atomic_load(&sh->failures) || bad) {
		printf("stress_bcast: FAIL: %s%s\n", sh->why, bad ? " (a process failed)" : "");
		return 1;
	}
	printf("stress_bcast: OK\n");
	return 0;
}
