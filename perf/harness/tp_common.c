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
/* Run only when named with -t (tp_epoll.c: the event-loop wake-up). */
const struct transport *const extra_transports[] = { &tp_shmring_efd, &tp_shmring_efd_direct,
                                                      &tp_seqpacket_epoll, &tp_shmring_inline,
                                                      &tp_shmring_light };
const int n_extra_transports = (int)(sizeof extra_transports / sizeof extra_transports[0]);

const struct transport *transport_by_name(const char *name)
{
	for (int i = 0; i < n_transports; i++)
		if (!strcmp(all_transports[i]->name, name))
			return all_transports[i];
	for (int i = 0; i < n_extra_transports; i++)
		if (!strcmp(extra_transports[i]->name, name))
			return extra_transports[i];
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

int channel_setup(struct run *r, const struct transport *tp, void **ch,
		  const struct chan_cfg *cfg)
{
	int rc = tp->setup(ch, cfg, r->why, sizeof r->why);

	if (rc)
		return rc;
	if (tp->prefault)
		tp->prefault(*ch, cfg);
	if (tp->describe)
		tp->describe(*ch, cfg, r->sh->desc, sizeof r->sh->desc);
	return 0;
}

void channel_teardown(const struct transport *tp, void **ch, const struct chan_cfg *cfg)
{
	tp->teardown(*ch, cfg);
	*ch = NULL;
}

int endpoint_open(struct party *p, const struct transport *tp, void *ch,
		  const struct chan_cfg *cfg)
{
	struct endpoint *ep = xcalloc(1, sizeof *ep);

	p->local = ep;
	ep->tp = tp;
	ep->ch = ch;
	ep->cfg = cfg;
	ep->role = p->role;
	int rc = tp->open(ep, p->role);
	if (rc)
		party_fail(p, "open: %s", ep->err[0] ? ep->err : "failed");
	return rc;
}

void endpoint_close(struct party *p)
{
	struct endpoint *ep = p->local;

	if (ep) {
		ep->tp->close(ep);
		free(ep);
	}
	p->local = NULL;
}

int channel_scen_setup(struct run *r)
{
	struct channel *c = r->scen;
	return channel_setup(r, c->tp, &c->ch, &c->cfg);
}

void channel_scen_teardown(struct run *r)
{
	struct channel *c = r->scen;
	channel_teardown(c->tp, &c->ch, &c->cfg);
}

int channel_scen_prep(struct party *p)
{
	struct channel *c = p->run->scen;
	return endpoint_open(p, c->tp, c->ch, &c->cfg);
}
