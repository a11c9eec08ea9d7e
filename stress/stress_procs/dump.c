/* dump.c - the ring's recovery state, printed once when a death is not
 * recovered in time: what the next look at such a failure starts from (the
 * ring is anonymous and gone once the stress exits).  Reads the library's
 * private layout (-Iring), as the tests do. */
#include "../stress_procs.h"

#include "slot.h"

static const char *kind_name_of(unsigned k)
{
	static const char *names[] = { "free", "produce", "counted", "consume" };
	return names[k & 3];
}

static const char *state_name_of(uint64_t seq, uint64_t pos)
{
	if ((seq >> 2) != pos)
		return (seq >> 2) > pos ? "later-lap" : "earlier-lap";
	static const char *names[] = { "empty", "committed", "released", "redeliver" };
	return names[seq & 3];
}

void dump_ring_state(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	const struct ring_header *hdr = ring->hdr;
	fprintf(stderr, NAME ": ring state: prod_head %llu cons_head %llu free_tail %llu census %#llx\n",
	        (unsigned long long)(atomic_load(&hdr->prod_head) & RING_POS_MASK),
	        (unsigned long long)atomic_load(&hdr->cons_head),
	        (unsigned long long)atomic_load(&hdr->free_tail),
	        (unsigned long long)atomic_load(&hdr->census));
	for (int j = 0; j < (int)ring->nattach; j++) {
		const struct attach_entry *e = ring_attach(ring, j);
		uint64_t id = atomic_load(&e->id);
		uint64_t busy = atomic_load(&e->op_busy);
		if (!id && !busy && !atomic_load(&e->roles))
			continue; /* (a free entry with roles is a census leak: shown) */
		fprintf(stderr, NAME ":   entry %d: pid %llu%s%s roles %#x op_busy %#llx\n", j,
		        (unsigned long long)(id & ATTACH_PID_MASK),
		        id & ATTACH_REAPING_TAG ? " REAPING" : "",
		        id & ATTACH_PENDING_TAG ? " PENDING" : "", atomic_load(&e->roles),
		        (unsigned long long)busy);
		for (unsigned i = 0; busy; i++, busy >>= 1) {
			if (!(busy & 1))
				continue;
			const struct op_rec *c = ring_op_rec(ring, j, i);
			uint64_t w = atomic_load(&c->word), x = atomic_load(&c->extent);
			uint64_t pos = OPREC_POS(w), n = OPREC_SLOTS(x);
			fprintf(stderr, NAME ":     op %u: %s pos %llu slots %llu records %u:", i,
			        kind_name_of(OPREC_KIND(w)), (unsigned long long)pos,
			        (unsigned long long)n, OPREC_RECORDS(x));
			for (uint64_t p = pos; OPREC_KIND(w) != OPREC_FREE && p < pos + n &&
			                       p < pos + 8; p++) {
				uint64_t s = atomic_load(&meta_at(ring, p)->seq);
				fprintf(stderr, " [%llu %s len %u]", (unsigned long long)p,
				        state_name_of(s, p), atomic_load(&meta_at(ring, p)->len));
			}
			fprintf(stderr, "\n");
		}
	}
}
