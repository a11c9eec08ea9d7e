/*
 * bcast.pml - a Promela model of broadcast rings (issue 13; docs/design.md
 * section 9): the frontier {tail, recno, gen} advanced by producers with a
 * 16-byte CAS, tethered subscribers' cursors as gates, lossy subscribers'
 * optimistic copy and re-check, exact loss counts, a subscriber joining
 * mid-stream (SHMRING_SUB_OLDEST), and a tethered subscriber that dies (its
 * cursor dropped by the sweep).  docs/model.md has the configurations and
 * results; model/check.sh runs them.
 *
 * What it follows:
 *   broadcast.c  frontier_read (one step: the pair is read consistently),
 *                shmring__bcast_reclaim (prod_head, target, the gate of the
 *                tethered cursors entry by entry, the scan over published
 *                records, the CAS of the pair), the join (pair, cursor,
 *                role bit, gen CAS loop);
 *   subscriber.c look (seq, then rl), the payload copy slot by slot, the
 *                re-check of the frontier, advance/publish_cursor (tethered:
 *                cursor store, then ec_wake(not_full)), relap (the pair, lost
 *                += recno(tail) - recno(next));
 *   space.c      the claim (merged as in ring.pml: load, room check against
 *                the hint, CAS), the producer's wait on not_full with the
 *                eventcount (W1..W4; W2 = has_room = reclaim and look);
 *   copy.c       meta, payload, publish, then ec_wake(not_full) (broadcast
 *                rings: a publication can unblock the frontier);
 *   reap.c       the sweep's exchange of a dead subscriber's roles to 0,
 *                then wake_everyone.
 * A subscriber waiting for a record is a blocking guard (readable() true):
 * its eventcount is not_empty with the same N1/W2 pair as on plain rings,
 * checked in ring.pml.
 *
 * Checks: a delivered record is the one published at that position, whole
 * (every slot's payload), and its global index is the subscriber's recno
 * (so in order, no gap, no duplicate); a tethered subscriber is never
 * lapped and gets every record from its start; a lossy one gets
 * received + lost == records from its start; the frontier's recno equals
 * the number of records below it; invalid end states (a producer blocked
 * for good: a lost wakeup, or a dead subscriber still holding it back).
 *
 * Configuration (spin -DNAME):
 *   NSLOT=n      ring slots (default 4)
 *   RECS0, RECS1 records producer 0, 1 puts (default 2, 1; at most 2)
 *   JOIN         instead of those two, one subscriber joins mid-stream,
 *                tethered, SHMRING_SUB_OLDEST, while producers overwrite
 *   LOSSY_JOIN   (with JOIN) the joiner is lossy and starts from the next
 *                record published: broadcast.c walk_published_lossy (the
 *                walk from the frontier up to prod_head as it joined, each
 *                record's seq and length read, then the frontier: passed,
 *                go on from it with its recno; else a record not published
 *                ends the walk).  Its first read asserts the recno it
 *                counted (g_idx), as every read does
 *   BUG_JOIN_NO_CHECK  (with LOSSY_JOIN) the walk trusts what it
 *                read without the frontier check          (must fail)
 *   DIE          the tethered subscriber may stop for good at any step
 *   BUG_NO_GEN   the join does not bump gen                  (must fail)
 *   BUG_NO_RECHECK  the lossy subscriber delivers without the
 *                frontier re-check after its copy             (must fail)
 *   BUG_NO_GATE  producers ignore tethered cursors            (must fail)
 *   BUG_NO_PUB_WAKE  publication does not notify not_full     (must fail)
 */

