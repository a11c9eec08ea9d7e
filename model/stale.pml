/*
 * stale.pml - the recovery of dead producers' claims when stale
 * announcements lie among them, by two sweeps at once.  docs/model.md says
 * what is modelled, lists its configurations and records the results.
 *
 * What it follows (docs/design.md section 7, "Recovery"; ring/recover.c):
 *   shmring__recover_entry  an entry's op records, taken in any order (the
 *              library takes them by index, and which index a record gets
 *              is up to the threads); starts_snapshot, taken when it begins;
 *              the record cleared (release) once its claim is done;
 *   recover_produce  the walk over [h, h + k): a published start is stepped
 *              over by its length, an unpublished slot starts dead territory;
 *   dead_stretch_end, announced_start_after  where that territory ends;
 *   slot.h ring_write_meta, ring_publish_from  the skip record's length,
 *              then the CAS of its seq from the value the walk read.
 *
 * The ring below prod_head (NPOS slots, one lap) is a run of claims of 1 or
 * 2 slots; each is published already, or was claimed by a process that
 * died before publishing it (its op record says [b, b + k)).  A published
 * one may still have its op record (its owner died before clearing it).
 * Up to NSTALE stale announcements sit at claim starts b with any extent of
 * 1 to 3 slots: a thread read prod_head = b, announced, lost its CAS to the
 * claim at b, and died.  Every op record belongs to dead entry 0 or 1,
 * and one sweep recovers each entry, the two side by side.
 *
 * Not modelled: live processes (their claims stop a stretch: ring.pml's
 * CRASH configurations), laps and the consumed floor, join counts,
 * SKIP_CHUNK, batches of several records.
 *
 * Check, once both sweeps are done: the consumers' walk from 0 over starts
 * (each stepping by its length) meets every claim's start and ends exactly
 * at prod_head, and every record published before keeps its length.  A
 * walk that misses a start is the wedge (consumers wait there for good).
 *
 * Compile-time configuration (spin -DNAME ...):
 *   NPOS=n               prod_head (default 4)
 *   NSTALE=n             stale announcements, at most (default 1)
 *   BUG_NO_STARTS        the stretch ends at the claim's end, at no
 *                        announced start (before this model; must fail)
 *   BUG_CLIP_AT_CLAIM    announced starts, but also the end of the claim
 *                        recovered (a first fix; must fail: two sweeps
 *                        write different lengths into one slot)
 */

#ifndef NPOS
#define NPOS 4
#endif
#ifndef NSTALE
#define NSTALE 1                     /* stale announcements, at most */
#endif
#define NREC 5                       /* op records, at most */

byte seq[NPOS + 1];                  /* 1: a start (published), 0: stale */
byte mlen[NPOS + 1];                 /* slot_meta.len, in slots */

byte rpos[NREC];                     /* op record: [rpos, rpos + rk) */
byte rk[NREC];
byte rent[NREC];                     /* its entry: 0 or 1 */
bool rbusy[NREC];                    /* op_busy bit and word != 0 */
byte nrec;

byte g_len[NPOS + 1];                /* ghost: the claim at b has g_len slots (0: none) */
bool g_pub[NPOS + 1];                /* ghost: published before the sweeps */
byte swept;                          /* sweeps done */

/* An op record for [b, b + k), of entry 0 or 1. */
inline add_rec(b, k)
{
	rpos[nrec] = b; rk[nrec] = k; rbusy[nrec] = true;
	if
	:: rent[nrec] = 0
	:: nrec > 0 -> rent[nrec] = 1    /* the first is entry 0's: the two are alike */
	fi;
	nrec++
}

