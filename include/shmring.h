/*
 * shmring.h - a lock-free, shared-memory, multi-producer multi-consumer queue
 * of variable-size records, for IPC between processes on Linux.
 *
 * This header holds the core: making, opening and closing a ring, and the copy
 * API (put/get).  Companion headers, one concept each:
 *   <shmring_zc.h>     zero-copy: reserve/commit/abort, peek/release
 *   <shmring_batch.h>  scatter-gather put and batches (put_many/get_many)
 *   <shmring_fdpass.h> passing a ring's fd over a Unix socket (SCM_RIGHTS)
 *   <shmring_poll.h>   waiting on many rings at once; a ring as an eventfd
 *   <shmring_latch.h>  a futex counter in shared memory (latch, gate, barrier)
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
 *     -EPROTO       not a shmring file (bad magic); shmring_unlink: the name is
 *                   not a ring
 *     -EPROTONOSUPPORT  open/attach_fd: a ring made by a library of another
 *                   layout (ABI) version, which this one cannot read (older
 *                   libraries said -EPROTO); shmring_unlink removes it
 *     -EBADMSG      a shmring file whose geometry or metadata is inconsistent
 *                   (truncated, corrupt); the handle should be detached
 *     -ERANGE       task_done with no unfinished task; a latch counted below 0
 *     -EPERM        shmring_attach_fd: an fd its sender could shrink under
 *                   us (neither sealed against shrinking and growing, nor a
 *                   file in /dev/shm)
 *     -EXDEV        open/attach_fd: the ring was made in another PID namespace
 *                   (a container sharing /dev/shm): liveness is pid + start
 *                   time, which cannot be tracked across them, so it is refused
 *     -EUSERS       the attachment table is full (shmring_config.max_attach
 *                   live attachments)
 *     -ENOBUFS      SHMRING_MAX_INFLIGHT operations already in flight on this
 *                   handle (calls running in its threads, plus spans reserved
 *                   or peeked and not yet committed/aborted/released)
 *     -EOVERFLOW    get/get_many/peek: records were lost before this one
 *                   (SHMRING_OVERWRITE, or a lossy broadcast subscriber that
 *                   was lapped; <shmring_broadcast.h>); reported once, the
 *                   next get goes on from the oldest record left
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

#include "shmring_export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMRING_VERSION_MAJOR 0
#define SHMRING_VERSION_MINOR 1

/* Storage is counted in slots of this many bytes; a record of len bytes uses
 * max(1, ceil(len / SHMRING_SLOT_SIZE)) slots. */
#define SHMRING_SLOT_SIZE 64u

/* The inline layout: a ring whose max_record is at most this many bytes
 * keeps each record's 16-byte header in the first bytes of the record's own
 * slot, the payload in the other 48, so that every record is one cache line
 * to write, hand over and read (other rings keep the headers in an array of
 * their own: two lines a record).  Chosen at create from max_record alone;
 * nothing else about the ring changes (docs/design.md section 1). */
#define SHMRING_INLINE_MAX_RECORD 48u

/* Defaults for a zeroed field of struct shmring_config. */
#define SHMRING_DEFAULT_CAPACITY   (4u << 20)  /* 4 MiB of record storage       */
#define SHMRING_DEFAULT_MAX_RECORD_DIVISOR 4u   /* max_record = capacity / 4     */
#define SHMRING_MIN_CAPACITY       4096u       /* one page                      */
#define SHMRING_MAX_CAPACITY       ((size_t)1 << 36) /* 64 GiB                  */
/* The largest max_record a ring can have, default or explicit: a record's
 * length is a 32-bit field (4 GiB - 65 bytes, so that its slots' byte count
 * fits one too). */
#define SHMRING_MAX_RECORD_LIMIT   ((size_t)UINT32_MAX - SHMRING_SLOT_SIZE)

/* A ring name: 1 to SHMRING_NAME_MAX bytes of [A-Za-z0-9._-], optionally with
 * one leading '/', not "." or "..", no other '/'. */
#define SHMRING_NAME_MAX 200

/* Live attachments a ring can track at once: shmring_config.max_attach, by
 * default SHMRING_DEFAULT_MAX_ATTACH, at most SHMRING_MAX_ATTACH_LIMIT.  Each
 * costs 2112 bytes of the ring file (its entry and SHMRING_MAX_INFLIGHT op
 * records), nothing on the fast path. */
#define SHMRING_DEFAULT_MAX_ATTACH 256
#define SHMRING_MAX_ATTACH_LIMIT   65535
/* The default table size (the name predates max_attach). */
#define SHMRING_MAX_ATTACH SHMRING_DEFAULT_MAX_ATTACH
/* Operations in flight on one handle at once (see -ENOBUFS); each is
 * announced in shared memory so that a crash can be recovered from. */
