/*
 * sc_throughput.c - P producers x C consumers, a fixed number of records of
 * one size, every record checked.
 *
 * The count is the same for every transport of a point.  Producer i sends
 * its share with its own sequence numbers; the last producer to finish sends
 * one marker record per consumer (all data is ahead of the markers in every
 * FIFO here), and each consumer stops at its first marker (one that took
 * other consumers' markers in the same batch sends them on; the last
 * producer stays until every consumer has stopped, so that none sees the
 * end of the stream first).  A consumer checks
 * each record's length, pattern and that each producer's sequence only grows
 * (exactly +1 with one consumer); the parent then checks that each producer's
 * records arrived exactly once (count and a sum of hashes of the tags).
 *
 * Time: from the first producer's start (after the gate) to the last
 * consumer's marker.  CPU: user+sys of every party (wait4), per record.
 * The floor rows: memcpy of the same record size in one process (the "x
 * floor" column), and at 1x1 a reference row, a bare SPSC ring between two
 * processes with the same fill and check (floor.c).
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tput_shared {
	uint64_t cnt[MAX_PARTIES][MAX_PARTIES];	/* [consumer][producer] */
	uint64_t hsum[MAX_PARTIES][MAX_PARTIES];
};

struct tput {
	struct channel chan;	/* first: the channel_scen_* ops use it */
	uint64_t count;
	int P, C;
	struct tput_shared *sh;
	char desc[240];
};

static uint64_t share(uint64_t count, int parts, int i)
{
	return count / (uint64_t)parts + ((uint64_t)i < count % (uint64_t)parts);
}

static int any_party_failed(const struct run *r)
{
	for (int i = 0; i < r->nparties; i++)
		if (r->sh->out[i].failed)
			return 1;
	return 0;
}

static int producer(struct party *p, struct tput *s, struct endpoint *ep)
{
	struct party_out *o = party_out(p);
	uint64_t n = share(s->count, s->P, p->index);
	size_t size = s->chan.cfg.rec_size;
	int rc;

	o->t_begin = now_ns();
	for (uint64_t seq = 0; seq < n; seq++) {
		uint64_t tag = make_tag((unsigned)p->index, seq);
		rc = send_record(ep, rec_len(&s->chan.cfg, tag), tag, (int64_t)seq);
		if (rc) {
			party_fail(p, "send record %llu: %s", (unsigned long long)seq, ep->err);
			return rc;
		}
	}
	rc = ep_flush(ep);
	o->t_end = now_ns();
	o->records = n;
	if (rc) {
		party_fail(p, "flush: %s", ep->err);
		return rc;
	}
	if (atomic_fetch_sub(&p->run->sh->producers_left, 1) == 1) {
		for (int c = 0; c < s->C; c++) {
			rc = send_record(ep, size, MARKER_TAG, 0);
			if (rc) {
				party_fail(p, "send marker: %s", ep->err);
				return rc;
			}
		}
		rc = ep_flush(ep);
		/* Stay a producer until every consumer has stopped: a consumer
		 * that took another's marker in its batch sends it on, and
		 * until then the ring is empty; with no producer left, the
		 * consumer still waiting would see the end of the stream
		 * (-EPIPE) instead of its marker (seen once at 4x4 with
		 * shmring-batch, 2026-12-05).  Asleep (a latch), so that the
		 * wait takes no CPU from the consumers; a party that failed
		 * ends it (the run has failed). */
		while (!rc && shmring_latch_wait(&p->run->sh->consumers_left, 100000000) != 0 &&
		       !any_party_failed(p->run))
			;
	}
	return rc;
}

/* A consumer that takes records in batches can take another consumer's
 * marker along with its own (all records behind the first marker are
 * markers): it sends those on, through an endpoint of its own. */
static int forward_markers(struct party *p, struct tput *s, struct endpoint *ep)
{
	int extra = 0, rc = 0;

	while (s->chan.tp->buffered && s->chan.tp->buffered(ep) > 0) {
		const void *rec;
		ssize_t n = recv_record(ep, &rec);
		if (n < 8 || rec_tag(rec) != MARKER_TAG) {
			party_fail(p, "a record after the end marker");
			return -1;
		}
		s->chan.tp->recv_end(ep);
		extra++;
	}
	if (!extra)
		return 0;
	struct endpoint out = { .tp = s->chan.tp, .ch = s->chan.ch, .cfg = &s->chan.cfg, .role = ROLE_PRODUCER };
	rc = s->chan.tp->open(&out, ROLE_PRODUCER);
	for (int i = 0; i < extra && !rc; i++)
		rc = send_record(&out, s->chan.cfg.rec_size, MARKER_TAG, 0);
	if (!rc)
		rc = ep_flush(&out);
	if (rc)
		party_fail(p, "forward markers: %s", out.err);
	s->chan.tp->close(&out);
	return rc;
}

