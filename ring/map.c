/*
 * map.c - making, opening, validating and mapping a ring file.
 *
 * Mapping: one reservation of data_offset + 2 * capacity bytes, then the file
 * [0, data_offset + capacity) at its start and the data region again right
 * after it, so every record is contiguous in our address space.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach.h"
#include "fence.h"
#include "inuse.h"
#include "liveness.h"

/* A record's length and its slots' byte count are 32-bit meta fields. */
_Static_assert(SHMRING_MAX_RECORD_LIMIT == UINT32_MAX - RING_SLOT, "record length limit");

struct geometry {
	uint64_t capacity, max_record, attach_count, attach_offset, meta_offset, data_offset,
	         file_size;
	unsigned mode; /* issue 13: RING_HDR_BROADCAST | RING_HDR_OVERWRITE */
	unsigned redeliver, max_deliveries; /* create only: SHMRING_REDELIVER */
	unsigned light;                     /* create only: SHMRING_LIGHT_PUBLISH */
};

static uint64_t round_up(uint64_t x, uint64_t to)
{
	return (x + to - 1) / to * to;
}

static void geometry_for(uint64_t capacity, uint64_t max_record, uint64_t attach_count,
                         struct geometry *g)
{
	g->capacity = capacity;
	g->max_record = max_record;
	g->attach_count = attach_count;
	g->attach_offset = RING_HEADER_SIZE;
	g->meta_offset = g->attach_offset + ring_attach_bytes(attach_count);
	/* the inline layout has no meta array: the entries are in the slots */
	g->data_offset = g->meta_offset +
	                 (ring_layout_inline(max_record)
	                          ? 0
	                          : round_up((capacity >> RING_SLOT_SHIFT) * sizeof(struct slot_meta),
	                                     RING_PAGE));
	g->file_size = g->data_offset + capacity;
	g->mode = 0;
	g->redeliver = g->max_deliveries = 0;
	g->light = 0;
}

static int geometry_from_config(const struct shmring_config *cfg, struct geometry *g)
{
	uint64_t cap = cfg && cfg->capacity ? cfg->capacity : SHMRING_DEFAULT_CAPACITY;
	if (cap > SHMRING_MAX_CAPACITY)
		return -EINVAL;
	uint64_t pow2 = SHMRING_MIN_CAPACITY;
	while (pow2 < cap)
		pow2 <<= 1;
	uint64_t maxrec = cfg && cfg->max_record ? cfg->max_record
	                                         : pow2 / SHMRING_DEFAULT_MAX_RECORD_DIVISOR;
	if (!(cfg && cfg->max_record) && maxrec > SHMRING_MAX_RECORD_LIMIT)
		maxrec = SHMRING_MAX_RECORD_LIMIT;
	if (maxrec > pow2 || maxrec > SHMRING_MAX_RECORD_LIMIT)
		return -EINVAL;
	uint64_t nattach = cfg && cfg->max_attach ? cfg->max_attach : SHMRING_DEFAULT_MAX_ATTACH;
	if (nattach > SHMRING_MAX_ATTACH_LIMIT)
		return -EINVAL;
	if (cfg && ((cfg->flags & ~(SHMRING_PRODUCER | SHMRING_CONSUMER | SHMRING_NO_RESERVE |
	                               SHMRING_PERSISTENT | SHMRING_REDELIVER | SHMRING_BROADCAST |
	                               SHMRING_OVERWRITE | SHMRING_LIGHT_PUBLISH)) ||
	            (cfg->mode & ~0777u)))
		return -EINVAL;
	/* issue 13: broadcast rings neither overwrite unread records (they
	 * overwrite what every tethered subscriber has read) nor redeliver; and
	 * an overwriting put would discard records a redelivery ring holds or
	 * has parked for redelivery (redeliver.c), so those two exclude each
	 * other as well. */
	if (cfg && __builtin_popcount(cfg->flags & (SHMRING_BROADCAST | SHMRING_OVERWRITE |
	                                            SHMRING_REDELIVER)) > 1)
		return -EINVAL;
	/* redeliver hook: max_deliveries only with the flag, within 16 bits */
	if (cfg && cfg->max_deliveries &&
	    (!(cfg->flags & SHMRING_REDELIVER) || cfg->max_deliveries > 0xffffu))
		return -EINVAL;
	geometry_for(pow2, maxrec, nattach, g);
	g->mode = cfg ? ((cfg->flags & SHMRING_BROADCAST) ? RING_HDR_BROADCAST : 0) |
	                ((cfg->flags & SHMRING_OVERWRITE) ? RING_HDR_OVERWRITE : 0)
	              : 0;
	g->redeliver = cfg && (cfg->flags & SHMRING_REDELIVER);
	g->max_deliveries = cfg ? cfg->max_deliveries : 0;
	g->light = cfg && (cfg->flags & SHMRING_LIGHT_PUBLISH);
	return 0;
}

