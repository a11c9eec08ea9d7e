/*
 * harness.h - shmring-bench: the benchmark harness of perf/harness/.
 *
 * One program measures shmring against the alternatives in the same run:
 *   transports (tp_*.c)   one file per kind of queue, behind struct transport;
 *   record.c              the framing and the check every record goes through;
 *   hist.c                a log-bucketed latency histogram;
 *   run.c                 forked (or threaded) parties behind a start gate;
 *   floor.c               the physical floor: cache-line ping-pong, memcpy;
 *   sc_*.c                the scenarios: throughput, ping-pong, paced, idle,
 *                         burst;
 *   report.c, json.c,     tables and targets, --json, --markdown, --plot;
 *   plot.c
 *   main.c                the command line and the default suite.
 * docs/perf.md describes what is measured and how.
 */
#ifndef SHMRING_BENCH_HARNESS_H
#define SHMRING_BENCH_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "shmring_latch.h"

#include "../perf_common.h"	/* CACHE_LINE, now_ns, cpu_relax */

#define MAX_PARTIES 64		/* producers + consumers of one run */
#define MAX_REPS 16
#define MARKER_TAG UINT64_MAX	/* the tag of an end-of-run marker record */
#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

/* ---- util.c -------------------------------------------------------------- */

/* Zeroed MAP_SHARED memory (survives fork); exits on failure. */
void *shared_alloc(size_t size);
void shared_free(void *p, size_t size);
/* Map shared memory's pages into this process now: a forked party does not
 * inherit its parent's page tables for a shared mapping, and would fault
 * every page in again inside the timing (shmring parties call
 * shmring_prefault; the other shared-memory channels this). */
void shared_prefault(void *p, size_t size);
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
/* The CPUs this process may use, in order; returns how many (at most max). */
int usable_cpus(int *cpus, int max);
void pin_to_cpu(int cpu);	/* the calling thread; -1: leave it */
int64_t rusage_cpu_ns(const struct rusage *ru);
void sleep_ns(int64_t ns);
/* mkdir -p of the folders above the last '/' of path. */
int mkdir_parents(const char *path);
/* "64", "4K", "1M", "1MiB", "1.5M" -> bytes; 0 on a bad string. */
size_t parse_size(const char *s);
/* Bytes as "64 B", "4 KiB", "1 MiB". */
const char *fmt_size(size_t bytes, char *buf, size_t len);
const char *fmt_si(double v, char *buf, size_t len);	/* 12.3M, 456k */
const char *fmt_ns(double ns, char *buf, size_t len);	/* 123 ns, 4.5 us, 6.7 ms */

struct machine {
	char cpu_model[128];
	int cores_online;	/* sysconf(_SC_NPROCESSORS_ONLN) */
	int cores_usable;	/* sched_getaffinity */
	char kernel[128];	/* uname -srm */
	char hostname[64];
	double load1, load5, load15;	/* /proc/loadavg at start */
	char date[40];		/* ISO 8601, local time with offset */
	int root;		/* euid 0 */
};
void machine_info(struct machine *m);

/* A progress line on stderr when it is a terminal, nothing otherwise. */
void progress_init(int enabled, int total_steps);
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void progress_step(void);	/* one step done */
void progress_clear(void);	/* erase the line (before printing a table) */

/* ---- record.c: the framing every transport carries ------------------------
 * A record of len >= 8 bytes:
 *   [0, 8)    tag: producer index << 48 | sequence number (MARKER_TAG: the
 *             end-of-run marker a consumer stops at)
 *   [8, 16)   a timestamp, ns on CLOCK_MONOTONIC (the intended send time in
 *             the paced scenario), if len >= 16
 *   [16, len) a pattern derived from the tag, every byte of it checked. */
void rec_fill(void *buf, size_t len, uint64_t tag, int64_t ts);
/* 0 if buf[0, len) is a good record of expected_len bytes; otherwise -1 and
 * a reason in why. */
int rec_check(const void *buf, size_t len, size_t expected_len, char *why, size_t whylen);
static inline uint64_t rec_tag(const void *buf)
{
	uint64_t t;
	__builtin_memcpy(&t, buf, 8);
	return t;
}
static inline int64_t rec_ts(const void *buf)
{
	int64_t t;
	__builtin_memcpy(&t, (const char *)buf + 8, 8);
	return t;
}
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}
static inline uint64_t make_tag(unsigned producer, uint64_t seq)
{
	return (uint64_t)producer << SEQ_BITS | (seq & SEQ_MASK);
}