#define SHMRING_MAX_INFLIGHT 64

struct shmring;                         /* one process's handle on a ring */

struct shmring_config {
	size_t   capacity;    /* bytes of record storage; 0 = a documented default */
	size_t   max_record;  /* largest record, bytes; 0 = a documented default   */
	unsigned mode;        /* permission bits of a named ring; 0 = 0600         */
	unsigned flags;       /* SHMRING_PRODUCER / SHMRING_CONSUMER: the creating
	                         handle's declared roles; SHMRING_NO_RESERVE;
	                         SHMRING_PERSISTENT; SHMRING_BROADCAST,
	                         SHMRING_OVERWRITE: the ring's delivery mode;
	                         SHMRING_REDELIVER: the ring redelivers (below);
	                         at most one of these three (else -EINVAL);
	                         SHMRING_LIGHT_PUBLISH (below);
	                         other bits: -EINVAL                               */
	size_t   max_attach;  /* live attachments (processes' handles holding a
	                         role) the ring can track; 0 = SHMRING_DEFAULT_MAX_ATTACH;
	                         above SHMRING_MAX_ATTACH_LIMIT: -EINVAL; one more
	                         is -EUSERS                                        */
	unsigned max_deliveries; /* SHMRING_REDELIVER: deliveries without a release
	                         before a record is a dead letter; 0 = unlimited,
	                         at most 65535; nonzero without the flag: -EINVAL */
};
/* shmring_config.flags: how records are delivered (fixed at create).
 * SHMRING_BROADCAST: every subscriber receives every record
 *   (<shmring_broadcast.h>).
 * SHMRING_OVERWRITE (plain rings): a put on a full ring discards the oldest
 *   unread records instead of waiting (never a record a consumer holds
 *   peeked: if those are all that fill the ring, the put waits as usual),
 *   counted in shmring_info.overwritten; the next get after records were
 *   discarded, by whichever consumer comes first, returns -EOVERFLOW once,
 *   and the gets after it go on from the oldest record left.  Records
 *   discarded are taken off the join counter.
 * Any two of SHMRING_BROADCAST, SHMRING_OVERWRITE and SHMRING_REDELIVER
 * together are -EINVAL (an overwriting put would discard records a
 * redelivery ring holds or has parked). */
#define SHMRING_BROADCAST 0x800u
#define SHMRING_OVERWRITE 0x1000u
/* shmring_config.flags: light publication (fixed at create).  A put
 * publishes its record, and a get releases it, with a plain store instead of
 * a locked instruction (an xchg on x86-64, which waits for the line the
 * other side is polling): a 1x1 stream of 64-byte records ran 7-20% faster
 * here, 8 producers into 1 consumer 1-22% (docs/perf.md, eleventh session).  The price is paid by sleepers:
 * each time a call on the ring is about to sleep, it first issues
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which interrupts every CPU
 * running a process that uses a light ring (measured on a 2-core VM: 1 us
 * with the other CPU idle, 21 us with such a process running there).  Fits
 * rings whose consumers poll or spin, or stream; not rings woken per
 * record through shmring_event_fd_direct, whose p50 wake-up it raised from
 * 13 to 20 us here.  A process that cannot register for membarrier, or sets
 * SHMRING_MEMBARRIER=0, publishes with the locked store on it as on any ring
 * (shmring(7)).  Combines with any other flag.  docs/design.md section 4,
 * "The fence, asymmetric". */
#define SHMRING_LIGHT_PUBLISH 0x2000u
/* capacity: 0 means SHMRING_DEFAULT_CAPACITY; otherwise it is rounded up to a
 *   power of two between SHMRING_MIN_CAPACITY and SHMRING_MAX_CAPACITY (a larger
 *   value is -EINVAL).  The whole file (capacity, plus 1/4 of it for slot
 *   metadata unless the ring has the inline layout, plus a 20 KiB header,
 *   plus 2112 bytes per max_attach: 548 KiB by default) is allocated by
 *   shmring_create, so that a full
 *   /dev/shm (or memory cgroup) is -ENOSPC there, never a SIGBUS later, and
 *   the pages stay the ring's however full the filesystem gets afterwards
 *   (measured on a 2-core VM: create takes 0.6 ms for a 4 MiB ring, 73 ms
 *   for 256 MiB).
 * max_record: 0 means capacity / SHMRING_DEFAULT_MAX_RECORD_DIVISOR, or
 *   SHMRING_MAX_RECORD_LIMIT if that is smaller (a rounded capacity of 16 GiB
 *   or more, i.e. any capacity above 8 GiB);
 *   must not exceed the (rounded) capacity nor SHMRING_MAX_RECORD_LIMIT
 *   (-EINVAL).  At most SHMRING_INLINE_MAX_RECORD (48): the inline layout, one
 *   cache line a record. */

