/*
 * stress_procs.h - what the parts of stress_procs share (stress/stress_procs.c,
 * main and options; stress/stress_procs/ *.c, one concern each: shared.c the
 * accounting region and violations, records.c the record format, producer.c
 * and consumer.c the children, procs.c spawning and killing, deaths.c the
 * resolution of a killed child, verify.c the final accounting, report.c the
 * summary lines).  The program and what it checks: stress_procs.c.
 */
#ifndef STRESS_PROCS_H
#define STRESS_PROCS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_zc.h"

#define NAME        "stress_procs"
#define HDR         32		/* full header: sum 8, id 8, inc 4, slot 2, api 2, len 4, stamp 4 */
#define COMPACT     8		/* records from 8 to HDR - 1 bytes: id + check in 8 bytes */
#define NTINY       COMPACT	/* tiny records: 0 to 7 bytes, no id */
#define MAX_PROCS   28		/* per kind; the attachment table has 64 entries */
#define MAX_BATCH   8		/* put_many */
#define MAX_TAKE    16		/* get_many */
#define BLOCK_IDS   1024	/* ids handed to a producer at once */
#define MAX_INC     16384	/* incarnations per kind */
#define TINY_KEY    (UINT64_C(1) << 63)	/* ent.key of a tiny record: | len */
#define BAD_KEY     (UINT64_C(1) << 62)	/* ent.key of a corrupt record: ignored */
#define ID_BITS     40		/* ids fit the compact header */

#include "stress_util.h"

/* ---- options ------------------------------------------------------------- */

struct opts {
	int producers, consumers;
	double seconds;
	size_t capacity, max_record;
	int kill;
	int light; /* --light: the ring is made with SHMRING_LIGHT_PUBLISH */
	unsigned kill_min_ms, kill_max_ms;
	uint64_t seed;
	unsigned max_recovery_ms;	/* a kill not recovered from by then: FAIL */
	unsigned stall_ms;		/* no delivery at all for that long: FAIL */
	unsigned drain_s;		/* bound on each end phase */
	unsigned hold_pct, hold_us;	/* hold a reservation / peek that long, sometimes */
	int verbose;
};

/* ---- shared state --------------------------------------------------------- */

/* One record of an operation in flight: id, or TINY_KEY | len. */
struct ent {
	_Atomic uint64_t key;
	_Atomic uint32_t len;
	uint32_t pad;
};

enum pstate { P_IDLE, P_CALL, P_RESERVED, P_RECORD };
enum pop { PO_PUT, PO_PUTV, PO_PUT_MANY, PO_RESERVE, PO_COMMIT, PO_ABORT, PO_OVERSIZE, N_PO };

/* One producer incarnation.  Written by that producer (atomics, relaxed
 * unless said), read by the parent once the producer is dead or gone. */
struct pinc {
	uint32_t slot;			/* set by the parent before fork */
	pid_t pid;
	_Atomic uint32_t state, op;	/* enum pstate, enum pop */
	_Atomic uint32_t n, done_n;	/* records in flight; of them, put (P_RECORD) */
	struct ent fl[MAX_BATCH];
	_Atomic uint64_t tiny[NTINY];	/* tiny records put, per length */
	_Atomic uint64_t tiny_snap[NTINY];	/* tiny[] before the op being recorded */
	_Atomic uint64_t calls[N_PO], records, bytes, eagain, etimedout, short_commits;
	_Atomic uint64_t last_id;	/* + 1; 0: none yet */
};

enum cstate { C_IDLE, C_CALL, C_NEXTLEN, C_HOLD, C_RELEASING, C_RECORD };
enum cop { CO_GET, CO_GET_SMALL, CO_GET_MANY, CO_PEEK, CO_NEXT_LEN, N_CO };

/* One consumer incarnation. */
struct cinc {
	uint32_t slot;
	pid_t pid;
	uint8_t tag;			/* its delivery tag, 1..255 */
	_Atomic uint32_t state, op, max_n;
	_Atomic uint32_t n, applied;	/* pending records; how many recorded */
	struct ent pend[MAX_TAKE];
	_Atomic uint64_t tiny[NTINY], tiny_snap[NTINY];
	_Atomic uint64_t records, bytes, records_snap, bytes_snap;
	_Atomic uint32_t last_stamp;	/* newest stamp among records taken */
	_Atomic uint64_t calls[N_CO], eagain, etimedout, emsgsize;
};

