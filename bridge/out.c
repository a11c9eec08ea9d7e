/*
 * out.c - ring -> JetStream: peek, publish, ack, release.
 *
 * The window.  Records are peeked in ring order into a window of at most
 * --max-pending entries; each is published asynchronously with Nats-Msg-Id =
 * msgid_format(ring identity, position) and released from the ring only once
 * its publish is acknowledged, in window order.
 *
 * Order across retries.  Every publish carries an expected last stream
 * sequence (Nats-Expected-Last-Sequence): the sequence the stream would have
 * if every earlier publish of this bridge had been stored.  So a record is
 * stored only right after its predecessor: if record k is lost (a leader
 * dies with it, a connection breaks under it) then k+1, k+2 ... are refused
 * ("wrong last sequence") instead of being stored ahead of it, and what the
 * stream holds of the window is always a prefix of it.
 *
 * Resync.  On any failure (error reply, no responders, MaxWait timeout) the
 * bridge stops publishing, waits for every outstanding ack (or its timeout),
 * then asks the stream for its last sequence L and its last message.  If
 * that message is an entry whose last publish expected L - 1, this chain
 * stored it at L, and so stored every publish before it (each expected the
 * one before: the stream grew by one per publish): the window through it is
 * released, the rest published again, in order, expecting L.  Otherwise
 * (the last message was stored by an earlier run, or by an earlier chain of
 * this one) nothing is marked stored: every entry not acknowledged is
 * published again, and the duplicate window drops those the stream has.
 * Entries already acknowledged are not published again.  No reliance on
 * positions increasing through the window.
 *
 * Start.  A record peeked at start may have been stored by an earlier run
 * (SHMRING_REDELIVER gives a killed bridge's peeked records back, in
 * whatever order: the order of the ring's redelivery list, not the one they
 * were published in): it is published like any other, and the stream's
 * duplicate window drops it if it is there (the server checks Nats-Msg-Id
 * before the expected sequence, and acknowledges it as a duplicate).  A
 * duplicate does not advance the stream, so the next publish's expectation
 * fails and costs a resync.  Such a record may be the stream's last message
 * at that resync: naming it does not say that what precedes it in this
 * run's window was stored (the expectation test above; without it, records
 * this run had not stored were released: 2 missing of 1 M in a cluster run).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "shmring_inspect.h"
#include "shmring_zc.h"

enum entry_state { E_UNSENT, E_SENT, E_ACKED, E_FAILED };

struct entry {
	struct shmring_span span;
	int                 hi;     /* the handle that peeked it: h[hi] */
	uint64_t            pos;
	uint64_t            expect; /* the stream's last sequence its last publish expected */
	enum entry_state    state;
};

struct out {
	const struct bridge_args *a;
	struct shmring   **h;       /* nh handles: each holds <= 64 peeked spans */
	int                nh;
	uint64_t           ring_id;
	struct bridge_nats bn;
	struct bridge_stats st;

	pthread_mutex_t    lock;    /* the window and the fields below */
	pthread_cond_t     cond;    /* an ack came in */
	struct entry      *win;     /* circular: win[(head + i) % cap], i < count */
	size_t             cap, head, count;
	size_t            *held;    /* held[i]: spans of the window h[i] peeked */
	size_t             sent;    /* entries [0, sent) have been published */
	unsigned           outstanding; /* published, ack handler not yet run */
	bool               resync;
	uint64_t           last_seq; /* the stream's last sequence once all sent are stored */
	int64_t            max_len;  /* the largest payload the server takes */
	bool               blocked;  /* the next record to publish is over it */
	bool               redelivers; /* ring A was made with SHMRING_REDELIVER */
	/* Test hook (bridge/tests/cluster.py): SHMRING_NATS_TEST_DIE_HOLDING=N:
	 * after N records released, release nothing more, publish until half
	 * the window is, fill the window, wait for every ack, then SIGKILL
	 * itself: it dies holding records the stream has and records it never
	 * published, which the next run is given back in another order. */
	unsigned long      die_after;
	bool               holding;
};

