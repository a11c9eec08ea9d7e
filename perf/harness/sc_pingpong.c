/*
 * sc_pingpong.c - round trips between two parties over two channels (A -> B
 * and B -> A) of the same transport; one-way latency = round trip / 2.
 *
 * Spinning: every call is non-blocking (timeout 0, O_NONBLOCK, MSG_DONTWAIT,
 * trylock-style) and the harness retries with a pause between tries; needs
 * two CPUs (the parties are pinned to two).  Blocking: every call waits the
 * transport's own way (shmring: its spin-then-futex wait; the kernel
 * transports: sleeping in the kernel; the mutex ring: its condvars).
 *
 * Each record is filled and checked (the tag says which round trip it
 * belongs to) in both directions.  pp_drive runs a warm-up (a tenth of the
 * round trips, at most 2000), then the round trips in batches: the figure is
 * the median batch mean; every round trip (blocking) or every 16th (spinning,
 * where two clock reads would be a visible part of it) is also timed alone
 * into the histogram for the percentiles.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCHES 64

int pp_drive(int (*rt)(void *arg, uint64_t seq), void *arg, uint64_t rounds, int nbatches,
	     int sample_every, struct hist *h, double *batch_ns)
{
	uint64_t seq = 0, warm = rounds / 10, per;

	if (warm > 2000)
		warm = 2000;
	if (warm < 1)
		warm = 1;
	for (uint64_t i = 0; i < warm; i++)
		if (rt(arg, ++seq))
			return -1;
	if (nbatches < 1)
		nbatches = 1;
	per = rounds / (uint64_t)nbatches;
	if (per < 1)
		per = 1;
	for (int b = 0; b < nbatches; b++) {
		int64_t t0 = now_ns();
		for (uint64_t i = 0; i < per; i++) {
			if (i % (uint64_t)sample_every == 0) {
				int64_t t = now_ns();
				if (rt(arg, ++seq))
					return -1;
				hist_add(h, (now_ns() - t) / 2);
			} else if (rt(arg, ++seq)) {
				return -1;
			}
		}
		batch_ns[b] = (double)(now_ns() - t0) / (double)per / 2;
	}
	return 0;
}

struct pp_shared {
	double batch_ns[MAX_BATCHES];
	struct hist h;
};

struct pp {
	const struct transport *tp;
	struct chan_cfg cfg;
	void *ch[2];		/* [0]: A -> B, [1]: B -> A */
	uint64_t rounds;
	int nbatches, sample_every;
	struct pp_shared *sh;
	char desc[240];
};

struct pp_local {
	struct endpoint out, in;
	struct party *p;
	struct pp *s;
};

static int pp_setup(struct run *r)
{
	struct pp *s = r->scen;

	for (int i = 0; i < 2; i++) {
		int rc = s->tp->setup(&s->ch[i], &s->cfg, r->why, sizeof r->why);
		if (rc) {
			if (i)
				s->tp->teardown(s->ch[0], &s->cfg);
			return rc;
		}
		if (s->tp->prefault)
			s->tp->prefault(s->ch[i], &s->cfg);
	}
	if (s->tp->describe)
		s->tp->describe(s->ch[0], &s->cfg, r->sh->desc, sizeof r->sh->desc);
	return 0;
}

static void pp_teardown(struct run *r)
{
	struct pp *s = r->scen;

	for (int i = 0; i < 2; i++)
		s->tp->teardown(s->ch[i], &s->cfg);
}

static int ep_init(struct party *p, struct endpoint *ep, struct pp *s, void *ch, int role)
{
	ep->tp = s->tp;
	ep->ch = ch;
	ep->cfg = &s->cfg;
	ep->role = role;
	int rc = s->tp->open(ep, role);
	if (rc)
		party_fail(p, "open: %s", ep->err[0] ? ep->err : "failed");
	return rc;
}

static int pp_prep(struct party *p)
{
	struct pp *s = p->run->scen;
	struct pp_local *l = xcalloc(1, sizeof *l);
	int a = p->index == 0;

	p->local = l;
	l->p = p;
	l->s = s;
	/* A sends on ch[0] and receives on ch[1]; B the reverse. */
	int rc = ep_init(p, &l->out, s, s->ch[a ? 0 : 1], ROLE_PRODUCER);
	if (!rc)
		rc = ep_init(p, &l->in, s, s->ch[a ? 1 : 0], ROLE_CONSUMER);
	return rc;
}

