/*
 * overwrite.pml - a Promela model of SHMRING_OVERWRITE on a plain ring
 * (issue 13; docs/design.md section 9, overwrite.c): a put that finds no
 * room discards the oldest unread record by taking it as a consumer does
 * (CAS of cons_head) and releasing it, but only when that frees room
 * (free_tail has reached cons_head: no record a consumer holds is in the
 * way); the discard is counted and the next get reports -EOVERFLOW.
 *
 * Processes: 2 producers (RECS0, RECS1 records of one slot each) and one
 * consumer that takes each record, holds it (a peek) for a while, and then
 * releases it.  Producers wait for room on not_full with the eventcount
 * (W1..W4; W2 = has_room: reclaim, then room or a possible discard); the
 * consumer's wait for a record is a blocking guard (ring.pml checks that
 * pair).  Steps as in ring.pml: the claim (load, room check, CAS) and the
 * reclaim scan are merged; every other shared access is its own step.
 *
 * Checks: every record is delivered or discarded, exactly once; a record is
 * never discarded while the consumer holds it, nor after it was delivered;
 * discarded == the overwritten counter; the consumer sees the payload its
 * producer wrote; per-producer order; no producer asleep for good (invalid
 * end state).
 *
 *   BUG_NO_DISCARD_WAKE  a discard does not notify not_full (passes: the
 *                      consumer's next release wakes the producer anyway)
 *   BUG_NO_PUB_WAKE    (passes too, for the same reason: these notifies
 *                      make a waiting producer prompt, they are not what
 *                      keeps it from sleeping for good here)
 *   BUG_STORE_TAKE     the discard moves cons_head with a plain store
 *                      after its check, not a CAS           (must fail)
 */

#ifndef NSLOT
#define NSLOT 2
#endif
#ifndef RECS0
#define RECS0 2
#endif
#ifndef RECS1
#define RECS1 2
#endif
#define RECS 2
#define NRECS(i) ((i) == 0 -> RECS0 : RECS1)
#define NREC (RECS0 + RECS1)
#define MAXPOS (NREC + 1)

#define COMMITTED 1
#define RELEASED  2
#define SEQ(p, st) ((p) * 4 + (st))
#define IDX(p)     ((p) % NSLOT)
#define RID(me, s) ((me) * RECS + (s) + 1)

byte prod_head, cons_head, free_tail;
byte seq[NSLOT];
byte data[NSLOT];
byte overwritten;
bool overflow;
byte live_prod = 2;

typedef eventcount {
	byte epoch;
	byte waiters
};
eventcount not_full;

/* ghost */
byte g_rid[MAXPOS];
byte g_fate[NREC + 1];               /* 0 pending, 1 delivered, 2 discarded */
byte g_held;                         /* record id the consumer holds (0: none) */
byte g_last[2];                      /* last seq delivered, + 1, per producer */
byte g_discarded;

inline ec_wake(ec, we, ww)
{
	d_step { we = ec.epoch; ww = ec.waiters };
	do
	:: ww == 0 -> break
	:: else ->
		d_step {
			if
			:: ec.epoch == we && ec.waiters == ww ->
				assert(ec.epoch < 250);
				ec.epoch++; ec.waiters = 0; ww = 0
			:: else -> we = ec.epoch; ww = ec.waiters
			fi
		}
	od;
	we = 0
}

/* shmring__reclaim_free_tail (the scan merged, as in ring.pml) */
inline reclaim(f)
{
	d_step {
		f = free_tail;
		do
		:: f < prod_head && seq[IDX(f)] == SEQ(f, RELEASED) -> f++
		:: else -> break
		od;
		if
		:: f > free_tail -> free_tail = f
		:: else -> f = free_tail
		fi
	}
}

