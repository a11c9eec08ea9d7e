/*
 * stress_redeliver.c - at-least-once delivery under SIGKILL
 * (SHMRING_REDELIVER, docs/design.md section 9).  Run directly, or as
 * `stress_procs --redeliver ...` (which runs this program).
 *
 * usage: stress_redeliver [--producers P] [--consumers C] [--seconds S]
 *                         [--capacity BYTES] [--kill-ms MIN:MAX]
 *                         [--hold-us MAX] [--requeue-pct N] [--max-deliveries N]
 *                         [--seed N] [-v]
 *
 * P producers put records (16 bytes to 1 KiB: id, check word, pattern) with
 * ids numbered per producer; they are never killed.  C consumers peek
 * records, hold up to 4 at once for up to --hold-us, requeue a few, check
 * each, and ack it: the shared ledger's ack count for its id is raised just
 * before shmring_release.  A killer SIGKILLs a random consumer every
 * MIN..MAX ms and forks a replacement first (so consumers never drop to
 * zero).  At the end the producers leave, the consumers drain to end of
 * stream (which, on this ring, waits for every record to be released) and
 * the parent checks:
 *   - nothing lost: every record a producer's put returned 0 for was acked;
 *   - duplicates (acks > 1) only for records a killed consumer held (its
 *     ledger entry listed them, or it was inside a peek call: counted as
 *     "unknown", and unexplained duplicates may not exceed those);
 *   - a delivery with deliveries >= 2 only for a record given back (held by
 *     a killed consumer, or requeued), with the same allowance;
 *   - deliveries == 1 at most once per record; every payload intact;
 *   - per producer FIFO of first deliveries, as seen by each consumer;
 *   - shmring_info: lost_records 0, dead_letters 0 (without --max-deliveries),
 *     redelivered counted.
 * With --max-deliveries N, consumers also read dead letters now and then
 * (shmring_peek_dead, and ack them as above), the parent reads the last ones
 * after the drain, and "acked" includes them: nothing may be lost either way.
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
#include "shmring_zc.h"

#define NAME      "stress_redeliver"
#define MAX_PROCS 16
#define MAX_HELD  4
#define ID_SHIFT  40 /* id = producer << ID_SHIFT | sequence */

struct opts {
	int producers, consumers, verbose;
	double seconds;
	size_t capacity;
	unsigned kill_min_ms, kill_max_ms, hold_us, requeue_pct, max_deliveries;
	uint64_t seed;
} opt = { 2, 3, 0, 20, 64 * 1024, 20, 80, 500, 2, 0, 0 };

enum cstate { C_IDLE, C_PEEK, C_HOLD };
struct cslot {                    /* per consumer slot, written by its process */
	_Atomic int state;        /* C_PEEK: inside shmring_peek (holds an unknown record?) */
	_Atomic int nheld;
	_Atomic uint64_t held[MAX_HELD];
};
struct shared {
	_Atomic int stop_producers;
	_Atomic uint64_t produced[MAX_PROCS];   /* sequences put (put returned 0) */
	struct cslot cons[MAX_PROCS];
	_Atomic uint64_t violations;
	_Atomic uint64_t acks, redelivered_seen, requeues, dead_read;
};

static struct shared *sh;
static struct shmring *ring;
static uint64_t per_prod;                  /* ids per producer in the ledger */
static _Atomic uint8_t *acks;              /* per id: times acked (saturating) */
static _Atomic uint8_t *first;             /* per id: deliveries == 1 seen */
static _Atomic uint8_t *given_back;        /* per id: held by a consumer the parent killed */
static _Atomic uint8_t *requeued;          /* per id: requeued at least once */

static void *map_shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static uint64_t check_of(uint64_t id, size_t len)
{
	uint64_t x = id * 0x9E3779B97F4A7C15ull ^ len;
	x ^= x >> 31;
	return x * 0xBF58476D1CE4E5B9ull;
}