struct shared {
	uint64_t t0_ns;
	_Atomic uint64_t next_block;
	_Atomic int stop;			/* producers: finish and leave */
	_Atomic uint32_t producers_at_stop;	/* how many were told to stop */
	_Atomic uint32_t producers_leaving;	/* + 1 by each, before its detach */
	_Atomic uint64_t violations;
	char first_violation[400];		/* the reason a FAIL line gives */
	_Atomic uint64_t deliveries;		/* successful consumer calls */
	_Atomic int ids_exhausted;
	struct pinc pinc[MAX_INC];
	struct cinc cinc[MAX_INC];
};

#define RLX memory_order_relaxed
#define LD(x) atomic_load_explicit(&(x), RLX)
#define ST(x, v) atomic_store_explicit(&(x), (v), RLX)
#define INC(x, v) atomic_fetch_add_explicit(&(x), (v), RLX)
enum kind { PROD, CONS };
static const char *const kind_name[2] = { "producer", "consumer" };

struct proc {				/* a live child */
	pid_t pid;
	uint32_t inc;
};

/* A killed child, as found at waitpid, and what its death did to the ring. */
struct death {
	enum kind kind;
	uint32_t inc;
	uint32_t state, op, max_n;	/* its in-flight state when it died */
	uint64_t t_kill;		/* ns */
	uint32_t kill_stamp;		/* us, as records carry */
	uint64_t before;		/* recovered_claims or lost_records before the kill */
	int64_t delta;			/* and what the reap added to it */
	int64_t lo, hi;			/* the range that delta must fall in */
	bool reaped, flowed, done;
	uint64_t reap_ns, flow_ns;
	uint32_t waiting[MAX_PROCS];	/* consumers that must take a newer record */
	int nwaiting;
};

struct verdict {
	uint64_t records, bytes;		/* delivered (recorded) */
	uint64_t put_records;			/* puts that returned success */
	uint64_t undelivered_min, undelivered_max;	/* committed, never delivered */
	uint64_t maybe_undelivered, maybe_delivered;
	uint64_t window_max, lost_in_calls, lost_holding;
	uint64_t recovered_sum, lost_sum;
	int64_t taken_unrecorded;		/* from the ring's join counter */
};

/* ---- shared.c and the parts that define them ---- */

extern struct opts opt;
extern struct shmring *ring;
/* dump.c: the ring's heads, attachments and op records, on stderr (once) */
void dump_ring_state(void);
extern size_t max_record;
extern struct shared *sh;
extern uint64_t ids_cap;
extern _Atomic uint32_t *owner;
extern _Atomic uint64_t *committed;
extern _Atomic uint8_t *tags;
extern const char *who;
extern struct proc slots[2][MAX_PROCS];
extern uint32_t next_inc[2];
extern int alive[2];
extern pid_t parent_pid;
extern bool cinc_dead[MAX_INC];
extern uint8_t victim_tag;
extern struct death *deaths;
extern int unreaped[2];
extern size_t first_open;
extern uint64_t *maybe_ids;
extern uint64_t maybe_tiny[NTINY];
extern uint64_t kills[2];
extern uint64_t rng_parent;
extern const char *const pop_name[];
extern const char *const pstate_name[];
extern const char *const cop_name[];
extern const char *const cstate_name[];
extern size_t ndeaths;
extern size_t nmaybe;

void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *map_shared(size_t size);
uint32_t stamp_now(void);
size_t rand_len(uint64_t *rng);
uint64_t key_for(size_t len, uint64_t id);
void make_record(unsigned char *dst, size_t len, uint64_t key, uint32_t inc, uint32_t slot,
			unsigned api, uint64_t *rng);
uint64_t check_record(const unsigned char *p, size_t len, uint32_t *stamp);
int64_t rand_timeout(uint64_t *rng);
void maybe_hold(uint64_t *rng);
void producer_main(uint32_t inc);
void consumer_main(uint32_t inc);
int spawn(enum kind k, int s);
void kill_all(void);
void on_alarm(int sig);
int kill_one(enum kind k);
bool track_deaths(const struct shmring_info *info, uint64_t now);
bool check_exits(bool expected);
int cmp_u64(const void *a, const void *b);
void verify(const struct shmring_info *info, struct verdict *v);
double report(const struct shmring_info *info, const struct verdict *v, uint64_t t_start,
	      uint64_t gap_max);

#endif /* STRESS_PROCS_H */
