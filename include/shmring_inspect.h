/*
 * shmring_inspect.h - looking at rings from outside: recognise a ring file
 * without waiting, inspect a ring without joining it, list who is attached,
 * sweep for the dead on demand, and remove a ring nothing uses.  What the
 * shmring(1) tool is made of, for any other tool that wants the same.  Errors
 * follow <shmring.h>.
 *
 * None of these calls waits, and none maps a file before its size has been
 * checked against the header it holds (so a short or foreign file is an
 * error, never a SIGBUS).  A file shrunk while it is mapped still raises
 * SIGBUS at the next access to the lost pages, for these calls as for every
 * other (docs/threat-model.md, "Truncation").
 */
#ifndef SHMRING_INSPECT_H
#define SHMRING_INSPECT_H

#include <stdint.h>
#include <sys/types.h>
#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What shmring_probe learnt of a file. */
struct shmring_probe {
	uint64_t file_size;  /* bytes, from fstat                                 */
	uid_t    uid;        /* owner                                             */
	unsigned mode;       /* permission bits (07777)                           */
	size_t   capacity;   /* the ring's record storage, bytes (0 if not a ring) */
	size_t   max_record; /* its largest record, bytes (0 if not a ring)       */
};

/* Is the named file a ring?  Opens it with O_NONBLOCK | O_NOFOLLOW, never
 * waits (not for a fifo, not for a creator still writing the header), and
 * maps it only after its size has matched its header.  Takes no role and no
 * attachment entry.  Returns:
 *    0         a ring (capacity and max_record filled in);
 *   -ENOENT    no such file;  -EINVAL / -ENAMETOOLONG  not a ring name;
 *   -EACCES    not readable and writable by the caller (looking at a ring's
 *              shared state takes write access: probing maps it as a member
 *              would);
 *   -ELOOP     a symbolic link;
 *   -EAGAIN    empty, or its header not written yet: a ring being made by
 *              shmring_create right now, or an abandoned empty file (probe
 *              again later to tell);
 *   -EPROTO    not a ring (not a regular file, foreign contents);
 *   -EPROTONOSUPPORT  a ring made by a library of another layout (ABI)
 *              version: a ring, which this library cannot read;
 *   -EBADMSG   a ring whose size or geometry is inconsistent (truncated,
 *              grown, corrupt).
 * out (may be NULL) has file_size, uid and mode whenever the name exists,
 * whatever the result (the name's own, by lstat, when it cannot be opened: a
 * symlink's, not its target's).  A directory is -EPROTO. */
SHMRING_API int shmring_probe(const char *name, struct shmring_probe *out);

/* Open a named ring to look at it: like shmring_open, but it never waits
 * (a file whose header is not written yet is -EAGAIN at once, where
 * shmring_open gives a creator up to a second), opens with O_NONBLOCK |
 * O_NOFOLLOW, and fails as shmring_probe does on anything else that is not
 * a ring.  The handle holds no role and no attachment entry: shmring_info,
 * shmring_attachments and shmring_check_peers are what it is for, and
 * shmring_detach ends it.  It holds no in-use lock (shmring_unlink_stale
 * below), so it keeps nothing from being removed.  (Otherwise an ordinary
 * handle: a put or get through it would take a role, unprotected by that
 * lock.) */
SHMRING_API int shmring_inspect_open(struct shmring **ring, const char *name);

/* One entry of a ring's attachment table. */
struct shmring_attachment {
	pid_t    pid;        /* the attached process (or, while it is being
	                        reaped, the reaper; while it is pending, the
	                        forking parent)                                 */
	unsigned roles;      /* SHMRING_PRODUCER | SHMRING_CONSUMER              */
	int      state;      /* SHMRING_ATTACH_* below                           */
	uint64_t start_time; /* the process's start, clock ticks since boot, as
	                        in /proc/PID/stat field 22 (0: unknown)          */
	uint64_t taken;      /* records it took, once the join counter is used  */
	uint64_t done;       /* task_done calls it made, likewise               */
};
#define SHMRING_ATTACH_LIVE    0 /* its process is running now              */
#define SHMRING_ATTACH_DEAD    1 /* its process has exited (or its pid now
                                    names another process): the next sweep
                                    frees the entry                         */