#ifndef NSLOT
#define NSLOT 4
#endif
#ifndef RECS0
#define RECS0 2                      /* records producer 0 puts */
#endif
#ifndef RECS1
#define RECS1 1                      /* records producer 1 puts */
#endif
#define RECS 2                       /* record ids: RECS * producer + s + 1 */
#define NRECS(i) ((i) == 0 -> RECS0 : RECS1)
#define NPROD 2
#define NREC (RECS0 + RECS1)
#define MAXPOS (NREC * 2 + 1)
#define STEP 2                       /* max(slots_for(max_record), n / 16) */
#define T 0                          /* the tethered subscriber */
#define L 1                          /* the lossy one */
#define J 2                          /* the joiner */
#define NSUB 3
#define GENMOD 4

#define COMMITTED 1
#define SEQ(p, st) ((p) * 4 + (st))
#define IDX(p)     ((p) % NSLOT)
#define RID(me, s) ((me) * RECS + (s) + 1)

/* ---- shared memory ---------------------------------------------------- */
byte prod_head;
byte tail, recno, gen;               /* bcast.tail, bcast.word */
byte seq[NSLOT];
byte mlen[NSLOT];
byte data[NSLOT];
bool sub_on[NSUB];                   /* roles: ROLE_SUBSCRIBER | CONSUMER */
bool sub_lossy[NSUB];
byte cursor[NSUB];
byte live_prod = NPROD;

typedef eventcount {
	byte epoch;
	byte waiters
};
eventcount not_full;

/* ---- ghost ------------------------------------------------------------ */
byte g_rid[MAXPOS + 1];              /* record id claimed at position p */
byte g_idx[MAXPOS + 1];              /* its index in position order */
byte g_claimed;                      /* records claimed so far */
bool g_dead;                         /* the tethered subscriber died */
bool g_done[NSUB];