/* Check a header against the file it came from.  Everything in it is
 * untrusted: a foreign, truncated or corrupt file must fail here. */
static int validate_header(const struct ring_header *h, uint64_t file_size, struct geometry *g)
{
	if (h->magic != RING_MAGIC)
		return -EPROTO;
	/* A ring all the same (the magic matched): made by a library of
	 * another layout version, which this one cannot read.  Told apart
	 * from a foreign file so that an operator after an upgrade sees the
	 * rings the older processes still use (shmring ls: other-version),
	 * where they were "not a ring" and hidden (twelfth session).  ABI 0
	 * is no version: a creator writes it before the magic, so a header
	 * with the magic and ABI 0 is corrupt. */
	if (h->abi != RING_ABI)
		return h->abi ? -EPROTONOSUPPORT : -EBADMSG;
	if (h->slot_size != RING_SLOT || h->header_size != RING_HEADER_SIZE)
		return -EBADMSG;
	uint64_t cap = h->capacity;
	if (cap < SHMRING_MIN_CAPACITY || cap > SHMRING_MAX_CAPACITY || (cap & (cap - 1)))
		return -EBADMSG;
	if (h->max_record > cap || h->max_record > SHMRING_MAX_RECORD_LIMIT)
		return -EBADMSG;
	if (h->attach_count < 1 || h->attach_count > SHMRING_MAX_ATTACH_LIMIT)
		return -EBADMSG;
	/* The kind bits as create writes them: none unknown, at most one of
	 * broadcast, overwrite and redelivery (geometry_from_config).  A
	 * hostile 0x14 (broadcast and redelivery) passed: a peek took the
	 * broadcast path and the requeue the redelivery one, which freed a
	 * NULL op record (SIGSEGV; a review found it, 2026-12-06;
	 * validate::kind_bits_create_refuses_are_ebadmsg). */
	if ((h->flags & ~(RING_HDR_NAMED | RING_HDR_PERSISTENT | RING_HDR_BROADCAST |
	                  RING_HDR_OVERWRITE | RING_HDR_REDELIVER | RING_HDR_LIGHT)) ||
	    __builtin_popcount(h->flags & (RING_HDR_BROADCAST | RING_HDR_OVERWRITE |
	                                   RING_HDR_REDELIVER)) > 1)
		return -EBADMSG;
	geometry_for(cap, h->max_record, h->attach_count, g);
	if (h->attach_offset != g->attach_offset || h->meta_offset != g->meta_offset || h->data_offset != g->data_offset ||
	    h->file_size != g->file_size || file_size != g->file_size)
		return -EBADMSG;
	return 0;
}

/* Spinning before sleeping pays off only when the peer runs on another CPU
 * meanwhile.  With one CPU online it never can.  Our own affinity says
 * nothing about the peer's: a process pinned to one CPU is the usual
 * low-latency set-up, each side on its own core (issue 11: with spin 0 there,
 * every blocking get slept, 11.4 us one-way against 431 ns).  Whether the
 * peer shares our CPU is learnt at wait time instead (eventcount.c
 * spin_first: spins that keep failing stop). */