static void violation(const char *what, uint64_t id)
{
	atomic_fetch_add(&sh->violations, 1);
	fprintf(stderr, NAME ": VIOLATION %s: id %llu (producer %llu seq %llu)\n", what,
	        (unsigned long long)id, (unsigned long long)(id >> ID_SHIFT),
	        (unsigned long long)(id & ((UINT64_C(1) << ID_SHIFT) - 1)));
}

static size_t ledger_index(uint64_t id)
{
	return (size_t)((id >> ID_SHIFT) * per_prod + (id & ((UINT64_C(1) << ID_SHIFT) - 1)));
}

static void producer_main(int k)
{
	uint64_t rng = opt.seed ^ (uint64_t)(k + 1) * 0x1234567ull;
	rng |= 1;
	unsigned char buf[1024];
	for (uint64_t seq = 0; seq < per_prod && !atomic_load(&sh->stop_producers);) {
		uint64_t id = (uint64_t)k << ID_SHIFT | seq;
		size_t len = 16 + rnd(&rng) % (sizeof buf - 16);
		uint64_t c = check_of(id, len);
		memcpy(buf, &id, 8);
		memcpy(buf + 8, &c, 8);
		for (size_t i = 16; i < len; i++)
			buf[i] = (unsigned char)(id + i);
		int rc = shmring_put(ring, buf, len, 100000000);
		if (rc == 0) {
			atomic_store(&sh->produced[k], ++seq);
		} else if (rc != -ETIMEDOUT) {
			fprintf(stderr, NAME ": producer %d: put: %s\n", k, shmring_strerror(rc));
			exit(3);
		}
	}
	shmring_detach(ring);
	exit(0);
}

/* Check a record; returns its id, or UINT64_MAX if it is corrupt. */
static uint64_t check_record(const struct shmring_span *sp)
{
	uint64_t id, c;
	if (sp->len < 16)
		return UINT64_MAX;
	memcpy(&id, sp->data, 8);
	memcpy(&c, (char *)sp->data + 8, 8);
	if (c != check_of(id, sp->len) || (id >> ID_SHIFT) >= (uint64_t)opt.producers ||
	    (id & ((UINT64_C(1) << ID_SHIFT) - 1)) >= per_prod)
		return UINT64_MAX;
	for (size_t i = 16; i < sp->len; i++)
		if (((unsigned char *)sp->data)[i] != (unsigned char)(id + i))
			return UINT64_MAX;
	return id;
}

/* Read (and ack) one dead letter if there is one; false if none. */
static bool read_dead(void)
{
	struct shmring_span sp;
	if (shmring_peek_dead(ring, &sp, 0) < 0)
		return false;
	uint64_t id = check_record(&sp);
	if (id == UINT64_MAX) {
		violation("torn dead letter", 0);
		exit(5);
	}
	if (opt.max_deliveries && sp.deliveries < opt.max_deliveries)
		violation("dead letter delivered fewer than max_deliveries times", id);
	size_t li = ledger_index(id);
	uint8_t a = atomic_load(&acks[li]);
	if (a < 255)
		atomic_store(&acks[li], a + 1);
	if (shmring_release(ring, &sp) != 0)
		exit(7);
	atomic_fetch_add(&sh->dead_read, 1);
	return true;
}