proctype Producer(byte me)
{
	byte s = 0, h, cached = 0, t, sq, key, we, ww;
	bool ok, rdy;
	do
	:: s == NRECS(me) -> break
	:: else ->
claim:
		skip;
		d_step {
			h = prod_head;
			if
			:: h + 1 - cached <= NSLOT -> prod_head = h + 1; g_rid[h] = RID(me, s); ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok -> goto claimed
		:: else -> skip
		fi;
		reclaim(cached);
		d_step {
			h = prod_head;
			if
			:: h + 1 - cached <= NSLOT -> prod_head = h + 1; g_rid[h] = RID(me, s); ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok -> goto claimed
		:: else -> skip
		fi;
		/* shmring__overwrite_oldest: only if it frees room */
		t = cons_head;                                        /* seq_cst */
		if
		:: cached != t -> goto wait
		:: else -> skip
		fi;
		sq = seq[IDX(t)];                                     /* acquire */
		if
		:: sq != SEQ(t, COMMITTED) -> goto wait
		:: else -> skip
		fi;
#ifndef BUG_STORE_TAKE
		d_step {                                              /* CAS cons_head */
			if
			:: cons_head == t -> cons_head = t + 1; ok = 1;
				assert(g_fate[g_rid[t]] == 0 && g_held != g_rid[t]);
				g_fate[g_rid[t]] = 2; g_discarded++
			:: else -> ok = 0
			fi
		};
#else
		ok = (cons_head == t);
		if
		:: ok -> d_step { cons_head = t + 1;
				assert(g_fate[g_rid[t]] == 0 && g_held != g_rid[t]);
				g_fate[g_rid[t]] = 2; g_discarded++ }
		:: else -> skip
		fi;
#endif
		if
		:: !ok -> goto claim
		:: else -> skip
		fi;
		d_step { overwritten++; overflow = true };   /* counted before the release */
		seq[IDX(t)] = SEQ(t, RELEASED);                          /* ring_release */
#ifndef BUG_NO_DISCARD_WAKE
		ec_wake(not_full, we, ww);
#endif
		goto claim;
wait:
		skip;
		/* shmring__ec_block(not_full, has_room) */
		d_step { not_full.waiters++; key = not_full.epoch };   /* W1 */
		reclaim(cached);                                        /* W2 */
		rdy = (prod_head + 1 - cached <= NSLOT);
		if
		:: !rdy ->
			t = cons_head;
			rdy = (t == cached && seq[IDX(t)] == SEQ(t, COMMITTED))
		:: else -> skip
		fi;
		if
		:: rdy ->
			d_step {
				if
				:: not_full.epoch == key && not_full.waiters > 0 -> not_full.waiters--
				:: else -> skip
				fi
			}
		:: else -> d_step { not_full.epoch != key }             /* W3 (+W4) */
		fi;
		key = 0; rdy = 0; t = 0; sq = 0;
		goto claim;
claimed:
		data[IDX(h)] = RID(me, s);
		seq[IDX(h)] = SEQ(h, COMMITTED);
progress_pub:
		skip;
#ifndef BUG_NO_PUB_WAKE
		ec_wake(not_full, we, ww);
#endif
		s++
	od;
	skip;
	d_step { live_prod-- }
}

proctype Consumer()
{
	byte t, sq, d, rid, we, ww;
	bool ok;
	do
	:: true ->
		t = cons_head;
		sq = seq[IDX(t)];
		if
		:: sq == SEQ(t, COMMITTED) ->
			d_step {                                          /* CAS cons_head */
				if
				:: cons_head == t -> cons_head = t + 1; ok = 1;
					rid = g_rid[t];
					assert(g_fate[rid] == 0);
					g_fate[rid] = 1; g_held = rid
				:: else -> ok = 0
				fi
			};
			if
			:: ok ->
				overflow = false;            /* a get's exchange (-EOVERFLOW) */
				d = data[IDX(t)];            /* the held record, read late */
				assert(d == rid);            /* never overwritten while held */
				assert(((rid - 1) % RECS) + 1 > g_last[(rid - 1) / RECS]);
				g_last[(rid - 1) / RECS] = ((rid - 1) % RECS) + 1;
				g_held = 0;
				seq[IDX(t)] = SEQ(t, RELEASED);          /* release */
progress_take:
				ec_wake(not_full, we, ww)
			:: else -> skip
			fi
		:: else ->
			if
			:: live_prod == 0 && prod_head == cons_head -> break
			:: else ->
				(seq[IDX(cons_head)] == SEQ(cons_head, COMMITTED) ||
				 (live_prod == 0 && prod_head == cons_head))
			fi
		fi;
		t = 0; sq = 0; d = 0; rid = 0
	od;
	/* every record delivered or discarded, and the count is exact */
	d = 1;
	do
	:: d > NREC -> break
	:: else -> assert(g_fate[d] != 0); d++
	od;
	assert(overwritten == g_discarded)
}

init {
	atomic {
		run Producer(0); run Producer(1); run Consumer()
	}
}