#define SHMRING_ATTACH_PENDING 2 /* made by a fork for the child, not yet
                                    taken over by it                        */
#define SHMRING_ATTACH_REAPING 3 /* being swept (pid: the sweeper's)         */

/* Copy the ring's attachment table into out[0..n): every entry in use, in
 * table order, each checked for liveness during this call (a SIGKILLed
 * process shows as SHMRING_ATTACH_DEAD at once, not after a sweep).
 * Returns how many entries are in use, which may exceed n (then only the
 * first n are written; at most the ring's max_attach).  n 0 with out NULL
 * counts.  Read-only: changes nothing in the ring.  A snapshot: entries may
 * come and go while it is taken. */
SHMRING_API int shmring_attachments(struct shmring *ring, struct shmring_attachment *out, size_t n);

/* Sweep the ring for dead attachments now (no rate limit): each dead one's
 * unfinished claims are recovered as after a crash, its roles come off the
 * live counts, its entry is freed, and waiting peers are woken to see end of
 * stream or broken pipe.  After it, shmring_info's producers and consumers
 * count only processes found alive.  Returns how many entries it freed.
 * What every waiting member does by itself at least every 50 ms; safe to run
 * from any handle at any time, concurrently with traffic and other sweeps. */
SHMRING_API int shmring_check_peers(struct shmring *ring);

/* Storage traffic since the ring was made, in SHMRING_SLOT_SIZE slots: what
 * producers have claimed and consumers have taken (a record of len bytes is
 * max(1, ceil(len / SHMRING_SLOT_SIZE)) slots; aborted reservations and
 * recovered claims count too).  Two reads a little apart give rates: for
 * records of up to SHMRING_SLOT_SIZE bytes, slots are records.  Each figure
 * only grows; they are read one after the other, not as one snapshot. */
struct shmring_traffic {
	uint64_t put_slots;   /* claimed by producers */
	uint64_t taken_slots; /* taken by consumers   */
};
SHMRING_API int shmring_traffic(struct shmring *ring, struct shmring_traffic *out);

/* Remove the named ring if nothing uses it, in one step for every process
 * that opens it.  Uses it: a process holding a handle on it (every handle
 * but an inspection's holds a shared flock(2) on the ring's file, from
 * attach to detach, through forks and passed fds, gone with the process),
 * a live attachment (the table is swept first, as shmring_check_peers),
 * and, unless flags has SHMRING_UNLINK_FORCE, a record waiting.  While it
 * looks it holds the exclusive lock: a process opening the ring by name
 * meanwhile (shmring_open, shmring_open_or_create) either held it first,
 * and the ring stays, or finds the name gone (-ENOENT; open_or_create makes
 * a new ring), never a handle on a ring nobody else can find.  Never waits.
 * What `shmring rm --stale` runs for each ring.  Returns:
 *    0         removed;
 *   -EBUSY     in use (a handle is open, or an attachment live; a process
 *              of a library older than this lock counts only once it has
 *              taken a role);
 *   -ENOTEMPTY records are waiting (SHMRING_UNLINK_FORCE removes it anyway);
 *   -EINVAL    flags has other bits, or not a ring name;
 *   and shmring_probe's errors: -ENOENT, -EPROTO, -EPROTONOSUPPORT (another
 *   layout version: its users cannot be seen from here), -EBADMSG, -EACCES,
 *   ...; -EXDEV (made in another PID namespace: likewise).  The file stays
 *   on every error. */
#define SHMRING_UNLINK_FORCE 0x1u
SHMRING_API int shmring_unlink_stale(const char *name, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_INSPECT_H */
