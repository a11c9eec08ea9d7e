/*
 * handle.h - one process's handle on a ring, and the library's internal
 * interfaces between its source files (private).
 */
#ifndef SHMRING_HANDLE_H
#define SHMRING_HANDLE_H

#include <stdbool.h>
#include <time.h>

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
	unsigned            spin;
	/* Producer-side hint: a free_tail value seen earlier (only ever behind
	 * the real one, since free_tail only grows).  Release/acquire so that a
	 * thread using another thread's hint inherits its happens-before. */
	_Atomic uint64_t    cached_free;
};

#define RING_DEFAULT_SPIN 2000u

/* Neighbouring slots' meta entries are spread a quarter of the array apart
 * (four entries share a cache line): otherwise a consumer releasing record i
 * and the producer publishing record i + 1 would fight over one line. */
static inline struct slot_meta *meta_at(const struct shmring *r, uint64_t pos)
{
	uint64_t s = pos & r->mask;
	return &r->meta[((s & 3) << r->quarter_shift) | (s >> 2)];
}

static inline unsigned char *data_at(const struct shmring *r, uint64_t pos)
{
	return r->data + ((pos & r->mask) << RING_SLOT_SHIFT);
}

/* deadline.c: an absolute CLOCK_MONOTONIC deadline for a timeout_ns. */
struct deadline {
	bool            forever;
	struct timespec at;
};
void deadline_init(struct deadline *dl, int64_t timeout_ns);
bool deadline_passed(const struct deadline *dl);

/* futex.c: shared (never private) futex operations on the mapping. */
int  futex_wait_until(_Atomic uint32_t *word, uint32_t expected, const struct timespec *abs);
void futex_wake_all(_Atomic uint32_t *word);

/* eventcount.c: sleep until ready() or a deadline; wake sleepers. */
typedef bool (*ready_fn)(struct shmring *r, const void *arg);
struct waiter {
	int64_t         timeout_ns;
	bool            started;   /* deadline computed (lazily: slow path only) */
	bool            spun;      /* spun once already: later waits sleep at once */
	struct deadline dl;
};
static inline void waiter_init(struct waiter *w, int64_t timeout_ns)
{
	w->timeout_ns = timeout_ns;
	w->started = false;
	w->spun = false;
}
/* After an attempt that would block: 0 = try again, -EAGAIN (timeout 0) or
 * -ETIMEDOUT = give up with that error. */
int  ec_block(struct shmring *r, struct eventcount *ec, ready_fn ready, const void *arg,
              struct waiter *w);
void ec_notify(struct shmring *r, struct eventcount *ec);

/* space.c: the producer side's room accounting. */
uint64_t ring_reclaim(struct shmring *r);
int      ring_claim(struct shmring *r, const uint32_t *slots, size_t n, size_t *taken,
                    uint64_t *pos, int64_t timeout_ns);

/* publish.c */
void ring_write_meta(struct shmring *r, uint64_t pos, uint32_t len, uint16_t flags);
void ring_publish(struct shmring *r, uint64_t pos);
void ring_publish_many(struct shmring *r, uint64_t pos, const uint32_t *slots, size_t n);
void ring_notify_consumers(struct shmring *r);

/* take.c: the consumer side. */
struct take {
	uint64_t pos;
	uint32_t len;  /* UINT32_MAX: a skip record (ring_take_run only) */
};
ssize_t ring_take(struct shmring *r, size_t cap, struct take *out, int64_t timeout_ns);
void    ring_release(struct shmring *r, uint64_t pos);
ssize_t ring_take_run(struct shmring *r, size_t cap, size_t max_recs, struct take *out,
                      size_t *nout, uint64_t *end, int64_t timeout_ns);
void    ring_notify_producers(struct shmring *r);

/* name.c */
int ring_shm_name(const char *name, char out[SHMRING_NAME_MAX + 2]);

#endif /* SHMRING_HANDLE_H */
