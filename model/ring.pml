/*
 * ring.pml - a Promela model of shmring's slot protocol, its wake protocol
 * and the recovery of a producer that died mid-put.  docs/model.md says
 * what is modelled and what is not, lists the configurations that
 * model/check.sh runs, and records the results.
 *
 * What it follows (docs/design.md sections 2, 4, 5, 7; files under ring/):
 *   space.c, attempt.h  try_slots_claim (prod_head CAS, room check against free_tail,
 *              the handle's free_tail hint), shmring__reclaim_free_tail (helping: any
 *              producer advances free_tail over RELEASED records by CAS),
 *              shmring__free_tail_follow (a consumer, after its release, moves
 *              free_tail on from its record up to cons_head: follow below),
 *              shmring__has_room (the producer's re-check);
 *   slot.h     ring_write_meta, ring_publish (seq = COMMITTED(pos)),
 *              ring_release (seq = RELEASED(pos)), the slot walker;
 *   copy.c     shmring_putv: claim, meta and payload, publish, notify (the
 *              join count, in the op record's puts since issue 12, and the
 *              COUNTED mark, queue.h claim_count_one, are not modelled; the
 *              leaf put and get are the same steps, one attempt each);
 *   take.c, attempt.h  scan_run + try_take_run (seq at cons_head, cons_head CAS,
 *              the empty / in progress / end-of-stream verdict: take_nothing_at,
 *              which a get with timeout 0 returns from the leaf, copy.c
 *              get_nothing; timeouts are not modelled),
 *              shmring__readable (the consumer's re-check),
 *              shmring__take's loop over skip records;
 *   eventcount.c  shmring__ec_block (W1 register, W2 re-check, W3 futex wait,
 *              W4 unregister), wait.h ec_wake (N2 load), eventcount.c
 *              shmring__ec_wake_sleepers (N3 CAS epoch+1 and waiters 0,
 *              N4 wake all);
 *   attach.c, reap.c  leave and reap: census - roles, then wake both
 *              eventcounts;
 *   oprec.h, recover.c  op records announced before the claiming CAS,
 *              recover_produce, dead_stretch_end and live_claim_covers (its
 *              announced starts, with several dead op records, are
 *              model/stale.pml's).
 *
 * Every access to a shared word is one Promela step, except where
 * docs/model.md ("Merged steps") shows that joining a few loose steps into
 * one loses no behaviour that matters; spin interleaves the steps
 * sequentially consistently (the C11 orders are argued in design.md s. 3).
 * A futex wait is the guard (epoch != key): a sleeper leaves only when a
 * notifier moved the epoch.  There is no timeout anywhere, so a lost wakeup
 * shows up as an invalid end state (a process blocked at W3 for ever).
 *
 * Checks: assertions at the take (published, never taken before, the
 * producer's previous record taken first, the meta read right), at the
 * copy (the payload is the one its producer wrote), and at the end (every
 * published record taken, every live producer's record published, nobody
 * left registered); invalid end states (-DSAFETY); non-progress cycles
 * (-DNP; progress labels at publication and take).
 *
 * Compile-time configuration (spin -DNAME ...):
 *   NSLOT=n        ring slots (default 4)
 *   NCONS=n        consumers (1 or 2; default 2)
 *   RECS0, RECS1   records producer 0, 1 puts (default 2 each)
 *   FIXED_SIZES    producer i puts sizes 1,2,1.. (i=0) / 2,1,2.. (i=1)
 *                  slots, instead of choosing 1 or 2 nondeterministically
 *   EOF            producers leave when done (census - 1, wake both) and
 *                  consumers run until end of stream.  Without it,
 *                  producers stay and each consumer takes a fixed quota,
 *                  so nothing but a record's notify can wake a sleeper
 *   CRASH          producer 1 stops for ever in its last put, after its
 *                  claim CAS and before publication (at either step
 *                  there); a recoverer finishes its claim.  Implies EOF
 *   CRASH_WIDE     CRASH, and the stop may also fall between announcing
 *                  the claim and the CAS (also after a lost CAS), or after
 *                  publication before the op record is cleared
 *   FIX_READABLE   proposed fix to shmring__readable (finding 1)
 *   FIX_RECOVER    proposed fix to recover_produce (findings 2, 3)
 *   BUG_WALK_STOPS recover_produce's walk stops at a slot reused in a later
 *                  lap, as before walk_floor (old_recover_retry: finding 3
 *                  needs it; walk_floor alone closes that finding too)
 *   BUG_NO_RECHECK       consumers sleep without W2          (must fail)
 *   BUG_NO_ROOM_RECHECK  producers sleep without W2          (must fail)
 *   BUG_NOTIFY_EARLY     N2 before N1 on publication         (must fail)
 *   BUG_ROOM             room check one slot too generous    (must fail)
 *   BUG_EOF_ORDER        prod_head read before the census    (must fail)
 *   BUG_BUSY             waiters poll instead of sleeping    (must fail, -DNP)
 *   REDELIVER      SHMRING_REDELIVER: consumers peek and release; consumer
 *                  1 may stop for good at any step (holding what it holds);
 *                  a recoverer parks its record, consumer 0 takes it again.
 *                  Implies EOF (end of stream waits for held/parked records)
 *   REQUEUE        (with REDELIVER) one consumer requeues a fresh record once,
 *                  so that the dying one may also die holding a record
 *                  taken from the list, or in the middle of a requeue
 *   BUG_EOF_IGNORES_HELD end of stream without waiting for
 *                        held and parked records             (must fail)
 *   BUG_RELEASE_ORDER    release frees the list entry before
 *                        storing RELEASED                    (must fail)
 *   BUG_FOLLOW           a consumer's free_tail follow walks over taken
 *                        records too, not only released ones (must fail)
 *   FOLLOW_OWN     the one-record get's follow without a walk (slot.h
 *                  ring_free_tail_follow_own): each consumer counts the
 *                  one-slot records it took; after a release, if that count
 *                  since its last follow equals the slots from where that
 *                  follow ended to the end of its record, and free_tail is
 *                  in that span, a CAS moves free_tail to the end; else the
 *                  walk.  Consumer 1 follows after every release; consumer 0
 *                  after any, or none (the library: when due, once per 1024
 *                  slots), so that its count spans several records (both
 *                  ways for both: 1.34e8 states, 206 s; this: 7.6e7, 94 s)
 *   BUG_FOLLOW_OWN       (with FOLLOW_OWN) the span alone, no
 *                        count                               (must fail)
 */