static unsigned default_spin(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus >= 2 ? RING_DEFAULT_SPIN : 0;
}

static int map_ring(int fd, const struct geometry *g, struct shmring *r)
{
	size_t total = g->data_offset + 2 * g->capacity;
	void *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	unsigned char *b = base;
	if (mmap(b, g->data_offset + g->capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
	         fd, 0) == MAP_FAILED ||
	    mmap(b + g->data_offset + g->capacity, g->capacity, PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_FIXED, fd, (off_t)g->data_offset) == MAP_FAILED) {
		int err = -errno;
		munmap(base, total);
		return err;
	}
	r->map = base;
	r->map_len = total;
	r->hdr = base;
	r->attach = (struct attach_entry *)(b + g->attach_offset);
	r->op_recs = (struct op_rec *)(b + g->attach_offset +
	                               g->attach_count * sizeof(struct attach_entry));
	r->nattach = (unsigned)g->attach_count;
	r->capacity = g->capacity;
	r->max_record = g->max_record;
	r->nslots = g->capacity >> RING_SLOT_SHIFT;
	r->mask = r->nslots - 1;
	/* handle.h: one formula locates an entry in either layout */
	r->meta = (struct slot_meta *)(b + g->meta_offset); /* inline: == the data region */
	if (ring_layout_inline(g->max_record)) {
		r->data = b + g->data_offset + sizeof(struct slot_meta);
		r->meta_lo = r->mask;
		r->meta_hi = 0;
		r->meta_shift = RING_SLOT_SHIFT;
	} else {
		r->data = b + g->data_offset;
		r->meta_lo = 3;
		r->meta_hi = r->mask & ~UINT64_C(3);
		r->meta_shift = (unsigned)__builtin_ctzll(r->nslots) + 2;
	}
	r->spin = default_spin();
	atomic_init(&r->cached_free, 0);
	/* the sweep's cache (handle.h): without it (NULL), sweeps still work */
	r->sweep_ids = calloc(r->nattach, sizeof(uint64_t) + 1);
	return 0;
}

/* Free a handle's memory (after map_ring, or when it failed: the cache is
 * NULL then). */
static void handle_free(struct shmring *r)
{
	free(r->sweep_ids);
	free(r);
}

int shmring_prefault(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	/* Both mappings (the data region's second view too): without them the
	 * second view faults in, page by page, where records wrap. */
	if (madvise(ring->map, ring->map_len, MADV_POPULATE_WRITE) != 0)
		/* EINVAL: a kernel before 5.14.  (Touching the pages instead
		 * would raise SIGBUS where a peer has shrunk the file; this
		 * call reports it.) */
		return errno == EINVAL ? -EOPNOTSUPP : -errno;
	/* Then read a byte of every page from this process.  The madvise
	 * fills the kernel's page tables, but where a hypervisor shadows them
	 * (PVM on the reference VM) the translation the CPU walks is built
	 * only at this process's first access to each page, at about 15 us a
	 * page, with no fault the guest can see.  Left to the puts and gets,
	 * one record in 64 paid it during the first lap of a 4 MiB ring: the
	 * spinning ping-pong's p99 was 16.8 us against 0.94 us with this loop
	 * (docs/perf.md, "The spinning tail").  Every page was populated just
	 * now, so these reads find memory; a plain read changes nothing a
	 * peer could see. */
	for (size_t off = 0; off < ring->map_len; off += RING_PAGE)
		(void)((volatile const unsigned char *)ring->map)[off];
	return 0;
}

/* Give the file its size and, unless the caller opted out, allocate all of
 * it now: tmpfs (and a memfd) allocate a page on first touch, and a touch
 * that finds the filesystem full raises SIGBUS in whoever makes it, at any
 * later put or get.  Allocated here, a full /dev/shm is -ENOSPC from create
 * and the pages stay ours however full it gets later (tmpfs counts
 * fallocated pages as used: shmem_fallocate in mm/shmem.c). */
