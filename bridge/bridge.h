/*
 * bridge.h - shmring-nats: the interfaces between its source files.
 *
 *   main.c     command line, signals, dispatch
 *   natsconn.c connection (reconnects), JetStream context, the stream
 *   ringopen.c open-or-create a persistent ring
 *   msgid.c    a ring file's identity and the Nats-Msg-Id of a record
 *   out.c      ring -> JetStream (peek, publish, ack, release)
 *   in.c       JetStream -> ring (fetch, put, ack)
 *   inpos.c    the in direction's committed position, kept beside the ring
 *   stats.c    the periodic one-line stats on stderr
 *
 * docs/bridge.md has the protocol and the guarantees.
 */
#ifndef SHMRING_NATS_BRIDGE_H
#define SHMRING_NATS_BRIDGE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "shmring.h"

/* The out bridge holds a ring handle per SHMRING_MAX_INFLIGHT peeked records,
 * each an attachment (SHMRING_MAX_ATTACH per ring): at most 16 of them. */
#define BRIDGE_MAX_PENDING 1024

struct bridge_args {
	const char *mode;        /* "out" or "in" */
	const char *ring;
	const char *servers;     /* comma-separated URLs */
	const char *stream;
	const char *subject;
	const char *durable;     /* in only */
	int         replicas;    /* for a stream this bridge creates */
	int         max_pending; /* out: publishes awaiting their ack */
	int         batch;       /* in: messages per fetch at most */
	int64_t     ack_wait_ms; /* out: MaxWait of a publish; in: the consumer's AckWait */
	int64_t     dup_window_ms; /* the stream's Duplicates window, if created */
	double      stats_interval; /* seconds; 0: no stats */
	size_t      capacity;    /* for a ring this bridge creates */
	size_t      max_record;
};

/* main.c: set by SIGINT/SIGTERM.  stop_requested: finish what is in flight
 * and exit; forced (a second signal): exit now. */
extern volatile sig_atomic_t stop_requested;
extern volatile sig_atomic_t stop_forced;

/* stats.c: counters shared by the working thread(s) and the printer. */
struct bridge_stats {
	_Atomic uint64_t records;     /* out: released after ack; in: put */
	_Atomic uint64_t in_flight;   /* out: published, not acked; in: fetched, not put */
	_Atomic uint64_t retries;     /* records published again (out), fetch errors (in) */
	_Atomic uint64_t duplicates;  /* dropped as already stored/put */
	_Atomic uint64_t resyncs;     /* out: rewinds; in: consumer resets */
	pthread_mutex_t  err_lock;
	char             last_error[160];
};
void stats_init(struct bridge_stats *st);
void stats_error(struct bridge_stats *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints one line when interval seconds have passed since the last one
 * (or always, if force); call it from the main loop. */
void stats_maybe_print(struct bridge_stats *st, const char *mode, double interval, bool force);
double now_seconds(void);

/* natsconn.c */
struct bridge_nats {
	natsConnection *nc;
	jsCtx          *js;
};
/* Connect (retrying while the cluster is unreachable, until stop) with
 * unlimited reconnects.  js_opts may set PublishAsync fields. */
int  bridge_connect(struct bridge_nats *bn, const struct bridge_args *a,
                    jsOptions *js_opts, struct bridge_stats *st);
/* Destroys both and waits for libnats's threads to end (nats_CloseAndWait):
 * no callback runs after it. */
void bridge_disconnect(struct bridge_nats *bn);
/* The stream exists afterwards (created if missing: file storage,
 * a->replicas, a->subject, the Duplicates window); retries until stop.
 * 0, or -1 on stop or on a stream that cannot serve (error printed). */
int  bridge_ensure_stream(struct bridge_nats *bn, const struct bridge_args *a,
                          struct bridge_stats *st);
/* Wait of a JetStream API request (stream info, last message, consumer
 * info): short, so that a resync during a leader election asks again soon. */
#define BRIDGE_API_WAIT_MS 1000
/* Room left in a message for its headers (Nats-Msg-Id, expected sequence). */
#define BRIDGE_HEADER_ROOM 256
/* Sleep ms milliseconds, in pieces, returning early on stop_forced. */
void bridge_nap(int64_t ms);

/* ringopen.c: open the named ring, or create it (persistent; for the out
 * bridge, roles == SHMRING_CONSUMER, also SHMRING_REDELIVER); roles
 * declared.  bridge_ring_redelivers: was the ring made with
 * SHMRING_REDELIVER (by us or by whoever made it)? */
int  bridge_ring_open(struct shmring **ring, const struct bridge_args *a, unsigned roles);
bool bridge_ring_redelivers(struct shmring *ring);

/* msgid.c */
#define MSGID_MAX 64
/* A 64-bit identity of the ring file behind ring: the same for every handle
 * on that file for its lifetime, different for any other ring file (another
 * name, the same name made again, another boot). */
int      ring_identity(struct shmring *ring, const char *name, uint64_t *id);
/* "shmring-<16 hex id>-<position>" */
void     msgid_format(char out[MSGID_MAX], uint64_t ring_id, uint64_t pos);
/* Parses msgid_format's output: 0, or -1 if it is not one. */
int      msgid_parse(const char *s, uint64_t *ring_id, uint64_t *pos);

/* inpos.c: the in direction's committed position (stream sequence), in a
 * small file beside the ring that survives the bridge. */
struct inpos;
int      inpos_open(struct inpos **p, uint64_t ring_id, const char *ring,
                    const char *stream, const char *durable);
/* The last stream sequence put into the ring; 0 if none. *uncertain is set
 * when the bridge died between the put of pending and its record: that one
 * message may be in the ring once already. */
uint64_t inpos_committed(struct inpos *p, uint64_t *uncertain);
void     inpos_begin(struct inpos *p, uint64_t seq);   /* before the put */
void     inpos_commit(struct inpos *p, uint64_t seq);  /* after the put */
/* The stream's creation time (jsStreamInfo.Created) names the stream
 * instance the sequences belong to: a stream deleted and made again numbers
 * from 1 again.  Returns true if the file was for another instance (and is
 * now reset to nothing committed, for this one). */
bool     inpos_stream_instance(struct inpos *p, int64_t created);
void     inpos_close(struct inpos *p);

int run_out(const struct bridge_args *a);
int run_in(const struct bridge_args *a);

#endif
