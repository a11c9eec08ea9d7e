/*
 * eventfd.c - shmring_event_fd: a ring's readiness as an eventfd, for
 * epoll/poll/select (docs/poll-and-events.md).
 *
 * One watcher thread per handle (made on the first shmring_event_fd call)
 * alternates between two states:
 *
 *   armed     it waits for the ring to become readable exactly as a consumer
 *             does: shmring__ec_block on not_empty, re-checking with shmring__readable.
 *             When it is, it writes 1 to the eventfd and disarms.
 *   disarmed  it waits on a process-local condition variable, registered on
 *             no eventcount: producers see no waiter and pay nothing.
 *
 * shmring_event_ack reads the eventfd (consuming its readiness) and re-arms
 * the watcher.  The watcher re-checks the ring as soon as it is armed, so
 * however ack and the application's draining interleave with producers, a
 * record that is in the ring after an ack makes the fd readable again: no
 * event is lost, at worst one is spurious (the drain finds nothing).
 *
 * Sleeps are bounded (one slice of shmring__ec_block, 50 ms), so the watcher notices
 * the stop flag even if the wake that destroy sends misses it; after each one
 * it sweeps the ring for dead peers as any sleeping consumer does, so a
 * producer that died makes the fd readable (end of stream).
 *
 * fork(): the child has the handle but not the watcher thread (only the
 * forking thread survives fork), and shares the parent's eventfd.  The struct
 * remembers the pid that made it; in any other process shmring_event_fd and
 * shmring_event_ack make a fresh eventfd and watcher for the child's handle
 * (a new fd number), closing the child's copy of the inherited fd, and
 * shmring__eventfd_destroy there only closes that copy and frees memory: it never
 * touches the parent's thread, mutex or condition variable.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "queue.h"
#include "shmring_poll.h"

struct ring_eventfd {
	struct ring_evbase b;     /* fd, the pid that made it (and its thread), stale */
	struct shmring *ring;
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            armed;    /* under mu */
	bool            running;  /* under mu: the thread has started */
	_Atomic bool    stop;
};

int shmring__quiet_thread(pthread_t *t, void *(*fn)(void *), void *arg, pthread_mutex_t *mu,
                          pthread_cond_t *cv, const bool *running)
{
	/* The thread takes no signals: they are the application's, for its
	 * own threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	/* Return only once the thread runs: its start-up (the C library's, a
	 * sanitizer's) may take allocator locks, and a fork() by the caller in
	 * that window would leave them held in the child. */
	pthread_mutex_lock(mu);
	while (!*running)
		pthread_cond_wait(cv, mu);
	pthread_mutex_unlock(mu);
	return 0;
}

/* Wait until the ring is readable or we are told to stop. */
static void wait_readable(struct ring_eventfd *e)
{
	struct shmring *r = e->ring;
	struct waiter w;
	ring_waiter_init(r, &w, -1); /* shmring__ec_block sleeps one slice at most per call */
	while (!atomic_load_explicit(&e->stop, memory_order_acquire) && !shmring__readable(r)) {
		int rc = shmring__ec_block(&r->hdr->not_empty, shmring__readable, r, &w);
		ring_sweep_after_block(r, rc, &w);
	}
}

