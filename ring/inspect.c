/*
 * inspect.c - shmring_inspect.h: probing a file, opening a ring to look at
 * it, listing its attachments, sweeping it on demand, removing it when
 * nothing uses it (shmring_unlink_stale, the in-use lock's remover: inuse.h).
 *
 * Self-contained on purpose: the file is opened here (never waiting), and
 * everything past "it starts with the magic" is left to map.c's attach
 * (shmring__attach_fd_unheld: shmring_attach_fd without the in-use lock),
 * the one place that validates a header against its file before mapping
 * it.  From the internals it reads only the attachment table (layout.h) and
 * the two claim indices, and calls shmring__shm_name, shmring__id_alive and
 * shmring__reap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach.h"
#include "inuse.h"
#include "liveness.h"
#include "shmring_inspect.h"

static void fill_stat(const struct stat *st, struct shmring_probe *out)
{
	if (!out)
		return;
	out->file_size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
	out->uid = st->st_uid;
	out->mode = (unsigned)st->st_mode & 07777u;
}

/* The file's state before anything is mapped: 0 if it starts with a ring's
 * magic, else the error shmring_probe documents.  Reads at most 8 bytes. */
static int look_before_mapping(int fd, struct shmring_probe *out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	fill_stat(&st, out);
	if (!S_ISREG(st.st_mode))
		return -EPROTO;
	if (st.st_size == 0)
		return -EAGAIN;
	uint64_t magic = 0;
	ssize_t got = pread(fd, &magic, sizeof(magic), 0);
	if (got < 0)
		return -errno;
	/* shmring_create writes the magic last (map.c, init_file): all zero
	 * is a header not written yet. */
	if (magic == 0)
		return got == (ssize_t)sizeof(magic) || got == st.st_size ? -EAGAIN : -EPROTO;
	if (got != (ssize_t)sizeof(magic) || magic != RING_MAGIC)
		return -EPROTO;
	return 0;
}

/* Open the file at name without waiting or following a link: its fd, or
 * the error shmring_probe documents (out, if not NULL, zeroed, then the
 * name's owner and mode when it cannot be opened). */
static int open_ring_file(const char *name, char path[SHMRING_NAME_MAX + 2],
                          struct shmring_probe *out)
{
	int rc = shmring__shm_name(name, path);
	if (rc)
		return rc;
	if (out)
		memset(out, 0, sizeof(*out));
	/* O_NONBLOCK: a fifo (or anything else odd) placed there never blocks
	 * the open.  O_NOFOLLOW: glibc adds it too; said here for the reader. */
	int fd = shm_open(path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd >= 0)
		return fd;
	rc = -errno;
	/* Still say whose it is and what mode: from the name itself (a
	 * symlink's own, not its target's).  Before, only a file this
	 * user could read said so; another user's 0000 file or a symlink
	 * showed uid 0 and mode 0000, someone else's file as root's (a
	 * review found it, 2026-12-06). */
	char full[sizeof SHM_DIR + SHMRING_NAME_MAX + 2];
	struct stat st;
	snprintf(full, sizeof full, "%s%s", SHM_DIR, path);
	bool known = lstat(full, &st) == 0;
	if (known)
		fill_stat(&st, out);
	/* ENXIO: a socket; EISDIR, ENODEV...: nothing a ring can be (and
	 * a directory, which glibc's shm_open reports as EINVAL, the
	 * error of a bad name: a valid name it is) */
	if (rc == -ENXIO || rc == -EISDIR || rc == -ENODEV ||
	    (rc == -EINVAL && known && S_ISDIR(st.st_mode)))
		rc = -EPROTO;
	return rc;
}

/* An inspection's handle on the ring file fd (the caller keeps fd): no
 * role, no attachment entry, no in-use lock (inuse.h). */
static int inspect_fd(int fd, struct shmring_probe *out, struct shmring **ring)
{
	int rc = look_before_mapping(fd, out);
	if (rc)
		return rc;
	/* Validates geometry against the file's size before mapping,
	 * and does not wait (map.c, attach_owned_fd, not patient). */
	rc = shmring__attach_fd_unheld(ring, fd);
	if (rc == 0 && out) {
		out->capacity = (*ring)->capacity;
		out->max_record = (*ring)->max_record;
	}
	return rc;
}

/* Open name without waiting; on success *ring is attached (no role). */
static int open_for_inspection(const char *name, struct shmring_probe *out, struct shmring **ring)
{
	char path[SHMRING_NAME_MAX + 2];
	int fd = open_ring_file(name, path, out);
	if (fd < 0)
		return fd;
	int rc = inspect_fd(fd, out, ring);
	close(fd);
	return rc;
}