#ifdef CRASH_WIDE
#define CRASH
#endif
#ifdef CRASH
#define EOF
#endif
#ifdef REDELIVER
#define EOF
#endif

#ifndef NSLOT
#define NSLOT 4
#endif
#define NPROD 2
#ifndef NCONS
#define NCONS 2
#endif
#ifndef RECS0
#define RECS0 2                      /* records producer 0 puts */
#endif
#ifndef RECS1
#define RECS1 2                      /* records producer 1 puts (or tries to) */
#endif
#if RECS0 > RECS1                    /* record ids: producer i has RECS * i + 1 .. */
#define RECS RECS0
#else
#define RECS RECS1
#endif
#define NRECS(i) ((i) == 0 -> RECS0 : RECS1)
#define NREC   (RECS0 + RECS1)
#define MAXPOS (NREC * 2)            /* records are 1 or 2 slots */
#define QUOTA(i) ((NREC + NCONS - 1 - (i)) / NCONS) /* records consumer i takes (no EOF) */
#define CR     (NPROD - 1)           /* the producer that may crash */

#define EMPTY     0
#define COMMITTED 1
#define RELEASED  2
#define SEQ(p, st) ((p) * 4 + (st))  /* (pos << 2) | state */
#define POS(s)     ((s) / 4)
#define IDX(p)     ((p) % NSLOT)
#define PRODUCE   1                  /* claim kind */

#ifndef BUG_ROOM
#define ROOM NSLOT                   /* claim [h, h + k) when h + k - free_tail <= n */
#else
#define ROOM (NSLOT + 1)             /* the bug: one slot too many */
#endif

/* ---- shared memory ---------------------------------------------------- */
byte prod_head;                      /* no close bit: close is not modelled */
byte cons_head;
byte free_tail;
byte seq[NSLOT];                     /* slot_meta.seq */
byte mlen[NSLOT];                    /* slot_meta.len, in slots */
bool mskip[NSLOT];                   /* slot_meta.flags & SLOT_F_SKIP */
byte data[NSLOT];                    /* payload: the record id, per slot */

typedef eventcount {                 /* word = [epoch : 32 | waiters : 32] */
	byte epoch;
	byte waiters
};
eventcount not_empty;                /* consumers sleep here */
eventcount not_full;                 /* producers sleep here */

#if defined(REDELIVER) && RECS1 == 0
byte live_prod = 1;                  /* producer 1 has nothing to put: not run */
#else
byte live_prod = NPROD;              /* census: live producers */
#endif

#ifdef CRASH
byte cl_word[NPROD];                 /* op record: pos << 2 | kind, 0 free */
byte cl_ext[NPROD];                  /* op record: slots */
bool dead;                           /* producer CR has stopped for good */
#endif

/* ---- ghost state: what the checks compare against --------------------- */
byte g_rid[MAXPOS + 1];              /* record id claimed at position p */
byte g_k[MAXPOS + 1];                /* its slots */
bool g_pub[NPROD * RECS + 1];        /* record id was published */
bool g_taken[NPROD * RECS + 1];      /* record id was taken (cons_head CAS) */

#define RID(me, s)   ((me) * RECS + (s) + 1)
#define RPROD(r)     (((r) - 1) / RECS)
#define RSEQ(r)      (((r) - 1) % RECS)

/* ---- eventcount ------------------------------------------------------- */

/* ec_wake: N2, then N3 as a CAS loop; N4 (FUTEX_WAKE) is implicit: a
 * sleeper's guard (epoch != key) holds from N3 on. */
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

/* W1: fetch_add(word, 1), key = epoch */
inline shmring__ec_register(ec, key)
{
	d_step { ec.waiters++; key = ec.epoch }
}

/* W3: FUTEX_WAIT(epoch, key) returns when the epoch is not (or no longer)
 * key; no timeout (see the header comment).  Then W4, which after a wake
 * finds the epoch moved (it only grows) and leaves the count alone: folded
 * into the same step. */
inline ec_sleep(ec, key)
{
	d_step { ec.epoch != key; key = 0 }
}

/* W4: unregister if the epoch is still key (a notifier that moved it
 * cleared the count) */
inline shmring__ec_unregister(ec, key)
{
	d_step {
		if
		:: ec.epoch == key && ec.waiters > 0 -> ec.waiters--
		:: else -> skip
		fi;
		key = 0
	}
}

/* ---- free_tail, after a release ------------------------------------------- */

/* shmring__free_tail_follow (space.c, issue 12): a consumer that has just
 * released the record at p and finds free_tail there (a relaxed load, a
 * hint) walks from p over RELEASED records, up to cons_head, and CASes
 * free_tail from p to where it stopped.  The walk is one step, as
 * reclaim_scan below and for the same reason: a RELEASED record stays so
 * until free_tail has passed it, and then the CAS, which expects p, fails.
 * Only an optimisation: the producers' reclaim still walks whatever this
 * leaves; what the model checks is that it never lets a producer reuse a
 * slot a consumer still reads (the payload asserts) nor loses room. */
inline follow(p, f, sc, n)
{
	if
	:: free_tail == p ->                                       /* relaxed */
		d_step {
			f = p; sc = 0;
			do
#ifndef BUG_FOLLOW
			:: f < cons_head && sc < NSLOT && seq[IDX(f)] == SEQ(f, RELEASED) ->
#else
			:: f < cons_head && sc < NSLOT ->
#endif
				n = mlen[IDX(f)];                          /* acquire */
				assert(n >= 1 && n <= 2);
				f = f + n; sc = sc + n
			:: else -> break
			od;
			sc = 0; n = 0
		};
		d_step {                                           /* CAS free_tail */
			if
			:: f != p && free_tail == p -> free_tail = f
			:: else -> skip
			fi;
			f = 0
		}
	:: else -> skip
	fi
}

/* ---- producer side ----------------------------------------------------- */

/* shmring__reclaim_free_tail: advance free_tail over released records (helping); the
 * result goes to the handle's hint, cached.
 *
 * The scan (load free_tail, then seq and len of each record from it) is one
 * step here.  That loses nothing (docs/model.md): a RELEASED(p) stays so
 * until free_tail has passed p, and then the CAS below, which expects the
 * start the scan read, fails; so a scan made of separate loads ends with the
 * result an atomic scan at its last load would have had, or its CAS fails. */