static struct entry *at(struct out *o, size_t i)
{
	return &o->win[(o->head + i) % o->cap];
}

/* Under lock: release acknowledged entries at the front. */
static void pop_acked(struct out *o)
{
	while (!o->holding && o->count && at(o, 0)->state == E_ACKED) {
		struct entry *e = at(o, 0);
		int rc = shmring_release(o->h[e->hi], &e->span);
		if (rc < 0)
			stats_error(&o->st, "release: %s", shmring_strerror(rc));
		o->held[e->hi]--;
		o->head = (o->head + 1) % o->cap;
		o->count--;
		/* sent 0: this entry was acked before a resync and the main loop
		 * had yet to step over it (its "acknowledged before a resync"
		 * branch); counted down anyway, sent wrapped to SIZE_MAX and
		 * nothing was published again: a review found it, 2026-12-06) */
		if (o->sent)
			o->sent--;
		atomic_fetch_add(&o->st.records, 1);
		if (o->die_after && --o->die_after == 0)
			o->holding = true;   /* test hook */
	}
	atomic_store(&o->st.in_flight, o->count);
}

/* Under lock: the window entry holding pos, or NULL.  From the front: acks
 * come back mostly in publish order, so the entry is near it. */
static struct entry *find(struct out *o, uint64_t pos)
{
	for (size_t i = 0; i < o->count; i++)
		if (at(o, i)->pos == pos)
			return at(o, i);
	return NULL;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct out *o = closure;
	const char *id = NULL;
	uint64_t rid, pos;
	natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
	pthread_mutex_lock(&o->lock);
	struct entry *e = id && !msgid_parse(id, &rid, &pos) ? find(o, pos) : NULL;
	if (e && e->state == E_SENT) {
		if (pa) {
			e->state = E_ACKED;
			if (pa->Duplicate)
				atomic_fetch_add(&o->st.duplicates, 1);
		} else {
			e->state = E_FAILED;
			o->resync = true;
			stats_error(&o->st, "publish %s: %s%s%s", id, natsStatus_GetText(pae->Err),
			            pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
		}
	}
	/* (0: wait_outstanding gave up on this ack and counted it off) */
	if (o->outstanding)
		o->outstanding--;
	pop_acked(o);
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
	natsMsg_Destroy(msg);
}

/* Ask the stream for its last sequence and its last record from this ring.
 * Retries until it gets an answer; -1 only on a forced stop. */
static int query_stream(struct out *o, uint64_t *last_seq, bool *have_pos, uint64_t *pos)
{
	int64_t nap = 50;
	while (!stop_forced) {
		jsErrCode jerr = 0;
		natsMsg *m = NULL;
		*have_pos = false;
		natsStatus s = js_GetLastMsg(&m, o->bn.js, o->a->stream, o->a->subject, NULL, &jerr);
		if (s == NATS_OK) {
			const char *id = NULL;
			uint64_t rid, p;
			if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK &&
			    !msgid_parse(id, &rid, &p) && rid == o->ring_id) {
				*have_pos = true;
				*pos = p;
			}
			natsMsg_Destroy(m);
		}
		if (s == NATS_OK || jerr == JSNoMessageFoundErr || s == NATS_NOT_FOUND) {
			jsStreamInfo *si = NULL;
			s = js_GetStreamInfo(&si, o->bn.js, o->a->stream, NULL, &jerr);
			if (s == NATS_OK) {
				*last_seq = si->State.LastSeq;
				jsStreamInfo_Destroy(si);
				return 0;
			}
		}
		stats_error(&o->st, "resync: %s (jerr %d)", natsStatus_GetText(s), (int)jerr);
		if (jerr == JSStreamNotFoundErr) {   /* deleted under us: make it again */
			if (bridge_ensure_stream(&o->bn, o->a, &o->st))
				return -1;
			continue;
		}
		bridge_nap(nap);
		nap = nap < 1000 ? nap * 2 : 1000;
		stats_maybe_print(&o->st, "out", o->a->stats_interval, false);
	}
	return -1;
}

