/*
 * sc_paced.c - one-way latency at a fixed offered rate.
 *
 * The producer sends record i at its intended time t0 + i / rate, with that
 * intended time in the record; the consumer (blocking, the transport's own
 * wait) records now - intended time.  A producer held up (a full queue, a
 * slow send, being descheduled) does not skip or shift the schedule: the
 * records it sends late carry their original intended times, so the wait
 * counts in their latency (no coordinated omission).  Between sends the
 * producer sleeps when the next one is more than 200 us away, and spins
 * otherwise.
 *
 * Reported: p50, p99, p99.9, max and mean from the log-bucketed histogram of
 * every record, over all runs.
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct paced_shared {
	struct hist h;
	int64_t max_lag_ns;	/* producer: latest send after its intended time */
};

static void sleep_until(int64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000), (long)(t % 1000000000) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int paced_producer(struct party *p, struct oneway *s, struct endpoint *ep)
{
	struct paced_shared *sh = s->sh;
	uint64_t n = (uint64_t)s->arg[0];
	double period = 1e9 / s->arg[1];
	int64_t t0 = now_ns() + 1000000, lag = 0;

	party_out(p)->t_begin = t0;
	for (uint64_t i = 0; i < n; i++) {
		int64_t ti = t0 + (int64_t)((double)i * period), d;
		while ((d = ti - now_ns()) > 0) {
			if (d > 200000)
				sleep_until(ti - 100000);
			else
				cpu_relax();
		}
		if (-d > lag)
			lag = -d;
		if (send_record(ep, s->chan.cfg.rec_size, make_tag(0, i), ti) || ep_flush(ep)) {
			party_fail(p, "send record %llu: %s", (unsigned long long)i, ep->err);
			return -1;
		}
	}
	sh->max_lag_ns = lag;
	party_out(p)->t_end = now_ns();
	return oneway_marker(p, ep);
}

static int paced_consumer(struct party *p, struct oneway *s, struct endpoint *ep)
{
	struct paced_shared *sh = s->sh;

	for (uint64_t seq = 0;; seq++) {
		int64_t t, ts;
		int c = oneway_take(p, s, ep, seq, &t, &ts);
		if (c < 0)
			return -1;
		if (c == 0)
			hist_add(&sh->h, t - ts);
		if (c == 1) {
			party_out(p)->records = seq;
			return 0;
		}
	}
}

static void lat_figs(struct meas *m)
{
	meas_finish(m);
	if (m->hist && m->hist->count) {
		meas_fig(m, "p50_ns", hist_quantile(m->hist, 0.50));
		meas_fig(m, "p99_ns", hist_quantile(m->hist, 0.99));
		meas_fig(m, "p999_ns", hist_quantile(m->hist, 0.999));
		meas_fig(m, "max_ns", (double)m->hist->max);
		meas_fig(m, "mean_ns", hist_mean(m->hist));
		meas_fig(m, "samples", (double)m->hist->count);
	}
}

void sc_paced(void)
{
	int ntp = g_opt.ntps, ipipe = -1;
	size_t size = g_opt.lat_size < 16 ? 16 : g_opt.lat_size;
	uint64_t n = (uint64_t)(g_opt.rate * g_opt.duration);
	struct meas *ms[20], *fl = NULL;
	struct oneway s[20];
	struct paced_shared *sh = shared_alloc(sizeof *sh);
	char title[240], sz[32];

	if (n < 1)
		n = 1;
	/* The floor of the latency tables: the spinning ping-pong's, if run. */
	for (int i = g_nmeas - 1; i >= 0 && !fl; i--)
		if (g_meas[i]->sc == SC_PINGPONG_SPIN && g_meas[i]->is_floor == 1 && !g_meas[i]->na)
			fl = g_meas[i];
	for (int t = 0; t < ntp; t++) {
		ms[t] = meas_new(SC_PACED, g_opt.tps[t]->name, 1, 1, size, n);
		ms[t]->hist = xcalloc(1, sizeof *ms[t]->hist);
		if (g_opt.tps[t] == &tp_pipe)
			ipipe = t;
		oneway_init(&s[t], g_opt.tps[t], size);
		s[t].producer = paced_producer;
		s[t].consumer = paced_consumer;
		s[t].sh = sh;
		s[t].arg[0] = (double)n;
		s[t].arg[1] = g_opt.rate;
	}
	fmt_size(size, sz, sizeof sz);
	/* One run each by default: the figures are percentiles of every
	 * record's latency, not a median over runs. */
	int reps = g_opt.reps_given ? g_opt.reps : 1;
	for (int rep = 0; rep < reps; rep++) {
		for (int t = 0; t < ntp; t++) {
			struct meas *m = ms[t];
			struct run r;
			if (m->na)
				continue;
			progress("paced %.0f/s %s: %s, rep %d/%d", g_opt.rate, sz, s[t].chan.tp->name, rep + 1,
				 reps);
			memset(sh, 0, sizeof *sh);
			m->reps++;
			int rc = oneway_run(&s[t], &r);
			if (!meas_rep_ok(m, &r, rc, 1))
				continue;
			hist_merge(m->hist, &sh->h);
			m->rep[m->nrep++] = hist_quantile(&sh->h, 0.5);
			double lag = meas_get(m, "producer_max_lag_ns");
			if (!(lag == lag) || (double)sh->max_lag_ns > lag)
				meas_fig(m, "producer_max_lag_ns", (double)sh->max_lag_ns);
			m->cpu_ns += r.cpu_ns;
			m->records_total += n;
		}
		progress_step();
	}
	for (int t = 0; t < ntp; t++) {
		lat_figs(ms[t]);
		meas_fig(ms[t], "rate_per_s", g_opt.rate);
		snprintf(ms[t]->desc, sizeof ms[t]->desc, "%s", s[t].desc);
		ms[t]->x_pipe = ipipe >= 0 ? rep_ratio(ms[t], ms[ipipe]) : NAN;
		ms[t]->x_floor = fl && fl->value > 0 ? ms[t]->value / fl->value : NAN;
	}
	shared_free(sh, sizeof *sh);
	snprintf(title, sizeof title,
		 "paced one-way latency, %s records at %.0f/s for %.1f s (%llu records per run, %d "
		 "runs), from the intended send time; x: p50 ratios",
		 sz, g_opt.rate, g_opt.duration, (unsigned long long)n, reps);
	report_table(SC_PACED, ms, ntp, title);
}
