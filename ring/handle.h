/*
 * handle.h - one process's handle on a ring (private).
 *
 * The library's internal interface is split by concern, one header each:
 *   layout.h    the shared-memory layout (ABI)
 *   handle.h    struct shmring, this process's view of one ring
 *   slot.h      slot state changes: meta write, publish, release, the
 *               record-length check and the slot walker
 *   queue.h     the producer and consumer sides: claiming slots, taking records
 *   wait.h      sleeping and waking: eventcount, futex, deadlines, spinning
 *   fence.h     the eventcount's N1-N2 fence, asymmetric (the waiter's membarrier)
 *   oprec.h     op records: the announcement of each operation in flight
 *   attach.h    attachments, roles, the census, reaping dead peers
 *   liveness.h  process identity and liveness
 *   inuse.h     the in-use lock of a named ring's file (removal vs opening)
 *   latch.h     the futex counter (join, shmring_latch)
 * Functions that cross files are named shmring__*; inline helpers in these
 * headers never reach the linker.
 */
#ifndef SHMRING_HANDLE_H
#define SHMRING_HANDLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "layout.h"
#include "bcast_sub.h"

/* Geometry is copied out of the shared header once, after validation, and
 * never re-read from shared memory: a peer cannot change our bounds. */
struct shmring {
	struct ring_header *hdr;
	/* Where a position's meta entry and payload are (slot.h geom_meta,
	 * geom_data): the split layout spreads the entries of neighbouring
	 * slots a quarter of the meta array apart; the inline layout
	 * (layout.h ring_layout_inline(max_record)) has slot s's entry at the
	 * start of slot s and its payload 16 bytes on.  One formula for both,
	 * no branch, from the position itself (the slot mask is in meta_lo and
	 * meta_hi), in bytes:
	 *   entry = meta + ((pos & meta_lo) << meta_shift) + ((pos & meta_hi) << 2)
	 *   split:  meta_lo = 3,    meta_shift = log2(nslots) + 2, meta_hi = mask & ~3
	 *   inline: meta_lo = mask, meta_shift = 6,                meta_hi = 0
	 * (split: entry index ((s & 3) << (log2(nslots) - 2)) | (s >> 2) for
	 * slot s = pos & mask, times 16)
	 *   payload = data + (s << 6)   (inline: data is 16 bytes into slot 0) */
	struct slot_meta   *meta;
	unsigned char      *data;      /* payload of slot 0, first of the two data mappings */
	uint64_t            meta_lo, meta_hi;
	struct attach_entry *attach;   /* the attachment table: nattach entries */
	struct op_rec      *op_recs;   /* nattach x OPREC_PER_ENTRY op records  */
	unsigned            nattach;
	uint64_t            nslots;
	uint64_t            mask;      /* nslots - 1 */
	unsigned            meta_shift; /* split: log2(nslots) + 2; inline: 6 */
	size_t              capacity;
	size_t              max_record;
	void               *map;
	size_t              map_len;
	int                 fd;
	bool                named;
	bool                persistent; /* RING_HDR_PERSISTENT */
	/* fence.h: this handle publishes with release stores (a light ring,
	 * and this process registered for the sleepers' membarrier); sleeps on
	 * the ring for a record or for room issue that membarrier (a light
	 * ring: RING_HDR_LIGHT, read once at attach; not joins or waits for a
	 * peer: wait.h ring_waiter_init_unfenced). */
	bool                light, fenced;
	/* The census when this handle was made (attach.c shmring__census_look):
	 * if no producer was live and the ring was empty then, an end of stream
	 * older than the handle is not its own (fresh_prod), and likewise a
	 * broken pipe with no consumer then (fresh_cons): until the arrival
	 * generation moves on. */
	bool                fresh_prod, fresh_cons;
	uint64_t            born_census;
	bool                redeliver; /* SHMRING_REDELIVER ring (header flags, at attach) */
	/* redeliver.c shmring__redeliver_recount: the counts this handle's last
	 * sweep found short of the list, and their values then (a count is
	 * raised only when two sweeps find it short at the same value). */
	struct {
		bool     pending_short, dead_short;
		int64_t  pending;
		uint64_t dead;
	} rdl_seen;
	unsigned            spin;
	_Atomic unsigned    spin_misses;   /* wait.h: spins that ended in a sleep */
	/* Producer-side hint: a free_tail value seen earlier (only ever behind
	 * the real one, since free_tail only grows).  Release/acquire so that a
	 * thread using another thread's hint inherits its happens-before. */
	_Atomic uint64_t    cached_free;
	/* join.c: the largest sum of the op records' puts this handle has
	 * made (a lower bound of the true sum, which only grows), so that a
	 * task_done well below it needs no sum.  Relaxed: only a bound. */
	_Atomic uint64_t    join_puts_seen;
	struct ring_evbase *evfd;     /* shmring_event_fd's watcher (eventfd.c), or NULL */
	struct ring_evbase *evu;      /* shmring_event_fd_direct's io_uring (event_uring.c) */
	/* Held while either kind is made (shmring_event_fd, _direct), so that
	 * a handle gets one kind: checking the other's pointer and then making
	 * one let two threads make both (a review found it, 2026-12-06; a CAS
	 * of a kind word instead let a failed maker's give-back race a
	 * successful one).  Zeroed memory is an unlocked mutex (the handle is
	 * calloc'd); a fork child re-initialises it (attach.c). */
	pthread_mutex_t     ev_lock;

