/*
 * shmring.h - a lock-free, shared-memory, multi-producer multi-consumer queue
 * of variable-size records, for IPC between processes on Linux.
 *
 * This header holds the core: making, opening and closing a ring, and the copy
 * API (put/get).  Companion headers, one concept each:
 *   <shmring_zc.h>     zero-copy: reserve/commit/abort, peek/release
 *   <shmring_batch.h>  scatter-gather put and batches (put_many/get_many)
 *   <shmring_fdpass.h> passing a ring's fd over a Unix socket (SCM_RIGHTS)
 *
 * ERROR CONVENTION (the whole API)
 *   Every call returns 0, or a non-negative count or length, on success and a
 *   negative errno value on failure.  errno itself is never the channel.  The
 *   values a caller should expect:
 *     -EINVAL       a bad argument (NULL pointer, bad config, bad name)
 *     -ENAMETOOLONG a ring name over SHMRING_NAME_MAX bytes
 *     -EEXIST       shmring_create: a named ring of that name already exists
 *     -ENOENT       shmring_open/unlink: no ring of that name
 *     -EMSGSIZE     put: record larger than the ring's max_record;
 *                   get: caller's buffer smaller than the next record (the
 *                   record stays in the ring; shmring_next_len() or the
 *                   zero-copy peek tells its size)
 *     -EAGAIN       timeout_ns == 0 and the call would have to wait
 *     -ETIMEDOUT    timeout_ns > 0 elapsed before the call could complete
 *     -EPIPE        put on a closed ring, or once every consumer has gone;
 *                   get on a closed ring that is empty, or once every
 *                   producer has gone and the ring is empty
 *     -EPROTO       not a shmring file (bad magic) or an unsupported ABI version
 *     -EBADMSG      a shmring file whose geometry or metadata is inconsistent
 *                   (truncated, corrupt); the handle should be detached
 *     -ERANGE       task_done with no unfinished task; a latch counted below 0
 *     -EUSERS       the attachment table is full (SHMRING_MAX_ATTACH live)
 *     -ENOBUFS      SHMRING_MAX_INFLIGHT operations already in flight on this
 *                   handle (calls running in its threads, plus spans reserved
 *                   or peeked and not yet committed/aborted/released)
 *     -ENOMEM, -EMFILE, -EACCES, ...  from the underlying system calls
 *
 * TIMEOUTS (every call that may wait takes int64_t timeout_ns)
 *   < 0  wait as long as needed;  0  never wait (-EAGAIN);
 *   > 0  wait at most that many nanoseconds (-ETIMEDOUT).
 *   A waiting caller spins briefly, then sleeps on a futex in the shared
 *   mapping; asleep it costs no CPU.  Deadlines are on CLOCK_MONOTONIC and
 *   survive signals (EINTR restarts the sleep with the same deadline).
 *
 * THREADS AND PROCESSES
 *   A ring may be used by any number of processes and threads at once.  A
 *   struct shmring handle is one process's view; it may be shared by the
 *   threads of that process, and a handle inherited across fork() works in the
 *   child as it is.  Records are delivered exactly once, whole (at least once
 *   on a SHMRING_REDELIVER ring, below); with a single consumer, each
 *   producer's records arrive in the order it put them.
 */
#ifndef SHMRING_H
#define SHMRING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMRING_VERSION_MAJOR 0
#define SHMRING_VERSION_MINOR 1

/* Storage is counted in slots of this many bytes; a record of len bytes uses
 * max(1, ceil(len / SHMRING_SLOT_SIZE)) slots. */
#define SHMRING_SLOT_SIZE 64u

/* Defaults for a zeroed field of struct shmring_config. */
#define SHMRING_DEFAULT_CAPACITY   (4u << 20)  /* 4 MiB of record storage       */
#define SHMRING_DEFAULT_MAX_RECORD_DIVISOR 4u   /* max_record = capacity / 4     */
#define SHMRING_MIN_CAPACITY       4096u       /* one page                      */
#define SHMRING_MAX_CAPACITY       ((size_t)1 << 36) /* 64 GiB                  */

/* A ring name: 1 to SHMRING_NAME_MAX bytes of [A-Za-z0-9._-], optionally with
 * one leading '/', not "." or "..", no other '/'. */
#define SHMRING_NAME_MAX 200

/* Live attachments a ring can track at once. */
#define SHMRING_MAX_ATTACH 64
/* Operations in flight on one handle at once (see -ENOBUFS); each is
 * announced in shared memory so that a crash can be recovered from. */
#define SHMRING_MAX_INFLIGHT 64

struct shmring;                         /* one process's handle on a ring */