static int consumer(struct party *p, struct tput *s, struct endpoint *ep)
{
	struct party_out *o = party_out(p);
	int ci = p->index - s->P;
	uint64_t next[MAX_PARTIES] = { 0 }, cnt[MAX_PARTIES] = { 0 }, hsum[MAX_PARTIES] = { 0 };
	uint64_t total = 0;
	char why[160];

	o->t_begin = now_ns();
	for (;;) {
		const void *rec;
		ssize_t n = recv_record(ep, &rec);
		if (n < 0) {
			party_fail(p, "receive after %llu records: %s", (unsigned long long)total,
				   ep->err);
			return (int)n;
		}
		if (!total)
			o->t_first = now_ns();
		if ((size_t)n < 8) {
			party_fail(p, "short record (%zd bytes)", n);
			return -1;
		}
		uint64_t tag = rec_tag(rec);
		if (tag == MARKER_TAG) {
			s->chan.tp->recv_end(ep);
			if (forward_markers(p, s, ep))
				return -1;
			break;
		}
		unsigned prod = (unsigned)(tag >> SEQ_BITS);
		uint64_t seq = tag & SEQ_MASK;
		if (prod >= (unsigned)s->P) {
			party_fail(p, "record from unknown producer %u", prod);
			return -1;
		}
		if (s->C == 1 ? seq != next[prod] : seq < next[prod]) {
			party_fail(p, "producer %u: got sequence %llu, expected %s%llu", prod,
				   (unsigned long long)seq, s->C == 1 ? "" : "at least ",
				   (unsigned long long)next[prod]);
			return -1;
		}
		if (rec_check(rec, (size_t)n, rec_len(&s->chan.cfg, tag), why, sizeof why)) {
			party_fail(p, "%s", why);
			return -1;
		}
		next[prod] = seq + 1;
		cnt[prod]++;
		hsum[prod] += mix64(tag);
		total++;
		int rc = s->chan.tp->recv_end(ep);
		if (rc) {
			party_fail(p, "release: %s", ep->err);
			return rc;
		}
	}
	o->t_end = now_ns();
	o->records = total;
	for (int i = 0; i < s->P; i++) {
		s->sh->cnt[ci][i] = cnt[i];
		s->sh->hsum[ci][i] = hsum[i];
	}
	return 0;
}

static int tput_main(struct party *p)
{
	struct tput *s = p->run->scen;
	return p->role == ROLE_PRODUCER ? producer(p, s, p->local) : consumer(p, s, p->local);
}

/* Every party's end, after a failed prep too: a consumer has stopped. */
static void tput_fini(struct party *p)
{
	endpoint_close(p);
	if (p->role != ROLE_PRODUCER)
		shmring_latch_arrive(&p->run->sh->consumers_left);
}

static const struct scen_ops tput_ops = {
	.setup = channel_scen_setup,
	.teardown = channel_scen_teardown,
	.prep = channel_scen_prep,
	.main = tput_main,
	.fini = tput_fini,
};

/* Every producer's records arrived exactly once? */
static int tput_verify(struct tput *s, char *why, size_t len)
{
	for (int i = 0; i < s->P; i++) {
		uint64_t n = share(s->count, s->P, i), got = 0, h = 0, want = 0;
		for (int c = 0; c < s->C; c++) {
			got += s->sh->cnt[c][i];
			h += s->sh->hsum[c][i];
		}
		for (uint64_t q = 0; q < n; q++)
			want += mix64(make_tag((unsigned)i, q));
		if (got != n || h != want) {
			snprintf(why, len, "producer %d: %llu of %llu records arrived%s", i,
				 (unsigned long long)got, (unsigned long long)n,
				 got == n ? " but not each exactly once" : "");
			return -1;
		}
	}
	return 0;
}

uint64_t throughput_count(size_t size, int P, int C)
{
	uint64_t n;

	(void)C;
	if (g_opt.count)
		return g_opt.count;
	/* 64 MiB of records, from 100 to 100000 records (a quarter with
	 * --quick): at 64 B, 100000 records take the slowest transports (the
	 * socketpair, POSIX mq) about half a second on the reference machine. */
	n = (uint64_t)((64u << 20) / size);
	if (n > 100000)
		n = 100000;
	if (n < 100)
		n = 100;
	/* More parties than usable CPUs: four times as many.  The gate
	 * opens for all at once, but the scheduler starts the last of 8
	 * parties on 2 CPUs 6-12 ms after the first (traced), and every
	 * producer must still send its share: a 100000-record 4x4 run of
	 * shmring (15-24 ms) measured mostly that start (docs/perf.md,
	 * "2026-12-05, seventh session"). */
	if (P + C > g_ncpus)
		n *= 4;
	if (g_opt.quick)
		n = n / 4 < 50 ? 50 : n / 4;
	if (n < (uint64_t)P)
		n = (uint64_t)P;
	return n;
}