/* shmring_config.flags: do not allocate the storage at create (a sparse
 * file; pages are allocated on first touch, as for any tmpfs file).  For a
 * huge ring that will only ever use a small part of its capacity.  RISK: a
 * page touched for the first time when /dev/shm (for an anonymous ring, the
 * memory cgroup or the machine) has no room left raises SIGBUS in the process
 * that touches it, at any put, get or span access, and a peer or another
 * user filling /dev/shm causes it.  shmring_prefault() allocates every page
 * later, reporting an error instead of a signal when there is no room. */
#define SHMRING_NO_RESERVE 0x200u
/* shmring_config.flags: a persistent ring: no end of stream, no broken pipe
 * (ROLES AND END OF STREAM below); only shmring_close ends it.  Stored in the
 * ring: every handle on it sees it. */
#define SHMRING_PERSISTENT 0x100u

/* Make a ring and attach to it.  name NULL: anonymous (memfd, sealed against
 * shrinking and growing; share it by fork() or by passing shmring_fd()).
 * Otherwise a named ring under /dev/shm, -EEXIST if the name exists.  A named
 * ring is made whole (size, storage, header) in an unnamed file (O_TMPFILE)
 * and then given its name in one step (linkat), so no process ever opens a
 * half-made ring and a creator that dies half way leaves nothing behind.
 * (Where /dev/shm has no O_TMPFILE, before Linux 3.11, it is made under its
 * name, locked with flock while blank, and -EAGAIN in the rare case that
 * shmring_unlink_stale removed it before its in-use lock was taken.)
 * -ENOSPC (no file left behind) if its storage does not fit (see
 * SHMRING_NO_RESERVE). */
SHMRING_API int     shmring_create(struct shmring **ring, const char *name, const struct shmring_config *cfg);
/* Attach to a named ring made by shmring_create, from any process.  The
 * handle holds the ring's in-use lock (a shared flock on its file, until
 * detach) that shmring_unlink_stale (<shmring_inspect.h>) respects; while a
 * remover looks, the open waits for it (a second at most, then goes on
 * without the lock), and a ring removed meanwhile is -ENOENT (or, if a new
 * ring has its name, that one; -EAGAIN if the name changed a hundred times
 * under it). */
SHMRING_API int     shmring_open(struct shmring **ring, const char *name);
/* Open the named ring, or create it (with cfg) if there is none: race-free
 * among any number of concurrent callers, exactly one of whom creates it.
 * Returns 1 if this call created the ring, 0 if it opened an existing one,
 * or a negative error.  cfg is checked in both cases (-EINVAL) but its
 * geometry, mode and SHMRING_PERSISTENT apply only to a ring this call
 * creates: an existing ring keeps its own (see shmring_info).  Its role bits
 * are declared in both cases.  A blank file at the name (magic 0: a creator
 * that died half way, under an earlier version or without O_TMPFILE, and
 * whose flock is gone) is removed and the ring created in its place; any
 * other file that is not a ring is -EPROTO / -EBADMSG, and a ring of another
 * layout version -EPROTONOSUPPORT: each is left alone. */
SHMRING_API int     shmring_open_or_create(struct shmring **ring, const char *name, const struct shmring_config *cfg);
/* Attach to the ring behind fd (inherited, or received with
 * shmring_recv_fd()).  The fd is duplicated; the caller keeps its own.
 * Only an fd that cannot be shrunk under our mapping (which would raise
 * SIGBUS here) is accepted: a memfd carrying F_SEAL_SHRINK and F_SEAL_GROW
 * (what shmring_create makes for an anonymous ring), or a file of the
 * filesystem mounted on /dev/shm (a named ring: trusted as by shmring_open,
 * i.e. whoever may write the file may cut it).  Anything else (an unsealed
 * memfd, a regular file elsewhere) is -EPERM, before a byte is read.  The
 * in-use lock (see shmring_open) goes on fd's open file description, which
 * the duplicate shares: a flock the caller holds through fd becomes shared,
 * and the lock lasts while any descriptor of it is open (the sender's too,
 * for a received fd). */
SHMRING_API int     shmring_attach_fd(struct shmring **ring, int fd);
/* The handle's file descriptor (owned by the handle; dup it to keep it). */
SHMRING_API int     shmring_fd(const struct shmring *ring);
/* Drop this process's handle: unmaps and closes the fd.  Does not close the
 * ring for others.  NULL is allowed. */