	/* attach.c: this handle's entry in the ring's attachment table. */
	/* -1: none (yet, or in a fresh child).  Atomic: set under the registry
	 * lock, read without it by operations of other threads (who first see
	 * their role with acquire, set after the slot with release). */
	_Atomic int         attach_slot;
	pid_t               attach_pid;   /* the process that owns the entry */
	_Atomic unsigned    roles;        /* roles held in this process */
	unsigned            declared;     /* roles declared: inherited by fork */
	int                 fork_slot;    /* entry taken for a child being forked */
	uint64_t            fork_id;      /* its pending id (parent id | ATTACH_PENDING_TAG) */
	/* reap.c: where this handle's next sweep starts (a sweep that ran out
	 * of its budget left the rest from there).  Relaxed: only a hint. */
	_Atomic unsigned    reap_from;
	/* reap.c: the sweep's cache of liveness looks, one per attachment
	 * entry (nattach ids, then nattach alive bytes, one allocation), made
	 * with the handle (map.c), so that a sweep allocates
	 * nothing: an event-fd watcher thread sweeping inside malloc while
	 * another thread forked left the child's allocator locked where the
	 * allocator has no fork handler (ASan's: tests/test_eventfd.c).  NULL
	 * if that allocation failed.  One sweep at a time uses it (sweep_busy,
	 * exchange: acquire to take, release to give back); a concurrent one
	 * looks without it, as without a cache. */
	uint64_t           *sweep_ids;
	_Atomic bool        sweep_busy;
	/* attach.h ring_liveness_tick: calls left before the next look at the
	 * clock, and when the last look was (coarse CLOCK_MONOTONIC ns).
	 * Relaxed: threads racing here only shift when the next look happens. */
	_Atomic int         tick_left;
	_Atomic uint64_t    tick_ns;
	/* The other side's index at the looks, per role of the call ([0] a
	 * put/reserve watching cons_head, [1] a get/peek watching prod_head),
	 * and since the first look that found it unchanged (coarse ns; 0: the
	 * last look saw it move); blind_ns, the longest gap between this
	 * handle's looks since then (attach.h ring_stood_still); read_ns,
	 * when a look last read the index (at most every PEER_LOOK_NS: reap.c).
	 * A put on a broadcast ring watches the sum of the subscribers'
	 * cursors instead, read at most every BCAST_LOOK_NS. */
	struct ring_peer_watch {
		_Atomic uint64_t at;
		_Atomic uint64_t since_ns;
		_Atomic uint64_t blind_ns;
		_Atomic uint64_t read_ns;
	} peer_watch[2];
	/* attach.h ring_sweep_if_stalled: per kind of poll, where the ring
	 * stood at the last -EAGAIN and since when (a sweep only once it has
	 * not moved for 50 ms of watching: ring_stood_still).  Relaxed: racing
	 * threads only shift a sweep. */
	struct ring_stall {
		_Atomic uint64_t at;
		_Atomic uint64_t since_ns;  /* 0: not timed yet */
		_Atomic uint64_t look_ns;   /* the last look (every 64th poll at `at`) */
		_Atomic uint64_t blind_ns;  /* the longest gap between looks since since_ns */
		_Atomic unsigned polls;     /* -EAGAINs at `at` */
	} stall[3];                        /* enum ring_stall_kind */
	/* oprec.h op_rec_mine: the op record of one thread that uses this
	 * handle (the first to find the field free), so that its puts and gets
	 * skip the per-thread cache.  owner names that thread (oprec.h
	 * op_solo_me: its thread pointer, or its cache's address where the
	 * compiler has no thread pointer): set by it with a CAS from 0, cleared by it
	 * when it gives the record back (oprec.c), and in a fork child
	 * (attach.c).  slot and rec are written by the owner only,
	 * read by the owner only: other threads compare owner with their own
	 * name and stop there. */
	struct op_rec_solo {
		_Atomic uintptr_t owner;
		int               slot;
		struct op_rec    *rec;
		/* Where the owner's last free_tail follow ended (follow_at,
		 * UINT64_MAX: none since solo_take), and its one-record gets
		 * since (copy.c get_leaf: + 1 each): slot.h
		 * ring_free_tail_follow_own; and how many of its follows needed
		 * no walk (counted_follows). */
		uint64_t          follow_at, gets_since_follow, counted_follows;
	} op_solo;
	struct shmring     *reg_next, *reg_prev; /* registry.c */
	uint64_t            serial;       /* unique per handle in this process */