proctype Sweep(byte ent)
{
	byte starts;                         /* bitmap over positions */
	byte i, h, e, p, q, sv, n, end;

	/* starts_snapshot (after prod_head, which is NPOS here and never
	 * moves), one step: a record is cleared only after its claim's
	 * start is published, and the stretch reads seq after the snapshot,
	 * so a start the snapshot misses is one the stretch sees published */
	d_step {
		i = 0;
		do
		:: i < nrec ->
			if
			:: rbusy[i] -> starts = starts | (1 << rpos[i])
			:: else -> skip
			fi;
			i++
		:: else -> break
		od;
		i = 0
	};
	/* the entry's records, in any order */
next_rec:
	/* one of the entry's busy records, any (only this sweep clears them) */
	if
	:: rent[0] == ent && rbusy[0] -> i = 0
	:: rent[1] == ent && rbusy[1] -> i = 1
	:: rent[2] == ent && rbusy[2] -> i = 2
	:: rent[3] == ent && rbusy[3] -> i = 3
	:: rent[4] == ent && rbusy[4] -> i = 4
	:: else -> goto done
	fi;
	h = rpos[i]; e = h + rk[i];
	if
	:: e > NPOS -> goto cleared          /* its CAS did not succeed */
	:: else -> skip
	fi;
	p = h;
	do
	:: p >= e -> break
	:: else ->
		/* is_start, then record_slots: one step (a length written over
		 * a published record later is what the final check finds) */
		d_step { sv = seq[p]; if :: sv == 1 -> n = mlen[p] :: else -> skip fi };
		if
		:: sv == 1 ->
			if
			:: n == 0 -> break
			:: else -> p = p + n; n = 0
			fi
		:: else ->
			/* dead_stretch_end */
#ifdef BUG_NO_STARTS
			end = e;
#else
			end = p + 1;
			do
			:: end < NPOS && !(starts & (1 << end)) -> end++
			:: else -> break
			od;
#ifdef BUG_CLIP_AT_CLAIM
			if
			:: e < end -> end = e
			:: else -> skip
			fi;
#endif
#endif
			q = p + 1;
			do
			:: q < end && seq[q] != 1 -> q++       /* is_start(q) */
			:: else -> break
			od;
			mlen[p] = q - p;                       /* ring_write_meta, relaxed */
			d_step {                               /* ring_publish_from: CAS seq */
				if
				:: seq[p] == sv -> seq[p] = 1
				:: else -> skip
				fi
			};
			p = q; q = 0; end = 0
		fi;
		sv = 0
	od;
cleared:
	skip;
	d_step { rbusy[i] = false; i = 0; p = 0; h = 0; e = 0 };  /* release */
	goto next_rec;
done:
	swept++
}

init {
	byte b, k, ns, p;
	/* the claims below prod_head, published or dead */
	atomic {
		b = 0;
		do
		:: b < NPOS ->
			if
			:: k = 1
			:: b + 2 <= NPOS -> k = 2
			fi;
			g_len[b] = k;
			if
			:: g_pub[b] = true; seq[b] = 1; mlen[b] = k;
				if
				:: nrec < NREC -> add_rec(b, k)   /* published, record not cleared */
				:: true -> skip
				fi
			:: nrec < NREC -> seq[b] = 0; add_rec(b, k)
			fi;
			b = b + k
		:: else -> break
		od;
		/* stale announcements at claim starts, of any extent */
		ns = 0;
		do
		:: ns < NSTALE && nrec < NREC ->
			b = 0;
			do
			:: b < NPOS && g_len[b] != 0 -> break
			:: b < NPOS -> b++
			:: b >= NPOS -> goto no_more
			od;
			if
			:: k = 1
			:: k = 2
			:: k = 3
			fi;
			add_rec(b, k); ns++
		:: true -> break
		od;
no_more:
		b = 0; k = 0; ns = 0;
		run Sweep(0);
		run Sweep(1)
	};
	(swept == 2);
	/* the consumers' walk */
	p = 0;
	do
	:: p < NPOS ->
		assert(seq[p] == 1);                /* a start where the walk is */
		assert(mlen[p] >= 1);
		assert(!g_pub[p] || mlen[p] == g_len[p]);
		b = p + 1;                          /* no claim start skipped over */
		do
		:: b < p + mlen[p] && b < NPOS -> assert(g_len[b] == 0); b++
		:: else -> break
		od;
		p = p + mlen[p]
	:: else -> break
	od;
	assert(p == NPOS)
}
