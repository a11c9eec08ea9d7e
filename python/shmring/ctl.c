/*
 * ctl.c - a queue's control page (struct qctl, pyshmring.h) and its chain of
 * rings: which generation puts go to and gets come from, growing the chain
 * when the tail ring is full, moving on when the head ring is drained.  The
 * protocol and why it keeps FIFO order per producer: pyshmring.h, "The
 * chain".  Every wait here is the library's; this file only opens, makes,
 * closes and unlinks rings and moves two counters by CAS.
 */
#include "pyshmring.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is the control page one of ours, and consistent?  0 or -EBADMSG. */
int ctl_check(const struct qctl *c, off_t size)
{
	if (size != CTL_SIZE || memcmp(c->magic, CTL_MAGIC, 8) != 0 || c->version != 2)
		return -EBADMSG;
	if (c->kind > QK_JOINABLE || c->maxsize > (uint64_t)INT64_MAX ||
	    memchr(c->stem, 0, CTL_STEM) == NULL || c->stem[0] == 0)
		return -EBADMSG;
	if (c->maxsize && shmring_sem_max(&c->room) != (int64_t)c->maxsize)
		return -EBADMSG;
	return 0;
}

/* Fill a fresh control file (fd, size 0) and leave it CTL_SIZE long.  The
 * storage is allocated first (posix_fallocate): a full /dev/shm is -ENOSPC
 * here, never a SIGBUS when the page is touched. */
int ctl_init(int fd, uint32_t kind, int64_t maxsize, size_t capacity, size_t max_record,
             unsigned mode, unsigned max_attach, const char *stem, int side_segments,
             unsigned ring_flags)
{
	if (strlen(stem) >= CTL_STEM || !stem[0])
		return -ENAMETOOLONG;
	int rc = posix_fallocate(fd, 0, CTL_SIZE);
	if (rc)
		return -rc;
	struct qctl *c = mmap(NULL, CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c == MAP_FAILED)
		return -errno;
	memset(c, 0, CTL_SIZE);
	c->version = 2;
	c->kind = kind;
	c->maxsize = (uint64_t)maxsize;
	c->capacity = capacity;
	c->max_record = max_record;
	c->mode = mode;
	c->max_attach = max_attach;
	c->no_side_segments = !side_segments;
	c->ring_flags = ring_flags & SHMRING_LIGHT_PUBLISH;
	strcpy(c->stem, stem);
	if (maxsize > 0)
		shmring_sem_init(&c->room, maxsize, maxsize);
	shmring_latch_init(&c->tasks, 0);
	atomic_init(&c->head, 0);
	atomic_init(&c->tail, 0);
	atomic_init(&c->shut, 0);
	/* magic last: readers check it (the file reaches them after this
	 * process has written it, through fd passing or the ring's name) */
	memcpy(c->magic, CTL_MAGIC, 8);
	munmap(c, CTL_SIZE);
	return 0;
}

/* Allocate a fresh ring's storage now (posix_fallocate on its fd): a full
 * /dev/shm is -ENOSPC here, at the put or constructor that can report it,
 * never a SIGBUS when a page is first written. */
int ring_reserve(struct shmring *r)
{
	struct stat st;
	if (fstat(shmring_fd(r), &st) < 0)
		return -errno;
	int rc = posix_fallocate(shmring_fd(r), 0, st.st_size);
	return rc == EOPNOTSUPP ? 0 : -rc;
}

/* ------------------------------------------------------------ generations */

static struct gen *gen_find(RingObject *ring, uint64_t g)
{
	for (struct gen *x = ring->gens; x; x = x->next)
		if (x->g == g)
			return x;
	return NULL;
}

static void gen_name(const RingObject *ring, uint64_t g, char *buf, size_t n)
{
	snprintf(buf, n, "%s%llu", ring->ctl->stem, (unsigned long long)g);
}

/* A generation's file must be as trustworthy as generation 0's: same owner,
 * no write permission that generation 0 does not give. */
static int gen_trusted(RingObject *ring, struct shmring *r)
{
	struct stat st0, st;
	if (fstat(shmring_fd(ring->r), &st0) < 0 || fstat(shmring_fd(r), &st) < 0)
		return -errno;
	if (st.st_uid != st0.st_uid || (st.st_mode & ~st0.st_mode & 0022))
		return -EPERM;
	return 0;
}

static struct gen *gen_add(RingObject *ring, uint64_t g, struct shmring *r)
{
	struct gen *x = PyMem_RawCalloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->g = g;
	x->r = r;
	x->next = ring->gens;
	ring->gens = x;
	return x;
}

/* Attach generation g (> 0) by name: 0, or a negative errno (-ENOENT once
 * it has been drained and unlinked). */
static int gen_open(RingObject *ring, uint64_t g, struct gen **out)
{
	char name[CTL_STEM + 24];
	gen_name(ring, g, name, sizeof name);
	struct shmring *r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_open(&r, name);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return rc;
	if ((rc = gen_trusted(ring, r)) < 0) {
		shmring_detach(r);
		return rc;
	}
	if (!(*out = gen_add(ring, g, r))) {
		shmring_detach(r);
		return -ENOMEM;
	}
	return 0;
}

