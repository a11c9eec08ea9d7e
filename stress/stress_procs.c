/*
 * stress_procs.c - P producer and C consumer PROCESSES on one anonymous ring,
 * every API at random, every record accounted for; with --kill, a killer
 * SIGKILLs random producers and consumers throughout, respawns them, and
 * checks the crash-recovery rules of docs/design.md section 7.
 * docs/stress.md explains what is checked and why the rules are exact.
 *
 * usage: stress_procs [--producers P] [--consumers C] [--seconds S]
 *                     [--capacity BYTES] [--max-record BYTES] [--kill] [--light]
 *                     [--kill-ms MIN:MAX] [--seed N] [--max-recovery-ms MS]
 *                     [--stall-ms MS] [--drain-s S] [--hold PCT:MAX_US] [-v|-vv]
 *        stress_procs --redeliver [options of stress_redeliver.c]
 *
 * Processes.  The parent makes the ring (anonymous, inherited by fork) and a
 * shared accounting region (MAP_SHARED | MAP_ANONYMOUS), then forks: for each
 * child it declares the child's role, forks, and leaves the role again (the
 * idiom of include/shmring.h), so the child is counted from before fork()
 * returns and the parent never holds a role for long.  A respawn forks the
 * replacement first and kills the victim after, so the number of producers
 * (consumers) never drops to zero: no early end of stream or broken pipe,
 * even with --producers 1.
 *
 * Records.  Every record of 8 bytes or more names itself with a record id
 * (ids come from a shared counter in blocks of BLOCK_IDS, so one producer
 * incarnation's ids increase; its "sequence").  len >= HDR: a header
 * (FNV-1a checksum of everything after it, id, producer incarnation,
 * producer slot, length, a timestamp) and random payload; 8 <= len < HDR: the
 * id and a 24-bit check of (id, len), then a pattern of the id; len < 8: a
 * pattern of the length ("tiny" records, counted per length).
 *
 * Accounting (shared): per id a "committed" bit (the producer's put
 * returned success) and a delivery tag byte (0, or the tag of the consumer
 * incarnation that recorded it: the CAS 0 -> tag catches a second delivery);
 * per producer incarnation the operation in flight and its records; per
 * consumer incarnation the call in flight and the records it has taken but
 * not finished recording.  The parent resolves a killed child's in-flight
 * state at waitpid() and attributes ring counters to each death.
 */
#include "stress_procs.h"

/* ---- main ---------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: " NAME " [--producers P] [--consumers C] [--seconds S]\n"
		"                    [--capacity BYTES] [--max-record BYTES] [--kill] [--light]\n"
		"                    [--kill-ms MIN:MAX] [--seed N] [--max-recovery-ms MS]\n"
		"                    [--stall-ms MS] [--drain-s S] [--hold PCT:MAX_US] [-v|-vv]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	opt = (struct opts){ .producers = 3, .consumers = 3, .seconds = 10,
			     .capacity = 64 * 1024, .kill_min_ms = 50, .kill_max_ms = 200,
			     .seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32,
			     .max_recovery_ms = 10000, .stall_ms = 20000, .drain_s = 60,
			     .hold_pct = 5, .hold_us = 1000 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-v") || !strcmp(a, "-vv")) {
			opt.verbose += a[2] ? 2 : 1;
			continue;
		}
		if (!strcmp(a, "--kill")) {
			opt.kill = 1;
			continue;
		}
		if (!strcmp(a, "--light")) { /* a ring made with SHMRING_LIGHT_PUBLISH */
			opt.light = 1;
			continue;
		}
		const char *v = i + 1 < argc ? argv[++i] : NULL;
		if (!v)
			usage();
		if (stress_common_opt(a, v, &opt.producers, &opt.consumers, &opt.seconds,
				      &opt.capacity))
			continue;
		if (!strcmp(a, "--max-record"))
			opt.max_record = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--kill-ms")) {
			if (sscanf(v, "%u:%u", &opt.kill_min_ms, &opt.kill_max_ms) != 2)
				usage();
		} else if (!strcmp(a, "--hold")) {
			if (sscanf(v, "%u:%u", &opt.hold_pct, &opt.hold_us) != 2)
				usage();
		} else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--max-recovery-ms"))
			opt.max_recovery_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--stall-ms"))
			opt.stall_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--drain-s"))
			opt.drain_s = (unsigned)atoi(v);
		else
			usage();
	}
	if (opt.producers < 1 || opt.producers > MAX_PROCS || opt.consumers < 1 ||
	    opt.consumers > MAX_PROCS || opt.seconds < 0 || opt.kill_min_ms > opt.kill_max_ms ||
	    opt.drain_s < 1)
		usage();
}
/* The ring and the shared accounting; -1 if the ring cannot be made. */
static int setup(void)
{
	struct shmring_config cfg = { .capacity = opt.capacity, .max_record = opt.max_record,
		                      .flags = opt.light ? SHMRING_LIGHT_PUBLISH : 0 };
	struct shmring_info info;

	int rc = shmring_create(&ring, NULL, &cfg);
	if (rc) {
		printf(NAME ": FAIL shmring_create: %s\n", shmring_strerror(rc));
		return -1;
	}
	shmring_info(ring, &info);
	max_record = info.max_record;
	if (max_record < HDR) {
		printf(NAME ": FAIL max_record %zu: at least %d needed\n", max_record, HDR);
		return -1;
	}

	/* Accounting.  Ids: enough for ~4M records a second (virtual only). */
	double want = (opt.seconds + 60) * 4e6;
	ids_cap = want > (double)(UINT64_C(1) << 34) ? UINT64_C(1) << 34 : (uint64_t)want;
	ids_cap = (ids_cap / BLOCK_IDS + 1) * BLOCK_IDS;
	sh = map_shared(sizeof *sh);
	owner = map_shared(ids_cap / BLOCK_IDS * sizeof *owner);
	committed = map_shared(ids_cap / 8);
	tags = map_shared(ids_cap);
	sh->t0_ns = now_ns();
	if (opt.verbose)
		fprintf(stderr, NAME ": %d producers, %d consumers, capacity %zu, max_record %zu, "
			"%s, seed %llu\n", opt.producers, opt.consumers, info.capacity, max_record,
			opt.kill ? "kill mode" : "no kills", (unsigned long long)opt.seed);
	return 0;
}

