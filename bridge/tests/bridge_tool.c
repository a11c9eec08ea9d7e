/*
 * bridge_tool.c - the ring ends of the bridge's cluster test (cluster.py)
 * and of perf/bridge_bench.py.
 *
 *   bridge_tool create  --ring NAME [--capacity BYTES] [--max-record BYTES] [--as out|in]
 *                       (--as: the flags the bridge gives a ring it makes)
 *   bridge_tool produce --ring NAME --producer P --count N [--size MIN[:MAX]] [--rate R]
 *   bridge_tool check   --ring NAME --producers P --count N [--timeout S] [--stall-ms MS]
 *                       [--progress FILE]  (records so far, rewritten every 100 ms)
 *   bridge_tool info    --ring NAME
 *   bridge_tool unlink  --ring NAME
 *
 * A record: struct rec (producer, sequence, put time on CLOCK_REALTIME) then
 * filler bytes derived from (producer, sequence), so that check can verify
 * every byte.  check prints one JSON object: what arrived, duplicates (and
 * whether each repeated the record just before it), per-producer order
 * violations, missing records, end-to-end latency percentiles, and every
 * stall (no record for --stall-ms) with its start time.
 *
 * Rings without SHMRING_PERSISTENT say end of stream / broken pipe while a
 * bridge restarts; both ends here wait and retry then (nothing is lost:
 * a put refused with -EPIPE did not happen).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmring.h"

struct rec {
	uint32_t magic;
	uint32_t producer;
	uint64_t seq;
	uint64_t put_ns;
};
#define REC_MAGIC 0x42524447u /* "GDRB" */

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

static size_t rec_len(uint32_t producer, uint64_t seq, size_t lo, size_t hi)
{
	return lo + (hi > lo ? mix(((uint64_t)producer << 40) ^ seq) % (hi - lo + 1) : 0);
}

static unsigned char filler(uint32_t producer, uint64_t seq, size_t i)
{
	return (unsigned char)(producer * 31u + seq * 7u + i);
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "bridge_tool: %s: %s\n", what, shmring_strerror(err));
	return 1;
}

static int open_wait(struct shmring **r, const char *name, int seconds)
{
	int rc;
	for (int i = 0; (rc = shmring_open(r, name)) == -ENOENT && i < seconds * 100; i++)
		nap_ms(10);
	return rc;
}

static int produce(const char *ring, uint32_t producer, uint64_t count, size_t lo, size_t hi,
                   double rate)
{
	struct shmring *r;
	int rc = open_wait(&r, ring, 30);
	if (rc < 0)
		return die("open", rc);
	shmring_declare(r, SHMRING_PRODUCER);
	size_t cap = hi < sizeof(struct rec) ? sizeof(struct rec) : hi;
	unsigned char *buf = malloc(cap);
	uint64_t t0 = realtime_ns(), epipe = 0;
	for (uint64_t seq = 0; seq < count; seq++) {
		if (rate > 0) {   /* paced: record seq is due at t0 + seq / rate */
			uint64_t due = t0 + (uint64_t)((double)seq * 1e9 / rate);
			uint64_t now = realtime_ns();
			if (due > now + 1000000)
				nap_ms((long)((due - now) / 1000000));
		}
		size_t len = rec_len(producer, seq, lo, hi);
		if (len < sizeof(struct rec))
			len = sizeof(struct rec);
		for (size_t i = sizeof(struct rec); i < len; i++)
			buf[i] = filler(producer, seq, i);
		for (;;) {
			struct rec h = { REC_MAGIC, producer, seq, realtime_ns() };
			memcpy(buf, &h, sizeof h);
			rc = shmring_put(r, buf, len, 200 * 1000000LL);
			if (rc == 0)
				break;
			if (rc == -EPIPE) {     /* no consumer now: the bridge restarts */
				epipe++;
				nap_ms(10);
			} else if (rc != -ETIMEDOUT) {
				return die("put", rc);
			}
		}
	}
	shmring_detach(r);
	free(buf);
	fprintf(stderr, "bridge_tool produce %u: %" PRIu64 " records (%" PRIu64
	        " puts refused with EPIPE while no consumer, retried)\n", producer, count, epipe);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void progress(const char *path, uint64_t distinct)
{
	if (!path)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "%" PRIu64 "\n", distinct);
		fclose(f);
		rename(tmp, path);
	}
}

