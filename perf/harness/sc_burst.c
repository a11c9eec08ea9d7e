/*
 * sc_burst.c - a producer bursts records into a sleeping consumer.
 *
 * The consumer blocks on an empty channel; the producer sleeps 100 ms (long
 * enough for any waiter to be asleep in the kernel), then sends --burst
 * records as fast as it can.  Figures, from the burst's first send: when the
 * consumer had the first record (its wake-up), and when it had the last
 * (the drain time); records/s = burst / drain.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct burst_shared {
	int64_t t0, t_first, t_last;
};

static int burst_producer(struct party *p, struct oneway *s, struct endpoint *ep)
{
	struct burst_shared *sh = s->sh;
	uint64_t n = (uint64_t)s->arg[0];

	sleep_ns(100000000);
	sh->t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (send_record(ep, s->chan.cfg.rec_size, make_tag(0, i), 0)) {
			party_fail(p, "send record %llu: %s", (unsigned long long)i, ep->err);
			return -1;
		}
	}
	if (ep_flush(ep)) {
		party_fail(p, "flush: %s", ep->err);
		return -1;
	}
	party_out(p)->t_end = now_ns();
	return oneway_marker(p, ep);
}

static int burst_consumer(struct party *p, struct oneway *s, struct endpoint *ep)
{
	struct burst_shared *sh = s->sh;

	for (uint64_t seq = 0;; seq++) {
		int64_t t, ts;
		int c = oneway_take(p, s, ep, seq, &t, &ts);
		if (c < 0)
			return -1;
		if (c == 1) {
			party_out(p)->records = seq;
			if (seq != (uint64_t)s->arg[0]) {
				party_fail(p, "marker after %llu records", (unsigned long long)seq);
				return -1;
			}
			return 0;
		}
		if (seq == 0)
			sh->t_first = t;
		sh->t_last = t;
	}
}

void sc_burst(void)
{
	int ntp = g_opt.ntps, ipipe = -1;
	size_t size = g_opt.lat_size;
	uint64_t n = g_opt.burst;
	struct meas *ms[20];
	struct oneway s[20];
	struct burst_shared *sh = shared_alloc(sizeof *sh);
	double first[20][MAX_REPS];
	char title[200], sz[32];

	for (int t = 0; t < ntp; t++) {
		ms[t] = meas_new(SC_BURST, g_opt.tps[t]->name, 1, 1, size, n);
		if (g_opt.tps[t] == &tp_pipe)
			ipipe = t;
		oneway_init(&s[t], g_opt.tps[t], size);
		s[t].producer = burst_producer;
		s[t].consumer = burst_consumer;
		s[t].sh = sh;
		s[t].arg[0] = (double)n;
	}
	fmt_size(size, sz, sizeof sz);
	for (int rep = 0; rep < g_opt.reps; rep++) {
		for (int t = 0; t < ntp; t++) {
			struct meas *m = ms[t];
			struct run r;
			if (m->na)
				continue;
			progress("burst of %llu %s: %s, rep %d/%d", (unsigned long long)n, sz,
				 s[t].chan.tp->name, rep + 1, g_opt.reps);
			memset(sh, 0, sizeof *sh);
			m->reps++;
			int rc = oneway_run(&s[t], &r);
			if (!meas_rep_ok(m, &r, rc, 1))
				continue;
			first[t][m->nrep] = (double)(sh->t_first - sh->t0);
			m->rep[m->nrep++] = (double)(sh->t_last - sh->t0);
			m->cpu_ns += r.cpu_ns;
			m->records_total += n;
		}
		progress_step();
	}
	for (int t = 0; t < ntp; t++) {
		struct meas *m = ms[t];
		meas_finish(m);
		double f[MAX_REPS];
		int k = 0;
		for (int i = 0; i < m->nrep; i++)
			if (m->rep[i] > 0)
				f[k++] = first[t][i];
		meas_fig(m, "drain_ns", m->value);
		meas_fig(m, "first_ns", k ? median_of(f, k) : NAN);
		meas_fig(m, "records_per_s", m->value > 0 ? (double)n * 1e9 / m->value : NAN);
		snprintf(m->desc, sizeof m->desc, "%s", s[t].desc);
		m->x_pipe = ipipe >= 0 ? rep_ratio(m, ms[ipipe]) : NAN;
	}
	shared_free(sh, sizeof *sh);
	snprintf(title, sizeof title,
		 "burst: %llu %s records into a consumer asleep for 100 ms; times from the first "
		 "send, median of %d runs (x pipe: drain time ratio)",
		 (unsigned long long)n, sz, g_opt.reps);
	report_table(SC_BURST, ms, ntp, title);
}
