/*
 * collide.c - an application that defines the generic names libshmring
 * used to leak (issue 10), then uses the library for real.
 *
 * Before the library kept its internals to itself, `nm -D libshmring.so`
 * listed 37 of them.  Linked with libshmring.a, this program failed to link
 * (`multiple definition of 'ring_readable'`); linked with libshmring.so, the
 * library called this program's deadline_passed() instead of its own, so a
 * get with a 200 ms timeout returned at once.  Each function below aborts
 * if the library ever calls it, and the two data words must keep their
 * values.  The library's internals are now hidden (prefix shmring__,
 * -fvisibility=hidden, ring/version.map, a localized libshmring.a), so
 * both links work and the program must behave:
 *   - records go through a ring from a forked producer, in order;
 *   - zero-copy, batch and latch calls work;
 *   - a shmring_get with a 200 ms timeout on an empty ring waits (at least
 *     180 ms, at most 10 s on a loaded machine) and returns -ETIMEDOUT.
 *
 * Built by configure.py twice (build/<v>/tests/link/collide-static against
 * libshmring.a, build/release/tests/link/collide-shared against
 * libshmring.so) and a third time by tests/link/check.sh through
 * pkg-config; `ninja test` runs them.
 *
 * usage: collide LABEL    (LABEL names the link in the output)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_batch.h"
#include "shmring_latch.h"
#include "shmring_zc.h"

static void collided(const char *name)
{
	fprintf(stderr, "collide: FAIL: the library called the application's %s()\n",
		name);
	abort();
}

/* The application's own functions, with the names the library once
 * exported (`nm -D --defined-only libshmring.so` before issue 10). */
#define APP_FUNCTION(name) \
	void name(void); \
	void name(void) { collided(#name); }

APP_FUNCTION(claim_acquire)
APP_FUNCTION(claim_mine_new)
APP_FUNCTION(claim_release)
APP_FUNCTION(claim_reset_entry)
APP_FUNCTION(deadline_init)
APP_FUNCTION(deadline_passed)
APP_FUNCTION(ec_block)
APP_FUNCTION(ec_register)
APP_FUNCTION(ec_sleep_until)
APP_FUNCTION(ec_unregister)
APP_FUNCTION(ec_wake_sleepers)
APP_FUNCTION(futex_wait_until)
APP_FUNCTION(futex_wake_all)
APP_FUNCTION(latch_add)
APP_FUNCTION(latch_is_open)
APP_FUNCTION(latch_wait)
APP_FUNCTION(ring_claim)
APP_FUNCTION(ring_eventfd_destroy)
APP_FUNCTION(ring_has_room)
APP_FUNCTION(ring_id_alive)
APP_FUNCTION(ring_maybe_reap)
APP_FUNCTION(ring_publish_many)
APP_FUNCTION(ring_readable)
APP_FUNCTION(ring_reap)
APP_FUNCTION(ring_reclaim)
APP_FUNCTION(ring_recover_entry)
APP_FUNCTION(ring_registry_add)
APP_FUNCTION(ring_registry_remove)
APP_FUNCTION(ring_shm_name)
APP_FUNCTION(ring_take)
APP_FUNCTION(ring_take_role)
APP_FUNCTION(ring_take_run)
APP_FUNCTION(ring_with_handle)

/* ... and its own data words with the two data symbols' names. */
#define APP_WORD 0x5a5a5a5au
unsigned claim_cache = APP_WORD;
unsigned ring_fork_gen = APP_WORD;

static int fails;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "collide: FAIL: " __VA_ARGS__); \
			fputc('\n', stderr); \
			fails++; \
		} \
	} while (0)

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum { RECORDS = 10000 };

/* A forked producer: RECORDS numbered records, then close. */
static void produce(struct shmring *ring)
{
	for (uint32_t i = 0; i < RECORDS; i++)
		if (shmring_put(ring, &i, sizeof i, 10 * 1000000000LL) < 0)
			_exit(2);
	shmring_close(ring);
	shmring_detach(ring);
	_exit(0);
}