SHMRING_API void    shmring_detach(struct shmring *ring);
/* Remove a named ring's name; attached handles keep working.  Only a ring:
 * the file must be a regular file of at least 8 bytes starting with the
 * shmring magic (read with pread; never waits, never follows a symbolic
 * link, never maps it), else -EPROTO and nothing is removed.  A truncated
 * or corrupt ring is removed (its magic is there); a ring whose creator died
 * before writing its header (magic still 0) is -EPROTO: remove it with
 * shmring_unlink_any.  -EACCES if the file cannot be read (the check needs
 * to).  The check and the removal are two steps: a name replaced in between
 * by someone who may write /dev/shm is removed; this guards against
 * mistakes, not against such a peer. */
SHMRING_API int     shmring_unlink(const char *name);
/* Remove whatever file has that name in /dev/shm (shm_unlink), ring or not,
 * after the same name validation.  For debris: a half-made ring, a file a
 * test or a crashed program left. */
SHMRING_API int     shmring_unlink_any(const char *name);

/* Append one record of len bytes (len may be 0). */
SHMRING_API int     shmring_put(struct shmring *ring, const void *data, size_t len, int64_t timeout_ns);
/* Take the next record into buf; returns its length. */
SHMRING_API ssize_t shmring_get(struct shmring *ring, void *buf, size_t cap, int64_t timeout_ns);
/* Close the ring for every process: later puts get -EPIPE, gets drain what is
 * left and then get -EPIPE, and every sleeper wakes at once.  Idempotent. */
SHMRING_API int     shmring_close(struct shmring *ring);

/* Length of the record a get would take now, without taking it: -EAGAIN if
 * none is ready, -EPIPE if the ring is closed and empty.  With several
 * consumers the answer may be stale by the time you act on it. */
SHMRING_API ssize_t shmring_next_len(struct shmring *ring);

/* How long a waiting call spins (pause instructions, re-checking) before it
 * sleeps on a futex; per handle.  0 sleeps at once.  Default: about 0.1 ms
 * (2000 pauses) on a machine with two or more CPUs online, whatever the
 * caller's affinity (pinned to one CPU each, two processes still run at
 * once), and 0 with one CPU online.  Adaptive: after 8 waits in a row whose
 * spin ended in a sleep anyway (a peer on the same CPU, or one slower than
 * the spin), only one wait in 16 spins, until a spin succeeds again.
 * The spin backs off between its looks (each look reads the line the peer
 * is about to write, and takes it away from it): to spin for low latency,
 * wait with a timeout rather than retrying timeout 0 in a tight loop
 * (measured: 380 ns one-way against 584 ns; docs/perf.md). */
SHMRING_API void    shmring_set_spin(struct shmring *ring, unsigned iterations);

/* Map every page of the ring into this process now (writable, contents
 * untouched) and read a byte of each, so that no put or get takes a page
 * fault, or builds an address translation, later.  Without it each process
 * pays for each page at its first touch, the first time round the ring: a
 * 4 MiB ring maps about 2400 pages (meta and the data's second view
 * included), about 4 us each for the fault and, where a hypervisor shadows
 * the page tables (the reference VM), about 15 us each for the translation,
 * which no fault counter shows: one spinning round trip in 64 took 15-20 us.
 * Costs about 18 ms for a fresh 4 MiB ring there, 0.4 ms when already done
 * (more with SHMRING_NO_RESERVE: its pages are allocated then, for every
 * process), and makes the whole ring resident.
 * Per handle; call it after create, open or attach_fd.  -EFAULT if the file
 * has been shrunk under the mapping (nothing was touched outside it),
 * -EOPNOTSUPP before Linux 5.14 (no MADV_POPULATE_WRITE). */