static void consumer_main(int slot, uint64_t seed)
{
	struct cslot *me = &sh->cons[slot];
	uint64_t rng = seed | 1;
	uint64_t last_first[MAX_PROCS];
	memset(last_first, 0xff, sizeof last_first);
	struct shmring_span sp[MAX_HELD];
	uint64_t ids[MAX_HELD];
	int n = 0;
	for (;;) {
		atomic_store(&me->state, C_PEEK);
		ssize_t rc = shmring_peek(ring, &sp[n], 100000000);
		if (rc == -EPIPE && n == 0)
			break;
		if (rc < 0) {
			atomic_store(&me->state, C_HOLD);
			if (rc != -ETIMEDOUT && rc != -EPIPE) {
				fprintf(stderr, NAME ": consumer: peek: %s\n", shmring_strerror((int)rc));
				exit(4);
			}
		} else {
			uint64_t id = check_record(&sp[n]);
			if (id == UINT64_MAX) {
				violation("torn or foreign record", 0);
				exit(5);
			}
			atomic_store(&me->held[n], id);
			atomic_store(&me->nheld, n + 1);
			atomic_store(&me->state, C_HOLD);
			ids[n] = id;
			size_t li = ledger_index(id);
			if (sp[n].deliveries == 1) {
				if (atomic_exchange(&first[li], 1))
					violation("delivered twice with deliveries == 1", id);
				uint64_t prod = id >> ID_SHIFT, seq = id & ((UINT64_C(1) << ID_SHIFT) - 1);
				if (last_first[prod] != UINT64_MAX && seq <= last_first[prod])
					violation("first deliveries of a producer out of order", id);
				last_first[prod] = seq;
			} else {
				atomic_fetch_add(&sh->redelivered_seen, 1);
				/* given back before this delivery: marked before the
				 * kill, or before the requeue */
				if (atomic_load(&first[li]) && !atomic_load(&given_back[li]) &&
				    !atomic_load(&requeued[li]))
					violation("delivered again without being given back", id);
			}
			n++;
		}
		if (opt.max_deliveries && rnd(&rng) % 16 == 0) {
			atomic_store(&me->state, C_PEEK); /* (a dead letter: unknown if killed) */
			read_dead();
			atomic_store(&me->state, C_HOLD);
		}
		/* hold a while (the killer may strike), then ack or requeue the
		 * oldest when holding enough, or on a timeout */
		if (opt.hold_us && rnd(&rng) % 2)
			usleep((useconds_t)(rnd(&rng) % opt.hold_us));
		if (n > 0 && (n == MAX_HELD || rc < 0 || rnd(&rng) % 2)) {
			size_t li = ledger_index(ids[0]);
			if (rnd(&rng) % 100 < opt.requeue_pct) {
				atomic_store(&requeued[li], 1);
				if (shmring_requeue(ring, &sp[0]) != 0) {
					fprintf(stderr, NAME ": requeue failed\n");
					exit(6);
				}
				atomic_fetch_add(&sh->requeues, 1);
			} else {
				uint8_t a = atomic_load(&acks[li]);
				if (a < 255)
					atomic_store(&acks[li], a + 1); /* one writer per delivery */
				if (shmring_release(ring, &sp[0]) != 0)
					exit(7);
				atomic_fetch_add(&sh->acks, 1);
			}
			for (int i = 1; i < n; i++) {
				sp[i - 1] = sp[i];
				ids[i - 1] = ids[i];
				atomic_store(&me->held[i - 1], ids[i]);
			}
			n--;
			atomic_store(&me->nheld, n);
		}
	}
	atomic_store(&me->state, C_IDLE);
	shmring_detach(ring);
	exit(0);
}

static pid_t cpid[MAX_PROCS];
static uint64_t unknown_holds, kills, known_holds;

static pid_t spawn_consumer(int slot, uint64_t seed)
{
	struct cslot *c = &sh->cons[slot];
	atomic_store(&c->state, C_IDLE);
	atomic_store(&c->nheld, 0);
	shmring_declare(ring, SHMRING_CONSUMER);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		consumer_main(slot, seed);
	}
	shmring_leave(ring, SHMRING_CONSUMER);
	return pid;
}

/* After a consumer's death: remember what it held. */
static void note_death(int slot)
{
	struct cslot *c = &sh->cons[slot];
	int nh = atomic_load(&c->nheld);
	if (atomic_load(&c->state) == C_PEEK)
		unknown_holds++;
	for (int i = 0; i < nh && i < MAX_HELD; i++) {
		atomic_store(&given_back[ledger_index(atomic_load(&c->held[i]))], 1);
		known_holds++;
	}
	/* (the victim is stopped while we read: held[0..nheld) lists every
	 * record it holds, and perhaps one it has just released, never fewer) */
}