static void pp_fini(struct party *p)
{
	struct pp_local *l = p->local;

	if (!l)
		return;
	if (l->out.tp)
		l->s->tp->close(&l->out);
	if (l->in.tp)
		l->s->tp->close(&l->in);
	free(l);
	p->local = NULL;
}

/* Receive one record, check it is the one expected. */
static int expect(struct pp_local *l, uint64_t tag, int *marker)
{
	const void *rec;
	char why[160];
	ssize_t n = recv_record(&l->in, &rec);

	if (n < 0) {
		party_fail(l->p, "receive: %s", l->in.err);
		return -1;
	}
	if (n >= 8 && rec_tag(rec) == MARKER_TAG && marker) {
		*marker = 1;
		return l->s->tp->recv_end(&l->in);
	}
	if (n < 8 || rec_tag(rec) != tag) {
		party_fail(l->p, "expected tag %#llx, got %#llx (%zd bytes)", (unsigned long long)tag,
			   n >= 8 ? (unsigned long long)rec_tag(rec) : 0ULL, n);
		return -1;
	}
	if (rec_check(rec, (size_t)n, l->s->cfg.rec_size, why, sizeof why)) {
		party_fail(l->p, "%s", why);
		return -1;
	}
	if (l->s->tp->recv_end(&l->in)) {
		party_fail(l->p, "release: %s", l->in.err);
		return -1;
	}
	return 0;
}

static int send_one(struct pp_local *l, uint64_t tag)
{
	if (send_record(&l->out, l->s->cfg.rec_size, tag, 0) || ep_flush(&l->out)) {
		party_fail(l->p, "send: %s", l->out.err);
		return -1;
	}
	return 0;
}

static int rt_transport(void *arg, uint64_t seq)
{
	struct pp_local *l = arg;

	if (send_one(l, make_tag(0, seq)))
		return -1;
	return expect(l, make_tag(1, seq), NULL);
}

static int pp_main(struct party *p)
{
	struct pp_local *l = p->local;
	struct pp *s = l->s;

	if (p->index == 0) {
		int rc = pp_drive(rt_transport, l, s->rounds, s->nbatches, s->sample_every, &s->sh->h,
				  s->sh->batch_ns);
		if (rc)
			return rc;
		return send_one(l, MARKER_TAG);
	}
	for (uint64_t want = 1;; want++) {
		int marker = 0;
		if (expect(l, make_tag(0, want), &marker))
			return -1;
		if (marker)
			return 0;
		if (send_one(l, make_tag(1, want)))
			return -1;
	}
}

static const struct scen_ops pp_ops = {
	.setup = pp_setup,
	.teardown = pp_teardown,
	.prep = pp_prep,
	.main = pp_main,
	.fini = pp_fini,
};

static void lat_figs(struct meas *m)
{
	meas_finish(m);
	meas_fig(m, "one_way_ns", m->value);
	if (m->hist && m->hist->count) {
		meas_fig(m, "mean_ns", hist_mean(m->hist));
		meas_fig(m, "p50_ns", hist_quantile(m->hist, 0.50));
		meas_fig(m, "p99_ns", hist_quantile(m->hist, 0.99));
		meas_fig(m, "p999_ns", hist_quantile(m->hist, 0.999));
		meas_fig(m, "max_ns", (double)m->hist->max);
		meas_fig(m, "samples", (double)m->hist->count);
	}
}

/* padded: also the floor padded to shmring's round trip (padded_floor) */
static void pingpong_run(int spin, const char *note, int padded);

void sc_pingpong(int spin)
{
	pingpong_run(spin, NULL, 1);
}

/* Issue 12's event-fd comparison (default suite): a consumer in epoll_wait
 * on shmring_event_fd (the watcher), shmring_event_fd_direct (io_uring) and
 * a SOCK_SEQPACKET socket, blocking ping-pong, with the ring's spin 0 so
 * that every wait is a wake-up (the default spin covers a whole round trip
 * of this ping-pong, and would measure the spin). */
void sc_pingpong_event_fd(void)
{
	const struct transport *tps[] = { &tp_shmring_efd, &tp_shmring_efd_direct,
	                                  &tp_seqpacket_epoll };
	struct opts saved = g_opt;
	memcpy(g_opt.tps, tps, sizeof tps);
	g_opt.ntps = 3;
	g_opt.ring_spin = 0;
	pingpong_run(0, "event fds in epoll, ring spin 0", 0);
	g_opt = saved;
}