inline reclaim_scan(start, f, sc, n)
{
	f = start; sc = 0;
	do
	:: sc < NSLOT && seq[IDX(f)] == SEQ(f, RELEASED) ->     /* seq_cst */
		n = mlen[IDX(f)];                                  /* relaxed */
		assert(n >= 1 && n <= 2);
		f = f + n; sc = sc + n
	:: else -> break
	od;
	sc = 0; n = 0
}

inline reclaim(start, f, sc, n, ok)
{
	d_step { start = free_tail; reclaim_scan(start, f, sc, n) };     /* acquire */
	do
	:: f == start -> break
	:: else ->
		d_step {                                           /* CAS free_tail */
			if
			:: free_tail == start -> free_tail = f; start = f; ok = 1
			:: else -> start = free_tail; ok = 0
			fi
		};
		if
		:: ok -> break
		:: else -> d_step { reclaim_scan(start, f, sc, n) }  /* from the winner's value */
		fi
	od;
	cached = start;
	f = 0; ok = 0
}

#ifdef CRASH
#define ANNOUNCE(h, k)  cl_ext[me] = k; cl_word[me] = SEQ(h, PRODUCE)
#define CLEAR_CLAIM     cl_word[me] = 0
#else
#define ANNOUNCE(h, k)  skip
#define CLEAR_CLAIM     skip
#endif

/* A point at which producer CR may stop for good. */
#ifdef CRASH
#define CRASH_POINT \
	if \
	:: me == CR && s == RECS1 - 1 -> dead = true; goto crashed \
	:: true -> skip \
	fi
#ifdef CRASH_WIDE
#define WIDE_CRASH_POINT CRASH_POINT
#else
#define WIDE_CRASH_POINT skip
#endif
#else
#define CRASH_POINT skip
#define WIDE_CRASH_POINT skip
#endif

