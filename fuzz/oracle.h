/*
 * oracle.h - what the fuzz targets check after every library call, shared by
 * fuzz_attach.c and fuzz_scribble.c: the error codes a call may return on a
 * hostile ring, and that lengths and spans stay inside the caller's buffer,
 * max_record and the data mapping.  A breach aborts (libFuzzer reports it).
 *
 * The including file defines FUZZ_NAME (for the message) and includes the
 * library's internal header (struct shmring's fields) and shmring_zc.h first.
 */
#ifndef FUZZ_ORACLE_H
#define FUZZ_ORACLE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>

static inline void fail(const char *what, long rc)
{
	fprintf(stderr, FUZZ_NAME ": %s: %ld (%s)\n", what, rc,
	        rc < 0 ? shmring_strerror((int)rc) : "");
	abort();
}

/* The error codes a call may return on a ring a peer scribbles on, or on a
 * ring file made of arbitrary bytes. */
/* The refusals attach may give a file whose header was scribbled on: a
 * wrong magic (-EPROTO), another layout version (-EPROTONOSUPPORT),
 * inconsistent geometry (-EBADMSG), a pid_ns word naming another PID
 * namespace (-EXDEV, map.c). */
static inline int attach_refused(long rc)
{
	return rc == -EPROTO || rc == -EPROTONOSUPPORT || rc == -EBADMSG || rc == -EXDEV;
}

static inline void check_err(const char *what, long rc)
{
	switch (rc) {
	case -EAGAIN: case -ETIMEDOUT: case -EPIPE: case -EMSGSIZE: case -EBADMSG:
	case -EPROTO: case -ENOBUFS: case -EUSERS: case -ERANGE:
		return;
	default:
		if (rc < 0)
			fail(what, rc);
	}
}

/* A span the library handed out must lie inside the double-mapped data, and
 * on a ring with the inline layout inside its own slot, after the entry. */
static inline void check_span(struct shmring *r, const struct shmring_span *sp, size_t len)
{
	unsigned char *d = sp->data;
	bool inl = ring_layout_inline(r->max_record);
	unsigned char *slot0 = r->data - (inl ? sizeof(struct slot_meta) : 0);
	if (d < r->data || d >= r->data + r->capacity || len > r->max_record ||
	    d + len > slot0 + 2 * r->capacity)
		fail("span outside the data mapping", (long)len);
	if (inl && ((size_t)(d - slot0) % RING_SLOT != sizeof(struct slot_meta) ||
	            len > RING_INLINE_MAX))
		fail("inline span not in its slot after the entry", (long)len);
	/* touch it all: reading through a bad mapping faults here */
	volatile unsigned char sum = 0;
	for (size_t i = 0; i < len; i += 61)
		sum ^= d[i];
	(void)sum;
}

/* A length a call returned: an allowed error, or at most cap and max_record. */
static inline void check_len(const char *what, struct shmring *r, long rc, size_t cap)
{
	check_err(what, rc);
	if (rc >= 0 && ((size_t)rc > cap || (size_t)rc > r->max_record))
		fail(what, rc);
}

/* What shmring_get_many(r, buf, cap, recs, max, ...) returned: an allowed
 * error, or at most max records, each inside buf[0, cap) and max_record. */
static inline void check_many(struct shmring *r, long rc, const unsigned char *buf, size_t cap,
			      const struct iovec *recs, size_t max)
{
	check_err("get_many", rc);
	if (rc > (long)max)
		fail("get_many: more records than asked", rc);
	for (long i = 0; i < rc; i++) {
		const unsigned char *b = recs[i].iov_base;
		if (b < buf || recs[i].iov_len > r->max_record ||
		    (size_t)(b - buf) + recs[i].iov_len > cap)
			fail("get_many: record outside the caller's buffer", i);
	}
}

#endif /* FUZZ_ORACLE_H */
