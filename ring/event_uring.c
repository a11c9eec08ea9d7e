/*
 * event_uring.c - shmring_event_fd_direct: a ring's readiness as an io_uring
 * fd, woken by the producer's FUTEX_WAKE itself (docs/poll-and-events.md,
 * "The direct event fd").
 *
 * Why.  The watcher of eventfd.c puts a thread between the ring and the
 * application: a put wakes the watcher, the watcher writes the eventfd, the
 * eventfd wakes the application: two wake-ups in series where a socket has
 * one (docs/perf.md, "The event fd path": p50 35-50 us against 18-22 us for
 * a socketpair on a quiet machine).  Linux 6.7 added IORING_OP_FUTEX_WAIT: an
 * io_uring request that sleeps on a futex word and completes when it is
 * woken.  Its completion makes the io_uring fd readable, so the application's
 * own epoll_wait is what the producer's wake-up wakes: one hop.
 *
 * The protocol is the eventcount's (eventcount.c, docs/design.md section 4),
 * with the io_uring request as the sleep:
 *
 *   arm   W1 key = register on not_empty
 *         W2 readable? -> unregister, submit a NOP (the fd fires at once)
 *         W3 else submit FUTEX_WAIT(epoch word, key)
 *   ack   reap the completions; W4 unregister if the epoch is still key;
 *         arm again unless a FUTEX_WAIT is still in flight (then a wake
 *         still completes it: the registration stands, or N3 cleared it,
 *         which means a wake-up is on its way)
 *
 * The recheck.  No sleep of the library lasts longer than RECHECK_NS (50 ms):
 * a producer killed between its publish and its wake, or one that died (the
 * end of stream only a sweep can tell), is seen within it.  A timeout on the
 * request itself would make the fd fire 20 times a second on an idle ring, so
 * a thread of ours does the recheck instead, off the fast path: every 50 ms,
 * while a FUTEX_WAIT is in flight, it sweeps (rate-limited, reap.c) and, if
 * the ring is readable, wakes the word as a producer would, which completes
 * the request (other sleepers on the word wake, look, and sleep again, as
 * for eventfd.c's stop_watcher).  It never touches the io_uring.  In a blind
 * process (fence.h: its membarrier failed) it looks every 1 ms instead,
 * as a blind sleeper's slices are (shmring__ec_recheck_ns).
 *
 * The kernel checks the word against key when the request starts: an epoch
 * that moved between W1 and W3 completes it at once (-EAGAIN), never a lost
 * wake.  Non-private futex (no FUTEX2_PRIVATE): the word is in a shared
 * mapping and the waker another process, as futex.c says.
 *
 * The cost of one hop: a completion is posted by task work of the thread
 * that submitted the request, i.e. the last thread that called
 * shmring_event_ack (or made the fd).  If that thread sleeps in epoll_wait,
 * poll or select, the kernel interrupts the call to run it: the call returns
 * -1/EINTR once, as for a signal, and the fd is readable when it is called
 * again (measured: 12 600 EINTR in 20 000 ping-pong waits).  Event loops
 * retry EINTR (Python since PEP 475, libuv, libevent, glib, mio); a plain
 * loop must too.  That is why this is a function of its own and
 * shmring_event_fd keeps the watcher.
 *
 * Idle: the recheck thread wakes 20 times a second, as the watcher does; the
 * fd stays quiet.
 *
 * fork(): the child inherits the fd, not the requests' thread.  As with the
 * watcher, the struct remembers its pid, and the child's first call makes
 * its own io_uring (a new fd number), closing its copy of the parent's.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "queue.h"
#include "shmring_poll.h"

#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51 /* Linux 6.7; Debian 12's headers are 6.1 */
#endif
#define EVU_FUTEX2_SIZE_U32 0x02u /* futex2 flags: 32-bit word, shared */
#define EVU_ENTRIES 4u           /* one request in flight at a time */
#define EVU_MASK_ANY 0xffffffffu /* FUTEX_BITSET_MATCH_ANY, for a 32-bit word */

enum { EVU_FUTEX = 1, EVU_NOP }; /* user_data */

