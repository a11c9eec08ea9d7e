/*
 * map.c - making, opening, validating and mapping a ring file.
 *
 * Mapping: one reservation of data_offset + 2 * capacity bytes, then the file
 * [0, data_offset + capacity) at its start and the data region again right
 * after it, so every record is contiguous in our address space.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach.h"

struct geometry {
	uint64_t capacity, max_record, meta_offset, data_offset, file_size;
	unsigned redeliver, max_deliveries; /* create only: SHMRING_REDELIVER */
};

static uint64_t round_up(uint64_t x, uint64_t to)
{
	return (x + to - 1) / to * to;
}

static void geometry_for(uint64_t capacity, uint64_t max_record, struct geometry *g)
{
	g->capacity = capacity;
	g->max_record = max_record;
	g->meta_offset = RING_HEADER_SIZE;
	g->data_offset = g->meta_offset +
	                 round_up((capacity >> RING_SLOT_SHIFT) * sizeof(struct slot_meta), RING_PAGE);
	g->file_size = g->data_offset + capacity;
	g->redeliver = g->max_deliveries = 0;
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
	if (maxrec > pow2 || maxrec > UINT32_MAX - RING_SLOT)
		return -EINVAL;
	if (cfg && ((cfg->flags & ~(SHMRING_PRODUCER | SHMRING_CONSUMER | SHMRING_REDELIVER)) ||
	            (cfg->mode & ~0777u)))
		return -EINVAL;
	/* redeliver hook: max_deliveries only with the flag, within 16 bits */
	if (cfg && cfg->max_deliveries &&
	    (!(cfg->flags & SHMRING_REDELIVER) || cfg->max_deliveries > 0xffffu))
		return -EINVAL;
	geometry_for(pow2, maxrec, g);
	g->redeliver = cfg && (cfg->flags & SHMRING_REDELIVER);
	g->max_deliveries = cfg ? cfg->max_deliveries : 0;
	return 0;
}

/* Check a header against the file it came from.  Everything in it is
 * untrusted: a foreign, truncated or corrupt file must fail here. */
static int validate_header(const struct ring_header *h, uint64_t file_size, struct geometry *g)
{
	if (h->magic != RING_MAGIC)
		return -EPROTO;
	if (h->abi != RING_ABI)
		return -EPROTO;
	if (h->slot_size != RING_SLOT || h->header_size != RING_HEADER_SIZE)
		return -EBADMSG;
	uint64_t cap = h->capacity;
	if (cap < SHMRING_MIN_CAPACITY || cap > SHMRING_MAX_CAPACITY || (cap & (cap - 1)))
		return -EBADMSG;
	if (h->max_record > cap || h->max_record > UINT32_MAX - RING_SLOT)
		return -EBADMSG;
	geometry_for(cap, h->max_record, g);
	if (h->meta_offset != g->meta_offset || h->data_offset != g->data_offset ||
	    h->file_size != g->file_size || file_size != g->file_size)
		return -EBADMSG;
	return 0;
}

/* Spinning before sleeping pays off only when the peer runs on another CPU
 * meanwhile: on a process allowed one CPU it steals the peer's time slice. */
static unsigned default_spin(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) < 2)
		return 0;
	return RING_DEFAULT_SPIN;
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
	r->meta = (struct slot_meta *)(b + g->meta_offset);
	r->data = b + g->data_offset;
	r->capacity = g->capacity;
	r->max_record = g->max_record;
	r->nslots = g->capacity >> RING_SLOT_SHIFT;
	r->mask = r->nslots - 1;
	r->quarter_shift = (unsigned)__builtin_ctzll(r->nslots) - 2;
	r->spin = default_spin();
	atomic_init(&r->cached_free, 0);
	return 0;
}