static int size_file(int fd, const struct geometry *g, bool reserve)
{
	if (ftruncate(fd, (off_t)g->file_size) < 0)
		return -errno;
	if (!reserve)
		return 0;
	/* posix_fallocate returns the error; glibc uses fallocate(2), which
	 * tmpfs supports since Linux 3.5, and only emulates it by writing where
	 * the filesystem has none. */
	int err = posix_fallocate(fd, 0, (off_t)g->file_size);
	return -err;
}

static int init_file(int fd, const struct geometry *g, bool named, bool reserve,
                     bool persistent, struct shmring **out)
{
	int rc = size_file(fd, g, reserve);
	if (rc)
		return rc;
	struct shmring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = map_ring(fd, g, r);
	struct ring_header *h = r->hdr;
	if (rc || !h) { /* (!h: never with rc 0; said for -fanalyzer) */
		handle_free(r);
		return rc ? rc : -EIO;
	}
	h->abi = RING_ABI;
	h->slot_size = RING_SLOT;
	h->capacity = g->capacity;
	h->max_record = g->max_record;
	h->pid_ns = shmring__pid_ns();
	h->attach_offset = g->attach_offset;
	h->attach_count = (uint32_t)g->attach_count;
	h->meta_offset = g->meta_offset;
	h->data_offset = g->data_offset;
	h->file_size = g->file_size;
	h->header_size = RING_HEADER_SIZE;
	h->flags = (named ? RING_HDR_NAMED : 0) | (persistent ? RING_HDR_PERSISTENT : 0) | g->mode |
	           (g->light ? RING_HDR_LIGHT : 0);
	/* redeliver hook: the flag and the limit, before magic */
	if (g->redeliver) {
		h->flags |= RING_HDR_REDELIVER;
		atomic_store_explicit(&h->rdl.max_deliveries, g->max_deliveries, memory_order_relaxed);
		r->redeliver = true;
	}
	/* as an attach's, from the header's flags (read before anyone else may
	 * write them: before the magic) */
	r->mode = h->flags & RING_MODE_FLAGS;
	/* The file is zero-filled: indices 0, every slot SLOT_EMPTY.  The magic
	 * goes last, with release, so whoever sees it sees a whole header. */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, RING_MAGIC, memory_order_release);
	r->fd = fd;
	r->named = named;
	r->persistent = persistent;
	shmring__fence_choose(r, g->light);
	shmring__attach_new(r);
	*out = r;
	return 0;
}

static int create_ring(struct shmring **ring, const char *name, const struct shmring_config *cfg);
static int attach_owned_fd(struct shmring **ring, int fd, bool patient, bool *blank_out,
                           bool hold);

/* Give the unnamed file fd the name final, in one step: EEXIST if the name
 * exists (linkat never replaces).  Through /proc/self/fd (any user);
 * without /proc, AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH). */
static int publish_file(int fd, const char *final)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, final, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT || access("/proc/self/fd", F_OK) == 0)
		return -errno;
	return linkat(fd, "", AT_FDCWD, final, AT_EMPTY_PATH) == 0 ? 0 : -errno;
}

/* A named ring is made whole where nobody can see it (an O_TMPFILE in
 * /dev/shm: size, storage, header, magic), then named in one step.  So no
 * process ever opens a half-made ring, and a creator that dies half way
 * leaves nothing behind (the kernel frees an unnamed file with its last
 * fd).  Of concurrent creators exactly one wins the name; the others get
 * -EEXIST (shmring_open_or_create then opens the winner's ring).
 * -EOPNOTSUPP: no O_TMPFILE here. */