struct ring_event_uring {
	struct ring_evbase b;       /* the io_uring fd, the pid that made it, stale */
	struct shmring *ring;
	pthread_mutex_t mu;         /* one submitter at a time; the fields below */
	void           *rings;      /* SQ and CQ rings (one mapping) */
	size_t          rings_len;
	struct io_uring_sqe *sqes;
	size_t          sqes_len;
	unsigned       *sq_tail, *sq_mask, *sq_array;
	unsigned       *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
	bool            waiting;    /* a FUTEX_WAIT or NOP is in flight */
	bool            registered; /* our W1 on not_empty stands */
	uint32_t        key;
	pthread_t       thread;     /* the recheck */
	pthread_cond_t  cv;         /* stop: under mu */
	bool            stop;
	bool            running;    /* the thread has started */
};

static int uring_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int uring_enter(int fd, unsigned submit)
{
	long rc;
	while ((rc = syscall(__NR_io_uring_enter, fd, submit, 0, 0, NULL, 0)) < 0 && errno == EINTR)
		;
	return rc < 0 ? -errno : 0;
}

/* Does this kernel run IORING_OP_FUTEX_WAIT (6.7+)? */
static bool futex_wait_supported(int fd)
{
	size_t len = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
	struct io_uring_probe *pr = calloc(1, len);
	if (!pr)
		return false;
	bool ok = syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, pr, 256) == 0 &&
	          pr->last_op >= IORING_OP_FUTEX_WAIT &&
	          (pr->ops[IORING_OP_FUTEX_WAIT].flags & IO_URING_OP_SUPPORTED);
	free(pr);
	return ok;
}

static void unmap(struct ring_event_uring *e)
{
	if (e->sqes && e->sqes != MAP_FAILED)
		munmap(e->sqes, e->sqes_len);
	if (e->rings && e->rings != MAP_FAILED)
		munmap(e->rings, e->rings_len);
	e->sqes = NULL;
	e->rings = NULL;
}

static int map_rings(struct ring_event_uring *e, const struct io_uring_params *p)
{
	size_t sq = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	size_t cq = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	if (!(p->features & IORING_FEAT_SINGLE_MMAP))
		return -EOPNOTSUPP; /* 5.4 and older: no FUTEX_WAIT there anyway */
	e->rings_len = sq > cq ? sq : cq;
	e->rings = mmap(NULL, e->rings_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	                e->b.fd, IORING_OFF_SQ_RING);
	e->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	e->sqes = mmap(NULL, e->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	               e->b.fd, IORING_OFF_SQES);
	if (e->rings == MAP_FAILED || e->sqes == MAP_FAILED) {
		int err = -errno;
		unmap(e);
		return err;
	}
	char *b = e->rings;
	e->sq_tail = (unsigned *)(b + p->sq_off.tail);
	e->sq_mask = (unsigned *)(b + p->sq_off.ring_mask);
	e->sq_array = (unsigned *)(b + p->sq_off.array);
	e->cq_head = (unsigned *)(b + p->cq_off.head);
	e->cq_tail = (unsigned *)(b + p->cq_off.tail);
	e->cq_mask = (unsigned *)(b + p->cq_off.ring_mask);
	e->cqes = (struct io_uring_cqe *)(b + p->cq_off.cqes);
	return 0;
}

/* The next submission entry, zeroed (we alone submit, under mu). */
static struct io_uring_sqe *sqe_next(struct ring_event_uring *e, unsigned *tail)
{
	unsigned i = *tail & *e->sq_mask;
	struct io_uring_sqe *s = &e->sqes[i];
	memset(s, 0, sizeof *s);
	e->sq_array[i] = i;
	(*tail)++;
	return s;
}