static void across_fork(struct shmring *ring)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		produce(ring);
	CHECK(pid > 0, "fork: %s", strerror(errno));
	if (pid < 0)
		return;
	uint32_t next = 0, rec;
	ssize_t len;
	while ((len = shmring_get(ring, &rec, sizeof rec, 10 * 1000000000LL)) >= 0) {
		CHECK(len == sizeof rec && rec == next, "record %u: got %u (len %zd)",
		      next, rec, len);
		next++;
	}
	CHECK(len == -EPIPE, "get after the producer: %s", shmring_strerror((int)len));
	CHECK(next == RECORDS, "%u of %d records", next, RECORDS);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "producer exit status %#x", status);
}

static void companions(struct shmring *ring)
{
	struct shmring_span span;
	int rc = shmring_reserve(ring, 5, &span, 0);
	CHECK(rc == 0, "reserve: %s", shmring_strerror(rc));
	if (rc == 0) {
		memcpy(span.data, "zcopy", 5);
		rc = shmring_commit(ring, &span, 5);
		CHECK(rc == 0, "commit: %s", shmring_strerror(rc));
	}
	ssize_t len = shmring_peek(ring, &span, 0);
	CHECK(len == 5 && memcmp(span.data, "zcopy", 5) == 0, "peek: %zd", len);
	if (len >= 0)
		CHECK(shmring_release(ring, &span) == 0, "release");

	struct iovec recs[2] = { { "ab", 2 }, { "cde", 3 } };
	CHECK(shmring_put_many(ring, recs, 2, 0) == 2, "put_many");
	char buf[64];
	struct iovec got[4];
	ssize_t n = shmring_get_many(ring, buf, sizeof buf, got, 4, 0);
	CHECK(n == 2 && got[1].iov_len == 3 &&
	      memcmp(got[1].iov_base, "cde", 3) == 0, "get_many: %zd", n);

	struct shmring_latch latch;
	CHECK(shmring_latch_init(&latch, 1) == 0, "latch_init");
	CHECK(shmring_latch_arrive(&latch) == 0, "latch_arrive");
	CHECK(shmring_latch_wait(&latch, 0) == 0, "latch_wait");
}

/* An empty ring and a 200 ms timeout: the library's own deadline must
 * decide, so the call waits that long. */
static void timeout_waits(struct shmring *ring)
{
	char buf[16];
	int64_t t0 = now_ns();
	ssize_t len = shmring_get(ring, buf, sizeof buf, 200 * 1000000LL);
	int64_t waited = now_ns() - t0;
	CHECK(len == -ETIMEDOUT, "get on an empty ring: %zd (%s), not -ETIMEDOUT",
	      len, len < 0 ? shmring_strerror((int)len) : "a record");
	CHECK(waited >= 180 * 1000000LL && waited <= 10 * 1000000000LL,
	      "a 200 ms get returned after %.1f ms", waited / 1e6);
	printf("collide: a 200 ms get on an empty ring returned %s after %.1f ms\n",
	       len < 0 ? shmring_strerror((int)len) : "a record", waited / 1e6);
}

int main(int argc, char **argv)
{
	const char *label = argc > 1 ? argv[1] : "";
	struct shmring *ring;
	struct shmring_config cfg = { .capacity = 1 << 16 };

	int rc = shmring_create(&ring, NULL, &cfg);
	if (rc < 0) {
		fprintf(stderr, "collide: shmring_create: %s\n", shmring_strerror(rc));
		return 1;
	}
	companions(ring);
	timeout_waits(ring);
	shmring_detach(ring);

	rc = shmring_create(&ring, NULL, &cfg);
	CHECK(rc == 0, "second shmring_create: %s", shmring_strerror(rc));
	if (rc == 0) {
		across_fork(ring);
		shmring_detach(ring);
	}

	CHECK(claim_cache == APP_WORD && ring_fork_gen == APP_WORD,
	      "the library wrote the application's data (%#x, %#x)",
	      claim_cache, ring_fork_gen);
	printf("collide %s: %s\n", label, fails ? "FAIL" : "OK");
	return fails ? 1 : 0;
}
