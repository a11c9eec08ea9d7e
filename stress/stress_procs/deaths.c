/* deaths.c - stress_procs: a killed child: its in-flight state resolved, the ring's counters attributed (stress_procs.h). */
#include "../stress_procs.h"

/* ---- the parent: deaths ------------------------------------------------------------ */

struct death *deaths;
size_t ndeaths;
static size_t cap_deaths;
int unreaped[2] = { -1, -1 };	/* per kind: the death whose reap we wait for */
size_t first_open;		/* deaths before it are all done */

/* In-flight records of producers killed mid-call: delivered once or never. */
uint64_t *maybe_ids;
size_t nmaybe;
static size_t cap_maybe;
uint64_t maybe_tiny[NTINY];
uint64_t kills[2];

static void add_maybe(uint64_t id)
{
	if (nmaybe == cap_maybe) {
		cap_maybe = cap_maybe ? cap_maybe * 2 : 1024;
		maybe_ids = realloc(maybe_ids, cap_maybe * sizeof *maybe_ids);
		if (!maybe_ids)
			abort();
	}
	maybe_ids[nmaybe++] = id;
}

/* A dead producer: what was in flight.  Returns the range of
 * recovered_claims its reap may add. */
static void resolve_producer(struct death *d)
{
	struct pinc *me = &sh->pinc[d->inc];
	uint32_t n = LD(me->n) > MAX_BATCH ? MAX_BATCH : LD(me->n);
	d->state = LD(me->state);
	d->op = LD(me->op);
	d->lo = 0;
	d->hi = 0;
	switch (d->state) {
	case P_IDLE:
		break;
	case P_CALL:		/* may have claimed (and even published): 0 or 1 skip */
		d->hi = 1;
		if (d->op == PO_RESERVE || d->op == PO_ABORT)
			break;	/* nothing deliverable: never committed */
		for (uint32_t i = 0; i < n; i++) {
			uint64_t key = LD(me->fl[i].key);
			if (key & TINY_KEY)
				maybe_tiny[key & 0xff]++;
			else
				add_maybe(key);
		}
		break;
	case P_RESERVED:	/* a reservation never committed: exactly one skip */
		d->lo = d->hi = 1;
		break;
	case P_RECORD: {	/* the call succeeded: finish the accounting */
		uint32_t k = LD(me->done_n) > n ? n : LD(me->done_n);
		uint64_t tiny[NTINY];
		for (int l = 0; l < NTINY; l++)
			tiny[l] = LD(me->tiny_snap[l]);
		for (uint32_t i = 0; i < k; i++) {
			uint64_t key = LD(me->fl[i].key);
			if (key & TINY_KEY)
				tiny[key & 0xff]++;
			else
				atomic_fetch_or(&committed[key / 64], UINT64_C(1) << (key % 64));
		}
		for (int l = 0; l < NTINY; l++)
			ST(me->tiny[l], tiny[l]);
		break;
	}
	}
}

/* A dead consumer: records it took and had started to record were taken
 * (delivered, to a consumer that then died): finish recording them. */
static void resolve_consumer(struct death *d)
{
	struct cinc *me = &sh->cinc[d->inc];
	d->state = LD(me->state);
	d->op = LD(me->op);
	d->max_n = LD(me->max_n);
	d->lo = 0;
	d->hi = 0;
	switch (d->state) {
	case C_IDLE:
	case C_NEXTLEN:
		return;			/* nothing taken: nothing lost */
	case C_CALL:			/* took up to max_n, recorded none */
		d->hi = d->max_n;
		return;
	case C_HOLD:			/* a peeked record, not released */
		d->lo = d->hi = 1;
		break;
	case C_RELEASING:		/* released, or not yet */
		d->hi = 1;
		break;
	case C_RECORD:			/* the call returned: all released */
		break;
	}
	uint32_t n = LD(me->n) > MAX_TAKE ? MAX_TAKE : LD(me->n);
	uint32_t applied = LD(me->applied);
	uint64_t tiny[NTINY], records = LD(me->records_snap), bytes = LD(me->bytes_snap);
	for (int l = 0; l < NTINY; l++)
		tiny[l] = LD(me->tiny_snap[l]);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key = LD(me->pend[i].key);
		if (key & BAD_KEY)
			continue;
		records++;
		bytes += LD(me->pend[i].len);
		if (key & TINY_KEY) {
			tiny[key & 0xff]++;
			continue;
		}
		if (i < applied)
			continue;		/* it recorded that one itself */
		uint8_t t = 0;
		if (atomic_compare_exchange_strong(&tags[key], &t, me->tag))
			continue;
		if (i == applied && t == me->tag)
			continue;		/* it had done the CAS, not the next store */
		violation("record id %llu delivered twice (consumer incarnation %u, killed "
			  "while recording it, and the consumer with tag %u)",
			  (unsigned long long)key, d->inc, t);
	}
	for (int l = 0; l < NTINY; l++)
		ST(me->tiny[l], tiny[l]);
	ST(me->records, records);
	ST(me->bytes, bytes);
}

static struct death *new_death(void)
{
	if (ndeaths == cap_deaths) {
		cap_deaths = cap_deaths ? cap_deaths * 2 : 256;
		deaths = realloc(deaths, cap_deaths * sizeof *deaths);
		if (!deaths)
			abort();
	}
	struct death *d = &deaths[ndeaths++];
	memset(d, 0, sizeof *d);
	return d;
}

uint64_t rng_parent;