	/* Issue 13 (broadcast.c, subscriber.c, overwrite.c): RING_HDR_BROADCAST /
	 * RING_HDR_OVERWRITE from the header, and this handle's subscription;
	 * RING_HDR_REDELIVER too (as redeliver above), so that the one-record
	 * get tests one word for the rings it leaves to the general path.  The
	 * creator and an attach alike take it from the header's flags
	 * (redeliver::creators_get_takes_the_requeued_record_first). */
#define RING_MODE_FLAGS (RING_HDR_BROADCAST | RING_HDR_OVERWRITE | RING_HDR_REDELIVER)
	unsigned            mode;
	struct bcast_sub    sub;
};

/* Entry i of the attachment table; op record k of entry i. */
static inline struct attach_entry *ring_attach(const struct shmring *r, int i)
{
	return &r->attach[i];
}
static inline struct op_rec *ring_op_rec(const struct shmring *r, int i, unsigned k)
{
	return &r->op_recs[(size_t)i * OPREC_PER_ENTRY + k];
}

/* map.c: shmring_attach_fd without the in-use lock (inuse.h): an
 * inspection's handle (inspect.c), which uses nothing. */
int shmring__attach_fd_unheld(struct shmring **ring, int fd);
/* name.c: the shm_open path for a ring name. */
int shmring__shm_name(const char *name, char out[SHMRING_NAME_MAX + 2]);
/* eventfd.c: stop the watcher and close the eventfd (from detach). */
void shmring__eventfd_destroy(struct shmring *r);
/* eventfd.c: what the two kinds of event fd share, the first member of
 * each one's structure: the fd, the process that made it, and the
 * structures inherited through fork() and replaced in this process (kept,
 * their fd closed, until detach: another thread may still be reading one's
 * pid).  shmring__ev_current: this process's structure in *slot (r->evfd or
 * r->evu), made by make if there is none (create) or if the one there came
 * from another process; NULL with *err set on failure, or if there is none
 * and !create.  destroy tears down one this process made. */
struct ring_evbase {
	int                 fd;
	pid_t               pid;
	struct ring_evbase *stale;
};
struct ring_evbase *shmring__ev_current(struct shmring *r, struct ring_evbase **slot, bool create,
                                        int *err,
                                        int (*make)(struct shmring *, struct ring_evbase **),
                                        void (*destroy)(struct ring_evbase *));
/* eventfd.c: start a library thread (fn(arg)) that takes no signals, and
 * return once it runs (it sets *running under mu and signals cv). */
int  shmring__quiet_thread(pthread_t *t, void *(*fn)(void *), void *arg, pthread_mutex_t *mu,
                           pthread_cond_t *cv, const bool *running);
/* event_uring.c: the direct event fd (shmring_event_fd_direct): this
 * process's fd, its ack, and its end (from detach). */
int  shmring__event_uring_fd(struct shmring *r);
int  shmring__event_uring_ack(struct shmring *r);
void shmring__event_uring_destroy(struct shmring *r);

#endif /* SHMRING_HANDLE_H */