struct shmring_config {
	size_t   capacity;    /* bytes of record storage; 0 = a documented default */
	size_t   max_record;  /* largest record, bytes; 0 = a documented default   */
	unsigned mode;        /* permission bits of a named ring; 0 = 0600         */
	unsigned flags;       /* SHMRING_PRODUCER / SHMRING_CONSUMER: the creating
	                         handle's declared roles; SHMRING_REDELIVER: the
	                         ring redelivers (below); other bits: -EINVAL      */
	unsigned max_deliveries; /* SHMRING_REDELIVER: deliveries without a release
	                         before a record is a dead letter; 0 = unlimited,
	                         at most 65535; nonzero without the flag: -EINVAL */
};
/* capacity: 0 means SHMRING_DEFAULT_CAPACITY; otherwise it is rounded up to a
 *   power of two between SHMRING_MIN_CAPACITY and SHMRING_MAX_CAPACITY (a larger
 *   value is -EINVAL).  Memory is committed only as it is touched.
 * max_record: 0 means capacity / SHMRING_DEFAULT_MAX_RECORD_DIVISOR; must not
 *   exceed the (rounded) capacity. */

/* Make a ring and attach to it.  name NULL: anonymous (memfd, sealed against
 * shrinking and growing; share it by fork() or by passing shmring_fd()).
 * Otherwise a named ring under /dev/shm, created with O_EXCL. */
int     shmring_create(struct shmring **ring, const char *name, const struct shmring_config *cfg);
/* Attach to a named ring made by shmring_create, from any process. */
int     shmring_open(struct shmring **ring, const char *name);
/* Attach to the ring behind fd (inherited, or received with
 * shmring_recv_fd()).  The fd is duplicated; the caller keeps its own. */
int     shmring_attach_fd(struct shmring **ring, int fd);
/* The handle's file descriptor (owned by the handle; dup it to keep it). */
int     shmring_fd(const struct shmring *ring);
/* Drop this process's handle: unmaps and closes the fd.  Does not close the
 * ring for others.  NULL is allowed. */
void    shmring_detach(struct shmring *ring);
/* Remove a named ring's name; attached handles keep working. */
int     shmring_unlink(const char *name);

/* Append one record of len bytes (len may be 0). */
int     shmring_put(struct shmring *ring, const void *data, size_t len, int64_t timeout_ns);
/* Take the next record into buf; returns its length. */
ssize_t shmring_get(struct shmring *ring, void *buf, size_t cap, int64_t timeout_ns);
/* Close the ring for every process: later puts get -EPIPE, gets drain what is
 * left and then get -EPIPE, and every sleeper wakes at once.  Idempotent. */
int     shmring_close(struct shmring *ring);

/* Length of the record a get would take now, without taking it: -EAGAIN if
 * none is ready, -EPIPE if the ring is closed and empty.  With several
 * consumers the answer may be stale by the time you act on it. */
ssize_t shmring_next_len(struct shmring *ring);

/* How long a waiting call spins (pause instructions, re-checking) before it
 * sleeps on a futex; per handle.  0 sleeps at once. */
void    shmring_set_spin(struct shmring *ring, unsigned iterations);

/* Map every page of the ring into this process now (writable, contents
 * untouched), so that no put or get takes a page fault later.  Without it
 * each process faults each page in on first touch, the first time round the
 * ring: a 4 MiB ring has 1280 pages (meta included), about 4 us each on the
 * reference VM.  Costs about 5 ms for a fresh 4 MiB ring there (its pages
 * are allocated then, for every process), and makes the whole ring resident.
 * Per handle; call it after create, open or attach_fd.  -EFAULT if the file
 * has been shrunk under the mapping (nothing was touched outside it),
 * -EOPNOTSUPP before Linux 5.14 (no MADV_POPULATE_WRITE). */
int     shmring_prefault(struct shmring *ring);

/*
 * ROLES AND END OF STREAM (as with a pipe)
 * A handle is a producer, a consumer, or both.  It may declare its roles with
 * shmring_declare() (or, for the creating handle, with the same bits in
 * shmring_config.flags); a handle that declared nothing becomes a producer at
 * its first put (or reserve) and a consumer at its first get (or peek).  The
 * ring keeps a table of live attachments in shared memory: pid plus the
 * process's start time, so a recycled pid is never mistaken for the old one.
 *
 *  - End of stream: once a producer has existed, when every producer has
 *    detached or died and the ring is empty, gets return -EPIPE (as a closed
 *    ring does) and sleeping consumers wake for it.
 *  - Broken pipe: once a consumer has existed, when every consumer has
 *    detached or died, puts return -EPIPE.  A ring nobody has consumed from
 *    yet accepts puts.
 *  - A dead process is noticed without anyone calling anything: sleepers
 *    re-check liveness at least every 50 ms, and so does a caller that keeps
 *    getting -EAGAIN.
 *  - fork(): a handle inherited by a child is the child's own attachment,
 *    registered at fork (pthread_atfork) with the roles the handle had
 *    declared explicitly; roles picked up implicitly by a first put or get are
 *    not inherited (the child picks up its own the same way).  The parent's
 *    detach does not end the child's.
 */
