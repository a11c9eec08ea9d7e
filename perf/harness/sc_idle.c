/*
 * sc_idle.c - the CPU a consumer burns while blocked on an idle channel.
 *
 * The consumer makes one blocking receive; the producer sleeps --idle
 * seconds, then sends the marker.  The consumer's thread CPU time
 * (getrusage RUSAGE_THREAD: user + sys) across that receive, divided by the
 * time it took, is the figure: a waiter that sleeps costs about nothing, one
 * that spins costs a core.  (CPU per record under load is in the throughput
 * tables.)
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct idle_shared {
	int64_t cpu_ns, wall_ns;
};

static int idle_producer(struct party *p, struct oneway *s, struct endpoint *ep)
{
	sleep_ns((int64_t)(s->arg[0] * 1e9));
	return oneway_marker(p, ep);
}

static int idle_consumer(struct party *p, struct oneway *s, struct endpoint *ep)
{
	struct idle_shared *sh = s->sh;
	struct rusage a, b;
	const void *rec;

	getrusage(RUSAGE_THREAD, &a);
	int64_t t0 = now_ns();
	ssize_t n = recv_record(ep, &rec);
	int64_t t1 = now_ns();
	getrusage(RUSAGE_THREAD, &b);
	if (n < 0) {
		party_fail(p, "receive: %s", ep->err);
		return -1;
	}
	if (n < 8 || rec_tag(rec) != MARKER_TAG) {
		party_fail(p, "expected the marker");
		return -1;
	}
	ep->tp->recv_end(ep);
	sh->cpu_ns = rusage_cpu_ns(&b) - rusage_cpu_ns(&a);
	sh->wall_ns = t1 - t0;
	return 0;
}

void sc_idle(void)
{
	int ntp = g_opt.ntps, ipipe = -1;
	size_t size = g_opt.lat_size;
	struct meas *ms[20];
	struct oneway s[20];
	struct idle_shared *sh = shared_alloc(sizeof *sh);
	char title[200];

	for (int t = 0; t < ntp; t++) {
		ms[t] = meas_new(SC_IDLE, g_opt.tps[t]->name, 1, 1, size, 1);
		if (g_opt.tps[t] == &tp_pipe)
			ipipe = t;
		oneway_init(&s[t], g_opt.tps[t], size);
		s[t].producer = idle_producer;
		s[t].consumer = idle_consumer;
		s[t].sh = sh;
		s[t].arg[0] = g_opt.idle_s;
	}
	/* One run per transport: the figure is a rate over a whole second. */
	int64_t cpu[20] = { 0 }, wall[20] = { 0 };
	for (int t = 0; t < ntp; t++) {
		struct meas *m = ms[t];
		struct run r;
		progress("idle consumer, %.1f s: %s", g_opt.idle_s, s[t].chan.tp->name);
		memset(sh, 0, sizeof *sh);
		m->reps = 1;
		int rc = oneway_run(&s[t], &r);
		progress_step();
		if (!meas_rep_ok(m, &r, rc, 0))
			continue;
		cpu[t] = sh->cpu_ns;
		wall[t] = sh->wall_ns;
		m->rep[m->nrep++] = wall[t] > 0 ? 100.0 * (double)cpu[t] / (double)wall[t] : 0;
	}
	for (int t = 0; t < ntp; t++) {
		struct meas *m = ms[t];
		meas_finish(m);
		/* 0% is a real figure here: meas_finish skips zeros */
		if (m->nrep && m->rep[0] == 0)
			m->value = 0;
		meas_fig(m, "cpu_pct_of_core", m->value);
		meas_fig(m, "cpu_ns", (double)cpu[t]);
		meas_fig(m, "wall_ns", (double)wall[t]);
		snprintf(m->desc, sizeof m->desc, "%s", s[t].desc);
		m->x_pipe = ipipe >= 0 && ms[ipipe]->value > 0 ? m->value / ms[ipipe]->value : NAN;
	}
	shared_free(sh, sizeof *sh);
	snprintf(title, sizeof title,
		 "idle: CPU of a consumer blocked %.1f s on an empty channel (its thread's user+sys)",
		 g_opt.idle_s);
	report_table(SC_IDLE, ms, ntp, title);
}