/* One point: P x C at record size `size`, or (rec_min > 0) at sizes from
 * rec_min to size; the transports of -t, or of those only the ones named in
 * `only` (NULL: all). */
static void tput_point(struct pc pc, size_t size, size_t rec_min, const char *const *only)
{
	int ntp = g_opt.ntps;
	struct meas *ms[20], *fl;
	struct tput s[20];
	uint64_t count = throughput_count(size, pc.P, pc.C);
	char title[200], sz[32];
	int ipipe = -1;

	if (pc.P + pc.C > MAX_PARTIES || pc.P < 1 || pc.C < 1) {
		fprintf(stderr, "shmring-bench: %dx%d: at most %d parties\n", pc.P, pc.C, MAX_PARTIES);
		return;
	}
	/* the floor: memcpy of the mean record size */
	size_t mean = rec_min ? (rec_min + size) / 2 : size;
	fl = meas_new(SC_THROUGHPUT, "floor", pc.P, pc.C, size, count);
	/* 1x1: also the bare SPSC ring (floor.c), a reference for moving
	 * records between two cores */
	struct meas *sp = NULL;
	if (pc.P == 1 && pc.C == 1 && !rec_min) {
		sp = meas_new(SC_THROUGHPUT, "ref-spsc", 1, 1, size, count);
		sp->is_floor = 2;
	}
	const struct transport *tps[20];
	ntp = 0;
	for (int t = 0; t < g_opt.ntps && ntp < 20; t++) {
		int take = !only;
		for (int k = 0; only && only[k]; k++)
			take |= !strcmp(only[k], g_opt.tps[t]->name);
		if (take)
			tps[ntp++] = g_opt.tps[t];
	}
	for (int t = 0; t < ntp; t++) {
		const struct transport *tp = tps[t];
		ms[t] = meas_new(SC_THROUGHPUT, tp->name, pc.P, pc.C, size, count);
		if (tp == &tp_pipe)
			ipipe = t;
		memset(&s[t], 0, sizeof s[t]);
		s[t].chan.tp = tp;
		s[t].count = count;
		s[t].P = pc.P;
		s[t].C = pc.C;
		s[t].chan.cfg = (struct chan_cfg){ .rec_size = size, .rec_min = rec_min,
					      .queue_bytes = g_opt.queue_bytes > 4 * size
								     ? g_opt.queue_bytes : 4 * size,
					      .producers = pc.P, .consumers = pc.C,
					      .pipe_exact = g_opt.pipe_exact };
		s[t].sh = shared_alloc(sizeof *s[t].sh);
	}
	fmt_size(size, sz, sizeof sz);
	if (rec_min) {
		char lo[32];
		fmt_size(rec_min, lo, sizeof lo);
		char range[72];
		snprintf(range, sizeof range, "%s-%s", lo, sz);
		snprintf(sz, sizeof sz, "%.31s", range);
	}
	for (int rep = 0; rep < g_opt.reps; rep++) {
		/* the floor, then every transport: round-robin over reps */
		double bps = floor_memcpy_bps(mean);
		fl->rep[fl->nrep++] = bps / (double)mean;
		fl->reps++;
		if (sp && !sp->na) {
			char why[240];
			progress("throughput 1x1 %s: bare SPSC ring (reference), rep %d/%d", sz, rep + 1,
				 g_opt.reps);
			double rate = floor_spsc(size, count, s[0].chan.cfg.queue_bytes, why, sizeof why);
			sp->reps++;
			if (rate < 0 && g_ncpus < 2) {
				sp->na = 1;
				snprintf(sp->note, sizeof sp->note, "%s", why);
			} else if (rate < 0) {
				sp->ok = 0;
				snprintf(sp->note, sizeof sp->note, "%s", why);
				sp->rep[sp->nrep++] = 0;
			} else {
				sp->rep[sp->nrep++] = rate;
				sp->records_total += count;
			}
		}
		for (int t = 0; t < ntp; t++) {
			struct meas *m = ms[t];
			struct run r = { 0 };
			if (m->na)
				continue;
			progress("throughput %dx%d %s: %s, rep %d/%d", pc.P, pc.C, sz, s[t].chan.tp->name,
				 rep + 1, g_opt.reps);
			memset(s[t].sh, 0, sizeof *s[t].sh);
			r.tp = s[t].chan.tp;
			r.ops = &tput_ops;
			r.nparties = pc.P + pc.C;
			r.inproc = !!(s[t].chan.tp->flags & TP_INPROC);
			r.scen = &s[t];
			r.timeout_ns = g_opt.run_timeout_ns;
			run_default_pins(&r, r.nparties);
			for (int i = 0; i < r.nparties; i++)
				r.role[i] = i < pc.P ? ROLE_PRODUCER : ROLE_CONSUMER;
			r.producers = pc.P;
			int rc = run_parties(&r);
			m->reps++;
			if (!s[t].desc[0] && r.sh->desc[0])
				snprintf(s[t].desc, sizeof s[t].desc, "%s", r.sh->desc);
			if (r.na) {
				m->na = 1;
				snprintf(m->note, sizeof m->note, "%s", r.why);
				continue;
			}
			char why[240];
			if (rc == 0 && tput_verify(&s[t], why, sizeof why) != 0) {
				rc = -1;
				snprintf(r.why, sizeof r.why, "%s", why);
			}
			if (rc) {
				m->ok = 0;
				snprintf(m->note, sizeof m->note, "%s", r.why);
				m->rep[m->nrep++] = 0;
				continue;
			}
			int64_t t0 = INT64_MAX, t1 = 0;
			for (int i = 0; i < r.nparties; i++) {
				struct party_out *o = &r.sh->out[i];
				if (i < pc.P && o->t_begin < t0)
					t0 = o->t_begin;
				if (i >= pc.P && o->t_end > t1)
					t1 = o->t_end;
			}
			double secs = (double)(t1 - t0) / 1e9;
			m->rep[m->nrep++] = secs > 0 ? (double)count / secs : 0;
			m->secs += secs;
			m->cpu_ns += r.cpu_ns;
			m->records_total += count;
		}
		progress_step();
	}
	meas_finish(fl);
	snprintf(fl->desc, sizeof fl->desc,
		 "memcpy of one record-sized buffer, hot in cache, one core; best of 3 x 10 ms");
	meas_fig(fl, "records_per_s", fl->value);
	meas_fig(fl, "bytes_per_s", fl->value * (double)mean);
	for (int t = 0; t < ntp; t++) {
		struct meas *m = ms[t];
		meas_finish(m);
		snprintf(m->desc, sizeof m->desc, "%s", s[t].desc);
		meas_fig(m, "records_per_s", m->value);
		meas_fig(m, "bytes_per_s", m->value * (double)mean);
		if (rec_min)
			meas_fig(m, "record_bytes_min", (double)rec_min);
		if (m->records_total)
			meas_fig(m, "cpu_ns_per_record", (double)m->cpu_ns / (double)m->records_total);
		meas_fig(m, "seconds", m->secs);
		m->x_floor = rep_ratio(m, fl);
		m->x_pipe = ipipe >= 0 ? rep_ratio(m, ms[ipipe]) : NAN;
		shared_free(s[t].sh, sizeof *s[t].sh);
	}
	fl->x_pipe = ipipe >= 0 ? rep_ratio(fl, ms[ipipe]) : NAN;
	fl->x_floor = 1;
	if (sp) {
		meas_finish(sp);
		meas_fig(sp, "records_per_s", sp->value);
		meas_fig(sp, "bytes_per_s", sp->value * (double)size);
		sp->x_floor = rep_ratio(sp, fl);
		sp->x_pipe = ipipe >= 0 ? rep_ratio(sp, ms[ipipe]) : NAN;
		snprintf(sp->desc, sizeof sp->desc,
			 "fixed slots, head/tail on their own lines, cached indices, spinning");
	}

	struct meas *rows[22];
	int n = 0;
	for (int t = 0; t < ntp; t++)
		rows[n++] = ms[t];
	if (sp)
		rows[n++] = sp;
	rows[n++] = fl;
	snprintf(title, sizeof title,
		 "throughput %dx%d, %s records: %llu records per run, median of %d runs (x: per-run ratio)",
		 pc.P, pc.C, sz, (unsigned long long)count, g_opt.reps);
	report_table(SC_THROUGHPUT, rows, n, title);
}

void sc_throughput(struct pc pc, size_t size)
{
	tput_point(pc, size, 0, NULL);
}

/* Issue 12's inline layout (default suite): 1x1 at 48 bytes, the most a ring
 * with the inline layout takes, over a ring of each layout (and the bare
 * SPSC ring, as at every 1x1 point). */
void sc_throughput_inline(void)
{
	const struct transport *tps[] = { &tp_shmring, &tp_shmring_inline };
	struct opts saved = g_opt;
	memcpy(g_opt.tps, tps, sizeof tps);
	g_opt.ntps = 2;
	sc_throughput((struct pc){ 1, 1 }, SHMRING_INLINE_MAX_RECORD);
	g_opt = saved;
}

void sc_telemetry(void)
{
	static const char *const only[] = { "shmring", "shmring-batch", "shmring-light", "pipe",
	                                    "mutex-ring", NULL };
	tput_point((struct pc){ TELEM_P, 1 }, TELEM_MAX, TELEM_MIN, only);
}