/* Called with no publish outstanding: see the file comment. */
static int resync(struct out *o)
{
	uint64_t last_seq = 0, pos = 0;
	bool have_pos;
	if (query_stream(o, &last_seq, &have_pos, &pos))
		return -1;
	pthread_mutex_lock(&o->lock);
	/* Through the entry the stream's last message names, if this chain
	 * stored it (see the file comment): then every publish before it was
	 * stored too, and the window is in publish order. */
	size_t stored = 0;
	for (size_t i = 0; have_pos && i < o->count; i++)
		if (at(o, i)->pos == pos) {
			if (at(o, i)->state != E_UNSENT && at(o, i)->expect + 1 == last_seq)
				stored = i + 1;
			break;
		}
	for (size_t i = 0; i < o->count; i++) {
		struct entry *e = at(o, i);
		if (e->state == E_ACKED)
			continue;
		if (i < stored) {
			e->state = E_ACKED;    /* stored; its ack was lost */
			atomic_fetch_add(&o->st.duplicates, 1);
		} else {
			if (e->state != E_UNSENT)
				atomic_fetch_add(&o->st.retries, 1);
			e->state = E_UNSENT;
		}
	}
	o->sent = o->count; /* pop_acked counts the popped ones down */
	pop_acked(o);
	o->sent = 0;
	o->last_seq = last_seq;
	o->resync = false;
	atomic_fetch_add(&o->st.resyncs, 1);
	pthread_mutex_unlock(&o->lock);
	return 0;
}

/* Publish window entry i (state E_UNSENT).  Called without the lock: the
 * main thread alone publishes, and entry i stays put until it is acked. */
static void publish(struct out *o, struct entry *e, uint64_t expect)
{
	char id[MSGID_MAX];
	msgid_format(id, o->ring_id, e->pos);
	natsMsg *m = NULL;
	natsStatus s = natsMsg_Create(&m, o->a->subject, NULL, e->span.data, (int)e->span.len);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.ExpectLastSeq = expect;   /* 0 (an empty stream): no expectation */
	po.MaxWait = o->a->ack_wait_ms;
	pthread_mutex_lock(&o->lock);
	e->state = E_SENT;
	o->outstanding++;
	pthread_mutex_unlock(&o->lock);
	if (s == NATS_OK)
		s = js_PublishMsgAsync(o->bn.js, &m, &po);
	if (s != NATS_OK) {
		natsMsg_Destroy(m);
		pthread_mutex_lock(&o->lock);
		e->state = E_FAILED;
		o->outstanding--;
		o->resync = true;
		stats_error(&o->st, "publish %s: %s", id, natsStatus_GetText(s));
		pthread_mutex_unlock(&o->lock);
	}
}

/* Wait for every outstanding ack; the library times each out after MaxWait,
 * so this ends.  Past twice that, take the pending list back (their acks are
 * then dropped) and count them failed. */
static void wait_outstanding(struct out *o)
{
	double deadline = now_seconds() + 2.0 * (double)o->a->ack_wait_ms / 1000 + 1;
	pthread_mutex_lock(&o->lock);
	while (o->outstanding && now_seconds() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&o->cond, &o->lock, &ts);
	}
	bool stuck = o->outstanding != 0;
	pthread_mutex_unlock(&o->lock);
	if (stuck) {
		natsMsgList pending = { 0 };
		if (js_PublishAsyncGetPendingList(&pending, o->bn.js) == NATS_OK)
			natsMsgList_Destroy(&pending);
		pthread_mutex_lock(&o->lock);
		for (size_t i = 0; i < o->count; i++)
			if (at(o, i)->state == E_SENT)
				at(o, i)->state = E_FAILED;
		o->outstanding = 0;
		pthread_mutex_unlock(&o->lock);
	}
}