#define SHMRING_PRODUCER 0x1u
#define SHMRING_CONSUMER 0x2u

/*
 * AT-LEAST-ONCE DELIVERY (shmring_config.flags, at create)
 * On a ring made with SHMRING_REDELIVER, a record taken with shmring_peek and
 * not yet released (nor requeued) when its consumer dies is delivered again,
 * whole, to another consumer, within the liveness bound above (a sweep, at
 * most about 100 ms after the death).  shmring_release is the ack;
 * shmring_requeue (<shmring_zc.h>) gives a record back explicitly.
 * shmring_span.deliveries says which delivery this is (1 the first time).
 * A record delivered max_deliveries times without a release becomes a dead
 * letter: it is not delivered again, it is counted (shmring_info.dead_letters),
 * and shmring_peek_dead reads it.  shmring_get keeps its meaning: the record
 * is delivered (acked) when the call returns with its copy; only a get that
 * dies before it returns has its record delivered again.  A get (get_many)
 * also takes records given back, without telling (peek tells: deliveries).
 * shmring_next_len and info.records look at records not yet taken only.
 * Order: a take that starts after a record was given back takes it before
 * any record not yet taken; records taken for the first time keep the order
 * of the ring (per producer FIFO, as everywhere); given-back records come out
 * in no particular order among themselves.  End of stream comes only when
 * every record has been released or dead-lettered.  docs/lifecycle.md.
 */
#define SHMRING_REDELIVER 0x400u
/* Add roles to this handle's attachment (bits above; 0 is -EINVAL). */
int     shmring_declare(struct shmring *ring, unsigned roles);
/* Give roles up, as closing one end of a pipe: the usual fork pool declares
 * SHMRING_PRODUCER, forks its producers (who inherit the role at fork, so the
 * count of producers never drops to zero in between), then leaves the role
 * in the parent.  Peers are woken to re-check end of stream / broken pipe.
 * A later put or get takes the role again. */
int     shmring_leave(struct shmring *ring, unsigned roles);

/*
 * JOIN COUNTERS (JoinableQueue semantics)
 * Every successful put adds one unfinished task before its record becomes
 * visible (batches and zero-copy commits: one per record).
 * shmring_task_done removes one (-ERANGE, count unchanged, if there is none);
 * shmring_join waits until the count is zero (timeouts as everywhere).
 */
int     shmring_task_done(struct shmring *ring);
int     shmring_join(struct shmring *ring, int64_t timeout_ns);
/* Unfinished tasks now. */
uint64_t shmring_unfinished(const struct shmring *ring);

/* A snapshot of the ring; with concurrent traffic every figure may be stale. */
struct shmring_info {
	size_t   capacity;     /* bytes of record storage                           */
	size_t   max_record;   /* largest record, bytes                             */
	size_t   records;      /* complete records waiting to be taken              */
	size_t   bytes;        /* payload bytes of those records                    */
	size_t   used;         /* storage bytes not yet reusable (incl. in-flight)  */
	int      closed;       /* 1 once shmring_close has been called              */
	int      named;        /* 1 for a named (shm_open) ring                     */
	uint64_t futex_waits;  /* FUTEX_WAIT calls made on this ring, all processes */
	uint64_t futex_wakes;  /* FUTEX_WAKE calls made on this ring, all processes */
	unsigned producers;    /* live producer attachments (as last checked)       */
	unsigned consumers;    /* live consumer attachments (as last checked)       */
	int      eof;          /* 1 if producers have come and all gone             */
	uint64_t unfinished;   /* join counter                                      */
	uint64_t recovered_claims; /* dead producers' unpublished claims skipped    */
	uint64_t lost_records;     /* records dead consumers took, never released   */
	uint64_t lost_tasks;       /* join tasks forgiven with dead peers           */
	/* SHMRING_REDELIVER rings (0 elsewhere): */
	uint64_t redelivered;      /* records given back (dead consumer, requeue)   */
	uint64_t redeliver_waiting;/* given back, not taken again yet               */
	uint64_t dead_letters;     /* records dead-lettered (max_deliveries)        */
	uint64_t dead_waiting;     /* dead letters nobody is reading yet            */
};
int     shmring_info(const struct shmring *ring, struct shmring_info *info);

/* A static string naming an error returned by this API (like strerror, but
 * for a negative value, and with shmring's meanings). */
const char *shmring_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_H */