/* Issue 12's inline layout (default suite, before the 64-byte spinning
 * ping-pong, whose floor the targets take as the latest): 48-byte records,
 * the most a ring with the inline layout takes, over a ring of each layout. */
void sc_pingpong_inline(void)
{
	const struct transport *tps[] = { &tp_shmring, &tp_shmring_inline };
	struct opts saved = g_opt;
	memcpy(g_opt.tps, tps, sizeof tps);
	g_opt.ntps = 2;
	g_opt.lat_size = SHMRING_INLINE_MAX_RECORD;
	pingpong_run(1, "the split and the inline layout", 0);
	g_opt = saved;
}

/* Issue 12: the spinning ping-pong's p99.9 against exposure.  The floor
 * padded so that its round trip lasts as long as shmring's (its p50), run as
 * many reps, and the host's stalls counted; both go into the JSON and the
 * p99.9 target's detail (report.c).  NULL without a shmring row. */
static struct meas *padded_floor(struct meas **ms, int ntp, struct meas *fl, int nbatches)
{
	struct meas *ring = NULL, *pf;
	double per_sec, frac;

	for (int t = 0; t < ntp && !ring; t++)
		if (!strcmp(ms[t]->transport, "shmring") && !ms[t]->na && ms[t]->nrep)
			ring = ms[t];
	if (!ring || fl->na || !fl->nrep)
		return NULL;
	double pad = meas_get(ring, "p50_ns") - meas_get(fl, "p50_ns");
	if (!(pad > 0))
		pad = 0;
	/* The pad's own clock reads make it longer than asked: one short
	 * trial, and the pad corrected by what it overshot. */
	{
		struct hist *h = xcalloc(1, sizeof *h);
		double batch[MAX_BATCHES];
		char why[240];
		if (floor_pingpong(10000, 4, (int64_t)pad, h, batch, why, sizeof why) == 0 &&
		    h->count)
			pad -= hist_quantile(h, 0.50) - meas_get(ring, "p50_ns");
		free(h);
		if (!(pad > 0))
			pad = 0;
	}
	pf = meas_new(SC_PINGPONG_SPIN, "ref-padded-floor", 1, 1, 8, g_opt.pp_spin);
	pf->is_floor = 3;
	pf->hist = xcalloc(1, sizeof *pf->hist);
	for (int rep = 0; rep < g_opt.reps; rep++) {
		double batch[MAX_BATCHES];
		char why[240];
		progress("ping-pong spinning: floor padded by %.0f ns, rep %d/%d", pad, rep + 1,
			 g_opt.reps);
		pf->reps++;
		if (floor_pingpong(g_opt.pp_spin, nbatches, (int64_t)pad, pf->hist, batch, why,
				   sizeof why)) {
			pf->ok = 0;
			snprintf(pf->note, sizeof pf->note, "%s", why);
			pf->rep[pf->nrep++] = 0;
		} else {
			pf->rep[pf->nrep++] = median_of(batch, nbatches);
		}
	}
	lat_figs(pf);
	meas_fig(pf, "pad_ns", pad);
	pf->x_floor = rep_ratio(pf, fl);
	snprintf(pf->desc, sizeof pf->desc,
		 "the cache-line ping-pong, each side busy-waiting %.0f ns before it answers "
		 "(shmring's p50 one-way minus the floor's)", pad);
	if (floor_host_stalls(1.0, &per_sec, &frac) == 0) {
		meas_fig(pf, "host_stalls_per_s", per_sec);
		meas_fig(pf, "host_stolen_frac", frac);
	}
	return pf;
}

