/*
 * in.c - JetStream -> ring: fetch, put, ack.
 *
 * A durable pull consumer (AckAll, filtered on the subject) feeds the ring in
 * stream order.  Each fetch asks for no more messages than the ring has room
 * for now (free bytes / the average slot bytes of the messages so far), so a
 * full ring stops the fetching, not the puts.  Each message is put, its
 * stream sequence recorded as committed (inpos.c), and the last message of
 * the batch is acknowledged (AckAll: all before it too).
 *
 * Exactly once into the ring: a message whose stream sequence is at or below
 * the committed one was put already (its ack was lost, or the bridge died
 * before acking) and is acknowledged without a put.  A crash leaves the
 * consumer with messages delivered and unacknowledged, which JetStream would
 * hand out again only after AckWait, behind newer ones: so at start, and
 * whenever a message arrives past a gap (seq > committed + 1), the bridge
 * makes the consumer again to start at committed + 1, and the order holds.
 * The first message after that may be past a gap for good (messages removed
 * from the stream by its limits): it is taken.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

struct in {
	const struct bridge_args *a;
	struct shmring    *ring;
	uint64_t           ring_id;
	struct inpos      *pos;
	struct bridge_nats bn;
	struct bridge_stats st;
	natsSubscription  *inbox_sub; /* where pull requests deliver (pull()) */
	natsInbox         *inbox;
	char              *next_subj; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
	uint64_t           committed;
	bool               take_any;  /* the first message after (re)making the consumer */
	double             avg_slot_bytes;
	/* Test hook (bridge/tests/cluster.py): SHMRING_NATS_TEST_DIE_AFTER_PUTS=N
	 * kills the bridge after its N-th put, before recording it. */
	unsigned long      die_after_puts;
};

/* A fresh inbox for our pull requests (pull()).  After the consumer is made
 * again, deliveries of the deleted one still on their way (a request's
 * batch, or the rest of one that waited) go to the old inbox, which has no
 * subscriber now: nowhere.  Kept, one past the gap that made the reset was
 * collected first and taken as the new consumer's first message (take_any),
 * so committed passed the messages the new one then delivered, and they
 * were acknowledged without a put: lost (a review found it, 2026-12-06). */
static natsStatus new_inbox(struct in *in)
{
	if (in->inbox_sub) {
		natsSubscription_Unsubscribe(in->inbox_sub);
		natsSubscription_Destroy(in->inbox_sub);
		in->inbox_sub = NULL;
	}
	natsInbox_Destroy(in->inbox);
	in->inbox = NULL;
	natsStatus ns = natsInbox_Create(&in->inbox);
	if (ns == NATS_OK)
		ns = natsConnection_SubscribeSync(&in->inbox_sub, in->bn.nc, in->inbox);
	if (ns == NATS_OK)   /* never drop a delivery for being slow: a gap costs a reset */
		ns = natsSubscription_SetPendingLimits(in->inbox_sub, -1, -1);
	return ns;
}

/* Make the consumer start at committed + 1 (keeping it if it already would),
 * and subscribe to it.  Retries until stop; -1 on stop. */
