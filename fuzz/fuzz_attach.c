/*
 * fuzz_attach.c - arbitrary bytes as a ring file (libFuzzer).
 *
 * The input is the file.  It is written into a memfd and attached with
 * shmring_attach_fd:
 *   1. as it is (the file is exactly the input);
 *   2. grown with zeroes to the size its own header claims (when the input
 *      holds a header and the claim is at most FILE_LIMIT): a seed can be a
 *      ring file with its trailing zeroes cut off, and the fuzzer works on
 *      the part that matters;
 *   3. cut or grown to sizes around the header and the claimed size, which
 *      must all be refused (-EBADMSG/-EPROTO/-EPROTONOSUPPORT) before
 *      anything is mapped.
 * Every attach that succeeds is exercised: info, next_len, get, peek and
 * release, get_many, put, putv, reserve/commit/abort, put_many, task_done,
 * join, poll, a liveness sweep over the file's attachment table (whose dead
 * entries' op records are recovered), close, and the calls again after
 * the close; all with timeout 0 (one get waits 1 ms when the input's size
 * is odd, to cover the sleeping path and its sweep).  Then detach.
 *
 * What must hold: no crash, no SIGBUS, no sanitizer report, no hang (run
 * with -timeout), and results inside the caller's and the ring's bounds.
 *
 * Build and run: fuzz/run.sh fuzz_attach SECONDS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attach.h"
#include "shmring_batch.h"
#include "shmring_poll.h"
#include "shmring_zc.h"

#define FUZZ_NAME "fuzz_attach"
#include "oracle.h"

#define FILE_LIMIT ((uint64_t)64 << 20) /* grow a file to its claimed size up to this */
#define MS 1000000LL

static unsigned char buf[1 << 20];
static unsigned char src[1 << 20];

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void consume(struct shmring *r, int64_t timeout)
{
	struct shmring_info info;
	long rc = shmring_info(r, &info);
	if (rc)
		fail("info", rc);
	if (info.records > r->nslots || info.used > r->capacity)
		fail("info: figures beyond the ring's size", (long)info.records);

	rc = shmring_next_len(r);
	check_len("next_len", r, rc, SIZE_MAX);
	rc = shmring_get(r, buf, sizeof buf, timeout);
	check_len("get", r, rc, sizeof buf);
	rc = shmring_get(r, buf, 10, 0);
	check_len("get (10-byte buffer)", r, rc, 10);

	struct shmring_span sp;
	rc = shmring_peek(r, &sp, 0);
	check_len("peek", r, rc, SIZE_MAX);
	if (rc >= 0) {
		check_span(r, &sp, sp.len);
		if ((rc = shmring_release(r, &sp)) != 0)
			fail("release", rc);
	}

	struct iovec recs[16];
	size_t cap = min_sz(sizeof buf, 3 * r->max_record + 64);
	rc = shmring_get_many(r, buf, cap, recs, 16, 0);
	check_many(r, rc, buf, cap, recs, 16);
}

static void produce(struct shmring *r)
{
	long rc = shmring_put(r, src, min_sz(r->max_record, 100), 0);
	check_err("put", rc);
	rc = shmring_put(r, src, min_sz(r->max_record, sizeof src), 0);
	check_err("put (max_record)", rc);
	struct iovec iov[2] = { { src, 1 }, { src + 1, min_sz(r->max_record, 200) - 1 } };
	rc = shmring_putv(r, r->max_record ? iov : NULL, r->max_record ? 2 : 0, 0);
	check_err("putv", rc);

	struct shmring_span sp;
	size_t len = min_sz(r->max_record, 300);
	rc = shmring_reserve(r, len, &sp, 0);
	check_err("reserve", rc);
	if (rc == 0) {
		check_span(r, &sp, len);
		memset(sp.data, 0x5a, len);
		if ((rc = shmring_commit(r, &sp, len / 2)) != 0)
			fail("commit", rc);
	}
	rc = shmring_reserve(r, 0, &sp, 0);
	check_err("reserve 0", rc);
	if (rc == 0 && (rc = shmring_abort(r, &sp)) != 0)
		fail("abort", rc);

	struct iovec recs[3] = { { src, 0 }, { src, min_sz(r->max_record, 65) },
	                         { src, min_sz(r->max_record, 7) } };
	rc = shmring_put_many(r, recs, 3, 0);
	check_err("put_many", rc);
}

static void exercise(struct shmring *r, bool odd)
{
	consume(r, odd ? 1 * MS : 0);
	produce(r);
	consume(r, 0);

	long rc = shmring_task_done(r);
	check_err("task_done", rc);
	rc = shmring_join(r, 0);
	check_err("join", rc);
	struct shmring_pollitem it = { r, SHMRING_POLLIN | SHMRING_POLLOUT, 0 };
	rc = shmring_poll(&it, 1, 0);
	if (rc < 0)
		fail("poll", rc);

	shmring__reap(r); /* every entry the file calls dead: recover its claims */
	consume(r, 0);
	produce(r);

	if ((rc = shmring_close(r)) != 0)
		fail("close", rc);
	consume(r, 0);
	rc = shmring_put(r, src, 1, 0);
	check_err("put after close", rc);
	if (rc == 0)
		fail("put after close succeeded", rc);
}

/* One attach of the file as it stands; exercise the handle if it works. */
static void try_attach(int fd, bool odd)
{
	struct shmring *r = NULL;
	int rc = shmring_attach_fd(&r, fd);
	if (rc == 0) {
		exercise(r, odd);
		shmring_detach(r);
		return;
	}
	if (!attach_refused(rc))
		fail("attach_fd", rc);
}

static void resize(int fd, uint64_t size)
{
	if (ftruncate(fd, (off_t)size) != 0)
		fail("ftruncate", -errno);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0) {
		/* A /dev/shm file (attach_fd trusts it as a named ring's), not
		 * a memfd: an unsealed memfd is refused, and this one is
		 * resized for every input.  Unlinked at once: nothing is left. */
		char name[64];
		snprintf(name, sizeof name, "/shmring-fuzz-attach-%ld", (long)getpid());
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			fail("shm_open", -errno);
		shm_unlink(name);
		for (size_t i = 0; i < sizeof src; i++)
			src[i] = (unsigned char)(i * 13 + 5);
	}
	bool odd = size & 1;

	/* 1. the input, exactly */
	resize(fd, 0);
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
		if (n <= 0)
			fail("pwrite", -errno);
		off += (size_t)n;
	}
	try_attach(fd, odd);

	/* 2. grown to the size the header claims */
	uint64_t claimed = 0;
	if (size >= offsetof(struct ring_header, file_size) + 8)
		memcpy(&claimed, data + offsetof(struct ring_header, file_size), 8);
	bool plausible = claimed > size && claimed <= FILE_LIMIT;
	if (plausible) {
		resize(fd, claimed);
		try_attach(fd, odd);
	}

	/* 3. cut and grown around the header and the claim: all refused
	 * before mapping (attach reads the header with pread, never through
	 * a mapping of a short file) */
	const uint64_t sizes[] = {
		claimed + 1, claimed + RING_PAGE, claimed - 1, claimed - RING_PAGE,
		RING_HEADER_SIZE + RING_PAGE, RING_HEADER_SIZE, RING_HEADER_SIZE - 1, 4096, 64, 63, 8, 0,
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		if (sizes[i] > FILE_LIMIT || (i < 4 && !plausible))
			continue;
		resize(fd, sizes[i]);
		try_attach(fd, odd);
	}
	return 0;
}