static bool too_large(const struct out *o, const struct entry *e)
{
	return o->max_len > 0 && (int64_t)e->span.len > o->max_len;
}

static void cond_wait_ms(struct out *o, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&o->cond, &o->lock, &ts);
}

/* Under lock: the handle holding the fewest spans of the window, for the
 * next peek.  The window holds fewer than cap = 64 * nh entries when we
 * peek, so that handle holds fewer than 64 (SHMRING_MAX_INFLIGHT): a peek
 * never meets -ENOBUFS, whatever order the window is released in. */
static int least_held(const struct out *o)
{
	int best = 0;
	for (int i = 1; i < o->nh; i++)
		if (o->held[i] < o->held[best])
			best = i;
	return best;
}

/* Peek into e (outside the window, ours alone) with h[hi]; on success, e
 * joins the window at its end. */
static ssize_t peek_into(struct out *o, struct entry *e, int hi, int64_t timeout_ns)
{
	ssize_t n = shmring_peek(o->h[hi], &e->span, timeout_ns);
	if (n < 0)
		return n;
	e->hi = hi;
	e->pos = shmring_span_position(&e->span);
	e->state = E_UNSENT;
	pthread_mutex_lock(&o->lock);
	o->held[hi]++;
	o->count++;
	atomic_store(&o->st.in_flight, o->count);
	pthread_mutex_unlock(&o->lock);
	return n;
}

static int by_position(const void *x, const void *y)
{
	uint64_t a = ((const struct entry *)x)->pos, b = ((const struct entry *)y)->pos;
	return a < b ? -1 : a > b;
}

/* Dead attachments left in the ring's table (-1 if it cannot say). */
static int dead_attachments(struct shmring *h)
{
	int n = shmring_attachments(h, NULL, 0);
	if (n <= 0)
		return n;
	struct shmring_attachment *t = calloc((size_t)n, sizeof *t);
	if (!t)
		return -1;
	int got = shmring_attachments(h, t, (size_t)n), dead = 0;
	for (int i = 0; i < got && i < n; i++)
		dead += t[i].state == SHMRING_ATTACH_DEAD || t[i].state == SHMRING_ATTACH_REAPING;
	free(t);
	return dead;
}

/*
 * Start, on a SHMRING_REDELIVER ring: the records a killed run had peeked
 * come back first, but in the order of the ring's redelivery list (by
 * attachment and op record), and each dead attachment's only once it is
 * swept.  Published in that order they would break per-producer order (2
 * violations in a 100 000-record cluster run with the test hook).  So: sweep the dead now (until none is left,
 * 5 s at most), peek every record given back (they come before any fresh
 * one; a fresh one, an empty ring or a full window ends it), and sort them
 * by ring position, the order the dead run peeked and published them in.
 * Then the stream's copies among them are a prefix (dropped as duplicates)
 * and the rest follow in ring order.  In order if this run's --max-pending
 * is at least the dead run's (a record given back beyond the window comes
 * later, in list order).  Before any publish: no ack can come yet.
 */
static void take_back(struct out *o)
{
	double deadline = now_seconds() + 5;
	for (;;) {
		shmring_check_peers(o->h[0]);
		if (dead_attachments(o->h[0]) <= 0 || now_seconds() > deadline)
			break;
		bridge_nap(20);
	}
	size_t given_back = 0;
	while (o->count < o->cap) {
		struct entry *e = &o->win[o->count];   /* head is 0 */
		if (peek_into(o, e, least_held(o), 0) < 0)
			break;
		if (e->span.deliveries <= 1)
			break;   /* a fresh record: every one given back is in */
		given_back++;
	}
	qsort(o->win, given_back, sizeof *o->win, by_position);
	if (given_back)
		fprintf(stderr, "shmring-nats out: %zu records a stopped run had taken, "
		        "published again in ring order\n", given_back);
}

