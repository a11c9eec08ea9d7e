/* verify.c - stress_procs: the end: every committed record delivered once, the counters add up (stress_procs.h). */
#include "../stress_procs.h"

/* ---- the parent: the end ------------------------------------------------------------ */

int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool is_maybe(uint64_t id)
{
	return nmaybe && bsearch(&id, maybe_ids, nmaybe, sizeof *maybe_ids, cmp_u64) != NULL;
}

/* Every id: committed (put returned success) and delivered (tagged) agree;
 * returns how many committed ids were never delivered. */
static uint64_t verify_ids(struct verdict *v)
{
	if (nmaybe)
		qsort(maybe_ids, nmaybe, sizeof *maybe_ids, cmp_u64);
	uint64_t blocks = atomic_load(&sh->next_block);
	if (blocks > ids_cap / BLOCK_IDS)
		blocks = ids_cap / BLOCK_IDS;
	uint64_t never_put = 0, shown = 0, undelivered = 0;
	for (uint64_t b = 0; b < blocks; b++) {
		uint32_t own = LD(owner[b]);
		if (!own)
			continue;
		for (uint64_t id = b * BLOCK_IDS; id < (b + 1) * BLOCK_IDS; id++) {
			bool c = LD(committed[id / 64]) >> (id % 64) & 1;
			bool t = LD(tags[id]) != 0;
			if (!c && !t)
				continue;
			bool m = !c && is_maybe(id);
			v->put_records += c;
			if (t)
				v->records++;
			if (t && !c && !m) {
				never_put++;
				if (shown++ < 5)
					violation("record id %llu (producer incarnation %u) delivered, but "
						  "its put never returned success (aborted, failed, or "
						  "reserved only)", (unsigned long long)id, own - 1);
			}
			if (c && !t) {
				undelivered++;
				if (opt.verbose && undelivered <= 5)
					fprintf(stderr, NAME ": undelivered: id %llu (producer "
						"incarnation %u)\n", (unsigned long long)id, own - 1);
			}
			if (m)
				v->maybe_delivered += t;
		}
	}
	for (size_t i = 0; i < nmaybe; i++) {
		uint64_t id = maybe_ids[i];
		if (!(LD(tags[id]) || (LD(committed[id / 64]) >> (id % 64) & 1)))
			v->maybe_undelivered++;
	}
	if (never_put > 5)
		violation("%llu records delivered whose put never returned success",
			  (unsigned long long)never_put);
	return undelivered;
}

/* Tiny records, counted per length; sets undelivered_min..max. */
static void verify_tiny(struct verdict *v, uint64_t undelivered)
{
	uint64_t tmin = 0, tmax = 0;
	for (int l = 0; l < NTINY; l++) {
		uint64_t put = 0, got = 0;
		for (uint32_t i = 0; i < next_inc[PROD]; i++)
			put += LD(sh->pinc[i].tiny[l]);
		for (uint32_t i = 0; i < next_inc[CONS]; i++)
			got += LD(sh->cinc[i].tiny[l]);
		v->records += got;
		v->put_records += put;
		if (got > put + maybe_tiny[l])
			violation("%d-byte records: %llu delivered, only %llu put (+%llu in flight "
				  "at a producer's death)", l, (unsigned long long)got,
				  (unsigned long long)put, (unsigned long long)maybe_tiny[l]);
		if (put > got)
			tmin += put - got;
		if (put + maybe_tiny[l] > got)
			tmax += put + maybe_tiny[l] - got;
	}
	v->undelivered_min = undelivered + tmin;
	v->undelivered_max = undelivered + tmax;
}

/* The deaths: every lost record and recovered claim attributed. */
static void verify_deaths(const struct shmring_info *info, struct verdict *v)
{
	for (size_t i = 0; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		if (d->kind == PROD) {
			v->recovered_sum += (uint64_t)d->delta;
			continue;
		}
		v->lost_sum += (uint64_t)d->delta;
		if (d->state == C_CALL) {
			v->window_max += d->max_n;
			v->lost_in_calls += (uint64_t)d->delta;
		} else {
			v->lost_holding += (uint64_t)d->delta;
		}
	}
	if (v->recovered_sum != info->recovered_claims)
		violation("recovered_claims is %llu; the reaps of killed producers added %llu",
			  (unsigned long long)info->recovered_claims,
			  (unsigned long long)v->recovered_sum);
	if (v->lost_sum != info->lost_records)
		violation("lost_records is %llu; the reaps of killed consumers added %llu",
			  (unsigned long long)info->lost_records, (unsigned long long)v->lost_sum);
	/* Every committed record not delivered was taken by a consumer killed in
	 * a call, before it could record it: at most max_n per such death. */
	if (v->undelivered_min > v->window_max)
		violation("%llu records whose put succeeded were never delivered; consumers killed "
			  "inside a take could have taken at most %llu",
			  (unsigned long long)v->undelivered_min, (unsigned long long)v->window_max);
	/* Every record the ring counts as lost in such a call is one of them. */
	if (v->lost_in_calls > v->undelivered_max + v->maybe_undelivered)
		violation("the ring lost %llu records to consumers killed inside a take, but only "
			  "%llu records are missing", (unsigned long long)v->lost_in_calls,
			  (unsigned long long)(v->undelivered_max + v->maybe_undelivered));
}

/* The ring's own ledger agrees with the account. */
static void verify_ledger(const struct shmring_info *info, struct verdict *v)
{
	/* The ring's own ledger: every put adds a join task before it publishes,
	 * nobody calls task_done, and a reap forgives the tasks of records it
	 * loses (and of counted records it never saw published).  So, drained,
	 * unfinished + lost_records = records published = records taken, and
	 * T = records taken by consumers killed inside a call before they
	 * recorded them (the ring lost L_call of those; it released the rest). */
	int64_t T = (int64_t)(info->unfinished + info->lost_records) - (int64_t)v->records;
	v->taken_unrecorded = T;
	if (T < (int64_t)v->undelivered_min || T > (int64_t)(v->undelivered_max + v->maybe_undelivered) ||
	    T < (int64_t)v->lost_in_calls || T > (int64_t)v->window_max)
		violation("join ledger: unfinished %llu + lost_records %llu - delivered %llu = %lld "
			  "records taken and never recorded; expected %llu..%llu (missing records), "
			  "%llu..%llu (lost in a take .. most a killed take could hold)",
			  (unsigned long long)info->unfinished, (unsigned long long)info->lost_records,
			  (unsigned long long)v->records, (long long)T,
			  (unsigned long long)v->undelivered_min,
			  (unsigned long long)(v->undelivered_max + v->maybe_undelivered),
			  (unsigned long long)v->lost_in_calls, (unsigned long long)v->window_max);
}

void verify(const struct shmring_info *info, struct verdict *v)
{
	memset(v, 0, sizeof *v);
	verify_tiny(v, verify_ids(v));
	for (uint32_t i = 0; i < next_inc[CONS]; i++)
		v->bytes += LD(sh->cinc[i].bytes);
	verify_deaths(info, v);
	verify_ledger(info, v);
}