static int setup_consumer(struct in *in)
{
	const struct bridge_args *a = in->a;
	int64_t nap = 100;
	while (!stop_requested) {
		jsErrCode jerr = 0;
		jsConsumerInfo *ci = NULL;
		jsStreamInfo *si = NULL;
		natsStatus s = js_GetStreamInfo(&si, in->bn.js, a->stream, NULL, &jerr);
		if (s != NATS_OK)
			goto retry;
		if (inpos_stream_instance(in->pos, si->Created)) {
			fprintf(stderr, "shmring-nats in: stream %s was made again: its sequences "
			        "start afresh (committed %" PRIu64 " was the old stream's)\n",
			        a->stream, in->committed);
			in->committed = 0;
		}
		jsStreamInfo_Destroy(si);
		s = js_GetConsumerInfo(&ci, in->bn.js, a->stream, a->durable, NULL, &jerr);
		bool make = false;
		uint64_t start = in->committed + 1;
		if (s == NATS_OK) {
			uint64_t floor = ci->AckFloor.Stream;
			bool idle = ci->NumAckPending == 0 && ci->Delivered.Stream == floor;
			bool cfg_ok = ci->Config && ci->Config->AckPolicy == js_AckAll &&
			              ci->Config->FilterSubject &&
			              !strcmp(ci->Config->FilterSubject, a->subject);
			if (floor > in->committed)
				start = floor + 1;
			jsConsumerInfo_Destroy(ci);
			if (!idle || !cfg_ok || floor < in->committed) {
				s = js_DeleteConsumer(in->bn.js, a->stream, a->durable, NULL, &jerr);
				if (s != NATS_OK && jerr != JSConsumerNotFoundErr)
					goto retry;
				make = true;
			}
		} else if (jerr == JSConsumerNotFoundErr) {
			make = true;
		} else {
			goto retry;
		}
		if (make) {
			jsConsumerConfig cc;
			jsConsumerConfig_Init(&cc);
			cc.Durable = a->durable;
			cc.AckPolicy = js_AckAll;
			cc.AckWait = a->ack_wait_ms * 1000000;
			cc.FilterSubject = a->subject;
			cc.MaxAckPending = 4 * (int64_t)a->batch;
			if (start > 1) {
				cc.DeliverPolicy = js_DeliverByStartSequence;
				cc.OptStartSeq = start;
			}
			s = js_AddConsumer(&ci, in->bn.js, a->stream, &cc, NULL, &jerr);
			if (s != NATS_OK)
				goto retry;
			jsConsumerInfo_Destroy(ci);
			fprintf(stderr, "shmring-nats in: consumer %s starts at stream sequence %"
			        PRIu64 "\n", a->durable, start);
			atomic_fetch_add(&in->st.resyncs, 1);
		}
		if ((make || !in->inbox_sub) && (s = new_inbox(in)) != NATS_OK)
			goto retry;
		in->take_any = true;
		return 0;
retry:
		stats_error(&in->st, "consumer %s: %s (jerr %d)", a->durable, natsStatus_GetText(s),
		            (int)jerr);
		stats_maybe_print(&in->st, "in", a->stats_interval, false);
		bridge_nap(nap);
		nap = nap < 1000 ? nap * 2 : 1000;
	}
	return -1;
}

/* Send one pull request for n messages: no_wait (answered at once with what
 * there is, then a 404), or waiting up to timeout_ms. */