/* Kill a random child of kind k (its replacement first), resolve it. */
int kill_one(enum kind k)
{
	int s = (int)(rnd(&rng_parent) % (uint64_t)(k == PROD ? opt.producers : opt.consumers));
	struct proc victim = slots[k][s];
	struct shmring_info info;
	if (next_inc[k] >= MAX_INC)
		return 0;		/* out of incarnations: no more kills of that kind */
	shmring_info(ring, &info);
	struct death *d = new_death();
	d->kind = k;
	d->inc = victim.inc;
	d->before = k == PROD ? info.recovered_claims : info.lost_records;
	/* the consumers that must see the ring flow again: those already there */
	for (int j = 0; j < opt.consumers; j++)
		if (slots[CONS][j].pid > 0 && !(k == CONS && j == s))
			d->waiting[d->nwaiting++] = slots[CONS][j].inc;
	alive[k]--;
	slots[k][s].pid = 0;
	victim_tag = k == CONS ? sh->cinc[victim.inc].tag : 0;
	int rc = spawn(k, s);		/* the replacement, into the same slot */
	victim_tag = 0;
	if (rc) {
		kill(victim.pid, SIGKILL);
		return rc;
	}
	d->t_kill = now_ns();
	d->kill_stamp = stamp_now();
	kill(victim.pid, SIGKILL);
	int st;
	while (waitpid(victim.pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		violation("%s incarnation %u: ended with status 0x%x before it was killed",
			  kind_name[k], victim.inc, st);
	if (k == PROD) {
		resolve_producer(d);
	} else {
		cinc_dead[victim.inc] = true;
		resolve_consumer(d);
	}
	unreaped[k] = (int)(d - deaths);
	kills[k]++;
	if (opt.verbose > 1)
		fprintf(stderr, NAME ": killed %s incarnation %u (pid %d) while %s (%s)\n",
			kind_name[k], victim.inc, victim.pid,
			k == PROD ? pstate_name[d->state] : cstate_name[d->state],
			k == PROD ? pop_name[d->op % N_PO] : cop_name[d->op % N_CO]);
	return 0;
}

/* Follow the deaths not yet recovered from.  Returns false on a timeout. */
bool track_deaths(const struct shmring_info *info, uint64_t now)
{
	bool ok = true;
	for (int k = 0; k < 2; k++) {
		if (unreaped[k] < 0)
			continue;
		struct death *d = &deaths[unreaped[k]];
		unsigned census = k == PROD ? info->producers : info->consumers;
		if (census > (unsigned)alive[k])
			continue;	/* its entry is still there */
		/* Reaped: the sweep recovered its claims before it took the
		 * entry off the census, so the counter is final. */
		uint64_t after = k == PROD ? info->recovered_claims : info->lost_records;
		d->delta = (int64_t)(after - d->before);
		d->reaped = true;
		d->reap_ns = now - d->t_kill;
		unreaped[k] = -1;
		if (d->delta < d->lo || d->delta > d->hi)
			violation("%s incarnation %u killed while %s (%s): its reap added %lld to %s, "
				  "expected %lld..%lld", kind_name[k], d->inc,
				  k == PROD ? pstate_name[d->state] : cstate_name[d->state],
				  k == PROD ? pop_name[d->op % N_PO] : cop_name[d->op % N_CO],
				  (long long)d->delta,
				  k == PROD ? "recovered_claims" : "lost_records", (long long)d->lo,
				  (long long)d->hi);
	}
	while (first_open < ndeaths && deaths[first_open].done)
		first_open++;
	for (size_t i = first_open; i < ndeaths; i++) {
		struct death *d = &deaths[i];
		if (d->done)
			continue;
		if (!d->flowed) {
			for (int j = 0; j < d->nwaiting;) {
				struct cinc *c = &sh->cinc[d->waiting[j]];
				if (cinc_dead[d->waiting[j]] ||
				    (int32_t)(LD(c->last_stamp) - d->kill_stamp) >= 0)
					d->waiting[j] = d->waiting[--d->nwaiting];
				else
					j++;
			}
			if (d->nwaiting == 0) {
				d->flowed = true;
				d->flow_ns = now - d->t_kill;
			}
		}
		if (d->reaped && d->flowed) {
			d->done = true;
		} else if (now - d->t_kill > (uint64_t)opt.max_recovery_ms * 1000000u) {
			dump_ring_state();
			violation("%s incarnation %u killed while %s: no recovery after %u ms "
				  "(reaped: %s; consumers still waiting for a newer record: %d)",
				  kind_name[d->kind], d->inc,
				  d->kind == PROD ? pstate_name[d->state] : cstate_name[d->state],
				  opt.max_recovery_ms, d->reaped ? "yes" : "no", d->nwaiting);
			d->done = true;
			ok = false;
		}
	}
	return ok;
}

/* An unexpected exit of a child during the run. */
bool check_exits(bool expected)
{
	bool ok = true;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return ok;
		for (int k = 0; k < 2; k++)
			for (int s = 0; s < MAX_PROCS; s++) {
				if (slots[k][s].pid != pid)
					continue;
				slots[k][s].pid = 0;
				alive[k]--;
				if (k == CONS)
					cinc_dead[slots[k][s].inc] = true;
				if (!expected || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					violation("%s incarnation %u (pid %d) ended by itself: %s %d%s",
						  kind_name[k], slots[k][s].inc, pid,
						  WIFSIGNALED(st) ? "signal" : "exit status",
						  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
						  WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL
							  ? " (the OOM killer?)" : "");
					ok = false;
				}
			}
	}
}
