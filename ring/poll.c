/*
 * poll.c - shmring_poll: sleep until any of several rings is readable or
 * writable (docs/poll-and-events.md).
 *
 * The eventcount protocol of eventcount.c, on several eventcounts at once:
 *
 *   W1  register on every eventcount involved (not_empty for POLLIN,
 *       not_full for POLLOUT), keeping each one's key (its epoch);
 *   W2  re-check every item (shmring__readable / shmring__has_room, seq_cst);
 *   W3  futex_waitv on all their futex words, each expected to hold its key:
 *       the kernel checks every word before it sleeps, so a notifier's N3 on
 *       any of them, before or during the sleep, ends the wait;
 *   W4  unregister from each (a no-op where the epoch moved).
 *
 * For each eventcount, the pairing of W1/W2 with N1/N2 is exactly the single
 * waiter's argument in eventcount.c: a notifier that reads no waiter at N2
 * published before our re-check, so W2 sees it.  Sleeps last at most one
 * slice (shmring__ec_sleep_until: 50 ms), as everywhere, and after each one the rings
 * are swept for dead peers (shmring__maybe_reap, rate-limited per ring), so a
 * producer or consumer that died shows up as end of stream / broken pipe.
 *
 * Without futex_waitv (ENOSYS: Linux < 5.16, or SHMRING_NO_FUTEX_WAITV=1) the
 * sleep is a FUTEX_WAIT on the first word only, in slices of at most 1 ms; the
 * other rings are re-checked between slices.  Correct, just less prompt.
 * With a single eventcount to watch, plain FUTEX_WAIT is all that is needed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "queue.h"
#include "shmring_poll.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif
#ifndef FUTEX_WAITV_MAX
/* <linux/futex.h> older than 5.16: the ABI, copied. */
#define FUTEX_WAITV_MAX 128
struct futex_waitv {
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t __reserved;
};
#endif

#define POLL_MAX_EC     (2 * SHMRING_POLL_MAX)
#define FALLBACK_NS     1000000L /* 1 ms: the fallback's longest sleep */

_Static_assert(POLL_MAX_EC <= FUTEX_WAITV_MAX, "one futex_waitv covers every eventcount");

/* ------------------------------------------------------------ sleep mode */

/* futex_waitv returned ENOSYS once: the kernel will not grow it later. */
static _Atomic bool waitv_missing;
/* SHMRING_NO_FUTEX_WAITV, read once per process: (pid << 1) | forced.  The
 * pid makes a forked child read the environment afresh, so a test (or a
 * program) can set the variable in a child before its first sleeping poll. */
static _Atomic uint64_t env_state;

static bool waitv_forced_off(void)
{
	uint64_t pid = (uint64_t)getpid();
	uint64_t s = atomic_load_explicit(&env_state, memory_order_relaxed);
	if (s >> 1 == pid)
		return s & 1;
	const char *v = getenv("SHMRING_NO_FUTEX_WAITV");
	bool forced = v && *v && strcmp(v, "0") != 0;
	atomic_store_explicit(&env_state, pid << 1 | (forced ? 1u : 0u), memory_order_relaxed);
	return forced;
}

static bool use_waitv(void)
{
	return !atomic_load_explicit(&waitv_missing, memory_order_relaxed) && !waitv_forced_off();
}

/* ------------------------------------------------------------ checking */

static unsigned check_item(struct shmring_pollitem *it)
{
	unsigned rev = 0;
	if ((it->events & SHMRING_POLLIN) && shmring__readable(it->ring))
		rev |= SHMRING_POLLIN;
	if ((it->events & SHMRING_POLLOUT) && shmring__has_room(it->ring, 1))
		rev |= SHMRING_POLLOUT;
	return rev;
}

/* Fill every revents; return how many are non-zero. */
static int check_all(struct shmring_pollitem *items, size_t n)
{
	int ready = 0;
	for (size_t i = 0; i < n; i++) {
		items[i].revents = check_item(&items[i]);
		ready += items[i].revents != 0;
	}
	return ready;
}

/* check_all as a waiter's re-check (a ready_fn), for the spin. */
struct poll_set {
	struct shmring_pollitem *items;
	size_t                   n;
	int                      ready;
};

static bool poll_ready(const void *arg)
{
	struct poll_set *set = (struct poll_set *)arg;
	set->ready = check_all(set->items, set->n);
	return set->ready != 0;
}

/* ------------------------------------------------------------ eventcounts */

struct watch {
	struct eventcount *ec;
	struct shmring    *ring;   /* for its statistics */
	uint32_t           key;
};

static size_t add_watch(struct watch *ws, size_t nw, struct eventcount *ec, struct shmring *r)
{
	for (size_t i = 0; i < nw; i++)
		if (ws[i].ec == ec)
			return nw; /* the same handle twice: one registration */
	ws[nw].ec = ec;
	ws[nw].ring = r;
	ws[nw].key = 0;
	return nw + 1;
}

static size_t collect_watches(const struct shmring_pollitem *items, size_t n, struct watch *ws)
{
	size_t nw = 0;
	for (size_t i = 0; i < n; i++) {
		struct ring_header *hdr = items[i].ring->hdr;
		if (items[i].events & SHMRING_POLLIN)
			nw = add_watch(ws, nw, &hdr->not_empty, items[i].ring);
		if (items[i].events & SHMRING_POLLOUT)
			nw = add_watch(ws, nw, &hdr->not_full, items[i].ring);
	}
	return nw;
}

static void count_wait(struct shmring *r)
{
	atomic_fetch_add_explicit(&r->hdr->futex_waits, 1, memory_order_relaxed);
}