/* The run: watch (exits, deaths, census, stalls) and, with --kill, kill.
 * Returns false on a violation; -1 in *fatal if a process could not start. */
static bool run(uint64_t t_start, uint64_t *gap_max, int *fatal)
{
	struct shmring_info info;
	uint64_t t_end = t_start + (uint64_t)(opt.seconds * 1e9);
	uint64_t last_deliveries = 0, last_change = t_start;
	uint64_t next_kill = t_start + (uint64_t)opt.kill_min_ms * 1000000u;
	bool ok = true;

	for (;;) {
		uint64_t now;
		if (!check_exits(false))
			ok = false;
		shmring_info(ring, &info);
		now = now_ns();
		if (!track_deaths(&info, now))
			ok = false;
		if (info.producers < (unsigned)alive[PROD] || info.consumers < (unsigned)alive[CONS])
			violation("census: %u producers and %u consumers attached, %d and %d alive",
				  info.producers, info.consumers, alive[PROD], alive[CONS]);
		uint64_t dl = atomic_load(&sh->deliveries);
		if (dl != last_deliveries) {
			last_deliveries = dl;
			last_change = now;
		} else if (now - last_change > *gap_max) {
			*gap_max = now - last_change;
			if (*gap_max > (uint64_t)opt.stall_ms * 1000000u) {
				violation("stall: no record delivered for %u ms", opt.stall_ms);
				ok = false;
			}
		}
		if (!ok || now >= t_end)
			return ok;
		if (opt.kill && now >= next_kill) {
			enum kind k = rnd(&rng_parent) % 2 ? PROD : CONS;
			if (unreaped[k] >= 0)	/* one unreaped death per kind: exact deltas */
				k = (enum kind)!k;
			if (unreaped[k] < 0) {
				if (kill_one(k)) {
					*fatal = -1;
					return false;
				}
				next_kill = now_ns() + (uint64_t)(opt.kill_min_ms +
					rnd(&rng_parent) % (opt.kill_max_ms - opt.kill_min_ms + 1)) * 1000000u;
			}
		}
		sleep_ms(1);
	}
}

/* Let the last kills recover (each bounded by --max-recovery-ms). */
static bool recover_last(void)
{
	struct shmring_info info;
	bool ok = true;

	while (ok && first_open < ndeaths) {
		if (!check_exits(false))
			ok = false;
		shmring_info(ring, &info);
		if (!track_deaths(&info, now_ns()))
			ok = false;
		sleep_ms(1);
	}
	return ok;
}

/* The end: producers stop and detach (end of stream once the last has
 * gone), consumers drain to -EPIPE and detach; each phase bounded by
 * --drain-s. */