/* ---- hist.c: log-bucketed histogram of nanoseconds ------------------------
 * 32 sub-buckets per power of two: a value is known to within 1/32 (3%). */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)
struct hist {
	uint64_t count, min, max;
	double sum;
	uint64_t b[HIST_BUCKETS];
};
void hist_reset(struct hist *h);
static inline unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned k = 63u - (unsigned)__builtin_clzll(v);
	return (k - HIST_SUB_BITS + 1) * HIST_SUB + (unsigned)((v >> (k - HIST_SUB_BITS)) & (HIST_SUB - 1));
}
static inline void hist_add(struct hist *h, int64_t v)
{
	uint64_t u = v < 0 ? 0 : (uint64_t)v;
	h->b[hist_index(u)]++;
	h->count++;
	h->sum += (double)u;
	if (h->count == 1 || u < h->min)
		h->min = u;
	if (u > h->max)
		h->max = u;
}
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1): the upper bound of its bucket (never above
 * the maximum seen).  0 when empty. */
double hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);
/* For a CDF: calls fn(value, cumulative fraction) at each non-empty bucket. */
void hist_walk(const struct hist *h, void (*fn)(double v, double frac, void *arg), void *arg);

/* ---- transports ---------------------------------------------------------- */

enum role { ROLE_PRODUCER = 1, ROLE_CONSUMER = 2 };

struct chan_cfg {
	size_t rec_size;	/* every record of the run has this many bytes (the
				   most, when rec_min is set) */
	size_t rec_min;		/* > 0: each record's length is rec_len(): from
				   rec_min to rec_size, fixed by its tag */
	size_t queue_bytes;	/* the buffering every transport is given */
	int producers, consumers;	/* parties on this channel */
	int nonblock;		/* calls never wait: -EAGAIN, the caller spins */
	int pipe_exact;		/* pipe: read header then payload (no buffering) */
};
/* A record's length: rec_size, or when lengths vary, one from rec_min to
 * rec_size that its tag fixes (so the consumer knows what to expect). */
static inline size_t rec_len(const struct chan_cfg *cfg, uint64_t tag)
{
	if (!cfg->rec_min)
		return cfg->rec_size;
	return cfg->rec_min + (size_t)(mix64(tag) % (cfg->rec_size - cfg->rec_min + 1));
}


/* One party's end of a channel, in that party's own memory. */
struct endpoint {
	const struct transport *tp;
	void *ch;		/* the channel (from setup) */
	const struct chan_cfg *cfg;
	int role;
	unsigned char *buf;	/* a record-sized buffer (copy transports) */
	size_t buf_len;
	void *priv;		/* the transport's own per-endpoint state */
	char err[160];		/* a transport-level error, for the report */
};

#define TP_INPROC 0x1u		/* the parties are threads of one process */
#define TP_SHMRING 0x2u		/* one of shmring's APIs (for the targets) */

struct transport {
	const char *name;	/* the key on the command line and in JSON */
	const char *desc;	/* a short description for tables */
	unsigned flags;
	/* Make a channel for cfg (in the parent before fork, or in the single
	 * child of an in-process run).  0, -errno, or 1 if this transport cannot
	 * carry this configuration (why says why: it is reported as n/a). */
	int (*setup)(void **ch, const struct chan_cfg *cfg, char *why, size_t whylen);
	/* Touch the channel's memory so that page faults stay out of the timed
	 * part (same process, after setup; optional). */
	void (*prefault)(void *ch, const struct chan_cfg *cfg);
	/* In a party (after fork / in its thread): set ep up for role. */
	int (*open)(struct endpoint *ep, int role);
	void (*close)(struct endpoint *ep);
	void (*teardown)(void *ch, const struct chan_cfg *cfg);
	/* Producer: *rec = room for a record of len bytes (copy transports: the
	 * endpoint's buffer; zero-copy: the ring itself).  send_end sends it.
	 * Either may return -EAGAIN when cfg->nonblock (call it again). */
	int (*send_begin)(struct endpoint *ep, size_t len, void **rec);
	int (*send_end)(struct endpoint *ep, size_t len);
	/* Push records held back (batches); NULL if none are. */
	int (*flush)(struct endpoint *ep);
	/* Consumer: the next record (its length, or -EAGAIN / -errno) at *rec,
	 * valid until recv_end. */
	ssize_t (*recv_begin)(struct endpoint *ep, const void **rec);
	int (*recv_end)(struct endpoint *ep);
	/* Consumer: records already taken into the endpoint's own buffer (a
	 * batch), which no other consumer can get any more; NULL: none. */
	size_t (*buffered)(struct endpoint *ep);
	/* A note on how the transport was sized for cfg (JSON and docs). */
	void (*describe)(void *ch, const struct chan_cfg *cfg, char *buf, size_t len);
};

