/*
 * sc_oneway.c - one channel, one producer, one consumer: the driver under
 * the paced, idle and burst scenarios (each supplies the two sides).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static int ow_main(struct party *p)
{
	struct oneway *s = p->run->scen;
	return p->role == ROLE_PRODUCER ? s->producer(p, s, p->local) : s->consumer(p, s, p->local);
}

static const struct scen_ops ow_ops = {
	.setup = channel_scen_setup,
	.teardown = channel_scen_teardown,
	.prep = channel_scen_prep,
	.main = ow_main,
	.fini = endpoint_close,
};

void oneway_init(struct oneway *s, const struct transport *tp, size_t size)
{
	memset(s, 0, sizeof *s);
	s->chan.tp = tp;
	s->chan.cfg = (struct chan_cfg){ .rec_size = size,
				    .queue_bytes = g_opt.queue_bytes > 4 * size ? g_opt.queue_bytes
										 : 4 * size,
				    .producers = 1, .consumers = 1,
				    .pipe_exact = g_opt.pipe_exact };
}

int oneway_run(struct oneway *s, struct run *r)
{
	memset(r, 0, sizeof *r);
	r->tp = s->chan.tp;
	r->ops = &ow_ops;
	r->nparties = 2;
	r->producers = 1;
	r->inproc = !!(s->chan.tp->flags & TP_INPROC);
	r->scen = s;
	r->timeout_ns = g_opt.run_timeout_ns;
	r->role[0] = ROLE_PRODUCER;
	r->role[1] = ROLE_CONSUMER;
	run_default_pins(r, 2);
	int rc = run_parties(r);
	if (!s->desc[0] && r->sh && r->sh->desc[0])
		snprintf(s->desc, sizeof s->desc, "%s", r->sh->desc);
	return rc;
}

int oneway_check(struct party *p, struct oneway *s, const void *rec, ssize_t n, uint64_t seq)
{
	char why[160];

	if (n < 8) {
		party_fail(p, "short record (%zd bytes)", n);
		return -1;
	}
	if (rec_tag(rec) == MARKER_TAG)
		return 1;
	if (rec_tag(rec) != make_tag(0, seq)) {
		party_fail(p, "expected record %llu, got tag %#llx", (unsigned long long)seq,
			   (unsigned long long)rec_tag(rec));
		return -1;
	}
	if (rec_check(rec, (size_t)n, s->chan.cfg.rec_size, why, sizeof why)) {
		party_fail(p, "%s", why);
		return -1;
	}
	return 0;
}

int oneway_take(struct party *p, struct oneway *s, struct endpoint *ep, uint64_t seq,
		int64_t *t, int64_t *ts)
{
	const void *rec;
	ssize_t n = recv_record(ep, &rec);

	*t = now_ns();
	if (n < 0) {
		party_fail(p, "receive: %s", ep->err);
		return -1;
	}
	int c = oneway_check(p, s, rec, n, seq);
	if (c < 0)
		return -1;
	if (c == 0)
		*ts = rec_ts(rec);
	if (ep->tp->recv_end(ep)) {
		party_fail(p, "release: %s", ep->err);
		return -1;
	}
	return c;
}

int oneway_marker(struct party *p, struct endpoint *ep)
{
	if (send_record(ep, ep->cfg->rec_size, MARKER_TAG, 0) || ep_flush(ep)) {
		party_fail(p, "send marker: %s", ep->err);
		return -1;
	}
	return 0;
}
