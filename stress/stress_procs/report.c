/* report.c - stress_procs: the summary lines (calls, accounting, recovery
 * times, the ring's counters) and each slow recovery with -v (stress_procs.h). */
#include "../stress_procs.h"

static int cmp_ns(const void *a, const void *b)
{
	return cmp_u64(a, b);
}

/* max and median (ms) of one per-death figure */
static void stats_ms(int which, double *mx, double *med, size_t *n)
{
	uint64_t *v = malloc((ndeaths + 1) * sizeof *v);
	size_t m = 0;
	if (!v)
		abort();
	for (size_t i = 0; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		if (!d->reaped || !d->flowed)
			continue;
		v[m++] = which == 0 ? (d->reap_ns > d->flow_ns ? d->reap_ns : d->flow_ns)
				    : which == 1 ? d->reap_ns : d->flow_ns;
	}
	if (m)
		qsort(v, m, sizeof *v, cmp_ns);
	*mx = m ? (double)v[m - 1] / 1e6 : 0;
	*med = m ? (double)v[m / 2] / 1e6 : 0;
	*n = m;
	free(v);
}

/* The summary lines before the verdict; returns the longest recovery (ms). */
double report(const struct shmring_info *info, const struct verdict *v, uint64_t t_start,
	      uint64_t gap_max)
{
	uint64_t pc[N_PO] = { 0 }, cc[N_CO] = { 0 }, p_eagain = 0, p_to = 0, c_eagain = 0,
		 c_to = 0, c_emsg = 0, shorts = 0;
	for (uint32_t i = 0; i < next_inc[PROD]; i++) {
		for (int o = 0; o < N_PO; o++)
			pc[o] += LD(sh->pinc[i].calls[o]);
		p_eagain += LD(sh->pinc[i].eagain);
		p_to += LD(sh->pinc[i].etimedout);
		shorts += LD(sh->pinc[i].short_commits);
	}
	for (uint32_t i = 0; i < next_inc[CONS]; i++) {
		for (int o = 0; o < N_CO; o++)
			cc[o] += LD(sh->cinc[i].calls[o]);
		c_eagain += LD(sh->cinc[i].eagain);
		c_to += LD(sh->cinc[i].etimedout);
		c_emsg += LD(sh->cinc[i].emsgsize);
	}
	double rmax, rmed, pmax, pmed, fmax, fmed;
	size_t nrec;
	stats_ms(0, &rmax, &rmed, &nrec);
	stats_ms(1, &pmax, &pmed, &nrec);
	stats_ms(2, &fmax, &fmed, &nrec);
	size_t over100 = 0;
	for (size_t i = 0; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		uint64_t r = d->reap_ns > d->flow_ns ? d->reap_ns : d->flow_ns;
		over100 += r > 100000000u;
		if (opt.verbose && r > 100000000u)
			fprintf(stderr, NAME ": slow recovery: kill #%zu at %.3f s, %s incarnation %u "
				"while %s (%s): reaped after %.1f ms, ring flowed after %.1f ms\n", i,
				(double)(d->t_kill - t_start) / 1e9, kind_name[d->kind], d->inc,
				d->kind == PROD ? pstate_name[d->state] : cstate_name[d->state],
				d->kind == PROD ? pop_name[d->op % N_PO] : cop_name[d->op % N_CO],
				(double)d->reap_ns / 1e6, (double)d->flow_ns / 1e6);
	}
	printf(NAME ": calls put %llu putv %llu put_many %llu commit %llu (shorter %llu) "
	       "abort %llu oversize %llu | get %llu get(small) %llu get_many %llu peek %llu "
	       "next_len %llu | eagain %llu/%llu etimedout %llu/%llu emsgsize(get) %llu\n",
	       (unsigned long long)pc[PO_PUT], (unsigned long long)pc[PO_PUTV],
	       (unsigned long long)pc[PO_PUT_MANY], (unsigned long long)pc[PO_COMMIT],
	       (unsigned long long)shorts, (unsigned long long)pc[PO_ABORT],
	       (unsigned long long)pc[PO_OVERSIZE], (unsigned long long)cc[CO_GET],
	       (unsigned long long)cc[CO_GET_SMALL], (unsigned long long)cc[CO_GET_MANY],
	       (unsigned long long)cc[CO_PEEK], (unsigned long long)cc[CO_NEXT_LEN],
	       (unsigned long long)p_eagain, (unsigned long long)c_eagain,
	       (unsigned long long)p_to, (unsigned long long)c_to, (unsigned long long)c_emsg);
	printf(NAME ": accounting put_ok=%llu delivered=%llu undelivered=%llu..%llu "
	       "inflight_at_death(delivered=%llu undelivered=%llu) lost_in_take=%llu "
	       "lost_holding_peek=%llu taken_unrecorded=%lld take_window_bound=%llu\n",
	       (unsigned long long)v->put_records, (unsigned long long)v->records,
	       (unsigned long long)v->undelivered_min, (unsigned long long)v->undelivered_max,
	       (unsigned long long)v->maybe_delivered, (unsigned long long)v->maybe_undelivered,
	       (unsigned long long)v->lost_in_calls, (unsigned long long)v->lost_holding,
	       (long long)v->taken_unrecorded, (unsigned long long)v->window_max);
	if (ndeaths)
		printf(NAME ": recovery_ms max %.1f median %.1f (reap max %.1f median %.1f; "
		       "flow max %.1f median %.1f) over %zu kills, %zu over 100 ms; "
		       "longest delivery gap %.1f ms\n", rmax, rmed, pmax, pmed, fmax, fmed, nrec,
		       over100, (double)gap_max / 1e6);
	printf(NAME ": info capacity=%zu max_record=%zu records=%zu bytes=%zu used=%zu closed=%d "
	       "eof=%d producers=%u consumers=%u unfinished=%llu recovered_claims=%llu "
	       "lost_records=%llu lost_tasks=%llu futex_waits=%llu futex_wakes=%llu\n",
	       info->capacity, info->max_record, info->records, info->bytes, info->used, info->closed,
	       info->eof, info->producers, info->consumers, (unsigned long long)info->unfinished,
	       (unsigned long long)info->recovered_claims, (unsigned long long)info->lost_records,
	       (unsigned long long)info->lost_tasks, (unsigned long long)info->futex_waits,
	       (unsigned long long)info->futex_wakes);
	if (atomic_load(&sh->ids_exhausted))
		printf(NAME ": note: the id space (%llu ids) ran out; producers stopped early\n",
		       (unsigned long long)ids_cap);

	return rmax;
}