static int create_named(struct shmring **ring, const char *path, const struct geometry *g,
                        mode_t mode, bool reserve, bool persistent)
{
	char final[sizeof(SHM_DIR) + SHMRING_NAME_MAX + 2];
	snprintf(final, sizeof(final), "%s%s", SHM_DIR, path);
	int fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (fd < 0)
		return errno == EISDIR || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	/* open's mode is filtered by the umask; the caller asked for mode. */
	int rc = fchmod(fd, mode) < 0 ? -errno : init_file(fd, g, true, reserve, persistent, ring);
	if (rc) {
		close(fd);
		return rc;
	}
	/* In use from before it has a name (inuse.h): nobody can hold it yet. */
	shmring__inuse_hold(fd);
	rc = publish_file(fd, final);
	if (rc) {
		shmring_detach(*ring); /* closes fd: the file goes with it */
		*ring = NULL;
		return rc;
	}
	/* The fd of an O_TMPFILE keeps its unnamed path ("/dev/shm/#123
	 * (deleted)" in /proc/self/fd) after linkat: swap in one opened by name,
	 * if the name still leads to our file, so shmring_fd() looks like any
	 * named ring's. */
	int by_name = shm_open(path, O_RDWR | O_CLOEXEC, 0);
	struct stat a, b;
	/* its in-use lock first (a shared one beside ours: granted), so that
	 * the lock is never let go on the way (inuse.h) */
	if (by_name >= 0 && fstat(by_name, &a) == 0 && fstat(fd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino && flock(by_name, LOCK_SH | LOCK_NB) == 0)
		dup3(by_name, fd, O_CLOEXEC);
	if (by_name >= 0)
		close(by_name);
	return 0;
}

int shmring_create(struct shmring **ring, const char *name, const struct shmring_config *cfg)
{
	int rc = create_ring(ring, name, cfg);
	unsigned roles = cfg ? cfg->flags & (SHMRING_PRODUCER | SHMRING_CONSUMER) : 0;
	if (rc || !roles)
		return rc;
	rc = shmring_declare(*ring, roles);
	if (rc) {
		shmring_detach(*ring);
		*ring = NULL;
		if (name)
			shmring_unlink(name);
	}
	return rc;
}

static int create_ring(struct shmring **ring, const char *name, const struct shmring_config *cfg)
{
	if (!ring)
		return -EINVAL;
	struct geometry g;
	int rc = geometry_from_config(cfg, &g);
	if (rc)
		return rc;
	bool reserve = !(cfg && (cfg->flags & SHMRING_NO_RESERVE));
	bool persistent = cfg && (cfg->flags & SHMRING_PERSISTENT);
	if (!name) {
		int fd = memfd_create("shmring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return -errno;
		rc = init_file(fd, &g, false, reserve, persistent, ring);
		if (rc) {
			close(fd);
			return rc;
		}
		if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
			rc = -errno;
			shmring_detach(*ring);
			*ring = NULL;
			return rc;
		}
		return 0;
	}
	char path[SHMRING_NAME_MAX + 2];
	rc = shmring__shm_name(name, path);
	if (rc)
		return rc;
	mode_t mode = cfg && cfg->mode ? (mode_t)cfg->mode : 0600;
	rc = create_named(ring, path, &g, mode, reserve, persistent);
	if (rc != -EOPNOTSUPP)
		return rc;
	/* No O_TMPFILE on this /dev/shm (Linux < 3.11): made under its name,
	 * magic last; an opener may meanwhile see it blank (attach_owned_fd). */
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* Locked while blank: shmring_open_or_create replaces a blank file only
	 * if nobody holds its lock, i.e. its creator died (flock locks die with
	 * their holder). */
	flock(fd, LOCK_EX);
	/* shm_open's mode is filtered by the umask; the caller asked for mode. */
	if (fchmod(fd, mode) < 0 || (rc = init_file(fd, &g, true, reserve, persistent, ring)) != 0) {
		if (!rc)
			rc = -errno;
		close(fd);
		shm_unlink(path);
		return rc;
	}
	/* now the in-use lock (inuse.h; a conversion, not atomic: a remover
	 * may slip in between on such an old kernel, so the name is checked
	 * once the lock is ours) */
	shmring__inuse_hold(fd);
	if (!shmring__name_leads_to(path, fd)) {
		shmring_detach(*ring);
		*ring = NULL;
		return -EAGAIN; /* removed as soon as made: try again */
	}
	return 0;
}

/* A blank file at path (magic 0: its creator died half way, under the
 * no-O_TMPFILE path or an earlier version of this library) that nobody is
 * making any more: remove it, if the name still leads to that same file.
 * The flock serializes removers, so one that looked at the blank file
 * before another replaced it never removes the replacement.  0: removed or
 * gone (try again); -EBUSY: its creator is still at work. */
static int remove_blank(const char *path)
{
	int fd = shm_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return err;
	}
	struct stat mine;
	uint64_t magic = 0;
	int rc = 0;
	if (fstat(fd, &mine) < 0 || !S_ISREG(mine.st_mode))
		rc = -EPROTO;
	else if (pread(fd, &magic, sizeof(magic), 0) < 0 || magic != 0)
		rc = 0; /* finished meanwhile (or foreign): the next attempt sees */
	else if (shmring__name_leads_to(path, fd) && shm_unlink(path) < 0 && errno != ENOENT)
		rc = -errno;
	close(fd); /* drops the lock */
	return rc;
}