static void usage(void)
{
	fprintf(stderr, "usage: " NAME " [--producers P] [--consumers C] [--seconds S]\n"
	                "       [--capacity BYTES] [--kill-ms MIN:MAX] [--hold-us MAX]\n"
	                "       [--requeue-pct N] [--max-deliveries N] [--seed N] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	opt.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-v")) {
			opt.verbose++;
			continue;
		}
		if (!strcmp(a, "--redeliver"))
			continue; /* as passed on by stress_procs */
		const char *v = i + 1 < argc ? argv[++i] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--producers"))
			opt.producers = atoi(v);
		else if (!strcmp(a, "--consumers"))
			opt.consumers = atoi(v);
		else if (!strcmp(a, "--seconds"))
			opt.seconds = atof(v);
		else if (!strcmp(a, "--capacity"))
			opt.capacity = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--kill-ms")) {
			if (sscanf(v, "%u:%u", &opt.kill_min_ms, &opt.kill_max_ms) != 2)
				usage();
		} else if (!strcmp(a, "--hold-us"))
			opt.hold_us = (unsigned)atoi(v);
		else if (!strcmp(a, "--requeue-pct"))
			opt.requeue_pct = (unsigned)atoi(v);
		else if (!strcmp(a, "--max-deliveries"))
			opt.max_deliveries = (unsigned)atoi(v);
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else
			usage();
	}
	if (opt.producers < 1 || opt.producers > MAX_PROCS || opt.consumers < 1 ||
	    opt.consumers > MAX_PROCS || opt.kill_min_ms > opt.kill_max_ms || opt.kill_max_ms == 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct shmring_config cfg = { .capacity = opt.capacity, .max_record = 1024,
	                              .flags = SHMRING_REDELIVER,
	                              .max_deliveries = opt.max_deliveries };
	int rc = shmring_create(&ring, NULL, &cfg);
	if (rc) {
		printf(NAME ": FAIL create: %s\n", shmring_strerror(rc));
		return 1;
	}
	per_prod = (uint64_t)((opt.seconds + 10) * 1e6 / opt.producers) + 1024;
	size_t nids = (size_t)(per_prod * (uint64_t)opt.producers);
	sh = map_shared(sizeof *sh);
	acks = map_shared(nids);
	first = map_shared(nids);
	requeued = map_shared(nids);
	given_back = map_shared(nids);

	pid_t ppid[MAX_PROCS];
	for (int k = 0; k < opt.producers; k++) {
		shmring_declare(ring, SHMRING_PRODUCER);
		ppid[k] = fork();
		if (ppid[k] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			producer_main(k);
		}
		shmring_leave(ring, SHMRING_PRODUCER);
	}
	uint64_t rng = opt.seed | 1;
	for (int s = 0; s < opt.consumers; s++)
		cpid[s] = spawn_consumer(s, rnd(&rng));

	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(opt.seconds * 1e9);
	while (now_ns() < end) {
		unsigned ms = opt.kill_min_ms + (unsigned)(rnd(&rng) % (opt.kill_max_ms - opt.kill_min_ms + 1));
		usleep(ms * 1000);
		int s = (int)(rnd(&rng) % (uint64_t)opt.consumers);
		pid_t victim = cpid[s];
		/* the replacement first: consumers never drop to zero */
		kill(victim, SIGSTOP); /* freeze its ledger entry while we look */
		int st;
		if (waitpid(victim, &st, WUNTRACED) != victim || !WIFSTOPPED(st)) {
			printf(NAME ": FAIL consumer %d exited early (status 0x%x)\n", s, st);
			return 1;
		}
		note_death(s);
		kill(victim, SIGKILL);
		waitpid(victim, &st, 0);
		kills++;
		cpid[s] = spawn_consumer(s, rnd(&rng));
		if (opt.verbose)
			printf(NAME ": t=%.1fs killed consumer %d\n", (double)(now_ns() - t0) / 1e9, s);
	}
	/* The end: producers stop and leave; consumers drain to end of stream. */
	atomic_store(&sh->stop_producers, 1);
	for (int k = 0; k < opt.producers; k++) {
		int st;
		waitpid(ppid[k], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf(NAME ": FAIL producer %d status 0x%x\n", k, st);
			return 1;
		}
	}
	uint64_t drain0 = now_ns();
	for (int s = 0; s < opt.consumers; s++) {
		int st;
		waitpid(cpid[s], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf(NAME ": FAIL consumer %d status 0x%x\n", s, st);
			return 1;
		}
	}
	double drain_s = (double)(now_ns() - drain0) / 1e9;
	/* the dead letters nobody has read yet (they do not hold the stream
	 * open); the parent reads them as a consumer */
	uint64_t dead_at_end = 0;
	while (read_dead())
		dead_at_end++;

	/* Verdict. */
	uint64_t put = 0, lost = 0, dups = 0, dup_unexplained = 0, redeliv_unexplained = 0;
	for (int k = 0; k < opt.producers; k++) {
		uint64_t n = atomic_load(&sh->produced[k]);
		put += n;
		for (uint64_t q = 0; q < n; q++) {
			size_t li = (size_t)((uint64_t)k * per_prod + q);
			uint8_t a = atomic_load(&acks[li]);
			if (a == 0) {
				lost++;
				if (lost <= 10)
					violation("lost (never acked)", (uint64_t)k << ID_SHIFT | q);
			} else if (a > 1) {
				dups += a - 1u;
				if (!given_back[li])
					dup_unexplained += a - 1u;
			}
		}
	}
	/* deliveries >= 2 seen for a record not known to be given back: the
	 * unknown holds allow for them (counted by record, as above) */
	for (size_t li = 0; li < nids; li++)
		if (atomic_load(&first[li]) == 0 && atomic_load(&acks[li]) && !given_back[li] &&
		    !atomic_load(&requeued[li]))
			redeliv_unexplained++;
	struct shmring_info in;
	shmring_info(ring, &in);
	bool ok = atomic_load(&sh->violations) == 0 && lost == 0 && dup_unexplained == 0 &&
	          redeliv_unexplained <= unknown_holds &&
	          in.lost_records == 0 && (opt.max_deliveries || in.dead_letters == 0) &&
	          in.redeliver_waiting == 0 && in.dead_waiting == 0;
	printf(NAME ": %s: %.0f s, %d producers, %d consumers: %llu records put, %llu acked, "
	       "%llu lost; %llu consumers killed (holding %llu known + at most %llu unknown); "
	       "%llu redelivered (ring), %llu deliveries >= 2 seen, %llu requeues; "
	       "%llu duplicate acks (%llu not explained by a known hold), %llu redeliveries "
	       "of records not known given back; lost_records %llu, dead_letters %llu "
	       "(%llu read, %llu of them after the drain); drain %.2f s\n",
	       ok ? "OK" : "FAIL", opt.seconds, opt.producers, opt.consumers,
	       (unsigned long long)put, (unsigned long long)atomic_load(&sh->acks),
	       (unsigned long long)lost, (unsigned long long)kills,
	       (unsigned long long)known_holds, (unsigned long long)unknown_holds,
	       (unsigned long long)in.redelivered, (unsigned long long)atomic_load(&sh->redelivered_seen),
	       (unsigned long long)atomic_load(&sh->requeues), (unsigned long long)dups,
	       (unsigned long long)dup_unexplained, (unsigned long long)redeliv_unexplained,
	       (unsigned long long)in.lost_records, (unsigned long long)in.dead_letters,
	       (unsigned long long)atomic_load(&sh->dead_read), (unsigned long long)dead_at_end,
	       drain_s);
	shmring_detach(ring);
	return ok ? 0 : 1;
}