int shmring_prefault(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	/* Both mappings (the data region's second view too): without them the
	 * second view faults in, page by page, where records wrap. */
	if (madvise(ring->map, ring->map_len, MADV_POPULATE_WRITE) == 0)
		return 0;
	/* EINVAL: a kernel before 5.14.  (Touching the pages instead would
	 * raise SIGBUS where a peer has shrunk the file; this call reports it.) */
	return errno == EINVAL ? -EOPNOTSUPP : -errno;
}

static int init_file(int fd, const struct geometry *g, bool named, struct shmring **out)
{
	if (ftruncate(fd, (off_t)g->file_size) < 0)
		return -errno;
	struct shmring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int rc = map_ring(fd, g, r);
	if (rc) {
		free(r);
		return rc;
	}
	struct ring_header *h = r->hdr;
	h->abi = RING_ABI;
	h->slot_size = RING_SLOT;
	h->capacity = g->capacity;
	h->max_record = g->max_record;
	h->meta_offset = g->meta_offset;
	h->data_offset = g->data_offset;
	h->file_size = g->file_size;
	h->header_size = RING_HEADER_SIZE;
	h->flags = named ? RING_HDR_NAMED : 0;
	/* redeliver hook: the flag and the limit, before magic */
	if (g->redeliver) {
		h->flags |= RING_HDR_REDELIVER;
		atomic_store_explicit(&h->rdl.max_deliveries, g->max_deliveries, memory_order_relaxed);
		r->redeliver = true;
	}
	/* The file is zero-filled: indices 0, every slot SLOT_EMPTY.  The magic
	 * goes last, with release, so whoever sees it sees a whole header. */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, RING_MAGIC, memory_order_release);
	r->fd = fd;
	r->named = named;
	shmring__attach_new(r);
	*out = r;
	return 0;
}

static int create_ring(struct shmring **ring, const char *name, const struct shmring_config *cfg);

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
	if (!name) {
		int fd = memfd_create("shmring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return -errno;
		rc = init_file(fd, &g, false, ring);
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
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* shm_open's mode is filtered by the umask; the caller asked for mode. */
	if (fchmod(fd, mode) < 0 || (rc = init_file(fd, &g, true, ring)) != 0) {
		if (!rc)
			rc = -errno;
		close(fd);
		shm_unlink(path);
		return rc;
	}
	return 0;
}

/* Attach to fd (owned by us from here on).  patient: the file may still be
 * being made by shmring_create in another process; give it a moment. */
static int attach_owned_fd(struct shmring **ring, int fd, bool patient)
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
			/* shorter than a header: foreign, or a truncated ring */
			rc = hdr.magic == RING_MAGIC ? -EBADMSG : -EPROTO;
			goto fail;
		}
		bool blank = got == 0 || hdr.magic == 0;
		if (!patient || !blank || tries >= 1000) {
			rc = blank && got < (ssize_t)sizeof(hdr) ? -EBADMSG : -EPROTO;
			goto fail;
		}
		usleep(1000); /* creation in progress: up to ~1 s in all */
	}
	struct geometry g;
	rc = validate_header(&hdr, (uint64_t)st.st_size, &g);
	if (rc)
		goto fail;
	struct shmring *r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = map_ring(fd, &g, r);
	if (rc) {
		free(r);
		goto fail;
	}
	r->fd = fd;
	r->named = hdr.flags & RING_HDR_NAMED;
	r->redeliver = hdr.flags & RING_HDR_REDELIVER; /* redeliver hook */
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
	int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return attach_owned_fd(ring, fd, true);
}

int shmring_attach_fd(struct shmring **ring, int fd)
{
	if (!ring || fd < 0)
		return -EINVAL;
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (own < 0)
		return -errno;
	return attach_owned_fd(ring, own, false);
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
	shmring__attach_end(ring);
	munmap(ring->map, ring->map_len);
	close(ring->fd);
	free(ring);
}

int shmring_unlink(const char *name)
{
	char path[SHMRING_NAME_MAX + 2];
	int rc = shmring__shm_name(name, path);
	if (rc)
		return rc;
	return shm_unlink(path) < 0 ? -errno : 0;
}