int shmring_open_or_create(struct shmring **ring, const char *name, const struct shmring_config *cfg)
{
	if (!ring)
		return -EINVAL;
	struct geometry g;
	char path[SHMRING_NAME_MAX + 2];
	int rc = geometry_from_config(cfg, &g);
	if (rc || (rc = shmring__shm_name(name, path)) != 0)
		return rc;
	unsigned roles = cfg ? cfg->flags & (SHMRING_PRODUCER | SHMRING_CONSUMER) : 0;
	/* Bounded: each round either creates, opens, or sees the name change
	 * (removed by someone, a blank file replaced); -EBUSY only while a
	 * creator without O_TMPFILE is at work (1 ms a round). */
	for (int tries = 0; tries < 2000; tries++) {
		int made = 1;
		rc = create_ring(ring, name, cfg);
		if (rc == -EAGAIN)
			continue; /* made and removed at once (no O_TMPFILE): again */
		if (rc == -EEXIST) {
			made = 0;
			int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
			if (fd < 0) {
				rc = -errno;
				if (rc == -ENOENT)
					continue; /* removed meanwhile: create again */
				return rc;
			}
			bool blank = false;
			rc = attach_owned_fd(ring, fd, false, &blank, true);
			if (rc == 0 && !shmring__name_leads_to(path, (*ring)->fd)) {
				/* removed between our open and our lock (inuse.h) */
				shmring_detach(*ring);
				*ring = NULL;
				continue;
			}
			if (rc && blank) {
				rc = remove_blank(path);
				if (rc == -EBUSY) {
					usleep(1000);
					continue;
				}
				if (rc)
					return rc;
				continue;
			}
		}
		if (rc)
			return rc;
		if (roles && (rc = shmring_declare(*ring, roles)) != 0) {
			shmring_detach(*ring);
			*ring = NULL;
			return rc;
		}
		return made;
	}
	return rc ? rc : -EAGAIN; /* the name kept changing under us */
}

/* Attach to fd (owned by us from here on).  patient: the file may still be
 * being made by shmring_create in another process (only where /dev/shm has
 * no O_TMPFILE: create_ring); give it a moment.  *blank (if not NULL): the
 * failure was a blank file (magic 0, or too short to hold one). */