SHMRING_API int     shmring_prefault(struct shmring *ring);

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
 *  - Both are states, as with a FIFO, not tombstones: when a producer
 *    attaches again (declare, put), gets work again; when a consumer does,
 *    puts work again.  Only shmring_close is final.  And a handle made
 *    (open, attach_fd, create) when no producer was live and the ring was
 *    empty does not see that old end of stream: its gets wait for the next
 *    producer, as on a new ring; likewise a handle made when no consumer was
 *    live accepts puts until a consumer has come and gone.  So a leftover
 *    named ring, reopened, works like a new one (records left in it are
 *    delivered, then end of stream).
 *  - SHMRING_PERSISTENT rings (a shmring_config.flags bit, fixed at create):
 *    neither state ever happens.  Producers or consumers leaving never ends
 *    the stream: a consumer waits for the next producer, a producer fills the
 *    ring and then waits for a consumer.  Only shmring_close ends it.
 *  - A dead process is noticed without anyone calling anything: sleepers
 *    re-check liveness at least every 50 ms, and so does a caller that keeps
 *    getting -EAGAIN once the ring has stood still for 50 ms.  A caller whose
 *    puts (or gets) keep succeeding re-checks once the other side's index
 *    (the consumers' head for a producer, the producers' head for a
 *    consumer) has not moved for 50 ms: a producer whose last consumer died
 *    gets -EPIPE within about 100 ms.  While the other side moves, its
 *    progress proves a live peer and no call makes a system call for it
 *    (a polling stream makes none at all).
 *  - Identity is pid + start time, read from /proc (once per process, at
 *    open): if it cannot be read (no fd left, no /proc), taking a role fails
 *    with that error (e.g. -EMFILE) and a later call tries again; a process
 *    is never registered under an identity that would make it look dead.
 *  - PID namespaces: a pid means another process in another namespace, so
 *    open and attach_fd refuse a ring made in another PID namespace
 *    (-EXDEV): containers sharing /dev/shm must share the PID namespace
 *    too (docker --pid=host / --pid=container:NAME) to share a ring.
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
SHMRING_API int     shmring_declare(struct shmring *ring, unsigned roles);
/* Give roles up, as closing one end of a pipe: the usual fork pool declares
 * SHMRING_PRODUCER, forks its producers (who inherit the role at fork, so the
 * count of producers never drops to zero in between), then leaves the role
 * in the parent.  Peers are woken to re-check end of stream / broken pipe.
 * A later put or get takes the role again. */
SHMRING_API int     shmring_leave(struct shmring *ring, unsigned roles);
/* Wait until a live attachment other than this handle holds any of roles
 * (SHMRING_PRODUCER and/or SHMRING_CONSUMER; 0 or other bits: -EINVAL).
 * Returns 0 at once if there is one; else waits (timeouts as everywhere:
 * -EAGAIN for 0, -ETIMEDOUT), woken by every arrival, departure and reap.
 * -EPIPE if the ring is closed.  A dead peer does not count: the call sweeps
 * the table at entry, and while it waits at least every 50 ms.  Another
 * handle of the same process counts as a peer.  Ordering: a 0 return
 * happens after the peer's role was counted (seq_cst on the census), i.e.
 * after its shmring_declare began, before its first put/get completes. */
SHMRING_API int     shmring_wait_peer(struct shmring *ring, unsigned roles, int64_t timeout_ns);

/*
 * JOIN COUNTERS (JoinableQueue semantics)
 * Every successful put adds one unfinished task before its record becomes
 * visible (batches and zero-copy commits: one per record).
 * shmring_task_done removes one (-ERANGE, count unchanged, if there is none);
 * shmring_join waits until the count is zero (timeouts as everywhere).
 */
SHMRING_API int     shmring_task_done(struct shmring *ring);
SHMRING_API int     shmring_join(struct shmring *ring, int64_t timeout_ns);
/* Unfinished tasks now. */
SHMRING_API uint64_t shmring_unfinished(const struct shmring *ring);

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
	size_t   max_attach;       /* size of the attachment table                  */
	int      persistent;       /* 1 for a SHMRING_PERSISTENT ring               */
	/* SHMRING_REDELIVER rings (0 elsewhere): */
	uint64_t redelivered;      /* records given back (dead consumer, requeue)   */
	uint64_t redeliver_waiting;/* given back, not taken again yet               */
	uint64_t dead_letters;     /* records dead-lettered (max_deliveries)        */
	uint64_t dead_waiting;     /* dead letters nobody is reading yet            */
	/* full rings: */
	uint64_t dropped;          /* records puts refused because the ring was full
	                              (timeout 0, or the timeout expired), all processes */
	uint64_t overwritten;      /* records SHMRING_OVERWRITE puts discarded unread */
	unsigned delivery;         /* the ring's delivery mode, fixed at create:
	                              SHMRING_BROADCAST, SHMRING_OVERWRITE or 0 (plain),
	                              with SHMRING_REDELIVER or'ed in for a ring made
	                              with it (at-least-once; redelivered and dead_*
	                              above count for it), and SHMRING_LIGHT_PUBLISH
	                              for a ring made with that */
};
SHMRING_API int     shmring_info(const struct shmring *ring, struct shmring_info *info);

/* A static string naming an error returned by this API (like strerror, but
 * for a negative value, and with shmring's meanings). */
SHMRING_API const char *shmring_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_H */
