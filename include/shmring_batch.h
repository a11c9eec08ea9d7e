/*
 * shmring_batch.h - scatter-gather puts and batches of records.
 *
 * shmring_putv makes one record from several buffers (a header plus a payload,
 * say) without copying them together first.  shmring_put_many and
 * shmring_get_many move several records per call, claiming their storage with
 * one atomic operation and waking sleepers at most once.  Errors follow
 * <shmring.h>.
 */
#ifndef SHMRING_BATCH_H
#define SHMRING_BATCH_H

#include <sys/uio.h>
#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One record made of iov[0..iovcnt) concatenated. */
SHMRING_API int     shmring_putv(struct shmring *ring, const struct iovec *iov, int iovcnt,
                     int64_t timeout_ns);

/* Put records recs[0..n), each one record, in order.  Like write(): returns
 * how many were put, from 1 to n, taking as many as fit at once; it waits (per
 * timeout_ns) only while not even the first fits.  A record over max_record is
 * -EMSGSIZE if it is first, and ends the batch before it otherwise. */
SHMRING_API ssize_t shmring_put_many(struct shmring *ring, const struct iovec *recs, size_t n,
                         int64_t timeout_ns);

/* Take up to max_recs records, packed into buf[0..cap) one after another (each
 * starting on an 8-byte boundary), describing record i in recs[i].  Returns
 * how many were taken (>= 1); waits (per timeout_ns) only while there are
 * none.  -EMSGSIZE if the first record alone does not fit in cap. */
SHMRING_API ssize_t shmring_get_many(struct shmring *ring, void *buf, size_t cap, struct iovec *recs,
                         size_t max_recs, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_BATCH_H */
