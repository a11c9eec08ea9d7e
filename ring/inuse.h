/*
 * inuse.h - the in-use lock of a named ring's file (private).
 *
 * Every handle but an inspection's holds a shared flock(2) on its ring's
 * file from attach to detach (the lock belongs to the open file
 * description: a fork or an fd passed on shares it, and it goes with the
 * last fd, whatever ends the process).  shmring_unlink_stale (inspect.c)
 * takes the exclusive lock without waiting: if it gets it, no handle is
 * open, and none can be made by name until it lets go; an opener by name
 * that got its lock checks afterwards that the name still leads to its
 * file (else the ring was removed meanwhile: -ENOENT).  So a remover's
 * check and its unlink are one step for every opener: before, `shmring rm
 * --stale` could remove a ring a process had just opened, which then used
 * a ring nobody else could find (docs/lifecycle.md, "Removing what
 * nothing uses").  Not covered: an unlink that takes no lock
 * (shmring_unlink, rm NAME) and a new ring made at the name, both between
 * the remover's last look at the name and its unlink (microseconds); the
 * remover then removes the new ring's name.
 */
#ifndef SHMRING_INUSE_H
#define SHMRING_INUSE_H

#include <stdbool.h>

#include "shmring.h" /* SHMRING_NAME_MAX */

/* Where shm_open keeps its files (glibc: __shm_directory). */
#define SHM_DIR "/dev/shm"

/* Take the shared lock on fd, waiting at most a second for a remover's
 * exclusive one (it holds it for the milliseconds of a check).  Not taken
 * (held longer: a remover stopped, or anyone who may read the file and took
 * it to keep openers out; or flock failed, ENOLCK), the handle is made all
 * the same, unprotected against a remover, as before this lock, so that
 * nobody who can read a ring can stop others opening it
 * (docs/threat-model.md). */
void shmring__inuse_hold(int fd);
/* Does SHM_DIR + path (shm_open's form, "/name") lead to fd's file? */
bool shmring__name_leads_to(const char *path, int fd);

#endif /* SHMRING_INUSE_H */
