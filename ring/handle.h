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
 *   oprec.h     op records: the announcement of each operation in flight
 *   attach.h    attachments, roles, the census, reaping dead peers
 *   liveness.h  process identity and liveness
 *   latch.h     the futex counter (join, shmring_latch)
 * Functions that cross files are named shmring__*; inline helpers in these
 * headers never reach the linker.
 */
#ifndef SHMRING_HANDLE_H
#define SHMRING_HANDLE_H

#include <stdbool.h>
#include <sys/types.h>

#include "layout.h"

/* Geometry is copied out of the shared header once, after validation, and
 * never re-read from shared memory: a peer cannot change our bounds. */
struct shmring {
	struct ring_header *hdr;
	struct slot_meta   *meta;
	unsigned char      *data;      /* first of the two data mappings */
	uint64_t            nslots;
	uint64_t            mask;      /* nslots - 1 */
	unsigned            quarter_shift; /* log2(nslots) - 2 */
	size_t              capacity;
	size_t              max_record;
	void               *map;
	size_t              map_len;
	int                 fd;
	bool                named;
	bool                redeliver; /* SHMRING_REDELIVER ring (header flags, at attach) */
	unsigned            spin;
	/* Producer-side hint: a free_tail value seen earlier (only ever behind
	 * the real one, since free_tail only grows).  Release/acquire so that a
	 * thread using another thread's hint inherits its happens-before. */
	_Atomic uint64_t    cached_free;
	struct ring_eventfd *evfd;    /* shmring_event_fd's watcher, or NULL */

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
	_Atomic unsigned    eagain_count; /* rate-limits sweeps from -EAGAIN */
	struct shmring     *reg_next, *reg_prev; /* registry.c */
	uint64_t            serial;       /* unique per handle in this process */
};

/* name.c: the shm_open path for a ring name. */
int shmring__shm_name(const char *name, char out[SHMRING_NAME_MAX + 2]);
/* eventfd.c: stop the watcher and close the eventfd (from detach). */
void shmring__eventfd_destroy(struct shmring *r);

#endif /* SHMRING_HANDLE_H */
