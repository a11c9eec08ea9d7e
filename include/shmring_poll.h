/*
 * shmring_poll.h - waiting on many rings at once, and event-loop integration.
 *
 * shmring_poll sleeps until any of several rings is readable (a get would not
 * wait: a record is ready, or end of stream / closed) or writable (a put of a
 * small record, up to SHMRING_SLOT_SIZE bytes, would not wait, or the ring is
 * closed / has no consumers left).  It uses futex_waitv (Linux 5.16+) to sleep
 * on all the rings' futex words at once, and falls back to short polling
 * sleeps (at most 1 ms apart) on older kernels.
 *
 * shmring_event_fd gives a ring an eventfd for epoll/poll/select: it becomes
 * readable when a record is available.  A watcher thread in this process
 * sleeps on the ring's futex, as any consumer does, and signals the eventfd;
 * producers pay for it (one FUTEX_WAKE) only while it is armed and waiting.
 * After the fd polls readable, call shmring_event_ack (which reads the fd and
 * re-arms the watcher), then take records with timeout 0 until -EAGAIN.
 * Once a get returns -EPIPE (closed, or end of stream) the fd stays readable,
 * as a pipe at end of file does: stop watching it then.
 *
 * fork(): the watcher thread is not inherited.  In a child, the first
 * shmring_event_fd or shmring_event_ack on an inherited handle gives the
 * child its own eventfd and watcher (a new fd number; the child's copy of the
 * parent's fd is closed), and shmring_detach there only closes what the
 * child holds.
 *
 * SHMRING_NO_FUTEX_WAITV=1 in the environment forces shmring_poll's fallback
 * (read once per process, at its first sleeping poll; a forked child reads it
 * afresh).  docs/poll-and-events.md has the details.
 * Errors follow <shmring.h>.
 */
#ifndef SHMRING_POLL_H
#define SHMRING_POLL_H

#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMRING_POLLIN  0x1u  /* readable */
#define SHMRING_POLLOUT 0x2u  /* writable */
#define SHMRING_POLL_MAX 64   /* rings per call */

struct shmring_pollitem {
	struct shmring *ring;
	unsigned        events;   /* what to wait for */
	unsigned        revents;  /* out: what is true now */
};

/* Returns how many items have revents != 0 (0 only if timeout_ns == 0),
 * -ETIMEDOUT, -EINVAL (n == 0 or > SHMRING_POLL_MAX, NULL ring). */
SHMRING_API int shmring_poll(struct shmring_pollitem *items, size_t n, int64_t timeout_ns);

/* The ring's eventfd for this handle (made on first call, owned by the
 * handle, closed by shmring_detach), or a negative errno. */
SHMRING_API int shmring_event_fd(struct shmring *ring);
/* Consume the eventfd's readiness and re-arm it (either kind of event fd). */
SHMRING_API int shmring_event_ack(struct shmring *ring);

/* The ring's event fd without a watcher thread: an io_uring instance whose
 * FUTEX_WAIT on the ring's futex word the producer's wake-up completes, so
 * that the wake-up reaches the application's epoll_wait in one hop, as a
 * socket's does (the watcher's costs two).  Linux 6.7+.  Used like
 * shmring_event_fd's (poll it for POLLIN, then shmring_event_ack, then take
 * with timeout 0 until -EAGAIN; shmring_event_fd returns it too once made),
 * with two differences:
 *   - the kernel posts the completion from the thread that last called
 *     shmring_event_ack (or this function): if that thread is asleep in
 *     epoll_wait, poll or select, the call returns -1 with EINTR once, as
 *     for a signal; call it again (event loops do: Python, libuv, libevent);
 *   - a thread of the library still looks at the ring every 50 ms (a
 *     producer that died between its put and its wake-up, or the end of
 *     stream a dead producer leaves) and completes the wait if the ring is
 *     readable then; an idle ring's fd stays quiet.
 * Returns the fd (close-on-exec, owned by the handle, closed by
 * shmring_detach); -EOPNOTSUPP where io_uring or its FUTEX_WAIT is not
 * available (kernel older than 6.7, kernel.io_uring_disabled, a seccomp
 * filter): use shmring_event_fd; -EBUSY if this handle already has a
 * watcher's event fd.  fork(): as shmring_event_fd's (the child's first call
 * makes its own). */
SHMRING_API int shmring_event_fd_direct(struct shmring *ring);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_POLL_H */