static int attach_owned_fd(struct shmring **ring, int fd, bool patient, bool *blank_out,
                           bool hold)
{
	struct ring_header hdr;
	struct stat st;
	int rc;
	for (int tries = 0;; tries++) {
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto fail;
		}
		/* pread, not mmap: a short file gives a short read, never SIGBUS. */
		ssize_t got = st.st_size >= (off_t)sizeof(hdr) ? pread(fd, &hdr, sizeof(hdr), 0) : 0;
		if (got < 0) {
			rc = -errno;
			goto fail;
		}
		if (got == (ssize_t)sizeof(hdr) && hdr.magic == RING_MAGIC)
			break;
		if (got == 0 && st.st_size >= 8 && pread(fd, &hdr.magic, 8, 0) == 8 && hdr.magic != 0) {
			/* shorter than a header: foreign, a truncated ring, or a
			 * ring of another layout version whose header is smaller
			 * (none yet: told by its ABI word all the same) */
			const off_t at = offsetof(struct ring_header, abi);
			if (hdr.magic != RING_MAGIC)
				rc = -EPROTO;
			else if (st.st_size >= at + 4 && pread(fd, &hdr.abi, 4, at) == 4 &&
			         hdr.abi != RING_ABI && hdr.abi != 0)
				rc = -EPROTONOSUPPORT;
			else
				rc = -EBADMSG;
			goto fail;
		}
		/* 1-7 bytes, not all zero: foreign (a creator's file goes from 0
		 * bytes to its whole size at once).  Counted blank, it made
		 * shmring_open_or_create go round 2000 times, "removing" a
		 * file remove_blank saw was not blank, and return 0 with no
		 * ring (a review found it, 2026-12-06;
		 * ooc::a_few_foreign_bytes_are_eproto). */
		uint64_t head = 0;
		if (got == 0 && st.st_size > 0 && st.st_size < 8 &&
		    pread(fd, &head, (size_t)st.st_size, 0) == st.st_size && head != 0) {
			rc = -EPROTO;
			goto fail;
		}
		bool blank = got == 0 || hdr.magic == 0;
		if (!patient || !blank || tries >= 1000) {
			rc = blank && got < (ssize_t)sizeof(hdr) ? -EBADMSG : -EPROTO;
			if (blank_out)
				*blank_out = blank;
			goto fail;
		}
		usleep(1000); /* creation in progress: up to ~1 s in all */
	}
	struct geometry g;
	rc = validate_header(&hdr, (uint64_t)st.st_size, &g);
	if (rc)
		goto fail;
	/* Liveness is pid + start time, read from /proc: meaningless across PID
	 * namespaces (another namespace's pids name other processes here, and
	 * ours none there), so a peer there would be reaped alive or a dead one
	 * kept.  Refused rather than tracked wrong. */
	uint64_t ns = shmring__pid_ns();
	if (hdr.pid_ns && ns && hdr.pid_ns != ns) {
		rc = -EXDEV;
		goto fail;
	}
	/* hold: this handle uses the ring (inuse.h); an inspection's does not */
	if (hold)
		shmring__inuse_hold(fd);
	struct shmring *r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = map_ring(fd, &g, r);
	if (rc) {
		handle_free(r);
		goto fail;
	}
	r->fd = fd;
	r->named = hdr.flags & RING_HDR_NAMED;
	r->persistent = hdr.flags & RING_HDR_PERSISTENT;
	r->mode = hdr.flags & RING_MODE_FLAGS;
	r->redeliver = hdr.flags & RING_HDR_REDELIVER; /* redeliver hook */
	shmring__fence_choose(r, hdr.flags & RING_HDR_LIGHT);
	shmring__attach_new(r);
	*ring = r;
	return 0;
fail:
	close(fd);
	return rc;
}

int shmring_open(struct shmring **ring, const char *name)
{
	if (!ring)
		return -EINVAL;
	char path[SHMRING_NAME_MAX + 2];
	int rc = shmring__shm_name(name, path);
	if (rc)
		return rc;
	/* Bounded: each round sees the name removed (and made again)
	 * between its open and its lock. */
	for (int tries = 0; tries < 100; tries++) {
		int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		rc = attach_owned_fd(ring, fd, true, NULL, true);
		if (rc || shmring__name_leads_to(path, (*ring)->fd))
			return rc;
		/* removed (shmring_unlink_stale) between our open and our
		 * lock: a ring nobody else can find (inuse.h); the name may
		 * lead to a new one, the next round's */
		shmring_detach(*ring);
		*ring = NULL;
	}
	return -EAGAIN; /* the name kept changing under us */
}