int run_out(const struct bridge_args *a)
{
	struct out *o = calloc(1, sizeof *o);
	int rc = 1;
	if (!o) {
		fprintf(stderr, "shmring-nats out: out of memory\n");
		return 1;
	}
	o->a = a;
	stats_init(&o->st);
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	const char *die = getenv("SHMRING_NATS_TEST_DIE_HOLDING");
	o->die_after = die ? strtoul(die, NULL, 10) : 0;
	o->cap = (size_t)a->max_pending;
	o->win = calloc(o->cap, sizeof *o->win);
	o->nh = (int)((o->cap + SHMRING_MAX_INFLIGHT - 1) / SHMRING_MAX_INFLIGHT);
	o->h = calloc((size_t)o->nh, sizeof *o->h);
	o->held = calloc((size_t)o->nh, sizeof *o->held);
	if (!o->win || !o->h || !o->held) {
		fprintf(stderr, "shmring-nats out: out of memory (--max-pending %d)\n",
		        a->max_pending);
		o->nh = 0;
		goto out;
	}
	for (int i = 0; i < o->nh; i++)
		if (bridge_ring_open(&o->h[i], a, SHMRING_CONSUMER) < 0)
			goto out;
	int err = ring_identity(o->h[0], a->ring, &o->ring_id);
	if (err < 0) {
		fprintf(stderr, "shmring-nats out: ring identity: %s\n", shmring_strerror(err));
		goto out;
	}

	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = BRIDGE_API_WAIT_MS;
	jo.PublishAsync.MaxPending = (int64_t)o->cap + 16; /* our window stalls first */
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = o;
	if (bridge_connect(&o->bn, a, &jo, &o->st) || bridge_ensure_stream(&o->bn, a, &o->st))
		goto out;
	uint64_t last_seq, last_pos;
	bool ours;
	if (query_stream(o, &last_seq, &ours, &last_pos))
		goto out;
	/* A record over the server's max_payload cannot be published (see
	 * too_large): warn now if the ring can hold one. */
	struct shmring_info info;
	o->max_len = natsConnection_GetMaxPayload(o->bn.nc) - BRIDGE_HEADER_ROOM;
	if (shmring_info(o->h[0], &info) == 0 && o->max_len > 0 &&
	    (int64_t)info.max_record > o->max_len)
		fprintf(stderr, "shmring-nats out: warning: ring %s takes records of up to %zu "
		        "bytes, the NATS server at most %lld (max_payload less %d for headers): a "
		        "larger record stops the bridge (docs/bridge.md)\n", a->ring,
		        info.max_record, (long long)o->max_len, BRIDGE_HEADER_ROOM);
	o->last_seq = last_seq;
	fprintf(stderr, "shmring-nats out: ring %s (id %016" PRIx64 ") -> stream %s, last "
	        "sequence %" PRIu64 "%s\n", a->ring, o->ring_id, a->stream, last_seq,
	        ours ? ", its last record from this ring" : "");
	o->redelivers = bridge_ring_redelivers(o->h[0]);
	if (o->redelivers)
		take_back(o);
	else
		fprintf(stderr, "shmring-nats out: warning: ring %s was made without "
		        "SHMRING_REDELIVER: records this bridge holds when it is killed are lost "
		        "(counted in the ring's lost_records; docs/bridge.md)\n", a->ring);

	bool draining = false;
	for (;;) {
		stats_maybe_print(&o->st, "out", a->stats_interval, false);
		if (stop_forced)
			break;
		pthread_mutex_lock(&o->lock);
		if (stop_requested && !draining) {
			draining = true;
			fprintf(stderr, "shmring-nats out: stopping: publishing the %zu records "
			        "in flight (signal again to exit now)\n", o->count);
		}
		if (o->resync) {
			pthread_mutex_unlock(&o->lock);
			wait_outstanding(o);
			if (resync(o))
				break;
			continue;
		}
		if (draining && o->count == 0) {
			pthread_mutex_unlock(&o->lock);
			rc = 0;
			break;
		}
		if (o->holding && o->count == o->cap && o->outstanding == 0 &&
		    o->sent >= o->cap / 2) {
			fprintf(stderr, "shmring-nats out: test hook: dying holding %zu records "
			        "published and acknowledged, %zu never published\n", o->sent,
			        o->count - o->sent);
			raise(SIGKILL);
		}
		if (o->sent < o->count && too_large(o, at(o, o->sent))) {
			/* Never published, never released: the flow stops here,
			 * with a clear error, and loses nothing while it runs. */
			struct entry *e = at(o, o->sent);
			if (!o->blocked)
				fprintf(stderr, "shmring-nats out: the record at position %" PRIu64
				        " is %zu bytes, over the NATS server's max_payload less %d "
				        "bytes for headers (%lld): it cannot be published; the bridge "
				        "stops taking records (raise max_payload in the server "
				        "configuration)\n", e->pos, e->span.len, BRIDGE_HEADER_ROOM,
				        (long long)o->max_len);
			o->blocked = true;
			stats_error(&o->st, "record at position %" PRIu64 " over max_payload: stopped",
			            e->pos);
			if (draining && o->sent == 0) {   /* all before it are acked */
				pthread_mutex_unlock(&o->lock);
				break;
			}
		} else if (o->sent < o->count && at(o, o->sent)->state == E_ACKED) {
			o->sent++;   /* acknowledged before a resync: stored already */
			pthread_mutex_unlock(&o->lock);
			continue;
		} else if (o->sent < o->count && (!o->holding || o->sent < o->cap / 2)) {
			/* publish the next entry */
			struct entry *e = at(o, o->sent);
			e->expect = o->last_seq;
			o->sent++;
			o->last_seq++;
			pthread_mutex_unlock(&o->lock);
			publish(o, e, e->expect);
			continue;
		}
		if (draining || o->blocked || o->count == o->cap) {
			cond_wait_ms(o, 20);
			pthread_mutex_unlock(&o->lock);
			continue;
		}
		/* Room in the window: take the next record into the entry past
		 * the window's end, ours alone until count is raised.  Where that
		 * is, read under the lock: the ack thread's pop_acked moves head
		 * and count together (their sum stays put), but between its two
		 * stores the sum is off by one, and an entry computed from it
		 * then was the window's last live one, whose span the peek
		 * overwrote: its op record leaked (-ENOBUFS once that handle's
		 * share of the window came back to 64) and its record stayed
		 * held (found with TSan; docs/bridge.md). */
		struct entry *e = &o->win[(o->head + o->count) % o->cap];
		int hi = least_held(o);
		pthread_mutex_unlock(&o->lock);

		ssize_t n = peek_into(o, e, hi, 20 * 1000000LL);
		if (n == -EAGAIN || n == -ETIMEDOUT)
			continue;
		if (n < 0) {
			if (n == -EPIPE) {     /* closed and drained, or no producer left */
				bridge_nap(20);
				continue;
			}
			fprintf(stderr, "shmring-nats out: peek: %s\n", shmring_strerror((int)n));
			stop_requested = 1;
			continue;
		}
	}
	pthread_mutex_lock(&o->lock);
	size_t left = o->count;
	pthread_mutex_unlock(&o->lock);
	if (rc != 0 && left)
		fprintf(stderr, "shmring-nats out: exiting with %zu records peeked and not "
		        "acknowledged%s\n", left, o->redelivers
		        ? " (the ring delivers them again)"
		        : " (the ring was made without SHMRING_REDELIVER: they are lost)");
	wait_outstanding(o);
	stats_maybe_print(&o->st, "out", a->stats_interval, true);
out:
	bridge_disconnect(&o->bn);
	for (int i = 0; i < o->nh; i++)
		if (o->h[i])
			shmring_detach(o->h[i]);
	free(o->h);
	free(o->held);
	free(o->win);
	free(o);
	return rc;
}