int shmring_probe(const char *name, struct shmring_probe *out)
{
	struct shmring *ring = NULL;
	int rc = open_for_inspection(name, out, &ring);
	if (rc == 0)
		shmring_detach(ring);
	return rc;
}

int shmring_inspect_open(struct shmring **ring, const char *name)
{
	if (!ring)
		return -EINVAL;
	*ring = NULL;
	return open_for_inspection(name, NULL, ring);
}

/* What the entry whose id word is id (not 0) is: SHMRING_ATTACH_*. */
static int entry_state(uint64_t id)
{
	if (id & ATTACH_REAPING_TAG)
		return SHMRING_ATTACH_REAPING;
	if (id & ATTACH_PENDING_TAG)
		return SHMRING_ATTACH_PENDING;
	return shmring__id_alive(id) ? SHMRING_ATTACH_LIVE : SHMRING_ATTACH_DEAD;
}

int shmring_attachments(struct shmring *ring, struct shmring_attachment *out, size_t n)
{
	if (!ring || (n && !out))
		return -EINVAL;
	int count = 0;
	for (int i = 0; i < (int)ring->nattach; i++) {
		struct attach_entry *e = ring_attach(ring, i);
		/* acquire: the roles written before the id was published (a
		 * claim's CAS is acq_rel) are seen with it */
		uint64_t id = atomic_load_explicit(&e->id, memory_order_acquire);
		if (id == 0)
			continue;
		if ((size_t)count < n) {
			struct shmring_attachment *a = &out[count];
			uint64_t who = id & ATTACH_ID_MASK;
			a->pid = (pid_t)(who & ATTACH_PID_MASK);
			a->start_time = who >> ATTACH_PID_BITS;
			a->roles = atomic_load_explicit(&e->roles, memory_order_relaxed) &
			           (SHMRING_PRODUCER | SHMRING_CONSUMER);
			a->taken = atomic_load_explicit(&e->got, memory_order_relaxed);
			a->done = atomic_load_explicit(&e->done, memory_order_relaxed);
			a->state = entry_state(id);
		}
		count++;
	}
	return count;
}

int shmring_check_peers(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	return shmring__reap(ring);
}

int shmring_traffic(struct shmring *ring, struct shmring_traffic *out)
{
	if (!ring || !out)
		return -EINVAL;
	/* relaxed: counters for display; each is a position that only grows */
	uint64_t t = atomic_load_explicit(&ring->hdr->cons_head, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&ring->hdr->prod_head, memory_order_relaxed);
	out->put_slots = h & RING_POS_MASK;
	out->taken_slots = t;
	return 0;
}

/* Is an entry of the table in use by a process that may be alive (live,
 * joining through a fork, being reaped)?  After a sweep, the dead are
 * gone.  (acquire, as shmring_attachments) */
static bool attached_alive(struct shmring *r)
{
	for (int i = 0; i < (int)r->nattach; i++) {
		uint64_t id = atomic_load_explicit(&ring_attach(r, i)->id, memory_order_acquire);
		if (id && entry_state(id) != SHMRING_ATTACH_DEAD)
			return true;
	}
	return false;
}

int shmring_unlink_stale(const char *name, unsigned flags)
{
	if (flags & ~SHMRING_UNLINK_FORCE)
		return -EINVAL;
	char path[SHMRING_NAME_MAX + 2];
	int fd = open_ring_file(name, path, NULL);
	if (fd < 0)
		return fd;
	/* The in-use lock, exclusive (inuse.h): refused while any handle is
	 * open; held, no handle can be made by name until we let go. */
	int rc = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
	struct shmring *r = NULL;
	if (rc == 0)
		rc = inspect_fd(fd, NULL, &r);
	if (rc == 0) {
		int swept = shmring__reap(r);
		struct shmring_info info;
		if (swept < 0)
			rc = swept;
		else if (attached_alive(r))
			rc = -EBUSY;
		else if ((rc = shmring_info(r, &info)) == 0 && info.records &&
		         !(flags & SHMRING_UNLINK_FORCE))
			rc = -ENOTEMPTY;
		shmring_detach(r);
	}
	/* the name still ours: not removed and made again meanwhile by
	 * someone who did not ask (shmring_unlink takes no lock) */
	if (rc == 0 && !shmring__name_leads_to(path, fd))
		rc = -ENOENT;
	else if (rc == 0 && shm_unlink(path) < 0)
		rc = -errno;
	close(fd); /* lets go of the lock */
	return rc;
}