/* Drop the generations before head that no call is using. */
static void gens_trim(RingObject *ring, uint64_t head)
{
	struct gen **pp = &ring->gens;
	while (*pp) {
		struct gen *x = *pp;
		if (x->g != 0 && x->g < head && x->pins == 0) {
			*pp = x->next;
			shmring_detach(x->r);
			PyMem_RawFree(x);
		} else {
			pp = &x->next;
		}
	}
}

static struct gen *gen_pinned(RingObject *ring, _Atomic uint64_t *which)
{
	for (int tries = 0;; tries++) {
		uint64_t g = atomic_load_explicit(which, memory_order_acquire);
		struct gen *x = gen_find(ring, g);
		if (!x) {
			int rc = gen_open(ring, g, &x);
			if (rc == -ENOENT && tries < 1000 &&
			    atomic_load_explicit(which, memory_order_acquire) != g)
				continue;   /* drained and unlinked meanwhile: look again */
			if (rc < 0) {
				set_errno_error(rc);
				return NULL;
			}
		}
		x->pins++;
		return x;
	}
}

struct gen *gen_tail(RingObject *ring)
{
	if (!ring->ctl->stem[0] || atomic_load_explicit(&ring->ctl->tail, memory_order_relaxed) == 0) {
		struct gen *x = ring->gens;   /* generation 0 is always in the list */
		while (x->g != 0)
			x = x->next;
		x->pins++;
		return x;
	}
	uint64_t head = atomic_load_explicit(&ring->ctl->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&ring->ctl->tail, memory_order_acquire);
	/* a producer far ahead keeps only the head and the tail attached */
	struct gen **pp = &ring->gens;
	while (*pp) {
		struct gen *x = *pp;
		if (x->g != 0 && x->g != head && x->g < tail && x->pins == 0) {
			*pp = x->next;
			shmring_detach(x->r);
			PyMem_RawFree(x);
		} else {
			pp = &x->next;
		}
	}
	return gen_pinned(ring, &ring->ctl->tail);
}

struct gen *gen_head(RingObject *ring)
{
	uint64_t head = atomic_load_explicit(&ring->ctl->head, memory_order_acquire);
	if (head > 0)
		gens_trim(ring, head);
	return gen_pinned(ring, &ring->ctl->head);
}

struct gen *gen_at(RingObject *ring, uint64_t g)
{
	struct gen *x = gen_find(ring, g);
	if (!x && gen_open(ring, g, &x) < 0)
		return NULL;
	x->pins++;
	return x;
}

void gen_unpin(struct gen *g)
{
	g->pins--;
}

int gen_grow_read(RingObject *ring, struct gen *g)
{
	struct qctl *c = ring->ctl;
	uint64_t t = g->g;
	struct gen *x = gen_find(ring, t + 1);
	if (!x) {
		char name[CTL_STEM + 24];
		gen_name(ring, t + 1, name, sizeof name);
		struct shmring_config cfg = { .capacity = c->capacity,
		                              .max_record = c->max_record,
		                              .mode = c->mode,
		                              .max_attach = c->max_attach,
		                              .flags = c->ring_flags & SHMRING_LIGHT_PUBLISH };
		struct shmring *r;
		int rc;
		Py_BEGIN_ALLOW_THREADS
		rc = shmring_create(&r, name, &cfg);
		Py_END_ALLOW_THREADS
		int made = rc == 0;
		if (rc == -EEXIST) {  /* another producer made it (and may have died) */
			rc = gen_open(ring, t + 1, &x);
		} else if (rc == 0) {
			if ((rc = ring_reserve(r)) == 0 && !(x = gen_add(ring, t + 1, r)))
				rc = -ENOMEM;
			if (rc < 0) {
				shmring_detach(r);
				shmring_unlink(name);
			}
		}
		/* We read tail == t before the create, and may have slept since:
		 * meanwhile another producer can have made t + 1, the chain grown
		 * past it and a consumer drained it, moved head to t + 2 and
		 * unlinked its name.  Then our create made a second ring of that
		 * name that nobody would ever use or unlink (the leak that
		 * test_traps' rounds and test_stale_grower_leaves_no_ring show),
		 * or our open found no name (FileNotFoundError from a put).  head
		 * is read after the create: the kernel serializes the create and
		 * the unlink of one name (the directory's lock), and that consumer
		 * moved head before its unlink, so a create that succeeded after
		 * the unlink sees head > t + 1; one that sees head <= t + 1 made
		 * the first ring of that name, the real t + 1.  Past head,
		 * generation t + 1 is finished: what we made goes (no one opens a
		 * generation below head by name again, so unlinking it harms no
		 * one), tail is already past t + 1, ring t was drained so is
		 * closed, and the caller re-reads tail. */
		if (atomic_load_explicit(&c->head, memory_order_seq_cst) > t + 1) {
			if (made && rc == 0)
				shmring_unlink(name);
			if (x)
				gens_trim(ring, t + 2);
			return 0;
		}
		if (rc < 0 || !x)
			return rc < 0 ? rc : -ENOMEM;
	}
	uint64_t expect = t;
	atomic_compare_exchange_strong_explicit(&c->tail, &expect, t + 1,
	                                        memory_order_acq_rel, memory_order_acquire);
	if (atomic_load_explicit(&c->shut, memory_order_seq_cst))
		shmring_close(x->r);   /* shutdown() raced with us: close the new tail too */
	return 0;
}