static void pingpong_run(int spin, const char *note, int padded)
{
	enum scen sc = spin ? SC_PINGPONG_SPIN : SC_PINGPONG_BLOCK;
	int ntp = g_opt.ntps, ipipe = -1;
	uint64_t rounds = spin ? g_opt.pp_spin : g_opt.pp_block;
	int nbatches = 50, sample_every = spin ? 16 : 1;
	size_t size = g_opt.lat_size;
	struct meas *ms[20], *fl;
	struct pp s[20];
	char title[200], sz[32];

	fl = meas_new(sc, "floor", 1, 1, 8, rounds);
	fl->hist = xcalloc(1, sizeof *fl->hist);
	for (int t = 0; t < ntp; t++) {
		const struct transport *tp = g_opt.tps[t];
		ms[t] = meas_new(sc, tp->name, 1, 1, size, rounds);
		ms[t]->hist = xcalloc(1, sizeof *ms[t]->hist);
		if (tp == &tp_pipe)
			ipipe = t;
		memset(&s[t], 0, sizeof s[t]);
		s[t].tp = tp;
		s[t].cfg = (struct chan_cfg){ .rec_size = size,
					      .queue_bytes = g_opt.queue_bytes > 4 * size
								     ? g_opt.queue_bytes : 4 * size,
					      .producers = 1, .consumers = 1, .nonblock = spin,
					      .pipe_exact = g_opt.pipe_exact };
		s[t].rounds = rounds;
		s[t].nbatches = nbatches;
		s[t].sample_every = sample_every;
		s[t].sh = shared_alloc(sizeof *s[t].sh);
	}
	fmt_size(size, sz, sizeof sz);
	for (int rep = 0; rep < g_opt.reps; rep++) {
		double batch[MAX_BATCHES];
		char why[240];
		progress("ping-pong %s: floor, rep %d/%d", spin ? "spinning" : "blocking", rep + 1,
			 g_opt.reps);
		fl->reps++;
		int rc = floor_pingpong(g_opt.pp_spin, nbatches, 0, fl->hist, batch, why, sizeof why);
		if (rc == 1) {
			fl->na = 1;
			snprintf(fl->note, sizeof fl->note, "%s", why);
		} else if (rc) {
			fl->ok = 0;
			snprintf(fl->note, sizeof fl->note, "%s", why);
			fl->rep[fl->nrep++] = 0;
		} else {
			fl->rep[fl->nrep++] = median_of(batch, nbatches);
		}
		for (int t = 0; t < ntp; t++) {
			struct meas *m = ms[t];
			struct run r = { 0 };
			if (m->na)
				continue;
			m->reps++;
			if (spin && g_ncpus < 2) {
				m->na = 1;
				snprintf(m->note, sizeof m->note,
					 "spinning needs 2 CPUs (two spinners on one CPU measure the scheduler)");
				continue;
			}
			progress("ping-pong %s %s: %s, rep %d/%d", spin ? "spinning" : "blocking", sz,
				 s[t].tp->name, rep + 1, g_opt.reps);
			memset(s[t].sh, 0, sizeof *s[t].sh);
			r.tp = s[t].tp;
			r.ops = &pp_ops;
			r.nparties = 2;
			r.inproc = !!(s[t].tp->flags & TP_INPROC);
			r.scen = &s[t];
			r.timeout_ns = g_opt.run_timeout_ns;
			run_default_pins(&r, 2);
			rc = run_parties(&r);
			if (!s[t].desc[0] && r.sh->desc[0])
				snprintf(s[t].desc, sizeof s[t].desc, "%s", r.sh->desc);
			if (!meas_rep_ok(m, &r, rc, 1))
				continue;
			m->rep[m->nrep++] = median_of(s[t].sh->batch_ns, nbatches);
			hist_merge(m->hist, &s[t].sh->h);
			m->cpu_ns += r.cpu_ns;
			m->records_total += 2 * rounds;
		}
		progress_step();
	}
	lat_figs(fl);
	for (int t = 0; t < ntp; t++) {
		lat_figs(ms[t]);
		snprintf(ms[t]->desc, sizeof ms[t]->desc, "%s", s[t].desc);
		ms[t]->x_pipe = ipipe >= 0 ? rep_ratio(ms[t], ms[ipipe]) : NAN;
		ms[t]->x_floor = rep_ratio(ms[t], fl);
		shared_free(s[t].sh, sizeof *s[t].sh);
	}
	fl->x_pipe = ipipe >= 0 ? rep_ratio(fl, ms[ipipe]) : NAN;
	fl->x_floor = 1;

	struct meas *rows[22];
	int n = 0;
	for (int t = 0; t < ntp; t++)
		rows[n++] = ms[t];
	rows[n++] = fl;
	if (spin && padded) {
		struct meas *pf = padded_floor(ms, ntp, fl, nbatches);
		if (pf) {
			pf->x_pipe = ipipe >= 0 ? rep_ratio(pf, ms[ipipe]) : NAN;
			rows[n++] = pf;
		}
	}
	snprintf(title, sizeof title,
		 "ping-pong, %s%s%s, %s records: one-way = round trip / 2, %llu round trips per "
		 "run, median of %d runs",
		 spin ? "spinning (non-blocking calls, retried)" : "blocking (each transport's own wait)",
		 note ? ", " : "", note ? note : "", sz, (unsigned long long)rounds, g_opt.reps);
	report_table(sc, rows, n, title);
}