/* May we map fd without its owner being able to kill us with SIGBUS by
 * shrinking it?  Yes if it is sealed against shrinking and growing (an
 * anonymous ring: create seals its memfd).  A file of the filesystem mounted
 * on /dev/shm (a named ring, shm_open's directory) gets the trust documented
 * for shmring_open: whoever may write it may cut it.  Anything else (an
 * unsealed memfd, a file on another filesystem) is -EPERM.  Every tmpfs file
 * answers F_GET_SEALS (F_SEAL_SEAL unless made by memfd_create with
 * MFD_ALLOW_SEALING); other filesystems say EINVAL. */
static int check_fd_trust(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW))
		return 0;
	struct stat st, shm;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EPERM;
	if (stat(SHM_DIR, &shm) == 0 && S_ISDIR(shm.st_mode) && st.st_dev == shm.st_dev)
		return 0;
	return -EPERM;
}

/* A dup of fd, checked for trust, attached; hold: takes the in-use lock. */
static int attach_dup(struct shmring **ring, int fd, bool hold)
{
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (own < 0)
		return -errno;
	int rc = check_fd_trust(own);
	if (rc) {
		close(own);
		return rc;
	}
	return attach_owned_fd(ring, own, false, NULL, hold);
}

int shmring_attach_fd(struct shmring **ring, int fd)
{
	if (!ring || fd < 0)
		return -EINVAL;
	return attach_dup(ring, fd, true);
}

int shmring__attach_fd_unheld(struct shmring **ring, int fd)
{
	return attach_dup(ring, fd, false);
}

int shmring_fd(const struct shmring *ring)
{
	return ring ? ring->fd : -EINVAL;
}

void shmring_detach(struct shmring *ring)
{
	if (!ring)
		return;
	if (ring->evfd)
		shmring__eventfd_destroy(ring);
	if (ring->evu)
		shmring__event_uring_destroy(ring);
	shmring__attach_end(ring);
	munmap(ring->map, ring->map_len);
	close(ring->fd);
	handle_free(ring);
}

/* Is the file at path a shmring ring (its magic, whatever the rest holds:
 * a truncated or corrupt ring is still one to remove)?  Never waits (a FIFO
 * is opened O_NONBLOCK and is not a regular file), never follows a link,
 * never maps: pread within the size fstat gave.  0, -EPROTO, or the error
 * of open/fstat/pread (-ENOENT, -EACCES, ...). */
static int is_ring_file(const char *path)
{
	int fd = shm_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ELOOP ? -EPROTO : -errno;
	struct stat st;
	int rc = 0;
	uint64_t magic = 0;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(magic))
		rc = -EPROTO;
	else {
		ssize_t got = pread(fd, &magic, sizeof(magic), 0);
		if (got < 0)
			rc = -errno;
		else if (got != (ssize_t)sizeof(magic) || magic != RING_MAGIC)
			rc = -EPROTO;
	}
	close(fd);
	return rc;
}

int shmring_unlink(const char *name)
{
	char path[SHMRING_NAME_MAX + 2];
	int rc = shmring__shm_name(name, path);
	if (rc)
		return rc;
	rc = is_ring_file(path);
	if (rc)
		return rc;
	return shm_unlink(path) < 0 ? -errno : 0;
}

int shmring_unlink_any(const char *name)
{
	char path[SHMRING_NAME_MAX + 2];
	int rc = shmring__shm_name(name, path);
	if (rc)
		return rc;
	return shm_unlink(path) < 0 ? -errno : 0;
}