static int pull_request(struct in *in, int n, bool no_wait, int64_t timeout_ms)
{
	char req[96];
	if (no_wait)
		snprintf(req, sizeof req, "{\"batch\":%d,\"no_wait\":true}", n);
	else
		snprintf(req, sizeof req, "{\"batch\":%d,\"expires\":%lld}", n,
		         (long long)(timeout_ms - 10) * 1000000LL);
	natsStatus s = natsConnection_PublishRequestString(in->bn.nc, in->next_subj, in->inbox, req);
	if (s != NATS_OK) {
		stats_error(&in->st, "pull: %s", natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

/* Collect deliveries from the inbox into msgs[count..n), waiting at most
 * wait_ms for the first and gap_ms for each next one.  Stops at a status
 * message (404 no messages, 408 expired: *ended set) unless skip_status
 * (deliveries left from earlier requests, whose statuses mean nothing
 * now).  Returns the new count, or -1 on an error with nothing collected. */
static int collect(struct in *in, natsMsg **msgs, int count, int n, int64_t wait_ms,
                   int64_t gap_ms, bool skip_status, bool *ended)
{
	while (count < n) {
		natsMsg *m = NULL;
		natsStatus s = natsSubscription_NextMsg(&m, in->inbox_sub, count ? gap_ms : wait_ms);
		if (s == NATS_TIMEOUT)
			break;
		if (s != NATS_OK) {
			stats_error(&in->st, "pull: %s", natsStatus_GetText(s));
			return count ? count : -1;
		}
		const char *status = NULL;
		if (natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status) {
			bool other = strncmp(status, "404", 3) && strncmp(status, "408", 3);
			if (other && !skip_status) {
				const char *desc = NULL;
				natsMsgHeader_Get(m, "Description", &desc);
				stats_error(&in->st, "pull: %s %s", status, desc ? desc : "");
			}
			natsMsg_Destroy(m);
			if (skip_status)
				continue;
			*ended = true;
			if (other && !count)
				return -1;
			break;
		}
		msgs[count++] = m;
	}
	return count;
}

/* Up to n messages from the consumer, waiting at most timeout_ms for the
 * first: our own pull requests ($JS.API.CONSUMER.MSG.NEXT) answered on the
 * bridge's inbox, as nats.c's Fetch does it (deliveries already waiting;
 * else a no_wait request; else one that waits), but into the caller's array
 * of n.  (Not natsSubscription_Fetch: in libnats 3.4.1 it can collect more
 * messages than the batch it was asked for, when deliveries left over from
 * an earlier request are waiting, and write past its array: a heap overflow,
 * seen here as "double free or corruption" under load.)  A delivery left
 * over from an earlier request is taken like any other: the sequence checks
 * in run_in sort it out.  Returns the count (0: none), or -1 on an error. */
static int pull(struct in *in, natsMsg **msgs, int n, int64_t timeout_ms)
{
	bool ended = false;
	int count = collect(in, msgs, 0, n, 0, 0, true, &ended);   /* already here */
	if (count != 0)
		return count;
	if (pull_request(in, n, true, 0))
		return -1;
	count = collect(in, msgs, 0, n, timeout_ms, 2, false, &ended);
	if (count != 0 || !ended)
		return count;
	/* nothing there now: wait for the first, then take what follows it */
	if (pull_request(in, n, false, timeout_ms))
		return -1;
	ended = false;
	return collect(in, msgs, 0, n, timeout_ms, 2, false, &ended);
}

/* How many messages the ring has room for now. */
static int room(struct in *in)
{
	struct shmring_info info;
	if (shmring_info(in->ring, &info) < 0)
		return 1;
	size_t free_bytes = info.capacity > info.used ? info.capacity - info.used : 0;
	double n = (double)free_bytes / in->avg_slot_bytes;
	return n > in->a->batch ? in->a->batch : (int)n;
}

/* Put one message; waits while the ring is full (in steps of 100 ms, so that
 * a stop is seen).  0, 1 if abandoned on a stop (not put, not acked: the next
 * run puts it), -1 on a message the ring can never take. */
static int put_one(struct in *in, const void *data, size_t len, uint64_t seq)
{
	for (;;) {
		int rc = shmring_put(in->ring, data, len, 100 * 1000000LL);
		if (rc == 0)
			return 0;
		if (rc == -EMSGSIZE || rc == -EINVAL) {
			fprintf(stderr, "shmring-nats in: stream sequence %" PRIu64 " (%zu bytes): "
			        "%s; stopping with it unacknowledged\n", seq, len, shmring_strerror(rc));
			return -1;
		}
		if (rc != -ETIMEDOUT && rc != -EAGAIN) {
			/* -EPIPE: closed, or every consumer gone (a ring without
			 * SHMRING_PERSISTENT); wait for one */
			stats_error(&in->st, "put: %s", shmring_strerror(rc));
			bridge_nap(20);
		}
		if (stop_requested)   /* left unacked: the next run puts it */
			return 1;
		stats_maybe_print(&in->st, "in", in->a->stats_interval, false);
	}
}

int run_in(const struct bridge_args *a)
{
	struct in *in = calloc(1, sizeof *in);
	natsMsg **msgs = NULL;   /* one pull's messages, --batch at most */
	int rc = 1;
	if (!in) {
		fprintf(stderr, "shmring-nats in: out of memory\n");
		return 1;
	}
	in->a = a;
	in->avg_slot_bytes = SHMRING_SLOT_SIZE;
	const char *die = getenv("SHMRING_NATS_TEST_DIE_AFTER_PUTS");
	in->die_after_puts = die ? strtoul(die, NULL, 10) : 0;
	stats_init(&in->st);
	if (bridge_ring_open(&in->ring, a, SHMRING_PRODUCER) < 0)
		goto out;
	int err = ring_identity(in->ring, a->ring, &in->ring_id);
	if (!err)
		err = inpos_open(&in->pos, in->ring_id, a->ring, a->stream, a->durable);
	if (err < 0) {
		fprintf(stderr, "shmring-nats in: position file: %s\n", shmring_strerror(err));
		goto out;
	}
	uint64_t uncertain;
	in->committed = inpos_committed(in->pos, &uncertain);
	if (uncertain)
		fprintf(stderr, "shmring-nats in: the last run died putting stream sequence %"
		        PRIu64 ": it may be in ring %s already, and is put again (once)\n",
		        uncertain, a->ring);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = BRIDGE_API_WAIT_MS;
	if (bridge_connect(&in->bn, a, &jo, &in->st) || bridge_ensure_stream(&in->bn, a, &in->st))
		goto out;
	natsStatus ns = new_inbox(in);
	if (ns != NATS_OK || asprintf(&in->next_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
	                              a->stream, a->durable) < 0) {
		fprintf(stderr, "shmring-nats in: inbox: %s\n", natsStatus_GetText(ns));
		goto out;
	}
	if (setup_consumer(in))
		goto out;
	msgs = calloc((size_t)a->batch, sizeof *msgs);
	if (!msgs) {
		fprintf(stderr, "shmring-nats in: out of memory (--batch %d)\n", a->batch);
		goto out;
	}
	unsigned idle_pulls = 0;
	fprintf(stderr, "shmring-nats in: stream %s -> ring %s, committed through stream "
	        "sequence %" PRIu64 "\n", a->stream, a->ring, in->committed);

	while (!stop_requested) {
		stats_maybe_print(&in->st, "in", a->stats_interval, false);
		int n = room(in);
		if (n < 1) {
			bridge_nap(2);
			continue;
		}
		int count = pull(in, msgs, n, 500);
		if (count == 0) {
			if (++idle_pulls % 20 == 0 && setup_consumer(in))  /* ~10 s idle: */
				break;   /* is the consumer still there? (it may be made again) */
			continue;
		}
		idle_pulls = 0;
		if (count < 0) {
			atomic_fetch_add(&in->st.retries, 1);
			bridge_nap(100);
			/* a consumer lost with its stream, for instance */
			if (natsConnection_Status(in->bn.nc) == NATS_CONN_STATUS_CONNECTED &&
			    setup_consumer(in))
				break;
			continue;
		}
		atomic_store(&in->st.in_flight, (uint64_t)count);
		natsMsg *to_ack = NULL;
		bool reset = false, fatal = false;
		for (int i = 0; i < count && !reset && !fatal; i++) {
			natsMsg *m = msgs[i];
			jsMsgMetaData *md = NULL;
			if (natsMsg_GetMetaData(&md, m) != NATS_OK)
				continue;   /* not a consumer delivery: ignore */
			uint64_t seq = md->Sequence.Stream;
			jsMsgMetaData_Destroy(md);
			if (seq <= in->committed) {
				atomic_fetch_add(&in->st.duplicates, 1);
				to_ack = m;
				continue;
			}
			if (seq != in->committed + 1 && !in->take_any) {
				stats_error(&in->st, "gap: got stream sequence %" PRIu64 " after %"
				            PRIu64 "; restarting the consumer there", seq, in->committed);
				reset = true;
				break;
			}
			size_t len = (size_t)natsMsg_GetDataLength(m);
			inpos_begin(in->pos, seq);
			int prc = put_one(in, natsMsg_GetData(m), len, seq);
			if (prc) {
				inpos_begin(in->pos, in->committed);  /* not put: nothing uncertain */
				fatal = prc < 0;
				reset = prc > 0;
				break;
			}
			if (in->die_after_puts && --in->die_after_puts == 0)
				raise(SIGKILL);   /* test hook: the one-duplicate window */
			inpos_commit(in->pos, seq);
			in->committed = seq;
			in->take_any = false;
			to_ack = m;
			atomic_fetch_add(&in->st.records, 1);
			double slot_bytes = (double)((len + SHMRING_SLOT_SIZE - 1) / SHMRING_SLOT_SIZE *
			                             SHMRING_SLOT_SIZE);
			if (slot_bytes < SHMRING_SLOT_SIZE)
				slot_bytes = SHMRING_SLOT_SIZE;
			in->avg_slot_bytes += (slot_bytes - in->avg_slot_bytes) / 16;
		}
		if (to_ack && natsMsg_GetReply(to_ack))   /* AckAll: everything before it too */
			natsConnection_PublishString(in->bn.nc, natsMsg_GetReply(to_ack), "+ACK");
		for (int i = 0; i < count; i++)
			natsMsg_Destroy(msgs[i]);
		atomic_store(&in->st.in_flight, 0);
		if (fatal)
			goto out;
		if (reset && !stop_forced && setup_consumer(in))
			break;
	}
	rc = 0;
	stats_maybe_print(&in->st, "in", a->stats_interval, true);
out:
	free(msgs);
	if (in->inbox_sub)
		natsSubscription_Destroy(in->inbox_sub);
	natsInbox_Destroy(in->inbox);
	free(in->next_subj);
	bridge_disconnect(&in->bn);
	inpos_close(in->pos);
	shmring_detach(in->ring);
	free(in);
	return rc;
}
