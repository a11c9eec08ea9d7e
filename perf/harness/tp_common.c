/*
 * tp_common.c - the list of transports and the send/receive loops that every
 * scenario uses, whichever transport it drives.
 */
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const struct transport *const all_transports[] = {
	&tp_shmring, &tp_shmring_zc, &tp_shmring_batch, &tp_pipe,
	&tp_seqpacket, &tp_mq, &tp_mutex_ring, &tp_wfcqueue,
};
const int n_transports = (int)(sizeof all_transports / sizeof all_transports[0]);

const struct transport *transport_by_name(const char *name)
{
	for (int i = 0; i < n_transports; i++)
		if (!strcmp(all_transports[i]->name, name))
			return all_transports[i];
	return NULL;
}

int ep_alloc_buf(struct endpoint *ep, size_t len)
{
	free(ep->buf);
	/* 64-byte aligned, like a ring slot, so no transport gets an
	 * alignment penalty the others do not. */
	if (posix_memalign((void **)&ep->buf, CACHE_LINE, len ? len : 1)) {
		ep->buf = NULL;
		return -ENOMEM;
	}
	memset(ep->buf, 0, len);
	ep->buf_len = len;
	return 0;
}

void ep_seterr(struct endpoint *ep, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ep->err, sizeof ep->err, fmt, ap);
	va_end(ap);
}

int send_record(struct endpoint *ep, size_t len, uint64_t tag, int64_t ts)
{
	const struct transport *tp = ep->tp;
	void *rec;
	int rc;

	while ((rc = tp->send_begin(ep, len, &rec)) == -EAGAIN)
		cpu_relax();
	if (rc)
		return rc;
	rec_fill(rec, len, tag, ts);
	while ((rc = tp->send_end(ep, len)) == -EAGAIN)
		cpu_relax();
	return rc;
}

ssize_t recv_record(struct endpoint *ep, const void **rec)
{
	ssize_t n;

	while ((n = ep->tp->recv_begin(ep, rec)) == -EAGAIN)
		cpu_relax();
	return n;
}

int ep_flush(struct endpoint *ep)
{
	int rc;

	if (!ep->tp->flush)
		return 0;
	while ((rc = ep->tp->flush(ep)) == -EAGAIN)
		cpu_relax();
	return rc;
}