static int check(const char *ring, uint32_t producers, uint64_t count, double timeout_s,
                 double stall_ms, const char *progress_path)
{
	struct shmring *r;
	int rc = open_wait(&r, ring, 60);
	if (rc < 0)
		return die("open", rc);
	shmring_declare(r, SHMRING_CONSUMER);
	size_t nbits = (size_t)producers * count;
	unsigned char *seen = calloc((nbits + 7) / 8, 1);
	uint64_t *next = calloc(producers, sizeof *next);  /* highest seq seen + 1 */
	uint64_t *lat = malloc(sizeof *lat * (nbits + 1));
	size_t nlat = 0;
	uint64_t received = 0, distinct = 0, dup = 0, dup_adjacent = 0, order = 0, corrupt = 0;
	uint32_t prev_p = UINT32_MAX;
	uint64_t prev_s = 0;
	unsigned finished = 0;
	size_t cap = 1 << 20;
	unsigned char *buf = malloc(cap);
	uint64_t start = realtime_ns(), last = 0, first = 0;
	double deadline_ns = (double)start + timeout_s * 1e9;
	char stalls[8192] = "";
	size_t sl = 0;
	unsigned nstalls = 0;
	uint64_t done_at = 0, progress_at = 0;
	for (;;) {
		ssize_t n = shmring_get(r, buf, cap, 50 * 1000000LL);
		uint64_t now = realtime_ns();
		if (now - progress_at > 100000000u) {
			progress(progress_path, distinct);
			progress_at = now;
		}
		if (n == -ETIMEDOUT || n == -EAGAIN || n == -EPIPE) {
			if (n == -EPIPE)
				nap_ms(10);  /* no producer now: the in bridge restarts */
			if ((double)now > deadline_ns)
				break;
			if (done_at && now - done_at > 1000000000u)
				break;   /* all in; a second more for late duplicates */
			continue;
		}
		if (n < 0)
			return die("get", (int)n);
		struct rec h;
		if ((size_t)n < sizeof h) {
			corrupt++;
			continue;
		}
		memcpy(&h, buf, sizeof h);
		if (h.magic != REC_MAGIC || h.producer >= producers || h.seq >= count) {
			corrupt++;
			continue;
		}
		for (ssize_t i = sizeof h; i < n; i++)
			if (buf[i] != filler(h.producer, h.seq, (size_t)i)) {
				corrupt++;
				break;
			}
		received++;
		if (last && (double)(now - last) > stall_ms * 1e6 && nstalls < 100) {
			sl += (size_t)snprintf(stalls + sl, sizeof stalls - sl,
			                       "%s[%.3f, %.3f]", nstalls ? ", " : "",
			                       (double)last / 1e9, (double)(now - last) / 1e9);
			nstalls++;
		}
		if (!first)
			first = now;
		last = now;
		size_t bit = (size_t)h.producer * count + h.seq;
		if (seen[bit / 8] & (1u << (bit % 8))) {
			dup++;
			if (h.producer == prev_p && h.seq == prev_s)
				dup_adjacent++;
		} else {
			seen[bit / 8] |= (unsigned char)(1u << (bit % 8));
			distinct++;
			if (h.seq + 1 < next[h.producer])
				order++;
			if (h.seq + 1 > next[h.producer])
				next[h.producer] = h.seq + 1;
			if (h.seq == count - 1 && ++finished == producers)
				done_at = now;
			lat[nlat++] = now > h.put_ns ? now - h.put_ns : 0;
		}
		prev_p = h.producer;
		prev_s = h.seq;
	}
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	double p50 = nlat ? (double)lat[nlat / 2] / 1e6 : 0;
	double p99 = nlat ? (double)lat[nlat * 99 / 100] / 1e6 : 0;
	double span = last > first ? (double)(last - first) / 1e9 : 0;
	printf("{\"received\": %" PRIu64 ", \"distinct\": %" PRIu64 ", \"expected\": %zu, "
	       "\"missing\": %zu, \"duplicates\": %" PRIu64 ", \"duplicates_adjacent\": %" PRIu64
	       ", \"order_violations\": %" PRIu64 ", \"corrupt\": %" PRIu64
	       ", \"latency_ms_p50\": %.3f, \"latency_ms_p99\": %.3f, \"seconds\": %.3f"
	       ", \"records_per_s\": %.0f, \"stalls\": [%s]}\n",
	       received, distinct, nbits, nbits - (size_t)distinct, dup, dup_adjacent, order,
	       corrupt, p50, p99, span, span > 0 ? (double)distinct / span : 0, stalls);
	shmring_detach(r);
	free(seen);
	free(next);
	free(lat);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bridge_tool create|produce|check|info|unlink --ring NAME ...\n");
		return 2;
	}
	const char *cmd = argv[1], *ring = arg(argc, argv, "--ring", NULL);
	if (!ring) {
		fprintf(stderr, "bridge_tool: --ring is required\n");
		return 2;
	}
	if (!strcmp(cmd, "create")) {
		struct shmring_config cfg = {
			.capacity = strtoull(arg(argc, argv, "--capacity", "0"), NULL, 0),
			.max_record = strtoull(arg(argc, argv, "--max-record", "0"), NULL, 0),
		};
		/* --as out|in: the flags the bridge gives a ring it makes
		 * (bridge/ringopen.c) */
		const char *as = arg(argc, argv, "--as", "");
		if (!strcmp(as, "out"))
			cfg.flags = SHMRING_PERSISTENT | SHMRING_REDELIVER;
		else if (!strcmp(as, "in"))
			cfg.flags = SHMRING_PERSISTENT;
		struct shmring *r;
		int rc = shmring_create(&r, ring, &cfg);
		if (rc < 0)
			return die("create", rc);
		shmring_detach(r);
		return 0;
	}
	if (!strcmp(cmd, "unlink")) {
		int rc = shmring_unlink(ring);
		return rc < 0 && rc != -ENOENT ? die("unlink", rc) : 0;
	}
	if (!strcmp(cmd, "info")) {
		struct shmring *r;
		struct shmring_info in;
		int rc = shmring_open(&r, ring);
		if (rc < 0)
			return die("open", rc);
		shmring_info(r, &in);
		printf("{\"records\": %zu, \"lost_records\": %" PRIu64 ", \"recovered_claims\": %"
		       PRIu64 ", \"capacity\": %zu, \"redelivered\": %" PRIu64 "}\n", in.records,
		       in.lost_records, in.recovered_claims, in.capacity, in.redelivered);
		shmring_detach(r);
		return 0;
	}
	uint64_t count = strtoull(arg(argc, argv, "--count", "1000"), NULL, 0);
	if (!strcmp(cmd, "produce")) {
		const char *size = arg(argc, argv, "--size", "16:200");
		size_t lo = strtoull(size, NULL, 0), hi = lo;
		if (strchr(size, ':'))
			hi = strtoull(strchr(size, ':') + 1, NULL, 0);
		return produce(ring, (uint32_t)strtoul(arg(argc, argv, "--producer", "0"), NULL, 0),
		               count, lo, hi, strtod(arg(argc, argv, "--rate", "0"), NULL));
	}
	if (!strcmp(cmd, "check"))
		return check(ring, (uint32_t)strtoul(arg(argc, argv, "--producers", "1"), NULL, 0),
		             count, strtod(arg(argc, argv, "--timeout", "600"), NULL),
		             strtod(arg(argc, argv, "--stall-ms", "250"), NULL),
		             arg(argc, argv, "--progress", NULL));
	fprintf(stderr, "bridge_tool: unknown command %s\n", cmd);
	return 2;
}