inline ec_wake(ec, we, ww)
{
	d_step { we = ec.epoch; ww = ec.waiters };                 /* N2 */
	do
	:: ww == 0 -> break
	:: else ->
		d_step {                                          /* N3 */
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

/* ---- the frontier ------------------------------------------------------ */

/* shmring__bcast_reclaim: the pair, prod_head and the target, the gate
 * (each tethered entry: roles and cursor, one step per entry), the scan
 * over published records (one step: a COMMITTED(p) stays so until the
 * frontier passes p, and then our CAS fails), the CAS of the pair. */
inline reclaim(t, w, g, h, tg, gate, p, n, i, ok)
{
	d_step { t = tail; w = recno; g = gen };                   /* frontier_read */
	do
	:: true ->
		h = prod_head;                                     /* seq_cst */
		tg = (h + STEP > NSLOT -> h + STEP - NSLOT : 0);
		if
		:: t >= tg -> break
		:: else -> skip
		fi;
		gate = tg;
		i = 0;
		do
		:: i == NSUB -> break
		:: else ->
#ifndef BUG_NO_GATE
			d_step {                                   /* roles, cursor */
				if
				:: sub_on[i] && !sub_lossy[i] && cursor[i] < gate -> gate = cursor[i]
				:: else -> skip
				fi
			};
#endif
			i++
		od;
		skip;
		d_step {                                           /* the scan */
			p = t; n = 0;
			do
			:: p < tg && p < gate && seq[IDX(p)] == SEQ(p, COMMITTED) ->
				p = p + mlen[IDX(p)]; n++
			:: else -> break
			od
		};
		if
		:: p == t -> break
		:: else -> skip
		fi;
		d_step {                                           /* 16-byte CAS */
			if
			:: tail == t && recno == w && gen == g ->
				tail = p; recno = w + n; ok = 1;
				assert(p == prod_head || g_idx[p] == recno);
				assert(p < prod_head || g_claimed == recno)
			:: else -> t = tail; w = recno; g = gen; ok = 0
			fi
		};
		if
		:: ok -> t = p; break
		:: else -> skip
		fi
	od;
	i = 0; p = 0; n = 0; gate = 0; tg = 0; ok = 0
}

/* ---- producers --------------------------------------------------------- */

proctype Producer(byte me)
{
	byte s = 0, k, h, cached = 0, i, key;
	byte rt, rw, rg, rh, rtg, rgate, rp, rn, ri;
	byte we, ww;
	bool ok, rdy;
	do
	:: s == NRECS(me) -> break
	:: else ->
		k = 1 + (s + me) % 2;
claim:
		skip;
		d_step {
			h = prod_head;
			if
			:: h + k - cached <= NSLOT ->                  /* CAS prod_head */
				prod_head = h + k;
				g_rid[h] = RID(me, s); g_idx[h] = g_claimed; g_claimed++; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok -> goto claimed
		:: else -> skip
		fi;
		reclaim(rt, rw, rg, rh, rtg, rgate, rp, rn, ri, ok);
		cached = rt;
		d_step {
			h = prod_head;
			if
			:: h + k - cached <= NSLOT ->
				prod_head = h + k;
				g_rid[h] = RID(me, s); g_idx[h] = g_claimed; g_claimed++; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok -> goto claimed
		:: else -> skip
		fi;
		/* no room: shmring__ec_block(not_full, has_room) */
		d_step { not_full.waiters++; key = not_full.epoch };   /* W1 */
		reclaim(rt, rw, rg, rh, rtg, rgate, rp, rn, ri, ok);   /* W2 */
		cached = rt;
		rdy = (prod_head + k - cached <= NSLOT);
		if
		:: rdy ->
			d_step {                                          /* W4 */
				if
				:: not_full.epoch == key && not_full.waiters > 0 -> not_full.waiters--
				:: else -> skip
				fi
			}
		:: else ->
			d_step { not_full.epoch != key };                 /* W3 (+W4) */
		fi;
		key = 0; rdy = 0;
		goto claim;
claimed:
		mlen[IDX(h)] = k;
		i = 0;
		do
		:: i == k -> break
		:: else -> data[IDX(h + i)] = RID(me, s); i++
		od;
		seq[IDX(h)] = SEQ(h, COMMITTED);                           /* N1 */
progress_pub:
		skip;
#ifndef BUG_NO_PUB_WAKE
		ec_wake(not_full, we, ww);
#endif
		s++; h = 0; k = 0; i = 0
	od;
	skip;
	d_step { live_prod-- }
}

/* ---- subscribers ------------------------------------------------------- */

/* A tethered subscriber's death point: it stops for good (SIGKILL). */
#ifdef DIE
#define DIE_POINT \
	if \
	:: me == T -> g_dead = true; goto dead \
	:: true -> skip \
	fi
#else
#define DIE_POINT skip
#endif

proctype Subscriber(byte me)
{
	byte next, myrec, start_rec, got = 0, lost = 0;
#ifdef LOSSY_JOIN
	byte jh;                             /* prod_head when it joined */
#endif
	byte s, rl, d0, d1, t, w, g;
	byte we, ww;
	bool ok;

#ifdef JOIN
	if
	:: me == J ->
		/* shmring__bcast_subscribe, tethered, SHMRING_SUB_OLDEST */
		d_step { t = tail; w = recno; g = gen };
		cursor[me] = t;
		sub_on[me] = true;
#ifndef BUG_NO_GEN
		do
		:: d_step {
			if
			:: tail == t && recno == w && gen == g -> gen = (g + 1) % GENMOD; ok = 1
			:: else -> t = tail; w = recno; g = gen; ok = 0
			fi
		   };
		   if
		   :: ok -> break
		   :: else -> cursor[me] = t
		   fi
		od;
#endif
#ifndef LOSSY_JOIN
		next = t; myrec = w; start_rec = w
#else
		jh = prod_head;                                     /* acquire */
		next = t; myrec = w;
		do                                  /* walk_published_lossy */
		:: next >= jh -> break
		:: else ->
			s = seq[IDX(next)];                         /* acquire */
			rl = mlen[IDX(next)];                       /* relaxed */
			if
#ifndef BUG_JOIN_NO_CHECK
			:: tail > next ->                /* bcast_passed: fence; acquire */
				d_step { t = tail; w = recno };     /* frontier_read */
				next = t; myrec = w
#endif
			:: else ->
				if
				:: s != SEQ(next, COMMITTED) -> break
				:: else -> next = next + rl; myrec++
				fi
			fi
		od;
		start_rec = myrec; jh = 0; s = 0; rl = 0;
		cursor[me] = next                                   /* relaxed */
#endif
	:: else -> next = 0; myrec = 0; start_rec = 0
	fi;
#else
	next = 0; myrec = 0; start_rec = 0;
#endif
	do
	:: true ->
		DIE_POINT;
		s = seq[IDX(next)];                                     /* acquire */
		if
		:: s == SEQ(next, COMMITTED) ->
			rl = mlen[IDX(next)];                          /* relaxed */
			DIE_POINT;
			if
			:: sub_lossy[me] ->      /* its copy may race a producer: slot by slot */
				d0 = data[IDX(next)];
				d1 = (rl == 2 -> data[IDX(next + 1)] : d0)
			:: else ->               /* nothing can change under a tethered one's */
				d_step { d0 = data[IDX(next)]; d1 = (rl == 2 -> data[IDX(next + 1)] : d0) }
			fi;
#ifdef BUG_NO_RECHECK
			t = (me == L -> 0 : tail);
#else
			t = tail;                                       /* fence; acquire */
#endif
			if
			:: t <= next ->
				assert(d0 == g_rid[next] && d1 == g_rid[next]);   /* whole, right one */
				assert(g_idx[next] == myrec);                      /* in order, no gap */
				next = next + rl; myrec++; got++;
				DIE_POINT;
				cursor[me] = next;                              /* publish_cursor */
progress_read:
				if
				:: !sub_lossy[me] -> ec_wake(not_full, we, ww)
				:: else -> skip
				fi
			:: else -> goto lapped
			fi
		:: else ->
			t = tail;
			if
			:: t > next -> goto lapped
			:: else -> skip
			fi;
			/* nothing yet: ended, or wait (readable() as a guard) */
			if
			:: live_prod == 0 && prod_head == next -> break
			:: else ->
				(seq[IDX(next)] == SEQ(next, COMMITTED) || tail > next ||
				 (live_prod == 0 && prod_head == next))
			fi
		fi;
		goto again;
lapped:
		assert(sub_lossy[me]);                  /* a tethered one never is */
		d_step {                                /* relap: the pair */
			t = tail; w = recno;
			lost = lost + (w - myrec); myrec = w; next = t;
			assert(t == prod_head || g_idx[t] == w)
		};
		if
		:: !sub_lossy[me] -> cursor[me] = next
		:: else -> skip
		fi;
again:
		s = 0; rl = 0; d0 = 0; d1 = 0; t = 0; w = 0
	od;
	/* end of stream: everything from its start, received or lost */
	assert(myrec == NREC);
	assert(got + lost == NREC - start_rec);
	assert(sub_lossy[me] || lost == 0);
	g_done[me] = true;
dead:
	skip
}

/* The sweep: a dead subscriber's roles go to 0, then everyone is woken. */
proctype Reaper()
{
	byte we, ww;
	if
	:: g_dead ->
		sub_on[T] = false;                      /* exchange roles to 0 */
		ec_wake(not_full, we, ww)               /* wake_everyone */
	:: g_done[T] -> skip
	fi
}

init {
	atomic {
		run Producer(0); run Producer(1);
#ifdef JOIN
		/* nobody tethered until the joiner: the frontier moves freely */
#ifdef LOSSY_JOIN
		sub_lossy[J] = true;
#endif
		run Subscriber(J);
#else
		sub_on[T] = true; sub_lossy[T] = false; cursor[T] = 0;
		sub_on[L] = true; sub_lossy[L] = true; cursor[L] = 0;
		run Subscriber(T); run Subscriber(L);
#endif
#ifdef DIE
		run Reaper();
#endif
	}
}