/* Under mu, nothing in flight: W1-W3 of the file comment. */
static int arm(struct ring_event_uring *e)
{
	struct shmring *r = e->ring;
	struct eventcount *ec = &r->hdr->not_empty;
	unsigned tail = *e->sq_tail; /* only we write it */
	unsigned n;
	e->key = shmring__ec_register(ec, r->fenced);                      /* W1 */
	e->registered = true;
	if (shmring__readable(r)) {                                        /* W2 */
		shmring__ec_unregister(ec, e->key);
		e->registered = false;
		struct io_uring_sqe *s = sqe_next(e, &tail);
		s->opcode = IORING_OP_NOP;
		s->user_data = EVU_NOP;
		n = 1;
	} else {                                                           /* W3 */
		struct io_uring_sqe *s = sqe_next(e, &tail);
		s->opcode = IORING_OP_FUTEX_WAIT;
		s->fd = (int)EVU_FUTEX2_SIZE_U32;
		s->addr = (uint64_t)(uintptr_t)ec_futex_word(ec);
		s->addr2 = e->key;          /* the value the word must still hold */
		s->addr3 = EVU_MASK_ANY;
		s->user_data = EVU_FUTEX;
		n = 1;
		atomic_fetch_add_explicit(&r->hdr->futex_waits, 1, memory_order_relaxed);
	}
	/* Release: the entries are written before the kernel reads the tail. */
	__atomic_store_n(e->sq_tail, tail, __ATOMIC_RELEASE);
	int rc = uring_enter(e->b.fd, n);
	if (rc) {
		if (e->registered)
			shmring__ec_unregister(ec, e->key);
		e->registered = false;
		return rc;
	}
	e->waiting = true;
	return 0;
}

/* Under mu: take every completion; true if the request in flight ended. */
static bool reap(struct ring_event_uring *e)
{
	unsigned head = *e->cq_head;
	unsigned tail = __atomic_load_n(e->cq_tail, __ATOMIC_ACQUIRE); /* the kernel's cqes */
	__atomic_store_n(e->cq_head, tail, __ATOMIC_RELEASE); /* slots back to the kernel */
	return head != tail;
}