extern const struct transport tp_shmring, tp_shmring_zc, tp_shmring_batch, tp_pipe,
	tp_seqpacket, tp_mq, tp_mutex_ring, tp_wfcqueue;
extern const struct transport *const all_transports[];
extern const int n_transports;
/* tp_epoll.c: consumers waiting in epoll_wait; only with -t. */
extern const struct transport tp_shmring_efd, tp_shmring_efd_direct, tp_seqpacket_epoll;
extern const struct transport tp_shmring_inline;
extern const struct transport tp_shmring_light;
extern const struct transport *const extra_transports[];
extern const int n_extra_transports;
const struct transport *transport_by_name(const char *name);

/* Helpers shared by the transports (tp_common.c). */
int ep_alloc_buf(struct endpoint *ep, size_t len);
/* Calls that the harness retries while they return -EAGAIN (spin mode),
 * with a pause between tries; the same loop for every transport. */
int send_record(struct endpoint *ep, size_t len, uint64_t tag, int64_t ts);
ssize_t recv_record(struct endpoint *ep, const void **rec);
int ep_flush(struct endpoint *ep);
void ep_seterr(struct endpoint *ep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- run.c: parties behind a start gate ----------------------------------- */

struct run;
struct party {
	struct run *run;
	int index;		/* 0 .. nparties-1 */
	int role;		/* scenario-defined */
	int cpu;		/* pinned to, or -1 */
	void *local;		/* the scenario's per-party state (its own memory) */
};

/* Results a party leaves in shared memory. */
struct party_out {
	int64_t t_begin, t_end, t_first;
	uint64_t records;
	int failed;
	char msg[200];
	struct rusage ru;	/* filled by the parent (wait4), cross-process only */
	int64_t cpu_prep_ns;	/* the party's CPU until the gate (its thread's) */
};

struct scen_ops {
	/* Make the channels: in the parent, or in the one child of an
	 * in-process run.  0, -errno, or 1 (not applicable: run->why). */
	int (*setup)(struct run *r);
	void (*teardown)(struct run *r);
	/* In the party before the start gate; then main after it. */
	int (*prep)(struct party *p);
	int (*main)(struct party *p);
	void (*fini)(struct party *p);
};

struct run {
	/* in */
	const struct transport *tp;
	const struct scen_ops *ops;
	int nparties;
	int producers;			/* run_shared.producers_left starts here */
	int inproc;
	int pin[MAX_PARTIES];		/* cpu per party or -1 */
	int role[MAX_PARTIES];
	void *scen;			/* the scenario's parameters and channels */
	int64_t timeout_ns;		/* kill the run after this long */
	/* shared with the parties (MAP_SHARED) */
	struct run_shared *sh;
	/* out */
	int na;				/* 1: not applicable (why) */
	int failed;
	char why[240];
	int64_t t_gate;			/* when the gate opened */
	int64_t cpu_ns;			/* user+sys of every party */
	int64_t wall_ns;		/* gate open to the last party's exit */
};

struct run_shared {
	struct shmring_latch ready;	/* every party arrives here ... */
	struct shmring_latch gate;	/* ... then waits for the gate */
	_Alignas(CACHE_LINE) atomic_int producers_left;
	/* sc_throughput: consumers that have not stopped yet (each arrives in
	 * its fini, whatever became of it) */
	_Alignas(CACHE_LINE) struct shmring_latch consumers_left;
	_Alignas(CACHE_LINE) struct party_out out[MAX_PARTIES];
	char desc[240];		/* setup's describe(), seen by the parent even
				   when setup ran in the child (in-process) */
};

/* Runs r; returns 0, or -1 if it failed (r->why says why). */
int run_parties(struct run *r);
/* Default pinning: P+C <= usable CPUs: one CPU each (producers first);
 * otherwise none. */
void run_default_pins(struct run *r, int nparties);
void party_fail(struct party *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct party_out *party_out(struct party *p);
extern int g_ncpus;
extern int g_cpus[256];

/* ---- measurements and the report ------------------------------------------ */

#define MAX_FIGS 14
struct fig {
	const char *name;	/* a JSON key, e.g. "records_per_s" */
	double v;
};

enum scen {
	SC_THROUGHPUT,
	SC_PINGPONG_SPIN,
	SC_PINGPONG_BLOCK,
	SC_PACED,
	SC_IDLE,
	SC_BURST,
	SC_NSCEN
};
extern const char *const scen_name[SC_NSCEN];

/* One measurement: one transport (or floor) at one point of a scenario. */
struct meas {
	enum scen sc;
	const char *transport;	/* name, or "floor" */
	int is_floor;
	int P, C;
	size_t size;
	uint64_t count;		/* records (or round trips) per rep */
	int reps;
	int ok;			/* every record arrived and checked */
	int na;			/* not applicable here (note says why) */
	char note[240];		/* why n/a or failed */
	char desc[240];		/* how the transport was set up */
	/* per-rep primary figure (throughput rec/s, latency ns, ...) */
	double rep[MAX_REPS];
	int nrep;
	double value;		/* median of rep[] */
	double x_pipe, x_floor;	/* median over reps of the per-rep ratio; 0 = n/a */
	struct fig figs[MAX_FIGS];
	int nfigs;
	struct hist *hist;	/* latency scenarios: over every rep */
	double secs;		/* time spent measuring */
	int64_t cpu_ns;		/* user+sys of the parties, all reps */
	uint64_t records_total;	/* all reps */
};

struct meas *meas_new(enum scen sc, const char *transport, int P, int C, size_t size,
		      uint64_t count);
void meas_fig(struct meas *m, const char *name, double v);
double meas_get(const struct meas *m, const char *name);	/* NAN if absent */
void meas_finish(struct meas *m);	/* value = median of reps */
extern struct meas **g_meas;
extern int g_nmeas;

double median_of(const double *v, int n);
/* After one rep of a measurement: 1 if the run worked and its figures may
 * be taken; 0 if it did not, the measurement then marked n/a (r->na: the
 * transport cannot run here) or failed, with the run's reason as its note
 * (and, if zero_rep, a 0 recorded for the rep). */
struct run;
int meas_rep_ok(struct meas *m, const struct run *r, int rc, int zero_rep);
/* Median over reps of a->rep[i] / b->rep[i]. */
double rep_ratio(const struct meas *a, const struct meas *b);

/* ---- options -------------------------------------------------------------- */

struct pc {
	int P, C;
};

struct opts {
	const struct transport *tps[16];
	int ntps;
	size_t sizes[32];
	int nsizes;
	struct pc procs[32];
	int nprocs;
	size_t lat_size;	/* ping-pong, paced, burst, idle */
	uint64_t count;		/* throughput records per run; 0: by size */
	uint64_t pp_spin, pp_block;	/* ping-pong round trips */
	double rate;		/* paced: records per second */
	double duration;	/* paced: seconds */
	double idle_s;
	uint64_t burst;
	int reps, reps_given;
	size_t queue_bytes;
	int pipe_exact;
	int ring_spin;		/* shmring_set_spin on every handle; -1: default */
	int pin;		/* pin parties to CPUs when they fit (default 1) */
	int quick;
	int progress;		/* -1 auto */
	const char *json, *plot, *markdown;
	int targets;		/* print the targets section */
	int default_suite;
	int64_t run_timeout_ns;
	char cmdline[1024];
};
extern struct opts g_opt;

/* Scenarios (sc_*.c): each appends its measurements to g_meas and prints
 * its table(s). */
void sc_throughput(struct pc pc, size_t size);
/* The telemetry-shaped point: 8 producers, 1 consumer, records of 20 to
 * 2000 bytes (each length drawn from its tag), shmring against the pipe and
 * the mutex ring (the transports of -t among shmring, shmring-batch, pipe,
 * mutex-ring). */
void sc_telemetry(void);
#define TELEM_P   8
#define TELEM_MIN 20
#define TELEM_MAX 2000
void sc_pingpong(int spin);
void sc_pingpong_event_fd(void);
void sc_pingpong_inline(void);
void sc_throughput_inline(void);
void sc_paced(void);
void sc_idle(void);
void sc_burst(void);
uint64_t throughput_count(size_t size, int P, int C);

/* sc_oneway.c: one channel, one producer, one consumer. */
/* ---- tp_common.c: a scenario's channel and its parties' endpoints --------- */
/* A scenario's setup: the channel made (*ch), its pages mapped and its
 * description in the run's shared results; 0, or the transport's error with
 * r->why set. */
int channel_setup(struct run *r, const struct transport *tp, void **ch,
		  const struct chan_cfg *cfg);
/* A scenario of one channel whose r->scen begins with this (struct oneway,
 * the throughput scenario's) sets, tears down and opens it with the
 * channel_scen_* ops below, and closes with endpoint_close. */
struct channel {
	const struct transport *tp;
	struct chan_cfg cfg;
	void *ch;		/* from setup */
};
int channel_scen_setup(struct run *r);
void channel_scen_teardown(struct run *r);
int channel_scen_prep(struct party *p);
void channel_teardown(const struct transport *tp, void **ch, const struct chan_cfg *cfg);
/* A party's endpoint on the channel, in its role, as p->local; 0, or -1
 * with the party failed ("open: <the transport's reason>"). */
int endpoint_open(struct party *p, const struct transport *tp, void *ch,
		  const struct chan_cfg *cfg);
void endpoint_close(struct party *p);	/* and free p->local */

struct oneway {
	struct channel chan;	/* first: the channel_scen_* ops use it */
	char desc[240];
	int (*producer)(struct party *p, struct oneway *s, struct endpoint *ep);
	int (*consumer)(struct party *p, struct oneway *s, struct endpoint *ep);
	void *sh;		/* the scenario's shared results */
	double arg[4];		/* the scenario's parameters */
};
void oneway_init(struct oneway *s, const struct transport *tp, size_t size);
int oneway_run(struct oneway *s, struct run *r);
/* 0: record seq of producer 0, checked; 1: a marker; -1: failed. */
int oneway_check(struct party *p, struct oneway *s, const void *rec, ssize_t n, uint64_t seq);
int oneway_marker(struct party *p, struct endpoint *ep);
/* A consumer's next record, expected to be producer 0's record seq or a
 * marker: received, checked and released, with the time it arrived (*t) and
 * the timestamp it carries (*ts, for a record); 0: a record, 1: the marker,
 * -1: failed (the party says why). */
int oneway_take(struct party *p, struct oneway *s, struct endpoint *ep, uint64_t seq,
		int64_t *t, int64_t *ts);

/* floor.c */
double floor_memcpy_bps(size_t size);	/* bytes per second, one core */
/* records/s through a bare SPSC ring between two pinned processes; -1 with
 * why on failure (or fewer than 2 CPUs). */
double floor_spsc(size_t size, uint64_t count, size_t queue_bytes, char *why, size_t whylen);
/* The cache-line ping-pong; pad_ns > 0: each side busy-waits that long
 * before it answers (the padded floor).  1: needs 2 CPUs; -1: failed. */
int floor_pingpong(uint64_t rounds, int nbatches, int64_t pad_ns, struct hist *h,
		   double *batch_ns, char *why, size_t whylen);
/* Both CPUs spin on the clock for secs: gaps of 1 us or more per second per
 * CPU, and the share of the time they took.  1: needs 2 CPUs; -1: failed. */
int floor_host_stalls(double secs, double *per_sec, double *stolen_frac);
/* The shared ping-pong driver (sc_pingpong.c, floor.c): runs `rounds` round
 * trips of rt() in nbatches batches; each batch's mean one-way time goes to
 * batch_ns[], sampled single round trips (one-way = half) to h. */
int pp_drive(int (*rt)(void *arg, uint64_t seq), void *arg, uint64_t rounds, int nbatches,
	     int sample_every, struct hist *h, double *batch_ns);

/* report.c */
const char *meas_label(const struct meas *m);	/* in tables and plots */
const char *meas_key(const struct meas *m);	/* in the JSON */
void report_table(enum scen sc, struct meas **ms, int n, const char *title);
void report_targets(FILE *f, int markdown);
void report_machine(FILE *f, const struct machine *m);
void targets_json(FILE *f);	/* the targets as a JSON array */
extern struct machine g_machine;
/* markdown: every table is also appended here when --markdown is given */
extern FILE *g_md;

/* json.c */
int write_json(const char *path);

/* plot.c */
int write_plots(const char *dir);

#endif /* SHMRING_BENCH_HARNESS_H */