proctype Producer(byte me)
{
	byte s = 0;          /* records put so far */
	byte k, h, f, i;
	byte cached = 0;     /* the handle's free_tail hint (cached_free) */
	byte key, h2;
	byte r_start, r_f, r_sc, r_n;
	byte we, ww;
	bool ok, rdy;

	do
	:: s == NRECS(me) -> break
	:: else ->
#ifdef FIXED_SIZES
		k = 1 + (s + me) % 2;
#else
		if
		:: k = 1
		:: k = 2
		fi;
#endif
		/* shmring__slots_claim -> try_slots_claim */
claim:
		skip;
#ifndef CRASH
		/* Without op records, the load of prod_head, the room check
		 * against the hint and the CAS are one step when the hint
		 * shows room: a CAS that succeeds saw prod_head unchanged since
		 * the load, and one that fails only sends the producer back
		 * to load it again (docs/model.md, "Merged steps"). */
		d_step {
			h = prod_head;                             /* relaxed */
			if
			:: h + k - cached <= ROOM ->              /* CAS prod_head */
				prod_head = h + k;
				g_rid[h] = RID(me, s); g_k[h] = k; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok -> goto claimed
		:: else -> skip
		fi;
		/* short of room: reclaim, then look again */
		reclaim(r_start, r_f, r_sc, r_n, ok);
		d_step {
			h = prod_head;
			if
			:: h + k - cached <= ROOM ->              /* CAS prod_head */
				prod_head = h + k;
				g_rid[h] = RID(me, s); g_k[h] = k; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok -> goto claimed
		:: else -> goto no_room                    /* -EAGAIN */
		fi;
#else
		/* With op records: as try_slots_claim, step by step, because the
		 * announcement sits between the load and the CAS. */
		h = prod_head;                                     /* relaxed */
retry:
		f = cached;
		if
		:: h < f -> h = prod_head; goto retry              /* stale h */
		:: else -> skip
		fi;
		if
		:: h + k - f > ROOM ->
			reclaim(r_start, r_f, r_sc, r_n, ok);
			f = cached;
			if
			:: h < f -> h = prod_head; goto retry
			:: else -> skip
			fi;
			if
			:: h + k - f > ROOM -> f = 0; goto no_room    /* -EAGAIN */
			:: else -> skip
			fi
		:: else -> skip
		fi;
		f = 0;
		ANNOUNCE(h, k);
		WIDE_CRASH_POINT;
		d_step {                                           /* CAS prod_head */
			if
			:: prod_head == h ->
				prod_head = h + k;
				g_rid[h] = RID(me, s); g_k[h] = k; ok = 1
			:: else -> h = prod_head; ok = 0
			fi
		};
		if
		:: !ok -> WIDE_CRASH_POINT; goto retry
		:: else -> skip
		fi;
#endif
claimed:
		ok = 0;
		/* claimed [h, h + k): ring_write_meta and the payload, one step
		 * (docs/model.md: a reader that could see part of it could as
		 * well see none of it) */
		CRASH_POINT;
		d_step {
			mlen[IDX(h)] = k;
			mskip[IDX(h)] = false;
			i = 0;
			do
			:: i < k -> data[IDX(h + i)] = RID(me, s); i++
			:: else -> break
			od;
			i = 0
		};
#ifdef CRASH
		/* the last point of the window: the crasher's last put always
		 * stops here at the latest */
		if
		:: me == CR && s == RECS1 - 1 -> dead = true; goto crashed
		:: else -> skip
		fi;
#endif
#ifdef BUG_NOTIFY_EARLY
		d_step { we = not_empty.epoch; ww = not_empty.waiters };  /* N2 too early */
#endif
progress_put:	/* (for the non-progress-cycle search, -DNP) */
		d_step {                                           /* N1: publish */
			seq[IDX(h)] = SEQ(h, COMMITTED);
			g_pub[RID(me, s)] = true
		};
		WIDE_CRASH_POINT;
		CLEAR_CLAIM;
#ifdef BUG_NOTIFY_EARLY
		do
		:: ww == 0 -> break
		:: else ->
			d_step {
				if
				:: not_empty.epoch == we && not_empty.waiters == ww ->
					not_empty.epoch++; not_empty.waiters = 0; ww = 0
				:: else -> we = not_empty.epoch; ww = not_empty.waiters
				fi
			}
		od;
		we = 0;
#else
		ec_wake(not_empty, we, ww);                        /* N2..N4 */
#endif
		h = 0; k = 0;
		s++;
		goto put_done;

no_room:		/* shmring__slots_claim: clear the claim, shmring__ec_block(not_full, room_ready) */
		CLEAR_CLAIM;
		shmring__ec_register(not_full, key);                        /* W1 */
#ifndef BUG_NO_ROOM_RECHECK
		/* W2: shmring__has_room: prod_head, then reclaim */
		h2 = prod_head;
		reclaim(r_start, r_f, r_sc, r_n, ok);
		rdy = (h2 < cached || h2 + k - cached <= ROOM);
		h2 = 0;
#else
		rdy = false;
#endif
		if
		:: !rdy -> ec_sleep(not_full, key)                 /* W3 (+ W4) */
		:: else -> shmring__ec_unregister(not_full, key)            /* W4 */
		fi;
		rdy = false;
		goto claim;
put_done:
		skip
	od;
#ifdef EOF
	/* shmring_leave: census - 1, then wake both eventcounts */
	live_prod--;
	ec_wake(not_empty, we, ww);
	ec_wake(not_full, we, ww);
#endif
	goto finish;
crashed:
	skip;        /* stopped forever: no publication, no leave, no wake */
finish:
	skip
}

/* ---- consumer side ------------------------------------------------------ */

/* shmring__readable: the consumer's re-check (W2).  As in take.c: the record at
 * cons_head is committed, or the stream has ended and the ring is empty.
 * FIX_READABLE adds a proposed fix: if seq[t] was not COMMITTED(t), look at
 * cons_head again and call it ready if it moved (another consumer took the
 * record at t, so the one after it may be there already; the caller retries). */
inline shmring__readable(t2, hh, lp, rdy)
{
#ifdef BUG_BUSY
	rdy = true                     /* the bug: never sleep, poll */
#else
	rdy = false;
	t2 = cons_head;                                            /* seq_cst */
	rdy = (seq[IDX(t2)] == SEQ(t2, COMMITTED));                /* seq_cst */
#ifdef FIX_READABLE
	if
	:: !rdy -> hh = cons_head; rdy = (hh != t2); hh = 0
	:: else -> skip
	fi;
#endif
#ifdef EOF
	if
	:: !rdy ->
		lp = live_prod;                                    /* census */
		if
		:: lp == 0 -> hh = prod_head; rdy = (hh == t2)
		:: else -> skip
		fi
	:: else -> skip
	fi;
#endif
	t2 = 0; lp = 0; hh = 0
#endif
}

proctype Consumer(byte me)
{
	byte mine = 0;       /* records this consumer got (not skip records) */
	byte t, k, i, rid, key, t2, hh, lp;
#ifdef FOLLOW_OWN
	/* handle.h op_solo: own = gets_since_follow, fa = follow_at (255:
	 * none yet); fl: free_tail as loaded */
	byte own = 0, fa = 255, fl;
#endif
	byte we, ww;
	bool cm, sk, ok, rdy;

	do
#ifndef EOF
	:: mine == QUOTA(me) -> break
	:: else ->
#else
	:: true ->
#endif
		/* shmring__take -> shmring__take_run -> try_take_run.  The load of
		 * cons_head and scan_run's loads of seq, len and flags at it
		 * are one step (docs/model.md, "Merged steps") */
take:
		skip;
		d_step {
			t = cons_head;                             /* relaxed */
			cm = (seq[IDX(t)] == SEQ(t, COMMITTED));   /* acquire */
			if
			:: cm -> k = mlen[IDX(t)]; sk = mskip[IDX(t)]  /* relaxed */
			:: else -> skip
			fi
		};
		if
		:: cm ->
			d_step {                                   /* CAS cons_head */
				if
				:: cons_head == t ->
					cons_head = t + k; ok = 1;
					rid = g_rid[t];
					if
					:: !sk ->
						assert(k == g_k[t]);   /* the meta read was right */
						/* published, never taken before, and
						 * the producer's previous record was
						 * taken before it (per-producer order) */
						assert(rid != 0 && g_pub[rid]);
						assert(!g_taken[rid]);
						assert(RSEQ(rid) == 0 || g_taken[rid - 1]);
						g_taken[rid] = true
					:: else ->
						/* a skip record (only recovery makes
						 * them here) spans no live producer's
						 * record; it may be a part of the dead
						 * one's claim */
#ifndef CRASH
						assert(false);
#endif
						i = 0;
						do
						:: i < k ->
							assert(g_rid[t + i] == 0 || RPROD(g_rid[t + i]) == CR);
							i++
						:: else -> break
						od;
						i = 0
					fi
				:: else -> ok = 0; t = 0; k = 0; sk = false
				fi;
				cm = false
			};
			if
			:: !ok -> goto take                         /* lost the race */
			:: else -> skip
			fi;
			/* copy the payload out (it must be what the record's producer
			 * wrote: not torn, not another record's), then ring_release */
progress_take:
			d_step {
				if
				:: !sk ->
					i = 0;
					do
					:: i < k -> assert(data[IDX(t + i)] == rid); i++
					:: else -> break
					od;
					i = 0
				:: else -> skip
				fi;
				g_rid[t] = 0; g_k[t] = 0;          /* forget: lets states merge */
				seq[IDX(t)] = SEQ(t, RELEASED)             /* seq_cst */
			};
#ifndef FOLLOW_OWN
			follow(t, t2, i, hh);
#else
			if                                         /* copy.c get_leaf */
			:: !sk && k == 1 -> own++
			:: else -> skip
			fi;
			if
			:: me == 0                                 /* not due: no follow; */
			                                           /* own and fa kept */
			:: true ->
				fl = free_tail;                    /* relaxed */
				if
#ifndef BUG_FOLLOW_OWN
				:: fa <= fl && fl < t + k && own == t + k - fa ->
#else
				:: fa <= fl && fl < t + k ->
#endif
					d_step {                   /* CAS free_tail */
						if
						:: free_tail == fl -> free_tail = t + k
						:: else -> skip
						fi
					}
				:: else -> follow(fl, t2, i, hh) /* the walk, from fl */
				fi;
				fa = t + k; own = 0; fl = 0
			fi;
#endif
			ec_wake(not_full, we, ww);                 /* notify producers */
			if
			:: !sk -> mine++
			:: else -> skip                             /* shmring__take loops */
			fi;
			t = 0; k = 0; rid = 0; sk = false; ok = 0
		:: else ->
			/* nothing at t: census (acquire), prod_head (acquire), then
			 * cons_head again.  Without EOF only the last matters, and
			 * the step above already read it. */
#ifdef EOF
#ifndef BUG_EOF_ORDER
			lp = live_prod;
			if
			:: lp == 0 -> hh = prod_head   /* (read when lp != 0 too, unused) */
			:: else -> skip
			fi;
#else
			hh = prod_head;                /* the bug: prod_head before the census */
			lp = live_prod;
#endif
			t2 = cons_head;
			if
			:: t2 != t -> t = 0; t2 = 0; hh = 0; lp = 0; goto take
			:: hh == t && lp == 0 -> break             /* -EPIPE: end of stream */
			:: else -> skip
			fi;
#endif
			t = 0; t2 = 0; hh = 0; lp = 0;
			/* -EAGAIN: shmring__ec_block(not_empty, shmring__readable, ...) */
			shmring__ec_register(not_empty, key);               /* W1 */
#ifndef BUG_NO_RECHECK
			shmring__readable(t2, hh, lp, rdy);            /* W2 */
#else
			rdy = false;
#endif
			if
			:: !rdy -> ec_sleep(not_empty, key)        /* W3 (+ W4) */
			:: else -> shmring__ec_unregister(not_empty, key)   /* W4 */
			fi;
			rdy = false
		fi
	od
}

/* ---- crash recovery ---------------------------------------------------- */

#ifdef CRASH
/* live_claim_covers(p): does an op record of a live producer (any but
 * CR) cover position p?  Reads word (acquire), then extent.  Remembers the
 * covering record (ci, cw) for FIX_RECOVER. */
inline live_claim_covers(p, cov, i, lw, lx, cw, ci)
{
	cov = false;
	i = 0;
	do
	:: i == NPROD -> break
	:: i == CR -> i++
	:: i != CR && i < NPROD ->
		lw = cl_word[i];                                   /* acquire */
		if
		:: lw != 0 ->
			lx = cl_ext[i];                            /* relaxed */
			if
			:: POS(lw) <= p && p - POS(lw) < lx -> cov = true; cw = lw; ci = i
			:: else -> skip
			fi
		:: else -> skip
		fi;
		lw = 0; lx = 0;
		i++
	od;
	i = 0
}

/* A sweep that found producer CR dead: shmring__reap -> shmring__recover_entry ->
 * recover_produce on its op record; when that is complete, census - 1
 * and wake everyone; when a live claim covered part of it, the entry stays
 * marked and a later sweep retries (reap.c).  In the library sweeps run
 * after a sleeper's 50 ms re-check; here the recoverer runs once CR has
 * stopped, and retries once the covering op record has changed (a retry
 * before that would find the same).
 *
 * FIX_RECOVER is the proposed change to recover_produce (docs/model.md,
 * findings 2 and 3): (2) look at the live op records *before* loading
 * seq (of p, and of each q the skip record would extend over), not after,
 * so that a stale seq with no live cover means no live owner can publish
 * there while the skip record's meta is written; (3) at a slot a live
 * claim covers, stop, and let the retry resume from that slot, instead of
 * stepping over it and retrying from h, which may meet a slot reused in a
 * later lap first and stop there for good. */
proctype Recoverer()
{
	byte w, x, h, e, ph, ch, p, q, sv, s2, n, i, lw, lx, cw, ci, wcw, wci;
	byte we, ww;
	bool cov, rec, complete;

	(dead);
	/* the dead producer's op record (nobody writes it any more) */
	d_step { w = cl_word[CR]; x = cl_ext[CR] };
	if
	:: w == 0 -> goto reaped                                  /* no claim */
	:: else -> skip
	fi;
	h = POS(w); e = h + x;
sweep:
	complete = true;
	ph = prod_head;                                            /* acquire */
	if
	:: e > ph -> goto done             /* its CAS did not succeed */
	:: else -> skip
	fi;
	p = h;
	do
	:: p >= e -> break
	:: else ->
		/* below the consumed floor all was published: go on from it
		 * before reading anything (recover.c, the walk's first step) */
		ch = cons_head;                                    /* acquire */
		if
		:: p < ch -> p = ch; ch = 0; goto next_p
		:: else -> ch = 0
		fi;
#ifdef FIX_RECOVER
		live_claim_covers(p, cov, i, lw, lx, cw, ci);
		if
		:: cov ->
			/* stop here, and let the retry start here (the
			 * library would rewrite the dead op record to
			 * [p, e)): no hole is left behind that a retry
			 * starting at h could miss */
			complete = false; wcw = cw; wci = ci; h = p; cov = false; break
		:: else -> skip
		fi;
#endif
		sv = seq[IDX(p)];                                  /* acquire */
		if
		:: POS(sv) > p ->
			/* reused in a later lap: published and consumed, so
			 * go on from the consumed floor if it is beyond
			 * (recover.c walk_floor), else stop */
#ifdef BUG_WALK_STOPS
			break
#else
			ch = cons_head;                            /* acquire */
			if
			:: ch > p -> p = ch; ch = 0; goto next_p
			:: else -> ch = 0; break
			fi
#endif
		:: else -> skip
		fi;
		if
		:: sv == SEQ(p, COMMITTED) || sv == SEQ(p, RELEASED) ->
			n = mlen[IDX(p)];                          /* record_slots */
			if
			:: n == 0 -> break
			:: else -> skip
			fi;
			p = p + n; n = 0
		:: else ->
			/* a stale slot below cons_head: the announcement was
			 * stale and the slot has been through its record */
			ch = cons_head;                            /* acquire */
			if
			:: p < ch -> ch = 0; break
			:: else -> ch = 0
			fi;
#ifndef FIX_RECOVER
			live_claim_covers(p, cov, i, lw, lx, cw, ci);
			if
			:: cov -> complete = false; wcw = cw; wci = ci; p++; cov = false; goto next_p  /* its owner's */
			:: else -> skip
			fi;
#endif
			/* dead territory, up to the next published start or live claim */
			q = p + 1;
			do
			:: q < e ->
#ifndef FIX_RECOVER
				s2 = seq[IDX(q)];                  /* is_start(q) */
				if
				:: s2 == SEQ(q, COMMITTED) || s2 == SEQ(q, RELEASED) -> break
				:: else -> skip
				fi;
				live_claim_covers(q, cov, i, lw, lx, cw, ci);
#else
				live_claim_covers(q, cov, i, lw, lx, cw, ci);
				if
				:: cov -> break
				:: else -> skip
				fi;
				s2 = seq[IDX(q)];                  /* is_start(q) */
				if
				:: s2 == SEQ(q, COMMITTED) || s2 == SEQ(q, RELEASED) -> break
				:: else -> skip
				fi;
#endif
				if
				:: cov -> break
				:: else -> q++
				fi
			:: else -> break
			od;
			s2 = 0; cov = false; cw = 0; ci = 0;
			mlen[IDX(p)] = q - p;                      /* relaxed */
			mskip[IDX(p)] = true;                      /* relaxed */
			d_step {                                   /* CAS seq: stale -> COMMITTED */
				if
				:: seq[IDX(p)] == sv ->
					seq[IDX(p)] = SEQ(p, COMMITTED); rec = true
				:: else -> skip
				fi
			};
			p = q; q = 0
		fi;
next_p:
		sv = 0
	od;
done:
	p = 0; sv = 0; ph = 0;
	if
	:: rec -> rec = false; ec_wake(not_empty, we, ww)
	:: else -> skip
	fi;
	if
	:: !complete ->
		/* left for a later sweep: it retries once the live claim
		 * record that covered a slot has changed */
		(cl_word[wci] != wcw);
		wcw = 0; wci = 0;
		goto sweep
	:: else -> skip
	fi;
reaped:
	/* shmring__reap: census_sub, free the entry, wake_everyone */
	live_prod--;
	ec_wake(not_empty, we, ww);
	ec_wake(not_full, we, ww)
}
#endif

/* ---- SHMRING_REDELIVER (redeliver.c; docs/design.md section 9) ---------- */

#ifdef REDELIVER
/* Consumers peek (take one record, hold it, release it).  Consumer RCR may
 * stop for good at any step of that (RDIE), holding what it holds; a
 * recoverer then finishes its list entries and parks the record its op
 * record covers, and consumer 0 must take it again and release it.  No
 * producer dies here; max_deliveries is unlimited (no dead letters). */
#define RCR 1                        /* the consumer that may die */
#define CONSUME 3                    /* op record kind */
#define REDELIV 3                    /* seq state REDELIVER */
#ifdef REQUEUE
#define NLIST 2                      /* a requeued record and a parked one */
#else
#define NLIST 1                      /* one death, one record held: one entry */
#endif
bool rq_done;                        /* REQUEUE: one requeue per run */
#define L_FREE 0
#define L_RES  1
#define L_WAIT 2
#define L_HELD 3
byte cc_word[NCONS];                 /* consumer op record: pos << 2 | CONSUME, 0 free */
byte cc_ext[NCONS];                  /* its slots */
byte l_st[NLIST];                    /* list entry word: state, holder, deliveries, version */
byte l_hold[NLIST];
byte l_d[NLIST];
byte l_ver[NLIST];
byte l_pos[NLIST];                   /* list entry pos */
byte pending;                        /* rdl.pending */
bool cdead;                          /* consumer RCR has stopped for good */
bool cdone;                          /* consumer RCR reached end of stream */
byte g_rel[NPROD * RECS + 1];        /* times released (acked) */
byte g_hold[NPROD * RECS + 1];       /* consumer holding it + 1 */

#define RDIE \
	if \
	:: me == RCR && !cdead -> cdead = true; goto died \
	:: true -> skip \
	fi

/* holds_open: a record between free_tail and cons_head is COMMITTED (held)
 * or parked.  One step: at end of stream (when it runs) a slot it reads as
 * RELEASED stays so (no producer is left to reuse it), so separate loads
 * give the verdict one load at the end would (docs/model.md). */
inline holds_open(p, open)
{
	d_step {
		p = free_tail; open = false;
#ifdef BUG_EOF_IGNORES_HELD
		p = cons_head;
#endif
		do
		:: p < cons_head && seq[IDX(p)] == SEQ(p, RELEASED) -> p = p + mlen[IDX(p)]
		:: p < cons_head && seq[IDX(p)] != SEQ(p, RELEASED) -> open = true; break
		:: p >= cons_head -> break
		od;
		p = 0
	}
}

/* shmring__redeliver_ready: pending, and a WAITING entry (one step: it only
 * reads, and a consumer that then finds none just looks again). */
inline rdl_ready(rdy)
{
	d_step {
#if NLIST > 1
		rdy = (pending > 0 && (l_st[0] == L_WAIT || l_st[1] == L_WAIT))
#else
		rdy = (pending > 0 && l_st[0] == L_WAIT)
#endif
	}
}

/* settle: entry li (RESERVED or HELD, its record parked) -> WAITING, then
 * pending + 1 (seq_cst) and the notify.  The CAS expects the word read. */
inline settle(li, st0, h0, v0, ok)
{
	d_step {
		if
		:: l_st[li] == st0 && l_hold[li] == h0 && l_ver[li] == v0 ->
			l_st[li] = L_WAIT; l_hold[li] = 0; l_ver[li]++; ok = 1
		:: else -> ok = 0
		fi
	};
	if
	:: ok ->
		pending++;
		ec_wake(not_empty, we, ww)
	:: else -> skip
	fi;
	ok = 0
}

proctype RConsumer(byte me)
{
	byte t, k, i, rid, key, t2, hh, lp, li, p;
	byte we, ww;
	bool cm, ok, rdy, fromlist, open;

	do
	:: true ->
take:
		RDIE;
		/* redeliver_first: pending (relaxed), then the scan and the CAS
		 * WAITING -> HELD in one step (the CAS validates the word; pos
		 * and seq[pos] cannot change while it is WAITING) */
		ok = 0;
		if
		:: pending > 0 ->
			d_step {
				li = 0;
				do
				:: li < NLIST && l_st[li] == L_WAIT ->
					assert(seq[IDX(l_pos[li])] == SEQ(l_pos[li], REDELIV));
					l_st[li] = L_HELD; l_hold[li] = me; l_d[li]++; l_ver[li]++;
					t = l_pos[li]; k = mlen[IDX(t)]; rid = g_rid[t]; ok = 1;
					assert(l_d[li] >= 2);
					/* no live consumer holds it */
					assert(g_hold[rid] == 0 || (g_hold[rid] == RCR + 1 && cdead && me != RCR));
					assert(g_rel[rid] == 0);
					g_hold[rid] = me + 1;
					break
				:: li < NLIST && l_st[li] != L_WAIT -> li++
				:: li >= NLIST -> break
				od
			}
		:: else -> skip
		fi;
		if
		:: ok ->
			fromlist = true;
			RDIE;
			pending--;                                 /* relaxed */
			goto hold
		:: else -> skip
		fi;
		fromlist = false;
		d_step {
			t = cons_head;                             /* relaxed */
			cm = (seq[IDX(t)] == SEQ(t, COMMITTED));   /* acquire */
			if
			:: cm -> k = mlen[IDX(t)]; assert(!mskip[IDX(t)])
			:: else -> skip
			fi
		};
		if
		:: cm ->
			d_step { cc_ext[me] = k; cc_word[me] = SEQ(t, CONSUME) }   /* announce */
			RDIE;
			d_step {                                   /* CAS cons_head */
				if
				:: cons_head == t ->
					cons_head = t + k; ok = 1;
					rid = g_rid[t];
					assert(k == g_k[t]);
					assert(rid != 0 && g_pub[rid]);
					assert(!g_taken[rid]);             /* first delivery once */
					assert(RSEQ(rid) == 0 || g_taken[rid - 1]);
					g_taken[rid] = true;
					g_hold[rid] = me + 1
				:: else -> ok = 0; t = 0; k = 0
				fi;
				cm = false
			};
			if
			:: !ok -> cc_word[me] = 0; goto take       /* lost: clear */
			:: else -> skip
			fi;
hold:
			RDIE;
#ifdef REQUEUE
			/* shmring_requeue of a fresh record, once per run: alloc
			 * an entry, pos, CAS seq COMMITTED -> REDELIVER, settle */
			if
			:: !fromlist && !rq_done ->
				rq_done = true;
				d_step {
					li = 0;
					do
					:: li < NLIST && l_st[li] == L_FREE ->
						l_st[li] = L_RES; l_hold[li] = me; l_d[li] = 1; l_ver[li]++; break
					:: li < NLIST && l_st[li] != L_FREE -> li++
					:: li >= NLIST -> assert(false)
					od;
					p = l_ver[li]
				};
				RDIE;
				l_pos[li] = t;
				RDIE;
				d_step {
					assert(seq[IDX(t)] == SEQ(t, COMMITTED));
					seq[IDX(t)] = SEQ(t, REDELIV); g_hold[rid] = 0
				};
				RDIE;
				settle(li, L_RES, me, p, ok);
				RDIE;
				cc_word[me] = 0;                   /* op_rec_free */
				t = 0; k = 0; rid = 0; ok = 0; li = 0; p = 0;
				goto take
			:: true -> skip
			fi;
#endif
progress_take:
			/* the payload is its producer's; release = the ack */
#ifdef BUG_RELEASE_ORDER
			if
			:: fromlist ->                             /* the bug: entry first */
				d_step { l_st[li] = L_FREE; l_hold[li] = 0; l_d[li] = 0; l_ver[li]++ };
				RDIE
			:: else -> skip
			fi;
#endif
			d_step {
				i = 0;
				do
				:: i < k -> assert(data[IDX(t + i)] == rid); i++
				:: else -> break
				od;
				i = 0;
				assert(g_hold[rid] == me + 1);
				assert(g_rel[rid] == 0);
				g_rel[rid]++; g_hold[rid] = 0;
				seq[IDX(t)] = SEQ(t, RELEASED)             /* seq_cst */
			};
			RDIE;
			follow(t, t2, i, hh);
			RDIE;
#ifndef BUG_RELEASE_ORDER
			if
			:: fromlist ->                             /* then free the entry */
				d_step { l_st[li] = L_FREE; l_hold[li] = 0; l_d[li] = 0; l_ver[li]++ };
				RDIE
			:: else -> skip
			fi;
#endif
			cc_word[me] = 0;                           /* op_rec_free */
			ec_wake(not_full, we, ww);
			/* redeliver_released: once ended, wake end-of-stream waiters */
			if
			:: live_prod == 0 -> ec_wake(not_empty, we, ww)
			:: else -> skip
			fi;
			t = 0; k = 0; rid = 0; ok = 0; li = 0; fromlist = false
		:: else ->
			/* nothing at t: census, prod_head, cons_head again; at the
			 * end of stream, held open by a held or parked record? */
			lp = live_prod;
			if
			:: lp == 0 -> hh = prod_head
			:: else -> skip
			fi;
			t2 = cons_head;
			if
			:: t2 != t -> t = 0; t2 = 0; hh = 0; lp = 0; goto take
			:: hh == t && lp == 0 ->
				holds_open(p, open);
				if
				:: !open -> break                  /* -EPIPE */
				:: else -> skip
				fi
			:: else -> skip
			fi;
			t = 0; t2 = 0; hh = 0; lp = 0; open = false;
			/* shmring__ec_block(not_empty, shmring__readable) */
			shmring__ec_register(not_empty, key);       /* W1 */
			rdl_ready(rdy);                             /* W2: redeliver hook */
			if
			:: !rdy ->
				t2 = cons_head;
				rdy = (seq[IDX(t2)] == SEQ(t2, COMMITTED));
				if
				:: !rdy -> hh = cons_head; rdy = (hh != t2); hh = 0
				:: else -> skip
				fi;
				if
				:: !rdy ->
					lp = live_prod;
					if
					:: lp == 0 ->
						hh = prod_head;
						if
						:: hh == t2 -> holds_open(p, open); rdy = !open
						:: else -> skip
						fi
					:: else -> skip
					fi
				:: else -> skip
				fi;
				t2 = 0; lp = 0; hh = 0; open = false
			:: else -> skip
			fi;
			if
			:: !rdy -> ec_sleep(not_empty, key)       /* W3 (+ W4) */
			:: else -> shmring__ec_unregister(not_empty, key)
			fi;
			rdy = false
		fi
	od;
	if
	:: me == RCR -> cdone = true
	:: else -> skip
	fi;
	goto finish;
died:
	skip;            /* stopped for ever, holding what it held */
finish:
	skip
}

/* The sweep that finds consumer RCR dead: shmring__recover_entry on its
 * entry: shmring__redeliver_recover (its list entries), then
 * recover_consume over its op record (park what it took and holds), then
 * census - 1 and wake everyone.  A live consumer's op record covering a
 * slot makes it retry once that record changes, as recover.c does. */
proctype RRecoverer()
{
	byte li, st, h, v, p, s, w, x, t, e, ch, n, cw, f;
	byte we, ww;
	bool ok, complete;

	if
	:: cdead -> skip
	:: cdone -> goto out                  /* it finished: nothing to recover */
	fi;
sweep:
	complete = true;
	/* shmring__redeliver_recover */
	li = 0;
	do
	:: li < NLIST ->
		d_step { st = l_st[li]; h = l_hold[li]; v = l_ver[li] };   /* acquire */
		if
		:: (st == L_RES || st == L_HELD) && h == RCR ->
			p = l_pos[li];
			s = seq[IDX(p)];                                   /* acquire */
			if
			:: s == SEQ(p, REDELIV) -> settle(li, st, h, v, ok)
			:: else ->
				d_step {                                   /* CAS -> FREE */
					if
					:: l_st[li] == st && l_hold[li] == h && l_ver[li] == v ->
						l_st[li] = L_FREE; l_hold[li] = 0; l_d[li] = 0; l_ver[li]++
					:: else -> skip
					fi
				}
			fi
		:: else -> skip
		fi;
		st = 0; h = 0; v = 0; p = 0; s = 0;
		li++
	:: else -> break
	od;
	/* recover_consume over its op record */
	skip;
	d_step { w = cc_word[RCR]; x = cc_ext[RCR] };
	if
	:: w != 0 ->
		t = POS(w);
		ch = cons_head;                                            /* acquire */
		e = t + x;
		if
		:: e > ch -> e = ch
		:: else -> skip
		fi;
		/* walk_floor: start at max(t, free_tail) (acquire); at a slot
		 * that is not a start of this lap, go on from free_tail read
		 * again if it is beyond the slot, else stop */
		p = t;
		f = free_tail;                                             /* acquire */
		if
		:: f > p -> p = f
		:: else -> skip
		fi;
		f = 0;
		do
		:: p >= e -> break
		:: else ->
			s = seq[IDX(p)];                                   /* acquire */
			if
			:: s != SEQ(p, COMMITTED) && s != SEQ(p, RELEASED) && s != SEQ(p, REDELIV) ->
				f = free_tail;                             /* acquire */
				if
				:: f > p -> n = f - p; s = 0; f = 0; goto next
				:: else -> break
				fi
			:: else -> skip
			fi;
			n = mlen[IDX(p)];
			if
			:: s == SEQ(p, COMMITTED) ->
				cw = cc_word[0];                           /* live_claim_covers */
				if
				:: cw != 0 && POS(cw) <= p && p - POS(cw) < cc_ext[0] ->
					complete = false                   /* retry later */
				:: else ->
					/* shmring__redeliver_park: alloc, pos, CAS seq, settle */
					d_step {
						li = 0;
						do
						:: li < NLIST && l_st[li] == L_FREE ->
							l_st[li] = L_RES; l_hold[li] = RCR; l_d[li] = 1;
							l_ver[li]++; break
						:: li < NLIST && l_st[li] != L_FREE -> li++
						:: li >= NLIST -> assert(false)     /* list full */
						od;
						v = l_ver[li]
					};
					l_pos[li] = p;
					d_step {
						if
						:: seq[IDX(p)] == SEQ(p, COMMITTED) ->
							seq[IDX(p)] = SEQ(p, REDELIV); ok = 1
						:: else -> ok = 0
						fi
					};
					if
					:: ok -> settle(li, L_RES, RCR, v, ok)
					:: else ->
						d_step { l_st[li] = L_FREE; l_hold[li] = 0; l_d[li] = 0; l_ver[li]++ }
					fi
				fi
			:: else -> skip
			fi;
next:
			assert(n >= 1);
			p = p + n; s = 0
		od
	:: else -> skip
	fi;
	if
	:: !complete ->
		(cc_word[0] != cw);      /* a later sweep, once the live record changed */
		goto sweep
	:: else -> skip
	fi;
	/* its op record is done; census - 1, wake everyone */
	cc_word[RCR] = 0;
	ec_wake(not_empty, we, ww);
	ec_wake(not_full, we, ww);
out:
	skip
}
#endif

/* ---- the system --------------------------------------------------------- */

init
{
	byte j;
	atomic {
		j = 0;
		do
#if defined(REDELIVER) && RECS1 == 0
		:: j < 1 -> run Producer(j); j++
#else
		:: j < NPROD -> run Producer(j); j++
#endif
		:: else -> break
		od;
		j = 0;
		do
#ifndef REDELIVER
		:: j < NCONS -> run Consumer(j); j++
#else
		:: j < NCONS -> run RConsumer(j); j++
#endif
		:: else -> break
		od;
#ifdef CRASH
		run Recoverer();
#endif
#ifdef REDELIVER
		run RRecoverer();
#endif
		j = 0
	};
	/* everybody finished (a process stuck before this is an invalid end
	 * state: a lost wakeup or a deadlock) */
	(_nr_pr == 1);
	/* every published record was delivered exactly once; the crashed one
	 * was not published, hence (asserted at delivery) never delivered */
	j = 1;
	do
	:: j <= NPROD * RECS ->
		assert(g_taken[j] == g_pub[j]);
		if
		:: RSEQ(j) < NRECS(RPROD(j)) ->
#ifdef CRASH
			/* the live producer published everything */
			assert(RPROD(j) == CR || g_pub[j])
#else
			assert(g_pub[j])
#endif
		:: else -> assert(!g_pub[j])
		fi;
		j++
	:: else -> break
	od;
	assert(cons_head == prod_head);
#ifdef REDELIVER
	/* at least once: every record released (acked) exactly once, by a
	 * consumer that did not die or before it died; nothing left parked or
	 * held; pending at most one high, only if the dead one stopped between
	 * its take from the list and its decrement */
	j = 1;
	do
	:: j <= NPROD * RECS ->
		assert(g_rel[j] == (g_pub[j] -> 1 : 0));
		j++
	:: else -> break
	od;
	assert(l_st[0] == L_FREE);
#if NLIST > 1
	assert(l_st[1] == L_FREE);
#endif
	assert(pending == 0 || (pending == 1 && cdead));
#endif
	/* the eventcounts: nobody is left registered */
	assert(not_empty.waiters == 0 && not_full.waiters == 0)
}