int gen_grow(RingObject *ring, struct gen *g)
{
	struct qctl *c = ring->ctl;
	if (atomic_load_explicit(&c->tail, memory_order_acquire) == g->g &&
	    !atomic_load_explicit(&c->shut, memory_order_acquire)) {
		int rc = gen_grow_read(ring, g);
		if (rc < 0)
			return rc;
	}
	/* whoever moved tail, the old ring takes no more puts (idempotent) */
	shmring_close(g->r);
	return 0;
}

int gen_advance(RingObject *ring, struct gen *g)
{
	struct qctl *c = ring->ctl;
	uint64_t h = g->g;
	if (atomic_load_explicit(&c->tail, memory_order_acquire) <= h)
		return 0;   /* the last generation: closed by shutdown() */
	uint64_t expect = h;
	if (atomic_compare_exchange_strong_explicit(&c->head, &expect, h + 1, memory_order_acq_rel,
	                                            memory_order_acquire) && h > 0) {
		char name[CTL_STEM + 24];
		gen_name(ring, h, name, sizeof name);
		shmring_unlink(name);   /* drained: nobody needs to find it again */
	}
	return 1;
}

void gens_free(RingObject *ring)
{
	while (ring->gens) {
		struct gen *x = ring->gens;
		ring->gens = x->next;
		if (x->r && x->g != 0)
			shmring_detach(x->r);
		PyMem_RawFree(x);
	}
}

/* unlink(): the names of the generations still in use go with the queue's. */
void gens_unlink_names(RingObject *ring)
{
	struct qctl *c = ring->ctl;
	uint64_t h = atomic_load(&c->head), t = atomic_load(&c->tail);
	for (uint64_t g = h ? h : 1; g <= t; g++) {
		char name[CTL_STEM + 24];
		gen_name(ring, g, name, sizeof name);
		shmring_unlink(name);
	}
}

void gen_rearm(RingObject *ring)
{
	if (!ring->evfd)
		return;
	struct gen *g = gen_head(ring);
	if (!g) {
		PyErr_Clear();
		return;
	}
	shmring_event_ack(g->r);
	gen_unpin(g);
}

/* ---------------------------------------------------------------- holders */
/* A process that holds the queue's fds lists itself here so that another
 * process can open them through /proc/<pid>/fd/<n> (__init__.py, pickling
 * an anonymous queue).  A slot is taken by CAS on pid, its fds written, and
 * then pid published with a release store; a slot of a dead process is taken
 * over. */
int ctl_register_holder(RingObject *ring)
{
	if (ring->holder >= 0 && ring->pid == getpid())
		return 0;
	int32_t me = (int32_t)getpid();
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < CTL_HOLDERS; i++) {
			struct ctl_holder *h = &ring->ctl->holders[i];
			int32_t p = atomic_load_explicit(&h->pid, memory_order_acquire);
			if (pass == 0 ? p != 0 : (p == 0 || p == me || kill(p < 0 ? -p : p, 0) == 0 ||
			                          errno != ESRCH))
				continue;
			if (!atomic_compare_exchange_strong_explicit(&h->pid, &p, -me,
			                                             memory_order_acq_rel,
			                                             memory_order_relaxed))
				continue;
			h->ring_fd = shmring_fd(ring->r);
			h->ctl_fd = ring->ctl_fd;
			atomic_store_explicit(&h->pid, me, memory_order_release);
			ring->holder = i;
			ring->pid = me;
			return 0;
		}
	}
	atomic_store(&ring->ctl->holders_overflow, 1);
	return -EUSERS;
}

void ctl_unregister_holder(RingObject *ring)
{
	if (ring->holder < 0 || ring->pid != getpid())
		return;
	int32_t me = (int32_t)ring->pid;
	atomic_compare_exchange_strong(&ring->ctl->holders[ring->holder].pid, &me, 0);
	ring->holder = -1;
}

/* How many listed processes are alive (a zombie counts until reaped). */
int ctl_live_holders(RingObject *ring)
{
	int n = 0;
	for (int i = 0; i < CTL_HOLDERS; i++) {
		int32_t p = atomic_load_explicit(&ring->ctl->holders[i].pid, memory_order_acquire);
		if (p != 0 && (kill(p < 0 ? -p : p, 0) == 0 || errno != ESRCH))
			n++;
	}
	return n;
}