static bool drain(void)
{
	struct shmring_info info;
	bool ok = true;

	atomic_store(&sh->producers_at_stop, (uint32_t)alive[PROD]);
	atomic_store(&sh->stop, 1);
	const char *phase = "producers to stop";
	for (uint64_t t = now_ns(); alive[PROD] > 0 || alive[CONS] > 0;) {
		if (!check_exits(true))
			ok = false;
		if (alive[PROD] == 0 && phase[0] == 'p') {
			phase = "consumers to drain the ring";
			t = now_ns();
		}
		if (now_ns() - t > (uint64_t)opt.drain_s * 1000000000u) {
			shmring_info(ring, &info);
			violation("waited %u s for %s: %d producers and %d consumers still running, "
				  "%zu records (%zu bytes) in the ring", opt.drain_s, phase,
				  alive[PROD], alive[CONS], info.records, info.bytes);
			kill_all();
			return false;
		}
		sleep_ms(1);
	}
	return ok;
}

/* The drained ring is empty, at end of stream, and closes. */
static void check_end(bool ok, struct shmring_info *info)
{
	shmring_info(ring, info);
	if (ok && (info->records || info->bytes || !info->eof || info->producers ||
		   info->consumers))
		violation("after the drain: records %zu bytes %zu eof %d producers %u consumers %u",
			  info->records, info->bytes, info->eof, info->producers, info->consumers);
	int rc = shmring_close(ring);
	if (rc)
		violation("close: %d", rc);
	shmring_info(ring, info);
	if (!info->closed)
		violation("closed ring says closed=0");
}

/* --redeliver: the at-least-once stress (SHMRING_REDELIVER, peeking
 * consumers SIGKILLed) is its own program, stress_redeliver.c, next to this
 * one; run it with the same arguments. */
static int run_redeliver(char **argv)
{
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 2;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	snprintf(path, sizeof path, "%.*s/stress_redeliver", slash ? (int)(slash - self) : 1,
	         slash ? self : ".");
	argv[0] = path;
	execv(path, argv);
	perror(NAME ": exec stress_redeliver");
	return 2;
}

int main(int argc, char **argv)
{
	struct shmring_info info;
	uint64_t gap_max = 0;
	int fatal = 0;

	for (int i = 1; i < argc; i++) /* redeliver hook */
		if (!strcmp(argv[i], "--redeliver"))
			return run_redeliver(argv);
	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	parent_pid = getpid();
	rng_parent = mix(opt.seed ^ 0x5eed) | 1;
	if (setup())
		return 1;
	signal(SIGALRM, on_alarm);
	alarm((unsigned)opt.seconds + opt.max_recovery_ms / 1000 + 3 * opt.drain_s + 120);

	/* Declare, fork, leave: every child counted before fork() returns. */
	for (int s = 0; s < opt.producers && !fatal; s++)
		fatal = spawn(PROD, s);
	for (int s = 0; s < opt.consumers && !fatal; s++)
		fatal = spawn(CONS, s);
	uint64_t t_start = now_ns();
	bool ok = !fatal && run(t_start, &gap_max, &fatal);
	if (fatal) {
		kill_all();
		printf(NAME ": FAIL could not start a process (see above) seed=%llu\n",
		       (unsigned long long)opt.seed);
		return 1;
	}
	ok = ok && recover_last();
	ok = drain() && ok;
	double secs = (double)(now_ns() - t_start) / 1e9;
	check_end(ok, &info);

	struct verdict v;
	verify(&info, &v);
	double rmax = report(&info, &v, t_start, gap_max);
	uint64_t bad = atomic_load(&sh->violations);
	if (bad)
		printf(NAME ": FAIL %s (%llu violations in all, the first 30 on stderr) "
		       "records=%llu kills=%llu seconds=%.1f seed=%llu\n", sh->first_violation,
		       (unsigned long long)bad, (unsigned long long)v.records,
		       (unsigned long long)(kills[0] + kills[1]), secs, (unsigned long long)opt.seed);
	else
		printf(NAME ": OK records=%llu bytes=%llu kills=%llu (producers=%llu consumers=%llu) "
		       "recovered_claims=%llu lost_records=%llu recovery_ms_max=%.1f seconds=%.1f\n",
		       (unsigned long long)v.records, (unsigned long long)v.bytes,
		       (unsigned long long)(kills[0] + kills[1]), (unsigned long long)kills[0],
		       (unsigned long long)kills[1], (unsigned long long)info.recovered_claims,
		       (unsigned long long)info.lost_records, rmax, secs);
	shmring_detach(ring);
	free(deaths);
	free(maybe_ids);
	return bad ? 1 : 0;
}