/* W3 on every watched word until *until.  Returns false if futex_waitv is
 * missing (nothing slept: the caller falls back). */
static bool sleep_waitv(struct watch *ws, size_t nw, const struct timespec *until)
{
	struct futex_waitv v[POLL_MAX_EC];
	memset(v, 0, sizeof v[0] * nw);
	for (size_t i = 0; i < nw; i++) {
		v[i].val = ws[i].key;
		v[i].uaddr = (uint64_t)(uintptr_t)ec_futex_word(ws[i].ec);
		v[i].flags = FUTEX_32; /* shared: never FUTEX_PRIVATE_FLAG */
		count_wait(ws[i].ring);
	}
	long rc = syscall(SYS_futex_waitv, v, (unsigned)nw, 0u, until, CLOCK_MONOTONIC);
	if (rc < 0 && errno == ENOSYS) {
		atomic_store_explicit(&waitv_missing, true, memory_order_relaxed);
		return false;
	}
	/* >= 0: woken; EAGAIN: a word had moved; ETIMEDOUT; EINTR: the caller
	 * re-checks either way. */
	return true;
}

static void min_time(struct timespec *t, const struct timespec *other)
{
	if (other->tv_sec < t->tv_sec ||
	    (other->tv_sec == t->tv_sec && other->tv_nsec < t->tv_nsec))
		*t = *other;
}

/* One sleep, W1 to W4, unless something is ready at W2: returns the number
 * of ready items then, 0 after a sleep. */
static int sleep_once(struct shmring_pollitem *items, size_t n, struct watch *ws, size_t nw,
                      const struct deadline *dl)
{
	bool multi = nw > 1 && use_waitv();
	/* The fallback registers on the first word only: it sleeps on no
	 * other, so registering there would only make producers pay. */
	size_t nreg = multi ? nw : 1;
	bool fenced = false; /* any light ring among them: one membarrier for all (fence.h) */
	for (size_t i = 0; i < nreg; i++) {
		ws[i].key = shmring__ec_register(ws[i].ec, false);                      /* W1 */
		fenced |= ws[i].ring->fenced;
	}
	if (fenced)
		shmring__fence_waiter();
	int ready = check_all(items, n);                                       /* W2 */
	if (!ready) {
		struct timespec until;
		shmring__ec_sleep_until(&until, dl, fenced);
		bool slept = false;
		if (multi)
			slept = sleep_waitv(ws, nw, &until);                   /* W3 */
		if (!slept) {
			if (nw > 1) {
				/* short slices: the other rings are only
				 * looked at between them */
				struct timespec soon;
				clock_gettime(CLOCK_MONOTONIC, &soon);
				soon.tv_nsec += FALLBACK_NS;
				if (soon.tv_nsec >= 1000000000) {
					soon.tv_sec++;
					soon.tv_nsec -= 1000000000;
				}
				min_time(&until, &soon);
			}
			count_wait(ws[0].ring);
			shmring__futex_wait_until(ec_futex_word(ws[0].ec), ws[0].key, &until);
		}
	}
	for (size_t i = 0; i < nreg; i++)
		shmring__ec_unregister(ws[i].ec, ws[i].key);                            /* W4 */
	return ready;
}

/* ------------------------------------------------------------ poll */

static unsigned poll_spin(const struct shmring_pollitem *items, size_t n)
{
	/* The most patient handle's setting would make the others spin more
	 * than they asked for: take the least. */
	unsigned spin = items[0].ring->spin;
	for (size_t i = 1; i < n; i++)
		if (items[i].ring->spin < spin)
			spin = items[i].ring->spin;
	return spin;
}

int shmring_poll(struct shmring_pollitem *items, size_t n, int64_t timeout_ns)
{
	if (!items || n == 0 || n > SHMRING_POLL_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!items[i].ring)
			return -EINVAL;
	}
	int ready = check_all(items, n);
	if (ready)
		return ready;
	if (timeout_ns == 0) {
		/* a caller that polls without sleeping still notices the dead,
		 * once a ring has not moved for 50 ms (as a get's -EAGAIN does):
		 * cons_head for readers, the free tail for writers */
		for (size_t i = 0; i < n; i++) {
			struct shmring *r = items[i].ring;
			unsigned ev = items[i].events;
			uint64_t at = 0;
			if (ev & SHMRING_POLLIN)
				at += atomic_load_explicit(&r->hdr->cons_head, memory_order_relaxed);
			if (ev & SHMRING_POLLOUT)
				at += atomic_load_explicit(&r->cached_free, memory_order_relaxed);
			ring_sweep_if_stalled(r, STALL_OTHER, at);
		}
		return 0;
	}

	struct deadline dl;
	shmring__deadline_init(&dl, timeout_ns);

	/* Spin before the first sleep: the policy of every waiter (wait.h). */
	struct poll_set set = { items, n, 0 };
	if (shmring__spin_until(poll_spin(items, n), poll_ready, &set))
		return set.ready;

	struct watch ws[POLL_MAX_EC];
	size_t nw = collect_watches(items, n, ws);
	for (;;) {
		if (shmring__deadline_passed(&dl))
			return -ETIMEDOUT;
		if (nw == 0) {
			/* every events field is 0: nothing can become ready */
			struct timespec until;
			shmring__ec_sleep_until(&until, &dl, false);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
			continue;
		}
		if ((ready = sleep_once(items, n, ws, nw, &dl)) != 0)
			return ready;
		for (size_t i = 0; i < n; i++)
			shmring__maybe_reap(items[i].ring);
		if ((ready = check_all(items, n)) != 0)
			return ready;
	}
}