/* The recheck of the file comment. */
static void *recheck(void *arg)
{
	struct ring_event_uring *e = arg;
	struct shmring *r = e->ring;
	pthread_mutex_lock(&e->mu);
	e->running = true;
	pthread_cond_broadcast(&e->cv);
	while (!e->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += shmring__ec_recheck_ns(r->fenced);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!e->stop && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT)
			;
		/* A FUTEX_WAIT in flight with no completion posted yet (the CQ
		 * read, not consumed: that is ack's).  Its epoch may have moved:
		 * a wake-up on its way then, or a producer killed between N3 and
		 * N4, whose wake never comes and after which no put finds a
		 * waiter to wake.  Trusting the moved epoch, the fd stayed
		 * unreadable for good with a record waiting (a review found it,
		 * 2026-12-06; eventfd_direct::producer_killed_before_its_wake).
		 * A wake of ours that meets the other on its way is a spurious
		 * wake-up of the word's sleepers, which look and sleep again. */
		if (e->stop || !e->waiting || !e->registered ||
		    *e->cq_head != __atomic_load_n(e->cq_tail, __ATOMIC_ACQUIRE))
			continue;
		pthread_mutex_unlock(&e->mu);
		shmring__maybe_reap(r);
		if (shmring__readable(r)) {
			atomic_fetch_add_explicit(&r->hdr->futex_wakes, 1, memory_order_relaxed);
			shmring__futex_wake_all(ec_futex_word(&r->hdr->not_empty));
		}
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

static void destroy_own(struct ring_event_uring *e);

static int make_uring(struct shmring *r, struct ring_event_uring **out)
{
	struct ring_event_uring *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_COOP_TASKRUN; /* no IPI to a running thread: its next entry does it */
	e->b.fd = uring_setup(EVU_ENTRIES, &p);
	if (e->b.fd < 0) {
		/* ENOSYS (seccomp, old kernel), EPERM (io_uring_disabled),
		 * EINVAL (no COOP_TASKRUN: older than 5.19) */
		int err = errno;
		free(e);
		return err == ENOMEM || err == EMFILE || err == ENFILE ? -err : -EOPNOTSUPP;
	}
	e->b.pid = getpid();
	e->ring = r;
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* (An io_uring fd is always close-on-exec.) */
	int rc = futex_wait_supported(e->b.fd) ? map_rings(e, &p) : -EOPNOTSUPP;
	if (!rc)
		rc = shmring__quiet_thread(&e->thread, recheck, e, &e->mu, &e->cv, &e->running);
	if (rc) {
		destroy_own(e);
		return rc;
	}
	pthread_mutex_lock(&e->mu);
	rc = arm(e); /* it starts armed */
	pthread_mutex_unlock(&e->mu);
	if (rc) {
		destroy_own(e);
		return rc;
	}
	*out = e;
	return 0;
}

static void free_stale(struct ring_evbase *s)
{
	while (s) {
		struct ring_evbase *next = s->stale;
		unmap((struct ring_event_uring *)s);   /* our copy of the parent's mappings */
		free(s);    /* its fd is closed; its mutex is the parent's */
		s = next;
	}
}

static void destroy_own(struct ring_event_uring *e)
{
	if (e->running) {
		pthread_mutex_lock(&e->mu);
		e->stop = true;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
	}
	if (e->registered)
		shmring__ec_unregister(&e->ring->hdr->not_empty, e->key);
	/* The FUTEX_WAIT in flight, cancelled before the close: the close
	 * cancels it only if the io_uring dies with it, and a fork child
	 * holds a copy of the fd until its first call replaces it.  Left, a
	 * later wake of the word posted task work to the thread that armed
	 * it: its epoll_wait or poll returned EINTR after the detach (a
	 * review found it, 2026-12-06;
	 * eventfd_direct::detach_after_fork_leaves_no_request_behind).
	 * Synchronous (Linux 6.0, before FUTEX_WAIT's 6.7); an error is
	 * nothing in flight. */
	if (e->waiting) {
		struct io_uring_sync_cancel_reg cancel;
		memset(&cancel, 0, sizeof cancel);
		cancel.addr = EVU_FUTEX;
		cancel.timeout.tv_sec = -1;
		cancel.timeout.tv_nsec = -1;
		(void)syscall(__NR_io_uring_register, e->b.fd, IORING_REGISTER_SYNC_CANCEL, &cancel, 1);
	}
	unmap(e);
	close(e->b.fd);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free_stale(e->b.stale);
	free(e);
}

static int make_base(struct shmring *r, struct ring_evbase **out)
{
	struct ring_event_uring *e = NULL;
	int rc = make_uring(r, &e);
	*out = rc ? NULL : &e->b;
	return rc;
}

static void destroy_base(struct ring_evbase *b)
{
	destroy_own((struct ring_event_uring *)b); /* b is its first member */
}

/* This process's direct event fd for r (see shmring__ev_current). */
static struct ring_event_uring *current(struct shmring *r, bool create, int *err)
{
	return (struct ring_event_uring *)shmring__ev_current(r, &r->evu, create, err, make_base,
	                                                      destroy_base);
}

int shmring_event_fd_direct(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	pthread_mutex_lock(&ring->ev_lock); /* one kind per handle: handle.h */
	int rc;
	if (__atomic_load_n(&ring->evfd, __ATOMIC_ACQUIRE)) {
		rc = -EBUSY; /* this handle's event fd is a watcher's */
	} else {
		int err = 0;
		struct ring_event_uring *e = current(ring, true, &err);
		rc = e ? e->b.fd : err;
	}
	pthread_mutex_unlock(&ring->ev_lock);
	return rc;
}

int shmring__event_uring_fd(struct shmring *r)
{
	int err = 0;
	struct ring_event_uring *e = current(r, true, &err);
	return e ? e->b.fd : err;
}

int shmring__event_uring_ack(struct shmring *r)
{
	int err = 0;
	struct ring_event_uring *e = current(r, true, &err);
	if (!e)
		return err;
	pthread_mutex_lock(&e->mu);
	int rc = 0;
	if (reap(e))
		e->waiting = false;
	if (!e->waiting) {
		if (e->registered)
			shmring__ec_unregister(&r->hdr->not_empty, e->key);   /* W4 */
		e->registered = false;
		rc = arm(e);
	}
	pthread_mutex_unlock(&e->mu);
	return rc;
}

void shmring__event_uring_destroy(struct shmring *r)
{
	struct ring_event_uring *e = (struct ring_event_uring *)__atomic_exchange_n(&r->evu, NULL,
	                                                                            __ATOMIC_ACQ_REL);
	if (!e)
		return;
	if (e->b.pid == getpid()) {
		destroy_own(e);
		return;
	}
	if (e->b.fd >= 0)
		close(e->b.fd);
	free_stale(&e->b);
}