static void *watcher(void *arg)
{
	struct ring_eventfd *e = arg;
	pthread_mutex_lock(&e->mu);
	e->running = true;
	pthread_cond_broadcast(&e->cv);
	for (;;) {
		while (!e->armed && !atomic_load_explicit(&e->stop, memory_order_acquire))
			pthread_cond_wait(&e->cv, &e->mu);
		if (atomic_load_explicit(&e->stop, memory_order_acquire))
			break;
		pthread_mutex_unlock(&e->mu);
		wait_readable(e);
		pthread_mutex_lock(&e->mu);
		if (atomic_load_explicit(&e->stop, memory_order_acquire))
			break;
		/* Disarm, then signal: an ack from here on re-arms us and we
		 * look at the ring again. */
		e->armed = false;
		uint64_t one = 1;
		while (write(e->b.fd, &one, sizeof one) < 0 && errno == EINTR)
			;
		/* EAGAIN (counter at its maximum) cannot lose anything: the
		 * fd is readable already. */
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* Stop and join our watcher (this process's own structure only). */
static void stop_watcher(struct ring_eventfd *e)
{
	atomic_store_explicit(&e->stop, true, memory_order_release);
	pthread_mutex_lock(&e->mu);
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	/* If it is asleep on the ring's futex, wake it now rather than at the
	 * end of its sleep slice.  Without bumping the epoch: any other
	 * sleeper on this word wakes too, re-checks and sleeps again. */
	struct ring_header *hdr = e->ring->hdr;
	if (EC_WAITERS(atomic_load_explicit(&hdr->not_empty.word, memory_order_relaxed))) {
		atomic_fetch_add_explicit(&hdr->futex_wakes, 1, memory_order_relaxed);
		shmring__futex_wake_all(ec_futex_word(&hdr->not_empty));
	}
	pthread_join(e->thread, NULL);
}

static void free_stale(struct ring_evbase *s)
{
	while (s) {
		struct ring_evbase *next = s->stale;
		free(s); /* its fd is closed; its mutex belongs to another process */
		s = next;
	}
}

static int make_eventfd(struct shmring *r, struct ring_eventfd **out)
{
	struct ring_eventfd *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->b.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->b.fd < 0) {
		int err = -errno;
		free(e);
		return err;
	}
	e->b.pid = getpid();
	e->ring = r;
	e->armed = true; /* the fd starts armed */
	atomic_init(&e->stop, false);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);

	int rc = shmring__quiet_thread(&e->thread, watcher, e, &e->mu, &e->cv, &e->running);
	if (rc) {
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
		close(e->b.fd);
		free(e);
		return rc;
	}
	*out = e;
	return 0;
}

static void destroy_own(struct ring_eventfd *e)
{
	stop_watcher(e);
	close(e->b.fd);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free_stale(e->b.stale);
	free(e);
}

struct ring_evbase *shmring__ev_current(struct shmring *r, struct ring_evbase **slot, bool create,
                                        int *err,
                                        int (*make)(struct shmring *, struct ring_evbase **),
                                        void (*destroy)(struct ring_evbase *))
{
	pid_t self = getpid();
	struct ring_evbase *e = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	for (;;) {
		if (e && e->pid == self)
			return e;
		if (!e && !create) {
			*err = -EINVAL;
			return NULL;
		}
		struct ring_evbase *mine = NULL;
		int rc = make(r, &mine);
		if (rc || !mine) {
			*err = rc ? rc : -ENOMEM;
			return NULL;
		}
		mine->stale = e;
		if (__atomic_compare_exchange_n(slot, &e, mine, false, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE)) {
			if (mine->stale) {
				/* Our copy of the parent's fd: the parent
				 * keeps its own. */
				close(mine->stale->fd);
				mine->stale->fd = -1;
			}
			return mine;
		}
		/* Another thread got there first: use its (e now holds it). */
		mine->stale = NULL;
		destroy(mine);
	}
}

static int make_base(struct shmring *r, struct ring_evbase **out)
{
	struct ring_eventfd *e = NULL;
	int rc = make_eventfd(r, &e);
	*out = rc ? NULL : &e->b;
	return rc;
}

static void destroy_base(struct ring_evbase *b)
{
	destroy_own((struct ring_eventfd *)b); /* b is its first member */
}

/* This process's watcher for r (see shmring__ev_current). */
static struct ring_eventfd *current(struct shmring *r, bool create, int *err)
{
	return (struct ring_eventfd *)shmring__ev_current(r, &r->evfd, create, err, make_base,
	                                                  destroy_base);
}

int shmring_event_fd(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	pthread_mutex_lock(&ring->ev_lock);
	int rc;
	if (__atomic_load_n(&ring->evu, __ATOMIC_ACQUIRE)) { /* made direct */
		rc = shmring__event_uring_fd(ring);
	} else {
		int err = 0;
		struct ring_eventfd *e = current(ring, true, &err);
		rc = e ? e->b.fd : err;
	}
	pthread_mutex_unlock(&ring->ev_lock);
	return rc;
}

int shmring_event_ack(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	if (__atomic_load_n(&ring->evu, __ATOMIC_ACQUIRE))  /* made direct */
		return shmring__event_uring_ack(ring);
	int err = 0;
	/* Made here only in a forked child (an inherited one): without any,
	 * there is nothing to acknowledge. */
	struct ring_evbase *b = __atomic_load_n(&ring->evfd, __ATOMIC_ACQUIRE);
	struct ring_eventfd *e = current(ring, b != NULL, &err);
	if (!e)
		return err;
	uint64_t v;
	while (read(e->b.fd, &v, sizeof v) < 0) {
		if (errno == EAGAIN)
			break;   /* not signalled: re-arming is all there is to do */
		if (errno != EINTR)
			return -errno;
	}
	pthread_mutex_lock(&e->mu);
	if (!e->armed) {
		e->armed = true;
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	return 0;
}

void shmring__eventfd_destroy(struct shmring *r)
{
	struct ring_eventfd *e = (struct ring_eventfd *)__atomic_exchange_n(&r->evfd, NULL,
	                                                                    __ATOMIC_ACQ_REL);
	if (!e)
		return;
	if (e->b.pid == getpid()) {
		destroy_own(e);
		return;
	}
	/* Inherited through fork() and never replaced here: no thread of ours
	 * runs it and its mutex is the parent's.  Close our copy of the fd. */
	if (e->b.fd >= 0)
		close(e->b.fd);
	free_stale(&e->b);
}
