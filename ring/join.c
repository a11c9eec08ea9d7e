/*
 * join.c - the ring's join counter (JoinableQueue semantics).
 *
 * A put counts its task in its own op record (puts, one writer, no locked
 * instruction: queue.h claim_count_tasks) before its record is published;
 * join.count counts the tasks finished (task_done, a discard, forgiveness);
 * unfinished = the sum of every op record's puts - join.count.  Only
 * task_done, join, unfinished and the sweeps sum (issue 12: a ring nobody
 * joins pays nothing shared per put).  docs/design.md section 7, "Join".
 */
#include <errno.h>

#include "attach.h"
#include "latch.h"

/* From the first task_done or join on, consumers count what they take in
 * their attachment entry, so that a dead one's tasks can be forgiven. */
static void join_in_use(struct shmring *ring)
{
	struct ring_header *hdr = ring->hdr;
	if (!(atomic_load_explicit(&hdr->census, memory_order_relaxed) & CENSUS_JOIN))
		atomic_fetch_or_explicit(&hdr->census, CENSUS_JOIN, memory_order_relaxed);
}

uint64_t shmring__join_puts(const struct shmring *r)
{
	/* Acquire, each: a put's count is ordered before whatever made the
	 * caller look (the publication of its record, the task_done of it
	 * that the caller's read of join.count saw).  Hostile bytes: the
	 * bounds are clamped to the geometry; the sum wraps (unsigned). */
	uint32_t ents = atomic_load_explicit(&r->hdr->join_entries, memory_order_acquire);
	if (ents > r->nattach)
		ents = r->nattach;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < ents; i++) {
		uint32_t high = atomic_load_explicit(&ring_attach(r, (int)i)->op_high,
		                                     memory_order_acquire);
		if (high > OPREC_PER_ENTRY)
			high = OPREC_PER_ENTRY;
		for (uint32_t k = 0; k < high; k++)
			sum += atomic_load_explicit(&ring_op_rec(r, (int)i, k)->puts,
			                            memory_order_acquire);
	}
	return sum;
}

/* Unfinished tasks; false if the count is past the puts (hostile bytes:
 * *open is 0 then, and join waits within its timeout, as for any count it
 * cannot believe). */
static bool join_open(const struct shmring *r, uint64_t *open)
{
	/* The count first, then the puts: every task the count has finished
	 * was put before it was finished, so its put is in the sum (never
	 * fewer unfinished than there are; more, by puts that came since, is
	 * the truth a moment later).  seq_cst: W2 of the eventcount protocol
	 * on join.ec. */
	uint64_t done = (uint64_t)atomic_load_explicit(&r->hdr->join.count, memory_order_seq_cst);
	uint64_t puts = shmring__join_puts(r);
	*open = puts >= done ? puts - done : 0;
	return puts >= done;
}

uint64_t shmring__join_unfinished(const struct shmring *r)
{
	uint64_t open;
	join_open(r, &open);
	return open;
}

int64_t shmring__join_finish(struct shmring *r, uint64_t n, bool exact)
{
	struct latch *l = &r->hdr->join;
	/* The handle's last sum (only grows, and the true sum only grows, so
	 * it is a lower bound): a task_done that finds the count well below it
	 * needs no sum. */
	uint64_t puts = atomic_load_explicit(&r->join_puts_seen, memory_order_relaxed);
	bool fresh = false;
	uint64_t done = (uint64_t)atomic_load_explicit(&l->count, memory_order_relaxed);
	for (;;) {
		uint64_t open = puts > done ? puts - done : 0;
		if (open < n && !fresh) {
			puts = shmring__join_puts(r);
			uint64_t seen = atomic_load_explicit(&r->join_puts_seen, memory_order_relaxed);
			while (seen < puts &&
			       !atomic_compare_exchange_weak_explicit(&r->join_puts_seen, &seen, puts,
			                                              memory_order_relaxed,
			                                              memory_order_relaxed))
				;
			fresh = true;
			continue;
		}
		uint64_t k = open < n ? open : n;
		if (k == 0 || (exact && k < n))
			return exact ? -ERANGE : 0;
		/* seq_cst: N1 of the eventcount protocol on join.ec (the joiner's
		 * re-check loads the count seq_cst, then sums). */
		if (atomic_compare_exchange_weak_explicit(&l->count, (int64_t *)&done,
		                                          (int64_t)(done + k), memory_order_seq_cst,
		                                          memory_order_relaxed)) {
			/* Zero now, as far as the puts seen say?  Then wake the
			 * joiners (who re-check); puts is a lower bound, so none
			 * is left asleep when the count reached the true sum. */
			if (done + k == puts)
				ec_wake(&l->ec, ring_stats(r));
			return (int64_t)k;
		}
		fresh = false; /* the count moved: a sum from before may be short */
	}
}

int shmring_task_done(struct shmring *ring)
{
	if (!ring)
		return -EINVAL;
	join_in_use(ring);
	/* done first, then the count (undone if the count refuses): a death
	 * between the two leaves a task unforgiven (join waits, within its
	 * timeout), never forgives one twice, as a take does (docs/design.md,
	 * "Join fate"). */
	int slot = atomic_load_explicit(&ring->attach_slot, memory_order_relaxed);
	struct attach_entry *e = slot >= 0 ? ring_attach(ring, slot) : NULL;
	/* Counted in done only against a take counted in got (done < got):
	 * the task_done of a record taken before join came into use (never in
	 * got) counted in done and hid a record taken later, held at its
	 * death: got - done forgave nothing and join waited for good (a review
	 * found it, 2026-12-06; recover::task_done_of_a_take_before_join_hides_no_held_task).
	 * A task taken through one entry and finished through another is
	 * still counted against the finisher's (docs/design.md, "Join fate",
	 * the limits). */
	bool counted = false;
	if (e) {
		uint64_t d = atomic_load_explicit(&e->done, memory_order_relaxed);
		while (d < atomic_load_explicit(&e->got, memory_order_relaxed) &&
		       !(counted = atomic_compare_exchange_weak_explicit(&e->done, &d, d + 1,
		                                                         memory_order_relaxed,
		                                                         memory_order_relaxed)))
			;
	}
	int64_t rc = shmring__join_finish(ring, 1, true);
	if (rc < 0 && counted)
		atomic_fetch_sub_explicit(&e->done, 1, memory_order_relaxed);
	return rc < 0 ? (int)rc : 0;
}

/* The joiner's re-check (W2): nothing unfinished. */
static bool join_done(const void *arg)
{
	uint64_t open;
	return join_open(arg, &open) && open == 0;
}

int shmring_join(struct shmring *ring, int64_t timeout_ns)
{
	if (!ring)
		return -EINVAL;
	join_in_use(ring);
	/* latch_wait's loop, plus sweeps: a dead worker's tasks are forgiven
	 * by the sweep that finds it, and the joiner may be the only one left
	 * to look. */
	struct latch *l = &ring->hdr->join;
	struct waiter w;
	ring_waiter_init_unfenced(ring, &w, timeout_ns);
	while (!join_done(ring)) {
		int rc = shmring__ec_block(&l->ec, join_done, ring, &w);
		ring_sweep_after_wait(ring, rc, &w, STALL_OTHER,
		                      rc == -EAGAIN ? shmring__join_unfinished(ring) : 0);
		if (rc)
			return rc;
	}
	return 0;
}

uint64_t shmring_unfinished(const struct shmring *ring)
{
	return ring ? shmring__join_unfinished(ring) : 0;
}
